"""Detection models (torch only; no NumPy reference): YOLOv5 v7.0 n/s/m/l/x with the official
parameter layout, an anchor-free DFL-head variant, Ultralytics 8.3 / 8.4 YOLOv8 n/s/m/l/x
(:func:`yolov8`, :mod:`torch_impl.models.yolov8`), and official state_dict import/export
(:func:`import_yolov5` / :func:`import_yolov8` convert an official state_dict file;
``yolo-ref import-yolov5`` / ``import-yolov8`` are their command lines)."""
from torch_impl.models.common import C3, SPPF, Bottleneck, Conv, make_divisible
from torch_impl.models.convert import (import_yolov5, import_yolov5_state_dict,
                                       load_yolov5_state_dict, read_yolov5_state_dict,
                                       to_yolov5_state_dict)
from torch_impl.models.yolo import (DEFAULT_ANCHORS, STRIDES, VARIANTS, Backbone, Detect,
                                    DetectAnchorFree, Neck, YOLOv5, YOLOv5AnchorFree, yolov5,
                                    yolov5_anchor_free)
from torch_impl.models.yolov8 import (V8_VARIANTS, C2f, DetectV8, YOLOv8, import_yolov8,
                                      import_yolov8_state_dict, load_yolov8_state_dict,
                                      to_yolov8_state_dict, yolov8, yolov8_parameter_count)
from torch_impl.models.tutorial import (TutorialDecoded, TutorialDetector, load_tutorial_state_dict,
                                        tutorial)
from torch_impl.models.yolov1 import YOLOv1, yolov1

__all__ = [
    "C3", "SPPF", "Bottleneck", "Conv", "make_divisible",
    "import_yolov5", "import_yolov5_state_dict", "load_yolov5_state_dict",
    "read_yolov5_state_dict", "to_yolov5_state_dict",
    "DEFAULT_ANCHORS", "STRIDES", "VARIANTS", "Backbone", "Detect", "DetectAnchorFree", "Neck",
    "YOLOv5", "YOLOv5AnchorFree", "yolov5", "yolov5_anchor_free",
    "V8_VARIANTS", "C2f", "DetectV8", "YOLOv8", "import_yolov8", "import_yolov8_state_dict",
    "load_yolov8_state_dict", "to_yolov8_state_dict", "yolov8", "yolov8_parameter_count",
    "TutorialDecoded", "TutorialDetector", "load_tutorial_state_dict", "tutorial", "YOLOv1", "yolov1",
]
