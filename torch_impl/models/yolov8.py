"""Ultralytics 8.3 / 8.4 YOLOv8 n/s/m/l/x detection models (``cfg/models/v8/yolov8.yaml``, the
same file in 8.3.253 and 8.4.190): ``Conv``, ``C2f``, ``SPPF`` backbone, PAN neck of ``C2f``
blocks, decoupled anchor-free ``Detect`` head with DFL (``reg_max`` 16), strides 8 / 16 / 32;
and the translation from / to the official ``DetectionModel`` state_dict (keys ``model.<layer>.<rest>``).

Channel arithmetic of ``parse_model``: ``make_divisible(min(c, max_channels) * width, 8)``,
repeats ``max(round(n * depth), 1)`` for ``n > 1``; scales ``[depth, width, max_channels]``
n ``[0.33, 0.25, 1024]``, s ``[0.33, 0.50, 1024]``, m ``[0.67, 0.75, 768]``, l ``[1.00, 1.00,
512]``, x ``[1.00, 1.25, 512]``. Submodules carry readable names (``backbone.stage3``,
``neck.out4``, ``head``) registered in the official layer order, so ``state_dict()`` lists the
same tensors in the same order and shapes as the official model (355 entries for every scale),
and :func:`load_yolov8_state_dict` is a prefix swap. Parameters for 80 classes, as the
official summaries: n 3,157,200; s 11,166,560; m 25,902,640; l 43,691,520; x 68,229,648
(including the 16 fixed DFL weights, ``head.dfl.conv.weight``, which do not train).

Blocks: :class:`torch_impl.models.Conv` (Conv2d no bias -> BatchNorm2d(eps 1e-3, momentum
0.03) -> SiLU) and :class:`torch_impl.models.SPPF` are the v5 ones (the same layout in v8);
``C2f`` and its ``Bottleneck`` (two 3x3 convs) are here.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ref_numpy.shared.checks import check_count
from torch_impl import coder
from torch_impl.models.common import SPPF, Conv, make_divisible, scaled_depth
from torch_impl.models.convert import load_official_tensors, rename_official_layers
from torch_impl.models.yolo import Backbone, HeadOutput, _up

# [depth, width, max_channels] of the yaml's ``scales``.
V8_VARIANTS: dict[str, tuple[float, float, int]] = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}
V8_STRIDES = (8, 16, 32)

# Our module prefix -> official layer index (parameter-free layers 10, 11, 13, 14, 17, 20:
# Upsample and Concat).
V8_LAYER_INDEX: dict[str, int] = {
    "backbone.stem": 0, "backbone.down2": 1, "backbone.stage2": 2, "backbone.down3": 3,
    "backbone.stage3": 4, "backbone.down4": 5, "backbone.stage4": 6, "backbone.down5": 7,
    "backbone.stage5": 8, "backbone.sppf": 9,
    "neck.merge4": 12, "neck.out3": 15, "neck.down3": 16, "neck.out4": 18, "neck.down4": 19,
    "neck.out5": 21,
    "head": 22,
}


class Bottleneck(nn.Module):
    """v8 ``Bottleneck`` as C2f builds it: two 3x3 Convs at ``int(c2 * e)`` then ``c2``
    channels; residual add when ``shortcut`` and ``c1 == c2``."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 3, 1)
        self.cv2 = Conv(hidden, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with 2 convolutions, the v8 way: ``cv1`` (1x1) to ``2c`` channels, split
    in two halves, ``n`` Bottlenecks chained on the second half with every intermediate kept,
    ``cv2`` (1x1) fuses the ``(2 + n) c`` channels to ``c2``; ``c = int(c2 * e)``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


def _widths(width: float, max_channels: int) -> dict[int, int]:
    return {c: make_divisible(min(c, max_channels) * width, 8) for c in (64, 128, 256, 512, 1024)}


class BackboneV8(nn.Module):
    """Layers 0-9: five stride-2 3x3 Convs with C2f (shortcut) stages between, then SPPF(k5).
    ``[bs, ch, H, W] -> (P3 /8, P4 /16, P5 /32)``."""

    def __init__(self, ch: int, depth: float, width: float, max_channels: int) -> None:
        super().__init__()
        c = _widths(width, max_channels)
        d = lambda n: scaled_depth(n, depth)  # noqa: E731
        self.stem = Conv(ch, c[64], 3, 2)  # 0  P1/2
        self.down2 = Conv(c[64], c[128], 3, 2)  # 1  P2/4
        self.stage2 = C2f(c[128], c[128], d(3), True)  # 2
        self.down3 = Conv(c[128], c[256], 3, 2)  # 3  P3/8
        self.stage3 = C2f(c[256], c[256], d(6), True)  # 4
        self.down4 = Conv(c[256], c[512], 3, 2)  # 5  P4/16
        self.stage4 = C2f(c[512], c[512], d(6), True)  # 6
        self.down5 = Conv(c[512], c[1024], 3, 2)  # 7  P5/32
        self.stage5 = C2f(c[1024], c[1024], d(3), True)  # 8
        self.sppf = SPPF(c[1024], c[1024], 5)  # 9
        self.out_channels = (c[256], c[512], c[1024])

    # the same data flow as YOLOv5 v7.0's backbone (stem, four down/stage pairs, SPPF; C2f for C3)
    forward = Backbone.forward


class NeckV8(nn.Module):
    """Layers 10-21: top-down (upsample, concat, C2f) then bottom-up (stride-2 Conv, concat,
    C2f), C2f without shortcut. ``(P3, P4, P5) -> (N3, N4, N5)`` (layers 15, 18, 21)."""

    def __init__(self, depth: float, width: float, max_channels: int) -> None:
        super().__init__()
        c = _widths(width, max_channels)
        n = scaled_depth(3, depth)
        self.merge4 = C2f(c[1024] + c[512], c[512], n)  # 12 (10 up, 11 cat P4)
        self.out3 = C2f(c[512] + c[256], c[256], n)  # 15 (13 up, 14 cat P3)
        self.down3 = Conv(c[256], c[256], 3, 2)  # 16
        self.out4 = C2f(c[256] + c[512], c[512], n)  # 18 (17 cat 12)
        self.down4 = Conv(c[512], c[512], 3, 2)  # 19
        self.out5 = C2f(c[512] + c[1024], c[1024], n)  # 21 (20 cat 9)
        self.out_channels = (c[256], c[512], c[1024])

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = feats
        t4 = self.merge4(torch.cat((_up(p5), p4), 1))
        n3 = self.out3(torch.cat((_up(t4), p3), 1))
        n4 = self.out4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.out5(torch.cat((self.down4(n4), p5), 1))
        return n3, n4, n5


class DFL(nn.Module):
    """The DFL integral: a fixed 1x1 Conv2d(reg_max, 1) whose weights are 0..reg_max-1 (a
    parameter that does not train, ``requires_grad`` False, as the official one: it is in the
    state_dict and the parameter count). ``[bs, 4 * reg_max, A] -> [bs, 4, A]``: softmax over
    each side's bins, then the expectation."""

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1))
        self.reg_max = reg_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class DetectV8(nn.Module):
    """Ultralytics 8.3 / 8.4 ``Detect`` (the ``legacy`` head of v3/v5/v8/v9 models): per level a box
    branch Conv3x3 -> Conv3x3 -> Conv2d(4 * reg_max) (``cv2``) and a class branch Conv3x3 ->
    Conv3x3 -> Conv2d(nc) (``cv3``), widths ``max(16, ch[0] // 4, 4 * reg_max)`` and
    ``max(ch[0], min(nc, 100))``; then the fixed :class:`DFL`.

    Forward, ``feats`` per level ``[bs, ch[i], ny_i, nx_i]``:
    - training: list of ``[bs, 4 * reg_max + nc, ny_i, nx_i]`` (box logits side-major (l, t, r,
      b) x reg_max bins, then class logits), what :func:`torch_impl.loss.yolov8_loss` takes;
    - eval: ``(decoded [bs, 4 + nc, A], raw list)`` with decoded = (cx, cy, w, h) in pixels
      (DFL expectation, ``dist2bbox`` about the cell centres, times the stride) then σ(cls):
      the official eval output (``A = Σ ny_i nx_i``, levels P3 first, row-major).

    Bias init (Ultralytics 8.4.190 ``bias_init``): box 2.0 (8.3.253: 1.0); cls
    log(5 / nc / (640 / s)²).
    """

    def __init__(self, nc: int, ch: Sequence[int], reg_max: int = 16,
                 strides: Sequence[float] = V8_STRIDES) -> None:
        super().__init__()
        self.nc = check_count("nc", nc, 1)
        self.reg_max = check_count("reg_max", reg_max, minimum=2)
        self.nl = len(ch)
        self.no = 4 * reg_max + nc
        if len(strides) != self.nl:
            raise ValueError(f"strides: expected {self.nl} values, got {len(strides)}")
        self._strides = tuple(float(s) for s in strides)
        self.register_buffer("stride", torch.tensor(self._strides), persistent=False)
        c_box = max(16, ch[0] // 4, 4 * reg_max)
        c_cls = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1))
            for c in ch)
        self.cv3 = nn.ModuleList(
            nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1))
            for c in ch)
        self.dfl = DFL(reg_max)
        self._initialize_biases()

    @torch.no_grad()
    def _initialize_biases(self) -> None:
        for box, cls, s in zip(self.cv2, self.cv3, self._strides):
            box[-1].bias.fill_(2.0)
            cls[-1].bias[:self.nc] = math.log(5 / self.nc / (640 / s) ** 2)

    def forward(self, feats: Sequence[torch.Tensor]) -> HeadOutput:
        raw = [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(feats, self.cv2, self.cv3)]
        if self.training:
            return raw
        return self.decode(raw), raw

    def decode(self, raw: Sequence[torch.Tensor]) -> torch.Tensor:
        """The eval output ``[bs, 4 + nc, A]`` of the per-level raw maps."""
        bs = raw[0].shape[0]
        flat = torch.cat([r.view(bs, self.no, -1) for r in raw], 2)  # [bs, no, A]
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        points, strides = coder.make_anchors([tuple(r.shape[2:]) for r in raw],
                                             self.stride.to(flat.dtype), 0.5, dtype=flat.dtype,
                                             device=flat.device)
        ltrb = self.dfl(box)  # [bs, 4, A] grid units
        lt, rb = ltrb.chunk(2, 1)
        anchor = points.transpose(0, 1).unsqueeze(0)  # [1, 2, A]
        x1y1, x2y2 = anchor - lt, anchor + rb
        xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides.transpose(0, 1)
        return torch.cat((xywh, cls.sigmoid()), 1)


def _check_input(x, ch: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != ch:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a tensor [bs, {ch}, H, W], got {shape}")
    h, w = x.shape[2:]
    if h % 32 or w % 32 or h == 0 or w == 0:
        raise ValueError(f"x: H and W must be positive multiples of 32 (the largest stride), got {h}x{w}")
    if not x.is_floating_point():
        raise ValueError(f"x: expected a floating tensor, got {x.dtype}")


class YOLOv8(nn.Module):
    """Ultralytics 8.3 / 8.4 YOLOv8 ``DetectionModel`` (``yolov8{n,s,m,l,x}.yaml``).

    Args:
        nc (int): classes. reg_max (int): DFL bins. ch (int): input channels.
        depth_multiple, width_multiple (float), max_channels (int): the yaml's scale.

    Input ``x [bs, ch, H, W]``, H and W multiples of 32. Output: see :class:`DetectV8`
    (training: per-level raw maps; eval: ``(decoded [bs, 4 + nc, A], raw list)``).

    Attributes: ``stride`` [3] (8, 16, 32); ``nc``, ``nl``, ``reg_max``, ``no``;
    ``depth_multiple``, ``width_multiple``, ``max_channels``.
    """

    def __init__(self, nc: int = 80, reg_max: int = 16, ch: int = 3, depth_multiple: float = 1.0,
                 width_multiple: float = 1.0, max_channels: int = 1024) -> None:
        super().__init__()
        self.ch = check_count("ch", ch, 1)
        self.max_channels = check_count("max_channels", max_channels, 8)
        self.depth_multiple, self.width_multiple = depth_multiple, width_multiple
        self.backbone = BackboneV8(ch, depth_multiple, width_multiple, self.max_channels)
        self.neck = NeckV8(depth_multiple, width_multiple, self.max_channels)
        self.head = DetectV8(nc, self.neck.out_channels, reg_max, V8_STRIDES)
        self.nc, self.nl, self.reg_max, self.no = self.head.nc, self.head.nl, self.head.reg_max, self.head.no

    @property
    def stride(self) -> torch.Tensor:
        """``[nl]`` pixels per cell of each output level: (8, 16, 32)."""
        return self.head.stride

    def forward(self, x: torch.Tensor) -> HeadOutput:
        _check_input(x, self.ch)
        return self.head(list(self.neck(self.backbone(x))))


def yolov8(variant: str | None, nc: int = 80, reg_max: int = 16, ch: int = 3, *,
           depth_multiple: float | None = None, width_multiple: float | None = None,
           max_channels: int | None = None) -> YOLOv8:
    """Build an Ultralytics 8.3 / 8.4 YOLOv8 detection model.

    Args:
        variant (str | None): "n", "s", "m", "l" or "x" (the yaml's scales); None to give
            ``depth_multiple`` and ``width_multiple`` (``max_channels`` default 1024).
        nc (int): classes. reg_max (int): DFL bins (16). ch (int): input channels.
        depth_multiple, width_multiple, max_channels: override the variant's.

    Returns:
        YOLOv8: parameters (nc = 80): n 3,157,200; s 11,166,560; m 25,902,640; l 43,691,520;
        x 68,229,648, as the official models.
    """
    if variant is None:
        if depth_multiple is None or width_multiple is None:
            raise ValueError("variant: None needs both depth_multiple and width_multiple")
        gd, gw, mc = depth_multiple, width_multiple, 1024 if max_channels is None else max_channels
    elif variant not in V8_VARIANTS:
        raise ValueError(f"variant: expected one of {sorted(V8_VARIANTS)} or None, got {variant!r}")
    else:
        gd, gw, mc = V8_VARIANTS[variant]
        gd = gd if depth_multiple is None else depth_multiple
        gw = gw if width_multiple is None else width_multiple
        mc = mc if max_channels is None else max_channels
    for name, v in (("depth_multiple", gd), ("width_multiple", gw)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    return YOLOv8(nc=nc, reg_max=reg_max, ch=ch, depth_multiple=float(gd), width_multiple=float(gw),
                  max_channels=int(mc))


def yolov8_parameter_count(variant: str, nc: int = 80, reg_max: int = 16) -> int:
    """The parameter count of ``yolov8(variant, nc)`` without building it (the same arithmetic
    as the modules: Conv = k²·c1·c2 + 2·c2 (BatchNorm), C2f, SPPF, the Detect branches and the
    reg_max DFL weights)."""
    gd, gw, mc = V8_VARIANTS[variant]
    c = _widths(gw, mc)
    conv = lambda c1, c2, k=1: k * k * c1 * c2 + 2 * c2  # noqa: E731
    def c2f(c1, c2, n):
        h = int(c2 * 0.5)
        return conv(c1, 2 * h) + conv((2 + n) * h, c2) + n * (conv(h, h, 3) + conv(h, h, 3))
    d = lambda n: scaled_depth(n, gd)  # noqa: E731
    total = conv(3, c[64], 3) + conv(c[64], c[128], 3) + c2f(c[128], c[128], d(3))
    total += conv(c[128], c[256], 3) + c2f(c[256], c[256], d(6))
    total += conv(c[256], c[512], 3) + c2f(c[512], c[512], d(6))
    total += conv(c[512], c[1024], 3) + c2f(c[1024], c[1024], d(3))
    total += conv(c[1024], c[1024] // 2) + conv(c[1024] // 2 * 4, c[1024])  # SPPF
    n = d(3)
    total += c2f(c[1024] + c[512], c[512], n) + c2f(c[512] + c[256], c[256], n)
    total += conv(c[256], c[256], 3) + c2f(c[256] + c[512], c[512], n)
    total += conv(c[512], c[512], 3) + c2f(c[512] + c[1024], c[1024], n)
    ch = (c[256], c[512], c[1024])
    cb, cc = max(16, ch[0] // 4, 4 * reg_max), max(ch[0], min(nc, 100))
    for x in ch:
        total += conv(x, cb, 3) + conv(cb, cb, 3) + cb * 4 * reg_max + 4 * reg_max
        total += conv(x, cc, 3) + conv(cc, cc, 3) + cc * nc + nc
    return total + reg_max


# ----------------------------------------------------------------------------- official keys

_OPTIONAL_SUFFIX = "num_batches_tracked"


def _to_official(key: str) -> str:
    for prefix, index in V8_LAYER_INDEX.items():
        if key.startswith(prefix + "."):
            return f"model.{index}.{key[len(prefix) + 1:]}"
    raise KeyError(key)


def official_v8_keys_to_ours(state_dict: Mapping) -> dict:
    """Official keys (``model.22.cv2.0.0.conv.weight``, or without ``model.``) -> ours
    (``head.cv2.0.0.conv.weight``); other keys pass through."""
    return rename_official_layers(state_dict, V8_LAYER_INDEX)


def to_yolov8_state_dict(model: YOLOv8) -> "OrderedDict[str, torch.Tensor]":
    """Our ``model.state_dict()`` under the official keys, in the official order (tensors
    shared). Inverse of :func:`load_yolov8_state_dict`."""
    if not isinstance(model, YOLOv8):
        raise ValueError(f"model: expected a torch_impl.models.YOLOv8, got {type(model).__name__}")
    return OrderedDict((_to_official(k), v) for k, v in model.state_dict().items())


def load_yolov8_state_dict(model: YOLOv8, state_dict: Mapping) -> YOLOv8:
    """Copy an official YOLOv8 state_dict (``DetectionModel.state_dict()``: ``model.0.conv
    .weight`` ... ``model.22.dfl.conv.weight``, or the same without ``model.``) into ``model``
    (in place, values cast to the model's dtype) and return it.

    Raises:
        ValueError: naming the first official key (in our order) missing or of another shape
            (wrong variant or nc), or the first key the model has no place for.
            ``num_batches_tracked`` entries may be absent.
    """
    if not isinstance(model, YOLOv8):
        raise ValueError(f"model: expected a torch_impl.models.YOLOv8, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict: expected a mapping of name -> tensor, got "
                         f"{type(state_dict).__name__}")
    given = {(k if k.startswith("model.") else f"model.{k}"): v for k, v in state_dict.items()}
    return load_official_tensors(model, given, _to_official, model_kind="YOLOv8",
                                 shape_hint="check variant and nc")


def import_yolov8_state_dict(state_dict: Mapping, variant: str = "n", nc: int | None = None) -> YOLOv8:
    """A :class:`YOLOv8` of ``variant`` built to fit an official state_dict (``nc`` None: read
    from ``model.22.cv3.0.2.weight``), its weights loaded (:func:`load_yolov8_state_dict`)."""
    given = {(k if k.startswith("model.") else f"model.{k}"): v for k, v in state_dict.items()}
    if nc is None:
        w = given.get("model.22.cv3.0.2.weight")
        if w is None:
            raise ValueError("nc (--nc): cannot infer it from model.22.cv3.0.2.weight; pass it")
        nc = int(w.shape[0])
    return load_yolov8_state_dict(yolov8(variant, nc=nc), given)


def import_yolov8(src: str | os.PathLike, dst: str | os.PathLike, variant: str = "n",
                  nc: int | None = None, names: Sequence[str] | None = None) -> dict:
    """Convert the official state_dict file ``src`` (a dict of tensors, read with
    ``weights_only=True``) into this toolkit's model file ``dst`` (``{"model", "ema": None,
    "model_cfg": {"arch": "yolov8", "nc", "variant", "depth_multiple", "width_multiple",
    "max_channels", "reg_max"}, "names", "source": "import-yolov8"}``), which ``yolo-ref
    predict`` / ``train --arch yolov8 --weights`` read.

    Returns:
        ``model_cfg`` plus ``"parameters"``.

    Raises:
        ValueError: an unreadable file or one that is not a state_dict (with the recipe for an
            official pickled checkpoint), weights that do not fit, ``names`` of the wrong length.
    """
    from torch_impl.models.convert import read_yolov5_state_dict  # the same file rules
    from torch_impl.train.checkpoint import save_checkpoint  # (torch_impl.train imports models)

    sd = read_yolov5_state_dict(src)
    model = import_yolov8_state_dict(sd, variant, nc=nc)
    names = [f"class{k}" for k in range(model.nc)] if names is None else [str(n) for n in names]
    if len(names) != model.nc:
        raise ValueError(f"names (--names): {len(names)} class names for a model of "
                         f"{model.nc} classes")
    cfg = {"arch": "yolov8", "nc": model.nc, "variant": variant, **yolov8_config(model)}
    save_checkpoint({"model": model.state_dict(), "ema": None, "names": names,
                     "source": "import-yolov8", "model_cfg": cfg}, dst)
    return {**cfg, "parameters": sum(p.numel() for p in model.parameters())}


def yolov8_config(model: YOLOv8) -> dict:
    """The build options that rebuild ``model``'s layout: ``yolov8(None, nc, **them)``."""
    return {"depth_multiple": model.depth_multiple, "width_multiple": model.width_multiple,
            "max_channels": model.max_channels, "reg_max": model.reg_max}
