"""Property suites for grid code: ``encode_decode``, ``grid_assign``, ``grid_loss``, ``postprocess``.

Contracts (what a user's function must look like; an adapter maps other layouts onto these):

- ``grid_assign``: ``fn(targets, S, nc, bs) -> ndarray[bs, S, S, 5 + nc]``; ``targets`` rows
  ``(image, class, cx, cy, w, h)`` normalised; channels ``(x offset in cell, y offset, w, h, obj,
  one-hot classes)``. A GT lands in cell ``(min(floor(cy S), S-1), min(floor(cx S), S-1))``; a
  centre exactly on the right/bottom edge (1.0) belongs to the last cell; a centre outside
  [0, 1] is dropped. Two GTs in one cell: the cell holds one of them *entirely* (reported as a
  convention: one GT is lost).
- ``grid_loss``: ``fn(pred, target) -> scalar``, both ``[bs, S, S, 5 + nc]``, ``pred`` channels
  ``(box as in target, obj logit, class logits)``. Finite with no objects; ~0 at a perfect
  prediction (box equal, logits +-30); unchanged by an extra empty image predicted perfectly
  (normalised per object, not per cell); the objectness gradient lowers the loss by raising the
  logit at positives and by lowering it at negatives.
- ``postprocess``: ``fn(prediction, conf_thres, iou_thres, max_det) -> list of [n, 6]``, the
  YOLOv5 layout of :func:`ref_numpy.nms.non_max_suppression` (cx, cy, w, h, obj, class scores).
- ``encode_decode``: ``(encode, decode)`` with the ``coder.yolov*_encode/decode`` signatures:
  round trip on the common domain and zero logits decoding to the anchor box in its cell.
"""
from __future__ import annotations

import numpy as np

from parity_tests.conformance.binding import Binding
from parity_tests.conformance.properties import Property, run_properties
from parity_tests.conformance.report import Finding, Report

#: Loss slack of the grid-loss properties (a perfect prediction with logits +-30 leaves e^-30).
LOSS_ATOL = 1e-6
ROUNDTRIP_RTOL = 1e-7


# ----------------------------------------------------------------------------- grid_assign

def expected_grid(targets: np.ndarray, S: int, nc: int, bs: int) -> np.ndarray:
    """The contract's dense target for GTs in distinct cells (the properties' oracle)."""
    out = np.zeros((bs, S, S, 5 + nc))
    for b, c, cx, cy, w, h in targets:
        if not (0 <= cx <= 1 and 0 <= cy <= 1):
            continue
        i, j = min(int(np.floor(cx * S)), S - 1), min(int(np.floor(cy * S)), S - 1)
        out[int(b), j, i, :5] = [cx * S - i, cy * S - j, w, h, 1]
        out[int(b), j, i, 5 + int(c)] = 1
    return out


def _gt(rng, b, cx=None, cy=None, nc=3):
    cx = rng.uniform(0.02, 0.98) if cx is None else cx
    cy = rng.uniform(0.02, 0.98) if cy is None else cy
    return [b, int(rng.integers(0, nc)), cx, cy, rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)]


def _assign_props(S: int = 7, nc: int = 3) -> list[Property]:
    def one_per_image(rng):
        return {"targets": np.array([_gt(rng, b) for b in range(2)]), "S": S, "nc": nc, "bs": 2}

    def edge(rng):
        t = np.array([_gt(rng, 0, cx=1.0), _gt(rng, 1, cy=1.0), _gt(rng, 2, cx=0.0, cy=1.0)])
        return {"targets": t, "S": S, "nc": nc, "bs": 3}

    def outside(rng):
        d = rng.uniform(0.1, 0.9) / S
        t = np.array([_gt(rng, 0, cx=-d), _gt(rng, 1, cy=-d)])
        return {"targets": t, "S": S, "nc": nc, "bs": 2}

    def collide(rng):
        g1 = _gt(rng, 0)
        g2 = list(g1)
        g2[1] = (g1[1] + 1) % nc
        g2[4], g2[5] = g1[4] * 0.5, g1[5] * 1.5
        return {"targets": np.array([g1, g2]), "S": S, "nc": nc, "bs": 1}

    def matches(call, x):
        got = np.asarray(call(**x), np.float64)
        want = expected_grid(x["targets"], S, nc, x["bs"])
        if got.shape != want.shape:
            return (f"shape {list(want.shape)}", f"shape {list(got.shape)}")
        bad = np.argwhere(np.abs(got - want) > 1e-9)
        if len(bad):
            return (f"GT in its centre's cell: obj at {np.argwhere(want[..., 4] == 1).tolist()}",
                    f"obj at {np.argwhere(got[..., 4] == 1).tolist()}")

    def dropped(call, x):
        got = np.asarray(call(**x), np.float64)
        cells = np.argwhere(got[..., 4] != 0)
        if len(cells):
            where = cells.tolist()
            return ("GTs outside the image dropped (no positive cell)", f"positives at {where}")

    def one_hot(call, x):
        got = np.asarray(call(**x), np.float64)
        cls = got[..., 5:][got[..., 4] > 0]
        if len(cls) == 0 or np.any(cls.sum(-1) != 1) or np.any(cls.max(-1) != 1):
            return ("one-hot class rows", f"{cls.tolist()}")

    def whole_gt(call, x):
        got = np.asarray(call(**x), np.float64)
        cand = [expected_grid(x["targets"][[k]], S, nc, 1) for k in range(2)]
        if not any(np.allclose(got, c, atol=1e-9) for c in cand):
            j, i = np.argwhere(cand[0][0, ..., 4] == 1)[0]
            return ("the cell holds one GT entirely", f"{got[0, j, i].tolist()}")

    return [
        Property("centre cell", "every GT lands in the cell holding its centre", one_per_image, matches,
                 "a GT is written to another cell than the one holding its centre (or with wrong "
                 "offsets)", "i = floor(cx * S); offset = cx * S - i", cause="cell"),
        Property("image edge", "centres at exactly 0 and 1 land in the first/last cell", edge, matches,
                 "a centre on the right/bottom edge (cx = 1.0) gives cell index S, one past the "
                 "grid: IndexError, or a write to the wrong cell",
                 "i = min(floor(cx * S), S - 1)", cause="index out of range at the edge"),
        Property("outside", "centres left of / above the image are dropped", outside, dropped,
                 "a GT whose centre lies outside the image is assigned: int() truncates toward "
                 "zero (int(-0.4) = 0), or floor gives -1 and a negative index wraps to the last cell",
                 "i = floor(cx * S) and skip GTs with i < 0 or i >= S (math.floor, not int())",
                 cause="int() instead of floor / negative index"),
        Property("one-hot", "class targets stay one-hot when two GTs share a cell", collide, one_hot,
                 "two GTs in one cell give a two-hot class row (classes added)",
                 "write the class row with '=' (one-hot of one GT), not '+='", cause="one-hot"),
        Property("collision", "a shared cell holds one GT entirely", collide, whole_gt,
                 "two GTs in one cell leave a mixture (one GT's box with the other's class)",
                 "write the whole target of one GT (and report the collision)", cause="collision mixes GTs"),
    ]


def _collision_note(binding: Binding, rng, S=7, nc=3) -> Finding:
    g1 = _gt(rng, 0)
    g2 = list(g1)
    g2[1] = (g1[1] + 1) % nc
    t = np.array([g1, g2])
    try:
        got = np.asarray(binding(targets=t, S=S, nc=nc, bs=1), np.float64)
    except Exception:  # noqa: BLE001 - the properties report the crash
        return Finding("collisions", "pass", detail="not measured (the function raised)")
    kept = int(got[..., 4].sum())
    return Finding("collisions", "convention", detail=f"2 GTs in one cell: {kept} positive cell(s)",
                   cause="collision", why="one grid cell holds one GT: the other is lost for "
                   "training (YOLOv1's one-object-per-cell design)",
                   fix="use anchors/more cells, or count the lost GTs", impact="1 of 2 GTs lost")


# ----------------------------------------------------------------------------- grid_loss

def _loss_problem(rng, bs=2, S=4, nc=3, n_obj=2):
    t = np.zeros((bs, S, S, 5 + nc))
    for _ in range(n_obj):
        b, j, i = int(rng.integers(0, bs)), int(rng.integers(0, S)), int(rng.integers(0, S))
        t[b, j, i, :4] = rng.uniform(0.1, 0.9, 4)
        t[b, j, i, 4] = 1
        t[b, j, i, 5:] = 0
        t[b, j, i, 5 + int(rng.integers(0, nc))] = 1
    p = rng.normal(0, 1, size=t.shape)
    return p, t


def _perfect(t):
    p = np.where(t > 0.5, 30.0, -30.0)
    p[..., :4] = t[..., :4]
    return p


def _loss_props() -> list[Property]:
    def no_obj(call, x):
        v = float(np.asarray(call(pred=x["pred"], target=np.zeros_like(x["target"]))))
        if not np.isfinite(v):
            return ("a finite loss", f"{v}")

    def perfect(call, x):
        v = float(np.asarray(call(pred=_perfect(x["target"]), target=x["target"])))
        if not (np.isfinite(v) and abs(v) <= LOSS_ATOL):
            return ("~0 at a perfect prediction", f"{v:.4g}")

    def extra_empty(call, x):
        p, t = x["pred"], x["target"]
        v = float(np.asarray(call(pred=p, target=t)))
        t2 = np.concatenate([t, np.zeros_like(t[:1])])
        p2 = np.concatenate([p, _perfect(np.zeros_like(t[:1]))])
        v2 = float(np.asarray(call(pred=p2, target=t2)))
        if not abs(v2 - v) <= LOSS_ATOL * max(1.0, abs(v)):
            return (f"unchanged ({v:.6g})", f"{v2:.6g} with an extra empty image")

    def gradient(call, x):
        p, t = x["pred"], x["target"]
        pos = tuple(np.argwhere(t[..., 4] == 1)[0])
        neg = tuple(np.argwhere(t[..., 4] == 0)[0])
        for cell, sign in ((pos, -1), (neg, 1)):
            a, b = p.copy(), p.copy()
            a[cell + (4,)] -= 1e-3
            b[cell + (4,)] += 1e-3
            d = float(np.asarray(call(pred=b, target=t))) - float(np.asarray(call(pred=a, target=t)))
            if not np.sign(d) == sign:
                what = "positive" if sign < 0 else "negative"
                return (f"raising the obj logit {'lowers' if sign < 0 else 'raises'} the loss at a {what}",
                        f"change {d:.3g}")

    def gen(rng):
        p, t = _loss_problem(rng)
        return {"pred": p, "target": t}

    return [
        Property("no objects", "finite with no objects", gen, no_obj,
                 "with no object the loss divides by the number of objects (0): NaN, or a mean "
                 "over an empty selection", "divide by max(n_obj, 1)", cause="NaN with no objects"),
        Property("perfect prediction", "zero at a perfect prediction", gen, perfect,
                 "a perfect prediction does not give ~0: BCE applied to logits as if they were "
                 "probabilities (or probabilities passed to a with-logits loss)",
                 "use BCE-with-logits on raw outputs, or apply the sigmoid exactly once before BCE",
                 cause="BCE on logits vs probabilities"),
        Property("empty image", "unchanged by an extra, perfectly predicted empty image", gen, extra_empty,
                 "the loss is a mean over all cells of the batch, so adding empty images dilutes "
                 "the object terms (per-object normalisation does not change)",
                 "sum the terms and divide by the number of objects (max 1)",
                 cause="mean over all cells vs per object"),
        Property("gradient", "the obj gradient pushes up at positives and down at negatives", gen, gradient,
                 "the objectness gradient points the wrong way (targets inverted or sign error)",
                 "BCE(obj_logit, target) with target 1 at positives", cause="gradient"),
    ]


# ----------------------------------------------------------------------------- postprocess

def _pred(rng, B=3, A=6, nc=2, conf=0.9):
    p = np.zeros((B, A, 5 + nc))
    for b in range(B):
        for a in range(A):
            p[b, a, :4] = [60 + 100 * a, 60 + 30 * b, 40, 40]  # separated boxes
            p[b, a, 4] = conf
            p[b, a, 5 + a % nc] = 1.0
    return p


def _post_props() -> list[Property]:
    def gen(rng):
        return {"prediction": _pred(rng), "conf_thres": 0.25, "iou_thres": 0.45, "max_det": 300}

    def every_image(call, x):
        out = call(**x)
        if len(out) != len(x["prediction"]):
            return (f"{len(x['prediction'])} images", f"{len(out)}")
        for b in range(len(out)):
            if len(np.asarray(out[b])) != x["prediction"].shape[1]:
                return (f"{x['prediction'].shape[1]} detections in image {b}", f"{len(np.asarray(out[b]))}")

    def at_thr(call, x):
        p = x["prediction"].copy()
        p[:, :, 4] = 1.0
        p[:, 0, 5:] = 0
        p[:, 0, 5] = x["conf_thres"]  # conf exactly at the threshold: dropped (strict >)
        out = call(**{**x, "prediction": p})
        n = [len(np.asarray(o)) for o in out]
        want = p.shape[1] - 1
        if any(k != want for k in n):
            return (f"{want} per image (conf == conf_thres dropped)", f"{n}")

    def max_det(call, x):
        out = call(**{**x, "max_det": 2})
        n = [len(np.asarray(o)) for o in out]
        if any(k > 2 for k in n):
            return ("<= 2 detections per image", f"{n}")

    def order(call, x):
        p = x["prediction"].copy()
        p[:, :, 4] = np.linspace(0.3, 0.9, p.shape[1])
        for o in call(**{**x, "prediction": p}):
            c = np.asarray(o)[:, 4] if len(o) else np.zeros(0)
            if np.any(np.diff(c) > 0):
                return ("descending confidence", f"{c.tolist()}")

    return [
        Property("every image", "every image of the batch processed", gen, every_image,
                 "only part of the batch is post-processed (e.g. a return inside the loop, or "
                 "prediction[0] only)", "loop over every image and collect one output per image",
                 cause="only the first image"),
        Property("threshold", "a score equal to conf_thres is dropped (strict >)", gen, at_thr,
                 "scores equal to the threshold are kept: >= instead of >",
                 "keep conf > conf_thres", cause=">= for the confidence threshold"),
        Property("max_det", "at most max_det detections per image", gen, max_det,
                 "max_det is not honoured", "keep = keep[:max_det]", cause="max_det"),
        Property("score order", "detections in descending confidence", gen, order,
                 "detections are not in descending confidence", "sort by confidence",
                 cause="output order"),
    ]


# ----------------------------------------------------------------------------- encode_decode

def _ed_props(encode: Binding, decode: Binding) -> list[Property]:
    def gen(rng):
        n = int(rng.integers(1, 5))
        s = float(rng.choice([8.0, 16.0, 32.0]))
        g = rng.integers(0, 40, (n, 2)).astype(float)
        a = rng.uniform(10, 200, (n, 2))
        c = (g + rng.uniform(0.05, 0.95, (n, 2))) * s
        wh = a * rng.uniform(0.3, 3.0, (n, 2))
        return {"boxes": np.concatenate([c - wh / 2, c + wh / 2], 1), "grid": g, "anchors": a, "stride": s}

    def roundtrip(call, x):
        raw = np.asarray(encode(**x), np.float64)
        back = np.asarray(decode(raw=raw, grid=x["grid"], anchors=x["anchors"], stride=x["stride"]), np.float64)
        err = np.max(np.abs(back - x["boxes"]) / (np.abs(x["boxes"]) + x["stride"]))
        if not err <= ROUNDTRIP_RTOL:
            return ("decode(encode(b)) == b", f"relative error {err:.3g}")

    def zero(call, x):
        raw = np.zeros((len(x["grid"]), 4))
        got = np.asarray(decode(raw=raw, grid=x["grid"], anchors=x["anchors"], stride=x["stride"]), np.float64)
        c = (x["grid"] + 0.5) * x["stride"]
        want = np.concatenate([c - x["anchors"] / 2, c + x["anchors"] / 2], 1)
        if np.max(np.abs(got - want)) > 1e-9 * np.max(np.abs(want)):
            return ("the anchor box centred in its cell", f"{np.round(got, 3).tolist()}")

    return [
        Property("round trip", "decode(encode(b)) == b", gen, roundtrip,
                 "encode is not the inverse of decode", "solve decode's formula for t",
                 cause="encode is not the inverse of decode"),
        Property("zero logits", "raw = 0 decodes to the anchor box centred in its cell", gen, zero,
                 "zero logits do not decode to the anchor centred in its cell (a grid offset, a "
                 "missing sigmoid, or a swapped grid)", "cx = (sigmoid(tx) + grid_x) * stride",
                 cause="zero logits"),
    ]


# ----------------------------------------------------------------------------- entry point

def run(fn, kind: str, adapter, fixed: dict, examples: int, seed: int, label: str) -> Report:
    rng = np.random.default_rng(seed)
    if kind == "encode_decode":
        encode, decode = fn
        enc = Binding.make(encode, ["boxes", "grid", "anchors", "stride"], None, adapter)
        dec = Binding.make(decode, ["raw", "grid", "anchors", "stride"], None, adapter)
        report = Report(label, "properties:encode_decode", "(encode, decode) pair", examples=examples, seed=seed)
        report.findings = run_properties(_ed_props(enc, dec), enc, rng, examples)
        report.binding = f"{enc.describe()} / {dec.describe()}"
        return report
    args, props, sig = {
        "grid_assign": (["targets", "S", "nc", "bs"], _assign_props(),
                        "(targets [nt,6] normalised, S, nc, bs) -> [bs,S,S,5+nc]"),
        "grid_loss": (["pred", "target"], _loss_props(), "(pred, target [bs,S,S,5+nc]) -> scalar"),
        "postprocess": (["prediction", "conf_thres", "iou_thres", "max_det"], _post_props(),
                        "(prediction [B,A,5+nc], conf_thres, iou_thres, max_det) -> list of [n,6]"),
    }[kind]
    binding = Binding.make(fn, args, None, adapter)
    report = Report(label, f"properties:{kind}", sig, examples=examples, seed=seed)
    report.findings = run_properties(props, binding, rng, examples)
    if kind == "grid_assign" and report.ok:
        report.findings.append(_collision_note(binding, rng))
    report.binding = binding.describe()
    return report
