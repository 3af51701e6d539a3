"""Rendered actors inserted into real training frames, on the fly (``train --insert``, the
``real+inserted`` arm of ``compare``).

Every real image that gets insertion receives actors sampled from a plate-style scenario (the
schema of ``examples/pets_people.yaml``: assets, counts, distances, headings) standing on the
image camera's ground plane at their true scale: a fitted plate camera for a static camera, or a
camera prior (height, pitch, field of view) for footage from a moving car, which sees the same
ground plane in every frame. Two halves, so a training step stays cheap:

- ``ActorBank``: each asset of the scenario, in several looks (size, colour, pose), rendered once
  by PyBullet's tiny renderer from every camera elevation and relative heading the bank holds:
  RGB, instance ids and depth sprites with their foot point and scale.
- ``Inserter``: per image, draws the actors' spots (visible ground within the spec's distances,
  never behind a real object that stands nearer), picks each actor's nearest sprite, scales it
  by the ground plane (pixels per metre at its foot), matches its light to the image around it,
  blends it with a randomly hard, feathered or blurred edge and a contact shadow, nearest actors
  last. Labels stay exact: inserted boxes are the extents of the final masks (occlusion between
  inserted actors included); a real box mostly covered by inserted actors (more than
  ``COVERED_IGNORE``) becomes an ignore region, every real box gets its covered share as
  ``occlusion``. The depth of the composite (the ground prior, actors where they stand) goes to
  the weather stage, which runs after insertion over the whole image.

The sprite is seen from one elevation and heading; perspective within an actor is not redrawn,
which at the sizes of road users 5-60 m away is well under a pixel of difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch

from longtail._pybullet import p
from longtail.classes import get_class
from longtail.errors import ParameterError
from longtail.render.camera import linearize_depth
from longtail.render.capture import camera_image
from longtail.render.plate import contact_shadows
from longtail.train.entries import Entry
from longtail.train.weather import GroundPrior
from longtail.worlds.assets import get_asset, resolve_asset_names
from longtail.worlds.build import build_actor
from longtail.worlds.plates import Plate, ground_depth
from longtail.worlds.sampler import draw_look, rider_for
from longtail.worlds.scenario import ActorSpec, Scenario
from longtail.worlds.scene import Actor, Camera

ELEVATIONS_DEG = (0.0, 4.0, 8.0, 12.0, 17.0, 23.0, 30.0, 40.0, 52.0, 66.0)
HEADINGS = 12  # relative headings of the bank, 30 degrees apart
SPRITE_DISTANCE_M = 25.0  # the bank's camera distance: mild perspective, like the road users it stands for
COVERED_IGNORE = 0.5  # a real object more covered than this by inserted actors becomes an ignore region
WINDOW_PX = 16  # margin around an actor where the image's local light is measured
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
REFERENCE_LUMA = 0.45  # the bank's lit mid-grey; actors are scaled towards the image around them
GAIN_LIMITS = (0.35, 1.8)
MAX_TRIES = 20  # spots tried per actor before it is left out
BANK_LIGHT: dict[str, Any] = dict(  # an overcast day
    lightDirection=[-40.0, 30.0, 100.0], lightColor=[1.0, 0.98, 0.95], lightAmbientCoeff=0.6, lightDiffuseCoeff=0.4,
    lightSpecularCoeff=0.05, shadow=0)


@dataclass(frozen=True)
class Sprite:
    """One look of an actor (and its rider) seen from one elevation and relative heading.

    Attributes:
        rgb: (h, w, 3) float32 0..1.
        ids: (h, w) uint8: 0 none, k = the k-th actor of ``classes`` (a two-wheeler, its rider).
        depth: (h, w) float32 camera depth minus the foot point's depth, metres (0 where none).
        foot: (u, v) of the foot point (the actor's bottom centre) in sprite pixels.
        px_per_m: the bank camera's pixels per metre at the foot point's depth.
        classes: class name of each actor id 1, 2, ...
        size: (l, w, h) metres of the (first) actor.
    """

    rgb: np.ndarray
    ids: np.ndarray
    depth: np.ndarray
    foot: tuple[float, float]
    px_per_m: float
    classes: tuple[str, ...]
    size: tuple[float, float, float]


def _bank_camera(actors: list[Actor], elevation: float, sprite_px: int) -> Camera:
    """A camera ``SPRITE_DISTANCE_M`` from the actor's centre, pitched down by ``elevation``
    (radians) towards it along +x, with a focal length that makes the actor ~``sprite_px`` tall."""
    l, w, h = actors[0].size
    top = max(a.position[2] + a.size[2] for a in actors)
    extent = max(l, w, top)
    f = sprite_px * SPRITE_DISTANCE_M / extent
    size = int(2.2 * sprite_px) + 8
    cz = top / 2
    pos = (-SPRITE_DISTANCE_M * math.cos(elevation), 0.0, cz + SPRITE_DISTANCE_M * math.sin(elevation))
    return Camera(name="bank", width=size, height=size, fx=f, fy=f, cx=size / 2, cy=size / 2, position=pos,
                  pitch=elevation, near=1.0, far=100.0)


def render_sprite(client: int, actors: list[Actor], elevation: float, sprite_px: int) -> Sprite:
    """``actors`` (at the origin) rendered alone, cropped to their pixels."""
    p.resetSimulation(physicsClientId=client)
    bodies = {}
    for k, a in enumerate(actors, 1):
        for b in build_actor(a, client):
            bodies[b] = k
    cam = _bank_camera(actors, elevation, sprite_px)
    rgb8, zbuf, seg = camera_image(client, cam, **BANK_LIGHT)
    lut = np.zeros(max(bodies) + 2, np.uint8)
    for b, k in bodies.items():
        lut[b + 1] = k
    ids = lut[np.where(seg < 0, -1, seg & ((1 << 24) - 1)) + 1]
    ys, xs = np.nonzero(ids)
    if not len(ys):
        raise RuntimeError(f"the bank camera does not see {actors[0].asset}")  # pragma: no cover - geometry
    y0, y1, x0, x1 = max(ys.min() - 1, 0), ys.max() + 2, max(xs.min() - 1, 0), xs.max() + 2
    foot_uv, foot_z = cam.project(np.array([[0.0, 0.0, 0.0]]))
    depth = linearize_depth(zbuf, cam) - float(foot_z[0])
    depth = np.where(ids > 0, depth, 0.0).astype(np.float32)
    a = actors[0]
    return Sprite(rgb=rgb8[y0:y1, x0:x1].astype(np.float32) / 255.0, ids=ids[y0:y1, x0:x1], depth=depth[y0:y1, x0:x1],
                  foot=(float(foot_uv[0, 0]) - x0, float(foot_uv[0, 1]) - y0),
                  px_per_m=cam.fy / float(foot_z[0]), classes=tuple(x.cls for x in actors), size=a.size)


class ActorBank:
    """Sprites of every asset a scenario may insert: ``looks`` looks per asset, each seen from
    ``ELEVATIONS_DEG`` and ``HEADINGS`` relative headings (0 = the actor faces the camera's left,
    as heading 0 faces +x with the camera looking along +x).

    Args:
        scenario: a plate-style scenario (its events' and traffic's assets are banked).
        looks: looks per asset (size, colour and pose drawn as the sampler draws them).
        seed: the bank's seed (looks and their riders).
        sprite_px: about how many pixels the largest side of an actor spans in a sprite.
    """

    def __init__(self, scenario: Scenario, looks: int = 8, seed: int = 0, sprite_px: int = 96):
        self.sprite_px = sprite_px
        names = sorted({n for spec in scenario.events + scenario.traffic for n in resolve_asset_names(spec.asset)})
        rng = np.random.default_rng(seed)
        self.sprites: dict[str, list[list[list[Sprite]]]] = {}  # asset -> look -> elevation -> heading
        client = p.connect(p.DIRECT)
        try:
            for name in names:
                asset = get_asset(name)
                looks_of = []
                for _ in range(looks):
                    size, color, variant = draw_look(asset, rng)
                    base = Actor(id=1, asset=name, cls=asset.cls, size=size, position=(0.0, 0.0, 0.0), yaw=0.0,
                                 color=color, variant=variant)
                    rider = rider_for(base, rng) if asset.rider else None
                    per_elevation = []
                    for e in ELEVATIONS_DEG:
                        row = []
                        for k in range(HEADINGS):
                            yaw = 2 * math.pi * k / HEADINGS
                            actors = [base.model_copy(update={"yaw": yaw})]
                            if rider is not None:
                                actors.append(rider.model_copy(update={"yaw": yaw}))
                            row.append(render_sprite(client, actors, math.radians(e), sprite_px))
                        per_elevation.append(row)
                    looks_of.append(per_elevation)
                self.sprites[name] = looks_of
        finally:
            p.disconnect(physicsClientId=client)

    def get(self, asset: str, look: int, elevation: float, heading: float) -> Sprite:
        """The sprite of ``asset``'s ``look`` nearest to ``elevation`` (radians above the
        horizontal, seen from the actor) and ``heading`` (the actor's yaw minus the azimuth of the
        direction from the actor to the camera, plus pi: 0 when it faces the camera's left)."""
        e = int(np.argmin(np.abs(np.radians(ELEVATIONS_DEG) - elevation)))
        k = int(round(heading / (2 * math.pi) * HEADINGS)) % HEADINGS
        return self.sprites[asset][look][e][k]

    def describe(self) -> dict:
        n = sum(len(looks) for looks in self.sprites.values())
        return {"assets": sorted(self.sprites), "looks": n, "elevations_deg": list(ELEVATIONS_DEG),
                "headings": HEADINGS, "sprite_px": self.sprite_px}


@lru_cache(maxsize=8)
def _ground(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) world x, y of each pixel centre's ground (nan above the horizon) and (H, W)
    horizontal distance from the camera's foot (inf above the horizon)."""
    g = ground_depth(camera)
    T = camera.world_from_camera()
    x = ((np.arange(camera.width) + 0.5 - camera.cx) / camera.fx)[None, :]
    y = ((np.arange(camera.height) + 0.5 - camera.cy) / camera.fy)[:, None]
    g = np.where(np.isfinite(g), g, np.nan)
    xy = np.stack([(T[i, 0] * x + T[i, 1] * y + T[i, 2]) * g + T[i, 3] for i in range(2)], -1)
    c = camera.position
    dist = np.hypot(xy[..., 0] - c[0], xy[..., 1] - c[1])
    xy.flags.writeable = False
    return xy, np.where(np.isfinite(dist), dist, np.inf)


def _ground_point(camera: Camera, u: float, v: float) -> tuple[float, float] | None:
    """World (x, y) where the ray through pixel point (u, v) meets the ground, or None."""
    T = camera.world_from_camera()
    ray = T[:3, :3] @ np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0])
    if ray[2] >= 0:
        return None
    k = -T[2, 3] / ray[2]
    return float(T[0, 3] + k * ray[0]), float(T[1, 3] + k * ray[1])


@dataclass
class _Placed:
    """An actor drawn into the image: its window, alpha, ids and colour there, and its foot depth."""

    y0: int
    x0: int
    alpha: np.ndarray  # (h, w) float32 0..1
    ids: np.ndarray  # (h, w) uint8
    rgb: np.ndarray  # (h, w, 3) float32 0..1
    depth: np.ndarray  # (h, w) float32 camera depth, metres
    z: float  # foot depth, metres
    classes: tuple[str, ...]
    actor: Actor


@dataclass
class Inserter:
    """Insertion of a scenario's actors into the real images of a source (module docstring).

    Attributes:
        scenario: the plate-style scenario (events and traffic: asset, count_range,
            distance_m_range, heading_deg_range; layout and region are not used: actors stand on
            the visible ground).
        bank: its actor bank.
        prior: the images' camera (a plate's, or the level car camera prior).
        p: share of images that get actors.
        plate: the static camera's plate, if there is one: its ``regions.png`` (where actors may
            stand) and ``occluders.png`` (static things in front of them) are honoured.
    """

    label = "actors inserted on the fly"  # how a run's log describes a source with it
    scenario: Scenario
    bank: ActorBank
    prior: GroundPrior = field(default_factory=GroundPrior)
    p: float = 1.0
    blends: tuple[int, ...] = (0, 1, 2)  # edges drawn from: 0 hard, 1 feathered, 2 blurred
    shadows: bool = True  # contact shadows under the actors
    match: bool = True  # actors' light matched to the image around them
    plate: Plate | None = None
    _plate_maps: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise ParameterError("insert_p", f"expected 0 < p <= 1, got {self.p}")

    def __call__(self, image: torch.Tensor, target: dict, entry: Entry, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, dict, np.ndarray | None, int]:
        """The image with actors inserted, its updated target, the composite's (H, W) depth for
        the weather stage (None when nothing was inserted) and the number of actors inserted."""
        if rng.random() >= self.p:
            return image, target, None, 0
        H, W = int(image.shape[1]), int(image.shape[2])
        cam = self.prior.camera_for_shape(H, W)
        real_boxes = target["boxes"].numpy()
        placed = self._place(cam, real_boxes, rng)
        if not placed:
            return image, target, None, 0
        img = image.permute(1, 2, 0).numpy().astype(np.float32) / 255.0
        if self.match:
            match_light(placed, img)
        if self.shadows:
            img = contact_shadows(img, _ground(cam)[0], [q.actor for q in placed], cam)
        depth = self.prior.for_shape(H, W)[0].copy()
        occluder_depth = self._maps(H, W)[1]
        if occluder_depth is not None:  # static occluders of the plate stay in front of actors behind them
            for q in placed:
                h, w = q.alpha.shape
                hidden = occluder_depth[q.y0:q.y0 + h, q.x0:q.x0 + w] < q.depth
                q.alpha = np.where(hidden, 0.0, q.alpha).astype(np.float32)
        covered = np.zeros((H, W), bool)
        masks: list[tuple[np.ndarray, str]] = []
        for q in sorted(placed, key=lambda q: -q.z):  # far first: nearer actors cover them
            h, w = q.alpha.shape
            win = (slice(q.y0, q.y0 + h), slice(q.x0, q.x0 + w))
            a = q.alpha[..., None]
            img[win] = img[win] * (1.0 - a) + q.rgb * a
            solid = q.alpha > 0.5
            depth[win] = np.where(solid, np.minimum(depth[win], q.depth), depth[win])
            for k, cls in enumerate(q.classes, 1):
                m = np.zeros((H, W), bool)
                m[win] = solid & (q.ids == k)
                for earlier, _ in masks:
                    earlier &= ~m
                masks.append((m, cls))
            covered[win] |= solid
        out = torch.from_numpy(np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)).permute(2, 0, 1).contiguous()
        return out, _updated_target(target, masks, covered), depth, len(placed)

    def _place(self, cam: Camera, real_boxes: np.ndarray, rng: np.random.Generator) -> list[_Placed]:
        """The actors of one image, each drawn at a visible ground spot within its distances
        whose sprite does not reach over a real object standing nearer."""
        _, dist = _ground(cam)
        H, W = dist.shape
        placed: list[_Placed] = []
        for spec in self.scenario.events + self.scenario.traffic:
            names = resolve_asset_names(spec.asset)
            for _ in range(int(rng.integers(spec.count_range[0], spec.count_range[1] + 1))):
                q = self._place_one(cam, spec, names, dist, real_boxes, placed, rng, H, W)
                if q is not None:
                    placed.append(q)
        return placed

    def _place_one(self, cam: Camera, spec: ActorSpec, names: list[str], dist: np.ndarray, real_boxes: np.ndarray,
                   placed: list[_Placed], rng: np.random.Generator, H: int, W: int) -> _Placed | None:
        lo, hi = spec.distance_m_range
        ok = (dist >= lo) & (dist <= hi)
        allowed = self._maps(H, W)[0]
        cand = np.flatnonzero(ok if allowed is None else ok & allowed)
        for _ in range(MAX_TRIES):
            name = names[int(rng.integers(len(names)))]
            look = int(rng.integers(len(self.bank.sprites[name])))
            heading = math.radians(float(rng.uniform(*spec.heading_deg_range)))
            blend = self.blends[int(rng.integers(len(self.blends)))]
            if not len(cand):
                return None
            v, u = divmod(int(cand[int(rng.integers(len(cand)))]), W)
            spot = _ground_point(cam, u + float(rng.random()), v + float(rng.random()))
            if spot is None:
                continue
            q = self._draw(cam, name, look, spot, heading, blend)
            if q is None:
                continue
            h, w = q.alpha.shape
            foot_v = q.y0 + h  # the sprite's lowest row: where the actor meets the ground
            box = (q.x0, q.y0, q.x0 + w, q.y0 + h)
            if any(_overlap(box, tuple(b)) and b[3] > foot_v for b in real_boxes):
                continue  # a real object stands nearer and would have to cover it
            if any(_overlap(box, (o.x0, o.y0, o.x0 + o.alpha.shape[1], o.y0 + o.alpha.shape[0])) > 0.5
                   for o in placed):
                continue  # two inserted actors on one spot
            return q
        return None

    def _draw(self, cam: Camera, name: str, look: int, spot: tuple[float, float], yaw: float,
              blend: int) -> _Placed | None:
        """The sprite of ``name``'s ``look`` standing at ``spot`` (world x, y) facing ``yaw``,
        scaled, lit and blended for ``cam``'s image; None if it falls outside."""
        x, y = spot
        c = cam.position
        horizontal = math.hypot(x - c[0], y - c[1])
        elevation = math.atan2(c[2], horizontal)
        toward = math.atan2(c[1] - y, c[0] - x)
        sprite = self.bank.get(name, look, elevation, yaw - toward + math.pi)
        uv, z = cam.project(np.array([[x, y, 0.0]]))
        if z[0] <= cam.near:
            return None
        scale = cam.fy / float(z[0]) / sprite.px_per_m
        h, w = sprite.ids.shape
        sh, sw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        y0 = int(round(float(uv[0, 1]) - sprite.foot[1] * scale))
        x0 = int(round(float(uv[0, 0]) - sprite.foot[0] * scale))
        if y0 >= cam.height or x0 >= cam.width or y0 + sh <= 0 or x0 + sw <= 0 or sh < 4:
            return None
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(sprite.rgb, (sw, sh), interpolation=interp)
        # each actor's coverage resized alike, so every pixel the composite shows as solid has an id
        cover = np.stack([cv2.resize((sprite.ids == k).astype(np.float32), (sw, sh), interpolation=interp)
                          for k in range(1, len(sprite.classes) + 1)]).reshape(len(sprite.classes), sh, sw)
        alpha = np.minimum(cover.sum(0), 1.0)
        ids = np.where(alpha > 0.5, cover.argmax(0) + 1, 0).astype(np.uint8)
        depth = cv2.resize(sprite.depth, (sw, sh), interpolation=cv2.INTER_NEAREST) + float(z[0])
        if blend == 0:  # hard: every pixel the actor or the image
            alpha = (alpha > 0.5).astype(np.float32)
        elif blend == 1:  # feathered: the alpha's edge softened
            alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8)
        elif blend == 2:  # blurred: the whole actor a touch out of focus
            rgb = cv2.GaussianBlur(rgb, (0, 0), 0.6)
            alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)
        # clip to the image
        cy0, cx0 = max(0, -y0), max(0, -x0)
        cy1, cx1 = min(sh, cam.height - y0), min(sw, cam.width - x0)
        if cy1 - cy0 < 2 or cx1 - cx0 < 2:
            return None
        actor = Actor(id=1, asset=name, cls=sprite.classes[0], size=sprite.size, position=(x, y, 0.0), yaw=yaw,
                      color=(0.5, 0.5, 0.5))
        return _Placed(y0=y0 + cy0, x0=x0 + cx0, alpha=alpha[cy0:cy1, cx0:cx1], ids=ids[cy0:cy1, cx0:cx1],
                       rgb=rgb[cy0:cy1, cx0:cx1], depth=depth[cy0:cy1, cx0:cx1], z=float(z[0]),
                       classes=sprite.classes, actor=actor)

    def _maps(self, H: int, W: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The plate's (H, W) allowed ground (its regions, less its occluders) and occluder depth
        at an image's size (nearest-neighbour from the plate's), or None where there is no plate."""
        if self.plate is None:
            return None, None
        if (H, W) not in self._plate_maps:
            pl = self.plate

            def fit(a: np.ndarray) -> np.ndarray:
                if a.shape[:2] == (H, W):
                    return a
                return cv2.resize(a.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)

            allowed = np.ones(pl.depth.shape, bool) if pl.regions is None else pl.regions.copy()
            if pl.occluders is not None:
                allowed &= ~pl.occluders
            occ = None if pl.occluders is None else fit(pl.occluder_depth).astype(np.float32)
            self._plate_maps[(H, W)] = (fit(allowed) > 0.5, occ)
        return self._plate_maps[(H, W)]

    def describe(self) -> dict:
        return {"scenario": self.scenario.name, "p": self.p, "bank": self.bank.describe(),
                "prior": "plate camera" if self.prior.camera is not None else "level car camera",
                "plate": "regions and occluders" if self.plate is not None else None}


def match_light(placed: list[_Placed], img: np.ndarray) -> None:
    """Scale each placed actor's colour (in place) towards the light of the image around it."""
    H, W = img.shape[:2]
    for q in placed:
        h, w = q.alpha.shape
        y0, y1 = max(q.y0 - WINDOW_PX, 0), min(q.y0 + h + WINDOW_PX, H)
        x0, x1 = max(q.x0 - WINDOW_PX, 0), min(q.x0 + w + WINDOW_PX, W)
        around = img[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        luma = float(around @ LUMA)
        gain = float(np.clip(luma / REFERENCE_LUMA, *GAIN_LIMITS))
        cast = around / max(luma, 1e-3)
        q.rgb = np.clip(q.rgb * (gain * (0.6 + 0.4 * cast)), 0.0, 1.0).astype(np.float32)


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection of boxes a and b (x0, y0, x1, y1) over the area of a."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return float(iw * ih) / max(float((a[2] - a[0]) * (a[3] - a[1])), 1e-9)


def _updated_target(target: dict, masks: list[tuple[np.ndarray, str]], covered: np.ndarray) -> dict:
    """The target with the inserted actors' exact boxes appended and the real boxes' coverage:
    ``occlusion`` for every box, ignore regions for real objects mostly covered."""
    boxes = target["boxes"].numpy().astype(np.float32)
    iscrowd = target["iscrowd"].numpy().copy()
    occlusion = np.zeros(len(boxes), np.float32)
    H, W = covered.shape
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        c0, r0 = int(max(0, math.floor(x0))), int(max(0, math.floor(y0)))
        c1, r1 = int(min(W, math.ceil(x1))), int(min(H, math.ceil(y1)))
        if c1 > c0 and r1 > r0:
            occlusion[i] = float(covered[r0:r1, c0:c1].mean())
    iscrowd[occlusion > COVERED_IGNORE] = 1
    new_boxes, new_labels, new_area = [], [], []
    for m, cls in masks:
        if not m.any():
            continue
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        new_boxes.append([float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)])
        new_labels.append(get_class(cls).id)
        new_area.append(float(m.sum()))
    n = len(new_boxes)
    out = dict(target)
    out["boxes"] = torch.from_numpy(np.concatenate([boxes, np.asarray(new_boxes, np.float32).reshape(n, 4)]))
    out["labels"] = torch.cat([target["labels"], torch.tensor(new_labels, dtype=torch.int64)])
    out["iscrowd"] = torch.from_numpy(np.concatenate([iscrowd, np.zeros(n, iscrowd.dtype)]))
    out["area"] = torch.cat([target["area"], torch.tensor(new_area, dtype=torch.float32)])
    out["occlusion"] = torch.from_numpy(np.concatenate([occlusion, np.zeros(n, np.float32)]))
    out["inserted"] = torch.from_numpy(np.concatenate([np.zeros(len(boxes), bool), np.ones(n, bool)]))
    if "difficulty" in target:
        out["difficulty"] = list(target["difficulty"]) + [None] * n
    return out
