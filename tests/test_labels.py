"""Labels are exact: boxes are tight mask boxes, RLE masks decode to the instance buffer, and
occlusion / truncation agree with renders of the object alone."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from longtail.pipeline import render_scene
from longtail.labelers.annotate import _box_of, _rle_of, tight_box
from longtail.render.weather.visibility import pixels_by_id
from longtail.classes import CLASSES, get_class
from longtail.worlds.sampler import sample
from longtail.worlds.scene import Actor, Camera, Layout, Scene, Sun, Weather


def _checks(scene, buf, objects):
    H, W = buf.instance.shape
    ids_in_image = set(np.unique(buf.instance)) - {0}
    assert ids_in_image <= {o["id"] for o in objects}, "every visible actor has a record"
    for o in objects:
        mask = buf.instance == o["id"]
        assert o["area"] == int(mask.sum())
        if o["area"] == 0:
            assert o["bbox"] is None and o["occlusion"] == 1.0
            continue
        ys, xs = np.nonzero(mask)
        assert o["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        decoded = mask_utils.decode(o["rle"]).astype(bool)
        assert np.array_equal(decoded, mask)
        assert o["area"] <= o["alone_area"], "alone render has at least the visible pixels"
        assert 0.0 <= o["occlusion"] <= 1.0 and 0.0 <= o["truncation"] < 1.0
        assert np.all(buf.semantic[mask] == get_class(o["class"]).id)
        assert np.all(np.isfinite(buf.depth[mask])) and np.all(buf.depth[mask] > 0)
    valid_ids = {c.id for c in CLASSES}
    assert set(np.unique(buf.semantic)) <= valid_ids


def test_labels_exact_on_every_builtin_scenario(renderer, small_scenarios):
    n_objects = 0
    for sc in small_scenarios:
        for i in range(2):
            scene = sample(sc, 5, i)
            buf = render_scene(scene, renderer)
            objects = buf.objects
            _checks(scene, buf, objects)
            n_objects += sum(o["area"] > 0 for o in objects)
    assert n_objects > 10


def _scene(actors, width=200, height=120):
    f = width / (2 * math.tan(math.radians(40)))
    cam = Camera(width=width, height=height, fx=f, fy=f, cx=width / 2, cy=height / 2, position=(0.0, -1.7, 1.65))
    return Scene(scenario="hand", seed=0, index=0, layout=Layout(kind="rural_road", lanes=2, lane_width=3.4,
                 ego_lane=0, length=120.0, seed=1), camera=cam, sun=Sun(hour=12, elevation=0.9, azimuth=0.5),
                 weather=Weather(), actors=tuple(actors))


def _car(i, x, y, yaw=0.0):
    return Actor(id=i, asset="sedan", cls="car", size=(4.5, 1.8, 1.45), position=(x, y, 0.0), yaw=yaw,
                 color=(0.6, 0.1, 0.1))


def test_occlusion_and_truncation_match_renders_alone(renderer):
    front = _car(1, 12.0, -1.7)
    behind = _car(2, 22.0, -1.2)
    edge = _car(3, 9.0, -8.3, yaw=0.2)  # partly outside the right image border
    scene = _scene([front, behind, edge])
    buf = render_scene(scene, renderer)
    objs = {o["id"]: o for o in buf.objects}
    assert objs[1]["occlusion"] == 0.0 and objs[1]["truncation"] == 0.0
    assert 0.3 < objs[2]["occlusion"] < 1.0
    assert objs[3]["truncation"] > 0.05
    # alone, the occluded car shows exactly its alone area and no occlusion
    alone = _scene([behind])
    buf2 = render_scene(alone, renderer)
    o2 = buf2.objects[0]
    assert o2["occlusion"] == 0.0 and o2["area"] == objs[2]["alone_area"]
    # and its visible pixels in the full scene are a subset of its alone pixels
    assert np.all((buf.instance == 2) <= (buf2.instance == 2))


def test_hidden_object_stays_in_record_with_full_occlusion(renderer):
    hidden = Actor(id=2, asset="dog", cls="animal", size=(0.7, 0.25, 0.5), position=(20.0, -1.7, 0.0), yaw=0.0,
                   color=(0.5, 0.4, 0.2))
    bus = Actor(id=1, asset="bus", cls="bus", size=(12.0, 2.5, 3.2), position=(12.0, -1.7, 0.0), yaw=0.0,
                color=(0.9, 0.7, 0.1))
    scene = _scene([bus, hidden])
    objs = {o["id"]: o for o in render_scene(scene, renderer).objects}
    assert objs[2]["area"] == 0 and objs[2]["occlusion"] == 1.0 and objs[2]["bbox"] is None


def test_same_scene_renders_same_bytes(renderer, small_scenarios):
    scene = sample(small_scenarios[0], 2, 1)
    a = render_scene(scene, renderer)
    render_scene(sample(small_scenarios[-1], 9, 4), renderer)  # state from another frame must not leak
    b = render_scene(scene, renderer)
    for k in ("rgb", "depth", "instance", "semantic"):
        assert np.array_equal(getattr(a, k), getattr(b, k))


def test_tight_box_of_empty_and_single_pixel():
    m = np.zeros((5, 7), bool)
    assert tight_box(m) is None
    m[2, 3] = True
    assert tight_box(m) == [3.0, 2.0, 4.0, 3.0]


@given(st.integers(1, 16), st.integers(1, 16), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_labels_from_pixel_indices_match_whole_image_masks(H, W, seed):
    """Each object's box and RLE, made from its pixel indices, are what the whole-image mask
    gives: its tight box and pycocotools' encoding of it."""
    rng = np.random.default_rng(seed)
    instance = (rng.integers(0, 4, (H, W)) * (rng.random((H, W)) < rng.random())).astype(np.uint16)
    for i, at in pixels_by_id(instance).items():
        mask = instance == i
        rows, cols = np.divmod(at, W)
        assert _box_of(rows, cols) == tight_box(mask)
        want = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert _rle_of(rows, cols, H, W) == {"size": [H, W], "counts": want["counts"].decode("ascii")}


@pytest.mark.parametrize("name", ["deer_on_dark_road", "night_jaywalker"])
def test_night_is_dark_except_where_light_falls(renderer, small_scenarios, name):
    sc = next(s for s in small_scenarios if s.name == name)
    scene = sample(sc, 0, 0)
    assert scene.is_night
    rgb = render_scene(scene, renderer).rgb.astype(float)
    assert np.median(rgb) < 40, "night frames are dark overall"
    assert rgb[int(rgb.shape[0] * 0.75):].max() > 120, "the headlights light the road ahead"


def test_amodal_box_encloses_visible_box_and_kitti_angles(renderer):
    ahead = _car(1, 15.0, -1.7)  # same heading as the ego: KITTI rotation_y = -pi/2
    crossing = _car(2, 25.0, 1.0, yaw=math.pi / 2)  # heading +y (left): rotation_y = pi
    scene = _scene([ahead, crossing], width=800, height=480)
    objs = {o["id"]: o for o in render_scene(scene, renderer).objects}
    for o in objs.values():
        x0, y0, x1, y1 = o["bbox"]
        a0, b0, a1, b1 = o["bbox_amodal"]
        assert a0 <= x0 + 1 and b0 <= y0 + 1 and a1 >= x1 - 1 and b1 >= y1 - 1
    assert objs[1]["box3d_camera"]["rotation_y"] == pytest.approx(-math.pi / 2, abs=1e-6)
    assert abs(objs[2]["box3d_camera"]["rotation_y"]) == pytest.approx(math.pi, abs=1e-6)
    # straight ahead of the camera the observation angle equals rotation_y
    loc = objs[1]["box3d_camera"]["bottom_center"]
    assert loc[0] == pytest.approx(0.0, abs=1e-9) and loc[1] == pytest.approx(1.65)
    assert objs[1]["box3d_camera"]["alpha"] == pytest.approx(-math.pi / 2, abs=1e-6)
    assert objs[1]["bbox"][3] - objs[1]["bbox"][1] >= 40 and objs[1]["kitti_difficulty"] == "easy"


def test_amodal_box_clips_at_the_camera_plane():
    from longtail.labelers.annotate import amodal_box

    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    corners = np.array([[x, y, z] for x in (-1.0, 1.0) for y in (-0.5, 0.5) for z in (-2.0, 3.0)])
    assert amodal_box(corners, K, 100, 80, 0.1) == [0.0, 0.0, 100.0, 80.0]
    behind = corners - [0, 0, 10.0]
    assert amodal_box(behind, K, 100, 80, 0.1) is None


@pytest.mark.parametrize("h,occ,trunc,expected", [
    (45, 0.0, 0.0, "easy"), (39, 0.0, 0.0, "moderate"), (45, 0.3, 0.0, "moderate"), (30, 0.7, 0.4, "hard"),
    (30, 0.7, 0.6, None), (20, 0.0, 0.0, None),
])
def test_kitti_difficulty_thresholds(h, occ, trunc, expected):
    from longtail.labelers.annotate import object_difficulty

    assert object_difficulty([0.0, 0.0, 10.0, float(h)], occ, trunc) == expected


def test_label_visibility_is_one_by_clear_day_and_falls_in_fog(renderer):
    near, far = _car(1, 12.0, -1.7), _car(2, 45.0, 1.7, yaw=math.pi)
    clear = _scene([near, far])
    objs = {o["id"]: o for o in render_scene(clear, renderer).objects}
    assert objs[1]["visibility"] == objs[2]["visibility"] == 1.0
    foggy = clear.model_copy(update={"weather": Weather(kind="fog", visibility_m=40.0)})
    objs = {o["id"]: o for o in render_scene(foggy, renderer).objects}
    assert objs[2]["visibility"] < objs[1]["visibility"] < 1.0 and objs[2]["visibility"] < 0.2
