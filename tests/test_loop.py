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
from longtail.worlds.scenario import load_scenario

SMALL = ["--width", "160", "--height", "96", "--quiet"]
TINY = ["--preset", "smoke", "--model", "ssdlite320_mobilenet_v3_large", "--img-size", "96", "128", "--quiet"]


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
        assert r1["pool"] == len(gate["admitted"]) <= 3  # per_round of the smoke preset
        assert r1["gate"]["checked"] == gate["frames"] and set(gate["rejections"]) >= {"labels", "duplicate"}
        assert len(seed["tracked_metrics"][arm]) == 2  # round 0 and round 1
    plan = json.loads((out / "seed0" / "targeted" / "round1" / "plan.json").read_text())
    assert any("knob" in p for p in plan)
    (aimed,) = seed["aimed"]  # round 1 aimed at the tracked slice; its gain is targeted minus control
    assert aimed["slice"] == seed["tracked"][0] and res["summary"]["aimed"][0]["per_seed"] == [aimed["gain"]]
    assert aimed["gain"] == pytest.approx(aimed["targeted"] - aimed["control"])
    targeted = load_scenario(str(out / "seed0" / "targeted" / "round1" / "scenario.yaml"))
    assert targeted.name.endswith("_targeted")
    assert (out / "plots" / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| targeted | 1 |" in (out / "report.md").read_text()
    # the same command again: everything is done
    capsys.readouterr()
    assert main(loop_cmd(data, out)) == 0
    captured = capsys.readouterr()
    assert "done earlier, skipped" in captured.err and "targeted - control" in captured.out
    assert json.loads((out / "results.json").read_text())["summary"] == res["summary"]
    # another setting in the same directory is refused in one line
    assert main([*loop_cmd(data, out), "--steps", "3"]) == 2
    assert "holds another loop" in capsys.readouterr().err


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
