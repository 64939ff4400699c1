"""Hostile array inputs of ``metrics``: every bad input is a clean error, every edge input a
defined answer, and both sides agree on which (issue 11, section 4).

- Property tests (Hypothesis): a valid problem is drawn, ONE element is corrupted (a fractional,
  NaN, infinite, negative or out-of-range class label or image index; an inverted box; a
  negative area; a flag that is not 0/1; a recall curve that is NaN, above 1 or decreasing) and
  both sides must raise ``ValueError`` with the same message, naming the argument, the index of
  the element and its value. Valid edge inputs (empty, a single element) give equal answers.
- ``DetectionEvaluator``: updated from many threads at once it loses nothing (without its lock
  this test fails: checked by hand, see the test's docstring); ``merge`` refuses states it
  cannot reconcile; a bad batch adds nothing.
- The corpus: ~150 generated bad inputs over these APIs, each of which must end in a clean
  error (``ValueError`` / ``TypeError`` whose message names the argument) or a defined answer,
  identical in kind on both sides, never another exception.
"""
from __future__ import annotations

import copy
import pickle
import re
import sys
import threading

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref_numpy.metrics as R
import torch_impl.metrics as P
from parity_tests.registry import to_port
from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy.shared.checks import element_error

NAN, INF = float("nan"), float("inf")
#: Values that are not class labels (without an ``nc``): fractional, NaN, infinite, negative,
#: beyond the largest label.
BAD_LABELS = (1.5, 0.5, -1.0, NAN, INF, -INF, 2.0 ** 40)


def _port(x):
    """Numeric NumPy arrays (anywhere in lists, tuples, dicts) as float64 / integer tensors;
    anything else (strings, objects, None, scalars) reaches the port as it is."""
    if isinstance(x, np.ndarray):
        return to_port(x, "float64") if x.dtype.kind in "biuf" else x
    if isinstance(x, (list, tuple)):
        return type(x)(_port(v) for v in x)
    if isinstance(x, dict):
        return {k: _port(v) for k, v in x.items()}
    return x


SIDES = ((R, lambda x: x), (P, _port))


def _messages(call):
    """``call(module, convert)`` on both sides: the two ValueError messages (each side must raise)."""
    out = []
    for mod, conv in SIDES:
        with pytest.raises(ValueError) as info:
            call(mod, conv)
        out.append(str(info.value))
    return out


def assert_both_refuse(call, *needles):
    """Both sides raise ValueError with the SAME message, which contains every needle."""
    ref_msg, port_msg = _messages(call)
    assert ref_msg == port_msg, f"messages differ:\n  ref:  {ref_msg}\n  port: {port_msg}"
    for needle in needles:
        assert needle in ref_msg, f"{needle!r} not in {ref_msg!r}"
    return ref_msg


def _plant(arr, pos, value):
    """A float64 copy of ``arr`` with ``value`` at flat position ``pos``."""
    a = np.array(arr, dtype=np.float64)
    a.reshape(-1)[pos] = value
    return a


# ----------------------------------------------------------------------------- valid problems

@st.composite
def boxes_xyxy(draw, n):
    """[n, 4] xyxy boxes on an integer grid, sides 0..6 (zero-size boxes included)."""
    xy = np.array(draw(st.lists(st.integers(0, 20), min_size=2 * n, max_size=2 * n)), float).reshape(n, 2)
    wh = np.array(draw(st.lists(st.integers(0, 6), min_size=2 * n, max_size=2 * n)), float).reshape(n, 2)
    return np.concatenate([xy, xy + wh], 1).reshape(n, 4)


@st.composite
def voc_problem(draw, min_dets=1, min_gt=1):
    """(kwargs of voc_evaluate / ultralytics_evaluate, number of images): at least
    ``min_dets`` detections and ``min_gt`` GTs in image 0."""
    n_img = draw(st.integers(1, 3))
    gt_boxes, gt_labels, gt_difficult = [], [], []
    for i in range(n_img):
        g = draw(st.integers(min_gt if i == 0 else 0, 3))
        gt_boxes.append(draw(boxes_xyxy(g)))
        gt_labels.append(np.array(draw(st.lists(st.integers(0, 2), min_size=g, max_size=g)), np.int64))
        gt_difficult.append(np.array(draw(st.lists(st.booleans(), min_size=g, max_size=g)), bool))
    n = draw(st.integers(min_dets, 6))
    kw = {"gt_boxes": gt_boxes, "gt_labels": gt_labels, "det_boxes": draw(boxes_xyxy(n)),
          "det_scores": np.array(draw(st.lists(st.sampled_from([0.2, 0.5, 0.9]), min_size=n, max_size=n))),
          "det_labels": np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int64),
          "det_image_ids": np.array(draw(st.lists(st.integers(0, n_img - 1), min_size=n, max_size=n)), np.int64),
          "gt_difficult": gt_difficult}
    return kw


def _batch_from(kw):
    """The voc problem as one DetectionEvaluator batch (per-image sequences)."""
    n_img = len(kw["gt_boxes"])
    ids = kw["det_image_ids"]
    return {"pred_boxes": [kw["det_boxes"][ids == i] for i in range(n_img)],
            "pred_scores": [kw["det_scores"][ids == i] for i in range(n_img)],
            "pred_labels": [kw["det_labels"][ids == i] for i in range(n_img)],
            "gt_boxes": list(kw["gt_boxes"]), "gt_labels": list(kw["gt_labels"]),
            "gt_iscrowd": [d.copy() for d in kw["gt_difficult"]],
            "gt_areas": [(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in kw["gt_boxes"]]}


def _voc(kw):
    return lambda mod, conv: mod.voc_evaluate(**conv(kw))


def _ultra(kw):
    return lambda mod, conv: mod.ultralytics_evaluate(**conv(kw))


def _update(batch):
    return lambda mod, conv: mod.DetectionEvaluator().update(**conv(batch))


# ----------------------------------------------------------------------------- class labels


@settings(max_examples=40)
@given(kw=voc_problem(), value=st.sampled_from(BAD_LABELS), data=st.data())
def test_bad_class_labels_are_refused_everywhere(kw, value, data):
    """A label that is not a whole number in [0, 2**31) (1.5, NaN, inf, -1, 2**40) is refused by
    every API that takes labels, naming the argument, the element and the value (the upstream
    releases truncate it or, for NaN, count a class of its own)."""
    n = len(kw["det_labels"])
    pos = data.draw(st.integers(0, n - 1))
    bad = dict(kw, det_labels=_plant(kw["det_labels"], pos, value))
    shown = str(element_error("x", 0, value, "")).split("got ", 1)[1]   # 1.5, nan, inf, -1, ...
    for call in (_voc(bad), _ultra(bad)):
        msg = assert_both_refuse(call, f"det_labels[{pos}]", "class label")
        assert msg.endswith(f"got {shown}"), msg
    g = data.draw(st.integers(0, len(kw["gt_labels"][0]) - 1))
    bad_gt = dict(kw, gt_labels=[_plant(kw["gt_labels"][0], g, value)] + kw["gt_labels"][1:])
    assert_both_refuse(_voc(bad_gt), f"gt_labels[0][{g}]", "class label")
    batch = _batch_from(kw)
    batch["gt_labels"][0] = _plant(batch["gt_labels"][0], g, value)
    assert_both_refuse(_update(batch), f"gt_labels[0][{g}]", "class label")
    pc = _plant(kw["det_labels"], pos, value)
    tc = kw["gt_labels"][0]
    iou = np.zeros((len(tc), n))
    assert_both_refuse(lambda mod, conv: mod.match_predictions(*conv((pc, tc, iou, np.array([0.5])))),
                       f"pred_classes[{pos}]", "class label")
    tp = np.zeros((n, 2), bool)
    assert_both_refuse(lambda mod, conv: mod.ap_per_class(*conv((tp, kw["det_scores"], pc, tc))),
                       f"pred_cls[{pos}]", "class label")


@settings(max_examples=30)
@given(kw=voc_problem(), nc=st.integers(1, 4), over=st.integers(0, 3), data=st.data())
@example(kw={"gt_boxes": [np.array([[0.0, 0, 4, 4]])], "gt_labels": [np.array([0])],
             "det_boxes": np.array([[0.0, 0, 4, 4]]), "det_scores": np.array([0.9]),
             "det_labels": np.array([0]), "det_image_ids": np.array([0]),
             "gt_difficult": [np.array([False])]}, nc=3, over=0, data=None)
def test_confusion_matrix_refuses_classes_outside_nc(kw, nc, over, data):
    """A class >= nc (yolov5 / ultralytics: IndexError deep inside, or a wrong cell for -1) is a
    ValueError naming the table, the row and column, the value and nc; a fractional class
    (the releases truncate it) too."""
    n = len(kw["det_boxes"])
    det = np.concatenate([kw["det_boxes"], np.full((n, 1), 0.9), np.zeros((n, 1))], 1)
    lab = np.concatenate([np.zeros((len(kw["gt_boxes"][0]), 1)), kw["gt_boxes"][0]], 1)
    pos = 0 if data is None else data.draw(st.integers(0, n - 1))
    for value in (float(nc + over), -1.0, 0.5):
        d = det.copy()
        d[pos, 5] = value
        assert_both_refuse(lambda mod, conv: mod.confusion_matrix(*conv((d, lab, nc))),
                           f"detections[{pos}, 5]", f"nc = {nc}")
        lb = lab.copy()
        lb[0, 0] = value
        assert_both_refuse(lambda mod, conv: mod.confusion_matrix(*conv((det, lb, nc))),
                           "labels[0, 0]", f"nc = {nc}")


# ----------------------------------------------------------------------------- image indices


@settings(max_examples=30)
@given(kw=voc_problem(), data=st.data())
def test_bad_image_indices_are_refused(kw, data):
    """det_image_ids must be whole numbers in [0, len(gt_boxes)): 0.5 (truncated to 0 before),
    NaN (a huge negative index before), -1 and len(gt_boxes) are refused."""
    n, n_img = len(kw["det_image_ids"]), len(kw["gt_boxes"])
    pos = data.draw(st.integers(0, n - 1))
    value = data.draw(st.sampled_from([0.5, NAN, -1.0, float(n_img), INF]))
    bad = dict(kw, det_image_ids=_plant(kw["det_image_ids"], pos, value))
    for call in (_voc(bad), _ultra(bad)):
        assert_both_refuse(call, f"det_image_ids[{pos}]", "gt_boxes")


# ----------------------------------------------------------------------------- boxes, areas, flags


@settings(max_examples=30)
@given(kw=voc_problem(), data=st.data())
def test_inverted_boxes_are_refused(kw, data):
    """x2 < x1 or y2 < y1 (torchvision and pycocotools compute with the negative size: IoU 0
    and a positive area for a box inverted in both axes) is refused; zero-size boxes pass."""
    n = len(kw["det_boxes"])
    pos = data.draw(st.integers(0, n - 1))
    axis = data.draw(st.sampled_from([0, 1]))
    det = kw["det_boxes"].copy()
    det[pos, axis + 2] = det[pos, axis] - data.draw(st.sampled_from([0.5, 1.0, 100.0]))
    bad = dict(kw, det_boxes=det)
    for call in (_voc(bad), _ultra(bad)):
        assert_both_refuse(call, f"det_boxes[{pos}]", "x1 <= x2")
    batch = _batch_from(kw)
    gt = batch["gt_boxes"][0].copy()
    gt[0, axis + 2] = gt[0, axis] - 1.0
    batch["gt_boxes"][0] = gt
    assert_both_refuse(_update(batch), "gt_boxes[0][0]", "x1 <= x2")
    cm_det = np.concatenate([det, np.full((n, 1), 0.9), np.zeros((n, 1))], 1)
    assert_both_refuse(lambda mod, conv: mod.confusion_matrix(*conv((cm_det, np.zeros((0, 5)), 3))),
                       f"detections[{pos}, 0:4]", "x1 <= x2")


@settings(max_examples=20)
@given(kw=voc_problem(), area=st.sampled_from([-1.0, -1e-9, NAN, INF]),
       flag=st.sampled_from([2.0, 0.5, -1.0, NAN]))
def test_bad_areas_and_flags_are_refused(kw, area, flag):
    """gt_areas negative or not finite, gt_iscrowd / gt_difficult not 0/1 (``astype(bool)``
    made 2 and 0.5 crowds before) are refused with the element named."""
    batch = _batch_from(kw)
    b = copy.deepcopy(batch)
    b["gt_areas"][0] = _plant(b["gt_areas"][0], 0, area)
    assert_both_refuse(_update(b), "gt_areas[0]")
    b = copy.deepcopy(batch)
    b["gt_iscrowd"][0] = _plant(b["gt_iscrowd"][0], 0, flag)
    assert_both_refuse(_update(b), "gt_iscrowd[0][0]", "flag")
    bad = dict(kw, gt_difficult=[_plant(kw["gt_difficult"][0], 0, flag)] + kw["gt_difficult"][1:])
    assert_both_refuse(_voc(bad), "gt_difficult[0][0]", "flag")


@settings(max_examples=20)
@given(kw=voc_problem())
def test_per_image_lengths_must_agree(kw):
    """voc_evaluate checked only the totals: 2 boxes + 1 label in one image and 1 box + 2
    labels in another passed and paired the wrong labels with the boxes."""
    gl = [np.concatenate([v, [0]]) for v in kw["gt_labels"]]
    assert_both_refuse(_voc(dict(kw, gt_labels=gl)), "gt_boxes[0]", "gt_labels[0]", "lengths differ")


# ----------------------------------------------------------------------------- curves and tp


@settings(max_examples=30)
@given(n=st.integers(1, 6), data=st.data())
def test_bad_curves_are_refused(n, data):
    """compute_ap / voc_ap take a recall curve non-decreasing in [0, 1] and a precision in [0, 1]
    (the releases integrate anything: compute_ap([nan], [1]) = 1.0, recall 2 gives 1.0)."""
    rec = np.sort(np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    prec = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    pos = data.draw(st.integers(0, n - 1))
    value = data.draw(st.sampled_from([NAN, INF, 1.5, -0.1]))
    fns = (("compute_ap", "recall", "precision"), ("voc_ap", "rec", "prec"))
    for fn, rn, pn in fns:
        assert_both_refuse(lambda mod, conv: getattr(mod, fn)(*conv((_plant(rec, pos, value), prec))), rn)
        assert_both_refuse(lambda mod, conv: getattr(mod, fn)(*conv((rec, _plant(prec, pos, value)))), pn)
    down = rec.copy()
    down[-1] = rec[-2] / 2 if n > 1 else 0.0          # below its predecessor when that is > 0
    if n > 1 and rec[-2] > 0:
        for fn, rn, _ in fns:
            assert_both_refuse(lambda mod, conv: getattr(mod, fn)(*conv((down, prec))),
                               f"{rn}[{n - 1}]", "non-decreasing")


def test_ap_per_class_refuses_bad_flags_and_impossible_recall():
    """tp must be 0/1 (0.5 counted half a hit before) and no class can have more true positives
    than labels at a threshold (its recall would exceed 1; the releases report it)."""
    conf, pc, tc = np.array([0.9, 0.8]), np.array([0, 0]), np.array([0])
    assert_both_refuse(lambda mod, conv: mod.ap_per_class(*conv((np.array([[0.5], [1.0]]), conf, pc, tc))),
                       "tp[0, 0]", "flag")
    assert_both_refuse(lambda mod, conv: mod.ap_per_class(*conv((np.array([[True], [True]]), conf, pc, tc))),
                       "tp[:, 0]", "class 0 has 2 true positives", "1 labels")
    assert_both_refuse(lambda mod, conv: mod.ap_per_class(*conv((np.ones((2, 1), bool), conf, pc, tc)),
                                                          eps=-1.0), "eps")


def test_match_predictions_refuses_bad_iou_and_thresholds():
    """IoU values outside [0, 1] and thresholds outside [0, 1] or NaN are refused; a NaN IoU
    (torchvision's IoU of two zero-area boxes) is accepted and matches nothing, like 0."""
    pc, tc = np.array([0]), np.array([0])
    for iou, thr, needle in ((np.array([[-0.1]]), np.array([0.5]), "iou[0, 0]"),
                             (np.array([[INF]]), np.array([0.5]), "iou[0, 0]"),
                             (np.array([[0.9]]), np.array([NAN]), "iou_thresholds[0]"),
                             (np.array([[0.9]]), np.array([2.0]), "iou_thresholds[0]")):
        assert_both_refuse(lambda mod, conv: mod.match_predictions(*conv((pc, tc, iou, thr))), needle)
    for mod, conv in SIDES:
        out = mod.match_predictions(*conv((pc, tc, np.array([[NAN]]), np.array([0.0, 0.5]))))
        assert not np.asarray(out).any()


# ----------------------------------------------------------------------------- valid edge inputs

def _answers(call):
    """(reference answer, port answer as NumPy)."""
    return call(R, lambda x: x), P_to_numpy(call(P, _port))


def P_to_numpy(out):
    from ref_numpy.shared.sides import to_numpy
    return to_numpy(out.to_dict() if hasattr(out, "to_dict") else out)


_BOX = np.array([[0.0, 0.0, 4.0, 4.0]])
_EMPTY = {"gt_boxes": [np.zeros((0, 4))], "gt_labels": [np.zeros(0, np.int64)], "det_boxes": np.zeros((0, 4)),
          "det_scores": np.zeros(0), "det_labels": np.zeros(0, np.int64), "det_image_ids": np.zeros(0, np.int64)}
_SINGLE = {"gt_boxes": [_BOX], "gt_labels": [np.array([1])], "det_boxes": _BOX, "det_scores": np.array([0.9]),
           "det_labels": np.array([1.0]), "det_image_ids": np.array([0.0])}   # whole-number floats are labels
_NO_IMAGES = {"gt_boxes": [], "gt_labels": [], "det_boxes": np.zeros((0, 4)), "det_scores": np.zeros(0),
              "det_labels": np.zeros(0, np.int64), "det_image_ids": np.zeros(0, np.int64)}
EDGE_CALLS = {
    "voc_evaluate/empty": ("metrics.voc_evaluate", _voc(_EMPTY)),
    "voc_evaluate/single": ("metrics.voc_evaluate", _voc(_SINGLE)),
    "voc_evaluate/no images": ("metrics.voc_evaluate", _voc(_NO_IMAGES)),
    "voc_evaluate/zero-size box": ("metrics.voc_evaluate", _voc(dict(_SINGLE, det_boxes=np.array([[2.0, 2, 2, 2]])))),
    "ultralytics_evaluate/empty": ("metrics.ultralytics_evaluate", _ultra(_EMPTY)),
    "ultralytics_evaluate/single": ("metrics.ultralytics_evaluate", _ultra(_SINGLE)),
    "ultralytics_evaluate/zero-size boxes": ("metrics.ultralytics_evaluate", _ultra(
        dict(_SINGLE, gt_boxes=[np.array([[2.0, 2, 2, 2]])], det_boxes=np.array([[2.0, 2, 2, 2]])))),
    "match_predictions/empty": ("metrics.match_predictions", lambda mod, conv: mod.match_predictions(
        *conv((np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0)), np.array([0.5]))))),
    "match_predictions/single": ("metrics.match_predictions", lambda mod, conv: mod.match_predictions(
        *conv((np.array([2]), np.array([2.0]), np.array([[0.5]]), np.array([0.5]))))),
    "confusion_matrix/empty": ("metrics.confusion_matrix", lambda mod, conv: mod.confusion_matrix(
        *conv((np.zeros((0, 6)), np.zeros((0, 5)), 0)))),
    "confusion_matrix/single": ("metrics.confusion_matrix", lambda mod, conv: mod.confusion_matrix(
        *conv((np.array([[0.0, 0, 4, 4, 0.9, 1]]), np.array([[1.0, 0, 0, 4, 4]]), 2)))),
    "ap_per_class/empty": ("metrics.ap_per_class", lambda mod, conv: mod.ap_per_class(
        *conv((np.zeros((0, 1), bool), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))))),
    "ap_per_class/single": ("metrics.ap_per_class", lambda mod, conv: mod.ap_per_class(
        *conv((np.ones((1, 1), bool), np.array([0.5]), np.array([3]), np.array([3]))))),
    "compute_ap/empty": ("metrics.compute_ap", lambda mod, conv: mod.compute_ap(*conv((np.zeros(0), np.zeros(0))))),
    "compute_ap/single": ("metrics.compute_ap", lambda mod, conv: mod.compute_ap(*conv((np.ones(1), np.ones(1))))),
    "voc_ap/empty": ("metrics.voc_ap", lambda mod, conv: mod.voc_ap(*conv((np.zeros(0), np.zeros(0))))),
    "voc_ap/single": ("metrics.voc_ap", lambda mod, conv: mod.voc_ap(*conv((np.ones(1), np.ones(1))))),
}


@pytest.mark.parametrize("case", sorted(EDGE_CALLS))
def test_valid_edge_inputs_have_equal_defined_answers(case):
    """Empty inputs, a single element, zero-size boxes, whole-number float labels: a defined
    answer (no error), equal on both sides within the function's tolerance."""
    name, call = EDGE_CALLS[case]
    ref, port = _answers(call)
    ref = ref.to_dict() if hasattr(ref, "to_dict") else ref
    assert_parity(port, ref, name=name, dtype="float64", inputs=case)


def test_detection_evaluator_edge_batches_are_defined():
    """An empty batch, an image without anything, one box each: defined and equal on both sides."""
    results = []
    for mod, conv in SIDES:
        ev = mod.DetectionEvaluator()
        ev.update([], [], [], [], [])
        ev.update(*conv(([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0, np.int64)], [np.zeros((0, 4))],
                         [np.zeros(0, np.int64)])))
        ev.update(*conv(([_BOX], [np.array([0.9])], [np.array([7.0])], [_BOX], [np.array([7])])))
        results.append(ev.compute())
        assert ev.n_images == 2
    assert_parity(P_to_numpy(results[1].stats), results[0].stats, name="metrics.coco_evaluate", tol=EXACT)
    assert results[0].stats[0] > 0.99  # one perfect detection (pycocotools: 1 - 2e-16)


# ----------------------------------------------------------------------------- DetectionEvaluator: threads

N_THREADS, PER_THREAD = 16, 150


@pytest.mark.parametrize("mod", [R, P], ids=["ref", "port"])
def test_detection_evaluator_updates_from_many_threads_lose_nothing(mod):
    """16 threads x 150 one-image updates (the issue lost 176 of 960 updates): every
    image is numbered once, and each image's detections and GTs come from the same update.

    Without the lock (replace ``with self._lock:`` by ``with contextlib.nullcontext():`` in
    ``update``) this test fails on both sides: images share a number and parts interleave."""
    ev = mod.DetectionEvaluator()
    barrier = threading.Barrier(N_THREADS)
    errors = []

    def work(t):
        try:
            barrier.wait()
            for k in range(PER_THREAD):
                marker = t * PER_THREAD + k
                ev.update([_BOX], [np.array([0.5])], [np.array([marker])], [_BOX], [np.array([marker])])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    s = P_to_numpy({k: v for k, v in ev.state().items() if k in ("dt_img", "dt_label", "gt_img", "gt_label")})
    total = N_THREADS * PER_THREAD
    assert ev.n_images == total, f"{total - ev.n_images} updates lost"
    assert sorted(s["dt_img"].tolist()) == list(range(total)), "image numbers repeated or skipped"
    by_img = np.empty(total, np.int64)
    by_img[s["dt_img"]] = s["dt_label"]
    gt_by_img = np.empty(total, np.int64)
    gt_by_img[s["gt_img"]] = s["gt_label"]
    assert (by_img == gt_by_img).all(), "an image's detections and GTs come from different updates"
    assert sorted(by_img.tolist()) == list(range(total))


@pytest.mark.parametrize("mod", [R, P], ids=["ref", "port"])
def test_detection_evaluator_copies_and_pickles(mod):
    """The lock does not travel: deepcopy and pickle give working evaluators with the same state."""
    ev = mod.DetectionEvaluator()
    ev.update([_BOX], [np.array([0.9])], [np.array([1])], [_BOX], [np.array([1])])
    for other in (copy.deepcopy(ev), pickle.loads(pickle.dumps(ev))):
        other.update([_BOX], [np.array([0.9])], [np.array([1])], [_BOX], [np.array([1])])
        assert other.n_images == 2 and ev.n_images == 1


# ----------------------------------------------------------------------------- DetectionEvaluator: merge

def _filled(mod, **params):
    ev = mod.DetectionEvaluator(**params)
    ev.update([_BOX, _BOX], [np.array([0.9]), np.array([0.4])], [np.array([1]), np.array([2])],
              [_BOX, np.zeros((0, 4))], [np.array([1]), np.zeros(0, np.int64)])
    return ev


def _state_of(mod):
    return P_to_numpy(_filled(mod).state()) if mod is P else _filled(mod).state()


@pytest.mark.parametrize("change, needles", [
    (lambda s: s.update(iou_thrs=[0.5]), ("other['iou_thrs']", "cannot merge")),
    (lambda s: s.update(max_dets=[1, 10, 50]), ("other['max_dets']", "cannot merge")),
    (lambda s: s.update(area_rng=[[0, 1e10]] * 4), ("other['area_rng']", "cannot merge")),
    (lambda s: s.pop("gt_area"), ("missing keys ['gt_area']",)),
    (lambda s: s.pop("iou_thrs"), ("missing keys ['iou_thrs']",)),
    (lambda s: s.update(extra=1), ("unexpected keys ['extra']",)),
    (lambda s: s.update(n_images=1), ("other['dt_img'][1]", "n_images = 1")),
    (lambda s: s.update(n_images=-1), ("other['n_images']",)),
    (lambda s: s.update(n_images=1.5), ("other['n_images']",)),
    (lambda s: s.update(dt_score=np.array([0.9])), ("ragged", "dt_score 1", "dt_box 2")),
    (lambda s: s.update(gt_crowd=np.zeros(3, bool)), ("ragged", "gt_crowd 3")),
    (lambda s: s.update(dt_label=np.array([1.5, 2.0])), ("other['dt_label'][0]", "class label")),
    (lambda s: s.update(dt_img=np.array([0.0, NAN])), ("other['dt_img'][1]",)),
    (lambda s: s.update(dt_box=np.array([[0.0, 0, -4, 4], [0, 0, 4, 4]])), ("other['dt_box'][0]", "w >= 0")),
    (lambda s: s.update(gt_area=np.array([-1.0])), ("other['gt_area'][0]",)),
    (lambda s: s.update(gt_crowd=np.array([2])), ("other['gt_crowd'][0]", "flag")),
])
@pytest.mark.parametrize("source", [R, P], ids=["ref state", "port state"])
def test_merge_refuses_states_it_cannot_reconcile(change, needles, source):
    """Other IoU thresholds / max_dets / area ranges, missing or unexpected keys, n_images not
    above every image index, ragged arrays and bad elements: a ValueError naming the key, the
    same on both sides, and the evaluator is left as it was."""
    st_ = _state_of(source)
    change(st_)

    def call(mod, conv):
        ev = _filled(mod)
        try:
            ev.merge(conv(st_))
        finally:
            assert ev.n_images == 2
    assert_both_refuse(call, *needles)


def test_merge_across_sides_equals_one_process():
    """A reference state merged into the port (and back) equals one evaluator that saw both."""
    single = {m: _filled(m) for m in (R, P)}
    for m in (R, P):
        single[m].merge(_filled(m))
    r2p = _filled(P).merge(_filled(R).state())
    p2r = _filled(R).merge(_filled(P))
    want = single[R].compute().stats
    for ev in (r2p, p2r, single[P]):
        assert_parity(P_to_numpy(ev.compute().stats), want, name="metrics.coco_evaluate", tol=EXACT)
    assert_both_refuse(lambda mod, conv: _filled(mod).merge([1, 2]), "other", "state() dict")


def test_a_bad_batch_adds_nothing():
    """The whole batch is checked before anything is added (image 1 bad: image 0 not added)."""
    for mod, conv in SIDES:
        ev = mod.DetectionEvaluator()
        with pytest.raises(ValueError, match=re.escape("pred_labels[1][0]")):
            ev.update(*conv(([_BOX, _BOX], [np.array([0.9])] * 2, [np.array([1]), np.array([0.5])],
                             [_BOX, _BOX], [np.array([1])] * 2)))
        assert ev.n_images == 0 and len(ev.state()["dt_img"]) == 0


# ----------------------------------------------------------------------------- the corpus

def _corpus():
    """(case id, argument name that an error must name, call(mod, conv)): ~150 bad inputs.

    Each argument of each array API is replaced in turn by each hostile value below; a value
    that happens to be acceptable (a defined answer) is allowed, anything but a ValueError /
    TypeError naming the argument is not."""
    base = dict(_SINGLE, gt_difficult=[np.array([False])])
    cm_args = {"detections": np.array([[0.0, 0, 4, 4, 0.9, 1]]), "labels": np.array([[1.0, 0, 0, 4, 4]]), "nc": 2}
    mp_args = {"pred_classes": np.array([1]), "true_classes": np.array([1]), "iou": np.array([[0.7]]),
               "iou_thresholds": np.array([0.5])}
    ap_args = {"tp": np.ones((1, 1), bool), "conf": np.array([0.5]), "pred_cls": np.array([1]),
               "target_cls": np.array([1])}
    curve = {"recall": np.array([0.5]), "precision": np.array([1.0])}
    voc_curve = {"rec": np.array([0.5]), "prec": np.array([1.0])}
    batch = _batch_from(dict(base, det_labels=np.array([1]), det_image_ids=np.array([0])))
    hostile_arrays = {
        "nan": lambda a: _plant(a, 0, NAN) if np.size(a) else np.array([NAN]),
        "inf": lambda a: _plant(a, 0, INF) if np.size(a) else np.array([INF]),
        "negative": lambda a: _plant(a, 0, -3.0) if np.size(a) else np.array([-3.0]),
        "fraction": lambda a: _plant(a, 0, 0.5) if np.size(a) else np.array([0.5]),
        "huge": lambda a: _plant(a, 0, 1e300) if np.size(a) else np.array([1e300]),
        "strings": lambda a: np.array(["a"] * max(np.size(a), 1)),
        "None": lambda a: None,
        "scalar": lambda a: 3.0,
        "wrong rank": lambda a: np.zeros((1, 1, 1)),
        "too long": lambda a: np.concatenate([np.asarray(a, float).reshape(len(a), -1)] * 2).reshape(
            (2 * len(a),) + np.shape(a)[1:]) if np.ndim(a) else np.zeros(2),
        "object": lambda a: np.array([object()], dtype=object),
    }
    cases = []

    def add(api, arg, kind, call):
        cases.append((f"{api}:{arg}:{kind}", arg, call))

    for kind, bad in hostile_arrays.items():
        for arg in ("det_boxes", "det_scores", "det_labels", "det_image_ids"):
            kw = dict(base, **{arg: bad(base[arg])})
            add("voc_evaluate", arg, kind, _voc(kw))
            if kind in ("nan", "fraction", "strings", "None", "wrong rank"):
                add("ultralytics_evaluate", arg, kind, _ultra(kw))
        for arg in ("gt_boxes", "gt_labels", "gt_difficult"):
            kw = dict(base, **{arg: [bad(base[arg][0])]})
            add("voc_evaluate", arg, kind, _voc(kw))
        for arg in ("detections", "labels"):
            kw = dict(cm_args, **{arg: bad(cm_args[arg])})
            add("confusion_matrix", arg, kind, lambda mod, conv, kw=kw: mod.confusion_matrix(**conv(kw)))
        for arg in mp_args:
            kw = dict(mp_args, **{arg: bad(mp_args[arg])})
            add("match_predictions", arg, kind, lambda mod, conv, kw=kw: mod.match_predictions(**conv(kw)))
        for arg in ap_args:
            kw = dict(ap_args, **{arg: bad(ap_args[arg])})
            add("ap_per_class", arg, kind, lambda mod, conv, kw=kw: mod.ap_per_class(**conv(kw)))
        for fn, args in (("compute_ap", curve), ("voc_ap", voc_curve)):
            for arg in args:
                kw = dict(args, **{arg: bad(args[arg])})
                add(fn, arg, kind, lambda mod, conv, kw=kw, fn=fn: getattr(mod, fn)(**conv(kw)))
        for arg in ("pred_boxes", "pred_scores", "pred_labels", "gt_boxes", "gt_labels", "gt_iscrowd", "gt_areas"):
            kw = dict(batch, **{arg: [bad(batch[arg][0])]})
            add("DetectionEvaluator.update", arg, kind, _update(kw))
    for value in (NAN, "0.5", True, -1, 0, 2.5, None, [1]):
        add("confusion_matrix", "nc", repr(value), lambda mod, conv, v=value: mod.confusion_matrix(
            **conv(dict(cm_args, nc=v))))
        add("confusion_matrix", "conf", repr(value), lambda mod, conv, v=value: mod.confusion_matrix(
            **conv(dict(cm_args, conf=v))))
        add("voc_evaluate", "iou_threshold", repr(value), _voc(dict(base, iou_threshold=value)))
        add("ultralytics_evaluate", "max_det", repr(value), _ultra(dict(base, max_det=value)))
        add("ultralytics_evaluate", "conf_thres", repr(value), _ultra(dict(base, conf_thres=value)))
        add("ultralytics_evaluate", "nc", repr(value), _ultra(dict(base, nc=value)))
        add("ap_per_class", "eps", repr(value), lambda mod, conv, v=value: mod.ap_per_class(
            **conv(dict(ap_args, eps=v))))
    for arg in ("gt_boxes", "gt_labels", "gt_difficult"):
        for value in (None, "abc", 3, {"a": 1}):
            add("voc_evaluate", arg, repr(value), _voc(dict(base, **{arg: value})))
    return cases


CORPUS = _corpus()


def _outcome(call, mod, conv):
    """('answer', None) or ('error', message); any other exception fails the test."""
    try:
        call(mod, conv)
    except (ValueError, TypeError) as exc:
        return "error", str(exc)
    return "answer", None


def test_corpus_is_large():
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_clean_error_or_defined_answer(case):
    """Each bad input: a ValueError / TypeError naming the argument, or a defined answer; the same
    kind on both sides (never an IndexError, KeyError, RuntimeError, ... from deep inside)."""
    case_id, arg, call = case
    kinds = []
    for mod, conv in SIDES:
        kind, msg = _outcome(call, mod, conv)
        if kind == "error":
            assert arg in msg, f"{case_id}: {type(mod).__name__} error does not name {arg!r}: {msg}"
        kinds.append(kind)
    assert kinds[0] == kinds[1], f"{case_id}: reference gives {kinds[0]}, port {kinds[1]}"
