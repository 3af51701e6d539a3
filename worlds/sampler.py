"""Sampling: Scenario (distributions) + (seed, frame index) -> concrete Scene.

Every draw comes from one generator in a fixed order: ``frame_rng(seed, index)`` for single
frames, ``frame_rng(seed, sequence number)`` for the frames of a sequence, which then differ
only by time. Placement is rejection sampling with a bounded number of tries (Scenic-style):
footprints must not overlap, and PyBullet (``worlds.physics``) settles each candidate and
rejects it if it interpenetrates the static world or another actor, floats or tips over. A
frame with an event actor that cannot be placed is drawn again whole (``REDRAW`` stream, up to
``REDRAWS`` times), then raises ``SamplingError`` naming the requirement; traffic that cannot be
placed is left out (traffic density is a range, not a promise).
"""

from __future__ import annotations

import colorsys
import contextlib
import math
from pathlib import Path
from typing import Literal

import numpy as np

from longtail.errors import SamplingError
from longtail.seeding import RANDOMIZE, REDRAW, frame_rng, stream_rng
from longtail.worlds.assets import AssetDef, get_asset, resolve_asset_names
from longtail.worlds.layouts import PlateLayout, RoadLayout, Span, Static, make_layout, static_world
from longtail.worlds.physics import Physics
from longtail.worlds.scenario import CONDITIONS, ActorSpec, Pair, RandomizeSpec, Scenario, TimeSpec, WeatherSpec
from longtail.worlds.scene import Actor, Camera, Distractor, Layout, Randomization, Scene, Sun, Vec3, Weather, vec3

MAX_SUN_ELEVATION_DEG = 55.0
CLEARANCE_M = 0.4  # minimum gap between the footprints of two actors
EGO_FOOTPRINT = (5.0, 2.2)  # length, width of the camera's vehicle
FRAME_DT_S = 0.1  # sequences advance 0.1 s a frame (10 Hz, as KITTI)
DEFAULT_SPEED_MPS = {  # by class, when neither the scenario nor the asset says
    "car": (6.0, 14.0), "truck": (5.0, 12.0), "bus": (4.0, 10.0), "motorcycle": (6.0, 15.0), "bicycle": (3.0, 6.5),
    "person": (0.8, 1.7), "animal": (0.0, 1.5),
}
STATIC_REGIONS = ("parked",)


def sun_from_hour(hour: float, road_bearing: float) -> Sun:
    """A simple diurnal model: sunrise 6h, noon at MAX_SUN_ELEVATION_DEG, sunset 18h."""
    elev = math.radians(MAX_SUN_ELEVATION_DEG) * math.sin(math.pi * (hour - 6.0) / 12.0)
    azimuth = (road_bearing + math.pi * (hour - 12.0) / 12.0) % (2 * math.pi)
    return Sun(hour=hour, elevation=elev, azimuth=azimuth)


def _footprint(x: float, y: float, yaw: float, l: float, w: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[l / 2, w / 2], [l / 2, -w / 2], [-l / 2, -w / 2], [-l / 2, w / 2]])
    return local @ np.array([[c, s], [-s, c]]) + np.array([x, y])


def footprints_overlap(a: np.ndarray, b: np.ndarray, gap: float = 0.0) -> bool:
    """Separating-axis test for two convex (4, 2) polygons, with ``gap`` metres of clearance."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]]) / (np.hypot(*edge) + 1e-12)
            pa, pb = a @ axis, b @ axis
            if pa.max() + gap <= pb.min() or pb.max() + gap <= pa.min():
                return False
    return True


def _uniform(rng: np.random.Generator, r) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def draw_look(asset: AssetDef, rng: np.random.Generator, jitter: bool = True) -> tuple[Vec3, Vec3, int]:
    """An actor's size (l, w, h metres), colour and shape variant, drawn in this order: size,
    palette entry, brightness jitter (``jitter``), variant."""
    size = vec3(_uniform(rng, r) for r in asset.size_range)
    base = np.asarray(asset.palette[int(rng.integers(len(asset.palette)))])
    color = vec3(np.clip(base * rng.uniform(0.85, 1.15), 0.0, 1.0)) if jitter else vec3(base)
    return size, color, int(rng.integers(asset.variants))


def rider_for(bike: Actor, rng: np.random.Generator) -> Actor:
    """The rider a two-wheeler carries: its own actor (id after the bike's), on the bike's spot."""
    size, color, variant = draw_look(get_asset("rider"), rng, jitter=False)
    return Actor(id=bike.id + 1, asset="rider", cls="rider", size=size, position=bike.position, yaw=bike.yaw,
                 color=color, variant=variant, role=bike.role, speed=bike.speed, parent=bike.id)


def _conditions(scenario: Scenario, rng: np.random.Generator) -> tuple[TimeSpec, WeatherSpec]:
    """Time and weather specs for this frame, honouring ``coverage`` shares (always two draws)."""
    u = {"time": float(rng.random()), "weather": float(rng.random())}
    time, weather = scenario.time, scenario.weather
    acc = {"time": 0.0, "weather": 0.0}
    for name, share in scenario.coverage.items():
        group, spec = CONDITIONS[name]
        lo = acc[group]
        acc[group] += share
        if lo <= u[group] < acc[group]:
            if group == "time":
                time = time.model_copy(update=spec)
            else:
                weather = weather.model_copy(update=spec)
    return time, weather


def _layout(scenario: Scenario, rng: np.random.Generator) -> Layout:
    ls = scenario.layout
    lanes = int(ls.lanes_choices[int(rng.integers(len(ls.lanes_choices)))])
    width = _uniform(rng, ls.lane_width_m_range)
    seed = int(rng.integers(2**31))
    radius = junction = None
    if ls.kind == "curve":
        radius = _uniform(rng, ls.radius_m_range or (60.0, 150.0)) * (1 if rng.random() < 0.5 else -1)
    if ls.kind in ("curve", "four_way", "t_junction"):
        junction = _uniform(rng, ls.junction_m_range or ((15.0, 30.0) if ls.kind == "curve" else (25.0, 45.0)))
    plate = str(Path(scenario.plate).resolve()) if scenario.plate else None
    return Layout(kind=ls.kind, lanes=lanes, lane_width=width, ego_lane=0, length=ls.length_m, seed=seed,
                  radius=radius, junction_at=junction, plate=plate)


def _camera(scenario: Scenario, rng: np.random.Generator, geom: RoadLayout) -> Camera:
    if isinstance(geom, PlateLayout):  # the plate's fitted camera, as it is
        return geom.plate.camera.model_copy(update={"name": "front"})
    spec = scenario.camera
    fx, fy, cx, cy = spec.intrinsics()
    t = geom.lane_center(geom.spec.ego_lane) if spec.mount == "vehicle" else -geom.half - 0.5 * geom.roadside_width
    x, y, heading = geom.pose(0.0, t)
    return Camera(
        width=spec.width, height=spec.height, fx=fx, fy=fy, cx=cx, cy=cy,
        position=(x, y, spec.height_m),
        pitch=math.radians(_uniform(rng, spec.pitch_deg_range)),
        yaw=heading + math.radians(_uniform(rng, spec.yaw_deg_range)),
        roll=math.radians(_uniform(rng, spec.roll_deg_range)),
    )


def rig_camera(scenario: Scenario, main: Camera, k: int) -> Camera:
    """Camera ``k`` of the scenario's rig (0 = the main camera) for a frame whose main camera is
    ``main``: the mount's offsets in the ego frame and its turn relative to the main camera."""
    if k == 0:
        return main
    spec = scenario.camera
    m = spec.rig[k - 1]
    c, s = math.cos(main.yaw), math.sin(main.yaw)
    pos = (main.position[0] + c * m.x_m - s * m.y_m, main.position[1] + s * m.x_m + c * m.y_m,
           main.position[2] + m.z_m)
    hfov = m.hfov_deg or spec.hfov_deg
    f = spec.width / (2.0 * math.tan(math.radians(hfov) / 2.0)) if m.hfov_deg else main.fx
    return main.model_copy(update={"name": m.name, "position": pos, "yaw": main.yaw + math.radians(m.yaw_deg),
                                   "pitch": main.pitch + math.radians(m.pitch_deg), "fx": f,
                                   "fy": f if m.hfov_deg else main.fy})


def ground_z(static: Static, x: float, y: float, max_z: float = 0.5) -> float:
    """Height of the walkable surface at world (x, y): the highest top, at most ``max_z``, of the
    static boxes under the point (road, kerb, sidewalk); 0 where there is none."""
    best = None
    for pt in [pt for _, pt in static.parts] + list(static.support):
        if pt.shape != "box":
            continue
        top = pt.pos[2] + pt.dims[2]
        if top > max_z or (best is not None and top <= best):
            continue
        c, s = math.cos(pt.rpy[2]), math.sin(pt.rpy[2])
        dx, dy = x - pt.pos[0], y - pt.pos[1]
        if abs(c * dx + s * dy) <= pt.dims[0] and abs(-s * dx + c * dy) <= pt.dims[1]:
            best = top
    return 0.0 if best is None else float(best)


def _speed(spec: ActorSpec, span: Span, asset, rng: np.random.Generator) -> float:
    if spec.region in STATIC_REGIONS:
        rng.random()  # keep the number of draws independent of the outcome
        return 0.0
    r = spec.speed_mps_range or asset.speed_range or DEFAULT_SPEED_MPS.get(asset.cls, (0.0, 0.0))
    return _uniform(rng, r)


class _Placer:
    """Places the actors of one frame: footprints, then physics, with bounded retries."""

    def __init__(self, geom: RoadLayout, camera: Camera, physics: Physics, tries: int, static: Static | None = None):
        self.geom, self.camera, self.physics, self.tries = geom, camera, physics, tries
        self.static = static
        self.footprints = [_footprint(camera.position[0], camera.position[1], camera.yaw, *EGO_FOOTPRINT)]
        self.actors: list[Actor] = []
        self.rejections: dict[str, int] = {}

    def _reject(self, why: str) -> None:
        self.rejections[why] = self.rejections.get(why, 0) + 1

    def place(self, spec: ActorSpec, role: Literal["traffic", "event"], rng: np.random.Generator,
              anchor: Actor | None = None) -> list[Actor]:
        """Place one actor of ``spec`` (relative to ``anchor`` if the spec says so)."""
        names = resolve_asset_names(spec.asset)
        spans = self.geom.spans(spec.region)
        for _ in range(self.tries):
            asset = get_asset(names[int(rng.integers(len(names)))])
            size, color, variant = draw_look(asset, rng)
            span = spans[int(rng.integers(len(spans)))]
            dist = _uniform(rng, spec.distance_m_range)
            s = _uniform(rng, span.s_range) if span.s_range else (dist if span.road == "main" else span.side * dist)
            if span.road == "plate":
                assert isinstance(self.geom, PlateLayout)  # only a plate layout has plate spans
                point = self.geom.sample_ground(rng, spec.distance_m_range)
                if point is None:
                    self._reject(f"no visible ground of the plate at {spec.distance_m_range} m")
                    continue
                s, t_plate = point
            mid = (span.t0 + span.t1) / 2
            if span.snap:
                t = mid + float(rng.normal(0.0, abs(spec.lateral_jitter_m) / 2))
            else:
                t = _uniform(rng, (span.t0, span.t1))
            if span.road == "plate":
                t = t_plate
            heading_offset = math.radians(_uniform(rng, spec.heading_deg_range))
            speed = _speed(spec, span, asset, rng)
            ds, dt = _uniform(rng, spec.offset_s_m_range), _uniform(rng, spec.offset_t_m_range)
            if anchor is not None:
                c, sn = math.cos(anchor.yaw), math.sin(anchor.yaw)
                x, y = anchor.position[0] + c * ds - sn * dt, anchor.position[1] + sn * ds + c * dt
                yaw = float(math.remainder(anchor.yaw + heading_offset, 2 * math.pi))
                z = anchor.position[2]
            else:
                x, y, road_heading = self.geom.pose_on(span.road, s, t)
                yaw = float(math.remainder(road_heading + span.heading + heading_offset, 2 * math.pi))
                z = span.z
            if spec.at is not None:  # an exact spot: the draws above still happen (same stream)
                x, y = spec.at.x_m, spec.at.y_m
                yaw = float(math.remainder(math.radians(spec.at.yaw_deg) + heading_offset, 2 * math.pi))
                z = ground_z(self.static, x, y) if self.static is not None else 0.0
            fp = _footprint(x, y, yaw, size[0], size[1])
            if any(footprints_overlap(fp, o, CLEARANCE_M) for o in self.footprints):
                self._reject("footprint overlaps another actor or the ego")
                continue
            actor = Actor(id=len(self.actors) + 1, asset=asset.name, cls=asset.cls, size=size, position=(x, y, z),
                          yaw=yaw, color=color, variant=variant, role=role, speed=speed)
            if spec.in_view and not self._in_view(actor):
                self._reject("not in view of the camera")
                continue
            rider = self._rider(actor, rng) if asset.rider else None
            verdict = self.physics.check(actor)
            if verdict.actor is None:
                self._reject(verdict.problem or "implausible")
                continue
            placed = [verdict.actor]
            if rider is not None:
                rv = self.physics.check(rider)
                if rv.actor is None:
                    self._reject(f"rider {rv.problem}")
                    continue  # the two-wheeler stays in the physics world as an obstacle; harmless
                placed.append(rv.actor)
            self.footprints.append(fp)
            self.actors.extend(placed)
            return placed
        return []

    def _in_view(self, a: Actor) -> bool:
        uv, z = self.camera.project(np.array([[a.position[0], a.position[1], a.position[2] + a.size[2] / 2]]))
        cam = self.camera
        return bool(z[0] > cam.near and 0 <= uv[0, 0] < cam.width and 0 <= uv[0, 1] < cam.height)

    def _rider(self, bike: Actor, rng: np.random.Generator) -> Actor:
        return rider_for(bike, rng)


# --- domain randomisation (the scenario's ``randomize`` block) -----------------------------------
DISTRACTOR_TRIES = 30  # spots tried per distractor before it is left out
DISTRACTOR_GROUND = ("sidewalk", "terrain")  # what a distractor may stand on: never road
DISTRACTOR_VERGE_M = 6.0  # beyond the roadside strip of a layout without sidewalks: its verge
DISTRACTOR_SHAPES: tuple[Literal["box", "cylinder", "sphere"], ...] = ("box", "cylinder", "sphere")
FLAT_CLASSES = ("road", "sidewalk", "terrain")  # static parts one stands on, not bumps into


def _random_color(rng: np.random.Generator, s: Pair, v: Pair) -> Vec3:
    """A colour of random hue, saturation in ``s`` and value in ``v`` (three draws)."""
    h, sat, val = float(rng.random()), _uniform(rng, s), _uniform(rng, v)
    return vec3(colorsys.hsv_to_rgb(h, sat, val))


def _tint(rng: np.random.Generator, amount: float) -> Vec3:
    """A colour temperature (blue-amber) and tint (green-magenta) shift of strength up to
    ``amount`` (0..1), as a per-channel gain of unit luminance (two draws)."""
    warm, green = (float(rng.uniform(-amount, amount)) for _ in range(2))
    r, g, b = 1.0 + 0.35 * warm, 1.0 + 0.15 * green, 1.0 - 0.35 * warm
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return vec3(np.clip(np.array([r, g, b]) / luma, 0.0, 2.0))


class _Ground:
    """The flat static boxes one stands on (road, sidewalk, terrain), for point queries, and the
    bounds of the upright parts one would bump into."""

    def __init__(self, static: Static):
        self.centres, self.radii = static.bounds()
        self.solid = np.array([cls not in FLAT_CLASSES for cls, _ in static.parts] + [False] * len(static.support))
        flat = [(cls, pt) for cls, pt in static.parts
                if cls in FLAT_CLASSES and pt.shape == "box" and pt.pos[2] + pt.dims[2] <= 0.5]
        self.classes = [cls for cls, _ in flat]
        self.centre = np.array([pt.pos[:2] for _, pt in flat], float).reshape(-1, 2)
        self.half = np.array([pt.dims[:2] for _, pt in flat], float).reshape(-1, 2)
        self.top = np.array([pt.pos[2] + pt.dims[2] for _, pt in flat], float)
        yaw = np.array([pt.rpy[2] for _, pt in flat], float)
        self.cos, self.sin = np.cos(yaw), np.sin(yaw)

    def at(self, points: np.ndarray) -> list[tuple[str | None, float]]:
        """For each (x, y) of ``points`` (M, 2): the class and top of the highest flat part under it."""
        d = np.asarray(points, float)[:, None, :] - self.centre[None]
        inside = ((np.abs(self.cos * d[..., 0] + self.sin * d[..., 1]) <= self.half[:, 0])
                  & (np.abs(-self.sin * d[..., 0] + self.cos * d[..., 1]) <= self.half[:, 1]))
        tops = np.where(inside, self.top, -np.inf)
        out: list[tuple[str | None, float]] = []
        for row, hit in zip(tops, inside.any(1)):
            k = int(np.argmax(row))
            out.append((self.classes[k], float(row[k])) if hit else (None, -math.inf))
        return out


def _part_footprint(pt) -> np.ndarray:
    if pt.shape == "box":
        return _footprint(pt.pos[0], pt.pos[1], pt.rpy[2], 2 * pt.dims[0], 2 * pt.dims[1])
    r = max(pt.dims[0], pt.dims[1]) if pt.shape == "frustum" else pt.dims[0]
    return _footprint(pt.pos[0], pt.pos[1], 0.0, 2 * r, 2 * r)


def _distractor_spans(geom: RoadLayout) -> list[Span]:
    """Where distractors may stand: the roadside strips, widened over the verge where there is
    no sidewalk (each spot is checked to stand on sidewalk or terrain anyway)."""
    spans = geom.spans("roadside")
    if getattr(geom, "urban", False):
        return spans
    return [Span(sp.t0 - DISTRACTOR_VERGE_M, sp.t1, sp.heading, sp.z, False) if sp.t1 < 0 else
            Span(sp.t0, sp.t1 + DISTRACTOR_VERGE_M, sp.heading, sp.z, False) for sp in spans]


def _place_distractor(spec: RandomizeSpec, geom: RoadLayout, static: Static, floor: _Ground,
                      taken: list[np.ndarray], spans: list[Span], rng: np.random.Generator) -> Distractor | None:
    """One distractor off the road, clear of actors, the ego, other distractors and the upright
    static parts (poles, trees, signs, buildings, rails); None after DISTRACTOR_TRIES tries."""
    centres, radii, solid = floor.centres, floor.radii, floor.solid
    for _ in range(DISTRACTOR_TRIES):  # a fixed number of draws a try
        shape = DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))]
        l, w, h = (_uniform(rng, spec.distractor_size_m_range) for _ in range(3))
        if shape != "box":
            w = l
            h = l if shape == "sphere" else h
        span = spans[int(rng.integers(len(spans)))]
        s = _uniform(rng, spec.distractor_distance_m_range)
        t = _uniform(rng, (span.t0, span.t1))
        yaw_offset = float(rng.uniform(-math.pi, math.pi))
        color = _random_color(rng, (0.0, 1.0), (0.1, 0.95))
        x, y, heading = geom.pose(s, t)
        yaw = float(math.remainder(heading + yaw_offset, 2 * math.pi))
        fp = _footprint(x, y, yaw, l, w)
        # every corner and the centre on sidewalk or terrain: off the lanes, not over a kerb's edge
        ground = floor.at(np.vstack([fp, [[x, y]]]))
        if any(cls not in DISTRACTOR_GROUND for cls, _ in ground):
            continue
        if any(footprints_overlap(fp, o, CLEARANCE_M) for o in taken):
            continue
        z = max(top for _, top in ground)
        reach = math.hypot(l, w) / 2
        near = np.nonzero(solid & (np.hypot(centres[:, 0] - x, centres[:, 1] - y) < radii + reach))[0]
        parts = static.parts
        if any(footprints_overlap(fp, _part_footprint(parts[k][1]), 0.05) for k in near if k < len(parts)):
            continue
        taken.append(fp)
        return Distractor(shape=shape, position=(x, y, z), size=(l, w, h), yaw=yaw, color=color)
    return None


def draw_randomization(spec: RandomizeSpec, geom: RoadLayout, static: Static, footprints: list[np.ndarray],
                       rng: np.random.Generator) -> Randomization:
    """A frame's randomisation, drawn from its RANDOMIZE stream in this order: a chance and a
    colour for each static class (sorted by name), the texture strength, the sun's and the
    ambient light's tint, the exposure, the number of distractors, then each distractor.
    ``footprints``: what is already on the ground (the ego's and the actors'); never touched."""
    surfaces = {}
    for cls in sorted({cls for cls, _ in static.parts}):
        chance = float(rng.random())
        color = _random_color(rng, (0.05, 0.75), (0.12, 0.85))
        if chance < spec.surfaces:
            surfaces[cls] = color
    strength = _uniform(rng, spec.texture_strength_range)
    sun, ambient = _tint(rng, spec.light_tint), _tint(rng, spec.light_tint)
    stops = _uniform(rng, spec.exposure_stops_range)
    count = int(rng.integers(spec.distractors_range[0], spec.distractors_range[1] + 1))
    distractors = []
    if count and not isinstance(geom, PlateLayout):
        taken, spans, floor = list(footprints), _distractor_spans(geom), _Ground(static)
        for _ in range(count):
            d = _place_distractor(spec, geom, static, floor, taken, spans, rng)
            if d is not None:
                distractors.append(d)
    return Randomization(surfaces=surfaces, texture_strength=strength, distractors=tuple(distractors),
                         sun_tint=sun, ambient_tint=ambient, exposure_stops=stops)


def advance(scene: Scene, steps: int) -> Scene:
    """The scene ``steps`` frames later: actors move along their heading at their speed, the
    ego's camera along the road. Track ids are unchanged."""
    if steps == 0:
        return scene
    dt = steps * FRAME_DT_S
    geom = make_layout(scene.layout)
    actors = tuple(a.model_copy(update={"position": (a.position[0] + a.speed * dt * math.cos(a.yaw),
                                                     a.position[1] + a.speed * dt * math.sin(a.yaw), a.position[2])})
                   if a.speed else a for a in scene.actors)
    update = {"actors": actors, "step": steps, "time_s": dt}
    if scene.ego is not None and scene.ego_speed:  # the camera rides on the ego: move both
        ex, ey, eh = scene.ego
        x, y, h = geom.pose(scene.ego_speed * dt, geom.lane_center(scene.layout.ego_lane))
        cam = scene.camera
        dx, dy = cam.position[0] - ex, cam.position[1] - ey
        c, s = math.cos(h - eh), math.sin(h - eh)
        position = (x + c * dx - s * dy, y + s * dx + c * dy, cam.position[2])
        update["camera"] = cam.model_copy(update={"position": position, "yaw": cam.yaw + (h - eh)})
        update["ego"] = (x, y, h)
    return scene.model_copy(update=update)


REDRAWS = 8  # whole-frame draws after the first, before a frame's events count as impossible


def _draw(scenario: Scenario, seed: int, index: int, physics: Physics,
          ramped: dict[str, float] | None = None, rng: np.random.Generator | None = None) -> Scene:
    """Frame ``index``'s Scene, drawn from ``rng`` (default ``frame_rng(seed, index)``).
    ``ramped``: knob -> value of the scenario's ``ramp`` at this step (``RampSpec.values``); a
    ramped value replaces its draw, and the draw is still made, so every later draw (layout,
    camera, actors) is the same as without the ramp."""
    ramped = ramped or {}
    rng = frame_rng(seed, index) if rng is None else rng
    time_spec, weather_spec = _conditions(scenario, rng)
    layout = _layout(scenario, rng)
    geom = make_layout(layout)
    hour = _uniform(rng, time_spec.hour_range)
    sun = sun_from_hour(ramped.get("hour", hour), float(rng.uniform(0, 2 * math.pi)))
    if time_spec.sun_azimuth_deg_range is not None:
        azimuth = math.radians(_uniform(rng, time_spec.sun_azimuth_deg_range)) % (2 * math.pi)
        sun = sun.model_copy(update={"azimuth": azimuth})
    vis = None
    if weather_spec.visibility_m_range is not None:  # log-uniform: dense fog as likely as light fog
        lo, hi = np.log(weather_spec.visibility_m_range[0]), np.log(weather_spec.visibility_m_range[1])
        vis = float(np.exp(rng.uniform(lo, hi))) if hi > lo else float(weather_spec.visibility_m_range[0])
    intensity = _uniform(rng, weather_spec.intensity_range)
    weather = Weather(kind=weather_spec.kind, visibility_m=ramped.get("visibility_m", vis),
                      intensity=ramped.get("intensity", intensity))
    camera = _camera(scenario, rng, geom)
    ego_speed = _uniform(rng, scenario.ego_speed_mps_range)
    vehicle = scenario.camera.mount == "vehicle" and layout.kind != "plate"
    ego = geom.pose(0.0, geom.lane_center(layout.ego_lane)) if vehicle else None
    static = static_world(layout)
    physics.begin(static)
    placer = _Placer(geom, camera, physics, scenario.max_tries, static)
    first: dict[int, Actor] = {}  # events entry -> its first actor, the anchor of relative entries
    roles: tuple[tuple[Literal["event", "traffic"], list[ActorSpec]], ...] = (
        ("event", scenario.events), ("traffic", scenario.traffic))
    for role, specs in roles:
        for k, spec in enumerate(specs):
            anchor = first.get(spec.relative_to) if spec.relative_to is not None else None
            for _ in range(int(rng.integers(spec.count_range[0], spec.count_range[1] + 1))):
                if spec.relative_to is not None and anchor is None:
                    break  # the anchor entry placed nothing (a count of 0): nothing to stand by
                placer.rejections.clear()
                placed = placer.place(spec, role, rng, anchor)
                if placed and role == "event":
                    first.setdefault(k, placed[0])
                if not placed and role == "event":
                    why = ", ".join(f"{n} x {r}" for r, n in sorted(placer.rejections.items(), key=lambda kv: -kv[1]))
                    raise SamplingError(
                        f"scenario {scenario.name!r}", f"events[{k}] ({spec.asset})",
                        f"no sample met the requirements in {scenario.max_tries} tries (seed {seed}, frame {index}); "
                        f"rejections: {why}")
    randomization = None
    if scenario.randomize is not None:  # its own stream: the rest of the frame draws as without it
        randomization = draw_randomization(scenario.randomize, geom, static, placer.footprints,
                                           stream_rng(seed, index, RANDOMIZE))
    return Scene(scenario=scenario.name, seed=seed, index=index, event=scenario.event, layout=layout,
                 camera=camera, sun=sun, weather=weather, actors=tuple(placer.actors), ego_speed=ego_speed,
                 ego=ego, randomization=randomization)


def sample(scenario: Scenario, seed: int, index: int, physics: Physics | None = None, sequence: int = 1) -> Scene:
    """The concrete Scene of frame ``index`` of a dataset with ``seed``.

    With ``sequence`` T > 1, frames come in runs of T: frame i is step i % T of the run drawn
    from ``frame_rng(seed, i // T)``. A scenario's ``ramp`` sets its knobs (visibility, hour,
    intensity) to their values at step k / (T - 1) of the run; with T = 1 every frame takes the
    ramp's ``from`` values (a single frame is a run's first step). ``physics`` is reused if given
    (one per worker); else a temporary one is opened.
    """
    if sequence < 1:
        raise ValueError(f"sequence must be >= 1, got {sequence}")
    run, step = divmod(index, sequence)
    ramped = scenario.ramp.values(step, sequence) if scenario.ramp is not None else None
    with (contextlib.nullcontext(physics) if physics is not None else Physics()) as ph:
        scene = _draw_or_redraw(scenario, seed, run, ph, ramped)
    return advance(scene, step).model_copy(update={"index": index})


def _draw_or_redraw(scenario: Scenario, seed: int, index: int, physics: Physics,
                    ramped: dict[str, float] | None) -> Scene:
    """``_draw``; if an event actor cannot be placed (the actors drawn before it leave no room,
    or the layout has none), the whole frame again from the REDRAW stream, up to REDRAWS times.
    A scenario that fails every time asks for what its world cannot hold: the first draw's error."""
    try:
        return _draw(scenario, seed, index, physics, ramped)
    except SamplingError as first:
        for attempt in range(1, REDRAWS + 1):
            try:
                return _draw(scenario, seed, index, physics, ramped, stream_rng(seed, index, REDRAW, attempt))
            except SamplingError:
                continue
        raise SamplingError(first.source, first.field, f"{first.problem}; and in {REDRAWS} redraws of the "
                            "whole frame") from None
