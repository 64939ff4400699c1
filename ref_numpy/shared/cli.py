"""Conventions of the ``yolo-ref`` command line, defined once for every subcommand.

Exit codes (the one table; ``yolo-ref --help`` prints it):

====  ==============================================================
code  meaning
====  ==============================================================
0     done (every check passed, the job finished)
1     a check failed (an audit or conformance row failed, a goal was missed)
2     bad input or usage (unknown option, missing or malformed file, bad value)
3     training diverged (a non-finite loss stopped the run)
====  ==============================================================

Option names shared by subcommands (same spelling, meaning and default everywhere):
``--img-size``, ``--conf-thres``, ``--iou-thres``, ``--backend ref|torch``, ``--device``,
``--out``, ``--seed``, ``--json``. Every subcommand is a ``main(argv) -> int`` function; the
dispatcher (:mod:`ref_numpy.cli`) and the thin ``scripts/*.py`` wrappers both call it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Any, Callable, Sequence

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3

EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_CHECK_FAILED: "a check failed",
    EXIT_USAGE: "bad input or usage",
    EXIT_DIVERGED: "training diverged",
}

EXIT_CODES_TEXT = "exit codes: " + ", ".join(f"{k} {v}" for k, v in EXIT_CODES.items())

BACKENDS = ("ref", "torch")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default (``(default: ...)``) and keeps the description's line breaks."""


class UsageError(ValueError):
    """Bad input or usage found after parsing (exit code 2): the message names the argument."""


def make_parser(prog: str, doc: str | None, **kw: Any) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for subcommand ``prog`` (``yolo-ref PROG``) with the module docstring
    as description, defaults shown and the exit-code table as epilog."""
    return argparse.ArgumentParser(prog=f"yolo-ref {prog}", description=doc,
                                   formatter_class=HelpFormatter, epilog=EXIT_CODES_TEXT, **kw)


def add_img_size(p: argparse.ArgumentParser, default: int = 640) -> None:
    p.add_argument("--img-size", type=int, default=default, help="network input side, pixels")


def add_conf_thres(p: argparse.ArgumentParser, default: float = 0.25) -> None:
    p.add_argument("--conf-thres", type=float, default=default, help="confidence threshold")


def add_iou_thres(p: argparse.ArgumentParser, default: float = 0.45) -> None:
    p.add_argument("--iou-thres", type=float, default=default, help="NMS IoU threshold")


def add_backend(p: argparse.ArgumentParser, default: str = "torch") -> None:
    p.add_argument("--backend", choices=BACKENDS, default=default,
                   help="ref = ref_numpy (NumPy), torch = torch_impl (needs the 'torch' extra)")


def add_device(p: argparse.ArgumentParser, default: str = "cpu") -> None:
    p.add_argument("--device", default=default, help="torch device: cpu, cuda, cuda:0")


def add_out(p: argparse.ArgumentParser, default: str | None = None, help: str = "output directory") -> None:
    p.add_argument("--out", default=default, help=help)


def optional_import(name: str, purpose: str, extra: str | None = None) -> ModuleType | None:
    """Import ``name`` or return ``None`` after one line on stderr saying what is skipped and how
    to get it (``pip install 'yolo-ref[EXTRA]'`` or ``pip install NAME``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        hint = f"pip install 'yolo-ref[{extra}]'" if extra else f"pip install {name.split('.')[0]}"
        print(f"note: {purpose} skipped: {name} is not installed ({hint})", file=sys.stderr)
        return None


def require(name: str, purpose: str, extra: str | None = None) -> ModuleType:
    """Import ``name`` or raise :class:`UsageError` with the install hint (exit code 2)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        hint = f"pip install 'yolo-ref[{extra}]'" if extra else f"pip install {name.split('.')[0]}"
        raise UsageError(f"{purpose} needs {name}, which is not installed ({hint})") from exc


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call a subcommand's ``main`` and turn bad input into exit code 2 with a one-line message
    (``ValueError``, ``FileNotFoundError``, ``UsageError``, missing optional dependency)."""
    try:
        return int(main(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(exc.code, file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ValueError, OSError, ImportError) as exc:
        # OSError: a missing file, a read-only or full output directory (ENOSPC), a path
        # under a regular file; its message names the path
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
