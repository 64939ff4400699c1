"""Audit your own function against the reference's contract (the conformance kit).

Examples:
  yolo-ref check mycode.py:my_nms --as nms.nms
  yolo-ref check mycode.py:xywh2xyxy --as boxes.box_convert --fixed in_fmt=xywh --fixed out_fmt=xyxy
  yolo-ref check mycode.py:assign --as properties:grid_assign
  yolo-ref check mycode.py                # discover functions, bind by name/signature, audit each
  yolo-ref check mycode.py:my_iou --as boxes.box_iou --json report.json --examples 100

Without :FUNC and --as, every public function of FILE whose name matches a reference contract
(nms, batched_nms, box_iou, box_convert, yolov5_decode, yolov5_build_targets, yolov5_loss,
coco_evaluate, ...; a leading
``my_`` or trailing ``_np``/``_torch`` is ignored) is bound and audited; the binding is printed
first. --adapter MOD:FUNC names a callable ``adapter(fn, **reference_kwargs)`` (see
parity_tests/conformance/binding.py).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from ref_numpy.shared.cli import EXIT_CHECK_FAILED, EXIT_OK, UsageError, make_parser


def _load_file(path: str):
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"FILE: {path} does not exist or is not a file")
    spec = importlib.util.spec_from_file_location(p.stem, p)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(p.parent.resolve()))  # the user's sibling imports
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # noqa: BLE001 - the user's file failed to import
        raise UsageError(f"FILE: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.pop(0)
    return mod


def _load_obj(target: str, what: str) -> Any:
    if ":" not in target:
        raise UsageError(f"{what}: expected MOD:FUNC, got {target!r}")
    mod, func = target.split(":", 1)
    try:
        m = _load_file(mod) if mod.endswith(".py") else importlib.import_module(mod)
        return getattr(m, func)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{what}: cannot load {target!r} ({exc})") from exc


def _norm(name: str) -> str:
    return re.sub(r"^(my_|user_)|(_np|_numpy|_torch|_ref|_impl)$", "", name.lower())


def discover(module) -> list[tuple[str, Any, str]]:
    """(name, function, contract) for each public function of ``module`` named like a contract."""
    from parity_tests import conformance
    by_func = {t.split(".")[1]: t for t in conformance.targets()}
    aliases = {"iou": "boxes.box_iou", "bbox_iou": "boxes.box_iou", "giou": "boxes.generalized_box_iou",
               "non_max_suppression_single": "nms.nms"}
    out = []
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_") or getattr(fn, "__module__", None) != module.__name__:
            continue
        key = _norm(name)
        target = by_func.get(key) or aliases.get(key)
        if target:
            out.append((name, fn, target))
    return out


def _parse_fixed(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--fixed: expected NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = make_parser("check", __doc__)
    p.add_argument("file", metavar="FILE.py[:FUNC]", help="the user's file, optionally :FUNC")
    p.add_argument("--as", dest="claims", default=None,
                   help="reference contract (e.g. nms.nms) or properties:KIND")
    p.add_argument("--adapter", default=None, help="MOD:FUNC adapter(fn, **reference_kwargs)")
    p.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="a reference argument the function does not take (repeatable)")
    p.add_argument("--json", default=None, help="write the report(s) as JSON to this file")
    p.add_argument("--examples", type=int, default=300, help="inputs per regime")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    a = p.parse_args(argv)
    if a.examples < 1:
        raise UsageError(f"--examples: expected a positive integer, got {a.examples}")
    from parity_tests import conformance

    path, _, func = a.file.partition(":")
    if not path.endswith(".py"):
        raise UsageError(f"FILE: expected a .py file, got {path!r}")
    module = _load_file(path)
    adapter = _load_obj(a.adapter, "--adapter") if a.adapter else None
    fixed = _parse_fixed(a.fixed)
    if func:
        if not hasattr(module, func):
            raise UsageError(f"FUNC: {path} has no function {func!r}")
        fn = getattr(module, func)
        claims = a.claims
        if claims is None:
            found = [t for n, _, t in discover(module) if n == func]
            if not found:
                raise UsageError(f"--as: cannot guess the contract of {func!r}; pass --as NAME "
                                 f"(one of {', '.join(conformance.targets())}, or properties:KIND)")
            claims = found[0]
        jobs = [(func, fn, claims)]
    else:
        if a.claims:
            raise UsageError("--as needs FILE.py:FUNC")
        jobs = discover(module)
        if not jobs:
            raise UsageError(f"FILE: no function in {path} is named like a reference contract; "
                             f"use FILE.py:FUNC --as NAME")
        print("binding:")
        for name, _, target in jobs:
            print(f"  {Path(path).stem}.{name} -> {target}")
    reports = []
    for name, fn, claims in jobs:
        label = f"{Path(path).stem}.{name}"
        if claims.startswith("properties:"):
            r = conformance.properties(fn, claims.split(":", 1)[1], adapter=adapter, fixed=fixed,
                                       examples=max(1, a.examples // 3), seed=a.seed, name=label)
        else:
            try:
                r = conformance.check(fn, claims, adapter=adapter, fixed=fixed, examples=a.examples,
                                      seed=a.seed, name=label)
            except conformance.BindingError as exc:
                raise UsageError(str(exc)) from exc
        print(r)
        reports.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_CHECK_FAILED


if __name__ == "__main__":
    from ref_numpy.shared.cli import run
    sys.exit(run(main))
