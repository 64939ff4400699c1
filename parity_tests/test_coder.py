"""Tests of ``coder``: round trips in each convention's stated domain, known values, the grids,
bad input, and the port's batching/autograd. Reference == port on random inputs is the generic
harness's job (``test_registry.py``, rows in ``cases/coder.py``); the round trips here run on
both sides at float64 and float32.
"""
import inspect

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ref_numpy.coder as R
import torch_impl.coder as T
from parity_tests import strategies as S
from parity_tests.registry import CASES_BY_NAME
from parity_tests.sides import REF, get_side
from parity_tests.tolerances import EXACT, assert_parity

DTYPES = ("float64", "float32")
PORT = get_side("torch")
SIDES = (REF, PORT)


# Raw values whose decode -> encode round trip is well conditioned at float32: |t_xy| <= 3
# keeps the logit's amplification 1 / (σ(1 - σ)) <= 22, t_wh >= -2 keeps boxes >= 0.2 px
# (the size is recovered as x2 - x1 of pixel corners: a tinier box loses its relative precision).
RAW_DOMAIN = dict(xy=3.0, wh=(-2.0, 3.0))

both_sides = pytest.mark.parametrize("side", [pytest.param(REF, id="ref"), pytest.param(PORT, id="port")])
both_dtypes = pytest.mark.parametrize("dtype", DTYPES)


# ----------------------------------------------------------------------------- registry

def test_every_coder_function_has_a_row_at_both_dtypes():
    public = [n for n, f in vars(R).items() if inspect.isfunction(f) and not n.startswith("_")
              and f.__module__ == R.__name__]
    assert sorted(public) == sorted(R.__all__)
    for name in public:
        case = CASES_BY_NAME[f"coder.{name}"]
        assert case.inputs is not None
        if name != "make_grid":  # integer in, integer out
            assert set(case.dtypes) == set(DTYPES), name


# ----------------------------------------------------------------------------- strategies

@given(S.coder_cell_inputs("v5"))
def test_cell_inputs_lie_in_the_v5_domain(t):
    boxes, grid, anchors, stride = t
    s = np.broadcast_to(np.asarray(stride, dtype=np.float64).reshape(-1, 1), (len(boxes), 1))
    off = (boxes[:, :2] + boxes[:, 2:]) / 2 / s - grid
    ratio = (boxes[:, 2:] - boxes[:, :2]) / anchors
    assert np.all((off > -0.5) & (off < 1.5))
    assert np.all((ratio > 0) & (ratio < 4))
    assert np.all(grid >= 0) and np.all(grid * s < S.CODER_IMAGE)


@given(S.yolov1_inputs())
def test_yolov1_inputs_have_centres_in_the_image(t):
    boxes, n_cells, (h, w) = t
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    assert np.all((cx >= 0) & (cx <= w) & (cy >= 0) & (cy <= h))
    assert np.all(boxes[:, 2:] >= boxes[:, :2])


# ----------------------------------------------------------------------------- YOLOv1

V1_EDGE = (np.array([[0.0, 0.0, 448.0, 448.0],      # whole image: centre on a cell border
                     [440.0, 440.0, 448.0, 448.0],  # centre near the bottom-right corner
                     [448.0, 0.0, 448.0, 0.0],      # zero-size box on the right edge
                     [100.0, 100.0, 100.0, 100.0]]), 7, (448, 448))


@both_sides
@both_dtypes
@given(t=S.yolov1_inputs())
@example(t=V1_EDGE)
@example(t=(np.zeros((0, 4)), 7, (448, 448)))
def test_yolov1_decode_inverts_encode(side, dtype, t):
    boxes, n_cells, size = t
    cells, targets = side.call("coder.yolov1_encode", boxes, S=n_cells, image_size=size, dtype=dtype)
    assert cells.dtype == np.int64 and cells.shape == (len(boxes), 2)
    assert np.all((cells >= 0) & (cells < n_cells))
    assert np.all((targets[:, :2] >= 0) & (targets[:, :2] <= 1)) and np.all(targets[:, 2:] >= 0)
    back = side.call("coder.yolov1_decode", targets, cells, S=n_cells, image_size=size, dtype=dtype)
    assert_parity(back, boxes.astype(dtype), name="roundtrip.yolov1", dtype=dtype, inputs=t)


def test_yolov1_known_values():
    # centre (224, 112) of a 448 x 448 image, S = 7: cell (3, 1), offsets (0.5, 0.75)
    boxes = np.array([[224.0 - 56, 112.0 - 28, 224.0 + 56, 112.0 + 28],
                      [447.0, 447.0, 449.0, 449.0]])
    for side in SIDES:
        cells, targets = side.call("coder.yolov1_encode", boxes)
        assert_parity(cells, np.array([[3, 1], [6, 6]]), tol=EXACT)
        want = np.array([[0.5, 0.75, np.sqrt(112 / 448), np.sqrt(56 / 448)],
                         [1.0, 1.0, np.sqrt(2 / 448), np.sqrt(2 / 448)]])
        assert_parity(targets, want, name="coder.yolov1_encode", dtype="float64")


@both_sides
def test_yolov1_decode_broadcasts_over_a_grid(side):
    raw = np.random.default_rng(0).uniform(0, 1, (2, 5, 5, 4))
    grid = R.make_grid(5, 5)
    out = side.call("coder.yolov1_decode", raw, grid, S=5, image_size=(100, 200))
    assert out.shape == (2, 5, 5, 4)
    flat = side.call("coder.yolov1_decode", raw.reshape(-1, 4), np.tile(grid.reshape(-1, 2), (2, 1)),
                 S=5, image_size=(100, 200))
    assert_parity(out.reshape(-1, 4), flat, tol=EXACT)


# ----------------------------------------------------------------------------- YOLOv2/v3

@both_sides
@both_dtypes
@given(t=S.coder_cell_inputs("v3"))
def test_yolov3_decode_inverts_encode_with_logits(side, dtype, t):
    boxes, grid, anchors, stride = t
    raw = side.call("coder.yolov3_encode", boxes, grid, anchors, stride, logits=True, dtype=dtype)
    back = side.call("coder.yolov3_decode", raw, grid, anchors, stride, dtype=dtype)
    assert_parity(back, boxes.astype(dtype), name="roundtrip.yolov3", dtype=dtype, inputs=t)


@both_sides
@given(t=S.coder_cell_inputs("v3"))
def test_yolov3_offsets_are_the_sigmoid_of_the_logits(side, t):
    boxes, grid, anchors, stride = t
    off = side.call("coder.yolov3_encode", boxes, grid, anchors, stride)
    logit = side.call("coder.yolov3_encode", boxes, grid, anchors, stride, logits=True)
    assert np.all((off[:, :2] > 0) & (off[:, :2] < 1))
    assert_parity(off[:, 2:], logit[:, 2:], tol=EXACT)  # sizes do not depend on `logits`
    assert_parity(1 / (1 + np.exp(-logit[:, :2])), off[:, :2], name="roundtrip.yolov3",
                  dtype="float64", inputs=t)


@both_sides
@both_dtypes
@given(t=S.coder_raw_inputs(**RAW_DOMAIN))
def test_yolov3_encode_inverts_decode(side, dtype, t):
    raw, grid, anchors, stride = t
    boxes = side.call("coder.yolov3_decode", raw, grid, anchors, stride, dtype=dtype)
    back = side.call("coder.yolov3_encode", boxes, grid, anchors, stride, logits=True, dtype=dtype)
    assert_parity(back, raw.astype(dtype), name="roundtrip.yolov3_raw", dtype=dtype, inputs=t)


def test_yolov3_known_values():
    # t = 0: centre in the middle of cell (2, 1), size = anchor; darknet's tw = log(gw / aw)
    for side in SIDES:
        out = side.call("coder.yolov3_decode", np.zeros((1, 4)), np.array([[2, 1]]),
                    np.array([[30.0, 60.0]]), 32.0)
        assert_parity(out, np.array([[80.0 - 15, 48.0 - 30, 80.0 + 15, 48.0 + 30]]),
                      name="coder.yolov3_decode", dtype="float64")
        t = side.call("coder.yolov3_encode", np.array([[64.0, 32.0, 128.0, 96.0]]),
                  np.array([[2, 1]]), np.array([[32.0, 32.0]]), 32.0)
        assert_parity(t, np.array([[1.0, 1.0, np.log(2.0), np.log(2.0)]]),
                      name="coder.yolov3_encode", dtype="float64")


# ----------------------------------------------------------------------------- YOLOv5

@both_sides
@both_dtypes
@given(t=S.coder_cell_inputs("v5"))
def test_yolov5_decode_inverts_encode(side, dtype, t):
    boxes, grid, anchors, stride = t
    raw = side.call("coder.yolov5_encode", boxes, grid, anchors, stride, dtype=dtype)
    assert np.all(np.isfinite(raw))
    back = side.call("coder.yolov5_decode", raw, grid, anchors, stride, dtype=dtype)
    assert_parity(back, boxes.astype(dtype), name="roundtrip.yolov5", dtype=dtype, inputs=t)


@both_sides
@both_dtypes
@given(t=S.coder_raw_inputs(**RAW_DOMAIN))
def test_yolov5_encode_inverts_decode(side, dtype, t):
    raw, grid, anchors, stride = t
    boxes = side.call("coder.yolov5_decode", raw, grid, anchors, stride, dtype=dtype)
    back = side.call("coder.yolov5_encode", boxes, grid, anchors, stride, dtype=dtype)
    assert_parity(back, raw.astype(dtype), name="roundtrip.yolov5_raw", dtype=dtype, inputs=t)


@both_sides
def test_yolov5_encode_is_infinite_or_nan_outside_the_domain(side):
    grid, anchors, stride = np.array([[1, 1]]), np.array([[10.0, 10.0]]), 8.0
    # centre offset exactly -0.5 cells (x) and size exactly 4 anchors (h): the open ends
    boxes = np.array([[4.0 - 5, 12.0 - 20, 4.0 + 5, 12.0 + 20]])
    raw = side.call("coder.yolov5_encode", boxes, grid, anchors, stride)
    assert raw[0, 0] == -np.inf and raw[0, 3] == np.inf
    assert np.isfinite(raw[0, 1]) and np.isfinite(raw[0, 2])


def test_yolov5_known_values():
    # t = 0: sigma = 0.5, so xy = (0.5 + grid) * stride and wh = anchor (the STYLE example)
    for side in SIDES:
        out = side.call("coder.yolov5_decode", np.zeros((1, 4)), np.array([[3, 0]]),
                    np.array([[10.0, 13.0]]), 8.0)
        assert_parity(out, np.array([[28.0 - 5, 4.0 - 6.5, 28.0 + 5, 4.0 + 6.5]]),
                      name="coder.yolov5_decode", dtype="float64")


@both_sides
@given(t=S.coder_raw_inputs(max_n=6))
def test_head_decoders_broadcast_over_a_batch(side, t):
    raw, grid, anchors, stride = t
    batch = np.stack([raw, raw[::-1]])  # [2, N, 4] against grid/anchors [N, 2]
    for fname in ("yolov3_decode", "yolov5_decode"):
        out = side.call(f"coder.{fname}", batch, grid, anchors, stride)
        for b in range(2):
            one = side.call(f"coder.{fname}", batch[b], grid, anchors, stride)
            assert_parity(out[b], one, name=f"coder.{fname}", dtype="float64", inputs=t)


@both_sides
def test_make_anchor_grid_matches_the_per_level_decode(side):
    rng = np.random.default_rng(1)
    anchors = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]]], float)
    strides, sizes = np.array([8.0, 16.0]), [(4, 5), (2, 3)]
    grid, anchor_wh, stride = side.call("coder.make_anchor_grid", anchors, strides, sizes)
    raw = [rng.normal(size=(2, 3, ny, nx, 4)) for ny, nx in sizes]  # Detect's [B, A, ny, nx, 4]
    flat = np.concatenate([r.reshape(2, -1, 4) for r in raw], axis=1)
    out = side.call("coder.yolov5_decode", flat, grid, anchor_wh, stride)
    per_level = [side.call("coder.yolov5_decode", r, R.make_grid(ny, nx),
                       anchors[i][:, None, None], strides[i]).reshape(2, -1, 4)
                 for i, (r, (ny, nx)) in enumerate(zip(raw, sizes))]
    assert_parity(out, np.concatenate(per_level, axis=1), name="coder.yolov5_decode",
                  dtype="float64")


# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 (v8 head)

@st.composite
def _points_and_distances(draw, reg_max_choices=(2, 4, 16)):
    reg_max = draw(st.sampled_from(reg_max_choices))
    n = draw(st.integers(0, 12))
    pts = draw(hnp.arrays(np.float64, (n, 2), elements=S.floats(0.0, 80.0)))
    d = draw(hnp.arrays(np.float64, (n, 4), elements=S.floats(0.0, reg_max - 1.01)))
    return pts, d, reg_max


@both_sides
@both_dtypes
@given(t=_points_and_distances())
@example(t=(np.array([[5.0, 5.0]]), np.array([[0.0, 0.0, 14.99, 14.99]]), 16))
def test_bbox2dist_inverts_dist2bbox_inside_the_clamp(side, dtype, t):
    pts, d, reg_max = t
    boxes = side.call("coder.dist2bbox", d, pts, xywh=False, dtype=dtype)
    back = side.call("coder.bbox2dist", pts, boxes, reg_max, dtype=dtype)
    assert_parity(back, d.astype(dtype), name="roundtrip.dist", dtype=dtype, inputs=t)
    again = side.call("coder.dist2bbox", back, pts, xywh=False, dtype=dtype)
    assert_parity(again, boxes, name="roundtrip.dist", dtype=dtype, inputs=t)


@both_sides
@given(pts=hnp.arrays(np.float64, (6, 2), elements=S.floats(0.0, 80.0)),
       boxes=S.boxes_xyxy(n=6, max_coord=80.0, max_size=60.0),
       reg_max=st.sampled_from([2, 16]))
def test_bbox2dist_clamps_to_the_bins(side, pts, boxes, reg_max):
    d = side.call("coder.bbox2dist", pts, boxes, reg_max)
    assert np.all((d >= 0) & (d <= reg_max - 1 - 0.01))
    free = side.call("coder.bbox2dist", pts, boxes, None)
    assert_parity(d, np.clip(free, 0, reg_max - 1.01), tol=EXACT)


@both_sides
@given(d=hnp.arrays(np.float64, (5, 4), elements=S.floats(-5.0, 50.0)),
       pts=hnp.arrays(np.float64, (5, 2), elements=S.floats(0.0, 100.0)))
def test_dist2bbox_xywh_is_the_centre_form_of_xyxy(side, d, pts):
    xyxy = side.call("coder.dist2bbox", d, pts, xywh=False)
    xywh = side.call("coder.dist2bbox", d, pts, xywh=True)
    want = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], -1)
    assert_parity(xywh, want, tol=EXACT)
    # the head layout (distance [1, 4, A], points [1, 2, A], dim=1) is the transpose
    head = side.call("coder.dist2bbox", d.T[None], pts.T[None], xywh=True, dim=1)
    assert_parity(head[0].T, xywh, tol=EXACT)


@st.composite
def _dfl_targets(draw):
    reg_max = draw(st.sampled_from([2, 4, 16]))
    n = draw(st.integers(1, 6))
    t = draw(hnp.arrays(np.float64, (n, 4), elements=S.floats(0.0, reg_max - 1.01)))
    return t, reg_max


def _two_bin_logits(t, reg_max):
    """log of the DFL target distribution: weight (i + 1 - t) on bin i = floor(t), (t - i) on i+1."""
    i = np.floor(t).astype(np.int64)
    w = np.zeros(t.shape + (reg_max,))
    np.put_along_axis(w, i[..., None], (i + 1 - t)[..., None], axis=-1)
    np.put_along_axis(w, (i + 1)[..., None], (t - i)[..., None], axis=-1)
    with np.errstate(divide="ignore"):
        return np.log(w).reshape(t.shape[:-1] + (4 * reg_max,))


@both_sides
@both_dtypes
@given(t=_dfl_targets())
@example(t=(np.array([[0.0, 1.0, 14.0, 14.99]]), 16))
def test_dfl_decode_inverts_the_two_bin_target(side, dtype, t):
    target, reg_max = t
    out = side.call("coder.dfl_decode", _two_bin_logits(target, reg_max), reg_max=reg_max, dtype=dtype)
    assert_parity(out, target.astype(dtype), name="roundtrip.dfl", dtype=dtype, inputs=t)


@both_sides
@given(bins=hnp.arrays(np.int64, (3, 4), elements=st.integers(0, 15)),
       shift=S.floats(-100.0, 100.0))
def test_dfl_decode_of_a_one_hot_is_the_bin(side, bins, shift):
    margin = 60.0  # other bins weigh exp(-60): the expectation is the bin to ~1e-24
    logits = np.eye(16)[bins] * margin + shift  # [3, 4, 16]; a shift per row changes nothing
    out = side.call("coder.dfl_decode", logits.reshape(3, 64), reg_max=16)
    assert_parity(out, bins.astype(np.float64), name="roundtrip.dfl", dtype="float64")


# ----------------------------------------------------------------------------- grids

@both_sides
@given(ny=st.integers(1, 9), nx=st.integers(1, 9))
def test_make_grid_indexes_columns_then_rows(side, ny, nx):
    g = side.call("coder.make_grid", ny, nx)
    assert g.shape == (ny, nx, 2) and g.dtype == np.int64
    rows, cols = np.indices((ny, nx))
    assert_parity(g[..., 0], cols, tol=EXACT)
    assert_parity(g[..., 1], rows, tol=EXACT)


@both_sides
@given(t=S.level_sizes(), offset=st.sampled_from([0.5, 0.0, 0.25]))
def test_make_anchors_counts_orders_and_centres(side, t, offset):
    sizes, strides = t
    pts, st_ = side.call("coder.make_anchors", sizes, strides, grid_cell_offset=offset)
    assert pts.shape == (sum(h * w for h, w in sizes), 2) and st_.shape == (len(pts), 1)
    start = 0
    for (h, w), s in zip(sizes, strides):
        block = pts[start:start + h * w]
        assert_parity(block, R.make_grid(h, w).reshape(-1, 2) + offset, tol=EXACT)
        assert np.all(st_[start:start + h * w] == s)
        start += h * w


@both_sides
def test_make_anchors_of_a_640_yolov8_input(side):
    pts, stride = side.call("coder.make_anchors", [(80, 80), (40, 40), (20, 20)], np.array([8., 16, 32]))
    assert pts.shape == (8400, 2)
    assert_parity((pts * stride)[[0, 1, 80, 6400, 8399]],
                  np.array([[4, 4], [12, 4], [4, 12], [8, 8], [624, 624]], float), tol=EXACT)


@both_sides
@given(t=S.level_sizes(), n_anchors=st.integers(1, 3))
def test_make_anchor_grid_counts_and_order(side, t, n_anchors):
    sizes, strides = t
    anchors = np.arange(1.0, 1 + 2 * n_anchors * len(sizes)).reshape(len(sizes), n_anchors, 2)
    grid, wh, stride = side.call("coder.make_anchor_grid", anchors, strides, sizes)
    assert len(grid) == len(wh) == len(stride) == n_anchors * sum(h * w for h, w in sizes)
    assert grid.dtype == np.int64
    start = 0
    for level, (h, w) in enumerate(sizes):
        for a in range(n_anchors):
            sl = slice(start, start + h * w)
            assert_parity(grid[sl], R.make_grid(h, w).reshape(-1, 2), tol=EXACT)
            assert np.all(wh[sl] == anchors[level, a]) and np.all(stride[sl] == strides[level])
            start += h * w


# ----------------------------------------------------------------------------- bad input

B1 = np.array([[10.0, 10.0, 20.0, 30.0]])
G1, A1 = np.array([[0, 0]]), np.array([[10.0, 10.0]])
BAD = [
    ("yolov1_encode", (np.zeros((1, 3)),), {}, "boxes"),
    ("yolov1_encode", (np.zeros((2, 1, 4)),), {}, "boxes"),
    ("yolov1_encode", (B1,), {"S": 0}, "S"),
    ("yolov1_encode", (B1,), {"image_size": (0, 448)}, "image_size"),
    ("yolov1_encode", (np.array([[20.0, 0, 10, 10]]),), {}, "boxes"),      # x2 < x1
    ("yolov1_encode", (np.array([[500.0, 0, 510, 10]]),), {}, "boxes"),    # centre outside
    ("yolov1_encode", (np.array([[np.nan, 0, 10, 10]]),), {}, "boxes"),
    ("yolov1_decode", (np.zeros((1, 5)), G1), {}, "raw"),
    ("yolov1_decode", (np.zeros((2, 4)), np.zeros((3, 2))), {}, "grid"),
    ("yolov1_decode", (np.zeros((1, 4)), G1), {"S": -1}, "S"),
    ("yolov3_encode", (B1, np.zeros((1, 3)), A1, 8.0), {}, "grid"),
    ("yolov3_encode", (B1, G1, np.array([[0.0, 10.0]]), 8.0), {}, "anchors"),
    ("yolov3_encode", (B1, G1, A1, 0.0), {}, "stride"),
    ("yolov3_encode", (np.array([[10.0, 10, 10, 20]]), G1, A1, 8.0), {}, "boxes"),  # w = 0
    ("yolov3_decode", (np.zeros((1, 3)), G1, A1, 8.0), {}, "raw"),
    ("yolov3_decode", (np.zeros((2, 4)), np.zeros((3, 2)), A1, 8.0), {}, "grid"),
    ("yolov3_decode", (np.zeros((2, 4)), G1, A1, np.array([8.0, 16.0])), {}, "stride"),
    ("yolov3_decode", (np.zeros((2, 4)), G1, A1, np.full((3, 1), 8.0)), {}, "stride"),
    ("yolov5_encode", (B1, G1, -A1, 8.0), {}, "anchors"),
    ("yolov5_encode", (B1, G1, A1, -8.0), {}, "stride"),
    ("yolov5_decode", (np.zeros((1, 4)), G1, np.zeros((1, 3)), 8.0), {}, "anchors"),
    ("yolov5_decode", (np.zeros((1, 4)), G1, A1, np.nan), {}, "stride"),
    ("dist2bbox", (np.zeros((1, 3)), np.zeros((1, 2))), {}, "distance"),
    ("dist2bbox", (np.zeros((1, 4)), np.zeros((1, 3))), {}, "anchor_points"),
    ("dist2bbox", (np.zeros((2, 4)), np.zeros((3, 2))), {}, "anchor_points"),
    ("dist2bbox", (np.zeros((1, 4)), np.zeros((1, 2))), {"dim": 2}, "dim"),
    ("bbox2dist", (np.zeros((1, 2)), np.zeros((1, 5)), 16), {}, "bbox"),
    ("bbox2dist", (np.zeros((1, 2)), np.zeros((1, 4)), 1), {}, "reg_max"),
    ("bbox2dist", (np.zeros((2, 2)), np.zeros((3, 4)), 16), {}, "anchor_points"),
    ("dfl_decode", (np.zeros((1, 60)),), {}, "logits"),
    ("dfl_decode", (np.zeros((1, 64)),), {"reg_max": 0}, "reg_max"),
    ("make_grid", (0, 3), {}, "ny"),
    ("make_grid", (3, 2.5), {}, "nx"),
    ("make_anchor_grid", (np.ones((2, 3, 2)), np.array([8.0]), [(2, 2), (1, 1)]), {}, "strides"),
    ("make_anchor_grid", (np.ones((2, 3, 2)), np.array([8.0, 16]), [(2, 2)]), {}, "grid_sizes"),
    ("make_anchor_grid", (np.ones((3, 2)), np.array([8.0]), [(2, 2)]), {}, "anchors"),
    ("make_anchor_grid", (-np.ones((1, 3, 2)), np.array([8.0]), [(2, 2)]), {}, "anchors"),
    ("make_anchors", ([(2, 2)], np.array([8.0, 16.0])), {}, "strides"),
    ("make_anchors", ([(2, 0)], np.array([8.0])), {}, "feat_sizes"),
    ("make_anchors", ([], np.zeros(0)), {}, "feat_sizes"),
    ("make_anchors", ([(2, 2)], np.array([0.0])), {}, "strides"),
    ("make_anchors", ([(2, 2)], np.array([8.0])), {"grid_cell_offset": float("nan")},
     "grid_cell_offset"),
]


@both_sides
@pytest.mark.parametrize("fname,args,kwargs,argname", BAD,
                         ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises_value_error_naming_the_argument(side, fname, args, kwargs, argname):
    with pytest.raises(ValueError, match=argname):
        side.call(f"coder.{fname}", *args, **kwargs)


# ----------------------------------------------------------------------------- port only

def test_decoders_are_differentiable():
    raw = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    grid = T.make_grid(1, 3).reshape(3, 2)
    anchors = torch.tensor([[10.0, 13.0]], dtype=torch.float64)
    for fn in (T.yolov3_decode, T.yolov5_decode):
        assert torch.autograd.gradcheck(lambda r: fn(r, grid, anchors, 8.0), (raw,))
    logits = torch.randn(1, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: T.dfl_decode(x, 16), (logits,))
    d = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    pts = torch.rand(2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: T.dist2bbox(x, pts), (d,))
    boxes = torch.tensor([[10.0, 10.0, 20.0, 30.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda b: T.yolov5_encode(b, torch.tensor([[1, 2]]), anchors, 8.0), (boxes,))


def test_port_keeps_the_input_device_and_dtype():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    raw = torch.zeros(3, 4, device=device, dtype=torch.float32)
    grid = T.make_grid(1, 3, device=device).reshape(3, 2)
    out = T.yolov5_decode(raw, grid, torch.tensor([[10.0, 13.0]], device=device), 8.0)
    assert out.device == raw.device and out.dtype == torch.float32
    pts, stride = T.make_anchors([(2, 2)], torch.tensor([8.0], device=device))
    assert pts.device == raw.device and stride.dtype == torch.float32
    assert T.dfl_decode(torch.zeros(2, 64, device=device)).device == raw.device
