"""Cityscapes-style export (gtFine labelIds + instanceIds, leftImg8bit), pure functions.

Layout, with split ``train`` and the scenario as the city::

    gtFine/train/<city>/<city>_000000_NNNNNN_gtFine_labelIds.png      uint8 class ids
    gtFine/train/<city>/<city>_000000_NNNNNN_gtFine_instanceIds.png   uint16, see below
    leftImg8bit/train/<city>/<city>_000000_NNNNNN_leftImg8bit.png     the RGB frame

labelIds are the dataset's semantic PNGs unchanged (Cityscapes labelIds, plus the long-tail ids
34..37 that Cityscapes' own label table does not know). instanceIds hold ``class_id * 1000 + k``
on the pixels of each exported object (k counts that class's exported objects in the image from
0) and the bare class id everywhere else, so an ignore region is pixels of its class with no
instance, as Cityscapes marks crowds. No ``gtFine_color.png`` or ``gtFine_polygons.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from longtail.labelers.classes import get_class
from longtail.labelers.export_base import Content, Copy, ExportFilter, LoadPng, frame_stem, split_objects

SPLIT = "train"
SEQUENCE = "000000"
INSTANCE_FACTOR = 1000  # Cityscapes: instance id = class id * 1000 + k


def city_name(record: dict) -> str:
    """The scenario name with '_' -> '-': cityscapesscripts splits file names on '_' into
    city, sequence, frame and type, so the city may not contain one."""
    return record["attributes"]["scenario"].replace("_", "-")


def cityscapes_prefix(record: dict) -> str:
    """``<city>/<city>_000000_NNNNNN`` of a frame (the folder below the split, and the stem)."""
    city = city_name(record)
    return f"{city}/{city}_{SEQUENCE}_{frame_stem(record)}"


def cityscapes_instance_ids(instance: np.ndarray, semantic: np.ndarray, objects: list[dict]) -> np.ndarray:
    """Cityscapes instanceIds image.

    Args:
        instance: (H, W) uint16 instance ids of the frame (0 = none).
        semantic: (H, W) uint8 class ids of the frame.
        objects: the object records to give instances to, in order (k counts per class).

    Returns:
        (H, W) uint16: ``class_id * 1000 + k`` on each object's pixels, the class id elsewhere.
    """
    if instance.shape != semantic.shape or instance.ndim != 2:
        raise ValueError(f"instance {instance.shape} and semantic {semantic.shape} must be the same (H, W)")
    ids = semantic.astype(np.uint16)
    counts: dict[int, int] = {}
    for obj in objects:
        cls = get_class(obj["class"]).id
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
        ids = cityscapes_instance_ids(load_png(rec["files"]["instance"]), load_png(rec["files"]["semantic"]), kept)
        yield f"gtFine/{SPLIT}/{prefix}_gtFine_labelIds.png", Copy(rec["files"]["semantic"])
        yield f"gtFine/{SPLIT}/{prefix}_gtFine_instanceIds.png", ids
        yield f"leftImg8bit/{SPLIT}/{prefix}_leftImg8bit.png", Copy(rec["files"]["rgb"])
