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
=====================  ===========================================  ===========================
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, Sized

from ref_numpy.shared.constants import FORMATS, REDUCTIONS

__all__ = [
    "check_axis", "check_count", "check_eps", "check_finite_real", "check_format", "check_image_size",
    "check_positive", "check_real", "check_reduction", "check_same_length", "check_sizes",
    "check_strides",
    "check_unit", "check_yolo_version",
]


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
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: expected one of {REDUCTIONS}, got {reduction!r}")
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
