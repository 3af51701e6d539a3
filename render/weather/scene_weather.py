"""The weather stage of a frame: a Scene's weather (and a low sun's glare) over its rendered image.

It is a step of the frame's flow of its own (``pipeline.render_scene``): render -> weather ->
finish (anti-aliasing) -> labels' visibility. Two halves, as every transform here:

    draw = draw_scene_weather(scene)                    # every random draw, recorded
    image = apply_scene_weather(image, depth, scene, draw, airlight)   # deterministic

Each weather kind (``longtail.conditions.WEATHER_KINDS``) is one registered ``SceneWeather``:
``sample`` draws its randomness from the frame's weather stream (``seeding``), ``apply`` is the
physics (fog: homogeneous Koschmieder fog; rain and snow map the scene's intensity 0..1 onto a
rain rate, 1 = 50 mm/h, or a snowfall intensity, with an extra haze of ``visibility_m`` where
the scene gives one), ``describe`` the draws for the frame record. A low sun in or near a clear
view adds its glare after the weather.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from longtail.conditions import WEATHER_KINDS
from longtail.registry import Registry
from longtail.render.weather.fog import depth_fog
from longtail.render.weather.glare import FlareSample, sample_flare, sun_glare, sun_pixel
from longtail.render.weather.rain import RainSample, rain, rain_rate_mm_h, sample_rain
from longtail.render.weather.snow import SnowSample, sample_snow, snow
from longtail.seeding import WEATHER, stream_key, stream_rng
from longtail.worlds.scene import Scene

GLARE_MAX_ELEVATION_DEG = 15.0  # a sun lower than this, in or near the view, flares the lens
GLARE_STRENGTH = 0.6


@dataclass(frozen=True)
class SceneWeather:
    """One weather kind at render time.

    Attributes:
        kind: the Scene's ``weather.kind``.
        sample: (scene, rng) -> the kind's draws (None if it draws nothing).
        apply: (image, depth, scene, draws, airlight) -> image: the physics, deterministic.
        describe: draws -> JSON-ready dict of the draws for the frame record.
    """

    kind: str
    sample: Callable[[Scene, np.random.Generator], Any]
    apply: Callable[[np.ndarray, np.ndarray, Scene, Any, np.ndarray], np.ndarray]
    describe: Callable[[Any], dict] = lambda draws: {}


@dataclass(frozen=True)
class WeatherDraw:
    """Every random choice of a frame's weather stage; ``apply_scene_weather`` is a deterministic
    function of it. ``stream`` is the generator's key (``seeding.stream_key``): the particle
    positions behind ``draws`` are regenerated from it exactly."""

    kind: str
    draws: Any = None
    sun_uv: tuple[float, float] | None = None
    glare: float = 0.0
    flare: FlareSample | None = None
    stream: list[int] | None = None

    @property
    def changes_frame(self) -> bool:
        return self.kind != "clear" or self.flare is not None

    def record(self) -> dict:
        """The draws as JSON for the frame record (``weather_stage``)."""
        out: dict[str, Any] = {"kind": self.kind, "stream": self.stream,
                               **get_scene_weather(self.kind).describe(self.draws)}
        if self.flare is not None:
            assert self.sun_uv is not None  # a flare is only drawn for a sun in or near the view
            out["glare"] = {"strength": round(self.glare, 6), "sun_uv": [round(v, 3) for v in self.sun_uv],
                            "spikes": self.flare.spikes, "spike_angle": round(self.flare.spike_angle, 6),
                            "ghosts": [[round(g.along, 6), round(g.radius, 6), list(g.color), round(g.gain, 6)]
                                       for g in self.flare.ghosts]}
        return out


def _fog(image, depth, scene, draws, airlight):
    if not scene.weather.visibility_m:
        raise ValueError("fog needs visibility_m")
    return depth_fog(image, depth, scene.camera, scene.weather.visibility_m, airlight)


def _sample_rain(scene: Scene, rng: np.random.Generator) -> RainSample:
    slant = float(rng.uniform(-10, 10))
    return sample_rain(scene.camera, rain_rate_mm_h(scene.weather.intensity), rng, slant_deg=slant)


def _rain(image, depth, scene, draws: RainSample, airlight):
    w = scene.weather
    return rain(image, depth, scene.camera, draws, min(1.0, 0.5 + w.intensity), airlight, w.visibility_m)


def _sample_snow(scene: Scene, rng: np.random.Generator) -> SnowSample:
    drift = float(rng.uniform(-15, 15))
    return sample_snow(scene.camera, scene.weather.intensity, rng, drift_deg=drift)


def _snow(image, depth, scene, draws: SnowSample, airlight):
    return snow(image, depth, scene.camera, draws, visibility_m=scene.weather.visibility_m, airlight=airlight)


def _particles(d: RainSample | SnowSample) -> list[int]:
    return [len(layer.x) for layer in d.layers]


SCENE_WEATHER: Registry[SceneWeather] = Registry("weather kind")
for _w in (
    SceneWeather("clear", lambda scene, rng: None, lambda image, depth, scene, draws, airlight: image),
    SceneWeather("fog", lambda scene, rng: None, _fog),
    SceneWeather("rain", _sample_rain, _rain,
                 lambda d: {"rate_mm_h": round(d.rate_mm_h, 6), "slant_deg": round(math.degrees(d.slant), 6),
                            "streaks_per_layer": _particles(d), "lens_drops": len(d.drops)}),
    SceneWeather("snow", _sample_snow, _snow,
                 lambda d: {"intensity": round(d.intensity, 6), "drift_deg": round(math.degrees(d.drift), 6),
                            "flakes_per_layer": _particles(d)}),
):
    SCENE_WEATHER.add(_w.kind, _w)
assert tuple(sorted(WEATHER_KINDS)) == tuple(SCENE_WEATHER.names()), "every weather kind needs its effect"


def get_scene_weather(kind: str) -> SceneWeather:
    return SCENE_WEATHER.get(kind)


def _low_sun(scene: Scene) -> tuple[tuple[float, float] | None, float]:
    """The pixel of a low sun in or near a clear view and its glare strength, or (None, 0)."""
    e = math.degrees(scene.sun.elevation)
    if scene.weather.kind != "clear" or not 0.0 < e < GLARE_MAX_ELEVATION_DEG:
        return None, 0.0
    uv = sun_pixel(scene.camera, e, math.degrees(scene.sun.azimuth - scene.camera.yaw))
    return uv, (GLARE_STRENGTH * (1.0 - e / GLARE_MAX_ELEVATION_DEG) if uv is not None else 0.0)


def changes_frame(scene: Scene) -> bool:
    """True when the weather stage will change the frame (weather, or a low sun's glare in view);
    False: it returns the rendered image as it is."""
    return scene.weather.kind != "clear" or _low_sun(scene)[0] is not None


def draw_scene_weather(scene: Scene) -> WeatherDraw:
    """Every random draw of the scene's weather stage, from the frame's weather stream."""
    sun_uv, glare = _low_sun(scene)
    if not changes_frame(scene):
        return WeatherDraw("clear")
    key = stream_key(scene.seed, scene.index, WEATHER)
    rng = stream_rng(scene.seed, scene.index, WEATHER)
    draws = get_scene_weather(scene.weather.kind).sample(scene, rng)
    flare = sample_flare(rng) if sun_uv is not None and glare > 0 else None
    return WeatherDraw(scene.weather.kind, draws, sun_uv, glare, flare, key)


def apply_scene_weather(image: np.ndarray, depth: np.ndarray, scene: Scene, draw: WeatherDraw,
                        airlight: np.ndarray) -> np.ndarray:
    """The scene's weather over its rendered frame.

    Args:
        image: (H, W, 3) float32 0..1 rendered frame, sky included.
        depth: (H, W) float32 z-depth in metres, inf = sky.
        scene: the frame's Scene (camera, weather).
        draw: ``draw_scene_weather(scene)``.
        airlight: haze colour (3,) 0..1, e.g. the scene's horizon sky colour or a plate's airlight.

    Returns:
        The frame with its weather, same shape and dtype; ``image`` itself when nothing changes.
    """
    if not draw.changes_frame:
        return image
    out = get_scene_weather(draw.kind).apply(image, depth, scene, draw.draws, airlight)
    if draw.flare is not None:
        assert draw.sun_uv is not None  # a flare is only drawn for a sun in or near the view
        out = sun_glare(out, scene.camera, draw.sun_uv, draw.glare, draw.flare, depth)
    return out
