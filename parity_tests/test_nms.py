"""Dedicated tests of ``nms``: what the generic registry harness cannot express.

- kept indices of the reference and the port IDENTICAL to ``torchvision.ops.nms`` in float32 and
  float64: ties, NaN scores, degenerate boxes, N = 0 / 1, planted pairs at IoU = thr +- eps and
  = thr, the float64 threshold comparison, thresholds outside [0, 1] and NaN;
- larger N (clustered and uniform boxes, fixed seeds): the blocked path equals torchvision,
  also with tiny blocks and chunks so that every code path of the blocked loop runs;
- invariants: subset in score order, kept pairwise IoU <= thr, every suppressed box overlapped by
  a kept higher-ranked box, idempotence;
- ``batched_nms`` against torchvision on both of its paths (exact on the offset path, sets and
  order up to ties on the per-class path); ``nms_padded`` against per-image torchvision;
- ``soft_nms`` and ``diou_nms``: reference == port and values by hand;
- ``non_max_suppression``: reference == port == a transcription of YOLOv5 v7.0's (and
  Ultralytics 8.3 / 8.4's) procedure written here with ``torchvision.ops.nms``;
- bad input raising ValueError naming the argument, on both sides; the port on CUDA.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.ops as tvo
from hypothesis import example, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ref_numpy.nms as R
import torch_impl.nms as T
from parity_tests import strategies as S
from parity_tests.sides import REF, get_side
from parity_tests.tolerances import EXACT, assert_parity

PORT = get_side("torch")
IMPLS = (pytest.param(REF, id="ref"), pytest.param(PORT, id="port"))
BOTH = (REF, PORT)
DTYPES = ("float64", "float32")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module's torch work on one thread, restored afterwards. Results do not depend on
    it (element-wise ops and max reductions are exact); it keeps the runtime sane on a shared,
    oversubscribed CPU, where torch's OpenMP threads stall on every op of the blocked loop."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same_as_torchvision(boxes, scores, thr, dtype, impls=BOTH):
    want = PORT.call(tvo.nms, boxes, scores, thr, dtype=dtype)
    for impl in impls:
        got = impl.call("nms.nms", boxes, scores, thr, dtype=dtype)
        assert_parity(got, want, name="nms.nms", tol=EXACT, inputs=(boxes, scores, thr, impl))


def random_boxes(rng, n, span=640.0, lo=10.0, hi=100.0, clusters=0):
    """Uniform centres in [0, span]^2 (or around ``clusters`` centres), sizes in [lo, hi]."""
    if clusters:
        centres = rng.uniform(50, span - 50, (clusters, 2))[rng.integers(0, clusters, n)]
        c = centres + rng.normal(0, 4.0, (n, 2))
    else:
        c = rng.uniform(0, span, (n, 2))
    s = rng.uniform(lo, hi, (n, 2))
    return np.concatenate([c - s / 2, c + s / 2], axis=1)


UNIT = [0.0, 0.0, 10.0, 10.0]
POINT = [5.0, 5.0, 5.0, 5.0]
ZERO_W = [2.0, 2.0, 2.0, 8.0]
INVERTED = [8.0, 8.0, 2.0, 2.0]


# ----------------------------------------------------------------------------- the strategies

@settings(max_examples=30)
@given(b=S.grid_boxes_xyxy(n=8), p5=S.yolo_predictions("v5"), p8=S.yolo_predictions("v8"))
def test_nms_strategies_are_what_they_claim(b, p5, p8):
    assert np.all(b >= 0) and np.all(b[:, 2:] > b[:, :2]) and np.all(b * 4 == np.round(b * 4))
    assert p5.ndim == 3 and p5.shape[2] >= 6 and np.all((p5[..., 4:] >= 0) & (p5[..., 4:] <= 1))
    assert p8.ndim == 3 and p8.shape[1] >= 5 and np.all(p8[:, 2:4] > 0)


def test_nms_scores_reach_nan_and_ties():
    find(S.nms_scores(6), lambda s: np.isnan(s).any())
    find(S.nms_scores(6), lambda s: len(np.unique(s)) < len(s) and not np.isnan(s).any())


# ----------------------------------------------------------------------------- nms vs torchvision

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60)
@given(bs=S.nms_boxes_and_scores(max_n=40), thr=S.nms_thresholds())
@example(bs=(np.zeros((0, 4)), np.zeros(0)), thr=0.5)
@example(bs=(np.array([UNIT]), np.array([0.3])), thr=0.5)
@example(bs=(np.array([UNIT] * 4), np.array([0.5, 0.5, 0.9, 0.5])), thr=0.5)  # identical, ties
@example(bs=(np.array([POINT, POINT, ZERO_W, ZERO_W, INVERTED, UNIT]), np.full(6, 0.5)), thr=0.0)
@example(bs=(np.array([UNIT, UNIT, [20.0, 0, 30, 10]]), np.array([0.5, np.nan, 0.9])), thr=0.5)
@example(bs=(np.array([UNIT, [0.0, 0, 5, 10]]), np.array([0.9, 0.8])), thr=0.5)  # IoU == thr
def test_nms_identical_to_torchvision(dtype, bs, thr):
    """Same kept indices, same order: stable ties, NaN first, strict >, degenerate boxes."""
    assert_same_as_torchvision(*bs, thr, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60)
@given(pair=S.planted_iou_pair(0.5), ties=st.booleans(), extra=S.boxes_xyxy(max_n=6))
def test_planted_pair_at_threshold(dtype, pair, ties, extra):
    """A pair planted at IoU = 0.5 + {-1e-4, 0, +1e-4} among other boxes: all three agree; in
    float64 the +eps pair loses its lower-scored box and the -eps pair keeps both."""
    (boxes, delta), thr = pair, 0.5
    all_boxes = np.concatenate([boxes, extra + 3000.0])  # the extras are far away
    scores = np.concatenate([[0.5, 0.5] if ties else [0.9, 0.4], np.linspace(0.1, 0.3, len(extra))])
    assert_same_as_torchvision(all_boxes, scores, thr, dtype)
    if dtype == "float64" and delta != 0.0:
        kept = REF.call("nms.nms", all_boxes, scores, thr)
        assert (1 in kept) == (delta < 0), (delta, kept)


@pytest.mark.parametrize("impl", IMPLS + ("torchvision",))
def test_threshold_compared_in_float64(impl):
    """A float32 IoU is compared with the threshold as a double: a threshold just below the
    IoU (which rounds to it in float32) suppresses, the IoU itself and just above keep."""
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.1, 1.0]], dtype=np.float32)
    iou32 = R._overlaps(boxes, 0, np.array([1]))[0]
    ulp = float(np.spacing(iou32))
    scores = np.array([0.9, 0.8], dtype=np.float32)
    side, fn = (PORT, tvo.nms) if impl == "torchvision" else (impl, "nms.nms")
    cases = [(float(iou32) - ulp / 4, 1), (float(iou32), 2), (float(iou32) + ulp / 4, 2)]
    for thr, n_kept in cases:
        assert np.float32(thr) == iou32  # all three round to the IoU in float32
        kept = side.call(fn, boxes, scores, thr, dtype="float32")
        assert len(kept) == n_kept, (impl, thr, float(iou32), kept)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("thr", [-0.5, -0.0, 1.0, 1.5, math.nan, math.inf, -math.inf])
def test_thresholds_outside_unit_interval(dtype, thr):
    """Negative thresholds suppress every non-NaN pair (degenerate ones included), NaN never."""
    boxes = np.array([UNIT, POINT, POINT, ZERO_W, INVERTED, [20.0, 20, 30, 30], UNIT])
    scores = np.array([0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    assert_same_as_torchvision(boxes, scores, thr, dtype)


def test_nan_scores_sort_first():
    boxes = np.array([UNIT, [20.0, 0, 30, 10], [40.0, 0, 50, 10], [60.0, 0, 70, 10]])
    scores = np.array([0.5, np.nan, 0.9, np.nan])
    for impl in BOTH:
        np.testing.assert_array_equal(impl.call("nms.nms", boxes, scores, 0.5), [1, 3, 2, 0])


def test_empty_input_gives_int64():
    for impl in BOTH:
        out = impl.call("nms.nms", np.zeros((0, 4)), np.zeros(0), 0.5)
        assert out.shape == (0,) and out.dtype == np.int64


# ----------------------------------------------------------------------------- larger N

@pytest.mark.parametrize("budget", [0, 10 ** 9], ids=["blocked", "sparse"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_n_blocked_path_equals_torchvision(seed, dtype, budget, monkeypatch):
    """N = 3000 clustered boxes (long suppression chains, many blocks) and uniform ones, on the
    blocked matrix pass and on the sparse pair engine (budget unbounded: it never declines)."""
    monkeypatch.setattr(T, "PAIR_BUDGET", budget)
    rng = np.random.default_rng(seed)
    for boxes in (random_boxes(rng, 3000, clusters=12, lo=20, hi=40), random_boxes(rng, 3000)):
        scores = rng.choice([0.2, 0.4, 0.6, 0.8], 3000) if seed == 2 else rng.uniform(0, 1, 3000)
        want = PORT.call(tvo.nms, boxes, scores, 0.45, dtype=dtype)
        got = PORT.call("nms.nms", boxes, scores, 0.45, dtype=dtype)
        assert_parity(got, want, name="nms.nms", tol=EXACT)
    if seed == 0 and not budget:  # the reference's loop is slow: once per dtype is enough
        assert_parity(REF.call("nms.nms", boxes, scores, 0.45, dtype=dtype), want,
                      name="nms.nms", tol=EXACT)


@pytest.mark.parametrize("block,chunk", [(1, 1), (3, 2), (7, 5), (64, 16)])
def test_tiny_blocks_and_chunks(monkeypatch, block, chunk):
    """Every block/chunk boundary case of the blocked loop, on nms, batched_nms and nms_padded
    (the sparse engine switched off: on CPU it would run instead)."""
    monkeypatch.setattr(T, "PAIR_BUDGET", 0)
    monkeypatch.setattr(T, "BLOCK", block)
    monkeypatch.setattr(T, "CHUNK", chunk)
    rng = np.random.default_rng(block)
    boxes = random_boxes(rng, 200, span=200, clusters=4 if block % 2 else 0)
    scores = rng.choice([0.3, 0.6, np.nan], 200)
    idxs = rng.integers(0, 3, 200)
    assert_parity(PORT.call("nms.nms", boxes, scores, 0.5), PORT.call(tvo.nms, boxes, scores, 0.5),
                  name="nms.nms", tol=EXACT)
    assert_parity(PORT.call("nms.batched_nms", boxes, scores, idxs, 0.5),
                  REF.call("nms.batched_nms", boxes, scores, idxs, 0.5),
                  name="nms.batched_nms", tol=EXACT)
    padded = (boxes.reshape(4, 50, 4), scores.reshape(4, 50), 0.5)
    assert_parity(PORT.call("nms.nms_padded", *padded), REF.call("nms.nms_padded", *padded),
                  name="nms.nms_padded", tol=EXACT)
    assert_parity(PORT.call("nms.diou_nms", boxes, scores, 0.3),
                  REF.call("nms.diou_nms", boxes, scores, 0.3), name="nms.diou_nms", tol=EXACT)


# ----------------------------------------------------------------------------- invariants

def _suppresses(boxes, i, js, thr):
    return R._above(R._overlaps(boxes, i, np.asarray(js)), thr)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40)
@given(bs=S.nms_boxes_and_scores(max_n=30), thr=S.nms_thresholds())
def test_nms_invariants(impl, bs, thr):
    boxes, scores = bs
    keep = impl.call("nms.nms", boxes, scores, thr)
    order = list(R._score_order(scores))
    ranks = [order.index(k) for k in keep]
    assert ranks == sorted(ranks), "kept boxes must come in score order"
    for a, i in enumerate(keep):  # kept pairwise IoU <= thr (or NaN)
        assert not _suppresses(boxes, i, keep[a + 1:], thr).any(), (i, keep)
    for j in set(range(len(boxes))) - set(keep.tolist()):  # suppressed: by a kept, earlier box
        earlier = [i for i in keep if order.index(i) < order.index(j)]
        assert earlier and any(_suppresses(boxes, i, [j], thr)[0] for i in earlier), j
    again = impl.call("nms.nms", boxes[keep], scores[keep], thr)
    np.testing.assert_array_equal(again, np.arange(len(keep)))  # idempotent


# ----------------------------------------------------------------------------- batched_nms, padded

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_nms_torchvision_per_class_path(dtype, seed):
    """N = 1500 (numel 6000 > 4000): torchvision runs per class and re-sorts unstably; the kept
    set is the same and the order agrees up to tied scores."""
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 1500, span=300)
    scores = rng.choice([0.25, 0.5, 0.75], 1500) if seed else rng.uniform(0, 1, 1500)
    idxs = rng.integers(0, 5, 1500)
    want = PORT.call(tvo.batched_nms, boxes, scores, idxs, 0.5, dtype=dtype)
    for impl in BOTH:
        got = impl.call("nms.batched_nms", boxes, scores, idxs, 0.5, dtype=dtype)
        assert sorted(got.tolist()) == sorted(want.tolist())
        np.testing.assert_array_equal(scores[got], scores[want])  # order up to ties
        if not seed:
            assert_parity(got, want, name="nms.batched_nms", tol=EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(data=st.data())
def test_batched_nms_negative_coordinates(dtype, data):
    """Negative coordinates break torchvision's offset path; the reference's definition (per
    category nms) still holds: compare with per-category torchvision.ops.nms."""
    n = data.draw(st.integers(0, 20))
    boxes = data.draw(S.boxes_xyxy(n=n, max_coord=50.0)) - 40.0
    scores = data.draw(S.nms_scores(n))
    idxs = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2)))
    kept = np.zeros(n, dtype=bool)
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        kept[members[PORT.call(tvo.nms, boxes[members], scores[members], 0.5, dtype=dtype)]] = True
    order = R._score_order(scores.astype(dtype))  # float32 may create ties
    want = order[kept[order]]
    for impl in BOTH:
        assert_parity(impl.call("nms.batched_nms", boxes, scores, idxs, 0.5, dtype=dtype), want,
                      name="nms.batched_nms", tol=EXACT, inputs=(boxes, scores, idxs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_padded_equals_per_image_torchvision(dtype):
    rng = np.random.default_rng(3)
    b, n = 6, 400
    boxes = np.stack([random_boxes(rng, n, span=300) for _ in range(b)])
    scores = rng.uniform(0, 1, (b, n))
    valid = rng.uniform(size=(b, n)) < 0.7
    boxes[~valid] = np.nan  # padding may hold anything
    for impl in BOTH:
        mask = impl.call("nms.nms_padded", boxes, scores, 0.5, valid=valid, dtype=dtype)
        for i in range(b):
            members = np.flatnonzero(valid[i])
            want = members[PORT.call(tvo.nms, boxes[i, members], scores[i, members], 0.5, dtype=dtype)]
            np.testing.assert_array_equal(np.flatnonzero(mask[i]), np.sort(want))
    leading = PORT.call("nms.nms_padded", boxes.reshape(2, 3, n, 4), scores.reshape(2, 3, n), 0.5,
                        dtype=dtype, valid=valid.reshape(2, 3, n))
    np.testing.assert_array_equal(leading.reshape(b, n), mask)


# ----------------------------------------------------------------------------- soft / DIoU

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["linear", "gaussian"])
@settings(max_examples=30)
@given(bs=S.boxes_and_scores(max_n=16), thr=S.nms_thresholds(), sigma=S.floats(0.05, 1.0))
@example(bs=(np.zeros((0, 4)), np.zeros(0)), thr=0.3, sigma=0.5)
@example(bs=(np.array([UNIT, UNIT, POINT, POINT]), np.array([0.5, 0.5, 0.5, 0.4])), thr=0.3,
         sigma=0.5)
def test_soft_nms_reference_equals_port(dtype, method, bs, thr, sigma):
    kw = {"iou_threshold": thr, "sigma": sigma, "method": method}
    want = REF.call("nms.soft_nms", *bs, dtype=dtype, **kw)
    got = PORT.call("nms.soft_nms", *bs, dtype=dtype, **kw)
    assert_parity(got, want, name="nms.soft_nms", dtype=dtype, inputs=(bs, kw))
    assert np.all(np.diff(want[1]) <= 0), "selected scores are non-increasing"


@pytest.mark.parametrize("impl", IMPLS)
def test_soft_nms_by_hand(impl):
    """Two boxes with IoU 1/2 and a far one: gaussian decays by exp(-0.25 / sigma), linear by
    (1 - 0.5) only above the threshold; a decay below score_threshold drops the box."""
    boxes = np.array([UNIT, [0.0, 0.0, 10.0, 5.0], [50.0, 50, 60, 60]])
    scores = np.array([0.9, 0.8, 0.3])
    def check(got, keep, scores, tol=None):
        assert_parity(got, (np.array(keep), np.array(scores)), name="nms.soft_nms",
                      dtype="float64", tol=tol)

    check(impl.call("nms.soft_nms", boxes, scores, sigma=0.5), [0, 1, 2],
          [0.9, 0.8 * np.exp(-0.5), 0.3])
    check(impl.call("nms.soft_nms", boxes, scores, iou_threshold=0.4, method="linear"), [0, 1, 2],
          [0.9, 0.4, 0.3], tol=EXACT)
    check(impl.call("nms.soft_nms", boxes, scores, iou_threshold=0.5, method="linear"), [0, 1, 2],
          [0.9, 0.8, 0.3], tol=EXACT)  # IoU == threshold: no decay
    keep, _ = impl.call("nms.soft_nms", boxes, scores, score_threshold=0.35)
    np.testing.assert_array_equal(keep, [0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40)
@given(bs=S.nms_boxes_and_scores(max_n=30), thr=S.nms_thresholds(),
       beta=st.sampled_from([0.6, 1.0, 2.0]))
def test_diou_nms_reference_equals_port(dtype, bs, thr, beta):
    want = REF.call("nms.diou_nms", *bs, thr, dtype=dtype, beta=beta)
    got = PORT.call("nms.diou_nms", *bs, thr, dtype=dtype, beta=beta)
    assert_parity(got, want, name="nms.diou_nms", tol=EXACT, inputs=(bs, thr, beta))


@pytest.mark.parametrize("impl", IMPLS)
def test_diou_nms_by_hand(impl):
    """Same-size boxes shifted by 2 (IoU 8/12 = 0.667): the centre penalty d^2/c^2 = 4/(144+100)
    keeps DIoU above 0.6 but below 0.66, where plain NMS at 0.66 would still suppress."""
    boxes = np.array([UNIT, [2.0, 0.0, 12.0, 10.0]])
    scores = np.array([0.9, 0.8])
    assert len(impl.call("nms.diou_nms", boxes, scores, 0.6)) == 1
    assert len(impl.call("nms.diou_nms", boxes, scores, 0.66)) == 2
    assert len(impl.call("nms.nms", boxes, scores, 0.66)) == 1


# ----------------------------------------------------------------------------- YOLO post-processing

def _xywh2xyxy(x):
    y = x.clone()
    y[..., 0] = x[..., 0] - x[..., 2] / 2
    y[..., 1] = x[..., 1] - x[..., 3] / 2
    y[..., 2] = x[..., 0] + x[..., 2] / 2
    y[..., 3] = x[..., 1] + x[..., 3] / 2
    return y


def yolov5_transcription(prediction, conf_thres=0.25, iou_thres=0.45, classes=None,
                         agnostic=False, multi_label=False, max_det=300):
    """YOLOv5 v7.0 ``utils/general.py::non_max_suppression``, written out step by step (no masks,
    merge, time limit or labels); the one change: ``argsort(..., stable=True)``."""
    nc = prediction.shape[2] - 5
    xc = prediction[..., 4] > conf_thres
    max_wh, max_nms = 7680, 30000
    multi_label &= nc > 1
    output = [torch.zeros((0, 6), dtype=prediction.dtype)] * prediction.shape[0]
    for xi, x in enumerate(prediction):
        x = x[xc[xi]].clone()
        if not x.shape[0]:
            continue
        x[:, 5:] *= x[:, 4:5]
        box = _xywh2xyxy(x[:, :4])
        if multi_label:
            i, j = (x[:, 5:] > conf_thres).nonzero(as_tuple=False).T
            x = torch.cat((box[i], x[i, 5 + j, None], j[:, None].to(x.dtype)), 1)
        else:
            conf, j = x[:, 5:].max(1, keepdim=True)
            x = torch.cat((box, conf, j.to(x.dtype)), 1)[conf.view(-1) > conf_thres]
        if classes is not None:
            x = x[(x[:, 5:6] == torch.tensor(classes)).any(1)]
        if not x.shape[0]:
            continue
        x = x[x[:, 4].argsort(descending=True, stable=True)[:max_nms]]
        c = x[:, 5:6] * (0 if agnostic else max_wh)
        i = tvo.nms(x[:, :4] + c, x[:, 4], iou_thres)[:max_det]
        output[xi] = x[i]
    return output


def ultralytics_transcription(prediction, conf_thres=0.25, iou_thres=0.45, classes=None,
                              agnostic=False, multi_label=False, max_det=300):
    """Ultralytics 8.3 / 8.4 ``utils/nms.py::non_max_suppression`` for [B, 4 + nc, A] outputs, step
    by step."""
    nc = prediction.shape[1] - 4
    xc = prediction[:, 4:].amax(1) > conf_thres
    prediction = prediction.transpose(-1, -2)
    prediction = torch.cat((_xywh2xyxy(prediction[..., :4]), prediction[..., 4:]), -1)
    max_wh, max_nms = 7680, 30000
    multi_label &= nc > 1
    output = [torch.zeros((0, 6), dtype=prediction.dtype)] * prediction.shape[0]
    for xi, x in enumerate(prediction):
        x = x[xc[xi]]
        if not x.shape[0]:
            continue
        box, cls = x.split((4, nc), 1)
        if multi_label:
            i, j = torch.where(cls > conf_thres)
            x = torch.cat((box[i], x[i, 4 + j, None], j[:, None].to(x.dtype)), 1)
        else:
            conf, j = cls.max(1, keepdim=True)
            x = torch.cat((box, conf, j.to(x.dtype)), 1)[conf.view(-1) > conf_thres]
        if classes is not None:
            x = x[(x[:, 5:6] == torch.tensor(classes)).any(1)]
        n = x.shape[0]
        if not n:
            continue
        if n > max_nms:
            x = x[x[:, 4].argsort(descending=True, stable=True)[:max_nms]]
        c = x[:, 5:6] * (0 if agnostic else max_wh)
        i = tvo.nms(x[:, :4] + c, x[:, 4], iou_thres)[:max_det]
        output[xi] = x[i]
    return output


@pytest.mark.parametrize("version", ["v5", "v8"])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40)
@given(data=st.data())
def test_non_max_suppression_equals_transcription(version, dtype, data):
    """Reference == port == the upstream procedure (multi_label or not, agnostic or not, class
    filter, max_det), tied scores included (the transcription's argsort is made stable)."""
    pred = data.draw(S.yolo_predictions(version, max_a=40), label="prediction")
    kw = {"conf_thres": data.draw(st.sampled_from([0.001, 0.25, 0.5])),
          "iou_thres": data.draw(st.sampled_from([0.3, 0.45, 0.6, 0.7])),
          "classes": data.draw(st.none() | st.lists(st.integers(0, 3), min_size=1, max_size=2)),
          "agnostic": data.draw(st.booleans()), "multi_label": data.draw(st.booleans()),
          "max_det": data.draw(st.sampled_from([300, 3]))}
    fn = yolov5_transcription if version == "v5" else ultralytics_transcription
    want = PORT.call(fn, pred, dtype=dtype, **kw)
    for impl in BOTH:
        got = impl.call("nms.non_max_suppression", pred, dtype=dtype, version=version, **kw)
        assert_parity(got, want, name="nms.non_max_suppression", tol=EXACT, inputs=(pred, kw))


def test_non_max_suppression_multi_label_order_and_limits():
    """multi_label emits (box, class) pairs; max_det and max_nms cut after sorting."""
    pred = np.zeros((1, 3, 8))
    pred[0, :, :4] = [[10, 10, 4, 4], [50, 50, 4, 4], [90, 90, 4, 4]]
    pred[0, :, 4] = [1.0, 0.9, 0.8]
    pred[0, :, 5:] = [[0.6, 0.0, 0.7], [0.2, 0.9, 0.0], [0.5, 0.0, 0.55]]
    for impl in BOTH:
        out = impl.call("nms.non_max_suppression", pred, conf_thres=0.3, multi_label=True)[0]
        assert_parity(out[:, 4], np.array([0.9 * 0.9, 0.7, 0.6, 0.8 * 0.55, 0.8 * 0.5]),
                      name="nms.non_max_suppression", tol=EXACT)
        np.testing.assert_array_equal(out[:, 5], [1, 2, 0, 2, 0])
        np.testing.assert_array_equal(out[0, :4], [48, 48, 52, 52])
        out = impl.call("nms.non_max_suppression", pred, conf_thres=0.3, multi_label=True, max_det=2)[0]
        np.testing.assert_array_equal(out[:, 5], [1, 2])
        out = impl.call("nms.non_max_suppression", pred, conf_thres=0.3, multi_label=True, max_nms=3)[0]
        np.testing.assert_array_equal(out[:, 5], [1, 2, 0])
        out = impl.call("nms.non_max_suppression", pred, conf_thres=0.3, classes=[0, 2])[0]
        np.testing.assert_array_equal(out[:, 5], [2, 2])  # best class only: no box's is 0


# ----------------------------------------------------------------------------- bad input

GOOD_BOXES = np.array([UNIT, [1.0, 1, 9, 9]])
GOOD_SCORES = np.array([0.5, 0.4])
NAN_BOXES = np.array([UNIT, [1.0, np.nan, 9, 9]])
BAD = [
    ("nms", (np.zeros((2, 3)), GOOD_SCORES, 0.5), {}, "boxes"),
    ("nms", (GOOD_BOXES, np.zeros(3), 0.5), {}, "scores"),
    ("nms", (NAN_BOXES, GOOD_SCORES, 0.5), {}, "boxes"),
    ("nms", (GOOD_BOXES, GOOD_SCORES, "high"), {}, "iou_threshold"),
    ("batched_nms", (GOOD_BOXES, GOOD_SCORES, np.array([0.0, 1.0]), 0.5), {}, "idxs"),
    ("batched_nms", (GOOD_BOXES, GOOD_SCORES, np.array([0]), 0.5), {}, "idxs"),
    ("batched_nms", (NAN_BOXES, GOOD_SCORES, np.array([0, 1]), 0.5), {}, "boxes"),
    ("nms_padded", (GOOD_BOXES[None], GOOD_SCORES, 0.5), {}, "scores"),
    ("nms_padded", (GOOD_BOXES[None], GOOD_SCORES[None], 0.5), {"valid": np.ones((1, 2))}, "valid"),
    ("nms_padded", (NAN_BOXES[None], GOOD_SCORES[None], 0.5), {}, "boxes"),
    ("nms_padded", (np.zeros(4), np.zeros(()), 0.5), {}, "boxes"),
    ("soft_nms", (GOOD_BOXES, np.array([0.5, np.nan])), {}, "scores"),
    ("soft_nms", (GOOD_BOXES, GOOD_SCORES), {"method": "hard"}, "method"),
    ("soft_nms", (GOOD_BOXES, GOOD_SCORES), {"sigma": 0.0}, "sigma"),
    ("soft_nms", (np.zeros((2, 5)), GOOD_SCORES), {}, "boxes"),
    ("diou_nms", (GOOD_BOXES, GOOD_SCORES[:1], 0.5), {}, "scores"),
    ("diou_nms", (NAN_BOXES, GOOD_SCORES, 0.5), {}, "boxes"),
    ("non_max_suppression", (np.zeros((3, 6)),), {}, "prediction"),
    ("non_max_suppression", (np.zeros((1, 3, 5)),), {}, "prediction"),
    ("non_max_suppression", (np.full((1, 3, 6), np.nan),), {}, "prediction"),
    ("non_max_suppression", (np.zeros((1, 3, 6)),), {"conf_thres": 1.5}, "conf_thres"),
    ("non_max_suppression", (np.zeros((1, 3, 6)),), {"iou_thres": -0.1}, "iou_thres"),
    ("non_max_suppression", (np.zeros((1, 3, 6)),), {"version": "v9"}, "version"),
    ("non_max_suppression", (np.zeros((1, 3, 6)),), {"max_det": -1}, "max_det"),
    ("non_max_suppression", (np.zeros((1, 4, 6)),), {"version": "v8"}, "prediction"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fname,args,kwargs,argname", BAD,
                         ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises_value_error_naming_argument(impl, fname, args, kwargs, argname):
    with pytest.raises(ValueError, match=argname):
        impl.call(f"nms.{fname}", *args, **kwargs)


# ----------------------------------------------------------------------------- devices

@pytest.mark.cuda
def test_port_on_cuda_equals_cpu():
    rng = np.random.default_rng(0)
    boxes = torch.from_numpy(random_boxes(rng, 3000)).float()
    scores = torch.from_numpy(rng.uniform(0, 1, 3000)).float()
    idxs = torch.from_numpy(rng.integers(0, 4, 3000))
    cpu = T.nms(boxes, scores, 0.5)
    gpu = T.nms(boxes.cuda(), scores.cuda(), 0.5)
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)
    assert torch.equal(T.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5).cpu(),
                       T.batched_nms(boxes, scores, idxs, 0.5))
    mask = T.nms_padded(boxes.cuda().reshape(3, 1000, 4), scores.cuda().reshape(3, 1000), 0.5)
    assert torch.equal(mask.cpu(), T.nms_padded(boxes.reshape(3, 1000, 4),
                                                scores.reshape(3, 1000), 0.5))


# ----------------------------------------------------------------------------- the port's shortcuts

@pytest.mark.parametrize("budget", [0, T.PAIR_BUDGET], ids=["blocked", "sparse"])
def test_long_chain_equals_torchvision(budget, monkeypatch):
    """Each box overlaps only the next (IoU 0.6): blocks do not settle within the fixed-point
    steps, so the port's sequential block loop runs (blocked pass), or the greedy loop over the
    sparse graph runs through 700 dependent decisions; kept = every other box, as torchvision."""
    from parity_tests.bench.nms import chain_boxes

    monkeypatch.setattr(T, "PAIR_BUDGET", budget)
    boxes, scores = chain_boxes(700)
    for dtype in DTYPES:
        assert_same_as_torchvision(boxes, scores, 0.5, dtype)
    assert len(T.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5)) == 350


@pytest.mark.parametrize("first_prefix", [1, 3, 1024])
@settings(max_examples=30)
@given(data=st.data())
def test_non_max_suppression_shortcuts_equal_reference(first_prefix, data):
    """The port's prefix early exit (any first prefix), its stable top-k ``max_nms`` cut (tied
    scores) and its per-class groups (classes apart at max_wh 7680) or one offset pass (classes
    overlapping at max_wh 100 or 30 in the 160-pixel strategy image) give the reference's rows,
    on the default engines and with every set declined as dense and handed off (the path a
    clustered image's later prefixes take)."""
    version = data.draw(st.sampled_from(["v5", "v8"]), label="version")
    pred = data.draw(S.yolo_predictions(version, max_a=40), label="prediction")
    kw = {"conf_thres": data.draw(st.sampled_from([0.0, 0.25])),
          "iou_thres": data.draw(st.sampled_from([0.3, 0.6])),
          "multi_label": data.draw(st.booleans()),
          "max_det": data.draw(st.sampled_from([300, 2])),
          "max_nms": data.draw(st.sampled_from([30000, 5])),
          "max_wh": data.draw(st.sampled_from([7680.0, 100.0, 30.0])),
          "version": version}
    want = REF.call("nms.non_max_suppression", pred, dtype="float32", **kw)
    before, T.FIRST_PREFIX = T.FIRST_PREFIX, first_prefix
    try:
        got = PORT.call("nms.non_max_suppression", pred, dtype="float32", **kw)
        with _Engine("handoff"):
            got_handoff = PORT.call("nms.non_max_suppression", pred, dtype="float32", **kw)
    finally:
        T.FIRST_PREFIX = before
    assert_parity(got, want, name="nms.non_max_suppression", tol=EXACT, inputs=(pred, kw))
    assert_parity(got_handoff, want, name="nms.non_max_suppression", tol=EXACT, inputs=(pred, kw))


@pytest.mark.parametrize("impl", IMPLS)
def test_non_max_suppression_small_max_wh_suppresses_across_classes(impl):
    """With max_wh smaller than the boxes, the class offset no longer separates the classes:
    a class-1 box at (-30, -30) offset by 30 lands on the class-0 box and is suppressed, as in
    YOLOv5's offset trick; at the default max_wh both are kept (the port's per-class groups)."""
    pred = np.zeros((1, 2, 7))
    pred[0, :, :4] = [[50, 50, 100, 100], [20, 20, 100, 100]]
    pred[0, :, 4] = 1.0
    pred[0, 0, 5], pred[0, 1, 6] = 0.9, 0.8
    assert len(impl.call("nms.non_max_suppression", pred, max_wh=30.0)[0]) == 1
    assert len(impl.call("nms.non_max_suppression", pred)[0]) == 2


# ----------------------------------------------------------------------------- the sparse engine
# On CPU, nms / batched_nms / nms_padded run the sparse pair engine (candidate pairs found by
# sorting, greedy loop over the pairs with IoU > thr) and fall back to the blocked matrix pass
# when it declines. Both must give torchvision's result bit for bit on every kind of input.

class _Engine:
    """Context manager pinning the engine: ``_Engine("sparse")`` never declines for size,
    ``_Engine("blocked")`` switches the sparse engine off, ``_Engine("handoff")`` declines
    nearly every set as too dense (2 pairs per box), so that the blocked pass decides the first
    positions of each group (8-box blocks, shared by small groups) and hands the rest of the
    group to the sparse engine after 3, 12, ... of them."""

    SETTINGS = {"sparse": (10 ** 9, T.BLOCK, T.HANDOFF_FIRST),
                "blocked": (0, T.BLOCK, T.HANDOFF_FIRST), "handoff": (2, 8, 3)}

    def __init__(self, which: str):
        self.settings = self.SETTINGS[which]

    def __enter__(self):
        self.before = (T.PAIR_BUDGET, T.BLOCK, T.HANDOFF_FIRST)
        T.PAIR_BUDGET, T.BLOCK, T.HANDOFF_FIRST = self.settings

    def __exit__(self, *exc):
        T.PAIR_BUDGET, T.BLOCK, T.HANDOFF_FIRST = self.before


ENGINE_FAMILIES = ["uniform", "clustered", "chain", "identical", "grid", "huge", "mixed_sizes"]


@st.composite
def engine_boxes(draw, max_n: int = 60, min_n: int = 0) -> tuple[np.ndarray, str]:
    """[N, 4] float64 boxes of one family: uniform, clustered (heavy overlap), a chain (each box
    shifted a little from the previous, so decisions depend on each other), a few boxes repeated
    (identical boxes), small-integer coordinates (IoU exactly at usual thresholds), huge
    coordinates with small sizes (rounding of the window bounds), sizes spanning decades."""
    n = draw(st.integers(min_n, max_n))
    family = draw(st.sampled_from(ENGINE_FAMILIES))
    u = lambda lo, hi, shape: draw(hnp.arrays(np.float64, shape, elements=S.floats(lo, hi)))  # noqa: E731
    if family == "uniform":
        xy, wh = u(0, 300, (n, 2)), u(1, 80, (n, 2))
    elif family == "clustered":
        k = draw(st.integers(1, 3))
        centres = u(20, 200, (k, 2))
        which = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
        wh = u(8, 30, (n, 2))
        xy = centres[which] + u(-4, 4, (n, 2)) - wh / 2
    elif family == "chain":
        step, side = draw(S.floats(0.25, 6.0)), draw(S.floats(4.0, 20.0))
        xy = np.stack([np.arange(n) * step, np.zeros(n)], axis=1)
        wh = np.full((n, 2), side)
    elif family == "identical":
        base = np.concatenate([u(0, 50, (3, 2)), u(5, 20, (3, 2))], axis=1)
        which = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2)))
        xy, wh = base[which, :2], base[which, 2:]
    elif family == "grid":
        q = draw(hnp.arrays(np.int64, (n, 4), elements=st.integers(0, 12)))
        xy, wh = q[:, :2].astype(np.float64), 1.0 + q[:, 2:]
    elif family == "huge":
        offset = draw(st.sampled_from([1e5, 3e6, -2e7, 1e12]))
        xy, wh = offset + u(0, 40, (n, 2)), u(0.5, 12, (n, 2))
    else:
        xy, wh = u(0, 400, (n, 2)), 10.0 ** u(-1, 2.5, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).reshape(n, 4), family


def _torchvision_nms(boxes, scores, thr, dtype: str):
    """torchvision's CPU NMS takes float32/float64: float16 inputs are rounded to float16 and
    computed in float32 (what the port does with them)."""
    if dtype == "float16":
        boxes, scores = (np.asarray(a).astype(np.float16).astype(np.float64) for a in (boxes, scores))
        dtype = "float32"
    return PORT.call(tvo.nms, boxes, scores, thr, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@settings(max_examples=60)
@given(bf=engine_boxes(), data=st.data(), thr=S.nms_thresholds())
@example(bf=(np.array([UNIT] * 4 + [[0, 0, 10, 20], [5, 0, 15, 10]]), "identical"), data=None,
         thr=0.5)  # identical boxes, IoU exactly 0.5 and 1/3
def test_sparse_engine_equals_blocked_and_torchvision(dtype, bf, data, thr):
    """nms, batched_nms (1-4 classes) and nms_padded: sparse engine == blocked pass == blocked
    pass handing off to the sparse engine == torchvision (== the reference for batched_nms and
    nms_padded), on every family, with continuous, tied and NaN scores."""
    boxes, family = bf
    n = len(boxes)
    if data is None:
        scores, idxs = np.linspace(1, 0.5, n), np.arange(n) % 2
    else:
        scores = data.draw(S.nms_scores(n))
        idxs = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, data.draw(st.integers(0, 3)))))
    if dtype == "float16" and family == "huge" and n:
        boxes = boxes - boxes[:, :2].min()  # float16 cannot hold the offsets
    want = _torchvision_nms(boxes, scores, thr, dtype)
    want_b = REF.call("nms.batched_nms", boxes, scores, idxs, thr, dtype=dtype)
    padded = (np.stack([boxes, boxes[::-1]]), np.stack([scores, scores[::-1]]), thr)
    want_p = REF.call("nms.nms_padded", *padded, dtype=dtype)
    for engine in ("sparse", "blocked", "handoff"):
        with _Engine(engine):
            got = PORT.call("nms.nms", boxes, scores, thr, dtype=dtype)
            got_b = PORT.call("nms.batched_nms", boxes, scores, idxs, thr, dtype=dtype)
            got_p = PORT.call("nms.nms_padded", *padded, dtype=dtype)
        inputs = (boxes, scores, idxs, thr, dtype, engine)
        assert_parity(got, want, name="nms.nms", tol=EXACT, inputs=inputs)
        assert_parity(got_b, want_b, name="nms.batched_nms", tol=EXACT, inputs=inputs)
        assert_parity(got_p, want_p, name="nms.nms_padded", tol=EXACT, inputs=inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=80)
@given(bf=engine_boxes(max_n=40, min_n=2), thr=S.nms_thresholds(), labelled=st.booleans())
def test_sparse_candidates_cover_every_suppressing_pair(dtype, bf, thr, labelled):
    """The culling bound itself: every pair with float IoU > thr (torchvision's box_iou, by
    brute force) is among the candidate pairs the sparse engine enumerates, whatever the
    coordinates' scale; the engine applies to all these sets (it does not decline)."""
    boxes, _ = bf
    n = len(boxes)
    t = torch.tensor(boxes, dtype=getattr(torch, dtype))
    labels = torch.arange(n) // 7 if labelled else None
    iou = tvo.box_iou(t, t).double()
    same = torch.ones(n, n, dtype=torch.bool) if labels is None else labels[:, None] == labels
    want = {(i, j) for i, j in torch.nonzero(torch.triu(iou > thr, 1) & same).tolist()}
    cols = list(t.numpy().T)
    f = (1.0 - max(0.0, (thr - 1e-9) * (1.0 - 1e-5))) * (1.0 + 1e-6)
    with _Engine("sparse"):
        found = T._candidate_ranges(*cols, None if labels is None else labels.numpy(), f)
    assert found is not None
    order, src, starts, counts = found
    got = set()
    for k, s0, c in zip(src.tolist(), starts.tolist(), counts.tolist()):
        for j in range(s0, s0 + c):
            a, b = int(order[k]), int(order[j])
            got.add((min(a, b), max(a, b)))
    assert want <= got, sorted(want - got)[:5]
    assert T._sparse_keep(t, torch.ones(n, dtype=torch.bool), thr) is not None


def test_sparse_engine_declines_where_its_bound_is_not_proved():
    """Negative thresholds (disjoint boxes suppress), areas below 1e-30 in float32 (subnormal
    intersections) and more candidate pairs than the budget: the blocked pass runs instead,
    with torchvision's result."""
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 300, span=100)
    scores = rng.uniform(0, 1, 300)
    alive = torch.ones(300, dtype=torch.bool)
    t = torch.tensor(boxes, dtype=torch.float32)
    assert T._sparse_keep(t, alive, -0.5) is None
    assert_same_as_torchvision(boxes, scores, -0.5, "float32")
    tiny = boxes * 1e-17  # areas ~1e-32
    assert T._sparse_keep(torch.tensor(tiny, dtype=torch.float32), alive, 0.5) is None
    assert_same_as_torchvision(tiny, scores, 0.5, "float32")
    crowd = np.tile([[0.0, 0.0, 10.0, 10.0]], (300, 1)) + rng.uniform(0, 1, (300, 4))
    with _Engine("sparse"):
        assert T._sparse_keep(torch.tensor(crowd), alive, 0.5) is not None
    assert T._sparse_keep(torch.tensor(crowd), alive, 0.5) is None  # 300 x 300 / 2 pairs: over budget
    assert_same_as_torchvision(crowd, scores, 0.5, "float64")


@pytest.mark.parametrize("n", [2000, 5000])
def test_bench_inputs_equal_torchvision(n):
    """The benchmark's rows: random boxes, the 1-px long chain (keeps every 4th box) and
    80-class batched_nms, sparse engine on its default budget == torchvision."""
    from parity_tests.bench.peers import chain_boxes as chain_1px
    from parity_tests.bench.peers import random_boxes as bench_boxes

    impls = BOTH if n <= 2000 else (PORT,)  # the reference's loop is the slow part
    rng = np.random.default_rng(n)
    boxes, scores = bench_boxes(rng, n)
    assert_same_as_torchvision(boxes, scores, 0.5, "float32", impls)
    chain, chain_scores = chain_1px(n)
    assert_same_as_torchvision(chain, chain_scores, 0.5, "float32", impls)
    assert len(T.nms(torch.from_numpy(chain), torch.from_numpy(chain_scores), 0.5)) == n // 4
    idxs = rng.integers(0, 80, n)
    want = PORT.call(tvo.batched_nms, boxes, scores, idxs, 0.5, dtype="float32")
    got = PORT.call("nms.batched_nms", boxes, scores, idxs, 0.5, dtype="float32")
    assert sorted(got.tolist()) == sorted(want.tolist())
    if n <= 2000:  # the reference's loop is the slow part
        assert_parity(got, REF.call("nms.batched_nms", boxes, scores, idxs, 0.5, dtype="float32"),
                      name="nms.batched_nms", tol=EXACT)


@pytest.mark.parametrize("labelled", [False, True])
def test_dense_clusters_hand_off_to_the_sparse_engine(labelled, monkeypatch):
    """2,000 boxes in 3 tight clusters: the sparse engine declines the whole set (hundreds of
    candidate pairs per box), the blocked pass decides the first positions and the sparse engine
    then takes the rest; the result is torchvision's (batched: the reference's)."""
    calls = []
    real = T._sparse_keep

    def spy(boxes, alive, threshold, labels=None):
        out = real(boxes, alive, threshold, labels)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(T, "_sparse_keep", spy)
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 2000, clusters=3, lo=20, hi=60)
    scores = rng.uniform(0, 1, 2000)
    if labelled:
        idxs = rng.integers(0, 2, 2000)
        got = PORT.call("nms.batched_nms", boxes, scores, idxs, 0.45, dtype="float32")
        want = REF.call("nms.batched_nms", boxes, scores, idxs, 0.45, dtype="float32")
        assert_parity(got, want, name="nms.batched_nms", tol=EXACT)
    else:
        assert_same_as_torchvision(boxes, scores, 0.45, "float32")
    assert calls[0] is False and calls[-1] is True, calls  # declined, then handed the rest
