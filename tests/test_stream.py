"""Training from WebDataset shards (`train --data wds:PATH`): the stream order (every frame once an
epoch, a bounded buffer, split across workers and nodes), read by webdataset's own tar reader, the
same samples and loss curve as the folder read in that order, resume from any step, and one-line
refusals of bad shard sets."""

import sys

import pytest

# see tests/test_train.py: keep triton out (PyBullet's EGL plugin and triton crash together)
sys.modules.setdefault("triton", None)
pytest.importorskip("torch", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("torchvision", reason="train/ needs the train extra: pip install -e .[train]")
pytest.importorskip("webdataset", reason="streaming needs webdataset (train extra)")

import json
import shutil
from pathlib import Path

import numpy as np
import torch

import longtail.train.stream as stream_mod
from fuzzing import run_cli
from longtail.errors import InputError
from longtail.labelers.shard_export import export_shards
from longtail.pipeline import render_dataset
from longtail.shards import SHARDS, shard_name, stream_samples, write_shard
from longtail.train.checkpoint import read_checkpoint
from longtail.train.datasets import SyntheticDataset, open_dataset
from longtail.train.engine import read_metrics
from longtail.train.stream import StreamBatches
from longtail.train.stream_order import ShuffleBuffer, StreamOrder, StreamSampler, StreamSpec, shuffled
from longtail.worlds.scenario import load_scenario

FRAMES, SIZE = 8, 3  # three shards: 3, 3 and 2 frames
TRAIN = ["--model", "ssdlite320_mobilenet_v3_large", "--img-size", "96", "96", "--batch", "2", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stream_src") / "ds"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=FRAMES, seed=1)
    return out


@pytest.fixture(scope="module")
def shards(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stream") / "wds"
    export_shards(dataset, out, SIZE)
    return out


def _train(*argv) -> tuple[int, str, str]:
    return run_cli(["train", *argv, *TRAIN])


def _losses(run: Path) -> list[tuple[int, float, dict]]:
    return [(m["step"], m["loss"], m["losses"]) for m in read_metrics(run)]


def _same_curve(a: Path, b: Path) -> None:
    la, lb = _losses(a), _losses(b)
    assert [s for s, _, _ in la] == [s for s, _, _ in lb] and la
    for (_, loss_a, parts_a), (_, loss_b, parts_b) in zip(la, lb):
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and parts_a == pytest.approx(parts_b, rel=1e-5)


@pytest.fixture(scope="module")
def whole(shards, tmp_path_factory) -> Path:
    """Four steps from the shards, uninterrupted (default stream settings: two workers)."""
    run = tmp_path_factory.mktemp("runs") / "whole"
    rc, _, err = _train("--data", f"wds:{shards}", "--steps", "4", "--out", run)
    assert rc == 0, err
    return run


# --- the order -----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers, buffer", [(0, 1), (2, 2), (3, 100)])
def test_every_frame_comes_once_an_epoch_and_the_seed_decides_the_order(workers, buffer):
    orders = [StreamOrder(StreamSpec(FRAMES, SIZE, seed, buffer, workers)) for seed in (5, 6)]
    for order in orders:
        for e in range(3):
            assert sorted(order.epoch(e).tolist()) == list(range(FRAMES))
    assert [orders[0].epoch(e).tolist() for e in range(3)] != [orders[1].epoch(e).tolist() for e in range(3)]
    again = StreamOrder(StreamSpec(FRAMES, SIZE, 5, buffer, workers))
    assert again.take(5, 11) == orders[0].take(5, 11)  # random access, a function of the seed
    if buffer == 1 and workers == 0:  # no room to shuffle: each shard's frames in a row, in a seeded shard order
        for e in range(3):
            shard_order = orders[0].shard_order(e)
            assert orders[0].epoch(e).tolist() == [i for k in shard_order for i in range(k * SIZE, min(k * SIZE + SIZE,
                                                                                                      FRAMES))]


def test_the_shuffle_buffer_holds_at_most_its_size():
    buf: ShuffleBuffer[int] = ShuffleBuffer(4, np.random.default_rng(0))
    out, sizes = [], []
    for item in shuffled(range(50), buf):
        out.append(item)
        sizes.append(len(buf.items))
    assert sorted(out) == list(range(50)) and out != list(range(50))
    assert max(sizes) <= 4 and all(item <= p + 4 for p, item in enumerate(out))  # never from further ahead


def test_nodes_split_the_shards_as_webdataset_does(shards, monkeypatch):
    per_node = [StreamOrder(StreamSpec(FRAMES, SIZE, 7, 2, 2, rank, 2)) for rank in (0, 1)]
    for e in range(3):
        a, b = (set(o.epoch(e).tolist()) for o in per_node)
        assert not a & b and a | b == set(range(FRAMES))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # what wds.split_by_node reads
    data = StreamBatches(shards, steps=4, batch=2, seed=7, buffer=2, workers=0)
    assert (data.spec.rank, data.spec.nodes) == (1, 2)
    for step in range(4):  # load() checks every frame it gets against node 1's schedule
        pairs = data.pairs(step)
        assert [t["image_id"] - 1 for _, t in data.load(pairs)] == [i for _, i in pairs]
    data.close()


# --- the stream ----------------------------------------------------------------------------------

def test_the_stream_reads_through_webdataset_what_the_folder_holds(dataset, shards, monkeypatch):
    expanded: list[str] = []
    real = stream_mod.tar_file_expander

    def spy(sources, *args, **kwargs):
        for sample in real(sources, *args, **kwargs):
            expanded.append(sample.get("__url__", ""))
            yield sample

    monkeypatch.setattr(stream_mod, "tar_file_expander", spy)
    folder = SyntheticDataset(dataset)
    data = StreamBatches(shards, steps=10, batch=2, seed=3, buffer=2, workers=0)  # 20 samples: 2.5 epochs
    for step in range(10):
        pairs = data.pairs(step)
        for (_, i), (image, target) in zip(pairs, data.load(pairs)):
            assert torch.equal(image, folder.image(i))
            want = folder.target(i)
            for key in ("boxes", "labels", "iscrowd", "area"):
                assert torch.equal(target[key], want[key]), key
            assert (target["image_id"], target["conditions"]) == (want["image_id"], want["conditions"])
    data.close()
    assert {Path(u).name for u in expanded if u} == {shard_name(k) for k in range(3)}  # webdataset's tar reader
    sampler = StreamSampler(data.spec, 10, 2)  # the folder drawn in the same order
    assert [sampler.batch(s) for s in range(10)] == [data.pairs(s) for s in range(10)]


def test_weather_on_the_fly_gets_the_depth_the_folder_holds(dataset, shards):
    from longtail.seeding import TRAIN_AUGMENT, stream_rng
    from longtail.train.engine import SampledBatches
    from longtail.train.weather import WeatherAugment

    fx = WeatherAugment(("dense_fog", "dusk"), p=1.0)  # both need each frame's depth and camera
    stream = StreamBatches(shards, steps=3, batch=2, seed=9, buffer=3, workers=0, augment=fx)
    folder = SampledBatches({"data": SyntheticDataset(dataset)}, StreamSampler(stream.spec, 3, 2), {"data": fx})
    for step in range(3):
        a = stream.load(stream.pairs(step), stream_rng(9, step, TRAIN_AUGMENT))
        b = folder.load(folder.pairs(step), stream_rng(9, step, TRAIN_AUGMENT))
        for (image_a, target_a), (image_b, target_b) in zip(a, b):
            assert torch.equal(image_a, image_b) and target_a["conditions"] == target_b["conditions"]
    stream.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stream_restarted_at_any_step_gives_what_the_whole_stream_gave(shards, workers):
    steps = 6  # 12 samples: an epoch and a half, the second epoch resumed mid-way too
    data = StreamBatches(shards, steps=steps, batch=2, seed=11, buffer=2, workers=workers)
    seen = [[t["image_id"] for _, t in data.load(data.pairs(s))] for s in range(steps)]
    data.close()
    for k in range(1, steps):
        again = StreamBatches(shards, steps=steps, batch=2, seed=11, buffer=2, workers=workers)
        position = again.position(k)
        assert position["sample"] == 2 * k and sum(s["given"] for s in position["streams"]) == position["in_epoch"]
        again.seek(k, position)
        assert [[t["image_id"] for _, t in again.load(again.pairs(s))] for s in range(k, steps)] == seen[k:]
        again.close()


# --- training ------------------------------------------------------------------------------------

def test_folder_and_shards_train_the_same_loss_curve(dataset, shards, whole, tmp_path):
    rc, _, err = _train("--data", dataset, "--order", "stream", "--shard-size", SIZE, "--steps", "4",
                        "--out", tmp_path / "folder")
    assert rc == 0, err
    _same_curve(tmp_path / "folder", whole)
    assert all(m["sources"] == {"data": 2} for m in read_metrics(whole))


def test_resume_after_a_kill_continues_the_stream_where_it_stopped(shards, whole, tmp_path):
    run = tmp_path / "cut"
    assert _train("--data", f"wds:{shards}", "--steps", "2", "--out", run)[0] == 0  # killed after step 2
    kept = read_checkpoint(run / "checkpoint.pt")["run"]["data"]
    assert kept["sample"] == 4 and kept["spec"]["workers"] == 2 and len(kept["streams"]) == 2
    rc, out, err = _train("--data", f"wds:{shards}", "--steps", "4", "--out", run, "--resume")
    assert rc == 0 and "4 steps (2 this run)" in out, err
    _same_curve(run, whole)
    rc, _, err = _train("--data", f"wds:{shards}", "--steps", "4", "--out", run, "--resume", "--workers", "0")
    assert rc == 2 and "holds another run (data differs)" in err
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["run"]["data"]["sample"] = 2  # a position the order does not put step 4 at
    torch.save(ckpt, run / "checkpoint.pt")
    rc, _, err = _train("--data", f"wds:{shards}", "--steps", "5", "--out", run, "--resume")
    assert rc == 2 and err.count("\n") == 1 and f"{run / 'checkpoint.pt'}: run.data: the stream stood at sample 2" \
        in err, err
    assert len(read_metrics(run)) == 4


# --- bad input -----------------------------------------------------------------------------------

def _damage_every_shard(root: Path, how: str) -> None:
    for path in sorted(root.glob("shard-*.tar")):
        raw = bytearray(path.read_bytes())
        if how == "garbage":
            raw[:512] = b"\xff" * 512  # the first member's header
            path.write_bytes(bytes(raw))
        elif how == "truncated":
            path.write_bytes(bytes(raw[:700]))  # in the first member's data
        elif how == "edited":  # a valid tar whose bytes differ from the sha256 shards.json lists
            with open(path, "rb") as fh:
                samples = [(key, m | {"json": m["json"] + b" "}) for key, m in stream_samples(fh, str(path))]
            write_shard(path, samples)


@pytest.mark.parametrize("case, file, words", [
    ("no shard set", "nope", "shard set directory not found"),
    ("a folder dataset", SHARDS, "missing: expected a WebDataset shard set"),
    ("shards.json garbage", SHARDS, "not valid JSON"),
    ("shards.json of something else", SHARDS, "format: expected 'longtail-shards'"),
    ("a shard missing", shard_name(1), "missing: shards.json lists it"),
    ("every shard garbage", ".tar", "not a readable tar file"),
    ("every shard truncated", ".tar", "not a readable tar file (unexpected end of data)"),
    ("every shard edited", ".tar", "sha256 differs from the one shards.json lists"),
])
def test_bad_shard_sets_are_refused_in_one_line(dataset, shards, tmp_path, case, file, words):
    root = Path(shutil.copytree(shards, tmp_path / "wds"))
    if case == "no shard set":
        root = tmp_path / "nope"
    elif case == "a folder dataset":
        root = dataset
    elif case == "shards.json garbage":
        (root / SHARDS).write_text("{not json")
    elif case == "shards.json of something else":
        (root / SHARDS).write_text(json.dumps({"format": "coco"}))
    elif case == "a shard missing":
        (root / shard_name(1)).unlink()
    else:
        _damage_every_shard(root, case.split()[-1])
    workers = "2" if case == "every shard garbage" else "0"  # a worker process's failure, passed on
    rc, _, err = _train("--data", f"wds:{root}", "--steps", "1", "--out", tmp_path / "run", "--workers", workers)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and words in lines[0], err
    assert lines[0].startswith(f"longtail: error: {root}") and file in lines[0], err


def test_dry_run_reads_every_shard_and_other_commands_refuse_a_stream(dataset, shards, tmp_path):
    rc, out, err = _train("--data", f"wds:{shards}", "--steps", "1", "--out", tmp_path / "run", "--dry-run")
    assert rc == 0 and f"{FRAMES} images in 3 shards" in out and not (tmp_path / "run").exists(), err
    edited = Path(shutil.copytree(shards, tmp_path / "wds"))
    _damage_every_shard(edited, "edited")
    rc, _, err = _train("--data", str(edited), "--steps", "1", "--out", tmp_path / "run", "--dry-run")  # detected
    assert rc == 2 and "sha256 differs" in err and shard_name(0) in err
    with pytest.raises(InputError, match="streams, in `longtail train --data wds:PATH` only"):
        open_dataset(f"wds:{shards}")  # evaluate and compare read frames by index
    for argv, flag in ((["--data", f"wds:{shards}", "--order", "epochs"], "--order"),
                       (["--data", f"wds:{shards}", "--data", f"wds:{shards}"], "--data"),
                       (["--data", f"wds:{shards}", "--shard-size", "3"], "--shard-size"),
                       (["--data", str(edited), "--shuffle-buffer", "0"], "--shuffle-buffer"),
                       (["--data", str(dataset), "--shuffle-buffer", "4"], "--shuffle-buffer")):
        rc, _, err = _train(*argv, "--steps", "1", "--out", tmp_path / "bad")
        assert rc == 2 and flag in err and err.count("\n") == 1, (argv, err)
