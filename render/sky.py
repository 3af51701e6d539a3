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
SUN_DISK_RAD = math.radians(0.8)  # drawn larger than the real 0.27 deg so it spans a few pixels
SUN_GLOW_RAD = math.radians(6.0)


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
    hz, zn = sky_colors(scene)
    cam = scene.camera
    u, v = _pixel_coords(cam, mask)
    sky = _gradient(cam, hz, zn, u, v)
    e = scene.sun.elevation
    if e > math.radians(-2.0) and scene.weather.kind == "clear":  # the sun's disk and its aureole
        R = cam.world_from_camera()[:3, :3].astype(np.float32)
        s_dir = np.array([math.cos(e) * math.cos(scene.sun.azimuth), math.cos(e) * math.sin(scene.sun.azimuth),
                          math.sin(e)], np.float32)
        cos_a = sum((R[i, 0] * u + R[i, 1] * v + R[i, 2]) * s_dir[i] for i in range(3)) / np.sqrt(u * u + v * v + 1.0)
        warm = np.array([1.0, 0.85, 0.6] if e < math.radians(12) else [1.0, 0.97, 0.9], np.float32)
        ang2 = 2.0 * (1.0 - cos_a)  # squared angle to the sun, for small angles (no arccos)
        glow = 0.55 * np.exp(-ang2 / SUN_GLOW_RAD**2) + (cos_a > math.cos(SUN_DISK_RAD))
        for c in range(3):  # channel by channel: (N,) operands, where (N, 1) x (3,) broadcasting is slow
            sky[..., c] += glow * warm[c]
    return np.clip(sky, 0.0, 1.0, out=sky)


def _pixel_coords(cam: Camera, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates of every pixel ((1, W) and (H, 1)), or of the pixels of ``mask``
    ((N,) each, row-major)."""
    u, v = normalized_coords(cam)
    if mask is None:
        return u, v
    rows, cols = np.divmod(np.flatnonzero(mask), mask.shape[1])  # np.nonzero's order, faster
    return u[0, cols], v[rows, 0]


def sky_gradient(cam: Camera, horizon: np.ndarray, zenith: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The gradient from ``horizon`` to ``zenith`` colour (3,) over each pixel's ray elevation
    as ``sky_image`` draws it: (H, W, 3) float32, or (N, 3) for the pixels of ``mask``."""
    return _gradient(cam, horizon, zenith, *_pixel_coords(cam, mask))


def _gradient(cam: Camera, horizon: np.ndarray, zenith: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    R = cam.world_from_camera()[:3, :3].astype(np.float32)
    up = R[2, 0] * u + R[2, 1] * v + R[2, 2]  # world z of each pixel's ray (camera z = 1)
    sin_elev = up / np.sqrt(u * u + v * v + 1.0)
    t = np.clip(np.arcsin(np.clip(sin_elev, -1, 1)) / (math.pi / 3), 0.0, 1.0) ** 0.6
    hz, zn = np.asarray(horizon), np.asarray(zenith)
    out = np.empty((*t.shape, 3), np.float32)
    for c, (h, d) in enumerate(zip(hz, zn - hz)):  # hz + t * (zn - hz) in the colours' precision, per channel
        out[..., c] = h + t * d
    return out


def fill(img: np.ndarray, mask: np.ndarray, colours: np.ndarray) -> None:
    """``img[mask] = colours`` for an (H, W, C) image, a boolean (H, W) mask and (N, C) colours,
    channel by channel: the same pixels, several times faster than numpy's (N, C) assignment."""
    for c in range(img.shape[-1]):
        img[..., c][mask] = colours[:, c]
