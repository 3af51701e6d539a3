"""Labels from render buffers: one record per frame, exact by construction.

Visible boxes are the tight boxes of the instance mask; occlusion is one minus visible pixels over
the pixels of the object rendered alone (inside the image); truncation is the part of the object
rendered alone that falls outside the image.
"""

from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

from longtail.classes import kitti_difficulty, kitti_occlusion_level
from longtail.conditions import WEATHER_TAGS
from longtail.render.capture import Buffers
from longtail.render.weather.visibility import pixels_by_id
from longtail.worlds.scene import Scene


BOX_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]


def object_difficulty(bbox: list[float] | None, occlusion: float, truncation: float) -> str | None:
    """The easiest KITTI difficulty the object qualifies for, or None (too small or hidden)."""
    if bbox is None:
        return None
    return kitti_difficulty(bbox[3] - bbox[1], kitti_occlusion_level(occlusion), truncation)


def amodal_box(corners_cam: np.ndarray, K: np.ndarray, width: int, height: int, near: float) -> list[float] | None:
    """Image extent of a 3D box given by its (8, 3) camera-frame corners (bit i of the corner
    index flips coordinate i), clipped to the camera plane z = near and to the image."""
    pts = [c for c in corners_cam if c[2] >= near]
    for a, b in BOX_EDGES:  # where an edge crosses the near plane, keep the crossing point
        za, zb = corners_cam[a][2], corners_cam[b][2]
        if (za - near) * (zb - near) < 0:
            t = (near - za) / (zb - za)
            pts.append(corners_cam[a] + t * (corners_cam[b] - corners_cam[a]))
    if not pts:
        return None
    P = np.asarray(pts)
    u = K[0, 0] * P[:, 0] / P[:, 2] + K[0, 2]
    v = K[1, 1] * P[:, 1] / P[:, 2] + K[1, 2]
    x0, y0 = max(0.0, float(u.min())), max(0.0, float(v.min()))
    x1, y1 = min(float(width), float(u.max())), min(float(height), float(v.max()))
    if x1 <= x0 or y1 <= y0:
        return None
    return [x0, y0, x1, y1]


def _wrap(a: float) -> float:
    return float(math.remainder(a, 2 * math.pi))


def tight_box(mask: np.ndarray) -> list[float] | None:
    """[x0, y0, x1, y1] pixel-edge box of a boolean mask (x1/y1 exclusive), None if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


_NO_PIXELS = np.zeros(0, np.intp)


def _box_of(rows: np.ndarray, cols: np.ndarray) -> list[float] | None:
    """``tight_box`` of the mask whose pixels are at ``rows``, ``cols`` (row-major order)."""
    if rows.size == 0:
        return None
    return [float(cols.min()), float(rows[0]), float(cols.max() + 1), float(rows[-1] + 1)]


def _rle_of(rows: np.ndarray, cols: np.ndarray, H: int, W: int) -> dict:
    """COCO compressed RLE (JSON-ready) of the (H, W) mask of these pixels, written straight into
    the column-major uint8 array COCO's encoder reads (no whole-image mask, cast and Fortran copy
    per object)."""
    mask = np.zeros(W * H, np.uint8)
    mask[cols * H + rows] = 1
    rle = mask_utils.encode(mask.reshape(W, H).T)
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def camera_record(scene: Scene) -> dict:
    cam = scene.camera
    level = cam.level()
    return {
        "name": cam.name,
        "width": cam.width,
        "height": cam.height,
        "K": cam.K.tolist(),
        "world_from_camera": cam.world_from_camera().tolist(),
        "camera_from_world": cam.camera_from_world().tolist(),
        # the level camera: same position and heading, no pitch or roll; 3D boxes are given in it
        # (KITTI's upright-box convention) and camera_from_level maps it to the real camera
        "level_from_world": level.camera_from_world().tolist(),
        "camera_from_level": (cam.camera_from_world()[:3, :3] @ level.world_from_camera()[:3, :3]).tolist(),
        "convention": "OpenCV camera (x right, y down, z forward); world x along the road, z up; metres",
    }


def frame_attributes(scene: Scene) -> dict:
    """Frame-level conditions, used for per-condition breakdowns downstream."""
    return {
        "scenario": scene.scenario,
        "event": scene.event,
        "hour": round(scene.sun.hour, 3),
        "sun_elevation_deg": round(math.degrees(scene.sun.elevation), 3),
        # BDD100K's condition tags, which people already filter by
        "time_of_day": ("night" if scene.is_night
                        else "dawn/dusk" if scene.sun.elevation < math.radians(8) else "daytime"),
        "weather": WEATHER_TAGS[scene.weather.kind],
        "visibility_m": scene.weather.visibility_m,
        "weather_intensity": scene.weather.intensity,
        "layout": scene.layout.kind,
    }


def annotate(scene: Scene, buffers: Buffers, visibility: dict[int, float],
             pixels: dict[int, np.ndarray] | None = None) -> list[dict]:
    """Object records for every actor that the camera could see (rendered alone, inside the
    image), including fully occluded ones (visible area 0, occlusion 1). ``visibility``: actor
    id -> how visible the weather stage left it, 0..1 (``render.weather.visibility``); ``pixels``:
    ``pixels_by_id(buffers.instance)``, if the caller has it already."""
    cam = scene.camera
    T = cam.camera_from_world()
    Lv = cam.level().camera_from_world()  # 3D boxes stand upright in the level camera frame
    objects = []
    H, W = buffers.instance.shape
    if pixels is None:  # one pass, not a whole-image mask per actor
        pixels = pixels_by_id(buffers.instance)
    for actor in scene.actors:
        alone = buffers.alone.get(actor.id)
        if alone is None:
            continue
        rows, cols = np.divmod(pixels.get(actor.id, _NO_PIXELS), W)
        area = int(rows.size)
        bbox = _box_of(rows, cols)
        occlusion = float(np.clip(1.0 - area / alone.in_image, 0.0, 1.0))
        truncation = float(np.clip(1.0 - alone.in_image / alone.total, 0.0, 1.0))
        l, w, h = actor.size
        centre_w = np.array([actor.position[0], actor.position[1], actor.position[2] + h / 2])
        centre_c = Lv[:3, :3] @ centre_w + Lv[:3, 3]
        bottom_c = Lv[:3, :3] @ np.asarray(actor.position) + Lv[:3, 3]
        heading_c = Lv[:3, :3] @ np.array([math.cos(actor.yaw), math.sin(actor.yaw), 0.0])
        rotation_y = _wrap(-math.atan2(heading_c[2], heading_c[0]))  # KITTI: about camera y, 0 = facing +x
        corners_c = actor.box_corners() @ T[:3, :3].T + T[:3, 3]
        objects.append({
            "id": actor.id,
            "track_id": actor.id,
            "class": actor.cls,
            "asset": actor.asset,
            "role": actor.role,
            "bbox": bbox,
            "bbox_amodal": amodal_box(corners_c, cam.K, cam.width, cam.height, cam.near),
            "area": area,
            "rle": _rle_of(rows, cols, H, W) if area else None,
            "occlusion": occlusion,
            "truncation": truncation,
            "alone_area": alone.in_image,
            "distance_m": float(np.linalg.norm(centre_c)),
            # contrast left by night and weather relative to clear daylight (render.weather.visibility)
            "visibility": round(float(visibility.get(actor.id, 0.0)), 4) if area else 0.0,
            "kitti_occluded": kitti_occlusion_level(occlusion),
            "kitti_difficulty": object_difficulty(bbox, occlusion, truncation),
            "box3d_world": {"center": centre_w.tolist(), "size_lwh": [l, w, h], "yaw": actor.yaw},
            "box3d_camera": {"center": centre_c.tolist(), "bottom_center": bottom_c.tolist(), "size_hwl": [h, w, l],
                             "rotation_y": rotation_y,
                             "alpha": _wrap(rotation_y - math.atan2(bottom_c[0], bottom_c[2]))},
        })
    return objects
