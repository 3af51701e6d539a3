"""A dataset on disk: per-frame files, ``manifest.json`` (the one source of truth) and resume.

Layout::

    DIR/manifest.json           version, resolved scenario, seed, frame count, sha256 per file
    DIR/rgb/000000.png          8-bit RGB
    DIR/depth/000000.png        16-bit z-depth, metres x 256 (KITTI convention), 0 = no surface
    DIR/instance/000000.png     16-bit instance ids (= track ids), 0 = none
    DIR/semantic/000000.png     8-bit class ids (longtail.classes, Cityscapes labelIds)
    DIR/labels/000000.json      the frame record: camera, attributes, objects, scene
    DIR/coco.json               COCO detection + instance masks (RLE), derived from the records

A run adds frames to the manifest as they finish (rewritten atomically); a rerun of the same
command keeps every frame whose files match their checksums and renders the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from longtail import __version__
from longtail.atomic import remove_stale_tmp, sha256_file, write_json
from longtail.depth import DEPTH_SCALE
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json, validation_message
from longtail.records import read_record

FORMAT = "longtail-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FRAME_KINDS = {"rgb": "png", "depth": "png", "instance": "png", "semantic": "png", "labels": "json"}


# Pixel layout of each image kind of a frame: (dtype, channels; 0 = a single-channel (H, W) image).
IMAGE_LAYOUT = {"rgb": (np.uint8, 3), "depth": (np.uint16, 0), "instance": (np.uint16, 0),
                "semantic": (np.uint8, 0)}


def check_frame_image(path: Path, kind: str, image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` if it has the layout of ``kind`` at ``width`` x ``height``; else DatasetError."""
    dtype, channels = IMAGE_LAYOUT[kind]
    shape = (height, width, channels) if channels else (height, width)
    if image.dtype != dtype or image.shape != shape:
        raise DatasetError(str(path), None, f"expected a {kind} image of {np.dtype(dtype).name} pixels, shape "
                           f"{shape} (the frame record's camera); got {image.dtype} {image.shape}")
    return image


def frame_files(index: int) -> dict[str, str]:
    """Relative paths of frame ``index``'s files, by kind."""
    return {kind: f"{kind}/{index:06d}.{ext}" for kind, ext in FRAME_KINDS.items()}


M = TypeVar("M", bound=BaseModel)


def load_format_json(path: Path, what: str, fmt: str, model: type[M], other: str) -> M:
    """A JSON file whose ``format`` field must be ``fmt``, validated by ``model``; DatasetError naming
    the file and field otherwise (``other``: what a file of another format is)."""
    try:
        data = load_json(path, what)
    except InputError as e:
        raise DatasetError(e.source, e.field, e.problem) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise DatasetError(str(path), "format", f"expected {fmt!r}; {other}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        bad = validation_message(str(path), err)
        raise DatasetError(bad.source, bad.field, bad.problem) from None


@dataclass
class Manifest:
    scenario: dict
    scenario_digest: str
    seed: int
    frame_count: int
    sequence: int = 1
    files: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    longtail_version: str = __version__

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "longtail_version": self.longtail_version,
            "scenario": self.scenario,
            "scenario_digest": self.scenario_digest,
            "seed": self.seed,
            "frame_count": self.frame_count,
            "sequence": self.sequence,
            "complete": self.complete,
            "depth_encoding": {"format": "png16", "unit": "m", "scale": DEPTH_SCALE, "invalid": 0,
                               "kind": "z-depth along the optical axis"},
            "files": dict(sorted(self.files.items())),
        }

    @classmethod
    def load(cls, root: Path) -> "Manifest":
        """The manifest of the dataset at ``root``; DatasetError naming the field otherwise."""
        path = Path(root) / MANIFEST
        m = load_format_json(path, "longtail manifest", FORMAT, ManifestFile, "this directory holds another dataset")
        return cls(scenario=m.scenario, scenario_digest=m.scenario_digest, seed=m.seed, frame_count=m.frame_count,
                   sequence=m.sequence, files=dict(m.files), complete=m.complete,
                   longtail_version=m.longtail_version)


MAX_FRAMES = 100_000_000  # images in one dataset directory (beyond this, shard it)


class ManifestFile(BaseModel):
    """What ``manifest.json`` must hold to be read (other keys pass)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    scenario: dict
    scenario_digest: str
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    frame_count: Annotated[int, Field(ge=1, le=MAX_FRAMES)]
    sequence: Annotated[int, Field(ge=1, le=MAX_FRAMES)] = 1
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]
    complete: bool
    longtail_version: str

    @model_validator(mode="after")
    def _complete_lists_every_frame(self) -> "ManifestFile":
        # a complete dataset lists 5 files a frame: a frame count beyond them cannot be right
        # (and would have readers walk millions of frames that are not there)
        if self.complete and len(self.files) < len(FRAME_KINDS) * self.frame_count:
            raise ValueError(f"frame_count {self.frame_count} is more than the {len(self.files)} listed files "
                             f"hold ({len(FRAME_KINDS)} per frame)")
        return self


class DatasetWriter:
    """Owns an output directory for one (scenario, seed, frame count): creates or resumes it."""

    def __init__(self, root: Path, manifest: Manifest):
        self.root = Path(root)
        self.manifest = manifest

    @classmethod
    def open(cls, root: Path, scenario: dict, digest: str, seed: int, frames: int,
             sequence: int = 1) -> "DatasetWriter":
        """Create ``root`` or resume the same dataset there; refuse a directory holding anything else.

        ``scenario`` is the resolved scenario as JSON data and ``digest`` its sha256 (the dataset
        layer stores them; it knows no scenario schema). Call only after all other input is
        validated: it may create the directory.
        """
        root = Path(root)
        want = Manifest(scenario=scenario, scenario_digest=digest, seed=seed, frame_count=frames, sequence=sequence)
        if root.exists() and not root.is_dir():
            raise DatasetError(str(root), None, "output path exists and is not a directory")
        if (root / MANIFEST).exists():
            have = Manifest.load(root)
            for name, a, b in (("scenario", have.scenario_digest, want.scenario_digest), ("seed", have.seed, seed),
                               ("frame_count", have.frame_count, frames), ("sequence", have.sequence, sequence)):
                if a != b:
                    what = "a different scenario" if name == "scenario" else f"{name} {a}, not {b}"
                    raise DatasetError(str(root), None,
                                       f"holds another dataset ({what}); choose a new output directory")
            remove_stale_tmp(root)
            return cls(root, have)
        if root.exists() and any(root.iterdir()):
            raise DatasetError(str(root), None, "output directory is not empty and holds no longtail manifest; "
                               "choose a new output directory")
        root.mkdir(parents=True, exist_ok=True)
        w = cls(root, want)
        w.save()
        return w

    def frame_done(self, index: int) -> bool:
        """True if every file of the frame is in the manifest and on disk with that checksum."""
        for rel in frame_files(index).values():
            sha = self.manifest.files.get(rel)
            path = self.root / rel
            if sha is None or not path.is_file() or sha256_file(path) != sha:
                return False
        return True

    def pending(self) -> list[int]:
        return [i for i in range(self.manifest.frame_count) if not self.frame_done(i)]

    def add(self, files: dict[str, str]) -> None:
        """Record written files (relative path -> sha256); call ``save`` to persist."""
        self.manifest.files.update(files)

    def save(self) -> None:
        write_json(self.root / MANIFEST, self.manifest.to_json())

    def load_records(self) -> list[dict]:
        return [read_record(self.root / frame_files(i)["labels"], i) for i in range(self.manifest.frame_count)]

    def finish(self, extra: dict[str, str]) -> None:
        """Add the derived files (e.g. coco.json) and mark the dataset complete."""
        self.manifest.files.update(extra)
        self.manifest.complete = True
        self.save()

