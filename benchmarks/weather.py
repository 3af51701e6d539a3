"""Milliseconds per frame of each longtail weather transform against albumentations' nearest
built-in, measured in the same run on the same rendered frame, calls interleaved.

pair      longtail            albumentations 2.0.8 (defaults, p=1)
fog       DepthFog            RandomFog          target: longtail >= 5x faster
rain      DepthRain           RandomRain         target: longtail at most 2x slower
snow      DepthSnow           RandomSnow         "
glare     SunGlare            RandomSunFlare     "
night     DayToNight          ISONoise           no night built-in: sensor noise is the nearest

Both run inside an ``A.Compose`` (longtail's with ``depth`` as an additional target) on uint8
frames rendered by the pipeline (fallen_cargo, day). OpenCV runs on ``--threads`` threads (1 by
default: the one-core figures of shared/REFERENCES.md). The ms columns are medians; "speed-up"
is the median over the interleaved call pairs of built-in ms / longtail ms (> 1: longtail is
faster), so a stretch where the machine slows both calls (a virtual machine's neighbours, a
frequency change) moves it less than it moves a ratio of the two medians. The verdict is read
from it.

``--clock cpu`` (the default) times each call by the CPU time of this process
(``time.process_time``, every thread of it), ``--clock wall`` by the wall clock. On an idle
machine the two agree; on a shared one the wall clock also counts the time the call waits for a
core while other processes run, and a longer call is preempted more often than a short one
(the scheduler's slices are a few milliseconds), which skews the ratio against it.

Rain and snow end in one compiled pass on 8-bit frames (``render/weather/fused.py``, numba): its
time against the OpenCV passes it replaces is printed below the table, with the one-time cost
of its first call in a process (compiling it, or loading numba's on-disk cache of it), which the
warm-up calls absorb.

Usage: python benchmarks/weather.py [--repeats N] [--threads T] [--sizes 640x384,1242x375] [--clock cpu|wall]
       python benchmarks/weather.py --side-by-side DIR   (one PNG per preset: clear | longtail | built-in)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np

from longtail.atomic import write_png
from longtail.pipeline import render_scene
from longtail.render.capture import Renderer
from longtail.render.weather import fused
from longtail.render.weather.particles import _transmitted
from longtail.render.weather.presets import get_preset, list_presets
from longtail.render.weather.transforms import FrameCamera, DayToNight, DepthFog, DepthRain, DepthSnow, SunGlare
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import load_scenario

SCENARIO = "fallen_cargo"
PAIRS = {  # name: (longtail transform factory, built-in factory, the most longtail may cost relative to it)
    "fog": (lambda cam: DepthFog(camera=cam, p=1.0), lambda: A.RandomFog(p=1.0), 0.2),
    "rain": (lambda cam: DepthRain(camera=cam, p=1.0), lambda: A.RandomRain(p=1.0), 2.0),
    "snow": (lambda cam: DepthSnow(camera=cam, p=1.0), lambda: A.RandomSnow(p=1.0), 2.0),
    "glare": (lambda cam: SunGlare(camera=cam, p=1.0), lambda: A.RandomSunFlare(p=1.0), 2.0),
    "night": (lambda cam: DayToNight(camera=cam, p=1.0), lambda: A.ISONoise(p=1.0), None),
}
NEAREST_BUILTIN = {  # preset -> the albumentations pipeline that comes closest, for the pictures
    "light_fog": lambda: [A.RandomFog(fog_coef_range=(0.2, 0.3), p=1.0)],
    "dense_fog": lambda: [A.RandomFog(fog_coef_range=(0.7, 0.9), p=1.0)],
    "ground_fog": lambda: [A.RandomFog(fog_coef_range=(0.5, 0.7), p=1.0)],
    "heavy_rain": lambda: [A.RandomRain(rain_type="heavy", p=1.0)],
    "night_rain": lambda: [A.RandomRain(p=1.0), A.RandomBrightnessContrast((-0.6, -0.5), (0.0, 0.0), p=1.0)],
    "heavy_snow": lambda: [A.RandomSnow(p=1.0)],
    "low_sun": lambda: [A.RandomSunFlare(p=1.0)],
    "dusk": lambda: [A.RandomBrightnessContrast((-0.5, -0.4), (0.0, 0.0), p=1.0)],
    "night": lambda: [A.RandomBrightnessContrast((-0.65, -0.55), (0.0, 0.0), p=1.0), A.ISONoise(p=1.0)],
}


def rendered_frame(width: int, height: int, seed: int = 4, index: int = 0):
    """(rgb uint8, depth float32 metres with inf sky, FrameCamera) of a rendered day frame."""
    scene = sample(load_scenario(SCENARIO).with_resolution(width, height), seed, index)
    with Renderer() as r:
        buf = render_scene(scene, r)
    cam = scene.camera
    return buf.rgb, buf.depth, FrameCamera(K=cam.K.tolist(), world_from_camera=cam.world_from_camera().tolist())


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _timed(fn, clock=time.process_time) -> float:
    t = clock()
    fn()
    return (clock() - t) * 1e3


def bench_pair(ours: A.Compose, theirs: A.Compose, rgb: np.ndarray, depth: np.ndarray, repeats: int,
               clock=time.process_time) -> tuple[float, float, float]:
    """Median ms of each, calls interleaved so both see the same machine load, and the median of
    the pairs' ratios theirs / ours."""
    return bench_pair_fns(lambda: ours(image=rgb, depth=depth), lambda: theirs(image=rgb), repeats, clock)


def run_benchmark(sizes: list[tuple[int, int]], repeats: int, clock=time.process_time) -> list[dict]:
    rows = []
    for w, h in sizes:
        rgb, depth, cam = rendered_frame(w, h)
        for name, (ours, theirs, limit) in PAIRS.items():
            mine = A.Compose([ours(cam)], additional_targets={"depth": "mask"}, seed=0)
            builtin = A.Compose([theirs()], seed=0)
            ms_ours, ms_builtin, speedup = bench_pair(mine, builtin, rgb, depth, repeats, clock)
            rows.append({"pair": name, "size": f"{w}x{h}", "longtail": type(mine.transforms[0]).__name__,
                         "builtin": type(builtin.transforms[0]).__name__, "ms_longtail": ms_ours,
                         "ms_builtin": ms_builtin, "speedup": speedup, "limit": limit})
    return rows


def first_fused_call() -> float:
    """Seconds of the fused pass's first call in this process (numba import and compile, or
    the load of its cached machine code)."""
    t = time.perf_counter()
    fused.blend_upsampled(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32))
    return time.perf_counter() - t


def bench_fused(sizes: list[tuple[int, int]], repeats: int, clock=time.process_time) -> list[dict]:
    """Median ms of the composite's last step (``image T + low`` from half resolution) fused
    against OpenCV's passes (resizes, grey-to-RGB, product, sum), on a rendered frame with a
    smooth T and light."""
    rows = []
    for w, h in sizes:
        rgb = rendered_frame(w, h)[0]
        rng = np.random.default_rng(0)
        T = cv2.GaussianBlur(rng.random((-(-h // 2), w // 2), dtype=np.float32), (0, 0), 2.0)
        low = cv2.GaussianBlur(rng.integers(0, 120, (*T.shape, 3), dtype=np.uint8), (0, 0), 2.0)

        def opencv():
            out = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
            return cv2.add(out, _transmitted(rgb, T), dst=out)

        ms_fused, ms_cv, speedup = bench_pair_fns(lambda: fused.blend_upsampled(rgb, low, T), opencv, repeats, clock)
        rows.append({"size": f"{w}x{h}", "ms_fused": ms_fused, "ms_opencv": ms_cv, "speedup": speedup})
    return rows


def bench_pair_fns(a, b, repeats: int, clock=time.process_time) -> tuple[float, float, float]:
    """Median ms of two calls, interleaved, after three warm-up calls of each, and the median of
    the per-pair ratios b / a."""
    for _ in range(3):
        a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_timed(a, clock))
        tb.append(_timed(b, clock))
    return statistics.median(ta), statistics.median(tb), statistics.median(y / x for x, y in zip(ta, tb))


def verdict(row: dict) -> str:
    if row["limit"] is None:
        return "(no counterpart)"
    ok = row["speedup"] >= 1.0 / row["limit"]
    want = f">= {1 / row['limit']:.0f}x faster" if row["limit"] < 1 else f"<= {row['limit']:.0f}x slower"
    return f"{'ok' if ok else 'MISSED'} (target {want})"


def side_by_side(out: Path, width: int = 640, height: int = 384, strength: float = 0.8) -> list[Path]:
    """Per preset, one PNG: clear | longtail preset | nearest albumentations built-in."""
    rgb, depth, cam = rendered_frame(width, height)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in list_presets():
        ours = get_preset(name)(strength, camera=cam, seed=1)(image=rgb, depth=depth)["image"]
        theirs = A.Compose(NEAREST_BUILTIN.get(name, lambda: [])(), seed=1)(image=rgb)["image"]
        panels = []
        for label, img in (("clear", rgb), (f"longtail {name} {strength:g}", ours),
                           ("albumentations: " + ", ".join(type(t).__name__ for t in NEAREST_BUILTIN[name]()), theirs)):
            img = np.ascontiguousarray(img.copy())
            cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
            panels.append(img)
        path = out / f"{name}.png"
        write_png(path, np.concatenate(panels, axis=1))
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50, help="timed calls per transform (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: one core)")
    ap.add_argument("--sizes", default="640x384,1242x375", help="comma-separated WxH")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: this process's CPU time per call (default); wall: the wall clock")
    ap.add_argument("--side-by-side", type=Path, metavar="DIR", help="write clear | longtail | built-in PNGs here")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    if args.side_by_side:
        for path in side_by_side(args.side_by_side):
            print(path)
        return
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    first = first_fused_call()
    rows = run_benchmark(sizes, args.repeats, CLOCKS[args.clock])
    print(f"albumentations {A.__version__}, OpenCV {cv2.__version__} on {args.threads} thread(s), "
          f"median {args.clock} time of {args.repeats} interleaved calls, uint8 frames of {SCENARIO}")
    print(f"{'pair':6} {'size':9} {'longtail':10} {'ms':>7}  {'built-in':15} {'ms':>7}  {'speed-up':>8}  verdict")
    for r in rows:
        print(f"{r['pair']:6} {r['size']:9} {r['longtail']:10} {r['ms_longtail']:7.2f}  {r['builtin']:15} "
              f"{r['ms_builtin']:7.2f}  {r['speedup']:7.2f}x  {verdict(r)}")
    print(f"\nrain/snow composite, last step (image T + low from half resolution), median {args.clock} ms; "
          f"first call in this process {first:.2f} s (numba compile or cache load)")
    for r in bench_fused(sizes, args.repeats, CLOCKS[args.clock]):
        print(f"  {r['size']:9} fused {r['ms_fused']:6.3f}  OpenCV passes {r['ms_opencv']:6.3f}  "
              f"({r['speedup']:.2f}x faster fused)")


if __name__ == "__main__":
    main()
