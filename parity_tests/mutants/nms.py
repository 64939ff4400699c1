"""Wrong NMS code, as tutorials write it."""
from __future__ import annotations

import numpy as np

from parity_tests.mutants import Mutant


def _iou(b, i, js, eps=0.0, plus1=0.0):
    x1 = np.maximum(b[i, 0], b[js, 0])
    y1 = np.maximum(b[i, 1], b[js, 1])
    x2 = np.minimum(b[i, 2], b[js, 2])
    y2 = np.minimum(b[i, 3], b[js, 3])
    inter = np.clip(x2 - x1 + plus1, 0, None) * np.clip(y2 - y1 + plus1, 0, None)
    area = (b[:, 2] - b[:, 0] + plus1) * (b[:, 3] - b[:, 1] + plus1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area[i] + area[js] - inter + eps)


def _greedy(boxes, scores, thr, order, suppress=lambda iou, t: iou > t, **kw):
    b = np.asarray(boxes, float)
    order = list(order)
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            iou = _iou(b, i, np.array(order), **kw)
            order = [j for j, v in zip(order, iou) if not suppress(v, thr)]
    return np.array(keep, dtype=np.int64)


def _stable(scores):
    s = np.asarray(scores, float)
    return np.lexsort((-s, ~np.isnan(s)))


def nms_unstable_ties(boxes, scores, iou_threshold):
    """np.argsort(-scores): quicksort (SIMD sort on x86) is not stable; ties reorder."""
    s = np.asarray(scores, float)
    # the instability made deterministic: equal scores visited in reverse index order
    order = np.lexsort((-np.arange(len(s)), -s))
    return _greedy(boxes, s, iou_threshold, order)


def nms_ge(boxes, scores, iou_threshold):
    """Suppresses iou >= thr."""
    return _greedy(boxes, scores, iou_threshold, _stable(scores), lambda v, t: v >= t)


def nms_eps(boxes, scores, iou_threshold):
    """1e-6 in the union (works in pixels, breaks on normalised boxes)."""
    return _greedy(boxes, scores, iou_threshold, _stable(scores), eps=1e-6)


def nms_keep_below(boxes, scores, iou_threshold):
    """Keeps where iou <= thr: a NaN IoU (two zero-area boxes) suppresses."""
    return _greedy(boxes, scores, iou_threshold, _stable(scores), lambda v, t: not v <= t)


def nms_from_all(boxes, scores, iou_threshold):
    """Every higher-scored box suppresses, even one already suppressed."""
    b, s = np.asarray(boxes, float), np.asarray(scores, float)
    order = _stable(s)
    keep = []
    for pos, j in enumerate(order):
        earlier = order[:pos]
        if len(earlier) == 0 or not np.any(_iou(b, j, earlier) > iou_threshold):
            keep.append(j)
    return np.array(keep, dtype=np.int64)


def nms_ascending(boxes, scores, iou_threshold):
    """np.argsort(scores) without the minus sign."""
    s = np.asarray(scores, float)
    return _greedy(boxes, s, iou_threshold, np.argsort(s, kind="stable"))


def nms_xywh(boxes, scores, iou_threshold):
    """Written for COCO xywh boxes, called with xyxy."""
    b = np.asarray(boxes, float)
    b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    return _greedy(b, scores, iou_threshold, _stable(scores))


def nms_unsorted_output(boxes, scores, iou_threshold):
    """Right boxes, returned in index order."""
    return np.sort(_greedy(boxes, scores, iou_threshold, _stable(scores)))


def nms_voc(boxes, scores, iou_threshold):
    """VOC +1 widths: a convention."""
    return _greedy(boxes, scores, iou_threshold, _stable(scores), plus1=1.0)


def batched_class_order(boxes, scores, idxs, iou_threshold):
    """NMS per class, results concatenated class by class."""
    b, s, c = np.asarray(boxes, float), np.asarray(scores, float), np.asarray(idxs)
    keep = []
    for k in np.unique(c):
        m = np.flatnonzero(c == k)
        keep.extend(m[_greedy(b[m], s[m], iou_threshold, _stable(s[m]))])
    return np.array(keep, dtype=np.int64)


def batched_small_offset(boxes, scores, idxs, iou_threshold):
    """The offset trick with an offset smaller than the boxes: classes still overlap."""
    b = np.asarray(boxes, float) + np.asarray(idxs)[:, None] * 100.0
    return _greedy(b, scores, iou_threshold, _stable(scores))


def batched_agnostic(boxes, scores, idxs, iou_threshold):
    """Ignores idxs: class-agnostic (a convention)."""
    return _greedy(boxes, scores, iou_threshold, _stable(scores))


def batched_ge(boxes, scores, idxs, iou_threshold):
    b = np.asarray(boxes, float) + np.asarray(idxs)[:, None] * 1e5
    return _greedy(b, scores, iou_threshold, _stable(scores), lambda v, t: v >= t)


MUTANTS = [
    Mutant("nms_unstable_ties", "nms.nms", nms_unstable_ties, "tie order", defect="unstable sort"),
    Mutant("nms_ge", "nms.nms", nms_ge, ">=", defect=">= for >"),
    Mutant("nms_eps", "nms.nms", nms_eps, "eps", defect="eps in the union"),
    Mutant("nms_keep_below", "nms.nms", nms_keep_below, "NaN IoU", defect="keep where iou <= thr"),
    Mutant("nms_from_all", "nms.nms", nms_from_all, "suppressed boxes", defect="suppressed boxes suppress"),
    Mutant("nms_ascending", "nms.nms", nms_ascending, "ascending", defect="ascending sort"),
    Mutant("nms_xywh", "nms.nms", nms_xywh, "xywh", defect="xyxy read as xywh"),
    Mutant("nms_unsorted_output", "nms.nms", nms_unsorted_output, "order", defect="index order output"),
    Mutant("batched_class_order", "nms.batched_nms", batched_class_order, "class order",
           defect="class-wise NMS returned in class order"),
    Mutant("batched_small_offset", "nms.batched_nms", batched_small_offset, "unexplained",
           defect="class offset smaller than the boxes"),
    Mutant("batched_ge", "nms.batched_nms", batched_ge, ">=", defect=">= for >"),
]

CONVENTIONS = [
    Mutant("nms_voc", "nms.nms", nms_voc, "+1"),
    Mutant("batched_agnostic", "nms.batched_nms", batched_agnostic, "class-agnostic"),
]
