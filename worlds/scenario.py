"""Scenario files: YAML describing what *may* happen (distributions, regions, requirements).

``load_scenario(NAME_OR_PATH)`` validates a file (or a built-in name) into a frozen
``Scenario``; every problem is reported as ``file: field.path: value: expectation``.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError,
                      ValidationInfo, field_validator, model_serializer, model_validator)

from longtail.conditions import WeatherKind
from longtail.errors import InputError, ParameterError, UnknownNameError
from longtail.readers import load_yaml
from longtail.readers import validation_message as _validation_message
from longtail.worlds.assets import resolve_asset_names
from longtail.worlds.layouts import REGIONS, get_layout, list_layouts
from longtail.worlds.plates import load_plate_cached


Pair = tuple[float, float]
T = TypeVar("T", int, float)


def _ordered(r: tuple[T, T]) -> tuple[T, T]:
    if r[0] > r[1]:
        raise ValueError(f"range low {r[0]} is greater than high {r[1]}")
    return r


FloatRange = Annotated[Pair, AfterValidator(_ordered)]


def within(low: float, high: float, unit: str) -> AfterValidator:
    """The check that an ordered (low, high) range lies inside [``low``, ``high``] (in ``unit``),
    for ``Annotated[FloatRange, within(...)]``. Every range has limits: a value the schema lets
    through must work downstream (no 1e300-metre roads)."""
    def check(r: Pair) -> Pair:
        for v in r:
            if v < low:
                raise ValueError(f"{v} is not >= {low:g} ({unit})")
            if v > high:
                raise ValueError(f"{v} is not <= {high:g} ({unit})")
        return r
    return AfterValidator(check)


MAX_COUNT = 100  # actors of one entry: a crowd; more would take minutes a frame to place
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
IntRange = Annotated[tuple[Count, Count], AfterValidator(_ordered)]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LayoutSpec(Strict):
    kind: str = "urban_street"
    lanes_choices: list[Annotated[int, Field(ge=1, le=8)]] = Field(default=[2], min_length=1)
    lane_width_m_range: Annotated[FloatRange, within(2.0, 6.0, "lane width in metres")] = (3.2, 3.6)
    length_m: float = Field(default=180.0, ge=30.0, le=240.0)
    # curve: |radius| in metres (the bend's side is drawn); curve start or junction centre ahead
    radius_m_range: Annotated[FloatRange, within(20, 1e5, "curve radius in metres")] | None = None
    junction_m_range: Annotated[FloatRange, within(5, 240, "metres ahead of the ego")] | None = None

    @field_validator("kind")
    @classmethod
    def _known_layout(cls, v: str) -> str:
        if v not in list_layouts():
            raise ValueError(f"unknown layout {v!r}; expected one of {', '.join(list_layouts())}")
        return v


class TimeSpec(Strict):
    hour_range: FloatRange = (10.0, 16.0)
    # where the sunlight comes from, relative to the road ahead (0 = from straight ahead, low sun
    # in the driver's eyes); None: from the hour and a random road bearing
    sun_azimuth_deg_range: Annotated[FloatRange, within(-720, 720, "degrees")] | None = None

    @field_validator("hour_range")
    @classmethod
    def _hours(cls, v: Pair) -> Pair:
        if not (0 <= v[0] <= 24 and 0 <= v[1] <= 24):
            raise ValueError("hours must lie in 0..24")
        return v


class WeatherSpec(Strict):
    kind: WeatherKind = "clear"
    visibility_m_range: Annotated[FloatRange, within(1, 1e5, "visibility in metres")] | None = None
    intensity_range: Annotated[FloatRange, within(0, 1, "strength")] = (0.0, 0.0)


# Camera presets: values a preset fills in for the fields a scenario leaves out.
CAMERA_PRESETS: dict[str, dict] = {
    # KITTI's left colour camera (P2 of the 2011_09_26 calibration), 1.65 m above the road
    "kitti": {"width": 1242, "height": 375, "fx": 721.5377, "fy": 721.5377, "cx": 609.5593, "cy": 172.854,
              "height_m": 1.65, "pitch_deg_range": (0.0, 1.0)},
    # a 16:9 windscreen dash cam: wide lens, lower mount, tilted down a little
    "dashcam": {"width": 960, "height": 540, "hfov_deg": 110.0, "height_m": 1.3, "pitch_deg_range": (2.0, 5.0)},
}


class RigMount(Strict):
    """One more camera on the ego, relative to the main camera: turned by ``yaw_deg`` (left
    positive) and ``pitch_deg`` (down positive), moved by x (forward), y (left), z (up) metres;
    its own horizontal field of view, or the main camera's."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    yaw_deg: float = Field(default=0.0, ge=-180.0, le=180.0)
    pitch_deg: float = Field(default=0.0, ge=-45.0, le=45.0)
    x_m: float = 0.0
    y_m: float = 0.0
    z_m: float = 0.0
    hfov_deg: float | None = Field(default=None, gt=10.0, lt=170.0)


RIG_PRESETS: dict[str, list[dict]] = {
    "front_sides": [{"name": "left", "yaw_deg": 70.0, "y_m": 0.8, "hfov_deg": 100.0},
                    {"name": "right", "yaw_deg": -70.0, "y_m": -0.8, "hfov_deg": 100.0}],
}


class CameraSpec(Strict):
    """The camera: a ``preset`` (kitti, dashcam) fills the fields left out; intrinsics come from
    ``fx, fy, cx, cy`` in pixels when given, else from ``hfov_deg`` with the centre as principal
    point. Extrinsics: mounted ``height_m`` above the road on the ego, looking along the lane,
    with pitch (down), yaw (left) and roll drawn from their ranges."""

    preset: Literal["kitti", "dashcam"] | None = None
    # "vehicle": on the ego, over its lane; "roadside": a fixed infrastructure camera on a pole
    # at the right road edge (smart intersections; give height_m 3-12 and a downward pitch)
    mount: Literal["vehicle", "roadside"] = "vehicle"
    width: int = Field(default=640, ge=16, le=4096)
    height: int = Field(default=384, ge=16, le=4096)
    hfov_deg: float = Field(default=81.0, gt=10.0, lt=170.0)
    fx: float | None = Field(default=None, ge=0.1, le=1e6)
    fy: float | None = Field(default=None, ge=0.1, le=1e6)
    cx: float | None = Field(default=None, ge=-20_000.0, le=20_000.0)
    cy: float | None = Field(default=None, ge=-20_000.0, le=20_000.0)
    height_m: float = Field(default=1.65, gt=0.2, le=20.0)
    pitch_deg_range: Annotated[FloatRange, within(-90, 90, "degrees down")] = (0.0, 2.0)
    yaw_deg_range: Annotated[FloatRange, within(-180, 180, "degrees left")] = (0.0, 0.0)
    roll_deg_range: Annotated[FloatRange, within(-180, 180, "degrees")] = (0.0, 0.0)
    # more cameras rendered with every frame, each with all its buffers and labels: a list of
    # mounts, or a preset name ("front_sides": left and right cameras beside the front one)
    rig: list[RigMount] = []

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in CAMERA_PRESETS:
            data = {**CAMERA_PRESETS[data["preset"]], **data}
        if isinstance(data, dict) and isinstance(data.get("rig"), str):
            if data["rig"] not in RIG_PRESETS:
                raise ValueError(f"unknown rig {data['rig']!r}; expected a list of mounts or one of "
                                 f"{', '.join(RIG_PRESETS)}")
            data = {**data, "rig": RIG_PRESETS[data["rig"]]}
        return data

    @field_validator("rig")
    @classmethod
    def _unique_names(cls, v: list[RigMount]) -> list[RigMount]:
        names = ["front"] + [m.name for m in v]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique (the main camera is 'front'): {names}")
        return v

    def names(self) -> list[str]:
        """Camera names in rendering order: the main camera first."""
        return ["front"] + [m.name for m in self.rig]

    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels."""
        f = self.width / (2.0 * math.tan(math.radians(self.hfov_deg) / 2.0))
        fx = self.fx if self.fx is not None else f
        fy = self.fy if self.fy is not None else fx
        cx = self.cx if self.cx is not None else self.width / 2.0
        cy = self.cy if self.cy is not None else self.height / 2.0
        return fx, fy, cx, cy


class Placement(Strict):
    """An exact spot (the editor's drag and drop): the actor's bottom centre at world (x, y)
    metres (the ego starts at the origin facing +x, y to its left), heading ``yaw_deg`` (world,
    counter-clockwise from +x) plus a draw from the spec's ``heading_deg_range``."""

    x_m: float = Field(ge=-500.0, le=500.0)
    y_m: float = Field(ge=-500.0, le=500.0)
    yaw_deg: float = Field(default=0.0, ge=-360.0, le=360.0)


class ActorSpec(Strict):
    asset: str
    count_range: IntRange = (1, 1)
    region: str = "same_direction"
    distance_m_range: Annotated[FloatRange, within(0, 1000, "metres ahead of the camera")] = (8.0, 80.0)
    heading_deg_range: Annotated[FloatRange, within(-720, 720, "degrees")] = (0.0, 0.0)
    lateral_jitter_m: float = Field(default=0.3, ge=0.0, le=2.0)
    # None: the asset's default (0 for parked/static)
    speed_mps_range: Annotated[FloatRange, within(-100, 100, "metres per second")] | None = None
    in_view: bool = False  # requirement: the actor's centre projects inside the image
    # placement relative to the first actor of an earlier ``events`` entry, in that actor's frame
    # (s forward along its heading, t to its left); ``region`` and distance are then not used
    relative_to: int | None = Field(default=None, ge=0)
    offset_s_m_range: Annotated[FloatRange, within(-100, 100, "metres")] = (0.0, 0.0)
    offset_t_m_range: Annotated[FloatRange, within(-100, 100, "metres")] = (0.0, 0.0)
    # an exact spot instead of region, distance and jitter (None: drawn as above)
    at: Placement | None = None

    @model_validator(mode="after")
    def _one_placement(self) -> "ActorSpec":
        if self.at is not None and self.relative_to is not None:
            raise ValueError("at: an actor placed at an exact spot cannot also be relative_to another")
        if self.at is not None and self.count_range[1] > 1:
            raise ValueError(f"at: an actor placed at an exact spot has count_range at most (1, 1), "
                             f"got {tuple(self.count_range)}")
        return self

    @field_validator("asset")
    @classmethod
    def _known_asset(cls, v: str) -> str:
        try:
            resolve_asset_names(v)
        except UnknownNameError as e:
            raise ValueError(e.problem) from None
        return v

    @field_validator("region")
    @classmethod
    def _known_region(cls, v: str) -> str:
        if v not in REGIONS:
            raise ValueError(f"unknown region {v!r}; expected one of {', '.join(REGIONS)}")
        return v


MAX_DISTRACTORS = 50  # background objects of one frame
DistractorCount = Annotated[int, Field(ge=0, le=MAX_DISTRACTORS)]


class RandomizeSpec(Strict):
    """Domain randomisation (Tremblay et al. 2018) inside the scene's structure: every frame
    draws, from its own stream (``seeding.RANDOMIZE``), new colours for its static surfaces,
    background objects, a light tint and an exposure. People stay on sidewalks and crossings,
    roads stay roads; the draws are kept in the Scene (``Scene.randomization``)."""

    # chance that each static surface kind (road, sidewalk, building, terrain, vegetation, pole,
    # traffic sign, guard rail) takes a random colour (markings and windows follow its hue)
    surfaces: float = Field(default=0.0, ge=0.0, le=1.0)
    # strength of the procedural surface textures (1 = as drawn, 0 = flat, 2 = twice the contrast)
    texture_strength_range: Annotated[FloatRange, within(0, 2, "times the texture contrast")] = (1.0, 1.0)
    # background objects (boxes, cylinders, spheres) on sidewalks and verges: not labelled, class
    # "static", never on the road nor touching an actor; they occlude actors like any static part
    distractors_range: Annotated[tuple[DistractorCount, DistractorCount], AfterValidator(_ordered)] = (0, 0)
    distractor_size_m_range: Annotated[FloatRange, within(0.1, 5, "metres")] = (0.2, 2.5)
    distractor_distance_m_range: Annotated[FloatRange, within(0, 240, "metres along the road")] = (4.0, 60.0)
    # 0..1: how far the sunlight's and the ambient light's colour temperature and tint may stray
    light_tint: float = Field(default=0.0, ge=0.0, le=1.0)
    # a camera's exposure: the rendered image times 2**stops, before the weather stage
    exposure_stops_range: Annotated[FloatRange, within(-4, 4, "stops")] = (0.0, 0.0)


RampCurve = Literal["linear", "log"]


class _Ramp(Strict):
    """One knob's continuous change over a run of a sequence: step k of a run of T frames takes
    the value at u = k / (T - 1) between ``from`` and ``to`` (T = 1: ``from``). ``curve``
    ``linear`` interpolates arithmetically, ``log`` geometrically (for positive values only:
    fog thickening from 1500 m to 30 m loses as much visibility per step in ratio, not in metres).
    Written ``{from: A, to: B, curve: log}``; ``from`` and ``to`` are inclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, serialize_by_alias=True)

    start: float = Field(alias="from")
    to: float
    curve: RampCurve = "linear"

    @field_validator("curve")
    @classmethod
    def _log_needs_positive(cls, v: str, info: ValidationInfo) -> str:
        if v == "log":
            bad = [f"{name} {info.data[key]:g}" for name, key in (("from", "start"), ("to", "to"))
                   if key in info.data and info.data[key] <= 0]
            if bad:
                raise ValueError(f"interpolates geometrically and needs from and to > 0; got {', '.join(bad)} "
                                 f"(use curve: linear)")
        return v

    def at(self, u: float) -> float:
        """The value at ``u`` in 0..1 of the run (exactly ``from`` at 0 and ``to`` at 1)."""
        if u <= 0.0:
            return self.start
        if u >= 1.0:
            return self.to
        if self.curve == "log":
            return float(math.exp(math.log(self.start) + u * (math.log(self.to) - math.log(self.start))))
        return self.start + u * (self.to - self.start)


class VisibilityRamp(_Ramp):
    start: float = Field(alias="from", ge=1.0, le=1e5)  # metres, as visibility_m_range
    to: float = Field(ge=1.0, le=1e5)


class HourRamp(_Ramp):
    start: float = Field(alias="from", ge=0.0, le=24.0)  # local solar time; no wrap past midnight
    to: float = Field(ge=0.0, le=24.0)


class IntensityRamp(_Ramp):
    start: float = Field(alias="from", ge=0.0, le=1.0)  # rain/snow strength, as intensity_range
    to: float = Field(ge=0.0, le=1.0)


RAMP_GROUPS = {"visibility_m": "weather", "hour": "time", "intensity": "weather"}  # knob -> coverage group


class RampSpec(Strict):
    """Conditions that change continuously over each run of ``longtail render --sequence T``
    while the world and its tracks stay the same (fog rolling in, dusk falling, rain setting in).

    Each knob overrides, for every step of the run, the value the frame would otherwise draw
    (``weather.visibility_m_range``, ``time.hour_range``, ``weather.intensity_range``); the
    draw itself still happens, so the rest of the scene (layout, camera, actors) is the one the
    scenario places without the ramp. The values land in the Scene (``weather.visibility_m``,
    ``weather.intensity``, ``sun.hour`` and the sun's elevation and azimuth, which follow the
    hour as ``sampler.sun_from_hour`` says, unless ``time.sun_azimuth_deg_range`` fixes where
    the light comes from), so frame records carry the exact values. Without ``--sequence``
    (T = 1) every frame takes the ``from`` values: a single frame is a run's first step.

    Contradictions are refused: ``visibility_m`` needs a weather kind with a visibility (fog,
    or the haze of rain and snow; clear air is not made foggy behind the file's back),
    ``intensity`` needs rain or snow, and a knob cannot share its group with a ``coverage``
    condition (the coverage would set it for a share of frames, the ramp for every frame)."""

    visibility_m: VisibilityRamp | None = None
    hour: HourRamp | None = None
    intensity: IntensityRamp | None = None

    @model_validator(mode="after")
    def _some_knob(self) -> "RampSpec":
        if not self.knobs():
            raise ValueError(f"a ramp needs at least one of {', '.join(RAMP_GROUPS)}")
        return self

    def knobs(self) -> dict[str, _Ramp]:
        """The knobs the ramp sets, by name."""
        return {k: r for k in RAMP_GROUPS if (r := getattr(self, k)) is not None}

    def values(self, step: int, steps: int) -> dict[str, float]:
        """Each knob's value at step ``step`` of a run of ``steps`` frames (u = step / (steps - 1);
        ``steps`` = 1: the ``from`` values)."""
        u = step / (steps - 1) if steps > 1 else 0.0
        return {k: r.at(u) for k, r in self.knobs().items()}


# Conditions a scenario can ask a share of frames for (``coverage``); one group draws one value.
CONDITIONS: dict[str, tuple[str, dict]] = {
    "day": ("time", {"hour_range": (9.0, 16.0)}),
    "dusk": ("time", {"hour_range": (17.4, 18.3)}),
    "night": ("time", {"hour_range": (21.5, 23.5)}),
    "clear": ("weather", {"kind": "clear"}),
    "fog": ("weather", {"kind": "fog", "visibility_m_range": (40.0, 250.0)}),
}


class Scenario(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    event: str | None = None
    layout: LayoutSpec = LayoutSpec()
    time: TimeSpec = TimeSpec()
    weather: WeatherSpec = WeatherSpec()
    camera: CameraSpec = CameraSpec()
    ego_speed_mps_range: Annotated[FloatRange, within(-100, 100, "metres per second")] = (0.0, 0.0)
    traffic: list[ActorSpec] = []
    events: list[ActorSpec] = []
    coverage: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = {}
    # a real background plate (``longtail plate fit``) instead of a road: with layout kind "plate"
    plate: str | None = None
    max_tries: int = Field(default=100, ge=1, le=10_000)
    # domain randomisation of every frame (None: none; then left out of the scenario's dump)
    randomize: RandomizeSpec | None = None
    # conditions that change continuously over each run of a sequence (None: none; left out of the dump)
    ramp: RampSpec | None = None

    @model_serializer(mode="wrap")
    def _without_absent_blocks(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a scenario without the optional blocks dumps (and digests) exactly as before they existed
        data = handler(self)
        if isinstance(data, dict):
            for block in ("randomize", "ramp"):
                if getattr(self, block) is None:
                    data.pop(block, None)
        return data

    @field_validator("coverage")
    @classmethod
    def _coverage(cls, v: dict[str, float]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, share in v.items():
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}")
            group = CONDITIONS[name][0]
            totals[group] = totals.get(group, 0.0) + share
        for group, total in totals.items():
            if total > 1.0 + 1e-9:
                raise ValueError(f"shares of the {group} conditions add up to {total:g}, more than 1")
        return v

    @model_validator(mode="after")
    def _plate_matches_layout(self) -> "Scenario":
        if (self.plate is None) != (self.layout.kind != "plate"):
            raise ValueError("plate: a plate directory goes with layout kind 'plate' (and only with it)")
        return self

    @model_validator(mode="after")
    def _randomize_renders(self) -> "Scenario":
        if self.randomize is not None and self.layout.kind == "plate":
            raise ValueError("randomize: a plate is a photograph; randomize applies to rendered layouts only")
        return self

    @model_validator(mode="after")
    def _fog_has_visibility(self) -> "Scenario":
        ramped = self.ramp is not None and self.ramp.visibility_m is not None
        if self.weather.kind == "fog" and self.weather.visibility_m_range is None and not ramped:
            raise ValueError("weather.visibility_m_range: fog needs a visibility range in metres, e.g. [40, 250] "
                             "(or a ramp.visibility_m)")
        return self

    @model_validator(mode="after")
    def _ramp_fits(self) -> "Scenario":
        if self.ramp is None:
            return self
        kind = self.weather.kind
        if self.ramp.visibility_m is not None and kind == "clear":
            raise ValueError("ramp.visibility_m: needs weather kind fog (or rain or snow, whose haze it sets); "
                             "the weather kind is 'clear'")
        if self.ramp.intensity is not None and kind not in ("rain", "snow"):
            raise ValueError(f"ramp.intensity: needs weather kind rain or snow; the weather kind is {kind!r}")
        for knob in self.ramp.knobs():
            group = RAMP_GROUPS[knob]
            clash = [name for name in self.coverage if CONDITIONS[name][0] == group]
            if clash:
                raise ValueError(f"ramp.{knob}: coverage {clash[0]!r} sets the {group} of a share of frames, the "
                                 f"ramp sets it for every frame; drop one of them")
        return self

    @model_validator(mode="after")
    def _regions_exist(self) -> "Scenario":
        layout = get_layout(self.layout.kind)
        for group in ("events", "traffic"):
            for k, spec in enumerate(getattr(self, group)):
                if spec.relative_to is not None and (group != "events" or spec.relative_to >= k) and not (
                        group == "traffic" and spec.relative_to < len(self.events)):
                    raise ValueError(f"{group}[{k}].relative_to: {spec.relative_to} does not name an earlier "
                                     f"entry of events")
                if not layout.has_region(spec.region, max(self.layout.lanes_choices)):
                    raise ValueError(f"{group}[{k}].region: {spec.region!r} is not a region of layout "
                                     f"{self.layout.kind!r}")
        return self

    def digest(self) -> str:
        """sha256 of the canonical JSON: identifies the resolved scenario of a dataset."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def with_resolution(self, width: int | None, height: int | None) -> "Scenario":
        """The scenario at another image size; explicit intrinsics scale with it."""
        cam = self.camera
        sx = width / cam.width if width else 1.0
        sy = height / cam.height if height else 1.0
        update: dict[str, float] = {k: v for k, v in (("width", width), ("height", height)) if v}
        for k, scale in (("fx", sx), ("cx", sx), ("fy", sy), ("cy", sy)):
            if getattr(cam, k) is not None:
                update[k] = getattr(cam, k) * scale
        if cam.fy is None and cam.fx is not None and sy != sx:
            update["fy"] = cam.fx * sy
        cam = cam.model_copy(update=update)
        return Scenario.model_validate({**self.model_dump(), "camera": cam.model_dump()})


def validation_message(source: str, err: ValidationError) -> InputError:
    """The first schema error as a one-line InputError (file, field path, value, expectation)."""
    return _validation_message(source, err, hint="check the spelling; see `longtail scenario schema`")


def parse_scenario(data: object, source: str) -> Scenario:
    if not isinstance(data, dict):
        raise InputError(source, None, f"expected a mapping of scenario fields, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise validation_message(source, err) from None
    check_plate(scenario, source)
    return scenario


def check_plate(scenario: Scenario, source: str) -> None:
    """The scenario's plate directory can be read (a scenario file enters here, so a bad plate
    stops before anything is rendered); InputError naming the scenario file and the plate's."""
    if scenario.plate is not None:
        try:
            load_plate_cached(str(Path(scenario.plate).resolve()))
        except InputError as e:
            raise InputError(source, "plate", str(e)) from None


def load_scenario_file(path: Path) -> Scenario:
    path = Path(path)
    return parse_scenario(load_yaml(path, "scenario file"), str(path))


def _catalog_files() -> dict[str, resources.abc.Traversable]:
    root = resources.files("longtail.worlds") / "catalog"
    return {f.name.rsplit(".", 1)[0]: f for f in root.iterdir() if f.name.endswith(".yaml")}


def list_scenarios() -> list[Scenario]:
    """The built-in catalog, sorted by name."""
    out = []
    for name, f in sorted(_catalog_files().items()):
        out.append(parse_scenario(yaml.safe_load(f.read_text()), f"catalog/{name}.yaml"))
    return out


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    files = _catalog_files()
    if name_or_path in files:
        return parse_scenario(yaml.safe_load(files[name_or_path].read_text()), f"catalog/{name_or_path}.yaml")
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") or p.exists():
        if not p.exists():
            raise InputError(name_or_path, None, "scenario file not found")
        return load_scenario_file(p)
    raise ParameterError("scenario", f"unknown scenario {name_or_path!r}; expected a file path or one of: "
                                     f"{', '.join(sorted(files))}")
