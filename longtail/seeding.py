"""One seeded generator per frame: frame ``i`` of a dataset with seed ``s`` draws from
``numpy.random.default_rng([s, i])``, so any worker can render any frame and a resumed run
matches an uninterrupted one."""

from __future__ import annotations

import secrets

import numpy as np


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator every random choice of frame ``index`` flows from."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([seed, index])


def fresh_seed() -> int:
    """A new dataset seed when the user gave none; it is written to the manifest."""
    return secrets.randbits(32)
