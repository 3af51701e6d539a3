"""Sky colour from sun elevation and weather, composited where no surface was rendered."""

from __future__ import annotations

import math

import numpy as np

from longtail.render.camera import normalized_coords
from longtail.worlds.scene import Camera, Scene

DAY = (np.array([0.78, 0.85, 0.93]), np.array([0.28, 0.48, 0.80]))  # (horizon, zenith), linear 0..1
DUSK = (np.array([0.95, 0.62, 0.38]), np.array([0.25, 0.30, 0.55]))
NIGHT = (np.array([0.05, 0.06, 0.09]), np.array([0.01, 0.015, 0.035]))
OVERCAST = (np.array([0.72, 0.74, 0.76]), np.array([0.55, 0.58, 0.62]))


def sky_colors(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(horizon, zenith) colours, 0..1 RGB, for the scene's sun and weather."""
    e = math.degrees(scene.sun.elevation)
    if e < -6:
        hz, zn = NIGHT
    elif e < 8:  # civil twilight to low sun: blend night -> dusk -> day
        t = (e + 6) / 14
        hz = (1 - t) * NIGHT[0] + t * DUSK[0] if t < 0.5 else (2 - 2 * t) * DUSK[0] + (2 * t - 1) * DAY[0]
        zn = (1 - t) * NIGHT[1] + t * DUSK[1] if t < 0.5 else (2 - 2 * t) * DUSK[1] + (2 * t - 1) * DAY[1]
    else:
        hz, zn = DAY
    if scene.weather.kind != "clear":
        grey = OVERCAST[0] * max(0.08, min(1.0, (e + 6) / 20))
        hz, zn = 0.2 * hz + 0.8 * grey, 0.2 * zn + 0.8 * grey * 0.9
    return hz, zn


def sky_image(scene: Scene, mask: np.ndarray | None = None) -> np.ndarray:
    """Sky colour, 0..1, a gradient over each pixel's ray elevation: (H, W, 3) float32, or
    (N, 3) for the N pixels of a boolean ``mask`` (H, W) in row-major order."""
    cam: Camera = scene.camera
    R = cam.world_from_camera()[:3, :3].astype(np.float32)
    u, v = normalized_coords(cam)
    if mask is not None:
        rows, cols = np.nonzero(mask)
        u, v = u[0, cols], v[rows, 0]
    up = R[2, 0] * u + R[2, 1] * v + R[2, 2]  # world z of each pixel's ray (camera z = 1)
    sin_elev = up / np.sqrt(u * u + v * v + 1.0)
    t = np.clip(np.arcsin(np.clip(sin_elev, -1, 1)) / (math.pi / 3), 0.0, 1.0)[..., None] ** 0.6
    hz, zn = sky_colors(scene)
    return (hz + t * (zn - hz)).astype(np.float32)
