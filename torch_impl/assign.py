"""Target assignment of the YOLO family (PyTorch port of :mod:`ref_numpy.assign`).

Same functions, arguments and conventions as the reference (read its docstrings for the
contracts); batched, on the device of the inputs, with no Python loop over targets (loops run
over pyramid levels). The reports compute rows, winners and collisions here, on tensors, and
assemble the one :class:`~ref_numpy.shared.report.AssignmentReport` with the shared layer's
plain-Python builders (:mod:`ref_numpy.shared.report`). Assignment is not differentiable:
outputs are indices, masks and targets.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from ref_numpy.shared import report as _report
from ref_numpy.shared.checks import check_count, check_positive, check_strides
from ref_numpy.shared.checks import check_tal_version
from ref_numpy.shared.constants import TAL_STRIDES, ULTRALYTICS_DEFAULT_VERSION
from ref_numpy.shared.report import (  # noqa: F401 (re-exported: the schema and its constants)
    RULE_BEST_ANCHOR, TAL_REASONS, V1_REASONS, V3_REASONS, V5_OFFSET_NAMES, V5_REASONS,
    AssignmentReport)
from torch_impl._typing import TensorLike
from torch_impl._validate import as_tensor
from torch_impl.boxes import _aligned_iou, darknet_box_iou, wh_iou

# Per-level (b, a, gj, gi) index tensors, as YOLOv5's build_targets returns them.
_LevelIndices = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

_V5_OFFSETS = ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1))


# ----------------------------------------------------------------------------- validation

def _check_targets(targets, *, check_position: bool = True, device=None) -> torch.Tensor:
    t = as_tensor("targets", targets, ndim=2, finite=True, floating=True, device=device)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6] (image, class, cx, cy, w, h), got {tuple(t.shape)}")
    if not t.numel():
        return t
    img, cls, cxy, wh = t[:, 0], t[:, 1], t[:, 2:4], t[:, 4:6]
    bad = torch.stack([((img < 0) | (img != img.floor())).any(),
                       ((cls < 0) | (cls != cls.floor())).any(), (wh < 0).any(), (wh > 1).any(),
                       ((cxy < 0) | (cxy > 1)).any() & check_position]).tolist()  # one sync
    messages = ("targets: image indices (column 0) must be non-negative integers",
                "targets: class ids (column 1) must be non-negative integers",
                "targets: negative box sizes (columns 4, 5)",
                "targets: box sides (columns 4, 5) larger than the image (> 1)",
                "targets: box centres (columns 2, 3) outside the image [0, 1]")
    for is_bad, message in zip(bad, messages):
        if is_bad:
            raise ValueError(message)
    return t


def _check_anchors(anchors, grid_sizes, device=None):
    a = as_tensor("anchors", anchors, ndim=3, last_dim=2, finite=True, floating=True, device=device)
    if a.numel() and not bool((a > 0).all()):
        raise ValueError("anchors: expected positive anchor sizes")
    try:
        grids = [(int(ny), int(nx)) for ny, nx in grid_sizes]
        exact = all(float(ny) == gy and float(nx) == gx
                    for (ny, nx), (gy, gx) in zip(grid_sizes, grids))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"grid_sizes: expected a list of (ny, nx), got {grid_sizes!r}") from exc
    if not exact or any(ny < 1 or nx < 1 for ny, nx in grids):
        raise ValueError(f"grid_sizes: expected positive integer (ny, nx) pairs, got {grid_sizes!r}")
    if len(grids) != a.shape[0]:
        raise ValueError(f"anchors and grid_sizes: {a.shape[0]} anchor levels vs {len(grids)} grids")
    return a, grids




# ----------------------------------------------------------------------------- small helpers

# ----------------------------------------------------------------------------- YOLOv5

def _v5_rows(t, anchors, grids, anchor_t, g):
    """YOLOv5 build_targets rows for all levels at once (see the reference's per-level
    ``_v5_level_rows``): per level (target index, anchor, offset block, gxy, gwh, unclamped gij),
    in YOLOv5's order (offset block, anchor, target)."""
    dev, dt = t.device, t.dtype
    nl = len(grids)
    size = torch.tensor([[nx, ny] for ny, nx in grids], dtype=dt, device=dev)  # [nl, 2]
    gxy_all = t[None, :, 2:4] * size[:, None]  # [nl, nt, 2]
    gwh_all = t[None, :, 4:6] * size[:, None]
    r = gwh_all[:, None] / anchors.to(dt)[:, :, None]  # [nl, na, nt, 2]
    match = torch.maximum(r, 1 / r).amax(3) < anchor_t  # [nl, na, nt]
    l_idx, a_idx, t_idx = match.nonzero(as_tuple=True)  # level, then anchor, then target
    gxy = gxy_all[l_idx, t_idx]
    gxi = size[l_idx] - gxy
    jk = (gxy % 1 < g) & (gxy > 1)  # x-1 and y-1 neighbours
    lm = (gxi % 1 < g) & (gxi > 1)  # x+1 and y+1 neighbours
    use = torch.stack([torch.ones_like(jk[:, 0]), jk[:, 0], jk[:, 1], lm[:, 0], lm[:, 1]])  # [5, n]
    block, row = use.nonzero(as_tuple=True)  # block-major over all levels ...
    order = torch.sort(l_idx[row], stable=True).indices  # ... then level-major, order kept
    block, row = block[order], row[order]
    offsets = (torch.tensor(_V5_OFFSETS, dtype=dt, device=dev) * g)[block]
    gxy_r = gxy[row]
    gij = (gxy_r - offsets).long()  # truncation toward zero
    counts = torch.bincount(l_idx[row], minlength=nl).tolist()
    parts = (t_idx[row], a_idx[row], block, gxy_r, gwh_all[l_idx[row], t_idx[row]], gij)
    return list(zip(*(x.split(counts) for x in parts)))


def yolov5_build_targets(targets: TensorLike, anchors: TensorLike, grid_sizes: Sequence[tuple[int, int]],
                         anchor_t: float = 4.0, g: float = 0.5
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[_LevelIndices], list[torch.Tensor]]:
    """YOLOv5 v7.0 ``build_targets`` (see :func:`ref_numpy.assign.yolov5_build_targets`)."""
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes, device=t.device)
    a = a.to(t.device)
    anchor_t = check_positive("anchor_t", anchor_t)
    g = float(g)
    if not 0 <= g <= 1:
        raise ValueError(f"g: expected a bias in [0, 1], got {g!r}")
    tcls, tbox, indices, anch = [], [], [], []
    for (ny, nx), (ti, ai, _, gxy, gwh, gij), lvl in zip(grids, _v5_rows(t, a, grids, anchor_t, g), a):
        b = t[ti, 0].long()
        gij = torch.minimum(gij.clamp(min=0), torch.tensor([nx - 1, ny - 1], device=gij.device))
        indices.append((b, ai, gij[:, 1], gij[:, 0]))
        tbox.append(torch.cat([gxy - gij, gwh], 1).reshape(-1, 4))
        anch.append(lvl.to(t.dtype)[ai].reshape(-1, 2))
        tcls.append(t[ti, 1].long())
    return tcls, tbox, indices, anch


def _v5_no_anchor_reason(t, anchors, grids, anchor_t):
    codes = []
    for lvl, (ny, nx) in zip(anchors, grids):
        gwh = t[:, 4:6] * torch.tensor([nx, ny], dtype=t.dtype, device=t.device)
        r = gwh[None] / lvl.to(t.dtype)[:, None]  # [na, nt, 2]
        big = r.amax(2) >= anchor_t
        small = (1 / r).amax(2) >= anchor_t
        none = (big | small).all(0)
        code = torch.where((small & ~big).all(0), 1, torch.where((big & ~small).all(0), 2,
                                                                 torch.where((big & small).all(0), 4, 3)))
        codes.append(torch.where(none, code, 0))
    return torch.stack(codes).reshape(len(grids), len(t)).long()


def _slot_key(b, a, gj, gi, na: int, ny: int, nx: int) -> torch.Tensor:
    """One integer per written slot ``(b, a, gj, gi)`` of a level, ordered as the slots."""
    return ((b * na + a) * ny + gj) * nx + gi


def _last_writer(key: torch.Tensor) -> torch.Tensor:
    """bool [n]: row is the last one written to its slot key."""
    if not key.numel():
        return torch.zeros_like(key, dtype=torch.bool)
    order = torch.sort(key, stable=True).indices
    k = key[order]
    is_last_sorted = torch.ones_like(k, dtype=torch.bool)
    is_last_sorted[:-1] = k[1:] != k[:-1]
    out = torch.zeros_like(is_last_sorted)
    out[order] = is_last_sorted
    return out


def _collisions(key: torch.Tensor, ti: torch.Tensor) -> list:
    """Slots written by two or more different GTs (as lists of rows, in slot-key order)."""
    if not key.numel():
        return []
    order = torch.sort(key, stable=True).indices
    k = key[order]
    _, counts = torch.unique_consecutive(k, return_counts=True)
    groups = torch.split(order, counts.tolist())
    return [grp.tolist() for grp in groups
            if grp.numel() > 1 and bool((ti[grp] != ti[grp[0]]).any())]


def _level_rows(ti, b, a, gj, gi, target, rule, na, ny, nx) -> dict:
    """One level's rows as plain lists for the shared report builder (see the reference)."""
    key = _slot_key(b, a, gj, gi, na, ny, nx)
    return {"ti": ti.tolist(), "a": a.tolist(), "gj": gj.tolist(), "gi": gi.tolist(),
            "target": target.tolist(), "won": _last_writer(key).tolist(), "rule": rule,
            "collisions": _collisions(key, ti)}


def yolov5_assignment_report(targets: TensorLike, anchors: TensorLike, grid_sizes: Sequence[tuple[int, int]],
                             anchor_t: float = 4.0, g: float = 0.5) -> AssignmentReport:
    """Explain a YOLOv5 assignment GT by GT (see :func:`ref_numpy.assign.yolov5_assignment_report`);
    the returned report equals the reference's."""
    t = _check_targets(targets, check_position=False)
    a, grids = _check_anchors(anchors, grid_sizes, device=t.device)
    a = a.to(t.device)
    anchor_t = check_positive("anchor_t", anchor_t)
    g = float(g)
    outside = ((t[:, 2:4] < 0) | (t[:, 2:4] > 1)).any(1)
    kept = (~outside).nonzero(as_tuple=True)[0]
    codes = _v5_no_anchor_reason(t, a, grids, anchor_t)
    na = a.shape[1]
    levels = []
    for (ny, nx), (ti, ai, block, gxy, gwh, gij) in zip(grids, _v5_rows(t[kept], a, grids, anchor_t, g)):
        ti = kept[ti]
        b = t[ti, 0].long()
        gij = torch.minimum(gij.clamp(min=0), torch.tensor([nx - 1, ny - 1], device=gij.device))
        tbox = torch.cat([gxy - gij, gwh], 1).reshape(-1, 4)
        rule = [V5_OFFSET_NAMES[k] for k in block.tolist()]
        levels.append(_level_rows(ti, b, ai, gij[:, 1], gij[:, 0], tbox, rule, na, ny, nx))
    reasons = _report.v5_level_reasons(codes.tolist(), outside.tolist())
    return _report.anchor_based_report("yolov5", t.tolist(), grids, levels, reasons,
                                       {"anchor_t": anchor_t, "g": g})


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 TAL

def _check_tal_inputs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, topk,
                      num_classes):
    s = as_tensor("pd_scores", pd_scores, ndim=3, floating=True)
    _check_finite_sum("pd_scores", s)
    bs, na, nc = s.shape
    dev = s.device
    if nc != num_classes:
        raise ValueError(f"pd_scores: expected {num_classes} classes (num_classes), got {nc}")
    p = as_tensor("pd_bboxes", pd_bboxes, ndim=3, last_dim=4, finite=True, floating=True, device=dev)
    if tuple(p.shape[:2]) != (bs, na):
        raise ValueError(f"pd_bboxes: expected shape [{bs}, {na}, 4], got {tuple(p.shape)}")
    if bool((p[..., 2:] < p[..., :2]).any()):
        raise ValueError("pd_bboxes: negative box sizes (x2 < x1 or y2 < y1)")
    anc = as_tensor("anc_points", anc_points, ndim=2, last_dim=2, finite=True, floating=True, device=dev)
    if anc.shape[0] != na:
        raise ValueError(f"anc_points: expected shape [{na}, 2], got {tuple(anc.shape)}")
    gb = as_tensor("gt_bboxes", gt_bboxes, ndim=3, last_dim=4, finite=True, floating=True, device=dev)
    if gb.shape[0] != bs:
        raise ValueError(f"gt_bboxes: expected batch size {bs}, got shape {tuple(gb.shape)}")
    n = gb.shape[1]
    if bool((gb[..., 2:] < gb[..., :2]).any()):
        raise ValueError("gt_bboxes: negative box sizes (x2 < x1 or y2 < y1)")
    gl = as_tensor("gt_labels", gt_labels, ndim=3, finite=True, device=dev)
    if tuple(gl.shape) != (bs, n, 1):
        raise ValueError(f"gt_labels: expected shape [{bs}, {n}, 1], got {tuple(gl.shape)}")
    if gl.numel() and bool(((gl < 0) | (gl >= num_classes) | (gl != gl.floor())).any()):
        raise ValueError(f"gt_labels: class ids must be integers in [0, {num_classes})")
    mg = as_tensor("mask_gt", mask_gt, ndim=3, finite=True, device=dev)
    if tuple(mg.shape) != (bs, n, 1):
        raise ValueError(f"mask_gt: expected shape [{bs}, {n}, 1], got {tuple(mg.shape)}")
    if int(topk) != topk or not 1 <= topk <= na:
        raise ValueError(f"topk: expected an integer in [1, {na}] (number of anchors), got {topk!r}")
    return s, p.to(dev), anc.to(dev), gl.to(dev).long()[..., 0], gb.to(dev), mg.to(dev)[..., 0] != 0


def _check_finite_sum(name: str, x: torch.Tensor) -> None:
    """``as_tensor(finite=True)``'s contract in one cheap pass: a sum is finite when every
    element is (NaN and inf propagate); only a non-finite sum (a bad element, or finite values
    whose sum overflows) pays for the exact min/max test."""
    if x.numel() and not bool(torch.isfinite(x.detach().sum())):
        lo, hi = torch.aminmax(x.detach())
        if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")


def _candidates_in_gts(anc, gt_bboxes, mask_gt, stride_val, eps=1e-9, valid=None):
    """[bs, n, A] bool: anchor centre strictly inside the (with 8.4.190's ``stride_val``
    possibly enlarged) GT: each of the four margins > eps (the reference's ``min(margins) >
    eps``, without the [bs, n, A, 4] cat)."""
    if stride_val is not None:
        cxy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2
        wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        wh = torch.where((wh < stride_val) & mask_gt[..., None], torch.full_like(wh, stride_val), wh)
        half = wh / 2
        gt_bboxes = torch.cat([cxy - half, cxy + half], -1)
    # The margins of an anchor depend on its x (or y) alone, and grid anchors share a few
    # distinct coordinates: the same comparisons on the distinct values [bs, n, U], then one
    # gather per axis (bit for bit the dense test, a fraction of its passes).
    x1, y1, x2, y2 = (c[..., None] for c in gt_bboxes.unbind(-1))  # [bs, n, 1]
    ux, ix = torch.unique(anc[:, 0], return_inverse=True)  # [Ux], [A]
    uy, iy = torch.unique(anc[:, 1], return_inverse=True)
    in_x = (ux - x1 > eps) & (x2 - ux > eps)  # [bs, n, Ux]
    in_y = (uy - y1 > eps) & (y2 - uy > eps)
    if valid is not None:  # [bs, n, 1]: `& valid` on the small table, not on [bs, n, A]
        in_x &= valid
    return in_x.index_select(-1, ix) & in_y.index_select(-1, iy)


def task_aligned_assign(pd_scores: TensorLike, pd_bboxes: TensorLike, anc_points: TensorLike, gt_labels: TensorLike,
                        gt_bboxes: TensorLike, mask_gt: TensorLike, topk: int = 10, num_classes: int = 80,
                        alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
                        version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                        strides: Sequence[float] = TAL_STRIDES
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """TaskAlignedAssigner of ultralytics 8.3.253 (``version="8.3"``, default) or 8.4.190
    (``"8.4"``: small GT sides enlarged to ``strides[1]`` for candidate selection; see
    :func:`ref_numpy.assign.task_aligned_assign`).

    The port computes CIoU, scores and metric at candidate pairs only (anchor inside a real GT;
    zero elsewhere, as the reference), selects the top k with ``topk`` plus an exact
    lower-index tie rule instead of a full stable sort, resolves conflicts on the anchors that
    have them, and normalises over the positive pairs: the same values, fewer passes."""
    checked = _check_tal_inputs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt,
                                topk, num_classes)
    stride_val = check_tal_version(version, strides)
    return _tal_core(*checked, int(topk), num_classes, alpha, beta, eps, stride_val)[0]


def _tal_core(s, p, anc, labels, gtb, valid_gt, topk, num_classes, alpha, beta, eps,
              stride_val, debug=False):
    """TAL on checked inputs: (outputs, debugging intermediates or None; see the reference)."""
    bs, na, nc = s.shape
    n = gtb.shape[1]
    dev = s.device
    dt = torch.promote_types(s.dtype, p.dtype)
    if n == 0:
        empty = torch.zeros((bs, 0, na), dtype=torch.bool, device=dev)
        return ((torch.full((bs, na), num_classes, dtype=torch.int64, device=dev),
                 torch.zeros_like(p), torch.zeros_like(s),
                 torch.zeros((bs, na), dtype=torch.bool, device=dev),
                 torch.zeros((bs, na), dtype=torch.int64, device=dev)),
                {"cand": empty, "claimed": empty, "mask_pos": empty})
    with torch.no_grad():
        gtb = gtb.to(dt)
        cand, (bi, gi, ai) = _tal_candidates(anc.to(dt), gtb, valid_gt, stride_val)
        ciou = _aligned_iou(_take(gtb, bi, gi), _take(p, bi, ai).to(dt), "ciou", "xyxy", 1e-7,
                            alpha_84=stride_val is not None).clamp(min=0)
        score = _take(s, bi, ai, _take(labels, bi, gi)).to(dt)
        sel = _tal_select(score, ciou, (bi, gi, ai), cand, labels, gtb, topk, alpha, beta, eps,
                          debug)
        target_labels, target_bboxes, fg_mask, target_gt_idx, (fb, fa), norm, dbg = sel
        target_bboxes = target_bboxes.to(p.dtype)
        # the one-hot label times the normalised metric, written at the foreground anchors only
        # (zero elsewhere: the dense scatter wrote zeros there)
        target_scores = _lazy_zeros(s.shape, s.dtype, s.device)
        target_scores[fb, fa, target_labels[fb, fa]] = norm.to(s.dtype)
    return (target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx), dbg


def _tal_candidates(anc, gtb, valid_gt, stride_val):
    """(cand [bs, n, A] bool: anchor inside a real GT, its pairs (bi, gi, ai) in C order)."""
    cand = _candidates_in_gts(anc, gtb, valid_gt, stride_val, valid=valid_gt[..., None])
    return cand, cand.nonzero(as_tuple=True)


def _take(x: torch.Tensor, *index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for one index tensor per leading dimension of a contiguous ``x``, through
    one flat index (cheaper than advanced indexing on several index tensors)."""
    if not x.is_contiguous():
        return x[index]
    flat = index[0]
    for size, idx in zip(x.shape[1:len(index)], index[1:]):
        flat = flat * size + idx
    return x.reshape(-1, *x.shape[len(index):])[flat]


def _lazy_zeros(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """``torch.zeros(shape, dtype, device)``. On the CPU, a large float32/64 tensor comes from
    calloc (NumPy's zeros): the kernel maps its pages zeroed (huge pages where enabled) when
    they are first touched, so no pass over the whole tensor is made here (torch.zeros writes
    every byte through 4 KiB page faults: about 3x slower for 43 MB, measured)."""
    if (torch.device(device).type == "cpu" and dtype in (torch.float32, torch.float64)
            and math.prod(shape) >= 1 << 20):
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        return torch.from_numpy(np.zeros(tuple(shape), dtype=np_dtype))
    return torch.zeros(shape, dtype=dtype, device=device)


def _segment_rank(flag: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """For pairs sorted by row, the number of earlier pairs of the same row whose ``flag`` is
    set (``start``: the position of each pair's row's first pair)."""
    c = torch.cumsum(flag.to(torch.int64), 0) - flag.to(torch.int64)  # exclusive prefix count
    return c - c[start]


def _tal_select(score, ciou, pairs, cand, labels, gtb, topk, alpha, beta, eps, debug=False):
    """The assignment from the candidate pairs' class scores and clamped CIoUs (``score``,
    ``ciou`` [P], dtype dt; ``pairs`` (bi, gi, ai) in C order, the True entries of ``cand``
    [bs, n, A]): top k per GT, conflicts, targets, on the pairs (the only dense passes are the
    metric and its top k). Returns (target_labels [bs, A], target_bboxes [bs, A, 4] dt,
    fg_mask, target_gt_idx, (fb, fa) the foreground anchors in C order, norm [n_fg] their
    normalised metric (dt), debugging dict or None)."""
    bi, gi, ai = pairs
    bs, n, na = cand.shape
    dev, dt = ciou.device, ciou.dtype
    m_pair = score ** alpha * ciou ** beta  # [P]
    metric = torch.zeros((bs, n, na), dtype=dt, device=dev)
    metric[bi, gi, ai] = m_pair

    # select_topk_candidates & candidates: the k largest metrics of each GT, ties to the lower
    # anchor index (what a stable sort gives). Everything above the k-th value is in; of the
    # anchors equal to it, the `room` lowest-index ones. Non-candidates have metric 0, so a
    # tied pair's rank among its row's tied anchors is a count over the pairs (k-th != 0), or
    # its anchor index minus the row's earlier non-zero pairs (k-th == 0).
    top = metric.topk(topk, dim=-1).values  # [bs, n, k]
    kth = top[..., -1]  # [bs, n]
    room = topk - (top > kth[..., None]).sum(-1)  # >= 1 unless the k-th value is NaN
    row = bi * n + gi
    kth_p, room_p = kth.reshape(-1)[row], room.reshape(-1)[row]
    tied = m_pair == kth_p
    counts = torch.bincount(row, minlength=bs * n)
    start = (torch.cumsum(counts, 0) - counts)[row]
    rank = torch.where(kth_p == 0, ai - _segment_rank(m_pair != 0, start), _segment_rank(tied, start))
    picked = (m_pair > kth_p) | (tied & (rank < room_p))
    cb, cg, ca, co = bi[picked], gi[picked], ai[picked], ciou[picked]

    # select_highest_overlaps: an anchor claimed by several GTs goes to the GT of max overlap
    # among ALL GTs (first on ties; GT 0 when every overlap there is 0)
    key = cb * na + ca
    multi = torch.bincount(key, minlength=bs * na) > 1  # [bs * A]
    keep = ~multi[key]
    all_key = bi * na + ai
    at = multi[all_key]  # candidate pairs on a conflicted anchor
    k2, o2, g2 = all_key[at], ciou[at], gi[at]
    omax = torch.zeros(bs * na, dtype=dt, device=dev).scatter_reduce_(0, k2, o2, "amax")
    first = (o2 == omax[k2]) & (o2 > 0)
    gbest = torch.full((bs * na,), n, dtype=torch.int64, device=dev).scatter_reduce_(
        0, k2[first], g2[first], "amin")
    conf = multi.nonzero()[:, 0]  # conflicted anchors, b * A + a
    conf_g = gbest[conf]
    conf_g = torch.where(conf_g == n, 0, conf_g)

    # now one GT per anchor: the positive pairs, in (b, a) order
    pk = torch.cat([key[keep], conf])
    pg = torch.cat([cg[keep], conf_g])
    po = torch.cat([co[keep], omax[conf]])
    pk, order = pk.sort()
    pg, po = pg[order], po[order]
    fb, fa = pk // na, pk % na
    fg_mask = torch.zeros((bs, na), dtype=torch.bool, device=dev)
    fg_mask[fb, fa] = True
    target_gt_idx = torch.zeros((bs, na), dtype=torch.int64, device=dev)
    target_gt_idx[fb, fa] = pg  # 0 where no GT, as argmax of an all-zero column

    target_labels = torch.gather(labels, 1, target_gt_idx).clamp(min=0)
    target_bboxes = torch.gather(gtb, 1, target_gt_idx[..., None].expand(-1, -1, 4))
    m = metric[fb, pg, fa]
    slot = fb * n + pg
    pos_metric = torch.zeros(bs * n, dtype=dt, device=dev).scatter_reduce_(0, slot, m, "amax")
    pos_overlap = torch.zeros(bs * n, dtype=dt, device=dev).scatter_reduce_(0, slot, po, "amax")
    norm = m * pos_overlap[slot] / (pos_metric[slot] + eps)
    dbg = None
    if debug:
        claimed = torch.zeros_like(cand)
        claimed[cb, cg, ca] = True
        mask_pos = torch.zeros_like(cand)
        mask_pos[fb, pg, fa] = True
        dbg = {"cand": cand, "claimed": claimed, "mask_pos": mask_pos}
    return target_labels, target_bboxes, fg_mask, target_gt_idx, (fb, fa), norm, dbg


def _tal_grids(grid_sizes, n_points: int) -> list:
    if grid_sizes is None:
        return [(1, n_points)]
    try:
        grids = [(int(ny), int(nx)) for ny, nx in grid_sizes]
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"grid_sizes: expected a list of (ny, nx), got {grid_sizes!r}") from exc
    _report.tal_level_starts(grids, n_points)
    return grids


def task_aligned_report(pd_scores: TensorLike, pd_bboxes: TensorLike, anc_points: TensorLike, gt_labels: TensorLike,
                        gt_bboxes: TensorLike, mask_gt: TensorLike, topk: int = 10, num_classes: int = 80,
                        alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
                        version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                        strides: Sequence[float] = TAL_STRIDES,
                        grid_sizes: Sequence[tuple[int, int]] | None = None) -> AssignmentReport:
    """Explain a TAL assignment GT by GT (see :func:`ref_numpy.assign.task_aligned_report`);
    the returned report equals the reference's. ``version``: "8.3" (default, ultralytics
    8.3.253) or "8.4" (ultralytics 8.4.190)."""
    s, p, anc, labels, gtb, valid_gt = _check_tal_inputs(
        pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, topk, num_classes)
    grids = _tal_grids(grid_sizes, anc.shape[0])
    stride_val = check_tal_version(version, strides)
    _, dbg = _tal_core(s, p, anc, labels, gtb, valid_gt, int(topk), num_classes, alpha, beta,
                       eps, stride_val, debug=True)
    cand = dbg["cand"]  # [bs, n, A]
    sizes = [ny * nx for ny, nx in grids]
    cand_per_level = torch.stack([c.sum(-1) for c in cand.split(sizes, dim=-1)], -1)
    settings = {"topk": int(topk), "num_classes": int(num_classes), "alpha": float(alpha),
                "beta": float(beta), "eps": float(eps), "version": version,
                "strides": [float(v) for v in strides]}
    return _report.tal_report(labels.tolist(), valid_gt.tolist(), gtb.tolist(), anc.tolist(),
                              cand_per_level.tolist(),
                              [tuple(x) for x in dbg["claimed"].nonzero().tolist()],
                              [tuple(x) for x in dbg["mask_pos"].nonzero().tolist()],
                              grids, settings)


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_assign(pred_boxes: TensorLike, targets: TensorLike, sqrt: bool = True) -> dict[str, torch.Tensor]:
    """darknet YOLOv1 assignment (see :func:`ref_numpy.assign.yolov1_assign`)."""
    pb = as_tensor("pred_boxes", pred_boxes, ndim=5, last_dim=4, finite=True, floating=True)
    bs, S, S2, B, _ = pb.shape
    if S != S2 or B < 1:
        raise ValueError(f"pred_boxes: expected shape [bs, S, S, B, 4], got {tuple(pb.shape)}")
    dev = pb.device
    t = _check_targets(targets, device=dev).to(dev)
    if t.numel() and bool((t[:, 0] >= bs).any()):
        raise ValueError(f"targets: image index >= batch size {bs}")
    dt = torch.promote_types(pb.dtype, t.dtype)
    t, pb = t.to(dt), pb.to(dt)
    nt = t.shape[0]
    img = t[:, 0].long()
    gxy = t[:, 2:4] * S
    col_row = gxy.long().clamp(max=S - 1)  # [nt, 2] (col, row)
    col, row = col_row[:, 0], col_row[:, 1]
    key = (img * S + row) * S + col
    first = torch.full((bs * S * S,), nt, dtype=torch.int64, device=dev)
    first.scatter_reduce_(0, key, torch.arange(nt, device=dev), reduce="amin")
    keep = first[key] == torch.arange(nt, device=dev)

    k = keep.nonzero(as_tuple=True)[0]
    obj_mask = torch.zeros((bs, S, S), dtype=torch.bool, device=dev)
    gt_index = torch.full((bs, S, S), -1, dtype=torch.int64, device=dev)
    target_classes = torch.full((bs, S, S), -1, dtype=torch.int64, device=dev)
    target_boxes = torch.zeros((bs, S, S, 4), dtype=dt, device=dev)
    cell = (img[k], row[k], col[k])
    obj_mask[cell] = True
    gt_index[cell] = k
    target_classes[cell] = t[k, 1].long()
    off = gxy - col_row
    target_boxes[cell] = torch.cat([off, t[:, 4:6]], 1)[k]

    truth = torch.cat([target_boxes[..., :2] / S, target_boxes[..., 2:]], -1)
    out_wh = pb[..., 2:] * pb[..., 2:] if sqrt else pb[..., 2:]
    out = torch.cat([pb[..., :2] / S, out_wh], -1)
    iou = darknet_box_iou(out, truth[..., None, :])  # [bs, S, S, B]
    rmse = ((out - truth[..., None, :]) ** 2).sum(-1).sqrt()
    by_iou = iou.amax(-1) > 0
    best = torch.where(by_iou, iou.argmax(-1), rmse.argmin(-1))  # [bs, S, S]
    responsible = (torch.arange(B, device=dev) == best[..., None]) & obj_mask[..., None]
    picked = torch.gather(iou, -1, best[..., None])[..., 0]
    best_iou = torch.where(obj_mask, picked, torch.zeros_like(picked))
    return {"obj_mask": obj_mask, "responsible": responsible, "target_boxes": target_boxes,
            "target_classes": target_classes, "best_iou": best_iou, "gt_index": gt_index,
            "dropped": ~keep}


def yolov1_grid_targets(targets: TensorLike, S: int = 7, num_classes: int = 20,
                        batch_size: int | None = None) -> torch.Tensor:
    """See :func:`ref_numpy.assign.yolov1_grid_targets`: ``[bs, S, S, 5 + C]`` per object cell
    ``(x_off, y_off, w, h, 1, one-hot)``; the first GT in target order keeps a cell."""
    t = _check_targets(targets)
    S = check_count("S", S, 1)
    nc = check_count("num_classes", num_classes, 1)
    if t.numel() and bool((t[:, 1] >= nc).any()):
        raise ValueError(f"targets: class ids (column 1) must be < num_classes = {nc}")
    bs = check_count("batch_size", batch_size, 0) if batch_size is not None else \
        int(t[:, 0].max()) + 1 if len(t) else 0
    if len(t) and int(t[:, 0].max()) >= bs:
        raise ValueError(f"targets: image index >= batch_size {bs}")
    t = t[(t[:, 4] > 0) & (t[:, 5] > 0)]
    img, cls = t[:, 0].long(), t[:, 1].long()
    gxy = t[:, 2:4] * S
    col_row = gxy.trunc().long().clamp(max=S - 1)  # [nt, 2] (col, row)
    col, row = col_row[:, 0], col_row[:, 1]
    key = (img * S + row) * S + col
    n = key.shape[0]
    order = torch.arange(n, device=t.device)
    first = torch.full((bs * S * S,), n, dtype=torch.long, device=t.device).scatter_reduce(
        0, key, order, reduce="amin")
    k = order[first[key] == order]  # the first GT of each occupied cell, in target order
    out = torch.zeros((bs, S, S, 5 + nc), dtype=t.dtype, device=t.device)
    off = gxy - col_row.to(t.dtype)
    out[img[k], row[k], col[k], :2] = off[k]
    out[img[k], row[k], col[k], 2:4] = t[k, 4:6]
    out[img[k], row[k], col[k], 4] = 1
    out[img[k], row[k], col[k], 5 + cls[k]] = 1
    return out


# ----------------------------------------------------------------------------- YOLOv3 / tutorial

def _check_pred_boxes(pred_boxes, na, grids, device):
    if not isinstance(pred_boxes, (list, tuple)) or len(pred_boxes) != len(grids):
        raise ValueError(f"pred_boxes: expected a list of {len(grids)} arrays [bs, na, ny, nx, 4]")
    out = []
    for i, (pb, (ny, nx)) in enumerate(zip(pred_boxes, grids)):
        a = as_tensor(f"pred_boxes[{i}]", pb, ndim=5, last_dim=4, finite=True, floating=True,
                      device=device)
        if tuple(a.shape[1:4]) != (na, ny, nx) or (out and a.shape[0] != out[0].shape[0]):
            raise ValueError(f"pred_boxes[{i}]: expected shape [bs, {na}, {ny}, {nx}, 4], got {tuple(a.shape)}")
        out.append(a)
    return out


def yolov3_assign(targets: TensorLike, anchors: TensorLike, grid_sizes: Sequence[tuple[int, int]],
                  pred_boxes: Sequence[TensorLike] | None = None, ignore_thresh: float = 0.5,
                  ignore_mode: Literal["pred_iou", "anchor_iou", "none"] = "pred_iou",
                  batch_size: int | None = None) -> dict[str, list]:
    """darknet YOLOv3 assignment (see :func:`ref_numpy.assign.yolov3_assign`)."""
    t = _check_targets(targets)
    dev = t.device
    a, grids = _check_anchors(anchors, grid_sizes, device=dev)
    a = a.to(dev)
    if ignore_mode not in ("pred_iou", "anchor_iou", "none"):
        raise ValueError(f"ignore_mode: expected 'pred_iou', 'anchor_iou' or 'none', got {ignore_mode!r}")
    thr = float(ignore_thresh)
    nl, na, _ = a.shape
    dt = t.dtype
    nt = t.shape[0]
    if pred_boxes is not None:
        preds = _check_pred_boxes(pred_boxes, na, grids, dev)
        bs = preds[0].shape[0]
    elif ignore_mode == "pred_iou":
        raise ValueError("pred_boxes: required with ignore_mode='pred_iou'")
    else:
        preds = None
        bs = int(batch_size) if batch_size is not None else int(t[:, 0].max()) + 1 if nt else 0
    if nt and int(t[:, 0].max()) >= bs:
        raise ValueError(f"targets: image index >= batch size {bs}")
    sizes = torch.tensor([[nx, ny] for ny, nx in grids], dtype=dt, device=dev)  # [nl, 2]
    norm_anchors = (a.to(dt) / sizes[:, None]).reshape(nl * na, 2)
    best = wh_iou(t[:, 4:6], norm_anchors).argmax(1) if nt else torch.zeros(0, dtype=torch.int64, device=dev)
    img = t[:, 0].long()
    out = {"indices": [], "tbox": [], "tcls": [], "anch": [], "gt_index": [], "ignore": []}
    for lv, (ny, nx) in enumerate(grids):
        grid = sizes[lv]
        lim = torch.tensor([nx - 1, ny - 1], device=dev)
        ti = (best // na == lv).nonzero(as_tuple=True)[0]
        ai = best[ti] % na
        gxy = t[ti, 2:4] * grid
        gij = torch.minimum(gxy.long(), lim)
        anc = a[lv].to(dt)[ai].reshape(-1, 2)
        twh = torch.log(t[ti, 4:6] * grid / anc)
        b = img[ti]
        out["indices"].append((b, ai, gij[:, 1], gij[:, 0]))
        out["tbox"].append(torch.cat([gxy - gij, twh], 1).reshape(-1, 4))
        out["tcls"].append(t[ti, 1].long())
        out["anch"].append(anc)
        out["gt_index"].append(ti)
        ignore = torch.zeros((bs, na, ny, nx), dtype=torch.bool, device=dev)
        if ignore_mode == "pred_iou" and nt:
            pb = preds[lv].to(dt)
            iou = darknet_box_iou(pb[..., None, :], t[:, 2:6])  # [bs, na, ny, nx, nt]
            same = torch.arange(bs, device=dev)[:, None] == img[None]  # [bs, nt]
            iou = torch.where(same[:, None, None, None, :], iou, torch.zeros_like(iou))
            ignore = iou.amax(-1) > thr
        elif ignore_mode == "anchor_iou" and nt:
            shape_iou = wh_iou(t[:, 4:6] * grid, a[lv].to(dt))  # [nt, na]
            cell = torch.minimum((t[:, 2:4] * grid).long(), lim)
            tt, aa = (shape_iou > thr).nonzero(as_tuple=True)
            ignore[img[tt], aa, cell[tt, 1], cell[tt, 0]] = True
        ignore[b, ai, gij[:, 1], gij[:, 0]] = False
        out["ignore"].append(ignore)
    return out


def tutorial_assign(targets: TensorLike, anchors: TensorLike, grid_sizes: Sequence[tuple[int, int]]) -> dict[str, list]:
    """The seed tutorial's every-level assignment, corrected, in row form (see
    :func:`ref_numpy.assign.tutorial_assign`)."""
    t = _check_targets(targets)
    dev = t.device
    a, grids = _check_anchors(anchors, grid_sizes, device=dev)
    a = a.to(dev)
    dt = t.dtype
    nt = t.shape[0]
    out = {"tcls": [], "tbox": [], "indices": [], "anch": [], "gt_index": []}
    for lv, (ny, nx) in enumerate(grids):
        grid = torch.tensor([nx, ny], dtype=dt, device=dev)
        gxy, gwh = t[:, 2:4] * grid, t[:, 4:6] * grid
        lvl = a[lv].to(dt)
        ai = wh_iou(gwh, lvl).argmax(1) if nt else torch.zeros(0, dtype=torch.int64, device=dev)
        gij = torch.floor(torch.minimum(gxy, grid - 1e-3)).long()
        out["tcls"].append(t[:, 1].long())
        out["tbox"].append(torch.cat([gxy - gij, gwh], 1).reshape(-1, 4))
        out["indices"].append((t[:, 0].long(), ai, gij[:, 1], gij[:, 0]))
        out["anch"].append(lvl[ai].reshape(-1, 2))
        out["gt_index"].append(torch.arange(nt, dtype=torch.int64, device=dev))
    return out


# ----------------------------------------------------------------------------- tutorial, dense (A)

def _check_pixel_targets(targets, num_classes, batch_size) -> tuple[torch.Tensor, int, int]:
    t = as_tensor("targets", targets, ndim=2, finite=True, floating=True)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6] (image, class, x1, y1, x2, y2), got {tuple(t.shape)}")
    nc = int(num_classes)
    if nc != num_classes or nc < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    img, cls = t[:, 0], t[:, 1]
    if t.numel():
        bad = torch.stack([((img < 0) | (img != img.floor())).any(),
                           ((cls < 0) | (cls != cls.floor()) | (cls >= nc)).any(),
                           (t[:, 4:6] < t[:, 2:4]).any()]).tolist()  # one sync
        messages = ("targets: image indices (column 0) must be non-negative integers",
                    f"targets: class ids (column 1) must be integers in [0, {nc})",
                    "targets: expected x2 >= x1 and y2 >= y1 (columns 2-5, xyxy pixels)")
        for is_bad, message in zip(bad, messages):
            if is_bad:
                raise ValueError(message)
    max_img = int(img.max()) if t.shape[0] else -1
    bs = int(batch_size) if batch_size is not None else max_img + 1
    if batch_size is not None and (bs != batch_size or bs < 0):
        raise ValueError(f"batch_size: expected a non-negative integer, got {batch_size!r}")
    if max_img >= bs:
        raise ValueError(f"targets: image index >= batch_size {bs}")
    return t, nc, bs


def _ratio_score(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    w, h = wh[:, None, 0], wh[:, None, 1]
    aw, ah = anchors[None, :, 0], anchors[None, :, 1]
    return (torch.minimum(w, aw) / torch.maximum(w, aw)) * (torch.minimum(h, ah) / torch.maximum(h, ah))


def _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size, *,
                    as_printed: bool) -> dict[str, list]:
    t, nc, bs = _check_pixel_targets(targets, num_classes, batch_size)
    dev, dt = t.device, t.dtype
    a, grids = _check_anchors(anchors, grid_sizes, device=dev)
    a = a.to(device=dev, dtype=dt)
    s = check_strides(strides, len(grids))
    na, nt = a.shape[1], t.shape[0]
    img, cls = t[:, 0].long(), t[:, 1].long()
    x1, y1, x2, y2 = t[:, 2:6].unbind(-1)
    wh = torch.stack([x2 - x1, y2 - y1], 1).clamp(min=1)  # [nt, 2], >= 1 px
    cxy = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2], 1)
    out = {"obj": [], "box": [], "cls": [], "indices": []}
    for (ny, nx), lvl, stride in zip(grids, a, s):
        if nt:
            score = _ratio_score(wh, lvl) if as_printed else wh_iou(wh, lvl)
            ai = score.argmax(1)  # first maximum
        else:
            ai = torch.zeros(0, dtype=torch.int64, device=dev)
        g = cxy / stride
        gi = g[:, 0].clamp(0, nx - 1e-3).floor().long()
        gj = g[:, 1].clamp(0, ny - 1e-3).floor().long()
        won = _last_writer(_slot_key(img, ai, gj, gi, na, ny, nx))
        obj = torch.zeros((bs, na, ny, nx), dtype=dt, device=dev)
        box = torch.zeros((bs, na, ny, nx, 4), dtype=dt, device=dev)
        cls_t = torch.zeros((bs, na, ny, nx, nc), dtype=dt, device=dev)
        obj[img, ai, gj, gi] = 1
        box[img[won], ai[won], gj[won], gi[won]] = t[won, 2:6]
        if as_printed:  # target[..., 5:] += one_hot
            cls_t.index_put_((img, ai, gj, gi, cls), torch.ones(nt, dtype=dt, device=dev), accumulate=True)
        else:
            cls_t[img[won], ai[won], gj[won], gi[won], cls[won]] = 1
        out["obj"].append(obj)
        out["box"].append(box)
        out["cls"].append(cls_t)
        out["indices"].append((img, ai, gj, gi))
    return out


def tutorial_assign_as_printed(targets: TensorLike, anchors: TensorLike, strides: Sequence[float],
                               grid_sizes: Sequence[tuple[int, int]], num_classes: int,
                               batch_size: int | None = None) -> dict[str, list]:
    """Section A's dense targets AS PRINTED (ratio anchor score, class one-hot added: two-hot
    on a collision); see :func:`ref_numpy.assign.tutorial_assign_as_printed`."""
    return _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size,
                           as_printed=True)


def tutorial_assign_corrected(targets: TensorLike, anchors: TensorLike, strides: Sequence[float],
                              grid_sizes: Sequence[tuple[int, int]], num_classes: int,
                              batch_size: int | None = None) -> dict[str, list]:
    """Section A's dense targets CORRECTED (shape-IoU anchor, last writer's one-hot class);
    see :func:`ref_numpy.assign.tutorial_assign_corrected`."""
    return _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size,
                           as_printed=False)

# ----------------------------------------------------------------------------- reports of v1, v3, tutorial

def _rows_report(assigner, t, a, grids, out, reasons, settings) -> AssignmentReport:
    na = a.shape[1]
    levels = []
    for (ny, nx), (b, ai, gj, gi), tbox, ti in zip(grids, out["indices"], out["tbox"], out["gt_index"]):
        levels.append(_level_rows(ti, b, ai, gj, gi, tbox, [RULE_BEST_ANCHOR] * len(ti), na, ny, nx))
    return _report.anchor_based_report(assigner, t.tolist(), grids, levels, reasons, settings)


def yolov3_assignment_report(targets: TensorLike, anchors: TensorLike, grid_sizes: Sequence[tuple[int, int]],
                             pred_boxes: Sequence[TensorLike] | None = None, ignore_thresh: float = 0.5,
                             ignore_mode: Literal["pred_iou", "anchor_iou", "none"] = "pred_iou",
                             batch_size: int | None = None) -> AssignmentReport:
    """Explain a YOLOv3 assignment GT by GT (see :func:`ref_numpy.assign.yolov3_assignment_report`)."""
    out = yolov3_assign(targets, anchors, grid_sizes, pred_boxes, ignore_thresh, ignore_mode,
                        batch_size)
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes, device=t.device)
    best_level = torch.zeros(t.shape[0], dtype=torch.int64, device=t.device)
    for lv, ti in enumerate(out["gt_index"]):
        best_level[ti] = lv
    reasons = _report.v3_level_reasons(best_level.tolist(), len(grids))
    return _rows_report("yolov3", t, a, grids, out, reasons,
                        {"ignore_thresh": float(ignore_thresh), "ignore_mode": ignore_mode})


def tutorial_assignment_report(targets: TensorLike, anchors: TensorLike,
                               grid_sizes: Sequence[tuple[int, int]]) -> AssignmentReport:
    """Explain a tutorial assignment GT by GT (see :func:`ref_numpy.assign.tutorial_assignment_report`)."""
    out = tutorial_assign(targets, anchors, grid_sizes)
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes, device=t.device)
    reasons = [[None] * len(grids) for _ in range(t.shape[0])]
    return _rows_report("tutorial", t, a, grids, out, reasons, {})


def yolov1_assignment_report(pred_boxes: TensorLike, targets: TensorLike, sqrt: bool = True) -> AssignmentReport:
    """Explain a YOLOv1 assignment GT by GT (see :func:`ref_numpy.assign.yolov1_assignment_report`)."""
    out = yolov1_assign(pred_boxes, targets, sqrt)
    pb = as_tensor("pred_boxes", pred_boxes)
    dev = pb.device
    t = _check_targets(targets, device=dev).to(dev)
    dt = torch.promote_types(pb.dtype, t.dtype)
    S = out["obj_mask"].shape[1]
    img = t[:, 0].long()
    col_row = (t[:, 2:4].to(dt) * S).long().clamp(max=S - 1)
    col, row = col_row[:, 0], col_row[:, 1]
    cell = (img, row, col)
    predictor = out["responsible"].long().argmax(-1)[cell]
    return _report.yolov1_report(t.tolist(), S, torch.stack([row, col], 1).tolist(),
                                 out["gt_index"][cell].tolist(), predictor.tolist(),
                                 out["target_boxes"][cell].tolist(), {"sqrt": bool(sqrt)})
