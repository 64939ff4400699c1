"""``--arch tutorial``: the small anchor-based 3-level detector of "Implementing YOLO from Scratch
in PyTorch" (``shared/reference/seed_systems.md`` A; :func:`torch_impl.models.tutorial`).

Two recipes, the ``--model`` choices: ``corrected`` (the default: shape-IoU anchors, one-hot
classes, unclamped CIoU, detections in score order: :func:`torch_impl.loss.yolo_scratch_pytorch_loss`,
:func:`torch_impl.coder.tutorial_detect_corrected`) and ``as-printed`` (the write-up's code: ratio
anchor score, two-hot collisions, clamped CIoU, detections class by class:
:func:`torch_impl.loss.yolo_scratch_pytorch_loss_as_printed`,
:func:`torch_impl.coder.tutorial_detect_as_printed`). Build options (``--arch-option``):
``base`` (width, 32), ``anchors`` ([3, na, 2] pixels) and ``prior_bias`` (an image size:
YOLOv5's objectness / class bias priors for it, which a short run needs; 0, the default, keeps
the write-up's init). The write-up's training recipe is
``--optimizer AdamW --lr0 2e-4 --weight-decay 1e-4 --batch-size 8 --img-size 640``; its state_dicts load
with :func:`torch_impl.models.load_tutorial_state_dict`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from torch_impl.arch import Architecture, LossFn, register
from torch_impl.coder import tutorial_detect_as_printed, tutorial_detect_corrected
from torch_impl.loss import yolo_scratch_pytorch_loss, yolo_scratch_pytorch_loss_as_printed
from torch_impl.models.tutorial import RECIPES, TutorialDecoded, TutorialDetector, tutorial

LOSS_NAMES = ("box", "obj", "cls")


def build(nc: int, variant: str | None = None, *, base: int = 32, anchors: list | None = None,
          prior_bias: int = 0) -> TutorialDetector:
    """:func:`torch_impl.models.tutorial` with the recipe ``variant`` (default "corrected");
    ``prior_bias`` > 0: :meth:`TutorialDetector.initialize_biases` for that image size (0: the
    write-up's PyTorch default init). Raises ValueError for a negative ``prior_bias``."""
    model = tutorial(nc, base, anchors, recipe=variant or RECIPES[0])
    if isinstance(prior_bias, bool) or not isinstance(prior_bias, int) or prior_bias < 0:
        raise ValueError(f"prior_bias (--arch-option prior_bias=IMG_SIZE): expected an image size >= 0 "
                         f"(0: off), got {prior_bias!r}")
    if prior_bias:
        model.initialize_biases(prior_bias)
    return model


def model_config(model: TutorialDetector) -> dict:
    return {"variant": model.recipe, "base": model.base, "anchors": model.anchors.tolist()}


def _pixel_targets(targets: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(image, class, cx, cy, w, h)`` normalised -> the same rows in pixels."""
    scale = targets.new_tensor([1.0, 1.0, w, h, w, h])
    return targets * scale


def make_loss(model: TutorialDetector, hyp: dict) -> LossFn:
    """The recipe's loss with the write-up's gains (box 7.5, obj 1, cls 1; the run's YOLOv5
    gains are not used), times the batch size (the engine's YOLOv5 convention); items
    (box, obj, cls). A non-finite prediction gives a NaN total."""
    fn = yolo_scratch_pytorch_loss_as_printed if model.recipe == "as-printed" else yolo_scratch_pytorch_loss

    def loss(preds: list[torch.Tensor], targets: torch.Tensor,
             imgs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ps = [p.float() for p in model.split(preds)]
        bs = ps[0].shape[0]
        if not all(bool(torch.isfinite(p).all()) for p in ps):
            nan = sum(p.sum() for p in ps) * float("nan")
            return nan, torch.full((len(LOSS_NAMES),), float("nan"), device=nan.device)
        h, w = ps[0].shape[2] * int(model.stride[0]), ps[0].shape[3] * int(model.stride[0])
        t = _pixel_targets(targets.float(), h, w)
        t = t[(t[:, 4] > 0) & (t[:, 5] > 0)]
        total, parts = fn(ps, t, model.anchors.float(), model.stride.tolist())
        return total * bs, torch.stack([parts[k] for k in LOSS_NAMES]).detach()
    return loss


def postprocess(decoded: TutorialDecoded, conf_thres: float, iou_thres: float, max_det: int) -> list[torch.Tensor]:
    """The recipe's inference (:func:`torch_impl.coder.tutorial_detect_corrected` or
    ``_as_printed``), each image cut to its first ``max_det`` rows (as printed: in class order)."""
    fn = tutorial_detect_as_printed if decoded.recipe == "as-printed" else tutorial_detect_corrected
    return [d[:max_det] for d in fn(decoded.rows.float(), conf_thres, iou_thres)]


def weights_nc(sd: Mapping, na: int = 3) -> int | None:
    w = sd.get("heads.0.weight")
    if w is not None and w.shape[0] % na == 0 and w.shape[0] // na > 5:
        return w.shape[0] // na - 5
    return None


def _layer_index(model: nn.Module) -> dict[str, int]:
    """``--freeze N``: 0-3 the backbone stages (stem, stage3, stage4, stage5), 4 the neck."""
    return {"backbone.stem": 0, "backbone.stage3": 1, "backbone.stage4": 2, "backbone.stage5": 3, "neck": 4}


ARCH = register(Architecture(
    name="tutorial", summary="the seed tutorial's 3-level anchor detector (seed_systems.md A), "
                             "recipe corrected or as-printed",
    build=build, make_loss=make_loss, loss_names=LOSS_NAMES, postprocess=postprocess,
    model_config=model_config, model_types=(TutorialDetector,), variants=RECIPES,
    weights_nc=weights_nc, head_prefixes=("heads.",), backbone_prefixes=("backbone.",),
    layer_index=_layer_index))
