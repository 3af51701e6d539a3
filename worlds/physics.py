"""Physics for plausible placement: PyBullet collision queries and a short settle.

``Physics`` owns one DIRECT client (a context manager, like ``render.Renderer``). For each frame
``begin(static)`` indexes the static world; ``check(actor)`` drops a candidate actor's collision
box onto the ground, lets it settle and reports why it is implausible (interpenetrating a static
prop or another actor, floating, tipping over), or returns the settled actor. Only static parts
near a candidate get collision shapes, so the check stays cheap on large worlds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail._pybullet import p
from longtail.worlds.assets import Part
from longtail.worlds.build import primitive
from longtail.worlds.layouts import Static, part_radius
from longtail.worlds.scene import Actor

PENETRATION_TOL_M = 0.02  # deeper contact than this is interpenetration
SHRINK_M = 0.01  # collision boxes are this much smaller than the 3D box on every side
SETTLE_STEPS = 24
SETTLE_DT = 1.0 / 120.0
MAX_SETTLE_DROP_M = 0.08  # an actor that falls further was floating
MAX_TILT_RAD = math.radians(8.0)
PANE_M = 0.035  # a static box thinner than this (half) across x or y is a pane, not an obstacle
PAINT_M = 0.01  # ... or this thin vertically: paint on the road


def _paint_thin(pt) -> bool:
    hx, hy, hz = pt.dims
    return pt.shape == "box" and (hx < PANE_M or hy < PANE_M or hz < PAINT_M)


@dataclass(frozen=True)
class Verdict:
    actor: Actor | None  # the settled actor, or None if rejected
    problem: str | None = None


def _collision_shape(client: int, pt: Part) -> int:
    kind, half, radius, length = primitive(pt, enclosing=True)
    return p.createCollisionShape(kind, halfExtents=half, radius=radius, height=length, physicsClientId=client)


class Physics:
    """Collision world for placement checks. Use as a context manager."""

    def __init__(self):
        self.client = -1

    def __enter__(self) -> "Physics":
        self.client = p.connect(p.DIRECT)
        return self

    def __exit__(self, *exc) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
        self.client = -1

    def begin(self, static: Static) -> None:
        """Start a frame: forget previous bodies and index the static parts."""
        if self.client < 0:
            raise RuntimeError("Physics is not open: use `with Physics() as ph:`")
        p.resetSimulation(physicsClientId=self.client)
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        p.setTimeStep(SETTLE_DT, physicsClientId=self.client)
        # paint-thin parts (lane markings, window panes, sign plates) cannot hold anything up or
        # be walked into in a way that matters; leaving them out saves most collision bodies
        self._parts = [(c, pt) for c, pt in static.parts if not _paint_thin(pt)]
        self._parts += [("ground", pt) for pt in static.support]
        self._centres = np.array([pt.pos for _, pt in self._parts], float).reshape(-1, 3)
        self._radii = np.array([part_radius(pt) for _, pt in self._parts], float)
        self._bodies: dict[int, int] = {}  # part index -> body
        self._owner: dict[int, str] = {}  # body -> what it is, for messages
        self._actors: dict[int, int] = {}  # actor id -> body

    def _near(self, centre: np.ndarray, radius: float) -> list[int]:
        if not len(self._parts):
            return []
        d = np.linalg.norm(self._centres - centre, axis=1)
        return list(np.flatnonzero(d < self._radii + radius + 0.5))

    def _static_bodies(self, parts: list[int]) -> None:
        """Collision bodies for the static ``parts`` that have none yet: one body per class, its
        parts the children of one compound shape (a body costs PyBullet ~0.1 ms, most of a
        frame's placement time when every part near a candidate was a body of its own)."""
        by_class: dict[str, list[int]] = {}
        for i in parts:
            if i not in self._bodies:
                by_class.setdefault(self._parts[i][0], []).append(i)
        for cls, idx in by_class.items():
            if len(idx) == 1:
                pt = self._parts[idx[0]][1]
                shape = _collision_shape(self.client, pt)
                b = p.createMultiBody(0, shape, -1, list(pt.pos), p.getQuaternionFromEuler(pt.rpy),
                                      physicsClientId=self.client)
            else:
                kinds, halves, radii, lengths = zip(*(primitive(self._parts[i][1], enclosing=True) for i in idx))
                shape = p.createCollisionShapeArray(
                    shapeTypes=list(kinds), halfExtents=list(halves), radii=list(radii), lengths=list(lengths),
                    collisionFramePositions=[list(self._parts[i][1].pos) for i in idx],
                    collisionFrameOrientations=[p.getQuaternionFromEuler(self._parts[i][1].rpy) for i in idx],
                    physicsClientId=self.client)
                b = p.createMultiBody(0, shape, -1, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], physicsClientId=self.client)
            for i in idx:
                self._bodies[i] = b
            self._owner[b] = cls

    def _actor_body(self, actor: Actor, mass: float) -> int:
        l, w, h = actor.size
        half = [max(l / 2 - SHRINK_M, 0.01), max(w / 2 - SHRINK_M, 0.01), max(h / 2 - SHRINK_M, 0.01)]
        shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
        pos = [actor.position[0], actor.position[1], actor.position[2] + h / 2]
        return p.createMultiBody(mass, shape, -1, pos, p.getQuaternionFromEuler((0, 0, actor.yaw)),
                                 physicsClientId=self.client)

    def _penetrations(self, body: int, ignore: set[int]) -> list[str]:
        hits = []
        for other in list(self._owner):
            if other == body or other in ignore:
                continue
            pts = p.getClosestPoints(body, other, 0.0, physicsClientId=self.client)
            if any(c[8] < -PENETRATION_TOL_M for c in pts):
                hits.append(self._owner[other])
        return hits

    def check(self, actor: Actor) -> Verdict:
        """Settle ``actor`` on the static world and the accepted actors, or say why it cannot be."""
        l, w, h = actor.size
        centre = np.array([actor.position[0], actor.position[1], actor.position[2] + h / 2])
        self._static_bodies(self._near(centre, 0.5 * math.sqrt(l * l + w * w + h * h)))
        ignore = {self._actors[actor.parent]} if actor.parent in self._actors else set()
        # one body per candidate: probe for overlaps where it was put, then drop it and let it
        # settle, then freeze it (mass 0) as an obstacle for the actors placed after it
        body = self._actor_body(actor, 1.0)
        hits = self._penetrations(body, ignore)
        if hits:
            p.removeBody(body, physicsClientId=self.client)
            return Verdict(None, f"interpenetrates {hits[0]}")
        settled = actor
        if actor.parent is None:  # riders sit on their two-wheeler: no settling of their own
            for other in ignore:
                p.setCollisionFilterPair(body, other, -1, -1, 0, physicsClientId=self.client)
            start = [actor.position[0], actor.position[1], actor.position[2] + h / 2 + 0.01]
            p.resetBasePositionAndOrientation(body, start, p.getQuaternionFromEuler((0, 0, actor.yaw)),
                                              physicsClientId=self.client)
            for _ in range(SETTLE_STEPS):
                p.stepSimulation(physicsClientId=self.client)
            pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
            roll, pitch, _ = p.getEulerFromQuaternion(orn)
            bottom = pos[2] - h / 2
            problem = None
            if actor.position[2] - bottom > MAX_SETTLE_DROP_M:
                problem = f"floating: falls {actor.position[2] - bottom:.2f} m"
            elif abs(roll) > MAX_TILT_RAD or abs(pitch) > MAX_TILT_RAD:
                problem = "unstable: tips over"
            if problem:
                p.removeBody(body, physicsClientId=self.client)
                return Verdict(None, problem)
            if abs(bottom - actor.position[2]) > 0.01:  # else it rests where it was put (contact slop)
                settled = actor.model_copy(update={"position": (*actor.position[:2], round(bottom, 3))})
            p.resetBasePositionAndOrientation(body, [*settled.position[:2], settled.position[2] + h / 2],
                                              p.getQuaternionFromEuler((0, 0, actor.yaw)), physicsClientId=self.client)
        p.changeDynamics(body, -1, mass=0.0, physicsClientId=self.client)
        self._owner[body] = f"actor {actor.id} ({actor.asset})"
        self._actors[actor.id] = body
        return Verdict(settled)


def implausibilities(static: Static, actors, physics: Physics) -> list[str]:
    """Every problem of a concrete set of actors (e.g. a hand-made Scene), one line each."""
    physics.begin(static)
    out = []
    for a in actors:
        v = physics.check(a)
        if v.problem:
            out.append(f"actor {a.id} ({a.asset}): {v.problem}")
    return out
