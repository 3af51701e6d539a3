"""Weather variants of a saved dataset: a complete new dataset, labels passed through with a
per-object visibility, reproducible bytes, and refusals of bad sources and outputs."""

import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from longtail.atomic import sha256_file, write_json
from longtail.augment import augment_dataset
from longtail.dataset import MANIFEST, Manifest, frame_files
from longtail.errors import DatasetError, ParameterError
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario

SOURCE_FRAMES = 2


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "fallen_cargo"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=SOURCE_FRAMES, seed=4)
    return out


@pytest.fixture(scope="module")
def augmented(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "night_rain"
    summary = augment_dataset(source, out, "night_rain", variants=2, strength=0.8, seed=9)
    return out, summary


def test_output_is_a_complete_dataset_with_valid_checksums(augmented, source):
    out, summary = augmented
    assert summary["frames"] == SOURCE_FRAMES * 2 and summary["variants"] == 2
    m = Manifest.load(out)
    assert m.complete and m.frame_count == SOURCE_FRAMES * 2 and m.seed == 9
    assert m.scenario == Manifest.load(source).scenario
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MANIFEST}
    assert on_disk == set(m.files)
    for rel, sha in m.files.items():
        assert sha256_file(out / rel) == sha, rel
    for j in range(m.frame_count):
        assert set(frame_files(j).values()) <= set(m.files)


def test_labels_pass_through_with_visibility(augmented, source):
    out, _ = augmented
    for j in range(SOURCE_FRAMES * 2):
        i, v = divmod(j, 2)
        src = json.loads((source / frame_files(i)["labels"]).read_text())
        rec = json.loads((out / frame_files(j)["labels"]).read_text())
        assert rec["frame"] == j
        assert rec["attributes"]["augmented"] == {"preset": "night_rain", "strength": 0.8, "variant": v,
                                                  "source_frame": i}
        assert rec["attributes"]["weather"] == "rainy" and rec["attributes"]["time_of_day"] == "night"
        assert rec["attributes"]["visibility_m"] > 0
        assert len(rec["objects"]) == len(src["objects"])
        for a, b in zip(rec["objects"], src["objects"]):
            assert a["bbox"] == b["bbox"] and a["rle"] == b["rle"] and a["occlusion"] == b["occlusion"]
            assert 0.0 <= a["visibility"] <= 1.0
            if a["area"] == 0:
                assert a["visibility"] == 0.0
        for kind in ("depth", "instance", "semantic"):
            assert (out / frame_files(j)[kind]).read_bytes() == (source / frame_files(i)[kind]).read_bytes()
        assert (out / frame_files(j)["rgb"]).read_bytes() != (source / frame_files(i)["rgb"]).read_bytes()
    a, b = (out / frame_files(0)["rgb"]).read_bytes(), (out / frame_files(1)["rgb"]).read_bytes()
    assert a != b, "variants of one frame differ"


def test_coco_loads_with_pycocotools(augmented):
    out, _ = augmented
    coco = COCO(str(out / "coco.json"))
    assert len(coco.getImgIds()) == SOURCE_FRAMES * 2
    assert coco.loadImgs(1)[0]["attributes"]["augmented"]["preset"] == "night_rain"
    assert len(coco.getAnnIds()) > 0


def test_same_seed_same_bytes_other_seed_other_pixels(augmented, source, tmp_path):
    out, _ = augmented
    again = tmp_path / "again"
    augment_dataset(source, again, "night_rain", variants=2, strength=0.8, seed=9)
    assert tree_bytes(again) == tree_bytes(out)
    other = tmp_path / "other"
    augment_dataset(source, other, "night_rain", variants=2, strength=0.8, seed=10)
    assert (other / "rgb/000000.png").read_bytes() != (out / "rgb/000000.png").read_bytes()
    assert (other / "labels/000000.json").read_text() != (out / "labels/000000.json").read_text()


@pytest.mark.parametrize("preset", ["dense_fog", "heavy_snow", "low_sun", "dusk"])
def test_other_presets_tag_their_conditions(source, tmp_path, preset):
    out = tmp_path / preset
    augment_dataset(source, out, preset, strength=0.5, seed=1)
    attrs = json.loads((out / "labels/000000.json").read_text())["attributes"]
    expected = {"dense_fog": ("weather", "foggy"), "heavy_snow": ("weather", "snowy"),
                "dusk": ("time_of_day", "dawn/dusk")}
    if preset in expected:
        key, value = expected[preset]
        assert attrs[key] == value
    if preset == "dense_fog":
        assert attrs["visibility_m"] < 200


def test_refuses_bad_sources_outputs_and_arguments(source, tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        augment_dataset(tmp_path / "nowhere", tmp_path / "o1", "dense_fog")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="manifest"):
        augment_dataset(tmp_path / "empty", tmp_path / "o2", "dense_fog")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        augment_dataset(source, busy, "dense_fog")
    with pytest.raises(KeyError, match="choices"):
        augment_dataset(source, tmp_path / "o3", "pea_soup")
    with pytest.raises(ParameterError, match="strength"):
        augment_dataset(source, tmp_path / "o4", "dense_fog", strength=2.0)
    with pytest.raises(ParameterError, match="variants"):
        augment_dataset(source, tmp_path / "o5", "dense_fog", variants=0)
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 6)), "nothing written on refusal"


def _copy(src: Path, dst: Path) -> Path:
    for rel, data in tree_bytes(src).items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
    return dst


def test_refuses_incomplete_or_corrupt_sources(source, tmp_path):
    incomplete = _copy(source, tmp_path / "incomplete")
    m = json.loads((incomplete / MANIFEST).read_text())
    m["complete"] = False
    write_json(incomplete / MANIFEST, m)
    with pytest.raises(DatasetError, match="incomplete"):
        augment_dataset(incomplete, tmp_path / "o1", "dense_fog")
    missing = _copy(source, tmp_path / "missing")
    (missing / "depth/000001.png").unlink()
    with pytest.raises(DatasetError, match="missing"):
        augment_dataset(missing, tmp_path / "o2", "dense_fog")
    corrupt = _copy(source, tmp_path / "corrupt")
    (corrupt / "rgb/000000.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="checksum"):
        augment_dataset(corrupt, tmp_path / "o3", "dense_fog")
