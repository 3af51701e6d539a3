"""The order a shard set streams in: a pure function of the run seed and the shard layout, so the
frames of every step are known without reading a byte (``longtail.train.stream`` reads them).

Epoch ``e`` (0, 1, ...) of node ``rank`` of ``nodes``, with ``W = max(1, workers)`` streams:

1. the shards in a seeded order, ``stream_rng(seed, e, STREAM_SHARDS).permutation(K)``;
2. the node takes every ``nodes``-th shard of that order from ``rank`` (``wds.split_by_node``),
   its stream ``w`` every ``W``-th of those from ``w`` (``wds.split_by_worker``: one stream per
   data-loader worker);
3. a stream reads its shards front to back, each shard's frames in frame order, through a bounded
   shuffle buffer of ``buffer`` samples (``shuffled``; generator
   ``stream_rng(seed, e, STREAM_BUFFER, rank, w)``);
4. the node's streams are merged round robin (0, 1, ..., W-1, 0, ...), a finished stream
   dropping out: the order a torch ``DataLoader`` yields the items of W workers in;
5. the epochs follow each other; step ``k`` trains on samples ``k*B .. k*B+B-1`` of the node's
   sequence, in that order (a batch may straddle two epochs, as the folder sampler's do).

Every frame is seen once per epoch, memory holds at most ``buffer`` samples per stream, and the
number of workers is part of the order (it is a fixed option, never the machine's core count).

A position (samples consumed) is enough to resume: ``StreamOrder.starts`` replays the epoch's
order over frame indices alone (integers, no data) and returns where each stream stands: the
inputs it has read, the frames in its buffer (in buffer order) and its generator's state.
``StreamSampler`` is the same order for a folder dataset (``SampledBatches``' sampler): training
on a folder with it and on the folder's shards (same shard size) draws the same frames per step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Generic, Iterable, Iterator, TypeVar

import numpy as np

from longtail.errors import ParameterError
from longtail.seeding import STREAM_BUFFER, STREAM_SHARDS, stream_rng

T = TypeVar("T")
DEFAULT_BUFFER = 1000
DEFAULT_WORKERS = 2
SOURCE = "data"  # the source name of every (source, frame) pair, as SampledBatches.single names it


class ShuffleBuffer(Generic[T]):
    """A bounded shuffle: ``size`` items held; each new item takes the place of a random one,
    which leaves; at the end the rest leave in random order. Its state (``items``, ``rng``) is
    whole between two items leaving."""

    def __init__(self, size: int, rng: np.random.Generator, items: list[T] | None = None):
        self.size, self.rng = size, rng
        self.items: list[T] = [] if items is None else items

    def push(self, item: T) -> tuple[T, ...]:
        """Take ``item``; return the item that leaves for it (none while the buffer fills)."""
        if len(self.items) < self.size:
            self.items.append(item)
            return ()
        k = int(self.rng.integers(self.size))
        out, self.items[k] = self.items[k], item
        return (out,)

    def pop(self) -> T:
        """A random item out of a non-empty buffer (the input has ended)."""
        k = int(self.rng.integers(len(self.items)))
        self.items[k], self.items[-1] = self.items[-1], self.items[k]
        return self.items.pop()


def shuffled(items: Iterable[T], buffer: ShuffleBuffer[T]) -> Iterator[T]:
    """``items`` through ``buffer`` (which may hold items already: a resumed stream)."""
    for item in items:
        yield from buffer.push(item)
    while buffer.items:
        yield buffer.pop()


@dataclass(frozen=True)
class StreamSpec:
    """What the order depends on.

    Attributes:
        frame_count: frames of the dataset.
        shard_size: frames per shard (the last shard may hold fewer).
        seed: run seed.
        buffer: shuffle buffer of each stream, in samples.
        workers: data-loader worker processes (0: read in the training process, one stream).
        rank: this node's index among ``nodes`` (``wds.utils.pytorch_worker_info``).
        nodes: the number of nodes sharing the shards.
    """

    frame_count: int
    shard_size: int
    seed: int
    buffer: int = DEFAULT_BUFFER
    workers: int = DEFAULT_WORKERS
    rank: int = 0
    nodes: int = 1

    def __post_init__(self):
        for name, low in (("frame_count", 1), ("shard_size", 1), ("buffer", 1), ("workers", 0), ("nodes", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ParameterError(name if name != "buffer" else "shuffle_buffer",
                                     f"expected an integer >= {low}, got {value!r}")
        if not 0 <= self.rank < self.nodes:
            raise ParameterError("rank", f"expected 0 <= rank < {self.nodes} nodes, got {self.rank}")
        if self.nodes > self.shards:
            raise ParameterError("nodes", f"{self.nodes} nodes cannot share {self.shards} shards; export smaller "
                                 "shards or train on fewer nodes")

    @property
    def shards(self) -> int:
        return math.ceil(self.frame_count / self.shard_size)

    @property
    def streams(self) -> int:
        return max(1, self.workers)

    def frames(self, k: int) -> range:
        return range(k * self.shard_size, min((k + 1) * self.shard_size, self.frame_count))

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StreamStart:
    """Where stream ``worker`` of an epoch stands: its shards, the inputs (frames) it has read,
    the frames in its buffer (in buffer order), its generator's state and the items it gave."""

    worker: int
    shards: tuple[int, ...]
    read: int
    buffer: tuple[int, ...]
    rng_state: dict
    given: int


class _Counted(Generic[T]):
    """An iterator that counts what was taken from it."""

    def __init__(self, items: Iterable[T]):
        self.it, self.n = iter(items), 0

    def __iter__(self) -> "_Counted[T]":
        return self

    def __next__(self) -> T:
        item = next(self.it)
        self.n += 1
        return item


class StreamOrder:
    """The node's sequence of frames over the epochs (see the module docstring)."""

    def __init__(self, spec: StreamSpec):
        self.spec = spec
        self._starts = [0]  # sample offset at which epoch e begins, for e < len
        self._cache: dict[int, np.ndarray] = {}

    def shard_order(self, epoch: int) -> list[int]:
        """Every shard of the dataset, in epoch ``epoch``'s order (all nodes)."""
        return [int(k) for k in stream_rng(self.spec.seed, epoch, STREAM_SHARDS).permutation(self.spec.shards)]

    def stream_shards(self, epoch: int, worker: int) -> list[int]:
        """The shards stream ``worker`` of this node reads in epoch ``epoch``, in order."""
        return self.shard_order(epoch)[self.spec.rank::self.spec.nodes][worker::self.spec.streams]

    def epoch_length(self, epoch: int) -> int:
        return sum(len(self.spec.frames(k)) for k in self.shard_order(epoch)[self.spec.rank::self.spec.nodes])

    def _streams(self, epoch: int) -> list[tuple[_Counted[int], ShuffleBuffer[int], Iterator[int]]]:
        out = []
        for w in range(self.spec.streams):
            inputs = _Counted(i for k in self.stream_shards(epoch, w) for i in self.spec.frames(k))
            buf: ShuffleBuffer[int] = ShuffleBuffer(self.spec.buffer, self._rng(epoch, w))
            out.append((inputs, buf, shuffled(inputs, buf)))
        return out

    def _rng(self, epoch: int, worker: int) -> np.random.Generator:
        return stream_rng(self.spec.seed, epoch, STREAM_BUFFER, self.spec.rank, worker)

    def _merged(self, streams: list, upto: int | None = None) -> Iterator[tuple[int, int]]:
        """(stream, frame) round robin over the streams, a finished one dropping out."""
        active, i, n = list(range(len(streams))), 0, 0
        while active and (upto is None or n < upto):
            w = active[i]
            try:
                frame = next(streams[w][2])
            except StopIteration:
                active.pop(i)
                i = i % len(active) if active else 0
                continue
            yield w, frame
            n += 1
            i = (i + 1) % len(active)

    def epoch(self, epoch: int) -> np.ndarray:
        """This node's frames of epoch ``epoch``, in order (int64)."""
        if epoch not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = np.fromiter((f for _, f in self._merged(self._streams(epoch))), np.int64)
        return self._cache[epoch]

    def locate(self, sample: int) -> tuple[int, int]:
        """(epoch, position in it) of the node's sample ``sample`` (0-based)."""
        if sample < 0:
            raise ValueError(f"sample {sample} < 0")
        while self._starts[-1] <= sample:
            self._starts.append(self._starts[-1] + self.epoch_length(len(self._starts) - 1))
        e = int(np.searchsorted(self._starts, sample, side="right")) - 1
        return e, sample - self._starts[e]

    def take(self, sample: int, n: int) -> list[tuple[int, int]]:
        """(epoch, frame) of the node's samples ``sample .. sample + n - 1``."""
        out: list[tuple[int, int]] = []
        while len(out) < n:
            e, p = self.locate(sample + len(out))
            frames = self.epoch(e)[p:p + n - len(out)]
            out.extend((e, int(f)) for f in frames)
        return out

    def starts(self, epoch: int, pos: int) -> list[StreamStart]:
        """Where each stream stands once the node has taken ``pos`` samples of epoch ``epoch``."""
        streams = self._streams(epoch)
        given = [0] * len(streams)
        for w, _ in self._merged(streams, upto=pos):
            given[w] += 1
        return [StreamStart(w, tuple(self.stream_shards(epoch, w)), inputs.n, tuple(buf.items),
                            dict(buf.rng.bit_generator.state), given[w])
                for w, (inputs, buf, _) in enumerate(streams)]

    def position(self, sample: int) -> dict:
        """The JSON a checkpoint keeps: the spec, the samples consumed, and where each stream
        stands (inputs read, items given)."""
        e, p = self.locate(sample)
        return {"kind": "stream", "spec": self.spec.to_json(), "sample": sample, "epoch": e, "in_epoch": p,
                "streams": [{"worker": s.worker, "read": s.read, "given": s.given} for s in self.starts(e, p)]}


class StreamSampler:
    """The stream order as a sampler of one source (``SampledBatches``' interface): a folder
    dataset trained with it draws, step for step, the frames its shards stream in."""

    def __init__(self, spec: StreamSpec, steps: int, batch: int):
        for name, value in (("steps", steps), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, f"expected an integer >= 1, got {value!r}")
        self.order = StreamOrder(spec)
        self.steps, self.batch_size = steps, batch

    def __len__(self) -> int:
        return self.steps

    def stage(self, step: int) -> int:
        return 0

    def batch(self, step: int) -> list[tuple[str, int]]:
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside 0..{self.steps - 1}")
        return [(SOURCE, f) for _, f in self.order.take(step * self.batch_size, self.batch_size)]

    def describe(self) -> dict:
        return {"kind": "stream", "batch": self.batch_size, **self.order.spec.to_json()}
