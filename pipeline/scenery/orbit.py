"""The camera orbit: elevation, distance fitted to the object's bounds, start azimuth, and a small
smooth jitter that closes on itself over the full turn (integer harmonics of the orbit)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..scene_spec import SENSOR_WIDTH_MM, focal_px, vertical_fov
from .params import sample

__all__ = ["SENSOR_WIDTH_MM", "focal_px", "vertical_fov", "sample_jitter", "sample_camera", "camera_frames"]
HARMONICS = (2, 3, 5)
FIT_DIVISOR = 2.2  # distance_factor × fit / 2.2: factors near 2.6–3.2 frame the object like 1.2–1.5 × fit


def sample_jitter(rng: np.random.Generator, amp_deg: float, amp_dist: float) -> dict[str, list[list[float]]]:
    """Per channel a few ``[harmonic, amplitude, phase]`` terms whose amplitudes sum to at most the bound."""
    out: dict[str, list[list[float]]] = {}
    for key, amp in (("elevation_deg", amp_deg), ("azimuth_deg", amp_deg), ("distance", amp_dist)):
        w = rng.dirichlet(np.ones(len(HARMONICS))) * float(rng.uniform(0.5, 1.0)) * amp
        out[key] = [[k, round(float(a), 5), round(float(rng.uniform(0, 2 * math.pi)), 5)] for k, a in zip(HARMONICS, w)]
    return out


def sample_camera(rng: np.random.Generator, elevation_deg, distance_factor, lens_mm, jitter_deg: float,
                  jitter_distance: float, center_y=(0.5, 0.5), fstop=None) -> dict[str, Any]:
    """The orbit of one job: elevation, distance factor, start azimuth and jitter, then the optics:
    focal length (``lens_mm``: a number or a range), where the object's centre sits in the frame
    (``center_y``, from the bottom) and, when ``fstop`` is a range, an f-number for depth of field."""
    cam = {"elevation_deg": sample(rng, list(elevation_deg)), "distance_factor": sample(rng, list(distance_factor)),
           "start_azimuth_deg": round(float(rng.uniform(0, 360)), 4),
           "jitter": sample_jitter(rng, jitter_deg, jitter_distance)}
    cam["lens_mm"] = sample(rng, list(lens_mm) if isinstance(lens_mm, (list, tuple)) else lens_mm, 3)
    cam["center_y"] = sample(rng, list(center_y))
    if fstop is not None:
        cam["fstop"] = sample(rng, list(fstop), 3)
    return cam


def _wave(terms: list[list[float]], u: np.ndarray) -> np.ndarray:
    """``Σ a sin(k u + φ)`` with ``u`` the nominal azimuth (radians); integer ``k`` closes the loop."""
    return sum((a * np.sin(k * u + p) for k, a, p in terms), np.zeros_like(u))


def camera_frames(camera: dict[str, Any], vertices: np.ndarray, width: int, height: int, frames: int,
                  start_azimuth_deg: float | None = None) -> list[dict[str, list[float]]]:
    """One full orbit around the bounding-box centre, one pose per frame.

    The distance is ``distance_factor`` × the distance at which the bounding sphere fits the vertical
    field of view (÷ :data:`FIT_DIVISOR`), so every object fills the frame the same way. The camera
    aims above the centre so that the centre sits at ``center_y`` of the frame height (jobs without
    the key are centred). Jobs without a ``jitter`` key follow the plain circle."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    center = (lo + hi) / 2.0
    radius = float(np.linalg.norm(hi - lo) / 2.0)
    fit = radius / math.sin(vertical_fov(width, height, camera["lens_mm"]) / 2.0)
    dist0 = camera["distance_factor"] * fit / FIT_DIVISOR
    start = camera["start_azimuth_deg"] if start_azimuth_deg is None else start_azimuth_deg
    # The jitter is a function of the nominal azimuth (not of the frame number), so moving the start
    # by whole frames rolls the same path: the visibility planner relies on this.
    nominal = math.radians(start) + 2.0 * math.pi * np.arange(frames) / frames
    j = camera.get("jitter") or {}
    az = nominal + np.radians(_wave(j.get("azimuth_deg", []), nominal))
    el = np.radians(camera["elevation_deg"] + _wave(j.get("elevation_deg", []), nominal))
    dist = dist0 * (1.0 + _wave(j.get("distance", []), nominal))
    # Aim above the centre so that the centre appears at ``center_y`` of the frame height: pitch the
    # view up by the angle whose tangent is that offset times tan(half the vertical field of view).
    pitch = math.atan((0.5 - camera.get("center_y", 0.5)) * 2.0 * math.tan(vertical_fov(width, height, camera["lens_mm"]) / 2.0))
    out = []
    for a, e, d in zip(az, el, dist):
        loc = center + d * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        target = center
        if pitch:
            # In the vertical plane through the camera and the centre, raise the view direction by
            # ``pitch`` and keep the aim point at the centre's distance.
            horiz = np.array([math.cos(a), math.sin(a), 0.0])
            look_el = -e + pitch
            target = loc + d * (-math.cos(look_el) * horiz + np.array([0.0, 0.0, math.sin(look_el)]))
        out.append({"location": [round(float(x), 6) for x in loc], "target": [round(float(x), 6) for x in target]})
    return out
