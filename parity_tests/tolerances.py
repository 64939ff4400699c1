"""The one tolerance table of the parity suite, and the one comparison helper.

Every comparison between the reference (``ref_numpy``), the port (``torch_impl``) and an oracle
(torchvision, pycocotools) goes through :func:`assert_parity` with a tolerance from
:func:`tolerance`. No literal tolerances live in test bodies.

The defaults are keyed by dtype. An entry of ``OVERRIDES`` loosens (or tightens) one operation
at one dtype and must say why.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tol:
    """Absolute plus relative tolerance: ``|a - d| <= atol + rtol * |d|`` element-wise."""

    rtol: float
    atol: float
    why: str = ""


EXACT = Tol(0.0, 0.0, "bit-for-bit: indices, counts, classes, and float ops copied op for op")

DEFAULT: dict[str, Tol] = {
    # Same formula and the same order of operations on both sides; what is left is libm
    # (exp, log, atan) differing by an ulp or two between NumPy and torch.
    "float64": Tol(rtol=1e-12, atol=1e-12, why="libm ulp differences only"),
    # Same argument at float32: a few ulps of eps(float32) = 1.2e-7.
    "float32": Tol(rtol=1e-6, atol=1e-6, why="a few float32 ulps (libm and summation order)"),
    # Autocast paths: half precision keeps ~3 decimal digits.
    "float16": Tol(rtol=2e-3, atol=2e-3, why="float16 has a 10-bit mantissa"),
    "bfloat16": Tol(rtol=2e-2, atol=2e-2, why="bfloat16 has a 7-bit mantissa"),
}

# (operation name, dtype) -> Tol. Operation names are "module.function" as in the registry.
OVERRIDES: dict[tuple[str, str], Tol] = {
    # --- boxes ---
    # Bit for bit at every dtype: the port copies torchvision's (and the reference copies the
    # port's) order of operations, and max/min, +, -, *, / are correctly rounded in NumPy and torch.
    **{(f"boxes.{f}", d): EXACT
       for f in ("box_convert", "box_normalize", "box_denormalize", "box_area",
                 "clip_boxes_to_image", "remove_small_boxes", "box_iou", "generalized_box_iou",
                 "distance_box_iou", "box_ioa", "wh_iou")
       for d in ("float64", "float32")},
    # CIoU's aspect term: np.arctan and torch.atan differ by up to 1 ulp (1.2e-7 near pi/2 in
    # float32); squared and scaled by alpha it moves the result by <= 1.8e-7 (measured over 300
    # examples per row, degenerate and extreme-scale boxes included); float64: 3.3e-16.
    ("boxes.complete_box_iou", "float32"): Tol(rtol=0.0, atol=1e-6, why="np.arctan vs torch.atan: 1 ulp"),
    ("boxes.complete_box_iou", "float64"): Tol(rtol=0.0, atol=1e-14, why="np.arctan vs torch.atan: 1 ulp"),
    ("boxes.aligned_box_iou", "float32"): Tol(rtol=0.0, atol=1e-6,
                                              why="CIoU kind: np.arctan vs torch.atan, 1 ulp"),
    ("boxes.aligned_box_iou", "float64"): Tol(rtol=0.0, atol=1e-14,
                                              why="CIoU kind: np.arctan vs torch.atan, 1 ulp"),
    # Round trips (format conversions, normalise/denormalise) of arbitrary float64 coordinates
    # below ~2000: two or three roundings of ulp(2048) = 4.5e-13 each. (On integer coordinates
    # and power-of-two image sizes the round trips are asserted EXACT.)
    ("boxes.round_trip", "float64"): Tol(rtol=0.0, atol=2e-12, why="3 roundings at |x| < 2048"),
    # --- coder ---
    # Ports: float32 corners are centre -/+ size/2, which cancel: the error is a few ulps of the
    # operands, not of the corner. The rows keep pixels below ~1e3 (v5: centre <= 736 px, size
    # <= 1.6e3 px; ulp(1024) = 1.2e-4) and ~8e3 for v3 (size = anchor * exp(t_wh <= 3);
    # ulp(4096) = 4.9e-4). Measured over 300 examples: v5 decode 4.2e-5, v3 decode 3.7e-5.
    ("coder.yolov5_decode", "float32"): Tol(1e-6, 5e-4, "cx -/+ w/2 cancels; ulps of ~1e3 px"),
    ("coder.yolov3_decode", "float32"): Tol(1e-6, 2e-3, "cx -/+ w/2 cancels; ulps of ~8e3 px"),
    # torch's vectorised float32 sqrt is sometimes 1 ulp off NumPy's; logit amplifies an error
    # in σ = sqrt(size / anchor) / 2 by 1 / (σ(1 - σ)) <= ~270 at a size ratio of 3.97 (the
    # row's domain edge). Measured: 1.3e-5 over 300 examples.
    ("coder.yolov5_encode", "float32"): Tol(1e-6, 1e-4, "sqrt 1-ulp, amplified by logit"),
    # Round trips (test_coder.py), both sides; float64 stays within DEFAULT. At float32 the boxes
    # pass through xyxy pixel corners (cancellation as above), and the raw side through the
    # logit of an offset recovered from a pixel centre (ulp(640) / stride, amplified by
    # 1 / (σ(1 - σ)) <= 22 for |t| <= 3). Measured over 300 examples per side: v1 2.9e-5,
    # v3 6.2e-5, v5 8.2e-5, v3 raw 1.5e-4, v5 raw 6.5e-5, dist 3.7e-6.
    ("coder.yolov1_roundtrip", "float32"): Tol(1e-6, 2e-4, "corner cancellation, <= 1e3 px"),
    ("coder.yolov3_roundtrip", "float32"): Tol(1e-6, 2e-3, "corner cancellation, <= 8e3 px"),
    ("coder.yolov5_roundtrip", "float32"): Tol(1e-6, 5e-4, "corner cancellation, <= 1.6e3 px"),
    ("coder.yolov3_raw_roundtrip", "float32"): Tol(1e-6, 5e-4, "pixel centre -> logit"),
    ("coder.yolov5_raw_roundtrip", "float32"): Tol(1e-6, 5e-4, "pixel centre -> logit"),
    # a - (a - d) loses the ulps of the anchor point (<= 80: ulp 7.6e-6) when d is small.
    ("coder.dist_roundtrip", "float32"): Tol(1e-6, 2e-5, "point - (point - d) cancels"),
    # --- nms ---
    # --- formats ---
    # YOLO txt written with 6 decimals (Ultralytics' format): each normalised value is rounded
    # by <= 0.5e-6, so x = cx - w/2 is off by <= 0.75e-6; compared in normalised units.
    ("formats.read_yolo", "float64"): Tol(rtol=0.0, atol=1e-6,
                                          why="YOLO txt keeps 6 decimals of normalised values"),
    # --- metrics ---
    # --- assign ---
    # YOLOv5 / tutorial targets are products by grid sizes, differences with integers and
    # truncations: correctly rounded IEEE operations in the same order on every side (reference,
    # port, YOLOv5's own code), so the written targets are asserted bit for bit.
    ("assign.yolov5_build_targets", "float64"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    ("assign.yolov5_build_targets", "float32"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    ("assign.yolov5_assignment_report", "float64"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    ("assign.yolov5_assignment_report", "float32"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    ("assign.tutorial_assign", "float64"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    ("assign.tutorial_assign", "float32"): Tol(0.0, 0.0, "IEEE-exact ops, same order"),
    # test_assign.py: a written size divided back by the grid size, (w * n) / n: two roundings.
    ("assign.decode_size", "float64"): Tol(rtol=4.5e-16, atol=0.0, why="(w * n) / n, 2 roundings"),
    # --- loss ---
    # Port autograd vs central differences of the float64 reference (h = 1e-6, directional):
    # truncation O(h^2 * f3) plus rounding O(eps * |f| / h), about 1e-9 relative for O(10) losses.
    ("loss.fd_gradient", "float64"): Tol(rtol=1e-6, atol=1e-6,
                                         why="central differences, h=1e-6: O(h^2) + O(eps/h)"),
    # --- anchors ---
    # BPR and aat are integer counts divided by N; the counts come from the same correctly
    # rounded ops (w / a, 1 / r, min, max, > 1/thr) in the same order on both sides; label sizes
    # are products and quotients in upstream's order. Bit for bit at every dtype. (Fitness is a
    # mean of floats, summed in a different order by NumPy and torch: DEFAULT.)
    **{(f"anchors.{f}", d): EXACT
       for f in ("anchor_metrics", "check_anchors", "wh_from_labels")
       for d in ("float64", "float32")},
    # --- data ---
    # Pixels vs boxes (test_data.py): a filled rectangle is resampled bilinearly (Pillow, with
    # antialiasing when shrinking), so its edges blur over about a pixel; a pixel counts as
    # coloured when it is nearer the colour than half-way to the background, and the letterbox
    # pads by round(dw -/+ 0.1) while boxes shift by dw (YOLOv5): up to 0.5 px more.
    ("data.pixel_box", "float64"): Tol(rtol=0.0, atol=2.0,
                                       why="bilinear edge blur + letterbox pad rounding, in px"),
    # The three fixture formats hold the same boxes up to YOLO's 6 decimals (0.75e-6 of the
    # image size) and labels are float32 (6e-8): compared in normalised units.
    ("data.fixture_formats", "float32"): Tol(rtol=0.0, atol=2e-6,
                                             why="YOLO txt 6 decimals + float32 labels"),
    # Labels (float32, normalised) mapped back through shapes to original pixels: float32
    # rounding of values <= 1 (6e-8) times img_size / ratio (<= 1000 px here).
    ("data.label_roundtrip", "float32"): Tol(rtol=0.0, atol=1e-4,
                                             why="float32 normalised labels, back to pixels"),
}


def tolerance(name: str, dtype) -> Tol:
    """The tolerance for operation ``name`` ("module.function") compared at ``dtype``."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    key = key.replace("torch.", "")
    if (name, key) in OVERRIDES:
        return OVERRIDES[(name, key)]
    if key not in DEFAULT:
        return EXACT  # integer and bool outputs compare exactly
    return DEFAULT[key]


def to_numpy(x):
    """Tensors, arrays and nested tuples/lists/dicts of them as NumPy (float64 for half types)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.double()
        return t.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def _describe(inputs) -> str:
    if inputs is None:
        return ""
    with np.printoptions(precision=17, threshold=200):
        return f"\nInputs that reproduce it:\n{inputs!r}"


def assert_parity(actual, desired, *, name: str = "", dtype=None, tol: Tol | None = None,
                  inputs=None, check_dtype: bool = True, path: str = "out") -> None:
    """Assert that ``actual`` equals ``desired`` within the table's tolerance.

    Checks, in order: structure (nested tuples/lists/dicts), shape, dtype kind, then values,
    with NaN required in the same places. Tensors are moved to NumPy first. On failure the
    message names the operation, the path into the output, the worst element, the tolerance
    and the inputs that reproduce it.

    Args:
        actual, desired: arrays, tensors, scalars or nested containers of them.
        name: operation name ("module.function") used to look up the tolerance.
        dtype: dtype the computation ran at; defaults to ``desired``'s dtype.
        tol: an explicit entry (e.g. ``EXACT``) instead of the table lookup.
        inputs: anything whose repr reproduces the failure.
        check_dtype: also require the same dtype kind (float/int/bool).
    """
    actual, desired = to_numpy(actual), to_numpy(desired)
    where = f"{name or 'parity'} [{path}]"
    if isinstance(desired, dict):
        assert isinstance(actual, dict) and set(actual) == set(desired), (
            f"{where}: keys {sorted(actual) if isinstance(actual, dict) else type(actual)} "
            f"!= {sorted(desired)}{_describe(inputs)}")
        for k in desired:
            assert_parity(actual[k], desired[k], name=name, dtype=dtype, tol=tol, inputs=inputs,
                          check_dtype=check_dtype, path=f"{path}[{k!r}]")
        return
    if isinstance(desired, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(desired), (
            f"{where}: length {len(actual) if isinstance(actual, (list, tuple)) else type(actual)}"
            f" != {len(desired)}{_describe(inputs)}")
        for i, (a, d) in enumerate(zip(actual, desired)):
            assert_parity(a, d, name=name, dtype=dtype, tol=tol, inputs=inputs,
                          check_dtype=check_dtype, path=f"{path}[{i}]")
        return
    if desired is None or isinstance(desired, str):
        assert actual == desired, f"{where}: {actual!r} != {desired!r}{_describe(inputs)}"
        return
    a, d = np.asarray(actual), np.asarray(desired)
    assert a.shape == d.shape, f"{where}: shape {a.shape} != {d.shape}{_describe(inputs)}"
    if check_dtype:
        assert a.dtype.kind == d.dtype.kind or {a.dtype.kind, d.dtype.kind} <= {"i", "u"}, (
            f"{where}: dtype {a.dtype} != {d.dtype}{_describe(inputs)}")
    if tol is None:
        tol = tolerance(name, dtype if dtype is not None else d.dtype)
    if d.dtype.kind not in "fc" or tol is EXACT or (tol.rtol == 0 and tol.atol == 0):
        same = (a == d) | (np.isnan(a) & np.isnan(d)) if d.dtype.kind in "fc" else (a == d)
        if not np.all(same):
            bad = np.argwhere(~np.asarray(same))[:5]
            raise AssertionError(
                f"{where}: not exactly equal at {bad.tolist()}: "
                f"{a[tuple(bad.T)] if a.ndim else a} vs {d[tuple(bad.T)] if d.ndim else d}"
                f"{_describe(inputs)}")
        return
    a64, d64 = a.astype(np.float64), d.astype(np.float64)
    nan_a, nan_d = np.isnan(a64), np.isnan(d64)
    assert np.array_equal(nan_a, nan_d), (
        f"{where}: NaN in different places: actual {np.argwhere(nan_a)[:5].tolist()} "
        f"desired {np.argwhere(nan_d)[:5].tolist()}{_describe(inputs)}")
    inf_same = np.array_equal(np.isinf(a64), np.isinf(d64)) and np.array_equal(
        a64[np.isinf(d64)], d64[np.isinf(d64)])
    assert inf_same, f"{where}: infinities differ{_describe(inputs)}"
    fin = np.isfinite(d64)
    err = np.abs(a64[fin] - d64[fin])
    bound = tol.atol + tol.rtol * np.abs(d64[fin])
    if err.size and np.any(err > bound):
        i = int(np.argmax(err - bound))
        raise AssertionError(
            f"{where}: max deviation {err.max():.3e} exceeds atol={tol.atol:g} rtol={tol.rtol:g}"
            f" ({tol.why}); worst: actual {a64[fin][i]!r} desired {d64[fin][i]!r}"
            f"{_describe(inputs)}")


def max_deviation(actual, desired) -> float:
    """Largest absolute difference over finite entries (0.0 for empty), for reports like audit."""
    actual, desired = to_numpy(actual), to_numpy(desired)
    if isinstance(desired, dict):
        return max((max_deviation(actual[k], desired[k]) for k in desired), default=0.0)
    if isinstance(desired, (list, tuple)):
        return max((max_deviation(a, d) for a, d in zip(actual, desired)), default=0.0)
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    if a.shape != d.shape:
        return float("inf")
    fin = np.isfinite(a) & np.isfinite(d)
    if not np.array_equal(np.isnan(a), np.isnan(d)):
        return float("inf")
    return float(np.abs(a[fin] - d[fin]).max()) if fin.any() else 0.0
