"""One render call per frame gives every buffer: the lit image (before the weather stage), metric
depth, instance ids, semantic ids, plus each actor rendered alone (for exact occlusion and
truncation); ``finish`` anti-aliases the image once the weather stage has run.

    with Renderer() as r:
        buf = r.capture(scene)                    # this module
        image = <weather stage>(buf.image, ...)   # render.weather.scene_weather
        rgb = r.finish(buf, image)                # anti-aliasing, uint8

``longtail.pipeline.render_scene`` runs the flow. A Renderer owns a PyBullet DIRECT client for the
world (and, with the EGL backend, an empty one for rendering actors alone); nothing is global, so
each worker of a process pool holds its own.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from longtail._pybullet import p

from longtail.render.camera import linearize_depth, projection_matrix, view_matrix, world_xyz
from longtail.render.lighting import casts_shadows, night_shading, pybullet_light, scene_lights, sun_vector
from longtail.render.look import (EMISSIVE, bloom, cast_shadows, caster_boxes, edge_antialias, emission, texture_gain,
                                  to_uint8)
from longtail.render.plate import composite
from longtail.render.sky import fill, sky_colors, sky_image
from longtail.render.weather.scene_weather import changes_frame
from longtail.worlds.plates import load_plate_cached
from longtail.worlds.build import World, build, build_actor, pose_actors, static_in_view, static_parts
from longtail.worlds.scene import Actor, Camera, Scene

ALONE_MARGIN_PX = 2
PLATE_NIGHT_AMBIENT = 0.12  # a plate's lamps are unknown: a street-lit level of light everywhere
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
    """What one render call gives.

    Attributes:
        image: (H, W, 3) float32 0..1, the lit frame before the weather stage (sky, night lights
            included); for a plate frame that nothing else changes, already the final (H, W, 3)
            uint8 frame (``finished``).
        daylit: the frame as clear daylight shows it, the reference for label visibility (the
            same object as ``image`` when night left the frame as by day).
        depth: (H, W) float32 z-depth in metres along the optical axis, inf where nothing was hit.
        instance: (H, W) uint16 actor ids, 0 = none.
        semantic: (H, W) uint8 class ids (``longtail.classes``).
        alone: actor id -> Alone, for actors whose box faces the camera.
        airlight: (3,) float32 0..1 haze colour for the weather stage (horizon sky or the plate's).
        finished: ``image`` needs no anti-aliasing (a plate frame finished around its actors).
    """

    image: np.ndarray
    daylit: np.ndarray
    depth: np.ndarray
    instance: np.ndarray
    semantic: np.ndarray
    alone: dict[int, Alone]
    airlight: np.ndarray
    finished: bool = False


BACKENDS = ("auto", "tiny", "egl")


def gpu_present() -> bool:
    """True when an NVIDIA GPU is visible (its device node exists)."""
    return os.path.exists("/dev/nvidia0")


def _load_egl(client: int) -> bool:
    """Load PyBullet's EGL renderer plugin into ``client``; False if it cannot be loaded."""
    try:
        import pkgutil

        loader = pkgutil.get_loader("eglRenderer")
        if loader is None or not hasattr(loader, "get_filename"):  # not a file's loader: no plugin path
            return False
        return p.loadPlugin(loader.get_filename(), "_eglRendererPlugin", physicsClientId=client) >= 0
    except Exception:  # noqa: BLE001 - any failure means: no EGL here, use the CPU renderer
        return False


def camera_image(client: int, camera: Camera, crop=None, renderer: int | None = None, rgba: bool = False,
                 **light) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``getCameraImage`` of ``client``: (H, W, 3) uint8 RGB (a view into the RGBA image, or
    with ``rgba`` the (H, W, 4) RGBA itself), (H, W) float32 z-buffer, (H, W) int32 segmentation;
    ``crop`` (u0, v0, w, h) renders only that window of ``camera``'s image."""
    w, h = (crop[2], crop[3]) if crop else (camera.width, camera.height)
    _, _, image, zbuf, seg = p.getCameraImage(
        w, h, view_matrix(camera), projection_matrix(camera, crop),
        renderer=p.ER_TINY_RENDERER if renderer is None else renderer, physicsClientId=client, **light)
    image = np.asarray(image, np.uint8).reshape(h, w, 4)
    return (image if rgba else image[..., :3]), np.asarray(zbuf, np.float32).reshape(h, w), \
        np.asarray(seg, np.int32).reshape(h, w)


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


LIGHTS = frozenset(EMISSIVE)  # colours the night finds lamps and lit windows by: never randomised
# what of a Scene makes its PyBullet world (``worlds.build``), less the actors' poses and the
# camera: frames that share these and see the same static parts (``static_in_view``: the steps of
# a run seen from a still camera, a weather ramp) share the world
WORLD_FIELDS: dict[str, Any] = {"layout": True, "randomization": True,
                                "actors": {"__all__": {"id", "asset", "cls", "size", "color", "variant"}}}


def exposure_gain(scene: Scene) -> np.float32:
    """The frame's exposure as a factor on the image: 2 ** the randomised stops (1 without)."""
    rz = scene.randomization
    return np.float32(1.0 if rz is None else 2.0 ** rz.exposure_stops)


class _Clock:
    """Adds the time since the last lap to ``timings[name]`` (does nothing without timings)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.t
            self.t = now


class Renderer:
    """Headless renderer. Use as a context manager.

    ``backend``: "tiny" (PyBullet's CPU renderer, everywhere), "egl" (hardware OpenGL through
    PyBullet's EGL plugin) or "auto" (EGL when an NVIDIA GPU is present and the plugin loads,
    else tiny). The environment variable LONGTAIL_RENDERER overrides "auto". The chosen one is
    in ``self.backend`` once open.
    """

    def __init__(self, backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown render backend {backend!r}; choices: {', '.join(BACKENDS)}")
        self.requested = os.environ.get("LONGTAIL_RENDERER", backend) if backend == "auto" else backend
        self.backend = "tiny"
        self.flag = p.ER_TINY_RENDERER
        self._client = -1
        self.solo = -1
        self._built: str | None = None  # the WORLD_FIELDS of the scene whose world the client holds
        self._poses: list = []  # and its actors' poses
        self._shown: np.ndarray | None = None  # and the static parts built of it (``static_in_view``)
        self._view: tuple | None = None  # (WORLD_FIELDS, camera, static parts it sees) of the last frame
        self._world: World | None = None
        self._hidden = False  # the world's shapes are hidden (after the alone renders) until shown again

    @property
    def client(self) -> int:
        """The PyBullet client holding the last captured world, every shape as built."""
        self._reveal()
        return self._client

    def _reveal(self) -> None:
        if self._hidden and self._world is not None:
            _show(self._client, self._world)
        self._hidden = False

    def __enter__(self) -> "Renderer":
        self._client = p.connect(p.DIRECT)
        want_egl = self.requested == "egl" or (self.requested == "auto" and gpu_present())
        if want_egl and _load_egl(self._client) and _load_egl(self._solo()):
            self.backend, self.flag = "egl", p.ER_BULLET_HARDWARE_OPENGL
        elif self.requested == "egl":
            self.__exit__()
            raise RuntimeError("the EGL renderer was asked for but PyBullet's eglRenderer plugin did not load")
        return self

    def _solo(self) -> int:
        """The empty client the EGL backend renders actors alone in (connected when first needed)."""
        if self.solo < 0:
            self.solo = p.connect(p.DIRECT)
        return self.solo

    def __exit__(self, *exc) -> None:
        for c in (self._client, self.solo):
            if c >= 0:
                p.disconnect(physicsClientId=c)
        self._client = self.solo = -1
        self._built = self._world = self._shown = self._view = None
        self._hidden = False

    def capture(self, scene: Scene, timings: dict[str, float] | None = None,
                shown: np.ndarray | None = None) -> Buffers:
        """All buffers of ``scene``'s frame up to the weather stage; a deterministic function of
        the Scene.

        ``timings``, if given, accumulates the seconds spent in each step (for benchmarks).
        ``shown``: the static parts to build (``worlds.build.static_in_view``), by default those
        this frame's camera sees; frames that pass the same (the images of a run or a rig, all
        cameras' parts) share one world. Parts no camera sees change no pixel either way.
        """
        if self._client < 0:
            raise RuntimeError("Renderer is not open: use `with Renderer() as r:`")
        clock = _Clock(timings)
        cam = scene.camera
        key = scene.model_dump_json(include=WORLD_FIELDS)
        poses = [(a.position, a.yaw) for a in scene.actors]
        if shown is None:
            if self._view is None or self._view[:2] != (key, cam):  # the static parts this camera sees
                self._view = (key, cam, static_in_view(scene))
            shown = self._view[2]
        # the world is kept while it holds the same parts (a run's steps from a still camera)
        if key != self._built or self._shown is None or not np.array_equal(shown, self._shown):
            p.resetSimulation(physicsClientId=self._client)
            self._hidden = False
            self._world = build(scene, self._client, meshes=self.backend == "tiny", keep=LIGHTS, shown=shown)
            self._built, self._shown, self._poses = key, shown, poses
        elif poses != self._poses:  # a later step of a run: the same world, its actors moved
            assert self._world is not None
            pose_actors(self._client, self._world, scene.actors)
            self._poses = poses
        self._reveal()  # shown again only when the world is drawn again (the next camera of a rig)
        world = self._world
        assert world is not None  # built above, or for an earlier camera of this scene
        clock.lap("build")
        rgba8, zbuf, seg = camera_image(self._client, cam, renderer=self.flag, rgba=True, **pybullet_light(scene))
        clock.lap("bare")
        # RGB as a contiguous copy: taken from the whole RGBA it costs a third of what a copy (or
        # any whole-image operation) of the strided view ``rgba8[..., :3]`` does
        rgb8 = rgba8.take((0, 1, 2), axis=2)
        depth = linearize_depth(zbuf, cam)
        body = np.where(seg < 0, -1, seg & ((1 << 24) - 1)) + 1
        instance = world.instance_of.take(body)  # take: the same values as indexing, in half the time
        semantic = world.semantic_of.take(body)
        sky = seg < 0
        depth[sky] = np.inf
        img = rgb8.astype(np.float32)
        img /= 255.0  # (in place: the same float32 division as ``/ 255.0``)
        clock.lap("buffers")
        if scene.layout.kind == "plate":
            return self._capture_plate(scene, world, rgb8, img, depth, instance, semantic, clock)
        x, y, z = world_xyz(np.where(sky, 0.0, depth), cam)
        rz = scene.randomization
        img *= texture_gain(semantic, x, y, z, depth, 1.0 if rz is None else rz.texture_strength)[..., None]
        if rz is not None and rz.ambient_tint != (1.0, 1.0, 1.0):
            img *= np.asarray(rz.ambient_tint, np.float32)
        clock.lap("textures")
        if casts_shadows(scene):
            boxes = caster_boxes(static_parts(scene), scene.actors)
            img = cast_shadows(img, semantic, x, y, boxes, sun_vector(scene), in_place=True)
            clock.lap("shadows")
        gain = exposure_gain(scene)
        if gain != 1.0:  # the camera's exposure, on the scene's radiance (before night's tone curve)
            img = np.minimum(img * gain, np.float32(1.0))
        daylit = img  # the frame as clear daylight shows it: the reference for label visibility
        if scene.is_night:
            img = _night(img, depth, cam, scene_lights(scene, world.lamps), emission(rgb8))
            clock.lap("night")
        colours = sky_image(scene, sky)
        fill(img, sky, colours if gain == 1.0 else np.minimum(colours * gain, np.float32(1.0)))
        clock.lap("sky")
        alone = self._render_alone(scene)
        clock.lap("alone")
        airlight = np.asarray(sky_colors(scene)[0])
        return Buffers(image=img, daylit=daylit, depth=depth, instance=instance, semantic=semantic, alone=alone,
                       airlight=airlight if gain == 1.0 else np.minimum(airlight * gain, 1.0))

    def finish(self, buffers: Buffers, image: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray:
        """The frame's final (H, W, 3) uint8 RGB from the weathered ``image``: anti-aliased edges."""
        if buffers.finished and image is buffers.image:
            return image
        clock = _Clock(timings)
        rgb = to_uint8(edge_antialias(image, buffers.instance, buffers.semantic, buffers.depth))
        clock.lap("antialias")
        return rgb

    def _capture_plate(self, scene: Scene, world, rgb8, img, depth, instance, semantic, clock) -> Buffers:
        """Composite the rendered actors over the scene's real plate: depth-tested against the
        plate's depth (so occluders stay in front), brightness and tint matched to the plate
        around each actor, contact shadows on the ground; then night as usual (the weather
        stage follows in the flow)."""
        plate = load_plate_cached(scene.layout.plate)
        cam = scene.camera
        untouched = not scene.is_night and not changes_frame(scene)  # away from the actors the frame is the plate
        # night and weather work on the whole image (and visibility labels compare its pixels): bit for bit
        comp = composite(plate, img, depth, instance, semantic, scene.actors, cam, whole=not untouched)
        instance, semantic, depth = comp.instance, comp.semantic, comp.depth
        clock.lap("composite")
        airlight = np.asarray(plate.airlight, np.float32)
        if untouched:  # finish (anti-alias) only around the actors and their shadows
            rgb = comp.finish(plate)
            clock.lap("antialias")
            alone = self._render_alone(scene)
            clock.lap("alone")
            return Buffers(image=rgb, daylit=rgb, depth=depth, instance=instance, semantic=semantic, alone=alone,
                           airlight=airlight, finished=True)
        img = daylit = comp.image
        if scene.is_night:
            glow = emission(rgb8) * (instance > 0)[..., None]
            img = _night(img, depth, cam, scene_lights(scene, world.lamps), glow, ambient=PLATE_NIGHT_AMBIENT)
            clock.lap("night")
        alone = self._render_alone(scene)
        clock.lap("alone")
        return Buffers(image=img, daylit=daylit, depth=depth, instance=instance, semantic=semantic, alone=alone,
                       airlight=airlight)

    def _render_alone(self, scene: Scene) -> dict[int, Alone]:
        """Each actor whose box can appear in the image rendered alone, in a crop around it.

        The tiny renderer skips shapes of zero alpha, so the actors are rendered alone in the
        built world itself: every body hidden, then each actor's shown in turn (no second build
        of the actors). The world stays hidden until it is drawn again or ``client`` is asked for
        (a world rebuilt for the next frame is never shown again). EGL builds each actor in the
        solo client."""
        cam = scene.camera
        world = self._world
        here = self.backend == "tiny" and world is not None
        if here:
            assert world is not None
            self._hidden = True
            _set_alpha(self._client, world, world.colours, 0.0)
        out = {}
        for actor in scene.actors:
            crop = alone_crop(actor, cam)
            if crop is None:
                continue
            if here:
                assert world is not None
                bodies = world.actor_bodies.get(actor.id, [])
                _set_alpha(self._client, world, bodies, 1.0)
                _, _, seg = camera_image(self._client, cam, crop, renderer=self.flag, shadow=0)
                _set_alpha(self._client, world, bodies, 0.0)
            else:
                bodies = build_actor(actor, self._solo(), meshes=self.backend == "tiny")
                _, _, seg = camera_image(self.solo, cam, crop, renderer=self.flag, shadow=0)
                p.resetSimulation(physicsClientId=self.solo)
            mine = np.isin(seg, bodies)
            u0, v0, w, h = crop
            iu0, iv0 = max(0, -u0), max(0, -v0)
            iu1, iv1 = min(w, cam.width - u0), min(h, cam.height - v0)
            in_image = int(mine[iv0:iv1, iu0:iu1].sum())
            if in_image:
                out[actor.id] = Alone(in_image=in_image, total=int(mine.sum()))
        return out


def _night(albedo: np.ndarray, depth: np.ndarray, cam: Camera, lights, glow: np.ndarray, **ambient) -> np.ndarray:
    """The night frame: ``albedo`` lit by ``lights`` (``night_shading``), plus the lamps' own
    ``glow`` and its bloom, summed in place in that order (the same floats as
    ``shading + glow + bloom(glow)``)."""
    img = night_shading(albedo, depth, cam, lights, **ambient)
    img += glow
    img += bloom(glow)
    return img


def _set_alpha(client: int, world: World, bodies, alpha: float) -> None:
    """Hide (alpha 0: the tiny renderer skips the shape) or show ``bodies`` with all their links;
    only the segmentation of such a render is read, so the colour of a shown body does not matter."""
    rgba = [1.0, 1.0, 1.0, alpha]
    for b in bodies:
        for link in range(-1, len(world.colours[b]) - 1):
            p.changeVisualShape(b, link, rgbaColor=rgba, physicsClientId=client)


def _show(client: int, world: World) -> None:
    """Give every shape of every body back the colour it was built with (the same doubles, so the
    same floats in the renderer: the next render of the world is byte for byte as before)."""
    for b, links in world.colours.items():
        for link, cols in enumerate(links, -1):
            if all(c == cols[0] for c in cols):
                p.changeVisualShape(b, link, rgbaColor=list(cols[0]), physicsClientId=client)
            else:
                for k, c in enumerate(cols):
                    p.changeVisualShape(b, link, shapeIndex=k, rgbaColor=list(c), physicsClientId=client)
