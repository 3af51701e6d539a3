"""Any bytes in a real dataset's label files (COCO JSON, KITTI label_2, YOLO data.yaml and labels,
MOT gt.txt / seqinfo.ini) or its images: `train --dry-run` checks it or fails in one line, exit 2."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, strategies as st
from PIL import Image

from fuzzing import FUZZ, assert_clean, binary, mutate, no_partial_output, run_cli, values

W, H = 48, 32
text_lines = st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str),
                                         st.integers(-5, 99).map(str), st.text(max_size=6)), max_size=16)
                      .map(" ".join), max_size=6).map(lambda r: "\n".join(r).encode())


def _img(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((H, W, 3)) * 255).astype(np.uint8)).save(path)


def _coco(root: Path) -> tuple[str, Path]:
    _img(root / "a.png")
    _img(root / "b.png", 1)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                      {"id": 2, "file_name": "b.png", "width": W, "height": H}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 20], "iscrowd": 0,
                            "area": 200}],
           "categories": [{"id": 1, "name": "person"}]}
    (root / "labels.json").write_text(json.dumps(doc))
    return "coco", root / "labels.json"


def _kitti(root: Path) -> tuple[str, Path]:
    _img(root / "image_2" / "000000.png")
    (root / "label_2").mkdir()
    (root / "label_2" / "000000.txt").write_text("Pedestrian 0.00 0 -0.20 2.0 3.0 12.0 30.0 1.7 0.6 0.8 1.0 1.6 "
                                                 "12.0 0.1\nDontCare -1 -1 -10 30 2 40 9 -1 -1 -1 -1000 -1000 -1000 "
                                                 "-10\n")
    return "kitti", root / "label_2" / "000000.txt"


def _yolo(root: Path) -> tuple[str, Path]:
    _img(root / "images" / "train" / "a.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.3 0.5 0.2 0.6\n1 0.1 0.1 0.3 0.1 0.3 0.3\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "names": ["person", "car"]}))
    return "yolo", root / "labels" / "train" / "a.txt"


def _mot(root: Path) -> tuple[str, Path]:
    _img(root / "img1" / "000001.jpg")
    (root / "gt").mkdir()
    (root / "gt" / "gt.txt").write_text("1,1,2,3,10,20,1,-1,-1,-1\n1,2,20,3,10,20,0,-1,-1,-1\n")
    (root / "seqinfo.ini").write_text(f"[Sequence]\nname=S\nimDir=img1\nimExt=.jpg\nimWidth={W}\nimHeight={H}\n")
    return "mot", root / "gt" / "gt.txt"


MAKERS = {"coco": _coco, "kitti": _kitti, "yolo": _yolo, "mot": _mot}


def _dry_run(kind: str, root: Path, target: Path | None = None) -> tuple[int, str, str]:
    data_path = {"coco": root / "labels.json", "yolo": root / "data.yaml"}.get(kind, root)
    out = root.parent / "run"
    res = run_cli(["train", "--data", f"{kind}:{data_path}", "--steps", "1", "--out", out, "--dry-run"])
    no_partial_output(out)
    return res


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_valid_datasets_pass_the_dry_run(kind, tmp_path):
    MAKERS[kind](tmp_path / "d")
    rc, out, err = _dry_run(kind, tmp_path / "d")
    assert rc == 0, err
    assert "2 images" in out or "1 images" in out, out


@FUZZ
@given(st.sampled_from(sorted(MAKERS)), st.data())
def test_damaged_label_files(kind, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "d"
        root.mkdir()
        _, labels = MAKERS[kind](root)
        choices = [labels] + [p for p in (root / "data.yaml", root / "seqinfo.ini") if p.is_file()]
        target = data.draw(st.sampled_from(choices))
        how = data.draw(st.sampled_from(["bytes", "lines", "structure"]))
        if how == "bytes":
            target.write_bytes(data.draw(binary))
        elif how == "lines" or target.suffix in (".txt", ".ini"):
            target.write_bytes(data.draw(text_lines))
        elif target.suffix == ".json":
            target.write_text(json.dumps(mutate(json.loads(target.read_text()), data)))
        else:
            target.write_text(yaml.safe_dump(mutate(yaml.safe_load(target.read_text()), data)))
        assert_clean(*_dry_run(kind, root))


@FUZZ
@given(st.sampled_from(sorted(MAKERS)), binary)
def test_damaged_images(kind, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "d"
        root.mkdir()
        MAKERS[kind](root)
        image = sorted(p for p in root.rglob("*") if p.suffix in (".png", ".jpg"))[0]
        image.write_bytes(data)
        assert_clean(*_dry_run(kind, root))


@FUZZ
@given(values)
def test_condition_tags_and_class_maps(value):
    """The sidecars the library readers take: tags (JSON, CSV) and class maps (YAML)."""
    from longtail.errors import InputError
    from longtail.train.classmap import load_class_map
    from longtail.train.tags import load_tags

    with tempfile.TemporaryDirectory() as tmp:
        for name, reader in (("t.json", load_tags), ("t.csv", load_tags), ("m.yaml", load_class_map)):
            f = Path(tmp) / name
            f.write_text(json.dumps(value) if name.endswith("json") else yaml.safe_dump(value))
            try:
                reader(f)
            except InputError as e:
                assert "\n" not in str(e)
            f.write_bytes(b"\xff\xfe" + yaml.safe_dump(value).encode())
            with pytest.raises(InputError):
                reader(f)


def test_copying_a_dataset_keeps_it_valid(tmp_path):
    """The fixtures above are valid as made, so damage is what the fuzzed tests measure."""
    _, labels = _coco(tmp_path / "d")
    shutil.copytree(tmp_path / "d", tmp_path / "e")
    assert _dry_run("coco", tmp_path / "e")[0] == 0
