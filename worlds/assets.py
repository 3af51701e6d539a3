"""Procedural assets: each asset turns a (size, colour, variant) record into primitive parts.

An asset is data plus one small function; nothing here touches PyBullet. Parts are placed in the
actor's local frame: x forward, y left, z up, origin at the centre of the box's bottom face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Literal

import numpy as np

from longtail.errors import UnknownNameError
from longtail.registry import Registry
from longtail.seeding import OUTFIT, stream_rng
from longtail.worlds.scene import vec3

RGBA = tuple[float, float, float, float]
Shape = Literal["box", "cylinder", "frustum", "sphere"]


@dataclass(frozen=True)
class Part:
    """A primitive. ``dims``: box (hx, hy, hz) half extents; cylinder (radius, length, 0) along
    local z; frustum (r_bottom, r_top, height); sphere (radius, 0, 0). ``rpy`` rotates it."""

    shape: Shape
    dims: tuple[float, float, float]
    pos: tuple[float, float, float]
    rgba: RGBA
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


def box(cx: float, cy: float, z0: float, lx: float, ly: float, lz: float, rgba: RGBA, yaw: float = 0.0) -> Part:
    """A box by its centre in x/y, its bottom z and its full lengths."""
    return Part("box", (lx / 2, ly / 2, lz / 2), (cx, cy, z0 + lz / 2), rgba, (0.0, 0.0, yaw))


def _rgba(c, a: float = 1.0) -> RGBA:
    return (float(c[0]), float(c[1]), float(c[2]), a)


def _shade(c, k: float) -> RGBA:
    return _rgba(np.clip(np.asarray(c) * k, 0, 1))


GLASS: RGBA = (0.08, 0.10, 0.13, 1.0)
TYRE: RGBA = (0.05, 0.05, 0.05, 1.0)
HEADLIGHT: RGBA = (0.95, 0.95, 0.85, 1.0)
TAILLIGHT: RGBA = (0.75, 0.04, 0.03, 1.0)
SKIN: RGBA = (0.80, 0.62, 0.50, 1.0)


def _wheels(l: float, w: float, r: float, axles: list[float]) -> list[Part]:
    parts = []
    for x in axles:
        for side in (-1, 1):
            parts.append(Part("cylinder", (r, 0.22, 0.0), (x, side * (w / 2 - 0.11), r), TYRE, (math.pi / 2, 0, 0)))
    return parts


def _car(size, color, variant, hood: float, cabin: float, sill: float) -> list[Part]:
    """Passenger car: lower body, greenhouse, glass, wheels, lights. Fractions of the length."""
    l, w, h = size
    r = min(0.36, 0.24 * h)
    body_h = 0.55 * h - sill
    cabin_len = cabin * l
    cabin_x = -l / 2 + (1 - hood) * l - cabin_len / 2
    cab_h = h - sill - body_h
    parts = [
        box(0, 0, sill, l, w, body_h, _rgba(color)),
        box(cabin_x, 0, sill + body_h, cabin_len, w * 0.86, cab_h * 0.92, _rgba(color)),
        box(cabin_x + 0.02, 0, sill + body_h + 0.05, cabin_len * 1.01, w * 0.87, cab_h * 0.7, GLASS),
        box(l / 2 - 0.03, w * 0.34, sill + body_h * 0.6, 0.08, w * 0.2, body_h * 0.22, HEADLIGHT),
        box(l / 2 - 0.03, -w * 0.34, sill + body_h * 0.6, 0.08, w * 0.2, body_h * 0.22, HEADLIGHT),
        box(-l / 2 + 0.03, w * 0.36, sill + body_h * 0.62, 0.08, w * 0.18, body_h * 0.2, TAILLIGHT),
        box(-l / 2 + 0.03, -w * 0.36, sill + body_h * 0.62, 0.08, w * 0.18, body_h * 0.2, TAILLIGHT),
    ]
    return parts + _wheels(l, w, r, [l / 2 - 0.18 * l, -l / 2 + 0.18 * l])


def _car_of(hood: float, cabin: float, sill: float) -> Callable[[Any, Any, int], list[Part]]:
    """The parts function of a car body with these proportions."""
    def parts(size, color, variant: int) -> list[Part]:
        return _car(size, color, variant, hood, cabin, sill)
    return parts


def _truck(size, color, variant) -> list[Part]:
    l, w, h = size
    cab_l = 2.2
    parts = [
        box(l / 2 - cab_l / 2, 0, 0.5, cab_l, w, h * 0.78 - 0.5, _rgba(color)),
        box(l / 2 - 0.05, 0, h * 0.45, 0.12, w * 0.9, h * 0.25, GLASS),
        box(-cab_l / 2 - 0.1, 0, 0.9, l - cab_l - 0.2, w, h - 0.9,
            _rgba((0.85, 0.85, 0.82)) if variant % 2 else _shade(color, 0.7)),
        box(l / 2 - 0.03, w * 0.38, 0.7, 0.08, 0.25, 0.15, HEADLIGHT),
        box(l / 2 - 0.03, -w * 0.38, 0.7, 0.08, 0.25, 0.15, HEADLIGHT),
        box(-l / 2 + 0.03, w * 0.4, 0.6, 0.08, 0.2, 0.2, TAILLIGHT),
        box(-l / 2 + 0.03, -w * 0.4, 0.6, 0.08, 0.2, 0.2, TAILLIGHT),
    ]
    return parts + _wheels(l, w, 0.5, [l / 2 - 1.2, -l / 2 + 1.5, -l / 2 + 2.8])


def _bus(size, color, variant) -> list[Part]:
    l, w, h = size
    parts = [
        box(0, 0, 0.35, l, w, h - 0.35, _rgba(color)),
        box(0, 0, h * 0.45, l * 1.002, w * 1.01, h * 0.33, GLASS),
        box(l / 2 - 0.03, w * 0.38, 0.6, 0.08, 0.3, 0.15, HEADLIGHT),
        box(l / 2 - 0.03, -w * 0.38, 0.6, 0.08, 0.3, 0.15, HEADLIGHT),
        box(-l / 2 + 0.03, w * 0.4, 0.7, 0.08, 0.2, 0.3, TAILLIGHT),
        box(-l / 2 + 0.03, -w * 0.4, 0.7, 0.08, 0.2, 0.3, TAILLIGHT),
    ]
    return parts + _wheels(l, w, 0.5, [l / 2 - 2.5, -l / 2 + 3.0])


# ---- people ------------------------------------------------------------------------------------
# A person is built in units of its height (top of the head at 1, soles at 0) from joints and
# limbs, then fitted into its (l, w, h) box: arm spread and shoulder width shrink to fit w, the
# gait shrinks to fit l, and the whole figure is scaled so that its top is exactly h.

SKIN_TONES = ((0.87, 0.70, 0.59), (0.80, 0.62, 0.50), (0.72, 0.54, 0.42), (0.60, 0.43, 0.31),
              (0.46, 0.32, 0.22), (0.32, 0.22, 0.15))
HAIR = ((0.05, 0.04, 0.04), (0.05, 0.04, 0.04), (0.16, 0.10, 0.06), (0.28, 0.18, 0.10), (0.58, 0.45, 0.26),
        (0.50, 0.50, 0.50), (0.36, 0.16, 0.07))
TROUSERS = ((0.16, 0.21, 0.33), (0.16, 0.21, 0.33), (0.10, 0.12, 0.19), (0.06, 0.06, 0.07), (0.06, 0.06, 0.07),
            (0.20, 0.20, 0.21), (0.36, 0.35, 0.34), (0.45, 0.40, 0.30), (0.26, 0.19, 0.13))
SHOES = ((0.04, 0.04, 0.04), (0.04, 0.04, 0.04), (0.18, 0.11, 0.07), (0.80, 0.80, 0.78), (0.30, 0.30, 0.32))
HATS = ((0.08, 0.08, 0.09), (0.12, 0.14, 0.22), (0.45, 0.10, 0.10))


def _rot(rpy) -> np.ndarray:
    """Rotation matrix of roll/pitch/yaw as PyBullet applies them (Rz(yaw) Ry(pitch) Rx(roll))."""
    r, p_, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p_), math.sin(p_), math.cos(y), math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _bounds(pt: Part) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``part_bounds`` as plain floats. Every step is an element-wise operation, done on floats
    in the same order as on arrays (so the same doubles; numpy's minimum / maximum / clip keep
    their own choice between equal values), except a box's matrix product, which numpy does."""
    if pt.shape == "box":
        blo, bhi = _box_bounds(pt)
        return (blo[0], blo[1], blo[2]), (bhi[0], bhi[1], bhi[2])
    x, y, z = pt.pos
    x, y, z = float(x), float(y), float(z)
    if pt.shape == "sphere":
        r = pt.dims[0]
        return (x - r, y - r, z - r), (x + r, y + r, z + r)
    r0, r1, ln = (pt.dims[0], pt.dims[0], pt.dims[1]) if pt.shape == "cylinder" else pt.dims
    roll, pitch, yaw = pt.rpy
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    # the axis is _rot(rpy)[:, 2]; each coordinate's extent by _span (unrolled: no loop, no lists)
    lo0, hi0 = _span(x, cy * sp * cr + sy * sr, ln, r0, r1)
    lo1, hi1 = _span(y, sy * sp * cr - cy * sr, ln, r0, r1)
    lo2, hi2 = _span(z, cp * cr, ln, r0, r1)
    return (lo0, lo1, lo2), (hi0, hi1, hi2)


def _span(c: float, ax: float, ln: float, r0: float, r1: float) -> tuple[float, float]:
    """(lo, hi) along one world axis of a frustum of length ``ln`` centred at ``c`` whose axis has
    the component ``ax`` on it, radius r0 at its start and r1 at its end."""
    q = 1.0 - ax * ax
    disc = math.sqrt(0.0 if q < 0.0 else (1.0 if q > 1.0 else q))  # np.clip keeps x when equal
    a, b = c - ax * ln / 2, c + ax * ln / 2
    p0, p1 = a - r0 * disc, b - r1 * disc
    lo = p0 if p0 < p1 else p1  # np.minimum: the second of equal values
    p0, p1 = a + r0 * disc, b + r1 * disc
    return lo, (p0 if p0 > p1 else p1)


def _box_bounds(pt: Part) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(pt.pos, float)
    ext = np.abs(_rot(pt.rpy)) @ np.asarray(pt.dims, float)
    return c - ext, c + ext


def part_bounds(pt: Part) -> tuple[np.ndarray, np.ndarray]:
    """Exact axis-aligned bounds (lo, hi) of a part in its parent frame."""
    if pt.shape == "box":
        return _box_bounds(pt)
    lo, hi = _bounds(pt)
    return np.array(lo), np.array(hi)


def parts_bounds(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (lo, hi) of all ``parts`` (min and max over the parts' bounds, on
    floats: the same values as numpy's reductions, without building arrays of a few numbers)."""
    los, his = zip(*map(_bounds, parts))
    return (np.array([min(v[0] for v in los), min(v[1] for v in los), min(v[2] for v in los)]),
            np.array([max(v[0] for v in his), max(v[1] for v in his), max(v[2] for v in his)]))


def _norm(x: float, y: float, z: float) -> float:
    """np.linalg.norm of (x, y, z): sqrt of numpy's dot product (which rounds as its BLAS does)."""
    v = np.array((x, y, z))
    return math.sqrt(v.dot(v))


def _limb(a, b, r_a: float, r_b: float, rgba: RGBA, over_a: float = 0.0, over_b: float = 0.0) -> Part:
    """A frustum from point a (radius r_a) to point b (radius r_b), lengthened by ``over_*`` past
    each end so that joints close. (Plain floats, the element-wise steps of the array version.)"""
    ax, ay, az = (float(v) for v in a)
    bx, by, bz = (float(v) for v in b)
    dx, dy, dz = bx - ax, by - ay, bz - az
    n = _norm(dx, dy, dz)
    dx, dy, dz = dx / n, dy / n, dz / n
    ax, ay, az = ax - dx * over_a, ay - dy * over_a, az - dz * over_a
    bx, by, bz = bx + dx * over_b, by + dy * over_b, bz + dz * over_b
    roll, pitch = -math.asin(-1.0 if dy < -1.0 else (1.0 if dy > 1.0 else dy)), math.atan2(dx, dz)
    return Part("frustum", (float(r_a), float(r_b), _norm(bx - ax, by - ay, bz - az)),
                ((ax + bx) / 2, (ay + by) / 2, (az + bz) / 2), rgba, (roll, pitch, 0.0))


def _ball(c, r: float, rgba: RGBA) -> Part:
    return Part("sphere", (float(r), 0.0, 0.0), vec3(c), rgba)


def _dir(fwd: float, out: float, side: int, up: bool = False) -> tuple[float, float, float]:
    """Unit vector of a limb swung ``fwd`` radians forward (about y) and ``out`` radians away
    from the body's mid-plane; pointing down (or up)."""
    s = 1.0 if up else -1.0
    return math.sin(fwd) * math.cos(out), side * math.sin(out), s * math.cos(fwd) * math.cos(out)


def _add(a, b) -> tuple[float, float, float]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _sub(a, b) -> tuple[float, float, float]:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _scale(k: float, v) -> tuple[float, float, float]:
    return k * v[0], k * v[1], k * v[2]


def _ik(s, w, l1: float, l2: float, bend) -> np.ndarray:
    """Middle joint (elbow, knee) of a two-link chain from s to w, bent towards ``bend``."""
    s, w, bend = np.asarray(s, float), np.asarray(w, float), np.asarray(bend, float)
    d = float(np.linalg.norm(w - s))
    u = (w - s) / d
    if d >= l1 + l2:
        return s + u * l1 * d / (l1 + l2)
    a = (l1 * l1 - l2 * l2 + d * d) / (2 * d)
    n = bend - u * float(bend @ u)
    n /= np.linalg.norm(n)
    return s + u * a + n * math.sqrt(max(l1 * l1 - a * a, 0.0))


def _outfit(color, variant: int) -> dict:
    """Clothes, skin and hair drawn from the colour and variant (a pure function of them)."""
    key = [int(round(float(c) * 4093)) for c in tuple(color)[:3]]
    rng = stream_rng(key[0], key[1], key[2], int(variant), OUTFIT)
    top = np.asarray(color[:3], float)
    hat = rng.random() < 0.12
    return {
        "top": _rgba(top), "sleeve": _rgba(top),
        "legs": _rgba(TROUSERS[int(rng.integers(len(TROUSERS)))]),
        "shoes": _rgba(SHOES[int(rng.integers(len(SHOES)))]),
        "skin": _rgba(np.asarray(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]) * rng.uniform(0.95, 1.05)),
        "hair": _rgba(HATS[int(rng.integers(len(HATS)))] if hat else HAIR[int(rng.integers(len(HAIR)))]),
        "hat": hat,
        "hem": float(rng.choice([0.47, 0.47, 0.44, 0.40])),  # jacket / coat length (fraction of height)
        "build": float(rng.uniform(0.92, 1.08)),  # slim .. broad
    }


def _fit(build, size, recentre: bool = True) -> list[Part]:
    """Fit the figure ``build(lat, swing)`` (top of the head near 1) into ``size``: the largest
    lateral spread and swing that fit w and l, the figure then scaled so its top is at h."""
    l, w, h = size

    seen: dict[tuple[float, float], tuple] = {}  # a search and the final layout often ask for the same one

    def layout(lat, swing):
        if (lat, swing) in seen:
            return seen[lat, swing]
        parts = build(lat, swing)
        lo, hi = parts_bounds(parts)
        k = h / (hi[2] - lo[2])
        cx = (lo[0] + hi[0]) / 2 if recentre else 0.0
        cy = (lo[1] + hi[1]) / 2 if recentre else 0.0
        over_x = k * max(hi[0] - cx, cx - lo[0]) - l / 2
        over_y = k * max(hi[1] - cy, cy - lo[1]) - w / 2
        seen[lat, swing] = parts, (cx, cy, lo[2]), k, over_x, over_y
        return seen[lat, swing]

    def search(f, lo_v=0.0):  # the largest v in [lo_v, 1] with f(v) <= 0 (f falls with v)
        if f(1.0) <= 0:
            return 1.0
        lo_, hi_ = lo_v, 1.0
        for _ in range(6):  # to 1/64 of the range: a 1.6 % change of gait or spread does not show
            mid = (lo_ + hi_) / 2
            lo_, hi_ = (mid, hi_) if f(mid) <= 0 else (lo_, mid)
        return lo_

    lat = search(lambda v: layout(v, 0.0)[4], 0.3)
    swing = search(lambda v: max(layout(lat, v)[3:]))
    parts, (cx, cy, z0), k, over_x, over_y = layout(lat, swing)
    if over_x > 1e-9 or over_y > 1e-9:  # last resort: the whole figure smaller than h
        lo, hi = parts_bounds(parts)
        k = min(k, (l / 2) / max(hi[0] - cx, cx - lo[0]), (w / 2) / max(hi[1] - cy, cy - lo[1]))
    out = []
    for pt in parts:
        x, y, z = pt.pos
        dims = (k * pt.dims[0], k * pt.dims[1], k * pt.dims[2])
        out.append(Part(pt.shape, dims, (k * (x - cx), k * (y - cy), k * (z - z0)), pt.rgba, pt.rpy))
    return out


def _person_unit(lat: float, swing: float, variant: int, o: dict, head_frac: float) -> list[Part]:
    """A standing (0), walking (1) or arms-raised (2) person, top of the head at 1 (if arms are
    down), facing +x; ``lat`` scales the lateral spread, ``swing`` the gait."""
    k = (1.0 - head_frac) / (1.0 - 1 / 7.5)  # the body below the chin (children: bigger heads)
    b = o["build"]
    top, sleeve, legs, skin = o["top"], o["sleeve"], o["legs"], o["skin"]
    # legs: hip pivots, knees, ankles; walking plants both feet, the rear one on its toes
    th, sh, foot_h, foot_l = 0.225 * k, 0.225 * k, 0.05 * k, 0.145 * k
    hip_y = 0.05 * k * lat * b
    a_front, b_front = math.radians(20) * swing, math.radians(10) * swing
    a_rear, b_rear, toe = -math.radians(12) * swing, -math.radians(34) * swing, math.radians(28) * swing
    if variant != 1:
        a_front = b_front = a_rear = b_rear = toe = 0.0
    hip_z = foot_h + th * math.cos(a_front) + sh * math.cos(b_front)
    hip_x = -0.01 * k
    parts = []
    # joints as plain float triples: each coordinate is computed by the same float operations, in
    # the same order, as the element-wise numpy version did (so the same doubles), without
    # numpy's per-call cost on three-element arrays; only the shoe's rotation stays a matmul
    for side, a, bb, pitch in ((1, a_front, b_front, 0.0), (-1, a_rear, b_rear, toe)):
        hip = (hip_x, side * hip_y, hip_z)
        knee = _add(hip, _scale(th, (math.sin(a), -side * 0.06 * lat, -math.cos(a))))
        off = np.array([-0.0375, 0.0, 0.025]) * k  # the ankle in the shoe's frame
        ankle_z = 0.11 * k * math.sin(pitch) + 0.05 * k * math.cos(pitch)
        drop = (knee[2] - ankle_z) / math.cos(bb)
        ankle = _add(knee, (math.sin(bb) * drop, -side * 0.004 * lat, -(knee[2] - ankle_z)))
        R = _rot((0.0, pitch, 0.0))
        shoe_c = np.array(ankle) - R @ off
        parts.append(_limb(knee, hip, 0.034 * k * b, 0.052 * k * b, legs, 0.0, 0.02 * k))
        parts.append(_limb(ankle, knee, 0.025 * k * b, 0.034 * k * b, legs, 0.0, 0.012 * k))
        parts.append(Part("box", (foot_l / 2, 0.027 * k * b, 0.025 * k), vec3(shoe_c), o["shoes"],
                          (0.0, pitch, 0.0)))
    lift = hip_z - 0.5 * k  # the upper body rides on the hips
    z = lambda v: v * k + lift  # noqa: E731 a height of the standing figure, moved with the hips
    # torso: two tapered halves (narrow at the hem, broad at the chest) and a core between them
    waist_y, chest_y = 0.046 * k * lat * b, 0.05 * k * lat * b
    hem_r = 0.058 * k * b * (1.1 if o["hem"] < 0.42 else 1.0)
    for side in (-1, 1):
        parts.append(_limb((hip_x, side * waist_y, z(o["hem"])), (0.0, side * chest_y, z(0.835)), hem_r,
                           0.062 * k * b, top))
    parts.append(Part("box", (waist_y, 0.05 * k * b, (0.835 - o["hem"]) * k / 2),
                      (hip_x / 2, 0.0, z((0.835 + o["hem"]) / 2)), top))
    sh_y, sh_z = 0.092 * k * lat * b, z(0.806)
    # arms
    lu, lf = 0.185 * k, 0.16 * k
    if variant == 1:
        arms = {1: (-math.radians(18) * swing, -math.radians(8) * swing),
                -1: (math.radians(16) * swing, math.radians(42) * swing)}
    elif variant == 2:
        arms = {1: (math.radians(12), math.radians(4)), -1: (math.radians(12), math.radians(4))}
    else:
        arms = {1: (math.radians(3), math.radians(10)), -1: (math.radians(3), math.radians(10))}
    for side in (-1, 1):
        shoulder = (0.0, side * sh_y, sh_z)
        fwd, fwd2 = arms[side]
        if variant == 2:  # raised overhead, slightly forward and out
            elbow = _add(shoulder, _scale(lu, _dir(fwd, math.radians(14) * lat, side, up=True)))
            wrist = _add(elbow, _scale(lf, _dir(fwd2, math.radians(6) * lat, side, up=True)))
        else:
            out = math.radians(8) * lat
            elbow = _add(shoulder, _scale(lu, _dir(fwd, out, side)))
            wrist = _add(elbow, _scale(lf, _dir(fwd2, out * 0.7, side)))
        hand_dir = tuple(d / lf for d in _sub(wrist, elbow))
        parts.append(_ball(_add(shoulder, (0.0, 0.0, 0.004 * k)), 0.036 * k * b, top))
        parts.append(_limb(elbow, shoulder, 0.026 * k * b, 0.031 * k * b, sleeve, 0.01 * k))
        parts.append(_limb(wrist, elbow, 0.02 * k * b, 0.026 * k * b, sleeve, 0.0, 0.01 * k))
        parts.append(_ball(_add(wrist, tuple(d * 0.03 * k for d in hand_dir)), 0.026 * k, skin))
    # neck, head, hair (or a hat): top of the head at 1 + lift
    head_r = head_frac * 0.4
    head_c = (0.012 * k, 0.0, 1.0 - head_frac + head_r * 1.02)
    parts.append(Part("cylinder", (0.023 * k * b, 0.08 * k, 0.0), (0.004 * k, 0.0, z(0.85)), skin))
    parts.append(_ball(_add(head_c, (0, 0, lift)), head_r, skin))
    hair_r = head_r * (1.1 if o["hat"] else 1.06)
    hair_c = (head_c[0] + -0.22 * head_r, 0.0, 1.0 - hair_r)
    parts.append(_ball(_add(hair_c, (0, 0, lift)), hair_r, o["hair"]))
    return parts


# The pose of each of a person's variants, as often as people on a street hold it: a third stand,
# most walk, one in twelve raises the arms (waving, hailing; the box then reaches the hands)
PERSON_POSES = (0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2)


def _person(size, color, variant) -> list[Part]:
    """Standing, walking or arms raised (``PERSON_POSES[variant]``: 0, 1, 2); clothes, skin and
    hair follow from the colour. Fills its box: soles at z = 0, the top (head, or raised hands) at h."""
    return list(_person_cached(vec3(size), tuple(float(c) for c in color), int(variant)))


@lru_cache(maxsize=256)
def _person_cached(size, color, variant) -> tuple[Part, ...]:
    h = size[2]
    head_frac = float(np.interp(h, (1.0, 1.5), (1 / 5.8, 1 / 7.5)))
    o = _outfit(color, variant)
    pose = PERSON_POSES[variant % len(PERSON_POSES)]
    return tuple(_fit(lambda lat, swing: _person_unit(lat, swing, pose, o, head_frac), size))


def forget_fitted_people() -> None:
    """Empty the cache of people fitted to their boxes (each frame draws new ones; a benchmark
    that times the same frames twice calls this so that the second pass pays for them too)."""
    _person_cached.cache_clear()


def _quadruped(size, color, variant, neck_up: float) -> list[Part]:
    l, w, h = size
    leg_h = 0.5 * h
    body_h = 0.28 * h
    leg_w = min(0.18, 0.16 * w)
    c = _rgba(color)
    dark = _shade(color, 0.6)
    parts = [box(0, 0, leg_h, 0.7 * l, w, body_h, c)]
    for x in (0.28 * l, -0.28 * l):
        for side in (-1, 1):
            parts.append(box(x, side * (w / 2 - leg_w / 2), 0, leg_w, leg_w, leg_h + 0.02, dark))
    neck_len = (h - leg_h - body_h) * neck_up
    parts.append(box(0.35 * l, 0, leg_h + body_h * 0.5, 0.12 * l, 0.45 * w, neck_len + body_h * 0.5, c))
    head_l = 0.22 * l
    parts.append(box(0.35 * l + head_l / 2, 0, h - 0.13 * h, head_l, 0.5 * w, 0.13 * h, c))
    parts.append(box(-0.36 * l, 0, leg_h + body_h * 0.4, 0.06 * l, 0.2 * w, body_h * 0.5, _shade(color, 1.2)))
    return parts


def _cargo_box(size, color, variant) -> list[Part]:
    l, w, h = size
    parts = [box(0, 0, 0, l, w, h, _rgba(color), yaw=0.0)]
    parts.append(box(0, 0, h - 0.004, l * 1.002, 0.06, 0.01, _shade(color, 0.55)))  # tape
    return parts


def _crates(size, color, variant) -> list[Part]:
    """A spilled load: a few boxes in a heap, inside the asset's box."""
    l, w, h = size
    rng = np.random.default_rng(variant)  # the variant is drawn by the sampler; shapes follow from it
    parts = []
    for k in range(3):
        bl, bw, bh = l * rng.uniform(0.3, 0.5), w * rng.uniform(0.3, 0.5), h * rng.uniform(0.5, 1.0)
        x = rng.uniform(-l / 2 + bl / 2, l / 2 - bl / 2)
        y = rng.uniform(-w / 2 + bw / 2, w / 2 - bw / 2)
        parts.append(box(x, y, 0, bl, bw, bh, _shade(color, rng.uniform(0.7, 1.1))))
    return parts


def _tyre(size, color, variant) -> list[Part]:
    l, w, h = size
    return [Part("cylinder", (l / 2, h, 0.0), (0, 0, h / 2), TYRE)]


def _cone(size, color, variant) -> list[Part]:
    l, w, h = size
    base = 0.04
    return [
        box(0, 0, 0, l, w, base, (0.1, 0.1, 0.1, 1.0)),
        Part("frustum", (l * 0.38, l * 0.06, h - base), (0, 0, base + (h - base) / 2), _rgba(color)),
        Part("frustum", (l * 0.24, l * 0.17, 0.12 * h), (0, 0, base + 0.55 * h), (0.95, 0.95, 0.95, 1.0)),
    ]


def _barrier(size, color, variant) -> list[Part]:
    """Road-works barrier: a striped board on two feet."""
    l, w, h = size
    parts = [box(0, 0, 0, 0.3, w, 0.08, (0.2, 0.2, 0.2, 1.0)),
             box(0, 0, 0, l, 0.3 if w > 0.3 else w, 0.08, (0.2, 0.2, 0.2, 1.0))]
    for x in (-l / 2 + 0.06, l / 2 - 0.06):
        parts.append(box(x, 0, 0, 0.06, 0.06, h, (0.6, 0.6, 0.6, 1.0)))
    n = 5
    for k in range(n):
        c = _rgba(color) if k % 2 == 0 else (0.95, 0.95, 0.95, 1.0)
        parts.append(box(-l / 2 + l * (k + 0.5) / n, 0, h * 0.55, l / n, 0.05, h * 0.3, c))
    return parts


def _overturned(base: Callable) -> Callable:
    """An asset upside down: every part mirrored through the box's mid-height and rolled."""
    def parts(size, color, variant):
        h = size[2]
        out = []
        for pt in base(size, color, variant):
            x, y, z = pt.pos
            r, p_, yw = pt.rpy
            out.append(replace(pt, pos=(x, -y, h - z), rpy=(r + math.pi, p_, yw)))
        return out
    return parts


def _stalled_car(size, color, variant) -> list[Part]:
    """A broken-down car: bonnet raised."""
    l, w, h = size
    parts = _car(size, color, variant, 0.3, 0.42, 0.12)
    hood_l = 0.28 * l
    parts.append(Part("box", (hood_l / 2, w * 0.42, 0.02), (l / 2 - hood_l / 2 - 0.05, 0, 0.55 * h + 0.35 * hood_l),
                      _rgba(color), (0.0, -0.7, 0.0)))
    return parts


def _wheel(x: float, r: float, width: float) -> Part:
    return Part("cylinder", (r, width, 0.0), (x, 0.0, r), TYRE, (math.pi / 2, 0, 0))


def _bicycle(size, color, variant) -> list[Part]:
    l, w, h = size
    r = 0.33
    c = _rgba(color)
    return [
        _wheel(l / 2 - r, r, 0.04), _wheel(-l / 2 + r, r, 0.04),
        Part("box", (l * 0.3, 0.02, 0.02), (0.0, 0.0, r + 0.15), c, (0.0, 0.35, 0.0)),
        Part("box", (0.02, 0.02, 0.2), (-0.18, 0.0, r + 0.25), c),
        Part("box", (0.02, 0.02, 0.22), (l / 2 - r - 0.05, 0.0, r + 0.3), c),
        box(l / 2 - r - 0.05, 0.0, h - 0.03, 0.03, w, 0.03, (0.1, 0.1, 0.1, 1.0)),  # handlebar
        box(-0.2, 0.0, r + 0.45, 0.22, 0.1, 0.05, (0.05, 0.05, 0.05, 1.0)),  # saddle
    ]


def _motorcycle(size, color, variant) -> list[Part]:
    l, w, h = size
    r = 0.31
    return [
        _wheel(l / 2 - r, r, 0.13), _wheel(-l / 2 + r, r, 0.15),
        box(0.05, 0.0, r * 0.7, l * 0.5, 0.32, 0.38, _rgba(color)),
        box(-0.25, 0.0, r + 0.42, 0.6, 0.28, 0.1, (0.08, 0.08, 0.08, 1.0)),
        box(l / 2 - r - 0.1, 0.0, h - 0.05, 0.05, w, 0.05, (0.2, 0.2, 0.2, 1.0)),
        box(l / 2 - 0.02, 0.0, r + 0.35, 0.06, 0.16, 0.12, HEADLIGHT),
    ]


def _rider_unit(lat: float, reach: float, helmet: bool, o: dict) -> list[Part]:
    """A person astride a two-wheeler, leaning forward, hands forward on the bars; top near 1."""
    top, legs, skin = o["top"], o["legs"], o["skin"]
    parts = []
    hip_z, hip_x = 0.45, -0.08
    for side in (-1, 1):
        hip = np.array([hip_x, side * 0.055 * lat, hip_z])
        ankle = np.array([0.02 + 0.04 * reach, side * 0.08 * lat, 0.1])
        knee = _ik(hip, ankle, 0.225, 0.25, (1.0, side * 0.3, 0.2))
        parts.append(_limb(knee, hip, 0.034, 0.052, legs, 0.0, 0.02))
        parts.append(_limb(ankle, knee, 0.025, 0.034, legs, 0.0, 0.012))
        parts.append(Part("box", (0.07, 0.027, 0.025), (float(ankle[0]) + 0.03, float(ankle[1]), 0.075), o["shoes"]))
    lean = math.radians(22)
    axis = np.array([math.sin(lean), 0.0, math.cos(lean)])
    base = np.array([hip_x, 0.0, hip_z - 0.02])
    neck = base + axis * 0.34
    for side in (-1, 1):
        parts.append(_limb(base + np.array([0, side * 0.046 * lat, 0]), neck + np.array([0, side * 0.05 * lat, -0.03]),
                           0.058, 0.062, top))
    parts.append(Part("cylinder", (0.023, 0.08, 0.0), vec3(neck + np.array([0.01, 0, 0.02])), skin,
                      (0.0, lean, 0.0)))
    for side in (-1, 1):
        shoulder = neck + np.array([-0.01, side * 0.092 * lat, -0.03])
        hand = np.array([0.1 + 0.12 * reach, side * 0.12 * lat, 0.6])
        elbow = _ik(shoulder, hand, 0.185, 0.16, (-0.2, side * 0.35, -1.0))
        parts.append(_ball(shoulder, 0.036, top))
        parts.append(_limb(elbow, shoulder, 0.026, 0.031, top, 0.01))
        parts.append(_limb(hand, elbow, 0.02, 0.026, top, 0.0, 0.01))
        parts.append(_ball(hand + (hand - elbow) / 0.16 * 0.02, 0.026, skin))
    head_c = neck + np.array([0.05, 0.0, 0.1])
    parts.append(_ball(head_c, 0.053, skin))
    if helmet:
        parts.append(_ball(head_c + np.array([-0.008, 0.0, 0.012]), 0.064, o["helmet"]))
    else:
        parts.append(_ball(head_c + np.array([-0.012, 0.0, 0.0035 + 0.053 - 0.056]) + np.array([0, 0, 0.02]), 0.056,
                           o["hair"]))
    return parts


def _rider(size, color, variant) -> list[Part]:
    """A person seated astride a two-wheeler, leaning forward (variant 0 helmeted, 1 bare-headed);
    local origin on the ground under the seat; the top of the head at h."""
    o = dict(_outfit(color, variant))
    o["helmet"] = _rgba(HATS[int(round(float(color[0]) * 4093)) % len(HATS)] if variant % 2 == 0
                        else (0.15, 0.15, 0.17))
    return _fit(lambda lat, reach: _rider_unit(lat, reach, variant % 2 == 0, o), tuple(size), recentre=False)


def _horse(size, color, variant) -> list[Part]:
    return _quadruped(size, color, variant, 0.8)


def _branches(size, color, variant) -> list[Part]:
    """A fallen bough: a few lying limbs, shapes from the variant."""
    l, w, h = size
    rng = np.random.default_rng(variant)
    parts = [Part("cylinder", (h / 2, l, 0.0), (0.0, 0.0, h / 2), _rgba(color), (0.0, math.pi / 2, 0.0))]
    for _ in range(4):
        ln = l * rng.uniform(0.3, 0.5)
        x = rng.uniform(-l / 3, l / 3)
        ang = rng.uniform(0.4, 1.0) * rng.choice([-1, 1])
        y = math.sin(ang) * ln / 2
        parts.append(Part("cylinder", (h / 5, ln, 0.0), (x + math.cos(ang) * ln / 2, float(np.clip(y, -w / 2, w / 2)),
                                                             h / 5), _rgba(color), (0.0, math.pi / 2, ang)))
        leaf = (x + math.cos(ang) * ln, float(np.clip(2 * y, -w / 3, w / 3)), min(w, l) * 0.18)
        parts.append(Part("sphere", (min(w, l) * 0.18, 0, 0), leaf, (0.2, 0.33, 0.12, 1.0)))
    return parts


@dataclass(frozen=True)
class AssetDef:
    name: str
    cls: str
    size_range: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # (l, w, h)
    palette: tuple[tuple[float, float, float], ...]
    parts: Callable[[tuple, tuple, int], list[Part]]
    variants: int = 1
    groups: tuple[str, ...] = field(default_factory=tuple)
    rider: bool = False  # a two-wheeler that carries a rider (a separate "rider" actor)
    speed_range: tuple[float, float] | None = None  # m/s; None = the class default (sampler)


CAR_PAINT = ((0.8, 0.8, 0.8), (0.1, 0.1, 0.12), (0.55, 0.05, 0.05), (0.1, 0.2, 0.45), (0.45, 0.47, 0.5),
             (0.9, 0.9, 0.92), (0.2, 0.3, 0.2), (0.7, 0.55, 0.2))
# Street clothing: mostly dark and muted (coats, jackets), a few bright tops; repeats weight the draw
CLOTHES = ((0.08, 0.08, 0.09), (0.08, 0.08, 0.09), (0.12, 0.15, 0.30), (0.12, 0.15, 0.30), (0.22, 0.22, 0.23),
           (0.45, 0.45, 0.45), (0.62, 0.55, 0.42), (0.40, 0.08, 0.08), (0.30, 0.33, 0.18), (0.35, 0.24, 0.15),
           (0.70, 0.12, 0.10), (0.45, 0.60, 0.80), (0.85, 0.85, 0.82), (0.85, 0.70, 0.10))

ASSETS: Registry[AssetDef] = Registry("asset")


def _register(a: AssetDef) -> None:
    ASSETS.add(a.name, a)


for _name, _size, _prop in [
    ("sedan", ((4.2, 4.9), (1.75, 1.9), (1.38, 1.5)), (0.3, 0.42, 0.12)),
    ("hatchback", ((3.7, 4.2), (1.68, 1.8), (1.42, 1.55)), (0.25, 0.55, 0.12)),
    ("suv", ((4.5, 5.0), (1.85, 2.0), (1.65, 1.85)), (0.25, 0.55, 0.2)),
    ("van", ((4.8, 5.6), (1.9, 2.05), (1.9, 2.4)), (0.15, 0.75, 0.15)),
]:
    _register(AssetDef(_name, "car", _size, CAR_PAINT, _car_of(*_prop), groups=("car", "vehicle")))
_register(AssetDef("truck", "truck", ((7.0, 10.0), (2.4, 2.55), (3.0, 3.8)),
                   ((0.8, 0.8, 0.8), (0.2, 0.3, 0.6), (0.7, 0.1, 0.1), (0.9, 0.6, 0.1)), _truck, 2, ("vehicle",)))
_register(AssetDef("bus", "bus", ((11.0, 13.0), (2.5, 2.55), (3.0, 3.3)),
                   ((0.9, 0.75, 0.1), (0.8, 0.1, 0.1), (0.2, 0.4, 0.7), (0.9, 0.9, 0.9)), _bus, 1, ("vehicle",)))
_register(AssetDef("pedestrian", "person", ((0.35, 0.5), (0.5, 0.6), (1.55, 1.95)), CLOTHES, _person, len(PERSON_POSES),
                   ("person",)))
_register(AssetDef("child", "person", ((0.25, 0.35), (0.35, 0.45), (1.0, 1.35)), CLOTHES, _person, len(PERSON_POSES),
                   ("person",)))
_register(AssetDef("deer", "animal", ((1.4, 1.9), (0.35, 0.45), (1.3, 1.7)),
                   ((0.45, 0.3, 0.18), (0.55, 0.38, 0.22), (0.4, 0.28, 0.2)),
                   lambda s, c, v: _quadruped(s, c, v, 1.0), groups=("animal",)))
_register(AssetDef("dog", "animal", ((0.6, 1.0), (0.22, 0.3), (0.45, 0.75)),
                   ((0.15, 0.12, 0.1), (0.6, 0.45, 0.25), (0.85, 0.8, 0.7)),
                   lambda s, c, v: _quadruped(s, c, v, 0.7), groups=("animal",)))
_register(AssetDef("cow", "animal", ((2.0, 2.5), (0.6, 0.75), (1.35, 1.6)),
                   ((0.1, 0.08, 0.07), (0.5, 0.3, 0.2), (0.9, 0.88, 0.85)),
                   lambda s, c, v: _quadruped(s, c, v, 0.45), groups=("animal",)))
_register(AssetDef("cargo_box", "debris", ((0.4, 1.0), (0.3, 0.8), (0.3, 0.7)),
                   ((0.6, 0.45, 0.28), (0.55, 0.4, 0.25), (0.75, 0.75, 0.7)), _cargo_box, groups=("debris",)))
_register(AssetDef("spilled_crates", "debris", ((1.2, 2.2), (1.0, 1.8), (0.4, 0.8)),
                   ((0.55, 0.42, 0.28), (0.35, 0.3, 0.25), (0.2, 0.35, 0.55)), _crates, 64, ("debris",)))
_register(AssetDef("tyre", "debris", ((0.6, 0.8), (0.6, 0.8), (0.18, 0.26)), ((0.05, 0.05, 0.05),), _tyre,
                   groups=("debris",)))
_register(AssetDef("traffic_cone", "traffic cone", ((0.3, 0.38), (0.3, 0.38), (0.5, 0.75)),
                   ((0.95, 0.35, 0.05),), _cone))
_register(AssetDef("barrier", "barrier", ((1.2, 2.0), (0.5, 0.7), (0.9, 1.1)),
                   ((0.85, 0.1, 0.05),), _barrier))
_register(AssetDef("horse", "animal", ((2.0, 2.4), (0.5, 0.65), (2.0, 2.4)),
                   ((0.35, 0.22, 0.12), (0.1, 0.08, 0.07), (0.85, 0.82, 0.78)), _horse, groups=("animal",)))
_register(AssetDef("branches", "debris", ((2.0, 4.0), (0.8, 1.6), (0.15, 0.3)),
                   ((0.32, 0.24, 0.16), (0.28, 0.2, 0.13)), _branches, 64, ("debris",)))
_register(AssetDef("stalled_car", "car", ((4.2, 4.8), (1.75, 1.9), (1.38, 1.5)), CAR_PAINT, _stalled_car,
                   speed_range=(0.0, 0.0)))
_register(AssetDef("overturned_car", "car", ((4.2, 4.8), (1.75, 1.9), (1.38, 1.5)), CAR_PAINT,
                   _overturned(lambda s, c, v: _car(s, c, v, 0.3, 0.42, 0.12)), speed_range=(0.0, 0.0)))
_register(AssetDef("overturned_truck", "truck", ((7.0, 10.0), (2.4, 2.55), (3.0, 3.8)),
                   ((0.8, 0.8, 0.8), (0.2, 0.3, 0.6), (0.7, 0.1, 0.1)), _overturned(_truck), 2, speed_range=(0.0, 0.0)))
_register(AssetDef("bicycle", "bicycle", ((1.65, 1.85), (0.5, 0.6), (1.0, 1.1)),
                   ((0.7, 0.1, 0.1), (0.1, 0.2, 0.6), (0.15, 0.15, 0.15), (0.8, 0.8, 0.8)), _bicycle,
                   groups=("two_wheeler",), rider=True))
_register(AssetDef("motorcycle", "motorcycle", ((1.9, 2.2), (0.7, 0.85), (1.1, 1.3)),
                   ((0.1, 0.1, 0.1), (0.7, 0.1, 0.05), (0.1, 0.2, 0.5)), _motorcycle,
                   groups=("two_wheeler",), rider=True))
_register(AssetDef("rider", "rider", ((0.5, 0.7), (0.45, 0.55), (1.55, 1.8)), CLOTHES, _rider, 2))


def get_asset(name: str) -> AssetDef:
    return ASSETS.get(name)


def list_assets() -> list[str]:
    return ASSETS.names()


def list_groups() -> list[str]:
    return sorted({g for a in ASSETS.values() for g in a.groups})


def resolve_asset_names(name: str) -> list[str]:
    """An asset name, or a group name (``car`` = sedan | hatchback | suv | van)."""
    if name in ASSETS:
        return [name]
    members = [a.name for a in ASSETS.values() if name in a.groups]
    if not members:
        raise UnknownNameError("asset or group", name, list_assets() + list_groups(), "asset")
    return sorted(members)


def asset_parts(asset: str, size, color, variant: int = 0) -> list[Part]:
    return get_asset(asset).parts(tuple(size), tuple(color), int(variant))
