"""Frames/s per worker of the full longtail pipeline against a bare PyBullet render of the same
scenes, measured in the same run.

bare      : p.getCameraImage of the already-built world, same size and light settings (the floor)
pipeline  : longtail.pipeline.render_frames, as `longtail render` runs it on one worker: sample +
            build + render + label, with each frame's PNG/JSON written while the next renders
parts     : sample, build, render (bare + sky/night/fog + alone crops), annotate, write (the
            pipeline time not spent in the other parts: what writing adds after overlap)

Usage: python benchmarks/render_throughput.py [--frames N] [--width W --height H] [--scenarios A,B]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from longtail._pybullet import p
from longtail.labelers.annotate import annotate
from longtail.pipeline import engines, render_frame, render_frames
from longtail.render.capture import _get_image
from longtail.render.lighting import pybullet_light
from longtail.worlds.build import build
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import load_scenario

DEMO = "deer_on_dark_road,night_jaywalker,dense_fog_highway,fallen_cargo"


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench(name: str, frames: int, width: int, height: int, seed: int = 0) -> dict:
    sc = load_scenario(name).with_resolution(width, height)
    t = {k: 0.0 for k in ("sample", "build", "bare", "render", "annotate", "pipeline")}
    with engines() as eng, tempfile.TemporaryDirectory() as tmp:
        r = eng.renderer
        scenes = [sample(sc, seed, i, eng.physics) for i in range(frames)]
        render_frame(sc, seed, 0, eng, Path(tmp))  # warm-up (imports, caches)
        for i, scene in enumerate(scenes):
            t["sample"] += _timed(sample, sc, seed, i, eng.physics)[1]
            p.resetSimulation(physicsClientId=r.client)
            t["build"] += _timed(build, scene, r.client)[1]
            t["bare"] += _timed(lambda: _get_image(r.client, scene.camera, renderer=r.flag, **pybullet_light(scene)))[1]
            buf, dt = _timed(r.render, scene)
            t["render"] += dt
            t["annotate"] += _timed(annotate, scene, buf)[1]
        t["pipeline"] = _timed(lambda: list(render_frames(sc, seed, list(range(frames)), eng, Path(tmp))))[1]
    t["write"] = max(0.0, t["pipeline"] - t["sample"] - t["render"] - t["annotate"])
    return {k: v / frames for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--scenarios", default=DEMO)
    args = ap.parse_args()
    print(f"render throughput, one worker, {args.width}x{args.height}, {args.frames} frames per scenario")
    print(f"{'scenario':<20} {'bare f/s':>9} {'pipe f/s':>9} {'ratio':>6} | ms/frame: "
          f"{'sample':>6} {'build':>6} {'bare':>6} {'render':>6} {'label':>6} {'write':>6}")
    ratios = []
    for name in args.scenarios.split(","):
        m = bench(name, args.frames, args.width, args.height)
        ratio = m["bare"] / m["pipeline"]
        ratios.append(ratio)
        print(f"{name:<20} {1 / m['bare']:9.1f} {1 / m['pipeline']:9.1f} {ratio:6.2f} |           "
              f"{m['sample'] * 1e3:6.1f} {m['build'] * 1e3:6.1f} {m['bare'] * 1e3:6.1f} {m['render'] * 1e3:6.1f} "
              f"{m['annotate'] * 1e3:6.1f} {m['write'] * 1e3:6.1f}")
    print(f"pipeline / bare frame rate: min {min(ratios):.2f}, mean {sum(ratios) / len(ratios):.2f} (target >= 0.5)")
    print("('render' includes build, the bare render, sky/night/fog and the alone crops)")


if __name__ == "__main__":
    main()
