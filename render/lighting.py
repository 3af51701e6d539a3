"""Sun light for PyBullet's renderer by day, and deferred shading with artificial lights at night.

By day PyBullet's renderer shades with the sun (direction, colour, ambient, shadows). At night it
renders unlit albedo, and ``night_shading`` lights it from positions and normals recovered from the
depth buffer: the ego's headlights, street lamps and other vehicles' headlights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from longtail.render.camera import world_xyz
from longtail.worlds.scene import Camera, Scene

LIGHT_FACING_CLASSES = ("car", "truck", "bus", "motorcycle")
HEADLIGHT = 1000.0  # irradiance at 1 m on the beam axis, in units where 1 = full daylight albedo
LOW_BEAM = (1.5, 7.0, 20.0)  # sharp cut-off above the axis, wide spread onto the road below
EXPOSURE = 1.6


@dataclass(frozen=True)
class Light:
    """A point or spot light. ``direction`` None = omnidirectional; ``cos_cone`` is the cosine of
    the half-angle where a spot's intensity falls to zero. ``intensity`` is irradiance at 1 m."""

    position: tuple[float, float, float]
    color: tuple[float, float, float]
    intensity: float
    direction: tuple[float, float, float] | None = None
    cos_cone: float = 0.0
    beam_deg: tuple[float, float, float] | None = None  # headlight beam spread (up, down, sideways), degrees
    range_m: float = 40.0  # irradiance windowed smoothly to zero at this distance


def sun_vector(scene: Scene) -> np.ndarray:
    e, a = scene.sun.elevation, scene.sun.azimuth
    return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


SHADOW_MIN_ELEVATION_DEG = 3.0


def casts_shadows(scene: Scene) -> bool:
    """Hard sun shadows: a clear sky and the sun high enough to cast them."""
    return scene.weather.kind == "clear" and math.degrees(scene.sun.elevation) > SHADOW_MIN_ELEVATION_DEG


def pybullet_light(scene: Scene) -> dict:
    """getCameraImage keyword arguments for the sun (day) or for unlit albedo (night)."""
    if scene.is_night:
        return dict(lightDirection=[0, 0, 1], lightColor=[1, 1, 1], lightAmbientCoeff=1.0,
                    lightDiffuseCoeff=0.0, lightSpecularCoeff=0.0, shadow=0)
    e = math.degrees(scene.sun.elevation)
    warm = float(np.clip((e + 2) / 25, 0, 1))  # low sun is orange, high sun white
    color = [1.0, 0.75 + 0.25 * warm, 0.55 + 0.45 * warm]
    if scene.randomization is not None:  # the frame's drawn sunlight tint
        color = [c * t for c, t in zip(color, scene.randomization.sun_tint)]
    overcast = scene.weather.kind != "clear"
    dusk = float(np.clip((e + 4) / 14, 0.15, 1.0))
    return dict(
        lightDirection=(sun_vector(scene) * 100.0).tolist() if e > 0 else [0, 0, 100.0],
        lightColor=color,
        lightAmbientCoeff=(0.75 if overcast else 0.5) * dusk,
        lightDiffuseCoeff=(0.25 if overcast else 0.55) * dusk,
        lightSpecularCoeff=0.05,
        shadow=0,  # PyBullet's shadow map covers metres round the origin; look.cast_shadows does roads
    )


def scene_lights(scene: Scene, lamp_positions: list[tuple[float, float, float]]) -> list[Light]:
    """The night lights of a scene: ego headlights, lamps, headlights of vehicles."""
    lights = []
    if scene.ego is not None:  # the ego's low beams: one source for the pair
        ex, ey, eh = scene.ego
        c, s = math.cos(eh), math.sin(eh)
        lights.append(Light((ex + 0.5 * c, ey + 0.5 * s, 0.75), (1.0, 0.97, 0.9), 2 * HEADLIGHT,
                            (c, s, -0.02), beam_deg=LOW_BEAM, range_m=90.0))
    for pos in lamp_positions:
        lights.append(Light(pos, (1.0, 0.8, 0.55), 40.0, (0.0, 0.0, -1.0), math.cos(math.radians(75)), range_m=22.0))
    for a in scene.actors:
        if a.cls not in LIGHT_FACING_CLASSES:
            continue
        c, s = math.cos(a.yaw), math.sin(a.yaw)
        front = (a.position[0] + c * a.size[0] / 2, a.position[1] + s * a.size[0] / 2, a.position[2] + 0.7)
        lights.append(Light(front, (1.0, 0.97, 0.9), HEADLIGHT, (c, s, -0.02), beam_deg=LOW_BEAM,
                            range_m=60.0))
    return lights


def surface_normals(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normals (three (H, W) arrays) of the surface through world points x, y, z (H, W),
    by central differences across the image."""
    def grads(a):
        return np.gradient(a, axis=1), np.gradient(a, axis=0)
    (xu, xv), (yu, yv), (zu, zv) = grads(x), grads(y), grads(z)
    nx, ny, nz = yv * zu - zv * yu, zv * xu - xv * zu, xv * yu - yv * xu
    inv = 1.0 / (np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-9)
    return nx * inv, ny * inv, nz * inv


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


def irradiance(depth: np.ndarray, camera: Camera, lights: list[Light]) -> np.ndarray:
    """(H, W, 3) float32 irradiance from ``lights`` on the surfaces seen at each pixel, using
    positions and normals recovered from ``depth`` (H, W, z-metres, inf = sky -> 0)."""
    finite = np.isfinite(depth)
    P = world_xyz(np.where(finite, depth, 0.0).astype(np.float32), camera)  # channels apart: 2D ops are fast
    N = surface_normals(*P)
    c = camera.position
    facing = np.sign(N[0] * (c[0] - P[0]) + N[1] * (c[1] - P[1]) + N[2] * (c[2] - P[2])).astype(np.float32)
    N = (N[0] * facing, N[1] * facing, N[2] * facing)  # normals towards the camera
    irr = np.zeros((*depth.shape, 3), np.float32)
    for L in lights:
        u0, v0, u1, v1 = _screen_rect(L, camera)
        if u1 <= u0 or v1 <= v0:
            continue
        win = (slice(v0, v1), slice(u0, u1))
        dx, dy, dz = (np.float32(L.position[i]) - P[i][win] for i in range(3))
        dist2 = np.maximum(dx * dx + dy * dy + dz * dz, np.float32(0.25))
        fall = np.clip(1.0 - dist2 * dist2 / np.float32(L.range_m**4), 0.0, 1.0)
        # the rest only where the range window leaves light: outside it k is exactly 0 (a lamp's
        # rectangle often spans the frame while its 22 m reach covers a few per cent of it)
        rows, cols = np.flatnonzero(fall.any(axis=1)), np.flatnonzero(fall.any(axis=0))
        if not rows.size:
            continue
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        dx, dy, dz, dist2, fall = (a[r0:r1, c0:c1] for a in (dx, dy, dz, dist2, fall))
        win = (slice(v0 + r0, v0 + r1), slice(u0 + c0, u0 + c1))
        inv = 1.0 / np.sqrt(dist2)
        dx, dy, dz = dx * inv, dy * inv, dz * inv  # unit vector surface -> light
        k = L.intensity * np.clip(N[0][win] * dx + N[1][win] * dy + N[2][win] * dz, 0.0, 1.0) / dist2
        k *= fall ** 2
        if L.direction is not None:
            axis = np.asarray(L.direction, np.float32)
            axis = axis / np.linalg.norm(axis)
            if L.beam_deg is not None:
                fh = axis[:2] / (np.linalg.norm(axis[:2]) + 1e-9)
                along = -(dx * fh[0] + dy * fh[1])
                across = dx * fh[1] - dy * fh[0]
                elev = np.degrees(np.arctan2(-dz, along)) - math.degrees(math.asin(axis[2]))
                azim = np.degrees(np.arctan2(across, along))
                sig_v = np.where(elev > 0, np.float32(L.beam_deg[0]), np.float32(L.beam_deg[1]))
                k *= np.exp(-(elev / sig_v) ** 2 - (azim / L.beam_deg[2]) ** 2) * (along > 0)
            else:
                cosang = -(dx * axis[0] + dy * axis[1] + dz * axis[2])
                k *= np.clip((cosang - L.cos_cone) / (1.0 - L.cos_cone), 0.0, 1.0) ** 2
        k = np.where(finite[win], k, 0.0)
        lit = irr[win]
        for ch, col in enumerate(np.asarray(L.color, np.float32)):  # per channel: (n,) x (3,) broadcasting is slow
            lit[..., ch] += k * col
    return irr


def half_resolution(camera: Camera) -> Camera:
    """The camera whose pixel (a, b) sees exactly what pixel (2a, 2b) of ``camera`` sees."""
    return camera.model_copy(update=dict(
        width=(camera.width + 1) // 2, height=(camera.height + 1) // 2, fx=camera.fx / 2, fy=camera.fy / 2,
        cx=(camera.cx + 0.5) / 2, cy=(camera.cy + 0.5) / 2))


@lru_cache(maxsize=2)
def _neighbours(H: int, W: int, h: int, w: int) -> tuple[tuple[tuple[int, int], tuple[np.ndarray, ...]], ...]:
    """For each parity (row % 2, column % 2) of a full-resolution pixel, the flat indices into
    an (h, w) image of its low-resolution neighbours in the tie-break order: same row and column,
    next column, next row, both (int32, one array per neighbour over that parity's pixels; for
    the few image sizes a worker renders). A neighbour that repeats an earlier one is left out:
    on the even rows the next row is the same row, on the even columns the next column is the
    same column, so an even-even pixel has one neighbour, itself."""
    out = []
    for pr in (0, 1):
        for pc in (0, 1):
            r, c = np.arange(pr, H, 2), np.arange(pc, W, 2)
            rows = (r // 2, np.minimum((r + 1) // 2, h - 1))
            cols = (c // 2, np.minimum((c + 1) // 2, w - 1))
            cands: list[np.ndarray] = []
            for rr in rows:
                for cc in cols:
                    at = (rr[:, None] * w + cc[None, :]).astype(np.int32)
                    if not any(np.array_equal(at, seen) for seen in cands):
                        cands.append(at)
            out.append(((pr, pc), tuple(cands)))
    return tuple(out)


def upsample_by_depth(low: np.ndarray, low_depth: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Upsample ``low`` (h, w, C) sampled at the even pixels of ``depth`` (H, W) to full size,
    each pixel taking the nearest of its (up to) four low-resolution neighbours in depth, so
    lighting does not bleed across object silhouettes (on a tie, the first of: same row and
    column, next column, next row, both)."""
    H, W = depth.shape
    h, w = low_depth.shape
    big = np.float32(1e6)
    d = np.where(np.isfinite(depth), depth, big)
    ld = np.where(np.isfinite(low_depth), low_depth, big).ravel()
    # pick each pixel's neighbour on (H, W) errors, parity by parity (a repeated neighbour never
    # wins: only a strictly smaller error replaces the best), then gather its C channels once
    best = np.empty((H, W), np.int32)
    for (pr, pc), (first, *others) in _neighbours(H, W, h, w):
        if not others:
            best[pr::2, pc::2] = first
            continue
        dd = d[pr::2, pc::2]
        pick = first.copy()
        best_err = np.abs(ld.take(first) - dd)
        for at in others:
            err = np.abs(ld.take(at) - dd)
            np.copyto(pick, at, where=err < best_err)
            best_err = np.minimum(err, best_err)
        best[pr::2, pc::2] = pick
    return low.reshape(h * w, -1).take(best, axis=0)


def night_shading(albedo: np.ndarray, depth: np.ndarray, camera: Camera, lights: list[Light],
                  ambient: float = 0.03) -> np.ndarray:
    """Light unlit ``albedo`` (H, W, 3, 0..1) from ``lights``; depth (H, W) z-metres, inf = sky.

    Irradiance is computed at half resolution and upsampled by depth (a quarter of the work;
    edges stay sharp). Returns (H, W, 3) float32, 0..1: albedo x (ambient + irradiance) through
    an exponential exposure curve, so surfaces near a lamp saturate gracefully.
    """
    low_depth = depth[::2, ::2]
    irr = upsample_by_depth(irradiance(low_depth, half_resolution(camera), lights), low_depth, depth)
    # 1 - exp(-EXPOSURE * albedo * (ambient + irr)), the same float32 operations, in place
    irr += np.float32(ambient)
    a = -EXPOSURE * albedo
    a *= irr
    np.exp(a, out=a)
    return np.subtract(1.0, a, out=a).astype(np.float32, copy=False)
