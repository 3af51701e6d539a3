"""The weather effects as albumentations (2.0.x) transforms.

Each transform validates its parameters in an ``InitSchema`` (bad values raise ValueError
naming the field), draws every random value in ``get_params_dependent_on_data`` from
albumentations' own generators (``self.py_random``, ``self.random_generator``: seeded by
``A.Compose(..., seed=S)``), and ``apply`` is a deterministic function of those params that calls
the physics in ``fog``, ``rain``, ``snow``, ``night`` and ``glare``.

They read the depth map from the call's data. Pass it as a mask-like additional target, so
geometric transforms earlier in the pipeline (flips, crops, resizes) move it with the image::

    t = A.Compose([A.HorizontalFlip(), DepthFog(visibility_m_range=(40, 80), p=1)],
                  additional_targets={"depth": "mask"}, bbox_params=A.BboxParams("pascal_voc"), seed=7)
    out = t(image=rgb, depth=depth_m, mask=instance, bboxes=boxes, labels=labels)

Depth is float32 z-depth in metres; ``inf`` or ``0`` mean sky (KITTI PNG depth / 256 works as
is). Images are (H, W, 3) uint8 or float32 0..1. These are image-only transforms: masks, boxes,
keypoints and the depth itself pass through unchanged.

Camera geometry (ray lengths, the ground plane, light positions) comes from ``camera``: a
``FrameCamera`` or a dict of its fields, e.g. ``FrameCamera.from_record(record["camera"])`` for a
longtail frame; without one a level car camera with an 81-degree field of view at 1.65 m is
assumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import albumentations as A
import numpy as np
from albumentations.core.pydantic import check_range_bounds, nondecreasing
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from longtail.render.lighting import Light
from longtail.render.weather.fog import depth_fog, estimate_airlight, koschmieder_beta
from longtail.render.weather.geometry import (DEFAULT_HEIGHT_M, DEFAULT_HFOV_DEG, camera_for_image, check_image,
                                              clean_depth)
from longtail.render.weather.glare import SUN_COLOR, sample_flare, sun_glare, sun_pixel
from longtail.render.weather.night import day_to_night, ego_headlights, ego_motion_blur, sensor_noise
from longtail.render.weather.rain import FULL_INTENSITY_MM_H, rain, rain_extinction_beta, sample_rain
from longtail.render.weather.snow import sample_snow, snow, snow_visibility_m
from longtail.worlds.scene import Camera

Row3 = tuple[float, float, float]
Row4 = tuple[float, float, float, float]
Color = Annotated[tuple[float, float, float], AfterValidator(check_range_bounds(0, 1))]
_Pair = tuple[float, float]


def _within(low: float, high: float | None = None, **bounds: bool) -> Callable[[Any], Any]:
    """The check that every value of a tuple lies within [low, high].

    A function, not an ``Annotated`` type, so the ranges below stay annotations mypy can read:
    ``Annotated[_Pair, AfterValidator(_within(low, high)), AfterValidator(nondecreasing)]``.
    """
    return check_range_bounds(low, high, **bounds)


class FrameCamera(BaseModel):
    """The camera of the images a transform sees: intrinsics ``K`` (3 x 3) and the 4 x 4
    ``world_from_camera`` of a longtail frame record (OpenCV camera axes, world z up, ground at
    z = 0), or, where those are missing, a level car camera of ``hfov_deg``, ``height_m`` and
    ``pitch_deg`` (down) whose principal point is the image centre."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    K: tuple[Row3, Row3, Row3] | None = None
    world_from_camera: tuple[Row4, Row4, Row4, Row4] | None = None
    hfov_deg: float = Field(default=DEFAULT_HFOV_DEG, gt=0, lt=180)
    height_m: float = Field(default=DEFAULT_HEIGHT_M, gt=0)
    pitch_deg: float = Field(default=0.0, ge=-45, le=45)

    @classmethod
    def from_record(cls, camera: dict) -> "FrameCamera":
        """From the ``camera`` entry of a longtail frame record (``labels/NNNNNN.json``)."""
        return cls(K=camera["K"], world_from_camera=camera["world_from_camera"])

    def for_image(self, shape: tuple[int, ...]) -> Camera:
        """The Camera of an image of ``shape`` (H, W, ...)."""
        return camera_for_image(shape, self.K, self.world_from_camera, self.hfov_deg, self.height_m, self.pitch_deg)


class WeatherTransform(A.ImageOnlyTransform):
    """Shared plumbing: the camera, the depth map from the call's data, the image check."""

    needs_depth = True

    def _spec(self, camera: FrameCamera | dict | None) -> FrameCamera:
        return camera if isinstance(camera, FrameCamera) else FrameCamera.model_validate(camera or {})

    def _inputs(self, params: dict[str, Any], data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, Camera]:
        image = data["image"] if "image" in data else data["images"][0]
        check_image(image)
        shape = params["shape"]
        depth = data.get("depth")
        if depth is None:
            if self.needs_depth:
                raise ValueError(f"{type(self).__name__} needs the depth map: call the pipeline with depth=... "
                                 "(float32 metres, inf or 0 = sky) and additional_targets={'depth': 'mask'}")
        else:
            depth = clean_depth(depth)
            if depth.shape != tuple(shape[:2]):
                raise ValueError(f"depth has shape {depth.shape}, the image {tuple(shape[:2])}")
        return image, depth, self.camera.for_image(shape)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        """Frame attributes (longtail label record) implied by applied ``params``."""
        return {}


def _log_uniform(rng, low: float, high: float) -> float:
    """Visibilities span orders of magnitude: draw them uniformly in log."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


class DepthFog(WeatherTransform):
    """Fog by Koschmieder's law on each pixel's ray distance: homogeneous, or ground fog whose
    extinction thins with height (``fog_height_m_range``: e-folding height).

    Args:
        visibility_m_range: meteorological visibility (at the ground), metres; drawn log-uniform.
        fog_height_m_range: e-folding height of ground fog, metres; None = homogeneous fog.
        airlight: fog colour (3,) 0..1; None = estimated from the sky near the horizon.
        blur_px: Gaussian sigma (pixels) of forward scattering at zero transmission; 0 = none.
        camera: ``FrameCamera`` (or its fields as a dict); None = the default car camera.
        p: probability of applying the transform.

    Targets: image (masks, bboxes, keypoints and depth pass through).
    """

    class InitSchema(BaseTransformInitSchema):
        visibility_m_range: Annotated[_Pair, AfterValidator(_within(1.0)), AfterValidator(nondecreasing)]
        fog_height_m_range: Annotated[_Pair, AfterValidator(_within(0.1)), AfterValidator(nondecreasing)] | None
        airlight: Color | None
        blur_px: float = Field(ge=0, le=50)
        camera: FrameCamera | None

    def __init__(self, visibility_m_range: tuple[float, float] = (50.0, 300.0),
                 fog_height_m_range: tuple[float, float] | None = None,
                 airlight: tuple[float, float, float] | None = None,
                 blur_px: float = 0.0, camera: FrameCamera | dict | None = None, p: float = 0.5):
        super().__init__(p=p)
        self.visibility_m_range = visibility_m_range
        self.fog_height_m_range = fog_height_m_range
        self.airlight = airlight
        self.blur_px = blur_px
        self.camera = self._spec(camera)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image, depth, cam = self._inputs(params, data)
        height = self.py_random.uniform(*self.fog_height_m_range) if self.fog_height_m_range else None
        return {"depth": depth, "cam": cam, "visibility_m": _log_uniform(self.py_random, *self.visibility_m_range),
                "fog_height_m": height, "airlight": self.airlight or estimate_airlight(image, depth)}

    def apply(self, img: np.ndarray, depth: np.ndarray, cam: Camera, visibility_m: float, fog_height_m: float | None,
              airlight: tuple[float, float, float], **params: Any) -> np.ndarray:
        return depth_fog(img, depth, cam, visibility_m, airlight, fog_height_m, self.blur_px)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"weather": "foggy", "visibility_m": round(params["visibility_m"], 2)}


class DepthRain(WeatherTransform):
    """Rain: streaks of Marshall-Palmer drops in front of the surfaces, rain extinction
    (0.312 R^0.67 per km) through the fog equation, wet upward-facing surfaces reflecting the
    scene, and drops on the lens.

    Args:
        rain_rate_mm_h_range: rain rate, mm/h (>= 0).
        slant_deg_range: streak angle from vertical (wind), degrees.
        wetness_range: 0..1 wetness of horizontal surfaces.
        lens_drops_range: number of drops on the lens (integers).
        visibility_m_range: extra haze (mist, spray) as a visibility, metres; None = rain only.
        exposure_s: exposure time; streak length = fall speed x exposure.
        airlight: haze colour (3,) 0..1; None = estimated from the sky.
        camera: ``FrameCamera`` (or its fields as a dict); None = the default car camera.
        p: probability of applying the transform.

    Targets: image (masks, bboxes, keypoints and depth pass through).
    """

    class InitSchema(BaseTransformInitSchema):
        rain_rate_mm_h_range: Annotated[_Pair, AfterValidator(_within(0.0, 500.0)), AfterValidator(nondecreasing)]
        slant_deg_range: Annotated[_Pair, AfterValidator(_within(-60.0, 60.0)), AfterValidator(nondecreasing)]
        wetness_range: Annotated[_Pair, AfterValidator(_within(0.0, 1.0)), AfterValidator(nondecreasing)]
        lens_drops_range: Annotated[_Pair, AfterValidator(_within(0, 50)), AfterValidator(nondecreasing)]
        visibility_m_range: Annotated[_Pair, AfterValidator(_within(1.0)), AfterValidator(nondecreasing)] | None
        exposure_s: float = Field(gt=0, le=1)
        airlight: Color | None
        camera: FrameCamera | None

    def __init__(self, rain_rate_mm_h_range: tuple[float, float] = (5.0, 50.0),
                 slant_deg_range: tuple[float, float] = (-15.0, 15.0), wetness_range: tuple[float, float] = (0.6, 1.0),
                 lens_drops_range: tuple[int, int] = (0, 4), visibility_m_range: tuple[float, float] | None = None,
                 exposure_s: float = 1 / 60, airlight: tuple[float, float, float] | None = None,
                 camera: FrameCamera | dict | None = None, p: float = 0.5):
        super().__init__(p=p)
        self.rain_rate_mm_h_range = rain_rate_mm_h_range
        self.slant_deg_range = slant_deg_range
        self.wetness_range = wetness_range
        self.lens_drops_range = lens_drops_range
        self.visibility_m_range = visibility_m_range
        self.exposure_s = exposure_s
        self.airlight = airlight
        self.camera = self._spec(camera)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image, depth, cam = self._inputs(params, data)
        rate = self.py_random.uniform(*self.rain_rate_mm_h_range)
        slant = self.py_random.uniform(*self.slant_deg_range)
        drops = self.py_random.randint(int(self.lens_drops_range[0]), int(self.lens_drops_range[1]))
        sample = sample_rain(cam, rate, self.random_generator, slant, self.exposure_s, drops)
        vis = _log_uniform(self.py_random, *self.visibility_m_range) if self.visibility_m_range else None
        return {"depth": depth, "cam": cam, "sample": sample, "wetness": self.py_random.uniform(*self.wetness_range),
                "visibility_m": vis, "airlight": self.airlight or estimate_airlight(image, depth, overcast=True)}

    def apply(self, img: np.ndarray, depth: np.ndarray, cam: Camera, sample, wetness: float,
              visibility_m: float | None, airlight: tuple[float, float, float], **params: Any) -> np.ndarray:
        return rain(img, depth, cam, sample, wetness, airlight, visibility_m)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        rate = params["sample"].rate_mm_h
        haze = koschmieder_beta(params["visibility_m"]) if params["visibility_m"] else 0.0
        beta = rain_extinction_beta(rate) + haze
        return {"weather": "rainy", "rain_rate_mm_h": round(rate, 2),
                "weather_intensity": round(min(1.0, rate / FULL_INTENSITY_MM_H), 3),
                "visibility_m": round(koschmieder_beta(1.0) / beta, 1) if beta > 0 else None}


class DepthSnow(WeatherTransform):
    """Snow: flakes sized by distance in front of the surfaces, snow cover on upward-facing
    surfaces, and the haze of snowfall (visibility from intensity on the NWS scale).

    Args:
        intensity_range: snowfall intensity 0..1.
        drift_deg_range: fall direction from vertical (wind), degrees.
        cover_range: 0..1 snow cover of flat surfaces; None = the drawn intensity.
        visibility_m_range: visibility in the snowfall, metres; None = from intensity.
        exposure_s: exposure time; flakes streak by fall speed x exposure.
        airlight: haze colour (3,) 0..1; None = estimated from the sky.
        camera: ``FrameCamera`` (or its fields as a dict); None = the default car camera.
        p: probability of applying the transform.

    Targets: image (masks, bboxes, keypoints and depth pass through).
    """

    class InitSchema(BaseTransformInitSchema):
        intensity_range: Annotated[_Pair, AfterValidator(_within(0.0, 1.0)), AfterValidator(nondecreasing)]
        drift_deg_range: Annotated[_Pair, AfterValidator(_within(-60.0, 60.0)), AfterValidator(nondecreasing)]
        cover_range: Annotated[_Pair, AfterValidator(_within(0.0, 1.0)), AfterValidator(nondecreasing)] | None
        visibility_m_range: Annotated[_Pair, AfterValidator(_within(1.0)), AfterValidator(nondecreasing)] | None
        exposure_s: float = Field(gt=0, le=1)
        airlight: Color | None
        camera: FrameCamera | None

    def __init__(self, intensity_range: tuple[float, float] = (0.3, 1.0),
                 drift_deg_range: tuple[float, float] = (-20.0, 20.0), cover_range: tuple[float, float] | None = None,
                 visibility_m_range: tuple[float, float] | None = None, exposure_s: float = 1 / 60,
                 airlight: tuple[float, float, float] | None = None, camera: FrameCamera | dict | None = None,
                 p: float = 0.5):
        super().__init__(p=p)
        self.intensity_range = intensity_range
        self.drift_deg_range = drift_deg_range
        self.cover_range = cover_range
        self.visibility_m_range = visibility_m_range
        self.exposure_s = exposure_s
        self.airlight = airlight
        self.camera = self._spec(camera)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image, depth, cam = self._inputs(params, data)
        intensity = self.py_random.uniform(*self.intensity_range)
        drift = self.py_random.uniform(*self.drift_deg_range)
        sample = sample_snow(cam, intensity, self.random_generator, drift, self.exposure_s)
        cover = self.py_random.uniform(*self.cover_range) if self.cover_range else intensity
        vis = _log_uniform(self.py_random, *self.visibility_m_range) if self.visibility_m_range else None
        return {"depth": depth, "cam": cam, "sample": sample, "cover": cover,
                "visibility_m": vis or snow_visibility_m(intensity),
                "airlight": self.airlight or estimate_airlight(image, depth, overcast=True)}

    def apply(self, img: np.ndarray, depth: np.ndarray, cam: Camera, sample, cover: float, visibility_m: float,
              airlight: tuple[float, float, float], **params: Any) -> np.ndarray:
        return snow(img, depth, cam, sample, cover, visibility_m, airlight)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"weather": "snowy", "weather_intensity": round(params["sample"].intensity, 3),
                "visibility_m": round(params["visibility_m"], 1), "snow_cover": round(params["cover"], 3)}


class DayToNight(WeatherTransform):
    """Night or dusk from a day frame: the frame is read as albedo and relit by the remaining
    skylight (``ambient``) and artificial lights (positions and normals from depth), the sky is
    redrawn, then the long exposure blurs with the car's motion and the high gain adds sensor
    noise.

    Args:
        ambient_range: skylight left, fraction of daylight (night ~0.02-0.05, dusk ~0.15-0.5).
        sky: "night" or "dusk".
        headlights: light the scene with the camera car's low beams.
        lights: more ``lighting.Light`` s in the camera's world frame (lamps, other cars).
        gain_range: analogue gain of the exposure (1 = base ISO); 0 = no noise.
        motion_blur_m_range: metres the car moves during the exposure; 0 = no blur.
        camera: ``FrameCamera`` (or its fields as a dict); None = the default car camera.
        p: probability of applying the transform.

    Targets: image (masks, bboxes, keypoints and depth pass through).
    """

    class InitSchema(BaseTransformInitSchema):
        ambient_range: Annotated[_Pair, AfterValidator(_within(0.0, 1.0)), AfterValidator(nondecreasing)]
        sky: Literal["night", "dusk"]
        headlights: bool
        lights: list[Light] | None
        gain_range: Annotated[_Pair, AfterValidator(_within(0.0, 1000.0)), AfterValidator(nondecreasing)]
        motion_blur_m_range: Annotated[_Pair, AfterValidator(_within(0.0, 5.0)), AfterValidator(nondecreasing)]
        camera: FrameCamera | None

    def __init__(self, ambient_range: tuple[float, float] = (0.02, 0.05), sky: Literal["night", "dusk"] = "night",
                 headlights: bool = True, lights: list[Light] | None = None,
                 gain_range: tuple[float, float] = (8.0, 16.0), motion_blur_m_range: tuple[float, float] = (0.0, 0.3),
                 camera: FrameCamera | dict | None = None, p: float = 0.5):
        super().__init__(p=p)
        self.ambient_range = ambient_range
        self.sky = sky
        self.headlights = headlights
        # the schema hands dataclasses over as dicts
        self.lights = None if lights is None else [x if isinstance(x, Light) else Light(**x) for x in lights]
        self.gain_range = gain_range
        self.motion_blur_m_range = motion_blur_m_range
        self.camera = self._spec(camera)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        _, depth, cam = self._inputs(params, data)
        lights = (ego_headlights(cam) if self.headlights else []) + list(self.lights or [])
        return {"depth": depth, "cam": cam, "ambient": self.py_random.uniform(*self.ambient_range), "lights": lights,
                "gain": self.py_random.uniform(*self.gain_range),
                "motion_m": self.py_random.uniform(*self.motion_blur_m_range),
                "noise_seed": int(self.random_generator.integers(2**32))}

    def apply(self, img: np.ndarray, depth: np.ndarray, cam: Camera, ambient: float, lights: list[Light], gain: float,
              motion_m: float, noise_seed: int, **params: Any) -> np.ndarray:
        out = day_to_night(img, depth, cam, ambient, lights, self.sky)
        out = ego_motion_blur(out, depth, cam, motion_m)
        return sensor_noise(out, gain, noise_seed)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"time_of_day": "night" if self.sky == "night" else "dawn/dusk"}


class SunGlare(WeatherTransform):
    """A low sun: veiling glare falling as 1/theta^2 from the sun, lens flare ghosts along the
    optical axis and, when the sun is in view and not behind a surface, its starburst.

    Args:
        sun_uv: the sun's pixel (u, v), may lie outside the image; None = drawn from the two
            ranges below.
        sun_elevation_deg_range: sun elevation above the horizon, degrees.
        sun_azimuth_deg_range: sun direction left of the camera's heading, degrees.
        strength_range: 0..1 glare strength.
        ghosts_range: number of flare ghosts (integers).
        sun_color: (3,) 0..1 colour of the sunlight.
        camera: ``FrameCamera`` (or its fields as a dict); None = the default car camera.
        p: probability of applying the transform.

    Depth is optional here (it hides a sun behind a surface). Targets: image (masks, bboxes,
    keypoints and depth pass through).
    """

    needs_depth = False

    class InitSchema(BaseTransformInitSchema):
        sun_uv: tuple[float, float] | None
        sun_elevation_deg_range: Annotated[_Pair, AfterValidator(_within(-5.0, 90.0)), AfterValidator(nondecreasing)]
        sun_azimuth_deg_range: Annotated[_Pair, AfterValidator(_within(-180.0, 180.0)), AfterValidator(nondecreasing)]
        strength_range: Annotated[_Pair, AfterValidator(_within(0.0, 1.0)), AfterValidator(nondecreasing)]
        ghosts_range: Annotated[_Pair, AfterValidator(_within(0, 20)), AfterValidator(nondecreasing)]
        sun_color: Color
        camera: FrameCamera | None

    def __init__(self, sun_uv: tuple[float, float] | None = None,
                 sun_elevation_deg_range: tuple[float, float] = (1.0, 8.0),
                 sun_azimuth_deg_range: tuple[float, float] = (-30.0, 30.0),
                 strength_range: tuple[float, float] = (0.6, 1.0), ghosts_range: tuple[int, int] = (3, 6),
                 sun_color: tuple[float, float, float] = SUN_COLOR, camera: FrameCamera | dict | None = None,
                 p: float = 0.5):
        super().__init__(p=p)
        self.sun_uv = sun_uv
        self.sun_elevation_deg_range = sun_elevation_deg_range
        self.sun_azimuth_deg_range = sun_azimuth_deg_range
        self.strength_range = strength_range
        self.ghosts_range = ghosts_range
        self.sun_color = sun_color
        self.camera = self._spec(camera)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        _, depth, cam = self._inputs(params, data)
        elevation = self.py_random.uniform(*self.sun_elevation_deg_range)
        azimuth = self.py_random.uniform(*self.sun_azimuth_deg_range)
        sun_uv = self.sun_uv if self.sun_uv is not None else sun_pixel(cam, elevation, azimuth)
        ghosts = self.py_random.randint(int(self.ghosts_range[0]), int(self.ghosts_range[1]))
        return {"depth": depth, "cam": cam, "sun_uv": sun_uv, "strength": self.py_random.uniform(*self.strength_range),
                "flare": sample_flare(self.random_generator, ghosts)}

    def apply(self, img: np.ndarray, depth: np.ndarray | None, cam: Camera, sun_uv: tuple[float, float] | None,
              strength: float, flare, **params: Any) -> np.ndarray:
        if sun_uv is None:  # the sun is behind the camera
            return img
        return sun_glare(img, cam, sun_uv, strength, flare, depth, self.sun_color)

    def frame_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        uv = params["sun_uv"]
        return {"sun_glare": None if uv is None else {"sun_uv": [round(uv[0], 1), round(uv[1], 1)],
                                                      "strength": round(params["strength"], 3)}}


TRANSFORMS = (DepthFog, DepthRain, DepthSnow, DayToNight, SunGlare)
