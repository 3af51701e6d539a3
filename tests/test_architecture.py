"""The import graph follows the design (scripts/check_imports.py): no circles, no forbidden arrow,
a base layer that imports no part; and the checker finds each of those when planted."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_source_follows_the_design():
    problems, arrows = _checker().check(ROOT)
    assert problems == []
    assert arrows[("Top", "Worlds")] > 0 and ("Worlds", "Render") not in arrows


@pytest.mark.parametrize("planted, expect", [
    ("worlds/scene.py", "must not import Render"),  # a scene that knows its renderer
    ("longtail/errors.py", "the base layer imports no part"),
    ("render/camera.py", "circle"),  # render.camera <-> render.capture
])
def test_the_checker_finds_what_is_planted(tmp_path, planted, expect):
    for folder in ("longtail", "worlds", "render", "labelers", "train", "editor"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "static",
                                                                                          "catalog"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    f = tmp_path / planted
    f.write_text(f.read_text() + "\n\ndef _planted():\n    from longtail.render.capture import Renderer  # noqa\n")
    problems, _ = _checker().check(tmp_path)
    assert any(expect in p for p in problems), problems
