"""PyTorch port of :mod:`ref_numpy.loss`: the same functions, names and defaults, autograd-safe.

Where the reference marks a value with ``_stop_gradient`` the port detaches it (or computes it
under ``torch.no_grad``). The YOLO losses compute in float32 when given float16 / bfloat16
predictions (autocast heads), float64 stays float64. No Python loop runs over boxes or targets;
the only loops are over detection levels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from ref_numpy.shared.checks import check_number, check_reduction, check_tal_version, read_finite_message
from ref_numpy.shared.constants import MAX_LOG_WH, MIN_WH, ULTRALYTICS_DEFAULT_VERSION
from torch_impl._typing import TensorLike
from torch_impl._validate import as_tensor, check_boxes
from torch_impl.assign import tutorial_assign_as_printed, yolov5_build_targets
# The v8 loss runs the assigner's steps itself, at the anchors they need (see _v8_assign).
from torch_impl.assign import _lazy_zeros, _take, _tal_candidates, _tal_select
# The loss validates its inputs (or the caller opted out: check_finite=False), then calls
# boxes.aligned_box_iou's kernel, which needs no device synchronisation.
from torch_impl.boxes import _aligned_iou, darknet_box_iou, wh_iou
from torch_impl.coder import bbox2dist, dfl_decode, dist2bbox, make_anchors


# ----------------------------------------------------------------------------- helpers


def _reduce(loss: torch.Tensor, reduction: str, empty_mean: float) -> torch.Tensor:
    if reduction == "mean":
        if loss.numel():
            return loss.mean()
        return loss.sum() * 0.0 if empty_mean == 0.0 else loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _upcast_non_float(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_upcast_non_float``: anything but float32/float64 (integers, float16,
    bfloat16) is computed in float32, so the box-IoU losses never compute in half precision."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 predictions are computed in float32; float32/64 as given."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _bce_with_logits(x, y, pos_weight=None):
    """Element-wise BCE on logits (torch's kernel; same formula as the reference)."""
    if not isinstance(y, torch.Tensor):
        y = torch.full_like(x, float(y))
    if pos_weight is None or pos_weight == 1:  # weight 1: the same numbers, one pass less
        return F.binary_cross_entropy_with_logits(x, y, reduction="none")
    pw = torch.tensor([float(pos_weight)], dtype=x.dtype, device=x.device)
    return F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")


def _last_wins(keys: torch.Tensor) -> torch.Tensor:
    """Boolean mask over ``keys`` [N] keeping only the last occurrence of each key."""
    n = keys.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=keys.device)
    order = torch.arange(n, device=keys.device)
    _, inv = torch.unique(keys, return_inverse=True)
    last = torch.full((n,), -1, dtype=order.dtype, device=keys.device)
    last = last.scatter_reduce(0, inv, order, reduce="amax")
    return last[inv] == order


# ----------------------------------------------------------------------------- torchvision

def _check_box_pair(boxes1, boxes2):
    b1 = _upcast_non_float(check_boxes("boxes1", boxes1))
    b2 = _upcast_non_float(check_boxes("boxes2", boxes2, ))
    if b1.shape != b2.shape:
        raise ValueError(f"boxes1 and boxes2: expected the same shape, got {tuple(b1.shape)} "
                         f"and {tuple(b2.shape)}")
    return b1, b2


def _loss_inter_union(boxes1, boxes2):
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    xk1, yk1 = torch.maximum(x1, x1g), torch.maximum(y1, y1g)
    xk2, yk2 = torch.minimum(x2, x2g), torch.minimum(y2, y2g)
    overlap = (yk2 > yk1) & (xk2 > xk1)
    inter = torch.where(overlap, (xk2 - xk1) * (yk2 - yk1), torch.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(boxes1, boxes2):
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    return (torch.minimum(x1, x1g), torch.minimum(y1, y1g),
            torch.maximum(x2, x2g), torch.maximum(y2, y2g))


def _diou_iou_loss(boxes1, boxes2, eps):
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    xc1, yc1, xc2, yc2 = _enclosing(boxes1, boxes2)
    diag2 = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    centre2 = (((x2 + x1) / 2 - (x1g + x2g) / 2) ** 2) + (((y2 + y1) / 2 - (y1g + y2g) / 2) ** 2)
    return 1 - iou + (centre2 / diag2), iou


def generalized_box_iou_loss(boxes1: TensorLike, boxes2: TensorLike, reduction: Literal["none", "mean", "sum"] = "none",
                             eps: float = 1e-7) -> torch.Tensor:
    """See :func:`ref_numpy.loss.generalized_box_iou_loss` (torchvision semantics)."""
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    inter, union = _loss_inter_union(b1, b2)
    iou = inter / (union + eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    loss = 1 - (iou - ((area_c - union) / (area_c + eps)))
    return _reduce(loss, reduction, empty_mean=0.0)


def distance_box_iou_loss(boxes1: TensorLike, boxes2: TensorLike, reduction: Literal["none", "mean", "sum"] = "none",
                          eps: float = 1e-7) -> torch.Tensor:
    """See :func:`ref_numpy.loss.distance_box_iou_loss` (torchvision semantics)."""
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    loss, _ = _diou_iou_loss(b1, b2, eps)
    return _reduce(loss, reduction, empty_mean=0.0)


def complete_box_iou_loss(boxes1: TensorLike, boxes2: TensorLike, reduction: Literal["none", "mean", "sum"] = "none",
                          eps: float = 1e-7) -> torch.Tensor:
    """See :func:`ref_numpy.loss.complete_box_iou_loss` (torchvision semantics, including the
    DIoU part's fixed 1e-7)."""
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    diou_loss, iou = _diou_iou_loss(b1, b2, 1e-7)
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    v = (4 / (math.pi ** 2)) * (torch.atan((x2g - x1g) / (y2g - y1g))
                                - torch.atan((x2 - x1) / (y2 - y1))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(diou_loss + alpha * v, reduction, empty_mean=0.0)


def sigmoid_focal_loss(inputs: TensorLike, targets: TensorLike, alpha: float = 0.25, gamma: float = 2,
                       reduction: Literal["none", "mean", "sum"] = "none") -> torch.Tensor:
    """See :func:`ref_numpy.loss.sigmoid_focal_loss` (torchvision semantics)."""
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"alpha: expected a value in [0, 1] or -1, got {alpha!r}")
    check_reduction(reduction)
    x = as_tensor("inputs", inputs, floating=True)
    y = as_tensor("targets", targets, floating=True, device=x.device).to(x.dtype)
    if x.shape != y.shape:
        raise ValueError(f"inputs and targets: expected the same shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(loss, reduction, empty_mean=math.nan)


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_loss(preds: TensorLike, targets: TensorLike, lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                noobj_gamma: float = 0.0, obj_gamma: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolov1_loss` (darknet YOLOv1, rescore, sqrt w/h, focal option).

    The responsible-box choice and the IoU confidence target carry no gradient.
    """
    p = _compute_dtype(as_tensor("preds", preds, ndim=4, finite=True, floating=True))
    t = as_tensor("targets", targets, ndim=4, finite=True, floating=True, device=p.device).to(p.dtype)
    if p.shape[:3] != t.shape[:3]:
        raise ValueError(f"preds and targets: expected the same [N, S, S], got {tuple(p.shape)} "
                         f"and {tuple(t.shape)}")
    n_cls = t.shape[-1] - 5
    n_box = (p.shape[-1] - n_cls) // 5
    if n_cls < 0 or n_box < 1 or n_box * 5 + n_cls != p.shape[-1]:
        raise ValueError(f"preds: expected last dimension B*5 + C with C = {n_cls} from targets, "
                         f"got {p.shape[-1]}")
    noobj_gamma, obj_gamma = check_number("noobj_gamma", noobj_gamma, lo=0), check_number("obj_gamma", obj_gamma, lo=0)
    obj = t[..., 4]
    if not bool(((obj == 0) | (obj == 1)).all()):
        raise ValueError("targets: expected obj (channel 4) in {0, 1}")
    if bool((t[..., 2:4] < 0).any()) or bool(((obj[..., None] == 1) & (t[..., 2:4] <= 0)).any()):
        raise ValueError("targets: expected w, h >= 0, and > 0 in object cells")

    n, sy, sx, _ = p.shape
    boxes = p[..., : 5 * n_box].reshape(n, sy, sx, n_box, 5)  # [N, S, S, B, 5]
    is_obj = obj == 1
    with torch.no_grad():
        col = torch.arange(sx, dtype=p.dtype, device=p.device)[None, None, :]
        row = torch.arange(sy, dtype=p.dtype, device=p.device)[None, :, None]
        true_img = torch.stack([(t[..., 0] + col) / sx, (t[..., 1] + row) / sy,
                                t[..., 2], t[..., 3]], -1)
        pred_img = torch.stack([(boxes[..., 0] + col[..., None]) / sx,
                                (boxes[..., 1] + row[..., None]) / sy,
                                boxes[..., 2] ** 2, boxes[..., 3] ** 2], -1)
        iou = darknet_box_iou(pred_img, true_img[..., None, :])  # [N, S, S, B]
        dist = ((pred_img - true_img[..., None, :]) ** 2).sum(-1)
        best = torch.where(iou.amax(-1) > 0, iou.argmax(-1), dist.argmin(-1))
        resp = (torch.arange(n_box, device=p.device) == best[..., None]) & is_obj[..., None]

    tb = t[..., None, :]
    coord = ((boxes[..., 0] - tb[..., 0]) ** 2 + (boxes[..., 1] - tb[..., 1]) ** 2
             + (boxes[..., 2] - tb[..., 2].sqrt()) ** 2 + (boxes[..., 3] - tb[..., 3].sqrt()) ** 2)
    conf = boxes[..., 4]
    zero = conf.new_zeros(())
    lbox = lambda_coord * torch.where(resp, coord, zero).sum()
    lobj = torch.where(resp, (conf.abs() ** obj_gamma if obj_gamma else 1) * (iou - conf) ** 2, zero).sum()
    lnoobj = lambda_noobj * torch.where(resp, zero, conf.abs() ** (noobj_gamma + 2)).sum()
    lcls = torch.where(is_obj[..., None], (p[..., 5 * n_box:] - t[..., 5:]) ** 2, zero).sum()
    parts = {"box": lbox, "obj": lobj, "noobj": lnoobj, "cls": lcls}
    return lbox + lobj + lnoobj + lcls, parts


def yolov1_background_gradient(conf: TensorLike, gamma: float = 0.0, lambda_noobj: float = 0.5) -> torch.Tensor:
    """See :func:`ref_numpy.loss.yolov1_background_gradient`; here by autograd of
    :func:`yolov1_loss` (one cell per confidence, one backward pass), float64."""
    c = as_tensor("conf", conf, ndim=1, finite=True, floating=True).to(torch.float64)
    if c.numel() and not bool((c > 0).all()):
        raise ValueError(f"conf: expected confidences > 0, got a minimum of {c.min().item()!r}")
    k = c.shape[0]
    rest = torch.full((k, 1, 1, 4), 0.5, dtype=torch.float64, device=c.device)
    leaf = c.detach().clone().requires_grad_(True)
    pred = torch.cat([rest, leaf.view(k, 1, 1, 1)], -1)  # [K, 1, 1, 5]: one image per confidence
    target = torch.zeros((k, 1, 1, 5), dtype=torch.float64, device=c.device)
    total, _ = yolov1_loss(pred, target, lambda_noobj=lambda_noobj, noobj_gamma=gamma)
    (grad,) = torch.autograd.grad(total, leaf)  # the loss sums over images: one gradient each
    return grad


# ----------------------------------------------------------------------------- seed tutorials

def _check_targets6(targets, dtype, device, bs: int, nc: int) -> torch.Tensor:
    t = as_tensor("targets", targets, ndim=2, finite=True, floating=True, device=device)
    t = t.to(device=device, dtype=dtype)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6], got {tuple(t.shape)}")
    img, cls = t[:, 0], t[:, 1]
    if bool(((img != img.floor()) | (img < 0) | (img >= bs)).any()):
        raise ValueError(f"targets: image index (column 0) must be an integer in [0, {bs})")
    if bool(((cls != cls.floor()) | (cls < 0) | (cls >= nc)).any()):
        raise ValueError(f"targets: class (column 1) must be an integer in [0, {nc})")
    if bool((t[:, 4:6] <= 0).any()):
        raise ValueError("targets: expected w, h > 0 (columns 4, 5)")
    return t


def _check_finite(name: str, x: torch.Tensor) -> None:
    """Same contract as ``as_tensor(finite=True)`` in one cheap pass: a sum is finite when every
    element is (NaN and inf propagate), and about twice as fast as ``aminmax``; only a non-finite
    sum (a bad element, or finite values whose sum overflows) pays for the exact min/max test."""
    if x.numel() and not bool(torch.isfinite(x.sum())):
        lo, hi = torch.aminmax(x)
        if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")


def _check_preds(name: str, p, na: int | None = None, check_finite: bool = True) -> torch.Tensor:
    p = _compute_dtype(as_tensor(name, p, ndim=5, floating=True))
    if check_finite:
        _check_finite(name, p)
    if p.shape[-1] < 6 or (na is not None and p.shape[1] != na):
        raise ValueError(f"{name}: expected shape [bs, {na or 'na'}, ny, nx, 5 + nc], "
                         f"got {tuple(p.shape)}")
    return p


def _one_hot(cls: torch.Tensor, nc: int, dtype) -> torch.Tensor:
    return (torch.arange(nc, device=cls.device) == cls[:, None]).to(dtype)


def yolo_scratch_lesson_loss(preds: TensorLike, targets: TensorLike, anchors: TensorLike, stride: float,
                             lambda_box: float = 5.0, lambda_obj: float = 1.0, lambda_noobj: float = 0.5,
                             lambda_cls: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_scratch_lesson_loss`."""
    p = _check_preds("preds", preds)
    bs, na, ny, nx, no = p.shape
    anc = as_tensor("anchors", anchors, finite=True, floating=True, device=p.device).to(p.dtype)
    if tuple(anc.shape) != (na, 2) or bool((anc <= 0).any()):
        raise ValueError(f"anchors: expected positive [na={na}, 2], got {tuple(anc.shape)}")
    if not stride > 0:
        raise ValueError(f"stride: expected > 0, got {stride!r}")
    t = _check_targets6(targets, p.dtype, p.device, bs, no - 5)

    a = wh_iou(t[:, 4:6], anc).argmax(1)
    gxy = t[:, 2:4] / stride
    gi = gxy[:, 0].floor().clamp(0, nx - 1).long()
    gj = gxy[:, 1].floor().clamp(0, ny - 1).long()
    b = t[:, 0].long()
    keep = _last_wins(((b * na + a) * ny + gj) * nx + gi)
    b, a, gj, gi, t, gxy = b[keep], a[keep], gj[keep], gi[keep], t[keep], gxy[keep]
    tbox = torch.cat([gxy - torch.stack([gi, gj], 1), torch.log(t[:, 4:6] / anc[a] + 1e-8)], 1)

    ps = p[b, a, gj, gi]
    pbox = torch.cat([ps[:, :2].sigmoid(), ps[:, 2:4]], 1)
    pos = torch.zeros((bs, na, ny, nx), dtype=torch.bool, device=p.device)
    pos[b, a, gj, gi] = True
    tcls = _one_hot(t[:, 1].long(), no - 5, p.dtype)
    lbox = lambda_box * ((pbox - tbox) ** 2).sum()
    lobj = lambda_obj * _bce_with_logits(ps[:, 4], 1.0).sum()
    lnoobj = lambda_noobj * torch.where(pos, p.new_zeros(()), _bce_with_logits(p[..., 4], 0.0)).sum()
    lcls = lambda_cls * _bce_with_logits(ps[:, 5:], tcls).sum()
    parts = {"box": lbox, "obj": lobj, "noobj": lnoobj, "cls": lcls}
    return lbox + lobj + lnoobj + lcls, parts


def _decode_wh_exp(t_wh: torch.Tensor, anchor_wh: torch.Tensor) -> torch.Tensor:
    return (anchor_wh * torch.exp(t_wh.clamp(max=MAX_LOG_WH))).clamp(min=MIN_WH)


def _check_levels(preds, anchors, check_finite: bool = True):
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays")
    ps_all = [_check_preds(f"preds[{i}]", p, check_finite=check_finite) for i, p in enumerate(preds)]
    p0 = ps_all[0]
    bs, na, no = p0.shape[0], p0.shape[1], p0.shape[-1]
    nl = len(ps_all)
    for i, p in enumerate(ps_all):
        if tuple(p.shape[:2]) != (bs, na) or p.shape[-1] != no or p.dtype != p0.dtype:
            raise ValueError(f"preds[{i}]: expected [{bs}, {na}, ny, nx, {no}] of {p0.dtype}, "
                             f"got {tuple(p.shape)} {p.dtype}")
    anc = as_tensor("anchors", anchors, ndim=3, finite=True, floating=True, device=p0.device)
    anc = anc.to(device=p0.device, dtype=p0.dtype)
    if tuple(anc.shape) != (nl, na, 2) or bool((anc <= 0).any()):
        raise ValueError(f"anchors: expected positive [{nl}, {na}, 2], got {tuple(anc.shape)}")
    return ps_all, anc


def yolo_scratch_pytorch_loss(preds: Sequence[TensorLike], targets: TensorLike, anchors: TensorLike,
                              strides: Sequence[float], lambda_box: float = 7.5, lambda_obj: float = 1.0,
                              lambda_cls: float = 1.0, noobj_weight: float = 0.5
                             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Section A's loss CORRECTED (also ``yolo_scratch_pytorch_loss_corrected``); see
    :func:`ref_numpy.loss.yolo_scratch_pytorch_loss`."""
    ps_all, anc = _check_levels(preds, anchors)
    if len(strides) != len(ps_all) or not all(s > 0 for s in strides):
        raise ValueError(f"strides: expected {len(ps_all)} positive values, got {strides!r}")
    p0 = ps_all[0]
    na, no = p0.shape[1], p0.shape[-1]
    t = _check_targets6(targets, p0.dtype, p0.device, p0.shape[0], no - 5)

    lbox = lobj = lcls = p0.new_zeros(())
    b_all = t[:, 0].long()
    for p, anc_l, s in zip(ps_all, anc, strides):
        _, _, ny, nx, _ = p.shape
        a = wh_iou(t[:, 4:6], anc_l).argmax(1)
        gxy = t[:, 2:4] / s
        gi = gxy[:, 0].clamp(max=nx - 1e-3).floor().clamp(min=0).long()
        gj = gxy[:, 1].clamp(max=ny - 1e-3).floor().clamp(min=0).long()
        keep = _last_wins(((b_all * na + a) * ny + gj) * nx + gi)
        b, a, gj, gi, tk = b_all[keep], a[keep], gj[keep], gi[keep], t[keep]
        ps = p[b, a, gj, gi]
        pxy = ps[:, :2].sigmoid() + torch.stack([gi, gj], 1).to(p.dtype)
        pwh = _decode_wh_exp(ps[:, 2:4], anc_l[a] / s)
        if len(b):
            ciou = _aligned_iou(torch.cat([pxy, pwh], 1), tk[:, 2:6] / s, "ciou", "cxcywh", 1e-7)
            lbox = lbox + (1 - ciou).mean()
            lcls = lcls + _bce_with_logits(ps[:, 5:], _one_hot(tk[:, 1].long(), no - 5, p.dtype)).mean()
        pos = torch.zeros(p.shape[:4], dtype=torch.bool, device=p.device)
        pos[b, a, gj, gi] = True
        weight = torch.full(p.shape[:4], noobj_weight, dtype=p.dtype, device=p.device)
        weight[pos] = 1.0
        lobj = lobj + (weight * _bce_with_logits(p[..., 4], pos.to(p.dtype))).mean()
    lbox, lobj, lcls = lambda_box * lbox, lambda_obj * lobj, lambda_cls * lcls
    parts = {"box": lbox, "obj": lobj, "cls": lcls}
    return lbox + lobj + lcls, parts


yolo_scratch_pytorch_loss_corrected = yolo_scratch_pytorch_loss  # the explicit name of the corrected loss


def _ciou_as_printed(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """See the reference's ``_ciou_as_printed``; alpha under ``no_grad``, clamp to [-1, 1]."""
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    inter = ((torch.minimum(x2, X2) - torch.maximum(x1, X1)).clamp(min=0)
             * (torch.minimum(y2, Y2) - torch.maximum(y1, Y1)).clamp(min=0))
    iou = inter / (w1 * h1 + w2 * h2 - inter + 1e-9)
    cw, ch = torch.maximum(x2, X2) - torch.minimum(x1, X1), torch.maximum(y2, Y2) - torch.minimum(y1, Y1)
    c2 = cw ** 2 + ch ** 2 + 1e-7
    rho2 = ((X1 + X2 - x1 - x2) ** 2 + (Y1 + Y2 - y1 - y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + 1e-7)) - torch.atan(w1 / (h1 + 1e-7))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + 1e-7)
    return (iou - (rho2 / c2 + alpha * v)).clamp(-1, 1)


def yolo_scratch_pytorch_loss_as_printed(preds: Sequence[TensorLike], targets: TensorLike, anchors: TensorLike,
                                         strides: Sequence[float], lambda_box: float = 7.5,
                                         lambda_obj: float = 1.0, lambda_cls: float = 1.0,
                                         noobj_weight: float = 0.5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Section A's loss AS PRINTED (see :func:`ref_numpy.loss.yolo_scratch_pytorch_loss_as_printed`):
    ratio anchor score, class one-hots added on a collision, CIoU clamped to [-1, 1]."""
    ps_all, anc = _check_levels(preds, anchors)
    if len(strides) != len(ps_all) or not all(s > 0 for s in strides):
        raise ValueError(f"strides: expected {len(ps_all)} positive values, got {strides!r}")
    p0 = ps_all[0]
    bs, no = p0.shape[0], p0.shape[-1]
    t = _check_targets6(targets, p0.dtype, p0.device, bs, no - 5)
    half = t[:, 4:6] / 2
    xyxy = torch.cat([t[:, :2], t[:, 2:4] - half, t[:, 2:4] + half], 1)
    dense = tutorial_assign_as_printed(xyxy, anc, strides, [tuple(p.shape[2:4]) for p in ps_all], no - 5, bs)

    lbox = lobj = lcls = p0.new_zeros(())
    for p, anc_l, s, obj_t, box_t, cls_t in zip(ps_all, anc, strides, dense["obj"], dense["box"],
                                                 dense["cls"]):
        pos = obj_t == 1
        b, a, gj, gi = pos.nonzero(as_tuple=True)
        ps = p[b, a, gj, gi]
        if len(b):
            pxy = (ps[:, :2].sigmoid() + torch.stack([gi, gj], 1).to(p.dtype)) * s
            pwh = _decode_wh_exp(ps[:, 2:4], anc_l[a])
            pbox = torch.cat([pxy - pwh / 2, pxy + pwh / 2], 1)
            lbox = lbox + (1 - _ciou_as_printed(pbox, box_t[b, a, gj, gi])).mean()
            lcls = lcls + _bce_with_logits(ps[:, 5:], cls_t[b, a, gj, gi]).mean()
        weight = torch.full(p.shape[:4], noobj_weight, dtype=p.dtype, device=p.device)
        weight[pos] = 1.0
        lobj = lobj + (weight * _bce_with_logits(p[..., 4], obj_t)).mean()
    lbox, lobj, lcls = lambda_box * lbox, lambda_obj * lobj, lambda_cls * lcls
    parts = {"box": lbox, "obj": lobj, "cls": lcls}
    return lbox + lobj + lcls, parts


# ----------------------------------------------------------------------------- grid losses (C)
# See ref_numpy.loss (section C of seed_systems.md): as printed and *_corrected, (total, parts).

def _check_grid_pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    p = _compute_dtype(as_tensor("pred", pred, ndim=4, floating=True))
    t = as_tensor("target", target, ndim=4, finite=True, floating=True, device=p.device).to(p.dtype)
    if p.shape != t.shape or p.shape[-1] < 6:
        raise ValueError(f"pred and target: expected one shape [bs, S, S, 5 + C] with C >= 1, "
                         f"got {tuple(p.shape)} and {tuple(t.shape)}")
    return p, t


def _mean(x: torch.Tensor, empty: float) -> torch.Tensor:
    """Mean of all elements; for none, NaN (``empty`` NaN, as ``nn.MSELoss``) or 0 (still in the graph)."""
    if x.numel() or math.isnan(empty):
        return x.mean()
    return x.sum() * 0.0


def _smooth_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.smooth_l1_loss(a, b, reduction="none", beta=1.0)


def _bce_probabilities(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise ``F.binary_cross_entropy`` (log floored at -100), with its [0, 1] input
    requirement raised as ValueError (torch raises RuntimeError on CPU and asserts on CUDA)."""
    if bool(((x < 0) | (x > 1)).any()):
        raise ValueError("pred: class scores (channels 5:) outside [0, 1]: the loss as printed calls "
                         "F.binary_cross_entropy, which takes probabilities (torch raises 'all elements of "
                         "input should be between 0 and 1'); apply a sigmoid first or use the *_corrected "
                         "loss, which takes logits")
    return -(y * x.log().clamp(min=-100) + (1 - y) * torch.log1p(-x).clamp(min=-100))


def _grid_parts(**parts: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return sum(parts.values()), parts


def yolo_loss_mse(pred: TensorLike, target: TensorLike) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_mse` (section C.1 as printed: three ``nn.MSELoss()``)."""
    p, t = _check_grid_pair(pred, target)
    return _grid_parts(box=F.mse_loss(p[..., :4], t[..., :4]), conf=F.mse_loss(p[..., 4], t[..., 4]),
                       cls=F.mse_loss(p[..., 5:], t[..., 5:]))


def yolo_loss_mse_corrected(pred: TensorLike, target: TensorLike) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_mse_corrected` (box and class terms at object cells only)."""
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4] != 0
    return _grid_parts(box=_mean((p[obj][:, :4] - t[obj][:, :4]) ** 2, 0.0), conf=F.mse_loss(p[..., 4], t[..., 4]),
                       cls=_mean((p[obj][:, 5:] - t[obj][:, 5:]) ** 2, 0.0))


def _adv_parts(p, t, box_mask, obj, conf_target, lambda_coord, lambda_obj, lambda_noobj, lambda_class,
               corrected: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    empty = 0.0 if corrected else math.nan
    conf = p[..., 4]
    lbox = _mean(_smooth_l1(p[box_mask][:, :4], t[box_mask][:, :4]), empty)
    lobj = _mean((conf[obj] - conf_target[obj]) ** 2, empty)
    lnoobj = _mean((conf[~obj] - conf_target[~obj]) ** 2, empty)
    if corrected:
        lcls = _mean(_bce_with_logits(p[obj][:, 5:], t[obj][:, 5:]), 0.0)
    else:
        lcls = _mean(_bce_probabilities(p[obj][:, 5:], t[obj][:, 5:]), math.nan)
    return _grid_parts(box=lambda_coord * lbox, obj=lambda_obj * lobj, noobj=lambda_noobj * lnoobj,
                       cls=lambda_class * lcls)


def yolo_loss_adv(pred: TensorLike, target: TensorLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                  lambda_noobj: float = 0.5, lambda_class: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_adv` (C.2 as printed: NaN on an empty mask, class
    scores outside [0, 1] raise ValueError where ``F.binary_cross_entropy`` would crash)."""
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].bool()
    return _adv_parts(p, t, torch.ones_like(obj), obj, t[..., 4], lambda_coord, lambda_obj, lambda_noobj,
                      lambda_class, corrected=False)


def yolo_loss_adv_corrected(pred: TensorLike, target: TensorLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                            lambda_noobj: float = 0.5, lambda_class: float = 1.0
                            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_adv_corrected` (box at object cells, empty masks 0,
    BCE-with-logits classes)."""
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].bool()
    return _adv_parts(p, t, obj, obj, t[..., 4], lambda_coord, lambda_obj, lambda_noobj, lambda_class,
                      corrected=True)


def yolo_loss_iou(pred: TensorLike, target: TensorLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                  lambda_noobj: float = 0.5, lambda_class: float = 1.0, iou_threshold: float = 0.5
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_iou` (C.3 as printed: object mask IoU > 0.5, a poor
    box of an object trained as background)."""
    p, t = _check_grid_pair(pred, target)
    with torch.no_grad():
        mask = _aligned_iou(p[..., :4], t[..., :4], "iou", "cxcywh", 1e-7) > iou_threshold
    return _adv_parts(p, t, torch.ones_like(mask), mask, mask.to(p.dtype), lambda_coord, lambda_obj,
                      lambda_noobj, lambda_class, corrected=False)


def yolo_loss_iou_corrected(pred: TensorLike, target: TensorLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                            lambda_noobj: float = 0.5, lambda_class: float = 1.0
                            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolo_loss_iou_corrected` (target's object mask, conf target =
    IoU without gradient, the corrections of ``yolo_loss_adv_corrected``)."""
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].bool()
    with torch.no_grad():
        iou = _aligned_iou(p[..., :4], t[..., :4], "iou", "cxcywh", 1e-7)
        conf_target = torch.where(obj, iou, torch.zeros_like(iou))
    return _adv_parts(p, t, obj, obj, conf_target, lambda_coord, lambda_obj, lambda_noobj, lambda_class,
                      corrected=True)


# ----------------------------------------------------------------------------- YOLOv5

def _log1p_small(e: torch.Tensor) -> torch.Tensor:
    """``log1p(e)`` for ``e`` in [0, 1], in place, from ``log`` and ``exp``-class kernels only:
    ``log(u) - ((u - 1) - e) / u`` with ``u = 1 + e`` (the rounding of ``1 + e`` corrected to
    first order; within 1e-7 absolute of ``torch.log1p`` in float32, 2e-16 in float64). On
    CPU this torch build's ``log1p`` / ``softplus`` / BCE kernels run at about 35 ns an element
    in some process states (a scalar path), ``log`` at about 1.5 ns, so this is what the large
    BCE sums use."""
    u = e + 1
    corr = (u - 1).sub_(e).div_(u)
    return torch.log_(u).sub_(corr)


def _softplus_fast(x: torch.Tensor) -> torch.Tensor:
    """``softplus(x) = BCE-with-logits(x, 0) = max(x, 0) + log1p(exp(-|x|))`` (new tensor;
    in-place steps: each fresh tensor of this size costs page faults)."""
    return _log1p_small(x.abs().neg_().exp_()).add_(x.clamp(min=0))


class _BCEMean(torch.autograd.Function):
    """``F.binary_cross_entropy_with_logits(x, y, reduction="mean")`` (no weights) through
    :func:`_softplus_fast`: ``mean(softplus(x) - x y)``; backward the exact
    ``(sigmoid(x) - y) / n`` (and ``-x / n`` for ``y``), as torch's."""

    @staticmethod
    def forward(ctx, x, y):  # noqa: D401
        ctx.save_for_backward(x, y)
        return _softplus_fast(x).addcmul_(x, y, value=-1).mean()

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        n = max(x.numel(), 1)
        gx = (torch.sigmoid(x) - y).mul_(grad / n) if ctx.needs_input_grad[0] else None
        gy = (x * (-grad / n)) if ctx.needs_input_grad[1] else None
        return gx, gy


def _bce_mean(x, y, pos_weight, fl_gamma, alpha=0.25):
    if fl_gamma <= 0 and pos_weight == 1 and x.device.type == "cpu":
        return _BCEMean.apply(x, y)
    if fl_gamma <= 0:  # plain BCE: torch's fused mean reduction, one pass over the logits
        pw = None if pos_weight == 1 else torch.tensor([float(pos_weight)], dtype=x.dtype, device=x.device)
        return F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="mean")
    loss = _bce_with_logits(x, y, pos_weight)
    if fl_gamma > 0:
        p = x.sigmoid()
        p_t = y * p + (1 - y) * (1 - p)
        loss = loss * ((y * alpha + (1 - y) * (1 - alpha)) * (1.0 - p_t) ** fl_gamma)
    return loss.mean()


class _RowsAndObjectness(torch.autograd.Function):
    """``(p[b, a, gj, gi], p[..., 4].contiguous())`` of one level's head outputs, with one
    gradient for ``p``: autograd would build a zero tensor of p's size per use (the target rows,
    the objectness channel) and add them; here the channel is written and the rows added into
    one (lazily zeroed, see ``assign._lazy_zeros_like``) tensor. The contiguous copy of the
    objectness channel: BCE on the stride-(5 + nc) view is ~3x slower."""

    @staticmethod
    def forward(ctx, p, b, a, gj, gi):  # noqa: D401
        ctx.save_for_backward(b, a, gj, gi)
        ctx.shape = p.shape
        return p[b, a, gj, gi], p[..., 4].contiguous()

    @staticmethod
    def backward(ctx, g_rows, g_obj):
        b, a, gj, gi = ctx.saved_tensors
        dtype = g_obj.dtype if g_obj is not None else g_rows.dtype
        device = g_obj.device if g_obj is not None else g_rows.device
        grad = _lazy_zeros(ctx.shape, dtype, device)
        if g_obj is not None:
            grad[..., 4] = g_obj
        if g_rows is not None and g_rows.shape[0]:
            grad.index_put_((b, a, gj, gi), g_rows, accumulate=True)
        return grad, None, None, None, None


def _check_read_finite(name: str, p: torch.Tensor, rows: torch.Tensor, b, a, gj, gi) -> None:
    """See the reference's ``_check_read_finite`` (``rows = p[b, a, gj, gi]``): the objectness
    logit of every cell, then the rows of the assigned cells; the first bad element named."""
    bad = ~torch.isfinite(p[..., 4])
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(read_finite_message(name, "an objectness logit", idx + (4,),
                                              p[idx + (4,)]))
    bad = ~torch.isfinite(rows)
    if bool(bad.any()):
        r, c = (int(i) for i in bad.nonzero()[0])
        idx = (int(b[r]), int(a[r]), int(gj[r]), int(gi[r]), c)
        raise ValueError(read_finite_message(name, "a row of an assigned cell", idx, rows[r, c]))


def yolov5_loss(preds: Sequence[TensorLike], targets: TensorLike, anchors: TensorLike, *, box: float = 0.05,
                obj: float = 1.0, cls: float = 0.5, balance: Sequence[float] = (4.0, 1.0, 0.4), anchor_t: float = 4.0,
                label_smoothing: float = 0.0, cls_pw: float = 1.0, obj_pw: float = 1.0, fl_gamma: float = 0.0,
                check_finite: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolov5_loss` (YOLOv5 v7.0 ``ComputeLoss``).

    The objectness target (CIoU) is detached and the CIoU alpha computed under no_grad, as v7.0.
    The NaN/inf check of the values the loss reads (the reference's contract) costs one host
    sync: the sums of each level's objectness channel (the contiguous copy the BCE reads) and
    of its gathered rows are added into one flag, tested once after the loss; only a non-finite
    flag (a bad value, or finite values whose sum overflows) pays for the exact, level-by-level
    diagnosis, which raises the reference's error or nothing. ``check_finite=False`` (port
    only; training uses it) skips the flag and that sync.
    """
    ps_all, anc = _check_levels(preds, anchors, check_finite=False)
    p0 = ps_all[0]
    bs, na, no = p0.shape[0], p0.shape[1], p0.shape[-1]
    nl, nc = len(ps_all), no - 5
    if len(balance) < nl:
        raise ValueError(f"balance: expected at least {nl} values, got {balance!r}")
    t = _check_targets6(targets, p0.dtype, p0.device, bs, nc)
    if bool(((t[:, 2:4] < 0) | (t[:, 2:4] > 1)).any()):
        raise ValueError("targets: expected normalised x, y in [0, 1]")

    cp, cn = 1.0 - 0.5 * label_smoothing, 0.5 * label_smoothing
    built = zip(*yolov5_build_targets(t, anc, [tuple(p.shape[2:4]) for p in ps_all],
                                      anchor_t=anchor_t))
    lbox = lobj = lcls = p0.new_zeros(())
    flag, read = p0.new_zeros(()), []  # the finiteness flag; (rows, b, a, gj, gi) per level
    for p, bal, (tcls, tbox, (b, a, gj, gi), anch) in zip(ps_all, balance, built):
        tobj = torch.zeros(p.shape[:4], dtype=p.dtype, device=p.device)
        ps, pobj = _RowsAndObjectness.apply(p, b, a, gj, gi)
        if check_finite:
            flag = flag + pobj.detach().sum() + ps.detach().sum()
            read.append((ps.detach(), b, a, gj, gi))
        if len(b):
            pxy = ps[:, :2].sigmoid() * 2 - 0.5
            pwh = ((ps[:, 2:4].sigmoid() * 2) ** 2 * anch).clamp(min=MIN_WH)
            iou = _aligned_iou(torch.cat([pxy, pwh], 1), tbox, "ciou", "cxcywh", 1e-7)
            lbox = lbox + (1.0 - iou).mean()
            keep = _last_wins(((b * na + a) * p.shape[2] + gj) * p.shape[3] + gi)
            tobj[b[keep], a[keep], gj[keep], gi[keep]] = iou[keep].detach().clamp(0)
            if nc > 1:
                tc = torch.full((len(b), nc), cn, dtype=p.dtype, device=p.device)
                tc[torch.arange(len(b), device=p.device), tcls] = cp
                lcls = lcls + _bce_mean(ps[:, 5:], tc, cls_pw, fl_gamma)
        lobj = lobj + bal * _bce_mean(pobj, tobj, obj_pw, fl_gamma)
    if check_finite and not bool(torch.isfinite(flag)):
        for i, (p, level) in enumerate(zip(ps_all, read)):
            _check_read_finite(f"preds[{i}]", p, *level)
    lbox, lobj, lcls = box * lbox, obj * lobj, cls * lcls
    parts = {"box": lbox, "obj": lobj, "cls": lcls}
    return (lbox + lobj + lcls) * bs, parts


def yolov5_scale_hyp(hyp: dict[str, float], nl: int, nc: int, imgsz: int) -> dict[str, float]:
    """See :func:`ref_numpy.loss.yolov5_scale_hyp` (plain Python; nothing to port)."""
    for key in ("box", "cls", "obj"):
        if key not in hyp:
            raise ValueError(f"hyp: missing key {key!r}")
    if nl < 1 or nc < 1 or imgsz <= 0:
        raise ValueError(f"nl, nc, imgsz: expected positive values, got {nl}, {nc}, {imgsz}")
    out = dict(hyp)
    out["box"] = hyp["box"] * (3 / nl)
    out["cls"] = hyp["cls"] * (nc / 80 * 3 / nl)
    out["obj"] = hyp["obj"] * ((imgsz / 640) ** 2 * 3 / nl)
    return out


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 (v8 loss)

def _v8_gt_tensors(t: torch.Tensor, bs: int, img_hw):
    """See ``ref_numpy.loss._v8_gt_tensors`` (ultralytics 8.3 / 8.4 ``preprocess``), without a loop."""
    nt = t.shape[0]
    img = t[:, 0].long()
    counts = torch.bincount(img, minlength=bs)
    n = int(counts.max()) if nt else 0
    order = torch.argsort(img, stable=True)
    slot = torch.empty(nt, dtype=torch.long, device=t.device)
    slot[order] = torch.arange(nt, device=t.device) - (torch.cumsum(counts, 0) - counts)[img[order]]
    h, w = img_hw
    cx, cy, bw, bh = t[:, 2] * w, t[:, 3] * h, t[:, 4] * w, t[:, 5] * h
    xyxy = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    labels = torch.zeros((bs, n, 1), dtype=t.dtype, device=t.device)
    boxes = torch.zeros((bs, n, 4), dtype=t.dtype, device=t.device)
    labels[img, slot, 0] = t[:, 1]
    boxes[img, slot] = xyxy
    return labels, boxes, (boxes.sum(2, keepdim=True) > 0).to(t.dtype)


def _dfl_loss(pred_dist: torch.Tensor, target: torch.Tensor, reg_max: int) -> torch.Tensor:
    """ultralytics 8.3 / 8.4 ``DFLoss`` (see the reference)."""
    target = target.clamp(0, reg_max - 1 - 0.01)
    tl = target.long()
    tr = tl + 1
    wl = tr - target
    wr = 1 - wl
    ce_l = F.cross_entropy(pred_dist, tl.reshape(-1), reduction="none").reshape(tl.shape)
    ce_r = F.cross_entropy(pred_dist, tr.reshape(-1), reduction="none").reshape(tl.shape)
    return (ce_l * wl + ce_r * wr).mean(-1)


def _v8_gather(levels, b: torch.Tensor, a: torch.Tensor, ch: torch.Tensor | slice) -> torch.Tensor:
    """Head outputs at anchors, ``cat(levels, 2)[b, ch, a]`` without the concatenation.

    ``levels``: [bs, no, hw_l] per level; ``b``, ``a`` [P] image and global anchor index;
    ``ch``: a tensor [P], one channel per pair (-> [P]), or a slice of channels (-> [P, C])."""
    parts, where, lo = [], [], 0
    for v in levels:
        hi = lo + v.shape[2]
        sel = ((a >= lo) & (a < hi)).nonzero()[:, 0]
        bb, aa = b[sel], a[sel] - lo
        parts.append(v[bb, ch, aa] if isinstance(ch, slice) else v[bb, ch[sel], aa])
        where.append(sel)
        lo = hi
    order = torch.cat(where)
    inv = torch.empty_like(order)
    inv[order] = torch.arange(order.shape[0], device=order.device)
    return torch.cat(parts)[inv]


class _SoftplusSum(torch.autograd.Function):
    """``F.softplus(x).sum()`` (= the sum of ``BCE(x, 0)``) without materialising softplus(x):
    blocks of about 2**18 elements through one reused buffer (no large allocation, no page
    faults, L2-sized passes); backward: ``grad * sigmoid(x)``."""

    BLOCK = 1 << 18

    @staticmethod
    def forward(ctx, x):  # noqa: D401
        ctx.save_for_backward(x)
        total = x.new_zeros(())
        if x.numel() == 0:
            return total
        # rows whose elements are contiguous (a channel slice of NCHW outputs is, per image);
        # a 1-D x is one row (per-element rows would loop over every element)
        rows = (x.reshape(x.shape[0], -1) if x.dim() > 1 and x[0].is_contiguous()
                else x.contiguous().reshape(1, -1))
        blocks = [blk for row in rows for blk in row.split(_SoftplusSum.BLOCK)]
        buf = x.new_empty(max(blk.numel() for blk in blocks))
        for blk in blocks:
            out = buf[: blk.numel()]
            if blk.device.type == "cpu":  # see _log1p_small: the softplus kernel can be 20x slower
                torch.abs(blk, out=out).neg_().exp_()
                total += _log1p_small(out).add_(blk.clamp(min=0)).sum()
            else:
                torch._C._nn.softplus(blk, 1, 20, out=out)
                total += out.sum()
        return total

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.sigmoid(x) * grad


def _softplus_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ``x`` of ``softplus(x) = BCE-with-logits(x, 0)`` (see :class:`_SoftplusSum`)."""
    return _SoftplusSum.apply(x)


def _v8_assign(levels, anchor_points, stride_t, gt_labels, gt_bboxes, mask_gt, nd, reg_max, topk,
               alpha, beta, stride_val):
    """The loss's TaskAlignedAssigner (``task_aligned_assign`` on sigmoid scores and pixel
    boxes, eps 1e-9) computed at its candidate pairs only: the boxes of the candidate anchors
    are decoded and their class logits passed through the sigmoid, nothing else. Returns the
    foreground (fb, fa) in C order, their GT index, normalised metric and GT class."""
    bs, n = gt_bboxes.shape[:2]
    dev = anchor_points.device
    empty = torch.zeros(0, dtype=torch.int64, device=dev)
    if n == 0:
        return empty, empty, empty, anchor_points.new_zeros(0), empty
    na = anchor_points.shape[0]
    labels = gt_labels[..., 0].long()
    cand, (bi, gi, ai) = _tal_candidates(anchor_points * stride_t, gt_bboxes, mask_gt[..., 0] != 0,
                                         stride_val)
    ukey, inv = torch.unique(bi * na + ai, return_inverse=True)  # the candidate anchors
    ub, ua = ukey // na, ukey % na
    dist = dfl_decode(_v8_gather(levels, ub, ua, slice(0, nd)), reg_max)
    boxes = dist2bbox(dist, anchor_points[ua], xywh=False) * stride_t[ua]  # [U, 4] pixels
    ciou = _aligned_iou(_take(gt_bboxes, bi, gi), boxes[inv], "ciou", "xyxy", 1e-7,
                        alpha_84=stride_val is not None).clamp(min=0)
    score = _v8_gather(levels, bi, ai, nd + _take(labels, bi, gi)).sigmoid()
    target_labels, _, _, tgi, (fb, fa), norm, _ = _tal_select(
        score, ciou, (bi, gi, ai), cand, labels, gt_bboxes, topk, alpha, beta, 1e-9)
    return fb, fa, tgi[fb, fa], norm, target_labels[fb, fa]


def yolov8_loss(preds: Sequence[TensorLike], targets: TensorLike, strides: Sequence[float], *, box: float = 7.5,
                cls: float = 0.5, dfl: float = 1.5, reg_max: int = 16, topk: int = 10, alpha: float = 0.5,
                beta: float = 6.0, version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """See :func:`ref_numpy.loss.yolov8_loss` (``v8DetectionLoss`` of ultralytics 8.3.253,
    ``version="8.3"``, default, or 8.4.190, ``"8.4"``).

    The assigner runs on detached sigmoid scores and pixel boxes; its target scores carry no
    gradient.
    """
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays")
    ps_all = [_compute_dtype(as_tensor(f"preds[{i}]", p, ndim=4, floating=True))
              for i, p in enumerate(preds)]
    for i, p in enumerate(ps_all):
        _check_finite(f"preds[{i}]", p)
    p0 = ps_all[0]
    dtype, device = p0.dtype, p0.device
    bs, no = p0.shape[:2]
    nc = no - 4 * reg_max
    for i, p in enumerate(ps_all):
        if tuple(p.shape[:2]) != (bs, no) or nc < 1 or p.dtype != dtype:
            raise ValueError(f"preds[{i}]: expected [{bs}, 4*reg_max + nc (nc >= 1), ny, nx], "
                             f"got {tuple(p.shape)}")
    if len(strides) != len(ps_all) or not all(s > 0 for s in strides):
        raise ValueError(f"strides: expected {len(ps_all)} positive values, got {strides!r}")
    t = _check_targets6(targets, dtype, device, bs, nc)
    if bool(((t[:, 2:4] < 0) | (t[:, 2:4] > 1)).any()):
        raise ValueError("targets: expected normalised x, y in [0, 1]")

    stride_val = check_tal_version(version, strides)
    # Autocast would run dfl_decode's matmul in half precision: the loss stays in float32/64.
    with torch.autocast(device_type=device.type, enabled=False):
        # The levels stay apart ([bs, no, hw] views, no concatenation): the class BCE is summed
        # level by level, and boxes, scores and bins are gathered at the anchors that need them
        # (the assigner's candidates, the foreground), never decoded or passed through the
        # sigmoid for all A anchors.
        levels = [p.reshape(bs, no, -1) for p in ps_all]
        sizes = [tuple(p.shape[2:]) for p in ps_all]
        strides_t = torch.tensor(strides, dtype=dtype, device=device)
        anchor_points, stride_t = make_anchors(sizes, strides_t, dtype=dtype, device=device)
        na = anchor_points.shape[0]
        if int(topk) != topk or not 1 <= topk <= na:  # task_aligned_assign's check
            raise ValueError(f"topk: expected an integer in [1, {na}] (number of anchors), got {topk!r}")
        img_hw = (sizes[0][0] * strides[0], sizes[0][1] * strides[0])
        gt_labels, gt_bboxes, mask_gt = _v8_gt_tensors(t, bs, img_hw)
        nd = 4 * reg_max

        with torch.no_grad():
            fb, fa, tgi, norm, fg_labels = _v8_assign(
                levels, anchor_points, stride_t, gt_labels, gt_bboxes, mask_gt, nd, reg_max,
                int(topk), alpha, beta, stride_val)
        norm = norm.to(dtype)
        tss = norm.sum().clamp(min=1)  # = max(sum of target_scores, 1), without a host sync
        # sum of BCE(x, y) over [bs, A, nc] = sum of BCE(x, 0) + the foreground's correction
        x_fg = _v8_gather(levels, fb, fa, nd + fg_labels)  # [n_fg] logits of the GT's class
        lcls = (sum(_softplus_sum(v[:, nd:]) for v in levels)
                + (_bce_with_logits(x_fg, norm) - _bce_with_logits(x_fg, 0.0)).sum()) / tss
        target_fg = _take(gt_bboxes, fb, tgi) / stride_t[fa]  # [n_fg, 4] grid units
        distri_fg = _v8_gather(levels, fb, fa, slice(0, nd))  # [n_fg, nd]
        pred_fg = dist2bbox(dfl_decode(distri_fg, reg_max), anchor_points[fa], xywh=False)
        iou = _aligned_iou(pred_fg, target_fg, "ciou", "xyxy", 1e-7, alpha_84=version == "8.4")
        lbox = ((1.0 - iou) * norm).sum() / tss
        target_ltrb = bbox2dist(anchor_points[fa], target_fg, reg_max)
        ldfl = (_dfl_loss(distri_fg.reshape(-1, reg_max), target_ltrb, reg_max) * norm).sum() / tss
        lbox, lcls, ldfl = box * lbox, cls * lcls, dfl * ldfl
        parts = {"box": lbox, "cls": lcls, "dfl": ldfl}
    return (lbox + lcls + ldfl) * bs, parts
