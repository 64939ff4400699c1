"""Benchmarks of the port against its peers, every ratio timed in the same run.

yolo-ref bench NAME [options]: NAME is one of the benchmarks below (parity_tests/bench/NAME.py,
each a main(argv) with its own --help), or all (each in turn, with its defaults).

  nms     torch_impl.nms (single image, padded, batched) and ref_numpy.nms vs torchvision.ops.nms
  assign  YOLOv5 build_targets and TAL vs per-target loops and the NumPy reference
  loss    YOLOv5 / v8 loss forward and backward vs the NumPy reference
  map     COCO mAP (ref_numpy / torch_impl metrics) vs pycocotools
  peers   every row of the performance table vs the peer packages (torchvision, yolov5, ultralytics,
          faster-coco-eval) timed in the same process, with ratios and goals

long ones (minutes to hours of training; named explicitly, not part of all):
  yolov1  the four experiments of "YOLOv1 from Scratch" on a generated shapes set
  train   end to end: the toolkit's trainer vs the official yolov5 train.py on the README's shapes
          benchmark (curves, time to mAP@0.5 >= 0.9, seconds per epoch, images per second)

examples:
  yolo-ref bench nms --quick
  yolo-ref bench loss --device cuda
  yolo-ref bench all
  yolo-ref bench train --epochs 2 --threads 1
  yolo-ref bench assign --help

Exit codes: 0 done; 1 a benchmark's port disagreed with its baseline (or missed a goal under its
--strict); 2 bad arguments or a missing extra (the test extra has torchvision and pycocotools).
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, EXIT_USAGE, UsageError, make_parser, run

BENCHMARKS = ("nms", "assign", "loss", "map", "peers")
# Long-running ones (minutes of training): named explicitly, not part of "all"; name -> module.
LONG_BENCHMARKS = {"yolov1": "yolov1_experiments", "train": "train"}


def _parser():
    p = make_parser("bench", __doc__)
    p.add_argument("name", choices=(*BENCHMARKS, *LONG_BENCHMARKS, "all"), help="which benchmark")
    p.add_argument("options", nargs="*", help="options of that benchmark (see yolo-ref bench NAME --help)")
    return p


def load(name: str):
    """The ``main`` of benchmark ``name`` (``parity_tests.bench.<name>``)."""
    if name in LONG_BENCHMARKS:
        return importlib.import_module(f"parity_tests.bench.{LONG_BENCHMARKS[name]}").main
    if name not in BENCHMARKS:
        raise ValueError(f"name: unknown benchmark {name!r}, expected one of {BENCHMARKS}")
    return importlib.import_module(f"parity_tests.bench.{name}").main


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _parser().print_help()
        return EXIT_OK if argv else EXIT_USAGE
    name, rest = argv[0], argv[1:]
    if name == "all":
        if rest:
            raise UsageError(f"all: takes no options, got {rest} (run one benchmark to pass options)")
        codes = []
        for bench in BENCHMARKS:
            print(f"== yolo-ref bench {bench}", flush=True)
            codes.append(load(bench)([]))
        return max(codes)
    if name not in BENCHMARKS and name not in LONG_BENCHMARKS:
        raise UsageError(f"name: unknown benchmark {name!r}, expected one of "
                         f"{(*BENCHMARKS, *LONG_BENCHMARKS, 'all')}")
    return load(name)(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench NAME [options]``: the benchmark's exit code; 2 for bad arguments."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
