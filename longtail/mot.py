"""MOTChallenge sequences on disk: ``seqinfo.ini``, ``img1/`` and ``gt/gt.txt``.

One reader for the two parts that use real footage (plates fit their camera and background to a
sequence; training reads its boxes), total like every reader of outside files: any bytes give a
value or one InputError naming the file, the line and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from longtail.errors import InputError
from longtail.readers import number_rows, parse_int, parse_number, read_ini

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
GT_EXPECTED = ("comma-separated numbers: frame, id, left, top, width, height, flag, x, y, z (MOT 2015) "
               "or ..., flag, class, visibility (MOT16+)")
_EXT = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


@dataclass(frozen=True)
class SeqInfo:
    """What ``seqinfo.ini``'s ``[Sequence]`` section says (fields it leaves out are None)."""

    name: str | None = None
    im_dir: str = "img1"
    im_ext: str = ".jpg"
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None


def read_seqinfo(seq_dir: Path) -> SeqInfo:
    """The ``[Sequence]`` section of ``seq_dir/seqinfo.ini``; defaults where the file is absent.

    ``imDir`` must name a folder inside the sequence, ``imExt`` a file suffix, ``imWidth`` and
    ``imHeight`` positive whole numbers. ``frameRate`` is informational: kept when it is a
    positive number, else None."""
    path = Path(seq_dir) / "seqinfo.ini"
    if not path.is_file():
        return SeqInfo()
    ini = read_ini(path, "MOTChallenge seqinfo.ini")
    if not ini.has_section("Sequence"):
        return SeqInfo()
    seq = ini["Sequence"]
    im_dir = seq.get("imDir", "img1").strip()
    parts = Path(im_dir).parts
    if not im_dir or Path(im_dir).is_absolute() or ".." in parts:
        raise InputError(str(path), "imDir", f"{im_dir!r}: expected a folder inside the sequence, e.g. img1")
    ext = seq.get("imExt", ".jpg").strip()
    if not _EXT.match(ext):
        raise InputError(str(path), "imExt", f"{ext!r}: expected a file suffix such as .jpg")
    size = {}
    for key in ("imWidth", "imHeight"):
        if key in seq:
            try:
                size[key] = parse_int(seq[key])
            except ValueError:
                size[key] = 0
            if not 0 < size[key] <= 65535:
                raise InputError(str(path), key, f"{seq[key]!r}: expected a positive whole number of pixels")
    try:
        rate: float | None = parse_number(seq.get("frameRate", ""))
    except ValueError:
        rate = None
    return SeqInfo(name=seq.get("name"), im_dir=im_dir, im_ext=ext, width=size.get("imWidth"),
                   height=size.get("imHeight"), frame_rate=rate if rate is not None and 0 < rate < 1e6 else None)


def is_sequence(path: Path) -> bool:
    """Whether ``path`` looks like a MOTChallenge sequence: ``img1/`` and ``gt/gt.txt``."""
    return (Path(path) / "img1").is_dir() and (Path(path) / "gt" / "gt.txt").is_file()


def image_files(seq_dir: Path, info: SeqInfo | None = None) -> list[Path]:
    """The sequence's image files (``imDir`` / ``*imExt``), sorted by name."""
    info = info or read_seqinfo(seq_dir)
    return sorted(p for p in (Path(seq_dir) / info.im_dir).glob(f"*{info.im_ext}") if p.is_file())


def numbered_frames(seq_dir: Path, info: SeqInfo | None = None) -> list[tuple[int, Path]]:
    """(frame number, file) of the images in ``imDir`` named by their frame number (``000042.jpg``;
    any of ``IMAGE_SUFFIXES``, other files are skipped, as training's reader skips them), in frame
    order. Two files of one frame number (``000001.jpg`` and ``000001.png``) are an InputError."""
    info = info or read_seqinfo(seq_dir)
    folder = Path(seq_dir) / info.im_dir
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isascii() and p.stem.isdigit()):
            continue
        frame = int(p.stem)
        if frame in found:
            raise InputError(str(p), None, f"a second image of frame {frame} (also {found[frame].name}); expected "
                             "one image per frame number")
        found[frame] = p
    return sorted(found.items())


def read_gt(path: Path) -> list[tuple[int, list[float]]]:
    """(line number, row) of a ``gt.txt`` (at least 7 finite numbers a row: frame, id, box, flag, ...)."""
    return number_rows(path, "MOTChallenge gt.txt", 7, GT_EXPECTED)
