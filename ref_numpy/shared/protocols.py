"""The evaluation protocols on a (ground truth, predictions) pair, and why they differ.

The math lives in ``metrics`` on each side (:func:`ref_numpy.metrics.coco_evaluate`,
``voc_evaluate``, ``ultralytics_evaluate``, ...); this module is the plain bookkeeping around
it that both backends share: data sets as arrays (:class:`EvalData`), a backend that calls the
reference or the port with NumPy in and NumPy out (:class:`MetricsBackend`, over the
:class:`~ref_numpy.shared.sides.Side` of ``--backend``), one function per
protocol returning a documented dict, and :func:`explain_protocol_differences`, which returns
the causes of difference that apply to the data as :class:`ProtocolDifference` records.

Which images: :func:`match_images` resolves the images predictions refer to against the ground
truth's (by file name, base name or stem when the predictions name files, else by id) and says
what each side has that the other lacks (:class:`ImageMatch`); :func:`restrict_to_images` keeps
the shared ones. ``yolo-ref evaluate`` stops on a mismatch unless ``--intersection``.

Protocol result dicts (``None`` where a number is undefined, e.g. no GT):

- every protocol: ``map50``, ``map50_95`` (``None`` for VOC), ``n_classes`` (classes averaged),
  ``per_class`` (one dict per GT category, in id order: ``id``, ``name`` and the APs).
- ``coco``: ``stats`` ({key: value} in :data:`ref_numpy.shared.coco.COCO_STATS` order),
  ``stats_list``, ``iou_thrs``, ``max_dets``; per class ``ap``, ``ap50``, ``ap75``.
- ``voc07`` / ``voc12``: per class ``ap``.
- ``ultralytics``: ``precision``, ``recall`` (means over classes), ``n_predictions`` (kept by
  the NMS filters), ``version``, ``conf``, ``max_det``; per class ``p``, ``r``, ``ap50``,
  ``ap50_95``; ``_result`` (the :class:`ref_numpy.metrics.UltralyticsResult`, NumPy).

Keys starting with ``_`` are for callers in the same process (not written to JSON).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Iterable, Sequence

import numpy as np

from ref_numpy import formats
from ref_numpy.shared.coco import COCO_STATS, COCOEvalResult
from ref_numpy.shared.constants import ULTRALYTICS_RELEASES
from ref_numpy.shared.sides import REF, Side, get_side, to_numpy

__all__ = ["MATCH_LEVELS", "PROTOCOLS", "EvalData", "ImageMatch", "MetricsBackend",
           "ProtocolDifference", "coco_protocol", "evaluate_protocols",
           "explain_protocol_differences", "match_images", "restrict_to_images",
           "ultralytics_protocol", "voc_corners", "voc_protocol"]

PROTOCOLS = ("coco", "voc07", "voc12", "ultralytics")


# ============================================================================ backend

class MetricsBackend:
    """The functions of ``metrics`` on a :class:`~ref_numpy.shared.sides.Side`: the reference's
    (``"ref"``, :data:`~ref_numpy.shared.sides.REF`) or the port's (``"torch"``, on
    ``device``), called with NumPy in and NumPy out (the side's conversions, dtypes kept).

    A thin layer over the side (:attr:`side`): what it adds is the fall-back, a function the
    port lacks is computed by the reference and ``notes`` says so. torch is imported only for a
    torch side.

    Args:
        side: a :class:`~ref_numpy.shared.sides.Side` (from
            :func:`~ref_numpy.shared.sides.get_side`) or a backend name for it.
        device: with a name, the torch device (``None``: "cpu").

    Raises:
        ValueError: unknown backend name, or a ``device`` the side cannot use (the message
            names ``--device``).
        ImportError: a torch side without torch installed (names the ``torch`` extra).
    """

    def __init__(self, side: Side | str = "ref", device: str | None = None) -> None:
        if not isinstance(side, Side):
            side = get_side(side, device)
        self.side = side.check()
        self.name, self.device, self.notes = self.side.name, self.side.device, []
        self._ref = REF.module("metrics")
        self._mod = self.side.module("metrics")

    def _fn(self, fname: str) -> tuple:
        """(function, side it runs on): this side's, else the reference's with a note."""
        fn = getattr(self._mod, fname, None)
        if fn is not None:
            return fn, self.side
        note = (f"{self.side.package}.metrics has no {fname} yet: computed with "
                f"{REF.package}.metrics")
        if note not in self.notes:
            self.notes.append(note)
        return getattr(self._ref, fname), REF

    def call(self, fname: str, *args: Any, **kwargs: Any) -> Any:
        """``metrics.<fname>(*args, **kwargs)`` of this backend, NumPy in and out."""
        fn, side = self._fn(fname)
        return side.call(fn, *args, dtype=None, **kwargs)

    def coco_evaluate(self, gt: dict, results: list) -> COCOEvalResult:
        """``coco_evaluate(gt, results)`` (on ``device`` for torch), arrays as NumPy."""
        fn, side = self._fn("coco_evaluate")
        res = fn(gt, results, device=side.device) if side.is_torch else fn(gt, results)
        for key in ("stats", "precision", "recall", "scores"):
            setattr(res, key, to_numpy(getattr(res, key)))
        return res


# ============================================================================ data as arrays

class EvalData:
    """Ground truth and predictions as arrays, with contiguous class indices 0..K-1 (GT
    categories sorted by id) and images in ``gt.images`` order (index 0..I-1).

    Attributes: ``cat_ids [K]``, ``names`` (K), ``image_ids [I]``; GT columns ``gt_img``,
    ``gt_cls``, ``gt_box [G, 4]`` (xyxy, pixels), ``gt_crowd``, ``gt_difficult``; prediction
    columns ``pred_img``, ``pred_cls``, ``pred_box [N, 4]``, ``pred_score``; ``n_images``,
    ``n_classes``; the sets themselves as ``gt_set``, ``pred_set``.

    Args:
        gt (DetectionSet): the ground truth.
        pred (DetectionSet): predictions (every annotation with a ``score``) on ``gt``'s
            images and categories.
    """

    def __init__(self, gt: formats.DetectionSet, pred: formats.DetectionSet) -> None:
        self.gt_set, self.pred_set = gt, pred
        self.cat_ids = np.array(sorted(c["id"] for c in gt.categories), dtype=np.int64)
        name_of = {c["id"]: c["name"] for c in gt.categories}
        self.names = [name_of[int(c)] for c in self.cat_ids]
        self.image_ids = np.array([im["id"] for im in gt.images], dtype=np.int64)
        img_index = {int(i): k for k, i in enumerate(self.image_ids)}
        cat_index = {int(c): k for k, c in enumerate(self.cat_ids)}
        g, p = formats.to_arrays(gt), formats.to_arrays(pred)
        self.gt_img = np.array([img_index[int(i)] for i in g["image_id"]], dtype=np.int64)
        self.gt_cls = np.array([cat_index[int(c)] for c in g["category_id"]], dtype=np.int64)
        self.gt_box, self.gt_crowd, self.gt_difficult = g["boxes"], g["iscrowd"], g["difficult"]
        self.pred_img = np.array([img_index[int(i)] for i in p["image_id"]], dtype=np.int64)
        self.pred_cls = np.array([cat_index[int(c)] for c in p["category_id"]], dtype=np.int64)
        self.pred_box, self.pred_score = p["boxes"], p["score"]
        self.n_images, self.n_classes = len(self.image_ids), len(self.cat_ids)

    def per_image(self, img_of: np.ndarray) -> list:
        """Indices of the entries of each image (``img_of [N]``, -1 = none), in input order."""
        order = np.argsort(img_of, kind="stable")
        bounds = np.searchsorted(img_of[order], np.arange(self.n_images + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(self.n_images)]

    def coco_inputs(self, crowd_as_ordinary: bool = False) -> tuple:
        """(COCO ground truth dict, COCO results list) of the two sets."""
        anns = self.gt_set.annotations
        if crowd_as_ordinary:
            anns = [{**a, "iscrowd": 0} for a in anns]
        gt = {"images": self.gt_set.images, "categories": self.gt_set.categories,
              "annotations": anns}
        results = [{"image_id": a["image_id"], "category_id": a["category_id"],
                    "bbox": a["bbox"], "score": a["score"]} for a in self.pred_set.annotations]
        return gt, results

    def counts(self) -> tuple:
        """(GTs per class [K], predictions per class [K])."""
        return (np.bincount(self.gt_cls, minlength=self.n_classes),
                np.bincount(self.pred_cls, minlength=self.n_classes))


def _mean_valid(x) -> float | None:
    v = np.asarray(x, dtype=np.float64)
    v = v[v > -1]
    return float(np.mean(v)) if v.size else None


def _mean(x) -> float | None:
    v = np.asarray(x, dtype=np.float64)
    return float(np.mean(v)) if v.size else None


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


# ============================================================================ protocols

def coco_protocol(data: EvalData, backend: MetricsBackend, crowd_as_ordinary: bool = False) -> dict:
    """COCO (pycocotools) on ``data``: ``coco_evaluate`` and per-class AP, AP50, AP75 from its
    precision array (area all, maxDets 100). ``crowd_as_ordinary``: crowd GTs as ordinary GTs
    (to measure what the crowd rule changes)."""
    res = backend.coco_evaluate(*data.coco_inputs(crowd_as_ordinary))
    stats = np.asarray(res.stats, dtype=np.float64)
    prec = np.asarray(res.precision)                       # [T, R, K, A, M]
    m100 = [i for i, m in enumerate(res.max_dets) if m == 100]
    iou_thrs = np.asarray(res.iou_thrs)
    t50, t75 = np.flatnonzero(iou_thrs == 0.5), np.flatnonzero(iou_thrs == 0.75)
    per_class = []
    for k, cid in enumerate(np.asarray(res.cat_ids)):
        ki = int(np.searchsorted(data.cat_ids, cid))
        per_class.append({
            "id": int(cid), "name": data.names[ki],
            "ap": _mean_valid(prec[:, :, k, 0][..., m100]),
            "ap50": _mean_valid(prec[t50][:, :, k, 0][..., m100]),
            "ap75": _mean_valid(prec[t75][:, :, k, 0][..., m100]),
        })
    return {"stats": {key: float(v) for (key, *_), v in zip(COCO_STATS, stats)},
            "stats_list": [float(v) for v in stats],
            "map50": None if stats[1] == -1 else float(stats[1]),
            "map50_95": None if stats[0] == -1 else float(stats[0]),
            "n_classes": int(np.sum(np.any(prec[0, :, :, 0, -1] > -1, axis=0))),
            "per_class": per_class,
            "iou_thrs": [float(t) for t in iou_thrs], "max_dets": list(res.max_dets),
            "_result": res}


def voc_corners(xyxy: np.ndarray) -> np.ndarray:
    """Continuous xyxy ``[..., 4]`` -> VOC's 1-based inclusive corners (``xmin = x + 1``,
    ``xmax = x + w``), so that ``voc_eval.py``'s ``+1`` widths give back ``w`` and its overlaps
    equal the continuous ones."""
    x1, y1, x2, y2 = np.moveaxis(xyxy, -1, 0)
    return np.stack([x1 + 1.0, y1 + 1.0, x2, y2], axis=-1)


def voc_protocol(data: EvalData, backend: MetricsBackend, use_07_metric: bool) -> dict:
    """PASCAL VOC (``voc_eval.py``) at IoU > 0.5 on ``data``: boxes in VOC's corners
    (:func:`voc_corners`), crowd GTs passed as difficult (both are "don't care")."""
    gi, pi = data.per_image(data.gt_img), data.per_image(data.pred_img)
    gt_box = voc_corners(data.gt_box)
    dont_care = data.gt_difficult | data.gt_crowd
    order = np.concatenate(pi) if pi else np.zeros(0, np.int64)
    out = backend.call(
        "voc_evaluate", [gt_box[i] for i in gi], [data.gt_cls[i] for i in gi],
        voc_corners(data.pred_box[order]).reshape(-1, 4), data.pred_score[order],
        data.pred_cls[order], data.pred_img[order], gt_difficult=[dont_care[i] for i in gi],
        iou_threshold=0.5, use_07_metric=use_07_metric)
    classes, ap = np.asarray(out["classes"]), np.asarray(out["ap"], dtype=np.float64)
    ap_of = {int(c): float(a) for c, a in zip(classes, ap)}
    per_class = [{"id": int(cid), "name": data.names[k], "ap": ap_of.get(k)}
                 for k, cid in enumerate(data.cat_ids)]
    return {"map50": _mean(ap), "map50_95": None, "n_classes": len(classes),
            "per_class": per_class}


def ultralytics_protocol(data: EvalData, backend: MetricsBackend, conf_thres: float = 0.001,
                         max_det: int = 300, version: str = "8.3") -> dict:
    """The validation of the Ultralytics release ``version`` (``metrics.ultralytics_evaluate``;
    default ``"8.3"`` = ultralytics 8.3.253, see ``ULTRALYTICS_RELEASES``) on ``data``: crowd GTs
    as ordinary GTs, difficult GTs dropped, NMS filters ``score > conf_thres`` and ``max_det``."""
    gi = data.per_image(data.gt_img)
    res = backend.call(
        "ultralytics_evaluate", [data.gt_box[i] for i in gi], [data.gt_cls[i] for i in gi],
        data.pred_box.reshape(-1, 4), data.pred_score, data.pred_cls, data.pred_img,
        gt_difficult=[data.gt_difficult[i] for i in gi], conf_thres=conf_thres,
        max_det=max_det, version=version, nc=data.n_classes)
    ap = np.asarray(res.ap, dtype=np.float64)
    row = {int(c): i for i, c in enumerate(np.asarray(res.classes))}
    per_class = []
    for k, cid in enumerate(data.cat_ids):
        i = row.get(k)
        per_class.append({"id": int(cid), "name": data.names[k],
                          "p": None if i is None else float(res.p[i]),
                          "r": None if i is None else float(res.r[i]),
                          "ap50": None if i is None else float(ap[i, 0]),
                          "ap50_95": None if i is None else float(ap[i].mean())})
    return {"map50": _mean(ap[:, 0]), "map50_95": _mean(ap.mean(1)) if len(ap) else None,
            "precision": _mean(res.p), "recall": _mean(res.r), "n_classes": len(res.classes),
            "n_predictions": int(len(res.kept)), "per_class": per_class,
            "version": version, "conf": conf_thres, "max_det": max_det, "_result": res}


def evaluate_protocols(data: EvalData, backend: MetricsBackend,
                       protocols: Iterable[str] = PROTOCOLS, conf_thres: float = 0.001,
                       max_det: int = 300, version: str = "8.3") -> dict:
    """``{protocol: result dict}`` for each of ``protocols`` (in :data:`PROTOCOLS` order);
    ``ultralytics`` follows the release ``version`` (default ``"8.3"`` = ultralytics 8.3.253)."""
    wanted = set(protocols)
    unknown = wanted - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"protocols: unknown {sorted(unknown)}, expected some of {PROTOCOLS}")
    out = {}
    if "coco" in wanted:
        out["coco"] = coco_protocol(data, backend)
    for proto, use07 in (("voc07", True), ("voc12", False)):
        if proto in wanted:
            out[proto] = voc_protocol(data, backend, use07)
    if "ultralytics" in wanted:
        out["ultralytics"] = ultralytics_protocol(data, backend, conf_thres, max_det, version)
    return out


# ============================================================================ why they differ

@dataclass(frozen=True)
class ProtocolDifference:
    """One cause of difference between the protocols that applies to the data.

    Attributes:
        code (str): stable identifier: ``crowd``, ``difficult``, ``coco_max_dets``,
            ``nms_filters``, ``iou_exactly_half``, ``multi_gt_overlap``, ``end_point``,
            ``integration``, ``classes_averaged``.
        measure (float): how much of it the data has, in ``unit``.
        unit (str): ``boxes``, ``detections``, ``pairs``, ``mAP@0.5`` or ``protocols``.
        effect (float | None): where one evaluation with the cause removed isolates it, the
            mAP@0.5 of the affected protocol without it (``None`` if not measured or undefined).
        message (str): one line for a person, with the numbers.
    """

    code: str
    measure: float
    unit: str
    effect: float | None
    message: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _n_kept(data: EvalData, conf_thres: float, max_det: int) -> int:
    above = np.bincount(data.pred_img[data.pred_score > conf_thres], minlength=data.n_images)
    return int(np.minimum(above, max_det).sum())


def _same_class_overlaps(data: EvalData) -> tuple:
    """(same-class (detection, GT) pairs at IoU exactly 0.5, detections on 2+ GTs of their
    class at IoU >= 0.5), IoU in the continuous (torchvision) convention."""
    from ref_numpy.boxes import box_iou

    n_half, n_multi = 0, 0
    for g, p in zip(data.per_image(data.gt_img), data.per_image(data.pred_img)):
        if len(g) == 0 or len(p) == 0:
            continue
        iou = box_iou(data.pred_box[p], data.gt_box[g])                               # [N, M]
        same = data.pred_cls[p][:, None] == data.gt_cls[g][None, :]
        n_half += int(np.sum(same & (iou == 0.5)))
        n_multi += int(np.sum(np.sum(same & (iou >= 0.5), axis=1) >= 2))
    return n_half, n_multi


def explain_protocol_differences(data: EvalData, results: dict, backend: MetricsBackend,
                                 conf_thres: float = 0.001, max_det: int = 300,
                                 version: str = "8.3") -> list:
    """The causes of difference between the protocols in ``results`` that apply to ``data``.

    Args:
        data (EvalData): what was evaluated.
        results (dict): :func:`evaluate_protocols`' output (any subset of the protocols).
        backend (MetricsBackend): for the re-evaluations that measure an effect.
        conf_thres, max_det, version: the Ultralytics (ULTRALYTICS_VERSIONS) settings ``results``
            was computed with (default version ``"8.3"`` = ultralytics 8.3.253).

    Returns:
        list[ProtocolDifference], in a fixed order; only the causes present in the data (a
        count > 0), each with its count and, where one evaluation with the cause removed
        isolates it, that evaluation's mAP@0.5 (crowd GTs as ordinary for COCO, no NMS filters
        for Ultralytics 8.3 / 8.4 and YOLOv5 v7.0, 8.4's end points for Ultralytics 8.3).
    """
    release = ULTRALYTICS_RELEASES.get(version, f"Ultralytics {version}")  # "ultralytics 8.3.253"
    out = []
    n_crowd, n_diff = int(data.gt_crowd.sum()), int(data.gt_difficult.sum())
    if n_crowd:
        alt = coco_protocol(data, backend, crowd_as_ordinary=True)["map50"] \
            if "coco" in results else None
        effect = f"; as ordinary GTs COCO's mAP@0.5 would be {_fmt(alt)}" if "coco" in results else ""
        out.append(ProtocolDifference(
            "crowd", n_crowd, "boxes", alt,
            f"crowd GTs: {n_crowd} (COCO ignores them and lets them absorb any number of "
            f"detections; {release} counts them as ordinary GTs; VOC here treats them "
            f"as difficult{effect})"))
    if n_diff:
        out.append(ProtocolDifference(
            "difficult", n_diff, "boxes", None,
            f"difficult GTs: {n_diff} (VOC ignores them; COCO counts them as ordinary "
            f"GTs; the VOC converter of {release} drops them, so detections on them are "
            f"false positives)"))
    # COCO keeps the 100 highest-scored detections per (image, category).
    key = data.pred_img * max(data.n_classes, 1) + data.pred_cls
    k_sorted = key[np.lexsort((-data.pred_score, key))]
    starts = np.searchsorted(k_sorted, k_sorted, side="left")
    n_over = int(np.sum(np.arange(len(k_sorted)) - starts >= 100))
    if n_over:
        out.append(ProtocolDifference(
            "coco_max_dets", n_over, "detections", None,
            f"detections beyond COCO's maxDets=100 per (image, class): {n_over} (COCO "
            f"drops them; VOC keeps all; {release} keeps {max_det} per image)"))
    n_low = int(np.sum(data.pred_score <= conf_thres))
    n_cut = len(data.pred_score) - n_low - _n_kept(data, conf_thres, max_det)
    if n_low or n_cut:
        alt, effect = None, ""
        if "ultralytics" in results:
            alt = ultralytics_protocol(data, backend, -math.inf, max(len(data.pred_score), 1),
                                       version)["map50"]
            effect = f"; without these filters its mAP@0.5 would be {_fmt(alt)}"
        out.append(ProtocolDifference(
            "nms_filters", n_low + n_cut, "detections", alt,
            f"the NMS filters of {release}: {n_low} detections with conf <= {conf_thres}, "
            f"{n_cut} beyond max_det={max_det} per image (only {release} drops "
            f"them{effect})"))
    n_half, n_multi = _same_class_overlaps(data)
    if n_half:
        out.append(ProtocolDifference(
            "iou_exactly_half", n_half, "pairs", None,
            f"(detection, GT) pairs at IoU exactly 0.5: {n_half} (COCO and {release} "
            f"match at IoU >= 0.5, VOC needs > 0.5)"))
    if n_multi:
        out.append(ProtocolDifference(
            "multi_gt_overlap", n_multi, "detections", None,
            f"detections overlapping 2+ GTs of their class at IoU >= 0.5: {n_multi} "
            f"(COCO falls back to the next-best unmatched GT; VOC takes the best GT even "
            f"if already matched, a duplicate FP; {release} "
            + ("takes, in confidence order, the best GT still unclaimed)" if version == "8.4"
               else "pairs by IoU, one per label)")))
    ul = results.get("ultralytics")
    if ul is not None and version == "8.3":
        diff = _end_point_difference(data, ul, backend)
        if diff is not None:
            out.append(diff)
    if any(r["map50"] is not None for r in results.values()):
        out.append(ProtocolDifference(
            "integration", len(results), "protocols", None,
            "AP integration (every curve): COCO takes precision at 101 recall points "
            "(step, next detection at the point), VOC07 the max precision at 11 points, "
            f"VOC12 the exact area under the envelope, {release} a 101-point trapezoid"))
    counts = {p: results[p]["n_classes"] for p in PROTOCOLS if p in results}
    if len(set(counts.values())) > 1:
        out.append(ProtocolDifference(
            "classes_averaged", len(set(counts.values())), "protocols", None,
            "classes averaged: " + ", ".join(f"{p} {n}" for p, n in counts.items())
            + " (COCO: classes with a non-ignored GT; VOC: with a non-difficult GT; "
            f"{release}: classes present in the labels)"))
    return out


def _end_point_difference(data: EvalData, ul: dict, backend: MetricsBackend):
    """Ultralytics 8.3.253's (1, 0) end point credits area past the last recall: measured by
    re-integrating the same matches with 8.4's end points."""
    m = ul["_result"]
    tp, pred_cls, target_cls = np.asarray(m.tp), np.asarray(m.pred_cls), np.asarray(m.target_cls)
    low = []  # (final recall at IoU 0.5, class name) of the classes found but not all found
    for k in range(data.n_classes):
        n_gt = int(np.sum(target_cls == k))
        if n_gt:
            rec = float(np.sum(tp[pred_cls == k, 0])) / n_gt
            if 0.0 < rec < 1.0:
                low.append((rec, data.names[k]))
    if not low:
        return None
    ap84 = backend.call("ap_per_class", tp.astype(np.float64), np.asarray(m.conf), pred_cls,
                        target_cls, version="8.4")[5]
    alt = _mean(np.asarray(ap84, dtype=np.float64).reshape(-1, tp.shape[1])[:, 0])
    if alt is None or ul["map50"] is None or ul["map50"] == alt:
        return None
    n_gt_classes = len(np.unique(target_cls))
    shown = ", ".join(f"{n} {r:.3f}" for r, n in (low if len(low) <= 5 else [min(low)]))
    which = shown if len(low) <= 5 else f"{len(low)} of {n_gt_classes} classes, lowest {shown}"
    delta = ul["map50"] - alt
    return ProtocolDifference(
        "end_point", delta, "mAP@0.5", alt,
        f"final recall at IoU 0.5 below 1 ({which}): Ultralytics 8.3.253's (1, 0) end "
        f"point interpolates precision linearly from there to recall 1 and "
        f"credits that area, here {delta:+.3f} mAP@0.5 (with 8.4's "
        f"end points, precision 0 past the last recall, it gives {alt:.3f}); "
        f"COCO and VOC give nothing past the last recall")


# ============================================================================ which images

MATCH_LEVELS = ("file_name", "name", "stem")


@dataclass(frozen=True)
class ImageMatch:
    """How the images a prediction set refers to were resolved against the ground truth's.

    Attributes:
        by (str): ``"id"`` (image ids, when the predictions name no files), or the coarsest
            file key that was needed: ``"file_name"`` (the same string), ``"name"`` (the same
            base name) or ``"stem"`` (the same base name without suffix).
        pred_to_gt (dict[int, int]): prediction image id -> ground-truth image id, for the
            images both sides share.
        only_pred (list[str]): prediction images with no ground-truth image (their file
            names, or ``"id N"``), in prediction order.
        only_gt (list[str]): ground-truth images the predictions do not cover, in ground-truth
            order; empty unless ``complete``.
        n_gt, n_pred (int): images on each side.
        complete (bool): the predictions list every image they cover (YOLO txt files, an
            images table), so a ground-truth image missing from them is a mismatch rather
            than an image without detections.
        ambiguous (list[str]): prediction images whose key names several ground-truth images.
    """

    by: str
    pred_to_gt: dict
    only_pred: list
    only_gt: list
    n_gt: int
    n_pred: int
    complete: bool
    ambiguous: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when both sides are the same set of images (nothing left out); an empty set of
        predictions that claims no image (a results list ``[]``) is fine."""
        if self.only_pred or self.only_gt or self.ambiguous:
            return False
        return bool(self.pred_to_gt) or (self.n_pred == 0 and not self.complete)

    @property
    def n_shared(self) -> int:
        return len(self.pred_to_gt)

    def message(self, pred: str = "predictions", gt: str = "ground truth",
                examples: int = 3) -> str:
        """One paragraph for a person: the counts and a few example names of each side."""
        def some(items):
            shown = ", ".join(str(x) for x in items[:examples])
            return shown + (f", ... ({len(items)} in all)" if len(items) > examples else "")

        if not self.pred_to_gt:
            head = (f"{pred} ({self.n_pred} images) and {gt} ({self.n_gt} images) share no "
                    f"image (matched by {self.by})")
        else:
            head = (f"{pred} and {gt} share {self.n_shared} images (matched by {self.by}) of "
                    f"{self.n_pred} predicted and {self.n_gt} in the ground truth")
        parts = [head]
        if self.only_pred:
            parts.append(f"{len(self.only_pred)} predicted images are not in the ground "
                         f"truth: {some(self.only_pred)}")
        if self.only_gt:
            parts.append(f"{len(self.only_gt)} ground-truth images have no predictions: "
                         f"{some(self.only_gt)}")
        if self.ambiguous:
            parts.append(f"{len(self.ambiguous)} predicted images match several ground-truth "
                         f"images: {some(self.ambiguous)}")
        return "; ".join(parts)


def _file_keys(file_name: str) -> tuple:
    """(file_name, name, stem) of a file name, with ``\\`` read as ``/``."""
    p = PurePosixPath(str(file_name).replace("\\", "/"))
    return str(p), p.name, p.stem


def match_images(gt_images: Sequence[dict], pred_images: Sequence[dict],
                 complete: bool = True) -> ImageMatch:
    """Resolve prediction images against ground-truth images, by file when the predictions
    name files, else by id.

    Args:
        gt_images: the ground truth's ``{"id", "file_name", ...}``.
        pred_images: ``{"id": int, "file_name": str | None}`` for every image the predictions
            refer to (or, ``complete``, cover).
        complete: whether ``pred_images`` lists every image the predictions cover (see
            :class:`ImageMatch`).

    Returns:
        ImageMatch. With file names on every prediction image, each one is looked up by the
        same ``file_name``, else the same base name, else the same stem (a key shared by two
        ground-truth images is not used at that level); ``by`` is the coarsest level needed.
        Otherwise ids are compared.

    Invariant: ``pred_to_gt`` is one-to-one; ``n_shared + len(only_pred) + len(ambiguous) ==
    n_pred``.
    """
    gt_ids = [int(im["id"]) for im in gt_images]
    by_name = all(im.get("file_name") for im in pred_images) and bool(pred_images)
    pred_to_gt, only_pred, ambiguous = {}, [], []
    if by_name:
        tables = []
        for level in range(len(MATCH_LEVELS)):
            table: dict = {}
            for im in gt_images:
                table.setdefault(_file_keys(im["file_name"])[level], []).append(int(im["id"]))
            tables.append(table)
        used = 0
        taken: set = set()
        for im in pred_images:
            keys = _file_keys(im["file_name"])
            hit, several = None, False
            for level, table in enumerate(tables):
                ids = table.get(keys[level], [])
                if len(ids) == 1:
                    hit, used = ids[0], max(used, level)
                    break
                several = several or len(ids) > 1
            if hit is None:
                (ambiguous if several else only_pred).append(im["file_name"])
            elif hit in taken:
                ambiguous.append(im["file_name"])
            else:
                taken.add(hit)
                pred_to_gt[int(im["id"])] = hit
        by = MATCH_LEVELS[used]
    else:
        known = set(gt_ids)
        for im in pred_images:
            i = int(im["id"])
            if i in known:
                pred_to_gt[i] = i
            else:
                only_pred.append(f"id {i}")
        by = "id"
    covered = set(pred_to_gt.values())
    only_gt = [im["file_name"] if by_name else f"id {im['id']}" for im in gt_images
               if int(im["id"]) not in covered] if complete else []
    return ImageMatch(by=by, pred_to_gt=pred_to_gt, only_pred=only_pred, only_gt=only_gt,
                      n_gt=len(gt_ids), n_pred=len(pred_images), complete=complete,
                      ambiguous=ambiguous)


def restrict_to_images(dataset: formats.DetectionSet, image_ids: Iterable[int]) -> formats.DetectionSet:
    """``dataset`` with only the images of ``image_ids`` (and their annotations), order kept."""
    keep = {int(i) for i in image_ids}
    return formats.DetectionSet(
        images=[im for im in dataset.images if int(im["id"]) in keep],
        categories=dataset.categories,
        annotations=[a for a in dataset.annotations if int(a["image_id"]) in keep])
