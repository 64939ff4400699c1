"""``--arch yolov5``: YOLOv5 v7.0 n/s/m/l/x (:class:`torch_impl.models.YOLOv5`), its anchor
targets and loss (:func:`torch_impl.loss.yolov5_loss`, gains rescaled by
:func:`torch_impl.loss.yolov5_scale_hyp`), the v5 ``non_max_suppression``; autoanchor and the
anchor health checks apply; official v7.0 state_dicts load (``yolo-ref import-yolov5``)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from torch_impl._typing import TensorLike
from torch_impl.arch import Architecture, LossFn, register
from torch_impl.loss import yolov5_loss, yolov5_scale_hyp
from torch_impl.models import VARIANTS, YOLOv5, yolov5
from torch_impl.models.convert import LAYER_INDEX, rename_official_layers
from torch_impl.nms import non_max_suppression

LOSS_NAMES = ("box", "obj", "cls")


def build(nc: int, variant: str | None = None, *, depth_multiple: float | None = None,
          width_multiple: float | None = None, anchors: TensorLike | None = None,
          anchors_pixels: TensorLike | None = None) -> YOLOv5:
    """:func:`torch_impl.models.yolov5` (``anchors_pixels``: the spelling checkpoints use)."""
    return yolov5(variant, nc=nc, anchors=anchors if anchors is not None else anchors_pixels,
                  depth_multiple=depth_multiple, width_multiple=width_multiple)


def model_config(model: YOLOv5) -> dict:
    return {"depth_multiple": model.depth_multiple, "width_multiple": model.width_multiple,
            "head": "anchor"}


def from_config(cfg: dict, state_dict: Mapping | None) -> YOLOv5:
    """Rebuild from ``model_cfg``; the anchors come from ``anchors_pixels``, else from the
    state's ``head.anchors`` (grid units) times the strides 8, 16, 32, else the defaults."""
    anchors = cfg.get("anchors_pixels")
    if anchors is None and state_dict is not None and "head.anchors" in state_dict:
        a = state_dict["head.anchors"].float()
        if a.ndim == 3 and a.shape[0] == 3:
            anchors = (a * torch.tensor([8.0, 16.0, 32.0]).view(-1, 1, 1)).tolist()
    model = yolov5(None, nc=int(cfg["nc"]), anchors=anchors,
                   depth_multiple=cfg["depth_multiple"], width_multiple=cfg["width_multiple"])
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def make_loss(model: YOLOv5, hyp: dict) -> LossFn:
    """:func:`torch_impl.loss.yolov5_loss` with the run's (scaled) gains; items (box, obj, cls)."""
    def loss(preds, targets, imgs=None):
        total, parts = yolov5_loss(
            [p.float() for p in preds], targets, model.anchors_grid_units, box=hyp["box"],
            obj=hyp["obj"], cls=hyp["cls"], anchor_t=hyp["anchor_t"],
            label_smoothing=hyp["label_smoothing"], cls_pw=hyp["cls_pw"], obj_pw=hyp["obj_pw"],
            fl_gamma=hyp["fl_gamma"], check_finite=False)
        return total, torch.stack([parts[k] for k in LOSS_NAMES])
    return loss


def postprocess(decoded: torch.Tensor, conf_thres: float, iou_thres: float,
                max_det: int) -> list[torch.Tensor]:
    """v5 :func:`torch_impl.nms.non_max_suppression` of ``[B, A, 5 + nc]``."""
    return non_max_suppression(decoded.float(), conf_thres, iou_thres, max_det=max_det)


def prepare_hyp(hyp: dict, model: nn.Module, nc: int, img_size: int) -> dict:
    return yolov5_scale_hyp(hyp, nl=model.nl, nc=nc, imgsz=img_size)


def official_keys_to_ours(sd: dict) -> dict:
    """Official YOLOv5 keys (``model.24.m.0.weight`` or ``24.m.0.weight``) -> ours
    (``head.m.0.weight``); our own keys pass through."""
    return rename_official_layers(sd, LAYER_INDEX)


def weights_nc(sd: Mapping, na: int = 3) -> int | None:
    w = sd.get("head.m.0.weight")
    if w is not None and w.shape[0] % na == 0 and w.shape[0] // na > 5:
        return w.shape[0] // na - 5
    return None


ARCH = register(Architecture(
    name="yolov5", summary="YOLOv5 v7.0 n/s/m/l/x: anchor head, YOLOv5 loss, v5 NMS",
    build=build, make_loss=make_loss, loss_names=LOSS_NAMES, postprocess=postprocess,
    model_config=model_config, model_types=(YOLOv5,), variants=tuple(VARIANTS),
    prepare_hyp=prepare_hyp, from_config=from_config, convert_state_dict=official_keys_to_ours,
    weights_nc=weights_nc, layer_index=lambda model: dict(LAYER_INDEX), max_freeze=24,
    freeze_help=": 0-9 backbone, 10-23 neck; the head, 24, always trains", anchor_based=True,
    aliases=("yolov5-anchor",),
    import_command="yolo-ref import-yolov5 {path} OUT.pt --variant <n|s|m|l|x> "
                   "--names <classes.txt|data.yaml>"))
