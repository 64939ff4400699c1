"""Target assignment over a whole data set (and a real model): the array work of the report.

Steps of :func:`dataset_assignment_report`:

1. :func:`read_dataset_gts`: the GT boxes of every image (any format ``DetectionDataset``
   reads; image sizes from the file headers, no decoding), letterboxed to ``img_size``
   (:func:`letterbox_gts`, YOLOv5's val letterbox);
2. :func:`assign_dataset`: the assigner's :class:`~ref_numpy.shared.report.AssignmentReport`
   for every image (anchor-based assigners on all images at once, one target row per GT with
   its image index; TAL and YOLOv1 in chunks of images), on the side of ``backend``;
3. :func:`gt_records`: one plain record per GT (fields: :mod:`ref_numpy.shared.assign_summary`)
   with the failing test in numbers: the ratio of the box to every anchor and the test that
   rejects it (``w/aw = 28.8 >= anchor_t 4``), the cause (aspect ratio when no scale of the
   box fits any anchor's shape, i.e. ``(w/h) / (aw/ah)`` is beyond ``anchor_t²`` for every
   anchor; too small / too large / between anchor sizes otherwise);
4. :func:`diagnose_setup`: broken set-ups, in words: anchors in pixels where grid units are
   expected (and the reverse), anchors fit for another image size, labels normalised twice,
   x/y swapped, strides that do not match the model;
5. the best possible recall (:func:`torch_impl.anchors.anchor_metrics`) and the summary
   (:func:`ref_numpy.shared.assign_summary.summarize_assignments`).

With a model (:func:`model_setup`, :func:`model_predictions`), the anchors and strides come
from it, and TAL runs on its real class scores and decoded boxes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ref_numpy.shared import assign_summary as S
from ref_numpy.shared import report as R
from ref_numpy.shared import sides

__all__ = ["ASSIGNERS", "AssignSetup", "assign_dataset", "dataset_assignment_report",
           "diagnose_setup", "explain_anchor_gts", "gt_records", "letterbox_gts",
           "model_predictions", "model_setup", "read_dataset_gts", "read_model_yaml",
           "tal_stand_in"]

#: The assigners the report runs (the toolkit's: ``ref_numpy.assign``).
ASSIGNERS = ("v5", "tutorial", "v3", "v1", "tal")
ANCHOR_BASED = ("v5", "tutorial", "v3")
DEFAULT_STRIDES = (8, 16, 32)
DEFAULT_ANCHORS_PX = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
#: YOLOv1 stand-in: grid side and two predictors (squares of these sides, image fractions).
V1_GRID = 7
V1_PRIORS = (0.2, 0.5)
#: x/y swap test (as the training health check): images sampled, gain that is reported.
SWAP_IMAGES = 16
#: Labels normalised twice: the share of boxes under TINY_PX px (network) that is reported.
TINY_PX = 2.0
TINY_SHARE = 0.5
#: Anchors for another size: the scale factors tried (2^(k/4), 1/4 .. 4); reported when the
#: best one is near 2, 4, 1/2 or 1/4 (within 2^0.3: input sizes like 320 / 640 / 1280 differ by
#: powers of two; anchors that are merely not tailored to the data, e.g. COCO's on small
#: objects, fit best at some other factor) and raises YOLOv5's anchor fitness by FITNESS_GAIN.
SIZE_FACTORS = tuple(2 ** (k / 4) for k in range(-8, 9))
FITNESS_GAIN = 0.04
CHUNK = 32


@dataclass
class AssignSetup:
    """What the assignment runs with.

    Fields: ``assigner`` (one of :data:`ASSIGNERS`), ``img_size`` (square network input,
    px), ``strides`` [nl], ``anchors_px`` ([nl, na, 2] anchor w, h in pixels), ``anchor_t``,
    ``g`` (YOLOv5), ``topk`` (TAL), ``tal_pred`` (TAL stand-in head: "prior", "gt-jitter",
    "zeros"; ignored with a model's predictions), ``seed``, ``anchors_from`` (where the
    anchors came from, in words), ``model_strides`` (the model's, when a model or model
    YAML is known), ``letterbox``.
    """

    assigner: str = "v5"
    img_size: int = 640
    strides: list = field(default_factory=lambda: list(DEFAULT_STRIDES))
    anchors_px: Any = None
    anchor_t: float = 4.0
    g: float = 0.5
    topk: int = 10
    tal_pred: str = "prior"
    seed: int = 0
    anchors_from: str = "the YOLOv5 defaults"
    model_strides: list | None = None
    letterbox: bool = True

    def __post_init__(self) -> None:
        if self.anchors_px is None:
            self.anchors_px = np.array(DEFAULT_ANCHORS_PX, np.float64).reshape(3, 3, 2)
        self.anchors_px = np.asarray(self.anchors_px, np.float64)
        if self.assigner not in ASSIGNERS:
            raise ValueError(f"assigner (--assigner): expected one of {ASSIGNERS}, got {self.assigner!r}")
        if self.anchors_px.ndim != 3 or self.anchors_px.shape[-1] != 2 \
                or self.anchors_px.shape[0] != len(self.strides):
            raise ValueError(f"anchors (--anchors): expected {len(self.strides)} levels of (w, h) "
                             f"pairs, one per stride {self.strides}, got shape "
                             f"{list(self.anchors_px.shape)}")

    @property
    def grids(self) -> list:
        """``(ny, nx)`` per level."""
        return [(self.img_size // s, self.img_size // s) for s in self.strides]

    @property
    def level_names(self) -> list:
        return R.level_names(self.strides)

    def anchor_labels(self) -> list:
        """[nl][na] ``"WxH"`` (TAL: one "point" per level; YOLOv1: its predictors)."""
        if self.assigner == "tal":
            return [["point"] for _ in self.strides]
        if self.assigner == "v1":
            return [[f"pred{k}" for k in range(len(V1_PRIORS))]]
        return [[f"{w:g}x{h:g}" for w, h in lvl] for lvl in self.anchors_px.tolist()]

    def to_dict(self) -> dict:
        return {"assigner": self.assigner, "img_size": self.img_size, "strides": list(self.strides),
                "anchors_px": self.anchors_px.tolist(), "anchor_t": self.anchor_t, "g": self.g,
                "topk": self.topk, "tal_pred": self.tal_pred, "anchors_from": self.anchors_from,
                "model_strides": self.model_strides, "letterbox": self.letterbox}


# ----------------------------------------------------------------------------- inputs

def read_model_yaml(path: str | os.PathLike) -> dict:
    """Anchors and strides of a YOLOv5-style model YAML (the ``--cfg`` a user trains with):
    ``anchors`` = one flat list ``[w0, h0, w1, h1, ...]`` of pixels per level (YOLOv5's
    ``models/yolov5s.yaml``), optional ``strides`` (default 8, 16, 32, ... for the levels P3,
    P4, ...), optional ``nc``. Returns ``{"anchors_px": [nl, na, 2] list, "strides": [nl],
    "nc": int | None}``; a ValueError names the file and the key."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{p}: cannot read the model YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or "anchors" not in doc:
        raise ValueError(f"{p}: anchors: missing (a model YAML lists its anchors per level)")
    levels = doc["anchors"]
    try:
        a = np.array(levels, np.float64)
        a = a.reshape(len(levels), -1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"{p}: anchors: expected one list of w, h pairs (pixels) per level, "
                         f"got {levels!r}") from None
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise ValueError(f"{p}: anchors: every w and h must be a positive number")
    strides = doc.get("strides", [2 ** (3 + i) for i in range(len(a))])
    if not isinstance(strides, list) or len(strides) != len(a) or \
            not all(isinstance(s, int) and s > 0 for s in strides):
        raise ValueError(f"{p}: strides: expected {len(a)} positive integers, got {strides!r}")
    return {"anchors_px": a.tolist(), "strides": strides, "nc": doc.get("nc")}


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"{path}: cannot read the image: {exc}") from None


def read_dataset_gts(data: str | os.PathLike, split: str = "val", images_dir: str | os.PathLike | None = None,
                     names: Sequence[str] | None = None) -> tuple[list, list]:
    """The GTs of every image of a data set: ``(items, names)``, items in the set's order,
    each ``{"path": Path, "hw": (h0, w0), "boxes": float64 [n, 4] xyxy original pixels,
    "cls": int64 [n]}``. ``data``: a data YAML (``split`` of it), a YOLO root or labels
    directory, a COCO ``.json`` or a VOC directory (:class:`torch_impl.data.DetectionDataset`).
    Image sizes are read from the file headers (the images are not decoded)."""
    from torch_impl.data import DetectionDataset

    data = Path(data)
    if data.suffix.lower() in (".yaml", ".yml"):
        ds = DetectionDataset.from_yaml(data, split=split, images_dir=images_dir)
    else:
        ds = DetectionDataset(data, names=names, images_dir=images_dir)
    items = []
    for it in ds.items:
        path = Path(it["path"])
        hw = tuple(it["size"]) if it.get("size") is not None else _image_size(path)
        boxes = np.asarray(it["boxes"], np.float64).reshape(-1, 4)
        if it["normalized"]:
            h, w = hw
            cx, cy, bw, bh = np.moveaxis(boxes, -1, 0)
            boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                              (cy + bh / 2) * h], -1).reshape(-1, 4)
        items.append({"path": path, "hw": hw, "boxes": boxes,
                      "cls": np.asarray(it["cls"], np.int64).reshape(-1)})
    nc = max((int(c.max()) + 1 for c in (i["cls"] for i in items) if len(c)), default=1)
    names = list(ds.names) if ds.names else [str(k) for k in range(nc)]
    return items, names


def letterbox_gts(boxes: np.ndarray, hw: tuple[int, int], img_size: int, letterbox: bool = True) -> np.ndarray:
    """xyxy boxes of an ``hw`` = (h0, w0) image mapped to the square network input, as
    :func:`torch_impl.data.letterbox` (``auto=False``, ``scaleup=True``) maps the image (or
    stretched to it with ``letterbox=False``), clipped to the input."""
    from torch_impl.data import transforms as T

    h0, w0 = hw
    if letterbox:
        r = min(img_size / h0, img_size / w0)
        pad = ((img_size - int(round(w0 * r))) / 2, (img_size - int(round(h0 * r))) / 2)
        out = T.letterbox_boxes(boxes, (r, r), pad)
    else:
        out = np.asarray(boxes, np.float64) * np.array([img_size / w0, img_size / h0] * 2)
    return np.clip(np.asarray(out, np.float64).reshape(-1, 4), 0, img_size)


def _target_rows(boxes: np.ndarray, cls: np.ndarray, img_size: int, image: int) -> np.ndarray:
    """YOLOv5 target rows ``(image, class, cx, cy, w, h)`` normalised by ``img_size``."""
    x1, y1, x2, y2 = np.moveaxis(boxes / img_size, -1, 0)
    return np.stack([np.full_like(x1, image), cls.astype(np.float64), (x1 + x2) / 2, (y1 + y2) / 2,
                     x2 - x1, y2 - y1], -1).reshape(-1, 6)


def tal_stand_in(gt: np.ndarray, strides: Sequence[int], img_size: int, pred: str,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stand-in head fed to TAL without a model: anchor points [A, 2] and their strides
    [A] (``coder.make_anchors``, in pixels), predicted boxes [A, 4] xyxy pixels: ``prior`` a
    square of side 4 strides about each point, ``gt-jitter`` the smallest GT (``gt`` [n, 4]
    xyxy px) containing the point with each corner moved by N(0, 0.1 side) (``seed``; the
    prior box elsewhere), ``zeros`` all (0, 0, 0, 0)."""
    from ref_numpy.coder import make_anchors

    grids = [(img_size // s, img_size // s) for s in strides]
    pts, st = make_anchors(grids, np.asarray(strides, np.float64))
    st = st[:, 0]
    anc = pts * st[:, None]  # [A, 2] pixels
    prior = np.concatenate([anc - 2 * st[:, None], anc + 2 * st[:, None]], -1)
    if pred == "zeros":
        return anc, st, np.zeros_like(prior)
    if pred == "gt-jitter" and len(gt):
        inside = ((anc[None] > gt[:, None, :2]) & (anc[None] < gt[:, None, 2:])).all(-1)  # [n, A]
        area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
        pick = np.where(inside, area[:, None], np.inf).argmin(0)  # the smallest containing GT
        rng = np.random.default_rng(seed)
        wh = np.tile(gt[pick, 2:] - gt[pick, :2], 2)
        jit = gt[pick] + rng.normal(0, 0.1, size=prior.shape) * wh
        jit = np.concatenate([np.minimum(jit[:, :2], jit[:, 2:]), np.maximum(jit[:, :2], jit[:, 2:])], -1)
        return anc, st, np.where(inside.any(0)[:, None], jit, prior)
    return anc, st, prior


# ----------------------------------------------------------------------------- a model

def model_setup(weights: str | os.PathLike, device: str = "cpu") -> dict:
    """The model of a weights file (:func:`torch_impl.train.inference.load_model`: a
    ``yolo-ref train`` checkpoint or a ``yolo-ref import-yolov5`` file) and what the report
    takes from it: ``{"model", "names", "strides", "anchors_px" ([nl, na, 2] list, None for an
    anchor-free head), "anchor_free", "file"}``."""
    from torch_impl.train.inference import load_model

    model, names = load_model(weights, device)
    strides = [int(round(float(s))) for s in model.stride.tolist()]
    anchors = getattr(model, "anchors_pixels", None)
    anchor_free = anchors is None or hasattr(getattr(model, "head", None), "reg_max")
    return {"model": model, "names": list(names), "strides": strides,
            "anchors_px": None if anchor_free else anchors.detach().double().tolist(),
            "anchor_free": anchor_free, "file": str(weights)}


def model_predictions(model: Any, items: Sequence[dict], img_size: int, indices: Sequence[int] | None = None,
                      batch_size: int = 8, device: str = "cpu") -> dict:
    """Run ``model`` (eval) on the letterboxed images of ``items`` (those at ``indices``, default
    all). Returns ``{image index: {"scores": [A, nc] after the sigmoid, "boxes": [A, 4] xyxy
    px, "points": [A, 2] px, "grids": [(ny, nx)] per level}}`` for an anchor-free head
    (what TAL takes), ``{image index: {"obj": [nl] list of [na, ny, nx] objectness}}`` for an
    anchor-based one; and ``"grids"``: the output grid of every level (to check the strides)."""
    import torch

    from torch_impl import coder
    from torch_impl.data import letterbox, load_image

    idx = list(range(len(items))) if indices is None else list(indices)
    out: dict = {}
    grids = None
    model.eval()
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            part = idx[start:start + batch_size]
            batch = []
            for i in part:
                lb, _, _ = letterbox(load_image(items[i]["path"]), img_size, auto=False, scaleup=True)
                batch.append(torch.from_numpy(lb.transpose(2, 0, 1).copy()))
            x = torch.stack(batch).to(device).float() / 255
            decoded, raw = model(x)
            grids = [tuple(int(v) for v in (r.shape[2:4] if r.ndim == 5 else r.shape[2:])) for r in raw]
            if raw[0].ndim == 5:  # anchor-based [bs, na, ny, nx, no]
                for k, i in enumerate(part):
                    out[i] = {"obj": [r[k, ..., 4].sigmoid().cpu().numpy() for r in raw]}
                continue
            stride = model.stride.to(decoded.dtype)
            pts, st = coder.make_anchors(grids, stride, 0.5, dtype=decoded.dtype, device=decoded.device)
            xywh, scores = decoded[..., :4], decoded[..., 4:]
            xyxy = torch.cat([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], -1)
            for k, i in enumerate(part):
                out[i] = {"scores": scores[k].double().cpu().numpy(), "boxes": xyxy[k].double().cpu().numpy(),
                          "points": (pts * st).double().cpu().numpy(), "grids": grids}
    return {"images": out, "grids": grids}


# ----------------------------------------------------------------------------- assignment

def _assign_module(backend: str, device: str):
    side = sides.get_side(backend, device).check()
    return side.module("assign"), side.to_inputs


def _v1_pred_boxes(bs: int) -> np.ndarray:
    """YOLOv1 stand-in predictions: in every cell predictor k a centred square of side
    V1_PRIORS[k] (sqrt form)."""
    p = np.zeros((bs, V1_GRID, V1_GRID, len(V1_PRIORS), 4))
    p[..., :2] = 0.5
    p[..., 2:] = np.sqrt(np.asarray(V1_PRIORS))[:, None]
    return p


def assign_dataset(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], setup: AssignSetup, nc: int,
                   backend: str = "torch", device: str = "cpu", predictions: dict | None = None) -> list:
    """The assigner's report of every image: a list of :class:`AssignmentReport`, one per image
    (image index 0 in each; GT ``gt`` = its index in the image).

    Args:
        boxes: per image [n, 4] xyxy network pixels (:func:`letterbox_gts`).
        classes: per image [n] class ids.
        setup: the assignment's settings.
        nc: number of classes.
        backend, device: the side that runs the assigner (``ref`` NumPy or ``torch``).
        predictions: TAL on a model: :func:`model_predictions`' ``"images"`` (anchor-free
            head); None: the stand-in head ``setup.tal_pred``.
    """
    lib, conv = _assign_module(backend, device)
    n_img = len(boxes)
    grids = setup.grids
    reports: list = [None] * n_img
    anchors = setup.anchors_px / np.asarray(setup.strides, np.float64)[:, None, None]
    for start in range(0, n_img, CHUNK if setup.assigner in ("tal", "v1") else max(n_img, 1)):
        part = list(range(start, min(start + (CHUNK if setup.assigner in ("tal", "v1") else n_img), n_img)))
        rows = [_target_rows(boxes[i], classes[i], setup.img_size, k) for k, i in enumerate(part)]
        t = np.concatenate(rows) if rows else np.zeros((0, 6))
        if setup.assigner in ANCHOR_BASED:
            if setup.assigner == "v5":
                rep = lib.yolov5_assignment_report(conv(t), conv(anchors), grids, setup.anchor_t, setup.g)
            elif setup.assigner == "tutorial":
                rep = lib.tutorial_assignment_report(conv(t), conv(anchors), grids)
            else:
                rep = lib.yolov3_assignment_report(conv(t), conv(anchors), grids, ignore_mode="none",
                                                   batch_size=max(len(part), 1))
            reports_part = _split_rows_report(rep, [len(r) for r in rows])
        elif setup.assigner == "v1":
            reports_part = _split_rows_report(
                lib.yolov1_assignment_report(conv(_v1_pred_boxes(len(part))), conv(t)), [len(r) for r in rows])
        else:
            reports_part = _tal_chunk(lib, conv, part, boxes, classes, setup, nc, predictions)
        for k, i in enumerate(part):
            reports[i] = reports_part[k]
    return reports


def _split_rows_report(rep: R.AssignmentReport, counts: Sequence[int]) -> list:
    """A report over the target rows of several images -> one report per image (GT indices
    renumbered within the image, image index 0)."""
    offsets = np.cumsum([0, *counts]).tolist()
    out = []
    for k in range(len(counts)):
        lo, hi = offsets[k], offsets[k + 1]
        gts = []
        for g in rep.gts[lo:hi]:
            g2 = R.GTRecord(**{**g.__dict__, "gt": g.gt - lo, "image": 0,
                               "positives": [R.Positive(**{**p.__dict__, "owner": p.owner - lo})
                                             for p in g.positives],
                               "lost": [R.Lost(**{**x.__dict__, "to_gt": x.to_gt - lo}) for x in g.lost]})
            gts.append(g2)
        cols = [R.Collision(c.level, 0, c.anchor, list(c.cell), list(c.rows), [w - lo for w in c.writers],
                            c.winner - lo) for c in rep.collisions if c.image == k]
        levels = [R.Level(lv.level, list(lv.grid), sum(len([p for p in g.positives if p.level == lv.level])
                                                       for g in gts)) for lv in rep.levels]
        out.append(R.AssignmentReport(rep.assigner, rep.box_format, dict(rep.settings), levels, gts,
                                      cols, [R.Unassigned(0, u.gt - lo, u.reason) for u in rep.unassigned
                                             if lo <= u.gt < hi]))
    return out


def _tal_chunk(lib, conv, part, boxes, classes, setup, nc, predictions) -> list:
    n = max((len(boxes[i]) for i in part), default=0)
    bs = len(part)
    gtb = np.zeros((bs, n, 4))
    lab = np.zeros((bs, n, 1))
    mask = np.zeros((bs, n, 1))
    for k, i in enumerate(part):
        m = len(boxes[i])
        gtb[k, :m] = boxes[i]
        lab[k, :m, 0] = classes[i]
        mask[k, :m, 0] = 1
    if predictions is not None:
        first = predictions[part[0]]
        anc, grids = first["points"], [tuple(gr) for gr in first["grids"]]
        scores = np.stack([predictions[i]["scores"] for i in part])
        pboxes = np.stack([predictions[i]["boxes"] for i in part])
        nc = scores.shape[-1]
    else:
        grids = setup.grids
        anc, _, _ = tal_stand_in(np.zeros((0, 4)), setup.strides, setup.img_size, "prior", 0)
        pboxes = np.stack([tal_stand_in(boxes[i], setup.strides, setup.img_size, setup.tal_pred,
                                        setup.seed)[2] for i in part])
        scores = np.full((bs, len(anc), nc), 0.5)
    if setup.topk > len(anc):
        raise ValueError(f"topk (--topk): {setup.topk} exceeds the {len(anc)} anchor points")
    rep = lib.task_aligned_report(conv(scores), conv(pboxes), conv(anc), conv(lab), conv(gtb), conv(mask),
                                  topk=setup.topk, num_classes=nc, grid_sizes=grids)
    out = []
    for k, i in enumerate(part):
        m = len(boxes[i])
        gts = [g for g in rep.gts if g.image == k and g.gt < m]
        for g in gts:
            g.image = 0
        cols = [R.Collision(c.level, 0, c.anchor, c.cell, c.rows, c.writers, c.winner)
                for c in rep.collisions if c.image == k]
        levels = [R.Level(lv.level, lv.grid, sum(1 for g in gts for p in g.positives if p.level == lv.level))
                  for lv in rep.levels]
        out.append(R.AssignmentReport("tal", rep.box_format, dict(rep.settings), levels, gts, cols,
                                      [R.Unassigned(0, u.gt, u.reason) for u in rep.unassigned
                                       if u.image == k and u.gt < m]))
    return out


# ----------------------------------------------------------------------------- per-GT records

def explain_anchor_gts(wh_px: np.ndarray, anchors_px: np.ndarray, anchor_t: float) -> dict:
    """The ratio test of YOLOv5 for every GT and anchor, as arrays.

    Args:
        wh_px (ndarray[n, 2]): GT widths and heights in network pixels.
        anchors_px (ndarray[nl, na, 2]): anchors in pixels.
        anchor_t (float): the threshold.

    Returns:
        dict of arrays: ``r`` [n, nl, na, 2] = (w/aw, h/ah); ``passes`` [n, nl, na] (both
        ``max(r, 1/r) < anchor_t``); ``worst`` [n, nl, na] = max over sides of max(r, 1/r);
        ``shape_ok`` [n, nl, na]: some scale of the box passes, i.e. ``max(q, 1/q) <
        anchor_t²`` with ``q = (w/h) / (aw/ah)``; ``big`` / ``small`` [n, nl, na]: some side
        ``>= anchor_t`` / ``<= 1/anchor_t``.
    """
    wh = np.asarray(wh_px, np.float64).reshape(-1, 1, 1, 2)
    a = np.asarray(anchors_px, np.float64)[None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = wh / a  # [n, nl, na, 2]
        worst = np.maximum(r, 1 / r).max(-1)
        q = r[..., 0] / r[..., 1]
        shape_ok = np.maximum(q, 1 / q) < anchor_t ** 2
    return {"r": r, "passes": worst < anchor_t, "worst": worst, "shape_ok": shape_ok,
            "big": (r >= anchor_t).any(-1), "small": (r <= 1 / anchor_t).any(-1)}


def _fail_text(rw: float, rh: float, t: float) -> str:
    parts = []
    for name, v in (("w/aw", rw), ("h/ah", rh)):
        if v >= t:
            parts.append(f"{name} = {v:.3g} >= anchor_t {t:g}")
        elif v <= 1 / t:
            parts.append(f"{name} = {v:.3g} <= 1/{t:g}")
    return " and ".join(parts)


def _anchor_cause(wh: np.ndarray, ex: dict, i: int, setup: AssignSetup) -> tuple[str, str]:
    """(cause, why with numbers) of GT ``i`` that no anchor of any level takes."""
    t = setup.anchor_t
    w, h = wh
    names = setup.level_names
    worst = ex["worst"][i]
    lv, a = np.unravel_index(int(np.argmin(worst)), worst.shape)
    aw, ah = setup.anchors_px[lv, a]
    rw, rh = ex["r"][i, lv, a]
    best = (f"closest anchor {names[lv]} a{a} {aw:g}x{ah:g}: {_fail_text(rw, rh, t)}")
    if not ex["shape_ok"][i].any():
        ar = setup.anchors_px[..., 0] / setup.anchors_px[..., 1]
        widest = float(max(ar.max(), 1 / ar.min()))
        return "aspect ratio", (f"aspect {S.aspect_of(w, h):.1f}:1 ({w:.0f}x{h:.0f} px) fits no anchor "
                                f"shape at any scale (the most elongated anchor is {widest:.1f}:1, "
                                f"anchor_t² = {t * t:g} allows up to {widest * t * t:.1f}:1); {best}")
    if not ex["big"][i].any():
        return "too small", f"{w:.1f}x{h:.1f} px is smaller than every anchor / {t:g}; {best}"
    if not ex["small"][i].any():
        return "too large", f"{w:.0f}x{h:.0f} px is larger than every anchor x {t:g}; {best}"
    return "between anchor sizes", f"{w:.0f}x{h:.0f} px; {best}"


def _slots(g: R.GTRecord) -> list:
    return sorted({(p.level, p.anchor, p.cell[0], p.cell[1]) for p in g.positives})


def _cells_text(cells: Sequence) -> str:
    shown = " ".join(f"({gj},{gi})" for gj, gi in cells[:4])
    return shown + (f" +{len(cells) - 4}" if len(cells) > 4 else "")


def _anchor_level_lines(g: R.GTRecord, wh, ex: dict, i: int, setup: AssignSetup) -> list:
    lines = []
    t = setup.anchor_t
    for lv, name in enumerate(setup.level_names):
        parts = []
        for a, (aw, ah) in enumerate(setup.anchors_px[lv].tolist()):
            rw, rh = ex["r"][i, lv, a]
            cells = sorted({tuple(p.cell) for p in g.positives if p.level == lv and p.anchor == a})
            ratio = f"w/aw {rw:.2f} h/ah {rh:.2f}"
            if cells:
                parts.append(f"a{a} {aw:g}x{ah:g} ({ratio}): {len(cells)} cells {_cells_text(cells)}")
            elif setup.assigner == "v5":
                parts.append(f"a{a} {aw:g}x{ah:g} rejected: {_fail_text(rw, rh, t) or ratio}")
            else:
                parts.append(f"a{a} {aw:g}x{ah:g} ({ratio}) not best")
        reason = g.reasons[lv] if lv < len(g.reasons) else None
        tail = f" [{reason}]" if reason and not any(p.level == lv for p in g.positives) \
            and setup.assigner != "v5" else ""
        lines.append(f"{name}: " + "; ".join(parts) + tail)
    return lines


def _tal_level_lines(g: R.GTRecord, setup: AssignSetup, strides: Sequence[int]) -> list:
    lines = []
    names = R.level_names(strides)
    for lv, name in enumerate(names):
        owned = sorted(tuple(p.cell) for p in g.positives if p.level == lv)
        lost = [x for x in g.lost if x.level == lv]
        text = f"{name} (stride {strides[lv]}): owns {len(owned)} points"
        if owned:
            text += " " + _cells_text(owned)
        if lost:
            text += f", {len(lost)} claimed points went to GT " + ",".join(
                sorted({str(x.to_gt) for x in lost}))
        if lv < len(g.reasons) and g.reasons[lv] and not owned:
            text += f" [{g.reasons[lv]}]"
        lines.append(text)
    return lines


_TAL_CAUSE = {R.TAL_REASONS[1]: "no anchor point inside", R.TAL_REASONS[2]: "not in its top k",
              R.TAL_REASONS[3]: "taken by another GT"}


def gt_records(reports: Sequence[R.AssignmentReport], boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray],
               items: Sequence[dict], names: Sequence[str], setup: AssignSetup,
               strides: Sequence[int] | None = None) -> tuple[list, list]:
    """One plain record per GT of the data set (fields: :mod:`ref_numpy.shared.assign_summary`)
    and the collisions of every image: ``(records, collisions_per_image)``. ``strides``: of
    the anchor points TAL ran on (default ``setup.strides``)."""
    strides = list(strides or setup.strides)
    wh_all = np.concatenate([b[:, 2:] - b[:, :2] for b in boxes]) if boxes else np.zeros((0, 2))
    ex = explain_anchor_gts(wh_all, setup.anchors_px, setup.anchor_t) \
        if setup.assigner in ANCHOR_BASED else None
    records, per_image = [], []
    k = 0
    for im, (rep, b, c) in enumerate(zip(reports, boxes, classes)):
        per_image.append(len(rep.collisions))
        shared = _writers_count(rep)
        for g in rep.gts:
            i = k + g.gt
            x1, y1, x2, y2 = (float(v) for v in b[g.gt])
            w, h = x2 - x1, y2 - y1
            cause = why = None
            if setup.assigner in ANCHOR_BASED:
                levels = _anchor_level_lines(g, (w, h), ex, i, setup)
                if not g.positive:
                    if g.reason == R.V5_REASONS[0]:
                        cause, why = "outside the image", f"centre ({(x1 + x2) / 2:.0f}, {(y1 + y2) / 2:.0f}) px"
                    else:
                        cause, why = _anchor_cause(np.array([w, h]), ex, i, setup)
            elif setup.assigner == "tal":
                levels = _tal_level_lines(g, setup, strides)
                if not g.positive:
                    cause = _TAL_CAUSE.get(g.reason, "other")
                    why = f"{g.reason} ({w:.1f}x{h:.1f} px"
                    why += (f"; points are {strides[0]} px apart on the finest level)"
                            if cause == "no anchor point inside" else
                            f"; {g.candidates} points inside)")
            else:
                levels = [f"cell ({p.cell[0]},{p.cell[1]}) predictor {p.anchor}" for p in g.positives] or \
                    [f"cell ({x.cell[0]},{x.cell[1]}) held by GT{x.to_gt}" for x in g.lost]
                if not g.positive:
                    cause, why = "taken by another GT", g.reason
            records.append({"image": im, "file": str(items[im]["path"]), "gt": g.gt, "cls": int(c[g.gt]),
                            "name": names[int(c[g.gt])] if 0 <= int(c[g.gt]) < len(names) else str(int(c[g.gt])),
                            "box": [x1, y1, x2, y2], "w": w, "h": h, "positive": bool(g.positive),
                            "positives": len(g.positives), "slots": [list(s) for s in _slots(g)],
                            "collisions": shared.get(g.gt, 0), "cause": cause, "why": why,
                            "levels": levels})
        k += len(b)
    return records, per_image


def _writers_count(rep: R.AssignmentReport) -> dict:
    """{GT: slots it shares with another GT} of one image's report."""
    out: dict = {}
    for c in rep.collisions:
        for w in set(c.writers):
            out[w] = out.get(w, 0) + 1
    return out


# ----------------------------------------------------------------------------- set-up diagnosis

def _fmt_wh(a: np.ndarray) -> str:
    return f"{a[0]:.4g}x{a[1]:.4g}"


def _bpr(wh: np.ndarray, anchors_px: np.ndarray, anchor_t: float) -> float:
    from torch_impl.anchors import anchor_metrics

    wh = wh[(wh > 0).all(1)]
    if not len(wh):
        return 0.0
    return float(anchor_metrics(wh, anchors_px.reshape(-1, 2), anchor_t)["bpr"])


def _anchors_other_size(wh: np.ndarray, setup: AssignSetup) -> dict | None:
    """The ``anchors_other_size`` finding: the anchors, scaled by some factor f, fit the data
    clearly better (YOLOv5's fitness, :func:`torch_impl.anchors.anchor_fitness`): they look
    made for ``img_size / f``."""
    from torch_impl.anchors import anchor_fitness

    wh = wh[(wh > 0).all(1)]
    if not len(wh):
        return None
    a = setup.anchors_px.reshape(-1, 2)
    fit = [float(anchor_fitness(a * f, wh, setup.anchor_t)) for f in SIZE_FACTORS]
    k = int(np.argmax(fit))
    f, here = SIZE_FACTORS[k], fit[SIZE_FACTORS.index(1.0)]
    octaves = math.log2(f)
    if abs(octaves) < 0.75 or abs(octaves - round(octaves)) > 0.3 or fit[k] < here * (1 + FITNESS_GAIN):
        return None
    s = setup.img_size
    made_for = max(32, int(round(s / f / 32)) * 32)
    return {"kind": "anchors_other_size",
            "message": f"the anchors fit this data best scaled by {f:.2g} (anchor fitness {fit[k]:.3f} vs "
                       f"{here:.3f}; best possible recall {_bpr(wh, a * f, setup.anchor_t):.3f} vs "
                       f"{_bpr(wh, a, setup.anchor_t):.3f}): anchors for --img-size {made_for} used at {s}",
            "fix": f"multiply the anchors by {f:.2g}, or refit them at this size with "
                   f"`yolo-ref anchors --fit --img-size {s}`"}


def _swap_gain(items: Sequence[dict], boxes: Sequence[np.ndarray]) -> tuple[float, int]:
    """Median over sampled images of how much better the swapped boxes sit on the image edges
    than the given ones (:func:`torch_impl.train.health.box_alignment`), and the images used."""
    from torch_impl.data import load_image
    from torch_impl.train.health import box_alignment

    with_gts = [i for i, b in enumerate(boxes) if len(b)]
    picks = [with_gts[int(j)] for j in np.unique(np.linspace(0, len(with_gts) - 1,
                                                             min(len(with_gts), SWAP_IMAGES)).round())] \
        if with_gts else []
    gains = []
    for i in picks:
        img = load_image(items[i]["path"])
        h, w = img.shape[:2]
        b = items[i]["boxes"]
        x1, y1, x2, y2 = np.moveaxis(b, -1, 0)
        swapped = np.stack([y1 / h * w, x1 / w * h, y2 / h * w, x2 / w * h], -1)
        given, other = box_alignment(img, b), box_alignment(img, swapped)
        if np.isfinite(given) and np.isfinite(other):
            gains.append(other / max(given, 1e-12))
    return (float(np.median(gains)) if gains else float("nan")), len(gains)


def diagnose_setup(items: Sequence[dict], boxes: Sequence[np.ndarray], setup: AssignSetup,
                   model_grids: Sequence[tuple[int, int]] | None = None, check_swap: bool = True) -> list:
    """Broken set-ups, most severe first: ``[{"kind", "message", "fix"}]``.

    Kinds: ``"stride_mismatch"`` (the strides are not the model's, or the model's output grids
    are not img_size / stride), ``"anchor_units_px"`` (a level whose every anchor is larger
    than the input: pixels multiplied by the stride again), ``"anchor_units_grid"`` (every
    anchor smaller than its stride: grid units read as pixels), ``"labels_normalised_twice"``
    (most boxes under 2 px, centres in the top-left corner), ``"labels_xy_swapped"`` (the
    boxes sit on the image edges better with x and y exchanged), ``"anchors_other_size"``
    (the BPR is much higher with the anchors scaled by 2 or 4 (or 1/2, 1/4): anchors fit for
    another --img-size)."""
    from torch_impl.train.health import SWAP_GAIN, SWAP_MIN_IMAGES

    found = []
    s = setup.img_size
    if setup.model_strides is not None and list(setup.model_strides) != list(setup.strides):
        found.append({"kind": "stride_mismatch",
                      "message": f"the strides {','.join(map(str, setup.strides))} do not match the "
                                 f"model's {','.join(map(str, setup.model_strides))}",
                      "fix": "the grids the assigner uses are not the head's outputs; drop --strides "
                             "(they come from the model) or pass "
                             f"--strides {','.join(map(str, setup.model_strides))}"})
    if model_grids is not None:
        want = [(s // st, s // st) for st in setup.strides]
        if [tuple(gr) for gr in model_grids] != want:
            found.append({"kind": "stride_mismatch",
                          "message": f"the model's outputs at {s} px are "
                                     f"{', '.join(f'{a}x{b}' for a, b in model_grids)} but the strides "
                                     f"{','.join(map(str, setup.strides))} give "
                                     f"{', '.join(f'{a}x{b}' for a, b in want)}",
                          "fix": "pass the model's strides (img_size / output grid side)"})
    wh = np.concatenate([b[:, 2:] - b[:, :2] for b in boxes]) if boxes else np.zeros((0, 2))
    if setup.assigner in ANCHOR_BASED:
        a = setup.anchors_px
        for lv, st in enumerate(setup.strides):
            if a[lv].min() > s:
                found.append({"kind": "anchor_units_px",
                              "message": f"the {setup.level_names[lv]} anchors are {_fmt_wh(a[lv].min(0))} .. "
                                         f"{_fmt_wh(a[lv].max(0))} px (grid units x stride {st}), every one "
                                         f"larger than the {s} px input: anchors in pixels where grid "
                                         f"units are expected",
                              "fix": "divide them by the stride (the head's anchors buffer is in grid "
                                     "units, pixels / stride)"})
                break
        else:
            if all(a[lv].max() < st for lv, st in enumerate(setup.strides)):
                found.append({"kind": "anchor_units_grid",
                              "message": f"every anchor is smaller than its level's stride "
                                         f"({_fmt_wh(a.reshape(-1, 2).min(0))} .. {_fmt_wh(a.reshape(-1, 2).max(0))} "
                                         f"px for strides {setup.strides}): anchors in grid units where "
                                         f"pixels are expected",
                              "fix": "multiply them by their level's stride"})
    if len(wh):
        tiny = (wh.max(1) < TINY_PX).mean()
        if tiny > TINY_SHARE:
            cxy = np.concatenate([(b[:, :2] + b[:, 2:]) / 2 for b in boxes])
            corner = bool((cxy.max(1) < max(TINY_PX, s / 100)).mean() > TINY_SHARE)
            found.append({"kind": "labels_normalised_twice",
                          "message": f"{tiny:.0%} of the boxes are under {TINY_PX:g} px at {s} px "
                                     f"(median {_fmt_wh(np.median(wh, 0))} px)"
                                     + (", their centres in the top-left corner" if corner else "")
                                     + ": labels normalised twice (divided by the image size after "
                                       "already being in 0..1)",
                          "fix": "write each label once normalised: cx/W cy/H w/W h/H"})
    if setup.assigner in ANCHOR_BASED and len(wh):
        other = _anchors_other_size(wh, setup)
        if other is not None:
            found.append(other)
    if check_swap and len(wh):
        gain, n = _swap_gain(items, [it["boxes"] for it in items])
        if n >= SWAP_MIN_IMAGES and gain >= SWAP_GAIN:
            found.append({"kind": "labels_xy_swapped",
                          "message": f"the boxes sit on the image content {gain:.1f}x better with x and y "
                                     f"swapped (median over {n} images): labels with x/y swapped",
                          "fix": "the label columns must be 'class cx cy w h'; swap them back"})
    order = ["stride_mismatch", "labels_normalised_twice", "labels_xy_swapped", "anchor_units_px",
             "anchor_units_grid", "anchors_other_size"]
    return sorted(found, key=lambda f: order.index(f["kind"]))


# ----------------------------------------------------------------------------- all of it

def dataset_assignment_report(items: Sequence[dict], names: Sequence[str], setup: AssignSetup,
                              backend: str = "torch", device: str = "cpu", model: dict | None = None,
                              check_swap: bool = True, worst: int = 8) -> dict:
    """The data-set report: ``{"summary": summarize_assignments(...), "gts": records,
    "reports": [AssignmentReport per image], "boxes": per image [n, 4] network px,
    "classes", "setup": setup, "tal_predictions"}``.

    ``model``: :func:`model_setup` of a checkpoint, or None. With an anchor-free model and
    ``setup.assigner == "tal"``, TAL runs on the model's predictions on every image; with an
    anchor-based model, its output grids are checked against the strides."""
    boxes = [letterbox_gts(it["boxes"], it["hw"], setup.img_size, setup.letterbox) for it in items]
    classes = [it["cls"] for it in items]
    nc = max(len(names), max((int(c.max()) + 1 for c in classes if len(c)), default=1))
    preds, model_grids, tal_strides = None, None, None
    if model is not None:
        run_all = model["anchor_free"] and setup.assigner == "tal"
        p = model_predictions(model["model"], items, setup.img_size,
                              indices=None if run_all else [0] if items else [])
        model_grids = p["grids"]
        if run_all:
            preds = p["images"]
            tal_strides = model["strides"]
    findings = diagnose_setup(items, boxes, setup, model_grids, check_swap)
    reports = assign_dataset(boxes, classes, setup, nc, backend, device, preds)
    records, per_image = gt_records(reports, boxes, classes, items, names, setup, tal_strides)
    wh = np.array([[g["w"], g["h"]] for g in records]).reshape(-1, 2)
    bpr = _bpr(wh, setup.anchors_px, setup.anchor_t) if setup.assigner in ANCHOR_BASED else None
    level_names = R.level_names(tal_strides or setup.strides) if setup.assigner != "v1" else ["grid"]
    labels = setup.anchor_labels()
    summary = S.summarize_assignments(records, len(items), level_names, labels, per_image, bpr,
                                      findings, setup.to_dict(), worst)
    return {"summary": summary, "gts": records, "reports": reports, "boxes": boxes,
            "classes": classes, "setup": setup, "tal_predictions": preds,
            "strides": list(tal_strides or setup.strides)}
