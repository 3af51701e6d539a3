"""The look of a frame beyond PyBullet's flat colours, applied to RGB only (labels stay exact):
procedural surface textures in world coordinates, emissive lights at night with bloom, and
edge anti-aliasing. Each step is a pure function of the buffers.

Textures are sampled by the world position of each pixel (from depth), not by mesh UVs, so they
tile correctly along any road, bend or junction; the noise tiles are generated once and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from longtail.labelers.classes import get_class

TILE = 256
TEXTURE_SEED = 20261125  # fixed: textures are part of the renderer, not of a frame's randomness

# semantic class -> (fine texel metres, fine amplitude, coarse texel metres, coarse amplitude,
# distance in metres over which the fine grain fades out to avoid shimmering)
SURFACES = {
    "road": (0.04, 0.10, 0.6, 0.07, 20.0),
    "terrain": (0.08, 0.22, 1.2, 0.18, 25.0),
    "sidewalk": (0.05, 0.06, 0.8, 0.05, 20.0),
    "building": (0.05, 0.05, 1.5, 0.06, 30.0),
    "vegetation": (0.05, 0.25, 0.5, 0.15, 25.0),
}
PAVING_M = 0.6  # sidewalk slab size

# Emissive parts, found by their exact albedo (PyBullet writes floor(255 c) when unlit):
# asset colour -> emitted radiance added at night
EMISSIVE = {
    (0.95, 0.95, 0.85): (3.0, 2.9, 2.5),  # headlights
    (0.75, 0.04, 0.03): (1.6, 0.08, 0.05),  # tail lights
    (0.85, 0.75, 0.45): (1.0, 0.8, 0.45),  # lit windows
    (0.9, 0.9, 0.8): (3.0, 2.6, 1.8),  # street lamp heads
}


@lru_cache(maxsize=2)
def noise_tile(seed: int = TEXTURE_SEED) -> np.ndarray:
    """(TILE, TILE) float32 smooth-ish value noise, zero mean, unit std, tiling seamlessly."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((TILE, TILE)).astype(np.float32)
    for axis in (0, 1):  # a little wrap-around smoothing: grain, not salt and pepper
        n = (np.roll(n, 1, axis) + 2 * n + np.roll(n, -1, axis)) / 4
    return (n - n.mean()) / n.std()


def _sample(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    tile = noise_tile()
    return tile[np.floor(u).astype(np.int64) % TILE, np.floor(v).astype(np.int64) % TILE]


def texture_gain(semantic: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 depth: np.ndarray) -> np.ndarray:
    """(H, W) float32 brightness multiplier: procedural texture of each surface class.

    x, y, z: world coordinates of each pixel's surface (H, W); depth: z-depth, metres.
    Horizontal surfaces sample the noise by (x, y), facades by (x + y, z).
    """
    gain = np.ones(semantic.shape, np.float32)
    for name, (fine, a_fine, coarse, a_coarse, fade) in SURFACES.items():
        m = semantic == get_class(name).id
        if not m.any():
            continue
        if name in ("building", "vegetation"):
            a, b = (x[m] + y[m]), z[m]
        else:
            a, b = x[m], y[m]
        fade_k = np.clip(1.0 - depth[m] / fade, 0.0, 1.0)
        g = 1.0 + a_coarse * _sample(a / coarse, b / coarse) + a_fine * fade_k * _sample(a / fine + 7, b / fine + 13)
        if name == "sidewalk":  # darker joints between paving slabs
            joint = (np.mod(a, PAVING_M) < 0.03) | (np.mod(b, PAVING_M) < 0.03)
            g = np.where(joint & (fade_k > 0), g * (1.0 - 0.25 * fade_k), g)
        gain[m] = g
    return np.clip(gain, 0.5, 1.5)


def emission(albedo8: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 light emitted by lamps, vehicle lights and lit windows, found by their
    exact unlit colour in an albedo render (H, W, 3) uint8."""
    out = np.zeros(albedo8.shape, np.float32)
    code = (albedo8[..., 0].astype(np.int32) << 16) | (albedo8[..., 1].astype(np.int32) << 8) | albedo8[..., 2]
    for colour, radiance in EMISSIVE.items():
        c = [int(np.floor(255 * v)) for v in colour]
        out[code == ((c[0] << 16) | (c[1] << 8) | c[2])] = radiance
    return out


def _box_blur(img: np.ndarray, r: int) -> np.ndarray:
    """Separable box blur of radius r (edges clamped), via cumulative sums."""
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(img, pad, mode="edge"), axis=axis, dtype=np.float32)
        hi = np.take(c, np.arange(2 * r + 1, c.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, c.shape[axis] - 2 * r - 1), axis=axis)
        img = (hi - lo) / (2 * r + 1)
    return img


BLOOM_SCALE = 4  # the glow is smooth: blur a quarter-resolution image


def bloom(emitted: np.ndarray, radius: int = 4, strength: float = 0.35) -> np.ndarray:
    """Glow around bright lights: three box blurs approximate a Gaussian of ~``radius`` px,
    computed at 1/BLOOM_SCALE resolution and enlarged back."""
    if not emitted.any():
        return emitted
    H, W, C = emitted.shape
    k = BLOOM_SCALE
    h, w = -(-H // k), -(-W // k)
    padded = np.pad(emitted, ((0, h * k - H), (0, w * k - W), (0, 0)))
    g = padded.reshape(h, k, w, k, C).mean(axis=(1, 3))
    r = max(1, round(radius / k))
    for _ in range(3):
        g = _box_blur(g, r)
    return strength * np.repeat(np.repeat(g, k, 0), k, 1)[:H, :W]


TENT = [(dr, dc, (2 - abs(dr)) * (2 - abs(dc)) / 16.0) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def edge_antialias(img: np.ndarray, instance: np.ndarray, semantic: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Soften jagged silhouettes: where a pixel borders another object, class or a depth jump,
    blend it with its 3x3 neighbourhood (a tent filter). Labels are untouched.

    img: (H, W, 3) float32; instance, semantic: (H, W) ids; depth: (H, W) metres (inf = sky).
    """
    d = np.where(np.isfinite(depth), depth, 1e4)
    edge = np.zeros(instance.shape, bool)
    for a in (instance, semantic):
        e = a[1:, :] != a[:-1, :]
        edge[1:, :] |= e
        edge[:-1, :] |= e
        e = a[:, 1:] != a[:, :-1]
        edge[:, 1:] |= e
        edge[:, :-1] |= e
    jump = np.abs(d[1:, :] - d[:-1, :]) > 0.05 * np.minimum(d[1:, :], d[:-1, :])
    edge[1:, :] |= jump
    edge[:-1, :] |= jump
    rows, cols = np.nonzero(edge)
    if rows.size == 0:
        return img
    H, W = edge.shape
    out = img.copy()
    acc = np.zeros((rows.size, img.shape[2]), np.float32)
    for dr, dc, wgt in TENT:  # only edge pixels: a small share of the image
        acc += wgt * img[np.clip(rows + dr, 0, H - 1), np.clip(cols + dc, 0, W - 1)]
    out[rows, cols] = acc
    return out
