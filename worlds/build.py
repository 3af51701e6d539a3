"""Building a PyBullet world from a concrete Scene.

``build(scene, client)`` creates one or more bodies per actor and per static semantic class and
returns a ``World`` that maps PyBullet body ids to instance ids and semantic ids, which is all the
renderer needs to turn PyBullet's segmentation buffer into label buffers.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import repeat
from typing import Sequence

import numpy as np
from longtail._pybullet import p

from longtail.classes import get_class
from longtail.worlds.assets import Part, asset_parts, box
from longtail.worlds.layouts import SURFACE_BASE, Labelled, part_radius, static_world
from longtail.worlds.scene import Actor, Camera, Distractor, Scene, vec3

MAX_SHAPES_PER_ARRAY = 16  # PyBullet 3.2.7 crashes on larger visual shape arrays
MESH_SEGMENTS = 10
NO_SPECULAR = [0.05, 0.05, 0.05]


RGBA = tuple[float, float, float, float]


@dataclass
class World:
    """Body id -> labels for one built scene. ``instance_of``/``semantic_of`` are lookup arrays
    indexed by body id + 1 (so PyBullet's background value -1 maps to index 0). ``colours``: every
    body (in the order built) -> for its base and then each link, the colour of each visual
    shape, so a renderer can hide bodies and show them again exactly as built; ``actor_bodies``:
    actor id -> its bodies."""

    instance_of: np.ndarray
    semantic_of: np.ndarray
    lamps: list[tuple[float, float, float]] = field(default_factory=list)
    colours: dict[int, list[tuple[RGBA, ...]]] = field(default_factory=dict)
    actor_bodies: dict[int, list[int]] = field(default_factory=dict)


def _quat(rpy) -> list[float]:
    return list(p.getQuaternionFromEuler(rpy))


def _rotation(rpy) -> np.ndarray:
    return np.asarray(p.getMatrixFromQuaternion(p.getQuaternionFromEuler(rpy))).reshape(3, 3)


def _grid_indices(rows: int, cols: int, offset: int = 0) -> np.ndarray:
    """Two counter-clockwise triangles per cell of a (rows+1) x (cols+1) vertex grid."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = i * (cols + 1) + j
    b, c, d = a + 1, a + cols + 2, a + cols + 1
    return (np.stack([np.stack([a, b, c], -1), np.stack([a, c, d], -1)], 2).reshape(-1) + offset).astype(np.int64)


def _cap(r: float, z: float, n: int, up: bool, offset: int):
    ang = np.linspace(0.0, 2.0 * np.pi, n + 1)
    v = np.concatenate([[[0.0, 0.0, z]], np.stack([r * np.cos(ang), r * np.sin(ang), np.full(n + 1, z)], 1)])
    nrm = np.tile([0.0, 0.0, 1.0 if up else -1.0], (n + 2, 1))
    j = np.arange(n) + 1
    tri = np.stack([np.zeros(n, int), j, j + 1] if up else [np.zeros(n, int), j + 1, j], 1)
    return v, nrm, tri.reshape(-1) + offset


def _round_mesh(shape: str, dims: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth-shaded indexed mesh (vertices, normals, indices) of a sphere, cylinder or frustum
    centred at the origin, axis z: a cached unit mesh, scaled (radial normals are unchanged by a
    uniform x/y scale, and frustum meshes are cached per taper)."""
    if shape == "sphere":
        v, nrm, idx = _unit_round_mesh("sphere", 1.0)
        return v * dims[0], nrm, idx
    if shape == "cylinder":
        v, nrm, idx = _unit_round_mesh("cylinder", 1.0)
        return v * np.array([dims[0], dims[0], dims[1]]), nrm, idx
    r0, r1, h = dims
    v, nrm, idx = _unit_round_mesh("frustum", round(r1 / r0, 3), round(h / r0, 3))
    return v * r0, nrm, idx


@lru_cache(maxsize=256)
def _unit_round_mesh(shape: str, taper: float, height: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit sphere (radius 1), unit cylinder (radius 1, length 1) or frustum (bottom radius 1,
    top radius ``taper``, length ``height``)."""
    n = MESH_SEGMENTS
    if shape == "sphere":
        lon = np.linspace(0.0, 2.0 * np.pi, n + 1)
        lat = np.linspace(-np.pi / 2, np.pi / 2, n // 2 + 1)
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        nrm = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1).reshape(-1, 3)
        return nrm * 1.0, nrm, _grid_indices(len(lat) - 1, n)  # radius 1: vertices = normals
    r1, h = (1.0, 1.0) if shape == "cylinder" else (taper, height)
    return _ring_mesh(r1, h)


@lru_cache(maxsize=1)
def _ring() -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the MESH_SEGMENTS + 1 angles round a ring (the first repeated at 2 pi)."""
    lon = np.linspace(0.0, 2.0 * np.pi, MESH_SEGMENTS + 1)
    return np.cos(lon), np.sin(lon)


@lru_cache(maxsize=2)
def _ring_indices(top_cap: bool) -> np.ndarray:
    """Triangles of a ``_ring_mesh``: the side, the top cap (if any), the bottom cap."""
    n = MESH_SEGMENTS
    idx, count = [_grid_indices(1, n)], 2 * (n + 1)
    for up in (True, False) if top_cap else (False,):
        idx.append(_cap(1.0, 0.0, n, up, count)[2])
        count += n + 2
    return np.concatenate(idx)


def _ring_mesh(r1: float, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frustum of bottom radius 1, top radius r1 and length h along z, centred: two rings with
    slanted smooth normals, a top cap (if r1 > 0) and a bottom cap, each value computed as
    stacking the rings and ``_cap`` compute it (so the same floats), into preallocated arrays."""
    m = MESH_SEGMENTS + 1
    cos, sin = _ring()
    v = np.empty((2 * m + (2 * (m + 1) if r1 > 0 else m + 1), 3))
    nrm = np.zeros_like(v)
    v[:m, 0], v[:m, 1], v[:m, 2] = 1.0 * cos, 1.0 * sin, -h / 2  # bottom ring, radius 1
    v[m:2 * m, 0], v[m:2 * m, 1], v[m:2 * m, 2] = r1 * cos, r1 * sin, h / 2
    slope = (1.0 - r1) / h
    k = math.sqrt(1 + slope * slope)
    nrm[:m, 0], nrm[:m, 1], nrm[:m, 2] = cos / k, sin / k, np.full(m, slope) / k
    nrm[m:2 * m] = nrm[:m]
    at = 2 * m
    for rad, zc, up in ((r1, h / 2, True), (1.0, -h / 2, False)):
        if rad > 0:  # a cap: its centre, then its rim
            v[at] = (0.0, 0.0, zc)
            v[at + 1:at + 1 + m, 0], v[at + 1:at + 1 + m, 1], v[at + 1:at + 1 + m, 2] = rad * cos, rad * sin, zc
            nrm[at:at + 1 + m, 2] = 1.0 if up else -1.0
            at += m + 1
    return v, nrm, _ring_indices(r1 > 0)


class _PooledLists:
    """Python lists handed to ``p.createVisualShape``, reused from call to call.

    PyBullet 3.2.7's createVisualShape keeps two references to the ``vertices``, ``normals`` and
    ``indices`` lists it is given and to every row of ``vertices`` and ``normals`` (it never
    releases what ``PySequence_Fast`` / ``PySequence_GetItem`` return), so fresh lists from
    ``ndarray.tolist()`` stay alive forever: ~9 MB a frame for a crowd of 20-part people. Filling
    the same list objects in place each call leaks nothing: the stray references all point at
    these few objects. (tests/test_memory.py checks that the count of live objects stays flat.)
    The pool is per process, as the leak is; calls are serialised by a lock.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[list[float]] = []
        self.vertices: list[list[float]] = []
        self.normals: list[list[float]] = []
        self.indices: list[int] = []

    def _fill(self, outer: list, start: int, arr: np.ndarray) -> None:
        n = len(arr)
        while len(self.rows) < start + n:
            self.rows.append([0.0, 0.0, 0.0])
        rows = self.rows[start:start + n]
        deque(map(list.__setitem__, rows, repeat(slice(None)), arr.tolist()), maxlen=0)  # row[:] = values
        outer[:] = rows

    def create(self, client: int, verts: np.ndarray, norms: np.ndarray, idx: np.ndarray, rgba) -> int:
        with self.lock:
            self._fill(self.vertices, 0, verts)
            self._fill(self.normals, len(verts), norms)
            self.indices[:] = idx.tolist()
            return p.createVisualShape(p.GEOM_MESH, vertices=self.vertices, indices=self.indices,
                                       normals=self.normals, rgbaColor=list(rgba), specularColor=NO_SPECULAR,
                                       physicsClientId=client)


_POOL = _PooledLists()


def _mesh_shape(client: int, verts: np.ndarray, norms: np.ndarray, idx: np.ndarray, rgba) -> int:
    """A visual mesh shape (vertices, normals: (N, 3) float; idx: (M,) int triangle corners)."""
    return _POOL.create(client, verts, norms, idx, rgba)


def _rgba(pt: Part) -> RGBA:
    r, g, b, a = pt.rgba
    return r, g, b, a


def primitive(pt: Part, enclosing: bool = False) -> tuple[int, list[float], float, float]:
    """PyBullet primitive (type, half extents, radius, length) for a part; frusta (cones) as
    cylinders of their mean radius, or with ``enclosing`` of their larger one (collisions)."""
    if pt.shape == "box":
        return p.GEOM_BOX, list(pt.dims), 0.0, 0.0
    if pt.shape == "sphere":
        return p.GEOM_SPHERE, [0.0] * 3, pt.dims[0], 0.0
    if pt.shape == "cylinder":
        return p.GEOM_CYLINDER, [0.0] * 3, pt.dims[0], pt.dims[1]
    r0, r1 = pt.dims[0], pt.dims[1]
    return p.GEOM_CYLINDER, [0.0] * 3, max(r0, r1) if enclosing else (r0 + r1) / 2, pt.dims[2]


def _visual_shapes(client: int, parts: list[Part], meshes: bool = True) -> list[tuple[int, tuple[RGBA, ...]]]:
    """Visual shapes for ``parts`` (given in the frame of the body that will hold them), each
    with the colours of its shapes (in shape order).

    Boxes go into visual shape arrays (cheap: a few numbers each); round parts of one colour are
    merged into one indexed mesh, since PyBullet's own spheres and cylinders are slow to create.
    ``meshes=False`` uses PyBullet's primitives for round parts too (the EGL renderer cannot
    draw meshes given as vertex lists).
    """
    shapes = []
    natives = [pt for pt in parts if pt.shape == "box" or not meshes]
    for k in range(0, len(natives), MAX_SHAPES_PER_ARRAY):
        chunk = natives[k:k + MAX_SHAPES_PER_ARRAY]
        types, halves, radii, lengths = zip(*map(primitive, chunk))
        vs = p.createVisualShapeArray(
            shapeTypes=list(types),
            halfExtents=list(halves),
            radii=list(radii),
            lengths=list(lengths),
            visualFramePositions=[list(pt.pos) for pt in chunk],
            visualFrameOrientations=[_quat(pt.rpy) for pt in chunk],
            rgbaColors=[list(pt.rgba) for pt in chunk],
            physicsClientId=client,
        )
        shapes.append((vs, tuple(_rgba(pt) for pt in chunk)))
    by_colour: dict[tuple, list] = {}
    for pt in parts:
        if pt.shape == "box" or not meshes:
            continue
        v, nrm, idx = _round_mesh(pt.shape, vec3(pt.dims))
        if pt.rpy != (0.0, 0.0, 0.0):
            R = _rotation(pt.rpy)
            v, nrm = v @ R.T, nrm @ R.T
        by_colour.setdefault(tuple(pt.rgba), []).append((v + np.asarray(pt.pos), nrm, idx))
    for rgba, items in by_colour.items():
        offsets = np.cumsum([0] + [len(v) for v, _, _ in items[:-1]])
        verts = np.concatenate([v for v, _, _ in items])
        norms = np.concatenate([nn for _, nn, _ in items])
        idx = np.concatenate([i + o for (_, _, i), o in zip(items, offsets)])
        shapes.append((_mesh_shape(client, verts, norms, idx, rgba), (rgba,)))
    return shapes


MAX_LINKS = 64  # PyBullet 3.2.7 silently drops links past 127


def _bodies_from_parts(client: int, parts: list[Part], base_pos, base_yaw: float,
                       meshes: bool = True) -> list[tuple[int, list[tuple[RGBA, ...]]]]:
    """Bodies for ``parts`` given in a local frame placed at base_pos / base_yaw, each with the
    colours of its visual shapes: those of its base, then of each link.

    The visual shapes (``_visual_shapes``) go on as few bodies as possible: the first on the
    body's base, the others on fixed links that sit exactly on the base. A body costs PyBullet
    about twice what a link does, and the tiny renderer draws a body's base, then its links in
    order: the same order, so the same pixels, as one body per shape.
    """
    shapes = _visual_shapes(client, parts, meshes)
    orn = _quat((0.0, 0.0, base_yaw))
    bodies = []
    for k in range(0, len(shapes), MAX_LINKS + 1):
        (base, base_cols), *links = shapes[k:k + MAX_LINKS + 1]
        n = len(links)
        body = p.createMultiBody(
            0, -1, base, list(base_pos), orn, linkMasses=[0.0] * n, linkCollisionShapeIndices=[-1] * n,
            linkVisualShapeIndices=[vs for vs, _ in links], linkPositions=[[0.0, 0.0, 0.0]] * n,
            linkOrientations=[[0.0, 0.0, 0.0, 1.0]] * n, linkInertialFramePositions=[[0.0, 0.0, 0.0]] * n,
            linkInertialFrameOrientations=[[0.0, 0.0, 0.0, 1.0]] * n, linkParentIndices=[0] * n,
            linkJointTypes=[p.JOINT_FIXED] * n, linkJointAxis=[[0.0, 0.0, 1.0]] * n, physicsClientId=client)
        bodies.append((body, [base_cols] + [cols for _, cols in links]))
    return bodies


def _actor_bodies(actor: Actor, client: int, meshes: bool = True) -> list[tuple[int, list[tuple[RGBA, ...]]]]:
    parts = asset_parts(actor.asset, actor.size, actor.color, actor.variant)
    return _bodies_from_parts(client, parts, actor.position, actor.yaw, meshes)


def build_actor(actor: Actor, client: int, meshes: bool = True) -> list[int]:
    """Bodies of one actor (used for the full world and for rendering an actor alone). Their
    links draw with their body's id in the segmentation buffer."""
    return [b for b, _ in _actor_bodies(actor, client, meshes)]


def pose_actors(client: int, world: World, actors) -> None:
    """Move the built ``actors``' bodies to the actors' current poses (a later step of the same
    run: the same looks, moved). PyBullet then holds exactly what ``build`` would make of them."""
    for actor in actors:
        orn = _quat((0.0, 0.0, actor.yaw))
        for b in world.actor_bodies.get(actor.id, []):
            p.resetBasePositionAndOrientation(b, list(actor.position), orn, physicsClientId=client)


DISTRACTOR_CLASS = "static"  # Cityscapes' void class for static things that are no class of their own


def _luma(rgb) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def recolor(cls: str, rgba, target, keep: frozenset = frozenset()) -> RGBA:
    """A static part's colour when its class's main surface takes the colour ``target``: the
    target scaled by the part's brightness relative to the class's base colour (so markings stay
    lighter than asphalt and windows darker than facades). Colours in ``keep`` (lights the
    renderer finds by their exact colour) stay as they are."""
    if tuple(rgba[:3]) in keep or cls not in SURFACE_BASE:
        return tuple(rgba)
    k = _luma(rgba) / max(_luma(SURFACE_BASE[cls]), 1e-3)
    r, g, b = (float(min(1.0, c * k)) for c in target)
    return r, g, b, float(rgba[3])


def distractor_part(d: Distractor) -> Part:
    """The primitive of a distractor, in world coordinates."""
    rgba = (*d.color, 1.0)
    x, y, z = d.position
    l, w, h = d.size
    if d.shape == "box":
        return box(x, y, z, l, w, h, rgba, yaw=d.yaw)
    if d.shape == "cylinder":
        return Part("cylinder", (l / 2, h, 0.0), (x, y, z + h / 2), rgba, (0.0, 0.0, d.yaw))
    return Part("sphere", (l / 2, 0.0, 0.0), (x, y, z + l / 2), rgba)


def static_parts(scene: Scene, keep: frozenset = frozenset()) -> Labelled:
    """The scene's static parts as drawn: the layout's, recoloured by the frame's randomisation,
    then its distractors (class "static"). Without randomisation, the layout's parts as they are."""
    parts = static_world(scene.layout).parts
    rz = scene.randomization
    if rz is None:
        return parts
    out = [(cls, replace(pt, rgba=recolor(cls, pt.rgba, rz.surfaces[cls], keep)) if cls in rz.surfaces else pt)
           for cls, pt in parts]
    return out + [(DISTRACTOR_CLASS, distractor_part(d)) for d in rz.distractors]


VIEW_MARGIN_PX = 2.0  # a part is left out only if it lies this far outside the image, or more
_CORNERS = np.array([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)])


def _hulls(parts: list[Part]) -> np.ndarray:
    """(N, 8, 3) corners of a box around each part: a box part's own corners, a round part's
    axis-aligned cube round its enclosing sphere (``part_radius``, which also holds the cylinder
    of the larger radius that stands for a frustum where meshes are not used)."""
    pos = np.array([pt.pos for pt in parts], float).reshape(-1, 3)
    dims = np.array([pt.dims for pt in parts], float).reshape(-1, 3)
    rpy = np.array([pt.rpy for pt in parts], float).reshape(-1, 3)
    cr, sr, cp, sp, cy, sy = (f(a) for a in (rpy[:, 0], rpy[:, 1], rpy[:, 2]) for f in (np.cos, np.sin))
    R = np.stack([np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
                  np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
                  np.stack([-sp, cp * sr, cp * cr], -1)], 1)  # (N, 3, 3): Rz(yaw) Ry(pitch) Rx(roll)
    out = pos[:, None, :] + np.einsum("nij,nkj->nki", R, _CORNERS[None, :, :] * dims[:, None, :])
    round_ = np.array([pt.shape != "box" for pt in parts], bool)
    if round_.any():
        r = np.array([part_radius(pt) for pt in parts if pt.shape != "box"])
        out[round_] = pos[round_, None, :] + r[:, None, None] * _CORNERS[None, :, :]
    return out


def in_view(parts: list[Part], cameras: Camera | Sequence[Camera], margin_px: float = VIEW_MARGIN_PX) -> np.ndarray:
    """(N,) bool: False for a part that cannot put a pixel in any of ``cameras``' images: a box
    round it lies wholly behind a camera's near plane or wholly beyond one edge of its image (by
    ``margin_px``). Renderers clip such a part away (PyBullet's tiny renderer drops triangles
    behind the near plane and draws only inside the image), so leaving it out of the world
    changes no pixel."""
    cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
    seen = np.zeros(len(parts), bool)
    if not parts:
        return seen
    hulls = _hulls(parts)
    m = margin_px
    for camera in cams:
        T = camera.camera_from_world()
        pc = hulls @ T[:3, :3].T + T[:3, 3]  # camera frame: x right, y down, z forward
        x, y, z = pc[..., 0], pc[..., 1], pc[..., 2]
        # each edge of the image (widened by m) bounds a half-space through the eye that holds
        # the whole view: u = fx x / z + cx >= -m is fx x + (cx + m) z >= 0, and so on
        outside = ((z < camera.near).all(1)
                   | (camera.fx * x + (camera.cx + m) * z < 0).all(1)
                   | (camera.fx * x + (camera.cx - camera.width - m) * z > 0).all(1)
                   | (camera.fy * y + (camera.cy + m) * z < 0).all(1)
                   | (camera.fy * y + (camera.cy - camera.height - m) * z > 0).all(1))
        seen |= ~outside
    return seen


def static_in_view(scene: Scene, cameras: Camera | Sequence[Camera] | None = None) -> np.ndarray:
    """``in_view`` of each of the scene's static parts (``static_parts``' order) for ``cameras``
    (default the scene's own)."""
    geometry = [pt for _, pt in static_world(scene.layout).parts]
    if scene.randomization is not None:
        geometry += [distractor_part(d) for d in scene.randomization.distractors]
    return in_view(geometry, scene.camera if cameras is None else cameras)


def build(scene: Scene, client: int, meshes: bool = True, keep: frozenset = frozenset(),
          shown: np.ndarray | None = None) -> World:
    """Make the PyBullet world of ``scene`` in ``client`` (which must be empty); ``meshes``:
    round parts as vertex meshes (fast, tiny renderer) or PyBullet primitives (EGL). ``keep``:
    colours a randomised frame never changes (``recolor``). ``shown``: one bool per static part
    (``static_in_view``): the parts to build, the others left out (the classes keep their order)."""
    semantic: dict[int, int] = {}
    instance: dict[int, int] = {}
    by_class: dict[str, list[Part]] = {}
    static = static_world(scene.layout)
    labelled = static_parts(scene, keep)
    for k, (cls, part) in enumerate(labelled):
        parts = by_class.setdefault(cls, [])
        if shown is None or shown[k]:
            parts.append(part)
    colours: dict[int, list[tuple[RGBA, ...]]] = {}
    actor_bodies: dict[int, list[int]] = {}
    for cls, parts in by_class.items():
        sid = get_class(cls).id
        for b, cols in _bodies_from_parts(client, parts, (0.0, 0.0, 0.0), 0.0, meshes):
            semantic[b] = sid
            colours[b] = cols
    for actor in scene.actors:
        sid = get_class(actor.cls).id
        for b, cols in _actor_bodies(actor, client, meshes):
            semantic[b] = sid
            instance[b] = actor.id
            colours[b] = cols
            actor_bodies.setdefault(actor.id, []).append(b)
    n = max(semantic, default=-1) + 2
    inst = np.zeros(n, np.uint16)
    sem = np.zeros(n, np.uint8)
    sem[0] = get_class("sky").id
    for b, s in semantic.items():
        sem[b + 1] = s
    for b, i in instance.items():
        inst[b + 1] = i
    return World(instance_of=inst, semantic_of=sem, lamps=static.lamps, colours=colours, actor_bodies=actor_bodies)
