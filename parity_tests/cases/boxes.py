"""Registry rows for ``boxes``: one per public function of :mod:`ref_numpy.boxes`.

Rows draw valid input, degenerate boxes included (they are inside the functions' domain and
give NaN exactly where torchvision does, which ``assert_parity`` checks position by position).
Where torchvision has the op it is the oracle, compared bit for bit (``oracle_tol=EXACT``): the
port copies torchvision's order of operations. Bad input, integer and half dtypes, invariants
and gradients are in ``test_boxes.py``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase
from parity_tests.tolerances import EXACT

_FORMATS = ("xyxy", "xywh", "cxcywh")


def _pairwise(**kw):
    return lambda: S.box_pairs_xyxy().map(lambda p: Call(p, kw))


def _convert():
    @st.composite
    def calls(draw):
        in_fmt = draw(st.sampled_from(_FORMATS))
        out_fmt = draw(st.sampled_from(_FORMATS))
        b = draw(st.one_of(S.boxes_in(in_fmt, max_n=8), S.any_boxes_xyxy()))
        return Call((b, in_fmt, out_fmt))
    return calls()


def _scaled():
    @st.composite
    def calls(draw):
        fmt = draw(st.sampled_from(_FORMATS))
        b = draw(S.boxes_in(fmt, max_n=8))
        size = draw(S.image_sizes())
        return Call((b, size))
    return calls()


def _clip():
    return st.tuples(S.boxes_to_clip(), S.image_sizes(hi=1024)).map(lambda t: Call(t))


def _remove_small():
    return st.tuples(S.boxes_to_clip(), S.floats(0.0, 60.0)).map(lambda t: Call(t))


def _aligned():
    @st.composite
    def calls(draw):
        kind = draw(st.sampled_from(("iou", "giou", "diou", "ciou")))
        fmt = draw(st.sampled_from(("xyxy", "cxcywh")))
        b1, b2 = draw(S.elementwise_box_pairs(fmt=fmt))
        return Call((b1, b2), {"kind": kind, "fmt": fmt})
    return calls()


def _coco_pairs():
    @st.composite
    def calls(draw):
        dt = draw(S.boxes_in("xywh", max_n=6))
        gt = draw(S.boxes_in("xywh", max_n=6))
        crowd = np.array(draw(st.lists(st.booleans(), min_size=len(gt), max_size=len(gt))), bool)
        return Call((dt, gt, crowd))
    return calls()


CASES = [
    ParityCase("boxes.box_convert", inputs=_convert, oracle="torchvision.ops.box_convert", oracle_tol=EXACT,
               note="all 9 (in_fmt, out_fmt) pairs, same-format copies included"),
    ParityCase("boxes.box_normalize", inputs=_scaled),
    ParityCase("boxes.box_denormalize", inputs=_scaled),
    ParityCase("boxes.box_area", inputs=lambda: S.any_boxes_xyxy().map(lambda b: Call((b,))),
               oracle="torchvision.ops.box_area", oracle_tol=EXACT),
    ParityCase("boxes.clip_boxes_to_image", inputs=_clip, oracle="torchvision.ops.clip_boxes_to_image",
               oracle_tol=EXACT, note="NaN and ±inf coordinates included"),
    ParityCase("boxes.remove_small_boxes", inputs=_remove_small, oracle="torchvision.ops.remove_small_boxes",
               oracle_tol=EXACT, note="int64 indices; NaN sides included (always dropped)"),
    ParityCase("boxes.box_iou", inputs=_pairwise(), oracle="torchvision.ops.box_iou", oracle_tol=EXACT),
    ParityCase("boxes.generalized_box_iou", inputs=_pairwise(), oracle="torchvision.ops.generalized_box_iou",
               oracle_tol=EXACT),
    ParityCase("boxes.distance_box_iou", inputs=_pairwise(), oracle="torchvision.ops.distance_box_iou",
               oracle_tol=EXACT),
    ParityCase("boxes.complete_box_iou", inputs=_pairwise(), oracle="torchvision.ops.complete_box_iou",
               oracle_tol=EXACT,
               note="port vs torchvision bit for bit (both torch.atan); the reference's np.arctan "
                    "has its own tolerance entry"),
    ParityCase("boxes.box_ioa", inputs=_pairwise(),
               note="no torchvision op; pycocotools' crowd overlap is checked in test_boxes.py"),
    ParityCase("boxes.wh_iou", inputs=lambda: S.wh_pairs().map(lambda p: Call(p))),
    # One kernel per convention (torchvision's, VOC's +1, COCO's, darknet's); see test_layers.py.
    ParityCase("boxes.box_inter_union", inputs=_pairwise(),
               note="torchvision _box_inter_union (private there, so no oracle); box_iou's "
                    "oracle row covers inter / union"),
    ParityCase("boxes.voc_box_iou", inputs=_pairwise(),
               note="py-faster-rcnn voc_eval +1 pixel overlaps; no installable oracle "
                    "(a transcription is checked in test_boxes.py)"),
    ParityCase("boxes.coco_box_iou", inputs=_coco_pairs, oracle="parity_tests.oracles.pycocotools_box_iou",
               oracle_tol=EXACT, dtypes=("float64",),
               note="pycocotools maskUtils.iou (bbIou) on xywh with iscrowd; float64 only: "
                    "pycocotools computes in double"),
    ParityCase("boxes.darknet_box_iou", inputs=lambda: S.elementwise_box_pairs(fmt="cxcywh").map(
        lambda p: Call(p)), note="darknet box.c box_iou on cxcywh, no eps; no installable oracle"),
    ParityCase("boxes.aligned_box_iou", inputs=_aligned,
               note="YOLOv5 v7.0 bbox_iou; no torchvision op (its *_loss functions place eps "
                    "differently); a transcription of bbox_iou is the oracle in test_boxes.py"),
]
