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
from longtail.readers import number_rows, parse_int, read_ini

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


def read_seqinfo(seq_dir: Path) -> SeqInfo:
    """The ``[Sequence]`` section of ``seq_dir/seqinfo.ini``; defaults where the file is absent.

    ``imDir`` must name a folder inside the sequence, ``imExt`` a file suffix, ``imWidth`` and
    ``imHeight`` positive whole numbers."""
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
    return SeqInfo(name=seq.get("name"), im_dir=im_dir, im_ext=ext, width=size.get("imWidth"),
                   height=size.get("imHeight"))


def image_files(seq_dir: Path, info: SeqInfo | None = None) -> list[Path]:
    """The sequence's image files (``imDir`` / ``*imExt``), sorted by name."""
    info = info or read_seqinfo(seq_dir)
    return sorted(p for p in (Path(seq_dir) / info.im_dir).glob(f"*{info.im_ext}") if p.is_file())


def read_gt(path: Path) -> list[tuple[int, list[float]]]:
    """(line number, row) of a ``gt.txt`` (at least 7 finite numbers a row: frame, id, box, flag, ...)."""
    return number_rows(path, "MOTChallenge gt.txt", 7, GT_EXPECTED)
