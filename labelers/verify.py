"""Check a dataset on disk against its manifest and against itself: ``verify_dataset``.

Reads only. The checks, from the outside in: the manifest is ours; every listed file is on disk
with its sha256, and nothing unlisted sits in the frame folders; every frame's files are present
and decode at the camera's size; each object's box, area, RLE and depth agree with the instance
PNG; every instance id has an object; semantic ids are known classes; coco.json agrees with the
frame records. A bad dataset gives findings, never an exception.

A sharded dataset (``longtail.shards``: a directory with ``shards.json``) gets the same per-frame
checks on the bytes of each sample, after its own outer ones: every shard and shard COCO file
listed with its sha256, the samples a shard holds (count, keys, members), and each shard's COCO
file against the records of its frames.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from longtail.atomic import sha256_file
from longtail.dataset import FRAME_KINDS, IMAGE_LAYOUT, MANIFEST, Manifest, frame_files
from longtail.depth import decode_depth
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json
from longtail.records import parse_record
from longtail.shards import (MEMBER, MEMBERS, SHARDS, HashingFile, ShardEntry, ShardManifest, is_shard_file,
                             is_sharded, load_shard_manifest, sample_key, stream_samples)
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


# (kind, the path the frame record gives) -> (name for findings, the file's bytes), or the Finding
# that the file is missing or unreadable
ImageSource = Callable[[str, str], "tuple[str, bytes] | Finding"]
# rgb path -> (frame record name, record): the frames a COCO file is checked against
Records = dict[str, tuple[str, dict]]


def verify_dataset(root: Path) -> list[Finding]:
    """Every problem found in the dataset at ``root``, sorted; empty if it is sound."""
    root = Path(root)
    if not root.is_dir():
        return [Finding(".", f"{root}: {'not a directory' if root.exists() else 'no such directory'}")]
    if is_sharded(root):
        return verify_shards(root)
    try:
        manifest = Manifest.load(root)
    except DatasetError as e:
        return [Finding(MANIFEST, e.problem)]
    findings = check_manifest_files(root, manifest)
    records: Records = {}
    image = _folder_images(root)
    for index in range(manifest.frame_count):
        rel = frame_files(index)["labels"]
        findings += _frame(rel, _folder_file(root, rel), index, image, records)
    findings += check_coco(root, records)
    return sorted(set(findings))


def _folder_file(root: Path, rel: str) -> bytes | Finding:
    path = root / rel
    if not path.is_file():
        return Finding(rel, "missing")
    try:
        return path.read_bytes()
    except OSError as e:
        return Finding(rel, f"unreadable ({e.strerror})")


def _folder_images(root: Path) -> ImageSource:
    def image(kind: str, ref: str) -> tuple[str, bytes] | Finding:
        raw = _folder_file(root, ref)
        return raw if isinstance(raw, Finding) else (ref, raw)
    return image


def _frame(rel: str, raw: bytes | Finding, index: int, image: ImageSource, records: Records) -> list[Finding]:
    """Findings of frame ``index``, whose record ``rel`` holds ``raw``; adds the record to ``records``."""
    if isinstance(raw, Finding):
        return [raw]
    try:
        record = parse_record(raw, rel, index)
    except DatasetError as e:
        return [Finding(rel, f"malformed frame record: {e.field}: {e.problem}" if e.field else e.problem)]
    try:
        out = frame_findings(rel, record, index, image)
        records[record["files"]["rgb"]] = (rel, record)
    except MALFORMED as e:
        # a record of another shape: say so once rather than guess at every field
        out = [Finding(rel, f"malformed frame record ({type(e).__name__}: {e})")]
    return out


# --- a sharded dataset ---------------------------------------------------------------------------

def verify_shards(root: Path) -> list[Finding]:
    """Every problem found in the shard set at ``root``, sorted; empty if it is sound. Reads each
    shard once, front to back, holding one sample at a time (and one shard's frame records for
    its COCO check)."""
    root = Path(root)
    try:
        m = load_shard_manifest(root)
    except DatasetError as e:
        return [Finding(SHARDS, f"{e.field}: {e.problem}" if e.field else e.problem)]
    listed = {name for e in m.shards for name in (e.name, e.coco)}
    findings = [Finding(p.name, f"not listed in {SHARDS}") for p in sorted(root.iterdir())
                if is_shard_file(p.name) and p.name not in listed]
    for k, entry in enumerate(m.shards):
        findings += _shard_findings(root, m, k, entry)
    return sorted(set(findings))


def _shard_findings(root: Path, m: ShardManifest, k: int, entry: ShardEntry) -> list[Finding]:
    frames = m.frames(k)
    records: Records = {}
    out = _check_checksum(root, entry.coco, entry.coco_sha256)
    try:
        fh = open(root / entry.name, "rb")
    except OSError as e:
        return out + [Finding(entry.name, "missing" if isinstance(e, FileNotFoundError) else
                              f"unreadable ({e.strerror})")]
    n, broken = 0, False
    with fh:
        reader = HashingFile(fh)
        try:
            for n, (key, members) in enumerate(stream_samples(reader, entry.name), 1):
                if n <= len(frames):
                    out += _sample_findings(entry.name, key, members, frames[n - 1], records)
        except DatasetError as e:
            broken = True
            out.append(Finding(entry.name, f"{e.field}: {e.problem}" if e.field else e.problem))
        except OSError as e:
            broken = True
            out.append(Finding(entry.name, f"unreadable ({e.strerror})"))
        sha = reader.drain()
    if sha != entry.sha256:
        out.append(Finding(entry.name, f"sha256 mismatch: file {sha[:12]}..., {SHARDS} {entry.sha256[:12]}..."))
    if n != len(frames) and not broken:
        out.append(Finding(entry.name, f"holds {n} samples, {SHARDS} lists {len(frames)}"))
    return out + check_coco(root, records, entry.coco)


def _sample_findings(shard: str, key: str, members: dict[str, bytes], index: int, records: Records) -> list[Finding]:
    """Findings of one sample of ``shard``, which should be frame ``index``."""
    prefix = f"{shard}/{key}"
    want = sample_key(index)
    out = [] if key == want else [Finding(prefix, f"key {key!r}; this sample of the shard is frame {index}, "
                                                  f"key {want!r}")]
    out += [Finding(f"{prefix}.{s}", "missing") for s in MEMBERS if s not in members]
    out += [Finding(f"{prefix}.{s}", "not a member of a longtail sample") for s in sorted(members) if s not in MEMBERS]

    def image(kind: str, ref: str) -> tuple[str, bytes] | Finding:
        name = f"{prefix}.{MEMBER[kind]}"
        data = members.get(MEMBER[kind])
        return Finding(name, "missing") if data is None else (name, data)

    rel = f"{prefix}.{MEMBER['labels']}"
    raw = members.get(MEMBER["labels"])
    return out + _frame(rel, Finding(rel, "missing") if raw is None else raw, index, image, records)


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


# --- one frame -----------------------------------------------------------------------------------

def frame_findings(rel: str, record: dict, index: int, image: ImageSource) -> list[Finding]:
    """Findings for frame ``index``, whose record was read from ``rel``; ``image`` gives the bytes
    of its images (from a folder dataset's files or a shard's sample).

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
        got = image(kind, ref)
        if isinstance(got, Finding):
            out.append(got)
            continue
        name, raw = got
        array, problems = decode_frame_image(name, raw, kind, width, height)
        out += problems
        if array is not None:
            images[kind] = (name, array)
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


def decode_frame_image(rel: str, raw: bytes, kind: str, width: int,
                       height: int) -> tuple[np.ndarray | None, list[Finding]]:
    """The decoded image ``rel`` (the file's bytes ``raw``) of ``kind`` if it has the expected
    dtype, channels and size."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            array = np.array(img)
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

def check_coco(root: Path, records: Records, rel: str = COCO) -> list[Finding]:
    """Findings for the COCO file ``rel`` (coco.json, or a shard's) against the frame records
    (rgb path -> (labels path, record)).

    A missing file is left to the manifest checks: an incomplete dataset has no coco.json yet.
    """
    if not (root / rel).is_file():
        return []
    try:
        coco = load_json(root / rel)
    except InputError as e:
        return [Finding(rel, e.problem)]
    try:
        return [Finding(rel, p) for p in coco_problems(coco, records)]
    except MALFORMED as e:
        return [Finding(rel, f"malformed COCO file ({type(e).__name__}: {e})")]


def coco_problems(coco: dict, records: Records) -> list[str]:
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
