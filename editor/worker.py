"""The editor's render worker: sampling and rendering off the web server's event loop.

Jobs run in a pool (spawned processes by default; one thread in tests) that owns one set of
PyBullet engines per worker. A job never raises across the pool boundary: it returns a dict with
either its result or ``{"error": message, "status": http_status}``, so a bad scenario or a
sampling failure reaches the page as a message. ``RenderPool.run`` bounds the jobs in flight
(more: 429) and their time (longer: 504, and the pool is replaced).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import multiprocessing as mp
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable

import numpy as np

_local = threading.local()  # the engines of this worker (a process, or a thread in tests)


def _engines():
    eng = getattr(_local, "engines", None)
    if eng is None:
        from longtail.pipeline import engines

        eng = engines().__enter__()
        _local.engines = eng
    return eng


def _png_data_url(array: np.ndarray) -> str:
    from longtail.atomic import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(array)).decode()


def _scenario(scenario_json: str):
    from longtail.worlds.scenario import Scenario

    return Scenario.model_validate_json(scenario_json)


def _r(v: float) -> float:
    return round(float(v), 3)


def scene_map(scenario_json: str, seed: int, index: int) -> dict:
    """Top-down map of the sampled scene: static boxes and round props by semantic colour, the
    actors' oriented footprints and the camera's frustum, all in world metres (x ahead, y left)."""
    from longtail.classes import get_class
    from longtail.pipeline import frame_scene
    from longtail.worlds.layouts import static_world
    from longtail.worlds.sampler import EGO_FOOTPRINT, _footprint

    scenario = _scenario(scenario_json)
    eng = _engines()
    scene = frame_scene(scenario, seed, index, eng)
    static = static_world(scene.layout)
    shapes = []
    for cls_name, pt in sorted(static.parts, key=lambda cp: cp[1].pos[2] + cp[1].dims[2]):
        try:
            colour = get_class(cls_name).color
        except KeyError:
            colour = (90, 90, 90)
        if pt.shape == "box":
            if pt.dims[2] < 0.005 and cls_name == "road":  # markings: thin white paint
                colour = (235, 235, 225)
            fp = _footprint(pt.pos[0], pt.pos[1], pt.rpy[2], 2 * pt.dims[0], 2 * pt.dims[1])
            shapes.append({"poly": [[_r(x), _r(y)] for x, y in fp], "color": colour})
        else:
            radius = pt.dims[0] if pt.shape != "frustum" else max(pt.dims[0], pt.dims[1])
            shapes.append({"circle": [_r(pt.pos[0]), _r(pt.pos[1]), _r(radius)], "color": colour})
    actors = [{"id": a.id, "asset": a.asset, "cls": a.cls, "role": a.role, "x": _r(a.position[0]),
               "y": _r(a.position[1]), "yaw": _r(a.yaw),
               "poly": [[_r(x), _r(y)]
                        for x, y in _footprint(a.position[0], a.position[1], a.yaw, a.size[0], a.size[1])]}
              for a in scene.actors]
    cam = scene.camera
    half = math.atan(cam.width / (2.0 * cam.fx))
    frustum = {"x": _r(cam.position[0]), "y": _r(cam.position[1]), "yaw": _r(cam.yaw), "half_fov": _r(half),
               "range": 60.0}
    ego = None
    if scene.ego is not None:
        ego = [[_r(x), _r(y)] for x, y in _footprint(scene.ego[0], scene.ego[1], scene.ego[2], *EGO_FOOTPRINT)]
    return {"ok": True, "shapes": shapes, "actors": actors, "camera": frustum, "ego": ego,
            "layout": scene.layout.model_dump(mode="json"), "seed": seed, "index": index}


def _colour_maps(images: dict) -> dict:
    from longtail.classes import palette
    from longtail.depth import decode_depth
    from longtail.preview import depth_colours, instance_colours

    depth_m = decode_depth(images["depth"])
    return {"instance": _png_data_url(instance_colours(images["instance"])),
            "semantic": _png_data_url(palette()[images["semantic"]]),
            "depth": _png_data_url(depth_colours(depth_m))}


def render_preview(scenario_json: str, seed: int, index: int) -> dict:
    """Frame ``index`` of a dataset with ``seed``: exactly what ``longtail render`` writes as that
    frame (same function, same PNG encoder), plus colour maps of its label buffers."""
    from longtail.atomic import png_bytes
    from longtail.pipeline import compute_frame

    scenario = _scenario(scenario_json)
    t0 = time.perf_counter()
    frame = compute_frame(scenario, seed, index, _engines())
    rgb = png_bytes(frame.images["rgb"])
    objects = [{"id": o.get("id"), "class": o.get("class"), "role": o.get("role"), "bbox": o.get("bbox"),
                "asset": o.get("asset")} for o in frame.record["objects"]]
    return {"ok": True, "seed": seed, "index": index, "width": int(frame.images["rgb"].shape[1]),
            "height": int(frame.images["rgb"].shape[0]),
            "rgb": "data:image/png;base64," + base64.b64encode(rgb).decode(),
            "rgb_sha256": hashlib.sha256(rgb).hexdigest(), **_colour_maps(frame.images), "objects": objects,
            "seconds": round(time.perf_counter() - t0, 3)}


def render_thumbnails(scenario_json: str, seed: int, count: int, width: int, height: int) -> dict:
    """Frames 0..count-1 of ``seed`` at a small size, boxes drawn: the scenario's randomness."""
    from longtail.pipeline import compute_frame
    from longtail.preview import draw_boxes

    scenario = _scenario(scenario_json).with_resolution(width, height)
    out = []
    for i in range(count):
        try:
            frame = compute_frame(scenario, seed, i, _engines())
        except Exception as e:  # one frame that cannot be sampled does not sink the strip
            out.append({"index": i, "error": str(e)})
            continue
        im = np.asarray(draw_boxes(frame.images["rgb"], frame.record["objects"]))
        out.append({"index": i, "image": _png_data_url(im), "objects": len(frame.record["objects"])})
    return {"ok": True, "seed": seed, "thumbnails": out}


JOBS: dict[str, Callable[..., dict]] = {"map": scene_map, "render": render_preview, "thumbnails": render_thumbnails}


def run_job(kind: str, *args) -> dict:
    """Run one job; any failure comes back as a message with the HTTP status it deserves."""
    from longtail.errors import InputError, SamplingError

    try:
        return JOBS[kind](*args)
    except SamplingError as e:  # an InputError too: listed first for its wording
        return {"ok": False, "status": 422, "error": f"cannot sample this scenario: {e}"}
    except InputError as e:
        return {"ok": False, "status": 422, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - the page gets the message instead of a hung request
        return {"ok": False, "status": 500, "error": f"render failed: {type(e).__name__}: {e}"}


class Busy(Exception):
    """Too many jobs in flight."""


class JobTimeout(Exception):
    """A job ran past its time limit."""


class RenderPool:
    """At most ``workers`` jobs run at once and at most ``queue`` more wait; each has ``timeout_s``."""

    def __init__(self, workers: int = 1, queue: int = 4, timeout_s: float = 60.0, mode: str = "process"):
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}")
        self.workers, self.limit, self.timeout_s, self.mode = workers, workers + queue, timeout_s, mode
        self._pool: Executor | None = None
        self._inflight = 0
        self._lock = threading.Lock()

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.mode == "thread":
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="longtail-render")
            else:  # spawn: a fresh interpreter per worker, no inherited PyBullet or server state
                self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    async def run(self, kind: str, *args) -> dict:
        with self._lock:
            if self._inflight >= self.limit:
                raise Busy(f"{self._inflight} renders are in flight (limit {self.limit}); try again shortly")
            self._inflight += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(self._executor(), run_job, kind, *args)
            try:
                return await asyncio.wait_for(fut, self.timeout_s)
            except asyncio.TimeoutError:
                self._replace()
                raise JobTimeout(f"the {kind} job took longer than {self.timeout_s:g} s and was stopped") from None
            except Exception as e:  # a dead worker process
                self._replace()
                return {"ok": False, "status": 500, "error": f"render worker failed: {type(e).__name__}: {e}"}
        finally:
            with self._lock:
                self._inflight -= 1

    def _replace(self) -> None:
        """Drop the pool (stopping its processes); the next job starts a fresh one."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if isinstance(pool, ProcessPoolExecutor):
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
