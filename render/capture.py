"""One render call per frame gives every buffer: rgb, metric depth, instance ids, semantic ids,
plus each actor rendered alone (for exact occlusion and truncation).

``with Renderer() as r: buffers = r.render(scene)``. A Renderer owns two PyBullet DIRECT clients
(the world, and an empty one for rendering actors alone); nothing is global, so each worker of a
process pool holds its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from longtail._pybullet import p

from longtail.render.camera import linearize_depth, projection_matrix, ray_distance, view_matrix
from longtail.render.lighting import night_shading, pybullet_light, scene_lights
from longtail.render.sky import sky_colors, sky_image
from longtail.render.weather.fog import fog, koschmieder_beta
from longtail.worlds.build import build, build_actor
from longtail.worlds.scene import Actor, Camera, Scene

ALONE_MARGIN_PX = 2
MAX_ALONE_EXTENT = 3  # an alone-render crop spans at most this many image widths/heights


@dataclass(frozen=True)
class Alone:
    """An actor rendered alone. ``in_image``: its pixels inside the image; ``total``: its pixels
    in the (possibly larger) crop around its projected 3D box, so ``1 - in_image/total`` is the
    truncated fraction."""

    in_image: int
    total: int


@dataclass
class Buffers:
    """rgb (H, W, 3) uint8; depth (H, W) float32 z-depth in metres along the optical axis, inf
    where nothing was hit (sky); instance (H, W) uint16 actor ids, 0 = none; semantic (H, W) uint8
    class ids (labelers.classes); alone: actor id -> Alone, for actors whose box faces the camera."""

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray
    semantic: np.ndarray
    alone: dict[int, Alone]


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _get_image(client: int, camera: Camera, crop=None, **light) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w, h = (crop[2], crop[3]) if crop else (camera.width, camera.height)
    _, _, rgba, zbuf, seg = p.getCameraImage(
        w, h, view_matrix(camera), projection_matrix(camera, crop), renderer=p.ER_TINY_RENDERER,
        physicsClientId=client, **light)
    rgba = np.asarray(rgba, np.uint8).reshape(h, w, 4)
    return rgba[..., :3], np.asarray(zbuf, np.float32).reshape(h, w), np.asarray(seg, np.int32).reshape(h, w)


def alone_crop(actor: Actor, camera: Camera) -> tuple[int, int, int, int] | None:
    """Pixel window (u0, v0, w, h) that holds the actor's whole silhouette, or None if the actor
    cannot appear in the image."""
    uv, z = camera.project(actor.box_corners())
    W, H = camera.width, camera.height
    if np.all(z <= camera.near):
        return None
    if np.any(z <= camera.near):  # straddles the camera plane: take the widest allowed window
        u0, v0, u1, v1 = -W, -H, 2 * W, 2 * H
    else:
        u0, v0 = math.floor(uv[:, 0].min()) - ALONE_MARGIN_PX, math.floor(uv[:, 1].min()) - ALONE_MARGIN_PX
        u1, v1 = math.ceil(uv[:, 0].max()) + ALONE_MARGIN_PX, math.ceil(uv[:, 1].max()) + ALONE_MARGIN_PX
    if u1 <= 0 or v1 <= 0 or u0 >= W or v0 >= H:
        return None
    lim = (MAX_ALONE_EXTENT - 1) // 2
    u0, v0 = max(u0, -lim * W), max(v0, -lim * H)
    u1, v1 = min(u1, W + lim * W), min(v1, H + lim * H)
    return u0, v0, u1 - u0, v1 - v0


class Renderer:
    """Headless renderer (PyBullet's CPU tiny renderer). Use as a context manager."""

    def __init__(self):
        self.client = -1
        self.solo = -1

    def __enter__(self) -> "Renderer":
        self.client = p.connect(p.DIRECT)
        self.solo = p.connect(p.DIRECT)
        return self

    def __exit__(self, *exc) -> None:
        for c in (self.client, self.solo):
            if c >= 0:
                p.disconnect(physicsClientId=c)
        self.client = self.solo = -1

    def render(self, scene: Scene) -> Buffers:
        """All buffers of ``scene``'s frame; a deterministic function of the Scene."""
        if self.client < 0:
            raise RuntimeError("Renderer is not open: use `with Renderer() as r:`")
        cam = scene.camera
        p.resetSimulation(physicsClientId=self.client)
        world = build(scene, self.client)
        rgb8, zbuf, seg = _get_image(self.client, cam, **pybullet_light(scene))
        depth = linearize_depth(zbuf, cam)
        body = np.where(seg < 0, -1, seg & ((1 << 24) - 1)) + 1
        instance = world.instance_of[body]
        semantic = world.semantic_of[body]
        sky = seg < 0
        depth[sky] = np.inf
        img = rgb8.astype(np.float32) / 255.0
        if scene.is_night:
            img = night_shading(img, depth, cam, scene_lights(scene, world.lamps))
        img[sky] = sky_image(scene, sky)
        if scene.weather.kind == "fog" and scene.weather.visibility_m:
            horizon, _ = sky_colors(scene)
            img = fog(img, ray_distance(depth, cam), koschmieder_beta(scene.weather.visibility_m), horizon)
        return Buffers(rgb=to_uint8(img), depth=depth, instance=instance, semantic=semantic,
                       alone=self._render_alone(scene))

    def _render_alone(self, scene: Scene) -> dict[int, Alone]:
        cam = scene.camera
        out = {}
        for actor in scene.actors:
            crop = alone_crop(actor, cam)
            if crop is None:
                continue
            bodies = build_actor(actor, self.solo)
            _, _, seg = _get_image(self.solo, cam, crop, shadow=0)
            for b in bodies:
                p.removeBody(b, physicsClientId=self.solo)
            mine = np.isin(seg, bodies)
            u0, v0, w, h = crop
            iu0, iv0 = max(0, -u0), max(0, -v0)
            iu1, iv1 = min(w, cam.width - u0), min(h, cam.height - v0)
            in_image = int(mine[iv0:iv1, iu0:iu1].sum())
            if in_image:
                out[actor.id] = Alone(in_image=in_image, total=int(mine.sum()))
        return out
