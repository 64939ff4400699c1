"""Registry rows for ``assign``: the YOLO target assigners.

The generic harness compares reference and port on valid inputs at float64 and float32
(indices, classes and masks exactly; targets through the tolerance table). The external
oracles (a line-by-line transcription of YOLOv5 v7.0 ``build_targets`` and of Ultralytics 8.3
``TaskAlignedAssigner``) and the properties live in ``test_assign.py``.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase


@st.composite
def _v5(draw, report: bool = False):
    anchors, grids = draw(S.yolo_anchor_levels())
    t = draw(S.yolo_targets(bs=3))
    kw = {}
    if draw(st.booleans()):
        kw["anchor_t"] = draw(st.sampled_from([2.0, 4.0, 8.0]))
    if draw(st.booleans()):
        kw["g"] = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))
    if report and len(t):  # the report also explains centres outside the image
        shift = draw(hnp.arrays(np.float64, (len(t), 2), elements=st.sampled_from([0.0, 0.0, -0.75, 0.5])))
        t = t.copy()
        t[:, 2:4] += shift
    return Call((t, anchors, grids), kw)


@st.composite
def _v3(draw):
    p = draw(S.yolov3_problem())
    mode = draw(st.sampled_from(["pred_iou", "anchor_iou", "none"]))
    kw = {"ignore_mode": mode, "ignore_thresh": draw(st.sampled_from([0.5, 0.7]))}
    if mode == "pred_iou" or draw(st.booleans()):
        kw["pred_boxes"] = p["pred_boxes"]
    else:
        kw["batch_size"] = p["pred_boxes"][0].shape[0]
    return Call((p["targets"], p["anchors"], p["grid_sizes"]), kw)


@st.composite
def _v1_grid(draw):
    t = draw(S.yolo_targets(bs=2, nc=4))
    kw = {"S": draw(st.integers(1, 7)), "num_classes": 4}
    if draw(st.booleans()):
        kw["batch_size"] = 2
    return Call((t,), kw)


@st.composite
def _tutorial(draw):
    anchors, grids = draw(S.yolo_anchor_levels())
    return Call((draw(S.yolo_targets(bs=3)), anchors, grids))


@st.composite
def _tutorial_dense(draw):
    """Section A's dense assigners: pixel xyxy targets from a pixel head batch (sides down to
    a tenth of a pixel, so the 1 px clamp acts), and often a copy of a target with another
    class (a collision: two-hot as printed, one-hot corrected); batch size given or not."""
    h = draw(S.yolo_head_outputs(max_grid=3, pixels=True))
    t, nc = h["targets"], h["preds"][0].shape[-1] - 5
    if len(t) and draw(st.booleans()):
        dup = t[:1].copy()
        dup[0, 1] = (dup[0, 1] + draw(st.integers(0, nc - 1))) % nc
        t = np.concatenate([t, dup])
    xyxy = np.concatenate([t[:, :2], t[:, 2:4] - t[:, 4:6] / 2, t[:, 2:4] + t[:, 4:6] / 2], 1)
    kw = {"batch_size": h["preds"][0].shape[0]} if draw(st.booleans()) else {}
    grids = [tuple(p.shape[2:4]) for p in h["preds"]]
    return Call((xyxy, h["anchors"], h["strides"], grids, nc), kw)


def _tal():
    def call(p):
        args = tuple(p[k] for k in ("pd_scores", "pd_bboxes", "anc_points", "gt_labels",
                                    "gt_bboxes", "mask_gt"))
        kw = {k: p[k] for k in ("topk", "num_classes", "version", "strides")}
        return Call(args, kw)
    return S.tal_problem().map(call)


@st.composite
def _tal_report(draw):
    """TAL inputs, with the anchor points cut into levels (grid_sizes) or not."""
    call = draw(_tal())
    n_points = call.args[2].shape[0]
    split = draw(st.integers(0, n_points))
    choice = draw(st.sampled_from(["none", "one row", "two levels"]))
    kw = dict(call.kwargs)
    if choice == "one row":
        kw["grid_sizes"] = [(1, n_points)]
    elif choice == "two levels" and 0 < split < n_points:
        kw["grid_sizes"] = [(1, split), (1, n_points - split)]
    return Call(call.args, kw)


def _v1():
    return S.yolov1_problem().map(lambda p: Call((p["pred_boxes"], p["targets"]),
                                                 {"sqrt": True}))


_REPORT_NOTE = ("AssignmentReport (ref_numpy.shared.report): each side computes the rows, the "
                "winner of every slot and the collisions with its own arrays; only the assembly "
                "into the dataclasses is shared, so the comparison (exact, ==) is not trivial; "
                "the dedicated test checks the report against the assignment it explains")

CASES = [
    ParityCase(
        "assign.yolov5_build_targets", inputs=_v5,
        covered_by="test_assign.py::test_yolov5_equals_transcription",
        note="oracle: a line-by-line torch transcription of YOLOv5 v7.0 build_targets in the test"),
    ParityCase(
        "assign.yolov5_assignment_report", inputs=lambda: _v5(report=True),
        covered_by="test_assign.py::test_report_collisions_last_writer_wins",
        note=_REPORT_NOTE),
    ParityCase(
        "assign.task_aligned_assign", inputs=_tal,
        covered_by="test_assign.py::test_tal_equals_transcription",
        note="oracle: a torch transcription of ultralytics 8.3 utils/tal.py (ties in topk broken "
             "by the lower anchor index on all three sides)"),
    ParityCase(
        "assign.task_aligned_report", inputs=_tal_report,
        covered_by="test_assign.py::test_tal_report_matches_assignment", note=_REPORT_NOTE),
    ParityCase("assign.yolov1_grid_targets", inputs=_v1_grid,
               note="the dense v1 / section C grid target; first GT in target order keeps a cell"),
    ParityCase("assign.yolov1_assign", inputs=_v1,
               covered_by="test_assign.py::test_yolov1_properties"),
    ParityCase("assign.yolov1_assignment_report", inputs=_v1,
               covered_by="test_assign.py::test_yolov1_report_matches_assignment",
               note=_REPORT_NOTE),
    ParityCase("assign.yolov3_assign", inputs=_v3,
               covered_by="test_assign.py::test_yolov3_properties"),
    ParityCase("assign.yolov3_assignment_report", inputs=_v3,
               covered_by="test_assign.py::test_yolov3_report_matches_assignment",
               note=_REPORT_NOTE),
    ParityCase("assign.tutorial_assign", inputs=_tutorial,
               covered_by="test_assign.py::test_tutorial_one_positive_per_level"),
    ParityCase("assign.tutorial_assign_as_printed", inputs=_tutorial_dense,
               note="seed_systems.md A, as printed: ratio anchor score, class one-hots added; "
                    "the as-printed behaviour is pinned in test_assign.py"),
    ParityCase("assign.tutorial_assign_corrected", inputs=_tutorial_dense,
               note="seed_systems.md A, corrected: shape-IoU anchor, the last writer's one-hot"),
    ParityCase("assign.tutorial_assignment_report", inputs=_tutorial,
               covered_by="test_assign.py::test_tutorial_report_matches_assignment",
               note=_REPORT_NOTE),
]
