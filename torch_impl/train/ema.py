"""YOLOv5 v7.0 ``ModelEMA``: an exponential moving average of a model's floating state."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DataParallel / DistributedDataParallel wrapper (else ``model``)."""
    return model.module if hasattr(model, "module") else model


class ModelEMA:
    """Moving average of every floating entry of ``model.state_dict()`` (parameters and BN
    buffers; integer buffers such as ``num_batches_tracked`` are left as copied).

    Args:
        model (nn.Module): the model to follow (a DDP wrapper is unwrapped).
        decay (float): the asymptotic decay ``d``.
        tau (float): ramp length in updates.
        updates (int): updates already done (when resuming).

    After the ``n``-th :meth:`update` the weights are ``v = d_n v + (1 - d_n) w`` with
    ``d_n = decay * (1 - exp(-n / tau))``: early updates follow the model closely, later ones
    average over about ``1 / (1 - decay)`` steps.
    Convention: yolov5 v7.0 ``utils/torch_utils.ModelEMA`` (decay 0.9999, tau 2000).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0,
                 updates: int = 0) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay: expected a value in [0, 1), got {decay!r}")
        if not tau > 0:
            raise ValueError(f"tau: expected a positive number, got {tau!r}")
        self.ema = copy.deepcopy(unwrap(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), int(updates)

    def current_decay(self) -> float:
        """``d_n`` for the current update count ``n``."""
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Count one update and blend ``model``'s current state into the average."""
        self.updates += 1
        d = self.current_decay()
        msd = unwrap(model).state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)

    def state_dict(self) -> dict:
        """``{"ema": state_dict of the averaged model, "updates": int}``."""
        return {"ema": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.ema.load_state_dict(state["ema"])
        self.updates = int(state["updates"])
