"""Box encoders and decoders of the YOLO family, and the grids they live on.

Conventions (both sides, every function):

- Boxes are ``xyxy`` in pixels at the network input size, last axis ``[..., 4]``.
- ``grid`` holds integer cell indices ``(cx, cy)`` = (column, row), last axis ``[..., 2]``;
  integer or floating dtype, cast to the dtype of the other operand.
- ``anchors`` are anchor ``(w, h)`` in pixels, last axis ``[..., 2]``, all > 0.
- ``stride`` is pixels per cell: a positive scalar, or an array of shape ``[..., 1]`` that
  broadcasts against the leading dimensions (e.g. the ``[T, 1]`` column of
  :func:`make_anchor_grid`).
- Leading dimensions of ``boxes``/``raw``, ``grid``, ``anchors`` (and ``stride``) broadcast.
- ``image_size`` is ``(height, width)`` in pixels, as everywhere in the project.

The round trips below hold in real arithmetic; in floating point they hold up to the tolerance
entries ``coder.*_roundtrip`` of ``parity_tests/tolerances.py``.

Sources of the conventions: darknet ``detection_layer.c`` (YOLOv1) and ``yolo_layer.c``
(YOLOv2/v3), ultralytics/yolov5 v7.0 ``models/yolo.py`` ``Detect``, ultralytics 8.3
``utils/tal.py`` (``make_anchors``, ``dist2bbox``, ``bbox2dist``) and ``loss.py``
(``bbox_decode``, the DFL projection).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array, check_boxes
from ref_numpy.shared.checks import check_axis, check_count, check_finite_real, check_image_size, check_sizes
from ref_numpy.nms import batched_nms, nms
from ref_numpy.shared.constants import MAX_LOG_WH, MIN_WH

__all__ = [
    "yolov1_encode", "yolov1_decode",
    "yolov3_encode", "yolov3_decode",
    "yolov5_encode", "yolov5_decode",
    "dist2bbox", "bbox2dist", "dfl_decode",
    "make_grid", "make_anchor_grid", "make_anchors",
    "tutorial_decode", "tutorial_detect_as_printed", "tutorial_detect_corrected",
]


# ----------------------------------------------------------------------------- private helpers

def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow: ``exp(-|x|)`` never exceeds 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _logit(p: np.ndarray) -> np.ndarray:
    """Inverse of the logistic function, ``log(p / (1 - p))``; -inf at 0, +inf at 1.

    This form rather than ``log(p) - log1p(-p)``: ``1 - p`` is exact for p >= 0.5, and torch's
    float32 ``log1p`` near -1 is off by tens of ulps, which the port would inherit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p / (1 - p))


def _cxcywh_to_xyxy(cx, cy, w, h) -> np.ndarray:
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _xyxy_to_cxcywh(boxes: np.ndarray):
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _float_dtype(*arrays) -> np.dtype:
    """The floating dtype of the first floating array, else float64."""
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.dtype
    return np.dtype(np.float64)


def _check_broadcast(**named) -> tuple:
    """The broadcast of the leading shapes ``{name: shape}``, or ValueError naming them all."""
    try:
        return np.broadcast_shapes(*named.values())
    except ValueError:
        desc = ", ".join(f"{k} {tuple(v)}" for k, v in named.items())
        raise ValueError(f"{' and '.join(named)}: leading dimensions do not broadcast ({desc})") from None


def _check_all_positive(name: str, a: np.ndarray) -> None:
    if a.size and not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError(f"{name}: expected finite values > 0, got min {np.min(a)!r}")


def _check_stride(stride, dtype) -> np.ndarray:
    """``stride`` as an array of ``dtype`` (0-d for a scalar), finite and > 0."""
    s = as_array("stride", stride)
    if s.ndim and s.shape[-1] != 1:
        raise ValueError(f"stride: expected a scalar or shape [..., 1], got {s.shape}")
    _check_all_positive("stride", s)
    return s.astype(dtype, copy=False)


def _check_cell_inputs(first_name: str, first: np.ndarray, grid, anchors, stride):
    """Shared boundary of the v3/v5 coders: grid [..., 2], anchors [..., 2] > 0, stride > 0,
    broadcastable leading dimensions. Returns (grid, anchors, stride) cast to ``first``'s dtype."""
    dtype = _float_dtype(first)
    g = as_array("grid", grid, last_dim=2, finite=True)
    a = as_array("anchors", anchors, last_dim=2, finite=True)
    _check_all_positive("anchors", a)
    s = _check_stride(stride, dtype)
    _check_broadcast(**{first_name: first.shape[:-1], "grid": g.shape[:-1],
                        "anchors": a.shape[:-1]})
    if s.ndim:
        _check_broadcast(**{first_name: first.shape[:-1] + (1,), "stride": s.shape})
    return g.astype(dtype, copy=False), a.astype(dtype, copy=False), s


def _check_encode_boxes(boxes) -> np.ndarray:
    b = check_boxes("boxes", boxes)
    if b.dtype.kind != "f":
        b = b.astype(np.float64)
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    if b.size and not (np.all(x2 > x1) and np.all(y2 > y1)):
        raise ValueError("boxes: expected x2 > x1 and y2 > y1 (positive width and height)")
    return b


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_encode(boxes: ArrayLike, S: int = 7, image_size: tuple[float, float] = (448, 448)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Encode boxes as YOLOv1 targets: the cell holding each centre and the 4 regression targets.

    Args:
        boxes (ndarray[N, 4]): xyxy in pixels, ``x2 >= x1`` and ``y2 >= y1``, centres inside
            the image (``0 <= cx <= W``, ``0 <= cy <= H``).
        S (int): grid size (S x S cells over the whole image).
        image_size (tuple[float, float]): (height, width) in pixels.

    Returns:
        tuple:
            cells (ndarray[N, 2] int64): (col, row) of the cell holding the centre,
            ``col = floor(cx / W * S)`` clamped to ``S - 1`` (a centre on the right or bottom
            border belongs to the last cell, with offset 1).
            targets (ndarray[N, 4]): ``(x_off, y_off, sqrt(w / W), sqrt(h / H))`` with
            ``x_off = cx / W * S - col`` in [0, 1].

    Invariant: ``yolov1_decode(targets, cells, S, image_size) == boxes`` for every box with
    non-negative size whose centre lies in the image.
    Convention: darknet ``detection_layer`` / YOLOv1 paper: offsets within the cell, square
    roots of the size relative to the image.
    Raises ValueError for a bad shape, non-finite values, ``S < 1``, a bad ``image_size``,
    negative widths or heights, or a centre outside the image.
    """
    S = check_count("S", S, 1)
    H, W = (float(v) for v in check_image_size("image_size", image_size))  # weak scalars
    b = check_boxes("boxes", boxes, ndim=2)
    if b.dtype.kind != "f":
        b = b.astype(np.float64)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    if b.size and not (np.all(w >= 0) and np.all(h >= 0)):
        raise ValueError("boxes: expected x2 >= x1 and y2 >= y1")
    if b.size and not (np.all((cx >= 0) & (cx <= W)) and np.all((cy >= 0) & (cy <= H))):
        raise ValueError(f"boxes: every centre must lie inside the image (height {H}, width {W})")
    u = cx / W * S  # centre in cell units, [0, S]
    v = cy / H * S
    col = np.minimum(np.floor(u), S - 1)
    row = np.minimum(np.floor(v), S - 1)
    targets = np.stack([u - col, v - row, np.sqrt(w / W), np.sqrt(h / H)], axis=-1)
    cells = np.stack([col, row], axis=-1).astype(np.int64)
    return cells, targets


def yolov1_decode(raw: ArrayLike, grid: ArrayLike, S: int = 7, image_size: tuple[float, float] = (448, 448)
                 ) -> np.ndarray:
    """Decode YOLOv1 regression outputs into xyxy boxes in pixels.

    Args:
        raw (ndarray[..., 4]): ``(x_off, y_off, sqrt_w, sqrt_h)`` as the head emits them
            (YOLOv1's head is linear: no activation to undo).
        grid (ndarray[..., 2]): (col, row) of the predicting cell; broadcasts with ``raw``
            (e.g. ``make_grid(S, S)`` [S, S, 2] against raw [B, S, S, 4]).
        S (int): grid size.
        image_size (tuple[float, float]): (height, width) in pixels.

    Returns:
        ndarray[..., 4]: xyxy in pixels, ``x = (x_off + col) / S * W``, ``w = sqrt_w**2 * W``.

    Invariant: with ``cells, targets = yolov1_encode(b, S, size)``,
    ``yolov1_decode(targets, cells, S, size) == b`` (domain: see :func:`yolov1_encode`);
    a negative ``sqrt_w`` decodes like its absolute value.
    Convention: darknet ``detection_layer`` (the ``sqrt`` flag) / YOLOv1 paper.
    """
    S = check_count("S", S, 1)
    H, W = (float(v) for v in check_image_size("image_size", image_size))  # weak scalars
    r = as_array("raw", raw, last_dim=4, floating=True)
    g = as_array("grid", grid, last_dim=2, finite=True)
    _check_broadcast(raw=r.shape[:-1], grid=g.shape[:-1])
    g = g.astype(r.dtype, copy=False)
    ox, oy, sw, sh = np.moveaxis(r, -1, 0)
    gx, gy = np.moveaxis(g, -1, 0)
    cx = (ox + gx) / S * W
    cy = (oy + gy) / S * H
    return _cxcywh_to_xyxy(cx, cy, sw * sw * W, sh * sh * H)


# ----------------------------------------------------------------------------- YOLOv2/v3

def yolov3_encode(boxes: ArrayLike, grid: ArrayLike, anchors: ArrayLike, stride: float | ArrayLike, logits: bool = False
                 ) -> np.ndarray:
    """Encode xyxy boxes as darknet YOLOv2/v3 regression targets for given cells and anchors.

    Args:
        boxes (ndarray[..., 4]): xyxy in pixels, positive width and height.
        grid (ndarray[..., 2]): (cx, cy) of the responsible cell, usually
            ``floor(centre / stride)``.
        anchors (ndarray[..., 2]): anchor (w, h) in pixels.
        stride (float or ndarray): pixels per cell.
        logits (bool): False (default, darknet): x, y targets are the post-sigmoid offsets
            ``gx / stride - cx`` (in [0, 1) when ``grid`` is the floor of the centre) to be
            matched by ``sigmoid(tx)``. True: their logit, i.e. raw values that decode back.

    Returns:
        ndarray[..., 4]: ``(tx*, ty*, tw*, th*)`` with ``tw* = log(gw / anchor_w)``.

    Invariant: ``yolov3_decode(yolov3_encode(b, g, a, s, logits=True), g, a, s) == b`` for every
    box whose centre offset ``gx / s - cx`` lies in (0, 1) (open: the logit of 0 or 1 is
    infinite); the sizes round-trip for every positive size.
    Convention: darknet ``yolo_layer.c`` ``delta_yolo_box`` (``tx = x*w - i``,
    ``tw = log(w*w_in / bias_w)``).
    """
    b = _check_encode_boxes(boxes)
    g, a, s = _check_cell_inputs("boxes", b, grid, anchors, stride)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    s = s[..., 0] if s.ndim else s
    gx, gy = np.moveaxis(g, -1, 0)
    aw, ah = np.moveaxis(a, -1, 0)
    tx = cx / s - gx
    ty = cy / s - gy
    if logits:
        tx, ty = _logit(tx), _logit(ty)
    return np.stack(np.broadcast_arrays(tx, ty, np.log(w / aw), np.log(h / ah)), axis=-1)


def yolov3_decode(raw: ArrayLike, grid: ArrayLike, anchors: ArrayLike, stride: float | ArrayLike) -> np.ndarray:
    """Decode darknet YOLOv2/v3 head outputs into xyxy boxes in pixels.

    Args:
        raw (ndarray[..., 4]): tx, ty, tw, th as the head emits them (pre-sigmoid).
        grid (ndarray[..., 2]): integer cell indices (cx, cy).
        anchors (ndarray[..., 2]): anchor w, h in pixels.
        stride (float or ndarray): pixels per cell.

    Returns:
        ndarray[..., 4]: xyxy in pixels.

    Invariant: ``yolov3_decode(yolov3_encode(b, g, a, s, logits=True), g, a, s) == b`` for every
    box whose centre lies strictly inside cell ``g`` (offset in (0, 1)); any size > 0.
    Convention: darknet ``get_yolo_box``: ``bx = (sigmoid(tx) + cx) * stride``,
    ``bw = anchor_w * exp(tw)``.
    """
    r = as_array("raw", raw, last_dim=4, floating=True)
    g, a, s = _check_cell_inputs("raw", r, grid, anchors, stride)
    s = s[..., 0] if s.ndim else s
    tx, ty, tw, th = np.moveaxis(r, -1, 0)
    gx, gy = np.moveaxis(g, -1, 0)
    aw, ah = np.moveaxis(a, -1, 0)
    cx = (_sigmoid(tx) + gx) * s
    cy = (_sigmoid(ty) + gy) * s
    return _cxcywh_to_xyxy(*np.broadcast_arrays(cx, cy, aw * np.exp(tw), ah * np.exp(th)))


# ----------------------------------------------------------------------------- YOLOv5

def yolov5_encode(boxes: ArrayLike, grid: ArrayLike, anchors: ArrayLike, stride: float | ArrayLike) -> np.ndarray:
    """Encode xyxy boxes as the raw (pre-sigmoid) YOLOv5 head outputs that decode to them.

    Args:
        boxes (ndarray[..., 4]): xyxy in pixels, positive width and height.
        grid (ndarray[..., 2]): integer cell indices (cx, cy) of the predicting cell (YOLOv5
            also uses the two neighbour cells nearest the centre).
        anchors (ndarray[..., 2]): anchor w, h in pixels.
        stride (float or ndarray): pixels per cell.

    Returns:
        ndarray[..., 4]: t_x, t_y, t_w, t_h with ``sigmoid(t_xy) = (p + 0.5) / 2`` for the centre
        offset ``p = centre / stride - grid`` and ``sigmoid(t_wh) = sqrt(size / anchor) / 2``.
        Outside the domain below the values are infinite or NaN.

    Invariant: ``yolov5_decode(yolov5_encode(b, grid, anchors, stride), ...) == b`` for every
    box whose centre lies in (-0.5, 1.5) cells of ``grid`` and whose size is within (0, 4)
    anchors (open intervals: the logit is infinite on their ends).
    Convention: inverse of yolov5 v7.0 ``Detect``: xy = (2σ - 0.5 + grid) * stride,
    wh = (2σ)² * anchor.
    """
    b = _check_encode_boxes(boxes)
    g, a, s = _check_cell_inputs("boxes", b, grid, anchors, stride)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    s = s[..., 0] if s.ndim else s
    gx, gy = np.moveaxis(g, -1, 0)
    aw, ah = np.moveaxis(a, -1, 0)
    sig = [(cx / s - gx + 0.5) / 2, (cy / s - gy + 0.5) / 2,
           np.sqrt(w / aw) / 2, np.sqrt(h / ah) / 2]
    return np.stack(np.broadcast_arrays(*(_logit(p) for p in sig)), axis=-1)


def yolov5_decode(raw: ArrayLike, grid: ArrayLike, anchors: ArrayLike, stride: float | ArrayLike) -> np.ndarray:
    """Decode YOLOv5 head outputs into xyxy boxes in pixels.

    Args:
        raw (ndarray[..., 4]): t_x, t_y, t_w, t_h as the head emits them (pre-sigmoid).
        grid (ndarray[..., 2]): integer cell indices (cx, cy).
        anchors (ndarray[..., 2]): anchor w, h in pixels.
        stride (float or ndarray): pixels per cell.

    Returns:
        ndarray[..., 4]: xyxy in pixels.

    Invariant: yolov5_decode(yolov5_encode(b, grid, anchors, stride), ...) == b for every box
    whose centre lies in (-0.5, 1.5) cells of `grid` and whose size is within (0, 4) anchors.
    Convention: yolov5 v7.0 `Detect`: xy = (2σ - 0.5 + grid) * stride, wh = (2σ)² * anchor.
    """
    r = as_array("raw", raw, last_dim=4, floating=True)
    g, a, s = _check_cell_inputs("raw", r, grid, anchors, stride)
    s = s[..., 0] if s.ndim else s
    sx, sy, sw, sh = np.moveaxis(_sigmoid(r), -1, 0)
    gx, gy = np.moveaxis(g, -1, 0)
    aw, ah = np.moveaxis(a, -1, 0)
    cx = (sx * 2 - 0.5 + gx) * s
    cy = (sy * 2 - 0.5 + gy) * s
    w = (sw * 2) ** 2 * aw
    h = (sh * 2) ** 2 * ah
    return _cxcywh_to_xyxy(*np.broadcast_arrays(cx, cy, w, h))


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 (v8 head)

def _check_dim(dim, ndim: int, name: str, size: int, a: np.ndarray) -> int:
    dim = check_axis(dim, ndim, name)
    if a.shape[dim] != size:
        raise ValueError(f"{name}: expected size {size} on axis {dim}, got shape {a.shape}")
    return int(dim)


def dist2bbox(distance: ArrayLike, anchor_points: ArrayLike, xywh: bool = True, dim: int = -1) -> np.ndarray:
    """Turn (left, top, right, bottom) distances from anchor points into boxes.

    Args:
        distance (ndarray[..., 4]): ltrb distances along axis ``dim`` (any sign accepted).
        anchor_points (ndarray[..., 2]): (x, y) points along axis ``dim``, broadcastable against
            each half of ``distance``; same units as ``distance`` (grid units or pixels).
        xywh (bool): return cxcywh (default, as in Ultralytics 8.3 / 8.4) instead of xyxy.
        dim (int): the coordinate axis of both arrays.

    Returns:
        ndarray[..., 4]: ``x1y1 = a - lt``, ``x2y2 = a + rb``, as cxcywh or xyxy along ``dim``.

    Invariant: ``dist2bbox(bbox2dist(a, b, r), a, xywh=False) == b`` whenever every distance
    ``a - x1y1``, ``x2y2 - a`` lies in [0, r - 1.01] (the clamp of :func:`bbox2dist` is then
    inactive).
    Convention: ultralytics 8.3 ``utils/tal.py`` ``dist2bbox``.
    """
    d = as_array("distance", distance, floating=True)
    p = as_array("anchor_points", anchor_points)
    dim = _check_dim(dim, d.ndim, "distance", 4, d)
    _check_dim(dim, p.ndim, "anchor_points", 2, p)
    lt, rb = np.split(d, 2, axis=dim)
    try:
        np.broadcast_shapes(p.shape, lt.shape)
    except ValueError:
        raise ValueError(f"distance and anchor_points: shapes do not broadcast "
                         f"({d.shape} vs {p.shape} along dim {dim})") from None
    p = p.astype(d.dtype, copy=False)
    x1y1 = p - lt
    x2y2 = p + rb
    if xywh:
        return np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1], axis=dim)
    return np.concatenate([x1y1, x2y2], axis=dim)


def bbox2dist(anchor_points: ArrayLike, bbox: ArrayLike, reg_max: int | None) -> np.ndarray:
    """Turn xyxy boxes into (left, top, right, bottom) distances from anchor points, clamped to
    the range a DFL head with ``reg_max`` bins can express.

    Args:
        anchor_points (ndarray[..., 2]): (x, y) points.
        bbox (ndarray[..., 4]): xyxy boxes, same units as the points (Ultralytics 8.3 / 8.4: grid units).
        reg_max (int or None): number of DFL bins (16 in YOLOv8); distances are clamped to
            ``[0, reg_max - 1 - 0.01]``. None disables the clamp entirely (the Ultralytics
            8.4.190 ``reg_max=None`` behaviour, used when there is no DFL head; 8.3.253 has no None).

    Returns:
        ndarray[..., 4]: ``(a - x1y1, x2y2 - a)`` clamped.

    Invariant: ``bbox2dist(a, dist2bbox(d, a, xywh=False), r) == d`` for ``d`` in
    [0, r - 1.01]; ``dist2bbox(bbox2dist(a, b, r), a, xywh=False) == b`` when the distances
    are in that range.
    Convention: ultralytics 8.3 ``bbox2dist`` as ``BboxLoss`` calls it: there ``reg_max`` is
    passed as ``bins - 1`` and clamped to ``reg_max - 0.01``; here ``reg_max`` is the bin
    count itself, so both give ``bins - 1.01`` (14.99 for 16 bins).
    """
    p = as_array("anchor_points", anchor_points, last_dim=2)
    b = as_array("bbox", bbox, last_dim=4, floating=True)
    if reg_max is not None:
        reg_max = check_count("reg_max", reg_max, minimum=2)
    _check_broadcast(anchor_points=p.shape[:-1], bbox=b.shape[:-1])
    p = p.astype(b.dtype, copy=False)
    x1y1, x2y2 = np.split(b, 2, axis=-1)
    d = np.concatenate(np.broadcast_arrays(p - x1y1, x2y2 - p), axis=-1)
    if reg_max is None:
        return d
    return np.clip(d, 0, reg_max - 1 - 0.01)


def dfl_decode(logits: ArrayLike, reg_max: int = 16) -> np.ndarray:
    """Expected distance per side under the softmax of a Distribution Focal Loss head.

    Args:
        logits (ndarray[..., 4 * reg_max]): bin logits, side-major: the channels of side
            ``k`` (l, t, r, b) are ``k * reg_max : (k + 1) * reg_max``.
        reg_max (int): bins per side (16 in YOLOv8).

    Returns:
        ndarray[..., 4]: ``sum_i softmax(logits_k)_i * i`` per side, in [0, reg_max - 1].

    Invariant: for two-bin logits ``log(i + 1 - t)`` at bin ``i = floor(t)``, ``log(t - i)`` at
    ``i + 1`` and ``-inf`` elsewhere, the result is ``t`` (any t in [0, reg_max - 1)); a
    one-hot logit of margin M at bin i gives ``i`` up to ``reg_max**2 * exp(-M)``. Adding a
    constant to the logits of one side changes nothing (the softmax subtracts the max).
    Convention: ultralytics 8.3 ``v8DetectionLoss.bbox_decode`` / ``DFL`` module:
    ``view(..., 4, reg_max).softmax(-1) @ arange(reg_max)``.
    """
    reg_max = check_count("reg_max", reg_max, 1)
    x = as_array("logits", logits, last_dim=4 * reg_max, floating=True)
    x = x.reshape(x.shape[:-1] + (4, reg_max))  # [..., 4, reg_max]
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    prob = e / np.sum(e, axis=-1, keepdims=True)
    return prob @ np.arange(reg_max, dtype=x.dtype)


# ----------------------------------------------------------------------------- grids

def make_grid(ny: int, nx: int) -> np.ndarray:
    """Integer cell indices of an ny x nx feature map.

    Args:
        ny (int): rows (>= 1).
        nx (int): columns (>= 1).

    Returns:
        ndarray[ny, nx, 2] int64: ``grid[i, j] = (j, i)``, i.e. (x, y) = (column, row).

    Invariant: ``grid[..., 0]`` is constant down a column, ``grid[..., 1]`` along a row; the
    row-major flattening ``grid.reshape(-1, 2)`` visits (0, 0), (1, 0), ..., (nx - 1, ny - 1).
    Convention: yolov5 ``Detect._make_grid`` without its ``- 0.5`` shift (meshgrid 'ij').
    """
    ny = check_count("ny", ny, 1)
    nx = check_count("nx", nx, 1)
    yv, xv = np.meshgrid(np.arange(ny, dtype=np.int64), np.arange(nx, dtype=np.int64),
                         indexing="ij")
    return np.stack([xv, yv], axis=-1)


def _check_levels(strides, n_levels: int, dtype) -> np.ndarray:
    s = as_array("strides", strides, ndim=1)
    if len(s) != n_levels:
        raise ValueError(f"strides: expected {n_levels} values (one per level), got {len(s)}")
    _check_all_positive("strides", s)
    return s.astype(dtype, copy=False)


def make_anchor_grid(anchors: ArrayLike, strides: ArrayLike, grid_sizes: Sequence[tuple[int, int]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flattened (grid, anchor, stride) columns for an anchor-based multi-level head.

    Args:
        anchors (ndarray[L, A, 2]): per level, A anchor (w, h) in pixels, > 0.
        strides (ndarray[L]): pixels per cell of each level, > 0.
        grid_sizes (sequence of L (ny, nx)): feature map size of each level.

    Returns:
        tuple:
            grid (ndarray[T, 2] int64): (cx, cy) of every prediction;
            anchor_wh (ndarray[T, 2]): its anchor in pixels (``anchors``' dtype, float64 for
            integer anchors);
            stride (ndarray[T, 1]): its stride, same dtype.
        ``T = sum_l A * ny_l * nx_l``; order level, anchor, row, column: the order of yolov5
        ``Detect`` outputs ``[B, A, ny, nx, 4]`` reshaped to ``[B, -1, 4]`` and concatenated
        over levels.

    Invariant: ``yolov5_decode(raw, *make_anchor_grid(a, s, sizes))`` on the concatenated raw
    outputs equals the per-level decode with ``make_grid(ny, nx)``, ``a[l][:, None, None]``
    and ``s[l]``.
    Convention: yolov5 v7.0 ``Detect._make_grid`` / ``anchor_grid``, flattened.
    """
    a = as_array("anchors", anchors, ndim=3, last_dim=2, finite=True)
    _check_all_positive("anchors", a)
    dtype = _float_dtype(a)
    a = a.astype(dtype, copy=False)
    sizes = check_sizes("grid_sizes", grid_sizes)
    if len(sizes) != a.shape[0]:
        raise ValueError(f"grid_sizes: expected {a.shape[0]} (ny, nx) pairs (one per level of "
                         f"anchors), got {len(sizes)}")
    s = _check_levels(strides, a.shape[0], dtype)
    n_anchors = a.shape[1]
    grids, whs, sts = [], [], []
    for level, (ny, nx) in enumerate(sizes):
        cells = make_grid(ny, nx).reshape(-1, 2)  # [ny*nx, 2]
        grids.append(np.tile(cells, (n_anchors, 1)))  # [A*ny*nx, 2], anchor-major
        whs.append(np.repeat(a[level], ny * nx, axis=0))
        sts.append(np.full((n_anchors * ny * nx, 1), s[level], dtype=dtype))
    return (np.concatenate(grids).reshape(-1, 2), np.concatenate(whs).reshape(-1, 2),
            np.concatenate(sts).reshape(-1, 1))


def make_anchors(feat_sizes: Sequence[tuple[int, int]], strides: ArrayLike, grid_cell_offset: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
    """Anchor points (cell centres in grid units) and their strides for an anchor-free head.

    Args:
        feat_sizes (sequence of L (h, w)): feature map size of each level.
        strides (sequence or ndarray[L]): pixels per cell of each level, > 0.
        grid_cell_offset (float): added to the integer cell index (0.5: the cell centre).

    Returns:
        tuple:
            anchor_points (ndarray[A, 2]): ``(j + offset, i + offset)`` = (x, y) in grid units,
            row-major within a level, levels concatenated;
            stride_tensor (ndarray[A, 1]): the level's stride for each point.
        ``A = sum_l h_l * w_l``. dtype: ``strides``' if it is a floating array, else float64.

    Invariant: ``anchor_points * stride_tensor`` are the centres of the cells in pixels;
    ``len(anchor_points) == sum(h * w)``.
    Convention: ultralytics 8.3 ``utils/tal.py`` ``make_anchors`` (with ``(h, w)`` pairs in
    place of feature maps).
    """
    sizes = check_sizes("feat_sizes", feat_sizes)
    if len(sizes) == 0:
        raise ValueError("feat_sizes: expected at least one level, got none")
    dtype = _float_dtype(strides)
    s = _check_levels(strides, len(sizes), dtype)
    off = check_finite_real("grid_cell_offset", grid_cell_offset)
    points, st = [], []
    for level, (h, w) in enumerate(sizes):
        g = make_grid(h, w).reshape(-1, 2).astype(dtype)
        points.append(g + off)
        st.append(np.full((h * w, 1), s[level], dtype=dtype))
    return np.concatenate(points), np.concatenate(st)


# ----------------------------------------------------------------------------- tutorial (seed A)

def tutorial_decode(preds: Sequence[ArrayLike], anchors: ArrayLike, strides: Sequence[float]) -> np.ndarray:
    """Decode the section A detector's head outputs as the write-up does (all levels, every anchor).

    Args:
        preds (list of ndarray[bs, na, ny, nx, 5 + C]): raw head outputs per level
            ``(t_x, t_y, t_w, t_h, obj, cls...)`` (the NCHW map ``view(bs, na, 5 + C, ny, nx)``
            with the channel axis moved last).
        anchors (ndarray[nl, na, 2]): anchor w, h in pixels.
        strides (sequence of nl floats): pixels per cell.

    Returns:
        ndarray[bs, sum_l na*ny*nx, 5 + C]: rows ``(x1, y1, x2, y2, σ(obj), σ(cls)...)``, the box
        xyxy in pixels; levels in order, within a level (anchor, row, column) order.

    Convention (``shared/reference/seed_systems.md`` A, "Loss (as printed)" decode): centre
    ``(σ(t_xy) + cell) * stride``, size ``exp(t_wh) * anchor`` (exp argument capped at
    ``MAX_LOG_WH`` and the size floored at ``MIN_WH``, as the losses here: only inf removed).
    Raises: ValueError for a bad shape, non-finite values, anchors not positive [nl, na, 2]
    or strides not nl positive values.
    """
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays [bs, na, ny, nx, 5 + C]")
    ps = [as_array(f"preds[{i}]", p, ndim=5, finite=True, floating=True) for i, p in enumerate(preds)]
    bs, na, no = ps[0].shape[0], ps[0].shape[1], ps[0].shape[-1]
    for i, p in enumerate(ps):
        if p.shape[:2] != (bs, na) or p.shape[-1] != no or no < 6:
            raise ValueError(f"preds[{i}]: expected [{bs}, {na}, ny, nx, {max(no, 6)}], got {p.shape}")
    dtype = ps[0].dtype
    a = as_array("anchors", anchors, ndim=3, finite=True, floating=True).astype(dtype, copy=False)
    if a.shape != (len(ps), na, 2) or np.any(a <= 0):
        raise ValueError(f"anchors: expected positive [{len(ps)}, {na}, 2] (pixels), got {a.shape}")
    s = _check_levels(strides, len(ps), dtype)
    out = []
    for p, anc, stride in zip(ps, a, s):
        _, _, ny, nx, _ = p.shape
        grid = make_grid(ny, nx).astype(dtype)  # [ny, nx, 2] (x, y)
        xy = (_sigmoid(p[..., :2]) + grid) * stride
        wh = np.maximum(anc[None, :, None, None, :] * np.exp(np.minimum(p[..., 2:4], MAX_LOG_WH)), MIN_WH)
        box = np.concatenate([xy - wh / 2, xy + wh / 2], -1)
        out.append(np.concatenate([box, _sigmoid(p[..., 4:])], -1).reshape(bs, -1, no))
    return np.concatenate(out, 1)


def _tutorial_candidates(decoded, conf_thres: float) -> tuple[np.ndarray, list]:
    """Per image (boxes [n, 4], scores [n], labels [n]) of the rows with ``σ(obj)·σ(cls) > conf_thres``
    at their best class (the first maximum)."""
    d = as_array("decoded", decoded, ndim=3, finite=True, floating=True)
    if d.shape[-1] < 6:
        raise ValueError(f"decoded: expected [bs, N, 5 + C] with C >= 1, got {d.shape}")
    thr = check_finite_real("conf_thres", conf_thres)
    out = []
    for img in d:
        labels = img[:, 5:].argmax(1)
        scores = img[:, 4] * img[:, 5:].max(1)
        keep = scores > thr
        out.append((img[keep, :4], scores[keep], labels[keep]))
    return d, out


def _rows(boxes, scores, labels, dtype) -> np.ndarray:
    return np.concatenate([boxes, scores[:, None], labels[:, None].astype(dtype)], 1).reshape(-1, 6).astype(dtype)


def tutorial_detect_as_printed(decoded: ArrayLike, conf_thres: float = 0.25, iou_thres: float = 0.5
                               ) -> list[np.ndarray]:
    """Section A's inference AS PRINTED: score filter, then greedy NMS class by class.

    Args:
        decoded (ndarray[bs, N, 5 + C]): :func:`tutorial_decode`'s rows
            ``(x1, y1, x2, y2, σ(obj), σ(cls)...)``.
        conf_thres (float): keep ``conf = σ(obj) * max σ(cls) > conf_thres`` (0.25).
        iou_thres (float): NMS IoU threshold within a class (0.5).

    Returns:
        list of bs ndarrays [K, 6]: ``(x1, y1, x2, y2, conf, class)``, ordered CLASS BY CLASS
        (ascending class id), within a class by :func:`ref_numpy.nms.nms` (descending conf,
        ties in input order). Not ordered by score: that is the write-up's flaw
        (:func:`tutorial_detect_corrected` is the same set ordered by score).

    Convention (``shared/reference/seed_systems.md`` A, "Inference (as printed)"): best class
    per anchor (the first maximum), a loop over the classes present, one greedy NMS each.
    Raises: ValueError for a bad shape or non-finite values or thresholds.
    """
    d, cands = _tutorial_candidates(decoded, conf_thres)
    out = []
    for boxes, scores, labels in cands:
        rows = []
        for c in np.unique(labels):  # the write-up's loop over classes, ascending
            idx = np.flatnonzero(labels == c)
            k = idx[nms(boxes[idx], scores[idx], iou_thres)]
            rows.append(_rows(boxes[k], scores[k], labels[k], d.dtype))
        out.append(np.concatenate(rows) if rows else np.zeros((0, 6), d.dtype))
    return out


def tutorial_detect_corrected(decoded: ArrayLike, conf_thres: float = 0.25, iou_thres: float = 0.5
                              ) -> list[np.ndarray]:
    """Section A's inference CORRECTED: the same detections, ordered by score.

    Args, Returns: as :func:`tutorial_detect_as_printed`, except the order of the rows:
    descending conf over all classes (ties in input order), i.e. :func:`ref_numpy.nms.batched_nms`'s.

    Changed, exactly: the order (so that truncating to the top-k, or reading an AP curve,
    takes the best detections first). Kept: the score, the best-class rule, the thresholds,
    class-wise NMS; the set of rows equals the as-printed one.
    """
    d, cands = _tutorial_candidates(decoded, conf_thres)
    out = []
    for boxes, scores, labels in cands:
        k = batched_nms(boxes, scores, labels, iou_thres)
        out.append(_rows(boxes[k], scores[k], labels[k], d.dtype))
    return out
