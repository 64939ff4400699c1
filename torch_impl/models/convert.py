"""Name translation between :class:`torch_impl.models.yolo.YOLOv5` and the official YOLOv5 v7.0
``DetectionModel`` state_dict (keys ``model.<layer>.<rest>``, e.g. ``model.0.conv.weight``,
``model.24.anchors``, ``model.24.m.2.bias``).

Each of our top-level blocks is one numbered layer of the yaml and keeps the official names
below it (``conv``/``bn``, ``cv1``..``cv3``, ``m.<i>``), so the translation is a prefix swap;
parameter-free layers (Upsample 11, 15; Concat 12, 16, 19, 22) have no keys. The two state_dicts
list the same tensors in the same order.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch

from torch_impl.models.yolo import YOLOv5

# Our module prefix -> official layer index, in layer order.
LAYER_INDEX: dict[str, int] = {
    "backbone.stem": 0, "backbone.down2": 1, "backbone.stage2": 2, "backbone.down3": 3,
    "backbone.stage3": 4, "backbone.down4": 5, "backbone.stage4": 6, "backbone.down5": 7,
    "backbone.stage5": 8, "backbone.sppf": 9,
    "neck.lateral5": 10, "neck.merge4": 13, "neck.lateral4": 14, "neck.out3": 17,
    "neck.down3": 18, "neck.out4": 20, "neck.down4": 21, "neck.out5": 23,
    "head": 24,
}
_PREFIX_OF_INDEX = {i: p for p, i in LAYER_INDEX.items()}
# BatchNorm's step counter: present in state_dicts saved by torch >= 0.4.1, harmless if absent.
_OPTIONAL_SUFFIX = "num_batches_tracked"


def _to_official(key: str) -> str:
    for prefix, index in LAYER_INDEX.items():
        if key.startswith(prefix + "."):
            return f"model.{index}.{key[len(prefix) + 1:]}"
    raise KeyError(key)  # unreachable for a YOLOv5 built here


def _check_model(model) -> None:
    if not isinstance(model, YOLOv5):
        raise ValueError(f"model: expected a torch_impl.models.YOLOv5 (the anchor-based model), "
                         f"got {type(model).__name__}")


def to_yolov5_state_dict(model: YOLOv5) -> "OrderedDict[str, torch.Tensor]":
    """Our ``model.state_dict()`` under the official v7.0 keys, in the official order
    (tensors shared, not copied). Inverse of :func:`load_yolov5_state_dict`."""
    _check_model(model)
    return OrderedDict((_to_official(k), v) for k, v in model.state_dict().items())


def _official_view(state_dict: Mapping) -> dict:
    """Accept ``DetectionModel.state_dict()`` (``model.0...``) and ``DetectionModel.model
    .state_dict()`` (``0...``, the nn.Sequential alone)."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict: expected a mapping of name -> tensor, got {type(state_dict).__name__}")
    keys = list(state_dict)
    if keys and all(isinstance(k, str) and k[:1].isdigit() for k in keys):
        return {f"model.{k}": v for k, v in state_dict.items()}
    return dict(state_dict)


def load_yolov5_state_dict(model: YOLOv5, state_dict: Mapping) -> YOLOv5:
    """Copy an official YOLOv5 v7.0 state_dict into ``model`` (in place) and return it.

    Args:
        model (YOLOv5): built with the same variant (multiples), ``nc`` and anchors per level as
            the checkpoint.
        state_dict: official keys (``model.0.conv.weight`` ... ``model.24.m.2.bias``), or the
            same without the leading ``model.``. Any floating dtype (checkpoints are often
            float16): values are cast to the model's dtype. ``model.24.anchors`` (grid units) is
            copied too, so evolved/autoanchor'd anchors carry over.

    Raises:
        ValueError: naming the first official key (in our order) that is missing or whose shape
            differs, or the first key the model has no place for. ``num_batches_tracked``
            entries may be absent.
    """
    _check_model(model)
    given = _official_view(state_dict)
    ours = model.state_dict()
    mapped = OrderedDict()
    for key, param in ours.items():
        official = _to_official(key)
        if official not in given:
            if key.endswith(_OPTIONAL_SUFFIX):
                mapped[key] = param
                continue
            raise ValueError(f"state_dict: missing key {official!r} (shape {tuple(param.shape)}) "
                             f"expected by the model ({key!r}); wrong variant or not a v7.0 model?")
        value = given[official]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict: {official!r} is a {type(value).__name__}, expected a tensor")
        if value.shape != param.shape:
            raise ValueError(f"state_dict: {official!r} has shape {tuple(value.shape)}, the model expects "
                             f"{tuple(param.shape)} ({key!r}); check variant, nc and anchors per level")
        mapped[key] = value
    expected = {_to_official(k) for k in ours}
    extra = [k for k in given if k not in expected]
    if extra:
        raise ValueError(f"state_dict: unexpected key {extra[0]!r} ({len(extra)} in all) that the model "
                         f"has no place for; wrong variant or not a v7.0 detection model?")
    model.load_state_dict(mapped, strict=True)
    return model
