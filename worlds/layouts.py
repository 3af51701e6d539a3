"""Road layouts: the road's geometry (lanes, directions, where things may stand) and the static
roadside (buildings, trees, poles, lamps, signs) as primitive parts, deterministic from a
``Layout`` record. Registry: ``get_layout(kind)`` / ``list_layouts()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.registry import Registry
from longtail.worlds.assets import Part, box
from longtail.worlds.scene import Layout

ASPHALT = (0.22, 0.22, 0.23, 1.0)
MARKING = (0.92, 0.92, 0.9, 1.0)
KERB = (0.55, 0.55, 0.53, 1.0)
PAVEMENT = (0.62, 0.6, 0.57, 1.0)
GRASS = (0.24, 0.38, 0.16, 1.0)
FOLIAGE = ((0.16, 0.32, 0.12), (0.22, 0.36, 0.14), (0.3, 0.4, 0.16))
BARK = (0.3, 0.22, 0.15, 1.0)
METAL = (0.5, 0.52, 0.55, 1.0)
FACADES = ((0.72, 0.66, 0.58), (0.55, 0.5, 0.46), (0.8, 0.78, 0.72), (0.5, 0.32, 0.26), (0.62, 0.64, 0.66))

BEHIND_M = 30.0
TERRAIN_HALF_WIDTH = 80.0  # road drawn behind the ego, so side cameras and shadows see ground
SIDEWALK_Z = 0.15


@dataclass(frozen=True)
class Static:
    """The static world: (semantic class name, part in world coordinates) and lamp positions."""

    parts: list[tuple[str, Part]]
    lamps: list[tuple[float, float, float]]


@dataclass(frozen=True)
class Span:
    """A strip of ground where actors of a region stand: lateral range, base heading, surface z."""

    y0: float
    y1: float
    heading: float
    z: float
    snap: bool  # lanes: actors keep to the centre line (+- jitter) instead of anywhere in the strip


class RoadLayout:
    """Base: a straight carriageway along +x with lanes; subclasses add the roadside."""

    kind = "straight"
    urban = False
    roadside_width = 3.0  # metres beside the carriageway where roadside actors may stand
    solid_centre = False  # solid (not dashed) line between the two directions
    double_centre = False

    def __init__(self, layout: Layout):
        self.spec = layout
        self.half = layout.lanes * layout.lane_width / 2

    # geometry --------------------------------------------------------------------------
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
        lane = lambda i, h: Span(self.lane_center(i) - lw / 2, self.lane_center(i) + lw / 2, h, 0.0, True)
        side_z = SIDEWALK_Z if self.urban else 0.0
        rw = self.roadside_width
        table = {
            "ego_lane": [lane(self.spec.ego_lane, 0.0)],
            "same_direction": [lane(i, 0.0) for i in self.forward_lanes()],
            "oncoming": [lane(i, math.pi) for i in self.oncoming_lanes()],
            "road": [Span(-self.half, self.half, 0.0, 0.0, False)],
            "roadside": [Span(-self.half - rw, -self.half - 0.3, 0.0, side_z, False),
                         Span(self.half + 0.3, self.half + rw, 0.0, side_z, False)],
            "right_roadside": [Span(-self.half - rw, -self.half - 0.3, 0.0, side_z, False)],
        }
        if region not in table:
            raise KeyError(f"unknown region {region!r}; choices: {', '.join(REGIONS)}")
        return table[region]

    # static world ----------------------------------------------------------------------
    def static(self) -> Static:
        """Everything static: ground, road, markings and the roadside."""
        rng = np.random.default_rng(self.spec.seed)
        L = self.spec.length
        out: list[tuple[str, Part]] = []
        for side in (-1, 1):  # not under the road: hidden surfaces still cost raster time
            for k in range(int(TERRAIN_HALF_WIDTH // 20)):
                y = side * (self.half + 10.0 + 20.0 * k)
                out += [("terrain", pt) for pt in strip(-BEHIND_M, L + 60, y, -0.33, 20.0, 0.3, GRASS, 20.0)]
        out += [("road", pt) for pt in strip(-BEHIND_M, L, 0.0, -0.05, 2 * self.half, 0.05, ASPHALT)]
        out += [("road", p) for p in self.markings(rng)]
        lamps: list[tuple[float, float, float]] = []
        out += self.roadside(rng, lamps)
        return Static(out, lamps)

    def markings(self, rng: np.random.Generator) -> list[Part]:
        L, lw = self.spec.length, self.spec.lane_width
        parts = []
        for y in (-self.half + 0.2, self.half - 0.2):  # solid edge lines
            parts += strip(-BEHIND_M, L, y, 0.0, 0.15, 0.012, MARKING)
        fwd, onc = self.forward_lanes(), self.oncoming_lanes()
        for i in range(1, self.spec.lanes):
            y = -self.half + i * lw
            centre = (i - 1) in fwd and i in onc
            if centre and self.solid_centre:
                for dy in ((-0.12, 0.12) if self.double_centre else (0.0,)):
                    parts += strip(-BEHIND_M, L, y + dy, 0.0, 0.12, 0.012, MARKING)
                continue
            x = -BEHIND_M + rng.uniform(0, 9.0)
            while x < L:
                parts.append(box(x + 1.5, y, 0.0, 3.0, 0.12, 0.012, MARKING))
                x += 9.0
        return parts

    def roadside(self, rng: np.random.Generator, lamps: list) -> list[tuple[str, Part]]:
        """Roadside parts; lamp head positions are appended to ``lamps``."""
        return []


def strip(x0: float, x1: float, y: float, z0: float, ly: float, lz: float, rgba, seg: float = 12.0) -> list[Part]:
    """A long box from x0 to x1 cut into pieces of at most ``seg`` metres.

    PyBullet's tiny renderer scans the screen-space bounding box of every triangle, so one
    triangle that runs from behind the camera to the horizon costs a full-screen pass; short
    pieces keep far geometry cheap.
    """
    n = max(1, math.ceil((x1 - x0) / seg))
    step = (x1 - x0) / n
    return [box(x0 + (k + 0.5) * step, y, z0, step, ly, lz, rgba) for k in range(n)]


def _tree(x: float, y: float, h: float, rng: np.random.Generator, z: float = 0.0) -> list[tuple[str, Part]]:
    trunk_h = h * rng.uniform(0.3, 0.45)
    crown = h - trunk_h
    col = FOLIAGE[int(rng.integers(len(FOLIAGE)))]
    out = [("vegetation", Part("cylinder", (0.08 + 0.02 * h, trunk_h + 0.3, 0), (x, y, z + (trunk_h + 0.3) / 2), BARK))]
    out.append(("vegetation", Part("sphere", (crown * 0.45, 0, 0), (x, y, z + trunk_h + crown * 0.45), (*col, 1.0))))
    out.append(("vegetation", Part("sphere", (crown * 0.33, 0, 0),
                                   (x + rng.uniform(-0.6, 0.6), y + rng.uniform(-0.6, 0.6), z + trunk_h + crown * 0.8),
                                   (*np.clip(np.asarray(col) * 1.15, 0, 1), 1.0))))
    return out


def _lamp(x: float, y: float, side: int, lamps: list, z: float = 0.0) -> list[tuple[str, Part]]:
    h = 8.0
    lamps.append((x, y - side * 1.6, z + h - 0.35))
    return [
        ("pole", Part("cylinder", (0.09, h, 0), (x, y, z + h / 2), METAL)),
        ("pole", box(x, y - side * 0.9, z + h - 0.1, 0.25, 1.8, 0.12, METAL)),
        ("pole", box(x, y - side * 1.6, z + h - 0.25, 0.5, 0.3, 0.15, (0.9, 0.9, 0.8, 1.0))),
    ]


def _sign(x: float, y: float, rng: np.random.Generator, z: float = 0.0) -> list[tuple[str, Part]]:
    colour = [(0.8, 0.1, 0.1, 1.0), (0.1, 0.25, 0.7, 1.0), (0.95, 0.95, 0.95, 1.0)][int(rng.integers(3))]
    return [
        ("pole", Part("cylinder", (0.04, 2.6, 0), (x, y, z + 1.3), METAL)),
        ("traffic sign", box(x, y, z + 2.1, 0.04, 0.65, 0.65, colour)),
    ]


class UrbanStreet(RoadLayout):
    """City street: kerbs and sidewalks, building facades, street lamps, trees and signs."""

    kind = "urban_street"
    urban = True
    roadside_width = 3.5

    def roadside(self, rng, lamps):
        L, w = self.spec.length, self.roadside_width
        out: list[tuple[str, Part]] = []
        for side in (-1, 1):
            y_kerb = side * (self.half + 0.1)
            y_walk = side * (self.half + w / 2)
            out += [("sidewalk", pt) for pt in strip(-BEHIND_M, L, y_kerb, 0.0, 0.2, SIDEWALK_Z, KERB)]
            out += [("sidewalk", pt) for pt in strip(-BEHIND_M, L, y_walk + side * 0.1, 0.0, w - 0.2, SIDEWALK_Z, PAVEMENT)]
            x = -BEHIND_M
            while x < L + 20:  # facades in a row with small gaps
                bw = rng.uniform(10, 24)
                depth = rng.uniform(8, 14)
                bh = rng.uniform(7, 22)
                col = FACADES[int(rng.integers(len(FACADES)))]
                setback = rng.uniform(0.0, 1.0)
                yb = side * (self.half + w + setback + depth / 2)
                out.append(("building", box(x + bw / 2, yb, 0.0, bw, depth, bh, (*col, 1.0))))
                out += self._windows(x, bw, side * (self.half + w + setback), side, bh, rng)
                x += bw + rng.uniform(0.0, 3.0)
            x = -BEHIND_M + rng.uniform(0, 25)
            while x < L:
                out += _lamp(x, side * (self.half + 0.5), side, lamps, SIDEWALK_Z)
                x += rng.uniform(22, 32)
            x = rng.uniform(5, 30)
            while x < L:
                if rng.random() < 0.6:
                    out += _tree(x, side * (self.half + w - 0.9), rng.uniform(5, 9), rng, SIDEWALK_Z)
                else:
                    out += _sign(x, side * (self.half + 0.6), rng, SIDEWALK_Z)
                x += rng.uniform(12, 30)
        return out

    @staticmethod
    def _windows(x0, bw, y_face, side, bh, rng) -> list[tuple[str, Part]]:
        """Rows of dark windows just proud of the facade (lit ones get brighter glass)."""
        out = []
        floors = int(bh // 3.2)
        cols = max(1, int(bw // 3.0))
        lit = rng.random((floors, cols)) < 0.25
        for f in range(1, floors):
            z = f * 3.2 + 0.9
            for c in range(cols):
                colour = (0.85, 0.75, 0.45, 1.0) if lit[f, c] else (0.12, 0.14, 0.17, 1.0)
                out.append(("building", box(x0 + (c + 0.5) * bw / cols, y_face - side * 0.02, z, 1.4, 0.06, 1.5, colour)))
        return out


class RuralRoad(RoadLayout):
    """Two-lane country road: grass verges, scattered trees, a few poles and signs."""

    kind = "rural_road"
    roadside_width = 4.0

    def roadside(self, rng, lamps):
        L = self.spec.length
        out: list[tuple[str, Part]] = []
        for side in (-1, 1):
            x = rng.uniform(0, 15)
            while x < L + 30:
                if rng.random() < 0.7:
                    y = side * (self.half + rng.uniform(4.5, 25))
                    out += _tree(x, y, rng.uniform(6, 14), rng)
                x += rng.uniform(6, 20)
            x = rng.uniform(10, 40)
            while x < L:
                out.append(("pole", Part("cylinder", (0.12, 8.0, 0), (x, side * (self.half + 3.5), 4.0), BARK)))
                x += rng.uniform(40, 60)
            if rng.random() < 0.5:
                out += _sign(rng.uniform(20, 60), side * (self.half + 1.5), rng)
        return out


class Highway(RoadLayout):
    """Divided highway: a concrete median barrier, guard rails, wide verges."""

    kind = "highway"
    solid_centre = True
    double_centre = True

    def static(self) -> Static:
        st = super().static()
        out = st.parts
        # widen the central line pair into a median barrier
        fwd = self.forward_lanes()
        y = -self.half + (fwd[-1] + 1) * self.spec.lane_width
        L = self.spec.length
        out += [("guard rail", pt) for pt in strip(-BEHIND_M, L, y, 0.0, 0.5, 0.85, (0.7, 0.7, 0.68, 1.0))]
        return st

    def roadside(self, rng, lamps):
        L = self.spec.length
        out: list[tuple[str, Part]] = []
        for side in (-1, 1):
            y = side * (self.half + 1.2)
            out += [("guard rail", pt) for pt in strip(-BEHIND_M, L, y, 0.55, 0.08, 0.3, METAL)]
            x = -BEHIND_M + rng.uniform(0, 4)
            while x < L:
                out.append(("guard rail", box(x, y + side * 0.1, 0.0, 0.1, 0.1, 0.75, METAL)))
                x += 4.0
            x = rng.uniform(0, 30)
            while x < L + 30:
                if rng.random() < 0.5:
                    out += _tree(x, side * (self.half + rng.uniform(8, 30)), rng.uniform(6, 12), rng)
                x += rng.uniform(8, 25)
        return out

    def spans(self, region: str) -> list[Span]:
        if region in ("roadside", "right_roadside"):
            spans = [Span(-self.half - 1.0, -self.half - 0.2, 0.0, 0.0, False)]  # hard shoulder
            return spans if region == "right_roadside" else spans + [Span(self.half + 0.2, self.half + 1.0, 0.0, 0.0, False)]
        return super().spans(region)


REGIONS = ("ego_lane", "same_direction", "oncoming", "road", "roadside", "right_roadside")
LAYOUTS: Registry[type[RoadLayout]] = Registry("layout")
for _cls in (UrbanStreet, RuralRoad, Highway):
    LAYOUTS.add(_cls.kind, _cls)


def get_layout(kind: str) -> type[RoadLayout]:
    return LAYOUTS.get(kind)


def list_layouts() -> list[str]:
    return LAYOUTS.names()


def make_layout(layout: Layout) -> RoadLayout:
    return get_layout(layout.kind)(layout)
