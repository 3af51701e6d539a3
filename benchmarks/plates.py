"""Composites per second into a real plate against plain rendering of the same actors, in the
same run (goal: compositing costs little, >= 0.8x).

plain     : build the actors' world and render it with the plate's camera (getCameraImage + id
            buffers), the work any render of those actors needs
composite : the full plate frame: plain + depth test against the plate, occluders, contact
            shadows, light matching, anti-aliasing (+ the alone crops every frame pays for labels)

Usage: python benchmarks/plates.py PLATE_DIR [--frames N]
       (make a plate with `longtail plate fit SEQUENCE --out PLATE_DIR ...`)
"""

from __future__ import annotations

import argparse
import time

from longtail.pipeline import engines, render_scene
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import parse_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plate")
    ap.add_argument("--frames", type=int, default=10)
    args = ap.parse_args()
    sc = parse_scenario({"name": "bench", "description": "d", "layout": {"kind": "plate"}, "plate": args.plate,
                         "events": [{"asset": "pedestrian", "count_range": [6, 6], "region": "ground",
                                     "distance_m_range": [6, 45], "heading_deg_range": [-180, 180]}]}, "bench")
    t: dict[str, float] = {}
    with engines() as eng:
        scenes = [sample(sc, 0, i, eng.physics) for i in range(args.frames + 1)]
        render_scene(scenes[0], eng.renderer)  # warm-up
        t0 = time.perf_counter()
        for s in scenes[1:]:
            render_scene(s, eng.renderer, t)
        total = time.perf_counter() - t0
    n = args.frames
    plain = (t["build"] + t["bare"] + t["buffers"]) / n
    full = total / n
    print(f"{scenes[0].camera.width}x{scenes[0].camera.height}, {n} frames, 6 pedestrians; ms per frame")
    print("  " + ", ".join(f"{k} {v / n * 1e3:.1f}" for k, v in t.items()))
    print(f"plain render {1 / plain:.1f} frames/s, composite {1 / (full - t['alone'] / n):.1f} frames/s "
          f"(ratio {plain / (full - t['alone'] / n):.2f}, goal >= 0.8); with label crops {1 / full:.1f} frames/s")


if __name__ == "__main__":
    main()
