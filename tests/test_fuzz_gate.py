"""Any bytes in a saved hash pool (the verifier gate's memory of admitted samples): a pool, or one
InputError line naming the file; never a traceback. A frame record broken at random: the gate
rejects the frame (``labels``), it never raises."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, strategies as st

from fuzzing import FUZZ, binary, mutate, values
from longtail.dataset import frame_files
from longtail.errors import InputError
from longtail.labelers.dedup import HASH_BITS, HashPool
from longtail.labelers.gate import Gate
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario

VALID = HashPool([("round1/rgb/000000.png", 12345), ("round1/rgb/000001.png", 2**HASH_BITS - 1)]).to_json()


def check_pool_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.json"
        path.write_bytes(data)
        try:
            pool = HashPool.load(path)
        except InputError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: ") and "\n" not in msg and "Traceback" not in msg, msg
            return
        assert all(0 <= h < 2**HASH_BITS for h in pool.hashes) and len(pool.keys) == len(pool.hashes)
        assert HashPool.load(path).to_json() == pool.to_json()


@FUZZ
@given(st.data())
@example(data=None)
def test_hash_pool_file_fuzzed(data):
    if data is None:  # the valid file itself loads
        check_pool_file(json.dumps(VALID).encode())
        return
    kind = data.draw(st.sampled_from(["bytes", "value", "mutation", "mutation", "mutation"]))
    if kind == "bytes":
        raw = data.draw(binary)
    else:
        raw = json.dumps(data.draw(values) if kind == "value" else mutate(VALID, data)).encode()
    check_pool_file(raw)


@pytest.mark.parametrize("text, field", [
    ('{"format": "longtail-hash-pool", "version": 1, "bits": 64, "entries": []}', "bits"),
    ('{"format": "longtail-hash-pool", "version": 1, "bits": 256, "entries": [{"key": "a", "hash": "ff"}]}',
     "entries[0].hash"),
    ('{"format": "longtail-manifest"}', "format"),
])
def test_hash_pool_names_the_bad_field(tmp_path, text, field):
    (tmp_path / "pool.json").write_text(text)
    with pytest.raises(InputError) as err:
        HashPool.load(tmp_path / "pool.json")
    assert str(err.value).startswith(f"{tmp_path / 'pool.json'}: {field}: "), str(err.value)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gate_fuzz") / "ds"
    render_dataset(load_scenario("pedestrian_behind_bus").with_resolution(64, 48), out, frames=1, seed=1)
    return out


@FUZZ
@given(st.data())
def test_gate_rejects_mutated_records_without_raising(tiny, data):
    record = json.loads((tiny / frame_files(0)["labels"]).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(tiny, Path(tmp) / "ds"))
        if data.draw(st.booleans()):  # half the time inside the Scene, which the placement checks rebuild
            record["scene"] = mutate(record["scene"], data)
        else:
            record = mutate(record, data)
        (root / frame_files(0)["labels"]).write_text(json.dumps(record))
        verdict = Gate().check(root, 0)
        assert all("\n" not in str(r) for r in verdict.rejections)
