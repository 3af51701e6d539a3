"""Export a longtail dataset to COCO, KITTI, YOLO or Cityscapes: the one function that touches disk.

The formats are pure functions of the frame records (``labelers.coco``, ``kitti``, ``yolo``,
``cityscapes``), looked up by name in ``EXPORTERS``. ``export_dataset`` reads and checks the
dataset, refuses an output directory that holds anything but an earlier export of the same format,
writes the files into a hidden sibling directory and renames it into place at the end, so an
interrupted export leaves the output as it was (absent, or the earlier export).

The dataset is a folder dataset or a shard set (``longtail.shards``): ``open_frames`` gives the
exporters the same records and file bytes from either. (WebDataset shards themselves are written
by ``labelers.shard_export``.)
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from longtail import __version__
from longtail.atomic import write_bytes, write_json, write_png
from longtail.dataset import IMAGE_LAYOUT, MANIFEST, Manifest, check_frame_image, frame_files
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json, read_image
from longtail.records import read_record
from longtail.shards import ShardReader, is_sharded
from longtail.labelers.cityscapes import cityscapes_files
from longtail.labelers.coco import coco_files
from longtail.labelers.export_base import Content, Copy, Exporter, ExportFilter, split_objects
from longtail.labelers.kitti import kitti_files
from longtail.labelers.yolo import yolo_files
from longtail.registry import Registry

__all__ = ["EXPORTERS", "ExportFilter", "export_dataset", "get_exporter", "list_exporters", "load_records"]

EXPORTERS: Registry[Exporter] = Registry("export format")
EXPORTERS.add("coco", coco_files)
EXPORTERS.add("kitti", kitti_files)
EXPORTERS.add("yolo", yolo_files)
EXPORTERS.add("cityscapes", cityscapes_files)

# Written last into every export; marks a directory as an export this function may replace.
MARKER = "longtail_export.json"
MARKER_FORMAT = "longtail-export"


def get_exporter(name: str) -> Exporter:
    """The exporter of a format; KeyError listing the formats if unknown."""
    return EXPORTERS.get(name)


def list_exporters() -> list[str]:
    return EXPORTERS.names()


def load_records(root: Path) -> list[dict]:
    """Frame records of a complete dataset, in frame order.

    Raises:
        DatasetError: no dataset directory, no readable manifest, an incomplete dataset, or a frame
            record that is missing, unreadable or lacks a field the exporters read.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(str(root), None, "dataset directory not found")
    manifest = Manifest.load(root)
    if not manifest.complete:
        raise DatasetError(str(root / MANIFEST), "complete", "false: the render did not finish; rerun the same "
                           "render command to complete the dataset, then export")
    return [_read_record(root, i) for i in range(manifest.frame_count)]


def _read_record(root: Path, index: int) -> dict:
    return read_record(root / frame_files(index)["labels"], index)


@dataclass
class Frames:
    """A dataset as the exporters see it: frame records in frame order, and the bytes of a file
    a record names (``rgb/000042.png``, ...). ``where`` names that file in messages."""

    records: list[dict]
    read: Callable[[str], bytes]
    where: Callable[[str], str]


@contextmanager
def open_frames(root: Path) -> Iterator[Frames]:
    """The frames of the complete folder dataset or shard set at ``root``.

    Raises:
        DatasetError: see ``load_records``; for shards, ``longtail.shards.ShardReader``.
    """
    root = Path(root)
    if not is_sharded(root):
        def read(rel: str) -> bytes:
            try:
                return (root / rel).read_bytes()
            except OSError as e:
                raise DatasetError(str(root / rel), None, f"dataset file not readable ({e.strerror})") from None
        yield Frames(load_records(root), read, lambda rel: str(root / rel))
        return
    with ShardReader(root) as shards:
        records = list(shards.records())
        # a file a record names -> (frame, kind): the member of that frame's sample
        members = {rel: (r["frame"], kind) for r in records for kind, rel in r["files"].items() if kind in IMAGE_LAYOUT}

        def member(rel: str) -> bytes:
            if rel not in members:
                raise DatasetError(str(root), None, f"no frame record names {rel!r}")
            return shards.member(*members[rel])

        def where(rel: str) -> str:
            return str(root / (shards.member_name(*members[rel]) if rel in members else rel))

        yield Frames(records, member, where)


def _read_marker(out: Path) -> dict | None:
    try:
        data = load_json(out / MARKER)
    except InputError:
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def check_output(out: Path, fmt: str, root: Path) -> None:
    """Refuse an output path that is a file, holds the dataset, or is a non-empty directory other
    than an earlier ``fmt`` export of longtail.

    Raises:
        DatasetError: naming ``out`` and what it holds.
    """
    check_output_path(out, root)
    if not out.exists() or not any(out.iterdir()):
        return
    marker = _read_marker(out)
    if marker is None:
        raise DatasetError(str(out), None, "output directory is not empty and holds no longtail export; "
                           "choose a new output directory")
    if marker.get("export_format") != fmt:
        raise DatasetError(str(out), None, f"holds a {marker.get('export_format')!r} export, not {fmt!r}; "
                           "choose a new output directory")


def check_output_path(out: Path, root: Path) -> None:
    """Refuse an output path that is a file or holds the dataset at ``root`` (DatasetError)."""
    if out.exists() and not out.is_dir():
        raise DatasetError(str(out), None, "output path exists and is not a directory")
    res_out, res_root = out.resolve(), root.resolve()
    if res_out == res_root or res_out in res_root.parents:
        raise DatasetError(str(out), None, "output directory contains the dataset being exported; choose another")


def _scratch(out: Path, kind: str) -> Path:
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}")


def _remove_stale(out: Path) -> None:
    """Delete hidden siblings a killed export of ``out`` left behind (one export per ``out`` at a time)."""
    for kind in ("partial", "old"):
        for p in out.parent.glob(f".{out.name}.{kind}-*"):
            shutil.rmtree(p, ignore_errors=True)


def _write(tmp: Path, rel: str, content: Content, frames: Frames) -> None:
    dest = tmp / rel
    if isinstance(content, Copy):
        write_bytes(dest, frames.read(content.src))
    elif isinstance(content, np.ndarray):
        write_png(dest, content)
    else:
        write_bytes(dest, content)


def _put_in_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``, replacing an earlier export there."""
    if out.exists() and any(out.iterdir()):
        old = _scratch(out, "old")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)  # rename() replaces an empty directory


def export_dataset(root: Path, out: Path, fmt: str, flt: ExportFilter = ExportFilter()) -> dict:
    """Export the dataset at ``root`` to ``out`` in format ``fmt``.

    Images are copied byte for byte. ``out`` may be new, empty, or an earlier export of the same
    format (replaced as a whole once the new one is complete).

    Args:
        root: a complete longtail dataset directory, or a shard set (``longtail.shards``).
        out: the export directory.
        fmt: one of ``list_exporters()``.
        flt: which objects are exported and which become ignore regions.

    Returns:
        Summary: format, out, images, objects (exported), ignored (ignore regions; for YOLO,
        which has none, the objects left out for that reason), files.

    Raises:
        KeyError: unknown ``fmt`` (the message lists the formats).
        DatasetError: an unusable dataset or output directory.
    """
    exporter = get_exporter(fmt)
    root, out = Path(root), Path(out)
    with open_frames(root) as frames:
        return _export(frames, root, out, fmt, exporter, flt)


def _export(frames: Frames, root: Path, out: Path, fmt: str, exporter: Exporter, flt: ExportFilter) -> dict:
    records = frames.records
    check_output(out, fmt, root)

    layouts = {rel: (kind, r["camera"]["width"], r["camera"]["height"]) for r in records
               for kind, rel in r["files"].items() if kind in IMAGE_LAYOUT}

    def load_png(rel: str) -> np.ndarray:
        try:
            img = read_image(frames.read(rel), frames.where(rel))
        except InputError as e:
            raise DatasetError(e.source, e.field, e.problem) from None
        if rel in layouts:
            kind, width, height = layouts[rel]
            check_frame_image(Path(frames.where(rel)), kind, img, width, height)
        return img

    splits = [split_objects(r, flt) for r in records]
    summary: dict[str, Any] = {"format": fmt, "out": str(out), "images": len(records),
                               "objects": sum(len(k) for k, _ in splits), "ignored": sum(len(i) for _, i in splits),
                               "files": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = _scratch(out, "partial")
    tmp.mkdir()
    try:
        for rel, content in exporter(records, flt, out.resolve(), load_png):
            _write(tmp, rel, content, frames)
            summary["files"] += 1
        write_json(tmp / MARKER, {"format": MARKER_FORMAT, "export_format": fmt, "longtail_version": __version__,
                                  "source": str(root.absolute()), "filter": flt.to_json(), "summary": summary})
        _put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
