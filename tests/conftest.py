import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from longtail.render.capture import Renderer
from longtail.worlds.scenario import list_scenarios

SMALL = (160, 96)


@pytest.fixture(scope="session")
def renderer():
    with Renderer() as r:
        yield r


@pytest.fixture(scope="session")
def small_scenarios():
    """Every built-in scenario at a small resolution, for fast tests."""
    return [s.with_resolution(*SMALL) for s in list_scenarios()]


SHARED = Path(__file__).resolve().parents[2] / "shared"
PETS_SCRIPT = SHARED / "data" / "pets09-s2l1" / "make-sequence.sh"


@pytest.fixture(scope="session")
def pets(tmp_path_factory) -> Path:
    """PETS 2009 S2L1 as a MOTChallenge sequence, built once per session by the shared script."""
    if not PETS_SCRIPT.is_file():
        pytest.skip(f"PETS sequence script not found at {PETS_SCRIPT}")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not available to fetch the PETS frames (Debian package opencv-doc)")
    try:
        import cv2  # noqa: F401  the script decodes the video with the test's own Python
    except ImportError:
        pytest.skip("the PETS script needs opencv-python in this Python")
    out = tmp_path_factory.mktemp("pets") / "PETS09-S2L1"
    run = subprocess.run(["bash", str(PETS_SCRIPT), str(out)], env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"could not build the PETS sequence (package download failed?): {last}")
    return out
