"""The generic contract: any public ``ref_numpy`` function with a parity-registry input strategy.

A name with no hand-written spec (``"boxes.box_area"``, ``"coder.dist2bbox"``) is checked against
its reference on the inputs the parity registry draws for it
(``parity_tests.registry.CASES_BY_NAME[name].inputs``, NumPy float64), with Hypothesis:

1. a counting pass of ``examples`` derandomized draws (``seed`` folded in): every input goes to the
   reference and to the user's function (bound by :class:`~parity_tests.conformance.binding.Binding`:
   names or arity, NumPy or torch, ``fixed``), the outputs are graded (bit-exact, within N ulps,
   same decisions with different values, different);
2. when some differ, a shrinking pass that raises inside the test body on a mismatch, so
   Hypothesis shrinks the input; the last failing call is the counterexample.

A reference that raises ``ValueError`` on an input defines it as invalid: the user's function
should raise too; one that returns instead is a ``"convention"`` finding (not a bug).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from parity_tests.conformance.binding import Binding, BindingError
from parity_tests.conformance.engine import (Grade, Spec, _call, _fresh, compare_values, fmt_array,
                                             plain)
from parity_tests.conformance.report import Finding, Report

CHECK = "registry inputs"
INVALID_CHECK = "invalid input"
#: note of a graded integer/boolean part (indices, kept flags): a decision
_DECISION = "decisions"


class _Mismatch(Exception):
    """Raised inside the Hypothesis body to make it shrink."""


class _Reject(Exception):
    """The drawn call is outside what this run can check (fixed values, reference crash)."""


# ----------------------------------------------------------------------------- grading

def _first_diff(e: np.ndarray, g: np.ndarray) -> str:
    if e.shape != g.shape:
        return ""
    with np.errstate(invalid="ignore"):
        bad = ~((e == g) | (np.isnan(e) & np.isnan(g)))
    idx = np.argwhere(bad)
    return "" if not len(idx) else "[" + ",".join(str(int(i)) for i in idx[0]) + "]"


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind in "fc"


def compare_any(expected: Any, got: Any, where: str = "output") -> tuple[Grade, str]:
    """Graded comparison of arbitrary reference outputs (arrays, scalars, tuples, dicts).

    Floating parts go through :func:`~parity_tests.conformance.engine.compare_values` at the
    output's own scale (its largest finite magnitude); integer and boolean parts (indices,
    decisions) must be equal. A tuple whose decisions agree but whose values do not grades
    ``"same decisions, different values"``. Returns the grade and the first differing position
    (``"output[1][2,0]"``)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return Grade(False, "different", note="not a dict with the reference's keys"), where
        parts = [(compare_any(expected[k], got[k], f"{where}[{k!r}]")) for k in expected]
        return _combine(parts, where)
    if isinstance(expected, (tuple, list)) and not _numeric_list(expected):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return Grade(False, "different", note=f"not a sequence of {len(expected)} outputs"), where
        parts = [compare_any(e, g, f"{where}[{i}]") for i, (e, g) in enumerate(zip(expected, got))]
        return _combine(parts, where)
    try:
        e = np.asarray(expected)
        g = np.asarray(got)
    except (TypeError, ValueError):
        return Grade(False, "different", note="output is not an array"), where
    pos = where
    if e.dtype.kind not in "biufc" or g.dtype.kind not in "biufc":
        ok = bool(np.array_equal(e, g)) if e.shape == g.shape else False
        return Grade(ok, "bit-exact" if ok else "different"), pos
    if _is_float(e) or _is_float(g):
        finite = np.abs(e[np.isfinite(e)].astype(np.float64)) if e.size else np.zeros(0)
        scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        grade = compare_values(e, g, scale=scale)
    elif e.shape == g.shape and np.array_equal(e, g):
        grade = Grade(True, "bit-exact", note=_DECISION)
    else:
        note = f"; shape {list(g.shape)} instead of {list(e.shape)}" if e.shape != g.shape else ""
        grade = Grade(False, "different", note=_DECISION + note)
    if not grade.ok:
        d = _first_diff(e.astype(np.float64), g.astype(np.float64)) if e.shape == g.shape else ""
        pos = f"{pos}{d}"
    return grade, pos


def _numeric_list(x: Any) -> bool:
    try:
        return np.asarray(x).dtype.kind in "biufc"
    except (TypeError, ValueError):
        return False


def _combine(parts: list[tuple[Grade, str]], where: str) -> tuple[Grade, str]:
    bad = [(g, p) for g, p in parts if not g.ok]
    if not bad:
        worst = max((g for g, _ in parts), key=lambda g: g.ulps, default=Grade(True, "bit-exact"))
        return worst, where
    g, p = bad[0]
    decisions = [gr for gr, _ in parts if gr.note.startswith(_DECISION)]
    if decisions and all(gr.ok for gr in decisions) and not any(gr.grade == "raised" for gr, _ in bad):
        g = Grade(False, "same decisions, different values", ulps=g.ulps, diff=g.diff, note=g.note)
    return g, p


# ----------------------------------------------------------------------------- the spec

@dataclass
class GenericSpec(Spec):
    """A :class:`Spec` built from a registry row; :meth:`run` replaces the engine's regimes."""

    strategy: Callable[[], Any] = field(default=lambda: None)
    params: list[inspect.Parameter] = field(default_factory=list)

    def run(self, fn: Callable, *, name: str | None = None, adapter: Any = None,
            fixed: dict | None = None, examples: int = 300, seed: int = 0) -> Report:
        """Audit ``fn`` on ``examples`` registry draws (see the module docstring)."""
        return _run(self, fn, name=name, adapter=adapter, fixed=dict(fixed or {}),
                    examples=examples, seed=seed)


def generic_spec(name: str) -> GenericSpec | None:
    """The generic contract of ``ref_numpy.<name>``, or None when the parity registry has no row
    with an ``inputs`` strategy for it."""
    from parity_tests.registry import CASES_BY_NAME
    case = CASES_BY_NAME.get(name)
    if case is None or case.inputs is None:
        return None
    ref = case.ref
    sig = inspect.signature(ref)
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    args = [p.name for p in params]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    return GenericSpec(name=name, ref=ref, args=args, signature=f"{sig}  [generic: registry inputs]",
                       checks=[], probes=[], compare=lambda e, g, x: compare_any(e, g)[0],
                       defaults=defaults, strategy=case.inputs, params=params)


def _bind(spec: GenericSpec, fn: Callable, fixed: dict, adapter: Any) -> Binding:
    """Bind with every reference argument; failing that, with the optional ones the user neither
    takes nor fixed held at the reference's defaults (inputs are drawn only with those)."""
    try:
        return Binding.make(fn, spec.args, fixed, adapter)
    except BindingError as first:
        implied = {k: v for k, v in spec.defaults.items() if k not in fixed}
        if not implied:
            raise
        try:
            return Binding.make(fn, spec.args, {**implied, **fixed}, adapter)
        except BindingError:
            raise first from None


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:  # noqa: BLE001 - values numpy cannot compare are different
        return a is b


def _inputs(spec: GenericSpec, call: Any, fixed: dict) -> dict:
    """Reference keyword arguments of a registry :class:`Call` (defaults filled in); _Reject when
    it draws a value other than ``fixed``'s."""
    if len(call.args) > len(spec.params):
        raise _Reject
    drawn = {p.name: v for p, v in zip(spec.params, call.args)}
    drawn.update(call.kwargs)
    for k, v in fixed.items():
        if k in drawn and not _same(drawn[k], v):
            raise _Reject
    out = {**spec.defaults, **drawn, **fixed}
    if any(a not in out for a in spec.args):
        raise _Reject
    return out


@dataclass
class _Outcome:
    inputs: dict
    expected: Any
    got: Any
    grade: Grade
    where: str = ""


def _evaluate(spec: GenericSpec, binding: Binding, inputs: dict) -> _Outcome | None:
    """One input through both sides: None when they agree, the failing outcome otherwise;
    _Reject when the input is outside the reference's domain (it crashes other than ValueError)."""
    try:
        with np.errstate(all="ignore"):
            expected = spec.ref(**{k: _fresh(v) for k, v in inputs.items()})
    except ValueError as exc:
        got = _call(binding, inputs)
        if isinstance(got, BaseException):
            return None
        return _Outcome(inputs, exc, got, Grade(False, "returned", note="invalid input accepted"))
    except Exception:  # noqa: BLE001 - the reference crashing is outside its domain
        raise _Reject from None
    with np.errstate(all="ignore"):
        got = _call(binding, inputs)
    if isinstance(got, BaseException):
        return _Outcome(inputs, expected, got, Grade(False, "raised", note=f"{type(got).__name__}: {got}"))
    try:
        grade, where = compare_any(expected, got)
    except Exception as exc:  # noqa: BLE001 - an output the comparison cannot read
        grade, where = Grade(False, "different", note=f"output not comparable ({exc})"), "output"
    return None if grade.ok else _Outcome(inputs, expected, got, grade, where)


def _search(spec: GenericSpec, binding: Binding, fixed: dict, examples: int, seed: int,
            shrink: str | None) -> tuple[int, list[_Outcome], _Outcome | None]:
    """One Hypothesis pass: ``shrink=None`` counts; ``"bug"``/``"convention"`` raises on that kind
    of failure and returns the shrunk one."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed
    from hypothesis import assume
    from hypothesis.errors import Unsatisfiable

    n_run, fails = [0], []
    last: list[_Outcome] = []
    phases = (Phase.explicit, Phase.generate) + ((Phase.shrink,) if shrink else ())

    @hseed(seed)
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=phases, verbosity=Verbosity.quiet,
              print_blob=False)
    @given(spec.strategy())
    def body(call: Any) -> None:
        try:
            inputs = _inputs(spec, call, binding.fixed)
            out = _evaluate(spec, binding, inputs)
        except _Reject:
            assume(False)
            return
        n_run[0] += 1
        if out is None:
            return
        kind = "convention" if isinstance(out.expected, ValueError) else "bug"
        if shrink is None:
            fails.append(out)
        elif kind == shrink:
            last[:] = [out]
            raise _Mismatch

    try:
        body()
    except _Mismatch:
        pass
    except Unsatisfiable:
        if shrink is None:
            raise ValueError(f"fixed: {fixed} excludes every input the parity registry draws for "
                             f"{spec.name}") from None
    except Exception:  # noqa: BLE001 - e.g. a flaky user function: keep the unshrunk example
        pass
    return n_run[0], fails, (last[0] if last else None)


def _show(x: Any) -> str:
    if isinstance(x, BaseException):
        return f"raised {type(x).__name__}"
    if isinstance(x, (tuple, list)) and not _numeric_list(x):
        return "(" + ", ".join(_show(v) for v in x) + ")"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in x.items()) + "}"
    return fmt_array(x)


def _show_input(spec: GenericSpec, inputs: dict, fixed: dict) -> str:
    parts = [f"{k} {_show(v)}" for k, v in inputs.items()
             if k not in fixed and not (k in spec.defaults and _same(v, spec.defaults[k]))]
    return ", ".join(parts) or "defaults"


def _run(spec: GenericSpec, fn: Callable, *, name: str | None, adapter: Any, fixed: dict,
         examples: int, seed: int) -> Report:
    binding = _bind(spec, fn, fixed, adapter)
    label = name or f"{getattr(fn, '__module__', '') or ''}.{getattr(fn, '__qualname__', 'fn')}".lstrip(".")
    report = Report(label, spec.name, spec.signature, examples=examples, seed=seed)
    n_run, fails, _ = _search(spec, binding, fixed, examples, seed, None)
    bugs = [f for f in fails if not isinstance(f.expected, ValueError)]
    convs = [f for f in fails if isinstance(f.expected, ValueError)]
    ref_name = f"ref_numpy.{spec.name}"
    if not bugs:
        report.findings.append(Finding(CHECK, "pass", detail=f"{n_run} registry inputs of {spec.name}",
                                       grade="bit-exact or within rounding",
                                       impact=f"0 of {n_run} inputs"))
    else:
        ex = _search(spec, binding, fixed, examples, seed, "bug")[2] or bugs[0]
        g = ex.grade
        if isinstance(ex.got, BaseException):
            why = f"your function raised {type(ex.got).__name__}: {ex.got} where {ref_name} returns"
        else:
            why = f"the output differs from the reference ({g.grade}) first at {ex.where}"
            if g.ulps and g.ulps <= 1e4:
                why += f", {g.ulps:.3g} ulps off"
            elif g.diff:
                why += f", off by {g.diff:.3g}"
            note = g.note.replace(_DECISION, "").lstrip("; ")
            if note:
                why += f" ({note})"
        impact = f"{len(bugs)} of {n_run} inputs"
        diffs = [f.grade.diff for f in bugs if f.grade.diff]
        if diffs:
            impact += f"; off by up to {max(diffs):.3g}"
        report.findings.append(Finding(
            CHECK, "bug", detail=f"{_show_input(spec, ex.inputs, binding.fixed)}: yours {_show(ex.got)}, "
                                 f"reference {_show(ex.expected)}",
            grade=g.grade, cause=g.grade, counterexample={k: plain(v) for k, v in ex.inputs.items()},
            expected=plain(ex.expected), got=plain(ex.got), why=why,
            fix=f"compare your code with {ref_name}'s docstring contract on the input above",
            impact=impact))
    if convs:
        ex = _search(spec, binding, fixed, examples, seed, "convention")[2] or convs[0]
        report.findings.append(Finding(
            INVALID_CHECK, "convention",
            detail=f"{_show_input(spec, ex.inputs, binding.fixed)}: yours {_show(ex.got)}, "
                   f"reference raises ValueError",
            grade="returned", cause="invalid input accepted",
            counterexample={k: plain(v) for k, v in ex.inputs.items()},
            expected=plain(ex.expected), got=plain(ex.got),
            why=f"{ref_name} rejects this input ({ex.expected}); your function returns a value",
            fix="raise ValueError on such inputs (or document what your function does with them)",
            impact=f"{len(convs)} of {n_run} inputs"))
    report.binding = binding.describe()
    return report
