"""Exact placement (``ActorSpec.at``), the editor's drag and drop, in the sampler."""

from __future__ import annotations

import math

import pytest

from longtail.errors import InputError
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import parse_scenario


def make(events, traffic=()):
    return parse_scenario({"name": "placed", "description": "d", "layout": {"kind": "urban_street"},
                           "events": list(events), "traffic": list(traffic)}, "test")


def test_actor_stands_where_it_was_put():
    sc = make([{"asset": "pedestrian", "at": {"x_m": 15.0, "y_m": -5.5, "yaw_deg": 90.0}},
               {"asset": "sedan", "at": {"x_m": 25.0, "y_m": -1.7, "yaw_deg": 180.0}}])
    a, b = sample(sc, 4, 0).actors
    assert (a.asset, a.position[:2], round(math.degrees(a.yaw), 6)) == ("pedestrian", (15.0, -5.5), 90.0)
    assert a.position[2] == pytest.approx(0.15, abs=0.02)  # on the sidewalk, not in the kerb
    assert (b.asset, b.position[:2]) == ("sedan", (25.0, -1.7)) and abs(abs(b.yaw) - math.pi) < 1e-9
    assert abs(b.position[2]) < 0.02  # on the road


def test_pinning_one_actor_leaves_the_others_draws_alone():
    """``at`` replaces the position after the same draws: every other actor samples as before."""
    base = [{"asset": "deer", "region": "same_direction", "distance_m_range": [20, 40]}]
    traffic = [{"asset": "car", "count_range": [2, 3], "region": "oncoming"}]
    free = sample(make(base, traffic), 9, 0)
    deer = free.actors[0]
    pinned_spec = [{**base[0], "at": {"x_m": deer.position[0], "y_m": deer.position[1],
                                      "yaw_deg": math.degrees(deer.yaw)}}]
    pinned = sample(make(pinned_spec, traffic), 9, 0)
    assert [a.model_dump() for a in pinned.actors[1:]] == [a.model_dump() for a in free.actors[1:]]
    assert pinned.actors[0].position[:2] == pytest.approx(deer.position[:2])


@pytest.mark.parametrize("spec, words", [
    ({"asset": "pedestrian", "at": {"x_m": 1.0}}, "events[0].at.y_m"),
    ({"asset": "pedestrian", "count_range": [1, 3], "at": {"x_m": 1.0, "y_m": 0.0}}, "at most (1, 1)"),
    ({"asset": "pedestrian", "at": {"x_m": 1.0, "y_m": 0.0, "yaw_deg": 1000}}, "events[0].at.yaw_deg"),
])
def test_bad_placement_names_the_field(spec, words):
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make([spec])
