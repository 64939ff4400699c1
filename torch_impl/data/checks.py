"""Argument checks of the data pipeline, for NumPy inputs (the transforms work on ndarrays).

The checks are the port's own (:mod:`torch_impl._validate`, the twin of the reference's, same
messages); the results come back as ndarrays. ``check_image_size`` and ``check_same_length``
are the shared plain-Python checks of :mod:`ref_numpy.shared.checks`.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy.shared.checks import check_image_size, check_same_length
from torch_impl import _validate as _port

__all__ = ["as_array", "check_boxes", "check_image_size", "check_same_length"]


def _numeric(name: str, x) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - anything unconvertible is a bad argument
        raise ValueError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from exc
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return a


def as_array(name: str, x: ArrayLike, *, last_dim: int | None = None, ndim: int | None = None,
             finite: bool = False, floating: bool = False) -> np.ndarray:
    """``x`` as an ndarray, checked as :func:`torch_impl._validate.as_tensor` checks it
    (trailing dimension, rank, finiteness; ``floating`` turns integers and bools into float64).

    Raises:
        ValueError: ``"<name>: expected ..."``.
    """
    t = _port.as_tensor(name, _numeric(name, x), last_dim=last_dim, ndim=ndim, finite=finite,
                        floating=floating)
    return t.numpy()


def check_boxes(name: str, boxes: ArrayLike, *, ndim: int | None = None, finite: bool = True) -> np.ndarray:
    """Boxes ``[..., 4]`` as an ndarray (``ndim`` fixes the rank), numeric (not bool), finite
    unless ``finite=False`` (:func:`torch_impl._validate.check_boxes`).

    Raises:
        ValueError: ``"<name>: expected ..."``.
    """
    return _port.check_boxes(name, _numeric(name, boxes), ndim=ndim, finite=finite).numpy()
