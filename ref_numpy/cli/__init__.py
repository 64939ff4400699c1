"""``yolo-ref``: one command, a subcommand per tool.

``yolo-ref SUBCOMMAND [options]`` (or ``python -m ref_numpy.cli SUBCOMMAND``). Each subcommand is
a ``main(argv) -> int`` in the library, imported only when called, so the base install (NumPy,
SciPy, Pillow, PyYAML) runs the reference's tools without torch; a subcommand that needs an extra
says which one (exit code 2). Exit codes: see :mod:`ref_numpy.shared.cli`.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

from ref_numpy.shared.cli import EXIT_CODES_TEXT, EXIT_OK, EXIT_USAGE, run

# name -> ("module:function", one-line summary, extra it needs or "")
COMMANDS: dict[str, tuple[str, str, str]] = {
    "audit": ("parity_tests.cli.audit:main", "correctness audit: reference vs port vs oracles", ""),
    "check": ("parity_tests.cli.check:main", "audit your own function against the reference", "check"),
    "evaluate": ("ref_numpy.cli.evaluate:main", "COCO / VOC / YOLOv5 v7.0 / Ultralytics 8.3, 8.4 mAP side by side", ""),
    "show-assignments": ("torch_impl.cli.show_assignments:main", "where each GT is assigned, as PNGs and a table",
                         "torch"),
    "anchors": ("ref_numpy.cli.anchors:main", "anchor best-possible recall; k-means + genetic refit", ""),
    "make-shapes": ("ref_numpy.cli.make_shapes:main", "deterministic synthetic shapes data set", ""),
    "focal-collapse": ("ref_numpy.cli.focal_collapse:main", "the YOLOv1 focal term's background gradient", ""),
    "import-yolov5": ("torch_impl.cli.import_yolov5:main", "official YOLOv5 state_dict -> this toolkit's", "torch"),
    "import-yolov8": ("torch_impl.cli.import_yolov8:main", "official YOLOv8 state_dict -> this toolkit's", "torch"),
    "train": ("torch_impl.cli.train:main", "train a detector, any --arch (CPU, CUDA, torchrun)", "torch"),
    "predict": ("torch_impl.cli.predict:main", "run a checkpoint on images", "torch"),
    "bench": ("parity_tests.cli.bench:main", "benchmarks against the peers, timed in the same run", "test"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: yolo-ref SUBCOMMAND [options]   (yolo-ref SUBCOMMAND --help for each)", "",
             "subcommands:"]
    for name, (_, summary, extra) in COMMANDS.items():
        need = f"  [needs yolo-ref[{extra}]]" if extra else ""
        lines.append(f"  {name:<{width}}  {summary}{need}")
    lines += ["", EXIT_CODES_TEXT]
    return "\n".join(lines)


def load(name: str) -> Callable[[Sequence[str] | None], int]:
    """The ``main`` function of subcommand ``name``."""
    target = COMMANDS[name][0]
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return EXIT_OK if argv else EXIT_USAGE
    if argv[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version
        try:
            print(f"yolo-ref {version('yolo-ref')}")
        except PackageNotFoundError:
            print("yolo-ref (not installed)")
        return EXIT_OK
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"yolo-ref: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        fn = load(name)
    except ImportError as exc:
        extra = COMMANDS[name][2]
        hint = f"pip install 'yolo-ref[{extra}]'" if extra else "reinstall yolo-ref"
        print(f"yolo-ref {name}: needs {exc.name or exc} ({hint})", file=sys.stderr)
        return EXIT_USAGE
    return run(fn, rest)


def entry_point() -> None:
    """Console-script entry (``yolo-ref``)."""
    sys.exit(main())
