"""YOLOv5 v7.0 optimisation recipe: hyper-parameters, parameter groups, LR schedule, warmup."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

# yolov5 v7.0 data/hyps/hyp.scratch-low.yaml (optimisation and loss keys; the augmentation keys
# are torch_impl.data.HYP_DEFAULTS).
HYP_SCRATCH_LOW = {
    "lr0": 0.01, "lrf": 0.01, "momentum": 0.937, "weight_decay": 0.0005,
    "warmup_epochs": 3.0, "warmup_momentum": 0.8, "warmup_bias_lr": 0.1,
    "box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0,
    "anchor_t": 4.0, "fl_gamma": 0.0, "label_smoothing": 0.0,
}

OPTIMIZERS = ("SGD", "AdamW")


def param_groups(model: nn.Module) -> tuple[list, list, list]:
    """Split the parameters as yolov5 ``smart_optimizer``: ``(biases, weights, norm_weights)``.

    ``biases``: every parameter named ``bias``; ``norm_weights``: the weights of normalisation
    layers (BatchNorm, LayerNorm, GroupNorm, ...); ``weights``: all other parameters. Only
    ``weights`` get weight decay. Each parameter appears exactly once, in ``named_modules`` order.
    """
    norm_types = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))
    biases, weights, norm_weights = [], [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "bias":
                biases.append(p)
            elif isinstance(module, norm_types):
                norm_weights.append(p)
            else:
                weights.append(p)
    return biases, weights, norm_weights


def build_optimizer(model: nn.Module, name: str = "SGD", lr: float = 0.01,
                    momentum: float = 0.937, weight_decay: float = 0.0005) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over :func:`param_groups`: group 0 biases (no decay), group 1
    weights (``weight_decay``), group 2 norm weights (no decay).

    Convention: yolov5 v7.0 ``smart_optimizer`` (AdamW ``betas=(momentum, 0.999)``; decoupled
    decay only on group 1).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"name: expected one of {OPTIMIZERS}, got {name!r}")
    biases, weights, norm_weights = param_groups(model)
    if name == "SGD":
        opt = torch.optim.SGD(biases, lr=lr, momentum=momentum, nesterov=True)
    else:
        opt = torch.optim.AdamW(biases, lr=lr, betas=(momentum, 0.999), weight_decay=0.0)
    opt.add_param_group({"params": weights, "weight_decay": weight_decay})
    opt.add_param_group({"params": norm_weights, "weight_decay": 0.0})
    return opt


def lr_lambda(epochs: int, lrf: float, cos: bool = False) -> Callable[[float], float]:
    """The LR factor of epoch ``e`` (for ``LambdaLR``): linear ``(1 - e / epochs)(1 - lrf) + lrf``
    or cosine ``lrf + (1 - lrf)(1 + cos(pi e / epochs)) / 2`` (yolov5 ``one_cycle``); both go
    from 1 at ``e = 0`` to ``lrf`` at ``e = epochs``."""
    if epochs < 1:
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    if cos:
        return lambda e: ((1 - math.cos(e * math.pi / epochs)) / 2) * (lrf - 1) + 1
    return lambda e: (1 - e / epochs) * (1.0 - lrf) + lrf


def warmup_iters(warmup_epochs: float, nb: int, min_iters: int = 100) -> int:
    """Warmup length in iterations: ``max(round(warmup_epochs * nb), min_iters)``, or 0 (no
    warmup) when ``warmup_epochs <= 0`` (Ultralytics 8; yolov5 v7.0 never disables it)."""
    if warmup_epochs <= 0:
        return 0
    return max(round(warmup_epochs * nb), min_iters)


def warmup_step(optimizer: torch.optim.Optimizer, ni: int, nw: int, lr_factor: float, hyp: dict,
                accumulate_max: float) -> int:
    """Set every group's ``lr`` and ``momentum`` for iteration ``ni < nw`` of the warmup and
    return the gradient accumulation to use (an int >= 1).

    Linear in ``ni`` over ``[0, nw]``: group 0 (biases) from ``warmup_bias_lr``, the others from
    0, to ``initial_lr * lr_factor``; momentum (or AdamW beta1) from ``warmup_momentum`` to
    ``momentum``; accumulation from 1 to ``accumulate_max`` (``nbs / batch_size``).
    Convention: yolov5 v7.0 ``train.py`` warmup block.
    """
    xi = [0, nw]
    accumulate = max(1, int(np.interp(ni, xi, [1, accumulate_max]).round()))
    for j, group in enumerate(optimizer.param_groups):
        start = hyp["warmup_bias_lr"] if j == 0 else 0.0
        group["lr"] = float(np.interp(ni, xi, [start, group["initial_lr"] * lr_factor]))
        m = float(np.interp(ni, xi, [hyp["warmup_momentum"], hyp["momentum"]]))
        if "momentum" in group:
            group["momentum"] = m
        if "betas" in group:
            group["betas"] = (m, group["betas"][1])
    return accumulate
