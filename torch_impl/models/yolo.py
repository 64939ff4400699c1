"""YOLOv5 v7.0 detection models: CSP-Darknet backbone, PAN neck, anchor-based ``Detect`` head,
plus an anchor-free (Ultralytics 8.3 / 8.4 YOLOv8 style, DFL) head on the same backbone and neck.

Layer order and channel arithmetic follow ``models/yolov5{n,s,m,l,x}.yaml`` and ``parse_model``
of ultralytics/yolov5 v7.0: channels ``make_divisible(c * width_multiple, 8)``, repeats
``max(round(n * depth_multiple), 1)``. Submodules carry readable names (``backbone.stage3``,
``neck.out4``, ``head``) but are registered in the official layer order, so ``state_dict()`` lists
the same tensors, in the same order and shapes, as the official ``DetectionModel``; the name
translation lives in :mod:`torch_impl.models.convert`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ref_numpy.shared.checks import check_count
from torch_impl import coder
from torch_impl._typing import TensorLike
from torch_impl.models.common import C3, SPPF, Conv, make_divisible, scaled_depth

# (depth_multiple, width_multiple) of the official yaml files.
VARIANTS: dict[str, tuple[float, float]] = {
    "n": (0.33, 0.25),
    "s": (0.33, 0.50),
    "m": (0.67, 0.75),
    "l": (1.00, 1.00),
    "x": (1.33, 1.25),
}

STRIDES = (8, 16, 32)  # P3, P4, P5

# What a detection head returns: the raw per-level maps in training mode, (decoded, raw) in eval mode.
HeadOutput = list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]

# Anchor (w, h) in pixels at 640, per level, as in the yaml files.
DEFAULT_ANCHORS = (
    ((10, 13), (16, 30), (33, 23)),  # P3/8
    ((30, 61), (62, 45), (59, 119)),  # P4/16
    ((116, 90), (156, 198), (373, 326)),  # P5/32
)


def _widths(width_multiple: float) -> dict[int, int]:
    """Channel count of every base width (64 .. 1024) of the yaml after the width multiple."""
    return {c: make_divisible(c * width_multiple, 8) for c in (64, 128, 256, 512, 1024)}


class Backbone(nn.Module):
    """Layers 0-9 of the yaml: Conv(k6, s2, p2) stem, four (Conv s2, C3) stages, SPPF(k5).

    ``[bs, ch, H, W] -> (P3 [bs, c256, H/8, W/8], P4 [bs, c512, H/16, W/16],
    P5 [bs, c1024, H/32, W/32])`` with ``cN = make_divisible(N * width_multiple, 8)``.
    """

    def __init__(self, ch: int, depth_multiple: float, width_multiple: float) -> None:
        super().__init__()
        c = _widths(width_multiple)
        d = lambda n: scaled_depth(n, depth_multiple)  # noqa: E731
        self.stem = Conv(ch, c[64], 6, 2, 2)  # 0  P1/2
        self.down2 = Conv(c[64], c[128], 3, 2)  # 1  P2/4
        self.stage2 = C3(c[128], c[128], d(3))  # 2
        self.down3 = Conv(c[128], c[256], 3, 2)  # 3  P3/8
        self.stage3 = C3(c[256], c[256], d(6))  # 4
        self.down4 = Conv(c[256], c[512], 3, 2)  # 5  P4/16
        self.stage4 = C3(c[512], c[512], d(9))  # 6
        self.down5 = Conv(c[512], c[1024], 3, 2)  # 7  P5/32
        self.stage5 = C3(c[1024], c[1024], d(3))  # 8
        self.sppf = SPPF(c[1024], c[1024], 5)  # 9
        self.out_channels = (c[256], c[512], c[1024])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stage2(self.down2(self.stem(x)))
        p3 = self.stage3(self.down3(x))
        p4 = self.stage4(self.down4(p3))
        p5 = self.sppf(self.stage5(self.down5(p4)))
        return p3, p4, p5


def _up(x: torch.Tensor) -> torch.Tensor:
    """``nn.Upsample(None, 2, 'nearest')`` of the yaml (layers 11 and 15)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class Neck(nn.Module):
    """Layers 10-23 of the yaml: top-down FPN then bottom-up PAN, C3 blocks without shortcut.

    ``(P3, P4, P5) -> (N3 [bs, c256, H/8, W/8], N4 [bs, c512, H/16, W/16],
    N5 [bs, c1024, H/32, W/32])`` (layers 17, 20, 23).
    """

    def __init__(self, depth_multiple: float, width_multiple: float) -> None:
        super().__init__()
        c = _widths(width_multiple)
        n = scaled_depth(3, depth_multiple)
        self.lateral5 = Conv(c[1024], c[512], 1, 1)  # 10
        self.merge4 = C3(c[512] * 2, c[512], n, shortcut=False)  # 13 (after 11 up, 12 cat P4)
        self.lateral4 = Conv(c[512], c[256], 1, 1)  # 14
        self.out3 = C3(c[256] * 2, c[256], n, shortcut=False)  # 17 (after 15 up, 16 cat P3)
        self.down3 = Conv(c[256], c[256], 3, 2)  # 18
        self.out4 = C3(c[256] * 2, c[512], n, shortcut=False)  # 20 (after 19 cat 14)
        self.down4 = Conv(c[512], c[512], 3, 2)  # 21
        self.out5 = C3(c[512] * 2, c[1024], n, shortcut=False)  # 23 (after 22 cat 10)
        self.out_channels = (c[256], c[512], c[1024])

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = feats
        t5 = self.lateral5(p5)
        t4 = self.lateral4(self.merge4(torch.cat((_up(t5), p4), 1)))
        n3 = self.out3(torch.cat((_up(t4), p3), 1))
        n4 = self.out4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.out5(torch.cat((self.down4(n4), t5), 1))
        return n3, n4, n5


def _check_anchors(anchors, n_levels: int) -> torch.Tensor:
    """Anchors in pixels as ``[nl, na, 2]`` float32; each level a flat ``(w0, h0, w1, h1, ...)``
    list as in the yaml, or ``na`` pairs."""
    try:
        a = torch.as_tensor(anchors, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"anchors: expected {n_levels} levels of (w, h) pairs in pixels, "
                         f"got {anchors!r} ({e})") from None
    if a.ndim == 2 and a.shape[0] == n_levels and a.shape[1] % 2 == 0 and a.shape[1] > 0:
        a = a.reshape(n_levels, -1, 2)
    if a.ndim != 3 or a.shape[0] != n_levels or a.shape[1] == 0 or a.shape[2] != 2:
        raise ValueError(f"anchors: expected shape [{n_levels}, na, 2] or [{n_levels}, 2 * na] "
                         f"(pixels), got {tuple(a.shape)}")
    if not (torch.isfinite(a).all() and (a > 0).all()):
        raise ValueError("anchors: every anchor width and height must be finite and > 0")
    return a


class Detect(nn.Module):
    """YOLOv5 v7.0 ``Detect``: one 1x1 Conv2d (with bias) per level to ``na * (5 + nc)`` channels.

    Buffers: ``anchors`` [nl, na, 2] in grid units (pixels / stride), persistent (it is in the
    official state_dict as ``model.24.anchors``); ``stride`` [nl], not persistent.

    Forward, ``feats`` = per-level maps ``[bs, ch[i], ny_i, nx_i]``:
    - training: list of raw maps ``[bs, na, ny_i, nx_i, 5 + nc]`` (t_x, t_y, t_w, t_h, obj, cls...);
    - eval: ``(decoded [bs, sum_i na * ny_i * nx_i, 5 + nc], raw list)`` with decoded
      ``(cx, cy, w, h)`` in pixels, then σ(obj), σ(cls): xy = (2σ + (grid - 0.5)) * stride,
      wh = (2σ)² * anchor_pixels, in that order of operations (as v7.0's Detect; inline, not
      :func:`torch_impl.coder.yolov5_decode`, which returns xyxy).

    Bias init (v7.0 ``_initialize_biases``): obj += log(8 / (640 / s)²), cls += log(0.6 / (nc - 0.99999)).
    """

    def __init__(self, nc: int, anchors: TensorLike, ch: Sequence[int], strides: Sequence[float] = STRIDES) -> None:
        super().__init__()
        self.nc = check_count("nc", nc, 1)
        self.no = nc + 5
        a = _check_anchors(anchors, len(ch))
        self.nl, self.na = a.shape[0], a.shape[1]
        if len(strides) != self.nl:
            raise ValueError(f"strides: expected {self.nl} values, got {len(strides)}")
        stride = torch.tensor([float(s) for s in strides])
        self.register_buffer("anchors", a / stride.view(-1, 1, 1))  # grid units
        self.register_buffer("stride", stride, persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self._initialize_biases()

    @torch.no_grad()
    def _initialize_biases(self) -> None:
        for conv, s in zip(self.m, self.stride.tolist()):
            b = conv.bias.view(self.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)  # ~8 objects per 640 image
            b[:, 5:5 + self.nc] += math.log(0.6 / (self.nc - 0.99999))

    def forward(self, feats: Sequence[torch.Tensor]) -> HeadOutput:
        raw = []
        for i, x in enumerate(feats):
            y = self.m[i](x)
            bs, _, ny, nx = y.shape
            raw.append(y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return raw
        return torch.cat([self._decode(i, r) for i, r in enumerate(raw)], 1), raw

    def _decode(self, i: int, raw: torch.Tensor) -> torch.Tensor:
        bs, na, ny, nx, no = raw.shape
        stride = self.stride[i].to(raw.dtype)
        ys = torch.arange(ny, device=raw.device, dtype=raw.dtype)
        xs = torch.arange(nx, device=raw.device, dtype=raw.dtype)
        yv, xv = torch.meshgrid(ys, xs, indexing="ij")
        grid = (torch.stack((xv, yv), 2) - 0.5).view(1, 1, ny, nx, 2)  # (x, y) cell index - 0.5
        anchor_px = (self.anchors[i] * self.stride[i]).to(raw.dtype).view(1, na, 1, 1, 2)
        xy, wh, conf = raw.sigmoid().split((2, 2, no - 4), 4)
        xy = (xy * 2 + grid) * stride
        wh = (wh * 2) ** 2 * anchor_px
        return torch.cat((xy, wh, conf), 4).view(bs, na * ny * nx, no)


class DetectAnchorFree(nn.Module):
    """Anchor-free decoupled head (Ultralytics 8.3 / 8.4 YOLOv8 ``Detect``) on the v5 neck: per level a box
    branch Conv3x3 -> Conv3x3 -> Conv2d(4 * reg_max) and a class branch Conv3x3 -> Conv3x3 ->
    Conv2d(nc); widths ``max(16, ch[0] // 4, 4 * reg_max)`` and ``max(ch[0], min(nc, 100))``.
    No objectness.

    Forward:
    - training: list of ``[bs, 4 * reg_max + nc, ny_i, nx_i]`` (box logits side-major (l, t, r, b)
      x reg_max bins, then class logits);
    - eval: ``(decoded [bs, A, 4 + nc], raw list)``, decoded = (cx, cy, w, h) in pixels from the
      DFL expectation (:func:`torch_impl.coder.dfl_decode`, :func:`torch_impl.coder.dist2bbox`
      about cell centres :func:`torch_impl.coder.make_anchors`) times the stride, then σ(cls).
      (v8 returns the transpose ``[bs, 4 + nc, A]``.)

    Bias init (v8 ``bias_init``): box bias 1.0; cls bias log(5 / nc / (640 / s)²).
    """

    def __init__(self, nc: int, ch: Sequence[int], reg_max: int = 16,
                 strides: Sequence[float] = STRIDES) -> None:
        super().__init__()
        self.nc = check_count("nc", nc, 1)
        self.reg_max = check_count("reg_max", reg_max, minimum=2)
        self.nl = len(ch)
        self.no = 4 * reg_max + nc
        if len(strides) != self.nl:
            raise ValueError(f"strides: expected {self.nl} values, got {len(strides)}")
        self.register_buffer("stride", torch.tensor([float(s) for s in strides]), persistent=False)
        c_box = max(16, ch[0] // 4, 4 * reg_max)
        c_cls = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1))
            for c in ch)
        self.cv3 = nn.ModuleList(
            nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1))
            for c in ch)
        self._initialize_biases()

    @torch.no_grad()
    def _initialize_biases(self) -> None:
        for box, cls, s in zip(self.cv2, self.cv3, self.stride.tolist()):
            box[-1].bias.fill_(1.0)
            cls[-1].bias[:self.nc] = math.log(5 / self.nc / (640 / s) ** 2)

    def forward(self, feats: Sequence[torch.Tensor]) -> HeadOutput:
        raw = [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(feats, self.cv2, self.cv3)]
        if self.training:
            return raw
        bs = raw[0].shape[0]
        flat = torch.cat([r.flatten(2) for r in raw], 2).transpose(1, 2)  # [bs, A, no]
        box, cls = flat.split((4 * self.reg_max, self.nc), 2)
        points, strides = coder.make_anchors([tuple(r.shape[2:]) for r in raw], self.stride.to(flat.dtype),
                                             0.5, dtype=flat.dtype, device=flat.device)
        ltrb = coder.dfl_decode(box, self.reg_max)  # [bs, A, 4] in grid units
        xywh = coder.dist2bbox(ltrb, points.expand(bs, -1, -1), xywh=True) * strides
        return torch.cat((xywh, cls.sigmoid()), 2), raw


def _resolve_multiples(variant, depth_multiple, width_multiple) -> tuple[float, float]:
    if variant is None:
        if depth_multiple is None or width_multiple is None:
            raise ValueError("variant: None needs both depth_multiple and width_multiple")
        gd, gw = depth_multiple, width_multiple
    elif variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {sorted(VARIANTS)} or None, got {variant!r}")
    else:
        gd, gw = VARIANTS[variant]
        gd = gd if depth_multiple is None else depth_multiple
        gw = gw if width_multiple is None else width_multiple
    for name, v in (("depth_multiple", gd), ("width_multiple", gw)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    return float(gd), float(gw)


class _YOLOv5Body(nn.Module):
    """Backbone + neck shared by both heads; input checks; stride of the head."""

    def __init__(self, ch: int, depth_multiple: float, width_multiple: float) -> None:
        super().__init__()
        self.ch = check_count("ch", ch, 1)
        self.depth_multiple, self.width_multiple = depth_multiple, width_multiple
        self.backbone = Backbone(ch, depth_multiple, width_multiple)
        self.neck = Neck(depth_multiple, width_multiple)

    @property
    def stride(self) -> torch.Tensor:
        """``[nl]`` pixels per cell of each output level: (8, 16, 32)."""
        return self.head.stride

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.ch:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor [bs, {self.ch}, H, W], got {shape}")
        h, w = x.shape[2:]
        if h % 32 or w % 32 or h == 0 or w == 0:
            raise ValueError(f"x: H and W must be positive multiples of 32 (the largest stride), "
                             f"got {h}x{w}")
        if not x.is_floating_point():
            raise ValueError(f"x: expected a floating tensor, got {x.dtype}")

    def forward(self, x: torch.Tensor) -> HeadOutput:
        self._check_input(x)
        return self.head(list(self.neck(self.backbone(x))))


class YOLOv5(_YOLOv5Body):
    """YOLOv5 v7.0 ``DetectionModel`` (anchor-based).

    Args:
        nc (int): number of classes.
        anchors: ``[3, na, 2]`` (or ``[3, 2 * na]`` as in the yaml) anchor w, h in pixels; None
            for the v7.0 defaults.
        ch (int): input channels.
        depth_multiple, width_multiple (float): the yaml's ``depth_multiple`` / ``width_multiple``.

    Input ``x [bs, ch, H, W]`` with H, W multiples of 32. Output: see :class:`Detect`
    (training: per-level raw ``[bs, na, H/s, W/s, 5 + nc]`` for s = 8, 16, 32; eval:
    ``(decoded [bs, na * Σ HW/s², 5 + nc], raw list)``).

    Attributes: ``stride`` [3]; ``anchors_grid_units`` [3, na, 2] (what the loss uses);
    ``anchors_pixels`` [3, na, 2]; ``nc``, ``na``, ``nl``, ``no``.
    """

    def __init__(self, nc: int = 80, anchors: TensorLike | None = None, ch: int = 3, depth_multiple: float = 1.0,
                 width_multiple: float = 1.0) -> None:
        super().__init__(ch, depth_multiple, width_multiple)
        anchors = DEFAULT_ANCHORS if anchors is None else anchors
        self.head = Detect(nc, anchors, self.neck.out_channels, STRIDES)
        self.nc, self.na, self.nl, self.no = self.head.nc, self.head.na, self.head.nl, self.head.no

    @property
    def anchors_grid_units(self) -> torch.Tensor:
        """``[nl, na, 2]`` anchor w, h divided by their level's stride (the head's buffer)."""
        return self.head.anchors

    @property
    def anchors_pixels(self) -> torch.Tensor:
        """``[nl, na, 2]`` anchor w, h in pixels."""
        return self.head.anchors * self.head.stride.view(-1, 1, 1)


class YOLOv5AnchorFree(_YOLOv5Body):
    """The YOLOv5 v7.0 backbone and neck with the anchor-free DFL head :class:`DetectAnchorFree`.

    Output: training: per level ``[bs, 4 * reg_max + nc, H/s, W/s]``; eval:
    ``(decoded [bs, Σ HW/s², 4 + nc], raw list)``. No official v5 counterpart, so no state_dict
    import.
    """

    def __init__(self, nc: int = 80, reg_max: int = 16, ch: int = 3, depth_multiple: float = 1.0,
                 width_multiple: float = 1.0) -> None:
        super().__init__(ch, depth_multiple, width_multiple)
        self.head = DetectAnchorFree(nc, self.neck.out_channels, reg_max, STRIDES)
        self.nc, self.nl, self.reg_max, self.no = self.head.nc, self.head.nl, self.head.reg_max, self.head.no


def yolov5(variant: str | None, nc: int = 80, anchors: TensorLike | None = None, ch: int = 3, *,
           depth_multiple: float | None = None, width_multiple: float | None = None) -> YOLOv5:
    """Build a YOLOv5 v7.0 detection model.

    Args:
        variant (str | None): "n", "s", "m", "l" or "x" (the official depth/width multiples);
            None to give both multiples explicitly.
        nc (int): classes. anchors: pixels, ``[3, na, 2]``; None for the defaults.
        ch (int): input channels.
        depth_multiple, width_multiple (float | None): override the variant's multiples.

    Returns:
        YOLOv5: parameters (nc = 80): n 1,872,157; s 7,235,389; m 21,190,557; l 46,563,709;
        x 86,749,405, as the official models.
    """
    gd, gw = _resolve_multiples(variant, depth_multiple, width_multiple)
    return YOLOv5(nc=nc, anchors=anchors, ch=ch, depth_multiple=gd, width_multiple=gw)


def yolov5_anchor_free(variant: str | None, nc: int = 80, reg_max: int = 16, ch: int = 3, *,
                       depth_multiple: float | None = None,
                       width_multiple: float | None = None) -> YOLOv5AnchorFree:
    """Build the v5 backbone and neck with the v8-style anchor-free DFL head
    (:class:`YOLOv5AnchorFree`); arguments as :func:`yolov5`, plus ``reg_max`` DFL bins."""
    gd, gw = _resolve_multiples(variant, depth_multiple, width_multiple)
    return YOLOv5AnchorFree(nc=nc, reg_max=reg_max, ch=ch, depth_multiple=gd, width_multiple=gw)
