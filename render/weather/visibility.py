"""How visible each labelled object stays after the weather.

Definition (``object_visibility``): the Weber contrast of an object against the ring of pixels
just around it, ``C = |L_object - L_ring| / max(L_ring, L_floor)`` with L the mean Rec. 709
luminance (0..1), measured in the weathered frame and divided by the same contrast in the clean
frame, clipped to 0..1. 1 = as visible as in clear weather, 0 = gone.

- In fog, against the horizon sky (whose luminance the fog does not change) this ratio is
  exactly the transmission ``t = exp(-beta d)`` of Koschmieder's law, so an object reaches the
  5 % contrast threshold at the meteorological visibility; against a nearer background it fades
  a little sooner, as real objects on a road do.
- ``L_floor`` (0.02, about 5/255) stands for the sensor's noise floor: in a uniformly darkened
  night frame an unlit object's luminance difference sinks below it and its visibility falls,
  while an object in the headlights keeps its contrast.
- Veiling glare and snow haze raise the ring's luminance and lower the ratio.

``fog_visibility`` gives the same quantity from physics alone, for an object at a distance in
homogeneous fog: t = exp(-beta d), visible while t x intrinsic contrast > 0.05.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from longtail.render.weather.fog import CONTRAST_THRESHOLD, koschmieder_beta

LUMINANCE_FLOOR = 0.02
RING_PX = (2, 8)  # ring width: 15 % of the object's size, within these bounds


def frame_visibility(daylit: np.ndarray, weathered: np.ndarray, instance: np.ndarray,
                     ids: list[int], pixels: dict[int, np.ndarray] | None = None) -> dict[int, float]:
    """Per-object visibility of a frame after its weather stage against its clear-daylight
    version (both before anti-aliasing); a frame that night and weather left untouched (the
    same array) is fully visible as it is."""
    if weathered is daylit:
        return dict.fromkeys(ids, 1.0)
    return object_visibility(daylit, weathered, instance, ids, pixels) if ids else {}


def fog_visibility(distance_m: float, visibility_m: float) -> float:
    """Transmission ``t = exp(-beta d)`` of homogeneous fog of meteorological visibility
    ``visibility_m`` over ``distance_m`` metres: the share of an object's contrast against the
    horizon sky that survives. Visible while ``t x contrast > CONTRAST_THRESHOLD`` (0.05), so a
    black object (contrast 1) disappears at ``distance_m = visibility_m``."""
    if distance_m < 0:
        raise ValueError(f"distance_m must be >= 0, got {distance_m}")
    return math.exp(-koschmieder_beta(visibility_m) * distance_m)


def is_visible(visibility: float, intrinsic_contrast: float = 1.0) -> bool:
    """Whether an object with ``intrinsic_contrast`` (clear-weather Weber contrast) that keeps
    ``visibility`` of it is above the 5 % contrast threshold."""
    return visibility * intrinsic_contrast > CONTRAST_THRESHOLD


def pixels_by_id(instance: np.ndarray) -> dict[int, np.ndarray]:
    """The flat indices (row-major order) of each non-zero id's pixels in ``instance`` (H, W),
    from one pass over the image: what ``np.flatnonzero(instance == i)`` gives for every id,
    without a whole-image mask per object."""
    flat = instance.ravel()
    at = np.flatnonzero(flat)
    labels = flat.take(at)
    order = np.argsort(labels, kind="stable")  # stable: each id's pixels stay in row-major order
    at, labels = at.take(order), labels.take(order)
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return {int(labels[a]): at[a:b] for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), at.size]) if b > a}


def _luma(image: np.ndarray) -> np.ndarray:
    scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
    return (image.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)) * np.float32(scale)


def _contrast(luma: np.ndarray, obj: np.ndarray, ring: np.ndarray) -> float:
    lo, lr = float(luma[obj].mean()), float(luma[ring].mean())
    return abs(lo - lr) / max(lr, LUMINANCE_FLOOR)


def object_visibility(clean: np.ndarray, weathered: np.ndarray, instance: np.ndarray, ids: list[int],
                      pixels: dict[int, np.ndarray] | None = None) -> dict[int, float]:
    """Visibility 0..1 of each object after the weather (module docstring for the definition).

    Args:
        clean: (H, W, 3) uint8 or float32 0..1 frame before the weather.
        weathered: the same frame after it (same shape and dtype).
        instance: (H, W) instance ids (0 = none); object ``i`` is ``instance == i``.
        ids: the objects to measure; an id with no pixel gets 0.0.
        pixels: ``pixels_by_id(instance)``, if the caller has it already.

    Returns:
        id -> visibility, rounded to 4 decimals.
    """
    H, W = instance.shape
    if pixels is None:
        pixels = pixels_by_id(instance)
    out = {}
    for i in ids:
        at = pixels.get(int(i))
        if at is None:
            out[int(i)] = 0.0
            continue
        area = at.size
        ys, xs = np.divmod(at, W)
        r = int(np.clip(round(0.15 * math.sqrt(area)), *RING_PX))
        y0, y1 = max(int(ys.min()) - r, 0), min(int(ys.max()) + r + 1, H)
        x0, x1 = max(int(xs.min()) - r, 0), min(int(xs.max()) + r + 1, W)
        obj = instance[y0:y1, x0:x1] == i
        grown = cv2.dilate(obj.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
        ring = grown & ~obj
        if not ring.any():  # the object fills the image: compare with itself
            out[int(i)] = 1.0
            continue
        before = _contrast(_luma(clean[y0:y1, x0:x1]), obj, ring)
        after = _contrast(_luma(weathered[y0:y1, x0:x1]), obj, ring)
        out[int(i)] = round(float(np.clip(after / max(before, 1e-3), 0.0, 1.0)), 4)
    return out
