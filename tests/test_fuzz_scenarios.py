"""Any bytes as a scenario file: a valid Scenario (and a sampled Scene) or one line, exit 2."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, strategies as st

from fuzzing import FUZZ, assert_clean, binary, mutate, no_partial_output, run_cli, values
from longtail.worlds.scenario import list_scenarios, load_scenario

ROOT = Path(__file__).resolve().parents[1]
# the catalog, and scenarios with the optional blocks the catalog leaves out (randomize, ramp)
CATALOG = [s.model_dump(mode="json") for s in list_scenarios()] + [
    load_scenario(str(ROOT / "examples" / name)).model_dump(mode="json")
    for name in ("pets_scene_randomized.yaml", "fog_rolls_in.yaml", "nightfall.yaml")]

DEEP_YAML = b"a: " + b"[" * 5000 + b"]" * 5000
ALIAS_BOMB = b"\n".join([b'a: &a ["x","x","x","x","x","x","x","x","x","x"]']
                        + [f"{chr(98 + i)}: &{chr(98 + i)} [" .encode() + b",".join([f"*{chr(97 + i)}".encode()] * 10)
                           + b"]" for i in range(8)])


def _validate(data: bytes) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "s.yaml"
        f.write_bytes(data)
        return run_cli(["scenario", "validate", f])


@FUZZ
@given(binary)
@example(b"name: x\ndescription: \xff\xfe caf\xe9\n")  # not UTF-8
@example(DEEP_YAML)
@example(b"- " * 3000 + b"x")
@example(ALIAS_BOMB)
@example(b"{[1, 2]: 3}")  # an unhashable key
@example(b"!!python/object:os.system {}")
@example(b"\xef\xbb\xbfname: bom_ok\ndescription: d\n")
def test_any_bytes_validate_or_fail_in_one_line(data):
    assert_clean(*_validate(data))


@FUZZ
@given(values)
def test_any_yaml_value_validates_or_fails_in_one_line(value):
    assert_clean(*_validate(yaml.safe_dump(value).encode()))


@FUZZ
@given(st.data())
def test_mutated_catalog_scenarios_sample_or_fail_in_one_line(data):
    """A mutation that still validates must also sample (or say in one line why it cannot)."""
    doc = mutate(data.draw(st.sampled_from(CATALOG)), data)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "s.yaml"
        f.write_text(yaml.safe_dump(doc))
        assert_clean(*run_cli(["scenario", "sample", f, "--seed", "1"]))


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_mutated_catalog_scenarios_render_or_fail_in_one_line(data):
    doc = mutate(data.draw(st.sampled_from(CATALOG)), data)
    with tempfile.TemporaryDirectory() as tmp:
        f, out = Path(tmp) / "s.yaml", Path(tmp) / "out"
        f.write_text(yaml.safe_dump(doc))
        rc, o, e = run_cli(["render", "--scenario", f, "--frames", "1", "--out", out, "--width", "64",
                            "--height", "48", "--quiet", "--seed", "0"])
        assert_clean(rc, o, e)
        if rc == 2:
            no_partial_output(out)
