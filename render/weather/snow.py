"""Snow: falling flakes, snow cover on upward-facing surfaces, and the haze of snowfall.

- Flakes (2-10 mm aggregates, falling at about 1 m/s) are drawn in distance slabs like rain
  drops: a flake at distance z is ``D f / z`` pixels wide and blurred by defocus when near, its
  short fall streak ``v T f / z``; each is seen only in front of the surface at its pixel.
- Snow cover whitens surfaces whose normal (from depth) points up, in patches, more with
  intensity; snow's albedo (~0.85) is about 2.5 times a road's, and it is never darker than the sky.
- Snowfall lowers visibility: the US National Weather Service grades snow as light above about
  1 km (5/8 mile), moderate from 0.5 to 1 km, heavy at 0.4 km (1/4 mile) or less. ``intensity``
  0..1 maps onto that scale (``snow_visibility_m``) unless a visibility is given, and the haze
  follows the fog equation, which is what flattens contrast in snow.

``sample_snow`` draws every random value into a ``SnowSample``; ``snow`` is deterministic given it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from longtail.render.weather.fog import DEFAULT_AIRLIGHT, koschmieder_beta
from longtail.render.weather.geometry import clean_depth, clip_, clip_float, every_kth, ground_pattern, upward_normal
from longtail.render.weather.particles import (ParticleLayer, ambient_small, composite, frustum_volume, mix_small,
                                               scatter, split, transmission)
from longtail.worlds.scene import Camera

LAYER_EDGES_M = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
FLAKES_PER_M3 = 800.0  # drawn flakes per m^3 at intensity 1 (about 1 m away; thinned as 1/z^2 beyond)
FALL_SPEED_M_S = 1.0
DEFOCUS_PX_M = 1.5  # blur diameter (pixels) x distance (m) of a camera focused far away
SNOW_ALBEDO_RATIO = 2.5  # fresh snow (~0.85) over a typical road or roof (~0.3)
SURFACE_K = 4  # the cover and the ambient light are worked out on every 4th pixel


def snow_visibility_m(intensity: float) -> float:
    """Visibility (m) in snowfall of ``intensity`` 0..1: 2 km at 0 falling log-linearly to 200 m
    at 1 (NWS: light > 1 km, moderate 0.5-1 km, heavy <= 0.4 km)."""
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {intensity}")
    return 2000.0 * 0.1**intensity


@dataclass(frozen=True)
class SnowSample:
    """Every random draw of one snowy frame; ``snow`` is a deterministic function of it."""

    intensity: float
    drift: float  # radians, flake fall direction from the image vertical (wind)
    layers: tuple[ParticleLayer, ...]
    patches: np.ndarray  # (h, w) float32 0..1 texture of the cover's patchiness, laid on the ground


def sample_snow(camera: Camera, intensity: float, rng: np.random.Generator, drift_deg: float = 0.0,
                exposure_s: float = 1 / 60) -> SnowSample:
    """Draw the flakes and the cover pattern of one frame.

    Args:
        camera: the image's camera (size and focal length set flake sizes).
        intensity: snowfall intensity 0..1.
        rng: the generator every draw comes from.
        drift_deg: fall direction from vertical (wind), degrees.
        exposure_s: exposure time; flakes streak by fall speed x exposure.
    """
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {intensity}")
    f = 0.5 * (camera.fx + camera.fy)
    drift = math.radians(drift_deg)
    mean_mm = 2.0 + 4.0 * intensity  # heavier snow falls in larger aggregates
    slabs = list(zip(LAYER_EDGES_M[:-1], LAYER_EDGES_M[1:]))
    counts = rng.poisson([FLAKES_PER_M3 * intensity * frustum_volume(camera, z0, z1) * min(1.0, 1.0 / (z0 * z1))
                          for z0, z1 in slabs])
    z = [math.sqrt(z0 * z1) for z0, z1 in slabs]
    d_px = (1.0 + rng.exponential(mean_mm - 1.0, int(counts.sum()))) * 1e-3 * f / np.repeat(z, counts)
    typical_px = [(1.0 + math.log(2.0) * (mean_mm - 1.0)) * 1e-3 * f / zi for zi in z]  # the median flake
    sigma = [max(t / 2.0, DEFOCUS_PX_M / (2.0 * zi), 0.5) for t, zi in zip(typical_px, z)]
    lengths = [max(1, int(round(FALL_SPEED_M_S * exposure_s * f / zi))) for zi in z]
    # a flake's light: its projected area (a Gaussian of sigma carries 2 pi sigma^2 at peak 1)
    area = 2.0 * math.pi * np.repeat(np.square(sigma), counts)
    value = (1.8 * np.minimum(d_px * d_px + 0.3, area)).astype(np.float32)
    layers = [ParticleLayer(zi, 1, li, si, x, y, v) for zi, li, si, (x, y), v
              in zip(z, lengths, sigma, scatter(rng, counts, camera, drift, lengths),
                     split(value, counts))]
    patches = rng.random((32, 32), dtype=np.float32)
    return SnowSample(intensity, drift, tuple(layers), patches)


def cover_weights(depth: np.ndarray, camera: Camera, cover: float, patches: np.ndarray, k: int = 4
                  ) -> tuple[int, np.ndarray] | None:
    """Where snow lies, at 1/k resolution: ``(r0, m)`` with ``m`` the 0..1 cover of the rows of
    ``depth[::k, ::k]`` from r0 down (the first holding an upward-facing surface), or None where
    nothing is covered (``snow_cover``)."""
    if cover <= 0:
        return None
    nz = upward_normal(depth, camera, k)
    rows = np.flatnonzero(nz.max(axis=1) > 0.5)
    if rows.size == 0:
        return None
    r0 = int(rows[0])
    patch = ground_pattern(depth, camera, patches, 0.8, k, first_row=r0)
    # flat surfaces hold snow first; steeper ones only in heavier falls; patches melt through
    hold = clip_((nz[r0:] - np.float32(0.95 - 0.45 * cover)) / np.float32(0.15), 0.0, 1.0)
    m = clip_(np.float32(3.0) * (np.float32(1.3 * cover) - patch), 0.0, 1.0, out=patch)
    m *= hold
    return r0, m


def snow_level(image: np.ndarray, sky_level: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """The brightness of snow lying on ``image``'s surfaces, one channel (neutral: the haze over
    it brings the sky's tint): the surface's luminance scaled by snow's albedo over a road's,
    never darker than the sky light ``sky_level`` 0..1. (H, W) of ``image``'s dtype, or of
    ``size`` (w, h): the luminance averaged down to it first."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if size is not None and size != (grey.shape[1], grey.shape[0]):
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    if image.dtype == np.uint8:  # 8-bit all the way: saturating scale, then the floor
        return np.maximum(cv2.convertScaleAbs(grey, alpha=SNOW_ALBEDO_RATIO),
                          np.uint8(min(255, round(sky_level * 255.0))), out=grey)
    return np.minimum(np.maximum(grey * np.float32(SNOW_ALBEDO_RATIO), np.float32(sky_level)), np.float32(1.0))


def snow_white(image: np.ndarray, sky_level: float) -> np.ndarray:
    """``snow_level`` as an RGB image: the colour of snow lying on ``image``'s surfaces."""
    return cv2.cvtColor(snow_level(image, sky_level), cv2.COLOR_GRAY2RGB)


def snow_cover(image: np.ndarray, depth: np.ndarray, camera: Camera, cover: float, patches: np.ndarray,
               sky_level: float, k: int = 4) -> np.ndarray:
    """Whiten upward-facing surfaces.

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        depth: (H, W) z-depth in metres, inf = sky.
        camera: the image's camera.
        cover: 0 (none) .. 1 (every flat surface white).
        patches: (h, w) 0..1 patchiness texture, laid on the ground at 0.8 m per texel.
        sky_level: luminance 0..1 of the ambient sky light: snow is never darker than it.
        k: the cover weights are computed on every k-th pixel (they are smooth).

    Returns:
        A new image of the same dtype. (``snow`` folds this into its one composite.)
    """
    weights = cover_weights(clean_depth(depth), camera, cover, patches, k)
    if weights is None:
        return image.copy()
    # no haze: T = 1, so the ambient term vanishes
    T = np.ones((-(-depth.shape[0] // 2), -(-depth.shape[1] // 2)), np.float32)
    return composite(image, T, np.zeros((1, 1, 3), image.dtype), **_surface(image, T, *weights, sky_level, k))


def _surface(image: np.ndarray, T: np.ndarray, r0: int, m: np.ndarray, sky_level: float, k: int) -> dict:
    """``particles.composite``'s surface arguments for the cover ``m`` from row r0 of the 1/k grid."""
    h, w = T.shape
    rh = r0 * k // 2
    # the snow's brightness at half resolution (2 x 2 means of the luminance, so thin bright
    # lines stay lines), folded in before the composite's upsampling
    return {"r0": rh, "white": snow_level(image[2 * rh:], sky_level, (w, h - rh)),
            "white_weight": cv2.resize(m, (w, h - rh), interpolation=cv2.INTER_LINEAR)}


def snow(image: np.ndarray, depth: np.ndarray, camera: Camera, sample: SnowSample, cover: float | None = None,
         visibility_m: float | None = None, airlight=DEFAULT_AIRLIGHT) -> np.ndarray:
    """Snow over an image from its depth map: cover, then the snowfall haze and the flakes in
    front of the surfaces (``particles.scatter_composite``).

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        depth: (H, W) float32 z-depth in metres; inf or 0 = sky.
        camera: the image's camera.
        sample: ``sample_snow`` for this frame.
        cover: 0..1 snow cover; None = the sample's intensity.
        visibility_m: visibility in the snowfall; None = ``snow_visibility_m(intensity)``.
        airlight: haze colour (3,), 0..1; the floor of the ambient light.

    Returns:
        The snowy image, same shape and dtype.
    """
    depth = clean_depth(depth)
    cover = sample.intensity if cover is None else cover
    sky_level = 1.05 * float(np.dot(np.asarray(airlight, np.float64), (0.2126, 0.7152, 0.0722)))
    # cover, haze and flakes in one composite: J T + E (1 - T), T = t (1 - a), with the covered
    # J = image (1 - m) + white m; the ambient E is lit by the covered scene at 1/4 resolution
    small = every_kth(image, SURFACE_K)
    vis = snow_visibility_m(sample.intensity) if visibility_m is None else visibility_m
    T = transmission(depth, camera, koschmieder_beta(vis), sample.layers, sample.drift)
    weights = cover_weights(depth, camera, cover, sample.patches, SURFACE_K)
    surface = {}
    if weights is not None:
        r0, m = weights
        surface = _surface(image, T, r0, m, sky_level, SURFACE_K)
        mix_small(small, r0, np.float32(1.0) - m, snow_white(small[r0:], sky_level), m)
    return clip_float(composite(image, T, ambient_small(small, airlight, image.shape), **surface))
