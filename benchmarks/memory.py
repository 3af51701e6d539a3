"""Resident memory of a one-worker render as frames go by: flat, or growing per frame?

Each case renders in a fresh subprocess through ``longtail.pipeline.render_dataset`` (what
`longtail render --workers 1` runs: sample, build, render, label, write, manifest) and reads the
process's RSS from /proc after chosen frame counts. The baseline, measured in the same run, is the
RSS of the same process after its imports and the render engines are open, before any frame.

cases (640x384 unless --width/--height say otherwise)
  crowd : examples/pets_scene.yaml, 5-17 people of ~20 parts each, fog and night in the mix
  night : night_rain_city (deferred night lighting, rain, a pedestrian, cars)
  plate : people composited into a synthetic plate (a fitted camera over a real-looking ground)
  rig   : fallen_cargo seen by the front_sides rig (three cameras a frame, counted as images)

Goal (issue #16): RSS grows < 15 % between frame 40 and frame 1,000, and stays < 600 MB.

Usage: python benchmarks/memory.py [--frames 1000] [--at 40,100,250,500,1000] [--cases crowd,night,plate,rig]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("crowd", "night", "plate", "rig")


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def _synthetic_plate(tmp: Path, width: int, height: int) -> Path:
    """A plate fitted to one made-up frame: grey road below a horizon, sky above, some texture."""
    import numpy as np
    from PIL import Image

    from longtail.worlds.plates import fit_plate

    rng = np.random.default_rng(0)
    img = np.empty((height, width, 3), np.uint8)
    horizon = height // 4
    img[:horizon] = (170, 180, 195)
    img[horizon:] = (95, 95, 92)
    img[horizon:] += rng.integers(0, 25, (height - horizon, width, 1), dtype=np.uint8)
    (tmp / "frames").mkdir()
    Image.fromarray(img).save(tmp / "frames" / "000001.png")
    (tmp / "camera.yaml").write_text(f"fx: {0.9 * width:.1f}\nheight_m: 6\npitch_deg: 14\n")
    fit_plate(tmp / "frames", tmp / "plate", camera_yaml=tmp / "camera.yaml")
    return tmp / "plate"


def scenario(case: str, width: int, height: int, tmp: Path):
    from longtail.worlds.scenario import load_scenario, parse_scenario

    if case == "crowd":
        sc = load_scenario(str(ROOT / "examples" / "pets_scene.yaml"))
    elif case == "night":
        sc = load_scenario("night_rain_city")
    elif case == "rig":
        base = load_scenario("fallen_cargo")
        sc = base.model_validate({**base.model_dump(), "camera": {**base.camera.model_dump(), "rig": "front_sides"}})
    elif case == "plate":
        plate = _synthetic_plate(tmp, width, height)
        sc = parse_scenario({"name": "mem_plate", "description": "people on a plate", "layout": {"kind": "plate"},
                             "plate": str(plate), "coverage": {"fog": 0.3, "night": 0.3},
                             "events": [{"asset": "pedestrian", "count_range": [3, 8], "region": "ground",
                                         "distance_m_range": [8, 40], "heading_deg_range": [-180, 180]}]},
                            "mem_plate")
    else:
        raise SystemExit(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    return sc.with_resolution(width, height)


def child(case: str, frames: int, at: list[int], width: int, height: int) -> None:
    """Render ``frames`` images of ``case`` in this process; print one JSON line of RSS readings."""
    from longtail.pipeline import engines, render_dataset

    with tempfile.TemporaryDirectory() as tmp:
        sc = scenario(case, width, height, Path(tmp))
        with engines():  # open (and close) the engines once so the baseline includes what they load
            pass
        readings = {"baseline": rss_mb()}
        images_per_frame = len(sc.camera.names())

        def progress(done: int, total: int) -> None:
            if done in at:
                readings[str(done)] = rss_mb()

        render_dataset(sc, Path(tmp) / "out", -(-frames // images_per_frame), seed=0, workers=1, progress=progress)
    print(json.dumps(readings), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000, help="images rendered per case")
    ap.add_argument("--at", default="40,100,250,500,1000", help="image counts at which RSS is read")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    at = sorted({int(a) for a in args.at.split(",") if int(a) <= args.frames})
    if args.child:
        child(args.child, args.frames, at, args.width, args.height)
        return 0
    print(f"RSS (MiB) of a one-worker render at {args.width}x{args.height}; baseline = engines open, no frame")
    print(f"{'case':6s} {'baseline':>8s} " + " ".join(f"{a:>7d}" for a in at) + f"  {'last/' + str(at[0]):>9s}")
    worst = 0.0
    for case in args.cases.split(","):
        run = subprocess.run([sys.executable, __file__, "--child", case, "--frames", str(args.frames),
                              "--at", ",".join(map(str, at)), "--width", str(args.width), "--height", str(args.height)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"{case}: failed: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        ratio = r[str(at[-1])] / r[str(at[0])]
        worst = max(worst, ratio)
        print(f"{case:6s} {r['baseline']:8.0f} " + " ".join(f"{r[str(a)]:7.0f}" for a in at) + f"  {ratio:9.3f}")
    print(f"largest growth {worst:.3f}x (goal < 1.15x, every reading < 600 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
