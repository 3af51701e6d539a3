"""Near-duplicate images: a perceptual hash of a frame's rgb, and the pool of hashes of admitted samples.

``image_hash`` is a DCT hash (pHash): the image in grey (PIL's Rec. 601 luma), box-resized to
64 x 64, its 2D DCT-II, and one bit per coefficient of the 16 x 16 lowest frequencies, set where
the coefficient exceeds their median: 256 bits, compared by Hamming distance. It ignores what
does not change the picture (brightness and contrast scale the coefficients alike, resampling and
sensor noise touch the high frequencies it drops) and keeps the layout of light and dark.

Why 256 bits and not the usual 64: frames of one scenario share their road, horizon and sky, and
at night or in fog that is most of the picture. Measured on 10 frames each of every built-in
scenario at 160 x 96 px: two different frames differ by at least 38 of 256 bits (dark or foggy
roads; 64 or more elsewhere), the same frame with Gaussian noise (sigma 4 of 255) by at most 16.
A 64-bit hash of the same frames let distinct night frames come within 2 bits of each other.

``HashPool`` keeps (key, hash) for every sample admitted so far; it saves to and loads from a
small JSON file (``format: longtail-hash-pool``), so a resumed loop keeps its memory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Iterable, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from longtail.atomic import write_json
from longtail.errors import InputError
from longtail.readers import load_json, validation_message

HASH_SIDE = 64  # the image is resized to HASH_SIDE x HASH_SIDE grey values
HASH_BLOCK = 16  # bits: the HASH_BLOCK x HASH_BLOCK lowest DCT frequencies
HASH_BITS = HASH_BLOCK * HASH_BLOCK
HEX_CHARS = HASH_BITS // 4
FORMAT = "longtail-hash-pool"
VERSION = 1


@lru_cache(maxsize=1)
def _dct_matrix(n: int) -> np.ndarray:
    """(n, n) DCT-II basis: row k is cos(pi (2 i + 1) k / 2n) over i (unnormalised; the median
    threshold does not care)."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


def image_hash(rgb: np.ndarray) -> int:
    """The 256-bit perceptual hash of an image.

    Args:
        rgb: (H, W, 3) uint8 RGB (or (H, W) uint8 grey).

    Returns:
        An int in [0, 2**256): bit 255 - k is DCT coefficient k (row-major over the 16 x 16
        lowest frequencies) above their median.
    """
    img = Image.fromarray(np.ascontiguousarray(rgb))
    grey = np.asarray(img.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX), np.float64)
    d = _dct_matrix(HASH_SIDE)
    low = (d @ grey @ d.T)[:HASH_BLOCK, :HASH_BLOCK].ravel()
    return int.from_bytes(np.packbits(low > np.median(low)).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Bits in which two hashes differ."""
    return (a ^ b).bit_count()


def hash_hex(h: int) -> str:
    return f"{h:0{HEX_CHARS}x}"


HexHash = Annotated[str, StringConstraints(pattern=f"^[0-9a-f]{{{HEX_CHARS}}}$")]


class _PoolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: Annotated[str, Field(max_length=4096)]
    hash: HexHash


class _PoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["longtail-hash-pool"]
    version: Literal[1]
    bits: Literal[256]
    entries: list[_PoolEntry]


class HashPool:
    """The perceptual hashes of the samples admitted so far, by key (e.g. the rgb file's path)."""

    def __init__(self, entries: Iterable[tuple[str, int]] = ()):
        self.keys: list[str] = []
        self.hashes: list[int] = []
        for key, h in entries:
            self.add(key, h)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, h: int) -> None:
        if not 0 <= h < 1 << HASH_BITS:
            raise ValueError(f"hash {h!r} is not a {HASH_BITS}-bit hash")
        self.keys.append(str(key))
        self.hashes.append(int(h))

    def nearest(self, h: int) -> tuple[str, int] | None:
        """(key, Hamming distance) of the pooled hash nearest to ``h`` (the first of equals), or
        None if the pool is empty."""
        if not self.hashes:
            return None
        dist = [(a ^ h).bit_count() for a in self.hashes]
        k = int(np.argmin(dist))
        return self.keys[k], dist[k]

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "bits": HASH_BITS,
                "entries": [{"key": k, "hash": hash_hex(h)} for k, h in zip(self.keys, self.hashes)]}

    def save(self, path: Path) -> None:
        """Write the pool to ``path`` (JSON, atomically: a temporary name, then renamed)."""
        write_json(Path(path), self.to_json())

    @classmethod
    def from_json(cls, data: object, source: str = "hash pool") -> "HashPool":
        """The pool ``to_json`` gave (e.g. kept inside another JSON file that ``source`` names);
        InputError (one line: source, field, expectation) if ``data`` is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(source, "format", f"expected {FORMAT!r}; this is not a longtail hash pool")
        try:
            m = _PoolFile.model_validate(data)
        except ValidationError as err:
            raise validation_message(source, err) from None
        return cls((e.key, int(e.hash, 16)) for e in m.entries)

    @classmethod
    def load(cls, path: Path) -> "HashPool":
        """The pool saved at ``path``; InputError (one line: file, field, expectation) if it is
        not one."""
        return cls.from_json(load_json(Path(path), "hash pool"), str(path))
