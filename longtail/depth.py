"""The depth codec every part shares: metres in memory, 16-bit PNG on disk.

Stored value = z-depth along the optical axis in metres x 256 (KITTI's depth maps), 0 = no
surface (sky) or beyond 255.99 m. Rendered datasets, plates and the ground-plane prior of real
images all use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from longtail.atomic import read_png

DEPTH_SCALE = 256.0  # stored value = metres x 256 (KITTI depth maps); 0 = no surface (sky)
MAX_DEPTH_M = 65535 / DEPTH_SCALE  # 255.99 m, the most a 16-bit PNG holds


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """float32 metres (inf = none) -> uint16 metres x 256, 0 where nothing or beyond 255.99 m."""
    d = np.where(np.isfinite(depth), np.rint(depth * DEPTH_SCALE), 0.0)
    return np.where(d <= 65535, d, 0).astype(np.uint16)


def decode_depth(png: np.ndarray) -> np.ndarray:
    """uint16 depth PNG -> float32 metres with inf where no surface was recorded."""
    d = png.astype(np.float32) / DEPTH_SCALE
    d[png == 0] = np.inf
    return d


def read_depth(path: Path) -> np.ndarray:
    return decode_depth(read_png(path))
