"""Registry rows for ``anchors``: YOLOv5 autoanchor metrics, label sizes and the k-means +
genetic refit.

No library implements YOLOv5's autoanchor as a function (it lives inside yolov5's training
utilities), so every row is reference == port; the conventions are pinned by the known-value and
property tests of ``test_anchors.py``. ``kmean_anchors`` has a dedicated test (scipy k-means plus
a sequential evolution: float64 only, few generations, fewer examples).
"""
from hypothesis import strategies as st

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase

_THR = st.sampled_from([4.0, 4.0, 2.0, 3.0, 1.0])  # YOLOv5's anchor_t is 4.0


def _metrics():
    return st.tuples(S.anchors_and_labels(), _THR).map(
        lambda t: Call((t[0][0], t[0][1]), {"thr": t[1]}))


def _check():
    return st.tuples(S.anchors_and_labels(), _THR, st.sampled_from([0.98, 0.5, 0.0, 1.0])).map(
        lambda t: Call((t[0][0], t[0][1]), {"thr": t[1], "bpr_threshold": t[2]}))


def _fitness():
    return st.tuples(S.anchors_and_labels(), _THR).map(
        lambda t: Call((t[0][1], t[0][0]), {"thr": t[1]}))


def _wh_from_labels():
    return st.tuples(S.yolo_label_sets(), st.sampled_from([640, 320.0, 1280]), st.booleans(),
                     st.integers(0, 2 ** 32 - 1)).map(
        lambda t: Call(t[0], {"img_size": t[1], "augment": t[2], "seed": t[3]}))


CASES = [
    ParityCase("anchors.anchor_metrics", inputs=_metrics,
               note="labels planted at x == 1/thr (not counted) and x == 1"),
    ParityCase("anchors.check_anchors", inputs=_check),
    ParityCase("anchors.anchor_fitness", inputs=_fitness,
               note="a float mean: NumPy and torch sum in different orders (DEFAULT tolerance)"),
    ParityCase("anchors.wh_from_labels", inputs=_wh_from_labels,
               note="augment draws NumPy uniforms from default_rng(seed) on both sides"),
    ParityCase("anchors.kmean_anchors", covered_by="test_anchors.py::test_kmean_anchors_equals_reference",
               dtypes=("float64",),
               note="scipy k-means + sequential evolution: float64 only (acceptance is a strict "
                    "float comparison of means summed in different orders), gen <= 50"),
]
