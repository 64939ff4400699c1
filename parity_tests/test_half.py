"""Half precision and edge shapes (issue 11, section 3), on both sides, against the oracles.

- ``non_max_suppression`` on float16 predictions (AMP outputs): no overflow of the class offset
  ``cls * 7680`` (inf in float16 from class 9 on), no float16 rounding of the offset boxes (two
  class-2 boxes at IoU 0.6 would be 0.5 after it), float32 rows returned as yolov5 7.0 and
  Ultralytics 8.4 return them; compared with torchvision on the same float32 rows, and with the
  upstream functions themselves when installed (importorskip: they are peers, not dependencies);
- the box-IoU losses upcast float16 to float32 as torchvision's ``_upcast_non_float`` (dtype and
  values equal to torchvision's), and reject an unknown reduction in torchvision's words;
- ``letterbox`` of a 1-pixel-high image gives exactly the requested shape;
- ``batched_nms`` of zero boxes with None scores / indices is empty, as torchvision's.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torchvision.ops as tvo

import ref_numpy.loss as RL
import ref_numpy.nms as R
import torch_impl.data.transforms as TT
import torch_impl.loss as TL
import torch_impl.nms as T
from parity_tests.tolerances import EXACT, assert_parity

BOX_LOSSES = ["generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"]
NC = 80


def _v5_rows(boxes_xywh, classes, scores, nc=NC):
    """[1, A, 5 + nc] float32 YOLOv5 rows: objectness 1, one class score per row."""
    pred = np.zeros((1, len(boxes_xywh), 5 + nc), np.float32)
    pred[0, :, :4] = boxes_xywh
    pred[0, :, 4] = 1.0
    pred[0, np.arange(len(classes)), 5 + np.asarray(classes)] = scores
    return pred


# Two class-2 boxes at IoU 0.6 ([0, 0, 24, 24] and [6, 0, 30, 24]): offset by 2 * 7680 in
# float16 (spacing 8 there) their IoU is 0.5, so at iou_thres 0.55 float16 offsets keep both.
PAIR = _v5_rows([[12, 12, 24, 24], [18, 12, 24, 24]], [2, 2], [0.9, 0.8])


def _many_classes(seed=0, n=200):
    """Boxes of every class (9..79 overflowed float16 offsets), overlapping so NMS has work.
    Objectness 1 and two class scores per row, all distinct float16 values above 0.25 (yolov5
    sorts with an unstable argsort: no ties, so its order is defined); the rest below 0.25."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(100, 540, (n, 2))
    wh = rng.uniform(20, 120, (n, 2))
    pred = np.zeros((1, n, 5 + NC), np.float32)
    pred[0, :, :2], pred[0, :, 2:4] = xy, wh
    pred[0, :, 4] = 1.0
    pred[0, :, 5:] = rng.uniform(0.0, 0.2, (n, NC))
    distinct = (0.25 + rng.permutation(1536)[:2 * n] / 2048).reshape(n, 2)  # exact in float16
    for k in range(2):
        pred[0, np.arange(n), 5 + rng.integers(0, NC, n)] = distinct[:, k]
    return pred


def _expected_v5(pred16: torch.Tensor, conf_thres=0.25, iou_thres=0.45, multi_label=False):
    """Upstream's steps in torch with torchvision's NMS: box corners and conf in float16, the
    rows widened to float32 by ``j.float()``, offsets and NMS in float32 (stable sort)."""
    out = []
    for x in pred16:
        x = x[x[:, 4] > conf_thres]
        cls = x[:, 5:] * x[:, 4:5]
        xy, half = x[:, :2], x[:, 2:4] / 2
        box = torch.cat([xy - half, xy + half], 1)
        if multi_label:
            i, j = (cls > conf_thres).nonzero(as_tuple=True)
            det = torch.cat([box[i], cls[i, j, None], j[:, None].float()], 1)
        else:
            conf, j = cls.max(1, keepdim=True)
            det = torch.cat([box, conf, j.float()], 1)[conf.view(-1) > conf_thres]
        det = det[det[:, 4].argsort(descending=True, stable=True)]
        keep = tvo.nms(det[:, :4] + det[:, 5:6] * 7680, det[:, 4], iou_thres)[:300]
        out.append(det[keep])
    return out


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("pred", [PAIR, _many_classes()], ids=["pair-iou-0.6", "80-classes"])
def test_non_max_suppression_float16_as_upstream(pred, multi_label):
    p16 = torch.from_numpy(pred).half()
    want = _expected_v5(p16, iou_thres=0.55, multi_label=multi_label)
    got_port = T.non_max_suppression(p16, iou_thres=0.55, multi_label=multi_label)
    got_ref = R.non_max_suppression(p16.numpy(), iou_thres=0.55, multi_label=multi_label)
    assert want[0].dtype == torch.float32 and len(want[0])
    for got in (got_port, got_ref):
        assert_parity(got, want, name="nms.non_max_suppression", tol=EXACT, inputs=pred)


def test_float16_pair_is_suppressed_as_in_float32():
    """The constructed pair: one box kept (IoU 0.6 > 0.55), as in float32; its values are the
    float16 inputs widened (exact)."""
    for impl, pred in ((T, torch.from_numpy(PAIR).half()), (R, PAIR.astype(np.float16))):
        (det,) = impl.non_max_suppression(pred, iou_thres=0.55)
        det = np.asarray(det)
        assert det.dtype == np.float32 and det.shape == (1, 6)
        np.testing.assert_array_equal(det[0, [0, 1, 2, 3, 5]], [0, 0, 24, 24, 2])
        assert det[0, 4] == np.float32(np.float16(0.9))
        (det32,) = impl.non_max_suppression(pred.astype(np.float32) if impl is R else pred.float(),
                                            iou_thres=0.55)
        assert len(det32) == 1


def test_float16_high_classes_do_not_overflow():
    """Class 79's offset 606,720 is inf in float16: no 'expected finite values' error, and the
    class column holds the exact class ids (float16 rounds ids above 2048; not at issue at 80)."""
    pred = _v5_rows([[50, 50, 20, 20], [52, 50, 20, 20], [300, 300, 40, 40]], [79, 79, 9],
                    [0.9, 0.8, 0.7])
    for impl, p in ((T, torch.from_numpy(pred).half()), (R, pred.astype(np.float16))):
        (det,) = impl.non_max_suppression(p)
        np.testing.assert_array_equal(np.asarray(det)[:, 5], [79, 9])


def test_float16_v8_layout():
    """v8 rows [B, 4 + nc, A] in float16: float32 out, equal to the float32 run on the same
    (float16-rounded) numbers wherever the float16 corners are exact (integers here)."""
    pred = _many_classes(1)[:, :, [0, 1, 2, 3] + list(range(5, 5 + NC))].transpose(0, 2, 1)
    pred[:, :4] = np.round(pred[:, :4] / 2) * 2  # even sides: float16 corners are exact
    p16 = torch.from_numpy(np.ascontiguousarray(pred)).half()
    want = T.non_max_suppression(p16.float(), version="v8")
    for got in (T.non_max_suppression(p16, version="v8"),
                R.non_max_suppression(p16.numpy(), version="v8")):
        assert_parity(got, want, name="nms.non_max_suppression", tol=EXACT)


def _yolov5_nms():
    if importlib.util.find_spec("yolov5") is None:
        pytest.skip("yolov5 is not installed (a peer, not a dependency)")
    from parity_tests.bench.nms import yolov5_non_max_suppression
    return yolov5_non_max_suppression()


@pytest.mark.parametrize("multi_label", [False, True])
def test_float16_equals_yolov5(multi_label):
    nms5 = _yolov5_nms()
    for pred in (PAIR, _many_classes(2)):
        p16 = torch.from_numpy(pred).half()
        want = nms5(p16, iou_thres=0.55, multi_label=multi_label)
        assert want[0].dtype == torch.float32
        assert_parity(T.non_max_suppression(p16, iou_thres=0.55, multi_label=multi_label), want,
                      name="nms.non_max_suppression", tol=EXACT)
        assert_parity(R.non_max_suppression(p16.numpy(), iou_thres=0.55, multi_label=multi_label),
                      want, name="nms.non_max_suppression", tol=EXACT)


def test_float16_equals_ultralytics(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    u = pytest.importorskip("ultralytics.utils.nms")
    pred = _many_classes(3)[:, :, [0, 1, 2, 3] + list(range(5, 5 + NC))].transpose(0, 2, 1)
    p16 = torch.from_numpy(np.ascontiguousarray(pred)).half()
    want = u.non_max_suppression(p16, 0.25, 0.55)
    assert want[0].dtype == torch.float32
    for got in (T.non_max_suppression(p16, iou_thres=0.55, version="v8"),
                R.non_max_suppression(p16.numpy(), iou_thres=0.55, version="v8")):
        assert_parity(got, want, name="nms.non_max_suppression", tol=EXACT)


# ----------------------------------------------------------------------------- box-IoU losses

BOXES1 = np.array([[0.0, 0.0, 10.3, 10.1], [1, 1, 5, 7], [100.5, 20, 180.25, 64]])
BOXES2 = np.array([[1.0, 0.5, 11, 9.7], [0, 2, 6, 6], [90, 25.5, 170, 70]])


@pytest.mark.parametrize("name", BOX_LOSSES)
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_box_losses_upcast_float16_as_torchvision(name, reduction):
    b1, b2 = (torch.from_numpy(b).half() for b in (BOXES1, BOXES2))
    want = getattr(tvo, name)(b1, b2, reduction=reduction)
    assert want.dtype == torch.float32
    port = getattr(TL, name)(b1, b2, reduction=reduction)
    assert_parity(port, want, name=f"loss.{name}", tol=EXACT)  # the same float32 operations
    ref = getattr(RL, name)(b1.numpy(), b2.numpy(), reduction=reduction)
    assert_parity(ref, want, name=f"loss.{name}", dtype="float32")  # np vs torch libm


@pytest.mark.parametrize("name", BOX_LOSSES + ["sigmoid_focal_loss"])
def test_unknown_reduction_says_so_as_torchvision(name):
    ok = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    pattern = "Invalid Value for arg 'reduction'"
    with pytest.raises(ValueError, match=pattern):
        getattr(tvo, name)(ok, ok, reduction="max")
    with pytest.raises(ValueError, match=pattern):
        getattr(TL, name)(ok, ok, reduction="max")
    with pytest.raises(ValueError, match=pattern):
        getattr(RL, name)(ok.numpy(), ok.numpy(), reduction="max")


# ----------------------------------------------------------------------------- edge shapes

@pytest.mark.parametrize("hw", [(1, 3000), (3000, 1), (1, 1), (2, 5000)])
@pytest.mark.parametrize("auto", [False, True])
def test_letterbox_of_a_thin_image_has_the_requested_shape(hw, auto):
    img = np.full(hw + (3,), 200, np.uint8)
    out, ratio, (dw, dh) = TT.letterbox(img, 640, auto=auto)
    h, w = out.shape[:2]
    if not auto:
        assert (h, w) == (640, 640)
    else:
        assert h % 32 == 0 and w % 32 == 0 and max(h, w) == 640
    assert (out == 200).any()  # the resized pixels are there (at least one row / column)
    rows = np.flatnonzero((out == 200).all(axis=2).any(axis=1))
    assert rows.size >= 1 and abs(rows[0] - dh) <= 0.5


def test_batched_nms_zero_boxes_with_none_as_torchvision():
    want = tvo.batched_nms(torch.zeros(0, 4), None, None, 0.5)
    assert_parity(T.batched_nms(torch.zeros(0, 4), None, None, 0.5), want,
                  name="nms.batched_nms", tol=EXACT)
    assert_parity(R.batched_nms(np.zeros((0, 4)), None, None, 0.5), want.numpy(),
                  name="nms.batched_nms", tol=EXACT)
    for impl, boxes in ((T, torch.zeros(1, 4)), (R, np.zeros((1, 4)))):
        with pytest.raises(ValueError, match="scores"):  # only zero boxes may come without
            impl.batched_nms(boxes, None, None, 0.5)
