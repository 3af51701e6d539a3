"""Datasets for training and evaluation, all in one sample format (``longtail.train.entries``).

- ``SyntheticDataset``: a longtail dataset directory (``manifest.json``, frame records);
- ``CocoDataset``, ``KittiDataset``, ``YoloDataset``, ``MotDataset``: real data in standard
  formats (``longtail.train.real``), class names mapped onto longtail's;
- ``open_dataset("KIND:PATH")`` or ``open_dataset("PATH")`` (format detected).

A WebDataset shard set (``wds:PATH``, ``longtail export --format webdataset``) is known here by
kind, but it streams (``longtail.train.stream``, ``longtail train`` only): opening it for random
access is refused with a message saying so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

from longtail.errors import InputError
from longtail.shards import SHARDS
from longtail.classes import get_class
from longtail.labelers.export import load_records
from longtail.labelers.export_base import ExportFilter, object_role
from longtail.train.classmap import ClassMap
from longtail.train.real import (CocoDataset, KittiDataset, MotDataset, YoloDataset, is_coco_json, is_mot_dir,
                                 kitti_root)
from longtail.train.entries import DetectionDataset, Entry, categorical, make_entry, read_image
from longtail.train.tags import apply_tags, load_tags

__all__ = ["DetectionDataset", "Entry", "SyntheticDataset", "CocoDataset", "KittiDataset", "YoloDataset",
           "MotDataset", "open_dataset", "detect_kind", "list_kinds", "read_image"]

# the per-object measures of a frame record an Entry keeps (``Entry.object_attributes``)
OBJECT_ATTRIBUTES = ("distance_m", "occlusion", "truncation")


class SyntheticDataset(DetectionDataset):
    """A longtail dataset directory, read through its frame records.

    Objects with no visible pixel are skipped; objects ``flt`` marks as too hidden (fewer visible
    pixels than ``min_visible_px``, more occluded than ``max_occlusion``) become ignore regions of
    their class, exactly as the COCO export writes them (in record order). ``conditions`` are the
    record's categorical attributes (time_of_day, weather, scenario, event, layout); boxes carry
    ``kitti_difficulty``. ``area`` is the visible mask area. Each object's ``distance_m``,
    ``occlusion`` and ``truncation`` go to the entry's ``object_attributes``.

    Args:
        path: dataset directory (complete: ``manifest.json`` with ``complete: true``).
        flt: the object filter (``labelers.export_base.ExportFilter``).
        tags: optional sidecar of extra per-image tags (keys ``rgb/000000.png`` or ``000000.png``).
    """

    kind = "longtail"

    def __init__(self, path: Path, flt: ExportFilter = ExportFilter(), tags: Path | None = None):
        root = Path(path)
        entries = [record_entry(root, rec, flt) for rec in load_records(root)]
        if tags is not None:
            apply_tags(entries, load_tags(Path(tags)), root, str(tags))
        super().__init__(str(root), entries, Counter())


def record_entry(root: Path, rec: dict, flt: ExportFilter) -> Entry:
    """The Entry of a longtail frame record, its files under ``root`` (see ``SyntheticDataset``)."""
    roles = [(object_role(o, flt), o) for o in rec["objects"]]
    objs = [(role, o) for role, o in roles if role is not None]
    return make_entry(
        root / rec["files"]["rgb"], rec["camera"]["width"], rec["camera"]["height"], rec["frame"] + 1,
        boxes=[o["bbox"] for _, o in objs], labels=[get_class(o["class"]).id for _, o in objs],
        iscrowd=[int(role == "ignore") for role, _ in objs], area=[o["area"] for _, o in objs],
        conditions=categorical(rec["attributes"]), difficulty=[o.get("kitti_difficulty") for _, o in objs],
        depth=root / rec["files"]["depth"] if "depth" in rec["files"] else None,
        camera={k: rec["camera"][k] for k in ("K", "world_from_camera")},
        object_attributes={k: [o.get(k) for _, o in objs] for k in OBJECT_ATTRIBUTES})


def _is_longtail(p: Path) -> bool:
    return p.is_dir() and (p / "manifest.json").is_file()


def _yolo_yaml(p: Path) -> Path | None:
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        return p
    if p.is_dir() and (p / "data.yaml").is_file():
        return p / "data.yaml"
    return None


def _coco_json(p: Path) -> Path | None:
    # any .json file is taken for COCO (no other format is one JSON file): CocoDataset checks it,
    # so a large annotation file is parsed once
    if p.is_file() and p.suffix == ".json":
        return p
    if p.is_dir() and (p / "labels.json").is_file() and is_coco_json(p / "labels.json"):
        return p / "labels.json"  # longtail's (FiftyOne's) COCO export layout
    return None


# Format detection, in order: (kind, test). The first that matches wins.
DETECTORS: tuple[tuple[str, Callable[[Path], object]], ...] = (
    ("longtail", _is_longtail),
    ("kitti", lambda p: p.is_dir() and kitti_root(p) is not None),
    ("mot", lambda p: p.is_dir() and is_mot_dir(p)),
    ("coco", _coco_json),
    ("yolo", _yolo_yaml),
    ("wds", lambda p: p.is_dir() and (p / SHARDS).is_file()),
)
EXPECTED = ("a longtail dataset dir (manifest.json), kitti (image_2/ + label_2/), mot (img1/ + gt/gt.txt), "
            "coco (a .json with images and annotations, or a dir with labels.json), yolo (data.yaml), "
            "wds (a shard set: shards.json)")
ALIASES = {"synthetic": "longtail", "webdataset": "wds"}


def list_kinds() -> list[str]:
    return [k for k, _ in DETECTORS] + list(ALIASES)


def detect_kind(path: Path) -> str:
    """The format of a dataset path, or InputError listing the ones known."""
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), None, "no such file or directory")
    for kind, test in DETECTORS:
        if test(p):
            return kind
    raise InputError(str(p), None, f"not a dataset in a known format; expected one of: {EXPECTED}")


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """``"KIND:PATH"`` -> (kind, path); ``"PATH"`` -> (None, path). A path holding a colon stays a path."""
    kind, sep, rest = spec.partition(":")
    if sep and (kind in list_kinds()):
        return ALIASES.get(kind, kind), Path(rest)
    if sep and kind.isidentifier() and not Path(spec).exists():
        raise InputError(spec, None, f"unknown dataset kind {kind!r}; expected one of: {', '.join(list_kinds())}")
    return None, Path(spec)


def _open_coco(path: Path, classes, tags, split, flt) -> DetectionDataset:
    json_path = _coco_json(path)
    if json_path is None:
        raise InputError(str(path), None, "expected a COCO .json with images and annotations "
                         "(or a folder holding labels.json)")
    return CocoDataset(json_path, None, classes, tags)


def _open_yolo(path: Path, classes, tags, split, flt) -> DetectionDataset:
    yaml_path = _yolo_yaml(path)
    if yaml_path is None:
        raise InputError(str(path), None, "expected a YOLO data.yaml (or a folder holding one)")
    return YoloDataset(yaml_path, split, classes, tags)


def _refuse_shards(path: Path, classes, tags, split, flt) -> DetectionDataset:
    raise InputError(str(path), None, "a WebDataset shard set streams, in `longtail train --data wds:PATH` only; "
                     "this reads frames by index: give the folder dataset the shards were exported from")


# kind -> opener(path, classes, tags, split, flt)
OPENERS: dict[str, Callable[..., DetectionDataset]] = {
    "longtail": lambda path, classes, tags, split, flt: SyntheticDataset(path, flt, tags),
    "kitti": lambda path, classes, tags, split, flt: KittiDataset(path, classes, tags),
    "mot": lambda path, classes, tags, split, flt: MotDataset(path, classes, tags),
    "coco": _open_coco,
    "yolo": _open_yolo,
    "wds": _refuse_shards,
}


def open_dataset(spec: str, *, classes: str | Path | ClassMap | None = None, tags: Path | None = None,
                 split: str = "train", flt: ExportFilter = ExportFilter()) -> DetectionDataset:
    """Open a dataset from ``"KIND:PATH"`` or ``"PATH"``.

    Args:
        spec: kind (``longtail``/``synthetic``, ``coco``, ``kitti``, ``yolo``, ``mot``) and path.
        classes: class map for real formats (built-in name or YAML path; default per format).
        tags: sidecar of per-image condition tags (JSON or CSV).
        split: YOLO split to read (``train``, ``val``, ``test``).
        flt: object filter for longtail datasets (too hidden objects -> ignore regions).
    """
    kind, path = parse_spec(spec)
    if not path.exists():
        raise InputError(str(path), None, "no such file or directory")
    return OPENERS[kind or detect_kind(path)](path, classes, tags, split, flt)
