"""Constants of the conventions both sides reproduce, defined once.

Plain Python values (numbers, strings, tuples): :mod:`ref_numpy` and :mod:`torch_impl` import
them from here, so a constant cannot differ between the reference and the port. Where a module
needs an array form (``ref_numpy.anchors.YOLOV5_ANCHORS``) it builds it from the tuple here.

Box formats
    ``FORMATS``: the box formats of ``box_convert`` (torchvision's names): ``"xyxy"`` corners,
    ``"xywh"`` top-left corner and size, ``"cxcywh"`` centre and size.
    ``ALIGNED_FORMATS``: the formats ``aligned_box_iou`` accepts (YOLOv5's ``bbox_iou(xywh=)``).
    ``IOU_KINDS``: the ``kind`` values of ``aligned_box_iou``.

NMS (YOLOv5 v7.0 ``utils/general.py``, torchvision ``ops/boxes.py``)
    ``MAX_WH``: class offset of class-aware NMS, boxes are shifted by ``cls * MAX_WH`` pixels.
    ``DIOU_EPS``: added to the enclosing-box squared diagonal in DIoU-NMS (torchvision's
    ``distance_box_iou`` default eps).

Autoanchor (YOLOv5 v7.0 ``utils/autoanchor.py``)
    ``YOLOV5_ANCHOR_SIZES``: default anchors ``(w, h)`` in pixels at 640, P3/8, P4/16, P5/32:
    3 levels x 3 anchors. ``MUTATION_PROB`` (``mp``), ``MUTATION_SIGMA`` (``s``),
    ``KMEANS_ITER`` (scipy ``kmeans`` restarts), ``MIN_SIDE`` (labels with both sides below it
    are left out of the fit), ``SMALL_SIDE`` (labels with a side below it are counted).

Ultralytics 8.3 / 8.4 and YOLOv5 v7.0 (the ``version`` argument of the functions that follow them)
    ``ULTRALYTICS_VERSIONS``: ``"yolov5"`` = YOLOv5 v7.0 (the ``yolov5`` 7.0.14 package),
    ``"8.3"`` = ultralytics 8.3.253 (the last 8.3 release), ``"8.4"`` = ultralytics 8.4.190.
    ``ULTRALYTICS_RELEASES``: the release each value names, for docstrings and messages.
    ``ULTRALYTICS_DEFAULT_VERSION``: the default everywhere (``"8.3"``).
    ``TAL_VERSIONS``: the values with a ``TaskAlignedAssigner`` (``"8.3"``, ``"8.4"``);
    ``TAL_STRIDES``: its default model strides (8, 16, 32).

Loss (departures from YOLOv5 v7.0 that only remove inf/NaN; see ``ref_numpy.loss``)
    ``MIN_WH``: smallest predicted w, h (grid units) fed to CIoU; below it v7.0 gives 0/0.
    ``MAX_LOG_WH``: largest exponent of an ``exp()`` width decode (``exp(10)`` ~ 2.2e4 anchors).
    ``REDUCTIONS``: the ``reduction`` values every loss accepts.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------- boxes
FORMATS = ("xyxy", "xywh", "cxcywh")
ALIGNED_FORMATS = ("xyxy", "cxcywh")
IOU_KINDS = ("iou", "giou", "diou", "ciou")

# ----------------------------------------------------------------------------- nms
MAX_WH = 7680
DIOU_EPS = 1e-7

# ----------------------------------------------------------------------------- anchors
YOLOV5_ANCHOR_SIZES = (((10, 13), (16, 30), (33, 23)),
                       ((30, 61), (62, 45), (59, 119)),
                       ((116, 90), (156, 198), (373, 326)))
MUTATION_PROB = 0.9
MUTATION_SIGMA = 0.1
KMEANS_ITER = 30
MIN_SIDE = 2.0
SMALL_SIDE = 3.0

# ----------------------------------------------------------------------------- ultralytics
ULTRALYTICS_VERSIONS = ("yolov5", "8.3", "8.4")
ULTRALYTICS_RELEASES = {"yolov5": "yolov5 v7.0", "8.3": "ultralytics 8.3.253",
                        "8.4": "ultralytics 8.4.190"}
ULTRALYTICS_DEFAULT_VERSION = "8.3"
TAL_VERSIONS = ("8.3", "8.4")  # the ULTRALYTICS_VERSIONS with a TaskAlignedAssigner (not yolov5)
TAL_STRIDES = (8.0, 16.0, 32.0)  # TaskAlignedAssigner's default ``stride`` (ultralytics 8.4.190)

# ----------------------------------------------------------------------------- loss
REDUCTIONS = ("none", "mean", "sum")
MIN_WH = 1e-9
MAX_LOG_WH = 10.0
