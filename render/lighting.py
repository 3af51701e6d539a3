"""Sun light for PyBullet's renderer by day, and deferred shading with artificial lights at night.

By day PyBullet's renderer shades with the sun (direction, colour, ambient, shadows). At night it
renders unlit albedo, and ``night_shading`` lights it from positions and normals recovered from the
depth buffer: the ego's headlights, street lamps and other vehicles' headlights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.render.camera import world_points
from longtail.worlds.scene import Camera, Scene

LIGHT_FACING_CLASSES = ("car", "truck", "bus", "motorcycle")


@dataclass(frozen=True)
class Light:
    """A point or spot light. ``direction`` None = omnidirectional; ``cos_cone`` is the cosine of
    the half-angle where a spot's intensity falls to zero. ``intensity`` is irradiance at 1 m."""

    position: tuple[float, float, float]
    color: tuple[float, float, float]
    intensity: float
    direction: tuple[float, float, float] | None = None
    cos_cone: float = 0.0
    beam_deg: tuple[float, float] | None = None  # headlight beam: (vertical, horizontal) spread
    range_m: float = 40.0  # irradiance windowed smoothly to zero at this distance


def sun_vector(scene: Scene) -> np.ndarray:
    e, a = scene.sun.elevation, scene.sun.azimuth
    return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


def pybullet_light(scene: Scene) -> dict:
    """getCameraImage keyword arguments for the sun (day) or for unlit albedo (night)."""
    if scene.is_night:
        return dict(lightDirection=[0, 0, 1], lightColor=[1, 1, 1], lightAmbientCoeff=1.0,
                    lightDiffuseCoeff=0.0, lightSpecularCoeff=0.0, shadow=0)
    e = math.degrees(scene.sun.elevation)
    warm = float(np.clip((e + 2) / 25, 0, 1))  # low sun is orange, high sun white
    color = [1.0, 0.75 + 0.25 * warm, 0.55 + 0.45 * warm]
    overcast = scene.weather.kind != "clear"
    dusk = float(np.clip((e + 4) / 14, 0.15, 1.0))
    return dict(
        lightDirection=(sun_vector(scene) * 100.0).tolist() if e > 0 else [0, 0, 100.0],
        lightColor=color,
        lightAmbientCoeff=(0.75 if overcast else 0.5) * dusk,
        lightDiffuseCoeff=(0.25 if overcast else 0.55) * dusk,
        lightSpecularCoeff=0.05,
        shadow=0 if overcast or e <= 2 else 1,
    )


def scene_lights(scene: Scene, lamp_positions: list[tuple[float, float, float]]) -> list[Light]:
    """The night lights of a scene: ego headlights, lamps, headlights of vehicles."""
    cam = scene.camera
    lights = []
    for side in (-0.7, 0.7):
        lights.append(Light((cam.position[0] + 0.5, cam.position[1] + side, 0.75), (1.0, 0.97, 0.9), 900.0,
                            (1.0, 0.0, -0.02), beam_deg=(3.0, 22.0), range_m=90.0))
    for pos in lamp_positions:
        lights.append(Light(pos, (1.0, 0.8, 0.55), 40.0, (0.0, 0.0, -1.0), math.cos(math.radians(75)), range_m=22.0))
    for a in scene.actors:
        if a.cls not in LIGHT_FACING_CLASSES:
            continue
        c, s = math.cos(a.yaw), math.sin(a.yaw)
        front = (a.position[0] + c * a.size[0] / 2, a.position[1] + s * a.size[0] / 2, a.position[2] + 0.7)
        lights.append(Light(front, (1.0, 0.97, 0.9), 900.0, (c, s, -0.02), beam_deg=(3.0, 22.0), range_m=90.0))
    return lights


def surface_normals(points: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals from (H, W, 3) world points by finite differences."""
    p = np.where(np.isfinite(points), points, 0.0)
    du = np.gradient(p, axis=1)
    dv = np.gradient(p, axis=0)
    n = np.cross(dv, du)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-9
    return n.astype(np.float32)


def _screen_rect(L: Light, camera: Camera) -> tuple[int, int, int, int]:
    """Pixel rectangle (u0, v0, u1, v1) that can receive light from ``L`` (its range sphere)."""
    r = L.range_m
    corners = np.array([[L.position[0] + dx, L.position[1] + dy, L.position[2] + dz]
                        for dx in (-r, r) for dy in (-r, r) for dz in (-r, r)])
    uv, z = camera.project(corners)
    if np.any(z <= camera.near):
        return 0, 0, camera.width, camera.height
    u0, v0 = np.floor(uv.min(0)).astype(int)
    u1, v1 = np.ceil(uv.max(0)).astype(int)
    return max(u0, 0), max(v0, 0), min(u1, camera.width), min(v1, camera.height)


def night_shading(albedo: np.ndarray, depth: np.ndarray, camera: Camera, lights: list[Light],
                  ambient: float = 0.03) -> np.ndarray:
    """Light unlit ``albedo`` (H, W, 3, 0..1) from ``lights``; depth (H, W) z-metres, inf = sky.

    Returns (H, W, 3) float32 radiance, 0..1: albedo x (ambient + sum of irradiance), with a
    soft shoulder instead of a hard clip where lights saturate.
    """
    finite = np.isfinite(depth)
    pts = world_points(np.where(finite, depth, 0.0).astype(np.float32), camera)
    nrm = surface_normals(pts)
    to_cam = np.asarray(camera.position, np.float32) - pts
    nrm = np.where(np.einsum("hwc,hwc->hw", nrm, to_cam)[..., None] < 0, -nrm, nrm)
    P = [np.ascontiguousarray(pts[..., i]) for i in range(3)]  # channels apart: 2D ops are fast
    N = [np.ascontiguousarray(nrm[..., i]) for i in range(3)]
    irr = np.zeros(albedo.shape, np.float32)
    for L in lights:
        u0, v0, u1, v1 = _screen_rect(L, camera)
        if u1 <= u0 or v1 <= v0:
            continue
        win = (slice(v0, v1), slice(u0, u1))
        dx, dy, dz = (np.float32(L.position[i]) - P[i][win] for i in range(3))
        dist2 = np.maximum(dx * dx + dy * dy + dz * dz, np.float32(0.25))
        inv = 1.0 / np.sqrt(dist2)
        dx, dy, dz = dx * inv, dy * inv, dz * inv  # unit vector surface -> light
        k = L.intensity * np.clip(N[0][win] * dx + N[1][win] * dy + N[2][win] * dz, 0.0, 1.0) / dist2
        k *= np.clip(1.0 - dist2 * dist2 / np.float32(L.range_m**4), 0.0, 1.0) ** 2
        if L.direction is not None:
            axis = np.asarray(L.direction, np.float32)
            axis = axis / np.linalg.norm(axis)
            if L.beam_deg is not None:
                fh = axis[:2] / (np.linalg.norm(axis[:2]) + 1e-9)
                along = -(dx * fh[0] + dy * fh[1])
                across = dx * fh[1] - dy * fh[0]
                elev = np.degrees(np.arctan2(-dz, along)) - math.degrees(math.asin(axis[2]))
                azim = np.degrees(np.arctan2(across, along))
                k *= np.exp(-(elev / L.beam_deg[0]) ** 2 - (azim / L.beam_deg[1]) ** 2) * (along > 0)
            else:
                cosang = -(dx * axis[0] + dy * axis[1] + dz * axis[2])
                k *= np.clip((cosang - L.cos_cone) / (1.0 - L.cos_cone), 0.0, 1.0) ** 2
        k = np.where(finite[win], k, 0.0)
        irr[win] += k[..., None] * np.asarray(L.color, np.float32)
    x = albedo * (ambient + irr)
    return np.where(x < 0.8, x, 0.8 + 0.2 * np.tanh((x - 0.8) / 0.2)).astype(np.float32)
