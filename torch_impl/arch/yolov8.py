"""``--arch yolov8``: Ultralytics 8.3 / 8.4 YOLOv8 n/s/m/l/x (:class:`torch_impl.models.YOLOv8`), TAL
assignment + :func:`torch_impl.loss.yolov8_loss` (gains box 7.5, cls 0.5, dfl 1.5), the v8
``non_max_suppression`` of its ``[B, 4 + nc, A]`` eval output; official state_dicts load one to
one (``yolo-ref import-yolov8``; ``train --weights`` takes the official keys too)."""
from __future__ import annotations

from collections.abc import Mapping

from torch_impl.arch import Architecture, register
from torch_impl.arch.yolov5_anchor_free import LOSS_NAMES, v8_hyp, v8_loss, v8_postprocess
from torch_impl.models.yolov8 import (V8_LAYER_INDEX, V8_VARIANTS, YOLOv8,
                                      official_v8_keys_to_ours, yolov8, yolov8_config)


def build(nc: int, variant: str | None = None, *, depth_multiple: float | None = None,
          width_multiple: float | None = None, max_channels: int | None = None,
          reg_max: int = 16) -> YOLOv8:
    """:func:`torch_impl.models.yolov8`."""
    return yolov8(variant, nc=nc, reg_max=reg_max, depth_multiple=depth_multiple,
                  width_multiple=width_multiple, max_channels=max_channels)


def weights_nc(sd: Mapping) -> int | None:
    w = sd.get("head.cv3.0.2.weight")  # the class branch
    return int(w.shape[0]) if w is not None else None


ARCH = register(Architecture(
    name="yolov8", summary="Ultralytics 8.3 / 8.4 YOLOv8 n/s/m/l/x: C2f + PAN, DFL head, TAL + v8 loss, v8 NMS",
    build=build, make_loss=v8_loss, loss_names=LOSS_NAMES, postprocess=v8_postprocess,
    model_config=yolov8_config, model_types=(YOLOv8,), variants=tuple(V8_VARIANTS),
    prepare_hyp=v8_hyp, convert_state_dict=official_v8_keys_to_ours, weights_nc=weights_nc,
    layer_index=lambda model: dict(V8_LAYER_INDEX), max_freeze=22,
    freeze_help=": 0-9 backbone, 10-21 neck; the head, 22, always trains",
    import_command="yolo-ref import-yolov8 {path} OUT.pt --variant <n|s|m|l|x> "
                   "--names <classes.txt|data.yaml>"))
