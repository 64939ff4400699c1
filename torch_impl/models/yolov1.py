"""YOLOv1 grid detectors of "YOLOv1 from Scratch" (``shared/reference/seed_systems.md``, section B).

``yolov1(S, B, nc, backbone)``: a backbone of stride 32, then a reduced head: ConvBNLeaky(3x3,
c -> 256) -> AdaptiveAvgPool2d(S) -> Conv2d(256, B*5 + C, 1). Output ``[bs, S, S, B*5 + C]``
(per cell B times ``(x, y, sqrt_w, sqrt_h, conf)``, then C class scores), the layout of
:func:`torch_impl.loss.yolov1_loss`; linear (the paper) or, with ``head_activation="sigmoid"``,
σ of every channel (the probability head the section C losses as printed expect). In eval mode
``(decoded, raw)`` (the engine's contract, :mod:`torch_impl.arch`): ``decoded`` [bs, S*S*B, 5 + C]
rows ``(x1, y1, x2, y2, conf, class scores...)`` in pixels of the input (see :meth:`YOLOv1.decode`).

Backbones:
- ``"darknet"``: a small darknet-style stack trained from scratch: five (Conv3x3 -> BN ->
  LeakyReLU(0.1) -> MaxPool 2) stages of 16, 32, 64, 128, 256 channels, then Conv3x3 to 512.
- ``"resnet18"``: the ResNet-18 layout built here, with the module names of
  ``torchvision.models.resnet18`` (``conv1``, ``bn1``, ``layer1.0.conv1`` ...
  ``layer4.1.bn2``, ``fc``), so a state_dict file saved from torchvision (e.g. its ImageNet
  weights file, downloaded by the user beforehand) loads key for key:
  :meth:`YOLOv1.load_backbone` (no download here, ever). The detector uses ``layer4``'s
  features; ``avgpool``/``fc`` exist only so the keys match.

Training options (section B's experiments): :meth:`YOLOv1.freeze_backbone` (no grad on the
backbone, its BatchNorm in eval mode), :meth:`YOLOv1.freeze_bn` (every BatchNorm of the
backbone in eval mode, no grad on its affine parameters: the cure for experiment 4), and
:meth:`YOLOv1.param_groups` (a backbone learning-rate factor).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ref_numpy.shared.checks import check_count
from torch_impl import coder

BACKBONES = ("darknet", "resnet18")
HEAD_ACTIVATIONS = ("linear", "sigmoid")


def _conv_bn_leaky(c_in: int, c_out: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


class DarknetSmall(nn.Module):
    """Five (ConvBNLeaky 3x3, MaxPool 2) stages (16 .. 256 channels), ConvBNLeaky 3x3 to 512:
    ``[bs, 3, H, W] -> [bs, 512, H/32, W/32]``."""

    out_channels = 512

    def __init__(self) -> None:
        super().__init__()
        layers, c = [], 3
        for c_out in (16, 32, 64, 128, 256):
            layers += [_conv_bn_leaky(c, c_out), nn.MaxPool2d(2, 2)]
            c = c_out
        layers.append(_conv_bn_leaky(c, self.out_channels))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock`` (same attribute names)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """The ResNet-18 layout with torchvision's key names; ``forward`` returns ``layer4``'s
    features ``[bs, 512, H/32, W/32]`` (``avgpool``/``fc`` are kept for the keys and for a
    classification pre-training: :meth:`classify`)."""

    out_channels = 512

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision's ``forward``: logits ``[bs, num_classes]``."""
        return self.fc(torch.flatten(self.avgpool(self.forward(x)), 1))


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a local file (``torch.save`` of a dict of tensors, or a checkpoint
    holding one under ``state_dict``/``model``); ValueError naming the file otherwise."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ValueError(f"backbone weights: no such file {p!r}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (any unpickling error becomes a clear message)
        raise ValueError(f"backbone weights: {p!r} is not a torch state_dict file ({e})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"backbone weights: {p!r} does not hold a mapping of name -> tensor")
    return dict(obj)


class YOLOv1(nn.Module):
    """Backbone + reduced YOLOv1 head. ``[bs, 3, H, W] -> [bs, S, S, B*5 + C]``.

    Attributes: ``S``, ``B``, ``nc``, ``backbone_name``, ``head_activation``,
    ``backbone_frozen``, ``bn_frozen``.
    """

    def __init__(self, S: int = 7, B: int = 2, nc: int = 20, backbone: str = "darknet",
                 head_activation: str = "linear", sqrt_wh: bool = True, class_logits: bool = False) -> None:
        super().__init__()
        self.S = check_count("S", S, 1)
        self.B = check_count("B", B, 1)
        self.nc = check_count("nc", nc, 1)
        if backbone not in BACKBONES:
            raise ValueError(f"backbone: expected one of {BACKBONES}, got {backbone!r}")
        if head_activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"head_activation: expected one of {HEAD_ACTIVATIONS}, got {head_activation!r}")
        self.backbone_name, self.head_activation = backbone, head_activation
        self.backbone = DarknetSmall() if backbone == "darknet" else ResNet18()
        self.head = nn.Sequential(_conv_bn_leaky(self.backbone.out_channels, 256), nn.AdaptiveAvgPool2d(self.S),
                                  nn.Conv2d(256, self.B * 5 + self.nc, 1))
        self.sqrt_wh, self.class_logits = bool(sqrt_wh), bool(class_logits)
        self.backbone_frozen = self.bn_frozen = False
        self.backbone_lr = 1.0
        self.register_buffer("stride", torch.tensor([32.0]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.head(self.backbone(x)).permute(0, 2, 3, 1)  # [bs, S, S, B*5 + C]
        y = y.sigmoid() if self.head_activation == "sigmoid" else y.contiguous()
        if self.training:
            return y
        return self.decode(y.float(), x.shape[2:]), y

    def decode(self, raw: torch.Tensor, hw: Sequence[int]) -> torch.Tensor:
        """``[bs, S, S, B*5 + C] -> [bs, S*S*B, 5 + C]`` rows ``(x1, y1, x2, y2, conf, cls...)``:
        centre ``(x + col) / S * W``, size ``sqrt_w² * W`` (``w * W`` without ``sqrt_wh``:
        :func:`torch_impl.coder.yolov1_decode`); conf clamped to [0, 1]; class scores σ(logits)
        with ``class_logits`` (the corrected section C losses), else clamped to [0, 1]; every
        box of a cell carries the cell's class scores (YOLOv1's class-specific confidence
        ``conf * Pr(class)`` is what the NMS scores)."""
        bs, S, _, _ = raw.shape
        H, W = int(hw[0]), int(hw[1])
        boxes = raw[..., : 5 * self.B].reshape(bs, S, S, self.B, 5)
        grid = coder.make_grid(S, S, device=raw.device).to(raw.dtype)[:, :, None, :]  # [S, S, 1, 2]
        wh = boxes[..., 2:4] if self.sqrt_wh else boxes[..., 2:4].clamp(min=0).sqrt()
        xyxy = coder.yolov1_decode(torch.cat([boxes[..., :2], wh], -1), grid, S, (H, W))
        cls = raw[..., 5 * self.B:]
        cls = cls.sigmoid() if self.class_logits else cls.clamp(0, 1)
        cls = cls[:, :, :, None, :].expand(bs, S, S, self.B, self.nc)
        rows = torch.cat([xyxy, boxes[..., 4:5].clamp(0, 1), cls], -1)
        return rows.reshape(bs, S * S * self.B, 5 + self.nc)

    # ------------------------------------------------------------------ training options
    def load_backbone(self, state_dict_or_path: Mapping[str, torch.Tensor] | str | os.PathLike) -> list[str]:
        """Load backbone weights (a mapping, or a local file) key for key; keys the backbone
        lacks (``fc.*`` of a classifier with another class count) are reported, not loaded.

        Returns: the keys that were not used. Raises ValueError for a missing backbone key or a
        shape mismatch, naming the key.
        """
        sd = (read_state_dict(state_dict_or_path) if isinstance(state_dict_or_path, (str, os.PathLike))
              else dict(state_dict_or_path))
        own = self.backbone.state_dict()
        missing = [k for k in own if k not in sd and not k.startswith("fc.")]
        if missing:
            raise ValueError(f"backbone weights: {len(missing)} tensors of the {self.backbone_name} layout are "
                             f"missing, first {missing[0]!r} (is it a {self.backbone_name} state_dict?)")
        use, unused = {}, []
        for k, v in sd.items():
            if k in own and tuple(own[k].shape) == tuple(v.shape):
                use[k] = v
            elif k in own and not k.startswith("fc."):
                raise ValueError(f"backbone weights: {k!r} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
            else:
                unused.append(k)
        self.backbone.load_state_dict(use, strict=False)
        return unused

    def _backbone_bns(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.backbone.modules() if isinstance(m, nn.BatchNorm2d)]

    def freeze_backbone(self, frozen: bool = True) -> None:
        """No gradient on any backbone parameter and its BatchNorm in eval mode (a frozen
        backbone is a fixed feature extractor, running statistics included)."""
        self.backbone_frozen = bool(frozen)
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        self.train(self.training)

    def freeze_bn(self, frozen: bool = True) -> None:
        """Every backbone BatchNorm in eval mode (running statistics fixed) and no gradient on
        its weight and bias; the rest of the backbone still trains."""
        self.bn_frozen = bool(frozen)
        for bn in self._backbone_bns():
            for p in bn.parameters():
                p.requires_grad_(not frozen and not self.backbone_frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> "YOLOv1":
        super().train(mode)
        if mode and (self.backbone_frozen or self.bn_frozen):
            for bn in self._backbone_bns():
                bn.eval()
        return self

    def adjust_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Give the backbone's parameters ``backbone_lr`` times the LR of their group: each
        group's backbone parameters move to a new group (same options, ``lr * backbone_lr``),
        appended after the originals so that group 0 stays the biases (the warmup's rule).
        Nothing happens when ``backbone_lr == 1``."""
        if self.backbone_lr == 1.0:
            return
        ids = {id(p) for p in self.backbone.parameters()}
        extra = []
        for g in optimizer.param_groups:
            bb = [p for p in g["params"] if id(p) in ids]
            if bb:
                g["params"] = [p for p in g["params"] if id(p) not in ids]
                extra.append({**{k: v for k, v in g.items() if k not in ("params", "initial_lr")},
                              "params": bb, "lr": g["lr"] * self.backbone_lr})
        for g in extra:
            optimizer.add_param_group(g)

    def param_groups(self, lr: float, backbone_lr: float = 1.0) -> list[dict]:
        """Optimizer parameter groups: the backbone at ``lr * backbone_lr``, the head at ``lr``
        (parameters without grad left out)."""
        bb = [p for p in self.backbone.parameters() if p.requires_grad]
        hd = [p for p in self.head.parameters() if p.requires_grad]
        groups = [{"params": hd, "lr": lr, "name": "head"}]
        if bb:
            groups.append({"params": bb, "lr": lr * backbone_lr, "name": "backbone"})
        return groups


def yolov1(S: int = 7, B: int = 2, nc: int = 20, backbone: str = "darknet",
           head_activation: str = "linear", sqrt_wh: bool = True, class_logits: bool = False) -> YOLOv1:
    """A YOLOv1 grid detector (see the module docstring). ``sqrt_wh``: the box channels carry
    sqrt(w), sqrt(h) (the v1 loss) or w, h (the section C losses); ``class_logits``: the class
    channels are logits (decoded with a sigmoid). Raises ValueError for a bad ``S``, ``B``,
    ``nc``, ``backbone`` or ``head_activation``."""
    return YOLOv1(S, B, nc, backbone, head_activation, sqrt_wh, class_logits)
