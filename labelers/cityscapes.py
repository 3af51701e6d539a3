"""Cityscapes-style export (gtFine labelIds + instanceIds, leftImg8bit), pure functions.

Layout, with split ``train`` and the scenario as the city::

    gtFine/train/<city>/<city>_000000_NNNNNN_gtFine_labelIds.png      uint8 class ids
    gtFine/train/<city>/<city>_000000_NNNNNN_gtFine_instanceIds.png   uint16, see below
    leftImg8bit/train/<city>/<city>_000000_NNNNNN_leftImg8bit.png     the RGB frame

Only ids of Cityscapes' own label table (cityscapesscripts.helpers.labels) are written, so its
tools read the export: labelIds are the dataset's semantic ids, with the long-tail classes that
Cityscapes lacks mapped by the class table (``SemanticClass.cityscapes_id``: animal, debris and
traffic cone -> 5 "dynamic", barrier -> 13 "fence"). instanceIds hold ``class_id * 1000 + k`` on
the pixels of each exported object of a Cityscapes class with instances (person, rider, car,
truck, bus, motorcycle, bicycle; k counts that class's exported objects in the image from 0) and
the bare class id everywhere else, so an ignore region is pixels of its class with no instance,
as Cityscapes marks crowds, and the long-tail objects are pixels of their mapped class. The
dataset's own semantic PNGs and labels keep longtail's ids. No ``gtFine_color.png`` or
``gtFine_polygons.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from longtail.classes import cityscapes_lut, get_class
from longtail.labelers.export_base import Content, Copy, ExportFilter, LoadPng, frame_stem, split_objects

SPLIT = "train"
SEQUENCE = "000000"
INSTANCE_FACTOR = 1000  # Cityscapes: instance id = class id * 1000 + k
HAS_INSTANCES = frozenset(range(24, 34))  # Cityscapes labelIds whose objects get instance ids


def city_name(record: dict) -> str:
    """The scenario name with '_' -> '-': cityscapesscripts splits file names on '_' into
    city, sequence, frame and type, so the city may not contain one."""
    return record["attributes"]["scenario"].replace("_", "-")


def cityscapes_prefix(record: dict) -> str:
    """``<city>/<city>_000000_NNNNNN`` of a frame (the folder below the split, and the stem)."""
    city = city_name(record)
    return f"{city}/{city}_{SEQUENCE}_{frame_stem(record)}"


def cityscapes_label_ids(semantic: np.ndarray) -> np.ndarray:
    """(H, W) uint8 longtail semantic ids -> Cityscapes labelIds (long-tail classes mapped)."""
    return cityscapes_lut()[semantic]


def cityscapes_instance_ids(instance: np.ndarray, semantic: np.ndarray, objects: list[dict]) -> np.ndarray:
    """Cityscapes instanceIds image.

    Args:
        instance: (H, W) uint16 instance ids of the frame (0 = none).
        semantic: (H, W) uint8 Cityscapes labelIds of the frame (``cityscapes_label_ids``).
        objects: the object records to give instances to, in order (k counts per class).

    Returns:
        (H, W) uint16: ``class_id * 1000 + k`` on the pixels of each object whose Cityscapes
        class has instances, the labelId elsewhere.
    """
    if instance.shape != semantic.shape or instance.ndim != 2:
        raise ValueError(f"instance {instance.shape} and semantic {semantic.shape} must be the same (H, W)")
    ids = semantic.astype(np.uint16)
    counts: dict[int, int] = {}
    for obj in objects:
        cls = get_class(obj["class"]).cityscapes_id
        if cls not in HAS_INSTANCES:
            continue
        k = counts.get(cls, 0)
        if k >= INSTANCE_FACTOR:
            raise ValueError(f"more than {INSTANCE_FACTOR} instances of class {cls} in one image")
        counts[cls] = k + 1
        ids[instance == obj["id"]] = cls * INSTANCE_FACTOR + k
    return ids


def cityscapes_files(records: list[dict], flt: ExportFilter, out: Path,
                     load_png: LoadPng) -> Iterator[tuple[str, Content]]:
    """Cityscapes export of frame records; ``load_png`` reads each frame's instance and semantic
    PNGs (``out`` unused)."""
    for rec in records:
        prefix = cityscapes_prefix(rec)
        kept, _ = split_objects(rec, flt)  # ignore regions keep the bare class id
        label_ids = cityscapes_label_ids(load_png(rec["files"]["semantic"]))
        ids = cityscapes_instance_ids(load_png(rec["files"]["instance"]), label_ids, kept)
        yield f"gtFine/{SPLIT}/{prefix}_gtFine_labelIds.png", label_ids
        yield f"gtFine/{SPLIT}/{prefix}_gtFine_instanceIds.png", ids
        yield f"leftImg8bit/{SPLIT}/{prefix}_leftImg8bit.png", Copy(rec["files"]["rgb"])
