"""``--arch yolov1``: the YOLOv1 grid detector of "YOLOv1 from Scratch" (``shared/reference/
seed_systems.md`` B; :func:`torch_impl.models.yolov1`), trained with the v1 loss or one of the
three grid losses of section C.

Build options (``--arch-option KEY=VALUE``, or the ``train`` flags of the same names):
``S`` (7), ``B`` (2), ``backbone`` ("darknet" | "resnet18"), ``backbone_weights`` (a local
state_dict file for the backbone, e.g. torchvision's ResNet-18 weights; read at build time and
not stored in checkpoints, whose state_dict holds the weights), ``freeze_backbone``,
``backbone_lr`` (LR factor of the backbone's parameters), ``freeze_bn`` (backbone BatchNorm in
eval mode, its affine parameters frozen) and ``loss``, one of :data:`LOSSES`:

- ``v1``: :func:`torch_impl.loss.yolov1_loss` (λcoord 5, λnoobj 0.5, sqrt w/h, linear head);
- ``v1-focal``: the same with the no-object term modulated by ``Ĉ^γ``, γ = 2 (the write-up's
  experiment 2 as the sheet describes it; measured here, its confidences do not collapse);
- ``v1-focal-both``: the same factor on the object term too (``obj_gamma`` = 2): ``Ĉ = 0`` then
  zeroes every confidence term and its gradient, and the confidences collapse to ~0 (the symptom
  the write-up reports for experiment 2);
- ``mse``, ``adv``, ``iou`` and ``mse-corrected``, ``adv-corrected``, ``iou-corrected``: the
  section C losses (:func:`torch_impl.loss.yolo_loss_mse` ...) on the grid targets of
  :func:`torch_impl.assign.yolov1_grid_targets` (B = 1: the channels x, y, w, h, conf, classes;
  w, h plain). As printed they take probabilities (a σ head: their BCE crashes on logits);
  corrected, the class channels are logits (linear head, σ at decoding).

Each loss is multiplied by the batch size where it is a mean (the engine's YOLOv5 convention;
the v1 loss is a sum already). Detections: :func:`torch_impl.coder.tutorial_detect_corrected`
on the decoded rows (score ``conf * class score``, class-wise NMS, score order), ``max_det``
per image.
"""
from __future__ import annotations

import torch
from torch import nn

from torch_impl import loss as L
from torch_impl.arch import Architecture, LossFn, register
from torch_impl.assign import yolov1_grid_targets
from torch_impl.coder import tutorial_detect_corrected
from torch_impl.models.yolov1 import YOLOv1, yolov1

LOSS_NAMES = ("box", "obj", "noobj", "cls")
GRID_LOSSES = {"mse": L.yolo_loss_mse, "adv": L.yolo_loss_adv, "iou": L.yolo_loss_iou,
               "mse-corrected": L.yolo_loss_mse_corrected, "adv-corrected": L.yolo_loss_adv_corrected,
               "iou-corrected": L.yolo_loss_iou_corrected}
LOSSES = ("v1", "v1-focal", "v1-focal-both", *GRID_LOSSES)
FOCAL_GAMMA = 2.0  # the write-up's γ


def build(nc: int, variant: str | None = None, *, S: int = 7, B: int = 2, backbone: str = "darknet",
          loss: str = "v1", backbone_weights: str | None = None, freeze_backbone: bool = False,
          backbone_lr: float = 1.0, freeze_bn: bool = False) -> YOLOv1:
    """A :class:`torch_impl.models.YOLOv1` laid out for ``loss`` (the section C losses: B = 1,
    plain w, h; a σ head as printed, class logits corrected), with the training options applied.

    Raises ValueError naming the option: an unknown loss, a bad backbone LR factor, a weights
    file that is missing or does not fit the backbone."""
    if loss not in LOSSES:
        raise ValueError(f"loss (--loss): expected one of {', '.join(LOSSES)}, got {loss!r}")
    if not (isinstance(backbone_lr, (int, float)) and backbone_lr >= 0):
        raise ValueError(f"backbone_lr (--backbone-lr): expected a number >= 0, got {backbone_lr!r}")
    grid = loss in GRID_LOSSES
    model = yolov1(S=S, B=1 if grid else B, nc=nc, backbone=backbone,
                   head_activation="sigmoid" if grid and not loss.endswith("corrected") else "linear",
                   sqrt_wh=not grid, class_logits=grid and loss.endswith("corrected"))
    model.loss_name = loss
    if backbone_weights:
        model.load_backbone(backbone_weights)
    if freeze_backbone:
        model.freeze_backbone()
    if freeze_bn:
        model.freeze_bn()
    model.backbone_lr = float(backbone_lr)
    return model


def model_config(model: YOLOv1) -> dict:
    return {"S": model.S, "B": model.B, "backbone": model.backbone_name,
            "loss": getattr(model, "loss_name", "v1")}


def make_loss(model: YOLOv1, hyp: dict) -> LossFn:
    """The model's loss on :func:`torch_impl.assign.yolov1_grid_targets`; items (box, obj,
    noobj, cls) (``mse``'s conf term reported as obj, noobj 0). Non-finite predictions give a
    NaN total."""
    name = getattr(model, "loss_name", "v1")

    def loss(preds: torch.Tensor, targets: torch.Tensor,
             imgs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = preds.float()
        if not bool(torch.isfinite(p).all()):
            nan = p.sum() * float("nan")
            return nan, torch.full((len(LOSS_NAMES),), float("nan"), device=p.device)
        t = targets.float()
        grid = yolov1_grid_targets(t, model.S, model.nc, p.shape[0])
        if name in GRID_LOSSES:
            total, parts = GRID_LOSSES[name](p, grid)
            parts = {"obj": parts.get("conf"), **parts}
            total = total * p.shape[0]
        else:
            focal = FOCAL_GAMMA if name.startswith("v1-focal") else 0.0
            total, parts = L.yolov1_loss(p, grid, noobj_gamma=focal,
                                         obj_gamma=FOCAL_GAMMA if name == "v1-focal-both" else 0.0)
        zero = total.new_zeros(())
        items = torch.stack([parts.get(k) if parts.get(k) is not None else zero for k in LOSS_NAMES])
        return total, items.detach()
    return loss


def postprocess(decoded: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int) -> list[torch.Tensor]:
    """Rows ``(x1, y1, x2, y2, conf, cls...)`` -> per image ``(x1, y1, x2, y2, score, class)``,
    class-wise NMS in score order, at most ``max_det``."""
    return [d[:max_det] for d in tutorial_detect_corrected(decoded.float(), conf_thres, iou_thres)]


def _layer_index(model: nn.Module) -> dict[str, int]:
    return {"backbone": 0}


ARCH = register(Architecture(
    name="yolov1", summary="YOLOv1 grid detector (seed_systems.md B): darknet or ResNet-18 backbone, "
                           "v1 / focal / section C losses",
    build=build, make_loss=make_loss, loss_names=LOSS_NAMES, postprocess=postprocess,
    model_config=model_config, model_types=(YOLOv1,), head_prefixes=("head.",),
    backbone_prefixes=("backbone.",), layer_index=_layer_index))
