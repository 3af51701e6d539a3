"""A dataset as WebDataset tar shards: the layout, the shard manifest, and writing and reading shards.

Layout (``labelers.shard_export.export_shards`` writes it from a folder dataset)::

    OUT/shard-000000.tar          frames 0 .. shard_size - 1, one sample per frame, in frame order
    OUT/shard-000000.coco.json    COCO of those frames (the dataset's coco.json cut to them)
    OUT/shard-000001.tar ...
    OUT/shards.json               the shard manifest, written last: its presence means complete
    OUT/shards.partial.json       only while an export runs: the shards finished so far (resume)

A sample is one frame. Its key is the frame index in six digits (``000042``, no dots: WebDataset
splits a member name at the first dot into key and suffix) and its members are the frame's files
byte for byte: ``000042.depth.png``, ``000042.instance.png``, ``000042.json`` (the frame record),
``000042.rgb.png``, ``000042.semantic.png``. The record's ``files`` keep the folder dataset's
paths (``rgb/000042.png``); in a shard each kind is the member of that suffix.

Shards are plain USTAR archives with every header field fixed (mtime 0, uid and gid 0, no user
or group name, mode 0444) and members in sorted order, so the same dataset gives byte-identical
shards. They are written with Python's ``tarfile`` rather than ``webdataset.TarWriter``: that
writer gives the same bytes when told ``mtime=0, user="", group="", encoder=False`` (a test
checks it), but the format would then hang on a third-party default for every other header
field, longtail would need the library at run time for a dozen lines, and its ``ShardWriter``
opens its output by name, where a shard here must be written under a temporary name and renamed
(an interrupted export never leaves a torn shard behind).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import tarfile
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Callable, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from longtail.atomic import open_atomic
from longtail.dataset import MAX_FRAMES, load_format_json
from longtail.errors import DatasetError
from longtail.records import parse_record

SHARDS = "shards.json"
PARTIAL = "shards.partial.json"
FORMAT: Literal["longtail-shards"] = "longtail-shards"
FORMAT_VERSION: Literal[1] = 1
DEFAULT_SHARD_SIZE = 1000
# The member suffix of each kind of frame file (``longtail.dataset.FRAME_KINDS``).
MEMBER = {"rgb": "rgb.png", "depth": "depth.png", "instance": "instance.png", "semantic": "semantic.png",
          "labels": "json"}
MEMBERS = tuple(sorted(MEMBER.values()))  # in the order they follow each other in a sample
TAR_MTIME = 0
TAR_MODE = 0o444
# what the tarfile module raises on a damaged archive (bad headers, truncated data, odd numbers)
TAR_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, OverflowError)
_SHARD_NAME = re.compile(r"^shard-([0-9]{6,})\.tar$")


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.tar"


def coco_name(k: int) -> str:
    """The COCO file of shard ``k``, next to it."""
    return f"shard-{k:06d}.coco.json"


def sample_key(index: int) -> str:
    """The sample key of frame ``index`` (its file stem in the folder dataset)."""
    return f"{index:06d}"


def is_sharded(root: Path) -> bool:
    """True if ``root`` holds a shard set, complete (shards.json) or being written."""
    return (Path(root) / SHARDS).is_file() or (Path(root) / PARTIAL).is_file()


def is_shard_file(name: str) -> bool:
    """True if ``name`` is named like a shard or a shard's COCO file."""
    return bool(_SHARD_NAME.match(name) or _SHARD_NAME.match(name.replace(".coco.json", ".tar")))


# --- the shard manifest --------------------------------------------------------------------------

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ShardEntry(_Model):
    """One shard: its tar file and COCO file (names in OUT) with their sha256, and its sample count."""

    name: str
    samples: Annotated[int, Field(ge=1, le=MAX_FRAMES)]
    sha256: Sha256
    coco: str
    coco_sha256: Sha256


class ShardedFrom(_Model):
    """The folder dataset the shards hold: its manifest's identity. ``files_digest`` is the sha256
    of its canonical file list (path -> sha256), so it names one exact set of bytes."""

    scenario: dict
    scenario_digest: str
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    frame_count: Annotated[int, Field(ge=1, le=MAX_FRAMES)]
    sequence: Annotated[int, Field(ge=1, le=MAX_FRAMES)] = 1
    files_digest: Sha256


class ShardManifest(_Model):
    """What ``shards.json`` holds (other keys pass). Shard ``k`` holds frames ``frames(k)``."""

    format: Literal["longtail-shards"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    longtail_version: str
    source: ShardedFrom
    shard_size: Annotated[int, Field(ge=1, le=MAX_FRAMES)]
    members: tuple[str, ...] = MEMBERS
    depth_encoding: dict
    shards: list[ShardEntry]

    @property
    def shard_count(self) -> int:
        return math.ceil(self.source.frame_count / self.shard_size)

    def frames(self, k: int) -> range:
        """The frame indices of shard ``k``."""
        return range(k * self.shard_size, min((k + 1) * self.shard_size, self.source.frame_count))

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def shard_index(entry: ShardEntry) -> int | None:
    """The position ``k`` an entry's name gives (``shard-00000k.tar``), or None if misnamed."""
    m = _SHARD_NAME.match(entry.name)
    return int(m.group(1)) if m and entry.name == shard_name(int(m.group(1))) else None


def _layout_problem(m: ShardManifest, partial: bool) -> tuple[str, str] | None:
    """(field, problem) if the entries do not fit the frame count and shard size; None if they do.

    A complete manifest lists every shard in order; a partial one any of them, in order."""
    if m.members != MEMBERS:
        return "members", f"{list(m.members)}, expected {list(MEMBERS)}"
    if not partial and len(m.shards) != m.shard_count:
        return "shards", (f"lists {len(m.shards)} shards; {m.source.frame_count} frames in shards of "
                          f"{m.shard_size} make {m.shard_count}")
    last = -1
    for i, e in enumerate(m.shards):
        k = shard_index(e)
        if k is None or k <= last or k >= m.shard_count or (not partial and k != i):
            want = shard_name(i) if not partial else "shard-NNNNNN.tar, in order, one per shard"
            return f"shards[{i}].name", f"{e.name!r}, expected {want!r}"
        last = k
        if e.coco != coco_name(k):
            return f"shards[{i}].coco", f"{e.coco!r}, expected {coco_name(k)!r}"
        if e.samples != len(m.frames(k)):
            return f"shards[{i}].samples", f"{e.samples}, expected {len(m.frames(k))} (frames {m.frames(k).start}.." \
                                           f"{m.frames(k).stop - 1})"
    return None


def load_shard_manifest(root: Path, partial: bool = False) -> ShardManifest:
    """The shard manifest of the shard set at ``root``: ``shards.json``, or with ``partial`` the
    progress file of an export that has not finished.

    Raises:
        DatasetError: naming the file, the field and the expectation.
    """
    root = Path(root)
    path = root / (PARTIAL if partial else SHARDS)
    if not partial and not path.is_file() and (root / PARTIAL).is_file():
        raise DatasetError(str(path), None, "missing: the export of these shards did not finish; rerun the same "
                           "export command to complete it")
    m = load_format_json(path, "shard manifest", FORMAT, ShardManifest, "this file is not a longtail shard manifest")
    problem = _layout_problem(m, partial)
    if problem is not None:
        raise DatasetError(str(path), *problem)
    return m


# --- tar files -----------------------------------------------------------------------------------

class HashingFile:
    """A binary file seen through ``read``/``write`` that hashes every byte passing (sha256)."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        return data

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.fh.write(data)

    def drain(self) -> str:
        """Read the rest of the file; return the sha256 of all of it."""
        while self.read(1 << 20):
            pass
        return self.sha.hexdigest()


def tar_info(name: str, size: int) -> tarfile.TarInfo:
    """The header of a regular member, every field fixed (reproducible archives)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = TAR_MTIME
    info.mode = TAR_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


Sample = tuple[str, dict[str, bytes]]  # (key, suffix -> bytes)


def write_shard(path: Path, samples: Iterable[Sample]) -> tuple[str, int]:
    """Write ``samples`` as a tar at ``path`` (atomically, streaming one sample at a time).

    Returns:
        (sha256 of the file, number of samples).
    """
    n = 0
    with open_atomic(path) as fh:
        out = HashingFile(fh)
        tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT)  # type: ignore[call-overload]
        for key, members in samples:
            for suffix in sorted(members):
                data = members[suffix]
                tf.addfile(tar_info(f"{key}.{suffix}", len(data)), io.BytesIO(data))
            n += 1
        tf.close()
    return out.sha.hexdigest(), n


def _tar_error(source: str, e: BaseException) -> DatasetError:
    return DatasetError(source, None, f"not a readable tar file ({str(e) or type(e).__name__})")


def _members(tf: tarfile.TarFile, source: str) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            info = tf.next()
        except TAR_ERRORS as e:
            raise _tar_error(source, e) from None
        if info is None:
            return
        yield info


def _read_member(tf: tarfile.TarFile, info: tarfile.TarInfo, source: str) -> bytes:
    try:
        fh = tf.extractfile(info)
        data = fh.read() if fh is not None else b""
    except TAR_ERRORS as e:
        raise _tar_error(source, e) from None
    if len(data) != info.size:
        raise DatasetError(source, info.name, f"{len(data)} of its {info.size} bytes in the file: truncated")
    return data


def samples_of(tf: tarfile.TarFile, source: str, want: Callable[[str], bool] = lambda suffix: True) -> Iterator[Sample]:
    """The samples of an open tar, in order, as WebDataset groups them: consecutive members
    sharing a key (the name up to its first dot). Only members whose suffix ``want`` accepts are
    read; the rest are skipped.

    Raises:
        DatasetError: an unreadable archive, or a member that is not a regular file, has no
            ``key.suffix`` name or appears twice in its sample.
    """
    key: str | None = None
    members: dict[str, bytes] = {}
    for info in _members(tf, source):
        k, dot, suffix = info.name.partition(".")
        if not info.isreg():
            raise DatasetError(source, info.name, "not a regular file; a shard holds only the files of its samples")
        if not dot or not k or not suffix:
            raise DatasetError(source, info.name, "expected a member named KEY.SUFFIX, e.g. 000042.rgb.png")
        if key is not None and k != key:
            yield key, members
            members = {}
        key = k
        if suffix in members:
            raise DatasetError(source, info.name, "appears twice in its sample")
        if want(suffix):
            members[suffix] = _read_member(tf, info, source)
    if key is not None:
        yield key, members


def stream_samples(fileobj: Any, source: str) -> Iterator[Sample]:
    """Every sample of a tar read front to back from ``fileobj`` (anything with ``read``), every
    member read; one pass, so a ``HashingFile`` sees the whole archive."""
    try:
        tf = tarfile.open(fileobj=fileobj, mode="r|")
    except TAR_ERRORS as e:
        raise _tar_error(source, e) from None
    yield from samples_of(tf, source)


class ShardReader:
    """A complete shard set, read: its manifest, its frame records in frame order, and any member
    of any frame by random access (the member index of one shard at a time is held).

    Use as a context manager: it keeps the shard it last read from open.

    Raises (every method):
        DatasetError: a missing or unreadable shard, or one that does not hold the samples the
            manifest lists.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = load_shard_manifest(self.root)
        self._k: int | None = None
        self._fh: BinaryIO | None = None
        self._index: dict[str, tuple[int, int]] = {}

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._k, self._fh, self._index = None, None, {}

    def _path(self, k: int) -> Path:
        return self.root / self.manifest.shards[k].name

    def _open(self, k: int) -> BinaryIO:
        path = self._path(k)
        try:
            return open(path, "rb")
        except OSError as e:
            raise DatasetError(str(path), None, f"shard not readable ({e.strerror or e}); run `longtail verify` on "
                               "the shard set") from None

    def records(self) -> Iterator[dict]:
        """Every frame record, in frame order, each checked (``longtail.records``)."""
        for k in range(self.manifest.shard_count):
            path, frames = str(self._path(k)), self.manifest.frames(k)
            with self._open(k) as fh:
                try:
                    tf = tarfile.open(fileobj=fh, mode="r:")  # random access: image data is skipped
                except TAR_ERRORS as e:
                    raise _tar_error(path, e) from None
                n = 0
                for n, (key, members) in enumerate(samples_of(tf, path, lambda s: s == MEMBER["labels"]), 1):
                    if n > len(frames):
                        raise DatasetError(path, None, f"holds more than the {len(frames)} samples {SHARDS} lists")
                    index = frames[n - 1]
                    if key != sample_key(index):
                        raise DatasetError(path, None, f"sample {n}: key {key!r}, expected {sample_key(index)!r}")
                    name = f"{path}/{key}.{MEMBER['labels']}"
                    if MEMBER["labels"] not in members:
                        raise DatasetError(name, None, "missing: every sample holds its frame record")
                    yield parse_record(members[MEMBER["labels"]], name, index)
                if n < len(frames):
                    raise DatasetError(path, None, f"holds {n} samples, {SHARDS} lists {len(frames)}")

    def member_name(self, index: int, kind: str) -> str:
        """Where the file of ``kind`` of frame ``index`` is: ``shard-000000.tar/000042.rgb.png``."""
        return f"{shard_name(index // self.manifest.shard_size)}/{sample_key(index)}.{MEMBER[kind]}"

    def member(self, index: int, kind: str) -> bytes:
        """The file of ``kind`` (``longtail.dataset.FRAME_KINDS``) of frame ``index``."""
        if not 0 <= index < self.manifest.source.frame_count:
            raise DatasetError(str(self.root / SHARDS), None, f"frame {index} is not in the shard set")
        k = index // self.manifest.shard_size
        if k != self._k:
            self.close()
            self._fh = self._open(k)
            self._k = k
            path = str(self._path(k))
            try:
                tf = tarfile.open(fileobj=self._fh, mode="r:")
            except TAR_ERRORS as e:
                raise _tar_error(path, e) from None
            self._index = {i.name: (i.offset_data, i.size) for i in _members(tf, path) if i.isreg()}
        name = f"{sample_key(index)}.{MEMBER[kind]}"
        where = str(self.root / self.member_name(index, kind))
        if name not in self._index:
            raise DatasetError(where, None, "missing from its shard")
        assert self._fh is not None
        offset, size = self._index[name]
        try:
            self._fh.seek(offset)
            data = self._fh.read(size)
        except OSError as e:
            raise DatasetError(where, None, f"not readable ({e.strerror or e})") from None
        if len(data) != size:
            raise DatasetError(where, None, f"{len(data)} of its {size} bytes in the shard: truncated")
        return data
