"""Convert an official Ultralytics (8.3 / 8.4) YOLOv8 state_dict into a torch_impl.models.YOLOv8 model file.

The input must be a plain dict of tensors saved with torch.save (it is read with
weights_only=True, so no code from the file runs). Official checkpoints (yolov8n.pt) pickle the
whole nn.Module and cannot be read without the ultralytics code; with ultralytics installed save
the weights first:

    python -c "import torch; m = torch.load('yolov8n.pt', weights_only=False)['model']; \\
torch.save(m.float().state_dict(), 'yolov8n_sd.pt')"

The output is a model file that yolo-ref predict, evaluate --weights and train --arch yolov8
--weights read: our model's state_dict (the same tensors, one to one: model.<i>.* -> our
readable names), its config ("model_cfg": arch yolov8, nc, scale) and the class names (--names:
a classes.txt, one name a line, or a data-set YAML; default class0..).

Examples:
    yolo-ref import-yolov8 yolov8n_sd.pt yolov8n_ours.pt --variant n --names coco_names.txt
    yolo-ref import-yolov8 best_sd.pt ours.pt --variant s --names data/dataset.yaml
    yolo-ref predict --weights yolov8n_ours.pt --source images/ --out pred
    yolo-ref train --data my.yaml --arch yolov8 --model n --weights yolov8n_ours.pt

An unreadable input, a file that is not a state_dict, or weights that do not fit the requested
variant / nc are bad input: exit code 2 with the first offending key named.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, make_parser, run
from torch_impl.cli.import_yolov5 import read_names
from torch_impl.models import V8_VARIANTS, import_yolov8


def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref import-yolov8`` options."""
    p = make_parser("import-yolov8", __doc__)
    p.add_argument("input", help="official state_dict (.pt, a dict of tensors)")
    p.add_argument("output", help="where to save ours")
    p.add_argument("--variant", choices=sorted(V8_VARIANTS), default="n", help="YOLOv8 scale")
    p.add_argument("--nc", type=int, default=None,
                   help="number of classes (None: read from model.22.cv3.0.2.weight)")
    p.add_argument("--names", default=None,
                   help="class names: a text file (one a line) or a data-set YAML (its names); "
                        "None: class0..")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref import-yolov8``: 0 converted, 2 bad options or input (ValueError)."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # argparse's --help / usage exits: ref_numpy.shared.cli.run
    names = read_names(args.names) if args.names is not None else None
    config = import_yolov8(args.input, args.output, args.variant, nc=args.nc, names=names)
    names = names or [f"class{k}" for k in range(config["nc"])]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    print(f"converted {args.input} -> {args.output}: yolov8{args.variant}, nc={config['nc']} "
          f"({shown}), {config['parameters']:,} parameters; use it with yolo-ref predict "
          f"--weights {args.output}")
    return EXIT_OK
