"""Seconds to load one epoch of training samples: loose files against WebDataset shards, measured
in the same run on the same frames in the same order.

Both sides load every frame once, in the stream order of one seed (what ``train --data wds:``
draws; ``longtail.train.stream_order``), as the training loop loads a step: the (3, H, W) uint8
image and the target of each sample, ``--batch`` at a time. Only data loading is timed (no model).

files        : ``SampledBatches({"data": SyntheticDataset(DIR)}, StreamSampler(...))`` - one PNG and,
               up front, one JSON record opened per frame, decoded in this process
shards       : ``StreamBatches(SHARDS, workers=0)`` - the tar shards read front to back by
               webdataset, decoded in this process (the same work, another storage)
shards xW    : the same with ``--workers`` data-loader processes decoding in parallel (what
               ``train --data wds:`` runs by default)

The sides run alternately ``--repeats`` times (the first pass of each warms the page cache and is
not counted); each figure is the best of the rest. "files/shards" (> 1: the shards load faster)
counts the files side's opening too, as the shards parse each record when its sample comes.
Without ``--data`` a dataset of ``--frames`` frames is rendered first (fallen_cargo, ``--size``)
and exported with ``--shard-size``.

Usage: python benchmarks/scale.py [--data DIR] [--frames 96] [--size 640x384] [--shard-size 32] [--batch 8]
       [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# see benchmarks/train_throughput.py: triton must not come after PyBullet's EGL plugin
sys.modules.setdefault("triton", None)


def _epoch_files(root: Path, spec, batch: int) -> tuple[float, float]:
    """(seconds to open the folder dataset, seconds to load one epoch from it)."""
    from longtail.train.datasets import SyntheticDataset
    from longtail.train.engine import SampledBatches
    from longtail.train.stream_order import StreamSampler

    t0 = time.perf_counter()
    data = SampledBatches({"data": SyntheticDataset(root)}, StreamSampler(spec, spec.frame_count // batch, batch))
    t1 = time.perf_counter()
    for step in range(data.steps):
        data.load(data.pairs(step))
    return t1 - t0, time.perf_counter() - t1


def _epoch_shards(root: Path, spec, batch: int, workers: int) -> float:
    """Seconds to load one epoch from the shard set (opening it included: shards.json only)."""
    from longtail.train.stream import StreamBatches

    t0 = time.perf_counter()
    data = StreamBatches(root, spec.frame_count // batch, batch, spec.seed, spec.buffer, workers)
    try:
        for step in range(data.steps):
            data.load(data.pairs(step))
    finally:
        data.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a rendered folder dataset (default: render one)")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", default="640x384", help="WxH of the rendered frames")
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--buffer", type=int, default=100, help="shuffle buffer per worker")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from longtail.dataset import Manifest
    from longtail.labelers.shard_export import export_shards
    from longtail.pipeline import render_dataset
    from longtail.train.stream_order import StreamSpec
    from longtail.worlds.scenario import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data
        if folder is None:
            w, h = (int(v) for v in args.size.split("x"))
            folder = Path(tmp) / "ds"
            t0 = time.perf_counter()
            render_dataset(load_scenario("fallen_cargo").with_resolution(w, h), folder, frames=args.frames, seed=0)
            print(f"rendered {args.frames} frames at {w}x{h} in {time.perf_counter() - t0:.0f} s")
        shards = Path(tmp) / "wds"
        export_shards(folder, shards, args.shard_size)
        n = Manifest.load(folder).frame_count
        size = sum(p.stat().st_size for p in shards.glob("shard-*.tar"))
        print(f"{n} frames, {len(list(shards.glob('shard-*.tar')))} shards of {args.shard_size} "
              f"({size / 2**20:.0f} MiB), batch {args.batch}, shuffle buffer {args.buffer}")
        # one stream (workers=0) for the files side and the in-process shards: the same order
        spec = StreamSpec(n, args.shard_size, 0, args.buffer, 0)
        best: dict[str, float] = {}
        open_s = float("inf")
        for r in range(args.repeats + 1):
            o, files = _epoch_files(folder, spec, args.batch)
            single = _epoch_shards(shards, spec, args.batch, 0)
            multi = _epoch_shards(shards, StreamSpec(n, args.shard_size, 0, args.buffer, args.workers), args.batch,
                                  args.workers)
            if r == 0:
                continue  # warm-up: page cache, imports, the first worker start
            open_s = min(open_s, o)
            for k, v in (("files", files), ("shards", single), (f"shards x{args.workers}", multi)):
                best[k] = min(best.get(k, float("inf")), v)
        samples = n // args.batch * args.batch
        print(f"files: open {open_s:.2f} s (every record read up front), then", end=" ")
        print(", ".join(f"{k} {v:.2f} s ({samples / v:.0f} samples/s)" for k, v in best.items()))
        files_s = best["files"] + open_s  # the shards parse each record as it comes: opening counts on both sides
        print(f"files/shards: {files_s / best['shards']:.2f} (both in one process), "
              f"{files_s / best[f'shards x{args.workers}']:.2f} (shards decoded by {args.workers} workers)")


if __name__ == "__main__":
    main()
