"""Named weather pipelines: ``get_preset(name)(strength)`` -> an ``A.Compose``.

``strength`` 0..1 moves each preset from its mild to its severe end (visibility, rain rate,
darkness, glare); every draw inside stays random within a narrow band around that point, so
variants of one frame differ. The Compose takes ``depth`` as a mask-like additional target;
its transforms can also be spliced into a larger pipeline (``A.Compose([*preset, ...])``),
which must then declare ``additional_targets={"depth": "mask"}`` itself.

    fx = get_preset("dense_fog")(0.8, camera=record["camera"], seed=3)
    out = fx(image=rgb, depth=depth_m)["image"]
"""

from __future__ import annotations

import math
from typing import Callable

import albumentations as A

from longtail.registry import Registry
from longtail.render.weather.transforms import FrameCamera, DayToNight, DepthFog, DepthRain, DepthSnow, SunGlare

Preset = Callable[..., A.Compose]
PRESETS: Registry[Preset] = Registry("weather preset")
BAND = 0.1  # each drawn value varies +-10 % around the strength's point


def get_preset(name: str) -> Preset:
    """The preset ``name``; an unknown name raises KeyError listing the choices."""
    return PRESETS.get(name)


def list_presets() -> list[str]:
    return PRESETS.names()


def _lerp(a: float, b: float, s: float) -> float:
    return a + (b - a) * s


def _geo(a: float, b: float, s: float) -> float:
    """Log-linear interpolation, for visibilities and rates spanning orders of magnitude."""
    return math.exp(_lerp(math.log(a), math.log(b), s))


def _band(x: float, lo: float = -math.inf, hi: float = math.inf) -> tuple[float, float]:
    return max(lo, x * (1 - BAND)), min(hi, x * (1 + BAND))


def _camera(camera: FrameCamera | dict | None) -> FrameCamera | None:
    """A frame record's camera dict (K, world_from_camera, ...), a FrameCamera or its fields."""
    if camera is None or isinstance(camera, FrameCamera):
        return camera
    if "K" in camera and "world_from_camera" in camera:
        return FrameCamera.from_record(camera)
    return FrameCamera.model_validate(camera)


def _preset(name: str):
    """Register ``build(strength, camera) -> transforms`` as the preset ``name``."""

    def register(build: Callable[[float, FrameCamera | None], list]) -> Preset:
        def preset(strength: float = 1.0, *, camera: FrameCamera | dict | None = None, seed: int | None = None
                   ) -> A.Compose:
            if not 0.0 <= strength <= 1.0:
                raise ValueError(f"strength must be in [0, 1], got {strength}")
            return A.Compose(build(float(strength), _camera(camera)), additional_targets={"depth": "mask"}, seed=seed)

        preset.__name__ = name
        preset.__doc__ = f"{name}: {build.__doc__} ``(strength 0..1, camera=, seed=) -> A.Compose``."
        return PRESETS.add(name, preset)

    return register


@_preset("light_fog")
def _light_fog(s: float, camera):
    """homogeneous fog, visibility 1000 m (strength 0) to 300 m (1)"""
    return [DepthFog(_band(_geo(1000, 300, s)), camera=camera, p=1.0)]


@_preset("dense_fog")
def _dense_fog(s: float, camera):
    """homogeneous fog, visibility 150 m to 30 m, scattering blur of the far field"""
    return [DepthFog(_band(_geo(150, 30, s)), blur_px=_lerp(0.5, 2.0, s), camera=camera, p=1.0)]


@_preset("ground_fog")
def _ground_fog(s: float, camera):
    """radiation fog hugging the ground: visibility at the ground 200 m to 40 m, thinning with
    an e-folding height of 8 m to 4 m"""
    return [DepthFog(_band(_geo(200, 40, s)), fog_height_m_range=_band(_lerp(8, 4, s)), blur_px=1.0,
                     camera=camera, p=1.0)]


@_preset("heavy_rain")
def _heavy_rain(s: float, camera):
    """rain of 15 to 80 mm/h, soaked road, drops on the lens"""
    return [DepthRain(_band(_geo(15, 80, s)), wetness_range=_band(_lerp(0.7, 1.0, s), hi=1.0),
                      lens_drops_range=(round(_lerp(1, 4, s)), round(_lerp(3, 8, s))), camera=camera, p=1.0)]


@_preset("night_rain")
def _night_rain(s: float, camera):
    """rain of 3 to 30 mm/h on a wet road at night, lit by the car's low beams, with sensor noise"""
    return [DepthRain(_band(_geo(3, 30, s)), wetness_range=_band(_lerp(0.8, 1.0, s), hi=1.0),
                      lens_drops_range=(0, round(_lerp(1, 4, s))), camera=camera, p=1.0),
            DayToNight(_band(_geo(0.05, 0.02, s)), gain_range=_band(_lerp(6, 16, s)),
                       motion_blur_m_range=_band(_lerp(0.05, 0.3, s)), camera=camera, p=1.0)]


@_preset("heavy_snow")
def _heavy_snow(s: float, camera):
    """snowfall of intensity 0.55 to 1 (visibility ~560 m to 200 m), snow cover 0.5 to 1"""
    return [DepthSnow(_band(_lerp(0.55, 1.0, s), hi=1.0), cover_range=_band(_lerp(0.5, 1.0, s), hi=1.0),
                      camera=camera, p=1.0)]


@_preset("low_sun")
def _low_sun(s: float, camera):
    """a sun 1-8 degrees above the horizon within 30 degrees of the heading, glare 0.5 to 1"""
    return [SunGlare(sun_elevation_deg_range=(1.0, 8.0), sun_azimuth_deg_range=(-30.0, 30.0),
                     strength_range=_band(_lerp(0.5, 1.0, s), hi=1.0), camera=camera, p=1.0)]


@_preset("dusk")
def _dusk(s: float, camera):
    """dusk sky, skylight 45 % to 12 % of daylight, low beams on, mild noise"""
    return [DayToNight(_band(_geo(0.45, 0.12, s)), sky="dusk", gain_range=_band(_lerp(2, 6, s)),
                       motion_blur_m_range=(0.0, 0.1), camera=camera, p=1.0)]


@_preset("night")
def _night(s: float, camera):
    """night, skylight 5 % to 1.5 %, lit by the car's low beams, noise and motion blur"""
    return [DayToNight(_band(_geo(0.05, 0.015, s)), gain_range=_band(_lerp(6, 20, s)),
                       motion_blur_m_range=_band(_lerp(0.05, 0.4, s)), camera=camera, p=1.0)]
