"""Exports read back by readers written here from each format's spec, and checked against the
frame records: COCO (COCOeval of the ground truth against itself), KITTI, YOLO, Cityscapes;
the filter's ignore regions; and the output-directory contract."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import longtail.labelers.export as export_mod
from longtail.atomic import read_png
from longtail.errors import DatasetError, InputError, ParameterError
from longtail.classes import cityscapes_lut, get_class, target_classes
from longtail.labelers.cityscapes import HAS_INSTANCES as CS_HAS_INSTANCES
from longtail.labelers.export import EXPORTERS, ExportFilter, export_dataset, load_records
from longtail.labelers.export_base import Copy
from longtail.labelers.kitti import KITTI_TYPES
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario

SCENARIOS = ["fallen_cargo", "night_jaywalker"]  # the second has more occlusion
# A filter that turns a good share of these small frames' objects into ignore regions.
HARD = {"min_visible_px": 4, "max_occlusion": 0.3}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_src")
    out = {}
    for name in SCENARIOS:
        out[name] = root / name
        render_dataset(load_scenario(name).with_resolution(160, 96), out[name], frames=3, seed=4)
    return out


@pytest.fixture(params=SCENARIOS)
def dataset(request, datasets):
    return datasets[request.param]


def expected(rec, min_visible_px=1, max_occlusion=1.0, classes=None):
    """(exported, ignore regions) of a record, from the filter's definition."""
    kept, ignored = [], []
    for o in rec["objects"]:
        if not get_class(o["class"]).target or o["area"] == 0 or (classes and o["class"] not in classes):
            continue
        (ignored if o["area"] < min_visible_px or o["occlusion"] > max_occlusion else kept).append(o)
    return kept, ignored


# --- COCO ----------------------------------------------------------------------------------------

def _self_eval(gt: COCO, iou_type: str) -> tuple[float, int]:
    """AP of the ground truth's own objects as detections (score 0.9), plus a detection on every
    ignore region (score 1.0, ranked first) that no real object could match instead; and the
    number of those ignore-region detections."""
    dets = []
    for ann in gt.dataset["annotations"]:
        geometry = {"bbox": ann["bbox"]} if iou_type == "bbox" else {"segmentation": ann["segmentation"]}
        if ann["iscrowd"]:
            others = [a for a in gt.imgToAnns[ann["image_id"]]
                      if not a["iscrowd"] and a["category_id"] == ann["category_id"]]
            if others and mask_utils.iou([ann["bbox"]], [a["bbox"] for a in others], [0] * len(others)).max() >= 0.5:
                continue
        dets.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                     "score": 1.0 if ann["iscrowd"] else 0.9, **geometry})
    ev = COCOeval(gt, gt.loadRes(dets), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats[0], sum(d["score"] == 1.0 for d in dets)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_ground_truth_scores_ap_one_and_ignores_detections_on_ignore_regions(dataset, tmp_path, iou_type):
    summary = export_dataset(dataset, tmp_path / "coco", "coco", ExportFilter(**HARD))
    gt = COCO(str(tmp_path / "coco" / "labels.json"))
    crowd = [a for a in gt.dataset["annotations"] if a["iscrowd"]]
    assert summary["ignored"] == len(crowd) > 0
    assert summary["objects"] == len(gt.dataset["annotations"]) - len(crowd)
    # a detection on an ignore region that counted as a false positive, ranked first, would cost AP
    ap, on_ignore_regions = _self_eval(gt, iou_type)
    assert ap == pytest.approx(1.0) and on_ignore_regions > 0
    for im in gt.dataset["images"]:
        assert (tmp_path / "coco" / "data" / im["file_name"]).is_file()
        assert "time_of_day" in im["attributes"]


def test_coco_without_filter_has_every_visible_target_and_no_ignore_region(dataset, tmp_path):
    export_dataset(dataset, tmp_path / "coco", "coco")
    coco = json.loads((tmp_path / "coco" / "labels.json").read_text())
    records = load_records(dataset)
    assert not any(a["iscrowd"] for a in coco["annotations"])
    assert len(coco["annotations"]) == sum(len(expected(r)[0]) for r in records)
    assert [c["id"] for c in coco["categories"]] == [c.id for c in target_classes()]


# --- KITTI ---------------------------------------------------------------------------------------

def read_kitti_label(text: str) -> list[dict]:
    """KITTI label_2 lines: type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y."""
    out = []
    for line in text.splitlines():
        f = line.split()
        assert len(f) == 15, line
        v = [float(x) for x in f[1:]]
        out.append({"type": f[0], "truncated": v[0], "occluded": int(f[2]), "alpha": v[2], "box": v[3:7],
                    "hwl": v[7:10], "xyz": v[10:13], "rotation_y": v[13]})
    return out


def read_kitti_calib(text: str) -> dict[str, np.ndarray]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            name, values = line.split(":", 1)
            out[name] = np.array([float(x) for x in values.split()])
    return out


def kitti_corners(hwl, xyz, ry) -> np.ndarray:
    """(8, 3) corners of a KITTI box in camera coordinates (location = bottom-face centre)."""
    h, w, l = hwl
    x = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * l / 2
    y = np.array([0, 0, 0, 0, -1, -1, -1, -1]) * h
    z = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    R = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    return (R @ np.stack([x, y, z])).T + np.asarray(xyz)


def world_box_corners(box: dict, camera_from_world: np.ndarray) -> np.ndarray:
    """(8, 3) camera-frame corners of a record's world box (centre, size l w h, yaw about z)."""
    l, w, h = box["size_lwh"]
    c, s = math.cos(box["yaw"]), math.sin(box["yaw"])
    local = np.array([[sx * l / 2, sy * w / 2, sz * h / 2] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    world = local @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + np.asarray(box["center"])
    return world @ camera_from_world[:3, :3].T + camera_from_world[:3, 3]


def kitti_expected_type(obj) -> str:
    return "Van" if obj["asset"] == "van" else {"car": "Car", "person": "Pedestrian", "debris": "Debris",
                                                "animal": "Animal", "truck": "Truck"}[obj["class"]]


def test_kitti_labels_and_calib_match_the_records(dataset, tmp_path):
    out = tmp_path / "kitti"
    export_dataset(dataset, out, "kitti", ExportFilter(**HARD))
    projected = 0
    for rec in load_records(dataset):
        stem = f"{rec['frame']:06d}"
        image = out / "training" / "image_2" / f"{stem}.png"
        assert image.read_bytes() == (dataset / rec["files"]["rgb"]).read_bytes()
        calib = read_kitti_calib((out / "training" / "calib" / f"{stem}.txt").read_text())
        assert set(calib) == {"P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"}
        P2 = calib["P2"].reshape(3, 4)
        R = np.array(rec["camera"]["camera_from_level"])
        np.testing.assert_allclose(P2, np.array(rec["camera"]["K"]) @ np.hstack([R, np.zeros((3, 1))]), rtol=1e-11)
        np.testing.assert_array_equal(calib["R0_rect"].reshape(3, 3), np.eye(3))
        assert calib["Tr_velo_to_cam"].size == calib["Tr_imu_to_velo"].size == 12

        lines = read_kitti_label((out / "training" / "label_2" / f"{stem}.txt").read_text())
        kept, ignored = expected(rec, **HARD)
        objects = [ln for ln in lines if ln["type"] != "DontCare"]
        dont_care = [ln for ln in lines if ln["type"] == "DontCare"]
        assert len(objects) == len(kept) and len(dont_care) == len(ignored)
        for ln, obj in zip(objects, kept):
            b3 = obj["box3d_camera"]
            assert ln["type"] == kitti_expected_type(obj)
            assert ln["box"] == obj["bbox"]  # pixel edges, whole pixels
            assert ln["truncated"] == pytest.approx(obj["truncation"], abs=0.005)
            assert ln["occluded"] == obj["kitti_occluded"]
            np.testing.assert_allclose(ln["hwl"], b3["size_hwl"], atol=6e-5)
            np.testing.assert_allclose(ln["xyz"], b3["bottom_center"], atol=6e-5)
            assert ln["rotation_y"] == pytest.approx(b3["rotation_y"], abs=6e-5)
            assert ln["alpha"] == pytest.approx(b3["alpha"], abs=6e-5)
            # KITTI semantics end to end: the label's box is the object's 3D box in the level camera
            # frame, which P2 projects onto the real (pitched) image
            true = world_box_corners(obj["box3d_world"], np.array(rec["camera"]["level_from_world"]))
            label = kitti_corners(ln["hwl"], ln["xyz"], ln["rotation_y"])
            tol = 1e-3
            dist = np.linalg.norm(label[:, None] - true[None], axis=2)
            assert dist.min(axis=0).max() <= tol and dist.min(axis=1).max() <= tol
            if (true[:, 2] > 0.5).all():
                uvw = np.hstack([true, np.ones((8, 1))]) @ P2.T
                uv = uvw[:, :2] / uvw[:, 2:]
                W, H = rec["camera"]["width"], rec["camera"]["height"]
                if (uv >= 0).all() and (uv[:, 0] <= W).all() and (uv[:, 1] <= H).all():
                    extent = [uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()]
                    np.testing.assert_allclose(extent, obj["bbox_amodal"], atol=1e-6)
                    projected += 1
        for ln, obj in zip(dont_care, ignored):
            assert ln["box"] == obj["bbox"]
            assert ln["hwl"] == [-1, -1, -1] and ln["xyz"] == [-1000, -1000, -1000] and ln["rotation_y"] == -10
    assert projected > 0


def test_kitti_types_cover_every_target_class_without_spaces():
    assert set(KITTI_TYPES) == {c.name for c in target_classes()}
    assert all(" " not in t and t != "DontCare" for t in KITTI_TYPES.values())


# --- YOLO ----------------------------------------------------------------------------------------

def test_yolo_labels_are_normalised_boxes_of_the_records(dataset, tmp_path):
    out = tmp_path / "yolo"
    export_dataset(dataset, out, "yolo", ExportFilter(**HARD))
    data = yaml.safe_load((out / "data.yaml").read_text())
    images = Path(data["train"])
    assert images.is_absolute() and images == (out / "images").resolve() and data["val"] == data["train"]
    names = {i: c.name for i, c in enumerate(target_classes())}
    assert data["names"] == names and data["nc"] == len(names)
    index = {n: i for i, n in names.items()}
    for rec in load_records(dataset):
        stem = f"{rec['frame']:06d}"
        assert (images / f"{stem}.png").read_bytes() == (dataset / rec["files"]["rgb"]).read_bytes()
        W, H = rec["camera"]["width"], rec["camera"]["height"]
        rows = [ln.split() for ln in (out / "labels" / f"{stem}.txt").read_text().splitlines()]
        kept, _ = expected(rec, **HARD)  # YOLO has no ignore regions: they are left out
        assert len(rows) == len(kept)
        for row, obj in zip(rows, kept):
            assert len(row) == 5 and all(len(v.split(".")[1]) == 6 for v in row[1:])
            cls, (cx, cy, w, h) = int(row[0]), map(float, row[1:])
            assert cls == index[obj["class"]]
            assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h))
            box = [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H]
            np.testing.assert_allclose(box, obj["bbox"], atol=1e-6 * max(W, H))


# --- Cityscapes ----------------------------------------------------------------------------------

def test_cityscapes_instance_ids_decode_to_label_ids_and_instance_masks(dataset, tmp_path):
    out = tmp_path / "cs"
    export_dataset(dataset, out, "cityscapes", ExportFilter(**HARD))
    lut = cityscapes_lut()
    for rec in load_records(dataset):
        city = rec["attributes"]["scenario"].replace("_", "-")
        stem = f"{city}_000000_{rec['frame']:06d}"
        gt = out / "gtFine" / "train" / city
        label_ids = read_png(gt / f"{stem}_gtFine_labelIds.png")
        ids = read_png(gt / f"{stem}_gtFine_instanceIds.png").astype(np.int64)
        name = f"{stem}_gtFine_instanceIds.png"
        assert len(name.split("_")) == 5  # cityscapesscripts: city, sequence, frame, type, type2.ext
        assert (out / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png").read_bytes() == \
            (dataset / rec["files"]["rgb"]).read_bytes()
        np.testing.assert_array_equal(label_ids, lut[read_png(dataset / rec["files"]["semantic"])])
        has_instance = ids >= 1000
        np.testing.assert_array_equal(np.where(has_instance, ids // 1000, ids), label_ids)
        instance = read_png(dataset / rec["files"]["instance"])
        kept, ignored = expected(rec, **HARD)
        with_ids = [o for o in kept if get_class(o["class"]).cityscapes_id in CS_HAS_INSTANCES]
        assert len(np.unique(ids[has_instance])) == len(with_ids)
        per_class: dict[int, int] = {}
        for obj in with_ids:
            cls = get_class(obj["class"]).id
            k = per_class.setdefault(cls, 0)
            per_class[cls] += 1
            np.testing.assert_array_equal(ids == cls * 1000 + k, instance == obj["id"])
        for obj in ignored + [o for o in kept if o not in with_ids]:  # class pixels without an instance
            assert (ids[instance == obj["id"]] == get_class(obj["class"]).cityscapes_id).all()


def test_cityscapes_export_is_read_by_cityscapesscripts(datasets, tmp_path):
    """Cityscapes' own label table knows every id written (instance ids only for its classes with
    instances), and its own pixel-level evaluation (prediction = the ground truth) runs through the
    export and scores 1.0: it exits on an unknown id, as the long-tail ids 34-37 were."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as cs_eval
    from cityscapesscripts.helpers.labels import id2label

    files = []
    long_tail_seen = False
    for name, src in datasets.items():
        export_dataset(src, tmp_path / name, "cityscapes")
        for rec in load_records(src):
            long_tail_seen |= any(o["class"] in ("debris", "animal", "traffic cone", "barrier") and o["area"] > 0
                                  for o in rec["objects"])
        files += sorted((tmp_path / name).rglob("*_gtFine_labelIds.png"))
    assert files and long_tail_seen
    for f in files:
        label_ids = read_png(f)
        inst = read_png(Path(str(f).replace("labelIds", "instanceIds"))).astype(np.int64)
        assert all(int(v) in id2label for v in np.unique(label_ids))
        for v in np.unique(inst):
            label = id2label[int(v) // 1000 if v >= 1000 else int(v)]
            assert v < 1000 or label.hasInstances, (v, label.name)
    args = cs_eval.args
    # its instance-level score calls numpy.in1d, which NumPy 2.4 removed: the pixel level only
    args.quiet, args.JSONOutput, args.evalInstLevelScore, args.evalPixelAccuracy = True, False, False, False
    result = cs_eval.evaluateImgLists([str(f) for f in files], [str(f) for f in files], args)
    assert result["averageScoreClasses"] == pytest.approx(1.0)


# --- the filter ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flt", [{"max_occlusion": 0.2}, {"min_visible_px": 10}])
def test_filter_turns_objects_into_dont_care_and_crowd_regions(datasets, tmp_path, flt):
    src = datasets["night_jaywalker"] if "max_occlusion" in flt else datasets["fallen_cargo"]
    export_dataset(src, tmp_path / "kitti", "kitti", ExportFilter(**flt))
    export_dataset(src, tmp_path / "coco", "coco", ExportFilter(**flt))
    coco = json.loads((tmp_path / "coco" / "labels.json").read_text())
    n_ignored = 0
    for rec in load_records(src):
        kept, ignored = expected(rec, **flt)
        n_ignored += len(ignored)
        lines = read_kitti_label((tmp_path / "kitti" / "training" / "label_2" / f"{rec['frame']:06d}.txt").read_text())
        assert sorted(ln["box"] for ln in lines if ln["type"] == "DontCare") == sorted(o["bbox"] for o in ignored)
        anns = [a for a in coco["annotations"] if a["image_id"] == rec["frame"] + 1]
        assert sorted(a["track_id"] for a in anns if a["iscrowd"]) == sorted(o["track_id"] for o in ignored)
        assert sorted(a["track_id"] for a in anns if not a["iscrowd"]) == sorted(o["track_id"] for o in kept)
    assert n_ignored > 0


def test_filter_classes_keeps_only_those_classes(dataset, tmp_path):
    flt = ExportFilter(classes=("car",))
    summary = export_dataset(dataset, tmp_path / "coco", "coco", flt)
    export_dataset(dataset, tmp_path / "kitti", "kitti", flt)
    export_dataset(dataset, tmp_path / "yolo", "yolo", flt)
    coco = json.loads((tmp_path / "coco" / "labels.json").read_text())
    assert {a["category_id"] for a in coco["annotations"]} == {get_class("car").id}
    assert summary["objects"] == len(coco["annotations"]) > 0
    kitti_types = {ln.split()[0] for p in (tmp_path / "kitti" / "training" / "label_2").iterdir()
                   for ln in p.read_text().splitlines()}
    assert kitti_types <= {"Car", "Van"}
    yolo_classes = {ln.split()[0] for p in (tmp_path / "yolo" / "labels").iterdir()
                    for ln in p.read_text().splitlines()}
    assert yolo_classes == {str([c.name for c in target_classes()].index("car"))}


def test_frames_without_objects_get_empty_label_files(datasets, tmp_path):
    flt = ExportFilter(classes=("barrier",))  # none in fallen_cargo
    for fmt, folder in (("kitti", "training/label_2"), ("yolo", "labels")):
        summary = export_dataset(datasets["fallen_cargo"], tmp_path / fmt, fmt, flt)
        labels = sorted((tmp_path / fmt / folder).iterdir())
        assert summary["objects"] == 0 and [p.name for p in labels] == [f"{i:06d}.txt" for i in range(3)]
        assert all(p.read_text() == "" for p in labels)


def test_filter_rejects_bad_values_with_the_choices():
    with pytest.raises(ParameterError, match="max_occlusion"):
        ExportFilter(max_occlusion=1.5)
    with pytest.raises(ParameterError, match="min_visible_px"):
        ExportFilter(min_visible_px=-1)
    with pytest.raises(InputError, match="'road' is not a detection target.*traffic cone"):
        ExportFilter(classes=("road",))
    assert ExportFilter(classes=["car"]).classes == ("car",)


def test_format_functions_are_pure(datasets):
    def no_disk(rel):
        raise AssertionError(f"read {rel}")

    records = load_records(datasets["fallen_cargo"])
    for fmt in ("coco", "kitti", "yolo"):
        files = dict(EXPORTERS.get(fmt)(records, ExportFilter(), Path("/nonexistent/out"), no_disk))
        assert all(isinstance(c, (bytes, Copy)) for c in files.values())
        assert files == dict(EXPORTERS.get(fmt)(records, ExportFilter(), Path("/nonexistent/out"), no_disk))


# --- the output directory ------------------------------------------------------------------------

def test_refuses_a_non_empty_foreign_directory(datasets, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        export_dataset(datasets["fallen_cargo"], out, "kitti")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(DatasetError, match="contains the dataset"):
        export_dataset(datasets["fallen_cargo"], datasets["fallen_cargo"], "kitti")
    (tmp_path / "empty").mkdir()  # an empty directory is fine
    assert export_dataset(datasets["fallen_cargo"], tmp_path / "empty", "kitti")["images"] == 3


def test_replaces_an_earlier_export_of_the_same_format_only(datasets, tmp_path):
    out = tmp_path / "yolo"
    export_dataset(datasets["fallen_cargo"], out, "yolo")
    (out / "labels" / "stale.txt").write_text("")
    export_dataset(datasets["fallen_cargo"], out, "yolo", ExportFilter(classes=("car",)))
    assert not (out / "labels" / "stale.txt").exists()
    with pytest.raises(DatasetError, match="'yolo' export, not 'kitti'"):
        export_dataset(datasets["fallen_cargo"], out, "kitti")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolo"]  # no leftovers beside it


def test_an_interrupted_export_leaves_the_output_as_it_was(datasets, tmp_path, monkeypatch):
    out = tmp_path / "kitti"
    export_dataset(datasets["fallen_cargo"], out, "kitti")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = []

    def dying_write(path, data):
        calls.append(path)
        if len(calls) % 4 == 0:  # part-way through each export
            raise KeyboardInterrupt
        return real(path, data)

    real = export_mod.write_bytes
    monkeypatch.setattr(export_mod, "write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        export_dataset(datasets["fallen_cargo"], out, "kitti", ExportFilter(classes=("car",)))
    with pytest.raises(KeyboardInterrupt):
        export_dataset(datasets["fallen_cargo"], tmp_path / "new", "kitti")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kitti"]


def test_bad_dataset_or_format_is_refused_before_writing(datasets, tmp_path):
    with pytest.raises(KeyError, match="unknown export format 'voc'; choices: cityscapes, coco, kitti, yolo"):
        export_dataset(datasets["fallen_cargo"], tmp_path / "x", "voc")
    with pytest.raises(DatasetError, match="dataset directory not found"):
        export_dataset(tmp_path / "missing", tmp_path / "x", "coco")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="manifest"):
        export_dataset(tmp_path / "empty", tmp_path / "x", "coco")
    assert not (tmp_path / "x").exists()


def test_the_cli_shows_a_parameter_error_under_its_flag(datasets, tmp_path, capsys):
    """Library code names the parameter (max_occlusion); the CLI, the flag that set it."""
    from longtail.cli import main

    rc = main(["export", str(datasets["fallen_cargo"]), "--out", str(tmp_path / "x"), "--format", "coco",
               "--max-occlusion", "1.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == "longtail: error: --max-occlusion: expected a fraction in [0, 1], got 1.5"
    rc = main(["export", str(datasets["fallen_cargo"]), "--out", str(tmp_path / "x"), "--format", "coco",
               "--classes", "road"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("longtail: error: --classes: 'road' is not a detection target class")
    assert not (tmp_path / "x").exists()
