"""Failure slices: AP50 and recall of a detector per slice of a test set, with support counts and
bootstrap confidence intervals over images, and the weakest slices ranked.

Two kinds of slice, each named by a ``key`` and a ``value``:

- **image** slices: the images with one value of a condition (``weather``, ``time_of_day``,
  ``visibility_band``, ``scenario``, ``event``, and any other tag a record or sidecar gives, but
  not one whose values are all numbers, nor one with the same value on every image), scored as a
  test set of their own;
- **object** slices: the objects in one band of a measure: ``distance_band`` (metres, camera to
  the 3D box centre), ``height_band`` (visible box height, pixels), ``occlusion_band`` and
  ``truncated`` (fractions), where the source knows them (``Entry.object_attributes``: rendered
  frames know all; KITTI truncation and distance; MOT16+ occlusion; footage of a fitted camera
  the distance of each box's foot, ``add_foot_distances``), and ``class`` when there are two or
  more. All other objects become ignore regions: a detection matched to one is neither a match
  nor a false positive and they are never missed, as COCO's area ranges treat objects outside the
  range. A detection that matches nothing has no distance or occlusion, so it stays a false
  positive of every object slice: an object slice's AP50 is a lower bound, not comparable with an
  image slice's.

Matching is pycocotools' (``COCOeval.evaluateImg``): per class, detections in score order, at
most 100 an image, each matched to the best free object at IoU >= 0.5. AP50 is COCO's 101-point
interpolated precision averaged over the classes with objects, recomputed here from those matches
with a weight per image, so a bootstrap resample (weight = times an image is drawn) needs no new
matching; with every weight 1 it is exactly ``CocoScorer.metrics``' AP50. Recall is the share of
a slice's objects matched by a detection scoring at least ``min_score`` (greedy matching in score
order makes that the matching of those detections alone).

Confidence intervals are percentile bootstrap intervals: ``bootstrap`` resamples of all the test
images at once (drawn with replacement, the same resamples for every slice, from the stream
``seeding.SLICE_BOOTSTRAP``); a resample in which a slice has no object gives it no value.

Ranking: each slice's ``gap`` is its metric minus the same metric over the whole set: AP50 for
image slices, recall for object slices (whose AP50 pays every false positive of the set). The
weakest slice has the lowest gap. A slice below ``min_support`` (images for image slices, objects
for object slices), without objects, or the ``unknown`` cell of a condition is listed, not ranked.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from longtail.classes import KITTI_OCCLUSION_LEVELS
from longtail.errors import ParameterError
from longtail.seeding import SLICE_BOOTSTRAP, stream_rng
from longtail.train.entries import DetectionDataset
from longtail.train.evaluate import BREAKDOWN, UNKNOWN, CocoScorer, coco_gt, coco_index, condition_cells
from longtail.worlds.plates.ground import scaled_camera
from longtail.worlds.scene import Camera

IOU = 0.5
MAX_DETECTIONS = 100  # per image, COCO's
REC_THRS = np.linspace(0.0, 1.0, 101)  # COCO's recall points
OBJECT_KEYS = ("distance_band", "height_band", "occlusion_band", "truncated", "class")
Band = tuple[float | None, float | None]  # [lo, hi) of a band, None = open


@dataclass(frozen=True)
class SliceConfig:
    """How slices are cut, scored and ranked.

    Attributes:
        min_support: fewest images (image slices) or objects (object slices) a ranked slice has.
        bootstrap: resamples of the test images for the intervals (0: no intervals).
        confidence: the intervals' coverage.
        min_score: lowest detection score a recall counts.
        seed: the bootstrap's seed.
        distance_edges_m: band edges of the distance (metres), ascending.
        height_edges_px: band edges of the visible box height (pixels), ascending (powers of two,
            as ``labelers.stats``' box height histogram).
        occlusion_edges: band edges of the occluded fraction (KITTI's occlusion levels).
        truncated_at: truncation (fraction outside the image) from which an object is truncated.
    """

    min_support: int = 10
    bootstrap: int = 200
    confidence: float = 0.95
    min_score: float = 0.5
    seed: int = 0
    distance_edges_m: tuple[float, ...] = (10.0, 20.0, 30.0, 50.0, 80.0)
    height_edges_px: tuple[float, ...] = (16.0, 32.0, 64.0, 128.0)
    occlusion_edges: tuple[float, ...] = KITTI_OCCLUSION_LEVELS
    truncated_at: float = 0.15

    def __post_init__(self):
        for name in ("min_support", "bootstrap", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ParameterError(name, f"expected an integer >= 0, got {v!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ParameterError("confidence", f"expected a coverage in (0, 1), got {self.confidence!r}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ParameterError("min_score", f"expected a score in [0, 1], got {self.min_score!r}")
        for name in ("distance_edges_m", "height_edges_px", "occlusion_edges"):
            edges = getattr(self, name)
            if not edges or any(not math.isfinite(e) for e in edges) or list(edges) != sorted(set(edges)):
                raise ParameterError(name, f"expected finite band edges in ascending order, got {edges!r}")
        if not 0.0 < self.truncated_at < 1.0:
            raise ParameterError("truncated_at", f"expected a fraction in (0, 1), got {self.truncated_at!r}")

    def to_json(self) -> dict:
        """The settings, and how each object key is binned (band ``[lo, hi)``, None = open)."""
        return {"iou": IOU, "max_detections": MAX_DETECTIONS, "min_score": self.min_score,
                "min_support": {"image": self.min_support, "object": self.min_support},
                "bootstrap": self.bootstrap, "confidence": self.confidence, "seed": self.seed,
                "interval": "percentile bootstrap, test images resampled with replacement",
                "ranked_by": {"image": "ap50", "object": "recall"},
                "bins": {"distance_band": {"attribute": "distance_m", "edges": list(self.distance_edges_m),
                                           "unit": "m"},
                         "height_band": {"attribute": "box height", "edges": list(self.height_edges_px),
                                         "unit": "px"},
                         "occlusion_band": {"attribute": "occlusion", "edges": list(self.occlusion_edges),
                                            "unit": "fraction"},
                         "truncated": {"attribute": "truncation", "edges": [self.truncated_at],
                                       "values": ["no", "yes"], "unit": "fraction"}}}


def band_ranges(edges: Sequence[float]) -> list[Band]:
    """The bands ``[lo, hi)`` that ascending ``edges`` cut the line into (None: open end)."""
    bounds: list[float | None] = [None, *edges, None]
    return list(zip(bounds[:-1], bounds[1:]))


def band_name(lo: float | None, hi: float | None, unit: str = "") -> str:
    """``<hi``, ``lo-hi`` or ``>=lo``, with a unit (``" m"``), as ``conditions.visibility_band`` writes them."""
    if lo is None:
        return f"<{hi:g}{unit}"
    if hi is None:
        return f">={lo:g}{unit}"
    return f"{lo:g}-{hi:g}{unit}"


def band_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """(N,) index of each value's band (``band_ranges``); -1 for NaN (unknown)."""
    idx = np.searchsorted(np.asarray(edges, np.float64), values, side="right")
    return np.where(np.isnan(values), -1, idx)


def foot_distances(camera: Camera, boxes: np.ndarray) -> np.ndarray:
    """(N,) float32 distance (metres) from ``camera`` to the ground point z = 0 under each box's
    bottom centre (its foot), for (N, 4) ``[x0, y0, x1, y1]`` boxes of an image of the camera's
    size; NaN where that ray does not reach the ground, or the box touches the image's bottom
    (its foot may be outside)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    ray = np.stack([((b[:, 0] + b[:, 2]) / 2 - camera.cx) / camera.fx, (b[:, 3] - camera.cy) / camera.fy,
                    np.ones(len(b))], axis=1)  # camera frame (x right, y down), z = 1
    rz = ray @ camera.world_from_camera()[2, :3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(rz < 0, -camera.position[2] / rz, np.nan)
    dist = t * np.linalg.norm(ray, axis=1)
    dist[b[:, 3] >= camera.height - 0.5] = np.nan
    return dist.astype(np.float32)


def add_foot_distances(dataset: DetectionDataset, camera: Camera) -> int:
    """Give every object of ``dataset`` without a ``distance_m`` the distance of its foot
    (``foot_distances``, the camera scaled to each image; in place); returns how many got one.
    An approximation for footage of a fitted static camera: the distance to the ground under the
    object, not to its 3D centre, and only where the object stands on flat ground z = 0."""
    added = 0
    for e in dataset.entries:
        have = e.object_attributes.get("distance_m")
        missing = np.isnan(have) if have is not None else np.ones(len(e.boxes), bool)
        if not missing.any():
            continue
        dist = foot_distances(scaled_camera(camera, e.height, e.width), e.boxes)
        out = np.where(missing, dist, have if have is not None else np.nan).astype(np.float32)
        added += int((missing & ~np.isnan(dist)).sum())
        e.object_attributes = {**e.object_attributes, "distance_m": out}
    return added


@dataclass
class Matches:
    """Pycocotools' matches at IoU 0.5 over images (in ``image_ids`` order) and classes.

    Attributes:
        image_ids: sorted image ids (I).
        n_objects: (I, K) objects that count (not ignored) per image and class.
        found: (I, K) of those, matched by a detection scoring >= the recall's ``min_score``.
        dets: per class, (image index, true positive, false positive) of its detections, each
            (D,), in COCO's order (score descending, ties in image order); ignored detections
            are neither.
    """

    image_ids: list[int]
    n_objects: np.ndarray
    found: np.ndarray
    dets: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def match(scorer: CocoScorer, gt: dict, image_ids: Sequence[int], cat_ids: Sequence[int],
          min_score: float) -> Matches:
    """Match ``scorer``'s detections to the ground truth ``gt`` (a COCO dict over the same images)."""
    ev = COCOeval(coco_index(gt), scorer.dt, "bbox")
    p = ev.params
    p.imgIds, p.catIds = list(image_ids), list(cat_ids)
    p.iouThrs, p.areaRng, p.areaRngLbl, p.maxDets = np.array([IOU]), [[0.0, 1e10]], ["all"], [MAX_DETECTIONS]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    n_img, n_cat = len(image_ids), len(cat_ids)
    n_objects = np.zeros((n_img, n_cat), np.float64)
    found = np.zeros((n_img, n_cat), np.float64)
    dets = []
    for k in range(n_cat):
        img_idx, scores, tps, fps = [], [], [], []
        for i in range(n_img):
            r = ev.evalImgs[k * n_img + i]
            if r is None:
                continue
            gt_ignored = np.asarray(r["gtIgnore"], bool)
            n_objects[i, k] = (~gt_ignored).sum()
            score_of = dict(zip(r["dtIds"], r["dtScores"]))
            found[i, k] = sum(1 for m, ig in zip(r["gtMatches"][0], gt_ignored)
                              if m > 0 and not ig and score_of[m] >= min_score)
            matched, dt_ignored = r["dtMatches"][0] > 0, np.asarray(r["dtIgnore"][0], bool)
            img_idx.append(np.full(len(matched), i))
            scores.append(np.asarray(r["dtScores"], np.float64))
            tps.append(matched & ~dt_ignored)
            fps.append(~matched & ~dt_ignored)
        if img_idx:
            s = np.concatenate(scores)
            order = np.argsort(-s, kind="mergesort")  # COCO's accumulate: stable over image order
            dets.append((np.concatenate(img_idx)[order], np.concatenate(tps)[order], np.concatenate(fps)[order]))
        else:
            dets.append((np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool)))
    return Matches(list(image_ids), n_objects, found, dets)


def ap50(m: Matches, weights: np.ndarray, classes: np.ndarray) -> float | None:
    """COCO AP50 of the images weighted by ``weights`` (I,) (0 = left out, 2 = counted twice),
    over the classes ``classes`` (K,) bool that have objects; None when none has."""
    aps = []
    for k in np.flatnonzero(classes):
        npig = float(weights @ m.n_objects[:, k])
        if npig <= 0:
            continue
        img, tp, fp = m.dets[k]
        w = weights[img]
        keep = w > 0
        if not keep.any():
            aps.append(0.0)
            continue
        w, tp, fp = w[keep], tp[keep], fp[keep]
        tps, fps = np.cumsum(w * tp), np.cumsum(w * fp)
        rc = tps / npig
        pr = np.maximum.accumulate((tps / (tps + fps + np.spacing(1)))[::-1])[::-1]
        at = np.searchsorted(rc, REC_THRS, side="left")
        aps.append(float(np.where(at < len(pr), pr[np.minimum(at, len(pr) - 1)], 0.0).mean()))
    return float(np.mean(aps)) if aps else None


def recall(m: Matches, weights: np.ndarray, classes: np.ndarray) -> float | None:
    """Share of the weighted objects of ``classes`` found (``Matches.found``); None without objects."""
    total = float(weights @ m.n_objects[:, classes].sum(axis=1))
    return float(weights @ m.found[:, classes].sum(axis=1)) / total if total > 0 else None


def bootstrap_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_images) times each image is drawn in each resample (with replacement)."""
    rng = stream_rng(seed, 0, SLICE_BOOTSTRAP)
    out = np.zeros((resamples, n_images), np.float64)
    for b in range(resamples):
        out[b] = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)
    return out


def interval(values: Iterable[float | None], confidence: float) -> list[float] | None:
    """Percentile interval of the values that are not None; None if there are none."""
    v = np.array([x for x in values if x is not None], np.float64)
    if not len(v):
        return None
    tail = 100 * (1 - confidence) / 2
    return [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]


@dataclass(frozen=True)
class _Cut:
    """One slice to score: which matches, images and classes."""

    key: str
    value: str
    kind: str  # "image" | "object"
    matches: Matches
    images: np.ndarray  # (I,) bool
    classes: np.ndarray  # (K,) bool
    range: Band | None = None


def _object_values(dataset: DetectionDataset, config: SliceConfig) -> dict[str, tuple[dict, list[tuple[str, Band]]]]:
    """Object key -> ({(image id, object index): band index}, (name, [lo, hi)) of each band), for
    the keys some counted object has a value of."""
    keys: dict[str, tuple[str | None, Sequence[float], str]] = {
        "distance_band": ("distance_m", config.distance_edges_m, " m"),
        "height_band": (None, config.height_edges_px, " px"),
        "occlusion_band": ("occlusion", config.occlusion_edges, ""),
        "truncated": ("truncation", (config.truncated_at,), ""),
    }
    out: dict[str, tuple[dict, list[tuple[str, Band]]]] = {}
    for key, (attr, edges, unit) in keys.items():
        of: dict[tuple[int, int], int] = {}
        for e in dataset.entries:
            if attr is None:
                values = (e.boxes[:, 3] - e.boxes[:, 1]).astype(np.float64)
            elif attr in e.object_attributes:
                values = e.object_attributes[attr].astype(np.float64)
            else:
                continue
            for j, b in enumerate(band_index(values, edges)):
                if b >= 0 and not e.iscrowd[j]:
                    of[(e.image_id, j)] = int(b)
        if of:
            ranges = band_ranges(edges)
            names = ["no", "yes"] if key == "truncated" else [band_name(lo, hi, unit) for lo, hi in ranges]
            out[key] = (of, list(zip(names, ranges)))
    return out


def _in_slice(gt: dict, members: dict[tuple[int, int], int], band: int) -> dict:
    """``gt`` with every counted object outside the band ignored (an area outside COCO's range)."""
    anns = [a if a["iscrowd"] or members.get((a["image_id"], a["object"])) == band else {**a, "area": -1.0}
            for a in gt["annotations"]]
    return {**gt, "annotations": anns}


def _cuts(dataset: DetectionDataset, scorer: CocoScorer, gt: dict, image_ids: list[int], cat_ids: list[int],
          names: dict[int, str], config: SliceConfig) -> tuple[Matches, list[_Cut]]:
    base = match(scorer, gt, image_ids, cat_ids, config.min_score)
    position = {i: k for k, i in enumerate(image_ids)}
    every_class = np.ones(len(cat_ids), bool)
    cuts = []
    keys = list(BREAKDOWN) + sorted({k for e in dataset.entries for k in e.conditions} - set(BREAKDOWN))
    for key in keys:
        if not any(key in e.conditions for e in dataset.entries):
            continue
        cells = condition_cells(dataset, key)
        if len(cells) < 2 or all(_is_number(v) for v in cells if v != UNKNOWN):
            continue  # one value on every image is the whole set; numbers (a sidecar's visibility_m) a cell each
        for value, ids in cells.items():
            images = np.zeros(len(image_ids), bool)
            images[[position[i] for i in ids]] = True
            cuts.append(_Cut(key, value, "image", base, images, every_class))
    all_images = np.ones(len(image_ids), bool)
    for key, (members, bands) in _object_values(dataset, config).items():
        for band in sorted(set(members.values())):
            name, rng = bands[band]
            cuts.append(_Cut(key, name, "object", match(scorer, _in_slice(gt, members, band), image_ids, cat_ids,
                                                        config.min_score), all_images, every_class, rng))
    for k, cat in enumerate(cat_ids if len(cat_ids) > 1 else []):  # one class is the whole set
        classes = np.zeros(len(cat_ids), bool)
        classes[k] = True
        cuts.append(_Cut("class", names[cat], "object", base, all_images, classes))
    return base, cuts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def compute_slices(dataset: DetectionDataset, detections: list[dict], config: SliceConfig = SliceConfig()) -> dict:
    """AP50 and recall per slice of ``dataset`` for ``detections`` (COCO results, as
    ``evaluate.predict`` returns them), with intervals, support and rank (module docstring).

    Returns:
        ``settings`` (``SliceConfig.to_json``), ``all`` (the whole set as one slice) and
        ``slices``: one record per slice, ranked ones first from the weakest, each with ``key``,
        ``value``, ``kind`` (image | object), ``range`` ([lo, hi) of a banded object key, None
        = open; None otherwise), ``support_images``, ``support_objects``, ``ap50``, ``ap50_ci``,
        ``recall``, ``recall_ci``, ``metric`` (ap50 | recall, what ranks it), ``gap`` and
        ``gap_ci`` (metric minus the whole set's), ``rank`` (1 = weakest; None: not ranked) and
        ``note`` (why not).
    """
    gt = coco_gt(dataset)
    scorer = CocoScorer(gt, detections)
    image_ids = sorted(e.image_id for e in dataset.entries)
    cat_ids = sorted({a["category_id"] for a in gt["annotations"] if not a["iscrowd"]})
    names = {c["id"]: c["name"] for c in gt["categories"]}
    base, cuts = _cuts(dataset, scorer, gt, image_ids, cat_ids, names, config)
    boot = bootstrap_weights(len(image_ids), config.bootstrap, config.seed)
    ones, every_class = np.ones(len(image_ids)), np.ones(len(cat_ids), bool)
    overall = {"ap50": (ap50(base, ones, every_class), [ap50(base, w, every_class) for w in boot]),
               "recall": (recall(base, ones, every_class), [recall(base, w, every_class) for w in boot])}

    def record(cut: _Cut) -> dict:
        w = cut.images.astype(np.float64)
        per_object = cut.matches.n_objects[:, cut.classes].sum(axis=1) * w
        a = (ap50(cut.matches, w, cut.classes), [ap50(cut.matches, b * w, cut.classes) for b in boot])
        r = (recall(cut.matches, w, cut.classes), [recall(cut.matches, b * w, cut.classes) for b in boot])
        metric = "ap50" if cut.kind == "image" else "recall"
        point, reps = {"ap50": a, "recall": r}[metric]
        all_point, all_reps = overall[metric]
        gap = None if point is None or all_point is None else point - all_point
        gaps = [None if x is None or y is None else x - y for x, y in zip(reps, all_reps)]
        images = int(cut.images.sum()) if cut.kind == "image" else int((per_object > 0).sum())
        objects = int(per_object.sum())
        support = images if cut.kind == "image" else objects
        note = ("images without this condition" if cut.kind == "image" and cut.value == UNKNOWN else
                "no objects" if not objects else
                f"support {support} < min_support {config.min_support}" if support < config.min_support else None)
        return {"key": cut.key, "value": cut.value, "kind": cut.kind,
                "range": None if cut.range is None else list(cut.range),
                "support_images": images, "support_objects": objects,
                "ap50": a[0], "ap50_ci": interval(a[1], config.confidence),
                "recall": r[0], "recall_ci": interval(r[1], config.confidence),
                "metric": metric, "gap": gap, "gap_ci": interval(gaps, config.confidence),
                "rank": None, "note": note}

    everything = _Cut("all", "all", "image", base, np.ones(len(image_ids), bool), every_class)
    whole = {**record(everything), "note": None}
    records = [record(c) for c in cuts]
    ranked = sorted((r for r in records if r["note"] is None and r["gap"] is not None),
                    key=lambda r: (r["gap"], r["key"], r["value"]))
    for k, r in enumerate(ranked):
        r["rank"] = k + 1
    others = [r for r in records if r["rank"] is None]
    return {"settings": config.to_json(), "all": whole, "slices": ranked + others}


def slice_lines(result: dict, top: int = 8) -> list[str]:
    """The weakest ``top`` ranked slices of ``compute_slices`` as a table (a line each), with a
    header and a line on the whole set and the slices left unranked."""
    s = result["settings"]
    fmt = lambda v: "  n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no object in the slice
    ci = lambda c: "" if c is None else f" [{c[0]:.2f}, {c[1]:.2f}]"  # noqa: E731 - no interval

    def cell(v, c) -> str:
        return f"{fmt(v)}{ci(c)}".ljust(20)

    a = result["all"]
    pct = round(100 * s["confidence"])
    lines = [f"slices: AP50 and recall at IoU {s['iou']:g} (recall: detections scoring >= {s['min_score']:g}), "
             f"{pct} % intervals from {s['bootstrap']} bootstrap resamples of the images",
             f"  all: AP50 {cell(a['ap50'], a['ap50_ci']).strip()}, recall {cell(a['recall'], a['recall_ci']).strip()}"
             f" ({a['support_images']} images, {a['support_objects']} objects)",
             f"  {'rank':>4}  {'slice':<28} {'kind':<6} {'images':>6} {'objects':>7}  {'AP50':<20}{'recall':<20}gap"]
    ranked = [r for r in result["slices"] if r["rank"] is not None]
    for r in ranked[:top]:
        gap = f"{100 * r['gap']:+.1f} {r['metric']}"
        lines.append(f"  {r['rank']:>4}  {(r['key'] + '=' + r['value'])[:28]:<28} {r['kind']:<6} "
                     f"{r['support_images']:>6} {r['support_objects']:>7}  {cell(r['ap50'], r['ap50_ci'])}"
                     f"{cell(r['recall'], r['recall_ci'])}{gap}")
    unranked = len(result["slices"]) - len(ranked)
    lines.append(f"  {len(ranked)} slices ranked (gap: points against the whole set), {unranked} not ranked "
                 f"(support < {s['min_support']['image']} images / objects, no objects, or unknown condition)")
    return lines
