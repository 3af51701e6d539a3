"""OpenGL matrices for a pinhole Camera, and per-pixel geometry (rays, ray distance, world points).

Pixel (u, v) covers [u, u+1) x [v, v+1); PyBullet's rasteriser samples pixel centres, so the
matrices below put the principal point in the same continuous coordinates as ``Camera.cx/cy``.
A crop (u0, v0, w, h) of the image is rendered with the same matrices and a shifted principal
point, which reproduces the full image's pixels exactly.
"""

from __future__ import annotations

import numpy as np

from longtail.worlds.scene import Camera

GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def view_matrix(camera: Camera) -> list[float]:
    """Column-major 4x4 world -> OpenGL eye transform."""
    return (GL_FROM_CV @ camera.camera_from_world()).T.ravel().tolist()


def projection_matrix(camera: Camera, crop: tuple[int, int, int, int] | None = None) -> list[float]:
    """Column-major 4x4 OpenGL projection from the intrinsics; ``crop`` = (u0, v0, w, h)."""
    u0, v0, w, h = crop if crop else (0, 0, camera.width, camera.height)
    cx, cy = camera.cx - u0, camera.cy - v0
    n, f = camera.near, camera.far
    P = np.array([
        [2 * camera.fx / w, 0.0, 1.0 - 2.0 * cx / w, 0.0],
        [0.0, 2 * camera.fy / h, 2.0 * cy / h - 1.0, 0.0],
        [0.0, 0.0, -(f + n) / (f - n), -2.0 * f * n / (f - n)],
        [0.0, 0.0, -1.0, 0.0],
    ])
    return P.T.ravel().tolist()


def linearize_depth(zbuffer: np.ndarray, camera: Camera) -> np.ndarray:
    """PyBullet's non-linear z-buffer -> z-depth in metres (float32); far-plane pixels -> inf."""
    n, f = camera.near, camera.far
    depth = np.array(zbuffer, np.float64)
    far = depth >= 1.0 - 1e-7
    # f * n / (f - (f - n) * z) in float64, in place: the same operations (-(f - n) * z + f is
    # f - (f - n) * z exactly)
    depth *= -(f - n)
    depth += f
    np.divide(f * n, depth, out=depth)
    depth[far] = np.inf
    return depth.astype(np.float32)


def normalized_coords(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates of pixel centres: x (1, W) and y (H, 1), float32, so that
    pixel (v, u) looks along camera-frame direction (x[u], y[v], 1)."""
    x = ((np.arange(camera.width, dtype=np.float32) + 0.5 - camera.cx) / camera.fx)[None, :]
    y = ((np.arange(camera.height, dtype=np.float32) + 0.5 - camera.cy) / camera.fy)[:, None]
    return x, y


def ray_distance(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """z-depth (H, W) -> distance along each pixel's ray (H, W), metres."""
    x, y = normalized_coords(camera)
    return depth * np.sqrt(x * x + y * y + 1.0)


def world_xyz(depth: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z of each pixel's surface as three (H, W) float32 arrays (2D ops are fast)."""
    x, y = normalized_coords(camera)
    T = camera.world_from_camera().astype(np.float32)
    return tuple((T[i, 0] * x + T[i, 1] * y + T[i, 2]) * depth + T[i, 3] for i in range(3))
