"""``longtail compare`` and what it stands on: weather on the fly (ground-plane depth prior for
real images), weathered test sets, block splits, the report's statistics and verdicts, the
pretrained-weights cache rule, and a complete (tiny) comparison on real PETS frames."""

import math
import json
import shutil
import sys
from dataclasses import replace

sys.modules.setdefault("triton", None)  # torch's triton and PyBullet's EGL plugin crash one process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from longtail.cli import main  # noqa: E402
from longtail.errors import InputError  # noqa: E402
from longtail.pipeline import render_dataset  # noqa: E402
from longtail.train.compare import (  # noqa: E402
    CompareConfig, Inputs, RunKey, arm_batches, block_split, dataset_digest, evenly_spaced, preset_config, run_compare,
    subset,
)
from longtail.train.checkpoint import load_detector  # noqa: E402
from longtail.train.datasets import open_dataset  # noqa: E402
from longtail.train.engine import SampledBatches  # noqa: E402
from longtail.train.models import ModelSpec, cached_backbone_weights, weights_file  # noqa: E402
from longtail.train.report import summarize  # noqa: E402
from longtail.train.sensor import SensorAugment  # noqa: E402
from longtail.train.weather import GroundPrior, Weathered, WeatherAugment  # noqa: E402
from longtail.worlds.plates import ground_depth, load_camera  # noqa: E402
from longtail.worlds.scenario import load_scenario  # noqa: E402
from longtail.worlds.scene import Camera  # noqa: E402


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "campus"
    render_dataset(load_scenario("campus_crossing").with_resolution(192, 144), out, frames=6, seed=3)
    return out


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


# --- weather on the fly -------------------------------------------------------------------------

def test_ground_prior_follows_the_camera_and_scales_with_the_image(tmp_path):
    cam = Camera(width=320, height=240, fx=400.0, fy=400.0, cx=160.0, cy=120.0, position=(0.0, 0.0, 7.0),
                 pitch=0.3)
    (tmp_path / "camera.json").write_text(json.dumps({"format": "longtail-plate", "format_version": 1,
                                                      "camera": cam.model_dump(mode="json"),
                                                      "fit": {"method": "yaml"}}))
    prior = GroundPrior(camera=load_camera(tmp_path))
    depth, spec = prior.for_shape(240, 320)
    ground = ground_depth(cam)
    below = np.isfinite(ground)
    assert np.allclose(depth[below], np.minimum(ground[below], 250.0), rtol=1e-5)
    assert (depth[~below] == 250.0).all()  # at and above the horizon: the far backdrop
    # a person 7 m below a camera pitched 0.3 rad down: the bottom row is the nearest ground
    assert depth[-1].mean() < depth[150].mean() < depth[125].mean()
    half, _ = prior.for_shape(120, 160)  # the same view at half the size
    assert np.allclose(half, depth[::2, ::2], rtol=0.05)
    assert np.allclose(np.asarray(spec.K), cam.K)
    # no camera: a level car camera sees the horizon at the image centre
    level, _ = GroundPrior().for_shape(240, 320)
    assert (level[:119] == 250.0).all() and np.isfinite(level[130:]).all() and level[-1].max() < 20


def test_a_bad_camera_file_is_one_clear_error(tmp_path):
    (tmp_path / "camera.json").write_text(json.dumps({"format": "longtail-plate", "format_version": 1,
                                                      "camera": {"width": 3}, "fit": {"method": "yaml"}}))
    with pytest.raises(InputError) as e:
        load_camera(tmp_path)
    assert "camera.json: camera" in _one_line(e) and "Field required" in str(e.value)


def test_weather_augment_is_reproducible_and_only_touches_its_source(synthetic):
    ds = open_dataset(f"longtail:{synthetic}")
    fx = WeatherAugment(("dense_fog", "night"), p=1.0)
    image = ds.image(0)
    out1, name1 = fx(image, ds.entries[0], np.random.default_rng(5))
    out2, name2 = fx(image, ds.entries[0], np.random.default_rng(5))
    assert name1 == name2 and name1 in ("dense_fog", "night")
    assert torch.equal(out1, out2) and not torch.equal(out1, image) and out1.shape == image.shape
    data = SampledBatches.mixed({"a": ds, "b": ds}, {"a": 0.5, "b": 0.5}, 4, 4, 0, {"a": fx})
    items = data.load(data.pairs(0), np.random.default_rng(1))
    tags = [(name, t["conditions"].get("augment")) for (name, _), (_, t) in zip(data.pairs(0), items)]
    assert all((tag is not None) == (name == "a") for name, tag in tags)
    with pytest.raises(InputError):
        WeatherAugment(("no_such_weather",))
    with pytest.raises(InputError):
        WeatherAugment(("dense_fog",), p=0.0)


def test_run_log_names_each_sources_augment():
    from longtail.train.compare import _describe_sources
    data = SampledBatches({"real": [0] * 4, "synthetic": [0] * 6, "plates": [0] * 2}, None,
                          {"real": WeatherAugment(("dense_fog",)), "synthetic": SensorAugment()})
    assert _describe_sources(data) == ("real (4 images, weather on the fly), synthetic (6 images, camera randomised), "
                                       "plates (2 images)")


def test_sensor_augment_varies_the_camera_reproducibly_and_only_on_rendered_frames(synthetic):
    ds = open_dataset(f"longtail:{synthetic}")
    fx = SensorAugment()
    image = ds.image(0)
    outs = [fx(image, ds.entries[0], np.random.default_rng(s))[0] for s in (1, 1, 2)]
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert all(o.shape == image.shape and o.dtype == torch.uint8 and not torch.equal(o, image) for o in outs)
    # a camera change, not a new picture: the image stays close to the render (normalised correlation)
    a, b = image.float().flatten(), outs[0].float().flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.7
    # the comparison gives every arm's rendered source the randomised camera, and only that source
    inputs = Inputs(real_train=ds, synthetic=ds, plates=ds, tests={}, split=None, prior=GroundPrior(),
                    classes=("person",))
    for arm in ("synthetic", "mixed", "pretrain-finetune", "real+plates", "real"):
        for on in (True, False):
            cfg = CompareConfig(arms=(arm,), steps=4, batch=2, sensor_augment=on)
            data, _ = arm_batches(RunKey(arm, None if arm == "synthetic" else 1.0, 0), inputs, cfg)
            expect = {"synthetic": {"sensor": {"p": 1.0}}} if on and arm != "real" else None
            assert data.describe().get("augment") == expect, (arm, on)
    with pytest.raises(InputError):
        SensorAugment(p=0.0)


def test_weathered_test_set_is_fixed_per_image_and_keeps_the_labels(synthetic):
    ds = open_dataset(f"longtail:{synthetic}")
    fog = Weathered(ds, "dense_fog", 0.8, GroundPrior())
    assert torch.equal(fog.image(1), fog.image(1))
    assert not torch.equal(fog.image(1), ds.image(1))
    assert all(np.array_equal(a.boxes, b.boxes) for a, b in zip(fog.entries, ds.entries))
    assert {e.conditions["weather"] for e in fog.entries} == {"dense_fog"}
    # fog changes far surfaces more than near ones (the recorded depth is used, not the prior)
    clear, foggy = ds.image(1).float().mean(0), fog.image(1).float().mean(0)
    from longtail.depth import read_depth

    depth = read_depth(ds.entries[1].depth)
    finite = np.isfinite(depth)
    near, far = finite & (depth < np.percentile(depth[finite], 20)), finite & (depth > np.percentile(depth[finite], 80))
    change = (foggy - clear).abs().numpy()
    assert change[far].mean() > 2 * change[near].mean()


# --- splits and data ----------------------------------------------------------------------------

def test_block_split_leaves_a_gap_and_keeps_blocks_contiguous():
    sp = block_split(600, 0.3, 10)
    assert sp.train == list(range(410)) and sp.test == list(range(420, 600))
    assert "frames 1-410 train" in sp.describe(600)
    with pytest.raises(InputError):
        block_split(12, 0.5, 10)
    assert evenly_spaced(410, 41)[:3] == [0, 10, 20] and len(evenly_spaced(410, 41)) == 41
    assert evenly_spaced(5, 10) == [0, 1, 2, 3, 4]


def test_the_default_box_head_is_resolved_for_the_model_asked_for():
    from longtail.loop import preset_config as loop_preset

    for make in (preset_config, loop_preset):
        assert make("smoke").box_head_norm == "layer"  # Faster R-CNN: the normalised head
        assert make("smoke", model="ssdlite320_mobilenet_v3_large").box_head_norm == "none"  # no RoI head
        assert make("smoke", box_head_norm="none").box_head_norm == "none"
        assert "box_head_norm" not in make("smoke", box_head_norm="none").to_json()  # older dirs resume
        assert make("smoke").to_json()["box_head_norm"] == "layer"
        with pytest.raises(InputError, match="no two-layer RoI box head"):
            make("smoke", model="ssdlite320_mobilenet_v3_large", box_head_norm="layer")


def test_subsets_and_digests(synthetic):
    ds = open_dataset(f"longtail:{synthetic}")
    sub = subset(ds, [1, 3], "two")
    assert len(sub) == 2 and torch.equal(sub.image(1), ds.image(3))
    assert dataset_digest(ds) == dataset_digest(open_dataset(f"longtail:{synthetic}"))
    assert dataset_digest(sub) != dataset_digest(ds)


# --- report statistics --------------------------------------------------------------------------

def _run(arm, seed, clear, fog, fraction=0.1):
    cell = lambda v: {"AP50": v, "AP": v / 2}  # noqa: E731
    return {"arm": arm, "seed": seed, "fraction": None if arm == "synthetic" else fraction, "real_images": 10,
            "step": 5, "convergence": None,
            "tests": {"t": {"clear": {"all": cell(clear), "by": {}}, "dense_fog@0.5": cell(fog),
                            "dense_fog@0.75": cell(fog / 2)}}}


def test_summary_mpc_rpc_and_verdicts_need_the_seeds():
    cfg = CompareConfig(arms=("real", "synthetic", "mixed"), seeds=3, robustness=("dense_fog",),
                        severities=(0.5, 0.75))
    runs = [_run("real", s, 0.50 + 0.01 * s, 0.20) for s in range(3)]
    runs += [_run("mixed", s, 0.60 + 0.01 * s, 0.21 + 0.02 * (s - 1)) for s in range(3)]
    runs += [_run("synthetic", s, 0.25, 0.10) for s in range(3)]
    summary = summarize(runs, cfg)
    real = summary["tests"]["t"]["0.1"]["real"]
    assert real["mPC"]["mean"] == pytest.approx(0.15)  # mean of 0.20 and 0.10
    assert real["rPC"]["mean"] == pytest.approx(np.mean([0.15 / (0.50 + 0.01 * s) for s in range(3)]))
    assert real["conditions"]["dense_fog"]["mean"] == pytest.approx(0.15)
    texts = {(v["arm"], v["condition"]): v for v in summary["verdicts"]}
    assert texts[("mixed", "clear")]["supported"] is True and "beats real-only on clear by +10.0" in \
        texts[("mixed", "clear")]["text"]
    assert texts[("mixed", "dense_fog")]["supported"] is False  # +0.5 +- 1: within the noise
    assert texts[("synthetic", "clear")]["ratio_to_real"] == pytest.approx(0.25 / 0.51)
    assert "49% of real-only (51.0" in texts[("synthetic", "clear")]["text"]
    above = summarize([_run("real", 0, 0.10, 0.0), _run("synthetic", 0, 0.25, 0.1)],
                      CompareConfig(arms=("real", "synthetic"), robustness=("dense_fog",), severities=(0.5, 0.75)))
    said = {v["condition"]: v["text"] for v in above["verdicts"]}
    assert "more than real-only (10.0" in said["clear"] and "finds next to nothing" in said["dense_fog"]
    one = summarize([r for r in runs if r["seed"] == 0], CompareConfig(arms=("real", "mixed"), seeds=1))
    assert all(v["supported"] is None and "single seed" in v["text"] for v in one["verdicts"])
    alone = summarize([r for r in runs if r["arm"] == "synthetic"], CompareConfig(arms=("synthetic",), seeds=3))
    assert alone["tests"]["t"]["0"]["synthetic"]["conditions"]["clear"]["mean"] == pytest.approx(0.25)
    assert alone["verdicts"] == []  # nothing to compare with, but its table is there


def _swept(run: dict, points: list[tuple[float, float]], clear: float) -> dict:
    from longtail.train.weather import half_point

    curve = [{"value": v, "AP50": a, "AP": a / 2, "images": 4} for v, a in points]
    half, reason = half_point(curve, clear)
    sweep = {"knob": "fog.visibility_m", "unit": "m", "summary": "V50", "clear": {"AP50": clear}, "curve": curve,
             "V50": half, "V50_reason": reason}
    return {**run, "sweeps": {"fog.visibility_m=1000..10:3": {"t": sweep}}}


def test_sweep_summary_gives_each_arms_curve_and_half_point_over_seeds():
    cfg = CompareConfig(arms=("real", "real+weather"), seeds=2, robustness=("dense_fog",),
                        severities=(0.5, 0.75), sweeps=("fog.visibility_m=1000..10:3",))
    runs = [_swept(_run("real", 0, 0.5, 0.2), [(1000, 0.5), (100, 0.2), (10, 0.0)], 0.5),
            _swept(_run("real", 1, 0.6, 0.2), [(1000, 0.6), (100, 0.3), (10, 0.0)], 0.6),
            _swept(_run("real+weather", 0, 0.4, 0.3), [(1000, 0.4), (100, 0.4), (10, 0.3)], 0.4),
            _swept(_run("real+weather", 1, 0.4, 0.3), [(1000, 0.4), (100, 0.3), (10, 0.1)], 0.4)]
    sw = summarize(runs, cfg)["sweeps"]["fog.visibility_m=1000..10:3"]["t"]["0.1"]
    real, weather = sw["arms"]["real"], sw["arms"]["real+weather"]
    assert real["values"] == [1000, 100, 10] and real["AP50"][1]["mean"] == pytest.approx(0.25)
    # seed 0 halves (0.25) between 1000 m (0.5) and 100 m (0.2); seed 1 exactly at 100 m (0.3 = 0.6 / 2)
    v0 = math.exp(math.log(1000) + (0.25 / 0.3) * (math.log(100) - math.log(1000)))
    assert real["half"]["values"] == pytest.approx([v0, 100.0]) and real["half_bounds"] == []
    assert weather["half"]["values"] == [None, pytest.approx(math.exp(math.log(100) + 0.5 * math.log(0.1)))]
    assert weather["half_bounds"] == ["< 10 m"]  # seed 0 never fell to half: its V50 lies beyond the sweep
    from longtail.train.report import _tables

    table = next(body for title, _, body in _tables(summarize(runs, cfg)) if "against fog.visibility_m" in title)
    assert table[1][-1] == "31.6 m (1 of 2 seeds); < 10 m (1 of 2 seeds)"


# --- pretrained weights: local cache only --------------------------------------------------------

def test_pretrained_backbone_only_from_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    with pytest.raises(InputError) as e:
        cached_backbone_weights(name)
    assert "not in the local torch cache" in _one_line(e) and "never downloads" in str(e.value)
    # put a (random) backbone state where the cache keeps it: the model is built from it
    import torchvision

    weight = cached_backbone_weights.__globals__["_backbone_enum"](name).DEFAULT
    path = weights_file(weight)
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    state = torchvision.models.mobilenet_v3_large().state_dict()
    torch.save(state, path)
    spec = ModelSpec(name=name, classes=("person",), options={"weights_backbone": cached_backbone_weights(name)})
    model = spec.build(0)
    first = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    assert torch.equal(model.backbone.body.state_dict()[first.removeprefix("features.")], state[first])


# --- the whole comparison -----------------------------------------------------------------------

def test_a_rerun_may_run_other_arms_but_not_train_them_otherwise():
    from longtail.train.compare import _same_runs

    base = preset_config("smoke", arms=("real", "pretrained+real", "real+inserted"), pretrain_steps=8)
    have = base.to_json()
    assert _same_runs(have, replace(base, arms=("real",)).to_json())  # a subset: its runs are there
    assert _same_runs(have, replace(base, arms=("real", "synthetic")).to_json())  # a new arm
    assert not _same_runs(have, replace(base, arms=("real",), steps=5).to_json())  # every run differs
    # a setting only some arms use matters where both run such an arm
    assert _same_runs(have, replace(base, arms=("real",), pretrain_steps=3).to_json())
    assert not _same_runs(have, replace(base, pretrain_steps=3).to_json())
    assert not _same_runs(have, replace(base, pretrain_parts="backbone").to_json())
    assert not _same_runs(have, replace(base, arms=("real+inserted",), insert_share=0.25).to_json())


@pytest.mark.slow
def test_compare_on_real_pets_frames_writes_a_complete_resumable_report(pets, synthetic, tmp_path, capsys):
    from longtail.train.compare import DEFAULT_ARMS

    cfg = preset_config("smoke", steps=3, batch=2, img_size=(96, 128), test_images=4, gap=5,
                        robustness=("dense_fog", "night"), arms=DEFAULT_ARMS + ("real+inserted",))
    actors = tmp_path / "actors.yaml"
    actors.write_text("name: actors\ndescription: d\nevents:\n  - {asset: pedestrian, count_range: [1, 3], "
                      "region: roadside, distance_m_range: [8, 30], heading_deg_range: [-180, 180]}\n")
    out = tmp_path / "report"
    lines = []
    results = run_compare(f"mot:{pets}", str(synthetic), [], out, cfg, log=lines.append, insert=str(actors))
    assert results["classes"] == ["person"]
    assert "contiguous blocks of the 600 real frames" in results["split"]
    arms = {(r["arm"], r["fraction"]) for r in results["runs"]}
    assert arms == {("real", 0.1), ("synthetic", None), ("mixed", 0.1), ("pretrain-finetune", 0.1),
                    ("real+weather", 0.1), ("real+inserted", 0.1)}
    assert any("real+inserted" in ln and "actors inserted on the fly, weather on the fly" in ln for ln in lines)
    inserted = [json.loads(ln)
                for ln in (out / "runs/real+inserted/real0.1/seed0/metrics.jsonl").read_text().splitlines()]
    assert sum(sum(ln["weather"].values()) for ln in inserted) == 6  # 3 steps of 2 images, weathered or not
    for r in results["runs"]:
        cells = r["tests"]["real held-out"]
        assert set(cells) == {"clear", "dense_fog@0.5", "night@0.5"}
        assert cells["clear"]["all"]["images"] == 4 and cells["night@0.5"]["images"] == 4
        assert r["step"] == 3
    pf = json.loads((out / "runs/pretrain-finetune/real0.1/seed0/metrics.jsonl").read_text().splitlines()[-1])
    assert pf["sources"] == {"real": 2}  # the last step fine-tunes on real frames
    weather = [json.loads(ln)
               for ln in (out / "runs/real+weather/real0.1/seed0/metrics.jsonl").read_text().splitlines()]
    assert all(sum(ln["weather"].values()) == 2 for ln in weather)
    assert {"torch", "torchvision", "longtail"} <= set(results["versions"])
    assert all(len(s["sha256"]) == 64 for s in results["sources"].values())
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "src='http" not in html and "Verdicts" in html
    md = (out / "report.md").read_text()
    assert "| real+weather | 42 |" in md and "contiguous blocks" in md and "![loss_curves.png]" in md
    assert (out / "plots" / "loss_curves.png").stat().st_size > 1000
    # resumable: a rerun trains nothing and writes the same numbers
    lines.clear()
    again = run_compare(f"mot:{pets}", str(synthetic), [], out, cfg, log=lines.append, insert=str(actors))
    assert sum("skipped" in ln for ln in lines) == 6 and again["summary"] == results["summary"]
    # other arms in the same directory: the finished ones are reused and the report is theirs
    lines.clear()
    some = run_compare(f"mot:{pets}", str(synthetic), [], out, replace(cfg, arms=("real", "real+weather")),
                       log=lines.append, insert=str(actors))
    assert sum("skipped" in ln for ln in lines) == 2 and not any("training" in ln for ln in lines)
    assert {r["arm"] for r in some["runs"]} == {"real", "real+weather"}
    assert json.loads((out / "compare.json").read_text())["config"]["arms"] == list(cfg.arms)  # all it holds
    # the same directory with other settings is refused
    with pytest.raises(InputError) as e:
        run_compare(f"mot:{pets}", str(synthetic), [], out, preset_config("smoke", steps=4), log=lines.append)
    assert "other config" in _one_line(e)


@pytest.mark.slow
def test_pretrained_real_fine_tunes_one_shared_synthetic_base_with_real_onlys_steps(pets, synthetic, tmp_path):
    cfg = preset_config("smoke", steps=2, batch=2, img_size=(96, 128), test_images=3, gap=5, seeds=2,
                        robustness=("night",), arms=("real", "pretrained+real", "pretrained+inserted"),
                        pretrain_steps=3)
    actors = tmp_path / "actors.yaml"
    actors.write_text("name: actors\ndescription: d\nevents:\n  - {asset: pedestrian, count_range: [1, 2], "
                      "region: roadside, distance_m_range: [8, 30], heading_deg_range: [-180, 180]}\n")
    out = tmp_path / "report"
    lines = []
    results = run_compare(f"mot:{pets}", str(synthetic), [], out, cfg, log=lines.append, insert=str(actors))
    base = out / "pretrain/synthetic-3steps"
    base_lines = [json.loads(ln) for ln in (base / "metrics.jsonl").read_text().splitlines()]
    assert len(base_lines) == 3 and all(ln["sources"] == {"synthetic": 2} for ln in base_lines)
    assert sum("[base]" in ln and "training 3 steps" in ln for ln in lines) == 1  # once, for both seeds
    assert results["pretrain_base"]["path"] == "pretrain/synthetic-3steps"
    for seed in (0, 1):
        tuned = [json.loads(ln) for ln in
                 (out / f"runs/pretrained+real/real0.1/seed{seed}/metrics.jsonl").read_text().splitlines()]
        real = [json.loads(ln) for ln in (out / f"runs/real/real0.1/seed{seed}/metrics.jsonl").read_text().splitlines()]
        assert len(tuned) == len(real) == 2 and all(ln["sources"] == {"real": 2} for ln in tuned)
        # same seed, same real batches: only the starting weights differ, and they do
        assert tuned[0]["loss"] != pytest.approx(real[0]["loss"], rel=1e-6)
        assert any(f"pretrained+real/real0.1/seed{seed}: training 2 steps from pretrain/synthetic-3steps" in ln
                   for ln in lines)
        # both: the same base, then real frames with actors inserted and weather on the fly
        start = f"pretrained+inserted/real0.1/seed{seed}: training 2 steps from pretrain/synthetic-3steps/checkpoint.pt"
        assert any(f"{start} on real (" in ln and "actors inserted on the fly, weather on the fly" in ln
                   for ln in lines)
        both = [json.loads(ln) for ln in
                (out / f"runs/pretrained+inserted/real0.1/seed{seed}/metrics.jsonl").read_text().splitlines()]
        assert both[0]["loss"] != pytest.approx(tuned[0]["loss"], rel=1e-6)
    report = (out / "report.md").read_text()
    assert "**Budgets:**" in report and "trained once for 3 steps on the synthetic data" in report
    assert "`pretrained+real` and `pretrained+inserted` start from one base detector" in report
    lines.clear()
    run_compare(f"mot:{pets}", str(synthetic), [], out, cfg, log=lines.append, insert=str(actors))
    assert sum("skipped" in ln for ln in lines) == 7  # the base and six runs
    # a robustness curve added to the finished comparison scores the saved checkpoints: no training
    trained = {p: p.read_bytes() for p in out.glob("runs/*/*/*/metrics.jsonl")}
    lines.clear()
    swept = run_compare(f"mot:{pets}", str(synthetic), [], out, replace(cfg, sweeps=("fog.visibility_m=1000..50:3",)),
                        log=lines.append, insert=str(actors))
    assert not any("training" in ln for ln in lines)
    assert sum("scored along fog.visibility_m=1000..50:3" in ln for ln in lines) == 7
    assert {p: p.read_bytes() for p in out.glob("runs/*/*/*/metrics.jsonl")} == trained
    for r in swept["runs"]:
        curve = r["sweeps"]["fog.visibility_m=1000..50:3"]["real held-out"]
        assert [pt["value"] for pt in curve["curve"]] == pytest.approx([1000, 223.6, 50], rel=1e-3)
        assert curve["clear"]["AP50"] == r["tests"]["real held-out"]["clear"]["all"]["AP50"]
    rows = swept["summary"]["sweeps"]["fog.visibility_m=1000..50:3"]["real held-out"]["0.1"]["arms"]
    assert set(rows) == {"real", "pretrained+real", "pretrained+inserted"} and rows["real"]["seeds"] == [0, 1]
    assert json.loads((out / "compare.json").read_text())["sweeps"] == ["fog.visibility_m=1000..50:3"]
    report = (out / "report.md").read_text()
    assert "against fog.visibility_m" in report and "| V50 |" in report and "![sweep0_t0_f0.1.png]" in report
    assert (out / "plots" / "sweep0_t0_f0.1.png").stat().st_size > 1000
    lines.clear()
    run_compare(f"mot:{pets}", str(synthetic), [], out, replace(cfg, sweeps=("fog.visibility_m=1000..50:3",)),
                log=lines.append, insert=str(actors))
    assert not any("scored along" in ln for ln in lines)  # scored once
    # --pretrain-parts backbone: the same base, but only its backbone and FPN are taken (and here
    # --box-head-norm none: every detector of the comparison, the base too, gets torchvision's plain
    # head; the default, auto, gives this Faster R-CNN the normalised one)
    heads = replace(cfg, arms=("pretrained+real",), seeds=1, pretrain_parts="backbone", box_head_norm="none")
    run_compare(f"mot:{pets}", str(synthetic), [], tmp_path / "heads", heads, log=lines.append)
    fresh = [json.loads(ln) for ln in
             (tmp_path / "heads/runs/pretrained+real/real0.1/seed0/metrics.jsonl").read_text().splitlines()]
    whole = [json.loads(ln) for ln in
             (out / "runs/pretrained+real/real0.1/seed0/metrics.jsonl").read_text().splitlines()]
    assert fresh[0]["loss"] != pytest.approx(whole[0]["loss"], rel=1e-6)
    assert json.loads((tmp_path / "heads/compare.json").read_text())["config"]["pretrain_parts"] == "backbone"
    # none is left out of compare.json (comparisons from before the option resume)
    assert "box_head_norm" not in json.loads((tmp_path / "heads/compare.json").read_text())["config"]
    for root, run, head in ((tmp_path / "heads", "pretrain/synthetic-3steps", "TwoMLPHead"),
                            (tmp_path / "heads", "runs/pretrained+real/real0.1/seed0", "TwoMLPHead"),
                            (out, "pretrain/synthetic-3steps", "LayerNormBoxHead"),
                            (out, "runs/pretrained+real/real0.1/seed0", "LayerNormBoxHead")):
        model, spec, _ = load_detector(root / run / "checkpoint.pt")
        assert spec.options == ({} if head == "TwoMLPHead" else {"box_head_norm": "layer"})
        assert type(model.roi_heads.box_head).__name__ == head
    default = json.loads((out / "compare.json").read_text())["config"]
    assert "pretrain_parts" not in default and default["box_head_norm"] == "layer"  # the defaults
    report = (tmp_path / "heads/report.md").read_text()
    assert "`pretrained+real` starts from one base detector" in report and "pretrain-finetune" not in report
    assert "`pretrained+real` takes only the base model's backbone and FPN" in report
    assert "box head" not in report
    assert "with a LayerNorm before each ReLU of its RoI box head (`--box-head-norm layer`)" in \
        (out / "report.md").read_text()


@pytest.mark.slow
def test_seeds_run_apart_merge_into_one_report(pets, tmp_path):
    """--only-seeds: each machine runs some seeds; their runs/ copied together make the joint report."""
    cfg = preset_config("smoke", steps=2, batch=2, img_size=(96, 128), test_images=3, gap=5, seeds=2,
                        robustness=("night",), arms=("real",))
    apart = {}
    for seed in (0, 1):
        out = tmp_path / f"machine{seed}"
        results = run_compare(f"mot:{pets}", None, [], out, replace(cfg, only_seeds=(seed,)), log=lambda _: None)
        assert [r["seed"] for r in results["runs"]] == [seed]
        assert f"seed(s) {seed} of the comparison's 2 (--only-seeds)" in (out / "report.md").read_text()
        assert (out / "plots/loss_curves.png").stat().st_size > 1000  # seed 1's curve where there is no seed 0
        apart[seed] = out
    shutil.copytree(apart[1] / "runs/real/real0.1/seed1", apart[0] / "runs/real/real0.1/seed1")
    lines = []
    joint = run_compare(f"mot:{pets}", None, [], apart[0], cfg, log=lines.append)
    assert sum("skipped" in ln for ln in lines) == 2 and not any("training" in ln for ln in lines)
    assert [r["seed"] for r in joint["runs"]] == [0, 1] and "2 seed(s)" in (apart[0] / "report.md").read_text()
    # a run made apart is the run the joint comparison would have made: the same losses step by step
    together = run_compare(f"mot:{pets}", None, [], tmp_path / "together", cfg, log=lambda _: None)
    assert [r["tests"] for r in together["runs"]] == [r["tests"] for r in joint["runs"]]

    def losses(root, seed):
        return [json.loads(ln)["loss"] for ln in (root / f"runs/real/real0.1/seed{seed}/metrics.jsonl").read_text()
                .splitlines()]
    assert losses(apart[0], 1) == losses(tmp_path / "together", 1) != losses(tmp_path / "together", 0)


@pytest.mark.parametrize("argv, problem", [
    (["--seeds", "2", "--only-seeds", "2"], "seed 2 is not one of 0..1"),
    (["--only-seeds", "first"], "--only-seeds"),
    (["--arms", "real,bogus"], "unknown arm 'bogus'; expected some of real, synthetic"),
    (["--real-fractions", "0.1,2"], "--real-fractions"),
    (["--arms", "real,real+plates"], "--plates"),
    (["--arms", "real,real+inserted"], "--insert"),
    (["--arms", "real,pretrained+real"], "--pretrain-steps"),
    (["--arms", "real,pretrained+inserted"], "--pretrain-steps"),
    (["--arms", "real,pretrained+inserted", "--pretrain-steps", "5"], "--insert"),
    (["--pretrain-steps", "5", "--pretrain-parts", "heads"], "--pretrain-parts: expected one of all, backbone"),
    (["--pretrain-parts", "backbone"], "--pretrain-parts: only the pretrained arms start from a base model"),
    (["--box-head-norm", "batch"], "--box-head-norm: expected one of auto, none, layer, got 'batch'"),
    (["--model", "ssdlite320_mobilenet_v3_large", "--box-head-norm", "layer"], "no two-layer RoI box head"),
    (["--robustness", "smog"], "unknown weather preset 'smog'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--synthetic-share", "1.5"], "--synthetic-share"),
    (["--sweep", "fog.visibility_m=2000..30"], "KNOB=FROM..TO:N"),
    (["--sweep", "fog.visibility_m=2000..30:4", "--sweep", "fog.visibility_m=100..10:3"], "each knob once"),
])
def test_compare_bad_input_is_one_line_and_writes_nothing(synthetic, tmp_path, capsys, argv, problem):
    out = tmp_path / "r"
    code = main(["compare", "--real", f"longtail:{synthetic}", "--synthetic", str(synthetic), "--out", str(out),
                 *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and problem in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_train_with_weather_on_the_fly_and_evaluate_robustness(synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    small = ["--model", "ssdlite320_mobilenet_v3_large", "--img-size", "96", "96", "--batch", "2", "--quiet"]
    assert main(["train", "--data", str(synthetic), "--steps", "2", "--out", str(run), "--augment", "dense_fog,night",
                 "--augment-p", "1", *small]) == 0
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(sum(ln["weather"].values()) == 2 and "clear" not in ln["weather"] for ln in lines)
    assert json.loads((run / "run.json").read_text())["data"]["augment"]["data"]["presets"] == ["dense_fog", "night"]
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoint.pt"), "--data", str(synthetic), "--robustness", "dense_fog,night",
                 "--severities", "0.5,1", "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "dense_fog: AP50 0.5:" in out and "mPC" in out and "rPC" in out
    table = json.loads((tmp_path / "m.json").read_text())["robustness"]
    assert set(table["presets"]) == {"dense_fog", "night"} and set(table["presets"]["night"]) == {"0.5", "1"}
    assert table["presets"]["night"]["1"]["images"] == 6
    assert main(["train", "--data", str(synthetic), "--steps", "2", "--out", str(tmp_path / "r2"), "--augment",
                 "smog", *small]) == 2
    assert "unknown weather preset 'smog'" in capsys.readouterr().err


def test_convergence_reads_the_ap_before_the_loss():
    from longtail.train.compare import convergence

    falling = [{"loss": 2.0 - 0.01 * k} for k in range(100)]
    rising = [{"loss": 1.0 + 0.01 * k} for k in range(100)]
    assert "not detecting" in convergence(falling, 0.01)["verdict"]
    assert "falling" in convergence(falling, 0.4)["verdict"] and convergence(falling, 0.4)["trend"] < 0
    assert "still early" in convergence(rising, 0.4)["verdict"]
    assert convergence(rising[:4], 0.4)["verdict"] == "too few steps to judge"
