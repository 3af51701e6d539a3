"""Building a PyBullet world from a concrete Scene.

``build(scene, client)`` creates one or more bodies per actor and per static semantic class and
returns a ``World`` that maps PyBullet body ids to instance ids and semantic ids, which is all the
renderer needs to turn PyBullet's segmentation buffer into label buffers.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from longtail._pybullet import p

from longtail.classes import get_class
from longtail.worlds.assets import Part, asset_parts, box
from longtail.worlds.layouts import SURFACE_BASE, Labelled, static_world
from longtail.worlds.scene import Actor, Distractor, Scene, vec3

MAX_SHAPES_PER_ARRAY = 16  # PyBullet 3.2.7 crashes on larger visual shape arrays
MESH_SEGMENTS = 10
NO_SPECULAR = [0.05, 0.05, 0.05]


@dataclass
class World:
    """Body id -> labels for one built scene. ``instance_of``/``semantic_of`` are lookup arrays
    indexed by body id + 1 (so PyBullet's background value -1 maps to index 0)."""

    instance_of: np.ndarray
    semantic_of: np.ndarray
    lamps: list[tuple[float, float, float]] = field(default_factory=list)


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


@lru_cache(maxsize=64)
def _unit_round_mesh(shape: str, taper: float, height: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit sphere (radius 1), unit cylinder (radius 1, length 1) or frustum (bottom radius 1,
    top radius ``taper``, length ``height``)."""
    dims = (1.0, 0.0, 0.0) if shape == "sphere" else ((1.0, 1.0, 0.0) if shape == "cylinder" else (1.0, taper, height))
    n = MESH_SEGMENTS
    lon = np.linspace(0.0, 2.0 * np.pi, n + 1)
    if shape == "sphere":
        lat = np.linspace(-np.pi / 2, np.pi / 2, n // 2 + 1)
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        nrm = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1).reshape(-1, 3)
        return nrm * dims[0], nrm, _grid_indices(len(lat) - 1, n)
    r0, r1, h = (dims[0], dims[0], dims[1]) if shape == "cylinder" else dims
    z = np.array([-h / 2, h / 2])
    r = np.array([r0, r1])
    side = np.stack([np.outer(r, np.cos(lon)), np.outer(r, np.sin(lon)), np.repeat(z[:, None], n + 1, 1)], -1)
    slope = (r0 - r1) / h
    sn = np.stack([np.cos(lon), np.sin(lon), np.full(n + 1, slope)], -1) / math.sqrt(1 + slope * slope)
    verts, norms, idx = [side.reshape(-1, 3)], [np.tile(sn, (2, 1))], [_grid_indices(1, n)]
    count = 2 * (n + 1)
    for rad, zc, up in ((r1, h / 2, True), (r0, -h / 2, False)):
        if rad > 0:
            v, nn, t = _cap(rad, zc, n, up, count)
            verts.append(v)
            norms.append(nn)
            idx.append(t)
            count += len(v)
    return np.concatenate(verts), np.concatenate(norms), np.concatenate(idx)


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
        for row, values in zip(rows, arr.tolist()):
            row[:] = values
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


def _native(pt: Part) -> tuple[int, list[float], float, float]:
    """PyBullet primitive (type, half extents, radius, length) for a part; cones as cylinders."""
    if pt.shape == "box":
        return p.GEOM_BOX, list(pt.dims), 0.0, 0.0
    if pt.shape == "sphere":
        return p.GEOM_SPHERE, [0.0] * 3, pt.dims[0], 0.0
    if pt.shape == "cylinder":
        return p.GEOM_CYLINDER, [0.0] * 3, pt.dims[0], pt.dims[1]
    return p.GEOM_CYLINDER, [0.0] * 3, (pt.dims[0] + pt.dims[1]) / 2, pt.dims[2]


def _bodies_from_parts(client: int, parts: list[Part], base_pos, base_yaw: float, meshes: bool = True) -> list[int]:
    """Bodies for ``parts`` given in a local frame placed at base_pos / base_yaw.

    Boxes go into visual shape arrays (cheap: a few numbers each); round parts of one colour are
    merged into one indexed mesh, since PyBullet's own spheres and cylinders are slow to create.
    ``meshes=False`` uses PyBullet's primitives for round parts too (the EGL renderer cannot
    draw meshes given as vertex lists).
    """
    bodies = []
    orn = _quat((0.0, 0.0, base_yaw))
    natives = [pt for pt in parts if pt.shape == "box" or not meshes]
    for k in range(0, len(natives), MAX_SHAPES_PER_ARRAY):
        chunk = natives[k:k + MAX_SHAPES_PER_ARRAY]
        prims = [_native(pt) for pt in chunk]
        vs = p.createVisualShapeArray(
            shapeTypes=[t for t, _, _, _ in prims],
            halfExtents=[h for _, h, _, _ in prims],
            radii=[r for _, _, r, _ in prims],
            lengths=[ln for _, _, _, ln in prims],
            visualFramePositions=[list(pt.pos) for pt in chunk],
            visualFrameOrientations=[_quat(pt.rpy) for pt in chunk],
            rgbaColors=[list(pt.rgba) for pt in chunk],
            physicsClientId=client,
        )
        bodies.append(p.createMultiBody(0, -1, vs, list(base_pos), orn, physicsClientId=client))
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
        vs = _mesh_shape(client, verts, norms, idx, rgba)
        bodies.append(p.createMultiBody(0, -1, vs, list(base_pos), orn, physicsClientId=client))
    return bodies


def build_actor(actor: Actor, client: int, meshes: bool = True) -> list[int]:
    """Bodies of one actor (used for the full world and for rendering an actor alone)."""
    parts = asset_parts(actor.asset, actor.size, actor.color, actor.variant)
    return _bodies_from_parts(client, parts, actor.position, actor.yaw, meshes)


DISTRACTOR_CLASS = "static"  # Cityscapes' void class for static things that are no class of their own


def _luma(rgb) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def recolor(cls: str, rgba, target, keep: frozenset = frozenset()) -> tuple[float, float, float, float]:
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


def build(scene: Scene, client: int, meshes: bool = True, keep: frozenset = frozenset()) -> World:
    """Make the PyBullet world of ``scene`` in ``client`` (which must be empty); ``meshes``:
    round parts as vertex meshes (fast, tiny renderer) or PyBullet primitives (EGL). ``keep``:
    colours a randomised frame never changes (``recolor``)."""
    semantic: dict[int, int] = {}
    instance: dict[int, int] = {}
    by_class: dict[str, list[Part]] = {}
    static = static_world(scene.layout)
    for cls, part in static_parts(scene, keep):
        by_class.setdefault(cls, []).append(part)
    for cls, parts in by_class.items():
        sid = get_class(cls).id
        for b in _bodies_from_parts(client, parts, (0.0, 0.0, 0.0), 0.0, meshes):
            semantic[b] = sid
    for actor in scene.actors:
        bodies = build_actor(actor, client, meshes)
        sid = get_class(actor.cls).id
        for b in bodies:
            semantic[b] = sid
            instance[b] = actor.id
    n = max(semantic, default=-1) + 2
    inst = np.zeros(n, np.uint16)
    sem = np.zeros(n, np.uint8)
    sem[0] = get_class("sky").id
    for b, s in semantic.items():
        sem[b + 1] = s
    for b, i in instance.items():
        inst[b + 1] = i
    return World(instance_of=inst, semantic_of=sem, lamps=static.lamps)
