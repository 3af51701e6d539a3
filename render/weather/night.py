"""Night and dusk from a day frame: darken, light with artificial lights, night sky, then the
camera: ego-motion blur of a long exposure and the sensor noise of a high gain.

The renderer treats a day frame as albedo under daylight of 1 (``lighting.night_shading``
does the same for its unlit night renders), so night is the same deferred shading: albedo x
(ambient + irradiance from the lights, from positions and normals recovered from depth) through
the renderer's exposure curve. The sky is replaced by the night (or dusk) gradient.

Sensor noise is Poisson-Gaussian: at gain g a pixel of value x (0..1) has standard deviation
``sqrt(g x / full_well + (g read_noise / full_well)^2)``; a night exposure raises g, so noise
grows where the day frame had none. Ego-motion blur: during an exposure the camera moves d
metres forward, and a point at depth z slides radially from the focus of expansion by
``d / z`` of its distance from it, so near things blur and the sky does not.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from longtail.render.lighting import EXPOSURE, HEADLIGHT, LOW_BEAM, Light, night_shading
from longtail.render.sky import DUSK, NIGHT, fill, sky_gradient
from longtail.render.weather.geometry import clean_depth, peak
from longtail.worlds.scene import Camera

SKIES = {"night": NIGHT, "dusk": DUSK}
FULL_WELL_E = 10000.0  # electrons at saturation (small automotive pixel)
READ_NOISE_E = 5.0


def ego_headlights(camera: Camera) -> list[Light]:
    """The low beams of the camera's own car (one source for the pair, as ``scene_lights``
    places them): 1.5 m ahead of the camera along its heading, 0.75 m above the ground."""
    x, y, _ = camera.position
    c, s = math.cos(camera.yaw), math.sin(camera.yaw)
    return [Light((x + 1.5 * c, y + 1.5 * s, 0.75), (1.0, 0.97, 0.9), 2 * HEADLIGHT, (c, s, -0.02),
                  beam_deg=LOW_BEAM, range_m=90.0)]


def day_to_night(image: np.ndarray, depth: np.ndarray, camera: Camera, ambient: float = 0.03,
                 lights: list[Light] | tuple[Light, ...] = (), sky: str = "night") -> np.ndarray:
    """Relight a day frame at night or dusk.

    Args:
        image: (H, W, 3) uint8 or float32 0..1 day frame, read as albedo.
        depth: (H, W) float32 z-depth in metres; inf or 0 = sky.
        camera: the image's camera (world frame of ``lights``).
        ambient: skylight left, as a fraction of daylight (0.03 night, 0.2-0.5 dusk).
        lights: artificial lights in the camera's world frame (``ego_headlights``, lamps).
        sky: "night" or "dusk": the sky gradient drawn where there is no surface.

    Returns:
        The relit frame, same shape and dtype.
    """
    if sky not in SKIES:
        raise ValueError(f"sky must be one of {sorted(SKIES)}, got {sky!r}")
    depth = clean_depth(depth)
    albedo = image.astype(np.float32) * np.float32(1.0 / peak(image))
    if lights:
        lit = night_shading(albedo, depth, camera, list(lights), ambient)
    else:
        lit = 1.0 - np.exp(np.float32(-EXPOSURE * ambient) * albedo)
    sky_mask = ~np.isfinite(depth)
    if sky_mask.any():
        fill(lit, sky_mask, sky_gradient(camera, *SKIES[sky], sky_mask))
    if image.dtype == np.uint8:
        return cv2.convertScaleAbs(lit, alpha=255.0)
    return np.clip(lit, 0.0, 1.0, out=lit)


def sensor_noise(image: np.ndarray, gain: float, seed: int) -> np.ndarray:
    """Add Poisson-Gaussian noise of analogue ``gain`` (1 = base ISO), drawn from
    ``numpy.random.default_rng(seed)``. Same shape and dtype as ``image``.

    One (H, W) normal field serves the three channels read in three orders (as is, flipped
    vertically, flipped horizontally), so each channel of a pixel gets an independent sample
    for a third of the drawing cost.
    """
    if gain < 0:
        raise ValueError(f"gain must be >= 0, got {gain}")
    if gain == 0:
        return image.copy()
    pk = np.float32(peak(image))
    H, W = image.shape[:2]
    n = np.random.default_rng(seed).standard_normal((H, W), dtype=np.float32)
    field = cv2.merge([n, np.ascontiguousarray(n[::-1]), np.ascontiguousarray(n[:, ::-1])])
    work = image.astype(np.float32)
    sigma = work * np.float32(gain / FULL_WELL_E / pk)  # variance in 0..1 units, per channel
    sigma += np.float32((gain * READ_NOISE_E / FULL_WELL_E) ** 2)
    cv2.sqrt(sigma, dst=sigma)
    cv2.multiply(sigma, field, dst=sigma, scale=float(pk))
    work += sigma
    if image.dtype == np.uint8:
        return cv2.convertScaleAbs(np.maximum(work, 0.0, out=work))
    return np.clip(work, 0.0, 1.0, out=work)


def focus_of_expansion(camera: Camera) -> tuple[float, float] | None:
    """Pixel (u, v) the camera's car drives towards (its horizontal heading), or None when that
    direction is behind the image plane."""
    d = np.array([[math.cos(camera.yaw), math.sin(camera.yaw), 0.0]]) * 1e6 + np.asarray(camera.position)
    uv, z = camera.project(d)
    return None if z[0] <= 0 else (float(uv[0, 0]), float(uv[0, 1]))


def ego_motion_blur(image: np.ndarray, depth: np.ndarray, camera: Camera, displacement_m: float,
                    samples: int = 4) -> np.ndarray:
    """Average ``samples`` views along the exposure, in which the car advances ``displacement_m``
    (speed x exposure time): a pixel at depth z samples the image at the focus of expansion plus
    (1 - s / z) of its offset from it, s from 0 to ``displacement_m``. Same dtype as ``image``."""
    if displacement_m <= 0 or samples < 2:
        return image.copy()
    foe = focus_of_expansion(camera)
    if foe is None:
        return image.copy()
    H, W = depth.shape
    inv_z = np.where(np.isfinite(depth), 1.0 / np.maximum(clean_depth(depth), 0.5), 0.0).astype(np.float32)
    u = np.broadcast_to(np.arange(W, dtype=np.float32)[None, :], (H, W))
    v = np.broadcast_to(np.arange(H, dtype=np.float32)[:, None], (H, W))
    # sample s moves each pixel towards the focus of expansion by s/z of its offset: map = p - s (p - foe)/z
    step_u = np.ascontiguousarray((u - np.float32(foe[0])) * inv_z)
    step_v = np.ascontiguousarray((v - np.float32(foe[1])) * inv_z)
    u, v = np.ascontiguousarray(u), np.ascontiguousarray(v)
    wide = cv2.CV_16U if image.dtype == np.uint8 else cv2.CV_32F  # 8-bit sums fit in 16 bits
    acc: np.ndarray = image.astype(np.uint16 if image.dtype == np.uint8 else np.float32)
    for i in range(1, samples):
        s = -float(displacement_m * i / (samples - 1))
        view = cv2.remap(image, cv2.scaleAdd(step_u, s, u), cv2.scaleAdd(step_v, s, v), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        cv2.add(acc, view, dst=acc, dtype=wide)
    if image.dtype == np.uint8:
        return cv2.convertScaleAbs(acc, alpha=1.0 / samples)
    return acc * np.float32(1.0 / samples)
