"""PyTorch port of :mod:`ref_numpy.coder`: YOLO box encoders/decoders and their grids.

Same names, arguments, conventions and contracts as the reference (read its docstrings); here
every function broadcasts over leading dimensions, runs on the device of its tensor inputs and
is differentiable where a gradient makes sense (the decoders, ``dist2bbox``, ``dfl_decode``,
and the encoders with respect to the boxes). Validation synchronises with the device once per
call (value checks such as ``anchors > 0``), never inside a loop.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ref_numpy.shared.checks import check_axis, check_count, check_finite_real, check_image_size, check_sizes
from ref_numpy.shared.constants import MAX_LOG_WH, MIN_WH
from torch_impl._typing import TensorLike
from torch_impl._validate import as_tensor, check_boxes
from torch_impl.nms import batched_nms

__all__ = [
    "yolov1_encode", "yolov1_decode",
    "yolov3_encode", "yolov3_decode",
    "yolov5_encode", "yolov5_decode",
    "dist2bbox", "bbox2dist", "dfl_decode",
    "make_grid", "make_anchor_grid", "make_anchors",
    "tutorial_decode", "tutorial_detect_as_printed", "tutorial_detect_corrected",
]


# ----------------------------------------------------------------------------- private helpers

def _logit(p: torch.Tensor) -> torch.Tensor:
    """``log(p / (1 - p))``; -inf at 0, +inf at 1 (the reference's form, see there)."""
    return torch.log(p / (1 - p))


def _cxcywh_to_xyxy(cx, cy, w, h) -> torch.Tensor:
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _xyxy_to_cxcywh(boxes: torch.Tensor):
    x1, y1, x2, y2 = boxes.unbind(-1)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _check_broadcast(**named) -> tuple:
    try:
        return tuple(torch.broadcast_shapes(*named.values()))
    except (RuntimeError, ValueError):
        desc = ", ".join(f"{k} {tuple(v)}" for k, v in named.items())
        raise ValueError(f"{' and '.join(named)}: leading dimensions do not broadcast ({desc})") from None


def _check_all_positive(name: str, a: torch.Tensor) -> None:
    if a.numel() and not bool(((a > 0) & torch.isfinite(a)).all()):
        raise ValueError(f"{name}: expected finite values > 0, got min {a.min().item()!r}")


def _check_stride(stride, like: torch.Tensor) -> torch.Tensor:
    s = as_tensor("stride", stride, device=like.device)
    if s.ndim and s.shape[-1] != 1:
        raise ValueError(f"stride: expected a scalar or shape [..., 1], got {tuple(s.shape)}")
    _check_all_positive("stride", s)
    return s.to(device=like.device, dtype=like.dtype)


def _check_cell_inputs(first_name: str, first: torch.Tensor, grid, anchors, stride):
    g = as_tensor("grid", grid, last_dim=2, finite=True, device=first.device)
    a = as_tensor("anchors", anchors, last_dim=2, finite=True, device=first.device)
    _check_all_positive("anchors", a)
    s = _check_stride(stride, first)
    _check_broadcast(**{first_name: first.shape[:-1], "grid": g.shape[:-1],
                        "anchors": a.shape[:-1]})
    if s.ndim:
        _check_broadcast(**{first_name: tuple(first.shape[:-1]) + (1,), "stride": s.shape})
    cast = dict(device=first.device, dtype=first.dtype)
    return g.to(**cast), a.to(**cast), s


def _check_encode_boxes(boxes) -> torch.Tensor:
    b = check_boxes("boxes", boxes)
    if not b.is_floating_point():
        b = b.to(torch.float64)
    x1, y1, x2, y2 = b.unbind(-1)
    if b.numel() and not bool(((x2 > x1) & (y2 > y1)).all()):
        raise ValueError("boxes: expected x2 > x1 and y2 > y1 (positive width and height)")
    return b


def _stack_broadcast(*parts) -> torch.Tensor:
    return torch.stack(torch.broadcast_tensors(*parts), dim=-1)


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_encode(boxes: TensorLike, S: int = 7, image_size: tuple[float, float] = (448, 448)
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv1 targets: (cells [N, 2] int64 (col, row), targets [N, 4] (x_off, y_off, sqrt(w/W),
    sqrt(h/H))). See :func:`ref_numpy.coder.yolov1_encode`."""
    S = check_count("S", S, 1)
    H, W = (float(v) for v in check_image_size("image_size", image_size))
    b = check_boxes("boxes", boxes, ndim=2)
    if not b.is_floating_point():
        b = b.to(torch.float64)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    if b.numel() and not bool(((w >= 0) & (h >= 0)).all()):
        raise ValueError("boxes: expected x2 >= x1 and y2 >= y1")
    inside = (cx >= 0) & (cx <= W) & (cy >= 0) & (cy <= H)
    if b.numel() and not bool(inside.all()):
        raise ValueError(f"boxes: every centre must lie inside the image (height {H}, width {W})")
    u = cx / W * S  # centre in cell units, [0, S]
    v = cy / H * S
    col = torch.floor(u).clamp(max=S - 1)
    row = torch.floor(v).clamp(max=S - 1)
    targets = torch.stack([u - col, v - row, torch.sqrt(w / W), torch.sqrt(h / H)], dim=-1)
    cells = torch.stack([col, row], dim=-1).to(torch.int64)
    return cells, targets


def yolov1_decode(raw: TensorLike, grid: TensorLike, S: int = 7, image_size: tuple[float, float] = (448, 448)
                 ) -> torch.Tensor:
    """YOLOv1 (x_off, y_off, sqrt_w, sqrt_h) [..., 4] at cells ``grid`` [..., 2] -> xyxy pixels.
    See :func:`ref_numpy.coder.yolov1_decode`."""
    S = check_count("S", S, 1)
    H, W = (float(v) for v in check_image_size("image_size", image_size))
    r = as_tensor("raw", raw, last_dim=4, floating=True)
    g = as_tensor("grid", grid, last_dim=2, finite=True, device=r.device)
    _check_broadcast(raw=r.shape[:-1], grid=g.shape[:-1])
    g = g.to(device=r.device, dtype=r.dtype)
    ox, oy, sw, sh = r.unbind(-1)
    gx, gy = g.unbind(-1)
    cx = (ox + gx) / S * W
    cy = (oy + gy) / S * H
    return _cxcywh_to_xyxy(*torch.broadcast_tensors(cx, cy, sw * sw * W, sh * sh * H))


# ----------------------------------------------------------------------------- YOLOv2/v3

def yolov3_encode(boxes: TensorLike, grid: TensorLike, anchors: TensorLike, stride: float | TensorLike,
                  logits: bool = False) -> torch.Tensor:
    """Darknet v2/v3 targets (tx*, ty*, tw*, th*): offsets ``g/stride - cell`` (their logit with
    ``logits=True``), ``log(size / anchor)``. See :func:`ref_numpy.coder.yolov3_encode`."""
    b = _check_encode_boxes(boxes)
    g, a, s = _check_cell_inputs("boxes", b, grid, anchors, stride)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    s = s[..., 0] if s.ndim else s
    gx, gy = g.unbind(-1)
    aw, ah = a.unbind(-1)
    tx = cx / s - gx
    ty = cy / s - gy
    if logits:
        tx, ty = _logit(tx), _logit(ty)
    return _stack_broadcast(tx, ty, torch.log(w / aw), torch.log(h / ah))


def yolov3_decode(raw: TensorLike, grid: TensorLike, anchors: TensorLike, stride: float | TensorLike) -> torch.Tensor:
    """Darknet v2/v3 decode: ``(sigmoid(t) + cell) * stride``, ``anchor * exp(t)`` -> xyxy.
    See :func:`ref_numpy.coder.yolov3_decode`."""
    r = as_tensor("raw", raw, last_dim=4, floating=True)
    g, a, s = _check_cell_inputs("raw", r, grid, anchors, stride)
    s = s[..., 0] if s.ndim else s
    tx, ty, tw, th = r.unbind(-1)
    gx, gy = g.unbind(-1)
    aw, ah = a.unbind(-1)
    cx = (torch.sigmoid(tx) + gx) * s
    cy = (torch.sigmoid(ty) + gy) * s
    return _cxcywh_to_xyxy(*torch.broadcast_tensors(cx, cy, aw * torch.exp(tw), ah * torch.exp(th)))


# ----------------------------------------------------------------------------- YOLOv5

def yolov5_encode(boxes: TensorLike, grid: TensorLike, anchors: TensorLike, stride: float | TensorLike) -> torch.Tensor:
    """Raw (pre-sigmoid) YOLOv5 outputs that decode to ``boxes``.
    See :func:`ref_numpy.coder.yolov5_encode`."""
    b = _check_encode_boxes(boxes)
    g, a, s = _check_cell_inputs("boxes", b, grid, anchors, stride)
    cx, cy, w, h = _xyxy_to_cxcywh(b)
    s = s[..., 0] if s.ndim else s
    gx, gy = g.unbind(-1)
    aw, ah = a.unbind(-1)
    sig = [(cx / s - gx + 0.5) / 2, (cy / s - gy + 0.5) / 2,
           torch.sqrt(w / aw) / 2, torch.sqrt(h / ah) / 2]
    return _stack_broadcast(*(_logit(p) for p in sig))


def yolov5_decode(raw: TensorLike, grid: TensorLike, anchors: TensorLike, stride: float | TensorLike) -> torch.Tensor:
    """YOLOv5 v7.0 ``Detect`` decode: xy = (2σ - 0.5 + grid) * stride, wh = (2σ)² * anchor ->
    xyxy pixels. See :func:`ref_numpy.coder.yolov5_decode`."""
    r = as_tensor("raw", raw, last_dim=4, floating=True)
    g, a, s = _check_cell_inputs("raw", r, grid, anchors, stride)
    s = s[..., 0] if s.ndim else s
    sx, sy, sw, sh = torch.sigmoid(r).unbind(-1)
    gx, gy = g.unbind(-1)
    aw, ah = a.unbind(-1)
    cx = (sx * 2 - 0.5 + gx) * s
    cy = (sy * 2 - 0.5 + gy) * s
    w = (sw * 2) ** 2 * aw
    h = (sh * 2) ** 2 * ah
    return _cxcywh_to_xyxy(*torch.broadcast_tensors(cx, cy, w, h))


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 (v8 head)

def _check_dim(dim, name: str, size: int, a: torch.Tensor) -> int:
    dim = check_axis(dim, a.ndim, name)
    if a.shape[dim] != size:
        raise ValueError(f"{name}: expected size {size} on axis {dim}, got shape {tuple(a.shape)}")
    return int(dim)


def dist2bbox(distance: TensorLike, anchor_points: TensorLike, xywh: bool = True, dim: int = -1) -> torch.Tensor:
    """ltrb distances from anchor points -> cxcywh (``xywh=True``) or xyxy boxes along ``dim``.
    See :func:`ref_numpy.coder.dist2bbox`."""
    d = as_tensor("distance", distance, floating=True)
    p = as_tensor("anchor_points", anchor_points, device=d.device)
    dim = _check_dim(dim, "distance", 4, d)
    _check_dim(dim, "anchor_points", 2, p)
    lt, rb = d.chunk(2, dim)
    try:
        torch.broadcast_shapes(p.shape, lt.shape)
    except RuntimeError:
        raise ValueError(f"distance and anchor_points: shapes do not broadcast "
                         f"({tuple(d.shape)} vs {tuple(p.shape)} along dim {dim})") from None
    p = p.to(device=d.device, dtype=d.dtype)
    x1y1 = p - lt
    x2y2 = p + rb
    if xywh:
        return torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], dim)
    return torch.cat([x1y1, x2y2], dim)


def bbox2dist(anchor_points: TensorLike, bbox: TensorLike, reg_max: int | None) -> torch.Tensor:
    """xyxy boxes -> ltrb distances from anchor points, clamped to [0, reg_max - 1.01] (no clamp
    for ``reg_max=None``). See :func:`ref_numpy.coder.bbox2dist`."""
    b = as_tensor("bbox", bbox, last_dim=4, floating=True)
    p = as_tensor("anchor_points", anchor_points, last_dim=2, device=b.device)
    if reg_max is not None:
        reg_max = check_count("reg_max", reg_max, minimum=2)
    _check_broadcast(anchor_points=p.shape[:-1], bbox=b.shape[:-1])
    p = p.to(device=b.device, dtype=b.dtype)
    x1y1, x2y2 = b.chunk(2, -1)
    d = torch.cat(torch.broadcast_tensors(p - x1y1, x2y2 - p), -1)
    if reg_max is None:
        return d
    return d.clamp(0, reg_max - 1 - 0.01)


def dfl_decode(logits: TensorLike, reg_max: int = 16) -> torch.Tensor:
    """Softmax expectation over ``reg_max`` bins per side, channels side-major
    ``[..., 4 * reg_max]`` -> ``[..., 4]``. See :func:`ref_numpy.coder.dfl_decode`."""
    reg_max = check_count("reg_max", reg_max, 1)
    x = as_tensor("logits", logits, last_dim=4 * reg_max, floating=True)
    prob = x.reshape(*x.shape[:-1], 4, reg_max).softmax(-1)  # [..., 4, reg_max]
    return prob @ torch.arange(reg_max, dtype=x.dtype, device=x.device)


# ----------------------------------------------------------------------------- grids

def make_grid(ny: int, nx: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[ny, nx, 2]`` int64 (x, y) cell indices on ``device``.
    See :func:`ref_numpy.coder.make_grid`."""
    ny = check_count("ny", ny, 1)
    nx = check_count("nx", nx, 1)
    yv, xv = torch.meshgrid(torch.arange(ny, device=device), torch.arange(nx, device=device),
                            indexing="ij")
    return torch.stack([xv, yv], dim=-1)


def _check_levels(strides, n_levels: int, dtype, device) -> torch.Tensor:
    s = as_tensor("strides", strides, ndim=1, device=device)
    if len(s) != n_levels:
        raise ValueError(f"strides: expected {n_levels} values (one per level), got {len(s)}")
    _check_all_positive("strides", s)
    return s.to(device=device, dtype=dtype)


def make_anchor_grid(anchors: TensorLike, strides: TensorLike, grid_sizes: Sequence[tuple[int, int]]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened (grid [T, 2] int64, anchor_wh [T, 2], stride [T, 1]) over levels, anchors,
    rows, columns (yolov5 ``Detect`` output order). See :func:`ref_numpy.coder.make_anchor_grid`.
    """
    a = as_tensor("anchors", anchors, ndim=3, last_dim=2, finite=True)
    _check_all_positive("anchors", a)
    if not a.is_floating_point():
        a = a.to(torch.float64)
    sizes = check_sizes("grid_sizes", grid_sizes)
    if len(sizes) != a.shape[0]:
        raise ValueError(f"grid_sizes: expected {a.shape[0]} (ny, nx) pairs (one per level of "
                         f"anchors), got {len(sizes)}")
    s = _check_levels(strides, a.shape[0], a.dtype, a.device)
    n_anchors = a.shape[1]
    counts = torch.tensor([n_anchors * ny * nx for ny, nx in sizes], device=a.device)
    grids = [make_grid(ny, nx, device=a.device).reshape(1, -1, 2).expand(n_anchors, -1, -1)
             .reshape(-1, 2) for ny, nx in sizes]  # anchor-major within each level
    cells = torch.tensor([ny * nx for ny, nx in sizes], device=a.device)
    anchor_wh = a.reshape(-1, 2).repeat_interleave(cells.repeat_interleave(n_anchors), dim=0)
    stride = s.repeat_interleave(counts).reshape(-1, 1)
    return torch.cat(grids).reshape(-1, 2), anchor_wh.reshape(-1, 2), stride


def make_anchors(feat_sizes: Sequence[tuple[int, int]], strides: TensorLike, grid_cell_offset: float = 0.5,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ultralytics 8.3 / 8.4 ``make_anchors``: anchor points ``[A, 2]`` (cell centres, grid units)
    and strides ``[A, 1]``.

    Port-only keywords: ``dtype`` (default: ``strides``' dtype if it is a floating tensor,
    else ``torch.get_default_dtype()``) and ``device`` (default: ``strides``' device if it is a
    tensor, else the default device). See :func:`ref_numpy.coder.make_anchors`.
    """
    sizes = check_sizes("feat_sizes", feat_sizes)
    if len(sizes) == 0:
        raise ValueError("feat_sizes: expected at least one level, got none")
    if isinstance(strides, torch.Tensor):
        device = strides.device if device is None else device
        if dtype is None and strides.is_floating_point():
            dtype = strides.dtype
    dtype = torch.get_default_dtype() if dtype is None else dtype
    s = _check_levels(strides, len(sizes), dtype, device)
    off = check_finite_real("grid_cell_offset", grid_cell_offset)
    points = [make_grid(h, w, device=device).reshape(-1, 2).to(dtype) + off
              for h, w in sizes]
    counts = torch.tensor([h * w for h, w in sizes], device=s.device)
    return torch.cat(points), s.repeat_interleave(counts).reshape(-1, 1)


# ----------------------------------------------------------------------------- tutorial (seed A)

def tutorial_decode(preds: Sequence[TensorLike], anchors: TensorLike, strides: Sequence[float]) -> torch.Tensor:
    """See :func:`ref_numpy.coder.tutorial_decode`: ``[bs, sum na*ny*nx, 5 + C]`` rows
    ``(x1, y1, x2, y2, σ(obj), σ(cls)...)`` in pixels."""
    if not isinstance(preds, (list, tuple)) or not preds:
        raise ValueError("preds: expected a non-empty list of per-level arrays [bs, na, ny, nx, 5 + C]")
    ps = [as_tensor(f"preds[{i}]", p, ndim=5, finite=True, floating=True) for i, p in enumerate(preds)]
    bs, na, no = ps[0].shape[0], ps[0].shape[1], ps[0].shape[-1]
    for i, p in enumerate(ps):
        if tuple(p.shape[:2]) != (bs, na) or p.shape[-1] != no or no < 6:
            raise ValueError(f"preds[{i}]: expected [{bs}, {na}, ny, nx, {max(no, 6)}], got {tuple(p.shape)}")
    p0 = ps[0]
    a = as_tensor("anchors", anchors, ndim=3, finite=True, floating=True, device=p0.device).to(p0.dtype)
    if tuple(a.shape) != (len(ps), na, 2) or not bool((a > 0).all()):
        raise ValueError(f"anchors: expected positive [{len(ps)}, {na}, 2] (pixels), got {tuple(a.shape)}")
    s = _check_levels(strides, len(ps), p0.dtype, p0.device)
    out = []
    for p, anc, stride in zip(ps, a, s):
        _, _, ny, nx, _ = p.shape
        grid = make_grid(ny, nx, device=p.device).to(p.dtype)
        xy = (p[..., :2].sigmoid() + grid) * stride
        wh = (anc.view(1, na, 1, 1, 2) * p[..., 2:4].clamp(max=MAX_LOG_WH).exp()).clamp(min=MIN_WH)
        box = torch.cat([xy - wh / 2, xy + wh / 2], -1)
        out.append(torch.cat([box, p[..., 4:].sigmoid()], -1).reshape(bs, -1, no))
    return torch.cat(out, 1)


def _tutorial_candidates(decoded, conf_thres: float):
    d = as_tensor("decoded", decoded, ndim=3, finite=True, floating=True)
    if d.shape[-1] < 6:
        raise ValueError(f"decoded: expected [bs, N, 5 + C] with C >= 1, got {tuple(d.shape)}")
    thr = check_finite_real("conf_thres", conf_thres)
    best, labels = d[..., 5:].max(-1)  # first maximum, as NumPy's argmax
    scores = d[..., 4] * best
    return d, [(img[k, :4], sc[k], lb[k]) for img, sc, lb, k in zip(d, scores, labels, scores > thr)]


def _rows(boxes, scores, labels) -> torch.Tensor:
    return torch.cat([boxes, scores[:, None], labels[:, None].to(boxes.dtype)], 1)


def tutorial_detect_as_printed(decoded: TensorLike, conf_thres: float = 0.25, iou_thres: float = 0.5
                               ) -> list[torch.Tensor]:
    """See :func:`ref_numpy.coder.tutorial_detect_as_printed`: rows ordered class by class.

    The class loop is done as one :func:`torch_impl.nms.batched_nms` followed by a stable sort
    on the class: within a class batched_nms's order is that class's greedy NMS order."""
    d, cands = _tutorial_candidates(decoded, conf_thres)
    out = []
    for boxes, scores, labels in cands:
        k = batched_nms(boxes, scores, labels, iou_thres)
        k = k[torch.sort(labels[k], stable=True).indices]
        out.append(_rows(boxes[k], scores[k], labels[k]))
    return out


def tutorial_detect_corrected(decoded: TensorLike, conf_thres: float = 0.25, iou_thres: float = 0.5
                              ) -> list[torch.Tensor]:
    """See :func:`ref_numpy.coder.tutorial_detect_corrected`: the same rows, ordered by score."""
    d, cands = _tutorial_candidates(decoded, conf_thres)
    return [_rows(b[k], s[k], lb[k]) for b, s, lb in cands for k in [batched_nms(b, s, lb, iou_thres)]]
