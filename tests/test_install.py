"""A wheel builds without setuptools warnings and, installed in a fresh venv, carries the package
data (catalog scenarios, the editor's page) (issue #16)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_builds_quietly_and_installs_its_data(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    log = build.stdout + build.stderr
    assert "absent from the `packages` configuration" not in log, log[-3000:]
    assert "Warning" not in log.replace("WARNING: Location", ""), log[-3000:]
    wheel = next((tmp_path / "dist").glob("longtail-*.whl"))

    venv.create(tmp_path / "fresh", with_pip=False)
    py = tmp_path / "fresh" / "bin" / "python"
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--quiet",
                           str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    # -I and another cwd: nothing of the source tree (or its egg-info) on the path
    listing = subprocess.run([str(py), "-I", "-c", "import importlib.metadata as m; "
                              "print('\\n'.join(str(f) for f in m.files('longtail')))"],
                             capture_output=True, text=True, cwd=tmp_path)
    files = set(listing.stdout.split())
    catalog = {f for f in files if f.startswith("longtail/worlds/catalog/") and f.endswith(".yaml")}
    assert len(catalog) == len(list((ROOT / "worlds" / "catalog").glob("*.yaml"))) > 10
    for name in ("index.html", "app.js", "style.css"):
        assert f"longtail/editor/static/{name}" in files
    # every module of the source tree is in the wheel (a subpackage missing from the packages list
    # would be importable in an editable install and absent from a real one)
    for part, folder in (("longtail", "longtail"), ("longtail/worlds", "worlds"), ("longtail/render", "render"),
                         ("longtail/labelers", "labelers"), ("longtail/train", "train"), ("longtail/editor", "editor")):
        for f in (ROOT / folder).rglob("*.py"):
            assert f"{part}/{f.relative_to(ROOT / folder).as_posix()}" in files, f
