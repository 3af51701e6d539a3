"""Check a dataset on disk against its manifest and against itself: ``verify_dataset``.

Reads only. The checks, from the outside in: the manifest is ours; every listed file is on disk
with its sha256, and nothing unlisted sits in the frame folders; every frame's files are present
and decode at the camera's size; each object's box, area, RLE and depth agree with the instance
PNG; every instance id has an object; semantic ids are known classes; coco.json agrees with the
frame records. A bad dataset gives findings, never an exception.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from pycocotools import mask as mask_utils

from longtail.atomic import read_png, sha256_file
from longtail.dataset import FRAME_KINDS, IMAGE_LAYOUT, MANIFEST, Manifest, frame_files
from longtail.depth import decode_depth
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json
from longtail.records import read_record
from longtail.labelers.annotate import tight_box
from longtail.classes import CLASSES, class_by_id, get_class

COCO = "coco.json"
# Pixel layout of each image kind in a frame: (dtype, channels; 0 = a single-channel (H, W) image).
IMAGE_KINDS = IMAGE_LAYOUT
# Errors a frame record or coco.json of the wrong shape raises when read as ours.
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)


@dataclass(frozen=True, order=True)
class Finding:
    """One problem with one file of a dataset."""

    path: str  # relative to the dataset root; "." is the root itself
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def verify_dataset(root: Path) -> list[Finding]:
    """Every problem found in the dataset at ``root``, sorted; empty if it is sound."""
    root = Path(root)
    if not root.is_dir():
        return [Finding(".", f"{root}: {'not a directory' if root.exists() else 'no such directory'}")]
    try:
        manifest = Manifest.load(root)
    except DatasetError as e:
        return [Finding(MANIFEST, e.problem)]
    findings = check_manifest_files(root, manifest)
    records: dict[str, tuple[str, dict]] = {}  # rgb path -> (labels path, record), for the COCO check
    for index in range(manifest.frame_count):
        rel = frame_files(index)["labels"]
        record, problems = _read_record(root, rel, index)
        findings += problems
        if record is None:
            continue
        try:
            findings += frame_findings(root, rel, record, index)
            records[record["files"]["rgb"]] = (rel, record)
        except MALFORMED as e:
            # a record of another shape: say so once rather than guess at every field
            findings.append(Finding(rel, f"malformed frame record ({type(e).__name__}: {e})"))
    findings += check_coco(root, records)
    return sorted(set(findings))


# --- the manifest and the files on disk ----------------------------------------------------------

def check_manifest_files(root: Path, manifest: Manifest) -> list[Finding]:
    """Listed files exist with their sha256; expected files are listed; nothing unlisted on disk."""
    out = [] if manifest.complete else [Finding(MANIFEST, "incomplete: the render did not finish; "
                                                "rerun the same render command")]
    for rel, sha in sorted(manifest.files.items()):
        out += _check_checksum(root, rel, sha)
    expected = [rel for i in range(manifest.frame_count) for rel in frame_files(i).values()]
    for rel in expected + ([COCO] if manifest.complete else []):
        if rel not in manifest.files:
            out.append(Finding(rel, "not listed in the manifest"))
        if not (root / rel).is_file():
            out.append(Finding(rel, "missing"))
    for kind in FRAME_KINDS:
        for path in sorted((root / kind).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and rel not in manifest.files:
                out.append(Finding(rel, "not listed in the manifest"))
    return out


def _check_checksum(root: Path, rel: str, sha: str) -> list[Finding]:
    if not _inside(rel):
        return [Finding(rel, "path leaves the dataset directory")]
    path = root / rel
    if not path.is_file():
        return [Finding(rel, "missing")]
    try:
        actual = sha256_file(path)
    except OSError as e:
        return [Finding(rel, f"unreadable ({e.strerror})")]
    if actual != sha:
        return [Finding(rel, f"sha256 mismatch: file {actual[:12]}..., manifest {str(sha)[:12]}...")]
    return []


def _inside(rel: str) -> bool:
    """True if ``rel`` is a relative path that stays under the dataset root."""
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def _read_record(root: Path, rel: str, index: int) -> tuple[dict | None, list[Finding]]:
    path = root / rel
    if not path.is_file():
        return None, [Finding(rel, "missing")]
    try:
        return read_record(path, index), []
    except DatasetError as e:
        return None, [Finding(rel, f"malformed frame record: {e.field}: {e.problem}" if e.field else e.problem)]


# --- one frame -----------------------------------------------------------------------------------

def frame_findings(root: Path, rel: str, record: dict, index: int) -> list[Finding]:
    """Findings for frame ``index``, whose record was read from ``rel``.

    Raises:
        KeyError, TypeError, ValueError, IndexError, AttributeError: a record of another shape.
    """
    out = [] if record["frame"] == index else [Finding(rel, f"frame is {record['frame']!r}, expected {index}")]
    width, height = int(record["camera"]["width"]), int(record["camera"]["height"])
    images: dict[str, tuple[str, np.ndarray]] = {}  # kind -> (path, array)
    for kind in IMAGE_KINDS:
        ref = record["files"].get(kind)
        if ref != frame_files(index)[kind]:
            out.append(Finding(rel, f"files.{kind} is {ref!r}, expected {frame_files(index)[kind]!r}"))
        if not isinstance(ref, str) or not _inside(ref):
            continue
        array, problems = read_frame_image(root, ref, kind, width, height)
        out += problems
        if array is not None:
            images[kind] = (ref, array)
    objects = record["objects"]
    for oid, n in sorted(Counter(o["id"] for o in objects).items()):
        if n > 1:
            out.append(Finding(rel, f"object id {oid} appears {n} times"))
    for obj in objects:
        out += [Finding(rel, f"object {obj['id']}: {p}") for p in object_problems(obj, images, width, height)]
    if "instance" in images:
        out += _check_instance_ids(rel, *images["instance"], objects)
    if "semantic" in images:
        out += _check_semantic_ids(*images["semantic"])
    return out


def read_frame_image(root: Path, rel: str, kind: str, width: int,
                     height: int) -> tuple[np.ndarray | None, list[Finding]]:
    """The decoded image ``rel`` of ``kind`` if it has the expected dtype, channels and size."""
    path = root / rel
    if not path.is_file():
        return None, [Finding(rel, "missing")]
    try:
        array = read_png(path)
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for a damaged file; all mean "broken"
        return None, [Finding(rel, f"does not decode as PNG ({type(e).__name__}: {e})")]
    dtype, channels = IMAGE_KINDS[kind]
    want_shape = (height, width, channels) if channels else (height, width)
    if array.dtype != dtype or array.ndim != len(want_shape):
        want = f"{np.dtype(dtype)} with {channels or 1} channel(s)"
        return None, [Finding(rel, f"expected {want}, got {array.dtype} of shape {array.shape}")]
    if array.shape != want_shape:
        return None, [Finding(rel, f"size {array.shape[1]}x{array.shape[0]}, the record's camera is {width}x{height}")]
    return array, []


def object_problems(obj: dict, images: dict[str, tuple[str, np.ndarray]], width: int, height: int) -> list[str]:
    """What is wrong with one object record, given the frame's decoded images (kind -> (path, array))."""
    out = []
    cls = _class_id(obj["class"])
    if cls is None:
        out.append(f"unknown class {obj['class']!r}")
    area, bbox = int(obj["area"]), obj["bbox"]
    if area > 0 and not _box_inside(bbox, width, height):
        out.append(f"bbox {_fmt(bbox)} is not inside the {width}x{height} image")
    if "instance" not in images:
        return out
    inst_rel, instance = images["instance"]
    mask = instance == obj["id"]
    pixels = int(mask.sum())
    if pixels != area:
        out.append(f"area {area}, but {pixels} pixels of {inst_rel} carry its id")
    if bbox != tight_box(mask):
        out.append(f"bbox {_fmt(bbox)} is not the tight box {_fmt(tight_box(mask))} of its mask in {inst_rel}")
    out += _rle_problems(obj.get("rle"), mask)
    if pixels and "depth" in images:
        depth_rel, depth = images["depth"]
        d = decode_depth(depth)[mask]
        bad = int((~np.isfinite(d) | (d <= 0)).sum())
        if bad:
            out.append(f"{bad} of its {pixels} pixels have no depth in {depth_rel}")
    if pixels and cls is not None and "semantic" in images:
        sem_rel, semantic = images["semantic"]
        other = int((semantic[mask] != cls).sum())
        if other:
            out.append(f"{other} of its {pixels} pixels are not class {cls} in {sem_rel}")
    return out


def _rle_problems(rle: dict | None, mask: np.ndarray) -> list[str]:
    if rle is None:
        return []  # optional: hidden objects carry none
    if list(rle["size"]) != list(mask.shape):
        return [f"rle size {rle['size']}, the image is {mask.shape[0]}x{mask.shape[1]} (rows x columns)"]
    try:
        decoded = mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, KeyError) as e:
        return [f"rle does not decode ({e})"]
    diff = int((decoded != mask).sum())
    return [f"rle differs from its instance mask in {diff} pixels"] if diff else []


def _check_instance_ids(rel: str, inst_rel: str, instance: np.ndarray, objects: list[dict]) -> list[Finding]:
    ids, counts = np.unique(instance, return_counts=True)
    known = {o["id"] for o in objects}
    return [Finding(inst_rel, f"id {i} ({n} pixels) has no object in {rel}")
            for i, n in zip(ids.tolist(), counts.tolist()) if i != 0 and i not in known]


def _check_semantic_ids(sem_rel: str, semantic: np.ndarray) -> list[Finding]:
    unknown = sorted(set(np.unique(semantic).tolist()) - {c.id for c in CLASSES})
    return [Finding(sem_rel, f"unknown semantic class ids {unknown}")] if unknown else []


def _class_id(name: object) -> int | None:
    try:
        return get_class(str(name)).id
    except KeyError:
        return None


def _box_inside(bbox: list[float] | None, width: int, height: int) -> bool:
    if bbox is None or len(bbox) != 4:
        return False
    x0, y0, x1, y1 = bbox
    return 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def _fmt(bbox: list[float] | None) -> str:
    return "null" if bbox is None else "[" + ", ".join(f"{v:g}" for v in bbox) + "]"


# --- coco.json -----------------------------------------------------------------------------------

def check_coco(root: Path, records: dict[str, tuple[str, dict]]) -> list[Finding]:
    """Findings for coco.json against the frame records (rgb path -> (labels path, record)).

    A missing coco.json is left to the manifest checks: an incomplete dataset has none yet.
    """
    if not (root / COCO).is_file():
        return []
    try:
        coco = load_json(root / COCO)
    except InputError as e:
        return [Finding(COCO, e.problem)]
    try:
        return [Finding(COCO, p) for p in coco_problems(coco, records)]
    except MALFORMED as e:
        return [Finding(COCO, f"malformed COCO file ({type(e).__name__}: {e})")]


def coco_problems(coco: dict, records: dict[str, tuple[str, dict]]) -> list[str]:
    """Duplicate ids and names, and images and annotations that disagree with the frame records."""
    images, annotations = coco["images"], coco["annotations"]
    out = _duplicates("image id", [im["id"] for im in images])
    out += _duplicates("image file_name", [im["file_name"] for im in images])
    out += _duplicates("annotation id", [a["id"] for a in annotations])
    by_id: dict[int, dict] = {}
    for im in images:
        by_id.setdefault(im["id"], im)
        if im["file_name"] not in records:
            out.append(f"image {im['id']}: file_name {im['file_name']!r} has no readable frame record")
            continue
        cam = records[im["file_name"]][1]["camera"]
        if (im["width"], im["height"]) != (cam["width"], cam["height"]):
            out.append(f"image {im['id']}: size {im['width']}x{im['height']}, the record's camera is "
                       f"{cam['width']}x{cam['height']}")
    names = {im["file_name"] for im in images}
    out += [f"frame {rgb!r} has no image" for rgb in sorted(records) if rgb not in names]
    seen = set()
    for ann in annotations:
        image = by_id.get(ann["image_id"])
        if image is None:
            out.append(f"annotation {ann['id']}: image_id {ann['image_id']} has no image")
        elif image["file_name"] in records:
            seen.add((image["id"], ann["track_id"]))
            out += [f"annotation {ann['id']}: {p}" for p in _annotation_problems(ann, *records[image["file_name"]])]
    for im in by_id.values():
        if im["file_name"] in records:
            rel, record = records[im["file_name"]]
            out += [f"image {im['id']}: object {o['id']} of {rel} has no annotation" for o in record["objects"]
                    if _exported(o) and (im["id"], o["track_id"]) not in seen]
    return out


def _annotation_problems(ann: dict, rel: str, record: dict) -> list[str]:
    match = [o for o in record["objects"] if o["track_id"] == ann["track_id"]]
    if not match:
        return [f"no object with track_id {ann['track_id']} in {rel}"]
    obj = match[0]
    out = []
    x0, y0, x1, y1 = obj["bbox"] if obj["bbox"] is not None else (np.nan,) * 4
    if list(ann["bbox"]) != [x0, y0, x1 - x0, y1 - y0]:
        out.append(f"bbox {_fmt(ann['bbox'])} (xywh), but {rel} object {obj['id']} has {_fmt(obj['bbox'])} (xyxy)")
    if ann["area"] != obj["area"]:
        out.append(f"area {ann['area']}, but {rel} object {obj['id']} has {obj['area']}")
    if ann["category_id"] != _class_id(obj["class"]):
        out.append(f"category_id {ann['category_id']}, but {rel} object {obj['id']} is {obj['class']!r}")
    return out


def _exported(obj: dict) -> bool:
    """True if the COCO export holds the object: visible and of a detection-target class."""
    cls = _class_id(obj["class"])
    return bool(obj["area"]) and cls is not None and class_by_id(cls).target


def _duplicates(what: str, values: list) -> list[str]:
    return [f"duplicate {what} {v!r} ({n} times)" for v, n in Counter(values).items() if n > 1]
