"""Test-time adaptation along a sequence (``longtail evaluate --adapt bn``): the detector's
batch-norm statistics follow the footage online while conditions drift, the most reliable
baseline of continual test-time adaptation in published comparisons (Schneider et al. 2020,
"Improving robustness against common corruptions by covariate shift adaptation"; Mirza et al.
2022, DUA; the "BN adapt" baseline of CoTTA, Wang et al. 2022).

Frames are taken in the dataset's order (a MOT sequence's frame order, a rendered dataset's frame
order). For each frame, first the frame goes through the detector with only its batch-norm
layers in training mode, so each layer's running mean and variance move towards the frame's
statistics by ``momentum`` (running = (1 - m) running + m frame), nothing else changes and no
label is read; then the frame is predicted with the updated statistics, as a deployed detector
would see it. The statistics carry over from frame to frame (never reset: a continual shift),
starting from the training statistics. ``momentum`` 0 is no adaptation at all, exactly. A layer
that sees a single value per channel (the 1 x 1 maps at the end of SSD's extra layers) has no
statistics to learn from one frame and keeps its own.

Frozen batch norm (torchvision's ``FrozenBatchNorm2d``, in detectors built on pretrained
backbones) is turned into ordinary batch norm with the same statistics and affine parameters
first, on a copy: the caller's model is never changed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from longtail.errors import ParameterError
from longtail.train.classmap import LabelSpace
from longtail.train.entries import DetectionDataset
from longtail.train.evaluate import coco_results, evaluate_detections

METHODS = ("bn",)
DEFAULT_MOMENTUM = 0.1  # PyTorch's own BatchNorm default: a frame's weight in the running statistics


def _unfreeze(frozen: FrozenBatchNorm2d) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(frozen.weight.numel(), eps=frozen.eps)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(frozen, name))
    return bn


def adaptable(model: nn.Module) -> tuple[nn.Module, list[nn.modules.batchnorm._BatchNorm]]:
    """A copy of ``model`` whose frozen batch norms are ordinary ones, and its batch-norm layers."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FrozenBatchNorm2d):
                setattr(parent, name, _unfreeze(child))
    return model, [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class BatchNormAdapter:
    """A copy of a detector whose batch-norm statistics follow the frames it is shown.

    Attributes:
        model: the adapting copy (eval mode; its batch norms switch to training mode only for
            the statistics pass).
        norms: its batch-norm layers.
        momentum: each frame's weight in the running statistics.
    """

    def __init__(self, model: nn.Module, momentum: float = DEFAULT_MOMENTUM, device: str | torch.device = "cpu"):
        if not 0.0 <= momentum <= 1.0:
            raise ParameterError("adapt_momentum", f"expected a momentum in [0, 1], got {momentum}")
        self.model, self.norms = adaptable(model)
        if not self.norms:
            raise ParameterError("adapt", "the model has no batch-norm layer whose statistics could adapt")
        self.momentum = momentum
        self.model.to(torch.device(device)).eval()
        for m in self.norms:
            m.momentum = momentum
            m.track_running_stats = True

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> dict:
        """The detections of one (3, H, W) float image in [0, 1], after its statistics pass."""
        hooks = [m.register_forward_pre_hook(_one_value_stays) for m in self.norms]
        for m in self.norms:  # the statistics pass: only the batch norms learn, from this frame alone
            m.train()
        try:
            self.model([image])
        finally:
            for m in self.norms:
                m.eval()
            for h in hooks:
                h.remove()
        return self.model([image])[0]


def _one_value_stays(module: nn.Module, inputs: tuple) -> None:
    """A layer that sees one value per channel (a 1 x 1 map of one frame, in SSD's last extra
    layers) has no statistics to learn from a frame: it keeps its own."""
    x = inputs[0]
    if x.numel() // max(1, x.shape[1]) <= 1:
        module.training = False


def predict_adapted(model: nn.Module, dataset: DetectionDataset, labels: LabelSpace,
                    device: str | torch.device = "cpu", momentum: float = DEFAULT_MOMENTUM) -> list[dict]:
    """COCO results of ``model`` on every image of ``dataset`` in order, its batch-norm statistics
    updated online before each image (module docstring); ``model`` itself is left unchanged."""
    adapter = BatchNormAdapter(model, momentum, device)
    out: list[dict] = []
    for i in range(len(dataset)):
        image = dataset.image(i).to(torch.device(device)).float().div_(255)
        out += coco_results(adapter(image), dataset.entries[i].image_id, labels)
    return out


def evaluate_adapted(model: nn.Module, dataset: DetectionDataset, device: str | torch.device = "cpu", *,
                     labels: LabelSpace = LabelSpace(), method: str = "bn", momentum: float = DEFAULT_MOMENTUM,
                     **kwargs) -> dict:
    """``evaluate`` with test-time adaptation along the dataset (``predict_adapted``): the same
    metrics and breakdowns, plus ``adapt`` {method, momentum, images}."""
    if method not in METHODS:
        raise ParameterError("adapt", f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    result = evaluate_detections(dataset, predict_adapted(model, dataset, labels, device, momentum), **kwargs)
    return {**result, "adapt": {"method": method, "momentum": momentum, "images": len(dataset),
                                "order": "dataset order, statistics carried from frame to frame"}}
