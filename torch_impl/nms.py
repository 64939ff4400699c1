"""Non-maximum suppression: the PyTorch port of :mod:`ref_numpy.nms`.

No torchvision ops, no compiled extension. Greedy IoU-NMS (``nms``, ``batched_nms``,
``nms_padded``, the YOLO post-processing) has two exact engines over the score-sorted boxes:

**Sparse pair engine (CPU).** Greedy NMS only needs the pairs with IoU > threshold, and boxes
far apart have none. The pairs that can qualify are enumerated by sorting (horizontal strips at
least as tall as the largest window in y, x1 order within a strip, group labels as separate
strips; a proved rounding bound turns ``iou > t`` into windows ``x1_b - x1_a < (1 - t) w_a`` and
the same in y, evaluated with margins, so the candidates are a superset), their IoU is computed
as torchvision does, and the greedy loop runs over the resulting sparse graph: a loop over the
boxes that suppress something, each kept one marking its targets. Work is about (candidate pairs
+ suppressing pairs), not N^2. It declines, and the blocked pass runs, for a negative threshold,
areas outside the range where its rounding bound is proved, or more than ``PAIR_BUDGET``
candidate pairs per box (dense clusters). See the section comment above :func:`_sparse_keep`.

**Blocked matrix pass (any device; DIoU-NMS).**

1. take the next block of ``BLOCK`` sorted positions and keep those still alive (not suppressed);
2. within the block, build the boolean matrix ``M[i, j] = i < j and overlap(i, j) > thr`` and
   solve ``keep[j] = not any_i (keep[i] and M[i, j])`` by fixed-point iteration from
   ``keep = all`` (Cluster-NMS; one matrix-vector product per iteration). After t iterations the
   first t positions are final and the greedy result is the unique fixed point, reached after
   (longest suppression chain in the block + 1) iterations; a block not settled after
   ``FIXED_POINT_STEPS`` (a long chain) is finished by the greedy loop over its rows, each row
   of M a Python integer bit mask;
3. the kept boxes of the block suppress every later alive box they overlap: tiles of at most
   ``BLOCK x CHUNK`` pairs computed into three reused work buffers (memory is bounded at any N),
   reduced by a row maximum (``max_i overlap > thr`` <=> ``any_i overlap > thr`` once NaN, which
   never suppresses, is mapped to -inf; for IoU that mapping is skipped when every box has a
   finite positive area, since the IoU cannot be NaN then). Suppressed boxes are skipped as rows
   and columns from then on.

The pairwise values are computed with the reference's order of operations in the input dtype, so
the kept indices are identical to ``ref_numpy.nms`` and to torchvision's CPU kernel; a float32
value is compared with the threshold rounded down to float32, which is the float64 comparison.
With group labels sorted ascending (classes for :func:`batched_nms`, images for
:func:`nms_padded`) only same-group pairs count, so groups cost what separate calls would.
Tensors are created on the input's device. Indices carry no gradient (computed under
``no_grad``).

Performance (``yolo-ref bench peers --rows nms,batched-nms``, one CPU thread, a shared 2-core
machine under load 4-10, same-run ratios to torchvision 0.29): 5,000 random 640-px boxes
0.07-0.2x torchvision's time; the long chain (1-px shifts, every 4th box kept) 0.3-0.5x;
``batched_nms`` of 5,000 / 20,000 boxes in 80 classes 0.3-0.45x. Tight clusters of thousands
of boxes with few kept remain slower than torchvision (its cost is kept x N there: about 4x
at 8,000 boxes in 3 clusters). On an oversubscribed CPU torch's intra-op threads can stall every op;
``torch.set_num_threads(1)`` avoids that.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from ref_numpy.shared.checks import check_count, check_real, check_same_length, check_unit, \
    check_yolo_version
from ref_numpy.shared.constants import DIOU_EPS, MAX_WH
from torch_impl._typing import TensorLike
from torch_impl._validate import as_tensor, check_boxes

__all__ = ["nms", "batched_nms", "nms_padded", "soft_nms", "diou_nms", "non_max_suppression",
           "MAX_WH", "DIOU_EPS"]

#: Sorted positions resolved together (within-block fixed point); rows of a suppression tile.
BLOCK = 256
#: Columns of a suppression tile (BLOCK x CHUNK pairs, 512 KB of float32 per work buffer: the
#: three buffers stay in a core's L2 cache; 4096 columns were about 1.5x slower).
CHUNK = 512
#: Fixed-point iterations tried on a block before its greedy loop is run sequentially.
FIXED_POINT_STEPS = 4
#: Positions the blocked pass decides before it first hands the rest to the sparse engine (on
#: CPU, when the sparse engine declined the whole set as too dense: the first blocks of a
#: clustered set suppress most of it).
HANDOFF_FIRST = 256


# ----------------------------------------------------------------------------- private helpers

def _floating(x: torch.Tensor) -> torch.Tensor:
    """Integers -> float64, float16/bfloat16 -> float32 (as the reference's ``_upcast``)."""
    if not x.is_floating_point():
        return x.to(torch.float64)
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.to(torch.float32)
    return x


def _check_boxes_scores(boxes, scores) -> tuple[torch.Tensor, torch.Tensor]:
    boxes = _floating(check_boxes("boxes", boxes, ndim=2))
    scores = as_tensor("scores", scores, ndim=1, device=boxes.device)
    if not scores.is_floating_point():
        scores = scores.to(torch.float64)
    check_same_length("boxes", boxes, "scores", scores)
    return boxes.detach(), scores.detach()




def _threshold_for(dtype: torch.dtype, threshold: float) -> float:
    """A threshold t' with ``x > t'`` (in ``dtype``) <=> ``float64(x) > threshold``.

    For float32, t' is ``threshold`` rounded DOWN to float32: for a float32 x, x > t implies
    x > t', and x > t' implies x >= nextafter(t') > t. float64 needs nothing."""
    if dtype == torch.float64 or math.isnan(threshold):
        return threshold
    with np.errstate(over="ignore"):
        t = np.float32(threshold)
    if float(t) > threshold:
        t = np.nextafter(t, np.float32(-np.inf))
    return float(t)


def _score_order(scores: torch.Tensor) -> torch.Tensor:
    """Stable descending order with NaN first (torch sorts NaN as the largest value)."""
    return torch.sort(scores, stable=True, descending=True).indices


def _stable_order(labels: torch.Tensor) -> torch.Tensor:
    """Indices of a stable ascending sort of int64 ``labels``: on CPU with labels spanning
    fewer than 2^15 values, NumPy's radix sort of 16-bit keys (several times faster)."""
    if labels.device.type == "cpu" and labels.numel():
        lo, hi = (int(v) for v in torch.aminmax(labels))
        if hi - lo < 2 ** 15:
            small = (labels.numpy() - lo).astype(np.int16)
            return torch.from_numpy(np.argsort(small, kind="stable"))
    return torch.sort(labels, stable=True).indices


def _box_table(boxes: torch.Tensor, centres: bool = False) -> torch.Tensor:
    """[K, N]: rows x1, y1, x2, y2, area (and cx, cy): gathered together by column index."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    rows = [x1, y1, x2, y2, (x2 - x1) * (y2 - y1)]
    if centres:
        rows += [(x1 + x2) / 2, (y1 + y2) / 2]
    return torch.stack(rows)


def _iou(r: torch.Tensor, c: torch.Tensor, out=None) -> torch.Tensor:
    """[len r, len c] IoU of table columns ``r`` [K, r] and ``c`` [K, c], torchvision's order of
    operations in the input dtype. ``out``: optional three flat work buffers of at least
    r * c elements; the result is then a view of the first (valid until the next call)."""
    shape = (r.shape[1], c.shape[1])
    if out is None:
        w, h, tmp = (torch.empty(shape, dtype=r.dtype, device=r.device) for _ in range(3))
    else:
        w, h, tmp = (buf[:shape[0] * shape[1]].view(shape) for buf in out)
    torch.minimum(r[2, :, None], c[2], out=w)
    w.sub_(torch.maximum(r[0, :, None], c[0], out=tmp)).clamp_(min=0)
    torch.minimum(r[3, :, None], c[3], out=h)
    h.sub_(torch.maximum(r[1, :, None], c[1], out=tmp)).clamp_(min=0)
    inter = w.mul_(h)
    union = torch.add(r[4, :, None], c[4], out=tmp).sub_(inter)
    return inter.div_(union)


def _diou(r: torch.Tensor, c: torch.Tensor, beta: float, out=None) -> torch.Tensor:
    """``iou - (d^2 / (c^2 + eps)) ** beta``, the reference's ``_diou_one_to_many`` as a matrix
    (``out`` is accepted for the engine's interface and not used: fresh tensors)."""
    iou = _iou(r, c)
    dx = r[5, :, None] - c[5]
    dy = r[6, :, None] - c[6]
    cw = torch.maximum(r[2, :, None], c[2]).sub_(torch.minimum(r[0, :, None], c[0]))
    ch = torch.maximum(r[3, :, None], c[3]).sub_(torch.minimum(r[1, :, None], c[1]))
    d2 = dx.mul_(dx).add_(dy.mul_(dy))
    c2 = cw.mul_(cw).add_(ch.mul_(ch))
    return iou.sub_(d2.div_(c2.add_(DIOU_EPS)).pow_(beta))


def _resolve_block(m: torch.Tensor) -> torch.Tensor:
    """Greedy keep [r] for an upper-triangular "i suppresses j" matrix ``m`` [r, r].

    Up to ``FIXED_POINT_STEPS`` fixed-point iterations, each a matrix-vector product:
    ``count[j] = sum_i m[i, j] * keep[i]`` (exact in float32 for r < 2^24), ``keep = count == 0``;
    random and clustered boxes settle in a few. A block that has not settled by then holds a
    long suppression chain (one iteration per link): it is finished by :func:`_sequential_block`."""
    mt = m.t().to(torch.float32).contiguous()  # [j, i]
    keep = torch.ones(m.shape[0], dtype=torch.float32, device=m.device)
    for _ in range(FIXED_POINT_STEPS):
        new = (torch.mv(mt, keep) == 0).to(torch.float32)
        if torch.equal(new, keep):
            return keep.bool()
        keep = new
    return _sequential_block(m)


def _sequential_block(m: torch.Tensor) -> torch.Tensor:
    """The greedy loop itself over the r (<= ``BLOCK``) rows of one block, with each row of
    ``m`` as a Python integer bit mask: a loop over rows, one integer OR per kept row (what a
    chain needs: its decisions are sequential by nature)."""
    packed = np.packbits(m.cpu().numpy(), axis=1, bitorder="little")  # bit j of row i
    width, data = packed.shape[1], packed.tobytes()
    suppressed, kept = 0, []
    for i in range(packed.shape[0]):
        if not (suppressed >> i) & 1:
            kept.append(i)
            suppressed |= int.from_bytes(data[i * width:(i + 1) * width], "little")
    keep = torch.zeros(m.shape[0], dtype=torch.bool)
    keep[kept] = True
    return keep.to(m.device)


def _greedy_keep(table: torch.Tensor, alive: torch.Tensor, overlap, threshold: float,
                 labels=None, maybe_nan: bool = True, block: int | None = None,
                 chunk: int | None = None, handoff=None) -> torch.Tensor:
    """Exact greedy NMS over positions 0..N-1 (already in visiting order), blocked.

    Position i suppresses a later j when ``overlap(i, j) > threshold`` (NaN never suppresses).

    Args:
        table: [K, N] per-position values gathered for ``overlap`` (see :func:`_box_table`).
        alive: [N] bool, positions taking part (others are never kept and suppress nothing).
        overlap: ``f(rows [K, r], cols [K, c], out) -> float [r, c]``, symmetric bit for bit
            (``f(a, b) == f(b, a).T``: tiles are computed either way round); ``out`` is three
            flat work buffers of ``block * chunk`` elements it may compute into.
        threshold: compared in the values' dtype (see :func:`_threshold_for`).
        labels: [N] int sorted ascending, or None; only equal labels interact.
        maybe_nan: False when ``overlap`` cannot return NaN (then a tile is reduced by ``amax``
            directly; with NaN possible, NaN is first mapped to -inf).
        block, chunk: tile sizes (default: the module's ``BLOCK`` and ``CHUNK``).
        handoff: optional ``f(start, end, alive [end - start] bool) -> keep [end - start] bool
            or None``, tried once the positions decided in a group (the whole set without
            labels) pass ``HANDOFF_FIRST``, then 4x as many, ...: greedy NMS of positions
            ``start..end-1`` (the rest of one group), which the blocked pass's suppression
            leaves independent of the decided ones; a mask decides the rest of the group.
    Returns:
        [N] bool keep mask over positions.
    """
    block, chunk = block or BLOCK, chunk or CHUNK  # module values read at call time
    n = alive.shape[0]
    alive = alive.clone()
    keep = torch.zeros_like(alive)
    work = [torch.empty(block * max(block, min(chunk, n)), dtype=table.dtype, device=table.device)
            for _ in range(3)]  # reused by every tile: no allocation (and page faults) per tile
    group_start = group_end = decided = next_handoff = 0
    for start, stop in _blocks(n, block, labels):  # a loop over blocks, not boxes
        start = max(start, decided)  # positions before `decided` were handed off
        if handoff is not None and start < stop:
            if start >= group_end:  # a new group (the whole set without labels)
                group_start = start
                group_end = (n if labels is None else
                             int(torch.searchsorted(labels, labels[start], right=True)))
                next_handoff = start + HANDOFF_FIRST
            if start >= next_handoff:  # hand off the rest of this group (groups are independent)
                rest = alive[start:group_end]
                found = handoff(start, group_end, rest) if bool(rest.any()) else rest
                if found is not None:
                    keep[start:group_end] |= found
                    start = decided = group_end  # the block's later groups, if any, go on
                else:
                    next_handoff = group_start + 4 * (start - group_start)
        if start >= stop:
            continue
        rows = torch.nonzero(alive[start:stop]).squeeze(1) + start
        if rows.numel() == 0:
            continue
        r = table[:, rows]
        m = overlap(r, r, work) > threshold
        if labels is not None:
            m &= labels[rows, None] == labels[rows]
        kept = rows[_resolve_block(m.triu_(diagonal=1))]
        keep[kept] = True
        end, mixed = n, False
        if labels is not None:  # later groups cannot be touched by this block
            first, last = labels[kept[0]], labels[kept[-1]]
            end, mixed = int(torch.searchsorted(labels, last, right=True)), bool(first != last)
        if end <= stop:
            continue
        cols = torch.nonzero(alive[stop:end]).squeeze(1) + stop
        r = table[:, kept]
        for c0 in range(0, cols.numel(), chunk):
            cc = cols[c0:c0 + chunk]
            v = overlap(table[:, cc], r, work)  # [c, k]: reduced along contiguous rows
            if maybe_nan:
                v.nan_to_num_(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
            if mixed:  # kept rows of several groups: cross-group pairs never suppress
                v.masked_fill_(labels[cc, None] != labels[kept], -math.inf)
            alive[cc[v.amax(1) > threshold]] = False
    return keep


def _blocks(n: int, block: int, labels=None) -> list[tuple[int, int]]:
    """[start, stop) ranges of at most ``block`` positions; with group labels a block ends at a
    group boundary when at least a quarter block of the group fits in it (fewer tiles than blocks
    straddling groups), while runs of small groups share a block."""
    if labels is None or n == 0:
        return [(a, min(a + block, n)) for a in range(0, n, block)]
    ends = torch.unique_consecutive(labels, return_counts=True)[1].cumsum(0).tolist()
    out, start, g = [], 0, 0
    while start < n:
        stop = min(start + block, n)
        while ends[g] <= start:
            g += 1
        if ends[g] < stop and ends[g] - start >= max(1, block // 4):
            stop = ends[g]
        out.append((start, stop))
        start = stop
    return out


def _iou_nms(boxes_sorted: torch.Tensor, alive: torch.Tensor, threshold: float,
             labels=None, sparse_first: bool = True) -> torch.Tensor:
    """Greedy IoU-NMS keep mask over already-sorted boxes (the engine of nms, batched, padded).

    On CPU the sparse pair engine runs (:func:`_sparse_keep`); it declines (and the blocked
    matrix pass runs) for a negative threshold, extreme box scales, or more candidate pairs than
    ``PAIR_BUDGET`` per box; then (or with ``sparse_first`` False, when the caller expects a
    dense set) the blocked pass hands each group's rest to it once the group's first positions
    are decided (see :func:`_greedy_keep`). The IoU cannot be NaN when every alive box has a
    finite, positive area: then ``inter <= min(area_i, area_j)`` (rounding is monotonic), so
    ``union > 0`` and finite."""
    handoff = None
    if boxes_sorted.device.type == "cpu":
        keep = _sparse_keep(boxes_sorted, alive, threshold, labels) if sparse_first else None
        if keep is not None:
            return keep
        if threshold >= 0 and PAIR_BUDGET > 0:  # declined (too dense, extreme areas) or skipped
            def handoff(start: int, end: int, rest: torch.Tensor):  # one group's undecided part
                return _sparse_keep(boxes_sorted[start:end], rest, threshold)
    table = _box_table(boxes_sorted).contiguous()
    area = table[4][alive]
    maybe_nan = not bool(((area > 0) & torch.isfinite(area)).all())
    return _greedy_keep(table, alive, _iou, _threshold_for(boxes_sorted.dtype, threshold),
                        labels=labels, maybe_nan=maybe_nan, handoff=handoff)


# ----------------------------------------------------------------------------- sparse pair engine
# Greedy NMS needs only the pairs with IoU > threshold, and boxes far apart have none: the pairs
# that can qualify are found by sorting instead of by computing all N^2 / 2 of them, their IoU
# is computed exactly as torchvision's kernel does, and the greedy pass runs over that sparse
# "i suppresses j" graph. Host-side (NumPy views of CPU tensors: one array op costs a microsecond
# where a torch op costs several, and the work is index bookkeeping).
#
# Which pairs can qualify. For IoU > t >= 0 the boxes intersect, and the float IoU obeys
# ``iou <= ow / w_a * (1 + 8u) + 1e-15`` for either box a (ow the exact x-overlap, w_a its exact
# width, u the unit roundoff; the absolute term covers subnormal intersections once every area is
# in [1e-30, 1e30] for float32, [1e-280, 1e280] for float64, which is checked), and the same in
# y. With a the box of smaller x1, ``ow <= w_a - (x1_b - x1_a)``, so a qualifying pair has
# ``x1_b - x1_a < (1 - t_c) w_a`` with ``t_c = (t - 1e-9)(1 - 1e-5)``, a safe lower bound of t,
# and likewise in y with the height of the box of smaller y1. Those windows are evaluated in
# float64 with relative (1e-6) and absolute (1e-12 |x1|) margins above every rounding error, so
# the candidate set is a superset of the qualifying pairs; the IoU then decides.
#
# How candidates are enumerated. Boxes are cut into horizontal strips of height S >= the
# largest y window (a qualifying pair lies in one strip or in two adjacent ones), per group
# label; within a strip they are sorted by x1. Each box then owns three ranges of that sorted
# order, found by binary search on an exact integer key (segment, rank of x1): the later boxes of
# its own strip, and the boxes of each adjacent strip with x1 in its window ([x1, x1 + win) above,
# (x1, x1 + win) below: each pair is generated once). On 5,000 random 640-px boxes that is about
# 50 candidates per box instead of 2,500.

#: Candidate pairs allowed per box before the sparse engine declines (dense clusters, where
#: nearly every candidate pair suppresses and few boxes are kept: the blocked matrix pass is
#: then cheaper; the two cost the same near 50-80 pairs per box); 0 disables the sparse engine.
PAIR_BUDGET = 64
#: Candidate pairs whose IoU is computed at once (work buffers that stay in cache; 2^17 was
#: about 2x slower).
PAIR_CHUNK = 1 << 15
_AREA_RANGE = {np.dtype(np.float32): (1e-30, 1e30), np.dtype(np.float64): (1e-280, 1e280)}


def _sparse_keep(boxes_sorted: torch.Tensor, alive: torch.Tensor, threshold: float,
                 labels=None) -> torch.Tensor | None:
    """Greedy IoU-NMS keep mask [N] over boxes in visiting order (CPU tensors), or None when
    the sparse engine does not apply (negative threshold, areas outside the range where its
    rounding bound is proved, too many candidate pairs; see the section comment). ``labels``
    sorted ascending: only equal labels interact."""
    if math.isnan(threshold) or threshold < 0 or PAIR_BUDGET <= 0:
        return alive.clone() if math.isnan(threshold) else None
    boxes = np.ascontiguousarray(boxes_sorted.numpy())
    x1, y1, x2, y2 = boxes.T
    part = np.flatnonzero(alive.numpy() & (x2 > x1) & (y2 > y1))  # others: never in a pair
    tc = max(0.0, (threshold - 1e-9) * (1.0 - 1e-5))
    f = (1.0 - tc) * (1.0 + 1e-6)
    if part.size < 2 or f <= 0:
        return alive.clone()
    cols = [np.ascontiguousarray(c[part]) for c in (x1, y1, x2, y2)]
    area = (cols[2] - cols[0]) * (cols[3] - cols[1])  # torchvision's areas, in the input dtype
    lo, hi = _AREA_RANGE[area.dtype]
    if not ((area >= lo) & (area <= hi)).all():
        return None
    lab = None if labels is None else labels.numpy()[part]
    found = _candidate_ranges(*cols, lab, f)
    if found is None:
        return None
    order, src, starts, counts = found
    cols = [np.take(c, order) for c in cols + [area]]  # the table in candidate order
    a, b = _suppressing_pairs(cols, src, starts, counts,
                              _threshold_for(boxes_sorted.dtype, threshold))
    if a.size == 0:
        return alive.clone()
    pa, pb = part[order[a]], part[order[b]]  # visiting positions
    removed = _greedy_over_edges(boxes.shape[0], np.minimum(pa, pb), np.maximum(pa, pb))
    return alive & ~torch.from_numpy(removed)


def _candidate_ranges(x1, y1, x2, y2, lab, f: float):
    """The candidate pairs as ranges of a sorted order: ``(order [m], src [R], starts [R],
    counts [R])``; box ``order[k]`` forms a candidate pair with ``order[j]`` for every j in
    ``starts[r] + range(counts[r])`` of every range r with ``src[r] == k``. None when there are
    more than ``PAIR_BUDGET`` pairs per box."""
    m = x1.size
    X1, Y1 = x1.astype(np.float64), y1.astype(np.float64)
    winx = (x2 - X1) * f + np.abs(X1) * 1e-12  # x1_b < x1_a + winx_a for a qualifying pair
    ymin, ymax = Y1.min(), Y1.max()
    strip_h = max(float(((y2 - Y1) * f).max()) * 1.01 + max(abs(ymin), abs(ymax)) * 1e-12,
                  (ymax - ymin) / m)  # >= the largest y window (and at most m strips)
    strip = np.floor((Y1 - ymin) / strip_h).astype(np.int64)
    span = int(strip.max()) + 3  # a strip slot either side stays empty
    seg = strip + 1
    if lab is not None:
        seg += np.concatenate([[0], np.cumsum(lab[1:] != lab[:-1])]) * span
    if int(seg.max()) + 2 >= (2 ** 62) // (m + 1):  # the integer key would overflow
        return None
    by_x = np.argsort(x1)  # ties in any order: ranks only need to be distinct
    reach = _sorted_search(X1[by_x], (X1 + winx)[by_x])  # #{x1 < x1_a + winx_a}, x order
    seg = seg[by_x]
    if int(seg.max()) < 2 ** 15:  # a radix sort of 16-bit keys
        seg = seg.astype(np.int16)
    rank = np.argsort(seg, kind="stable")  # segment, then x order: the x rank is the position
    order, seg, reach = by_x[rank], seg[rank].astype(np.int64), reach[rank]
    key = seg * (m + 1) + rank  # distinct ranks: x1_b < v  <=>  rank_b < #{x1 < v}
    stride = m + 1
    within = seg * stride + reach
    by_end = np.argsort(within)  # one order sorts the three end queries (shifts of each other)
    ends = [np.empty(m, np.int64) for _ in range(3)]
    ends[0][by_end] = np.searchsorted(key, within[by_end])
    starts = [np.arange(1, m + 1)]  # own strip: later in x order, x1 within the window
    if int((ends[0] - starts[0]).sum()) > PAIR_BUDGET * m:  # over budget already
        return None
    for out, shift in zip(ends[1:], (stride, -stride)):
        out[by_end] = np.searchsorted(key, within[by_end] + shift)
    starts += [np.searchsorted(key, (seg + 1) * stride + rank),  # strip above: x1_b >= x1_a
               np.searchsorted(key, (seg - 1) * stride + rank, side="right")]  # below: x1_b > x1_a
    starts, counts = np.concatenate(starts), np.concatenate(ends) - np.concatenate(starts)
    nonempty = np.flatnonzero(counts > 0)
    counts = counts[nonempty]
    if int(counts.sum()) > PAIR_BUDGET * m:
        return None
    return order, nonempty % m, starts[nonempty], counts


def _sorted_search(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted_values, queries)`` with the queries sorted first (binary
    searches in increasing order reuse their lower bound and the cache: about 2x faster)."""
    by_q = np.argsort(queries)
    out = np.empty(queries.size, np.int64)
    out[by_q] = np.searchsorted(sorted_values, queries[by_q])
    return out


def _pair_iou(a_cols, b_cols) -> np.ndarray:
    """Element-wise IoU of paired boxes given as columns (x1, y1, x2, y2, area), torchvision's
    kernel and order of operations in the input dtype (what ``_iou`` computes as a matrix)."""
    ax1, ay1, ax2, ay2, aarea = a_cols
    bx1, by1, bx2, by2, barea = b_cols
    w = np.minimum(ax2, bx2)
    w -= np.maximum(ax1, bx1)
    np.maximum(w, 0, out=w)
    h = np.minimum(ay2, by2)
    h -= np.maximum(ay1, by1)
    np.maximum(h, 0, out=h)
    w *= h  # inter
    union = aarea + barea
    union -= w
    w /= union
    return w


def _suppressing_pairs(cols, src, starts, counts, threshold: float):
    """(a, b) positions of the candidate pairs with IoU > threshold, computed ``PAIR_CHUNK``
    pairs at a time: the ``a`` side repeated along its ranges, the ``b`` side gathered."""
    ends = np.cumsum(counts)
    a_out, b_out, r0 = [], [], 0
    while r0 < counts.size:
        r1 = max(r0 + 1, int(np.searchsorted(ends, ends[r0] - counts[r0] + PAIR_CHUNK,
                                             side="right")))
        c = counts[r0:r1]
        first = np.cumsum(c) - c  # each range's first pair in the chunk
        b = np.repeat(starts[r0:r1] - first, c)
        b += np.arange(b.size)
        a = np.repeat(src[r0:r1], c)
        iou = _pair_iou([np.take(col, a) for col in cols], [np.take(col, b) for col in cols])
        hit = np.flatnonzero(iou > threshold)
        if hit.size:
            a_out.append(a[hit])
            b_out.append(b[hit])
        r0 = r1
    if not a_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_out), np.concatenate(b_out)


def _greedy_over_edges(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The greedy pass over a suppression graph: edges ``src < dst`` (positions in visiting
    order, src suppresses dst if src is kept). A loop over the sources in visiting order, as the
    algorithm is sequential; a kept source marks its targets (a Python loop over few targets,
    one NumPy assignment for many). Returns the [n] bool mask of suppressed positions."""
    by_src = np.argsort(src)  # the order of a source's targets does not matter
    src, dst = src[by_src], dst[by_src]
    cut = np.flatnonzero(src[1:] != src[:-1]) + 1
    heads = src[np.concatenate([[0], cut])].tolist()
    bounds = np.concatenate([[0], cut, [src.size]]).tolist()
    removed = np.zeros(n, dtype=bool)
    if src.size > 8 * len(heads):  # many targets per source (clusters): few sources are kept
        flags = memoryview(removed)
        for i, lo, hi in zip(heads, bounds, bounds[1:]):
            if not flags[i]:
                removed[dst[lo:hi]] = True
        return removed
    targets, flags = dst.tolist(), bytearray(n)
    for i, lo, hi in zip(heads, bounds, bounds[1:]):
        if not flags[i]:  # i is kept: it suppresses its targets
            for j in targets[lo:hi]:
                flags[j] = 1
    return np.frombuffer(flags, dtype=bool)


# ----------------------------------------------------------------------------- public API

def nms(boxes: TensorLike, scores: TensorLike, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, exactly as ``torchvision.ops.nms`` on CPU (see
    :func:`ref_numpy.nms.nms` for the contract), without torchvision: the sparse pair engine on
    CPU, the blocked matrix pass elsewhere (see the module docstring).

    Args:
        boxes (Tensor[N, 4]): xyxy boxes, finite, any device.
        scores (Tensor[N]): scores; NaN sorts first.
        iou_threshold (float): suppress when ``iou > iou_threshold`` (compared as float64).

    Returns:
        Tensor[K] int64 on ``boxes.device``: kept indices in decreasing score order.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    threshold = check_real("iou_threshold", iou_threshold)
    with torch.no_grad():
        order = _score_order(scores)
        alive = torch.ones(order.shape[0], dtype=torch.bool, device=boxes.device)
        keep = _iou_nms(boxes[order], alive, threshold)
        return order[keep]


def batched_nms(boxes: TensorLike, scores: TensorLike | None, idxs: TensorLike | None,
                iou_threshold: float) -> torch.Tensor:
    """Greedy NMS within each category, in one pass (no loop over categories): boxes are
    visited grouped by category (then by score), only same-category pairs interact, and the kept
    indices are returned in the stable descending score order (see
    :func:`ref_numpy.nms.batched_nms`).

    Args:
        boxes (Tensor[N, 4]), scores (Tensor[N]), idxs (Tensor[N] int), iou_threshold (float).

    Returns:
        Tensor[K] int64: kept indices, NaN scores first, then decreasing score, ties by index.
        Zero boxes give an empty result, also with ``scores`` / ``idxs`` None (as torchvision).
    """
    if scores is None or idxs is None:
        b = check_boxes("boxes", boxes, ndim=2)
        if b.shape[0] == 0:
            return torch.zeros(0, dtype=torch.int64, device=b.device)
    boxes, scores = _check_boxes_scores(boxes, scores)
    idxs = as_tensor("idxs", idxs, ndim=1, device=boxes.device)
    if idxs.is_floating_point():
        raise ValueError(f"idxs: expected an integer array, got dtype {idxs.dtype}")
    check_same_length("boxes", boxes, "idxs", idxs)
    threshold = check_real("iou_threshold", iou_threshold)
    with torch.no_grad():
        by_score = _score_order(scores)
        idxs = idxs.to(torch.int64)
        grouped = by_score.index_select(0, _stable_order(idxs.index_select(0, by_score)))
        alive = torch.ones(grouped.shape[0], dtype=torch.bool, device=boxes.device)
        keep = _iou_nms(boxes.index_select(0, grouped), alive, threshold,  # class, then score
                        labels=idxs.index_select(0, grouped))
        kept = torch.zeros_like(alive)
        kept[grouped[keep]] = True
        return by_score[kept.index_select(0, by_score)]


def nms_padded(boxes: TensorLike, scores: TensorLike, iou_threshold: float, valid: TensorLike | None = None
              ) -> torch.Tensor:
    """:func:`nms` for many images in one pass, on padded tensors; returns a keep mask (see
    :func:`ref_numpy.nms.nms_padded`). Images are independent groups of the blocked pass, so the
    work is what per-image calls would do, without a loop over images.

    Args:
        boxes (Tensor[..., N, 4]), scores (Tensor[..., N]), iou_threshold (float),
        valid (Tensor[..., N] bool, optional): real boxes (default all).

    Returns:
        Tensor[..., N] bool on ``boxes.device``.
    """
    boxes = as_tensor("boxes", boxes, last_dim=4)
    if boxes.ndim < 2:
        raise ValueError(f"boxes: expected shape [..., N, 4], got {tuple(boxes.shape)}")
    boxes = _floating(boxes).detach()
    scores = as_tensor("scores", scores, device=boxes.device).detach()
    if scores.shape != boxes.shape[:-1]:
        raise ValueError(f"scores: expected shape {tuple(boxes.shape[:-1])}, "
                         f"got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        scores = scores.to(torch.float64)
    if valid is None:
        valid = torch.ones(scores.shape, dtype=torch.bool, device=boxes.device)
    valid = torch.as_tensor(valid, device=boxes.device)
    if valid.shape != scores.shape or valid.dtype != torch.bool:
        raise ValueError(f"valid: expected a bool array of shape {tuple(scores.shape)}, "
                         f"got {valid.dtype} {tuple(valid.shape)}")
    if not bool(torch.isfinite(boxes[valid]).all()):
        raise ValueError("boxes: expected finite values where valid, got NaN or inf")
    threshold = check_real("iou_threshold", iou_threshold)
    g, n = math.prod(boxes.shape[:-2]), boxes.shape[-2]
    with torch.no_grad():
        flat_boxes = boxes.reshape(g, n, 4)
        order = torch.sort(scores.reshape(g, n), dim=1, stable=True, descending=True).indices
        sorted_boxes = torch.gather(flat_boxes, 1, order[..., None].expand(g, n, 4))
        images = torch.arange(g, device=boxes.device).repeat_interleave(n)
        alive = torch.gather(valid.reshape(g, n), 1, order).reshape(-1)
        keep = _iou_nms(sorted_boxes.reshape(-1, 4), alive, threshold, labels=images)
        mask = torch.zeros_like(order, dtype=torch.bool).scatter_(1, order, keep.reshape(g, n))
        return mask.reshape(valid.shape)


def soft_nms(boxes: TensorLike, scores: TensorLike, iou_threshold: float = 0.3, sigma: float = 0.5,
             score_threshold: float = 0.001, method: Literal["linear", "gaussian"] = "gaussian"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS (Bodla et al. 2017), see :func:`ref_numpy.nms.soft_nms` for the contract.

    Sequential by nature: a loop over selection steps, each step vectorised over all boxes.

    Returns:
        (Tensor[K] int64, Tensor[K]): selected indices in selection order and their scores at
        selection (scores' dtype).
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    if scores.numel() and not bool(torch.isfinite(scores).all()):
        raise ValueError("scores: expected finite values for soft_nms, got NaN or inf")
    if method not in ("linear", "gaussian"):
        raise ValueError(f"method: expected 'linear' or 'gaussian', got {method!r}")
    threshold = check_real("iou_threshold", iou_threshold)
    sigma = check_real("sigma", sigma)
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    score_threshold = check_real("score_threshold", score_threshold)
    t = _threshold_for(boxes.dtype, threshold)
    with torch.no_grad():
        table = _box_table(boxes)
        current = scores.clone()
        active = current >= score_threshold
        keep, kept_scores = [], []
        neg_inf = torch.tensor(-math.inf, dtype=current.dtype, device=current.device)
        while bool(active.any()):  # one selection per step
            i = torch.argmax(torch.where(active, current, neg_inf))  # first maximum
            keep.append(i)
            kept_scores.append(current[i])
            active[i] = False
            iou = _iou(table[:, i, None], table)[0]
            iou = torch.where(torch.isnan(iou), torch.zeros_like(iou), iou)
            if method == "linear":
                decay = torch.where(iou > t, 1 - iou, torch.ones_like(iou))
            else:
                decay = torch.exp(-(iou * iou) / sigma)
            current = torch.where(active, current * decay, current)
            active &= current >= score_threshold
        if not keep:
            return (torch.zeros(0, dtype=torch.int64, device=boxes.device),
                    torch.zeros(0, dtype=scores.dtype, device=boxes.device))
        return torch.stack(keep).to(torch.int64), torch.stack(kept_scores)


def diou_nms(boxes: TensorLike, scores: TensorLike, iou_threshold: float, beta: float = 1.0) -> torch.Tensor:
    """DIoU-NMS: greedy NMS on ``iou - (d^2 / (c^2 + 1e-7)) ** beta > iou_threshold`` (see
    :func:`ref_numpy.nms.diou_nms`), blocked matrix form as :func:`nms`.

    Returns:
        Tensor[K] int64: kept indices in decreasing score order.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    threshold = check_real("iou_threshold", iou_threshold)
    beta = check_real("beta", beta)
    t = _threshold_for(boxes.dtype, threshold)
    with torch.no_grad():
        order = _score_order(scores)
        alive = torch.ones(order.shape[0], dtype=torch.bool, device=boxes.device)
        keep = _greedy_keep(_box_table(boxes[order], centres=True).contiguous(), alive,
                            lambda r, c, out: _diou(r, c, beta), t)
        return order[keep]


# ----------------------------------------------------------------------------- YOLO post-processing

def _xywh2xyxy(xywh: torch.Tensor) -> torch.Tensor:
    xy, half = xywh[..., :2], xywh[..., 2:] / 2
    return torch.cat([xy - half, xy + half], dim=-1)


def _candidate_keys(x: torch.Tensor, conf_thres: float, multi_label: bool, objectness: bool,
                    wanted: torch.Tensor | None):
    """One image's rows [A, 5 + nc] (or [A, 4 + nc]) -> what the candidates are made of.

    Returns ``(box [A', 4] xyxy, keys [M], rows [M], labels [M])``: ``keys`` holds each
    candidate's confidence, ``-inf`` where there is none, in upstream's candidate order:
    row-major (row, class) with ``multi_label`` (M = A' nc, the order of ``nonzero``), else one
    per row (M = A'; the class is the first best one); ``rows`` and ``labels`` are functions of
    candidate indices giving the row of ``box`` and the class. Box corners and ``obj * cls`` are computed in the
    prediction's dtype, as upstream (the reference's ``_yolo_candidates``, without gathering
    the rows: only the ones that survive the ``max_nms`` cut and the early exit are built)."""
    if objectness:
        x = x[x[:, 4] > conf_thres]
        cls = x[:, 5:] * x[:, 4:5]  # conf = obj_conf * cls_conf
    else:
        x = x[x[:, 4:].amax(dim=1) > conf_thres] if x.shape[0] else x
        cls = x[:, 4:]
    neg_inf = torch.tensor(-math.inf, dtype=cls.dtype, device=cls.device)
    if multi_label:
        ok = cls > conf_thres
        if wanted is not None:
            ok &= torch.isin(torch.arange(cls.shape[1], device=cls.device).double(), wanted)
        keys = torch.where(ok, cls, neg_inf).reshape(-1)
        nc = cls.shape[1]
        return _xywh2xyxy(x[:, :4]), keys, lambda c: c // nc, lambda c: c % nc
    else:
        conf, j = (cls.max(dim=1) if cls.shape[0] else
                   (cls.new_zeros(0), torch.zeros(0, dtype=torch.int64, device=cls.device)))
        ok = conf > conf_thres
        if wanted is not None:
            ok &= torch.isin(j.double(), wanted)
        keys = torch.where(ok, conf, neg_inf)
        return _xywh2xyxy(x[:, :4]), keys, lambda c: c, lambda c: j[c]


def _stable_top(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the first ``k`` entries of the stable descending order of ``keys`` (ties by
    index), ``-inf`` entries excluded: one ``topk`` for the k-th value, then only the selected
    entries are sorted (the same prefix as a stable argsort of everything)."""
    valid = keys > -math.inf
    n = int(valid.sum())
    if k >= n:
        idx = torch.nonzero(valid).squeeze(1)
    else:
        v = torch.topk(keys, k, sorted=False).values.min()  # the k-th largest value
        above = keys > v
        ties = torch.nonzero(keys == v).squeeze(1)[:k - int(above.sum())]  # first by index
        idx = torch.sort(torch.cat([torch.nonzero(above).squeeze(1), ties])).values
    return idx[torch.sort(keys[idx], stable=True, descending=True).indices]


def _classes_apart(boxes: torch.Tensor, cls: torch.Tensor) -> bool:
    """True when the x-extents ``[min x1, max x2]`` of the classes are pairwise disjoint
    (touching allowed): then no two boxes of different classes intersect (IoU 0, never above a
    threshold >= 0), so class-aware NMS on the offset boxes is per-class NMS exactly."""
    present, inv = torch.unique(cls, return_inverse=True)
    if present.numel() < 2:
        return True
    lo = torch.full(present.shape, math.inf, dtype=boxes.dtype, device=boxes.device)
    hi = torch.full(present.shape, -math.inf, dtype=boxes.dtype, device=boxes.device)
    lo = lo.scatter_reduce(0, inv, boxes[:, 0], reduce="amin")
    hi = hi.scatter_reduce(0, inv, boxes[:, 2], reduce="amax")
    order = torch.argsort(lo)
    lo, hi = lo[order], hi[order]
    return bool((lo[1:] >= torch.cummax(hi, 0).values[:-1]).all())


def _offset_nms_keep(boxes: torch.Tensor, cls: torch.Tensor, threshold: float,
                     offset: float, sparse_first: bool = True) -> torch.Tensor:
    """Keep mask of greedy NMS on ``boxes + cls * offset`` (rows already in score order), the
    result of :func:`nms` on the offset boxes. When the classes lie apart (always, for boxes
    inside ``[0, offset)``), it runs as independent per-class groups: no cross-class pair is
    computed. ``sparse_first``: see :func:`_iou_nms` (the same result either way)."""
    shifted = boxes + cls[:, None] * offset if offset else boxes
    if not bool(torch.isfinite(shifted).all()):
        raise ValueError(f"max_wh: the class offsets cls * max_wh are not finite in "
                         f"{boxes.dtype} (max_wh={offset!r})")
    alive = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    if not offset or not _classes_apart(shifted, cls):
        return _iou_nms(shifted, alive, threshold, sparse_first=sparse_first)
    grouped = torch.sort(cls, stable=True).indices  # class, then score (rows are in score order)
    keep = torch.zeros_like(alive)
    keep[grouped] = _iou_nms(shifted[grouped], alive, threshold,
                             labels=cls[grouped].to(torch.int64), sparse_first=sparse_first)
    return keep


#: Candidates visited first by ``non_max_suppression`` (then 4x as many, ...): greedy NMS
#: decides a box from the boxes ranked before it only, so once ``max_det`` boxes of a prefix
#: are kept, the rest cannot enter the result.
FIRST_PREFIX = 1024


def non_max_suppression(prediction: TensorLike, conf_thres: float = 0.25, iou_thres: float = 0.45,
                        classes: Sequence[int] | None = None, agnostic: bool = False, multi_label: bool = False,
                        max_det: int = 300, max_nms: int = 30000, max_wh: float = MAX_WH,
                        version: Literal["v5", "v8"] = "v5") -> list[torch.Tensor]:
    """YOLO post-processing (``version``: "v5" = YOLOv5 v7.0, the default; "v8" = Ultralytics
    8.3 / 8.4), see
    :func:`ref_numpy.nms.non_max_suppression` for the contract (float16 / bfloat16 predictions
    give float32 rows, as upstream). A loop over images, vectorised within each, the same
    result as :func:`nms` on the class-offset boxes of every candidate, computed with less work:

    1. candidates as confidence keys in upstream's order (no [n, 6] rows are built for all of
       them); the stable ``max_nms`` cut by one ``topk`` plus a sort of the selected keys only;
    2. NMS on the first ``FIRST_PREFIX`` candidates, then 4x as many, ... until ``max_det`` of
       them are kept: greedy NMS decides a box from higher-ranked boxes only, so the kept boxes
       of a prefix are final;
    3. when the classes' offset boxes lie apart (always for boxes inside ``[0, max_wh)``), the
       classes are independent groups of the blocked pass (no cross-class pair is computed);
       otherwise one pass over the offset boxes.

    Returns:
        list of B Tensors [n, 6] (x1, y1, x2, y2, conf, cls) on ``prediction.device``.
    """
    objectness = check_yolo_version(version)
    pred = as_tensor("prediction", prediction, ndim=3)
    pred = _floating(pred) if not pred.is_floating_point() else pred
    pred = as_tensor("prediction", pred, finite=True).detach()
    if objectness and pred.shape[2] < 6:
        raise ValueError(f"prediction: expected [B, A, 5 + nc] with nc >= 1, "
                         f"got {tuple(pred.shape)}")
    if not objectness:
        if pred.shape[1] < 5:
            raise ValueError(f"prediction: expected [B, 4 + nc, A] with nc >= 1, "
                             f"got {tuple(pred.shape)}")
        pred = pred.transpose(1, 2)
    conf_thres = check_unit("conf_thres", conf_thres)
    iou_thres = check_unit("iou_thres", iou_thres)
    max_det, max_nms = check_count("max_det", max_det), check_count("max_nms", max_nms)
    max_wh = 0.0 if agnostic else check_real("max_wh", max_wh)
    nc = pred.shape[2] - (5 if objectness else 4)
    multi_label = bool(multi_label) and nc > 1
    wanted = None if classes is None else torch.as_tensor(  # compared as numbers, like upstream
        list(classes), dtype=torch.float64, device=pred.device)
    # rows in float32 for float16/bfloat16 predictions (upstream's cat with j.float())
    row_dtype = _floating(pred[:0]).dtype
    with torch.no_grad():
        return [_one_image(x, conf_thres, iou_thres, multi_label, objectness, wanted, max_det,
                           max_nms, max_wh, row_dtype) for x in pred]  # one image at a time


def _one_image(x, conf_thres, iou_thres, multi_label, objectness, wanted, max_det, max_nms,
               max_wh, row_dtype) -> torch.Tensor:
    """Detections [n, 6] of one image: candidates, the stable ``max_nms`` cut, then NMS on
    growing prefixes until ``max_det`` boxes are kept (or every candidate is visited)."""
    box, keys, row_of, class_of = _candidate_keys(x, conf_thres, multi_label, objectness, wanted)
    order = _stable_top(keys, max_nms)  # the candidates NMS visits, in visiting order
    threshold = _threshold_for(row_dtype, iou_thres)
    k, sparse_first = min(order.numel(), FIRST_PREFIX), True
    while True:
        c = order[:k]
        det = torch.cat([box[row_of(c)].to(row_dtype), keys[c, None].to(row_dtype),
                         class_of(c)[:, None].to(row_dtype)], dim=1)
        keep = _offset_nms_keep(det[:, :4], det[:, 5], threshold, max_wh, sparse_first)
        kept = int(keep.sum())
        if k == order.numel() or kept >= max_det:
            return det[keep][:max_det]
        sparse_first = 16 * kept >= k  # few kept: clustered, the next prefix is dense too
        k = min(order.numel(), 4 * k)
