"""A Scene's weather applied at render time: the one call the renderer needs.

    img = apply_scene_weather(img, depth, scene.camera, scene.weather.kind, scene.weather.visibility_m,
                              scene.weather.intensity, rng, airlight=horizon)

Fog is homogeneous Koschmieder fog (as the renderer has always drawn it); rain and snow map the
scene's intensity 0..1 onto a rain rate (``rain.rain_rate_mm_h``, 1 = 50 mm/h) or a snowfall
intensity, with an extra haze of ``visibility_m`` where the scene gives one; a low sun in or near
the view can add its glare. Every random draw comes from ``rng`` (the frame's generator).
"""

from __future__ import annotations

import numpy as np

from longtail.render.weather.fog import DEFAULT_AIRLIGHT, depth_fog
from longtail.render.weather.glare import sample_flare, sun_glare
from longtail.render.weather.rain import rain, rain_rate_mm_h, sample_rain
from longtail.render.weather.snow import sample_snow, snow
from longtail.worlds.scene import Camera

KINDS = ("clear", "fog", "rain", "snow")


def apply_scene_weather(image: np.ndarray, depth: np.ndarray, camera: Camera, kind: str,
                        visibility_m: float | None, intensity: float, rng: np.random.Generator,
                        airlight=DEFAULT_AIRLIGHT, sun_uv: tuple[float, float] | None = None,
                        glare_strength: float = 0.0) -> np.ndarray:
    """The weather of a scene over its rendered frame.

    Args:
        image: (H, W, 3) float32 0..1 (or uint8) rendered frame, sky included.
        depth: (H, W) float32 z-depth in metres, inf = sky.
        camera: the scene's camera.
        kind: "clear", "fog", "rain" or "snow".
        visibility_m: fog visibility (required for fog); for rain and snow an extra haze, or None.
        intensity: 0..1 rain or snow intensity.
        rng: the frame's generator; rain and snow draw from it.
        airlight: haze colour (3,) 0..1, e.g. the scene's horizon sky colour.
        sun_uv: the sun's pixel when it is low and near the view, else None.
        glare_strength: 0..1 glare of that sun (0 = none).

    Returns:
        The frame with its weather, same shape and dtype.
    """
    if kind not in KINDS:
        raise ValueError(f"weather kind must be one of {KINDS}, got {kind!r}")
    out = image
    if kind == "fog":
        if not visibility_m:
            raise ValueError("fog needs visibility_m")
        out = depth_fog(out, depth, camera, visibility_m, airlight)
    elif kind == "rain":
        sample = sample_rain(camera, rain_rate_mm_h(intensity), rng, slant_deg=float(rng.uniform(-10, 10)))
        out = rain(out, depth, camera, sample, min(1.0, 0.5 + intensity), airlight, visibility_m)
    elif kind == "snow":
        sample = sample_snow(camera, intensity, rng, drift_deg=float(rng.uniform(-15, 15)))
        out = snow(out, depth, camera, sample, visibility_m=visibility_m, airlight=airlight)
    if sun_uv is not None and glare_strength > 0:
        out = sun_glare(out, camera, sun_uv, glare_strength, sample_flare(rng), depth)
    return out
