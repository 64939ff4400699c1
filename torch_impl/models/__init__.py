"""Detection models (torch only; no NumPy reference): YOLOv5 v7.0 n/s/m/l/x with the official
parameter layout, an anchor-free DFL-head variant, and official state_dict import/export
(:func:`import_yolov5` converts an official state_dict file; ``yolo-ref import-yolov5`` is its
command line)."""
from torch_impl.models.common import C3, SPPF, Bottleneck, Conv, make_divisible
from torch_impl.models.convert import (import_yolov5, import_yolov5_state_dict,
                                       load_yolov5_state_dict, read_yolov5_state_dict,
                                       to_yolov5_state_dict)
from torch_impl.models.yolo import (DEFAULT_ANCHORS, STRIDES, VARIANTS, Backbone, Detect,
                                    DetectAnchorFree, Neck, YOLOv5, YOLOv5AnchorFree, yolov5,
                                    yolov5_anchor_free)

__all__ = [
    "C3", "SPPF", "Bottleneck", "Conv", "make_divisible",
    "import_yolov5", "import_yolov5_state_dict", "load_yolov5_state_dict",
    "read_yolov5_state_dict", "to_yolov5_state_dict",
    "DEFAULT_ANCHORS", "STRIDES", "VARIANTS", "Backbone", "Detect", "DetectAnchorFree", "Neck",
    "YOLOv5", "YOLOv5AnchorFree", "yolov5", "yolov5_anchor_free",
]
