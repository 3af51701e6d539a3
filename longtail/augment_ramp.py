"""Condition ramps over saved footage (``longtail augment IN OUT --ramp KNOB=FROM..TO[:log|linear]``):
one physical weather parameter (a ``render.weather.knobs`` knob: fog visibility or extinction,
night skylight) changes continuously across a sequence, and every frame records the value applied.

Two kinds of source:

- **A longtail dataset** (``manifest.json``) becomes a new longtail dataset written as
  ``augment_dataset`` writes one (depth, instance and semantic PNGs copied byte for byte, labels
  with per-object ``visibility``, checksums, coco.json, the manifest last). Each run of
  ``manifest.sequence`` = T frames is ramped from FROM to TO as a scenario's ``ramp:`` block is
  (``worlds.scenario.RampSpec``): the moment t (``time_frame``; every camera of a rig shares it)
  is step t % T of T, so a last, shorter run stops short of TO. A dataset of independent frames
  (T = 1) is **one ramp over all its frames**, in frame order: a ramp needs steps to change over,
  and a saved set of independent frames is a sequence of conditions here. Records get
  ``attributes.ramp`` {knob, value, unit, step, steps}, ``attributes.augmented`` {knob, unit,
  from, to, curve, source_frame} and the weather's own attributes (``weather``,
  ``visibility_m``: the resulting visibility, combined with any fog the source already had as
  extinctions add; ``time_of_day``).
- **A MOTChallenge sequence** (``img1/`` and ``gt/gt.txt``) has no depth, so it gets a
  ground-plane depth prior (as training's weather stage does, ``train.weather.GroundPrior``):
  from the camera ``longtail plate fit`` fitted to the footage (``camera``: a plate directory or
  its ``camera.json``, scaled to the frames' size), else a level car camera
  (``FrameCamera()``), every pixel sees the ground z = 0, capped at 250 m at and above the
  horizon. The frames, in frame order, are one ramp. Written as a MOTChallenge sequence::

      img1/NNNNNN.png   the weathered frames, lossless, the source's frame numbers
      gt/gt.txt         the source's, byte for byte
      seqinfo.ini       name NAME-<group>-ramp, imDir img1, imExt .png, size, seqLength
      conditions.json   condition tags per image, as ``train.tags.load_tags`` reads them
                        ({"000001.png": {"weather": "foggy", "visibility_m": "389.2",
                        "visibility_band": "200-500 m"}}, or ``time_of_day`` for the night knob)
      ramp.json         {knob, unit, from, to, curve, camera, seed, sequence, source,
                        frames: [{file, frame, value, visibility_m (fog)}]}

Frame j (0-based, in order) draws its weather seed from ``seeding.frame_rng(seed, j)``, so the
same seed gives the same bytes (fog alone draws nothing; night's sensor noise does). The whole
output is written into a hidden partial directory and renamed at the end: a refused or
interrupted run leaves nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np

from longtail import mot
from longtail.atomic import write_bytes, write_json, write_png
from longtail.augment import (
    Progress, augment_into, check_seed, new_output_dir, read_frame, source_manifest, weather_attributes,
)
from longtail.conditions import visibility_band
from longtail.dataset import MANIFEST
from longtail.errors import DatasetError, InputError, ParameterError, one_line
from longtail.readers import read_bytes, read_image
from longtail.render.weather.knobs import Ramp, knob_transform, parse_ramp
from longtail.render.weather.transforms import FrameCamera
from longtail.seeding import frame_rng
from longtail.worlds.plates import PRIOR_FAR_M, load_camera, plate_depth, scaled_camera
from longtail.worlds.scene import Camera

CONDITIONS_FILE, RAMP_FILE = "conditions.json", "ramp.json"


def ramp_dataset(src: Path, out: Path, ramp: Ramp | str, seed: int = 0, camera: Path | None = None,
                 progress: Progress | None = None) -> dict:
    """Write ``src`` with one weather knob ramped from FROM to TO into ``out`` (module docstring).

    Args:
        src: a complete longtail dataset, or a MOTChallenge sequence directory.
        out: a new or empty directory for the result.
        ramp: a ``Ramp`` or its text ``KNOB=FROM..TO[:log|linear]`` (``knobs.parse_ramp``).
        seed: seed of the weather draws (>= 0).
        camera: for a MOTChallenge sequence, a plate directory or its ``camera.json`` (None: a
            level car camera); a longtail dataset carries its own cameras.
        progress: called with (frames done, frames in all) after each frame.

    Returns:
        Summary: source ("longtail" | "mot"), frames, knob, unit, from, to, curve, seed, runs
        (ramps written), camera (MOT: "plate camera" | "level car camera"), objects (longtail),
        seconds, out.

    Raises:
        ParameterError: a bad ramp, seed, or a camera given for a longtail dataset.
        InputError / DatasetError: a source that is neither kind, missing or broken files, a
            MOT sequence without frames, a malformed camera, a non-empty ``out``.
    """
    ramp = parse_ramp(ramp) if isinstance(ramp, str) else ramp
    check_seed(seed)
    src, out = Path(src), Path(out)
    if camera is not None and not Path(camera).exists():
        raise ParameterError("camera", f"{camera}: no such plate directory or camera.json file")
    t0 = time.perf_counter()
    if source_kind(src) == "longtail":
        if camera is not None:
            raise ParameterError("camera", f"{src} is a longtail dataset, which carries its own camera per frame; "
                                 "a camera is for a MOTChallenge sequence")
        res = _ramp_longtail(src, out, ramp, seed, progress)
    else:
        res = _ramp_mot(src, out, ramp, seed, camera, progress)
    return res | ramp.describe() | {"seed": seed, "seconds": time.perf_counter() - t0, "out": str(out)}


def source_kind(src: Path) -> str:
    """``longtail`` (a ``manifest.json``) or ``mot`` (``img1/`` and ``gt/gt.txt``); DatasetError
    for anything else."""
    src = Path(src)
    if not src.is_dir():
        raise DatasetError(str(src), None, "source directory not found")
    if (src / MANIFEST).is_file():
        return "longtail"
    if mot.is_sequence(src):
        return "mot"
    raise DatasetError(str(src), None, "neither a longtail dataset (manifest.json) nor a MOTChallenge sequence "
                       "(img1/ and gt/gt.txt)")


def ramp_step(moment: int, moments: int, sequence: int) -> tuple[int, int]:
    """(step, steps) of the moment ``moment`` (0-based) of a dataset of ``moments`` moments: step
    ``moment % sequence`` of ``sequence`` for runs of ``sequence`` > 1, else one ramp over all."""
    if sequence > 1:
        return moment % sequence, sequence
    return moment, moments


def _compose(ramp: Ramp, value: float, camera: FrameCamera, seed: int) -> A.Compose:
    return A.Compose([knob_transform(ramp.knob, value, camera)], additional_targets={"depth": "mask"}, seed=seed)


# --- a longtail dataset -------------------------------------------------------------------------

def _moment(record: dict) -> int:
    """The moment a record shows (``time_frame``: the cameras of a rig share it), else its index."""
    t = record.get("time_frame")
    return t if isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= record["frame"] else record["frame"]


def _ramp_longtail(src: Path, out: Path, ramp: Ramp, seed: int, progress: Progress | None) -> dict:
    source = source_manifest(src)
    moments = _moment(read_frame(src, source, source.frame_count - 1)["record"]) + 1
    steps = ramp_step(0, moments, source.sequence)[1]

    def weather(i: int, v: int, record: dict, compose_seed: int) -> tuple[Any, dict]:
        step, n = ramp_step(_moment(record), moments, source.sequence)
        value = ramp.at(step, n)
        fx = _compose(ramp, value, FrameCamera.from_record(record["camera"]), compose_seed)
        return fx, {"augmented": ramp.describe() | {"source_frame": i},
                    "ramp": {"knob": ramp.knob.name, "value": value, "unit": ramp.knob.unit, "step": step,
                             "steps": n}}

    with new_output_dir(out) as (partial, _):
        res = augment_into(src, source, partial, weather, 1, seed, f"ramp {ramp}", progress)
    return res | {"source": "longtail", "runs": -(-moments // steps)}


# --- a MOTChallenge sequence --------------------------------------------------------------------

def _prior(camera: Path | None, height: int, width: int) -> tuple[np.ndarray, FrameCamera, str]:
    """Ground-plane depth (H, W) float32 metres, the FrameCamera and its description for frames of
    ``height`` x ``width``: the plate camera scaled to them, or the level car camera."""
    if camera is None:
        cam: Camera = FrameCamera().for_image((height, width))
        what = "level car camera"
    else:
        cam = scaled_camera(load_camera(Path(camera)), height, width)
        what = "plate camera"
    depth = plate_depth(cam, far_m=PRIOR_FAR_M)
    # validated from the nested lists: pydantic checks the 3 x 3 and 4 x 4 shapes
    spec = FrameCamera.model_validate({"K": cam.K.tolist(), "world_from_camera": cam.world_from_camera().tolist()})
    return depth, spec, what


def _tag(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _ramp_mot(src: Path, out: Path, ramp: Ramp, seed: int, camera: Path | None, progress: Progress | None) -> dict:
    info = mot.read_seqinfo(src)
    frames = mot.numbered_frames(src, info)
    if not frames:
        raise InputError(str(src / info.im_dir), None, "no frames: expected images named by their frame number, "
                         f"e.g. 000001.jpg ({', '.join(mot.IMAGE_SUFFIXES)})")
    gt_path = src / "gt" / "gt.txt"
    mot.read_gt(gt_path)  # refuses a malformed file before anything is written
    gt = read_bytes(gt_path, "MOTChallenge gt.txt")
    first = read_image(frames[0][1], mode="RGB")
    height, width = first.shape[:2]
    if (info.width or width, info.height or height) != (width, height):
        raise InputError(str(frames[0][1]), None, f"image is {width}x{height} pixels; seqinfo.ini says "
                         f"{info.width}x{info.height}")
    depth, spec, what = _prior(camera, height, width)
    source_name = one_line(info.name or src.name)  # a seqinfo value may run over lines
    name = f"{source_name}-{ramp.knob.name.split('.')[0]}-ramp"
    n = len(frames)
    tags: dict[str, dict[str, str]] = {}
    rows = []
    with new_output_dir(out) as (partial, _):
        for j, (number, path) in enumerate(frames):
            rgb = first if j == 0 else read_image(path, mode="RGB")
            if rgb.shape[:2] != (height, width):
                raise InputError(str(path), None, f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels; the sequence's "
                                 f"first frame {frames[0][1].name} is {width}x{height}")
            value = ramp.at(j, n)
            fx = _compose(ramp, value, spec, int(frame_rng(seed, j).integers(2**31 - 1)))
            weathered = fx(image=rgb, depth=depth)["image"]
            file = f"{number:06d}.png"
            write_png(partial / "img1" / file, weathered)
            attrs = {k: v for k, v in weather_attributes({}, fx.transforms).items() if v is not None}
            if "visibility_m" in attrs:
                attrs["visibility_band"] = visibility_band(attrs["visibility_m"])
            tags[file] = {k: _tag(v) for k, v in attrs.items()}
            row: dict[str, Any] = {"file": file, "frame": number, "value": value}
            if "visibility_m" in attrs:
                row["visibility_m"] = attrs["visibility_m"]
            rows.append(row)
            if progress is not None:
                progress(j + 1, n)
        write_bytes(partial / "gt" / "gt.txt", gt)
        rate = f"frameRate={info.frame_rate:g}\n" if info.frame_rate is not None else ""
        write_bytes(partial / "seqinfo.ini", (f"[Sequence]\nname={name}\nimDir=img1\n{rate}seqLength={n}\n"
                                              f"imWidth={width}\nimHeight={height}\nimExt=.png\n").encode())
        write_json(partial / CONDITIONS_FILE, tags)
        write_json(partial / RAMP_FILE, ramp.describe() | {"camera": what, "seed": seed, "sequence": name,
                                                           "source": source_name, "frames": rows})
    return {"source": "mot", "frames": n, "runs": 1, "camera": what, "sequence": name}
