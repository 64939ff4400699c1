"""Registry rows for ``metrics``: COCO (pycocotools), PASCAL VOC and YOLOv5 v7.0 / Ultralytics 8.3, 8.4 AP.

The COCO rows and the incremental evaluator are covered by dedicated tests in
``test_metrics.py`` that compare both sides with the real pycocotools bit for bit (the generic
harness cannot express dict/JSON inputs, classes or the external oracle). Both sides parse the
COCO inputs, check the parameters and compute the 12-number summary and per-class AP through
the same code (:mod:`ref_numpy.shared.coco`), so those rows say ``shared=`` and name
pycocotools (:func:`parity_tests.oracles.pycocotools_evaluate`) as their oracle. The array
functions run through the generic harness at float64 and float32 as well.
"""
from hypothesis import strategies as st

from parity_tests import strategies as S
from parity_tests.registry import Call, ParityCase
from ref_numpy.shared.constants import ULTRALYTICS_VERSIONS

_VERSIONS = st.sampled_from(ULTRALYTICS_VERSIONS)  # the `version` of every Ultralytics (ULTRALYTICS_VERSIONS) row


@st.composite
def _voc_ap(draw):
    rec, prec = draw(S.pr_curves())
    return Call((rec, prec), {"use_07_metric": draw(st.booleans())})


@st.composite
def _compute_ap(draw):
    rec, prec = draw(S.pr_curves())
    return Call((rec, prec), {"method": draw(st.sampled_from(["interp", "continuous"])),
                              "version": draw(_VERSIONS)})


@st.composite
def _voc_evaluate(draw):
    kw = draw(S.voc_datasets())
    kw["use_07_metric"] = draw(st.booleans())
    return Call((), kw)


@st.composite
def _ap_per_class(draw):
    return Call(draw(S.ultralytics_stats()), {"version": draw(_VERSIONS)})


@st.composite
def _match(draw):
    return Call(draw(S.class_iou_problems()), {"version": draw(_VERSIONS)})


@st.composite
def _confusion(draw):
    det, lab = draw(S.yolo_detections_and_labels())
    return Call((det, lab, 3), {"conf": draw(st.sampled_from([0.0, 0.001, 0.25, 0.5])),
                                "iou_thres": draw(st.sampled_from([0.45, 0.5])),
                                "version": draw(_VERSIONS)})


_COCO_ORACLE = "parity_tests.oracles.pycocotools_evaluate"
_SHARED_COCO = "ref_numpy.shared.coco"

CASES = [
    ParityCase("metrics.coco_evaluate", covered_by="test_metrics.py::test_coco_matches_pycocotools",
               oracle=_COCO_ORACLE, shared=_SHARED_COCO,
               note="dict/JSON inputs; both sides equal pycocotools exactly (stats, precision, "
                    "recall, scores); every Params field (use_cats, img_ids, cat_ids, rec_thrs, "
                    "area_rng + area_rng_lbl, max_dets in any number and order, iou_thrs), the "
                    "summary lines, named stats and hostile inputs in "
                    "test_coco_params.py::test_every_param_matches_pycocotools and siblings; "
                    "empty results, no GT, id 0, JSON paths in test_metrics.py. Shared on both "
                    "sides: coco_params, parse_coco, summarize, per_class_ap "
                    "(ref_numpy.shared.coco); the matching and accumulation are mirrored"),
    ParityCase("metrics.COCOEvalResult", covered_by="test_metrics.py::test_coco_matches_pycocotools",
               oracle=_COCO_ORACLE, shared=_SHARED_COCO,
               note="the result container of coco_evaluate: defined once in "
                    "ref_numpy.shared.coco, returned by both sides (tensors in the port); "
                    "named stats (AP..ARl, AR50/AR75 as faster-coco-eval) and summary() in "
                    "test_coco_params.py::test_named_stats"),
    ParityCase("metrics.DetectionEvaluator",
               covered_by="test_metrics.py::test_detection_evaluator_merge_equals_single_process",
               oracle=_COCO_ORACLE, shared=_SHARED_COCO,
               note="stateful: merge == single process == pycocotools; the summary is shared "
                    "(ref_numpy.shared.coco.summarize)"),
    ParityCase("metrics.voc_ap", inputs=_voc_ap),
    ParityCase("metrics.voc_evaluate", inputs=_voc_evaluate,
               covered_by="test_metrics.py::test_voc_matches_devkit",
               note="oracle: a transcription of py-faster-rcnn voc_eval.py in the test"),
    ParityCase("metrics.compute_ap", inputs=_compute_ap,
               covered_by="test_metrics.py::test_compute_ap_sheet_example"),
    ParityCase("metrics.ap_per_class", inputs=_ap_per_class,
               covered_by="test_metrics.py::test_ap_per_class_pr_f1_exact"),
    ParityCase("metrics.match_predictions", inputs=_match,
               covered_by="test_metrics.py::test_match_predictions_matches_yolov5",
               note="every version ('yolov5', '8.3', '8.4'); oracle: yolov5 v7.0 process_batch "
                    "transcribed (stable sort for ties); test_versions.py: each version's rule on "
                    "constructed inputs and, where installed, ultralytics 8.4.190 / yolov5 7.0 "
                    "themselves"),
    ParityCase("metrics.confusion_matrix", inputs=_confusion,
               covered_by="test_metrics.py::test_confusion_matrix_matches_yolov5",
               note="every version; oracle: yolov5 v7.0 ConfusionMatrix.process_batch transcribed; "
                    "test_versions.py: 8.3.253 / 8.4.190 rules, ultralytics 8.4.190 itself"),
    ParityCase("metrics.ultralytics_evaluate",
               covered_by="test_metrics.py::test_ultralytics_evaluate_matches_yolov5_val",
               note="a composition of oracle-checked rows (match_predictions, confusion_matrix: "
                    "yolov5 transcriptions) and ap_per_class, after the releases' NMS filters; "
                    "oracle: yolov5 v7.0 val.py loop transcribed in the test (version 'yolov5'; "
                    "'8.3' / '8.4' in test_versions.py) "
                    "(no installable oracle: pycocotools is a different protocol). Port = "
                    "reference exactly except the AP sums (ap_per_class's tolerance). Returns a "
                    "dataclass, so the generic harness cannot compare it"),
    ParityCase("metrics.UltralyticsResult",
               covered_by="test_metrics.py::test_ultralytics_evaluate_matches_yolov5_val",
               note="the result container of ultralytics_evaluate; the port subclasses it"),
]
