"""Training health checks: the failure modes YOLO write-ups warn about, found while training.

A :class:`HealthMonitor` watches one run (the trainer creates it unless ``--no-health``):

- before training, :meth:`HealthMonitor.check_data` looks at the labels against the images:
  boxes a few pixels wide (normalised twice?), and boxes that fit the image content worse than
  the same boxes with x and y swapped (x/y swapped in the labels?);
- every training batch, :meth:`HealthMonitor.on_batch` (the ``on_batch`` hook of
  :func:`torch_impl.train.engine.train_one_epoch`) counts the positives per level
  (:func:`torch_impl.assign.yolov5_build_targets`, what the loss sees) and the ground truths
  with no positive anchor, each with its reason: the width / height ratio to every anchor
  beyond ``anchor_t``, anchors in the wrong units for the stride (they would match if read as
  pixels: pixel anchors where grid units are expected), objects too small for the finest level
  (or too large for the coarsest); and it follows the loss terms: an objectness loss that
  explodes (x :data:`EXPLODE` its start) or collapses (below :data:`COLLAPSE` x its start);
- every validation batch, :meth:`HealthMonitor.on_predictions` measures how many decoded
  boxes lie mostly outside the image;
- :meth:`HealthMonitor.end_epoch` adds a term stuck at zero for the whole epoch and logs one
  summary line.

A finding is logged once per kind and epoch when it first appears (``"health: ..."`` through
the ``log`` callback) and kept in :attr:`HealthMonitor.findings`; the summaries of the epochs
are in :attr:`HealthMonitor.epochs`. Library code: nothing is printed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from torch_impl.assign import yolov5_build_targets
from torch_impl.train.ema import unwrap

if TYPE_CHECKING:
    from torch_impl.data import DetectionDataset

__all__ = ["COLLAPSE", "EXPLODE", "Finding", "HealthMonitor", "KINDS", "box_alignment"]

# An objectness loss above EXPLODE x (or below COLLAPSE x) its median over the first
# BASELINE_STEPS steps of the run is reported.
EXPLODE = 10.0
COLLAPSE = 1e-3
BASELINE_STEPS = 4
# Labels: a box whose longer side is under TINY_PX pixels (in its own image) is "tiny".
TINY_PX = 2.0
# Validation: a decoded box is "off the image" when more than half its area lies outside;
# reported when more than OFF_IMAGE_FRACTION of the boxes (at least MIN_BOXES) are.
OFF_IMAGE_FRACTION = 0.5
MIN_BOXES = 10
# x/y swap: reported when the swapped boxes fit the image edges SWAP_GAIN x better (median
# over the images checked, at least SWAP_MIN_IMAGES of them; on the shapes set correct labels
# fit about 1.9x better than their swap).
SWAP_GAIN = 1.3
SWAP_MIN_IMAGES = 3

KINDS = {
    "anchors_units": "anchors larger than the image",
    "no_positive": "GTs with no positive anchor",
    "labels_tiny": "labels a few pixels wide",
    "labels_swapped": "labels with x/y swapped",
    "obj_explode": "objectness loss exploding",
    "obj_collapse": "objectness loss collapsing",
    "boxes_off_image": "decoded boxes outside the image",
    "loss_zero": "a loss term stuck at zero",
}

Log = Callable[[str], None]


@dataclass
class Finding:
    """One health finding.

    Fields:
        kind: a key of :data:`KINDS`.
        message: what was seen, in the user's units, and what to check.
        epoch: 1-based epoch (0: before training).
        step: global training step where it was first seen (None: not tied to a step).
        details: numbers behind the message (counts per reason, values, ...).
    """

    kind: str
    message: str
    epoch: int
    step: int | None = None
    details: dict = field(default_factory=dict)


def _edge_map(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude ``[H, W]`` of the grey image (forward differences, L1)."""
    g = img.astype(np.float64).mean(-1)
    e = np.zeros_like(g)
    e[:, :-1] += np.abs(np.diff(g, axis=1))
    e[:-1, :] += np.abs(np.diff(g, axis=0))
    return e


def box_alignment(img: np.ndarray, boxes: np.ndarray) -> float:
    """How well ``boxes`` (xyxy pixels ``[n, 4]``) sit on the content of ``img`` (``uint8
    [H, W, 3]``): a tight box touches its object on all four sides, so each side (a 3 px band)
    holds a strong edge. Per box the mean over its sides of the strongest edge on the side,
    over the image's 95th-percentile edge strength; the median over the boxes (NaN when no box
    is at least 2 px wide and high, or the image is flat). Only comparisons of the same image
    mean something (labels as given vs. x/y swapped)."""
    e = _edge_map(img)
    h, w = e.shape
    ref = float(np.percentile(e, 95))
    if ref <= 0:
        return float("nan")
    scores = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, c1 = (int(round(v)) for v in np.clip([x1, x2], 0, w - 1))
        r0, r1 = (int(round(v)) for v in np.clip([y1, y2], 0, h - 1))
        if c1 - c0 < 2 or r1 - r0 < 2:
            continue
        sides = (e[r0:r1 + 1, max(c0 - 1, 0):c0 + 2], e[r0:r1 + 1, max(c1 - 2, 0):c1 + 1],
                 e[max(r0 - 1, 0):r0 + 2, c0:c1 + 1], e[max(r1 - 2, 0):r1 + 1, c0:c1 + 1])
        scores.append(np.mean([band.max() for band in sides]) / ref)
    return float(np.median(scores)) if scores else float("nan")


def _swap_xy(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """The boxes whose normalised labels have x and y (and w and h) exchanged."""
    x1, y1, x2, y2 = np.moveaxis(np.asarray(boxes, np.float64).reshape(-1, 4), -1, 0)
    return np.stack([y1 / h * w, x1 / w * h, y2 / h * w, x2 / w * h], -1)


class HealthMonitor:
    """The health checks of one training run (see the module docstring).

    Args:
        model: the :class:`torch_impl.models.YOLOv5` being trained (its ``anchors_grid_units``
            are what the loss uses) or a :class:`torch_impl.models.YOLOv5AnchorFree` (then only
            the loss and box checks run).
        img_size: the network input side in pixels.
        anchor_t: the loss's anchor ratio threshold.
        nc: number of classes (with one class YOLOv5's class loss is zero by design).
        log: called with each finding as it appears and each epoch's summary; None: silent.

    Attributes:
        findings (list[Finding]): every finding, in order.
        epochs (list[dict]): per epoch ``{"epoch", "gts", "no_positive", "reasons",
            "positives" (per level), "off_image", "boxes", "findings" (kinds), "ok"}``.
    """

    def __init__(self, model: torch.nn.Module, img_size: int, anchor_t: float = 4.0, nc: int | None = None,
                 log: Log | None = None) -> None:
        self.model = unwrap(model)
        self.img_size = int(img_size)
        self.anchor_t = float(anchor_t)
        self.nc = nc
        self.log = log
        self.anchor_based = hasattr(self.model, "anchors_grid_units")
        self.findings: list[Finding] = []
        self.epochs: list[dict] = []
        self._obj: list[float] = []
        self._epoch = 0  # epochs closed so far
        self._started = False
        self._new_epoch()

    # ------------------------------------------------------------------ bookkeeping
    def _new_epoch(self) -> None:
        nl = len(self.model.stride)
        self._cur = {"gts": 0, "no_positive": 0, "reasons": {}, "positives": [0] * nl,
                     "off_image": 0, "boxes": 0, "terms": {}, "kinds": set()}

    def _report(self, kind: str, message: str, step: int | None = None, **details) -> None:
        if kind in self._cur["kinds"]:
            return
        self._cur["kinds"].add(kind)
        f = Finding(kind, message, self._epoch + 1 if self._started else 0, step, details)
        self.findings.append(f)
        if self.log is not None:
            where = f"epoch {f.epoch}, step {step}: " if step is not None else ""
            self.log(f"health: {where}{message}")

    # ------------------------------------------------------------------ data
    def check_data(self, dataset: DetectionDataset, max_images: int = 16) -> list[Finding]:
        """Check the labels of ``dataset`` (a :class:`torch_impl.data.DetectionDataset`; up to
        ``max_images`` images with objects, spread over the set) before training: tiny boxes
        and x/y swapped. Returns the findings (also logged)."""
        before = len(self.findings)
        n = len(dataset)
        picks = np.unique(np.linspace(0, n - 1, min(n, max_images)).round().astype(int)) \
            if n else []
        sides, gains, given_scores = [], [], []
        for i in picks:
            img, boxes, _ = dataset.load(int(i))
            if len(boxes) == 0:
                continue
            h, w = img.shape[:2]
            sides.append(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))
            given = box_alignment(img, boxes)
            swapped = box_alignment(img, _swap_xy(boxes, h, w))
            if np.isfinite(given) and np.isfinite(swapped):
                gains.append(swapped / max(given, 1e-12))
                given_scores.append(given)
        if sides:
            s = np.concatenate(sides)
            tiny = float((s < TINY_PX).mean())
            if tiny > 0.5:
                self._report("labels_tiny",
                             f"{tiny:.0%} of the label boxes are under {TINY_PX:g} px (median "
                             f"longer side {np.median(s):.2g} px in the original images): "
                             f"were the labels normalised twice (divided by the image size "
                             f"after already being in 0..1)?", median_px=float(np.median(s)),
                             fraction=tiny)
        if len(gains) >= SWAP_MIN_IMAGES:
            g = float(np.median(gains))
            if g >= SWAP_GAIN:
                self._report("labels_swapped",
                             f"the label boxes cover the image content {g:.1f}x better with "
                             f"x and y swapped (median over {len(gains)} images; as given their "
                             f"sides hold {np.median(given_scores):.2f}x the image's strong "
                             f"edges): are the label columns 'class cy cx h w' instead of "
                             f"'class cx cy w h'?", gain=g, images=len(gains))
        return self.findings[before:]

    # ------------------------------------------------------------------ training batches
    def on_batch(self, ni: int, imgs: torch.Tensor, targets: torch.Tensor, parts: dict) -> None:
        """The ``on_batch`` hook: assignment statistics of ``targets`` (``[n, 6]`` rows
        ``(image, cls, cx, cy, w, h)`` normalised) for ``imgs`` ``[B, 3, H, W]``, and the loss
        terms ``parts``."""
        self._started = True
        values = {k: float(v) for k, v in parts.items()}
        for k, v in values.items():
            self._cur["terms"].setdefault(k, []).append(v)
        n_gt = int(targets.shape[0])
        if self.anchor_based and n_gt:
            self._assignment(ni, imgs.shape[2:], targets.detach())
        if "obj" in values and n_gt:
            self._objectness(ni, values["obj"])

    def _assignment(self, ni: int, hw, t: torch.Tensor) -> None:
        h, w = int(hw[0]), int(hw[1])
        m = self.model
        anchors = m.anchors_grid_units.detach().to(t.device, torch.float64)  # [nl, na, 2]
        strides = m.stride.detach().to(t.device, torch.float64).tolist()
        for lvl, s in enumerate(strides):
            px = anchors[lvl] * s
            if float(px.amin()) > max(h, w):
                self._report("anchors_units",
                             f"P{lvl + 3} anchors are {_fmt_wh(px.min(0).values)} .. "
                             f"{_fmt_wh(px.max(0).values)} px (grid units x stride {s:g}) on a "
                             f"{w}x{h} input, every one larger than the image: anchors in the "
                             f"wrong units for the stride (pixels where grid units are "
                             f"expected: divide by the stride)?", step=ni, level=lvl)
                break
        t = t.to(torch.float64)
        grids = [(h // int(s), w // int(s)) for s in strides]
        _, _, indices, _ = yolov5_build_targets(t, anchors, grids, anchor_t=self.anchor_t)
        for lvl, idx in enumerate(indices):
            self._cur["positives"][lvl] += int(idx[0].numel())
        wh_px = t[:, 4:6] * t.new_tensor([w, h])  # [n, 2]
        thr = self.anchor_t
        matched = torch.zeros(len(t), dtype=torch.bool, device=t.device)
        as_pixels = torch.zeros_like(matched)
        small = torch.ones_like(matched)
        big = torch.ones_like(matched)
        for lvl, s in enumerate(strides):
            r = wh_px[:, None] / (anchors[lvl] * s)[None]  # [n, na, 2]
            matched |= (torch.maximum(r, 1 / r).amax(2) < thr).any(1)
            small &= ((1 / r).amax(2) >= thr).all(1)
            big &= (r.amax(2) >= thr).all(1)
            rp = wh_px[:, None] / anchors[lvl][None]  # the anchor values read as pixels
            as_pixels |= (torch.maximum(rp, 1 / rp).amax(2) < thr).any(1)
        lost = ~matched
        self._cur["gts"] += len(t)
        n_lost = int(lost.sum())
        if not n_lost:
            return
        self._cur["no_positive"] += n_lost
        # anchors read as pixels also fit sub-pixel boxes: those are tiny objects, not units; and
        # a few small objects of a healthy set fit grid-unit anchors read as pixels too, so the
        # units are blamed only when the anchors themselves look like pixels (a level whose every
        # anchor, x stride, is larger than the input)
        pixel_like = any(float((anchors[lvl] * s).amin()) > max(h, w) for lvl, s in enumerate(strides))
        units = lost & as_pixels & (wh_px.amax(1) >= TINY_PX) & pixel_like
        tiny = lost & ~units & small
        huge = lost & ~units & ~small & big
        ratio = lost & ~units & ~small & ~big
        reasons = {
            "anchors in the wrong units for the stride": int(units.sum()),
            "objects too small for the finest level": int(tiny.sum()),
            "objects too large for the coarsest level": int(huge.sum()),
            f"width/height ratio to every anchor beyond anchor_t {thr:g}": int(ratio.sum()),
        }
        for k, v in reasons.items():
            if v:
                self._cur["reasons"][k] = self._cur["reasons"].get(k, 0) + v
        main = max(reasons, key=reasons.get)
        anchors_px = (anchors * anchors.new_tensor(strides).view(-1, 1, 1)).reshape(-1, 2)
        hint = {
            "anchors in the wrong units for the stride": lambda:
                f"the anchors the loss gets ({_fmt_wh(anchors_px.min(0).values)} .. "
                f"{_fmt_wh(anchors_px.max(0).values)} px after x stride) match these objects "
                f"only if read as pixels: pass anchors in grid units (pixels / stride)",
            "objects too small for the finest level": lambda:
                f"median object {_fmt_wh(wh_px[tiny].median(0).values)} px, smallest anchor "
                f"{_fmt_wh(anchors_px.min(0).values)} px / anchor_t {thr:g}"
                + (": are the labels normalised twice?"
                   if float(wh_px[tiny].amax(1).median()) < TINY_PX else
                   ": add smaller anchors or a finer level, or a larger --img-size"),
            "objects too large for the coarsest level": lambda:
                f"median object {_fmt_wh(wh_px[huge].median(0).values)} px, largest anchor "
                f"{_fmt_wh(anchors_px.max(0).values)} px x anchor_t {thr:g}",
            f"width/height ratio to every anchor beyond anchor_t {thr:g}": lambda:
                "very elongated objects: refit the anchors (autoanchor) or raise anchor_t",
        }[main]()
        self._report("no_positive",
                     f"{n_lost} of {len(t)} GTs in this batch have no positive anchor: "
                     f"{main} ({reasons[main]}); {hint}", step=ni,
                     reasons={k: v for k, v in reasons.items() if v})

    def _objectness(self, ni: int, obj: float) -> None:
        self._obj.append(obj)
        if len(self._obj) <= BASELINE_STEPS:
            return
        base = float(np.median(self._obj[:BASELINE_STEPS]))
        if not (np.isfinite(obj) and base > 0):
            return
        if obj > EXPLODE * base:
            self._report("obj_explode",
                         f"objectness loss {obj:.4g} is {obj / base:.0f}x its start "
                         f"({base:.4g}): lower the LR / obj gain, or check the targets",
                         step=ni, value=obj, start=base)
        elif obj < COLLAPSE * base:
            self._report("obj_collapse",
                         f"objectness loss {obj:.3g} collapsed below {COLLAPSE:g}x its start "
                         f"({base:.4g}): the model predicts no objects anywhere (no "
                         f"positives reaching the loss?)", step=ni, value=obj, start=base)

    # ------------------------------------------------------------------ validation
    def on_predictions(self, dets: Sequence[torch.Tensor], hw: tuple[int, int]) -> None:
        """The ``on_predictions`` hook of :func:`torch_impl.train.engine.validate`: ``dets``
        per image ``[n, 6]`` (xyxy in network-input pixels, score, class) for an input of
        ``hw`` pixels."""
        h, w = float(hw[0]), float(hw[1])
        for det in dets:
            if not len(det):
                continue
            b = det[:, :4].detach().double()
            area = ((b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0))
            iw = (b[:, 2].clamp(0, w) - b[:, 0].clamp(0, w)).clamp(min=0)
            ih = (b[:, 3].clamp(0, h) - b[:, 1].clamp(0, h)).clamp(min=0)
            inside = iw * ih
            off = inside < 0.5 * area
            self._cur["off_image"] += int(off.sum())
            self._cur["boxes"] += len(b)

    # ------------------------------------------------------------------ epoch end
    def end_epoch(self, epoch: int, losses: dict | None = None) -> dict:
        """Close epoch ``epoch`` (1-based): the whole-epoch checks (a loss term stuck at
        zero, boxes off the image), one summary line to ``log``; returns the summary."""
        cur = self._cur
        self._epoch, self._started = epoch - 1, True
        for k, vals in cur["terms"].items():
            one_class = k == "cls" and self.nc == 1  # YOLOv5 computes no class loss then
            if vals and max(abs(v) for v in vals) < 1e-12 and cur["gts"] and not one_class:
                self._report("loss_zero",
                             f"the {k} loss was 0 for the whole epoch ({len(vals)} batches, "
                             f"{cur['gts']} GTs): no positives reach it (see the GTs without "
                             f"a positive anchor) or its gain is 0", step=None, term=k)
        if cur["boxes"] >= MIN_BOXES and cur["off_image"] > OFF_IMAGE_FRACTION * cur["boxes"]:
            self._report("boxes_off_image",
                         f"{cur['off_image']} of {cur['boxes']} decoded validation boxes lie "
                         f"mostly outside the {self.img_size} px image: the decoded sizes are "
                         f"far too large (anchors in pixels where grid units are expected, or "
                         f"anchors for a much larger --img-size?)",
                         off=cur["off_image"], boxes=cur["boxes"])
        summary = {"epoch": epoch, "gts": cur["gts"], "no_positive": cur["no_positive"],
                   "reasons": dict(cur["reasons"]), "positives": list(cur["positives"]),
                   "off_image": cur["off_image"], "boxes": cur["boxes"],
                   "findings": sorted(cur["kinds"]), "ok": not cur["kinds"]}
        self.epochs.append(summary)
        if self.log is not None:
            parts = [f"health epoch {epoch}:"]
            if self.anchor_based:
                levels = " / ".join(f"P{lvl + 3} {n}" for lvl, n in enumerate(cur["positives"]))
                parts.append(f"positives {levels};")
                parts.append(f"{cur['no_positive']} of {cur['gts']} GTs without a positive "
                             f"anchor;")
            if cur["boxes"]:
                parts.append(f"{cur['off_image']} of {cur['boxes']} val boxes off the image;")
            parts.append("ok" if not cur["kinds"] else
                         "findings: " + ", ".join(KINDS[k] for k in sorted(cur["kinds"])))
            self.log(" ".join(parts))
        self._epoch = epoch
        self._new_epoch()
        return summary

    @property
    def ok(self) -> bool:
        """True when nothing was found so far."""
        return not self.findings


def _fmt_wh(v: torch.Tensor) -> str:
    return "x".join(f"{float(x):.3g}" for x in v.tolist())
