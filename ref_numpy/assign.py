"""Target assignment of the YOLO family (NumPy reference: the specification).

Which prediction slot learns which ground truth (GT), in five conventions, with reports:

- :func:`yolov5_build_targets`: YOLOv5 v7.0 ``ComputeLoss.build_targets`` (ratio test, 3 cells).
- :func:`task_aligned_assign`: ``TaskAlignedAssigner`` (YOLOv8/11) of ultralytics 8.3.253
  (``version="8.3"``, the default) or 8.4.190 (``"8.4"``: its small-object rule).
- :func:`yolov1_assign`: darknet ``detection_layer`` (centre cell, responsible predictor by IoU).
- :func:`yolov3_assign`: darknet ``yolo_layer`` (best anchor over all levels, ignore mask).
- :func:`tutorial_assign`: the seed tutorial's variant (best anchor on every level), corrected,
  as YOLOv5-style rows; its dense targets in pixels as the write-up prints them,
  :func:`tutorial_assign_as_printed`, and as it meant them, :func:`tutorial_assign_corrected`
  (``shared/reference/seed_systems.md`` section A; the two differ in the anchor score and the
  class row of a collision).

Each has a report (a debugging aid) that explains its assignment GT by GT in ONE schema,
:class:`~ref_numpy.shared.report.AssignmentReport` (documented field by field there): per GT
its positives (level, anchor, cell, target, won), the slots it lost, why it has none; the slots
two GTs claimed (collisions) and the GTs left without positive:
:func:`yolov5_assignment_report`, :func:`task_aligned_report`, :func:`yolov1_assignment_report`,
:func:`yolov3_assignment_report`, :func:`tutorial_assignment_report`. The array work (rows,
who wins each slot) is done here; the plain-Python assembly is shared with the port
(:mod:`ref_numpy.shared.report`).

Targets of the anchor-based assigners are YOLOv5 rows ``(image, class, cx, cy, w, h)`` with the
box normalised to [0, 1]; anchors are ``(nl, na, 2)`` in grid units of their level (pixels /
stride); grid sizes are ``(ny, nx)`` per level. Cell indices are ``(gj, gi) = (row, column)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array
from ref_numpy.boxes import _aligned_iou, darknet_box_iou, wh_iou
from ref_numpy.shared import report as _report
from ref_numpy.shared.checks import check_count, check_positive, check_strides
from ref_numpy.shared.checks import check_tal_version
from ref_numpy.shared.constants import TAL_STRIDES, ULTRALYTICS_DEFAULT_VERSION
from ref_numpy.shared.report import (  # noqa: F401 (re-exported: the schema and its constants)
    RULE_BEST_ANCHOR, TAL_REASONS, V1_REASONS, V3_REASONS, V5_OFFSET_NAMES, V5_REASONS,
    AssignmentReport)

# YOLOv5's neighbour offsets (in units of g): the centre cell, then j (x-1), k (y-1), l (x+1), m (y+1).
# Per-level (b, a, gj, gi) index arrays, as YOLOv5's build_targets returns them.
_LevelIndices = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_V5_OFFSETS = np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float64)


# ----------------------------------------------------------------------------- validation

def _check_targets(targets, *, check_position: bool = True) -> np.ndarray:
    """``targets`` as a float [nt, 6] array of valid rows (image, class, cx, cy, w, h)."""
    t = as_array("targets", targets, ndim=2, finite=True, floating=True)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6] (image, class, cx, cy, w, h), got {t.shape}")
    img, cls, cxy, wh = t[:, 0], t[:, 1], t[:, 2:4], t[:, 4:6]
    if np.any(img < 0) or np.any(img != np.floor(img)):
        raise ValueError("targets: image indices (column 0) must be non-negative integers")
    if np.any(cls < 0) or np.any(cls != np.floor(cls)):
        raise ValueError("targets: class ids (column 1) must be non-negative integers")
    if np.any(wh < 0):
        raise ValueError("targets: negative box sizes (columns 4, 5)")
    if np.any(wh > 1):
        raise ValueError("targets: box sides (columns 4, 5) larger than the image (> 1)")
    if check_position and (np.any(cxy < 0) or np.any(cxy > 1)):
        raise ValueError("targets: box centres (columns 2, 3) outside the image [0, 1]")
    return t


def _check_anchors(anchors, grid_sizes) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``anchors`` [nl, na, 2] positive finite; ``grid_sizes`` nl pairs of positive ints."""
    a = as_array("anchors", anchors, ndim=3, last_dim=2, finite=True, floating=True)
    if not np.all(a > 0):
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

def _v5_level_rows(t: np.ndarray, anchors: np.ndarray, ny: int, nx: int, anchor_t: float, g: float):
    """One level of YOLOv5 build_targets. Returns per written row: target index, anchor, offset
    block, gxy, gwh, unclamped (gi, gj) — in YOLOv5's order (offset block, anchor, target)."""
    grid = np.array([nx, ny], dtype=t.dtype)
    gxy_all = t[:, 2:4] * grid  # [nt, 2]
    gwh_all = t[:, 4:6] * grid
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = gwh_all[None] / anchors[:, None]  # [na, nt, 2]
        match = np.maximum(r, 1 / r).max(2) < anchor_t  # [na, nt]
    a_idx, t_idx = np.nonzero(match)  # anchor-major, as t.repeat(na) then t[j]
    gxy = gxy_all[t_idx]
    gxi = grid - gxy
    jk = (gxy % 1 < g) & (gxy > 1)  # [n, 2]: x-1 and y-1 neighbours
    lm = (gxi % 1 < g) & (gxi > 1)  # [n, 2]: x+1 and y+1 neighbours
    use = np.stack([np.ones(len(t_idx), bool), jk[:, 0], jk[:, 1], lm[:, 0], lm[:, 1]])  # [5, n]
    block, row = np.nonzero(use)  # block-major, as t.repeat((5, 1, 1))[j]
    offsets = (_V5_OFFSETS * g).astype(t.dtype)[block]
    gxy_r = gxy[row]
    gij = np.trunc(gxy_r - offsets).astype(np.int64)  # torch .long() truncates toward zero
    return t_idx[row], a_idx[row], block, gxy_r, gwh_all[t_idx[row]], gij


def _v5_rows(t, anchors, grids, anchor_t, g):
    return [_v5_level_rows(t, anchors[i].astype(t.dtype), ny, nx, anchor_t, g)
            for i, (ny, nx) in enumerate(grids)]


def yolov5_build_targets(targets: ArrayLike, anchors: ArrayLike, grid_sizes: Sequence[tuple[int, int]],
                         anchor_t: float = 4.0, g: float = 0.5
                         ) -> tuple[list[np.ndarray], list[np.ndarray], list[_LevelIndices], list[np.ndarray]]:
    """YOLOv5 target assignment: which (image, anchor, cell) learns which GT, per level.

    Args:
        targets (ndarray[nt, 6]): rows ``(image, class, cx, cy, w, h)``, box normalised to [0, 1].
        anchors (ndarray[nl, na, 2]): anchor (w, h) in grid units of each level (pixels / stride).
        grid_sizes (list of (ny, nx)): grid size of each level.
        anchor_t (float): ratio threshold (hyp ``anchor_t``).
        g (float): neighbour-cell bias.

    Returns:
        (tcls, tbox, indices, anch), each a list with one entry per level:
        ``tcls[i]`` int64 [n]; ``tbox[i]`` [n, 4] = ``(gxy - gij, gwh)`` in grid units, with
        gij clamped to the grid (YOLOv5 clamps ``gi``/``gj`` in place, and they are views of
        ``gij``), so offsets lie in [-0.5, 1.5] and equal 1 at ``cx == 1``; ``indices[i]`` =
        ``(b, a, gj, gi)`` int64 [n]; ``anch[i]`` [n, 2] the matched anchors.

    Convention: ultralytics/yolov5 v7.0 ``ComputeLoss.build_targets``, row order included: a
    target matches every anchor with ``max(r, 1/r) < anchor_t`` for both sides (``r = gwh /
    anchor``); each match is written at its cell (block 0), then at the x-1 neighbour when
    ``gx % 1 < g and gx > 1`` (block j), y-1 (k), x+1 when ``(nx - gx) % 1 < g and nx - gx > 1``
    (l), y+1 (m); rows are ordered by block, then anchor, then target. All comparisons strict.
    Duplicate ``(b, a, gj, gi)`` slots are kept; a loss writing them in order keeps the last.
    Invariant: every row's anchor passes the ratio test and its cell is within one cell of
    ``floor(gxy)`` (clamped); ``(gi, gj) + tbox[:, :2]`` gives back the GT centre in grid units.
    Errors: ValueError for malformed targets, centres outside [0, 1], sides < 0 or > 1,
    non-integer or negative image/class ids, anchors not [nl, na, 2] or not matching grid_sizes.
    """
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes)
    anchor_t = check_positive("anchor_t", anchor_t)
    g = float(g)
    if not 0 <= g <= 1:
        raise ValueError(f"g: expected a bias in [0, 1], got {g!r}")
    tcls, tbox, indices, anch = [], [], [], []
    for (ny, nx), (ti, ai, _, gxy, gwh, gij), lvl in zip(grids, _v5_rows(t, a, grids, anchor_t, g), a):
        b = t[ti, 0].astype(np.int64)
        gij = np.clip(gij, 0, np.array([nx - 1, ny - 1]))  # YOLOv5 clamps gij in place: tbox sees it
        indices.append((b, ai.astype(np.int64), gij[:, 1], gij[:, 0]))
        tbox.append(np.concatenate([gxy - gij.astype(gxy.dtype), gwh], axis=1).reshape(-1, 4))
        anch.append(lvl.astype(t.dtype)[ai].reshape(-1, 2))
        tcls.append(t[ti, 1].astype(np.int64))
    return tcls, tbox, indices, anch


def _v5_no_anchor_reason(t: np.ndarray, anchors: np.ndarray, grids, anchor_t: float) -> np.ndarray:
    """Reason code per (level, target) why a target has no anchor: 1 too small (every anchor fails
    only on a side too small), 2 too large (only on a side too large), 4 aspect ratio (every
    anchor fails on both: one side too large AND the other too small, e.g. a 288 x 3 px box),
    3 mixed; 0 where some anchor matches. [nl, nt] int64."""
    codes = []
    for lvl, (ny, nx) in zip(anchors, grids):
        gwh = t[:, 4:6] * np.array([nx, ny], dtype=t.dtype)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = gwh[None] / lvl.astype(t.dtype)[:, None]  # [na, nt, 2]
            big = r.max(2) >= anchor_t
            small = (1 / r).max(2) >= anchor_t
        fail = big | small  # [na, nt]
        none = fail.all(0)
        code = np.where((small & ~big).all(0), 1, np.where((big & ~small).all(0), 2,
                                                           np.where((big & small).all(0), 4, 3)))
        codes.append(np.where(none, code, 0))
    return np.stack(codes).reshape(len(grids), len(t)).astype(np.int64)


def _slot_key(b, a, gj, gi, na: int, ny: int, nx: int) -> np.ndarray:
    """One integer per written slot ``(b, a, gj, gi)`` of a level, ordered as the slots."""
    return ((b * na + a) * ny + gj) * nx + gi


def _last_writer(key: np.ndarray) -> np.ndarray:
    """bool [n]: row is the last one written to its slot key (the write that wins)."""
    last = np.zeros(len(key), bool)
    if len(key):
        _, first_rev = np.unique(key[::-1], return_index=True)  # reverse, first occurrence, map back
        last[len(key) - 1 - first_rev] = True
    return last


def _collisions(key: np.ndarray, ti: np.ndarray) -> list:
    """Slots written by two or more DIFFERENT GTs: a list of row lists (rows in write order),
    in slot-key order."""
    if not len(key):
        return []
    order = np.argsort(key, kind="stable")
    k_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
    groups = np.split(order, starts[1:])
    return [rows.tolist() for rows in groups if len(np.unique(ti[rows])) > 1]


def _level_rows(ti, b, a, gj, gi, target, rule, na, ny, nx) -> dict:
    """One level's rows as the plain lists :func:`ref_numpy.shared.report.anchor_based_report`
    takes (``won`` and ``collisions`` computed here, on arrays)."""
    key = _slot_key(b, a, gj, gi, na, ny, nx)
    return {"ti": ti.tolist(), "a": a.tolist(), "gj": gj.tolist(), "gi": gi.tolist(),
            "target": target.tolist(), "won": _last_writer(key).tolist(), "rule": rule,
            "collisions": _collisions(key, ti)}


def yolov5_assignment_report(targets: ArrayLike, anchors: ArrayLike, grid_sizes: Sequence[tuple[int, int]],
                             anchor_t: float = 4.0, g: float = 0.5) -> AssignmentReport:
    """Explain a :func:`yolov5_build_targets` assignment GT by GT (a debugging aid).

    Args: as :func:`yolov5_build_targets`, except that centres outside the image are accepted
    and reported (``"outside the grid"``) instead of raising; they take no part in the rows.

    Returns:
        AssignmentReport (``assigner="yolov5"``; fields: :mod:`ref_numpy.shared.report`):
        one Positive per output row, ``row`` = its index in that level's outputs, ``rule`` its
        neighbour block ("centre", "x-1", "y-1", "x+1", "y+1"), ``target`` its ``tbox``,
        ``won`` False when a later row writes the same slot ``(b, a, gj, gi)``; collisions are
        the slots written by two or more different GTs, won by the last writer (YOLOv5's
        ``tobj[b, a, gj, gi] = iou`` keeps the last). Level reasons: "outside the grid",
        "too small" (smaller than anchor / anchor_t on a side for every anchor; zero sizes
        included), "too large" (larger than anchor * anchor_t on a side for every anchor),
        "aspect ratio" (every anchor fails on both sides at once: one too large, the other too
        small), "no anchor within anchor_t" (each anchor fails, not all the same way).
        ``settings = {"anchor_t", "g"}``.

    Convention: the rows are those of :func:`yolov5_build_targets` (YOLOv5 v7.0).
    """
    t = _check_targets(targets, check_position=False)
    a, grids = _check_anchors(anchors, grid_sizes)
    anchor_t = check_positive("anchor_t", anchor_t)
    g = float(g)
    outside = np.any((t[:, 2:4] < 0) | (t[:, 2:4] > 1), axis=1)
    kept = np.flatnonzero(~outside)
    codes = _v5_no_anchor_reason(t, a, grids, anchor_t)
    na = a.shape[1]
    levels = []
    for (ny, nx), (ti, ai, block, gxy, gwh, gij) in zip(grids, _v5_rows(t[kept], a, grids, anchor_t, g)):
        ti = kept[ti]
        b = t[ti, 0].astype(np.int64)
        gij = np.clip(gij, 0, np.array([nx - 1, ny - 1]))
        tbox = np.concatenate([gxy - gij.astype(gxy.dtype), gwh], axis=1).reshape(-1, 4)
        rule = [V5_OFFSET_NAMES[k] for k in block.tolist()]
        levels.append(_level_rows(ti, b, ai, gij[:, 1], gij[:, 0], tbox, rule, na, ny, nx))
    reasons = _report.v5_level_reasons(codes.tolist(), outside.tolist())
    return _report.anchor_based_report("yolov5", t.tolist(), grids, levels, reasons,
                                       {"anchor_t": anchor_t, "g": g})


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 TAL


def _check_tal_inputs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, topk,
                      num_classes):
    s = as_array("pd_scores", pd_scores, ndim=3, finite=True, floating=True)
    bs, na, nc = s.shape
    if nc != num_classes:
        raise ValueError(f"pd_scores: expected {num_classes} classes (num_classes), got {nc}")
    p = as_array("pd_bboxes", pd_bboxes, ndim=3, last_dim=4, finite=True, floating=True)
    if p.shape[:2] != (bs, na):
        raise ValueError(f"pd_bboxes: expected shape [{bs}, {na}, 4], got {p.shape}")
    if np.any(p[..., 2:] < p[..., :2]):
        raise ValueError("pd_bboxes: negative box sizes (x2 < x1 or y2 < y1)")
    anc = as_array("anc_points", anc_points, ndim=2, last_dim=2, finite=True, floating=True)
    if anc.shape[0] != na:
        raise ValueError(f"anc_points: expected shape [{na}, 2], got {anc.shape}")
    gb = as_array("gt_bboxes", gt_bboxes, ndim=3, last_dim=4, finite=True, floating=True)
    if gb.shape[0] != bs:
        raise ValueError(f"gt_bboxes: expected batch size {bs}, got shape {gb.shape}")
    n = gb.shape[1]
    if np.any(gb[..., 2:] < gb[..., :2]):
        raise ValueError("gt_bboxes: negative box sizes (x2 < x1 or y2 < y1)")
    gl = as_array("gt_labels", gt_labels, ndim=3, finite=True)
    if gl.shape != (bs, n, 1):
        raise ValueError(f"gt_labels: expected shape [{bs}, {n}, 1], got {gl.shape}")
    if np.any(gl < 0) or np.any(gl >= num_classes) or np.any(gl != np.floor(gl)):
        raise ValueError(f"gt_labels: class ids must be integers in [0, {num_classes})")
    mg = as_array("mask_gt", mask_gt, ndim=3, finite=True)
    if mg.shape != (bs, n, 1):
        raise ValueError(f"mask_gt: expected shape [{bs}, {n}, 1], got {mg.shape}")
    if int(topk) != topk or not 1 <= topk <= na:
        raise ValueError(f"topk: expected an integer in [1, {na}] (number of anchors), got {topk!r}")
    return s, p, anc, gl.astype(np.int64)[..., 0], gb, mg[..., 0] != 0


def _candidates_in_gts(anc, gt_bboxes, mask_gt, stride_val, eps=1e-9):
    """[bs, n, A] bool: anchor centre strictly inside the GT (every margin > eps). With the
    8.4.190 rule (``stride_val`` not None), sides of valid GTs shorter than ``stride_val``
    become ``stride_val`` about the centre (every GT makes the xyxy -> xywh -> xyxy trip)."""
    if stride_val is not None:
        cxy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2  # xyxy2xywh, then back, for all GTs
        wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        small = (wh < stride_val) & mask_gt[..., None]
        wh = np.where(small, np.asarray(stride_val, dtype=wh.dtype), wh)
        half = wh / 2
        gt_bboxes = np.concatenate([cxy - half, cxy + half], axis=-1)
    lt, rb = gt_bboxes[..., None, :2], gt_bboxes[..., None, 2:]  # [bs, n, 1, 2]
    deltas = np.concatenate([anc - lt, rb - anc], axis=-1)  # [bs, n, A, 4]
    return deltas.min(-1) > eps


def _topk_mask(metric, topk, mask_gt):
    """ultralytics 8.3 / 8.4 select_topk_candidates: [bs, n, A] 0/1. Ties go to the lower anchor index
    (stable sort; the releases' torch.topk leaves the order of equal metrics unspecified). For
    padded GTs every index becomes 0, counted topk times, and counts > 1 are zeroed."""
    idx = np.argsort(-metric, axis=-1, kind="stable")[..., :topk]  # [bs, n, k]
    idx = np.where(mask_gt[..., None], idx, 0)
    count = np.zeros(metric.shape, dtype=np.int64)
    b, g, _ = np.indices(idx.shape)
    np.add.at(count, (b, g, idx), 1)
    count[count > 1] = 0
    return count.astype(metric.dtype)


def task_aligned_assign(pd_scores: ArrayLike, pd_bboxes: ArrayLike, anc_points: ArrayLike, gt_labels: ArrayLike,
                        gt_bboxes: ArrayLike, mask_gt: ArrayLike, topk: int = 10, num_classes: int = 80,
                        alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
                        version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                        strides: Sequence[float] = TAL_STRIDES
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Task-aligned assignment (TAL) of anchor points to GT boxes, as YOLOv8/YOLO11 train.

    Args:
        pd_scores (ndarray[bs, A, nc]): predicted class scores after the sigmoid.
        pd_bboxes (ndarray[bs, A, 4]): predicted boxes, xyxy in pixels.
        anc_points (ndarray[A, 2]): anchor centres (x, y) in pixels.
        gt_labels (ndarray[bs, n, 1]): integer class ids in [0, num_classes) (padding included).
        gt_bboxes (ndarray[bs, n, 4]): GT boxes, xyxy in pixels (padding rows are zeros).
        mask_gt (ndarray[bs, n, 1]): 1 for real GTs, 0 for padding.
        topk, num_classes, alpha, beta, eps: as ``TaskAlignedAssigner`` (the v8 loss passes
            topk=10, alpha=0.5, beta=6.0; the class defaults differ).
        version (str): '8.3' (default: ultralytics 8.3.253) or '8.4' (ultralytics 8.4.190);
            'yolov5' is refused (YOLOv5 v7.0 has no TAL: :func:`yolov5_build_targets`).
            '8.4': for candidate selection only, sides of real GTs shorter than
            ``stride_val = strides[1]`` (``strides[0]`` for one level; 16 px at 8/16/32)
            become ``stride_val`` about the centre (``TaskAlignedAssigner(stride=...)``
            ``select_candidates_in_gts``), and CIoU's alpha sums in 8.4.190's order.
        strides (sequence of float): the model's strides, default (8, 16, 32) as
            ``TaskAlignedAssigner``'s; only '8.4' reads them.

    Returns:
        (target_labels int64 [bs, A], target_bboxes [bs, A, 4], target_scores [bs, A, nc],
        fg_mask bool [bs, A], target_gt_idx int64 [bs, A]).
        Background anchors carry the label and box of GT 0 of their image (as both releases);
        with n == 0 the labels are ``num_classes`` and everything else zero.

    Convention: ultralytics 8.3.253 / 8.4.190 ``utils/tal.py``: candidates are anchors strictly
    inside a GT (each margin > 1e-9); ``overlaps = CIoU(gt, pred).clamp(0)`` on candidates of
    real GTs, 0 elsewhere, by ``boxes.aligned_box_iou(kind="ciou")``'s kernel (``bbox_iou(
    xywh=False, CIoU=True)`` of the release op for op, eps 1e-7; ``test_assign.py`` checks it
    bit for bit);
    ``metric = s^alpha * overlaps^beta`` with s the score of the GT's class; per GT the topk
    anchors by metric (ties: lower index, see :func:`_topk_mask`) that are candidates are positive;
    an anchor positive for several GTs goes to the GT of maximum overlap among ALL GTs (first on
    ties); target scores are the one-hot label times
    ``max over GTs of metric * max_overlap_gt / (max_metric_gt + eps)``.
    Quirks of both releases kept: the max-overlap rule looks at ALL GTs, so a GT can own anchors
    outside its top k (more than topk positives), and when every claiming GT has zero overlap
    with the anchor the argmax falls back to GT 0, even a padding row or one not containing the
    anchor (its target score is then 0).
    Invariant: every positive anchor lies strictly inside a real GT of its image (enlarged with
    the 8.4 rule), and inside its own GT unless its target score is 0; anchors inside exactly
    one real GT are at most topk per GT. Errors: ValueError on shapes, labels out of
    range, x2 < x1 (GTs or predictions), topk outside [1, A].
    """
    checked = _check_tal_inputs(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt,
                                topk, num_classes)
    stride_val = check_tal_version(version, strides)
    return _tal_core(*checked, int(topk), num_classes, alpha, beta, eps, stride_val)[0]


def _tal_core(s, p, anc, labels, gtb, valid_gt, topk, num_classes, alpha, beta, eps,
              stride_val):
    """TAL on checked inputs: (outputs, debugging intermediates: ``cand`` [bs, n, A],
    ``claimed`` [bs, n, A] (topk and candidate, before conflicts), ``mask_pos`` after)."""
    bs, na, nc = s.shape
    n = gtb.shape[1]
    dt = np.result_type(s.dtype, p.dtype)
    if n == 0:
        empty = np.zeros((bs, 0, na), bool)
        return ((np.full((bs, na), num_classes, dtype=np.int64), np.zeros_like(p),
                 np.zeros_like(s), np.zeros((bs, na), bool), np.zeros((bs, na), np.int64)),
                {"cand": empty, "claimed": empty, "mask_pos": empty})
    gtb = gtb.astype(dt)
    mask_in = _candidates_in_gts(anc.astype(dt), gtb, valid_gt, stride_val)  # [bs, n, A]
    cand = mask_in & valid_gt[..., None]
    ciou = _aligned_iou(gtb[:, :, None, :], p[:, None, :, :], "ciou", "xyxy", 1e-7,
                        alpha_84=stride_val is not None)  # [bs, n, A]
    overlaps = np.where(cand, np.clip(ciou, 0, None), 0).astype(dt)
    cls_scores = np.take_along_axis(np.swapaxes(s, 1, 2), labels[..., None], axis=1)  # [bs, n, A]
    bbox_scores = np.where(cand, cls_scores, 0).astype(dt)
    metric = bbox_scores ** dt.type(alpha) * overlaps ** dt.type(beta)
    mask_topk = _topk_mask(metric, topk, valid_gt)
    mask_pos = mask_topk * mask_in * valid_gt[..., None]  # [bs, n, A]
    claimed = mask_pos > 0

    # select_highest_overlaps: anchors claimed by several GTs go to the GT of max overlap
    multi = mask_pos.sum(1) > 1  # [bs, A]
    best = overlaps.argmax(1)  # [bs, A], over all GTs
    is_best = (np.arange(n)[None, :, None] == best[:, None, :]).astype(mask_pos.dtype)
    mask_pos = np.where(multi[:, None, :], is_best, mask_pos)
    fg_mask = mask_pos.sum(1) > 0
    target_gt_idx = mask_pos.argmax(1)  # [bs, A]

    bi = np.arange(bs)[:, None]
    target_labels = np.clip(labels[bi, target_gt_idx], 0, None)
    target_bboxes = gtb[bi, target_gt_idx].astype(p.dtype)
    one_hot = (np.arange(nc) == target_labels[..., None]) & fg_mask[..., None]
    metric = metric * mask_pos
    pos_metric = metric.max(-1, keepdims=True)  # [bs, n, 1]
    pos_overlap = (overlaps * mask_pos).max(-1, keepdims=True)
    norm = (metric * pos_overlap / (pos_metric + dt.type(eps))).max(1)[..., None]  # [bs, A, 1]
    target_scores = (one_hot * norm).astype(s.dtype)
    return ((target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx.astype(np.int64)),
            {"cand": cand, "claimed": claimed, "mask_pos": mask_pos > 0})


def _tal_grids(grid_sizes, n_points: int) -> list:
    """``grid_sizes`` of the anchor points as (ny, nx) pairs (default one flat level [1, A])."""
    if grid_sizes is None:
        return [(1, n_points)]
    try:
        grids = [(int(ny), int(nx)) for ny, nx in grid_sizes]
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"grid_sizes: expected a list of (ny, nx), got {grid_sizes!r}") from exc
    _report.tal_level_starts(grids, n_points)  # raises unless they hold exactly A points
    return grids


def task_aligned_report(pd_scores: ArrayLike, pd_bboxes: ArrayLike, anc_points: ArrayLike, gt_labels: ArrayLike,
                        gt_bboxes: ArrayLike, mask_gt: ArrayLike, topk: int = 10, num_classes: int = 80,
                        alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
                        version: Literal["8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                        strides: Sequence[float] = TAL_STRIDES,
                        grid_sizes: Sequence[tuple[int, int]] | None = None) -> AssignmentReport:
    """Explain a :func:`task_aligned_assign` assignment GT by GT (a debugging aid).

    Args: as :func:`task_aligned_assign`, plus
        grid_sizes (list of (ny, nx) or None): the levels of the anchor points, laid out as
            ``coder.make_anchors`` does (levels concatenated, row-major); they must hold A
            points. None: one level, a [1, A] row of points.

    Returns:
        AssignmentReport (``assigner="tal"``, ``box_format="xyxy pixels"``; fields:
        :mod:`ref_numpy.shared.report`): one GTRecord per (image, GT slot), padding included
        (``valid`` False); ``candidates`` = anchor points strictly inside the box; positives
        = the anchor points it finally owns (``row`` = the point's index on the A axis,
        ``anchor`` 0, ``rule`` "top k" or "max overlap" when owned without being claimed: the
        max-overlap rule looks at ALL GTs), ``target`` = ``(l, t, r, b)`` pixels from the
        point to the GT's sides; ``lost`` = claimed points (its top k that are candidates)
        given to another GT (``to_gt``, the GT of max overlap); collisions = points claimed by
        several GTs (``writers`` ascending, ``winner`` the final owner). Reasons: "padding",
        "no anchor inside the box", "none of its top k anchors is inside the box", "all its
        anchors went to other GTs" (per level: the same test on that level's points).
        ``settings = {"topk", "num_classes", "alpha", "beta", "eps", "version", "strides"}``.

    Convention: the assignment of :func:`task_aligned_assign` (ultralytics 8.3.253 or 8.4.190
    by ``version``, default '8.3').
    """
    s, p, anc, labels, gtb, valid_gt = _check_tal_inputs(
        pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, topk, num_classes)
    grids = _tal_grids(grid_sizes, anc.shape[0])
    stride_val = check_tal_version(version, strides)
    _, dbg = _tal_core(s, p, anc, labels, gtb, valid_gt, int(topk), num_classes, alpha, beta,
                       eps, stride_val)
    starts = np.cumsum([0] + [ny * nx for ny, nx in grids])
    cand = dbg["cand"]  # [bs, n, A]
    cand_per_level = np.stack([cand[..., a:b].sum(-1) for a, b in zip(starts[:-1], starts[1:])], -1)
    settings = {"topk": int(topk), "num_classes": int(num_classes), "alpha": float(alpha),
                "beta": float(beta), "eps": float(eps), "version": version,
                "strides": [float(v) for v in strides]}
    return _report.tal_report(labels.tolist(), valid_gt.tolist(), gtb.tolist(), anc.tolist(),
                              cand_per_level.reshape(*cand.shape[:2], len(grids)).tolist(),
                              [tuple(x) for x in np.argwhere(dbg["claimed"]).tolist()],
                              [tuple(x) for x in np.argwhere(dbg["mask_pos"]).tolist()],
                              grids, settings)


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_assign(pred_boxes: ArrayLike, targets: ArrayLike, sqrt: bool = True) -> dict[str, np.ndarray]:
    """YOLOv1 assignment: the cell holding each GT centre, and its responsible predictor.

    Args:
        pred_boxes (ndarray[bs, S, S, B, 4]): the layer's box outputs per cell (row, column)
            and predictor: ``(x, y)`` offsets in the cell, then ``(sqrt w, sqrt h)`` relative to
            the image (or ``(w, h)`` with ``sqrt=False``).
        targets (ndarray[nt, 6]): rows ``(image, class, cx, cy, w, h)`` normalised; image
            indices must be < bs.
        sqrt (bool): predictions carry square roots of w, h (darknet ``sqrt=1``).

    Returns:
        dict of arrays: ``obj_mask`` bool [bs, S, S]; ``responsible`` bool [bs, S, S, B];
        ``target_boxes`` [bs, S, S, 4] ``(x_off, y_off, w, h)`` (zeros where no object);
        ``target_classes`` int64 [bs, S, S] (-1 where none); ``best_iou`` [bs, S, S] IoU of the
        responsible predictor (0 where none; the rescore target); debugging: ``gt_index``
        int64 [bs, S, S] (-1 where none) and ``dropped`` bool [nt] (GT that lost its cell).

    Convention: darknet ``detection_layer.c`` (yolov1 cfg) with ``data.c fill_truth_region``:
    cell ``(int)(x * S)`` (clamped to S - 1 here; darknet would overflow at x = 1); one GT per
    cell, the FIRST in target order keeps it. Responsible: the first predictor of maximum IoU
    (centres as cell offsets / S, sizes squared back) if any IoU > 0, else the first of minimum
    RMSE over (x, y, w, h) (darknet also caps RMSE at 20 and would then crash; no cap here).
    IoU as darknet ``box_iou`` without eps; a zero union gives IoU 0.
    """
    pb = as_array("pred_boxes", pred_boxes, ndim=5, last_dim=4, finite=True, floating=True)
    bs, S, S2, B, _ = pb.shape
    if S != S2 or B < 1:
        raise ValueError(f"pred_boxes: expected shape [bs, S, S, B, 4], got {pb.shape}")
    t = _check_targets(targets)
    if np.any(t[:, 0] >= bs):
        raise ValueError(f"targets: image index >= batch size {bs}")
    dt = np.result_type(pb.dtype, t.dtype)
    t, pb = t.astype(dt), pb.astype(dt)
    nt = len(t)
    img = t[:, 0].astype(np.int64)
    gxy = t[:, 2:4] * dt.type(S)
    col_row = np.minimum(np.trunc(gxy).astype(np.int64), S - 1)  # [nt, 2] (col, row)
    col, row = col_row[:, 0], col_row[:, 1]
    key = (img * S + row) * S + col
    _, first = np.unique(key, return_index=True)  # first target of each occupied cell
    keep = np.zeros(nt, bool)
    keep[first] = True

    obj_mask = np.zeros((bs, S, S), bool)
    gt_index = np.full((bs, S, S), -1, np.int64)
    target_classes = np.full((bs, S, S), -1, np.int64)
    target_boxes = np.zeros((bs, S, S, 4), dt)
    k = np.flatnonzero(keep)
    obj_mask[img[k], row[k], col[k]] = True
    gt_index[img[k], row[k], col[k]] = k
    target_classes[img[k], row[k], col[k]] = t[k, 1].astype(np.int64)
    off = gxy - col_row.astype(dt)  # offsets in the cell (int -> float first, as torch)
    target_boxes[img[k], row[k], col[k]] = np.concatenate([off, t[:, 4:6]], axis=1)[k]

    # responsible predictor of every cell (computed everywhere, used where obj_mask)
    truth = target_boxes.copy()
    truth[..., :2] = truth[..., :2] / dt.type(S)
    out = pb.copy()
    out[..., :2] = out[..., :2] / dt.type(S)
    if sqrt:
        out[..., 2:] = out[..., 2:] * out[..., 2:]
    iou = darknet_box_iou(out, truth[..., None, :])  # [bs, S, S, B]
    rmse = np.sqrt(((out - truth[..., None, :]) ** 2).sum(-1))
    by_iou = iou.max(-1) > 0
    best = np.where(by_iou, iou.argmax(-1), rmse.argmin(-1))  # [bs, S, S]
    responsible = (np.arange(B) == best[..., None]) & obj_mask[..., None]
    best_iou = np.where(obj_mask, np.take_along_axis(iou, best[..., None], -1)[..., 0], 0).astype(dt)
    return {"obj_mask": obj_mask, "responsible": responsible, "target_boxes": target_boxes,
            "target_classes": target_classes, "best_iou": best_iou, "gt_index": gt_index,
            "dropped": ~keep}


def yolov1_grid_targets(targets: ArrayLike, S: int = 7, num_classes: int = 20,
                        batch_size: int | None = None) -> np.ndarray:
    """Dense YOLOv1 grid targets: the layout :func:`ref_numpy.loss.yolov1_loss` and the section C
    grid losses (``yolo_loss_mse`` ...) take.

    Args:
        targets (ndarray[nt, 6]): rows ``(image, class, cx, cy, w, h)`` normalised to [0, 1].
        S (int): grid size (S x S cells over the image).
        num_classes (int): C; class ids must be < C.
        batch_size (int or None): images in the batch (default: max image index + 1).

    Returns:
        ndarray[bs, S, S, 5 + C] (dtype of ``targets``): per object cell (row, column)
        ``(x_off, y_off, w, h, 1, one-hot)``, ``x_off = cx * S - col`` in [0, 1]; zeros elsewhere.

    Convention: the cell rule and the one-GT-per-cell rule of :func:`yolov1_assign` (darknet:
    cell ``trunc(c * S)`` clamped to S - 1, the FIRST GT in target order keeps a cell); GTs of
    zero width or height are skipped (a v1 target needs w, h > 0).
    Raises: ValueError for bad rows (see :func:`yolov1_assign`), a class id >= C, an image
    index >= batch_size, or a bad S / num_classes / batch_size.
    """
    t = _check_targets(targets)
    S = check_count("S", S, 1)
    nc = check_count("num_classes", num_classes, 1)
    if np.any(t[:, 1] >= nc):
        raise ValueError(f"targets: class ids (column 1) must be < num_classes = {nc}")
    bs = check_count("batch_size", batch_size, 0) if batch_size is not None else \
        int(t[:, 0].max()) + 1 if len(t) else 0
    if len(t) and t[:, 0].max() >= bs:
        raise ValueError(f"targets: image index >= batch_size {bs}")
    t = t[(t[:, 4] > 0) & (t[:, 5] > 0)]
    dt = t.dtype
    img, cls = t[:, 0].astype(np.int64), t[:, 1].astype(np.int64)
    gxy = t[:, 2:4] * dt.type(S)
    col_row = np.minimum(np.trunc(gxy).astype(np.int64), S - 1)  # [nt, 2] (col, row)
    col, row = col_row[:, 0], col_row[:, 1]
    _, first = np.unique((img * S + row) * S + col, return_index=True)  # first GT of each cell
    k = np.sort(first)
    out = np.zeros((bs, S, S, 5 + nc), dt)
    off = gxy - col_row.astype(dt)
    out[img[k], row[k], col[k], :2] = off[k]
    out[img[k], row[k], col[k], 2:4] = t[k, 4:6]
    out[img[k], row[k], col[k], 4] = 1
    out[img[k], row[k], col[k], 5 + cls[k]] = 1
    return out


# ----------------------------------------------------------------------------- YOLOv3 / tutorial

def _check_pred_boxes(pred_boxes, na, grids):
    if not isinstance(pred_boxes, (list, tuple)) or len(pred_boxes) != len(grids):
        raise ValueError(f"pred_boxes: expected a list of {len(grids)} arrays [bs, na, ny, nx, 4]")
    out = []
    for i, (pb, (ny, nx)) in enumerate(zip(pred_boxes, grids)):
        a = as_array(f"pred_boxes[{i}]", pb, ndim=5, last_dim=4, finite=True, floating=True)
        if a.shape[1:4] != (na, ny, nx) or (out and a.shape[0] != out[0].shape[0]):
            raise ValueError(f"pred_boxes[{i}]: expected shape [bs, {na}, {ny}, {nx}, 4], got {a.shape}")
        out.append(a)
    return out


def yolov3_assign(targets: ArrayLike, anchors: ArrayLike, grid_sizes: Sequence[tuple[int, int]],
                  pred_boxes: Sequence[ArrayLike] | None = None, ignore_thresh: float = 0.5,
                  ignore_mode: Literal["pred_iou", "anchor_iou", "none"] = "pred_iou",
                  batch_size: int | None = None) -> dict[str, list]:
    """YOLOv3 (darknet) assignment: each GT to its best anchor over ALL levels, plus ignore masks.

    Args:
        targets (ndarray[nt, 6]): rows ``(image, class, cx, cy, w, h)`` normalised.
        anchors (ndarray[nl, na, 2]): anchors in grid units of their level.
        grid_sizes (list of (ny, nx)).
        pred_boxes (list of ndarray[bs, na, ny, nx, 4] or None): decoded predictions, cxcywh
            normalised to the image, needed for ``ignore_mode="pred_iou"``.
        ignore_thresh (float): darknet ``ignore_thresh``.
        ignore_mode: ``"pred_iou"`` (darknet: a prediction whose best IoU with any GT of its
            image exceeds the threshold), ``"anchor_iou"`` (a common PyTorch-port variant: at
            each GT's cell on every level, anchors whose shape IoU with the GT exceeds the
            threshold), or ``"none"``.
        batch_size (int or None): batch size of the ignore masks when ``pred_boxes`` is None
            (default: max image index + 1).

    Returns:
        dict of per-level lists: ``indices`` ((b, a, gj, gi) int64), ``tbox`` [n, 4] darknet
        targets ``(gx - gi, gy - gj, log(gw / aw), log(gh / ah))`` (grid units), ``tcls`` int64
        [n], ``anch`` [n, 2], ``gt_index`` int64 [n] (debugging: the target row), ``ignore``
        bool [bs, na, ny, nx] (never True at a positive slot).

    Convention: darknet ``yolo_layer.c``: best anchor = first argmax of shape IoU with all
    nl*na anchors in image-normalised units (anchor / grid size); used only on its level; cell
    ``(int)(g * n)`` (clamped to n - 1 here). Rows in target order; duplicate slots are kept
    (the last write wins). IoU for ignore as darknet ``box_iou`` (no eps).
    """
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes)
    if ignore_mode not in ("pred_iou", "anchor_iou", "none"):
        raise ValueError(f"ignore_mode: expected 'pred_iou', 'anchor_iou' or 'none', got {ignore_mode!r}")
    thr = float(ignore_thresh)
    nl, na, _ = a.shape
    dt = t.dtype
    if pred_boxes is not None:
        preds = _check_pred_boxes(pred_boxes, na, grids)
        bs = preds[0].shape[0]
    elif ignore_mode == "pred_iou":
        raise ValueError("pred_boxes: required with ignore_mode='pred_iou'")
    else:
        preds = None
        bs = int(batch_size) if batch_size is not None else int(t[:, 0].max()) + 1 if len(t) else 0
    if len(t) and t[:, 0].max() >= bs:
        raise ValueError(f"targets: image index >= batch size {bs}")
    sizes = np.array([[nx, ny] for ny, nx in grids], dtype=dt)  # [nl, 2]
    norm_anchors = (a.astype(dt) / sizes[:, None]).reshape(nl * na, 2)
    best = wh_iou(t[:, 4:6], norm_anchors).argmax(1) if len(t) else np.zeros(0, np.int64)
    out = {"indices": [], "tbox": [], "tcls": [], "anch": [], "gt_index": [], "ignore": []}
    for lv, (ny, nx) in enumerate(grids):
        grid = sizes[lv]
        ti = np.flatnonzero(best // na == lv)
        ai = (best[ti] % na).astype(np.int64)
        gxy = t[ti, 2:4] * grid
        gij = np.minimum(np.trunc(gxy).astype(np.int64), np.array([nx - 1, ny - 1]))
        anc = a[lv].astype(dt)[ai].reshape(-1, 2)
        with np.errstate(divide="ignore"):
            twh = np.log(t[ti, 4:6] * grid / anc)
        b = t[ti, 0].astype(np.int64)
        out["indices"].append((b, ai, gij[:, 1], gij[:, 0]))
        out["tbox"].append(np.concatenate([gxy - gij.astype(gxy.dtype), twh], axis=1).reshape(-1, 4))
        out["tcls"].append(t[ti, 1].astype(np.int64))
        out["anch"].append(anc)
        out["gt_index"].append(ti.astype(np.int64))
        ignore = np.zeros((bs, na, ny, nx), bool)
        if ignore_mode == "pred_iou" and len(t):
            pb = preds[lv].astype(dt)  # [bs, na, ny, nx, 4]
            iou = darknet_box_iou(pb[..., None, :], t[:, 2:6])  # [bs, na, ny, nx, nt]
            same = np.arange(bs)[:, None] == t[:, 0].astype(np.int64)[None]  # [bs, nt]
            iou = np.where(same[:, None, None, None, :], iou, 0)
            ignore = iou.max(-1) > thr
        elif ignore_mode == "anchor_iou" and len(t):
            shape_iou = wh_iou(t[:, 4:6] * grid, a[lv].astype(dt))  # [nt, na]
            cell = np.minimum(np.trunc(t[:, 2:4] * grid).astype(np.int64), np.array([nx - 1, ny - 1]))
            tt, aa = np.nonzero(shape_iou > thr)
            ignore[t[tt, 0].astype(np.int64), aa, cell[tt, 1], cell[tt, 0]] = True
        ignore[b, ai, gij[:, 1], gij[:, 0]] = False
        out["ignore"].append(ignore)
    return out


def tutorial_assign(targets: ArrayLike, anchors: ArrayLike, grid_sizes: Sequence[tuple[int, int]]) -> dict[str, list]:
    """The seed tutorial's assignment: each GT positive on EVERY level, at its best anchor there.

    Args:
        targets (ndarray[nt, 6]): rows ``(image, class, cx, cy, w, h)`` normalised.
        anchors (ndarray[nl, na, 2]): anchors in grid units of their level.
        grid_sizes (list of (ny, nx)).

    Returns:
        dict of per-level lists: ``tcls`` int64 [nt], ``tbox`` [nt, 4] ``(gxy - gij, gwh)`` in
        grid units, ``indices`` ((b, a, gj, gi) int64 [nt]), ``anch`` [nt, 2], ``gt_index``
        int64 [nt] (debugging: the target row; every level lists every target in order).

    Convention: "Implementing YOLO from Scratch in PyTorch", CORRECTED (the rule of
    :func:`tutorial_assign_corrected`, in row form; ``shared/reference/seed_systems.md``
    section A): per level the first argmax of the shape IoU (grid units) over that level's
    anchors, where the write-up prints a ``min/max * min/max`` ratio score
    (:func:`tutorial_assign_as_printed`); cell ``floor(min(g * n, n - 1e-3))``; ``tbox`` uses
    the unclamped centre; rows carry one class each, so a collision cannot make a two-hot
    class target (the consumer's last write wins, as :func:`ref_numpy.loss.yolo_scratch_pytorch_loss`).
    Invariant: exactly one row per GT per level.
    """
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes)
    dt = t.dtype
    out = {"tcls": [], "tbox": [], "indices": [], "anch": [], "gt_index": []}
    for lv, (ny, nx) in enumerate(grids):
        grid = np.array([nx, ny], dtype=dt)
        gxy, gwh = t[:, 2:4] * grid, t[:, 4:6] * grid
        lvl = a[lv].astype(dt)
        ai = wh_iou(gwh, lvl).argmax(1).astype(np.int64) if len(t) else np.zeros(0, np.int64)
        gij = np.floor(np.minimum(gxy, grid - dt.type(1e-3))).astype(np.int64)
        out["tcls"].append(t[:, 1].astype(np.int64))
        out["tbox"].append(np.concatenate([gxy - gij.astype(gxy.dtype), gwh], axis=1).reshape(-1, 4))
        out["indices"].append((t[:, 0].astype(np.int64), ai, gij[:, 1], gij[:, 0]))
        out["anch"].append(lvl[ai].reshape(-1, 2))
        out["gt_index"].append(np.arange(len(t), dtype=np.int64))
    return out


# ----------------------------------------------------------------------------- tutorial, dense (A)

def _check_pixel_targets(targets, num_classes: int, batch_size: int | None) -> tuple[np.ndarray, int, int]:
    """``targets`` [nt, 6] rows (image, class, x1, y1, x2, y2) in pixels; returns (t, nc, bs)."""
    t = as_array("targets", targets, ndim=2, finite=True, floating=True)
    if t.shape[1] != 6:
        raise ValueError(f"targets: expected shape [nt, 6] (image, class, x1, y1, x2, y2), got {t.shape}")
    nc = int(num_classes)
    if nc != num_classes or nc < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    img, cls = t[:, 0], t[:, 1]
    if np.any(img < 0) or np.any(img != np.floor(img)):
        raise ValueError("targets: image indices (column 0) must be non-negative integers")
    if np.any(cls < 0) or np.any(cls != np.floor(cls)) or np.any(cls >= nc):
        raise ValueError(f"targets: class ids (column 1) must be integers in [0, {nc})")
    if np.any(t[:, 4:6] < t[:, 2:4]):
        raise ValueError("targets: expected x2 >= x1 and y2 >= y1 (columns 2-5, xyxy pixels)")
    bs = int(batch_size) if batch_size is not None else int(img.max()) + 1 if len(t) else 0
    if batch_size is not None and (bs != batch_size or bs < 0):
        raise ValueError(f"batch_size: expected a non-negative integer, got {batch_size!r}")
    if len(t) and img.max() >= bs:
        raise ValueError(f"targets: image index >= batch_size {bs}")
    return t, nc, bs


def _ratio_score(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """[nt, na]: ``min(w, aw)/max(w, aw) * min(h, ah)/max(h, ah)``, the write-up's anchor score."""
    w, h = wh[:, None, 0], wh[:, None, 1]  # [nt, 1]
    aw, ah = anchors[None, :, 0], anchors[None, :, 1]  # [1, na]
    return (np.minimum(w, aw) / np.maximum(w, aw)) * (np.minimum(h, ah) / np.maximum(h, ah))


def _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size, *,
                    as_printed: bool) -> dict[str, list]:
    """The dense target writer of Section A; ``as_printed`` picks the anchor score and the
    class write (see the two public functions)."""
    t, nc, bs = _check_pixel_targets(targets, num_classes, batch_size)
    a, grids = _check_anchors(anchors, grid_sizes)
    s = check_strides(strides, len(grids))
    dt = t.dtype
    na = a.shape[1]
    img, cls = t[:, 0].astype(np.int64), t[:, 1].astype(np.int64)
    x1, y1, x2, y2 = np.moveaxis(t[:, 2:6], -1, 0)
    wh = np.maximum(np.stack([x2 - x1, y2 - y1], 1), dt.type(1))  # [nt, 2], clamped to >= 1 px
    cxy = np.stack([(x1 + x2) / 2, (y1 + y2) / 2], 1)  # [nt, 2]
    out = {"obj": [], "box": [], "cls": [], "indices": []}
    for (ny, nx), lvl, stride in zip(grids, a.astype(dt), s):
        if len(t):
            score = _ratio_score(wh, lvl) if as_printed else wh_iou(wh, lvl)
            ai = score.argmax(1).astype(np.int64)  # first maximum
        else:
            ai = np.zeros(0, np.int64)
        g = cxy / dt.type(stride)
        gi = np.floor(np.clip(g[:, 0], 0, dt.type(nx - 1e-3))).astype(np.int64)
        gj = np.floor(np.clip(g[:, 1], 0, dt.type(ny - 1e-3))).astype(np.int64)
        won = _last_writer(_slot_key(img, ai, gj, gi, na, ny, nx))  # the write that sticks
        obj = np.zeros((bs, na, ny, nx), dt)
        box = np.zeros((bs, na, ny, nx, 4), dt)
        cls_t = np.zeros((bs, na, ny, nx, nc), dt)
        obj[img, ai, gj, gi] = 1
        box[img[won], ai[won], gj[won], gi[won]] = t[won, 2:6]
        if as_printed:  # target[..., 5:] += one_hot: every GT of the slot adds its class
            np.add.at(cls_t, (img, ai, gj, gi, cls), 1)
        else:  # the last writer's one-hot, as its box
            cls_t[img[won], ai[won], gj[won], gi[won], cls[won]] = 1
        out["obj"].append(obj)
        out["box"].append(box)
        out["cls"].append(cls_t)
        out["indices"].append((img, ai, gj, gi))
    return out


def tutorial_assign_as_printed(targets: ArrayLike, anchors: ArrayLike, strides: Sequence[float],
                               grid_sizes: Sequence[tuple[int, int]], num_classes: int,
                               batch_size: int | None = None) -> dict[str, list]:
    """Section A's dense targets AS PRINTED in "Implementing YOLO from Scratch in PyTorch".

    Args:
        targets (ndarray[nt, 6]): rows ``(image, class, x1, y1, x2, y2)``, the box in pixels of
            the input image (xyxy, ``x2 >= x1``, ``y2 >= y1``); centres may lie outside.
        anchors (ndarray[nl, na, 2]): anchor w, h in PIXELS (the write-up's YOLOv5 defaults).
        strides (sequence of nl floats): pixels per cell of each level (8, 16, 32).
        grid_sizes (list of (ny, nx)): the grid of each level (``S = img_size / stride``).
        num_classes (int): C.
        batch_size (int or None): images in the batch (default: max image index + 1).

    Returns:
        dict of per-level lists (level order of ``anchors``): ``obj`` [bs, na, ny, nx] (1 at a
        written slot, else 0), ``box`` [bs, na, ny, nx, 4] (xyxy pixels of the GT that wrote the
        slot last, 0 elsewhere), ``cls`` [bs, na, ny, nx, C] (see the convention), ``indices``
        ``(b, a, gj, gi)`` int64 [nt] (debugging: every GT's slot on that level, in target order).
        Float outputs have the dtype of ``targets``.

    Convention (``shared/reference/seed_systems.md``, section A, "Assignment (per level, as
    printed)"): on EVERY level each GT goes to the anchor of that level with the highest
    ``min(w, aw)/max(w, aw) * min(h, ah)/max(h, ah)`` (the first maximum; NOT the shape IoU),
    w, h clamped to >= 1 px first; cell ``floor(clamp(c / stride, 0, S - 1e-3))`` per axis;
    GTs written in target order: ``obj = 1``, ``box`` = the GT's xyxy (the last writer wins),
    and the class one-hot ADDED to ``cls``: two GTs of different classes in one slot give a
    two-hot row, two of the same class a 2 in that column. That class row is the flaw this
    variant keeps so that the write-up can be reproduced; :func:`tutorial_assign_corrected`
    is what it meant.

    Raises:
        ValueError: targets not [nt, 6] finite, image or class not an integer in range,
            x2 < x1 or y2 < y1; anchors not positive [nl, na, 2]; strides or grid_sizes not nl
            positive values; num_classes or batch_size not an integer.
    """
    return _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size,
                           as_printed=True)


def tutorial_assign_corrected(targets: ArrayLike, anchors: ArrayLike, strides: Sequence[float],
                              grid_sizes: Sequence[tuple[int, int]], num_classes: int,
                              batch_size: int | None = None) -> dict[str, list]:
    """Section A's dense targets, CORRECTED: what :func:`tutorial_assign_as_printed` meant.

    Args, Returns: as :func:`tutorial_assign_as_printed`.

    Corrected (``shared/reference/seed_systems.md``, section A, "Assignment"), two changes:
    (1) the anchor score is the shape IoU :func:`ref_numpy.boxes.wh_iou` of (w, h) and the
    anchor (the write-up's ``min/max * min/max`` ratio product is not an IoU and can pick
    another anchor); (2) ``cls`` is the one-hot of the same GT as ``box``, the last writer of
    the slot (never two-hot, never 2). Kept as printed: every level, w, h clamped to >= 1 px,
    the cell rule, ``obj = 1``, the box of the last writer.
    Invariant: the slots are those of :func:`tutorial_assign` (its row form, normalised
    inputs, no 1 px clamp) for GTs of at least 1 px a side; every ``cls`` row of a written
    slot sums to 1.

    Raises: as :func:`tutorial_assign_as_printed`.
    """
    return _tutorial_dense(targets, anchors, strides, grid_sizes, num_classes, batch_size,
                           as_printed=False)

# ----------------------------------------------------------------------------- reports of v1, v3, tutorial

def _rows_report(assigner: str, t: np.ndarray, a: np.ndarray, grids, out: dict, reasons,
                 settings: dict) -> AssignmentReport:
    """Report of an assigner whose outputs carry per-level ``indices``, ``tbox`` and ``gt_index``
    (yolov3, tutorial): one Positive per row, "best anchor" rule, last write wins."""
    na = a.shape[1]
    levels = []
    for (ny, nx), (b, ai, gj, gi), tbox, ti in zip(grids, out["indices"], out["tbox"], out["gt_index"]):
        levels.append(_level_rows(ti, b, ai, gj, gi, tbox, [RULE_BEST_ANCHOR] * len(ti), na, ny, nx))
    return _report.anchor_based_report(assigner, t.tolist(), grids, levels, reasons, settings)


def yolov3_assignment_report(targets: ArrayLike, anchors: ArrayLike, grid_sizes: Sequence[tuple[int, int]],
                             pred_boxes: Sequence[ArrayLike] | None = None, ignore_thresh: float = 0.5,
                             ignore_mode: Literal["pred_iou", "anchor_iou", "none"] = "pred_iou",
                             batch_size: int | None = None) -> AssignmentReport:
    """Explain a :func:`yolov3_assign` assignment GT by GT (a debugging aid).

    Args: as :func:`yolov3_assign`.

    Returns:
        AssignmentReport (``assigner="yolov3"``; fields: :mod:`ref_numpy.shared.report`): one
        Positive per output row (``row`` = its index in that level's outputs, ``rule`` "best
        anchor", ``target`` darknet's ``tbox``), so exactly one per GT, on the level of its
        best anchor over all levels; the other levels' reason is "best anchor on another
        level"; collisions are slots written by two or more different GTs (the last write
        wins). The ignore masks are not part of the report.
        ``settings = {"ignore_thresh", "ignore_mode"}``.
    """
    out = yolov3_assign(targets, anchors, grid_sizes, pred_boxes, ignore_thresh, ignore_mode,
                        batch_size)
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes)
    best_level = np.zeros(len(t), np.int64)
    for lv, ti in enumerate(out["gt_index"]):
        best_level[ti] = lv
    reasons = _report.v3_level_reasons(best_level.tolist(), len(grids))
    return _rows_report("yolov3", t, a, grids, out, reasons,
                        {"ignore_thresh": float(ignore_thresh), "ignore_mode": ignore_mode})


def tutorial_assignment_report(targets: ArrayLike, anchors: ArrayLike,
                               grid_sizes: Sequence[tuple[int, int]]) -> AssignmentReport:
    """Explain a :func:`tutorial_assign` assignment GT by GT (a debugging aid).

    Args: as :func:`tutorial_assign`.

    Returns:
        AssignmentReport (``assigner="tutorial"``; fields: :mod:`ref_numpy.shared.report`):
        one Positive per GT per level (``row`` = the GT's row, ``rule`` "best anchor" of that
        level, ``target`` the ``tbox``); every GT is positive, so ``unassigned`` is empty and
        every reason None; collisions are slots written by two or more different GTs (the last
        write wins). ``settings = {}``.
    """
    out = tutorial_assign(targets, anchors, grid_sizes)
    t = _check_targets(targets)
    a, grids = _check_anchors(anchors, grid_sizes)
    reasons = [[None] * len(grids) for _ in range(len(t))]
    return _rows_report("tutorial", t, a, grids, out, reasons, {})


def yolov1_assignment_report(pred_boxes: ArrayLike, targets: ArrayLike, sqrt: bool = True) -> AssignmentReport:
    """Explain a :func:`yolov1_assign` assignment GT by GT (a debugging aid).

    Args: as :func:`yolov1_assign`.

    Returns:
        AssignmentReport (``assigner="yolov1"``, one level of grid [S, S]; fields:
        :mod:`ref_numpy.shared.report`): a GT that keeps its cell has one Positive (``row`` =
        ``row * S + col``, ``anchor`` = the responsible predictor, ``target`` the written
        ``(x_off, y_off, w, h)``, ``rule`` "responsible predictor"); a later GT of the same
        cell has none, its cell in ``lost`` (``to_gt`` = the first GT) and the reason "cell
        taken by an earlier GT"; each such cell is a collision won by its first GT.
        ``settings = {"sqrt"}``.
    """
    out = yolov1_assign(pred_boxes, targets, sqrt)
    pb = as_array("pred_boxes", pred_boxes)
    t = _check_targets(targets)
    dt = np.result_type(pb.dtype, t.dtype)
    S = out["obj_mask"].shape[1]
    img = t[:, 0].astype(np.int64)
    col_row = np.minimum(np.trunc(t[:, 2:4].astype(dt) * dt.type(S)).astype(np.int64), S - 1)
    col, row = col_row[:, 0], col_row[:, 1]
    cell = (img, row, col)
    predictor = out["responsible"].argmax(-1)[cell]
    return _report.yolov1_report(t.tolist(), S, np.stack([row, col], 1).tolist(),
                                 out["gt_index"][cell].tolist(), predictor.tolist(),
                                 out["target_boxes"][cell].tolist(), {"sqrt": bool(sqrt)})
