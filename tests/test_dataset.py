"""The `longtail render` contract: files, manifest, COCO, determinism, resume, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from killing import kill_after_a_recorded_frame

from longtail.atomic import read_png, sha256_file
from longtail.cli import main
from longtail.dataset import frame_files
from longtail.depth import decode_depth
from longtail.pipeline import engines, render_frame
from longtail.worlds.scenario import load_scenario

SMALL = ["--width", "160", "--height", "96"]


def render(out, *extra, scenario="fallen_cargo", frames=3, seed=4):
    return main(["render", "--scenario", scenario, "--frames", str(frames), "--out", str(out), "--seed", str(seed),
                 "--quiet", *SMALL, *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    assert render(out, frames=4) == 0
    return out


def test_layout_manifest_and_checksums(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    assert m["complete"] and m["frame_count"] == 4 and m["seed"] == 4
    assert m["scenario"]["name"] == "fallen_cargo" and m["scenario"]["camera"]["width"] == 160
    assert m["longtail_version"]
    on_disk = {str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file()} - {"manifest.json"}
    assert on_disk == set(m["files"])
    for rel, sha in m["files"].items():
        assert sha256_file(dataset / rel) == sha
    for i in range(4):
        f = frame_files(i)
        rgb, depth = read_png(dataset / f["rgb"]), read_png(dataset / f["depth"])
        inst, sem = read_png(dataset / f["instance"]), read_png(dataset / f["semantic"])
        assert rgb.shape == (96, 160, 3) and rgb.dtype == np.uint8
        assert depth.dtype == np.uint16 and inst.dtype == np.uint16 and sem.dtype == np.uint8
        rec = json.loads((dataset / f["labels"]).read_text())
        assert np.array(rec["camera"]["K"]).shape == (3, 3)
        assert np.array(rec["camera"]["world_from_camera"]).shape == (4, 4)
        for o in rec["objects"]:
            assert {"class", "track_id", "bbox", "area", "occlusion", "truncation", "distance_m"} <= set(o)
            if o["area"]:
                m_ = inst == o["id"]
                d = decode_depth(depth)[m_]
                assert np.all(np.isfinite(d)) and np.all(d > 0)


def test_coco_loads_and_masks_match_instance_png(dataset):
    coco = COCO(str(dataset / "coco.json"))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) > 0
    for img in coco.loadImgs(coco.getImgIds()):
        inst = read_png(dataset / img["file_name"].replace("rgb/", "instance/"))
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            m = coco.annToMask(ann).astype(bool)
            assert np.array_equal(m, inst == ann["track_id"])
            ys, xs = np.nonzero(m)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            assert ann["area"] == m.sum()


def test_bytes_do_not_depend_on_workers_or_batch(dataset, tmp_path):
    assert render(tmp_path / "w2", "--workers", "2", frames=4) == 0
    assert tree_bytes(tmp_path / "w2") == tree_bytes(dataset)
    # frame 2 of a shorter run, and frame 2 rendered alone by a fresh renderer, equal the batch's
    assert render(tmp_path / "three", frames=3) == 0
    scenario = load_scenario("fallen_cargo").with_resolution(160, 96)
    with engines() as eng:
        render_frame(scenario, 4, 2, eng, tmp_path / "alone")
    for rel in frame_files(2).values():
        assert (tmp_path / "three" / rel).read_bytes() == (dataset / rel).read_bytes()
        assert (tmp_path / "alone" / rel).read_bytes() == (dataset / rel).read_bytes()


def test_rerun_of_a_complete_dataset_renders_nothing(dataset, capsys):
    before = tree_bytes(dataset)
    assert render(dataset, frames=4) == 0
    assert "0 rendered, 4 already done" in capsys.readouterr().out
    assert tree_bytes(dataset) == before


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    frames = 48  # enough that the manifest is saved (every 0.5 s) well before the run ends
    assert render(tmp_path / "whole", frames=frames) == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "longtail", "render", "--scenario", "fallen_cargo", "--frames", str(frames), "--out",
           str(out), "--seed", "4", "--quiet", *SMALL]
    m = kill_after_a_recorded_frame(cmd, out)  # at least one frame recorded, not all
    assert not m["complete"], "killed before finishing"
    # simulate debris of a write cut short: a stale temporary and a truncated, unrecorded frame
    (out / "rgb" / ".tmp-999-000047.png").write_bytes(b"partial")
    (out / "labels").mkdir(exist_ok=True)
    (out / "labels" / "000047.json").write_text("{")
    done = sum(k.startswith("labels/") for k in m["files"])
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0
    assert f"{frames - done} rendered, {done} already done" in run.stdout
    assert tree_bytes(out) == tree_bytes(tmp_path / "whole")


def test_corrupted_frame_is_rerendered_on_resume(dataset, tmp_path):
    out = tmp_path / "c"
    assert render(out, frames=4) == 0
    target = out / frame_files(1)["rgb"]
    target.write_bytes(target.read_bytes()[:-10])
    assert render(out, frames=4) == 0
    assert tree_bytes(out) == tree_bytes(dataset)


@pytest.mark.parametrize("args,words", [
    (["--scenario", "no_such_scenario"], "unknown scenario 'no_such_scenario'"),
    (["--frames", "0"], "argument --frames: expected a positive integer, got 0"),
    (["--frames", "-3"], "argument --frames: expected a positive integer, got -3"),
])
def test_bad_arguments_one_line_exit_2_nothing_written(tmp_path, capsys, args, words):
    base = {"--scenario": "fallen_cargo", "--frames": "2"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["render", "--out", str(tmp_path / "o"), "--quiet"] + [x for kv in base.items() for x in kv]
    with pytest.raises(SystemExit) if "argument" in words else _nullcontext() as exc:
        rc = main(argv)
    rc = exc.value.code if "argument" in words else rc
    err = capsys.readouterr().err.strip()
    assert rc == 2 and words in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def test_malformed_scenario_file(tmp_path, capsys):
    f = tmp_path / "fog.yaml"
    f.write_text("name: fog\ndescription: d\nweather: {kind: fog, visibility_m_range: [-5, 30]}\n")
    rc = main(["render", "--scenario", str(f), "--frames", "2", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"{f}: weather.visibility_m_range: [-5, 30]: -5.0 is not >= 1" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_out_dir_with_another_dataset_is_refused(dataset, tmp_path, capsys):
    before = tree_bytes(dataset)
    assert render(dataset, frames=4, seed=5) == 2
    assert "holds another dataset (seed 4, not 5)" in capsys.readouterr().err
    assert render(dataset, frames=4, scenario="deer_on_dark_road") == 2
    assert "holds another dataset (a different scenario)" in capsys.readouterr().err
    assert tree_bytes(dataset) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"x")
    assert render(foreign) == 2
    assert "not empty and holds no longtail manifest" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["photo.jpg"]


def test_scenarios_and_help(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 3 and all(len(line.split(None, 1)) == 2 for line in lines)
    for argv in (["--help"], ["render", "--help"], ["scenario", "sample", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--scenario", "--frames", "--out", "--seed", "--workers", "--width", "--height"):
        assert opt in text


def test_scenario_subcommands(tmp_path, capsys):
    assert main(["scenario", "validate", "deer_on_dark_road"]) == 0
    assert main(["scenario", "schema"]) == 0
    capsys.readouterr()
    assert main(["scenario", "sample", "night_jaywalker", "--seed", "3", "--index", "2"]) == 0
    scene = json.loads(capsys.readouterr().out)
    assert scene["seed"] == 3 and scene["index"] == 2 and scene["actors"]


def test_sequence_dataset_keeps_track_ids_and_reports_shares(tmp_path, capsys):
    out = tmp_path / "seq"
    assert render(out, "--sequence", "3", scenario="wrong_way_driver", frames=6) == 0
    printed = capsys.readouterr().out
    assert "conditions: " in printed and "rare event visible in" in printed
    recs = [json.loads((out / frame_files(i)["labels"]).read_text()) for i in range(6)]
    assert [r["scene"]["step"] for r in recs] == [0, 1, 2, 0, 1, 2]
    ids = lambda r: [a["id"] for a in r["scene"]["actors"]]  # noqa: E731
    assert ids(recs[0]) == ids(recs[1]) == ids(recs[2])
    assert json.loads((out / "manifest.json").read_text())["sequence"] == 3
    assert render(out, scenario="wrong_way_driver", frames=6) == 2  # a different sequence length


def test_export_cli(dataset, tmp_path, capsys):
    assert main(["export", str(dataset), "--out", str(tmp_path / "y"), "--format", "yolo"]) == 0
    assert "yolo export of 4 images" in capsys.readouterr().out
    assert (tmp_path / "y" / "data.yaml").is_file()
    assert main(["export", str(dataset), "--out", str(tmp_path / "k"), "--format", "kitti",
                 "--classes", "unicorn"]) == 2
    assert "--classes" in capsys.readouterr().err


def test_camera_rig_renders_every_camera_with_exact_labels(tmp_path, capsys):
    import math

    f = tmp_path / "rig.yaml"
    f.write_text("name: rig\ndescription: d\nlayout: {kind: four_way}\ncamera: {rig: front_sides}\n"
                 "events: [{asset: car, count_range: [3, 3], region: cross_traffic, distance_m_range: [2, 30]}]\n"
                 "traffic: [{asset: pedestrian, count_range: [4, 6], region: roadside, distance_m_range: [2, 12]}]\n")
    out = tmp_path / "o"
    assert main(["render", "--scenario", str(f), "--frames", "2", "--out", str(out), "--seed", "3", "--quiet",
                 *SMALL]) == 0
    assert "6 images (2 frames x 3 cameras: front, left, right)" in capsys.readouterr().out
    recs = [json.loads((out / frame_files(i)["labels"]).read_text()) for i in range(6)]
    assert [r["camera"]["name"] for r in recs] == ["front", "left", "right"] * 2
    assert [r["time_frame"] for r in recs] == [0, 0, 0, 1, 1, 1]
    assert recs[0]["scene"]["actors"] == recs[1]["scene"]["actors"] == recs[2]["scene"]["actors"]
    yaw = lambda r: math.atan2(r["camera"]["world_from_camera"][1][2], r["camera"]["world_from_camera"][0][2])  # noqa: E731
    assert math.degrees(yaw(recs[1]) - yaw(recs[0])) == pytest.approx(70.0)
    assert math.degrees(yaw(recs[2]) - yaw(recs[0])) == pytest.approx(-70.0)
    seen = 0
    for r in recs:
        inst = read_png(out / r["files"]["instance"])
        for o in r["objects"]:
            if o["area"]:
                ys, xs = np.nonzero(inst == o["id"])
                assert o["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                seen += r["camera"]["name"] != "front"
    assert seen > 0, "the side cameras see objects too"
    assert len(COCO(str(out / "coco.json")).getImgIds()) == 6


def test_verify_and_stats_cli(dataset, tmp_path, capsys):
    import shutil

    assert main(["verify", str(dataset)]) == 0
    assert capsys.readouterr().out.strip().endswith(": OK")
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / frame_files(2)["depth"]).unlink()
    assert main(["verify", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "depth/000002.png" in out and "finding" in out
    report = tmp_path / "r.html"
    assert main(["stats", str(dataset), "--out", str(report)]) == 0
    assert report.read_text().count("data:image/png;base64,") >= 5


def test_a_worker_that_cannot_start_fails_the_run_instead_of_hanging(tmp_path, monkeypatch, capsys):
    # a scenario whose worker-side load fails: the pool must raise, not respawn forever
    monkeypatch.setattr("longtail.pipeline._init_worker", _broken_init)
    assert render(tmp_path / "w", "--workers", "2", frames=4) == 1
    assert "render worker" in capsys.readouterr().err


def _broken_init(*args):
    raise RuntimeError("cannot start")


def test_augment_cli(dataset, tmp_path, capsys):
    out = tmp_path / "fog"
    assert main(["augment", str(dataset), str(out), "--preset", "dense_fog", "--variants", "2"]) == 0
    assert "8 frames (4 x 2 variants of dense_fog" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()
    assert main(["augment", str(dataset), str(tmp_path / "x"), "--preset", "hail"]) == 2
    assert "--preset" in capsys.readouterr().err and not (tmp_path / "x").exists()
