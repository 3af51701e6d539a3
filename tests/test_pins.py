"""Output bytes pinned across changes: scripts/pin_outputs.py renders every render path (day,
night, fog, rain, snow, glare, rig, plate), exports all formats, augments and trains three steps;
the sha256 of each file must equal tests/data/pins.json. Float results may differ on CPUs with
other vector units or other library versions, so the pins hold where the machine matches the one
that wrote them (the test says so and skips elsewhere); same-run determinism is tested anyway
(test_dataset.py: workers, resume, a frame alone)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "tests" / "data" / "pins.json"


def _machine() -> dict:
    spec = importlib.util.spec_from_file_location("pin_outputs", ROOT / "scripts" / "pin_outputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.machine()


@pytest.mark.slow
def test_outputs_match_their_pins():
    recorded = json.loads(PINS.read_text())["machine"]
    here = _machine()
    if here != recorded:
        differ = sorted(k for k in here if here[k] != recorded.get(k))
        pytest.skip(f"pins were written on another machine or library versions ({', '.join(differ)} differ)")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "pin_outputs.py"), "--check", str(PINS)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
