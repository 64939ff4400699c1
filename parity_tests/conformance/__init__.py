"""The conformance kit: audit a user's IoU, NMS, coder, assigner, loss or mAP against the reference.

Three ways in:

- Python: ``report = conformance.check(fn, "nms.nms")``; ``conformance.check_roundtrip(encode,
  decode, "coder.yolov3")``; ``conformance.properties(fn, "grid_assign")``. ``report.ok``,
  ``report.findings``, ``report.to_json()``, ``print(report)``.
- pytest: ``test_my_nms = conformance.pytest_case(my_nms, "nms.nms")`` in the user's own suite,
  or ``YOLO_REF_IMPL=mypkg.ops pytest --pyargs parity_tests.conformance`` (every contract whose
  name ``mypkg.ops`` defines).
- Command line: ``yolo-ref check FILE.py[:FUNC] --as NAME``.

The verdicts: ``pass`` (bit-exact, within a few ulps, or the same decisions with values off by
less than the output's rounding scale), ``convention`` (a documented choice: VOC's +1 widths,
class-agnostic NMS, NaN ordering, an eps that matters only at 2^-16 scale), ``bug`` (anything
else; the probe that explains it names the cause).
"""
from __future__ import annotations

from typing import Any, Callable

from parity_tests.conformance.binding import Binding, BindingError
from parity_tests.conformance.engine import Spec, run_spec
from parity_tests.conformance.properties import KINDS, properties
from parity_tests.conformance.report import Finding, Report

__all__ = ["check", "check_roundtrip", "properties", "pytest_case", "targets", "spec",
           "Report", "Finding", "Binding", "BindingError", "KINDS"]


def _specs() -> dict[str, Callable[[], Spec]]:
    from parity_tests.conformance import targets_boxes as tb
    from parity_tests.conformance import targets_nms as tn
    out: dict[str, Callable[[], Spec]] = {
        **{f"boxes.{f}": (lambda f=f: tb.iou_spec(f)) for f in tb.IOU_FUNCS},
        "boxes.box_convert": tb.convert_spec,
        "nms.nms": lambda: tn.nms_spec(False),
        "nms.batched_nms": lambda: tn.nms_spec(True),
    }
    try:
        from parity_tests.conformance import targets_coder as tc
        out.update({f"coder.{f}": (lambda f=f: tc.decode_spec(f)) for f in tc.DECODERS})
    except ImportError:  # pragma: no cover - module still being written
        pass
    from parity_tests.conformance import targets_metrics, targets_yolo
    out.update(targets_metrics.SPECS)
    out.update(targets_yolo.SPECS)
    return out


def targets() -> list[str]:
    """The reference contracts ``check`` knows (``"module.function"``)."""
    return sorted(_specs())


def spec(name: str) -> Spec:
    """The :class:`Spec` of a reference contract; ValueError naming the known ones otherwise."""
    specs = _specs()
    if name not in specs:
        from parity_tests.conformance.targets_generic import generic_spec
        generic = generic_spec(name)  # any registry row with an inputs strategy
        if generic is not None:
            return generic
        raise ValueError(f"claims: unknown reference contract {name!r}; hand-written: "
                         f"{', '.join(sorted(specs))}; or any parity-registry row with inputs")
    return specs[name]()


def check(fn: Callable, claims: str, adapter: Any = None, fixed: dict | None = None,
          examples: int = 300, seed: int = 0, name: str | None = None) -> Report:
    """Audit ``fn`` against the contract of ``ref_numpy.<claims>``.

    Args:
        fn: the user's function (NumPy or torch; detected).
        claims: the reference function whose contract ``fn`` claims, e.g. ``"nms.nms"``.
        adapter: ``None`` (bind by name/arity), a dict of named conversions (``backend``,
            ``box_format``, ``args``, ``output``) or a callable ``adapter(fn, **ref_kwargs)``;
            see :mod:`parity_tests.conformance.binding`.
        fixed: reference arguments ``fn`` does not take (inputs are drawn with these values).
        examples: inputs per regime (lighter regimes get a fraction).
        seed: the NumPy seed; the same seed gives the same report.
        name: label printed for ``fn`` (default ``module.qualname``).

    Returns:
        Report: ``ok`` (no bug), ``findings`` (one per check), ``to_json()``, ``str()``.

    Raises:
        ValueError: unknown ``claims``; BindingError when ``fn`` cannot be bound.
    """
    s = spec(claims)
    runner = getattr(s, "run", None)  # the generic contract runs its own Hypothesis search
    if runner is not None:
        return runner(fn, name=name, adapter=adapter, fixed=fixed, examples=examples, seed=seed)
    return run_spec(s, fn, name=name, adapter=adapter, fixed=fixed, examples=examples, seed=seed)


def check_roundtrip(encode: Callable, decode: Callable, coder: str, adapter: Any = None,
                    examples: int = 300, seed: int = 0, name: str | None = None) -> Report:
    """Audit a user's encode/decode pair for ``"coder.yolov3"`` or ``"coder.yolov5"``: each side
    against the reference, then ``decode(encode(b)) == b`` on the contract's domain."""
    from parity_tests.conformance import targets_coder
    return targets_coder.check_roundtrip(encode, decode, coder, adapter=adapter,
                                         examples=examples, seed=seed, name=name)


def pytest_case(fn: Callable, claims: str, **kw: Any) -> Callable[[], None]:
    """A test function for the user's own suite: ``test_my_nms = pytest_case(my_nms, "nms.nms")``.

    It fails with the printed report when ``check`` finds a bug (``kw`` goes to :func:`check`;
    ``examples`` defaults to 100 to keep suites fast)."""
    kw.setdefault("examples", 100)

    def test() -> None:
        report = check(fn, claims, **kw)
        if not report.ok:
            raise AssertionError("\n" + str(report))

    test.__name__ = f"test_conformance_{claims.replace('.', '_')}"
    return test
