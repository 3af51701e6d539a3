"""The verifier gate: every generated frame passes these checks before it enters a training pool.

A loop renders candidate frames into an ordinary longtail folder dataset, runs ``gate_dataset``
over it, and copies only the admitted frames on. ``Gate.check`` reads one frame back from disk and
returns its rejections, each with a reason from a fixed vocabulary (``REASONS``) and a one-line
detail:

``labels``
    ``verify``'s per-frame checks (``verify.frame_findings``): the record reads as a frame record,
    its images decode at the camera's size, each object's box, area, RLE, depth and class agree
    with the instance and semantic PNGs, every instance id has an object. Also a record whose
    ``scene`` is not a valid Scene, or asks for a world no scenario can make (a layout outside
    the scenario schema's bounds, an actor 1 km long). The manifest's checksums are ``verify``'s
    business, not the gate's.
``invisible_target``
    fewer than ``min_visible_targets`` targeted objects are visible enough after the weather:
    ``area >= min_target_px`` visible pixels and ``visibility >= min_target_visibility`` (the
    share of its clear-daylight contrast the weather and the light left it,
    ``render.weather.visibility``). Targeted objects are those the ``target`` predicate picks
    among the record's objects (those the camera could see); by default the rare event's actors
    (``role == "event"``); pass e.g. ``target=lambda o: o["class"] == "person"`` for a scenario
    that targets a class or a condition rather than an event.
``size`` / ``aspect``
    a visible targeted object whose box height (pixels) or aspect (width / height) lies outside the
    range of its class in a real labelled set (``RealRanges``); the box is the object's amodal box
    where the record has one (real annotators draw the whole object: a tight visible box of a
    person is narrower than theirs), and a frame fails when more than ``max_out_of_range`` of its
    checked targets do; classes the real set lacks (or holds fewer than ``min_count`` boxes of)
    are not checked, nor is anything when no ranges are given.
``floating`` / ``interpenetration``
    ``worlds.placement`` on the record's Scene: an actor's box bottom more than ``floating_tol_m``
    above the surface under it; two actors (or an actor and a static part) overlapping deeper than
    ``penetration_tol_m``. Every actor counts, targeted or not.
``duplicate``
    the frame's rgb is within ``duplicate_max_bits`` of a pooled sample's perceptual hash
    (``dedup.image_hash``, 256 bits). The pool holds the samples admitted so far (``Gate.admit``;
    ``gate_dataset`` admits as it goes), and may be seeded from a saved ``HashPool``.

A frame with no rejection is admitted. Checks never raise on a damaged frame: what cannot be read
is a ``labels`` rejection.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
from pydantic import ValidationError

from longtail.classes import class_by_id, get_class
from longtail.dataset import Manifest, frame_files
from longtail.errors import DatasetError, InputError, ParameterError
from longtail.labelers.dedup import HashPool, image_hash
from longtail.labelers.verify import MALFORMED, Finding, frame_findings
from longtail.readers import read_bytes, read_image, validation_message
from longtail.records import parse_record
from longtail.worlds.placement import FLOATING_TOL_M, PENETRATION_TOL_M, placement_problems
from longtail.worlds.scenario import LayoutSpec
from longtail.worlds.scene import Scene

REASONS = ("labels", "invisible_target", "size", "aspect", "floating", "interpenetration", "duplicate")
MAX_ACTOR_M = 100.0  # the largest side of an actor's box a record may give
MAX_COORD_M = 1e5  # how far from the origin an actor may stand (the Scene's bound on cameras)
IGNORE_LABEL = -1  # a class-agnostic ignore region in a detection dataset's labels (train.classmap)

Target = Callable[[dict], bool]


def event_objects(obj: dict) -> bool:
    """The default targeted objects: the rare event's actors (``role`` ``event`` in the record)."""
    return obj.get("role") == "event"


# --- the real data's ranges ----------------------------------------------------------------------

@dataclass(frozen=True)
class ClassRange:
    """Box height (pixels) and aspect (width / height) ranges of one class in a real set."""

    count: int
    height_px: tuple[float, float]
    aspect: tuple[float, float]


class _Entry(Protocol):
    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray


class _Labelled(Protocol):
    @property
    def entries(self) -> Sequence[_Entry]: ...


@dataclass(frozen=True)
class RealRanges:
    """Per-class ranges of box pixel height and aspect (w / h) measured on a real labelled set.

    Each range runs from the ``percentiles[0]``-th to the ``percentiles[1]``-th percentile of the
    class's boxes (1st to 99th by default: robust to a few odd labels). A class with fewer than
    ``min_count`` boxes gets no range, so the gate does not check its size: too few to say what is
    real. Heights are in the real images' pixels: use ``scaled`` when the synthetic frames have
    another height (aspect does not change).
    """

    classes: dict[str, ClassRange]
    percentiles: tuple[float, float] = (1.0, 99.0)
    min_count: int = 20

    @classmethod
    def from_boxes(cls, boxes: Iterable[tuple[str, Sequence[float]]], percentiles: tuple[float, float] = (1.0, 99.0),
                   min_count: int = 20) -> "RealRanges":
        """Ranges from (class name, ``[x0, y0, x1, y1]`` pixel box) pairs; empty boxes are skipped.

        Raises:
            ParameterError: an unknown class name, or bad ``percentiles`` / ``min_count``.
        """
        lo, hi = (float(p) for p in percentiles)
        if not 0.0 <= lo < hi <= 100.0:
            raise ParameterError("percentiles", f"expected 0 <= low < high <= 100, got {list(percentiles)}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ParameterError("min_count", f"expected an integer >= 1, got {min_count!r}")
        sizes: dict[str, list[tuple[float, float]]] = {}
        for name, box in boxes:
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 > x0 and y1 > y0:
                sizes.setdefault(get_class(name).name, []).append((x1 - x0, y1 - y0))
        out = {}
        for name, wh in sorted(sizes.items()):
            if len(wh) < min_count:
                continue
            w, h = np.asarray(wh).T
            hl, hh = np.percentile(h, [lo, hi])
            al, ah = np.percentile(w / h, [lo, hi])
            out[name] = ClassRange(len(wh), (float(hl), float(hh)), (float(al), float(ah)))
        return cls(out, (lo, hi), min_count)

    @classmethod
    def from_dataset(cls, dataset: _Labelled, percentiles: tuple[float, float] = (1.0, 99.0),
                     min_count: int = 20) -> "RealRanges":
        """Ranges from a detection dataset's labels (``train``'s ``DetectionDataset``: any object
        with ``entries``, each with ``boxes`` (N, 4), ``labels`` (N,) longtail class ids and
        ``iscrowd`` (N,)); ignore regions are left out. Reads no pixels."""
        pairs = [(class_by_id(int(label)).name, box)
                 for e in dataset.entries
                 for box, label, crowd in zip(e.boxes.tolist(), e.labels.tolist(), e.iscrowd.tolist())
                 if not crowd and label != IGNORE_LABEL]
        return cls.from_boxes(pairs, percentiles, min_count)

    def scaled(self, factor: float) -> "RealRanges":
        """The same ranges for images ``factor`` times as tall (e.g. synthetic height / real height)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ParameterError("factor", f"expected a number > 0, got {factor!r}")
        return RealRanges({n: ClassRange(r.count, (r.height_px[0] * factor, r.height_px[1] * factor), r.aspect)
                           for n, r in self.classes.items()}, self.percentiles, self.min_count)

    def get(self, name: str) -> ClassRange | None:
        return self.classes.get(name)


# --- the gate ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate (see the module docstring for what each check does).

    Attributes:
        min_target_px: fewest visible pixels of a targeted object that counts as visible (25:
            5 x 5 pixels).
        min_target_visibility: least ``visibility`` (0..1, the share of its clear-daylight
            contrast left after weather and light) of a visible targeted object; 0.1 keeps an
            object of intrinsic contrast 0.5 above the 5 % contrast threshold of seeing it.
        min_visible_targets: fewest targeted objects a frame must show visibly (0: no check).
        floating_tol_m: an actor's box bottom this far above the surface under it floats.
        penetration_tol_m: boxes overlapping deeper than this interpenetrate.
        max_out_of_range: the share of a frame's checked targets that may lie outside the real
            size (or aspect) range before the frame is rejected for it (0: none may).
        duplicate_max_bits: a frame whose hash differs from a pooled one in this many of 256 bits
            or fewer is a near-duplicate (different frames of one scenario differ by 38 or more,
            a frame and itself with sensor noise by 16 or fewer: ``dedup``).
    """

    min_target_px: int = 25
    min_target_visibility: float = 0.1
    min_visible_targets: int = 1
    floating_tol_m: float = FLOATING_TOL_M
    penetration_tol_m: float = PENETRATION_TOL_M
    duplicate_max_bits: int = 16
    max_out_of_range: float = 0.0

    def __post_init__(self):
        for name in ("min_target_px", "min_visible_targets", "duplicate_max_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ParameterError(name, f"expected an integer >= 0, got {v!r}")
        if not 0.0 <= self.min_target_visibility <= 1.0:
            raise ParameterError("min_target_visibility", f"expected a fraction in [0, 1], got "
                                                          f"{self.min_target_visibility!r}")
        if not (isinstance(self.max_out_of_range, (int, float)) and 0.0 <= self.max_out_of_range < 1.0):
            raise ParameterError("max_out_of_range", f"expected a share in [0, 1), got {self.max_out_of_range!r}")
        for name in ("floating_tol_m", "penetration_tol_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ParameterError(name, f"expected metres >= 0, got {v!r}")


@dataclass(frozen=True, order=True)
class Rejection:
    """Why a frame is not admitted: a reason of ``REASONS`` and a one-line detail."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one frame: its rejections (none: admitted) and its rgb's hash."""

    frame: int
    key: str  # names the sample in the hash pool: the rgb file's path
    rejections: tuple[Rejection, ...]
    image_hash: int | None  # None when the rgb does not decode

    @property
    def admitted(self) -> bool:
        return not self.rejections

    @property
    def reasons(self) -> tuple[str, ...]:
        """The distinct reasons, in ``REASONS`` order."""
        got = {r.reason for r in self.rejections}
        return tuple(r for r in REASONS if r in got)


class Gate:
    """Checks frames of longtail folder datasets; remembers the admitted ones' hashes.

    Args:
        config: thresholds.
        ranges: the real data's box ranges per class; None: no size or aspect check.
        pool: hashes of samples already admitted (e.g. ``HashPool.load`` of a resumed loop); a new
            pool if None. ``admit`` adds to it; save it with ``gate.pool.save(path)``.
        target: which of a record's objects (dicts) are targeted; default ``event_objects``.
    """

    def __init__(self, config: GateConfig | None = None, ranges: RealRanges | None = None,
                 pool: HashPool | None = None, target: Target | None = None):
        self.config = config or GateConfig()
        self.ranges = ranges
        self.pool = HashPool() if pool is None else pool
        self.target = target or event_objects

    def check(self, root: Path, index: int) -> Verdict:
        """Check frame ``index`` of the folder dataset at ``root``; the pool is not changed."""
        root = Path(root)
        rel = frame_files(index)["labels"]
        key = (root / frame_files(index)["rgb"]).as_posix()
        try:
            record = parse_record(read_bytes(root / rel, "frame record"), rel, index)
        except InputError as e:
            return Verdict(index, key, (Rejection("labels", e.message),), None)
        raw: dict[str, bytes] = {}

        def image(kind: str, ref: str) -> tuple[str, bytes] | Finding:
            try:
                raw[kind] = read_bytes(root / ref, f"{kind} image")
            except InputError as e:
                return Finding(ref, e.problem)
            return ref, raw[kind]

        try:
            out = [Rejection("labels", str(f)) for f in frame_findings(rel, record, index, image)]
        except MALFORMED as e:
            out = [Rejection("labels", f"{rel}: malformed frame record ({type(e).__name__}: {e})")]
        out += self._targets(record)
        out += self._placement(record, rel)
        h = None
        if "rgb" in raw:
            try:
                h = image_hash(read_image(raw["rgb"], record["files"]["rgb"], "RGB"))
            except InputError:
                pass  # verify has said why it does not decode
        if h is not None and (near := self.pool.nearest(h)) is not None \
                and near[1] <= self.config.duplicate_max_bits:
            out.append(Rejection("duplicate", f"rgb within {near[1]} of 256 hash bits of {near[0]}"))
        return Verdict(index, key, tuple(out), h)

    def admit(self, verdict: Verdict) -> None:
        """Add an admitted frame's hash to the pool (later frames are checked against it)."""
        if not verdict.admitted:
            raise ValueError(f"frame {verdict.frame} was rejected: {', '.join(verdict.reasons)}")
        if verdict.image_hash is not None:
            self.pool.add(verdict.key, verdict.image_hash)

    def _targets(self, record: dict) -> list[Rejection]:
        cfg = self.config
        targets = [o for o in record["objects"] if self.target(o)]
        visible = [o for o in targets if o["area"] >= max(cfg.min_target_px, 1)
                   and o.get("visibility", 1.0) >= cfg.min_target_visibility]
        out = []
        if len(visible) < cfg.min_visible_targets:
            seen = ", ".join(f"object {o['id']} ({o['class']}): {o['area']} px, visibility {o.get('visibility', 1.0):g}"
                             for o in targets[:4]) or "no targeted object in view"
            out.append(Rejection("invisible_target", f"{len(visible)} of {len(targets)} targeted objects visible "
                                                     f"(at least {cfg.min_target_px} px and visibility "
                                                     f"{cfg.min_target_visibility:g}; need "
                                                     f"{cfg.min_visible_targets}): {seen}"))
        if self.ranges is None:
            return out
        size: list[Rejection] = []
        aspect: list[Rejection] = []
        checked = 0
        for o in visible:
            r = self.ranges.get(o["class"])
            if r is None:
                continue
            checked += 1
            amodal = o.get("bbox_amodal")  # the whole object, as annotators draw real boxes
            x0, y0, x1, y1 = amodal if amodal else o["bbox"]
            w, h = x1 - x0, y1 - y0
            if h <= 0:
                continue
            if not r.height_px[0] <= h <= r.height_px[1]:
                size.append(Rejection("size", f"object {o['id']} ({o['class']}): box {h:.0f} px tall, real "
                                              f"{o['class']} boxes {r.height_px[0]:.1f}-{r.height_px[1]:.1f} px"))
            if not r.aspect[0] <= w / h <= r.aspect[1]:
                aspect.append(Rejection("aspect", f"object {o['id']} ({o['class']}): box aspect (w/h) {w / h:.2f}, "
                                                  f"real {o['class']} boxes {r.aspect[0]:.2f}-{r.aspect[1]:.2f}"))
        for found in (size, aspect):  # a frame fails when more than max_out_of_range of its targets do
            if found and len(found) > cfg.max_out_of_range * checked:
                out += found
        return out

    def _placement(self, record: dict, rel: str) -> list[Rejection]:
        if "scene" not in record:
            return [Rejection("labels", f"{rel}: scene: missing; the placement checks need the frame's Scene")]
        try:
            scene = Scene.model_validate(record["scene"])
        except ValidationError as err:
            e = validation_message(rel, err)
            return [Rejection("labels", f"{rel}: scene{'.' + e.field if e.field else ''}: {e.problem}")]
        problem = _unbuildable(scene)
        if problem:
            return [Rejection("labels", f"{rel}: scene.{problem}")]
        return [Rejection(p.kind, str(p)) for p in placement_problems(scene, self.config.floating_tol_m,
                                                                       self.config.penetration_tol_m)]


def _unbuildable(scene: Scene) -> str | None:
    """Why the scene's static world and actors are not what a scenario can make (``field: problem``),
    or None. A Scene only bounds its camera; a record from outside could ask for a million lanes."""
    lay = scene.layout
    spec = {"kind": lay.kind, "lanes_choices": [lay.lanes], "lane_width_m_range": (lay.lane_width, lay.lane_width),
            "length_m": lay.length}
    if lay.radius is not None:
        spec["radius_m_range"] = (abs(lay.radius), abs(lay.radius))
    if lay.junction_at is not None:
        spec["junction_m_range"] = (lay.junction_at, lay.junction_at)
    try:
        LayoutSpec.model_validate(spec)
    except ValidationError as err:
        e = validation_message("scene", err)
        return f"layout: {e.field}: {e.problem}" if e.field else f"layout: {e.problem}"
    if not 0 <= lay.seed < 2**63:
        return f"layout.seed: {lay.seed}: expected an integer in [0, 2**63)"
    for k, a in enumerate(scene.actors):
        if not all(0 < v <= MAX_ACTOR_M for v in a.size):
            return f"actors[{k}].size: {list(a.size)}: expected metres in (0, {MAX_ACTOR_M:g}]"
        if not all(abs(v) <= MAX_COORD_M for v in a.position):
            return f"actors[{k}].position: {list(a.position)}: expected metres within +-{MAX_COORD_M:g}"
    return None


# --- a whole dataset -----------------------------------------------------------------------------

@dataclass
class GateReport:
    """What the gate made of a dataset: one verdict per frame checked, in order, and the count of
    frames rejected for each reason (a frame rejected for two reasons counts under both)."""

    root: str
    verdicts: list[Verdict] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def admitted(self) -> list[int]:
        return [v.frame for v in self.verdicts if v.admitted]

    def to_json(self) -> dict:
        return {"root": self.root, "frames": len(self.verdicts), "admitted": self.admitted,
                "rejections": {r: self.counts[r] for r in REASONS},
                "rejected": {str(v.frame): [str(r) for r in v.rejections] for v in self.verdicts if not v.admitted}}


def gate_dataset(root: Path, gate: Gate | None = None, frames: Iterable[int] | None = None,
                 limit: int | None = None) -> GateReport:
    """Run ``gate`` (a default ``Gate`` if None) over the frames of the folder dataset at ``root``
    (all of them if ``frames`` is None), in order, admitting each frame that passes, so a later
    near-duplicate of it is rejected. To seed the duplicate pool, give a gate made with
    ``pool=HashPool.load(path)``; ``gate.pool`` holds the admitted frames' hashes afterwards.
    ``limit``: stop once this many frames are admitted (the frames after are not checked).

    Raises:
        DatasetError: ``root`` is not a longtail folder dataset (its manifest does not read), or a
            frame index is not one of it. Damaged frames are rejections, never errors.
    """
    root = Path(root)
    gate = gate or Gate()
    manifest = Manifest.load(root)
    indices = list(range(manifest.frame_count)) if frames is None else [int(i) for i in frames]
    bad = [i for i in indices if not 0 <= i < manifest.frame_count]
    if bad:
        raise DatasetError(str(root), "frames", f"{bad[0]} is not a frame of this dataset "
                                                f"(0-{manifest.frame_count - 1})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ParameterError("limit", f"expected an integer >= 0, got {limit!r}")
    report = GateReport(root.as_posix())
    admitted = 0
    for i in indices:
        if limit is not None and admitted >= limit:
            break
        v = gate.check(root, i)
        if v.admitted:
            gate.admit(v)
            admitted += 1
        report.verdicts.append(v)
        report.counts.update(v.reasons)
    return report
