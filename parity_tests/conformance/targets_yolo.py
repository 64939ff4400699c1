"""Specs for ``assign.yolov5_build_targets`` and ``loss.yolov5_loss`` (a user's YOLOv5 target
builder and loss), with their diagnosis probes.

Inputs are drawn at YOLOv5's strides 8/16/32 (``STRIDES``) with its default anchors in grid
units, so that the probes can say "anchors in pixels" concretely. The assignment is compared
level by level as a table of rows ``(b, a, gj, gi, class, tbox[4], anchor[2])``: the same rows in
another order are reported as a convention ("row order"), not a bug.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from parity_tests.conformance.engine import Check, Grade, Probe, Spec, compare_values, fmt_array
from ref_numpy import assign as A
from ref_numpy import loss as L
from ref_numpy.boxes import aligned_box_iou
from ref_numpy.shared.constants import MIN_WH

STRIDES = np.array([8.0, 16.0, 32.0])
#: YOLOv5 v7.0 default anchors (pixels at 640), one row per level.
ANCHORS_PX = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                       [[116, 90], [156, 198], [373, 326]]], dtype=np.float64)
ANCHORS = ANCHORS_PX / STRIDES[:, None, None]  # grid units: the contract's convention
#: A loss closer than this (relative) to the reference is "the same loss" (a different but
#: correct order of the sums and of CIoU's terms stays below it in float64).
LOSS_RTOL = 1e-9
#: tbox values closer than this (grid units) are the same target.
TBOX_ATOL = 1e-9


# ----------------------------------------------------------------------------- inputs

def _targets(rng, n, bs, nc, img, edge=False, collide=False):
    """``n`` rows (image, class, cx, cy, w, h), sides 6..160 px of an ``img`` px image."""
    if n == 0:
        return np.zeros((0, 6))
    wh = rng.uniform(6, min(160, img), size=(n, 2)) / img
    cxy = rng.uniform(0, 1, size=(n, 2))
    if edge:  # centres on the right/bottom edge, the left/top edge, or a half cell
        k = rng.integers(0, 4, size=(n, 2))
        half = (np.floor(cxy * img / 8) + 0.5) * 8 / img
        cxy = np.where(k == 0, 1.0, np.where(k == 1, 0.0, np.where(k == 2, half, cxy)))
    if collide and n > 1:  # every GT near the first one's centre, with a similar size
        cxy = cxy[:1] + rng.uniform(-0.3, 0.3, size=(n, 2)) * 8 / img
        wh = wh[:1] * rng.uniform(0.8, 1.25, size=(n, 2))
        cxy = np.clip(cxy, 0, 1)
    b = rng.integers(0, bs, size=n) if not collide else np.zeros(n)
    c = rng.integers(0, nc, size=n)
    return np.column_stack([b, c, cxy, np.minimum(wh, 1.0)]).astype(np.float64)


def _assign_gen(edge=False, collide=False, n=(0, 6), bs=(1, 3)):
    def gen(rng, fixed):
        img = int(rng.choice([64, 128, 256]))
        nl = int(rng.integers(1, 4))
        k = int(rng.integers(*n, endpoint=True))
        x = {"targets": _targets(rng, k, int(rng.integers(*bs, endpoint=True)), 3, img, edge, collide),
             "anchors": ANCHORS[:nl].copy(), "grid_sizes": [(img // int(s), img // int(s)) for s in STRIDES[:nl]]}
        return x
    return gen


# ----------------------------------------------------------------------------- assignment

def tables(out: Any) -> list[np.ndarray]:
    """``(tcls, tbox, indices, anch)`` per level as float64 tables ``[n, 11]``:
    ``b, a, gj, gi, class, tbox[4], anchor[2]`` (indices as YOLOv5 returns them: a tuple of 4
    arrays, or a ``[4, n]`` array)."""
    if isinstance(out, (list, tuple)) and len(out) and isinstance(out[0], np.ndarray) and out[0].ndim == 2:
        return [np.asarray(t, np.float64) for t in out]  # already tables
    tcls, tbox, indices, anch = out
    levels = []
    for c, tb, ind, an in zip(tcls, tbox, indices, anch):
        ind = np.asarray([np.asarray(v).ravel() for v in ind], np.float64).reshape(4, -1)
        levels.append(np.column_stack([ind.T, np.asarray(c, np.float64).ravel(),
                                       np.asarray(tb, np.float64).reshape(-1, 4),
                                       np.asarray(an, np.float64).reshape(-1, 2)]))
    return levels


def _sorted_rows(t: np.ndarray) -> np.ndarray:
    return t[np.lexsort(t.T[::-1])] if len(t) else t


def compare_tables(e: list, g: list, x: dict | None = None) -> Grade:
    """Graded comparison of assignment tables: bit-exact, within ulps, same set in another
    order, different (the note names the level and what differs)."""
    if len(g) != len(e):
        return Grade(False, "different", note=f"{len(g)} levels instead of {len(e)}")
    worst = Grade(True, "bit-exact")
    reordered = False
    for lvl, (te, tg) in enumerate(zip(e, g)):
        if te.shape != tg.shape:
            return Grade(False, "different", note=f"level {lvl}: {len(tg)} rows instead of {len(te)}")
        if not np.array_equal(te[:, :5], tg[:, :5]):
            if np.array_equal(_sorted_rows(te[:, :5]), _sorted_rows(tg[:, :5])):
                te, tg = _sorted_rows(te), _sorted_rows(tg)
                reordered = True
            else:
                return Grade(False, "different", note=f"level {lvl}: other (image, anchor, cell, class) rows")
        gr = compare_values(te[:, 5:], tg[:, 5:], 1.0)
        if not gr.ok and not gr.note and gr.diff <= TBOX_ATOL:
            gr = Grade(True, f"same targets, values differ by <= {gr.diff:.1g}", gr.ulps, gr.diff)
        if not gr.ok:
            return Grade(False, "different", gr.ulps, gr.diff, note=f"level {lvl}: other target values")
        if gr.ulps > worst.ulps:
            worst = gr
    if reordered:
        return Grade(False, "same set, other order")
    return worst


def _ref_tables(x: dict, **change) -> list[np.ndarray]:
    y = {**x, **change}
    return tables(A.yolov5_build_targets(y["targets"], y["anchors"], y["grid_sizes"],
                                         **{k: v for k, v in y.items() if k in ("anchor_t", "g")}))


def _strides(x: dict) -> np.ndarray:
    return STRIDES[: len(x["grid_sizes"])][:, None, None]


#: YOLOv5's neighbour offsets in units of g: centre, x-1, y-1, x+1, y+1.
OFFSETS = np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float64)


def build_targets_variant(targets, anchors, grid_sizes, anchor_t: float = 4.0, g: float = 0.5, *,
                          clamp: bool = True) -> list[np.ndarray]:
    """YOLOv5's build_targets as tables (see :func:`tables`), the cell clamp switchable.

    Per level: every (anchor, GT) pair with ``max(r, 1/r) < anchor_t`` on both sides, written
    at its cell and at the neighbours picked by ``g`` (block, then anchor, then GT order);
    ``gij = trunc(gxy - offset)``, clamped to the grid unless ``clamp=False``. With the
    defaults it equals the reference bit for bit (a test holds it to that)."""
    t = np.asarray(targets, np.float64).reshape(-1, 6)
    out = []
    for lvl, (ny, nx) in enumerate(grid_sizes):
        anc = np.asarray(anchors[lvl], np.float64)
        grid = np.array([nx, ny], np.float64)
        gxy, gwh = t[:, 2:4] * grid, t[:, 4:6] * grid                        # [nt, 2]
        with np.errstate(divide="ignore"):
            r = gwh[None] / anc[:, None]                                     # [na, nt, 2]
            a_idx, t_idx = np.nonzero(np.maximum(r, 1 / r).max(2) < anchor_t)
        gm = gxy[t_idx]
        gxi = grid - gm
        near, far = (gm % 1 < g) & (gm > 1), (gxi % 1 < g) & (gxi > 1)
        use = np.stack([np.ones(len(t_idx), bool), near[:, 0], near[:, 1], far[:, 0], far[:, 1]])
        block, row = np.nonzero(use)
        gij = np.trunc(gm[row] - OFFSETS[block] * g)
        if clamp:
            gij = np.clip(gij, 0, grid - 1)
        ti, ai = t_idx[row], a_idx[row]
        out.append(np.column_stack([t[ti, 0], ai, gij[:, 1], gij[:, 0], t[ti, 1], gm[row] - gij,
                                    gwh[ti], anc[ai]]).reshape(-1, 11))
    return out


def _unclamped(x: dict) -> list[np.ndarray]:
    return build_targets_variant(x["targets"], x["anchors"], x["grid_sizes"], clamp=False)


def _last_writer_only(tabs: list[np.ndarray], keep: str) -> list[np.ndarray]:
    out = []
    for t in tabs:
        key = [tuple(r[:4]) for r in t]
        seen: dict = {}
        for i, k in enumerate(key):
            if keep == "last" or k not in seen:
                seen[k] = i
        idx = sorted(seen.values())
        out.append(t[idx])
    return out


def _one_gt_per_slot(x: dict) -> dict | None:
    """Drop GTs until no two of them share an (image, anchor, cell) slot (collisions removed)."""
    t = np.asarray(x["targets"])
    keep: list[int] = []
    slots: set = set()
    for i in range(len(t)):
        mine = {(lvl, *r[:4]) for lvl, tab in enumerate(_ref_tables({**x, "targets": t[[i]]})) for r in tab}
        if mine & slots:
            continue
        keep.append(i)
        slots |= mine
    if len(keep) == len(t):
        return None
    return {**x, "targets": t[keep]}


def _assign_probes() -> list[Probe]:
    return [
        Probe("row order", "predicate",
              lambda x, e, g: all(a.shape == b.shape and np.array_equal(_sorted_rows(a[:, :5]), _sorted_rows(b[:, :5]))
                                  for a, b in zip(e, g)) and len(e) == len(g),
              "the same (image, anchor, cell, class) assignments with the same targets, in another "
              "row order (YOLOv5: block, then anchor, then target); only a loss that writes "
              "duplicate slots last-writer-wins can see the difference",
              "none needed; keep YOLOv5's order if your loss relies on the last writer", verdict="convention"),
        Probe("cell index out of range at the right/bottom edge", "alt", _unclamped,
              "a GT centre on the right or bottom edge (cx = 1 or cy = 1) gives gi = nx or gj = ny: "
              "the index is not clamped to the grid (YOLOv5 clamps gi to [0, nx-1], gj to [0, ny-1])",
              "gi = gi.clamp(0, nx - 1); gj = gj.clamp(0, ny - 1) (and compute tbox from the clamped cell)"),
        Probe("x and y swapped", "alt", lambda x: [t[:, [0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10]] for t in _ref_tables(x)],
              "the cell indices come out as (b, a, gi, gj): column and row swapped (YOLOv5 returns "
              "(b, a, gj, gi), row first, to index p[b, a, gj, gi])", "indices.append((b, a, gj, gi))"),
        Probe("anchors treated as pixels", "alt", lambda x: _ref_tables(x, anchors=x["anchors"] / _strides(x)),
              "your function divides the anchors by the stride: it expects pixels, the contract "
              "passes anchors in grid units (pixels / stride, as YOLOv5's Detect.anchors)",
              "pass anchors / stride once, or do not divide inside build_targets"),
        Probe("neighbour cells missing", "alt", lambda x: _ref_tables(x, g=0.0),
              "only the centre cell is assigned; YOLOv5 also assigns the two nearest neighbour "
              "cells (offset g = 0.5), up to 3 cells per anchor match",
              "add the rows for gxy % 1 < 0.5 (left/up) and (grid - gxy) % 1 < 0.5 (right/down)"),
        Probe("duplicate slots removed (last writer kept)", "alt",
              lambda x: _last_writer_only(_ref_tables(x), "last"),
              "rows that write the same (image, anchor, cell) are removed except the last: two "
              "GTs in one cell and anchor collide and one is lost from the box and class losses",
              "keep every row (YOLOv5 keeps duplicates; only tobj is last-writer-wins)"),
        Probe("duplicate slots removed (first writer kept)", "alt",
              lambda x: _last_writer_only(_ref_tables(x), "first"),
              "rows that write the same (image, anchor, cell) are removed except the first",
              "keep every row (YOLOv5 keeps duplicates)"),
        Probe("ratio test <= instead of <", "alt",
              lambda x: _ref_tables(x, anchor_t=float(np.nextafter(x.get("anchor_t", 4.0), np.inf))),
              "an anchor whose side ratio is exactly anchor_t is matched; YOLOv5 keeps max(r, 1/r) < anchor_t",
              "use a strict comparison: torch.max(r, 1 / r).max(2)[0] < anchor_t"),
        Probe("collision (GTs sharing a cell and anchor)", "transform", _one_gt_per_slot,
              "with one GT per (image, anchor, cell) yours agrees: two GTs sharing a slot are "
              "handled differently (YOLOv5 keeps both rows, in order)",
              "write one row per (GT, anchor, cell) match; do not merge or overwrite rows"),
    ]


def _show_assign(x: dict) -> str:
    t = np.asarray(x["targets"])
    return (f"targets {fmt_array(t) if len(t) else '[]'} (image, class, cx, cy, w, h), grids "
            f"{[tuple(g) for g in x['grid_sizes']]}")


def _show_tables(y: Any) -> str:
    try:
        tabs = y if isinstance(y, list) else tables(y)
        return "; ".join(f"L{i}: {len(t)} rows" + (f" (b,a,gj,gi) {fmt_array(t[:3, :4])}"
                                                    if len(t) else "") for i, t in enumerate(tabs))
    except Exception:  # noqa: BLE001 - an unreadable output is shown as is
        return str(y)[:200]


def build_targets_spec() -> Spec:
    return Spec("assign.yolov5_build_targets",
                lambda targets, anchors, grid_sizes: tables(A.yolov5_build_targets(targets, anchors, grid_sizes)),
                ["targets", "anchors", "grid_sizes"],
                "(targets [nt,6] (image, class, cx, cy, w, h) normalised, anchors [nl,na,2] grid "
                "units, grid_sizes [(ny, nx)]) -> (tcls, tbox, indices, anch) per level",
                [Check("random", "0-6 GTs, 1-3 images, 1-3 levels at strides 8/16/32",
                       lambda r, f: _assign_gen()(r, f)),
                 Check("edge", "centres at 0, at 1 (right/bottom edge) and on half cells",
                       lambda r, f: _assign_gen(edge=True, n=(1, 4))(r, f), noun="edge", weight=0.6),
                 Check("collisions", "2-4 GTs of similar size in one cell", lambda r, f: _assign_gen(
                     collide=True, n=(2, 4))(r, f), noun="colliding", weight=0.6),
                 Check("one GT", "a single GT", lambda r, f: _assign_gen(n=(1, 1))(r, f), weight=0.3),
                 Check("no GT", "no targets", lambda r, f: _assign_gen(n=(0, 0))(r, f), weight=0.05)],
                _assign_probes(), compare_tables, _show_assign, _show_tables,
                rows=[("targets",)], normalize=tables, units="grid units")


# ----------------------------------------------------------------------------- loss

def _sig(x):
    return 1 / (1 + np.exp(-x))


def _bce(x, y):
    return (1 - y) * x + np.logaddexp(0, -x)


def yolov5_loss_variant(preds, targets, anchors, *, box_norm="objects", obj_norm="cells",
                        writer="last", balance=(4.0, 1.0, 0.4), box=0.05, obj=1.0, cls=0.5) -> float:
    """YOLOv5 v7.0's loss (total) with one convention switched (the probes' alternatives).

    ``box_norm``: "objects" (mean of 1 - CIoU over the level's matches) or "cells" (their sum
    over every cell of the level); ``obj_norm``: "cells" (mean BCE over every cell) or
    "objects" (sum over the cells divided by the number of matches); ``writer``: which of the
    rows sharing a slot sets tobj ("last" as YOLOv5, or "first"). With the defaults it equals
    ``ref_numpy.loss.yolov5_loss`` up to summation order (a test holds it to LOSS_RTOL)."""
    bs, nc = preds[0].shape[0], preds[0].shape[-1] - 5
    tcls, tbox, ind, anch = A.yolov5_build_targets(targets, anchors, [p.shape[2:4] for p in preds])
    lbox = lobj = lcls = 0.0
    for i, p in enumerate(preds):
        b, a, gj, gi = ind[i]
        tobj = np.zeros(p.shape[:4])
        n = len(b)
        if n:
            ps = p[b, a, gj, gi]
            pxy = _sig(ps[:, :2]) * 2 - 0.5
            pwh = np.maximum((_sig(ps[:, 2:4]) * 2) ** 2 * anch[i], MIN_WH)
            iou = aligned_box_iou(np.concatenate([pxy, pwh], 1), tbox[i], kind="ciou", fmt="cxcywh")
            lbox += np.sum(1.0 - iou) / (n if box_norm == "objects" else tobj.size)
            rows = range(n) if writer == "last" else range(n - 1, -1, -1)
            for r in rows:
                tobj[b[r], a[r], gj[r], gi[r]] = max(iou[r], 0.0)
            if nc > 1:
                lcls += np.mean(_bce(ps[:, 5:], (np.arange(nc) == tcls[i][:, None]).astype(float)))
        lobj += balance[i] * np.sum(_bce(p[..., 4], tobj)) / (tobj.size if obj_norm == "cells" else max(n, 1))
    return float((box * lbox + obj * lobj + cls * lcls) * bs)


def _loss_gen(n=(0, 5), nc=(1, 3), bs=(1, 2), edge=False, collide=False, empty_images=0):
    def gen(rng, fixed):
        img = 64
        nl = int(rng.integers(1, 4))
        k = int(rng.integers(*n, endpoint=True))
        c = int(rng.integers(*nc, endpoint=True))
        b = int(rng.integers(*bs, endpoint=True))
        t = _targets(rng, k, b, c, img, edge, collide)
        preds = [rng.uniform(-3, 3, size=(b + empty_images, 3, img // int(s), img // int(s), 5 + c))
                 for s in STRIDES[:nl]]
        return {"preds": preds, "targets": t, "anchors": ANCHORS[:nl].copy()}
    return gen


def total_of(out: Any) -> Any:
    """The total loss from what a user's loss returns (a scalar, or ``(total, parts)``)."""
    if isinstance(out, (list, tuple)) and out:
        out = out[0]
    a = np.asarray(out)
    # a float32 total keeps its dtype, so that it is graded in float32 ulps (YOLOv5 v7.0's
    # ComputeLoss accumulates in float32 whatever the inputs' dtype)
    return a.astype(a.dtype if a.dtype.kind == "f" else np.float64).reshape(())


def _compare_loss(e, g, x):
    e = np.asarray(e, np.float64)
    gr = compare_values(e, g, float(abs(e)) if np.isfinite(e) else 1.0)
    if not gr.ok and not gr.note and gr.diff <= LOSS_RTOL * max(1.0, float(abs(e))):
        return Grade(True, f"same loss, rounding differs by <= {gr.diff:.1g}", gr.ulps, gr.diff)
    return gr


def _sigmoid_cols(x: dict) -> dict:
    return {**x, "preds": [np.concatenate([p[..., :4], _sig(p[..., 4:])], -1) for p in x["preds"]]}


def _ref_loss(x: dict, **kw) -> float:
    return L.yolov5_loss(x["preds"], x["targets"], x["anchors"], **kw)[0]


def _variant(**kw):
    return lambda x: yolov5_loss_variant(x["preds"], x["targets"], x["anchors"], **kw)


def _loss_probes() -> list[Probe]:
    return [
        Probe("NaN with no objects (mean over zero matches)", "predicate",
              lambda x, e, g: bool(np.isnan(np.asarray(g, float)).any()) and np.isfinite(e),
              "with no GT on a level the box (or class) term is a mean over zero matches = NaN; "
              "YOLOv5 adds a level's box and class terms only when it has matches",
              "if n: lbox += (1 - iou).mean()  (skip empty levels)"),
        Probe("BCE on probabilities, not logits", "alt", lambda x: _ref_loss(_sigmoid_cols(x)),
              "the objectness/class BCE is given sigmoid(p) where it expects logits "
              "(BCEWithLogitsLoss(torch.sigmoid(p), t)): the sigmoid is applied twice",
              "pass the raw logits to BCEWithLogitsLoss (or use BCELoss on sigmoid(p), not both)"),
        Probe("box loss summed over all cells, not the mean per object", "alt", _variant(box_norm="cells"),
              "the box loss is divided by the number of cells of the level (a mean over the whole "
              "grid); YOLOv5 averages 1 - CIoU over the level's matched objects",
              "lbox += (1.0 - iou).mean() over the matched rows"),
        Probe("objectness mean per object, not over all cells", "alt", _variant(obj_norm="objects"),
              "the objectness BCE is summed over the grid and divided by the number of objects; "
              "YOLOv5 takes the mean over every cell (BCEWithLogitsLoss(reduction='mean'))",
              "lobj += balance[i] * BCEobj(pi[..., 4], tobj) with the default mean reduction"),
        Probe("missing * batch size", "alt", lambda x: _ref_loss(x) / x["preds"][0].shape[0],
              "the total is not multiplied by the batch size (YOLOv5 returns (lbox + lobj + lcls) * bs)",
              "return (lbox + lobj + lcls) * bs"),
        Probe("objectness balance missing", "alt", lambda x: _ref_loss(x, balance=(1.0,) * 5),
              "the per-level objectness weights (4.0, 1.0, 0.4) are not applied",
              "lobj += self.balance[i] * obji"),
        Probe("first writer wins on a shared slot", "alt", _variant(writer="first"),
              "where two GTs share an (image, anchor, cell) the first one's IoU sets the "
              "objectness target; YOLOv5's tobj[b, a, gj, gi] = iou keeps the last row",
              "write tobj in row order so the last row wins (or keep YOLOv5's row order)"),
        Probe("anchors treated as pixels", "alt", lambda x: _ref_loss({**x, "anchors": x["anchors"] / _strides(x)}),
              "your loss divides the anchors by the stride: it expects pixels, the contract passes "
              "anchors in grid units (pixels / stride)", "divide by the stride once, outside the loss"),
    ]


def _show_loss(x: dict) -> str:
    p = x["preds"]
    return (f"preds {[list(q.shape) for q in p]}, {len(x['targets'])} target(s) "
            f"{fmt_array(x['targets']) if 0 < len(x['targets']) <= 3 else ''}".rstrip())


def _shrink_loss(x: dict):
    t = x["targets"]
    for i in range(len(t)):
        yield {**x, "targets": np.delete(t, i, 0)}
    if len(x["preds"]) > 1:
        yield {**x, "preds": x["preds"][:1], "anchors": x["anchors"][:1]}


def loss_spec() -> Spec:
    return Spec("loss.yolov5_loss", lambda preds, targets, anchors: L.yolov5_loss(preds, targets, anchors)[0],
                ["preds", "targets", "anchors"],
                "(preds [bs,na,ny,nx,5+nc] per level, targets [nt,6] normalised, anchors [nl,na,2] "
                "grid units) -> total loss (YOLOv5 v7.0 hyp.scratch-low gains)",
                [Check("random", "0-5 GTs, 1-3 classes, 1-3 levels, logits in [-3, 3]", _loss_gen()),
                 Check("collisions", "2-4 GTs in one cell", _loss_gen(n=(2, 4), collide=True),
                       noun="colliding", weight=0.6),
                 Check("no objects", "no targets at all", _loss_gen(n=(0, 0)), weight=0.2),
                 Check("edge", "centres on the image edge", _loss_gen(n=(1, 3), edge=True), noun="edge",
                       weight=0.4),
                 Check("empty image", "an extra image without objects in the batch",
                       _loss_gen(n=(1, 3), empty_images=1), weight=0.3)],
                _loss_probes(), _compare_loss, _show_loss, lambda y: f"{float(np.asarray(y)):.6g}",
                normalize=total_of, units="loss", shrink_candidates=_shrink_loss)


SPECS = {"assign.yolov5_build_targets": build_targets_spec, "loss.yolov5_loss": loss_spec}
