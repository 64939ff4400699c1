"""``--arch yolov5-anchor-free`` (``--head anchor-free``): the YOLOv5 v7.0 backbone and neck
with the v8-style anchor-free DFL head (:class:`torch_impl.models.YOLOv5AnchorFree`), TAL
assignment + :func:`torch_impl.loss.yolov8_loss` (gains box 7.5, cls 0.5, dfl 1.5, not
rescaled), the v8 ``non_max_suppression``. No autoanchor; official v5 weights load into the
backbone and neck (the head is fresh)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from torch_impl.arch import Architecture, LossFn, register
from torch_impl.arch.yolov5 import official_keys_to_ours
from torch_impl.loss import yolov8_loss
from torch_impl.models import VARIANTS, YOLOv5AnchorFree, yolov5_anchor_free
from torch_impl.models.convert import LAYER_INDEX
from torch_impl.nms import non_max_suppression

LOSS_NAMES = ("box", "cls", "dfl")
# Loss gains of the v8 loss (Ultralytics 8.3 / 8.4 ``cfg/default.yaml``; not rescaled by nl / nc / imgsz).
V8_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}


def build(nc: int, variant: str | None = None, *, depth_multiple: float | None = None,
          width_multiple: float | None = None, reg_max: int = 16) -> YOLOv5AnchorFree:
    return yolov5_anchor_free(variant, nc=nc, reg_max=reg_max, depth_multiple=depth_multiple,
                              width_multiple=width_multiple)


def model_config(model: YOLOv5AnchorFree) -> dict:
    return {"depth_multiple": model.depth_multiple, "width_multiple": model.width_multiple,
            "head": "anchor-free", "reg_max": model.reg_max}


def v8_loss(model: nn.Module, hyp: dict) -> LossFn:
    """:func:`torch_impl.loss.yolov8_loss` with the gains of ``hyp`` and the model's strides and
    ``reg_max``; items (box, cls, dfl). A non-finite prediction gives a NaN total (the trainer's
    NaN check stops the run) instead of the loss's input-validation error. Shared by every
    DFL-head architecture."""
    strides = model.stride.tolist()

    def loss(preds, targets, imgs=None):
        preds = [p.float() for p in preds]
        if not all(bool(torch.isfinite(p.detach()).all()) for p in preds):
            nan = preds[0].new_full((), float("nan"))
            return nan, nan.repeat(3)
        total, parts = yolov8_loss(preds, targets, strides, box=hyp["box"], cls=hyp["cls"],
                                   dfl=hyp["dfl"], reg_max=model.reg_max)
        return total, torch.stack([parts[k] for k in LOSS_NAMES])
    return loss


def v8_postprocess(decoded: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int) -> list[torch.Tensor]:
    """v8 :func:`torch_impl.nms.non_max_suppression` of the v8 layout ``[B, 4 + nc, A]``."""
    return non_max_suppression(decoded.float(), conf_thres, iou_thres, max_det=max_det,
                               version="v8")


def postprocess(decoded: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int) -> list[torch.Tensor]:
    """This head decodes to ``[B, A, 4 + nc]``: transposed to v8's ``[B, 4 + nc, A]``, then
    :func:`v8_postprocess`."""
    return v8_postprocess(decoded.transpose(1, 2), conf_thres, iou_thres, max_det)


def v8_hyp(hyp: dict, model: nn.Module, nc: int, img_size: int) -> dict:
    return {**hyp, **V8_GAINS}


def weights_nc(sd: Mapping) -> int | None:
    w = sd.get("head.cv3.0.2.weight")  # the class branch
    return int(w.shape[0]) if w is not None else None


ARCH = register(Architecture(
    name="yolov5-anchor-free",
    summary="YOLOv5 v7.0 backbone + neck with the v8 DFL head: TAL + v8 loss, v8 NMS",
    build=build, make_loss=v8_loss, loss_names=LOSS_NAMES, postprocess=postprocess,
    model_config=model_config, model_types=(YOLOv5AnchorFree,), variants=tuple(VARIANTS),
    prepare_hyp=v8_hyp, convert_state_dict=official_keys_to_ours, weights_nc=weights_nc,
    layer_index=lambda model: dict(LAYER_INDEX), max_freeze=24,
    freeze_help=": 0-9 backbone, 10-23 neck; the head, 24, always trains", aliases=("anchor-free",)))
