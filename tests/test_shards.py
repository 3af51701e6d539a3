"""WebDataset shards (`export --format webdataset`): read back by the webdataset library itself,
byte-identical from the same dataset, resumable, checked by `verify`, counted by `stats`, exported
from, and their per-shard COCO files merged into the dataset's own coco.json."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

import webdataset as wds  # the test extra installs it: the shards are read by the library's own reader

import longtail.labelers.shard_export as shard_export
import longtail.shards as shards_mod
from fuzzing import FUZZ, assert_clean, binary, mutate, run_cli
from longtail.atomic import read_png, sha256_file, write_json
from longtail.dataset import frame_files
from longtail.errors import DatasetError, ParameterError
from longtail.labelers.export import export_dataset
from longtail.labelers.shard_export import export_shards, merge_coco
from longtail.labelers.stats import dataset_stats
from longtail.labelers.verify import verify_dataset
from longtail.pipeline import render_dataset
from longtail.shards import (MEMBER, MEMBERS, PARTIAL, SHARDS, coco_name, load_shard_manifest, shard_name,
                             stream_samples, write_shard)
from longtail.worlds.scenario import load_scenario

FRAMES, SIZE = 7, 3  # three shards: 3, 3, 1 frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards_src") / "ds"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=FRAMES, seed=1)
    return out


@pytest.fixture(scope="module")
def shards(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "wds"
    export_shards(dataset, out, SIZE)
    return out


@pytest.fixture
def copy(shards, tmp_path) -> Path:
    """A private copy of the shard set, to damage or resume."""
    return Path(shutil.copytree(shards, tmp_path / "wds"))


def shard_files(root: Path) -> list[Path]:
    return sorted(root.glob("shard-*.tar"))


def rewrite_shard(root: Path, k: int, edit) -> None:
    """Rewrite shard ``k`` with ``edit(key, members) -> members`` applied to each sample, and record
    its new sha256 in shards.json (so only the checks inside a shard can see the change)."""
    path = root / shard_name(k)
    with open(path, "rb") as fh:
        samples = [(key, edit(key, dict(members))) for key, members in stream_samples(fh, str(path))]
    sha, _ = write_shard(path, samples)
    manifest = json.loads((root / SHARDS).read_text())
    manifest["shards"][k]["sha256"] = sha
    write_json(root / SHARDS, manifest)


# --- what the shards hold ------------------------------------------------------------------------

def test_the_webdataset_library_reads_every_frame_as_the_folder_holds_it(dataset, shards):
    urls = [str(p) for p in shard_files(shards)]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"{i:06d}" for i in range(FRAMES)]
    for i, s in enumerate(samples):
        assert s["__url__"] == urls[i // SIZE]
        assert sorted(k for k in s if not k.startswith("__")) == list(MEMBERS)
        for kind, rel in frame_files(i).items():
            assert s[MEMBER[kind]] == (dataset / rel).read_bytes(), (i, kind)  # copied, not re-encoded
            if rel.endswith(".png"):
                pixels = np.array(Image.open(io.BytesIO(s[MEMBER[kind]])))
                np.testing.assert_array_equal(pixels, read_png(dataset / rel))
        assert json.loads(s["json"]) == json.loads((dataset / frame_files(i)["labels"]).read_text())


def test_seven_frames_in_shards_of_three_make_three_shards_of_3_3_1(shards):
    m = load_shard_manifest(shards)
    assert [e.name for e in m.shards] == [shard_name(k) for k in range(3)]
    assert [e.samples for e in m.shards] == [3, 3, 1]
    assert (m.source.frame_count, m.source.seed, m.source.scenario["name"]) == (FRAMES, 1, "fallen_cargo")
    for e, path in zip(m.shards, shard_files(shards)):
        assert sha256_file(path) == e.sha256
        with tarfile.open(path) as tf:
            names = tf.getnames()
            assert len(names) == e.samples * len(MEMBERS)
            assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in tf.getmembers()} == {(0, 0, 0, "", "",
                                                                                                  0o444)}
    assert not (shards / PARTIAL).exists()


def test_the_same_dataset_gives_byte_identical_shards(dataset, shards, tmp_path):
    export_shards(dataset, tmp_path / "again", SIZE)
    names = sorted(p.name for p in shards.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    for name in names:
        assert (shards / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_webdataset_tar_writer_with_the_same_fixed_fields_writes_the_same_bytes(shards):
    """The shards are what webdataset's own writer makes when its free fields are pinned."""
    path = shard_files(shards)[-1]
    buf = io.BytesIO()
    writer = wds.TarWriter(buf, user="", group="", mode=0o444, mtime=0, encoder=False)
    with open(path, "rb") as fh:
        for key, members in stream_samples(fh, str(path)):
            writer.write({"__key__": key, **members})
    writer.tarstream.close()
    assert buf.getvalue() == path.read_bytes()


def test_export_streams_a_frame_at_a_time(dataset, tmp_path, monkeypatch):
    """Memory stays flat: a frame's files are read only once the frame before is in the tar."""
    log: list[tuple[str, str]] = []
    read, info = shard_export._read_checked, shards_mod.tar_info
    monkeypatch.setattr(shard_export, "_read_checked", lambda root, rel, sha: log.append(("read", Path(rel).stem))
                        or read(root, rel, sha))
    monkeypatch.setattr(shards_mod, "tar_info", lambda name, size: log.append(("tar", name[:6])) or info(name, size))
    export_shards(dataset, tmp_path / "wds", FRAMES)
    frames = [f"{i:06d}" for i in range(FRAMES)]
    assert log == [(op, key) for key in frames for op in ["read"] * 5 + ["tar"] * 5]


# --- verify, stats, export, merged COCO ----------------------------------------------------------

def test_verify_passes_a_sound_shard_set(shards):
    assert verify_dataset(shards) == []
    rc, out, _ = run_cli(["verify", shards])
    assert (rc, out.strip()) == (0, f"{shards}: OK")


def test_verify_reports_a_flipped_byte_in_a_shard(copy):
    path = copy / shard_name(1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rc, out, _ = run_cli(["verify", copy])
    assert rc == 1
    assert f"{copy}/{shard_name(1)}: sha256 mismatch" in out, out


def test_verify_reports_a_missing_member(copy):
    rewrite_shard(copy, 0, lambda key, m: {s: b for s, b in m.items() if not (key == "000001" and s == "depth.png")})
    findings = verify_dataset(copy)
    assert [str(f) for f in findings] == [f"{shard_name(0)}/000001.depth.png: missing"]
    assert run_cli(["verify", copy])[0] == 1


def test_verify_runs_the_per_frame_label_checks_inside_shards(copy):
    def shift_box(key, members):
        if key == "000004":
            record = json.loads(members["json"])
            obj = next(o for o in record["objects"] if o["area"] > 0)
            obj["bbox"][0] += 1
            members["json"] = json.dumps(record).encode()
        return members
    rewrite_shard(copy, 1, shift_box)
    problems = [str(f) for f in verify_dataset(copy)]
    assert any(p.startswith(f"{shard_name(1)}/000004.json: object ") and "is not the tight box" in p
               for p in problems), problems
    # the shard's COCO file no longer agrees with the record either
    assert any(p.startswith(f"{coco_name(1)}: annotation") for p in problems), problems


def test_verify_reports_an_unfinished_export(copy):
    os.replace(copy / SHARDS, copy / PARTIAL)
    findings = verify_dataset(copy)
    assert len(findings) == 1 and findings[0].path == SHARDS and "did not finish" in findings[0].problem


def test_stats_are_those_of_the_folder_dataset(dataset, shards):
    assert dataset_stats(shards) == dataset_stats(dataset)
    rc, out, err = run_cli(["stats", shards, "--out", shards.parent / "stats.html"])
    assert rc == 0, err


@pytest.mark.parametrize("fmt", ["coco", "kitti", "yolo", "cityscapes"])
def test_export_from_shards_equals_export_from_the_folder(dataset, shards, tmp_path, fmt):
    trees = []
    for name, src in (("a", dataset), ("b", shards)):
        out = tmp_path / name
        export_dataset(src, out, fmt)
        trees.append({p.relative_to(out).as_posix(): p.read_bytes().replace(str(out).encode(), b"OUT")
                      for p in sorted(out.rglob("*")) if p.is_file() and p.name != "longtail_export.json"})
    assert trees[0] == trees[1]


def test_merged_shard_coco_is_the_datasets_coco_json(dataset, shards, tmp_path):
    res = merge_coco(shards, tmp_path / "merged.json")
    assert (tmp_path / "merged.json").read_bytes() == (dataset / "coco.json").read_bytes()
    coco = json.loads((dataset / "coco.json").read_text())
    assert (res["images"], res["annotations"]) == (len(coco["images"]), len(coco["annotations"]))
    # each shard's own file numbers its annotations from 1: the merge renumbers them
    first = json.loads((shards / "shard-000001.coco.json").read_text())
    assert first["annotations"][0]["id"] == 1 and first["images"][0]["id"] == SIZE + 1


def test_merge_renumbers_ids_consistently(shards, tmp_path):
    """Per-shard ids need not be 1..n: merged images and annotations are numbered in order, and
    every annotation keeps its image."""
    root = Path(shutil.copytree(shards, tmp_path / "wds"))
    manifest = json.loads((root / SHARDS).read_text())
    for k, entry in enumerate(manifest["shards"]):
        coco = json.loads((root / entry["coco"]).read_text())
        for im in coco["images"]:
            im["id"] = 1000 * (k + 1) - im["id"]
        for a in coco["annotations"]:
            a["image_id"] = 1000 * (k + 1) - a["image_id"]
            a["id"] += 77
        entry["coco_sha256"] = write_json(root / entry["coco"], coco)
    write_json(root / SHARDS, manifest)
    merge_coco(root, tmp_path / "a.json")
    merge_coco(shards, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


# --- resume --------------------------------------------------------------------------------------

def test_rerun_after_losing_a_shard_rewrites_only_that_shard(dataset, shards, copy):
    (copy / shard_name(1)).unlink()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in copy.iterdir()
              if p.name not in (SHARDS, coco_name(1))}  # the lost shard's COCO file is written with it
    res = export_shards(dataset, copy, SIZE)
    assert (res["written"], res["reused"]) == (1, 2)
    for name, stat in before.items():
        p = copy / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stat, f"{name} was rewritten"
    for p in shards.iterdir():
        assert (copy / p.name).read_bytes() == p.read_bytes(), p.name


def test_an_interrupted_export_resumes(dataset, shards, tmp_path, monkeypatch):
    out = tmp_path / "wds"
    real = shard_export._write_one

    def dies_at_the_last_shard(root, out_, manifest, want, k, description):
        if k == 2:
            raise KeyboardInterrupt
        return real(root, out_, manifest, want, k, description)

    monkeypatch.setattr(shard_export, "_write_one", dies_at_the_last_shard)
    with pytest.raises(KeyboardInterrupt):
        export_shards(dataset, out, SIZE)
    assert not (out / SHARDS).exists()
    assert len(load_shard_manifest(out, partial=True).shards) == 2
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no torn temporary file
    monkeypatch.setattr(shard_export, "_write_one", real)
    rc, out_text, err = run_cli(["export", dataset, "--format", "webdataset", "--out", out, "--shard-size", SIZE])
    assert rc == 0 and "1 written, 2 already done" in out_text, (out_text, err)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in shards.iterdir())
    for p in shards.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


# --- refusals ------------------------------------------------------------------------------------

def refused(argv: list, words: str) -> None:
    """The command exits 2 with one line on stderr (ours, or argparse's for a bad flag value)."""
    rc, stdout, err = run_cli(argv)
    assert (rc, stdout) == (2, ""), (rc, stdout, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and words in err, err
    assert err.startswith(("longtail: error: ", "longtail export: error: ")), err


def test_refusals_are_one_line_and_write_nothing(dataset, shards, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    refused(["export", tmp_path / "empty", "--format", "webdataset", "--out", out], "manifest.json")
    refused(["export", dataset, "--format", "webdataset", "--out", out, "--shard-size", "0"],
            "expected a positive integer")
    refused(["export", shards, "--format", "webdataset", "--out", out], "is a shard set already")
    refused(["export", dataset, "--format", "webdataset", "--out", out, "--classes", "car"], "--classes")
    refused(["export", dataset, "--format", "coco", "--out", out, "--shard-size", "2"], "--shard-size")
    assert not out.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused(["export", dataset, "--format", "webdataset", "--out", other], "holds no longtail shards")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    before = {p.name: p.read_bytes() for p in shards.iterdir()}
    refused(["export", dataset, "--format", "webdataset", "--out", shards, "--shard-size", "2"],
            "holds shards of 3 frames, not 2")
    assert {p.name: p.read_bytes() for p in shards.iterdir()} == before


def test_library_refuses_a_bad_shard_size(dataset, tmp_path):
    with pytest.raises(ParameterError, match="shard_size"):
        export_shards(dataset, tmp_path / "x", 0)
    assert not (tmp_path / "x").exists()


# --- any shards.json ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_manifest(shards) -> dict:
    """shards.json with the scenario cut to its name: mutations land on the fields the reader checks."""
    doc = json.loads((shards / SHARDS).read_text())
    doc["source"]["scenario"] = {"name": doc["source"]["scenario"]["name"]}
    return doc


@FUZZ
@given(st.data())
def test_any_shard_manifest_reads_as_a_value_or_one_dataset_error(small_manifest, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz_manifest")
    raw = json.dumps(mutate(small_manifest, data)).encode() if data.draw(st.booleans()) else data.draw(binary)
    (root / SHARDS).write_bytes(raw)
    try:
        m = load_shard_manifest(root)
    except DatasetError as e:
        assert "\n" not in str(e) and str(e).startswith(str(root / SHARDS)), str(e)
    else:
        assert len(m.shards) == m.shard_count


@FUZZ
@given(st.data(), st.sampled_from(["verify", "stats", "coco", "resume"]))
def test_commands_over_any_shard_manifest_fail_cleanly(shards, dataset, small_manifest, tmp_path_factory, data, cmd):
    tmp = tmp_path_factory.mktemp("fuzz_cli")
    root = Path(shutil.copytree(shards, tmp / "wds"))
    raw = json.dumps(mutate(small_manifest, data)).encode() if data.draw(st.booleans()) else data.draw(binary)
    (root / SHARDS).write_bytes(raw)
    argv = {"verify": ["verify", root], "stats": ["stats", root, "--out", tmp / "s.html"],
            "coco": ["export", root, "--format", "coco", "--out", tmp / "coco"],
            "resume": ["export", dataset, "--format", "webdataset", "--out", root, "--shard-size", SIZE]}[cmd]
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, allowed=(0, 1, 2) if cmd == "verify" else (0, 2))
    if rc == 2 and cmd == "coco":
        assert not (tmp / "coco").exists()
    shutil.rmtree(tmp)
