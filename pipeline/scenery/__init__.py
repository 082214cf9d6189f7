"""Scene diversity on the host: named material, environment and floor specs from ``assets/``,
seeded samplers that resolve them into plain JSON for Blender, object pose, the camera orbit with
jitter, and the visibility prediction used to plan start azimuths. Never imports bpy."""

from .catalog import Catalog, load_catalog

__all__ = ["Catalog", "load_catalog"]
