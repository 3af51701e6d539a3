"""train/ models and the training loop: the zoo and its refusals, checkpoints and --init,
reproducible loss curves, resume after an interruption, and a detector that really learns
(overfitting a handful of longtail frames)."""

import sys

import pytest

# PyBullet's EGL plugin (Mesa; test_camera loads it while collecting) and triton, which torch._dynamo
# imports under torchvision, crash the process when triton is imported after it. These tests never
# compile a model: keep triton out unless something imported it already.
sys.modules.setdefault("triton", None)
pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")

import json

import torch

from longtail.errors import InputError
from longtail.labelers.export_base import ExportFilter
from longtail.pipeline import render_dataset
from longtail.train.checkpoint import load_detector, load_init
from longtail.train.datasets import SyntheticDataset
from longtail.train.engine import SampledBatches, TrainConfig, read_metrics, resolve_device, train
from longtail.train.evaluate import evaluate, evaluate_checkpoint
from longtail.train.models import DEFAULT_MODEL, LayerNormBoxHead, ModelSpec, build_model, list_models
from longtail.train.batching import StagedSampler
from longtail.worlds.scenario import load_scenario

SSD = "ssdlite320_mobilenet_v3_large"
SMALL = (96, 160)  # model input (H, W) = the rendered frames, no resizing


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("train") / "fc"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), root, frames=6, seed=4)
    return root


def _one_line(e: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(e.value)
    return str(e.value)


# --- the zoo -------------------------------------------------------------------------------------

def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(InputError) as e:
        build_model("yolov8n", 3)
    msg = _one_line(e)
    assert "'yolov8n'" in msg and DEFAULT_MODEL in msg and SSD in msg and "maskrcnn" not in msg


def test_faster_rcnn_gets_the_faster_settings_and_seeded_weights():
    state = torch.random.get_rng_state()
    a = build_model(DEFAULT_MODEL, 3, img_size=SMALL, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # torch's global generator untouched
    assert a.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert a.rpn._post_nms_top_n["training"] == 500
    assert (a.transform.min_size, a.transform.max_size) == ((96,), 160)
    b, c = build_model(DEFAULT_MODEL, 3, img_size=SMALL, seed=1), build_model(DEFAULT_MODEL, 3, img_size=SMALL, seed=2)
    pa, pb, pc = (next(m.backbone.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert set(list_models()) >= {DEFAULT_MODEL, SSD, "retinanet_resnet50_fpn"}


def test_ssd_takes_the_input_size():
    model = build_model(SSD, 3, img_size=(64, 128), seed=0).eval()
    assert model.transform.fixed_size == (128, 64)
    with torch.no_grad():
        out = model([torch.rand(3, 64, 128)])[0]
    assert out["boxes"].shape[1] == 4 and (out["boxes"][:, 2] <= 128).all() and (out["boxes"][:, 3] <= 64).all()


def test_layer_norm_box_head_keeps_units_firing_and_round_trips():
    spec = ModelSpec(DEFAULT_MODEL, classes=("person",), img_size=SMALL, options={"box_head_norm": "layer"})
    model, plain = spec.build(seed=0), ModelSpec(DEFAULT_MODEL, classes=("person",), img_size=SMALL).build(seed=0)
    head = model.roi_heads.box_head
    assert isinstance(head, LayerNormBoxHead)
    # the same fc6/fc7 and the same initialisation as torchvision's head: only the norms are added
    assert torch.equal(head.fc6.weight, plain.roi_heads.box_head.fc6.weight)
    assert torch.equal(next(model.backbone.parameters()), next(plain.backbone.parameters()))
    # RoI features that push every plain fc6 input below zero (what rendered scenes did) still
    # leave about half of the normalised units firing
    with torch.no_grad():
        for m in (head.fc6, plain.roi_heads.box_head.fc6):
            m.bias.fill_(-100.0)
        x = torch.rand(64, head.fc6.in_features)
        assert torch.relu(plain.roi_heads.box_head.fc6(x)).count_nonzero() == 0  # fc6 silent
        fires = (head.norm6(head.fc6(x)) > 0).float().mean()
    assert 0.3 < fires < 0.7
    # a checkpoint's spec rebuilds the same module names (strict load)
    again = ModelSpec.from_json(json.loads(json.dumps(spec.to_json()))).build()
    again.load_state_dict(model.state_dict())
    for bad, problem in (({"box_head_norm": "batch"}, "expected one of auto, none, layer, got 'batch'"),):
        with pytest.raises(InputError, match=problem):
            ModelSpec(DEFAULT_MODEL, img_size=SMALL, options=bad).build()
    with pytest.raises(InputError, match="no two-layer RoI box head"):
        ModelSpec(SSD, img_size=(64, 64), options={"box_head_norm": "layer"}).build()


def test_init_from_a_checkpoint_file_and_refusals(tmp_path):
    spec = ModelSpec(SSD, classes=("car", "person"), img_size=(64, 64))
    src = spec.build(seed=0)
    torch.save({"model": src.state_dict()}, tmp_path / "ref.pth")  # torchvision reference scripts' layout
    other = ModelSpec(SSD, classes=("car",), img_size=(64, 64)).build(seed=1)
    report = load_init(other, tmp_path / "ref.pth")
    assert report["loaded"] > 100 and report["skipped"]  # the class head has other shapes
    assert all(k.startswith("head.classification_head") for k in report["skipped"])
    assert torch.equal(next(other.backbone.parameters()), next(src.backbone.parameters()))
    (tmp_path / "notes.txt").write_text("not weights")
    for bad, problem in ((tmp_path / "notes.txt", "not a PyTorch checkpoint"),
                         (tmp_path / "missing.pt", "no such checkpoint file")):
        with pytest.raises(InputError) as e:
            load_init(other, bad)
        assert problem in _one_line(e) and str(bad) in str(e.value)
    torch.save({"layer.weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="no weights that fit"):
        load_init(other, tmp_path / "foreign.pt")


def test_init_can_take_only_the_backbone(tmp_path):
    spec = ModelSpec(DEFAULT_MODEL, classes=("person",), img_size=SMALL)
    src, fresh = spec.build(seed=0), spec.build(seed=1)
    torch.save({"model": src.state_dict()}, tmp_path / "base.pt")
    own = {k: v.clone() for k, v in fresh.state_dict().items()}
    report = load_init(fresh, tmp_path / "base.pt", "backbone")
    assert all(not k.startswith("backbone.") for k in report["skipped"]) and report["loaded"] > 100
    after = fresh.state_dict()
    for k, v in after.items():
        want = src.state_dict()[k] if k.startswith("backbone.") else own[k]
        assert torch.equal(v, want), k
    # the heads kept their own start, and it differs from the checkpoint's
    assert not torch.equal(after["rpn.head.conv.0.0.weight"], src.state_dict()["rpn.head.conv.0.0.weight"])
    with pytest.raises(InputError, match="init_parts.*expected one of all, backbone"):
        load_init(fresh, tmp_path / "base.pt", "heads")


def test_cuda_is_refused_when_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


# --- the loop ------------------------------------------------------------------------------------

def _mixed(frames, steps, seed=0):
    """Two sources over the same frames (all objects; a strict filter, so more ignore regions), in
    two stages: a half-half mix for the first half of the steps, then the strict source alone."""
    data = {"plain": SyntheticDataset(frames), "strict": SyntheticDataset(frames, ExportFilter(min_visible_px=20))}
    half = steps // 2
    return SampledBatches(data, StagedSampler({k: len(v) for k, v in data.items()},
                                              [(half, {"plain": 0.5, "strict": 0.5}), (steps - half, {"strict": 1})],
                                              batch=2, seed=seed))


def _run(frames, out, steps=6, seed=0, resume=False, progress=None, total=6):
    spec = ModelSpec(DEFAULT_MODEL, img_size=SMALL)
    return train(spec.build(seed=seed), _mixed(frames, total, seed), steps, spec=spec, out_dir=out, seed=seed,
                 config=TrainConfig(checkpoint_every=2, warmup_steps=2), resume=resume, progress=progress)


def _losses(out):
    return [(m["step"], m["losses"]) for m in read_metrics(out)]


def test_same_seed_gives_the_same_loss_curve(frames, tmp_path):
    a, b = _run(frames, tmp_path / "a", steps=4), _run(frames, tmp_path / "b", steps=4)
    _run(frames, tmp_path / "c", steps=4, seed=1)
    assert [s for s, _ in _losses(tmp_path / "a")] == [1, 2, 3, 4]
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert _losses(tmp_path / "a") != _losses(tmp_path / "c")
    line = read_metrics(tmp_path / "a")[0]
    assert {"step", "loss", "losses", "lr", "images_per_s", "stage", "sources"} <= set(line)
    assert line["lr"] == pytest.approx(0.5e-3) and sum(line["sources"].values()) == 2  # warm-up: 1 of 2 steps
    assert a.last["loss"] == b.last["loss"]


def test_resume_after_an_interruption_equals_the_uninterrupted_run(frames, tmp_path):
    whole = _run(frames, tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def die_at_5(done, total, line):
        if done == 5:  # after the checkpoint at step 4 and metrics line 5: line 5 must be redone
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(frames, tmp_path / "cut", progress=die_at_5)
    assert len(read_metrics(tmp_path / "cut")) == 5
    resumed = _run(frames, tmp_path / "cut", resume=True)
    assert resumed.started_at == 4 and resumed.steps == 6
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")
    lines = read_metrics(tmp_path / "cut")
    assert [m["stage"] for m in lines] == [0, 0, 0, 1, 1, 1]
    assert all(m["sources"] == {"strict": 2} for m in lines[3:])
    a, b = load_detector(whole.checkpoint, "model")[0], load_detector(resumed.checkpoint, "model")[0]
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)
    for k, v in whole.ema.items():
        torch.testing.assert_close(v, resumed.ema[k], rtol=0, atol=0, msg=k)


def test_a_run_directory_is_not_overwritten_or_resumed_with_other_settings(frames, tmp_path):
    _run(frames, tmp_path / "run", steps=2)
    with pytest.raises(InputError) as e:
        _run(frames, tmp_path / "run", steps=2)
    assert "holds a training run; resume it" in _one_line(e)
    with pytest.raises(InputError) as e:
        _run(frames, tmp_path / "run", steps=2, seed=3, resume=True)
    assert "holds another run" in _one_line(e)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        _run(frames, tmp_path / "other", steps=2)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["seed"] == 0


def test_training_learns_to_detect_the_frames_it_saw(frames, tmp_path):
    """300 steps of SSDlite from scratch on six 160x96 frames overfit them: AP50 on those frames
    goes from ~0 to well above 0.5 (objects of >= 12 visible pixels; smaller ones are ignore
    regions, which a 160x96 frame leaves a few pixels in size)."""
    data = SyntheticDataset(frames, ExportFilter(min_visible_px=12))
    assert data.objects >= 12
    spec = ModelSpec(SSD, img_size=SMALL)
    model = spec.build(seed=0)
    before = evaluate(model, data, labels=spec.labels)["all"]["AP50"]
    run = train(model, SampledBatches.single(data, steps=300, batch=4, seed=0), spec=spec, out_dir=tmp_path / "run",
                seed=0, config=TrainConfig(checkpoint_every=100))
    after = evaluate(model, data, labels=spec.labels)
    ema = evaluate_checkpoint(run.checkpoint, data, breakdown=())["all"]["AP50"]
    print(f"\noverfit AP50: untrained {before:.3f}, trained {after['all']['AP50']:.3f}, EMA {ema:.3f}")
    assert before < 0.05
    assert after["all"]["AP50"] > 0.5
    assert after["by"]["time_of_day"]["daytime"]["images"] == 6
    losses = [m["loss"] for m in read_metrics(tmp_path / "run")]
    assert sum(losses[-20:]) < 0.25 * sum(losses[:20])
