"""The procedural people: they fill their size box, stay in their footprint, vary, and are pure."""

import itertools

import numpy as np
import pytest

from longtail.worlds.assets import CLOTHES, PERSON_POSES, asset_parts, get_asset, parts_bounds

STAND, WALK, RAISED = (PERSON_POSES.index(pose) for pose in (0, 1, 2))  # a variant of each pose
CORNERS = {name: list(itertools.product(*get_asset(name).size_range)) for name in ("pedestrian", "child", "rider")}


@pytest.mark.parametrize("asset", ["pedestrian", "child"])
@pytest.mark.parametrize("variant", [STAND, WALK, RAISED])
def test_person_fills_its_box_height_and_stays_in_its_footprint(asset, variant):
    for size in CORNERS[asset]:
        for color in CLOTHES[:4]:
            parts = asset_parts(asset, size, color, variant)
            assert len(parts) <= 20
            lo, hi = parts_bounds(parts)
            l, w, h = size
            assert lo[2] == pytest.approx(0.0, abs=1e-9) and hi[2] == pytest.approx(h, abs=1e-9)
            assert np.all(np.abs(lo[:2]) <= np.array([l, w]) / 2 + 1e-9)
            assert np.all(np.abs(hi[:2]) <= np.array([l, w]) / 2 + 1e-9)


def test_rider_stays_in_its_box():
    for size in CORNERS["rider"]:
        for variant in (0, 1):
            lo, hi = parts_bounds(asset_parts("rider", size, CLOTHES[0], variant))
            l, w, h = size
            assert lo[2] >= -1e-9 and 0.75 * h <= hi[2] <= h + 1e-9
            assert np.all(np.abs(np.concatenate([lo[:2], hi[:2]])) <= np.array([l, w, l, w]) / 2 + 1e-9)


def test_variants_and_colours_differ_and_parts_are_a_pure_function():
    size = (0.42, 0.55, 1.75)
    poses = [asset_parts("pedestrian", size, CLOTHES[0], v) for v in (STAND, WALK, RAISED)]
    assert poses[0] != poses[1] and poses[1] != poses[2] and poses[0] != poses[2]
    assert asset_parts("pedestrian", size, CLOTHES[0], WALK) == poses[1]  # same inputs, same parts
    # clothes other than the top (trousers, skin, hair, shoes) vary with the colour drawn
    looks = {frozenset(pt.rgba for pt in asset_parts("pedestrian", size, tuple(c * k for c in CLOTHES[0]), 0))
             for k in np.linspace(0.85, 1.15, 12)}
    assert len({frozenset(x for x in s if x[:3] != tuple(CLOTHES[0])) for s in looks}) > 3


def test_poses_come_as_often_as_on_a_street():
    share = {pose: PERSON_POSES.count(pose) / len(PERSON_POSES) for pose in (0, 1, 2)}
    assert share[1] > 0.5 and 0.2 < share[0] < 0.4 and 0 < share[2] <= 0.1  # most walk, few raise their arms
    assert get_asset("pedestrian").variants == get_asset("child").variants == len(PERSON_POSES)


def test_walking_swings_the_legs_and_standing_does_not():
    size = (0.5, 0.55, 1.75)
    legs = lambda v: [pt for pt in asset_parts("pedestrian", size, (0.2, 0.2, 0.2), v) if pt.shape == "frustum"]  # noqa: E731
    assert max(abs(pt.rpy[1]) for pt in legs(WALK)) > 0.05
    standing = asset_parts("pedestrian", size, (0.2, 0.2, 0.2), STAND)
    shoes = [pt for pt in standing if pt.shape == "box" and pt.pos[2] < 0.1]
    assert len(shoes) == 2 and all(abs(pt.rpy[1]) < 1e-9 for pt in shoes)
