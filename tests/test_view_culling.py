"""Static parts that cannot show in the camera's image are left out of the PyBullet world
(``worlds.build.in_view``): fewer bodies to build, not one pixel different."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail._pybullet import p
from longtail.pipeline import compute_frame, engines, frame_scene
from longtail.render import capture
from longtail.render.capture import Renderer
from longtail.worlds.assets import box
from longtail.worlds.build import build, in_view, static_in_view
from longtail.worlds.scenario import load_scenario
from longtail.worlds.scene import Camera

CROWD = str(Path(__file__).resolve().parents[1] / "examples" / "pets_scene.yaml")


def _frame(renderer: Renderer, scene, shown) -> tuple[list[np.ndarray], int]:
    """The frame's buffers (image, depth, instance and class ids) and the shapes its world holds."""
    buf = renderer.capture(scene, shown=shown)
    c = renderer.client
    shapes = sum(p.getNumJoints(p.getBodyUniqueId(k, physicsClientId=c), physicsClientId=c) + 1
                 for k in range(p.getNumBodies(physicsClientId=c)))
    return [buf.image.copy(), buf.depth.copy(), buf.instance.copy(), buf.semantic.copy()], shapes


@pytest.mark.parametrize("name", [CROWD, "fallen_cargo", "night_rain_city"])
def test_parts_out_of_view_are_left_out_and_change_no_pixel(name):
    sc = load_scenario(name).with_resolution(320, 192)
    with engines() as eng:
        scenes = [frame_scene(sc, 3, i, eng) for i in range(3)]
    left_out = 0
    with Renderer("tiny") as r:
        for scene in scenes:
            shown = static_in_view(scene)
            left_out += int((~shown).sum())
            full, full_shapes = _frame(r, scene, np.ones_like(shown))
            culled, culled_shapes = _frame(r, scene, shown)
            for a, b in zip(full, culled):
                np.testing.assert_array_equal(a, b)
            assert culled_shapes < full_shapes if not shown.all() else culled_shapes == full_shapes
    assert left_out > 0  # the check above compared worlds that differ


def test_the_crowd_camera_sees_a_small_part_of_its_world():
    sc = load_scenario(CROWD).with_resolution(320, 192)
    with engines() as eng:
        shown = static_in_view(frame_scene(sc, 0, 0, eng))
    assert shown.mean() < 0.5


def test_in_view_keeps_what_may_touch_the_image():
    # 90 degrees across, 53 degrees high, 1.5 m up, looking along +x
    cam = Camera(width=200, height=100, fx=100.0, fy=100.0, cx=100.0, cy=50.0, position=(0.0, 0.0, 1.5))
    grey = (0.5, 0.5, 0.5, 1.0)
    ahead = box(10.0, 0.0, 0.0, 1.0, 1.0, 1.0, grey)
    behind = box(-10.0, 0.0, 0.0, 1.0, 1.0, 1.0, grey)
    far_left = box(10.0, 30.0, 0.0, 1.0, 1.0, 1.0, grey)  # 90 degree view: |y| > x is outside
    on_edge = box(10.0, 10.3, 0.0, 1.0, 1.0, 1.0, grey)  # reaches back over the left edge
    round_the_camera = box(0.0, 0.0, 0.0, 4.0, 4.0, 3.0, grey)  # the camera stands inside it
    above = box(10.0, 0.0, 40.0, 1.0, 1.0, 1.0, grey)
    got = in_view([ahead, behind, far_left, on_edge, round_the_camera, above], cam)
    assert got.tolist() == [True, False, False, True, True, False]
    assert in_view([], cam).shape == (0,)


@pytest.mark.parametrize("name,sequence,worlds", [("night_rain_city", 4, 1), ("fallen_cargo+rig", 1, 2)])
def test_a_run_or_a_rig_renders_in_one_world_as_each_image_would_alone(name, sequence, worlds, monkeypatch):
    """The images of a run from a moving camera (or of a rig's frame) each see other parts: their
    world holds what any of them sees, is built once, and each image renders as it does alone."""
    base = load_scenario(name.removesuffix("+rig")).with_resolution(320, 192)
    if name.endswith("+rig"):
        base = base.model_validate({**base.model_dump(), "camera": {**base.camera.model_dump(), "rig": "front_sides"}})
    built = []
    monkeypatch.setattr(capture, "build", lambda *a, **k: built.append(1) or build(*a, **k))
    with engines() as eng:
        in_order = [compute_frame(base, 1, i, eng, sequence) for i in range(4)]
    assert len(built) == worlds
    cameras = {str(f.record["camera"]["world_from_camera"]) for f in in_order}
    assert len(cameras) > 1  # the camera moved (or the rig's cameras differ)
    for i in (1, 3):
        with engines() as eng:
            alone = compute_frame(base, 1, i, eng, sequence)
        assert alone.record == in_order[i].record
        for kind, arr in alone.images.items():
            np.testing.assert_array_equal(arr, in_order[i].images[kind])
