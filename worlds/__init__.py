"""Scenarios (what may happen), Scenes (what does happen) and PyBullet worlds built from them."""

from longtail.worlds.scenario import Scenario, list_scenarios, load_scenario, load_scenario_file
from longtail.worlds.sampler import sample
from longtail.worlds.scene import Actor, Camera, Layout, Scene, Sun, Weather

__all__ = ["Actor", "Camera", "Layout", "Scenario", "Scene", "Sun", "Weather", "list_scenarios",
           "load_scenario", "load_scenario_file", "sample"]
