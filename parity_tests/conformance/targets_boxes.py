"""Specs for ``boxes.*``: the IoU family and ``box_convert``, with their diagnosis probes."""
from __future__ import annotations

import numpy as np

from parity_tests.conformance import strategies as S
from parity_tests.conformance.engine import Check, Grade, Probe, Spec, compare_values, fmt_array
from ref_numpy import boxes as B

#: Largest IoU difference still reported as "same decisions, different values" (a float32
#: computation of float64 boxes stays below 1e-7; an eps of 1e-7 in a pixel-box union gives 1e-12).
IOU_ATOL = 1e-6
#: The same for coordinates, relative to the largest input coordinate.
COORD_RTOL = 1e-9

IOU_FUNCS = {"box_iou": "iou", "generalized_box_iou": "giou", "distance_box_iou": "diou",
             "complete_box_iou": "ciou"}
PERM_XY = [1, 0, 3, 2]


# ----------------------------------------------------------------------------- alternative kernels

def iou_variant(kind: str, b1: np.ndarray, b2: np.ndarray, *, plus1: float = 0.0,
                union_eps: float = 0.0, union_min: float | None = None, clamp_inter: bool = True,
                eps: float = 1e-7) -> np.ndarray:
    """Pairwise IoU/GIoU/DIoU/CIoU with a switchable convention (the probes' alternatives)."""
    b1, b2 = np.asarray(b1, np.float64), np.asarray(b2, np.float64)
    w1, h1 = b1[:, 2] - b1[:, 0] + plus1, b1[:, 3] - b1[:, 1] + plus1
    w2, h2 = b2[:, 2] - b2[:, 0] + plus1, b2[:, 3] - b2[:, 1] + plus1
    iw = np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(b1[:, None, 0], b2[None, :, 0]) + plus1
    ih = np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(b1[:, None, 1], b2[None, :, 1]) + plus1
    inter = np.maximum(iw, 0) * np.maximum(ih, 0) if clamp_inter else np.maximum(iw * ih, 0)
    union = (w1 * h1)[:, None] + (w2 * h2)[None, :] - inter + union_eps
    if union_min is not None:
        union = np.maximum(union, union_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
        if kind == "iou":
            return iou
        cw = np.maximum(b1[:, None, 2], b2[None, :, 2]) - np.minimum(b1[:, None, 0], b2[None, :, 0])
        ch = np.maximum(b1[:, None, 3], b2[None, :, 3]) - np.minimum(b1[:, None, 1], b2[None, :, 1])
        if kind == "giou":
            area_c = np.maximum(cw, 0) * np.maximum(ch, 0)
            return iou - (area_c - union) / area_c
        c2 = cw ** 2 + ch ** 2 + eps
        dx = (b1[:, None, 0] + b1[:, None, 2]) / 2 - (b2[None, :, 0] + b2[None, :, 2]) / 2
        dy = (b1[:, None, 1] + b1[:, None, 3]) / 2 - (b2[None, :, 1] + b2[None, :, 3]) / 2
        diou = iou - (dx ** 2 + dy ** 2) / c2
        if kind == "diou":
            return diou
        v = (4 / np.pi ** 2) * (np.arctan(w1 / h1)[:, None] - np.arctan(w2 / h2)[None, :]) ** 2
        alpha = v / (1 - iou + v + eps)
        return diou - alpha * v


def _to_pixel_range(x: dict) -> dict | None:
    """Scale every coordinate by the power of two that brings the largest to ~2^10 (IoU-invariant)."""
    m = max(float(np.max(np.abs(x[k]))) if np.size(x[k]) else 0.0 for k in ("boxes1", "boxes2"))
    if m == 0 or 2 ** 9 <= m <= 2 ** 12:
        return None
    k = 2.0 ** (10 - int(np.floor(np.log2(m))))
    return {**x, "boxes1": x["boxes1"] * k, "boxes2": x["boxes2"] * k}


def _iou_probes(kind: str, ref) -> list[Probe]:
    def alt(**kw):
        return lambda x: iou_variant(kind, x["boxes1"], x["boxes2"], **kw)

    def fmt_alt(fmt):
        return lambda x: ref(B.box_convert(x["boxes1"], fmt, "xyxy"), B.box_convert(x["boxes2"], fmt, "xyxy"))

    return [
        Probe("+1 pixel widths (VOC)", "alt", alt(plus1=1.0),
              "your widths and heights are x2 - x1 + 1 (Pascal VOC's inclusive pixel convention); "
              "the contract uses x2 - x1", "keep it for VOC-style integer pixel boxes, or drop "
              "the + 1 to match torchvision", verdict="convention"),
        Probe("zero union gives 0", "alt", lambda x: np.nan_to_num(ref(x["boxes1"], x["boxes2"]), nan=0.0),
              "two zero-area boxes have union 0; 0/0 is undefined and the contract (torchvision) "
              "returns NaN, yours returns 0 (an eps or a where(union > 0) hides degenerate boxes)",
              "return inter / union without eps and let 0/0 be NaN (or filter degenerate boxes "
              "before the IoU)"),
        Probe("intersection not clamped", "alt", alt(clamp_inter=False),
              "the overlap width and height are not each clamped at 0: for two disjoint boxes "
              "both are negative and their product is a positive 'intersection'",
              "inter = clip(min(x2) - max(x1), 0) * clip(min(y2) - max(y1), 0)"),
        Probe("eps or clamp in the union", "transform", _to_pixel_range,
              "an eps (or a minimum) added to the union changes the IoU of small boxes: with "
              "coordinates scaled by 2^k to pixel range your IoU agrees, so the constant does not "
              "scale with the boxes (it flips threshold decisions for normalised coordinates)",
              "divide by the union itself (torchvision has no eps); if you need one, make it "
              "relative (e.g. 1e-7 * union) or filter degenerate boxes"),
        Probe("x and y swapped", "alt",
              lambda x: ref(x["boxes1"], x["boxes2"][:, PERM_XY]),
              "one argument is read as (y1, x1, y2, x2): its x and y are swapped",
              "index boxes as x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3] for both arguments"),
        Probe("x and y swapped", "alt",
              lambda x: ref(x["boxes1"][:, PERM_XY], x["boxes2"]),
              "one argument is read as (y1, x1, y2, x2): its x and y are swapped",
              "index boxes as x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3] for both arguments"),
        Probe("format mix-up: xywh read", "alt", fmt_alt("xywh"),
              "your function treats its xyxy input as xywh (x, y, w, h): it adds the corners as sizes",
              "convert first: box_convert(boxes, 'xywh', 'xyxy') only where your boxes really are xywh"),
        Probe("format mix-up: cxcywh read", "alt", fmt_alt("cxcywh"),
              "your function treats its xyxy input as cxcywh (centre, size)",
              "take xyxy boxes, or convert with box_convert(boxes, 'cxcywh', 'xyxy') first"),
        Probe("not pairwise", "predicate",
              lambda x, e, g: np.shape(g) != np.shape(e) and np.size(g) == min(np.shape(e) or [0]),
              "the function returns one IoU per aligned pair (element-wise), not the [N, M] matrix",
              "broadcast: boxes1[:, None, :] against boxes2[None, :, :]"),
    ]


def _show_pair(x: dict) -> str:
    return f"boxes1 {fmt_array(x['boxes1'])}, boxes2 {fmt_array(x['boxes2'])}"


def _iou_checks() -> list[Check]:
    def pair(gen1, gen2=None):
        def g(rng, fixed):
            n, m = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            return {"boxes1": gen1(rng, n), "boxes2": (gen2 or gen1)(rng, m)}
        return g

    def diag(rng, fixed):
        a, b = S.diagonal_pair(rng)
        return {"boxes1": np.concatenate([a, S.boxes(rng, 1)]), "boxes2": b}

    def _zero_area(rng, fixed):
        a = S.zero_area(rng, int(rng.integers(1, 4)))
        b = a.copy() if rng.random() < 0.5 else S.zero_area(rng, int(rng.integers(1, 4)))
        return {"boxes1": a, "boxes2": b}

    def empty(rng, fixed):
        n = int(rng.integers(0, 2))
        return {"boxes1": S.boxes(rng, n), "boxes2": S.boxes(rng, 1 - n + int(rng.integers(0, 2)))}

    return [
        Check("pixel boxes", "random boxes in a 640 px image, N, M in 1..4",
              pair(lambda r, n: S.boxes(r, n)), weight=1.0),
        Check("overlaps", "clustered boxes, IoU over the whole range",
              pair(lambda r, n: S.clustered(r, n)), weight=0.5),
        Check("normalised", "boxes in [0, 1] (YOLO txt coordinates)",
              pair(lambda r, n: S.boxes(r, n, 1.0)), noun="normalised", weight=0.5),
        Check("tiny/huge scale", "coordinates at 2^-16 and 2^16",
              pair(lambda r, n: S.boxes(r, n, float(r.choice([2.0 ** -16, 2.0 ** 16])))),
              noun="extreme-scale", weight=0.3),
        Check("integer pixels", "integer pixel coordinates (VOC-style)",
              pair(lambda r, n: S.integer_boxes(r, n)), weight=0.3),
        Check("disjoint", "boxes apart along both axes (IoU 0)", diag, weight=0.3),
        Check("identical", "a box against itself (IoU 1)",
              lambda r, f: (lambda b: {"boxes1": b, "boxes2": b.copy()})(S.boxes(r, int(r.integers(1, 4)))),
              weight=0.2),
        Check("zero area", "zero-width/height boxes (0 against a box, NaN against another)",
              _zero_area, noun="degenerate", weight=0.3),
        Check("empty input", "N = 0 or M = 0", empty, weight=0.05),
    ]


def iou_spec(func: str) -> Spec:
    ref = getattr(B, func)
    kind = IOU_FUNCS[func]

    def compare(e, g, x):
        gr = compare_values(e, g)
        if not gr.ok and gr.grade == "different" and not gr.note and gr.diff <= IOU_ATOL:
            return Grade(True, f"same decisions, values differ by <= {gr.diff:.1g}", gr.ulps, gr.diff)
        return gr

    extreme_ok = {"eps or clamp in the union"} if kind in ("diou", "ciou") else set()
    checks = _iou_checks()
    for c in checks:
        if c.name == "tiny/huge scale":
            c.convention_causes = extreme_ok
    return Spec(f"boxes.{func}", lambda boxes1, boxes2, **kw: ref(boxes1, boxes2, **kw),
                ["boxes1", "boxes2"],
                f"(boxes1 xyxy [N,4], boxes2 xyxy [M,4]) -> {kind.upper()} [N,M]",
                checks, _iou_probes(kind, ref), compare, _show_pair,
                lambda y: fmt_array(y, 3), rows=[("boxes1",), ("boxes2",)], units="IoU")


# ----------------------------------------------------------------------------- box_convert

def _convert_checks() -> list[Check]:
    def g(scale_fn, n_lo=1, n_hi=5):
        def gen(rng, fixed):
            fi = fixed.get("in_fmt") or str(rng.choice(S_FORMATS))
            fo = fixed.get("out_fmt") or str(rng.choice(S_FORMATS))
            b = scale_fn(rng, int(rng.integers(n_lo, n_hi)))
            return {"boxes": S.convert_from_xyxy(b, fi), "in_fmt": fi, "out_fmt": fo}
        return gen
    return [
        Check("pixel boxes", "random boxes in a 640 px image", g(lambda r, n: S.boxes(r, n))),
        Check("integer pixels", "integer pixel coordinates", g(lambda r, n: S.integer_boxes(r, n)), weight=0.3),
        Check("normalised", "boxes in [0, 1]", g(lambda r, n: S.boxes(r, n, 1.0)), weight=0.3),
        Check("tiny/huge scale", "coordinates at 2^-16 and 2^16",
              g(lambda r, n: S.boxes(r, n, float(r.choice([2.0 ** -16, 2.0 ** 16])))), weight=0.2),
        Check("off-image", "boxes partly left of / above the image (negative corners)",
              g(lambda r, n: S.boxes(r, n) - 200.0), weight=0.3),
        Check("empty input", "N = 0", g(lambda r, n: S.boxes(r, 0), 0, 1), weight=0.05),
    ]


S_FORMATS = ("xyxy", "xywh", "cxcywh")


def _convert_probes() -> list[Probe]:
    probes = []
    for fi in S_FORMATS:
        for fo in S_FORMATS:
            def alt(x, fi=fi, fo=fo):
                if (fi, fo) == (x["in_fmt"], x["out_fmt"]):
                    return None
                return B.box_convert(x["boxes"], fi, fo)
            probes.append(Probe(f"format mix-up: computes {fi} -> {fo}", "alt", alt,
                                f"your conversion computes {fi} -> {fo} (a format mix-up: "
                                f"xywh is COCO's top-left corner + size, cxcywh the centre + size)",
                                "write the formula for the formats you claim, e.g. "
                                "box_convert(boxes, in_fmt, out_fmt)"))
    probes.append(Probe("x and y swapped", "alt",
                        lambda x: B.box_convert(x["boxes"], x["in_fmt"], x["out_fmt"])[:, PERM_XY],
                        "the output has x and y swapped ((y, x, ...) instead of (x, y, ...))",
                        "stack the output as x1, y1, x2, y2 (or x, y, w, h)"))

    def plus1(x):
        fi, fo = x["in_fmt"], x["out_fmt"]
        b = B.box_convert(x["boxes"], fi, "xyxy")
        if fi in ("xywh", "cxcywh"):  # width w covers pixels x .. x + w - 1
            b = b + np.array([0, 0, -1, -1])
        out = B.box_convert(b, "xyxy", fo)
        if fo in ("xywh", "cxcywh"):
            out = out + np.array([0, 0, 1, 1])
            if fo == "cxcywh":
                out = B.box_convert(b, "xyxy", "cxcywh") + np.array([0, 0, 1, 1])
        return out
    probes.append(Probe("+1 pixel widths (VOC)", "alt", plus1,
                        "your widths are x2 - x1 + 1 (VOC's inclusive pixel convention)",
                        "keep it for inclusive integer pixel boxes; drop the + 1 for torchvision's "
                        "convention", verdict="convention"))
    probes.append(Probe("sizes clamped at 0", "alt",
                        lambda x: B.box_convert(x["boxes"], x["in_fmt"], x["out_fmt"]).clip(0),
                        "negative coordinates are clamped to 0 (only sizes may be clamped, and only "
                        "where the contract says so)", "do not clip inside a format conversion"))
    return probes


def convert_spec() -> Spec:
    def compare(e, g, x):
        scale = max(1.0, float(np.max(np.abs(x["boxes"]))) if np.size(x["boxes"]) else 1.0)
        gr = compare_values(e, g, scale)
        if not gr.ok and gr.grade == "different" and not gr.note and gr.diff <= COORD_RTOL * scale:
            return Grade(True, f"same boxes, coordinates differ by <= {gr.diff:.1g}", gr.ulps, gr.diff)
        return gr
    return Spec("boxes.box_convert", B.box_convert, ["boxes", "in_fmt", "out_fmt"],
                "(boxes [N,4] in in_fmt, in_fmt, out_fmt) -> boxes [N,4] in out_fmt",
                _convert_checks(), _convert_probes(), compare,
                lambda x: f"{x['in_fmt']} -> {x['out_fmt']} of {fmt_array(x['boxes'])}",
                lambda y: fmt_array(y), rows=[("boxes",)], units="px", output_boxes="any")
