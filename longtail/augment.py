"""Weather variants of a saved dataset: a new longtail dataset whose frames are the source's
frames under a weather preset, drawn with the source's own depth maps.

Output frame ``i * variants + v`` is variant v of source frame i; its randomness flows from
``seeding.frame_rng(seed, output index)``. Depth, instance and semantic PNGs are copied byte for
byte, labels pass through unchanged (boxes, masks, occlusion ...) with a per-object
``visibility`` (``render.weather.visibility.object_visibility``) and the frame attributes
updated: ``augmented`` {preset, strength, variant, source_frame}, and the weather tags the
preset implies (``weather``, ``visibility_m``, ``time_of_day``, ...). Files are written
atomically and the manifest last, so a directory with a manifest is complete; the whole output
goes into a hidden partial directory renamed at the end (``new_output_dir``).

Condition ramps (one weather knob changing across a sequence, ``--ramp``) reuse this machinery:
``longtail.augment_ramp``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
Progress = Callable[[int, int], None]  # (frames done, frames in all)
# (source frame, variant, its record, the Compose's seed) -> (an A.Compose taking image and depth,
# frame attributes to set after the weather's own)
FrameWeather = Callable[[int, int, dict, int], tuple[Any, dict]]


def augment_dataset(src: Path, out: Path, preset: str, variants: int = 1, strength: float = 1.0,
                    seed: int = 0, progress: Progress | None = None) -> dict:
    """Write ``variants`` weathered copies of every frame of the dataset ``src`` into ``out``.

    Args:
        src: a complete longtail dataset directory.
        out: a new or empty directory for the result.
        preset: weather preset name (``render.weather.presets.list_presets()``).
        variants: weathered copies per source frame (>= 1).
        strength: 0..1, the preset's mild to severe end.
        seed: the output dataset's seed (>= 0).
        progress: called with (frames done, frames in all) after each output frame.

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
    check_seed(seed)
    source = source_manifest(Path(src))
    t0 = time.perf_counter()

    def weather(i: int, v: int, record: dict, compose_seed: int) -> tuple[Any, dict]:
        fx = build(strength, camera=record["camera"], seed=compose_seed)
        return fx, {"augmented": {"preset": preset, "strength": strength, "variant": v, "source_frame": i}}

    with new_output_dir(Path(out)) as (partial, final):
        res = augment_into(Path(src), source, partial, weather, variants, seed, f"{preset} {strength:g}", progress)
    return res | {"variants": variants, "preset": preset, "strength": strength,
                  "seconds": time.perf_counter() - t0, "out": str(final)}


def check_seed(seed: int) -> None:
    """ParameterError (``seed``) unless ``seed`` is a whole number >= 0."""
    if int(seed) != seed or seed < 0:
        raise ParameterError("seed", f"expected an integer >= 0, got {seed}")


@contextmanager
def new_output_dir(out: Path) -> Iterator[tuple[Path, Path]]:
    """(partial, final): a hidden partial directory next to ``out`` to write the whole output
    into; it becomes ``out`` when the block ends and is removed if the block raises (or is
    interrupted), so bad input or a killed run leaves nothing behind.

    Raises:
        DatasetError: ``out`` exists and is not an empty directory.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(str(out), None, "output directory is not empty; choose a new directory")
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        yield partial, out
        if out.exists():
            out.rmdir()  # empty (checked above): rename() onto it needs it gone on some systems
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # bad input writes nothing
        raise


def augment_into(src: Path, source: Manifest, out: Path, weather: FrameWeather, variants: int, seed: int,
                 title: str, progress: Progress | None = None) -> dict:
    """Write the augmented dataset into ``out``: output frame ``i * variants + v`` is source frame
    i through ``weather(i, v, record, compose seed)`` -> (Compose, attributes to set), the
    Compose's seed drawn from ``frame_rng(seed, output index)``. ``title`` names the weather in
    coco.json. The output keeps the source's sequence length for one variant (else 1).

    Returns:
        frames, source_frames, seed, objects.
    """
    files: dict[str, str] = {}
    records = []
    total = source.frame_count * variants
    for i in range(source.frame_count):
        frame = read_frame(src, source, i)
        for v in range(variants):
            j = i * variants + v
            compose_seed = int(frame_rng(seed, j).integers(2**31 - 1))
            fx, attributes = weather(i, v, frame["record"], compose_seed)
            weathered = fx(image=frame["rgb"], depth=frame["depth"])["image"]
            record = augmented_record(frame["record"], fx, frame["rgb"], weathered, frame["instance"], j, seed,
                                      attributes)
            rel = frame_files(j)
            files[rel["rgb"]] = write_png(out / rel["rgb"], weathered)
            for kind in COPIED:
                files[rel[kind]] = write_bytes(out / rel[kind], frame["bytes"][kind])
            files[rel["labels"]] = write_json(out / rel["labels"], record)
            records.append(record)
            if progress is not None:
                progress(j + 1, total)
    name = source.scenario.get("name", "dataset") if isinstance(source.scenario, dict) else "dataset"
    files["coco.json"] = write_json(out / "coco.json", to_coco(records, f"longtail: {name} + {title}"))
    manifest = Manifest(scenario=source.scenario, scenario_digest=source.scenario_digest, seed=int(seed),
                        frame_count=total, sequence=source.sequence if variants == 1 else 1, files=files,
                        complete=True)
    write_json(out / MANIFEST, manifest.to_json())  # last: a manifest means a complete dataset
    return {"frames": manifest.frame_count, "source_frames": source.frame_count, "seed": seed,
            "objects": sum(len(r["objects"]) for r in records)}


def source_manifest(src: Path) -> Manifest:
    """The manifest of the complete longtail dataset ``src``, every frame file listed and present;
    DatasetError otherwise (checksums are checked as each frame is read)."""
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


def read_frame(src: Path, manifest: Manifest, index: int) -> dict:
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
                     seed: int, attributes: dict) -> dict:
    """The label record of an augmented frame: the source's, renumbered, with per-object
    visibility, the weather attributes of the applied Compose ``fx`` and then ``attributes``
    (``augmented``: what was applied; a ramp's ``ramp``)."""
    rec = copy.deepcopy(record)
    rec["frame"] = index
    rec["seed"] = seed
    rec["files"] = {k: v for k, v in frame_files(index).items() if k != "labels"}
    rec["attributes"] = weather_attributes(rec["attributes"], fx.transforms)
    rec["attributes"].update(attributes)
    vis = object_visibility(clean, weathered, instance, [o["id"] for o in rec["objects"]])
    for o in rec["objects"]:
        o["visibility"] = vis[o["id"]]
    return rec
