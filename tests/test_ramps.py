"""Condition ramps (the scenario's ``ramp`` block): over each run of a sequence the visibility,
the hour (and the sun with it) or the rain/snow strength change continuously while the world and
its tracks stay the same; the records carry each step's values; bad ramps fail in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fuzzing import assert_scenario_refused
from longtail.dataset import frame_files
from longtail.pipeline import render_dataset
from longtail.render.weather.scene_weather import draw_scene_weather
from longtail.worlds.physics import Physics
from longtail.worlds.sampler import sample, sun_from_hour
from longtail.worlds.scenario import Scenario, load_scenario, load_scenario_file
from longtail.worlds.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
FOG = ROOT / "examples" / "fog_rolls_in.yaml"
NIGHTFALL = ROOT / "examples" / "nightfall.yaml"
T = 6


@pytest.fixture(scope="module")
def physics():
    with Physics() as ph:
        yield ph


def _small(path: Path) -> Scenario:
    return load_scenario(str(path)).with_resolution(160, 96)


def _records(out: Path, n: int) -> list[dict]:
    return [json.loads((out / frame_files(i)["labels"]).read_text()) for i in range(n)]


def _render(scenario: Scenario, out: Path, frames: int = T, seed: int = 0) -> list[dict]:
    render_dataset(scenario, out, frames, seed, sequence=T)
    return _records(out, frames)


def _world(scene: Scene) -> Scene:
    """The scene without its conditions: what a ramp must leave alone."""
    return scene.model_copy(update={"sun": None, "weather": None})


def test_the_examples_validate_and_round_trip():
    for path in (FOG, NIGHTFALL):
        sc = load_scenario_file(path)
        assert sc.ramp is not None
        dump = sc.model_dump(mode="json")
        assert "from" in next(iter(v for v in dump["ramp"].values() if v))  # written as in the file
        assert Scenario.model_validate(dump).digest() == sc.digest()
        assert Scenario.model_validate_json(sc.model_dump_json()) == sc
        assert sc.with_resolution(160, 96).ramp == sc.ramp
    # without the block a scenario dumps (and digests) as before the block existed
    assert "ramp" not in load_scenario("stalled_vehicle_in_fog").model_dump(mode="json")


def test_ramp_values_at_each_step():
    fog = load_scenario_file(FOG).ramp
    assert fog is not None
    vis = [fog.values(k, T)["visibility_m"] for k in range(T)]
    assert vis[0] == 1500.0 and vis[-1] == 30.0
    ratios = [b / a for a, b in zip(vis, vis[1:])]
    assert np.allclose(ratios, (30 / 1500) ** (1 / (T - 1)))  # log: geometric steps
    assert fog.values(0, 1) == {"visibility_m": 1500.0}  # T = 1: the from value
    night = load_scenario_file(NIGHTFALL).ramp
    assert night is not None
    hours = [night.values(k, 10)["hour"] for k in range(10)]
    assert hours[0] == 17.0 and hours[-1] == 21.5 and np.allclose(np.diff(hours), 0.5)  # linear


def test_a_ramp_changes_the_conditions_and_nothing_else(physics):
    fog = _small(FOG)
    plain = fog.model_copy(update={"ramp": None})
    for seed in (0, 7):
        ramped = [sample(fog, seed, k, physics, sequence=T) for k in range(T)]
        unramped = [sample(plain, seed, k, physics, sequence=T) for k in range(T)]
        for r, u in zip(ramped, unramped):
            assert _world(r) == _world(u)  # same actors, same spots, same camera, every step
            assert r.sun == u.sun and r.weather.kind == u.weather.kind == "fog"
        assert fog.ramp is not None
        assert [s.weather.visibility_m for s in ramped] == [fog.ramp.values(k, T)["visibility_m"] for k in range(T)]
    # the hour moves the sun as sun_from_hour does, around the same drawn road bearing
    night = _small(NIGHTFALL)
    scenes = [sample(night, 3, k, physics, sequence=T) for k in range(T)]
    bearing = scenes[0].sun.azimuth - math.pi * (17.0 - 12.0) / 12.0
    for k, s in enumerate(scenes):
        want = sun_from_hour(17.0 + 4.5 * k / (T - 1), bearing)
        assert s.sun.hour == pytest.approx(want.hour) and s.sun.elevation == pytest.approx(want.elevation)
        assert math.cos(s.sun.azimuth - want.azimuth) == pytest.approx(1.0)
    plain_scene = sample(night.model_copy(update={"ramp": None}), 3, 0, physics, sequence=T)
    assert _world(scenes[0]) == _world(plain_scene)
    # without --sequence every frame shows the ramp's first step
    assert sample(night, 3, 0, physics).sun.hour == 17.0
    assert sample(fog, 3, 4, physics).weather.visibility_m == 1500.0


def test_fog_rolls_in_over_a_sequence(tmp_path):
    recs = _render(_small(FOG), tmp_path / "fog", frames=2 * T)
    for run in (recs[:T], recs[T:]):
        assert [r["scene"]["step"] for r in run] == list(range(T))
        ids = [[a["id"] for a in r["scene"]["actors"]] for r in run]
        assert all(i == ids[0] for i in ids) and ids[0]  # the same tracks in every step
        assert all({o["track_id"] for o in r["objects"]} <= set(ids[0]) for r in run)
        vis = [r["attributes"]["visibility_m"] for r in run]
        assert vis[0] == 1500.0 and vis[-1] == 30.0 and all(b < a for a, b in zip(vis, vis[1:]))
        assert all(r["attributes"]["weather"] == "foggy" for r in run)
        # the objects fade with the fog: falling on average, the last step well below the first
        means = [np.mean([o["visibility"] for o in r["objects"] if o["area"] > 0]) for r in run]
        assert np.mean(np.diff(means)) < 0 and means[-1] < means[0] - 0.2


def test_a_300_frame_fog_ramp_keeps_one_world_with_continuous_tracks(tmp_path):
    """The issue's length: 300 steps (30 s at 10 frames/s) in one run, at a tiny resolution."""
    n = 300
    out = tmp_path / "long"
    render_dataset(load_scenario(str(FOG)).with_resolution(64, 48), out, n, 5, sequence=n)
    recs = _records(out, n)
    assert [r["scene"]["step"] for r in recs] == list(range(n))
    vis = [r["attributes"]["visibility_m"] for r in recs]
    assert vis[0] == 1500.0 and vis[-1] == 30.0 and all(b < a for a, b in zip(vis, vis[1:]))
    assert np.allclose(np.diff(np.log(vis)), math.log(30 / 1500) / (n - 1), atol=1e-4)  # log: even in log
    actors = [{a["id"]: a for a in r["scene"]["actors"]} for r in recs]
    assert all(set(a) == set(actors[0]) for a in actors) and actors[0]  # the same tracks all along
    assert all({o["track_id"] for o in r["objects"]} <= set(actors[0]) for r in recs)
    times = [r["scene"]["time_s"] for r in recs]
    for k in range(1, n):  # every actor moves continuously: no step longer than its speed allows
        dt = times[k] - times[k - 1]
        assert dt > 0
        for i, a in actors[k].items():
            moved = math.dist(a["position"][:2], actors[k - 1][i]["position"][:2])
            assert moved <= a["speed"] * dt * 1.01 + 1e-6, (k, i, moved)


def test_nightfall_over_a_sequence(tmp_path):
    recs = _render(_small(NIGHTFALL), tmp_path / "night")
    ids = [[a["id"] for a in r["scene"]["actors"]] for r in recs]
    assert all(i == ids[0] for i in ids) and ids[0]
    hours = [r["attributes"]["hour"] for r in recs]
    elev = [r["attributes"]["sun_elevation_deg"] for r in recs]
    assert hours[0] == 17.0 and hours[-1] == 21.5 and all(b > a for a, b in zip(hours, hours[1:]))
    assert all(b < a for a, b in zip(elev, elev[1:]))
    assert recs[0]["attributes"]["time_of_day"] == "daytime" and recs[-1]["attributes"]["time_of_day"] == "night"


def test_rain_setting_in_ramps_the_rain_rate(physics):
    sc = Scenario.model_validate({
        "name": "rain_sets_in", "description": "d", "camera": {"width": 160, "height": 96},
        "weather": {"kind": "rain", "intensity_range": [0.2, 0.4]},
        "ramp": {"intensity": {"from": 0.0, "to": 1.0}}})
    scenes = [sample(sc, 1, k, physics, sequence=T) for k in range(T)]
    assert [s.weather.intensity for s in scenes] == pytest.approx([k / (T - 1) for k in range(T)])
    rates = [draw_scene_weather(s).record()["rate_mm_h"] for s in scenes]  # what the record's weather keeps
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_same_seed_same_bytes(tmp_path):
    sc = _small(FOG)
    a, b = tmp_path / "a", tmp_path / "b"
    render_dataset(sc, a, 3, 5, sequence=3)
    render_dataset(sc, b, 3, 5, sequence=3)
    files = lambda root: json.loads((root / "manifest.json").read_text())["files"]  # noqa: E731
    assert files(a) == files(b)


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return f


FOGGY = "name: x\ndescription: d\nweather: {kind: fog, visibility_m_range: [50, 100]}\n"


@pytest.mark.parametrize("text,field,words", [
    (FOGGY + "ramp: {visibility_m: {from: 0, to: 30, curve: log}}\n", "ramp.visibility_m.from",
     "greater than or equal to 1"),
    ("name: x\ndescription: d\nweather: {kind: rain}\nramp: {intensity: {from: 0, to: 1, curve: log}}\n",
     "ramp.intensity.curve", "from and to > 0; got from 0"),
    (FOGGY + "ramp: {hour: {from: 0, to: 5, curve: log}}\n", "ramp.hour.curve", "from and to > 0; got from 0"),
    (FOGGY + "ramp: {wind: {from: 0, to: 1}}\n", "ramp.wind", "unknown field"),
    (FOGGY + "ramp: {hour: {from: .nan, to: 21}}\n", "ramp.hour.from", "finite number"),
    (FOGGY + "ramp: {hour: {from: 17, to: .inf}}\n", "ramp.hour.to", "finite number"),
    (FOGGY + "ramp: {hour: {from: 17, to: 25}}\n", "ramp.hour.to", "less than or equal to 24"),
    (FOGGY + "ramp: {hour: {from: 17, to: 21, curve: cubic}}\n", "ramp.hour.curve", "'linear' or 'log'"),
    (FOGGY + "ramp: {hour: {to: 21}}\n", "ramp.hour.from", "Field required"),
    (FOGGY + "ramp: {}\n", "ramp", "at least one of visibility_m, hour, intensity"),
    ("name: x\ndescription: d\nramp: {visibility_m: {from: 1500, to: 30}}\n", "ramp.visibility_m",
     "needs weather kind fog"),
    (FOGGY + "ramp: {intensity: {from: 0, to: 1}}\n", "ramp.intensity", "needs weather kind rain or snow"),
    (FOGGY + "coverage: {night: 0.3}\nramp: {hour: {from: 17, to: 21}}\n", "ramp.hour", "coverage 'night'"),
    (FOGGY + "coverage: {clear: 0.3}\nramp: {visibility_m: {from: 900, to: 30}}\n", "ramp.visibility_m",
     "coverage 'clear'"),
])
def test_bad_ramp_names_file_field_and_expectation(tmp_path, text, field, words):
    assert_scenario_refused(tmp_path, text, field, words)


def test_a_ramp_beside_coverage_of_the_other_group_is_fine(tmp_path):
    sc = load_scenario_file(_write(tmp_path, FOGGY + "coverage: {night: 0.3}\n"
                                   "ramp: {visibility_m: {from: 900, to: 30}}\n"))
    assert sc.ramp is not None and sc.ramp.visibility_m is not None
