"""Detection metrics in PyTorch: the port of :mod:`ref_numpy.metrics`, name for name.

COCO evaluation runs fully vectorised on any device: IoU of all (detection, GT) pairs of an
(image, category) group at once, the greedy matching for all groups, area ranges and IoU
thresholds together stepping over the detection rank (the matches kept as a sparse list), and
the accumulation for all categories, area ranges and thresholds together, visiting only the
true positives (integer counts, an exact integer form of ``searchsorted`` and block maxima for
the precision envelope; see :func:`_accumulate`). Input parsing (JSON / Python dicts) is shared
with the reference through :mod:`ref_numpy.shared.coco`, as are the 12 summary means (NumPy's
pairwise sum, so that ``stats`` is bit-equal). YOLOv5 / Ultralytics 8.3, 8.4 and VOC functions keep float64
where the reference does (``np.interp`` computes in float64) and fix summation orders where an
argmax depends on them; :func:`ultralytics_evaluate` composes them as the reference does.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from ref_numpy.shared.checks import check_same_length, check_ultralytics_version
from ref_numpy.shared.constants import ULTRALYTICS_DEFAULT_VERSION, ULTRALYTICS_VERSIONS  # noqa: F401
from ref_numpy.shared.coco import (COCO_AREA_LBL, COCO_AREA_RNG, COCO_IOU_THRS,  # noqa: F401
                                   COCO_MAX_DETS, COCO_REC_THRS, MAX_IOU_THR, COCOEvalResult,
                                   check_coco_params, coco_params, parse_coco, per_class_ap,
                                   summarize)
from ref_numpy.metrics import ULTRALYTICS_IOU_THRS
from ref_numpy.metrics import UltralyticsResult as _RefUltralyticsResult
from torch_impl._typing import TensorLike
from torch_impl.boxes import _coco_iou, box_iou, coco_box_iou, voc_box_iou
from torch_impl._validate import as_tensor, check_boxes
from torch_impl._validate import (check_box_order, check_flags, check_indices, check_labels,
                                  check_nondecreasing, check_nonnegative, check_unit_interval)
from ref_numpy.shared.checks import (check_count, check_eps, check_number, check_same_params,
                                     check_sequence, check_state_keys, check_state_lengths)

_F64 = torch.float64


def _dev(device):
    from ref_numpy.shared.devices import select_device  # the one device validator
    return select_device(device, "device", allow_auto=False)


# ============================================================================ COCO: matching

def _stable_lexsort(minor, major):
    """Indices sorting by (major, minor), ties by position (``np.lexsort((minor, major))``)."""
    o = torch.sort(minor, stable=True).indices
    # index_select: the same gather as o[i], several times faster than advanced indexing on CPU
    return o.index_select(0, torch.sort(major.index_select(0, o), stable=True).indices)


def _ragged_arange(counts):
    total = int(counts.sum())
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(total, device=counts.device) - torch.repeat_interleave(starts, counts)


def _sort_detections(dt_group, dt_score, max_det):
    order = _stable_lexsort(-dt_score, dt_group)
    g = dt_group.index_select(0, order)
    _, counts = torch.unique_consecutive(g, return_counts=True)
    rank = _ragged_arange(counts)
    keep = rank < max_det
    return order[keep], rank[keep]


def _positions_in(ids, sorted_ids):
    if len(sorted_ids) == 0:
        return torch.full_like(ids, -1)
    pos = torch.searchsorted(sorted_ids, ids).clamp(0, len(sorted_ids) - 1)
    return torch.where(sorted_ids[pos] == ids, pos, -1)


def _last_best(mask, iou):
    """Largest ``iou`` among ``mask`` over the last axis, the LAST index on ties; -1 if none."""
    vals = torch.where(mask, iou, torch.tensor(-torch.inf, dtype=iou.dtype, device=iou.device))
    g = mask.shape[-1]
    idx = g - 1 - torch.argmax(vals.flip(-1), dim=-1)
    return torch.where(mask.any(-1), idx, -1)


def _greedy_match(iou_fn, det_tab, gt_tab, crowd, gt_ig, thr):
    """All groups, area ranges and thresholds at once, stepping over the detection rank
    (the reference's ``_greedy_match``)."""
    b, c = det_tab.shape
    a, t, g = gt_ig.shape[1], len(thr), gt_tab.shape[1]
    valid = gt_tab >= 0
    matched = torch.zeros((b, a, t, g), dtype=torch.bool, device=gt_tab.device)
    out = torch.full((b, c, a, t), -1, dtype=torch.int64, device=gt_tab.device)
    alive = (det_tab >= 0).sum(0).tolist()
    cols = torch.arange(g, device=gt_tab.device)
    for r in range(c):
        n = alive[r]
        iou = iou_fn(det_tab[:n, r], gt_tab[:n])[:, None, None, :]                # [n, 1, 1, G]
        avail = (~matched[:n] | crowd[:n, None, None, :]) & valid[:n, None, None, :]
        ok = avail & (iou >= thr[None, None, :, None])                             # [n, A, T, G]
        ig = gt_ig[:n, :, None, :]
        m = _last_best(ok & ~ig, iou)
        m = torch.where(m >= 0, m, _last_best(ok & ig, iou))                      # [n, A, T]
        matched[:n] |= cols == m[..., None]
        out[:n, r] = m
    return out


def _evaluate(data, iou_thrs, area_rng, max_dets):
    """The reference's ``_evaluate`` on tensors, with the matches as a sparse list.

    Returns dict with ``order``, ``rank`` (as the reference), ``match_a``, ``match_t``,
    ``match_d`` (position in ``order``), ``match_g`` (GT index): one entry per (area range,
    threshold, detection) that matched; ``d_out [A, N]`` (detection area outside the range) and
    ``gt_ignore [A, G]``. The reference's ``dt_ignore`` is ``gt_ignore[a, g]`` for a matched
    detection and ``d_out`` for an unmatched one.
    """
    dev = data["gt_box"].device
    n_img = len(data["img_ids"])
    gt_group = data["gt_cat"] * n_img + data["gt_img"]
    dt_group = data["dt_cat"] * n_img + data["dt_img"]
    order, rank = _sort_detections(dt_group, data["dt_score"], max_dets[-1])
    lo, hi = area_rng[:, 0], area_rng[:, 1]
    gt_ig = data["gt_crowd"][None, :] | (data["gt_area"][None, :] < lo[:, None]) | (
        data["gt_area"][None, :] > hi[:, None])                                      # [A, G]
    n = len(order)
    found = []  # (a, t, d, g) per bucket

    gt_order = torch.sort(gt_group, stable=True).indices
    groups, g_count = torch.unique_consecutive(gt_group[gt_order], return_counts=True)
    g_start = torch.cumsum(g_count, 0) - g_count
    d_group = dt_group[order]
    slot = _positions_in(d_group, groups)
    thr = torch.clamp(iou_thrs, max=MAX_IOU_THR)

    has_gt = torch.nonzero(slot >= 0).flatten()
    cnt = g_count[slot[has_gt]]
    pair_d = torch.repeat_interleave(has_gt, cnt)
    pair_g = gt_order[torch.repeat_interleave(g_start[slot[has_gt]], cnt) + _ragged_arange(cnt)]
    pair_iou = coco_box_iou(data["dt_box"][order[pair_d]][:, None, :],
                            data["gt_box"][pair_g][:, None, :], data["gt_crowd"][pair_g][:, None])[:, 0, 0]
    best = torch.full((n,), -torch.inf, dtype=_F64, device=dev)
    best.scatter_reduce_(0, pair_d, pair_iou, reduce="amax")
    cand = torch.nonzero(best >= thr.min()).flatten()

    if len(cand):
        c_groups, c_count = torch.unique_consecutive(slot[cand], return_counts=True)
        c_start = torch.cumsum(c_count, 0) - c_count
        bucket = torch.ceil(torch.log2(g_count[c_groups].to(_F64))).long()
        for bk in torch.unique(bucket).tolist():
            sel = torch.nonzero(bucket == bk).flatten()
            sel = sel[torch.sort(-c_count[sel], stable=True).indices]
            gsel = c_groups[sel]
            gpad = int(g_count[gsel].max())
            cpad = int(c_count[sel].max())
            col = torch.arange(gpad, device=dev)
            gt_tab = torch.where(col < g_count[gsel][:, None],
                                 gt_order[torch.clamp(g_start[gsel][:, None] + col,
                                                      max=len(gt_order) - 1)], -1)
            row = torch.arange(cpad, device=dev)
            det_tab = torch.where(row < c_count[sel][:, None],
                                  cand[torch.clamp(c_start[sel][:, None] + row, max=len(cand) - 1)], -1)
            safe = gt_tab.clamp(min=0)
            crowd = data["gt_crowd"][safe] & (gt_tab >= 0)
            ig_tab = gt_ig[:, safe].movedim(0, 1)                                     # [B, A, G]

            def iou_fn(d, gtab, _crowd=crowd):
                # boxes.coco_box_iou's element-wise kernel (the boxes were checked when parsed;
                # no device synchronisation inside the greedy loop)
                dbox = data["dt_box"][order[d]][:, None, :]
                return _coco_iou(dbox, data["gt_box"][gtab.clamp(min=0)], _crowd[: len(d)])

            m = _greedy_match(iou_fn, det_tab, gt_tab, crowd, ig_tab, thr)         # [B, C, A, T]
            rows, cols = torch.nonzero(det_tab >= 0, as_tuple=True)
            mcol = m[rows, cols]                                                     # [K, A, T]
            e, a_i, t_i = torch.nonzero(mcol >= 0, as_tuple=True)
            found.append((a_i, t_i, det_tab[rows[e], cols[e]], gt_tab[rows[e], mcol[e, a_i, t_i]]))

    empty = torch.zeros(0, dtype=torch.int64, device=dev)
    ma, mt, md, mg = (torch.cat(v) for v in zip(*found)) if found else (empty,) * 4
    d_area = data["dt_area"][order]
    d_out = (d_area[None, :] < lo[:, None]) | (d_area[None, :] > hi[:, None])      # [A, N]
    return dict(order=order, rank=rank, match_a=ma, match_t=mt, match_d=md, match_g=mg,
                d_out=d_out, gt_ignore=gt_ig)


# ============================================================================ COCO: accumulate

def _min_count(npig, thr):
    """Smallest integer c with ``fl(c / npig) >= thr`` for [K] counts and [R] thresholds: the
    recall ``tp / npig`` of a detection reaches ``thr`` exactly when ``tp >= c``, which turns
    ``np.searchsorted(rc, thr, 'left')`` into an exact integer search. [K, R] int64."""
    n = npig.to(_F64)[:, None]
    c0 = torch.ceil(thr[None, :] * n).long()
    cand = c0[..., None] + torch.arange(-2, 2, device=c0.device)                  # [K, R, 4]
    ok = (cand.to(_F64) / n[..., None]) >= thr[None, :, None]
    return c0 - 2 + (~ok).sum(-1)


def _segment_cumsum(x, seg_start, seg_of):
    """Inclusive cumulative sum of integer ``x [..., N]`` restarting at each segment, where
    segment ``s`` starts at ``seg_start[s]`` and ``seg_of [N]`` is each element's segment."""
    cs = torch.cumsum(x, dim=-1)
    pad = torch.zeros(cs.shape[:-1] + (1,), dtype=cs.dtype, device=cs.device)
    before = torch.cat([pad, cs], -1)[..., seg_start]
    return cs - before[..., seg_of]


def _accumulate(data, ev, iou_thrs, max_dets, rec_thrs=None):
    """pycocotools ``accumulate`` for all categories, area ranges and thresholds at once.

    Only true positives are visited. Within a category, sorted by score, ``pr = tp / (fp + tp
    + eps)`` drops at a false positive and stays at an ignored detection, so the envelope
    ``max(pr[idx:])`` is the largest ``pr`` among the true positives at or after ``idx`` (0 if
    none); ``searchsorted(rc, thr, 'left')`` lands on the ``c``-th true positive, where ``c`` is
    the smallest count with ``fl(c / npig) >= thr`` (:func:`_min_count`; on the first detection
    when ``c = 0``). ``fp + tp`` at a true positive is its rank in the category minus the
    ignored detections up to it: unmatched ones outside the area range (a prefix sum per area
    range) plus matched ones of an ignored GT (from the sparse match list). All counts are
    integers, so every ``pr`` and ``rc`` is the same float division as pycocotools'.

    Recall thresholds in any order: the search runs on them sorted and the answers go back to
    the given order, where pycocotools' quirk applies (after the first threshold past the last
    detection every later one is 0: a running AND, as the reference's).
    """
    dev = iou_thrs.device
    rec_np = COCO_REC_THRS if rec_thrs is None else np.asarray(rec_thrs, dtype=np.float64)
    perm = np.argsort(rec_np, kind="stable")
    unsorted = bool(np.any(perm != np.arange(len(perm))))
    inv = torch.as_tensor(np.argsort(perm, kind="stable"), device=dev)
    rec_thrs = torch.as_tensor(rec_np[perm], device=dev)
    t_n, r_n, k_n = len(iou_thrs), len(rec_thrs), len(data["cat_ids"])
    a_n, m_n = ev["gt_ignore"].shape[0], len(max_dets)
    precision = -torch.ones((t_n, r_n, k_n, a_n, m_n), dtype=_F64, device=dev)
    recall = -torch.ones((t_n, k_n, a_n, m_n), dtype=_F64, device=dev)
    scores = -torch.ones((t_n, r_n, k_n, a_n, m_n), dtype=_F64, device=dev)
    order, rank = ev["order"], ev["rank"]
    cat, score = data["dt_cat"].index_select(0, order), data["dt_score"].index_select(0, order)
    npig = torch.stack([torch.bincount(data["gt_cat"][~ev["gt_ignore"][a]], minlength=k_n)
                        for a in range(a_n)])                                        # [A, K]
    has = npig > 0
    cstar = torch.stack([_min_count(npig[a].clamp(min=1), rec_thrs) for a in range(a_n)])
    ma, mt, md, mg = ev["match_a"], ev["match_t"], ev["match_d"], ev["match_g"]
    m_ig = ev["gt_ignore"][ma, mg] if len(mg) else torch.zeros(0, dtype=torch.bool, device=dev)
    n_all = len(order)
    zero = torch.zeros((), dtype=_F64, device=dev)
    n_grp = a_n * t_n * k_n
    # One sort for every maxDet: (category, -score, image, rank); each maxDet keeps a subsequence.
    glob = _stable_lexsort(-score, cat)
    gpos = torch.empty(n_all, dtype=torch.int64, device=dev)
    gpos[glob] = torch.arange(n_all, device=dev)
    s_m = torch.sort((ma * t_n + mt) * max(n_all, 1) + gpos[md]).indices          # (a, t, pos)
    ma, mt, md, m_ig = ma[s_m], mt[s_m], md[s_m], m_ig[s_m]
    rank_g = rank.index_select(0, glob)
    gpos_md = gpos.index_select(0, md)
    for m, max_det in enumerate(max_dets):
        kept = rank_g < max_det
        srt = glob[kept]                                                              # [N]
        k_of = cat.index_select(0, srt)
        n_k = torch.bincount(k_of, minlength=k_n)
        start = torch.cumsum(n_k, 0) - n_k
        n = len(srt)
        new_pos = torch.cumsum(kept.to(torch.int64), 0) - 1                          # glob -> srt
        s_sorted = score.index_select(0, srt)
        # ignored-by-area count per position (unmatched outside the range, before corrections)
        out_cs = _segment_cumsum(ev["d_out"][:, srt].to(torch.int64), start, k_of)   # [A, N]
        # matches of the kept detections, in (a, t, position) order: groups (a, t, k) contiguous
        ok = kept.index_select(0, gpos_md)
        ea, et, e_ig = ma[ok], mt[ok], m_ig[ok]
        ej = new_pos.index_select(0, gpos_md[ok])
        ek = k_of.index_select(0, ej)
        grp = (ea * t_n + et) * k_n + ek                                              # sorted
        g_cnt = torch.bincount(grp, minlength=n_grp)
        g_start = torch.cumsum(g_cnt, 0) - g_cnt
        e_out = ev["d_out"][ea, srt[ej]]
        c_out = _segment_cumsum(e_out.to(torch.int64), g_start, grp)                 # matched & out
        c_ig = _segment_cumsum(e_ig.to(torch.int64), g_start, grp)                   # matched & ig
        c_tp = _segment_cumsum((~e_ig).to(torch.int64), g_start, grp)                # TP ordinal
        ignored = out_cs[ea, ej] - c_out + c_ig
        nv = ej - start[ek] + 1 - ignored                                             # fp + tp
        tp_e = ~e_ig
        o, pr = c_tp[tp_e], c_tp[tp_e].to(_F64) / (nv[tp_e].to(_F64) + np.spacing(1))
        tg, tk, ta, tj = grp[tp_e], ek[tp_e], ea[tp_e], ej[tp_e]
        total = torch.bincount(tg, minlength=n_grp)                                   # TPs per group
        tg_start = torch.cumsum(total, 0) - total
        # block of a TP: #{r : cstar[a, k, r] <= o}; q[r] = max over blocks > r
        row = ta * k_n + tk
        big = int(max(n, int(cstar.max()) if cstar.numel() else 0)) + 2
        ckey = ((torch.arange(a_n * k_n, device=dev)[:, None] * big)
                + cstar.reshape(a_n * k_n, r_n)).reshape(-1)
        block = torch.searchsorted(ckey, row * big + o, right=True) - row * r_n
        bmax = torch.zeros(n_grp * (r_n + 1), dtype=_F64, device=dev)
        bmax.scatter_reduce_(0, tg * (r_n + 1) + block, pr, reduce="amax")
        bmax = bmax.reshape(a_n, t_n, k_n, r_n + 1)[..., 1:]
        q = torch.flip(torch.cummax(torch.flip(bmax, [-1]), -1).values, [-1])      # [A, T, K, R]
        # score at idx: the c-th TP of the group, or the category's first detection when c = 0
        total = total.reshape(a_n, t_n, k_n, 1)
        c = cstar[:, None]                                                            # [A, 1, K, R]
        inside = torch.where(c == 0, (n_k > 0)[None, None, :, None], c <= total)
        tp_pos = (tg_start.reshape(a_n, t_n, k_n, 1) + c - 1).clamp(0, max(len(tj) - 1, 0))
        j_at = torch.where(c == 0, start[None, None, :, None],
                           tj[tp_pos] if len(tj) else torch.zeros_like(tp_pos))
        ss = torch.where(inside, s_sorted[j_at.clamp(max=max(n - 1, 0))] if n else zero, zero)
        rc_last = torch.where(n_k > 0, total[..., 0].to(_F64) / npig.clamp(min=1).to(_F64)[:, None],
                              zero)                                                   # [A, T, K]
        if unsorted:  # back to the given order, then upstream's stop at the first miss
            q, ss, inside = q[..., inv], ss[..., inv], inside.expand_as(q)[..., inv]
            run = torch.cummin(inside.to(torch.int8), -1).values.bool()
            q, ss = torch.where(run, q, zero), torch.where(run, ss, zero)
        keep_k = has[:, None, :, None]                                               # [A, 1, K, 1]
        precision[..., m] = torch.where(keep_k, q, -1.0).permute(1, 3, 2, 0)
        scores[..., m] = torch.where(keep_k, ss, -1.0).permute(1, 3, 2, 0)
        recall[..., m] = torch.where(has[:, None, :], rc_last, -1.0).permute(1, 2, 0)
    return precision, recall, scores


# ============================================================================ COCO: result

def _to_device(data, device):
    """The columns as tensors on ``device``; ``img_ids`` / ``cat_ids`` (ids, possibly strings)
    stay NumPy: only their lengths are used."""
    out = {}
    for k, v in data.items():
        out[k] = v if k in ("img_ids", "cat_ids") else torch.as_tensor(v, device=device)
    return out


def _coco_from_data(data, iou_thrs, area_rng, max_dets, device, params=None) -> COCOEvalResult:
    """The reference's ``_coco_from_data`` on ``device`` (``params``: rec_thrs, labels, use_cats)."""
    rec_thrs = COCO_REC_THRS if params is None else params.rec_thrs
    lbl = COCO_AREA_LBL if params is None else params.area_rng_lbl
    tdata = _to_device(data, device)
    ti = torch.as_tensor(iou_thrs, dtype=_F64, device=device)
    ta = torch.as_tensor(area_rng, dtype=_F64, device=device)
    ev = _evaluate(tdata, ti, ta, max_dets)
    precision, recall, scores = _accumulate(tdata, ev, ti, max_dets, rec_thrs)
    # The 12 means over a few thousand entries: NumPy's pairwise sum, as pycocotools.
    p_np, r_np = precision.cpu().numpy(), recall.cpu().numpy()
    stats = torch.as_tensor(summarize(p_np, r_np, np.asarray(iou_thrs), max_dets, lbl), device=device)
    return COCOEvalResult(stats, precision, recall, scores,
                          per_class_ap(p_np, data["cat_ids"], max_dets, lbl), iou_thrs,
                          np.array(rec_thrs, dtype=np.float64), area_rng, max_dets,
                          data["cat_ids"], data["img_ids"], area_rng_lbl=lbl,
                          use_cats=True if params is None else params.use_cats)


def coco_evaluate(gt: dict | str | os.PathLike, results: list[dict] | str | os.PathLike,
                  iou_thrs: TensorLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                  max_dets: Sequence[int] | None = None, *, rec_thrs: TensorLike | None = None,
                  area_rng_lbl: Sequence[str] | None = None, use_cats: bool = True,
                  img_ids: Sequence[int | str] | None = None, cat_ids: Sequence[int | str] | None = None,
                  device: torch.device | str | None = None) -> COCOEvalResult:
    """COCO bbox evaluation equal to pycocotools (see :func:`ref_numpy.metrics.coco_evaluate`).

    Args:
        gt, results, iou_thrs, area_rng, max_dets, rec_thrs, area_rng_lbl, use_cats, img_ids,
            cat_ids: as the reference (tensors accepted for the thresholds).
        device: where the evaluation runs (default CPU).

    Returns:
        COCOEvalResult (the shared container, :class:`ref_numpy.shared.coco.COCOEvalResult`)
        with float64 tensors on ``device`` for ``stats``, ``precision``, ``recall``, ``scores``.
    """
    if isinstance(iou_thrs, torch.Tensor):
        iou_thrs = iou_thrs.detach().cpu().tolist()
    if isinstance(rec_thrs, torch.Tensor):
        rec_thrs = rec_thrs.detach().cpu().tolist()
    p = coco_params(iou_thrs=iou_thrs, area_rng=area_rng, max_dets=max_dets, rec_thrs=rec_thrs,
                    area_rng_lbl=area_rng_lbl, use_cats=use_cats, img_ids=img_ids, cat_ids=cat_ids)
    return _coco_from_data(parse_coco(gt, results, p), p.iou_thrs, p.area_rng, p.max_dets,
                           _dev(device), p)


# ============================================================================ COCO: incremental

def _xyxy_to_xywh(b):
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)


_STATE_KEYS = ("dt_img", "dt_box", "dt_score", "dt_label", "gt_img", "gt_box", "gt_label",
               "gt_crowd", "gt_area")
_PARAM_KEYS = ("iou_thrs", "area_rng", "max_dets")
_STATE_GROUPS = (("dt_img", "dt_box", "dt_score", "dt_label"),
                 ("gt_img", "gt_box", "gt_label", "gt_crowd", "gt_area"))


def _check_batch(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, gt_iscrowd, gt_areas, dev):
    """The reference's ``_check_batch`` on tensors (on ``dev``): the checked, converted rows
    (dt_box xywh, dt_score, dt_label, gt_box xywh, gt_label, gt_crowd, gt_area) per image."""
    seqs = {"pred_boxes": pred_boxes, "pred_scores": pred_scores, "pred_labels": pred_labels,
            "gt_boxes": gt_boxes, "gt_labels": gt_labels}
    if gt_iscrowd is not None:
        seqs["gt_iscrowd"] = gt_iscrowd
    if gt_areas is not None:
        seqs["gt_areas"] = gt_areas
    for name, seq in seqs.items():
        check_sequence(name, seq)
        check_same_length("pred_boxes", pred_boxes, name, seq)
    rows = []
    for i in range(len(pred_boxes)):
        db = check_boxes(f"pred_boxes[{i}]", pred_boxes[i], ndim=2).detach().to(dev, _F64)
        check_box_order(f"pred_boxes[{i}]", db)
        ds = as_tensor(f"pred_scores[{i}]", pred_scores[i], ndim=1, finite=True).detach().to(dev, _F64)
        dl = check_labels(f"pred_labels[{i}]", pred_labels[i], device=dev)
        gb = check_boxes(f"gt_boxes[{i}]", gt_boxes[i], ndim=2).detach().to(dev, _F64)
        check_box_order(f"gt_boxes[{i}]", gb)
        gl = check_labels(f"gt_labels[{i}]", gt_labels[i], device=dev)
        check_same_length(f"pred_boxes[{i}]", db, f"pred_scores[{i}]", ds)
        check_same_length(f"pred_boxes[{i}]", db, f"pred_labels[{i}]", dl)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_labels[{i}]", gl)
        gc = (torch.zeros(len(gb), dtype=torch.bool, device=dev) if gt_iscrowd is None
              else check_flags(f"gt_iscrowd[{i}]", gt_iscrowd[i], device=dev))
        gb = _xyxy_to_xywh(gb)
        if gt_areas is None:
            ga = gb[:, 2] * gb[:, 3]
        else:
            ga = as_tensor(f"gt_areas[{i}]", gt_areas[i], ndim=1, finite=True).detach().to(dev, _F64)
            check_nonnegative(f"gt_areas[{i}]", ga)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_iscrowd[{i}]", gc)
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_areas[{i}]", ga)
        rows.append((_xyxy_to_xywh(db), ds, dl, gb, gl, gc, ga))
    return rows


def _check_state(st, params, dev):
    """The reference's ``_check_state`` on tensors (on ``dev``): a state dict of either side,
    checked against ``params`` (same messages)."""
    check_state_keys("other", st, _STATE_KEYS + ("n_images",) + _PARAM_KEYS)
    check_same_params("other", params, {k: st[k] for k in _PARAM_KEYS})
    n = st["n_images"]
    n = n.item() if getattr(n, "ndim", None) == 0 else n  # a 0-d array or tensor after a gather
    n = check_count("other['n_images']", n)
    of = f"the state's images (n_images = {n})"
    out = {"n_images": n}
    for k in ("dt_box", "gt_box"):
        out[k] = check_boxes(f"other[{k!r}]", st[k], ndim=2).detach().to(dev, _F64)
        check_box_order(f"other[{k!r}]", out[k], fmt="xywh")
    for k in ("dt_score", "gt_area"):
        out[k] = as_tensor(f"other[{k!r}]", st[k], ndim=1, finite=True).detach().to(dev, _F64)
    check_nonnegative("other['gt_area']", out["gt_area"])
    for k in ("dt_label", "gt_label"):
        out[k] = check_labels(f"other[{k!r}]", st[k], device=dev)
    for k in ("dt_img", "gt_img"):
        out[k] = check_indices(f"other[{k!r}]", st[k], n, of, device=dev)
    out["gt_crowd"] = check_flags("other['gt_crowd']", st["gt_crowd"], device=dev)
    check_state_lengths("other", {k: len(out[k]) for k in _STATE_KEYS}, _STATE_GROUPS)
    return out


class DetectionEvaluator:
    """Incremental COCO evaluation (the reference's class on tensors; ``state()`` holds tensors
    on ``device``, so it can go through ``torch.distributed`` collectives). Thread safe and
    checked as the reference (see :class:`ref_numpy.metrics.DetectionEvaluator`): one lock,
    a batch checked before it is added, ``merge`` refuses states it cannot reconcile.

    Args:
        iou_thrs, area_rng, max_dets: as :func:`coco_evaluate`.
        device: where the state is kept and the evaluation runs (default: CPU).
    """

    def __init__(self, iou_thrs: TensorLike | None = None, area_rng: Sequence[Sequence[float]] | None = None,
                 max_dets: Sequence[int] | None = None, device: torch.device | str | None = None) -> None:
        if isinstance(iou_thrs, torch.Tensor):
            iou_thrs = iou_thrs.detach().cpu().numpy()
        self.iou_thrs, self.area_rng, self.max_dets = check_coco_params(iou_thrs, area_rng, max_dets)
        self.device = _dev(device)
        self._lock = threading.RLock()
        self.reset()

    def __getstate__(self) -> dict:
        """Pickling and ``copy.deepcopy`` drop the lock (a new one is made on load)."""
        d = self.__dict__.copy()
        d.pop("_lock", None)
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lock = threading.RLock()

    def _params(self) -> dict:
        return {"iou_thrs": self.iou_thrs, "area_rng": self.area_rng, "max_dets": self.max_dets}

    def reset(self) -> None:
        """Forget every image seen so far."""
        with self._lock:
            self.n_images = 0
            self._parts = {k: [] for k in _STATE_KEYS}

    def update(self, pred_boxes: Sequence[TensorLike], pred_scores: Sequence[TensorLike],
               pred_labels: Sequence[TensorLike], gt_boxes: Sequence[TensorLike], gt_labels: Sequence[TensorLike],
               gt_iscrowd: Sequence[TensorLike] | None = None, gt_areas: Sequence[TensorLike] | None = None) -> None:
        """Add one batch (per-image sequences of tensors; see the reference)."""
        dev = self.device
        rows = _check_batch(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, gt_iscrowd, gt_areas,
                            dev)
        with self._lock:
            for db, ds, dl, gb, gl, gc, ga in rows:
                img = self.n_images
                for k, v in (("dt_img", torch.full((len(db),), img, dtype=torch.int64, device=dev)),
                             ("dt_box", db), ("dt_score", ds), ("dt_label", dl),
                             ("gt_img", torch.full((len(gb),), img, dtype=torch.int64, device=dev)),
                             ("gt_box", gb), ("gt_label", gl), ("gt_crowd", gc), ("gt_area", ga)):
                    self._parts[k].append(v)
                self.n_images = img + 1

    def state(self) -> dict:
        """The accumulated state as flat tensors, plus ``n_images`` and the evaluation
        parameters (Python lists, as the reference's)."""
        dev = self.device
        empty = {"dt_box": torch.zeros((0, 4), dtype=_F64, device=dev),
                 "gt_box": torch.zeros((0, 4), dtype=_F64, device=dev),
                 "gt_crowd": torch.zeros(0, dtype=torch.bool, device=dev),
                 "dt_score": torch.zeros(0, dtype=_F64, device=dev),
                 "gt_area": torch.zeros(0, dtype=_F64, device=dev)}
        with self._lock:
            out = {"n_images": self.n_images}
            parts = {k: list(v) for k, v in self._parts.items()}
        for k in _STATE_KEYS:
            out[k] = (torch.cat(parts[k]) if parts[k]
                      else empty.get(k, torch.zeros(0, dtype=torch.int64, device=dev)))
        out.update({k: np.asarray(v).tolist() for k, v in self._params().items()})
        return out

    def merge(self, other: DetectionEvaluator | dict[str, Any]) -> DetectionEvaluator:
        """Append ``other``'s images (an evaluator of either side, or a :meth:`state` dict)
        after this one's; refuses a state it cannot reconcile (see the reference)."""
        st = other.state() if callable(getattr(other, "state", None)) else other
        st = _check_state(st, self._params(), self.device)
        with self._lock:
            offset = self.n_images
            for k in _STATE_KEYS:
                self._parts[k].append(st[k] + offset if k in ("dt_img", "gt_img") else st[k])
            self.n_images = offset + st["n_images"]
        return self

    def compute(self) -> COCOEvalResult:
        """COCO evaluation of everything seen (see :func:`coco_evaluate`)."""
        s = self.state()
        cat_t = torch.unique(torch.cat([s["gt_label"], s["dt_label"]]))
        order = torch.sort(s["gt_img"], stable=True).indices
        data = dict(img_ids=np.arange(s["n_images"], dtype=np.int64), cat_ids=cat_t.cpu().numpy(),
                    gt_img=s["gt_img"][order], gt_cat=torch.searchsorted(cat_t, s["gt_label"][order]),
                    gt_box=s["gt_box"][order], gt_area=s["gt_area"][order],
                    gt_crowd=s["gt_crowd"][order],
                    dt_img=s["dt_img"], dt_cat=torch.searchsorted(cat_t, s["dt_label"]),
                    dt_box=s["dt_box"], dt_score=s["dt_score"],
                    dt_area=s["dt_box"][:, 2] * s["dt_box"][:, 3])
        return _coco_from_data(data, self.iou_thrs, self.area_rng, self.max_dets, self.device)


# ============================================================================ boundary checks
_NOT_GIVEN = object()  # an optional check's argument that the caller does not have
# The twins of the reference's boundary checks (same names, same messages), on tensors.


def _check_curve(rec_name, rec, prec_name, prec):
    """A recall / precision curve: 1-D, one length, finite, in [0, 1], recall non-decreasing."""
    r = as_tensor(rec_name, rec, ndim=1, finite=True, floating=True)
    p = as_tensor(prec_name, prec, ndim=1, finite=True, floating=True)
    check_same_length(rec_name, r, prec_name, p)
    check_unit_interval(rec_name, r)
    check_unit_interval(prec_name, p)
    check_nondecreasing(rec_name, r)


def _check_ap_per_class(tp, conf, pred_cls, target_cls, eps):
    """``tp`` 0/1 flags, finite ``conf``, class labels, ``eps`` >= 0, recall <= 1 per class."""
    c = as_tensor("conf", conf, ndim=1, finite=True)
    dev = c.device
    t = check_flags("tp", tp, ndim=2, device=dev)
    pc = check_labels("pred_cls", pred_cls, device=dev)
    tc = check_labels("target_cls", target_cls, device=dev)
    check_same_length("tp", t, "conf", c)
    check_same_length("tp", t, "pred_cls", pc)
    check_eps(eps)
    classes, nt = torch.unique(tc, return_counts=True)
    pos = torch.searchsorted(classes, pc).clamp(max=max(len(classes) - 1, 0))
    known = (classes[pos] == pc) if len(classes) else torch.zeros(len(pc), dtype=torch.bool, device=dev)
    counts = torch.zeros((len(classes), t.shape[1]), dtype=torch.int64, device=dev)
    counts.index_add_(0, pos[known], t[known].to(torch.int64))
    over = counts > nt[:, None]
    if bool(over.any()):
        k, j = (int(v) for v in torch.nonzero(over)[0])
        raise ValueError(f"tp[:, {j}]: class {int(classes[k])} has {int(counts[k, j])} true positives but "
                         f"target_cls holds {int(nt[k])} labels of it (recall would exceed 1)")


def _check_match(pred_classes, true_classes, iou, iou_thresholds):
    """Class labels, ``iou`` in [0, 1] or NaN, thresholds finite in [0, 1] (see the reference)."""
    n = len(check_labels("pred_classes", pred_classes))
    m = len(check_labels("true_classes", true_classes))
    a = as_tensor("iou", iou, ndim=2, floating=True)
    if tuple(a.shape) != (m, n):
        raise ValueError(f"iou: expected shape (len(true_classes), len(pred_classes)) = ({m}, {n}), "
                         f"got {tuple(a.shape)}")
    check_unit_interval("iou", torch.nan_to_num(a, nan=0.0, posinf=torch.inf, neginf=-torch.inf))
    check_unit_interval("iou_thresholds", as_tensor("iou_thresholds", iou_thresholds, ndim=1, floating=True))


def _check_confusion(detections, labels, nc, conf, iou_thres):
    """Shapes, ``nc``, finite values, box order, class columns in [0, nc) (see the reference)."""
    d = as_tensor("detections", detections, ndim=2, floating=True)
    lab = as_tensor("labels", labels, ndim=2, floating=True)
    if d.shape[1] != 6 or lab.shape[1] != 5:
        raise ValueError(f"detections, labels: expected [N, 6] and [M, 5], got "
                         f"{tuple(d.shape)} and {tuple(lab.shape)}")
    nc = check_count("nc", nc)
    check_number("conf", conf)
    check_number("iou_thres", iou_thres, 0.0, 1.0)
    as_tensor("detections", d, finite=True)
    as_tensor("labels", lab, finite=True)
    check_box_order("detections", d[:, :4], suffix=", 0:4")
    check_box_order("labels", lab[:, 1:], suffix=", 1:5")
    check_labels("detections", d[:, 5], nc=nc, suffix=", 5")
    check_labels("labels", lab[:, 0], nc=nc, suffix=", 0")


def _voc_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult,
               iou_threshold=_NOT_GIVEN):
    """The reference's ``_voc_check`` on tensors: returns (boxes, scores, int64 labels, int64
    image indices), all on the device of ``det_boxes``."""
    check_sequence("gt_boxes", gt_boxes)
    check_sequence("gt_labels", gt_labels)
    check_same_length("gt_boxes", gt_boxes, "gt_labels", gt_labels)
    if gt_difficult is not None:
        check_sequence("gt_difficult", gt_difficult)
        check_same_length("gt_boxes", gt_boxes, "gt_difficult", gt_difficult)
    if iou_threshold is not _NOT_GIVEN:
        check_number("iou_threshold", iou_threshold, 0.0, 1.0)
    det_boxes = check_boxes("det_boxes", det_boxes, ndim=2)
    check_box_order("det_boxes", det_boxes)
    dev = det_boxes.device
    det_scores = as_tensor("det_scores", det_scores, ndim=1, finite=True, device=dev)
    det_labels = check_labels("det_labels", det_labels, device=dev)
    det_image_ids = check_indices("det_image_ids", det_image_ids, len(gt_boxes), "gt_boxes", device=dev)
    for name, v in (("det_scores", det_scores), ("det_labels", det_labels),
                    ("det_image_ids", det_image_ids)):
        check_same_length("det_boxes", det_boxes, name, v)
    for i in range(len(gt_boxes)):
        gb = check_boxes(f"gt_boxes[{i}]", gt_boxes[i], ndim=2)
        check_box_order(f"gt_boxes[{i}]", gb)
        gl = check_labels(f"gt_labels[{i}]", gt_labels[i])
        check_same_length(f"gt_boxes[{i}]", gb, f"gt_labels[{i}]", gl)
        if gt_difficult is not None:
            gd = check_flags(f"gt_difficult[{i}]", gt_difficult[i])
            check_same_length(f"gt_boxes[{i}]", gb, f"gt_difficult[{i}]", gd)
    return det_boxes, det_scores, det_labels, det_image_ids


def _ultralytics_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult,
                       conf_thres, max_det, iou_thresholds, nc):
    """:func:`_voc_check` plus ``conf_thres``, ``max_det``, ``iou_thresholds``, ``nc`` (see the
    reference)."""
    out = _voc_check(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult)
    check_number("conf_thres", conf_thres)
    check_count("max_det", max_det, 1)
    if iou_thresholds is not None:
        check_unit_interval("iou_thresholds", as_tensor("iou_thresholds", iou_thresholds, ndim=1, finite=True,
                                                        floating=True))
    if nc is not None:
        check_count("nc", nc)
    return out


# ============================================================================ PASCAL VOC

_VOC07_THRS = np.arange(0.0, 1.1, 0.1)


def voc_ap(rec: TensorLike, prec: TensorLike, use_07_metric: bool = False) -> torch.Tensor:
    """AP of a recall/precision curve, as ``voc_eval.py`` (see the reference). 0-d tensor."""
    _check_curve("rec", rec, "prec", prec)
    rec = as_tensor("rec", rec, ndim=1, floating=True)
    prec = as_tensor("prec", prec, ndim=1, floating=True)
    check_same_length("rec", rec, "prec", prec)
    if use_07_metric:
        t = torch.as_tensor(_VOC07_THRS, device=rec.device)                          # [11]
        sel = rec[None, :] >= t[:, None]                                               # [11, N]
        p = torch.where(sel, prec[None, :], torch.zeros((), dtype=prec.dtype, device=prec.device))
        p = p.amax(-1) if len(rec) else torch.zeros(11, dtype=prec.dtype, device=prec.device)
        return torch.sum(p / 11.0)
    z = torch.zeros(1, dtype=rec.dtype, device=rec.device)
    mrec = torch.cat([z, rec, z + 1.0])
    mpre = torch.cat([z.to(prec.dtype), prec, z.to(prec.dtype)])
    mpre = torch.flip(torch.cummax(torch.flip(mpre, [0]), 0).values, [0])
    i = torch.nonzero(mrec[1:] != mrec[:-1]).flatten()
    return torch.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _group_table(d_key, g_key):
    """[N, Gmax] indices of the GTs whose key equals each detection's key, -1 padded."""
    g_order = torch.sort(g_key, stable=True).indices
    keys, g_count = torch.unique_consecutive(g_key[g_order], return_counts=True)
    g_start = torch.cumsum(g_count, 0) - g_count
    slot = _positions_in(d_key, keys)
    found = slot >= 0
    cnt = torch.where(found, g_count[slot.clamp(min=0)], 0) if len(keys) else torch.zeros_like(d_key)
    start = g_start[slot.clamp(min=0)] if len(keys) else torch.zeros_like(d_key)
    col = torch.arange(int(cnt.max()) if len(cnt) else 0, device=d_key.device)
    pos = torch.clamp(start[:, None] + col, max=max(len(g_order) - 1, 0))
    return torch.where(col < cnt[:, None], g_order[pos], -1)


def voc_evaluate(gt_boxes: Sequence[TensorLike], gt_labels: Sequence[TensorLike], det_boxes: TensorLike,
                 det_scores: TensorLike, det_labels: TensorLike, det_image_ids: TensorLike,
                 gt_difficult: Sequence[TensorLike] | None = None, iou_threshold: float = 0.5,
                 use_07_metric: bool = False) -> dict[str, torch.Tensor]:
    """PASCAL VOC AP per class and mAP (see the reference). Matching is vectorised: a
    detection's best GT does not depend on earlier matches, so the TP of a GT is simply its
    first claimant in score order."""
    det_boxes, det_scores, det_labels, det_image_ids = _voc_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult, iou_threshold)
    dev = det_boxes.device
    dtype = torch.promote_types(torch.promote_types(det_boxes.dtype, det_scores.dtype), torch.float32)
    gb = [check_boxes(f"gt_boxes[{i}]", b, ndim=2).to(dev, dtype) for i, b in enumerate(gt_boxes)]
    g_box = torch.cat(gb) if gb else torch.zeros((0, 4), dtype=dtype, device=dev)
    g_lab = (torch.cat([torch.as_tensor(v, device=dev).reshape(-1).long() for v in gt_labels])
             if len(gt_labels) else torch.zeros(0, dtype=torch.int64, device=dev))
    g_img = torch.repeat_interleave(torch.arange(len(gb), device=dev),
                                    torch.tensor([len(b) for b in gb], dtype=torch.int64, device=dev))
    check_same_length("gt_boxes (all images)", g_box, "gt_labels (all images)", g_lab)
    g_dif = (torch.zeros(len(g_box), dtype=torch.bool, device=dev) if gt_difficult is None else
             torch.cat([torch.as_tensor(v, device=dev).reshape(-1).bool() for v in gt_difficult])
             if len(gt_difficult) else torch.zeros(0, dtype=torch.bool, device=dev))
    check_same_length("gt_boxes (all images)", g_box, "gt_difficult (all images)", g_dif)
    classes = torch.unique(g_lab[~g_dif])
    det_boxes, det_scores = det_boxes.to(dtype), det_scores.to(dtype)

    n_img = max(len(gb), 1)
    tab = _group_table(det_labels * n_img + det_image_ids, g_lab * n_img + g_img)
    ninf = torch.tensor(-torch.inf, dtype=dtype, device=dev)
    ov = torch.where(tab >= 0, voc_box_iou(det_boxes[:, None, :], g_box[tab.clamp(min=0)])[:, 0, :]
                     if len(g_box) else ninf, ninf)
    if tab.shape[1]:
        ovmax, arg = ov.max(-1)
        # torch.max's index on ties is unspecified: take the first maximal column explicitly
        arg = torch.argmax((ov == ovmax[:, None]).to(torch.uint8), -1)
        jmax = tab.gather(1, arg[:, None]).squeeze(1)
    else:
        ovmax = ninf.expand(len(tab))
        jmax = torch.full((len(tab),), -1, dtype=torch.int64, device=dev)
    hit = ovmax > iou_threshold
    difficult = hit & g_dif[jmax.clamp(min=0)] if len(g_dif) else torch.zeros_like(hit)

    # score order within each class (stable), all classes at once
    order = _stable_lexsort(-det_scores, det_labels)
    lab, hit_o, dif_o, j_o = det_labels[order], hit[order], difficult[order], jmax[order]
    claim = torch.where(hit_o & ~dif_o, j_o, -1)
    pos = torch.arange(len(order), device=dev)
    first_pos = torch.full((len(g_box) + 1,), len(order), dtype=torch.int64, device=dev)
    first_pos.scatter_reduce_(0, claim.clamp(min=-1) + 1, pos, reduce="amin")
    first = (claim >= 0) & (first_pos[claim + 1] == pos)
    tp_f = first.to(dtype)
    fp_f = (~hit_o | ((claim >= 0) & ~first)).to(dtype)
    aps = torch.zeros(len(classes), dtype=dtype, device=dev)
    eps = float(np.finfo(np.float64).eps)
    for c_i, c in enumerate(classes.tolist()):
        sel = lab == c
        tp, fp = torch.cumsum(tp_f[sel], 0), torch.cumsum(fp_f[sel], 0)
        npos = int(((g_lab == c) & ~g_dif).sum())
        rec = tp / torch.tensor(float(npos), dtype=dtype, device=dev)
        prec = tp / torch.clamp(tp + fp, min=eps)
        aps[c_i] = voc_ap(rec, prec.to(dtype), use_07_metric)
    m = aps.mean() if len(aps) else torch.tensor(float("nan"), dtype=dtype, device=dev)
    return {"classes": classes, "ap": aps, "map": m}


# ============================================================================ YOLOv5 / Ultralytics 8.3, 8.4

def _interp(x, xp, fp, left=None, right=None):
    """``np.interp`` (NumPy's exact C rules) for 1-d float64 tensors; ``xp`` non-decreasing."""
    n = len(xp)
    lv = fp[0] if left is None else torch.as_tensor(left, dtype=fp.dtype, device=fp.device)
    rv = fp[-1] if right is None else torch.as_tensor(right, dtype=fp.dtype, device=fp.device)
    j = torch.searchsorted(xp, x, right=True) - 1             # last j with xp[j] <= x
    jc = j.clamp(0, n - 1)
    if n > 1:
        j0 = j.clamp(0, n - 2)
        slope = (fp[j0 + 1] - fp[j0]) / (xp[j0 + 1] - xp[j0])
        val = slope * (x - xp[j0]) + fp[j0]
        alt = slope * (x - xp[j0 + 1]) + fp[j0 + 1]          # NumPy's retry on NaN
        alt = torch.where(torch.isnan(alt) & (fp[j0] == fp[j0 + 1]), fp[j0], alt)
        val = torch.where(torch.isnan(val), alt, val)
    else:
        val = fp[jc]
    res = torch.where((j == n - 1) | (xp[jc] == x), fp[jc], val)
    res = torch.where(x < xp[0], lv, res)
    return torch.where(x > xp[-1], rv, res)


def _smooth(y, f=0.05):
    """The reference's box filter, summed in the same order."""
    nf = round(len(y) * f * 2) // 2 + 1
    p = torch.ones(nf // 2, dtype=y.dtype, device=y.device)
    yp = torch.cat((p * y[0], y, p * y[-1]))
    w = 1.0 / nf
    acc = yp[0:len(y)] * w
    for k in range(1, nf):
        acc = acc + yp[k:k + len(y)] * w
    return acc


def compute_ap(recall: TensorLike, precision: TensorLike, method: Literal["interp", "continuous"] = "interp",
               version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AP of one recall/precision curve, as ``compute_ap`` of yolov5 v7.0 / ultralytics 8.3.253 /
    8.4.190 by ``version`` (default '8.3'; see the reference)."""
    _check_curve("recall", recall, "precision", precision)
    recall = as_tensor("recall", recall, ndim=1, floating=True).to(_F64)
    precision = as_tensor("precision", precision, ndim=1, floating=True).to(_F64)
    check_same_length("recall", recall, "precision", precision)
    if method not in ("interp", "continuous"):
        raise ValueError(f"method: expected 'interp' or 'continuous', got {method!r}")
    check_ultralytics_version(version)
    return _compute_ap(recall, precision, method, version)


def _compute_ap(recall, precision, method, version, x=None):
    """:func:`compute_ap` on checked float64 inputs (``x``: the 101-point grid, if at hand)."""
    dev = recall.device
    one = torch.ones(1, dtype=_F64, device=dev)
    if version != "8.4":
        mrec = torch.cat([one * 0, recall, one])
        mpre = torch.cat([one, precision, one * 0])
    else:
        last = recall[-1:] if len(recall) else one
        mrec = torch.cat([one * 0, recall, last, one])
        mpre = torch.cat([one, precision, one * 0, one * 0])
    mpre = torch.flip(torch.cummax(torch.flip(mpre, [0]), 0).values, [0])
    if method == "interp":
        if x is None:
            x = torch.as_tensor(np.linspace(0, 1, 101), device=dev)  # NumPy's exact grid
        ap = torch.trapezoid(_interp(x, mrec, mpre), x)
    else:
        i = torch.nonzero(mrec[1:] != mrec[:-1]).flatten()
        ap = torch.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap, mpre, mrec


def ap_per_class(tp: TensorLike, conf: TensorLike, pred_cls: TensorLike, target_cls: TensorLike, eps: float = 1e-16,
                 version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION
                 ) -> tuple[torch.Tensor, ...]:
    """Per-class AP and P/R/F1 at the best mean-F1 confidence, as ``ap_per_class`` of yolov5
    v7.0 / ultralytics 8.3.253 / 8.4.190 by ``version`` (default '8.3'; see the reference)."""
    _check_ap_per_class(tp, conf, pred_cls, target_cls, eps)
    if isinstance(tp, torch.Tensor) and tp.dtype == torch.bool:
        tp = tp.to(torch.uint8)  # as_tensor refuses bool; the flags are cast to float below
    tp = as_tensor("tp", np.asarray(tp, dtype=np.uint8) if isinstance(tp, np.ndarray)
                   and tp.dtype == bool else tp, ndim=2)
    conf = as_tensor("conf", conf, ndim=1, finite=True, floating=True).to(_F64)
    dev = conf.device
    pred_cls = as_tensor("pred_cls", pred_cls, ndim=1, device=dev).long()
    target_cls = as_tensor("target_cls", target_cls, ndim=1, device=dev).long()
    check_same_length("tp", tp, "conf", conf)
    check_same_length("tp", tp, "pred_cls", pred_cls)
    check_ultralytics_version(version)  # checked up front, whatever the data
    i = torch.sort(-conf, stable=True).indices
    tp, conf, pred_cls = tp[i].to(_F64), conf[i], pred_cls[i]
    classes, nt = torch.unique(target_cls, return_counts=True)
    nc, n_thr = len(classes), tp.shape[1]
    px = torch.as_tensor(np.linspace(0, 1, 1000), device=dev)  # torch.linspace rounds differently
    grid = torch.as_tensor(np.linspace(0, 1, 101), device=dev)
    ap = torch.zeros((nc, n_thr), dtype=_F64, device=dev)
    p_curve = torch.zeros((nc, 1000), dtype=_F64, device=dev)
    r_curve = torch.zeros((nc, 1000), dtype=_F64, device=dev)
    for ci, c in enumerate(classes.tolist()):
        sel = pred_cls == c
        n_l, n_p = int(nt[ci]), int(sel.sum())
        if n_p == 0 or n_l == 0:
            continue
        tpc = torch.cumsum(tp[sel], 0)
        fpc = torch.cumsum(1 - tp[sel], 0)
        recall = tpc / (n_l + eps)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = _interp(-px, -conf[sel], recall[:, 0], left=0.0)
        p_curve[ci] = _interp(-px, -conf[sel], precision[:, 0], left=1.0)
        for j in range(n_thr):
            ap[ci, j] = _compute_ap(recall[:, j], precision[:, j], "interp", version, grid)[0]
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    if nc == 0:
        e = torch.zeros(0, dtype=_F64, device=dev)
        return e, e, e, e, e, ap, classes
    total = f1[0]
    for row in f1[1:]:
        total = total + row
    k = int(torch.argmax(_smooth(total / nc, 0.1)))
    p, r, f = p_curve[:, k], r_curve[:, k], f1[:, k]
    tp_n = torch.round(r * nt)
    fp_n = torch.round(tp_n / (p + eps) - tp_n)
    return tp_n, fp_n, p, r, f, ap, classes


def _match_greedy(iou, thr):
    """ultralytics 8.4.190's matching (see the reference's ``_match_greedy``): sequential over
    the predictions, all thresholds at once; ``torch.argmax`` returns the first maximum."""
    m, n = iou.shape
    t = len(thr)
    dev = iou.device
    correct = torch.zeros((n, t), dtype=torch.bool, device=dev)
    matched = torch.zeros((m, t), dtype=torch.bool, device=dev)
    cols = torch.arange(t, device=dev)
    zero = torch.zeros((), dtype=iou.dtype, device=dev)
    for j in torch.nonzero((iou >= thr.min()).any(0)).flatten().tolist():
        available = torch.where(matched, zero, iou[:, j, None])                    # [M, T]
        k = torch.argmax(available, 0)
        correct[j] = available[k, cols] >= thr
        matched[k, cols] |= correct[j]
    return correct


def match_predictions(pred_classes: TensorLike, true_classes: TensorLike, iou: TensorLike, iou_thresholds: TensorLike,
                      version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION) -> torch.Tensor:
    """Matching of yolov5 v7.0 ``process_batch`` / ultralytics 8.3.253, 8.4.190
    ``match_predictions`` by ``version`` (default '8.3'; see the reference).

    'yolov5' / '8.3', all thresholds at once: each prediction's label is the valid label of
    largest IoU (the first on ties, which is the stable order's choice); a label keeps its
    lowest-index prediction. '8.4': sequential over the predictions (:func:`_match_greedy`).
    """
    _check_match(pred_classes, true_classes, iou, iou_thresholds)
    iou = as_tensor("iou", iou, ndim=2)
    dev = iou.device
    pred_classes = as_tensor("pred_classes", pred_classes, ndim=1, device=dev)
    true_classes = as_tensor("true_classes", true_classes, ndim=1, device=dev)
    thr = as_tensor("iou_thresholds", iou_thresholds, ndim=1, device=dev)
    m, n = len(true_classes), len(pred_classes)
    if tuple(iou.shape) != (m, n):
        raise ValueError(f"iou: expected shape ({m}, {n}), got {tuple(iou.shape)}")
    check_ultralytics_version(version)
    t = len(thr)
    if m == 0 or n == 0 or t == 0:
        return torch.zeros((n, t), dtype=torch.bool, device=dev)
    same = true_classes[:, None] == pred_classes[None, :]
    if version == "8.4":
        return _match_greedy(iou * same, thr)
    if version == "yolov5":
        key, valid = iou, (iou[None] >= thr[:, None, None]) & same
    else:  # 8.3: wrong-class pairs count with IoU 0
        key = iou * same
        valid = key[None] >= thr[:, None, None]
    masked = torch.where(valid, key[None], torch.tensor(-torch.inf, dtype=key.dtype, device=dev))
    best = masked.amax(1)                                                          # [T, N]
    has = valid.any(1)
    l_star = torch.argmax((valid & (masked == best[:, None, :])).to(torch.uint8), 1)  # [T, N]
    j = torch.arange(n, device=dev).expand(t, n)
    first = torch.full((t, m), n, dtype=torch.int64, device=dev)
    first.scatter_reduce_(1, l_star, torch.where(has, j, n), reduce="amin")
    correct = has & (first.gather(1, l_star) == j)
    return correct.T.contiguous()


def _confusion_greedy(iou, scores, iou_thres):
    """ultralytics 8.4.190's matching (see the reference's ``_confusion_greedy``): (label
    index [K], detection index [K]); sequential over the candidates in descending score order."""
    iou = iou.clone()
    m = iou.shape[0]
    gt_match = torch.full((m,), -1, dtype=torch.int64, device=iou.device)
    cand = torch.nonzero((iou > iou_thres).any(0)).flatten()
    for d in cand[torch.sort(-scores[cand], stable=True).indices].tolist():
        g = int(torch.argmax(iou[:, d]))
        if iou[g, d] > iou_thres:
            gt_match[g] = d
            iou[g] = 0
    li = torch.nonzero(gt_match >= 0).flatten()
    return li, gt_match[li]


def confusion_matrix(detections: TensorLike, labels: TensorLike, nc: int, conf: float = 0.25, iou_thres: float = 0.45,
                     version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION) -> torch.Tensor:
    """One image's ``ConfusionMatrix.process_batch`` contribution of yolov5 v7.0 / ultralytics
    8.3.253 / 8.4.190 by ``version`` (default '8.3'; see the reference). 'yolov5' / '8.3'
    vectorised: each detection keeps its best label (first on ties), each label its best
    surviving detection (lowest index on ties); '8.4' sequential (:func:`_confusion_greedy`)."""
    _check_confusion(detections, labels, nc, conf, iou_thres)
    detections = as_tensor("detections", detections, ndim=2, floating=True)
    dev = detections.device
    labels = as_tensor("labels", labels, ndim=2, floating=True, device=dev)
    if detections.shape[1] != 6 or labels.shape[1] != 5:
        raise ValueError(f"detections, labels: expected [N, 6] and [M, 5], got "
                         f"{tuple(detections.shape)} and {tuple(labels.shape)}")
    check_ultralytics_version(version)
    if version == "8.3" and conf == 0.001:
        conf = 0.25
    matrix = torch.zeros((nc + 1, nc + 1), dtype=_F64, device=dev)
    detections = detections[detections[:, 4] > conf]
    gt_classes = labels[:, 0].long()
    det_classes = detections[:, 5].long()
    m, n = len(labels), len(detections)
    one = torch.ones((), dtype=_F64, device=dev)
    if m == 0 or n == 0:
        matrix.index_put_((torch.full_like(gt_classes, nc), gt_classes), one.expand(m), accumulate=True)
        if version != "yolov5":  # 8.3 / 8.4: every detection of an image without labels is an FP
            matrix.index_put_((det_classes, torch.full_like(det_classes, nc)), one.expand(n),
                              accumulate=True)
        return matrix
    iou = box_iou(labels[:, 1:], detections[:, :4])                                # [M, N]
    if version == "8.4":
        li, di = _confusion_greedy(iou, detections[:, 4], iou_thres)
        first = torch.full((m,), n, dtype=torch.int64, device=dev)
        first[li] = di
    else:
        first = _confusion_first(iou, iou_thres)
    matched_lab = first < n                                                        # [M]
    any_match = bool(matched_lab.any())
    pred_row = torch.where(matched_lab, det_classes[first.clamp(max=n - 1)], nc)
    matrix.index_put_((pred_row, gt_classes), one.expand(m), accumulate=True)
    if any_match or version != "yolov5":
        det_matched = torch.zeros(n, dtype=torch.bool, device=dev)
        det_matched[first[matched_lab]] = True
        um = det_classes[~det_matched]
        matrix.index_put_((um, torch.full_like(um, nc)), one.expand(len(um)), accumulate=True)
    return matrix


def _confusion_first(iou, iou_thres):
    """yolov5 v7.0 / ultralytics 8.3.253 matching, vectorised: per label [M] the matched
    detection, N where none."""
    m, n = iou.shape
    dev = iou.device
    valid = iou > iou_thres
    ninf = torch.tensor(-torch.inf, dtype=iou.dtype, device=dev)
    masked = torch.where(valid, iou, ninf)
    best = masked.amax(0)                                                          # [N]
    has = valid.any(0)
    l_star = torch.argmax((valid & (masked == best[None])).to(torch.uint8), 0)    # [N]
    # per label: the surviving detection of largest IoU, lowest index on ties
    lab_best = torch.full((m,), -torch.inf, dtype=iou.dtype, device=dev)
    lab_best.scatter_reduce_(0, l_star[has], best[has], reduce="amax")
    j = torch.arange(n, device=dev)
    cand = has & (best == lab_best[l_star])
    first = torch.full((m,), n, dtype=torch.int64, device=dev)
    first.scatter_reduce_(0, l_star, torch.where(cand, j, n), reduce="amin")
    return first


# ============================================================================ YOLOv5 / Ultralytics 8.3, 8.4: protocol

class UltralyticsResult(_RefUltralyticsResult):
    """What :func:`ultralytics_evaluate` returns: the reference's fields (see
    :class:`ref_numpy.metrics.UltralyticsResult`) as tensors on the evaluation device."""


def _mean_or_nan(x):
    return x.mean() if x.numel() else torch.tensor(float("nan"), dtype=_F64, device=x.device)


def _ultralytics_keep(scores, image_ids, n_images, conf_thres, max_det):
    """Per image: ``score > conf_thres``, score-descending (stable), the first ``max_det``."""
    order = torch.sort(image_ids, stable=True).indices
    bounds = torch.searchsorted(image_ids[order],
                                torch.arange(n_images + 1, device=image_ids.device)).tolist()
    kept = []
    for i in range(n_images):
        idx = order[bounds[i]:bounds[i + 1]]
        idx = idx[scores[idx] > conf_thres]
        kept.append(idx[torch.sort(-scores[idx], stable=True).indices][:max_det])
    return kept


def ultralytics_evaluate(gt_boxes: Sequence[TensorLike], gt_labels: Sequence[TensorLike], det_boxes: TensorLike,
                         det_scores: TensorLike, det_labels: TensorLike, det_image_ids: TensorLike,
                         gt_difficult: Sequence[TensorLike] | None = None, conf_thres: float = 0.001,
                         max_det: int = 300, iou_thresholds: TensorLike | None = None,
                         version: Literal["yolov5", "8.3", "8.4"] = ULTRALYTICS_DEFAULT_VERSION,
                         nc: int | None = None) -> UltralyticsResult:
    """The detection validation of yolov5 v7.0 / ultralytics 8.3.253 / 8.4.190 by ``version``
    (default '8.3') on given predictions (see the reference): the same
    four steps (NMS filters, per-image :func:`match_predictions`, :func:`ap_per_class`,
    summed :func:`confusion_matrix`) on tensors, on the device of ``det_boxes``."""
    det_boxes, det_scores, det_labels, det_image_ids = _ultralytics_check(
        gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids, gt_difficult, conf_thres, max_det,
        iou_thresholds, nc)
    dev = det_boxes.device
    if np.isnan(conf_thres):
        raise ValueError(f"conf_thres: expected a number (-inf keeps every prediction), got {conf_thres!r}")
    if int(max_det) < 1:
        raise ValueError(f"max_det: expected >= 1, got {max_det!r}")
    check_ultralytics_version(version)
    thr = as_tensor("iou_thresholds", ULTRALYTICS_IOU_THRS if iou_thresholds is None
                    else iou_thresholds, ndim=1, finite=True, floating=True, device=dev).to(_F64)
    if len(thr) == 0:
        raise ValueError("iou_thresholds: expected at least one threshold")
    gb = [check_boxes(f"gt_boxes[{i}]", b, ndim=2).to(dev, _F64) for i, b in enumerate(gt_boxes)]
    gl = [as_tensor(f"gt_labels[{i}]", v, ndim=1, device=dev).long()
          for i, v in enumerate(gt_labels)]
    gd = [torch.zeros(len(b), dtype=torch.bool, device=dev) if gt_difficult is None
          else torch.as_tensor(gt_difficult[i], device=dev).reshape(-1).bool()
          for i, b in enumerate(gb)]
    for i in range(len(gb)):
        check_same_length(f"gt_boxes[{i}]", gb[i], f"gt_labels[{i}]", gl[i])
        check_same_length(f"gt_boxes[{i}]", gb[i], f"gt_difficult[{i}]", gd[i])
    det_boxes, det_scores = det_boxes.to(_F64), det_scores.to(_F64)
    top = max((int(v.max()) for v in [det_labels] + gl if len(v)), default=-1)
    nc = top + 1 if nc is None else int(nc)
    if nc <= top:
        raise ValueError(f"nc: expected > the largest label ({top}), got {nc}")

    kept = _ultralytics_keep(det_scores, det_image_ids, len(gb), conf_thres, int(max_det))
    tp = []
    cm = torch.zeros((nc + 1, nc + 1), dtype=_F64, device=dev)
    cm_conf = 0.25 if version == "yolov5" else float(conf_thres)
    for i, p in enumerate(kept):
        g_box, g_lab = gb[i][~gd[i]], gl[i][~gd[i]]                                  # [M, 4]
        if len(p) and len(g_box):
            iou = box_iou(g_box, det_boxes[p])                                       # [M, N]
            tp.append(match_predictions(det_labels[p], g_lab, iou, thr, version=version))
        else:
            tp.append(torch.zeros((len(p), len(thr)), dtype=torch.bool, device=dev))
        dets = torch.cat([det_boxes[p], det_scores[p, None], det_labels[p, None].to(_F64)], 1)
        labs = torch.cat([g_lab[:, None].to(_F64), g_box], 1)                          # [M, 5]
        cm += confusion_matrix(dets, labs, nc, conf=cm_conf, version=version)
    kept_all = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.int64, device=dev)
    tp_all = torch.cat(tp) if tp else torch.zeros((0, len(thr)), dtype=torch.bool, device=dev)
    target = (torch.cat([gl[i][~gd[i]] for i in range(len(gb))]) if gb
              else torch.zeros(0, dtype=torch.int64, device=dev))
    _, _, p, r, f1, ap, classes = ap_per_class(tp_all, det_scores[kept_all], det_labels[kept_all],
                                               target, version=version)
    return UltralyticsResult(
        tp=tp_all, conf=det_scores[kept_all], pred_cls=det_labels[kept_all], kept=kept_all,
        target_cls=target, p=p, r=r, f1=f1, ap=ap, classes=classes, mp=_mean_or_nan(p),
        mr=_mean_or_nan(r), map50=_mean_or_nan(ap[:, 0]), map=_mean_or_nan(ap.mean(1)),
        confusion_matrix=cm, iou_thresholds=thr)
