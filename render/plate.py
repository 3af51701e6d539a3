"""Compositing rendered actors into a real plate: the two steps that make them sit in the photo.

``match_to_plate`` brings each actor's brightness and colour cast to the plate's around it;
``contact_shadows`` darkens the ground under each actor (the soft occlusion of sky light that
anchors an object on the ground, visible even on overcast days).

``composite`` does both for a whole frame, and its ``finish`` anti-aliases it, touching only the
windows of the actors and their shadows: everything else of a composite is the plate itself,
whose per-plate arrays (``plate_arrays``: the finished empty frame among them) are made once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import cv2
import numpy as np

from longtail.render.look import TENT, edge_antialias, edges
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


def shadow_window(a: Actor, camera, W: int, H: int, camera_from_world: np.ndarray | None = None
                  ) -> tuple[int, int, int, int] | None:
    """Image window (v0, v1, u0, u1) the contact shadow of ``a`` can cover, or None.
    ``camera_from_world``: the camera's, when the caller has it (``Camera.project`` redoes it)."""
    l, w, _ = a.size
    reach = 1.8 * (0.5 * max(l, w) + 0.25)
    ring = np.array([[a.position[0] + dx, a.position[1] + dy, 0.0] for dx in (-reach, reach) for dy in (-reach, reach)])
    if camera_from_world is None:
        uv, z = camera.project(ring)
    else:  # Camera.project, step for step (uv only where it is used: all in front)
        T = camera_from_world
        cam = ring @ T[:3, :3].T + T[:3, 3]
        z = cam[:, 2]
        if not np.any(z <= camera.near):
            uv = np.stack([camera.fx * cam[:, 0] / z + camera.cx, camera.fy * cam[:, 1] / z + camera.cy], 1)
    if np.any(z <= camera.near):
        u0, v0, u1, v1 = 0, 0, W, H
    else:
        u0, v0 = max(int(uv[:, 0].min()), 0), max(int(uv[:, 1].min()), 0)
        u1, v1 = min(int(uv[:, 0].max()) + 2, W), min(int(uv[:, 1].max()) + 2, H)
    if u1 <= u0 or v1 <= v0:
        return None
    return v0, v1, u0, u1


def _shade(out: np.ndarray, gx: np.ndarray, gy: np.ndarray, a: Actor) -> None:
    """Darken ``out`` (h, w, 3) in place under actor ``a``; ``gx``, ``gy``: (h, w) world x, y of
    its ground (nan above the horizon). Float64 like the ground, in place where it can be."""
    l, w, _ = a.size
    c, s = np.cos(a.yaw), np.sin(a.yaw)
    dx, dy = gx - a.position[0], gy - a.position[1]
    along = c * dx
    t = s * dy
    along += t  # along = c dx + s dy
    across = np.multiply(-s, dx, out=dx)
    np.multiply(c, dy, out=t)
    across += t  # across = -s dx + c dy
    along /= 0.5 * l + 0.25
    np.square(along, out=along)
    across /= 0.5 * w + 0.25
    np.square(across, out=across)
    along += across  # r2
    np.negative(along, out=along)
    np.exp(along, out=along)
    shade = along.astype(np.float32)
    shade[np.isnan(shade)] = 0.0  # no ground: above the horizon
    out *= np.repeat((1.0 - SHADOW_DEPTH * shade)[..., None], out.shape[2], 2)  # (not broadcast: slow over 3)


def contact_shadows(background: np.ndarray, ground_xy: np.ndarray, actors, camera) -> np.ndarray:
    """Darken ``background`` (H, W, 3 float) where its ground (world x, y per pixel, nan above
    the horizon) lies under or just around an actor's footprint: a soft ellipse per actor,
    evaluated only in the image window the ellipse can cover."""
    out = background.copy()
    H, W = ground_xy.shape[:2]
    for a in actors:
        win = shadow_window(a, camera, W, H)
        if win is not None:
            v0, v1, u0, u1 = win
            g = ground_xy[v0:v1, u0:u1]
            _shade(out[v0:v1, u0:u1], g[..., 0], g[..., 1], a)
    return out


# ----------------------------------------------------------------------------------------------
# whole frames


@dataclass(frozen=True)
class PlateArrays:
    """What every composite into one plate shares (read-only). ``nearest``: (H, W) float32 depth
    an inserted pixel must beat (the plate's or its occluders', whichever is nearer); ``depth``:
    (H, W) float32 plate depth; ``gx``, ``gy``: (H, W) world x, y of the ground (nan above the
    horizon); ``edge``: (H, W) bool, ``edges`` of the empty plate, ``edge_px`` their flat
    indices; ``rgb``: (H, W, 3) uint8, the finished (anti-aliased) frame of the empty plate;
    ``sums``: (H + 1, W + 1, 3) float64 summed-area table of the plate's float image (any
    window's mean in four look-ups)."""

    nearest: np.ndarray
    depth: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    edge: np.ndarray
    edge_px: np.ndarray
    rgb: np.ndarray
    sums: np.ndarray


_ARRAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plate_arrays(plate) -> PlateArrays:
    """``PlateArrays`` of ``plate`` (a worlds.plates.Plate), made on first use and kept while the
    plate lives."""
    arrays = _ARRAYS.get(plate)
    if arrays is None:
        depth = np.asarray(plate.depth, np.float32)
        empty = np.zeros(depth.shape, np.uint8)
        arrays = PlateArrays(nearest=np.minimum(depth, plate.occluder_depth), depth=depth,
                             gx=np.ascontiguousarray(plate.ground_xy[..., 0]),
                             gy=np.ascontiguousarray(plate.ground_xy[..., 1]),
                             edge=(edge := edges(empty, empty, depth)), edge_px=np.flatnonzero(edge),
                             rgb=nonnegative_to_uint8(edge_antialias(plate.image_f, empty, empty, depth)),
                             sums=np.pad(plate.image_f.astype(np.float64).cumsum(0).cumsum(1),
                                         ((1, 0), (1, 0), (0, 0))))
        for a in vars(arrays).values():
            a.flags.writeable = False
        _ARRAYS[plate] = arrays
    return arrays


def _window_mean(sums: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """(3,) float32 mean of the plate over rows y0:y1, columns x0:x1 from its summed-area table:
    ``plate_f[y0:y1, x0:x1].reshape(-1, 3).mean(0)`` to float32 rounding (closer to the true mean
    than that serial float32 sum)."""
    total = sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0]
    return (total / ((y1 - y0) * (x1 - x0))).astype(np.float32)


def _grow(r: tuple[int, int, int, int], d: int, H: int, W: int) -> tuple[int, int, int, int]:
    v0, v1, u0, u1 = r
    return max(v0 - d, 0), min(v1 + d, H), max(u0 - d, 0), min(u1 + d, W)


def nonnegative_to_uint8(img: np.ndarray) -> np.ndarray:
    """``look.to_uint8`` (x 255, round half to even, clip to 0..255) of a non-negative float32
    array, in one OpenCV pass (it takes absolute values, so only for non-negative input)."""
    return cv2.convertScaleAbs(img, alpha=255.0)


@dataclass
class Composite:
    """A frame composited into a plate. ``instance``, ``semantic``, ``depth``: the (H, W) labels;
    ``boxes``: (v0, v1, u0, u1) box of each inserted actor's pixels; ``shadows``: the windows the
    contact shadows darkened (outside boxes and windows the composite is the plate); ``image``:
    (H, W, 3) float32, the whole composite, or (``composite(whole=False)``) only within 2 px of
    the boxes and windows, all ``finish`` reads."""

    image: np.ndarray
    instance: np.ndarray
    semantic: np.ndarray
    depth: np.ndarray
    boxes: list = field(default_factory=list)
    shadows: list = field(default_factory=list)

    def finish(self, plate) -> np.ndarray:
        """The (H, W, 3) uint8 frame, ``nonnegative_to_uint8(edge_antialias(...))`` of the whole composite:
        the plate's own finished frame, redone within a pixel of the boxes and windows (a
        pixel's result reads its 3x3 neighbourhood; whether it is an edge, its 4-neighbours)."""
        arrays = plate_arrays(plate)
        rgb = arrays.rgb.copy()
        img = self.image
        H, W = self.instance.shape
        edge = arrays.edge
        if self.boxes:
            edge = edge.copy()
            for box in self.boxes:  # the labels differ from the empty plate's only in the boxes
                v0, v1, u0, u1 = _grow(box, 1, H, W)
                c0, c1, d0, d1 = _grow(box, 2, H, W)
                cv = slice(c0, c1), slice(d0, d1)
                e = edges(self.instance[cv], self.semantic[cv], self.depth[cv])
                edge[v0:v1, u0:u1] = e[v0 - c0:v1 - c0, u0 - d0:u1 - d0]
        found = []
        for i, r in enumerate(self.boxes + self.shadows):
            v0, v1, u0, u1 = _grow(r, 1, H, W)
            rgb[v0:v1, u0:u1] = nonnegative_to_uint8(img[v0:v1, u0:u1])
            if i < len(self.boxes) or arrays.edge_px.size:  # (no edge of the plate: only the boxes have any)
                ys, xs = np.nonzero(edge[v0:v1, u0:u1])
                found.append((ys + v0) * W + (xs + u0))
        flat = np.unique(np.concatenate(found)) if found else np.zeros(0, np.intp)
        if flat.size:
            rows, cols = np.divmod(flat, W)
            rs = {dr: np.clip(rows + dr, 0, H - 1) * W for dr in (-1, 0, 1)}
            cs = {dc: np.clip(cols + dc, 0, W - 1) for dc in (-1, 0, 1)}
            img3 = img.reshape(H * W, -1)
            acc = np.zeros((flat.size, img3.shape[1]), np.float32)
            for dr, dc, wgt in TENT:  # as edge_antialias, in its order
                acc += wgt * img3.take(rs[dr] + cs[dc], 0)
            rgb.reshape(H * W, -1)[flat] = nonnegative_to_uint8(acc)
        return rgb


def composite(plate, img: np.ndarray, depth: np.ndarray, instance: np.ndarray, semantic: np.ndarray,
              actors, camera, whole: bool = True) -> Composite:
    """Rendered actors (``img`` (H, W, 3) float 0..1, metric ``depth``, ``instance``, ``semantic``)
    composited over ``plate``: depth-tested against the plate (occluders included; the photo is
    "unlabeled"), brightness and tint matched to the plate around each actor (``match_to_plate``),
    contact shadows on the ground (``contact_shadows``). Works in the actors' boxes and the
    shadows' windows only.

    ``whole``: the whole image, bit for bit what ``match_to_plate`` and ``contact_shadows`` over
    the frame give (night and weather work on it; visibility labels compare its pixels). Else only
    what ``finish`` reads, the actors' colours within float32 rounding of those (the plate's
    means around them from a summed-area table instead of a serial float32 sum): at most one
    level in 255 apart, on a handful of pixels."""
    arrays = plate_arrays(plate)
    H, W = instance.shape
    out_inst = np.zeros((H, W), np.uint16)
    out_sem = np.zeros((H, W), np.uint8)
    out_depth = arrays.depth.copy()
    plate_f = plate.image_f
    T = camera.camera_from_world()
    shadows = [(a, win) for a in actors if (win := shadow_window(a, camera, W, H, T)) is not None]
    actor_px = []  # (flat pixel indices, composited colours) of each actor
    boxes = []
    raw = instance > 0
    rows, cols = np.flatnonzero(raw.any(1)), np.flatnonzero(raw.any(0))
    pts = cv2.findNonZero(raw[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].view(np.uint8)) if rows.size else None
    if pts is not None:
        pts = pts.reshape(-1, 2)
        flat = (pts[:, 1] + rows[0]) * W + (pts[:, 0] + cols[0])  # the actors' rendered pixels
        d = depth.ravel()[flat]
        front = d < arrays.nearest.ravel()[flat]  # depth test against the plate and its occluders
        flat, d = flat[front], d[front]
        ids = instance.ravel()[flat]
        out_inst.ravel()[flat] = ids
        out_sem.ravel()[flat] = semantic.ravel()[flat]
        out_depth.ravel()[flat] = d
        if flat.size:
            order = np.argsort(ids, kind="stable")  # grouped by actor
            flat, ids = flat[order], ids[order]
            img3 = img.reshape(H * W, -1)
            for kf in np.split(flat, np.flatnonzero(np.diff(ids)) + 1):  # match_to_plate, on each actor's pixels
                kx = kf % W
                by0, by1, bx0, bx1 = int(kf.min()) // W, int(kf.max()) // W + 1, int(kx.min()), int(kx.max()) + 1
                boxes.append((by0, by1, bx0, bx1))
                wy0, wy1 = max(by0 - WINDOW_PX, 0), min(by1 + WINDOW_PX, H)
                wx0, wx1 = max(bx0 - WINDOW_PX, 0), min(bx1 + WINDOW_PX, W)
                if whole:  # match_to_plate's own float32 mean (a serial sum: slow)
                    around = plate_f[wy0:wy1, wx0:wx1].reshape(-1, 3).mean(0)
                else:
                    around = _window_mean(arrays.sums, wy0, wy1, wx0, wx1)
                luma = float(around @ LUMA)
                gain = min(max(luma / REFERENCE_LUMA, GAIN_LIMITS[0]), GAIN_LIMITS[1])
                cast = around / max(luma, 1e-3)
                colour = gain * ((1 - TINT) + TINT * cast)
                px = img3.take(kf, 0)
                px *= colour
                actor_px.append((kf, np.clip(px, 0.0, 1.0, out=px)))
    if whole:
        work = plate_f.copy()
    else:  # the plate where finish reads: within 2 px of the boxes and windows
        work = np.empty_like(plate_f)
        for r in boxes + [win for _, win in shadows]:
            v0, v1, u0, u1 = _grow(r, 2, H, W)
            work[v0:v1, u0:u1] = plate_f[v0:v1, u0:u1]
    for a, (v0, v1, u0, u1) in shadows:  # in actor order: overlapping shadows multiply in turn
        _shade(work[v0:v1, u0:u1], arrays.gx[v0:v1, u0:u1], arrays.gy[v0:v1, u0:u1], a)
    work3 = work.reshape(H * W, -1)
    for kf, px in actor_px:
        work3[kf] = px
    return Composite(image=work, instance=out_inst, semantic=out_sem, depth=out_depth, boxes=boxes,
                     shadows=[win for _, win in shadows])
