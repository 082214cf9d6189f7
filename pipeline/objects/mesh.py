"""The mesh record passed from the host to Blender: vertices, faces, and the exact defect mask."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..io import atomic_write_bytes


@dataclass
class DefectMesh:
    """A triangle mesh with per-vertex and per-face defect masks (all False for a normal object)."""
    vertices: np.ndarray      # (V, 3) float64
    faces: np.ndarray         # (F, 3) int64
    vertex_mask: np.ndarray   # (V,) bool
    face_mask: np.ndarray     # (F,) bool
    # Optional provenance: for each vertex, its index in the mesh the defect was applied to, -1 for a
    # vertex the defect created. Not saved; used to check that geometry outside the mask is untouched.
    origin: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.vertex_mask = np.asarray(self.vertex_mask, dtype=bool)
        self.face_mask = np.asarray(self.face_mask, dtype=bool)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}")
        if not np.isfinite(self.vertices).all():
            raise ValueError("vertices contain NaN or infinite values")
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces index vertices that do not exist")
        if self.vertex_mask.shape != (len(self.vertices),) or self.face_mask.shape != (len(self.faces),):
            raise ValueError("mask shapes do not match the mesh")
        if self.origin is not None:
            self.origin = np.asarray(self.origin, dtype=np.int64)
            if self.origin.shape != (len(self.vertices),):
                raise ValueError("origin must have one entry per vertex")

    @classmethod
    def normal(cls, vertices: np.ndarray, faces: np.ndarray) -> "DefectMesh":
        return cls(vertices, faces, np.zeros(len(vertices), bool), np.zeros(len(faces), bool))

    @property
    def has_defect(self) -> bool:
        return bool(self.face_mask.any())

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically (Blender reads it with numpy and ``foreach_set``)."""
        buf = io.BytesIO()
        np.savez(buf, vertices=self.vertices.astype(np.float32), faces=self.faces.astype(np.int32),
                 vertex_mask=self.vertex_mask, face_mask=self.face_mask)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "DefectMesh":
        with np.load(path) as z:
            return cls(z["vertices"], z["faces"], z["vertex_mask"], z["face_mask"])
