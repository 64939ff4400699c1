"""Tensor checks at the boundary of the public functions of :mod:`torch_impl` (private).

The twin of :mod:`ref_numpy._validate` (same checks, same messages), written for tensors; it
does not import that module. Finiteness checks synchronise with the device; they run once per
public call, never inside loops. Checks on metadata come from :mod:`ref_numpy.shared.checks`.
"""
from __future__ import annotations

import numpy as np
import torch

from torch_impl._typing import TensorLike
# Checks on metadata (formats, lengths, sizes) need no tensor math: one definition serves both sides.
from ref_numpy.shared.checks import check_format, check_image_size, check_same_length  # noqa: F401
from ref_numpy.shared.checks import (EXPECTED_FLAG, MAX_CLASS_LABEL, element_error, expected_index,
                                     expected_label, format_index)
from ref_numpy.shared.constants import FORMATS  # noqa: F401


def as_tensor(name: str, x: TensorLike, *, last_dim: int | None = None, ndim: int | None = None, finite: bool = False,
              floating: bool = False, device: torch.device | str | None = None) -> torch.Tensor:
    """``x`` as a tensor (NumPy and sequences accepted), checked like ``ref_numpy``'s ``as_array``."""
    if not isinstance(x, torch.Tensor):
        # Through NumPy, so that Python lists get NumPy's dtypes (float64, int64) as in ref_numpy.
        try:
            a = np.asarray(x)
            # a C-contiguous copy if needed; np.ascontiguousarray would make a 0-d array 1-d
            x = torch.from_numpy(a if a.flags.c_contiguous else a.copy(order="C")).to(device)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{name}: expected a tensor, got {type(x).__name__} ({exc})") from exc
    if x.is_complex():
        raise ValueError(f"{name}: expected a numeric tensor, got dtype {x.dtype}")
    if floating and not x.is_floating_point():
        x = x.to(torch.float64)  # as ref_numpy's as_array: integers and bools become float64
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    if last_dim is not None and (x.ndim == 0 or x.shape[-1] != last_dim):
        raise ValueError(f"{name}: expected shape [..., {last_dim}], got {tuple(x.shape)}")
    if finite and x.is_floating_point() and x.numel() and not _all_finite(x):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return x


def _all_finite(x: torch.Tensor) -> bool:
    """One reduction instead of an element-wise mask: min/max propagate NaN and expose +-inf
    (about 20x faster than ``isfinite(x).all()`` on large CPU tensors)."""
    lo, hi = torch.aminmax(x.detach())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def check_boxes(name: str, boxes: TensorLike, *, ndim: int | None = None, finite: bool = True) -> torch.Tensor:
    """Boxes ``[..., 4]`` (``ndim`` fixes the rank), numeric (not bool), finite unless ``finite=False``."""
    t = as_tensor(name, boxes, last_dim=4, ndim=ndim, finite=finite)
    if t.dtype == torch.bool:
        raise ValueError(f"{name}: expected a numeric array, got dtype bool")
    return t


# ---------------------------------------------------------------------------- element-wise checks
# The twins of ref_numpy._validate's element checks: the first offending element (C order), the
# shared message (ref_numpy.shared.checks.element_error). One synchronisation per check.


def _first_bad(bad: torch.Tensor):
    """The C-order index of the first True of ``bad``: an int for 1-D, a tuple otherwise."""
    flat = int(torch.argmax(bad.reshape(-1).to(torch.uint8)))
    return flat if bad.ndim == 1 else tuple(int(i) for i in np.unravel_index(flat, tuple(bad.shape)))


def _raise_first(name: str, t: torch.Tensor, bad: torch.Tensor, expected: str, suffix: str = "") -> None:
    if bad.numel() and bool(bad.any()):
        idx = _first_bad(bad)
        index = f"{idx}{suffix}" if suffix else idx
        raise element_error(name, index, t[idx].item(), expected)


def _integer_valued(name: str, x: TensorLike, ndim: int | None, what: str,
                    device) -> tuple[torch.Tensor, torch.Tensor]:
    """(tensor, bad mask of the elements that are not whole numbers); bools refused."""
    t = as_tensor(name, x, ndim=ndim, device=device)
    if t.dtype == torch.bool:
        raise ValueError(f"{name}: expected {what}, got dtype bool")
    if t.is_floating_point():
        t = t.to(torch.float64)  # compared with the bounds exactly, as NumPy's float64
        return t, ~torch.isfinite(t) | (t != torch.floor(t))
    return t, torch.zeros(t.shape, dtype=torch.bool, device=t.device)


def check_labels(name: str, x: TensorLike, *, nc: int | None = None, ndim: int | None = 1,
                 suffix: str = "", device: torch.device | str | None = None) -> torch.Tensor:
    """Class labels as int64 (see ``ref_numpy._validate.check_labels``)."""
    t, bad = _integer_valued(name, x, ndim, "class labels (integers)", device)
    hi = MAX_CLASS_LABEL if nc is None else nc - 1
    bad = bad | (t < 0) | (t > hi)
    _raise_first(name, t, bad, expected_label(nc), suffix)
    return t.to(torch.int64)


def check_indices(name: str, x: TensorLike, n: int, of: str, *, ndim: int | None = 1,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Indices into ``n`` things as int64 (see ``ref_numpy._validate.check_indices``)."""
    t, bad = _integer_valued(name, x, ndim, "indices (integers)", device)
    bad = bad | (t < 0) | (t > n - 1)
    _raise_first(name, t, bad, expected_index(n, of))
    return t.to(torch.int64)


def check_flags(name: str, x: TensorLike, *, ndim: int | None = 1,
                device: torch.device | str | None = None) -> torch.Tensor:
    """0/1 flags as bool (see ``ref_numpy._validate.check_flags``)."""
    t = as_tensor(name, x, ndim=ndim, device=device)
    if t.dtype == torch.bool:
        return t
    _raise_first(name, t, ~((t == 0) | (t == 1)), EXPECTED_FLAG)
    return t != 0


def check_box_order(name: str, boxes: torch.Tensor, fmt: str = "xyxy", suffix: str = "") -> None:
    """``x1 <= x2 and y1 <= y2`` (xyxy) or ``w, h >= 0`` (xywh) per row (see the reference)."""
    if fmt == "xyxy":
        bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
        expected = "a box with x1 <= x2 and y1 <= y2 (xyxy)"
    else:
        bad = (boxes[..., 2] < 0) | (boxes[..., 3] < 0)
        expected = "a box with w >= 0 and h >= 0 (xywh)"
    if bad.numel() and bool(bad.any()):
        idx = _first_bad(bad)
        raise element_error(name, f"{format_index(idx)}{suffix}", boxes[idx].tolist(), expected)


def check_nonnegative(name: str, x: torch.Tensor) -> None:
    """Every element a number >= 0 (NaN refused)."""
    _raise_first(name, x, ~(x >= 0), "a number >= 0")


def check_unit_interval(name: str, x: torch.Tensor) -> None:
    """Every element in [0, 1] (NaN refused)."""
    _raise_first(name, x, ~((x >= 0) & (x <= 1)), "a value in [0, 1]")


def check_nondecreasing(name: str, x: torch.Tensor) -> None:
    """A 1-D tensor with ``x[i] >= x[i - 1]``."""
    bad = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    bad[1:] = x[1:] < x[:-1]
    if bool(bad.any()):
        i = _first_bad(bad)
        raise element_error(name, i, x[i].item(), f"a non-decreasing sequence (>= {name}[{i - 1}] = "
                            f"{x[i - 1].item()!r})")
