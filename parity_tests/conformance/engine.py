"""The conformance engine: draw, compare (graded), diagnose (probes), shrink, report.

A :class:`Spec` describes one reference contract (``"nms.nms"``): the reference function, its
argument names, the input regimes to draw (:class:`Check`), how to compare two outputs
(:func:`compare_values` / :func:`compare_indices`) and the diagnosis probes (:class:`Probe`).

For each check the engine draws ``examples`` inputs, calls the reference and the user's function,
and grades every pair. When some differ it asks each probe whether it explains the failures (an
*alternative reference* that implements a suspected cause, or an *input transform* that removes
one, after which the user's output must agree), names the probe that explains the most, shrinks
the first failing input while the same probe still explains it, and writes a :class:`Finding`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from parity_tests.conformance.binding import Binding
from parity_tests.conformance.report import Finding, Report

#: Largest difference, in units in the last place of the output dtype measured at the output's
#: natural scale (1 for IoU-like values, the largest coordinate for boxes), that still counts as
#: "equal within rounding": a different but correct order of a handful of float operations
#: (e.g. ``(a1 + a2) - inter`` vs ``a1 + (a2 - inter)``) stays well below it.
MAX_ULPS = 64

#: Most failing examples each probe is tried on (diagnosis cost per check).
DIAGNOSE_EXAMPLES = 6
#: Most calls of the user's function spent shrinking one counterexample.
SHRINK_BUDGET = 150


# ----------------------------------------------------------------------------- grading

@dataclass
class Grade:
    """Result of comparing one output pair."""

    ok: bool
    grade: str
    ulps: float = 0.0
    diff: float = 0.0
    note: str = ""


def compare_values(expected: Any, got: Any, scale: float = 1.0) -> Grade:
    """Graded comparison of floating outputs: bit-exact, within N ulps, or different.

    NaN must sit where the reference has NaN; ulps are counted at ``max(|expected|, scale)`` in
    the dtype of ``got`` (float32 output gets float32 ulps)."""
    try:
        e = np.asarray(expected, dtype=np.float64)
        g_raw = np.asarray(got)
        g = g_raw.astype(np.float64)
    except (TypeError, ValueError):
        return Grade(False, "different", note="output is not numeric")
    if e.shape != g.shape:
        if e.size == 0 and g.size == 0:
            return Grade(True, "bit-exact")
        return Grade(False, "different", note=f"shape {list(g.shape)} instead of {list(e.shape)}")
    en, gn = np.isnan(e), np.isnan(g)
    if np.any(en != gn):
        return Grade(False, "different", note="NaN where the reference has a number" if np.any(gn & ~en)
                     else "a number where the reference has NaN")
    both = ~en
    if np.array_equal(e[both], g[both]):
        return Grade(True, "bit-exact")
    ulp_dtype = g_raw.dtype if g_raw.dtype.kind == "f" else np.float64
    d = np.abs(e[both] - g[both])
    with np.errstate(invalid="ignore"):
        mag = np.maximum(np.abs(e[both]), scale).astype(ulp_dtype)
        ulps = d / np.spacing(mag).astype(np.float64)
    ulps = np.where(np.isfinite(d), ulps, np.inf)
    n, diff = float(np.max(ulps)), float(np.max(d))
    if n <= MAX_ULPS:
        return Grade(True, f"within {int(np.ceil(n))} ulps", ulps=n, diff=diff)
    return Grade(False, "different", ulps=n, diff=diff)


def compare_indices(expected: Any, got: Any) -> Grade:
    """Graded comparison of index outputs: bit-exact, same set in another order, or different."""
    e = np.asarray(expected).astype(np.int64).ravel()
    try:
        g = np.asarray(got).astype(np.int64).ravel()
    except (TypeError, ValueError):
        return Grade(False, "different", note="output is not a list of indices")
    if np.array_equal(e, g):
        return Grade(True, "bit-exact")
    if len(e) == len(g) and np.array_equal(np.sort(e), np.sort(g)):
        return Grade(False, "same set, other order")
    return Grade(False, "different")


# ----------------------------------------------------------------------------- specs

@dataclass
class Check:
    """One input regime: ``gen(rng, fixed) -> inputs`` (reference keyword arguments)."""

    name: str
    desc: str
    gen: Callable[[np.random.Generator, dict], dict]
    noun: str = ""
    weight: float = 1.0
    #: causes that count as a convention in this regime only (e.g. an eps at 2^-16 scale)
    convention_causes: set = field(default_factory=set)


@dataclass
class Probe:
    """A suspected cause. ``kind``:

    - ``"alt"``: ``fn(inputs) -> output`` of the reference under that cause (or None when it
      does not apply); it explains a failure when the user's output equals it (graded ok);
    - ``"transform"``: ``fn(inputs) -> inputs'`` with the cause removed (or None); it explains a
      failure when user and reference agree on ``inputs'``;
    - ``"predicate"``: ``fn(inputs, expected, got) -> bool``.
    """

    cause: str
    kind: str
    fn: Callable
    why: str
    fix: str
    verdict: str = "bug"


@dataclass
class Spec:
    """One reference contract (see the module docstring)."""

    name: str
    ref: Callable
    args: list[str]
    signature: str
    checks: list[Check]
    probes: list[Probe]
    compare: Callable[[Any, Any, dict], Grade]
    show_input: Callable[[dict], str] = lambda x: ""
    show_output: Callable[[Any], str] = lambda y: str(y)
    rows: list[tuple[str, ...]] = field(default_factory=list)  # args sharing a leading N
    units: str = ""
    extra: Callable[..., list[Finding]] | None = None  # property checks run after the checks
    defaults: dict[str, Any] = field(default_factory=dict)
    #: the user's output in the reference's form (e.g. a COCOeval-like object -> its 12 stats)
    normalize: Callable[[Any], Any] | None = None
    #: smaller variants of an input for the shrinker (default: drop rows of ``rows``, round)
    shrink_candidates: Callable[[dict], Iterator[dict]] | None = None
    #: most calls of the user's function spent shrinking one counterexample
    shrink_budget: int = SHRINK_BUDGET
    #: ``show_diff(expected, got) -> str`` replaces "yours X, reference Y" (e.g. only the
    #: COCO stats that differ)
    show_diff: Callable[[Any, Any], str] | None = None
    #: the output is boxes: "xyxy" (the adapter's box_format and coords convert it back) or
    #: "any" (only coords), "" (not boxes: IoU values, indices, losses)
    output_boxes: str = ""

    def expected(self, inputs: dict) -> Any:
        return self.ref(**inputs)


# ----------------------------------------------------------------------------- plain lists

def plain(x: Any) -> Any:
    """NumPy/torch values as plain Python (lists, floats, ints, None for NaN-free JSON)."""
    if isinstance(x, BaseException):
        return f"{type(x).__name__}: {x}"
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def fmt_array(a: Any, digits: int = 4) -> str:
    """Short human form of an array: ``[.25 .25 .5 .5]``, ``[[0 0 10 10] ...]``."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        return str(a)
    if arr.size > 24:
        return f"array{list(arr.shape)}"
    def one(v: float) -> str:
        if np.isnan(v):
            return "nan"
        if float(v).is_integer() and abs(v) < 1e6:
            return str(int(v))
        s = f"{v:.{digits}g}"
        return s.replace("0.", ".", 1) if s.startswith("0.") else s.replace("-0.", "-.", 1)
    if arr.ndim == 0:
        return one(float(arr))
    if arr.ndim == 1:
        return "[" + " ".join(one(v) for v in arr) + "]"
    return "[" + " ".join(fmt_array(r, digits) for r in arr) + "]"


# ----------------------------------------------------------------------------- running

@dataclass
class _Example:
    inputs: dict
    expected: Any
    got: Any
    grade: Grade


def _fresh(v: Any) -> Any:
    """A copy the user's function may modify (pycocotools' ``loadRes`` writes into its input)."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, (dict, list)):
        return copy.deepcopy(v)
    return v


def _call(binding: Binding, inputs: dict) -> Any:
    try:
        return binding(**{k: _fresh(v) for k, v in inputs.items()})
    except Exception as exc:  # noqa: BLE001 - a user's crash is a finding, not a kit error
        return exc


def _grade(spec: Spec, expected: Any, got: Any, inputs: dict) -> Grade:
    if isinstance(got, BaseException):
        return Grade(False, "raised", note=f"{type(got).__name__}: {got}")
    try:
        return spec.compare(expected, got, inputs)
    except Exception as exc:  # noqa: BLE001 - an output the comparison cannot read
        return Grade(False, "different", note=f"output not comparable ({type(exc).__name__}: {exc})")


def _explains(spec: Spec, binding: Binding, probe: Probe, ex: _Example) -> bool:
    if isinstance(ex.got, BaseException):
        return probe.kind == "predicate" and bool(_safe(probe.fn, ex.inputs, ex.expected, ex.got))
    if probe.kind == "alt":
        alt = _safe(probe.fn, ex.inputs)
        return alt is not None and _grade(spec, alt, ex.got, ex.inputs).ok
    if probe.kind == "transform":
        new = _safe(probe.fn, ex.inputs)
        if new is None:
            return False
        exp = _safe(spec.expected, new)
        if exp is None:
            return False
        return _grade(spec, exp, _call(binding, new), new).ok
    return bool(_safe(probe.fn, ex.inputs, ex.expected, ex.got))


def _safe(fn: Callable, *a: Any) -> Any:
    try:
        with np.errstate(all="ignore"):
            return fn(*a)
    except Exception:  # noqa: BLE001 - a probe that does not apply
        return None


def diagnose(spec: Spec, binding: Binding, failures: list[_Example]) -> Probe | None:
    """The probe that explains the most of the first failures (ties: the earlier probe)."""
    tried = failures[:DIAGNOSE_EXAMPLES]
    best, best_n = None, 0
    for probe in spec.probes:
        n = sum(_explains(spec, binding, probe, ex) for ex in tried)
        if probe.verdict == "convention" and n < len(tried):
            continue  # a convention must explain every failure, or it hides a bug
        if n > best_n:
            best, best_n = probe, n
        if n == len(tried):
            break
    return best


def _shrink_candidates(spec: Spec, inputs: dict) -> Iterator[dict]:
    if spec.shrink_candidates is not None:
        yield from spec.shrink_candidates(inputs)
        return
    for group in spec.rows:
        n = len(inputs[group[0]]) if group[0] in inputs else 0
        for i in range(n):
            new = dict(inputs)
            for k in group:
                new[k] = np.delete(np.asarray(inputs[k]), i, axis=0)
            yield new
    for group in spec.rows:
        for k in group:
            v = inputs.get(k)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size:
                for digits in (0, 1, 2):
                    r = np.round(v, digits)
                    if not np.array_equal(r, v, equal_nan=True):
                        yield {**inputs, k: r}
                        break


def shrink(spec: Spec, binding: Binding, ex: _Example, probe: Probe | None) -> _Example:
    """Greedy shrink: drop rows, then round coordinates, while the example still fails (and the
    same probe still explains it)."""
    budget = spec.shrink_budget
    progress = True
    while progress and budget > 0:
        progress = False
        for cand in _shrink_candidates(spec, ex.inputs):
            budget -= 1
            if budget <= 0:
                break
            exp = _safe(spec.expected, cand)
            if exp is None:
                continue
            got = _call(binding, cand)
            g = _grade(spec, exp, got, cand)
            if g.ok:
                continue
            new = _Example(cand, exp, got, g)
            if probe is not None and not _explains(spec, binding, probe, new):
                continue
            ex, progress = new, True
            break
    return ex


def run_check(spec: Spec, binding: Binding, check: Check, examples: int,
              rng: np.random.Generator, fixed: dict) -> Finding:
    """Draw ``examples`` inputs of one regime, grade, diagnose, shrink: one :class:`Finding`."""
    failures: list[_Example] = []
    worst = Grade(True, "bit-exact")
    n_run = 0
    for _ in range(examples):
        inputs = check.gen(rng, fixed)
        if inputs is None:
            continue
        inputs = {**spec.defaults, **inputs, **fixed}
        exp = _safe(spec.expected, inputs)
        if exp is None:
            continue  # outside the reference's domain
        n_run += 1
        got = _call(binding, inputs)
        g = _grade(spec, exp, got, inputs)
        if not g.ok:
            failures.append(_Example(inputs, exp, got, g))
        elif g.ulps > worst.ulps or (worst.grade == "bit-exact" and g.grade != "bit-exact"):
            worst = g
    if not failures:
        grade = worst.grade
        detail = check.desc + (f" ({grade})" if grade != "bit-exact" else "")
        return Finding(check.name, "pass", detail=detail, grade=grade,
                       impact=f"0 of {n_run} {check.noun} inputs".replace("  ", " "))
    probe = diagnose(spec, binding, failures)
    # shrink an example the chosen cause explains (not one that failed for another reason)
    start = failures[0] if probe is None else next(
        (f for f in failures[:DIAGNOSE_EXAMPLES] if _explains(spec, binding, probe, f)), failures[0])
    ex = shrink(spec, binding, start, probe)
    noun = f"{check.noun} " if check.noun else ""
    impact = f"{len(failures)} of {n_run} {noun}inputs"
    diffs = [f.grade.diff for f in failures if f.grade.diff]
    if diffs:
        impact += f"; off by up to {max(diffs):.3g}{' ' + spec.units if spec.units else ''}"
    if probe is None:
        why = ex.grade.note or f"the output differs from the reference ({ex.grade.grade})"
        if isinstance(ex.got, BaseException):
            why = f"your function raised {type(ex.got).__name__}: {ex.got}"
        probe = Probe("unexplained difference", "predicate", lambda *a: True, why,
                      f"compare your code with {spec.name}'s docstring contract on the input above")
    got_s = (f"raised {type(ex.got).__name__}" if isinstance(ex.got, BaseException)
             else spec.show_output(ex.got))
    if spec.show_diff is not None and not isinstance(ex.got, BaseException):
        detail = f"{spec.show_input(ex.inputs)}: {_safe(spec.show_diff, ex.expected, ex.got)}"
    else:
        detail = f"{spec.show_input(ex.inputs)}: yours {got_s}, reference {spec.show_output(ex.expected)}"
    verdict = "convention" if probe.cause in check.convention_causes else probe.verdict
    return Finding(check.name, verdict, detail=detail, grade=ex.grade.grade, cause=probe.cause,
                   counterexample={k: plain(v) for k, v in ex.inputs.items()},
                   expected=plain(ex.expected), got=plain(ex.got), why=probe.why, fix=probe.fix,
                   impact=impact)


def run_spec(spec: Spec, fn: Callable, *, name: str | None = None, adapter: Any = None,
             fixed: dict | None = None, examples: int = 300, seed: int = 0) -> Report:
    """Run every check of ``spec`` (and its property extras) against ``fn``."""
    fixed = dict(fixed or {})
    binding = Binding.make(fn, spec.args, fixed, adapter)
    binding.normalize = spec.normalize
    binding.output_boxes = spec.output_boxes
    label = name or f"{getattr(fn, '__module__', '') or ''}.{getattr(fn, '__qualname__', 'fn')}".lstrip(".")
    report = Report(label, spec.name, spec.signature, examples=examples, seed=seed)
    rng = np.random.default_rng(seed)
    for check in spec.checks:
        n = max(5, int(round(examples * check.weight)))
        report.findings.append(run_check(spec, binding, check, n, rng, fixed))
    if spec.extra is not None:
        report.findings.extend(spec.extra(binding, rng, max(5, examples // 5), fixed))
    report.binding = binding.describe()
    return report
