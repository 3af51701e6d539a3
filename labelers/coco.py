"""COCO detection + instance segmentation export: a pure function of frame records."""

from __future__ import annotations

from longtail.labelers.classes import get_class, target_classes


def to_coco(records: list[dict], description: str = "longtail synthetic dataset") -> dict:
    """COCO dict from frame records (as written in ``labels/*.json``), sorted by frame.

    Image ids are frame index + 1; category ids are the semantic class ids; masks are RLE.
    Objects with no visible pixel are left out (they stay in the frame records).
    """
    images, annotations = [], []
    for rec in sorted(records, key=lambda r: r["frame"]):
        image_id = rec["frame"] + 1
        images.append({"id": image_id, "file_name": rec["files"]["rgb"], "width": rec["camera"]["width"],
                       "height": rec["camera"]["height"], "attributes": rec["attributes"]})
        for obj in rec["objects"]:
            cls = get_class(obj["class"])
            if not obj["area"] or not cls.target:
                continue
            x0, y0, x1, y1 = obj["bbox"]
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cls.id,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": obj["area"],
                "segmentation": obj["rle"],
                "iscrowd": 0,
                "track_id": obj["track_id"],
                "occlusion": obj["occlusion"],
                "truncation": obj["truncation"],
                "distance_m": obj["distance_m"],
            })
    categories = [{"id": c.id, "name": c.name, "supercategory": "object"} for c in target_classes()]
    return {"info": {"description": description}, "images": images, "annotations": annotations,
            "categories": categories}
