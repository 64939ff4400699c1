"""YOLOv5 v7.0 building blocks: ``Conv``, ``Bottleneck``, ``C3``, ``SPPF``.

Each block registers its submodules under the names and in the order of ``models/common.py`` of
ultralytics/yolov5 v7.0 (``conv``/``bn``, ``cv1``/``cv2``/``cv3``/``m``), so the parameter and
buffer tensors of a block come out of ``state_dict()`` in the official order and shapes.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# YOLOv5's ``initialize_weights`` sets these on every BatchNorm2d.
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x`` (YOLOv5's channel rounding)."""
    return int(math.ceil(x / divisor) * divisor)


def scaled_depth(n: int, depth_multiple: float) -> int:
    """Repeats of a block after the depth multiple: ``max(round(n * gd), 1)`` for ``n > 1``, else ``n``."""
    return max(round(n * depth_multiple), 1) if n > 1 else n


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d(eps 1e-3, momentum 0.03) -> SiLU, 'same' padding ``k // 2``
    unless ``p`` is given. ``[bs, c1, H, W] -> [bs, c2, H / s, W / s]``."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 Conv to ``int(c2 * e)`` channels, 3x3 Conv to ``c2``; residual add when ``shortcut``
    and ``c1 == c2``."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP block with 3 convs: ``cv3(cat(m(cv1(x)), cv2(x)))``, ``m`` = ``n`` Bottlenecks at
    ``int(c2 * e)`` channels (their own expansion 1.0)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: ``cv1`` halves the channels, three chained max-pools
    (k, stride 1, padding k // 2) give the k, 2k-1, 3k-2 receptive fields, ``cv2`` fuses the
    four maps. Same output as SPP(k, 2k-1, 3k-2)."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))
