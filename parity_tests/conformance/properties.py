"""Property suites for code with no exact reference twin: ``properties(fn, KIND)``.

Each :class:`Property` draws inputs, calls the user's function (through a
:class:`~parity_tests.conformance.binding.Binding`) and states what must hold; the first input
that breaks it becomes the finding's counterexample (inputs stay small by construction).

Kinds: ``"iou"``, ``"nms"``, ``"box_convert"`` (here), and ``"encode_decode"``,
``"grid_assign"``, ``"grid_loss"``, ``"postprocess"`` (:mod:`parity_tests.conformance.properties_grid`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from parity_tests.conformance import strategies as S
from parity_tests.conformance.binding import Binding
from parity_tests.conformance.engine import fmt_array, plain
from parity_tests.conformance.report import Finding, Report
from ref_numpy import boxes as B

#: IoU slack of the invariants (symmetry, translation): a float32 computation stays below it.
PROP_ATOL = 1e-6


@dataclass
class Property:
    """``check(call, inputs) -> None | (expected, got)`` (None: holds)."""

    name: str
    desc: str
    gen: Callable[[np.random.Generator], dict]
    check: Callable[[Callable, dict], Any]
    why: str
    fix: str
    cause: str = ""


def run_properties(props: list[Property], binding: Binding, rng: np.random.Generator,
                   examples: int) -> list[Finding]:
    out = []
    for p in props:
        bad, n_bad, n = None, 0, 0
        for _ in range(examples):
            x = p.gen(rng)
            n += 1
            try:
                r = p.check(lambda **kw: binding(**kw), x)
            except Exception as exc:  # noqa: BLE001 - a crash breaks the property
                r = ("no error", f"{type(exc).__name__}: {exc}")
            if r is not None:
                n_bad += 1
                if bad is None:
                    bad = (x, r)
        if bad is None:
            out.append(Finding(p.name, "pass", detail=p.desc, grade="holds", impact=f"0 of {n} inputs"))
            continue
        x, (exp, got) = bad
        out.append(Finding(p.name, "bug", detail=f"{_show(x)}: expected {exp}, got {got}",
                           grade="violated", cause=p.cause or p.name,
                           counterexample={k: plain(v) for k, v in x.items()},
                           expected=plain(exp), got=plain(got), why=p.why, fix=p.fix,
                           impact=f"{n_bad} of {n} inputs"))
    return out


def _show(x: dict) -> str:
    return ", ".join(f"{k} {fmt_array(v) if isinstance(v, np.ndarray) else v}" for k, v in x.items())


# ----------------------------------------------------------------------------- nms

def _nms_gen(rng: np.random.Generator) -> dict:
    n = int(rng.integers(0, 9))
    b = S.clustered(rng, n) if n else np.zeros((0, 4))
    return {"boxes": b, "scores": S.scores(rng, n, ties=bool(rng.random() < 0.3)),
            "iou_threshold": S.thresholds(rng)}


def _kept(call, x) -> np.ndarray:
    return np.asarray(call(**x)).astype(np.int64).ravel()


def _nms_props() -> list[Property]:
    def subset(call, x):
        k = _kept(call, x)
        n = len(x["scores"])
        if len(np.unique(k)) != len(k) or np.any((k < 0) | (k >= n)):
            return (f"distinct indices in 0..{n - 1}", fmt_array(k))

    def score_order(call, x):
        k = _kept(call, x)
        s = x["scores"][k]
        if np.any(np.diff(s) > 0):
            return ("non-increasing scores", fmt_array(s))

    def separated(call, x):
        k = _kept(call, x)
        iou = B.box_iou(x["boxes"][k], x["boxes"][k]) if len(k) else np.zeros((0, 0))
        np.fill_diagonal(iou, 0)
        if np.any(iou > x["iou_threshold"]):
            return (f"kept boxes pairwise IoU <= {x['iou_threshold']}", f"max {np.nanmax(iou):.4g}")

    def covered(call, x):
        k = _kept(call, x)
        s, b, t = x["scores"], x["boxes"], x["iou_threshold"]
        for j in set(range(len(s))) - set(k.tolist()):
            higher = [i for i in k if s[i] >= s[j]]
            if not higher or not np.any(B.box_iou(b[[j]], b[higher]) > t):
                return (f"box {j} overlaps a kept higher-scored box by IoU > {t}", "no such box")

    def idempotent(call, x):
        k = _kept(call, x)
        sub = {**x, "boxes": x["boxes"][k], "scores": x["scores"][k]}
        k2 = _kept(call, sub)
        if len(k2) != len(k):
            return (f"all {len(k)} kept boxes kept again", f"{len(k2)} kept")

    def empty(call, x):
        k = _kept(call, {**x, "boxes": np.zeros((0, 4)), "scores": np.zeros(0)})
        if k.size:
            return ("[]", fmt_array(k))

    return [
        Property("subset", "distinct indices of input boxes", _nms_gen, subset,
                 "the output must be indices of input boxes, each at most once", "return keep indices"),
        Property("score order", "kept indices in descending score order", _nms_gen, score_order,
                 "kept boxes must come in descending score order", "sort keep by -scores (stable)"),
        Property("separation", "kept boxes pairwise IoU <= threshold", _nms_gen, separated,
                 "two kept boxes overlap by more than the threshold", "suppress IoU > threshold "
                 "against every kept box"),
        Property("coverage", "every dropped box overlaps a kept higher-scored box", _nms_gen, covered,
                 "a box was dropped although no kept box with a higher score overlaps it by more "
                 "than the threshold (suppressed boxes must not suppress)",
                 "compare each box only with boxes already kept"),
        Property("idempotence", "NMS of the kept boxes keeps them all", _nms_gen, idempotent,
                 "running NMS again on its own output removes boxes", "see separation/coverage"),
        Property("empty input", "N = 0 gives []", _nms_gen, empty,
                 "no boxes must give no indices", "return an empty int64 array for N = 0"),
    ]


def nms_properties_extra(binding: Binding, rng, examples: int, fixed: dict) -> list[Finding]:
    """The nms invariants appended to ``check(fn, "nms.nms")`` (only the failing ones and one
    summary line when all hold)."""
    found = run_properties(_nms_props(), binding, rng, examples)
    bad = [f for f in found if f.verdict != "pass"]
    if bad:
        return bad
    return [Finding("invariants", "pass", detail="subset, score order, separation, coverage, "
                    "idempotence, empty input", grade="holds")]


# ----------------------------------------------------------------------------- iou

def _pair_gen(rng):
    scale = float(rng.choice([1.0, 640.0]))
    return {"boxes1": S.boxes(rng, int(rng.integers(1, 4)), scale),
            "boxes2": S.boxes(rng, int(rng.integers(1, 4)), scale)}


def _iou_props(bounded: bool) -> list[Property]:
    def sym(call, x):
        a = np.asarray(call(**x), np.float64)
        b = np.asarray(call(boxes1=x["boxes2"], boxes2=x["boxes1"]), np.float64).T
        if a.shape != b.shape or np.nanmax(np.abs(a - b), initial=0) > PROP_ATOL:
            return ("iou(a, b) == iou(b, a).T", f"differs by {np.nanmax(np.abs(a - b), initial=0):.3g}")

    def bounds(call, x):
        a = np.asarray(call(**x), np.float64)
        lo = 0.0 if bounded else -1.0
        if np.any(a < lo - PROP_ATOL) or np.any(a > 1 + PROP_ATOL):
            return (f"values in [{lo:g}, 1]", fmt_array(a))

    def self_one(call, x):
        a = np.asarray(call(boxes1=x["boxes1"], boxes2=x["boxes1"]), np.float64)
        d = np.diagonal(a)
        if np.any(np.abs(d - 1) > PROP_ATOL):
            return ("iou(a, a) == 1 on the diagonal", fmt_array(d))

    def translate(call, x):
        a = np.asarray(call(**x), np.float64)
        t = np.array([1.0, 2.0, 1.0, 2.0]) * 0.25 * float(np.max(x["boxes1"]))
        b = np.asarray(call(boxes1=x["boxes1"] + t, boxes2=x["boxes2"] + t), np.float64)
        if np.nanmax(np.abs(a - b), initial=0) > PROP_ATOL:
            return ("unchanged under translation", f"changes by {np.nanmax(np.abs(a - b)):.3g}")

    def scale(call, x):
        a = np.asarray(call(**x), np.float64)
        b = np.asarray(call(boxes1=x["boxes1"] * 2.0 ** -10, boxes2=x["boxes2"] * 2.0 ** -10), np.float64)
        if np.nanmax(np.abs(a - b), initial=0) > PROP_ATOL:
            return ("unchanged when every coordinate is scaled by 2^-10",
                    f"changes by {np.nanmax(np.abs(a - b)):.3g}")

    def disjoint(call, x):
        a, b = S.diagonal_pair(np.random.default_rng(int(x["boxes1"][0, 0] * 1000) % 2 ** 31))
        v = float(np.asarray(call(boxes1=a, boxes2=b), np.float64).ravel()[0])
        if bounded and v != 0:
            return ("0 for boxes apart along both axes", f"{v:.4g}")

    props = [
        Property("symmetry", "iou(a, b) == iou(b, a).T", _pair_gen, sym,
                 "the IoU must not depend on argument order", "use the same formula for both"),
        Property("range", "values in [0, 1] ([-1, 1] for GIoU/DIoU/CIoU)", _pair_gen, bounds,
                 "IoU values fall outside their range", "clamp the intersection sides at 0"),
        Property("self", "iou(a, a) == 1", _pair_gen, self_one,
                 "a box against itself must give 1", "union = area1 + area2 - inter"),
        Property("translation", "invariant under translation", _pair_gen, translate,
                 "shifting both boxes changes the IoU", "use only differences of coordinates"),
        Property("scale", "invariant under scaling by 2^-10 (exposes an eps)", _pair_gen, scale,
                 "scaling both boxes changes the IoU: an eps or clamp that does not scale",
                 "divide by the union itself", cause="eps or clamp in the union"),
    ]
    if bounded:
        props.append(Property("disjoint", "0 for disjoint boxes", _pair_gen, disjoint,
                              "two disjoint boxes get a non-zero IoU", "clamp each overlap side at 0",
                              cause="intersection not clamped"))
    return props


# ----------------------------------------------------------------------------- box_convert

def _convert_props(in_fmt: str, out_fmt: str) -> list[Property]:
    def gen(rng):
        return {"boxes": S.convert_from_xyxy(S.boxes(rng, int(rng.integers(1, 5))), in_fmt)}

    def same_box(call, x):
        got = np.asarray(call(**x), np.float64)
        want = B.box_convert(x["boxes"], in_fmt, out_fmt)
        if got.shape != want.shape or np.max(np.abs(got - want), initial=0) > 1e-9 * 640:
            a = B.box_convert(got, out_fmt, "xyxy") if got.shape == want.shape else got
            return (f"the same boxes in {out_fmt} {fmt_array(want)}",
                    f"{fmt_array(got)} (as xyxy {fmt_array(a)})")

    def area(call, x):
        got = B.box_convert(np.asarray(call(**x), np.float64), out_fmt, "xyxy")
        a0 = B.box_area(B.box_convert(x["boxes"], in_fmt, "xyxy"))
        if np.max(np.abs(B.box_area(got) - a0) / a0, initial=0) > 1e-9:
            return ("area preserved", f"areas {fmt_array(B.box_area(got))} vs {fmt_array(a0)}")

    return [
        Property("area", "area preserved", gen, area, "the converted boxes have another area",
                 "widths are x2 - x1, heights y2 - y1", cause="area"),
        Property("same boxes", f"{in_fmt} -> {out_fmt} describes the same boxes", gen, same_box,
                 "the output describes other boxes than the input", "check each formula",
                 cause="format"),
    ]


# ----------------------------------------------------------------------------- entry point

KINDS = ("iou", "nms", "box_convert", "encode_decode", "grid_assign", "grid_loss", "postprocess")


def properties(fn: Any, kind: str, adapter: Any = None, fixed: dict | None = None,
               examples: int = 100, seed: int = 0, name: str | None = None) -> Report:
    """Run the property suite of ``kind`` on ``fn`` (see the module docstring); a :class:`Report`.

    ``"iou"`` expects ``fn(boxes1, boxes2) -> [N, M]`` (``fixed={"bounded": False}`` for
    GIoU-like values in [-1, 1]); ``"nms"`` ``fn(boxes, scores, iou_threshold) -> indices``;
    ``"box_convert"`` ``fn(boxes) -> boxes`` with ``fixed={"in_fmt": .., "out_fmt": ..}``;
    ``"encode_decode"`` a pair ``(encode, decode)``; the grid kinds: see
    :mod:`parity_tests.conformance.properties_grid`."""
    fixed = dict(fixed or {})
    rng = np.random.default_rng(seed)
    label = name or getattr(fn, "__qualname__", kind)
    if kind in ("encode_decode", "grid_assign", "grid_loss", "postprocess"):
        from parity_tests.conformance import properties_grid
        return properties_grid.run(fn, kind, adapter, fixed, examples, seed, label)
    if kind == "iou":
        bounded = bool(fixed.pop("bounded", True))
        binding = Binding.make(fn, ["boxes1", "boxes2"], None, adapter)
        props, sig = _iou_props(bounded), "(boxes1 xyxy [N,4], boxes2 xyxy [M,4]) -> [N,M]"
    elif kind == "nms":
        binding = Binding.make(fn, ["boxes", "scores", "iou_threshold"], None, adapter)
        props, sig = _nms_props(), "(boxes xyxy [N,4], scores [N], iou_threshold) -> kept indices"
    elif kind == "box_convert":
        try:
            fi, fo = fixed.pop("in_fmt"), fixed.pop("out_fmt")
        except KeyError:
            raise ValueError("fixed: kind 'box_convert' needs {'in_fmt': ..., 'out_fmt': ...}") from None
        binding = Binding.make(fn, ["boxes"], None, adapter)
        props, sig = _convert_props(fi, fo), f"(boxes [N,4] {fi}) -> boxes [N,4] {fo}"
    else:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    report = Report(label, f"properties:{kind}", sig, examples=examples, seed=seed)
    report.findings = run_properties(props, binding, rng, examples)
    report.binding = binding.describe()
    return report
