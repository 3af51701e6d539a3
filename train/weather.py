"""The weather stage applied while training (``--augment PRESET``) and to test sets.

Every weather preset (``longtail.render.weather.presets``) needs a depth map and a camera:

- longtail frames carry both (``depth/NNNNNN.png`` and the record's K and pose);
- real images have neither, so they get a **ground-plane depth prior**: every pixel below the
  horizon sees the ground z = 0 from the camera's height, ``depth = -h / ray_z`` along the pixel's
  ray, capped at ``far_m`` (250 m) at and above the horizon. The camera is the one
  ``longtail plate fit`` fitted to the footage (``--real-camera PLATE_DIR`` or its
  ``camera.json``), or else a level car camera (``FrameCamera`` defaults: 1.5 m up, 60 deg wide,
  principal point at the centre), scaled to each image's size. Vertical things (people, poles,
  walls) take the depth of the ground behind them, so fog on them is slightly too thick: a
  standing person 20 m away at 7 m camera height is under-estimated by ~1 m of fog, far below the
  ~100 m a fog's visibility spans (the same approximation Foggy Cityscapes avoided only with stereo).

Draws are reproducible: ``WeatherAugment`` takes a numpy Generator (the training loop's, one per
step and image), ``Weathered`` derives one seed per (preset, strength, image).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, Sequence

import numpy as np
import torch

from longtail.depth import read_depth
from longtail.errors import InputError, ParameterError
from longtail.render.weather.presets import get_preset, list_presets
from longtail.render.weather.transforms import FrameCamera
from longtail.train.entries import DetectionDataset, Entry
from longtail.worlds.plates import plate_depth
from longtail.worlds.scene import Camera

FAR_M = 250.0


def check_presets(names: Sequence[str], source: str = "augment") -> tuple[str, ...]:
    """Weather preset names, checked; InputError lists the known ones."""
    names = tuple(n.strip() for n in names if n.strip())
    if not names:
        raise ParameterError(source, f"expected one or more weather presets: {', '.join(list_presets())}")
    unknown = [n for n in names if n not in list_presets()]
    if unknown:
        raise ParameterError(source, f"unknown weather preset {unknown[0]!r}; expected one of "
                         f"{', '.join(list_presets())}")
    return names


@dataclass(frozen=True)
class GroundPrior:
    """Depth and camera for images that have none (see the module docstring).

    Attributes:
        camera: the footage's camera at its own size (None: ``spec``'s level car camera).
        spec: the fallback camera's height, pitch and field of view.
        far_m: depth at and above the horizon.
    """

    camera: Camera | None = None
    spec: FrameCamera = field(default_factory=FrameCamera)
    far_m: float = FAR_M

    def for_shape(self, height: int, width: int) -> tuple[np.ndarray, FrameCamera]:
        """(H, W) float32 depth and the FrameCamera of an image of that size (cached)."""
        return _prior(self, int(height), int(width))

    def camera_for_shape(self, height: int, width: int) -> Camera:
        """The Camera of an image of that size: the footage's camera scaled to it, or the level car
        camera of ``spec``."""
        return _prior_camera(self, int(height), int(width))


@lru_cache(maxsize=8)
def _prior_camera(prior: GroundPrior, height: int, width: int) -> Camera:
    if prior.camera is None:
        return prior.spec.for_image((height, width))
    c = prior.camera
    sx, sy = width / c.width, height / c.height
    return c.model_copy(update={"width": width, "height": height, "fx": c.fx * sx, "cx": c.cx * sx,
                                "fy": c.fy * sy, "cy": c.cy * sy})


@lru_cache(maxsize=8)
def _prior(prior: GroundPrior, height: int, width: int) -> tuple[np.ndarray, FrameCamera]:
    cam = _prior_camera(prior, height, width)
    depth = plate_depth(cam, far_m=prior.far_m)
    depth.flags.writeable = False
    # validated from the nested lists: pydantic checks the 3 x 3 and 4 x 4 shapes mypy cannot see in ``tolist``
    spec = FrameCamera.model_validate({"K": cam.K.tolist(), "world_from_camera": cam.world_from_camera().tolist()})
    return depth, spec


def depth_and_camera(entry: Entry, prior: GroundPrior) -> tuple[np.ndarray, FrameCamera]:
    """An image's depth (metres, inf = sky) and camera: recorded ones where the entry has them,
    else the ground-plane prior."""
    if entry.depth is not None and entry.camera is not None:
        return read_depth(entry.depth), FrameCamera.from_record(entry.camera)
    return prior.for_shape(entry.height, entry.width)


def apply_preset(image: torch.Tensor, entry: Entry, prior: GroundPrior, preset: str, strength: float,
                 seed: int, depth: np.ndarray | None = None) -> torch.Tensor:
    """(3, H, W) uint8 image with weather preset ``preset`` at ``strength`` applied; ``depth``
    overrides the image's own or prior depth (a composite's, after insertion)."""
    own_depth, spec = depth_and_camera(entry, prior)
    depth = own_depth if depth is None else depth
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    if depth.shape != hwc.shape[:2]:
        raise InputError(str(entry.image), None, f"image is {hwc.shape[1]}x{hwc.shape[0]} but its depth "
                         f"{depth.shape[1]}x{depth.shape[0]}")
    out = get_preset(preset)(strength, camera=spec, seed=seed)(image=hwc, depth=depth)["image"]
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class WeatherAugment:
    """Weather on the fly while training: with probability ``p`` an image gets one of
    ``presets`` (uniform) at a strength drawn uniformly from ``strength``.

    Attributes:
        presets: weather preset names.
        p: probability that an image is augmented.
        strength: (low, high) preset strength range within [0, 1].
        prior: depth and camera of images without their own.
    """

    label: ClassVar[str] = "weather on the fly"  # how a run's log describes a source with it
    presets: tuple[str, ...]
    p: float = 0.5
    strength: tuple[float, float] = (0.3, 1.0)
    prior: GroundPrior = field(default_factory=GroundPrior)

    def __post_init__(self):
        object.__setattr__(self, "presets", check_presets(self.presets))
        if not 0.0 < self.p <= 1.0:
            raise ParameterError("augment_p", f"expected 0 < p <= 1, got {self.p}")
        lo, hi = self.strength
        if not 0.0 <= lo <= hi <= 1.0:
            raise ParameterError("augment_strength", f"expected 0 <= low <= high <= 1, got {lo} {hi}")

    def __call__(self, image: torch.Tensor, entry: Entry, rng: np.random.Generator,
                 depth: np.ndarray | None = None) -> tuple[torch.Tensor, str]:
        """The image, maybe weathered, and the preset applied (``clear`` for none); ``depth``:
        the image's depth when it differs from the entry's (actors inserted)."""
        apply, k, s, seed = rng.random() < self.p, rng.integers(len(self.presets)), rng.uniform(*self.strength), \
            int(rng.integers(2**31))
        if not apply:
            return image, "clear"
        return apply_preset(image, entry, self.prior, self.presets[k], float(s), seed, depth), self.presets[k]

    def describe(self) -> dict:
        return {"presets": list(self.presets), "p": self.p, "strength": list(self.strength),
                "prior": "plate camera" if self.prior.camera is not None else "level car camera"}


def image_seed(*parts: object) -> int:
    """A stable 31-bit seed from names and numbers (crc32 of their text)."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


class Weathered(DetectionDataset):
    """A test set seen under one weather preset at one strength (a Foggy-Cityscapes-style copy):
    labels unchanged, each image weathered with its own fixed seed; the preset becomes the
    ``weather`` condition of every image."""

    def __init__(self, base: DetectionDataset, preset: str, strength: float, prior: GroundPrior):
        check_presets([preset], "preset")
        self.base, self.preset, self.strength, self.prior = base, preset, float(strength), prior
        entries = [Entry(**{**e.__dict__, "conditions": {**e.conditions, "weather": preset}}) for e in base.entries]
        super().__init__(f"{base.name} [{preset} {strength:g}]", entries, base.unmapped)
        self.kind = base.kind

    def image(self, i: int) -> torch.Tensor:
        e = self.base.entries[i]
        return apply_preset(self.base.image(i), e, self.prior, self.preset, self.strength,
                            image_seed(self.preset, f"{self.strength:g}", e.image_id))


def robustness_table(model, dataset: DetectionDataset, presets: Sequence[str], severities: Sequence[float],
                     prior: GroundPrior, device, labels, clear: dict | None = None) -> dict:
    """AP under each weather preset and strength, with mPC and rPC (Michaelis et al., 2019, with
    AP50 as the performance measure, as longtail's reports use): ``mPC`` = mean AP50 over every
    preset and strength, ``rPC`` = mPC / clear AP50. ``clear``: the clear metrics if known."""
    from longtail.train.evaluate import evaluate

    presets = check_presets(presets, "robustness")
    clear = clear if clear is not None else evaluate(model, dataset, device, labels=labels)["all"]
    cells = {p: {f"{s:g}": evaluate(model, Weathered(dataset, p, s, prior), device, labels=labels)["all"]
                 for s in severities} for p in presets}
    values = [c["AP50"] for by_s in cells.values() for c in by_s.values() if c["AP50"] is not None]
    mpc = float(np.mean(values)) if values else None
    rpc = mpc / clear["AP50"] if mpc is not None and clear.get("AP50") else None
    return {"clear": clear, "presets": cells, "mPC": mpc, "rPC": rpc,
            "per_preset": {p: float(np.mean([c["AP50"] for c in by_s.values() if c["AP50"] is not None]))
                           if any(c["AP50"] is not None for c in by_s.values()) else None
                           for p, by_s in cells.items()}}
