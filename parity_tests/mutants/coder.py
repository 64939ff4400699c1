"""Wrong decoders and encoders."""
from __future__ import annotations

import numpy as np

from parity_tests.mutants import Mutant
from ref_numpy import coder as C


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _xyxy(cx, cy, w, h):
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def v3_no_sigmoid(raw, grid, anchors, stride):
    return _xyxy((raw[:, 0] + grid[:, 0]) * stride, (raw[:, 1] + grid[:, 1]) * stride,
                 anchors[:, 0] * np.exp(raw[:, 2]), anchors[:, 1] * np.exp(raw[:, 3]))


def v3_sigmoid_twice(raw, grid, anchors, stride):
    return _xyxy((_sig(_sig(raw[:, 0])) + grid[:, 0]) * stride, (_sig(_sig(raw[:, 1])) + grid[:, 1]) * stride,
                 anchors[:, 0] * np.exp(raw[:, 2]), anchors[:, 1] * np.exp(raw[:, 3]))


def v3_cxcywh_out(raw, grid, anchors, stride):
    return np.stack([(_sig(raw[:, 0]) + grid[:, 0]) * stride, (_sig(raw[:, 1]) + grid[:, 1]) * stride,
                     anchors[:, 0] * np.exp(raw[:, 2]), anchors[:, 1] * np.exp(raw[:, 3])], -1)


def v5_grid_swapped(raw, grid, anchors, stride):
    """meshgrid indexing mix-up: grid used as (row, col)."""
    s = _sig(raw)
    return _xyxy((2 * s[:, 0] - 0.5 + grid[:, 1]) * stride, (2 * s[:, 1] - 0.5 + grid[:, 0]) * stride,
                 (2 * s[:, 2]) ** 2 * anchors[:, 0], (2 * s[:, 3]) ** 2 * anchors[:, 1])


def v5_as_v3(raw, grid, anchors, stride):
    """Claims YOLOv5, decodes like YOLOv3."""
    return C.yolov3_decode(raw, grid, anchors, stride)


def v5_no_stride(raw, grid, anchors, stride):
    """Forgets the stride: grid units out."""
    return C.yolov5_decode(raw, grid, anchors, stride) / stride


def v5_anchor_times_stride(raw, grid, anchors, stride):
    return C.yolov5_decode(raw, grid, anchors * stride, stride)


def v5_encode_log_wh(boxes, grid, anchors, stride):
    """YOLOv3's log(w / anchor) size targets with YOLOv5's decoder: not an inverse."""
    t = C.yolov5_encode(boxes, grid, anchors, stride)
    t[:, 2:] = C.yolov3_encode(boxes, grid, anchors, stride)[:, 2:]
    return t


def v3_encode_no_logit(boxes, grid, anchors, stride):
    """Darknet targets (post-sigmoid offsets) passed to a decoder that applies the sigmoid."""
    return C.yolov3_encode(boxes, grid, anchors, stride, logits=False)


def v5_encode_exact(boxes, grid, anchors, stride):
    return C.yolov5_encode(boxes, grid, anchors, stride)


MUTANTS = [
    Mutant("v3_no_sigmoid", "coder.yolov3_decode", v3_no_sigmoid, "sigmoid not applied"),
    Mutant("v3_sigmoid_twice", "coder.yolov3_decode", v3_sigmoid_twice, "sigmoid applied twice"),
    Mutant("v3_cxcywh_out", "coder.yolov3_decode", v3_cxcywh_out, "cxcywh"),
    Mutant("v5_grid_swapped", "coder.yolov5_decode", v5_grid_swapped, "grid x and y swapped"),
    Mutant("v5_as_v3", "coder.yolov5_decode", v5_as_v3, "yolov3 formula"),
    Mutant("v5_no_stride", "coder.yolov5_decode", v5_no_stride, "grid units"),
    Mutant("v5_anchor_times_stride", "coder.yolov5_decode", v5_anchor_times_stride, "anchors scaled"),
    Mutant("v5_encode_log_wh", "roundtrip:coder.yolov5", (v5_encode_log_wh, C.yolov5_decode),
           "inverse", defect="encode not the inverse of decode"),
]
