"""The small anchor-based 3-level detector of "Implementing YOLO from Scratch in PyTorch"
(``shared/reference/seed_systems.md``, section A).

Layout, in the sheet's module order (which is the order of ``state_dict()``):

- ``ConvBNAct(c_in, c_out, k, s)`` = Conv2d(k, s, padding k // 2, bias=False) -> BatchNorm2d
  (PyTorch defaults: eps 1e-5, momentum 0.1) -> SiLU;
- ``Residual(c)`` = ``x + ConvBNAct(c, c, 1, 1) -> ConvBNAct(c, c, 3, 1)``;
- ``CSP(c, n)``: ``c_ = c // 2``; conv1, conv2 = ConvBNAct(c, c_, 1, 1), m = n x Residual(c_),
  conv3 = ConvBNAct(2 c_, c, 1, 1); ``out = conv3(cat[m(conv1(x)), conv2(x)])``;
- backbone: stem = (ConvBNAct(3, b, 3, 2), ConvBNAct(b, 2b, 3, 2), CSP(2b, 1)), stage3 =
  (ConvBNAct(2b, 4b, 3, 2), CSP(4b, 2)) -> P3/8, stage4 = (ConvBNAct(4b, 8b, 3, 2), CSP(8b, 2))
  -> P4/16, stage5 = (ConvBNAct(8b, 16b, 3, 2), CSP(16b, 1)) -> P5/32;
- neck (simple FPN, width o = 4b): lat5, lat4, lat3 (1x1), out4, out3 (3x3);
  ``l5 = lat5(P5); l4 = lat4(P4) + up(l5); l3 = lat3(P3) + up(l4)`` -> ``(out3(l3), out4(l4), l5)``;
- heads: one Conv2d(o, A (5 + C), 1) with bias per level, P3 first.

``forward`` returns, in training mode, the write-up's raw NCHW maps ``[bs, A (5 + C), S, S]`` per
level (channel layout ``view(bs, A, 5 + C, S, S)``); in eval mode ``(decoded, raw)`` as the
engine's architectures do (:mod:`torch_impl.arch`): ``raw`` the same list, ``decoded`` a
:class:`TutorialDecoded` (the rows of :func:`torch_impl.coder.tutorial_decode` and the recipe
whose inference applies). :meth:`TutorialDetector.split` gives the maps as
``[bs, A, S, S, 5 + C]`` (the layout of :func:`torch_impl.loss.yolo_scratch_pytorch_loss`).
Parameter counts (A = 3): 3,857,181 for C = 80, b = 32 (C = 3: 3,767,784; C = 20: 3,787,521;
b = 16, C = 80: 992,013).

:func:`load_tutorial_state_dict` loads a state_dict saved from a model built the write-up's way
(any module names, the sheet's module order) one to one, by position, checking every shape.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ref_numpy.shared.checks import check_count
from torch_impl import coder
from torch_impl._typing import TensorLike

# The write-up's anchors: the YOLOv5 defaults in pixels, strides 8 / 16 / 32.
TUTORIAL_ANCHORS = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)
TUTORIAL_STRIDES = (8, 16, 32)
RECIPES = ("corrected", "as-printed")  # which assignment, loss and inference (seed_systems.md A)


class TutorialDecoded(NamedTuple):
    """The eval-mode ``decoded`` output: ``rows`` [bs, N, 5 + C] of :func:`torch_impl.coder.
    tutorial_decode` and the model's ``recipe`` ("corrected" or "as-printed")."""

    rows: torch.Tensor
    recipe: str


class ConvBNAct(nn.Module):
    """Conv2d(k, s, padding k // 2, bias=False) -> BatchNorm2d -> SiLU."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Residual(nn.Module):
    """``x + ConvBNAct(c, c, 1, 1) -> ConvBNAct(c, c, 3, 1)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.block = nn.Sequential(ConvBNAct(c, c, 1, 1), ConvBNAct(c, c, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class CSP(nn.Module):
    """``conv3(cat[m(conv1(x)), conv2(x)])`` with ``c_ = c // 2`` and ``n`` residual blocks."""

    def __init__(self, c: int, n: int = 1) -> None:
        super().__init__()
        c_ = c // 2
        self.conv1 = ConvBNAct(c, c_, 1, 1)
        self.conv2 = ConvBNAct(c, c_, 1, 1)
        self.m = nn.Sequential(*(Residual(c_) for _ in range(n)))
        self.conv3 = ConvBNAct(2 * c_, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], 1))


class TutorialBackbone(nn.Module):
    """``[bs, 3, H, W] -> (P3 [bs, 4b, H/8, W/8], P4 [bs, 8b, H/16, W/16], P5 [bs, 16b, H/32, W/32])``."""

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        b = base
        self.stem = nn.Sequential(ConvBNAct(3, b, 3, 2), ConvBNAct(b, 2 * b, 3, 2), CSP(2 * b, 1))
        self.stage3 = nn.Sequential(ConvBNAct(2 * b, 4 * b, 3, 2), CSP(4 * b, 2))
        self.stage4 = nn.Sequential(ConvBNAct(4 * b, 8 * b, 3, 2), CSP(8 * b, 2))
        self.stage5 = nn.Sequential(ConvBNAct(8 * b, 16 * b, 3, 2), CSP(16 * b, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3 = self.stage3(self.stem(x))
        p4 = self.stage4(p3)
        return p3, p4, self.stage5(p4)


class TutorialNeck(nn.Module):
    """Simple FPN of width ``o``: ``(P3, P4, P5) -> (out3(l3), out4(l4), l5)``."""

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        o = 4 * base
        self.lat5 = ConvBNAct(16 * base, o, 1, 1)
        self.lat4 = ConvBNAct(8 * base, o, 1, 1)
        self.lat3 = ConvBNAct(4 * base, o, 1, 1)
        self.out4 = ConvBNAct(o, o, 3, 1)
        self.out3 = ConvBNAct(o, o, 3, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = feats
        l5 = self.lat5(p5)
        l4 = self.lat4(p4) + F.interpolate(l5, scale_factor=2.0, mode="nearest")
        l3 = self.lat3(p3) + F.interpolate(l4, scale_factor=2.0, mode="nearest")
        return self.out3(l3), self.out4(l4), l5


def _check_tutorial_anchors(anchors) -> torch.Tensor:
    a = TUTORIAL_ANCHORS if anchors is None else anchors
    try:
        t = torch.as_tensor(a, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"anchors: expected 3 levels of (w, h) pairs in pixels, got {anchors!r} ({e})") from None
    if t.ndim == 2 and t.shape[0] == 3 and t.shape[1] % 2 == 0 and t.shape[1] > 0:
        t = t.reshape(3, -1, 2)
    if t.ndim != 3 or t.shape[0] != 3 or t.shape[1] == 0 or t.shape[2] != 2:
        raise ValueError(f"anchors: expected shape [3, na, 2] (pixels, levels P3, P4, P5), got {tuple(t.shape)}")
    if not (torch.isfinite(t).all() and (t > 0).all()):
        raise ValueError("anchors: every anchor width and height must be finite and > 0")
    return t


class TutorialDetector(nn.Module):
    """Section A's detector: backbone, neck, heads (in that module order).

    Attributes: ``nc``, ``na``, ``no = 5 + nc``, ``base``, ``recipe`` (see :data:`RECIPES`),
    buffers (not persistent: the write-up's state_dict has neither) ``anchors`` [3, na, 2] in
    pixels and ``stride`` [3] = (8, 16, 32).
    """

    def __init__(self, nc: int = 80, base: int = 32, anchors: TensorLike | None = None,
                 recipe: str = "corrected") -> None:
        super().__init__()
        self.nc = check_count("nc", nc, 1)
        self.base = check_count("base", base, 2)
        a = _check_tutorial_anchors(anchors)
        self.na = a.shape[1]
        self.no = 5 + self.nc
        if recipe not in RECIPES:
            raise ValueError(f"recipe: expected one of {RECIPES}, got {recipe!r}")
        self.recipe = recipe
        self.backbone = TutorialBackbone(base)
        self.neck = TutorialNeck(base)
        self.heads = nn.ModuleList(nn.Conv2d(4 * base, self.na * self.no, 1) for _ in range(3))
        self.register_buffer("anchors", a, persistent=False)
        self.register_buffer("stride", torch.tensor([float(s) for s in TUTORIAL_STRIDES]), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | tuple[TutorialDecoded, list[torch.Tensor]]:
        feats = self.neck(self.backbone(x))
        raw = [head(f) for head, f in zip(self.heads, feats)]
        if self.training:
            return raw
        rows = coder.tutorial_decode([p.float() for p in self.split(raw)], self.anchors, self.stride.tolist())
        return TutorialDecoded(rows, self.recipe), raw

    @torch.no_grad()
    def initialize_biases(self, img_size: int = 640) -> None:
        """Set the heads' biases to YOLOv5's priors (not in the write-up, whose heads keep
        PyTorch's default init): objectness ``log(8 / (img_size / stride)²)`` (about 8 objects
        per image, so every cell starts as background instead of at σ = 0.5) and classes
        ``log(0.6 / (nc - 0.99))``; the box biases are left as they are. Weights are untouched,
        so the layout, the parameter count and :func:`load_tutorial_state_dict` do not change.
        Raises ValueError for an ``img_size`` < 1."""
        size = check_count("img_size", img_size, 1)
        for head, s in zip(self.heads, self.stride.tolist()):
            b = head.bias.view(self.na, self.no)
            b[:, 4] = math.log(8 / (size / s) ** 2)
            b[:, 5:] = math.log(0.6 / (self.nc - 0.99))

    def split(self, outputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """NCHW head maps -> ``[bs, na, S, S, 5 + nc]`` per level (``view(bs, A, 5 + C, S, S)``)."""
        out = []
        for y in outputs:
            bs, _, ny, nx = y.shape
            out.append(y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        return out


def tutorial(nc: int = 80, base: int = 32, anchors: TensorLike | None = None,
             recipe: str = "corrected") -> TutorialDetector:
    """The section A detector with ``nc`` classes, width ``base`` and ``anchors`` ([3, na, 2]
    pixels at the input size; default the YOLOv5 anchors, na = 3); ``recipe`` picks the
    inference of its eval output (``"corrected"`` or ``"as-printed"``; the layout is the same).
    Raises ValueError for a bad ``nc``, ``base``, ``anchors`` or ``recipe``."""
    return TutorialDetector(nc, base, anchors, recipe)


def _tensors(sd: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


def load_tutorial_state_dict(model: TutorialDetector, state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Load a state_dict saved from a model built the write-up's way into ``model``, one to one.

    Args:
        model: a :class:`TutorialDetector` of the same ``nc``, ``base`` and ``na``.
        state_dict: the saved tensors, in the sheet's module order (backbone, neck, heads);
            the names may be anything (the write-up's, this module's, with a ``module.`` prefix).
            BatchNorm's ``num_batches_tracked`` counters are optional on either side.

    Returns:
        dict ``{model key: state_dict key}``: the mapping that was used.

    Raises:
        ValueError: a different number of tensors, or a shape mismatch (naming the first pair
        that differs: the model's key and shape, the file's key and shape).
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict: expected a mapping of name -> tensor, got {type(state_dict).__name__}")
    ours, theirs = _tensors(model.state_dict()), _tensors(state_dict)
    if len(ours) != len(theirs):
        raise ValueError(f"state_dict: expected {len(ours)} tensors (without num_batches_tracked) for "
                         f"tutorial(nc={model.nc}, base={model.base}, na={model.na}), got {len(theirs)}")
    mapping, new = {}, {}
    for (k, v), (k2, v2) in zip(ours, theirs):
        if not isinstance(v2, torch.Tensor) or tuple(v.shape) != tuple(v2.shape):
            shape = tuple(v2.shape) if isinstance(v2, torch.Tensor) else type(v2).__name__
            raise ValueError(f"state_dict: tensor {k2!r} has shape {shape}, but the model's tensor at that "
                             f"position, {k!r}, has shape {tuple(v.shape)} (is nc/base/na the same?)")
        mapping[k] = k2
        new[k] = v2
    model.load_state_dict(new, strict=False)
    return mapping
