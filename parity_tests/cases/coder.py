"""Registry rows for ``coder``: YOLO encoders/decoders and grids.

No external oracle implements these conventions as a library function (darknet, yolov5 and
ultralytics keep them inside model code), so every row is reference == port; the formulas are
pinned by the round-trip and known-value tests of ``test_coder.py``.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase
from ref_numpy.coder import make_grid


def _yolov1_encode():
    return S.yolov1_inputs().map(
        lambda t: Call((t[0],), {"S": t[1], "image_size": t[2]}))


@st.composite
def _yolov1_decode(draw):
    grid_form = draw(st.booleans())
    n_cells = draw(st.integers(1, 7))
    size = draw(S.image_sizes(32, 1024))
    if grid_form:  # raw [B, S, S, 4] against make_grid(S, S) [S, S, 2]
        b = draw(st.integers(0, 2))
        shape = (b, n_cells, n_cells, 4)
        grid = make_grid(n_cells, n_cells)
    else:
        n = draw(st.integers(0, 12))
        shape = (n, 4)
        grid = draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, n_cells - 1)))
    raw = draw(hnp.arrays(np.float64, shape, elements=S.floats(-0.25, 1.25)))
    return Call((raw, grid), {"S": n_cells, "image_size": size})


def _yolov3_encode():
    return st.tuples(S.coder_cell_inputs("v3"), st.booleans()).map(
        lambda t: Call(t[0], {"logits": t[1]}))


def _yolov5_encode():
    return S.coder_cell_inputs("v5").map(lambda t: Call(t))


def _head_decode():
    return S.coder_raw_inputs().map(lambda t: Call(t))


@st.composite
def _dist2bbox(draw):
    xywh = draw(st.booleans())
    if draw(st.booleans()):  # head layout: distance [B, 4, A], anchor_points [1, 2, A], dim=1
        b, a = draw(st.integers(1, 2)), draw(st.integers(0, 10))
        d = draw(hnp.arrays(np.float64, (b, 4, a), elements=S.floats(-5.0, 50.0)))
        p = draw(hnp.arrays(np.float64, (1, 2, a), elements=S.floats(0.0, 100.0)))
        return Call((d, p), {"xywh": xywh, "dim": 1})
    n = draw(st.integers(0, 12))
    d = draw(hnp.arrays(np.float64, (n, 4), elements=S.floats(-5.0, 50.0)))
    p = draw(hnp.arrays(np.float64, (n, 2), elements=S.floats(0.0, 100.0)))
    return Call((d, p), {"xywh": xywh})


@st.composite
def _bbox2dist(draw):
    n = draw(st.integers(0, 12))
    boxes = draw(S.boxes_xyxy(n=n, max_coord=100.0, max_size=40.0))
    p = draw(hnp.arrays(np.float64, (n, 2), elements=S.floats(-10.0, 150.0)))
    reg_max = draw(st.sampled_from([2, 16, None]))
    return Call((p, boxes, reg_max))


def _dfl_decode():
    return S.dfl_logits().map(lambda t: Call((t[0],), {"reg_max": t[1]}))


def _make_grid():
    return st.tuples(st.integers(1, 12), st.integers(1, 12)).map(lambda t: Call(t))


@st.composite
def _make_anchor_grid(draw):
    sizes, strides = draw(S.level_sizes())
    n_anchors = draw(st.integers(1, 3))
    anchors = draw(hnp.arrays(np.float64, (len(sizes), n_anchors, 2),
                              elements=S.floats(2.0, 400.0)))
    return Call((anchors, strides, sizes))


@st.composite
def _make_anchors(draw):
    sizes, strides = draw(S.level_sizes())
    offset = draw(st.sampled_from([0.5, 0.0]))
    return Call((sizes, strides), {"grid_cell_offset": offset})


def _tutorial_decode():
    return S.yolo_head_outputs(pixels=True).map(lambda h: Call((h["preds"], h["anchors"], h["strides"])))


@st.composite
def _tutorial_detect(draw):
    """Decoded rows [bs, N, 5 + C]: xyxy boxes in a 64 px image, often stacked on one another
    (NMS acts), σ(obj) and σ(cls) in [0, 1]; thresholds that keep some rows."""
    bs, n, nc = draw(st.integers(1, 2)), draw(st.integers(0, 12)), draw(st.integers(1, 3))
    xy = draw(hnp.arrays(np.float64, (bs, n, 2), elements=S.floats(0.0, 40.0)))
    wh = draw(hnp.arrays(np.float64, (bs, n, 2), elements=S.floats(1.0, 24.0)))
    prob = draw(hnp.arrays(np.float64, (bs, n, 1 + nc), elements=S.floats(0.0, 1.0)))
    decoded = np.concatenate([xy, xy + wh, prob], -1)
    return Call((decoded,), {"conf_thres": draw(st.sampled_from([0.25, 0.05, 0.5])),
                             "iou_thres": draw(st.sampled_from([0.5, 0.3]))})


CASES = [
    ParityCase("coder.yolov1_encode", inputs=_yolov1_encode,
               note="cells (int64) compare exactly: both sides run the same IEEE ops"),
    ParityCase("coder.yolov1_decode", inputs=_yolov1_decode),
    ParityCase("coder.yolov3_encode", inputs=_yolov3_encode),
    ParityCase("coder.yolov3_decode", inputs=_head_decode),
    ParityCase("coder.yolov5_encode", inputs=_yolov5_encode),
    ParityCase("coder.yolov5_decode", inputs=_head_decode),
    ParityCase("coder.dist2bbox", inputs=_dist2bbox),
    ParityCase("coder.bbox2dist", inputs=_bbox2dist),
    ParityCase("coder.dfl_decode", inputs=_dfl_decode),
    ParityCase("coder.make_grid", inputs=_make_grid, dtypes=("float64",),
               note="integer in, int64 out: one dtype is enough"),
    ParityCase("coder.make_anchor_grid", inputs=_make_anchor_grid),
    ParityCase("coder.make_anchors", inputs=_make_anchors),
    ParityCase("coder.tutorial_decode", inputs=_tutorial_decode,
               note="seed_systems.md A: the write-up's decode, xyxy pixels, sigmoid scores"),
    ParityCase("coder.tutorial_detect_as_printed", inputs=_tutorial_detect,
               note="seed_systems.md A as printed: rows class by class (port: batched_nms + stable class sort)"),
    ParityCase("coder.tutorial_detect_corrected", inputs=_tutorial_detect,
               note="seed_systems.md A corrected: the same rows in score order"),
]
