"""The weather stage: physically grounded effects over image + depth, label-aware.

Physics are pure functions, one module per effect (``fog``, ``rain``, ``snow``, ``night``,
``glare``; ``particles`` and ``geometry`` are shared); ``transforms`` wraps each as an
albumentations transform, ``presets`` names ready-made pipelines, ``visibility`` measures how
visible each labelled object stays, and ``scene`` applies a Scene's weather at render time.
Importing this package does not import albumentations; ``transforms`` and ``presets`` do.
"""

from longtail.render.weather.fog import depth_fog, fog, fog_transmission, koschmieder_beta
from longtail.render.weather.glare import sun_glare
from longtail.render.weather.night import day_to_night, ego_motion_blur, sensor_noise
from longtail.render.weather.rain import rain_extinction_beta
from longtail.render.weather.scene_weather import apply_scene_weather
from longtail.render.weather.visibility import fog_visibility, object_visibility

# ``rain.rain`` and ``snow.snow`` stay in their modules: re-exported here they would hide the
# submodules of the same name (as ``fog`` does, kept for the renderer's imports).
__all__ = ["apply_scene_weather", "day_to_night", "depth_fog", "ego_motion_blur", "fog", "fog_transmission",
           "fog_visibility", "koschmieder_beta", "object_visibility", "rain_extinction_beta", "sensor_noise",
           "sun_glare"]
