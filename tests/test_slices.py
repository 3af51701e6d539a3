"""Failure slices (``longtail evaluate --slices``): AP50 and recall per image and object slice on a
hand-built test set whose numbers are known, the weighted AP50 the bootstrap uses equals
pycocotools' on duplicated images, intervals are seeded and collapse where every resample agrees,
min_support decides what is ranked, real formats give their objects' measures, and the command
prints the table and writes the slices to its JSON."""

import json
import sys

import pytest

sys.modules.setdefault("triton", None)  # torch's triton and PyBullet's EGL plugin crash one process
pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from longtail.classes import get_class  # noqa: E402
from longtail.errors import ParameterError  # noqa: E402
from longtail.train.datasets import open_dataset  # noqa: E402
from longtail.train.entries import DetectionDataset, make_entry  # noqa: E402
from longtail.train.evaluate import CocoScorer, coco_gt, coco_metrics  # noqa: E402
from longtail.train.slices import (SliceConfig, add_foot_distances, ap50, band_index, band_name, band_ranges,  # noqa: E402
                                   compute_slices, foot_distances, match, slice_lines)
from longtail.worlds.plates.ground import ground_depth  # noqa: E402
from longtail.worlds.scene import Camera  # noqa: E402

CAR, PERSON = get_class("car").id, get_class("person").id
NEAR = [10, 40, 50, 80]  # 40 px high, 5 m, not occluded, not truncated
FAR = [120, 50, 130, 60]  # 10 px high, 60 m, 60 % occluded, 20 % truncated
WALKER = [60, 20, 70, 60]  # 40 px high, no measures known


def scene():
    """Six 200x100 images, each a near and a far car; clear (1-3) and foggy (4-6); image 2 also a
    person. Detected: every car in clear images, only the near ones in fog, the person at score
    0.3, and a false car at 0.95 in image 6."""
    entries, dets = [], []
    for i in range(1, 7):
        boxes, labels = [NEAR, FAR], [CAR, CAR]
        attrs = {"distance_m": [5.0, 60.0], "occlusion": [0.0, 0.6], "truncation": [0.0, 0.2]}
        if i == 2:
            boxes, labels = boxes + [WALKER], labels + [PERSON]
            attrs = {k: v + [None] for k, v in attrs.items()}
        entries.append(make_entry(f"{i}.png", 200, 100, i, boxes, labels, object_attributes=attrs,
                                  conditions={"weather": "clear" if i <= 3 else "foggy", "time_of_day": "day"}))
        found = [NEAR, FAR] if i <= 3 else [NEAR]
        dets += [{"image_id": i, "category_id": CAR, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": 0.9}
                 for b in found]
    dets.append({"image_id": 2, "category_id": PERSON, "bbox": [60, 20, 10, 40], "score": 0.3})
    dets.append({"image_id": 6, "category_id": CAR, "bbox": [150, 10, 40, 30], "score": 0.95})
    return DetectionDataset("hand", entries), dets


def by(result):
    return {(s["key"], s["value"]): s for s in result["slices"]}


def test_slices_of_a_hand_built_set_have_the_numbers_worked_out_by_hand():
    ds, dets = scene()
    res = compute_slices(ds, dets, SliceConfig(min_support=2, bootstrap=0))
    s = by(res)
    # cars of the whole set: the false car first, then 9 hits of 12 (precision 0.9 up to recall 0.75:
    # 76 of COCO's 101 recall points); the person: 1 of 1
    car_ap = 0.9 * 76 / 101
    assert res["all"]["ap50"] == pytest.approx((car_ap + 1.0) / 2)
    assert res["all"]["ap50"] == pytest.approx(coco_metrics(coco_gt(ds), dets)["AP50"])
    assert res["all"]["recall"] == pytest.approx(9 / 13)  # the person's 0.3 is below min_score 0.5
    assert (res["all"]["support_images"], res["all"]["support_objects"]) == (6, 13)
    # image slices: the images alone; time_of_day has one value everywhere, so it is no slice
    clear, fog = s[("weather", "clear")], s[("weather", "foggy")]
    assert (clear["ap50"], clear["recall"]) == (pytest.approx(1.0), pytest.approx(6 / 7))
    assert fog["ap50"] == pytest.approx(0.75 * 51 / 101)  # the false car, then 3 hits of 6
    assert fog["recall"] == pytest.approx(0.5) and (fog["support_images"], fog["support_objects"]) == (3, 6)
    assert not any(k == "time_of_day" for k, _ in s)
    # object slices: other objects are ignored, so hits on far cars are no false positives of the
    # near slice, yet the false car (no distance) counts against both
    near, far = s[("distance_band", "<10 m")], s[("distance_band", "50-80 m")]
    assert near["ap50"] == pytest.approx(6 / 7) and near["recall"] == pytest.approx(1.0)
    assert far["ap50"] == pytest.approx(0.75 * 51 / 101) and far["recall"] == pytest.approx(0.5)
    assert (far["support_images"], far["support_objects"], far["range"]) == (6, 6, [50.0, 80.0])
    assert s[("height_band", "<16 px")]["recall"] == pytest.approx(0.5)
    tall = s[("height_band", "32-64 px")]  # near cars and the person
    assert tall["support_objects"] == 7 and tall["ap50"] == pytest.approx((6 / 7 + 1.0) / 2)
    assert s[("occlusion_band", ">=0.5")]["recall"] == pytest.approx(0.5)
    assert s[("occlusion_band", "<0.1")]["support_objects"] == 6  # the person has no occlusion: in no band
    assert s[("truncated", "yes")]["range"] == [0.15, None] and s[("truncated", "no")]["recall"] == 1.0
    assert s[("class", "car")]["ap50"] == pytest.approx(car_ap) and s[("class", "car")]["recall"] == 0.75
    assert s[("class", "person")]["ap50"] == pytest.approx(1.0) and s[("class", "person")]["recall"] == 0.0
    assert {k for k, _ in s} == {"weather", "distance_band", "height_band", "occlusion_band", "truncated", "class"}
    assert set(res["settings"]["bins"]) == {"distance_band", "height_band", "occlusion_band", "truncated"}


def test_ranking_by_gap_with_min_support():
    ds, dets = scene()
    s2 = compute_slices(ds, dets, SliceConfig(min_support=2, bootstrap=0))
    ranked = [(r["key"], r["value"]) for r in s2["slices"] if r["rank"] is not None]
    # fog's AP50 falls 46 points below the set's; four object slices lose 19 recall points (ties by key)
    assert ranked[:5] == [("weather", "foggy"), ("distance_band", "50-80 m"), ("height_band", "<16 px"),
                          ("occlusion_band", ">=0.5"), ("truncated", "yes")]
    assert [r["rank"] for r in s2["slices"][:len(ranked)]] == list(range(1, len(ranked) + 1))
    fog = by(s2)[("weather", "foggy")]
    assert fog["metric"] == "ap50" and fog["gap"] == pytest.approx(0.75 * 51 / 101 - s2["all"]["ap50"])
    person = by(s2)[("class", "person")]  # one object: listed, not ranked
    assert person["rank"] is None and "min_support" in person["note"]
    s1 = compute_slices(ds, dets, SliceConfig(min_support=1, bootstrap=0))
    assert (s1["slices"][0]["key"], s1["slices"][0]["value"], s1["slices"][0]["rank"]) == ("class", "person", 1)
    s4 = compute_slices(ds, dets, SliceConfig(min_support=4, bootstrap=0))  # three images a weather
    assert by(s4)[("weather", "foggy")]["rank"] is None and by(s4)[("distance_band", "50-80 m")]["rank"] == 1
    lines = slice_lines(s2, top=3)
    assert "weather=foggy" in lines[3] and "-46.0 ap50" in lines[3] and "distance_band=50-80 m" in lines[4]
    assert len(lines) == 7 and "not ranked" in lines[-1]


def test_the_unknown_cell_is_listed_not_ranked_and_numeric_tags_make_no_slices():
    ds, dets = scene()
    del ds.entries[5].conditions["weather"]
    for e in ds.entries:
        e.conditions["visibility_m"] = f"{100.0 * e.image_id:g}"  # as a sidecar gives it: a string per image
    res = compute_slices(ds, dets, SliceConfig(min_support=1, bootstrap=0))
    unknown = by(res)[("weather", "unknown")]
    assert unknown["support_images"] == 1 and unknown["rank"] is None and "without" in unknown["note"]
    assert {k for k, _ in by(res)} == {"weather", "distance_band", "height_band", "occlusion_band", "truncated",
                                       "class"}


def test_weighted_ap50_is_pycocotools_on_duplicated_images():
    rng = np.random.default_rng(5)
    entries, dets = [], []
    for i in range(1, 6):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 60, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 30, (n, 2))], axis=1).tolist()
        labels = rng.choice([CAR, PERSON], n).tolist()
        entries.append(make_entry(f"{i}.png", 100, 100, i, boxes, labels))
        for b, c in zip(boxes, labels):
            if rng.uniform() < 0.7:
                dx, dy = rng.uniform(-6, 6, 2)
                dets.append({"image_id": i, "category_id": c, "bbox": [b[0] + dx, b[1] + dy, b[2] - b[0], b[3] - b[1]],
                             "score": float(rng.uniform(0.1, 1))})
        dets.append({"image_id": i, "category_id": CAR, "bbox": [70, 70, 20, 20], "score": float(rng.uniform(0, 1))})
    ds = DetectionDataset("random", entries)
    gt = coco_gt(ds)
    m = match(CocoScorer(gt, dets), gt, [1, 2, 3, 4, 5], [CAR, PERSON], 0.5)
    both = np.ones(2, bool)
    assert ap50(m, np.ones(5), both) == pytest.approx(coco_metrics(gt, dets)["AP50"])
    # image 1 left out, image 3 drawn three times: what pycocotools gives for that resample as a set
    weights = np.array([0, 1, 3, 1, 1], float)
    copies, copy_dets = [], []
    for i, w in enumerate(weights.astype(int)):
        for c in range(w):
            new = 10 * (i + 1) + c
            e = entries[i]
            copies.append(make_entry(e.image, 100, 100, new, e.boxes.tolist(), e.labels.tolist()))
            copy_dets += [{**d, "image_id": new} for d in dets if d["image_id"] == i + 1]
    resampled = DetectionDataset("resampled", copies)
    assert ap50(m, weights, both) == pytest.approx(coco_metrics(coco_gt(resampled), copy_dets)["AP50"])
    assert ap50(m, weights, both) != pytest.approx(ap50(m, np.ones(5), both))


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    ds, dets = scene()
    a = compute_slices(ds, dets, SliceConfig(min_support=2, bootstrap=100, seed=3))
    b = compute_slices(ds, dets, SliceConfig(min_support=2, bootstrap=100, seed=3))
    c = compute_slices(ds, dets, SliceConfig(min_support=2, bootstrap=100, seed=4))
    assert a == b and a["all"]["recall_ci"] != c["all"]["recall_ci"]
    lo, hi = a["all"]["recall_ci"]
    assert lo < a["all"]["recall"] < hi
    lo, hi = a["all"]["ap50_ci"]
    assert lo < a["all"]["ap50"] < hi
    # every foggy image finds one car of two: every resample with a foggy image says 0.5
    assert by(a)[("weather", "foggy")]["recall_ci"] == [0.5, 0.5]
    assert by(a)[("distance_band", "<10 m")]["recall_ci"] == [1.0, 1.0]
    for r in a["slices"]:
        for key in ("ap50", "recall"):
            if r[f"{key}_ci"] is not None:
                assert r[f"{key}_ci"][0] <= r[key] + 1e-9 and r[key] <= r[f"{key}_ci"][1] + 1e-9, (r["key"], r["value"])
    assert compute_slices(ds, dets, SliceConfig(bootstrap=0))["all"]["ap50_ci"] is None


def test_bands_and_config():
    assert [band_name(lo, hi, " m") for lo, hi in band_ranges((10, 20))] == ["<10 m", "10-20 m", ">=20 m"]
    assert band_index(np.array([0.0, 10.0, 19.9, 20.0, np.nan]), (10, 20)).tolist() == [0, 1, 1, 2, -1]
    for bad in ({"bootstrap": -1}, {"min_support": 1.5}, {"min_score": 2.0}, {"distance_edges_m": (20, 10)},
                {"confidence": 1.0}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            SliceConfig(**bad)


def test_foot_distance_follows_the_plate_ground():
    cam = Camera(width=64, height=48, fx=50.0, fy=50.0, cx=32.0, cy=24.0, position=(0.0, 0.0, 3.0), pitch=0.3)
    depth = ground_depth(cam)
    # a box whose foot is the centre of pixel (u, v): the ground's z-depth there, along its ray
    u, v = 40, 35
    box = np.array([[u + 0.5 - 4, 10, u + 0.5 + 4, v + 0.5]])
    ray = np.array([(u + 0.5 - cam.cx) / cam.fx, (v + 0.5 - cam.cy) / cam.fy, 1.0])
    assert foot_distances(cam, box)[0] == pytest.approx(depth[v, u] * np.linalg.norm(ray), rel=1e-5)
    sky = np.array([[10, 0, 20, 1]])  # its foot above the horizon
    cut = np.array([[10, 30, 20, 48]])  # touching the bottom: its foot may be below the image
    assert np.isnan(foot_distances(cam, np.concatenate([sky, cut]))).all()
    ds = DetectionDataset("plate", [make_entry("a.png", 128, 96, 1, [box[0] * 2, [0, 0, 5, 5]], [PERSON, PERSON],
                                               object_attributes={"distance_m": [None, 7.0]})])
    assert add_foot_distances(ds, cam) == 1  # the known distance is kept; the camera scales to the image
    got = ds.entries[0].object_attributes["distance_m"]
    assert got[0] == pytest.approx(depth[v, u] * np.linalg.norm(ray), rel=1e-5) and got[1] == 7.0


def test_rendered_frames_slice_by_their_recorded_measures(tmp_path):
    from longtail.labelers.export import load_records
    from longtail.pipeline import render_dataset
    from longtail.worlds.scenario import load_scenario

    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), tmp_path / "d", frames=2, seed=4)
    ds = open_dataset(f"longtail:{tmp_path / 'd'}")
    recorded = sorted(o["distance_m"] for r in load_records(tmp_path / "d") for o in r["objects"]
                      if get_class(o["class"]).target and o["area"])
    kept = sorted(float(d) for e in ds.entries for d in e.object_attributes["distance_m"])
    assert kept and kept == pytest.approx(recorded, rel=1e-6)
    perfect = [{"image_id": e.image_id, "category_id": int(c), "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 1.0}
               for e in ds.entries for (x0, y0, x1, y1), c, crowd in zip(e.boxes.tolist(), e.labels, e.iscrowd)
               if not crowd]
    res = compute_slices(ds, perfect, SliceConfig(min_support=1, bootstrap=10))
    keys = {r["key"] for r in res["slices"]}
    assert {"distance_band", "height_band", "occlusion_band", "truncated"} <= keys
    assert all(r["recall"] == 1.0 and r["ap50"] == pytest.approx(1.0) for r in res["slices"] if r["support_objects"])


def test_real_formats_give_their_objects_measures(tmp_path):
    mot = tmp_path / "SEQ"
    (mot / "img1").mkdir(parents=True)
    (mot / "gt").mkdir()
    Image.new("RGB", (40, 30)).save(mot / "img1" / "000001.jpg")
    (mot / "gt" / "gt.txt").write_text("1,1,2,2,8,16,1,1,0.25\n1,2,20,2,8,16,1,1,1\n")
    assert open_dataset(f"mot:{mot}").entries[0].object_attributes["occlusion"].tolist() == [0.75, 0.0]
    kitti = tmp_path / "kitti"
    (kitti / "image_2").mkdir(parents=True)
    (kitti / "label_2").mkdir()
    Image.new("RGB", (100, 50)).save(kitti / "image_2" / "000000.png")
    (kitti / "label_2" / "000000.txt").write_text(
        "Car 0.30 0 0 10 10 40 40 1.5 1.6 4.0 2.0 1.65 20.0 0\n"
        "DontCare -1 -1 -10 50 10 60 20 -1 -1 -1 -1000 -1000 -1000 -10\n")
    e = open_dataset(f"kitti:{kitti}").entries[0]
    assert e.object_attributes["truncation"][0] == pytest.approx(0.3)
    assert e.object_attributes["distance_m"][0] == pytest.approx(np.sqrt(2.0 ** 2 + 0.9 ** 2 + 20.0 ** 2))
    assert np.isnan(e.object_attributes["distance_m"][1])


# --- the command ---------------------------------------------------------------------------------

SMALL = ["--model", "ssdlite320_mobilenet_v3_large", "--img-size", "96", "96", "--batch", "2", "--quiet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real-style MOT16 sequence of 6 frames (two people a frame, one half hidden), tagged clear
    and foggy, and a detector trained one step on it."""
    from longtail.cli import main

    root = tmp_path_factory.mktemp("slices")
    seq = root / "TINY"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    base = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for f in range(1, 7):
        Image.fromarray(base).save(seq / "img1" / f"{f:06d}.jpg", quality=95)
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},1,10,20,8,16,1,1,1.0\n{f},2,50,10,20,40,1,1,0.4\n"
                                               for f in range(1, 7)))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=TINY\nimDir=img1\nframeRate=10\nseqLength=6\n"
                                     "imWidth=96\nimHeight=64\nimExt=.jpg\n")
    tags = root / "tags.json"
    tags.write_text(json.dumps({f"{f:06d}.jpg": {"weather": "clear" if f <= 3 else "foggy"} for f in range(1, 7)}))
    run = root / "run"
    assert main(["train", "--data", f"mot:{seq}", "--steps", "1", "--out", str(run), *SMALL]) == 0
    return seq, tags, run / "checkpoint.pt"


def test_evaluate_slices_prints_the_weakest_and_writes_them(tiny, tmp_path, capsys):
    from longtail.cli import main

    seq, tags, ckpt = tiny
    out = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--data", f"mot:{seq}", "--tags", str(tags), "--slices", "--min-support",
                 "2", "--bootstrap", "20", "--min-score", "0.05", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "slices: AP50 and recall at IoU 0.5" in printed and "20 bootstrap resamples" in printed
    res = json.loads(out.read_text())
    sl = res["slices"]
    assert res["all"]["images"] == 6 and sl["all"]["support_objects"] == 12
    assert sl["settings"]["bootstrap"] == 20 and sl["settings"]["min_score"] == 0.05
    assert sl["settings"]["min_support"] == {"image": 2, "object": 2}
    got = {(s["key"], s["value"]): s for s in sl["slices"]}
    assert {("weather", "clear"), ("weather", "foggy"), ("occlusion_band", "<0.1"), ("occlusion_band", ">=0.5"),
            ("height_band", "16-32 px"), ("height_band", "32-64 px")} == set(got)  # one class: no class slice
    assert got[("weather", "foggy")]["kind"] == "image" and got[("weather", "foggy")]["support_images"] == 3
    assert got[("occlusion_band", ">=0.5")]["support_objects"] == 6 and got[("occlusion_band", ">=0.5")]["range"] \
        == [0.5, None]
    ranked = [s for s in sl["slices"] if s["rank"] is not None]
    assert ranked and all(a["gap"] <= b["gap"] for a, b in zip(ranked, ranked[1:]))
    first = ranked[0]
    assert f"{first['key']}={first['value']}" in printed.split("rank")[1].splitlines()[1]


def test_slice_options_need_slices(tiny, capsys):
    from longtail.cli import main

    seq, _, ckpt = tiny
    capsys.readouterr()
    for extra, flag in ((["--min-support", "3"], "--min-support"), (["--slices", "--bootstrap", "-1"], "--bootstrap")):
        assert main(["evaluate", str(ckpt), "--data", f"mot:{seq}", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and len(err.splitlines()) == 1, err
