#!/usr/bin/env python
"""Evaluate detections against ground truth: COCO mAP, PASCAL VOC07 / VOC12 AP, Ultralytics mAP.

Ground truth and predictions may each be COCO JSON, a directory of YOLO txt files or (ground truth
only) a directory of Pascal VOC XML files; the format is auto-detected (``ref_numpy.formats.
load_any``) unless ``--gt-format`` / ``--pred-format`` name it. YOLO predictions are txt files with
a sixth (confidence) column. Predictions refer to the ground truth's images (by file stem for
YOLO, by ``image_id`` for COCO results) and categories.

Protocols (``--protocol``), each computed by ``metrics`` of the chosen backend (``--backend``:
``torch`` = ``torch_impl.metrics`` on ``--device``, ``ref`` = ``ref_numpy.metrics``):

- ``coco``: pycocotools' evaluate / accumulate / summarize, bit for bit (the 12-line summary is
  printed in pycocotools' layout), plus a per-class table.
- ``voc07`` / ``voc12``: ``voc_eval.py`` of py-faster-rcnn, 11-point (VOC2007) or all-point
  (VOC2010+) AP at IoU > 0.5. Boxes are handed over in VOC's own convention (1-based inclusive
  corners, ``xmin = x + 1``, ``xmax = x + w``), so its ``+1`` widths give back ``w`` and its
  overlaps equal the continuous ones; crowd GTs are passed as difficult (both are "don't care").
- ``ultralytics``: ``match_predictions`` per image (yolov5 ``process_batch``) then
  ``ap_per_class`` (101-point trapezoid with the (0, 1) and (1, 0) end points for
  ``--ultralytics-version 8.3``), after Ultralytics' NMS filters: confidence ``> --conf`` and at
  most ``--max-det`` per image. Crowd GTs count as ordinary GTs; difficult GTs are dropped (as
  Ultralytics' VOC converter does).
- ``all``: every protocol side by side, and the reasons why they differ on this data, each
  computed from the data (only the reasons that apply are printed).

Where the torch backend lacks a function, the reference computes it and a note says so.
``--synthetic-pred`` makes predictions from the ground truth (jittered boxes, dropped boxes,
duplicates, wrong classes and false positives, fixed ``--seed``) for a demo without a detector;
``--save-pred`` writes the predictions used as a COCO results JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ref_numpy import formats  # noqa: E402

PROTOCOLS = ("coco", "voc07", "voc12", "ultralytics")
ULTRALYTICS_IOUV = np.linspace(0.5, 0.95, 10)

# The 12 COCO stats: (key, is AP, IoU threshold or None, area label, index into max_dets).
COCO_STATS = (
    ("AP", True, None, "all", 2), ("AP50", True, 0.5, "all", 2), ("AP75", True, 0.75, "all", 2),
    ("APs", True, None, "small", 2), ("APm", True, None, "medium", 2),
    ("APl", True, None, "large", 2),
    ("AR1", False, None, "all", 0), ("AR10", False, None, "all", 1),
    ("AR100", False, None, "all", 2), ("ARs", False, None, "small", 2),
    ("ARm", False, None, "medium", 2), ("ARl", False, None, "large", 2),
)


class InputError(Exception):
    """Bad user input (paths, files, options): exit code 2 with this message."""


# ============================================================================ backend

def _np(x):
    """Tensors (also inside tuples, lists and dicts) as NumPy arrays; anything else as is."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if isinstance(x, tuple):
        return tuple(_np(v) for v in x)
    if isinstance(x, list):
        return [_np(v) for v in x]
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    return x


class Backend:
    """The metric functions of ``ref_numpy.metrics`` or ``torch_impl.metrics``, called with NumPy
    in and NumPy out; a function the torch port does not have yet falls back to the reference
    (recorded in ``notes``)."""

    def __init__(self, name: str, device: str | None):
        import ref_numpy.metrics as ref_metrics

        self.name, self.device, self.notes = name, device, []
        self._ref = ref_metrics
        self._mod = ref_metrics
        if name == "torch":
            import torch

            import torch_impl.metrics as torch_metrics

            self._torch = torch
            self._mod = torch_metrics
            try:
                self._dev = torch.device(device or "cpu")
                torch.zeros(1, device=self._dev)
            except (RuntimeError, AssertionError) as exc:
                raise InputError(f"--device {device}: not usable here ({exc})") from exc

    def _fn(self, fname: str):
        fn = getattr(self._mod, fname, None)
        if fn is not None:
            return fn, self._mod is not self._ref
        note = f"torch_impl.metrics has no {fname} yet: computed with ref_numpy.metrics"
        if note not in self.notes:
            self.notes.append(note)
        return getattr(self._ref, fname), False

    def _tensor(self, x):
        if isinstance(x, np.ndarray):
            return self._torch.as_tensor(x, device=self._dev)
        if isinstance(x, list):
            return [self._tensor(v) for v in x]
        return x

    def call(self, fname: str, *args, **kwargs):
        fn, is_torch = self._fn(fname)
        if is_torch:
            args = [self._tensor(a) for a in args]
            kwargs = {k: self._tensor(v) for k, v in kwargs.items()}
        return _np(fn(*args, **kwargs))

    def coco_evaluate(self, gt: dict, results: list):
        fn, is_torch = self._fn("coco_evaluate")
        res = fn(gt, results, device=self.device) if is_torch else fn(gt, results)
        for key in ("stats", "precision", "recall", "scores"):
            setattr(res, key, _np(getattr(res, key)))
        return res

    def box_iou(self, boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
        if self.name == "torch":
            from torch_impl.boxes import box_iou

            return _np(box_iou(self._tensor(boxes1), self._tensor(boxes2)))
        from ref_numpy.boxes import box_iou

        return box_iou(boxes1, boxes2)


# ============================================================================ loading

def _read_names(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the class names: {exc}") from exc
    names = [ln.strip() for ln in lines]
    while names and not names[-1]:
        names.pop()
    if not names or not all(names):
        raise InputError(f"{path}: expected one non-empty class name per line")
    return names


def _find_names(args) -> list | None:
    """Class names: ``--names``, else ``classes.txt`` in the GT directory or next to the GT."""
    if args.names is not None:
        return _read_names(args.names)
    gt = args.gt
    for cand in ((gt / formats.CLASSES_FILE) if gt.is_dir() else None,
                 gt.parent / formats.CLASSES_FILE):
        if cand is not None and cand.is_file():
            return _read_names(cand)
    return None


def load_gt(args) -> formats.DetectionSet:
    """The ground truth of ``--gt`` in ``--gt-format`` (auto-detected by default)."""
    names = _find_names(args)
    try:
        if args.gt_format == "auto":
            gt = formats.load_any(args.gt, images_dir=args.images, names=names)
        elif args.gt_format == "coco":
            gt = formats.read_coco(args.gt)
        elif args.gt_format == "yolo":
            gt = formats.read_yolo(args.gt, images_dir=args.images, names=names)
        else:
            gt = formats.read_voc(args.gt, names=names)
    except ValueError as exc:
        raise InputError(f"--gt {args.gt}: {exc}") from exc
    if any("score" in a for a in gt.annotations):
        raise InputError(f"--gt {args.gt}: has confidence scores: is it a prediction file?")
    return gt


def load_pred(args, gt: formats.DetectionSet) -> formats.DetectionSet:
    """The predictions of ``--pred`` against ``gt``; every one needs a score."""
    path = args.pred
    try:
        if args.pred_format == "auto":
            pred = formats.load_any(path, gt=gt, images_dir=args.images)
        elif args.pred_format == "coco":
            pred = formats.read_coco_results(path, gt)
        else:
            pred = formats.read_yolo(path, images=gt.images, names=gt.categories)
    except ValueError as exc:
        raise InputError(f"--pred {path}: {exc}") from exc
    gt_images = {im["id"]: im for im in gt.images}
    gt_cats = {c["id"] for c in gt.categories}
    for i, a in enumerate(pred.annotations):
        if "score" not in a:
            raise InputError(f"--pred {path}: annotation {i} has no confidence score (YOLO "
                             f"predictions need a 6th column, COCO results a 'score')")
        if a["image_id"] not in gt_images:
            raise InputError(f"--pred {path}: annotation {i}: image id {a['image_id']} is not "
                             f"in the ground truth {args.gt}")
        if a["category_id"] not in gt_cats:
            raise InputError(f"--pred {path}: annotation {i}: category id {a['category_id']} "
                             f"is not in the ground truth {args.gt}")
    return formats.DetectionSet(images=gt.images, categories=gt.categories,
                                annotations=pred.annotations)


def synthetic_predictions(gt: formats.DetectionSet, seed: int = 0, drop: float = 0.1,
                          jitter: float = 0.08, wrong_class: float = 0.05,
                          duplicate: float = 0.1, fp_per_image: float = 1.0
                          ) -> formats.DetectionSet:
    """Detections made from ``gt`` for a demo: deterministic in ``seed``.

    Each non-crowd GT is dropped with probability ``drop``; otherwise its box is jittered
    (centre by N(0, jitter) of its size, size by exp(N(0, jitter))), clipped to the image, given a
    score that falls with the jitter and, with probability ``wrong_class``, another class; with
    probability ``duplicate`` a second, lower-scored copy is added. Each image also gets
    Poisson(``fp_per_image``) random boxes with low scores. Scores are in (0, 1].
    """
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt.categories]
    by_image = {im["id"]: [] for im in gt.images}
    for a in gt.annotations:
        by_image[a["image_id"]].append(a)
    dets = []

    def add(image, box, cat, score):
        W, H = image["width"], image["height"]
        x, y, w, h = box
        x1, y1 = min(max(x, 0.0), W - 1.0), min(max(y, 0.0), H - 1.0)
        x2, y2 = min(max(x + w, x1 + 1.0), W), min(max(y + h, y1 + 1.0), H)
        dets.append({"id": len(dets) + 1, "image_id": image["id"], "category_id": cat,
                     "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                     "iscrowd": 0, "score": float(np.clip(score, 1e-3, 1.0))})

    for image in gt.images:
        for a in by_image[image["id"]]:
            if a["iscrowd"] or rng.random() < drop:
                continue
            for copy in range(2 if rng.random() < duplicate else 1):
                x, y, w, h = a["bbox"]
                dxy = rng.normal(0.0, jitter, 2)
                dwh = rng.normal(0.0, jitter, 2)
                nw, nh = w * math.exp(dwh[0]), h * math.exp(dwh[1])
                cx, cy = x + w / 2 + dxy[0] * w, y + h / 2 + dxy[1] * h
                cat = a["category_id"]
                if len(cat_ids) > 1 and rng.random() < wrong_class:
                    cat = int(rng.choice([c for c in cat_ids if c != cat]))
                score = 0.95 - 2.0 * float(np.abs(np.r_[dxy, dwh]).mean()) \
                    - 0.3 * copy + rng.normal(0.0, 0.05)
                add(image, [cx - nw / 2, cy - nh / 2, nw, nh], cat, score)
        W, H = image["width"], image["height"]
        for _ in range(rng.poisson(fp_per_image)):
            w, h = rng.uniform(0.03, 0.4) * W, rng.uniform(0.03, 0.4) * H
            add(image, [rng.uniform(0, W - w), rng.uniform(0, H - h), w, h],
                int(rng.choice(cat_ids)), rng.uniform(0.01, 0.5))
    return formats.DetectionSet(images=gt.images, categories=gt.categories, annotations=dets)


# ============================================================================ data as arrays

class EvalData:
    """Ground truth and predictions as arrays, with contiguous class indices 0..K-1 (GT
    categories sorted by id) and images in ``gt.images`` order (index 0..I-1)."""

    def __init__(self, gt: formats.DetectionSet, pred: formats.DetectionSet):
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
        """Indices of the entries of each image, in input order."""
        order = np.argsort(img_of, kind="stable")
        bounds = np.searchsorted(img_of[order], np.arange(self.n_images + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(self.n_images)]

    def coco_inputs(self, crowd_as_ordinary: bool = False) -> tuple:
        anns = self.gt_set.annotations
        if crowd_as_ordinary:
            anns = [{**a, "iscrowd": 0} for a in anns]
        gt = {"images": self.gt_set.images, "categories": self.gt_set.categories,
              "annotations": anns}
        results = [{"image_id": a["image_id"], "category_id": a["category_id"],
                    "bbox": a["bbox"], "score": a["score"]} for a in self.pred_set.annotations]
        return gt, results


def _mean_valid(x) -> float | None:
    v = np.asarray(x, dtype=np.float64)
    v = v[v > -1]
    return float(np.mean(v)) if v.size else None


def _mean(x) -> float | None:
    v = np.asarray(x, dtype=np.float64)
    return float(np.mean(v)) if v.size else None


# ============================================================================ protocols

def run_coco(data: EvalData, backend: Backend, crowd_as_ordinary: bool = False) -> dict:
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


def _voc_corners(xyxy: np.ndarray) -> np.ndarray:
    """Continuous xyxy -> VOC's 1-based inclusive corners (xmin = x + 1, xmax = x + w)."""
    x1, y1, x2, y2 = np.moveaxis(xyxy, -1, 0)
    return np.stack([x1 + 1.0, y1 + 1.0, x2, y2], axis=-1)


def run_voc(data: EvalData, backend: Backend, use_07_metric: bool) -> dict:
    gi, pi = data.per_image(data.gt_img), data.per_image(data.pred_img)
    gt_box = _voc_corners(data.gt_box)
    dont_care = data.gt_difficult | data.gt_crowd
    order = np.concatenate(pi) if pi else np.zeros(0, np.int64)
    out = backend.call(
        "voc_evaluate", [gt_box[i] for i in gi], [data.gt_cls[i] for i in gi],
        _voc_corners(data.pred_box[order]).reshape(-1, 4), data.pred_score[order],
        data.pred_cls[order], data.pred_img[order], gt_difficult=[dont_care[i] for i in gi],
        iou_threshold=0.5, use_07_metric=use_07_metric)
    classes, ap = np.asarray(out["classes"]), np.asarray(out["ap"], dtype=np.float64)
    ap_of = {int(c): float(a) for c, a in zip(classes, ap)}
    per_class = [{"id": int(cid), "name": data.names[k], "ap": ap_of.get(k)}
                 for k, cid in enumerate(data.cat_ids)]
    return {"map50": _mean(ap), "map50_95": None, "n_classes": len(classes),
            "per_class": per_class}


def _progress(iterable, desc: str, total: int):
    """``iterable`` with a tqdm bar on an interactive stderr for long loops (else as is)."""
    if total < 2000:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, disable=None)


def ultralytics_filter(data: EvalData, conf: float, max_det: int) -> list:
    """Per image, the predictions that pass Ultralytics' NMS filters, in the order its NMS
    returns them: score > conf, sorted by score descending (stable on ties), the first max_det.

    The order matters: ``match_predictions`` gives a label to the lowest-index candidate
    prediction (yolov5's quirk), which is the highest-scored one only in this order.
    """
    kept = []
    for idx in data.per_image(data.pred_img):
        idx = idx[data.pred_score[idx] > conf]
        kept.append(idx[np.argsort(-data.pred_score[idx], kind="stable")][:max_det])
    return kept


def ultralytics_matches(data: EvalData, backend: Backend, kept: list) -> dict:
    """Per-prediction correctness at IoU 0.50:0.95 (``match_predictions`` per image, on the
    predictions ``kept`` per image by :func:`ultralytics_filter`), with crowd GTs as ordinary
    GTs and difficult GTs dropped."""
    gt_ok = ~data.gt_difficult
    gi = data.per_image(np.where(gt_ok, data.gt_img, -1))
    tp, conf, pcls = [], [], []
    for g, p in _progress(zip(gi, kept), "ultralytics matching", data.n_images):
        if len(p) == 0:
            continue
        if len(g) == 0:
            correct = np.zeros((len(p), len(ULTRALYTICS_IOUV)), dtype=bool)
        else:
            iou = backend.box_iou(data.gt_box[g], data.pred_box[p])
            correct = np.asarray(backend.call("match_predictions", data.pred_cls[p],
                                              data.gt_cls[g], iou, ULTRALYTICS_IOUV), dtype=bool)
        tp.append(correct)
        conf.append(data.pred_score[p])
        pcls.append(data.pred_cls[p])
    t = len(ULTRALYTICS_IOUV)
    return {"tp": np.concatenate(tp) if tp else np.zeros((0, t), bool),
            "conf": np.concatenate(conf) if conf else np.zeros(0),
            "pred_cls": np.concatenate(pcls) if pcls else np.zeros(0, np.int64),
            "target_cls": data.gt_cls[gt_ok]}


def _ultralytics_ap(backend: Backend, m: dict, version: str) -> tuple:
    """(p [C], r [C], ap [C, T], classes [C]) of ``ap_per_class`` on matches ``m``."""
    # tp goes in as 0/1 floats: torch_impl's as_tensor refuses bool tensors.
    _, _, p, r, _, ap, classes = backend.call(
        "ap_per_class", m["tp"].astype(np.float64), m["conf"], m["pred_cls"], m["target_cls"],
        version=version)
    ap = np.asarray(ap, dtype=np.float64).reshape(len(classes), m["tp"].shape[1])
    return p, r, ap, classes


def run_ultralytics(data: EvalData, backend: Backend, conf: float, max_det: int,
                    version: str) -> dict:
    kept = ultralytics_filter(data, conf, max_det)
    m = ultralytics_matches(data, backend, kept)
    p, r, ap, classes = _ultralytics_ap(backend, m, version)
    row = {int(c): i for i, c in enumerate(classes)}
    per_class = []
    for k, cid in enumerate(data.cat_ids):
        i = row.get(k)
        per_class.append({"id": int(cid), "name": data.names[k],
                          "p": None if i is None else float(p[i]),
                          "r": None if i is None else float(r[i]),
                          "ap50": None if i is None else float(ap[i, 0]),
                          "ap50_95": None if i is None else float(ap[i].mean())})
    return {"map50": _mean(ap[:, 0]), "map50_95": _mean(ap.mean(1)) if len(ap) else None,
            "precision": _mean(p), "recall": _mean(r), "n_classes": len(classes),
            "n_predictions": int(sum(len(k) for k in kept)), "per_class": per_class,
            "version": version, "conf": conf, "max_det": max_det, "_matches": m}


def confusion(data: EvalData, backend: Backend, kept: list) -> np.ndarray:
    """The Ultralytics confusion matrix [K + 1, K + 1] (predicted, true; index K background),
    summed over images, on the predictions ``kept`` per image by :func:`ultralytics_filter`;
    difficult GTs dropped."""
    nc = data.n_classes
    total = np.zeros((nc + 1, nc + 1))
    gi = data.per_image(np.where(~data.gt_difficult, data.gt_img, -1))
    for g, p in _progress(zip(gi, kept), "confusion matrix", data.n_images):
        dets = np.concatenate([data.pred_box[p], data.pred_score[p][:, None],
                               data.pred_cls[p][:, None].astype(np.float64)], axis=1)
        labels = np.concatenate([data.gt_cls[g][:, None].astype(np.float64), data.gt_box[g]],
                                axis=1)
        total += np.asarray(backend.call("confusion_matrix", dets.reshape(-1, 6),
                                         labels.reshape(-1, 5), nc), dtype=np.float64)
    return total


# ============================================================================ why they differ

def reasons(data: EvalData, results: dict, args, backend: Backend) -> list:
    """One line per cause of difference between the protocols that applies to this data, with
    its effect measured where one evaluation with the cause removed isolates it."""
    out = []
    n_crowd, n_diff = int(data.gt_crowd.sum()), int(data.gt_difficult.sum())
    if n_crowd:
        effect = ""
        if "coco" in results:
            alt = run_coco(data, backend, crowd_as_ordinary=True)["map50"]
            effect = f"; as ordinary GTs COCO's mAP@0.5 would be {_fmt(alt, 0)}"
        out.append(f"crowd GTs: {n_crowd} (COCO ignores them and lets them absorb any number of "
                   f"detections; Ultralytics counts them as ordinary GTs; VOC here treats them "
                   f"as difficult{effect})")
    if n_diff:
        out.append(f"difficult GTs: {n_diff} (VOC ignores them; COCO counts them as ordinary "
                   f"GTs; Ultralytics' VOC converter drops them, so detections on them are "
                   f"false positives)")
    # COCO keeps the 100 highest-scored detections per (image, category).
    key = data.pred_img * max(data.n_classes, 1) + data.pred_cls
    order = np.lexsort((-data.pred_score, key))
    k_sorted = key[order]
    starts = np.searchsorted(k_sorted, k_sorted, side="left")
    n_over = int(np.sum(np.arange(len(order)) - starts >= 100))
    if n_over:
        out.append(f"detections beyond COCO's maxDets=100 per (image, class): {n_over} (COCO "
                   f"drops them; VOC keeps all; Ultralytics keeps {args.max_det} per image)")
    n_low = int(np.sum(data.pred_score <= args.conf))
    n_kept = sum(len(k) for k in ultralytics_filter(data, args.conf, args.max_det))
    n_cut = len(data.pred_score) - n_low - n_kept
    if n_low or n_cut:
        effect = ""
        if "ultralytics" in results:
            alt = run_ultralytics(data, backend, -math.inf, max(len(data.pred_score), 1),
                                  args.ultralytics_version)["map50"]
            effect = f"; without these filters its mAP@0.5 would be {_fmt(alt, 0)}"
        out.append(f"Ultralytics' NMS filters: {n_low} detections with conf <= {args.conf}, "
                   f"{n_cut} beyond max_det={args.max_det} per image (only Ultralytics drops "
                   f"them{effect})")
    # Same-class (detection, GT) overlaps: IoU exactly 0.5, and detections on 2+ GTs.
    n_half, n_multi = 0, 0
    gi, pi = data.per_image(data.gt_img), data.per_image(data.pred_img)
    from ref_numpy.boxes import box_iou

    for g, p in _progress(zip(gi, pi), "overlap checks", data.n_images):
        if len(g) == 0 or len(p) == 0:
            continue
        iou = box_iou(data.pred_box[p], data.gt_box[g])
        same = data.pred_cls[p][:, None] == data.gt_cls[g][None, :]
        n_half += int(np.sum(same & (iou == 0.5)))
        n_multi += int(np.sum(np.sum(same & (iou >= 0.5), axis=1) >= 2))
    if n_half:
        out.append(f"(detection, GT) pairs at IoU exactly 0.5: {n_half} (COCO and Ultralytics "
                   f"match at IoU >= 0.5, VOC needs > 0.5)")
    if n_multi:
        out.append(f"detections overlapping 2+ GTs of their class at IoU >= 0.5: {n_multi} "
                   f"(COCO falls back to the next-best unmatched GT; VOC takes the best GT even "
                   f"if already matched, a duplicate FP; Ultralytics pairs by IoU, one per "
                   f"label)")
    ul = results.get("ultralytics")
    if ul is not None and args.ultralytics_version == "8.3":
        m = ul["_matches"]
        low = []  # (final recall, class name) of the classes found but not all found
        for k in range(data.n_classes):
            n_gt = int(np.sum(m["target_cls"] == k))
            if n_gt:
                rec = float(np.sum(m["tp"][m["pred_cls"] == k, 0])) / n_gt
                if 0.0 < rec < 1.0:
                    low.append((rec, data.names[k]))
        alt = _mean(_ultralytics_ap(backend, m, "8.4")[2][:, 0]) if low else None
        if alt is not None and ul["map50"] is not None and ul["map50"] != alt:
            n_gt_classes = len(np.unique(m["target_cls"]))
            shown = ", ".join(f"{n} {r:.3f}" for r, n in (low if len(low) <= 5 else [min(low)]))
            which = shown if len(low) <= 5 else (
                f"{len(low)} of {n_gt_classes} classes, lowest {shown}")
            out.append(f"final recall at IoU 0.5 below 1 ({which}): Ultralytics' (1, 0) end "
                       f"point interpolates precision linearly from there to recall 1 and "
                       f"credits that area, here {ul['map50'] - alt:+.3f} mAP@0.5 (with 8.4's "
                       f"end points, precision 0 past the last recall, it gives {alt:.3f}); "
                       f"COCO and VOC give nothing past the last recall")
    if any(r["map50"] is not None for r in results.values()):
        out.append("AP integration (every curve): COCO takes precision at 101 recall points "
                   "(step, next detection at the point), VOC07 the max precision at 11 points, "
                   "VOC12 the exact area under the envelope, Ultralytics a 101-point trapezoid")
    counts = {p: results[p]["n_classes"] for p in PROTOCOLS if p in results}
    if len(set(counts.values())) > 1:
        out.append("classes averaged: " + ", ".join(f"{p} {n}" for p, n in counts.items())
                   + " (COCO: classes with a non-ignored GT; VOC: with a non-difficult GT; "
                     "Ultralytics: classes present in the labels)")
    return out


# ============================================================================ output

def _fmt(v, width=7, digits=3) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def coco_summary_lines(coco: dict) -> list:
    """pycocotools' ``summarize`` text, line for line."""
    thr, max_dets = coco["iou_thrs"], coco["max_dets"]
    lines = []
    for (key, is_ap, iou, area, mi), v in zip(COCO_STATS, coco["stats_list"]):
        title = "Average Precision" if is_ap else "Average Recall"
        kind = "(AP)" if is_ap else "(AR)"
        iou_s = f"{thr[0]:0.2f}:{thr[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
        lines.append(f" {title:<18} {kind} @[ IoU={iou_s:<9} | area={area:>6s} | "
                     f"maxDets={max_dets[mi]:>3d} ] = {v:0.3f}")
    return lines


def _counts(data: EvalData) -> tuple:
    n_gt = np.bincount(data.gt_cls, minlength=data.n_classes)
    n_det = np.bincount(data.pred_cls, minlength=data.n_classes)
    return n_gt, n_det


def _class_table(data: EvalData, header: list, rows_of) -> list:
    n_gt, n_det = _counts(data)
    width = max([len("class")] + [len(n) for n in data.names])
    lines = [f"{'class':<{width}} {'GTs':>6} {'dets':>6} " + " ".join(f"{h:>9}" for h in header)]
    for k, name in enumerate(data.names):
        vals = rows_of(k)
        lines.append(f"{name:<{width}} {n_gt[k]:>6d} {n_det[k]:>6d} "
                     + " ".join(_fmt(v, 9) for v in vals))
    return lines


def print_report(data: EvalData, results: dict, why: list, notes: list, args, out) -> None:
    def say(line=""):
        print(line, file=out)

    say(f"ground truth: {args.gt} ({data.n_images} images, {len(data.gt_cls)} boxes, "
        f"{data.n_classes} classes); predictions: "
        f"{'synthetic (seed %d)' % args.seed if args.synthetic_pred else args.pred} "
        f"({len(data.pred_cls)} boxes); backend: {args.backend}"
        + (f" ({args.device})" if args.backend == "torch" else ""))
    if "coco" in results:
        c = results["coco"]
        say()
        say("COCO (pycocotools):")
        for line in coco_summary_lines(c):
            say(line)
        say()
        for line in _class_table(data, ["AP", "AP50", "AP75"], lambda k: (
                c["per_class"][k]["ap"], c["per_class"][k]["ap50"], c["per_class"][k]["ap75"])):
            say(line)
    for proto, title in (("voc07", "PASCAL VOC2007 (11-point, IoU > 0.5)"),
                         ("voc12", "PASCAL VOC2012 (all-point, IoU > 0.5)")):
        if proto in results:
            v = results[proto]
            say()
            say(f"{title}: mAP = {_fmt(v['map50'], 0)}")
            for line in _class_table(data, ["AP"], lambda k, v=v: (v["per_class"][k]["ap"],)):
                say(line)
    if "ultralytics" in results:
        u = results["ultralytics"]
        say()
        say(f"Ultralytics {u['version']} (conf > {u['conf']}, max_det {u['max_det']}, "
            f"{u['n_predictions']} predictions): P {_fmt(u['precision'], 0)}  "
            f"R {_fmt(u['recall'], 0)}  mAP50 {_fmt(u['map50'], 0)}  "
            f"mAP50-95 {_fmt(u['map50_95'], 0)}")
        for line in _class_table(data, ["P", "R", "mAP50", "mAP50-95"], lambda k: (
                u["per_class"][k]["p"], u["per_class"][k]["r"], u["per_class"][k]["ap50"],
                u["per_class"][k]["ap50_95"])):
            say(line)
    if len(results) > 1:
        say()
        say("side by side:")
        say(f"{'protocol':<12} {'mAP@0.5':>9} {'mAP@0.5:0.95':>13} {'classes':>8}")
        for proto in PROTOCOLS:
            if proto in results:
                r = results[proto]
                say(f"{proto:<12} {_fmt(r['map50'], 9)} {_fmt(r['map50_95'], 13)} "
                    f"{r['n_classes']:>8d}")
        say()
        say("why they differ on this data:")
        for line in why:
            say(f"  - {line}")
    for note in notes:
        say(f"note: {note}")


def _json_safe(x):
    """``x`` with NaN / infinite floats as None (JSON has no NaN) and NumPy scalars as Python."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _public(results: dict) -> dict:
    return {p: {k: v for k, v in r.items() if not k.startswith("_") and k != "stats_list"}
            for p, r in results.items()}


def write_plots(data: EvalData, matches: dict, cm: np.ndarray, out_dir: Path) -> list:
    """PR curves and F1-confidence curves at IoU 0.5 (raw, per class, Ultralytics' matching)
    and the confusion matrix, as PNGs in ``out_dir``. Returns the files written."""
    try:
        import matplotlib
    except ImportError as exc:
        raise InputError("--plots needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    tp50, conf, pcls = matches["tp"][:, 0], matches["conf"], matches["pred_cls"]
    curves = []
    for k, name in enumerate(data.names):
        sel = np.flatnonzero(pcls == k)
        sel = sel[np.argsort(-conf[sel], kind="stable")]
        n_gt = int(np.sum(matches["target_cls"] == k))
        tpc = np.cumsum(tp50[sel]).astype(np.float64)
        fpc = np.cumsum(~tp50[sel]).astype(np.float64)
        rec = tpc / n_gt if n_gt else np.zeros_like(tpc)
        prec = tpc / np.maximum(tpc + fpc, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        curves.append((name, conf[sel], rec, prec, f1))
    written = []
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, _, rec, prec, _ in curves:
        ax.step(np.r_[0.0, rec], np.r_[1.0, prec], where="post", label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="precision-recall at IoU 0.5")
    ax.legend(loc="lower left")
    written.append(out_dir / "PR_curve.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, c, _, _, f1 in curves:
        ax.plot(c, f1, label=name)
    ax.set(xlabel="confidence", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02),
           title="F1 vs confidence at IoU 0.5")
    ax.legend(loc="lower left")
    written.append(out_dir / "F1_curve.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 5))
    labels = data.names + ["background"]
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8)
    ax.set(xlabel="true", ylabel="predicted", title="confusion matrix (conf > 0.25, IoU > 0.45)")
    fig.colorbar(im)
    fig.tight_layout()
    written.append(out_dir / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


# ============================================================================ CLI

EPILOG = """examples:
  # COCO mAP of a COCO results file (pycocotools' summary)
  python scripts/evaluate.py --gt annotations.json --pred results.json
  # YOLO labels (sizes from the images) against YOLO predictions with a confidence column
  python scripts/evaluate.py --gt data/labels/val --images data/images/val --pred runs/labels
  # every protocol side by side on the fixture, with synthetic predictions, plots and JSON
  python scripts/evaluate.py --gt fixtures/shapes --synthetic-pred --protocol all \\
      --plots /tmp/plots --json /tmp/eval.json
  # the reference implementation instead of torch, or torch on a GPU
  python scripts/evaluate.py --gt fixtures/shapes/voc --synthetic-pred --backend ref
  python scripts/evaluate.py --gt annotations.json --pred results.json --device cuda

exit codes: 0 evaluated, 2 bad arguments or unreadable / malformed input (the message names the
file)"""


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--gt", type=Path, required=True,
                        help="ground truth: COCO JSON, YOLO labels dir (or data-set root with "
                             "labels/ and images/), or VOC XML dir")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path,
                     help="predictions: COCO results JSON or YOLO txt dir with a conf column")
    src.add_argument("--synthetic-pred", action="store_true",
                     help="make predictions from the GT (jitter, drops, false positives)")
    parser.add_argument("--gt-format", choices=("auto", "coco", "yolo", "voc"), default="auto",
                        help="format of --gt (default: auto-detected)")
    parser.add_argument("--pred-format", choices=("auto", "coco", "yolo"), default="auto",
                        help="format of --pred (default: auto-detected)")
    parser.add_argument("--images", type=Path, help="images dir (YOLO needs the sizes)")
    parser.add_argument("--names", type=Path,
                        help="class names file, one per line (default: classes.txt in or next "
                             "to --gt)")
    parser.add_argument("--protocol", choices=PROTOCOLS + ("all",), default="coco",
                        help="evaluation protocol; all = side by side with reasons "
                             "(default coco)")
    parser.add_argument("--backend", choices=("ref", "torch"), default="torch",
                        help="torch_impl.metrics or ref_numpy.metrics (default torch)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--conf", type=float, default=0.001,
                        help="Ultralytics: keep predictions with conf > this (default 0.001)")
    parser.add_argument("--max-det", type=int, default=300,
                        help="Ultralytics: predictions kept per image (default 300)")
    parser.add_argument("--ultralytics-version", choices=("8.3", "8.4"), default="8.3",
                        help="compute_ap end points: 8.3 (= yolov5 v7.0) or 8.4")
    parser.add_argument("--seed", type=int, default=0, help="--synthetic-pred seed (default 0)")
    parser.add_argument("--save-pred", type=Path,
                        help="write the predictions used as a COCO results JSON")
    parser.add_argument("--plots", type=Path, help="write PR, F1 and confusion-matrix PNGs here")
    parser.add_argument("--json", type=Path, help="write every number as JSON here")
    args = parser.parse_args(argv)
    if args.max_det < 1:
        parser.error(f"--max-det must be >= 1, got {args.max_det}")
    if not math.isfinite(args.conf) or not 0.0 <= args.conf < 1.0:
        parser.error(f"--conf must be in [0, 1), got {args.conf}")
    if args.names is not None and not args.names.is_file():
        parser.error(f"--names {args.names}: no such file")
    if args.images is not None and not args.images.is_dir():
        parser.error(f"--images {args.images}: no such directory")
    if args.backend == "ref" and args.device != "cpu":
        parser.error("--device applies to --backend torch only")
    return args


def evaluate(args, out=None) -> dict:
    """Load, evaluate, print (to ``out``, default stdout) and write what ``args`` asks for;
    returns the JSON document."""
    out = sys.stdout if out is None else out
    gt = load_gt(args)
    pred = synthetic_predictions(gt, seed=args.seed) if args.synthetic_pred \
        else load_pred(args, gt)
    if args.save_pred is not None:
        formats.write_coco_results(pred, args.save_pred)
    data = EvalData(gt, pred)
    backend = Backend(args.backend, args.device)
    wanted = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    results = {}
    if "coco" in wanted:
        results["coco"] = run_coco(data, backend)
    for proto, use07 in (("voc07", True), ("voc12", False)):
        if proto in wanted:
            results[proto] = run_voc(data, backend, use07)
    if "ultralytics" in wanted:
        results["ultralytics"] = run_ultralytics(data, backend, args.conf, args.max_det,
                                                 args.ultralytics_version)
    why = reasons(data, results, args, backend) if len(wanted) > 1 else []
    plots, cm = [], None
    if args.plots is not None or args.json is not None:
        kept = ultralytics_filter(data, args.conf, args.max_det)
        cm = confusion(data, backend, kept)
        if args.plots is not None:
            matches = (results["ultralytics"]["_matches"] if "ultralytics" in results
                       else ultralytics_matches(data, backend, kept))
            plots = write_plots(data, matches, cm, args.plots)
    print_report(data, results, why, backend.notes, args, out)
    n_gt, n_det = _counts(data)
    doc = {
        "gt": str(args.gt), "pred": "synthetic" if args.synthetic_pred else str(args.pred),
        "seed": args.seed if args.synthetic_pred else None,
        "backend": args.backend, "device": args.device if args.backend == "torch" else None,
        "n_images": data.n_images, "n_gt": int(len(data.gt_cls)),
        "n_pred": int(len(data.pred_cls)),
        "classes": [{"id": int(c), "name": n, "n_gt": int(g), "n_pred": int(d)}
                    for c, n, g, d in zip(data.cat_ids, data.names, n_gt, n_det)],
        "protocols": _public(results), "reasons": why, "notes": backend.notes,
        "confusion_matrix": None if cm is None else {
            "labels": data.names + ["background"], "axes": ["predicted", "true"],
            "matrix": cm.tolist()},
        "plots": [str(p) for p in plots],
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(doc), indent=1, allow_nan=False) + "\n",
                             encoding="utf-8")
    return doc


def main(argv=None) -> int:
    try:
        args = _parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    try:
        evaluate(args)
    except InputError as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evaluate.py: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
