"""A folder dataset as WebDataset tar shards (``export_shards``; layout in ``longtail.shards``), and
the shards' COCO files merged back into one (``merge_coco``).

Memory stays flat: the export holds one frame's files at a time (plus the COCO entries of the
shard being written), the merge one shard's COCO file at a time. Every file is written under a
temporary name and renamed; ``shards.partial.json`` lists the shards finished so far and
``shards.json`` is written last, so a rerun of an interrupted export keeps every listed shard
whose sha256 still matches and writes the rest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from longtail import __version__
from longtail.atomic import json_bytes, open_atomic, remove_stale_tmp, sha256_file, write_json
from longtail.dataset import MAX_FRAMES, Manifest, frame_files
from longtail.errors import DatasetError, InputError, ParameterError
from longtail.readers import parse_json, read_bytes
from longtail.records import parse_record
from longtail.labelers.coco import to_coco
from longtail.labelers.export import check_output_path
from longtail.shards import (DEFAULT_SHARD_SIZE, MEMBER, PARTIAL, SHARDS, Sample, ShardedFrom, ShardEntry,
                             ShardManifest, coco_name, is_sharded, load_shard_manifest, sample_key, shard_index,
                             shard_name, write_shard)

__all__ = ["export_shards", "merge_coco"]


def export_shards(root: Path, out: Path, shard_size: int = DEFAULT_SHARD_SIZE) -> dict:
    """Write the complete folder dataset at ``root`` as WebDataset shards of ``shard_size``
    frames into ``out``, each frame's files copied byte for byte (and checked against the
    dataset's manifest on the way), with a COCO file per shard.

    ``out`` may be new, empty, or an earlier (complete or interrupted) export of the same dataset
    at the same shard size: shards listed there whose sha256 matches are kept, the rest written.

    Returns:
        Summary: format, out, samples, shard_size, shards, written, reused.

    Raises:
        ParameterError: ``shard_size`` is not a positive integer.
        DatasetError: an unusable dataset, or an output path holding anything else (refused
            before anything is written); a dataset file that differs from its manifest (found
            while writing: finished shards stay, and a rerun resumes).
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or not 1 <= shard_size <= MAX_FRAMES:
        raise ParameterError("shard_size", f"expected an integer from 1 to {MAX_FRAMES}, got {shard_size!r}")
    root, out = Path(root), Path(out)
    manifest = _source(root)
    want = ShardManifest(
        longtail_version=__version__, shard_size=shard_size, shards=[],
        depth_encoding=manifest.to_json()["depth_encoding"],
        source=ShardedFrom(scenario=manifest.scenario, scenario_digest=manifest.scenario_digest, seed=manifest.seed,
                           frame_count=manifest.frame_count, sequence=manifest.sequence,
                           files_digest=hashlib.sha256(json_bytes(manifest.files)).hexdigest()))
    check_output_path(out, root)
    done = _reusable(out, want)
    n = want.shard_count
    summary: dict[str, Any] = {"format": "webdataset", "out": str(out), "samples": manifest.frame_count,
                               "shard_size": shard_size, "shards": n, "written": n - len(done), "reused": len(done)}
    if len(done) == n and (out / SHARDS).is_file():
        (out / PARTIAL).unlink(missing_ok=True)
        return summary
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    _save(out / PARTIAL, want, done)
    (out / SHARDS).unlink(missing_ok=True)  # from here on, its absence says: not complete
    description = f"longtail: {manifest.scenario.get('name')}"  # as the render names coco.json
    for k in range(n):
        if k not in done:
            done[k] = _write_one(root, out, manifest, want, k, description)
            _save(out / PARTIAL, want, done)
    _save(out / SHARDS, want, done)
    (out / PARTIAL).unlink()
    return summary


def _source(root: Path) -> Manifest:
    """The manifest of the complete folder dataset at ``root``, listing every frame file."""
    if not root.is_dir():
        raise DatasetError(str(root), None, "dataset directory not found")
    if is_sharded(root):
        raise DatasetError(str(root), None, "is a shard set already; export shards from a folder dataset")
    manifest = Manifest.load(root)
    if not manifest.complete:
        raise DatasetError(str(root / "manifest.json"), "complete", "false: the render did not finish; rerun the "
                           "same render command to complete the dataset, then export")
    for i in range(manifest.frame_count):
        for rel in frame_files(i).values():
            if rel not in manifest.files:
                raise DatasetError(str(root / "manifest.json"), "files", f"{rel} is not listed; run `longtail "
                                   "verify` on the dataset")
    return manifest


def _reusable(out: Path, want: ShardManifest) -> dict[int, ShardEntry]:
    """The shards an earlier export of the same dataset left intact in ``out``, by position.

    Raises:
        DatasetError: ``out`` is not empty and holds no shards of this dataset at this size.
    """
    if not out.exists() or not any(out.iterdir()):
        return {}
    if not is_sharded(out):
        raise DatasetError(str(out), None, "output directory is not empty and holds no longtail shards; choose a "
                           "new output directory")
    have = load_shard_manifest(out, partial=not (out / SHARDS).is_file())
    if have.source.files_digest != want.source.files_digest:
        raise DatasetError(str(out), None, "holds the shards of another dataset (or of this one before its files "
                           "changed); choose a new output directory")
    if have.shard_size != want.shard_size:
        raise DatasetError(str(out), None, f"holds shards of {have.shard_size} frames, not {want.shard_size}; "
                           "choose a new output directory or the same shard size")
    return {k: e for e in have.shards
            if (k := shard_index(e)) is not None and _intact(out / e.name, e.sha256) and _intact(out / e.coco,
                                                                                                  e.coco_sha256)}


def _intact(path: Path, sha: str) -> bool:
    try:
        return path.is_file() and sha256_file(path) == sha
    except OSError:
        return False


def _save(path: Path, want: ShardManifest, done: dict[int, ShardEntry]) -> None:
    write_json(path, want.model_copy(update={"shards": [done[k] for k in sorted(done)]}).to_json())


def _read_checked(root: Path, rel: str, sha: str) -> bytes:
    path = root / rel
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(str(path), None, f"dataset file not readable ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise DatasetError(str(path), None, "sha256 differs from the dataset manifest's: the file changed after it "
                           "was written; run `longtail verify` on the dataset")
    return data


def _write_one(root: Path, out: Path, manifest: Manifest, want: ShardManifest, k: int,
               description: str) -> ShardEntry:
    """Write shard ``k`` and its COCO file; return its entry."""
    images: list[dict] = []
    annotations: list[dict] = []
    coco: dict[str, Any] = {}

    def samples() -> Iterator[Sample]:
        for i in want.frames(k):
            files = frame_files(i)
            members = {MEMBER[kind]: _read_checked(root, rel, manifest.files[rel]) for kind, rel in files.items()}
            record = parse_record(members[MEMBER["labels"]], str(root / files["labels"]), i)
            # the shard's COCO file as to_coco makes it of all its records, built a frame at a time
            part = to_coco([record], description)
            images.extend(part["images"])
            for ann in part["annotations"]:
                annotations.append(ann | {"id": len(annotations) + 1})
            coco.update(info=part["info"], categories=part["categories"])
            yield sample_key(i), members

    sha, count = write_shard(out / shard_name(k), samples())
    coco_sha = write_json(out / coco_name(k), coco | {"images": images, "annotations": annotations})
    return ShardEntry(name=shard_name(k), samples=count, sha256=sha, coco=coco_name(k), coco_sha256=coco_sha)


# --- one COCO file from the shards' ones ---------------------------------------------------------

MERGED_KEYS = ("annotations", "categories", "images", "info")  # json_bytes' (sorted) order


def merge_coco(root: Path, dest: Path) -> dict:
    """Write one COCO file at ``dest`` from the per-shard COCO files of the shard set at ``root``,
    holding one of them in memory at a time (two passes: annotations, then images).

    Image ids are renumbered 1, 2, ... in shard and file order and annotation ids 1, 2, ... the
    same way, their ``image_id`` following; ``info`` and ``categories`` are the first shard's. The
    file is written as ``longtail.atomic.json_bytes`` would write the whole dict: for shards of a
    rendered dataset it is the dataset's own coco.json, byte for byte.

    Returns:
        {out, images, annotations}.

    Raises:
        DatasetError: no complete shard set, or a COCO file that is missing, differs from its
            sha256 in shards.json, or is malformed.
    """
    root, dest = Path(root), Path(dest)
    m = load_shard_manifest(root)
    head: dict[str, Any] = {}
    counts = {"images": 0, "annotations": 0}

    def items(key: str) -> Iterator[dict]:
        first_image = first_ann = 1
        for e in m.shards:
            path = root / e.coco
            coco = _load_coco(path, e.coco_sha256)
            try:
                images, annotations = _renumbered(coco, first_image, first_ann)
                for k in ("categories", "info"):
                    head.setdefault(k, coco[k])
                    if coco[k] != head[k]:
                        raise ValueError(f"{k} differ from those of {m.shards[0].coco}")
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise DatasetError(str(path), None, f"malformed COCO file ({type(err).__name__}: {err})") from None
            first_image, first_ann = first_image + len(images), first_ann + len(annotations)
            yield from images if key == "images" else annotations
        counts[key] = first_image - 1 if key == "images" else first_ann - 1

    with open_atomic(dest) as fh:
        fh.write(b"{\n")
        for i, key in enumerate(MERGED_KEYS):
            fh.write(f"  {json.dumps(key)}: ".encode())
            if key in ("annotations", "images"):
                _write_list(fh, items(key))
            else:
                fh.write(_dumps(head.get(key, {} if key == "info" else []), 1))
            fh.write(b",\n" if i < len(MERGED_KEYS) - 1 else b"\n")
        fh.write(b"}\n")
    return {"out": str(dest), **counts}


def _load_coco(path: Path, sha: str) -> Any:
    try:
        raw = read_bytes(path, "COCO file")
        if hashlib.sha256(raw).hexdigest() != sha:
            raise InputError(str(path), None, f"sha256 differs from the one {SHARDS} lists; run `longtail verify`")
        return parse_json(raw, str(path))
    except InputError as e:
        raise DatasetError(e.source, e.field, e.problem) from None


def _renumbered(coco: dict, first_image: int, first_ann: int) -> tuple[list[dict], list[dict]]:
    """The images and annotations of one COCO file with ids from ``first_image`` and ``first_ann``."""
    ids: dict[Any, int] = {}
    images: list[dict] = []
    for im in coco["images"]:
        if im["id"] in ids:
            raise ValueError(f"image id {im['id']!r} appears twice")
        ids[im["id"]] = first_image + len(ids)
        images.append(im | {"id": ids[im["id"]]})
    annotations: list[dict] = []
    for a in coco["annotations"]:
        if a["image_id"] not in ids:
            raise ValueError(f"annotation {a.get('id')!r}: image_id {a['image_id']!r} has no image")
        annotations.append(a | {"id": first_ann + len(annotations), "image_id": ids[a["image_id"]]})
    return images, annotations


def _dumps(value: Any, level: int) -> bytes:
    """``value`` as ``json_bytes`` writes it ``level`` levels deep (its lines indented to match)."""
    return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + "  " * level).encode()


def _write_list(fh: BinaryIO, items: Iterable[Any]) -> None:
    """A list at level 1 of a ``json_bytes`` document, written an item at a time."""
    empty = True
    for item in items:
        fh.write((b"[\n" if empty else b",\n") + b"    " + _dumps(item, 2))
        empty = False
    fh.write(b"[]" if empty else b"\n  ]")
