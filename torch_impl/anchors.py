"""YOLOv5 autoanchor in PyTorch: the twin of :mod:`ref_numpy.anchors` (read its docstrings).

Metrics, fitness and the evolution run in torch on the inputs' device. What is random is drawn
with NumPy from ``numpy.random.default_rng(seed)`` in the reference's order and moved to the
device, and the k-means initialisation is the reference's scipy call on CPU, so that reference and
port return the same anchors for the same seed. The evolution is sequential (one generation
depends on the last); each generation synchronises once with the device (the "mutate until
something changes" test and the acceptance test).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ref_numpy.anchors import YOLOV5_ANCHORS  # noqa: F401 (public constant, re-exported)
from ref_numpy.shared.checks import check_count, check_finite_real, check_positive
from ref_numpy.shared.constants import (  # noqa: F401 (constants re-exported)
    KMEANS_ITER, MIN_SIDE, MUTATION_PROB, MUTATION_SIGMA, SMALL_SIDE)
from ref_numpy.shared.draws import anchor_initial, anchor_mutation_draws, anchor_scale_draws
from torch_impl._typing import TensorLike
from torch_impl._validate import as_tensor


# ----------------------------------------------------------------------------- validation

def _check_wh(name: str, wh) -> torch.Tensor:
    t = as_tensor(name, wh, ndim=2, last_dim=2, finite=True, floating=True)
    if t.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one (w, h), got shape {tuple(t.shape)}")
    if not bool((t > 0).all()):
        raise ValueError(f"{name}: expected positive sizes, got a minimum of {t.min().item()!r}")
    return t


def _check_anchors(name: str, anchors, like: torch.Tensor) -> torch.Tensor:
    t = as_tensor(name, anchors, last_dim=2, finite=True, floating=True, device=like.device)
    if t.numel() == 0:
        raise ValueError(f"{name}: expected at least one anchor, got shape {tuple(t.shape)}")
    if not bool((t > 0).all()):
        raise ValueError(f"{name}: expected positive sizes, got a minimum of {t.min().item()!r}")
    return t.reshape(-1, 2).to(device=like.device, dtype=like.dtype)






# ----------------------------------------------------------------------------- metric

def _ratio_metric(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """x [N, K]: ``min(r, 1/r)`` with ``r = wh / anchor``, worst of the two sides."""
    r = wh[:, None] / anchors[None]  # [N, K, 2]
    return torch.minimum(r, 1 / r).amin(-1)


def _fitness(wh: torch.Tensor, anchors: torch.Tensor, thr: float) -> torch.Tensor:
    best = _ratio_metric(wh, anchors).amax(1)  # [N]
    return (best * (best > 1 / thr)).mean()


def _bpr_aat(wh: torch.Tensor, anchors: torch.Tensor, thr: float) -> tuple:
    above = _ratio_metric(wh, anchors) > 1 / thr  # [N, K]
    n = wh.shape[0]
    bpr = above.any(1).sum().to(wh.dtype) / n
    aat = above.sum().to(wh.dtype) / n
    return bpr, aat


def anchor_metrics(wh: TensorLike, anchors: TensorLike, thr: float = 4.0) -> dict[str, torch.Tensor]:
    """Port of :func:`ref_numpy.anchors.anchor_metrics`: ``{"bpr", "aat"}`` as 0-d tensors."""
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh)
    thr = check_positive("thr", thr)
    bpr, aat = _bpr_aat(wh, anchors, thr)
    return {"bpr": bpr, "aat": aat}


def check_anchors(wh: TensorLike, anchors: TensorLike, thr: float = 4.0, bpr_threshold: float = 0.98
                 ) -> tuple[bool, torch.Tensor, torch.Tensor]:
    """Port of :func:`ref_numpy.anchors.check_anchors`: ``(needs_refit, bpr, aat)``,
    ``needs_refit = bpr <= bpr_threshold`` (a Python bool: one device synchronisation)."""
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh)
    thr = check_positive("thr", thr)
    check_finite_real("bpr_threshold", bpr_threshold)
    bpr, aat = _bpr_aat(wh, anchors, thr)
    return bool(bpr <= bpr_threshold), bpr, aat


def anchor_fitness(anchors: TensorLike, wh: TensorLike, thr: float = 4.0) -> torch.Tensor:
    """Port of :func:`ref_numpy.anchors.anchor_fitness`: ``mean(best * (best > 1/thr))``;
    differentiable in ``anchors`` and ``wh`` (almost everywhere)."""
    wh = _check_wh("wh", wh)
    anchors = _check_anchors("anchors", anchors, wh)
    thr = check_positive("thr", thr)
    return _fitness(wh, anchors, thr)


# ----------------------------------------------------------------------------- label sizes

def wh_from_labels(wh: TensorLike, image_index: TensorLike, shapes: TensorLike, img_size: float = 640,
                   augment: bool = False, seed: int | np.random.Generator = 0) -> torch.Tensor:
    """Port of :func:`ref_numpy.anchors.wh_from_labels` (the augmentation factors are NumPy draws
    from ``default_rng(seed)``, moved to wh's device)."""
    wh = as_tensor("wh", wh, ndim=2, last_dim=2, finite=True, floating=True)
    if not bool((wh > 0).all()):
        raise ValueError(f"wh: expected positive normalised sizes, got a minimum of "
                         f"{wh.min().item()!r}")
    shapes = as_tensor("shapes", shapes, ndim=2, last_dim=2, finite=True, floating=True,
                       device=wh.device)
    if not bool((shapes > 0).all()):
        raise ValueError(f"shapes: expected positive (width, height), got {shapes.min().item()!r}")
    shapes = shapes.to(device=wh.device, dtype=wh.dtype)
    idx = as_tensor("image_index", image_index, ndim=1, device=wh.device)
    if idx.is_floating_point():
        raise ValueError(f"image_index: expected integers, got dtype {idx.dtype}")
    if idx.shape[0] != wh.shape[0]:
        raise ValueError(f"image_index: expected {wh.shape[0]} entries (one per row of wh), "
                         f"got {idx.shape[0]}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= shapes.shape[0]):
        raise ValueError(f"image_index: expected values in [0, {shapes.shape[0]}), got "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    img_size = check_positive("img_size", img_size)
    s = img_size * shapes / shapes.amax(1, keepdim=True)  # [M, 2]
    if augment:
        scale = anchor_scale_draws(np.random.default_rng(seed), shapes.shape[0])
        s = s * torch.from_numpy(scale).to(device=wh.device, dtype=wh.dtype)
    return wh * s[idx.to(device=wh.device, dtype=torch.long)]


# ----------------------------------------------------------------------------- k-means + evolution

def _mutation(u: torch.Tensor, g: float, z: torch.Tensor) -> torch.Tensor:
    """``((u < mp) * g * z * s + 1).clip(0.3, 3.0)``, in the reference's order of operations."""
    return ((u < MUTATION_PROB).to(z.dtype) * g * z * MUTATION_SIGMA + 1).clamp(0.3, 3.0)


def _sort_by_area(k: torch.Tensor) -> torch.Tensor:
    return k[torch.argsort(k.prod(1), stable=True)]


def kmean_anchors(wh: TensorLike, n: int = 9, img_size: float = 640, thr: float = 4.0, gen: int = 1000,
                  seed: int | np.random.Generator = 0, verbose: bool = False,
                  progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> dict[str, Any]:
    """Port of :func:`ref_numpy.anchors.kmean_anchors`: the same dict, tensors on wh's device.

    The initial anchors come from the reference's scipy k-means (CPU, float64); the draws of every
    generation are the reference's NumPy draws, moved to the device; mutation, clipping, fitness
    and acceptance run in torch (float64 anchors, fitness at wh's dtype), so for float64 input the
    result equals the reference's for the same seed.
    """
    wh0 = _check_wh("wh", wh)
    n = check_count("n", n, 1)
    img_size = check_positive("img_size", img_size)
    thr = check_positive("thr", thr)
    gen = check_count("gen", gen, 0)
    rng = np.random.default_rng(seed)
    n_small = int((wh0 < SMALL_SIDE).any(1).sum())
    wh = wh0[(wh0 >= MIN_SIDE).any(1)]
    if wh.shape[0] == 0:
        raise ValueError("wh: no label has a side >= 2 px, nothing to fit")

    dev = wh0.device
    k0, init = anchor_initial(wh.detach().cpu().numpy(), n, img_size, rng)
    k = _sort_by_area(torch.from_numpy(k0).to(device=dev, dtype=torch.float64))
    f = _fitness(wh, k.to(wh.dtype), thr)
    history = [f]
    for _ in progress(range(gen)) if progress is not None else range(gen):
        while True:  # mutate until something changes
            u, g, z = (torch.from_numpy(a).to(dev) if isinstance(a, np.ndarray) else float(a)
                       for a in anchor_mutation_draws(rng, tuple(k.shape)))
            v = _mutation(u, g, z)
            if not bool((v == 1).all()):
                break
        kg = (k * v).clamp(min=MIN_SIDE)
        fg = _fitness(wh, kg.to(wh.dtype), thr)
        if bool(fg > f):
            f, k = fg, kg
        history.append(f)

    k = _sort_by_area(k).to(wh0.dtype)
    bpr, aat = _bpr_aat(wh0, k, thr)
    out = {"anchors": k, "fitness": f, "bpr": bpr, "aat": aat, "n_small": n_small,
           "n_used": int(wh.shape[0]), "init": init}
    if verbose:
        out["history"] = torch.stack(history).to(wh0.dtype)
    return out
