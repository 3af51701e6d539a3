"""Test-time adaptation along a sequence (``longtail evaluate --adapt bn``): batch-norm statistics
follow the frames, momentum 0 is exactly no adaptation, frozen batch norm becomes adaptable on a
copy, and the CLI scores a fog-ramped real sequence per visibility band next to the plain numbers."""

from __future__ import annotations

import json
import sys

sys.modules.setdefault("triton", None)  # torch's triton and PyBullet's EGL plugin crash one process

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

from longtail.augment_ramp import ramp_dataset  # noqa: E402
from longtail.cli import main  # noqa: E402
from longtail.conditions import band_rank, visibility_band  # noqa: E402
from longtail.errors import ParameterError  # noqa: E402
from longtail.train.adapt import BatchNormAdapter, adaptable, predict_adapted  # noqa: E402
from longtail.train.checkpoint import load_detector  # noqa: E402
from longtail.train.datasets import open_dataset  # noqa: E402
from longtail.train.entries import categorical  # noqa: E402
from longtail.train.evaluate import predict  # noqa: E402
from test_augment_ramp import make_mot  # noqa: E402

SMALL = ["--model", "ssdlite320_mobilenet_v3_large", "--img-size", "96", "96", "--batch", "2", "--quiet"]


@pytest.fixture(scope="module")
def ramped(tmp_path_factory):
    """A tiny real-style MOT sequence under fog thickening from 1500 to 30 m, and a detector
    trained two steps on the clear frames (from scratch: ordinary batch norm)."""
    root = tmp_path_factory.mktemp("adapt")
    seq = make_mot(root / "TINY", frames=8)
    fog = root / "TINY-fog"
    ramp_dataset(seq, fog, "fog.visibility_m=1500..30", seed=0)
    run = root / "run"
    assert main(["train", "--data", f"mot:{seq}", "--steps", "2", "--out", str(run), *SMALL]) == 0
    return seq, fog, run / "checkpoint.pt"


def _state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_momentum_zero_is_exactly_no_adaptation_and_the_model_is_never_changed(ramped):
    _, fog, ckpt = ramped
    model, spec, _ = load_detector(ckpt)
    data = open_dataset(f"mot:{fog}")
    before = _state(model)
    assert predict_adapted(model, data, spec.labels, momentum=0.0) == predict(model, data, spec.labels, batch=1)
    adapted = predict_adapted(model, data, spec.labels, momentum=0.5)
    assert adapted != predict(model, data, spec.labels, batch=1)  # the statistics moved, and the detections
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_statistics_move_to_each_frame_by_the_momentum(ramped):
    _, fog, ckpt = ramped
    model, _, _ = load_detector(ckpt)
    image = open_dataset(f"mot:{fog}").image(7).float().div_(255)
    for momentum in (1.0, 0.25):
        adapter = BatchNormAdapter(model, momentum)
        first = adapter.norms[0]
        start = first.running_mean.clone()
        seen = []
        hook = first.register_forward_hook(lambda m, inp, out: seen.append((m.training, inp[0].detach())))
        adapter(image)
        hook.remove()
        (training, x), (predicting, _) = seen  # the statistics pass, then the prediction with them
        assert training and not predicting and not first.training
        frame_mean = x.mean(dim=(0, 2, 3))
        assert torch.allclose(first.running_mean, (1 - momentum) * start + momentum * frame_mean, atol=1e-5)


def test_frozen_batch_norm_becomes_adaptable_on_a_copy():
    frozen = FrozenBatchNorm2d(3)
    frozen.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
    frozen.running_var.copy_(torch.tensor([1.5, 0.5, 2.0]))
    frozen.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    net = nn.Sequential(nn.Conv2d(3, 3, 1), frozen)
    copy, norms = adaptable(net)
    assert isinstance(net[1], FrozenBatchNorm2d)  # the original is untouched
    assert len(norms) == 1 and isinstance(copy[1], nn.BatchNorm2d)
    x = torch.randn(1, 3, 5, 5)
    assert torch.allclose(copy.eval()(x), net.eval()(x), atol=1e-5)  # same function before any frame
    with pytest.raises(ParameterError, match="no batch-norm layer"):
        BatchNormAdapter(nn.Sequential(nn.Conv2d(3, 3, 1)))
    with pytest.raises(ParameterError, match="momentum"):
        BatchNormAdapter(net, momentum=1.5)


def test_evaluate_adapt_scores_the_ramp_per_visibility_band(ramped, tmp_path, capsys):
    _, fog, ckpt = ramped
    out = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--data", f"mot:{fog}", "--tags", str(fog / "conditions.json"),
                 "--adapt", "bn", "--adapt-momentum", "0.2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "adapted (bn, momentum 0.2, 8 frames in order)" in printed
    res = json.loads(out.read_text())
    bands = list(res["by"]["visibility_band"])
    assert {">=1000 m", "<50 m"} <= set(bands)  # the plain numbers break down by the ramp's tags ...
    assert set(res["adapted"]["by"]["visibility_band"]) == set(bands)  # ... and so do the adapted ones
    plain, adapted = printed.split("adapted (bn")
    for text in (plain, adapted):  # printed from the clearest band to the thickest fog
        shown = [ln.split("visibility_band=")[1].split(":")[0] for ln in text.splitlines() if "visibility_band=" in ln]
        assert shown == sorted(bands, key=band_rank)
    assert res["adapted"]["adapt"] == {"method": "bn", "momentum": 0.2, "images": 8,
                                       "order": "dataset order, statistics carried from frame to frame"}
    assert res["adapted"]["all"]["images"] == res["all"]["images"] == 8


@pytest.mark.parametrize("extra, problem", [
    (["--adapt", "bn", "--sweep", "fog.visibility_m=1000..30:3"], "--adapt"),
    (["--adapt", "bn", "--robustness", "dense_fog"], "--adapt"),
    (["--adapt", "bn", "--adapt-momentum", "2"], "--adapt-momentum"),
])
def test_evaluate_adapt_refuses_in_one_line(ramped, capsys, extra, problem):
    _, fog, ckpt = ramped
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--data", f"mot:{fog}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1


def test_visibility_bands_and_the_records_that_get_one():
    assert [visibility_band(v) for v in (None, 5000, 1000, 999.9, 500, 200, 150, 100, 50, 49.9, 1)] == [
        None, ">=1000 m", ">=1000 m", "500-1000 m", "500-1000 m", "200-500 m", "100-200 m", "100-200 m",
        "50-100 m", "<50 m", "<50 m"]
    assert [band_rank(b) for b in (">=1000 m", "500-1000 m", "<50 m", "other")] == [0, 1, 5, 6]
    assert categorical({"weather": "foggy", "visibility_m": 180.0, "hour": 7.5}) == {
        "weather": "foggy", "visibility_band": "100-200 m"}  # numbers make no cell, visibility its band
    assert categorical({"weather": "clear", "visibility_m": None}) == {"weather": "clear"}
