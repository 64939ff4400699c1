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

