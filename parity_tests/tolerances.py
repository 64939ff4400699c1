"""The one tolerance table of the parity suite, and the one comparison helper.

Every comparison between the reference (``ref_numpy``), the port (``torch_impl``) and an oracle
(torchvision, pycocotools) goes through :func:`assert_parity` with a tolerance from the tables
below. No literal tolerances live in test bodies (``test_meta.py`` greps for them).

Two tables, two namespaces, neither of which can fail silently:

- **Per-function** tolerances, :func:`tolerance` ``("module.function", dtype)``: how far the port
  (or an oracle) may be from the reference on one function's output. The defaults are keyed by
  dtype (``DEFAULT``); an entry of ``OVERRIDES`` loosens (or tightens) one function at one dtype
  and says why. The name must be a public function of ``ref_numpy.<module>`` or
  ``torch_impl.<module>``, or have an ``OVERRIDES`` entry: anything else raises ``KeyError``
  naming the nearest known keys (a typo can no longer fall back to the default).
- **Derived-property** tolerances, :func:`derived_tolerance` ``("kind.subject", dtype)``: round
  trips (``roundtrip.*``), finite-difference gradients (``fd_gradient.*``), pixel checks
  (``pixels.*``), cross-format fixture checks (``fixture.*``), memory layouts (``layout.*``),
  device-vs-CPU allowances (``device.*``) and the strategies' own claims (``strategy.*``). Their keys start with a
  kind that is no module name, so the two namespaces cannot collide; only keys listed in
  ``DERIVED`` exist.

:func:`assert_parity` looks up ``name`` in whichever table its namespace says, and compares
dtypes exactly (a float64 result where float32 is owed is a failure, as is int32 for int64).
:meth:`Tol.text` is how a tolerance is printed (``"1e-12+1e-9|x|"``, ``"exact"``): the bound
that is actually applied, ``|actual - desired| <= atol + rtol * |desired|``.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from dataclasses import dataclass, replace

import numpy as np

from ref_numpy.shared.sides import to_numpy  # also imported from here by the tests


@dataclass(frozen=True)
class Tol:
    """Absolute plus relative tolerance: ``|a - d| <= atol + rtol * |d|`` element-wise."""

    rtol: float
    atol: float
    why: str = ""

    @property
    def exact(self) -> bool:
        """True when the bound is zero (bit for bit, NaN in the same places)."""
        return self.rtol == 0 and self.atol == 0

    def text(self) -> str:
        """The applied bound as printed in reports: ``"exact"``, ``"1e-6"`` (atol only),
        ``"4.5e-16|x|"`` (rtol only) or ``"1e-12+1e-9|x|"`` (atol + rtol·|x|)."""
        if self.exact:
            return "exact"
        parts = []
        if self.atol:
            parts.append(_num(self.atol))
        if self.rtol:
            parts.append(f"{_num(self.rtol)}|x|")
        return "+".join(parts)


def _num(v: float) -> str:
    """Short scientific notation: 1e-12, 4.5e-16, 5e-4; plain for 0.01 <= v < 1000 (2, 0.5)."""
    if 0.01 <= v < 1000:
        return f"{v:g}"
    mantissa, exponent = f"{v:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


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
                 "distance_box_iou", "box_ioa", "wh_iou", "box_inter_union", "voc_box_iou",
                 "coco_box_iou", "darknet_box_iou")
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
    # --- coder ---
    # Ports: float32 corners are centre -/+ size/2, which cancel: the error is a few ulps of the
    # operands, not of the corner. The rows keep pixels below ~1e3 (v5: centre <= 736 px, size
    # <= 1.6e3 px; ulp(1024) = 1.2e-4) and ~8e3 for v3 (size = anchor * exp(t_wh <= 3);
    # ulp(4096) = 4.9e-4). Measured over 300 examples: v5 decode 4.2e-5, v3 decode 3.7e-5.
    ("coder.yolov5_decode", "float32"): Tol(1e-6, 5e-4, "cx -/+ w/2 cancels; ulps of ~1e3 px"),
    ("coder.yolov3_decode", "float32"): Tol(1e-6, 2e-3, "cx -/+ w/2 cancels; ulps of ~8e3 px"),
    # The section A decode is v3's (exp(t) * anchor, centre -/+ size/2): the same cancellation.
    ("coder.tutorial_decode", "float32"): Tol(1e-6, 2e-3, "cx -/+ w/2 cancels; ulps of ~8e3 px"),
    # YOLOv8's eval output vs the coder: the model's DFL is a 1x1 conv over the 16 bins, the
    # coder's a softmax-weighted arange sum (another summation order: ulps of reg_max = 16); the
    # centre (rb - lt) / 2 cancels and x stride 32 scales it: 32 * 16 * 4 ulps(1) ~ 2.4e-4.
    # Measured 3.1e-5 in a full-suite run (1 torch thread), 0 alone.
    ("models.yolov8_decode", "float32"): Tol(1e-6, 2.5e-4, "DFL conv vs softmax sum, x stride 32"),
    # torch's vectorised float32 sqrt is sometimes 1 ulp off NumPy's; logit amplifies an error
    # in σ = sqrt(size / anchor) / 2 by 1 / (σ(1 - σ)) <= ~270 at a size ratio of 3.97 (the
    # row's domain edge). Measured: 1.3e-5 over 300 examples.
    ("coder.yolov5_encode", "float32"): Tol(1e-6, 1e-4, "sqrt 1-ulp, amplified by logit"),
    # --- nms ---
    # --- formats ---
    # YOLO txt written with 6 decimals (Ultralytics 8.3 / 8.4 write %g, 6 significant digits):
    # each normalised value is rounded by <= 0.5e-6, so x = cx - w/2 is off by <= 0.75e-6;
    # compared in normalised units.
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
    # --- loss ---
    # --- anchors ---
    # BPR and aat are integer counts divided by N; the counts come from the same correctly
    # rounded ops (w / a, 1 / r, min, max, > 1/thr) in the same order on both sides; label sizes
    # are products and quotients in upstream's order. Bit for bit at every dtype. (Fitness is a
    # mean of floats, summed in a different order by NumPy and torch: DEFAULT.)
    **{(f"anchors.{f}", d): EXACT
       for f in ("anchor_metrics", "check_anchors", "wh_from_labels")
       for d in ("float64", "float32")},
    # --- data (port only) ---
    # The port's private HSV conversions against colorsys (test_data.py): the same formula in
    # float64, a few ulps apart (DEFAULT's float64 bound, named so the key exists).
    ("data.rgb_to_hsv", "float64"): replace(DEFAULT["float64"], why="colorsys oracle, same formula"),
    ("data.hsv_to_rgb", "float64"): replace(DEFAULT["float64"], why="colorsys oracle, same formula"),
}

# (kind.subject, dtype) -> Tol for properties derived from several calls. A name listed here at
# some dtype is known at every dtype: a missing dtype falls back to DEFAULT (said per entry).
DERIVED: dict[tuple[str, str], Tol] = {
    # --- round trips ---
    # Format conversions, normalise/denormalise (test_boxes.py, audit) of arbitrary float64
    # coordinates below ~2000: two or three roundings of ulp(2048) = 4.5e-13 each. (On integer
    # coordinates and power-of-two image sizes the round trips are asserted EXACT.)
    ("roundtrip.boxes", "float64"): Tol(rtol=0.0, atol=2e-12, why="3 roundings at |x| < 2048"),
    # Coder round trips (test_coder.py, audit), both sides; float64 stays within DEFAULT. At
    # float32 the boxes pass through xyxy pixel corners (cx -/+ w/2 cancels), and the raw side
    # through the logit of an offset recovered from a pixel centre (ulp(640) / stride, amplified
    # by 1 / (σ(1 - σ)) <= 22 for |t| <= 3). Measured over 300 examples per side: v1 2.9e-5,
    # v3 6.2e-5, v5 8.2e-5, v3 raw 1.5e-4, v5 raw 6.5e-5, dist 3.7e-6.
    ("roundtrip.yolov1", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.yolov1", "float32"): Tol(1e-6, 2e-4, "corner cancellation, <= 1e3 px"),
    ("roundtrip.yolov3", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.yolov3", "float32"): Tol(1e-6, 2e-3, "corner cancellation, <= 8e3 px"),
    ("roundtrip.yolov5", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.yolov5", "float32"): Tol(1e-6, 5e-4, "corner cancellation, <= 1.6e3 px"),
    ("roundtrip.yolov3_raw", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.yolov3_raw", "float32"): Tol(1e-6, 5e-4, "pixel centre -> logit"),
    ("roundtrip.yolov5_raw", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.yolov5_raw", "float32"): Tol(1e-6, 5e-4, "pixel centre -> logit"),
    # a - (a - d) loses the ulps of the anchor point (<= 80: ulp 7.6e-6) when d is small.
    ("roundtrip.dist", "float64"): replace(DEFAULT["float64"], why="a few float64 roundings"),
    ("roundtrip.dist", "float32"): Tol(1e-6, 2e-5, "point - (point - d) cancels"),
    # DFL: softmax-weighted bin sum of a two-bin target; exp and the sum round a few ulps.
    ("roundtrip.dfl", "float64"): replace(DEFAULT["float64"], why="softmax + bin sum roundings"),
    ("roundtrip.dfl", "float32"): replace(DEFAULT["float32"], why="softmax + bin sum roundings"),
    # test_assign.py: a written size divided back by the grid size, (w * n) / n: two roundings.
    ("roundtrip.decode_size", "float64"): Tol(rtol=4.5e-16, atol=0.0, why="(w * n) / n, 2 roundings"),
    # A box flipped twice (test_data.py): W - (W - x) rounds to the ulp of W, a few 1e-13 px.
    ("roundtrip.flip", "float64"): replace(DEFAULT["float64"], why="W - (W - x): ulps of W"),
    # Labels (float32, normalised) mapped back through shapes to original pixels (test_data.py):
    # float32 rounding of values <= 1 (6e-8) times img_size / ratio (<= 1000 px here).
    ("roundtrip.labels", "float32"): Tol(rtol=0.0, atol=1e-4,
                                         why="float32 normalised labels, back to pixels"),
    # --- gradients ---
    # Port autograd vs central differences of the float64 reference (h = 1e-6, directional):
    # truncation O(h^2 * f3) plus rounding O(eps * |f| / h), about 1e-9 relative for O(10) losses.
    ("fd_gradient.loss", "float64"): Tol(rtol=1e-6, atol=1e-6,
                                         why="central differences, h=1e-6: O(h^2) + O(eps/h)"),
    # --- pixels ---
    # Pixels vs boxes (test_data.py): a filled rectangle is resampled bilinearly (Pillow, with
    # antialiasing when shrinking), so its edges blur over about a pixel; a pixel counts as
    # coloured when it is nearer the colour than half-way to the background, and the letterbox
    # pads by round(dw -/+ 0.1) while boxes shift by dw (YOLOv5): up to 0.5 px more.
    ("pixels.box", "float64"): Tol(rtol=0.0, atol=2.0,
                                   why="bilinear edge blur + letterbox pad rounding, in px"),
    # --- fixtures ---
    # The three fixture formats hold the same boxes up to YOLO's 6 decimals (0.75e-6 of the
    # image size) and labels are float32 (6e-8): compared in normalised units.
    ("fixture.formats", "float32"): Tol(rtol=0.0, atol=2e-6, why="YOLO txt 6 decimals + float32 labels"),
    # --- strategies ---
    # planted_iou_pair's IoU (test_strategies.py): t is exact in real arithmetic; scaling by 2^k
    # is exact and a translation by <= 512 rounds each coordinate to ulp(1024) = 2.3e-13, so the
    # float64 IoU is t within ~1e-12, far inside the planted offset eps = 1e-4.
    ("strategy.planted_iou", "float64"): Tol(rtol=0.0, atol=1e-9, why="translation rounding << eps"),
    # --- layouts ---
    # The port in channels-last memory order vs NCHW (test_train.py): oneDNN's channels-last
    # convolutions and BatchNorm sum in another order, so each layer's float32 output moves by
    # ulps that ~25 layers forward and backward compound; one SGD step of a YOLOv5n from the
    # same init, measured: loss terms 7e-7 relative, weights 1.5e-6 absolute / 2.9e-5 relative
    # past 1e-6 (the stem's conv, whose gradient sums over every pixel); about 7x margin.
    ("layout.channels_last", "float32"): Tol(2e-4, 2e-6, "other conv kernels' summation order"),
    # --- devices ---
    # The port on an accelerator vs on the CPU (or vs the CPU reference): nvcc contracts
    # a * b + c into one FMA (one rounding instead of two) and CUDA's libm is not glibc's, so
    # float results move by a few ulps; integer and bool outputs stay exact. Applied on top of
    # (component-wise max with) the row's own tolerance by :func:`on_device`.
    ("device.accelerator", "float64"): Tol(1e-12, 1e-12, "FMA contraction and CUDA libm: ulps"),
    ("device.accelerator", "float32"): Tol(1e-6, 1e-6, "FMA contraction and CUDA libm: ulps"),
    ("device.accelerator", "float16"): Tol(2e-3, 2e-3, "FMA contraction and CUDA libm: ulps"),
    ("device.accelerator", "bfloat16"): Tol(2e-2, 2e-2, "FMA contraction and CUDA libm: ulps"),
}

DERIVED_KINDS = ("roundtrip", "fd_gradient", "pixels", "fixture", "layout", "device", "strategy")

_INTEGER_KINDS = "biu"  # bool, signed, unsigned: compared exactly


def _dtype_key(dtype) -> str:
    """'float32' for np.float32, np.dtype('float32'), torch.float32 or 'float32'."""
    if isinstance(dtype, str):
        return dtype.replace("torch.", "")
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch."):]
    return np.dtype(dtype).name


def _is_integer_dtype(key: str) -> bool:
    try:
        return np.dtype(key).kind in _INTEGER_KINDS
    except TypeError:
        return False


def _public_names(package: str, module: str) -> set[str]:
    try:
        mod = importlib.import_module(f"{package}.{module}")
    except ImportError:  # torch missing (base install) or no such module on that side
        return set()
    return {n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n))}


def _is_function(name: str) -> bool:
    module, _, function = name.partition(".")
    if not function or function.startswith("_"):
        return False
    return any(function in _public_names(p, module) for p in ("ref_numpy", "torch_impl"))


def _known_function_names() -> set[str]:
    import ref_numpy

    names = {n for n, _ in OVERRIDES}
    for info in pkgutil.iter_modules(ref_numpy.__path__):
        if not info.name.startswith("_"):
            names |= {f"{info.name}.{f}" for f in _public_names("ref_numpy", info.name)}
    return names


def _derived_names() -> set[str]:
    return {n for n, _ in DERIVED}


def _unknown(name: str, candidates: set[str], what: str) -> KeyError:
    near = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.5)
    hint = f"; nearest known keys: {', '.join(near)}" if near else ""
    return KeyError(f"unknown {what} tolerance key {name!r}{hint}")


def is_derived(name: str) -> bool:
    """True when ``name`` belongs to the derived-property namespace (``roundtrip.*``, ...)."""
    return name.split(".", 1)[0] in DERIVED_KINDS


def tolerance(name: str, dtype) -> Tol:
    """The per-function tolerance for ``name`` ("module.function") compared at ``dtype``.

    Raises:
        KeyError: ``name`` is neither a public function of ``ref_numpy.<module>`` /
            ``torch_impl.<module>`` nor an ``OVERRIDES`` entry (the message names the nearest
            known keys), or a derived-property key (use :func:`derived_tolerance`), or ``dtype``
            is a floating dtype with no ``DEFAULT`` entry.
    """
    key = _dtype_key(dtype)
    if is_derived(name):
        raise KeyError(f"{name!r} is a derived-property key: use derived_tolerance({name!r}, "
                       f"{key!r})")
    if (name, key) in OVERRIDES:
        return OVERRIDES[(name, key)]
    if not any(n == name for n, _ in OVERRIDES) and not _is_function(name):
        raise _unknown(name, _known_function_names(), "per-function")
    if key in DEFAULT:
        return DEFAULT[key]
    if _is_integer_dtype(key):
        return EXACT  # integer and bool outputs compare exactly
    raise KeyError(f"no tolerance for dtype {key!r} (known: {', '.join(DEFAULT)})")


def derived_tolerance(name: str, dtype) -> Tol:
    """The tolerance of a derived property ``name`` ("kind.subject", e.g. "roundtrip.yolov5").

    A name present in ``DERIVED`` at another dtype falls back to ``DEFAULT[dtype]``.

    Raises:
        KeyError: ``name`` has no ``DERIVED`` entry (the message names the nearest known keys).
    """
    key = _dtype_key(dtype)
    if (name, key) in DERIVED:
        return DERIVED[(name, key)]
    if name not in _derived_names():
        raise _unknown(name, _derived_names(), "derived-property")
    if key in DEFAULT:
        return DEFAULT[key]
    if _is_integer_dtype(key):
        return EXACT
    raise KeyError(f"no tolerance for dtype {key!r} (known: {', '.join(DEFAULT)})")


def lookup(name: str, dtype) -> Tol:
    """:func:`derived_tolerance` for a derived-property name, else :func:`tolerance`."""
    return derived_tolerance(name, dtype) if is_derived(name) else tolerance(name, dtype)


def on_device(tol: Tol, dtype, device) -> Tol:
    """``tol`` widened for a port that ran on ``device``: unchanged on the CPU; on an accelerator
    the component-wise max with ``device.accelerator`` at ``dtype`` (integer dtypes: unchanged)."""
    device = str(device or "cpu")
    key = _dtype_key(dtype)
    if device.startswith("cpu") or _is_integer_dtype(key):
        return tol
    extra = derived_tolerance("device.accelerator", key)
    return Tol(max(tol.rtol, extra.rtol), max(tol.atol, extra.atol),
               f"{tol.why}; on {device}: {extra.why}")


def dtype_of(x) -> str | None:
    """The dtype name of an array, tensor or NumPy scalar ('float32', 'int64', 'bfloat16'), or
    ``None`` for plain Python numbers (weakly typed: they match any dtype of their kind)."""
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        return None
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.name
    return _dtype_key(dtype)


def _describe(inputs) -> str:
    if inputs is None:
        return ""
    with np.printoptions(precision=17, threshold=200):
        return f"\nInputs that reproduce it:\n{inputs!r}"


def _kind(name: str) -> str:
    return "f" if name == "bfloat16" else np.dtype(name).kind


def _check_dtype(actual, desired, where: str, inputs) -> None:
    da, dd = dtype_of(actual), dtype_of(desired)
    if da is None or dd is None:  # a Python number: same kind is enough (int/bool/float)
        ka = _kind(da) if da else np.asarray(actual).dtype.kind
        kd = _kind(dd) if dd else np.asarray(desired).dtype.kind
        ok = ka == kd or {ka, kd} <= {"i", "u"}
        assert ok, f"{where}: dtype kind {ka!r} != {kd!r} (Python number){_describe(inputs)}"
        return
    assert da == dd, f"{where}: dtype {da} != {dd} (dtypes are compared exactly){_describe(inputs)}"


def assert_parity(actual, desired, *, name: str = "", dtype=None, tol: Tol | None = None,
                  inputs=None, check_dtype: bool = True, path: str = "out") -> None:
    """Assert that ``actual`` equals ``desired`` within the table's tolerance.

    Checks, in order: structure (nested tuples/lists/dicts), shape, dtype (exactly: float64 is
    not float32, int32 is not int64; a plain Python number only has to match the kind), then
    values, with NaN required in the same places. Tensors are moved to NumPy after the dtype
    check. On failure the message names the operation, the path into the output, the worst
    element, the tolerance and the inputs that reproduce it.

    Args:
        actual, desired: arrays, tensors, scalars or nested containers of them.
        name: key of the tolerance, per-function ("module.function") or derived
            ("roundtrip.yolov5"); looked up with :func:`lookup` (an unknown key raises
            ``KeyError``) unless ``tol`` is given.
        dtype: dtype the computation ran at; defaults to ``desired``'s dtype.
        tol: an explicit entry (e.g. ``EXACT``) instead of the table lookup.
        inputs: anything whose repr reproduces the failure.
        check_dtype: also require the same dtype (see above).
    """
    where = f"{name or 'parity'} [{path}]"
    if dataclasses.is_dataclass(desired) and not isinstance(desired, type):  # e.g. AssignmentReport
        assert type(actual) is type(desired), (
            f"{where}: {type(actual).__name__} != {type(desired).__name__}{_describe(inputs)}")
        actual, desired = dataclasses.asdict(actual), dataclasses.asdict(desired)
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
    if check_dtype:
        _check_dtype(actual, desired, where, inputs)
    a, d = np.asarray(to_numpy(actual)), np.asarray(to_numpy(desired))
    assert a.shape == d.shape, f"{where}: shape {a.shape} != {d.shape}{_describe(inputs)}"
    if tol is None:
        tol = lookup(name, dtype if dtype is not None else (dtype_of(desired) or d.dtype))
    if d.dtype.kind not in "fc" or tol.exact:
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
            f"{where}: max deviation {err.max():.3e} exceeds {tol.text()} ({tol.why}); worst: "
            f"actual {a64[fin][i]!r} desired {d64[fin][i]!r}{_describe(inputs)}")


def max_deviation(actual, desired) -> float:
    """Largest absolute difference over finite entries (0.0 for empty), for reports like audit."""
    actual, desired = to_numpy(actual), to_numpy(desired)
    if isinstance(desired, dict):
        if not isinstance(actual, dict) or set(actual) != set(desired):
            return float("inf")
        return max((max_deviation(actual[k], desired[k]) for k in desired), default=0.0)
    if isinstance(desired, (list, tuple)):
        return max((max_deviation(a, d) for a, d in zip(actual, desired)), default=0.0)
    if desired is None or isinstance(desired, str):  # labels in reports: equal or not
        return 0.0 if actual == desired else float("inf")
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    if a.shape != d.shape:
        return float("inf")
    fin = np.isfinite(a) & np.isfinite(d)
    if not np.array_equal(np.isnan(a), np.isnan(d)):
        return float("inf")
    return float(np.abs(a[fin] - d[fin]).max()) if fin.any() else 0.0
