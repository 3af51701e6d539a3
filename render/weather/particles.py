"""Falling particles (rain drops, snow flakes) between the camera and the scene, shared by rain
and snow: where they are drawn, how their light spreads, and the composite with the haze.

Particles live in distance slabs (``ParticleLayer``). Each particle is seen only in front of the
surface at its pixel (depth test), is spread over its motion streak by a box (its light is
conserved, so a long streak is faint per pixel) and over its defocus / size by a Gaussian, and
the whole field leans with the wind. Haze and particles both scatter the ambient light towards
the camera: ``I = J t (1 - a) + E (1 - t (1 - a))`` with transmission t, particle opacity a and
ambient light E.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from longtail.render.weather.geometry import blend, peak, ray_scale, upsample
from longtail.worlds.scene import Camera

MAX_ALPHA = 0.9


@dataclass(frozen=True)
class ParticleLayer:
    """Particles in one distance slab: centre pixels before the wind shear, (N,) float32 each,
    and each particle's summed opacity (spread over its streak and blur, in full-res pixels)."""

    z_m: float
    width_px: int  # streak width (box), pixels
    length_px: int  # streak length along the fall (box), pixels
    sigma_px: float  # Gaussian spread (defocus, flake size), pixels; 0 = none
    x: np.ndarray
    y: np.ndarray
    value: np.ndarray


def frustum_volume(camera: Camera, z0: float, z1: float) -> float:
    """Volume (m^3) of the view frustum between z-depths ``z0`` and ``z1`` metres."""
    return (camera.width / camera.fx) * (camera.height / camera.fy) * (z1**3 - z0**3) / 3.0


def scatter(rng: np.random.Generator, n: int, camera: Camera, slant: float, length_px: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform particle centres (x, y) before the wind shear of angle ``slant`` (radians),
    covering every position whose streak can reach the image."""
    pad = abs(math.tan(slant)) * camera.height / 2.0
    x = rng.uniform(-pad, camera.width + pad, n).astype(np.float32)
    y = rng.uniform(-length_px / 2.0, camera.height + length_px / 2.0, n).astype(np.float32)
    return x, y


def particle_alpha(depth: np.ndarray, layers: tuple[ParticleLayer, ...], slant: float) -> np.ndarray:
    """(H, W) float32 opacity of the particles in front of the surfaces of ``depth`` (H, W,
    metres, inf = sky), leaning by ``slant`` radians from the vertical.

    Drawn at half resolution (a quarter of the work; particles are motion- and defocus-blurred
    anyway) with each particle's light preserved, then upsampled.
    """
    H, W = depth.shape
    h, w = -(-H // 2), -(-W // 2)
    lean = math.tan(slant)
    # the canvas has margins: particles centred outside the image still reach into it
    P = int(math.ceil(abs(lean) * h / 2.0)) + 1
    Q = max((layer.length_px for layer in layers), default=0) // 4 + 1
    acc = np.zeros((h + 2 * Q, w + 2 * P), np.float32)
    seeds, spread = np.empty_like(acc), np.empty_like(acc)
    for layer in layers:
        if layer.x.size == 0:
            continue
        u = np.rint(layer.x + lean * (layer.y - H / 2.0)).astype(np.int64)  # where the centre lands
        v = np.rint(layer.y).astype(np.int64)
        visible = depth[np.clip(v, 0, H - 1), np.clip(u, 0, W - 1)] > layer.z_m
        rows = np.clip((layer.y[visible] * 0.5).astype(np.int64) + Q, 0, h + 2 * Q - 1)
        cols = np.clip((layer.x[visible] * 0.5).astype(np.int64) + P, 0, w + 2 * P - 1)
        seeds.fill(0.0)
        seeds[rows, cols] = layer.value[visible] * np.float32(0.25)  # a half-res pixel covers four
        kw, kl = max(1, layer.width_px // 2), max(1, layer.length_px // 2)
        out = cv2.blur(seeds, (kw, kl), dst=spread, borderType=cv2.BORDER_CONSTANT) if kw * kl > 1 else seeds
        if layer.sigma_px >= 0.7:
            out = cv2.GaussianBlur(out, (0, 0), layer.sigma_px / 2.0, dst=spread, borderType=cv2.BORDER_CONSTANT)
        acc += out
    M = np.float32([[1, lean, -P - lean * (h / 2.0 + Q)], [0, 1, -Q]])
    acc = cv2.warpAffine(acc, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    full = upsample(acc, depth.shape)
    return np.minimum(full, np.float32(MAX_ALPHA), out=full)


def ambient_light(image: np.ndarray, floor) -> np.ndarray:
    """(H, W, 3) light that particles and haze near each pixel scatter towards the camera: a drop
    or flake gathers a wide cone of the scene, so a heavily blurred image, never darker than the
    airlight ``floor`` (3,) in 0..1; near a lamp at night it glows. Same dtype as ``image``."""
    H, W = image.shape[:2]
    # every 4th pixel, then 4 x 4 averages: the 16 x 16 means without reading the whole frame
    small = cv2.resize(image[::4, ::4], (max(W // 16, 1), max(H // 16, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    small = np.maximum(small, (np.asarray(floor, np.float32) * np.float32(peak(image))).astype(image.dtype))
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def scatter_composite(image: np.ndarray, depth: np.ndarray, camera: Camera, beta: float, alpha: np.ndarray,
                      airlight) -> np.ndarray:
    """``I = J t (1 - a) + E (1 - t (1 - a))``: haze of extinction ``beta`` (1/m) and particle
    opacity ``alpha`` (H, W) over ``image`` (either dtype), both lit by ``ambient_light``.
    ``alpha`` is overwritten."""
    keep = np.multiply(depth, ray_scale(camera))
    keep *= np.float32(-beta)
    cv2.exp(keep, dst=keep)  # transmission t
    np.subtract(np.float32(1.0), alpha, out=alpha)
    keep *= alpha  # in place: fresh frame-sized buffers cost more than the arithmetic
    np.subtract(np.float32(1.0), keep, out=alpha)
    return blend(image, ambient_light(image, airlight), keep, alpha)
