"""``longtail loop``: find where a detector fails on real frames, generate that, admit only verified
samples, accumulate them beside the real data, and measure the gain against an untargeted control.

One seed of a loop, in ``OUT/seed<s>/``::

    round0/run            the detector trained on the real frames alone (``steps0`` steps)
    round0/eval.json      its metrics on the test set and its failure slices (``train.slices``)
    <arm>/round<r>/       for arm in (targeted, control) and r = 1 .. rounds:
        scenario.yaml       targeted: ``worlds.target`` aimed at the weakest slices of the arm's
                            previous round; control: the base scenario as it is
        render/             ``ceil(per_round * oversample)`` candidate frames (``render_dataset``)
        render_<b>/         b = 1 .. TOP_UP_BATCHES: as many candidates again, each batch with a
                            seed of its own, rendered only while fewer than ``per_round`` passed
        gate.json           the verifier gate's verdicts (``labelers.gate``) per batch: the first
                            ``per_round`` admitted frames join the pool; rejections per reason
        run/                fine-tuned from the arm's previous round (round 1: from round 0) on
                            the real frames and the whole pool so far, ``steps`` steps
        eval.json           metrics and slices, as round 0's

The real frames always stay in every batch (``1 - pool_share`` of it); the pool only grows. Both
arms get the same number of admitted samples per round (unless even the last top-up batch leaves
one short, which the report shows in its pool column), so a difference between them is the
targeting. The *tracked* slices are those round 1 of the targeted arm aimed at (chosen from round
0, the same for both arms): ``results.json`` follows their AP50 and recall and the clear frames'
AP50 per arm and round, and ``report.md`` / ``plots/loop.png`` show them. Every step is skipped
when its output exists, so a rerun of the same command resumes (a render and a training run also
resume inside themselves).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from longtail.atomic import write_bytes, write_json
from longtail.errors import InputError, ParameterError
from longtail.labelers.dedup import HashPool
from longtail.labelers.gate import ClassRange, Gate, GateConfig, RealRanges, gate_dataset
from longtail.pipeline import render_dataset
from longtail.seeding import LOOP_RENDER, stream_rng
from longtail.train.checkpoint import load_init, slim_checkpoint
from longtail.train.datasets import open_dataset
from longtail.train.engine import CHECKPOINT, SampledBatches, TrainConfig, resolve_device, train
from longtail.train.entries import DetectionDataset
from longtail.train.evaluate import coco_gt, coco_metrics, evaluate_detections, predict_checkpoint
from longtail.train.models import (ModelSpec, box_head_options, check_box_head_norm, check_model_name,
                                   preset_with)
from longtail.train.report import box_head_words
from longtail.train.slices import SliceConfig, compute_slices
from longtail.worlds.scenario import Scenario, load_scenario
from longtail.worlds.target import SliceRecord, scenario_yaml, target_scenario

ARMS = ("targeted", "control")
# the loop's gate: a frame may hold some people outside the real boxes' range (a crowd always has
# a child or a stride), not most of them
GATE_CONFIG = GateConfig(max_out_of_range=0.5)
EVAL = "eval.json"
GATE = "gate.json"
# extra candidate batches a round may render when the gate admits fewer than ``per_round`` of the
# first: a targeted scenario can ask for what the gate rejects more often (people nearer or in
# thicker fog than the real boxes' range), and a short pool would weigh against targeting
TOP_UP_BATCHES = 3


@dataclass(frozen=True)
class LoopConfig:
    """Settings of a loop (a preset, with command-line overrides).

    Attributes:
        rounds: generation rounds after round 0.
        per_round: admitted samples each arm adds to its pool per round.
        oversample: candidates rendered per sample wanted (the gate rejects some).
        steps0: round 0's training steps (real frames alone, from scratch).
        steps: each later round's fine-tuning steps.
        batch: images per step.
        img_size: (H, W) model input size.
        pool_share: share of a batch drawn from the pool in rounds >= 1.
        real_images: real training frames used (evenly spaced over the real set; 0 = all).
        test_images: test images (evenly spaced; 0 = all).
        seeds: seeds 0 .. seeds-1.
        top: slices targeted per round.
        min_support: a slice's least support to be ranked (images or objects).
        bootstrap: bootstrap resamples of the slices' intervals.
        model: torchvision detector.
        box_head_norm: ``none`` (torchvision's RoI box head), ``layer`` (``models.LayerNormBoxHead``,
            Faster R-CNN only) or ``auto`` (``layer`` for Faster R-CNN, else ``none``; resolved
            when the config is made), for every round of both arms.
        warmup_steps: learning-rate warm-up of every run.
    """

    rounds: int = 2
    per_round: int = 60
    oversample: float = 2.0
    steps0: int = 250
    steps: int = 150
    batch: int = 4
    img_size: tuple[int, int] = (320, 427)
    pool_share: float = 0.5
    real_images: int = 41
    test_images: int = 0
    seeds: int = 1
    top: int = 1
    min_support: int = 10
    bootstrap: int = 200
    model: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    warmup_steps: int = 50
    box_head_norm: str = "auto"

    def __post_init__(self):
        check_model_name(self.model)
        object.__setattr__(self, "box_head_norm", check_box_head_norm(self.box_head_norm, self.model))
        for name in ("rounds", "per_round", "steps0", "steps", "batch", "seeds", "top"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(name, f"expected a positive integer, got {v!r}")
        for name in ("real_images", "test_images", "min_support", "bootstrap", "warmup_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ParameterError(name, f"expected an integer >= 0, got {v!r}")
        if not 0 < self.pool_share < 1:
            raise ParameterError("pool_share", f"expected a share strictly between 0 and 1, got {self.pool_share}")
        if not 1 <= self.oversample <= 20:
            raise ParameterError("oversample", f"expected 1 to 20 candidates per sample, got {self.oversample}")

    @property
    def candidates(self) -> int:
        return math.ceil(self.per_round * self.oversample)

    def to_json(self) -> dict:
        out = json.loads(json.dumps(asdict(self)))
        if self.box_head_norm == "none":
            del out["box_head_norm"]  # the default: loops from before the option resume
        return out


# ``smoke`` runs the plumbing end to end in a few minutes on 2 CPU cores (its detectors learn
# nothing); ``cpu`` is the budget the README's figures were measured at.
PRESETS: dict[str, LoopConfig] = {
    "smoke": LoopConfig(rounds=1, per_round=3, oversample=2.0, steps0=4, steps=2, batch=2, img_size=(128, 160),
                        real_images=6, test_images=6, min_support=1, bootstrap=20, warmup_steps=1),
    "cpu": LoopConfig(),
}


def preset_config(name: str, **overrides) -> LoopConfig:
    """A preset with the given fields replaced (None values are left as the preset has them)."""
    return preset_with(PRESETS, name, overrides)


def evenly_spaced(n: int, k: int) -> list[int]:
    if k <= 0 or k >= n:
        return list(range(n))
    return [int(i * n / k) for i in range(k)]


class _Images(DetectionDataset):
    """Chosen images of several datasets, one after another (the pool; subsets of a set). With
    ``renumber`` the images get ids 1, 2, ... (test sets of the same frames, scored together)."""

    def __init__(self, name: str, parts: Sequence[tuple[DetectionDataset, Sequence[int]]], renumber: bool = False):
        self.parts = [(ds, list(idx)) for ds, idx in parts]
        self.index = [(k, i) for k, (_, idx) in enumerate(self.parts) for i in idx]
        entries = [self.parts[k][0].entries[i] for k, i in self.index]
        if renumber:
            entries = [replace(e, image_id=n) for n, e in enumerate(entries, 1)]
        super().__init__(name, entries)
        self.kind = self.parts[0][0].kind if self.parts else "generic"

    def image(self, i: int):
        k, j = self.index[i]
        return self.parts[k][0].image(j)


@dataclass
class LoopInputs:
    real: DetectionDataset
    test: DetectionDataset
    base: Scenario
    classes: tuple[str, ...]
    ranges: RealRanges


def open_loop_inputs(real: str, tests: Sequence[str], scenario: str, cfg: LoopConfig,
                     classes: Sequence[str] | None = None, tags: Sequence[Path | None] = ()) -> LoopInputs:
    """Open and check everything a loop needs before anything is trained. Several test sets are
    scored as one (renumbered), each with its own tags (``tags[k]`` for ``tests[k]``)."""
    real_ds = open_dataset(real)
    if len(real_ds) == 0:
        raise InputError(real, None, "no images")
    parts = []
    for k, test in enumerate(tests):
        ds = open_dataset(test, tags=tags[k] if k < len(tags) else None)
        if len(ds) == 0:
            raise InputError(test, None, "no images")
        parts.append((ds, list(range(len(ds)))))
    test_ds = _Images(" + ".join(tests), parts, renumber=True)
    ranges = RealRanges.from_dataset(real_ds)  # the gate's box ranges: every real frame's labels
    real_ds = _Images(f"{real_ds.name} [{cfg.real_images or len(real_ds)} frames]",
                      [(real_ds, evenly_spaced(len(real_ds), cfg.real_images))])
    test_ds = _Images(f"{test_ds.name} [{cfg.test_images or len(test_ds)} frames]",
                      [(test_ds, evenly_spaced(len(test_ds), cfg.test_images))])
    base = load_scenario(scenario)
    from longtail.classes import class_by_id

    labelled = {class_by_id(int(c)).name for e in real_ds.entries for c, crowd in zip(e.labels, e.iscrowd)
                if c >= 0 and not crowd}
    chosen = tuple(classes) if classes else tuple(sorted(labelled))
    if not chosen:
        raise InputError(real, None, "no labelled object to learn")
    return LoopInputs(real_ds, test_ds, base, chosen, ranges)


Log = Callable[[str], None]


def run_loop(real: str, tests: Sequence[str], scenario: str, out: Path, cfg: LoopConfig, *,
             classes: Sequence[str] | None = None, tags: Sequence[Path | None] = (), device: str = "auto",
             log: Log = print, preset: str | None = None, step_progress=None, render_workers: int = 1) -> dict:
    """Run (or resume) every seed of the loop, then write ``results.json``, ``report.md`` and
    ``plots/loop.png``; returns the results."""
    inputs = open_loop_inputs(real, tests, scenario, cfg, classes, tags)
    out = Path(out)
    record = {"format": "longtail-loop", "config": cfg.to_json(), "preset": preset,
              "inputs": {"real": real, "tests": list(tests), "scenario": scenario,
                         "tags": [str(t) if t else None for t in tags]},
              "scenario_digest": inputs.base.digest(), "classes": list(inputs.classes)}
    _open_dir(out, record)
    dev = resolve_device(device)
    spec = ModelSpec(name=cfg.model, classes=inputs.classes, img_size=cfg.img_size,
                     options=box_head_options(cfg.box_head_norm))
    seeds = {}
    for seed in range(cfg.seeds):
        seeds[str(seed)] = _one_seed(inputs, out / f"seed{seed}", cfg, spec, seed, dev, log, step_progress,
                                     render_workers)
    results = {**record, "seeds": seeds, "summary": summarise(seeds, cfg)}
    write_json(out / "results.json", results)
    write_bytes(out / "report.md", report_md(results).encode())
    plot(results, out / "plots" / "loop.png")
    return results


def _open_dir(out: Path, record: dict) -> None:
    """Create ``out`` or resume the same loop there; refuse anything else."""
    path = out / "loop.json"
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError):
            have = None
        same = isinstance(have, dict) and all(have.get(k) == record[k] for k in ("config", "inputs", "classes",
                                                                                  "scenario_digest"))
        if not same:
            raise InputError(str(out), None, "holds another loop (other settings, inputs or scenario); choose a new "
                             "output directory or the same command")
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(str(out), None, "output directory is not empty and holds no loop; choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def _train(run_dir: Path, data: SampledBatches, steps: int, spec: ModelSpec, seed: int, dev, cfg: LoopConfig,
           init: Path | None, step_progress, facts: dict) -> Path:
    model = spec.build(seed)
    if init is not None:
        load_init(model, init)
    res = train(model, data, steps, spec=spec, out_dir=run_dir, seed=seed, device=dev,
                config=TrainConfig(warmup_steps=min(cfg.warmup_steps, max(0, steps - 1)),
                                   checkpoint_every=max(10, steps // 10)),
                resume=(run_dir / "run.json").exists(), progress=step_progress, run_info={"loop": facts})
    return res.checkpoint


def _evaluate(checkpoint: Path, inputs: LoopInputs, cfg: LoopConfig, dev, seed: int) -> dict:
    detections, info = predict_checkpoint(checkpoint, inputs.test, dev)
    metrics = evaluate_detections(inputs.test, detections)
    slices = compute_slices(inputs.test, detections, SliceConfig(min_support=cfg.min_support,
                                                                 bootstrap=cfg.bootstrap, seed=seed))
    return {"step": info["step"], "all": metrics["all"], "by": metrics["by"], "slices": slices,
            "clear_ap50": clear_ap50(inputs.test, detections)}


def clear_images(dataset: DetectionDataset) -> list[int]:
    """The ids of the test images in clear weather: tagged ``weather: clear``, or untagged."""
    return [e.image_id for e in dataset.entries if e.conditions.get("weather", "clear") == "clear"]


def clear_ap50(dataset: DetectionDataset, detections: list[dict]) -> float | None:
    """AP50 of the clear test images (``clear_images``); None without any."""
    ids = clear_images(dataset)
    return coco_metrics(coco_gt(dataset), detections, ids).get("AP50") if ids else None


def render_seed(seed: int, arm: str, rnd: int, batch: int = 0) -> int:
    """The dataset seed of an arm's candidates in a round (``seeding.LOOP_RENDER``); top-up batch
    ``batch`` >= 1 draws from a stream of its own."""
    key = (seed, LOOP_RENDER, ARMS.index(arm), rnd) + ((batch,) if batch else ())
    return int(stream_rng(*key).integers(2**31))


def batch_dir(batch: int) -> str:
    return "render" if batch == 0 else f"render_{batch}"


def gate_batches(verdict: dict) -> list[dict]:
    """Each candidate batch of a round's verdict: its folder (relative to the round) and the frames
    admitted from it (a verdict written before top-up batches existed holds one batch)."""
    return verdict.get("batches") or [{"render": "render", "admitted": verdict["admitted"]}]


def _one_seed(inputs: LoopInputs, root: Path, cfg: LoopConfig, spec: ModelSpec, seed: int, dev, log: Log,
              step_progress, render_workers: int) -> dict:
    def run_eval(d: Path, make_data, steps: int, init: Path | None, facts: dict, tag: str) -> dict:
        if (d / EVAL).is_file():
            log(f"{tag}: done earlier, skipped")
            return json.loads((d / EVAL).read_text())
        data = make_data()
        log(f"{tag}: training {steps} steps on {', '.join(f'{k} ({len(v)})' for k, v in data.datasets.items())}")
        ckpt = _train(d / "run", data, steps, spec, seed, dev, cfg, init, step_progress, facts)
        log(f"{tag}: evaluating on {len(inputs.test)} test images (slices: {cfg.bootstrap} bootstrap resamples)")
        result = {**_evaluate(ckpt, inputs, cfg, dev, seed), **facts}
        slim_checkpoint(ckpt)
        write_json(d / EVAL, result)
        return result

    r0 = run_eval(root / "round0", lambda: SampledBatches.mixed({"real": inputs.real}, {"real": 1.0}, cfg.steps0,
                                                               cfg.batch, seed),
                  cfg.steps0, None, {"round": 0, "arm": "real", "pool": 0}, f"[seed {seed}] round 0")
    tracked = None
    arms: dict[str, list[dict]] = {}
    for arm in ARMS:
        prev_eval, prev_ckpt = r0, root / "round0" / "run" / CHECKPOINT
        pool: list[tuple[DetectionDataset, list[int]]] = []
        hashes: dict | None = None
        rounds = []
        for rnd in range(1, cfg.rounds + 1):
            d = root / arm / f"round{rnd}"
            tag = f"[seed {seed}] {arm} round {rnd}"
            source = root / "round0" / EVAL if rnd == 1 else root / arm / f"round{rnd - 1}" / EVAL
            scenario, plan = _scenario(arm, prev_eval, inputs, cfg, d, source)
            if arm == "targeted" and rnd == 1:
                tracked = [p["slice"] for p in plan if "knob" in p]
            def render(batch: int, d=d, scenario=scenario, tag=tag, arm=arm, rnd=rnd) -> Path:
                log(f"{tag}: rendering {cfg.candidates} candidates of {scenario.name}"
                    + (f" (top-up batch {batch} of at most {TOP_UP_BATCHES})" if batch else ""))
                out = d / batch_dir(batch)
                render_dataset(scenario, out, cfg.candidates, render_seed(seed, arm, rnd, batch), render_workers)
                return out

            verdict = _gate(d, render, inputs, cfg, hashes, plan)
            hashes = verdict["pool"]
            rejections = {k: v for k, v in verdict["rejections"].items() if v}
            log(f"{tag}: gate admitted {verdict['admitted_count']} of {verdict['frames']} candidates checked"
                + (f"; rejected: {', '.join(f'{k} {v}' for k, v in rejections.items())}" if rejections else ""))
            for b in gate_batches(verdict):
                if b["admitted"]:
                    pool.append((open_dataset(str(d / b["render"])), b["admitted"]))
            pool_ds = _Images(f"pool of {arm}", pool)
            real = inputs.real

            def make(pool_ds=pool_ds, real=real) -> SampledBatches:
                if not len(pool_ds):  # nothing admitted yet: the real frames alone
                    return SampledBatches.mixed({"real": real}, {"real": 1.0}, cfg.steps, cfg.batch, seed)
                return SampledBatches.mixed({"real": real, "pool": pool_ds},
                                            {"real": 1 - cfg.pool_share, "pool": cfg.pool_share}, cfg.steps,
                                            cfg.batch, seed)

            result = run_eval(d, make, cfg.steps, prev_ckpt,
                              {"round": rnd, "arm": arm, "pool": len(pool_ds), "scenario": scenario.name,
                               "plan": plan}, tag)
            rounds.append({**_summary(result), "gate": {"candidates": verdict["candidates"],
                                                         "checked": verdict["frames"],
                                                         "admitted": verdict["admitted_count"],
                                                         "rejections": verdict["rejections"]},
                           "plan": plan, "pool": len(pool_ds)})
            prev_eval, prev_ckpt = result, d / "run" / CHECKPOINT
        arms[arm] = rounds
    return {"round0": _summary(r0), "tracked": tracked or [], "arms": arms,
            "tracked_metrics": _tracked(root, cfg, tracked or []), "aimed": _aimed(root, cfg, arms["targeted"])}


def _scenario(arm: str, prev_eval: dict, inputs: LoopInputs, cfg: LoopConfig, d: Path,
              source: Path) -> tuple[Scenario, list]:
    """The round's scenario (written to ``scenario.yaml`` the first time; read back after)."""
    path = d / "scenario.yaml"
    plan_path = d / "plan.json"
    if path.is_file() and plan_path.is_file():
        return load_scenario(str(path)), json.loads(plan_path.read_text())
    if arm == "control":
        scenario, plan = inputs.base, [{"slice": "none", "rank": None, "knob": "the base scenario, untargeted"}]
    else:
        ranked = sorted((SliceRecord.model_validate(s) for s in prev_eval["slices"]["slices"] if s.get("rank")),
                        key=lambda s: s.rank or 0)
        scenario, plan = target_scenario(ranked, inputs.base, cfg.top, set(inputs.classes))
    d.mkdir(parents=True, exist_ok=True)
    write_bytes(path, scenario_yaml(scenario, plan, str(source)).encode()
                if arm == "targeted" else inputs.base.model_dump_json().encode())
    write_json(plan_path, plan)
    return load_scenario(str(path)), plan  # as a resumed run reads it: the same digest either way


def aimed_ranges(ranges: RealRanges, plan: list[dict]) -> RealRanges:
    """The real box ranges, each class's height range widened to hold a pixel-height band the
    round aims at: the weakest slice may lie outside what the real training frames hold (people
    nearer the camera than any in them), and the gate must not refuse what was asked for."""
    bands = [p["range"] for p in plan if "knob" in p and p["slice"].startswith("height_band=") and p.get("range")]
    if not bands:
        return ranges
    classes = {}
    for name, r in ranges.classes.items():
        lo, hi = r.height_px
        for b_lo, b_hi in bands:
            b_lo = b_lo if b_lo is not None else b_hi / 2
            b_hi = b_hi if b_hi is not None else b_lo * 2
            lo, hi = min(lo, b_lo), max(hi, b_hi)
        classes[name] = ClassRange(r.count, (lo, hi), r.aspect)
    return replace(ranges, classes=classes)


def _gate(d: Path, render: Callable[[int], Path], inputs: LoopInputs, cfg: LoopConfig, pool: dict | None,
          plan: list[dict]) -> dict:
    """The round's verdicts (``gate.json``): the gate over the candidates in order, admitting up to
    ``per_round``, its duplicate pool seeded with every sample the arm admitted before; while fewer
    have passed, another batch of candidates (``render(batch)`` renders it and gives its folder),
    at most ``TOP_UP_BATCHES`` more. Once written, the candidates are not read (or re-hashed) again."""
    path = d / GATE
    if path.is_file():
        return json.loads(path.read_text())
    hashes = HashPool.from_json(pool, str(d.parent / "previous round" / GATE)) if pool else HashPool()
    gate = Gate(GATE_CONFIG, aimed_ranges(inputs.ranges, plan), pool=hashes)
    batches: list[dict] = []
    counts: dict[str, int] = {}
    admitted = checked = 0
    for batch in range(1 + TOP_UP_BATCHES):
        if admitted >= cfg.per_round:
            break
        report = gate_dataset(render(batch), gate, limit=cfg.per_round - admitted)
        judged = report.to_json()
        batches.append({"render": batch_dir(batch), "frames": len(report.verdicts), "admitted": report.admitted,
                        "rejected": judged["rejected"]})
        admitted += len(report.admitted)
        checked += len(report.verdicts)
        for reason, n in judged["rejections"].items():
            counts[reason] = counts.get(reason, 0) + n
    verdict = {"batches": batches, "frames": checked, "admitted_count": admitted, "rejections": counts,
               "candidates": cfg.candidates * len(batches), "config": asdict(gate.config), "pool": gate.pool.to_json()}
    write_json(path, verdict)
    return verdict


def _summary(result: dict) -> dict:
    return {"ap50": result["all"].get("AP50"), "clear_ap50": result.get("clear_ap50"), "step": result.get("step"),
            "weakest": [f"{s['key']}={s['value']}" for s in result["slices"]["slices"] if s.get("rank")][:3]}


def _slice_metrics(result: dict, names: Sequence[str]) -> dict:
    by_name = {f"{s['key']}={s['value']}": s for s in result["slices"]["slices"]}
    return {n: {k: by_name[n].get(k) for k in ("ap50", "ap50_ci", "recall", "recall_ci", "metric",
                                               "support_images", "support_objects")}
            for n in names if n in by_name}


def _tracked(root: Path, cfg: LoopConfig, tracked: Sequence[str]) -> dict:
    """The tracked slices' metrics per arm and round (round 0 shared)."""
    r0 = json.loads((root / "round0" / EVAL).read_text())
    out = {}
    for arm in ARMS:
        rows = [{"round": 0, "clear_ap50": r0.get("clear_ap50"), "slices": _slice_metrics(r0, tracked)}]
        for rnd in range(1, cfg.rounds + 1):
            res = json.loads((root / arm / f"round{rnd}" / EVAL).read_text())
            rows.append({"round": rnd, "clear_ap50": res.get("clear_ap50"), "slices": _slice_metrics(res, tracked)})
        out[arm] = rows
    return out


def _aimed(root: Path, cfg: LoopConfig, targeted: list[dict]) -> list[dict]:
    """Per round, the slice the targeted arm aimed at in that round and its metric (AP50 for an
    image slice, recall for an object slice) in both arms after that round: what targeting bought
    where it aimed, round by round (the targeted arm moves on to the next weakest slice)."""
    out = []
    for rnd, row in enumerate(targeted, 1):
        names = [p["slice"] for p in row["plan"] if "knob" in p]
        if not names:
            continue
        entry: dict = {"round": rnd, "slice": names[0]}
        for arm in ARMS:
            res = json.loads((root / arm / f"round{rnd}" / EVAL).read_text())
            m = _slice_metrics(res, names[:1]).get(names[0])
            entry["metric"] = (m or {}).get("metric")
            entry[arm] = None if m is None else m.get(m.get("metric") or "ap50")
        t, c = entry["targeted"], entry["control"]
        entry["gain"] = None if t is None or c is None else t - c
        out.append(entry)
    return out


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def summarise(seeds: dict, cfg: LoopConfig) -> dict:
    """Mean and spread over seeds, per arm and round, of the clear AP50 and of the first tracked
    slice's metric (its AP50 for an image slice, its recall for an object slice), and the
    targeted arm's gain over the control at the last round."""
    out: dict = {"rounds": list(range(cfg.rounds + 1)), "arms": {}}
    for arm in ARMS:
        rows = []
        for rnd in range(cfg.rounds + 1):
            clear, slice_vals, names = [], [], []
            for s in seeds.values():
                row = s["tracked_metrics"][arm][rnd]
                clear.append(row["clear_ap50"])
                if s["tracked"] and s["tracked"][0] in row["slices"]:
                    m = row["slices"][s["tracked"][0]]
                    slice_vals.append(m.get(m.get("metric") or "ap50"))
                    names.append(s["tracked"][0])
            rows.append({"round": rnd, "clear_ap50": _mean_sd(clear), "tracked": _mean_sd(slice_vals),
                         "tracked_slices": sorted(set(names))})
        out["arms"][arm] = rows
    last = cfg.rounds
    gains, gains_ap50 = [], []
    for s in seeds.values():
        if not s["tracked"]:
            continue
        name = s["tracked"][0]
        ms = [s["tracked_metrics"][arm][last]["slices"].get(name) for arm in ARMS]
        if ms[0] is None or ms[1] is None:
            continue
        a, b = (m.get(m.get("metric") or "ap50") for m in ms)
        if a is not None and b is not None:
            gains.append(a - b)
        a, b = (m.get("ap50") for m in ms)  # an object slice is ranked by recall; its AP50 as well
        if a is not None and b is not None:
            gains_ap50.append(a - b)
    out["aimed"] = []
    for rnd in range(1, cfg.rounds + 1):
        rows_r = [a for s in seeds.values() for a in s.get("aimed", []) if a["round"] == rnd]
        gains_r = [a["gain"] for a in rows_r]
        out["aimed"].append({"round": rnd, "slices": sorted({a["slice"] for a in rows_r}), "gain": _mean_sd(gains_r),
                             "metrics": sorted({a["metric"] for a in rows_r if a.get("metric")}),
                             "per_seed": gains_r})
    out["gain_over_control"] = _mean_sd(gains)
    out["gain_per_seed"] = gains
    out["gain_over_control_ap50"] = _mean_sd(gains_ap50)
    out["gain_per_seed_ap50"] = gains_ap50
    clear_drop = []
    for s in seeds.values():
        a, b = s["tracked_metrics"]["targeted"][last]["clear_ap50"], s["tracked_metrics"]["targeted"][0]["clear_ap50"]
        if a is not None and b is not None:
            clear_drop.append(a - b)
    out["clear_change_targeted"] = _mean_sd(clear_drop)
    return out


def _pts(v: tuple[float | None, float | None] | list) -> str:
    m, sd = v
    return "n/a" if m is None else f"{100 * m:.1f} ± {100 * (sd or 0):.1f}"


def _span(values: list[int]) -> str:
    """One number when every seed has it, else the range over seeds."""
    if not values:
        return "0"
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def report_md(results: dict) -> str:
    cfg, summary = results["config"], results["summary"]
    lines = ["# longtail loop", "",
             f"Real: `{results['inputs']['real']}` ({cfg['real_images'] or 'all'} frames); test: "
             f"`{' + '.join(results['inputs']['tests'])}`; base scenario: `{results['inputs']['scenario']}`.",
             f"{cfg['rounds']} rounds of {cfg['per_round']} admitted samples per arm ("
             f"{math.ceil(cfg['per_round'] * cfg['oversample'])} candidates), round 0: {cfg['steps0']} steps on the "
             f"real frames, then {cfg['steps']} fine-tuning steps per round with {cfg['pool_share']:.0%} of each batch "
             f"from the pool; {cfg['seeds']} seed(s). Points are AP50 / recall x 100, mean ± SD over seeds.",
             f"Detector: {cfg['model']}{box_head_words(cfg.get('box_head_norm', 'none'))}.", ""]
    tracked = sorted({t for s in results["seeds"].values() for t in s["tracked"][:1]})
    lines += [f"Tracked slice (aimed at by round 1 of the targeted arm): {', '.join(tracked) or 'none'}", "",
              "| arm | round | tracked slice | clear AP50 | pool | gate rejections |",
              "| --- | --- | --- | --- | --- | --- |"]
    for arm in ARMS:
        for row in summary["arms"][arm]:
            rnd = row["round"]
            pools: list[int] = []
            rej: dict[str, int] = {}
            for s in results["seeds"].values():
                if rnd >= 1:
                    r = s["arms"][arm][rnd - 1]
                    pools.append(r["pool"])
                    for k, v in r["gate"]["rejections"].items():
                        rej[k] = rej.get(k, 0) + v
            rj = ", ".join(f"{k} {v}" for k, v in sorted(rej.items()) if v) or "-"
            lines.append(f"| {arm} | {rnd} | {_pts(row['tracked'])} | {_pts(row['clear_ap50'])} | "
                         f"{_span(pools)} | {rj if rnd else '-'} |")
    g = summary["gain_over_control"]
    lines += ["", f"Targeted minus control on the tracked slice at round {cfg['rounds']}: {_pts(g)} points "
              f"(per seed: {', '.join(f'{100 * v:+.1f}' for v in summary['gain_per_seed']) or 'n/a'}); clear AP50 "
              f"change of the targeted arm since round 0: {_pts(summary['clear_change_targeted'])}."]
    if summary.get("gain_per_seed_ap50") and summary["gain_per_seed_ap50"] != summary["gain_per_seed"]:
        lines += ["", f"The same in AP50 on that slice (for an object slice a lower bound: every unmatched "
                  f"detection counts against it): {_pts(summary['gain_over_control_ap50'])} (per seed: "
                  f"{', '.join(f'{100 * v:+.1f}' for v in summary['gain_per_seed_ap50'])})."]
    lines += ["",
              "![per-round metrics](plots/loop.png)", "",
              "Where each round aimed (the targeted arm moves on to its next weakest slice), targeted minus "
              "control after that round, on that slice:", "",
              "| round | aimed at | targeted - control | per seed |", "| --- | --- | --- | --- |"]
    for a in summary.get("aimed", []):
        per = ", ".join(f"{100 * v:+.1f}" for v in a["per_seed"] if v is not None) or "n/a"
        lines.append(f"| {a['round']} | {', '.join(a['slices'])} ({', '.join(a.get('metrics', []))}) | "
                     f"{_pts(a['gain'])} | {per} |")
    lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for arm, colour in zip(ARMS, ("tab:red", "tab:blue")):
        rows = summary["arms"][arm]
        xs = [r["round"] for r in rows]
        for key, style, label in (("tracked", "-o", "tracked slice"), ("clear_ap50", "--s", "clear AP50")):
            ms = [np.nan if r[key][0] is None else 100 * r[key][0] for r in rows]
            sds = [0 if r[key][1] is None else 100 * r[key][1] for r in rows]
            ax.errorbar(xs, ms, yerr=sds, fmt=style, color=colour, capsize=3, label=f"{arm}: {label}")
    ax.set_xlabel("round")
    ax.set_ylabel("points (AP50, or recall for an object slice)")
    ax.set_xticks(summary["rounds"])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("both arms, per round", fontsize=10)
    # right: where each round aimed, targeted minus control on that slice (mean ± SD, each seed a dot)
    aimed = [a for a in summary.get("aimed", []) if a["per_seed"]]
    for a in aimed:
        vals = [100 * v for v in a["per_seed"] if v is not None]
        if not vals:
            continue
        m, sd = a["gain"]
        ax2.bar(a["round"], 100 * (m or 0.0), yerr=100 * (sd or 0.0), color="tab:red", alpha=0.35, capsize=4)
        ax2.plot([a["round"]] * len(vals), vals, "o", color="tab:red", markersize=4)
    ax2.axhline(0.0, color="k", linewidth=0.8)
    ax2.set_xticks([a["round"] for a in aimed])
    ax2.set_xticklabels([f"{a['round']} ({', '.join(a.get('metrics', [])) or '-'})\n" + "\n".join(a["slices"])
                         for a in aimed], fontsize=7)
    ax2.set_xlabel("round: the slice it aimed at")
    ax2.set_ylabel("targeted - control (points)")
    ax2.set_title("where each round aimed", fontsize=10)
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes(path, buf.getvalue())
