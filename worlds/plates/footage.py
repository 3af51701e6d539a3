"""Footage of a static camera: its frames, their median (the empty background), occluder masks,
and image <-> ground correspondences from a MOTChallenge sequence's ground truth.

Frames are read from a MOTChallenge sequence directory (``seqinfo.ini`` + its imDir), a folder of
images (sorted by name) or one image file, as (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from longtail import mot
from longtail.errors import InputError
from longtail.readers import read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def footage_files(source: Path) -> list[Path]:
    """Image files of a frame source, in order: a MOTChallenge sequence directory (seqinfo.ini +
    its imDir), a folder of images (.png, .jpg, ...; sorted by name) or a single image."""
    source = Path(source)
    if not source.exists():
        raise InputError(str(source), None, "no such file or directory")
    if source.is_file():
        return [source]
    if (source / "seqinfo.ini").is_file():
        return mot.image_files(source)
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; InputError if it cannot be decoded."""
    return read_image(Path(path), mode="RGB")


def sample_footage_files(path: Path, max_frames: int = 200, stride: int | None = None) -> tuple[list[Path], int]:
    """Every ``stride``-th of a source's frame files, at most ``max_frames``; by default the
    stride spreads them over the whole source. Returns the files and the stride used."""
    if max_frames < 1:
        raise InputError("max_frames", None, f"expected at least 1 frame, got {max_frames}")
    if stride is not None and stride < 1:
        raise InputError("stride", None, f"expected a stride >= 1, got {stride}")
    files = footage_files(path)
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
    """Read up to ``max_frames`` frames of a source (see ``footage_files``), every ``stride``-th;
    by default the stride spreads them over the whole source.

    Returns:
        A list of (H, W, 3) uint8 RGB arrays, all of one size.
    """
    return read_frames(sample_footage_files(path, max_frames, stride)[0])


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
    found = [r for _, r in mot.read_gt(gt) if len(r) >= 9]
    if not found or all(r[7] == -1 and r[8] == -1 for r in found):
        raise InputError(str(gt), None, "no world coordinates: expected MOT 2015 rows whose columns 8-9 are the "
                                        "ground position in metres")
    rows = np.array([r[:9] for r in found], np.float64)
    left, top, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    keep = (rows[:, 6] != 0) & np.all(rows[:, 7:9] != -1, axis=1)
    keep &= (left > 1) & (top > 1) & (left + w < width) & (top + h < height)
    uv = np.c_[left - 1 + w / 2, top - 1 + h][keep]
    xy = rows[keep][:, 7:9]
    if len(uv) > max_points:
        idx = np.unique(np.linspace(0, len(uv) - 1, max_points).round().astype(int))
        uv, xy = uv[idx], xy[idx]
    return uv, xy


