"""Registry rows for ``loss.py``: torchvision's four losses against their oracle, the YOLO losses
reference against port (gradients, degenerate inputs and autocast in ``test_loss.py``)."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase
from ref_numpy.shared.constants import TAL_VERSIONS

_REDUCTION = st.sampled_from(["none", "mean", "sum"])


def _box_loss_calls():
    return st.builds(lambda pair, red, eps: Call(pair, {"reduction": red, "eps": eps}),
                     S.aligned_box_pairs(), _REDUCTION, st.sampled_from([1e-7, 1e-3, 0.5]))


def _focal_calls():
    return st.builds(lambda xy, alpha, gamma, red: Call(xy, {"alpha": alpha, "gamma": gamma,
                                                             "reduction": red}),
                     S.logits_and_labels(), st.sampled_from([0.25, 0.5, 0.0, 1.0, -1]),
                     st.sampled_from([0, 1, 2, 0.5, 3.5]), _REDUCTION)


def _yolov1_calls():
    return st.builds(lambda pt, lc, ln, g, go: Call(pt, {"lambda_coord": lc, "lambda_noobj": ln,
                                                         "noobj_gamma": g, "obj_gamma": go}),
                     S.yolov1_grids(), st.sampled_from([5.0, 1.0]), st.sampled_from([0.5, 2.0]),
                     st.sampled_from([0.0, 1.0, 2.0, 0.5]), st.sampled_from([0.0, 2.0, 1.0]))


def _lesson_calls():
    def make(h):
        return Call((h["preds"][0], h["targets"], h["anchors"][0], h["strides"][0]))
    return S.yolo_head_outputs(max_levels=1, pixels=True).map(make)


def _scratch_pytorch_calls():
    def make(h):
        return Call((h["preds"], h["targets"], h["anchors"], h["strides"]))
    return S.yolo_head_outputs(pixels=True).map(make)


def _yolov5_calls():
    def make(h, ls, pw, fl, t):
        return Call((h["preds"], h["targets"], h["anchors"]),
                    {"label_smoothing": ls, "cls_pw": pw, "obj_pw": pw, "fl_gamma": fl,
                     "anchor_t": t})
    return st.builds(make, S.yolo_head_outputs(), st.sampled_from([0.0, 0.1]),
                     st.sampled_from([1.0, 2.5]), st.sampled_from([0.0, 1.5]),
                     st.sampled_from([4.0, 2.0]))


def _scale_hyp_calls():
    hyp = st.fixed_dictionaries({"box": S.floats(0.0, 1.0), "cls": S.floats(0.0, 1.0),
                                 "obj": S.floats(0.0, 2.0), "lr0": st.just(0.01)})
    return st.builds(lambda h, nl, nc, sz: Call((h, nl, nc, sz)), hyp, st.integers(1, 5),
                     st.integers(1, 1000), st.integers(32, 1280))


@st.composite
def _grid_pair(draw, logits: bool = False, iou: bool = False):
    """(pred, target) [bs, S, S, 5 + C] for the section C losses: target object cells (often
    none, sometimes all: the NaN cases of the as-printed losses) with x, y, w, h in [0.05, 1],
    conf 1, a one-hot class; pred in [0.01, 0.99] (probabilities), or logits in [-4, 4]
    in the class channels; with ``iou`` some predicted boxes copy their target's (IoU 1)."""
    bs, s, nc = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    obj = draw(st.one_of(hnp.arrays(np.bool_, (bs, s, s)), st.sampled_from([np.zeros((bs, s, s), bool),
                                                                              np.ones((bs, s, s), bool)])))
    box = draw(hnp.arrays(np.float64, (bs, s, s, 4), elements=S.floats(0.05, 1.0)))
    cls = draw(hnp.arrays(np.int64, (bs, s, s), elements=st.integers(0, nc - 1)))
    onehot = (np.arange(nc) == cls[..., None]).astype(np.float64)
    target = np.concatenate([box, np.ones((bs, s, s, 1)), onehot], -1) * obj[..., None]
    pred = draw(hnp.arrays(np.float64, (bs, s, s, 5 + nc), elements=S.floats(0.01, 0.99)))
    if logits:
        pred[..., 5:] = draw(hnp.arrays(np.float64, (bs, s, s, nc), elements=S.floats(-4.0, 4.0)))
    if iou:
        same = draw(hnp.arrays(np.bool_, (bs, s, s)))
        pred[..., :4] = np.where(same[..., None], target[..., :4], pred[..., :4])
    return pred, target


def _grid_calls(logits: bool = False, iou: bool = False, gains: bool = True):
    def make(pt, lc, ln):
        return Call(pt, {"lambda_coord": lc, "lambda_noobj": ln} if gains else {})
    return lambda: st.builds(make, _grid_pair(logits=logits, iou=iou), st.sampled_from([5.0, 1.0]),
                             st.sampled_from([0.5, 2.0]))


CASES = [
    ParityCase("loss.generalized_box_iou_loss", inputs=_box_loss_calls,
               oracle="torchvision.ops.generalized_box_iou_loss",
               note="valid boxes; degenerate pairs vs torchvision in test_loss.py"),
    ParityCase("loss.distance_box_iou_loss", inputs=_box_loss_calls,
               oracle="torchvision.ops.distance_box_iou_loss"),
    ParityCase("loss.complete_box_iou_loss", inputs=_box_loss_calls,
               oracle="torchvision.ops.complete_box_iou_loss",
               note="eps drawn up to 0.5 so torchvision's DIoU-part-uses-1e-7 quirk is exercised"),
    ParityCase("loss.sigmoid_focal_loss", inputs=_focal_calls, oracle="torchvision.ops.sigmoid_focal_loss"),
    ParityCase("loss.yolov1_loss", inputs=_yolov1_calls),
    ParityCase("loss.yolov1_background_gradient",
               covered_by="test_loss.py::test_background_gradient_fd_equals_autograd",
               note="reference: central differences of yolov1_loss; port: autograd of its loss"),
    ParityCase("loss.yolo_scratch_lesson_loss", inputs=_lesson_calls),
    ParityCase("loss.yolo_scratch_pytorch_loss", inputs=_scratch_pytorch_calls),
    ParityCase("loss.yolo_scratch_pytorch_loss_corrected", inputs=_scratch_pytorch_calls,
               note="the explicit name of yolo_scratch_pytorch_loss (seed_systems.md A, corrected)"),
    ParityCase("loss.yolo_scratch_pytorch_loss_as_printed", inputs=_scratch_pytorch_calls,
               note="seed_systems.md A, as printed (ratio anchors, two-hot collisions, clamped CIoU)"),
    ParityCase("loss.yolo_loss_mse", inputs=_grid_calls(gains=False),
               note="seed_systems.md C.1 as printed: three nn.MSELoss over every cell"),
    ParityCase("loss.yolo_loss_mse_corrected", inputs=_grid_calls(gains=False),
               note="C.1 corrected: box and class terms at object cells (empty: 0)"),
    ParityCase("loss.yolo_loss_adv", inputs=_grid_calls(),
               note="C.2 as printed: NaN on an empty mask (same places on both sides); logits "
                    "raise (test_seed_systems.py)"),
    ParityCase("loss.yolo_loss_adv_corrected", inputs=_grid_calls(logits=True),
               note="C.2 corrected: box at object cells, empty masks 0, BCE-with-logits"),
    ParityCase("loss.yolo_loss_iou", inputs=_grid_calls(iou=True),
               note="C.3 as printed: mask IoU > 0.5; NaN on an empty mask"),
    ParityCase("loss.yolo_loss_iou_corrected", inputs=_grid_calls(logits=True, iou=True),
               note="C.3 corrected: the target's mask, conf target = IoU (no gradient)"),
    ParityCase("loss.yolov5_loss", inputs=_yolov5_calls),
    ParityCase("loss.yolov5_scale_hyp", inputs=_scale_hyp_calls, dtypes=("float64",),
               note="plain Python arithmetic; float32 would not change anything"),
]


def _yolov8_calls():
    def make(h, topk, version):
        return Call((h["preds"], h["targets"], h["strides"]),
                    {"reg_max": h["reg_max"], "topk": topk, "version": version})
    return st.builds(make, S.yolov8_head_outputs(), st.sampled_from([10, 3, 1]),
                     st.sampled_from(TAL_VERSIONS))


CASES.append(ParityCase("loss.yolov8_loss", inputs=_yolov8_calls,
                        note="assignment by assign.task_aligned_assign on both sides; version "
                             "'8.3' and '8.4' (8.4.190: small-object rule, CIoU alpha order)"))
