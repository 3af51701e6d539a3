"""Rain: extinction, falling-drop streaks, wet surfaces and drops on the lens.

Physics used (see shared/REFERENCES.md, "Weather physics"):

- extinction by rain ``beta = 0.312 R^0.67`` per km (R in mm/h), added through the fog equation;
- Marshall-Palmer drop sizes ``N(D) = 8000 exp(-Lambda D)`` m^-3 mm^-1, ``Lambda = 4.1 R^-0.21``
  mm^-1: the number of drops above a diameter and each drop's diameter are drawn from it;
- terminal fall speed ``v(D) = 9.65 - 10.3 exp(-0.6 D)`` m/s (Atlas et al. 1973): a drop at
  distance z draws a streak ``v T f / z`` pixels long in an exposure of T seconds, and its light
  spreads over that length, so long (near) streaks are fainter per pixel (Garg & Nayar 2007);
- streaks exist only in front of the surface seen at their pixel (depth test), so open road
  shows rain from every distance and a near wall only the drops in front of it;
- a wet horizontal surface is darker (water fills the texture) and reflects by Fresnel (water,
  n = 1.33) the scene mirrored in the ground plane, blurred along the vertical by ripples.

Drawing is "sample, then apply": ``sample_rain`` draws every random value (streak positions and
drop sizes, lens drops, puddles) into a ``RainSample``; ``rain`` is deterministic given it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from longtail.render.weather.fog import DEFAULT_AIRLIGHT, koschmieder_beta
from longtail.render.weather.geometry import (blend, clean_depth, clip_, clip_float, every_kth, ground_pattern,
                                              ray_scale, ray_up, reflected_maps, subsampled_camera, upward_normal)
from longtail.render.weather.particles import (ParticleLayer, ambient_small, composite, frustum_volume, mix_small,
                                               scatter, split, transmission, weighted)
from longtail.worlds.scene import Camera

LAYER_EDGES_M = (0.5, 1.0, 2.0, 4.0, 8.0)  # streaks are drawn for drops in these slabs
MIN_DROP_MM = 1.0  # smaller drops make faint streaks; they count only in the extinction
# Share of the drops above MIN_DROP_MM drawn as streaks, falling as 1/z^2: a distant drop's
# streak is sub-pixel and blends into the veil the extinction term already accounts for.
RENDERED_SHARE_1M = 0.2
STREAK_GAIN = 5.0  # streak light relative to the drop's projected area x time over a pixel
DEFOCUS_PX_M = 1.5  # blur diameter (pixels) x distance (m) of a camera focused far away
WET_DARKENING = 0.45  # a soaked road's albedo drops by about half (water fills its texture)
WATER_R0 = 0.02  # Fresnel reflectance of water at normal incidence, ((1.33 - 1) / (1.33 + 1))^2
SURFACE_K = 4  # wetness, its reflection and the ambient light are worked out on every 4th pixel
FULL_INTENSITY_MM_H = 50.0  # the rain rate a scene's weather intensity 1 stands for (violent rain)


def rain_rate_mm_h(intensity: float) -> float:
    """Rain rate (mm/h) for a scene's weather intensity 0..1 (linear; 1 = 50 mm/h)."""
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {intensity}")
    return FULL_INTENSITY_MM_H * intensity


def rain_extinction_beta(rate_mm_h: float) -> float:
    """Extinction coefficient (1/m) of rain of ``rate_mm_h`` mm/h: 0.312 R^0.67 per km."""
    if rate_mm_h < 0:
        raise ValueError(f"rain_rate_mm_h must be >= 0, got {rate_mm_h}")
    return 0.312 * rate_mm_h**0.67 / 1000.0


def marshall_palmer_lambda(rate_mm_h: float) -> float:
    """Slope Lambda (1/mm) of the Marshall-Palmer drop size distribution."""
    return 4.1 * max(rate_mm_h, 1e-3) ** -0.21


def drops_per_m3(rate_mm_h: float, min_diameter_mm: float = MIN_DROP_MM) -> float:
    """Number of drops per cubic metre with diameter above ``min_diameter_mm`` (Marshall-Palmer)."""
    if rate_mm_h <= 0:
        return 0.0
    lam = marshall_palmer_lambda(rate_mm_h)
    return 8000.0 / lam * math.exp(-lam * min_diameter_mm)


def fall_speed(diameter_mm: np.ndarray | float) -> np.ndarray | float:
    """Terminal fall speed (m/s) of rain drops of the given diameter (Atlas et al. 1973)."""
    return np.maximum(9.65 - 10.3 * np.exp(-0.6 * np.asarray(diameter_mm)), 0.5)


@dataclass(frozen=True)
class LensDrop:
    """A water drop on the lens: centre (u, v) and radius in pixels; ``zoom`` < 0 inverts the view
    behind it as a ball lens does."""

    u: float
    v: float
    radius_px: float
    zoom: float


@dataclass(frozen=True)
class RainSample:
    """Every random draw of one rainy frame; ``rain`` is a deterministic function of it."""

    rate_mm_h: float
    slant: float  # radians, streak angle from the image vertical (wind), positive leans right
    layers: tuple[ParticleLayer, ...]
    drops: tuple[LensDrop, ...]
    puddles: np.ndarray  # (h, w) float32 0..1 texture of standing water, laid on the ground


def streak_count(rate_mm_h: float, z0: float, z1: float, camera: Camera) -> float:
    """Expected number of drawn streaks from drops between ``z0`` and ``z1`` metres: drops per
    m^3 x the volume of that slab of the view frustum x the rendered share at its distance."""
    return drops_per_m3(rate_mm_h) * frustum_volume(camera, z0, z1) * min(1.0, RENDERED_SHARE_1M / (z0 * z1))


def sample_rain(camera: Camera, rate_mm_h: float, rng: np.random.Generator, slant_deg: float = 0.0,
                exposure_s: float = 1 / 60, lens_drops: int = 0) -> RainSample:
    """Draw the streaks, lens drops and puddle pattern of one frame.

    Args:
        camera: the image's camera (size and focal length set streak sizes).
        rate_mm_h: rain rate, mm/h (>= 0).
        rng: the generator every draw comes from.
        slant_deg: streak angle from vertical (wind), degrees.
        exposure_s: exposure time; streak length is fall speed x exposure.
        lens_drops: number of drops on the lens.
    """
    if rate_mm_h < 0:
        raise ValueError(f"rain_rate_mm_h must be >= 0, got {rate_mm_h}")
    W, H = camera.width, camera.height
    f = 0.5 * (camera.fx + camera.fy)
    slant = math.radians(slant_deg)
    lam = marshall_palmer_lambda(rate_mm_h)
    slabs = list(zip(LAYER_EDGES_M[:-1], LAYER_EDGES_M[1:]))
    counts = rng.poisson([streak_count(rate_mm_h, z0, z1, camera) for z0, z1 in slabs])
    diam = MIN_DROP_MM + rng.exponential(1.0 / lam, int(counts.sum()))  # Marshall-Palmer above the cut-off
    typical = MIN_DROP_MM + math.log(2.0) / lam  # the median drop: sets each slab's streak size
    z = [math.sqrt(z0 * z1) for z0, z1 in slabs]
    fall_px = float(fall_speed(typical)) * exposure_s * f  # streak length x distance
    lengths = [max(1, int(round(fall_px / zi))) for zi in z]
    widths = [max(1, int(round(max(typical * 1e-3 * f / zi, DEFOCUS_PX_M / zi)))) for zi in z]
    # light of one drop: its projected area over the pixel for the time it crosses it
    d_px = diam * 1e-3 * f / np.repeat(z, counts)
    value = (STREAK_GAIN * np.minimum(d_px, np.repeat(widths, counts)) * (1.0 + d_px)).astype(np.float32)
    values = split(value, counts)
    layers = [ParticleLayer(zi, wi, li, 0.0, x, y, v) for zi, wi, li, (x, y), v
              in zip(z, widths, lengths, scatter(rng, counts, camera, slant, lengths), values)]
    n = int(lens_drops)
    drops = tuple(LensDrop(float(u), float(v), float(r), float(zoom)) for u, v, r, zoom in
                  zip(rng.uniform(0, W, n), rng.uniform(0, H, n), rng.uniform(0.02, 0.06, n) * H,
                      rng.uniform(-0.9, -0.4, n)))
    puddles = rng.random((32, 32), dtype=np.float32)
    return RainSample(rate_mm_h, slant, tuple(layers), drops, puddles)


def fresnel_water(cos_incidence: np.ndarray) -> np.ndarray:
    """Schlick's approximation of the reflectance of water for the cosine of the angle between
    the view ray and the surface normal."""
    x = 1.0 - clip_(cos_incidence, 0.0, 1.0).astype(np.float32)
    x2 = x * x
    return np.float32(WATER_R0) + np.float32(1.0 - WATER_R0) * (x2 * x2 * x)  # (1 - c)^5, no pow


def mirror_image(image: np.ndarray, camera: Camera, rows: slice, k: int = 4) -> np.ndarray:
    """The scene mirrored in the ground plane, seen at image ``rows`` (``rows.start`` to the
    bottom): built at 1/k resolution and blurred along the vertical (ripples stretch it)."""
    H, W = image.shape[:2]
    r0 = rows.start // k
    refl = _mirror_small(np.ascontiguousarray(image[::k, ::k]), camera, r0, k)
    return cv2.resize(refl, (W, H - k * r0), interpolation=cv2.INTER_LINEAR)[rows.start - k * r0:]


def _mirror_small(small: np.ndarray, camera: Camera, r0: int, k: int) -> np.ndarray:
    """``mirror_image`` at 1/k resolution from ``small`` = ``image[::k, ::k]``, rows r0 on."""
    m1, m2 = reflected_maps(subsampled_camera(camera, k))
    # every k-th pixel: the blur below hides the aliasing
    refl = cv2.remap(small, m1[r0:], m2[r0:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.blur(refl, (1, 5))


def wet_weights(small: np.ndarray, depth: np.ndarray, camera: Camera, wetness: float, puddles: np.ndarray,
                k: int = 4) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """The wet road at 1/k resolution: ``(r0, keep, F, mirror)`` for the rows of ``small`` =
    ``image[::k, ::k]`` from r0 down (the first holding a horizontal surface), with ``keep``
    the share of the surface's own light left (darkened, less what is reflected), ``F`` the
    Fresnel reflectance and ``mirror`` the mirrored scene; None where nothing is wet. The wet
    image is ``image keep + mirror F`` (``wet_surfaces``)."""
    if wetness <= 0:
        return None
    nz = upward_normal(depth, camera, k)
    rows = np.flatnonzero(nz.max(axis=1) > 0.6)
    if rows.size == 0:
        return None
    r0 = int(rows[0])  # only rows holding horizontal surfaces need work
    nz = nz[r0:]
    flat = clip_((nz - np.float32(0.6)) / np.float32(0.3), 0.0, 1.0)  # 0 on walls, 1 on the road
    patch = ground_pattern(depth, camera, puddles, 1.5, k, octaves=1, first_row=r0)
    wet = clip_(np.float32(0.4) + np.float32(0.8) * patch, 0.0, 1.0, out=patch)
    wet *= flat
    wet *= np.float32(wetness)
    F = fresnel_water(-ray_up(subsampled_camera(camera, k))[r0:] * nz)
    F *= wet
    keep = np.float32(1.0) - np.float32(WET_DARKENING) * wet
    keep *= np.float32(1.0) - F
    return r0, keep, F, _mirror_small(small, camera, r0, k)


def _half_res_surface(T: np.ndarray, r0: int, k: int, **maps: np.ndarray) -> dict:
    """``composite``'s surface arguments from maps made on the 1/k grid from its row r0: each
    resized to the half-resolution rows of ``T`` they cover."""
    h, w = T.shape
    rh = r0 * k // 2
    return {"r0": rh, **{name: cv2.resize(m, (w, h - rh), interpolation=cv2.INTER_LINEAR) for name, m in maps.items()}}


def _low_res_transmission(depth: np.ndarray, camera: Camera, beta: float, r0: int, k: int) -> np.ndarray:
    """Haze transmission on every k-th pixel of ``depth`` from row r0 (of the 1/k grid) down."""
    t = cv2.multiply(np.ascontiguousarray(depth[k * r0::k, ::k]), ray_scale(subsampled_camera(camera, k))[r0:],
                     scale=-float(beta))
    return cv2.exp(cv2.max(t, -80.0, dst=t), dst=t)  # (see particles.transmission)


def wet_surfaces(image: np.ndarray, depth: np.ndarray, camera: Camera, wetness: float,
                 puddles: np.ndarray, k: int = 4) -> np.ndarray:
    """Darken upward-facing surfaces and add the Fresnel reflection of the mirrored scene.

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        depth: (H, W) z-depth in metres, inf = sky.
        camera: the image's camera.
        wetness: 0 (dry) .. 1 (soaked).
        puddles: (h, w) 0..1 standing-water texture, laid on the ground at 1.5 m per texel.
        k: the per-pixel weights are computed on every k-th pixel (they are smooth).

    Returns:
        A new image of the same dtype. (``rain`` folds this into its one composite.)
    """
    wet = wet_weights(every_kth(image, k), clean_depth(depth), camera, wetness, puddles, k)
    if wet is None:
        return image.copy()
    r0, keep, F, mirror = wet
    # no haze: T = 1, so the ambient term vanishes
    T = np.ones((-(-depth.shape[0] // 2), -(-depth.shape[1] // 2)), np.float32)
    return composite(image, T, np.zeros((1, 1, 3), image.dtype),
                     **_half_res_surface(T, r0, k, keep=keep, add=weighted(mirror, F)))


def _soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian-like blur of ``sigma`` pixels: OpenCV's stack blur (a triangle filter of the
    same variance, ``((r + 1)^2 - 1) / 6`` for a kernel of 2 r + 1), whose cost does not grow
    with sigma as ``GaussianBlur``'s does."""
    r = max(1, int(round(math.sqrt(6.0 * sigma * sigma + 1.0) - 1.0)))
    return cv2.stackBlur(image, (2 * r + 1, 2 * r + 1))


def lens_drops(image: np.ndarray, drops: tuple[LensDrop, ...]) -> np.ndarray:
    """Water drops on the lens: each disc shows a blurred, inverted, zoomed view of the scene
    around it (a drop is a small ball lens far out of focus), with a soft edge. In place."""
    H, W = image.shape[:2]
    for d in drops:
        r = d.radius_px
        u0, v0 = max(int(d.u - r - 2), 0), max(int(d.v - r - 2), 0)
        u1, v1 = min(int(d.u + r + 3), W), min(int(d.v + r + 3), H)
        if u1 <= u0 or v1 <= v0:
            continue
        du = (np.arange(u0, u1, dtype=np.float32) - np.float32(d.u))[None, :]
        dv = (np.arange(v0, v1, dtype=np.float32) - np.float32(d.v))[:, None]
        r2 = (du * du + dv * dv) * np.float32(1.0 / (r * r))
        bend = np.float32(d.zoom) * (np.float32(1.0) + np.float32(0.5) * r2)  # bends more towards its rim
        view = cv2.remap(image, np.float32(d.u) + du * bend, np.float32(d.v) + dv * bend, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
        view = _soft(view, max(r / 6.0, 0.8))
        rr = np.sqrt(r2, out=r2)
        alpha = clip_((1.0 - rr) * 4.0, 0.0, 1.0) * np.float32(0.9)
        roi = image[v0:v1, u0:u1]
        roi[...] = blend(roi, view, 1.0 - alpha, alpha)
    return image


def rain(image: np.ndarray, depth: np.ndarray, camera: Camera, sample: RainSample, wetness: float = 1.0,
         airlight=DEFAULT_AIRLIGHT, visibility_m: float | None = None) -> np.ndarray:
    """Rain over an image from its depth map.

    Order follows the light: wet surfaces, then extinction on the way to the camera (rain plus
    optional extra haze of ``visibility_m``), then streaks of the drops in front, then the lens.
    Haze and streaks both scatter the ambient light (``particles.scatter_composite``).

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        depth: (H, W) float32 z-depth in metres; inf or 0 = sky.
        camera: the image's camera.
        sample: ``sample_rain`` for this frame.
        wetness: 0..1 wetness of horizontal surfaces.
        airlight: haze colour (3,), 0..1; the floor of the ambient light.
        visibility_m: extra haze (mist, spray) as a meteorological visibility, or None.

    Returns:
        The rainy image, same shape and dtype.
    """
    depth = clean_depth(depth)
    # wet surfaces, extinction and streaks in one composite: J T + E (1 - T), T = t (1 - a), with
    # the wet J = image keep + mirror F; the ambient E is lit by the wet scene at 1/4 resolution
    small = every_kth(image, SURFACE_K)
    beta = rain_extinction_beta(sample.rate_mm_h) + (koschmieder_beta(visibility_m) if visibility_m else 0.0)
    T = transmission(depth, camera, beta, sample.layers, sample.slant)
    wet = wet_weights(small, depth, camera, wetness, sample.puddles, SURFACE_K)
    surface = {}
    if wet is not None:
        r0, keep, F, mirror = wet
        # the reflection is smooth (blurred by ripples, weighted by a smooth Fresnel term): made
        # at 1/k resolution and attenuated by the haze there (the streaks over it are ignored)
        reflected = weighted(mirror, F * _low_res_transmission(depth, camera, beta, r0, SURFACE_K))
        surface = _half_res_surface(T, r0, SURFACE_K, keep=keep, add=reflected)
        mix_small(small, r0, keep, mirror, F)
    out = composite(image, T, ambient_small(small, airlight, image.shape), **surface)
    return clip_float(lens_drops(out, sample.drops))
