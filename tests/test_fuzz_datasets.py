"""Any damage to a dataset's files (manifest.json, frame records, coco.json, PNGs), with or without
the manifest's checksum updated to match: `verify` lists findings, `export`, `augment` and `stats`
work or fail in one line (exit 2) and write nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fuzzing import FUZZ, assert_clean, binary, mutate, no_partial_output, run_cli
from longtail.atomic import png_bytes


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "ds"
    rc, _, err = run_cli(["render", "--scenario", "pedestrian_behind_bus", "--frames", "2", "--out", out,
                          "--width", "96", "--height", "64", "--seed", "5", "--quiet"])
    assert rc == 0, err
    return out


PNGS = [png_bytes(np.zeros((64, 96), np.uint16)), png_bytes(np.zeros((64, 96, 3), np.uint8)),
        png_bytes(np.zeros((3, 5), np.uint8)), png_bytes(np.full((64, 96), 7, np.uint8))]


def _damage(root: Path, data: st.DataObject) -> None:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    rel = data.draw(st.sampled_from(files))
    f = root / rel
    if f.suffix == ".json" and data.draw(st.booleans()):
        f.write_text(json.dumps(mutate(json.loads(f.read_text()), data)))
    elif f.suffix == ".png" and data.draw(st.booleans()):
        f.write_bytes(data.draw(st.sampled_from(PNGS)))
    else:
        f.write_bytes(data.draw(binary))
    if rel != "manifest.json" and data.draw(st.booleans()):  # consistent with its manifest: past the checksums
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["files"][rel] = hashlib.sha256(f.read_bytes()).hexdigest()
        (root / "manifest.json").write_text(json.dumps(manifest))


@contextlib.contextmanager
def _damaged_copy(dataset: Path, data) -> Iterator[tuple[Path, Path]]:
    """(a scratch folder, a damaged copy of ``dataset`` in it), removed afterwards."""
    tmp = Path(tempfile.mkdtemp())
    try:
        root = tmp / "ds"
        shutil.copytree(dataset, root)
        _damage(root, data)
        yield tmp, root
    finally:
        shutil.rmtree(tmp)


@FUZZ
@given(st.data())
def test_verify_lists_findings(dataset, data):
    with _damaged_copy(dataset, data) as (tmp, root):
        rc, out, err = run_cli(["verify", root])
        assert_clean(rc, out, err, allowed=(0, 1, 2))
        assert len(out.splitlines()) <= 22, out  # at most 20 findings, a count of the rest, a summary


@FUZZ
@given(st.data(), st.sampled_from(["coco", "kitti", "yolo", "cityscapes"]))
def test_export(dataset, data, fmt):
    with _damaged_copy(dataset, data) as (tmp, root):
        rc, out, err = run_cli(["export", root, "--out", tmp / "exp", "--format", fmt])
        assert_clean(rc, out, err)
        if rc == 2:
            no_partial_output(tmp / "exp")


@FUZZ
@given(st.data())
def test_augment(dataset, data):
    with _damaged_copy(dataset, data) as (tmp, root):
        rc, out, err = run_cli(["augment", root, tmp / "aug", "--preset", "light_fog"])
        assert_clean(rc, out, err)
        if rc == 2:
            no_partial_output(tmp / "aug")
            assert [p.name for p in tmp.iterdir()] == ["ds"], "a scratch directory was left behind"


@FUZZ
@given(st.data())
def test_stats(dataset, data):
    with _damaged_copy(dataset, data) as (tmp, root):
        rc, out, err = run_cli(["stats", root, "--out", tmp / "stats.html"])
        assert_clean(rc, out, err)
        if rc == 2:
            assert not (tmp / "stats.html").exists()


def test_the_undamaged_dataset_passes_everything(dataset, tmp_path):
    assert run_cli(["verify", dataset])[0] == 0
    for fmt in ("coco", "kitti", "yolo", "cityscapes"):
        assert run_cli(["export", dataset, "--out", tmp_path / fmt, "--format", fmt])[0] == 0
    assert run_cli(["augment", dataset, tmp_path / "aug", "--preset", "light_fog"])[0] == 0
    assert run_cli(["stats", dataset, "--out", tmp_path / "s.html"])[0] == 0
