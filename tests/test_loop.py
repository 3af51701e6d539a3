"""`longtail loop` on a smoke budget: round 0, a targeted and a control arm, the gate between the
renders and the pool, the report; resumed after a kill to the same results."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from longtail.cli import main
from longtail.train.checkpoint import load_detector
from longtail.train.models import LayerNormBoxHead
from longtail.worlds.scenario import load_scenario

SMALL = ["--width", "160", "--height", "96", "--quiet"]
# Faster R-CNN with the normalised box head: the option reaches every round's model
TINY = ["--preset", "smoke", "--box-head-norm", "layer", "--img-size", "96", "128", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A rendered 'real' training set, a test set of other frames, and a small base scenario."""
    tmp = tmp_path_factory.mktemp("loop")
    for name, seed, frames in (("real", 1, 8), ("test", 2, 6)):
        assert main(["render", "--scenario", "pedestrian_behind_bus", "--frames", str(frames), "--out",
                     str(tmp / name), "--seed", str(seed), *SMALL]) == 0
    base = load_scenario("pedestrian_behind_bus").with_resolution(160, 96)
    (tmp / "base.yaml").write_text(yaml.safe_dump(base.model_dump(mode="json", by_alias=True)))
    return tmp


def loop_cmd(data: Path, out: Path) -> list[str]:
    return ["loop", "--real", str(data / "real"), "--test", str(data / "test"), "--scenario", str(data / "base.yaml"),
            "--out", str(out), *TINY]


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
    """An uninterrupted smoke loop."""
    out = tmp_path_factory.mktemp("whole") / "loop"
    assert main(loop_cmd(data, out)) == 0
    return out


def test_a_smoke_loop_runs_both_arms_through_the_gate(data, whole, capsys):
    out = whole
    res = json.loads((out / "results.json").read_text())
    seed = res["seeds"]["0"]
    assert seed["tracked"], "round 1 of the targeted arm aimed at a slice"
    for arm in ("targeted", "control"):
        (r1,) = seed["arms"][arm]
        gate = json.loads((out / "seed0" / arm / "round1" / "gate.json").read_text())
        admitted = [i for b in gate["batches"] for i in b["admitted"]]
        assert r1["pool"] == len(admitted) == gate["admitted_count"] <= 3  # per_round of the smoke preset
        for k in range(1, len(gate["batches"])):  # a top-up batch only while the ones before fell short
            assert sum(len(b["admitted"]) for b in gate["batches"][:k]) < 3
        assert r1["gate"]["checked"] == gate["frames"] and set(gate["rejections"]) >= {"labels", "duplicate"}
        assert len(seed["tracked_metrics"][arm]) == 2  # round 0 and round 1
    plan = json.loads((out / "seed0" / "targeted" / "round1" / "plan.json").read_text())
    assert any("knob" in p for p in plan)
    (aimed,) = seed["aimed"]  # round 1 aimed at the tracked slice; its gain is targeted minus control
    assert aimed["slice"] == seed["tracked"][0] and res["summary"]["aimed"][0]["per_seed"] == [aimed["gain"]]
    assert aimed["gain"] == pytest.approx(aimed["targeted"] - aimed["control"])
    assert res["summary"]["aimed"][0]["metrics"] == [aimed["metric"]]
    # the tracked slice's AP50 difference is reported beside its ranking metric's
    name = seed["tracked"][0]
    ap = [seed["tracked_metrics"][arm][1]["slices"][name]["ap50"] for arm in ("targeted", "control")]
    if None not in ap:
        assert res["summary"]["gain_per_seed_ap50"] == [pytest.approx(ap[0] - ap[1])]
    targeted = load_scenario(str(out / "seed0" / "targeted" / "round1" / "scenario.yaml"))
    assert targeted.name.endswith("_targeted")
    assert (out / "plots" / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| targeted | 1 |" in report and "`--box-head-norm layer`" in report
    for arm in ("targeted", "control"):  # the round's checkpoint rebuilds the head it was trained with
        model, spec, _ = load_detector(out / "seed0" / arm / "round1" / "run" / "checkpoint.pt")
        assert spec.options == {"box_head_norm": "layer"} and isinstance(model.roi_heads.box_head, LayerNormBoxHead)
    # the same command again: everything is done
    capsys.readouterr()
    assert main(loop_cmd(data, out)) == 0
    captured = capsys.readouterr()
    assert "done earlier, skipped" in captured.err and "targeted - control" in captured.out
    assert json.loads((out / "results.json").read_text())["summary"] == res["summary"]
    # another setting in the same directory is refused in one line
    assert main([*loop_cmd(data, out), "--steps", "3"]) == 2
    assert "holds another loop" in capsys.readouterr().err
    # a head the model does not have is one line, exit 2
    assert main([*loop_cmd(data, out), "--model", "ssdlite320_mobilenet_v3_large"]) == 2
    assert "no two-layer RoI box head" in capsys.readouterr().err


def test_a_killed_loop_resumes_to_the_results_of_an_uninterrupted_one(data, whole, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "longtail", *loop_cmd(data, out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    marker = out / "seed0" / "targeted" / "round1" / "render" / "manifest.json"
    while time.time() < deadline and not marker.exists():  # kill once round 0 is done and a render began
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (out / "results.json").exists()
    run = subprocess.run([sys.executable, "-m", "longtail", *loop_cmd(data, out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "round 0: done earlier, skipped" in run.stderr
    a, b = (json.loads((d / "results.json").read_text()) for d in (whole, out))
    assert a["seeds"] == b["seeds"] and a["summary"] == b["summary"]


def test_a_short_round_renders_top_up_batches(data, tmp_path):
    """The gate admits fewer than ``per_round`` of a round's first candidates (here: its pool
    already holds every one of them): the round renders another batch with a seed of its own and
    stops as soon as enough have passed; the verdict says which frames of which batch joined."""
    from types import SimpleNamespace

    from longtail import loop
    from longtail.labelers.gate import Gate, RealRanges, gate_dataset
    from longtail.pipeline import render_dataset

    scenario = load_scenario("pedestrian_behind_bus").with_resolution(160, 96)
    first, other = tmp_path / "a", tmp_path / "b"
    render_dataset(scenario, first, frames=3, seed=4)
    render_dataset(scenario, other, frames=3, seed=7)
    seen = Gate(loop.GATE_CONFIG, RealRanges({}))
    gate_dataset(first, seen)  # the arm admitted these in an earlier round
    fresh = gate_dataset(other, Gate(loop.GATE_CONFIG, RealRanges({}))).admitted
    calls = []

    def render(batch: int) -> Path:
        calls.append(batch)
        return other if batch == 1 else first

    cfg = loop.preset_config("smoke", per_round=2, oversample=1.0)
    d = tmp_path / "round2"
    d.mkdir()
    verdict = loop._gate(d, render, SimpleNamespace(ranges=RealRanges({})), cfg, seen.pool.to_json(), [])
    batches = verdict["batches"]
    assert batches[0]["render"] == "render" and batches[0]["admitted"] == [] and batches[0]["frames"] == 3
    assert verdict["rejections"]["duplicate"] >= 3
    assert batches[1]["render"] == "render_1" and batches[1]["admitted"] == fresh[:2]
    if len(fresh) >= 2:  # enough after one top-up: no more renders
        assert calls == [0, 1] and verdict["admitted_count"] == 2
    else:  # every top-up batch is tried (the later ones repeat the first: all duplicates)
        assert calls == [0, 1, 2, 3] and verdict["admitted_count"] == len(fresh)
    assert verdict["frames"] == sum(b["frames"] for b in batches)
    assert loop.gate_batches(verdict) == batches
    # judged once: a resumed round reads the verdict and renders nothing
    calls.clear()
    assert loop._gate(d, render, SimpleNamespace(ranges=RealRanges({})), cfg, None, []) == verdict and calls == []
    # a verdict from before top-up batches: one batch, the round's render folder
    assert loop.gate_batches({"admitted": [0, 2]}) == [{"render": "render", "admitted": [0, 2]}]
    # batch 0 keeps the seed it always had; the others differ from it and from each other
    seeds = [loop.render_seed(0, "targeted", 2, b) for b in range(4)]
    assert seeds[0] == loop.render_seed(0, "targeted", 2) and len(set(seeds)) == 4
