"""Real plates: a background image from real footage, the camera that took it, and the depth of
its ground, standing in for a road layout (actors are placed on the plate's ground and drawn over
the plate with its camera).

A plate directory holds::

    plate.png       8-bit RGB: the per-pixel temporal median of the frames (moving things vanish)
    depth.png       16-bit z-depth along the optical axis, metres x 256, 0 = none
                    (longtail.dataset.encode_depth, as in rendered datasets)
    camera.json     {"format", "format_version", "camera": Camera.model_dump(), "fit": FitReport,
                     "frames": {"source", "count", "stride"}}
    sky.json        {"airlight": [r, g, b], "from": region}: haze colour on plate.png's scale / 255,
                    0..1, estimated "above_horizon" or, with no sky in view, from the "top_rows"
    occluders.png   optional 8-bit mask, 255 = static occluder in front of inserted objects

Depth model (keep it simple): below the horizon each pixel sees the ground plane z = 0. Pixels at
or above the horizon, and ground farther than ``far_m``, get ``far_m``: a distant backdrop, so
inserted objects pass in front of it and fog treats it as far away. Vertical structures below
the horizon (walls, parked vans) are not modelled, except through occluder masks: an occluder
pixel takes the ground depth at the structure's foot, the first non-occluder pixel below it in
its column.

Frames: the camera's world is right-handed, metres, z up, ground z = 0 (see plate_camera).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from longtail.atomic import write_json, write_png
from longtail.dataset import decode_depth, encode_depth
from longtail import mot
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json, read_image
from longtail.worlds.plate_camera import (
    FitReport, Horizon, camera_from_horizon, fit_camera_from_correspondences, read_camera_file,
    read_correspondences,
)
from longtail.worlds.scenario import validation_message
from longtail.worlds.scene import Camera

__all__ = [
    "Plate", "Horizon", "FitReport", "frame_files", "sample_frame_files", "read_frames", "load_frames",
    "median_background", "ground_depth", "plate_depth", "sky_region", "estimate_airlight", "read_occluders",
    "correspondences_from_mot", "fit_camera", "fit_plate", "write_plate", "load_plate",
]

FORMAT = "longtail-plate"
FORMAT_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FILES = {"image": "plate.png", "depth": "depth.png", "camera": "camera.json", "sky": "sky.json",
         "occluders": "occluders.png", "regions": "regions.png"}
MAX_DEPTH_M = 255.0  # the 16-bit depth PNG holds up to 255.99 m


@dataclass(frozen=True, eq=False)
class Plate:
    """A fitted plate, as written to and read from a plate directory.

    Attributes:
        image: (H, W, 3) uint8 RGB background.
        depth: (H, W) float32 z-depth in metres along the optical axis (inf = none).
        camera: the pinhole camera of the plate (world z up, ground z = 0).
        airlight: haze / sky colour (r, g, b), 0..1 on the image's scale (value / 255).
        occluders: (H, W) bool, True = static occluder in front of inserted objects; or None.
        fit: how the camera was obtained and its reprojection error.
        regions: (H, W) bool, True = ground where inserted actors may stand (optional
            ``regions.png`` a user adds to the plate directory); None = all visible ground.
    """

    image: np.ndarray
    depth: np.ndarray
    camera: Camera
    airlight: tuple[float, float, float]
    occluders: np.ndarray | None
    fit: FitReport
    regions: np.ndarray | None = None

    @cached_property
    def image_f(self) -> np.ndarray:
        """(H, W, 3) float32 0..1 copy of ``image`` (compositing works in float)."""
        return self.image.astype(np.float32) / 255.0

    @cached_property
    def ground_xy(self) -> np.ndarray:
        """(H, W, 2) world (x, y) where each pixel centre's ray meets the ground; nan above the
        horizon."""
        g = ground_depth(self.camera)
        T = self.camera.world_from_camera()
        x = ((np.arange(self.camera.width) + 0.5 - self.camera.cx) / self.camera.fx)[None, :]
        y = ((np.arange(self.camera.height) + 0.5 - self.camera.cy) / self.camera.fy)[:, None]
        g = np.where(np.isfinite(g), g, np.nan)
        return np.stack([(T[i, 0] * x + T[i, 1] * y + T[i, 2]) * g + T[i, 3] for i in range(2)], -1)

    @cached_property
    def occluder_depth(self) -> np.ndarray:
        """(H, W) float32 z-depth of the static occluders (inf where there are none): each at the
        ground depth of its foot, so inserted objects behind it are hidden and those before it
        are not."""
        if self.occluders is None:
            return np.full(self.depth.shape, np.inf, np.float32)
        return np.where(self.occluders, plate_depth(self.camera, self.occluders), np.inf).astype(np.float32)

    def ground_pixels(self, distance_m: tuple[float, float]) -> np.ndarray:
        """Flat indices of the pixels whose ground point lies within ``distance_m`` (metres,
        along the ground from the camera's foot), allowed by ``regions`` and not occluded."""
        xy = self.ground_xy
        c = self.camera.position
        d = np.hypot(xy[..., 0] - c[0], xy[..., 1] - c[1])
        ok = np.isfinite(d) & (d >= distance_m[0]) & (d <= distance_m[1])
        if self.occluders is not None:
            ok &= ~self.occluders
        if self.regions is not None:
            ok &= self.regions
        return np.flatnonzero(ok)

    def ground_point(self, flat_index: int, du: float, dv: float) -> tuple[float, float]:
        """World (x, y) on the ground seen at a point (du, dv in 0..1) inside pixel ``flat_index``."""
        v, u = divmod(int(flat_index), self.camera.width)
        T = self.camera.world_from_camera()
        x = (u + du - self.camera.cx) / self.camera.fx
        y = (v + dv - self.camera.cy) / self.camera.fy
        ray = T[:3, :3] @ np.array([x, y, 1.0])
        k = -T[2, 3] / ray[2]
        return float(T[0, 3] + k * ray[0]), float(T[1, 3] + k * ray[1])


# ----------------------------------------------------------------------------------------------
# frames


def frame_files(source: Path) -> list[Path]:
    """Image files of a frame source, in order: a MOTChallenge sequence directory (seqinfo.ini +
    its imDir), a folder of images (.png, .jpg, ...; sorted by name) or a single image."""
    source = Path(source)
    if not source.exists():
        raise InputError(str(source), None, "no such file or directory")
    if source.is_file():
        return [source]
    if (source / "seqinfo.ini").is_file():
        return mot.frame_files(source)
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; InputError if it cannot be decoded."""
    return read_image(Path(path), mode="RGB")


def sample_frame_files(path: Path, max_frames: int = 200, stride: int | None = None) -> tuple[list[Path], int]:
    """Every ``stride``-th of a source's frame files, at most ``max_frames``; by default the
    stride spreads them over the whole source. Returns the files and the stride used."""
    if max_frames < 1:
        raise InputError("max_frames", None, f"expected at least 1 frame, got {max_frames}")
    if stride is not None and stride < 1:
        raise InputError("stride", None, f"expected a stride >= 1, got {stride}")
    files = frame_files(path)
    if not files:
        raise InputError(str(path), None, "no frames found; expected a MOTChallenge sequence (seqinfo.ini), a folder "
                                          f"of images ({', '.join(IMAGE_SUFFIXES)}) or an image file")
    stride = stride or max(1, math.ceil(len(files) / max_frames))
    return files[::stride][:max_frames], stride


def read_frames(files: Sequence[Path]) -> list[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of image files, which must all have one size."""
    frames: list[np.ndarray] = []
    for f in files:
        frame = read_rgb(f)
        if frames and frame.shape != frames[0].shape:
            h0, w0 = frames[0].shape[:2]
            raise InputError(str(f), None, f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first "
                                           f"frame's {w0}x{h0} ({Path(files[0]).name})")
        frames.append(frame)
    return frames


def load_frames(path: Path, max_frames: int = 200, stride: int | None = None) -> list[np.ndarray]:
    """Read up to ``max_frames`` frames of a source (see ``frame_files``), every ``stride``-th;
    by default the stride spreads them over the whole source.

    Returns:
        A list of (H, W, 3) uint8 RGB arrays, all of one size.
    """
    return read_frames(sample_frame_files(path, max_frames, stride)[0])


def median_background(frames: Sequence[np.ndarray], rows_per_block: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 per-pixel temporal median of (H, W, 3) uint8 frames: anything that covers a
    pixel in fewer than half the frames (people walking through) disappears. Works in blocks of
    rows so memory stays near one copy of the frames."""
    height = frames[0].shape[0]
    out = np.empty_like(frames[0])
    for r0 in range(0, height, rows_per_block):
        block = np.stack([f[r0:r0 + rows_per_block] for f in frames])
        out[r0:r0 + rows_per_block] = np.rint(np.median(block, axis=0)).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------
# depth, sky, occluders


def _ray_z(camera: Camera) -> np.ndarray:
    """(H, W) world-z component of each pixel centre's ray, scaled so its camera-frame z is 1:
    a point at z-depth d along the ray has world height ``position_z + d * ray_z``."""
    R = camera.world_from_camera()[:3, :3]
    x = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
    y = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
    return R[2, 0] * x[None, :] + R[2, 1] * y[:, None] + R[2, 2]


def ground_depth(camera: Camera) -> np.ndarray:
    """(H, W) float32 z-depth (metres) of the ground plane z = 0 seen through each pixel centre;
    inf where the ray does not descend (at and above the horizon)."""
    rz = _ray_z(camera)
    with np.errstate(divide="ignore"):
        depth = np.where(rz < 0, -camera.position[2] / rz, np.inf)
    return depth.astype(np.float32)


def plate_depth(camera: Camera, occluders: np.ndarray | None = None, far_m: float | None = None) -> np.ndarray:
    """(H, W) float32 z-depth of a plate (metres): the ground, ``far_m`` beyond it and above the
    horizon (default ``camera.far``), and on occluder pixels the ground depth at the occluder's
    foot (the first non-occluder pixel below in the same column; the bottom row's own ground
    if the occluder reaches the image bottom)."""
    far = np.float32(camera.far if far_m is None else far_m)
    depth = np.minimum(ground_depth(camera), far)
    if occluders is None or not occluders.any():
        return depth
    out = depth.copy()
    for r in range(camera.height - 2, -1, -1):  # bottom-up, so each foot depth carries upwards
        out[r] = np.where(occluders[r], out[r + 1], depth[r])
    return out


def sky_region(camera: Camera) -> tuple[np.ndarray, str]:
    """(H, W) bool pixels to look for the sky in, and their name: the pixels above the horizon
    ("above_horizon"), or the top tenth of the image ("top_rows") when less than 1 % of it is
    above the horizon (a camera looking down sees no sky)."""
    above = _ray_z(camera) >= 0
    if above.mean() >= 0.01:
        return above, "above_horizon"
    top = np.zeros_like(above)
    top[: max(1, camera.height // 10)] = True
    return top, "top_rows"


def estimate_airlight(image: np.ndarray, region: np.ndarray) -> tuple[float, float, float]:
    """Haze / sky colour (r, g, b), 0..1 as image value / 255, from the pixels of ``region``
    ((H, W) bool, see ``sky_region``).

    Sky and haze are bright and grey, unlike foliage and facades: the estimate is the median
    colour of the brightest tenth of the region's low-saturation pixels, leaving out clipped
    ones (their colour is lost). It falls back to all of the region's pixels when fewer than
    50 qualify.
    """
    px = image[region].astype(np.float32)
    hi, lo = px.max(1), px.min(1)
    grey = px[((hi - lo) < 0.2 * np.maximum(hi, 1.0)) & (hi < 250)]
    cand = grey if len(grey) >= 50 else px
    lum = cand @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    bright = cand[lum >= np.quantile(lum, 0.9)]
    return tuple(float(c) for c in np.median(bright, axis=0) / 255.0)


def read_occluders(paths: Path | Sequence[Path], width: int, height: int) -> np.ndarray:
    """(H, W) bool union of occluder mask images (nonzero = occluder), which must match the
    frames' size."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    mask = np.zeros((height, width), bool)
    for p in paths:
        m = read_image(p, mode="L") > 0
        if m.shape != mask.shape:
            raise InputError(str(p), None, f"mask size {m.shape[1]}x{m.shape[0]} differs from the frames' "
                                           f"{width}x{height}")
        mask |= m
    return mask


# ----------------------------------------------------------------------------------------------
# MOTChallenge correspondences


def correspondences_from_mot(seq_dir: Path, max_points: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Image <-> ground correspondences from a MOTChallenge 2015 sequence's ``gt/gt.txt``.

    Each box's bottom centre ``(left + w/2, top + h)`` is where the person's feet touch the
    ground, given in metres in columns 8-9 (world x, y). MOT pixel coordinates are 1-based, so
    1 is subtracted to reach longtail's continuous coordinates. Boxes flagged 0 (ignored) or
    touching the image border (feet possibly cut off) are skipped; beyond ``max_points``, an
    evenly spaced subset is kept.

    Returns:
        (N, 2) float64 image points (pixels) and (N, 2) float64 ground points (metres).
    """
    seq_dir = Path(seq_dir)
    gt = seq_dir / "gt" / "gt.txt"
    info = mot.read_seqinfo(seq_dir)
    if info.width is None or info.height is None:
        raise InputError(str(seq_dir / "seqinfo.ini"), None, "expected imWidth and imHeight in its [Sequence] section")
    width, height = info.width, info.height
    if not gt.is_file():
        raise InputError(str(gt), None, "not found; expected the sequence's MOTChallenge ground truth")
    rows = [r for _, r in mot.read_gt(gt) if len(r) >= 9]
    if not rows or all(r[7] == -1 and r[8] == -1 for r in rows):
        raise InputError(str(gt), None, "no world coordinates: expected MOT 2015 rows whose columns 8-9 are the "
                                        "ground position in metres")
    rows = np.array([r[:9] for r in rows], np.float64)
    left, top, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    keep = (rows[:, 6] != 0) & np.all(rows[:, 7:9] != -1, axis=1)
    keep &= (left > 1) & (top > 1) & (left + w < width) & (top + h < height)
    uv = np.c_[left - 1 + w / 2, top - 1 + h][keep]
    xy = rows[keep][:, 7:9]
    if len(uv) > max_points:
        idx = np.unique(np.linspace(0, len(uv) - 1, max_points).round().astype(int))
        uv, xy = uv[idx], xy[idx]
    return uv, xy


# ----------------------------------------------------------------------------------------------
# fitting and the plate directory


def fit_camera(width: int, height: int, camera_yaml: Path | None = None,
               correspondences: Path | tuple[np.ndarray, np.ndarray] | None = None,
               horizon: Horizon | None = None) -> tuple[Camera, FitReport]:
    """The plate camera from exactly one of: a camera file, correspondences (a ``u,v,x,y`` CSV
    or (uv, xy) arrays), or a Horizon."""
    given = [name for name, v in (("camera file", camera_yaml), ("correspondences", correspondences),
                                  ("horizon", horizon)) if v is not None]
    if len(given) != 1:
        raise InputError("camera", None, "give exactly one of a camera file, correspondences, or the horizon row with "
                                         f"camera height and focal length (got {', '.join(given) or 'none'})")
    if camera_yaml is not None:
        return read_camera_file(camera_yaml, width, height), FitReport(method="yaml")
    if horizon is not None:
        return camera_from_horizon(width, height, horizon), FitReport(method="horizon")
    if isinstance(correspondences, (str, Path)):
        source = str(correspondences)
        uv, xy = read_correspondences(Path(correspondences))
    else:
        source, (uv, xy) = "correspondences", correspondences
    return fit_camera_from_correspondences(uv, xy, width, height, source=source)


def _check_out(out: Path) -> None:
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise DatasetError(str(out), None, "already exists and is not an empty directory; choose a new plate directory")


def write_plate(plate: Plate, out: Path, frames_info: dict, sky_from: str) -> None:
    """Write a plate directory: every file goes into a temporary sibling directory, which is then
    renamed to ``out`` (an absent or empty directory), so a reader never sees half a plate.
    ``frames_info`` (source, count, stride) and ``sky_from`` (the airlight's region) are recorded."""
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a plate is an ordinary output folder
        write_png(tmp / FILES["image"], plate.image)
        write_png(tmp / FILES["depth"], encode_depth(plate.depth))
        write_json(tmp / FILES["camera"], {"format": FORMAT, "format_version": FORMAT_VERSION,
                                           "camera": plate.camera.model_dump(), "fit": plate.fit.model_dump(),
                                           "frames": frames_info})
        write_json(tmp / FILES["sky"], {"airlight": list(plate.airlight), "from": sky_from})
        if plate.occluders is not None:
            write_png(tmp / FILES["occluders"], plate.occluders.astype(np.uint8) * 255)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fit_plate(source: Path, out: Path, camera_yaml: Path | None = None,
              correspondences: Path | tuple[np.ndarray, np.ndarray] | None = None,
              horizon: Horizon | None = None, occluders: Path | Sequence[Path] | None = None,
              max_frames: int = 200, far_m: float | None = None) -> Plate:
    """Fit a plate to footage and write it to ``out`` (see the module docstring for the files).

    Args:
        source: a MOTChallenge sequence directory, a folder of images or one image.
        out: the plate directory to create (absent or empty).
        camera_yaml, correspondences, horizon: exactly one way to get the camera (``fit_camera``).
        occluders: mask image(s), nonzero = static occluder in front of inserted objects.
        max_frames: frames sampled evenly over the source for the median.
        far_m: backdrop depth above the horizon and beyond (default the camera's far plane,
            250 m); at most 255 m, the range of the depth PNG.

    Returns:
        The Plate as written (depth quantised as stored, so it equals ``load_plate(out)``).
    """
    out = Path(out)
    _check_out(out)
    if far_m is not None and not 0 < far_m <= MAX_DEPTH_M:
        raise InputError("far_m", None, f"expected a backdrop depth in (0, {MAX_DEPTH_M:g}] metres, got {far_m}")
    files, stride = sample_frame_files(source, max_frames)
    height, width = read_rgb(files[0]).shape[:2]  # check the camera and masks before reading every frame
    camera, report = fit_camera(width, height, camera_yaml, correspondences, horizon)
    mask = read_occluders(occluders, width, height) if occluders is not None else None
    frames = read_frames(files)
    image = median_background(frames)
    depth = plate_depth(camera, mask, far_m if far_m is not None else min(camera.far, MAX_DEPTH_M))
    region, region_name = sky_region(camera)
    plate = Plate(image=image, depth=decode_depth(encode_depth(depth)), camera=camera,
                  airlight=estimate_airlight(image, region), occluders=mask, fit=report)
    write_plate(plate, out, {"source": str(source), "count": len(frames), "stride": stride}, region_name)
    return plate


def _read_json(path: Path) -> dict:
    try:
        data = load_json(path)
    except InputError as e:
        raise _as_dataset_error(e) from None
    if not isinstance(data, dict):
        raise DatasetError(str(path), None, "expected a JSON object")
    return data


def _read_plate_png(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except InputError as e:
        raise _as_dataset_error(e) from None


def _as_dataset_error(err: InputError) -> DatasetError:
    return DatasetError(err.source, err.field, err.problem)


def load_plate(path: Path) -> Plate:
    """Read and validate a plate directory written by ``fit_plate``; DatasetError names the
    missing or bad file."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(str(root), None, "plate directory not found")
    for key in ("image", "depth", "camera", "sky"):
        if not (root / FILES[key]).is_file():
            raise DatasetError(str(root / FILES[key]), None, "missing; not a plate directory (fit one first)")
    meta_path = root / FILES["camera"]
    meta = _read_json(meta_path)
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(str(meta_path), "format", f"expected {FORMAT!r} version {FORMAT_VERSION}")
    try:
        camera = Camera.model_validate(meta.get("camera"))
        fit = FitReport.model_validate(meta.get("fit"))
    except ValidationError as err:
        raise _as_dataset_error(validation_message(str(meta_path), err)) from None
    size = (camera.height, camera.width)
    image = _read_plate_png(root / FILES["image"])
    if image.dtype != np.uint8 or image.shape != (*size, 3):
        raise DatasetError(str(root / FILES["image"]), None, f"expected 8-bit RGB {camera.width}x{camera.height} "
                                                             f"(the camera's size), got {image.dtype} {image.shape}")
    depth_png = _read_plate_png(root / FILES["depth"])
    if depth_png.dtype != np.uint16 or depth_png.shape != size:
        raise DatasetError(str(root / FILES["depth"]), None, f"expected 16-bit {camera.width}x{camera.height} depth, "
                                                             f"got {depth_png.dtype} {depth_png.shape}")
    sky_path = root / FILES["sky"]
    airlight = _read_json(sky_path).get("airlight")
    if not (isinstance(airlight, list) and len(airlight) == 3
            and all(isinstance(c, (int, float)) and 0.0 <= c <= 1.0 for c in airlight)):
        raise DatasetError(str(sky_path), "airlight", f"expected 3 numbers in [0, 1], got {json.dumps(airlight)}")
    occluders = None
    if (root / FILES["occluders"]).is_file():
        occ = _read_plate_png(root / FILES["occluders"])
        if occ.shape != size:
            raise DatasetError(str(root / FILES["occluders"]), None, f"expected a {camera.width}x{camera.height} "
                                                                     f"mask, got shape {occ.shape}")
        occluders = occ > 0
    regions = None
    if (root / FILES["regions"]).is_file():
        reg = _read_plate_png(root / FILES["regions"])
        reg = reg if reg.ndim == 2 else reg[..., 0]
        if reg.shape != size:
            raise DatasetError(str(root / FILES["regions"]), None, f"expected a {camera.width}x{camera.height} "
                                                                  f"mask, got shape {reg.shape}")
        regions = reg > 0
    return Plate(image=image, depth=decode_depth(depth_png), camera=camera,
                 airlight=tuple(float(c) for c in airlight), occluders=occluders, fit=fit, regions=regions)


@lru_cache(maxsize=4)
def load_plate_cached(path: str) -> Plate:
    """``load_plate`` once per process and plate (frames of a dataset share it; read-only)."""
    return load_plate(Path(path))
