"""Wrong COCO mAP implementations (``metrics.coco_evaluate``), each with one tutorial defect.

They share one small evaluator written for the corpus (:func:`tutorial_coco`: per image and
category, all IoU thresholds at once; not the kit's transcription), which with no defect equals
pycocotools (``coco_correct`` is in :data:`CORRECT`: the kit must pass it).
"""
from __future__ import annotations

import numpy as np

from parity_tests.mutants import Mutant

THRS = np.linspace(0.5, 0.95, 10)
RECALLS = np.linspace(0.0, 1.0, 101)
AREAS = ((0.0, 1e10), (0.0, 32.0 ** 2), (32.0 ** 2, 96.0 ** 2), (96.0 ** 2, 1e10))
MAXDETS = (1, 10, 100)


def _iou(d, g, crowd):
    d, g = np.asarray(d, float).reshape(-1, 4), np.asarray(g, float).reshape(-1, 4)
    x1 = np.maximum(d[:, None, 0], g[None, :, 0])
    y1 = np.maximum(d[:, None, 1], g[None, :, 1])
    x2 = np.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
    y2 = np.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
    w, h = x2 - x1, y2 - y1
    inter = w * h
    da, ga = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    den = np.where(np.asarray(crowd, bool)[None, :], da[:, None], da[:, None] + ga[None, :] - inter)
    with np.errstate(all="ignore"):
        return np.where((w > 0) & (h > 0), inter / den, 0.0)


def _match(iou, ig, crowd, one_to_one, strict):
    """[T, D] matched flags and ignore flags; GTs pre-sorted non-ignored first."""
    t_n, (d_n, g_n) = len(THRS), iou.shape
    matched = np.zeros((t_n, d_n), bool)
    m_ig = np.zeros((t_n, d_n), bool)
    used = np.zeros((t_n, g_n), bool)
    thr = np.minimum(THRS, 1 - 1e-10)[:, None]
    rows = np.arange(t_n)
    for d in range(d_n):
        free = (~used | crowd[None, :]) if one_to_one else np.ones((t_n, g_n), bool)
        ok = free & ((iou[d][None, :] > thr) if strict else (iou[d][None, :] >= thr))   # [T, G]
        sel = np.where(np.any(ok & ~ig, 1, keepdims=True), ok & ~ig, ok)
        vals = np.where(sel, iou[d][None, :], -np.inf)[:, ::-1]
        g = g_n - 1 - np.argmax(vals, 1) if g_n else np.zeros(t_n, int)       # the last GT on ties
        hit = sel.any(1)
        matched[hit, d], m_ig[hit, d] = True, ig[g[hit]]
        used[rows[hit], g[hit]] = True
    return matched, m_ig


def tutorial_coco(gt, results, area_from_box=False, crowd="ignore", points=101, one_to_one=True,
                  per_image_cut=True, strict=False):
    """COCO's 12 stats; the keyword arguments plant one defect each (defaults: no defect)."""
    imgs = sorted(i["id"] for i in gt["images"])
    cats = sorted(c["id"] for c in gt["categories"])
    anns = [a for a in gt["annotations"] if not (crowd == "drop" and a.get("iscrowd", 0))]
    rec = RECALLS if points == 101 else np.linspace(0, 1, points)
    prec = -np.ones((len(THRS), len(rec), len(cats), 4, 3))
    rcl = -np.ones((len(THRS), len(cats), 4, 3))
    by_key: dict = {}
    for x in anns:
        by_key.setdefault((x["image_id"], x["category_id"]), ([], []))[0].append(x)
    for x in results:
        by_key.setdefault((x["image_id"], x["category_id"]), ([], []))[1].append(x)
    for k, c in enumerate(cats):
        for a, (lo, hi) in enumerate(AREAS):
            rows, npos, seen = [], 0, False
            for img in imgs:
                g, d = by_key.get((img, c), ([], []))
                if not g and not d:
                    continue
                seen = True
                crowd_f = np.array([bool(x.get("iscrowd", 0)) and crowd == "ignore" for x in g], bool)
                area = np.array([x["bbox"][2] * x["bbox"][3] if area_from_box else x["area"] for x in g])
                ig = crowd_f | (area < lo) | (area > hi)
                gs = np.argsort(ig, kind="stable")
                ds = np.argsort([-x["score"] for x in d], kind="stable")
                if per_image_cut:
                    ds = ds[:100]
                dbox = np.array([d[i]["bbox"] for i in ds], float).reshape(-1, 4)
                iou = _iou(dbox, [g[i]["bbox"] for i in gs], crowd_f[gs])
                m, mig = _match(iou, ig[gs], crowd_f[gs], one_to_one, strict)
                darea = dbox[:, 2] * dbox[:, 3]
                mig = mig | (~m & ((darea < lo) | (darea > hi)))
                rows.append((np.array([d[i]["score"] for i in ds], float), m, mig))
                npos += int(np.sum(~ig))
            if not seen or npos == 0:
                continue
            for mi, md in enumerate(MAXDETS):
                cut = md if per_image_cut else None
                s = np.concatenate([r[0][:cut] for r in rows])
                o = np.argsort(-s, kind="stable")
                m = np.concatenate([r[1][:, :cut] for r in rows], 1)[:, o]
                ig = np.concatenate([r[2][:, :cut] for r in rows], 1)[:, o]
                tp, fp = np.cumsum(m & ~ig, 1), np.cumsum(~m & ~ig, 1)
                r_, p_ = tp / npos, tp / (tp + fp + np.spacing(1))
                rcl[:, k, a, mi] = r_[:, -1] if len(s) else 0
                p_ = np.flip(np.maximum.accumulate(np.flip(p_, 1), 1), 1)
                for t in range(len(THRS)):
                    idx = np.searchsorted(r_[t], rec, side="left")
                    prec[t, :, k, a, mi] = [p_[t, i] if i < len(s) else 0.0 for i in idx]
    return _summary(prec, rcl)


def _summary(prec, rcl):
    def mean(x):
        x = x[x > -1]
        return float(np.mean(x)) if x.size else -1.0
    ap = [mean(prec[:, :, :, 0, 2]), mean(prec[0, :, :, 0, 2]), mean(prec[5, :, :, 0, 2])]
    ap += [mean(prec[:, :, :, a, 2]) for a in (1, 2, 3)]
    ar = [mean(rcl[:, :, 0, m]) for m in (0, 1, 2)] + [mean(rcl[:, :, a, 2]) for a in (1, 2, 3)]
    return np.array(ap + ar)


def coco_correct(gt, results):
    return tutorial_coco(gt, results)


def coco_area_from_box(gt, results):
    """Area ranges from the GT box w*h instead of the annotation's 'area'."""
    return tutorial_coco(gt, results, area_from_box=True)


def coco_crowd_dropped(gt, results):
    """Crowd GTs removed before matching: detections on crowds become false positives."""
    return tutorial_coco(gt, results, crowd="drop")


def coco_crowd_ordinary(gt, results):
    """iscrowd never read: crowds are ordinary GTs."""
    return tutorial_coco(gt, results, crowd="ordinary")


def coco_11_point(gt, results):
    """VOC2007's 11 recall points instead of COCO's 101."""
    return tutorial_coco(gt, results, points=11)


def coco_multi_match(gt, results):
    """A matched GT stays available: duplicates are true positives."""
    return tutorial_coco(gt, results, one_to_one=False)


def coco_no_max_dets(gt, results):
    """No per-image maxDets cut (AR@1 = AR@10 = AR@100)."""
    return tutorial_coco(gt, results, per_image_cut=False)


def coco_strict_iou(gt, results):
    """IoU > threshold instead of >=."""
    return tutorial_coco(gt, results, strict=True)


def _m(fn, cause):
    return Mutant(fn.__name__, "metrics.coco_evaluate", fn, cause, defect=fn.__doc__ or "")


MUTANTS = [
    _m(coco_area_from_box, "area from the box"),
    _m(coco_crowd_dropped, "crowd GTs dropped"),
    _m(coco_crowd_ordinary, "crowd GTs as ordinary"),
    _m(coco_11_point, "11-point AP"),
    _m(coco_multi_match, "several detections matched to one GT"),
    _m(coco_no_max_dets, "maxDets not applied per image"),
    _m(coco_strict_iou, "IoU > threshold"),
]
CORRECT = [_m(coco_correct, "")]
