"""Box formats and the IoU family: the PyTorch port of :mod:`ref_numpy.boxes`.

Same names, arguments, conventions and order of operations as the reference (whose docstrings
are the contract); torchvision's functions are reproduced operation for operation, so float32
results agree with ``torchvision.ops`` bit for bit (CIoU up to an ulp of ``atan``).

Every function runs on the device of its input, keeps torchvision's dtype rules (``_upcast``)
and accepts any leading batch dimensions (``[..., N, 4]`` for pairwise, ``[..., 4]`` for
element-wise operations). Validation synchronises with the device once per call (finiteness).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ref_numpy.shared.checks import check_eps, check_finite_real, check_format, check_image_size
from ref_numpy.shared.constants import ALIGNED_FORMATS, FORMATS, IOU_KINDS  # noqa: F401
from torch_impl import _validate
from torch_impl._typing import TensorLike


# ----------------------------------------------------------------------------- private helpers

def _upcast(t: torch.Tensor) -> torch.Tensor:
    """torchvision ``_upcast``: float16/bfloat16 -> float32; small integers -> int32."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def _upcast_non_float(t: torch.Tensor) -> torch.Tensor:
    """torchvision ``_upcast_non_float``: anything but float32/float64 becomes float32."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _check_box_tensor(name: str, boxes, *, finite: bool = True, min_ndim: int = 1) -> torch.Tensor:
    t = _validate.check_boxes(name, boxes, finite=finite)
    if t.ndim < min_ndim:
        raise ValueError(f"{name}: expected shape [..., N, 4] (at least {min_ndim} dimensions), "
                         f"got {tuple(t.shape)}")
    return t


def _check_pair(boxes1, boxes2, *, last_dim: int = 4, names=("boxes1", "boxes2"),
                nonnegative: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Two stacks ``[..., N, last_dim]`` and ``[..., M, last_dim]`` with broadcastable batches."""
    out = []
    for name, x in zip(names, (boxes1, boxes2)):
        t = _validate.as_tensor(name, x, last_dim=last_dim, finite=True)
        if t.dtype == torch.bool:
            raise ValueError(f"{name}: expected a numeric array, got dtype bool")
        if t.ndim < 2:
            raise ValueError(f"{name}: expected shape [..., N, {last_dim}], got {tuple(t.shape)}")
        if nonnegative and t.numel() and bool((t < 0).any()):
            raise ValueError(f"{name}: expected non-negative sizes, got a negative value")
        out.append(t)
    try:
        torch.broadcast_shapes(out[0].shape[:-2], out[1].shape[:-2])
    except RuntimeError:
        raise ValueError(f"{names[0]} and {names[1]}: leading dimensions do not broadcast "
                         f"({tuple(out[0].shape)} vs {tuple(out[1].shape)})") from None
    return out[0], out[1]




def _size_scalar(v):
    """An image-size entry as a Python int or float (integer boxes clip like the reference)."""
    if isinstance(v, torch.Tensor):
        v = v.item()
    return int(v) if isinstance(v, (int, np.integer)) else float(v)


def _area(boxes: torch.Tensor) -> torch.Tensor:
    boxes = _upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _inter_union(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision ``_box_inter_union``: corners compared in the input dtype, then upcast."""
    area1 = _area(boxes1)
    area2 = _area(boxes2)
    lt = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # [..., N, M, 2]
    rb = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])  # [..., N, M, 2]
    wh = _upcast(rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # [..., N, M]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _enclosing_wh(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Width and height of the smallest box enclosing each pair, ``[..., N, M, 2]``, >= 0."""
    lti = torch.min(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rbi = torch.max(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    return _upcast(rbi - lti).clamp(min=0)


def _diou_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float):
    """torchvision ``_box_diou_iou`` on already upcast boxes: (DIoU, IoU), each ``[..., N, M]``."""
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    whi = _enclosing_wh(boxes1, boxes2)
    diag2 = (whi[..., 0] ** 2) + (whi[..., 1] ** 2) + eps
    x_p = (boxes1[..., 0] + boxes1[..., 2]) / 2
    y_p = (boxes1[..., 1] + boxes1[..., 3]) / 2
    x_g = (boxes2[..., 0] + boxes2[..., 2]) / 2
    y_g = (boxes2[..., 1] + boxes2[..., 3]) / 2
    centre2 = (x_p[..., :, None] - x_g[..., None, :]) ** 2 + (y_p[..., :, None] - y_g[..., None, :]) ** 2
    return iou - centre2 / diag2, iou


# ----------------------------------------------------------------------------- formats

def box_convert(boxes: TensorLike, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_convert` (torchvision ``box_convert``)."""
    b = _check_box_tensor("boxes", boxes)
    check_format("in_fmt", in_fmt)
    check_format("out_fmt", out_fmt)
    if in_fmt == out_fmt:
        return b.clone()
    if in_fmt == "xywh":
        b = _xywh_to_xyxy(b)
    elif in_fmt == "cxcywh":
        b = _cxcywh_to_xyxy(b)
    if out_fmt == "xywh":
        b = _xyxy_to_xywh(b)
    elif out_fmt == "cxcywh":
        b = _xyxy_to_cxcywh(b)
    return b


def _xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    x, y, w, h = b.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def _xyxy_to_xywh(b: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)


def _cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def _xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return torch.stack([cx, cy, (x2 - x1).to(cx.dtype), (y2 - y1).to(cx.dtype)], dim=-1)


def _image_scale(boxes: torch.Tensor, image_size):
    b = _upcast_non_float(boxes)
    height, width = check_image_size("image_size", image_size)
    scale = torch.tensor([float(width), float(height), float(width), float(height)],
                         dtype=b.dtype, device=b.device)
    return b, scale


def box_normalize(boxes: TensorLike, image_size: tuple[int, int]) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_normalize`: x columns / width, y columns / height."""
    b = _check_box_tensor("boxes", boxes)
    b, scale = _image_scale(b, image_size)
    return b / scale


def box_denormalize(boxes: TensorLike, image_size: tuple[int, int]) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_denormalize`: x columns * width, y columns * height."""
    b = _check_box_tensor("boxes", boxes)
    b, scale = _image_scale(b, image_size)
    return b * scale


# ----------------------------------------------------------------------------- single-box ops

def box_area(boxes: TensorLike) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_area` (torchvision ``box_area``, not clamped)."""
    return _area(_check_box_tensor("boxes", boxes))


def clip_boxes_to_image(boxes: TensorLike, size: tuple[int, int]) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.clip_boxes_to_image` (torchvision, NaN stays NaN)."""
    b = _check_box_tensor("boxes", boxes, finite=False)
    height, width = (_size_scalar(v) for v in check_image_size("size", size))
    x = b[..., 0::2].clamp(min=0, max=width)
    y = b[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=-1).reshape(b.shape)


def remove_small_boxes(boxes: TensorLike, min_size: float) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.remove_small_boxes`: int64 indices of boxes with both sides
    ``>= min_size``."""
    b = _validate.check_boxes("boxes", boxes, ndim=2, finite=False)
    if isinstance(min_size, torch.Tensor) and min_size.numel() == 1:
        min_size = min_size.item()
    check_finite_real("min_size", min_size)  # validated; compared as given (int or float)
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = (ws >= min_size) & (hs >= min_size)
    return torch.where(keep)[0]


# ----------------------------------------------------------------------------- pairwise IoU family

def box_inter_union(boxes1: TensorLike, boxes2: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise (intersection, union) of xyxy boxes: torchvision's ``_box_inter_union``."""
    b1, b2 = _check_pair(boxes1, boxes2)
    return _inter_union(b1, b2)


def box_iou(boxes1: TensorLike, boxes2: TensorLike) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_iou` (torchvision ``box_iou``, no eps)."""
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, union = _inter_union(b1, b2)
    return inter / union


def generalized_box_iou(boxes1: TensorLike, boxes2: TensorLike) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.generalized_box_iou` (torchvision, no eps)."""
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, union = _inter_union(b1, b2)
    iou = inter / union
    whi = _enclosing_wh(b1, b2)
    areai = whi[..., 0] * whi[..., 1]
    return iou - (areai - union) / areai


def distance_box_iou(boxes1: TensorLike, boxes2: TensorLike, eps: float = 1e-7) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.distance_box_iou` (torchvision ``distance_box_iou``)."""
    b1, b2 = _check_pair(boxes1, boxes2)
    eps = check_eps(eps)
    diou, _ = _diou_iou(_upcast(b1), _upcast(b2), eps)
    return diou


def complete_box_iou(boxes1: TensorLike, boxes2: TensorLike, eps: float = 1e-7) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.complete_box_iou` (torchvision; ``alpha`` without gradient)."""
    b1, b2 = _check_pair(boxes1, boxes2)
    eps = check_eps(eps)
    b1, b2 = _upcast(b1), _upcast(b2)
    diou, iou = _diou_iou(b1, b2, eps)
    w_pred = b1[..., :, None, 2] - b1[..., :, None, 0]  # [..., N, 1]
    h_pred = b1[..., :, None, 3] - b1[..., :, None, 1]
    w_gt = b2[..., None, :, 2] - b2[..., None, :, 0]  # [..., 1, M]
    h_gt = b2[..., None, :, 3] - b2[..., None, :, 1]
    v = (4 / (math.pi ** 2)) * torch.pow(torch.atan(w_pred / h_pred) - torch.atan(w_gt / h_gt), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def box_ioa(boxes1: TensorLike, boxes2: TensorLike) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.box_ioa`: intersection over the area of ``boxes1``, no eps."""
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, _ = _inter_union(b1, b2)
    return inter / _area(b1)[..., :, None]


def wh_iou(wh1: TensorLike, wh2: TensorLike) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.wh_iou`: darknet shape IoU, no eps (YOLOv5 adds 1e-7)."""
    a, b = _check_pair(wh1, wh2, last_dim=2, names=("wh1", "wh2"), nonnegative=True)
    a, b = _upcast(a), _upcast(b)
    m = torch.min(a[..., :, None, :], b[..., None, :, :])  # [..., N, M, 2]
    inter = m[..., 0] * m[..., 1]
    area1, area2 = a[..., 0] * a[..., 1], b[..., 0] * b[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter / union


# ----------------------------------------------------------------------------- element-wise (YOLO)

def voc_box_iou(boxes1: TensorLike, boxes2: TensorLike) -> torch.Tensor:
    """Pairwise IoU in the PASCAL VOC "+1 pixel" convention (py-faster-rcnn ``voc_eval``)."""
    b1, b2 = _check_pair(boxes1, boxes2)
    det, gt = _upcast_non_float(b1)[..., :, None, :], _upcast_non_float(b2)[..., None, :, :]
    ixmin = torch.maximum(gt[..., 0], det[..., 0])  # [..., N, M]
    iymin = torch.maximum(gt[..., 1], det[..., 1])
    ixmax = torch.minimum(gt[..., 2], det[..., 2])
    iymax = torch.minimum(gt[..., 3], det[..., 3])
    iw = torch.clamp(ixmax - ixmin + 1.0, min=0.0)
    ih = torch.clamp(iymax - iymin + 1.0, min=0.0)
    inters = iw * ih
    uni = ((det[..., 2] - det[..., 0] + 1.0) * (det[..., 3] - det[..., 1] + 1.0)
           + (gt[..., 2] - gt[..., 0] + 1.0) * (gt[..., 3] - gt[..., 1] + 1.0) - inters)
    return inters / uni


def coco_box_iou(dt: TensorLike, gt: TensorLike, iscrowd: TensorLike | None = None) -> torch.Tensor:
    """Pairwise IoU of COCO xywh boxes with pycocotools' crowd rule (``maskApi.c::bbIou``)."""
    d, g = _check_pair(dt, gt, names=("dt", "gt"))
    d, g = _upcast_non_float(d), _upcast_non_float(g.to(d.device))
    if iscrowd is None:
        crowd = torch.zeros(g.shape[:-1], dtype=torch.bool, device=d.device)
    else:
        crowd = _validate.as_tensor("iscrowd", iscrowd, device=d.device).to(torch.bool)
    try:
        torch.broadcast_shapes(crowd.shape, g.shape[:-1])
    except RuntimeError:
        raise ValueError(f"iscrowd: expected shape [..., {g.shape[-2]}] (one flag per gt box), "
                         f"got {tuple(crowd.shape)}") from None
    return _coco_iou(d[..., :, None, :], g[..., None, :, :], crowd[..., None, :])


def _coco_iou(dt: torch.Tensor, gt: torch.Tensor, crowd: torch.Tensor) -> torch.Tensor:
    """pycocotools ``bbIou`` element-wise on broadcast ``dt [..., 4]``, ``gt [..., 4]``."""
    dx, dy, dw, dh = dt.unbind(-1)
    gx, gy, gw, gh = gt.unbind(-1)
    w = torch.minimum(dw + dx, gw + gx) - torch.maximum(dx, gx)
    h = torch.minimum(dh + dy, gh + gy) - torch.maximum(dy, gy)
    inter = w * h
    da = dw * dh
    union = torch.where(crowd, da, da + (gw * gh) - inter)
    return torch.where((w > 0) & (h > 0), inter / union, torch.zeros((), dtype=inter.dtype,
                                                                        device=inter.device))


def darknet_box_iou(boxes1: TensorLike, boxes2: TensorLike) -> torch.Tensor:
    """Element-wise IoU of paired cxcywh boxes, darknet ``box_iou`` (0 where the union is 0)."""
    b1 = _upcast_non_float(_check_box_tensor("boxes1", boxes1))
    b2 = _upcast_non_float(_check_box_tensor("boxes2", boxes2))
    try:
        torch.broadcast_shapes(b1.shape, b2.shape)
    except RuntimeError:
        raise ValueError(f"boxes1 and boxes2: shapes do not broadcast ({tuple(b1.shape)} vs "
                         f"{tuple(b2.shape)})") from None
    ax, ay, aw, ah = b1.unbind(-1)
    bx, by, bw, bh = b2.unbind(-1)
    w = torch.minimum(ax + aw / 2, bx + bw / 2) - torch.maximum(ax - aw / 2, bx - bw / 2)
    h = torch.minimum(ay + ah / 2, by + bh / 2) - torch.maximum(ay - ah / 2, by - bh / 2)
    zero = torch.zeros((), dtype=w.dtype, device=w.device)
    inter = torch.where((w < 0) | (h < 0), zero, w * h)
    union = aw * ah + bw * bh - inter
    ok = union > 0
    return torch.where(ok, inter / torch.where(ok, union, torch.ones_like(union)), zero)


def aligned_box_iou(boxes1: TensorLike, boxes2: TensorLike, kind: str = "iou", fmt: str = "xyxy", eps: float = 1e-7
                   ) -> torch.Tensor:
    """See :func:`ref_numpy.boxes.aligned_box_iou`: YOLOv5 v7.0 ``bbox_iou`` element-wise,
    broadcasting ``[..., 4]``; autograd-safe (``alpha`` of CIoU without gradient; finite
    gradients for degenerate boxes in ``'xyxy'`` mode)."""
    b1, b2 = _check_aligned(boxes1, boxes2, kind, fmt)
    return _aligned_iou(b1, b2, kind, fmt, check_eps(eps))


def _aligned_iou(b1: torch.Tensor, b2: torch.Tensor, kind: str, fmt: str, eps: float,
                 alpha_84: bool = False) -> torch.Tensor:
    """The kernel of :func:`aligned_box_iou` on checked floating boxes (no validation, so no
    device synchronisation: callers that validated their inputs, as the losses, call it)."""
    if fmt == "cxcywh":
        x1, y1, w1, h1 = b1.unbind(-1)
        x2, y2, w2, h2 = b2.unbind(-1)
        w1_, h1_, w2_, h2_ = w1 / 2, h1 / 2, w2 / 2, h2 / 2
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1_, x1 + w1_, y1 - h1_, y1 + h1_
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2_, x2 + w2_, y2 - h2_, y2 + h2_
    else:
        b1_x1, b1_y1, b1_x2, b1_y2 = b1.unbind(-1)
        b2_x1, b2_y1, b2_x2, b2_y2 = b2.unbind(-1)
        w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
        w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = ((torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(min=0)
             * (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(min=0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)  # enclosing width
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)  # enclosing height
    if kind == "giou":
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    if kind == "diou":
        return iou - rho2 / c2
    v = (4 / math.pi ** 2) * torch.pow(torch.atan(w2 / h2) - torch.atan(w1 / h1), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps) if alpha_84 else v / (v - iou + (1 + eps))  # 8.4.190 / v7.0
    return iou - (rho2 / c2 + v * alpha)


def _check_aligned(boxes1, boxes2, kind, fmt) -> tuple[torch.Tensor, torch.Tensor]:
    b1 = _check_box_tensor("boxes1", boxes1)
    b2 = _check_box_tensor("boxes2", boxes2)
    try:
        torch.broadcast_shapes(b1.shape, b2.shape)
    except RuntimeError:
        raise ValueError(f"boxes1 and boxes2: shapes do not broadcast ({tuple(b1.shape)} vs "
                         f"{tuple(b2.shape)})") from None
    if kind not in IOU_KINDS:
        raise ValueError(f"kind: unknown IoU kind {kind!r}, expected one of {IOU_KINDS}")
    if fmt not in ALIGNED_FORMATS:
        raise ValueError(f"fmt: unknown box format {fmt!r}, expected one of {ALIGNED_FORMATS} "
                         "('cxcywh' is what YOLOv5 calls xywh)")
    return _upcast_non_float(b1), _upcast_non_float(b2)
