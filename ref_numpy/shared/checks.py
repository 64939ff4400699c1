"""Argument checks on metadata, shared by the public functions of both sides.

Plain Python, no array math: every check takes a scalar, a string or a short sequence (a
threshold, a count, a box-format name, an image size), returns it normalised (a Python ``float``,
``int`` or tuple) and raises ``ValueError`` naming the argument, what was expected and what came.
Array checks (shape, dtype, finiteness of a whole array) are mirrored instead: ``as_array`` /
``check_boxes`` in :mod:`ref_numpy._validate`, ``as_tensor`` / ``check_boxes`` in
:mod:`torch_impl._validate`.

Only public functions call these (validate at the boundary; inner helpers trust their inputs).
Bools are refused wherever a number is expected (``True`` is an ``int`` in Python).

=====================  ===========================================  ===========================
check                  accepts                                      returns
=====================  ===========================================  ===========================
check_format           one of ``FORMATS``                           the name
check_same_length      two sized objects of one length              None
check_image_size       (height, width), both finite and > 0         ``tuple(size)`` unchanged
check_eps              a finite real number >= 0                    float
check_reduction        one of ``REDUCTIONS``                        the name
check_real             anything ``float()`` accepts                 float
check_unit             a real number in [0, 1]                      float
check_positive         a finite real number > 0                     float
check_finite_real      a finite real number                         float
check_count            an integer >= ``minimum`` (default 0)        int
check_axis             an integer axis in [-ndim, ndim)             int
check_sizes            a sequence of (ny, nx) integer pairs >= 1    list of (int, int)
check_yolo_version     ``"v5"`` or ``"v8"``                         True when rows carry
                                                                    an objectness column (v5)
check_ultralytics_version  one of ``ULTRALYTICS_VERSIONS`` (or of   the value
                       ``allowed``)
check_tal_version      a TAL ``version`` and model ``strides``      8.4's ``stride_val`` or None
=====================  ===========================================  ===========================
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, Sized

from ref_numpy.shared.constants import (FORMATS, REDUCTIONS, TAL_VERSIONS, ULTRALYTICS_RELEASES,
                                        ULTRALYTICS_VERSIONS)

__all__ = [
    "check_axis", "check_count", "check_eps", "check_finite_real", "check_format", "check_image_size",
    "check_positive", "check_real", "check_reduction", "check_same_length", "check_sizes",
    "check_strides",
    "check_unit", "check_yolo_version",
    "check_number", "check_same_params", "check_sequence", "check_state_keys", "check_state_lengths",
    "element_error", "format_index", "read_finite_message",
    "EXPECTED_FLAG", "EXPECTED_LABEL", "MAX_CLASS_LABEL", "expected_index", "expected_label",
]

#: Largest class label the array APIs accept (labels are multiplied by an image count to form
#: group keys; this bound keeps every such key exact in int64 and in float64).
MAX_CLASS_LABEL = 2 ** 31 - 1
#: What a class label is (every array API of ``metrics``): an integer, as the class indices of
#: YOLOv5 v7.0, Ultralytics 8.3 / 8.4 and VOC are; a float array is accepted when every value is a whole number.
EXPECTED_LABEL = f"a class label (an integer in [0, {MAX_CLASS_LABEL}])"
#: What a flag is (iscrowd, difficult, a true-positive mark): a bool, or the number 0 or 1.
EXPECTED_FLAG = "a flag (bool, 0 or 1)"


def _is_real(value: Any) -> bool:
    """A real number that is not a bool (NumPy scalars included; 0-d arrays and tensors not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and type(value).__name__ != "bool_"


def check_format(name: str, fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS` (``"xyxy"``, ``"xywh"``, ``"cxcywh"``)."""
    if fmt not in FORMATS:
        raise ValueError(f"{name}: unknown box format {fmt!r}, expected one of {FORMATS}")
    return fmt


def check_same_length(name_a: str, a: Sized, name_b: str, b: Sized) -> None:
    """Raise unless ``len(a) == len(b)`` (the leading dimension of two arrays)."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b}: lengths differ ({len(a)} vs {len(b)})")


def check_image_size(name: str, size: Sequence) -> tuple:
    """``size`` as a tuple (height, width), both finite and > 0; the values are not converted
    (integer sizes stay integers, so integer boxes clip as torchvision does)."""
    try:
        h, w = (float(v) for v in size)
    except Exception as exc:  # noqa: BLE001 - anything that is not two numbers is a bad argument
        raise ValueError(f"{name}: expected (height, width), got {size!r}") from exc
    if not (math.isfinite(h) and math.isfinite(w) and h > 0 and w > 0):
        raise ValueError(f"{name}: expected positive finite (height, width), got {size!r}")
    return tuple(size)


def check_eps(eps: Any, name: str = "eps") -> float:
    """``eps`` as a float: a finite real number >= 0 (the stabiliser of an IoU or a division)."""
    if not _is_real(eps) or not math.isfinite(float(eps)) or eps < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {eps!r}")
    return float(eps)


def check_reduction(reduction: str, name: str = "reduction") -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS` (``"none"``, ``"mean"``, ``"sum"``)."""
    if reduction not in REDUCTIONS:  # torchvision's wording ("Invalid Value for arg ...")
        raise ValueError(f"{name}: Invalid Value for arg '{name}': {reduction!r}; supported "
                         f"reduction modes: {', '.join(map(repr, REDUCTIONS))}")
    return reduction


def check_real(name: str, value: Any) -> float:
    """``float(value)``: any real number, NaN and inf included (a threshold compared with ``>``,
    as torchvision's ``nms`` does, where NaN keeps nothing suppressed)."""
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real number, got {value!r}") from exc


def check_unit(name: str, value: Any) -> float:
    """``float(value)`` in [0, 1] (a confidence or IoU threshold of YOLO post-processing)."""
    value = check_real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a value in [0, 1], got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float: a finite real number > 0 (a size, a ratio threshold)."""
    if not _is_real(value) or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def check_strides(strides: Any, nl: int) -> list[float]:
    """``strides`` as ``nl`` Python floats, each finite and > 0 (pixels per cell of each level)."""
    try:
        s = [float(v) for v in strides]
    except Exception as exc:  # noqa: BLE001 - anything unconvertible is a bad argument
        raise ValueError(f"strides: expected {nl} positive numbers, got {strides!r}") from exc
    if len(s) != nl or not all(v > 0 and math.isfinite(v) for v in s):
        raise ValueError(f"strides: expected {nl} positive numbers, got {strides!r}")
    return s


def check_finite_real(name: str, value: Any) -> float:
    """``value`` as a Python float: a finite real number (weakly typed: added to an array, it
    keeps the array's dtype)."""
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: expected a finite scalar, got {value!r}")
    return float(value)


def check_axis(dim: Any, ndim: int, of: str, name: str = "dim") -> int:
    """``dim`` as an int: an integer axis in ``[-ndim, ndim)`` of the array named ``of``."""
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool) or not -ndim <= dim < ndim:
        raise ValueError(f"{name}: expected an axis of {of} (ndim {ndim}), got {dim!r}")
    return int(dim)


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int: a Python or NumPy integer >= ``minimum`` (bools refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) \
            or type(value).__name__ == "bool_" or value < minimum:
        expected = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def check_sizes(name: str, sizes: Any) -> list:
    """Feature-map sizes: a sequence of ``(ny, nx)`` pairs of integers >= 1, as a list of
    ``(int, int)`` tuples (one per level)."""
    try:
        pairs = [tuple(p) for p in sizes]
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of (ny, nx) pairs, got {sizes!r}") from None
    if not all(len(p) == 2 for p in pairs):
        raise ValueError(f"{name}: expected (ny, nx) pairs, got {sizes!r}")
    return [(check_count(f"{name}[{i}][0]", ny, 1), check_count(f"{name}[{i}][1]", nx, 1))
            for i, (ny, nx) in enumerate(pairs)]


def check_yolo_version(version: str, name: str = "version") -> bool:
    """``"v5"`` or ``"v8"`` (the layout of raw prediction rows); True for v5, whose rows carry an
    objectness column (``[x, y, w, h, obj, cls...]``), False for v8 (``[x, y, w, h, cls...]``)."""
    if version not in ("v5", "v8"):
        raise ValueError(f"{name}: expected 'v5' or 'v8', got {version!r}")
    return version == "v5"


def check_ultralytics_version(version: Any, name: str = "version",
                              allowed: Sequence[str] = ULTRALYTICS_VERSIONS) -> str:
    """``version`` of an Ultralytics-compatible function (ULTRALYTICS_VERSIONS): one of ``allowed``
    (default all of them: "yolov5" = YOLOv5 v7.0, "8.3" = ultralytics 8.3.253, "8.4" =
    ultralytics 8.4.190); a function without a YOLOv5 counterpart passes ``("8.3", "8.4")``."""
    if not isinstance(version, str) or version not in allowed:
        names = ", ".join(f"{v!r} ({ULTRALYTICS_RELEASES[v]})" for v in allowed)
        raise ValueError(f"{name}: expected one of {names}, got {version!r}")
    return version


def format_index(index: Any) -> str:
    """``3`` for a flat index, ``3, 1`` for a tuple, a str as it is (``"3, 0:4"``): the
    subscript of a message."""
    if isinstance(index, str):
        return index
    if isinstance(index, tuple):
        return ", ".join(str(int(i)) for i in index)
    return str(int(index))


def _scalar(value: Any) -> Any:
    """A Python number for a message (``1.5``, ``nan``, ``7``), whatever array it came from;
    a short list for a row (a box)."""
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f
    return value


def element_error(name: str, index: Any, value: Any, expected: str) -> ValueError:
    """The error for one bad element: ``name[index]: expected <expected>, got <value>``.

    ``index`` is the position of the first offending element (a flat int or a tuple), ``value``
    its value (a number, or a list for a row); integral floats print as integers, so both sides
    (float64 NumPy, any torch dtype) give the same text."""
    return ValueError(f"{name}[{format_index(index)}]: expected {expected}, got {_scalar(value)!r}")


def read_finite_message(name: str, what: str, index: tuple[int, ...], value: Any) -> str:
    """The message for a NaN / inf a loss reads: ``name: expected finite values where the loss
    reads them, got <value> at name[index] (<what>)``, the same text on both sides."""
    return (f"{name}: expected finite values where the loss reads them, got {float(value)} at "
            f"{name}[{format_index(index)}] ({what})")


def expected_label(nc: int | None = None) -> str:
    """:data:`EXPECTED_LABEL`, or the phrase for a label that indexes ``nc`` classes."""
    if nc is None:
        return EXPECTED_LABEL
    return f"a class label (an integer in [0, {nc - 1}], nc = {nc})" if nc > 0 else \
        "no class label (nc = 0)"


def expected_index(n: int, of: str) -> str:
    """The phrase for an index into ``n`` things named ``of`` (e.g. images of ``gt_boxes``)."""
    return f"an index into {of} (an integer in [0, {n - 1}])" if n > 0 else f"no index ({of} is empty)"


def check_state_keys(name: str, state: Any, required: Sequence[str]) -> Any:
    """``state`` if it is a mapping holding exactly the keys ``required`` (a
    ``DetectionEvaluator.state()`` dict); else ``ValueError`` listing the missing and the
    unexpected keys."""
    if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
        raise ValueError(f"{name}: expected a DetectionEvaluator or its state() dict, got "
                         f"{type(state).__name__}")
    keys = set(state.keys())
    missing = [k for k in required if k not in keys]
    extra = sorted(str(k) for k in keys if k not in set(required))
    if missing or extra:
        parts = ([f"missing keys {missing}"] if missing else []) + \
                ([f"unexpected keys {extra}"] if extra else [])
        raise ValueError(f"{name}: not a DetectionEvaluator state: {', '.join(parts)}")
    return state


def _plain(value: Any) -> Any:
    """Nested Python floats of a parameter (array, tensor, tuple or list), for comparison."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value)


def check_same_params(name: str, mine: dict, theirs: dict) -> None:
    """Raise unless the evaluation parameters ``theirs`` (``iou_thrs``, ``area_rng``,
    ``max_dets``, ...) equal ``mine`` value for value: states computed under other thresholds,
    area ranges or detection limits cannot be merged (their matches would mean something else)."""
    for key, value in mine.items():
        try:
            other = _plain(theirs[key])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}[{key!r}]: expected evaluation parameters, got "
                             f"{theirs[key]!r}") from exc
        if _plain(value) != other:
            raise ValueError(f"{name}[{key!r}]: cannot merge a state evaluated with {key}={other} into "
                             f"an evaluator with {key}={_plain(value)}")


def check_state_lengths(name: str, lengths: dict, groups: Sequence[Sequence[str]]) -> None:
    """Raise unless, within each group of keys, every array has the same length (a ragged
    state: e.g. 5 detection boxes but 4 scores)."""
    for group in groups:
        sizes = {k: int(lengths[k]) for k in group}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"{name}: ragged state, lengths differ: "
                             + ", ".join(f"{k} {v}" for k, v in sizes.items()))


def check_sequence(name: str, seq: Any) -> Any:
    """``seq`` if it is a sequence of per-image arrays (a list, a tuple, an array or tensor
    with a leading image axis); a str, a mapping, a scalar or None is refused."""
    if isinstance(seq, (str, bytes)) or hasattr(seq, "keys") or not hasattr(seq, "__len__") \
            or not hasattr(seq, "__getitem__") or getattr(seq, "ndim", 1) == 0:
        raise ValueError(f"{name}: expected a sequence of per-image arrays, got {type(seq).__name__}")
    return seq


def check_tal_version(version: Any, strides: Any) -> float | None:
    """``version`` of a task-aligned assigner (one of ``TAL_VERSIONS``: YOLOv5 v7.0 has none)
    and the model ``strides`` (positive numbers, at least one); returns ultralytics 8.4.190's
    ``stride_val`` (``strides[1]``, ``strides[0]`` for one level) for '8.4', None for '8.3'."""
    if version == "yolov5":
        raise ValueError("version: 'yolov5' (yolov5 v7.0) has no task-aligned assigner (its "
                         "assignment is yolov5_build_targets); expected '8.3' or '8.4'")
    check_ultralytics_version(version, allowed=TAL_VERSIONS)
    try:
        n = len(strides)
    except TypeError:
        n = 1
    s = check_strides(strides, max(n, 1))
    return None if version == "8.3" else (s[1] if len(s) > 1 else s[0])


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    """``value`` as a float: a real number (not a bool, a string or NaN; +-inf allowed, e.g. a
    confidence threshold of -inf keeps everything), within ``[lo, hi]`` when given."""
    if not _is_real(value) and not (hasattr(value, "ndim") and getattr(value, "ndim") == 0
                                    and hasattr(value, "item") and _is_real(value.item())):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name}: expected a number, got nan")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {value!r}")
    return v
