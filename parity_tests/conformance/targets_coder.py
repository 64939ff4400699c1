"""Specs for ``coder.yolov3_decode`` / ``coder.yolov5_decode`` (and their encoders), and the
round trip of a user's encode/decode pair."""
from __future__ import annotations

import numpy as np

from parity_tests.conformance.binding import Binding
from parity_tests.conformance.engine import Check, Grade, Probe, Spec, compare_values, fmt_array, plain, run_spec
from parity_tests.conformance.report import Finding, Report
from ref_numpy import boxes as B
from ref_numpy import coder as C

DECODERS = ("yolov3_decode", "yolov5_decode", "yolov3_encode", "yolov5_encode")
#: Coordinates closer than this (relative to the stride-scaled magnitude) are "the same box".
COORD_RTOL = 1e-9
#: Round trip slack: encode then decode is two transcendental functions deep (log/exp, logit/sigmoid).
ROUNDTRIP_RTOL = 1e-7
PERM_XY = [1, 0, 3, 2]


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _cell_inputs(rng, n, lo=-4.0, hi=4.0, max_cell=80):
    stride = float(rng.choice([8.0, 16.0, 32.0]))
    return {"raw": rng.uniform(lo, hi, size=(n, 4)),
            "grid": rng.integers(0, max_cell, size=(n, 2)).astype(np.float64),
            "anchors": rng.uniform(10, 200, size=(n, 2)), "stride": stride}


def _decode_checks() -> list[Check]:
    def zero(rng, f):
        x = _cell_inputs(rng, int(rng.integers(1, 5)))
        x["raw"][:] = 0
        return x

    def edge(rng, f):
        x = _cell_inputs(rng, int(rng.integers(1, 5)))
        x["grid"][:] = float(640 // x["stride"] - 1)
        return x
    return [
        Check("random", "logits in [-4, 4], cells 0..79, anchors 10..200 px, strides 8/16/32",
              lambda r, f: _cell_inputs(r, int(r.integers(1, 6)))),
        Check("zero logits", "raw = 0 (box = anchor centred in its cell)", zero, weight=0.3),
        Check("saturated", "logits in [-20, 20]",
              lambda r, f: _cell_inputs(r, int(r.integers(1, 5)), -20, 20), weight=0.3),
        Check("edge cells", "the last cell of a 640 px image", edge, weight=0.2),
    ]


def _decode_probes(version: str, ref) -> list[Probe]:
    other = C.yolov5_decode if version == "v3" else C.yolov3_decode

    def xy_alt(fn):
        def alt(x):
            r, g, a, s = x["raw"], x["grid"], x["anchors"], x["stride"]
            sx, sy = fn(r[:, 0]), fn(r[:, 1])
            wh = ref(r, g, a, s)
            w, h = wh[:, 2] - wh[:, 0], wh[:, 3] - wh[:, 1]
            if version == "v3":
                cx, cy = (sx + g[:, 0]) * s, (sy + g[:, 1]) * s
            else:
                cx, cy = (2 * sx - 0.5 + g[:, 0]) * s, (2 * sy - 0.5 + g[:, 1]) * s
            return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        return alt

    def fmt(out_fmt):
        return lambda x: B.box_convert(ref(x["raw"], x["grid"], x["anchors"], x["stride"]), "xyxy", out_fmt)

    name_other = "yolov5" if version == "v3" else "yolov3"
    return [
        Probe("sigmoid not applied", "alt", xy_alt(lambda t: t),
              "the centre offsets use the raw head outputs: the sigmoid is missing",
              "cx = (sigmoid(tx) + grid_x) * stride" if version == "v3"
              else "cx = (2 * sigmoid(tx) - 0.5 + grid_x) * stride"),
        Probe("sigmoid applied twice", "alt", xy_alt(lambda t: _sig(_sig(t))),
              "the sigmoid is applied twice to the centre offsets (once in the model's forward, "
              "once in the decoder)", "apply it exactly once, in one place"),
        Probe("output cxcywh, not xyxy", "alt", fmt("cxcywh"),
              "the boxes come out as (cx, cy, w, h); the contract returns xyxy corners",
              "finish with box_convert(out, 'cxcywh', 'xyxy')"),
        Probe("output xywh, not xyxy", "alt", fmt("xywh"),
              "the boxes come out as (x1, y1, w, h); the contract returns xyxy corners",
              "finish with box_convert(out, 'xywh', 'xyxy')"),
        Probe("grid x and y swapped", "alt", lambda x: ref(x["raw"], x["grid"][:, ::-1], x["anchors"], x["stride"]),
              "the cell indices are used as (row, column) = (y, x): the classic meshgrid "
              "indexing='ij' vs 'xy' mix-up", "build the grid with torch.meshgrid(..., indexing='ij') "
              "and stack (xv, yv), i.e. grid[..., 0] is the column"),
        Probe("x and y swapped", "alt", lambda x: ref(x["raw"], x["grid"], x["anchors"], x["stride"])[:, PERM_XY],
              "the output has x and y swapped", "stack x1, y1, x2, y2"),
        Probe("grid units, not pixels", "alt",
              lambda x: ref(x["raw"], x["grid"], x["anchors"], x["stride"]) / x["stride"],
              "the boxes are in grid cells: the stride multiplication is missing", "multiply by stride"),
        Probe("anchors scaled by the stride twice", "alt",
              lambda x: ref(x["raw"], x["grid"], x["anchors"] * x["stride"], x["stride"]),
              "pixel anchors are multiplied by the stride again (anchors in grid units vs pixels)",
              "use anchors in pixels as given, or divide them by the stride once"),
        Probe(f"{name_other} formula", "alt", lambda x: other(x["raw"], x["grid"], x["anchors"], x["stride"]),
              f"your decoder implements the {name_other} parameterisation, not the claimed one",
              f"claim coder.{name_other}_decode, or use the formula in the docstring"),
    ]


def decode_spec(func: str) -> Spec:
    if func.endswith("encode"):
        return encode_spec(func)
    ref = getattr(C, func)
    version = func[4:6]

    def compare(e, g, x):
        scale = max(1.0, float(np.max(np.abs(e[np.isfinite(e)]), initial=1.0)))
        gr = compare_values(e, g, scale)
        if not gr.ok and gr.grade == "different" and not gr.note and gr.diff <= COORD_RTOL * scale:
            return Grade(True, f"same boxes, coordinates differ by <= {gr.diff:.1g}", gr.ulps, gr.diff)
        return gr
    return Spec(f"coder.{func}", ref, ["raw", "grid", "anchors", "stride"],
                "(raw [N,4] pre-sigmoid, grid [N,2] cells, anchors [N,2] px, stride) -> xyxy px [N,4]",
                _decode_checks(), _decode_probes(version, ref), compare,
                lambda x: (f"raw {fmt_array(x['raw'])}, grid {fmt_array(x['grid'])}, anchors "
                           f"{fmt_array(x['anchors'])}, stride {x['stride']:g}"),
                lambda y: fmt_array(y, 6), rows=[("raw", "grid", "anchors")], units="px",
                output_boxes="xyxy")


# ----------------------------------------------------------------------------- encoders

def _box_inputs(rng, n, version):
    """Boxes inside the round-trip domain of ``version`` with the cell that predicts them."""
    stride = float(rng.choice([8.0, 16.0, 32.0]))
    grid = rng.integers(0, 40, size=(n, 2)).astype(np.float64)
    anchors = rng.uniform(10, 200, size=(n, 2))
    off = rng.uniform(0.05, 0.95, size=(n, 2)) if version == "v3" else rng.uniform(-0.4, 1.4, size=(n, 2))
    ratio = rng.uniform(0.2, 3.0, size=(n, 2)) if version == "v3" else rng.uniform(0.1, 3.8, size=(n, 2))
    c, wh = (grid + off) * stride, ratio * anchors
    return {"boxes": np.concatenate([c - wh / 2, c + wh / 2], 1), "grid": grid, "anchors": anchors,
            "stride": stride}


def encode_spec(func: str) -> Spec:
    version = func[4:6]
    raw_ref = getattr(C, func)
    ref = (lambda boxes, grid, anchors, stride: raw_ref(boxes, grid, anchors, stride, logits=True)) \
        if version == "v3" else raw_ref

    def compare(e, g, x):
        gr = compare_values(e, g, 1.0)
        if not gr.ok and gr.grade == "different" and not gr.note and gr.diff <= ROUNDTRIP_RTOL:
            return Grade(True, f"same targets, values differ by <= {gr.diff:.1g}", gr.ulps, gr.diff)
        return gr

    probes = [
        Probe("darknet post-sigmoid targets", "alt",
              lambda x: C.yolov3_encode(x["boxes"], x["grid"], x["anchors"], x["stride"], logits=False),
              "your x/y targets are the offsets in the cell (matched against sigmoid(tx), darknet's "
              "delta_yolo_box), not the logits that decode back", "fine for a loss on sigmoid(tx); "
              "for a round trip take their logit", verdict="convention"),
        Probe("encode is not the inverse of decode", "alt",
              lambda x: np.concatenate([ref(x["boxes"], x["grid"], x["anchors"], x["stride"])[:, :2],
                                        np.log(B.box_convert(x["boxes"], "xyxy", "cxcywh")[:, 2:] / x["anchors"])], 1),
              "the size targets are log(w / anchor) (YOLOv3's) while YOLOv5 decodes sizes as "
              "(2 sigmoid(t))^2 * anchor: decode(encode(b)) != b",
              "t_w = logit(sqrt(w / anchor_w) / 2)"),
    ]
    return Spec(f"coder.{func}", ref, ["boxes", "grid", "anchors", "stride"],
                "(boxes xyxy px [N,4], grid [N,2], anchors [N,2] px, stride) -> raw targets [N,4]",
                [Check("random", "boxes in the round-trip domain of their cell",
                       lambda r, f: _box_inputs(r, int(r.integers(1, 6)), version))],
                probes, compare, lambda x: f"boxes {fmt_array(x['boxes'])}, grid {fmt_array(x['grid'])}, "
                f"anchors {fmt_array(x['anchors'])}, stride {x['stride']:g}",
                lambda y: fmt_array(y, 6), rows=[("boxes", "grid", "anchors")])


# ----------------------------------------------------------------------------- round trip

def check_roundtrip(encode, decode, coder: str, adapter=None, examples: int = 300, seed: int = 0,
                    name: str | None = None) -> Report:
    """Decode and encode each against the reference, then ``decode(encode(b)) == b``."""
    if coder not in ("coder.yolov3", "coder.yolov5"):
        raise ValueError(f"coder: expected 'coder.yolov3' or 'coder.yolov5', got {coder!r}")
    v = coder[-6:]  # "yolov3"
    ver = coder[-2:]  # "v3": the domain of the round trip
    label = name or f"{getattr(encode, '__name__', 'encode')}/{getattr(decode, '__name__', 'decode')}"
    rep = Report(label, f"{coder}_encode/_decode", "decode(encode(boxes)) == boxes", examples=examples, seed=seed)
    for fn, part in ((decode, "decode"), (encode, "encode")):
        sub = run_spec(decode_spec(f"{v}_{part}"), fn, adapter=adapter, examples=max(5, examples // 3), seed=seed)
        for f in sub.findings:
            f.check = f"{part}: {f.check}"
            rep.findings.append(f)
    enc = Binding.make(encode, ["boxes", "grid", "anchors", "stride"], None, adapter)
    dec = Binding.make(decode, ["raw", "grid", "anchors", "stride"], None, adapter)
    rng = np.random.default_rng(seed)
    bad, n_bad, worst = None, 0, 0.0
    for _ in range(examples):
        x = _box_inputs(rng, int(rng.integers(1, 5)), ver)
        try:
            raw = np.asarray(enc(**x), np.float64)
            back = np.asarray(dec(raw=raw, grid=x["grid"], anchors=x["anchors"], stride=x["stride"]), np.float64)
            err = np.abs(back - x["boxes"]) / (np.abs(x["boxes"]) + x["stride"])
            err = np.where(np.isnan(err), np.inf, err)
        except Exception as exc:  # noqa: BLE001 - a crash breaks the round trip
            back, err = exc, np.array([np.inf])
        if np.max(err) > ROUNDTRIP_RTOL:
            n_bad += 1
            worst = max(worst, float(np.max(err)))
            if bad is None:
                bad = (x, back, err)
    if bad is None:
        rep.findings.append(Finding("round trip", "pass", detail="decode(encode(b)) == b on the "
                                    "contract's domain", grade="holds", impact=f"0 of {examples} inputs"))
    else:
        x, back, err = bad
        cols = np.flatnonzero(np.max(np.atleast_2d(err), axis=0) > ROUNDTRIP_RTOL) if err.ndim == 2 else []
        part = "centres" if set(cols) <= {0, 1} and len(cols) == 0 else (
            "sizes" if all(c in (2, 3) for c in cols) else "centres" if all(c in (0, 1) for c in cols) else "boxes")
        xy_ok = err.ndim == 2 and np.all(err[:, [0, 1]] <= ROUNDTRIP_RTOL)
        part = "sizes" if xy_ok else part
        rep.findings.append(Finding(
            "round trip", "bug", detail=f"boxes {fmt_array(x['boxes'])}: decode(encode(b)) = "
            f"{fmt_array(back) if isinstance(back, np.ndarray) else back}", grade="different",
            cause="encode is not the inverse of decode",
            counterexample={k: plain(val) for k, val in x.items()}, expected=plain(x["boxes"]),
            got=plain(back), why=f"encode is not the inverse of decode: the {part} do not come back",
            fix="derive encode by solving decode's formula for t (logit of the sigmoid argument)",
            impact=f"{n_bad} of {examples} inputs; relative error up to {worst:.3g}"))
    return rep
