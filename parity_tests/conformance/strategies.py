"""Input regimes users hit, as seeded NumPy generators (the conformance kit's strategies).

Every generator takes a ``numpy.random.Generator`` and returns float64 arrays valid by
construction (xyxy with ``x1 < x2``, ``y1 < y2`` unless the regime is about degenerate boxes).
Regimes: ordinary pixel boxes, clustered (heavy overlap), normalised ([0, 1]), tiny (2^-16) and
huge (2^16) scales, integer pixels, exact score ties, identical boxes, zero-area boxes, diagonal
disjoint pairs, pairs at IoU exactly equal to a threshold, NaN scores, empty inputs.
"""
from __future__ import annotations

import numpy as np

SCALES = {"pixels": 640.0, "normalised": 1.0, "tiny": 2.0 ** -16, "huge": 2.0 ** 16}


def boxes(rng: np.random.Generator, n: int, scale: float = 640.0, min_size: float = 0.02,
          max_size: float = 0.5) -> np.ndarray:
    """``n`` valid xyxy boxes in ``[0, scale]``: top-left uniform, sizes a fraction of scale."""
    wh = rng.uniform(min_size, max_size, size=(n, 2)) * scale
    xy = rng.uniform(0, 1, size=(n, 2)) * (scale - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def clustered(rng: np.random.Generator, n: int, scale: float = 640.0) -> np.ndarray:
    """``n`` boxes jittered around one or two centres: many overlaps at every IoU."""
    k = rng.integers(1, 3)
    centres = rng.uniform(0.3, 0.7, size=(k, 2)) * scale
    c = centres[rng.integers(0, k, size=n)] + rng.normal(0, 0.05, size=(n, 2)) * scale
    wh = rng.uniform(0.1, 0.3, size=(n, 2)) * scale
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def integer_boxes(rng: np.random.Generator, n: int, scale: int = 64) -> np.ndarray:
    """Integer pixel coordinates (float64 dtype), sizes >= 1."""
    x1 = rng.integers(0, scale - 2, size=(n, 2))
    wh = rng.integers(1, scale // 2, size=(n, 2))
    return np.concatenate([x1, x1 + wh], axis=1).astype(np.float64)


def identical(rng: np.random.Generator, n: int, scale: float = 640.0) -> np.ndarray:
    return np.repeat(boxes(rng, 1, scale), n, axis=0)


def zero_area(rng: np.random.Generator, n: int, scale: float = 640.0) -> np.ndarray:
    """Boxes with zero width or zero height (points and lines)."""
    b = boxes(rng, n, scale)
    kind = rng.integers(0, 3, size=n)
    b[kind == 0, 2] = b[kind == 0, 0]
    b[kind == 1, 3] = b[kind == 1, 1]
    b[kind == 2, 2:] = b[kind == 2, :2]
    return b


def diagonal_pair(rng: np.random.Generator, scale: float = 640.0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint boxes, one strictly below-right of the other (both overlaps negative)."""
    a = boxes(rng, 1, scale / 2, max_size=0.8)
    shift = rng.uniform(1.05, 1.5) * (a[0, 2:] - a[0, :2])
    return a, a + np.tile(shift, 2)


def scores(rng: np.random.Generator, n: int, ties: bool = False) -> np.ndarray:
    """Distinct scores in (0, 1), or scores drawn from a few values (exact ties)."""
    if ties:
        return rng.choice(np.array([0.25, 0.5, 0.75]), size=n)
    return rng.permutation(np.linspace(0.05, 0.95, n)) if n else np.zeros(0)


def at_threshold_pair(rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Two boxes and a threshold equal (in float64) to their IoU: ``>`` keeps both, ``>=`` not.

    Box A = [0, 0, w, 1], B = [s, 0, s + w, 1] with dyadic w, s: inter and union are exact, the
    IoU is the correctly rounded quotient; scaled by a power of two the IoU does not change."""
    w = float(rng.choice([2.0, 3.0, 4.0, 5.0]))
    s = float(rng.choice([0.5, 1.0, 1.5]))
    k = 2.0 ** int(rng.integers(-12, 13)) * scale
    b = np.array([[0, 0, w, 1], [s, 0, s + w, 1]], dtype=np.float64) * k
    off = rng.uniform(0, 100) * k
    b = b + np.array([off, off, off, off])
    inter = (w - s) * 1.0
    union = 2 * w - inter
    return b, inter / union


def thresholds(rng: np.random.Generator) -> float:
    return float(rng.choice([0.3, 0.45, 0.5, 0.6, 0.7]))


def convert_from_xyxy(b: np.ndarray, fmt: str) -> np.ndarray:
    """xyxy -> fmt (plain formulas; the regime generators' own helper)."""
    x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
    if fmt == "xyxy":
        return b.copy()
    if fmt == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)
