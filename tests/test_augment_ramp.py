"""Condition ramps over saved footage (``longtail augment IN OUT --ramp KNOB=FROM..TO``): one weather
knob changes across a sequence and every frame records the value applied; over a real MOTChallenge
sequence (ground-plane depth prior, written as a MOT sequence with condition tags) and over a
rendered longtail dataset (each run of its --sequence); same seed, same bytes; bad input refused
in one line with nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longtail.augment_ramp import ramp_dataset, ramp_step
from longtail.cli import main
from longtail.dataset import Manifest, frame_files
from longtail.errors import ParameterError
from longtail.labelers.verify import verify_dataset
from longtail.pipeline import render_dataset
from longtail.render.weather.knobs import parse_ramp, ramp_value
from longtail.worlds.plates import Horizon, fit_plate
from longtail.worlds.scenario import load_scenario

FRAMES, W, H = 8, 64, 48
FOG = "fog.visibility_m=1500..30"
RUN = 3  # the rendered dataset's --sequence


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_mot(root: Path, frames: int = FRAMES, gt: str | None = None) -> Path:
    """A tiny MOTChallenge sequence: one textured JPG frame repeated (so only the weather changes
    along it), a box per frame in MOT16 rows."""
    (root / "img1").mkdir(parents=True)
    (root / "gt").mkdir()
    base = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    for f in range(1, frames + 1):
        Image.fromarray(base).save(root / "img1" / f"{f:06d}.jpg", quality=95)
    (root / "gt" / "gt.txt").write_text(gt if gt is not None else
                                        "".join(f"{f},1,10,20,8,16,1,1,1.0\n" for f in range(1, frames + 1)))
    (root / "seqinfo.ini").write_text(f"[Sequence]\nname=TINY\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
                                      f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n")
    return root


@pytest.fixture(scope="module")
def mot_seq(tmp_path_factory) -> Path:
    return make_mot(tmp_path_factory.mktemp("mot") / "TINY")


@pytest.fixture(scope="module")
def fog_mot(mot_seq, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ramp") / "TINY-fog"
    return out, ramp_dataset(mot_seq, out, FOG, seed=3)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("src") / "cargo"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=2 * RUN, seed=4,
                   sequence=RUN)
    return out


def test_parse_ramp_spacing_and_values():
    fog = parse_ramp(FOG)
    assert (fog.knob.name, fog.start, fog.stop, fog.curve) == ("fog.visibility_m", 1500.0, 30.0, "log")
    assert parse_ramp("night.skylight_ev=0..-8").curve == "linear"
    assert parse_ramp("fog.beta_per_m=0.002..0.1:linear").curve == "linear"
    assert parse_ramp(" night.skylight_ev = -1 .. -6 :linear").start == -1.0
    values = [ramp_value(fog, k, 7) for k in range(7)]
    assert values[0] == 1500.0 and values[-1] == 30.0  # endpoints exact
    ratios = np.array(values[1:]) / np.array(values[:-1])
    assert np.allclose(ratios, (30 / 1500) ** (1 / 6))  # geometric steps
    ev = parse_ramp("night.skylight_ev=0..-6")
    assert [ev.at(k, 4) for k in range(4)] == [0.0, -2.0, -4.0, -6.0]
    assert ramp_value(fog, 0, 1) == 1500.0  # one frame: FROM
    assert [ramp_step(t, 6, 3) for t in range(6)] == [(0, 3), (1, 3), (2, 3), (0, 3), (1, 3), (2, 3)]
    assert [ramp_step(t, 4, 1) for t in range(4)] == [(0, 4), (1, 4), (2, 4), (3, 4)]  # independent frames: one ramp


@pytest.mark.parametrize("text, match", [
    ("fog.visibility_m=1500", "expected KNOB=FROM..TO"),
    ("1500..30", "expected KNOB=FROM..TO"),
    ("rain.rate=1..2", "unknown knob 'rain.rate'"),
    ("fog.visibility_m=a..30", "expected numbers FROM and TO"),
    ("fog.visibility_m=0.5..30", r"must lie in \[1, 100000\] m"),
    ("fog.visibility_m=30..nan", "must lie in"),
    ("fog.visibility_m=30..30", "FROM != TO"),
    ("fog.visibility_m=1500..30:cubic", "unknown curve 'cubic'"),
    ("night.skylight_ev=0..-8:log", "needs FROM and TO > 0"),
])
def test_parse_ramp_refuses_with_what_was_expected(text, match):
    with pytest.raises(ParameterError, match=match) as e:
        parse_ramp(text)
    assert e.value.param == "ramp" and "\n" not in str(e.value)


def test_mot_ramp_writes_the_values_it_applied(fog_mot, mot_seq):
    from longtail.train.datasets import open_dataset

    out, summary = fog_mot
    assert summary["source"] == "mot" and summary["frames"] == FRAMES and summary["camera"] == "level car camera"
    ramp = json.loads((out / "ramp.json").read_text())
    assert {k: ramp[k] for k in ("knob", "unit", "from", "to", "curve", "camera", "seed")} == {
        "knob": "fog.visibility_m", "unit": "m", "from": 1500.0, "to": 30.0, "curve": "log",
        "camera": "level car camera", "seed": 3}
    values = [f["value"] for f in ramp["frames"]]
    assert values[0] == 1500.0 and values[-1] == 30.0 and all(a > b for a, b in zip(values, values[1:]))
    assert np.allclose(np.diff(np.log(values)), math.log(30 / 1500) / (FRAMES - 1))
    assert [f["file"] for f in ramp["frames"]] == [f"{k:06d}.png" for k in range(1, FRAMES + 1)]
    assert [f["frame"] for f in ramp["frames"]] == list(range(1, FRAMES + 1))
    assert all(f["visibility_m"] == pytest.approx(f["value"], abs=0.01) for f in ramp["frames"])
    tags = json.loads((out / "conditions.json").read_text())
    assert list(tags) == [f["file"] for f in ramp["frames"]]
    vis = [float(t["visibility_m"]) for t in tags.values()]
    assert all(a > b for a, b in zip(vis, vis[1:]))
    assert all(t["weather"] == "foggy" for t in tags.values())
    assert [t["visibility_band"] for t in tags.values()][::FRAMES - 1] == [">=1000 m", "<50 m"]
    assert (out / "gt/gt.txt").read_bytes() == (mot_seq / "gt/gt.txt").read_bytes()
    seqinfo = (out / "seqinfo.ini").read_text()
    assert "name=TINY-fog-ramp" in seqinfo and "imExt=.png" in seqinfo and f"seqLength={FRAMES}" in seqinfo
    # measurably foggier along the ramp: the texture of the ground (lower half) fades
    spread = [np.asarray(Image.open(out / "img1" / f)).astype(float)[H // 2:].std() for f in tags]
    assert all(a > b for a, b in zip(spread, spread[1:])), spread
    ds = open_dataset(f"mot:{out}", tags=out / "conditions.json")
    assert len(ds.entries) == FRAMES
    first, last = ds.entries[0].conditions, ds.entries[-1].conditions
    assert first["weather"] == last["weather"] == "foggy"
    assert (first["visibility_band"], last["visibility_band"]) == (">=1000 m", "<50 m")
    assert len(ds.entries[0].boxes) == 1


def test_mot_ramp_over_a_plate_camera_and_at_night(mot_seq, fog_mot, tmp_path):
    plate = tmp_path / "plate"
    fit_plate(mot_seq, plate, horizon=Horizon(row=4.0, height_m=6.0, focal_px=60.0))
    out = tmp_path / "plate_fog"
    assert ramp_dataset(mot_seq, out, FOG, seed=3, camera=plate)["camera"] == "plate camera"
    assert json.loads((out / "ramp.json").read_text())["camera"] == "plate camera"
    # the plate camera (6 m up, horizon at row 4) sees ground 20-30 m away just above the centre
    # row, where the level car camera sees beyond the horizon (250 m: lost in 30 m fog)
    level = np.asarray(Image.open(fog_mot[0] / "img1/000008.png")).astype(float)[16:H // 2].std()
    high = np.asarray(Image.open(out / "img1/000008.png")).astype(float)[16:H // 2].std()
    assert level < 3 and high > 2 * level
    night = tmp_path / "night"
    ramp_dataset(mot_seq, night, "night.skylight_ev=-1..-7", seed=0, camera=plate / "camera.json")
    tags = json.loads((night / "conditions.json").read_text())
    assert [t["time_of_day"] for t in tags.values()][::FRAMES - 1] == ["dawn/dusk", "night"]
    assert all("visibility_m" not in f for f in json.loads((night / "ramp.json").read_text())["frames"])
    means = [np.asarray(Image.open(night / "img1" / f)).mean() for f in tags]
    assert means[0] > 2 * means[-1]


def test_longtail_ramp_per_run(rendered, tmp_path):
    out = tmp_path / "cargo_fog"
    summary = ramp_dataset(rendered, out, "fog.visibility_m=800..20", seed=5)
    assert summary["source"] == "longtail" and summary["frames"] == 2 * RUN and summary["runs"] == 2
    assert verify_dataset(out) == []
    m = Manifest.load(out)
    assert m.sequence == RUN and m.seed == 5
    records = [json.loads((out / frame_files(j)["labels"]).read_text()) for j in range(2 * RUN)]
    falls = []
    for run in (records[:RUN], records[RUN:]):
        vis = [r["attributes"]["visibility_m"] for r in run]
        assert vis[0] == pytest.approx(800, abs=0.01) and vis[-1] == pytest.approx(20, abs=0.01)
        assert all(a > b for a, b in zip(vis, vis[1:]))
        assert [r["attributes"]["ramp"]["step"] for r in run] == list(range(RUN))
        assert [r["attributes"]["ramp"]["value"] for r in run][::RUN - 1] == [800.0, 20.0]
        for r in run:
            assert r["attributes"]["weather"] == "foggy"
            assert {k: r["attributes"]["ramp"][k] for k in ("knob", "unit", "steps")} == {
                "knob": "fog.visibility_m", "unit": "m", "steps": RUN}
            assert r["attributes"]["augmented"] == {"knob": "fog.visibility_m", "unit": "m", "from": 800.0,
                                                    "to": 20.0, "curve": "log", "source_frame": r["frame"]}
        # objects fade as the fog thickens: per track, first step against last
        first = {o["track_id"]: o["visibility"] for o in run[0]["objects"] if o["area"] > 0}
        last = {o["track_id"]: o["visibility"] for o in run[-1]["objects"] if o["area"] > 0}
        both = sorted(set(first) & set(last))
        assert both
        falls.append(np.mean([first[t] - last[t] for t in both]))
    assert all(f > 0 for f in falls), falls
    for j in range(2 * RUN):
        for kind in ("depth", "instance", "semantic"):
            assert (out / frame_files(j)[kind]).read_bytes() == (rendered / frame_files(j)[kind]).read_bytes()


def test_same_seed_same_bytes_and_night_noise_follows_the_seed(mot_seq, fog_mot, tmp_path):
    again = tmp_path / "again"
    ramp_dataset(mot_seq, again, FOG, seed=3)
    assert tree_bytes(again) == tree_bytes(fog_mot[0])
    a, b, c = (tmp_path / n for n in "abc")
    for out, seed in ((a, 0), (b, 0), (c, 1)):
        ramp_dataset(mot_seq, out, "night.skylight_ev=-2..-6", seed=seed)
    assert tree_bytes(a) == tree_bytes(b)
    assert (a / "img1/000004.png").read_bytes() != (c / "img1/000004.png").read_bytes()


def test_cli_prints_one_line(mot_seq, tmp_path, capsys):
    assert main(["augment", str(mot_seq), str(tmp_path / "o"), "--ramp", FOG, "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "8 frames" in lines[0] and "fog.visibility_m 1500..30 m (log)" in lines[0]


def _run(argv: list[str]) -> int:
    """``main``'s exit code, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def _bad_sources(root: Path) -> dict[str, Path]:
    (root / "empty").mkdir()
    noframes = make_mot(root / "noframes", frames=0)
    garbage = make_mot(root / "garbage", gt="1,1,10,20,8,16,1,1,1\nnot,a,row\n")
    sizes = make_mot(root / "sizes")
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(sizes / "img1/000005.jpg")
    seqinfo = make_mot(root / "seqinfo")
    (seqinfo / "seqinfo.ini").write_text("[Sequence]\nname=X\nimWidth=100\nimHeight=48\n")
    (root / "busy").mkdir()
    (root / "busy/mine.txt").write_text("mine")
    (root / "bad_camera.json").write_text('{"format": "nope"}')
    return {"empty": root / "empty", "noframes": noframes, "garbage": garbage, "sizes": sizes, "seqinfo": seqinfo}


BAD = [  # (source, extra arguments, what the one line must say)
    ("mot", ["--ramp", "rain.rate=1..2"], "--ramp: unknown knob 'rain.rate'"),
    ("mot", ["--ramp", "fog.visibility_m=1500"], "--ramp: expected KNOB=FROM..TO"),
    ("mot", ["--ramp", "fog.visibility_m=1500..0.2"], "--ramp: fog.visibility_m must lie in"),
    ("mot", ["--ramp", "night.skylight_ev=-3..-3"], "FROM != TO"),
    ("mot", [], "one of the arguments --preset --ramp is required"),
    ("mot", ["--ramp", FOG, "--preset", "dense_fog"], "not allowed with argument"),
    ("mot", ["--ramp", FOG, "--variants", "2"], "--variants: applies to --preset only"),
    ("mot", ["--ramp", FOG, "--strength", "0.5"], "--strength: applies to --preset only"),
    ("longtail", ["--preset", "dense_fog", "--camera", "x.json"], "--camera: applies to --ramp"),
    ("longtail", ["--ramp", FOG, "--camera", "x.json"], "--camera: "),
    ("mot", ["--ramp", FOG, "--camera", "{root}/nowhere.json"], "--camera: {root}/nowhere.json: no such plate"),
    ("mot", ["--ramp", FOG, "--camera", "{root}/bad_camera.json"], "bad_camera.json: format"),
    ("empty", ["--ramp", FOG], "neither a longtail dataset (manifest.json) nor a MOTChallenge sequence"),
    ("{root}/nowhere", ["--ramp", FOG], "source directory not found"),
    ("noframes", ["--ramp", FOG], "no frames"),
    ("garbage", ["--ramp", FOG], "gt.txt: line 2"),
    ("sizes", ["--ramp", FOG], "000005.jpg: image is 64x50 pixels"),
    ("seqinfo", ["--ramp", FOG], "seqinfo.ini says 100x48"),
    ("mot", ["--ramp", FOG, "--seed", "-1"], "--seed"),
]


def test_cli_refuses_bad_input_in_one_line_writing_nothing(mot_seq, rendered, tmp_path, capsys):
    sources = _bad_sources(tmp_path) | {"mot": mot_seq, "longtail": rendered}
    for k, (src, extra, says) in enumerate(BAD):
        out = tmp_path / f"out{k}"
        source = sources.get(src) or Path(src.format(root=tmp_path))
        before = sorted(p.name for p in tmp_path.iterdir())
        rc = _run(["augment", str(source), str(out), *(a.format(root=tmp_path) for a in extra)])
        err = capsys.readouterr().err
        assert rc == 2, (src, extra, err)
        assert len(err.strip().splitlines()) == 1 and says.format(root=tmp_path) in err, (src, extra, err)
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == before, (src, extra)
    busy = tmp_path / "busy"
    assert main(["augment", str(mot_seq), str(busy), "--ramp", FOG]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
