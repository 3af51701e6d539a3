"""What every exporter shares: the object filter, and the shape of an exporter's output.

An exporter is a pure function of the frame records: it yields ``(relative path, content)`` pairs
and never touches the disk; ``labelers.export.export_dataset`` writes them. Content is bytes, an
array to encode as PNG, or a ``Copy`` of a dataset file (images travel byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np

from longtail.errors import ParameterError
from longtail.classes import check_target_classes, get_class

Role = Literal["object", "ignore"]


@dataclass(frozen=True)
class Copy:
    """A file of the source dataset to copy byte for byte; ``src`` is relative to its root."""

    src: str


Content = bytes | np.ndarray | Copy
# Dataset-relative path -> decoded PNG (uint8 or uint16 array); exporters that need pixels get it.
LoadPng = Callable[[str], np.ndarray]
Exporter = Callable[[list[dict], "ExportFilter", Path, LoadPng], Iterator[tuple[str, Content]]]


@dataclass(frozen=True)
class ExportFilter:
    """Which labelled objects an export holds, and which become ignore regions.

    Objects of a kept class that are too small (``area < min_visible_px``) or too occluded
    (``occlusion > max_occlusion``) are not dropped silently: each format writes them as its own
    ignore region (COCO ``iscrowd``, KITTI ``DontCare``, Cityscapes "no instance"), so a detector
    that finds them is not punished. Objects of other classes, of non-target classes and with no
    visible pixel are left out. ``classes`` never renumbers classes: class indices and COCO
    categories stay those of every target class, so exports with different filters agree.

    Attributes:
        min_visible_px: fewest visible pixels an exported object has (0 acts as 1: objects
            with no visible pixel are never exported).
        max_occlusion: largest occlusion fraction (0..1) an exported object has.
        classes: target class names to export (``longtail.classes``), or None for all.
    """

    min_visible_px: int = 1
    max_occlusion: float = 1.0
    classes: tuple[str, ...] | None = None

    def __post_init__(self):
        if isinstance(self.min_visible_px, bool) or not isinstance(self.min_visible_px, int) \
                or self.min_visible_px < 0:
            raise ParameterError("min_visible_px", f"expected an integer >= 0, got {self.min_visible_px!r}")
        if not 0.0 <= self.max_occlusion <= 1.0:
            raise ParameterError("max_occlusion", f"expected a fraction in [0, 1], got {self.max_occlusion!r}")
        if self.classes is not None:
            # a list from a caller is fine; stored as a tuple so the filter stays hashable
            object.__setattr__(self, "classes", check_target_classes(self.classes))

    def to_json(self) -> dict:
        return {"min_visible_px": self.min_visible_px, "max_occlusion": self.max_occlusion,
                "classes": list(self.classes) if self.classes is not None else None}


def object_role(obj: dict, flt: ExportFilter) -> Role | None:
    """How an object record is exported: ``"object"``, ``"ignore"`` (an ignore region) or None."""
    cls = get_class(obj["class"])
    if not cls.target or not obj["area"]:
        return None
    if flt.classes is not None and cls.name not in flt.classes:
        return None
    if obj["area"] < flt.min_visible_px or obj["occlusion"] > flt.max_occlusion:
        return "ignore"
    return "object"


def split_objects(record: dict, flt: ExportFilter) -> tuple[list[dict], list[dict]]:
    """(exported objects, ignore regions) of one frame record, each in record order."""
    roles = [(object_role(o, flt), o) for o in record["objects"]]
    return [o for r, o in roles if r == "object"], [o for r, o in roles if r == "ignore"]


def frame_stem(record: dict) -> str:
    """The six-digit frame number every format names its per-frame files by."""
    return f"{record['frame']:06d}"
