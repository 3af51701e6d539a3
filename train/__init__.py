"""Training and evaluating detectors on synthetic, real and mixed data.

Modules follow the data flow: ``datasets`` (one sample format for longtail, COCO, KITTI, YOLO and
MOT data; ``classmap`` maps source classes onto longtail's), ``sampler`` (which images make each
step's batch: mixes at given shares, staged schedules), ``models`` (torchvision detectors built
from scratch, checkpoints), ``engine`` (the training loop) and ``evaluate`` (COCO metrics with
per-condition breakdowns). The CLI only wires them.
"""
