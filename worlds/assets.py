"""Procedural assets: each asset turns a (size, colour, variant) record into primitive parts.

An asset is data plus one small function; nothing here touches PyBullet. Parts are placed in the
actor's local frame: x forward, y left, z up, origin at the centre of the box's bottom face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import numpy as np

from longtail.registry import Registry

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


def _truck(size, color, variant) -> list[Part]:
    l, w, h = size
    cab_l = 2.2
    parts = [
        box(l / 2 - cab_l / 2, 0, 0.5, cab_l, w, h * 0.78 - 0.5, _rgba(color)),
        box(l / 2 - 0.05, 0, h * 0.45, 0.12, w * 0.9, h * 0.25, GLASS),
        box(-cab_l / 2 - 0.1, 0, 0.9, l - cab_l - 0.2, w, h - 0.9, _rgba((0.85, 0.85, 0.82)) if variant % 2 else _shade(color, 0.7)),
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


def _person(size, color, variant) -> list[Part]:
    """Standing (variant 0), mid-stride (1) or arms raised (2); ``size`` height sets proportions."""
    _, w, h = size
    head_r = 0.065 * h
    leg_h = 0.47 * h
    torso_h = 0.33 * h
    pants = _shade(color, 0.35)
    stride = 0.18 * h * (1 if variant == 1 else 0) * 0.35
    leg_w = 0.28 * w
    parts = [
        box(stride, 0.12 * w + leg_w / 2 - 0.05, 0, 0.13 * h * 0.8, leg_w, leg_h, pants),
        box(-stride, -0.12 * w - leg_w / 2 + 0.05, 0, 0.13 * h * 0.8, leg_w, leg_h, pants),
        box(0, 0, leg_h, 0.12 * h, 0.62 * w, torso_h, _rgba(color)),
        Part("sphere", (head_r, 0, 0), (0, 0, leg_h + torso_h + 0.02 * h + head_r), SKIN),
    ]
    arm_len = 0.34 * h
    for side in (-1, 1):
        if variant == 2:
            parts.append(box(0, side * (0.31 * w + 0.04), leg_h + torso_h, 0.07 * h, 0.08, arm_len * 0.8, _rgba(color)))
        else:
            parts.append(box(-stride * side, side * (0.31 * w + 0.04), leg_h + torso_h - arm_len, 0.07 * h, 0.08, arm_len, _rgba(color)))
    return parts


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
    parts = [box(0, 0, 0, 0.3, w, 0.08, (0.2, 0.2, 0.2, 1.0)), box(0, 0, 0, l, 0.3 if w > 0.3 else w, 0.08, (0.2, 0.2, 0.2, 1.0))]
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


def _rider(size, color, variant) -> list[Part]:
    """A person seated astride a two-wheeler, leaning forward; local origin on the ground."""
    l, w, h = size  # h: top of the head above the ground
    seat = 0.42 * h
    torso = 0.3 * h
    pants = _shade(color, 0.35)
    parts = [box(0.05, s * 0.12, 0.05, 0.12, 0.12, seat, pants) for s in (-1, 1)]
    parts.append(Part("box", (0.09 * h, 0.2, torso / 2), (0.05, 0.0, seat + torso / 2), _rgba(color), (0.0, 0.35, 0.0)))
    parts.append(Part("sphere", (0.065 * h, 0, 0), (0.05 + 0.35 * torso * 0.5 + 0.05, 0.0, seat + torso + 0.06 * h),
                      SKIN if variant % 2 else (0.15, 0.15, 0.17, 1.0)))  # bare head or helmet
    for side in (-1, 1):
        parts.append(Part("box", (0.2 * h / 2, 0.04, 0.04), (0.25, side * 0.2, seat + torso * 0.75), _rgba(color),
                          (0.0, 0.5, 0.0)))
    return parts


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
        parts.append(Part("sphere", (min(w, l) * 0.18, 0, 0), (x + math.cos(ang) * ln, float(np.clip(2 * y, -w / 3, w / 3)),
                                                              min(w, l) * 0.18), (0.2, 0.33, 0.12, 1.0)))
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
CLOTHES = ((0.15, 0.2, 0.45), (0.5, 0.1, 0.1), (0.2, 0.2, 0.2), (0.7, 0.7, 0.65), (0.3, 0.45, 0.25), (0.8, 0.6, 0.1))

ASSETS: Registry[AssetDef] = Registry("asset")


def _register(a: AssetDef) -> None:
    ASSETS.add(a.name, a)


for _name, _size, _prop in [
    ("sedan", ((4.2, 4.9), (1.75, 1.9), (1.38, 1.5)), (0.3, 0.42, 0.12)),
    ("hatchback", ((3.7, 4.2), (1.68, 1.8), (1.42, 1.55)), (0.25, 0.55, 0.12)),
    ("suv", ((4.5, 5.0), (1.85, 2.0), (1.65, 1.85)), (0.25, 0.55, 0.2)),
    ("van", ((4.8, 5.6), (1.9, 2.05), (1.9, 2.4)), (0.15, 0.75, 0.15)),
]:
    _register(AssetDef(_name, "car", _size, CAR_PAINT,
                       (lambda s, c, v, p=_prop: _car(s, c, v, *p)), groups=("car", "vehicle")))
_register(AssetDef("truck", "truck", ((7.0, 10.0), (2.4, 2.55), (3.0, 3.8)),
                   ((0.8, 0.8, 0.8), (0.2, 0.3, 0.6), (0.7, 0.1, 0.1), (0.9, 0.6, 0.1)), _truck, 2, ("vehicle",)))
_register(AssetDef("bus", "bus", ((11.0, 13.0), (2.5, 2.55), (3.0, 3.3)),
                   ((0.9, 0.75, 0.1), (0.8, 0.1, 0.1), (0.2, 0.4, 0.7), (0.9, 0.9, 0.9)), _bus, 1, ("vehicle",)))
_register(AssetDef("pedestrian", "person", ((0.35, 0.5), (0.5, 0.6), (1.55, 1.95)), CLOTHES, _person, 3, ("person",)))
_register(AssetDef("child", "person", ((0.25, 0.35), (0.35, 0.45), (1.0, 1.35)), CLOTHES, _person, 3, ("person",)))
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
        raise KeyError(f"unknown asset or group {name!r}; choices: {', '.join(list_assets() + list_groups())}")
    return sorted(members)


def asset_parts(asset: str, size, color, variant: int = 0) -> list[Part]:
    return get_asset(asset).parts(tuple(size), tuple(color), int(variant))
