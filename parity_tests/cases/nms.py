"""Registry rows for ``nms``: one per public function of :mod:`ref_numpy.nms`.

Outputs are index arrays and masks (compared exactly: ``assert_parity`` compares integer and
bool outputs bit for bit) and, for ``soft_nms`` / ``non_max_suppression``, float values computed
with the same operations on both sides (table tolerance). ``nms`` has torchvision as oracle on
every draw (NaN and tied scores, degenerate boxes included); ``batched_nms`` has it on boxes of a
1/4-pixel grid with non-negative coordinates and N <= 24, where torchvision takes its exact
coordinate-offset path. Planted threshold pairs, the float64 threshold comparison, larger N
(the blocked path across many blocks), invariants, the YOLO transcriptions and bad input are in
``test_nms.py``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase
from parity_tests.tolerances import EXACT

_TESTS = "test_nms.py"


def _nms():
    return st.tuples(S.nms_boxes_and_scores(), S.nms_thresholds()).map(
        lambda t: Call((t[0][0], t[0][1], t[1])))


def _batched():
    @st.composite
    def calls(draw):
        n = draw(st.integers(0, S.MAX_BOXES))
        boxes = draw(S.grid_boxes_xyxy(n))
        idxs = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
        return Call((boxes, draw(S.nms_scores(n)), idxs, draw(S.nms_thresholds())))
    return calls()


def _padded():
    @st.composite
    def calls(draw):
        b, n = draw(st.integers(1, 3)), draw(st.integers(0, 12))
        boxes = np.stack([draw(st.one_of(S.boxes_xyxy(n=n, max_coord=100.0),
                                           S.clustered_boxes_xyxy(n=n))) for _ in range(b)])
        scores = np.stack([draw(S.nms_scores(n)) for _ in range(b)])
        valid = draw(hnp.arrays(bool, (b, n)))
        kwargs = {"valid": valid} if draw(st.booleans()) else {}
        return Call((boxes.reshape(b, n, 4), scores.reshape(b, n), draw(S.nms_thresholds())),
                    kwargs)
    return calls()


def _soft():
    @st.composite
    def calls(draw):
        n = draw(st.integers(0, 16))
        boxes = draw(st.one_of(S.clustered_boxes_xyxy(n=n), S.boxes_xyxy(n=n, max_coord=100.0),
                               S.degenerate_boxes_xyxy(n=n)))
        method = draw(st.sampled_from(["linear", "gaussian"]))
        kwargs = {"method": method, "iou_threshold": draw(S.nms_thresholds()),
                  "sigma": draw(S.floats(0.05, 2.0)),
                  "score_threshold": draw(st.sampled_from([0.0, 0.001, 0.1, 0.3]))}
        return Call((boxes, draw(S.scores(n))), kwargs)
    return calls()


def _diou():
    return st.tuples(S.nms_boxes_and_scores(), S.nms_thresholds(),
                     st.sampled_from([1.0, 2.0])).map(
        lambda t: Call((t[0][0], t[0][1], t[1]), {"beta": t[2]}))


def _yolo():
    @st.composite
    def calls(draw):
        version = draw(st.sampled_from(["v5", "v8"]))
        kwargs = {
            "conf_thres": draw(st.sampled_from([0.0, 0.001, 0.25, 0.5])),
            "iou_thres": draw(S.nms_thresholds()),
            "classes": draw(st.none() | st.lists(st.integers(0, 3), min_size=1, max_size=2)),
            "agnostic": draw(st.booleans()),
            "multi_label": draw(st.booleans()),
            "max_det": draw(st.sampled_from([300, 5])),
            "version": version,
        }
        return Call((draw(S.yolo_predictions(version)),), kwargs)
    return calls()


CASES = [
    ParityCase("nms.nms", inputs=_nms, oracle="torchvision.ops.nms", tol=EXACT, oracle_tol=EXACT,
               note="torchvision's CPU kernel: stable sort, NaN first, strict >, float64 compare"),
    ParityCase("nms.batched_nms", inputs=_batched, oracle="torchvision.ops.batched_nms", tol=EXACT,
               oracle_tol=EXACT,
               note="grid boxes, N <= 24: torchvision's coordinate-offset path, exact in float32; "
                    "its per-class path (numel > 4000) is compared up to ties in test_nms.py"),
    ParityCase("nms.nms_padded", inputs=_padded, tol=EXACT,
               note="keep mask; per-image torchvision agreement in test_nms.py"),
    ParityCase("nms.soft_nms", inputs=_soft,
               note="indices exact, scores within the table (np.exp vs torch.exp)"),
    ParityCase("nms.diou_nms", inputs=_diou, tol=EXACT),
    ParityCase("nms.non_max_suppression", inputs=_yolo,
               note="rows are (x1, y1, x2, y2, conf, cls), same float ops on both sides; the "
                    "YOLOv5 v7.0 / Ultralytics 8.3, 8.4 transcriptions with torchvision are in test_nms.py"),
]
