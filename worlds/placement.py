"""Is a concrete Scene physically placed? Floating and interpenetrating actors, from geometry alone.

``placement_problems(scene)`` checks every actor's 3D box (``Actor.size`` l, w, h metres, bottom
centre ``position``, heading ``yaw``: an upright oriented box) against the other actors and the
static world of the scene's layout (``layouts.static_world``; a plate's ground is the plane z = 0),
without PyBullet, so it can re-check any saved frame record in milliseconds:

- **floating**: the bottom of an actor's box stands more than ``floating_tol_m`` above the highest
  surface under its footprint: the top of a static part (road, sidewalk, terrain, ...) or of
  another actor whose footprint it overlaps, among those whose top is not above the actor's bottom
  by more than ``penetration_tol_m`` (a wall it cuts into holds nothing up). Nothing under it at all
  is floating too.
- **interpenetration**: two actors' boxes, or an actor's box and a static part, overlap by more
  than ``penetration_tol_m``: the penetration depth, the smallest distance that would separate
  them (separating axes of the two footprints in the ground plane, and the overlap in z), exceeds
  it. A rider and its two-wheeler (``Actor.parent``) may touch and are not compared. The ground's
  parts (road, sidewalk, terrain: slabs a few centimetres thick) count as solid all the way down,
  so an actor sunk into the road interpenetrates the ground (and does not float).

Static parts are taken as their shapes: upright boxes by their yaw, cylinders and cones (frusta)
standing upright as vertical cylinders (a cone by its wider radius, as ``physics`` does), spheres
as spheres; a part tilted out of the upright is taken as its bounding box in world axes (no layout
builds one). Paint-thin parts (lane markings, window panes, sign plates) are left out, as
``physics.Physics`` leaves them out of its collision world.

The defaults allow what ``physics`` itself leaves: actors settle a centimetre into the road (their
collision boxes are ``SHRINK_M`` smaller than the 3D box) and may touch a kerb by
``PENETRATION_TOL_M`` plus that margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from longtail.worlds.assets import Part
from longtail.worlds.layouts import static_world
from longtail.worlds.physics import PAINT_M, PANE_M
from longtail.worlds.scene import Actor, Scene

FLOATING_TOL_M = 0.1  # a bottom this far above the surface under it floats
PENETRATION_TOL_M = 0.05  # boxes overlapping deeper than this interpenetrate
TILT_RAD = 1e-6  # roll or pitch beyond this: the part is not upright
PLATE_GROUND_Z = 0.0  # a plate's ground plane (``layouts.PlateLayout``)
# static classes that are the ground: thin slabs on screen, solid below their top for the checks
GROUND_CLASSES = frozenset({"road", "sidewalk", "terrain", "ground"})

Kind = Literal["floating", "interpenetration"]


@dataclass(frozen=True)
class PlacementProblem:
    """One actor placed against physics: what (``kind``), which actor, and a one-line detail."""

    kind: Kind
    actor: int
    detail: str

    def __str__(self) -> str:
        return f"actor {self.actor}: {self.detail}"


@dataclass(frozen=True)
class _Solids:
    """Upright solids as arrays, one row each. ``shape``: 0 box, 1 vertical cylinder, 2 sphere.
    ``xy``: (N, 2) footprint centre; ``half``: (N, 2) box half extents (cylinder, sphere: the
    radius twice); ``yaw``: (N,); ``z``: (N, 2) bottom and top (a ground part's bottom is -inf);
    ``names``: what each is."""

    shape: np.ndarray
    xy: np.ndarray
    half: np.ndarray
    yaw: np.ndarray
    z: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def reach(self) -> np.ndarray:
        """(N,) radius of the footprint around ``xy``."""
        return np.hypot(self.half[:, 0], self.half[:, 1]) * np.where(self.shape == 0, 1.0, 1.0 / math.sqrt(2))


def _thin(pt: Part) -> bool:
    hx, hy, hz = pt.dims
    return pt.shape == "box" and (hx < PANE_M or hy < PANE_M or hz < PAINT_M)


def _part_row(pt: Part) -> tuple[int, float, float, float, float, float, float, float]:
    """(shape, x, y, half x, half y, yaw, bottom, top) of an upright solid standing for ``pt``."""
    x, y, z = pt.pos
    a, b, c = pt.dims
    roll, pitch, yaw = pt.rpy
    if abs(roll) > TILT_RAD or abs(pitch) > TILT_RAD:
        ext = {"box": (a, b, c), "sphere": (a, a, a), "cylinder": (a, a, b / 2)}.get(pt.shape, (max(a, b), max(a, b),
                                                                                                 c / 2))
        local = np.array(np.meshgrid(*[(-e, e) for e in ext], indexing="ij")).reshape(3, -1).T
        cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw),
                                  math.sin(yaw))
        rot = (np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
               @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]]))
        hx, hy, hz = np.abs(local @ rot.T).max(0)
        return 0, x, y, float(hx), float(hy), 0.0, z - float(hz), z + float(hz)
    if pt.shape == "box":
        return 0, x, y, a, b, yaw, z - c, z + c
    if pt.shape == "sphere":
        return 2, x, y, a, a, 0.0, z - a, z + a
    if pt.shape == "cylinder":
        return 1, x, y, a, a, 0.0, z - b / 2, z + b / 2
    r = max(a, b)  # a frustum (cone) by its enclosing cylinder
    return 1, x, y, r, r, 0.0, z - c / 2, z + c / 2


def _actor_row(a: Actor) -> tuple[int, float, float, float, float, float, float, float]:
    l, w, h = a.size
    x, y, z = a.position
    return 0, x, y, l / 2, w / 2, a.yaw, z, z + h


def _solids(rows: list[tuple[int, float, float, float, float, float, float, float]], names: list[str],
            ground: frozenset[str] = frozenset()) -> _Solids:
    arr = np.array(rows, np.float64).reshape(-1, 8)
    # the ground is solid all the way down: an actor sunk through a 5 cm road slab is inside the ground
    arr[[n in ground for n in names], 6] = -np.inf
    return _Solids(arr[:, 0].astype(np.int64), arr[:, 1:3], arr[:, 3:5], arr[:, 5], arr[:, 6:8], names)


def _static_solids(scene: Scene) -> tuple[_Solids, float | None]:
    """The static world of ``scene`` as upright solids, and the height of an endless ground plane
    under everything (a plate's; None for a road layout, whose ground is its parts)."""
    if scene.layout.kind == "plate":  # no need to load the plate: its ground is the plane z = 0
        return _solids([], []), PLATE_GROUND_Z
    static = static_world(scene.layout)
    parts = [(cls, pt) for cls, pt in static.parts if not _thin(pt)] + [("ground", pt) for pt in static.support]
    return _solids([_part_row(pt) for _, pt in parts], [cls for cls, _ in parts], GROUND_CLASSES), None


def _depth_2d(a: tuple, s: _Solids, idx: np.ndarray) -> np.ndarray:
    """Penetration depth in the ground plane (> 0: the footprints overlap) of the upright box
    ``a`` (an ``_actor_row``) and the solids ``idx``; spheres count by their footprint circle."""
    _, ax, ay, ahx, ahy, ayaw, _, _ = a
    d = s.xy[idx] - np.array([ax, ay])
    ca, sa = math.cos(ayaw), math.sin(ayaw)
    out = np.full(len(idx), np.inf)
    box = s.shape[idx] == 0
    if box.any():  # separating axes: the two axes of each footprint
        bi = idx[box]
        cb, sb = np.cos(s.yaw[bi]), np.sin(s.yaw[bi])
        bhx, bhy = s.half[bi, 0], s.half[bi, 1]
        db = d[box]
        for ux, uy, own in ((ca, sa, ahx), (-sa, ca, ahy)):
            other = bhx * np.abs(cb * ux + sb * uy) + bhy * np.abs(-sb * ux + cb * uy)
            out[box] = np.minimum(out[box], own + other - np.abs(db[:, 0] * ux + db[:, 1] * uy))
        for k, (ux, uy) in enumerate(((cb, sb), (-sb, cb))):
            own = ahx * np.abs(ca * ux + sa * uy) + ahy * np.abs(-sa * ux + ca * uy)
            other = bhx if k == 0 else bhy
            out[box] = np.minimum(out[box], own + other - np.abs(db[:, 0] * ux + db[:, 1] * uy))
    round_ = ~box
    if round_.any():  # a circle against the box: the circle's centre in the box's frame
        dr = d[round_]
        lx, ly = dr[:, 0] * ca + dr[:, 1] * sa, -dr[:, 0] * sa + dr[:, 1] * ca
        qx, qy = np.clip(lx, -ahx, ahx), np.clip(ly, -ahy, ahy)
        dist = np.hypot(lx - qx, ly - qy)
        inside = np.minimum(ahx - np.abs(lx), ahy - np.abs(ly))
        r = s.half[idx[round_], 0]
        out[round_] = np.where(dist > 0, r - dist, r + inside)
    return out


def _sphere_depth(a: tuple, s: _Solids, idx: np.ndarray) -> np.ndarray:
    """Penetration depth of the upright box ``a`` and the spheres ``idx`` (exact, in 3D)."""
    _, ax, ay, ahx, ahy, ayaw, az0, az1 = a
    d = s.xy[idx] - np.array([ax, ay])
    ca, sa = math.cos(ayaw), math.sin(ayaw)
    lx, ly = d[:, 0] * ca + d[:, 1] * sa, -d[:, 0] * sa + d[:, 1] * ca
    lz = s.z[idx].mean(1) - (az0 + az1) / 2
    hz = (az1 - az0) / 2
    q = np.stack([np.clip(lx, -ahx, ahx), np.clip(ly, -ahy, ahy), np.clip(lz, -hz, hz)], 1)
    dist = np.linalg.norm(np.stack([lx, ly, lz], 1) - q, axis=1)
    inside = np.minimum(np.minimum(ahx - np.abs(lx), ahy - np.abs(ly)), hz - np.abs(lz))
    r = s.half[idx, 0]
    return np.where(dist > 0, r - dist, r + inside)


def _depth(a: tuple, s: _Solids, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(penetration depth in 3D, footprint overlap in 2D) of the box ``a`` and solids ``idx``."""
    flat = _depth_2d(a, s, idx)
    z_overlap = np.minimum(a[7], s.z[idx, 1]) - np.maximum(a[6], s.z[idx, 0])
    depth = np.minimum(flat, z_overlap)
    sphere = s.shape[idx] == 2
    if sphere.any():
        depth[sphere] = _sphere_depth(a, s, idx[sphere])
    return depth, flat


def _within(s: _Solids, s_reach: np.ndarray, idx: np.ndarray, row: tuple, reach: float) -> np.ndarray:
    """Those of the solids ``idx`` whose footprint may reach the footprint of ``row`` (``reach``:
    its radius)."""
    d = np.hypot(s.xy[idx, 0] - row[1], s.xy[idx, 1] - row[2])
    return idx[d < s_reach[idx] + reach]


def placement_problems(scene: Scene, floating_tol_m: float = FLOATING_TOL_M,
                       penetration_tol_m: float = PENETRATION_TOL_M) -> list[PlacementProblem]:
    """Every floating or interpenetrating actor of ``scene`` (see the module docstring), in actor
    order; empty if all stand plausibly. Tolerances in metres."""
    static, ground_z = _static_solids(scene)
    actors = list(scene.actors)
    rows = [_actor_row(a) for a in actors]
    movers = _solids(rows, [f"actor {a.id} ({a.asset})" for a in actors])
    s_reach, m_reach = static.reach(), movers.reach()
    out: list[PlacementProblem] = []
    for i, a in enumerate(actors):
        row = rows[i]
        reach = math.hypot(row[3], row[4])
        near = _within(static, s_reach, np.arange(len(static)), row, reach)
        depth, flat = _depth(row, static, near)
        others = np.array([j for j, b in enumerate(actors) if j != i and a.parent != b.id and b.parent != a.id],
                          np.int64)
        others = _within(movers, m_reach, others, row, reach)
        a_depth, a_flat = _depth(row, movers, others)
        bottom = row[6]
        # what holds it up: the highest top under its footprint that it does not cut into (the
        # ground holds up what sinks into it: that is interpenetration, not floating)
        is_ground = np.isneginf(static.z[near, 0])
        tops = np.concatenate([np.where(is_ground, np.minimum(static.z[near, 1], bottom), static.z[near, 1])[flat > 0],
                               movers.z[others, 1][a_flat > 0]])
        tops = tops[tops <= bottom + penetration_tol_m]
        support = max(tops.max(initial=-np.inf), -np.inf if ground_z is None else ground_z)
        if bottom - support > floating_tol_m:
            under = "nothing under it" if support == -np.inf else f"{bottom - support:.2f} m above the surface under it"
            out.append(PlacementProblem("floating", a.id, f"floating: bottom at z {bottom:.2f} m, {under}"))
        hits = [(float(d), static.names[k]) for d, k in zip(depth, near) if d > penetration_tol_m]
        # a pair of actors is reported once, at the first of the two
        hits += [(float(d), movers.names[k]) for d, k in zip(a_depth, others) if d > penetration_tol_m and k > i]
        if ground_z is not None and ground_z - bottom > penetration_tol_m:
            hits.append((ground_z - bottom, "the ground"))
        if hits:
            d, name = max(hits)
            more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
            out.append(PlacementProblem("interpenetration", a.id, f"interpenetrates {name} by {d:.2f} m{more}"))
    return out
