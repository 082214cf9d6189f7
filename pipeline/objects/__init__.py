"""Objects: procedural meshes from declarative specs, and defects synthesized on them."""

from .mesh import DefectMesh
from .library import ObjectLibrary, ObjectSpec

__all__ = ["DefectMesh", "ObjectLibrary", "ObjectSpec"]
