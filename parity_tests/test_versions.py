"""The ``version`` argument of the Ultralytics-compatible functions ("yolov5" = YOLOv5 v7.0,
"8.3" = ultralytics 8.3.253, "8.4" = ultralytics 8.4.190; ``ULTRALYTICS_VERSIONS``).

Two kinds of test:

- constructed inputs (always run): for each difference between releases, the smallest input
  that shows it, with the value each release gives, reference and port alike;
- oracle tests (skipped unless the release is installed, e.g. in the peers' venv: run
  ``YOLO_OFFLINE=1 python -m pytest parity_tests/test_versions.py`` there): Hypothesis inputs
  through the installed ultralytics (8.4.190) and yolov5 (7.0.x) functions themselves, compared
  with ``version="8.4"`` / ``"yolov5"``. Inputs avoid what the releases leave unspecified:
  IoU / confidence ties where a release sorts with an unstable quicksort (yolov5, 8.3), and
  ``torch.topk``'s order among equal metrics (the TAL and loss oracles use ``topk`` = all
  anchors). The confusion-matrix oracles use integer boxes, where the releases' float32 IoU
  with 1e-7 in the union decides every ``> iou_thres`` as the toolkit's float64 IoU does.
"""
from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import to_port
from parity_tests.tolerances import EXACT, assert_parity, to_numpy
from ref_numpy import assign as RA
from ref_numpy import loss as RL
from ref_numpy import metrics as R
from ref_numpy.shared.constants import TAL_VERSIONS, ULTRALYTICS_DEFAULT_VERSION, ULTRALYTICS_VERSIONS
from torch_impl import assign as TA
from torch_impl import loss as TL
from torch_impl import metrics as P

os.environ.setdefault("YOLO_OFFLINE", "1")  # the ultralytics oracle never downloads


def _both_metrics(fn, *args, **kw):
    """(reference, port) of ``metrics.fn`` on float64 NumPy inputs."""
    return getattr(R, fn)(*args, **kw), getattr(P, fn)(*to_port(args, "float64"), **kw)


# ============================================================================ the constant

def test_versions_constant_and_defaults():
    """One tuple of values, one default, used by every function on both sides."""
    assert ULTRALYTICS_VERSIONS == ("yolov5", "8.3", "8.4") and TAL_VERSIONS == ("8.3", "8.4")
    import inspect
    for mod in (R, P):
        for fn in ("compute_ap", "ap_per_class", "match_predictions", "confusion_matrix",
                   "ultralytics_evaluate"):
            assert inspect.signature(getattr(mod, fn)).parameters["version"].default == ULTRALYTICS_DEFAULT_VERSION
    for mod in (RA, TA):
        for fn in ("task_aligned_assign", "task_aligned_report"):
            assert inspect.signature(getattr(mod, fn)).parameters["version"].default == ULTRALYTICS_DEFAULT_VERSION
    for mod in (RL, TL):
        assert inspect.signature(mod.yolov8_loss).parameters["version"].default == ULTRALYTICS_DEFAULT_VERSION


# ============================================================================ match_predictions

@pytest.mark.parametrize("version,expected", [("yolov5", [True, False]), ("8.3", [True, False]),
                                              ("8.4", [True, True])])
def test_match_predictions_greedy_in_84(version, expected):
    """IoU [[0.9, 0.6], [0, 0.55]], one class, threshold 0.5: yolov5 v7.0 / 8.3.253 give label 0
    to its lowest-index prediction and prediction 1 loses its only pair; 8.4.190 matches in
    confidence order, so prediction 1 takes label 1."""
    iou = np.array([[0.9, 0.6], [0.0, 0.55]])
    cls = np.zeros(2, np.int64)
    for out in _both_metrics("match_predictions", cls, cls, iou, np.array([0.5]), version=version):
        assert_parity(out[:, 0], np.array(expected), name="metrics.match_predictions", tol=EXACT)


@pytest.mark.parametrize("version,expected", [("yolov5", False), ("8.3", True), ("8.4", True)])
def test_match_predictions_zero_threshold_wrong_class(version, expected):
    """At threshold 0 a wrong-class pair (IoU 0.7) is correct in 8.3.253 / 8.4.190, which
    compare ``iou * (classes equal)`` = 0 with the threshold; yolov5 v7.0 requires equal classes."""
    out = _both_metrics("match_predictions", np.array([1]), np.array([0]), np.array([[0.7]]),
                        np.array([0.0]), version=version)
    for o in out:
        assert_parity(o[:, 0], np.array([expected]), name="metrics.match_predictions", tol=EXACT)


# ============================================================================ confusion_matrix

# L1 = [0, 10] (class 1), L0 = [3, 14.667] (class 0); d0 = [3, 10] (conf 0.9, class 0) overlaps
# L1 by 0.7 and L0 by 0.6, d1 = [0, 9] (conf 0.8, class 1) overlaps L1 by 0.9 (and L0 by 0.41).
_LAB = np.array([[0, 3.0, 0.0, 3.0 + 7.0 / 0.6, 10.0], [1, 0.0, 0.0, 10.0, 10.0]])
_DET = np.array([[3.0, 0.0, 10.0, 10.0, 0.9, 0], [0.0, 0.0, 9.0, 10.0, 0.8, 1]])


@pytest.mark.parametrize("version,cells", [
    ("yolov5", {(1, 1): 1, (2, 0): 1, (0, 2): 1}),   # L1-d1 (best IoU); L0 missed; d0 FP
    ("8.3", {(1, 1): 1, (2, 0): 1, (0, 2): 1}),
    ("8.4", {(0, 1): 1, (2, 0): 1, (1, 2): 1}),      # d0 first takes L1; d1 then finds nothing
])
def test_confusion_matrix_greedy_in_84(version, cells):
    """8.4.190 matches in confidence order (d0 takes L1, its best label); yolov5 v7.0 / 8.3.253
    keep, per label, the pair of largest IoU (L1-d1)."""
    desired = np.zeros((3, 3))
    for k, v in cells.items():
        desired[k] = v
    for out in _both_metrics("confusion_matrix", _DET, _LAB, 2, version=version):
        assert_parity(out, desired, name="metrics.confusion_matrix", tol=EXACT)


@pytest.mark.parametrize("version", ULTRALYTICS_VERSIONS)
def test_confusion_matrix_false_positives(version):
    """A detection overlapping nothing in an image whose label is missed: an FP in 8.3.253 and
    8.4.190, nothing in yolov5 v7.0 (no match at all in the image); an image without labels:
    every detection an FP in 8.3 / 8.4, the zero matrix in yolov5 (its val.py skips it)."""
    lab = np.array([[0, 0.0, 0.0, 10.0, 10.0]])
    det = np.array([[50.0, 50.0, 60.0, 60.0, 0.9, 1]])
    fp = 0.0 if version == "yolov5" else 1.0
    want = np.zeros((3, 3))
    want[2, 0], want[1, 2] = 1, fp
    for out in _both_metrics("confusion_matrix", det, lab, 2, version=version):
        assert_parity(out, want, name="metrics.confusion_matrix", tol=EXACT)
    want = np.zeros((3, 3))
    want[1, 2] = fp
    for out in _both_metrics("confusion_matrix", det, lab[:0], 2, version=version):
        assert_parity(out, want, name="metrics.confusion_matrix", tol=EXACT)


@pytest.mark.parametrize("version,kept", [("yolov5", 1.0), ("8.3", 0.0), ("8.4", 1.0)])
def test_confusion_matrix_conf_0001(version, kept):
    """conf=0.001 (the validators' default): 8.3.253 replaces it by 0.25, so a 0.1-confidence
    detection is dropped there and counted (here as an FP next to a match) in the others."""
    lab = np.array([[0, 0.0, 0.0, 10.0, 10.0]])
    det = np.array([[0.0, 0.0, 10.0, 10.0, 0.9, 0], [50.0, 50.0, 60.0, 60.0, 0.1, 1]])
    for out in _both_metrics("confusion_matrix", det, lab, 2, conf=0.001, version=version):
        assert float(to_numpy(out)[1, 2]) == kept and float(to_numpy(out)[0, 0]) == 1.0


# ============================================================================ compute_ap

@pytest.mark.parametrize("version,rec,prec,expected", [
    ("yolov5", [0.5], [1.0], 0.75), ("8.3", [0.5], [1.0], 0.75), ("8.4", [0.5], [1.0], 0.495),
    ("yolov5", [], [], 0.5), ("8.3", [], [], 0.5), ("8.4", [], [], 0.5)])
def test_compute_ap_end_points(version, rec, prec, expected):
    """8.4.190 drops precision to 0 after the last recall; an empty curve gives 0.5 everywhere
    (8.4.190's empty curve takes r[-1] = 1)."""
    rec, prec = np.array(rec, dtype=np.float64), np.array(prec, dtype=np.float64)
    for out in _both_metrics("compute_ap", rec, prec, version=version):
        assert_parity(out[0], np.float64(expected), name="metrics.compute_ap", dtype="float64")


# ============================================================================ bad version

@pytest.mark.parametrize("mod", [R, P])
def test_metric_functions_refuse_unknown_versions(mod):
    calls = {"compute_ap": (np.zeros(1), np.zeros(1)),
             "ap_per_class": (np.zeros((0, 1)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)),
             "match_predictions": (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0)), np.array([0.5])),
             "confusion_matrix": (np.zeros((0, 6)), np.zeros((0, 5)), 2)}
    for fn, args in calls.items():
        if mod is P:
            args = to_port(args, "float64")
        for bad in ("8.5", "v8", 8.4, None):
            with pytest.raises(ValueError, match=r"version: expected one of 'yolov5'.*'8\.3'.*'8\.4'"):
                getattr(mod, fn)(*args, version=bad)


# ============================================================================ TAL and the v8 loss

def _tal_inputs(gt_box):
    """One 32 x 32 px image, one stride-8 level (anchor centres 4, 12, 20, 28), one GT."""
    g = np.arange(4) * 8 + 4.0
    ys, xs = np.meshgrid(g, g, indexing="ij")
    anc = np.stack([xs, ys], -1).reshape(-1, 2)
    a = len(anc)
    scores = np.full((1, a, 1), 0.5)
    pd = np.concatenate([anc - 6.0, anc + 6.0], -1)[None]
    return (scores, pd, anc, np.zeros((1, 1, 1)), np.array([[gt_box]], dtype=np.float64),
            np.ones((1, 1, 1)))


@pytest.mark.parametrize("gt,n83,n84", [
    ([13.0, 13.0, 19.0, 19.0], 0, 4),    # 6 px: no anchor inside; 8.4 enlarges to 16 px -> 4
    ([12.5, 12.5, 23.5, 23.5], 1, 4),    # 11 px (>= 8, < 16): 8.4 still enlarges it
    ([2.0, 2.0, 30.0, 30.0], 16, 16),    # 28 px: no change
])
def test_tal_small_object_rule(gt, n83, n84):
    """8.4.190 enlarges GT sides shorter than strides[1] (16 px at strides 8/16/32) to 16 px
    about the centre for candidate selection; 8.3.253 does not. Counted: positives with
    topk = all anchors, on both sides."""
    args = _tal_inputs(gt)
    for version, n in (("8.3", n83), ("8.4", n84)):
        ref = RA.task_aligned_assign(*args, topk=16, num_classes=1, version=version)
        port = TA.task_aligned_assign(*to_port(args, "float64"), topk=16, num_classes=1, version=version)
        assert_parity(port, ref, name="assign.task_aligned_assign", dtype="float64")
        assert int(ref[3].sum()) == n


def test_tal_one_level_uses_its_stride():
    """With one level, 8.4.190's stride_val is strides[0]."""
    args = _tal_inputs([13.0, 13.0, 19.0, 19.0])
    fg = RA.task_aligned_assign(*args, topk=16, num_classes=1, version="8.4", strides=[8.0])[3]
    assert int(fg.sum()) == 0  # 8 px about 16: [12, 20], no centre strictly inside
    fg = RA.task_aligned_assign(*args, topk=16, num_classes=1, version="8.4", strides=[24.0])[3]
    assert int(fg.sum()) == 4  # 24 px: [4, 28] holds the centres 12 and 20


@pytest.mark.parametrize("mod", [(RA, RL), (TA, TL)])
def test_tal_and_loss_refuse_yolov5_and_unknown(mod):
    assign, loss = mod
    args = _tal_inputs([2.0, 2.0, 30.0, 30.0])
    if assign is TA:
        args = to_port(args, "float64")
    for fn in (assign.task_aligned_assign, assign.task_aligned_report):
        with pytest.raises(ValueError, match="version: 'yolov5'.*no task-aligned assigner"):
            fn(*args, num_classes=1, topk=4, version="yolov5")
        with pytest.raises(ValueError, match=r"version: expected one of '8\.3'.*'8\.4'"):
            fn(*args, num_classes=1, topk=4, version="8.5")
        with pytest.raises(ValueError, match="strides"):
            fn(*args, num_classes=1, topk=4, version="8.4", strides=[8.0, -16.0])
    preds = [np.zeros((1, 4 * 2 + 1, 2, 2))]
    targets = np.array([[0, 0, 0.5, 0.5, 0.1, 0.1]])
    if loss is TL:
        preds, targets = to_port(preds, "float64"), torch.tensor(targets)
    with pytest.raises(ValueError, match="version: 'yolov5'"):
        loss.yolov8_loss(preds, targets, [8.0], reg_max=2, version="yolov5")


def test_yolov8_loss_versions_differ_on_a_small_object():
    """A 6 px object at strides 8/16 between the anchor centres: 8.3.253 gives it no positive (no
    box or DFL loss), 8.4.190 enlarges it to 16 px; both sides agree per version."""
    preds = [np.zeros((1, 4 * 4 + 2, 4, 4)), np.zeros((1, 4 * 4 + 2, 2, 2))]  # 3-cell boxes, CIoU > 0
    targets = np.array([[0, 1, 0.5, 0.5, 6.0 / 32, 6.0 / 32]])  # [13, 19] px: no centre inside
    parts = {}
    for version in TAL_VERSIONS:
        ref = RL.yolov8_loss(preds, targets, [8.0, 16.0], reg_max=4, version=version)
        port = TL.yolov8_loss(to_port(preds, "float64"), torch.tensor(targets), [8.0, 16.0],
                              reg_max=4, version=version)
        assert_parity(port, ref, name="loss.yolov8_loss", dtype="float64")
        parts[version] = ref[1]
    assert float(parts["8.3"]["box"]) == 0.0 and float(parts["8.4"]["box"]) > 0.0


# ============================================================================ ultralytics_evaluate

def test_ultralytics_evaluate_versions():
    """The protocol passes ``version`` on: the greedy matching of 8.4.190 changes the
    confusion matrix of the constructed image above, and its conf (``conf_thres`` in 8.3 /
    8.4, 0.25 in yolov5) follows the release; both sides agree."""
    gt_boxes, gt_labels = [_LAB[:, 1:]], [_LAB[:, 0].astype(np.int64)]
    det = (_DET[:, :4], _DET[:, 4], _DET[:, 5].astype(np.int64), np.zeros(2, np.int64))
    cms = {}
    for version in ULTRALYTICS_VERSIONS:
        ref = R.ultralytics_evaluate(gt_boxes, gt_labels, *det, version=version, nc=2)
        port = P.ultralytics_evaluate(to_port(gt_boxes, "float64"), to_port(gt_labels, "float64"),
                                      *to_port(det, "float64"), version=version, nc=2)
        assert_parity(port.confusion_matrix, ref.confusion_matrix, name="metrics.ultralytics_evaluate", tol=EXACT)
        assert_parity(port.tp, ref.tp, name="metrics.ultralytics_evaluate", tol=EXACT)
        cms[version] = to_numpy(ref.confusion_matrix)
    assert np.array_equal(cms["yolov5"], cms["8.3"]) and not np.array_equal(cms["8.3"], cms["8.4"])


# ============================================================================ oracles: the releases

def _yolov5(monkeypatch):
    if not hasattr(np, "trapz"):  # yolov5 7.0.x calls numpy.trapz (gone in NumPy 2.4)
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    cfg = "/work/peers/yolov5cfg"
    if os.path.isdir(cfg):
        monkeypatch.setenv("YOLOV5_CONFIG_DIR", cfg)
    return pytest.importorskip("yolov5.utils.metrics")


def _ultralytics():
    ul = pytest.importorskip("ultralytics")
    if not ul.__version__.startswith("8.4"):
        pytest.skip(f"ultralytics {ul.__version__} installed, the oracle of '8.4' is 8.4.x")
    return ul


_IOUV = torch.linspace(0.5, 0.95, 10).numpy()  # the validators' iouv, float32


@st.composite
def _distinct_iou(draw, max_n=8, max_m=6, nc=3):
    """(pred_classes, true_classes, iou float32 [M, N]) with distinct non-zero IoUs."""
    n, m = draw(st.integers(0, max_n)), draw(st.integers(0, max_m))
    vals = draw(st.lists(st.integers(1, 10_000), min_size=m * n, max_size=m * n, unique=True))
    zero = draw(hnp.arrays(np.bool_, (m, n)))
    iou = np.where(zero, 0.0, np.array(vals, dtype=np.float64).reshape(m, n) / 10_000).astype(np.float32)
    pc = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, nc - 1)))
    tc = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, nc - 1)))
    return pc, tc, iou


@settings(max_examples=40, deadline=None)
@given(problem=_distinct_iou())
def test_match_predictions_equals_ultralytics_84(problem):
    _ultralytics()
    from ultralytics.engine.validator import BaseValidator
    pc, tc, iou = problem
    ns = SimpleNamespace(iouv=torch.from_numpy(_IOUV))
    desired = BaseValidator.match_predictions(ns, torch.from_numpy(pc), torch.from_numpy(tc),
                                              torch.from_numpy(iou)).numpy()
    for out in (R.match_predictions(pc, tc, iou, _IOUV, version="8.4"),
                P.match_predictions(torch.from_numpy(pc), torch.from_numpy(tc), torch.from_numpy(iou),
                                    torch.from_numpy(_IOUV), version="8.4")):
        assert_parity(out, desired, name="metrics.match_predictions", tol=EXACT, inputs=problem)


@settings(max_examples=40, deadline=None)
@given(problem=_distinct_iou())
def test_match_predictions_equals_yolov5(problem, monkeypatch_module):
    m5 = _yolov5(monkeypatch_module)
    from yolov5.val import process_batch
    pc, tc, iou = problem
    import yolov5.val as v5val  # process_batch computes the IoU from boxes: hand it the drawn one
    monkeypatch_module.setattr(v5val, "box_iou", lambda a, b: torch.from_numpy(iou))
    det = torch.zeros((len(pc), 6))
    det[:, 5] = torch.from_numpy(pc).float()
    lab = torch.zeros((len(tc), 5))
    lab[:, 0] = torch.from_numpy(tc).float()
    desired = process_batch(det, lab, torch.from_numpy(_IOUV)).numpy()
    assert m5 is not None
    for out in (R.match_predictions(pc, tc, iou, _IOUV, version="yolov5"),
                P.match_predictions(torch.from_numpy(pc), torch.from_numpy(tc), torch.from_numpy(iou),
                                    torch.from_numpy(_IOUV), version="yolov5")):
        assert_parity(out, desired, name="metrics.match_predictions", tol=EXACT, inputs=problem)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@st.composite
def _int_dets_labels(draw, max_n=8, max_m=6, nc=3, distinct_conf=False):
    """(detections [N, 6], labels [M, 5]) with integer corners in [0, 20] and sides >= 2."""
    n, m = draw(st.integers(0, max_n)), draw(st.integers(0, max_m))

    def boxes(k):
        xy = draw(hnp.arrays(np.int64, (k, 2), elements=st.integers(0, 16)))
        wh = draw(hnp.arrays(np.int64, (k, 2), elements=st.integers(2, 10)))
        return np.concatenate([xy, xy + wh], 1).astype(np.float64)

    conf = (np.array(draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))) / 1000
            if distinct_conf else draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.1, 0.3, 0.6, 0.9]))))
    det = np.concatenate([boxes(n), conf.reshape(n, 1),
                          draw(hnp.arrays(np.int64, (n, 1), elements=st.integers(0, nc - 1)))], 1)
    lab = np.concatenate([draw(hnp.arrays(np.int64, (m, 1), elements=st.integers(0, nc - 1))), boxes(m)], 1)
    return det.astype(np.float64), lab.astype(np.float64)


def _ul_confusion(det, lab, nc, conf, iou_thres):
    from ultralytics.utils.metrics import ConfusionMatrix
    cm = ConfusionMatrix(names={i: str(i) for i in range(nc)})
    t = torch.from_numpy(det.astype(np.float32))
    cm.process_batch({"bboxes": t[:, :4], "conf": t[:, 4], "cls": t[:, 5]},
                     {"bboxes": torch.from_numpy(lab[:, 1:].astype(np.float32)),
                      "cls": torch.from_numpy(lab[:, 0].astype(np.float32))}, conf=conf, iou_thres=iou_thres)
    return cm.matrix


@settings(max_examples=60, deadline=None)
@given(problem=_int_dets_labels(), conf=st.sampled_from([0.001, 0.25, 0.5]),
       iou_thres=st.sampled_from([0.3, 0.45]))
def test_confusion_matrix_equals_ultralytics_84(problem, conf, iou_thres):
    _ultralytics()
    det, lab = problem
    desired = _ul_confusion(det, lab, 3, conf, iou_thres)
    for out in _both_metrics("confusion_matrix", det, lab, 3, conf=conf, iou_thres=iou_thres, version="8.4"):
        assert_parity(out, desired, name="metrics.confusion_matrix", tol=EXACT, inputs=problem)


def _pair_ious_distinct(det, lab, thr):
    """True when the IoUs above ``thr`` are pairwise distinct (yolov5 sorts them with an
    unstable quicksort, so equal ones are matched in an unspecified order)."""
    iou = R.box_iou(lab[:, 1:], det[:, :4]) if len(det) and len(lab) else np.zeros((0,))
    v = iou[iou > thr]
    return len(np.unique(v)) == len(v)


@settings(max_examples=60, deadline=None)
@given(problem=_int_dets_labels())
def test_confusion_matrix_equals_yolov5(problem, monkeypatch_module):
    m5 = _yolov5(monkeypatch_module)
    det, lab = problem
    kept = det[det[:, 4] > 0.25]
    assume(_pair_ious_distinct(kept, lab, 0.45))
    cm = m5.ConfusionMatrix(nc=3)
    if len(lab) and len(det):  # as yolov5 v7.0 val.py calls it; images without labels never do
        cm.process_batch(torch.from_numpy(det.astype(np.float32)), torch.from_numpy(lab.astype(np.float32)))
    elif len(lab):
        cm.process_batch(None, torch.from_numpy(lab[:, 0].astype(np.float32)))
    for out in _both_metrics("confusion_matrix", det, lab, 3, version="yolov5"):
        assert_parity(out, cm.matrix, name="metrics.confusion_matrix", tol=EXACT, inputs=problem)


@settings(max_examples=40, deadline=None)
@given(curve=S.pr_curves())
def test_compute_ap_equals_releases(curve, monkeypatch_module):
    rec, prec = curve
    _ultralytics()
    from ultralytics.utils.metrics import compute_ap
    m5 = _yolov5(monkeypatch_module)
    for version, fn in (("8.4", compute_ap), ("yolov5", m5.compute_ap)):
        desired = fn(rec, prec)
        for out in _both_metrics("compute_ap", rec, prec, version=version):
            assert_parity(tuple(out), tuple(np.asarray(d, dtype=np.float64) for d in desired),
                          name="metrics.compute_ap", dtype="float64", inputs=curve)


@st.composite
def _stats_distinct_conf(draw):
    tp, conf, pred_cls, target_cls = draw(S.ultralytics_stats())
    conf = np.array(draw(st.lists(st.integers(1, 10_000), min_size=len(conf), max_size=len(conf),
                                  unique=True)), dtype=np.float64) / 10_000
    return tp, conf, pred_cls, target_cls


@settings(max_examples=30, deadline=None)
@given(stats=_stats_distinct_conf())
def test_ap_per_class_equals_releases(stats, monkeypatch_module):
    _ultralytics()
    from ultralytics.utils.metrics import ap_per_class
    m5 = _yolov5(monkeypatch_module)
    tp, conf, pred_cls, target_cls = stats
    for version, fn in (("8.4", ap_per_class), ("yolov5", m5.ap_per_class)):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yolov5's mean over no classes
            desired = fn(tp.astype(np.float64), conf, pred_cls, target_cls, names={})[:7]
        for out in _both_metrics("ap_per_class", tp, conf, pred_cls, target_cls, version=version):
            assert_parity(tuple(to_numpy(o).astype(np.float64) for o in out[:6]),
                          tuple(np.asarray(d, dtype=np.float64) for d in desired[:6]),
                          name="metrics.ap_per_class", dtype="float64", inputs=stats)
            assert_parity(to_numpy(out[6]).astype(np.int64), np.asarray(desired[6], dtype=np.int64),
                          name="metrics.ap_per_class", tol=EXACT, inputs=stats)


@settings(max_examples=30, deadline=None)
@given(problem=S.tal_problem())
def test_tal_equals_ultralytics_84(problem):
    """8.4.190's TaskAlignedAssigner(stride=[8, 16]) itself, topk = all anchors (its
    torch.topk order among equal metrics is unspecified)."""
    _ultralytics()
    from ultralytics.utils.tal import TaskAlignedAssigner
    args = [problem[k] for k in ("pd_scores", "pd_bboxes", "anc_points", "gt_labels", "gt_bboxes", "mask_gt")]
    a = args[2].shape[0]
    nc = problem["num_classes"]
    ul = TaskAlignedAssigner(topk=a, num_classes=nc, alpha=0.5, beta=6.0, stride=[8, 16])
    t = [torch.from_numpy(x) for x in args]
    labels, boxes, scores, fg, idx = ul(*t)
    desired = (labels.long(), boxes, scores, fg.bool(), idx.long())
    kw = dict(topk=a, num_classes=nc, version="8.4", strides=(8.0, 16.0))
    ref = RA.task_aligned_assign(*args, **kw)
    port = TA.task_aligned_assign(*to_port(args, "float64"), **kw)
    for out in (ref, port):
        assert_parity(out, desired, name="assign.task_aligned_assign", dtype="float64", inputs=problem)


class _V8Model(torch.nn.Module):
    """What ultralytics' v8DetectionLoss reads of a model: args (gains), model[-1] (stride, nc,
    reg_max) and a parameter for the device."""

    def __init__(self, strides, nc, reg_max):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
        self.model = [SimpleNamespace(stride=torch.tensor(strides), nc=nc, reg_max=reg_max)]


@settings(max_examples=20, deadline=None)
@given(h=S.yolov8_head_outputs())
def test_yolov8_loss_equals_ultralytics_84(h):
    """8.4.190's v8DetectionLoss (tal_topk = all anchors: its torch.topk order among equal
    metrics is unspecified); its loss vector is float32, so the comparison is at float32."""
    _ultralytics()
    from ultralytics.utils.loss import v8DetectionLoss
    preds, targets, strides, reg_max = h["preds"], h["targets"], h["strides"], h["reg_max"]
    targets = targets[np.argsort(targets[:, 0], kind="stable")]  # 8.4's preprocess wants them by image
    targets = targets.astype(np.float32).astype(np.float64)  # its batch is float32
    bs, no = preds[0].shape[:2]
    nc = no - 4 * reg_max
    a = sum(p.shape[2] * p.shape[3] for p in preds)
    crit = v8DetectionLoss(_V8Model(strides, nc, reg_max), tal_topk=a)
    feats = [torch.from_numpy(p) for p in preds]
    flat = torch.cat([f.view(bs, no, -1) for f in feats], 2)
    t32 = torch.from_numpy(targets.astype(np.float32))
    batch = {"batch_idx": t32[:, 0], "cls": t32[:, 1], "bboxes": t32[:, 2:6]}
    ul, _ = crit({"boxes": flat[:, :4 * reg_max], "scores": flat[:, 4 * reg_max:], "feats": feats}, batch)
    desired = {"box": ul[0] / bs, "cls": ul[1] / bs, "dfl": ul[2] / bs}
    for out in (RL.yolov8_loss(preds, targets, strides, reg_max=reg_max, topk=a, version="8.4"),
                TL.yolov8_loss(to_port(preds, "float64"), torch.from_numpy(targets), strides,
                               reg_max=reg_max, topk=a, version="8.4")):
        assert_parity({k: np.float32(to_numpy(v)) for k, v in out[1].items()},
                      {k: np.float32(to_numpy(v)) for k, v in desired.items()},
                      name="loss.yolov8_loss", dtype="float32", inputs=h)
