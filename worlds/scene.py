"""The concrete Scene: everything one frame needs, as plain, frozen, JSON-serialisable data.

Frames: right-handed world, metres, z up; the road runs along +x, ego at the origin driving +x,
y points left. Camera coordinates follow OpenCV: x right, y down, z forward (optical axis).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Iterable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer, \
    model_validator

from longtail.classes import list_classes
from longtail.conditions import WeatherKind

Vec3 = tuple[float, float, float]
Coord = Annotated[float, Field(ge=-1e5, le=1e5)]  # metres: a world 200 km across


def vec3(values: Iterable[float]) -> Vec3:
    """Three floats from any iterable of three numbers (an array row, a list from a file)."""
    x, y, z = (float(v) for v in values)
    return x, y, z


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Camera(Frozen):
    """A pinhole camera: intrinsics in pixels, pose in the world.

    ``yaw`` turns left from +x about z, ``pitch`` tilts the optical axis down, ``roll`` turns the
    image clockwise about the optical axis (all radians). Pixel (u, v) covers [u, u+1) x [v, v+1);
    the principal point (cx, cy) is in the same continuous coordinates.
    """

    name: str = "front"
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    fx: float = Field(ge=0.1, le=1e6)
    fy: float = Field(ge=0.1, le=1e6)
    cx: float = Field(ge=-1e5, le=1e5)
    cy: float = Field(ge=-1e5, le=1e5)
    position: tuple[Coord, Coord, Coord]
    yaw: float = Field(default=0.0, ge=-100.0, le=100.0)  # radians; any turn, within reason
    pitch: float = Field(default=0.0, ge=-100.0, le=100.0)
    roll: float = Field(default=0.0, ge=-100.0, le=100.0)
    near: float = Field(default=0.1, gt=0.0, le=10.0)
    far: float = Field(default=250.0, gt=0.0, le=1e5)

    @model_validator(mode="after")
    def _near_before_far(self) -> "Camera":
        if not self.near < self.far:
            raise ValueError(f"near plane {self.near} m must lie before the far plane {self.far} m")
        return self

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def world_from_camera(self) -> np.ndarray:
        """(4, 4) float64 transform taking camera (OpenCV) coordinates to world coordinates."""
        cy_, sy_ = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        rz = np.array([[cy_, -sy_, 0], [sy_, cy_, 0], [0, 0, 1]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])  # +pitch tilts +x towards -z
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        body_from_cam = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        T = np.eye(4)
        T[:3, :3] = rz @ ry @ rx @ body_from_cam
        T[:3, 3] = self.position
        return T

    def level(self) -> "Camera":
        """The same camera turned level: same position and heading, no pitch or roll."""
        return self.model_copy(update={"pitch": 0.0, "roll": 0.0})

    def camera_from_world(self) -> np.ndarray:
        T = self.world_from_camera()
        inv = np.eye(4)
        inv[:3, :3] = T[:3, :3].T
        inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
        return inv

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) world points; return (N, 2) pixel coordinates and (N,) depths (z, m)."""
        pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
        T = self.camera_from_world()
        cam = pts @ T[:3, :3].T + T[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.fx * cam[:, 0] / z + self.cx, self.fy * cam[:, 1] / z + self.cy], 1)
        return uv, z


class Sun(Frozen):
    hour: float  # local solar time, 0-24
    elevation: float  # radians above the horizon (negative at night)
    azimuth: float  # radians, direction the sunlight comes from, counter-clockwise from +x


class Weather(Frozen):
    kind: WeatherKind = "clear"
    visibility_m: float | None = None  # meteorological visibility (fog), metres
    intensity: float = 0.0  # 0..1 strength for rain/snow


class Layout(Frozen):
    kind: str
    lanes: int
    lane_width: float
    ego_lane: int  # 0 = rightmost lane
    length: float  # metres of road ahead of the ego
    seed: int  # seeds the roadside props (buildings, trees, poles) deterministically
    radius: float | None = None  # curve: signed radius in metres (positive bends left)
    junction_at: float | None = None  # curve start / junction centre, metres ahead of the ego
    plate: str | None = None  # kind "plate": the plate directory standing in for a road


class Actor(Frozen):
    """One object of the scene. ``size`` is (length, width, height) of its 3D box in metres;
    ``position`` is the centre of the box's bottom face in the world; ``yaw`` its heading."""

    id: int  # instance id (>= 1), stable across a sequence: the track id
    asset: str
    cls: str
    size: Vec3
    position: Vec3
    yaw: float
    color: Vec3  # base colour, linear 0..1 RGB
    variant: int = 0  # asset shape variant (pose, load layout)
    role: Literal["traffic", "event"] = "traffic"
    speed: float = 0.0  # m/s along the heading, for sequences
    parent: int | None = None  # a rider's two-wheeler: they move together and may touch

    def box_corners(self) -> np.ndarray:
        """(8, 3) world corners of the 3D box."""
        l, w, h = self.size
        xs, ys, zs = np.meshgrid([-l / 2, l / 2], [-w / 2, w / 2], [0.0, h], indexing="ij")
        local = np.stack([xs.ravel(), ys.ravel(), zs.ravel()], 1)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        return local @ rot.T + np.asarray(self.position)


Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Gain = Annotated[float, Field(ge=0.0, le=2.0)]
Extent = Annotated[float, Field(gt=0.0, le=50.0)]


class Distractor(Frozen):
    """A background object of a randomised frame: no instance id, semantic class "static".
    ``position``: the centre of its bottom; ``size``: (l, w, h) metres of its box (a cylinder's
    diameter is l = w, a sphere's l = w = h); ``color``: linear 0..1 RGB."""

    shape: Literal["box", "cylinder", "sphere"]
    position: tuple[Coord, Coord, Coord]
    size: tuple[Extent, Extent, Extent]
    yaw: float = Field(default=0.0, ge=-100.0, le=100.0)
    color: tuple[Unit, Unit, Unit]


class Randomization(Frozen):
    """What a scenario's ``randomize`` block drew for one frame (see ``RandomizeSpec``)."""

    # static semantic class -> the colour (linear RGB) its main surface takes; the class's other
    # parts keep their brightness relative to it (markings on a road, windows in a facade)
    surfaces: dict[str, tuple[Unit, Unit, Unit]] = {}
    texture_strength: float = Field(default=1.0, ge=0.0, le=2.0)  # 1 = the renderer's textures as they are
    distractors: tuple[Distractor, ...] = ()
    sun_tint: tuple[Gain, Gain, Gain] = (1.0, 1.0, 1.0)  # times the sunlight's colour
    ambient_tint: tuple[Gain, Gain, Gain] = (1.0, 1.0, 1.0)  # times every lit surface (white balance)
    exposure_stops: float = Field(default=0.0, ge=-4.0, le=4.0)  # the image times 2**stops, saturating at 1

    @field_validator("surfaces")
    @classmethod
    def _known_classes(cls, v: dict[str, tuple[float, float, float]]) -> dict[str, tuple[float, float, float]]:
        unknown = sorted(set(v) - set(list_classes()))
        if unknown:
            raise ValueError(f"unknown classes {unknown}")
        return v


class Scene(Frozen):
    scenario: str
    seed: int
    index: int
    event: str | None = None
    layout: Layout
    camera: Camera
    sun: Sun
    weather: Weather
    actors: tuple[Actor, ...] = ()
    ego_speed: float = 0.0  # m/s of the camera's vehicle along the road, for sequences
    ego: Vec3 | None = None  # (x, y, heading) of the camera's vehicle; None for a roadside camera
    step: int = 0  # frame number within its sequence (0 for single frames)
    time_s: float = 0.0  # seconds since the sequence's first frame
    randomization: Randomization | None = None  # the scenario's ``randomize`` draws, if it has the block

    @model_serializer(mode="wrap")
    def _without_absent_randomization(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a frame without randomisation records (and renders) exactly as before the field existed
        data = handler(self)
        if self.randomization is None and isinstance(data, dict):
            data.pop("randomization", None)
        return data

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> "Scene":
        return cls.model_validate_json(text)

    @property
    def is_night(self) -> bool:
        return self.sun.elevation < math.radians(-4.0)
