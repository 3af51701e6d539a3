"""The weather kinds a Scene can have, defined once, and the condition tags they are reported as.

Scenario files, Scenes, the render-time weather stage (``render.weather.scene_weather``, one
registered effect per kind) and the frame attributes all take their kinds from here. Adding a
weather kind: add it to ``WeatherKind`` and ``WEATHER_TAGS`` here, and register its effect in
``render/weather/scene_weather.py`` (docs/architecture.md walks through it).
"""

from __future__ import annotations

from typing import Literal, get_args

WeatherKind = Literal["clear", "fog", "rain", "snow"]
WEATHER_KINDS: tuple[str, ...] = get_args(WeatherKind)
# BDD100K-style weather tags the frame attributes carry, which people already filter by
WEATHER_TAGS: dict[str, str] = {"clear": "clear", "fog": "foggy", "rain": "rainy", "snow": "snowy"}
