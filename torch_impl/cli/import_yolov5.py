"""Convert an official YOLOv5 v7.0 state_dict into a torch_impl.models.YOLOv5 checkpoint.

The input must be a plain dict of tensors saved with torch.save (it is read with
weights_only=True, so no code from the file runs). Official training checkpoints pickle the
whole nn.Module and cannot be read without the yolov5 code; in a yolov5 checkout save the
weights first:

    python -c "import torch; m = torch.load('yolov5s.pt', weights_only=False)['model']; \\
torch.save(m.float().state_dict(), 'yolov5s_sd.pt')"

The output is a model file that yolo-ref predict, evaluate --weights and train --weights
read: our model's state_dict with its config ("model_cfg": nc, multiples, anchors) and the
class names (--names: a classes.txt, one name a line, or a data-set YAML; default class0..),
plus the earlier {"state_dict", "config"} keys (torch_impl.models.import_yolov5 is the
library function).

Examples:
    yolo-ref import-yolov5 yolov5s_sd.pt yolov5s_ours.pt --variant s --names coco_names.txt
    yolo-ref import-yolov5 best_sd.pt ours.pt --variant n --nc 3 --names data/dataset.yaml
    yolo-ref predict --weights ours.pt --source images/ --out pred
    yolo-ref import-yolov5 sd.pt ours.pt --variant s --depth-multiple 0.5 --width-multiple 0.5

An unreadable input, a file that is not a state_dict, or weights that do not fit the requested
model (variant, nc, anchors) are bad input: exit code 2 with the first offending key named.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, make_parser, run
from ref_numpy.shared.datayaml import read_data_yaml
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
    p.add_argument("--names", default=None,
                   help="class names: a text file (one a line) or a data-set YAML (its names); "
                        "None: class0..")
    return p


def read_names(path: str | os.PathLike) -> list[str]:
    """Class names from a data-set YAML (``.yaml`` / ``.yml``: its ``names``) or a text file
    (one name a line, trailing blank lines ignored).

    Raises:
        ValueError: naming the file (unreadable, an empty name, no names).
    """
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return list(read_data_yaml(p)["names"])
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"names (--names): {p}: cannot read: {exc}") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not all(ln.strip() for ln in lines):
        raise ValueError(f"names (--names): {p}: expected one non-empty class name per line")
    return [ln.strip() for ln in lines]


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref import-yolov5``: 0 converted, 2 bad options or input (ValueError)."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # argparse's --help / usage exits: ref_numpy.shared.cli.run
    names = read_names(args.names) if args.names is not None else None
    config = import_yolov5(args.input, args.output, args.variant, nc=args.nc,
                           depth_multiple=args.depth_multiple,
                           width_multiple=args.width_multiple, names=names)
    names = names or [f"class{k}" for k in range(config["nc"])]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    print(f"converted {args.input} -> {args.output}: yolov5{args.variant}, nc={config['nc']} "
          f"({shown}), {config['parameters']:,} parameters; use it with yolo-ref predict "
          f"--weights {args.output}")
    return EXIT_OK
