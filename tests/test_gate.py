"""The verifier gate: clean frames are admitted; each kind of broken frame is rejected for its reason."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from longtail.atomic import read_png, write_json, write_png
from longtail.dataset import frame_files
from longtail.errors import DatasetError, ParameterError
from longtail.labelers.dedup import HashPool, hamming, image_hash
from longtail.labelers.gate import REASONS, Gate, GateConfig, RealRanges, gate_dataset
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario

FRAMES = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A bus (the event, with a pedestrian stepping out) in town: 3 frames at 160x96."""
    out = tmp_path_factory.mktemp("gate") / "ds"
    render_dataset(load_scenario("pedestrian_behind_bus").with_resolution(160, 96), out, frames=FRAMES, seed=4)
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    """A private copy of the dataset, to break."""
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def record(root: Path, index: int) -> dict:
    return json.loads((root / frame_files(index)["labels"]).read_text())


def save(root: Path, index: int, rec: dict) -> None:
    write_json(root / frame_files(index)["labels"], rec)


def reasons(root: Path, index: int, gate: Gate | None = None) -> tuple[str, ...]:
    return (gate or Gate()).check(root, index).reasons


def event_bus(rec: dict) -> dict:
    return next(o for o in rec["objects"] if o["role"] == "event" and o["class"] == "bus")


def test_clean_frames_are_admitted(dataset):
    report = gate_dataset(dataset)
    assert report.admitted == list(range(FRAMES)), report.to_json()["rejected"]
    assert sum(report.counts.values()) == 0
    assert list(report.to_json()["rejections"]) == list(REASONS)
    for i in range(FRAMES):  # the targets the frames are admitted for are there and seen
        assert event_bus(record(dataset, i))["area"] >= GateConfig().min_target_px


def test_wrong_box_is_a_labels_rejection(copy):
    rec = record(copy, 1)
    bus = event_bus(rec)
    bus["bbox"] = [bus["bbox"][0] + 2, bus["bbox"][1], bus["bbox"][2] + 2, bus["bbox"][3]]
    save(copy, 1, rec)
    v = Gate().check(copy, 1)
    assert v.reasons == ("labels",)
    assert any(f"object {bus['id']}: bbox" in r.detail and "tight box" in r.detail for r in v.rejections), v
    assert reasons(copy, 0) == ()  # the other frames are untouched


def test_unreadable_record_is_a_labels_rejection(copy):
    (copy / frame_files(2)["labels"]).write_text("{not json")
    v = Gate().check(copy, 2)
    assert v.reasons == ("labels",) and "not valid JSON" in v.rejections[0].detail and v.image_hash is None
    (copy / frame_files(2)["labels"]).unlink()
    assert reasons(copy, 2) == ("labels",)


@pytest.mark.parametrize("path, value, field", [
    (("actors", 0, "size"), "big", "scene.actors[0].size"),
    (("actors", 0, "size"), [1e9, 2.0, 3.0], "scene.actors[0].size"),
    (("layout", "lanes"), 10**6, "scene.layout: lanes_choices[0]"),  # no million-lane world is built
    (("layout", "seed"), -1, "scene.layout.seed"),
])
def test_bad_scene_is_a_labels_rejection(copy, path, value, field):
    rec = record(copy, 0)
    parent = rec["scene"]
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    save(copy, 0, rec)
    v = Gate().check(copy, 0)
    assert v.reasons == ("labels",) and field in v.rejections[0].detail, v


def test_hidden_target_is_invisible(copy):
    rec = record(copy, 0)
    for o in rec["objects"]:
        if o["role"] == "event":
            o["visibility"] = 0.0  # what dense fog or an unlit night leaves
    save(copy, 0, rec)
    v = Gate().check(copy, 0)
    assert v.reasons == ("invisible_target",), v
    assert "0 of 2 targeted objects visible" in v.rejections[0].detail
    # the threshold is the config's: a gate that asks for no visible target admits the frame
    assert reasons(copy, 0, Gate(GateConfig(min_visible_targets=0))) == ()


def test_too_few_target_pixels_and_missing_targets(dataset):
    area = event_bus(record(dataset, 0))["area"]
    assert reasons(dataset, 0, Gate(GateConfig(min_target_px=area))) == ()
    assert reasons(dataset, 0, Gate(GateConfig(min_target_px=area + 1))) == ("invisible_target",)
    # a caller-chosen target: the frames hold no deer at all
    v = Gate(target=lambda o: o["class"] == "animal").check(dataset, 0)
    assert v.reasons == ("invisible_target",) and "no targeted object in view" in v.rejections[0].detail


def test_dense_fog_hides_targets(dataset, tmp_path):
    """The same frames through the weather stage's dense fog: the bus keeps under 30 % of its
    contrast (the record's measured visibility), so a gate asking for 30 % rejects every foggy
    frame and admits every clear one."""
    from longtail.augment import augment_dataset

    fog = tmp_path / "fog"
    augment_dataset(dataset, fog, "dense_fog", strength=1.0)
    gate = GateConfig(min_target_visibility=0.3)
    clear = gate_dataset(dataset, Gate(gate))
    foggy = gate_dataset(fog, Gate(gate))
    assert clear.admitted == list(range(FRAMES))
    assert foggy.admitted == [] and foggy.counts == {"invisible_target": FRAMES}, foggy.to_json()


def test_floating_actor(copy):
    rec = record(copy, 0)
    actor = rec["scene"]["actors"][0]
    actor["position"][2] += 1.0
    save(copy, 0, rec)
    v = Gate().check(copy, 0)
    assert v.reasons == ("floating",), v
    assert v.rejections[0].detail.startswith(f"actor {actor['id']}: floating")


def test_actors_moved_onto_each_other_interpenetrate(copy):
    rec = record(copy, 0)
    a, b = rec["scene"]["actors"][:2]
    assert a["parent"] is None and b["parent"] is None
    b["position"] = [a["position"][0] + 0.5, a["position"][1], a["position"][2]]
    save(copy, 0, rec)
    v = Gate().check(copy, 0)
    assert v.reasons == ("interpenetration",), v
    assert f"actor {b['id']}" in v.rejections[0].detail


def test_same_frame_twice_is_a_duplicate(dataset):
    report = gate_dataset(dataset, frames=[0, 1, 0])
    assert [v.admitted for v in report.verdicts] == [True, True, False]  # a different frame is no duplicate
    dup = report.verdicts[2]
    assert dup.reasons == ("duplicate",) and "rgb/000000.png" in dup.rejections[0].detail
    assert report.counts == {"duplicate": 1}
    h = [v.image_hash for v in report.verdicts]
    assert h[0] == h[2] and hamming(h[0], h[1]) > GateConfig().duplicate_max_bits


def test_near_copy_of_another_frame_is_a_duplicate(copy):
    rgb = read_png(copy / frame_files(0)["rgb"])
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    write_png(copy / frame_files(2)["rgb"], noisy)
    report = gate_dataset(copy)
    assert report.admitted == [0, 1] and report.verdicts[2].reasons == ("duplicate",)
    assert image_hash(noisy) != image_hash(rgb)  # near, not equal


def test_pool_seeds_a_resumed_gate(dataset, tmp_path):
    first = Gate()
    gate_dataset(dataset, first, frames=[0])
    first.pool.save(tmp_path / "pool.json")
    resumed = Gate(pool=HashPool.load(tmp_path / "pool.json"))
    assert resumed.pool.hashes == first.pool.hashes and resumed.pool.keys == first.pool.keys
    report = gate_dataset(dataset, resumed)
    assert report.admitted == [1, 2] and report.counts == {"duplicate": 1}
    assert len(resumed.pool) == 3
    # kept inside another JSON document (a loop's own state file) just the same
    embedded = HashPool.from_json(json.loads(json.dumps({"pool": resumed.pool.to_json()}))["pool"])
    assert embedded.hashes == resumed.pool.hashes and embedded.keys == resumed.pool.keys


def test_limit_stops_after_enough_admitted_frames(dataset):
    report = gate_dataset(dataset, Gate(), frames=[0, 0, 1, 2], limit=2)
    assert report.admitted == [0, 1] and [v.frame for v in report.verdicts] == [0, 0, 1]
    assert report.counts == {"duplicate": 1}
    with pytest.raises(ParameterError, match="limit"):
        gate_dataset(dataset, limit=-1)


def test_size_and_aspect_outside_the_real_ranges(dataset):
    bus = event_bus(record(dataset, 0))
    box = bus["bbox_amodal"]  # the gate measures the whole object, as real annotators draw it
    assert box != bus["bbox"]
    w, h = box[2] - box[0], box[3] - box[1]

    def ranges(heights, aspect):
        boxes = [("bus", [0, 0, aspect * hh, hh]) for hh in heights]
        return RealRanges.from_boxes(boxes, percentiles=(0, 100), min_count=2)

    fits = ranges([h - 1, h + 1], w / h)
    assert reasons(dataset, 0, Gate(ranges=fits)) == ()
    assert reasons(dataset, 0, Gate(ranges=ranges([4 * h, 8 * h], w / h))) == ("size",)  # real buses are taller
    assert reasons(dataset, 0, Gate(ranges=ranges([h - 1, h + 1], 3 * w / h))) == ("aspect",)
    vis = bus["bbox"]  # its tight visible box would have passed a range made of visible boxes
    tight = ranges([vis[3] - vis[1] - 1, vis[3] - vis[1] + 1], (vis[2] - vis[0]) / (vis[3] - vis[1]))
    assert "size" in reasons(dataset, 0, Gate(ranges=tight)) or "aspect" in reasons(dataset, 0, Gate(ranges=tight))
    # the same range measured on images half as tall fits once scaled to this height
    assert reasons(dataset, 0, Gate(ranges=ranges([2 * h - 2, 2 * h + 2], w / h).scaled(0.5))) == ()


def test_real_ranges_are_robust_percentiles_with_a_minimum_count():
    rng = np.random.default_rng(0)
    heights = rng.uniform(50, 150, 500)
    boxes = [("person", [10, 10, 10 + 0.4 * hh, 10 + hh]) for hh in heights] + [("person", [0, 0, 900, 2])]
    boxes += [("car", [0, 0, 40, 20])] * 5 + [("car", [0, 0, 0, 20])]  # too few cars; an empty box
    r = RealRanges.from_boxes(boxes)
    assert set(r.classes) == {"person"} and r.get("car") is None and r.classes["person"].count == 501
    lo, hi = r.classes["person"].height_px
    assert 50 <= lo < 53 and 147 < hi <= 150  # the one odd box does not stretch the range
    assert r.classes["person"].aspect == pytest.approx((0.4, 0.4))
    with pytest.raises(ParameterError, match="percentiles"):
        RealRanges.from_boxes(boxes, percentiles=(50, 10))
    with pytest.raises(ParameterError, match="classes"):
        RealRanges.from_boxes([("unicorn", [0, 0, 1, 1])])


def test_real_ranges_from_a_detection_dataset():
    pytest.importorskip("torch")
    from longtail.classes import get_class
    from longtail.train.entries import DetectionDataset, make_entry

    person, car = get_class("person").id, get_class("car").id
    entries = [make_entry(Path(f"{i}.png"), 640, 480, i, boxes=[[0, 0, 20, 50 + i], [0, 0, 80, 40], [0, 0, 5, 5]],
                          labels=[person, car, -1], iscrowd=[0, 1, 1]) for i in range(30)]
    r = RealRanges.from_dataset(DetectionDataset("real", entries), percentiles=(0, 100))
    assert set(r.classes) == {"person"}  # the crowd car and the ignore region are left out
    assert r.classes["person"].height_px == (50.0, 79.0) and r.classes["person"].count == 30


def test_gate_config_refuses_bad_thresholds():
    with pytest.raises(ParameterError, match="min_target_visibility"):
        GateConfig(min_target_visibility=1.5)
    with pytest.raises(ParameterError, match="floating_tol_m"):
        GateConfig(floating_tol_m=float("nan"))
    with pytest.raises(ParameterError, match="duplicate_max_bits"):
        GateConfig(duplicate_max_bits=-1)


def test_gate_dataset_refuses_what_is_no_dataset(tmp_path, dataset):
    with pytest.raises(DatasetError):
        gate_dataset(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="frames"):
        gate_dataset(dataset, frames=[FRAMES])


def test_report_counts_every_reason_of_a_frame(copy):
    rec = record(copy, 1)
    rec["scene"]["actors"][0]["position"][2] += 1.0
    for o in rec["objects"]:
        if o["role"] == "event":
            o["visibility"] = 0.0
    save(copy, 1, rec)
    report = gate_dataset(copy)
    assert report.admitted == [0, 2]
    assert report.counts == {"floating": 1, "invisible_target": 1}
    assert sorted(report.to_json()["rejected"]) == ["1"]
