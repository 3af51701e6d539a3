"""Cameras for real plates: a ``scene.Camera`` from a YAML file, from image <-> ground
correspondences, or from the horizon row, camera height and focal length.

Frames: right-handed world, metres, z up, the ground is the plane z = 0. Without correspondences
the plate's world has the camera above the origin at (0, 0, height), yaw 0 (looking along +x).
Correspondences bring their own ground frame (X, Y) and the fitted camera is placed in it.
Pixel coordinates are continuous, as in ``Camera``: pixel (u, v) covers [u, u+1) x [v, v+1), so
the image centre is (W/2, H/2).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from longtail.errors import InputError, ParameterError
from longtail.readers import load_yaml, read_text, validation_message
from longtail.worlds.scene import Camera, Coord, Frozen, vec3

# camera (OpenCV: x right, y down, z forward) -> Camera's body axes (x forward, y left, z up);
# the same matrix as in Camera.world_from_camera
BODY_FROM_CAM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
PLATE_CAMERA_NAME = "plate"
MIN_POINTS = 4


class FitReport(Frozen):
    """How a plate's camera was obtained and how well it explains the correspondences.

    Reprojection errors are pixel distances between the given image points and the projections
    of their ground points; they are None when the method used no points.
    """

    method: Literal["yaml", "correspondences", "horizon"]
    n_points: int = 0
    rms_px: float | None = None
    median_px: float | None = None
    max_px: float | None = None


@dataclass(frozen=True)
class Horizon:
    """The horizon method's inputs: the horizon line's row ``row`` (continuous v coordinate, like
    ``Camera.cy``; the horizon is level, so roll is 0), the camera's height above the ground in
    metres and the focal length in pixels (square pixels)."""

    row: float
    height_m: float
    focal_px: float


# ----------------------------------------------------------------------------------------------
# rotations: Camera's yaw / pitch / roll <-> a rotation matrix


def euler_from_world_from_camera(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in radians of a (3, 3) world_from_camera rotation (OpenCV camera axes),
    inverting ``Camera.world_from_camera``: ``rot = Rz(yaw) Ry(pitch) Rx(roll) BODY_FROM_CAM``."""
    m = np.asarray(rot, np.float64) @ BODY_FROM_CAM.T
    pitch = math.asin(float(np.clip(-m[2, 0], -1.0, 1.0)))
    roll = math.atan2(m[2, 1], m[2, 2])
    yaw = math.atan2(m[1, 0], m[0, 0])
    return yaw, pitch, roll


def camera_from_pose(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                     world_from_camera: np.ndarray) -> Camera:
    """A Camera with the given intrinsics (pixels) and (4, 4) world_from_camera pose (metres)."""
    yaw, pitch, roll = euler_from_world_from_camera(world_from_camera[:3, :3])
    position = vec3(world_from_camera[:3, 3])
    return Camera(name=PLATE_CAMERA_NAME, width=width, height=height, fx=float(fx), fy=float(fy), cx=float(cx),
                  cy=float(cy), position=position, yaw=yaw, pitch=pitch, roll=roll)


def _camera_from_params(params: np.ndarray, width: int, height: int, cx: float, cy: float) -> Camera:
    """params = (f, yaw, pitch, roll, x, y, z): the unknowns of the correspondence fit."""
    f, yaw, pitch, roll, x, y, z = (float(v) for v in params)
    return Camera(name=PLATE_CAMERA_NAME, width=width, height=height, fx=f, fy=f, cx=cx, cy=cy,
                  position=(x, y, z), yaw=yaw, pitch=pitch, roll=roll)


# ----------------------------------------------------------------------------------------------
# c. horizon row + height + focal


def camera_from_horizon(width: int, height: int, horizon: Horizon, cx: float | None = None,
                        cy: float | None = None) -> Camera:
    """A level (roll 0) camera at (0, 0, height_m), yaw 0, pitched so that the horizon falls on
    ``horizon.row``: a horizontal ray projects to ``v = cy - f tan(pitch)``."""
    if not horizon.height_m > 0:
        raise ParameterError("camera_height", f"expected a height above the ground > 0 m, got {horizon.height_m}")
    if not horizon.focal_px > 0:
        raise ParameterError("focal", f"expected a focal length > 0 px, got {horizon.focal_px}")
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    pitch = math.atan2(cy - horizon.row, horizon.focal_px)
    return Camera(name=PLATE_CAMERA_NAME, width=width, height=height, fx=horizon.focal_px, fy=horizon.focal_px,
                  cx=cx, cy=cy, position=(0.0, 0.0, horizon.height_m), pitch=pitch)


# ----------------------------------------------------------------------------------------------
# a. explicit YAML


class CameraFile(Frozen):
    """A plate camera file (YAML). Intrinsics: ``fx`` (and ``fy``, default fx) or ``hfov_deg``;
    ``cx, cy`` default to the image centre; ``width, height`` default to the frames' size and must
    match it when given. Extrinsics: ``height_m`` with ``pitch_deg`` (down is positive),
    ``roll_deg``, ``yaw_deg`` (camera above the origin), or a full 4x4 ``world_from_camera``
    (OpenCV camera axes, world z up, metres)."""

    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    fx: float | None = Field(default=None, ge=0.1, le=1e6)
    fy: float | None = Field(default=None, ge=0.1, le=1e6)
    hfov_deg: float | None = Field(default=None, gt=1.0, lt=179.0)
    cx: float | None = Field(default=None, ge=-1e5, le=1e5)
    cy: float | None = Field(default=None, ge=-1e5, le=1e5)
    height_m: float | None = Field(default=None, gt=0, le=1e4)
    pitch_deg: float = Field(default=0.0, ge=-90.0, le=90.0)
    roll_deg: float = Field(default=0.0, ge=-180.0, le=180.0)
    yaw_deg: float = Field(default=0.0, ge=-360.0, le=360.0)
    world_from_camera: tuple[tuple[Coord, Coord, Coord, Coord], ...] | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> "CameraFile":
        if (self.fx is None) == (self.hfov_deg is None):
            raise ValueError("give exactly one of fx (pixels) or hfov_deg")
        if (self.height_m is None) == (self.world_from_camera is None):
            raise ValueError("give exactly one of height_m (with pitch_deg, roll_deg, yaw_deg) or world_from_camera")
        if self.world_from_camera is not None:
            T = np.asarray(self.world_from_camera)
            if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]):
                raise ValueError("world_from_camera: expected a 4x4 matrix with last row [0, 0, 0, 1]")
            R = T[:3, :3]
            if not (np.allclose(R.T @ R, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0):
                raise ValueError("world_from_camera: the 3x3 block is not a rotation (orthonormal, det +1)")
            if not T[2, 3] > 0:
                raise ValueError("world_from_camera: the camera must be above the ground (z > 0, metres)")
        return self


def read_camera_file(path: Path, width: int, height: int) -> Camera:
    """The Camera of a plate camera file for frames of ``width`` x ``height`` pixels."""
    path = Path(path)
    data = load_yaml(path, "camera file")
    if not isinstance(data, dict):
        raise InputError(str(path), None, f"expected a mapping of camera fields, got {type(data).__name__}")
    try:
        spec = CameraFile.model_validate(data)
    except ValidationError as err:
        raise validation_message(str(path), err) from None
    for name, want in (("width", width), ("height", height)):
        got = getattr(spec, name)
        if got is not None and got != want:
            raise InputError(str(path), name, f"{got} does not match the frames' {name} {want}")
    return camera_from_spec(spec, width, height)


def camera_from_spec(spec: CameraFile, width: int, height: int) -> Camera:
    """A validated camera file -> Camera for ``width`` x ``height`` frames."""
    if spec.fx is not None:
        fx = spec.fx
    else:
        assert spec.hfov_deg is not None  # the file's schema asks for one of the two
        fx = width / (2.0 * math.tan(math.radians(spec.hfov_deg) / 2.0))
    fy = spec.fy if spec.fy is not None else fx
    cx = width / 2.0 if spec.cx is None else spec.cx
    cy = height / 2.0 if spec.cy is None else spec.cy
    if spec.world_from_camera is not None:
        return camera_from_pose(width, height, fx, fy, cx, cy, np.asarray(spec.world_from_camera))
    assert spec.height_m is not None  # the file's schema asks for height_m or world_from_camera
    return Camera(name=PLATE_CAMERA_NAME, width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy,
                  position=(0.0, 0.0, spec.height_m), yaw=math.radians(spec.yaw_deg),
                  pitch=math.radians(spec.pitch_deg), roll=math.radians(spec.roll_deg))


# ----------------------------------------------------------------------------------------------
# b. image <-> ground correspondences


def read_correspondences(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV of ``u, v, x, y`` rows (pixels; ground metres), with or without a header line.

    Returns (N, 2) float64 image points and (N, 2) float64 ground points.
    """
    path = Path(path)
    try:
        rows = list(csv.reader(read_text(path, "correspondence CSV").splitlines()))
    except csv.Error as e:
        raise InputError(str(path), None, f"not a CSV file ({e})") from None
    values = []
    for i, row in enumerate(rows, 1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#"):
            continue
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            if values or i > 1:  # only the first line may be a header
                raise InputError(str(path), f"line {i}",
                                 f"expected 4 numbers u, v, x, y, got {','.join(cells)}") from None
            continue
        if len(values[-1]) != 4:
            raise InputError(str(path), f"line {i}", f"expected 4 numbers u, v, x, y, got {len(values[-1])}")
    arr = np.asarray(values, np.float64).reshape(-1, 4)
    return arr[:, :2], arr[:, 2:]


def _normalizer(points: np.ndarray) -> np.ndarray:
    """(3, 3) similarity moving (N, 2) points to zero mean and mean distance sqrt(2) (Hartley)."""
    mean = points.mean(0)
    scale = math.sqrt(2.0) / max(float(np.linalg.norm(points - mean, axis=1).mean()), 1e-12)
    return np.array([[scale, 0.0, -scale * mean[0]], [0.0, scale, -scale * mean[1]], [0.0, 0.0, 1.0]])


def _apply(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ H.T
    return p[:, :2] / p[:, 2:3]


def check_correspondences(uv: np.ndarray, xy: np.ndarray, source: str = "correspondences") -> None:
    """Raise a one-line InputError unless uv and xy are N >= 4 matching, non-collinear points."""
    uv, xy = np.asarray(uv, np.float64), np.asarray(xy, np.float64)
    if uv.ndim != 2 or uv.shape[1:] != (2,) or uv.shape != xy.shape:
        raise InputError(source, None, f"expected matching (N, 2) image and ground points, got {uv.shape} and "
                                       f"{xy.shape}")
    if not (np.isfinite(uv).all() and np.isfinite(xy).all()):
        raise InputError(source, None, "points must be finite numbers")
    n_distinct = min(len(np.unique(uv, axis=0)), len(np.unique(xy, axis=0)))
    if n_distinct < MIN_POINTS:
        raise InputError(source, None, f"need at least {MIN_POINTS} distinct image <-> ground points, got {n_distinct}")
    for name, pts in (("image", uv), ("ground", xy)):
        s = np.linalg.svd(pts - pts.mean(0), compute_uv=False)
        if s[1] < 1e-3 * s[0]:
            raise InputError(source, None, f"the {name} points are collinear; a ground homography needs points "
                                           "spread over an area")


def ground_homography(uv: np.ndarray, xy: np.ndarray, source: str = "correspondences") -> np.ndarray:
    """The (3, 3) homography H with ``[u, v, 1] ~ H [x, y, 1]`` by the normalised DLT.

    Args:
        uv: (N, 2) image points, pixels. xy: (N, 2) ground points (world z = 0), metres.
    """
    check_correspondences(uv, xy, source)
    Tu, Tx = _normalizer(uv), _normalizer(xy)
    a, b = _apply(Tu, uv), _apply(Tx, xy)
    (u, v), (x, y), one, zero = a.T, b.T, np.ones(len(a)), np.zeros(len(a))
    rows = np.concatenate([np.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], 1),
                           np.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], 1)])
    _, s, vt = np.linalg.svd(rows)
    s = np.r_[s, np.zeros(9 - len(s))]  # 4 points give 8 rows: the 9th singular value is 0
    # a second (near-)zero singular value: more than one homography fits, e.g. 3 of 4 points collinear
    if s[7] < 1e-8 * s[0]:
        raise InputError(source, None, "degenerate points: three or more are collinear or repeat, so no unique "
                                       "ground homography exists")
    H = np.linalg.inv(Tu) @ vt[-1].reshape(3, 3) @ Tx
    return H / np.linalg.norm(H)


def focal_from_homography(H: np.ndarray, cx: float, cy: float, scale: float) -> float | None:
    """Focal length (pixels, square pixels) from a ground homography and the principal point.

    The columns h1, h2 of ``K^-1 H`` are orthogonal and of equal length (they are the rotation's
    first two columns times one scale), which gives two linear equations in w = 1 / f^2, solved
    in least squares. ``scale`` (a rough focal, e.g. the image width) keeps them balanced.
    Returns None when the constraints do not determine f (camera looking straight down at the
    plane, or seeing it edge-on).
    """
    Hc = np.diag([1.0 / scale, 1.0 / scale, 1.0]) @ np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]]) @ H
    Hc = Hc / np.linalg.norm(Hc)
    (a1, a2), (b1, b2), (c1, c2) = Hc[:, 0:2]
    A = np.array([a1 * a2 + b1 * b2, a1 * a1 + b1 * b1 - a2 * a2 - b2 * b2])
    B = np.array([c1 * c2, c1 * c1 - c2 * c2])
    denom = float(A @ A)
    if denom < 1e-18:
        return None
    w = -float(A @ B) / denom
    if not (w > 0 and math.isfinite(w)):
        return None
    return scale / math.sqrt(w)


def pose_from_homography(H: np.ndarray, K: np.ndarray, uv: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(4, 4) world_from_camera from ``H ~ K [r1 r2 t]`` (camera_from_world), with the sign chosen
    so the points lie in front of the camera and R made the nearest rotation."""
    M = np.linalg.inv(K) @ H
    lam = 2.0 / (np.linalg.norm(M[:, 0]) + np.linalg.norm(M[:, 1]))
    M = M * lam
    ground = np.c_[xy, np.ones(len(xy))]
    if np.median((ground @ M.T)[:, 2]) < 0:  # camera-frame z of the points must be positive
        M = -M
    r1, r2, t = M[:, 0], M[:, 1], M[:, 2]
    R = np.c_[r1, r2, np.cross(r1, r2)]
    U, _, Vt = np.linalg.svd(R)
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    T = np.eye(4)
    T[:3, :3] = R.T
    T[:3, 3] = -R.T @ t
    return T


def reprojection_errors(camera: Camera, uv: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N,) pixel distances between image points and their ground points (z = 0) projected."""
    proj, z = camera.project(np.c_[xy, np.zeros(len(xy))])
    err = np.linalg.norm(proj - uv, axis=1)
    return np.where(z > 0, err, np.inf)


def refine_camera(camera: Camera, uv: np.ndarray, xy: np.ndarray, fix_focal: bool = False,
                  iterations: int = 100) -> Camera:
    """Levenberg-Marquardt on (f, yaw, pitch, roll, x, y, z) minimising the squared reprojection
    error of ground points xy (N, 2, metres, z = 0) against image points uv (N, 2, pixels).

    Square pixels and a fixed principal point; ``fix_focal`` keeps f too. Jacobians by central
    differences: there are only 7 unknowns.
    """
    ground = np.c_[xy, np.zeros(len(xy))]
    size, pp = (camera.width, camera.height), (camera.cx, camera.cy)
    params = np.array([camera.fx, camera.yaw, camera.pitch, camera.roll, *camera.position], np.float64)
    free = np.arange(1 if fix_focal else 0, 7)

    def residuals(p: np.ndarray) -> np.ndarray:
        proj, _ = _camera_from_params(p, *size, *pp).project(ground)
        return (proj - uv).ravel()

    res = residuals(params)
    cost, lam = float(res @ res), 1e-3
    for _ in range(iterations):
        steps = np.array([1e-6 * params[0], 1e-7, 1e-7, 1e-7, *(1e-7 * (1.0 + np.abs(params[4:])))])
        J = np.stack([(residuals(params + e) - residuals(params - e)) / (2 * e.sum())
                      for e in np.diag(steps)[free]], 1)
        g, JtJ = J.T @ res, J.T @ J
        improved = False
        while lam < 1e10:
            trial = params.copy()
            trial[free] += np.linalg.solve(JtJ + lam * np.diag(np.diag(JtJ) + 1e-12), -g)
            r = residuals(trial) if trial[0] > 0 else np.array([np.inf])
            c = float(r @ r)
            if np.isfinite(c) and c < cost:
                improved = cost - c > 1e-12 * cost
                params, res, cost, lam = trial, r, c, max(lam / 10.0, 1e-12)
                break
            lam *= 10.0
        if not improved:
            break
    return _camera_from_params(params, *size, *pp)


def fit_camera_from_correspondences(uv: np.ndarray, xy: np.ndarray, width: int, height: int,
                                    focal_px: float | None = None, cx: float | None = None,
                                    cy: float | None = None,
                                    source: str = "correspondences") -> tuple[Camera, FitReport]:
    """Fit a pinhole camera to image <-> ground correspondences.

    The ground homography (normalised DLT) gives the focal length (unless ``focal_px`` is given)
    and the pose, ``H ~ K [r1 r2 t]``; Levenberg-Marquardt then refines focal, rotation and
    position on the reprojection error. The camera lives in the points' ground frame (z = 0).

    Args:
        uv: (N, 2) image points, continuous pixel coordinates (pixel (u, v) covers [u, u+1)).
        xy: (N, 2) ground points, metres, N >= 4, not collinear.
        width, height: image size in pixels.
        focal_px: known focal length (pixels); estimated when None.
        cx, cy: principal point; the image centre when None.
        source: names the input in error messages.

    Returns:
        The Camera and a FitReport with the RMS / median / max reprojection error in pixels.
    """
    uv, xy = np.asarray(uv, np.float64), np.asarray(xy, np.float64)
    H = ground_homography(uv, xy, source)
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    f = focal_px or focal_from_homography(H, cx, cy, scale=float(max(width, height)))
    if f is None:
        raise InputError(source, None, "cannot recover the focal length from these points (camera looking straight "
                                       "down or the ground seen edge-on); give the focal length")
    K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    T = pose_from_homography(H, K, uv, xy)
    if T[2, 3] <= 0:
        raise InputError(source, None, "the fitted camera is below the ground: the ground axes (x, y) are "
                                       "left-handed seen from above; swap x and y or negate one")
    camera = refine_camera(camera_from_pose(width, height, f, f, cx, cy, T), uv, xy, fix_focal=focal_px is not None)
    err = reprojection_errors(camera, uv, xy)
    report = FitReport(method="correspondences", n_points=len(uv), rms_px=float(np.sqrt(np.mean(err ** 2))),
                       median_px=float(np.median(err)), max_px=float(err.max()))
    return camera, report
