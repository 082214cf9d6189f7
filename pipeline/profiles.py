"""Render profiles: named defaults for ``render:`` that a config's own keys override.

- ``cpu`` (the default): the built-in field defaults, sized for a small CPU machine (320×180,
  8 spp, OIDN FAST, persistent data).
- ``paper``: the MMVIAD paper's format, 1920×1080 at 30 fps (180-frame orbits, 2-second clips), with
  GPU-oriented settings: device gpu (OptiX, then CUDA), 64 spp with
  adaptive sampling (threshold 0.01), OIDN HIGH (on the GPU), persistent data, and no PNG frames
  published (``keep_frames: none``: clips, annotation and the lossless mask video; the ``cpu``
  profile keeps every pass, ``all``).
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {"width": 1920, "height": 1080, "fps": 30, "orbit_frames": 180, "clip_seconds": 2.0, "samples": 64,
              "adaptive_threshold": 0.01, "denoise": "high", "device": "gpu", "persistent_data": True,
              "keep_frames": "none"},
}


def apply_profile(data: Any) -> Any:
    """Raw ``render`` mapping with the profile's defaults under the keys it does not set.

    An unknown profile is passed through unchanged so that field validation reports it."""
    if not isinstance(data, dict):
        return data
    profile = data.get("profile", "cpu")
    defaults = PROFILES.get(profile) if isinstance(profile, str) else None
    if defaults is None:
        return data
    return {**defaults, **data}
