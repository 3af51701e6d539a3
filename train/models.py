"""The detector zoo: torchvision detection models, always built from scratch (no downloads).

``build_model(name, num_classes)`` calls ``torchvision.models.get_model`` with ``weights=None``
and ``weights_backbone=None``; Faster R-CNN gets the faster training settings measured on these
machines (shared/REFERENCES.md, "Training on these machines": ``box_batch_size_per_image=128``
and ``rpn_post_nms_top_n_train=500`` cut a step from 3.9 s to 1.2 s at no visible loss).
``ModelSpec`` names a detector completely (model, classes, input size, options) and is what a
checkpoint stores, so a checkpoint alone rebuilds its model.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, TypeVar
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models.detection.faster_rcnn import TwoMLPHead

from longtail.errors import ParameterError
from longtail.train.classmap import LabelSpace

DEFAULT_MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"
# Mask and keypoint R-CNN need masks or keypoints in every training target; the zoo trains boxes.
_NEEDS_MORE_THAN_BOXES = ("maskrcnn", "keypointrcnn")
# Per model family (name prefix): training settings that differ from torchvision's defaults.
FAST_DEFAULTS: dict[str, dict] = {
    "fasterrcnn": {"box_batch_size_per_image": 128, "rpn_post_nms_top_n_train": 500},
}
# ``box_head_norm`` (a longtail option, not torchvision's): "layer" puts a LayerNorm before each
# ReLU of Faster R-CNN's two-layer RoI box head (``LayerNormBoxHead``); "none" is torchvision's head;
# "auto" (the commands' default) is "layer" for a fasterrcnn_* model and "none" for the others.
# A spec stores the head it was built with ("none" by leaving the option out, as before it existed).
BOX_HEAD_NORMS = ("none", "layer")
BOX_HEAD_AUTO = "auto"


class LayerNormBoxHead(nn.Module):
    """torchvision's ``TwoMLPHead`` (fc6, fc7, ReLU after each) with a LayerNorm before each ReLU.

    Trained from scratch on rendered scenes, the plain head's fc6 stops firing: the RoI features
    grow until nearly every fc6 input is below zero, and a ReLU that never fires gets no gradient
    (README, "Synthetic-only at the converged budget"). Normalising each RoI's fc6 and fc7 outputs
    keeps about half of them above zero whatever the features' scale. ``fc6``/``fc7`` keep their
    names (and torchvision's initialisation), so checkpoint parts line up with the plain head's.
    """

    def __init__(self, fc6: nn.Linear, fc7: nn.Linear):
        super().__init__()
        self.fc6, self.fc7 = fc6, fc7
        self.norm6, self.norm7 = nn.LayerNorm(fc6.out_features), nn.LayerNorm(fc7.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm6(self.fc6(x.flatten(start_dim=1))))
        return torch.relu(self.norm7(self.fc7(x)))


def check_box_head_norm(norm: str, model: str) -> str:
    """The box head ``norm`` gives ``model``: ``norm`` itself if it is one of ``BOX_HEAD_NORMS``
    and ``model`` has the head it normalises; ``auto`` is ``layer`` for a Faster R-CNN (whose plain
    head stops firing when trained on rendered scenes) and ``none`` for the others."""
    has_head = model.startswith("fasterrcnn")
    if norm == BOX_HEAD_AUTO:
        return "layer" if has_head else "none"
    if norm not in BOX_HEAD_NORMS:
        raise ParameterError("box_head_norm", f"expected one of {', '.join((BOX_HEAD_AUTO, *BOX_HEAD_NORMS))}, "
                             f"got {norm!r}")
    if norm != "none" and not has_head:
        raise ParameterError("box_head_norm", f"{model} has no two-layer RoI box head to normalise; "
                             "expected a fasterrcnn_* model")
    return norm


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Preset = TypeVar("Preset", bound="DataclassInstance")


def preset_with(presets: Mapping[str, Preset], name: str, overrides: Mapping[str, Any]) -> Preset:
    """Preset ``name`` of ``presets`` (dataclasses with a ``box_head_norm`` field: ``compare``'s
    and ``loop``'s) with the ``overrides`` that are not None; the box head is ``auto``, resolved
    for the model asked for rather than the preset's."""
    if name not in presets:
        raise ParameterError("preset", f"unknown preset {name!r}; expected one of {', '.join(presets)}")
    return replace(presets[name], **{"box_head_norm": BOX_HEAD_AUTO,
                                     **{k: v for k, v in overrides.items() if v is not None}})


def box_head_options(norm: str) -> dict[str, str]:
    """``ModelSpec.options`` entry for a box head (none for the default, so older specs compare equal)."""
    return {} if norm == "none" else {"box_head_norm": norm}


def _set_box_head_norm(model: nn.Module, norm: str) -> None:
    if norm == "none":
        return
    roi_heads: Any = model.roi_heads
    head = roi_heads.box_head
    assert isinstance(head, TwoMLPHead), type(head)  # every fasterrcnn_* builder makes one
    roi_heads.box_head = LayerNormBoxHead(head.fc6, head.fc7)


def list_models() -> list[str]:
    """Names of the box detectors ``build_model`` accepts."""
    names = torchvision.models.list_models(module=torchvision.models.detection)
    return [n for n in names if not n.startswith(_NEEDS_MORE_THAN_BOXES)]


def check_model_name(name: str) -> str:
    if name not in list_models():
        raise ParameterError("model", f"unknown model {name!r}; expected one of: {', '.join(list_models())}")
    return name


def _is_ssd(name: str) -> bool:
    return name.startswith("ssd")


def _size_options(name: str, img_size: tuple[int, int] | None) -> dict:
    """R-CNN, RetinaNet and FCOS resize so the short side is min(H, W), the long side at most
    max(H, W); SSD's input size is fixed after construction (``_set_ssd_size``)."""
    if img_size is None or _is_ssd(name):
        return {}
    h, w = img_size
    return {"min_size": min(h, w), "max_size": max(h, w)}


def _set_ssd_size(model: nn.Module, img_size: tuple[int, int]) -> None:
    # SSD builders fix 300x300 / 320x320 and refuse a size argument; the anchors are relative to
    # the image, so resizing the input transform is all a different size needs.
    h, w = img_size
    # a GeneralizedRCNNTransform; torch types ``Module.__getattr__`` as ``Tensor | Module``
    transform: Any = model.transform
    transform.min_size = (min(h, w),)
    transform.max_size = max(h, w)
    transform.fixed_size = (w, h)  # GeneralizedRCNNTransform reads fixed_size as (width, height)


def build_model(name: str = DEFAULT_MODEL, num_classes: int = LabelSpace().num_classes, *,
                img_size: tuple[int, int] | None = None, seed: int | None = None, **kw) -> nn.Module:
    """A torchvision detector with random weights.

    Args:
        name: a name from ``list_models()``.
        num_classes: outputs including background (longtail classes + 1).
        img_size: (H, W) the model resizes its inputs to (None: the model's own default).
        seed: seeds the weight initialisation (torch's global generator is restored afterwards).
        **kw: options for the torchvision builder; they override ``FAST_DEFAULTS``; and
            ``box_head_norm`` (one of ``BOX_HEAD_NORMS``, Faster R-CNN only).
    """
    check_model_name(name)
    box_head_norm = check_box_head_norm(kw.pop("box_head_norm", "none"), name)
    options = {**next((v for k, v in FAST_DEFAULTS.items() if name.startswith(k)), {}),
               **_size_options(name, img_size), **kw}
    # torchvision initialises layers from torch's global generator; fork it so building a model
    # neither depends on nor disturbs anyone else's random state.
    backbone = options.pop("weights_backbone", None)
    backbone = None if backbone is None else _cached_weight(name, backbone)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            model = torchvision.models.get_model(name, weights=None, weights_backbone=backbone,
                                                 num_classes=num_classes, **options)
        except TypeError as e:
            raise ParameterError("model", f"{name}: bad model option ({e})") from None
    if img_size is not None and _is_ssd(name):
        _set_ssd_size(model, img_size)
    _set_box_head_norm(model, box_head_norm)
    return model


def _backbone_enum(name: str):
    """The weights enum of a detection builder's ``weights_backbone`` argument."""
    param = inspect.signature(torchvision.models.get_model_builder(name)).parameters.get("weights_backbone")
    if param is None:
        raise ParameterError("pretrained", f"{name} has no pretrained backbone option")
    ann = param.annotation
    for arg in getattr(ann, "__args__", (ann,)):
        if isinstance(arg, type) and issubclass(arg, torchvision.models.WeightsEnum):
            return arg
    raise ParameterError("pretrained", f"cannot tell which backbone weights {name} takes")


def weights_file(weight) -> Path:
    """Where torch's cache keeps a torchvision weights file (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weight.url).path)


def _cached_weight(name: str, weight: str):
    try:
        w = torchvision.models.get_weight(weight)
    except (ValueError, AttributeError, KeyError):
        raise ParameterError("pretrained", f"unknown torchvision weights {weight!r}") from None
    path = weights_file(w)
    if not path.is_file():
        raise ParameterError("pretrained", f"the backbone weights of {name} ({path.name}) are not in the local "
                         f"torch cache ({path.parent}); longtail never downloads: copy the file there, or train "
                         "without --pretrained")
    return w


def cached_backbone_weights(name: str) -> str:
    """The name (``Enum.MEMBER``) of ``name``'s default ImageNet backbone weights, checked to be in
    the local torch cache (InputError naming the file and folder if not; nothing is downloaded)."""
    enum = _backbone_enum(check_model_name(name))
    weight = f"{enum.__name__}.{enum.DEFAULT.name}"
    _cached_weight(name, weight)
    return weight


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a detector's architecture and outputs.

    Attributes:
        name: torchvision model name.
        classes: longtail class names the model predicts (label i + 1 = classes[i]).
        img_size: (H, W) input size, or None for the model's default.
        options: extra builder options (JSON values).
    """

    name: str = DEFAULT_MODEL
    classes: tuple[str, ...] = LabelSpace().classes
    img_size: tuple[int, int] | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        check_model_name(self.name)
        object.__setattr__(self, "classes", LabelSpace(tuple(self.classes)).classes)
        if self.img_size is not None:
            h, w = (int(v) for v in self.img_size)
            if h < 32 or w < 32:
                raise ParameterError("img_size", f"expected H W of at least 32 pixels each, got {h} {w}")
            object.__setattr__(self, "img_size", (h, w))

    @property
    def labels(self) -> LabelSpace:
        return LabelSpace(self.classes)

    def build(self, seed: int | None = None) -> nn.Module:
        return build_model(self.name, self.labels.num_classes, img_size=self.img_size, seed=seed, **self.options)

    def to_json(self) -> dict:
        return {"name": self.name, "classes": list(self.classes),
                "img_size": list(self.img_size) if self.img_size else None, "options": dict(self.options)}

    @classmethod
    def from_json(cls, data: dict) -> "ModelSpec":
        return cls(name=data["name"], classes=tuple(data["classes"]),
                   img_size=tuple(data["img_size"]) if data.get("img_size") else None,
                   options=dict(data.get("options") or {}))
