"""COCO evaluation (pycocotools ``COCOeval``) of a detector on a dataset, overall and per condition.

``evaluate`` runs the model, then ``evaluate_detections`` scores its detections: AP@[.5:.95],
AP50, AP75, AP small/medium/large, AR@100 and per-class AP, for the whole set and for each value
of each condition key (``time_of_day``, ``weather``, ``visibility_band``, ``scenario``, ``event``), with the number of
images and objects behind every cell. Ignore regions become ``iscrowd`` ground truth: detections
on them are neither matches nor false positives, and they are never misses. A class-agnostic
ignore region (KITTI ``DontCare``) is written once per category so it covers every class.

When boxes carry KITTI difficulty, ``kitti_difficulty`` holds the same metrics per level the KITTI
way: the objects of that level and the easier ones count, all others become ignore regions (the
metrics stay COCO's, not KITTI's 40-point AP at IoU 0.7 / 0.5).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from longtail.classes import target_classes
from longtail.conditions import band_rank
from longtail.train.checkpoint import load_detector
from longtail.train.classmap import IGNORE_LABEL, LabelSpace
from longtail.train.entries import DetectionDataset

BREAKDOWN = ("time_of_day", "weather", "visibility_band", "scenario", "event")
DIFFICULTIES = ("easy", "moderate", "hard")
UNKNOWN = "unknown"  # cell of the images that lack a condition key
# COCOeval.stats positions -> names.
STATS = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}


def _box_ann(ann_id: int, image_id: int, category: int, box: Sequence[float], area: float, crowd: int) -> dict:
    x0, y0, x1, y1 = (float(v) for v in box)
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": float(area), "iscrowd": int(crowd)}


def _counts(difficulty: str | None, level: str | None) -> bool:
    """Whether a box of KITTI ``difficulty`` counts at ``level`` (that level and the easier ones)."""
    return level is None or (difficulty in DIFFICULTIES
                             and DIFFICULTIES.index(difficulty) <= DIFFICULTIES.index(level))


def coco_gt(dataset: DetectionDataset, level: str | None = None) -> dict:
    """COCO ground truth of a dataset (no pixels read): image ids are the targets' ``image_id``,
    category ids longtail semantic ids; each annotation's ``object`` is its box's index in the image.

    Args:
        dataset: any dataset in the common sample format.
        level: KITTI difficulty; boxes harder than it (or without one) become ignore regions.
    """
    categories = [c.id for c in target_classes()]
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(len(dataset)):
        e = dataset.entries[i]
        t = dataset.target(i)
        images.append({"id": t["image_id"], "width": e.width, "height": e.height})
        diffs = t.get("difficulty") or [None] * len(t["labels"])
        for j, (box, label, crowd, area, diff) in enumerate(zip(t["boxes"].tolist(), t["labels"].tolist(),
                                                                t["iscrowd"].tolist(), t["area"].tolist(), diffs)):
            crowd = int(crowd or not _counts(diff, level))
            for cat in (categories if label == IGNORE_LABEL else [label]):
                anns.append({**_box_ann(len(anns) + 1, t["image_id"], cat, box, area, crowd), "object": j})
    return {"images": images, "annotations": anns,
            "categories": [{"id": c.id, "name": c.name} for c in target_classes()]}


def coco_index(dataset: dict) -> COCO:
    """A pycocotools ``COCO`` over a COCO dict (indexed quietly)."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


class CocoScorer:
    """Ground truth and detections indexed once, scored on any subset of images.

    Args:
        gt: COCO ground-truth dict (``coco_gt``).
        detections: COCO results: ``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``.
    """

    def __init__(self, gt: dict, detections: Iterable[dict]):
        dets = [{**d, "id": k + 1, "area": float(d["bbox"][2] * d["bbox"][3]), "iscrowd": 0}
                for k, d in enumerate(detections)]
        self.gt = coco_index(gt)
        self.dt = coco_index({"images": gt["images"], "categories": gt["categories"], "annotations": dets})
        self.names = {c["id"]: c["name"] for c in gt["categories"]}

    def metrics(self, img_ids: Sequence[int] | None = None) -> dict:
        """AP, AP50, AP75, APs, APm, APl, AR100 (None where no object counts), per-class AP and
        AP50, and the number of images and objects (ignore regions not counted)."""
        ev = COCOeval(self.gt, self.dt, "bbox")
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out: dict = {k: (float(ev.stats[i]) if ev.stats[i] > -1 else None) for k, i in STATS.items()}
        precision = ev.eval["precision"]  # (iou thresholds, recall points, categories, areas, max dets)
        per_class = {}
        for k, cat in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            if (p > -1).any():
                p50 = precision[0, :, k, 0, -1]
                per_class[self.names[cat]] = {"AP": float(p[p > -1].mean()), "AP50": float(p50[p50 > -1].mean())}
        anns = self.gt.loadAnns(self.gt.getAnnIds(imgIds=ev.params.imgIds))
        out.update(per_class=per_class, images=len(ev.params.imgIds),
                   objects=sum(1 for a in anns if not a["iscrowd"]))
        return out


def coco_metrics(gt: dict, detections: Iterable[dict], img_ids: Sequence[int] | None = None) -> dict:
    """COCO metrics of detections against a ground-truth dict (see ``CocoScorer.metrics``)."""
    return CocoScorer(gt, detections).metrics(img_ids)


@torch.no_grad()
def predict(model: nn.Module, dataset: DetectionDataset, labels: LabelSpace, device: str | torch.device = "cpu",
            batch: int = 4) -> list[dict]:
    """COCO results (semantic category ids, [x, y, w, h] in pixels) of ``model`` on every image."""
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    out = []
    try:
        for start in range(0, len(dataset), batch):
            idx = range(start, min(start + batch, len(dataset)))
            images = [dataset.image(i).to(device).float().div_(255) for i in idx]
            for i, pred in zip(idx, model(images)):
                out += coco_results(pred, dataset.entries[i].image_id, labels)
    finally:
        model.train(was_training)
    return out


def coco_results(pred: dict, image_id: int, labels: LabelSpace) -> list[dict]:
    """One image's torchvision detections as COCO results (semantic category ids, [x, y, w, h])."""
    boxes = pred["boxes"].float().cpu().numpy()
    cats = labels.to_semantic(pred["labels"].cpu().numpy())
    return [{"image_id": image_id, "category_id": int(cat), "bbox": [float(x0), float(y0), float(x1 - x0),
                                                                     float(y1 - y0)], "score": float(score)}
            for (x0, y0, x1, y1), cat, score in zip(boxes, cats, pred["scores"].float().cpu().numpy())]


def condition_cells(dataset: DetectionDataset, key: str) -> dict[str, list[int]]:
    """Condition value -> image ids, for one key; images without the key fall in ``unknown``.
    Values are in name order, visibility bands from the clearest to the thickest fog."""
    cells: dict[str, list[int]] = {}
    for e in dataset.entries:
        value = e.conditions.get(key)
        cells.setdefault(UNKNOWN if value is None else str(value), []).append(e.image_id)
    order = (lambda kv: (band_rank(kv[0]), kv[0])) if key == "visibility_band" else (lambda kv: kv[0])
    return dict(sorted(cells.items(), key=order))


def evaluate_detections(dataset: DetectionDataset, detections: list[dict],
                        breakdown: Sequence[str] = BREAKDOWN) -> dict:
    """Metrics overall (``all``), per condition value (``by[key][value]``) and per KITTI difficulty
    (``kitti_difficulty[level]``, when boxes carry one). Keys no image carries are left out."""
    scorer = CocoScorer(coco_gt(dataset), detections)
    result: dict = {"all": scorer.metrics(), "by": {}}
    for key in breakdown:
        if any(key in e.conditions for e in dataset.entries):
            result["by"][key] = {value: scorer.metrics(ids) for value, ids in condition_cells(dataset, key).items()}
    if any(e.difficulty is not None and any(d is not None for d in e.difficulty) for e in dataset.entries):
        result["kitti_difficulty"] = {level: coco_metrics(coco_gt(dataset, level), detections)
                                      for level in DIFFICULTIES}
    return result


def evaluate(model: nn.Module, dataset: DetectionDataset, device: str | torch.device = "cpu", *,
             labels: LabelSpace = LabelSpace(), breakdown: Sequence[str] = BREAKDOWN, batch: int = 4) -> dict:
    """Run ``model`` on ``dataset`` and score it (see ``evaluate_detections``).

    Args:
        model: a detector whose label i + 1 is ``labels.classes[i]``.
        dataset: images and ground truth in the common sample format.
        device: where the model runs.
        labels: the model's label space (``ModelSpec.labels``).
        breakdown: condition keys to break the metrics down by.
        batch: images per forward pass.
    """
    return evaluate_detections(dataset, predict(model, dataset, labels, device, batch), breakdown)




def predict_checkpoint(checkpoint: Path, dataset: DetectionDataset, device: str | torch.device = "cpu", *,
                       weights: str = "ema", batch: int = 4) -> tuple[list[dict], dict]:
    """(COCO results of the detector a checkpoint holds on every image of ``dataset``, and what
    names it: ``spec``, the ``step`` it was saved at and which ``weights``, ``ema`` or ``model``)."""
    model, spec, data = load_detector(checkpoint, weights)
    detections = predict(model, dataset, spec.labels, device, batch)
    return detections, {"spec": spec.to_json(), "step": data["step"], "weights": weights}


def evaluate_checkpoint(checkpoint: Path, dataset: DetectionDataset, device: str | torch.device = "cpu", *,
                        weights: str = "ema", breakdown: Sequence[str] = BREAKDOWN, batch: int = 4) -> dict:
    """``evaluate`` the detector a checkpoint holds (its ``ema`` or raw ``model`` weights); the
    result also names the model (``spec``) and the step it was saved at."""
    detections, info = predict_checkpoint(checkpoint, dataset, device, weights=weights, batch=batch)
    return {**evaluate_detections(dataset, detections, breakdown), **info}
