"""Homogeneous fog by Koschmieder's law / Beer-Lambert attenuation.

``I = J * t + A * (1 - t)``, ``t = exp(-beta * d)``; meteorological visibility V (5% contrast
threshold) relates to the extinction coefficient by ``beta = -ln(0.05) / V ~= 3 / V``.
"""

from __future__ import annotations

import math

import numpy as np

CONTRAST_THRESHOLD = 0.05


def koschmieder_beta(visibility_m: float) -> float:
    """Extinction coefficient (1/m) for a meteorological visibility in metres."""
    if visibility_m <= 0:
        raise ValueError(f"visibility_m must be > 0, got {visibility_m}")
    return -math.log(CONTRAST_THRESHOLD) / visibility_m


def fog_transmission(distance_m: np.ndarray, beta: float) -> np.ndarray:
    """Transmission t = exp(-beta d) for ray distances (inf -> 0)."""
    return np.exp(-beta * np.asarray(distance_m, np.float32)).astype(np.float32)


def fog(image: np.ndarray, distance_m: np.ndarray, beta: float, airlight: np.ndarray) -> np.ndarray:
    """Fog a linear float image (H, W, 3, 0..1) given ray distances (H, W, metres, inf = sky)
    and the airlight colour (3,) or (H, W, 3). Returns float32 (H, W, 3)."""
    t = fog_transmission(distance_m, beta)[..., None]
    return (image * t + np.asarray(airlight, np.float32) * (1.0 - t)).astype(np.float32)
