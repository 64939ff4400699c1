"""Array checks at the boundary of the public functions of :mod:`ref_numpy` (private).

NumPy only; the port mirrors them in :mod:`torch_impl._validate` (``as_tensor``, ``check_boxes``)
and never imports this module. Checks on metadata (formats, lengths, sizes, thresholds) are
shared by both sides from :mod:`ref_numpy.shared.checks`; they are re-exported here for the
reference's modules that still import them from this place.

Every check raises ``ValueError`` naming the argument, what was expected and what came.
Inner helpers trust their inputs; only public functions call these.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy.shared.checks import check_format, check_image_size, check_same_length  # noqa: F401
from ref_numpy.shared.checks import (EXPECTED_FLAG, MAX_CLASS_LABEL, element_error, expected_index,
                                     expected_label, format_index)
from ref_numpy.shared.constants import FORMATS  # noqa: F401


def as_array(name: str, x: ArrayLike, *, last_dim: int | None = None, ndim: int | None = None, finite: bool = False,
             floating: bool = False) -> np.ndarray:
    """``x`` as an ndarray, checked: trailing dimension, rank, finiteness, floating dtype."""
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - anything unconvertible is a bad argument
        raise ValueError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from exc
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if floating and a.dtype.kind != "f":
        a = a.astype(np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    if last_dim is not None and (a.ndim == 0 or a.shape[-1] != last_dim):
        raise ValueError(f"{name}: expected shape [..., {last_dim}], got {a.shape}")
    if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return a


def check_boxes(name: str, boxes: ArrayLike, *, ndim: int | None = None, finite: bool = True) -> np.ndarray:
    """Boxes ``[..., 4]`` (``ndim`` fixes the rank), numeric (not bool), finite unless ``finite=False``."""
    a = as_array(name, boxes, last_dim=4, ndim=ndim, finite=finite)
    if a.dtype.kind == "b":
        raise ValueError(f"{name}: expected a numeric array, got dtype bool")
    return a



# ---------------------------------------------------------------------------- element-wise checks
# Each finds the FIRST offending element (in C order) and raises the shared message
# (ref_numpy.shared.checks.element_error): the argument, the element's index, its value and what
# was expected. torch_impl._validate mirrors them name for name, with the same messages.


def _first_bad(bad: np.ndarray):
    """The C-order index of the first True of ``bad``: an int for 1-D, a tuple otherwise."""
    flat = int(np.argmax(bad.reshape(-1)))
    return flat if bad.ndim == 1 else tuple(int(i) for i in np.unravel_index(flat, bad.shape))


def _raise_first(name: str, a: np.ndarray, bad: np.ndarray, expected: str, suffix: str = "") -> None:
    if bad.size and bad.any():
        idx = _first_bad(bad)
        index = f"{idx}{suffix}" if suffix else idx
        raise element_error(name, index, a[idx].item(), expected)


def _integer_valued(name: str, x: ArrayLike, ndim: int | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(array, bad mask of the elements that are not whole numbers); bools refused."""
    a = as_array(name, x, ndim=ndim)
    if a.dtype.kind == "b":
        raise ValueError(f"{name}: expected {what}, got dtype bool")
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return a, ~np.isfinite(a) | (a != np.floor(a))
    return a, np.zeros(a.shape, bool)


def check_labels(name: str, x: ArrayLike, *, nc: int | None = None, ndim: int | None = 1,
                 suffix: str = "") -> np.ndarray:
    """Class labels as int64: whole numbers (an integer dtype, or floats with integral values;
    NaN, inf, 1.5 and bools refused) in ``[0, nc)`` (``[0, MAX_CLASS_LABEL]`` without ``nc``).
    ``suffix`` is appended to the row index in the message (``", 5"``: column 5 of a table)."""
    a, bad = _integer_valued(name, x, ndim, "class labels (integers)")
    hi = MAX_CLASS_LABEL if nc is None else nc - 1
    with np.errstate(invalid="ignore"):
        bad = bad | (a < 0) | (a > hi)
    _raise_first(name, a, bad, expected_label(nc), suffix)
    return a.astype(np.int64)


def check_indices(name: str, x: ArrayLike, n: int, of: str, *, ndim: int | None = 1) -> np.ndarray:
    """Indices into ``n`` things (``of`` names them) as int64: whole numbers in ``[0, n)``."""
    a, bad = _integer_valued(name, x, ndim, "indices (integers)")
    with np.errstate(invalid="ignore"):
        bad = bad | (a < 0) | (a > n - 1)
    _raise_first(name, a, bad, expected_index(n, of))
    return a.astype(np.int64)


def check_flags(name: str, x: ArrayLike, *, ndim: int | None = 1) -> np.ndarray:
    """0/1 flags as bool: a bool array, or numbers each exactly 0 or 1 (2, 0.5, NaN refused)."""
    a = as_array(name, x, ndim=ndim)
    if a.dtype.kind == "b":
        return a
    with np.errstate(invalid="ignore"):
        _raise_first(name, a, ~((a == 0) | (a == 1)), EXPECTED_FLAG)
    return a != 0


def check_box_order(name: str, boxes: np.ndarray, fmt: str = "xyxy", suffix: str = "") -> None:
    """Rows of checked boxes ``[N, 4]`` with ``x1 <= x2 and y1 <= y2`` (``fmt="xyxy"``) or
    ``w >= 0 and h >= 0`` (``"xywh"``): zero-size boxes pass, inverted ones are refused."""
    if fmt == "xyxy":
        bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
        expected = "a box with x1 <= x2 and y1 <= y2 (xyxy)"
    else:
        bad = (boxes[..., 2] < 0) | (boxes[..., 3] < 0)
        expected = "a box with w >= 0 and h >= 0 (xywh)"
    if bad.size and bad.any():
        idx = _first_bad(bad)
        raise element_error(name, f"{format_index(idx)}{suffix}", boxes[idx].tolist(), expected)


def check_nonnegative(name: str, x: np.ndarray) -> None:
    """Every element a number >= 0 (NaN refused; an area, a size)."""
    with np.errstate(invalid="ignore"):
        _raise_first(name, x, ~(x >= 0), "a number >= 0")


def check_unit_interval(name: str, x: np.ndarray) -> None:
    """Every element in [0, 1] (NaN refused; a recall, a precision, an IoU threshold)."""
    with np.errstate(invalid="ignore"):
        _raise_first(name, x, ~((x >= 0) & (x <= 1)), "a value in [0, 1]")


def check_nondecreasing(name: str, x: np.ndarray) -> None:
    """A 1-D array with ``x[i] >= x[i - 1]`` (a recall curve in confidence order)."""
    bad = np.zeros(x.shape, bool)
    bad[1:] = x[1:] < x[:-1]
    if bad.any():
        i = _first_bad(bad)
        raise element_error(name, i, x[i].item(), f"a non-decreasing sequence (>= {name}[{i - 1}] = "
                            f"{x[i - 1].item()!r})")
