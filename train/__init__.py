"""Training and evaluating detectors on synthetic, real and mixed data.

Modules follow the data flow: ``entries`` (the one sample format: an Entry per image, the
DetectionDataset over them), ``datasets`` (longtail, COCO, KITTI, YOLO and MOT data in that format;
``real`` reads the real formats, ``classmap`` maps source classes onto longtail's), ``batching``
(which images make each step's batch: mixes at given shares, staged schedules), ``models`` (torchvision detectors built
from scratch, checkpoints), ``stream_order`` and ``stream`` (a WebDataset shard set streamed in a
seeded, resumable order), ``engine`` (the training loop) and ``evaluate`` (COCO metrics with
per-condition breakdowns). The CLI only wires them.
"""
