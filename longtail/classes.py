"""The one class table: names, ids, colours and which classes are detection targets.

Ids are Cityscapes ``labelIds`` where Cityscapes has the class, so semantic PNGs are
Cityscapes-compatible; the long-tail classes (animal, debris, traffic cone, barrier) take
ids after Cityscapes' last one (33).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from longtail.errors import ParameterError, UnknownNameError


@dataclass(frozen=True)
class SemanticClass:
    id: int
    name: str
    color: tuple[int, int, int]
    thing: bool  # countable objects with instances (vs. "stuff" such as road or sky)
    target: bool  # a detection target: exported as a COCO category
    cityscapes: int | None = None  # labelId in Cityscapes' own table where ``id`` is not in it

    @property
    def cityscapes_id(self) -> int:
        """The id this class takes in a Cityscapes export (cityscapesscripts' label table)."""
        return self.id if self.cityscapes is None else self.cityscapes


CLASSES: tuple[SemanticClass, ...] = (
    SemanticClass(0, "unlabeled", (0, 0, 0), False, False),
    # Cityscapes' void class for static things of no class of their own (the background objects
    # of randomised frames); drawn in the void colour of its "dynamic" sibling so previews show it
    SemanticClass(4, "static", (111, 74, 0), False, False),
    SemanticClass(7, "road", (128, 64, 128), False, False),
    SemanticClass(8, "sidewalk", (244, 35, 232), False, False),
    SemanticClass(11, "building", (70, 70, 70), False, False),
    SemanticClass(14, "guard rail", (180, 165, 180), False, False),
    SemanticClass(17, "pole", (153, 153, 153), False, False),
    SemanticClass(20, "traffic sign", (220, 220, 0), False, False),
    SemanticClass(21, "vegetation", (107, 142, 35), False, False),
    SemanticClass(22, "terrain", (152, 251, 152), False, False),
    SemanticClass(23, "sky", (70, 130, 180), False, False),
    SemanticClass(24, "person", (220, 20, 60), True, True),
    SemanticClass(25, "rider", (255, 0, 0), True, True),
    SemanticClass(26, "car", (0, 0, 142), True, True),
    SemanticClass(27, "truck", (0, 0, 70), True, True),
    SemanticClass(28, "bus", (0, 60, 100), True, True),
    SemanticClass(32, "motorcycle", (0, 0, 230), True, True),
    SemanticClass(33, "bicycle", (119, 11, 32), True, True),
    # long-tail classes Cityscapes has none of: movable things go to its void class "dynamic" (5),
    # which its labelling guide uses for animals and other movable objects; road-works barriers
    # to "fence" (13), the closest class that delimits an area
    SemanticClass(34, "animal", (190, 120, 40), True, True, cityscapes=5),
    SemanticClass(35, "debris", (150, 90, 60), True, True, cityscapes=5),
    SemanticClass(36, "traffic cone", (255, 120, 0), True, True, cityscapes=5),
    SemanticClass(37, "barrier", (230, 200, 60), True, True, cityscapes=13),
)

_BY_NAME = {c.name: c for c in CLASSES}
_BY_ID = {c.id: c for c in CLASSES}


def get_class(name: str) -> SemanticClass:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownNameError("class", name, list(_BY_NAME), "classes") from None


def class_by_id(class_id: int) -> SemanticClass:
    return _BY_ID[class_id]


def list_classes() -> list[str]:
    return [c.name for c in CLASSES]


def target_classes() -> list[SemanticClass]:
    """Detection targets in table order (COCO category ids are the semantic ids)."""
    return [c for c in CLASSES if c.target]


def check_target_classes(names, source: str = "classes") -> tuple[str, ...]:
    """``names`` as a tuple, if they are one or more distinct detection target classes; else an
    InputError naming ``source`` and the choices."""
    names = tuple(names)
    targets = [c.name for c in target_classes()]
    for name in names:
        if name not in targets:
            raise ParameterError(source, f"{name!r} is not a detection target class; expected one of: "
                             f"{', '.join(targets)}")
    if not names or len(set(names)) != len(names):
        raise ParameterError(source, "expected one or more distinct class names")
    return names


# KITTI 2D benchmark difficulty (Geiger et al. 2012): (name, min box height px, max occlusion
# level, max truncation); see shared/REFERENCES.md.
KITTI_DIFFICULTY = (("easy", 40, 0, 0.15), ("moderate", 25, 1, 0.30), ("hard", 25, 2, 0.50))
# Occlusion fraction -> KITTI occlusion level (0 fully visible, 1 partly, 2 largely occluded).
KITTI_OCCLUSION_LEVELS = (0.1, 0.5)


def kitti_occlusion_level(occlusion: float) -> int:
    """KITTI's occlusion level (0, 1, 2) of an occluded fraction 0..1."""
    return int(sum(occlusion > t for t in KITTI_OCCLUSION_LEVELS))


def kitti_difficulty(height_px: float, occluded_level: int, truncation: float) -> str | None:
    """The easiest KITTI difficulty a box of ``height_px`` with KITTI occlusion level
    ``occluded_level`` (0..3) and ``truncation`` (0..1) qualifies for, or None."""
    for name, min_h, max_occ, max_trunc in KITTI_DIFFICULTY:
        if height_px >= min_h and occluded_level <= max_occ and truncation <= max_trunc:
            return name
    return None


def cityscapes_lut() -> np.ndarray:
    """(256,) uint8 lookup table from longtail semantic id to Cityscapes labelId."""
    lut = np.zeros(256, np.uint8)
    for c in CLASSES:
        lut[c.id] = c.cityscapes_id
    return lut


def palette() -> np.ndarray:
    """(256, 3) uint8 lookup table from semantic id to colour, for previews."""
    lut = np.zeros((256, 3), np.uint8)
    for c in CLASSES:
        lut[c.id] = c.color
    return lut
