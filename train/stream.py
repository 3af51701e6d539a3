"""Training from a WebDataset shard set (``longtail train --data wds:PATH``): the shards are read
front to back by webdataset in data-loader workers, never by index, so memory stays flat.

**Order.** ``longtail.train.stream_order`` defines it from the seed and the shard layout alone: a
seeded shard order per epoch, split across nodes (``wds.split_by_node``) and workers
(``wds.split_by_worker``), each worker's shards through a bounded shuffle buffer, the workers
merged round robin. The frames of every step are therefore known before anything is read; the
stream delivers them and ``StreamBatches.load`` checks each one it gets against that schedule.

**Same loss as folder training.** A folder dataset read through the same order
(``SampledBatches({"data": SyntheticDataset(DIR)}, StreamSampler(spec, steps, batch))``, or
``longtail train --data DIR --order stream``) gets the same frames in the same step, the same
decoded pixels (the PNG bytes are the folder's, byte for byte), the same targets (the same frame
record) and the same per-step generators, so its loss curve is the stream's. The folder's
default order (each epoch a permutation of all frames) needs random access and stays as it was.

**Memory.** Each worker holds its shuffle buffer (``buffer`` samples, PNG bytes, not decoded),
one tar member at a time, and the decoded samples the data loader prefetches.

**Resume.** A checkpoint keeps ``StreamOrder.position``: the samples consumed, the epoch, and each
worker's inputs read and samples given. ``seek`` recomputes that position from the step and
refuses a checkpoint whose position differs. To restart, the order is replayed up to there over
frame indices alone (integers, no data), which gives each worker the frames in its buffer (in
buffer order) and its generator's state; the worker skips the shards it had read wholly whose
frames have all left its buffer, reads the rest, refills its buffer and goes on, so the remaining
steps get the frames of the uninterrupted run.

**Checks.** Up front: shards.json (``longtail.shards.load_shard_manifest``) and every shard file
present. While streaming: every byte of a shard is hashed as it is read and compared with its
sha256 at the shard's end (before its last sample leaves: the earlier ones may have been trained
on by then, as a stream cannot know a shard is damaged before reading all of it; ``train
--dry-run`` or ``longtail verify`` check a set up front), sample keys must follow the shard's
frames in order, and every sample must hold its record and images. A failure stops training with
one ``DatasetError`` naming the shard (exit 2 on the command line); a worker passes it to the
training process as data, not as a worker crash.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Generator, Iterable, Iterator, Mapping

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from longtail.depth import decode_depth
from longtail.errors import DatasetError, InputError, ParameterError
from longtail.labelers.export_base import ExportFilter
from longtail.readers import read_image as read_pixels
from longtail.records import parse_record
from longtail.shards import (MEMBER, PARTIAL, SHARDS, TAR_ERRORS, HashingFile, ShardManifest, load_shard_manifest,
                             sample_key)
from longtail.train.datasets import record_entry
from longtail.train.engine import Augment
from longtail.train.entries import Entry, entry_target, image_tensor
from longtail.train.stream_order import (DEFAULT_BUFFER, DEFAULT_WORKERS, SOURCE, ShuffleBuffer, StreamOrder,
                                         StreamSpec, StreamStart, shuffled)

__all__ = ["StreamBatches", "ShardStream", "open_shards", "check_shards", "node_info"]


def node_info() -> tuple[int, int]:
    """(rank, nodes) of this process as ``wds.split_by_node`` sees it (``RANK``/``WORLD_SIZE``, or
    torch.distributed once initialised; (0, 1) otherwise)."""
    rank, nodes, _, _ = wds.utils.pytorch_worker_info()
    return rank, nodes


def open_shards(root: Path) -> ShardManifest:
    """The manifest of the complete shard set at ``root``, every shard it lists present.

    Raises:
        DatasetError: naming the file and what was expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(str(root), None, "shard set directory not found")
    if not (root / SHARDS).is_file() and not (root / PARTIAL).is_file():
        raise DatasetError(str(root / SHARDS), None, "missing: expected a WebDataset shard set written by "
                           "`longtail export DIR --format webdataset --out OUT`")
    m = load_shard_manifest(root)
    for e in m.shards:
        if not (root / e.name).is_file():
            raise DatasetError(str(root / e.name), None, f"missing: {SHARDS} lists it; export the shards again "
                               "(the export keeps intact shards and writes the rest)")
    return m


@dataclass
class StreamItem:
    """A decoded sample: epoch, frame, (3, H, W) uint8 image and the frame's entry (with its
    decoded depth when asked for)."""

    epoch: int
    frame: int
    image: torch.Tensor
    entry: Entry


@dataclass
class Failure:
    """A ``DatasetError`` raised in a worker, passed on as data."""

    source: str
    field: str | None
    problem: str


def _restored(items: list) -> bool:
    """True once every place of a resumed buffer is filled (a mismatch is a bug, not bad input)."""
    if any(item is None for item in items):
        raise RuntimeError("a resumed stream did not find every frame of its buffer")
    return True


def _tar_problem(e: BaseException) -> str:
    """What a tar error says, without the stream and URL webdataset appends to it."""
    return str(e.args[0]).split(" @ ")[0] if e.args else type(e).__name__


def _as_is(item: Any) -> Any:  # the data loader's collate: items pass untouched
    return item


class _Current:
    """The shard a worker is reading (for messages) and its hashing reader."""

    def __init__(self) -> None:
        self.path = ""
        self.k = -1
        self.file: HashingFile | None = None
        self.fh: BinaryIO | None = None

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        self.file = self.fh = None


class ShardStream(torch.utils.data.IterableDataset):
    """One epoch of this node's samples, in stream order (``stream_order``), as ``StreamItem``s.

    In a data loader of ``spec.workers`` workers, worker ``w`` reads stream ``w``; with no
    workers, the training process reads stream 0. A failure ends the stream with a ``Failure``.

    Args:
        root: the shard set.
        manifest: its manifest (``open_shards``).
        spec: the order's spec (its ``workers`` must be the data loader's).
        epoch: the epoch.
        starts: where each stream starts (``StreamOrder.starts``); None: at the epoch's start.
        flt: the object filter (too hidden objects -> ignore regions).
        with_depth: decode each frame's depth (weather on the fly needs it).
    """

    def __init__(self, root: Path, manifest: ShardManifest, spec: StreamSpec, epoch: int,
                 starts: list[StreamStart] | None = None, flt: ExportFilter = ExportFilter(), with_depth: bool = False):
        super().__init__()
        self.root, self.manifest, self.spec, self.epoch = Path(root), manifest, spec, epoch
        self.starts, self.flt, self.with_depth = starts, flt, with_depth

    def __iter__(self) -> Iterator[StreamItem | Failure]:
        rank, nodes, worker, workers = wds.utils.pytorch_worker_info()
        if (rank, nodes, workers) != (self.spec.rank, self.spec.nodes, self.spec.streams):
            raise RuntimeError(f"stream of node {self.spec.rank}/{self.spec.nodes} with {self.spec.streams} streams "
                               f"read by node {rank}/{nodes} with {workers} workers")
        start = (self.starts or StreamOrder(self.spec).starts(self.epoch, 0))[worker]
        current = _Current()
        try:
            yield from self._items(start, current)
        except InputError as e:
            yield Failure(e.source, e.field, e.problem)
        except TAR_ERRORS as e:
            yield Failure(current.path, None, f"not a readable tar file ({_tar_problem(e)})")
        finally:
            current.close()

    def _items(self, start: StreamStart, current: _Current) -> Iterator[StreamItem]:
        m, spec = self.manifest, self.spec
        urls = [{"url": str(self.root / m.shards[k].name), "k": k} for k in StreamOrder(spec).shard_order(self.epoch)]
        mine = list(wds.split_by_worker(wds.split_by_node(iter(urls))))
        if [u["k"] for u in mine] != list(start.shards):
            raise RuntimeError(f"webdataset split the shards as {[u['k'] for u in mine]}, the order says "
                               f"{list(start.shards)}")
        # a resumed stream skips the shards it had read wholly whose frames are no longer buffered
        buffered = {f: i for i, f in enumerate(start.buffer)}
        first = {}  # shard -> its first input index in this stream
        n = 0
        for u in mine:
            first[u["k"]] = n
            n += len(spec.frames(u["k"]))
        needed = [u for u in mine if first[u["k"]] + len(spec.frames(u["k"])) > start.read
                  or any(f in buffered for f in spec.frames(u["k"]))]
        files = tar_file_expander(self._opened(needed, current))
        samples = group_by_keys(self._checked_files(files, current))
        restored: list[Any] = [None] * len(start.buffer)
        inputs = self._inputs(samples, first, start.read, buffered, restored)
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = start.rng_state
        buf: ShuffleBuffer[tuple[int, dict]] = ShuffleBuffer(spec.buffer, rng, restored)
        for k, sample in shuffled(inputs, buf):
            yield self._decode(k, sample)

    def _opened(self, urls: list[dict], current: _Current) -> Iterator[dict]:
        """The shards as webdataset's tar expander takes them, read through a hashing file."""
        for u in urls:
            current.close()
            current.path, current.k = u["url"], u["k"]
            try:
                current.fh = open(u["url"], "rb")
            except OSError as e:
                raise DatasetError(u["url"], None, f"shard not readable ({e.strerror or e})") from None
            current.file = HashingFile(current.fh)
            yield {"url": u["url"], "stream": current.file}

    def _checked_files(self, files: Iterable[dict], current: _Current) -> Iterator[dict]:
        """Tar members as webdataset gives them (``{}`` at each shard's end), checked: keys follow
        the shard's frames in order, and at the end the count and the sha256."""
        m = self.manifest
        keys: list[str] = []
        for f in files:
            if not f:
                entry = m.shards[current.k]
                frames = self.spec.frames(current.k)
                if len(keys) != len(frames):
                    raise DatasetError(current.path, None, f"holds {len(keys)} samples, {SHARDS} lists {len(frames)}")
                assert current.file is not None
                if current.file.drain() != entry.sha256:
                    raise DatasetError(current.path, None, f"sha256 differs from the one {SHARDS} lists: the shard "
                                       "changed or is damaged; export the shards again")
                keys = []
                yield f
                continue
            key = f["fname"].split(".", 1)[0]
            if not keys or keys[-1] != key:
                frames = self.spec.frames(current.k)
                want = sample_key(frames[len(keys)]) if len(keys) < len(frames) else None
                if key != want:
                    raise DatasetError(current.path, f["fname"], f"sample {len(keys) + 1} has key {key!r}, expected "
                                       + (repr(want) if want else f"no more than the {len(frames)} samples {SHARDS} "
                                          "lists"))
                keys.append(key)
            yield f

    def _inputs(self, samples: Iterable[dict], first: dict[int, int], read: int, buffered: dict[int, int],
                restored: list) -> Iterator[tuple[int, dict]]:
        """(shard, sample) of the stream's inputs from input ``read`` on; the buffered frames
        before it go to ``restored`` (at their buffer places) instead."""
        needed = [MEMBER["labels"], MEMBER["rgb"]] + ([MEMBER["depth"]] if self.with_depth else [])
        shard_of = {str(self.root / e.name): k for k, e in enumerate(self.manifest.shards)}
        checked = not restored
        for sample in samples:
            k, frame = shard_of[sample["__url__"]], int(sample["__key__"])
            for suffix in needed:
                if suffix not in sample:
                    raise DatasetError(f"{sample['__url__']}/{sample['__key__']}.{suffix}", None,
                                       "missing: every sample holds its frame record and images")
            item = (k, {s: sample[s] for s in needed} | {"__key__": sample["__key__"]})
            if first[k] + frame - self.spec.frames(k).start < read:
                if frame in buffered:
                    restored[buffered[frame]] = item
                continue
            if not checked:
                checked = _restored(restored)
            yield item
        if not checked:
            _restored(restored)

    def _decode(self, k: int, sample: dict) -> StreamItem:
        key = sample["__key__"]
        where = f"{self.root / self.manifest.shards[k].name}/{key}"
        frame = int(key)
        rec = parse_record(sample[MEMBER["labels"]], f"{where}.{MEMBER['labels']}", frame)
        entry = record_entry(self.root, rec, self.flt)
        depth = None
        if self.with_depth:
            depth = decode_depth(read_pixels(sample[MEMBER["depth"]], f"{where}.{MEMBER['depth']}"))
        entry = dataclasses.replace(entry, image=Path(f"{where}.{MEMBER['rgb']}"), depth=None, depth_map=depth)
        image = image_tensor(read_pixels(sample[MEMBER["rgb"]], f"{where}.{MEMBER['rgb']}", mode="RGB"))
        return StreamItem(self.epoch, frame, image, entry)


class StreamBatches:
    """The steps of a run from a shard set (``engine.Batches``), one source named ``data``.

    Args:
        root: the shard set (``longtail export --format webdataset``).
        steps: steps of the run.
        batch: samples per step.
        seed: run seed (the order's).
        buffer: shuffle buffer per worker, in samples.
        workers: data-loader worker processes (0: read in the training process).
        augment: weather (or sensor) augmentation applied to every sample on the fly.
        flt: object filter.

    The node (rank among nodes) is the environment's, as ``wds.split_by_node`` reads it in the
    workers (``node_info``): ``RANK``/``WORLD_SIZE``, or torch.distributed once initialised.
    """

    def __init__(self, root: Path, steps: int, batch: int, seed: int, buffer: int = DEFAULT_BUFFER,
                 workers: int = DEFAULT_WORKERS, augment: Augment | None = None, flt: ExportFilter = ExportFilter()):
        for name, value in (("steps", steps), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, f"expected an integer >= 1, got {value!r}")
        self.root = Path(root)
        self.manifest = open_shards(self.root)
        self.spec = StreamSpec(self.manifest.source.frame_count, self.manifest.shard_size, seed, buffer, workers,
                               *node_info())
        self.order = StreamOrder(self.spec)
        self._steps, self.batch, self.flt = steps, batch, flt
        self.augment: Mapping[str, Augment] = {SOURCE: augment} if augment is not None else {}
        self._sample = 0  # the next sample load() gives
        self._items: Generator[StreamItem | Failure, None, None] | None = None
        self._pending: dict[tuple[int, int], StreamItem] = {}

    @property
    def steps(self) -> int:
        return self._steps

    def stage(self, step: int) -> int:
        return 0

    def pairs(self, step: int) -> list[tuple[str, int]]:
        if not 0 <= step < self._steps:
            raise IndexError(f"step {step} outside 0..{self._steps - 1}")
        return [(SOURCE, f) for _, f in self.order.take(step * self.batch, self.batch)]

    def seek(self, step: int, position: dict | None) -> None:
        """Continue after ``step`` steps; ``position`` (the checkpoint's) must be where the order
        says those steps end."""
        if position is not None and position != self.position(step):
            raise InputError("checkpoint", "run.data", f"the stream stood at {_where(position)}, this shard set and "
                             f"order put step {step} at {_where(self.position(step))}; resume with the same data")
        self.close()
        self._sample = step * self.batch

    def position(self, step: int) -> dict:
        return self.order.position(step * self.batch)

    def load(self, pairs: list[tuple[str, int]], rng: np.random.Generator | None = None
             ) -> list[tuple[torch.Tensor, dict]]:
        """The next ``len(pairs)`` samples of the stream (the frames ``pairs`` names), with the
        augmentation drawn from ``rng``."""
        want = self.order.take(self._sample, len(pairs))
        if [f for _, f in want] != [i for _, i in pairs]:
            raise ValueError("load() takes the pairs of the next step, in order")
        fx = self.augment.get(SOURCE)
        if fx is not None and rng is None:
            raise ValueError("augmented sources need the step's generator")
        out = []
        for e, f in want:
            item = self._next(e, f)
            image, target = item.image, entry_target(item.entry)
            if fx is not None:
                assert rng is not None
                image, target["conditions"]["augment"] = fx(image, item.entry, rng, None)
            out.append((image, target))
        self._sample += len(want)
        return out

    def _next(self, epoch: int, frame: int) -> StreamItem:
        """The item of (epoch, frame): from the few the loader gave early, or the next ones."""
        if self._items is None:
            self._items = self._stream(*self.order.locate(self._sample))
        while (epoch, frame) not in self._pending:
            item = next(self._items, None)
            if item is None:
                raise RuntimeError(f"the stream ended before epoch {epoch} frame {frame}")
            if isinstance(item, Failure):
                self.close()
                raise DatasetError(item.source, item.field, item.problem)
            self._pending[(item.epoch, item.frame)] = item
            if len(self._pending) > 4 * self.spec.streams + self.batch:
                raise RuntimeError(f"the stream gave {sorted(self._pending)} waiting for epoch {epoch} frame {frame}")
        return self._pending.pop((epoch, frame))

    def _stream(self, epoch: int, pos: int) -> Generator[StreamItem | Failure, None, None]:
        """Items from ``pos`` samples into ``epoch`` on, epoch after epoch."""
        while True:
            starts = self.order.starts(epoch, pos) if pos else None
            dataset = ShardStream(self.root, self.manifest, self.spec, epoch, starts, self.flt,
                                  with_depth=bool(self.augment))
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=self.spec.workers,
                                                 collate_fn=_as_is)
            yield from loader
            epoch, pos = epoch + 1, 0

    def close(self) -> None:
        if self._items is not None:
            self._items.close()  # its data loader, and the loader's workers, go with it
        self._items, self._pending = None, {}

    def describe(self) -> dict:
        out = {"sampler": {"kind": "stream", "batch": self.batch, **self.spec.to_json()},
               "datasets": {SOURCE: {"kind": "wds", "path": str(self.root), "images": self.spec.frame_count,
                                     "shards": self.spec.shards, "shard_size": self.spec.shard_size}}}
        if self.augment:
            out["augment"] = {k: a.describe() for k, a in self.augment.items()}
        return out


def _where(position: dict) -> str:
    return f"sample {position.get('sample')} (epoch {position.get('epoch')}, {position.get('in_epoch')} in)"


def check_shards(root: Path) -> dict:
    """Read every shard of the set at ``root`` once, front to back, as the stream does: keys,
    counts, sha256 and every sample's record (``train --dry-run``). Returns {images, shards}.

    Raises:
        DatasetError: the first problem, naming its file.
    """
    m = open_shards(root)
    spec = StreamSpec(m.source.frame_count, m.shard_size, 0, 1, 0)
    stream = ShardStream(root, m, spec, 0)
    current = _Current()
    try:
        urls = [{"url": str(Path(root) / e.name), "k": k} for k, e in enumerate(m.shards)]
        samples = group_by_keys(stream._checked_files(tar_file_expander(stream._opened(urls, current)), current))
        for sample in samples:
            where = f"{current.path}/{sample['__key__']}.{MEMBER['labels']}"
            if MEMBER["labels"] not in sample:
                raise DatasetError(where, None, "missing: every sample holds its frame record")
            parse_record(sample[MEMBER["labels"]], where, int(sample["__key__"]))
    except TAR_ERRORS as e:
        raise DatasetError(current.path, None, f"not a readable tar file ({_tar_problem(e)})") from None
    finally:
        current.close()
    return {"images": m.source.frame_count, "shards": len(m.shards)}
