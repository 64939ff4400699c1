"""The data-set view of target assignment: plain-Python aggregation of per-GT records.

Both sides run an assigner image by image (array work, :mod:`torch_impl.assign_report`) and
describe every ground truth (GT) by one plain record (a dict, the fields below); this module
turns the records into the numbers a person debugging a detector asks for, a verdict sentence
and the text summary. Nothing here does array math: ints, floats, strings and lists only, so
the summary is JSON-serialisable as it is.

GT record (one dict per GT of the data set)::

    image      int        index of the image in the data set (its order)
    file       str        the image file
    gt         int        index of the GT in its image
    cls        int        class id;  name  str  its name
    box        [4] float  xyxy in network pixels (after the letterbox to img_size)
    w, h       float      box sides in network pixels
    positive   bool       the GT trains at least one positive
    positives  int        how many (rows of the assigner's outputs)
    slots      [*] [level, anchor, gj, gi]   the distinct slots it trains
    collisions int        slots it shares with another GT of its image
    cause      str|None   None iff positive; else one of CAUSES
    why        str|None   the failing test, with numbers (e.g. "aspect 96.0:1 (288x3 px) ...")
    levels     [nl] str   one line per level: what the assigner did there (anchor, cells, ratio
                          to each anchor, the test that rejected an anchor)

Summary (:func:`summarize_assignments`): counts per class, size bucket and aspect bucket of the
GTs with no positive and their causes; collisions per image; positives per level and per
(level, anchor); the best possible recall of the anchors; set-up findings; the worst images;
the verdict (:func:`assignment_verdict`).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

#: COCO area buckets of the box in network pixels: area < 32², < 96², the rest.
SIZE_BUCKETS = ("small <32x32", "medium <96x96", "large >=96x96")
#: Aspect buckets of max(w/h, h/w).
ASPECT_BUCKETS = ("1:1-1:2", "1:2-1:5", "thinner than 1:5")
#: Why a GT has no positive (GT record ``cause``).
CAUSES = ("aspect ratio", "too small", "too large", "between anchor sizes", "outside the image",
          "no anchor point inside", "taken by another GT", "not in its top k", "other")
#: What the verdict says to do, per cause.
CAUSE_FIX = {
    "aspect ratio": "the anchors' aspect ratios do not cover them; refit with `yolo-ref anchors "
                    "--fit` (or raise --anchor-t)",
    "too small": "they are smaller than the smallest anchor / anchor_t; refit with `yolo-ref "
                 "anchors --fit`, add a finer level or train at a larger --img-size",
    "too large": "they are larger than the largest anchor x anchor_t; refit with `yolo-ref "
                 "anchors --fit` or add a coarser level",
    "between anchor sizes": "their size falls between two anchors' reach; refit with "
                            "`yolo-ref anchors --fit` (or raise --anchor-t)",
    "outside the image": "their centres lie outside the image: check the label conversion",
    "no anchor point inside": "they are smaller than the finest stride, so no anchor point lies "
                              "inside; use the small-object rule, a finer level or a larger "
                              "--img-size",
    "taken by another GT": "their slots go to overlapping GTs (crowding); a larger --img-size "
                           "or a finer level separates them",
    "not in its top k": "none of their top k predictions lies inside the box; raise --topk or "
                        "check the predicted boxes",
    "other": "see the per-GT lines",
}
#: A level is "starved" when it gets less than this share of the positives.
STARVED_SHARE = 0.05
#: One anchor "does all the work" when it gets more than this share of all positives.
DOMINANT_SHARE = 0.6
#: A class is "thin" when more than this share of its GTs is thinner than 1:5.
THIN_CLASS_SHARE = 0.5
#: The verdict calls a data set healthy when at most this share of GTs has no positive.
HEALTHY_MISS = 0.01


def size_bucket(w: float, h: float) -> str:
    """The COCO area bucket (:data:`SIZE_BUCKETS`) of a ``w x h`` box in network pixels."""
    a = w * h
    return SIZE_BUCKETS[0] if a < 32 ** 2 else SIZE_BUCKETS[1] if a < 96 ** 2 else SIZE_BUCKETS[2]


def aspect_of(w: float, h: float) -> float:
    """``max(w/h, h/w)`` (inf for a zero side, 1 for an empty box)."""
    if w <= 0 and h <= 0:
        return 1.0
    if w <= 0 or h <= 0:
        return math.inf
    return max(w / h, h / w)


def aspect_bucket(w: float, h: float) -> str:
    """The aspect bucket (:data:`ASPECT_BUCKETS`) of a ``w x h`` box."""
    r = aspect_of(w, h)
    return ASPECT_BUCKETS[0] if r <= 2 else ASPECT_BUCKETS[1] if r <= 5 else ASPECT_BUCKETS[2]


def _share(n: int, total: int) -> float:
    return n / total if total else 0.0


def _table(gts: Sequence[dict], key) -> dict:
    """``{bucket: {"gts", "no_positive", "share"}}`` of the records grouped by ``key``."""
    out: dict = {}
    for g in gts:
        row = out.setdefault(key(g), {"gts": 0, "no_positive": 0})
        row["gts"] += 1
        row["no_positive"] += not g["positive"]
    for row in out.values():
        row["share"] = _share(row["no_positive"], row["gts"])
    return out


def worst_images(gts: Sequence[dict], collisions_per_image: Sequence[int], k: int = 8) -> list:
    """The ``k`` images with most GTs without positive, then most collisions (slots claimed by
    two or more GTs; ties: image order): ``[{"image", "file", "gts", "no_positive",
    "collisions", "score"}]``; images where nothing is wrong are left out."""
    per: dict = {}
    for g in gts:
        row = per.setdefault(g["image"], {"image": g["image"], "file": g["file"], "gts": 0,
                                          "no_positive": 0,
                                          "collisions": int(collisions_per_image[g["image"]])})
        row["gts"] += 1
        row["no_positive"] += not g["positive"]
    rows = [r for r in per.values() if r["no_positive"] or r["collisions"]]
    for r in rows:
        r["score"] = 10 * r["no_positive"] + r["collisions"]
    rows.sort(key=lambda r: (-r["score"], r["image"]))
    return rows[:k]


def summarize_assignments(gts: Sequence[dict], n_images: int, level_names: Sequence[str],
                          anchor_labels: Sequence[Sequence[str]], collisions_per_image: Sequence[int],
                          bpr: float | None = None, findings: Sequence[dict] = (),
                          settings: dict | None = None, worst: int = 8) -> dict:
    """The data-set summary of the GT records ``gts`` (fields: the module docstring).

    Args:
        gts: one record per GT.
        n_images: images in the data set (with or without GTs).
        level_names: [nl] e.g. ``["P3", "P4", "P5"]``.
        anchor_labels: [nl][na] e.g. ``"10x13"`` (TAL: ``[["point"]] * nl``).
        collisions_per_image: [n_images] slots claimed by two or more GTs, per image.
        bpr: best possible recall of the anchors on these GTs at this size (None: not
            anchor-based).
        findings: set-up findings ``{"kind", "message", "fix"}`` (wrong units, ...), most
            severe first.
        settings: what the assignment ran with (img_size, strides, anchors, assigner, ...).
        worst: how many worst images to list.

    Returns:
        dict: ``gts``, ``images``, ``no_positive`` (count), ``no_positive_share``,
        ``by_class`` / ``by_size`` / ``by_aspect`` (``{bucket: {"gts", "no_positive",
        "share"}}``), ``causes`` ({cause: count} of the GTs without positive),
        ``no_positive_aspect`` / ``no_positive_size`` (the buckets of those GTs),
        ``positives_per_level`` [nl], ``positives_per_anchor`` [nl][na],
        ``collisions`` (total), ``collisions_per_image`` (``{"mean", "max", "histogram":
        {count: images}}``), ``starved_levels`` and ``dominant_anchors`` (names),
        ``thin_classes`` ([{"name", "gts", "thin_share", "no_positive_share", "median_aspect"}]),
        ``bpr``, ``findings``, ``settings``, ``worst_images``, ``verdict``.
    """
    nl = len(level_names)
    n = len(gts)
    missing = [g for g in gts if not g["positive"]]
    per_level = [0] * nl
    per_anchor = [[0] * len(a) for a in anchor_labels]
    for g in gts:
        for lv, a, *_ in g["slots"]:
            per_level[lv] += 1
            per_anchor[lv][a] += 1
    total_pos = sum(per_level)
    names = {g["cls"]: g["name"] for g in gts}
    by_class = _table(gts, lambda g: g["name"])
    starved = [level_names[lv] for lv in range(nl)
               if nl > 1 and total_pos and per_level[lv] < STARVED_SHARE * total_pos]
    dominant = [f"{level_names[lv]} anchor {a} ({anchor_labels[lv][a]})"
                for lv in range(nl) for a in range(len(per_anchor[lv]))
                if sum(len(x) for x in anchor_labels) > 1 and total_pos
                and per_anchor[lv][a] > DOMINANT_SHARE * total_pos]
    thin = []
    for c in sorted(names):
        mine = [g for g in gts if g["cls"] == c]
        aspects = sorted(aspect_of(g["w"], g["h"]) for g in mine)
        thin_share = _share(sum(a > 5 for a in aspects), len(mine))
        if thin_share > THIN_CLASS_SHARE:
            thin.append({"name": names[c], "gts": len(mine), "thin_share": thin_share,
                         "no_positive_share": _share(sum(not g["positive"] for g in mine), len(mine)),
                         "median_aspect": aspects[len(aspects) // 2]})
    hist = Counter(int(c) for c in collisions_per_image)
    summary = {
        "gts": n, "images": int(n_images), "no_positive": len(missing),
        "no_positive_share": _share(len(missing), n),
        "by_class": by_class,
        "by_size": _table(gts, lambda g: size_bucket(g["w"], g["h"])),
        "by_aspect": _table(gts, lambda g: aspect_bucket(g["w"], g["h"])),
        "causes": dict(Counter(g["cause"] for g in missing).most_common()),
        "no_positive_aspect": dict(Counter(aspect_bucket(g["w"], g["h"]) for g in missing)),
        "no_positive_size": dict(Counter(size_bucket(g["w"], g["h"]) for g in missing)),
        "positives": total_pos,
        "positives_per_level": per_level, "positives_per_anchor": per_anchor,
        "level_names": list(level_names), "anchor_labels": [list(a) for a in anchor_labels],
        "collisions": int(sum(collisions_per_image)),
        "collisions_per_image": {
            "mean": _share(int(sum(collisions_per_image)), len(collisions_per_image)),
            "max": max((int(c) for c in collisions_per_image), default=0),
            "histogram": {str(k): hist[k] for k in sorted(hist)}},
        "starved_levels": starved, "dominant_anchors": dominant, "thin_classes": thin,
        "bpr": None if bpr is None else float(bpr), "findings": [dict(f) for f in findings],
        "settings": dict(settings or {}), "worst_images": worst_images(gts, collisions_per_image, worst),
    }
    summary["verdict"] = assignment_verdict(summary)
    return summary


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def assignment_verdict(summary: dict) -> str:
    """One sentence: what is wrong with the assignment of this data set and the fix.

    Order: a set-up finding (wrong anchor units, labels normalised twice, x/y swapped, anchors
    for another image size, strides that do not match the model) comes first; then the GTs
    without positive by their main cause (with the aspect / size bucket they fall in); then a
    starved level or one anchor doing all the work; else the data set is healthy."""
    if summary["findings"]:
        f = summary["findings"][0]
        return f"{f['message']}: {f['fix']}"
    n, miss = summary["gts"], summary["no_positive"]
    if n == 0:
        return "no GTs in the data set: nothing to assign"
    if miss and summary["no_positive_share"] > HEALTHY_MISS:
        cause, count = next(iter(summary["causes"].items()))
        what = ""
        if cause == "aspect ratio":
            thin = summary["no_positive_aspect"].get(ASPECT_BUCKETS[2], 0)
            what = ("all thinner than 1:5" if thin == miss else
                    f"{_pct(_share(thin, miss))} of them thinner than 1:5")
            classes = [t["name"] for t in summary["thin_classes"] if t["no_positive_share"] > 0.5]
            if classes:
                what += " (class " + ", ".join(repr(c) for c in classes) + ")"
        elif cause in ("too small", "no anchor point inside"):
            small = summary["no_positive_size"].get(SIZE_BUCKETS[0], 0)
            what = "all small (<32x32 px)" if small == miss else f"{_pct(_share(small, miss))} small"
        elif cause == "too large":
            what = "all large (>=96x96 px)" if summary["no_positive_size"].get(SIZE_BUCKETS[2], 0) == miss \
                else ""
        head = f"{_pct(summary['no_positive_share'])} of GTs ({miss} of {n})"
        mixed = "" if count == miss else f" ({count} of them: {cause})"
        what = f", {what}," if what else ""
        return f"{head}{what} get no positive{mixed}: {CAUSE_FIX[cause]}"
    if summary["starved_levels"]:
        lv = ", ".join(summary["starved_levels"])
        return (f"level {lv} gets under {_pct(STARVED_SHARE)} of the positives: the anchors (or "
                f"strides) there match almost no object; refit with `yolo-ref anchors --fit` or "
                f"drop the level")
    if summary["dominant_anchors"]:
        return (f"{summary['dominant_anchors'][0]} takes over {_pct(DOMINANT_SHARE)} of all "
                f"positives: the other anchors hardly train; refit with `yolo-ref anchors --fit`")
    tail = f", best possible recall {summary['bpr']:.3f}" if summary["bpr"] is not None else ""
    return (f"healthy: {n - miss} of {n} GTs get a positive ({summary['positives'] / n:.1f} "
            f"per GT on average){tail}")


def _bucket_lines(title: str, table: dict, order: Sequence[str] | None = None) -> list:
    keys = [k for k in (order or sorted(table)) if k in table]
    lines = [f"{title}:"]
    for k in keys:
        r = table[k]
        lines.append(f"  {k:<20} {r['gts']:>6} GTs  {r['no_positive']:>5} without positive "
                     f"({_pct(r['share'])})")
    return lines


def format_assignment_summary(summary: dict) -> str:
    """The text summary (stdout and ``summary.txt``) of :func:`summarize_assignments`."""
    s = summary
    st = s["settings"]
    lines = [f"verdict: {s['verdict']}", ""]
    if st:
        anchor_based = st.get("assigner") in ("v5", "tutorial", "v3")
        lines.append(f"assigner {st.get('assigner')}  img-size {st.get('img_size')}  strides "
                     f"{st.get('strides')}"
                     + (f"  anchors from {st.get('anchors_from', 'flags')}" if anchor_based else ""))
        if st.get("anchors_px") is not None and anchor_based:
            lines.append("anchors (px): " + " | ".join(
                f"{ln} " + " ".join(a) for ln, a in zip(s["level_names"], s["anchor_labels"])))
    lines.append(f"{s['images']} images, {s['gts']} GTs, {s['positives']} positives, "
                 f"{s['no_positive']} GTs without positive ({_pct(s['no_positive_share'])}), "
                 f"{s['collisions']} collisions")
    if s["bpr"] is not None:
        lines.append(f"best possible recall of the anchors at this size: {s['bpr']:.4f}")
    for f in s["findings"]:
        lines.append(f"set-up: {f['message']}: {f['fix']}")
    if s["causes"]:
        lines.append("why GTs get no positive: " + ", ".join(f"{k} {v}" for k, v in s["causes"].items()))
    lines += _bucket_lines("per class", s["by_class"])
    lines += _bucket_lines("per size", s["by_size"], SIZE_BUCKETS)
    lines += _bucket_lines("per aspect", s["by_aspect"], ASPECT_BUCKETS)
    for t in s["thin_classes"]:
        lines.append(f"thin class {t['name']!r}: {_pct(t['thin_share'])} of its {t['gts']} GTs "
                     f"thinner than 1:5 (median {t['median_aspect']:.1f}:1), "
                     f"{_pct(t['no_positive_share'])} without positive")
    total = max(s["positives"], 1)
    lines.append("positives per level: " + ", ".join(
        f"{ln} {n} ({_pct(n / total)})" for ln, n in zip(s["level_names"], s["positives_per_level"])))
    lines.append("positives per anchor: " + " | ".join(
        f"{ln} " + " ".join(f"{lab}:{n}" for lab, n in zip(labs, row))
        for ln, labs, row in zip(s["level_names"], s["anchor_labels"], s["positives_per_anchor"])))
    if s["starved_levels"]:
        lines.append("starved levels: " + ", ".join(s["starved_levels"]))
    if s["dominant_anchors"]:
        lines.append("one anchor doing the work: " + ", ".join(s["dominant_anchors"]))
    c = s["collisions_per_image"]
    lines.append(f"collisions per image: mean {c['mean']:.2f}, max {c['max']}, histogram "
                 + ", ".join(f"{k}: {v}" for k, v in c["histogram"].items()))
    if s["worst_images"]:
        lines.append("worst images: " + ", ".join(
            f"{w['file'].rsplit('/', 1)[-1]} ({w['no_positive']} without positive, "
            f"{w['collisions']} collisions)" for w in s["worst_images"]))
    return "\n".join(lines)


def format_gt_line(g: dict) -> str:
    """One line per GT: where it went (level, anchor, cells, ratio to each anchor) or why not."""
    head = (f"img {g['image']} GT{g['gt']} {g['name']} {g['w']:.0f}x{g['h']:.0f} px "
            f"({aspect_of(g['w'], g['h']):.1f}:1)")
    if not g["positive"]:
        head += f" NO POSITIVE ({g['cause']}): {g['why']}"
    else:
        head += f" {g['positives']} positives"
        if g["collisions"]:
            head += f", {g['collisions']} shared with other GTs"
    return head + "".join(f"\n    {line}" for line in g["levels"])


def compare_summaries(a: dict, b: dict, gts_a: Sequence[dict], gts_b: Sequence[dict],
                      label_a: str = "A", label_b: str = "B") -> dict:
    """Two runs of the same data set side by side (two checkpoints): the numbers of each, the
    GTs that gained or lost every positive, and per GT how many of its slots both picked
    (``overlap`` = |A ∩ B| / |A ∪ B| of the slot sets, averaged over GTs positive in either).

    Returns ``{"labels", "rows": [(what, value A, value B)], "gained", "lost", "overlap",
    "text"}``."""
    key = lambda g: (g["image"], g["gt"])
    by_b = {key(g): g for g in gts_b}
    gained, lost, overlaps = [], [], []
    for g in gts_a:
        h = by_b.get(key(g))
        if h is None:
            continue
        if g["positive"] and not h["positive"]:
            lost.append(key(g))
        if h["positive"] and not g["positive"]:
            gained.append(key(g))
        sa, sb = {tuple(x) for x in g["slots"]}, {tuple(x) for x in h["slots"]}
        if sa | sb:
            overlaps.append(len(sa & sb) / len(sa | sb))
    rows = [("GTs without positive", a["no_positive"], b["no_positive"]),
            ("positives", a["positives"], b["positives"]),
            ("collisions", a["collisions"], b["collisions"])]
    rows += [(f"positives {ln}", x, y) for ln, x, y in
             zip(a["level_names"], a["positives_per_level"], b["positives_per_level"])]
    overlap = sum(overlaps) / len(overlaps) if overlaps else 1.0
    text = [f"{'':<24} {label_a:>12} {label_b:>12}"]
    text += [f"{w:<24} {x:>12} {y:>12}" for w, x, y in rows]
    text.append(f"{len(gained)} GTs gain a positive from {label_a} to {label_b}, {len(lost)} "
                f"lose theirs; the two pick the same slots for {_pct(overlap)} of a GT's slots "
                f"on average")
    return {"labels": [label_a, label_b], "rows": [list(r) for r in rows],
            "gained": [list(k) for k in gained], "lost": [list(k) for k in lost],
            "overlap": overlap, "text": "\n".join(text)}
