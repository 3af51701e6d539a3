"""Low sun: veiling glare, lens flare ghosts and the sun's starburst, anchored at the sun's
pixel position (which may lie outside the image, as it does for a sun just off to the side).

- Veiling glare: light scattered in the eye or lens adds a veil that falls with the angle
  theta from the glare source; the CIE disability glare equation has ``L_veil ~ E / theta^2``
  (theta in degrees, valid from about 1 to 30 degrees). The veil here is
  ``strength x theta0^2 / (theta^2 + theta0^2)`` plus a wide halo for scattering in the optics;
  it is additive, so it lowers contrast most where the scene is dark.
- Flare ghosts: inter-reflections between lens elements image the sun as soft discs on the line
  from the sun through the image centre (the optical axis), at fixed fractions along it.
- Starburst: diffraction at the aperture blades spreads a visible sun into spikes.
A surface in front of the sun (finite depth at its pixel) hides the disc and the starburst and
leaves a weaker veil.

``sample_flare`` draws the random layout into a ``FlareSample``; ``sun_glare`` is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from longtail.render.weather.geometry import clean_depth, peak
from longtail.worlds.scene import Camera

SUN_COLOR = (1.0, 0.86, 0.62)  # a low sun through a long air path: warm
THETA0_DEG = 1.5
HALO_DEG = 12.0
REDUCE = 2  # glare is smooth: drawn at half resolution, upsampled once


@dataclass(frozen=True)
class Ghost:
    """A flare ghost: position along the axis (0 = sun, 1 = image centre, 2 = mirrored), radius
    as a fraction of the image diagonal, colour (3,) 0..1 and peak brightness."""

    along: float
    radius: float
    color: tuple[float, float, float]
    gain: float


@dataclass(frozen=True)
class FlareSample:
    """The random part of a flare: its ghosts and the starburst's rotation."""

    ghosts: tuple[Ghost, ...]
    spikes: int
    spike_angle: float  # radians


def sun_pixel(camera: Camera, elevation_deg: float, azimuth_deg: float) -> tuple[float, float] | None:
    """Pixel (u, v) of the sun at ``elevation_deg`` above the horizon and ``azimuth_deg`` to the
    left of the camera's heading, or None if it is behind the camera."""
    e, a = math.radians(elevation_deg), camera.yaw + math.radians(azimuth_deg)
    d = np.array([[math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]]) * 1e6
    uv, z = camera.project(d + np.asarray(camera.position))
    return None if z[0] <= 0 else (float(uv[0, 0]), float(uv[0, 1]))


def sample_flare(rng: np.random.Generator, ghosts: int = 5) -> FlareSample:
    """Draw ``ghosts`` flare ghosts and a starburst of 6 or 8 spikes."""
    tints = ((0.6, 0.9, 1.0), (1.0, 0.7, 0.4), (0.7, 1.0, 0.6), (0.9, 0.6, 1.0), (1.0, 0.95, 0.8))
    out = tuple(Ghost(float(rng.uniform(0.3, 2.2)), float(rng.uniform(0.01, 0.07)),
                      tints[int(rng.integers(len(tints)))], float(rng.uniform(0.05, 0.2))) for _ in range(ghosts))
    return FlareSample(out, int(rng.choice([6, 8])), float(rng.uniform(0, math.pi)))


def sun_visibility(depth: np.ndarray | None, sun_uv: tuple[float, float], radius_px: float) -> float:
    """Share 0..1 of the sun's disc (``radius_px`` around ``sun_uv``) not hidden by a surface;
    1 outside the image or without depth."""
    if depth is None:
        return 1.0
    H, W = depth.shape
    u, v = sun_uv
    u0, v0 = max(int(u - radius_px), 0), max(int(v - radius_px), 0)
    u1, v1 = min(int(u + radius_px) + 1, W), min(int(v + radius_px) + 1, H)
    if u1 <= u0 or v1 <= v0:
        return 1.0
    return float(np.mean(~np.isfinite(clean_depth(depth[v0:v1, u0:u1]))))


def glare_light(shape: tuple[int, int], camera: Camera, sun_uv: tuple[float, float], strength: float,
                sample: FlareSample, visible: float = 1.0, sun_color=SUN_COLOR) -> np.ndarray:
    """(ceil(H/2), ceil(W/2), 3) float32 light (0..1 units) the sun adds, at half resolution:
    veil + halo + ghosts + starburst."""
    H, W = shape
    h, w = -(-H // REDUCE), -(-W // REDUCE)
    f = 0.5 * (camera.fx + camera.fy)
    su, sv = sun_uv
    # angle from the sun of each low-res pixel centre, degrees (small-angle: pixels / f)
    x = ((np.arange(w, dtype=np.float32) + 0.5) * REDUCE - su)[None, :]
    y = ((np.arange(h, dtype=np.float32) + 0.5) * REDUCE - sv)[:, None]
    theta = np.degrees(np.arctan(np.sqrt(x * x + y * y) / np.float32(f)))
    veil_share = 0.35 + 0.65 * visible  # a hidden sun still lights the sky around it
    light = np.float32(strength * veil_share) * (np.float32(THETA0_DEG**2) / (theta * theta + np.float32(THETA0_DEG**2))
                                                 + np.float32(0.25) * np.exp(-theta / np.float32(HALO_DEG)))
    layer = cv2.merge([light * np.float32(c) for c in sun_color])
    diag = math.hypot(w, h)
    cu, cv_ = (camera.cx / REDUCE, camera.cy / REDUCE)
    ghosts = np.zeros((h, w, 3), np.float32)
    for g in sample.ghosts:
        gu = su / REDUCE + g.along * (cu - su / REDUCE)
        gv = sv / REDUCE + g.along * (cv_ - sv / REDUCE)
        color = tuple(float(strength * visible * g.gain * c) for c in g.color)
        cv2.circle(ghosts, (int(round(gu * 16)), int(round(gv * 16))), int(round(g.radius * diag * 16)), color, -1,
                   cv2.LINE_AA, shift=4)
    layer += cv2.GaussianBlur(ghosts, (0, 0), 1.0)
    if visible > 0 and -W * 0.2 < su < W * 1.2 and -H * 0.2 < sv < H * 1.2:
        layer += starburst((h, w), (su / REDUCE, sv / REDUCE), strength * visible, sample, sun_color)
    return layer


def starburst(shape: tuple[int, int], sun_uv: tuple[float, float], strength: float, sample: FlareSample,
              sun_color=SUN_COLOR) -> np.ndarray:
    """(h, w, 3) float32: the saturated sun disc with diffraction spikes, at ``sun_uv`` (pixels
    of that shape)."""
    h, w = shape
    out: np.ndarray = np.zeros((h, w, 3), np.float32)  # replaced by its blur below, still float32
    diag = math.hypot(w, h)
    c = (int(round(sun_uv[0] * 16)), int(round(sun_uv[1] * 16)))
    color = tuple(float(0.5 * strength * k) for k in sun_color)
    for i in range(sample.spikes):
        a = sample.spike_angle + 2.0 * math.pi * i / sample.spikes
        end = (int(round((sun_uv[0] + 0.35 * diag * math.cos(a)) * 16)),
               int(round((sun_uv[1] + 0.35 * diag * math.sin(a)) * 16)))
        cv2.line(out, c, end, color, 1, cv2.LINE_AA, shift=4)
    out = cv2.GaussianBlur(out, (0, 0), 0.8)
    cv2.circle(out, c, int(0.012 * diag * 16), (4.0, 4.0, 4.0), -1, cv2.LINE_AA, shift=4)
    return out


def sun_glare(image: np.ndarray, camera: Camera, sun_uv: tuple[float, float], strength: float,
              sample: FlareSample, depth: np.ndarray | None = None, sun_color=SUN_COLOR) -> np.ndarray:
    """Add the glare of a low sun at pixel ``sun_uv`` (may be outside the image).

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        camera: the image's camera (its focal length turns pixels into angles).
        sun_uv: the sun's pixel position (u, v).
        strength: 0..1 (1: the veil saturates within about a degree of the sun).
        sample: ``sample_flare`` for this frame.
        depth: (H, W) z-depth in metres (inf or 0 = sky) to hide a sun behind a surface, or None.
        sun_color: (3,) colour of the sunlight, 0..1.

    Returns:
        The image with glare, same shape and dtype (additive light saturates).
    """
    H, W = image.shape[:2]
    visible = sun_visibility(depth, sun_uv, 0.012 * math.hypot(W, H))
    light = glare_light((H, W), camera, sun_uv, strength, sample, visible, sun_color)
    if image.dtype == np.uint8:  # upsample the 8-bit light: a quarter of the bytes of float
        light8 = cv2.convertScaleAbs(light, alpha=255.0)
        return cv2.add(image, cv2.resize(light8, (W, H), interpolation=cv2.INTER_LINEAR))
    light = cv2.resize(light, (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(image + light * np.float32(peak(image)), 0.0, 1.0)
