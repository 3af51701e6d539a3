"""`longtail train` and `longtail evaluate` from the command line: a run, its resume, its
evaluation, and one-line refusals."""

import json

import pytest

pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")

from longtail.cli import main  # noqa: E402
from longtail.pipeline import render_dataset  # noqa: E402
from longtail.train.checkpoint import load_detector  # noqa: E402
from longtail.worlds.scenario import load_scenario  # noqa: E402

TRAIN = ["--model", "ssdlite320_mobilenet_v3_large", "--batch", "2", "--img-size", "96", "160", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "d"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, 3, 4)
    return out


def test_train_resume_and_evaluate(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--steps", "2", "--out", str(run), *TRAIN]) == 0
    assert "2 steps (2 this run)" in capsys.readouterr().out
    assert main(["train", "--data", str(data), "--steps", "3", "--out", str(run), "--resume", *TRAIN]) == 0
    assert "3 steps (1 this run)" in capsys.readouterr().out
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert main(["evaluate", str(run / "checkpoint.pt"), "--data", str(data), "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "AP50" in out and "scenario=fallen_cargo" in out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["all"]["images"] == 3 and result["step"] == 3
    # a new run that takes only the backbone of this one; the run records what it took
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(data), "--steps", "1", "--out", str(tuned), "--init",
                 str(run / "checkpoint.pt"), "--init-parts", "backbone", *TRAIN]) == 0
    info = json.loads((tuned / "run.json").read_text())
    assert json.dumps(info).count('"init_parts": "backbone"') == 1
    # Faster R-CNN gets the normalised RoI box head by default (auto); the checkpoint rebuilds it
    frcnn = ["--data", str(data), "--steps", "1", "--batch", "2", "--img-size", "96", "160", "--quiet"]
    normed, plain = tmp_path / "normed", tmp_path / "plain"
    assert main(["train", *frcnn, "--out", str(normed)]) == 0
    model, spec, _ = load_detector(normed / "checkpoint.pt")
    assert spec.options == {"box_head_norm": "layer"} and type(model.roi_heads.box_head).__name__ == "LayerNormBoxHead"
    assert main(["train", *frcnn, "--out", str(plain), "--box-head-norm", "none"]) == 0
    model, spec, _ = load_detector(plain / "checkpoint.pt")
    assert spec.options == {} and type(model.roi_heads.box_head).__name__ == "TwoMLPHead"
    # fine-tuning a base (--init) keeps the base's head unless told otherwise
    for base, told, options in ((plain, [], {}), (normed, [], {"box_head_norm": "layer"}),
                                (plain, ["--box-head-norm", "layer"], {"box_head_norm": "layer"})):
        tuned = tmp_path / f"from_{base.name}{len(told)}"
        assert main(["train", *frcnn, *told, "--out", str(tuned), "--init", str(base / "checkpoint.pt")]) == 0
        assert load_detector(tuned / "checkpoint.pt")[1].options == options


def test_mixed_data_and_bad_input(data, tmp_path, capsys):
    run = tmp_path / "mix"
    assert main(["train", "--data", f"a=longtail:{data}", "--data", f"b=longtail:{data}", "--mix", "a=0.75,b=0.25",
                 "--steps", "1", "--out", str(run), *TRAIN]) == 0
    capsys.readouterr()
    for argv, words in [
        (["--data", str(data), "--model", "nosuch"], "unknown model 'nosuch'"),
        (["--data", str(tmp_path)], str(tmp_path)),
        (["--data", f"a=longtail:{data}", "--data", f"b=longtail:{data}", "--mix", "a=-1,b=2"], "--mix"),
        (["--data", str(data), "--init-parts", "backbone"], "--init-parts: needs --init"),
        (["--data", str(data), "--box-head-norm", "group"], "--box-head-norm: expected one of auto, none, layer"),
        (["--data", str(data), "--box-head-norm", "layer", "--model", "ssdlite320_mobilenet_v3_large"],
         "no two-layer RoI box head"),
    ]:
        rc = main(["train", *argv, "--steps", "1", "--out", str(tmp_path / "bad"), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and words in err and "\n" not in err, err
        assert not (tmp_path / "bad").exists()
    (tmp_path / "not.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(tmp_path / "not.pt"), "--data", str(data)]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
