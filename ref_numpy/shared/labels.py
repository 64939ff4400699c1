"""The number grammar of YOLO label files, shared by every reader of them
(:func:`ref_numpy.formats.read_yolo`, :func:`ref_numpy.shared.datayaml.read_yolo_images` and
``torch_impl.data.DetectionDataset``).

A label token is a plain ASCII decimal number: an optional sign, digits with an optional point
and an optional exponent (``1``, ``0.5``, ``.5``, ``5e-1``, ``+1.``), or ``nan`` / ``inf``
(which the readers then reject as non-finite, with that message). Python's ``float()`` accepts
more, and each extra is a silent wrong answer in a label file: underscores between digits
(``1_0`` is 10), non-ASCII digits (``١`` is 1) and surrounding whitespace. Ultralytics 8.3 / 8.4 and
yolov5 v7.0 parse labels with ``np.array(..., dtype=np.float32)``, which accepts ``1_0`` as 10;
here it is an error naming the file and line (an intentional difference).

Plain Python, no arrays.
"""
from __future__ import annotations

import re

__all__ = ["LABEL_NUMBER", "parse_label_number"]

LABEL_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.ASCII | re.IGNORECASE)
"""What a token of a YOLO label line may be (matched in full)."""


def parse_label_number(token: str, where: str) -> float:
    """``float(token)`` for a token of :data:`LABEL_NUMBER`.

    Args:
        token (str): one whitespace-separated field of a label line.
        where (str): ``"<file>:<line>"``, the prefix of the error.

    Returns:
        float: the value (``nan`` / ``inf`` pass; the callers reject them with their own
        message).

    Raises:
        ValueError: ``"<file>:<line>: expected a decimal number, got '1_0'"``.
    """
    if not isinstance(token, str) or LABEL_NUMBER.fullmatch(token) is None:
        raise ValueError(f"{where}: expected a decimal number, got {token!r}")
    return float(token)
