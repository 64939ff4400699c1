"""Detection metrics: COCO mAP (bit-equal to pycocotools), PASCAL VOC AP, YOLOv5 / Ultralytics 8.3, 8.4 AP.

Three families, each reproducing one trusted evaluator (pycocotools 2.0.x ``cocoeval.py``,
py-faster-rcnn ``voc_eval.py``, yolov5 v7.0 ``utils/metrics.py``):

- COCO: :func:`coco_evaluate` returns a :class:`COCOEvalResult` whose ``stats``, ``precision``,
  ``recall`` and ``scores`` equal pycocotools 2.0.x ``COCOeval`` (``iouType='bbox'``,
  evaluate + accumulate + summarize) to the last bit. :class:`DetectionEvaluator` is the
  incremental (per batch, mergeable) front end of the same computation.
- VOC: :func:`voc_ap`, :func:`voc_evaluate` reproduce ``voc_eval.py`` of py-faster-rcnn.
- YOLOv5 / Ultralytics 8.3, 8.4: :func:`compute_ap`, :func:`ap_per_class`, :func:`match_predictions`,
  :func:`confusion_matrix` reproduce, by their ``version`` argument (``ULTRALYTICS_VERSIONS``),
  yolov5 v7.0 ("yolov5"), ultralytics 8.3.253 ("8.3", the default) or 8.4.190 ("8.4");
  :func:`ultralytics_evaluate` composes them into that release's whole validation protocol.

The COCO parsing, parameter checks, constants, summary and result container are shared with the
port and live in :mod:`ref_numpy.shared.coco` (re-exported here).

Where the algorithm is sequential (COCO's greedy matching) the loop runs over the detection rank
inside an (image, category) group, for all groups, area ranges and IoU thresholds at once; the
docstrings say why this equals pycocotools' per-image scan.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy.boxes import _coco_iou, box_iou, coco_box_iou, voc_box_iou
from ref_numpy._validate import as_array, check_boxes
from ref_numpy._validate import (check_box_order, check_flags, check_indices, check_labels,
                                 check_nondecreasing, check_nonnegative, check_unit_interval)
from ref_numpy.shared.checks import (check_count, check_eps, check_number, check_same_params,
                                     check_sequence, check_state_keys, check_state_lengths)
from ref_numpy.shared.checks import check_same_length, check_ultralytics_version
from ref_numpy.shared.constants import ULTRALYTICS_DEFAULT_VERSION, ULTRALYTICS_VERSIONS  # noqa: F401
from ref_numpy.shared.coco import (COCO_AREA_LBL, COCO_AREA_RNG, COCO_IOU_THRS,  # noqa: F401
                                   COCO_MAX_DETS, COCO_REC_THRS, MAX_IOU_THR, COCOEvalResult,
                                   check_coco_params, coco_params, index_of, parse_coco,
                                   per_class_ap,
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

def _accumulate(data, ev, iou_thrs, max_dets, rec_thrs=COCO_REC_THRS):
    """pycocotools ``accumulate``: precision [T, R, K, A, M], recall [T, K, A, M], scores.

    Per category the detections of all images are sorted by -score with a stable sort over
    (image order, rank): the ``np.argsort(-concat(scores), kind='mergesort')`` of pycocotools.
    A category with no non-ignored GT keeps -1 (excluded from the means). Recall thresholds are
    read in the order given: pycocotools fills ``q[r] = pr[searchsorted(rc, rec_thrs)[r]]``
    until the first index past the last detection raises, so with unsorted ``rec_thrs`` every
    threshold after that one is 0 too (reproduced: ``inside`` is a running AND).
    """
    t_n, r_n, k_n = len(iou_thrs), len(rec_thrs), len(data["cat_ids"])
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
                    idx = np.searchsorted(rc[t], rec_thrs, side="left")
                    inside = np.logical_and.accumulate(idx < nd)             # upstream's try/except
                    at = np.minimum(idx, nd - 1)
                    precision[t, :, k, a, m] = np.where(inside, pr[t][at], 0.0)
                    scores[t, :, k, a, m] = np.where(inside, s_sorted[at], 0.0)
    return precision, recall, scores


# ============================================================================ COCO: summarize

def _coco_from_data(data, iou_thrs, area_rng, max_dets, params=None) -> COCOEvalResult:
    """Evaluate + accumulate + summarize of parsed ``data``; ``params`` (a ``COCOParams``)
    brings ``rec_thrs``, ``area_rng_lbl`` and ``use_cats`` (defaults when None)."""
    rec_thrs = COCO_REC_THRS if params is None else params.rec_thrs
    lbl = COCO_AREA_LBL if params is None else params.area_rng_lbl
    ev = _evaluate(data, iou_thrs, area_rng, max_dets)
    precision, recall, scores = _accumulate(data, ev, iou_thrs, max_dets, rec_thrs)
    stats = summarize(precision, recall, iou_thrs, max_dets, lbl)
    return COCOEvalResult(stats, precision, recall, scores,
                          per_class_ap(precision, data["cat_ids"], max_dets, lbl), iou_thrs,
                          np.array(rec_thrs, dtype=np.float64), area_rng, max_dets,
                          data["cat_ids"], data["img_ids"], area_rng_lbl=lbl,
                          use_cats=True if params is None else params.use_cats)


def coco_evaluate(gt: dict | str | os.PathLike, results: list[dict] | str | os.PathLike,
                  iou_thrs: ArrayLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                  max_dets: Sequence[int] | None = None, *, rec_thrs: ArrayLike | None = None,
                  area_rng_lbl: Sequence[str] | None = None, use_cats: bool = True,
                  img_ids: Sequence[int | str] | None = None,
                  cat_ids: Sequence[int | str] | None = None) -> COCOEvalResult:
    """COCO bbox evaluation equal to pycocotools' ``COCOeval`` evaluate/accumulate/summarize.

    Args:
        gt (dict | str | PathLike): COCO ground truth (``images``, ``categories``,
            ``annotations`` with ``image_id``, ``category_id``, ``bbox`` xywh, ``area``,
            ``iscrowd``), or the path of its JSON file.
        results (list[dict] | str | PathLike): COCO results (``image_id``, ``category_id``,
            ``bbox`` xywh, ``score``), or the path of a JSON file holding that list.
        iou_thrs (ndarray[T] | None): ``params.iouThrs``, values in [0, 1] in any order;
            default ``np.linspace(.5, .95, 10)``.
        area_rng (A x [lo, hi] | None): ``params.areaRng``, any number of closed ranges on the
            GT's stored ``area`` (``lo <= hi``); default all, small, medium, large.
        max_dets (ints | None): ``params.maxDets``, any number of integers >= 1 in any order
            (sorted, as ``evaluate()`` does); matching runs at the largest and is sliced for the
            others. Default (1, 10, 100).
        rec_thrs (ndarray[R] | None): ``params.recThrs`` in [0, 1]; default ``linspace(0, 1, 101)``.
        area_rng_lbl (A str | None): ``params.areaRngLbl``; required unless there are 4 ranges.
        use_cats (bool): ``params.useCats``; False pools all categories (K = 1, id -1).
        img_ids, cat_ids (ids | None): ``params.imgIds`` / ``catIds``: evaluate these images /
            categories of the GT only (each must be in the GT).

    Returns:
        COCOEvalResult: ``stats``, ``precision``, ``recall``, ``scores``, ``per_class``, the
        named stats (``AP`` ... ``ARl``, ``AR50``, ``AR75``) and ``summary()``, pycocotools'
        printout for these parameters.

    Convention: pycocotools 2.0.x, bit for bit, for every parameter (``mergesort`` ties by input
    order, then image order; ``np.spacing(1)`` in the precision denominator;
    ``searchsorted(side='left')``; the summary's fixed lookups, see
    :func:`ref_numpy.shared.coco.summarize`). Where pycocotools crashes the answer is defined:
    an empty ``results`` list evaluates as no detections; fewer than 3 ``max_dets`` give -1 for
    the stats that index a missing one. An annotation id of 0 is matched correctly here
    (pycocotools counts the match as a false positive); repeated annotation ids are distinct.

    Raises:
        ValueError: one line naming the argument, or the file / list / entry / field of a bad
            value (:func:`ref_numpy.shared.coco.parse_coco`); a result on an image that is not
            in the ground truth; a parameter outside its domain
            (:func:`ref_numpy.shared.coco.coco_params`).
    """
    p = coco_params(iou_thrs=iou_thrs, area_rng=area_rng, max_dets=max_dets, rec_thrs=rec_thrs,
                    area_rng_lbl=area_rng_lbl, use_cats=use_cats, img_ids=img_ids, cat_ids=cat_ids)
    return _coco_from_data(parse_coco(gt, results, p), p.iou_thrs, p.area_rng, p.max_dets, p)


# ============================================================================ COCO: incremental

def _xyxy_to_xywh(b):
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


_STATE_KEYS = ("dt_img", "dt_box", "dt_score", "dt_label", "gt_img", "gt_box", "gt_label",
               "gt_crowd", "gt_area")
#: The evaluation parameters a state carries (merge refuses a state computed under others).
_PARAM_KEYS = ("iou_thrs", "area_rng", "max_dets")
#: Keys of one state that must have one length: the detections' and the GTs'.
_STATE_GROUPS = (("dt_img", "dt_box", "dt_score", "dt_label"),
                 ("gt_img", "gt_box", "gt_label", "gt_crowd", "gt_area"))


def _check_batch(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, gt_iscrowd, gt_areas):
    """:meth:`DetectionEvaluator.update`'s arguments checked and converted, image by image:
    a list of (dt_box xywh, dt_score, dt_label, gt_box xywh, gt_label, gt_crowd, gt_area).
    Everything is checked before the evaluator changes, so a bad batch adds nothing."""
    seqs = {"pred_boxes": pred_boxes, "pred_scores": pred_scores, "pred_labels": pred_labels,
            "gt_boxes": gt_boxes, "gt_labels": gt_labels}
    if gt_iscrowd is not None:
        seqs["gt_iscrowd"] = gt_iscrowd
    if gt_areas is not None:
        seqs["gt_areas"] = gt_areas
    for name, seq in seqs.items():
        check_sequence(name, seq)
        check_same_length("pred_boxes", pred_boxes, name, seq)
    rows = []
    for i in range(len(pred_boxes)):
        db = check_boxes(f"pred_boxes[{i}]", pred_boxes[i], ndim=2).astype(np.float64)
        check_box_order(f"pred_boxes[{i}]", db)
        ds = as_array(f"pred_scores[{i}]", pred_scores[i], ndim=1, finite=True).astype(np.float64)
        dl = check_labels(f"pred_labels[{i}]", pred_labels[i])
        gb = check_boxes(f"gt_boxes[{i}]", gt_boxes[i], ndim=2).astype(np.float64)
        check_box_order(f"gt_boxes[{i}]", gb)
        gl = check_labels(f"gt_labels[{i}]", gt_labels[i])
        check_same_length(f"pred_boxes[{i}]", db, f"pred_scores[{i}]", ds)
        check_same_length(f"pred_boxes[{i}]", db, f"pred_labels[{i}]", dl)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_labels[{i}]", gl)
        gc = (np.zeros(len(gb), bool) if gt_iscrowd is None
              else check_flags(f"gt_iscrowd[{i}]", gt_iscrowd[i]))
        gb = _xyxy_to_xywh(gb)
        if gt_areas is None:
            ga = gb[:, 2] * gb[:, 3]
        else:
            ga = as_array(f"gt_areas[{i}]", gt_areas[i], ndim=1, finite=True).astype(np.float64)
            check_nonnegative(f"gt_areas[{i}]", ga)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_iscrowd[{i}]", gc)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_areas[{i}]", ga)
        rows.append((_xyxy_to_xywh(db), ds, dl, gb, gl, gc, ga))
    return rows


def _check_state(st, params):
    """A :meth:`DetectionEvaluator.state` dict (either side's, before or after a gather)
    checked against this evaluator's ``params`` and converted to NumPy: exactly the state's
    keys, the same IoU thresholds / area ranges / max_dets, ``n_images`` an integer above every
    image index, one length per group (detections, GTs), boxes xywh finite with w, h >= 0,
    labels class labels, crowd flags 0/1, areas >= 0."""
    check_state_keys("other", st, _STATE_KEYS + ("n_images",) + _PARAM_KEYS)
    check_same_params("other", params, {k: st[k] for k in _PARAM_KEYS})
    n = st["n_images"]
    n = n.item() if getattr(n, "ndim", None) == 0 else n  # a 0-d array or tensor after a gather
    n = check_count("other['n_images']", n)
    of = f"the state's images (n_images = {n})"
    out = {"n_images": n}
    for k in ("dt_box", "gt_box"):
        out[k] = check_boxes(f"other[{k!r}]", st[k], ndim=2).astype(np.float64)
        check_box_order(f"other[{k!r}]", out[k], fmt="xywh")
    for k in ("dt_score", "gt_area"):
        out[k] = as_array(f"other[{k!r}]", st[k], ndim=1, finite=True).astype(np.float64)
    check_nonnegative("other['gt_area']", out["gt_area"])
    for k in ("dt_label", "gt_label"):
        out[k] = check_labels(f"other[{k!r}]", st[k])
    for k in ("dt_img", "gt_img"):
        out[k] = check_indices(f"other[{k!r}]", st[k], n, of)
    out["gt_crowd"] = check_flags("other['gt_crowd']", st["gt_crowd"])
    check_state_lengths("other", {k: len(out[k]) for k in _STATE_KEYS}, _STATE_GROUPS)
    return out


class DetectionEvaluator:
    """Incremental COCO evaluation for training-time validation (``update`` per batch).

    ``update`` takes one batch as per-image sequences; images are numbered in the order they
    arrive. ``compute`` gives the :class:`COCOEvalResult` that :func:`coco_evaluate` gives for
    the same images, GTs and detections (categories: the sorted union of GT and predicted
    labels). For torch.distributed, ``state()`` is a dict of flat arrays (gather them, e.g. with
    ``all_gather_object``) and ``merge(other)`` appends another evaluator or state dict after
    this one's images: states merge by concatenation, so merging the ranks' states in rank order
    equals one process that saw rank 0's batches, then rank 1's, and so on.

    Thread safety: ``update``, ``merge``, ``state``, ``reset`` and ``compute`` may be called
    from several threads at once (one lock guards the image count and the parts). A batch is
    checked before it is added, outside the lock: a bad batch raises and adds nothing, and
    concurrent batches are numbered in the order they take the lock (each batch's images stay
    consecutive).

    ``merge`` refuses (``ValueError`` naming the key): a state with other ``iou_thrs``,
    ``area_rng`` or ``max_dets`` (its matches would mean something else), missing or
    unexpected keys, ``n_images`` not above every image index, ragged arrays (e.g. more
    detection boxes than scores), and the element checks of ``update``. Category sets always
    reconcile: the categories are the union of the labels seen, so a state may bring classes
    this evaluator has not seen (as pycocotools would with the union in the GT's list).

    Args:
        iou_thrs, area_rng, max_dets: as :func:`coco_evaluate`.

    Raises (``update``): ``ValueError`` naming the argument, the image and the element: boxes
    not finite or inverted (``x2 < x1``; zero-size boxes are fine), labels that are not class
    labels (1.5, NaN, negative, bool), ``gt_iscrowd`` not 0/1, ``gt_areas`` negative or not
    finite, per-image lengths that differ, sequences of different lengths. pycocotools accepts
    each of these (it truncates nothing but computes with the value as given): a documented
    difference.
    """

    def __init__(self, iou_thrs: ArrayLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                 max_dets: Sequence[int] | None = None) -> None:
        self.iou_thrs, self.area_rng, self.max_dets = check_coco_params(iou_thrs, area_rng, max_dets)
        self._lock = threading.RLock()
        self.reset()

    def __getstate__(self) -> dict:
        """Pickling and ``copy.deepcopy`` drop the lock (a new one is made on load)."""
        d = self.__dict__.copy()
        d.pop("_lock", None)
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lock = threading.RLock()

    def _params(self) -> dict:
        return {"iou_thrs": self.iou_thrs, "area_rng": self.area_rng, "max_dets": self.max_dets}

    def reset(self) -> None:
        """Forget every image seen so far."""
        with self._lock:
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
        rows = _check_batch(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, gt_iscrowd, gt_areas)
        with self._lock:
            for db, ds, dl, gb, gl, gc, ga in rows:
                img = self.n_images
                for k, v in (("dt_img", np.full(len(db), img, np.int64)), ("dt_box", db),
                             ("dt_score", ds), ("dt_label", dl), ("gt_img", np.full(len(gb), img, np.int64)),
                             ("gt_box", gb), ("gt_label", gl), ("gt_crowd", gc), ("gt_area", ga)):
                    self._parts[k].append(v)
                self.n_images = img + 1

    def state(self) -> dict:
        """The accumulated state as flat arrays, plus ``n_images`` and the evaluation
        parameters (``iou_thrs``, ``area_rng``, ``max_dets`` as Python lists), for gathering
        across ranks."""
        empty = {"dt_box": np.zeros((0, 4)), "gt_box": np.zeros((0, 4)), "gt_crowd": np.zeros(0, bool),
                 "dt_score": np.zeros(0), "gt_area": np.zeros(0)}
        with self._lock:
            out = {"n_images": self.n_images}
            parts = {k: list(v) for k, v in self._parts.items()}
        for k in _STATE_KEYS:
            out[k] = np.concatenate(parts[k]) if parts[k] else empty.get(k, np.zeros(0, np.int64))
        out.update({k: np.asarray(v).tolist() for k, v in self._params().items()})
        return out

    def merge(self, other: DetectionEvaluator | dict[str, Any]) -> DetectionEvaluator:
        """Append ``other``'s images (an evaluator of either side, or a :meth:`state` dict)
        after this one's; refuses a state it cannot reconcile (see the class docstring)."""
        st = other.state() if callable(getattr(other, "state", None)) else other
        st = _check_state(st, self._params())
        with self._lock:
            offset = self.n_images
            for k in _STATE_KEYS:
                self._parts[k].append(st[k] + offset if k in ("dt_img", "gt_img") else st[k])
            self.n_images = offset + st["n_images"]
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


# ============================================================================ boundary checks
_NOT_GIVEN = object()  # an optional check's argument that the caller does not have
# One call at the top of each public array function: argument, element index and value in every
# message (ref_numpy.shared.checks.element_error); torch_impl.metrics mirrors them name for name.
#
# The input contract of the array APIs, and what the upstream releases do instead (each a
# documented difference; yolov5 v7.0, ultralytics 8.3.253 / 8.4.190, py-faster-rcnn voc_eval.py,
# pycocotools 2.0.x):
# - class labels (pred/true classes, det/gt labels, cls columns) are whole numbers in
#   [0, MAX_CLASS_LABEL] (integer dtypes, or floats with integral values; bools refused).
#   Upstream: Ultralytics 8.3 / 8.4 (and yolov5 v7.0) compare float classes as given (1.5 is a
#   class of its own, each NaN another) and return ``unique_classes.astype(int)``; the
#   confusion matrices truncate with ``int()`` / ``.long()``, so -1 lands on the background row;
#   pycocotools takes any hashable id.
# - confusion_matrix: class columns in [0, nc); upstream raises IndexError for a class >= nc.
# - image indices (det_image_ids, a state's dt_img / gt_img) are whole numbers in [0, n); the
#   toolkit truncated 0.5 to 0 and NaN to a huge negative index before.
# - boxes are finite with x1 <= x2 and y1 <= y2 (zero-size boxes allowed). Upstream: torchvision
#   / Ultralytics 8.3 / 8.4 clamp the intersection and compute with the negative area (IoU 0 for
#   a box inverted in one axis, a positive area for one inverted in both); pycocotools likewise.
# - areas (gt_areas) are finite and >= 0; flags (iscrowd, difficult, tp) are bools or 0 / 1
#   (``astype(bool)`` turned 2 and 0.5 into True before).
# - curves (compute_ap, voc_ap): finite, in [0, 1], recall non-decreasing. Upstream integrates
#   anything (``compute_ap([nan], [1.0])`` is 1.0; a decreasing recall gives negative widths).
# - ap_per_class: per class and threshold at most as many true positives as labels (recall <= 1).
# - match_predictions: IoU in [0, 1] or NaN (torchvision's 0 / 0 for two zero-area boxes; it
#   matches nothing, like the releases' eps-guarded 0), thresholds in [0, 1]; iou's shape must
#   be (len(true_classes), len(pred_classes)).
# - scalars: conf / conf_thres numbers (not NaN; -inf keeps all), iou thresholds in [0, 1],
#   max_det and nc integers (2.5 was truncated before), eps >= 0.


def _check_curve(rec_name, rec, prec_name, prec):
    """A recall / precision curve: 1-D, one length, finite, in [0, 1], recall non-decreasing
    (the upstream ``voc_ap`` / ``compute_ap`` integrate any input: a NaN gives AP 1.0, a
    decreasing recall negative widths)."""
    r = as_array(rec_name, rec, ndim=1, finite=True, floating=True)
    p = as_array(prec_name, prec, ndim=1, finite=True, floating=True)
    check_same_length(rec_name, r, prec_name, p)
    check_unit_interval(rec_name, r)
    check_unit_interval(prec_name, p)
    check_nondecreasing(rec_name, r)


def _check_ap_per_class(tp, conf, pred_cls, target_cls, eps):
    """``tp`` [N, T] 0/1 flags, ``conf`` [N] finite, class labels, ``eps`` >= 0, and per class
    and threshold no more true positives than labels (else the recall exceeds 1)."""
    t = check_flags("tp", tp, ndim=2)
    c = as_array("conf", conf, ndim=1, finite=True)
    pc = check_labels("pred_cls", pred_cls)
    tc = check_labels("target_cls", target_cls)
    check_same_length("tp", t, "conf", c)
    check_same_length("tp", t, "pred_cls", pc)
    check_eps(eps)
    classes, nt = np.unique(tc, return_counts=True)
    pos = np.minimum(np.searchsorted(classes, pc), max(len(classes) - 1, 0))
    known = classes[pos] == pc if len(classes) else np.zeros(len(pc), bool)
    counts = np.zeros((len(classes), t.shape[1]), np.int64)
    np.add.at(counts, pos[known], t[known].astype(np.int64))
    over = counts > nt[:, None]
    if over.any():
        k, j = (int(v) for v in np.argwhere(over)[0])
        raise ValueError(f"tp[:, {j}]: class {int(classes[k])} has {int(counts[k, j])} true positives but "
                         f"target_cls holds {int(nt[k])} labels of it (recall would exceed 1)")


def _check_match(pred_classes, true_classes, iou, iou_thresholds):
    """Class labels, ``iou`` [M, N] in [0, 1] or NaN (torchvision's IoU of two zero-area boxes:
    it matches nothing, as 0 would), thresholds finite in [0, 1]."""
    n = len(check_labels("pred_classes", pred_classes))
    m = len(check_labels("true_classes", true_classes))
    a = as_array("iou", iou, ndim=2, floating=True)
    if a.shape != (m, n):
        raise ValueError(f"iou: expected shape (len(true_classes), len(pred_classes)) = ({m}, {n}), "
                         f"got {a.shape}")
    with np.errstate(invalid="ignore"):
        check_unit_interval("iou", np.where(np.isnan(a), 0.0, a))
    check_unit_interval("iou_thresholds", as_array("iou_thresholds", iou_thresholds, ndim=1, floating=True))


def _check_confusion(detections, labels, nc, conf, iou_thres):
    """Shapes [N, 6] / [M, 5], ``nc`` a count, finite values, boxes x1 <= x2 and y1 <= y2,
    class columns in [0, nc), ``conf`` a number, ``iou_thres`` in [0, 1]. yolov5 v7.0 and
    ultralytics 8.x truncate fractional classes, index the background row with -1 and raise
    IndexError for a class >= nc."""
    d = as_array("detections", detections, ndim=2, floating=True)
    lab = as_array("labels", labels, ndim=2, floating=True)
    if d.shape[1] != 6 or lab.shape[1] != 5:
        raise ValueError(f"detections, labels: expected [N, 6] and [M, 5], got "
                         f"{d.shape} and {lab.shape}")
    nc = check_count("nc", nc)
    check_number("conf", conf)
    check_number("iou_thres", iou_thres, 0.0, 1.0)
    as_array("detections", d, finite=True)
    as_array("labels", lab, finite=True)
    check_box_order("detections", d[:, :4], suffix=", 0:4")
    check_box_order("labels", lab[:, 1:], suffix=", 1:5")
    check_labels("detections", d[:, 5], nc=nc, suffix=", 5")
    check_labels("labels", lab[:, 0], nc=nc, suffix=", 0")


def _voc_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult,
               iou_threshold=_NOT_GIVEN):
    """The data arguments of :func:`voc_evaluate` / :func:`ultralytics_evaluate`: per-image
    sequences of one length, boxes finite and not inverted, class labels, image indices into
    ``gt_boxes``, difficult flags 0/1, per-image lengths equal. Returns the detections as
    (boxes, scores, int64 labels, int64 image indices)."""
    check_sequence("gt_boxes", gt_boxes)
    check_sequence("gt_labels", gt_labels)
    check_same_length("gt_boxes", gt_boxes, "gt_labels", gt_labels)
    if gt_difficult is not None:
        check_sequence("gt_difficult", gt_difficult)
        check_same_length("gt_boxes", gt_boxes, "gt_difficult", gt_difficult)
    if iou_threshold is not _NOT_GIVEN:
        check_number("iou_threshold", iou_threshold, 0.0, 1.0)
    det_boxes = check_boxes("det_boxes", det_boxes, ndim=2)
    check_box_order("det_boxes", det_boxes)
    det_scores = as_array("det_scores", det_scores, ndim=1, finite=True)
    det_labels = check_labels("det_labels", det_labels)
    det_image_ids = check_indices("det_image_ids", det_image_ids, len(gt_boxes), "gt_boxes")
    for name, v in (("det_scores", det_scores), ("det_labels", det_labels),
                    ("det_image_ids", det_image_ids)):
        check_same_length("det_boxes", det_boxes, name, v)
    for i in range(len(gt_boxes)):
        gb = check_boxes(f"gt_boxes[{i}]", gt_boxes[i], ndim=2)
        check_box_order(f"gt_boxes[{i}]", gb)
        gl = check_labels(f"gt_labels[{i}]", gt_labels[i])
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_labels[{i}]", gl)
        if gt_difficult is not None:
            gd = check_flags(f"gt_difficult[{i}]", gt_difficult[i])
            check_same_length(f"gt_boxes[{i}]", gb, f"gt_difficult[{i}]", gd)
    return det_boxes, det_scores, det_labels, det_image_ids


def _ultralytics_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult,
                       conf_thres, max_det, iou_thresholds, nc):
    """:func:`_voc_check` plus ``conf_thres`` a number (not NaN), ``max_det`` an integer >= 1
    (2.5 is refused, not truncated), ``iou_thresholds`` in [0, 1], ``nc`` a count or None."""
    out = _voc_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult)
    check_number("conf_thres", conf_thres)
    check_count("max_det", max_det, 1)
    if iou_thresholds is not None:
        check_unit_interval("iou_thresholds", as_array("iou_thresholds", iou_thresholds, ndim=1, finite=True,
                                                       floating=True))
    if nc is not None:
        check_count("nc", nc)
    return out


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

    Raises:
        ValueError: naming the argument and element: a curve not finite, outside [0, 1], or a
            decreasing ``rec`` (``voc_eval.py``'s ``voc_ap`` integrates any input).
    """
    _check_curve("rec", rec, "prec", prec)
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

    Raises:
        ValueError: naming the argument, the element and its value: boxes not finite or
            inverted, labels that are not class labels (1.5, NaN, -1), ``det_image_ids`` not in
            [0, len(gt_boxes)), difficult flags not 0/1, per-image lengths that differ,
            ``iou_threshold`` outside [0, 1] (``voc_eval.py`` computes with all of these).
    """
    det_boxes, det_scores, det_labels, det_image_ids = _voc_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult, iou_threshold)
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


# ============================================================================ YOLOv5 / Ultralytics 8.3, 8.4

def _smooth(y, f=0.05):
    """Box filter of width ``nf = round(len(y) * f * 2) // 2 + 1`` with edge padding (yolov5 v7.0
    and ultralytics 8.3 / 8.4 ``smooth``), summed in a fixed order (window offsets left to right) so that it is
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
               version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AP of one recall/precision curve, as ``compute_ap`` of the chosen release.

    Args:
        recall (ndarray[N]), precision (ndarray[N]): the curve in confidence order.
        method (str): 'interp' (101-point ``np.interp`` then trapezoid, what every release
            runs) or 'continuous' (``sum(Δrecall * precision)`` where recall changes: the
            switched-off branch of yolov5 v7.0 / ultralytics 8.3.253; 8.4.190 dropped it, here
            it integrates 8.4's end points).
        version (str): one of ``ULTRALYTICS_VERSIONS``; default '8.3' (ultralytics 8.3.253).
            'yolov5' (v7.0) and '8.3': ``mrec = [0, r, 1]``, ``mpre = [1, p, 0]``;
            '8.4' (ultralytics 8.4.190): ``mrec = [0, r, r[-1], 1]``, ``mpre = [1, p, 0, 0]``
            (precision drops to 0 after the last recall); an empty curve uses ``r[-1] = 1``
            there (``mrec = [0, 1, 1]``, ``mpre = [1, 0, 0]``). An empty curve gives AP 0.5
            in every release (the line from (0, 1) to (1, 0)).

    Returns:
        tuple: (ap ndarray[], mpre ndarray[N+2 or N+3] envelope, mrec ndarray[N+2 or N+3]).
        Example: recall [0.5], precision [1.0] gives 0.750 ('yolov5', '8.3') and 0.495 ('8.4').

    Raises:
        ValueError: naming the argument and element: a curve not finite, outside [0, 1], or a
            decreasing ``recall`` (every release integrates it: ``compute_ap([nan], [1])`` = 1).
    """
    _check_curve("recall", recall, "precision", precision)
    recall = as_array("recall", recall, ndim=1, floating=True).astype(np.float64)
    precision = as_array("precision", precision, ndim=1, floating=True).astype(np.float64)
    check_same_length("recall", recall, "precision", precision)
    if method not in ("interp", "continuous"):
        raise ValueError(f"method: expected 'interp' or 'continuous', got {method!r}")
    check_ultralytics_version(version)
    if version != "8.4":
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([1.0], precision, [0.0]))
    else:
        last = recall[-1] if len(recall) else 1.0
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
                 version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
                 ) -> tuple[np.ndarray, ...]:
    """Per-class AP at each IoU threshold and P/R/F1 at the best mean-F1 confidence, as
    ``ap_per_class`` of yolov5 v7.0 / ultralytics 8.3.253 / 8.4.190.

    Args:
        tp (bool ndarray[N, T]): per prediction, correct at each IoU threshold.
        conf (ndarray[N]): confidences. pred_cls (int ndarray[N]), target_cls (int ndarray[M]).
        eps (float): as every release (recall ``tpc / (n_l + eps)``, F1 ``2pr / (p + r + eps)``).
        version (str): one of ``ULTRALYTICS_VERSIONS``, default '8.3' (ultralytics 8.3.253).
            The three releases differ only in :func:`compute_ap`'s end points ('yolov5' =
            '8.3'); 8.4.190's explicit ``argmax ... if nc else 0`` for no classes gives the
            same (empty) outputs as the older releases' argmax of a NaN mean.

    Returns:
        tuple: (tp ndarray[C], fp ndarray[C], p ndarray[C], r ndarray[C], f1 ndarray[C],
        ap ndarray[C, T], classes int ndarray[C]), C = classes present in ``target_cls``
        (sorted); tp/fp are the rounded counts at the chosen confidence.

    Rules: predictions sorted by -conf (stable; the releases' quicksort leaves ties unspecified);
    per class ``recall = tpc / (n_l + eps)``, ``precision = tpc / (tpc + fpc)``; classes with no
    prediction keep AP 0 and P = R = 0 curves; the P and R curves at 1000 confidences
    ``np.interp(-px, -conf, ·, left=0 / 1)``; the confidence index is the argmax of the mean F1
    curve smoothed with a box filter of 10% (see :func:`_smooth`; the class mean summed class by
    class in order). No classes in ``target_cls``: all outputs empty.

    Raises:
        ValueError: naming the argument and element: ``tp`` not 0/1, classes that are not class
            labels (the releases group 1.5 and each NaN as classes of their own), a class with
            more true positives than labels at a threshold (recall > 1), ``eps`` < 0.
    """
    _check_ap_per_class(tp, conf, pred_cls, target_cls, eps)
    tp = as_array("tp", tp, ndim=2)
    conf = as_array("conf", conf, ndim=1, finite=True, floating=True).astype(np.float64)
    pred_cls = as_array("pred_cls", pred_cls, ndim=1).astype(np.int64)
    target_cls = as_array("target_cls", target_cls, ndim=1).astype(np.int64)
    check_same_length("tp", tp, "conf", conf)
    check_same_length("tp", tp, "pred_cls", pred_cls)
    check_ultralytics_version(version)  # checked up front, whatever the data
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


def _match_greedy(iou, thresholds):
    """ultralytics 8.4.190's matching on ``iou`` [M, N] (wrong-class pairs already 0):
    predictions in index order (sequential: a claimed label is gone for the later ones), all
    thresholds at once. Returns bool [N, T]."""
    m, n = iou.shape
    correct = np.zeros((n, len(thresholds)), dtype=bool)
    if m == 0 or len(thresholds) == 0:
        return correct
    matched = np.zeros((m, len(thresholds)), dtype=bool)          # labels claimed, per threshold
    cols = np.arange(len(thresholds))
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])          # [M, T]
        k = available.argmax(0)                                    # first on ties
        correct[j] = available[k, cols] >= thresholds
        matched[k, cols] |= correct[j]
    return correct


def match_predictions(pred_classes: ArrayLike, true_classes: ArrayLike, iou: ArrayLike, iou_thresholds: ArrayLike,
                      version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION) -> np.ndarray:
    """Which predictions are correct at each IoU threshold (yolov5 v7.0 ``process_batch``,
    ultralytics 8.3.253 / 8.4.190 ``BaseValidator.match_predictions``, ``use_scipy=False``).

    Args:
        pred_classes (int ndarray[N]): in descending confidence order (as NMS returns them;
            the '8.4' rule and the label-side choice of the others depend on this order).
        true_classes (int ndarray[M]).
        iou (ndarray[M, N]): IoU of every label (rows) with every prediction (columns).
        iou_thresholds (ndarray[T]).
        version (str): one of ``ULTRALYTICS_VERSIONS``, default '8.3' (ultralytics 8.3.253).

    Returns:
        bool ndarray[N, T].

    Rules, per threshold. 'yolov5' (v7.0): candidate pairs have ``iou >= threshold`` and equal
    classes; sorted by IoU descending (stable: ties keep (label, prediction) order; the
    releases' reversed quicksort leaves them unspecified); one pair kept per prediction (the
    first), then, WITHOUT re-sorting (the survivors are in prediction order), one pair per
    label (the first, so the lowest-index prediction, not the best IoU). '8.3' (8.3.253): the
    same on ``iou * (classes equal)``, so a threshold <= 0 also admits wrong-class pairs (IoU
    0); identical to 'yolov5' for thresholds > 0. '8.4' (8.4.190): greedy in prediction
    (confidence) order, sequential: each prediction takes the unclaimed label of largest
    ``iou * (classes equal)`` (the first on ties) and is correct, claiming it, when that
    value is ``>= threshold``. Example, one class, threshold 0.5, IoU ``[[0.9, 0.6],
    [0, 0.55]]``: 'yolov5' / '8.3' give [True, False] (label 0's lowest-index prediction takes
    it, prediction 1 lost its only pair), '8.4' gives [True, True].

    Raises:
        ValueError: naming the argument and element: classes that are not class labels (the
            releases compare float classes as given), IoU outside [0, 1] (NaN, torchvision's IoU
            of two zero-area boxes, is accepted and matches nothing), thresholds outside [0, 1],
            ``iou`` not of shape (M, N).
    """
    _check_match(pred_classes, true_classes, iou, iou_thresholds)
    pred_classes = as_array("pred_classes", pred_classes, ndim=1)
    true_classes = as_array("true_classes", true_classes, ndim=1)
    iou = as_array("iou", iou, ndim=2)
    iou_thresholds = as_array("iou_thresholds", iou_thresholds, ndim=1)
    if iou.shape != (len(true_classes), len(pred_classes)):
        raise ValueError(f"iou: expected shape ({len(true_classes)}, {len(pred_classes)}), "
                         f"got {iou.shape}")
    check_ultralytics_version(version)
    correct = np.zeros((len(pred_classes), len(iou_thresholds)), dtype=bool)
    same = true_classes[:, None] == pred_classes[None, :]
    if version == "8.4":
        return _match_greedy(iou * same, iou_thresholds)
    key = iou if version == "yolov5" else iou * same  # [M, N] the value compared and sorted
    for ti, thr in enumerate(iou_thresholds):
        li, di = np.nonzero((key >= thr) & same if version == "yolov5" else key >= thr)
        if len(li) == 0:
            continue
        s = np.argsort(-key[li, di], kind="stable")
        li, di = li[s], di[s]
        _, first = np.unique(di, return_index=True)    # best pair per prediction, by prediction
        li, di = li[first], di[first]
        _, first = np.unique(li, return_index=True)    # then first pair per label, no re-sort
        correct[di[first], ti] = True
    return correct


def confusion_matrix(detections: ArrayLike, labels: ArrayLike, nc: int, conf: float = 0.25, iou_thres: float = 0.45,
                     version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION) -> np.ndarray:
    """One image's contribution to ``ConfusionMatrix.process_batch`` of yolov5 v7.0 /
    ultralytics 8.3.253 / 8.4.190 (sum it over images).

    Args:
        detections (ndarray[N, 6]): x1, y1, x2, y2, confidence, class.
        labels (ndarray[M, 5]): class, x1, y1, x2, y2.
        nc (int): number of classes; index ``nc`` is the background.
        conf (float): detections with confidence ``> conf`` are kept ('8.3' replaces
            ``conf == 0.001``, the validator's default, by 0.25, as 8.3.253 does).
        iou_thres (float): pairs with IoU ``> iou_thres`` match (class-agnostic).
        version (str): one of ``ULTRALYTICS_VERSIONS``, default '8.3' (ultralytics 8.3.253).

    Returns:
        ndarray[nc + 1, nc + 1] float64, indexed [predicted, true].

    Rules. Matching, 'yolov5' and '8.3': pairs sorted by IoU descending (stable), one per
    detection (the best), re-sorted by IoU, one per label (the best); '8.4': greedy in
    confidence order (stable), each detection with some IoU ``> iou_thres`` takes the label of
    largest IoU still unclaimed (the first on ties; a claimed label's row is zeroed). Counts: a
    label with a match counts at [class of the matched detection, label class], else at
    [nc, label class]; an unmatched detection counts at [its class, nc], except in 'yolov5'
    when the image has no match at all (no detection is counted then: the v7.0 quirk). An
    image without labels counts each kept detection at [its class, nc] in '8.3' / '8.4' and
    nothing in 'yolov5' (v7.0's ``val.py`` never calls it then; its result here is the zero
    matrix). IoU: :func:`ref_numpy.boxes.box_iou` (torchvision convention, float64), where the
    releases add 1e-7 to the union in float32.

    Raises:
        ValueError: naming the table, row, column and value: a class outside [0, nc) (the
            releases raise IndexError for >= nc, truncate 1.7 to 1 and count -1 on the background
            row), inverted boxes, non-finite values, ``nc`` not a count, ``conf`` NaN,
            ``iou_thres`` outside [0, 1].
    """
    _check_confusion(detections, labels, nc, conf, iou_thres)
    detections = as_array("detections", detections, ndim=2, floating=True)
    labels = as_array("labels", labels, ndim=2, floating=True)
    if detections.shape[1] != 6 or labels.shape[1] != 5:
        raise ValueError(f"detections, labels: expected [N, 6] and [M, 5], got "
                         f"{detections.shape} and {labels.shape}")
    check_ultralytics_version(version)
    if version == "8.3" and conf == 0.001:
        conf = 0.25
    matrix = np.zeros((nc + 1, nc + 1))
    detections = detections[detections[:, 4] > conf]
    gt_classes = labels[:, 0].astype(np.int64)
    det_classes = detections[:, 5].astype(np.int64)
    iou = box_iou(labels[:, 1:], detections[:, :4])
    if version == "8.4":
        li, di = _confusion_greedy(iou, detections[:, 4], iou_thres)
    else:
        li, di = np.nonzero(iou > iou_thres)
    if len(li) > 1 and version != "8.4":
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
    if any_match or version != "yolov5":
        for i, dc in enumerate(det_classes):
            if not np.any(di == i):
                matrix[dc, nc] += 1
    return matrix


def _confusion_greedy(iou, scores, iou_thres):
    """ultralytics 8.4.190 ``ConfusionMatrix.process_batch`` matching: (label index [K],
    detection index [K]) of the matches. Sequential over the detections that overlap some label
    by more than ``iou_thres``, in descending score order (stable)."""
    iou = iou.copy()
    gt_match = np.full(iou.shape[0], -1)
    cand = np.flatnonzero((iou > iou_thres).any(0))
    for d in cand[np.argsort(-scores[cand], kind="stable")]:
        g = iou[:, d].argmax()
        if iou[g, d] > iou_thres:
            gt_match[g] = d
            iou[g] = 0
    li = np.flatnonzero(gt_match >= 0)
    return li, gt_match[li]


# ============================================================================ YOLOv5 / Ultralytics 8.3, 8.4: protocol

ULTRALYTICS_IOU_THRS = np.linspace(0.5, 0.95, 10)  # ultralytics ``DetectionValidator.iouv``


@dataclass
class UltralyticsResult:
    """What :func:`ultralytics_evaluate` returns (the numbers of ultralytics 8.3 / 8.4 ``DetMetrics``).

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
            and ``ap.mean(1)`` (ultralytics 8.3 / 8.4 ``box.mp``, ``box.mr``, ``box.map50``,
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
    """Per image, the predictions the releases' NMS (yolov5 v7.0, ultralytics 8.3 / 8.4) returns:
    ``score > conf_thres``, sorted by score descending (stable on ties), the first ``max_det``.
    A list of index arrays."""
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
                         iou_thresholds: ArrayLike | None = None,
                         version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                         nc: int | None = None) -> UltralyticsResult:
    """The detection validation of yolov5 v7.0 ``val.py`` / ultralytics 8.3.253 and 8.4.190
    ``DetectionValidator`` on given predictions.

    Args:
        gt_boxes (sequence of ndarray[G_i, 4]): xyxy GT boxes per image, pixels (continuous, no
            +1).
        gt_labels (sequence of int ndarray[G_i]): GT classes per image.
        det_boxes (ndarray[N, 4]): xyxy detections of all images.
        det_scores (ndarray[N]), det_labels (int ndarray[N]).
        det_image_ids (int ndarray[N]): index of each detection's image in ``gt_boxes``.
        gt_difficult (sequence of bool ndarray[G_i] | None): difficult GTs are dropped, as
            the ultralytics VOC converter (8.3 and 8.4) does (so detections on them are false
            positives).
        conf_thres (float): predictions with ``score > conf_thres`` are kept (NMS ``conf``;
            ``-inf`` keeps all).
        max_det (int): predictions kept per image, highest scores first (NMS ``max_det``).
        iou_thresholds (ndarray[T] | None): default ``np.linspace(0.5, 0.95, 10)``.
        version (str): one of ``ULTRALYTICS_VERSIONS``, default '8.3' (ultralytics 8.3.253);
            passed to :func:`match_predictions`, :func:`confusion_matrix` and
            :func:`ap_per_class`. The confusion matrix runs at conf 0.25 ('yolov5': v7.0's
            fixed ``ConfusionMatrix(conf=0.25)``) or at ``conf_thres`` ('8.3', '8.4': the
            validator passes ``args.conf``; 8.3.253 turns 0.001 into 0.25), IoU 0.45.
        nc (int | None): number of classes of the confusion matrix (default: 1 + the largest
            label among GTs and detections, 0 if none).

    Returns:
        UltralyticsResult.

    Steps: (1) per image the NMS filters (:func:`_ultralytics_keep`; the order matters:
    :func:`match_predictions` gives a label to the lowest-index candidate, the highest-scored
    only in this order); (2) per image, IoU of every non-difficult GT with every kept prediction
    (:func:`ref_numpy.boxes.box_iou`, torchvision convention) and :func:`match_predictions`; (3)
    :func:`ap_per_class` on all images' matches; (4) :func:`confusion_matrix` per image,
    summed. Crowd GTs count as ordinary GTs (no release has crowds).
    Convention: yolov5 v7.0 ``val.py`` / ultralytics 8.3.253, 8.4.190 ``DetectionValidator``
    on already-decoded, already-NMSed predictions (no letterbox, no NMS here). Known
    difference: the IoU is torchvision's in float64, the releases' ``box_iou`` adds 1e-7 to
    the union in float32 (a pair within ~1e-7 of a threshold can fall the other way).

    Raises:
        ValueError: as :func:`voc_evaluate` for the data; ``conf_thres`` NaN, ``max_det`` not an
            integer >= 1 (2.5 is refused, not truncated), ``iou_thresholds`` outside [0, 1],
            ``nc`` not a count or not above the largest label.
    """
    det_boxes, det_scores, det_labels, det_image_ids = _ultralytics_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult, conf_thres, max_det,
        iou_thresholds, nc)
    if np.isnan(conf_thres):
        raise ValueError(f"conf_thres: expected a number (-inf keeps every prediction), got {conf_thres!r}")
    if int(max_det) < 1:
        raise ValueError(f"max_det: expected >= 1, got {max_det!r}")
    check_ultralytics_version(version)
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
    cm_conf = 0.25 if version == "yolov5" else float(conf_thres)
    for i, p in enumerate(kept):
        g_box, g_lab = gb[i][~gd[i]], gl[i][~gd[i]]                                  # [M, 4]
        if len(p) and len(g_box):
            iou = box_iou(g_box, det_boxes[p])                                       # [M, N]
            tp.append(match_predictions(det_labels[p], g_lab, iou, thr, version=version))
        else:
            tp.append(np.zeros((len(p), len(thr)), dtype=bool))
        dets = np.concatenate([det_boxes[p], det_scores[p, None],
                               det_labels[p, None].astype(np.float64)], axis=1)       # [N, 6]
        labs = np.concatenate([g_lab[:, None].astype(np.float64), g_box], axis=1)     # [M, 5]
        cm += confusion_matrix(dets, labs, nc, conf=cm_conf, version=version)
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
