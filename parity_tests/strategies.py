"""Hypothesis strategies for the whole suite (one module, sections per concern).

Boxes are valid by construction: draw x1, y1 and a positive w, h, then build xyxy. ``N = 0`` is
always allowed unless a strategy says otherwise. Degenerate boxes (zero width or height, points,
inverted) and extreme scales are separate strategies, so a test opts into them explicitly.
All arrays are float64 NumPy; the harness casts them to the dtype under test.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# ----------------------------------------------------------------------------- scalars

MAX_COORD = 1000.0  # pixel range of ordinary boxes
MAX_BOXES = 24


def floats(lo: float, hi: float, **kw) -> st.SearchStrategy[float]:
    """Finite floats in [lo, hi] (no NaN, no inf, no subnormal surprises)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, **kw)


def sizes(max_n: int = MAX_BOXES, min_n: int = 0, key: str | None = None) -> st.SearchStrategy[int]:
    """A box count; with ``key``, shared between strategies drawn in the same example."""
    s = st.integers(min_n, max_n)
    return st.shared(s, key=key) if key else s


def _column(n: int, lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, (n,), elements=floats(lo, hi))


# ----------------------------------------------------------------------------- boxes

@st.composite
def boxes_xyxy(draw, n: int | None = None, max_n: int = MAX_BOXES, min_n: int = 0,
               max_coord: float = MAX_COORD, min_size: float = 0.5,
               max_size: float | None = None) -> np.ndarray:
    """[N, 4] float64 xyxy boxes with ``x1, y1`` in [0, max_coord] and ``w, h`` in
    [min_size, max_size] (so x2 > x1 and y2 > y1 strictly)."""
    if n is None:
        n = draw(st.integers(min_n, max_n))
    max_size = max_coord / 2 if max_size is None else max_size
    x1 = draw(_column(n, 0.0, max_coord))
    y1 = draw(_column(n, 0.0, max_coord))
    w = draw(_column(n, min_size, max_size))
    h = draw(_column(n, min_size, max_size))
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1).reshape(n, 4)


@st.composite
def clustered_boxes_xyxy(draw, n: int | None = None, max_n: int = MAX_BOXES, min_n: int = 0,
                         n_clusters: int = 3) -> np.ndarray:
    """[N, 4] boxes jittered around a few centres, so that many pairs overlap heavily (the
    interesting regime for NMS and matching)."""
    if n is None:
        n = draw(st.integers(min_n, max_n))
    centres = draw(hnp.arrays(np.float64, (n_clusters, 4), elements=floats(50.0, 500.0)))
    which = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_clusters - 1)))
    jitter = draw(hnp.arrays(np.float64, (n, 4), elements=floats(-0.2, 0.2)))
    cx, cy, w, h = np.moveaxis(centres[which], -1, 0)
    w = 10.0 + w / 4 * (1 + jitter[:, 2])
    h = 10.0 + h / 4 * (1 + jitter[:, 3])
    cx = cx + jitter[:, 0] * w
    cy = cy + jitter[:, 1] * h
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).reshape(n, 4)


@st.composite
def degenerate_boxes_xyxy(draw, n: int | None = None, max_n: int = 12, min_n: int = 0) -> np.ndarray:
    """[N, 4] boxes that break ``x1 < x2, y1 < y2``: zero width, zero height, points, inverted
    and exact duplicates, mixed with ordinary ones."""
    if n is None:
        n = draw(st.integers(min_n, max_n))
    base = draw(boxes_xyxy(n=n, max_coord=100.0, min_size=0.5, max_size=50.0))
    kinds = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 5)))
    out = base.copy()
    out[kinds == 1, 2] = out[kinds == 1, 0]  # zero width
    out[kinds == 2, 3] = out[kinds == 2, 1]  # zero height
    out[kinds == 3, 2:] = out[kinds == 3, :2]  # a point
    inv = kinds == 4
    out[inv] = out[inv][:, [2, 3, 0, 1]]  # inverted
    if n > 1:
        dup = kinds == 5
        out[dup] = out[0]  # exact duplicate of the first box
    return out


@st.composite
def extreme_scale_boxes_xyxy(draw, n: int | None = None, max_n: int = 12, min_n: int = 0) -> np.ndarray:
    """[N, 4] valid boxes scaled by a power of two in [2^-10, 2^16], so sizes range from
    sub-pixel to ~6.5e7 without rounding in the scaling itself."""
    b = draw(boxes_xyxy(n=n, max_n=max_n, min_n=min_n, max_coord=100.0, min_size=1.0, max_size=60.0))
    e = draw(st.integers(-10, 16))
    return b * (2.0 ** e)


@st.composite
def planted_iou_pair(draw, threshold: float, eps: float = 1e-4) -> tuple[np.ndarray, float]:
    """Two xyxy boxes [2, 4] whose IoU is ``threshold + delta`` with delta in {-eps, 0, +eps}
    (exact in real arithmetic), translated and scaled by powers of two. Returns (boxes, delta).

    Construction: A = [0, 0, 1, 1], B = [0, 0, t, 1] with t in (0, 1]; IoU(A, B) = t.
    """
    delta = draw(st.sampled_from([-eps, 0.0, eps]))
    t = float(np.clip(threshold + delta, 1e-6, 1.0))
    scale = 2.0 ** draw(st.integers(0, 9))
    dx = draw(st.integers(0, 512))
    dy = draw(st.integers(0, 512))
    a = np.array([0.0, 0.0, 1.0, 1.0])
    b = np.array([0.0, 0.0, t, 1.0])
    boxes = np.stack([a, b]) * scale + np.array([dx, dy, dx, dy], dtype=np.float64)
    if draw(st.booleans()):
        boxes = boxes[::-1].copy()
    return boxes, delta


def boxes_cxcywh(**kw) -> st.SearchStrategy[np.ndarray]:
    """[N, 4] cxcywh boxes with positive sizes."""
    def conv(b):
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                         b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=-1)
    return boxes_xyxy(**kw).map(conv)


def boxes_xywh(**kw) -> st.SearchStrategy[np.ndarray]:
    """[N, 4] COCO xywh (top-left, size) boxes with positive sizes."""
    def conv(b):
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=-1)
    return boxes_xyxy(**kw).map(conv)


def boxes_in(fmt: str, **kw) -> st.SearchStrategy[np.ndarray]:
    """Valid boxes in format ``fmt`` ('xyxy', 'xywh', 'cxcywh')."""
    return {"xyxy": boxes_xyxy, "xywh": boxes_xywh, "cxcywh": boxes_cxcywh}[fmt](**kw)


# ----------------------------------------------------------------------------- scores

@st.composite
def scores(draw, n: int, ties: bool | None = None, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """[N] float64 scores; with ``ties`` (drawn if None) from a 3-value set so that equal scores
    are common (NMS and matching must then break ties by input order)."""
    if ties is None:
        ties = draw(st.booleans())
    if ties:
        return draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.25, 0.5, 0.75])))
    return draw(hnp.arrays(np.float64, (n,), elements=floats(lo, hi)))


@st.composite
def boxes_and_scores(draw, box_strategy=None, ties: bool | None = None,
                     max_n: int = MAX_BOXES, min_n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4], scores [N]) of one length."""
    n = draw(st.integers(min_n, max_n))
    strat = (st.one_of(boxes_xyxy(n=n), clustered_boxes_xyxy(n=n)) if box_strategy is None
             else box_strategy(n=n))
    b = draw(strat)
    return b, draw(scores(n, ties=ties))


# ----------------------------------------------------------------------------- images

@st.composite
def image_sizes(draw, lo: int = 1, hi: int = 2048) -> tuple[int, int]:
    """(height, width) in pixels."""
    return draw(st.integers(lo, hi)), draw(st.integers(lo, hi))


# --- coder ---
# --- nms ---
# --- formats ---
# --- metrics ---
# --- assign ---
