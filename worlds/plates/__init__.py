"""Real plates: a background image from real footage, the camera that took it, and the depth of
its ground, standing in for a road layout (actors are placed on the plate's ground and drawn over
the plate with its camera by the renderer, ``render/plate.py``).

One home, four modules: ``footage`` (frames, median background, occluder masks, MOT
correspondences), ``camera`` (the plate camera from a YAML file, correspondences or the horizon),
``ground`` (ground-plane depth, sky region, airlight) and ``directory`` (the ``Plate``, writing,
reading and fitting a plate directory; ``load_camera`` for other parts that need only the camera).

A plate directory holds::

    plate.png       8-bit RGB: the per-pixel temporal median of the frames (moving things vanish)
    depth.png       16-bit z-depth along the optical axis, metres x 256, 0 = none
                    (longtail.depth, as in rendered datasets)
    camera.json     {"format", "format_version", "camera": Camera.model_dump(), "fit": FitReport,
                     "frames": {"source", "count", "stride"}}
    sky.json        {"airlight": [r, g, b], "from": region}: haze colour on plate.png's scale / 255,
                    0..1, estimated "above_horizon" or, with no sky in view, from the "top_rows"
    occluders.png   optional 8-bit mask, 255 = static occluder in front of inserted objects
    regions.png     optional mask a user adds: where inserted actors may stand

Frames: the camera's world is right-handed, metres, z up, ground z = 0 (see ``camera``).
"""

from longtail.worlds.plates.camera import FitReport, Horizon, read_camera_file, read_correspondences
from longtail.worlds.plates.directory import (
    FILES, Plate, fit_camera, fit_plate, load_camera, load_plate, load_plate_cached, write_plate,
)
from longtail.worlds.plates.footage import (
    correspondences_from_mot, footage_files, load_frames, median_background, read_frames, read_occluders,
    sample_footage_files,
)
from longtail.worlds.plates.ground import (
    PRIOR_FAR_M, estimate_airlight, ground_depth, plate_depth, scaled_camera, sky_region,
)

__all__ = [
    "Plate", "Horizon", "FitReport", "FILES", "footage_files", "sample_footage_files", "read_frames", "load_frames",
    "median_background", "ground_depth", "plate_depth", "scaled_camera", "PRIOR_FAR_M",
    "sky_region", "estimate_airlight", "read_occluders",
    "correspondences_from_mot", "fit_camera", "fit_plate", "write_plate", "load_plate", "load_plate_cached",
    "load_camera", "read_camera_file", "read_correspondences",
]
