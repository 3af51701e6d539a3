"""`longtail target`: the weakest slices of `evaluate --slices` become a scenario aimed at them."""

import json
import math

import numpy as np
import yaml
from hypothesis import given, strategies as st

from fuzzing import FUZZ, assert_clean, mutate, run_cli
from longtail.worlds.assets import get_asset
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import load_scenario
from longtail.worlds.target import focal_px

BASE = "examples/pets_scene.yaml"


def slices_doc(*records) -> dict:
    """An evaluate JSON as `evaluate --slices --out` writes it (the parts target reads)."""
    return {"classes": ["person"], "slices": {"settings": {}, "all": {}, "slices": list(records)}}


def rec(key, value, rank, kind="object", rng=None, gap=-0.2):
    return {"key": key, "value": value, "kind": kind, "range": rng, "rank": rank, "gap": gap,
            "support_images": 30, "support_objects": 90}


def target(tmp_path, doc, *extra):
    src = tmp_path / "eval.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "targeted.yaml"
    rc, stdout, err = run_cli(["target", src, "--scenario", BASE, "--out", out, *extra])
    return rc, stdout, err, out


def test_the_weakest_reachable_slices_become_knobs(tmp_path):
    doc = slices_doc(rec("truncated", "yes", 1, rng=[0.15, None]),
                     rec("height_band", "32-64", 2, rng=[32, 64]),
                     rec("visibility_band", "50-100 m", 3, kind="image"),
                     rec("distance_band", "10-20", 4, rng=[10, 20]),
                     {**rec("class", "person", None), "note": "support 3 < min_support 10"})
    rc, stdout, err, out = target(tmp_path, doc, "--top", "2")
    assert rc == 0, err
    assert "rank 1: truncated=yes -> skipped" in stdout
    text = out.read_text()
    assert "# " in text.splitlines()[0] and "rank 2: height_band=32-64" in text and "rank 4" not in text
    sc = load_scenario(out)
    assert sc.weather.kind == "fog" and tuple(sc.weather.visibility_m_range) == (50.0, 100.0)
    assert "fog" not in sc.coverage and sc.coverage.get("night") == 0.15  # the time coverage stays
    f = focal_px(load_scenario(BASE))
    people = [spec for spec in sc.traffic + sc.events if spec.asset in ("pedestrian", "person")]
    assert people and all(spec.asset != "car" for spec in people)
    for spec in people:
        h = np.mean([np.mean(get_asset(n).size_range[2]) for n in (["pedestrian", "child"] if spec.asset == "person"
                                                                  else ["pedestrian"])])
        lo, hi = spec.distance_m_range
        # a person of height h at the range's ends stands 64 and 32 pixels tall
        assert math.isclose(f * h / lo, 64, rel_tol=0.01) and math.isclose(f * h / hi, 32, rel_tol=0.01)
    car = next(spec for spec in sc.traffic if spec.asset == "car")
    assert tuple(car.distance_m_range) == (10.0, 40.0), "person only was scored: cars keep their range"
    # the scenes it samples put the people where the slice is
    cam_xy = None
    for i in range(3):
        scene = sample(sc, 1, i)
        cam_xy = np.array(scene.camera.position[:2])
        for a in scene.actors:
            if a.cls == "person" and a.role == "traffic":
                assert 28 <= np.linalg.norm(np.array(a.position[:2]) - cam_xy) <= 75


def test_night_and_class_slices(tmp_path):
    doc = slices_doc(rec("time_of_day", "night", 1, kind="image"), rec("class", "person", 2))
    rc, _, err, out = target(tmp_path, doc, "--top", "2")
    assert rc == 0, err
    sc, base = load_scenario(out), load_scenario(BASE)
    assert tuple(sc.time.hour_range) == (21.5, 23.5) and "night" not in sc.coverage
    assert [s.count_range for s in sc.events] == [(2 * a, 2 * b) for a, b in (s.count_range for s in base.events)]


def test_nothing_reachable_is_one_line_exit_2(tmp_path):
    rc, _, err, out = target(tmp_path, slices_doc(rec("truncated", "yes", 1), rec("scenario", "x", 2, kind="image")))
    assert rc == 2 and "truncated=yes: no knob for truncated" in err
    assert not out.exists()
    rc, _, err, _ = target(tmp_path, {"steps": 3})
    assert rc == 2 and "slices" in err


@FUZZ
@given(st.data())
def test_damaged_evaluation_files_never_crash(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fz")
    doc = slices_doc(rec("height_band", "32-64", 1, rng=[32, 64]), rec("visibility_band", "<50 m", 2, kind="image"),
                     rec("time_of_day", "dusk", 3, kind="image"), rec("occlusion_band", "0.5-1", 4, rng=[0.5, 1]))
    rc, out, err, path = target(tmp, mutate(doc, data), "--top", "3")
    assert_clean(rc, out, err)
    if rc == 0:
        load_scenario(path)
        yaml.safe_load(path.read_text())


def test_the_records_own_tags_name_knobs_too(tmp_path):
    doc = slices_doc(rec("weather", "foggy", 1, kind="image"), rec("time_of_day", "dawn/dusk", 2, kind="image"))
    rc, _, err, out = target(tmp_path, doc, "--top", "2")
    assert rc == 0, err
    sc = load_scenario(out)
    assert sc.weather.kind == "fog" and tuple(sc.weather.visibility_m_range) == (40.0, 250.0)
    assert tuple(sc.time.hour_range) == (17.4, 18.3)
