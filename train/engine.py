"""The training loop: seeded batches in, losses, checkpoints and ``metrics.jsonl`` out.

Every random choice of step ``k`` is a function of ``(seed, k)``: the sampler's batch, the
horizontal flips (``seeding.stream_rng(seed, k, TRAIN_FLIP)``) and torch's own draws inside the
model (proposal sampling), for which torch's global generator is seeded per step inside
``torch.random.fork_rng`` and restored afterwards. With the weights, EMA and optimizer state in
the checkpoint, a resumed run therefore repeats the uninterrupted one step for step (on the CPU
bit for bit in the tests; deterministic algorithms are switched on there for the run; on CUDA
only up to the GPU kernels' own non-determinism).

A run directory holds ``run.json`` (what the run is: model spec, data, seed, hyper-parameters),
``checkpoint.pt`` (the latest, written atomically every ``checkpoint_every`` steps and at the
end) and ``metrics.jsonl`` (one line per step: step, loss, losses, lr, images/s, stage, sources).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from longtail.atomic import write_bytes, write_json
from longtail.seeding import TRAIN_AUGMENT, TRAIN_FLIP, TRAIN_TORCH, stream_rng
from longtail.errors import InputError, LongtailError, ParameterError
from longtail.train.checkpoint import read_checkpoint, save_checkpoint
from longtail.train.classmap import LabelSpace
from longtail.train.models import ModelSpec
from longtail.train.entries import DetectionDataset, Entry
from longtail.train.batching import MixedSampler, StagedSampler
from longtail.train.stream_order import StreamSampler

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"

Progress = Callable[[int, int, dict], None]  # (steps done, total steps, the step's metrics line)


class Augment(Protocol):
    """What a source's images pass through when loaded: ``WeatherAugment`` or ``SensorAugment``."""

    def __call__(self, image: torch.Tensor, entry: Entry, rng: np.random.Generator,
                 depth: np.ndarray | None = None) -> tuple[torch.Tensor, str]:
        """The (3, H, W) uint8 image, changed or not, and a word for what was applied; ``depth``:
        the image's depth when an earlier step changed it (actors inserted)."""

    def describe(self) -> dict:
        """The settings, as a run's log records them."""


class Insert(Protocol):
    """What puts actors into a source's images before the weather stage (``insert.Inserter``)."""

    def __call__(self, image: torch.Tensor, target: dict, entry: Entry, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, dict, np.ndarray | None, int]:
        """The image and target with actors inserted, the composite's depth (or None) and how
        many actors went in."""

    def describe(self) -> dict:
        """The settings, as a run's log records them."""


class TrainingError(LongtailError):
    """Training cannot go on (the loss is no longer finite)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a run (defaults: shared/REFERENCES.md, "Training on these machines").

    Attributes:
        lr: AdamW learning rate after warm-up.
        warmup_steps: steps of linear warm-up from lr / warmup_steps.
        weight_decay: AdamW weight decay (1e-4, as torchvision's detection references use).
        ema_decay: decay of the exponential moving average of the weights (it beat the raw
            weights by 0.04-0.10 AP); early steps use min(decay, (1 + n) / (10 + n)).
        clip_grad_norm: gradients are clipped to this global norm (None: no clipping); from
            scratch, an early bad batch otherwise throws the weights far.
        flip: random horizontal flips (p = 0.5 per image).
        checkpoint_every: steps between checkpoints.
        amp: bfloat16 autocast on CUDA (ignored on the CPU).
    """

    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    ema_decay: float = 0.998
    clip_grad_norm: float | None = 10.0
    flip: bool = True
    checkpoint_every: int = 100
    amp: bool = True

    def __post_init__(self):
        if not self.lr > 0:
            raise ParameterError("lr", f"expected > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ParameterError("ema_decay", f"expected 0 <= decay < 1, got {self.ema_decay}")
        if self.warmup_steps < 0 or self.checkpoint_every < 1:
            raise ParameterError("checkpoint_every", "expected warmup_steps >= 0 and checkpoint_every >= 1")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ParameterError("device", f"unknown device {name!r}; expected auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "cuda requested but no CUDA GPU is available")
    if device.type not in ("cpu", "cuda"):
        raise ParameterError("device", f"unsupported device {name!r}; expected auto, cpu or cuda")
    return device


class Batches(Protocol):
    """What ``train`` draws its steps from: ``SampledBatches`` (random access to datasets) or
    ``stream.StreamBatches`` (a shard set read front to back)."""

    @property
    def augment(self) -> Mapping[str, Augment]:
        """Source name -> the augmentation its images get (empty: none)."""

    @property
    def steps(self) -> int: ...

    def stage(self, step: int) -> int: ...

    def pairs(self, step: int) -> list[tuple[str, int]]:
        """The (source, index) pairs of step ``step``."""

    def load(self, pairs: list[tuple[str, int]], rng: np.random.Generator | None = None
             ) -> list[tuple[torch.Tensor, dict]]:
        """The samples of the pairs ``pairs(step)`` gave; called once per step, steps in order."""

    def describe(self) -> dict: ...

    def position(self, step: int) -> dict | None:
        """What a checkpoint after ``step`` steps keeps to resume the data (None: nothing)."""

    def seek(self, step: int, position: dict | None) -> None:
        """Continue from ``step`` steps done; ``position``: what the checkpoint kept."""

    def close(self) -> None:
        """Let go of readers and worker processes."""


class SampledBatches:
    """A sampler's (source, index) pairs, loaded from the named datasets.

    Args:
        datasets: source name -> dataset (the names the sampler's shares use).
        sampler: a ``MixedSampler`` or ``StagedSampler`` over those sources (or a ``StreamSampler``
            of one source named ``data``: a folder read in the order its shards stream in).
    """

    def __init__(self, datasets: Mapping[str, DetectionDataset], sampler: MixedSampler | StagedSampler | StreamSampler,
                 augment: Mapping[str, Augment] | None = None, insert: Mapping[str, Insert] | None = None):
        self.datasets = dict(datasets)
        self.sampler = sampler
        self.augment = dict(augment or {})
        self.insert = dict(insert or {})
        for param, named in (("augment", self.augment), ("insert", self.insert)):
            unknown = set(named) - set(self.datasets)
            if unknown:
                raise ParameterError(param, f"no dataset named {sorted(unknown)[0]!r} to {param} into")

    @classmethod
    def single(cls, dataset: DetectionDataset, steps: int, batch: int, seed: int,
               augment: Augment | None = None, insert: Insert | None = None) -> "SampledBatches":
        """Batches from one dataset, each image once per epoch."""
        return cls({"data": dataset}, MixedSampler({"data": len(dataset)}, {"data": 1.0}, steps, batch, seed),
                   {"data": augment} if augment else None, {"data": insert} if insert else None)

    @classmethod
    def mixed(cls, datasets: Mapping[str, DetectionDataset], shares: Mapping[str, float], steps: int, batch: int,
              seed: int, augment: Mapping[str, Augment] | None = None,
              insert: Mapping[str, Insert] | None = None) -> "SampledBatches":
        """Batches from named datasets at the given shares (``--mix real=0.7,synthetic=0.3``)."""
        sizes = {name: len(d) for name, d in datasets.items()}
        return cls(datasets, MixedSampler(sizes, shares, steps, batch, seed), augment, insert)

    @property
    def steps(self) -> int:
        return self.sampler.steps

    def stage(self, step: int) -> int:
        return self.sampler.stage(step)

    def pairs(self, step: int) -> list[tuple[str, int]]:
        return self.sampler.batch(step)

    def load(self, pairs: list[tuple[str, int]], rng: np.random.Generator | None = None
             ) -> list[tuple[torch.Tensor, dict]]:
        """The (image, target) samples of (source, index) pairs; sources with an ``insert`` get
        actors, then sources with an ``augment`` get weather, all drawn from ``rng`` (so a batch
        is a function of the rng)."""
        out = []
        for name, i in pairs:
            image, target = self.datasets[name][i]
            entry = self.datasets[name].entries[i]
            ins, fx = self.insert.get(name), self.augment.get(name)
            if (ins is not None or fx is not None) and rng is None:
                raise ValueError("augmented sources need the step's generator")
            depth = None
            if ins is not None:
                assert rng is not None
                image, target, depth, n = ins(image, target, entry, rng)
                target["conditions"]["inserted"] = str(n)
            if fx is not None:
                assert rng is not None
                image, target["conditions"]["augment"] = fx(image, entry, rng, depth)
            out.append((image, target))
        return out

    def position(self, step: int) -> dict | None:
        return None  # every step's batch is a function of the step: nothing to keep

    def seek(self, step: int, position: dict | None) -> None:
        pass

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        out = {"sampler": self.sampler.describe(), "datasets": {k: d.describe() for k, d in self.datasets.items()}}
        if self.augment:
            out["augment"] = {k: a.describe() for k, a in self.augment.items()}
        if self.insert:
            out["insert"] = {k: a.describe() for k, a in self.insert.items()}
        return out


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a (3, H, W) image and its (N, 4) x0 y0 x1 y1 boxes left-right."""
    w = image.shape[-1]
    flipped = boxes.clone()
    flipped[:, 0], flipped[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return image.flip(-1), flipped


def training_target(target: dict, labels: LabelSpace) -> dict:
    """Boxes and model labels a detector trains on: ignore regions, classes outside the label
    space and empty boxes are left out."""
    model_labels = torch.from_numpy(labels.to_model(target["labels"].numpy()))
    b = target["boxes"]
    keep = (target["iscrowd"] == 0) & (model_labels > 0) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return {"boxes": b[keep].float(), "labels": model_labels[keep]}


def prepare_batch(items: list[tuple[torch.Tensor, dict]], rng: np.random.Generator, flip: bool,
                  labels: LabelSpace, device: torch.device) -> tuple[list[torch.Tensor], list[dict]]:
    """Images as float in [0, 1] on ``device`` and training targets; flips drawn from ``rng``."""
    flips = rng.random(len(items)) < 0.5
    images, targets = [], []
    for (image, target), f in zip(items, flips):
        t = training_target(target, labels)
        if flip and f:
            image, t["boxes"] = hflip(image, t["boxes"])
        images.append(image.to(device).float().div_(255))
        targets.append({k: v.to(device) for k, v in t.items()})
    return images, targets


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then constant."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


class Ema:
    """Exponential moving average of a model's state (weights and buffers)."""

    def __init__(self, model: nn.Module, decay: float, state: dict | None = None):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in (state or model.state_dict()).items()}
        self._pairs: tuple | None = None  # (model, float EMA, float live, other EMA, other live)

    def _tensors(self, model: nn.Module) -> tuple:
        # state_dict() tensors share storage with the parameters and buffers, which the optimizer
        # updates in place: gathered once, they stay current (rebuilding them each step cost
        # ~14 ms on a 19M-parameter model)
        if self._pairs is None or self._pairs[0] is not model:
            live = model.state_dict()
            floats = [k for k, v in live.items() if v.dtype.is_floating_point]
            others = [k for k in live if k not in set(floats)]
            self._pairs = (model, [self.state[k] for k in floats], [live[k].detach() for k in floats],
                           [self.state[k] for k in others], [live[k] for k in others])
        return self._pairs[1:]

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        d = min(self.decay, (1 + updates) / (10 + updates))
        ema_f, live_f, ema_o, live_o = self._tensors(model)
        if ema_f and ema_f[0].device == live_f[0].device:
            torch._foreach_lerp_(ema_f, live_f, 1 - d)
        else:
            for e, v in zip(ema_f, live_f):
                e.lerp_(v.to(e.device), 1 - d)
        for e, v in zip(ema_o, live_o):
            e.copy_(v)


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the run (a process-wide switch, restored on exit)."""
    was, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)


@contextlib.contextmanager
def _seeded_torch(seed: int, step: int, device: torch.device) -> Iterator[None]:
    """torch's global generator seeded from (seed, step) inside, restored outside: torchvision
    draws proposals and anchors to sample with it and takes no generator argument."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(stream_rng(seed, step, TRAIN_TORCH).integers(2 ** 62)))
        yield


def _run_record(spec: ModelSpec, data: Batches, seed: int, cfg: TrainConfig, extra: dict | None) -> dict:
    return {"spec": spec.to_json(), "data": data.describe(), "seed": seed, "config": asdict(cfg), **(extra or {})}


def _open_run_dir(out: Path, record: dict, resume: bool) -> None:
    """Create the run directory, or check that it holds this run when resuming."""
    run_file = out / RUN_FILE
    if run_file.exists():
        if not resume:
            raise InputError(str(out), None, "holds a training run; resume it or choose a new "
                             "run directory")
        have = json.loads(run_file.read_text())
        for key in record:
            if have.get(key) != json.loads(json.dumps(record[key])):
                raise InputError(str(out), None, f"holds another run ({key} differs); choose a new output directory")
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(str(out), None, "output directory is not empty and holds no training run; "
                         "choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    write_json(run_file, record)


def _keep_metrics(path: Path, upto: int) -> None:
    """Drop metrics lines after the checkpoint a resumed run restarts from."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= upto]
    write_bytes(path, "".join(ln + "\n" for ln in lines).encode())


@dataclass
class RunResult:
    """What ``train`` leaves behind.

    Attributes:
        out_dir: the run directory.
        checkpoint: path of the final checkpoint.
        steps: steps done in total (including those before a resume).
        started_at: the step this call started from (0, or the resumed checkpoint's).
        last: the last metrics line (empty when no step ran).
        ema: the EMA state dict (load it into a model built from the same spec).
    """

    out_dir: Path
    checkpoint: Path
    steps: int
    started_at: int
    last: dict
    ema: dict


def _restore(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: Ema) -> tuple[int, dict | None]:
    """Load a run's checkpoint into model, optimizer and EMA; return the steps it had done and
    the data position it kept."""
    ckpt = read_checkpoint(path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])  # moves the state to the parameters' device
    for k, v in ckpt["ema"].items():
        ema.state[k].copy_(v)
    return int(ckpt["step"]), ckpt.get("run", {}).get("data")


def _optimize(model: nn.Module, optimizer: torch.optim.Optimizer, images: list, targets: list, cfg: TrainConfig,
              amp: bool) -> dict[str, torch.Tensor]:
    """One forward, backward and optimizer step; returns the model's losses (detached)."""
    with torch.autocast("cuda" if amp else "cpu", dtype=torch.bfloat16, enabled=amp):
        losses = model(images, targets)
    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise TrainingError(f"the loss is {loss.item()}; lower the learning rate or check the data")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip_grad_norm is not None:
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.clip_grad_norm)
    optimizer.step()
    return {k: v.detach() for k, v in losses.items()}


def train(model: nn.Module, data: Batches, steps: int | None = None, *, spec: ModelSpec, out_dir: Path,
          seed: int, device: str | torch.device = "cpu", config: TrainConfig = TrainConfig(), resume: bool = False,
          progress: Progress | None = None, run_info: dict | None = None) -> RunResult:
    """Train ``model`` for ``steps`` optimizer steps on ``data``, writing a run directory.

    Args:
        model: a detector built from ``spec`` (``spec.build(seed)``, maybe ``load_init``-ed).
        data: the batches of every step.
        steps: total steps (default and maximum: ``data.steps``); a resumed run may ask for more
            steps than the run it continues, when ``data`` has them.
        spec: the model's spec (label space; stored in checkpoints).
        out_dir: run directory (new, or this run's when ``resume``).
        seed: run seed (flips, torch's draws; the sampler has its own).
        device: ``torch.device`` or a name for ``resolve_device``.
        config: hyper-parameters.
        resume: continue the run in ``out_dir`` from its checkpoint (from the start if it has none).
        progress: called after every step with (steps done, total, metrics line).
        run_info: extra JSON facts for ``run.json`` (e.g. the data specs, ``--init``); part of the
            run's identity when resuming.

    Raises:
        InputError: bad steps or device, or an out_dir holding something else.
        TrainingError: the loss stopped being finite.
    """
    steps = data.steps if steps is None else int(steps)
    if not 1 <= steps <= data.steps:
        raise ParameterError("steps", f"expected 1..{data.steps} (the sampler's steps), got {steps}")
    device = device if isinstance(device, torch.device) else resolve_device(device)
    out = Path(out_dir)
    _open_run_dir(out, _run_record(spec, data, seed, config, run_info), resume)
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    ema = Ema(model, config.ema_decay)
    start, position = _restore(out / CHECKPOINT, model, optimizer, ema) if resume and (out / CHECKPOINT).exists() \
        else (0, None)
    try:
        data.seek(start, position)
    except InputError as e:  # the data cannot continue from what the checkpoint kept
        raise InputError(str(out / CHECKPOINT), e.field, e.problem) from None
    _keep_metrics(out / METRICS, start)
    amp = config.amp and device.type == "cuda"
    last: dict = {}
    with contextlib.closing(data), _deterministic(device.type == "cpu"), open(out / METRICS, "a") as log:
        for step in range(start, steps):
            t0 = time.perf_counter()
            pairs = data.pairs(step)
            items = data.load(pairs, stream_rng(seed, step, TRAIN_AUGMENT))
            images, targets = prepare_batch(items, stream_rng(seed, step, TRAIN_FLIP),
                                            config.flip, spec.labels, device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            with _seeded_torch(seed, step, device):
                try:
                    losses = _optimize(model, optimizer, images, targets, config, amp)
                except TrainingError as e:
                    raise TrainingError(f"{out}: step {step + 1}: {e}") from None
            ema.update(model, step)
            last = {"step": step + 1, "stage": data.stage(step), "loss": sum(v.item() for v in losses.values()),
                    "losses": {k: v.item() for k, v in losses.items()}, "lr": lr_at(step, config),
                    "images_per_s": len(pairs) / (time.perf_counter() - t0),
                    "sources": dict(Counter(name for name, _ in pairs))}
            if data.augment:
                last["weather"] = dict(Counter(t["conditions"].get("augment", "clear") for _, t in items))
            log.write(json.dumps(last) + "\n")
            log.flush()
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == steps:
                kept = data.position(step + 1)
                save_checkpoint(out / CHECKPOINT, spec=spec, step=step + 1, model=model.state_dict(), ema=ema.state,
                                optimizer=optimizer.state_dict(),
                                run={"seed": seed, **({"data": kept} if kept is not None else {})})
            if progress:
                progress(step + 1, steps, last)
    return RunResult(out, out / CHECKPOINT, max(start, steps), start, last, ema.state)


def read_metrics(out_dir: Path) -> list[dict]:
    """The metrics lines of a run, in step order."""
    path = Path(out_dir) / METRICS
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
