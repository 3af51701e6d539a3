"""Sampling: Scenario (distributions) + (seed, frame index) -> concrete Scene.

Every draw comes from ``frame_rng(seed, index)`` in a fixed order, so a frame is reproducible
alone. Placement is rejection sampling with a bounded number of tries (Scenic-style): an event
actor that cannot meet its requirements raises ``SamplingError`` naming the requirement; traffic
that cannot be placed is left out (traffic density is a range, not a promise).
"""

from __future__ import annotations

import math

import numpy as np

from longtail.errors import SamplingError
from longtail.seeding import frame_rng
from longtail.worlds.assets import get_asset, resolve_asset_names
from longtail.worlds.layouts import make_layout
from longtail.worlds.scenario import ActorSpec, Scenario
from longtail.worlds.scene import Actor, Camera, Layout, Scene, Sun, Weather

MAX_SUN_ELEVATION_DEG = 55.0
CLEARANCE_M = 0.4  # minimum gap between the footprints of two actors
EGO_FOOTPRINT = (-2.5, 2.5, -1.1, 1.1)  # x0, x1, y0, y1 around the camera's ground point


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


def _camera(scenario: Scenario, rng: np.random.Generator, ego_y: float) -> Camera:
    spec = scenario.camera
    f = spec.width / (2.0 * math.tan(math.radians(spec.hfov_deg) / 2.0))
    return Camera(
        width=spec.width, height=spec.height, fx=f, fy=f, cx=spec.width / 2.0, cy=spec.height / 2.0,
        position=(0.0, ego_y, spec.height_m),
        pitch=math.radians(_uniform(rng, spec.pitch_deg_range)),
        yaw=math.radians(_uniform(rng, spec.yaw_deg_range)),
        roll=math.radians(_uniform(rng, spec.roll_deg_range)),
    )


def _place(spec: ActorSpec, layout, camera: Camera, rng: np.random.Generator, placed: list[np.ndarray],
           actor_id: int, role: str, tries: int) -> Actor | None:
    names = resolve_asset_names(spec.asset)
    spans = layout.spans(spec.region)
    ego = _footprint(camera.position[0], camera.position[1], 0.0, EGO_FOOTPRINT[1] - EGO_FOOTPRINT[0],
                     EGO_FOOTPRINT[3] - EGO_FOOTPRINT[2])
    for _ in range(tries):
        asset = get_asset(names[int(rng.integers(len(names)))])
        size = tuple(_uniform(rng, r) for r in asset.size_range)
        base = np.asarray(asset.palette[int(rng.integers(len(asset.palette)))])
        color = tuple(float(c) for c in np.clip(base * rng.uniform(0.85, 1.15), 0.0, 1.0))
        variant = int(rng.integers(asset.variants))
        span = spans[int(rng.integers(len(spans)))]
        x = camera.position[0] + _uniform(rng, spec.distance_m_range)
        if span.snap:
            y = (span.y0 + span.y1) / 2 + float(rng.normal(0.0, spec.lateral_jitter_m / 2)) if spec.lateral_jitter_m else (span.y0 + span.y1) / 2
        else:
            y = _uniform(rng, (span.y0, span.y1))
        yaw = span.heading + math.radians(_uniform(rng, spec.heading_deg_range))
        fp = _footprint(x, y, yaw, size[0], size[1])
        if footprints_overlap(fp, ego, CLEARANCE_M) or any(footprints_overlap(fp, o, CLEARANCE_M) for o in placed):
            continue
        actor = Actor(id=actor_id, asset=asset.name, cls=asset.cls, size=size, position=(x, y, span.z),
                      yaw=float(math.remainder(yaw, 2 * math.pi)), color=color, variant=variant, role=role)
        if spec.in_view:
            centre = np.array([[x, y, span.z + size[2] / 2]])
            uv, z = camera.project(centre)
            if not (z[0] > camera.near and 0 <= uv[0, 0] < camera.width and 0 <= uv[0, 1] < camera.height):
                continue
        placed.append(fp)
        return actor
    return None


def sample(scenario: Scenario, seed: int, index: int) -> Scene:
    """The concrete Scene of frame ``index`` of a dataset with ``seed``."""
    rng = frame_rng(seed, index)
    ls = scenario.layout
    lanes = int(ls.lanes_choices[int(rng.integers(len(ls.lanes_choices)))])
    layout = Layout(kind=ls.kind, lanes=lanes, lane_width=_uniform(rng, ls.lane_width_m_range), ego_lane=0,
                    length=ls.length_m, seed=int(rng.integers(2**31)))
    geom = make_layout(layout)
    hour = _uniform(rng, scenario.time.hour_range)
    sun = sun_from_hour(hour, float(rng.uniform(0, 2 * math.pi)))
    ws = scenario.weather
    vis = None
    if ws.visibility_m_range is not None:  # log-uniform: dense fog is as likely as light fog
        lo, hi = np.log(ws.visibility_m_range[0]), np.log(ws.visibility_m_range[1])
        vis = float(np.exp(rng.uniform(lo, hi))) if hi > lo else float(ws.visibility_m_range[0])
    weather = Weather(kind=ws.kind, visibility_m=vis, intensity=_uniform(rng, ws.intensity_range))
    camera = _camera(scenario, rng, geom.lane_center(layout.ego_lane))

    actors: list[Actor] = []
    placed: list[np.ndarray] = []
    for role, specs in (("event", scenario.events), ("traffic", scenario.traffic)):
        for k, spec in enumerate(specs):
            count = int(rng.integers(spec.count_range[0], spec.count_range[1] + 1))
            for _ in range(count):
                a = _place(spec, geom, camera, rng, placed, len(actors) + 1, role, scenario.max_tries)
                if a is None and role == "event":
                    need = f"an unoccupied spot in region {spec.region!r} at {spec.distance_m_range} m"
                    if spec.in_view:
                        need += " that is in view of the camera"
                    raise SamplingError(
                        f"scenario {scenario.name!r}: events[{k}] ({spec.asset}): no sample met the requirement "
                        f"({need}) in {scenario.max_tries} tries (seed {seed}, frame {index})")
                if a is not None:
                    actors.append(a)
    return Scene(scenario=scenario.name, seed=seed, index=index, event=scenario.event, layout=layout,
                 camera=camera, sun=sun, weather=weather, actors=tuple(actors))
