"""The plate directory: the ``Plate`` a fit produces, writing it, reading it back (checked), and
``fit_plate``, which makes one from footage (footage.py), a camera (camera.py) and the ground
model (ground.py). The file layout is in the package docstring.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from longtail.atomic import write_json, write_png
from longtail.depth import decode_depth, encode_depth
from longtail.errors import DatasetError, InputError
from longtail.readers import load_json, read_image, validation_message
from longtail.worlds.plates.camera import (
    FitReport, Horizon, camera_from_horizon, fit_camera_from_correspondences, read_camera_file,
    read_correspondences,
)
from longtail.worlds.plates.footage import (
    median_background, read_frames, read_occluders, read_rgb, sample_footage_files,
)
from longtail.worlds.plates.ground import estimate_airlight, ground_depth, plate_depth, sky_region
from longtail.worlds.scene import Camera, vec3

FORMAT = "longtail-plate"
FORMAT_VERSION = 1
FILES = {"image": "plate.png", "depth": "depth.png", "camera": "camera.json", "sky": "sky.json",
         "occluders": "occluders.png", "regions": "regions.png"}
MAX_PLATE_DEPTH_M = 255.0  # the backdrop's depth must fit the 16-bit depth PNG (255.99 m)


GROUND_RANGES_KEPT = 16  # distance ranges whose ground pixels a plate keeps (a few MB each)


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

    @cached_property
    def ground_distance(self) -> np.ndarray:
        """(H, W) metres along the ground from the camera's foot to each pixel's ground point
        (nan above the horizon)."""
        xy = self.ground_xy
        c = self.camera.position
        return np.hypot(xy[..., 0] - c[0], xy[..., 1] - c[1])

    @cached_property
    def _ground_pixels(self) -> dict[tuple[float, float], np.ndarray]:
        return {}

    def ground_pixels(self, distance_m: tuple[float, float]) -> np.ndarray:
        """Flat indices (read-only) of the pixels whose ground point lies within ``distance_m``
        (metres, along the ground from the camera's foot), allowed by ``regions`` and not
        occluded. Kept per distance range: placement asks for the same few ranges once per try."""
        key = (float(distance_m[0]), float(distance_m[1]))
        cache = self._ground_pixels
        if key not in cache:
            d = self.ground_distance
            ok = np.isfinite(d) & (d >= key[0]) & (d <= key[1])
            if self.occluders is not None:
                ok &= ~self.occluders
            if self.regions is not None:
                ok &= self.regions
            if len(cache) >= GROUND_RANGES_KEPT:
                cache.clear()
            cache[key] = np.flatnonzero(ok)
            cache[key].flags.writeable = False
        return cache[key]

    def ground_point(self, flat_index: int, du: float, dv: float) -> tuple[float, float]:
        """World (x, y) on the ground seen at a point (du, dv in 0..1) inside pixel ``flat_index``."""
        v, u = divmod(int(flat_index), self.camera.width)
        T = self.camera.world_from_camera()
        x = (u + du - self.camera.cx) / self.camera.fx
        y = (v + dv - self.camera.cy) / self.camera.fy
        ray = T[:3, :3] @ np.array([x, y, 1.0])
        k = -T[2, 3] / ray[2]
        return float(T[0, 3] + k * ray[0]), float(T[1, 3] + k * ray[1])


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
        assert correspondences is not None  # exactly one way was given, checked above
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
    if far_m is not None and not 0 < far_m <= MAX_PLATE_DEPTH_M:
        raise InputError("far_m", None, f"expected a backdrop depth in (0, {MAX_PLATE_DEPTH_M:g}] metres, got {far_m}")
    files, stride = sample_footage_files(source, max_frames)
    height, width = read_rgb(files[0]).shape[:2]  # check the camera and masks before reading every frame
    camera, report = fit_camera(width, height, camera_yaml, correspondences, horizon)
    mask = read_occluders(occluders, width, height) if occluders is not None else None
    frames = read_frames(files)
    image = median_background(frames)
    depth = plate_depth(camera, mask, far_m if far_m is not None else min(camera.far, MAX_PLATE_DEPTH_M))
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
    camera, fit = _read_camera_meta(root / FILES["camera"])
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
                 airlight=vec3(airlight), occluders=occluders, fit=fit, regions=regions)


@lru_cache(maxsize=4)
def load_plate_cached(path: str) -> Plate:
    """``load_plate`` once per process and plate (frames of a dataset share it; read-only)."""
    return load_plate(Path(path))


def load_camera(path: Path) -> Camera:
    """The camera of a plate directory, or of its ``camera.json`` alone (e.g. copied next to other
    footage from the same camera), checked like ``load_plate`` checks it."""
    path = Path(path)
    file = path / FILES["camera"] if path.is_dir() else path
    return _read_camera_meta(file)[0]


def _read_camera_meta(meta_path: Path) -> tuple[Camera, FitReport]:
    meta = _read_json(meta_path)
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(str(meta_path), "format", f"expected {FORMAT!r} version {FORMAT_VERSION}")
    return _validate(Camera, meta, "camera", meta_path), _validate(FitReport, meta, "fit", meta_path)


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], meta: dict, key: str, meta_path: Path) -> M:
    """``meta[key]`` as a ``model``; DatasetError naming ``key.field`` otherwise."""
    try:
        return model.model_validate(meta.get(key))
    except ValidationError as err:
        e = validation_message(str(meta_path), err)
        raise DatasetError(e.source, f"{key}.{e.field}" if e.field else key, e.problem) from None
