"""Convert an official YOLOv5 v7.0 state_dict into a torch_impl.models.YOLOv5 checkpoint.

The input must be a plain dict of tensors saved with torch.save (it is read with
weights_only=True, so no code from the file runs). Official training checkpoints pickle the
whole nn.Module and cannot be read without the yolov5 code; in a yolov5 checkout save the
weights first:

    python -c "import torch; m = torch.load('yolov5s.pt', weights_only=False)['model']; \\
torch.save(m.float().state_dict(), 'yolov5s_sd.pt')"

The output is a dict {"state_dict": <our model's state_dict>, "config": {"variant", "nc",
"na", "depth_multiple", "width_multiple", "anchors_pixels"}}; rebuild with
torch_impl.models.yolov5(...) and model.load_state_dict(ckpt["state_dict"])
(torch_impl.models.import_yolov5 is the library function).

Examples:
    yolo-ref import-yolov5 yolov5s_sd.pt yolov5s_ours.pt --variant s
    yolo-ref import-yolov5 best_sd.pt ours.pt --variant n --nc 3
    yolo-ref import-yolov5 sd.pt ours.pt --variant s --depth-multiple 0.5 --width-multiple 0.5

An unreadable input, a file that is not a state_dict, or weights that do not fit the requested
model (variant, nc, anchors) are bad input: exit code 2 with the first offending key named.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, make_parser, run
from torch_impl.models import VARIANTS, import_yolov5


def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref import-yolov5`` options."""
    p = make_parser("import-yolov5", __doc__)
    p.add_argument("input", help="official state_dict (.pt, a dict of tensors)")
    p.add_argument("output", help="where to save ours")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="s", help="YOLOv5 variant")
    p.add_argument("--nc", type=int, default=None,
                   help="number of classes (None: read from model.24.m.0.weight)")
    p.add_argument("--depth-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--width-multiple", type=float, default=None, help="override the variant's")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref import-yolov5``: 0 converted, 2 bad options or input (ValueError)."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    config = import_yolov5(args.input, args.output, args.variant, nc=args.nc,
                           depth_multiple=args.depth_multiple,
                           width_multiple=args.width_multiple)
    print(f"converted {args.input} -> {args.output}: yolov5{args.variant}, nc={config['nc']}, "
          f"{config['parameters']:,} parameters")
    return EXIT_OK
