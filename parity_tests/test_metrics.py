"""Parity of ``metrics``: COCO against the real pycocotools (bit for bit), VOC against a direct
transcription of py-faster-rcnn's ``voc_eval.py``, Ultralytics against transcriptions of yolov5
v7.0 (``process_batch``, ``ConfusionMatrix``) and the sheet's ``compute_ap`` example, the whole
Ultralytics 8.3 / 8.4 (and YOLOv5 v7.0) protocol (``ultralytics_evaluate``) against a
transcription of its validation loop built on those, the incremental evaluator (merge == single
process == ``coco_evaluate``), and the shared COCO layer (:mod:`ref_numpy.shared.coco`) that both sides import.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref_numpy.metrics as R
import ref_numpy.shared.coco as C
import torch_impl.metrics as P
from parity_tests import strategies as S
from parity_tests.oracles import pycocotools_evaluate
from parity_tests.registry import to_port
from parity_tests.tolerances import EXACT, assert_parity

# ----------------------------------------------------------------------------- COCO helpers


def _pycocotools(gt: dict, results: list, **params):
    """pycocotools evaluate + accumulate + summarize, silenced (:mod:`parity_tests.oracles`)."""
    return pycocotools_evaluate(gt, results, **params)


def _assert_coco_equal(ours, ev, inputs):
    """All 12 stats, precision, recall and scores exactly equal to pycocotools'."""
    desired = {"stats": ev.stats, "precision": ev.precision, "recall": ev.recall,
               "scores": ev.scores}
    actual = {k: getattr(ours, k) for k in desired}
    assert_parity(actual, desired, name="metrics.coco_evaluate", tol=EXACT, inputs=inputs)


def _both(gt, results, **kw):
    return R.coco_evaluate(gt, results, **kw), P.coco_evaluate(gt, results, **kw)


# One data set with every edge case at once (always run as an @example): GT areas exactly 32^2
# and 96^2, a crowd GT overlapping a normal one, an image with only a crowd GT, an image without
# GT, a category without GT, IoU exactly 0.5 and 0.75, a score tie, more than 100 detections.
def _ann(i, img, cat, bbox, area, crowd):
    return {"id": i, "image_id": img, "category_id": cat, "bbox": bbox, "area": area,
            "iscrowd": crowd}


_EDGE_GT = {"images": [{"id": 1}, {"id": 2}, {"id": 3}],
            "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [_ann(1, 1, 1, [0, 0, 32, 32], 1024.0, 0),
                            _ann(2, 1, 1, [40, 0, 96, 96], 9216.0, 0),
                            _ann(3, 2, 2, [0, 0, 50, 50], 2500.0, 1),
                            _ann(4, 1, 1, [0, 0, 32, 32], 1024.0, 1)]}
_EDGE_RES = ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 16, 32], "score": 0.5},   # IoU 0.5
              {"image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "score": 0.5},   # tie
              {"image_id": 1, "category_id": 1, "bbox": [40, 0, 72, 96], "score": 0.9},  # IoU 0.75
              {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.5},   # in crowd
              {"image_id": 3, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.5}]   # no GT cat
             + [{"image_id": 1, "category_id": 1, "bbox": [float(i), 0, 32, 32], "score": 0.25}
                for i in range(105)])                                                 # > 100 dets


# ----------------------------------------------------------------------------- COCO tests


@settings(max_examples=40)
@given(data=S.coco_datasets())
@example(data=(_EDGE_GT, _EDGE_RES))
@example(data=({"images": [{"id": 5}], "categories": [{"id": 1}],
                "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 10, 10],
                                 "area": 100.0, "iscrowd": 1}]},
               [{"image_id": 5, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}]))
def test_coco_matches_pycocotools(data):
    gt, results = data
    ev = _pycocotools(gt, results)
    ref, port = _both(gt, results)
    _assert_coco_equal(ref, ev, data)
    _assert_coco_equal(port, ev, data)
    assert ref.per_class == port.per_class
    assert set(ref.per_class) == {c["id"] for c in gt["categories"]}


@settings(max_examples=10)
@given(data=S.coco_datasets(max_images=3), thrs=st.sampled_from([[0.5], [0.3, 0.5, 0.75]]),
       max_dets=st.sampled_from([(1, 5, 100), (2, 3, 4)]))
def test_coco_custom_params_match_pycocotools(data, thrs, max_dets):
    gt, results = data
    if not results:
        results = [{"image_id": gt["images"][0]["id"], "category_id": gt["categories"][0]["id"],
                    "bbox": [0, 0, 1, 1], "score": 0.5}]
    ev = _pycocotools(gt, results, iou_thrs=thrs, max_dets=max_dets)
    for ours in _both(gt, results, iou_thrs=thrs, max_dets=max_dets):
        _assert_coco_equal(ours, ev, data)


@given(data=S.coco_datasets(max_images=3))
@settings(max_examples=10)
def test_coco_empty_results_is_no_detections(data):
    """pycocotools' loadRes crashes on []: ours answers as a results set with no detections."""
    gt, _ = data
    ev = _pycocotools(gt, [])
    for ours in _both(gt, []):
        _assert_coco_equal(ours, ev, data)


def test_coco_no_gt_annotations_gives_minus_one():
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}], "annotations": []}
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]
    ev = _pycocotools(gt, res)
    for ours in _both(gt, res):
        _assert_coco_equal(ours, ev, (gt, res))
        assert_parity(ours.stats, -np.ones(12), name="metrics.coco_evaluate", tol=EXACT)
        assert ours.per_class == {1: -1.0}


def test_coco_annotation_id_zero_is_handled():
    """An annotation id of 0 matches like any other id here (pycocotools counts a detection
    matched to it as a false positive); the result does not depend on the ids."""
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
                           "area": 100.0, "iscrowd": 0}]}
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    shifted = copy.deepcopy(gt)
    shifted["annotations"][0]["id"] = 1
    ev = _pycocotools(shifted, res)
    buggy = _pycocotools(gt, res).stats[0]  # pycocotools on id 0: the match counts as a miss
    for ours in _both(gt, res):
        _assert_coco_equal(ours, ev, (gt, res))
        assert float(ours.stats[0]) > buggy


def test_coco_reads_json_paths(tmp_path):
    gt, res = _EDGE_GT, _EDGE_RES
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    ev = _pycocotools(gt, res)
    for ours in (R.coco_evaluate(str(tmp_path / "gt.json"), tmp_path / "res.json"),
                 P.coco_evaluate(tmp_path / "gt.json", str(tmp_path / "res.json"))):
        _assert_coco_equal(ours, ev, "json")


@pytest.mark.parametrize("gt,res,what", [
    (_EDGE_GT, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "image_id"),
    (_EDGE_GT, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 0.5}], "bbox"),
    (_EDGE_GT, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}], "score"),
    ({"images": []}, [], "gt"),
    (_EDGE_GT, {"not": "a list"}, "results"),
])
def test_coco_bad_input_raises(gt, res, what):
    for fn in (R.coco_evaluate, P.coco_evaluate):
        with pytest.raises(ValueError, match=what):
            fn(gt, res)
    with pytest.raises(ValueError, match="max_dets"):  # any number of counts, each an int >= 1
        R.coco_evaluate(_EDGE_GT, _EDGE_RES, max_dets=(1, 2.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_coco_port_on_cuda_equals_pycocotools():
    ev = _pycocotools(_EDGE_GT, _EDGE_RES)
    ours = P.coco_evaluate(_EDGE_GT, _EDGE_RES, device="cuda")
    assert ours.precision.device.type == "cuda"
    _assert_coco_equal(ours, ev, "cuda")


def test_bad_input_raises_on_both_sides():
    box = np.zeros((1, 4))
    for mod in (R, P):
        with pytest.raises(ValueError, match="pred_scores"):
            mod.DetectionEvaluator().update([box], [], [np.zeros(1)], [box], [np.zeros(1)])
        with pytest.raises(ValueError, match="det_image_ids"):
            mod.voc_evaluate([box], [np.zeros(1, np.int64)], box, np.ones(1), np.zeros(1, np.int64),
                             np.array([3]))
        with pytest.raises(ValueError, match="version"):
            mod.compute_ap(np.array([0.5]), np.array([1.0]), version="9")
        with pytest.raises(ValueError, match="iou"):
            mod.match_predictions(np.zeros(2), np.zeros(1), np.zeros((2, 1)), np.array([0.5]))
        with pytest.raises(ValueError, match="detections"):
            mod.confusion_matrix(np.zeros((1, 5)), np.zeros((1, 5)), 3)


def _to_batches(gt, results):
    """COCO dicts as per-image arrays (xyxy), in sorted image id order."""
    imgs = sorted(im["id"] for im in gt["images"])
    out = []
    for img in imgs:
        a = [x for x in gt["annotations"] if x["image_id"] == img]
        r = [x for x in results if x["image_id"] == img]
        def xyxy(items):
            b = np.array([x["bbox"] for x in items], dtype=np.float64).reshape(-1, 4)
            return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        out.append(dict(pred_boxes=xyxy(r), pred_scores=np.array([x["score"] for x in r], dtype=np.float64),
                        pred_labels=np.array([x["category_id"] for x in r], dtype=np.int64),
                        gt_boxes=xyxy(a), gt_labels=np.array([x["category_id"] for x in a], dtype=np.int64),
                        gt_iscrowd=np.array([bool(x["iscrowd"]) for x in a]),
                        gt_areas=np.array([x["area"] for x in a], dtype=np.float64)))
    return out


def _feed(ev, images, convert):
    keys = ("pred_boxes", "pred_scores", "pred_labels", "gt_boxes", "gt_labels", "gt_iscrowd", "gt_areas")
    for i in range(0, len(images), 2):  # batches of 2 images
        batch = images[i:i + 2]
        ev.update(*[[convert(b[k]) for b in batch] for k in keys])


@settings(max_examples=15)
@given(data=S.coco_datasets(max_images=5), split=st.integers(0, 5))
def test_detection_evaluator_merge_equals_single_process(data, split):
    gt, results = data
    # boxes as xyxy and back lose nothing on the 1/4-pixel grid, so the evaluator sees the same
    # boxes; detections of a category outside the GT's list have no counterpart there: drop them
    cats = {c["id"] for c in gt["categories"]}
    results = [r for r in results if r["category_id"] in cats]
    gt = dict(gt, categories=[{"id": c} for c in sorted(cats)])
    images = _to_batches(gt, results)
    split = min(split, len(images))
    for mod, convert in ((R, np.asarray), (P, lambda a: to_port(a, "float64"))):
        single = mod.DetectionEvaluator()
        _feed(single, images, convert)
        a, b = mod.DetectionEvaluator(), mod.DetectionEvaluator()
        _feed(a, images[:split], convert)
        _feed(b, images[split:], convert)
        merged = a.merge(b.state())
        r_single, r_merged = single.compute(), merged.compute()
        assert_parity({"stats": r_merged.stats, "precision": r_merged.precision},
                      {"stats": r_single.stats, "precision": r_single.precision},
                      name="metrics.DetectionEvaluator", tol=EXACT, inputs=data)
        # equal to coco_evaluate on the same data when every category appears somewhere
        labels = {r["category_id"] for r in results} | {a["category_id"] for a in gt["annotations"]}
        if labels == cats:
            ev = _pycocotools(gt, results)
            _assert_coco_equal(r_single, ev, data)


# ----------------------------------------------------------------------------- VOC


def _devkit_voc(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids,
                gt_difficult, iou_threshold=0.5, use_07_metric=False):
    """py-faster-rcnn ``voc_eval.py``, transcribed (stable sort for ties)."""
    def voc_ap(rec, prec, use_07):
        if use_07:
            ap = 0.0
            for t in np.arange(0.0, 1.1, 0.1):
                p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
                ap = ap + p / 11.0
            return ap
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])

    labels = sorted({int(c) for l, d in zip(gt_labels, gt_difficult) for c in l[~d]})
    aps = []
    for c in labels:
        class_recs, npos = {}, 0
        for i, (b, l, d) in enumerate(zip(gt_boxes, gt_labels, gt_difficult)):
            sel = l == c
            class_recs[i] = {"bbox": b[sel], "difficult": d[sel], "det": [False] * int(sel.sum())}
            npos += int(np.sum(~d[sel]))
        sel = det_labels == c
        order = np.argsort(-det_scores[sel], kind="stable")
        bbs, ids = det_boxes[sel][order], det_image_ids[sel][order]
        tp, fp = np.zeros(len(ids)), np.zeros(len(ids))
        for d in range(len(ids)):
            rec, bb, ovmax = class_recs[int(ids[d])], bbs[d], -np.inf
            bbgt = rec["bbox"]
            if bbgt.size > 0:
                ixmin = np.maximum(bbgt[:, 0], bb[0])
                iymin = np.maximum(bbgt[:, 1], bb[1])
                ixmax = np.minimum(bbgt[:, 2], bb[2])
                iymax = np.minimum(bbgt[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
                ih = np.maximum(iymax - iymin + 1.0, 0.0)
                inters = iw * ih
                uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                       + (bbgt[:, 2] - bbgt[:, 0] + 1.0) * (bbgt[:, 3] - bbgt[:, 1] + 1.0) - inters)
                overlaps = inters / uni
                ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
            if ovmax > iou_threshold:
                if not rec["difficult"][jmax]:
                    if not rec["det"][jmax]:
                        tp[d] = 1.0
                        rec["det"][jmax] = True
                    else:
                        fp[d] = 1.0
            else:
                fp[d] = 1.0
        fp, tp = np.cumsum(fp), np.cumsum(tp)
        rec = tp / float(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(voc_ap(rec, prec, use_07_metric))
    return {"classes": np.array(labels, dtype=np.int64), "ap": np.array(aps, dtype=np.float64),
            "map": np.float64(np.mean(aps)) if aps else np.float64(np.nan)}


@settings(max_examples=40)
@given(data=S.voc_datasets(), use_07=st.booleans(), thr=st.sampled_from([0.5, 0.3]))
def test_voc_matches_devkit(data, use_07, thr):
    desired = _devkit_voc(**data, iou_threshold=thr, use_07_metric=use_07)
    ref = R.voc_evaluate(**data, iou_threshold=thr, use_07_metric=use_07)
    assert_parity(ref, desired, name="metrics.voc_evaluate", tol=EXACT, inputs=data)
    port = P.voc_evaluate(**to_port(data, "float64"), iou_threshold=thr, use_07_metric=use_07)
    assert_parity(port, desired, name="metrics.voc_evaluate", dtype="float64", inputs=data)


# ----------------------------------------------------------------------------- YOLOv5 v7.0 / Ultralytics 8.3, 8.4


@pytest.mark.parametrize("version,expected", [("8.3", 0.75), ("8.4", 0.495)])
def test_compute_ap_sheet_example(version, expected):
    """recall [0.5], precision [1.0]: yolov5 / 8.3 give 0.750, 8.4 gives 0.495."""
    rec, prec = np.array([0.5]), np.array([1.0])
    for ap in (R.compute_ap(rec, prec, version=version)[0],
               P.compute_ap(torch.tensor(rec), torch.tensor(prec), version=version)[0]):
        assert_parity(ap, np.float64(expected), name="metrics.compute_ap", dtype="float64")


def _yolov5_process_batch(pred_classes, true_classes, iou, thresholds):
    """yolov5 v7.0 ``val.process_batch`` on a given IoU matrix (stable sort for ties)."""
    correct = np.zeros((len(pred_classes), len(thresholds)), dtype=bool)
    correct_class = true_classes[:, None] == pred_classes[None, :]
    for i, t in enumerate(thresholds):
        x = np.nonzero((iou >= t) & correct_class)
        if x[0].shape[0]:
            matches = np.concatenate((np.stack(x, 1), iou[x[0], x[1]][:, None]), 1)
            if x[0].shape[0] > 1:
                matches = matches[np.argsort(-matches[:, 2], kind="stable")]
                matches = matches[np.unique(matches[:, 1], return_index=True)[1]]
                matches = matches[np.unique(matches[:, 0], return_index=True)[1]]
            correct[matches[:, 1].astype(int), i] = True
    return correct


@settings(max_examples=60)
@given(problem=S.class_iou_problems())
def test_match_predictions_matches_yolov5(problem):
    desired = _yolov5_process_batch(*problem)
    assert_parity(R.match_predictions(*problem, version="yolov5"), desired, name="metrics.match_predictions",
                  tol=EXACT, inputs=problem)
    assert_parity(P.match_predictions(*to_port(problem, "float64"), version="yolov5"), desired,
                  name="metrics.match_predictions", tol=EXACT, inputs=problem)


def _yolov5_confusion(detections, labels, nc, conf=0.25, iou_thres=0.45):
    """yolov5 v7.0 ``ConfusionMatrix.process_batch`` for one image (stable sorts for ties)."""
    matrix = np.zeros((nc + 1, nc + 1))
    detections = detections[detections[:, 4] > conf]
    gt_classes = labels[:, 0].astype(int)
    detection_classes = detections[:, 5].astype(int)
    a, b = labels[:, 1:], detections[:, :4]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:])
                 - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    iou = inter / (area_a[:, None] + area_b[None, :] - inter)
    x = np.nonzero(iou > iou_thres)
    if x[0].shape[0]:
        matches = np.concatenate((np.stack(x, 1), iou[x[0], x[1]][:, None]), 1)
        if x[0].shape[0] > 1:
            matches = matches[np.argsort(-matches[:, 2], kind="stable")]
            matches = matches[np.unique(matches[:, 1], return_index=True)[1]]
            matches = matches[np.argsort(-matches[:, 2], kind="stable")]
            matches = matches[np.unique(matches[:, 0], return_index=True)[1]]
    else:
        matches = np.zeros((0, 3))
    n = matches.shape[0] > 0
    m0, m1, _ = matches.transpose().astype(int)
    for i, gc in enumerate(gt_classes):
        j = m0 == i
        if n and sum(j) == 1:
            matrix[detection_classes[m1[j]], gc] += 1
        else:
            matrix[nc, gc] += 1
    if n:
        for i, dc in enumerate(detection_classes):
            if not any(m1 == i):
                matrix[dc, nc] += 1
    return matrix


@settings(max_examples=60)
@given(problem=S.yolo_detections_and_labels())
def test_confusion_matrix_matches_yolov5(problem):
    det, lab = problem
    desired = _yolov5_confusion(det, lab, 3)
    assert_parity(R.confusion_matrix(det, lab, 3, version="yolov5"), desired, name="metrics.confusion_matrix",
                  tol=EXACT, inputs=problem)
    assert_parity(P.confusion_matrix(*to_port(problem, "float64"), 3, version="yolov5"), desired,
                  name="metrics.confusion_matrix", tol=EXACT, inputs=problem)


@settings(max_examples=30)
@given(stats=S.ultralytics_stats())
def test_ap_per_class_pr_f1_exact(stats):
    """P, R, F1 and the counts at the chosen confidence are bit-equal (so the argmax agrees);
    the trapezoid sums go through the tolerance table."""
    ref = R.ap_per_class(*stats)
    port = P.ap_per_class(*to_port(stats, "float64"))
    assert_parity(port[:5] + port[6:], ref[:5] + ref[6:], name="metrics.ap_per_class",
                  tol=EXACT, inputs=stats)
    assert_parity(port[5], ref[5], name="metrics.ap_per_class", dtype="float64", inputs=stats)



# ----------------------------------------------------------------------------- Ultralytics 8.3 / 8.4 protocol


def _yolov5_val(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, det_image_ids,
                gt_difficult, conf_thres, max_det, version, nc):
    """yolov5 v7.0 / ultralytics 8.3 ``val.py`` on given predictions, transcribed: per image
    NMS's filters (conf > thres, sorted by score, stable, first max_det), labels without the
    difficult ones, ``box_iou`` (torchvision convention), ``process_batch``, the confusion
    matrix; then ``ap_per_class`` on everything."""
    iouv = np.linspace(0.5, 0.95, 10)
    stats, kept_all, cm = [], [], np.zeros((nc + 1, nc + 1))
    for i in range(len(gt_boxes)):
        idx = [j for j in range(len(det_scores)) if det_image_ids[j] == i
               and det_scores[j] > conf_thres]
        idx = sorted(idx, key=lambda j: -det_scores[j])[:max_det]   # Python's sort is stable
        idx = np.array(idx, dtype=np.int64)
        keep = ~gt_difficult[i]
        labels = np.concatenate([gt_labels[i][keep][:, None].astype(np.float64),
                                 gt_boxes[i][keep]], 1)
        pred = np.concatenate([det_boxes[idx], det_scores[idx][:, None],
                               det_labels[idx][:, None].astype(np.float64)], 1).reshape(-1, 6)
        if len(labels) and len(pred):
            a, b = labels[:, 1:], pred[:, :4]
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:])
                         - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
            inter = wh[..., 0] * wh[..., 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                iou = inter / (area_a[:, None] + area_b[None, :] - inter)
            correct = _yolov5_process_batch(det_labels[idx], gt_labels[i][keep], iou, iouv)
        else:
            correct = np.zeros((len(pred), len(iouv)), dtype=bool)
        stats.append((correct, det_scores[idx], det_labels[idx], gt_labels[i][keep]))
        kept_all.append(idx)
        cm += _yolov5_confusion(pred, labels, nc)
    tp, conf, pcls, tcls = (np.concatenate(x, 0) for x in zip(*stats))
    _, _, p, r, f1, ap, classes = R.ap_per_class(tp, conf, pcls, tcls, version=version)
    return {"tp": tp, "conf": conf, "pred_cls": pcls, "kept": np.concatenate(kept_all),
            "target_cls": tcls, "p": p, "r": r, "f1": f1, "ap": ap, "classes": classes,
            "confusion_matrix": cm}


@settings(max_examples=40)
@given(data=S.voc_datasets(), conf_thres=st.sampled_from([0.001, 0.3, 0.5]),
       max_det=st.sampled_from([1, 3, 300]), version=st.just("yolov5"))
def test_ultralytics_evaluate_matches_yolov5_val(data, conf_thres, max_det, version):
    """Reference = the transcribed validation loop (matches, kept predictions, confusion matrix
    bit for bit; the AP through the oracle-checked ``ap_per_class``), and port = reference
    (the AP trapezoid sums through the tolerance table)."""
    kw = dict(conf_thres=conf_thres, max_det=max_det, version=version)
    ref = R.ultralytics_evaluate(**data, nc=3, **kw)
    desired = _yolov5_val(**data, nc=3, **kw)
    actual = {k: v for k, v in ref.to_dict().items() if k in desired}
    assert_parity(actual, desired, name="metrics.ultralytics_evaluate", tol=EXACT, inputs=data)
    n_cls = len(desired["classes"])
    means = {"mp": desired["p"].mean() if n_cls else np.nan,
             "mr": desired["r"].mean() if n_cls else np.nan,
             "map50": desired["ap"][:, 0].mean() if n_cls else np.nan,
             "map": desired["ap"].mean(1).mean() if n_cls else np.nan}
    assert_parity({k: getattr(ref, k) for k in means}, {k: np.float64(v) for k, v in means.items()},
                  name="metrics.ultralytics_evaluate", tol=EXACT, inputs=data)
    port = P.ultralytics_evaluate(**to_port(data, "float64"), nc=3, **kw).to_dict()
    ref_d = ref.to_dict()
    approx = ("ap", "map50", "map")
    assert_parity({k: port[k] for k in approx}, {k: ref_d[k] for k in approx},
                  name="metrics.ap_per_class", dtype="float64", inputs=data)
    assert_parity({k: v for k, v in port.items() if k not in approx},
                  {k: v for k, v in ref_d.items() if k not in approx},
                  name="metrics.ultralytics_evaluate", tol=EXACT, inputs=data)


def test_ultralytics_evaluate_defaults_and_bad_input():
    """Defaults: the 10 IoU thresholds of Ultralytics 8.3 / 8.4, conf 0.001, max_det 300, nc from the labels;
    empty inputs are defined (NaN means); bad arguments raise naming them, on both sides."""
    box = np.array([[0.0, 0.0, 10.0, 10.0]])
    args = ([box], [np.array([1])], box, np.array([0.9]), np.array([1]), np.array([0]))
    for mod in (R, P):
        conv = (lambda a: a) if mod is R else (lambda a: to_port(a, "float64"))
        res = mod.ultralytics_evaluate(*conv(args))
        assert_parity(res.iou_thresholds, R.ULTRALYTICS_IOU_THRS, name="metrics.ultralytics_evaluate",
                      tol=EXACT)
        assert tuple(res.confusion_matrix.shape) == (3, 3) and float(res.map50) > 0.99
        empty = mod.ultralytics_evaluate(*conv(([np.zeros((0, 4))], [np.zeros(0, np.int64)],
                                                np.zeros((0, 4)), np.zeros(0),
                                                np.zeros(0, np.int64), np.zeros(0, np.int64))))
        assert len(empty.classes) == 0 and np.isnan(float(empty.map50))
        for bad, what in (({"max_det": 0}, "max_det"), ({"version": "9"}, "version"),
                          ({"conf_thres": float("nan")}, "conf_thres"), ({"nc": 1}, "nc"),
                          ({"iou_thresholds": np.zeros(0)}, "iou_thresholds")):
            with pytest.raises(ValueError, match=what):
                mod.ultralytics_evaluate(*conv(args), **bad)


# ----------------------------------------------------------------------------- shared COCO layer


def test_shared_coco_layer_is_what_both_sides_use():
    """The constants, parsing, checks, summary and result container have one home
    (``ref_numpy.shared.coco``); the reference and the port re-export them and return the same result class;
    the summary of pycocotools' own precision/recall arrays equals its stats."""
    for name in ("COCO_AREA_RNG", "COCO_IOU_THRS", "COCO_MAX_DETS", "COCO_REC_THRS",
                 "COCOEvalResult"):
        assert getattr(R, name) is getattr(C, name)
    assert P.COCOEvalResult is C.COCOEvalResult and P.parse_coco is C.parse_coco
    ev = _pycocotools(_EDGE_GT, _EDGE_RES)
    iou_thrs, _, max_dets = C.check_coco_params()
    assert_parity(C.summarize(ev.precision, ev.recall, iou_thrs, max_dets), ev.stats,
                  name="metrics.coco_evaluate", tol=EXACT)
    assert C.format_summary(ev.stats, iou_thrs, max_dets) == ev.summary_lines
    ours = R.coco_evaluate(_EDGE_GT, _EDGE_RES)
    assert ours.per_class == C.per_class_ap(ev.precision, ours.cat_ids, max_dets)
    parsed = C.parse_coco(_EDGE_GT, _EDGE_RES)
    assert parsed["img_ids"].tolist() == [1, 2, 3] and len(parsed["dt_img"]) == len(_EDGE_RES)
    with pytest.raises(ValueError, match="iou_thrs"):
        C.check_coco_params(iou_thrs=[])
    with pytest.raises(ValueError, match="area_rng"):
        C.check_coco_params(area_rng=[[0, 1]])


def test_bench_map_agrees_with_pycocotools_at_small_scale(capsys):
    """``yolo-ref bench map`` on a 10-image set: every evaluator's 12 stats identical to
    pycocotools' (exit 0; the timings are printed, not asserted); bad arguments exit 2."""
    from parity_tests.bench import map as bench_map

    assert bench_map.main(["--scale", "0.002"]) == 0
    out = capsys.readouterr().out
    assert "pycocotools" in out and "ref_numpy" in out and "DIFFER" not in out
    assert bench_map.main(["--scale", "0"]) == 2
    assert "--scale" in capsys.readouterr().err
