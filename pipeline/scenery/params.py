"""Parameter specs (a number or a ``[min, max]`` range), colours and colour temperature."""

from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np

# The red defect paint must stay distinguishable: a colour spec either keeps its hue inside this
# band (HSV hue in [0, 1], red at 0/1) or is nearly grey.
SAFE_HUE = (0.06, 0.80)  # above 0.8 is magenta-pink: too close to the paint under warm light
GREY_SATURATION = 0.1


class SpecError(ValueError):
    """A bad asset spec; the message names the file and the key."""


def check_param(value: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> None:
    """``value`` must be a number or an ordered pair of numbers, inside ``[lo, hi]``."""
    vals = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise SpecError(f"{where}: expected a number or [min, max], got {value!r}")
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError(f"{where}: expected a number or [min, max], got {value!r}")
        if not lo <= v <= hi:
            raise SpecError(f"{where}: {v} is outside [{lo}, {hi}]")
    if len(vals) == 2 and vals[0] > vals[1]:
        raise SpecError(f"{where}: min {vals[0]} > max {vals[1]}")


def check_hsv(value: Any, where: str) -> None:
    """An HSV triple of params, red-safe (see :data:`SAFE_HUE`)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise SpecError(f"{where}: expected [hue, saturation, value] (each a number or [min, max])")
    for part, name in zip(value, ("hue", "saturation", "value")):
        check_param(part, f"{where}.{name}", 0.0, 1.0)
    h, s = value[0], value[1]
    h_lo, h_hi = (h, h) if not isinstance(h, (list, tuple)) else h
    s_hi = s if not isinstance(s, (list, tuple)) else s[1]
    if not (SAFE_HUE[0] <= h_lo and h_hi <= SAFE_HUE[1]) and s_hi > GREY_SATURATION:
        raise SpecError(f"{where}: hue range [{h_lo}, {h_hi}] reaches red (allowed {list(SAFE_HUE)}) with "
                        f"saturation up to {s_hi} > {GREY_SATURATION}; the defect paint would not stand out")


def sample(rng: np.random.Generator, value: Any, digits: int = 4) -> float:
    """Draw one value: a fixed number, or uniform in ``[min, max]``; rounded for stable JSON."""
    if isinstance(value, (list, tuple)):
        lo, hi = float(value[0]), float(value[1])
        return round(float(rng.uniform(lo, hi)) if hi > lo else lo, digits)
    return round(float(value), digits)


def sample_int(rng: np.random.Generator, value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return int(rng.integers(int(value[0]), int(value[1]) + 1))
    return int(value)


def sample_rgb(rng: np.random.Generator, hsv: Any) -> list[float]:
    h, s, v = (sample(rng, x) for x in hsv)
    return [round(c, 4) for c in colorsys.hsv_to_rgb(h, s, v)]


def kelvin_rgb(kelvin: float) -> list[float]:
    """Approximate black-body colour (Tanner Helland's fit), normalized to max channel 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    rgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    rgb = rgb / rgb.max()
    # sRGB-ish display values → linear for Blender colour inputs.
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return [round(float(x), 4) for x in lin]
