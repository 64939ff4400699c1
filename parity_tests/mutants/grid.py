"""Wrong grid assigners, grid losses and post-processing (properties kinds)."""
from __future__ import annotations

import math

import numpy as np

from parity_tests.mutants import Mutant
from ref_numpy import nms as N


def _assign(targets, S, nc, bs, cell=lambda c, S: min(math.floor(c * S), S - 1), drop=True,
            add_class=False, class_first_writer=False):
    out = np.zeros((bs, S, S, 5 + nc))
    for b, c, cx, cy, w, h in np.asarray(targets, float):
        if drop and not (0 <= cx <= 1 and 0 <= cy <= 1):
            continue
        i, j = cell(cx, S), cell(cy, S)
        first = out[int(b), j, i, 4] == 0
        out[int(b), j, i, :5] = [cx * S - i, cy * S - j, w, h, 1]
        if add_class:
            out[int(b), j, i, 5 + int(c)] += 1
        elif not class_first_writer or first:
            out[int(b), j, i, 5:] = 0
            out[int(b), j, i, 5 + int(c)] = 1
    return out


def assign_correct(targets, S, nc, bs):
    return _assign(targets, S, nc, bs)


def assign_int_trunc(targets, S, nc, bs):
    """int(c * S) and no bounds check: int(-0.4) = 0 puts outside GTs into cell 0."""
    return _assign(targets, S, nc, bs, cell=lambda c, S: min(int(c * S), S - 1), drop=False)


def assign_floor_wraps(targets, S, nc, bs):
    """floor without a bounds check: -1 wraps to the last cell."""
    return _assign(targets, S, nc, bs, cell=lambda c, S: min(math.floor(c * S), S - 1), drop=False)


def assign_edge_oob(targets, S, nc, bs):
    """floor(c * S) not clamped: cx = 1.0 gives index S."""
    return _assign(targets, S, nc, bs, cell=lambda c, S: math.floor(c * S))


def assign_class_added(targets, S, nc, bs):
    """Class one-hot added with +=: a two-hot row on a collision."""
    return _assign(targets, S, nc, bs, add_class=True)


def assign_mixed_collision(targets, S, nc, bs):
    """Last writer wins for the box, first for the class: a mixture."""
    return _assign(targets, S, nc, bs, class_first_writer=True)


def assign_wrong_offset(targets, S, nc, bs):
    """Offsets relative to the cell centre instead of its corner."""
    out = _assign(targets, S, nc, bs)
    m = out[..., 4] == 1
    out[..., :2][m] -= 0.5
    return out


def _bce(logit, t):
    return np.logaddexp(0, logit) - t * logit


def _parts(pred, target):
    obj = target[..., 4] == 1
    box = ((pred[..., :4] - target[..., :4]) ** 2).sum(-1)
    return obj, box, _bce(pred[..., 4], target[..., 4]), _bce(pred[..., 5:], target[..., 5:]).sum(-1)


def loss_correct(pred, target):
    obj, box, lobj, lcls = _parts(pred, target)
    n = max(int(obj.sum()), 1)
    return (box[obj].sum() + lobj.sum() + lcls[obj].sum()) / n


def loss_nan_no_objects(pred, target):
    """Divides by the number of objects (0 when there are none)."""
    obj, box, lobj, lcls = _parts(pred, target)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (box[obj].sum() + lobj.sum() + lcls[obj].sum()) / obj.sum()


def loss_mean_all_cells(pred, target):
    """Means over every cell of the batch (MSE-style reduction)."""
    obj, box, lobj, lcls = _parts(pred, target)
    return (box * obj).mean() + lobj.mean() + (lcls * obj).mean()


def loss_bce_on_logits(pred, target):
    """BCE for probabilities fed raw logits (F.binary_cross_entropy on logits)."""
    obj = target[..., 4] == 1
    p = pred[..., 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        lobj = -(target[..., 4] * np.log(p) + (1 - target[..., 4]) * np.log(1 - p))
    box = ((pred[..., :4] - target[..., :4]) ** 2).sum(-1)
    n = max(int(obj.sum()), 1)
    return (box[obj].sum() + np.nansum(lobj) + np.where(np.isnan(lobj), np.inf, 0).sum()) / n


def loss_obj_inverted(pred, target):
    """Objectness target inverted (1 - t)."""
    obj, box, _, lcls = _parts(pred, target)
    lobj = _bce(pred[..., 4], 1 - target[..., 4])
    n = max(int(obj.sum()), 1)
    return (box[obj].sum() + lobj.sum() + lcls[obj].sum()) / n


def post_correct(prediction, conf_thres, iou_thres, max_det):
    return N.non_max_suppression(prediction, conf_thres, iou_thres, max_det=max_det)


def post_first_image(prediction, conf_thres, iou_thres, max_det):
    """Returns after the first image."""
    return N.non_max_suppression(prediction[:1], conf_thres, iou_thres, max_det=max_det)


def post_ge(prediction, conf_thres, iou_thres, max_det):
    """Keeps conf >= conf_thres."""
    return N.non_max_suppression(prediction, float(np.nextafter(conf_thres, -1)), iou_thres, max_det=max_det)


def post_no_max_det(prediction, conf_thres, iou_thres, max_det):
    return N.non_max_suppression(prediction, conf_thres, iou_thres, max_det=10 ** 6)


def post_class_order(prediction, conf_thres, iou_thres, max_det):
    out = N.non_max_suppression(prediction, conf_thres, iou_thres, max_det=max_det)
    return [o[np.argsort(o[:, 5], kind="stable")] for o in out]


MUTANTS = [
    Mutant("assign_int_trunc", "properties:grid_assign", assign_int_trunc, "int()"),
    Mutant("assign_floor_wraps", "properties:grid_assign", assign_floor_wraps, "negative index"),
    Mutant("assign_edge_oob", "properties:grid_assign", assign_edge_oob, "edge"),
    Mutant("assign_class_added", "properties:grid_assign", assign_class_added, "one-hot"),
    Mutant("assign_mixed_collision", "properties:grid_assign", assign_mixed_collision, "collision mixes"),
    Mutant("assign_wrong_offset", "properties:grid_assign", assign_wrong_offset, "cell"),
    Mutant("loss_nan_no_objects", "properties:grid_loss", loss_nan_no_objects, "NaN with no objects"),
    Mutant("loss_mean_all_cells", "properties:grid_loss", loss_mean_all_cells, "mean over all cells"),
    Mutant("loss_bce_on_logits", "properties:grid_loss", loss_bce_on_logits, "BCE"),
    Mutant("loss_obj_inverted", "properties:grid_loss", loss_obj_inverted, "gradient"),
    Mutant("post_first_image", "properties:postprocess", post_first_image, "first image"),
    Mutant("post_ge", "properties:postprocess", post_ge, ">="),
    Mutant("post_no_max_det", "properties:postprocess", post_no_max_det, "max_det"),
    Mutant("post_class_order", "properties:postprocess", post_class_order, "order"),
]

#: Correct implementations of the property contracts: every property must hold.
CORRECT = [
    Mutant("assign_correct", "properties:grid_assign", assign_correct, ""),
    Mutant("loss_correct", "properties:grid_loss", loss_correct, ""),
    Mutant("post_correct", "properties:postprocess", post_correct, ""),
]
