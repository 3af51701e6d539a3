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


def match_to_plate(img: np.ndarray, instance: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Actor pixels (instance > 0) of ``img`` (H, W, 3 float 0..1) scaled so each actor's light
    level and colour cast follow the plate (H, W, 3 uint8) in a window around it."""
    out = img.copy()
    H, W = instance.shape
    plate_f = plate.astype(np.float32) / 255.0
    for k in np.unique(instance):
        if k == 0:
            continue
        ys, xs = np.nonzero(instance == k)
        y0, y1 = max(ys.min() - WINDOW_PX, 0), min(ys.max() + WINDOW_PX + 1, H)
        x0, x1 = max(xs.min() - WINDOW_PX, 0), min(xs.max() + WINDOW_PX + 1, W)
        around = plate_f[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        luma = float(around @ LUMA)
        gain = float(np.clip(luma / REFERENCE_LUMA, *GAIN_LIMITS))
        cast = around / max(luma, 1e-3)
        colour = gain * ((1 - TINT) + TINT * cast)
        out[ys, xs] = np.clip(img[ys, xs] * colour, 0.0, 1.0)
    return out


def contact_shadows(background: np.ndarray, ground_xy: np.ndarray, actors) -> np.ndarray:
    """Darken ``background`` (H, W, 3 float) where its ground (world x, y per pixel, nan above
    the horizon) lies under or just around an actor's footprint: a soft ellipse per actor."""
    out = background.copy()
    gx, gy = ground_xy[..., 0], ground_xy[..., 1]
    shade = np.zeros(gx.shape, np.float32)
    for a in actors:
        a: Actor
        l, w, _ = a.size
        c, s = np.cos(a.yaw), np.sin(a.yaw)
        dx, dy = gx - a.position[0], gy - a.position[1]
        along, across = c * dx + s * dy, -s * dx + c * dy
        r2 = (along / (0.5 * l + 0.25)) ** 2 + (across / (0.5 * w + 0.25)) ** 2
        shade = np.maximum(shade, np.nan_to_num(np.exp(-r2), nan=0.0))
    return out * (1.0 - SHADOW_DEPTH * shade)[..., None]
