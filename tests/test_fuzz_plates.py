"""Any bytes in the plate inputs (camera YAML, correspondence CSV, MOT gt.txt / seqinfo.ini, a
plate directory's files): a plate, or one line naming the file, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import example, given, strategies as st
from PIL import Image

from fuzzing import FUZZ, assert_clean, binary, mutate, no_partial_output, run_cli, values

CAMERA = {"fx": 60.0, "height_m": 4.0, "pitch_deg": 15.0}
W, H = 64, 48


def _frames(root: Path) -> Path:
    (root / "frames").mkdir()
    img = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(root / "frames" / "000001.png")
    return root / "frames"


def _mot(root: Path, gt: bytes | None = None, ini: bytes | None = None) -> Path:
    seq = root / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    img = (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(seq / "img1" / "000001.jpg")
    (seq / "seqinfo.ini").write_bytes(ini if ini is not None else
                                      f"[Sequence]\nname=SEQ\nimDir=img1\nframeRate=7\nseqLength=1\nimWidth={W}\n"
                                      f"imHeight={H}\nimExt=.jpg\n".encode())
    rows = [f"1,{k},{8 + 12 * (k % 4)},{6 + 9 * (k // 4)},4,10,1,{2.0 * (k % 4)},{5.0 + 3 * (k // 4)},0"
            for k in range(8)]
    (seq / "gt" / "gt.txt").write_bytes(gt if gt is not None else ("\n".join(rows) + "\n").encode())
    return seq


GOOD_CSV = "u,v,x,y\n10,40,0,5\n50,40,4,5\n12,20,-2,20\n52,22,6,18\n30,30,1,10\n"


def _fit(argv_tail: list, tmp: Path) -> None:
    out = tmp / "plate"
    rc, o, e = run_cli(["plate", "fit", *argv_tail, "--out", out])
    assert_clean(rc, o, e)
    if rc == 2:
        no_partial_output(out)


def _camera_yaml(data) -> bytes:
    kind = data.draw(st.sampled_from(["bytes", "value", "mutation", "mutation"]))
    if kind == "bytes":
        return data.draw(binary)
    return yaml.safe_dump(data.draw(values) if kind == "value" else mutate(CAMERA, data)).encode()


@FUZZ
@given(st.data())
def test_camera_file_fuzzed(data):
    test_camera_file(_camera_yaml(data))


@pytest.mark.parametrize("data", [
    b"fx: 60\nheight_m: 4\npitch_deg: \xff\n",
    b"fx: 60\nworld_from_camera: [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]\n",
    b"fx: 1e-300\nheight_m: 1e300\n",
    b"hfov_deg: 60\nheight_m: 4\ncx: 1e300\n",
    b"fx: 60\nheight_m: 4\nwidth: 0\n",
])
def test_camera_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "cam.yaml").write_bytes(data)
        _fit([_frames(tmp), "--camera", tmp / "cam.yaml"], tmp)


csv_rows = st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=5)),
                             max_size=6).map(",".join), max_size=12).map(lambda r: "\n".join(r).encode())


@FUZZ
@given(st.one_of(binary, csv_rows, st.integers(0, len(GOOD_CSV)).map(lambda n: GOOD_CSV.encode()[:n])))
@example(GOOD_CSV.encode())
@example(b"u,v,x,y\n1,1,0,0\n1,1,0,0\n1,1,0,0\n1,1,0,0\n")
@example(b"u,v,x,y\n" + b"1e308,1e308,1e308,1e308\n" * 5)
def test_correspondence_csv(data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "points.csv").write_bytes(data)
        _fit([_frames(tmp), "--correspondences", tmp / "points.csv"], tmp)


@FUZZ
@given(st.one_of(binary, csv_rows), st.booleans())
@example(b"1,1,10,10,4,10,1,nan,inf,0\n" * 8, True)
@example(b"1,1,10,10,4,10,1,0,0\n" * 8, True)
@example(b"[Sequence]\nimWidth=-5\nimHeight=abc\n", False)
@example(b"[Sequence]\nimDir=../../..\nimExt=\n", False)
def test_mot_sequence_files(data, is_gt):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seq = _mot(tmp, gt=data) if is_gt else _mot(tmp, ini=data)
        _fit([seq, "--correspondences", "gt"], tmp)


@pytest.fixture(scope="module")
def plate_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("plate")
    (tmp / "cam.yaml").write_text(yaml.safe_dump(CAMERA))
    rc, o, e = run_cli(["plate", "fit", _frames(tmp), "--out", tmp / "plate", "--camera", tmp / "cam.yaml"])
    assert rc == 0, e
    return tmp / "plate"


PLATE_FILES = ["camera.json", "sky.json", "plate.png", "depth.png", "occluders.png", "regions.png"]


@FUZZ
@given(st.data())
def test_plate_directory_files(plate_dir, data):
    """A damaged plate directory, read through a scenario that stands on it."""
    name = data.draw(st.sampled_from(PLATE_FILES))
    with tempfile.TemporaryDirectory() as tmp:
        plate = Path(tmp) / "plate"
        shutil.copytree(plate_dir, plate)
        f = plate / name
        if f.suffix == ".json" and data.draw(st.booleans()):
            new = json.dumps(mutate(json.loads(f.read_text()), data)).encode()
        else:
            new = data.draw(binary | st.sampled_from([_png(np.zeros((H, W), np.uint16)),
                                                      _png(np.zeros((2, 2, 3), np.uint8)),
                                                      _png(np.full((H, W), 255, np.uint8))]))
        f.write_bytes(new)
        sc = Path(tmp) / "s.yaml"
        sc.write_text(yaml.safe_dump({"name": "on_plate", "description": "d", "layout": {"kind": "plate"},
                                      "plate": str(plate), "events": [{"asset": "pedestrian", "region": "ground",
                                                                       "distance_m_range": [5, 20]}]}))
        assert_clean(*run_cli(["scenario", "sample", sc]))
        assert_clean(*run_cli(["render", "--scenario", sc, "--frames", "1", "--out", Path(tmp) / "out",
                               "--quiet", "--seed", "1"]))


def _png(arr: np.ndarray) -> bytes:
    from longtail.atomic import png_bytes

    return png_bytes(arr)
