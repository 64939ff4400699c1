"""The architecture registry: one name = a model + its assigner, loss and decode, so every
detector goes through the same trainer, data pipeline, checkpoints, health checks, validation
and predict paths (:mod:`torch_impl.train`).

An :class:`Architecture` bundles what the engine needs of a detector:

- ``build(nc, variant=None, **options) -> nn.Module``: a fresh model for ``nc`` classes
  (``variant`` one of ``variants``, the ``--model`` choices; ``options`` the arch's own, e.g.
  ``depth_multiple``, ``width_multiple``; an unknown option is a ``ValueError`` naming it).
  The model has a ``stride`` tensor ``[nl]`` and an ``nc`` attribute. **Output contract**: in
  training mode ``model(x)`` returns the raw outputs the loss takes; in eval mode
  ``(decoded, raw)``, ``raw`` as in training mode (the validation losses) and ``decoded``
  what ``postprocess`` takes.
- ``make_loss(model, hyp) -> loss``: ``loss(preds, targets, imgs=None) -> (total, items)``;
  ``preds`` the training-mode output (any dtype: the loss casts), ``targets [n, 6]`` rows
  ``(image, class, cx, cy, w, h)`` normalised to the network input, ``imgs [B, 3, H, W]``
  float in [0, 1] (for losses that need the input size); ``total`` a scalar that is
  backpropagated, ``items`` a detached-or-not 1-D tensor, one value per ``loss_names`` entry
  (the ``results.csv`` columns ``train/<name>_loss`` and ``val/<name>_loss``). A non-finite
  prediction must give a non-finite ``total`` (the trainer's NaN check stops the run), not an
  input-validation error.
- ``postprocess(decoded, conf_thres, iou_thres, max_det) -> list[Tensor [n, 6]]``: per image,
  rows ``(x1, y1, x2, y2, score, class)`` in network-input pixels, at most ``max_det``.
- ``model_config(model) -> dict``: plain values such that ``build(nc, **model_config(model))``
  rebuilds the same layout; a checkpoint stores ``{"arch": name, "nc": nc, **model_config}``
  as ``"model_config"``'s ``"model_cfg"`` (see :meth:`Architecture.checkpoint_config` and
  :meth:`Architecture.load`).
- ``prepare_hyp(hyp, model, nc, img_size) -> hyp``: the loss gains of this arch (YOLOv5
  rescales by levels / classes / image size; v8 sets box 7.5, cls 0.5, dfl 1.5).
- optional: ``from_config`` (rebuild from a checkpoint's ``model_cfg`` and state_dict when
  ``build`` + strict load is not enough), ``convert_state_dict`` (an official package's keys ->
  ours, for ``train --weights``), ``weights_nc`` (the class count a state_dict was made for, for
  the "head re-initialised" message), ``head_prefixes`` (tensors re-initialised when they do not
  fit, e.g. another class count), ``backbone_prefixes`` (the backbone's parameters: freezing,
  a backbone LR factor), ``layer_index`` (``--freeze N``: prefix -> layer number), ``anchor_based``
  (autoanchor and the anchor health checks; the model then has ``anchors_pixels`` /
  ``anchors_grid_units``), ``aliases``, ``import_command`` (how to convert an official file).

Adding an architecture is one file: put ``torch_impl/arch/<name>.py`` in this package, build an
``Architecture(...)`` in it and call :func:`register` at import time. Every module of the
package is imported when the package is (see the end of this file), so the new name is at once
a ``yolo-ref train --arch`` choice, a checkpoint's ``model_cfg["arch"]`` that ``predict``
rebuilds, and a row of the registry test (``parity_tests/test_arch.py`` checks every
registered architecture's contract on a tiny input).
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["ARCHITECTURES", "Architecture", "LossFn", "arch_of_config", "arch_of_model",
           "get_arch", "names", "register"]

# loss(preds, targets, imgs=None) -> (total scalar, items [len(loss_names)])
LossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _same_hyp(hyp: dict, model: nn.Module, nc: int, img_size: int) -> dict:
    return dict(hyp)


def _same_state(sd: dict) -> dict:
    return dict(sd)


def _no_nc(sd: Mapping) -> int | None:
    return None


@dataclass(frozen=True)
class Architecture:
    """One detector as the engine sees it (see the module docstring for each field's contract).

    Fields:
        name: the ``--arch`` name (and ``model_cfg["arch"]`` of its checkpoints).
        summary: one line for ``--help`` and error messages.
        build, make_loss, loss_names, postprocess, model_config: required (module docstring).
        model_types: the model classes this arch builds (to find a model's arch).
        variants: the ``--model`` choices (the first is the default); empty: none.
        prepare_hyp, from_config, convert_state_dict, weights_nc: optional hooks.
        head_prefixes, backbone_prefixes: state_dict key prefixes.
        layer_index: ``model -> {prefix: layer number}`` for ``--freeze N`` (layers 0..N-1
            freeze); None: ``--freeze`` is not supported. max_freeze: the largest N allowed
            (the configuration checks it); freeze_help: what the layers are, for its message.
        anchor_based: autoanchor and the anchor health checks apply.
        aliases: other names :func:`get_arch` accepts.
        import_command: the command that converts an official file (for error messages).
        example_img_size: a small square input the model takes (the registry's contract test
            builds ``build(3, default_variant)`` and runs it at this size).
    """

    name: str
    summary: str
    build: Callable[..., nn.Module]
    make_loss: Callable[[nn.Module, dict], LossFn]
    loss_names: tuple[str, ...]
    postprocess: Callable[[Any, float, float, int], list[torch.Tensor]]
    model_config: Callable[[nn.Module], dict]
    model_types: tuple[type, ...]
    variants: tuple[str, ...] = ()
    prepare_hyp: Callable[[dict, nn.Module, int, int], dict] = _same_hyp
    from_config: Callable[[dict, Mapping | None], nn.Module] | None = None
    convert_state_dict: Callable[[dict], dict] = _same_state
    weights_nc: Callable[[Mapping], int | None] = _no_nc
    head_prefixes: tuple[str, ...] = ("head.",)
    backbone_prefixes: tuple[str, ...] = ("backbone.",)
    layer_index: Callable[[nn.Module], dict[str, int]] | None = None
    max_freeze: int | None = None
    freeze_help: str = ""
    anchor_based: bool = False
    aliases: tuple[str, ...] = ()
    import_command: str | None = None
    example_img_size: int = 64

    @property
    def default_variant(self) -> str | None:
        """The ``--model`` default: the first variant (None when the arch has none)."""
        return self.variants[0] if self.variants else None

    @property
    def csv_fields(self) -> tuple[str, ...]:
        """The ``results.csv`` columns of a run of this arch: epoch, ``train/<term>_loss``,
        P, R, mAP@0.5, mAP@0.5:0.95, ``val/<term>_loss``, the three LRs, time_s."""
        return ("epoch", *(f"train/{k}_loss" for k in self.loss_names),
                "metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95",
                *(f"val/{k}_loss" for k in self.loss_names), "x/lr0", "x/lr1", "x/lr2", "time_s")

    def checkpoint_config(self, model: nn.Module, nc: int) -> dict:
        """What a checkpoint stores as ``model_cfg``: ``{"arch", "nc", **model_config(model)}``."""
        return {"arch": self.name, "nc": int(nc), **self.model_config(model)}

    def load(self, cfg: Mapping, state_dict: Mapping | None = None) -> nn.Module:
        """The model a checkpoint's ``model_cfg`` describes, with ``state_dict`` loaded strictly
        when given (``from_config`` when the arch has one, else ``build(nc, **rest)``)."""
        if self.from_config is not None:
            return self.from_config(dict(cfg), state_dict)
        opts = {k: v for k, v in cfg.items() if k not in ("arch", "nc", "head")}
        model = self.build(int(cfg["nc"]), **opts)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model

    def freeze(self, model: nn.Module, n: int) -> list[str]:
        """``requires_grad = False`` on the parameters of layers ``0..n-1`` (``layer_index``);
        returns their names. BatchNorm statistics still update."""
        if n <= 0:
            return []
        if self.layer_index is None:
            raise ValueError(f"freeze (--freeze): the {self.name} architecture has no layer "
                             f"numbering; use --freeze-backbone")
        prefixes = tuple(p + "." for p, i in self.layer_index(model).items() if i < n)
        frozen = []
        for name, param in model.named_parameters():
            if prefixes and name.startswith(prefixes):
                param.requires_grad_(False)
                frozen.append(name)
        return frozen

    def n_layers(self, model: nn.Module) -> int | None:
        """How many numbered layers ``--freeze`` counts (None without ``layer_index``)."""
        return None if self.layer_index is None else max(self.layer_index(model).values()) + 1

    def backbone_parameters(self, model: nn.Module) -> list[str]:
        """Names of the parameters under ``backbone_prefixes``."""
        return [n for n, _ in model.named_parameters() if n.startswith(self.backbone_prefixes)]


ARCHITECTURES: dict[str, Architecture] = {}
_ALIASES: dict[str, str] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` to :data:`ARCHITECTURES` (under its name and its aliases) and return it.

    Raises:
        ValueError: the name or an alias is taken, or a required field is malformed.
    """
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch: expected an Architecture, got {type(arch).__name__}")
    if not arch.loss_names or not all(isinstance(n, str) and n for n in arch.loss_names):
        raise ValueError(f"{arch.name}: loss_names must be non-empty strings")
    for n in (arch.name, *arch.aliases):
        if n in ARCHITECTURES or n in _ALIASES:
            raise ValueError(f"architecture {n!r} is registered already")
    ARCHITECTURES[arch.name] = arch
    for a in arch.aliases:
        _ALIASES[a] = arch.name
    return arch


def get_arch(name: str | Architecture) -> Architecture:
    """The registered architecture ``name`` (or an alias of it); an Architecture passes through.

    Raises:
        ValueError: ``"arch (--arch): unknown architecture 'q'; registered: tutorial, ..."``.
    """
    if isinstance(name, Architecture):
        return name
    key = _ALIASES.get(name, name)
    if key not in ARCHITECTURES:
        raise ValueError(f"arch (--arch): unknown architecture {name!r}; registered: "
                         f"{', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[key]


def arch_of_config(cfg: Mapping) -> Architecture:
    """The architecture of a checkpoint's ``model_cfg``: its ``"arch"``; files written before
    the registry have none and are YOLOv5 (``"head": "anchor-free"`` -> the anchor-free one)."""
    name = cfg.get("arch")
    if name is None:
        name = "yolov5-anchor-free" if cfg.get("head") == "anchor-free" else "yolov5"
    return get_arch(name)


def arch_of_model(model: nn.Module) -> Architecture:
    """The architecture whose ``model_types`` ``model`` (or the module a DDP / EMA wrapper
    holds) is an instance of; the most specific class wins.

    Raises:
        ValueError: no registered architecture builds this model class.
    """
    m = model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model
    found = [a for a in ARCHITECTURES.values() if isinstance(m, a.model_types)]
    if not found:
        raise ValueError(f"model: a {type(m).__name__} is of no registered architecture "
                         f"({', '.join(sorted(ARCHITECTURES))})")
    # an exact class match first (a subclass of another arch's class is its own arch)
    exact = [a for a in found if type(m) in a.model_types]
    return (exact or found)[0]


def _import_all() -> None:
    """Import every module of this package: each registers its architecture."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def names() -> Sequence[str]:
    """The registered names, sorted."""
    return sorted(ARCHITECTURES)


_import_all()
