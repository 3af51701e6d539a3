"""The per-frame function and the sharded run over frame indices.

The flow of one frame, in this order (DESIGN.md), each step a plain function of the last one's
data::

    scene   = frame_scene(scenario, seed, index)        worlds/   sample (with placement physics)
    buffers = renderer.capture(scene)                   render/   build, render, look, sky, night
    draw    = draw_scene_weather(scene)                 render/weather/  every random draw, recorded
    image   = apply_scene_weather(buffers.image, ...)   render/weather/  the weather stage
    rgb     = renderer.finish(buffers, image)           render/   anti-aliasing, uint8
    vis     = frame_visibility(buffers.daylit, image)   render/weather/  how visible each object stays
    objects = annotate(scene, buffers, vis)             labelers/ exact labels
    record  -> write_frame                              longtail/ files, atomically

``render_scene`` runs the middle of it, ``compute_frame`` adds the record, ``render_frame`` the
writing. ``render_dataset`` opens (or resumes) the output directory, runs pending
frames in contiguous shards on a process pool (one Renderer per worker), records finished frames
in the manifest and derives ``coco.json`` at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from longtail.atomic import remove_stale_tmp, write_json, write_png
from longtail.errors import RenderError
from longtail.dataset import DatasetWriter, frame_files
from longtail.depth import encode_depth
from longtail.labelers.annotate import annotate, camera_record, frame_attributes
from longtail.labelers.coco import to_coco
from longtail.render.capture import Buffers, Renderer
from longtail.render.weather.scene_weather import WeatherDraw, apply_scene_weather, draw_scene_weather
from longtail.render.weather.visibility import frame_visibility, pixels_by_id
from longtail.worlds.build import static_in_view
from longtail.worlds.physics import Physics
from longtail.worlds.sampler import advance, rig_camera, sample
from longtail.worlds.scene import Camera, Scene
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
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # realised conditions, whole dataset

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Frame:
    """A computed frame, not yet on disk: arrays to encode and the label record."""

    index: int
    images: dict[str, np.ndarray]  # kind -> uint8/uint16 array
    record: dict


@dataclass
class Engines:
    """The per-worker PyBullet clients: one for placement physics, one (two with EGL) in the
    renderer; the last sampled scene, which the other cameras of a rig reuse; the first step of
    the last run of a sequence, which its later steps move on from; and the static parts its
    world holds (``frame_view``)."""

    renderer: Renderer
    physics: Physics
    last: tuple | None = None
    run: tuple | None = None
    view: tuple | None = None  # (run key, static parts its world holds): ``frame_view``

    def __enter__(self) -> "Engines":
        self.renderer.__enter__()
        self.physics.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.physics.__exit__(*exc)
        self.renderer.__exit__(*exc)


def engines() -> Engines:
    return Engines(Renderer(), Physics())


def frame_scene(scenario: Scenario, seed: int, index: int, eng: Engines, sequence: int = 1) -> Scene:
    """The Scene of image ``index``: frame ``index // n`` seen by rig camera ``index % n``
    (n cameras; n = 1 without a rig)."""
    frame, k = divmod(index, len(scenario.camera.names()))
    key = (scenario.digest(), seed, frame, sequence)
    if eng.last is None or eng.last[0] != key:
        eng.last = (key, _sample_frame(scenario, seed, frame, eng, sequence))
    scene = eng.last[1]
    return scene.model_copy(update={"camera": rig_camera(scenario, scene.camera, k)}) if k else scene


def _sample_frame(scenario: Scenario, seed: int, frame: int, eng: Engines, sequence: int) -> Scene:
    """``sample`` of frame ``frame``. Without a ramp, the steps of a run are its first step
    moved on (``advance``), which is what ``sample`` computes for each of them: the run is
    placed (physics) once, not once a step."""
    if sequence == 1 or scenario.ramp is not None:
        return sample(scenario, seed, frame, eng.physics, sequence)
    run, step = divmod(frame, sequence)
    key = (scenario.digest(), seed, run, sequence)
    if eng.run is None or eng.run[0] != key:
        eng.run = (key, sample(scenario, seed, run * sequence, eng.physics, sequence))
    return advance(eng.run[1], step).model_copy(update={"index": frame})


def frame_view(scenario: Scenario, seed: int, index: int, eng: Engines, sequence: int = 1) -> np.ndarray:
    """The static parts the world of image ``index`` holds (``static_in_view``): those seen by any
    camera of its rig at any step of its run, the same for every image of the run, so that the
    run (or a rig's frame) is rendered in one world built once, whichever image comes first."""
    n = len(scenario.camera.names())
    run = index // n // sequence
    key = (scenario.digest(), seed, run, sequence)
    if eng.view is None or eng.view[0] != key:
        if sequence == 1:
            first = frame_scene(scenario, seed, index - index % n, eng)
        elif scenario.ramp is None:
            frame_scene(scenario, seed, index, eng, sequence)  # samples the run's first step into eng.run
            assert eng.run is not None
            first = eng.run[1]
        else:  # each step of a ramp is drawn on its own: the first step's camera and world
            first = sample(scenario, seed, run * sequence, eng.physics, sequence)
        cameras: list[Camera] = []
        for step in range(sequence):
            main = advance(first, step).camera
            for k in range(n):
                cam = rig_camera(scenario, main, k)
                if cam not in cameras:
                    cameras.append(cam)
        eng.view = (key, static_in_view(first, cameras))
    return eng.view[1]


@dataclass
class Rendered:
    """A Scene's frame through the flow, before it is written: the render's buffers, the weather
    stage's draws, the final uint8 RGB and the object records."""

    scene: Scene
    buffers: Buffers
    weather: WeatherDraw
    rgb: np.ndarray
    objects: list[dict]

    @property
    def depth(self) -> np.ndarray:
        return self.buffers.depth

    @property
    def instance(self) -> np.ndarray:
        return self.buffers.instance

    @property
    def semantic(self) -> np.ndarray:
        return self.buffers.semantic

    @property
    def alone(self) -> dict:
        return self.buffers.alone


def render_scene(scene: Scene, renderer: Renderer, timings: dict[str, float] | None = None,
                 shown: np.ndarray | None = None) -> Rendered:
    """Render, weather, finish and label one Scene (the module docstring's flow); ``shown``: the
    static parts to build (``Renderer.capture``)."""
    buffers = renderer.capture(scene, timings, shown)
    t0 = time.perf_counter()
    draw = draw_scene_weather(scene)
    image = apply_scene_weather(buffers.image, buffers.depth, scene, draw, buffers.airlight)
    if timings is not None:
        timings["weather"] = timings.get("weather", 0.0) + time.perf_counter() - t0
    rgb = renderer.finish(buffers, image, timings)
    t0 = time.perf_counter()
    pixels = pixels_by_id(buffers.instance)  # each actor's pixels, for its visibility and its labels
    visibility = frame_visibility(buffers.daylit, image, buffers.instance,
                                  [a.id for a in scene.actors if a.id in buffers.alone], pixels)
    t1 = time.perf_counter()
    objects = annotate(scene, buffers, visibility, pixels)
    if timings is not None:
        timings["visibility"] = timings.get("visibility", 0.0) + t1 - t0
        timings["label"] = timings.get("label", 0.0) + time.perf_counter() - t1
    return Rendered(scene, buffers, draw, rgb, objects)


def compute_frame(scenario: Scenario, seed: int, index: int, eng: Engines, sequence: int = 1) -> Frame:
    """Sample, render, weather and annotate image ``index`` (see ``frame_scene``)."""
    scene = frame_scene(scenario, seed, index, eng, sequence)
    out = render_scene(scene, eng.renderer, shown=frame_view(scenario, seed, index, eng, sequence))
    rel = frame_files(index)
    record = {
        "frame": index,  # the image index (files, COCO image id - 1)
        "time_frame": scene.index,  # the moment it shows: all cameras of a rig share it
        "seed": seed,
        "files": {k: v for k, v in rel.items() if k != "labels"},
        "camera": camera_record(scene),
        "attributes": frame_attributes(scene),
        "objects": out.objects,
        "weather": out.weather.record(),
        "scene": scene.model_dump(mode="json"),
    }
    images = {"rgb": out.rgb, "depth": encode_depth(out.depth), "instance": out.instance, "semantic": out.semantic}
    return Frame(index, images, record)


def write_frame(frame: Frame, root: Path) -> FrameResult:
    """Write a frame's files atomically; the label record goes last."""
    rel = frame_files(frame.index)
    root = Path(root)
    shas = {rel[kind]: write_png(root / rel[kind], arr) for kind, arr in frame.images.items()}
    shas[rel["labels"]] = write_json(root / rel["labels"], frame.record)
    return FrameResult(frame.index, shas, len(frame.record["objects"]))


def render_frame(scenario: Scenario, seed: int, index: int, eng: Engines, root: Path,
                 sequence: int = 1) -> FrameResult:
    """Render, label and write frame ``index``."""
    return write_frame(compute_frame(scenario, seed, index, eng, sequence), root)


def render_frames(scenario: Scenario, seed: int, indices: list[int], eng: Engines, root: Path,
                  sequence: int = 1) -> Iterator[FrameResult]:
    """Render ``indices`` in order, encoding and writing frame i on a thread while frame i+1
    renders (PNG compression releases the GIL). Yields each frame once its files are written."""
    with ThreadPoolExecutor(max_workers=1) as io:
        pending: Future | None = None
        for i in indices:
            frame = compute_frame(scenario, seed, i, eng, sequence)
            if pending is not None:
                yield pending.result()
            pending = io.submit(write_frame, frame, root)
        if pending is not None:
            yield pending.result()


@dataclass(frozen=True)
class Job:
    """What every worker needs to render frames of one dataset (picklable, sent once per worker)."""

    scenario_json: str
    seed: int
    root: str
    sequence: int


# Worker processes: each holds one set of engines for its lifetime (process-local, never shared).
_worker: dict = {}


def _init_worker(job: Job) -> None:
    if _worker.get("job") == job:
        return
    if "engines" in _worker:
        _worker.pop("engines").__exit__(None, None, None)
    _worker.update(job=job, engines=engines().__enter__(), scenario=Scenario.model_validate_json(job.scenario_json),
                   seed=job.seed, root=Path(job.root), sequence=job.sequence)


def work(job: Job, indices: list[int]) -> list[FrameResult]:
    """Render and write ``indices`` of ``job`` in this process, with its engines (opened on the
    first call, kept for the next ones of the same job): the unit of work of every backend."""
    _init_worker(job)
    w = _worker
    return list(render_frames(w["scenario"], w["seed"], indices, w["engines"], w["root"], w["sequence"]))


def _work(indices: list[int]) -> list[FrameResult]:
    return work(_worker["job"], indices)


def shards(todo: list[int], workers: int) -> list[list[int]]:
    """Contiguous shards, small enough to balance the workers and to report progress often."""
    size = max(1, min(8, len(todo) // (4 * workers)))
    return [todo[k:k + size] for k in range(0, len(todo), size)]


# A backend runs the pending frame indices of a job and yields each frame's result as it is
# written: the process pool below, or longtail.cluster's Ray backend.
Backend = Callable[[Job, list[int]], Iterable[FrameResult]]


def process_pool(workers: int) -> Backend:
    """The default backend: ``workers`` spawned processes on this machine, one set of engines each."""

    def run(job: Job, todo: list[int]) -> Iterator[FrameResult]:
        if workers <= 1:
            with engines() as eng:
                yield from render_frames(Scenario.model_validate_json(job.scenario_json), job.seed, todo, eng,
                                         Path(job.root), job.sequence)
            return
        # spawn: a fresh interpreter per worker, no inherited PyBullet state. An executor (unlike
        # multiprocessing.Pool, which respawns a worker whose start-up fails, forever) raises.
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(job,)) as pool:
            futures = [pool.submit(_work, shard) for shard in shards(todo, workers)]
            try:
                for fut in as_completed(futures):
                    yield from fut.result()
            except BrokenProcessPool as e:
                raise RenderError(f"a render worker died ({e}); rerun the same command to resume") from None
            finally:
                for fut in futures:
                    fut.cancel()

    return run


def render_dataset(scenario: Scenario, out: Path, frames: int, seed: int, workers: int = 1,
                   progress: Callable[[int, int], None] | None = None, sequence: int = 1,
                   backend: Backend | None = None) -> Summary:
    """Render ``frames`` frames of ``scenario`` into ``out`` (creating or resuming it).

    With a camera rig every frame gives one image per camera: ``Summary.frames`` and the
    manifest's frame count are images. ``progress(done, total)`` is called after each image.
    ``backend`` runs the pending frames (default: ``process_pool(workers)``). Frame bytes do not
    depend on ``workers`` or the backend: every frame (or run of ``sequence`` frames) draws from its
    own generator and owns its files.
    """
    if frames < 1 or sequence < 1:
        raise ValueError("frames and sequence must be >= 1")
    frames *= len(scenario.camera.names())  # one image per camera of the rig
    writer = DatasetWriter.open(out, scenario.model_dump(mode="json"), scenario.digest(), seed, frames, sequence)
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

    if todo:
        run = backend if backend is not None else process_pool(workers)
        scenario_json = scenario.model_dump_json()
        try:
            for res in run(Job(scenario_json, seed, str(writer.root), sequence), todo):
                record(res)
        finally:  # interrupted (Ctrl-C, a failed worker): keep every frame recorded so far
            writer.save()
        remove_stale_tmp(writer.root)  # a worker killed mid-write (and retried) leaves its temporary behind
    writer.save()
    records = writer.load_records()
    coco_sha = write_json(writer.root / "coco.json", to_coco(records, f"longtail: {scenario.name}"))
    writer.finish({"coco.json": coco_sha})
    return Summary(frames=frames, rendered=len(todo), objects=objects, seconds=time.perf_counter() - t0,
                   shares=condition_shares(records))


def condition_shares(records: list[dict]) -> dict[str, dict[str, float]]:
    """Share of frames per time of day, per weather, and with a visible rare event."""
    n = max(1, len(records))
    out = {}
    for key in ("time_of_day", "weather"):
        counts = Counter(r["attributes"][key] for r in records)
        out[key] = {k: c / n for k, c in sorted(counts.items())}
    seen = sum(any(o["role"] == "event" and o["area"] > 0 for o in r["objects"]) for r in records)
    out["event"] = {"visible": seen / n}
    return out
