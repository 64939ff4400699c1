"""Wrong IoU and box-format code, as tutorials write it."""
from __future__ import annotations

import numpy as np

from parity_tests.mutants import Mutant


def _parts(a, b, plus1=0.0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + plus1
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + plus1
    area_a = (a[:, 2] - a[:, 0] + plus1) * (a[:, 3] - a[:, 1] + plus1)
    area_b = (b[:, 2] - b[:, 0] + plus1) * (b[:, 3] - b[:, 1] + plus1)
    return iw, ih, area_a[:, None], area_b[None, :]


def iou_eps_union(boxes1, boxes2):
    """The YOLOv5 habit: + 1e-7 in the union (harmless in pixels, wrong for normalised boxes)."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    inter = iw.clip(0) * ih.clip(0)
    return inter / (a1 + a2 - inter + 1e-7)


def iou_zero_union_zero(boxes1, boxes2):
    """where(union > 0, ...): degenerate pairs silently give 0."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    inter = iw.clip(0) * ih.clip(0)
    union = a1 + a2 - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou_clipped_union(boxes1, boxes2):
    """union.clip(min=1): 'at least one pixel' (wrong below pixel scale)."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    inter = iw.clip(0) * ih.clip(0)
    return inter / np.maximum(a1 + a2 - inter, 1.0)


def iou_product_clamped(boxes1, boxes2):
    """w and h of the overlap clamped after the product: two negatives make an overlap."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    inter = np.maximum(iw * ih, 0)
    return inter / (a1 + a2 - inter)


def iou_swapped_xy(boxes1, boxes2):
    """The second argument indexed as (y1, x1, y2, x2)."""
    return iou_plain(boxes1, np.asarray(boxes2)[:, [1, 0, 3, 2]])


def iou_plain(boxes1, boxes2):
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    inter = iw.clip(0) * ih.clip(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (a1 + a2 - inter)


def iou_xywh_as_xyxy(boxes1, boxes2):
    """Reads its xyxy input as COCO xywh."""
    def xyxy(b):
        b = np.asarray(b, float)
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    return iou_plain(xyxy(boxes1), xyxy(boxes2))


def iou_voc_plus1(boxes1, boxes2):
    """Pascal VOC's +1 pixel widths: a convention, not a bug (no mutant: must report CONV)."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2, 1.0)
    inter = iw.clip(0) * ih.clip(0)
    return inter / (a1 + a2 - inter)


def giou_no_enclosing_clamp_eps(boxes1, boxes2):
    """GIoU with eps 1e-7 in the enclosing area and union."""
    iw, ih, a1, a2 = _parts(boxes1, boxes2)
    a, b = np.asarray(boxes1, float), np.asarray(boxes2, float)
    inter = iw.clip(0) * ih.clip(0)
    union = a1 + a2 - inter + 1e-7
    cw = np.maximum(a[:, None, 2], b[None, :, 2]) - np.minimum(a[:, None, 0], b[None, :, 0])
    ch = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
    c = cw * ch + 1e-7
    return inter / union - (c - union) / c


def giou_plain_iou(boxes1, boxes2):
    """'GIoU' that forgot the enclosing-box term."""
    return iou_plain(boxes1, boxes2)


def diou_center_xy_swapped(boxes1, boxes2):
    """DIoU whose centre distance mixes x of one box with y of the other."""
    a, b = np.asarray(boxes1, float), np.asarray(boxes2, float)
    iou = iou_plain(a, b)
    cw = np.maximum(a[:, None, 2], b[None, :, 2]) - np.minimum(a[:, None, 0], b[None, :, 0])
    ch = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
    bs = b[:, [1, 0, 3, 2]]
    dx = (a[:, None, 0] + a[:, None, 2]) / 2 - (bs[None, :, 0] + bs[None, :, 2]) / 2
    dy = (a[:, None, 1] + a[:, None, 3]) / 2 - (bs[None, :, 1] + bs[None, :, 3]) / 2
    return iou - (dx ** 2 + dy ** 2) / (cw ** 2 + ch ** 2 + 1e-7)


def xywh_to_xyxy_as_cxcywh(boxes):
    """COCO xywh treated as centre + size (the most common format mix-up)."""
    b = np.asarray(boxes, float)
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)


def xyxy_to_cxcywh_swapped(boxes):
    """Centre and size stacked as (cy, cx, h, w)."""
    b = np.asarray(boxes, float)
    return np.stack([(b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2, b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], 1)


def cxcywh_to_xyxy_full_size(boxes):
    """Treats the centre as the top-left corner (x1 = cx, x2 = cx + w): the xywh formula."""
    b = np.asarray(boxes, float)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def xyxy_to_xywh_clipped(boxes):
    """Clips the corner at 0 ('boxes cannot start outside the image')."""
    b = np.asarray(boxes, float)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1).clip(0)


MUTANTS = [
    Mutant("iou_eps_union", "boxes.box_iou", iou_eps_union, "union", defect="+1e-7 in the union"),
    Mutant("iou_zero_union_zero", "boxes.box_iou", iou_zero_union_zero, "zero union", defect="0 for 0/0"),
    Mutant("iou_clipped_union", "boxes.box_iou", iou_clipped_union, "union", defect="union clipped at 1"),
    Mutant("iou_product_clamped", "boxes.box_iou", iou_product_clamped, "intersection",
           defect="overlap w*h clamped, not w and h"),
    Mutant("iou_swapped_xy", "boxes.box_iou", iou_swapped_xy, "swapped", defect="x/y swapped in one argument"),
    Mutant("iou_xywh_as_xyxy", "boxes.box_iou", iou_xywh_as_xyxy, "xywh", defect="xyxy read as xywh"),
    Mutant("giou_eps", "boxes.generalized_box_iou", giou_no_enclosing_clamp_eps, "union",
           defect="eps in union and enclosing area"),
    Mutant("giou_plain_iou", "boxes.generalized_box_iou", giou_plain_iou, "unexplained",
           defect="the enclosing term is missing"),
    Mutant("diou_center_swapped", "boxes.distance_box_iou", diou_center_xy_swapped, "unexplained",
           defect="centre distance uses swapped x/y of the second box"),
    Mutant("xywh_to_xyxy_as_cxcywh", "boxes.box_convert", xywh_to_xyxy_as_cxcywh, "cxcywh -> xyxy",
           fixed={"in_fmt": "xywh", "out_fmt": "xyxy"}, defect="xywh treated as cxcywh"),
    Mutant("xyxy_to_cxcywh_swapped", "boxes.box_convert", xyxy_to_cxcywh_swapped, "swapped",
           fixed={"in_fmt": "xyxy", "out_fmt": "cxcywh"}, defect="x/y swapped in the output"),
    Mutant("cxcywh_to_xyxy_as_xywh", "boxes.box_convert", cxcywh_to_xyxy_full_size, "xywh -> xyxy",
           fixed={"in_fmt": "cxcywh", "out_fmt": "xyxy"}, defect="centre treated as the corner"),
    Mutant("xyxy_to_xywh_clipped", "boxes.box_convert", xyxy_to_xywh_clipped, "clamped",
           fixed={"in_fmt": "xyxy", "out_fmt": "xywh"}, defect="coordinates clipped at 0"),
]

#: Correct-but-conventional code: must be reported as a convention, never a bug.
CONVENTIONS = [
    Mutant("iou_voc_plus1", "boxes.box_iou", iou_voc_plus1, "+1"),
]
