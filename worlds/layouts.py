"""Road layouts: the road's geometry (a centreline frame, lanes, directions, where things may
stand) and the static roadside (buildings, trees, poles, lamps, signs) as primitive parts,
deterministic from a ``Layout`` record. Registry: ``get_layout(kind)`` / ``list_layouts()``.

Road frame: ``s`` is the distance along the ego road's centreline (the ego at s = 0, driving +s),
``t`` the lateral offset to the left. ``pose(s, t)`` gives world (x, y, heading). Roadside props
are built in a local frame (x along the road, y left) and placed with ``put``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from longtail.registry import Registry
from longtail.worlds.assets import Part, box
from longtail.worlds.plates import load_plate_cached
from longtail.worlds.scene import Layout

ASPHALT = (0.22, 0.22, 0.23, 1.0)
MARKING = (0.92, 0.92, 0.9, 1.0)
KERB = (0.55, 0.55, 0.53, 1.0)
PAVEMENT = (0.62, 0.6, 0.57, 1.0)
GRASS = (0.24, 0.38, 0.16, 1.0)
FOLIAGE = ((0.16, 0.32, 0.12), (0.22, 0.36, 0.14), (0.3, 0.4, 0.16))
BARK = (0.3, 0.22, 0.15, 1.0)
METAL = (0.5, 0.52, 0.55, 1.0)
CONCRETE = (0.7, 0.7, 0.68, 1.0)
FACADES = ((0.72, 0.66, 0.58), (0.55, 0.5, 0.46), (0.8, 0.78, 0.72), (0.5, 0.32, 0.26), (0.62, 0.64, 0.66))
# the main surface colour of each static class: a randomised frame (``Randomization.surfaces``)
# gives the class a new colour and every part of it keeps its brightness relative to this one
SURFACE_BASE = {
    "road": ASPHALT[:3], "sidewalk": PAVEMENT[:3], "terrain": GRASS[:3], "building": (0.64, 0.58, 0.54),
    "vegetation": FOLIAGE[1], "pole": METAL[:3], "traffic sign": (0.8, 0.1, 0.1), "guard rail": CONCRETE[:3],
}

BEHIND_M = 30.0  # road drawn behind the ego, so side cameras and shadows see ground
TERRAIN_WIDTH_M = 80.0
SIDEWALK_Z = 0.15
PIECE_M = 12.0  # long strips are cut into pieces this long (see ``RoadLayout.along``)

Labelled = list[tuple[str, Part]]


def part_radius(pt: Part) -> float:
    """Radius of a sphere around the part's centre that holds all of it."""
    if pt.shape == "box":
        return math.sqrt(pt.dims[0] ** 2 + pt.dims[1] ** 2 + pt.dims[2] ** 2)
    if pt.shape == "sphere":
        return pt.dims[0]
    if pt.shape == "cylinder":
        return math.hypot(pt.dims[0], pt.dims[1] / 2)
    return math.hypot(max(pt.dims[0], pt.dims[1]), pt.dims[2] / 2)


@dataclass(frozen=True)
class Static:
    """The static world: (semantic class name, part in world coordinates) and lamp positions."""

    parts: Labelled
    lamps: list[tuple[float, float, float]]
    # ground for physics only, never drawn (plates: the photo is the ground)
    support: tuple[Part, ...] | list[Part] = ()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) part centres and (N,) enclosing radii, for fast proximity queries."""
        parts = [pt for _, pt in self.parts] + list(self.support)
        centres = np.array([pt.pos for pt in parts], float).reshape(-1, 3)
        return centres, np.array([part_radius(pt) for pt in parts], float)


@dataclass(frozen=True)
class Span:
    """A strip of ground where actors of a region stand, in a road's frame: lateral range
    [t0, t1], heading relative to the road, surface z. ``snap``: lanes keep actors near the
    centre line. ``road``: "main" (the ego road, s = distance ahead of the ego) or "cross" (a
    crossing road, s = signed distance from the junction centre, sign ``side``); ``s_range``
    pins s to a stretch of the road (a zebra crossing) instead of the distance ahead."""

    t0: float
    t1: float
    heading: float
    z: float
    snap: bool
    road: str = "main"
    side: float = 1.0
    s_range: tuple[float, float] | None = None  # fixed s on the road instead of a distance ahead


def _transform(part: Part, x: float, y: float, z: float, heading: float) -> Part:
    c, s = math.cos(heading), math.sin(heading)
    px, py, pz = part.pos
    r, p, yw = part.rpy
    return Part(part.shape, part.dims, (x + c * px - s * py, y + s * px + c * py, z + pz), part.rgba,
                (r, p, yw + heading))


class RoadLayout:
    """Base: a straight carriageway with lanes; subclasses add the roadside and shapes."""

    kind = "straight"
    urban = False
    roadside_width = 3.0  # metres beside the carriageway where roadside actors may stand
    solid_centre = False  # solid (not dashed) line between the two directions
    double_centre = False

    def __init__(self, layout: Layout):
        self.spec = layout
        self.half = layout.lanes * layout.lane_width / 2

    # geometry --------------------------------------------------------------------------
    def pose(self, s: float, t: float) -> tuple[float, float, float]:
        """World (x, y, heading) of road coordinates (s, t) on the ego road."""
        return s, t, 0.0

    def pose_on(self, road: str, s: float, t: float) -> tuple[float, float, float]:
        if road == "main":
            return self.pose(s, t)
        raise KeyError(f"layout {self.kind!r} has no road {road!r}")

    def lane_center(self, i: int) -> float:
        """Lateral position of lane ``i`` (0 = rightmost, the ego's side of the road)."""
        return -self.half + (i + 0.5) * self.spec.lane_width

    def forward_lanes(self) -> list[int]:
        n = self.spec.lanes
        return list(range(max(1, n // 2))) if n > 1 else [0]

    def oncoming_lanes(self) -> list[int]:
        return [i for i in range(self.spec.lanes) if i not in self.forward_lanes()]

    def spans(self, region: str) -> list[Span]:
        lw = self.spec.lane_width
        def lane(i: int, h: float) -> Span:
            return Span(self.lane_center(i) - lw / 2, self.lane_center(i) + lw / 2, h, 0.0, True)
        side_z = SIDEWALK_Z if self.urban else 0.0
        rw = self.roadside_width
        right = Span(-self.half - rw, -self.half - 0.3, 0.0, side_z, False)
        table = {
            "ego_lane": [lane(self.spec.ego_lane, 0.0)],
            "same_direction": [lane(i, 0.0) for i in self.forward_lanes()],
            "oncoming": [lane(i, math.pi) for i in self.oncoming_lanes()],
            "road": [Span(-self.half, self.half, 0.0, 0.0, False)],
            "roadside": [right, Span(self.half + 0.3, self.half + rw, 0.0, side_z, False)],
            "right_roadside": [right],
            # the kerb-side strip of the outer lanes: parked vehicles
            "parked": [Span(-self.half + 0.2, -self.half + lw - 0.2, 0.0, 0.0, True),
                       Span(self.half - lw + 0.2, self.half - 0.2, math.pi, 0.0, True)] if self.urban else [],
        }
        table.update(self.extra_spans())
        if region not in table:
            raise KeyError(f"unknown region {region!r}; choices: {', '.join(REGIONS)}")
        if not table[region]:
            raise KeyError(f"layout {self.kind!r} has no region {region!r}")
        return table[region]

    def extra_spans(self) -> dict[str, list[Span]]:
        return {}

    @classmethod
    def has_region(cls, region: str, lanes: int = 2) -> bool:
        if cls.kind == "plate":
            return region == "ground"
        probe = cls(Layout(kind=cls.kind, lanes=lanes, lane_width=3.5, ego_lane=0, length=100.0, seed=0))
        try:
            probe.spans(region)
        except KeyError:
            return False
        return True

    # building blocks -------------------------------------------------------------------
    def along(self, s0: float, s1: float, t: float, z0: float, width: float, height: float, rgba,
              piece: float = PIECE_M) -> list[Part]:
        """A strip following the road from s0 to s1 at lateral offset t, cut into pieces.

        PyBullet's tiny renderer scans the screen-space bounding box of every triangle, so one
        triangle running from behind the camera to the horizon costs a full-screen pass; short
        pieces keep far geometry cheap (and let strips follow curves).
        """
        n = max(1, math.ceil((s1 - s0) / piece))
        step = (s1 - s0) / n
        out = []
        for k in range(n):
            x, y, h = self.pose(s0 + (k + 0.5) * step, t)
            out.append(box(x, y, z0, step + self.overlap(width), width, height, rgba, yaw=h))
        return out

    def overlap(self, width: float) -> float:
        """Extra length per piece so pieces meet on curves (0 on straight roads)."""
        return 0.0

    def put(self, parts: Labelled, s: float, t: float, z: float = 0.0) -> Labelled:
        """Place props built in a local frame (x along the road, y left) at road (s, t)."""
        x, y, h = self.pose(s, t)
        return [(cls, _transform(pt, x, y, z, h)) for cls, pt in parts]

    # static world ----------------------------------------------------------------------
    def static(self) -> Static:
        """Everything static: ground, road, markings and the roadside."""
        rng = np.random.default_rng(self.spec.seed)
        out: Labelled = self.ground()
        out += [("road", p) for p in self.carriageway()]
        out += [("road", p) for p in self.markings(rng)]
        lamps: list[tuple[float, float, float]] = []
        out += self.roadside(rng, lamps)
        return Static(out, lamps)

    def ground(self) -> Labelled:
        """Grass beside (not under) the road: hidden surfaces still cost raster time."""
        L, out = self.spec.length, []
        for side in (-1, 1):
            for k in range(int(TERRAIN_WIDTH_M // 20)):
                t = side * (self.half + 10.0 + 20.0 * k)
                out += [("terrain", p) for p in self.along(-BEHIND_M, L + 60, t, -0.33, 20.0, 0.3, GRASS, 20.0)]
        return out

    def carriageway(self) -> list[Part]:
        return self.along(-BEHIND_M, self.spec.length, 0.0, -0.05, 2 * self.half, 0.05, ASPHALT)

    def marking_gaps(self) -> list[tuple[float, float]]:
        """Stretches of s with no lane markings (junction boxes)."""
        return []

    def _unmarked(self, s: float) -> bool:
        return any(a <= s <= b for a, b in self.marking_gaps())

    def markings(self, rng: np.random.Generator) -> list[Part]:
        L, lw = self.spec.length, self.spec.lane_width
        gaps = sorted(self.marking_gaps())
        stretches, s = [], -BEHIND_M
        for a, b in gaps:
            stretches.append((s, a))
            s = b
        stretches.append((s, L))
        parts = []
        for a, b in stretches:
            if b - a < 1.0:
                continue
            for t in (-self.half + 0.2, self.half - 0.2):  # solid edge lines
                parts += self.along(a, b, t, 0.0, 0.15, 0.012, MARKING)
            fwd, onc = self.forward_lanes(), self.oncoming_lanes()
            for i in range(1, self.spec.lanes):
                t = -self.half + i * lw
                if (i - 1) in fwd and i in onc and self.solid_centre:
                    for dt in ((-0.12, 0.12) if self.double_centre else (0.0,)):
                        parts += self.along(a, b, t + dt, 0.0, 0.12, 0.012, MARKING)
                    continue
                s = a + rng.uniform(0, 9.0)
                while s + 3.0 < b:
                    parts += self.along(s, s + 3.0, t, 0.0, 0.12, 0.012, MARKING)
                    s += 9.0
        return parts

    def roadside(self, rng: np.random.Generator, lamps: list) -> Labelled:
        """Roadside parts; lamp head positions are appended to ``lamps``."""
        return []


# roadside props, in a local frame at their base: x along the road, y left -------------------
def tree(h: float, rng: np.random.Generator) -> Labelled:
    trunk_h = h * rng.uniform(0.3, 0.45)
    crown = h - trunk_h
    col = FOLIAGE[int(rng.integers(len(FOLIAGE)))]
    return [
        ("vegetation", Part("cylinder", (0.08 + 0.02 * h, trunk_h + 0.3, 0), (0, 0, (trunk_h + 0.3) / 2), BARK)),
        ("vegetation", Part("sphere", (crown * 0.45, 0, 0), (0, 0, trunk_h + crown * 0.45), (*col, 1.0))),
        ("vegetation", Part("sphere", (crown * 0.33, 0, 0),
                            (rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), trunk_h + crown * 0.8),
                            (*np.clip(np.asarray(col) * 1.15, 0, 1), 1.0))),
    ]


LAMP_H = 8.0


def lamp(side: int) -> Labelled:
    """A street lamp whose arm reaches over the road (towards -side * y); head at (0, -1.6 side)."""
    return [
        ("pole", Part("cylinder", (0.09, LAMP_H, 0), (0, 0, LAMP_H / 2), METAL)),
        ("pole", box(0, -side * 0.9, LAMP_H - 0.1, 0.25, 1.8, 0.12, METAL)),
        ("pole", box(0, -side * 1.6, LAMP_H - 0.25, 0.5, 0.3, 0.15, (0.9, 0.9, 0.8, 1.0))),
    ]


def sign(rng: np.random.Generator) -> Labelled:
    colour = [(0.8, 0.1, 0.1, 1.0), (0.1, 0.25, 0.7, 1.0), (0.95, 0.95, 0.95, 1.0)][int(rng.integers(3))]
    return [("pole", Part("cylinder", (0.04, 2.6, 0), (0, 0, 1.3), METAL)),
            ("traffic sign", box(0, 0, 2.1, 0.04, 0.65, 0.65, colour))]


def building(length: float, depth: float, height: float, side: int, rng: np.random.Generator) -> Labelled:
    """A block whose street facade is the local y = 0 plane, extending away from the road
    (towards side * y), with rows of windows (a quarter of them lit)."""
    col = FACADES[int(rng.integers(len(FACADES)))]
    out = [("building", box(0, side * depth / 2, 0.0, length, depth, height, (*col, 1.0)))]
    floors, cols = int(height // 3.2), max(1, int(length // 3.0))
    lit = rng.random((floors, cols)) < 0.25
    for f in range(1, floors):
        for c in range(cols):
            colour = (0.85, 0.75, 0.45, 1.0) if lit[f, c] else (0.12, 0.14, 0.17, 1.0)
            out.append(("building", box(-length / 2 + (c + 0.5) * length / cols, -side * 0.02, f * 3.2 + 0.9,
                                        1.4, 0.06, 1.5, colour)))
    return out


class UrbanStreet(RoadLayout):
    """City street: kerbs and sidewalks, building facades, street lamps, trees and signs."""

    kind = "urban_street"
    urban = True
    roadside_width = 3.5

    def blocked(self, s: float) -> bool:
        """True where the roadside is interrupted (a crossing street)."""
        return False

    def roadside(self, rng, lamps):
        L, w = self.spec.length, self.roadside_width
        out: Labelled = []
        for side in (-1, 1):
            for a, b in self.sidewalk_stretches(side):
                out += [("sidewalk", p) for p in self.along(a, b, side * (self.half + 0.1), 0.0, 0.2, SIDEWALK_Z, KERB)]
                out += [("sidewalk", p) for p in self.along(a, b, side * (self.half + w / 2 + 0.1), 0.0, w - 0.2,
                                                             SIDEWALK_Z, PAVEMENT)]
            s = -BEHIND_M
            while s < L + 20:  # facades in a row with small gaps
                bl, depth, bh = rng.uniform(10, 24), rng.uniform(8, 14), rng.uniform(7, 22)
                setback = rng.uniform(0.0, 1.0)
                if not (self.blocked(s) or self.blocked(s + bl)):
                    out += self.put(building(bl, depth, bh, side, rng), s + bl / 2, side * (self.half + w + setback))
                s += bl + rng.uniform(0.0, 3.0)
            s = -BEHIND_M + rng.uniform(0, 25)
            while s < L:
                if not self.blocked(s):
                    t = side * (self.half + 0.5)
                    out += self.put(lamp(side), s, t, SIDEWALK_Z)
                    x, y, _ = self.pose(s, t - side * 1.6)
                    lamps.append((x, y, SIDEWALK_Z + LAMP_H - 0.35))
                s += rng.uniform(22, 32)
            s = rng.uniform(5, 30)
            while s < L:
                if not self.blocked(s):
                    if rng.random() < 0.6:
                        out += self.put(tree(rng.uniform(5, 9), rng), s, side * (self.half + w - 0.9), SIDEWALK_Z)
                    else:
                        out += self.put(sign(rng), s, side * (self.half + 0.6), SIDEWALK_Z)
                s += rng.uniform(12, 30)
        return out

    def sidewalk_stretches(self, side: int) -> list[tuple[float, float]]:
        return [(-BEHIND_M, self.spec.length)]


class RuralRoad(RoadLayout):
    """Two-lane country road: grass verges, scattered trees, a few poles and signs."""

    kind = "rural_road"
    roadside_width = 4.0

    def roadside(self, rng, lamps):
        L = self.spec.length
        out: Labelled = []
        for side in (-1, 1):
            s = rng.uniform(0, 15)
            while s < L + 30:
                if rng.random() < 0.7:
                    out += self.put(tree(rng.uniform(6, 14), rng), s, side * (self.half + rng.uniform(4.5, 25)))
                s += rng.uniform(6, 20)
            s = rng.uniform(10, 40)
            while s < L:
                pole = [("pole", Part("cylinder", (0.12, 8.0, 0), (0, 0, 4.0), BARK))]
                out += self.put(pole, s, side * (self.half + 3.5))
                s += rng.uniform(40, 60)
            if rng.random() < 0.5:
                out += self.put(sign(rng), rng.uniform(20, 60), side * (self.half + 1.5))
        return out


class CurvedRoad(RuralRoad):
    """A country road that runs straight for ``junction_at`` metres, then bends with a signed
    radius (positive: to the left)."""

    kind = "curve"

    def __init__(self, layout: Layout):
        super().__init__(layout)
        self.s0 = layout.junction_at if layout.junction_at is not None else 20.0
        self.radius = layout.radius if layout.radius else 80.0

    def pose(self, s, t):
        if s <= self.s0:
            return s, t, 0.0
        th = (s - self.s0) / self.radius
        return self.s0 + (self.radius - t) * math.sin(th), self.radius - (self.radius - t) * math.cos(th), th

    def overlap(self, width):
        # a piece's outer corners open up by about width * piece / (2 R) on a bend
        return width * PIECE_M / (2 * abs(self.radius)) + 0.05


class Highway(RoadLayout):
    """Divided highway: a concrete median barrier, guard rails, wide verges."""

    kind = "highway"
    solid_centre = True
    double_centre = True

    def spans(self, region: str) -> list[Span]:
        if region in ("roadside", "right_roadside"):  # the hard shoulders
            right = [Span(-self.half - 1.0, -self.half - 0.2, 0.0, 0.0, False)]
            if region == "right_roadside":
                return right
            return right + [Span(self.half + 0.2, self.half + 1.0, 0.0, 0.0, False)]
        return super().spans(region)

    def roadside(self, rng, lamps):
        L = self.spec.length
        t_med = -self.half + (self.forward_lanes()[-1] + 1) * self.spec.lane_width
        out: Labelled = [("guard rail", p) for p in self.along(-BEHIND_M, L, t_med, 0.0, 0.5, 0.85, CONCRETE)]
        for side in (-1, 1):
            t = side * (self.half + 1.2)
            out += [("guard rail", p) for p in self.along(-BEHIND_M, L, t, 0.55, 0.08, 0.3, METAL)]
            s = -BEHIND_M + rng.uniform(0, 4)
            while s < L:
                out += self.put([("guard rail", box(0, 0, 0.0, 0.1, 0.1, 0.75, METAL))], s, t + side * 0.1)
                s += 4.0
            s = rng.uniform(0, 30)
            while s < L + 30:
                if rng.random() < 0.5:
                    out += self.put(tree(rng.uniform(6, 12), rng), s, side * (self.half + rng.uniform(8, 30)))
                s += rng.uniform(8, 25)
        return out


class FourWay(UrbanStreet):
    """Urban four-way intersection ``junction_at`` metres ahead: a two-lane cross street with
    sidewalks, zebra crossings on the ego road and buildings on the four corners."""

    kind = "four_way"
    cross_sides: tuple[int, ...] = (-1, 1)  # which sides of the ego road the cross street leaves to

    def __init__(self, layout: Layout):
        super().__init__(layout)
        self.sj = layout.junction_at if layout.junction_at is not None else 35.0
        self.cross_half = self.spec.lane_width  # two lanes
        self.mouth = self.cross_half + self.roadside_width  # half-width of the cross street + walks

    def pose_on(self, road, s, t):
        if road == "cross":  # s along +y from the ego road's centreline, t to the left of +y
            return self.sj - t, s, math.pi / 2
        return super().pose_on(road, s, t)

    def blocked(self, s):
        return abs(s - self.sj) < self.mouth + 1.0

    def sidewalk_stretches(self, side):
        if side not in self.cross_sides:
            return [(-BEHIND_M, self.spec.length)]
        return [(-BEHIND_M, self.sj - self.cross_half), (self.sj + self.cross_half, self.spec.length)]

    def marking_gaps(self):
        return [(self.sj - self.cross_half - 3.5, self.sj + self.cross_half + 0.5)]

    def extra_spans(self):
        lw = self.spec.lane_width
        spans = {"cross_traffic": [], "crosswalk": []}
        for side in self.cross_sides:
            # lanes of the cross street: right-hand traffic, heading +y on t < 0
            spans["cross_traffic"].append(Span(-lw, 0.0, 0.0, 0.0, True, "cross", side))
            spans["cross_traffic"].append(Span(0.0, lw, math.pi, 0.0, True, "cross", side))
        # pedestrians on the zebra before the junction, walking across the ego road
        s_zebra = self.sj - self.cross_half - 2.0
        spans["crosswalk"] = [Span(-self.half, self.half, math.pi / 2, 0.0, False,
                                   s_range=(s_zebra - 1.2, s_zebra + 1.2))]
        return spans

    def roadside(self, rng, lamps):
        out = super().roadside(rng, lamps)
        L = max(self.spec.length, 60.0)
        w = self.roadside_width
        for side in self.cross_sides:
            s_lo, s_hi = self.half, self.half + L * 0.5
            out += [("road", p) for p in self._cross_strip(side, s_lo - 0.01, s_hi, 0.0, -0.05, 2 * self.cross_half,
                                                           0.05, ASPHALT)]
            for ts in (-1, 1):
                t = ts * (self.cross_half + w / 2)
                out += [("sidewalk", p)
                        for p in self._cross_strip(side, s_lo + w, s_hi, t, 0.0, w, SIDEWALK_Z, PAVEMENT)]
                s = s_lo + w + rng.uniform(0.5, 3.0)
                while s < s_hi - 8:  # facades along the cross street
                    bl, depth, bh = rng.uniform(10, 20), rng.uniform(8, 12), rng.uniform(7, 20)
                    x, y, h = self.pose_on("cross", side * (s + bl / 2), ts * (self.cross_half + w + 0.3))
                    face_side = ts if side > 0 else -ts
                    out += [(c, _transform(pt, x, y, 0.0, h if side > 0 else h + math.pi))
                            for c, pt in building(bl, depth, bh, face_side, rng)]
                    s += bl + rng.uniform(0.5, 3.0)
            out += [("road", p) for p in self._zebra(side)]
        return out

    def _cross_strip(self, side, s0, s1, t, z0, width, height, rgba) -> list[Part]:
        n = max(1, math.ceil((s1 - s0) / PIECE_M))
        step = (s1 - s0) / n
        out = []
        for k in range(n):
            x, y, h = self.pose_on("cross", side * (s0 + (k + 0.5) * step), t)
            out.append(box(x, y, z0, step, width, height, rgba, yaw=h))
        return out

    def _zebra(self, side) -> list[Part]:
        """Zebra stripes across the ego road before the junction, and across the cross street."""
        out = []
        s_z = self.sj - self.cross_half - 2.0
        if side == self.cross_sides[0]:
            t = -self.half + 0.3
            while t < self.half - 0.3:
                x, y, _ = self.pose(s_z, t + 0.25)
                out.append(box(x, y, 0.0, 3.0, 0.5, 0.012, MARKING))
                t += 1.0
            x, y, _ = self.pose(s_z - 2.0, -self.half / 2)  # stop line of the ego's approach
            out.append(box(x, y, 0.0, 0.4, self.half, 0.012, MARKING))
        s_c = self.half + 2.0
        t = -self.cross_half + 0.3
        while t < self.cross_half - 0.3:
            x, y, h = self.pose_on("cross", side * s_c, t + 0.25)
            out.append(box(x, y, 0.0, 3.0, 0.5, 0.012, MARKING, yaw=h))
            t += 1.0
        return out


class TJunction(FourWay):
    """Urban T-junction: a cross street leaves to the left ``junction_at`` metres ahead."""

    kind = "t_junction"
    cross_sides = (1,)


class PlateLayout(RoadLayout):
    """A real background plate (``worlds.plates``) standing in for a road: actors stand on its
    ground plane z = 0, anywhere on the visible ground (region ``ground``) or where the plate's
    optional ``regions.png`` allows; nothing static is drawn, the photo is the world."""

    kind = "plate"

    def __init__(self, layout: Layout):
        super().__init__(layout)
        self.plate = load_plate_cached(layout.plate)

    def spans(self, region: str) -> list[Span]:
        if region != "ground":
            raise KeyError(f"layout 'plate' has no region {region!r}; it has 'ground'")
        return [Span(0.0, 0.0, 0.0, 0.0, False, road="plate")]

    def pose_on(self, road, s, t):
        if road == "plate":  # (s, t) are world (x, y) on the plate's ground
            return s, t, 0.0
        return super().pose_on(road, s, t)

    def sample_ground(self, rng: np.random.Generator, distance_m: tuple[float, float]) -> tuple[float, float] | None:
        """A uniformly drawn point (x, y) of visible, allowed ground within ``distance_m`` of the
        camera (along the ground), or None if there is none."""
        cand = self.plate.ground_pixels(distance_m)
        if cand.size == 0:
            rng.random()
            return None
        k = cand[int(rng.integers(cand.size))]
        return self.plate.ground_point(k, float(rng.random()), float(rng.random()))

    def static(self) -> Static:
        c = self.plate.camera.position
        ground = box(c[0], c[1], -1.0, 2000.0, 2000.0, 1.0, GRASS)
        return Static([], [], support=[ground])


REGIONS = ("ego_lane", "same_direction", "oncoming", "road", "roadside", "right_roadside", "parked",
           "cross_traffic", "crosswalk", "ground")
LAYOUTS: Registry[type[RoadLayout]] = Registry("layout")
for _cls in (UrbanStreet, RuralRoad, CurvedRoad, Highway, FourWay, TJunction, PlateLayout):
    LAYOUTS.add(_cls.kind, _cls)


def get_layout(kind: str) -> type[RoadLayout]:
    return LAYOUTS.get(kind)


def list_layouts() -> list[str]:
    return LAYOUTS.names()


def make_layout(layout: Layout) -> RoadLayout:
    return get_layout(layout.kind)(layout)


@lru_cache(maxsize=4)
def static_world(layout: Layout) -> Static:
    """The static world of a layout record, built once per frame and shared by sampling
    (physics) and world building (rendering). Treat it as read-only."""
    return make_layout(layout).static()
