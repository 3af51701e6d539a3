"""Scaling out, measured in one run: render frames/s for 1 and 2 worker processes and for Ray with
the same CPUs (and each worker's RSS over the run), then seconds to load one epoch of training
samples from loose files against WebDataset shards.

Render (``--part render``): the same dataset (fallen_cargo, ``--size``, ``--render-frames``) is
rendered by ``process_pool(1)``, ``process_pool(2)`` and ``ray_backend(cpus=2)`` (a local Ray
instance started first and not timed), each into a new folder. Frames/s counts the whole run,
worker start-up included, and the steady rate between the first and the last shard recorded.
A thread samples every worker's RSS (/proc) as frames complete; the table prints each worker's
RSS near frame 100 and at the end. The outputs are compared byte for byte.

RSS (``--part rss``, not part of "both"): a ``--rss-frames`` (2,000) sharded render on Ray with
``--workers`` CPUs; each worker's RSS at frame 100, a quarter, half, three quarters and the end.

Loading (``--part load``): seconds to load one epoch of training samples, loose files against
WebDataset shards, on the same frames in the same order.

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

Usage: python benchmarks/scale.py [--part render|load|both|rss] [--render-frames 96] [--rss-frames 2000]
       [--data DIR] [--frames 96] [--size 640x384] [--shard-size 32] [--batch 8] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
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
    ap.add_argument("--part", choices=("render", "load", "both", "rss"), default="both",
                    help="rss: only a long sharded render on Ray with each worker's RSS (--rss-frames)")
    ap.add_argument("--rss-frames", type=int, default=2000)
    ap.add_argument("--render-frames", type=int, default=96, help="frames per render backend")
    ap.add_argument("--data", type=Path, help="a rendered folder dataset (default: render one)")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", default="640x384", help="WxH of the rendered frames")
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--buffer", type=int, default=100, help="shuffle buffer per worker")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("render", "both"):
            render_part(args, Path(tmp))
        if args.part in ("load", "both"):
            load_part(args, Path(tmp))
        if args.part == "rss":
            rss_part(args, Path(tmp))


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _workers() -> list[int]:
    """This process's render workers: spawned children of the pool, or Ray workers running a shard
    (Ray titles them ray::<function>)."""
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        spawned = ppid == me and b"multiprocessing.spawn" in cmd
        if cmd.startswith(b"ray::_shard") or spawned:
            out.append(int(name))
    return out


class _RssWatch:
    """Samples each worker's RSS every 0.2 s, tagged with the frames done at that moment."""

    def __init__(self, pids=_workers) -> None:
        self.pids = pids
        self.done = 0
        self.samples: dict[int, list[tuple[int, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids():
                rss = _rss_mib(pid)
                if rss is not None:
                    self.samples.setdefault(pid, []).append((self.done, rss))
            self._stop.wait(0.2)

    def __enter__(self) -> "_RssWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def table(self, at: int) -> list[str]:
        rows = []
        for pid, s in sorted(self.samples.items()):
            near = min(s, key=lambda d: abs(d[0] - at))
            rows.append(f"pid {pid}: {near[1]:.0f} MiB at frame {near[0]}, {s[-1][1]:.0f} MiB at frame {s[-1][0]} "
                        f"({s[-1][1] / near[1]:.2f}x)")
        return rows


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def render_part(args, tmp: Path) -> None:
    from longtail.cluster import ray_backend
    from longtail.pipeline import process_pool, render_dataset
    from longtail.worlds.scenario import load_scenario

    w, h = (int(v) for v in args.size.split("x"))
    scenario = load_scenario("fallen_cargo").with_resolution(w, h)
    n = args.render_frames
    t0 = time.perf_counter()
    ray = ray_backend(cpus=args.workers)  # a local Ray instance with the pool's CPUs (not timed)
    print(f"render: {n} frames of fallen_cargo at {w}x{h}; Ray started in {time.perf_counter() - t0:.1f} s")
    rates: dict[str, float] = {}
    trees = []
    for name, backend in (("1 process", process_pool(1)), (f"{args.workers} processes", process_pool(args.workers)),
                          (f"Ray, {args.workers} CPUs", ray)):
        out = tmp / name.replace(" ", "_").replace(",", "")
        marks: list[tuple[int, float]] = []
        with _RssWatch(_workers if name != "1 process" else lambda: [os.getpid()]) as watch:
            def progress(done: int, total: int) -> None:
                watch.done = done
                marks.append((done, time.perf_counter()))

            t0 = time.perf_counter()
            render_dataset(scenario, out, n, seed=0, progress=progress, backend=backend)
            wall = time.perf_counter() - t0
        first = next(m for m in marks if m[0] > 0)
        steady = (marks[-1][0] - first[0]) / (marks[-1][1] - first[1]) if marks[-1][1] > first[1] else float("nan")
        rates[name] = steady
        print(f"  {name}: {n / wall:.2f} frames/s whole run ({wall:.1f} s), {steady:.2f} frames/s steady")
        for row in watch.table(min(100, n // 2)):
            print(f"    {row}")
        trees.append(_tree(out))
    one, pool, ray_rate = rates.values()
    print(f"  {args.workers} processes / 1: {pool / one:.2f}x; Ray / {args.workers} processes: {ray_rate / pool:.2f}x; "
          f"outputs byte-identical: {all(t == trees[0] for t in trees)}")


def rss_part(args, tmp: Path) -> None:
    """A long sharded render on Ray (``--rss-frames``): each worker's RSS at frame 100 and later."""
    from longtail.cluster import ray_backend
    from longtail.shard_render import render_shards
    from longtail.worlds.scenario import load_scenario

    w, h = (int(v) for v in args.size.split("x"))
    n = args.rss_frames
    backend = ray_backend(cpus=args.workers)
    with _RssWatch() as watch:
        def progress(done: int, total: int) -> None:
            watch.done = done

        t0 = time.perf_counter()
        render_shards(load_scenario("fallen_cargo").with_resolution(w, h), tmp / "long", n, 0, args.shard_size,
                      progress=progress, backend=backend)
        wall = time.perf_counter() - t0
    print(f"sharded render of {n} frames at {w}x{h} on Ray ({args.workers} CPUs, shards of {args.shard_size}): "
          f"{wall:.0f} s, {n / wall:.2f} frames/s")
    marks = [m for m in (100, n // 4, n // 2, 3 * n // 4, n) if m >= 100]
    print("  worker RSS (MiB) at frame " + ", ".join(str(m) for m in marks) + "; last / frame 100:")
    for pid, samples in sorted(watch.samples.items()):
        at = [min(samples, key=lambda d: abs(d[0] - m))[1] for m in marks]
        print(f"    pid {pid} ({samples[0][0]}..{samples[-1][0]}): " + ", ".join(f"{v:.0f}" for v in at)
              + f"; {at[-1] / at[0]:.2f}x")


def load_part(args, tmp: Path) -> None:
    from longtail.dataset import Manifest
    from longtail.labelers.shard_export import export_shards
    from longtail.pipeline import render_dataset
    from longtail.train.stream_order import StreamSpec
    from longtail.worlds.scenario import load_scenario

    folder = args.data
    if folder is None:
        w, h = (int(v) for v in args.size.split("x"))
        folder = tmp / "ds"
        t0 = time.perf_counter()
        render_dataset(load_scenario("fallen_cargo").with_resolution(w, h), folder, frames=args.frames, seed=0)
        print(f"rendered {args.frames} frames at {w}x{h} in {time.perf_counter() - t0:.0f} s")
    shards = tmp / "wds"
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
