"""Dedicated tests of ``assign.py``: external oracles, properties, bad input.

- YOLOv5: both sides equal a statement-by-statement torch transcription of YOLOv5 v7.0
  ``ComputeLoss.build_targets`` (the oracle), exactly; every positive passes the ratio test and
  lies within one cell of the GT centre; the written targets decode back to the GT; a
  horizontal flip mirrors the assignment (the exact rule at integer positions is stated in
  :func:`test_yolov5_horizontal_flip_mirrors`); the report's collisions and "won" flags are
  those of a sequential write.
- TAL: both sides equal a torch transcription of Ultralytics 8.3 ``TaskAlignedAssigner``
  (with 8.4's small-object rule as the option); positives lie inside a real GT, and GT-exclusive
  positives are at most topk per GT.
- YOLOv1: equal to a transcription of darknet's ``detection_layer`` loop.
- YOLOv3 / tutorial: one best anchor over all levels / one positive per GT per level.
- Section A's dense targets (seed_systems.md) as printed and corrected: the ratio anchor score
  against the shape IoU, a collision's two-hot class row against the last writer's one-hot;
  the corrected targets are ``tutorial_assign``'s rows written in order.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import to_port
from parity_tests.tolerances import EXACT, assert_parity, to_numpy
from ref_numpy import assign as R
from torch_impl import assign as T

V5 = "assign.yolov5_build_targets"
TAL = "assign.task_aligned_assign"
DEFAULT_ANCHORS = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                            [[116, 90], [156, 198], [373, 326]]], dtype=np.float64) / np.array(
    [8.0, 16.0, 32.0])[:, None, None]
DEFAULT_GRIDS = [(8, 8), (4, 4), (2, 2)]


# ============================================================================ oracles

def _yolov5_transcription(targets, anchors, grid_sizes, anchor_t=4.0, g=0.5):
    """YOLOv5 v7.0 ``ComputeLoss.build_targets``, statement by statement (torch). Only the
    inputs are adapted: ``p[i].shape`` comes from ``grid_sizes``, ``self.hyp['anchor_t']`` and
    the bias ``g`` are arguments."""
    na, nt = anchors.shape[1], targets.shape[0]
    nl = anchors.shape[0]
    tcls, tbox, indices, anch = [], [], [], []
    gain = torch.ones(7, dtype=targets.dtype)
    ai = torch.arange(na).float().view(na, 1).repeat(1, nt).to(targets.dtype)
    targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)
    off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]]).float() * g
    for i in range(nl):
        shape = (1, na, grid_sizes[i][0], grid_sizes[i][1], 6)
        gain[2:6] = torch.tensor(shape)[[3, 2, 3, 2]]
        t = targets * gain
        if nt:
            r = t[..., 4:6] / anchors[i][:, None]
            j = torch.max(r, 1 / r).max(2)[0] < anchor_t
            t = t[j]
            gxy = t[:, 2:4]
            gxi = gain[[2, 3]] - gxy
            j, k = ((gxy % 1 < g) & (gxy > 1)).T
            l, m = ((gxi % 1 < g) & (gxi > 1)).T
            j = torch.stack((torch.ones_like(j), j, k, l, m))
            t = t.repeat((5, 1, 1))[j]
            offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
        else:
            t = targets[0]
            offsets = 0
        bc, gxy, gwh, a = t.chunk(4, 1)
        a, (b, c) = a.long().view(-1), bc.long().T
        gij = (gxy - offsets).long()
        gi, gj = gij.T
        indices.append((b, a, gj.clamp_(0, shape[2] - 1), gi.clamp_(0, shape[3] - 1)))
        tbox.append(torch.cat((gxy - gij, gwh), 1))
        anch.append(anchors[i][a])
        tcls.append(c)
    return tcls, tbox, indices, anch


def _ultralytics_bbox_ciou(box1, box2, eps=1e-7, v84=False):
    """ultralytics 8.3.253 (``v84``: 8.4.190) ``utils/metrics.py::bbox_iou(box1, box2,
    xywh=False, CIoU=True)``."""
    b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
    b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp_(0) * (
        b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp_(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)
    ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)
    c2 = cw.pow(2) + ch.pow(2) + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2).pow(2) + (b2_y1 + b2_y2 - b1_y1 - b1_y2).pow(2)) / 4
    v = (4 / math.pi ** 2) * ((w2 / h2).atan() - (w1 / h1).atan()).pow(2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps) if v84 else v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class _UltralyticsTAL:
    """ultralytics 8.3 ``utils/tal.py::TaskAlignedAssigner`` transcribed (forward, get_pos_mask,
    get_box_metrics, select_topk_candidates, get_targets, select_candidates_in_gts,
    select_highest_overlaps), with two changes: ``torch.topk`` is replaced by a stable
    descending sort (its order among equal metrics is unspecified), and the 8.4
    ``select_candidates_in_gts`` enlargement is applied when ``stride`` is given."""

    def __init__(self, topk, num_classes, alpha, beta, eps=1e-9, stride=None):
        self.topk, self.num_classes, self.bg_idx = topk, num_classes, num_classes
        self.alpha, self.beta, self.eps, self.stride = alpha, beta, eps, stride  # 8.4: stride_val

    def __call__(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        self.bs = pd_scores.shape[0]
        self.n_max_boxes = gt_bboxes.shape[1]
        if self.n_max_boxes == 0:
            return (torch.full_like(pd_scores[..., 0], self.bg_idx), torch.zeros_like(pd_bboxes),
                    torch.zeros_like(pd_scores), torch.zeros_like(pd_scores[..., 0]),
                    torch.zeros_like(pd_scores[..., 0]))
        mask_pos, align_metric, overlaps = self.get_pos_mask(
            pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt)
        target_gt_idx, fg_mask, mask_pos = self.select_highest_overlaps(mask_pos, overlaps, self.n_max_boxes)
        target_labels, target_bboxes, target_scores = self.get_targets(gt_labels, gt_bboxes, target_gt_idx, fg_mask)
        align_metric *= mask_pos
        pos_align_metrics = align_metric.amax(dim=-1, keepdim=True)
        pos_overlaps = (overlaps * mask_pos).amax(dim=-1, keepdim=True)
        norm_align_metric = (align_metric * pos_overlaps / (pos_align_metrics + self.eps)).amax(-2).unsqueeze(-1)
        target_scores = target_scores * norm_align_metric
        return target_labels, target_bboxes, target_scores, fg_mask.bool(), target_gt_idx

    def get_pos_mask(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt):
        mask_in_gts = self.select_candidates_in_gts(anc_points, gt_bboxes, mask_gt)
        align_metric, overlaps = self.get_box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask_in_gts * mask_gt)
        mask_topk = self.select_topk_candidates(align_metric, topk_mask=mask_gt.expand(-1, -1, self.topk).bool())
        mask_pos = mask_topk * mask_in_gts * mask_gt
        return mask_pos, align_metric, overlaps

    def get_box_metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask_gt):
        na = pd_bboxes.shape[-2]
        mask_gt = mask_gt.bool()
        overlaps = torch.zeros([self.bs, self.n_max_boxes, na], dtype=pd_bboxes.dtype)
        bbox_scores = torch.zeros([self.bs, self.n_max_boxes, na], dtype=pd_scores.dtype)
        ind = torch.zeros([2, self.bs, self.n_max_boxes], dtype=torch.long)
        ind[0] = torch.arange(end=self.bs).view(-1, 1).expand(-1, self.n_max_boxes)
        ind[1] = gt_labels.squeeze(-1)
        bbox_scores[mask_gt] = pd_scores[ind[0], :, ind[1]][mask_gt]
        pd_boxes = pd_bboxes.unsqueeze(1).expand(-1, self.n_max_boxes, -1, -1)[mask_gt]
        gt_boxes = gt_bboxes.unsqueeze(2).expand(-1, -1, na, -1)[mask_gt]
        overlaps[mask_gt] = _ultralytics_bbox_ciou(gt_boxes, pd_boxes, v84=self.stride is not None
                                                   ).squeeze(-1).clamp_(0)
        align_metric = bbox_scores.pow(self.alpha) * overlaps.pow(self.beta)
        return align_metric, overlaps

    def select_topk_candidates(self, metrics, largest=True, topk_mask=None):
        # torch.topk(metrics, self.topk, dim=-1, largest=largest), ties to the lower index:
        topk_idxs = torch.sort(metrics, dim=-1, descending=largest, stable=True).indices[..., :self.topk]
        topk_idxs.masked_fill_(~topk_mask, 0)
        count_tensor = torch.zeros(metrics.shape, dtype=torch.int8)
        ones = torch.ones_like(topk_idxs[:, :, :1], dtype=torch.int8)
        for k in range(self.topk):
            count_tensor.scatter_add_(-1, topk_idxs[:, :, k:k + 1], ones)
        count_tensor.masked_fill_(count_tensor > 1, 0)
        return count_tensor.to(metrics.dtype)

    def get_targets(self, gt_labels, gt_bboxes, target_gt_idx, fg_mask):
        batch_ind = torch.arange(end=self.bs, dtype=torch.int64)[..., None]
        target_gt_idx = target_gt_idx + batch_ind * self.n_max_boxes
        target_labels = gt_labels.long().flatten()[target_gt_idx]
        target_bboxes = gt_bboxes.view(-1, gt_bboxes.shape[-1])[target_gt_idx]
        target_labels.clamp_(0)
        target_scores = torch.zeros((target_labels.shape[0], target_labels.shape[1], self.num_classes),
                                    dtype=torch.int64)
        target_scores.scatter_(2, target_labels.unsqueeze(-1), 1)
        fg_scores_mask = fg_mask[:, :, None].repeat(1, 1, self.num_classes)
        target_scores = torch.where(fg_scores_mask > 0, target_scores, 0)
        return target_labels, target_bboxes, target_scores

    def select_candidates_in_gts(self, xy_centers, gt_bboxes, mask_gt, eps=1e-9):
        if self.stride is not None:  # ultralytics 8.4
            c = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2
            wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
            xywh = torch.cat([c, wh], -1)
            wh_mask = xywh[..., 2:] < self.stride
            xywh[..., 2:] = torch.where((wh_mask * mask_gt).bool(),
                                        torch.tensor(self.stride, dtype=xywh.dtype), xywh[..., 2:])
            dw = xywh[..., 2:] / 2
            gt_bboxes = torch.cat([xywh[..., :2] - dw, xywh[..., :2] + dw], -1)
        n_anchors = xy_centers.shape[0]
        bs, n_boxes, _ = gt_bboxes.shape
        lt, rb = gt_bboxes.reshape(-1, 1, 4).chunk(2, 2)
        bbox_deltas = torch.cat((xy_centers[None] - lt, rb - xy_centers[None]), dim=2).view(bs, n_boxes, n_anchors, -1)
        return bbox_deltas.amin(3).gt_(eps)

    @staticmethod
    def select_highest_overlaps(mask_pos, overlaps, n_max_boxes):
        fg_mask = mask_pos.sum(-2)
        if fg_mask.max() > 1:
            mask_multi_gts = (fg_mask.unsqueeze(1) > 1).expand(-1, n_max_boxes, -1)
            max_overlaps_idx = overlaps.argmax(1)
            is_max_overlaps = torch.zeros(mask_pos.shape, dtype=mask_pos.dtype)
            is_max_overlaps.scatter_(1, max_overlaps_idx.unsqueeze(1), 1)
            mask_pos = torch.where(mask_multi_gts, is_max_overlaps, mask_pos).float()
            fg_mask = mask_pos.sum(-2)
        target_gt_idx = mask_pos.argmax(-2)
        return target_gt_idx, fg_mask, mask_pos


def _darknet_v1(pred, targets, sqrt=True):
    """darknet ``data.c fill_truth_region`` + ``detection_layer.c`` responsible-box loop, in
    plain Python floats. Returns (gt_index [bs, S, S], responsible index [bs, S, S] or -1)."""
    bs, S, _, B, _ = pred.shape
    gt_index = -np.ones((bs, S, S), np.int64)
    truth = {}
    for i, (b, _, x, y, w, h) in enumerate(targets.tolist()):
        col, row = min(int(x * S), S - 1), min(int(y * S), S - 1)  # clamp: see the reference
        if (int(b), row, col) in truth:
            continue
        truth[(int(b), row, col)] = (x * S - col, y * S - row, w, h)
        gt_index[int(b), row, col] = i

    def box_iou(a, t):
        def overlap(x1, w1, x2, w2):
            return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
        ow, oh = overlap(a[0], a[2], t[0], t[2]), overlap(a[1], a[3], t[1], t[3])
        inter = 0.0 if ow < 0 or oh < 0 else ow * oh
        union = a[2] * a[3] + t[2] * t[3] - inter
        return inter / union if union != 0 else float("nan")

    best = -np.ones((bs, S, S), np.int64)
    for (b, row, col), (tx, ty, tw, th) in truth.items():
        tb = (tx / S, ty / S, tw, th)
        best_index, best_iou, best_rmse = -1, 0.0, 20.0
        for j in range(B):
            px, py, pw, ph = pred[b, row, col, j].tolist()
            out = (px / S, py / S, pw * pw if sqrt else pw, ph * ph if sqrt else ph)
            iou = box_iou(out, tb)
            rmse = math.sqrt(sum((o - t) ** 2 for o, t in zip(out, tb)))
            if best_iou > 0 or iou > 0:
                if iou > best_iou:
                    best_iou, best_index = iou, j
            elif rmse < best_rmse:
                best_rmse, best_index = rmse, j
        best[b, row, col] = best_index
    return gt_index, best


# ============================================================================ helpers

def _both(fn_name, *args, dtype="float64", **kwargs):
    """(reference output, port output) of ``fn_name`` on the same (NumPy) inputs."""
    def cast(x):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            return x.astype(dtype)
        if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            return [cast(v) for v in x]
        return x
    rargs = [cast(a) for a in args]
    rkw = {k: cast(v) for k, v in kwargs.items()}
    ref = getattr(R, fn_name)(*rargs, **rkw)
    port = getattr(T, fn_name)(*to_port(rargs, dtype), **to_port(rkw, dtype))
    return ref, port


def _v5_problem(dyadic=False, pow2=False):
    return st.tuples(S.yolo_targets(bs=3, dyadic=dyadic), S.yolo_anchor_levels(pow2=pow2))


# ============================================================================ YOLOv5

@settings(max_examples=40)
@given(problem=_v5_problem(), anchor_t=st.sampled_from([2.0, 4.0]),
       g=st.sampled_from([0.5, 0.25, 1.0]), dtype=st.sampled_from(["float64", "float32"]))
@example(problem=(np.zeros((0, 6)), (DEFAULT_ANCHORS, DEFAULT_GRIDS)), anchor_t=4.0, g=0.5, dtype="float64")
@example(problem=(np.array([[0, 1, 0.5, 0.5, 0.2, 0.3], [0, 2, 0.25, 0.75, 0.05, 0.06],
                            [1, 0, 1.0, 0.0, 0.9, 0.9], [1, 0, 1.0, 0.0, 0.9, 0.9]]),
                  (DEFAULT_ANCHORS, DEFAULT_GRIDS)), anchor_t=4.0, g=0.5, dtype="float32")
def test_yolov5_equals_transcription(problem, anchor_t, g, dtype):
    targets, (anchors, grids) = problem
    oracle = _yolov5_transcription(torch.from_numpy(targets.astype(dtype)),
                                   torch.from_numpy(anchors.astype(dtype)), grids, anchor_t, g)
    ref, port = _both("yolov5_build_targets", targets, anchors, grids, anchor_t, g, dtype=dtype)
    call = (targets, anchors, grids, anchor_t, g)
    assert_parity(port, oracle, name=V5, dtype=dtype, inputs=call)
    assert_parity(ref, oracle, name=V5, dtype=dtype, inputs=call)


@settings(max_examples=40)
@given(problem=_v5_problem())
@example(problem=(np.array([[0, 0, 1.0, 1.0, 0.5, 0.5], [0, 0, 0.0, 0.0, 0.5, 0.5]]),
                  (DEFAULT_ANCHORS, DEFAULT_GRIDS)))
def test_yolov5_positive_properties(problem):
    """Every row: ratio test passes for its anchor; its cell is within one cell of the GT
    centre; ``gij + tbox[:, :2]`` gives the GT centre back (also at cx == 1, where YOLOv5's
    in-place clamp gives cell nx - 1 and offset 1) and ``tbox[:, 2:] / n`` its size."""
    targets, (anchors, grids) = problem
    tcls, tbox, indices, anch = T.yolov5_build_targets(torch.from_numpy(targets),
                                                       torch.from_numpy(anchors), grids)
    report = R.yolov5_assignment_report(targets, anchors, grids)
    for lv, (ny, nx) in enumerate(grids):
        b, a, gj, gi = (x.numpy() for x in indices[lv])
        tb, an = tbox[lv].numpy(), anch[lv].numpy()
        ti = np.full(len(b), -1, np.int64)
        for gt in report.gts:
            for p in gt.positives:
                if p.level == lv:
                    ti[p.row] = gt.gt
        assert np.all(ti >= 0)
        assert len(ti) == len(b)
        r = tb[:, 2:] / an
        assert np.all(np.maximum(r, 1 / r).max(1) < 4.0)
        grid = np.array([nx, ny], dtype=np.float64)
        gxy = targets[ti, 2:4] * grid
        cell = np.stack([gi, gj], 1)
        assert np.all(np.abs(cell - np.minimum(np.floor(gxy), grid - 1)) <= 1)
        assert_parity(cell + tb[:, :2], gxy, name=V5, dtype="float64")  # exact
        assert_parity(tb[:, 2:] / grid, targets[ti, 4:6], name="roundtrip.decode_size", dtype="float64")
        assert np.array_equal(b, targets[ti, 0].astype(np.int64))
        assert np.array_equal(tcls[lv].numpy(), targets[ti, 1].astype(np.int64))


@settings(max_examples=40)
@given(problem=_v5_problem(dyadic=True, pow2=True))
@example(problem=(np.array([[0, 0, 0.375, 0.5, 0.25, 0.25], [0, 0, 1.0, 0.5, 0.25, 0.25],
                            [0, 0, 0.4375, 0.5, 0.25, 0.25]]), (DEFAULT_ANCHORS, DEFAULT_GRIDS)))
def test_yolov5_horizontal_flip_mirrors(problem):
    """Flip cx -> 1 - cx: the rows mirror one to one, level, anchor and gj kept, gi -> nx-1-gi,
    the x-1 neighbour becoming the x+1 one and back, and tx -> 1 - tx.

    Positions are narrowed to cx = (4k + 1) / 4096 (from the drawn dyadic value), so that
    gx = cx * nx (nx a power of two <= 64) and its mirror are exact and never on a cell border
    or an exact half cell. The rule does NOT hold there, by YOLOv5's own asymmetry: at an
    integer gx the x+1 row repeats the centre cell (gx + 0.5 truncates to gx) and the y-rows use
    column gx, the cell right of the border in both images; at gx == 1 no x-1 row is taken
    (strict ``gx > 1``); at an exact half cell no neighbour is taken on either side (strict
    ``< g``). Those positions are covered exactly by :func:`test_yolov5_equals_transcription`."""
    targets, (anchors, grids) = problem
    targets = targets.copy()
    targets[:, 2] = (np.floor(targets[:, 2] * 1023) * 4 + 1) / 4096
    flipped = targets.copy()
    flipped[:, 2] = 1.0 - flipped[:, 2]
    nxs = [nx for _, nx in grids]
    rep = T.yolov5_assignment_report(torch.from_numpy(targets), torch.from_numpy(anchors), grids)
    rep_f = T.yolov5_assignment_report(torch.from_numpy(flipped), torch.from_numpy(anchors), grids)
    swap = {"centre": "centre", "x-1": "x+1", "x+1": "x-1", "y-1": "y-1", "y+1": "y+1"}
    for gt, gt_f in zip(rep.gts, rep_f.gts):
        mirrored = sorted((p.level, p.anchor, swap[p.rule], p.cell[0],
                           nxs[p.level] - 1 - p.cell[1], 1 - p.target[0], p.target[1])
                          for p in gt.positives)
        got = sorted((p.level, p.anchor, p.rule, p.cell[0], p.cell[1],
                      p.target[0], p.target[1]) for p in gt_f.positives)
        assert got == mirrored


@settings(max_examples=40)
@given(problem=_v5_problem(), dtype=st.sampled_from(["float64", "float32"]))
@example(problem=(np.array([[0, 0, 0.5, 0.5, 0.1, 0.1], [0, 1, 0.5, 0.5, 0.1, 0.1],
                            [0, 0, 0.2, 0.2, 0.0, 0.1], [0, 0, 0.3, 0.3, 1.0, 1.0]]),
                  (DEFAULT_ANCHORS, DEFAULT_GRIDS)), dtype="float64")
def test_report_collisions_last_writer_wins(problem, dtype):
    """Report = sequential write: replaying the rows in order into a slot table gives the
    winner of every slot; the report's "won" flags, collisions and no-positive reasons agree
    with it, and both sides return the identical structure."""
    targets, (anchors, grids) = problem
    ref, port = _both("yolov5_assignment_report", targets, anchors, grids, dtype=dtype)
    assert port == ref
    tcls, tbox, indices, anch = R.yolov5_build_targets(targets.astype(dtype), anchors.astype(dtype), grids)
    assert [lv.rows for lv in ref.levels] == [len(c) for c in tcls]
    by_row = {(p.level, p.row): (gt.gt, p) for gt in ref.gts for p in gt.positives}
    assert len(by_row) == sum(len(c) for c in tcls)
    na = anchors.shape[1]
    for lv, (ny, nx) in enumerate(grids):
        table = {}
        writers = {}
        for row, slot in enumerate(zip(*(x.tolist() for x in indices[lv]))):
            gt, p = by_row[(lv, row)]
            assert p.cell == [slot[2], slot[3]] and p.anchor == slot[1]
            table[slot] = row  # the last write wins
            writers.setdefault(slot, []).append(gt)
        for (gt, p) in (by_row[(lv, r)] for r in range(len(tcls[lv]))):
            slot = (targets[gt, 0].astype(int), p.anchor, *p.cell)
            assert p.won == (table[slot] == p.row)
            assert p.owner == by_row[(lv, table[slot])][0]  # the slot's last writer
        expect = sorted((list(s), w, w[-1]) for s, w in writers.items() if len(set(w)) > 1)
        got = sorted((c.slot, c.writers, c.winner) for c in ref.collisions if c.level == lv)
        assert got == expect
        assert all(0 <= s[1] < na for s, _, _ in expect)
    for gt in ref.gts:
        has = {p.level for p in gt.positives}
        for lv, reason in enumerate(gt.reasons):
            assert (reason is None) == (lv in has)
            assert reason in (None,) + R.V5_REASONS
        assert gt.positive == bool(gt.positives) and (gt.reason is None) == gt.positive
        assert gt.lost == [] and gt.valid
    assert [g.gt for g in ref.unassigned] == [g.gt for g in ref.gts if not g.positives]


def test_report_reasons_known_values():
    anchors = np.array([[[2.0, 2.0]]])
    grids = [(10, 10)]
    t = np.array([[0, 0, 0.5, 0.5, 0.2, 0.2],     # 2x2 cells: matches
                  [0, 0, 0.5, 0.5, 0.04, 0.2],    # 0.4 wide: 2 / 0.4 = 5 >= 4 -> too small
                  [0, 0, 0.5, 0.5, 0.0, 0.2],     # zero width -> too small
                  [0, 0, 0.5, 0.5, 0.9, 0.2],     # 9 / 2 > 4 -> too large
                  [0, 0, 0.5, 0.5, 0.9, 0.04],    # one side too large, other too small: aspect
                  [0, 0, 1.25, 0.5, 0.2, 0.2]])   # centre outside the image
    for rep in (R.yolov5_assignment_report(t, anchors, grids),
                T.yolov5_assignment_report(torch.from_numpy(t), torch.from_numpy(anchors), grids)):
        assert [g.reasons[0] for g in rep.gts] == [
            None, "too small", "too small", "too large", "aspect ratio", "outside the grid"]
        assert [g.gt for g in rep.unassigned] == [1, 2, 3, 4, 5]
        assert [u.reason for u in rep.unassigned] == [g.reasons[0] for g in rep.gts[1:]]


def test_yolov5_known_rows():
    """A hand-checked example: gx = 2.25 on an 8-grid takes the x-1 neighbour (0.25 < 0.5 and
    gx > 1), gy = 5.75 the y+1 one ((8 - 5.75) % 1 = 0.25); the order is centre, j, m."""
    t = np.array([[0.0, 3.0, 2.25 / 8, 5.75 / 8, 0.25, 0.25]])
    anchors = np.array([[[2.0, 2.0]]])
    for out in (R.yolov5_build_targets(t, anchors, [(8, 8)]),
                T.yolov5_build_targets(torch.from_numpy(t), torch.from_numpy(anchors), [(8, 8)])):
        tcls, tbox, indices, anch = (to_numpy(x) for x in out)
        b, a, gj, gi = indices[0]
        assert gi.tolist() == [2, 1, 2] and gj.tolist() == [5, 5, 6]
        assert tcls[0].tolist() == [3, 3, 3]
        assert_parity(tbox[0][:, :2], np.array([[0.25, 0.75], [1.25, 0.75], [0.25, -0.25]]),
                      name=V5, dtype="float64")


# ============================================================================ tutorial, v3, v1

@settings(max_examples=30)
@given(problem=_v5_problem())
def test_tutorial_one_positive_per_level(problem):
    targets, (anchors, grids) = problem
    ref, port = _both("tutorial_assign", targets, anchors, grids)
    assert_parity(port, ref, name="assign.tutorial_assign", dtype="float64")
    nt = len(targets)
    for lv, (ny, nx) in enumerate(grids):
        b, a, gj, gi = ref["indices"][lv]
        assert np.array_equal(ref["gt_index"][lv], np.arange(nt))
        assert np.all((gj >= 0) & (gj < ny) & (gi >= 0) & (gi < nx))
        gwh = targets[:, 4:6] * np.array([nx, ny])
        inter = np.minimum(gwh[:, None], anchors[lv][None]).prod(-1)
        iou = inter / (gwh.prod(-1)[:, None] + anchors[lv].prod(-1)[None] - inter)
        iou = np.nan_to_num(iou)
        assert np.array_equal(iou[np.arange(nt), a], iou.max(1, initial=0.0))


@settings(max_examples=30)
@given(problem=S.yolov3_problem())
def test_yolov3_properties(problem):
    """Every GT is positive exactly once, on the level of its best anchor over all levels
    (checked with ``boxes.wh_iou``); ignore is never set at a positive slot; with
    ``pred_iou`` a prediction equal to a GT of its image is ignored unless positive."""
    from ref_numpy.boxes import wh_iou

    t, anchors, grids, preds = (problem[k] for k in ("targets", "anchors", "grid_sizes", "pred_boxes"))
    ref, port = _both("yolov3_assign", t, anchors, grids, preds)
    assert_parity(port, ref, name="assign.yolov3_assign", dtype="float64")
    seen = np.concatenate(ref["gt_index"])
    assert np.array_equal(np.sort(seen), np.arange(len(t)))
    if len(t):
        norm = np.concatenate([anchors[lv] / np.array([nx, ny]) for lv, (ny, nx) in enumerate(grids)])
        best = np.nan_to_num(wh_iou(t[:, 4:6], norm)).argmax(1)
        na = anchors.shape[1]
        for lv in range(len(grids)):
            gi = ref["gt_index"][lv]
            assert np.all(best[gi] // na == lv)
            assert np.array_equal(ref["indices"][lv][1], best[gi] % na)
    for lv in range(len(grids)):
        b, a, gj, gi = ref["indices"][lv]
        assert not ref["ignore"][lv][b, a, gj, gi].any()
        for img in range(preds[lv].shape[0]):
            own = t[t[:, 0] == img, 2:6]
            own = own[R.darknet_box_iou(own, own) > 0.5]  # IoU with itself rounds to 1, not 0
            equal = (preds[lv][img][..., None, :] == own).all(-1).any(-1)  # [na, ny, nx]
            pos = np.zeros(equal.shape, bool)
            pos[a[b == img], gj[b == img], gi[b == img]] = True
            assert np.all(ref["ignore"][lv][img][equal & ~pos])


@settings(max_examples=30)
@given(problem=S.yolov1_problem())
@example(problem={"pred_boxes": np.zeros((1, 2, 2, 2, 4)),
                  "targets": np.array([[0, 1, 0.25, 0.25, 0.5, 0.5], [0, 2, 0.3, 0.3, 0.1, 0.1]])})
def test_yolov1_properties(problem):
    """Both sides equal the darknet transcription (cell owner: first GT; responsible: first max
    IoU, else first min RMSE); one responsible predictor per object cell."""
    pred, t = problem["pred_boxes"], problem["targets"]
    ref, port = _both("yolov1_assign", pred, t)
    assert_parity(port, ref, name="assign.yolov1_assign", dtype="float64")
    gt_index, best = _darknet_v1(pred, t)
    assert np.array_equal(ref["gt_index"], gt_index)
    resp = np.where(ref["obj_mask"], ref["responsible"].argmax(-1), -1)
    assert np.array_equal(resp, best)
    assert np.array_equal(ref["responsible"].sum(-1), ref["obj_mask"].astype(int))
    kept = np.zeros(len(t), bool)
    kept[gt_index[gt_index >= 0]] = True
    assert np.array_equal(ref["dropped"], ~kept)


def _check_rows_report(rep, out, targets, grids, na):
    """An anchor-based report (yolov3 / tutorial) against the assignment it explains: one
    Positive per output row (GT, anchor, cell, target), ``won`` / ``owner`` / collisions those
    of a sequential write of the rows."""
    by_row = {(p.level, p.row): (g.gt, p) for g in rep.gts for p in g.positives}
    assert len(by_row) == sum(len(x) for x in out["gt_index"])
    for lv, (ny, nx) in enumerate(grids):
        b, a, gj, gi = (np.asarray(x).tolist() for x in out["indices"][lv])
        table, writers = {}, {}
        for r, ti in enumerate(np.asarray(out["gt_index"][lv]).tolist()):
            gt, p = by_row[(lv, r)]
            assert gt == ti and p.anchor == a[r] and p.cell == [gj[r], gi[r]]
            assert p.target == np.asarray(out["tbox"][lv])[r].tolist() and p.rule == "best anchor"
            table[(b[r], a[r], gj[r], gi[r])] = ti
            writers.setdefault((b[r], a[r], gj[r], gi[r]), []).append(ti)
        for r in range(len(b)):
            gt, p = by_row[(lv, r)]
            slot = (b[r], a[r], gj[r], gi[r])
            later = [w for w in writers[slot]]
            assert p.owner == table[slot] and p.won == (later[-1] == gt and max(
                k for k in range(len(b)) if (b[k], a[k], gj[k], gi[k]) == slot) == r)
        expect = sorted((list(s), w, w[-1]) for s, w in writers.items() if len(set(w)) > 1)
        got = sorted((c.slot, c.writers, c.winner) for c in rep.collisions if c.level == lv)
        assert got == expect
        assert rep.levels[lv].rows == len(b) and rep.levels[lv].grid == [ny, nx]
    for g in rep.gts:
        assert g.box == targets[g.gt, 2:6].tolist() and g.cls == int(targets[g.gt, 1])
        assert g.positive and g.reason is None and not g.lost
    assert rep.unassigned == []


@settings(max_examples=30)
@given(problem=S.yolov3_problem(), dtype=st.sampled_from(["float64", "float32"]))
def test_yolov3_report_matches_assignment(problem, dtype):
    """Both sides' reports are equal; one Positive per GT, on its best anchor's level (the
    other levels' reason "best anchor on another level"), matching yolov3_assign's rows."""
    t, anchors, grids, preds = (problem[k] for k in ("targets", "anchors", "grid_sizes", "pred_boxes"))
    ref, port = _both("yolov3_assignment_report", t, anchors, grids, preds, dtype=dtype)
    # targets hold log(gw / aw): np.log vs torch.log may differ by an ulp (the table's entry)
    assert_parity(port, ref, name="assign.yolov3_assignment_report", dtype=dtype, inputs=problem)
    assert ref.assigner == "yolov3"
    out = R.yolov3_assign(t.astype(dtype), anchors.astype(dtype), grids,
                          [p.astype(dtype) for p in preds])
    _check_rows_report(ref, out, t.astype(dtype), grids, anchors.shape[1])
    for g in ref.gts:
        (p,) = g.positives
        assert [r is None for r in g.reasons] == [lv == p.level for lv in range(len(grids))]
        assert set(g.reasons) - {None} <= set(R.V3_REASONS)


@settings(max_examples=30)
@given(problem=_v5_problem(), dtype=st.sampled_from(["float64", "float32"]))
@example(problem=(np.array([[0, 1, 0.3, 0.3, 0.1, 0.1], [0, 1, 0.3, 0.3, 0.1, 0.1]]),
                  (DEFAULT_ANCHORS, DEFAULT_GRIDS)), dtype="float64")
def test_tutorial_report_matches_assignment(problem, dtype):
    """Both sides' reports are equal; one Positive per GT per level, matching tutorial_assign's
    rows; identical GTs collide on every level and the later one wins."""
    targets, (anchors, grids) = problem
    ref, port = _both("tutorial_assignment_report", targets, anchors, grids, dtype=dtype)
    assert port == ref and ref.assigner == "tutorial"
    out = R.tutorial_assign(targets.astype(dtype), anchors.astype(dtype), grids)
    _check_rows_report(ref, out, targets.astype(dtype), grids, anchors.shape[1])
    for g in ref.gts:
        assert [p.level for p in g.positives] == list(range(len(grids)))


# ---------------------------------------------------------------------------- tutorial, dense
# Section A of shared/reference/seed_systems.md, as printed and corrected.

_DENSE = ("tutorial_assign_as_printed", "tutorial_assign_corrected")
PX_ANCHORS = np.array([[[20.0, 5.0], [18.0, 18.0]]])  # one level, two anchors, pixels


def _dense_both(fn, *args, dtype="float64", **kw):
    """Reference and port outputs of a dense tutorial assigner, compared bit for bit."""
    ref, port = _both(fn, *args, dtype=dtype, **kw)
    assert_parity(port, ref, name=f"assign.{fn}", dtype=dtype, tol=EXACT, inputs=(args, kw))
    return ref


def _slot_row(out, key, lv, b, a, gj, gi):
    return out[key][lv][b, a, gj, gi]


def test_tutorial_as_printed_anchor_score_is_not_the_shape_iou():
    """A 10 x 10 px GT against anchors 20 x 5 and 18 x 18: the shape IoUs are 1/3 and 0.309,
    the printed ratio scores 0.25 and 0.309, so the printed score picks anchor 1 and the
    corrected (shape IoU) anchor 0."""
    t = np.array([[0, 0, 10, 10, 20, 20]], dtype=np.float64)
    ratio = (np.minimum(10, PX_ANCHORS[0]) / np.maximum(10, PX_ANCHORS[0])).prod(-1)
    inter = np.minimum(10, PX_ANCHORS[0]).prod(-1)
    iou = inter / (100 + PX_ANCHORS[0].prod(-1) - inter)
    assert ratio.argmax() == 1 and iou.argmax() == 0  # the case is what it claims
    for dtype in ("float64", "float32"):
        printed = _dense_both("tutorial_assign_as_printed", t, PX_ANCHORS, [8.0], [(4, 4)], 1, dtype=dtype)
        fixed = _dense_both("tutorial_assign_corrected", t, PX_ANCHORS, [8.0], [(4, 4)], 1, dtype=dtype)
        assert printed["indices"][0][1].tolist() == [1] and fixed["indices"][0][1].tolist() == [0]
        # the cell is floor(centre / stride) = (1, 1) on both
        assert printed["obj"][0][0, 1, 1, 1] == 1 and fixed["obj"][0][0, 0, 1, 1] == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tutorial_collision_two_hot_as_printed_one_hot_corrected(dtype):
    """Two GTs of classes 0 and 2 in one slot: as printed the class one-hots add up (row
    [1, 0, 1]), corrected the row is the last writer's one-hot ([0, 0, 1]); both keep the last
    writer's box and obj = 1. A third GT of class 2 in that slot makes a 2 as printed."""
    t = np.array([[0, 0, 10, 10, 20, 20], [0, 2, 9, 9, 19, 19]], dtype=np.float64)
    args = (PX_ANCHORS, [8.0], [(4, 4)], 3)
    printed = _dense_both("tutorial_assign_as_printed", t, *args, dtype=dtype)
    fixed = _dense_both("tutorial_assign_corrected", t, *args, dtype=dtype)
    slot_p = (0, int(printed["indices"][0][1][0]), 1, 1)
    slot_f = (0, int(fixed["indices"][0][1][0]), 1, 1)
    for out in (printed, fixed):  # the case is what it claims: one slot, two GTs
        assert all(len(set(ix.tolist())) == 1 for ix in out["indices"][0])
    assert _slot_row(printed, "cls", 0, *slot_p).tolist() == [1, 0, 1]
    assert _slot_row(fixed, "cls", 0, *slot_f).tolist() == [0, 0, 1]
    for out, slot in ((printed, slot_p), (fixed, slot_f)):
        assert _slot_row(out, "box", 0, *slot).tolist() == [9, 9, 19, 19]
        assert out["obj"][0].sum() == 1
    three = np.concatenate([t, t[1:]])
    printed = _dense_both("tutorial_assign_as_printed", three, *args, dtype=dtype)
    fixed = _dense_both("tutorial_assign_corrected", three, *args, dtype=dtype)
    assert _slot_row(printed, "cls", 0, *slot_p).tolist() == [1, 0, 2]
    assert _slot_row(fixed, "cls", 0, *slot_f).tolist() == [0, 0, 1]


@st.composite
def _pixel_problem(draw):
    """Integer-pixel xyxy GTs (sides >= 1 px) on a 64 px image, levels at strides 8/16/32 (grids
    8/4/2), anchors in pixels: every division by a stride or grid size is exact."""
    nl = draw(st.integers(1, 3))
    strides = [8.0 * 2 ** i for i in range(nl)]
    grids = [(64 // int(s), 64 // int(s)) for s in strides]
    na = draw(st.integers(1, 3))
    anchors = draw(hnp.arrays(np.float64, (nl, na, 2), elements=S.floats(2.0, 128.0)))
    nt = draw(st.integers(0, 8))
    xy = draw(hnp.arrays(np.int64, (nt, 2), elements=st.integers(-8, 70)))
    wh = draw(hnp.arrays(np.int64, (nt, 2), elements=st.integers(1, 64)))
    img = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, 1)))
    cls = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, 2)))
    t = np.concatenate([img[:, None], cls[:, None], xy, xy + wh], 1).astype(np.float64).reshape(nt, 6)
    if nt > 1 and draw(st.booleans()):
        t[-1, 2:6] = t[0, 2:6]  # a collision on every level
    return t, anchors, strides, grids


@settings(max_examples=40)
@given(problem=_pixel_problem(), dtype=st.sampled_from(["float64", "float32"]))
@example(problem=(np.zeros((0, 6)), PX_ANCHORS, [8.0], [(8, 8)]), dtype="float64")
def test_tutorial_dense_properties(problem, dtype):
    """Port = reference, bit for bit, for both variants; the as-printed anchor is the first
    argmax of the write-up's ratio score, the corrected one that of the shape IoU; obj marks
    exactly the written slots; as printed a written slot's class row counts the GTs that wrote
    it (one-hots added), corrected it is one-hot; the two differ only in anchors and classes."""
    t, anchors, strides, grids = problem
    out = {fn: _dense_both(fn, t, anchors, strides, grids, 3, batch_size=2, dtype=dtype) for fn in _DENSE}
    t = t.astype(dtype)
    wh = np.maximum(t[:, 4:6] - t[:, 2:4], 1)
    for lv, ((ny, nx), s) in enumerate(zip(grids, strides)):
        lvl = anchors[lv].astype(dtype)
        ratio = (np.minimum(wh[:, None], lvl) / np.maximum(wh[:, None], lvl)).prod(-1)
        for fn, score in (("tutorial_assign_as_printed", ratio),
                          ("tutorial_assign_corrected", R.wh_iou(wh, lvl) if len(t) else ratio)):
            b, a, gj, gi = out[fn]["indices"][lv]
            assert np.array_equal(a, score.argmax(1) if len(t) else a)
            assert np.all((gi >= 0) & (gi < nx) & (gj >= 0) & (gj < ny))
            obj, cls = out[fn]["obj"][lv], out[fn]["cls"][lv]
            written = np.zeros(obj.shape, bool)
            written[b, a, gj, gi] = True
            assert np.array_equal(obj == 1, written) and np.all(obj[~written] == 0)
            sums = cls.sum(-1)
            if fn == "tutorial_assign_corrected":
                assert np.array_equal(sums, written.astype(sums.dtype))
            else:
                count = np.zeros(obj.shape)
                np.add.at(count, (b, a, gj, gi), 1)
                assert np.array_equal(sums, count.astype(sums.dtype))
                same_anchor = np.array_equal(a, out["tutorial_assign_corrected"]["indices"][lv][1])
                if same_anchor:  # only the class rows may differ
                    fixed = out["tutorial_assign_corrected"]
                    assert np.array_equal(obj, fixed["obj"][lv])
                    assert np.array_equal(out[fn]["box"][lv], fixed["box"][lv])


@settings(max_examples=30)
@given(problem=_pixel_problem())
def test_tutorial_corrected_slots_are_tutorial_assign_rows(problem):
    """The corrected dense targets are :func:`tutorial_assign`'s rows written in order (the
    last write wins): same anchors and cells, its class the last writer's, for GTs >= 1 px with
    their centres inside the image (tutorial_assign's domain: normalised targets)."""
    t, anchors, strides, grids = problem
    cxy = (t[:, 2:4] + t[:, 4:6]) / 2
    t = t[np.all((cxy >= 0) & (cxy <= 64), 1)]
    fixed = _dense_both("tutorial_assign_corrected", t, anchors, strides, grids, 3, batch_size=2)
    norm = np.concatenate([t[:, :2], (t[:, 2:4] + t[:, 4:6]) / 2 / 64, (t[:, 4:6] - t[:, 2:4]) / 64], 1)
    rows = R.tutorial_assign(norm.reshape(-1, 6), anchors / np.array(strides)[:, None, None], grids)
    for lv in range(len(grids)):
        b, a, gj, gi = rows["indices"][lv]
        assert all(np.array_equal(x, y) for x, y in zip((b, a, gj, gi), fixed["indices"][lv]))
        cls = np.zeros_like(fixed["cls"][lv])
        for k in range(len(b)):  # sequential writes: the later GT overwrites the slot
            cls[b[k], a[k], gj[k], gi[k]] = 0
            cls[b[k], a[k], gj[k], gi[k], rows["tcls"][lv][k]] = 1
        assert np.array_equal(cls, fixed["cls"][lv])


_PX_OK = (np.array([[0, 0, 10, 10, 20, 20]], dtype=np.float64), PX_ANCHORS, [8.0], [(4, 4)], 1)
_BAD_DENSE = {
    "x2 < x1": ((np.array([[0, 0, 20, 10, 10, 20.0]]),) + _PX_OK[1:], {}),
    "class >= num_classes": ((np.array([[0, 1, 10, 10, 20, 20.0]]),) + _PX_OK[1:], {}),
    "image >= batch_size": ((np.array([[2, 0, 10, 10, 20, 20.0]]),) + _PX_OK[1:], {"batch_size": 2}),
    "targets 5 columns": ((_PX_OK[0][:, :5],) + _PX_OK[1:], {}),
    "nan": ((_PX_OK[0] * np.nan,) + _PX_OK[1:], {}),
    "strides count": (_PX_OK[:2] + ([8.0, 16.0],) + _PX_OK[3:], {}),
    "stride zero": (_PX_OK[:2] + ([0.0],) + _PX_OK[3:], {}),
    "num_classes 0": (_PX_OK[:4] + (0,), {}),
    "anchors non-positive": ((_PX_OK[0], -PX_ANCHORS) + _PX_OK[2:], {}),
}


@pytest.mark.parametrize("fn", _DENSE)
@pytest.mark.parametrize("case", sorted(_BAD_DENSE))
def test_bad_input_tutorial_dense(fn, case):
    args, kw = _BAD_DENSE[case]
    with pytest.raises(ValueError):
        getattr(R, fn)(*args, **kw)
    with pytest.raises(ValueError):
        getattr(T, fn)(*to_port(list(args), "float64"), **kw)


@settings(max_examples=30)
@given(problem=S.yolov1_problem(), dtype=st.sampled_from(["float64", "float32"]))
@example(problem={"pred_boxes": np.zeros((1, 2, 2, 2, 4)),
                  "targets": np.array([[0, 1, 0.25, 0.25, 0.5, 0.5], [0, 2, 0.3, 0.3, 0.1, 0.1]])},
         dtype="float64")
def test_yolov1_report_matches_assignment(problem, dtype):
    """Both sides' reports are equal; a GT keeping its cell (the darknet transcription's
    owner) has one Positive at its cell with the responsible predictor and the written
    target; a dropped GT lost its cell to the owner; each shared cell is a collision won by
    its first GT."""
    pred, t = problem["pred_boxes"], problem["targets"]
    ref, port = _both("yolov1_assignment_report", pred, t, dtype=dtype)
    assert port == ref and ref.assigner == "yolov1"
    out = R.yolov1_assign(pred.astype(dtype), t.astype(dtype))
    gt_index, best = _darknet_v1(pred, t)
    S = pred.shape[1]
    assert ref.levels[0].grid == [S, S] and ref.levels[0].rows == int(out["obj_mask"].sum())
    cells = {}
    for g in ref.gts:
        if g.positive:
            (p,) = g.positives
            r, c = p.cell
            assert gt_index[g.image, r, c] == g.gt and p.anchor == best[g.image, r, c]
            assert p.row == r * S + c and p.target == out["target_boxes"][g.image, r, c].tolist()
            assert not g.lost and g.reason is None
        else:
            (lost,) = g.lost
            r, c = lost.cell
            assert gt_index[g.image, r, c] == lost.to_gt < g.gt and out["dropped"][g.gt]
            assert g.reason == R.V1_REASONS[0] and not g.positives
        cells.setdefault((g.image, *(g.positives[0].cell if g.positive else g.lost[0].cell)), []).append(g.gt)
    expect = sorted(([b, r, c], ws) for (b, r, c), ws in cells.items() if len(ws) > 1)
    assert sorted(([c.image, *c.cell], c.writers) for c in ref.collisions) == expect
    assert all(c.winner == c.writers[0] for c in ref.collisions)
    assert [u.gt for u in ref.unassigned] == np.flatnonzero(out["dropped"]).tolist()


def test_every_report_has_the_one_schema():
    """The five reports are the same dataclass with the same fields, JSON-serialisable through
    to_dict(); the table formatter reads every one of them."""
    import json
    from dataclasses import fields

    from ref_numpy.shared import report as shared

    t = np.array([[0, 1, 0.3, 0.3, 0.1, 0.1], [0, 1, 0.3, 0.3, 0.1, 0.1], [0, 0, 0.5, 0.5, 0.0, 0.3]])
    p = _tal_ok()
    reports = [R.yolov5_assignment_report(t, DEFAULT_ANCHORS, DEFAULT_GRIDS),
               R.tutorial_assignment_report(t, DEFAULT_ANCHORS, DEFAULT_GRIDS),
               R.yolov3_assignment_report(t, DEFAULT_ANCHORS, DEFAULT_GRIDS, ignore_mode="none"),
               R.yolov1_assignment_report(np.zeros((1, 4, 4, 2, 4)), t),
               R.task_aligned_report(*_tal_args(p), topk=1, num_classes=2)]
    names = {f.name for f in fields(shared.AssignmentReport)}
    gt_fields = {f.name for f in fields(shared.GTRecord)}
    for rep in reports:
        assert isinstance(rep, R.AssignmentReport) and {f.name for f in fields(rep)} == names
        assert all({f.name for f in fields(g)} == gt_fields for g in rep.gts)
        d = json.loads(json.dumps(rep.to_dict()))
        assert set(d) == names and all("class" in g and "cls" not in g for g in d["gts"])
        text = shared.format_assignment_table(rep)
        n_pos = sum(len(g.positives) for g in rep.gts)
        assert text.splitlines()[-1] == (f"{len(rep.gts)} GTs, {n_pos} positives, "
                                         f"{len(rep.unassigned)} without positive, "
                                         f"{len(rep.collisions)} collisions")
    assert [r.assigner for r in reports] == ["yolov5", "tutorial", "yolov3", "yolov1", "tal"]
    assert [u.gt for u in reports[0].unassigned] == [2]  # zero width: too small
    assert [u.gt for u in reports[3].unassigned] == [1]  # the twin lost its cell


# ============================================================================ TAL

def _tal_args(p):
    return [p[k] for k in ("pd_scores", "pd_bboxes", "anc_points", "gt_labels", "gt_bboxes", "mask_gt")]


@settings(max_examples=40)
@given(problem=S.tal_problem(), dtype=st.sampled_from(["float64", "float32"]))
def test_tal_equals_transcription(problem, dtype):
    args = _tal_args(problem)
    kw = {"topk": problem["topk"], "num_classes": problem["num_classes"]}
    stride = None if problem["version"] == "8.3" else problem["strides"][1]
    ref, port = _both("task_aligned_assign", *args, dtype=dtype, version=problem["version"],
                      strides=problem["strides"], **kw)
    targs = to_port(args, dtype)
    targs[3] = targs[3].long()  # Ultralytics 8.3 / 8.4 index with the labels
    oracle = _UltralyticsTAL(kw["topk"], kw["num_classes"], 0.5, 6.0, stride=stride)(*targs)
    oracle = (oracle[0].long(), oracle[1], oracle[2], oracle[3].bool(), oracle[4].long())
    assert_parity(port, oracle, name=TAL, dtype=dtype, inputs=problem)
    assert_parity(ref, oracle, name=TAL, dtype=dtype, inputs=problem)


@settings(max_examples=40)
@given(problem=S.tal_problem())
def test_tal_properties(problem):
    """Positives lie strictly inside a real GT of their image (the enlarged GT under the 8.4
    rule); a positive outside its own assigned GT only arises from the max of Ultralytics 8.3 / 8.4
    over all-zero overlaps and then has zero target scores; positives inside exactly one real GT
    are at most topk per GT (anchors shared by several GTs can be moved by the max-overlap
    rule, which may give a GT more than topk)."""
    args = _tal_args(problem)
    labels, boxes, scores, fg, idx = R.task_aligned_assign(
        *args, topk=problem["topk"], num_classes=problem["num_classes"],
        version=problem["version"], strides=problem["strides"])
    anc, gt, mask = problem["anc_points"], problem["gt_bboxes"], problem["mask_gt"][..., 0] > 0
    if problem["version"] == "8.4":
        c, wh = (gt[..., :2] + gt[..., 2:]) / 2, gt[..., 2:] - gt[..., :2]
        wh = np.where((wh < 16.0) & mask[..., None], 16.0, wh)
        gt = np.concatenate([c - wh / 2, c + wh / 2], -1)
    inside = (np.concatenate([anc - gt[:, :, None, :2], gt[:, :, None, 2:] - anc], -1).min(-1) > 1e-9)
    inside &= mask[..., None]  # [bs, n, A]
    assert np.all(inside.any(1)[fg])
    bs, A = fg.shape
    own = inside[np.arange(bs)[:, None], idx, np.arange(A)[None]] if gt.shape[1] else np.zeros_like(fg)
    assert np.all(scores[fg & ~own] == 0)
    exclusive = fg & (inside.sum(1) == 1)
    for b in range(bs):
        counts = np.bincount(idx[b][exclusive[b]], minlength=gt.shape[1])
        assert np.all(counts <= problem["topk"])
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores[~fg] == 0)


def _tal_inside(problem, dtype="float64"):
    """[bs, n, A] bool: anchor point strictly inside a real GT (enlarged under the 8.4 rule),
    computed in ``dtype`` as the assigners do (in float64 an anchor on the enlarged box's edge of
    a float32 problem can land on the other side)."""
    anc = problem["anc_points"].astype(dtype)
    gt = problem["gt_bboxes"].astype(dtype)
    mask = problem["mask_gt"][..., 0] > 0
    if problem["version"] == "8.4":
        strides = problem["strides"]
        side = np.asarray(strides[1] if len(strides) > 1 else strides[0], dtype=dtype)
        c, wh = (gt[..., :2] + gt[..., 2:]) / 2, gt[..., 2:] - gt[..., :2]
        wh = np.where((wh < side) & mask[..., None], side, wh)
        gt = np.concatenate([c - wh / 2, c + wh / 2], -1)
    inside = (np.concatenate([anc - gt[:, :, None, :2], gt[:, :, None, 2:] - anc], -1).min(-1) > 1e-9)
    return inside & mask[..., None]


@settings(max_examples=40)
@given(problem=S.tal_problem(), dtype=st.sampled_from(["float64", "float32"]),
       split=st.booleans())
def test_tal_report_matches_assignment(problem, dtype, split):
    """The TAL report is identical on both sides and agrees with the assignment: each GT owns
    exactly the foreground anchors whose target_gt_idx is it (padding too: see the
    reference's docstring); claimed anchors (its "top k" positives and its lost ones) are at
    most topk candidates, each strictly inside the GT; lost anchors went to the GT that
    target_gt_idx names; "max overlap" positives are owned without being claimed; every
    collision goes to its anchor's final GT; levels and cells follow grid_sizes; targets are
    the point's distances to the GT's sides; no-positive reasons are consistent."""
    args = _tal_args(problem)
    n_points = problem["anc_points"].shape[0]
    grids = [(1, n_points // 2), (1, n_points - n_points // 2)] if split and n_points > 1 else None
    kw = {"topk": problem["topk"], "num_classes": problem["num_classes"],
          "version": problem["version"], "strides": problem["strides"]}
    ref, port = _both("task_aligned_report", *args, dtype=dtype, grid_sizes=grids, **kw)
    assert port == ref
    assert ref.assigner == "tal" and ref.box_format == "xyxy pixels"
    _, _, _, fg, idx = R.task_aligned_assign(*[a.astype(dtype) for a in args], **kw)
    inside = _tal_inside(problem, dtype)
    anc = problem["anc_points"].astype(dtype).astype(np.float64)
    gtb = problem["gt_bboxes"].astype(dtype).astype(np.float64)
    starts = [0] + ([n_points // 2, n_points] if grids else [n_points])
    bs, n = problem["gt_bboxes"].shape[:2]
    assert [(g.image, g.gt) for g in ref.gts] == [(b, g) for b in range(bs) for g in range(n)]
    for gt in ref.gts:
        b, g = gt.image, gt.gt
        rows = [p.row for p in gt.positives]
        owned = np.flatnonzero(fg[b] & (idx[b] == g)).tolist()
        assert rows == owned
        claimed = sorted([p.row for p in gt.positives if p.rule == "top k"] + [x.row for x in gt.lost])
        assert len(claimed) <= min(problem["topk"], gt.candidates)
        assert gt.candidates == int(inside[b, g].sum())
        assert all(inside[b, g, a] for a in claimed)
        assert sorted(set(claimed) - set(rows)) == [x.row for x in gt.lost]
        assert sorted(set(rows) - set(claimed)) == [p.row for p in gt.positives if p.rule == "max overlap"]
        assert all(idx[b, x.row] == x.to_gt != g for x in gt.lost)
        for p in gt.positives + gt.lost:
            lv = int(np.searchsorted(starts, p.row, side="right") - 1)
            assert p.level == lv and p.cell == [0, p.row - starts[lv]] and p.anchor == 0
        for p in gt.positives:
            x, y = anc[p.row]
            x1, y1, x2, y2 = gtb[b, g]
            assert p.won and p.owner == g and p.target == [x - x1, y - y1, x2 - x, y2 - y]
        assert (gt.reason is None) == bool(gt.positives) == gt.positive or not gt.valid
        if gt.valid and gt.candidates == 0:
            assert gt.reason == "no anchor inside the box"
        if not gt.valid:
            assert gt.reasons == ["padding"] * len(ref.levels) or gt.positives
    for c in ref.collisions:
        assert len(c.writers) > 1 and fg[c.image, c.rows[0]]
        assert idx[c.image, c.rows[0]] == c.winner
    assert [(u.image, u.gt) for u in ref.unassigned] == [
        (g.image, g.gt) for g in ref.gts if g.valid and not g.positives]
    # GTs owning more than topk anchors (possible through the max-overlap rule), from the
    # report and from the assignment
    over = sorted((g.image, g.gt) for g in ref.gts if len(g.positives) > problem["topk"])
    counts = [np.bincount(idx[b][fg[b]], minlength=n) for b in range(bs)]
    assert over == sorted((b, g) for b in range(bs) for g in range(n) if counts[b][g] > problem["topk"])


def test_tal_empty_and_known_values():
    anc = np.array([[4.0, 4.0], [12.0, 4.0]])
    scores = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    pd = np.array([[[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 16.0, 8.0]]])
    gt = np.array([[[0.0, 0.0, 8.0, 8.0]]])
    for fn, conv in ((R.task_aligned_assign, lambda x: x),
                     (T.task_aligned_assign, lambda x: torch.from_numpy(x))):
        lab, box, sc, fg, idx = (to_numpy(x) for x in fn(
            conv(scores), conv(pd), conv(anc), conv(np.zeros((1, 1, 1))), conv(gt),
            conv(np.ones((1, 1, 1))), topk=1, num_classes=2))
        assert fg.tolist() == [[True, False]] and idx.tolist() == [[0, 0]]
        # CIoU of identical boxes is 1 up to eps; metric 0.9^0.5; normalised score = 1 * IoU
        assert_parity(sc[0, 0], np.array([1.0, 0.0]), name=TAL, dtype="float32")
        empty = fn(conv(scores), conv(pd), conv(anc), conv(np.zeros((1, 0, 1))),
                   conv(np.zeros((1, 0, 4))), conv(np.zeros((1, 0, 1))), topk=1, num_classes=2)
        assert to_numpy(empty[0]).tolist() == [[2, 2]] and not to_numpy(empty[3]).any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_boxes_ciou_is_ultralytics_bbox_iou(dtype):
    """The assigner's CIoU, ``boxes.aligned_box_iou(kind='ciou')``, is the Ultralytics
    8.3.253 ``bbox_iou(xywh=False, CIoU=True)`` transcription: bit for bit on the torch side (same eps
    placement and order of operations), within the table on the NumPy side (np.arctan vs
    torch.atan), on the boxes TAL accepts (x2 >= x1, y2 >= y1; zero widths, heights, points)."""
    from ref_numpy.boxes import aligned_box_iou as ref_ciou
    from torch_impl.boxes import aligned_box_iou as port_ciou

    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (512, 4))
    b = rng.uniform(0, 50, (512, 4))
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    a[:16, 2] = a[:16, 0]  # zero width
    a[16:32, 3] = a[16:32, 1]  # zero height
    b[32:48, 2:] = b[32:48, :2]  # points
    a, b = a.astype(dtype), b.astype(dtype)
    oracle = _ultralytics_bbox_ciou(torch.from_numpy(a), torch.from_numpy(b))[..., 0]
    assert_parity(port_ciou(torch.from_numpy(a), torch.from_numpy(b), kind="ciou"), oracle, tol=EXACT)
    assert_parity(ref_ciou(a, b, kind="ciou"), oracle, name=TAL, dtype=dtype)


# ============================================================================ bad input

_T0 = np.array([[0, 1, 0.5, 0.5, 0.2, 0.2]])
_BAD_V5 = {
    "centre outside": (np.array([[0, 1, 1.2, 0.5, 0.2, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "negative size": (np.array([[0, 1, 0.5, 0.5, -0.1, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "side > 1": (np.array([[0, 1, 0.5, 0.5, 1.5, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "negative class": (np.array([[0, -1, 0.5, 0.5, 0.2, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "fractional class": (np.array([[0, 1.5, 0.5, 0.5, 0.2, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "negative image": (np.array([[-1, 1, 0.5, 0.5, 0.2, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "nan": (np.array([[0, 1, np.nan, 0.5, 0.2, 0.2]]), DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "targets 5 columns": (_T0[:, :5], DEFAULT_ANCHORS, DEFAULT_GRIDS),
    "anchors [nl, na, 3]": (_T0, np.ones((3, 3, 3)), DEFAULT_GRIDS),
    "anchors 2-D": (_T0, np.ones((3, 2)), DEFAULT_GRIDS),
    "anchors non-positive": (_T0, np.zeros((3, 3, 2)), DEFAULT_GRIDS),
    "levels mismatch": (_T0, DEFAULT_ANCHORS, DEFAULT_GRIDS[:2]),
    "grid not integer": (_T0, DEFAULT_ANCHORS, [(8.5, 8), (4, 4), (2, 2)]),
}


@pytest.mark.parametrize("fn", ["yolov5_build_targets", "yolov3_assign", "tutorial_assign"])
@pytest.mark.parametrize("case", sorted(_BAD_V5))
def test_bad_input_anchor_based(fn, case):
    t, a, grids = _BAD_V5[case]
    kw = {"ignore_mode": "none"} if fn == "yolov3_assign" else {}
    with pytest.raises(ValueError):
        getattr(R, fn)(t, a, grids, **kw)
    with pytest.raises(ValueError):
        getattr(T, fn)(torch.from_numpy(np.asarray(t, dtype=np.float64)),
                       torch.from_numpy(np.asarray(a, dtype=np.float64)), grids, **kw)


def _tal_ok():
    anc = np.array([[4.0, 4.0], [12.0, 4.0]])
    return {"pd_scores": np.full((1, 2, 2), 0.5), "pd_bboxes": np.array([[[0, 0, 8, 8], [8, 0, 16, 8.0]]]),
            "anc_points": anc, "gt_labels": np.zeros((1, 1, 1)), "gt_bboxes": np.array([[[0, 0, 8, 8.0]]]),
            "mask_gt": np.ones((1, 1, 1))}


_BAD_TAL = {
    "label out of range": ("gt_labels", np.full((1, 1, 1), 2.0)),
    "negative label": ("gt_labels", np.full((1, 1, 1), -1.0)),
    "negative gt size": ("gt_bboxes", np.array([[[8, 0, 0, 8.0]]])),
    "negative pred size": ("pd_bboxes", np.array([[[8, 0, 0, 8.0], [8, 0, 16, 8.0]]])),
    "anchors wrong shape": ("anc_points", np.zeros((2, 3))),
    "scores wrong classes": ("pd_scores", np.full((1, 2, 3), 0.5)),
    "mask wrong shape": ("mask_gt", np.ones((1, 1))),
}


@pytest.mark.parametrize("case", sorted(_BAD_TAL) + ["topk > anchors", "topk 0"])
def test_bad_input_tal(case):
    p = _tal_ok()
    kw = {"topk": 1, "num_classes": 2}
    if case in _BAD_TAL:
        key, value = _BAD_TAL[case]
        p[key] = value
    else:
        kw["topk"] = 3 if case == "topk > anchors" else 0
    args = _tal_args(p)
    with pytest.raises(ValueError):
        R.task_aligned_assign(*args, **kw)
    with pytest.raises(ValueError):
        T.task_aligned_assign(*[torch.from_numpy(np.asarray(x, dtype=np.float64)) for x in args], **kw)


def test_bad_input_v1_v3():
    for fn, conv in ((R, lambda x: x), (T, lambda x: torch.from_numpy(x))):
        with pytest.raises(ValueError):  # S x S' grid
            fn.yolov1_assign(conv(np.zeros((1, 3, 4, 2, 4))), conv(_T0))
        with pytest.raises(ValueError):  # image index beyond the batch
            fn.yolov1_assign(conv(np.zeros((1, 3, 3, 2, 4))), conv(_T0 + np.array([1.0, 0, 0, 0, 0, 0])))
        with pytest.raises(ValueError):  # pred_iou needs predictions
            fn.yolov3_assign(conv(_T0), conv(DEFAULT_ANCHORS), DEFAULT_GRIDS)
        with pytest.raises(ValueError):  # unknown mode
            fn.yolov3_assign(conv(_T0), conv(DEFAULT_ANCHORS), DEFAULT_GRIDS, ignore_mode="x")
        with pytest.raises(ValueError):  # predictions of the wrong grid
            fn.yolov3_assign(conv(_T0), conv(DEFAULT_ANCHORS), DEFAULT_GRIDS,
                             [conv(np.zeros((1, 3, 5, 5, 4)))] * 3)


# ============================================================================ strategies

@given(S.yolo_targets())
def test_yolo_targets_strategy_valid(t):
    assert t.ndim == 2 and t.shape[1] == 6 and t.dtype == np.float64
    assert np.all((t[:, 2:] >= 0) & (t[:, 2:] <= 1))
    assert np.all(t[:, :2] == np.floor(t[:, :2]))
    R.yolov5_build_targets(t, DEFAULT_ANCHORS, DEFAULT_GRIDS)  # accepted as valid input


@pytest.mark.parametrize("what,predicate", [
    ("empty", lambda t: len(t) == 0),
    ("image border", lambda t: bool(np.any((t[:, 2:4] == 0) | (t[:, 2:4] == 1)))),
    ("inner cell border of an 8-grid", lambda t: bool(np.any(((t[:, 2:4] * 8) % 1 == 0)
                                                              & (t[:, 2:4] > 0) & (t[:, 2:4] < 1)))),
    ("exact half cell of an 8-grid", lambda t: bool(np.any((t[:, 2:4] * 8) % 1 == 0.5))),
    ("zero size", lambda t: bool(np.any(t[:, 4:6] == 0))),
    ("huge", lambda t: bool(np.any(t[:, 4:6].min(1) >= 0.8))),
    ("duplicate rows", lambda t: len(t) > 1 and len(np.unique(t, axis=0)) < len(t)),
])
def test_yolo_targets_strategy_reaches(what, predicate):
    from hypothesis import find

    cfg = settings(max_examples=2000, database=None, phases=[Phase.generate])
    find(S.yolo_targets(), predicate, settings=cfg)


def test_tal_strategy_reaches_padding_conflicts_and_empty():
    from hypothesis import find

    def conflicts(p):
        args = _tal_args(p)
        kw = {"topk": p["topk"], "num_classes": p["num_classes"],
              "version": p["version"], "strides": p["strides"]}
        return bool(R.task_aligned_report(*args, **kw).collisions)

    cfg = settings(max_examples=2000, database=None, phases=[Phase.generate])
    find(S.tal_problem(), lambda p: p["gt_bboxes"].shape[1] == 0, settings=cfg)
    find(S.tal_problem(), lambda p: bool((p["mask_gt"] == 0).any()), settings=cfg)
    find(S.tal_problem(), conflicts, settings=cfg)


# ============================================================================ benchmark baselines

@settings(max_examples=20)
@given(problem=_v5_problem(), anchor_t=st.sampled_from([2.0, 4.0]), g=st.sampled_from([0.5, 0.25]))
def test_bench_baselines_equal_the_port(problem, anchor_t, g):
    """The per-target loops that ``yolo-ref bench assign`` times against the port
    (``parity_tests.bench.assign``) give the port's rows, as sets: the plain-float loop
    exactly, the torch loop exactly (float64), on boxes of positive size (the loops divide by
    it; the benchmark's boxes are 4 px or more)."""
    from parity_tests.bench import assign as B

    targets, (anchors, grids) = problem
    targets = targets.copy()
    targets[:, 4:6] = np.maximum(targets[:, 4:6], 1 / 64)
    port = T.yolov5_build_targets(torch.from_numpy(targets), torch.from_numpy(anchors), grids,
                                  anchor_t, g)
    assert B.port_rows(port) == [sorted(r) for r in B.loop_build_targets(targets, anchors, grids,
                                                                          anchor_t, g)]
    loop = B.loop_build_targets_torch(torch.from_numpy(targets), torch.from_numpy(anchors), grids,
                                      anchor_t, g)
    for (idx, box), c, tb, ind in zip(loop, *port[:3]):
        mine = torch.cat([torch.stack([*ind, c], 1).double(), tb], 1)
        theirs = torch.cat([idx.double(), box.double()], 1)
        assert_parity(torch.sort(theirs, 0).values, torch.sort(mine, 0).values, name=V5,
                      dtype="float64", inputs=problem)


def test_bench_smoke_run(capsys, tmp_path):
    """``yolo-ref bench assign`` on tiny inputs: both checks pass (exit 0), both benchmarks
    print, the JSON holds the ratios; bad arguments exit 2. (No timing is asserted.)"""
    import json

    from parity_tests.bench import assign as B
    from ref_numpy.shared.cli import EXIT_OK, EXIT_USAGE

    out = tmp_path / "b.json"
    rc = B.main(["--img-size", "64", "--batch", "1", "--targets", "4", "--repeat", "1",
                 "--loop-repeat", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == EXIT_OK and "yolov5_build_targets" in text and "task_aligned_assign" in text
    res = json.loads(out.read_text())
    assert res["yolov5"]["rows"] > 0 and res["tal"]["ratio"] > 0
    assert B.main(["--repeat", "0"]) == EXIT_USAGE
