"""Wrong YOLOv5 target builders (``assign.yolov5_build_targets``) and losses
(``loss.yolov5_loss``), each with one defect of the kind hand-ported YOLOv5 code has.

They share a loop-by-loop transcription written for the corpus (:func:`build_targets` and
:func:`loss`), which with no defect equals YOLOv5 v7.0.
"""
from __future__ import annotations

import warnings

import numpy as np

from parity_tests.mutants import Mutant
from ref_numpy.boxes import aligned_box_iou

_OFF = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)]
_STRIDES = (8.0, 16.0, 32.0)


def build_targets(targets, anchors, grid_sizes, anchor_t=4.0, g=0.5, *, clamp=True, swap=False,
                  anchors_px=False, dedup=None, neighbours=True, sort_rows=False):
    """YOLOv5 build_targets, one row at a time; keyword arguments plant one defect each."""
    t = np.asarray(targets, float).reshape(-1, 6)
    tcls, tbox, indices, anch = [], [], [], []
    for lvl, (ny, nx) in enumerate(grid_sizes):
        anc = np.asarray(anchors[lvl], float) / (_STRIDES[lvl] if anchors_px else 1.0)
        rows = []
        for blk in range(5 if neighbours else 1):
            for a in range(len(anc)):
                for b, c, cx, cy, w, h in t:
                    gx, gy, gw, gh = cx * nx, cy * ny, w * nx, h * ny
                    rw, rh = gw / anc[a, 0], gh / anc[a, 1]
                    if rw == 0 or rh == 0 or not max(rw, 1 / rw, rh, 1 / rh) < anchor_t:
                        continue
                    fx, fy = nx - gx, ny - gy
                    use = (True, gx % 1 < g and gx > 1, gy % 1 < g and gy > 1,
                           fx % 1 < g and fx > 1, fy % 1 < g and fy > 1)[blk]
                    if not use:
                        continue
                    ox, oy = _OFF[blk]
                    gi, gj = int(gx - ox * g), int(gy - oy * g)
                    if clamp:
                        gi, gj = min(max(gi, 0), nx - 1), min(max(gj, 0), ny - 1)
                    rows.append((int(b), a, gj, gi, int(c), gx - gi, gy - gj, gw, gh, *anc[a]))
        if dedup:
            slot = {}
            for i, r in enumerate(rows):
                if dedup == "last" or r[:4] not in slot:
                    slot[r[:4]] = i
            rows = [rows[i] for i in sorted(slot.values())]
        if sort_rows:
            rows.sort()
        r = np.array(rows, float).reshape(-1, 11)
        ij = (r[:, 3], r[:, 2]) if swap else (r[:, 2], r[:, 3])
        indices.append((r[:, 0].astype(int), r[:, 1].astype(int), ij[0].astype(int), ij[1].astype(int)))
        tcls.append(r[:, 4].astype(int))
        tbox.append(r[:, 5:9])
        anch.append(r[:, 9:11])
    return tcls, tbox, indices, anch


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _bce(x, y, on_probs=False):
    if on_probs:  # BCEWithLogits(sigmoid(x)): the sigmoid twice
        x = _sig(x)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def loss(preds, targets, anchors, *, on_probs=False, box_all_cells=False, obj_per_object=False,
         first_writer=False, no_bs=False, skip_empty=True):
    """YOLOv5 v7.0 ComputeLoss (hyp.scratch-low gains); keyword arguments plant one defect each."""
    bs, nc = preds[0].shape[0], preds[0].shape[-1] - 5
    tcls, tbox, ind, anch = build_targets(targets, anchors, [p.shape[2:4] for p in preds])
    lbox = lobj = lcls = 0.0
    for i, p in enumerate(preds):
        b, a, gj, gi = ind[i]
        n = len(b)
        tobj = np.zeros(p.shape[:4])
        if n or not skip_empty:
            ps = p[b, a, gj, gi]
            pxy = _sig(ps[:, :2]) * 2 - 0.5
            pwh = np.maximum((_sig(ps[:, 2:4]) * 2) ** 2 * anch[i], 1e-9)
            iou = aligned_box_iou(np.concatenate([pxy, pwh], 1), tbox[i], kind="ciou", fmt="cxcywh")
            lbox += (1 - iou).sum() / tobj.size if box_all_cells else (1 - iou).mean()
            order = range(n - 1, -1, -1) if first_writer else range(n)
            for r in order:
                tobj[b[r], a[r], gj[r], gi[r]] = max(iou[r], 0.0)
            if nc > 1:
                onehot = (np.arange(nc) == tcls[i][:, None]).astype(float)
                lcls += _bce(ps[:, 5:], onehot, on_probs).mean()
        per = _bce(p[..., 4], tobj, on_probs)
        lobj += (4.0, 1.0, 0.4)[i] * (per.sum() / max(n, 1) if obj_per_object else per.mean())
    total = 0.05 * lbox + 1.0 * lobj + 0.5 * lcls
    return total if no_bs else total * bs


# ----------------------------------------------------------------------------- the mutants

def v5_targets_correct(targets, anchors, grid_sizes):
    return build_targets(targets, anchors, grid_sizes)


def v5_targets_no_clamp(targets, anchors, grid_sizes):
    """gi, gj not clamped: a centre at cx = 1 gives gi = nx (index out of range)."""
    return build_targets(targets, anchors, grid_sizes, clamp=False)


def v5_targets_xy_swapped(targets, anchors, grid_sizes):
    """indices returned as (b, a, gi, gj)."""
    return build_targets(targets, anchors, grid_sizes, swap=True)


def v5_targets_anchors_px(targets, anchors, grid_sizes):
    """Anchors divided by the stride again (assumed to be pixels)."""
    return build_targets(targets, anchors, grid_sizes, anchors_px=True)


def v5_targets_last_writer(targets, anchors, grid_sizes):
    """Rows sharing an (image, anchor, cell) slot deduplicated, the last kept: collisions lose GTs."""
    return build_targets(targets, anchors, grid_sizes, dedup="last")


def v5_targets_centre_only(targets, anchors, grid_sizes):
    """Only the centre cell (no neighbour cells)."""
    return build_targets(targets, anchors, grid_sizes, neighbours=False)


def v5_targets_sorted(targets, anchors, grid_sizes):
    """Correct rows, sorted by slot (a convention: the same set in another order)."""
    return build_targets(targets, anchors, grid_sizes, sort_rows=True)


def v5_loss_correct(preds, targets, anchors):
    return loss(preds, targets, anchors)


def v5_loss_bce_on_probs(preds, targets, anchors):
    """BCEWithLogits fed sigmoid(p)."""
    return loss(preds, targets, anchors, on_probs=True)


def v5_loss_box_all_cells(preds, targets, anchors):
    """Box loss summed and divided by every cell of the level, not averaged per object."""
    return loss(preds, targets, anchors, box_all_cells=True)


def v5_loss_obj_per_object(preds, targets, anchors):
    """Objectness BCE summed over the grid and divided by the number of objects."""
    return loss(preds, targets, anchors, obj_per_object=True)


def v5_loss_first_writer(preds, targets, anchors):
    """tobj written so that the first row of a shared slot wins."""
    return loss(preds, targets, anchors, first_writer=True)


def v5_loss_no_batch_factor(preds, targets, anchors):
    """The total is not multiplied by the batch size."""
    return loss(preds, targets, anchors, no_bs=True)


def v5_loss_nan_no_objects(preds, targets, anchors):
    """Box term taken as a mean even over zero matches: NaN on a level without GT."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "Mean of empty slice"
        return loss(preds, targets, anchors, skip_empty=False)


def _m(fn, target, cause):
    return Mutant(fn.__name__, target, fn, cause, defect=fn.__doc__ or "")


_T, _L = "assign.yolov5_build_targets", "loss.yolov5_loss"
MUTANTS = [
    _m(v5_targets_no_clamp, _T, "out of range"),
    _m(v5_targets_xy_swapped, _T, "x and y swapped"),
    _m(v5_targets_anchors_px, _T, "anchors treated as pixels"),
    _m(v5_targets_last_writer, _T, "duplicate slots removed (last writer kept)"),
    _m(v5_targets_centre_only, _T, "neighbour cells missing"),
    _m(v5_loss_bce_on_probs, _L, "BCE on probabilities"),
    _m(v5_loss_box_all_cells, _L, "all cells"),
    _m(v5_loss_obj_per_object, _L, "objectness mean per object"),
    _m(v5_loss_first_writer, _L, "first writer"),
    _m(v5_loss_no_batch_factor, _L, "batch size"),
    _m(v5_loss_nan_no_objects, _L, "NaN with no objects"),
]
CORRECT = [_m(v5_targets_correct, _T, ""), _m(v5_loss_correct, _L, "")]
CONVENTIONS = [_m(v5_targets_sorted, _T, "row order")]
