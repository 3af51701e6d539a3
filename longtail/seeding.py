"""Every random stream of longtail, named in one place.

A dataset has one seed. Frame ``i`` of a dataset with seed ``s`` draws its Scene from
``frame_rng(s, i) = default_rng([s, i])``, so any worker can render any frame and a resumed run
matches an uninterrupted one. Other draws come from sub-streams: ``default_rng(key)`` with a key
that ends in one of the stream names below, built by ``stream_key`` / ``stream_rng``. No module
spells a literal key of its own: a new kind of draw gets a name (and a number not used in the
same position) here.
"""

from __future__ import annotations

import secrets
import zlib

import numpy as np

# the renderer's procedural noise textures: fixed, part of the renderer, not of any frame
TEXTURES = 20261125
# [dataset seed, frame index, WEATHER]: a frame's render-time weather (particles, lens glare)
WEATHER = 1
# [dataset seed, frame index, RANDOMIZE]: a frame's domain randomisation (the scenario's
# ``randomize`` block: surface colours, distractors, light tint, exposure), drawn into its Scene
RANDOMIZE = 2
# [r, g, b (each x 4093, rounded), variant, OUTFIT]: a person's clothes, hair and skin, a pure
# function of the actor's colour and variant (not of the dataset seed)
OUTFIT = 7
# training: [run seed, sampler stream, SAMPLER_COUNTS] the per-step rounding of mixed batches,
# [run seed, sampler stream, SAMPLER_ORDER, step] the order of images in a batch,
# [run seed, sampler stream, source_stream(name), epoch] each source's shuffle
SAMPLER_COUNTS = 1
SAMPLER_ORDER = 2
# training: [run seed, step, TRAIN_*]: flips, torch's own draws, on-the-fly augmentation
TRAIN_FLIP = 11
TRAIN_TORCH = 12
TRAIN_AUGMENT = 13
# training from shards (``train.stream_order``): [run seed, epoch, STREAM_SHARDS] the epoch's shard
# order, [run seed, epoch, STREAM_BUFFER, node rank, worker] each stream's shuffle buffer
STREAM_SHARDS = 14
STREAM_BUFFER = 15
# evaluation (``train.slices``): [seed, 0, SLICE_BOOTSTRAP] the bootstrap's resamples of the test
# images (the 0 keeps the key apart from a frame's [seed, frame index])
SLICE_BOOTSTRAP = 16
# the closed loop (``longtail.loop``): [loop seed, LOOP_RENDER, arm (0 targeted, 1 control), round]
# draws the dataset seed of the round's candidate frames
LOOP_RENDER = 17
# [dataset seed, frame index, REDRAW, attempt]: a frame whose event actors could not all be placed
# from ``frame_rng`` (e.g. a child between two parked cars when the first car drew a long van) is
# drawn again, whole, from this stream (attempts 1, 2, ...); frames placed at once never use it
REDRAW = 18


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator every random choice of frame ``index``'s Scene flows from."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([seed, index])


def stream_key(*parts: int) -> list[int]:
    """A generator key: non-negative integers, the stream's name among them (see above)."""
    key = [int(p) for p in parts]
    if any(p < 0 for p in key):
        raise ValueError(f"generator keys are non-negative integers, got {key}")
    return key


def stream_rng(*parts: int) -> np.random.Generator:
    """``default_rng(stream_key(*parts))``."""
    return np.random.default_rng(stream_key(*parts))


def source_stream(name: str) -> int:
    """The stream number of a named training source (a stable hash of its name)."""
    return zlib.crc32(name.encode())


def fresh_seed() -> int:
    """A new dataset seed when the user gave none; it is written to the manifest."""
    return secrets.randbits(32)
