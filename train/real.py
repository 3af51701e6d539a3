"""Loaders for real datasets in standard formats: COCO, KITTI, YOLO and MOTChallenge.

Each parses every label file up front into ``Entry`` records in the common sample format
(``longtail.train.entries``), with source classes mapped onto longtail's through a class map
(``longtail.train.classmap``); objects of classes the map drops or lacks are counted in
``dataset.unmapped``. Boxes are clipped to the image; boxes left empty are skipped. Per-object
measures a format states go to ``Entry.object_attributes``: KITTI's truncation and distance (from
its 3D location and height), MOT16+'s occlusion (one minus its visibility column).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Iterable, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longtail import mot
from longtail.errors import InputError
from longtail.readers import load_json, load_yaml, parse_int, parse_number, text_lines, validation_message
from longtail.classes import kitti_difficulty
from longtail.train.classmap import IGNORE_LABEL, ClassMap, MOT_CLASS_IDS, class_map
from longtail.train.entries import DetectionDataset, Entry, categorical, image_size, make_entry
from longtail.train.tags import apply_tags, load_tags

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class SourceObject(NamedTuple):
    """One labelled object as a source format states it."""

    name: str  # source class name
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixel edges
    crowd: bool = False  # the source marks it as an ignore region (COCO iscrowd, MOT flag 0)
    area: float | None = None  # visible pixels where the source has them
    difficulty: str | None = None
    attributes: dict[str, float | None] | None = None  # measures the format states (``Entry.object_attributes``)


def build_entry(image: Path, width: int, height: int, image_id: int, objects: Iterable[SourceObject],
                cmap: ClassMap, unmapped: Counter, conditions: dict | None = None,
                with_difficulty: bool = False) -> Entry:
    """Map and clip source objects into an Entry; count the dropped classes in ``unmapped``."""
    boxes, labels, crowd, areas, diffs, attrs = [], [], [], [], [], []
    for obj in objects:
        label = cmap.label(obj.name)
        if label is None:
            unmapped[obj.name] += 1
            continue
        x0, y0, x1, y1 = (float(v) for v in obj.box)
        x0, x1 = max(0.0, x0), min(float(width), x1)
        y0, y1 = max(0.0, y0), min(float(height), y1)
        if x1 <= x0 or y1 <= y0:
            continue
        boxes.append((x0, y0, x1, y1))
        labels.append(label)
        crowd.append(int(obj.crowd or label == IGNORE_LABEL))
        areas.append((x1 - x0) * (y1 - y0) if obj.area is None else obj.area)
        diffs.append(obj.difficulty)
        attrs.append(obj.attributes or {})
    keys = sorted({k for a in attrs for k in a})
    return make_entry(image, width, height, image_id, boxes, labels, crowd, areas, conditions,
                      diffs if with_difficulty else None,
                      object_attributes={k: [a.get(k) for a in attrs] for k in keys})


class RealDataset(DetectionDataset):
    """A real dataset: entries plus optional condition tags from a sidecar file."""

    def __init__(self, name: str, entries: list[Entry], unmapped: Counter, image_root: Path,
                 tags: Path | None = None):
        missing = next((e.image for e in entries if not e.image.is_file()), None)
        if missing is not None:  # found now rather than at some training step hours in
            raise InputError(name, None, f"image not found: {missing}")
        if tags is not None:
            apply_tags(entries, load_tags(Path(tags)), image_root, str(tags))
        super().__init__(name, entries, unmapped)


def is_coco_json(path: Path) -> bool:
    """True for a JSON file holding ``images`` and ``annotations`` lists (read only if small-ish)."""
    try:
        data = load_json(Path(path))
    except InputError:
        return False
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


Finite = Annotated[float, Field(allow_inf_nan=False)]
Pixels = Annotated[int, Field(ge=1, le=65535)]


class _CocoRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class CocoImage(_CocoRecord):
    id: int
    file_name: str = Field(min_length=1)
    width: Pixels
    height: Pixels
    attributes: dict | None = None


class CocoAnnotation(_CocoRecord):
    image_id: int
    category_id: int | str
    bbox: tuple[Finite, Finite, Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]
    iscrowd: Literal[0, 1, False, True] = 0
    area: Annotated[float, Field(ge=0)] | None = None


class CocoCategory(_CocoRecord):
    id: int | str
    name: str


class CocoFile(_CocoRecord):
    """The parts of a COCO detection file training reads; other keys are ignored."""

    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory] = []


class CocoDataset(RealDataset):
    """A COCO detection file. Image attributes (``images[].attributes``, as longtail's COCO export
    writes them) become conditions; ``iscrowd`` annotations become ignore regions.

    Args:
        json_path: the annotation file.
        images: folder the ``file_name`` paths are relative to; by default the file's folder, or
            its ``data/`` (FiftyOne's layout) when the images are there.
        classes: class map (default: the COCO names map).
        tags: optional sidecar of per-image condition tags.
    """

    kind = "coco"

    def __init__(self, json_path: Path, images: Path | None = None, classes: str | Path | ClassMap | None = None,
                 tags: Path | None = None):
        json_path = Path(json_path)
        data = load_json(json_path, "COCO annotation file")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
                or not isinstance(data.get("annotations"), list):
            raise InputError(str(json_path), None, "expected a COCO object with 'images' and 'annotations' lists")
        try:
            coco = CocoFile.model_validate(data)
        except ValidationError as err:
            raise validation_message(str(json_path), err) from None
        cmap = class_map(classes, "coco")
        names = {c.id: c.name for c in coco.categories}
        root = Path(images) if images is not None else self._image_root(json_path, coco.images)
        by_image: dict[int, list[SourceObject]] = {}
        for ann in coco.annotations:
            x, y, w, h = ann.bbox
            by_image.setdefault(ann.image_id, []).append(SourceObject(
                names.get(ann.category_id, str(ann.category_id)), (x, y, x + w, y + h), bool(ann.iscrowd), ann.area))
        unmapped: Counter = Counter()
        entries = []
        for img in coco.images:
            attrs = img.attributes
            entries.append(build_entry(root / img.file_name, img.width, img.height, img.id,
                                       by_image.get(img.id, []), cmap, unmapped,
                                       categorical(attrs) if isinstance(attrs, dict) else None))
        super().__init__(str(json_path), entries, unmapped, root, tags)

    @staticmethod
    def _image_root(json_path: Path, images: list[CocoImage]) -> Path:
        root = json_path.parent
        first = images[0].file_name if images else None
        if first and not (root / first).exists() and (root / "data" / first).exists():
            return root / "data"
        return root


def kitti_root(path: Path) -> Path | None:
    """The folder holding ``image_2/`` and ``label_2/`` (``path`` or its ``training/``), or None."""
    for root in (Path(path), Path(path) / "training"):
        if (root / "image_2").is_dir() and (root / "label_2").is_dir():
            return root
    return None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class KittiDataset(RealDataset):
    """A KITTI object dataset: ``image_2/*.png`` and ``label_2/*.txt`` (15 fields per line, a 16th
    score ignored), in ``dir`` or ``dir/training``. ``DontCare`` becomes an ignore region; every
    box carries its KITTI difficulty, its truncation and its distance (camera to the 3D box centre:
    ``location`` is the bottom centre, y pointing down; none for DontCare's -1000 location). Box
    corners are read as pixel edges (longtail's KITTI export writes edges; KITTI's own labels are
    0-based inclusive, a difference of one pixel at x2, y2).
    An image without a label file has no objects.
    """

    kind = "kitti"

    def __init__(self, path: Path, classes: str | Path | ClassMap | None = None, tags: Path | None = None):
        root = kitti_root(Path(path))
        if root is None:
            raise InputError(str(path), None, "expected image_2/ and label_2/ (or training/image_2, training/label_2)")
        cmap = class_map(classes, "kitti")
        unmapped: Counter = Counter()
        entries = []
        for k, img in enumerate(_images_in(root / "image_2")):
            w, h = image_size(img)
            objects = self._read_labels(root / "label_2" / f"{img.stem}.txt")
            entries.append(build_entry(img, w, h, k + 1, objects, cmap, unmapped, with_difficulty=True))
        super().__init__(str(path), entries, unmapped, root / "image_2", tags)

    @staticmethod
    def _read_labels(path: Path) -> list[SourceObject]:
        objects = []
        for n, f in _label_lines(path):
            try:
                trunc, occ = parse_number(f[1]), parse_int(f[2])
                x0, y0, x1, y1 = (parse_number(v) for v in f[4:8])
                h3, x, y, z = (parse_number(v) for v in (f[8], *f[11:14])) if len(f) >= 14 else (-1.0,) * 4
            except (IndexError, ValueError):
                raise InputError(str(path), f"line {n}", "expected a KITTI label line (type truncated occluded "
                                 "alpha x1 y1 x2 y2 h w l x y z rotation_y)") from None
            distance = math.sqrt(x * x + (y - h3 / 2) ** 2 + z * z) if h3 > 0 and z > 0 else None
            objects.append(SourceObject(f[0], (x0, y0, x1, y1), difficulty=kitti_difficulty(y1 - y0, occ, trunc),
                                        attributes={"truncation": trunc, "distance_m": distance}))
        return objects


def _yolo_list(value: object, base: Path, source: str) -> list[Path]:
    """Image files of a data.yaml split entry: folders, .txt lists of images, or images."""
    items = value if isinstance(value, list) else [value]
    out: list[Path] = []
    for item in items:
        p = Path(str(item))
        p = p if p.is_absolute() else base / p
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt" and p.is_file():
            lines = [ln.strip() for _, ln in text_lines(p, "YOLO image list")]
            out += [Path(ln) if Path(ln).is_absolute() else p.parent / ln for ln in lines]
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(source, None, f"{item}: no such image folder, list or file")
    return out


def yolo_label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path becomes ``labels``, suffix .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


class YoloDataset(RealDataset):
    """A YOLO (Ultralytics) dataset from its ``data.yaml``: ``names``, and ``train`` / ``val`` /
    ``test`` naming image folders or lists. A relative ``path:`` is resolved against the yaml's
    folder (Ultralytics uses the working directory, which makes a copied dataset break). Label
    lines are ``class cx cy w h`` normalised; polygon lines (segmentation) give their extent.
    YOLO has no ignore regions.

    Args:
        data_yaml: the data.yaml file.
        split: which split to read.
        classes: class map (default: the COCO names map, which also holds longtail's names).
        tags: optional sidecar of per-image condition tags.
    """

    kind = "yolo"

    def __init__(self, data_yaml: Path, split: str = "train", classes: str | Path | ClassMap | None = None,
                 tags: Path | None = None):
        data_yaml = Path(data_yaml)
        src = str(data_yaml)
        data = load_yaml(data_yaml, "YOLO data.yaml")
        if not isinstance(data, dict) or "names" not in data:
            raise InputError(src, "names", "missing; expected the list of class names")
        names = self._names(data["names"], src)
        if data.get(split) is None:
            raise InputError(src, split, "missing; expected a folder or list of images for this split")
        if not isinstance(data[split], (str, list)) or (isinstance(data[split], list) and not all(
                isinstance(v, str) for v in data[split])):
            raise InputError(src, split, "expected a folder, an image list (.txt) or a list of them")
        if data.get("path") is not None and not isinstance(data["path"], str):
            raise InputError(src, "path", f"{data['path']!r}: expected the dataset folder")
        base = Path(str(data["path"])) if data.get("path") else data_yaml.parent
        base = base if base.is_absolute() else data_yaml.parent / base
        cmap = class_map(classes, "coco")
        unmapped: Counter = Counter()
        entries = []
        for k, img in enumerate(_yolo_list(data[split], base, src)):
            w, h = image_size(img)
            objects = self._read_labels(yolo_label_path(img), names, w, h)
            entries.append(build_entry(img, w, h, k + 1, objects, cmap, unmapped))
        super().__init__(src, entries, unmapped, base, tags)

    @staticmethod
    def _names(names: object, src: str) -> dict[int, str]:
        """data.yaml's ``names``: a list, or a mapping of class index to name."""
        try:
            items = enumerate(names) if isinstance(names, list) else (
                (parse_int(str(k)), v) for k, v in names.items()) if isinstance(names, dict) else None
            if items is not None:
                out = {k: str(v) for k, v in items}
                if all(k >= 0 for k in out):
                    return out
        except ValueError:
            pass
        raise InputError(src, "names", "expected a list of class names or a mapping index: name")

    @staticmethod
    def _read_labels(path: Path, names: dict, w: int, h: int) -> list[SourceObject]:
        objects = []
        for n, f in _label_lines(path):
            try:
                cls, vals = parse_int(f[0]), np.array([parse_number(v) for v in f[1:]], np.float64)
                if len(vals) == 4:
                    cx, cy, bw, bh = vals
                    box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                else:
                    xy = vals.reshape(-1, 2)
                    box = (xy[:, 0].min() * w, xy[:, 1].min() * h, xy[:, 0].max() * w, xy[:, 1].max() * h)
            except (ValueError, IndexError):
                raise InputError(str(path), f"line {n}",
                                 "expected 'class cx cy w h' (normalised) or a polygon") from None
            if cls not in names:
                raise InputError(str(path), f"line {n}", f"class index {cls} is not in data.yaml names "
                                 f"(0..{len(names) - 1})")
            objects.append(SourceObject(str(names[cls]), box))
        return objects


def _label_lines(path: Path, commas: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) of each non-blank line of a label text file (none if the
    file is absent); fields split on whitespace, or on commas and whitespace."""
    if not path.exists():
        return
    for n, line in text_lines(path, "label file"):
        f = line.replace(",", " ").split() if commas else line.split()
        if f:
            yield n, f


def is_mot_dir(path: Path) -> bool:
    return mot.is_sequence(path)


class MotDataset(RealDataset):
    """One MOTChallenge sequence: ``img1/NNNNNN.jpg``, ``gt/gt.txt`` and ``seqinfo.ini``.

    ``gt.txt`` rows: MOT 2015 ``frame, id, left, top, w, h, flag, x, y, z`` (pedestrians only), or
    MOT16+ ``frame, id, left, top, w, h, flag, class, visibility``. Boxes are taken as written
    (as the common MOT-to-COCO converters do); rows with flag 0 (not to be considered) become
    ignore regions. Rows of frames without an image are skipped, so a subset of the frames loads.
    ``conditions`` carry ``sequence`` (seqinfo's name). MOT16+ rows give each object an
    ``occlusion`` of one minus their visibility (MOT counts the image border as an occluder too).
    """

    kind = "mot"

    def __init__(self, path: Path, classes: str | Path | ClassMap | None = None, tags: Path | None = None):
        path = Path(path)
        if not is_mot_dir(path):
            raise InputError(str(path), None, "expected img1/ and gt/gt.txt (a MOTChallenge sequence)")
        info = mot.read_seqinfo(path)
        cmap = class_map(classes, "mot")
        rows = self._read_gt(path / "gt" / "gt.txt")
        unmapped: Counter = Counter()
        entries = []
        for img in _images_in(path / info.im_dir):
            try:
                frame = int(img.stem)
            except ValueError:
                continue
            if info.width is not None and info.height is not None:
                w, h = info.width, info.height
            else:
                w, h = image_size(img)
            entries.append(build_entry(img, w, h, frame, rows.get(frame, []), cmap, unmapped,
                                       {"sequence": info.name or path.name}))
        super().__init__(str(path), entries, unmapped, path / info.im_dir, tags)

    @staticmethod
    def _read_gt(path: Path) -> dict[int, list[SourceObject]]:
        rows: dict[int, list[SourceObject]] = {}
        for n, f in mot.read_gt(path):
            frame, left, top, w, h, flag = int(f[0]), *f[2:6], f[6]
            name = "pedestrian"
            attributes: dict[str, float | None] | None = None
            if len(f) == 9:
                if not (f[7] == int(f[7]) and 1 <= f[7] <= len(MOT_CLASS_IDS)):
                    raise InputError(str(path), f"line {n}", f"class {f[7]:g}: expected a MOT16 class id 1.."
                                     f"{len(MOT_CLASS_IDS)}")
                name = MOT_CLASS_IDS[int(f[7]) - 1]
                attributes = {"occlusion": 1.0 - min(max(f[8], 0.0), 1.0)}
            rows.setdefault(frame, []).append(SourceObject(name, (left, top, left + w, top + h), crowd=flag == 0,
                                                           attributes=attributes))
        return rows
