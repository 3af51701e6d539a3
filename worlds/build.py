"""Building a PyBullet world from a concrete Scene.

``build(scene, client)`` creates one or more bodies per actor and per static semantic class and
returns a ``World`` that maps PyBullet body ids to instance ids and semantic ids, which is all the
renderer needs to turn PyBullet's segmentation buffer into label buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from longtail._pybullet import p

from longtail.labelers.classes import get_class
from longtail.worlds.assets import Part, asset_parts
from longtail.worlds.layouts import make_layout
from longtail.worlds.scene import Actor, Scene

MAX_SHAPES_PER_ARRAY = 16  # PyBullet 3.2.7 crashes on larger visual shape arrays
MESH_SEGMENTS = 12
NO_SPECULAR = [0.05, 0.05, 0.05]


@dataclass
class World:
    """Body id -> labels for one built scene. ``instance_of``/``semantic_of`` are lookup arrays
    indexed by body id + 1 (so PyBullet's background value -1 maps to index 0)."""

    instance_of: np.ndarray
    semantic_of: np.ndarray
    actor_bodies: dict[int, list[int]] = field(default_factory=dict)
    lamps: list[tuple[float, float, float]] = field(default_factory=list)


def _quat(rpy) -> list[float]:
    return list(p.getQuaternionFromEuler(rpy))


def _ring(r: float, z: float, n: int) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * np.pi, n + 1)
    return np.stack([r * np.cos(a), r * np.sin(a), np.full(n + 1, z)], 1)


def _triangles(shape: str, dims: tuple[float, float, float]) -> np.ndarray:
    """(T, 3, 3) counter-clockwise (outward) triangles of a round primitive about local z."""
    n = MESH_SEGMENTS
    if shape == "sphere":
        r = dims[0]
        lat = np.linspace(-np.pi / 2, np.pi / 2, n // 2 + 1)
        rings = [_ring(r * math.cos(t), r * math.sin(t), n) for t in lat]
        tris = []
        for i in range(len(rings) - 1):
            lo, hi = rings[i], rings[i + 1]
            if i > 0:
                tris.append(np.stack([lo[:-1], lo[1:], hi[1:]], 1))
            if i < len(rings) - 2:
                tris.append(np.stack([lo[:-1], hi[1:], hi[:-1]], 1))
        return np.concatenate(tris)
    r0, r1, h = (dims[0], dims[0], dims[1]) if shape == "cylinder" else dims
    bot, top = _ring(r0, -h / 2, n), _ring(r1, h / 2, n)
    ctop = np.broadcast_to([0.0, 0.0, h / 2], (n, 3))
    cbot = np.broadcast_to([0.0, 0.0, -h / 2], (n, 3))
    return np.concatenate([
        np.stack([bot[:-1], bot[1:], top[1:]], 1),
        np.stack([bot[:-1], top[1:], top[:-1]], 1),
        np.stack([ctop, top[:-1], top[1:]], 1),
        np.stack([cbot, bot[1:], bot[:-1]], 1),
    ])


@lru_cache(maxsize=512)
def _mesh(shape: str, dims: tuple[float, float, float]):
    """Flat-shaded low-poly mesh (vertices, indices, normals) for round primitives.

    PyBullet's own cylinders and spheres cost several times more to create than these.
    """
    tris = _triangles(shape, dims)
    nrm = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    ln = np.linalg.norm(nrm, axis=1)
    keep = ln > 1e-12
    tris, nrm = tris[keep], nrm[keep] / ln[keep, None]
    verts = tris.reshape(-1, 3)
    norms = np.repeat(nrm, 3, axis=0)
    return verts.tolist(), list(range(len(verts))), norms.tolist()


def _body_from_parts(client: int, parts: list[Part], base_pos, base_yaw: float) -> list[int]:
    """Create bodies for ``parts`` given in a local frame placed at base_pos / base_yaw."""
    bodies = []
    base_orn = _quat((0, 0, base_yaw))
    boxes = [pt for pt in parts if pt.shape == "box"]
    for k in range(0, len(boxes), MAX_SHAPES_PER_ARRAY):
        chunk = boxes[k:k + MAX_SHAPES_PER_ARRAY]
        vs = p.createVisualShapeArray(
            shapeTypes=[p.GEOM_BOX] * len(chunk),
            halfExtents=[list(pt.dims) for pt in chunk],
            visualFramePositions=[list(pt.pos) for pt in chunk],
            visualFrameOrientations=[_quat(pt.rpy) for pt in chunk],
            rgbaColors=[list(pt.rgba) for pt in chunk],
            physicsClientId=client,
        )
        bodies.append(p.createMultiBody(0, -1, vs, list(base_pos), base_orn, physicsClientId=client))
    c, s = math.cos(base_yaw), math.sin(base_yaw)
    for pt in parts:
        if pt.shape == "box":
            continue
        verts, idx, norms = _mesh(pt.shape, pt.dims)
        vs = p.createVisualShape(p.GEOM_MESH, vertices=verts, indices=idx, normals=norms, rgbaColor=list(pt.rgba),
                                 specularColor=NO_SPECULAR, physicsClientId=client)
        pos = (base_pos[0] + c * pt.pos[0] - s * pt.pos[1], base_pos[1] + s * pt.pos[0] + c * pt.pos[1], base_pos[2] + pt.pos[2])
        orn = p.multiplyTransforms([0, 0, 0], base_orn, [0, 0, 0], _quat(pt.rpy))[1]
        bodies.append(p.createMultiBody(0, -1, vs, list(pos), orn, physicsClientId=client))
    return bodies


def build_actor(actor: Actor, client: int) -> list[int]:
    """Bodies of one actor (used for the full world and for rendering an actor alone)."""
    parts = asset_parts(actor.asset, actor.size, actor.color, actor.variant)
    return _body_from_parts(client, parts, actor.position, actor.yaw)


def build(scene: Scene, client: int) -> World:
    """Make the PyBullet world of ``scene`` in ``client`` (which must be empty)."""
    semantic: dict[int, int] = {}
    instance: dict[int, int] = {}
    by_class: dict[str, list[Part]] = {}
    static = make_layout(scene.layout).static()
    for cls, part in static.parts:
        by_class.setdefault(cls, []).append(part)
    for cls, parts in by_class.items():
        sid = get_class(cls).id
        for b in _body_from_parts(client, parts, (0.0, 0.0, 0.0), 0.0):
            semantic[b] = sid
    actor_bodies = {}
    for actor in scene.actors:
        bodies = build_actor(actor, client)
        actor_bodies[actor.id] = bodies
        sid = get_class(actor.cls).id
        for b in bodies:
            semantic[b] = sid
            instance[b] = actor.id
    n = max(semantic) + 2
    inst = np.zeros(n, np.uint16)
    sem = np.zeros(n, np.uint8)
    sem[0] = get_class("sky").id
    for b, s in semantic.items():
        sem[b + 1] = s
    for b, i in instance.items():
        inst[b + 1] = i
    return World(instance_of=inst, semantic_of=sem, actor_bodies=actor_bodies, lamps=static.lamps)
