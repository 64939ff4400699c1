"""Meta-tests of the strategies: they generate what they promise, and reach the edge cases."""
import numpy as np
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from parity_tests import strategies as S
from parity_tests.tolerances import assert_parity


def _iou_pair(b):
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = b
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)


@given(S.boxes_xyxy())
def test_boxes_valid_by_construction(b):
    assert b.ndim == 2 and b.shape[1] == 4 and b.dtype == np.float64
    assert np.all(np.isfinite(b))
    assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])


@given(S.clustered_boxes_xyxy())
def test_clustered_boxes_valid(b):
    assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])


@given(S.extreme_scale_boxes_xyxy())
def test_extreme_boxes_valid(b):
    assert np.all(np.isfinite(b)) and np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])


@given(st.sampled_from(["xyxy", "xywh", "cxcywh"]).flatmap(
    lambda f: st.tuples(st.just(f), S.boxes_in(f))))
def test_formats_have_positive_sizes(fb):
    fmt, b = fb
    if fmt == "xyxy":
        assert np.all(b[:, 2] > b[:, 0])
    else:
        assert np.all(b[:, 2] > 0) and np.all(b[:, 3] > 0)


# Reachability only: generate until found, no shrinking (shrinking is the slow part of find).
NO_SHRINK = settings(phases=[Phase.generate], database=None, max_examples=2000)


def test_empty_and_degenerate_are_reachable():
    assert find(S.boxes_xyxy(), lambda b: len(b) == 0, settings=NO_SHRINK).shape == (0, 4)
    zero_w = find(S.degenerate_boxes_xyxy(min_n=1), lambda b: np.any(b[:, 2] == b[:, 0]),
                  settings=NO_SHRINK)
    assert np.any(zero_w[:, 2] == zero_w[:, 0])
    inverted = find(S.degenerate_boxes_xyxy(min_n=1), lambda b: np.any(b[:, 2] < b[:, 0]),
                    settings=NO_SHRINK)
    assert np.any(inverted[:, 2] < inverted[:, 0])
    huge = find(S.extreme_scale_boxes_xyxy(min_n=1), lambda b: b.max() > 1e6, settings=NO_SHRINK)
    assert huge.max() > 1e6
    tiny = find(S.extreme_scale_boxes_xyxy(min_n=1), lambda b: (b[:, 2:] - b[:, :2]).min() < 1e-2,
                settings=NO_SHRINK)
    assert (tiny[:, 2:] - tiny[:, :2]).min() < 1e-2


@given(st.sampled_from([0.3, 0.5, 0.7]).flatmap(lambda t: st.tuples(st.just(t), S.planted_iou_pair(t))))
def test_planted_pair_has_requested_iou(tp):
    t, (boxes, delta) = tp
    assert_parity(np.float64(_iou_pair(boxes)), np.float64(t + delta), name="strategy.planted_iou",
                  dtype="float64", inputs=(t, boxes, delta))


def test_score_ties_are_reachable():
    s = find(S.scores(8), lambda s: len(np.unique(s)) < len(s), settings=NO_SHRINK)
    assert len(np.unique(s)) < len(s)


@given(S.boxes_and_scores())
def test_boxes_and_scores_same_length(bs):
    b, s = bs
    assert len(b) == len(s)
