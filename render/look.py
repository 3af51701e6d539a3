"""The look of a frame beyond PyBullet's flat colours, applied to RGB only (labels stay exact):
procedural surface textures in world coordinates, emissive lights at night with bloom, and
edge anti-aliasing. Each step is a pure function of the buffers.

Textures are sampled by the world position of each pixel (from depth), not by mesh UVs, so they
tile correctly along any road, bend or junction; the noise tiles are generated once and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from longtail.classes import get_class
from longtail.seeding import TEXTURES

TILE = 256

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
def noise_tile(seed: int = TEXTURES) -> np.ndarray:
    """(TILE, TILE) float32 smooth-ish value noise, zero mean, unit std, tiling seamlessly."""
    rng = np.random.default_rng(seed)
    # float32 throughout (numpy's stubs widen the smoothing's ``/ 4`` to float64)
    n: np.ndarray = rng.standard_normal((TILE, TILE)).astype(np.float32)
    for axis in (0, 1):  # a little wrap-around smoothing: grain, not salt and pepper
        n = (np.roll(n, 1, axis) + 2 * n + np.roll(n, -1, axis)) / 4
    return (n - n.mean()) / n.std()


def _sample(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The noise tile at cells (floor(u), floor(v)), wrapped (TILE is a power of two: ``& (TILE - 1)``
    is ``% TILE``, negative cells included)."""
    tile = noise_tile().ravel()
    return tile.take((np.floor(u).astype(np.int64) & (TILE - 1)) * TILE + (np.floor(v).astype(np.int64) & (TILE - 1)))


def texture_gain(semantic: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 depth: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(H, W) float32 brightness multiplier: procedural texture of each surface class.

    x, y, z: world coordinates of each pixel's surface (H, W); depth: z-depth, metres.
    Horizontal surfaces sample the noise by (x, y), facades by (x + y, z). ``strength`` scales
    the texture's contrast (a randomised frame's draw; 1 = as designed).
    """
    gain = np.ones(semantic.shape, np.float32)
    flat = gain.ravel()
    classes = semantic.ravel()
    xs, ys, zs, ds = (np.ravel(c) for c in (x, y, z, depth))
    for name, (fine, a_fine, coarse, a_coarse, fade) in SURFACES.items():
        # the class's pixels in row-major order (a compare per textured class: ~4x faster than
        # a stable argsort of every pixel's class for these five classes)
        m = np.flatnonzero(classes == get_class(name).id)
        if not m.size:
            continue
        if name in ("building", "vegetation"):
            a, b = (xs.take(m) + ys.take(m)), zs.take(m)
        else:
            a, b = xs.take(m), ys.take(m)
        fade_k = np.clip(1.0 - ds.take(m) / fade, 0.0, 1.0)
        g = 1.0 + a_coarse * _sample(a / coarse, b / coarse) + a_fine * fade_k * _sample(a / fine + 7, b / fine + 13)
        if name == "sidewalk":  # darker joints between paving slabs
            joint = (np.mod(a, PAVING_M) < 0.03) | (np.mod(b, PAVING_M) < 0.03)
            g = np.where(joint & (fade_k > 0), g * (1.0 - 0.25 * fade_k), g)
        flat[m] = g
    if strength != 1.0:
        gain = np.float32(1.0) + np.float32(strength) * (gain - np.float32(1.0))
    return np.clip(gain, 0.5, 1.5)


def emission(albedo8: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 light emitted by lamps, vehicle lights and lit windows, found by their
    exact unlit colour in an albedo render (H, W, 3) uint8."""
    out = np.zeros(albedo8.shape, np.float32)
    code = (albedo8[..., 0].astype(np.int32) << 16) | (albedo8[..., 1].astype(np.int32) << 8) | albedo8[..., 2]
    for colour, radiance in EMISSIVE.items():
        c = [int(np.floor(255 * v)) for v in colour]
        lit = code == ((c[0] << 16) | (c[1] << 8) | c[2])
        for ch, value in enumerate(radiance):  # per channel: numpy's (N, 3) masked assignment is slow
            out[..., ch][lit] = value
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
    padded = emitted if (h * k, w * k) == (H, W) else np.pad(emitted, ((0, h * k - H), (0, w * k - W), (0, 0)))
    blocks = padded.reshape(h, k, w, k, C)
    # the mean of each k x k block, summed in the order numpy's ``mean(axis=(1, 3))`` sums it
    # (row by row, each left to right, from the first value) but as whole-image adds
    g = blocks[:, 0, :, 0].copy()
    for a in range(k):
        for b in range(k):
            if a or b:
                g += blocks[:, a, :, b]
    g /= k * k
    r = max(1, round(radius / k))
    for _ in range(3):
        g = _box_blur(g, r)
    # each k x k block repeats strength * its cell (the product per element, as after enlarging)
    return np.repeat(np.repeat(strength * g, k, 0), k, 1)[:H, :W]


TENT = [(dr, dc, (2 - abs(dr)) * (2 - abs(dc)) / 16.0) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """A float image 0..1 as uint8: x 255, rounded half to even, clipped to 0..255."""
    out = img * 255.0
    return np.clip(np.rint(out, out=out), 0, 255, out=out).astype(np.uint8)  # in place: no temporaries


def edges(instance: np.ndarray, semantic: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels ``edge_antialias`` blends (bordering another object, class or a
    depth jump of more than 5 %)."""
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
    return edge


def edge_antialias(img: np.ndarray, instance: np.ndarray, semantic: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Soften jagged silhouettes: where a pixel borders another object, class or a depth jump,
    blend it with its 3x3 neighbourhood (a tent filter). Labels are untouched.

    img: (H, W, 3) float32; instance, semantic: (H, W) ids; depth: (H, W) metres (inf = sky).
    """
    rows, cols = np.nonzero(edges(instance, semantic, depth))
    if rows.size == 0:
        return img
    H, W = instance.shape
    out = img.copy()
    flat, src = out.reshape(H * W, -1), img.reshape(H * W, -1)
    acc = np.zeros((rows.size, img.shape[2]), np.float32)
    near_rows = {dr: np.clip(rows + dr, 0, H - 1) * W for dr in (-1, 0, 1)}
    near_cols = {dc: np.clip(cols + dc, 0, W - 1) for dc in (-1, 0, 1)}
    for dr, dc, wgt in TENT:  # only edge pixels: a small share of the image
        acc += wgt * src.take(near_rows[dr] + near_cols[dc], axis=0)
    flat[rows * W + cols] = acc
    return out


SHADOW_CASTERS = ("building", "vegetation", "pole", "traffic sign", "guard rail", "static")
SHADOW_RECEIVERS = ("road", "sidewalk", "terrain")
SHADOW_DARKNESS = 0.55  # what a cast shadow leaves of the direct sun + sky light


_SIGNS = np.stack(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij"), -1).reshape(8, 3)


def _corners(center, half, yaw) -> np.ndarray:
    """(N, 8, 3) corners of N boxes: centres (N, 3), half extents (N, 3), each turned by its yaw
    (N,) about z."""
    center, half, yaw = np.asarray(center, float), np.asarray(half, float), np.asarray(yaw, float)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((len(yaw), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, s, -s, c, 1.0
    return (_SIGNS * half[:, None, :]) @ rot + center[:, None, :]


def caster_boxes(static_parts, actors) -> np.ndarray:
    """(N, 8, 3) world corners of what casts sun shadows: actors' 3D boxes and the boxes around
    tall static parts (buildings, trees, poles, signs, rails)."""
    centres, halves, yaws = [], [], []
    for cls, pt in static_parts:
        if cls not in SHADOW_CASTERS:
            continue
        if pt.shape == "box":
            if min(pt.dims) < MIN_CASTER_M / 2:
                continue
            half = pt.dims
        elif pt.shape == "sphere":
            half = (pt.dims[0],) * 3
        else:  # cylinders and cones stand upright in the roadside
            r = max(pt.dims[0], pt.dims[1]) if pt.shape == "frustum" else pt.dims[0]
            half = (r, r, (pt.dims[2] if pt.shape == "frustum" else pt.dims[1]) / 2)
        centres.append(pt.pos)
        halves.append(half)
        yaws.append(pt.rpy[2])
    for a in actors:
        l, w, h = a.size
        centres.append((a.position[0], a.position[1], a.position[2] + h / 2))
        halves.append((l / 2, w / 2, h / 2))
        yaws.append(a.yaw)
    if not yaws:
        return np.zeros((0, 8, 3))
    return _corners(centres, halves, yaws)


BOX_FACES = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
SHADOW_CELL_M = 0.1  # resolution of the top-down shadow raster
MIN_CASTER_M = 0.1  # thinner static parts (window panes, sign plates) are in their wall's shadow


def _shadow_cells(boxes: np.ndarray, sun: np.ndarray, origin: tuple[float, float],
                  shape: tuple[int, int]) -> np.ndarray:
    """``shadow_raster`` as (rows, cols) uint8, 255 where the sun is blocked."""
    flat = boxes - boxes[..., 2:3] / sun[2] * sun
    px = (flat[..., 0] - origin[0]) / SHADOW_CELL_M
    py = (flat[..., 1] - origin[1]) / SHADOW_CELL_M
    im = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(im).draw  # the core drawer: what ImageDraw.polygon(xy, fill=255) calls
    ink = draw.draw_ink(255)
    for bx, by in zip(px.tolist(), py.tolist()):
        pts = list(zip(bx, by))
        for face in BOX_FACES:
            draw.draw_polygon([pts[k] for k in face], ink, 1)
    return np.asarray(im)


def shadow_raster(boxes: np.ndarray, sun: np.ndarray, origin: tuple[float, float],
                  shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) float32 top-down map of the ground, 1 where the sun is blocked.

    Cell (i, j) covers world x = origin[0] + j * SHADOW_CELL_M, y = origin[1] + i * SHADOW_CELL_M.
    A box's shadow is the union of its six faces slid along the sun ray to z = 0 (which is the
    convex hull of its projected corners), filled by PIL's polygon rasteriser.
    """
    return np.asarray(_shadow_cells(boxes, sun, origin, shape), np.float32) / 255.0


_GROUND = tuple(get_class(c).id for c in SHADOW_RECEIVERS)  # the semantic ids that receive cast shadows


def cast_shadows(img: np.ndarray, semantic: np.ndarray, x: np.ndarray, y: np.ndarray,
                 boxes: np.ndarray, sun: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Darken ground pixels (road, sidewalk, terrain) that lie in the sun shadow of ``boxes``.

    Boxes (N, 8, 3) are projected along the unit sun vector ``sun`` (towards the sun) onto the
    ground plane into a top-down raster, which each ground pixel's world (x, y) samples
    bilinearly (a soft edge a cell wide). PyBullet's own shadow map covers only a few metres
    around the world origin and costs more than the frame; this costs milliseconds.
    ``in_place``: darken ``img`` itself (and return it) rather than a copy.
    """
    if sun[2] <= 0.05 or len(boxes) == 0:
        return img
    ground = semantic == _GROUND[0]  # a compare per class: ~4x faster than a 256-entry table lookup
    for cid in _GROUND[1:]:
        ground |= semantic == cid
    at = np.flatnonzero(ground)
    if at.size == 0:
        return img
    gx, gy = x.ravel().take(at), y.ravel().take(at)
    x0, y0 = float(gx.min()) - 1.0, float(gy.min()) - 1.0
    shape = (int((gy.max() - y0) / SHADOW_CELL_M) + 3, int((gx.max() - x0) / SHADOW_CELL_M) + 3)
    cells = _shadow_cells(boxes, sun, (x0, y0), shape).ravel()
    u, v = (gx - x0) / SHADOW_CELL_M - 0.5, (gy - y0) / SHADOW_CELL_M - 0.5
    j, i = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    k = np.clip(i, 0, shape[0] - 2) * shape[1] + np.clip(j, 0, shape[1] - 2)
    near = cells.take(k) | cells.take(k + 1) | cells.take(k + shape[1]) | cells.take(k + shape[1] + 1)
    # a pixel whose four cells are all lit keeps its value (x 1.0): only the others are computed
    sel = np.flatnonzero(near)
    u, v, j, i, k = u[sel], v[sel], j[sel], i[sel], k[sel]
    fu, fv = (u - j).astype(np.float32), (v - i).astype(np.float32)
    # the four cells as the float raster holds them (uint8 / 255 in float32)
    r00, r01, r10, r11 = (np.asarray(cells.take(k + dk), np.float32) / 255.0 for dk in (0, 1, shape[1], shape[1] + 1))
    cover = ((1 - fv) * ((1 - fu) * r00 + fu * r01)
             + fv * ((1 - fu) * r10 + fu * r11))
    out = img if in_place else img.copy()
    flat = out.reshape(-1, out.shape[-1])
    at = at[sel]
    shaded = flat.take(at, axis=0)  # gather, scale, scatter: faster than ``flat[at] *= ...``
    shaded *= (1.0 - (1.0 - SHADOW_DARKNESS) * cover)[:, None]
    flat[at] = shaded
    return out
