"""Detection metrics: COCO mAP (bit-equal to pycocotools), PASCAL VOC AP, Ultralytics AP.

Three families, each reproducing one trusted evaluator (pycocotools 2.0.x ``cocoeval.py``,
py-faster-rcnn ``voc_eval.py``, yolov5 v7.0 ``utils/metrics.py``):

- COCO: :func:`coco_evaluate` returns a :class:`COCOEvalResult` whose ``stats``, ``precision``,
  ``recall`` and ``scores`` equal pycocotools 2.0.x ``COCOeval`` (``iouType='bbox'``,
  evaluate + accumulate + summarize) to the last bit. :class:`DetectionEvaluator` is the
  incremental (per batch, mergeable) front end of the same computation.
- VOC: :func:`voc_ap`, :func:`voc_evaluate` reproduce ``voc_eval.py`` of py-faster-rcnn.
- Ultralytics: :func:`compute_ap`, :func:`ap_per_class`, :func:`match_predictions`,
  :func:`confusion_matrix` reproduce yolov5 v7.0 / ultralytics 8.3 (and the 8.4 end points);
  :func:`ultralytics_evaluate` composes them into Ultralytics' whole validation protocol.

The COCO parsing, parameter checks, constants, summary and result container are shared with the
port and live in :mod:`ref_numpy.shared.coco` (re-exported here).

Where the algorithm is sequential (COCO's greedy matching) the loop runs over the detection rank
inside an (image, category) group, for all groups, area ranges and IoU thresholds at once; the
docstrings say why this equals pycocotools' per-image scan.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy.boxes import _coco_iou, box_iou, coco_box_iou, voc_box_iou
from ref_numpy._validate import as_array, check_boxes
from ref_numpy.shared.checks import check_same_length
from ref_numpy.shared.coco import (COCO_AREA_LBL, COCO_AREA_RNG, COCO_IOU_THRS,  # noqa: F401
                                   COCO_MAX_DETS, COCO_REC_THRS, MAX_IOU_THR, COCOEvalResult,
                                   check_coco_params, index_of, parse_coco, per_class_ap,
                                   summarize)

# ============================================================================ COCO: matching

def _sort_detections(dt_group, dt_score, max_det):
    """Order detections by (group, -score, input order) and keep the first ``max_det`` per group.

    Returns (order [N'] into the detection arrays, rank [N'] within the group): the per-group
    ``np.argsort(-score, kind='mergesort')[:maxDet]`` of pycocotools.
    """
    order = np.lexsort((-dt_score, dt_group))
    g = dt_group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    keep = rank < max_det
    return order[keep], rank[keep]


def _ragged_arange(counts):
    """``concatenate([arange(c) for c in counts])``."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _last_best(mask, iou):
    """Index of the largest ``iou`` over the last axis among ``mask``; the LAST one on ties;
    -1 where ``mask`` is empty. ``mask [..., G]``, ``iou`` broadcastable to it."""
    vals = np.where(mask, iou, -np.inf)[..., ::-1]
    g = mask.shape[-1]
    idx = g - 1 - np.argmax(vals, axis=-1)
    return np.where(mask.any(-1), idx, -1)


def _greedy_match(iou_fn, det_tab, gt_tab, crowd, gt_ig, thr):
    """pycocotools' greedy matching for a batch of (image, category) groups.

    Args:
        iou_fn: ``iou_fn(det_idx [n], gt_tab [n, G]) -> [n, G]`` IoU of one detection per group
            against that group's GTs (padding columns give any value; they are masked).
        det_tab (ndarray[B, C] int): detection indices of each group in score order, -1 padded;
            groups sorted by their count, descending (so the groups alive at rank r are a prefix).
        gt_tab (ndarray[B, G] int): GT indices of each group in input order, -1 padded.
        crowd (ndarray[B, G] bool), gt_ig (ndarray[B, A, G] bool): crowd flags, and ignore flags
            per area range (crowd, or area outside the range).
        thr (ndarray[T]): ``min(t, 1 - 1e-10)`` per IoU threshold.

    Returns:
        ndarray[B, C, A, T] int: the matched GT column (-1 when unmatched).

    Sequential in the detection rank (a match removes the GT for later detections), vectorised
    over groups, area ranges and thresholds. Equivalence with pycocotools' scan over GTs sorted
    non-ignored first: the scan keeps the last GT whose IoU is >= the running best (started at
    ``thr``); it stops at the first ignored GT once a non-ignored one matched. So the match is the
    available non-ignored GT of largest IoU >= thr, the last in input order on ties; if there is
    none, the same among available ignored GTs. A GT is available if unmatched at this threshold
    or crowd (crowds absorb any number of detections).
    """
    b, c = det_tab.shape
    a, t, g = gt_ig.shape[1], len(thr), gt_tab.shape[1]
    valid = gt_tab >= 0
    matched = np.zeros((b, a, t, g), dtype=bool)
    out = np.full((b, c, a, t), -1, dtype=np.int64)
    alive = (det_tab >= 0).sum(0)  # groups with more than r detections, a prefix
    for r in range(c):
        n = int(alive[r])
        iou = iou_fn(det_tab[:n, r], gt_tab[:n])[:, None, None, :]                # [n, 1, 1, G]
        avail = (~matched[:n] | crowd[:n, None, None, :]) & valid[:n, None, None, :]
        ok = avail & (iou >= thr[None, None, :, None])                             # [n, A, T, G]
        ig = gt_ig[:n, :, None, :]
        m = _last_best(ok & ~ig, iou)
        m = np.where(m >= 0, m, _last_best(ok & ig, iou))                         # [n, A, T]
        hit = np.nonzero(m >= 0)
        matched[(*hit, m[hit])] = True
        out[:n, r] = m
    return out


def _evaluate(data, iou_thrs, area_rng, max_dets):
    """pycocotools ``evaluate``: detection matches and ignore flags per area range and threshold.

    Returns dict with ``order`` (kept detections, sorted by (category, image, rank)), ``rank``,
    ``dt_match [A, T, N]`` bool, ``dt_ignore [A, T, N]`` bool, ``gt_ignore [A, G]`` bool.
    """
    n_img = len(data["img_ids"])
    gt_group = data["gt_cat"] * n_img + data["gt_img"]
    dt_group = data["dt_cat"] * n_img + data["dt_img"]
    order, rank = _sort_detections(dt_group, data["dt_score"], max_dets[-1])
    lo, hi = area_rng[:, 0], area_rng[:, 1]
    gt_ig = data["gt_crowd"][None, :] | (data["gt_area"][None, :] < lo[:, None]) | (
        data["gt_area"][None, :] > hi[:, None])                                      # [A, G]
    a_n, t_n, n = len(area_rng), len(iou_thrs), len(order)
    match_gt = np.full((a_n, t_n, n), -1, dtype=np.int32)  # matched GT index, -1 if none

    # GTs grouped: gt_order lists GT indices by group, input order within a group.
    gt_order = np.argsort(gt_group, kind="stable")
    groups, g_start, g_count = np.unique(gt_group[gt_order], return_index=True, return_counts=True)
    d_group = dt_group[order]
    slot = index_of(d_group, groups)  # the GT group of each kept detection, -1 if none
    thr = np.minimum(iou_thrs, MAX_IOU_THR)

    # Detections that reach the lowest threshold against some GT of their group are the only ones
    # that can match (the others never change any state): keep them, in (group, rank) order.
    has_gt = np.flatnonzero(slot >= 0)
    cnt = g_count[slot[has_gt]]
    pair_d = np.repeat(has_gt, cnt)
    pair_g = gt_order[np.repeat(g_start[slot[has_gt]], cnt) + _ragged_arange(cnt)]
    pair_iou = coco_box_iou(data["dt_box"][order[pair_d]][:, None, :],
                            data["gt_box"][pair_g][:, None, :], data["gt_crowd"][pair_g][:, None])[:, 0, 0]
    best = np.full(n, -np.inf)
    np.maximum.at(best, pair_d, pair_iou)
    cand = np.flatnonzero(best >= thr.min())

    if len(cand):
        c_slot = slot[cand]
        c_groups, c_start, c_count = np.unique(c_slot, return_index=True, return_counts=True)
        # Buckets of groups by GT count (powers of two) bound the padding.
        bucket = np.ceil(np.log2(g_count[c_groups])).astype(np.int64)
        for bk in np.unique(bucket):
            sel = np.flatnonzero(bucket == bk)
            sel = sel[np.argsort(-c_count[sel], kind="stable")]  # most detections first
            gsel = c_groups[sel]
            gpad = int(g_count[gsel].max())
            cpad = int(c_count[sel].max())
            col = np.arange(gpad)
            gt_tab = np.where(col < g_count[gsel][:, None],
                              gt_order[np.minimum(g_start[gsel][:, None] + col,
                                                  len(gt_order) - 1)], -1)        # [B, G]
            row = np.arange(cpad)
            det_tab = np.where(row < c_count[sel][:, None],
                               cand[np.minimum(c_start[sel][:, None] + row, len(cand) - 1)], -1)
            safe = np.maximum(gt_tab, 0)
            crowd = data["gt_crowd"][safe] & (gt_tab >= 0)
            ig_tab = np.moveaxis(gt_ig[:, safe], 0, 1)                               # [B, A, G]

            def iou_fn(d, gtab, _crowd=crowd):
                # boxes.coco_box_iou's element-wise kernel (the boxes were checked when parsed;
                # no device synchronisation inside the greedy loop)
                dbox = data["dt_box"][order[d]][:, None, :]
                return _coco_iou(dbox, data["gt_box"][np.maximum(gtab, 0)], _crowd[: len(d)])

            m = _greedy_match(iou_fn, det_tab, gt_tab, crowd, ig_tab, thr)         # [B, C, A, T]
            rows, cols = np.nonzero(det_tab >= 0)
            mcol = m[rows, cols]                                                     # [K, A, T]
            gidx = np.where(mcol >= 0, np.take_along_axis(
                gt_tab[rows][:, None, :], np.maximum(mcol, 0).reshape(len(rows), -1)[:, None, :],
                axis=2).reshape(mcol.shape), -1)
            match_gt[:, :, det_tab[rows, cols]] = np.moveaxis(gidx, 0, -1)

    matched = match_gt >= 0
    if gt_ig.shape[1]:
        a_idx = np.arange(a_n)[:, None, None]
        gt_ig_of_match = matched & gt_ig[a_idx, np.maximum(match_gt, 0)]
    else:
        gt_ig_of_match = np.zeros_like(matched)
    d_area = data["dt_area"][order]
    d_out = (d_area[None, :] < lo[:, None]) | (d_area[None, :] > hi[:, None])      # [A, N]
    dt_ignore = gt_ig_of_match | (~matched & d_out[:, None, :])
    # Final order: (category, image, rank), which is the order of the sorted groups.
    return dict(order=order, rank=rank, dt_match=matched, dt_ignore=dt_ignore, gt_ignore=gt_ig)


# ============================================================================ COCO: accumulate

def _accumulate(data, ev, iou_thrs, max_dets):
    """pycocotools ``accumulate``: precision [T, R, K, A, M], recall [T, K, A, M], scores.

    Per category the detections of all images are sorted by -score with a stable sort over
    (image order, rank): the ``np.argsort(-concat(scores), kind='mergesort')`` of pycocotools.
    A category with no non-ignored GT keeps -1 (excluded from the means).
    """
    t_n, r_n, k_n = len(iou_thrs), len(COCO_REC_THRS), len(data["cat_ids"])
    a_n, m_n = ev["gt_ignore"].shape[0], len(max_dets)
    precision = -np.ones((t_n, r_n, k_n, a_n, m_n))
    recall = -np.ones((t_n, k_n, a_n, m_n))
    scores = -np.ones((t_n, r_n, k_n, a_n, m_n))
    order, rank = ev["order"], ev["rank"]
    cat, score = data["dt_cat"][order], data["dt_score"][order]
    npig = np.zeros((a_n, k_n), dtype=np.int64)                       # non-ignored GTs
    for a in range(a_n):
        npig[a] = np.bincount(data["gt_cat"][~ev["gt_ignore"][a]], minlength=k_n)
    tp_all = ev["dt_match"] & ~ev["dt_ignore"]                        # [A, T, N]
    fp_all = ~ev["dt_match"] & ~ev["dt_ignore"]
    for m, max_det in enumerate(max_dets):
        keep = np.flatnonzero(rank < max_det)                            # (cat, image, rank) order
        srt = keep[np.lexsort((-score[keep], cat[keep]))]              # (cat, -score, image, rank)
        bounds = np.searchsorted(cat[srt], np.arange(k_n + 1))
        tps, fps, s_all = tp_all[:, :, srt], fp_all[:, :, srt], score[srt]
        for k in range(k_n):
            lo, hi = bounds[k], bounds[k + 1]
            nd = hi - lo
            s_sorted = s_all[lo:hi]
            for a in range(a_n):
                if npig[a, k] == 0:
                    continue
                # cumulative counts of 0/1 flags: exact in float64, as pycocotools' astype(float)
                tp = np.cumsum(tps[a, :, lo:hi], axis=1, dtype=np.float64)
                fp = np.cumsum(fps[a, :, lo:hi], axis=1, dtype=np.float64)
                rc = tp / npig[a, k]
                pr = tp / (fp + tp + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if nd else 0.0
                if nd == 0:
                    precision[:, :, k, a, m] = 0.0
                    scores[:, :, k, a, m] = 0.0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]   # monotone envelope
                for t in range(t_n):
                    idx = np.searchsorted(rc[t], COCO_REC_THRS, side="left")
                    inside = idx < nd
                    at = np.minimum(idx, nd - 1)
                    precision[t, :, k, a, m] = np.where(inside, pr[t][at], 0.0)
                    scores[t, :, k, a, m] = np.where(inside, s_sorted[at], 0.0)
    return precision, recall, scores


# ============================================================================ COCO: summarize

def _coco_from_data(data, iou_thrs, area_rng, max_dets) -> COCOEvalResult:
    ev = _evaluate(data, iou_thrs, area_rng, max_dets)
    precision, recall, scores = _accumulate(data, ev, iou_thrs, max_dets)
    stats = summarize(precision, recall, iou_thrs, max_dets)
    return COCOEvalResult(stats, precision, recall, scores,
                          per_class_ap(precision, data["cat_ids"], max_dets), iou_thrs,
                          COCO_REC_THRS.copy(), area_rng, max_dets, data["cat_ids"],
                          data["img_ids"])


def coco_evaluate(gt: dict | str | os.PathLike, results: list[dict] | str | os.PathLike,
                  iou_thrs: ArrayLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                  max_dets: Sequence[int] | None = None) -> COCOEvalResult:
    """COCO bbox evaluation equal to pycocotools' ``COCOeval`` evaluate/accumulate/summarize.

    Args:
        gt (dict | str | PathLike): COCO ground truth (``images``, ``categories``,
            ``annotations`` with ``image_id``, ``category_id``, ``bbox`` xywh, ``area``,
            ``iscrowd``), or the path of its JSON file.
        results (list[dict] | str | PathLike): COCO results (``image_id``, ``category_id``,
            ``bbox`` xywh, ``score``), or the path of a JSON file holding that list.
        iou_thrs (ndarray[T] | None): default ``np.linspace(.5, .95, 10)``.
        area_rng (4 x [lo, hi] | None): all, small, medium, large; closed intervals on the GT's
            stored ``area``; default pycocotools' ranges.
        max_dets (3 ints | None): default (1, 10, 100); matching runs at ``max_dets[-1]`` and is
            sliced for the smaller values; stat 0 needs 100 among them (else it is -1).

    Returns:
        COCOEvalResult: ``stats``, ``precision``, ``recall``, ``scores``, ``per_class``.

    Convention: pycocotools 2.0.x, bit for bit (``mergesort`` ties by input order, then image
    order; ``np.spacing(1)`` in the precision denominator; ``searchsorted(side='left')``).
    Where pycocotools crashes the answer is defined: an empty ``results`` list evaluates as no
    detections (recall 0, precision 0 for categories with GT); no GT annotations gives -1
    everywhere. An annotation id of 0 is matched correctly here (pycocotools treats the match as
    none and counts a false positive). Non-unique annotation ids are treated as distinct.

    Raises:
        ValueError: malformed input, non-finite or negative-size boxes, a result on an image
            that is not in the ground truth.
    """
    iou_thrs, area_rng, max_dets = check_coco_params(iou_thrs, area_rng, max_dets)
    return _coco_from_data(parse_coco(gt, results), iou_thrs, area_rng, max_dets)


# ============================================================================ COCO: incremental

def _xyxy_to_xywh(b):
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


_STATE_KEYS = ("dt_img", "dt_box", "dt_score", "dt_label", "gt_img", "gt_box", "gt_label",
               "gt_crowd", "gt_area")


class DetectionEvaluator:
    """Incremental COCO evaluation for training-time validation (``update`` per batch).

    ``update`` takes one batch as per-image sequences; images are numbered in the order they
    arrive. ``compute`` gives the :class:`COCOEvalResult` that :func:`coco_evaluate` gives for
    the same images, GTs and detections (categories: the sorted union of GT and predicted
    labels). For torch.distributed, ``state()`` is a dict of flat arrays (gather them, e.g. with
    ``all_gather_object``) and ``merge(other)`` appends another evaluator or state dict after
    this one's images: states merge by concatenation, so merging the ranks' states in rank order
    equals one process that saw rank 0's batches, then rank 1's, and so on.

    Args:
        iou_thrs, area_rng, max_dets: as :func:`coco_evaluate`.
    """

    def __init__(self, iou_thrs: ArrayLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                 max_dets: Sequence[int] | None = None) -> None:
        self.iou_thrs, self.area_rng, self.max_dets = check_coco_params(iou_thrs, area_rng, max_dets)
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.n_images = 0
        self._parts = {k: [] for k in _STATE_KEYS}

    def update(self, pred_boxes: Sequence[ArrayLike], pred_scores: Sequence[ArrayLike],
               pred_labels: Sequence[ArrayLike], gt_boxes: Sequence[ArrayLike], gt_labels: Sequence[ArrayLike],
               gt_iscrowd: Sequence[ArrayLike] | None = None, gt_areas: Sequence[ArrayLike] | None = None) -> None:
        """Add one batch.

        Args:
            pred_boxes (sequence of ndarray[N_i, 4]): xyxy detections per image.
            pred_scores (sequence of ndarray[N_i]), pred_labels (sequence of int ndarray[N_i]).
            gt_boxes (sequence of ndarray[G_i, 4]): xyxy ground truth per image.
            gt_labels (sequence of int ndarray[G_i]).
            gt_iscrowd (sequence of bool ndarray[G_i] | None): default all False.
            gt_areas (sequence of ndarray[G_i] | None): COCO's stored areas (e.g. mask areas);
                default box areas.
        """
        n = len(pred_boxes)
        for name, seq in (("pred_scores", pred_scores), ("pred_labels", pred_labels),
                          ("gt_boxes", gt_boxes), ("gt_labels", gt_labels)):
            check_same_length("pred_boxes", pred_boxes, name, seq)
        for i in range(n):
            db = check_boxes(f"pred_boxes[{i}]", pred_boxes[i], ndim=2).astype(np.float64)
            ds = as_array(f"pred_scores[{i}]", pred_scores[i], ndim=1, finite=True).astype(np.float64)
            dl = as_array(f"pred_labels[{i}]", pred_labels[i], ndim=1).astype(np.int64)
            gb = check_boxes(f"gt_boxes[{i}]", gt_boxes[i], ndim=2).astype(np.float64)
            gl = as_array(f"gt_labels[{i}]", gt_labels[i], ndim=1).astype(np.int64)
            check_same_length(f"pred_boxes[{i}]", db, f"pred_scores[{i}]", ds)
            check_same_length(f"pred_boxes[{i}]", db, f"pred_labels[{i}]", dl)
            check_same_length(f"gt_boxes[{i}]", gb, f"gt_labels[{i}]", gl)
            gc = (np.zeros(len(gb), bool) if gt_iscrowd is None
                  else as_array(f"gt_iscrowd[{i}]", gt_iscrowd[i], ndim=1).astype(bool))
            gb = _xyxy_to_xywh(gb)
            ga = (gb[:, 2] * gb[:, 3] if gt_areas is None
                  else as_array(f"gt_areas[{i}]", gt_areas[i], ndim=1, finite=True).astype(np.float64))
            check_same_length(f"gt_boxes[{i}]", gb, f"gt_iscrowd[{i}]", gc)
            check_same_length(f"gt_boxes[{i}]", gb, f"gt_areas[{i}]", ga)
            img = self.n_images
            for k, v in (("dt_img", np.full(len(db), img, np.int64)), ("dt_box", _xyxy_to_xywh(db)),
                         ("dt_score", ds), ("dt_label", dl), ("gt_img", np.full(len(gb), img, np.int64)),
                         ("gt_box", gb), ("gt_label", gl), ("gt_crowd", gc), ("gt_area", ga)):
                self._parts[k].append(v)
            self.n_images += 1

    def state(self) -> dict:
        """The accumulated state as flat arrays (plus ``n_images``), for gathering across ranks."""
        out = {"n_images": self.n_images}
        empty = {"dt_box": np.zeros((0, 4)), "gt_box": np.zeros((0, 4)), "gt_crowd": np.zeros(0, bool),
                 "dt_score": np.zeros(0), "gt_area": np.zeros(0)}
        for k in _STATE_KEYS:
            parts = self._parts[k]
            out[k] = np.concatenate(parts) if parts else empty.get(k, np.zeros(0, np.int64))
        return out

    def merge(self, other: DetectionEvaluator | dict[str, Any]) -> DetectionEvaluator:
        """Append ``other``'s images (an evaluator or a :meth:`state` dict) after this one's."""
        st = other.state() if isinstance(other, DetectionEvaluator) else other
        for k in _STATE_KEYS:
            v = np.asarray(st[k])
            if k in ("dt_img", "gt_img"):
                v = v + self.n_images
            self._parts[k].append(v)
        self.n_images += int(st["n_images"])
        return self

    def compute(self) -> COCOEvalResult:
        """COCO evaluation of everything seen (see :func:`coco_evaluate`)."""
        s = self.state()
        cat_ids = np.unique(np.concatenate([s["gt_label"], s["dt_label"]]))
        data = dict(img_ids=np.arange(s["n_images"], dtype=np.int64), cat_ids=cat_ids,
                    gt_img=s["gt_img"], gt_cat=np.searchsorted(cat_ids, s["gt_label"]),
                    gt_box=s["gt_box"], gt_area=s["gt_area"], gt_crowd=s["gt_crowd"],
                    dt_img=s["dt_img"], dt_cat=np.searchsorted(cat_ids, s["dt_label"]),
                    dt_box=s["dt_box"], dt_score=s["dt_score"],
                    dt_area=s["dt_box"][:, 2] * s["dt_box"][:, 3])
        order = np.argsort(data["gt_img"], kind="stable")
        for k in ("gt_img", "gt_cat", "gt_box", "gt_area", "gt_crowd"):
            data[k] = data[k][order]
        return _coco_from_data(data, self.iou_thrs, self.area_rng, self.max_dets)


# ============================================================================ PASCAL VOC

_VOC07_THRS = np.arange(0.0, 1.1, 0.1)  # [3] is 0.30000000000000004, as in voc_eval.py


def voc_ap(rec: ArrayLike, prec: ArrayLike, use_07_metric: bool = False) -> np.ndarray:
    """AP from a recall/precision curve, as ``voc_ap`` of py-faster-rcnn's ``voc_eval.py``.

    Args:
        rec (ndarray[N]): recall, non-decreasing. prec (ndarray[N]): precision.
        use_07_metric (bool): VOC2007 11-point metric: the mean over t in
            ``np.arange(0, 1.1, 0.1)`` of ``max(prec[rec >= t])`` (0 when empty), accumulated
            sequentially. Otherwise (VOC2010+) the area under the monotone envelope of
            ``[0, prec, 0]`` over ``[0, rec, 1]`` at the points where recall changes.

    Returns:
        ndarray[] : the AP (0-d, dtype of ``prec``). Empty curves give 0.
    """
    rec = as_array("rec", rec, ndim=1, floating=True)
    prec = as_array("prec", prec, ndim=1, floating=True)
    check_same_length("rec", rec, "prec", prec)
    if use_07_metric:
        ap = np.zeros((), dtype=prec.dtype)
        for t in _VOC07_THRS:
            sel = rec >= t
            p = np.max(prec[sel]) if np.any(sel) else np.zeros((), dtype=prec.dtype)
            ap = ap + p / 11.0
        return np.asarray(ap, dtype=prec.dtype)
    mrec = np.concatenate(([0.0], rec, [1.0])).astype(rec.dtype)
    mpre = np.concatenate(([0.0], prec, [0.0])).astype(prec.dtype)
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]          # the backward running max
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return np.asarray(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]), dtype=prec.dtype)


def _voc_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult):
    check_same_length("gt_boxes", gt_boxes, "gt_labels", gt_labels)
    if gt_difficult is not None:
        check_same_length("gt_boxes", gt_boxes, "gt_difficult", gt_difficult)
    det_boxes = check_boxes("det_boxes", det_boxes, ndim=2)
    det_scores = as_array("det_scores", det_scores, ndim=1, finite=True)
    det_labels = as_array("det_labels", det_labels, ndim=1)
    det_image_ids = as_array("det_image_ids", det_image_ids, ndim=1)
    for name, v in (("det_scores", det_scores), ("det_labels", det_labels),
                    ("det_image_ids", det_image_ids)):
        check_same_length("det_boxes", det_boxes, name, v)
    if len(det_image_ids) and (det_image_ids.min() < 0 or det_image_ids.max() >= len(gt_boxes)):
        raise ValueError(f"det_image_ids: expected indices into gt_boxes (0..{len(gt_boxes) - 1})")
    return det_boxes, det_scores, det_labels.astype(np.int64), det_image_ids.astype(np.int64)


def _group_table(d_key, g_key):
    """[N, Gmax] indices of the GTs whose key equals each detection's key, in input order,
    -1 padded (Gmax = the largest such group)."""
    g_order = np.argsort(g_key, kind="stable")
    keys, g_start, g_count = np.unique(g_key[g_order], return_index=True, return_counts=True)
    slot = index_of(d_key, keys)
    found = slot >= 0
    cnt = np.where(found, g_count[np.maximum(slot, 0)], 0) if len(keys) else np.zeros(len(d_key), np.int64)
    start = g_start[np.maximum(slot, 0)] if len(keys) else np.zeros(len(d_key), np.int64)
    col = np.arange(int(cnt.max()) if len(cnt) else 0)
    pos = np.minimum(start[:, None] + col, max(len(g_order) - 1, 0))
    return np.where(col < cnt[:, None], g_order[pos], -1)


def voc_evaluate(gt_boxes: Sequence[ArrayLike], gt_labels: Sequence[ArrayLike], det_boxes: ArrayLike,
                 det_scores: ArrayLike, det_labels: ArrayLike, det_image_ids: ArrayLike,
                 gt_difficult: Sequence[ArrayLike] | None = None, iou_threshold: float = 0.5,
                 use_07_metric: bool = False) -> dict[str, np.ndarray]:
    """PASCAL VOC detection AP per class and mAP, as py-faster-rcnn's ``voc_eval.py``.

    Args:
        gt_boxes (sequence of ndarray[G_i, 4]): xyxy GT boxes per image (pixel indices,
            inclusive: width is ``x2 - x1 + 1``).
        gt_labels (sequence of int ndarray[G_i]): GT classes per image.
        det_boxes (ndarray[N, 4]): xyxy detections of all images.
        det_scores (ndarray[N]), det_labels (int ndarray[N]).
        det_image_ids (int ndarray[N]): index of each detection's image in ``gt_boxes``.
        gt_difficult (sequence of bool ndarray[G_i] | None): difficult flags (default none).
        iou_threshold (float): a detection is a hit when its best overlap is ``> iou_threshold``.
        use_07_metric (bool): VOC2007 11-point AP instead of the all-point (2010+) AP.

    Returns:
        dict: ``classes`` (int ndarray[C]: the classes with at least one non-difficult GT,
        sorted), ``ap`` (ndarray[C]) and ``map`` (ndarray[]: mean of ``ap``, NaN if C = 0).

    Rules (per class): detections sorted by -score (stable: ties keep input order, where
    ``voc_eval.py``'s quicksort leaves them unspecified); each takes the GT of its image and
    class of largest overlap (first on ties), difficult and already matched GTs included; if the
    overlap is > threshold: a difficult GT makes it neither TP nor FP, an unmatched GT a TP (the
    GT becomes matched), a matched GT a FP; else FP. ``rec = tp / npos`` (non-difficult GTs),
    ``prec = tp / max(tp + fp, eps)``; AP by :func:`voc_ap`. Classes with detections but no
    non-difficult GT are not reported (``voc_eval.py`` would divide by zero).
    """
    det_boxes, det_scores, det_labels, det_image_ids = _voc_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult)
    dtype = np.result_type(det_boxes.dtype, det_scores.dtype, np.float32)
    gb = [check_boxes(f"gt_boxes[{i}]", b, ndim=2) for i, b in enumerate(gt_boxes)]
    g_box = np.concatenate(gb).astype(dtype) if gb else np.zeros((0, 4), dtype)
    g_lab = (np.concatenate([np.asarray(v, dtype=np.int64).reshape(-1) for v in gt_labels])
             if len(gt_labels) else np.zeros(0, np.int64))
    g_img = np.repeat(np.arange(len(gb)), [len(b) for b in gb]).astype(np.int64)
    check_same_length("gt_boxes (all images)", g_box, "gt_labels (all images)", g_lab)
    g_dif = (np.zeros(len(g_box), bool) if gt_difficult is None else
             np.concatenate([np.asarray(v, dtype=bool).reshape(-1) for v in gt_difficult])
             if len(gt_difficult) else np.zeros(0, bool))
    check_same_length("gt_boxes (all images)", g_box, "gt_difficult (all images)", g_dif)
    classes = np.unique(g_lab[~g_dif])
    det_boxes = det_boxes.astype(dtype)
    det_scores = det_scores.astype(dtype)

    # GTs of each detection's (image, class): padded table [N, Gmax] of GT indices.
    n_img = max(len(gb), 1)
    tab = _group_table(det_labels * n_img + det_image_ids, g_lab * n_img + g_img)
    ov = np.where(tab >= 0, voc_box_iou(det_boxes[:, None, :], g_box[np.maximum(tab, 0)])[:, 0, :],
                  -np.inf)                                                          # [N, Gmax]
    ovmax = np.max(ov, axis=-1, initial=-np.inf)
    jmax = (tab[np.arange(len(tab)), np.argmax(ov, -1)] if tab.shape[1]
            else np.full(len(tab), -1))                                # first best GT, or -1
    hit = ovmax > iou_threshold
    difficult = hit & g_dif[np.maximum(jmax, 0)] if len(g_dif) else np.zeros(len(hit), bool)

    aps = np.zeros(len(classes), dtype=dtype)
    for c_i, c in enumerate(classes):
        sel = np.flatnonzero(det_labels == c)
        sel = sel[np.argsort(-det_scores[sel], kind="stable")]
        claim = np.where(hit[sel] & ~difficult[sel], jmax[sel], -1)
        first = np.zeros(len(sel), bool)
        valid = np.flatnonzero(claim >= 0)
        _, first_idx = np.unique(claim[valid], return_index=True)   # first claimant of each GT
        first[valid[first_idx]] = True
        tp = first.astype(dtype)
        fp = (~hit[sel] | ((claim >= 0) & ~first)).astype(dtype)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        npos = int(np.sum((g_lab == c) & ~g_dif))
        rec = tp / dtype.type(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps[c_i] = voc_ap(rec, prec.astype(dtype), use_07_metric)
    m = np.asarray(np.mean(aps) if len(aps) else np.nan, dtype=dtype)
    return {"classes": classes, "ap": aps, "map": m}


# ============================================================================ Ultralytics

def _smooth(y, f=0.05):
    """Box filter of width ``nf = round(len(y) * f * 2) // 2 + 1`` with edge padding (Ultralytics
    ``smooth``), summed in a fixed order (window offsets left to right) so that it is
    reproducible across backends; equals ``np.convolve(..., 'valid')`` up to summation order."""
    nf = round(len(y) * f * 2) // 2 + 1
    p = np.ones(nf // 2, dtype=y.dtype)
    yp = np.concatenate((p * y[0], y, p * y[-1]))
    w = 1.0 / nf
    acc = yp[0:len(y)] * w
    for k in range(1, nf):
        acc = acc + yp[k:k + len(y)] * w
    return acc


def compute_ap(recall: ArrayLike, precision: ArrayLike, method: Literal["interp", "continuous"] = "interp",
               version: Literal["8.3", "8.4"] = "8.3") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AP of one recall/precision curve, as Ultralytics ``compute_ap``.

    Args:
        recall (ndarray[N]), precision (ndarray[N]): the curve in confidence order.
        method (str): 'interp' (101-point ``np.interp`` then trapezoid) or 'continuous'
            (``sum(Δrecall * precision)`` where recall changes).
        version (str): '8.3' (also yolov5 v7.0): ``mrec = [0, r, 1]``, ``mpre = [1, p, 0]``;
            '8.4': ``mrec = [0, r, r[-1], 1]``, ``mpre = [1, p, 0, 0]`` (precision drops to 0
            after the last recall; an empty curve uses ``r[-1] = 0``).

    Returns:
        tuple: (ap ndarray[], mpre ndarray[N+2 or N+3] envelope, mrec ndarray[N+2 or N+3]).
        Example: recall [0.5], precision [1.0] gives 0.750 ('8.3') and 0.495 ('8.4').
    """
    recall = as_array("recall", recall, ndim=1, floating=True).astype(np.float64)
    precision = as_array("precision", precision, ndim=1, floating=True).astype(np.float64)
    check_same_length("recall", recall, "precision", precision)
    if method not in ("interp", "continuous"):
        raise ValueError(f"method: expected 'interp' or 'continuous', got {method!r}")
    if version not in ("8.3", "8.4"):
        raise ValueError(f"version: expected '8.3' or '8.4', got {version!r}")
    if version == "8.3":
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([1.0], precision, [0.0]))
    else:
        last = recall[-1] if len(recall) else 0.0
        mrec = np.concatenate(([0.0], recall, [last], [1.0]))
        mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    if method == "interp":
        x = np.linspace(0, 1, 101)
        ap = np.trapezoid(np.interp(x, mrec, mpre), x)
    else:
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return np.asarray(ap, dtype=np.float64), mpre, mrec


def ap_per_class(tp: ArrayLike, conf: ArrayLike, pred_cls: ArrayLike, target_cls: ArrayLike, eps: float = 1e-16,
                 version: Literal["8.3", "8.4"] = "8.3") -> tuple[np.ndarray, ...]:
    """Per-class AP at each IoU threshold and P/R/F1 at the best mean-F1 confidence (Ultralytics).

    Args:
        tp (bool ndarray[N, T]): per prediction, correct at each IoU threshold.
        conf (ndarray[N]): confidences. pred_cls (int ndarray[N]), target_cls (int ndarray[M]).
        eps (float): as Ultralytics (recall ``tpc / (n_l + eps)``, F1 ``2pr / (p + r + eps)``).
        version (str): compute_ap end points ('8.3' = yolov5 v7.0, or '8.4').

    Returns:
        tuple: (tp ndarray[C], fp ndarray[C], p ndarray[C], r ndarray[C], f1 ndarray[C],
        ap ndarray[C, T], classes int ndarray[C]), C = classes present in ``target_cls``
        (sorted); tp/fp are the rounded counts at the chosen confidence.

    Rules: predictions sorted by -conf (stable; Ultralytics' quicksort leaves ties unspecified);
    per class ``recall = tpc / (n_l + eps)``, ``precision = tpc / (tpc + fpc)``; classes with no
    prediction keep AP 0 and P = R = 0 curves; the P and R curves at 1000 confidences
    ``np.interp(-px, -conf, ·, left=0 / 1)``; the confidence index is the argmax of the mean F1
    curve smoothed with a box filter of 10% (see :func:`_smooth`; the class mean summed class by
    class in order). No classes in ``target_cls``: all outputs empty.
    """
    tp = as_array("tp", tp, ndim=2)
    conf = as_array("conf", conf, ndim=1, finite=True, floating=True).astype(np.float64)
    pred_cls = as_array("pred_cls", pred_cls, ndim=1).astype(np.int64)
    target_cls = as_array("target_cls", target_cls, ndim=1).astype(np.int64)
    check_same_length("tp", tp, "conf", conf)
    check_same_length("tp", tp, "pred_cls", pred_cls)
    if version not in ("8.3", "8.4"):  # checked up front, whatever the data
        raise ValueError(f"version: expected '8.3' or '8.4', got {version!r}")
    i = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[i].astype(np.float64), conf[i], pred_cls[i]
    classes, nt = np.unique(target_cls, return_counts=True)
    nc, n_thr = len(classes), tp.shape[1]
    px = np.linspace(0, 1, 1000)
    ap = np.zeros((nc, n_thr))
    p_curve, r_curve = np.zeros((nc, 1000)), np.zeros((nc, 1000))
    for ci, c in enumerate(classes):
        sel = pred_cls == c
        n_l, n_p = nt[ci], int(sel.sum())
        if n_p == 0 or n_l == 0:
            continue
        tpc = np.cumsum(tp[sel], axis=0)
        fpc = np.cumsum(1 - tp[sel], axis=0)
        recall = tpc / (n_l + eps)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = np.interp(-px, -conf[sel], recall[:, 0], left=0)
        p_curve[ci] = np.interp(-px, -conf[sel], precision[:, 0], left=1)
        for j in range(n_thr):
            ap[ci, j] = compute_ap(recall[:, j], precision[:, j], version=version)[0]
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    if nc == 0:
        e = np.zeros(0)
        return e, e, e, e, e, ap, classes
    total = f1[0]
    for row in f1[1:]:
        total = total + row
    k = int(np.argmax(_smooth(total / nc, 0.1)))
    p, r, f = p_curve[:, k], r_curve[:, k], f1[:, k]
    tp_n = (r * nt).round()
    fp_n = (tp_n / (p + eps) - tp_n).round()
    return tp_n, fp_n, p, r, f, ap, classes


def match_predictions(pred_classes: ArrayLike, true_classes: ArrayLike, iou: ArrayLike, iou_thresholds: ArrayLike
                     ) -> np.ndarray:
    """Which predictions are correct at each IoU threshold (yolov5 ``process_batch``).

    Args:
        pred_classes (int ndarray[N]), true_classes (int ndarray[M]).
        iou (ndarray[M, N]): IoU of every label (rows) with every prediction (columns).
        iou_thresholds (ndarray[T]).

    Returns:
        bool ndarray[N, T].

    Rules, per threshold: candidate pairs have ``iou >= threshold`` and equal classes; sorted by
    IoU descending (stable: ties keep (label, prediction) order; yolov5's reversed quicksort
    leaves them unspecified); one pair kept per prediction (the first), then, WITHOUT re-sorting
    (the survivors are in prediction order), one pair per label (the first, so the
    lowest-index prediction, not the best IoU: yolov5's quirk, kept upstream on purpose).
    """
    pred_classes = as_array("pred_classes", pred_classes, ndim=1)
    true_classes = as_array("true_classes", true_classes, ndim=1)
    iou = as_array("iou", iou, ndim=2)
    iou_thresholds = as_array("iou_thresholds", iou_thresholds, ndim=1)
    if iou.shape != (len(true_classes), len(pred_classes)):
        raise ValueError(f"iou: expected shape ({len(true_classes)}, {len(pred_classes)}), "
                         f"got {iou.shape}")
    correct = np.zeros((len(pred_classes), len(iou_thresholds)), dtype=bool)
    same = true_classes[:, None] == pred_classes[None, :]
    for ti, thr in enumerate(iou_thresholds):
        li, di = np.nonzero((iou >= thr) & same)
        if len(li) == 0:
            continue
        s = np.argsort(-iou[li, di], kind="stable")
        li, di = li[s], di[s]
        _, first = np.unique(di, return_index=True)    # best pair per prediction, by prediction
        li, di = li[first], di[first]
        _, first = np.unique(li, return_index=True)    # then first pair per label, no re-sort
        correct[di[first], ti] = True
    return correct


def confusion_matrix(detections: ArrayLike, labels: ArrayLike, nc: int, conf: float = 0.25, iou_thres: float = 0.45
                    ) -> np.ndarray:
    """One image's contribution to the yolov5 ``ConfusionMatrix`` (sum it over images).

    Args:
        detections (ndarray[N, 6]): x1, y1, x2, y2, confidence, class.
        labels (ndarray[M, 5]): class, x1, y1, x2, y2.
        nc (int): number of classes; index ``nc`` is the background.
        conf (float): detections with confidence ``> conf`` are kept.
        iou_thres (float): pairs with IoU ``> iou_thres`` match (class-agnostic).

    Returns:
        ndarray[nc + 1, nc + 1] float64, indexed [predicted, true].

    Rules (yolov5 v7.0): pairs sorted by IoU descending (stable), one per detection (the
    best), re-sorted by IoU, one per label (the best); a label with a match counts at
    [class of the matched detection, label class], else at [nc, label class]; when there is at
    least one match, each unmatched detection counts at [its class, nc] (with no match at all
    no detection is counted: the yolov5 quirk).
    """
    detections = as_array("detections", detections, ndim=2, floating=True)
    labels = as_array("labels", labels, ndim=2, floating=True)
    if detections.shape[1] != 6 or labels.shape[1] != 5:
        raise ValueError(f"detections, labels: expected [N, 6] and [M, 5], got "
                         f"{detections.shape} and {labels.shape}")
    matrix = np.zeros((nc + 1, nc + 1))
    detections = detections[detections[:, 4] > conf]
    gt_classes = labels[:, 0].astype(np.int64)
    det_classes = detections[:, 5].astype(np.int64)
    iou = box_iou(labels[:, 1:], detections[:, :4])
    li, di = np.nonzero(iou > iou_thres)
    if len(li) > 1:
        v = iou[li, di]
        s = np.argsort(-v, kind="stable")
        li, di, v = li[s], di[s], v[s]
        _, first = np.unique(di, return_index=True)
        li, di, v = li[first], di[first], v[first]
        s = np.argsort(-v, kind="stable")
        li, di = li[s], di[s]
        _, first = np.unique(li, return_index=True)
        li, di = li[first], di[first]
    any_match = len(li) > 0
    for i, gc in enumerate(gt_classes):
        j = li == i
        if any_match and j.sum() == 1:
            matrix[det_classes[di[j][0]], gc] += 1
        else:
            matrix[nc, gc] += 1
    if any_match:
        for i, dc in enumerate(det_classes):
            if not np.any(di == i):
                matrix[dc, nc] += 1
    return matrix


# ============================================================================ Ultralytics: protocol

ULTRALYTICS_IOU_THRS = np.linspace(0.5, 0.95, 10)  # ultralytics ``DetectionValidator.iouv``


@dataclass
class UltralyticsResult:
    """What :func:`ultralytics_evaluate` returns (the numbers of Ultralytics' ``DetMetrics``).

    Attributes (N' kept predictions, M' non-difficult GTs, C classes present in the GT, T IoU
    thresholds, K = ``nc`` classes):
        tp (bool ndarray[N', T]): per kept prediction, correct at each IoU threshold
            (:func:`match_predictions`), images in input order, score-descending within one.
        conf (ndarray[N']), pred_cls (int ndarray[N']): confidence and class of each.
        kept (int ndarray[N']): index of each kept prediction into the input detections.
        target_cls (int ndarray[M']): classes of the non-difficult GTs.
        p, r, f1 (ndarray[C]): per class, at the confidence of the best mean F1.
        ap (ndarray[C, T]): AP per class and threshold. classes (int ndarray[C]).
        mp, mr, map50, map (ndarray[] float64): means over the C classes of p, r, ``ap[:, 0]``
            and ``ap.mean(1)`` (Ultralytics' ``box.mp``, ``box.mr``, ``box.map50``,
            ``box.map``); NaN when C = 0.
        confusion_matrix (ndarray[K + 1, K + 1] float64): [predicted, true], index K the
            background; :func:`confusion_matrix` (conf 0.25, IoU 0.45) summed over images.
        iou_thresholds (ndarray[T]).
    """

    tp: Any
    conf: Any
    pred_cls: Any
    kept: Any
    target_cls: Any
    p: Any
    r: Any
    f1: Any
    ap: Any
    classes: Any
    mp: Any
    mr: Any
    map50: Any
    map: Any
    confusion_matrix: Any
    iou_thresholds: Any

    def to_dict(self) -> dict:
        """The fields as a dict (``{name: value}``, in declaration order)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _mean_or_nan(x):
    return np.asarray(np.mean(x) if x.size else np.nan, dtype=np.float64)


def _ultralytics_keep(scores, image_ids, n_images, conf_thres, max_det):
    """Per image, the predictions Ultralytics' NMS returns: ``score > conf_thres``, sorted by
    score descending (stable on ties), the first ``max_det``. A list of index arrays."""
    order = np.argsort(image_ids, kind="stable")
    bounds = np.searchsorted(image_ids[order], np.arange(n_images + 1))
    kept = []
    for i in range(n_images):
        idx = order[bounds[i]:bounds[i + 1]]
        idx = idx[scores[idx] > conf_thres]
        kept.append(idx[np.argsort(-scores[idx], kind="stable")][:max_det])
    return kept


def ultralytics_evaluate(gt_boxes: Sequence[ArrayLike], gt_labels: Sequence[ArrayLike], det_boxes: ArrayLike,
                         det_scores: ArrayLike, det_labels: ArrayLike, det_image_ids: ArrayLike,
                         gt_difficult: Sequence[ArrayLike] | None = None, conf_thres: float = 0.001, max_det: int = 300,
                         iou_thresholds: ArrayLike | None = None, version: Literal["8.3", "8.4"] = "8.3",
                         nc: int | None = None) -> UltralyticsResult:
    """Ultralytics' detection validation (``DetectionValidator``) on given predictions.

    Args:
        gt_boxes (sequence of ndarray[G_i, 4]): xyxy GT boxes per image, pixels (continuous, no
            +1).
        gt_labels (sequence of int ndarray[G_i]): GT classes per image.
        det_boxes (ndarray[N, 4]): xyxy detections of all images.
        det_scores (ndarray[N]), det_labels (int ndarray[N]).
        det_image_ids (int ndarray[N]): index of each detection's image in ``gt_boxes``.
        gt_difficult (sequence of bool ndarray[G_i] | None): difficult GTs are dropped, as
            Ultralytics' VOC converter does (so detections on them are false positives).
        conf_thres (float): predictions with ``score > conf_thres`` are kept (NMS ``conf``;
            ``-inf`` keeps all).
        max_det (int): predictions kept per image, highest scores first (NMS ``max_det``).
        iou_thresholds (ndarray[T] | None): default ``np.linspace(0.5, 0.95, 10)``.
        version (str): :func:`compute_ap` end points, '8.3' (= yolov5 v7.0) or '8.4'.
        nc (int | None): number of classes of the confusion matrix (default: 1 + the largest
            label among GTs and detections, 0 if none).

    Returns:
        UltralyticsResult.

    Steps: (1) per image the NMS filters (:func:`_ultralytics_keep`; the order matters:
    :func:`match_predictions` gives a label to the lowest-index candidate, the highest-scored
    only in this order); (2) per image, IoU of every non-difficult GT with every kept prediction
    (:func:`ref_numpy.boxes.box_iou`, torchvision convention) and :func:`match_predictions`; (3)
    :func:`ap_per_class` on all images' matches; (4) :func:`confusion_matrix` per image,
    summed. Crowd GTs count as ordinary GTs (Ultralytics has no crowd).
    Convention: ultralytics 8.3 ``val.py`` / yolov5 v7.0 ``val.py`` on already-decoded,
    already-NMSed predictions (no letterbox, no NMS here).
    """
    det_boxes, det_scores, det_labels, det_image_ids = _voc_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult)
    if np.isnan(conf_thres):
        raise ValueError(f"conf_thres: expected a number (-inf keeps every prediction), got {conf_thres!r}")
    if int(max_det) < 1:
        raise ValueError(f"max_det: expected >= 1, got {max_det!r}")
    if version not in ("8.3", "8.4"):
        raise ValueError(f"version: expected '8.3' or '8.4', got {version!r}")
    thr = ULTRALYTICS_IOU_THRS if iou_thresholds is None else as_array(
        "iou_thresholds", iou_thresholds, ndim=1, finite=True, floating=True)
    thr = np.asarray(thr, dtype=np.float64)
    if len(thr) == 0:
        raise ValueError("iou_thresholds: expected at least one threshold")
    gb = [check_boxes(f"gt_boxes[{i}]", b, ndim=2).astype(np.float64)
          for i, b in enumerate(gt_boxes)]
    gl = [as_array(f"gt_labels[{i}]", v, ndim=1).astype(np.int64) for i, v in enumerate(gt_labels)]
    gd = [np.zeros(len(b), bool) if gt_difficult is None
          else np.asarray(gt_difficult[i], dtype=bool).reshape(-1) for i, b in enumerate(gb)]
    for i in range(len(gb)):
        check_same_length(f"gt_boxes[{i}]", gb[i], f"gt_labels[{i}]", gl[i])
        check_same_length(f"gt_boxes[{i}]", gb[i], f"gt_difficult[{i}]", gd[i])
    det_boxes, det_scores = det_boxes.astype(np.float64), det_scores.astype(np.float64)
    labels_all = [det_labels] + gl
    top = max((int(v.max()) for v in labels_all if len(v)), default=-1)
    nc = top + 1 if nc is None else int(nc)
    if nc <= top:
        raise ValueError(f"nc: expected > the largest label ({top}), got {nc}")

    kept = _ultralytics_keep(det_scores, det_image_ids, len(gb), conf_thres, int(max_det))
    tp, cm = [], np.zeros((nc + 1, nc + 1))
    for i, p in enumerate(kept):
        g_box, g_lab = gb[i][~gd[i]], gl[i][~gd[i]]                                  # [M, 4]
        if len(p) and len(g_box):
            iou = box_iou(g_box, det_boxes[p])                                       # [M, N]
            tp.append(match_predictions(det_labels[p], g_lab, iou, thr))
        else:
            tp.append(np.zeros((len(p), len(thr)), dtype=bool))
        dets = np.concatenate([det_boxes[p], det_scores[p, None],
                               det_labels[p, None].astype(np.float64)], axis=1)       # [N, 6]
        labs = np.concatenate([g_lab[:, None].astype(np.float64), g_box], axis=1)     # [M, 5]
        cm += confusion_matrix(dets, labs, nc)
    kept_all = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    tp_all = np.concatenate(tp) if tp else np.zeros((0, len(thr)), dtype=bool)
    target = (np.concatenate([gl[i][~gd[i]] for i in range(len(gb))]) if gb
              else np.zeros(0, np.int64))
    _, _, p, r, f1, ap, classes = ap_per_class(tp_all, det_scores[kept_all], det_labels[kept_all],
                                               target, version=version)
    return UltralyticsResult(
        tp=tp_all, conf=det_scores[kept_all], pred_cls=det_labels[kept_all], kept=kept_all,
        target_cls=target, p=p, r=r, f1=f1, ap=ap, classes=classes, mp=_mean_or_nan(p),
        mr=_mean_or_nan(r), map50=_mean_or_nan(ap[:, 0]), map=_mean_or_nan(ap.mean(1)),
        confusion_matrix=cm, iou_thresholds=thr)
