"""Fog by Koschmieder's law / Beer-Lambert attenuation, homogeneous or thinning with height.

``I = J * t + A * (1 - t)``, ``t = exp(-tau)``, optical depth ``tau = integral of beta along the
ray``; for homogeneous fog ``tau = beta * d``. Meteorological visibility V (5 % contrast
threshold) relates to the extinction coefficient by ``beta = -ln(0.05) / V ~= 3 / V``.
Height-dependent (ground) fog: ``beta(z) = beta0 * exp(-z / H)`` above the ground (world z = 0),
integrated in closed form along each pixel's ray, so looking up through a fog layer sees a
finite optical depth and the sky stays blue-ish above it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from longtail.render.weather.geometry import blend, clean_depth, every_kth, ray_scale, ray_up, solid
from longtail.worlds.scene import Camera

CONTRAST_THRESHOLD = 0.05
DEFAULT_AIRLIGHT = (0.76, 0.78, 0.80)  # overcast horizon, linear-ish 0..1 (render.sky.OVERCAST)


def koschmieder_beta(visibility_m: float) -> float:
    """Extinction coefficient (1/m) for a meteorological visibility in metres."""
    if not visibility_m > 0:
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


def height_fog_optical_depth(distance_m: np.ndarray, up: np.ndarray, camera_z_m: float, beta_ground: float,
                             scale_height_m: float) -> np.ndarray:
    """Optical depth (H, W) along rays through fog with ``beta(z) = beta_ground * exp(-z / H)``.

    Args:
        distance_m: (H, W) ray distances in metres, inf = sky.
        up: (H, W) world-z component of each unit ray (``geometry.ray_up``).
        camera_z_m: camera height above the ground (world z = 0), metres.
        beta_ground: extinction coefficient at the ground, 1/m.
        scale_height_m: H, the height over which the fog thins by a factor e, metres.
    """
    H = np.float32(scale_height_m)
    at_camera = np.float32(beta_ground * math.exp(-camera_z_m / scale_height_m))
    d = np.where(np.isfinite(distance_m), distance_m, np.float32(0.0)).astype(np.float32)
    x = d * up / H
    small = np.abs(x) < 1e-4
    # integral of exp(-s up / H) ds over [0, d] = d * (1 - exp(-x)) / x, -> d as x -> 0
    factor = np.where(small, np.float32(1.0), -np.expm1(-x) / np.where(small, np.float32(1.0), x))
    tau = at_camera * d * factor
    sky = ~np.isfinite(distance_m)
    sky_tau = np.where(up > 1e-4, at_camera * H / np.maximum(up, np.float32(1e-4)), np.float32(np.inf))
    return np.where(sky, sky_tau, tau).astype(np.float32)


def optical_depth(depth: np.ndarray, camera: Camera, visibility_m: float,
                  scale_height_m: float | None = None) -> np.ndarray:
    """(H, W) float32 fog optical depth for a z-depth map (metres, inf/0 = sky): homogeneous
    with visibility ``visibility_m``, or ground fog of that visibility at the ground thinning
    with ``scale_height_m``."""
    dist = clean_depth(depth) * ray_scale(camera)
    beta = koschmieder_beta(visibility_m)
    if scale_height_m is None:
        return dist * np.float32(beta)
    return height_fog_optical_depth(dist, ray_up(camera), camera.position[2], beta, scale_height_m)


def estimate_airlight(image: np.ndarray, depth: np.ndarray | None,
                     overcast: bool = False) -> tuple[float, float, float]:
    """Airlight colour (3,) 0..1 for an image: the sky just above the horizon (the lowest tenth
    of the rows holding sky), half desaturated (fog is whiter than a blue sky), fully for an
    ``overcast`` sky (rain, snow). Without sky pixels: the default scaled by the frame's
    brightness, so a night frame gets a dark airlight."""
    pk = 255.0 if image.dtype == np.uint8 else 1.0
    img = image[::4, ::4]  # a colour estimate: every 16th pixel is plenty
    sky = None
    if depth is not None:
        d = every_kth(depth, 4) if depth.ndim == 2 and depth.dtype == np.float32 else depth[::4, ::4]
        sky = ~((d > 0) & (d < np.inf))  # 0, negative, nan or inf: no surface
    if sky is not None and np.count_nonzero(sky) > 0.002 * sky.size:
        rows = np.flatnonzero(sky.any(axis=1))
        low = rows[int(0.9 * (rows.size - 1)):]
        band = sky[low[0]:low[-1] + 1]
        color = img[low[0]:low[-1] + 1][band].reshape(-1, 3).mean(axis=0) / pk
    else:
        level = float(img.mean()) / pk / 0.45
        color = np.asarray(DEFAULT_AIRLIGHT) * min(max(level, 0.05), 1.0)
    grey = float(np.dot(color, (0.2126, 0.7152, 0.0722)))
    mix = 1.0 if overcast else 0.5
    r, g, b = (float(np.clip(c + mix * (grey - c), 0.0, 1.0)) for c in color)
    return r, g, b


def attenuate(image: np.ndarray, transmission: np.ndarray, airlight) -> np.ndarray:
    """``I = J t + A (1 - t)`` for an image of either dtype (uint8 0..255 or float32 0..1);
    ``transmission`` (H, W) float32, ``airlight`` (3,) in 0..1. Returns the input dtype.

    uint8 goes through one OpenCV blend; float32 takes ``fog``'s arithmetic, so the renderer's
    float frames come out exactly as before.
    """
    t = transmission.astype(np.float32, copy=False)
    if image.dtype == np.uint8:
        return blend(image, solid(image, airlight), t, 1.0 - t)
    t = t[..., None]
    out = image * t  # J t + A (1 - t), the same float32 operations, summed in place
    out += np.asarray(airlight, np.float32) * (1.0 - t)
    return out.astype(np.float32, copy=False)


def scatter_blur(image: np.ndarray, transmission: np.ndarray, sigma_px: float) -> np.ndarray:
    """Forward scattering softens what lies deep in fog: blend towards a Gaussian blur of sigma
    ``sigma_px`` with weight ``1 - t``. Same dtype as ``image``."""
    if sigma_px <= 0:
        return image
    t = transmission.astype(np.float32, copy=False)
    return blend(image, cv2.GaussianBlur(image, (0, 0), sigma_px), t, 1.0 - t)


def depth_fog(image: np.ndarray, depth: np.ndarray, camera: Camera, visibility_m: float,
              airlight=DEFAULT_AIRLIGHT, scale_height_m: float | None = None, blur_px: float = 0.0) -> np.ndarray:
    """Fog an image from its depth map.

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        depth: (H, W) float32 z-depth in metres; inf or 0 = sky.
        camera: the image's camera (``geometry.camera_for_image``).
        visibility_m: meteorological visibility (at the ground for height fog), metres.
        airlight: fog colour (3,), 0..1.
        scale_height_m: None for homogeneous fog, else the e-folding height of ground fog.
        blur_px: Gaussian sigma (pixels) reached by the most distant pixels; 0 = no blur.

    Returns:
        The fogged image, same shape and dtype.
    """
    tau = optical_depth(depth, camera, visibility_m, scale_height_m)
    # OpenCV's exp is faster; float frames keep numpy's so the renderer's bytes do not change
    # (uint8: OpenCV's exp is slow on -inf (sky) and on results that turn denormal: clamp first;
    # exp(-80) is 0 to any 8-bit image)
    t = cv2.exp(cv2.max(np.negative(tau, out=tau), -80.0, dst=tau)) if image.dtype == np.uint8 else np.exp(-tau)
    return attenuate(scatter_blur(image, t, blur_px), t, airlight)
