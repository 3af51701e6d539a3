"""train/ evaluation: COCO metrics agree with pycocotools, ground truth scores 1.0, ignore regions
are neither misses nor false positives, and per-condition / per-difficulty cells add up."""

import sys

import pytest

# PyBullet's EGL plugin (Mesa; test_camera loads it while collecting) and triton, which torch._dynamo
# imports under torchvision, crash the process when triton is imported after it. These tests never
# compile a model: keep triton out unless something imported it already.
sys.modules.setdefault("triton", None)
pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from longtail.classes import get_class
from longtail.pipeline import render_dataset
from longtail.labelers.export_base import ExportFilter
from longtail.train.classmap import IGNORE_LABEL
from longtail.train.datasets import SyntheticDataset
from longtail.train.evaluate import coco_gt, coco_metrics, evaluate_detections
from longtail.train.entries import DetectionDataset, make_entry
from longtail.worlds.scenario import load_scenario

CAR, PERSON, TRUCK = (get_class(n).id for n in ("car", "person", "truck"))


def perfect(dataset, score=1.0):
    """Every counted ground-truth box as a detection."""
    dets = []
    for i in range(len(dataset)):
        t = dataset.target(i)
        for (x0, y0, x1, y1), label, crowd in zip(t["boxes"].tolist(), t["labels"].tolist(), t["iscrowd"].tolist()):
            if not crowd:
                dets.append({"image_id": t["image_id"], "category_id": label, "bbox": [x0, y0, x1 - x0, y1 - y0],
                             "score": score})
    return dets


def hand_dataset():
    """Four 100x80 images: conditions day / night / (none) / night, cars, people and ignore regions."""
    e = [
        make_entry("a.png", 100, 80, 1, [[10, 10, 50, 50], [60, 10, 70, 40]], [CAR, PERSON],
                   conditions={"time_of_day": "day", "weather": "clear"}),
        make_entry("b.png", 100, 80, 2, [[5, 5, 45, 35], [50, 50, 90, 75]], [CAR, CAR], iscrowd=[0, 1],
                   conditions={"time_of_day": "night", "weather": "clear"}),
        make_entry("c.png", 100, 80, 3, [[20, 20, 60, 60], [0, 0, 30, 30]], [TRUCK, IGNORE_LABEL], iscrowd=[0, 1]),
        make_entry("d.png", 100, 80, 4, [[30, 10, 40, 50]], [PERSON], conditions={"time_of_day": "night"}),
    ]
    return DetectionDataset("hand", e)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_eval") / "fc"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), root, frames=6, seed=4)
    return SyntheticDataset(root, ExportFilter(min_visible_px=6))


def test_ground_truth_as_detections_scores_one(synthetic):
    result = evaluate_detections(synthetic, perfect(synthetic))
    assert result["all"]["AP"] == pytest.approx(1.0) and result["all"]["AP50"] == pytest.approx(1.0)
    assert result["all"]["AR100"] == pytest.approx(1.0)
    assert result["all"]["per_class"] and all(v["AP"] == pytest.approx(1.0)
                                              for v in result["all"]["per_class"].values())
    assert result["all"]["objects"] == synthetic.objects and result["all"]["images"] == 6
    assert set(result["by"]) == {"time_of_day", "weather", "scenario", "event"}


def _pycocotools(gt: dict, dets: list[dict]) -> np.ndarray:
    """COCOeval run the textbook way (loadRes), for comparison."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_a_shifted_box_scores_what_pycocotools_gives():
    ds = DetectionDataset("one", [make_entry("a.png", 100, 80, 1, [[10, 10, 50, 50]], [CAR])])
    gt = coco_gt(ds)
    # shifted by 6 px: IoU = 34 * 40 / (2 * 1600 - 34 * 40) = 0.739, a match at IoU 0.50 .. 0.70 only
    dets = [{"image_id": 1, "category_id": CAR, "bbox": [16, 10, 40, 40], "score": 0.9}]
    m = coco_metrics(gt, dets)
    stats = _pycocotools(gt, dets)
    assert m["AP"] == pytest.approx(0.5) and m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(0.0)
    assert [m["AP"], m["AP50"], m["AP75"], m["AR100"]] == pytest.approx([stats[0], stats[1], stats[2], stats[8]])


def test_metrics_equal_pycocotools_on_a_mixed_case():
    ds = hand_dataset()
    gt = coco_gt(ds)
    rng = np.random.default_rng(0)
    dets = []
    for d in perfect(ds):
        x, y, w, h = d["bbox"]
        dx, dy = rng.uniform(-4, 4, 2)
        dets.append({**d, "bbox": [x + dx, y + dy, w, h], "score": float(rng.uniform(0.3, 1))})
    dets.append({"image_id": 1, "category_id": PERSON, "bbox": [80, 60, 10, 15], "score": 0.95})  # a false positive
    m = coco_metrics(gt, dets)
    stats = _pycocotools(gt, dets)
    got = [m[k] if m[k] is not None else -1 for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")]
    assert got == pytest.approx([stats[i] for i in (0, 1, 2, 3, 4, 5, 8)])
    assert 0 < m["AP"] < 1


def test_ignore_regions_are_neither_misses_nor_false_positives():
    ds = hand_dataset()
    dets = perfect(ds, score=0.9)
    assert coco_metrics(coco_gt(ds), dets)["AP"] == pytest.approx(1.0)  # no detection on the ignore regions
    on_ignored = [{"image_id": 2, "category_id": CAR, "bbox": [50, 50, 40, 25], "score": 1.0},
                  {"image_id": 3, "category_id": PERSON, "bbox": [0, 0, 30, 30], "score": 1.0},  # DontCare: any class
                  {"image_id": 3, "category_id": CAR, "bbox": [1, 1, 28, 28], "score": 1.0}]
    assert coco_metrics(coco_gt(ds), dets + on_ignored)["AP"] == pytest.approx(1.0)
    # the same detections elsewhere are false positives (ranked first, they cost precision)
    elsewhere = [{"image_id": 4, "category_id": PERSON, "bbox": [70, 40, 20, 30], "score": 1.0}]
    assert coco_metrics(coco_gt(ds), dets + elsewhere)["AP"] < 1.0


def test_condition_cells_add_up_to_the_totals():
    ds = hand_dataset()
    dets = perfect(ds)[:-1]  # image 4's person is missed
    result = evaluate_detections(ds, dets, breakdown=("time_of_day", "weather", "sky"))
    total = result["all"]
    assert (total["images"], total["objects"]) == (4, 5)
    assert set(result["by"]) == {"time_of_day", "weather"}  # no image carries "sky"
    for key, cells in result["by"].items():
        assert sum(c["images"] for c in cells.values()) == total["images"]
        assert sum(c["objects"] for c in cells.values()) == total["objects"]
    tod = result["by"]["time_of_day"]
    assert list(tod) == ["day", "night", "unknown"]
    assert tod["day"]["AP"] == pytest.approx(1.0) and tod["unknown"]["AP"] == pytest.approx(1.0)
    assert tod["night"]["per_class"]["person"]["AP"] == pytest.approx(0.0)
    assert tod["night"]["per_class"]["car"]["AP"] == pytest.approx(1.0)
    assert (tod["night"]["images"], tod["night"]["objects"]) == (2, 2)


def test_kitti_difficulty_levels_count_the_easier_objects_too():
    boxes = [[0, 0, 20, 50], [30, 0, 50, 30], [60, 0, 80, 30], [85, 0, 95, 10]]
    ds = DetectionDataset("kitti", [make_entry("a.png", 100, 80, 1, boxes, [CAR] * 4,
                                               difficulty=["easy", "moderate", "hard", None])])
    dets = perfect(ds)[:1]  # only the easy car is found
    levels = evaluate_detections(ds, dets)["kitti_difficulty"]
    assert [levels[k]["objects"] for k in ("easy", "moderate", "hard")] == [1, 2, 3]
    assert levels["easy"]["AP"] == pytest.approx(1.0)
    assert levels["moderate"]["AR100"] == pytest.approx(0.5)
    assert levels["hard"]["AR100"] == pytest.approx(1 / 3)


def test_no_detections_scores_zero_and_no_objects_scores_none():
    ds = hand_dataset()
    assert coco_metrics(coco_gt(ds), [])["AP"] == 0.0
    empty = DetectionDataset("empty", [make_entry("a.png", 10, 10, 1, [], [])])
    m = coco_metrics(coco_gt(empty), [{"image_id": 1, "category_id": CAR, "bbox": [0, 0, 5, 5], "score": 1.0}])
    assert m["AP"] is None and m["objects"] == 0 and m["per_class"] == {}
