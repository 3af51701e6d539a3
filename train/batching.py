"""Which images make each training step's batch: mixes of sources at given shares, and schedules
of stages (pre-train on one source, fine-tune on another).

A sampler is a pure function of (seed, step): ``sampler.batch(step)`` gives the same
``(source, index)`` pairs whenever it is asked, so a resumed run draws exactly the batches the
uninterrupted run would have drawn. Per step, the number of images from each source follows
systematic rounding of ``batch * share`` with an offset drawn per step: every source gets
``floor`` or ``ceil`` of its quota, the batch size is exact and the long-run share is exact in
expectation. Within a source, images come in epochs, each a fresh permutation, so every image is
seen equally often.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from longtail.errors import ParameterError
from longtail.seeding import SAMPLER_COUNTS, SAMPLER_ORDER, source_stream, stream_rng



def parse_shares(text: str, source: str = "mix") -> dict[str, float]:
    """``"real=0.7,synthetic=0.3"`` -> {"real": 0.7, "synthetic": 0.3} (validated by the sampler)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ParameterError(source, f"{part!r}: expected NAME=SHARE, e.g. real=0.7,synthetic=0.3") from None
    return out


def check_shares(sizes: Mapping[str, int], shares: Mapping[str, float], source: str = "mix") -> dict[str, float]:
    """Shares normalised to sum 1, in ``sizes`` order; InputError for unknown, non-positive or
    empty sources."""
    if not shares:
        raise ParameterError(source, f"expected at least one source; choices: {', '.join(sizes)}")
    for name, share in shares.items():
        if name not in sizes:
            raise ParameterError(source, f"{name}: unknown source; expected one of: {', '.join(sizes)}")
        if not np.isfinite(share) or share <= 0:
            raise ParameterError(source, f"{name}: share must be > 0, got {share}")
        if sizes[name] < 1:
            raise ParameterError(source, f"{name}: the source holds no images")
    total = sum(shares.values())
    return {name: shares[name] / total for name in sizes if name in shares}


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(name, f"expected an integer >= 1, got {value!r}")


class MixedSampler:
    """Batches drawn from several sources at fixed shares, reproducible from the seed.

    Args:
        sizes: source name -> number of images.
        shares: source name -> share of images (positive; normalised to sum 1). Sources of
            ``sizes`` not named here are not drawn from.
        steps: number of steps.
        batch: images per step.
        seed: run seed; with ``stream`` it keys every generator (``seeding.stream_rng(seed, stream, ...)``).
        stream: distinguishes the samplers of one run (the stages of a schedule).
    """

    def __init__(self, sizes: Mapping[str, int], shares: Mapping[str, float], steps: int, batch: int, seed: int,
                 stream: int = 0):
        _check_positive("steps", steps)
        _check_positive("batch", batch)
        self.sizes = dict(sizes)
        self.shares = check_shares(self.sizes, shares)
        self.steps, self.batch_size, self.seed, self.stream = int(steps), int(batch), int(seed), int(stream)
        self.names = list(self.shares)
        p = np.array([self.shares[n] for n in self.names])
        edges = np.concatenate([[0.0], np.cumsum(p) * batch])
        edges[-1] = batch  # exact, so the counts of a step always add up to the batch
        u = stream_rng(self.seed, self.stream, SAMPLER_COUNTS).random(self.steps)
        taken = np.floor(edges[None, :] + u[:, None]).astype(np.int64)
        self.counts = np.diff(taken, axis=1)  # (steps, sources): images per source per step
        self.offsets = np.cumsum(self.counts, axis=0) - self.counts  # images drawn before each step
        self._perms: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.steps

    def stage(self, step: int) -> int:
        return 0

    def _perm(self, name: str, epoch: int) -> np.ndarray:
        key = (name, epoch)
        if key not in self._perms:
            if len(self._perms) > 4 * len(self.names):
                self._perms.clear()  # a run moves forward: old epochs are not asked for again
            rng = stream_rng(self.seed, self.stream, source_stream(name), epoch)
            self._perms[key] = rng.permutation(self.sizes[name])
        return self._perms[key]

    def _take(self, name: str, start: int, count: int) -> list[int]:
        n = self.sizes[name]
        return [int(self._perm(name, k // n)[k % n]) for k in range(start, start + count)]

    def batch(self, step: int) -> list[tuple[str, int]]:
        """The (source, image index) pairs of step ``step`` (0-based), in a seeded order."""
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside 0..{self.steps - 1}")
        items = [(name, i) for s, name in enumerate(self.names)
                 for i in self._take(name, int(self.offsets[step, s]), int(self.counts[step, s]))]
        order = stream_rng(self.seed, self.stream, SAMPLER_ORDER, step).permutation(len(items))
        return [items[k] for k in order]

    def __iter__(self):
        return (self.batch(s) for s in range(self.steps))

    def describe(self) -> dict:
        return {"kind": "mixed", "sizes": self.sizes, "shares": self.shares, "batch": self.batch_size}


class StagedSampler:
    """Stages run one after another, each a ``MixedSampler`` over the same sources.

    Args:
        sizes: source name -> number of images.
        stages: (steps, shares) per stage, in order.
        batch: images per step.
        seed: run seed (each stage draws from its own stream).
    """

    def __init__(self, sizes: Mapping[str, int], stages: Sequence[tuple[int, Mapping[str, float]]], batch: int,
                 seed: int):
        if not stages:
            raise ParameterError("schedule", "expected at least one stage")
        self.stages = [MixedSampler(sizes, shares, steps, batch, seed, stream=k)
                       for k, (steps, shares) in enumerate(stages)]
        self.starts = np.cumsum([0] + [s.steps for s in self.stages])
        self.steps = int(self.starts[-1])
        self.batch_size = int(batch)

    def __len__(self) -> int:
        return self.steps

    def stage(self, step: int) -> int:
        """Index of the stage step ``step`` belongs to."""
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside 0..{self.steps - 1}")
        return int(np.searchsorted(self.starts, step, side="right") - 1)

    def batch(self, step: int) -> list[tuple[str, int]]:
        k = self.stage(step)
        return self.stages[k].batch(step - int(self.starts[k]))

    def __iter__(self):
        return (self.batch(s) for s in range(self.steps))

    def describe(self) -> dict:
        return {"kind": "staged", "batch": self.batch_size,
                "stages": [{"steps": s.steps, **s.describe()} for s in self.stages]}


def two_stage(sizes: Mapping[str, int], pretrain: str, finetune: str, pretrain_steps: int, steps: int, batch: int,
              seed: int) -> StagedSampler:
    """Pre-train on source ``pretrain`` for ``pretrain_steps`` steps, then fine-tune on
    ``finetune`` for the rest of ``steps`` (e.g. synthetic first, then real)."""
    _check_positive("steps", steps)
    if not 0 < pretrain_steps < steps:
        raise ParameterError("pretrain_steps", f"expected 0 < steps < {steps}, got {pretrain_steps}")
    return StagedSampler(sizes, [(pretrain_steps, {pretrain: 1.0}), (steps - pretrain_steps, {finetune: 1.0})],
                         batch, seed)
