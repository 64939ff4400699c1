"""Box formats and the IoU family: the NumPy specification.

Formats (last axis of 4):

- ``'xyxy'``: corners ``(x1, y1, x2, y2)``; a box is *valid* when ``x1 < x2`` and ``y1 < y2``.
- ``'xywh'``: COCO ``(x, y, w, h)`` with ``(x, y)`` the top-left corner.
- ``'cxcywh'``: ``(cx, cy, w, h)`` with ``(cx, cy)`` the centre (YOLO txt files, YOLOv5's "xywh").

A *degenerate* box has ``x2 <= x1`` or ``y2 <= y1`` (zero width, zero height, a point, or
inverted). Every docstring says what degenerate boxes give; torchvision's contract is
``0 <= x1 < x2``, so wherever it yields NaN (zero union) the reference yields NaN too.

Pairwise functions (``box_inter_union``, ``box_iou``, ``generalized_box_iou``,
``distance_box_iou``, ``complete_box_iou``, ``box_ioa``, ``wh_iou``, ``voc_box_iou``,
``coco_box_iou``) take ``[..., N, 4]`` and ``[..., M, 4]`` whose leading dimensions broadcast, and
return ``[..., N, M]``. ``aligned_box_iou`` and ``darknet_box_iou`` are element-wise and broadcast
``[..., 4]`` against ``[..., 4]``.

One IoU kernel per convention; every module that needs an IoU calls the one of its convention:

=========================  ==================================================================
convention                 kernel
=========================  ==================================================================
torchvision (no eps)       ``box_inter_union`` -> ``box_iou`` / ``box_ioa`` / GIoU / DIoU / CIoU
PASCAL VOC, +1 pixel       ``voc_box_iou`` (py-faster-rcnn ``voc_eval``)
COCO, xywh, crowd          ``coco_box_iou`` (pycocotools ``maskApi.c::bbIou``)
darknet, cxcywh, no eps    ``darknet_box_iou``; shapes only: ``wh_iou``
YOLOv5 ``bbox_iou``, eps   ``aligned_box_iou`` (IoU / GIoU / DIoU / CIoU of paired boxes)
=========================  ==================================================================

Dtypes follow torchvision's ``_upcast``: floats other than float32/float64 are computed in
float32, integers other than int32/int64 in int32; a true division of integers gives float32
(torch's default float dtype), never NumPy's float64. The order of floating-point operations is
torchvision's (or YOLOv5's for ``aligned_box_iou``) so that float32 results agree bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy import _validate
from ref_numpy.shared.checks import check_eps, check_finite_real, check_format, check_image_size
from ref_numpy.shared.constants import ALIGNED_FORMATS, FORMATS, IOU_KINDS  # noqa: F401


# ----------------------------------------------------------------------------- private helpers

def _stop_gradient(x):
    """Identity. Marks a value the port computes without gradient (``torch.no_grad``), e.g.
    CIoU's ``alpha``; a finite-difference check of the reference holds these values fixed."""
    return x


def _upcast(a: np.ndarray) -> np.ndarray:
    """torchvision ``_upcast``: float16 -> float32; int8/int16/uint8 -> int32; else unchanged."""
    if a.dtype.kind == "f":
        return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)
    return a if a.dtype in (np.int32, np.int64) else a.astype(np.int32)


def _upcast_non_float(a: np.ndarray) -> np.ndarray:
    """torchvision ``_upcast_non_float``: anything but float32/float64 becomes float32."""
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def _to_float(a: np.ndarray) -> np.ndarray:
    """What torch's true division does to an integer operand: cast it to float32."""
    return a.astype(np.float32) if a.dtype.kind in "iu" else a


def _divide(a: np.ndarray, b) -> np.ndarray:
    """``a / b`` with torch's promotion (integer / integer -> float32), silent on 0/0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _to_float(a) / (_to_float(b) if isinstance(b, np.ndarray) else b)


def _check_box_array(name: str, boxes, *, finite: bool = True, min_ndim: int = 1) -> np.ndarray:
    a = _validate.check_boxes(name, boxes, finite=finite)
    if a.dtype.kind == "b":
        raise ValueError(f"{name}: expected a numeric array, got dtype bool")
    if a.ndim < min_ndim:
        raise ValueError(f"{name}: expected shape [..., N, 4] (at least {min_ndim} dimensions), "
                         f"got {a.shape}")
    return a


def _check_pair(boxes1, boxes2, *, last_dim: int = 4, names=("boxes1", "boxes2"),
                nonnegative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two stacks ``[..., N, last_dim]`` and ``[..., M, last_dim]`` with broadcastable batches."""
    out = []
    for name, x in zip(names, (boxes1, boxes2)):
        a = _validate.as_array(name, x, last_dim=last_dim, finite=True)
        if a.dtype.kind == "b":
            raise ValueError(f"{name}: expected a numeric array, got dtype bool")
        if a.ndim < 2:
            raise ValueError(f"{name}: expected shape [..., N, {last_dim}], got {a.shape}")
        if nonnegative and np.any(a < 0):
            raise ValueError(f"{name}: expected non-negative sizes, got a negative value")
        out.append(a)
    try:
        np.broadcast_shapes(out[0].shape[:-2], out[1].shape[:-2])
    except ValueError:
        raise ValueError(f"{names[0]} and {names[1]}: leading dimensions do not broadcast "
                         f"({out[0].shape} vs {out[1].shape})") from None
    return out[0], out[1]


def _size_scalar(v):
    """An image-size entry as a Python int or float (so integer boxes clip like torch)."""
    return int(v) if isinstance(v, (int, np.integer)) else float(v)


def _area(boxes: np.ndarray) -> np.ndarray:
    boxes = _upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _inter_union(boxes1: np.ndarray, boxes2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torchvision ``_box_inter_union``: corners compared in the input dtype, then upcast."""
    area1 = _area(boxes1)
    area2 = _area(boxes2)
    lt = np.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # [..., N, M, 2]
    rb = np.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])  # [..., N, M, 2]
    wh = np.maximum(_upcast(rb - lt), 0)
    inter = wh[..., 0] * wh[..., 1]  # [..., N, M]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _enclosing_wh(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Width and height of the smallest box enclosing each pair, ``[..., N, M, 2]``, >= 0."""
    lti = np.minimum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rbi = np.maximum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    return np.maximum(_upcast(rbi - lti), 0)


def _diou_iou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """torchvision ``_box_diou_iou`` on already upcast boxes: (DIoU, IoU), each ``[..., N, M]``."""
    inter, union = _inter_union(boxes1, boxes2)
    iou = _divide(inter, union)
    whi = _enclosing_wh(boxes1, boxes2)
    diag2 = _to_float(whi[..., 0] ** 2 + whi[..., 1] ** 2) + eps
    x_p = _divide(boxes1[..., 0] + boxes1[..., 2], 2)
    y_p = _divide(boxes1[..., 1] + boxes1[..., 3], 2)
    x_g = _divide(boxes2[..., 0] + boxes2[..., 2], 2)
    y_g = _divide(boxes2[..., 1] + boxes2[..., 3], 2)
    centre2 = (x_p[..., :, None] - x_g[..., None, :]) ** 2 + (y_p[..., :, None] - y_g[..., None, :]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return iou - centre2 / diag2, iou


# ----------------------------------------------------------------------------- formats

def box_convert(boxes: ArrayLike, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert boxes between ``'xyxy'``, ``'xywh'`` (COCO top-left) and ``'cxcywh'`` (centre).

    Args:
        boxes (ndarray[..., 4]): finite boxes in ``in_fmt``; any leading dimensions.
        in_fmt (str): one of ``'xyxy'``, ``'xywh'``, ``'cxcywh'``.
        out_fmt (str): one of ``'xyxy'``, ``'xywh'``, ``'cxcywh'``.

    Returns:
        ndarray[..., 4]: the same boxes in ``out_fmt``; a copy when ``in_fmt == out_fmt``.

    Convention: ``torchvision.ops.box_convert`` operation for operation: cxcywh -> xyxy is
    ``(cx - 0.5*w, cy - 0.5*h, cx + 0.5*w, cy + 0.5*h)``; xyxy -> cxcywh is
    ``((x1 + x2)/2, (y1 + y2)/2, x2 - x1, y2 - y1)``; xywh <-> cxcywh goes through xyxy.
    xyxy <-> xywh keeps an integer dtype; a conversion to or from cxcywh turns integers into
    float32 (torch's true division).
    Invariant: every round trip is the identity up to rounding (exact for integer-valued
    coordinates whose sums are exactly representable).
    Edge cases: degenerate boxes convert like any other (an inverted xyxy box gives a negative
    width); empty input gives empty output.

    Raises:
        ValueError: wrong trailing dimension, non-finite coordinates, unknown format (naming
            ``in_fmt`` or ``out_fmt``).
    """
    b = _check_box_array("boxes", boxes)
    check_format("in_fmt", in_fmt)
    check_format("out_fmt", out_fmt)
    if in_fmt == out_fmt:
        return b.copy()
    if in_fmt == "xywh":
        b = _xywh_to_xyxy(b)
    elif in_fmt == "cxcywh":
        b = _cxcywh_to_xyxy(b)
    if out_fmt == "xywh":
        b = _xyxy_to_xywh(b)
    elif out_fmt == "cxcywh":
        b = _xyxy_to_cxcywh(b)
    return b


def _xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    x, y, w, h = np.moveaxis(b, -1, 0)
    return np.stack([x, y, x + w, y + h], axis=-1)


def _xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    cx, cy, w, h = np.moveaxis(_to_float(b), -1, 0)
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def _xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    cx, cy = _divide(x1 + x2, 2), _divide(y1 + y2, 2)
    return np.stack([cx, cy, _to_float(x2 - x1), _to_float(y2 - y1)], axis=-1)


def _image_scale(boxes: np.ndarray, image_size) -> tuple[np.ndarray, np.ndarray]:
    b = _upcast_non_float(boxes)
    height, width = check_image_size("image_size", image_size)
    return b, np.array([width, height, width, height], dtype=b.dtype)


def box_normalize(boxes: ArrayLike, image_size: tuple[int, int]) -> np.ndarray:
    """Pixel boxes to coordinates normalised by the image size (YOLO txt style).

    Args:
        boxes (ndarray[..., 4]): finite boxes in pixels, in any of the three formats (columns
            0 and 2 are x-like, 1 and 3 y-like in all of them).
        image_size (tuple[int, int]): ``(height, width)`` in pixels, both > 0.

    Returns:
        ndarray[..., 4]: columns 0 and 2 divided by ``width``, 1 and 3 by ``height`` (a true
        division); float32/float64 kept, anything else computed in float32.

    Invariant: ``box_denormalize(box_normalize(b, s), s) == b`` up to one rounding per step
    (exactly when height and width are powers of two).
    Edge cases: degenerate boxes are scaled like any other; coordinates outside the image give
    values outside [0, 1] (no clipping).

    Raises:
        ValueError: wrong trailing dimension, non-finite coordinates, a non-positive or
            non-finite ``image_size``.
    """
    b = _check_box_array("boxes", boxes)
    b, scale = _image_scale(b, image_size)
    return b / scale


def box_denormalize(boxes: ArrayLike, image_size: tuple[int, int]) -> np.ndarray:
    """Normalised boxes (YOLO txt style) back to pixels: the inverse of :func:`box_normalize`.

    Args:
        boxes (ndarray[..., 4]): finite normalised boxes in any of the three formats.
        image_size (tuple[int, int]): ``(height, width)`` in pixels, both > 0.

    Returns:
        ndarray[..., 4]: columns 0 and 2 multiplied by ``width``, 1 and 3 by ``height``;
        float32/float64 kept, anything else computed in float32.

    Edge cases: as :func:`box_normalize`; no clipping.

    Raises:
        ValueError: as :func:`box_normalize`.
    """
    b = _check_box_array("boxes", boxes)
    b, scale = _image_scale(b, image_size)
    return b * scale


# ----------------------------------------------------------------------------- single-box ops

def box_area(boxes: ArrayLike) -> np.ndarray:
    """Area ``(x2 - x1) * (y2 - y1)`` of xyxy boxes, as ``torchvision.ops.box_area``.

    Args:
        boxes (ndarray[..., 4]): finite xyxy boxes.

    Returns:
        ndarray[...]: areas, in the ``_upcast`` dtype of ``boxes`` (float16 -> float32, small
        integers -> int32).

    Edge cases: not clamped: a zero-width box has area 0, a box inverted on one axis a negative
    area and one inverted on both axes a positive area. int32 areas wrap around on overflow
    (as in torchvision).

    Raises:
        ValueError: wrong trailing dimension or non-finite coordinates.
    """
    return _area(_check_box_array("boxes", boxes))


def clip_boxes_to_image(boxes: ArrayLike, size: tuple[int, int]) -> np.ndarray:
    """Clamp xyxy boxes into an image: x into ``[0, width]``, y into ``[0, height]``.

    Args:
        boxes (ndarray[..., 4]): xyxy boxes; NaN and infinities are allowed.
        size (tuple[int, int]): ``(height, width)``, both > 0.

    Returns:
        ndarray[..., 4]: clipped boxes, dtype of ``boxes`` (integer boxes with a float size
        become float32, as ``torch.clamp`` promotes).

    Convention: ``torchvision.ops.clip_boxes_to_image``.
    Edge cases: NaN stays NaN, ``±inf`` is clamped to the border; a box wholly outside the
    image collapses onto the border (zero width or height); inverted boxes stay inverted.

    Raises:
        ValueError: wrong trailing dimension, a non-positive or non-finite ``size``.
    """
    b = _check_box_array("boxes", boxes, finite=False)
    height, width = (_size_scalar(v) for v in check_image_size("size", size))
    if b.dtype.kind in "iu" and (isinstance(height, float) or isinstance(width, float)):
        b = b.astype(np.float32)
    x = np.clip(b[..., 0::2], 0, width)
    y = np.clip(b[..., 1::2], 0, height)
    return np.stack([x, y], axis=-1).reshape(b.shape)


def remove_small_boxes(boxes: ArrayLike, min_size: float) -> np.ndarray:
    """Indices of the xyxy boxes whose width and height are both ``>= min_size``.

    Args:
        boxes (ndarray[N, 4]): xyxy boxes; NaN and infinities are allowed.
        min_size (float): finite minimum side length.

    Returns:
        ndarray[K] (int64): indices into ``boxes``, ascending.

    Convention: ``torchvision.ops.remove_small_boxes`` (inclusive ``>=``).
    Edge cases: inverted boxes (negative side) are dropped whenever ``min_size >= 0``; a box
    with a NaN side is always dropped; empty input gives ``int64[0]``.

    Raises:
        ValueError: ``boxes`` not ``[N, 4]``, ``min_size`` not a finite number.
    """
    b = _validate.check_boxes("boxes", boxes, ndim=2, finite=False)
    if b.dtype.kind == "b":
        raise ValueError("boxes: expected a numeric array, got dtype bool")
    check_finite_real("min_size", min_size)  # validated; compared as given (int or float)
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    with np.errstate(invalid="ignore"):
        keep = (ws >= min_size) & (hs >= min_size)
    return np.nonzero(keep)[0].astype(np.int64)


# ----------------------------------------------------------------------------- pairwise IoU family

def box_inter_union(boxes1: ArrayLike, boxes2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise intersection and union areas of two sets of xyxy boxes: torchvision's kernel.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes.
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes; leading dimensions broadcast.

    Returns:
        (ndarray[..., N, M], ndarray[..., N, M]): ``inter`` and ``union``, in the ``_upcast``
        dtype of the boxes (float16 -> float32, small integers -> int32; integers stay integers).

    Convention: torchvision ``ops/boxes.py::_box_inter_union`` (the kernel of ``box_iou``,
    ``generalized_box_iou``, ``distance_box_iou``, ``complete_box_iou``): ``lt``/``rb`` in the
    input dtype, ``wh = _upcast(rb - lt).clamp(0)``, ``inter = w * h``,
    ``union = (area1 + area2) - inter`` with signed areas ``(x2 - x1) * (y2 - y1)``, no eps.
    Every IoU of torchvision's convention here (``box_iou``, ``box_ioa``, the GIoU/DIoU/CIoU
    family) is built on it.
    Invariant: ``0 <= inter <= min(area1, area2)`` and ``union >= max(area1, area2)`` for
    valid boxes; symmetric (``inter``, ``union`` of the swapped call are the transposes).
    Edge cases: disjoint or touching boxes give ``inter == 0``; inverted boxes enter the union
    with their signed areas; ``N = 0`` or ``M = 0`` gives empty ``[..., N, M]`` arrays.

    Raises:
        ValueError: as :func:`box_iou`.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    return _inter_union(b1, b2)


def box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """Pairwise intersection over union of two sets of xyxy boxes.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes.
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes; leading dimensions broadcast.

    Returns:
        ndarray[..., N, M]: ``inter / union`` in [0, 1] for valid boxes; float32 for integer
        and float16 input.

    Convention: ``torchvision.ops.box_iou``: ``lt``/``rb`` in the input dtype,
    ``wh = _upcast(rb - lt).clamp(0)``, ``union = (area1 + area2) - inter``, no eps.
    Invariant: symmetric, ``box_iou(a, a) == 1`` on the diagonal for valid boxes, invariant
    under translation and under scaling by a power of two.
    Edge cases: two zero-area boxes give NaN (0/0); a zero-area box against a valid one gives 0;
    inverted boxes give 0 or NaN (their signed areas enter the union; NaN when it is 0);
    ``N = 0`` or ``M = 0`` gives an empty ``[..., N, M]``.

    Raises:
        ValueError: wrong trailing dimension, fewer than 2 dimensions, non-finite coordinates,
            leading dimensions that do not broadcast.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, union = _inter_union(b1, b2)
    return _divide(inter, union)


def generalized_box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """Pairwise generalized IoU (Rezatofighi et al. 2019) of xyxy boxes.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes.
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes; leading dimensions broadcast.

    Returns:
        ndarray[..., N, M]: ``iou - (C - union) / C`` with ``C`` the (clamped) area of the
        smallest enclosing box; in [-1, 1] for valid boxes.

    Convention: ``torchvision.ops.generalized_box_iou`` operation for operation, no eps.
    Invariant: ``giou <= iou``; equal when one box contains the other.
    Edge cases: NaN where the IoU is NaN (two zero-area boxes) and where ``C == 0``; an inverted
    box against a valid one can exceed the valid range (e.g. 1 for an inverted box inside
    ``[0, 0, 10, 10]``), as in torchvision.

    Raises:
        ValueError: as :func:`box_iou`.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, union = _inter_union(b1, b2)
    iou = _divide(inter, union)
    whi = _enclosing_wh(b1, b2)
    areai = whi[..., 0] * whi[..., 1]
    return iou - _divide(areai - union, areai)


def distance_box_iou(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Pairwise distance IoU (Zheng et al. 2020) of xyxy boxes.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes.
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes; leading dimensions broadcast.
        eps (float): added to the squared diagonal of the enclosing box; finite, >= 0.

    Returns:
        ndarray[..., N, M]: ``iou - d2 / (cw**2 + ch**2 + eps)``, ``d2`` the squared distance of
        the centres ``((x1 + x2)/2, (y1 + y2)/2)``; in [-1, 1] for valid boxes.

    Convention: ``torchvision.ops.distance_box_iou`` (boxes upcast first).
    Invariant: ``diou <= iou``; equal for concentric boxes.
    Edge cases: the IoU term is still NaN for two zero-area boxes (no eps in the IoU).

    Raises:
        ValueError: as :func:`box_iou`; ``eps`` negative or not finite.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    eps = check_eps(eps)
    diou, _ = _diou_iou(_upcast(b1), _upcast(b2), eps)
    return diou


def complete_box_iou(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Pairwise complete IoU (Zheng et al. 2020) of xyxy boxes.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes (the "predictions").
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes (the "targets"); batches broadcast.
        eps (float): used in the DIoU term and in ``alpha``; finite, >= 0.

    Returns:
        ndarray[..., N, M]: ``diou - alpha * v`` with
        ``v = 4/pi**2 * (atan(w1/h1) - atan(w2/h2))**2`` and ``alpha = v / (1 - iou + v + eps)``.

    Convention: ``torchvision.ops.complete_box_iou`` (in torch ``alpha`` is computed without
    gradient).
    Invariant: symmetric; ``ciou <= diou <= iou``.
    Edge cases: ``h == 0`` gives ``atan(±inf) = ±pi/2`` and a finite value; a point box
    (``w == h == 0``) gives NaN (0/0 in the aspect ratio), as does a NaN IoU.

    Raises:
        ValueError: as :func:`distance_box_iou`.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    eps = check_eps(eps)
    b1, b2 = _upcast(b1), _upcast(b2)
    diou, iou = _diou_iou(b1, b2, eps)
    w_pred = b1[..., :, None, 2] - b1[..., :, None, 0]  # [..., N, 1]
    h_pred = b1[..., :, None, 3] - b1[..., :, None, 1]
    w_gt = b2[..., None, :, 2] - b2[..., None, :, 0]  # [..., 1, M]
    h_gt = b2[..., None, :, 3] - b2[..., None, :, 1]
    v = (4 / (math.pi ** 2)) * (np.arctan(_divide(w_pred, h_pred)) - np.arctan(_divide(w_gt, h_gt))) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def box_ioa(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """Pairwise intersection over the area of ``boxes1`` (crowd matching).

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes (the detections).
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes (the crowd regions); batches broadcast.

    Returns:
        ndarray[..., N, M]: ``inter / area1``, no eps; in [0, 1] for valid boxes.

    Convention: pycocotools' ``iscrowd`` overlap, where the "union" is the detection's own area
    (a detection wholly inside a crowd region scores 1 however large the region).
    Edge cases: a zero-area ``boxes1`` row gives NaN (0/0); an inverted ``boxes1`` box gives 0
    (``-0.0`` when its signed area is negative); zero-area ``boxes2`` give 0.

    Raises:
        ValueError: as :func:`box_iou`.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    inter, _ = _inter_union(b1, b2)
    return _divide(inter, _area(b1)[..., :, None])


def wh_iou(wh1: ArrayLike, wh2: ArrayLike) -> np.ndarray:
    """Pairwise shape IoU of ``(w, h)`` pairs, as if both boxes shared their top-left corner.

    Args:
        wh1 (ndarray[..., N, 2]): finite, non-negative widths and heights.
        wh2 (ndarray[..., M, 2]): finite, non-negative widths and heights; batches broadcast.

    Returns:
        ndarray[..., N, M]: ``inter / (w1*h1 + w2*h2 - inter)`` with
        ``inter = min(w1, w2) * min(h1, h2)``; in [0, 1].

    Convention: darknet's anchor matching (YOLOv2/v3 ``box_iou`` of ``(0, 0, w, h)`` boxes),
    with NO eps in the denominator. YOLOv5 v7.0 ``utils/metrics.py::wh_iou`` adds ``eps=1e-7``
    to it; the two differ by about ``1e-7 / union`` relatively, and only the eps-free form gives
    exactly 1 for identical shapes.
    Invariant: symmetric; ``wh_iou(a, a) == 1`` for positive sizes; invariant under scaling
    both by the same power of two.
    Edge cases: two zero-area shapes give NaN (0/0); a zero-area shape against a positive one
    gives 0.

    Raises:
        ValueError: trailing dimension not 2, fewer than 2 dimensions, non-finite or negative
            sizes, leading dimensions that do not broadcast.
    """
    a, b = _check_pair(wh1, wh2, last_dim=2, names=("wh1", "wh2"), nonnegative=True)
    a, b = _upcast(a), _upcast(b)
    m = np.minimum(a[..., :, None, :], b[..., None, :, :])  # [..., N, M, 2]
    inter = m[..., 0] * m[..., 1]
    area1, area2 = a[..., 0] * a[..., 1], b[..., 0] * b[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return _divide(inter, union)


def voc_box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """Pairwise IoU of xyxy boxes in the PASCAL VOC "+1 pixel" convention.

    Args:
        boxes1 (ndarray[..., N, 4]): finite xyxy boxes, inclusive pixel indices (the detections).
        boxes2 (ndarray[..., M, 4]): finite xyxy boxes (the ground truth); batches broadcast.

    Returns:
        ndarray[..., N, M]: ``inters / uni``; float32/float64 kept, anything else in float32.

    Convention: py-faster-rcnn ``lib/datasets/voc_eval.py::voc_eval`` (the VOC devkit's
    ``VOCevaldet``): a box covers pixels ``x1..x2`` inclusive, so
    ``iw = max(min(x2) - max(x1) + 1, 0)``, ``ih`` likewise, ``inters = iw * ih``,
    ``uni = (x2 - x1 + 1) * (y2 - y1 + 1) + (gx2 - gx1 + 1) * (gy2 - gy1 + 1) - inters``
    (detection area first), no eps.
    Invariant: symmetric in value, in [0, 1] for boxes with ``x2 >= x1 - 1``; ``voc_box_iou(a, a)
    == 1``; always above :func:`box_iou` of the same boxes when they overlap (a zero-area box
    still covers one pixel).
    Edge cases: a "point" box ``x1 == x2, y1 == y2`` has area 1; two boxes one pixel apart
    touch (``iw == 0``) and give 0; ``uni == 0`` (boxes inverted by exactly one pixel) gives NaN.

    Raises:
        ValueError: as :func:`box_iou`.
    """
    b1, b2 = _check_pair(boxes1, boxes2)
    det, gt = _upcast_non_float(b1)[..., :, None, :], _upcast_non_float(b2)[..., None, :, :]
    ixmin = np.maximum(gt[..., 0], det[..., 0])  # [..., N, M]
    iymin = np.maximum(gt[..., 1], det[..., 1])
    ixmax = np.minimum(gt[..., 2], det[..., 2])
    iymax = np.minimum(gt[..., 3], det[..., 3])
    iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
    ih = np.maximum(iymax - iymin + 1.0, 0.0)
    inters = iw * ih
    uni = ((det[..., 2] - det[..., 0] + 1.0) * (det[..., 3] - det[..., 1] + 1.0)
           + (gt[..., 2] - gt[..., 0] + 1.0) * (gt[..., 3] - gt[..., 1] + 1.0) - inters)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inters / uni


def coco_box_iou(dt: ArrayLike, gt: ArrayLike, iscrowd: ArrayLike | None = None) -> np.ndarray:
    """Pairwise IoU of COCO ``xywh`` boxes with pycocotools' crowd rule.

    Args:
        dt (ndarray[..., D, 4]): finite detections ``(x, y, w, h)``, top-left corner and size.
        gt (ndarray[..., G, 4]): finite ground truths ``(x, y, w, h)``; batches broadcast.
        iscrowd (ndarray[..., G] of bool, optional): crowd flag of each ground truth
            (broadcast against ``gt``'s leading dimensions); ``None``: no crowds.

    Returns:
        ndarray[..., D, G]: the IoU, or for a crowd GT the intersection over the detection's
        own area; float32/float64 kept, anything else in float32.

    Convention: pycocotools ``maskApi.c::bbIou`` (``maskUtils.iou(dt, gt, iscrowd)`` on boxes,
    what ``COCOeval.computeIoU`` calls): ``w = min(dx + dw, gx + gw) - max(dx, gx)`` (``h``
    likewise); 0 unless ``w > 0`` and ``h > 0``; ``i = w * h``; ``u = da`` for a crowd GT, else
    ``da + ga - i`` (``da = dw * dh``, ``ga = gw * gh``); no +1, no eps.
    Invariant: in [0, 1]; equals ``box_iou`` of the xyxy boxes wherever no GT is a crowd
    (up to the rounding of ``x + w``); a detection inside a crowd region scores 1.
    Edge cases: touching boxes (``w == 0``) give 0; a zero-area detection gives 0 (never NaN);
    ``D = 0`` or ``G = 0`` gives an empty ``[..., D, G]``.

    Raises:
        ValueError: as :func:`box_iou` (naming ``dt``, ``gt``); ``iscrowd`` that does not
            broadcast to ``[..., G]``.
    """
    d, g = _check_pair(dt, gt, names=("dt", "gt"))
    d, g = _upcast_non_float(d), _upcast_non_float(g)
    crowd = np.zeros(g.shape[:-1], dtype=bool) if iscrowd is None else np.asarray(iscrowd, bool)
    try:
        np.broadcast_shapes(crowd.shape, g.shape[:-1])
    except ValueError:
        raise ValueError(f"iscrowd: expected shape [..., {g.shape[-2]}] (one flag per gt box), "
                         f"got {crowd.shape}") from None
    return _coco_iou(d[..., :, None, :], g[..., None, :, :], crowd[..., None, :])


def _coco_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools ``bbIou`` element-wise on broadcast ``dt [..., 4]``, ``gt [..., 4]``."""
    dx, dy, dw, dh = np.moveaxis(dt, -1, 0)
    gx, gy, gw, gh = np.moveaxis(gt, -1, 0)
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    da = dw * dh
    union = np.where(crowd, da, da + (gw * gh) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w > 0) & (h > 0), inter / union, inter.dtype.type(0))


def darknet_box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """Element-wise IoU of paired ``cxcywh`` boxes, as darknet's ``box_iou``.

    Args:
        boxes1 (ndarray[..., 4]): finite boxes ``(cx, cy, w, h)``.
        boxes2 (ndarray[..., 4]): finite boxes ``(cx, cy, w, h)``; broadcast against ``boxes1``
            (pass ``a[..., :, None, :]`` and ``b[..., None, :, :]`` for a pairwise table).

    Returns:
        ndarray[...]: one IoU per broadcast pair; float32/float64 kept, else float32.

    Convention: darknet ``src/box.c`` (YOLOv1-v3 training: ``box_iou``, ``box_intersection``,
    ``overlap``): ``overlap = min(x1 + w1/2, x2 + w2/2) - max(x1 - w1/2, x2 - w2/2)`` per axis,
    intersection 0 if either overlap is negative, else their product;
    ``union = w1*h1 + w2*h2 - inter``; no eps. The one departure: where ``union <= 0`` (two
    zero-area boxes) the result is 0 instead of darknet's 0/0.
    Invariant: symmetric; in [0, 1] for non-negative sizes; ``darknet_box_iou(a, a) == 1`` for
    positive sizes; equals :func:`box_iou` of the xyxy boxes up to the rounding of ``c ± w/2``.
    The shape-only form (boxes sharing a corner, anchor matching) is :func:`wh_iou`.
    Edge cases: touching boxes give 0; a zero-area box gives 0 (never NaN).

    Raises:
        ValueError: wrong trailing dimension, non-finite values, shapes that do not broadcast.
    """
    b1 = _upcast_non_float(_check_box_array("boxes1", boxes1))
    b2 = _upcast_non_float(_check_box_array("boxes2", boxes2))
    try:
        np.broadcast_shapes(b1.shape, b2.shape)
    except ValueError:
        raise ValueError(f"boxes1 and boxes2: shapes do not broadcast ({b1.shape} vs {b2.shape})"
                         ) from None
    ax, ay, aw, ah = np.moveaxis(b1, -1, 0)
    bx, by, bw, bh = np.moveaxis(b2, -1, 0)
    w = np.minimum(ax + aw / 2, bx + bw / 2) - np.maximum(ax - aw / 2, bx - bw / 2)
    h = np.minimum(ay + ah / 2, by + bh / 2) - np.maximum(ay - ah / 2, by - bh / 2)
    zero = w.dtype.type(0)
    inter = np.where((w < 0) | (h < 0), zero, w * h)
    union = aw * ah + bw * bh - inter
    ok = union > 0
    return np.where(ok, inter / np.where(ok, union, 1), zero)


# ----------------------------------------------------------------------------- element-wise (YOLO)

def aligned_box_iou(boxes1: ArrayLike, boxes2: ArrayLike, kind: str = "iou", fmt: str = "xyxy", eps: float = 1e-7
                   ) -> np.ndarray:
    """Element-wise IoU / GIoU / DIoU / CIoU of paired boxes, as YOLOv5 v7.0 ``bbox_iou``.

    Args:
        boxes1 (ndarray[..., 4]): finite boxes (the predictions in the YOLOv5 loss).
        boxes2 (ndarray[..., 4]): finite boxes; broadcast against ``boxes1``.
        kind (str): ``'iou'``, ``'giou'``, ``'diou'`` or ``'ciou'``.
        fmt (str): ``'xyxy'`` or ``'cxcywh'`` (what YOLOv5 calls ``xywh=True``).
        eps (float): YOLOv5's stabiliser; finite, >= 0.

    Returns:
        ndarray[...]: one value per broadcast pair (YOLOv5's trailing 1 is dropped); float32
        or float64 (anything else is computed in float32).

    Convention: YOLOv5 v7.0 ``utils/metrics.py::bbox_iou`` with its eps placement:
    in ``'xyxy'`` mode ``w = x2 - x1`` and ``h = (y2 - y1) + eps``; in ``'cxcywh'`` mode ``w, h``
    are the given values (no eps) and the corners are ``c ∓ w/2``;
    ``inter = clamp(min(x2) - max(x1), 0) * clamp(min(y2) - max(y1), 0)``;
    ``union = w1*h1 + w2*h2 - inter + eps``; ``iou = inter / union``;
    GIoU: ``c_area = cw*ch + eps``, ``iou - (c_area - union) / c_area``;
    DIoU: ``c2 = cw**2 + ch**2 + eps``, ``rho2 = ((b2x1 + b2x2 - b1x1 - b1x2)**2 + (...y)**2)/4``,
    ``iou - rho2/c2``; CIoU: ``v = 4/pi**2 * (atan(w2/h2) - atan(w1/h1))**2``,
    ``alpha = v / (v - iou + (1 + eps))`` (no gradient in torch), ``iou - (rho2/c2 + v*alpha)``.
    Invariant: ``ciou <= diou <= iou`` and ``giou <= iou``; symmetric in value; the IoU is
    slightly below torchvision's (by the eps in the union).
    Edge cases: in ``'xyxy'`` mode every degenerate box (zero width or height, a point,
    inverted by more than eps) gives a finite value and, in torch, a finite gradient: zero
    unions and enclosing boxes are lifted by eps and ``h`` by eps. In ``'cxcywh'`` mode (no
    eps on ``h``, as in YOLOv5) ``h == 0`` gives ``atan(±inf)`` in CIoU (finite value, NaN
    gradient in torch) and ``w == h == 0`` gives a NaN CIoU; IoU, GIoU and DIoU stay finite.

    Raises:
        ValueError: wrong trailing dimension, non-finite coordinates, shapes that do not
            broadcast (naming both), unknown ``kind`` or ``fmt``, bad ``eps``.
    """
    b1, b2 = _check_aligned(boxes1, boxes2, kind, fmt)
    return _aligned_iou(b1, b2, kind, fmt, check_eps(eps))


def _aligned_iou(b1: np.ndarray, b2: np.ndarray, kind: str, fmt: str, eps: float,
                 alpha_84: bool = False) -> np.ndarray:
    """The kernel of :func:`aligned_box_iou` on checked floating boxes (no validation: callers
    that validated their inputs, as the losses, call it; the port's twin then never syncs).
    ``alpha_84``: CIoU's ``alpha = v / (1 - iou + v + eps)``, ultralytics 8.4.190's order of the
    same sum (it rounds differently from v7.0's / 8.3's ``v / (v - iou + (1 + eps))``)."""
    if fmt == "cxcywh":
        x1, y1, w1, h1 = np.moveaxis(b1, -1, 0)
        x2, y2, w2, h2 = np.moveaxis(b2, -1, 0)
        w1_, h1_, w2_, h2_ = w1 / 2, h1 / 2, w2 / 2, h2 / 2
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1_, x1 + w1_, y1 - h1_, y1 + h1_
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2_, x2 + w2_, y2 - h2_, y2 + h2_
    else:
        b1_x1, b1_y1, b1_x2, b1_y2 = np.moveaxis(b1, -1, 0)
        b2_x1, b2_y1, b2_x2, b2_y2 = np.moveaxis(b2, -1, 0)
        w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
        w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = (np.maximum(np.minimum(b1_x2, b2_x2) - np.maximum(b1_x1, b2_x1), 0)
                 * np.maximum(np.minimum(b1_y2, b2_y2) - np.maximum(b1_y1, b2_y1), 0))
        union = w1 * h1 + w2 * h2 - inter + eps
        iou = inter / union
        if kind == "iou":
            return iou
        cw = np.maximum(b1_x2, b2_x2) - np.minimum(b1_x1, b2_x1)  # enclosing width
        ch = np.maximum(b1_y2, b2_y2) - np.minimum(b1_y1, b2_y1)  # enclosing height
        if kind == "giou":
            c_area = cw * ch + eps
            return iou - (c_area - union) / c_area
        c2 = cw ** 2 + ch ** 2 + eps
        rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
        if kind == "diou":
            return iou - rho2 / c2
        v = (4 / math.pi ** 2) * (np.arctan(w2 / h2) - np.arctan(w1 / h1)) ** 2
        alpha = _stop_gradient(v / (1 - iou + v + eps) if alpha_84 else v / (v - iou + (1 + eps)))
        return iou - (rho2 / c2 + v * alpha)


def _check_aligned(boxes1, boxes2, kind, fmt) -> tuple[np.ndarray, np.ndarray]:
    b1 = _check_box_array("boxes1", boxes1)
    b2 = _check_box_array("boxes2", boxes2)
    try:
        np.broadcast_shapes(b1.shape, b2.shape)
    except ValueError:
        raise ValueError(f"boxes1 and boxes2: shapes do not broadcast ({b1.shape} vs {b2.shape})"
                         ) from None
    if kind not in IOU_KINDS:
        raise ValueError(f"kind: unknown IoU kind {kind!r}, expected one of {IOU_KINDS}")
    if fmt not in ALIGNED_FORMATS:
        raise ValueError(f"fmt: unknown box format {fmt!r}, expected one of {ALIGNED_FORMATS} "
                         "('cxcywh' is what YOLOv5 calls xywh)")
    return _upcast_non_float(b1), _upcast_non_float(b2)
