"""YOLOv5 autoanchor: how well anchors fit a data set's label sizes, and k-means + genetic refits.

Convention: ultralytics/yolov5 v7.0 ``utils/autoanchor.py``. Every label is a width and height in
pixels at the training size (``wh [N, 2]``); anchors are widths and heights in pixels
(``anchors [..., 2]``, e.g. the [3, 3, 2] grid of a YOLOv5 model, flattened to [K, 2]).

The ratio metric of a label and an anchor is the worse of the two side ratios, folded into (0, 1]:
``r = wh / anchor``, ``x = min(r, 1/r).min(over w, h)``. It is what YOLOv5's ``build_targets``
matches on (a label trains an anchor iff ``max(r, 1/r).max() < anchor_t``, i.e. ``x > 1/anchor_t``
up to the strictness of the comparison), so:

- BPR (best possible recall) = the fraction of labels with ``max over anchors of x > 1/thr``;
- aat (anchors above threshold) = the mean, over labels, of the number of anchors with ``x > 1/thr``;
- fitness = ``mean(best * (best > 1/thr))``, ``best = x.max(over anchors)``.

Randomness: YOLOv5 draws from NumPy's global RNG and Python's ``random``. Here every draw comes
from one explicit ``numpy.random.Generator`` made by ``numpy.random.default_rng(seed)``, in a fixed
order (k-means' initial points, then for each generation: the mutation mask, the mutation scale,
the normal deviates). The procedure is YOLOv5's, but a given seed does NOT reproduce upstream's
anchors (different RNG streams). The port (``torch_impl.anchors``) consumes the same NumPy draws,
so reference and port return the same anchors for the same seed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array
from ref_numpy.shared.checks import check_count, check_finite_real, check_positive
# MUTATION_PROB (YOLOv5's mp), MUTATION_SIGMA (s), KMEANS_ITER, MIN_SIDE (labels with both sides
# < 2 px are left out of the fit), SMALL_SIDE (labels with a side < 3 px are counted): see there.
from ref_numpy.shared.constants import (  # noqa: F401 (public constants)
    KMEANS_ITER, MIN_SIDE, MUTATION_PROB, MUTATION_SIGMA, SMALL_SIDE, YOLOV5_ANCHOR_SIZES)
from ref_numpy.shared.draws import anchor_initial, anchor_mutation_draws, anchor_scale_draws

# YOLOv5 v7.0 default anchors (pixels at 640), P3/8, P4/16, P5/32: [3 levels, 3 anchors, (w, h)].
YOLOV5_ANCHORS = np.array(YOLOV5_ANCHOR_SIZES, dtype=np.float64)


# ----------------------------------------------------------------------------- validation

def _check_wh(name: str, wh) -> np.ndarray:
    """[N, 2] positive finite sizes, N >= 1, floating (integers become float64)."""
    a = as_array(name, wh, ndim=2, last_dim=2, finite=True, floating=True)
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one (w, h), got shape {a.shape}")
    if not np.all(a > 0):
        raise ValueError(f"{name}: expected positive sizes, got a minimum of {a.min()!r}")
    return a


def _check_anchors(name: str, anchors, dtype) -> np.ndarray:
    """[..., 2] positive finite anchors (at least one) as [K, 2] of ``dtype``."""
    a = as_array(name, anchors, last_dim=2, finite=True, floating=True)
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one anchor, got shape {a.shape}")
    if not np.all(a > 0):
        raise ValueError(f"{name}: expected positive sizes, got a minimum of {a.min()!r}")
    return a.reshape(-1, 2).astype(dtype, copy=False)


# ----------------------------------------------------------------------------- metric

def _ratio_metric(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """x [N, K]: ``min(r, 1/r)`` with ``r = wh / anchor``, worst of the two sides."""
    r = wh[:, None] / anchors[None]  # [N, K, 2]
    return np.minimum(r, 1 / r).min(-1)


def _fitness(wh: np.ndarray, anchors: np.ndarray, thr: float) -> np.ndarray:
    best = _ratio_metric(wh, anchors).max(1)  # [N]
    return (best * (best > 1 / thr)).mean()


def _bpr_aat(wh: np.ndarray, anchors: np.ndarray, thr: float) -> tuple:
    x = _ratio_metric(wh, anchors)  # [N, K]
    n = wh.dtype.type(wh.shape[0])
    above = x > 1 / thr
    bpr = above.any(1).sum(dtype=wh.dtype) / n  # best > 1/thr  <=>  some anchor > 1/thr
    aat = above.sum(dtype=wh.dtype) / n
    return bpr, aat


def anchor_metrics(wh: ArrayLike, anchors: ArrayLike, thr: float = 4.0) -> dict[str, np.ndarray]:
    """Best possible recall and anchors above threshold of ``anchors`` on label sizes ``wh``.

    Args:
        wh (ndarray[N, 2]): label widths and heights in pixels, positive, N >= 1.
        anchors (ndarray[..., 2]): anchor widths and heights in pixels, positive (any leading
            shape, e.g. YOLOv5's [levels, anchors, 2]; flattened).
        thr (float): YOLOv5's ``anchor_t`` (4.0): a label fits an anchor iff ``x > 1/thr``.

    Returns:
        dict: ``"bpr"`` (0-d, wh's dtype): fraction of labels whose best anchor has
        ``x > 1/thr``; ``"aat"`` (0-d): mean over labels of the number of anchors with
        ``x > 1/thr``. Both are counts divided by N, so exact at any dtype.

    Invariant: 0 <= bpr <= 1, 0 <= aat <= K, bpr <= aat; bpr == 1 when every label is itself an
    anchor. Convention: yolov5 v7.0 ``check_anchors.metric``, ``x = min(r, 1/r).min(2)``.

    Raises:
        ValueError: ``wh`` not [N, 2] with N >= 1, ``anchors`` not [..., 2], non-positive or
        non-finite sizes, ``thr`` not positive.
    """
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh.dtype)
    thr = check_positive("thr", thr)
    bpr, aat = _bpr_aat(wh, anchors, thr)
    return {"bpr": bpr, "aat": aat}


def check_anchors(wh: ArrayLike, anchors: ArrayLike, thr: float = 4.0, bpr_threshold: float = 0.98
                 ) -> tuple[bool, np.ndarray, np.ndarray]:
    """Whether YOLOv5 would refit ``anchors`` to labels ``wh`` (AutoAnchor's test).

    Args:
        wh (ndarray[N, 2]), anchors (ndarray[..., 2]), thr (float): as :func:`anchor_metrics`.
        bpr_threshold (float): YOLOv5's 0.98.

    Returns:
        tuple: ``(needs_refit, bpr, aat)``: ``needs_refit`` is a Python bool, True iff
        ``bpr <= bpr_threshold`` (v7.0 keeps the anchors when ``bpr > 0.98``, so a BPR of exactly
        0.98 refits); ``bpr``, ``aat`` as :func:`anchor_metrics`. The comparison is made at wh's
        dtype (0.98 rounded to float32 for float32 input).

    Convention: yolov5 v7.0 ``check_anchors`` (its scale augmentation is
    :func:`wh_from_labels`'s ``augment``).
    """
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh.dtype)
    thr = check_positive("thr", thr)
    check_finite_real("bpr_threshold", bpr_threshold)
    bpr, aat = _bpr_aat(wh, anchors, thr)
    return bool(bpr <= bpr_threshold), bpr, aat


def anchor_fitness(anchors: ArrayLike, wh: ArrayLike, thr: float = 4.0) -> np.ndarray:
    """YOLOv5's evolution fitness: ``mean(best * (best > 1/thr))``, ``best = x.max(over anchors)``.

    Args:
        anchors (ndarray[..., 2]): anchors in pixels, positive (cast to wh's dtype).
        wh (ndarray[N, 2]): label sizes in pixels, positive, N >= 1.
        thr (float): ``anchor_t``.

    Returns:
        ndarray (0-d, wh's dtype): in [0, 1]; 1 iff every label is exactly an anchor.

    Convention: yolov5 v7.0 ``kmean_anchors.anchor_fitness`` (upstream evaluates it in float32;
    here at wh's dtype).
    """
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh.dtype)
    thr = check_positive("thr", thr)
    return _fitness(wh, anchors, thr)


# ----------------------------------------------------------------------------- label sizes

def wh_from_labels(wh: ArrayLike, image_index: ArrayLike, shapes: ArrayLike, img_size: float = 640,
                   augment: bool = False, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Label sizes in pixels at the training size, from normalised YOLO labels.

    Each image is resized so that its longer side is ``img_size`` (YOLOv5's rect shapes,
    ``img_size * shapes / shapes.max(1)``) and a label's normalised (w, h) is multiplied by its
    image's resized (width, height).

    Args:
        wh (ndarray[N, 2]): normalised label widths and heights (YOLO txt columns 3 and 4), > 0.
        image_index (ndarray[N] of int): the row of ``shapes`` each label belongs to.
        shapes (ndarray[M, 2]): image (width, height) in pixels, > 0 (YOLOv5's
            ``dataset.shapes`` order).
        img_size (float): training size (long side), > 0.
        augment (bool): multiply each image's shape by ``uniform(0.9, 1.1)``, as upstream's
            ``check_anchors`` does; the M factors are drawn in image order from
            ``numpy.random.default_rng(seed)``.
        seed (int | numpy.random.Generator): used only with ``augment``.

    Returns:
        ndarray[N, 2]: pixel widths and heights (wh's floating dtype).

    Convention: yolov5 v7.0 ``check_anchors`` / ``kmean_anchors`` label sizes, op for op:
    ``(img_size * shapes) / max``, then ``* scale``, then ``wh * shape``.
    """
    wh = as_array("wh", wh, ndim=2, last_dim=2, finite=True, floating=True)
    if not np.all(wh > 0):
        raise ValueError(f"wh: expected positive normalised sizes, got a minimum of {wh.min()!r}")
    shapes = as_array("shapes", shapes, ndim=2, last_dim=2, finite=True, floating=True)
    if not np.all(shapes > 0):
        raise ValueError(f"shapes: expected positive (width, height), got {shapes.min()!r}")
    shapes = shapes.astype(wh.dtype, copy=False)
    idx = as_array("image_index", image_index, ndim=1)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"image_index: expected integers, got dtype {idx.dtype}")
    if idx.shape[0] != wh.shape[0]:
        raise ValueError(f"image_index: expected {wh.shape[0]} entries (one per row of wh), "
                         f"got {idx.shape[0]}")
    if idx.size and (idx.min() < 0 or idx.max() >= shapes.shape[0]):
        raise ValueError(f"image_index: expected values in [0, {shapes.shape[0]}), got "
                         f"[{idx.min()}, {idx.max()}]")
    img_size = check_positive("img_size", img_size)
    s = img_size * shapes / shapes.max(1, keepdims=True)  # [M, 2]
    if augment:
        s = s * anchor_scale_draws(np.random.default_rng(seed), shapes.shape[0]).astype(wh.dtype)
    return wh * s[idx]


# ----------------------------------------------------------------------------- k-means + evolution

def _filter_labels(wh: np.ndarray) -> tuple:
    """(labels kept for the fit: some side >= 2 px, count of labels with a side < 3 px)."""
    n_small = int((wh < SMALL_SIDE).any(1).sum())
    return wh[(wh >= MIN_SIDE).any(1)], n_small


def _mutation(u: np.ndarray, g: float, z: np.ndarray) -> np.ndarray:
    """``((u < mp) * g * z * s + 1).clip(0.3, 3.0)``, YOLOv5's multiplicative mutation."""
    return ((u < MUTATION_PROB) * g * z * MUTATION_SIGMA + 1).clip(0.3, 3.0)


def _sort_by_area(k):
    return k[np.argsort(k.prod(1), kind="stable")]


def kmean_anchors(wh: ArrayLike, n: int = 9, img_size: float = 640, thr: float = 4.0, gen: int = 1000,
                  seed: int | np.random.Generator = 0, verbose: bool = False,
                  progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> dict[str, Any]:
    """Fit ``n`` anchors to label sizes: k-means, then genetic evolution (YOLOv5 AutoAnchor).

    Steps (yolov5 v7.0 ``kmean_anchors``):

    1. keep the labels with some side >= 2 px (count those with a side < 3 px: ``n_small``);
    2. initial anchors: ``scipy.cluster.vq.kmeans(wh / std, n, iter=30)[0] * std``, or
       ``sort(rand(2n)).reshape(n, 2) * img_size`` if k-means cannot give n centroids (fewer
       labels than n, a zero std, duplicate centroids dropped); sorted by area;
    3. ``gen`` generations, sequential: ``v = ((rand < 0.9) * random() * randn * 0.1 + 1)
       .clip(0.3, 3.0)`` redrawn until some factor != 1; ``kg = (k * v).clip(min=2)``; ``k = kg``
       iff ``fitness(kg) > fitness(k)`` (strictly) on the kept labels;
    4. anchors sorted by area (stable); bpr, aat of the result on ALL labels (as upstream prints).

    Args:
        wh (ndarray[N, 2]): label sizes in pixels (see :func:`wh_from_labels`), > 0, N >= 1, and
            some label with a side >= 2 px.
        n (int): anchors, >= 1.
        img_size (float): training size, > 0 (scale of the random fallback).
        thr (float): ``anchor_t``, > 0.
        gen (int): generations, >= 0.
        seed (int | numpy.random.Generator): everything random is drawn from
            ``numpy.random.default_rng(seed)`` in a fixed order (k-means' initial points, then per
            generation: mask uniforms, scale uniform, normals). Reproducible here and equal in the
            port; NOT the same anchors as upstream for any seed (upstream draws from NumPy's
            global RNG and Python's ``random``).
        verbose (bool): also return ``"history"``: the fitness after each generation. Never prints.
        progress (callable | None): wraps the generation iterable, e.g. ``tqdm.tqdm``.

    Returns:
        dict: ``"anchors"`` [n, 2] (wh's dtype) sorted by area, every side >= 2 px unless no
        generation was accepted and the initial anchors were smaller; ``"fitness"``,
        ``"bpr"``, ``"aat"`` (0-d, wh's dtype); ``"n_small"``, ``"n_used"`` (int);
        ``"init"`` ("kmeans" | "random"); with ``verbose``, ``"history"`` [gen + 1] (index 0:
        the initial fitness), non-decreasing.

    The anchors are kept in float64 during evolution (upstream too: NumPy float64 anchors) and
    cast to wh's dtype for each fitness evaluation (upstream: float32).
    """
    wh0 = _check_wh("wh", wh)
    n = check_count("n", n, 1)
    img_size = check_positive("img_size", img_size)
    thr = check_positive("thr", thr)
    gen = check_count("gen", gen, 0)
    rng = np.random.default_rng(seed)
    wh, n_small = _filter_labels(wh0)
    if wh.shape[0] == 0:
        raise ValueError("wh: no label has a side >= 2 px, nothing to fit")

    k, init = anchor_initial(wh, n, img_size, rng)
    k = _sort_by_area(k)
    f = _fitness(wh, k.astype(wh.dtype), thr)
    history = [f]
    for _ in progress(range(gen)) if progress is not None else range(gen):
        v = np.ones(k.shape)
        while (v == 1).all():  # mutate until something changes
            v = _mutation(*anchor_mutation_draws(rng, k.shape))
        kg = (k * v).clip(min=MIN_SIDE)
        fg = _fitness(wh, kg.astype(wh.dtype), thr)
        if fg > f:
            f, k = fg, kg
        history.append(f)

    k = _sort_by_area(k).astype(wh0.dtype)
    bpr, aat = _bpr_aat(wh0, k, thr)
    out = {"anchors": k, "fitness": f, "bpr": bpr, "aat": aat, "n_small": n_small,
           "n_used": int(wh.shape[0]), "init": init}
    if verbose:
        out["history"] = np.array(history, dtype=wh0.dtype)
    return out
