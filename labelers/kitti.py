"""KITTI object-detection export (2D boxes and 3D boxes in the camera frame), pure functions.

Layout: ``training/image_2/NNNNNN.png``, ``training/label_2/NNNNNN.txt`` (one line of 15 fields
per object, then one ``DontCare`` line per ignore region; an empty file for a frame without any)
and ``training/calib/NNNNNN.txt``.

Label line: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y`` with

- ``truncated``: our ``truncation`` (share of the object outside the image), 0..1;
- ``occluded``: our ``kitti_occluded`` level, 0 (visible) / 1 (partly) / 2 (largely);
- ``x1 y1 x2 y2``: the tight visible box as **pixel edges**, exactly our ``bbox``: a pixel
  column i spans [i, i + 1), so ``x2`` is one past the last covered column and ``x2 - x1`` is
  the width in pixels. KITTI's own labels read as 0-based pixel coordinates (a box clipped at
  the right border of a 1242-pixel image ends at 1241.00); we keep edges, as FiftyOne and the
  COCO/YOLO converters assume (width = x2 - x1), so a one-pixel object keeps width 1 and the
  box heights agree with ``kitti_difficulty``. Subtract 1 from x2 and y2 for the inclusive form;
- ``h w l``: 3D box size in metres; ``x y z``: bottom-face centre in camera coordinates
  (OpenCV axes: x right, y down, z forward), metres; ``rotation_y`` and ``alpha`` in radians,
  [-pi, pi], KITTI conventions (``rotation_y`` 0 = heading along camera +x).

2D values and ``truncated`` are written with 2 decimals as in KITTI (our box edges are whole
pixels); 3D values with 4 (0.1 mm, 1e-4 rad), because long-tail objects (a tyre, a cone) are small
enough for KITTI's centimetre rounding to change their size by several percent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from longtail.labelers.export_base import Content, Copy, ExportFilter, LoadPng, frame_stem, split_objects

# Semantic class -> KITTI type. KITTI knows Car, Van, Truck, Pedestrian, Person_sitting, Cyclist,
# Tram, Misc and DontCare, and its evaluation skips every type it does not know, so the classes it
# lacks get their own CamelCase names (no spaces: readers split lines on whitespace) rather than
# Misc, which would merge bicycles, motorcycles and the long tail into one type.
#   car -> Car (the "van" asset -> Van, as KITTI separates them); truck -> Truck;
#   person -> Pedestrian (adults and children); rider -> Cyclist (KITTI's Cyclist box holds rider
#   and bicycle together; ours holds the rider only, the bicycle is a Bicycle object of its own);
#   bus, bicycle, motorcycle, animal, debris, traffic cone, barrier -> Bus, Bicycle, Motorcycle,
#   Animal, Debris, TrafficCone, Barrier.
KITTI_TYPES: dict[str, str] = {
    "car": "Car",
    "truck": "Truck",
    "bus": "Bus",
    "person": "Pedestrian",
    "rider": "Cyclist",
    "bicycle": "Bicycle",
    "motorcycle": "Motorcycle",
    "animal": "Animal",
    "debris": "Debris",
    "traffic cone": "TrafficCone",
    "barrier": "Barrier",
}
# Asset -> KITTI type, where KITTI splits one of our classes.
KITTI_ASSET_TYPES: dict[str, str] = {"van": "Van"}
DONT_CARE = "DontCare"

# Monocular calibration: one camera, so P0..P3 are all [K | 0] (no stereo baseline). There is no
# lidar; Tr_velo_to_cam places a virtual one at the camera with KITTI's velodyne axes (x forward,
# y left, z up), so tools that move boxes into the lidar frame get a plain axis swap.
VELO_TO_CAM = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
IMU_TO_VELO = np.hstack([np.eye(3), np.zeros((3, 1))])


def kitti_type(obj: dict) -> str:
    """KITTI type of an object record (asset overrides first, then the class table)."""
    if obj["asset"] in KITTI_ASSET_TYPES:
        return KITTI_ASSET_TYPES[obj["asset"]]
    try:
        return KITTI_TYPES[obj["class"]]
    except KeyError:
        raise KeyError(f"no KITTI type for class {obj['class']!r}; known: {', '.join(KITTI_TYPES)}") from None


def kitti_object_line(obj: dict) -> str:
    """The 15-field label line of an exported object record."""
    b3 = obj["box3d_camera"]
    x0, y0, x1, y1 = obj["bbox"]
    h, w, l = b3["size_hwl"]
    x, y, z = b3["bottom_center"]
    return (f"{kitti_type(obj)} {obj['truncation']:.2f} {int(obj['kitti_occluded'])} {b3['alpha']:.4f} "
            f"{x0:.2f} {y0:.2f} {x1:.2f} {y1:.2f} {h:.4f} {w:.4f} {l:.4f} {x:.4f} {y:.4f} {z:.4f} "
            f"{b3['rotation_y']:.4f}")


def kitti_dont_care_line(obj: dict) -> str:
    """An ignore region as KITTI writes it: the 2D box, every other field at its 'unset' value."""
    x0, y0, x1, y1 = obj["bbox"]
    return f"{DONT_CARE} -1 -1 -10 {x0:.2f} {y0:.2f} {x1:.2f} {y1:.2f} -1 -1 -1 -1000 -1000 -1000 -10"


def kitti_label(record: dict, flt: ExportFilter) -> str:
    """label_2 text of a frame: objects, then DontCare regions; empty when there are none."""
    kept, ignored = split_objects(record, flt)
    lines = [kitti_object_line(o) for o in kept] + [kitti_dont_care_line(o) for o in ignored]
    return "".join(f"{line}\n" for line in lines)


def _row(name: str, m: np.ndarray) -> str:
    return f"{name}: " + " ".join(f"{v:.12e}" for v in np.asarray(m, float).ravel()) + "\n"


def kitti_calib(K: np.ndarray, camera_from_level: np.ndarray | None = None) -> str:
    """calib text for a (3, 3) intrinsic matrix K (pixels): P0..P3, R0_rect, Tr_velo_to_cam,
    Tr_imu_to_velo, each row-major on one line as in KITTI.

    Labels hold upright boxes in the level camera frame (no pitch or roll), so P2 = K [R | 0] with
    R = camera_from_level: ``P2 @ [X; 1]`` projects a label's box onto the real, pitched image.
    """
    R = np.eye(3) if camera_from_level is None else np.asarray(camera_from_level, float)
    P = np.asarray(K, float) @ np.hstack([R, np.zeros((3, 1))])
    rows = [_row(f"P{i}", P) for i in range(4)]
    rows += [_row("R0_rect", np.eye(3)), _row("Tr_velo_to_cam", VELO_TO_CAM), _row("Tr_imu_to_velo", IMU_TO_VELO)]
    return "".join(rows)


def kitti_files(records: list[dict], flt: ExportFilter, out: Path, load_png: LoadPng) -> Iterator[tuple[str, Content]]:
    """KITTI export of frame records (``out`` and ``load_png`` unused)."""
    for rec in records:
        stem = frame_stem(rec)
        yield f"training/image_2/{stem}.png", Copy(rec["files"]["rgb"])
        yield f"training/label_2/{stem}.txt", kitti_label(rec, flt).encode()
        calib = kitti_calib(rec["camera"]["K"], rec["camera"].get("camera_from_level"))
        yield f"training/calib/{stem}.txt", calib.encode()
