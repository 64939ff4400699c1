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


# --- boxes ---

BOX_FAMILIES = ("ordinary", "clustered", "degenerate", "extreme")


def box_family(n: int, family: str | None = None) -> st.SearchStrategy[np.ndarray]:
    """[n, 4] xyxy boxes from one named family (or any of them): ordinary, clustered,
    degenerate (zero width/height, points, inverted, duplicates) or extreme-scale. Drawing
    both sides of a pairwise op from ONE call keeps them at one scale, so they can overlap."""
    makers = {"ordinary": lambda: boxes_xyxy(n=n, max_coord=200.0, max_size=150.0),
              "clustered": lambda: clustered_boxes_xyxy(n=n),
              "degenerate": lambda: degenerate_boxes_xyxy(n=n),
              "extreme": lambda: extreme_scale_boxes_xyxy(n=n)}
    if family is not None:
        return makers[family]()
    return st.one_of(*(m() for m in makers.values()))


@st.composite
def any_boxes_xyxy(draw, max_n: int = 8, min_n: int = 0, family: str | None = None) -> np.ndarray:
    """[N, 4] xyxy boxes from :func:`box_family` (degenerate ones included unless excluded)."""
    return draw(box_family(draw(st.integers(min_n, max_n)), family))


@st.composite
def box_pairs_xyxy(draw, max_n: int = 8, family: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes1 [N, 4], boxes2 [M, 4]) drawn together from one family (N, M = 0 allowed);
    the degenerate family plants exact duplicates across the two sets."""
    n, m = draw(st.integers(0, max_n)), draw(st.integers(0, max_n))
    b = draw(box_family(n + m, family))
    return b[:n].copy(), b[n:].copy()


def _xyxy_to_cxcywh_np(b: np.ndarray) -> np.ndarray:
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
                     b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


@st.composite
def elementwise_box_pairs(draw, fmt: str = "xyxy", max_n: int = 8, min_n: int = 0,
                          family: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes1 [N, 4], boxes2 [N, 4] or [1, 4]) paired boxes in ``fmt`` ('xyxy' or 'cxcywh')
    for element-wise IoU; boxes2 is sometimes one row broadcast against all of boxes1."""
    n = draw(st.integers(min_n, max_n))
    b = draw(box_family(2 * n, family))
    b1, b2 = b[:n].copy(), b[n:].copy()
    if n and draw(st.booleans()):
        b2 = b2[:1]
    if fmt == "cxcywh":
        b1, b2 = _xyxy_to_cxcywh_np(b1), _xyxy_to_cxcywh_np(b2)
    return b1, b2


@st.composite
def wh_pairs(draw, max_n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(wh1 [N, 2], wh2 [M, 2]) non-negative shapes, zeros included (from degenerate boxes)."""
    b1, b2 = draw(box_pairs_xyxy(max_n=max_n))
    return np.abs(b1[:, 2:] - b1[:, :2]), np.abs(b2[:, 2:] - b2[:, :2])


@st.composite
def boxes_to_clip(draw, max_n: int = 8, non_finite: bool = True) -> np.ndarray:
    """[N, 4] xyxy boxes straddling the image border (shifted towards negative coordinates),
    with, when ``non_finite``, sometimes a NaN or ±inf planted (clipping accepts them)."""
    b = draw(any_boxes_xyxy(max_n=max_n)) + draw(floats(-300.0, 0.0))
    if non_finite and b.size and draw(st.booleans()):
        b.flat[draw(st.integers(0, b.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return b


@st.composite
def integer_boxes_xyxy(draw, max_n: int = 8, min_n: int = 0, max_coord: int = 512,
                       max_size: int = 256) -> np.ndarray:
    """[N, 4] float64 valid xyxy boxes with integer coordinates (x2 - x1 >= 1): every sum,
    difference, half and product in the box formulas is exact in float32 and float64, so round
    trips, translations and power-of-two scalings can be asserted bit for bit."""
    n = draw(st.integers(min_n, max_n))
    xy = draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, max_coord)))
    wh = draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(1, max_size)))
    return np.concatenate([xy, xy + wh], axis=-1).astype(np.float64).reshape(n, 4)


# --- coder ---
# Encoder/decoder inputs: (boxes or raw, grid, anchors, stride) with boxes placed inside the
# domain where a convention's round trip holds (centre offset and size ratio drawn from it).
CODER_STRIDES = (8.0, 16.0, 32.0, 64.0)
CODER_IMAGE = 640.0  # grids cover a 640 x 640 input: pixel magnitudes stay below ~1e4
# Offsets/ratios kept a margin away from the open ends of each domain, where the logit is
# infinite and float32 cannot represent the neighbourhood (the round trip is ill-conditioned).
CODER_DOMAINS = {
    # kind: ((offset lo, hi), (log size ratio lo, hi))
    "v3": ((0.01, 0.99), (-3.0, 3.0)),
    "v5": ((-0.49, 1.49), (-4.5, 1.38)),  # ratio in [0.011, 3.97] within (0, 4)
}


@st.composite
def coder_cell_inputs(draw, kind: str = "v5", max_n: int = 12, n: int | None = None,
                      per_box_stride: bool | None = None):
    """(boxes [N, 4] xyxy, grid [N, 2], anchors [N, 2], stride) for ``yolov3_*`` / ``yolov5_*``
    with every box inside the round-trip domain of ``kind`` ('v3' or 'v5'). ``grid`` is int64
    or float64 (both accepted); ``stride`` a float or a [N, 1] array."""
    (olo, ohi), (rlo, rhi) = CODER_DOMAINS[kind]
    if n is None:
        n = draw(st.integers(0, max_n))
    if per_box_stride is None:
        per_box_stride = draw(st.booleans())
    cells = draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 79)))
    anchors = draw(hnp.arrays(np.float64, (n, 2), elements=floats(4.0, 400.0)))
    offset = draw(hnp.arrays(np.float64, (n, 2), elements=floats(olo, ohi)))
    log_ratio = draw(hnp.arrays(np.float64, (n, 2), elements=floats(rlo, rhi)))
    if per_box_stride:
        stride = draw(hnp.arrays(np.float64, (n, 1), elements=st.sampled_from(CODER_STRIDES)))
        s = stride
    else:
        stride = draw(st.sampled_from(CODER_STRIDES))
        s = np.float64(stride)
    grid = cells % (CODER_IMAGE // s).astype(np.int64)  # cells of a 640 x 640 input
    if draw(st.booleans()):
        grid = grid.astype(np.float64)
    centre = (grid + offset) * s
    wh = np.exp(log_ratio) * anchors
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=-1).reshape(n, 4)
    return boxes, grid, anchors, stride


@st.composite
def coder_raw_inputs(draw, max_n: int = 12, xy: float = 6.0, wh: tuple = (-3.0, 3.0)):
    """(raw [N, 4], grid [N, 2], anchors [N, 2], stride) as a YOLO head emits them: t_xy in
    [-xy, xy], t_wh in [wh[0], wh[1]] (v3 sizes are anchor * exp(t_wh): up to ~8e3 px)."""
    boxes, grid, anchors, stride = draw(coder_cell_inputs("v5", max_n=max_n))
    n = len(boxes)
    t_xy = draw(hnp.arrays(np.float64, (n, 2), elements=floats(-xy, xy)))
    t_wh = draw(hnp.arrays(np.float64, (n, 2), elements=floats(*wh)))
    return np.concatenate([t_xy, t_wh], axis=-1), grid, anchors, stride


@st.composite
def yolov1_inputs(draw, max_n: int = 12):
    """(boxes [N, 4] xyxy with centres inside the image and sizes >= 0, S, (height, width)).
    Centres are sometimes snapped to cell borders and image edges (floor/clamp boundaries)."""
    S = draw(st.integers(1, 14))
    H, W = draw(st.integers(32, 1024)), draw(st.integers(32, 1024))
    n = draw(st.integers(0, max_n))
    u = draw(hnp.arrays(np.float64, (n, 2), elements=floats(0.0, 1.0)))
    if draw(st.booleans()):  # snap to multiples of 1/S: exactly on cell borders and edges
        u = np.round(u * S) / S
    size = draw(hnp.arrays(np.float64, (n, 2), elements=floats(0.0, 1.0)))
    scale = np.array([W, H], dtype=np.float64)
    centre, wh = u * scale, size * scale
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=-1).reshape(n, 4)
    return boxes, S, (H, W)


@st.composite
def dfl_logits(draw, max_n: int = 8):
    """(logits [N, 4 * reg_max], reg_max) with reg_max in {1, 2, 8, 16}."""
    reg_max = draw(st.sampled_from([1, 2, 8, 16]))
    n = draw(st.integers(0, max_n))
    return draw(hnp.arrays(np.float64, (n, 4 * reg_max), elements=floats(-20.0, 20.0))), reg_max


@st.composite
def level_sizes(draw, max_levels: int = 3, max_side: int = 6):
    """(sizes [(ny, nx)] per level, strides [L] float64 = 8 * 2**level)."""
    n_levels = draw(st.integers(1, max_levels))
    sizes = [(draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
             for _ in range(n_levels)]
    return sizes, 8.0 * 2.0 ** np.arange(n_levels)


# --- nms ---
# Inputs of ``nms.py``: scores with ties and NaN, thresholds including the edges, boxes on a
# 1/4-pixel grid (exact under torchvision's batched_nms coordinate offset in float32) and YOLO
# head outputs. All float64 NumPy.


def nms_thresholds() -> st.SearchStrategy[float]:
    """IoU thresholds: the usual range plus the edges 0, 0.5 and 1."""
    return st.one_of(st.sampled_from([0.0, 0.3, 0.45, 0.5, 0.7, 1.0]), floats(0.0, 1.0))


@st.composite
def nms_scores(draw, n: int) -> np.ndarray:
    """[N] scores: continuous, tied (3 values) or tied with some NaN (NaN sorts first in NMS)."""
    kind = draw(st.sampled_from(["continuous", "ties", "nan"]))
    if kind == "nan":
        return draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.25, 0.5, np.nan])))
    return draw(scores(n, ties=kind == "ties"))


@st.composite
def nms_boxes_and_scores(draw, max_n: int = MAX_BOXES, min_n: int = 0,
                         degenerate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4], scores [N]): ordinary, clustered (heavy overlap) or degenerate boxes."""
    n = draw(st.integers(min_n, max_n))
    families = [boxes_xyxy(n=n), clustered_boxes_xyxy(n=n)]
    if degenerate:
        families.append(degenerate_boxes_xyxy(n=n))
    b = draw(st.one_of(*families))
    return b, draw(nms_scores(n))


@st.composite
def grid_boxes_xyxy(draw, n: int, max_coord: int = 64) -> np.ndarray:
    """[N, 4] non-negative boxes whose coordinates are multiples of 1/4 in [0, max_coord], with
    positive sizes and many overlaps (float32-exact after torchvision's class offsets)."""
    q = draw(hnp.arrays(np.int64, (n, 4), elements=st.integers(0, 4 * max_coord // 2)))
    x1, y1 = q[:, 0], q[:, 1]
    w, h = 1 + q[:, 2] // 2, 1 + q[:, 3] // 2
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1).astype(np.float64).reshape(n, 4) / 4


@st.composite
def yolo_predictions(draw, version: str = "v5", max_b: int = 2, max_a: int = 24,
                     max_nc: int = 4) -> np.ndarray:
    """Head outputs after the sigmoid: v5 [B, A, 5 + nc] (cx, cy, w, h, obj, cls...) or v8
    [B, 4 + nc, A]; centres clustered in a 160-pixel image so that boxes overlap, scores in
    [0, 1] drawn from a few levels (ties included) or continuous."""
    b = draw(st.integers(1, max_b))
    a = draw(st.integers(0, max_a))
    nc = draw(st.integers(1, max_nc))
    n_scores = 1 + nc if version == "v5" else nc
    xy = draw(hnp.arrays(np.float64, (b, a, 2), elements=floats(20.0, 140.0)))
    wh = draw(hnp.arrays(np.float64, (b, a, 2), elements=floats(4.0, 60.0)))
    s = draw(st.one_of(
        hnp.arrays(np.float64, (b, a, n_scores), elements=floats(0.0, 1.0)),
        hnp.arrays(np.float64, (b, a, n_scores), elements=st.sampled_from([0.1, 0.3, 0.6, 0.9]))))
    rows = np.concatenate([xy, wh, s], axis=-1)
    return rows if version == "v5" else np.swapaxes(rows, 1, 2).copy()


# --- formats ---
# Detection data sets (``ref_numpy.formats.DetectionSet``), valid by construction.
FORMAT_KINDS = ("coco", "yolo", "voc")


@st.composite
def detection_sets(draw, kind: str = "coco", max_images: int = 4, max_annotations: int = 8,
                   whole_pixels: bool | None = None, with_scores: bool | None = None):
    """A ``DetectionSet`` holding what format ``kind`` can represent, so a write/read round
    trip through that format must give it back.

    - "coco": anything the model holds: arbitrary unique ids in any order, non-contiguous
      category ids, crowd flags, optional ``difficult`` and ``score``, any ``area``, boxes
      that may reach past the image.
    - "yolo" / "voc": the canonical form their readers produce: image ids 1..n in file-name
      order, annotation ids 1..m in image order, category ids 0..K-1, ``iscrowd = 0``,
      ``area = w * h``, boxes inside the image; "voc" adds ``difficult``, "yolo" may add a
      ``score`` to every annotation (``with_scores``). ``whole_pixels`` draws integer boxes.
    N = 0 images and annotations are allowed.
    """
    from ref_numpy.formats import DetectionSet

    if whole_pixels is None:
        whole_pixels = draw(st.booleans())
    if with_scores is None:
        with_scores = kind != "voc" and draw(st.booleans())
    n_images = draw(st.integers(0, max_images))
    canonical = kind != "coco"
    if canonical:
        image_ids = list(range(1, n_images + 1))
        cat_ids = list(range(draw(st.integers(1, 4))))
    else:
        image_ids = draw(st.lists(st.integers(0, 10**6), min_size=n_images, max_size=n_images,
                                  unique=True))
        cat_ids = draw(st.lists(st.integers(0, 100), min_size=1, max_size=4, unique=True))
    images = [{"id": i, "file_name": f"img_{k:03d}.jpg", "width": w, "height": h}
              for k, (i, (h, w)) in enumerate(zip(image_ids, [draw(image_sizes(1, 2048))
                                                             for _ in image_ids]))]
    categories = [{"id": c, "name": f"class_{c}"} for c in cat_ids]
    annotations = []
    n_ann = draw(st.integers(0, max_annotations)) if images else 0
    owners = sorted(draw(st.lists(st.integers(0, len(images) - 1), min_size=n_ann,
                                  max_size=n_ann))) if images else []
    ann_ids = (list(range(1, n_ann + 1)) if canonical else
               draw(st.lists(st.integers(1, 10**6), min_size=n_ann, max_size=n_ann, unique=True)))
    for ann_id, k in zip(ann_ids, owners):
        W, H = images[k]["width"], images[k]["height"]
        if whole_pixels:
            x, y = draw(st.integers(0, W)), draw(st.integers(0, H))
            w, h = draw(st.integers(0, W - x)), draw(st.integers(0, H - y))
        elif canonical:
            x, y = draw(floats(0.0, 1.0)) * W, draw(floats(0.0, 1.0)) * H
            w, h = draw(floats(0.0, 1.0)) * (W - x), draw(floats(0.0, 1.0)) * (H - y)
        else:
            x, y = draw(floats(-100.0, 2 * W)), draw(floats(-100.0, 2 * H))
            w, h = draw(floats(0.0, 2 * W)), draw(floats(0.0, 2 * H))
        ann = {"id": ann_id, "image_id": images[k]["id"],
               "category_id": draw(st.sampled_from(cat_ids)),
               "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h),
               "iscrowd": 0}
        if not canonical:
            ann["area"] = draw(st.one_of(st.just(ann["area"]), floats(0.0, 1e6)))
            ann["iscrowd"] = int(draw(st.booleans()))
            if draw(st.booleans()):
                ann["difficult"] = int(draw(st.booleans()))
        if kind == "voc":
            ann["difficult"] = int(draw(st.booleans()))
        if with_scores:
            ann["score"] = draw(floats(0.0, 1.0))
        annotations.append(ann)
    if not canonical:
        annotations = draw(st.permutations(annotations))
    return DetectionSet(images=images, categories=categories, annotations=list(annotations))


# --- metrics ---

@st.composite
def coco_datasets(draw, max_images: int = 5, max_cats: int = 3, max_gt: int = 6,
                  max_extra_dets: int = 6) -> tuple[dict, list]:
    """(COCO ground-truth dict, results list) small enough for pycocotools in a test.

    Covers: empty images, images with only crowd GTs, categories absent from the GT or from the
    results (and results of a category not in the GT's list), score ties within and across
    images, GT areas exactly 32^2 and 96^2, detections at IoU exactly 0.5 / 0.75 / 1 of a GT
    (xywh on a 1/4-pixel grid, so IoU is exact), image ids from 1 or large, annotation ids from
    1 (pycocotools miscounts id 0) and, sometimes, one image with more than 100 detections.
    """
    base = draw(st.sampled_from([1, 7, 10 ** 9]))
    n_img = draw(st.integers(1, max_images))
    img_ids = [base + 3 * i for i in range(n_img)]
    n_cat = draw(st.integers(1, max_cats))
    cat_ids = [draw(st.sampled_from([1, 2, 5, 90, 10 ** 6])) + 1000 * k for k in range(n_cat)]
    coord = st.integers(0, 200).map(lambda v: v / 4)
    size = st.integers(1, 160).map(lambda v: v / 4)
    score = st.one_of(st.sampled_from([0.25, 0.5, 0.75]), floats(0.0, 1.0))
    anns, results = [], []
    for img in img_ids:
        kind = draw(st.sampled_from(["normal", "normal", "empty", "crowd_only"]))
        n_gt = 0 if kind == "empty" else draw(st.integers(1, max_gt))
        for _ in range(n_gt):
            x, y, w, h = draw(coord), draw(coord), draw(size), draw(size)
            c = draw(st.sampled_from(cat_ids))
            area = draw(st.sampled_from([w * h, w * h, 1024.0, 9216.0, w * h * 0.7]))
            crowd = 1 if kind == "crowd_only" else int(draw(st.integers(0, 9)) == 0)
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": c,
                         "bbox": [x, y, w, h], "area": area, "iscrowd": crowd})
            for _ in range(draw(st.integers(0, 3))):
                how = draw(st.sampled_from(["same", "half", "three_q", "jitter", "other_cat"]))
                if how == "same":
                    b = [x, y, w, h]
                elif how == "half":      # IoU exactly 0.5
                    b = [x, y, w / 2, h]
                elif how == "three_q":   # IoU exactly 0.75
                    b = [x, y, w * 0.75, h]
                else:
                    b = [x + draw(st.integers(-8, 8)) / 4, y + draw(st.integers(-8, 8)) / 4,
                         w + draw(st.integers(0, 8)) / 4, h + draw(st.integers(0, 8)) / 4]
                cc = draw(st.sampled_from(cat_ids + [77777])) if how == "other_cat" else c
                results.append({"image_id": img, "category_id": cc, "bbox": b,
                                "score": draw(score)})
        for _ in range(draw(st.integers(0, max_extra_dets))):
            results.append({"image_id": img, "category_id": draw(st.sampled_from(cat_ids)),
                            "bbox": [draw(coord), draw(coord), draw(size), draw(size)],
                            "score": draw(score)})
    if draw(st.integers(0, 9)) == 0:  # one image with more than 100 detections of one class
        img, c = draw(st.sampled_from(img_ids)), draw(st.sampled_from(cat_ids))
        for i in range(draw(st.integers(101, 130))):
            results.append({"image_id": img, "category_id": c,
                            "bbox": [float(i % 20), float(i % 7), 20.0, 20.0],
                            "score": [0.25, 0.5, 0.75][i % 3]})
    order = draw(st.permutations(range(len(results))))
    results = [results[i] for i in order]
    gt = {"images": [{"id": i} for i in img_ids], "categories": [{"id": c} for c in cat_ids],
          "annotations": anns}
    return gt, results


@st.composite
def pr_curves(draw, max_n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(recall [N] non-decreasing in [0, 1], precision [N] in [0, 1]), with repeated values."""
    n = draw(st.integers(0, max_n))
    step = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
    rec = np.cumsum(step) / max(int(step.sum()), 1) * draw(st.sampled_from([1.0, 0.5, 0.8]))
    prec = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(
        st.sampled_from([0.0, 0.5, 1.0]), floats(0.0, 1.0))))
    return rec.astype(np.float64), prec


@st.composite
def ultralytics_stats(draw, max_n: int = 30, n_thr: int = 3, max_cls: int = 4):
    """(tp bool [N, T], conf [N], pred_cls [N], target_cls [M]) as the val loop of YOLOv5 v7.0 /
    Ultralytics 8.3, 8.4."""
    n = draw(st.integers(0, max_n))
    tp = draw(hnp.arrays(np.bool_, (n, n_thr)))
    conf = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(
        st.sampled_from([0.1, 0.5, 0.9]), floats(0.0, 1.0))))
    pred_cls = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, max_cls - 1)))
    m = draw(st.integers(0, 12))
    target_cls = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, max_cls - 1)))
    # valid: per class and threshold at most as many true positives as labels (recall <= 1)
    n_l = np.bincount(target_cls, minlength=max_cls)[pred_cls]                     # [N]
    for c in range(max_cls):
        rows = pred_cls == c
        tp[rows] &= np.cumsum(tp[rows], axis=0) <= n_l[rows][:, None]
    return tp, conf, pred_cls, target_cls


@st.composite
def class_iou_problems(draw, max_n: int = 10, max_m: int = 8):
    """(pred_classes [N], true_classes [M], iou [M, N], thresholds [T]) with IoU ties and values
    exactly on the thresholds."""
    n, m = draw(st.integers(0, max_n)), draw(st.integers(0, max_m))
    thr = np.linspace(0.5, 0.95, 10)
    iou = draw(hnp.arrays(np.float64, (m, n), elements=st.one_of(
        st.sampled_from([0.0, 0.5, 0.75, 0.9, 1.0]), floats(0.0, 1.0))))
    pc = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2)))
    tc = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, 2)))
    return pc, tc, iou, thr


@st.composite
def yolo_detections_and_labels(draw, max_n: int = 10, max_m: int = 6, nc: int = 3):
    """(detections [N, 6] = xyxy, conf, class; labels [M, 5] = class, xyxy) on a coarse grid so
    that IoU ties and exact duplicates are common."""
    n, m = draw(st.integers(0, max_n)), draw(st.integers(0, max_m))
    grid = st.integers(0, 8).map(float)
    def boxes(k):
        xy = draw(hnp.arrays(np.float64, (k, 2), elements=grid))
        wh = draw(hnp.arrays(np.float64, (k, 2), elements=st.integers(1, 6).map(float)))
        return np.concatenate([xy, xy + wh], 1).reshape(k, 4)
    conf = draw(hnp.arrays(np.float64, (n, 1), elements=st.sampled_from([0.1, 0.3, 0.6, 0.9])))
    dc = draw(hnp.arrays(np.int64, (n, 1), elements=st.integers(0, nc - 1))).astype(np.float64)
    lc = draw(hnp.arrays(np.int64, (m, 1), elements=st.integers(0, nc - 1))).astype(np.float64)
    return (np.concatenate([boxes(n), conf, dc], 1).reshape(n, 6),
            np.concatenate([lc, boxes(m)], 1).reshape(m, 5))


@st.composite
def voc_datasets(draw, max_images: int = 4, max_gt: int = 5, max_dets: int = 25, nc: int = 3):
    """Per-image GT (boxes xyxy on an integer grid, labels, difficult) and flat detections
    (boxes, scores with ties, labels, image indices)."""
    n_img = draw(st.integers(1, max_images))
    def boxes(k):
        xy = draw(hnp.arrays(np.float64, (k, 2), elements=st.integers(0, 30).map(float)))
        wh = draw(hnp.arrays(np.float64, (k, 2), elements=st.integers(0, 20).map(float)))
        return np.concatenate([xy, xy + wh], 1).reshape(k, 4)
    gb, gl, gd = [], [], []
    for _ in range(n_img):
        g = draw(st.integers(0, max_gt))
        gb.append(boxes(g))
        gl.append(draw(hnp.arrays(np.int64, (g,), elements=st.integers(0, nc - 1))))
        gd.append(draw(hnp.arrays(np.bool_, (g,))))
    n = draw(st.integers(0, max_dets))
    db = boxes(n)
    ds = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(
        st.sampled_from([0.2, 0.5, 0.9]), floats(0.0, 1.0))))
    dl = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, nc - 1)))
    di = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_img - 1)))
    return {"gt_boxes": gb, "gt_labels": gl, "det_boxes": db, "det_scores": ds,
            "det_labels": dl, "det_image_ids": di, "gt_difficult": gd}


# --- assign ---
# Inputs of ``assign.py``: YOLO target rows with planted edge cases (cell borders, image border,
# tiny and huge boxes, duplicates), per-level anchors and grids, YOLOv1/v3 predictions and
# Ultralytics 8.3 / 8.4 TAL problems. All float64 NumPy.

@st.composite
def yolo_targets(draw, bs: int = 2, max_nt: int = 12, nc: int = 5, dyadic: bool = False) -> np.ndarray:
    """[nt, 6] rows ``(image, class, cx, cy, w, h)``, box normalised, centre in [0, 1], sides in
    [0, 1]. Each row is one of: ordinary; centre on a multiple of 1/64 (cell borders and half
    cells of every grid dividing 64 or 128); centre on the image border (0 or 1); tiny (sides
    in [0, 1e-3], zero included); huge (sides in [0.8, 1]); a duplicate of row 0. With
    ``dyadic`` every value is a multiple of 1/1024, so that ``1 - cx`` and ``cx * n`` (n <= 64)
    are exact (mirror tests)."""
    nt = draw(st.integers(0, max_nt))
    img = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, bs - 1)))
    cls = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, nc - 1)))
    kind = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, 5)))
    if dyadic:
        xy = draw(hnp.arrays(np.int64, (nt, 2), elements=st.integers(0, 1024))) / 1024.0
        wh = draw(hnp.arrays(np.int64, (nt, 2), elements=st.integers(0, 1024))) / 1024.0
    else:
        xy = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.0, 1.0)))
        wh = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.0, 1.0)))
    border = draw(hnp.arrays(np.int64, (nt, 2), elements=st.integers(0, 64))) / 64.0
    edge = draw(hnp.arrays(np.float64, (nt, 2), elements=st.sampled_from([0.0, 1.0])))
    tiny = draw(hnp.arrays(np.float64, (nt, 2), elements=st.sampled_from([0.0, 2.0 ** -12, 2.0 ** -10])))
    huge = draw(hnp.arrays(np.float64, (nt, 2), elements=st.sampled_from([0.8125, 0.9375, 1.0])))
    xy = np.where((kind == 1)[:, None], border, xy)
    xy = np.where((kind == 2)[:, None], edge, xy)
    wh = np.where((kind == 3)[:, None], tiny, wh)
    wh = np.where((kind == 4)[:, None], huge, wh)
    t = np.concatenate([img[:, None], cls[:, None], xy, wh], axis=1).astype(np.float64).reshape(nt, 6)
    if nt > 1:
        t[kind == 5] = t[0]
    return t


@st.composite
def yolo_anchor_levels(draw, max_levels: int = 3, max_na: int = 3, max_grid: int = 12,
                       pow2: bool = False) -> tuple[np.ndarray, list]:
    """(anchors [nl, na, 2] in grid units in [0.125, 8], grid sizes [(ny, nx)] drawn per level,
    not square in general; with ``pow2`` sides are powers of two up to 64)."""
    nl, na = draw(st.integers(1, max_levels)), draw(st.integers(1, max_na))
    side = st.sampled_from([1, 2, 4, 8, 16, 32, 64]) if pow2 else st.integers(1, max_grid)
    grids = [(draw(side), draw(side)) for _ in range(nl)]
    anchors = draw(hnp.arrays(np.float64, (nl, na, 2), elements=floats(0.125, 8.0)))
    return anchors, grids


@st.composite
def yolov1_problem(draw, max_nt: int = 10) -> dict:
    """``pred_boxes`` [bs, S, S, B, 4] (x, y offsets, sqrt w, sqrt h in [0, 1]; values often
    tied) and ``targets`` whose image ids are < bs."""
    bs, S, B = draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 3))
    elems = st.one_of(floats(0.0, 1.0), st.sampled_from([0.0, 0.25, 0.5]))
    pred = draw(hnp.arrays(np.float64, (bs, S, S, B, 4), elements=elems))
    return {"pred_boxes": pred, "targets": draw(yolo_targets(bs=bs, max_nt=max_nt))}


@st.composite
def yolov3_problem(draw, max_nt: int = 10) -> dict:
    """Targets, anchors, grids and decoded predictions per level (cxcywh normalised; some set
    equal to a target so that the ignore rule fires)."""
    anchors, grids = draw(yolo_anchor_levels(max_grid=6))
    bs = draw(st.integers(1, 2))
    t = draw(yolo_targets(bs=bs, max_nt=max_nt))
    preds = []
    for ny, nx in grids:
        p = draw(hnp.arrays(np.float64, (bs, anchors.shape[1], ny, nx, 4), elements=floats(0.0, 1.0)))
        if len(t):
            copy = draw(hnp.arrays(np.int64, p.shape[:4], elements=st.integers(-len(t), len(t) - 1)))
            p = np.where((copy >= 0)[..., None], t[np.maximum(copy, 0), 2:6], p)
        preds.append(p)
    return {"targets": t, "anchors": anchors, "grid_sizes": grids, "pred_boxes": preds}


def _tal_anchor_points(height: int, width: int, strides=(8, 16)) -> np.ndarray:
    pts = []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(height // s) + 0.5, np.arange(width // s) + 0.5, indexing="ij")
        pts.append(np.stack([xs, ys], -1).reshape(-1, 2) * s)
    return np.concatenate(pts).astype(np.float64)


@st.composite
def tal_problem(draw, max_bs: int = 2, max_n: int = 5, max_nc: int = 4) -> dict:
    """Keyword arguments of ``task_aligned_assign`` on a small two-level image (strides 8, 16,
    16..48 px a side): scores in [0, 1] (often tied), predicted boxes around their anchor, GTs
    that are ordinary, tiny (< 8 px), edged exactly on anchor centres, or duplicates; padding
    rows (mask 0) anywhere, zeroed or not; topk in [1, min(13, A)]; version '8.3' or '8.4'
    (ultralytics 8.4.190's small-object rule: sides < strides[1] = 16 px enlarged to 16)."""
    height, width = 16 * draw(st.integers(1, 3)), 16 * draw(st.integers(1, 3))
    anc = _tal_anchor_points(height, width)
    A = len(anc)
    bs, n, nc = draw(st.integers(1, max_bs)), draw(st.integers(0, max_n)), draw(st.integers(1, max_nc))
    score_el = st.one_of(floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 1.0]))
    scores = draw(hnp.arrays(np.float64, (bs, A, nc), elements=score_el))
    dist = draw(hnp.arrays(np.float64, (bs, A, 4), elements=floats(0.0, 24.0)))
    pd = np.concatenate([anc - dist[..., :2], anc + dist[..., 2:]], axis=-1)
    x1 = draw(hnp.arrays(np.float64, (bs, n), elements=floats(0.0, width - 1.0)))
    y1 = draw(hnp.arrays(np.float64, (bs, n), elements=floats(0.0, height - 1.0)))
    w = draw(hnp.arrays(np.float64, (bs, n), elements=floats(0.5, float(width))))
    h = draw(hnp.arrays(np.float64, (bs, n), elements=floats(0.5, float(height))))
    kind = draw(hnp.arrays(np.int64, (bs, n), elements=st.integers(0, 3)))
    w = np.where(kind == 1, np.minimum(w, 6.0), w)
    h = np.where(kind == 1, np.minimum(h, 6.0), h)
    x1 = np.where(kind == 2, np.floor(x1 / 8) * 8 + 4, x1)  # left edge exactly on a P3 centre
    gt = np.stack([x1, y1, x1 + w, y1 + h], -1)
    if n > 1:
        gt = np.where((kind == 3)[..., None], gt[:, :1], gt)
    labels = draw(hnp.arrays(np.int64, (bs, n, 1), elements=st.integers(0, nc - 1))).astype(np.float64)
    mask = draw(hnp.arrays(np.int64, (bs, n, 1), elements=st.integers(0, 1))).astype(np.float64)
    if draw(st.booleans()):
        gt = gt * mask
        labels = labels * mask
    return {"pd_scores": scores, "pd_bboxes": pd, "anc_points": anc, "gt_labels": labels,
            "gt_bboxes": gt.reshape(bs, n, 4), "mask_gt": mask, "topk": draw(st.integers(1, min(13, A))),
            "num_classes": nc, "version": draw(st.sampled_from(["8.3", "8.4"])),
            "strides": (8.0, 16.0)}



# --- loss ---
# Small inputs for the losses of ``loss.py``: aligned box pairs, logits with labels, YOLOv1 grids
# and multi-level YOLO head outputs with matching targets. All float64 NumPy.

@st.composite
def aligned_box_pairs(draw, max_n: int = 8, min_n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(boxes1 [N, 4], boxes2 [N, 4]) valid xyxy boxes of one length, mixing random pairs and
    overlapping ones (boxes2 a jittered copy of boxes1)."""
    n = draw(st.integers(min_n, max_n))
    b1 = draw(boxes_xyxy(n=n, max_coord=200.0, max_size=100.0))
    if draw(st.booleans()):
        return b1, draw(boxes_xyxy(n=n, max_coord=200.0, max_size=100.0))
    jitter = draw(hnp.arrays(np.float64, (n, 4), elements=floats(-0.3, 0.3)))
    wh = np.concatenate([b1[:, 2:] - b1[:, :2]] * 2, axis=1) if n else np.zeros((0, 4))
    b2 = b1 + jitter * wh
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.25)  # keep x1 < x2, y1 < y2
    return b1, b2


@st.composite
def logits_and_labels(draw, max_n: int = 12, soft: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, K], labels [N, K]) with logits in [-15, 15] and labels in {0, 1} (or soft in
    [0, 1] when ``soft``; drawn if None)."""
    shape = (draw(st.integers(0, max_n)), draw(st.integers(1, 3)))
    x = draw(hnp.arrays(np.float64, shape, elements=floats(-15.0, 15.0)))
    if soft is None:
        soft = draw(st.booleans())
    y = draw(hnp.arrays(np.float64, shape, elements=floats(0.0, 1.0) if soft else st.sampled_from([0.0, 1.0])))
    return x, y


@st.composite
def yolov1_grids(draw, max_s: int = 3, max_b: int = 3, max_c: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(preds [N, S, S, B*5 + C], targets [N, S, S, 5 + C]) for ``yolov1_loss``: predictions in
    [-1.5, 1.5]; object cells (about half) carry x, y in [0, 1), w, h in [0.01, 1] and a one-hot
    class; empty cells are all zero."""
    n, s = draw(st.integers(1, 2)), draw(st.integers(1, max_s))
    b, c = draw(st.integers(1, max_b)), draw(st.integers(0, max_c))
    preds = draw(hnp.arrays(np.float64, (n, s, s, 5 * b + c), elements=floats(-1.5, 1.5)))
    obj = draw(hnp.arrays(np.bool_, (n, s, s)))
    xy = draw(hnp.arrays(np.float64, (n, s, s, 2), elements=floats(0.0, 0.999)))
    wh = draw(hnp.arrays(np.float64, (n, s, s, 2), elements=floats(0.01, 1.0)))
    cls = draw(hnp.arrays(np.int64, (n, s, s), elements=st.integers(0, max(c - 1, 0))))
    onehot = (np.arange(c) == cls[..., None]).astype(np.float64)
    targets = np.concatenate([xy, wh, np.ones((n, s, s, 1)), onehot], axis=-1) * obj[..., None]
    return preds, targets


@st.composite
def yolo_head_outputs(draw, max_levels: int = 3, max_grid: int = 2, max_targets: int = 8,
                      pixels: bool = False, limit: float = 4.0) -> dict:
    """A multi-level YOLO head batch for the anchor-based losses.

    Returns a dict: ``preds`` (list of [bs, na, ny, nx, 5 + nc], raw values in [-limit, limit]),
    ``targets`` [nt, 6] ``(image, class, cx, cy, w, h)``, ``anchors`` [nl, na, 2], ``strides``.
    Normalised targets (x, y in [0, 1], w, h in [0.01, 1]) and anchors in grid units of each level
    ([0.25, 6]); with ``pixels`` targets and anchors are in pixels of a ``nx*stride`` image.
    Level l has a grid ``2^(nl-1-l)`` times the last one, stride ``8 * 2^l``.
    """
    nl, bs, na = draw(st.integers(1, max_levels)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    nc = draw(st.integers(1, 4))
    ny0, nx0 = draw(st.integers(1, max_grid)), draw(st.integers(1, max_grid))
    grids = [(ny0 * 2 ** (nl - 1 - i), nx0 * 2 ** (nl - 1 - i)) for i in range(nl)]
    strides = [8.0 * 2 ** i for i in range(nl)]
    preds = [draw(hnp.arrays(np.float64, (bs, na, ny, nx, 5 + nc), elements=floats(-limit, limit)))
             for ny, nx in grids]
    nt = draw(st.integers(0, max_targets))
    img = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, bs - 1)))
    cls = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, nc - 1)))
    xy = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.0, 1.0)))
    wh = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.01, 1.0)))
    anchors = draw(hnp.arrays(np.float64, (nl, na, 2), elements=floats(0.25, 6.0)))
    if pixels:
        size = np.array([grids[0][1] * strides[0], grids[0][0] * strides[0]])
        xy, wh = xy * size, wh * size
        anchors = anchors * np.array(strides)[:, None, None]
    targets = np.concatenate([img[:, None], cls[:, None], xy, wh], axis=1).astype(np.float64)
    return {"preds": preds, "targets": targets.reshape(nt, 6), "anchors": anchors,
            "strides": strides}


@st.composite
def yolov8_head_outputs(draw, max_levels: int = 2, max_grid: int = 3, max_targets: int = 6,
                        limit: float = 4.0) -> dict:
    """An anchor-free (Ultralytics 8.3 / 8.4 YOLOv8) head batch: ``preds`` list of [bs, 4*reg_max + nc, ny, nx]
    raw values in [-limit, limit], ``targets`` [nt, 6] normalised ``(image, class, cx, cy, w, h)``
    (w, h in [0.05, 1]), ``strides`` (8, 16, ...) and ``reg_max`` in {2, 4, 16}. Level l has a
    grid ``2^(nl-1-l)`` times the last one."""
    nl, bs, nc = draw(st.integers(1, max_levels)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    reg_max = draw(st.sampled_from([2, 4, 16]))
    ny0, nx0 = draw(st.integers(1, max_grid)), draw(st.integers(1, max_grid))
    grids = [(ny0 * 2 ** (nl - 1 - i), nx0 * 2 ** (nl - 1 - i)) for i in range(nl)]
    preds = [draw(hnp.arrays(np.float64, (bs, 4 * reg_max + nc, ny, nx), elements=floats(-limit, limit)))
             for ny, nx in grids]
    nt = draw(st.integers(0, max_targets))
    img = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, bs - 1)))
    cls = draw(hnp.arrays(np.int64, (nt,), elements=st.integers(0, nc - 1)))
    xy = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.0, 1.0)))
    wh = draw(hnp.arrays(np.float64, (nt, 2), elements=floats(0.05, 1.0)))
    targets = np.concatenate([img[:, None], cls[:, None], xy, wh], axis=1).astype(np.float64)
    return {"preds": preds, "targets": targets.reshape(nt, 6),
            "strides": [8.0 * 2 ** i for i in range(nl)], "reg_max": reg_max}


# --- anchors ---
# Label sizes and anchor sets in pixels for ``anchors.py`` (YOLOv5 autoanchor). Sizes are
# positive by construction; ``anchors_and_labels`` plants labels exactly at the fit boundary
# (label = anchor * 4 or / 4: x == 1/thr, which does NOT count) and exactly on an anchor (x == 1).
# Powers of two keep the planted ratios exact after a cast to float32.

def label_sizes(max_n: int = 24, min_n: int = 1, lo: float = 1.0,
                hi: float = 600.0) -> st.SearchStrategy[np.ndarray]:
    """wh [N, 2] label widths and heights in pixels in [lo, hi], N in [min_n, max_n]; duplicates
    likely (Hypothesis repeats values)."""
    return st.integers(min_n, max_n).flatmap(
        lambda n: hnp.arrays(np.float64, (n, 2), elements=floats(lo, hi)))


@st.composite
def anchor_sets(draw, max_k: int = 9, lo: float = 2.0, hi: float = 600.0) -> np.ndarray:
    """anchors [K, 2] (K in [1, max_k]) or, one time in three, YOLOv5's [levels, 3, 2] layout."""
    if draw(st.integers(0, 2)) == 0:
        shape = (draw(st.integers(1, 3)), 3, 2)
    else:
        shape = (draw(st.integers(1, max_k)), 2)
    return draw(hnp.arrays(np.float64, shape, elements=floats(lo, hi)))


@st.composite
def anchors_and_labels(draw, max_n: int = 24, max_k: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """(wh [N, 2], anchors [..., 2]): random labels, some replaced by an anchor times 1, 4 or 1/4
    on one or both sides (boundary ties of the ratio metric at thr = 4)."""
    anchors = draw(anchor_sets(max_k=max_k))
    wh = draw(label_sizes(max_n=max_n)).copy()
    flat = anchors.reshape(-1, 2)
    n_planted = draw(st.integers(0, wh.shape[0]))
    for i in range(n_planted):
        a = flat[draw(st.integers(0, flat.shape[0] - 1))]
        f = np.array([draw(st.sampled_from([1.0, 4.0, 0.25])) for _ in range(2)])
        wh[i] = a * f
    return wh, anchors


@st.composite
def yolo_label_sets(draw, max_n: int = 16, max_images: int = 4) -> tuple:
    """(wh [N, 2] normalised in (0, 1], image_index [N] int64, shapes [M, 2] image (width, height)
    in pixels) for ``wh_from_labels``."""
    m = draw(st.integers(1, max_images))
    n = draw(st.integers(0, max_n))
    wh = draw(hnp.arrays(np.float64, (n, 2), elements=floats(1e-3, 1.0)))
    idx = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, m - 1)))
    shapes = draw(hnp.arrays(np.float64, (m, 2), elements=st.integers(16, 2000).map(float)))
    return wh, idx, shapes


@st.composite
def fit_label_sizes(draw, max_n: int = 40) -> np.ndarray:
    """wh [N, 2] for ``kmean_anchors``: half the time a realistic data set (log-normal sizes in
    pixels, 4 <= N <= max_n, from a drawn seed, median and spread), else :func:`label_sizes`
    (edge cases: repeated values, sizes below the 2 px / 3 px filters)."""
    if draw(st.booleans()):
        return draw(label_sizes(min_n=4, max_n=max_n, lo=1.0, hi=400.0))
    n = draw(st.integers(4, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    mu, sigma = draw(floats(1.0, 5.0)), draw(floats(0.1, 1.5))
    return np.exp(rng.normal(mu, sigma, size=(n, 2))).clip(0.5, 2000.0)


# --- data ---

@st.composite
def uint8_images(draw, lo: int = 8, hi: int = 96) -> np.ndarray:
    """A noisy RGB image ``[H, W, 3]`` uint8 with ``lo <= H, W <= hi`` (from a drawn seed: cheap
    to generate and shrink)."""
    h, w = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@st.composite
def boxes_inside(draw, height: int, width: int, max_n: int = 6, min_side: float = 0.0):
    """xyxy float64 boxes ``[N, 4]`` inside ``[0, width] x [0, height]`` with sides >=
    ``min_side`` (which must fit); N = 0 allowed."""
    n = draw(st.integers(0, max_n))
    out = np.zeros((n, 4))
    for i in range(n):
        bw = draw(floats(min_side, float(width)))
        bh = draw(floats(min_side, float(height)))
        x1 = draw(floats(0.0, width - bw))
        y1 = draw(floats(0.0, height - bh))
        out[i] = (x1, y1, min(x1 + bw, width), min(y1 + bh, height))
    return out


@st.composite
def pixel_rectangles(draw, height: int, width: int, min_side: int = 1):
    """An integer rectangle ``(x1, y1, x2, y2)`` of whole pixels inside a ``height x width``
    image, sides >= ``min_side``."""
    x1 = draw(st.integers(0, width - min_side))
    y1 = draw(st.integers(0, height - min_side))
    x2 = draw(st.integers(x1 + min_side, width))
    y2 = draw(st.integers(y1 + min_side, height))
    return x1, y1, x2, y2
