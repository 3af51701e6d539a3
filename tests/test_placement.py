"""worlds.placement: floating and interpenetrating actors, from the Scene's geometry alone."""

import math

import pytest

from longtail.worlds.layouts import static_world
from longtail.worlds.physics import Physics
from longtail.worlds.placement import placement_problems
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import list_scenarios, load_scenario
from longtail.worlds.scene import Actor, Camera, Layout, Scene, Sun, Weather


def moved(scene: Scene, actor_id: int, **update) -> Scene:
    actors = tuple(a.model_copy(update=update) if a.id == actor_id else a for a in scene.actors)
    return scene.model_copy(update={"actors": actors})


def kinds(scene: Scene) -> list[tuple[str, int]]:
    return [(p.kind, p.actor) for p in placement_problems(scene)]


@pytest.fixture(scope="module")
def physics():
    with Physics() as ph:
        yield ph


def test_every_sampled_scene_stands_plausibly(physics):
    """What the sampler places (PyBullet settles it) passes the geometric check, on every layout."""
    for s in list_scenarios():
        scene = sample(s, 0, 0, physics=physics)
        assert placement_problems(scene) == [], (s.name, [str(p) for p in placement_problems(scene)])


def test_raised_and_sunk_actors(physics):
    scene = sample(load_scenario("pedestrian_behind_bus"), 4, 0, physics=physics)
    a = scene.actors[0]
    x, y, z = a.position
    assert kinds(moved(scene, a.id, position=(x, y, z + 1.0))) == [("floating", a.id)]
    assert kinds(moved(scene, a.id, position=(x, y, z + 0.05))) == []  # within the 0.1 m tolerance
    sunk = placement_problems(moved(scene, a.id, position=(x, y, z - 0.5)))
    assert [(p.kind, p.actor) for p in sunk] == [("interpenetration", a.id)] and "road" in sunk[0].detail


def test_actor_inside_a_building(physics):
    scene = sample(load_scenario("pedestrian_behind_bus"), 4, 0, physics=physics)
    building = next(pt for cls, pt in static_world(scene.layout).parts if cls == "building" and pt.shape == "box")
    a = scene.actors[-1]
    problems = placement_problems(moved(scene, a.id, position=(building.pos[0], building.pos[1], 0.0)))
    assert any(p.kind == "interpenetration" and "building" in p.detail for p in problems), problems


def test_a_rider_may_touch_its_two_wheeler_only(physics):
    scene = sample(load_scenario("motorcycle_from_side_street"), 0, 0, physics=physics)
    rider = next(a for a in scene.actors if a.parent is not None)
    assert placement_problems(scene) == []
    assert ("interpenetration", rider.parent) in kinds(moved(scene, rider.id, parent=None))


def plate_scene(*actors: Actor) -> Scene:
    cam = Camera(width=160, height=96, fx=100, fy=100, cx=80, cy=48, position=(0, 0, 4), pitch=math.radians(15))
    return Scene(scenario="t", seed=0, index=0, layout=Layout(kind="plate", lanes=1, lane_width=3.5, ego_lane=0,
                                                              length=50, seed=0, plate="no/such/plate"),
                 camera=cam, sun=Sun(hour=12, elevation=1.0, azimuth=0.0), weather=Weather(), actors=actors)


def person(id: int, x: float, y: float, z: float = 0.0, yaw: float = 0.0) -> Actor:
    return Actor(id=id, asset="pedestrian", cls="person", size=(0.5, 0.6, 1.8), position=(x, y, z), yaw=yaw,
                 color=(0.5, 0.5, 0.5))


def test_plate_ground_is_the_plane_z0():
    """A plate's actors stand on z = 0 (the plate itself is never loaded for the check)."""
    assert kinds(plate_scene(person(1, 10, 0), person(2, 12, 0))) == []
    assert kinds(plate_scene(person(1, 10, 0, z=0.5))) == [("floating", 1)]
    assert kinds(plate_scene(person(1, 10, 0, z=-0.5))) == [("interpenetration", 1)]


def test_oriented_boxes_overlap_by_their_true_footprints():
    # 0.5 x 0.6 m footprints with centres 0.55 m apart along x: 0.05 m apart when aligned; one
    # turned by 45 degrees reaches 0.39 m along x, 0.09 m into the other
    assert kinds(plate_scene(person(1, 10, 0), person(2, 10.55, 0))) == []
    assert kinds(plate_scene(person(1, 10, 0), person(2, 10.55, 0, yaw=math.pi / 4))) == [("interpenetration", 1)]
    assert kinds(plate_scene(person(1, 10, 0), person(2, 10.6, 0, yaw=math.pi / 4))) == []  # 0.04 m: tolerated
    # one standing on the other's head is not floating (it is held up), the pair does not overlap
    assert kinds(plate_scene(person(1, 10, 0), person(2, 10, 0, z=1.8))) == []
