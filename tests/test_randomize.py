"""Domain randomisation (the scenario's ``randomize`` block): drawn from its own seeded stream into
the Scene, surfaces recoloured and distractors added inside the scene's structure, labels exact,
distractors unlabelled but occluding, exposure in the right direction, bad values in one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fuzzing import assert_scenario_refused
from longtail.atomic import read_png
from longtail.classes import get_class
from longtail.labelers.verify import verify_dataset
from longtail.pipeline import render_dataset, render_scene
from longtail.readers import load_json
from longtail.worlds.layouts import static_world
from longtail.worlds.sampler import _footprint, footprints_overlap, sample
from longtail.worlds.scenario import load_scenario
from longtail.worlds.scene import Actor, Camera, Distractor, Layout, Randomization, Scene, Sun, Weather

from test_labels import _checks

ROOT = Path(__file__).resolve().parents[1]
RANDOMIZED = ROOT / "examples" / "pets_scene_randomized.yaml"
STATIC = get_class("static").id


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(str(RANDOMIZED)).with_resolution(160, 96)


def _plain(scene: Scene) -> Scene:
    return scene.model_copy(update={"randomization": None})


def test_the_block_is_drawn_from_its_own_stream_and_kept_in_the_scene(scenario):
    plain = load_scenario(str(ROOT / "examples" / "pets_scene.yaml")).with_resolution(160, 96)
    assert "randomize" not in plain.model_dump() and "randomize" in scenario.model_dump()
    scenes = [sample(scenario, 3, i) for i in range(6)]
    for i, s in enumerate(scenes):
        # everything but the randomisation is the scene the block-less scenario draws
        bare = sample(plain, 3, i)
        assert _plain(s).model_dump(exclude={"scenario"}) == bare.model_dump(exclude={"scenario"})
        assert "randomization" not in bare.model_dump() and "randomization" not in bare.to_json()
        assert s.randomization is not None and Scene.from_json(s.to_json()) == s
        assert sample(scenario, 3, i) == s  # same seed, same draws
    rz = [s.randomization for s in scenes]
    assert len({tuple(sorted(r.surfaces.items())) for r in rz}) == len(rz)
    assert len({len(r.distractors) for r in rz}) > 1
    assert len({r.exposure_stops for r in rz}) == len(rz) and all(-1 <= r.exposure_stops <= 1 for r in rz)
    assert sample(scenario, 4, 0).randomization != rz[0]
    # the frames of a sequence share their world
    assert sample(scenario, 3, 0, sequence=2).randomization == sample(scenario, 3, 1, sequence=2).randomization


def test_same_seed_same_bytes_labels_verified_and_frames_reproduce_from_their_record(tmp_path, scenario, renderer):
    a, b = tmp_path / "a", tmp_path / "b"
    render_dataset(scenario, a, frames=3, seed=7)
    render_dataset(scenario, b, frames=3, seed=7)
    for f in sorted(p for p in a.rglob("*") if p.is_file()):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f
    assert verify_dataset(a) == []
    record = load_json(a / "labels" / "000001.json", "record")
    scene = Scene.model_validate(record["scene"])
    assert scene.randomization is not None
    out = render_scene(scene, renderer)
    assert np.array_equal(out.rgb, read_png(a / record["files"]["rgb"]))
    assert out.objects == record["objects"]


def test_surfaces_change_static_pixels_but_not_actors_nor_labels(scenario, renderer):
    scene = next(s for s in (sample(scenario, 11, i) for i in range(8)) if not s.is_night
                 and s.weather.kind == "clear" and {"road", "sidewalk"} <= set(s.randomization.surfaces))
    colours_only = scene.model_copy(update={"randomization": Randomization(surfaces=scene.randomization.surfaces)})
    base, rand = render_scene(_plain(scene), renderer), render_scene(colours_only, renderer)
    assert np.array_equal(base.instance, rand.instance) and np.array_equal(base.semantic, rand.semantic)
    assert base.objects == rand.objects  # labels exactly as without the block
    diff = np.abs(base.rgb.astype(int) - rand.rgb.astype(int)).sum(-1)
    for cls in ("road", "sidewalk"):
        assert diff[base.semantic == get_class(cls).id].mean() > 20, cls
    # actors' own pixels (away from their anti-aliased outlines) are untouched
    inner = base.instance > 0
    for axis in (0, 1):
        for shift in (1, -1):
            inner &= np.roll(base.instance, shift, axis) == base.instance
    assert inner.sum() > 20 and np.median(diff[inner]) == 0
    full = render_scene(scene, renderer)  # everything drawn: labels still exact
    _checks(scene, full, full.objects)


def test_distractors_stay_off_the_road_clear_of_actors_and_unlabelled(scenario, renderer):
    seen = 0
    for i in range(4):
        scene = sample(scenario, 2, i)
        static = static_world(scene.layout)
        road = [pt for cls, pt in static.parts if cls == "road" and pt.shape == "box" and pt.dims[2] < 0.1]
        for d in scene.randomization.distractors:
            fp = _footprint(d.position[0], d.position[1], d.yaw, d.size[0], d.size[1])
            for a in scene.actors:
                assert not footprints_overlap(fp, _footprint(a.position[0], a.position[1], a.yaw, *a.size[:2]))
            for pt in road:  # no corner stands on the carriageway, a crossing or the cross street
                c, s = math.cos(pt.rpy[2]), math.sin(pt.rpy[2])
                for x, y in fp:
                    dx, dy = x - pt.pos[0], y - pt.pos[1]
                    assert not (abs(c * dx + s * dy) <= pt.dims[0] and abs(-s * dx + c * dy) <= pt.dims[1])
        out = render_scene(scene, renderer)
        assert {o["id"] for o in out.objects} <= {a.id for a in scene.actors}  # objects are actors only
        assert all(o["class"] != "static" for o in out.objects)
        mine = out.semantic == STATIC
        seen += int(mine.sum())
        assert np.all(out.instance[mine] == 0)
        _checks(scene, out, out.objects)
    assert seen > 0


def _roadside_scene(distractors=(), exposure=0.0) -> Scene:
    W, H = 200, 120
    f = W / (2 * math.tan(math.radians(40)))
    cam = Camera(width=W, height=H, fx=f, fy=f, cx=W / 2, cy=H / 2, position=(0.0, -1.7, 1.65))
    person = Actor(id=1, asset="pedestrian", cls="person", size=(0.5, 0.6, 1.75), position=(20.0, -5.5, 0.0),
                   yaw=1.5, color=(0.2, 0.3, 0.7))
    rz = Randomization(distractors=tuple(distractors), exposure_stops=exposure)
    return Scene(scenario="hand", seed=0, index=0, layout=Layout(kind="rural_road", lanes=2, lane_width=3.4,
                 ego_lane=0, length=120.0, seed=1), camera=cam, sun=Sun(hour=12, elevation=0.9, azimuth=0.5),
                 weather=Weather(), actors=(person,), randomization=rz)


def test_a_distractor_in_front_of_an_actor_occludes_it(renderer):
    # a 1 m box on the verge between the camera and a person: it hides her legs
    box = Distractor(shape="box", position=(12.0, -4.0, 0.0), size=(1.2, 1.5, 1.0), yaw=0.0, color=(0.9, 0.5, 0.1))
    clear = render_scene(_roadside_scene(), renderer)
    hidden = render_scene(_roadside_scene([box]), renderer)
    (c,), (h,) = clear.objects, hidden.objects
    assert h["alone_area"] == c["alone_area"] and h["area"] < c["area"]
    assert h["occlusion"] > c["occlusion"] + 0.1
    assert h["occlusion"] == pytest.approx(1 - h["area"] / h["alone_area"], abs=1e-6)
    gone = (clear.instance == 1) & (hidden.instance == 0)
    assert gone.any() and np.all(hidden.semantic[gone] == STATIC)
    _checks(_roadside_scene([box]), hidden, hidden.objects)


def test_exposure_shifts_brightness_its_way(renderer):
    means = [float(render_scene(_roadside_scene(exposure=e), renderer).rgb.mean()) for e in (-1.0, 0.0, 1.0)]
    assert means[0] < means[1] - 10 and means[2] > means[1] + 10


@pytest.mark.parametrize("block,field,words", [
    ("{surfaces: 2}", "randomize.surfaces", "less than or equal to 1"),
    ("{distractors_range: [5, 1]}", "randomize.distractors_range", "greater than high"),
    ("{distractors_range: [0, 500]}", "randomize.distractors_range[1]", "less than or equal to 50"),
    ("{exposure_stops_range: [.nan, 1]}", "randomize.exposure_stops_range[0]", "finite number"),
    ("{exposure_stops_range: [-9, 1]}", "randomize.exposure_stops_range", "-9.0 is not >= -4 (stops)"),
    ("{light_tint: .inf}", "randomize.light_tint", "finite number"),
    ("{texture_strength_range: [0, 7]}", "randomize.texture_strength_range", "7.0 is not <= 2"),
    ("{distractor_size_m_range: [0, 1]}", "randomize.distractor_size_m_range", "0.0 is not >= 0.1"),
    ("{surface: 0.5}", "randomize.surface", "unknown field"),
])
def test_bad_values_name_the_field_in_one_line(tmp_path, block, field, words):
    assert_scenario_refused(tmp_path, f"name: x\ndescription: d\nrandomize: {block}\n", field, words)
