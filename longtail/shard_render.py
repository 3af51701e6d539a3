"""``longtail render --shards``: a render whose output is a WebDataset shard set.

The frames are rendered into a hidden sibling folder dataset (``.OUT.frames``, the staging area:
the same resume rules, any backend), which is then packed into shards at ``OUT`` by
``labelers.shard_export.export_shards`` (each shard written atomically, listed with its sha256
and sample count, a COCO file per shard) and removed. A rerun after a kill resumes whichever
step was cut short; a rerun of a complete shard set renders nothing. The shards are the bytes
``longtail export --format webdataset`` makes of the same folder dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from longtail.dataset import MANIFEST
from longtail.errors import DatasetError
from longtail.labelers.shard_export import export_shards
from longtail.pipeline import Backend, Summary, condition_shares, render_dataset
from longtail.shards import SHARDS, ShardManifest, ShardReader, is_sharded, load_shard_manifest
from longtail.worlds.scenario import Scenario


def staging_dir(out: Path) -> Path:
    """Where the frames of a sharded render live until they are packed."""
    out = Path(out)
    return out.with_name(f".{out.name}.frames")


def render_shards(scenario: Scenario, out: Path, frames: int, seed: int, shard_size: int, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None, sequence: int = 1,
                  backend: Backend | None = None) -> Summary:
    """Render ``frames`` frames of ``scenario`` as shards of ``shard_size`` frames into ``out``
    (see the module docstring). Refuses, before rendering anything, an ``out`` holding anything
    but shards of this same render."""
    out = Path(out)
    images = frames * len(scenario.camera.names())
    have = _existing(out, scenario, images, seed, sequence, shard_size)
    staging = staging_dir(out)
    if have is not None and (out / SHARDS).is_file():  # complete: nothing to render
        shutil.rmtree(staging, ignore_errors=True)  # a kill while it was being removed
        with ShardReader(out) as reader:
            records = list(reader.records())
        if progress:
            progress(images, images)
        return Summary(frames=images, rendered=0, objects=0, seconds=0.0, shares=condition_shares(records))
    summary = render_dataset(scenario, staging, frames, seed, workers, progress, sequence, backend)
    export_shards(staging, out, shard_size)
    shutil.rmtree(staging)
    return summary


def _existing(out: Path, scenario: Scenario, images: int, seed: int, sequence: int,
              shard_size: int) -> ShardManifest | None:
    """The shard manifest (complete or partial) of this same render at ``out``; None if ``out``
    is new or empty. Raises DatasetError for anything else."""
    if out.exists() and not out.is_dir():
        raise DatasetError(str(out), None, "output path exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return None
    if (out / MANIFEST).is_file() or not is_sharded(out):
        raise DatasetError(str(out), None, "output directory is not empty and holds no longtail shards; choose a "
                           "new output directory")
    have = load_shard_manifest(out, partial=not (out / SHARDS).is_file())
    src = have.source
    for name, a, b in (("scenario", src.scenario_digest, scenario.digest()), ("seed", src.seed, seed),
                       ("frame_count", src.frame_count, images), ("sequence", src.sequence, sequence),
                       ("shard_size", have.shard_size, shard_size)):
        if a != b:
            what = "a different scenario" if name == "scenario" else f"{name} {a}, not {b}"
            raise DatasetError(str(out), None, f"holds the shards of another render ({what}); choose a new output "
                               "directory")
    return have
