"""Weather variants of a saved dataset: a new longtail dataset whose frames are the source's
frames under a weather preset, drawn with the source's own depth maps.

Output frame ``i * variants + v`` is variant v of source frame i; its randomness flows from
``seeding.frame_rng(seed, output index)``. Depth, instance and semantic PNGs are copied byte for
byte, labels pass through unchanged (boxes, masks, occlusion ...) with a per-object
``visibility`` (``render.weather.visibility.object_visibility``) and the frame attributes
updated: ``augmented`` {preset, strength, variant, source_frame}, and the weather tags the
preset implies (``weather``, ``visibility_m``, ``time_of_day``, ...). Files are written
atomically and the manifest last, so a directory with a manifest is complete.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np

from longtail.atomic import write_bytes, write_json, write_png
from longtail.dataset import MANIFEST, Manifest, check_frame_image, frame_files
from longtail.depth import decode_depth
from longtail.errors import DatasetError, InputError, ParameterError
from longtail.readers import read_image
from longtail.records import parse_record
from longtail.labelers.coco import to_coco
from longtail.render.weather.presets import get_preset
from longtail.render.weather.visibility import object_visibility
from longtail.seeding import frame_rng

COPIED = ("depth", "instance", "semantic")  # unchanged by the weather: copied byte for byte


def augment_dataset(src: Path, out: Path, preset: str, variants: int = 1, strength: float = 1.0,
                    seed: int = 0) -> dict:
    """Write ``variants`` weathered copies of every frame of the dataset ``src`` into ``out``.

    Args:
        src: a complete longtail dataset directory.
        out: a new or empty directory for the result.
        preset: weather preset name (``render.weather.presets.list_presets()``).
        variants: weathered copies per source frame (>= 1).
        strength: 0..1, the preset's mild to severe end.
        seed: the output dataset's seed (>= 0).

    Returns:
        Summary: frames, source_frames, variants, preset, strength, seed, objects, seconds, out.

    Raises:
        UnknownNameError: unknown preset (the message lists the choices).
        ParameterError: variants < 1, strength outside 0..1 or seed < 0.
        DatasetError: a missing, incomplete or corrupt source, or a non-empty ``out``.
    """
    build = get_preset(preset)
    if int(variants) != variants or variants < 1:
        raise ParameterError("variants", f"expected an integer >= 1, got {variants}")
    if not 0.0 <= strength <= 1.0:
        raise ParameterError("strength", f"expected a strength in [0, 1], got {strength}")
    if int(seed) != seed or seed < 0:
        raise ParameterError("seed", f"expected an integer >= 0, got {seed}")
    src, out = Path(src), Path(out)
    source = _source_manifest(src)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(str(out), None, "output directory is not empty; choose a new directory")
    t0 = time.perf_counter()
    final, out = out, out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    try:
        res = _augment_into(src, source, out, build, preset, variants, strength, seed)
        if final.exists():
            final.rmdir()  # empty (checked above): rename() onto it needs it gone on some systems
        os.replace(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # bad input writes nothing
        raise
    return res | {"seconds": time.perf_counter() - t0, "out": str(final)}


def _augment_into(src: Path, source: Manifest, out: Path, build, preset: str, variants: int, strength: float,
                  seed: int) -> dict:
    files: dict[str, str] = {}
    records = []
    for i in range(source.frame_count):
        frame = _read_frame(src, source, i)
        for v in range(variants):
            j = i * variants + v
            compose_seed = int(frame_rng(seed, j).integers(2**31 - 1))
            fx = build(strength, camera=frame["record"]["camera"], seed=compose_seed)
            weathered = fx(image=frame["rgb"], depth=frame["depth"])["image"]
            record = augmented_record(frame["record"], fx, frame["rgb"], weathered, frame["instance"], j, seed,
                                      {"preset": preset, "strength": strength, "variant": v, "source_frame": i})
            rel = frame_files(j)
            files[rel["rgb"]] = write_png(out / rel["rgb"], weathered)
            for kind in COPIED:
                files[rel[kind]] = write_bytes(out / rel[kind], frame["bytes"][kind])
            files[rel["labels"]] = write_json(out / rel["labels"], record)
            records.append(record)
    name = source.scenario.get("name", "dataset") if isinstance(source.scenario, dict) else "dataset"
    files["coco.json"] = write_json(out / "coco.json", to_coco(records, f"longtail: {name} + {preset} {strength:g}"))
    manifest = Manifest(scenario=source.scenario, scenario_digest=source.scenario_digest, seed=int(seed),
                        frame_count=source.frame_count * variants,
                        sequence=source.sequence if variants == 1 else 1, files=files, complete=True)
    write_json(out / MANIFEST, manifest.to_json())  # last: a manifest means a complete dataset
    return {"frames": manifest.frame_count, "source_frames": source.frame_count, "variants": variants,
            "preset": preset, "strength": strength, "seed": seed, "objects": sum(len(r["objects"]) for r in records)}


def _source_manifest(src: Path) -> Manifest:
    if not src.is_dir():
        raise DatasetError(str(src), None, "source dataset directory not found")
    if not (src / MANIFEST).is_file():
        raise DatasetError(str(src), None, "holds no longtail manifest.json; expected a rendered dataset")
    manifest = Manifest.load(src)
    if not manifest.complete:
        raise DatasetError(str(src), None, "dataset is incomplete (its render did not finish); "
                           "rerun the render command to complete it first")
    for i in range(manifest.frame_count):  # before anything is written; checksums are checked on reading
        for rel in frame_files(i).values():
            if rel not in manifest.files or not (src / rel).is_file():
                raise DatasetError(str(src / rel), None, "missing frame file; the source dataset is incomplete")
    return manifest


def _read_frame(src: Path, manifest: Manifest, index: int) -> dict:
    """A source frame's files, each checked against its manifest checksum."""
    data = {}
    for kind, rel in frame_files(index).items():
        path = src / rel
        want = manifest.files.get(rel)
        try:
            raw = path.read_bytes()
        except OSError:
            raise DatasetError(str(path), None, "missing frame file; the source dataset is incomplete") from None
        if want is None or hashlib.sha256(raw).hexdigest() != want:
            raise DatasetError(str(path), None, "does not match its checksum in manifest.json")
        data[kind] = raw
    paths = frame_files(index)
    record = parse_record(data["labels"], str(src / paths["labels"]), index)
    arrays = {}
    for kind in ("rgb", "depth", "instance"):
        try:
            image = read_image(data[kind], str(src / paths[kind]))
        except InputError as e:
            raise DatasetError(e.source, e.field, e.problem) from None
        arrays[kind] = check_frame_image(src / paths[kind], kind, image, record["camera"]["width"],
                                         record["camera"]["height"])
    return {"bytes": data, "record": record, "rgb": arrays["rgb"], "depth": decode_depth(arrays["depth"]),
            "instance": arrays["instance"]}


def weather_attributes(before: dict, transforms) -> dict:
    """Frame attributes after ``transforms`` (those applied, in order) changed the weather.

    Visibilities combine as extinctions add (1/V = 1/V1 + 1/V2); tags (``weather``,
    ``time_of_day``) take the latest effect's value.
    """
    attrs = dict(before)
    for t in transforms:
        if not getattr(t, "params", None) or not hasattr(t, "frame_attributes"):
            continue
        new = t.frame_attributes(t.params)
        if new.get("visibility_m") is not None and attrs.get("visibility_m"):
            new["visibility_m"] = round(1.0 / (1.0 / attrs["visibility_m"] + 1.0 / new["visibility_m"]), 2)
        attrs.update(new)
    return attrs


def augmented_record(record: dict, fx, clean: np.ndarray, weathered: np.ndarray, instance: np.ndarray, index: int,
                     seed: int, augmented: dict) -> dict:
    """The label record of an augmented frame: the source's, renumbered, with per-object
    visibility and the weather attributes of the applied Compose ``fx``."""
    rec = copy.deepcopy(record)
    rec["frame"] = index
    rec["seed"] = seed
    rec["files"] = {k: v for k, v in frame_files(index).items() if k != "labels"}
    rec["attributes"] = weather_attributes(rec["attributes"], fx.transforms)
    rec["attributes"]["augmented"] = augmented
    vis = object_visibility(clean, weathered, instance, [o["id"] for o in rec["objects"]])
    for o in rec["objects"]:
        o["visibility"] = vis[o["id"]]
    return rec
