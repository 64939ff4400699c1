"""The random numbers of autoanchor, drawn once, by NumPy, for both sides.

The one exception to "no array math" in :mod:`ref_numpy.shared`: what is *random* in YOLOv5's
autoanchor is drawn here from an explicit ``numpy.random.Generator``, in YOLOv5's order, and the
k-means initialisation is scipy's. Both :mod:`ref_numpy.anchors` and :mod:`torch_impl.anchors`
consume these draws (the port moves them to its device), so that for one seed both return the
same anchors. What follows the draws (ratio metric, fitness, mutation, acceptance) is mirrored,
not shared; registry rows of ``anchors`` that depend on these draws compare two sides that
share their random numbers, by design.
"""
from __future__ import annotations

import inspect

import numpy as np

from ref_numpy.shared.constants import KMEANS_ITER

__all__ = ["anchor_initial", "anchor_mutation_draws", "anchor_scale_draws"]


def anchor_scale_draws(rng: np.random.Generator, m: int) -> np.ndarray:
    """YOLOv5's per-image scale augmentation factors ``float64 [m, 1]`` in [0.9, 1.1)
    (``utils/autoanchor.py``: ``np.random.uniform(0.9, 1.1, size=(shapes.shape[0], 1))``)."""
    return rng.uniform(0.9, 1.1, size=(m, 1))


def anchor_initial(wh: np.ndarray, n: int, img_size: float, rng: np.random.Generator) -> tuple:
    """YOLOv5's initial anchors: k-means on whitened sizes, else random.

    Args:
        wh (ndarray[N, 2]): label sizes in pixels (already filtered), positive.
        n (int): number of anchors, >= 1.
        img_size (float): image side in pixels (scale of the random fallback).
        rng (numpy.random.Generator): the run's generator (consumed).

    Returns:
        (ndarray float64 [n, 2] unsorted, ``"kmeans"`` | ``"random"``).

    Convention: ``scipy.cluster.vq.kmeans(wh / std, n, iter=30)`` times ``std``, computed in
    float64 (upstream: float32). Upstream falls back to ``sort(rand(2n)).reshape(n, 2) *
    img_size`` when k-means fails: fewer labels than anchors, k-means returning fewer than n
    centroids (duplicate sizes), or an error (a zero std makes the whitened sizes non-finite).
    The same cases here, tested before calling scipy instead of catching its error. Which points
    k-means starts from is scipy's business: anchors for a seed may change with scipy's version.
    """
    from scipy.cluster.vq import kmeans

    # scipy >= 1.15 calls the generator argument ``rng``, older versions ``seed``.
    rng_kw = "rng" if "rng" in inspect.signature(kmeans).parameters else "seed"
    wh = wh.astype(np.float64)
    s = wh.std(0)
    if n <= wh.shape[0] and np.all(s > 0):
        k = kmeans(wh / s, n, iter=KMEANS_ITER, **{rng_kw: rng})[0] * s
        if k.shape[0] == n:
            return k, "kmeans"
    return np.sort(rng.random(n * 2)).reshape(n, 2) * img_size, "random"


def anchor_mutation_draws(rng: np.random.Generator, shape: tuple) -> tuple:
    """One generation's random numbers, in YOLOv5's order: mask uniforms ``[n, 2]``, one scale
    uniform (a float), normal deviates ``[n, 2]`` (all float64)."""
    return rng.random(shape), rng.random(), rng.standard_normal(shape)
