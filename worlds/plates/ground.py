"""The plate's ground: per-pixel depth of the plane z = 0 seen by the plate camera, the depth
map a plate stores (a far backdrop at and above the horizon, occluders at the depth of their
foot), and the sky region and airlight colour fog and haze use.

Depth model (keep it simple): below the horizon each pixel sees the ground plane z = 0. Pixels at
or above the horizon, and ground farther than ``far_m``, get ``far_m``: a distant backdrop, so
inserted objects pass in front of it and fog treats it as far away. Vertical structures below
the horizon (walls, parked vans) are not modelled, except through occluder masks: an occluder
pixel takes the ground depth at the structure's foot, the first non-occluder pixel below it in
its column.
"""

from __future__ import annotations

import numpy as np

from longtail.worlds.scene import Camera, vec3

# depth at and above the horizon of a ground-plane depth prior for footage without depth (the
# weather stage over real frames: training's ``train.weather.GroundPrior``, ``augment --ramp``)
PRIOR_FAR_M = 250.0


def scaled_camera(camera: Camera, height: int, width: int) -> Camera:
    """``camera`` (a plate's, at its own size) for images of ``height`` x ``width``: the
    intrinsics scaled with the image, the pose unchanged."""
    sx, sy = width / camera.width, height / camera.height
    return camera.model_copy(update={"width": width, "height": height, "fx": camera.fx * sx, "cx": camera.cx * sx,
                                     "fy": camera.fy * sy, "cy": camera.cy * sy})


def _ray_z(camera: Camera) -> np.ndarray:
    """(H, W) world-z component of each pixel centre's ray, scaled so its camera-frame z is 1:
    a point at z-depth d along the ray has world height ``position_z + d * ray_z``."""
    R = camera.world_from_camera()[:3, :3]
    x = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
    y = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
    return R[2, 0] * x[None, :] + R[2, 1] * y[:, None] + R[2, 2]


def ground_depth(camera: Camera) -> np.ndarray:
    """(H, W) float32 z-depth (metres) of the ground plane z = 0 seen through each pixel centre;
    inf where the ray does not descend (at and above the horizon)."""
    rz = _ray_z(camera)
    with np.errstate(divide="ignore"):
        depth = np.where(rz < 0, -camera.position[2] / rz, np.inf)
    return depth.astype(np.float32)


def plate_depth(camera: Camera, occluders: np.ndarray | None = None, far_m: float | None = None) -> np.ndarray:
    """(H, W) float32 z-depth of a plate (metres): the ground, ``far_m`` beyond it and above the
    horizon (default ``camera.far``), and on occluder pixels the ground depth at the occluder's
    foot (the first non-occluder pixel below in the same column; the bottom row's own ground
    if the occluder reaches the image bottom)."""
    far = np.float32(camera.far if far_m is None else far_m)
    depth = np.minimum(ground_depth(camera), far)
    if occluders is None or not occluders.any():
        return depth
    out = depth.copy()
    for r in range(camera.height - 2, -1, -1):  # bottom-up, so each foot depth carries upwards
        out[r] = np.where(occluders[r], out[r + 1], depth[r])
    return out


def sky_region(camera: Camera) -> tuple[np.ndarray, str]:
    """(H, W) bool pixels to look for the sky in, and their name: the pixels above the horizon
    ("above_horizon"), or the top tenth of the image ("top_rows") when less than 1 % of it is
    above the horizon (a camera looking down sees no sky)."""
    above = _ray_z(camera) >= 0
    if above.mean() >= 0.01:
        return above, "above_horizon"
    top = np.zeros_like(above)
    top[: max(1, camera.height // 10)] = True
    return top, "top_rows"


def estimate_airlight(image: np.ndarray, region: np.ndarray) -> tuple[float, float, float]:
    """Haze / sky colour (r, g, b), 0..1 as image value / 255, from the pixels of ``region``
    ((H, W) bool, see ``sky_region``).

    Sky and haze are bright and grey, unlike foliage and facades: the estimate is the median
    colour of the brightest tenth of the region's low-saturation pixels, leaving out clipped
    ones (their colour is lost). It falls back to all of the region's pixels when fewer than
    50 qualify.
    """
    px = image[region].astype(np.float32)
    hi, lo = px.max(1), px.min(1)
    grey = px[((hi - lo) < 0.2 * np.maximum(hi, 1.0)) & (hi < 250)]
    cand = grey if len(grey) >= 50 else px
    lum = cand @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    bright = cand[lum >= np.quantile(lum, 0.9)]
    return vec3(np.median(bright, axis=0) / 255.0)


