"""Name translation between :class:`torch_impl.models.yolo.YOLOv5` and the official YOLOv5 v7.0
``DetectionModel`` state_dict (keys ``model.<layer>.<rest>``, e.g. ``model.0.conv.weight``,
``model.24.anchors``, ``model.24.m.2.bias``).

Each of our top-level blocks is one numbered layer of the yaml and keeps the official names
below it (``conv``/``bn``, ``cv1``..``cv3``, ``m.<i>``), so the translation is a prefix swap;
parameter-free layers (Upsample 11, 15; Concat 12, 16, 19, 22) have no keys. The two state_dicts
list the same tensors in the same order.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import torch

from torch_impl.models.yolo import YOLOv5, yolov5

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
    return load_official_tensors(model, given, _to_official, model_kind="v7.0",
                                 shape_hint="check variant, nc and anchors per level")


def rename_official_layers(state_dict: Mapping, layer_index: Mapping[str, int]) -> dict:
    """Official keys numbered by layer (``model.24.m.0.weight`` or ``24.m.0.weight``) -> our
    module names (``head.m.0.weight``) by ``layer_index`` (our prefix -> official layer number);
    keys of unknown layers and our own keys pass through."""
    prefix_of = {i: p for p, i in layer_index.items()}
    out = {}
    for k, v in state_dict.items():
        parts = k.split(".")
        if parts[0] == "model" and len(parts) > 1 and parts[1].isdigit():
            parts = parts[1:]
        if parts[0].isdigit() and int(parts[0]) in prefix_of:
            k = ".".join([prefix_of[int(parts[0])], *parts[1:]])
        out[k] = v
    return out


def load_official_tensors(model: torch.nn.Module, given: Mapping, to_official: Callable[[str], str], *, model_kind: str,
                          shape_hint: str) -> torch.nn.Module:
    """Load ``given`` (official key -> tensor) into ``model`` one to one: each of the model's
    keys ``k`` takes ``given[to_official(k)]`` (cast to the parameter's dtype); BatchNorm's
    ``num_batches_tracked`` may be absent. Shared by the YOLOv5 v7.0 and YOLOv8 importers.

    Raises:
        ValueError: naming the first official key (in the model's order) missing, not a tensor
            or of another shape (``shape_hint`` says what to check), or the first given key the
            model has no place for (``model_kind`` names the expected model).
    """
    ours = model.state_dict()
    mapped = OrderedDict()
    for key, param in ours.items():
        official = to_official(key)
        if official not in given:
            if key.endswith(_OPTIONAL_SUFFIX):
                mapped[key] = param
                continue
            raise ValueError(f"state_dict: missing key {official!r} (shape {tuple(param.shape)}) "
                             f"expected by the model ({key!r}); wrong variant or not a {model_kind} model?")
        value = given[official]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict: {official!r} is a {type(value).__name__}, expected a tensor")
        if value.shape != param.shape:
            raise ValueError(f"state_dict: {official!r} has shape {tuple(value.shape)}, the model expects "
                             f"{tuple(param.shape)} ({key!r}); {shape_hint}")
        mapped[key] = value.to(param.dtype)
    expected = {to_official(k) for k in ours}
    extra = [k for k in given if k not in expected]
    if extra:
        raise ValueError(f"state_dict: unexpected key {extra[0]!r} ({len(extra)} in all) that the model "
                         f"has no place for; wrong variant or not a {model_kind} detection model?")
    model.load_state_dict(mapped, strict=True)
    return model


# ----------------------------------------------------------------------------- import

SAVE_HINT = ("it holds pickled Python objects (e.g. the official checkpoint's nn.Module under "
             "'model'), which cannot be loaded without the yolov5 code; in a yolov5 checkout run "
             "`ckpt = torch.load('IN.pt', weights_only=False); "
             "torch.save(ckpt['model'].float().state_dict(), 'IN_sd.pt')` "
             "and convert IN_sd.pt instead")


def read_yolov5_state_dict(path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    """The state_dict in the file ``path``, read with ``torch.load(..., weights_only=True)``
    (no code from the file runs): a plain dict of tensors, or ``{"model": state_dict, ...}``.

    Raises:
        ValueError: ``"<path>: cannot be read ..."`` (with the recipe for turning an official
            pickled checkpoint into a state_dict), or ``"<path>: expected a dict of tensors"``.
    """
    from torch_impl.train.checkpoint import check_state_dict, load_checkpoint  # (train imports models)

    try:
        obj = load_checkpoint(path)  # weights_only=True; a yolo-ref file's digest is verified
    except ValueError as e:
        why = str(e).split(": cannot read checkpoint: ", 1)[-1]
        if why.startswith("refused by weights_only=True"):
            raise ValueError(f"{path}: cannot be read with weights_only=True: {SAVE_HINT} "
                             f"({why.split('(', 1)[-1].rstrip(')')})") from None
        raise ValueError(f"{path}: cannot be read: {why}") from None
    if isinstance(obj, Mapping) and "model" in obj and not isinstance(obj["model"], torch.Tensor):
        obj = obj["model"]  # {"model": state_dict, ...}
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a dict of tensors (a state_dict), "
                         f"got {type(obj).__name__}")
    return check_state_dict(dict(obj), str(path))  # NaN / inf weights are not imported


def _official_anchors(sd: Mapping) -> torch.Tensor | None:
    for key in ("model.24.anchors", "24.anchors"):
        if key in sd:
            return sd[key].float()
    return None


def import_yolov5_state_dict(state_dict: Mapping, variant: str = "s", nc: int | None = None,
                             depth_multiple: float | None = None,
                             width_multiple: float | None = None) -> YOLOv5:
    """A :class:`YOLOv5` built to fit an official v7.0 state_dict, with its weights loaded.

    Args:
        state_dict: official keys (see :func:`load_yolov5_state_dict`).
        variant: ``n s m l x`` (the multiples, unless overridden).
        nc: number of classes; None reads it from ``model.24.m.0.weight``
            (``na * (5 + nc)`` output channels).
        depth_multiple, width_multiple: override the variant's.

    The anchors come from ``model.24.anchors`` (grid units, times the strides 8, 16, 32) when
    the file has three levels of them, else the defaults.

    Raises:
        ValueError: ``nc`` cannot be inferred, or (from :func:`load_yolov5_state_dict`) the
            first key missing or of the wrong shape for this variant / nc / anchors.
    """
    sd = _official_view(state_dict)
    anchors_gu = _official_anchors(sd)
    na = anchors_gu.shape[1] if anchors_gu is not None and anchors_gu.ndim == 3 else 3
    if nc is None:
        w = sd.get("model.24.m.0.weight")
        if w is None or w.shape[0] % na or w.shape[0] // na <= 5:
            raise ValueError("nc (--nc): cannot infer it from model.24.m.0.weight; pass it")
        nc = w.shape[0] // na - 5
    anchors = None
    if anchors_gu is not None and anchors_gu.ndim == 3 and anchors_gu.shape[0] == 3:
        anchors = (anchors_gu * torch.tensor([8.0, 16.0, 32.0]).view(-1, 1, 1)).tolist()
    model = yolov5(variant, nc=nc, anchors=anchors, depth_multiple=depth_multiple,
                   width_multiple=width_multiple)
    return load_yolov5_state_dict(model, sd)


def import_yolov5(src: str | os.PathLike, dst: str | os.PathLike, variant: str = "s", nc: int | None = None,
                  depth_multiple: float | None = None,
                  width_multiple: float | None = None, names: Sequence[str] | None = None) -> dict:
    """Convert the official state_dict file ``src`` into this toolkit's model file ``dst``,
    readable with ``weights_only=True`` by ``yolo-ref predict`` / ``evaluate --weights`` /
    ``train --weights`` (:func:`torch_impl.train.inference.read_weights`):

    ``{"model": our model's state_dict, "ema": None, "model_cfg": {"nc", "depth_multiple",
    "width_multiple", "head": "anchor", "anchors_pixels"}, "names": [...], "source":
    "import-yolov5", "state_dict": (the same tensors), "config": {"variant", "nc", "na",
    "depth_multiple", "width_multiple", "anchors_pixels"}}``; the last two keep the earlier
    layout readable (rebuild with ``yolov5(variant, nc=..., anchors=anchors_pixels, ...)`` and
    ``load_state_dict``).

    Args:
        names: class names (official files carry none); default ``class0..class{nc-1}``;
            must have ``nc`` entries.

    Returns:
        the ``config`` dict, plus ``"parameters"`` (the parameter count).

    Raises:
        ValueError: see :func:`read_yolov5_state_dict` and :func:`import_yolov5_state_dict`;
            ``names`` of the wrong length.
    """
    model = import_yolov5_state_dict(read_yolov5_state_dict(src), variant, nc=nc,
                                     depth_multiple=depth_multiple,
                                     width_multiple=width_multiple)
    names = [f"class{k}" for k in range(model.nc)] if names is None else [str(n) for n in names]
    if len(names) != model.nc:
        raise ValueError(f"names (--names): {len(names)} class names for a model of "
                         f"{model.nc} classes")
    anchors = model.anchors_pixels.tolist()
    config = {"variant": variant, "nc": model.nc, "na": model.na,
              "depth_multiple": model.depth_multiple, "width_multiple": model.width_multiple,
              "anchors_pixels": anchors}
    from torch_impl.train.checkpoint import save_checkpoint  # (torch_impl.train imports models)

    state = model.state_dict()
    save_checkpoint({"model": state, "ema": None, "names": names, "source": "import-yolov5",
                     "model_cfg": {"nc": model.nc, "depth_multiple": model.depth_multiple,
                                   "width_multiple": model.width_multiple, "head": "anchor",
                                   "anchors_pixels": anchors},
                     "state_dict": state, "config": config}, dst)
    return dict(config, parameters=sum(p.numel() for p in model.parameters()))
