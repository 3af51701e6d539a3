"""Killing a render mid-run, for the resume tests (test_dataset, test_cluster)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_a_recorded_frame(cmd: list[str], out: Path, timeout_s: float = 180) -> dict:
    """Start ``cmd`` (a ``longtail render`` into ``out``), SIGKILL it once its manifest records at
    least one frame, and return the manifest it left."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            files = json.loads((out / "manifest.json").read_text())["files"]
        except (OSError, ValueError):
            files = {}
        if any(k.startswith("labels/") for k in files):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads((out / "manifest.json").read_text())
