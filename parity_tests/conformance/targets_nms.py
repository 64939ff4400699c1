"""Specs for ``nms.nms`` and ``nms.batched_nms`` with their diagnosis probes."""
from __future__ import annotations

import numpy as np

from parity_tests.conformance import strategies as S
from parity_tests.conformance.engine import Check, Probe, Spec, compare_indices, fmt_array
from parity_tests.conformance.targets_boxes import iou_variant
from ref_numpy import boxes as B
from ref_numpy import nms as N


# ----------------------------------------------------------------------------- alternative NMS

def greedy_variant(boxes, scores, thr, *, plus1: float = 0.0, ge: bool = False, nan_suppresses: bool = False,
                   ascending: bool = False, from_all: bool = False, union_eps: float = 0.0,
                   stable: bool = True) -> np.ndarray:
    """Greedy NMS with a switchable convention (the probes' alternatives); NaN scores first."""
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    key = scores if ascending else -scores
    order = np.lexsort((key, ~np.isnan(scores))) if stable else np.argsort(key)
    iou = iou_variant("iou", boxes, boxes, plus1=plus1, union_eps=union_eps)
    over = iou >= thr if ge else iou > thr
    if nan_suppresses:  # "keep where iou < thr" (or <=): a NaN IoU fails the keep test
        over = ~(iou < thr) if ge else ~(iou <= thr)
    removed = np.zeros(n, bool)
    keep = []
    for pos, i in enumerate(order):
        if removed[i]:
            continue
        keep.append(i)
        later = order[pos + 1:]
        hit = later[over[i, later]]
        removed[hit] = True
    if from_all:  # every higher-ranked box suppresses, kept or not
        rank = np.empty(n, int)
        rank[order] = np.arange(n)
        keep = [j for j in order if not any(over[i, j] and rank[i] < rank[j] for i in range(n))]
    return np.asarray(keep, np.int64)


def _tie_break(x: dict) -> dict | None:
    s = np.asarray(x["scores"])
    fin = s[~np.isnan(s)]
    if len(np.unique(fin)) == len(fin):
        return None  # no ties: the probe does not apply
    order = np.lexsort((-s, ~np.isnan(s)))
    new = np.empty(len(s))
    new[order] = np.linspace(0.99, 0.01, len(s)) if len(s) > 1 else 0.5
    return {**x, "scores": new}


def _nan_replaced(x: dict) -> dict | None:
    s = np.asarray(x["scores"], np.float64)
    if not np.any(np.isnan(s)):
        return None
    order = np.lexsort((-s, ~np.isnan(s)))
    new = np.empty(len(s))
    new[order] = np.linspace(0.99, 0.01, len(s)) if len(s) > 1 else 0.5
    return {**x, "scores": new}


def _to_pixel_range(x: dict) -> dict | None:
    b = np.asarray(x["boxes"])
    m = float(np.max(np.abs(b))) if b.size else 0.0
    if m == 0 or 2 ** 9 <= m <= 2 ** 12:
        return None
    return {**x, "boxes": b * 2.0 ** (10 - int(np.floor(np.log2(m))))}


def _score_sorted(idx, scores) -> np.ndarray:
    idx = np.asarray(idx, np.int64)
    s = np.asarray(scores)[idx]
    return idx[np.lexsort((-s, ~np.isnan(s)))]


def _nms_probes(batched: bool) -> list[Probe]:
    def alt(**kw):
        if not batched:
            return lambda x: greedy_variant(x["boxes"], x["scores"], x["iou_threshold"], **kw)

        def per_class(x):
            keep = []
            for c in np.unique(x["idxs"]):
                m = np.flatnonzero(x["idxs"] == c)
                keep.extend(m[greedy_variant(x["boxes"][m], x["scores"][m], x["iou_threshold"], **kw)])
            return _score_sorted(keep, x["scores"])
        return per_class

    probes = [
        Probe("tie order", "transform", _tie_break,
              "the sort does not keep equal scores in index order (np.argsort's default "
              "quicksort, and torch.sort without stable=True, are not stable)",
              'np.argsort(-scores, kind="stable")  (torch: scores.sort(descending=True, stable=True))'),
        Probe("NaN scores", "transform", _nan_replaced,
              "NaN scores are ordered differently (the contract, torchvision's CPU kernel, visits "
              "NaN first; NumPy's sort puts NaN last); no order is meaningful for NaN",
              "drop NaN scores before NMS, or sort NaN first", verdict="convention"),
        Probe(">= instead of >", "alt",
              lambda x: _ref(batched, x, iou_threshold=np.nextafter(x["iou_threshold"], -np.inf)),
              "a box whose IoU equals the threshold is suppressed: you compare iou >= thr, the "
              "contract (torchvision) suppresses only iou > thr",
              "keep boxes with iou <= thr: suppress where iou > iou_threshold"),
        Probe("+1 pixel widths (VOC)", "alt", alt(plus1=1.0),
              "your IoU uses widths x2 - x1 + 1 (Pascal VOC's inclusive pixels)",
              "keep it for VOC-style integer boxes, or drop the + 1 to match torchvision",
              verdict="convention"),
        Probe("NaN IoU suppresses", "alt", alt(nan_suppresses=True),
              "two zero-area boxes have IoU 0/0 = NaN; your NMS keeps a box only when iou < thr "
              "(or <=), so a NaN IoU suppresses it; the contract (torchvision) suppresses only "
              "when iou > thr, so NaN never suppresses",
              "write the test as suppress = iou > iou_threshold (False for NaN)"),
        Probe("NaN IoU suppresses", "alt", alt(nan_suppresses=True, ge=True),
              "two zero-area boxes have IoU 0/0 = NaN and your NMS keeps a box only when "
              "iou < thr, so a NaN IoU suppresses it (and a box at exactly the threshold too)",
              "write the test as suppress = iou > iou_threshold (False for NaN)"),
        Probe("eps or clamp in the IoU", "transform", _to_pixel_range,
              "an eps (or minimum) in the IoU's union changes decisions for small boxes: with "
              "coordinates scaled by 2^k to pixel range yours agrees",
              "divide by the union itself, or make the eps relative to the box areas"),
        Probe("suppressed boxes still suppress", "alt", alt(from_all=True),
              "a box is discarded when it overlaps any higher-scored box, even one that was itself "
              "suppressed; greedy NMS compares only with boxes already kept",
              "loop over boxes in score order; compare each only with the boxes kept so far"),
        Probe("ascending score order", "alt", alt(ascending=True),
              "boxes are visited from the lowest score up (argsort without the minus sign)",
              "order = np.argsort(-scores, kind='stable')"),
        Probe("format mix-up: xywh read", "alt",
              lambda x: _ref(batched, x, boxes=B.box_convert(x["boxes"], "xywh", "xyxy")),
              "your NMS reads its xyxy boxes as xywh (x, y, w, h)",
              "pass xyxy boxes (box_convert(b, 'xywh', 'xyxy') where yours are xywh)"),
    ]
    if batched:
        probes.insert(0, Probe(
            "class-agnostic NMS", "alt", lambda x: N.nms(x["boxes"], x["scores"], x["iou_threshold"]),
            "boxes of different classes suppress each other: your NMS ignores idxs "
            "(class-agnostic, YOLOv5's --agnostic-nms); batched_nms is class-wise",
            "keep it if you want agnostic NMS; for class-wise NMS offset boxes by idx * (max "
            "coordinate + 1) or run NMS per class", verdict="convention"))
        probes.insert(1, Probe(
            "class order", "predicate",
            lambda x, e, g: (len(g) == len(e) and np.array_equal(np.sort(g), np.sort(e))
                             and np.array_equal(np.asarray(g), _class_order(np.asarray(e), x))),
            "the kept boxes are right but returned class by class (NMS run per class, results "
            "concatenated) instead of by descending score",
            "sort the kept indices once more: keep[np.argsort(-scores[keep], kind='stable')]"))
    probes.append(Probe(
        "output order", "predicate",
        lambda x, e, g: len(g) == len(e) and np.array_equal(np.sort(np.asarray(g)), np.sort(e)),
        "the right boxes are kept but returned in another order (the contract: descending score)",
        "return keep sorted by descending score, ties in index order"))
    return probes


def _ref(batched: bool, x: dict, **change) -> np.ndarray:
    """The reference NMS on ``x`` with some arguments changed."""
    y = {**x, **change}
    if batched:
        return N.batched_nms(y["boxes"], y["scores"], y["idxs"], y["iou_threshold"])
    return N.nms(y["boxes"], y["scores"], y["iou_threshold"])


def _class_order(e: np.ndarray, x: dict) -> np.ndarray:
    cls = np.asarray(x["idxs"])[e]
    return e[np.argsort(cls, kind="stable")]


def _show(x: dict) -> str:
    b = np.asarray(x["boxes"])
    n = len(b)
    what = (f"{n} identical boxes" if n > 1 and np.all(b == b[:1])
            else f"{n} boxes {fmt_array(b)}" if n else "no boxes")
    s = f"{what}, scores {fmt_array(x['scores'])}"
    if "idxs" in x:
        s += f", idxs {fmt_array(x['idxs'])}"
    return s + f", iou_threshold {float(x['iou_threshold'])!r}"


def _checks(batched: bool) -> list[Check]:
    def pack(rng, b, s, thr):
        x = {"boxes": b, "scores": s, "iou_threshold": float(thr)}
        if batched:
            x["idxs"] = rng.integers(0, 3, size=len(b)).astype(np.int64)
        return x

    def ordinary(rng, fixed, scale=640.0):
        n = int(rng.integers(2, 10))
        gen = S.clustered if rng.random() < 0.6 else S.boxes
        return pack(rng, gen(rng, n, scale), S.scores(rng, n), S.thresholds(rng))

    def ties(rng, fixed):
        n = int(rng.integers(2, 7))
        b = S.identical(rng, n) if rng.random() < 0.5 else S.clustered(rng, n)
        return pack(rng, b, S.scores(rng, n, ties=True), S.thresholds(rng))

    def at_thr(rng, fixed):
        pair, thr = S.at_threshold_pair(rng)
        extra = S.boxes(rng, int(rng.integers(0, 3)), float(np.max(pair)))
        b = np.concatenate([pair, extra])
        thr = thr + float(rng.choice([0.0, 0.0, 1e-9, -1e-9]))
        x = pack(rng, b, S.scores(rng, len(b)), thr)
        if batched:
            x["idxs"][:2] = 0
        return x

    def degenerate(rng, fixed):
        n = int(rng.integers(2, 6))
        b = S.zero_area(rng, n)
        if rng.random() < 0.5:
            b[1:] = b[0]
        return pack(rng, b, S.scores(rng, n), S.thresholds(rng))

    def nan_scores(rng, fixed):
        n = int(rng.integers(2, 6))
        s = S.scores(rng, n)
        s[rng.integers(0, n, size=max(1, n // 2))] = np.nan
        return pack(rng, S.clustered(rng, n), s, S.thresholds(rng))

    def empty(rng, fixed):
        n = int(rng.integers(0, 2))
        return pack(rng, S.boxes(rng, n), S.scores(rng, n), 0.5)

    return [
        Check("random", "clustered and scattered boxes, distinct scores", ordinary, weight=1.0),
        Check("tie order", "identical and clustered boxes, tied scores", ties, noun="tied", weight=1.0),
        Check("threshold", "IoU exactly at and +-1e-9 around the threshold, scales 2^-12 .. 2^12",
              at_thr, noun="at-threshold", weight=0.5),
        Check("normalised", "boxes in [0, 1]", lambda r, f: ordinary(r, f, 1.0), noun="normalised", weight=0.4),
        Check("tiny/huge scale", "coordinates at 2^-16 and 2^16",
              lambda r, f: ordinary(r, f, float(r.choice([2.0 ** -16, 2.0 ** 16]))),
              noun="extreme-scale", weight=0.3, convention_causes={"eps or clamp in the IoU"}),
        Check("zero area", "zero-area boxes (identical ones included: NaN IoU never suppresses)",
              degenerate, noun="degenerate", weight=0.3),
        Check("NaN scores", "some scores NaN (the contract visits them first)", nan_scores,
              noun="NaN", weight=0.2),
        Check("empty input", "N = 0 and N = 1", empty, weight=0.05),
    ]


def nms_spec(batched: bool = False) -> Spec:
    from parity_tests.conformance.properties import nms_properties_extra
    if batched:
        ref, args = N.batched_nms, ["boxes", "scores", "idxs", "iou_threshold"]
        sig = "(boxes xyxy [N,4], scores [N], idxs [N], iou_threshold) -> kept indices"
    else:
        ref, args = N.nms, ["boxes", "scores", "iou_threshold"]
        sig = "(boxes xyxy [N,4], scores [N], iou_threshold) -> kept indices"
    rows = [("boxes", "scores", "idxs")] if batched else [("boxes", "scores")]
    return Spec("nms.batched_nms" if batched else "nms.nms", ref, args, sig, _checks(batched),
                _nms_probes(batched), lambda e, g, x: compare_indices(e, g), _show,
                lambda y: f"keeps {fmt_array(y)}", rows=rows,
                extra=None if batched else nms_properties_extra)
