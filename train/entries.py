"""The one sample format every dataset loader produces, and the base dataset class.

A sample is ``(image, target)``:

- ``image``: (3, H, W) uint8 tensor, RGB;
- ``target``: dict with
  ``boxes`` (N, 4) float32 ``[x0, y0, x1, y1]``, absolute pixel edges (x1, y1 exclusive);
  ``labels`` (N,) int64 longtail semantic class ids (``longtail.classes``), or ``IGNORE_LABEL``
  (-1) for a class-agnostic ignore region (KITTI DontCare);
  ``iscrowd`` (N,) int64, 1 = ignore region: evaluation neither requires nor penalises detections
  there, training leaves it out;
  ``area`` (N,) float32, visible pixels (mask area where the source has it, else box area);
  ``image_id`` int; ``conditions`` dict (e.g. time_of_day, weather, scenario, event) for
  per-condition evaluation; ``difficulty`` list of ``easy``/``moderate``/``hard``/None per box
  where the source defines KITTI difficulty.

Entries also keep per-object measures the sample does not carry (``object_attributes``: distance,
occlusion, truncation where the source knows them), for the evaluation's failure slices.

Loaders parse every label up front into ``Entry`` records (numpy), so a dataset's targets are
available without decoding a single image (evaluation, samplers and stats need only those).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from longtail.conditions import visibility_band
from longtail.errors import InputError, one_line
from longtail.readers import read_image as read_rgb_image


@dataclass
class Entry:
    """One image of a dataset and its labels (see the module docstring for the fields)."""

    image: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32
    labels: np.ndarray  # (N,) int64
    iscrowd: np.ndarray  # (N,) int64
    area: np.ndarray  # (N,) float32
    image_id: int
    conditions: dict = field(default_factory=dict)
    difficulty: list | None = None
    depth: Path | None = None  # depth PNG (longtail frames); real images get a ground-plane prior
    camera: dict | None = None  # {"K", "world_from_camera"} where the source records its camera
    depth_map: np.ndarray | None = None  # (H, W) float32 metres, decoded (a streamed frame has no depth file)
    # per-object measures, each (N,) float32 and NaN where unknown: ``distance_m`` (camera to the 3D
    # box centre), ``occlusion`` and ``truncation`` (fractions 0..1); only the keys the source has
    object_attributes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def objects(self) -> int:
        """Boxes that count in evaluation (ignore regions left out)."""
        return int((self.iscrowd == 0).sum())


def make_entry(image: Path, width: int, height: int, image_id: int, boxes: list, labels: list,
               iscrowd: list | None = None, area: list | None = None, conditions: dict | None = None,
               difficulty: list | None = None, depth: Path | None = None, camera: dict | None = None,
               object_attributes: dict[str, list] | None = None) -> Entry:
    """An Entry from plain lists; ``area`` defaults to box areas, ``iscrowd`` to zeros;
    ``object_attributes`` name -> one number (or None, unknown) per box."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    box_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    attrs = {k: np.array([np.nan if v is None else v for v in values], np.float32).reshape(n)
             for k, values in (object_attributes or {}).items()}
    return Entry(image=Path(image), width=int(width), height=int(height),
                 boxes=b, labels=np.asarray(labels, np.int64).reshape(n),
                 iscrowd=np.zeros(n, np.int64) if iscrowd is None else np.asarray(iscrowd, np.int64).reshape(n),
                 area=box_area.astype(np.float32) if area is None else np.asarray(area, np.float32).reshape(n),
                 image_id=int(image_id), conditions=dict(conditions or {}), difficulty=difficulty,
                 depth=None if depth is None else Path(depth), camera=camera, object_attributes=attrs)


def categorical(attributes: dict) -> dict:
    """The string-valued attributes (time_of_day, weather, scenario, ...): those make condition
    cells; numbers (hour, visibility) would make one cell per value, so a visibility in metres
    becomes its band (``visibility_band``, ``longtail.conditions``)."""
    out = {k: v for k, v in attributes.items() if isinstance(v, str)}
    vis = attributes.get("visibility_m")
    if isinstance(vis, (int, float)) and not isinstance(vis, bool) and "visibility_band" not in out:
        band = visibility_band(vis)
        if band is not None:
            out["visibility_band"] = band
    return out


def entry_target(e: Entry) -> dict:
    """The target dict of an entry (see the module docstring; tensors are fresh copies)."""
    t = {"boxes": torch.from_numpy(e.boxes.copy()), "labels": torch.from_numpy(e.labels.copy()),
         "iscrowd": torch.from_numpy(e.iscrowd.copy()), "area": torch.from_numpy(e.area.copy()),
         "image_id": e.image_id, "conditions": dict(e.conditions)}
    if e.difficulty is not None:
        t["difficulty"] = list(e.difficulty)
    return t


def image_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB pixels as the (3, H, W) uint8 tensor of a sample."""
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def read_image(path: Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB tensor of an image file (grey, palette and alpha are converted)."""
    return image_tensor(read_rgb_image(Path(path), mode="RGB"))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header only; InputError if it has none."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:  # noqa: BLE001 - any decoder failure on outside bytes: not a readable image
        raise InputError(str(path), None, f"not a readable image ({one_line(e) or type(e).__name__})") from None


def check_images(dataset: "DetectionDataset") -> None:
    """Every image of ``dataset`` exists, has a readable header and the size its labels say;
    InputError naming the first that does not."""
    for e in dataset.entries:
        size = image_size(e.image)
        if size != (e.width, e.height):
            raise InputError(str(e.image), None, f"image is {size[0]}x{size[1]} pixels; its labels in "
                             f"{dataset.name} say {e.width}x{e.height}")


class DetectionDataset(torch.utils.data.Dataset):
    """A list of Entries; ``dataset[i]`` is ``(image, target)`` in the common sample format.

    Attributes:
        name: where the data came from (a path), for messages and reports.
        entries: one per image.
        unmapped: source class name -> objects dropped because the class map drops or lacks it.
    """

    kind = "generic"

    def __init__(self, name: str, entries: list[Entry], unmapped: Counter | None = None):
        self.name = name
        self.entries = entries
        self.unmapped = Counter() if unmapped is None else unmapped

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        return self.image(i), self.target(i)

    def image(self, i: int) -> torch.Tensor:
        return read_image(self.entries[i].image)

    def target(self, i: int) -> dict:
        """Target dict of image ``i`` (tensors are fresh copies; no pixels are read)."""
        return entry_target(self.entries[i])

    @property
    def objects(self) -> int:
        return sum(e.objects for e in self.entries)

    def describe(self) -> dict:
        """Plain summary for run records and reports."""
        return {"kind": self.kind, "path": self.name, "images": len(self), "objects": self.objects,
                "unmapped": dict(sorted(self.unmapped.items()))}
