"""Class maps: source class names (KITTI types, COCO names, ...) onto longtail's detection classes.

A class map is a flat YAML mapping, one source class per key::

    # source class: a longtail detection class | ignore | null
    Car: car
    Van: car
    DontCare: ignore      # an ignore region: detections there are neither required nor penalised
    Tram: null            # dropped (counted, like every class the map does not name)

Values name longtail detection target classes (``longtail.classes.target_classes``); ``ignore``
turns the object into a class-agnostic ignore region; ``null`` drops it. Source classes the map
does not name are dropped too, and loaders count both kinds of drop per source class.

The models predict a contiguous ``LabelSpace`` (index 0 is background); datasets speak longtail
semantic class ids (Cityscapes labelIds, e.g. car 26), and the label space translates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from longtail.errors import InputError, ParameterError
from longtail.readers import load_yaml
from longtail.classes import check_target_classes, get_class, target_classes

IGNORE = "ignore"  # a map value: the object becomes a class-agnostic ignore region
IGNORE_LABEL = -1  # label of a class-agnostic ignore region in a target (it matches every class)

# KITTI types -> longtail. Car and Van are both cars (KITTI splits them; Cityscapes and longtail do
# not). Cyclist -> rider: KITTI's Cyclist box holds the rider and the bicycle together, ours holds
# the rider alone (the bicycle is an object of its own, as in Cityscapes); the rider is the part a
# Cyclist label is about, and the boxes overlap well enough at IoU 0.5 for upright riders, so this
# keeps KITTI cyclists as positives rather than dropping them. Tram and Misc have no longtail class
# and are dropped. The CamelCase types after them are the ones longtail's own KITTI export writes
# for classes KITTI lacks, so a longtail export reads back unchanged.
KITTI: dict[str, str | None] = {
    "Car": "car", "Van": "car", "Truck": "truck", "Pedestrian": "person", "Person_sitting": "person",
    "Cyclist": "rider", "Tram": None, "Misc": None, "DontCare": IGNORE,
    "Bus": "bus", "Bicycle": "bicycle", "Motorcycle": "motorcycle", "Animal": "animal", "Debris": "debris",
    "TrafficCone": "traffic cone", "Barrier": "barrier",
}

# COCO's 80 names (also Ultralytics' default YOLO names): road users keep their class, the ten
# animal classes become animal; everything else (traffic light, stop sign, train, furniture, ...)
# is dropped. longtail's own names (rider, debris, traffic cone, barrier) map to themselves, so
# longtail's COCO and YOLO exports read back unchanged.
COCO: dict[str, str | None] = {
    **{c.name: c.name for c in target_classes()},
    **{name: "animal" for name in ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear",
                                     "zebra", "giraffe")},
    "motorbike": "motorcycle",  # Pascal VOC spelling, common in YOLO name lists
    "traffic light": None, "stop sign": None, "train": None,
}

# MOTChallenge classes (MOT16 onwards, by name; MOT15 files hold pedestrians only). Distractors and
# reflections are people a detector may well find: ignore regions, as the benchmark treats them.
MOT: dict[str, str | None] = {
    "pedestrian": "person", "person_on_vehicle": "rider", "car": "car", "bicycle": "bicycle",
    "motorbike": "motorcycle", "non_motorized_vehicle": None, "static_person": "person",
    "distractor": IGNORE, "occluder": None, "occluder_on_ground": None, "occluder_full": None,
    "reflection": IGNORE,
}
# MOT16+ gt.txt class column (1-based) -> name.
MOT_CLASS_IDS = ("pedestrian", "person_on_vehicle", "car", "bicycle", "motorbike", "non_motorized_vehicle",
                 "static_person", "distractor", "occluder", "occluder_on_ground", "occluder_full", "reflection")

BUILTIN: dict[str, dict[str, str | None]] = {"kitti": KITTI, "coco": COCO, "mot": MOT}


@dataclass(frozen=True)
class ClassMap:
    """Source class name -> longtail class name, ``IGNORE`` or None (dropped).

    Attributes:
        source: where the map came from (a file path or a built-in name), for messages.
        table: the mapping; names it lacks are dropped.
    """

    source: str
    table: Mapping[str, str | None]

    def label(self, name: str) -> int | None:
        """Longtail semantic id of a source class, ``IGNORE_LABEL`` for an ignore region, None if
        dropped."""
        target = self.table.get(name)
        if target is None:
            return None
        return IGNORE_LABEL if target == IGNORE else get_class(target).id


def _check_table(table: object, source: str) -> dict[str, str | None]:
    if not isinstance(table, dict) or not table:
        raise InputError(source, None, "expected a non-empty mapping of source class -> longtail class")
    names = [c.name for c in target_classes()]
    out = {}
    for key, value in table.items():
        if value is not None and value != IGNORE and value not in names:
            raise InputError(source, str(key), f"unknown longtail class {value!r}; expected one of: "
                             f"{', '.join(names)}, {IGNORE}, null")
        out[str(key)] = value
    return out


def builtin_class_map(name: str) -> ClassMap:
    """One of the built-in maps (``kitti``, ``coco``, ``mot``)."""
    try:
        return ClassMap(name, dict(BUILTIN[name]))
    except KeyError:
        raise ParameterError("class_map", f"unknown class map {name!r}; expected a YAML file or one of: "
                         f"{', '.join(BUILTIN)}") from None


def load_class_map(path: Path) -> ClassMap:
    """A class map from a YAML file; an unknown longtail class raises InputError naming the key."""
    path = Path(path)
    data = load_yaml(path, "YAML class map")
    return ClassMap(str(path), _check_table(data, str(path)))


def class_map(spec: str | Path | ClassMap | None, default: str) -> ClassMap:
    """Resolve a class-map argument: a ClassMap, a built-in name, a YAML path, or None (``default``)."""
    if isinstance(spec, ClassMap):
        return spec
    if spec is None:
        return builtin_class_map(default)
    if str(spec) in BUILTIN:
        return builtin_class_map(str(spec))
    return load_class_map(Path(spec))


@dataclass(frozen=True)
class LabelSpace:
    """The classes a model predicts: model label ``i + 1`` is ``classes[i]`` (0 is background).

    Attributes:
        classes: longtail detection target class names, in model order.
    """

    classes: tuple[str, ...] = tuple(c.name for c in target_classes())

    def __post_init__(self):
        object.__setattr__(self, "classes", check_target_classes(self.classes))

    @property
    def num_classes(self) -> int:
        """Model outputs including background."""
        return len(self.classes) + 1

    @property
    def semantic_ids(self) -> np.ndarray:
        """(K,) int64 longtail semantic ids in model order."""
        return np.array([get_class(c).id for c in self.classes], np.int64)

    def to_model(self, labels: np.ndarray) -> np.ndarray:
        """(N,) semantic ids -> (N,) model labels 1..K; 0 where the class is not in the space."""
        lut = np.zeros(256, np.int64)
        lut[self.semantic_ids] = np.arange(1, len(self.classes) + 1)
        labels = np.asarray(labels, np.int64)
        return np.where((labels >= 0) & (labels < 256), lut[np.clip(labels, 0, 255)], 0)

    def to_semantic(self, labels: np.ndarray) -> np.ndarray:
        """(N,) model labels 1..K -> (N,) semantic ids."""
        return self.semantic_ids[np.asarray(labels, np.int64) - 1]

