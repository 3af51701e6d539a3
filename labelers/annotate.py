"""Labels from render buffers: one record per frame, exact by construction.

Visible boxes are the tight boxes of the instance mask; occlusion is one minus visible pixels over
the pixels of the object rendered alone (inside the image); truncation is the part of the object
rendered alone that falls outside the image.
"""

from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

from longtail.render.capture import Buffers
from longtail.worlds.scene import Scene


def tight_box(mask: np.ndarray) -> list[float] | None:
    """[x0, y0, x1, y1] pixel-edge box of a boolean mask (x1/y1 exclusive), None if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def encode_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a boolean (H, W) mask, JSON-ready."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def camera_record(scene: Scene) -> dict:
    cam = scene.camera
    return {
        "name": cam.name,
        "width": cam.width,
        "height": cam.height,
        "K": cam.K.tolist(),
        "world_from_camera": cam.world_from_camera().tolist(),
        "camera_from_world": cam.camera_from_world().tolist(),
        "convention": "OpenCV camera (x right, y down, z forward); world x along the road, z up; metres",
    }


def frame_attributes(scene: Scene) -> dict:
    """Frame-level conditions, used for per-condition breakdowns downstream."""
    return {
        "scenario": scene.scenario,
        "event": scene.event,
        "hour": round(scene.sun.hour, 3),
        "sun_elevation_deg": round(math.degrees(scene.sun.elevation), 3),
        "time_of_day": "night" if scene.is_night else ("dusk" if scene.sun.elevation < math.radians(8) else "day"),
        "weather": scene.weather.kind,
        "visibility_m": scene.weather.visibility_m,
        "weather_intensity": scene.weather.intensity,
        "layout": scene.layout.kind,
    }


def annotate(scene: Scene, buffers: Buffers) -> list[dict]:
    """Object records for every actor that the camera could see (rendered alone, inside the
    image), including fully occluded ones (visible area 0, occlusion 1)."""
    cam_from_world = scene.camera.camera_from_world()
    objects = []
    for actor in scene.actors:
        alone = buffers.alone.get(actor.id)
        if alone is None:
            continue
        mask = buffers.instance == actor.id
        area = int(mask.sum())
        centre = np.array([*actor.position[:2], actor.position[2] + actor.size[2] / 2, 1.0])
        cam_centre = cam_from_world @ centre
        objects.append({
            "id": actor.id,
            "track_id": actor.id,
            "class": actor.cls,
            "asset": actor.asset,
            "role": actor.role,
            "bbox": tight_box(mask),
            "area": area,
            "rle": encode_rle(mask) if area else None,
            "occlusion": float(np.clip(1.0 - area / alone.in_image, 0.0, 1.0)),
            "truncation": float(np.clip(1.0 - alone.in_image / alone.total, 0.0, 1.0)),
            "alone_area": alone.in_image,
            "distance_m": float(np.linalg.norm(cam_centre[:3])),
            "box3d_world": {"center": [actor.position[0], actor.position[1], actor.position[2] + actor.size[2] / 2],
                            "size_lwh": list(actor.size), "yaw": actor.yaw},
        })
    return objects
