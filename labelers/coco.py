"""COCO detection + instance segmentation export: a pure function of frame records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from longtail.atomic import json_bytes
from longtail.classes import get_class, target_classes
from longtail.labelers.export_base import Content, Copy, ExportFilter, LoadPng, frame_stem, object_role

# Export layout: FiftyOne's COCODetectionDataset default (``data/`` + ``labels.json``), which
# supervision's ``DetectionDataset.from_coco`` and pycocotools read as they are.
COCO_IMAGES = "data"
COCO_LABELS = "labels.json"


def dataset_file_name(record: dict) -> str:
    """file_name of a frame's image inside the longtail dataset itself (``rgb/NNNNNN.png``)."""
    return record["files"]["rgb"]


def to_coco(records: list[dict], description: str = "longtail synthetic dataset", flt: ExportFilter = ExportFilter(),
            file_name: Callable[[dict], str] = dataset_file_name) -> dict:
    """COCO dict from frame records (as written in ``labels/*.json``), sorted by frame.

    Image ids are frame index + 1; category ids are the semantic class ids (every target class,
    whatever ``flt.classes`` keeps); boxes are ``[x, y, w, h]`` in pixels; masks are compressed
    RLE. Objects the filter turns into ignore regions become ``iscrowd: 1`` annotations, which
    COCOeval matches detections against without counting them as misses or false positives.
    Objects with no visible pixel are left out (they stay in the frame records).

    Args:
        records: frame records.
        description: ``info.description``.
        flt: which objects become annotations and which ignore regions.
        file_name: a record's image path as written in ``images[].file_name``.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for rec in sorted(records, key=lambda r: r["frame"]):
        image_id = rec["frame"] + 1
        images.append({"id": image_id, "file_name": file_name(rec), "width": rec["camera"]["width"],
                       "height": rec["camera"]["height"], "attributes": rec["attributes"]})
        for obj in rec["objects"]:
            role = object_role(obj, flt)
            if role is None:
                continue
            x0, y0, x1, y1 = obj["bbox"]
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": get_class(obj["class"]).id,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": obj["area"],
                "segmentation": obj["rle"],
                "iscrowd": int(role == "ignore"),
                "track_id": obj["track_id"],
                "occlusion": obj["occlusion"],
                "truncation": obj["truncation"],
                "distance_m": obj["distance_m"],
            })
    categories = [{"id": c.id, "name": c.name, "supercategory": "object"} for c in target_classes()]
    return {"info": {"description": description}, "images": images, "annotations": annotations,
            "categories": categories}


def coco_files(records: list[dict], flt: ExportFilter, out: Path, load_png: LoadPng) -> Iterator[tuple[str, Content]]:
    """COCO export: ``data/NNNNNN.png`` (the RGB frames) and ``labels.json`` (file names relative
    to ``data/``). ``out`` and ``load_png`` are unused: COCO needs neither paths nor pixels."""
    for rec in records:
        yield f"{COCO_IMAGES}/{frame_stem(rec)}.png", Copy(rec["files"]["rgb"])
    scenario = records[0]["attributes"]["scenario"] if records else "empty"
    coco = to_coco(records, f"longtail: {scenario}", flt, file_name=lambda r: f"{frame_stem(r)}.png")
    yield COCO_LABELS, json_bytes(coco)
