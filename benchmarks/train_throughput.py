"""Training and evaluation images/s of longtail's loop against a bare torchvision loop over the
same tensors, measured in the same run, with the cost of every step of longtail's loop shown.

Both sides get the same model (``ModelSpec(name, img_size=frame size, options=box head).build(seed)``,
the RoI box head as ``longtail train`` gives it by default (``--box-head-norm auto``), a fresh
copy each), the same batches (the sampler's ``(source, index)`` pairs of every step), the same
batch size, device, threads and AdamW settings (lr, weight decay).

bare train : the images decoded once up front and kept in memory as float [0, 1] tensors on the
             device, with their training targets; per step
             ``loss = sum(model(images, targets).values()); opt.zero_grad(); loss.backward(); opt.step()``
             (bfloat16 autocast on CUDA when longtail's config uses it, as longtail does)
longtail   : ``longtail.train.engine.train`` on the dataset, as ``longtail train`` runs it: PNG
             decode and targets per step, flips, lr schedule, torch RNG seeded per step,
             deterministic kernels on the CPU, finite-loss check, gradient clipping, EMA update,
             one metrics.jsonl line per step, a checkpoint every ``checkpoint_every`` steps
timing      : the two loops run interleaved, one bare step inside longtail's ``progress`` callback
             after each of longtail's steps, so both see the same machine (a shared CPU is noisy).
             Each loop's first W steps are warm-up (allocator, oneDNN caches) and not timed; then
             N steps each. A longtail step is timed from the callback's return to its next call,
             so everything the loop does per step is in it; the bare steps run with torch's
             default (non-deterministic) kernels. The run has one step more, so its final
             checkpoint falls outside the window; the checkpoint is added back amortised (its
             measured time / checkpoint_every per step). Rates use the median step; train/bare
             is the median over the timed steps of bare step time / longtail step time, each
             pair run back to back on the same batch (issue target >= 0.9: the data path must
             not starve the model); "best" is the ratio of the fastest steps of each, the
             estimate least moved by other processes' load on a shared machine.
eval        : ``longtail.train.evaluate.evaluate`` (predict: PNG decode + model + COCO results;
             then COCOeval scoring overall and per condition) against a bare
             ``model.eval(); with torch.no_grad(): model(images)`` over the same preloaded
             images in batches of the same size, after one untimed pass of each, then
             alternated ``--eval-repeats`` times, best of each; eval/bare is the rate ratio of
             the whole ``evaluate`` and of its ``predict`` part alone.

The per-step breakdown (median ms per step) wraps longtail's own functions with timers: load (read the
batch's PNGs and targets), prepare (targets, flips, to device), optimize (forward, backward,
clip, step), ema, other (sampler, lr, RNG fork/seed, .item(), JSON line, flush), ckpt (amortised).

insertion  : with ``--insert SCENARIO``, the batches of the same steps loaded with actors inserted
             into every image (``train.insert``, p = 1) against loaded without, interleaved per
             step; the extra load time is set against longtail's median training step
             (issue target: a step with insertion within 1.1x of a plain one). The actor bank is
             built once before (its time printed apart).

Usage: python benchmarks/train_throughput.py [--model NAME[,NAME]] [--batch B] [--steps N]
       [--warmup W] [--frames F] [--size WxH] [--data DIR] [--device auto|cpu|cuda] [--insert SCENARIO]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

# PyBullet's EGL plugin and triton (imported by torch._dynamo under torchvision) crash the process
# when triton comes after it; nothing here compiles a model (as in tests/test_train.py).
sys.modules.setdefault("triton", None)

import torch  # noqa: E402

from longtail.errors import ParameterError  # noqa: E402
from longtail.train import engine  # noqa: E402
from longtail.train import evaluate as evaluation  # noqa: E402
from longtail.train.datasets import open_dataset  # noqa: E402
from longtail.train.engine import SampledBatches, TrainConfig, resolve_device, train, training_target  # noqa: E402
from longtail.train.models import (  # noqa: E402
    BOX_HEAD_AUTO, DEFAULT_MODEL, ModelSpec, box_head_options, check_box_head_norm)

PARTS = ("load", "prepare", "optimize", "ema", "other")


class Timers:
    """Wraps functions so their seconds add up under a name (CUDA is synchronised around them)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.t: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.on = False

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def wrap(self, name: str, fn):
        def timed(*a, **kw):
            if not self.on:
                return fn(*a, **kw)
            self.sync()
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.sync()
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0
                self.calls[name] = self.calls.get(name, 0) + 1
        return timed


@contextlib.contextmanager
def instrumented(timers: Timers):
    """Timers around longtail's own per-step functions, restored afterwards."""
    saved = [(engine.SampledBatches, "load"), (engine, "prepare_batch"), (engine, "_optimize"),
             (engine.Ema, "update"), (engine, "save_checkpoint"), (evaluation, "predict")]
    names = ("load", "prepare", "optimize", "ema", "checkpoint", "predict")
    old = [getattr(obj, attr) for obj, attr in saved]
    for (obj, attr), name, fn in zip(saved, names, old):
        setattr(obj, attr, timers.wrap(name, fn))
    try:
        yield
    finally:
        for (obj, attr), fn in zip(saved, old):
            setattr(obj, attr, fn)


def preload(dataset, spec: ModelSpec, device: torch.device) -> tuple[list[torch.Tensor], list[dict]]:
    """Every image as a float [0, 1] tensor on ``device`` and its training target (not timed)."""
    images = [dataset.image(i).to(device).float().div_(255) for i in range(len(dataset))]
    targets = [{k: v.to(device) for k, v in training_target(dataset.target(i), spec.labels).items()}
               for i in range(len(dataset))]
    return images, targets


class BareLoop:
    """The bare torchvision loop, one step per call, on its own copy of the model."""

    def __init__(self, spec: ModelSpec, data: SampledBatches, images: list, targets: list, cfg: TrainConfig,
                 device: torch.device, seed: int):
        self.data, self.images, self.targets, self.device = data, images, targets, device
        self.model = spec.build(seed).to(device).train()
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.amp = cfg.amp and device.type == "cuda"
        self.step = 0

    def __call__(self) -> float:
        """Seconds of the next step."""
        idx = [i for _, i in self.data.pairs(self.step)]
        self.step += 1
        t0 = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            losses = self.model([self.images[i] for i in idx], [self.targets[i] for i in idx])
        loss = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


@contextlib.contextmanager
def nondeterministic():
    """torch's default (non-deterministic) kernels inside, whatever ``train`` switched on."""
    was, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)


def interleaved_train(spec: ModelSpec, data: SampledBatches, images: list, targets: list, warmup: int,
                      steps: int, cfg: TrainConfig, device: torch.device, seed: int,
                      timers: Timers) -> tuple[list[float], list[float], list[dict], float]:
    """Per-step seconds of longtail's steps warmup+1..warmup+steps and of as many bare steps run
    between them (from longtail's ``progress`` callback, so both see the same machine), each
    timed step's seconds per part of longtail's loop, and the seconds of one checkpoint save."""
    bare = BareLoop(spec, data, images, targets, cfg, device, seed)
    lt_s: list[float] = []
    bare_s: list[float] = []
    parts: list[dict] = []
    state = {"resumed": 0.0, "before": {}}

    def progress(done: int, total: int, line: dict) -> None:
        now = time.perf_counter()
        if warmup < done <= warmup + steps:
            lt_s.append(now - state["resumed"])
            parts.append({k: v - state["before"].get(k, 0.0) for k, v in timers.t.items()})
        if done <= warmup + steps:  # the last step (its final checkpoint) is left out
            with nondeterministic():
                dt = bare()
            if done > warmup:
                bare_s.append(dt)
        state["before"] = dict(timers.t)
        state["resumed"] = time.perf_counter()

    torch.manual_seed(seed)
    model = spec.build(seed)
    with tempfile.TemporaryDirectory() as tmp, instrumented(timers):
        timers.on, timers.t, timers.calls = True, {}, {}
        train(model, data, warmup + steps + 1, spec=spec, out_dir=Path(tmp) / "run", seed=seed, device=device,
              config=cfg, progress=progress)
        timers.on = False
    ckpt = timers.t.get("checkpoint", 0.0) / max(1, timers.calls.get("checkpoint", 0))
    return lt_s, bare_s, parts, ckpt


def bare_eval(model, images: list, batch: int, device: torch.device) -> float:
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            out = model(images[start:start + batch])
            out[-1]["boxes"].cpu()  # wait for the device (a no-op on the CPU)
    return time.perf_counter() - t0


def longtail_eval(model, dataset, spec: ModelSpec, batch: int, device: torch.device,
                  timers: Timers) -> tuple[float, float]:
    """(seconds of evaluate(), seconds of its predict part)."""
    with instrumented(timers):
        timers.on, timers.t = True, {}
        t0 = time.perf_counter()
        evaluation.evaluate(model, dataset, device, labels=spec.labels, batch=batch)
        total = time.perf_counter() - t0
        timers.on = False
    return total, timers.t.get("predict", 0.0)


def bench(name: str, dataset, size: tuple[int, int], batch: int, warmup: int, steps: int, device: torch.device,
          seed: int, cfg: TrainConfig, eval_repeats: int, box_head_norm: str = BOX_HEAD_AUTO) -> dict:
    w, h = size
    spec = ModelSpec(name=name, img_size=(h, w), options=box_head_options(check_box_head_norm(box_head_norm, name)))
    data = SampledBatches.single(dataset, warmup + steps + 1, batch, seed)
    images, targets = preload(dataset, spec, device)
    timers = Timers(device)
    lt_s, bare_s, parts, ckpt = interleaved_train(spec, data, images, targets, warmup, steps, cfg, device, seed,
                                                  timers)
    med = statistics.median
    m: dict = {"ckpt_s": ckpt, "bare_ms": med(bare_s) * 1e3}
    amortised = ckpt / cfg.checkpoint_every
    m["bare_ips"], m["lt_ips"] = batch / med(bare_s), batch / (med(lt_s) + amortised)
    m["paired"] = med(b / (t + amortised) for b, t in zip(bare_s, lt_s))
    m["best"] = min(bare_s) / (min(lt_s) + amortised)
    m["ms"] = {k: med(p.get(k, 0.0) for p in parts) * 1e3 for k in PARTS[:-1]}
    m["ms"]["other"] = med(t - sum(p.get(k, 0.0) for k in PARTS[:-1]) for t, p in zip(lt_s, parts)) * 1e3
    m["ms"]["ckpt"] = amortised * 1e3

    model = spec.build(seed).to(device)
    bare_eval(model, images, batch, device)  # warm-up
    evaluation.predict(model, dataset, spec.labels, device, batch)  # warm-up
    runs = []
    for _ in range(eval_repeats):  # alternated, best of each: the machine may be shared
        ev, pred = longtail_eval(model, dataset, spec, batch, device, timers)
        runs.append((ev, pred, bare_eval(model, images, batch, device)))
    ev, pred, be = (min(r[i] for r in runs) for i in range(3))
    k = len(dataset)
    m.update(ev_ips=k / ev, pred_ips=k / pred, bare_ev_ips=k / be, score_ms=(ev - pred) / k * 1e3)
    return m


def insert_cost(dataset, scenario_path: str, batch: int, steps: int, seed: int) -> dict:
    """Median ms to load a batch with and without insertion, the same pairs and rng per step."""
    import numpy as np

    from longtail.train.insert import ActorBank, Inserter
    from longtail.worlds.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    t0 = time.perf_counter()
    bank = ActorBank(scenario)
    bank_s = time.perf_counter() - t0
    plain = SampledBatches.single(dataset, steps + 2, batch, seed)
    inserted = SampledBatches.single(dataset, steps + 2, batch, seed, insert=Inserter(scenario, bank))
    with_ins, without = [], []
    for step in range(steps + 2):
        pairs = plain.pairs(step)
        t0 = time.perf_counter()
        plain.load(pairs, np.random.default_rng([seed, step]))
        t1 = time.perf_counter()
        inserted.load(pairs, np.random.default_rng([seed, step]))
        t2 = time.perf_counter()
        if step >= 2:  # the first ones fill caches (ground maps, sprite lookups)
            without.append(t1 - t0)
            with_ins.append(t2 - t1)
    med = statistics.median
    return {"bank_s": bank_s, "plain_ms": med(without) * 1e3, "insert_ms": med(with_ins) * 1e3}


def render(frames: int, size: tuple[int, int], out: Path, seed: int, scenario: str) -> None:
    from longtail.pipeline import render_dataset
    from longtail.worlds.scenario import load_scenario

    render_dataset(load_scenario(scenario).with_resolution(*size), out, frames=frames, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="one or more torchvision detector names, comma-separated")
    ap.add_argument("--box-head-norm", default=BOX_HEAD_AUTO,
                    help="RoI box head, as `longtail train --box-head-norm` (default auto: layer for a Faster R-CNN)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per loop")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    ap.add_argument("--frames", type=int, default=16, help="frames to render (without --data)")
    ap.add_argument("--size", default="320x192", help="WxH of the rendered frames and the model input")
    ap.add_argument("--scenario", default="fallen_cargo", help="scenario to render (without --data)")
    ap.add_argument("--data", type=Path, help="a longtail dataset dir to use instead of rendering one")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--eval-repeats", type=int, default=3, help="evaluation passes of each (best taken)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--insert", metavar="SCENARIO", help="also time loading batches with this scenario's actors "
                    "inserted into every image")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    try:  # each model's RoI box head, checked before any work (an explicit head may not fit every model)
        heads = {name: check_box_head_norm(args.box_head_norm, name) for name in args.model.split(",")}
    except ParameterError as e:
        ap.error(f"--box-head-norm {args.box_head_norm}: {e}")
    device = resolve_device(args.device)
    cfg = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "data"
            t0 = time.perf_counter()
            render(args.frames, size, root, args.seed, args.scenario)
            print(f"rendered {args.frames} frames of {args.scenario} at {size[0]}x{size[1]} "
                  f"in {time.perf_counter() - t0:.1f} s")
        dataset = open_dataset(f"longtail:{root}")
        first = dataset.entries[0]
        size = (first.width, first.height)
        print(f"\n{len(dataset)} images {size[0]}x{size[1]} ({dataset.objects} objects), batch {args.batch}, "
              f"{args.warmup} warm-up + {args.steps} timed steps, {device}, {torch.get_num_threads()} threads; "
              f"longtail's checkpoint every {cfg.checkpoint_every} steps amortised; RoI box head (--box-head-norm "
              f"{args.box_head_norm}): " + ", ".join(f"{n} {h}" for n, h in heads.items()))
        print(f"{'model':<38} {'bare i/s':>8} {'train i/s':>9} {'train/bare':>10} {'best':>6} | median ms/step: "
              f"{'bare':>7} " + " ".join(f"{k:>8}" for k in (*PARTS, "ckpt")) + f" | {'ckpt ms':>7}")
        results = {}
        for name, head in heads.items():
            m = results[name] = bench(name, dataset, size, args.batch, args.warmup, args.steps, device, args.seed,
                                      cfg, args.eval_repeats, head)
            print(f"{name:<38} {m['bare_ips']:8.2f} {m['lt_ips']:9.2f} {m['paired']:10.2f} "
                  f"{m['best']:6.2f} | {'':16}{m['bare_ms']:7.1f} "
                  + " ".join(f"{m['ms'][k]:8.1f}" for k in (*PARTS, "ckpt"))
                  + f" | {m['ckpt_s'] * 1e3:7.1f}")
        print(f"\nevaluation, batch {args.batch}, {len(dataset)} images")
        print(f"{'model':<38} {'bare i/s':>8} {'eval i/s':>9} {'eval/bare':>10} {'pred i/s':>9} {'pred/bare':>10} "
              f"{'score ms/img':>12}")
        for name, m in results.items():
            print(f"{name:<38} {m['bare_ev_ips']:8.2f} {m['ev_ips']:9.2f} {m['ev_ips'] / m['bare_ev_ips']:10.2f} "
                  f"{m['pred_ips']:9.2f} {m['pred_ips'] / m['bare_ev_ips']:10.2f} {m['score_ms']:12.1f}")
        ratios = [m["paired"] for m in results.values()]
        print(f"\ntrain/bare rate: min {min(ratios):.2f}, mean {statistics.mean(ratios):.2f} (target >= 0.9)")
        if args.insert:
            c = insert_cost(dataset, args.insert, args.batch, args.steps, args.seed)
            for name, m in results.items():
                step_ms = args.batch / m["lt_ips"] * 1e3
                extra = c["insert_ms"] - c["plain_ms"]
                print(f"insertion ({args.insert}, every image): batch load {c['plain_ms']:.1f} -> "
                      f"{c['insert_ms']:.1f} ms, +{extra:.1f} ms on a {step_ms:.0f} ms {name} step: "
                      f"{(step_ms + extra) / step_ms:.3f}x (target <= 1.1); actor bank built in {c['bank_s']:.1f} s")


if __name__ == "__main__":
    main()
