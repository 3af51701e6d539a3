"""train/ data side: the common sample format from longtail datasets and from real formats (COCO,
KITTI, YOLO, MOT fixtures made here, and longtail's own exports read back), class maps, condition
tags, format detection, and the mixed / staged samplers."""

import sys

import pytest

# PyBullet's EGL plugin (Mesa; test_camera loads it while collecting) and triton, which torch._dynamo
# imports under torchvision, crash the process when triton is imported after it. These tests never
# compile a model: keep triton out unless something imported it already.
sys.modules.setdefault("triton", None)
pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from longtail.errors import InputError
from longtail.classes import get_class
from longtail.labelers.export import export_dataset, load_records
from longtail.labelers.export_base import ExportFilter
from longtail.pipeline import render_dataset
from longtail.train.classmap import IGNORE_LABEL, KITTI, LabelSpace, class_map, load_class_map
from longtail.train.datasets import (CocoDataset, KittiDataset, MotDataset, SyntheticDataset, YoloDataset,
                                     detect_kind, open_dataset)
from longtail.train.batching import MixedSampler, StagedSampler, parse_shares, two_stage
from longtail.worlds.scenario import load_scenario

ID = {name: get_class(name).id for name in ("person", "rider", "car", "truck", "animal", "bicycle")}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data") / "fc"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), root, frames=6, seed=4)
    return root


def _png(path: Path, w: int = 64, h: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)
    return path


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- longtail datasets ---------------------------------------------------------------------------

def test_synthetic_samples_follow_the_records(synthetic):
    ds = SyntheticDataset(synthetic)
    records = load_records(synthetic)
    assert len(ds) == len(records) == 6
    for i, rec in enumerate(records):
        image, t = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 96, 160)
        visible = [o for o in rec["objects"] if o["area"] > 0 and get_class(o["class"]).target]
        assert t["boxes"].dtype == torch.float32 and t["labels"].dtype == torch.int64
        assert t["boxes"].tolist() == [o["bbox"] for o in visible]
        assert t["labels"].tolist() == [get_class(o["class"]).id for o in visible]
        assert t["area"].tolist() == [o["area"] for o in visible]
        assert t["iscrowd"].sum() == 0 and t["image_id"] == rec["frame"] + 1
        assert t["conditions"]["time_of_day"] == rec["attributes"]["time_of_day"]
        assert set(t["conditions"]) >= {"time_of_day", "weather", "scenario", "event"}
        assert t["difficulty"] == [o["kitti_difficulty"] for o in visible]
    assert any(o["area"] == 0 for r in records for o in r["objects"])  # the skip above was exercised


def test_synthetic_filter_turns_hidden_objects_into_ignore_regions(synthetic):
    plain, hard = SyntheticDataset(synthetic), SyntheticDataset(synthetic, ExportFilter(min_visible_px=10))
    crowd = torch.cat([hard.target(i)["iscrowd"] for i in range(len(hard))])
    areas = torch.cat([hard.target(i)["area"] for i in range(len(hard))])
    assert 0 < crowd.sum() < len(crowd)
    assert torch.equal(crowd.bool(), areas < 10)
    assert hard.objects == plain.objects - int(crowd.sum())


@pytest.mark.parametrize("fmt", ["coco", "kitti", "yolo"])
def test_longtail_exports_read_back_as_the_same_samples(synthetic, tmp_path, fmt):
    flt = ExportFilter(min_visible_px=5)
    export_dataset(synthetic, tmp_path / fmt, fmt, flt)
    src, back = SyntheticDataset(synthetic, flt), open_dataset(str(tmp_path / fmt))
    assert back.kind == fmt and len(back) == len(src) and not back.unmapped
    for i in range(len(src)):
        a, b = src.target(i), back.target(i)
        keep, bkeep = a["iscrowd"] == 0, b["iscrowd"] == 0
        torch.testing.assert_close(b["boxes"][bkeep], a["boxes"][keep], atol=1e-3, rtol=0)
        assert torch.equal(b["labels"][bkeep], a["labels"][keep])
        if fmt == "coco":  # COCO keeps ignore regions with their class, and the frame attributes
            assert torch.equal(b["iscrowd"], a["iscrowd"]) and b["conditions"] == a["conditions"]
        if fmt == "kitti":  # KITTI writes ignore regions as class-agnostic DontCare
            assert torch.equal(b["boxes"][~bkeep], a["boxes"][~keep])
            assert (b["labels"][~bkeep] == IGNORE_LABEL).all()
        assert torch.equal(back.image(i), src.image(i))


# --- real formats from hand-made fixtures --------------------------------------------------------

def test_coco_maps_names_drops_and_counts_the_rest(tmp_path):
    _png(tmp_path / "data" / "a.png")
    _png(tmp_path / "data" / "b.png")
    coco = {"images": [{"id": 7, "file_name": "a.png", "width": 64, "height": 48,
                        "attributes": {"time_of_day": "night", "hour": 23.5}},
                       {"id": 9, "file_name": "b.png", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 10, "name": "traffic light"},
                           {"id": 18, "name": "dog"}],
            "annotations": [
                {"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 0, "area": 150},
                {"id": 2, "image_id": 7, "category_id": 10, "bbox": [30, 2, 4, 9], "iscrowd": 0},
                {"id": 3, "image_id": 9, "category_id": 18, "bbox": [5, 5, 20, 10], "iscrowd": 0},
                {"id": 4, "image_id": 9, "category_id": 3, "bbox": [40, 20, 30, 40], "iscrowd": 1},
                {"id": 5, "image_id": 9, "category_id": 10, "bbox": [0, 0, 3, 3], "iscrowd": 0}]}
    (tmp_path / "labels.json").write_text(json.dumps(coco))
    ds = open_dataset(f"coco:{tmp_path / 'labels.json'}")
    assert isinstance(ds, CocoDataset) and ds.unmapped == Counter({"traffic light": 2})
    a, b = ds.target(0), ds.target(1)
    assert a["image_id"] == 7 and a["boxes"].tolist() == [[1, 2, 11, 22]] and a["labels"].tolist() == [ID["person"]]
    assert a["area"].tolist() == [150] and a["conditions"] == {"time_of_day": "night"}
    assert b["labels"].tolist() == [ID["animal"], ID["car"]] and b["iscrowd"].tolist() == [0, 1]
    assert b["boxes"][1].tolist() == [40, 20, 64, 48]  # clipped to the image
    assert ds.image(1).shape == (3, 48, 64)
    (tmp_path / "data" / "b.png").unlink()
    with pytest.raises(InputError, match="image not found: .*b.png"):
        open_dataset(str(tmp_path))  # a folder holding labels.json: longtail's COCO export layout


KITTI_LABELS = """\
Car 0.00 0 -1.5 10.00 5.00 50.00 47.00 1.5 1.6 3.9 1.0 1.6 20.0 -1.5
Van 0.20 1 -1.5 2.00 3.00 20.00 33.00 2.0 1.9 4.5 -3.0 1.7 30.0 -1.5
Cyclist 0.00 2 0.3 30.00 10.00 40.00 40.00 1.7 0.6 1.8 2.0 1.6 15.0 0.3
Tram 0.00 0 0.0 0.00 0.00 60.00 20.00 3.0 2.5 15.0 0.0 1.6 40.0 0.0
Misc 0.00 0 0.0 1.00 1.00 5.00 5.00 1.0 1.0 1.0 0.0 1.6 40.0 0.0
DontCare -1 -1 -10 50.00 30.00 60.00 40.00 -1 -1 -1 -1000 -1000 -1000 -10
"""


def test_kitti_maps_types_marks_dont_care_and_difficulty(tmp_path):
    _png(tmp_path / "training" / "image_2" / "000000.png")
    _png(tmp_path / "training" / "image_2" / "000001.png")  # no label file: no objects
    (tmp_path / "training" / "label_2").mkdir()
    (tmp_path / "training" / "label_2" / "000000.txt").write_text(KITTI_LABELS)
    ds = open_dataset(str(tmp_path))
    assert isinstance(ds, KittiDataset) and ds.unmapped == Counter({"Tram": 1, "Misc": 1})
    t = ds.target(0)
    assert t["labels"].tolist() == [ID["car"], ID["car"], ID["rider"], IGNORE_LABEL]
    assert t["iscrowd"].tolist() == [0, 0, 0, 1]
    assert t["boxes"][0].tolist() == [10, 5, 50, 47]
    # heights 42 / 30 / 30 px; occluded 0 / 1 / 2; truncated 0 / 0.2 / 0
    assert t["difficulty"][:3] == ["easy", "moderate", "hard"]
    assert len(ds.target(1)["boxes"]) == 0 and ds.objects == 3


def test_yolo_reads_data_yaml_and_normalised_boxes(tmp_path):
    for stem in ("a", "b"):
        _png(tmp_path / "images" / "val" / f"{stem}.png", 100, 50)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n2 0.25 0.5 0.1 0.2\n11 0.9 0.1 0.1 0.1\n")
    (tmp_path / "labels" / "val" / "b.txt").write_text("1 0.1 0.1 0.3 0.1 0.3 0.3\n")  # a polygon
    names = "\n".join(f"  - {n}" for n in ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
                                            "truck", "boat", "traffic light", "fire hydrant", "stop sign"])
    (tmp_path / "data.yaml").write_text(f"path: .\nval: images/val\ntrain: images/val\nnames:\n{names}\n")
    ds = open_dataset(f"yolo:{tmp_path}", split="val")
    assert isinstance(ds, YoloDataset) and ds.unmapped == Counter({"stop sign": 1})
    a = ds.target(0)
    torch.testing.assert_close(a["boxes"], torch.tensor([[40.0, 15.0, 60.0, 35.0], [20.0, 20.0, 30.0, 30.0]]))
    assert a["labels"].tolist() == [ID["person"], ID["car"]]
    torch.testing.assert_close(ds.target(1)["boxes"], torch.tensor([[10.0, 5.0, 30.0, 15.0]]))
    assert ds.target(1)["labels"].tolist() == [ID["bicycle"]]


def test_mot_reads_a_2015_sequence_with_ignore_flags(tmp_path):
    for f in (1, 2, 3):
        _png(tmp_path / "img1" / f"{f:06d}.jpg", 80, 60)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,10,5,8,20,1,-1,-1,-1\n1,2,40,10,10,25,0,-1,-1,-1\n"
                                           "2,1,12.5,5,8,20,1,-1,-1,-1\n9,1,1,1,5,5,1,-1,-1,-1\n")
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=TINY-01\nimDir=img1\nframeRate=7\nseqLength=3\n"
                                         "imWidth=80\nimHeight=60\nimExt=.jpg\n")
    ds = open_dataset(str(tmp_path))
    assert isinstance(ds, MotDataset) and len(ds) == 3 and ds.objects == 2
    t = ds.target(0)
    assert t["image_id"] == 1 and t["boxes"].tolist() == [[10, 5, 18, 25], [40, 10, 50, 35]]
    assert t["labels"].tolist() == [ID["person"]] * 2 and t["iscrowd"].tolist() == [0, 1]
    assert t["conditions"] == {"sequence": "TINY-01"}
    assert ds.target(1)["boxes"].tolist() == [[12.5, 5, 20.5, 25]] and len(ds.target(2)["boxes"]) == 0


def test_mot16_class_column_is_mapped(tmp_path):
    _png(tmp_path / "img1" / "000001.jpg")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,1,1,5,9,1,1,0.9\n1,2,9,1,5,9,1,3,1.0\n1,3,20,1,5,9,1,9,1.0\n"
                                           "1,4,30,1,5,9,1,8,1.0\n")
    ds = MotDataset(tmp_path)
    t = ds.target(0)
    assert t["labels"].tolist() == [ID["person"], ID["car"], IGNORE_LABEL] and t["iscrowd"].tolist() == [0, 0, 1]
    assert ds.unmapped == Counter({"occluder": 1})


# --- class maps, tags, detection -----------------------------------------------------------------

def test_a_class_map_file_replaces_the_builtin(tmp_path):
    _png(tmp_path / "image_2" / "000000.png")
    (tmp_path / "label_2").mkdir()
    (tmp_path / "label_2" / "000000.txt").write_text(KITTI_LABELS)
    (tmp_path / "map.yaml").write_text("Car: car\nVan: truck\nDontCare: ignore\nCyclist: null\n")
    ds = KittiDataset(tmp_path, classes=tmp_path / "map.yaml")
    assert ds.target(0)["labels"].tolist() == [ID["car"], ID["truck"], IGNORE_LABEL]
    assert ds.unmapped == Counter({"Cyclist": 1, "Tram": 1, "Misc": 1})
    assert class_map("kitti", "coco").table == KITTI


def test_a_class_map_naming_an_unknown_class_is_refused(tmp_path):
    (tmp_path / "map.yaml").write_text("Car: car\nVan: lorry\n")
    with pytest.raises(InputError) as e:
        load_class_map(tmp_path / "map.yaml")
    msg = _one_line(e)
    assert str(tmp_path / "map.yaml") in msg and "Van" in msg and "'lorry'" in msg and "expected one of" in msg


def test_label_space_round_trips_and_refuses_non_targets():
    space = LabelSpace(("person", "car"))
    assert space.num_classes == 3
    assert space.to_model(np.array([ID["car"], ID["person"], ID["truck"], -1])).tolist() == [2, 1, 0, 0]
    assert space.to_semantic(np.array([1, 2])).tolist() == [ID["person"], ID["car"]]
    with pytest.raises(InputError):
        LabelSpace(("person", "road"))


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_condition_tags_from_a_sidecar(tmp_path, suffix):
    for f in (1, 2):
        _png(tmp_path / "seq" / "img1" / f"{f:06d}.jpg")
    (tmp_path / "seq" / "gt").mkdir()
    (tmp_path / "seq" / "gt" / "gt.txt").write_text("1,1,1,1,5,9,1,-1,-1,-1\n")
    tags = tmp_path / f"tags{suffix}"
    if suffix == ".json":
        tags.write_text(json.dumps({"000001.jpg": {"weather": "rainy", "time_of_day": "night"}}))
    else:
        tags.write_text("file,weather,time_of_day\n000001.jpg,rainy,night\n000002.jpg,clear,\n")
    ds = open_dataset(f"mot:{tmp_path / 'seq'}", tags=tags)
    assert ds.target(0)["conditions"] == {"sequence": "seq", "weather": "rainy", "time_of_day": "night"}
    assert ds.target(1)["conditions"].get("time_of_day") is None
    tags.write_text(json.dumps({"000009.jpg": {"weather": "rainy"}}) if suffix == ".json"
                    else "file,weather\n000009.jpg,rainy\n")
    with pytest.raises(InputError, match="000009.jpg: names no image"):
        open_dataset(f"mot:{tmp_path / 'seq'}", tags=tags)


def test_formats_are_detected_and_unknown_ones_refused(synthetic, tmp_path):
    assert detect_kind(synthetic) == "longtail"
    assert isinstance(open_dataset(f"synthetic:{synthetic}"), SyntheticDataset)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as e:
        open_dataset(str(tmp_path / "junk"))
    msg = _one_line(e)
    assert "junk" in msg and "expected one of" in msg and "kitti" in msg and "data.yaml" in msg
    with pytest.raises(InputError, match="unknown dataset kind 'pascal'"):
        open_dataset(f"pascal:{tmp_path / 'junk'}")
    with pytest.raises(InputError, match="no such file"):
        open_dataset(str(tmp_path / "missing"))


# --- samplers ------------------------------------------------------------------------------------

def test_mixed_sampler_hits_its_shares_with_exact_batches():
    s = MixedSampler({"real": 50, "synthetic": 30}, {"real": 0.7, "synthetic": 0.3}, steps=300, batch=8, seed=3)
    batches = list(s)
    assert all(len(b) == 8 for b in batches)
    per_step = [Counter(name for name, _ in b)["real"] for b in batches]
    assert set(per_step) <= {5, 6}  # floor or ceil of 8 x 0.7
    share = sum(per_step) / (300 * 8)
    assert abs(share - 0.7) < 0.01
    assert all(0 <= i < {"real": 50, "synthetic": 30}[n] for b in batches for n, i in b)


def test_mixed_sampler_is_reproducible_and_random_access():
    a = MixedSampler({"a": 10, "b": 7}, {"a": 1, "b": 1}, steps=40, batch=4, seed=5)
    b = MixedSampler({"a": 10, "b": 7}, {"a": 1, "b": 1}, steps=60, batch=4, seed=5)  # a longer run: same prefix
    assert [a.batch(k) for k in range(40)] == [b.batch(k) for k in reversed(range(40))][::-1]
    c = MixedSampler({"a": 10, "b": 7}, {"a": 1, "b": 1}, steps=40, batch=4, seed=6)
    assert list(a) != list(c)


def test_every_image_is_seen_once_per_epoch():
    s = MixedSampler({"only": 10}, {"only": 1.0}, steps=6, batch=5, seed=1)
    seen = Counter(i for b in s for _, i in b)
    assert seen == Counter({i: 3 for i in range(10)})


def test_two_stage_schedule_switches_at_the_given_step():
    s = two_stage({"synthetic": 20, "real": 5}, "synthetic", "real", pretrain_steps=7, steps=10, batch=3, seed=2)
    assert isinstance(s, StagedSampler) and s.steps == 10
    assert [s.stage(k) for k in range(10)] == [0] * 7 + [1] * 3
    assert all({n for n, _ in s.batch(k)} == {"synthetic"} for k in range(7))
    assert all({n for n, _ in s.batch(k)} == {"real"} for k in range(7, 10))


@pytest.mark.parametrize("shares, problem", [
    ({"real": 0.7, "synthetic": 0.0}, "synthetic: share must be > 0"),
    ({"real": -1.0}, "real: share must be > 0"),
    ({"real": 0.5, "sim": 0.5}, "sim: unknown source; expected one of: real, synthetic"),
    ({}, "expected at least one source"),
])
def test_bad_mix_shares_are_refused(shares, problem):
    with pytest.raises(InputError) as e:
        MixedSampler({"real": 5, "synthetic": 5}, shares, steps=3, batch=2, seed=0)
    assert problem in _one_line(e) and str(e.value).startswith("mix: ")


def test_parse_shares():
    assert parse_shares("real=0.7, synthetic=0.3") == {"real": 0.7, "synthetic": 0.3}
    with pytest.raises(InputError, match="expected NAME=SHARE"):
        parse_shares("real:0.7")
