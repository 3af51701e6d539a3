"""The per-frame function and the sharded run over frame indices.

``render_frame`` is a plain function of (scenario, seed, index, renderer): sample the Scene,
render its buffers, annotate, write the frame's files atomically. ``render_dataset`` opens (or
resumes) the output directory, runs pending frames on a process pool (one Renderer per worker),
records finished frames in the manifest and derives ``coco.json`` at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from longtail.atomic import write_json, write_png
from longtail.dataset import DatasetWriter, encode_depth, frame_files
from longtail.labelers.annotate import annotate, camera_record, frame_attributes
from longtail.labelers.coco import to_coco
from longtail.render.capture import Renderer
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import Scenario

MANIFEST_SAVE_INTERVAL_S = 0.5


@dataclass(frozen=True)
class FrameResult:
    index: int
    files: dict[str, str]  # relative path -> sha256
    objects: int


@dataclass(frozen=True)
class Summary:
    frames: int  # frames in the dataset
    rendered: int  # frames rendered by this run (the rest were already on disk)
    objects: int  # labelled objects rendered by this run
    seconds: float

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def render_frame(scenario: Scenario, seed: int, index: int, renderer: Renderer, root: Path) -> FrameResult:
    """Render, label and write frame ``index``; the label record is written last."""
    scene = sample(scenario, seed, index)
    buf = renderer.render(scene)
    objects = annotate(scene, buf)
    rel = frame_files(index)
    root = Path(root)
    shas = {
        rel["rgb"]: write_png(root / rel["rgb"], buf.rgb),
        rel["depth"]: write_png(root / rel["depth"], encode_depth(buf.depth)),
        rel["instance"]: write_png(root / rel["instance"], buf.instance),
        rel["semantic"]: write_png(root / rel["semantic"], buf.semantic),
    }
    record = {
        "frame": index,
        "seed": seed,
        "files": {k: v for k, v in rel.items() if k != "labels"},
        "camera": camera_record(scene),
        "attributes": frame_attributes(scene),
        "objects": objects,
        "scene": scene.model_dump(mode="json"),
    }
    shas[rel["labels"]] = write_json(root / rel["labels"], record)
    return FrameResult(index, shas, len(objects))


# Worker processes: each holds one Renderer for its lifetime (process-local, never shared).
_worker: dict = {}


def _init_worker(scenario_json: str, seed: int, root: str) -> None:
    r = Renderer()
    r.__enter__()
    _worker.update(renderer=r, scenario=Scenario.model_validate_json(scenario_json), seed=seed, root=Path(root))


def _work(index: int) -> FrameResult:
    return render_frame(_worker["scenario"], _worker["seed"], index, _worker["renderer"], _worker["root"])


def render_dataset(scenario: Scenario, out: Path, frames: int, seed: int, workers: int = 1,
                   progress: Callable[[int, int], None] | None = None) -> Summary:
    """Render ``frames`` frames of ``scenario`` into ``out`` (creating or resuming it).

    ``progress(done, total)`` is called after each frame. Frame bytes do not depend on
    ``workers``: every frame draws from its own generator and owns its files.
    """
    if frames < 1:
        raise ValueError("frames must be >= 1")
    writer = DatasetWriter.open(out, scenario, seed, frames)
    todo = writer.pending()
    done = frames - len(todo)
    if progress:
        progress(done, frames)
    t0 = time.perf_counter()
    objects = 0
    last_save = t0

    def record(res: FrameResult) -> None:
        nonlocal objects, done, last_save
        writer.add(res.files)
        objects += res.objects
        done += 1
        now = time.perf_counter()
        if now - last_save >= MANIFEST_SAVE_INTERVAL_S:
            writer.save()
            last_save = now
        if progress:
            progress(done, frames)

    if todo and workers <= 1:
        with Renderer() as r:
            for i in todo:
                record(render_frame(scenario, seed, i, r, writer.root))
    elif todo:
        ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no inherited PyBullet state
        with ctx.Pool(min(workers, len(todo)), _init_worker,
                      (scenario.model_dump_json(), seed, str(writer.root))) as pool:
            for res in pool.imap_unordered(_work, todo):
                record(res)
    writer.save()
    coco_sha = write_json(writer.root / "coco.json", to_coco(writer.load_records(), f"longtail: {scenario.name}"))
    writer.finish({"coco.json": coco_sha})
    return Summary(frames=frames, rendered=len(todo), objects=objects, seconds=time.perf_counter() - t0)
