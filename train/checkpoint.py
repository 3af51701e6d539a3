"""Checkpoints: one file per run holding the model spec, the raw and EMA weights, the optimizer
state and the step, written atomically (temporary name, then ``os.replace``) so an interrupted
run always finds the previous complete checkpoint. Reading uses ``torch.load(weights_only=True)``:
a checkpoint is data, never code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeGuard

import torch
from torch import nn

from longtail.atomic import TMP_PREFIX
from longtail.errors import InputError, ParameterError
from longtail.train.models import ModelSpec

FORMAT = "longtail-detector"
FORMAT_VERSION = 1


def _on_cpu(state: dict | None) -> dict | None:
    return None if state is None else {k: v.detach().cpu() for k, v in state.items()}


def save_checkpoint(path: Path, *, spec: ModelSpec, step: int, model: dict, ema: dict | None,
                    optimizer: dict | None, run: dict | None = None) -> None:
    """Write a checkpoint atomically. State dicts are moved to the CPU first."""
    path = Path(path)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_json(), "step": int(step),
            "model": _on_cpu(model), "ema": _on_cpu(ema), "optimizer": optimizer, "run": run or {}}
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    torch.save(data, tmp)
    os.replace(tmp, path)


def slim_checkpoint(path: Path) -> None:
    """Rewrite a finished run's checkpoint with its EMA weights only (a quarter of the size: no raw
    weights, no optimizer state); it loads as before but can no longer resume training."""
    data = read_checkpoint(path)
    save_checkpoint(path, spec=ModelSpec.from_json(data["spec"]), step=data["step"],
                    model=data.get("ema") or data["model"], ema=None, optimizer=None,
                    run={**data.get("run", {}), "slim": True})


def read_torch_file(path: Path) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; InputError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), None, "no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a file that is not a checkpoint
        raise InputError(str(path), None, f"not a PyTorch checkpoint ({type(e).__name__})") from None


def is_checkpoint(data: object) -> TypeGuard[dict]:
    """Whether loaded content (``read_torch_file``) is a longtail detector checkpoint."""
    return isinstance(data, dict) and data.get("format") == FORMAT


def read_checkpoint(path: Path) -> dict:
    """A longtail checkpoint's content (see ``save_checkpoint``)."""
    data = read_torch_file(path)
    if not is_checkpoint(data):
        raise InputError(str(path), None, f"not a longtail detector checkpoint (expected format {FORMAT!r})")
    return data


def load_detector(path: Path, weights: str = "ema") -> tuple[nn.Module, ModelSpec, dict]:
    """Rebuild a checkpoint's model (on the CPU, eval mode) with its ``ema`` or raw ``model`` weights.

    Returns:
        (model, spec, checkpoint content).
    """
    data = read_checkpoint(path)
    spec = ModelSpec.from_json(data["spec"])
    model = spec.build()
    state = data.get(weights) or data["model"]
    model.load_state_dict(state)
    return model.eval(), spec, data


def init_box_head_norm(data: object, model: str) -> str | None:
    """The RoI box head (``none`` or ``layer``) of a loaded ``--init`` file (``read_torch_file``)
    when it is a longtail checkpoint of a ``model`` detector; None for anything else
    (``load_init`` says what is wrong with it)."""
    if not is_checkpoint(data):
        return None
    try:
        spec = ModelSpec.from_json(data["spec"])
    except Exception:  # noqa: BLE001 - a checkpoint of an unknown spec: no head to follow
        return None
    return str(spec.options.get("box_head_norm", "none")) if spec.name == model else None


def _state_dict_of(data: object) -> dict | None:
    """The weights in a loaded file: a longtail checkpoint (EMA first), ``{"model": sd}`` as
    torchvision's reference scripts save, or a bare state dict."""
    if is_checkpoint(data):
        return data.get("ema") or data.get("model")
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data["model"]
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data
    return None


# what of a checkpoint ``--init`` may take: everything, or only the feature extractor (the
# backbone and its FPN), with the detection heads (RPN, RoI box head and predictor) left freshly
# initialised, the usual way a base model's features are reused by a detector
INIT_PARTS: dict[str, tuple[str, ...]] = {"all": (), "backbone": ("backbone.",)}


def load_init(model: nn.Module, path: Path, parts: str = "all", data: object = None) -> dict:
    """Initialise ``model`` from a local checkpoint (``--init``): every tensor whose name and shape
    match is copied, the rest keep their initial values (e.g. a box predictor for other classes).
    ``parts`` (a key of ``INIT_PARTS``) restricts the copy to names under those prefixes.

    ``data``: the file's content when the caller has read it already (``read_torch_file``).

    Returns:
        {"loaded": number of tensors copied, "skipped": names not copied}.
    """
    state = _state_dict_of(read_torch_file(path) if data is None else data)
    if state is None:
        raise InputError(str(path), None, "holds no model weights (expected a longtail checkpoint or a state dict)")
    if parts not in INIT_PARTS:
        raise ParameterError("init_parts", f"expected one of {', '.join(INIT_PARTS)}, got {parts!r}")
    prefixes = INIT_PARTS[parts]
    own = model.state_dict()
    match = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape
             and (not prefixes or k.startswith(prefixes))}
    if not match:
        raise InputError(str(path), None, "holds no weights that fit this model (names or shapes differ)")
    model.load_state_dict(match, strict=False)
    return {"loaded": len(match), "skipped": sorted(set(own) - set(match))}
