"""The frame record (``labels/NNNNNN.json``) as a schema, and its one reader.

The labelers write the record; exporters, ``verify``, ``stats``, ``augment`` and training read it
back from disk, where anything may have happened to it. ``read_record`` is the one place a record
enters: it returns the plain dict the consumers use, or one ``DatasetError`` naming the file, the
field and what was expected. Fields the consumers do not read are passed through unchecked
(``extra="allow"``), so records keep every key they were written with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from longtail.classes import list_classes
from longtail.errors import DatasetError, InputError
from longtail.readers import parse_json, read_bytes, validation_message

Finite = float  # JSON numbers: parse_json refuses NaN and Infinity
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Box = tuple[Finite, Finite, Finite, Finite]
Vec3 = tuple[Finite, Finite, Finite]
Row3 = tuple[Finite, Finite, Finite]
Row4 = tuple[Finite, Finite, Finite, Finite]
MAX_SIDE = 16384


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class Rle(_Record):
    counts: str
    size: tuple[Annotated[int, Field(ge=1, le=MAX_SIDE)], Annotated[int, Field(ge=1, le=MAX_SIDE)]]


class Box3DCamera(_Record):
    center: Vec3
    bottom_center: Vec3
    size_hwl: Vec3
    rotation_y: Finite
    alpha: Finite


class ObjectRecord(_Record):
    id: Annotated[int, Field(ge=1, le=65535)]
    track_id: int
    cls: str = Field(alias="class")
    asset: str
    role: str = "traffic"
    bbox: Box | None
    area: Annotated[int, Field(ge=0)]
    rle: Rle | None
    occlusion: Unit
    truncation: Unit
    distance_m: Annotated[float, Field(ge=0.0)]
    kitti_occluded: Annotated[int, Field(ge=0, le=3)]
    kitti_difficulty: Literal["easy", "moderate", "hard"] | None = None
    box3d_camera: Box3DCamera
    visibility: Unit = 1.0

    @field_validator("cls")
    @classmethod
    def _known_class(cls, v: str) -> str:
        if v not in list_classes():
            raise ValueError(f"unknown class; expected one of: {', '.join(list_classes())}")
        return v

    @model_validator(mode="after")
    def _box_with_pixels(self) -> "ObjectRecord":
        if self.area > 0 and (self.bbox is None or self.rle is None):
            raise ValueError("an object with visible pixels needs its bbox and rle")
        if self.bbox is not None and not (self.bbox[0] <= self.bbox[2] and self.bbox[1] <= self.bbox[3]):
            raise ValueError(f"bbox {list(self.bbox)}: expected [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1")
        return self


class CameraRecord(_Record):
    width: Annotated[int, Field(ge=1, le=MAX_SIDE)]
    height: Annotated[int, Field(ge=1, le=MAX_SIDE)]
    K: tuple[Row3, Row3, Row3]
    world_from_camera: tuple[Row4, Row4, Row4, Row4]
    camera_from_world: tuple[Row4, Row4, Row4, Row4] | None = None
    camera_from_level: tuple[Row3, Row3, Row3] | None = None


def _inside(rel: str) -> str:
    """A path relative to the dataset root that stays inside it (forward slashes)."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\\" in rel or ".." in parts or ":" in parts[0]:
        raise ValueError(f"{rel!r}: expected a path inside the dataset, e.g. rgb/000000.png")
    return rel


Inside = Annotated[str, AfterValidator(_inside)]


class Files(_Record):
    rgb: Inside
    depth: Inside
    instance: Inside
    semantic: Inside


class Attributes(_Record):
    scenario: str
    time_of_day: str
    weather: str


class FrameRecord(_Record):
    frame: Annotated[int, Field(ge=0)]
    seed: int | None = None
    files: Files
    camera: CameraRecord
    attributes: Attributes
    objects: list[ObjectRecord]

    @model_validator(mode="after")
    def _unique_ids(self) -> "FrameRecord":
        ids = [o.id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError("objects: instance ids must be unique within a frame")
        for o in self.objects:
            if o.rle is not None and tuple(o.rle.size) != (self.camera.height, self.camera.width):
                raise ValueError(f"objects (id {o.id}): rle size {list(o.rle.size)} is not the image's "
                                 f"[{self.camera.height}, {self.camera.width}]")
        return self


def check_record(data: object, source: str, index: int | None = None) -> dict:
    """``data`` if it is a valid frame record (of frame ``index``, when given); else DatasetError."""
    if not isinstance(data, dict):
        raise DatasetError(source, None, "expected a JSON object (a frame record)")
    try:
        FrameRecord.model_validate(data)
    except ValidationError as err:
        e = validation_message(source, err)
        raise DatasetError(e.source, e.field, e.problem) from None
    if index is not None and data["frame"] != index:
        raise DatasetError(source, "frame", f"{data['frame']!r}, expected {index}")
    return data


def parse_record(raw: bytes, source: str, index: int | None = None) -> dict:
    """A frame record from the bytes of its file."""
    try:
        data = parse_json(raw, source)
    except InputError as e:
        raise DatasetError(e.source, e.field, e.problem) from None
    return check_record(data, source, index)


def read_record(path: Path, index: int | None = None) -> dict:
    """The frame record at ``path`` (of frame ``index``, when given), checked; else DatasetError."""
    try:
        raw = read_bytes(path, "frame record")
    except InputError as e:
        raise DatasetError(e.source, e.field, e.problem) from None
    return parse_record(raw, str(path), index)
