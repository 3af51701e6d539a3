"""Compositing rendered actors into a real plate: the two steps that make them sit in the photo.

``match_to_plate`` brings each actor's brightness and colour cast to the plate's around it;
``contact_shadows`` darkens the ground under each actor (the soft occlusion of sky light that
anchors an object on the ground, visible even on overcast days).
"""

from __future__ import annotations

import numpy as np

from longtail.worlds.scene import Actor

REFERENCE_LUMA = 0.5  # what PyBullet's sun-lit render of a mid-grey surface comes out at
GAIN_LIMITS = (0.55, 1.6)
TINT = 0.5  # how much of the plate's local colour cast to take on
WINDOW_PX = 24  # margin around an actor's box where the plate's local statistics are taken
SHADOW_DEPTH = 0.45
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def match_to_plate(img: np.ndarray, instance: np.ndarray, plate_f: np.ndarray) -> np.ndarray:
    """Actor pixels (instance > 0) of ``img`` (H, W, 3 float 0..1) scaled so each actor's light
    level and colour cast follow the plate (H, W, 3 float 0..1) in a window around it."""
    out = img.copy()
    H, W = instance.shape
    rows, cols = np.nonzero(instance)
    ids = instance[rows, cols]
    for k in np.unique(ids):
        sel = ids == k
        ys, xs = rows[sel], cols[sel]
        y0, y1 = max(ys.min() - WINDOW_PX, 0), min(ys.max() + WINDOW_PX + 1, H)
        x0, x1 = max(xs.min() - WINDOW_PX, 0), min(xs.max() + WINDOW_PX + 1, W)
        around = plate_f[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        luma = float(around @ LUMA)
        gain = float(np.clip(luma / REFERENCE_LUMA, *GAIN_LIMITS))
        cast = around / max(luma, 1e-3)
        colour = gain * ((1 - TINT) + TINT * cast)
        out[ys, xs] = np.clip(img[ys, xs] * colour, 0.0, 1.0)
    return out


def contact_shadows(background: np.ndarray, ground_xy: np.ndarray, actors, camera) -> np.ndarray:
    """Darken ``background`` (H, W, 3 float) where its ground (world x, y per pixel, nan above
    the horizon) lies under or just around an actor's footprint: a soft ellipse per actor,
    evaluated only in the image window the ellipse can cover."""
    out = background.copy()
    H, W = ground_xy.shape[:2]
    for a in actors:
        a: Actor
        l, w, _ = a.size
        reach = 1.8 * (0.5 * max(l, w) + 0.25)
        ring = np.array([[a.position[0] + dx, a.position[1] + dy, 0.0] for dx in (-reach, reach) for dy in (-reach, reach)])
        uv, z = camera.project(ring)
        if np.any(z <= camera.near):
            u0, v0, u1, v1 = 0, 0, W, H
        else:
            u0, v0 = max(int(uv[:, 0].min()), 0), max(int(uv[:, 1].min()), 0)
            u1, v1 = min(int(uv[:, 0].max()) + 2, W), min(int(uv[:, 1].max()) + 2, H)
        if u1 <= u0 or v1 <= v0:
            continue
        g = ground_xy[v0:v1, u0:u1]
        c, s = np.cos(a.yaw), np.sin(a.yaw)
        dx, dy = g[..., 0] - a.position[0], g[..., 1] - a.position[1]
        along, across = c * dx + s * dy, -s * dx + c * dy
        r2 = (along / (0.5 * l + 0.25)) ** 2 + (across / (0.5 * w + 0.25)) ** 2
        shade = np.nan_to_num(np.exp(-r2), nan=0.0).astype(np.float32)
        out[v0:v1, u0:u1] *= (1.0 - SHADOW_DEPTH * shade)[..., None]
    return out
