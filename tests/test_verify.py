"""`verify_dataset`: a clean dataset passes; each kind of damage gives a finding that names the file."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from longtail.atomic import read_png, sha256_file, write_json, write_png
from longtail.dataset import MANIFEST, frame_files
from longtail.labelers.verify import Finding, verify_dataset
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "ds"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=3, seed=4)
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    """A private copy of the dataset, to damage."""
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def refresh_sha(root: Path, rel: str) -> None:
    """Record ``rel``'s current checksum in the manifest, so only deeper checks can see a change."""
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["files"][rel] = sha256_file(root / rel)
    write_json(root / MANIFEST, manifest)


def first_visible(root: Path, width: int = 160) -> tuple[int, dict]:
    """(frame, object) of the first visible object whose box does not touch the right edge."""
    for i in range(3):
        for obj in json.loads((root / frame_files(i)["labels"]).read_text())["objects"]:
            if obj["area"] > 0 and obj["bbox"][2] < width:
                return i, obj
    raise AssertionError("no visible object in the test dataset")


def test_clean_dataset_has_no_findings(dataset):
    assert verify_dataset(dataset) == []


def test_finding_prints_as_one_line():
    assert str(Finding("rgb/000000.png", "missing")) == "rgb/000000.png: missing"


def test_flipped_byte_in_rgb_is_a_checksum_finding(copy):
    rel = frame_files(1)["rgb"]
    data = bytearray((copy / rel).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / rel).write_bytes(bytes(data))
    findings = verify_dataset(copy)
    assert any(f.path == rel and "sha256 mismatch" in f.problem for f in findings), findings
    assert {f.path for f in findings} == {rel}


def test_deleted_semantic_png_is_missing(copy):
    rel = frame_files(2)["semantic"]
    (copy / rel).unlink()
    assert verify_dataset(copy) == [Finding(rel, "missing")]


@pytest.mark.parametrize("refresh", [False, True], ids=["stale-sha", "fresh-sha"])
def test_shifted_bbox_names_frame_and_object(copy, refresh):
    index, obj = first_visible(copy)
    rel = frame_files(index)["labels"]
    record = json.loads((copy / rel).read_text())
    target = next(o for o in record["objects"] if o["id"] == obj["id"])
    target["bbox"] = [v + 1 if k in (0, 2) else v for k, v in enumerate(target["bbox"])]
    write_json(copy / rel, record)
    if refresh:
        refresh_sha(copy, rel)
    findings = verify_dataset(copy)
    box = [f for f in findings if f.path == rel and f.problem.startswith(f"object {obj['id']}: bbox")]
    assert len(box) == 1 and "tight box" in box[0].problem, findings
    assert {f.path for f in findings if "sha256" in f.problem} == (set() if refresh else {rel})
    # the only other thing that can notice: coco.json now disagrees with the record
    assert all(f.path in (rel, "coco.json") for f in findings), findings


def test_changed_instance_id_is_an_id_consistency_finding(copy):
    index, obj = first_visible(copy)
    rel = frame_files(index)["instance"]
    instance = read_png(copy / rel)
    new_id = int(instance.max()) + 100
    instance[instance == obj["id"]] = new_id
    write_png(copy / rel, instance)
    refresh_sha(copy, rel)
    findings = verify_dataset(copy)
    labels = frame_files(index)["labels"]
    assert Finding(rel, f"id {new_id} ({obj['area']} pixels) has no object in {labels}") in findings
    assert any(f.path == labels and f.problem.startswith(f"object {obj['id']}: area {obj['area']}, but 0 pixels")
               for f in findings), findings
    assert not any("sha256" in f.problem for f in findings)


def test_duplicate_coco_image_is_a_duplicate_id_finding(copy):
    coco = json.loads((copy / "coco.json").read_text())
    coco["images"].append(dict(coco["images"][0]))
    write_json(copy / "coco.json", coco)
    refresh_sha(copy, "coco.json")
    findings = verify_dataset(copy)
    image_id = coco["images"][0]["id"]
    assert Finding("coco.json", f"duplicate image id {image_id} (2 times)") in findings
    assert {f.path for f in findings} == {"coco.json"}


def test_unlisted_file_and_unreadable_record_do_not_raise(copy):
    (copy / "rgb" / "extra.png").write_bytes(b"not a png")
    rel = frame_files(0)["labels"]
    (copy / rel).write_text("{ not json")
    refresh_sha(copy, rel)
    findings = verify_dataset(copy)
    assert Finding("rgb/extra.png", "not listed in the manifest") in findings
    assert any(f.path == rel and f.problem.startswith("not valid JSON") for f in findings)


def test_bad_rle_and_missing_depth_are_object_findings(copy):
    index, obj = first_visible(copy)
    rel, depth_rel = frame_files(index)["labels"], frame_files(index)["depth"]
    record = json.loads((copy / rel).read_text())
    target = next(o for o in record["objects"] if o["id"] == obj["id"])
    target["rle"] = {"size": [96, 160], "counts": "garbage"}
    write_json(copy / rel, record)
    write_png(copy / depth_rel, np.zeros((96, 160), np.uint16))
    refresh_sha(copy, rel)
    refresh_sha(copy, depth_rel)
    problems = [f.problem for f in verify_dataset(copy) if f.path == rel]
    assert any(p.startswith(f"object {obj['id']}: rle") for p in problems), problems
    assert f"object {obj['id']}: {obj['area']} of its {obj['area']} pixels have no depth in {depth_rel}" in problems


def test_malformed_record_is_one_finding(copy):
    rel = frame_files(1)["labels"]
    record = json.loads((copy / rel).read_text())
    record["objects"][0] = {"id": 1}
    write_json(copy / rel, record)
    refresh_sha(copy, rel)
    findings = [f for f in verify_dataset(copy) if f.path == rel]
    assert len(findings) == 1 and findings[0].problem.startswith("malformed frame record: objects[0].track_id"), \
        findings


def test_not_a_dataset_is_one_finding(tmp_path):
    assert verify_dataset(tmp_path / "nowhere") == [Finding(".", f"{tmp_path / 'nowhere'}: no such directory")]
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    [finding] = verify_dataset(tmp_path)
    assert finding.path == MANIFEST and "another dataset" in finding.problem
