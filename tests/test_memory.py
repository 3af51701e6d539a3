"""Memory stays flat over long renders (issue #16): no Python objects kept per mesh, no RSS growth."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from longtail._pybullet import p
from longtail.worlds.build import _mesh_shape, _unit_round_mesh

ROOT = Path(__file__).resolve().parents[1]


def test_mesh_shapes_keep_no_python_objects_alive():
    """PyBullet's createVisualShape leaks references to the lists it is given; fresh lists per
    call would stay alive forever (thousands of objects a frame)."""
    v, n, idx = _unit_round_mesh("sphere", 1.0)
    client = p.connect(p.DIRECT)
    try:
        def make(k: int) -> None:
            _mesh_shape(client, v * (1.0 + k / 100.0), n.copy(), idx.copy(), (1.0, 0.5, 0.2, 1.0))

        make(0)
        p.resetSimulation(physicsClientId=client)
        gc.collect()
        before = len(gc.get_objects())
        for k in range(40):
            make(k)
        p.resetSimulation(physicsClientId=client)
        gc.collect()
        grown = len(gc.get_objects()) - before
    finally:
        p.disconnect(physicsClientId=client)
    assert len(v) > 50  # each leaky call would keep > 100 row lists alive: 40 calls > 4,000 objects
    assert grown < 100, f"{grown} Python objects stayed alive after 40 mesh shapes"


def test_pooled_mesh_renders_like_the_mesh_it_was_given():
    """The pool must hand PyBullet this call's vertices, not an earlier call's leftovers."""
    big_v, big_n, big_i = _unit_round_mesh("sphere", 1.0)
    small_v, small_n, small_i = _unit_round_mesh("cylinder", 1.0)
    client = p.connect(p.DIRECT)
    try:
        view = p.computeViewMatrix([4, 0, 1], [0, 0, 0], [0, 0, 1])
        proj = p.computeProjectionMatrixFOV(50, 1.0, 0.1, 20)

        def image(v, n, i) -> tuple[np.ndarray, np.ndarray]:
            p.resetSimulation(physicsClientId=client)
            vs = _mesh_shape(client, v, n, i, (1, 1, 1, 1))
            p.createMultiBody(0, -1, vs, [0, 0, 0], physicsClientId=client)
            _, _, rgb, _, seg = p.getCameraImage(64, 64, view, proj, renderer=p.ER_TINY_RENDERER,
                                                 physicsClientId=client)
            return np.asarray(rgb).reshape(64, 64, 4), np.asarray(seg).reshape(64, 64) >= 0

        rgb, seg = image(small_v * 0.5, small_n, small_i)
        image(big_v, -big_n, big_i)  # a larger mesh (normals flipped) fills more pooled rows first
        rgb_after, seg_after = image(small_v * 0.5, small_n, small_i)
    finally:
        p.disconnect(physicsClientId=client)
    assert seg.sum() > 50 and np.array_equal(seg, seg_after) and np.array_equal(rgb, rgb_after)


def _rss_readings(case: str, frames: int, at: list[int], width: int, height: int) -> dict[str, float]:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--child", case,
                          "--frames", str(frames), "--at", ",".join(map(str, at)),
                          "--width", str(width), "--height", str(height)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_crowd_render_memory_stays_flat():
    """A crowd of 20-part people leaked ~10 MB a frame before; 120 frames would add > 1 GB."""
    r = _rss_readings("crowd", 150, [30, 150], 320, 192)
    assert r["150"] < 1.15 * r["30"], r
    assert r["150"] < 600, r
