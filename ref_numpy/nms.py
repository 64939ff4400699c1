"""Non-maximum suppression: the NumPy reference (the specification).

Greedy NMS is sequential by definition (whether box j survives depends on which earlier boxes
survived), so the functions here are written as the plain greedy loop over boxes in score order,
vectorised only over the boxes a kept box is compared with. ``torch_impl.nms`` reproduces the
same results with a matrix formulation.

Conventions shared by every function here (they are torchvision's CPU kernel's):

- boxes are ``xyxy`` in any unit; areas are ``(x2 - x1) * (y2 - y1)`` in the input dtype, not
  clamped, no "+1 pixel";
- the pairwise IoU is computed in the input dtype in torchvision's order of operations:
  ``w = max(0, min(x2) - max(x1))``, likewise ``h``, ``inter = w * h``,
  ``iou = inter / ((area_i + area_j) - inter)``, no eps;
- boxes are visited in a **stable** descending sort of the scores (ties keep input order) with
  **NaN scores first**;
- box j is suppressed by a kept box i when ``iou > iou_threshold`` **strictly**, the comparison
  done in float64 (a float32 IoU is widened, the threshold is not rounded to float32); a NaN IoU
  or a NaN threshold never suppresses;
- degenerate boxes (``x2 <= x1`` or ``y2 <= y1``) have no intersection with anything, so their IoU
  is 0 (or NaN for two boxes whose areas sum to 0, e.g. two zero-area boxes); with a threshold
  >= 0 they are never suppressed and never suppress (identical zero-area boxes are all kept);
- float16/bfloat16 boxes are computed in float32 (torchvision raises for them on CPU), integer
  boxes in float64.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array, check_boxes
from ref_numpy.boxes import box_iou
from ref_numpy.shared.checks import check_count, check_real, check_same_length, check_unit, \
    check_yolo_version
# MAX_WH: YOLOv5 v7.0 / Ultralytics 8.3 / 8.4 class offset for class-aware NMS (boxes shifted by cls * max_wh);
# DIOU_EPS: added to the enclosing-box diagonal in DIoU-NMS (torchvision's distance_box_iou eps).
from ref_numpy.shared.constants import DIOU_EPS, MAX_WH  # noqa: F401 (public constants)


# ----------------------------------------------------------------------------- private helpers

def _upcast(boxes: np.ndarray) -> np.ndarray:
    """float16 -> float32, integers -> float64, float32/float64 unchanged."""
    if boxes.dtype.kind != "f":
        return boxes.astype(np.float64)
    if boxes.dtype.itemsize < 4:
        return boxes.astype(np.float32)
    return boxes


def _check_boxes_scores(boxes, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validated (boxes [N, 4] finite, scores [N]); NaN scores are allowed (they sort first)."""
    boxes = _upcast(check_boxes("boxes", boxes, ndim=2))
    scores = as_array("scores", scores, ndim=1, floating=True)  # integers: float64
    check_same_length("boxes", boxes, "scores", scores)
    return boxes, scores


def _check_idxs(idxs, boxes: np.ndarray) -> np.ndarray:
    idxs = as_array("idxs", idxs, ndim=1)
    if idxs.dtype.kind not in "iu":
        raise ValueError(f"idxs: expected an integer array, got dtype {idxs.dtype}")
    check_same_length("boxes", boxes, "idxs", idxs)
    return idxs.astype(np.int64)


def _no_boxes(boxes, scores, idxs) -> bool:
    """True for zero boxes ([0, 4]) with ``scores`` or ``idxs`` None: torchvision's
    ``batched_nms`` returns an empty result before it looks at them."""
    if scores is not None and idxs is not None:
        return False
    return check_boxes("boxes", boxes, ndim=2).shape[0] == 0


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Stable descending order of ``scores`` with NaN first (ties keep input order)."""
    # lexsort sorts by the last key first: NaN (key 0) before numbers, then -score ascending.
    return np.lexsort((-scores, ~np.isnan(scores))).astype(np.int64)


def _overlaps(boxes: np.ndarray, i: int, js: np.ndarray) -> np.ndarray:
    """IoU of box ``i`` with boxes ``js``: :func:`ref_numpy.boxes.box_iou`, torchvision's kernel
    (``nms_kernel.cpp`` computes the same values: ``inter / ((area_i + area_j) - inter)`` in the
    input dtype, areas not clamped)."""
    return box_iou(boxes[i:i + 1], boxes[js])[0]


def _centre_penalty(boxes: np.ndarray, i: int, js: np.ndarray, beta: float) -> np.ndarray:
    """DIoU-NMS's penalty ``(d^2 / (c^2 + eps)) ** beta`` of box ``i`` against boxes ``js``.

    ``d`` is the distance between the centres ``((x1 + x2) / 2, (y1 + y2) / 2)`` and ``c`` the
    diagonal of the smallest enclosing box (not clamped, as YOLOv5's DIoU-NMS)."""
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    dx = (x1[i] + x2[i]) / 2 - (x1[js] + x2[js]) / 2
    dy = (y1[i] + y2[i]) / 2 - (y1[js] + y2[js]) / 2
    cw = np.maximum(x2[i], x2[js]) - np.minimum(x1[i], x1[js])
    ch = np.maximum(y2[i], y2[js]) - np.minimum(y1[i], y1[js])
    d2 = dx * dx + dy * dy
    c2 = cw * cw + ch * ch
    return (d2 / (c2 + DIOU_EPS)) ** beta


def _above(values: np.ndarray, threshold: float) -> np.ndarray:
    """``values > threshold`` compared in float64 (NaN -> False), as torchvision's kernel does."""
    return values.astype(np.float64) > threshold


def _greedy(order: np.ndarray, suppresses) -> np.ndarray:
    """The sequential greedy loop: visit boxes in ``order``; a box not yet suppressed is kept and
    suppresses every later, not yet suppressed box ``j`` with ``suppresses(i, js)[j]``.

    A Python loop over the kept boxes because greedy NMS is sequential."""
    suppressed = np.zeros(order.shape[0], dtype=bool)  # indexed by box, not by position
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        later = order[pos + 1:]
        later = later[~suppressed[later]]
        if later.size:
            suppressed[later[suppresses(i, later)]] = True
    return np.asarray(keep, dtype=np.int64)


# ----------------------------------------------------------------------------- public API

def nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, exactly as ``torchvision.ops.nms`` on CPU.

    Args:
        boxes (ndarray[N, 4]): xyxy boxes, finite.
        scores (ndarray[N]): scores; NaN allowed (NaN sorts before every number).
        iou_threshold (float): boxes with IoU ``> iou_threshold`` (strict, compared in float64)
            with a kept, higher-ranked box are discarded.

    Returns:
        ndarray[K] int64: indices of the kept boxes in decreasing score order (ties: input
        order; NaN scores first). ``N = 0`` gives an empty int64 array.

    Invariant: the result is a subsequence of the stable descending score order; kept boxes have
    pairwise IoU ``<= iou_threshold`` (or NaN); every discarded box has IoU ``> iou_threshold``
    with a kept box ranked before it; ``nms`` of the kept boxes keeps them all.
    Degenerate boxes (``x2 <= x1`` or ``y2 <= y1``) intersect nothing: IoU 0 with a box of
    non-zero area sum, NaN (0/0) with another zero-area box, so with ``iou_threshold >= 0`` they
    are always kept and suppress nothing.
    Convention: torchvision ``nms_kernel.cpp`` (CPU): stable sort, areas not clamped, no +1.
    Raises ValueError for boxes not [N, 4] or not finite, scores not [N], lengths that differ.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    threshold = check_real("iou_threshold", iou_threshold)
    return _greedy(_score_order(scores),
                   lambda i, js: _above(_overlaps(boxes, i, js), threshold))


def batched_nms(boxes: ArrayLike, scores: ArrayLike | None, idxs: ArrayLike | None,
                iou_threshold: float) -> np.ndarray:
    """Greedy NMS within each category: boxes of different ``idxs`` never suppress each other.

    Args:
        boxes (ndarray[N, 4]): xyxy boxes, finite.
        scores (ndarray[N]): scores; NaN allowed (sorts first).
        idxs (ndarray[N] int): category of each box.
        iou_threshold (float): as in :func:`nms`.

    Returns:
        ndarray[K] int64: kept indices in the stable descending score order of all boxes (NaN
        first, ties by input index).

    Zero boxes give an empty int64 array, also with ``scores`` or ``idxs`` None (torchvision
    returns before looking at them); otherwise None is rejected as any bad array.
    Convention: per category this is :func:`nms`; the result equals ``torchvision.ops.
    batched_nms`` whenever torchvision takes its coordinate-offset path exactly (non-negative
    coordinates, no float32 rounding of the offsets, ``boxes.numel() <= 4000`` on CPU). On its
    per-class path (``numel > 4000``) torchvision re-sorts with an unstable sort, so there the
    kept set is the same and the order agrees up to tied scores.
    Raises ValueError as :func:`nms`, and for ``idxs`` not an integer array [N].
    """
    if _no_boxes(boxes, scores, idxs):
        return np.zeros(0, dtype=np.int64)
    boxes, scores = _check_boxes_scores(boxes, scores)
    idxs = _check_idxs(idxs, boxes)
    threshold = check_real("iou_threshold", iou_threshold)
    kept = np.zeros(boxes.shape[0], dtype=bool)
    for c in np.unique(idxs):  # per category, by definition
        members = np.flatnonzero(idxs == c)
        kept[members[nms(boxes[members], scores[members], threshold)]] = True
    order = _score_order(scores)
    return order[kept[order]]


def nms_padded(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float, valid: ArrayLike | None = None) -> np.ndarray:
    """:func:`nms` for many images at once, on padded arrays; returns a keep mask.

    Args:
        boxes (ndarray[..., N, 4]): xyxy boxes per image (leading dims are images); must be
            finite where ``valid``.
        scores (ndarray[..., N]): scores; NaN allowed (sorts first).
        iou_threshold (float): as in :func:`nms`.
        valid (ndarray[..., N] bool, optional): which slots hold real boxes (default: all).
            Invalid slots are ignored: never kept, never suppress, may hold anything.

    Returns:
        ndarray[..., N] bool: ``True`` where :func:`nms` of the image's valid boxes keeps the box
        (a mask, so the nms order is not encoded: sort the kept boxes by score, stably, NaN
        first, to get it).

    Convention: a loop of :func:`nms` over images (this reference); the port runs one pass.
    Raises ValueError for boxes not [..., N, 4], scores/valid not [..., N], non-finite valid boxes.
    """
    boxes = _upcast(as_array("boxes", boxes, last_dim=4))
    if boxes.ndim < 2:
        raise ValueError(f"boxes: expected shape [..., N, 4], got {boxes.shape}")
    scores = as_array("scores", scores)
    if scores.shape != boxes.shape[:-1]:
        raise ValueError(f"scores: expected shape {boxes.shape[:-1]}, got {scores.shape}")
    if valid is None:
        valid = np.ones(scores.shape, dtype=bool)
    valid = np.asarray(valid)
    if valid.shape != scores.shape or valid.dtype != bool:
        raise ValueError(f"valid: expected a bool array of shape {scores.shape}, "
                         f"got {valid.dtype} {valid.shape}")
    if not np.all(np.isfinite(boxes[valid])):
        raise ValueError("boxes: expected finite values where valid, got NaN or inf")
    threshold = check_real("iou_threshold", iou_threshold)
    g, n = int(np.prod(boxes.shape[:-2])), boxes.shape[-2]
    flat_boxes = boxes.reshape(g, n, 4)
    flat_scores, flat_valid = scores.reshape(g, n), valid.reshape(g, n)
    keep = np.zeros(flat_valid.shape, dtype=bool)
    for b in range(flat_boxes.shape[0]):  # one image at a time
        members = np.flatnonzero(flat_valid[b])
        keep[b, members[nms(flat_boxes[b, members], flat_scores[b, members], threshold)]] = True
    return keep.reshape(valid.shape)


def soft_nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float = 0.3, sigma: float = 0.5,
             score_threshold: float = 0.001, method: Literal["linear", "gaussian"] = "gaussian"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of removing them.

    Repeatedly select the remaining box of highest current score (ties: lowest index), then
    multiply the score of every other remaining box by
    ``1 - iou`` if ``iou > iou_threshold`` else 1 (``method="linear"``), or by
    ``exp(-(iou * iou) / sigma)`` (``method="gaussian"``; ``iou_threshold`` unused).
    A box whose current score is below ``score_threshold`` (initially or after a decay) is
    dropped. Sequential by nature: a loop over selection steps.

    Args:
        boxes (ndarray[N, 4]): xyxy boxes, finite.
        scores (ndarray[N]): finite scores.
        iou_threshold (float): linear method only; ``iou > iou_threshold`` compared in float64.
        sigma (float): gaussian width, > 0.
        score_threshold (float): minimum score to stay a candidate.
        method (str): "linear" or "gaussian".

    Returns:
        (ndarray[K] int64, ndarray[K]): the selected indices in selection order, and their
        (decayed) scores at the moment they were selected, in the scores' dtype; non-increasing.

    IoU as in :func:`nms`; a NaN IoU (two zero-area boxes) decays nothing. Degenerate boxes have
    IoU 0 with everything, so they are never decayed and decay nothing.
    Raises ValueError for bad boxes/scores as :func:`nms`, non-finite scores, sigma <= 0 and an
    unknown method.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores: expected finite values for soft_nms, got NaN or inf")
    if method not in ("linear", "gaussian"):
        raise ValueError(f"method: expected 'linear' or 'gaussian', got {method!r}")
    threshold = check_real("iou_threshold", iou_threshold)
    sigma = check_real("sigma", sigma)
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    score_threshold = check_real("score_threshold", score_threshold)
    current = scores.copy()
    active = current >= score_threshold
    keep, kept_scores = [], []
    while active.any():  # one selection per step
        i = int(np.argmax(np.where(active, current, -np.inf)))
        keep.append(i)
        kept_scores.append(current[i])
        active[i] = False
        js = np.flatnonzero(active)
        if not js.size:
            break
        iou = _overlaps(boxes, i, js)
        iou = np.where(np.isnan(iou), iou.dtype.type(0), iou)
        if method == "linear":
            decay = np.where(_above(iou, threshold), 1 - iou, iou.dtype.type(1))
        else:
            decay = np.exp(-(iou * iou) / sigma)
        current[js] = current[js] * decay
        active[js] = current[js] >= score_threshold
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=scores.dtype)


def diou_nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float, beta: float = 1.0) -> np.ndarray:
    """DIoU-NMS (Zheng et al. 2020): greedy NMS where j is suppressed by a kept i when
    ``iou - (d^2 / (c^2 + 1e-7)) ** beta > iou_threshold``.

    Args:
        boxes (ndarray[N, 4]): xyxy boxes, finite.
        scores (ndarray[N]): scores; NaN allowed (sorts first).
        iou_threshold (float): threshold on the DIoU (strict, compared in float64).
        beta (float): exponent of the centre-distance penalty.

    Returns:
        ndarray[K] int64: kept indices in the order of :func:`nms`.

    ``d`` is the distance between box centres, ``c`` the diagonal of the smallest enclosing box;
    IoU, order, ties and NaN handling as :func:`nms`. The penalty is >= 0, so a pair that DIoU
    suppresses is also over the threshold in plain IoU (the kept sets themselves are not nested:
    a box kept here that NMS drops can go on to suppress others). Degenerate boxes: IoU 0 minus a
    non-negative penalty, so with ``iou_threshold >= 0`` they are kept and suppress nothing.
    Convention: YOLOv5's / the DIoU paper's form with torchvision's ``distance_box_iou`` eps.
    Raises ValueError as :func:`nms`.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    threshold = check_real("iou_threshold", iou_threshold)
    beta = check_real("beta", beta)
    return _greedy(_score_order(scores), lambda i, js: _above(
        _overlaps(boxes, i, js) - _centre_penalty(boxes, i, js, beta), threshold))


# ----------------------------------------------------------------------------- YOLO post-processing

def _xywh2xyxy(xywh: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) -> (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), YOLO's order of ops."""
    xy, half = xywh[..., :2], xywh[..., 2:] / 2
    return np.concatenate([xy - half, xy + half], axis=-1)


def _yolo_candidates(x: np.ndarray, conf_thres: float, multi_label: bool, objectness: bool):
    """One image's rows -> detections [n, 6] (x1, y1, x2, y2, conf, cls) before class filtering.

    ``x`` is [A, 5 + nc] (objectness) or [A, 4 + nc]; candidates exactly as YOLOv5 v7.0 /
    Ultralytics 8.3 / 8.4: first the per-row prefilter, then (multi_label) every (row, class) with
    score > conf in row-major ``nonzero`` order, else the first best class with score > conf."""
    if objectness:
        x = x[x[:, 4] > conf_thres]
        cls = x[:, 5:] * x[:, 4:5]  # conf = obj_conf * cls_conf
    else:
        x = x[x[:, 4:].max(axis=1, initial=-np.inf) > conf_thres]
        cls = x[:, 4:]
    box = _xywh2xyxy(x[:, :4])
    if multi_label:
        i, j = np.nonzero(cls > conf_thres)  # row-major: by box, then by class
        conf = cls[i, j]
    else:
        j = np.argmax(cls, axis=1) if cls.shape[0] else np.zeros(0, dtype=np.int64)
        conf = np.take_along_axis(cls, j[:, None], axis=1)[:, 0]
        i = np.flatnonzero(conf > conf_thres)
        j, conf = j[i], conf[i]
    # the class column as upstream's j.float(): float32 (float64 input stays float64), so
    # float16 input gives float32 rows with exact class ids
    return np.concatenate([box[i], conf[:, None], j[:, None].astype(np.result_type(x.dtype, np.float32))],
                          axis=1)


def non_max_suppression(prediction: ArrayLike, conf_thres: float = 0.25, iou_thres: float = 0.45,
                        classes: Sequence[int] | None = None, agnostic: bool = False, multi_label: bool = False,
                        max_det: int = 300, max_nms: int = 30000, max_wh: float = MAX_WH,
                        version: Literal["v5", "v8"] = "v5") -> list[np.ndarray]:
    """YOLO post-processing: confidence filter, class-aware NMS, ``max_det`` per image.

    Args:
        prediction (ndarray): ``version="v5"``: [B, A, 5 + nc] rows (cx, cy, w, h, obj,
            cls_1..cls_nc) as YOLOv5's ``Detect`` emits at inference (probabilities);
            ``version="v8"``: [B, 4 + nc, A] (cx, cy, w, h, cls_1..cls_nc along dim 1, no
            objectness) as Ultralytics 8.3 / 8.4 emit. Finite.
        conf_thres (float): in [0, 1]; v5: rows need ``obj > conf_thres`` and a class score
            ``obj * cls > conf_thres``; v8: a class score ``> conf_thres``.
        iou_thres (float): in [0, 1]; NMS threshold (:func:`nms` semantics).
        classes (sequence of int, optional): keep only these class ids.
        agnostic (bool): one NMS over all classes (no class offset).
        multi_label (bool): one detection per (box, class) above ``conf_thres`` (only if nc > 1).
        max_det (int): detections kept per image, after NMS.
        max_nms (int): candidates passed to NMS per image (highest confidence first).
        max_wh (float): class offset; boxes are shifted by ``cls * max_wh`` before NMS.
        version (str): "v5" (default: YOLOv5 v7.0, objectness) or "v8" (Ultralytics 8.3 / 8.4,
            no objectness, transposed layout).

    Returns:
        list of B ndarrays [n, 6]: (x1, y1, x2, y2, conf, cls) in prediction's dtype (float32
        for float16 predictions, as YOLOv5 v7.0 and Ultralytics 8.4 return them), in decreasing
        confidence order (NMS order), ``n <= max_det``.

    Convention: YOLOv5 v7.0 ``utils/general.py::non_max_suppression`` (no masks, no merge, no
    time limit, no a-priori labels) and Ultralytics 8.3 / 8.4 ``utils/nms.py::non_max_suppression``
    for v8 (the same in 8.3.253 and 8.4.190 on their torchvision ``nms`` path, without end-to-end
    outputs).
    Candidates are sorted by a **stable** descending sort before the ``max_nms`` cut (YOLOv5
    uses torch's default, unstable, argsort: on tied confidences its choice may differ); NMS runs
    on the offset boxes ``xyxy + cls * max_wh`` in the prediction's dtype (float32 rounding of
    the offset included), so the result equals YOLOv5's for untied confidences. float16
    predictions (AMP outputs) follow upstream: the box corners, ``obj * cls`` and the
    comparisons with ``conf_thres`` are computed in float16, the rows then widened to float32,
    so the offsets (``cls * 7680`` overflows float16 from class 9 on) and the IoUs are float32.
    The best class on tied class scores is the first one. Degenerate boxes (w or h <= 0) pass through like any
    other (see :func:`nms`).
    Raises ValueError for a prediction of the wrong rank/width or not finite, thresholds outside
    [0, 1], an unknown version, max_det/max_nms < 0.
    """
    objectness = check_yolo_version(version)
    pred = as_array("prediction", prediction, ndim=3, finite=True, floating=True)
    if objectness and pred.shape[2] < 6:
        raise ValueError(f"prediction: expected [B, A, 5 + nc] with nc >= 1, got {pred.shape}")
    if not objectness:
        if pred.shape[1] < 5:
            raise ValueError(f"prediction: expected [B, 4 + nc, A] with nc >= 1, got {pred.shape}")
        pred = np.swapaxes(pred, 1, 2)
    conf_thres = check_unit("conf_thres", conf_thres)
    iou_thres = check_unit("iou_thres", iou_thres)
    max_det, max_nms = check_count("max_det", max_det), check_count("max_nms", max_nms)
    nc = pred.shape[2] - (5 if objectness else 4)
    multi_label = bool(multi_label) and nc > 1
    out = []
    for x in pred:  # one image at a time
        # box and conf arithmetic in the prediction's dtype, the detection rows (and so the
        # class offsets and NMS) in float32 for float16 input, as upstream's cat with
        # ``j.float()`` promotes them
        det = _upcast(_yolo_candidates(x, conf_thres, multi_label, objectness))
        if classes is not None:
            det = det[np.isin(det[:, 5], np.asarray(classes, dtype=det.dtype))]
        order = _score_order(det[:, 4])[:max_nms]
        det = det[order]
        offset = det[:, 5:6] * (0 if agnostic else max_wh)
        keep = nms(det[:, :4] + offset, det[:, 4], iou_thres)[:max_det]
        out.append(det[keep])
    return out

