"""Spec for ``metrics.coco_evaluate`` (a user's COCO mAP), with its diagnosis probes.

The user's function takes a COCO ground-truth dict and a results list and returns the 12
``COCOeval.stats`` (an array, a list, a dict with ``"stats"``, or any object with a ``.stats``
attribute, e.g. pycocotools' ``COCOeval`` itself). The kit compares the 12 stats graded (in AP
points) and explains a difference with :func:`coco_variant`, a plain per-image transcription of
pycocotools' ``evaluateImg`` / ``accumulate`` with one switch per suspected cause.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator

import numpy as np

from parity_tests.conformance.engine import Check, Probe, Spec, compare_values
from ref_numpy import metrics as M
from ref_numpy.boxes import coco_box_iou
from ref_numpy.shared.coco import (COCO_AREA_RNG, COCO_IOU_THRS, COCO_MAX_DETS, COCO_REC_THRS,
                                   MAX_IOU_THR, summarize)

#: Shrinking calls per counterexample (each costs an evaluation by the user, the reference and a
#: probe's variant; a COCO problem of a few images shrinks to its core within this many).
SHRINK_BUDGET = 40
#: Stats closer than this are shown as equal in a finding (rounding, not a decision).
STAT_ATOL = 1e-12
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# ----------------------------------------------------------------------------- the variant evaluator

def pairwise_coco_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' box IoU of xywh boxes ``dt [D, 4]`` x ``gt [G, 4]``; a crowd GT's
    denominator is the detection's area. [D, G] float64: :func:`ref_numpy.boxes.coco_box_iou`
    (the one kernel of COCO's convention)."""
    return coco_box_iou(np.asarray(dt, np.float64).reshape(-1, 4), np.asarray(gt, np.float64).reshape(-1, 4),
                        np.asarray(crowd, bool))


def _eval_image(gts: list, dts: list, lo: float, hi: float, max_det: int | None, *,
                one_to_one: bool, strict: bool) -> dict | None:
    """pycocotools ``evaluateImg`` for one (image, category, area range); None if both empty.

    Sequential by nature: detections in score order, each takes the best still-available GT."""
    if not gts and not dts:
        return None
    g_ig = np.array([c or a < lo or a > hi for _, a, c in gts], bool)
    g_order = np.argsort(g_ig, kind="mergesort")                  # non-ignored GTs first
    g_box = np.array([gts[i][0] for i in g_order], float).reshape(-1, 4)
    g_crowd = np.array([gts[i][2] for i in g_order], bool)
    g_ig = g_ig[g_order]
    d_order = np.argsort([-s for _, s in dts], kind="mergesort")[:max_det]
    d_box = np.array([dts[i][0] for i in d_order], float).reshape(-1, 4)
    d_score = np.array([dts[i][1] for i in d_order], float)
    iou = pairwise_coco_iou(d_box, g_box, g_crowd)
    t_n, d_n, g_n = len(COCO_IOU_THRS), len(d_order), len(g_order)
    match = np.zeros((t_n, d_n), bool)
    d_ig = np.zeros((t_n, d_n), bool)
    for t, thr in enumerate(COCO_IOU_THRS):
        taken = np.zeros(g_n, bool)
        for d in range(d_n):
            best = min(thr, MAX_IOU_THR)
            if strict:
                best = np.nextafter(best, np.inf)  # IoU must exceed the threshold
            m = -1
            for g in range(g_n):
                if one_to_one and taken[g] and not g_crowd[g]:
                    continue
                if m > -1 and not g_ig[m] and g_ig[g]:
                    break
                if iou[d, g] < best:
                    continue
                best, m = iou[d, g], g
            if m > -1:
                match[t, d], d_ig[t, d], taken[m] = True, g_ig[m], True
    d_area = d_box[:, 2] * d_box[:, 3]
    d_ig |= ~match & ((d_area < lo) | (d_area > hi))[None, :]
    return {"score": d_score, "match": match, "ignore": d_ig, "n_pos": int(np.sum(~g_ig))}


def _ap_all_points(rc: np.ndarray, pr: np.ndarray) -> float:
    """Area under the monotone envelope of the whole curve (VOC2010+ 'all points')."""
    mrec = np.concatenate(([0.0], rc, [1.0]))
    mpre = np.maximum.accumulate(np.concatenate(([0.0], pr, [0.0]))[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def coco_variant(gt: dict, results: list, *, area: str = "annotation", crowd: str = "ignore",
                 interp: str = "101", one_to_one: bool = True, max_dets: str = "image",
                 strict: bool = False) -> np.ndarray:
    """COCO bbox mAP (the 12 stats) with one convention switched (the probes' alternatives).

    Args:
        gt, results: as :func:`ref_numpy.metrics.coco_evaluate` (dicts, ``bbox`` xywh).
        area: "annotation" (pycocotools: area ranges use the annotation's ``area``) or "box"
            (``w * h`` of the GT box).
        crowd: "ignore" (pycocotools: crowd GTs are ignored and absorb any number of
            detections, IoU over the detection's area), "drop" (crowd GTs removed, so detections
            on them are false positives) or "ordinary" (``iscrowd`` read as 0).
        interp: "101" (pycocotools' recall thresholds), "11" (VOC2007 11 points) or "all"
            (area under the whole envelope).
        one_to_one: False lets several detections match one (non-crowd) GT.
        max_dets: "image" (pycocotools: the top maxDet detections of each image) or "none"
            (no per-image cut at all: AR@1 = AR@10 = AR@100 in effect).
        strict: True matches only IoU > threshold (pycocotools: IoU >= threshold).

    Returns:
        ndarray[12] float64: ``COCOeval.stats``. With every default it equals
        ``coco_evaluate(gt, results).stats`` bit for bit (a test holds it to that).
    """
    img_ids = sorted(int(i["id"]) for i in gt["images"])
    cat_ids = sorted(int(c["id"]) for c in gt["categories"])
    gts: dict[tuple[int, int], list] = {}
    for a in gt["annotations"]:
        is_crowd = bool(a.get("iscrowd", 0))
        if is_crowd and crowd == "drop":
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        ar = w * h if area == "box" else float(a["area"])
        gts.setdefault((int(a["image_id"]), int(a["category_id"])), []).append(
            ([x, y, w, h], ar, is_crowd and crowd == "ignore"))
    dts: dict[tuple[int, int], list] = {}
    for r in results:
        dts.setdefault((int(r["image_id"]), int(r["category_id"])), []).append(
            ([float(v) for v in r["bbox"]], float(r["score"])))
    rec_thrs = {"101": COCO_REC_THRS, "11": np.linspace(0.0, 1.0, 11), "all": np.zeros(1)}[interp]
    t_n, k_n, a_n, m_n = len(COCO_IOU_THRS), len(cat_ids), len(COCO_AREA_RNG), len(COCO_MAX_DETS)
    precision = -np.ones((t_n, len(rec_thrs), k_n, a_n, m_n))
    recall = -np.ones((t_n, k_n, a_n, m_n))
    cut = COCO_MAX_DETS[-1] if max_dets == "image" else None
    for k, cat in enumerate(cat_ids):
        for a, (lo, hi) in enumerate(COCO_AREA_RNG):
            ev = [_eval_image(gts.get((i, cat), []), dts.get((i, cat), []), lo, hi, cut,
                              one_to_one=one_to_one, strict=strict) for i in img_ids]
            ev = [e for e in ev if e is not None]
            n_pos = sum(e["n_pos"] for e in ev)
            if not ev or n_pos == 0:
                continue
            for m, md in enumerate(COCO_MAX_DETS):
                per = md if max_dets == "image" else None
                score = np.concatenate([e["score"][:per] for e in ev])
                order = np.argsort(-score, kind="mergesort")
                match = np.concatenate([e["match"][:, :per] for e in ev], 1)[:, order]
                ig = np.concatenate([e["ignore"][:, :per] for e in ev], 1)[:, order]
                tp = np.cumsum(match & ~ig, 1).astype(float)
                fp = np.cumsum(~match & ~ig, 1).astype(float)
                for t in range(t_n):
                    nd = tp.shape[1]
                    rc = tp[t] / n_pos
                    pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if nd else 0.0
                    if nd == 0:
                        precision[t, :, k, a, m] = 0.0
                    elif interp == "all":
                        precision[t, 0, k, a, m] = _ap_all_points(rc, pr)
                    else:
                        pr = np.maximum.accumulate(pr[::-1])[::-1]         # monotone envelope
                        idx = np.searchsorted(rc, rec_thrs, side="left")
                        precision[t, :, k, a, m] = np.where(idx < nd, pr[np.minimum(idx, nd - 1)], 0.0)
    return summarize(precision, recall, COCO_IOU_THRS, COCO_MAX_DETS)


# ----------------------------------------------------------------------------- inputs

def _box(rng, lo, hi, size=640.0) -> list:
    w, h = (float(v) for v in np.round(rng.uniform(lo, hi, 2), 1))
    x, y = (float(v) for v in np.round(rng.uniform(0, size - max(w, h), 2), 1))
    return [x, y, w, h]


def _jitter(rng, b, amount) -> list:
    x, y, w, h = b
    dx, dy, dw, dh = rng.normal(0, amount, 4) * np.array([w, h, w, h])
    return [float(np.round(x + dx, 1)), float(np.round(y + dy, 1)),
            float(np.round(max(1.0, w + dw), 1)), float(np.round(max(1.0, h + dh), 1))]


def coco_problem(rng: np.random.Generator, *, n_img=(1, 4), n_cat=(1, 3), n_gt=(0, 5),
                 size=(10.0, 200.0), area_factor=(0.6, 1.0), crowd=0.0, dup=0.15, fp=(0, 3),
                 ties=False, dets_per_gt=(1, 1), jitter=(0.0, 0.25)) -> dict:
    """A small COCO problem ``{"gt": dict, "results": list}``: images with GTs (the annotation
    ``area`` a fraction of ``w*h``, as a segmentation area is), jittered detections of them
    (some duplicated, some of the wrong category), false positives, scores (tied if ``ties``)."""
    img_ids = rng.permutation(np.arange(1, int(rng.integers(*n_img, endpoint=True)) + 1)) * 3
    cat_ids = sorted(rng.choice([1, 2, 5, 7], size=int(rng.integers(*n_cat, endpoint=True)), replace=False))
    anns, res = [], []

    def score():
        return float(rng.choice([0.3, 0.6, 0.9])) if ties else float(np.round(rng.uniform(0.01, 1), 4))
    for img in img_ids:
        for _ in range(int(rng.integers(*n_gt, endpoint=True))):
            cat = int(rng.choice(cat_ids))
            b = _box(rng, *size)
            is_crowd = int(rng.random() < crowd)
            anns.append({"id": len(anns) + 1, "image_id": int(img), "category_id": cat, "bbox": b,
                         "area": float(np.round(b[2] * b[3] * rng.uniform(*area_factor), 2)),
                         "iscrowd": is_crowd})
            if rng.random() < 0.85:
                k = int(rng.integers(*dets_per_gt, endpoint=True)) + int(rng.random() < dup)
                for _ in range(k):
                    c = cat if rng.random() < 0.9 else int(rng.choice(cat_ids))
                    res.append({"image_id": int(img), "category_id": c,
                                "bbox": _jitter(rng, b, rng.uniform(*jitter)), "score": score()})
        for _ in range(int(rng.integers(*fp, endpoint=True))):
            res.append({"image_id": int(img), "category_id": int(rng.choice(cat_ids)),
                        "bbox": _box(rng, *size), "score": score()})
    perm = rng.permutation(len(res))
    gt = {"images": [{"id": int(i), "width": 640, "height": 640} for i in img_ids],
          "categories": [{"id": int(c), "name": f"c{c}"} for c in cat_ids], "annotations": anns}
    return {"gt": gt, "results": [res[i] for i in perm]}


def _crowd(rng, fixed):
    x = coco_problem(rng, n_gt=(1, 4), crowd=0.4, size=(40.0, 250.0))
    for a in x["gt"]["annotations"]:  # detections inside crowd regions (a crowd absorbs them all)
        if a["iscrowd"]:
            bx, by, bw, bh = a["bbox"]
            for _ in range(int(rng.integers(1, 4))):
                w, h = bw * rng.uniform(0.2, 0.5), bh * rng.uniform(0.2, 0.5)
                x["results"].append({"image_id": a["image_id"], "category_id": a["category_id"],
                                     "bbox": [float(np.round(bx + rng.uniform(0, bw - w), 1)),
                                              float(np.round(by + rng.uniform(0, bh - h), 1)),
                                              float(np.round(w, 1)), float(np.round(h, 1))],
                                     "score": float(np.round(rng.uniform(0.01, 1), 4))})
    return x


def _at_threshold(rng, fixed):
    """Detections nested in their GT with IoU exactly 0.5 or 0.75 (w_det / w_gt, dyadic)."""
    x = coco_problem(rng, n_gt=(0, 2), fp=(0, 1))
    img = x["gt"]["images"][0]["id"]
    cat = x["gt"]["categories"][0]["id"]
    for _ in range(int(rng.integers(1, 4))):
        s = float(rng.choice([16.0, 32.0, 64.0]))
        gx, gy = float(rng.integers(0, 400)), float(rng.integers(0, 400))
        frac = float(rng.choice([0.5, 0.75]))
        x["gt"]["annotations"].append({"id": len(x["gt"]["annotations"]) + 1, "image_id": img,
                                       "category_id": cat, "bbox": [gx, gy, s, s], "area": s * s,
                                       "iscrowd": 0})
        x["results"].append({"image_id": img, "category_id": cat, "bbox": [gx, gy, s * frac, s],
                             "score": float(np.round(rng.uniform(0.01, 1), 4))})
    return x


def _many(rng, fixed):
    """More than 100 detections in one image and a dozen in others (maxDets cut per image)."""
    x = coco_problem(rng, n_img=(2, 3), n_cat=(1, 1), n_gt=(3, 8), fp=(8, 14), size=(10.0, 80.0))
    img = x["gt"]["images"][0]["id"]
    cat = x["gt"]["categories"][0]["id"]
    mine = [a for a in x["gt"]["annotations"] if a["image_id"] == img]
    for i in range(int(rng.integers(101, 125))):
        b = _jitter(rng, mine[i % len(mine)]["bbox"], 0.08) if mine and i % 3 else _box(rng, 10.0, 80.0)
        x["results"].append({"image_id": img, "category_id": cat, "bbox": b,
                             "score": float(np.round(rng.uniform(0.01, 1), 4))})
    return x


def _empty(rng, fixed):
    x = coco_problem(rng, n_gt=(0, 2), fp=(0, 1))
    if rng.random() < 0.5:
        x["results"] = []
    x["gt"]["images"].append({"id": 999, "width": 640, "height": 640})  # an image without GT
    return x


def _checks() -> list[Check]:
    return [
        Check("random", "1-4 images, 1-3 categories, jittered detections, duplicates, false "
              "positives", lambda r, f: coco_problem(r), weight=0.5),
        Check("area ranges", "GT sides near 32 and 96 px, annotation area < box area",
              lambda r, f: coco_problem(r, size=(24.0, 110.0), area_factor=(0.5, 0.95)), weight=0.4),
        Check("crowd", "iscrowd GTs with detections inside them", _crowd, noun="crowd", weight=0.4),
        Check("duplicates", "2-3 detections of the same GT", lambda r, f: coco_problem(
            r, dets_per_gt=(2, 3), jitter=(0.0, 0.05), fp=(0, 1)), noun="duplicate", weight=0.4),
        Check("threshold", "detection IoU exactly 0.5 or 0.75", _at_threshold, noun="at-threshold",
              weight=0.3),
        Check("score ties", "tied scores within and across images",
              lambda r, f: coco_problem(r, ties=True), noun="tied", weight=0.3),
        Check("maxDets", "101-125 detections in one image, a dozen in the others", _many,
              noun="crowded-image", weight=0.1),
        Check("empty", "no detections, an image without GT", _empty, weight=0.1),
    ]


# ----------------------------------------------------------------------------- probes

def _distinct_scores(x: dict) -> dict | None:
    """Scores made distinct in the order the contract visits tied detections (image order,
    then input order), so that tie-breaking no longer matters."""
    res = x["results"]
    s = np.array([r["score"] for r in res], float)
    if len(np.unique(s)) == len(s):
        return None
    img_rank = {i: n for n, i in enumerate(sorted(int(i["id"]) for i in x["gt"]["images"]))}
    order = np.lexsort((np.arange(len(res)), [img_rank[int(r["image_id"])] for r in res], -s))
    new = copy.deepcopy(res)
    for rank, i in enumerate(order):
        new[i]["score"] = 1.0 - (rank + 1) / (len(res) + 1)
    return {**x, "results": new}


def _variant(**kw):
    return lambda x: coco_variant(x["gt"], x["results"], **kw)


def _probes() -> list[Probe]:
    return [
        Probe("crash on an empty results list", "predicate",
              lambda x, e, g: isinstance(g, BaseException) and not x["results"],
              "with no detections at all your evaluation raises (pycocotools' loadRes([]) fails "
              "with IndexError); the contract scores it: recall 0, AP 0 where there are GTs, -1 "
              "where there are none", "if not results: evaluate against an empty detection set "
              "(COCO() with the GT's images and categories and no annotations) instead of loadRes"),
        Probe("area from the box, not the annotation", "alt", _variant(area="box"),
              "your small/medium/large split uses the GT box's w*h; COCO uses the annotation's "
              "'area' field (the segmentation's area, smaller than the box)",
              "compare ann['area'] (not bbox w*h) with the 32^2 / 96^2 limits; detections use "
              "their box area"),
        Probe("crowd GTs dropped", "alt", _variant(crowd="drop"),
              "crowd GTs are removed, so detections on a crowd region count as false positives; "
              "COCO ignores a crowd GT and also every detection matched to it",
              "keep iscrowd GTs as 'ignore' GTs: match detections to them (IoU over the "
              "detection's area), then drop those detections from TP and FP"),
        Probe("crowd GTs as ordinary GTs", "alt", _variant(crowd="ordinary"),
              "iscrowd is not read: crowd regions count as GTs to be found (recall drops) and "
              "take one detection each", "treat iscrowd == 1 GTs as ignored (see COCOeval.evaluateImg)"),
        Probe("11-point AP", "alt", _variant(interp="11"),
              "AP is the mean of the precision envelope at 11 recall points (VOC2007); COCO "
              "uses 101 points np.linspace(0, 1, 101)",
              "sample the envelope at np.linspace(0, 1, 101) with searchsorted(side='left')"),
        Probe("all-point AP, not 101-point", "alt", _variant(interp="all"),
              "AP is the exact area under the precision envelope (VOC2010+ 'all points'); COCO "
              "samples it at 101 recall points", "sample the envelope at np.linspace(0, 1, 101)"),
        Probe("several detections matched to one GT", "alt", _variant(one_to_one=False),
              "a GT already matched is matched again by later detections, so duplicates count "
              "as true positives; COCO matches each GT at most once (duplicates are false positives)",
              "mark a GT as taken once matched (per IoU threshold) and skip taken GTs"),
        Probe("maxDets not applied per image", "alt", _variant(max_dets="none"),
              "maxDets (1, 10, 100) is not applied as a per-image cut of the top-scored "
              "detections: AR@1 and AR@10 (and AP with > 100 detections in an image) differ",
              "keep the maxDet highest-scored detections of each image and category"),
        Probe("IoU > threshold instead of >=", "alt", _variant(strict=True),
              "a detection whose IoU equals the threshold is not matched: you compare iou > t, "
              "COCO matches iou >= t", "match when iou >= threshold"),
        Probe("tie order", "transform", _distinct_scores,
              "detections with equal scores are ranked differently; COCO ranks ties by image "
              "(sorted image id), then by input order (np.argsort(-s, kind='mergesort'))",
              "sort with a stable sort (kind='mergesort') over detections concatenated in image "
              "id order"),
    ]


# ----------------------------------------------------------------------------- spec

def stats_of(out: Any) -> Any:
    """The 12 stats from what a user's COCO evaluation returns."""
    if isinstance(out, dict) and "stats" in out:
        out = out["stats"]
    elif hasattr(out, "stats"):
        out = out.stats
    return np.asarray(out, dtype=np.float64).ravel()


def _shrink(x: dict) -> Iterator[dict]:
    """Smaller problems, coarse first: drop an image (its annotations and results with it),
    half of the results, then one result, one annotation."""
    gt, res, anns = x["gt"], x["results"], x["gt"]["annotations"]
    if len(gt["images"]) > 1:
        for im in gt["images"]:
            i = im["id"]
            yield {"gt": {**gt, "images": [m for m in gt["images"] if m["id"] != i],
                          "annotations": [a for a in anns if a["image_id"] != i]},
                   "results": [r for r in res if r["image_id"] != i]}
    if len(res) > 8:
        yield {**x, "results": res[: len(res) // 2]}
        yield {**x, "results": res[len(res) // 2:]}
    for i in range(len(res)):
        yield {**x, "results": res[:i] + res[i + 1:]}
    for i in range(len(anns)):
        yield {**x, "gt": {**gt, "annotations": anns[:i] + anns[i + 1:]}}


def _show_input(x: dict) -> str:
    gt = x["gt"]
    n_crowd = sum(bool(a.get("iscrowd", 0)) for a in gt["annotations"])
    crowd = f" ({n_crowd} crowd)" if n_crowd else ""
    return (f"{len(gt['images'])} image(s), {len(gt['annotations'])} GT{crowd}, "
            f"{len(x['results'])} detection(s)")


def _show_output(y: Any) -> str:
    s = np.asarray(y, dtype=np.float64).ravel()
    if s.shape != (12,):
        return f"{s.size} values (expected the 12 COCO stats)"
    return " ".join(f"{n}={v:.4f}" for n, v in zip(STAT_NAMES, s))


def _show_diff(e: Any, g: Any) -> str:
    e, g = np.asarray(e, np.float64).ravel(), np.asarray(g, np.float64).ravel()
    if e.shape != g.shape:
        return f"yours {_show_output(g)}, reference {_show_output(e)}"
    bad = np.flatnonzero(~(np.abs(e - g) <= STAT_ATOL))  # NaN counts as different
    def part(v):
        return " ".join(f"{STAT_NAMES[i]}={v[i]:.4f}" for i in bad)
    return f"yours {part(g)}, reference {part(e)}"


def _compare(e, g, x):
    gr = compare_values(e, g, 1.0)
    e, g = np.asarray(e, np.float64), np.asarray(g, np.float64)
    if not gr.ok and e.shape == g.shape:
        both = (e >= 0) & (g >= 0)  # -1 means "no GT in this slice": not an AP difference
        gr.diff = float(np.max(np.abs(e - g)[both], initial=0.0))
    return gr


def coco_spec() -> Spec:
    return Spec("metrics.coco_evaluate", lambda gt, results: M.coco_evaluate(gt, results).stats,
                ["gt", "results"],
                "(gt COCO dict, results [{image_id, category_id, bbox xywh, score}]) -> 12 stats",
                _checks(), _probes(), _compare, _show_input, _show_output, units="(AP/AR on the 0-1 scale)",
                normalize=stats_of, shrink_candidates=_shrink, shrink_budget=SHRINK_BUDGET,
                show_diff=_show_diff)


SPECS = {"metrics.coco_evaluate": coco_spec}
