"""Per-pixel geometry the weather effects need from a depth map: the camera, ray distances,
ray elevations, upward-facing surfaces, and the conversion between image value ranges.

Depth everywhere in the weather stage is float32 z-depth in metres along the optical axis, with
``inf`` or ``0`` (the KITTI PNG convention) meaning no surface (sky); ``clean_depth`` turns both
into ``inf``. Images are (H, W, 3) ``uint8`` (0..255) or ``float32`` (0..1, linear-ish as the
renderer makes them); effects work in the image's own dtype with OpenCV's per-pixel arithmetic
(colours given in 0..1 are scaled by ``peak``), which keeps uint8 frames from ever being copied
to float: the whole stage then costs a few full-image passes.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import cv2
import numpy as np

from longtail.render.camera import normalized_coords
from longtail.render.weather.fused import upward_raw
from longtail.worlds.scene import Camera

DEFAULT_HFOV_DEG = 81.0  # the scenarios' default camera (README)
DEFAULT_HEIGHT_M = 1.65
BODY_FROM_CAM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def default_camera(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG,
                   height_m: float = DEFAULT_HEIGHT_M, pitch_deg: float = 0.0) -> Camera:
    """A car-mounted pinhole camera for images without calibration: square pixels, centred
    principal point, ``height_m`` above the ground (world z = 0), looking along +x."""
    f = width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))
    return Camera(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0,
                  position=(0.0, 0.0, height_m), pitch=math.radians(pitch_deg))


def camera_from_matrices(K, world_from_camera, width: int, height: int) -> Camera:
    """A Camera from intrinsics K (3, 3) and the (4, 4) world-from-camera transform of a frame
    record (OpenCV camera axes, world z up): position plus yaw/pitch/roll recovered from the
    rotation (``Camera.world_from_camera`` composes Rz(yaw) Ry(pitch) Rx(roll) @ body_from_cam)."""
    K = np.asarray(K, np.float64)
    T = np.asarray(world_from_camera, np.float64)
    R = T[:3, :3] @ BODY_FROM_CAM.T
    pitch = math.asin(float(np.clip(-R[2, 0], -1.0, 1.0)))
    roll = math.atan2(R[2, 1], R[2, 2])
    yaw = math.atan2(R[1, 0], R[0, 0])
    return Camera(width=width, height=height, fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]),
                  cy=float(K[1, 2]), position=(float(T[0, 3]), float(T[1, 3]), float(T[2, 3])), yaw=yaw,
                  pitch=pitch, roll=roll, far=1e4)


def camera_for_image(shape: tuple[int, ...], K=None, world_from_camera=None, hfov_deg: float = DEFAULT_HFOV_DEG,
                     height_m: float = DEFAULT_HEIGHT_M, pitch_deg: float = 0.0) -> Camera:
    """The camera of an image of ``shape`` (H, W, ...): from K / world_from_camera where given,
    the defaults (``default_camera``) for whatever is missing. Memoised for hashable arguments
    (a ``FrameCamera``'s tuples): the same Camera object per frame size, so the per-camera
    geometry caches below hit by identity."""
    key = (int(shape[0]), int(shape[1]), K, world_from_camera, hfov_deg, height_m, pitch_deg)
    try:
        return _camera_for_image(*key)
    except TypeError:  # lists or arrays: not hashable
        return _camera_for_image.__wrapped__(*key)


@lru_cache(maxsize=64)
def _camera_for_image(h: int, w: int, K, world_from_camera, hfov_deg: float, height_m: float,
                      pitch_deg: float) -> Camera:
    base = default_camera(w, h, hfov_deg, height_m, pitch_deg)
    if K is None and world_from_camera is None:
        return base
    return camera_from_matrices(base.K if K is None else K,
                                base.world_from_camera() if world_from_camera is None else world_from_camera, w, h)


def clean_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) float32 z-depth in metres with every no-surface pixel (0, negative, nan, inf) = inf."""
    d = np.asarray(depth, np.float32)
    if d.ndim == 3:
        d = d[..., 0]
    if d.size and d.min() > 0:  # already clean (nan fails the test): no copy
        return d
    return np.where(d > 0, d, np.float32(np.inf)).astype(np.float32, copy=False)


# The per-pixel ray geometry below depends on the camera only, so it is memoised (the arrays are
# returned read-only): a dataset's frames share one camera, and an effect then pays for its
# per-pixel work only.
@lru_cache(maxsize=16)
def ray_scale(camera: Camera) -> np.ndarray:
    """(H, W) float32 ray length per metre of z-depth: sqrt(x^2 + y^2 + 1) for normalised coords."""
    x, y = normalized_coords(camera)
    return _read_only(np.sqrt(x * x + y * y + 1.0, dtype=np.float32))


@lru_cache(maxsize=16)
def ray_up(camera: Camera) -> np.ndarray:
    """(H, W) float32 world-z component of each pixel's unit ray direction (sine of its elevation)."""
    x, y = normalized_coords(camera)
    T = camera.world_from_camera().astype(np.float32)
    return _read_only((T[2, 0] * x + T[2, 1] * y + T[2, 2]) / ray_scale(camera))


@lru_cache(maxsize=16)
def reflected_pixels(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel's ray mirrored in a horizontal plane meets the image: (map_x, map_y)
    (H, W) float32 for ``cv2.remap`` (-1 where the mirrored ray points behind the camera).

    For a wet road this is the screen-space reflection of distant scenery: exact for points at
    infinity, a good approximation for anything much farther than the camera height.
    """
    x, y = normalized_coords(camera)
    T = camera.world_from_camera()[:3, :3].astype(np.float32)
    dirs = [T[i, 0] * x + T[i, 1] * y + T[i, 2] for i in range(3)]
    dirs[2] = -dirs[2]
    c = [T[0, i] * dirs[0] + T[1, i] * dirs[1] + T[2, i] * dirs[2] for i in range(3)]  # back to camera axes
    zc = np.where(c[2] > 1e-3, c[2], np.float32(np.nan))
    mx = np.nan_to_num(camera.fx * c[0] / zc + camera.cx - 0.5, nan=-1.0)
    my = np.nan_to_num(camera.fy * c[1] / zc + camera.cy - 0.5, nan=-1.0)
    return _read_only(mx.astype(np.float32)), _read_only(my.astype(np.float32))


@lru_cache(maxsize=16)
def reflected_maps(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """``reflected_pixels`` as OpenCV's fixed-point remap maps (``cv2.convertMaps``, CV_16SC2 and
    its 1/32-pixel fractions): a remap with them skips the per-call conversion. Rows slice
    alike."""
    m1, m2 = cv2.convertMaps(*reflected_pixels(camera), cv2.CV_16SC2)
    return _read_only(m1), _read_only(m2)


_SCRATCH = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A work buffer of ``shape`` and ``dtype`` kept per thread under ``name`` and handed out
    again on the next call (contents undefined): the effects' frame-sized temporaries, which
    otherwise cost a fresh allocation (page faults included) per pass, more than the arithmetic.
    Never return one to the caller; two buffers live at once need two names."""
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    a = bufs.get(name)
    if a is None or a.shape != tuple(shape) or a.dtype != dtype:
        a = bufs[name] = np.empty(shape, dtype)
    return a


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=32)
def subsampled_camera(camera: Camera, k: int) -> Camera:
    """The camera of ``image[::k, ::k]``: every k-th pixel, starting at the first."""
    shift = 0.5 * (k - 1)  # pixel a of the result is centred on full-resolution pixel centre k a + 0.5
    return camera.model_copy(update=dict(width=-(-camera.width // k), height=-(-camera.height // k),
                                         fx=camera.fx / k, fy=camera.fy / k, cx=(camera.cx + shift) / k,
                                         cy=(camera.cy + shift) / k))


def upward_normal(depth: np.ndarray, camera: Camera, k: int = 4) -> np.ndarray:
    """World-z component of the surface normal (1 = horizontal surface facing up, 0 = wall or
    sky) on every k-th pixel of ``depth`` (H, W, metres, inf = sky): (ceil(H/k), ceil(W/k))
    float32. ``subsampled_camera(camera, k)`` is the camera of the result.

    For the surface z(u, v) seen along (x, y, 1) the normal facing the camera is proportional to
    ``(fx z_u, fy z_v, -(z + x fx z_u + y fy z_v))`` (the cross product of the surface's image
    derivatives, divided by z / (fx fy)). What it feeds (wetness, snow cover) is smooth, so 1/k^2
    of the pixels suffice; a 3 x 3 erosion drops the smeared normals at silhouettes.
    """
    cx, cy, ax, by, r2 = _normal_coefficients(camera, k)
    low = np.ascontiguousarray(depth[::k, ::k])
    raw = upward_raw(low, cx, cy, ax, by, r2)  # compiled: one pass instead of the ~30 below
    if raw is not None:
        return cv2.erode(raw, np.ones((3, 3), np.uint8))
    finite = np.isfinite(low)
    z = np.where(finite, low, np.float32(0.0)).astype(np.float32, copy=False)
    # central differences inside, one-sided at the borders (as np.gradient)
    zu, zv = np.empty_like(z), np.empty_like(z)
    np.subtract(z[:, 2:], z[:, :-2], out=zu[:, 1:-1])
    zu[:, 1:-1] *= np.float32(0.5)
    np.subtract(z[:, 1], z[:, 0], out=zu[:, 0])
    np.subtract(z[:, -1], z[:, -2], out=zu[:, -1])
    np.subtract(z[2:], z[:-2], out=zv[1:-1])
    zv[1:-1] *= np.float32(0.5)
    np.subtract(z[1], z[0], out=zv[0])
    np.subtract(z[-1], z[-2], out=zv[-1])
    nx = zu * cx  # fx z_u
    ny = zv * cy  # fy z_v
    nz = ax * nx  # -(z + x nx + y ny), and the world-z component R2 . n = num
    nz += by * ny
    nz += z
    nz *= np.float32(-1.0)
    num = r2[0] * nx + r2[1] * ny + r2[2] * nz
    norm = nx * nx
    norm += ny * ny
    norm += nz * nz
    np.sqrt(norm, out=norm)
    norm += np.float32(1e-12)
    num /= norm
    np.maximum(num, np.float32(0.0), out=num)
    num[~finite] = 0.0
    return cv2.erode(num, np.ones((3, 3), np.uint8))


@lru_cache(maxsize=16)
def _normal_coefficients(camera: Camera, k: int):
    """Per-camera constants of ``upward_normal``: fx, fy, the normalised x (1, w) and y (h, 1)
    of ``subsampled_camera(camera, k)`` and the world-z row of the camera rotation."""
    cam = subsampled_camera(camera, k)
    x, y = normalized_coords(cam)
    R = camera.world_from_camera()[2, :3].astype(np.float32)
    return np.float32(cam.fx), np.float32(cam.fy), _read_only(x), _read_only(y), tuple(np.float32(v) for v in R)


@lru_cache(maxsize=16)
def _ground_rays(camera: Camera, k: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """World x and y of each ray of ``subsampled_camera(camera, k)`` per metre of z-depth, (h, w)
    float32 each, and the camera's world x, y."""
    x, y = normalized_coords(subsampled_camera(camera, k))
    T = camera.world_from_camera().astype(np.float32)
    X, Y = ((T[i, 0] * x + T[i, 1] * y + T[i, 2]) for i in range(2))
    return _read_only(X), _read_only(Y), float(T[0, 3]), float(T[1, 3])


def ground_pattern(depth: np.ndarray, camera: Camera, texture: np.ndarray, cell_m: float, k: int = 4,
                   octaves: int = 2, first_row: int = 0) -> np.ndarray:
    """A texture (h, w) laid on the world's ground plane, tiled, one texel per ``cell_m`` metres,
    as seen on every k-th pixel of ``depth`` (like ``upward_normal``): patches of puddles or snow
    that shrink with distance as real ones do. One or two octaves (cell, cell / 4), 0..1 float32.
    Only the rows from ``first_row`` (of the result) down."""
    low = depth[k * first_row::k, ::k]
    z = np.where(np.isfinite(low), low, np.float32(0.0)).astype(np.float32, copy=False)
    rx, ry, x0, y0 = _ground_rays(camera, k)
    X = rx[first_row:] * z  # world x, y; z is not needed
    X += np.float32(x0)
    Y = ry[first_row:] * z
    Y += np.float32(y0)
    th, tw = texture.shape
    # the tiling done here (coordinates modulo the texture, one wrapped texel of margin), not by
    # OpenCV's BORDER_WRAP, which is several times slower than the rest of the pass
    tiled = np.empty((th + 1, tw + 1), texture.dtype)
    tiled[:th, :tw] = texture
    tiled[th, :tw] = texture[0]
    tiled[:, tw] = tiled[:, 0]
    out = None
    for scale_m, weight in ((cell_m, 0.7 if octaves > 1 else 1.0), (cell_m / 4.0, 0.3))[:octaves]:
        mx, my = _wrapped(X, 1.0 / (scale_m * tw), tw), _wrapped(Y, 1.0 / (scale_m * th), th)
        # the stubs say any numeric array (or Mat); remap keeps ``tiled``'s dtype
        layer: np.ndarray = cv2.remap(tiled, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if weight != 1.0:
            layer *= np.float32(weight)
        out = layer if out is None else np.add(out, layer, out=out)
    assert out is not None  # one or two octaves: the loop ran
    return clip_(out, 0.0, 1.0, out=out)


def _wrapped(v: np.ndarray, inv_period: float, n: int) -> np.ndarray:
    """``n (v inv_period mod 1)``: coordinates in [0, n] of a texture n texels across."""
    a = v * np.float32(inv_period)
    a -= np.floor(a)
    a *= np.float32(n)
    return a


def clip_(a: np.ndarray, lo, hi, out: np.ndarray | None = None) -> np.ndarray:
    """``np.clip`` without its Python-level dispatch (several microseconds a call, which adds
    up over the dozens of small arrays an effect clips per frame)."""
    r = np.maximum(a, lo, out=out)
    return np.minimum(r, hi, out=r)


def every_kth(image: np.ndarray, k: int) -> np.ndarray:
    """``image[::k, ::k]`` as a new contiguous array, by OpenCV's nearest-neighbour resize where
    it picks exactly those pixels (several times faster than numpy's strided copy of a frame)."""
    H, W = image.shape[:2]
    h, w = H // k, W // k
    if h == 0 or w == 0:
        return np.ascontiguousarray(image[::k, ::k])
    out = np.empty((-(-H // k), -(-W // k), *image.shape[2:]), image.dtype)
    cv2.resize(image[:h * k, :w * k], (w, h), dst=out[:h, :w], interpolation=cv2.INTER_NEAREST)
    if out.shape[0] > h:
        out[h:] = image[h * k::k, ::k]
    if out.shape[1] > w:
        out[:h, w:] = image[:h * k:k, w * k::k]
    return out


def upsample(low: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize of a low-resolution (h, w) map to ``shape`` (H, W, ...)."""
    return cv2.resize(low, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def upward_facing(depth: np.ndarray, camera: Camera, k: int = 4) -> np.ndarray:
    """(H, W) float32 ``upward_normal`` at full resolution."""
    return upsample(upward_normal(depth, camera, k), depth.shape)


def peak(image: np.ndarray) -> float:
    """White level of an image's dtype: 255 for uint8, 1 for float."""
    return 255.0 if image.dtype == np.uint8 else 1.0


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is (H, W, 3) uint8 or float32."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.float32):
        raise ValueError(f"expected an (H, W, 3) uint8 or float32 image, got {image.shape} {image.dtype}")


def solid(image: np.ndarray, color) -> np.ndarray:
    """An image of ``image``'s shape and dtype filled with ``color`` (3,), given in 0..1."""
    H, W = image.shape[:2]
    px = np.asarray(color, np.float32) * np.float32(peak(image))
    row = np.tile(px if image.dtype != np.uint8 else np.rint(px), W).astype(image.dtype).reshape(1, W, 3)
    return np.repeat(row, H, axis=0)  # whole rows at a time: numpy fills a trailing axis of 3 slowly


def scale_(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``image *= weight`` per pixel, in place, for (H, W) weights in 0..1; returns ``image``.

    uint8 images take the weights as 8-bit fixed point (1/255 steps, below what 8-bit output
    resolves) so the three-channel weight map is a quarter of the float32 one: large fresh
    allocations, not arithmetic, dominate the cost of a pass over a frame.
    """
    if image.dtype == np.uint8:
        w8 = cv2.convertScaleAbs(weight, alpha=255.0)
        return cv2.multiply(image, cv2.merge([w8, w8, w8]), dst=image, scale=1.0 / 255.0)
    w = weight.astype(np.float32, copy=False)
    return cv2.multiply(image, cv2.merge([w, w, w]), dst=image)


def blend(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """``(a wa + b wb) / (wa + wb)`` per pixel for images of one dtype and (H, W) float32 weights."""
    return cv2.blendLinear(a, b, wa.astype(np.float32, copy=False), wb.astype(np.float32, copy=False))


def clip_float(image: np.ndarray) -> np.ndarray:
    """Float images stay in 0..1 as uint8 ones saturate at 0..255; uint8 passes through."""
    return image if image.dtype == np.uint8 else np.clip(image, 0.0, 1.0, out=image)
