"""Frames/s per worker of the full longtail pipeline against a bare PyBullet render of the same
scenes, measured in the same run, with the cost of every step shown.

bare      : p.getCameraImage of the already-built world, same size, same light settings
            (shadows included where the scene has them)
flat      : p.getCameraImage of the same world with no shadows: the cheapest possible render
look      : the RGB look = bare + textures + sun shadows + night lights + sky + weather + anti-aliasing;
            reported as a ratio to `flat` (issue target: day look <= 3x at 640x384)
pipeline  : longtail.pipeline.render_frames, as `longtail render` runs it on one worker: sample +
            build + render + label, with each frame's PNG/JSON written while the next renders;
            reported as a rate ratio to `bare` (issue target: >= 0.5)
cpu       : the same ratio counted in CPU time (bare / the pipeline process's CPU seconds per frame,
            every thread counted): what one core gives when the writer thread has no second core

Rates are per image; "NAME+rig" renders NAME with three cameras (front, left, right) per frame.

"crowd" is examples/pets_scene.yaml (people at a junction, a PETS-like camera); with --plate DIR,
"plate" is six people composited onto that fitted plate (`longtail plate fit`), at the plate's size.

With --png it also encodes each scenario's frames (colour, depth, instance and semantic images)
with longtail's PNG encoder (``atomic.png_bytes``: OpenCV, a row filter per kind of image) and with Pillow
at the same zlib level (its adaptive per-row filters, what longtail used before), and prints the
CPU ms to encode, KiB, and CPU ms to decode (with Pillow) per frame of each.

Usage: python benchmarks/render_throughput.py [--frames N] [--sizes 640x384,1242x375] [--scenarios A,B]
       [--plate PLATE_DIR] [--png]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from PIL import Image

from longtail.atomic import png_bytes
from longtail.pipeline import compute_frame, engines, frame_scene, render_frames, render_scene
from longtail.render.capture import camera_image
from longtail.worlds.assets import forget_fitted_people
from longtail.worlds.layouts import static_world
from longtail.worlds.scenario import Scenario, load_scenario, parse_scenario

DEMO = "fallen_cargo,animal_herd,deer_on_dark_road,night_jaywalker,dense_fog_highway,fallen_cargo+rig,crowd"
RIG = "+rig"  # suffix: the same scenario seen by the front_sides rig (three cameras a frame)
CROWD = str(Path(__file__).resolve().parents[1] / "examples" / "pets_scene.yaml")
LOOK_STEPS = ("bare", "textures", "shadows", "night", "sky", "weather", "antialias")
SHOWN = ("sample", "build", "bare", "composite", "textures", "shadows", "night", "sky", "weather", "antialias",
         "alone", "label", "write")


def scenario(name: str, width: int, height: int, plate: str | None = None) -> Scenario:
    """The benchmark's scenario ``name`` (a catalog name or file, "crowd", "plate", NAME+rig) at
    width x height (a plate keeps its own size)."""
    if name == "plate":
        if plate is None:
            raise SystemExit("the plate scene needs --plate PLATE_DIR")
        return parse_scenario({"name": "plate", "description": "six people on a fitted plate",
                               "layout": {"kind": "plate"}, "plate": plate,
                               "events": [{"asset": "pedestrian", "count_range": [6, 6], "region": "ground",
                                           "distance_m_range": [6, 45], "heading_deg_range": [-180, 180]}]}, "bench")
    base = load_scenario(CROWD if name == "crowd" else name.removesuffix(RIG))
    if name.endswith(RIG):
        base = base.model_validate({**base.model_dump(), "camera": {**base.camera.model_dump(), "rig": "front_sides"}})
    return base.with_resolution(width, height)


def bench(name: str, frames: int, width: int, height: int, seed: int = 0, plate: str | None = None) -> dict:
    """Mean seconds per frame of every step for ``frames`` frames of scenario ``name``."""
    sc = scenario(name, width, height, plate)
    t: dict[str, float] = {}
    add = lambda k, dt: t.__setitem__(k, t.get(k, 0.0) + dt)  # noqa: E731
    with engines() as eng, tempfile.TemporaryDirectory() as tmp:
        r = eng.renderer
        list(render_frames(sc, seed, [0], eng, Path(tmp)))  # warm-up (imports, caches)
        for i in range(frames):
            t0 = time.perf_counter()
            eng.last = None if i % len(sc.camera.names()) == 0 else eng.last  # time a rig frame's draw once
            scene = frame_scene(sc, seed, i, eng)
            add("sample", time.perf_counter() - t0)
            render_scene(scene, r, t)
            t0 = time.perf_counter()
            camera_image(r.client, scene.camera, renderer=r.flag, shadow=0)
            add("flat", time.perf_counter() - t0)
        # the pipeline renders the frames just timed: forget what was computed for their content
        # (people fitted to their boxes, static worlds), which a real render computes once per
        # frame, so that it pays for it here too
        forget_fitted_people()
        static_world.cache_clear()
        t0, c0 = time.perf_counter(), time.process_time()
        list(render_frames(sc, seed, list(range(frames)), eng, Path(tmp)))
        add("pipeline", time.perf_counter() - t0)
        add("pipeline_cpu", time.process_time() - c0)  # all of the process's threads (the writer's too)
    m = {k: v / frames for k, v in t.items()}
    rendered = sum(m.get(k, 0.0) for k in ("build", "bare", "buffers", "composite", "textures", "shadows", "night",
                                          "sky", "weather", "antialias", "alone", "visibility"))
    m["write"] = max(0.0, m["pipeline"] - m["sample"] - rendered - m["label"])
    m["look"] = sum(m.get(k, 0.0) for k in LOOK_STEPS)
    return m


def pillow_png(array) -> bytes:
    """The PNG Pillow writes at zlib level 1 (adaptive row filters): longtail's encoder before."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_costs(name: str, frames: int, width: int, height: int, seed: int = 0, plate: str | None = None,
              repeats: int = 3) -> dict[str, tuple[float, float, float]]:
    """CPU ms to encode, KiB, and CPU ms to decode (Pillow, as longtail's readers do) per frame of
    ``frames`` frames' four images, per encoder (times: best of ``repeats`` passes)."""
    sc = scenario(name, width, height, plate)
    with engines() as eng:
        images = [a for i in range(frames) for a in compute_frame(sc, seed, i, eng).images.values()]
    out = {}
    for label, encode in (("pillow", pillow_png), ("longtail", png_bytes)):
        enc = dec = float("inf")
        for _ in range(repeats):
            t0 = time.thread_time()
            data = [encode(a) for a in images]
            t1 = time.thread_time()
            for b in data:
                with Image.open(io.BytesIO(b)) as img:
                    img.load()
            enc, dec = min(enc, t1 - t0), min(dec, time.thread_time() - t1)
        out[label] = (enc / frames * 1e3, sum(map(len, data)) / frames / 1024, dec / frames * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--sizes", default="640x384,1242x375")
    ap.add_argument("--scenarios", default=DEMO)
    ap.add_argument("--plate", help="a fitted plate directory: adds the plate scene")
    ap.add_argument("--png", action="store_true",
                    help="also compare the PNG encoders (encode and decode CPU ms, KiB per frame)")
    args = ap.parse_args()
    if args.plate and "plate" not in args.scenarios.split(","):
        args.scenarios += ",plate"
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        print(f"\n{w}x{h}, one worker, {args.frames} frames per scenario; ms per frame")
        print(f"{'scenario':<20} {'bare f/s':>8} {'pipe f/s':>8} {'pipe/bare':>9} {'cpu':>5} {'look/flat':>9} | "
              + " ".join(f"{k:>7}" for k in SHOWN))
        ratios, looks = [], []
        for name in args.scenarios.split(","):
            m = bench(name, args.frames, w, h, plate=args.plate)
            ratio, look = m["bare"] / m["pipeline"], m["look"] / m["flat"]
            ratios.append(ratio)
            looks.append(look)
            print(f"{name:<20} {1 / m['bare']:8.1f} {1 / m['pipeline']:8.1f} {ratio:9.2f} "
                  f"{m['bare'] / m['pipeline_cpu']:5.2f} {look:9.2f} | "
                  + " ".join(f"{m.get(k, 0.0) * 1e3:7.1f}" for k in SHOWN))
        print(f"pipeline/bare rate: min {min(ratios):.2f}, mean {sum(ratios) / len(ratios):.2f} (target >= 0.5); "
              f"look/flat cost: max {max(looks):.2f} (target <= 3 for the day look at 640x384)")
        if args.png:
            print(f"\nPNG per frame (colour, depth, instance, semantic): encode CPU ms, KiB, decode CPU ms (Pillow); "
                  f"best of 3 passes\n{'scenario':<20} {'encode: Pillow':>14} {'longtail':>9} | {'KiB: Pillow':>11} "
                  f"{'longtail':>9} | {'decode: Pillow':>14} {'longtail':>9}")
            for name in args.scenarios.split(","):
                c = png_costs(name, args.frames, w, h, plate=args.plate)
                (pe, pk, pd), (le, lk, ld) = c["pillow"], c["longtail"]
                print(f"{name:<20} {pe:14.1f} {le:9.1f} | {pk:11.0f} {lk:9.0f} | {pd:14.1f} {ld:9.1f}")

if __name__ == "__main__":
    main()
