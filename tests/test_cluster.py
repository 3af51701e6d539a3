"""`longtail render --backend ray` on a small local Ray cluster: the same bytes as the process pool,
a killed Ray worker's shard retried, a killed driver resumed by a rerun, clear errors."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from killing import kill_after_a_recorded_frame

from longtail.cli import main
from longtail.cluster import ray_backend
from longtail.errors import RenderError
from longtail.pipeline import Job
from longtail.worlds.scenario import load_scenario

ray = pytest.importorskip("ray")

SMALL = ["--width", "160", "--height", "96"]
FRAMES = 32  # long enough (several seconds) to kill something mid-run


def render(out, *extra, frames=FRAMES):
    return main(["render", "--scenario", "fallen_cargo", "--frames", str(frames), "--out", str(out), "--seed", "4",
                 "--quiet", *SMALL, *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cluster():
    """A local two-CPU cluster; yields its address for drivers in other processes."""
    ctx = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ctx.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The reference: the same dataset from two worker processes."""
    out = tmp_path_factory.mktemp("pool") / "out"
    assert render(out, "--workers", "2") == 0
    return tree_bytes(out)


def _task_pids() -> list[int]:
    """Ray worker processes running a render shard (Ray titles them ray::<function>)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::_shard"):
                pids.append(int(name))
    return pids


def test_ray_output_is_byte_identical_to_the_process_pool(cluster, pool, tmp_path, capsys):
    assert render(tmp_path / "ray", "--backend", "ray") == 0
    assert f"{FRAMES} frames ({FRAMES} rendered)" in capsys.readouterr().out
    assert tree_bytes(tmp_path / "ray") == pool


def test_a_killed_ray_worker_is_retried_and_the_dataset_is_complete_and_identical(cluster, pool, tmp_path):
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:  # SIGKILL the first worker seen rendering, once it has had time to write a frame
        while not stop.is_set() and not killed:
            pids = _task_pids()
            if pids:
                time.sleep(0.5)
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    try:
        assert render(tmp_path / "ray", "--backend", "ray") == 0
    finally:
        stop.set()
        t.join()
    assert killed, "no Ray worker was seen rendering"
    assert tree_bytes(tmp_path / "ray") == pool


def test_a_killed_driver_resumes_on_rerun(cluster, pool, tmp_path):
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "longtail", "render", "--scenario", "fallen_cargo", "--frames", str(FRAMES),
           "--out", str(out), "--seed", "4", "--quiet", *SMALL, "--backend", "ray", "--address", cluster]
    m = kill_after_a_recorded_frame(cmd, out)  # at least one frame recorded, not all
    assert not m["complete"], "killed before finishing"
    done = sum(k.startswith("labels/") for k in m["files"])
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"{FRAMES - done} rendered, {done} already done" in run.stdout
    assert tree_bytes(out) == pool


def test_an_output_a_node_cannot_see_fails_with_one_line(cluster, tmp_path):
    job = Job(load_scenario("fallen_cargo").with_resolution(160, 96).model_dump_json(), 4, str(tmp_path / "nowhere"), 1)
    with pytest.raises(RenderError, match="filesystem every Ray node sees"):
        list(ray_backend()(job, [0]))


def test_bad_backend_options_exit_2(tmp_path, capsys, monkeypatch):
    assert render(tmp_path / "a", "--address", "auto", frames=1) == 2
    assert "--address" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    assert render(tmp_path / "b", "--backend", "ray", frames=1) == 2
    err = capsys.readouterr().err
    assert "longtail[ray]" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
