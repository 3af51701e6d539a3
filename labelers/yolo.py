"""YOLO (Ultralytics / YOLOv5) detection export, pure functions.

Layout: ``images/NNNNNN.png``, ``labels/NNNNNN.txt`` (one ``class cx cy w h`` line per object,
box centre and size normalised by the image width and height, 6 decimals; an empty file for an
image without objects, since some readers drop images that have no label file) and ``data.yaml``.

YOLO has no ignore regions: objects the filter turns into ignore regions are left out of the
labels, so a detector trained on them learns to miss those pixels. Prefer COCO or KITTI when
hard objects should be neither required nor penalised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from longtail.classes import target_classes
from longtail.labelers.export_base import Content, Copy, ExportFilter, LoadPng, frame_stem, split_objects


def yolo_class_indices() -> dict[str, int]:
    """Class name -> YOLO class index: the position among all target classes, whatever the
    filter keeps, so exports with different ``classes`` share one numbering."""
    return {c.name: i for i, c in enumerate(target_classes())}


def yolo_line(obj: dict, width: int, height: int, index: dict[str, int]) -> str:
    """``class cx cy w h`` of an object record; bbox pixel edges -> normalised centre and size."""
    x0, y0, x1, y1 = obj["bbox"]
    return (f"{index[obj['class']]} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")


def yolo_label(record: dict, flt: ExportFilter) -> str:
    """labels/NNNNNN.txt text of a frame (empty without objects; ignore regions left out)."""
    kept, _ = split_objects(record, flt)
    index = yolo_class_indices()
    cam = record["camera"]
    return "".join(f"{yolo_line(o, cam['width'], cam['height'], index)}\n" for o in kept)


def yolo_data_yaml(out: Path) -> str:
    """data.yaml for Ultralytics: train and val name the images folder by absolute path, because
    Ultralytics resolves relative paths against the working directory, not the yaml's folder.
    Strings are JSON-quoted, which is valid YAML for any path or class name."""
    images = json.dumps(str(Path(out).absolute() / "images"))
    names = "".join(f"  {i}: {json.dumps(name)}\n" for name, i in yolo_class_indices().items())
    return (f"# YOLO detection dataset exported by longtail; labels: class cx cy w h, normalised to [0, 1]\n"
            f"train: {images}\nval: {images}\nnc: {len(yolo_class_indices())}\nnames:\n{names}")


def yolo_files(records: list[dict], flt: ExportFilter, out: Path, load_png: LoadPng) -> Iterator[tuple[str, Content]]:
    """YOLO export of frame records; ``out`` is the export's final directory (named in
    data.yaml), ``load_png`` is unused."""
    for rec in records:
        stem = frame_stem(rec)
        yield f"images/{stem}.png", Copy(rec["files"]["rgb"])
        yield f"labels/{stem}.txt", yolo_label(rec, flt).encode()
    yield "data.yaml", yolo_data_yaml(out).encode()
