"""``longtail compare``: what synthetic, real and mixed data are worth on held-out real frames.

Every arm trains the same model for the same number of steps and is evaluated on the same test
images, clear and under each weather preset of the robustness set (a Foggy-Cityscapes-style copy
of the test set made with the weather stage and a ground-plane depth prior, ``train.weather``):

- ``real``: the real training frames (a fraction of them: ``real_fractions``);
- ``synthetic``: longtail frames only (no real frame: run once per seed);
- ``mixed``: real and synthetic in every batch (``synthetic_share`` of each batch synthetic);
- ``pretrain-finetune``: synthetic for ``pretrain_share`` of the steps, then real;
- ``real+weather``: real frames with the weather stage applied on the fly (the honest baseline
  that rendering must beat: it sees the same kind of weather without any rendered frame);
- ``real+plates``: real frames mixed with longtail frames composited onto the user's own plate
  (``--plates``);
- ``real+inserted``: real frames with rendered actors inserted into them on the fly (``--insert``,
  ``train.insert``), then the weather stage;
- ``pretrained+real``: the real arm started from a detector pretrained on the synthetic data for
  ``pretrain_steps`` steps of its own budget, trained once (seed 0) and reused by every seed and
  real fraction, as a user reuses a base model; the fine-tuning sees exactly real-only's steps.
  (``pretrain-finetune`` is the older equal-total-budget arm: its synthetic steps are taken out of
  the real ones.)
- ``pretrained+inserted``: both: the ``real+inserted`` arm started from the same base model as
  ``pretrained+real`` (what the rendered scenes teach first, then real frames with rendered actors
  and weather).

Without ``--test``, the real data is split by contiguous blocks of frames (random frames of one
video are near-copies of their neighbours): the first ``1 - test_share`` of the frames train, the
last ``test_share`` test, with ``gap`` frames left out between them. A real fraction takes evenly
spaced frames of the training block.

The output directory holds one run directory per (arm, real fraction, seed) under ``runs/`` with
the run's ``eval.json``; finished runs are skipped, interrupted ones resume from their checkpoint.
``report.write_report`` then writes ``results.json``, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from longtail.atomic import write_json
from longtail.errors import InputError, ParameterError
from longtail.train.checkpoint import INIT_PARTS, load_detector, load_init, slim_checkpoint
from longtail.train.datasets import open_dataset
from longtail.train.engine import CHECKPOINT, SampledBatches, TrainConfig, read_metrics, resolve_device, train
from longtail.train.evaluate import evaluate
from longtail.train.models import (ModelSpec, box_head_options, check_box_head_norm, check_model_name,
                                   preset_with)
from longtail.train.entries import DetectionDataset
from longtail.train.insert import ActorBank, Inserter
from longtail.train.batching import two_stage
from longtail.train.sensor import SensorAugment
from longtail.train.weather import GroundPrior, Weathered, WeatherAugment, check_presets, parse_sweep, sweep_curve
from longtail.worlds.plates import Plate, load_camera, load_plate
from longtail.worlds.scenario import Scenario, load_scenario

ARMS = ("real", "synthetic", "mixed", "pretrain-finetune", "real+weather", "real+plates", "real+inserted",
        "pretrained+real", "pretrained+inserted")
PRETRAINED_ARMS = ("pretrained+real", "pretrained+inserted")  # start from the shared synthetic base model
INSERTED_ARMS = ("real+inserted", "pretrained+inserted")  # rendered actors inserted into the real frames
DEFAULT_ARMS = ("real", "synthetic", "mixed", "pretrain-finetune", "real+weather")
CONFIG_FILE = "compare.json"
EVAL_FILE = "eval.json"
CLEAR = "clear"
PRETRAIN_SEED = 0  # the shared base model of the pretrained arms is trained once, with this seed


@dataclass(frozen=True)
class CompareConfig:
    """Settings of a comparison (a preset, with command-line overrides).

    Attributes:
        model: torchvision detection model name.
        steps: optimizer steps of every arm.
        batch: images per step.
        img_size: (H, W) model input size.
        arms: arms to run (``ARMS``).
        real_fractions: fractions of the real training block to train on.
        seeds: number of seeds (0, 1, ...) per arm and fraction.
        synthetic_share: share of synthetic images in a mixed batch.
        pretrain_share: share of the steps pre-training on synthetic (pretrain-finetune: equal total budget).
        pretrain_steps: steps of the synthetic base model of the pretrained arms (a budget of its own).
        pretrain_parts: what the pretrained arms take from the base model (``checkpoint.INIT_PARTS``):
            ``all`` its weights, ``backbone`` only its backbone and FPN (fresh detection heads).
        test_share: share of the real frames held out for testing when no test set is given.
        gap: frames left out between the train and test blocks.
        test_images: at most this many test images per test set (evenly spaced); 0 = all.
        robustness: weather presets the test sets are also evaluated under.
        severities: preset strengths (0..1) of the robustness table.
        train_weather: presets of the ``real+weather`` arm.
        warmup_steps: learning-rate warm-up.
        pretrained: start from torchvision's ImageNet backbone weights (local cache only).
        box_head_norm: ``none`` (torchvision's RoI box head), ``layer`` (``models.LayerNormBoxHead``,
            Faster R-CNN only) or ``auto`` (``layer`` for Faster R-CNN, else ``none``; resolved
            when the config is made), for every arm and the base model.
        sensor_augment: camera randomisation (``train.sensor``) on the rendered frames of every arm.
        insert_share: share of the real images that get actors in the inserted arms.
        sweeps: robustness curves in physical units, ``KNOB=FROM..TO:N`` each (``train.weather``):
            every run is also scored along them and the report shows each arm's curve and half
            point (V50). Not part of a comparison's identity: adding a sweep to a finished
            comparison scores its saved checkpoints without training anything again.
        only_seeds: run (and report) only these of the seeds 0..seeds-1; empty: all. Not part of a
            comparison's identity either, so the seeds of one comparison can run on different
            machines and their ``runs/`` folders be copied into one directory, where a rerun
            without it skips them all and writes the joint report.
    """

    model: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    steps: int = 300
    batch: int = 4
    img_size: tuple[int, int] = (320, 427)
    arms: tuple[str, ...] = DEFAULT_ARMS
    real_fractions: tuple[float, ...] = (0.1,)
    seeds: int = 1
    synthetic_share: float = 0.5
    pretrain_share: float = 0.5
    test_share: float = 0.3
    gap: int = 10
    test_images: int = 0
    robustness: tuple[str, ...] = ("dense_fog", "night", "heavy_rain")
    severities: tuple[float, ...] = (0.5,)
    train_weather: tuple[str, ...] = ("light_fog", "dense_fog", "night", "heavy_rain", "heavy_snow", "dusk")
    warmup_steps: int = 50
    pretrained: bool = False
    box_head_norm: str = "auto"
    sensor_augment: bool = False
    insert_share: float = 0.5
    pretrain_steps: int = 0
    pretrain_parts: str = "all"
    sweeps: tuple[str, ...] = ()
    only_seeds: tuple[int, ...] = ()

    def __post_init__(self):
        check_model_name(self.model)
        object.__setattr__(self, "box_head_norm", check_box_head_norm(self.box_head_norm, self.model))
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            said = f"unknown arm {unknown[0]!r}" if unknown else "no arm"
            raise ParameterError("arms", f"{said}; expected some of {', '.join(ARMS)}")
        if len(set(self.arms)) != len(self.arms):
            raise ParameterError("arms", "an arm is named twice")
        for name, values in (("real_fractions", self.real_fractions), ("severities", self.severities)):
            if not values or any(not 0 < v <= 1 for v in values):
                raise ParameterError(name, f"expected values in (0, 1], got {', '.join(map(str, values)) or 'none'}")
        for name, v in (("steps", self.steps), ("batch", self.batch), ("seeds", self.seeds)):
            if v < 1:
                raise ParameterError(name, f"expected a positive integer, got {v}")
        for name, v in (("synthetic_share", self.synthetic_share), ("pretrain_share", self.pretrain_share),
                        ("test_share", self.test_share)):
            if not 0 < v < 1:
                raise ParameterError(name, f"expected a share strictly between 0 and 1, got {v}")
        if self.pretrain_steps < 0:
            raise ParameterError("pretrain_steps", f"expected a positive integer, got {self.pretrain_steps}")
        pretrained = [a for a in self.arms if a in PRETRAINED_ARMS]
        if self.pretrain_parts not in INIT_PARTS:
            raise ParameterError("pretrain_parts", f"expected one of {', '.join(INIT_PARTS)}, "
                                 f"got {self.pretrain_parts!r}")
        if self.pretrain_parts != "all" and not pretrained:
            raise ParameterError("pretrain_parts", "only the pretrained arms start from a base model: add "
                                 "--pretrain-steps N (or a pretrained arm)")
        if pretrained and not self.pretrain_steps:
            raise ParameterError("pretrain_steps", f"the {pretrained[0]} arm needs the base model's budget, "
                                 "e.g. 1000 steps on the synthetic data")
        wrong = [s for s in self.only_seeds if not 0 <= s < self.seeds]
        if wrong or len(set(self.only_seeds)) < len(self.only_seeds):
            said = f"seed {wrong[0]} is not one of 0..{self.seeds - 1}" if wrong else "a seed is named twice"
            raise ParameterError("only_seeds", f"{said}; expected seeds of 0..{self.seeds - 1} (--seeds {self.seeds})")
        check_presets(self.robustness, "robustness")
        check_presets(self.train_weather, "train_weather")
        knobs = [parse_sweep(text)[0].name for text in self.sweeps]
        if len(set(knobs)) < len(knobs):
            raise ParameterError("sweep", f"expected each knob once, got {', '.join(knobs)}")

    def parsed_sweeps(self) -> dict:
        """``KNOB=FROM..TO:N`` text -> (knob, values), for each sweep."""
        return {text: parse_sweep(text) for text in self.sweeps}

    def to_json(self) -> dict:
        out = json.loads(json.dumps(asdict(self)))
        # a comparison without these arms reads as it did before they existed (so it resumes)
        if not set(INSERTED_ARMS) & set(self.arms):
            del out["insert_share"]
        if not set(PRETRAINED_ARMS) & set(self.arms):
            del out["pretrain_steps"]
        if self.pretrain_parts == "all" or not set(PRETRAINED_ARMS) & set(self.arms):
            del out["pretrain_parts"]  # the default: comparisons from before the option resume
        if self.box_head_norm == "none":
            del out["box_head_norm"]  # the default: comparisons from before the option resume
        del out["sweeps"]  # what a run is scored on afterwards, not what it trained on: compare.json's "sweeps"
        del out["only_seeds"]  # which of the comparison's runs this machine does, not what they are
        return out

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds this invocation runs and reports."""
        return tuple(sorted(self.only_seeds)) if self.only_seeds else tuple(range(self.seeds))


# ``smoke`` proves the plumbing end to end (all arms, one seed) in under 10 minutes on 2 CPU
# cores; its detectors are far from trained (REFERENCES: below ~2.5 minutes of CPU training every
# model still scores ~0). ``cpu`` gives numbers that mean something at one seed in ~35 minutes;
# ``converged`` is ``cpu`` at a budget where real-only has stopped improving on this CPU (PETS, 41
# real frames, seed 0: clear AP50 47.7 at 250 steps, 73.7 at 500, 74.3 at 750, 73.9 at 1000),
# three seeds, ~17 minutes a run on 2 cores; ``full`` is for a GPU: three seeds, three real
# fractions, many more steps.
PRESETS: dict[str, CompareConfig] = {
    "smoke": CompareConfig(steps=32, batch=4, img_size=(256, 341), real_fractions=(0.1,), seeds=1,
                           test_images=20, robustness=("dense_fog", "night"), severities=(0.5,), warmup_steps=10),
    "cpu": CompareConfig(steps=250, batch=4, img_size=(320, 427), real_fractions=(0.1,), seeds=1,
                         test_images=60, robustness=("dense_fog", "night", "heavy_rain"), severities=(0.5,),
                         warmup_steps=50, sweeps=("fog.visibility_m=2000..30:8",)),
    "full": CompareConfig(steps=3000, batch=8, img_size=(576, 768), real_fractions=(0.1, 0.25, 1.0), seeds=3,
                          test_images=0, robustness=("light_fog", "dense_fog", "night", "heavy_rain", "heavy_snow",
                                                     "low_sun"), severities=(0.25, 0.5, 0.75), warmup_steps=200,
                          sweeps=("fog.visibility_m=2000..30:10", "night.skylight_ev=0..-8:9")),
}
PRESETS["converged"] = replace(PRESETS["cpu"], steps=1000, seeds=3)


def preset_config(name: str, **overrides) -> CompareConfig:
    """A preset with the given fields replaced (None values are left as the preset has them)."""
    return preset_with(PRESETS, name, overrides)


# --- data -------------------------------------------------------------------------------------

def subset(dataset: DetectionDataset, indices: Sequence[int], label: str) -> DetectionDataset:
    """The images ``indices`` of ``dataset`` (reading pixels as the dataset does)."""
    return _Subset(dataset, list(indices), label)


class _Subset(DetectionDataset):
    def __init__(self, base: DetectionDataset, indices: list[int], label: str):
        self.base, self.indices = base, indices
        super().__init__(f"{base.name} [{label}]", [base.entries[i] for i in indices], base.unmapped)
        self.kind = base.kind

    def image(self, i: int):
        return self.base.image(self.indices[i])


def evenly_spaced(n: int, k: int) -> list[int]:
    """``k`` indices of ``range(n)`` spread evenly (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, k)})


@dataclass(frozen=True)
class Split:
    """Contiguous-block split of one real sequence: train frames, gap, test frames."""

    train: list[int]
    test: list[int]
    gap: int

    def describe(self, n: int) -> str:
        return (f"contiguous blocks of the {n} real frames (in file order): frames 1-{len(self.train)} train, "
                f"{self.gap} left out, frames {self.test[0] + 1}-{self.test[-1] + 1} test")


def block_split(n: int, test_share: float, gap: int) -> Split:
    """First ``1 - test_share`` of ``n`` frames train, the last ``test_share`` test, ``gap`` between."""
    n_test = max(1, int(round(n * test_share)))
    n_train = n - n_test - gap
    if n_train < 1:
        raise ParameterError("test_share", f"{n} real frames leave none to train on after {n_test} test frames "
                         f"and a gap of {gap}")
    return Split(list(range(n_train)), list(range(n - n_test, n)), gap)


def dataset_digest(dataset: DetectionDataset) -> str:
    """sha256 over the images' file names and sizes and every label (what a run saw)."""
    h = hashlib.sha256()
    for e in dataset.entries:
        h.update(f"{e.image.name}|{e.width}x{e.height}|".encode())
        h.update(np.ascontiguousarray(e.boxes).tobytes() + e.labels.tobytes() + e.iscrowd.tobytes())
    return h.hexdigest()


@dataclass
class Inputs:
    """The datasets of a comparison, opened and split."""

    real_train: DetectionDataset
    synthetic: DetectionDataset | None
    plates: DetectionDataset | None
    tests: dict[str, DetectionDataset]
    split: str | None
    prior: GroundPrior
    classes: tuple[str, ...]
    sources: dict = field(default_factory=dict)
    insert: Scenario | None = None  # the inserted arms' scenario
    bank: ActorBank | None = None  # its actors, rendered once for every run
    plate: Plate | None = None  # the real camera's plate, when --real-camera is one (regions, occluders)


def _labelled_classes(dataset: DetectionDataset) -> set[str]:
    from longtail.classes import class_by_id

    return {class_by_id(int(c)).name for e in dataset.entries for c, crowd in zip(e.labels, e.iscrowd)
            if c >= 0 and not crowd}


def open_inputs(real: str, synthetic: str | None, tests: Sequence[str], cfg: CompareConfig, *,
                plates: str | None = None, real_camera: Path | None = None, classes: Sequence[str] | None = None,
                insert: str | None = None) -> Inputs:
    """Open and check every dataset a comparison needs (before anything is trained)."""
    needs_synth = any(a in cfg.arms for a in ("synthetic", "mixed", "pretrain-finetune", *PRETRAINED_ARMS))
    if needs_synth and not synthetic:
        raise ParameterError("synthetic", "the synthetic, mixed, pretrain-finetune and pretrained arms need a "
                             "longtail dataset")
    if "real+plates" in cfg.arms and not plates:
        raise ParameterError("plates", "the real+plates arm needs a longtail dataset rendered on your plate")
    inserted = [a for a in cfg.arms if a in INSERTED_ARMS]
    if inserted and not insert:
        raise ParameterError("insert", f"the {inserted[0]} arm needs a scenario of actors to insert")
    insert_scenario = load_scenario(insert) if insert and inserted else None
    real_ds = open_dataset(real)
    if len(real_ds) == 0:
        raise InputError(real, None, "no images")
    split = None
    if tests:
        test_sets = {Path(t.split(":", 1)[-1]).name or t: open_dataset(t) for t in tests}
        train_ds = real_ds
    else:
        sp = block_split(len(real_ds), cfg.test_share, cfg.gap)
        split = sp.describe(len(real_ds))
        train_ds = subset(real_ds, sp.train, "train block")
        test_sets = {"real held-out": subset(real_ds, sp.test, "test block")}
    if cfg.test_images:
        test_sets = {name: subset(ds, evenly_spaced(len(ds), cfg.test_images), f"{cfg.test_images} evenly spaced")
                     if len(ds) > cfg.test_images else ds for name, ds in test_sets.items()}
    labelled = _labelled_classes(train_ds)
    for ds in test_sets.values():
        labelled &= _labelled_classes(ds)
    if classes:
        chosen = tuple(classes)
    else:
        if not labelled:
            raise InputError(real, None, "the real train and test frames share no labelled class")
        chosen = tuple(sorted(labelled))
    synth = open_dataset(synthetic) if synthetic and needs_synth else None
    plate_ds = open_dataset(plates) if plates and "real+plates" in cfg.arms else None
    for name, extra in (("synthetic", synth), ("plates", plate_ds)):
        if extra is not None and extra.kind != "longtail":
            raise ParameterError(name, f"expected a longtail dataset directory, got {extra.kind} data")
    prior = GroundPrior(camera=load_camera(real_camera)) if real_camera else GroundPrior()
    sources = {"real": {**real_ds.describe(), "sha256": dataset_digest(real_ds)}}
    for name, extra in (("synthetic", synth), ("plates", plate_ds)):
        if extra is not None:
            sources[name] = {**extra.describe(), "sha256": dataset_digest(extra)}
    for name, ds in test_sets.items():
        sources[f"test: {name}"] = {**ds.describe(), "sha256": dataset_digest(ds)}
    bank = plate = None
    if insert_scenario is not None:
        sources["insert"] = {"scenario": insert_scenario.name, "sha256": insert_scenario.digest()}
        bank = ActorBank(insert_scenario)
        plate = load_plate(real_camera) if real_camera and Path(real_camera).is_dir() else None
    return Inputs(train_ds, synth, plate_ds, test_sets, split, prior, chosen, sources, insert_scenario, bank, plate)


# --- runs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunKey:
    arm: str
    fraction: float | None  # None: the arm sees no real frame
    seed: int

    @property
    def path(self) -> str:
        frac = "no-real" if self.fraction is None else f"real{self.fraction:g}"
        return f"runs/{self.arm}/{frac}/seed{self.seed}"


def run_keys(cfg: CompareConfig) -> list[RunKey]:
    keys: list[RunKey] = []
    for seed in cfg.run_seeds:
        for arm in cfg.arms:
            fractions = [None] if arm == "synthetic" else list(cfg.real_fractions)
            keys.extend(RunKey(arm, f, seed) for f in fractions)
    return keys


def arm_batches(key: RunKey, inputs: Inputs, cfg: CompareConfig) -> tuple[SampledBatches, dict]:
    """The batches an arm trains on, and a plain description of its data."""
    real = None
    if key.fraction is not None:
        n = len(inputs.real_train)
        k = max(1, int(round(key.fraction * n)))
        real = subset(inputs.real_train, evenly_spaced(n, k), f"{k} of {n} frames")
    steps, batch, seed = cfg.steps, cfg.batch, key.seed
    share = {"synthetic": cfg.synthetic_share, "real": 1 - cfg.synthetic_share}
    rendered = {"synthetic": SensorAugment()} if cfg.sensor_augment else None
    # open_inputs opens the synthetic and plate datasets of the arms that use them, and run_keys
    # gives every arm but synthetic a real fraction
    if key.arm == "synthetic":
        assert inputs.synthetic is not None
        data = SampledBatches.mixed({"synthetic": inputs.synthetic}, {"synthetic": 1.0}, steps, batch, seed, rendered)
    elif real is None:  # pragma: no cover - see above
        raise AssertionError(f"{key.arm} without real frames")
    elif key.arm in ("real", "pretrained+real"):  # pretrained+real differs in its start (run_compare)
        data = SampledBatches.mixed({"real": real}, {"real": 1.0}, steps, batch, seed)
    elif key.arm == "mixed":
        assert inputs.synthetic is not None
        data = SampledBatches.mixed({"real": real, "synthetic": inputs.synthetic}, share, steps, batch, seed, rendered)
    elif key.arm == "real+plates":
        assert inputs.plates is not None
        data = SampledBatches.mixed({"real": real, "synthetic": inputs.plates}, share, steps, batch, seed, rendered)
    elif key.arm == "pretrain-finetune":
        assert inputs.synthetic is not None
        sets = {"synthetic": inputs.synthetic, "real": real}
        pre = max(1, min(steps - 1, int(round(cfg.pretrain_share * steps))))
        data = SampledBatches(sets, two_stage({k: len(v) for k, v in sets.items()}, "synthetic", "real", pre, steps,
                                              batch, seed), rendered)
    elif key.arm in ("real+weather", *INSERTED_ARMS):  # pretrained+inserted differs in its start (run_compare)
        augment = WeatherAugment(cfg.train_weather, p=0.5, strength=(0.3, 1.0), prior=inputs.prior)
        insert = None
        if key.arm in INSERTED_ARMS:
            assert inputs.insert is not None and inputs.bank is not None  # open_inputs made them
            insert = {"real": Inserter(inputs.insert, inputs.bank, inputs.prior, p=cfg.insert_share,
                                       plate=inputs.plate)}
        data = SampledBatches.mixed({"real": real}, {"real": 1.0}, steps, batch, seed, {"real": augment}, insert)
    else:  # pragma: no cover - CompareConfig checks the names
        raise AssertionError(key.arm)
    return data, {"real_images": 0 if real is None else len(real)}


def test_cells(cfg: CompareConfig) -> list[tuple[str, str | None, float | None]]:
    """(cell name, preset, strength) of every evaluation of a test set: clear first."""
    cells: list[tuple[str, str | None, float | None]] = [(CLEAR, None, None)]
    cells += [(f"{p}@{s:g}", p, s) for p in cfg.robustness for s in cfg.severities]
    return cells


def evaluate_run(checkpoint: Path, inputs: Inputs, cfg: CompareConfig, device) -> dict:
    """Metrics of a run's EMA weights on every test set, clear and under each robustness cell."""
    model, spec, data = load_detector(checkpoint, "ema")
    out: dict = {"step": data["step"], "tests": {}}
    for name, ds in inputs.tests.items():
        cells = {}
        for cell, preset, strength in test_cells(cfg):
            if preset is None:
                view = ds
            else:
                assert strength is not None  # test_cells gives every preset a strength
                view = Weathered(ds, preset, strength, inputs.prior)
            res = evaluate(model, view, device, labels=spec.labels)
            cells[cell] = res["all"] if preset is not None else res
        out["tests"][name] = cells
    return out


def sweep_run(checkpoint: Path, inputs: Inputs, cfg: CompareConfig, device, have: dict) -> dict:
    """The sweeps of ``cfg`` a run lacks (``have``: its eval.json), scored on its saved EMA weights:
    ``{sweep text: {test set: sweep_curve(...)}}``; the clear point is the run's clear cell."""
    missing = {text: ks for text, ks in cfg.parsed_sweeps().items() if text not in have.get("sweeps", {})}
    if not missing:
        return {}
    model, spec, _ = load_detector(checkpoint, "ema")
    out: dict = {}
    for text, (knob, values) in missing.items():
        out[text] = {name: sweep_curve(model, ds, knob, values, inputs.prior, device, spec.labels,
                                       clear=have["tests"][name][CLEAR]["all"])
                     for name, ds in inputs.tests.items()}
    return out


def convergence(metrics: list[dict], ap50: float | None = None) -> dict:
    """How far from converged a run looks. The loss trend is the relative change of the mean loss
    from the third to the last quarter of the steps; the verdict reads the AP first, because
    Faster R-CNN's total loss rises while it starts to learn (more proposals reach its RoI head),
    so a flat or rising loss early on does not mean a plateau."""
    losses = [m["loss"] for m in metrics if math.isfinite(m.get("loss", math.nan))]
    out: dict = {"steps": len(losses), "trend": None}
    if len(losses) >= 8:
        q = len(losses) // 4
        third, last = float(np.mean(losses[2 * q:3 * q])), float(np.mean(losses[-q:]))
        out.update(first_loss=losses[0], last_loss=last, trend=(last - third) / abs(third) if third else 0.0)
    trend = out["trend"]
    if ap50 is not None and ap50 < 0.05:
        verdict = ("not detecting the test images (clear AP50 < 5): either untrained (from scratch on a CPU, "
                   "AP moves after ~250 steps of 4 images, shared/REFERENCES.md) or what it learned does not "
                   "transfer to them")
    elif trend is None:
        verdict = "too few steps to judge"
    elif trend < -0.10:
        verdict = "loss still falling fast: more steps would help"
    elif trend < -0.02:
        verdict = "loss still falling"
    elif trend > 0.05:
        verdict = ("loss rising, as Faster R-CNN's does early on (its RoI head sees more positives as the "
                   "proposals improve): still early")
    else:
        verdict = "loss flat: near a plateau at this learning rate"
    out["verdict"] = verdict
    return out


Progress = Callable[[str], None]


def run_compare(real: str, synthetic: str | None, tests: Sequence[str], out: Path, cfg: CompareConfig, *,
                plates: str | None = None, real_camera: Path | None = None, classes: Sequence[str] | None = None,
                device: str = "auto", log: Progress = print, step_progress=None, preset: str | None = None,
                insert: str | None = None) -> dict:
    """Run every arm (skipping finished ones), then write the report; returns ``results.json``'s content."""
    from longtail.train.report import write_report

    inputs = open_inputs(real, synthetic, tests, cfg, plates=plates, real_camera=real_camera, classes=classes,
                         insert=insert)
    out = Path(out)
    record = {"config": cfg.to_json(), "preset": preset, "sweeps": list(cfg.sweeps), "classes": list(inputs.classes),
              "inputs": {"real": real, "synthetic": synthetic, "tests": list(tests), "plates": plates,
                         "real_camera": str(real_camera) if real_camera else None,
                         **({"insert": insert} if insert else {})},  # only when used: older runs resume
              "sources": inputs.sources, "split": inputs.split}
    _open_report_dir(out, record)
    dev = resolve_device(device)
    spec = ModelSpec(name=cfg.model, classes=inputs.classes, img_size=cfg.img_size,
                     options={**(pretrained_options(cfg.model) if cfg.pretrained else {}),
                              **box_head_options(cfg.box_head_norm)})
    config = TrainConfig(warmup_steps=cfg.warmup_steps)
    keys = run_keys(cfg)
    if inputs.split:
        log(f"no --test given: {inputs.split}")

    def run_once(run_dir: Path, tag: str, make: Callable[[], tuple[SampledBatches, dict]], steps: int, seed: int,
                 facts: dict, init: Path | None = None) -> dict:
        """Train one run (resuming it) on ``make()``'s batches and evaluate it, unless its eval.json exists."""
        eval_file = run_dir / EVAL_FILE
        if eval_file.exists():
            log(f"{tag}: done earlier, skipped")
        else:
            data, info = make()
            facts = {**facts, **info}
            start = f" from {init.relative_to(out)}" if init is not None else ""
            log(f"{tag}: training {steps} steps{start} on {_describe_sources(data)}")
            model = spec.build(seed)
            if init is not None:
                load_init(model, init, cfg.pretrain_parts)
            res = train(model, data, steps, spec=spec, out_dir=run_dir, seed=seed, device=dev,
                        config=replace(config, checkpoint_every=max(10, steps // 10)),
                        resume=(run_dir / "run.json").exists(), progress=step_progress, run_info={"compare": facts})
            log(f"{tag}: evaluating on {', '.join(inputs.tests)} ({len(test_cells(cfg))} conditions each)")
            result = evaluate_run(res.checkpoint, inputs, cfg, dev)
            result.update(facts)
            slim_checkpoint(res.checkpoint)  # EMA weights only: the run is finished
            write_json(eval_file, result)
        run = json.loads(eval_file.read_text())
        if cfg.sweeps:
            added = sweep_run(run_dir / CHECKPOINT, inputs, cfg, dev, run)
            if added:
                log(f"{tag}: scored along {', '.join(added)}")
                run["sweeps"] = {**run.get("sweeps", {}), **added}
                write_json(eval_file, run)
        run["convergence"] = convergence(read_metrics(run_dir), _clear_ap50(run))  # current reading rules
        return run

    base = None
    if set(PRETRAINED_ARMS) & set(cfg.arms):
        assert inputs.synthetic is not None  # open_inputs asks for it with this arm
        synth = inputs.synthetic
        rendered = {"synthetic": SensorAugment()} if cfg.sensor_augment else None

        def base_batches() -> tuple[SampledBatches, dict]:
            return SampledBatches.mixed({"synthetic": synth}, {"synthetic": 1.0}, cfg.pretrain_steps, cfg.batch,
                                        PRETRAIN_SEED, rendered), {"real_images": 0}

        base = run_once(out / pretrain_path(cfg), f"[base] {pretrain_path(cfg)}", base_batches, cfg.pretrain_steps,
                        PRETRAIN_SEED, {"arm": "pretrain base", "fraction": None, "seed": PRETRAIN_SEED})
        base["path"] = pretrain_path(cfg)
    runs = []
    for n, key in enumerate(keys, 1):
        run_dir = out / key.path
        init = out / pretrain_path(cfg) / CHECKPOINT if key.arm in PRETRAINED_ARMS else None
        facts = {"arm": key.arm, "fraction": key.fraction, "seed": key.seed}
        runs.append(run_once(run_dir, f"[{n}/{len(keys)}] {key.path}", partial(arm_batches, key, inputs, cfg),
                             cfg.steps, key.seed, facts, init))
    metrics = {k.path: read_metrics(out / k.path) for k in keys}
    return write_report(out, record, runs, cfg, metrics, versions(), base=base)


def pretrain_path(cfg: CompareConfig) -> str:
    """Directory of the pretrained arms' base model: one per synthetic budget."""
    return f"pretrain/synthetic-{cfg.pretrain_steps}steps"


def _clear_ap50(run: dict) -> float | None:
    """Clear AP50 of a run on its first test set."""
    return next(iter(run["tests"].values()))["clear"]["all"]["AP50"]


def _describe_sources(data: SampledBatches) -> str:
    def extra(name: str) -> str:
        steps = [data.insert.get(name), data.augment.get(name)]  # in the order they run
        return "".join(f", {getattr(fx, 'label', 'augmented')}" for fx in steps if fx is not None)

    return ", ".join(f"{name} ({len(ds)} images{extra(name)})" for name, ds in data.datasets.items())


# settings that only some arms use (``to_json`` leaves them out when no arm does)
ARM_SETTINGS = {"insert_share": INSERTED_ARMS, "pretrain_steps": PRETRAINED_ARMS, "pretrain_parts": PRETRAINED_ARMS}


def _same_runs(have: dict, mine: dict) -> bool:
    """Would two comparison configs train the same runs for the arms they share? Everything but
    which arms run must match; a setting only some arms use, where both configs have such an arm."""
    def settings(cfg: dict) -> tuple[dict, set]:
        cfg = dict(cfg)
        arms = set(cfg.pop("arms", ()))
        if arms & set(PRETRAINED_ARMS):
            cfg.setdefault("pretrain_parts", "all")
        return cfg, arms
    (a, arms_a), (b, arms_b) = settings(have), settings(mine)
    for key, users in ARM_SETTINGS.items():
        if not (arms_a & set(users) and arms_b & set(users)):
            a.pop(key, None)
            b.pop(key, None)
    return a == b


def _open_report_dir(out: Path, record: dict) -> None:
    """Create the report directory, or check that it holds this comparison (then resume it)."""
    file = out / CONFIG_FILE
    if file.exists():
        have = json.loads(file.read_text())
        mine, sources, held = (json.loads(json.dumps(record[k])) for k in ("config", "sources", "inputs"))
        same = {"config": _same_runs(have.get("config", {}), mine),
                "classes": have.get("classes") == list(record["classes"]),
                "inputs": have.get("inputs") == held,
                # the data that the arms of both runs read (other arms read other data)
                "sources": all(v == have.get("sources", {}).get(k, v) for k, v in sources.items())}
        for key, ok in same.items():
            if not ok:
                raise InputError(str(out), None, f"holds a comparison with other {key}; choose a new output directory")
        # a rerun may run other arms (each arm's runs are its own: the directory keeps every arm run
        # in it and their settings) and score other curves (afterwards: this run's are the report's)
        had = have.get("config", {})
        arms = had.get("arms", []) + [a for a in mine["arms"] if a not in had.get("arms", [])]
        now = {"sweeps": record["sweeps"], "config": {**had, **mine, "arms": arms},
               "sources": {**have.get("sources", {}), **sources}}
        if any(have.get(k) != v for k, v in now.items()):
            write_json(file, {**have, **now})
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(str(out), None, "not empty and holds no comparison; choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    write_json(file, record)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("longtail", "torch", "torchvision", "pycocotools", "numpy", "albumentations", "pybullet"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def pretrained_options(model: str) -> dict:
    """Builder options that start ``model`` from torchvision's ImageNet backbone weights, only if
    those are in the local torch cache already (longtail never downloads)."""
    from longtail.train.models import cached_backbone_weights

    return {"weights_backbone": cached_backbone_weights(model)}
