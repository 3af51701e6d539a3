"""worlds/: every catalog scenario shows its rare event; layouts, physics plausibility,
sequences and coverage."""

import math

import numpy as np
import pytest

from longtail.pipeline import render_scene
from longtail.worlds.layouts import list_layouts, make_layout, static_world
from longtail.worlds.physics import Physics, implausibilities
from longtail.worlds.sampler import FRAME_DT_S, sample
from longtail.worlds.scenario import list_scenarios, parse_scenario
from longtail.worlds.scene import Actor, Layout

CATALOG = list_scenarios()


@pytest.fixture(scope="module")
def physics():
    with Physics() as ph:
        yield ph


def test_catalog_is_large_and_described():
    assert len(CATALOG) >= 12
    assert len({s.name for s in CATALOG}) == len(CATALOG)
    assert all(s.description and s.event and s.events for s in CATALOG)


@pytest.mark.parametrize("scenario", CATALOG, ids=[s.name for s in CATALOG])
def test_defining_object_is_present_and_visible(renderer, physics, scenario):
    sc = scenario.with_resolution(320, 192)
    kinds = {name for spec in sc.events for name in _assets(spec.asset)}
    seen = 0
    for i in range(3):
        scene = sample(sc, 1, i, physics)
        events = [a for a in scene.actors if a.role == "event"]
        assert events and {a.asset for a in events} <= kinds | {"rider"}
        objs = render_scene(scene, renderer).objects
        seen += any(o["role"] == "event" and o["area"] > 0 for o in objs)
    assert seen >= 2, f"{sc.name}: the event is visible in {seen} of 3 frames"


def _assets(name):
    from longtail.worlds.assets import resolve_asset_names

    return set(resolve_asset_names(name))


@pytest.mark.parametrize("kind", [k for k in list_layouts() if k != "plate"])  # plates: test_plates.py
def test_layout_geometry_is_continuous_and_renders(kind, renderer, physics):
    layout = Layout(kind=kind, lanes=2, lane_width=3.5, ego_lane=0, length=120.0, seed=3, radius=70.0,
                    junction_at=30.0)
    geom = make_layout(layout)
    prev = geom.pose(0.0, 0.0)
    for s in np.arange(0.5, 120.0, 0.5):  # the centreline has no jumps
        cur = geom.pose(float(s), 0.0)
        assert math.hypot(cur[0] - prev[0], cur[1] - prev[1]) == pytest.approx(0.5, abs=1e-4)  # chord ~ arc
        prev = cur
    static = static_world(layout)
    classes = {c for c, _ in static.parts}
    assert {"road", "terrain"} <= classes
    if geom.urban:
        assert {"sidewalk", "building", "pole"} <= classes and static.lamps


def test_curve_bends_the_way_its_radius_says():
    left = make_layout(Layout(kind="curve", lanes=2, lane_width=3.5, ego_lane=0, length=120, seed=0, radius=60.0,
                              junction_at=10.0))
    right = make_layout(Layout(kind="curve", lanes=2, lane_width=3.5, ego_lane=0, length=120, seed=0, radius=-60.0,
                               junction_at=10.0))
    assert left.pose(80.0, 0.0)[1] > 20 and right.pose(80.0, 0.0)[1] < -20
    x, y, h = left.pose(10.0 + 60.0 * math.pi / 2, 0.0)  # a quarter circle later: heading +y
    assert h == pytest.approx(math.pi / 2) and x == pytest.approx(70.0) and y == pytest.approx(60.0)


def _actor(i, asset, cls, size, pos, yaw=0.0, parent=None):
    return Actor(id=i, asset=asset, cls=cls, size=size, position=pos, yaw=yaw, color=(0.5, 0.5, 0.5), parent=parent)


def test_plausibility_rejects_interpenetration_floating_and_kerbs(physics):
    layout = Layout(kind="urban_street", lanes=2, lane_width=3.5, ego_lane=0, length=80.0, seed=1)
    static = static_world(layout)
    car = (4.5, 1.8, 1.45)
    ok = [_actor(1, "sedan", "car", car, (20.0, -1.75, 0.0)), _actor(2, "sedan", "car", car, (30.0, 1.75, 0.0))]
    assert implausibilities(static, ok, physics) == []
    overlapping = [ok[0], _actor(2, "sedan", "car", car, (22.0, -1.5, 0.0))]
    assert "interpenetrates actor 1" in implausibilities(static, overlapping, physics)[0]
    floating = [_actor(1, "sedan", "car", car, (20.0, -1.75, 1.0))]
    assert "floating" in implausibilities(static, floating, physics)[0]
    on_kerb = [_actor(1, "sedan", "car", car, (20.0, -3.2, 0.0))]  # half on the road, half on the kerb
    assert "interpenetrates sidewalk" in implausibilities(static, on_kerb, physics)[0]
    rider = [_actor(1, "bicycle", "bicycle", (1.8, 0.55, 1.05), (20.0, -1.75, 0.0)),
             _actor(2, "rider", "rider", (0.6, 0.5, 1.7), (20.0, -1.75, 0.0), parent=1)]
    assert implausibilities(static, rider, physics) == []


def test_sampling_resamples_deterministically_around_obstacles(physics):
    # pedestrians on sidewalks full of trees, lamps and signs: every placed one is plausible
    sc = parse_scenario({"name": "crowd", "description": "d", "layout": {"kind": "urban_street"},
                         "events": [{"asset": "pedestrian", "count_range": [12, 12], "region": "roadside",
                                     "distance_m_range": [3, 60]}]}, "crowd")
    a = sample(sc, 3, 0, physics)
    assert a == sample(sc, 3, 0, physics)
    assert len(a.actors) == 12
    assert implausibilities(static_world(a.layout), a.actors, physics) == []


def test_sequences_move_actors_with_stable_ids(physics):
    sc = next(s for s in CATALOG if s.name == "wrong_way_driver").with_resolution(160, 96)
    frames = [sample(sc, 5, i, physics, sequence=4) for i in range(8)]
    assert frames[0].step == 0 and frames[3].step == 3 and frames[4].step == 0
    first, last = frames[0], frames[3]
    assert [a.id for a in first.actors] == [a.id for a in last.actors]
    for a, b in zip(first.actors, last.actors):
        moved = math.hypot(b.position[0] - a.position[0], b.position[1] - a.position[1])
        assert moved == pytest.approx(a.speed * 3 * FRAME_DT_S, abs=1e-9)
    wrong_way = next(a for a in first.actors if a.role == "event")
    assert wrong_way.speed > 0 and math.cos(wrong_way.yaw) < -0.9  # coming towards the ego
    assert last.camera.position[0] - first.camera.position[0] == pytest.approx(first.ego_speed * 0.3, abs=1e-9)
    assert frames[4].actors != first.actors  # the next run is a new draw
    assert sample(sc, 5, 6, physics, sequence=4) == frames[6]  # any frame alone


def test_coverage_gives_the_asked_shares(physics):
    sc = parse_scenario({"name": "cov", "description": "d", "layout": {"kind": "rural_road"},
                         "time": {"hour_range": [10, 12]}, "coverage": {"night": 0.5, "fog": 0.3}}, "cov")
    scenes = [sample(sc, 9, i, physics) for i in range(200)]
    night = np.mean([s.is_night for s in scenes])
    fog = np.mean([s.weather.kind == "fog" for s in scenes])
    assert 0.4 < night < 0.6 and 0.2 < fog < 0.4
    both = np.mean([s.is_night and s.weather.kind == "fog" for s in scenes])
    assert 0.08 < both < 0.23  # independent groups: about 0.5 x 0.3


def test_coverage_and_relations_are_validated():
    from longtail.errors import InputError

    with pytest.raises(InputError, match="coverage: .*shares of the time conditions add up to 1.2"):
        parse_scenario({"name": "x", "description": "d", "coverage": {"night": 0.7, "dusk": 0.5}}, "x.yaml")
    with pytest.raises(InputError, match="unknown condition 'hail'"):
        parse_scenario({"name": "x", "description": "d", "coverage": {"hail": 0.1}}, "x.yaml")
    with pytest.raises(InputError, match=r"x.yaml: events\[0\].relative_to: 0 does not name an earlier entry"):
        parse_scenario({"name": "x", "description": "d", "events": [{"asset": "dog", "relative_to": 0}]}, "x.yaml")
    with pytest.raises(InputError, match=r"events\[0\].region: 'parked' is not a region of layout 'highway'"):
        parse_scenario({"name": "x", "description": "d", "layout": {"kind": "highway"},
                        "events": [{"asset": "car", "region": "parked"}]}, "x.yaml")


def test_roadside_camera_stays_put_in_sequences(physics):
    sc = next(s for s in CATALOG if s.name == "smart_intersection")
    a, b = sample(sc, 2, 0, physics, sequence=3), sample(sc, 2, 2, physics, sequence=3)
    assert a.ego is None and a.camera == b.camera
    assert a.camera.position[2] == pytest.approx(7.5) and a.camera.pitch > math.radians(15)
    moved = [x for x, y in zip(a.actors, b.actors) if x.position != y.position]
    assert moved, "the crowd walks while the camera stands"


def test_contact_sheet_cli(tmp_path, capsys):
    from PIL import Image

    from longtail.cli import main

    out = tmp_path / "sheet.png"
    assert main(["scenarios", "--contact-sheet", str(out)]) == 0
    with Image.open(out) as im:
        rows = -(-len(CATALOG) // 4)
        assert im.size == (4 * 320, rows * (192 + 14))
        tiles = np.asarray(im.convert("RGB"))
    for k in range(len(CATALOG)):  # every tile holds a rendered road scene, not an empty panel
        r, c = divmod(k, 4)
        tile = tiles[r * 206 + 14:(r + 1) * 206, c * 320:(c + 1) * 320]
        assert tile.std() > 5
