"""The weather stage applied while training (``--augment PRESET``) and to test sets.

Every weather preset (``longtail.render.weather.presets``) needs a depth map and a camera:

- longtail frames carry both (``depth/NNNNNN.png`` and the record's K and pose);
- real images have neither, so they get a **ground-plane depth prior**: every pixel below the
  horizon sees the ground z = 0 from the camera's height, ``depth = -h / ray_z`` along the pixel's
  ray, capped at ``far_m`` (250 m) at and above the horizon. The camera is the one
  ``longtail plate fit`` fitted to the footage (``--real-camera PLATE_DIR`` or its
  ``camera.json``), or else a level car camera (``FrameCamera`` defaults: 1.65 m up, 81 deg wide,
  principal point at the centre), scaled to each image's size. Vertical things (people, poles,
  walls) take the depth of the ground behind them, so fog on them is slightly too thick: a
  standing person 20 m away at 7 m camera height is under-estimated by ~1 m of fog, far below the
  ~100 m a fog's visibility spans (the same approximation Foggy Cityscapes avoided only with stereo).

Draws are reproducible: ``WeatherAugment`` takes a numpy Generator (the training loop's, one per
step and image), ``Weathered`` derives one seed per (preset, strength, image).

Robustness as a curve in physical units (``longtail evaluate --sweep KNOB=FROM..TO:N``): a
``Knob`` (``render.weather.knobs``) sets one physical parameter of the weather stage exactly
(fog visibility in metres or extinction per metre, night skylight in stops below daylight;
``KNOBS`` says what each sets), ``Swept`` is the test set seen at one value, ``sweep_curve``
measures AP50 and AP along the values and ``half_point`` (``v50`` for visibility) finds where
AP50 falls to half its clear value.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from longtail.depth import read_depth
from longtail.errors import InputError, ParameterError
from longtail.render.weather.knobs import (  # noqa: F401 - the sweep's knobs, re-exported here
    FOGGY_CITYSCAPES_BETA, KNOBS, MAX_SWEEP_POINTS, Knob, foggy_cityscapes_marks, get_knob, knob_transform, parse_sweep,
    sweep_values,
)
from longtail.render.weather.presets import get_preset, list_presets
from longtail.render.weather.transforms import FrameCamera
from longtail.train.entries import DetectionDataset, Entry
from longtail.worlds.plates import PRIOR_FAR_M, plate_depth, scaled_camera
from longtail.worlds.scene import Camera

FAR_M = PRIOR_FAR_M


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
    return scaled_camera(prior.camera, height, width)


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
    if entry.depth_map is not None and entry.camera is not None:  # a streamed frame's, decoded
        return entry.depth_map, FrameCamera.from_record(entry.camera)
    if entry.depth is not None and entry.camera is not None:
        return read_depth(entry.depth), FrameCamera.from_record(entry.camera)
    return prior.for_shape(entry.height, entry.width)


def apply_preset(image: torch.Tensor, entry: Entry, prior: GroundPrior, preset: str, strength: float,
                 seed: int, depth: np.ndarray | None = None) -> torch.Tensor:
    """(3, H, W) uint8 image with weather preset ``preset`` at ``strength`` applied; ``depth``
    overrides the image's own or prior depth (a composite's, after insertion)."""
    return _weather_image(image, entry, prior, depth, lambda spec: get_preset(preset)(strength, camera=spec, seed=seed))


def _weather_image(image: torch.Tensor, entry: Entry, prior: GroundPrior, depth: np.ndarray | None,
                   make: Callable[[FrameCamera], Callable]) -> torch.Tensor:
    """(3, H, W) uint8 ``image`` through the transform ``make(camera)`` (albumentations-style,
    called with image and depth) over its own, the prior's or the given ``depth``."""
    own_depth, spec = depth_and_camera(entry, prior)
    depth = own_depth if depth is None else depth
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    if depth.shape != hwc.shape[:2]:
        raise InputError(str(entry.image), None, f"image is {hwc.shape[1]}x{hwc.shape[0]} but its depth "
                         f"{depth.shape[1]}x{depth.shape[0]}")
    out = make(spec)(image=hwc, depth=depth)["image"]
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


class _WeatherView(DetectionDataset):
    """A test set seen under some weather: labels unchanged, ``weather`` the condition of every image."""

    def __init__(self, base: DetectionDataset, weather: str, label: str, prior: GroundPrior):
        self.base, self.prior = base, prior
        entries = [Entry(**{**e.__dict__, "conditions": {**e.conditions, "weather": weather}}) for e in base.entries]
        super().__init__(f"{base.name} [{label}]", entries, base.unmapped)
        self.kind = base.kind


class Weathered(_WeatherView):
    """A test set seen under one weather preset at one strength (a Foggy-Cityscapes-style copy):
    labels unchanged, each image weathered with its own fixed seed; the preset becomes the
    ``weather`` condition of every image."""

    def __init__(self, base: DetectionDataset, preset: str, strength: float, prior: GroundPrior):
        check_presets([preset], "preset")
        self.preset, self.strength = preset, float(strength)
        super().__init__(base, preset, f"{preset} {strength:g}", prior)

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


# --- robustness as a curve in physical units (``longtail evaluate --sweep KNOB=FROM..TO:N``) ----------

def apply_knob(image: torch.Tensor, entry: Entry, prior: GroundPrior, knob: Knob, value: float, seed: int,
               depth: np.ndarray | None = None) -> torch.Tensor:
    """(3, H, W) uint8 image with the weather of ``knob`` = ``value`` applied over its own (or the
    prior's, or ``depth``'s) depth, as ``apply_preset`` does for a preset."""
    import albumentations as A

    return _weather_image(image, entry, prior, depth, lambda spec: A.Compose(
        [knob_transform(knob, value, spec)], additional_targets={"depth": "mask"}, seed=seed))


class Swept(_WeatherView):
    """A test set seen with one weather knob at one physical value (labels unchanged, one fixed
    seed per image); the knob's group (``fog``, ``night``) becomes the ``weather`` condition."""

    def __init__(self, base: DetectionDataset, knob: Knob, value: float, prior: GroundPrior):
        self.knob, self.value = knob, float(value)
        super().__init__(base, knob.name.split(".")[0], f"{knob.name}={value:g}", prior)

    def image(self, i: int) -> torch.Tensor:
        e = self.base.entries[i]
        return apply_knob(self.base.image(i), e, self.prior, self.knob, self.value,
                          image_seed(self.knob.name, f"{self.value:g}", e.image_id))


def half_point(curve: Sequence[dict], clear_ap50: float | None, knob: Knob | str = "fog.visibility_m"
               ) -> tuple[float | None, str | None]:
    """The knob value at which AP50 falls to half ``clear_ap50``, and None or the reason there is none.

    The curve's points (``value``, ``AP50``) are read from the mildest value to the harshest; the
    first point at or below half and the one before it bracket the crossing, interpolated linearly
    in AP50 against log(value) for log knobs (visibility), against the value itself otherwise (EV).
    Points without an AP50 (no objects) are skipped.
    """
    knob = get_knob(knob) if isinstance(knob, str) else knob
    points = sorted(((float(p["value"]), float(p["AP50"])) for p in curve if p.get("AP50") is not None),
                    key=lambda p: -knob.milder * p[0])
    if clear_ap50 is None or not clear_ap50 > 0:
        return None, "no clear AP50 to halve (the model detects nothing on the clear images)"
    if not points:
        return None, "no sweep point has an AP50"
    half = 0.5 * clear_ap50
    x = (lambda v: math.log(v)) if knob.log else (lambda v: v)
    for k, (value, ap) in enumerate(points):
        if ap > half:
            continue
        if k == 0:
            if ap == half:
                return value, None
            return None, (f"below half the clear AP50 ({half:.3f}) already at the mildest value "
                          f"{knob.fmt(value)} (AP50 {ap:.3f})")
        v0, a0 = points[k - 1]
        frac = (a0 - half) / (a0 - ap)
        at = x(v0) + frac * (x(value) - x(v0))
        return (math.exp(at) if knob.log else at), None
    return None, (f"above half the clear AP50 ({half:.3f}) at every value down to {knob.fmt(points[-1][0])}"
                  if knob.milder > 0 else
                  f"above half the clear AP50 ({half:.3f}) at every value up to {knob.fmt(points[-1][0])}")


def v50(curve: Sequence[dict], clear_ap50: float | None) -> float | None:
    """The visibility (m) at which AP50 falls to half its clear value, by log-linear
    interpolation between the two points of a ``fog.visibility_m`` curve that bracket it; None
    when the curve never falls to half or starts below it (``half_point`` says why)."""
    return half_point(curve, clear_ap50, "fog.visibility_m")[0]


def sweep_curve(model, dataset: DetectionDataset, knob: Knob | str, values: Sequence[float], prior: GroundPrior,
                device, labels, clear: dict | None = None) -> dict:
    """AP50 and AP of ``model`` on ``dataset`` with the weather knob at each of ``values``.

    Returns ``{"knob", "unit", "spacing", "meaning", "clear": {AP50, AP, images}, "curve": [{value,
    AP50, AP, images}], <summary>: value | None, "<summary>_reason": None | why not, "summary": name}``,
    where <summary> is the knob's half-point name (``V50``, ``EV50``, ...). ``clear``: the clear
    metrics (``evaluate(...)["all"]``) if known.
    """
    from longtail.train.evaluate import evaluate

    knob = get_knob(knob) if isinstance(knob, str) else knob
    clear = clear if clear is not None else evaluate(model, dataset, device, labels=labels, breakdown=())["all"]
    curve = []
    for v in values:
        m = evaluate(model, Swept(dataset, knob, v, prior), device, labels=labels, breakdown=())["all"]
        curve.append({"value": float(v), "AP50": m["AP50"], "AP": m["AP"], "images": m["images"]})
    half, reason = half_point(curve, clear.get("AP50"), knob)
    return {"knob": knob.name, "unit": knob.unit, "spacing": "log" if knob.log else "linear", "meaning": knob.meaning,
            "clear": {"AP50": clear.get("AP50"), "AP": clear.get("AP"), "images": clear.get("images")},
            "curve": curve, "summary": knob.summary, knob.summary: half, f"{knob.summary}_reason": reason}


def sweep_lines(sweep: dict) -> list[str]:
    """A sweep as a small table (value, AP50, AP, images) and its half-point line."""
    knob = get_knob(sweep["knob"])
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no objects in the cell
    rows = [f"{knob.name} ({knob.unit})", "AP50", "AP", "images"]
    table = [["clear", fmt(sweep["clear"]["AP50"]), fmt(sweep["clear"]["AP"]), str(sweep["clear"]["images"])]]
    table += [[f"{p['value']:.4g}", fmt(p["AP50"]), fmt(p["AP"]), str(p["images"])] for p in sweep["curve"]]
    widths = [max(len(r[i]) for r in [rows, *table]) for i in range(4)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [rows, *table]]
    name, half = sweep["summary"], sweep[sweep["summary"]]
    lines.append(f"{name} {knob.fmt(half)} (AP50 half its clear value)" if half is not None
                 else f"{name} n/a: {sweep[f'{name}_reason']}")
    return lines


def sweep_plot_png(sweeps: Sequence[dict]) -> bytes:
    """PNG bytes: AP50 against the knob's value, one panel per sweep (log x axis for log knobs,
    the sweep's first value on the left), with the clear AP50, its half, the half point and, for
    fog, Foggy Cityscapes' densities."""
    import io

    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    fig = Figure(figsize=(5.6 * max(1, len(sweeps)), 3.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(sweeps)), squeeze=False)[0]
    for ax, sweep in zip(axes, sweeps):
        knob = get_knob(sweep["knob"])
        pts = [(p["value"], p["AP50"]) for p in sweep["curve"] if p["AP50"] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="C0", label="AP50")
        if knob.log:
            ax.set_xscale("log")
        values = [p["value"] for p in sweep["curve"]]
        lo, hi = min(values), max(values)
        ax.set_xlim(*((values[0], values[-1]) if values[0] != values[-1] else (lo, hi)))
        clear = sweep["clear"]["AP50"]
        if clear is not None:
            ax.axhline(clear, color="0.3", lw=1, label=f"clear {clear:.3f}")
            ax.axhline(clear / 2, color="0.3", lw=1, ls=":", label="half clear")
        half = sweep[sweep["summary"]]
        if half is not None:
            ax.plot([half], [clear / 2], "D", color="C3", label=f"{sweep['summary']} {knob.fmt(half)}")
        for k, (x, label) in enumerate(foggy_cityscapes_marks(knob)):
            if lo <= x <= hi:
                ax.axvline(x, color="C2", lw=1, ls=("--", "-.", ":")[k], label=label)
        ax.set_xlabel(f"{knob.name} ({knob.unit})")
        ax.set_ylabel("AP50")
        ax.set_ylim(0, max([0.05, *(p[1] for p in pts), clear or 0.0]) * 1.1)
        ax.set_title(f"{knob.name}: {sweep['summary']} "
                     + ("n/a" if half is None else knob.fmt(half)), fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3, which="both")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()
