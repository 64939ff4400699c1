"""Detection losses: torchvision's box and focal losses, YOLOv1, the two seed tutorials' losses,
YOLOv5 v7.0 ``ComputeLoss`` and the Ultralytics 8.3 ``v8DetectionLoss``.

Where a seed write-up's code has a flaw (``shared/reference/seed_systems.md``), both forms are
here under explicit names: :func:`yolo_scratch_pytorch_loss_as_printed` (section A as printed)
and :func:`yolo_scratch_pytorch_loss` = ``yolo_scratch_pytorch_loss_corrected``.

Values only (NumPy has no autograd). Every place where the PyTorch port stops the gradient
(``.detach()``, ``torch.no_grad()``) goes through :func:`_stop_gradient` here, so that the
finite-difference tests can hold exactly those quantities fixed and compare the port's autograd
gradient with the derivative of this specification.

Conventions shared by the YOLO losses:
- each returns ``(total, parts)``: a 0-d array and a dict of 0-d arrays whose keys are the loss
  terms of that family (``box``, ``obj``, ``noobj``, ``cls``, ``dfl``), gains already applied;
- duplicate writes to one target cell: the last target (in input order) wins;
- predicted widths and heights that pass through an exp or a square are kept inside
  ``[MIN_WH, exp(MAX_LOG_WH)]`` (see those constants) so that saturated sigmoids and
  overflowing exponentials give finite values and gradients; the originals give NaN or inf
  there and are identical everywhere else.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array, check_boxes
from ref_numpy.shared.checks import check_number, check_reduction, check_tal_version, read_finite_message
from ref_numpy.shared.constants import MAX_LOG_WH, MIN_WH, ULTRALYTICS_DEFAULT_VERSION
from ref_numpy.assign import task_aligned_assign, tutorial_assign_as_printed, yolov5_build_targets
# The loss validates its inputs, then calls boxes.aligned_box_iou's kernel (_aligned_iou: YOLOv5
# bbox_iou, CIoU alpha marked by _stop_gradient, the identity that marks what the port detaches).
from ref_numpy.boxes import _aligned_iou, _stop_gradient, darknet_box_iou, wh_iou
from ref_numpy.coder import bbox2dist, dfl_decode, dist2bbox, make_anchors


# ----------------------------------------------------------------------------- helpers

def _reduce(loss: np.ndarray, reduction: str, empty_mean: float) -> np.ndarray:
    """'none' | 'mean' | 'sum'; ``empty_mean`` is what 'mean' gives on an empty input."""
    if reduction == "mean":
        return np.asarray(loss.mean() if loss.size else loss.dtype.type(empty_mean))
    if reduction == "sum":
        return np.asarray(loss.sum())
    return loss


def _upcast_non_float(x: np.ndarray) -> np.ndarray:
    """Integer and float16 boxes become float32, as torchvision's ``_upcast_non_float`` (every
    dtype but float32/float64)."""
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def _softplus_neg(x):
    """``-log(sigmoid(x)) = log(1 + exp(-x))``, stable for any x."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _bce_with_logits(x, y, pos_weight=None):
    """Element-wise ``-[pw*y*log σ(x) + (1-y)*log(1-σ(x))]``, in torch's order of operations:
    ``(1-y)*x + (1 + (pw-1)*y) * softplus(-x)``."""
    if pos_weight is None:
        return (1 - y) * x + _softplus_neg(x)
    return (1 - y) * x + ((pos_weight - 1) * y + 1) * _softplus_neg(x)


def _last_wins(keys: np.ndarray) -> np.ndarray:
    """Boolean mask over ``keys`` [N] keeping, for each distinct key, only its last occurrence."""
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    _, first_in_reversed = np.unique(keys[::-1], return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[n - 1 - first_in_reversed] = True
    return keep


# ----------------------------------------------------------------------------- torchvision

def _check_box_pair(boxes1, boxes2):
    b1 = _upcast_non_float(check_boxes("boxes1", boxes1))
    b2 = _upcast_non_float(check_boxes("boxes2", boxes2))
    if b1.shape != b2.shape:
        raise ValueError(f"boxes1 and boxes2: expected the same shape, got {b1.shape} and {b2.shape}")
    return b1, b2


def _loss_inter_union(boxes1, boxes2):
    """Element-wise intersection (0 unless both overlaps are strictly positive) and union."""
    x1, y1, x2, y2 = np.moveaxis(boxes1, -1, 0)
    x1g, y1g, x2g, y2g = np.moveaxis(boxes2, -1, 0)
    xk1, yk1 = np.maximum(x1, x1g), np.maximum(y1, y1g)
    xk2, yk2 = np.minimum(x2, x2g), np.minimum(y2, y2g)
    overlap = (yk2 > yk1) & (xk2 > xk1)
    inter = np.where(overlap, (xk2 - xk1) * (yk2 - yk1), 0).astype(x1.dtype)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(boxes1, boxes2):
    x1, y1, x2, y2 = np.moveaxis(boxes1, -1, 0)
    x1g, y1g, x2g, y2g = np.moveaxis(boxes2, -1, 0)
    return np.minimum(x1, x1g), np.minimum(y1, y1g), np.maximum(x2, x2g), np.maximum(y2, y2g)


def _diou_iou_loss(boxes1, boxes2, eps):
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    xc1, yc1, xc2, yc2 = _enclosing(boxes1, boxes2)
    diag2 = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x1, y1, x2, y2 = np.moveaxis(boxes1, -1, 0)
    x1g, y1g, x2g, y2g = np.moveaxis(boxes2, -1, 0)
    centre2 = (((x2 + x1) / 2 - (x1g + x2g) / 2) ** 2) + (((y2 + y1) / 2 - (y1g + y2g) / 2) ** 2)
    return 1 - iou + (centre2 / diag2), iou


def generalized_box_iou_loss(boxes1: ArrayLike, boxes2: ArrayLike, reduction: Literal["none", "mean", "sum"] = "none",
                             eps: float = 1e-7) -> np.ndarray:
    """GIoU loss ``1 - GIoU`` of aligned pairs of boxes (torchvision semantics).

    Args:
        boxes1 (ndarray[N, 4] or ndarray[4]): xyxy boxes, expected ``x1 < x2``, ``y1 < y2``.
        boxes2 (ndarray, same shape as boxes1): xyxy boxes.
        reduction (str): 'none' | 'mean' | 'sum'.
        eps (float): added to the union and to the enclosing area.

    Returns:
        ndarray[N] (or 0-d when reduced): ``1 - (iou - (C - union) / (C + eps))`` with
        ``iou = inter / (union + eps)`` and ``C`` the (unclamped) enclosing-box area.

    Edge cases: integer and float16 boxes are computed (and returned) in float32, as
    torchvision's ``_upcast_non_float`` (every box loss here); the intersection is 0 unless both
    overlaps are strictly positive; the pair ``[0,0,0,0]`` gives 1; 'mean' of an empty input gives 0.
    Bad shape, non-finite boxes or an unknown reduction: ValueError (an unknown reduction in
    torchvision's words, "Invalid Value for arg 'reduction'").
    Convention: torchvision.ops.generalized_box_iou_loss (0.29).
    """
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    inter, union = _loss_inter_union(b1, b2)
    iou = inter / (union + eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    loss = 1 - (iou - ((area_c - union) / (area_c + eps)))
    return _reduce(loss, reduction, empty_mean=0.0)


def distance_box_iou_loss(boxes1: ArrayLike, boxes2: ArrayLike, reduction: Literal["none", "mean", "sum"] = "none",
                          eps: float = 1e-7) -> np.ndarray:
    """DIoU loss ``1 - iou + d²/c²`` of aligned pairs of boxes (torchvision semantics).

    Args:
        boxes1, boxes2 (ndarray[N, 4] or ndarray[4]): xyxy boxes of one shape.
        reduction (str): 'none' | 'mean' | 'sum'.
        eps (float): added to the union and to the squared enclosing diagonal ``c²``.

    Returns:
        ndarray[N] (or 0-d): ``1 - inter/(union+eps) + d²/(c²+eps)``, ``d`` the distance of the
        centres ``(x1+x2)/2``.

    Edge cases: the point pair gives 1; 'mean' of an empty input gives 0.
    Convention: torchvision.ops.distance_box_iou_loss (0.29).
    """
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    loss, _ = _diou_iou_loss(b1, b2, eps)
    return _reduce(loss, reduction, empty_mean=0.0)


def complete_box_iou_loss(boxes1: ArrayLike, boxes2: ArrayLike, reduction: Literal["none", "mean", "sum"] = "none",
                          eps: float = 1e-7) -> np.ndarray:
    """CIoU loss ``DIoU loss + alpha * v`` of aligned pairs of boxes (torchvision semantics).

    Args:
        boxes1, boxes2 (ndarray[N, 4] or ndarray[4]): xyxy boxes of one shape.
        reduction (str): 'none' | 'mean' | 'sum'.
        eps (float): used ONLY in ``alpha = v / (1 - iou + v + eps)``; the DIoU part always uses
            1e-7 (torchvision's quirk, reproduced: eps=0.5 on the sheet's pair gives 1.31732).

    Returns:
        ndarray[N] (or 0-d): ``v = 4/π² (atan(w2/h2) - atan(w1/h1))²``, alpha gradient-free.

    Edge cases: zero height gives a finite value (atan(±inf)) but a NaN gradient in the port;
    the point pair gives NaN (0/0 in both atans), as torchvision. 'mean' of empty gives 0.
    Convention: torchvision.ops.complete_box_iou_loss (0.29).
    """
    check_reduction(reduction)
    b1, b2 = _check_box_pair(boxes1, boxes2)
    diou_loss, iou = _diou_iou_loss(b1, b2, 1e-7)
    x1, y1, x2, y2 = np.moveaxis(b1, -1, 0)
    x1g, y1g, x2g, y2g = np.moveaxis(b2, -1, 0)
    v = (4 / (math.pi ** 2)) * (np.arctan((x2g - x1g) / (y2g - y1g))
                                - np.arctan((x2 - x1) / (y2 - y1))) ** 2
    alpha = _stop_gradient(v / (1 - iou + v + eps))
    return _reduce(diou_loss + alpha * v, reduction, empty_mean=0.0)


def sigmoid_focal_loss(inputs: ArrayLike, targets: ArrayLike, alpha: float = 0.25, gamma: float = 2,
                       reduction: Literal["none", "mean", "sum"] = "none") -> np.ndarray:
    """RetinaNet focal loss on logits, element-wise (torchvision semantics).

    Args:
        inputs (ndarray[...]): logits.
        targets (ndarray, same shape): labels in [0, 1] (soft labels allowed).
        alpha (float): weight of positives in [0, 1], or -1 for no weighting.
        gamma (float): focusing exponent >= 0.
        reduction (str): 'none' | 'mean' | 'sum'.

    Returns:
        ndarray (inputs' shape, or 0-d): ``alpha_t * BCE(x, y) * (1 - p_t)^gamma`` with
        ``p = σ(x)``, ``p_t = p*y + (1-p)*(1-y)``, ``alpha_t = alpha*y + (1-alpha)*(1-y)``.

    Edge cases: 'mean' of an empty input gives NaN (as torchvision). alpha outside [0, 1] and
    not -1, mismatched shapes, unknown reduction: ValueError.
    Convention: torchvision.ops.sigmoid_focal_loss (0.29).
    """
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"alpha: expected a value in [0, 1] or -1, got {alpha!r}")
    check_reduction(reduction)
    x = as_array("inputs", inputs, floating=True)
    y = as_array("targets", targets, floating=True).astype(x.dtype, copy=False)
    if x.shape != y.shape:
        raise ValueError(f"inputs and targets: expected the same shape, got {x.shape} and {y.shape}")
    p = _sigmoid(x)
    ce = _bce_with_logits(x, y)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(loss, reduction, empty_mean=np.nan)


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_loss(preds: ArrayLike, targets: ArrayLike, lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                noobj_gamma: float = 0.0, obj_gamma: float = 0.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """YOLOv1 sum-of-squares loss (darknet ``detection_layer`` with rescore, sqrt w/h).

    Args:
        preds (ndarray[N, S, S, B*5 + C]): per cell, B times ``(x, y, sqrt_w, sqrt_h, conf)``
            then C class scores, all linear (no activation). x, y are offsets in the cell,
            sqrt_w, sqrt_h square roots of the size relative to the image.
        targets (ndarray[N, S, S, 5 + C]): per cell ``(x, y, w, h, obj, class one-hot...)``,
            x, y offsets in the cell, w, h relative to the image (>= 0; > 0 where obj), obj in
            {0, 1} (one object per cell).
        lambda_coord (float): weight of the coordinate terms (5).
        lambda_noobj (float): weight of the background confidence term (0.5).
        noobj_gamma (float): focal exponent >= 0 of the background term:
            ``lambda_noobj * |Ĉ|^γ * Ĉ²``; 0 is the paper's plain MSE. The seed "YOLOv1 from
            Scratch" used γ = 2 (``Ĉ⁴``): its gradient ``∝ Ĉ^(γ+1)`` vanishes for small Ĉ.
        obj_gamma (float): the same factor >= 0 on the object term: ``|Ĉ|^γ (IoU - Ĉ)²``; 0 (the
            paper, the default) leaves it plain. Not a focal loss: it is the negatives' factor
            put on the positives, so ``Ĉ = 0`` gives every confidence term zero loss and zero
            gradient, and training drives every confidence to ~0 (the symptom the write-up
            reports for its experiment 2; the sheet places the factor on the no-object term
            only, which is ``noobj_gamma``). Offered to reproduce and diagnose that collapse.

    Returns:
        (total, parts): total = box + obj + noobj + cls, summed over the batch;
        parts {"box": λcoord Σ_resp [(x-x̂)² + (y-ŷ)² + (√w-√ŵ)² + (√h-√ĥ)²],
        "obj": Σ_resp |Ĉ|^γobj (IoU - Ĉ)², "noobj": λnoobj Σ_other |Ĉ|^γ Ĉ², "cls": Σ_obj cells Σ_c (p-p̂)²}.

    The responsible predictor of an object cell is the box of highest IoU with the truth
    (predicted w, h = sqrt_w², sqrt_h², centres ``(x + col) / S``); if every IoU is 0, the box of
    smallest squared distance in (cx, cy, w, h) (the same as smallest RMSE); ties go to the
    lower index. The IoU confidence target and the choice are gradient-free. An IoU whose union
    is 0 is taken as 0. "Other" boxes are all boxes of empty cells and the non-responsible ones
    of object cells.
    Convention: darknet detection_layer (yolov1.cfg: sqrt=1, rescore=1, coord 5, noobj 0.5).
    """
    p = as_array("preds", preds, ndim=4, finite=True, floating=True)
    t = as_array("targets", targets, ndim=4, finite=True, floating=True).astype(p.dtype, copy=False)
    if p.shape[:3] != t.shape[:3]:
        raise ValueError(f"preds and targets: expected the same [N, S, S], got {p.shape} and {t.shape}")
    n_cls = t.shape[-1] - 5
    n_box = (p.shape[-1] - n_cls) // 5
    if n_cls < 0 or n_box < 1 or n_box * 5 + n_cls != p.shape[-1]:
        raise ValueError(f"preds: expected last dimension B*5 + C with C = {n_cls} from targets, "
                         f"got {p.shape[-1]}")
    noobj_gamma, obj_gamma = check_number("noobj_gamma", noobj_gamma, lo=0), check_number("obj_gamma", obj_gamma, lo=0)
    obj = t[..., 4]
    if not np.all((obj == 0) | (obj == 1)):
        raise ValueError("targets: expected obj (channel 4) in {0, 1}")
    if np.any(t[..., 2:4] < 0) or np.any((obj[..., None] == 1) & (t[..., 2:4] <= 0)):
        raise ValueError("targets: expected w, h >= 0, and > 0 in object cells")

    n, sy, sx, _ = p.shape
    boxes = p[..., : 5 * n_box].reshape(n, sy, sx, n_box, 5)  # [N, S, S, B, 5]
    col = np.arange(sx, dtype=p.dtype)[None, None, :]
    row = np.arange(sy, dtype=p.dtype)[None, :, None]
    true_img = np.stack([(t[..., 0] + col) / sx, (t[..., 1] + row) / sy, t[..., 2], t[..., 3]], -1)
    pred_img = np.stack([(boxes[..., 0] + col[..., None]) / sx, (boxes[..., 1] + row[..., None]) / sy,
                         boxes[..., 2] ** 2, boxes[..., 3] ** 2], -1)  # [N, S, S, B, 4]
    iou = _stop_gradient(darknet_box_iou(pred_img, true_img[..., None, :]))  # [N, S, S, B]
    dist = ((pred_img - true_img[..., None, :]) ** 2).sum(-1)
    best = np.where(iou.max(-1) > 0, iou.argmax(-1), dist.argmin(-1))  # [N, S, S]
    is_obj = obj == 1
    resp = (np.arange(n_box) == best[..., None]) & is_obj[..., None]  # [N, S, S, B]

    tb = t[..., None, :]
    coord = ((boxes[..., 0] - tb[..., 0]) ** 2 + (boxes[..., 1] - tb[..., 1]) ** 2
             + (boxes[..., 2] - np.sqrt(tb[..., 2])) ** 2 + (boxes[..., 3] - np.sqrt(tb[..., 3])) ** 2)
    conf = boxes[..., 4]
    lbox = lambda_coord * np.where(resp, coord, 0).sum()
    lobj = np.where(resp, (np.abs(conf) ** obj_gamma if obj_gamma else 1) * (iou - conf) ** 2, 0).sum()
    lnoobj = lambda_noobj * np.where(resp, 0, np.abs(conf) ** (noobj_gamma + 2)).sum()
    lcls = np.where(is_obj[..., None], (p[..., 5 * n_box:] - t[..., 5:]) ** 2, 0).sum()
    parts = {"box": np.asarray(lbox), "obj": np.asarray(lobj), "noobj": np.asarray(lnoobj),
             "cls": np.asarray(lcls)}
    return np.asarray(lbox + lobj + lnoobj + lcls), parts


def yolov1_background_gradient(conf: ArrayLike, gamma: float = 0.0, lambda_noobj: float = 0.5) -> np.ndarray:
    """Gradient of the YOLOv1 background (noobj) term with respect to the confidence ``Ĉ``.

    Args:
        conf (ndarray[K]): predicted confidences of one box in one empty cell, each > 0.
        gamma (float): focal exponent ``γ >= 0`` of :func:`yolov1_loss` (``noobj_gamma``);
            0 is the paper's plain MSE.
        lambda_noobj (float): weight of the background term (0.5).

    Returns:
        ndarray[K] float64: ``d loss / d Ĉ`` of ``yolov1_loss`` for that cell (``S = 1, B = 1,
        C = 0``), by central differences with relative step 1e-6 (the reference has no autograd;
        the port differentiates the same loss with autograd).

    Convention: the term is ``λnoobj * |Ĉ|^γ * Ĉ²``, so the gradient is
    ``λnoobj (γ + 2) Ĉ^(γ+1)``: it vanishes ever faster for small Ĉ as γ grows (γ = 2 pushes a
    background confidence of 0.1 down 50 times more weakly than MSE): the seed "YOLOv1 from
    Scratch" focal collapse, reproduced by ``yolo-ref focal-collapse``.
    Invariant: ``yolov1_background_gradient(2c) / yolov1_background_gradient(c) == 2^(γ+1)`` up
    to the finite-difference error.

    Raises:
        ValueError: ``conf`` not one-dimensional or not positive and finite; bad ``gamma``.
    """
    c = as_array("conf", conf, ndim=1, finite=True, floating=True).astype(np.float64)
    if not np.all(c > 0):
        raise ValueError(f"conf: expected confidences > 0, got a minimum of {c.min()!r}")
    target = np.zeros((1, 1, 1, 5))

    def loss(v: float) -> float:
        pred = np.array([[[[0.5, 0.5, 0.5, 0.5, v]]]])
        return float(yolov1_loss(pred, target, lambda_noobj=lambda_noobj, noobj_gamma=gamma)[0])

    h = 1e-6 * c
    return np.array([(loss(v + e) - loss(v - e)) / (2 * e) for v, e in zip(c, h)], dtype=np.float64)


# ----------------------------------------------------------------------------- seed tutorials

def _check_targets6(targets, dtype, bs: int, nc: int) -> np.ndarray:
    """(image, class, cx, cy, w, h) rows: image in [0, bs), class in [0, nc), w, h > 0."""
    t = as_array("targets", targets, ndim=2, finite=True, floating=True).astype(dtype, copy=False)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6], got {t.shape}")
    img, cls = t[:, 0], t[:, 1]
    if np.any((img != np.floor(img)) | (img < 0) | (img >= bs)):
        raise ValueError(f"targets: image index (column 0) must be an integer in [0, {bs})")
    if np.any((cls != np.floor(cls)) | (cls < 0) | (cls >= nc)):
        raise ValueError(f"targets: class (column 1) must be an integer in [0, {nc})")
    if np.any(t[:, 4:6] <= 0):
        raise ValueError("targets: expected w, h > 0 (columns 4, 5)")
    return t


def _check_preds(name: str, p, na: int | None = None, check_finite: bool = True) -> np.ndarray:
    p = as_array(name, p, ndim=5, finite=check_finite, floating=True)
    if p.shape[-1] < 6 or (na is not None and p.shape[1] != na):
        raise ValueError(f"{name}: expected shape [bs, {na or 'na'}, ny, nx, 5 + nc], got {p.shape}")
    return p


def yolo_scratch_lesson_loss(preds: ArrayLike, targets: ArrayLike, anchors: ArrayLike, stride: float,
                             lambda_box: float = 5.0, lambda_obj: float = 1.0, lambda_noobj: float = 0.5,
                             lambda_cls: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The "Object Detection — YOLO from Scratch" lesson loss (one level, v3-style targets).

    Args:
        preds (ndarray[bs, na, ny, nx, 5 + nc]): raw head outputs (t_x, t_y, t_w, t_h, obj, cls).
        targets (ndarray[nt, 6]): ``(image, class, cx, cy, w, h)`` in pixels.
        anchors (ndarray[na, 2]): anchor w, h in pixels.
        stride (float): pixels per cell.
        lambda_box, lambda_obj, lambda_noobj, lambda_cls (float): gains 5, 1, 0.5, 1.

    Returns:
        (total, parts) with parts {"box": λbox Σ_pos Σ (t̂ - t)², "obj": λobj Σ_pos BCE(obj, 1),
        "noobj": λnoobj Σ_neg BCE(obj, 0), "cls": λcls Σ_pos Σ_c BCE(cls, one-hot)}; sums over the
        batch. Predicted box ``(σ(t_x), σ(t_y), t_w, t_h)``; target ``(cx/stride - gx,
        cy/stride - gy, log(w/aw + 1e-8), log(h/ah + 1e-8))``.

    Assignment: the single anchor of highest shape IoU (lower index on ties), the cell
    ``floor(c/stride)`` clamped into the grid; two targets on one (image, anchor, cell): the last
    wins. Negatives are all other cells.
    """
    p = _check_preds("preds", preds)
    bs, na, ny, nx, no = p.shape
    anc = as_array("anchors", anchors, finite=True, floating=True).astype(p.dtype, copy=False)
    if anc.shape != (na, 2) or np.any(anc <= 0):
        raise ValueError(f"anchors: expected positive [na={na}, 2], got {anc.shape}")
    if not stride > 0:
        raise ValueError(f"stride: expected > 0, got {stride!r}")
    t = _check_targets6(targets, p.dtype, bs, no - 5)

    a = wh_iou(t[:, 4:6], anc).argmax(1) if len(t) else np.zeros(0, np.int64)
    gxy = t[:, 2:4] / stride
    gi = np.clip(np.floor(gxy[:, 0]), 0, nx - 1).astype(np.int64)
    gj = np.clip(np.floor(gxy[:, 1]), 0, ny - 1).astype(np.int64)
    b = t[:, 0].astype(np.int64)
    keep = _last_wins(((b * na + a) * ny + gj) * nx + gi)
    b, a, gj, gi, t, gxy = b[keep], a[keep], gj[keep], gi[keep], t[keep], gxy[keep]
    offset = gxy - np.stack([gi, gj], 1).astype(gxy.dtype)
    tbox = np.concatenate([offset, np.log(t[:, 4:6] / anc[a] + 1e-8)], 1)

    ps = p[b, a, gj, gi]  # [n, 5 + nc]
    pbox = np.concatenate([_sigmoid(ps[:, :2]), ps[:, 2:4]], 1)
    pos = np.zeros((bs, na, ny, nx), dtype=bool)
    pos[b, a, gj, gi] = True
    tcls = (np.arange(no - 5) == t[:, 1:2].astype(np.int64)).astype(p.dtype)
    lbox = lambda_box * ((pbox - tbox) ** 2).sum()
    lobj = lambda_obj * _bce_with_logits(ps[:, 4], 1).sum()
    lnoobj = lambda_noobj * np.where(pos, 0, _bce_with_logits(p[..., 4], 0)).sum()
    lcls = lambda_cls * _bce_with_logits(ps[:, 5:], tcls).sum()
    parts = {"box": np.asarray(lbox), "obj": np.asarray(lobj), "noobj": np.asarray(lnoobj),
             "cls": np.asarray(lcls)}
    return np.asarray(lbox + lobj + lnoobj + lcls), parts


def _decode_wh_exp(t_wh: np.ndarray, anchor_wh: np.ndarray) -> np.ndarray:
    """``anchor * exp(t)`` with t capped at ``MAX_LOG_WH`` and the result floored at ``MIN_WH``."""
    return np.maximum(anchor_wh * np.exp(np.minimum(t_wh, MAX_LOG_WH)), MIN_WH)


def _check_scratch_inputs(preds, targets, anchors, strides) -> tuple[list, np.ndarray, np.ndarray]:
    """Section A's loss inputs: (per-level preds, targets in their dtype, anchors [nl, na, 2])."""
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays")
    ps_all = [_check_preds(f"preds[{i}]", p) for i, p in enumerate(preds)]
    dtype = ps_all[0].dtype
    bs, na, no = ps_all[0].shape[0], ps_all[0].shape[1], ps_all[0].shape[-1]
    nl = len(ps_all)
    anc = as_array("anchors", anchors, ndim=3, finite=True, floating=True).astype(dtype, copy=False)
    if anc.shape != (nl, na, 2) or np.any(anc <= 0):
        raise ValueError(f"anchors: expected positive [{nl}, {na}, 2], got {anc.shape}")
    if len(strides) != nl or not all(s > 0 for s in strides):
        raise ValueError(f"strides: expected {nl} positive values, got {strides!r}")
    for i, p in enumerate(ps_all):
        if p.shape[:2] != (bs, na) or p.shape[-1] != no:
            raise ValueError(f"preds[{i}]: expected [{bs}, {na}, ny, nx, {no}], got {p.shape}")
    return ps_all, _check_targets6(targets, dtype, bs, no - 5), anc


def yolo_scratch_pytorch_loss(preds: Sequence[ArrayLike], targets: ArrayLike, anchors: ArrayLike,
                              strides: Sequence[float], lambda_box: float = 7.5, lambda_obj: float = 1.0,
                              lambda_cls: float = 1.0, noobj_weight: float = 0.5
                             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The "Implementing YOLO from Scratch in PyTorch" loss, CORRECTED (three levels, v3 decode,
    CIoU); also named ``yolo_scratch_pytorch_loss_corrected``. The write-up's own code is
    :func:`yolo_scratch_pytorch_loss_as_printed` (``shared/reference/seed_systems.md`` section A).

    Args:
        preds (list of ndarray[bs, na, ny, nx, 5 + nc]): raw head outputs per level.
        targets (ndarray[nt, 6]): ``(image, class, cx, cy, w, h)`` in pixels.
        anchors (ndarray[nl, na, 2]): anchor w, h in pixels.
        strides (sequence of nl floats): pixels per cell per level.
        lambda_box, lambda_obj, lambda_cls (float): gains 7.5, 1, 1.
        noobj_weight (float): BCE weight of negative cells (0.5; positives weigh 1).

    Returns:
        (total, parts) with parts {"box": λbox Σ_l mean_pos(1 - CIoU),
        "obj": λobj Σ_l mean_cells(w * BCE(obj, pos)), "cls": λcls Σ_l mean_pos,c BCE(cls, one-hot)}
        (a level without positives adds 0 to box and cls).

    Assignment: on EVERY level, the anchor of highest shape IoU with the target (pixels; lower
    index on ties), cell ``floor(min(c/stride, S - 1e-3))`` (and >= 0); the last target wins a
    duplicated (image, anchor, cell). Boxes in grid units: predicted ``(σ(t_x) + gx,
    σ(t_y) + gy, a_w/stride * exp(t_w), a_h/stride * exp(t_h))`` (exp argument capped at
    ``MAX_LOG_WH``, w, h floored at ``MIN_WH``: departures that only remove inf/NaN), target
    ``(cx, cy, w, h) / stride``; CIoU as YOLOv5's ``bbox_iou``.

    Corrected, against the write-up as printed: (1) the anchor is the shape-IoU argmax, not the
    ``min/max * min/max`` ratio product; (2) a slot two targets share takes the class of the
    last one (one-hot), not the sum of their one-hots (two-hot, or 2 for one class twice);
    (3) the CIoU is YOLOv5's (eps 1e-7, in grid units) and NOT clamped to [-1, 1], so a box far
    off with the wrong aspect (CIoU < -1) still gets a gradient. Kept: every level, the cell
    rule, the 0.5 / 1 objectness weights, the means and gains.
    """
    ps_all, t, anc = _check_scratch_inputs(preds, targets, anchors, strides)
    dtype = ps_all[0].dtype
    na, no = ps_all[0].shape[1], ps_all[0].shape[-1]

    lbox = lobj = lcls = dtype.type(0)
    b_all = t[:, 0].astype(np.int64)
    for p, anc_l, s in zip(ps_all, anc, strides):
        _, _, ny, nx, _ = p.shape
        a = wh_iou(t[:, 4:6], anc_l).argmax(1) if len(t) else np.zeros(0, np.int64)
        gxy = t[:, 2:4] / s
        gi = np.maximum(np.floor(np.minimum(gxy[:, 0], nx - 1e-3)), 0).astype(np.int64)
        gj = np.maximum(np.floor(np.minimum(gxy[:, 1], ny - 1e-3)), 0).astype(np.int64)
        keep = _last_wins(((b_all * na + a) * ny + gj) * nx + gi)
        b, a, gj, gi, tk = b_all[keep], a[keep], gj[keep], gi[keep], t[keep]
        ps = p[b, a, gj, gi]
        pxy = _sigmoid(ps[:, :2]) + np.stack([gi, gj], 1).astype(dtype)
        pwh = _decode_wh_exp(ps[:, 2:4], anc_l[a] / s)
        if len(b):
            ciou = _aligned_iou(np.concatenate([pxy, pwh], 1), tk[:, 2:6] / s, "ciou", "cxcywh", 1e-7)
            lbox = lbox + (1 - ciou).mean()
            tcls = (np.arange(no - 5) == tk[:, 1:2].astype(np.int64)).astype(dtype)
            lcls = lcls + _bce_with_logits(ps[:, 5:], tcls).mean()
        pos = np.zeros(p.shape[:4], dtype=bool)
        pos[b, a, gj, gi] = True
        weight = np.where(pos, 1, noobj_weight).astype(dtype)
        lobj = lobj + (weight * _bce_with_logits(p[..., 4], pos.astype(dtype))).mean()
    lbox, lobj, lcls = lambda_box * lbox, lambda_obj * lobj, lambda_cls * lcls
    parts = {"box": np.asarray(lbox), "obj": np.asarray(lobj), "cls": np.asarray(lcls)}
    return np.asarray(lbox + lobj + lcls), parts


yolo_scratch_pytorch_loss_corrected = yolo_scratch_pytorch_loss  # the explicit name of the corrected loss


def _ciou_as_printed(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Section A's CIoU of aligned xyxy pixel boxes [n, 4], clamped to [-1, 1]: the IoU with
    eps 1e-9 in the union, eps 1e-7 in the enclosing diagonal, the atan arguments and alpha's
    denominator; alpha marked by :func:`_stop_gradient` (the port computes it without grad)."""
    x1, y1, x2, y2 = np.moveaxis(b1, -1, 0)
    X1, Y1, X2, Y2 = np.moveaxis(b2, -1, 0)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    inter = (np.maximum(np.minimum(x2, X2) - np.maximum(x1, X1), 0)
             * np.maximum(np.minimum(y2, Y2) - np.maximum(y1, Y1), 0))
    iou = inter / (w1 * h1 + w2 * h2 - inter + 1e-9)
    cw, ch = np.maximum(x2, X2) - np.minimum(x1, X1), np.maximum(y2, Y2) - np.minimum(y1, Y1)
    c2 = cw ** 2 + ch ** 2 + 1e-7
    rho2 = ((X1 + X2 - x1 - x2) ** 2 + (Y1 + Y2 - y1 - y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (np.arctan(w2 / (h2 + 1e-7)) - np.arctan(w1 / (h1 + 1e-7))) ** 2
    alpha = _stop_gradient(v / (1 - iou + v + 1e-7))
    return np.clip(iou - (rho2 / c2 + alpha * v), -1, 1)


def yolo_scratch_pytorch_loss_as_printed(preds: Sequence[ArrayLike], targets: ArrayLike, anchors: ArrayLike,
                                         strides: Sequence[float], lambda_box: float = 7.5,
                                         lambda_obj: float = 1.0, lambda_cls: float = 1.0,
                                         noobj_weight: float = 0.5) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The "Implementing YOLO from Scratch in PyTorch" loss AS PRINTED (to reproduce and audit the
    write-up; :func:`yolo_scratch_pytorch_loss` is the corrected one).

    Args: as :func:`yolo_scratch_pytorch_loss` (targets ``(image, class, cx, cy, w, h)`` in
    pixels, anchors in pixels); the targets become xyxy pixels for the assignment.

    Returns:
        (total, parts) with parts {"box": λbox Σ_l mean_pos(1 - clamp(CIoU, -1, 1)),
        "obj": λobj Σ_l mean_cells(w * BCE(obj, obj_t)), "cls": λcls Σ_l mean_pos,c BCE(cls, cls_t)},
        w = 1 at positives and ``noobj_weight`` elsewhere, BCE on logits; a level without
        positives adds 0 to box and cls.

    Convention (``shared/reference/seed_systems.md``, section A, "Loss (as printed)"): targets
    are :func:`ref_numpy.assign.tutorial_assign_as_printed` (ratio anchor score, every level,
    class one-hot added: a collision gives a two-hot ``cls_t``, or 2 for two GTs of one class);
    positives are the slots with ``obj_t = 1``, their box target the last writer's xyxy.
    Prediction decoded in pixels, xyxy: centre ``(σ(t_xy) + cell) * stride``, size
    ``exp(t_wh) * anchor`` (exp argument capped at ``MAX_LOG_WH``, size floored at ``MIN_WH``,
    as every loss here: only inf/NaN removed). CIoU: IoU eps 1e-9 in the union, eps 1e-7 in the
    enclosing diagonal and the atan arguments, alpha without gradient, clamped to [-1, 1]. The
    sheet names no eps in alpha's denominator; 1e-7 is put there so that a perfect float32
    prediction (IoU rounding to exactly 1, v = 0) gives 1, not 0/0. Levels summed; total =
    7.5 box + 1 obj + 1 cls by default.
    Differs from the corrected loss exactly in the anchor score, the class row of a collision
    and the CIoU (clamp, eps, pixel units): without a collision, where the ratio and shape-IoU
    anchors agree and no CIoU is below -1, the two agree up to the eps terms.
    """
    ps_all, t, anc = _check_scratch_inputs(preds, targets, anchors, strides)
    dtype = ps_all[0].dtype
    bs, no = ps_all[0].shape[0], ps_all[0].shape[-1]
    half = t[:, 4:6] / 2
    xyxy = np.concatenate([t[:, :2], t[:, 2:4] - half, t[:, 2:4] + half], 1)
    dense = tutorial_assign_as_printed(xyxy, anc, strides, [p.shape[2:4] for p in ps_all], no - 5, bs)

    lbox = lobj = lcls = dtype.type(0)
    for p, anc_l, s, obj_t, box_t, cls_t in zip(ps_all, anc, strides, dense["obj"], dense["box"],
                                                 dense["cls"]):
        pos = obj_t == 1
        b, a, gj, gi = np.nonzero(pos)  # positives in C order (the port's nonzero order)
        ps = p[b, a, gj, gi]
        if len(b):
            pxy = (_sigmoid(ps[:, :2]) + np.stack([gi, gj], 1).astype(dtype)) * dtype.type(s)
            pwh = _decode_wh_exp(ps[:, 2:4], anc_l[a])
            pbox = np.concatenate([pxy - pwh / 2, pxy + pwh / 2], 1)
            lbox = lbox + (1 - _ciou_as_printed(pbox, box_t[b, a, gj, gi])).mean()
            lcls = lcls + _bce_with_logits(ps[:, 5:], cls_t[b, a, gj, gi]).mean()
        weight = np.where(pos, 1, noobj_weight).astype(dtype)
        lobj = lobj + (weight * _bce_with_logits(p[..., 4], obj_t)).mean()
    lbox, lobj, lcls = lambda_box * lbox, lambda_obj * lobj, lambda_cls * lcls
    parts = {"box": np.asarray(lbox), "obj": np.asarray(lobj), "cls": np.asarray(lcls)}
    return np.asarray(lbox + lobj + lcls), parts


# ----------------------------------------------------------------------------- grid losses (C)
# "How can a YOLO loss function be implemented from scratch in PyTorch?" (seed_systems.md, C):
# pred, target [bs, S, S, 5 + C], channels (x, y, w, h, conf, classes...). Each loss AS PRINTED
# and ``*_corrected``; every one returns (total, parts) like the other YOLO losses here.

def _check_grid_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """pred (any values: NaN propagates) and target (finite) of one shape [bs, S, S, 5 + C], C >= 1."""
    p = as_array("pred", pred, ndim=4, floating=True)
    t = as_array("target", target, ndim=4, finite=True, floating=True).astype(p.dtype, copy=False)
    if p.shape != t.shape or p.shape[-1] < 6:
        raise ValueError(f"pred and target: expected one shape [bs, S, S, 5 + C] with C >= 1, "
                         f"got {p.shape} and {t.shape}")
    return p, t


def _mean(x: np.ndarray, empty) -> np.ndarray:
    """Mean of all elements; ``empty`` (NaN as ``nn.MSELoss`` gives, or 0) for none."""
    return x.mean() if x.size else np.asarray(empty, dtype=x.dtype)


def _smooth_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise ``nn.SmoothL1Loss(reduction='none')`` with beta 1."""
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d * d, d - 0.5)


def _bce_probabilities(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Element-wise ``F.binary_cross_entropy`` (log terms floored at -100, as torch); values of
    ``x`` outside [0, 1] are what the write-up's call cannot take: ValueError (torch raises
    RuntimeError on CPU, a device-side assert on CUDA). NaN passes through as NaN."""
    if np.any((x < 0) | (x > 1)):
        raise ValueError("pred: class scores (channels 5:) outside [0, 1]: the loss as printed calls "
                         "F.binary_cross_entropy, which takes probabilities (torch raises 'all elements of "
                         "input should be between 0 and 1'); apply a sigmoid first or use the *_corrected "
                         "loss, which takes logits")
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))


def _stack_parts(**parts) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    out = {k: np.asarray(v) for k, v in parts.items()}
    return np.asarray(sum(out.values())), out


def yolo_loss_mse(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 1 AS PRINTED: ``MSE(box) + MSE(conf) + MSE(classes)``, no gains.

    Args:
        pred (ndarray[bs, S, S, 5 + C]): per cell ``(x, y, w, h, conf, classes...)`` as the model
            emits them (any values; NaN propagates).
        target (ndarray[bs, S, S, 5 + C]): the same layout; ``conf`` != 0 marks an object cell.

    Returns:
        (total, parts) with parts {"box": mean over every cell and channel 0-3 of (p - t)²,
        "conf": mean over every cell of (p₄ - t₄)², "cls": mean over every cell and class of
        (p - t)²}; total = box + conf + cls.

    Convention (``shared/reference/seed_systems.md`` C.1): three ``nn.MSELoss()`` (mean over
    all elements), so empty cells pull their boxes and classes towards the target's zeros;
    :func:`yolo_loss_mse_corrected` restricts those two terms to object cells.
    Raises: ValueError for shapes that differ or a last dimension < 6, or a non-finite target.
    """
    p, t = _check_grid_pair(pred, target)
    return _stack_parts(box=((p[..., :4] - t[..., :4]) ** 2).mean(), conf=((p[..., 4] - t[..., 4]) ** 2).mean(),
                        cls=((p[..., 5:] - t[..., 5:]) ** 2).mean())


def yolo_loss_mse_corrected(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 1 CORRECTED: the box and class terms only where the target holds an object.

    Args, Returns: as :func:`yolo_loss_mse` (same parts).

    Changed, exactly: "box" and "cls" are means over the object cells (``target conf != 0``)
    only, and 0 when there is none (not NaN). Kept: "conf" over every cell, no gains, MSE.
    Invariant: equals :func:`yolo_loss_mse` when every cell holds an object.
    """
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4] != 0
    return _stack_parts(box=_mean((p[obj, :4] - t[obj, :4]) ** 2, 0), conf=((p[..., 4] - t[..., 4]) ** 2).mean(),
                        cls=_mean((p[obj, 5:] - t[obj, 5:]) ** 2, 0))


def _adv_parts(p, t, box_mask, obj, conf_target, lambda_coord, lambda_obj, lambda_noobj, lambda_class,
               corrected: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The four terms of losses 2 and 3: box SmoothL1 over ``box_mask`` cells (all, as printed),
    MSE of conf over ``obj`` / ``~obj`` against ``conf_target``, BCE of classes over ``obj``."""
    empty = 0 if corrected else np.nan
    conf = p[..., 4]
    lbox = _mean(_smooth_l1(p[box_mask, :4], t[box_mask, :4]), empty)
    lobj = _mean((conf[obj] - conf_target[obj]) ** 2, empty)
    lnoobj = _mean((conf[~obj] - conf_target[~obj]) ** 2, empty)
    if corrected:
        lcls = _mean(_bce_with_logits(p[obj, 5:], t[obj, 5:]), 0)
    else:
        lcls = _mean(_bce_probabilities(p[obj, 5:], t[obj, 5:]), np.nan)
    return _stack_parts(box=lambda_coord * lbox, obj=lambda_obj * lobj, noobj=lambda_noobj * lnoobj,
                        cls=lambda_class * lcls)


def yolo_loss_adv(pred: ArrayLike, target: ArrayLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                  lambda_noobj: float = 0.5, lambda_class: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 2 AS PRINTED: SmoothL1 box, object / no-object MSE, BCE classes.

    Args:
        pred, target (ndarray[bs, S, S, 5 + C]): as :func:`yolo_loss_mse`; ``pred``'s class
            channels must be probabilities in [0, 1] (see Raises).
        lambda_coord, lambda_obj, lambda_noobj, lambda_class (float): 5, 1, 0.5, 1.

    Returns:
        (total, parts) with parts {"box": λcoord mean SmoothL1(box) over EVERY cell,
        "obj": λobj MSE(conf[obj], t[obj]), "noobj": λnoobj MSE(conf[~obj], t[~obj]),
        "cls": λclass BCE(classes[obj], t[obj])}, ``obj = target conf != 0`` (``.bool()``).

    Convention (``shared/reference/seed_systems.md`` C.2), as the write-up's code computes it:
    an EMPTY mask gives NaN (``nn.MSELoss`` / ``F.binary_cross_entropy`` of nothing): a batch
    without objects makes "obj" and "cls" (and the total) NaN, one whose every cell holds an
    object makes "noobj" NaN. The box term runs over every cell. BCE as
    ``F.binary_cross_entropy`` (log terms floored at -100).
    Raises:
        ValueError: class scores of object cells outside [0, 1] (logits): the write-up's
            ``F.binary_cross_entropy`` raises there (RuntimeError on CPU, a device-side assert
            on CUDA); bad shapes or a non-finite target. :func:`yolo_loss_adv_corrected` takes logits.
    """
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].astype(bool)
    return _adv_parts(p, t, np.ones_like(obj), obj, t[..., 4], lambda_coord, lambda_obj, lambda_noobj,
                      lambda_class, corrected=False)


def yolo_loss_adv_corrected(pred: ArrayLike, target: ArrayLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                            lambda_noobj: float = 0.5, lambda_class: float = 1.0
                            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 2 CORRECTED (what :func:`yolo_loss_adv` meant).

    Args, Returns: as :func:`yolo_loss_adv`, except that ``pred``'s class channels are LOGITS
    (any real value).

    Changed, exactly: (1) "box" is the SmoothL1 mean over the object cells only; (2) an empty
    mask contributes 0 (no NaN); (3) "cls" is BCE-with-logits (``F.binary_cross_entropy_with_logits``)
    of the class logits, so no input can crash it. Kept: the gains, the conf MSE terms on
    ``pred``'s conf channel as given, the object mask ``target conf != 0``.
    Invariant: with every cell an object and a non-empty background impossible, "box", "obj"
    and "cls" (class logits = logit of the probabilities) equal :func:`yolo_loss_adv`'s.
    """
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].astype(bool)
    return _adv_parts(p, t, obj, obj, t[..., 4], lambda_coord, lambda_obj, lambda_noobj, lambda_class,
                      corrected=True)


def yolo_loss_iou(pred: ArrayLike, target: ArrayLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                  lambda_noobj: float = 0.5, lambda_class: float = 1.0, iou_threshold: float = 0.5
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 3 AS PRINTED: loss 2 with the object mask ``IoU(pred box, target box) > 0.5``.

    Args: as :func:`yolo_loss_adv`; ``iou_threshold`` (0.5).

    Returns: as :func:`yolo_loss_adv`, with ``obj = IoU > iou_threshold`` and the conf target
    equal to that mask (1 inside, 0 outside).

    Convention (``shared/reference/seed_systems.md`` C.3): the IoU is the project's
    :func:`ref_numpy.boxes.aligned_box_iou` (kind "iou", fmt "cxcywh", eps 1e-7) of the
    channels ``(x, y, w, h)`` of pred and target as they are, no gradient through the mask.
    The flaw kept: a cell holding an object whose predicted box is poor (IoU <= 0.5) is
    trained as BACKGROUND (conf target 0, no class loss). Empty masks give NaN and class scores
    outside [0, 1] raise, as :func:`yolo_loss_adv`.
    """
    p, t = _check_grid_pair(pred, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = _aligned_iou(p[..., :4], t[..., :4], "iou", "cxcywh", 1e-7)
    mask = iou > iou_threshold
    return _adv_parts(p, t, np.ones_like(mask), mask, mask.astype(p.dtype), lambda_coord, lambda_obj,
                      lambda_noobj, lambda_class, corrected=False)


def yolo_loss_iou_corrected(pred: ArrayLike, target: ArrayLike, lambda_coord: float = 5.0, lambda_obj: float = 1.0,
                            lambda_noobj: float = 0.5, lambda_class: float = 1.0
                            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Section C loss 3 CORRECTED: the IoU rescales the confidence target, it does not pick the objects.

    Args, Returns: as :func:`yolo_loss_adv_corrected` (class channels are logits).

    Changed, exactly, against :func:`yolo_loss_iou`: (1) the object mask is the target's
    (``target conf != 0``), so an object with a poor box is still an object; (2) the conf
    target of an object cell is the IoU of its predicted box with the target box (YOLOv1's
    rescore; the same IoU as :func:`yolo_loss_iou`, without gradient), 0 elsewhere; plus the
    three corrections of :func:`yolo_loss_adv_corrected` (box at object cells only, empty masks
    give 0, BCE-with-logits). No threshold.
    Invariant: with every predicted box equal to its target box (IoU = 1) this is
    :func:`yolo_loss_adv_corrected`.
    """
    p, t = _check_grid_pair(pred, target)
    obj = t[..., 4].astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = _stop_gradient(_aligned_iou(p[..., :4], t[..., :4], "iou", "cxcywh", 1e-7))
    return _adv_parts(p, t, obj, obj, np.where(obj, iou, 0).astype(p.dtype), lambda_coord, lambda_obj,
                      lambda_noobj, lambda_class, corrected=True)


# ----------------------------------------------------------------------------- YOLOv5

def _bce_mean(x, y, pos_weight, fl_gamma, alpha=0.25):
    """``BCEWithLogitsLoss(pos_weight)`` mean, optionally wrapped in YOLOv5's ``FocalLoss``:
    ``bce * (y*α + (1-y)(1-α)) * |y - σ(x)|^γ`` (mean)."""
    loss = _bce_with_logits(x, y, pos_weight)
    if fl_gamma > 0:
        p = _sigmoid(x)
        p_t = y * p + (1 - y) * (1 - p)
        loss = loss * ((y * alpha + (1 - y) * (1 - alpha)) * (1.0 - p_t) ** fl_gamma)
    return loss.mean()


def _check_read_finite(name: str, p: np.ndarray, b, a, gj, gi) -> None:
    """The values of one level that :func:`yolov5_loss` reads are finite: the objectness logit
    (channel 4) of every cell, then every channel of the rows at the assigned cells ``(b, a, gj,
    gi)`` (in assignment order). The error names the first bad element: ``name[b, a, y, x, c]``."""
    bad = ~np.isfinite(p[..., 4])
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(read_finite_message(name, "an objectness logit", idx + (4,),
                                              p[idx + (4,)]))
    rows = p[b, a, gj, gi]  # [n, 5 + nc]
    bad = ~np.isfinite(rows)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        idx = (int(b[r]), int(a[r]), int(gj[r]), int(gi[r]), c)
        raise ValueError(read_finite_message(name, "a row of an assigned cell", idx, rows[r, c]))


def yolov5_loss(preds: Sequence[ArrayLike], targets: ArrayLike, anchors: ArrayLike, *, box: float = 0.05,
                obj: float = 1.0, cls: float = 0.5, balance: Sequence[float] = (4.0, 1.0, 0.4), anchor_t: float = 4.0,
                label_smoothing: float = 0.0, cls_pw: float = 1.0, obj_pw: float = 1.0, fl_gamma: float = 0.0
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """YOLOv5 v7.0 training loss (``utils/loss.py::ComputeLoss.__call__``).

    Args:
        preds (list of ndarray[bs, na, ny, nx, 5 + nc]): raw head outputs per level (pre-sigmoid).
        targets (ndarray[nt, 6]): ``(image, class, x, y, w, h)``, x, y, w, h normalised to [0, 1]
            (w, h > 0).
        anchors (ndarray[nl, na, 2]): anchor w, h in grid units of each level (pixels / stride).
        box, obj, cls (float): gains (hyp.scratch-low; see :func:`yolov5_scale_hyp` for the
            scaling train.py applies).
        balance (sequence of >= nl floats): objectness weight per level.
        anchor_t (float): anchor-ratio threshold of the target assignment.
        label_smoothing (float): ε; class targets ``1 - ε/2`` and ``ε/2``.
        cls_pw, obj_pw (float): BCE ``pos_weight``.
        fl_gamma (float): > 0 wraps both BCEs in YOLOv5's ``FocalLoss`` (α = 0.25):
            ``bce * (t*α + (1-t)(1-α)) * (1 - p_t)^γ``, ``p_t = t*σ + (1-t)(1-σ)``. (The form
            ``|t - σ|^γ`` is YOLOv5's ``QFocalLoss``; the two agree only for hard targets,
            and the objectness target here is a soft IoU.)

    Returns:
        (total, parts): ``total = (box*lbox + obj*lobj + cls*lcls) * bs``; parts {"box", "obj",
        "cls"} the gained terms before the batch factor. ``lbox = Σ_l mean(1 - CIoU)`` over the
        level's matches (decoded ``pxy = 2σ - 0.5``, ``pwh = (2σ)² * anchor``), ``lobj =
        Σ_l balance[l] * mean BCE(obj, tobj)`` with ``tobj`` the detached CIoU clamped at 0 on
        matched cells (gr = 1; a cell matched twice keeps the last), 0 elsewhere;
        ``lcls = Σ_l mean BCE(cls, smoothed one-hot)``, only when nc > 1.

    Departure from v7.0: predicted w, h are floored at ``MIN_WH`` grid units before the CIoU,
    where v7.0 gives NaN (0/0 in atan(w/h)) once a w/h sigmoid saturates; identical elsewhere.
    Target assignment: :func:`ref_numpy.assign.yolov5_build_targets` (g = 0.5).

    Raises:
        ValueError: bad shapes, anchors, balance or targets (checked first, in that order);
            then, level by level, a NaN or inf among the values the loss reads, naming the
            level and the element (``preds[1][b, a, y, x, c]``): the objectness logit of any
            cell, or any channel of a row at an assigned cell (its class channel too when
            nc = 1, where no class loss reads it). The box and class channels of unassigned
            cells are never read: NaN or inf there does not change the result and is not an
            error.
    """
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays")
    ps_all = [_check_preds(f"preds[{i}]", p, check_finite=False) for i, p in enumerate(preds)]
    dtype = ps_all[0].dtype
    bs, na, no = ps_all[0].shape[0], ps_all[0].shape[1], ps_all[0].shape[-1]
    nl, nc = len(ps_all), no - 5
    for i, p in enumerate(ps_all):
        if p.shape[:2] != (bs, na) or p.shape[-1] != no:
            raise ValueError(f"preds[{i}]: expected [{bs}, {na}, ny, nx, {no}], got {p.shape}")
    anc = as_array("anchors", anchors, ndim=3, finite=True, floating=True).astype(dtype, copy=False)
    if anc.shape != (nl, na, 2) or np.any(anc <= 0):
        raise ValueError(f"anchors: expected positive [{nl}, {na}, 2], got {anc.shape}")
    if len(balance) < nl:
        raise ValueError(f"balance: expected at least {nl} values, got {balance!r}")
    t = _check_targets6(targets, dtype, bs, nc)
    if np.any((t[:, 2:4] < 0) | (t[:, 2:4] > 1)):
        raise ValueError("targets: expected normalised x, y in [0, 1]")

    cp, cn = 1.0 - 0.5 * label_smoothing, 0.5 * label_smoothing
    built = list(zip(*yolov5_build_targets(t, anc, [p.shape[2:4] for p in ps_all], anchor_t=anchor_t)))
    for i, (p, (_, _, idx, _)) in enumerate(zip(ps_all, built)):
        _check_read_finite(f"preds[{i}]", p, *idx)
    lbox = lobj = lcls = dtype.type(0)
    for p, bal, (tcls, tbox, (b, a, gj, gi), anch) in zip(ps_all, balance, built):
        tobj = np.zeros(p.shape[:4], dtype=dtype)
        if len(b):
            ps = p[b, a, gj, gi]  # [n, 5 + nc]
            pxy = _sigmoid(ps[:, :2]) * 2 - 0.5
            pwh = np.maximum((_sigmoid(ps[:, 2:4]) * 2) ** 2 * anch, MIN_WH)
            iou = _aligned_iou(np.concatenate([pxy, pwh], 1), tbox, "ciou", "cxcywh", 1e-7)
            lbox = lbox + (1.0 - iou).mean()
            keep = _last_wins(((b * na + a) * p.shape[2] + gj) * p.shape[3] + gi)
            tobj[b[keep], a[keep], gj[keep], gi[keep]] = _stop_gradient(np.clip(iou[keep], 0, None))
            if nc > 1:
                tc = np.where(np.arange(nc) == tcls[:, None], cp, cn).astype(dtype)
                lcls = lcls + _bce_mean(ps[:, 5:], tc, cls_pw, fl_gamma)
        lobj = lobj + bal * _bce_mean(p[..., 4], tobj, obj_pw, fl_gamma)
    lbox, lobj, lcls = box * lbox, obj * lobj, cls * lcls
    parts = {"box": np.asarray(lbox), "obj": np.asarray(lobj), "cls": np.asarray(lcls)}
    return np.asarray((lbox + lobj + lcls) * bs), parts


def yolov5_scale_hyp(hyp: dict[str, float], nl: int, nc: int, imgsz: int) -> dict[str, float]:
    """The loss-gain scaling YOLOv5 v7.0 ``train.py`` applies before building ``ComputeLoss``.

    Args:
        hyp (dict): hyperparameters with at least "box", "cls", "obj" (other keys pass through).
        nl (int): number of detection levels (3 for the P3-P5 models).
        nc (int): number of classes.
        imgsz (int): training image size in pixels.

    Returns:
        dict: a new dict with ``box *= 3/nl``, ``cls *= nc/80 * 3/nl``,
        ``obj *= (imgsz/640)² * 3/nl``; the input is not modified.
    """
    for key in ("box", "cls", "obj"):
        if key not in hyp:
            raise ValueError(f"hyp: missing key {key!r}")
    if nl < 1 or nc < 1 or imgsz <= 0:
        raise ValueError(f"nl, nc, imgsz: expected positive values, got {nl}, {nc}, {imgsz}")
    out = dict(hyp)
    out["box"] = hyp["box"] * (3 / nl)  # ``x *= e`` multiplies by the evaluated e
    out["cls"] = hyp["cls"] * (nc / 80 * 3 / nl)
    out["obj"] = hyp["obj"] * ((imgsz / 640) ** 2 * 3 / nl)
    return out


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 (v8 loss)

def _v8_gt_tensors(t: np.ndarray, bs: int, img_hw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ultralytics 8.3 / 8.4 ``v8DetectionLoss.preprocess``: targets [nt, 6] normalised cxcywh to padded
    per-image ``gt_labels [bs, n, 1]``, ``gt_bboxes [bs, n, 4]`` xyxy pixels (input order within
    an image, n the largest count) and ``mask_gt = sum(box) > 0`` as 0.0 / 1.0."""
    nt = t.shape[0]
    img = t[:, 0].astype(np.int64)
    counts = np.bincount(img, minlength=bs)
    n = int(counts.max()) if nt else 0
    order = np.argsort(img, kind="stable")
    slot = np.empty(nt, dtype=np.int64)
    slot[order] = np.arange(nt) - (np.cumsum(counts) - counts)[img[order]]
    h, w = img_hw
    cx, cy, bw, bh = t[:, 2] * w, t[:, 3] * h, t[:, 4] * w, t[:, 5] * h
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    labels = np.zeros((bs, n, 1), dtype=t.dtype)
    boxes = np.zeros((bs, n, 4), dtype=t.dtype)
    labels[img, slot, 0] = t[:, 1]
    boxes[img, slot] = xyxy
    return labels, boxes, (boxes.sum(2, keepdims=True) > 0).astype(t.dtype)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _dfl_loss(pred_dist: np.ndarray, target: np.ndarray, reg_max: int) -> np.ndarray:
    """ultralytics 8.3 / 8.4 ``DFLoss``: pred_dist [n*4, reg_max] logits, target [n, 4] distances; per row
    of target the mean over sides of ``CE(bin tl) * (tl + 1 - t) + CE(bin tl + 1) * (t - tl)``."""
    target = np.clip(target, 0, reg_max - 1 - 0.01)
    tl = target.astype(np.int64)  # target >= 0: truncation is floor
    tr = tl + 1
    wl = tr.astype(target.dtype) - target  # float - long stays float, as torch
    wr = 1 - wl
    logp = _log_softmax(pred_dist)  # [n*4, reg_max]
    rows = np.arange(logp.shape[0])
    ce_l = -logp[rows, tl.reshape(-1)].reshape(tl.shape)
    ce_r = -logp[rows, tr.reshape(-1)].reshape(tl.shape)
    return (ce_l * wl + ce_r * wr).mean(-1)


def yolov8_loss(preds: Sequence[ArrayLike], targets: ArrayLike, strides: Sequence[float], *, box: float = 7.5,
                cls: float = 0.5, dfl: float = 1.5, reg_max: int = 16, topk: int = 10, alpha: float = 0.5,
                beta: float = 6.0, version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The v8 detection loss (``v8DetectionLoss``) of ultralytics 8.3.253 (``version="8.3"``,
    the default) or 8.4.190 (``"8.4"``): BCE classes against task-aligned soft targets,
    target-score-weighted CIoU and DFL.

    Args:
        preds (list of ndarray[bs, 4*reg_max + nc, ny, nx]): raw head outputs per level (NCHW as
            the Detect head emits them): DFL bin logits (side-major l, t, r, b) then class logits.
        targets (ndarray[nt, 6]): ``(image, class, cx, cy, w, h)``, box normalised to the image
            ``(ny_0 * strides[0], nx_0 * strides[0])``.
        strides (sequence of nl floats): pixels per cell of each level.
        box, cls, dfl (float): gains (7.5, 0.5, 1.5).
        reg_max (int): DFL bins per side.
        topk, alpha, beta (int, float, float): the loss's ``TaskAlignedAssigner`` settings.
        version (str): '8.3' or '8.4' ('yolov5' is refused: YOLOv5 v7.0's loss is
            :func:`yolov5_loss`). '8.4' = 8.4.190's ``TaskAlignedAssigner(stride=strides)``
            (GT sides shorter than ``strides[1]`` enlarged for candidate selection, see
            :func:`ref_numpy.assign.task_aligned_assign`) and its CIoU alpha summation order
            (assigner and box loss); everything else of the loss is the same in both releases
            (8.4's ``log_softmax`` + gather DFL is the same cross-entropy; its class weights
            default to none; its ``topk2`` defaults to ``topk``).

    Returns:
        (total, parts): ``total = (box*lbox + cls*lcls + dfl*ldfl) * bs``, parts {"box", "cls",
        "dfl"} gained, before the batch factor. With ``T = max(Σ target_scores, 1)``:
        ``lcls = Σ BCE(class logits, target_scores) / T``; over foreground anchors with weight
        ``w = Σ_c target_scores``: ``lbox = Σ (1 - CIoU(pred, gt)) w / T`` (xyxy grid units,
        the release's ``bbox_iou`` eps placement), ``ldfl = Σ DFL(bins, bbox2dist(gt)) w / T``;
        box and dfl are 0 without foreground.

    Predicted boxes: ``dist2bbox(dfl_decode(bins), make_anchors(...))`` (grid units); the
    assigner (:func:`ref_numpy.assign.task_aligned_assign`, same ``version``) sees sigmoid
    scores and boxes in pixels, all gradient-free; GTs are padded per image in input order.
    """
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays")
    ps_all = [as_array(f"preds[{i}]", p, ndim=4, finite=True, floating=True)
              for i, p in enumerate(preds)]
    dtype = ps_all[0].dtype
    bs, no = ps_all[0].shape[:2]
    nc = no - 4 * reg_max
    for i, p in enumerate(ps_all):
        if p.shape[:2] != (bs, no) or nc < 1:
            raise ValueError(f"preds[{i}]: expected [{bs}, 4*reg_max + nc (nc >= 1), ny, nx], "
                             f"got {p.shape}")
    if len(strides) != len(ps_all) or not all(s > 0 for s in strides):
        raise ValueError(f"strides: expected {len(ps_all)} positive values, got {strides!r}")
    check_tal_version(version, strides)
    t = _check_targets6(targets, dtype, bs, nc)
    if np.any((t[:, 2:4] < 0) | (t[:, 2:4] > 1)):
        raise ValueError("targets: expected normalised x, y in [0, 1]")

    flat = np.concatenate([p.reshape(bs, no, -1) for p in ps_all], 2)  # [bs, no, A]
    pred_distri = flat[:, : 4 * reg_max].transpose(0, 2, 1)  # [bs, A, 4*reg_max]
    pred_scores = flat[:, 4 * reg_max:].transpose(0, 2, 1)  # [bs, A, nc]
    sizes = [p.shape[2:] for p in ps_all]
    anchor_points, stride_t = make_anchors(sizes, np.asarray(strides, dtype=dtype))
    img_hw = (sizes[0][0] * strides[0], sizes[0][1] * strides[0])
    gt_labels, gt_bboxes, mask_gt = _v8_gt_tensors(t, bs, img_hw)
    pred_bboxes = dist2bbox(dfl_decode(pred_distri, reg_max), anchor_points, xywh=False)

    _, target_bboxes, target_scores, fg, _ = task_aligned_assign(
        _sigmoid(pred_scores), pred_bboxes * stride_t, anchor_points * stride_t, gt_labels,
        gt_bboxes, mask_gt, topk=topk, num_classes=nc, alpha=alpha, beta=beta, version=version,
        strides=strides)
    target_scores = _stop_gradient(target_scores.astype(dtype, copy=False))
    tss = max(target_scores.sum(), 1)
    lcls = _bce_with_logits(pred_scores, target_scores).sum() / tss
    lbox = ldfl = dtype.type(0)
    if fg.any():
        target_bboxes = target_bboxes.astype(dtype, copy=False) / stride_t
        weight = target_scores.sum(-1)[fg]  # [n_fg]
        iou = _aligned_iou(pred_bboxes[fg], target_bboxes[fg], "ciou", "xyxy", 1e-7,
                           alpha_84=version == "8.4")
        lbox = ((1.0 - iou) * weight).sum() / tss
        target_ltrb = bbox2dist(anchor_points, target_bboxes, reg_max)
        ldfl = (_dfl_loss(pred_distri[fg].reshape(-1, reg_max), target_ltrb[fg], reg_max)
                * weight).sum() / tss
    lbox, lcls, ldfl = box * lbox, cls * lcls, dfl * ldfl
    parts = {"box": np.asarray(lbox), "cls": np.asarray(lcls), "dfl": np.asarray(ldfl)}
    return np.asarray((lbox + lcls + ldfl) * bs), parts
