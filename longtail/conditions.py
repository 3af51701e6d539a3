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

# Visibility bands (metres of meteorological visibility) a condition breakdown groups frames by:
# fog is visibility below 1 km (WMO); the UK Met Office calls below 200 m thick fog and below 50 m
# dense fog; Foggy Cityscapes' three densities sit at 600, 300 and 150 m.
VISIBILITY_BAND_EDGES_M: tuple[float, ...] = (1000.0, 500.0, 200.0, 100.0, 50.0)


def visibility_band(visibility_m: float | None) -> str | None:
    """The band a visibility (metres) falls in, as a condition tag: ``>=1000 m``, ``500-1000 m``,
    ``200-500 m``, ``100-200 m``, ``50-100 m`` or ``<50 m``; None for no visibility (clear air)."""
    if visibility_m is None:
        return None
    v = float(visibility_m)
    edges = VISIBILITY_BAND_EDGES_M
    if v >= edges[0]:
        return f">={edges[0]:g} m"
    for hi, lo in zip(edges, edges[1:]):
        if v >= lo:
            return f"{lo:g}-{hi:g} m"
    return f"<{edges[-1]:g} m"


def band_rank(band: str) -> int:
    """A visibility band's place from the clearest (0) to the thickest fog; bands this module did
    not name come last."""
    edges = VISIBILITY_BAND_EDGES_M
    names = [visibility_band(edges[0])] + [visibility_band(lo) for lo in edges[1:]] + [visibility_band(edges[-1] / 2)]
    return names.index(band) if band in names else len(names)
