"""Show where a YOLO target assigner puts each ground truth: PNGs per level, a table, JSON.

Input: one image and its labels, either a YOLO label file (``class cx cy w h`` per line,
normalised, read by ``ref_numpy.formats.read_yolo``; the image is --image or the file of the
same stem in the sibling ``images`` directory, else a plain grey canvas) or item --index K of a
data set (--data: a YOLO data-set root or labels directory, a COCO ``.json``, a VOC directory
of ``.xml``, or an Ultralytics data YAML with --split), read by
``torch_impl.data.DetectionDataset`` (``ref_numpy.formats.load_any``).

The image and boxes are letterboxed to --img-size (``torch_impl.data.letterbox``, as YOLOv5's
val loader), or with --no-letterbox stretched to it (``torch_impl.data.transforms.resize``);
then the assigner's report runs on the boxes (``assign`` of --backend, one
``AssignmentReport`` schema for all, see ``ref_numpy.shared.report``):

- ``v5``: ``yolov5_assignment_report`` (YOLOv5 v7.0 build_targets: ratio test --anchor-t,
  neighbour cells with bias --g); target values are YOLOv5's ``tbox``: ``(gx - gi, gy - gj,
  gw, gh)`` in grid units;
- ``tutorial``: ``tutorial_assignment_report`` (best anchor on every level), same targets;
- ``v3``: ``yolov3_assignment_report`` with ``ignore_mode="none"`` (best anchor over all
  levels); target values are darknet's ``(gx - gi, gy - gj, log(gw / aw), log(gh / ah))``;
- ``tal``: ``task_aligned_report`` (Ultralytics 8.3 TaskAlignedAssigner, --topk, alpha 0.5,
  beta 6). TAL scores predictions, so the command feeds it a stand-in head: class scores 0.5
  for every class (the GT's class score is then the same everywhere, so only the boxes
  decide), and predicted boxes per --tal-pred: ``prior`` a square of side ``4 * stride``
  centred on each anchor point (an untrained DFL head predicting 2 strides on every side),
  ``gt-jitter`` the smallest GT containing the point, each corner moved by N(0, 0.1 * GT
  side) (seeded by --seed; points in no GT get the prior box), ``zeros`` all boxes
  (0, 0, 0, 0) (every CIoU clamps to 0: the degenerate start, most GTs get nothing). Its
  "anchors" are the points (one per cell, ``coder.make_anchors``); target values are the
  distances ``(l, t, r, b)`` from the point to the owning GT's sides in strides.

Outputs: ``assign_P<k>.png`` per level (stride 2^k; ``assign_L<i>.png`` for level i when the
strides are not distinct powers of two) and ``assign_overview.png`` (the levels side by side)
in --out: the letterboxed image (upscaled to at least 640 px, dimmed), the grid lines, every GT
box with ``GT<index> <class>``, the positive cells filled semi-transparently in their anchor's
colour with the anchor's w x h drawn as an outline centred on the cell (TAL: the box fed as
prediction), collisions (a slot written by two GTs) with a thick red border, a red X and the
winner, GTs without positive as a dashed red box with "no positive: <reason>", and a legend.
A table on stdout: one line per positive (GT -> level, anchor, cell, target values), then the
warnings (no positive with the reason, collisions with the winner). --json PATH writes all of
it, with the library's own report (``AssignmentReport.to_dict()``) under ``"report"``.

Examples:
    yolo-ref show-assignments fixtures/shapes/labels/shapes_0000.txt --img-size 320
    yolo-ref show-assignments --data fixtures/shapes --index 3 --out out/ --json out/a.json
    yolo-ref show-assignments --data fixtures/shapes/annotations.json --index 3
    yolo-ref show-assignments --data fixtures/shapes/voc --index 3 --assigner tal --topk 5
    yolo-ref show-assignments --data fixtures/shapes/dataset.yaml --split val --index 0
    yolo-ref show-assignments labels.txt --assigner v5 --anchor-t 1.5 --no-letterbox
    yolo-ref show-assignments labels.txt --strides 8,16 \\
        --anchors "10,13, 16,30, 33,23, 30,61, 62,45, 59,119" --img-size 256

Exit status: 0 every GT has a positive; 1 some GT has no positive (the check failed);
2 bad arguments or unreadable / malformed input (label file, image, data set).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ref_numpy.formats import CLASSES_FILE, IMAGE_SUFFIXES, read_yolo
from ref_numpy.shared import report as R
from ref_numpy.shared import sides
from ref_numpy.shared.cli import (BACKENDS, EXIT_CHECK_FAILED, EXIT_OK, UsageError,
                                  add_device, add_img_size, add_out, make_parser, run)

if TYPE_CHECKING:  # annotations only: PIL is imported where the drawing happens
    from PIL import Image

DEFAULT_STRIDES = "8,16,32"
DEFAULT_ANCHORS = "10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326"
ASSIGNERS = ("v5", "tutorial", "v3", "tal")
TAL_PREDS = ("prior", "gt-jitter", "zeros")
MIN_PNG_SIDE = 640
CANVAS_GREY = (114, 114, 114)  # YOLOv5's letterbox padding, also the canvas without an image
GRID_RGB = (235, 235, 235)
GT_RGB = (255, 230, 0)
MISS_RGB = (255, 0, 0)
COLLISION_RGB = (255, 0, 0)
ANCHOR_RGB = ((0, 114, 255), (255, 128, 0), (0, 200, 80), (200, 0, 255), (0, 220, 220),
              (255, 0, 150), (150, 100, 0), (120, 120, 255), (180, 180, 0))
TAL_RGB = (0, 200, 255)
CELL_ALPHA = 150


# ----------------------------------------------------------------------------- inputs

def _read_names(path: Path | None) -> list | None:
    """Class names, one per line, of a names file (None when there is none)."""
    if path is None or not path.is_file():
        return None
    try:
        names = [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    return names or None


def _guess_image(labels: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        p = labels.parent.parent / "images" / (labels.stem + suffix)
        if p.is_file():
            return p
    return None


def load_from_labels(labels: Path, image: Path | None, img_size: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Path | None, list[str] | None]:
    """One YOLO label file -> (img uint8 [H, W, 3], boxes xyxy px [n, 4], classes [n], image
    path or None, class names or None). The file is read by ``ref_numpy.formats.read_yolo``
    (errors name the file and line); ``classes.txt`` beside it or one level up names the classes."""
    from torch_impl.data import load_image

    labels = Path(labels)
    if not labels.is_file():
        raise ValueError(f"labels: {labels} is not a file")
    image = image if image is not None else _guess_image(labels)
    if image is not None:
        img = load_image(image)
    else:  # no image: a grey square canvas of the network size
        img = np.full((img_size, img_size, 3), CANVAS_GREY, np.uint8)
    h, w = img.shape[:2]
    names_file = next((p / CLASSES_FILE for p in (labels.parent, labels.parent.parent)
                       if (p / CLASSES_FILE).is_file() and p / CLASSES_FILE != labels), None)
    with tempfile.TemporaryDirectory() as tmp:  # read_yolo reads directories: give it this file
        copy = Path(tmp) / f"{labels.stem}.txt"
        shutil.copyfile(labels, copy)
        if names_file is not None:
            shutil.copyfile(names_file, Path(tmp) / CLASSES_FILE)
        try:
            ds = read_yolo(tmp, images=[{"id": 1, "file_name": f"{labels.stem}.png",
                                         "width": w, "height": h}])
        except ValueError as exc:
            raise ValueError(str(exc).replace(str(copy), str(labels))) from None
    boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in ds.annotations)],
                     np.float64).reshape(-1, 4)
    cls = np.array([a["category_id"] for a in ds.annotations], np.int64)
    names = None
    if names_file is not None:
        by_id = {c["id"]: c["name"] for c in ds.categories}
        names = [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
    return img, boxes, cls, image, names


def load_from_data(data: Path, index: int, split: str, images_dir: Path | None,
                   names_file: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Path, list[str]]:
    """Item ``index`` of a data set in any format (see the module docstring), unaugmented."""
    from torch_impl.data import DetectionDataset

    if data.suffix.lower() in (".yaml", ".yml"):
        ds = DetectionDataset.from_yaml(data, split=split, images_dir=images_dir)
    else:
        base = data if data.is_dir() else data.parent
        names = _read_names(names_file) if names_file is not None else (
            _read_names(base / CLASSES_FILE) or _read_names(base.parent / CLASSES_FILE))
        ds = DetectionDataset(data, names=names, images_dir=images_dir)
    if not 0 <= index < len(ds):
        raise UsageError(f"--index {index}: the data set has {len(ds)} images")
    img, boxes, cls = ds.load(index)
    return img, boxes, cls, Path(ds.items[index]["path"]), ds.names


def to_network(img: np.ndarray, boxes: np.ndarray, img_size: int, letterbox: bool) -> tuple[np.ndarray, np.ndarray]:
    """Image and xyxy boxes mapped to the square network input (letterbox or plain resize)."""
    from torch_impl.data import transforms as T

    if letterbox:
        out, ratio, pad = T.letterbox(img, img_size, auto=False, scaleup=True)
        return out, T.letterbox_boxes(boxes, ratio, pad)
    h, w = img.shape[:2]
    return T.resize(img, img_size, img_size), boxes * np.array([img_size / w, img_size / h] * 2)


def targets_from(boxes: np.ndarray, cls: np.ndarray, img_size: int) -> np.ndarray:
    """YOLOv5 target rows ``(0, class, cx, cy, w, h)`` normalised by ``img_size``."""
    x1, y1, x2, y2 = np.moveaxis(np.clip(boxes, 0, img_size) / img_size, -1, 0)
    return np.stack([np.zeros_like(x1), cls.astype(np.float64), (x1 + x2) / 2, (y1 + y2) / 2,
                     x2 - x1, y2 - y1], axis=-1).reshape(-1, 6)


def tal_stand_in(gt: np.ndarray, strides: Sequence[int], img_size: int, pred: str,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stand-in head fed to TAL (see the module docstring): anchor points [A, 2] and their
    strides [A] (``coder.make_anchors``, in pixels), predicted boxes [A, 4] xyxy pixels."""
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


# ----------------------------------------------------------------------------- assignment

def _backend(backend: str, device: str):
    """(assign module, NumPy -> its input) of the side of ``--backend``
    (:func:`ref_numpy.shared.sides.get_side`, checked on ``--device``)."""
    side = sides.get_side(backend, device).check()
    return side.module("assign"), side.to_inputs


def assignment_report(args: argparse.Namespace, t: np.ndarray, nc: int) -> tuple[R.AssignmentReport, np.ndarray | None]:
    """The library's AssignmentReport of ``args.assigner`` on target rows ``t`` (and, for TAL,
    the stand-in predicted boxes, for the drawing)."""
    lib, conv = _backend(args.backend, args.device)
    grids = [(args.img_size // s, args.img_size // s) for s in args.strides]
    anchors = args.anchors_px / np.asarray(args.strides, np.float64)[:, None, None]
    if args.assigner == "v5":
        return lib.yolov5_assignment_report(conv(t), conv(anchors), grids, args.anchor_t, args.g), None
    if args.assigner == "tutorial":
        return lib.tutorial_assignment_report(conv(t), conv(anchors), grids), None
    if args.assigner == "v3":
        return lib.yolov3_assignment_report(conv(t), conv(anchors), grids, ignore_mode="none",
                                            batch_size=1), None
    gt = np.stack([t[:, 2] - t[:, 4] / 2, t[:, 3] - t[:, 5] / 2, t[:, 2] + t[:, 4] / 2,
                   t[:, 3] + t[:, 5] / 2], -1).reshape(-1, 4) * args.img_size
    anc, _, boxes = tal_stand_in(gt, args.strides, args.img_size, args.tal_pred, args.seed)
    n = len(t)
    if args.topk > len(anc):
        raise UsageError(f"--topk {args.topk}: exceeds the {len(anc)} anchor points")
    report = lib.task_aligned_report(
        conv(np.full((1, len(anc), nc), 0.5)), conv(boxes[None]), conv(anc),
        conv(t[:, 1].reshape(1, n, 1)), conv(gt[None]), conv(np.ones((1, n, 1))),
        topk=args.topk, num_classes=nc, grid_sizes=grids)
    return report, boxes


def flatten(report: R.AssignmentReport, args: argparse.Namespace, tal_boxes: np.ndarray | None) -> dict:
    """The report as the command's flat tables: ``{"rows", "collisions", "no_positive"}``.

    ``rows``: per positive, in output order, ``{"gt", "level", "row", "anchor", "cell":
    [gj, gi], "rule", "box_px": [w, h] of the anchor (TAL: [x1, y1, x2, y2] of the box fed as
    prediction), "target": 4 floats (TAL: in strides), "won"}``; ``collisions``: ``{"level",
    "slot": [b, a, gj, gi], "writers", "winner"}``; ``no_positive``: ``{"gt", "reason"}``.
    """
    tal = report.assigner == "tal"
    rows = []
    for g, p in report.positive_rows():
        box = tal_boxes[p.row].tolist() if tal else args.anchors_px[p.level, p.anchor].tolist()
        scale = args.strides[p.level] if tal else 1.0
        rows.append({"gt": g.gt, "level": p.level, "row": p.row, "anchor": p.anchor,
                     "cell": p.cell, "rule": p.rule, "box_px": box,
                     "target": [v / scale for v in p.target], "won": p.won})
    collisions = [{"level": c.level, "slot": c.slot, "writers": c.writers, "winner": c.winner}
                  for c in report.collisions]
    no_positive = [{"gt": u.gt, "reason": u.reason} for u in report.unassigned]
    return {"rows": rows, "collisions": collisions, "no_positive": no_positive}


def _level_name(strides, lv: int) -> str:
    return R.level_names(strides)[lv]


def _class_name(c: int, names) -> str:
    return names[c] if names is not None and 0 <= c < len(names) else str(c)


def format_table(report: R.AssignmentReport, args: argparse.Namespace, names: Sequence[str] | None) -> str:
    """The stdout table (:func:`ref_numpy.shared.report.format_assignment_table`)."""
    tal = report.assigner == "tal"
    anchor_labels = [["point"]] * len(args.strides) if tal else [
        [f"{a} {int(w)}x{int(h)}" for a, (w, h) in enumerate(lvl)] for lvl in args.anchors_px.tolist()]
    return R.format_assignment_table(
        report, names=names, level_names=R.level_names(args.strides), anchor_labels=anchor_labels,
        target_scale=args.strides if tal else None,
        target_header="l t r b (strides)" if tal else None)


# ----------------------------------------------------------------------------- drawing

def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _dashed_rect(draw, box, fill, width=2, dash=8):
    x1, y1, x2, y2 = box
    for (ax, ay, bx, by) in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
        length = math.hypot(bx - ax, by - ay)
        steps = max(int(length // dash), 1)
        for k in range(0, steps, 2):
            t0, t1 = k / steps, min((k + 1) / steps, 1.0)
            draw.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0),
                       (ax + (bx - ax) * t1, ay + (by - ay) * t1)], fill=fill, width=width)


def _label(draw, xy, text, font, fill, bg=(0, 0, 0)):
    x, y = xy
    l, t, r, b = draw.textbbox((x, y), text, font=font)
    draw.rectangle([l - 2, t - 1, r + 2, b + 1], fill=bg)
    draw.text((x, y), text, fill=fill, font=font)


def draw_level(img: np.ndarray, lv: int, result: dict, args: argparse.Namespace, gt_boxes: np.ndarray,
               cls: np.ndarray, names: Sequence[str] | None, scale: int) -> Image.Image:
    """One level's panel (PIL RGB image): title band, picture, legend band."""
    from PIL import Image, ImageDraw

    size = args.img_size * scale
    stride = args.strides[lv]
    n = args.img_size // stride
    cell = stride * scale
    base = Image.fromarray(img).resize((size, size), Image.NEAREST)
    base = Image.blend(base, Image.new("RGB", base.size, (60, 60, 60)), 0.35)  # dim for overlays
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    od = ImageDraw.Draw(overlay)
    rows = [r for r in result["rows"] if r["level"] == lv]
    tal = args.assigner == "tal"
    na = 1 if tal else args.anchors_px.shape[1]
    for r in rows:  # cell fills: anchor k fills the k-th of na vertical strips of the cell
        gj, gi = r["cell"]
        rgb = TAL_RGB if tal else ANCHOR_RGB[r["anchor"] % len(ANCHOR_RGB)]
        a = 0 if tal else r["anchor"]
        od.rectangle([gi * cell + a * cell // na, gj * cell,
                      gi * cell + (a + 1) * cell // na - 1, (gj + 1) * cell - 1],
                     fill=(*rgb, CELL_ALPHA))
    pic = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    d = ImageDraw.Draw(pic)
    for k in range(n + 1):  # grid
        p = min(k * cell, size - 1)
        d.line([(p, 0), (p, size - 1)], fill=GRID_RGB, width=1)
        d.line([(0, p), (size - 1, p)], fill=GRID_RGB, width=1)
    drawn = set()
    for r in rows:  # anchor shapes (TAL: the predicted box fed to it) at their cells
        gj, gi = r["cell"]
        key = (r["anchor"], gj, gi)
        if key in drawn:
            continue
        drawn.add(key)
        if tal:
            box = [v * scale for v in r["box_px"]]
            rgb = TAL_RGB
            px, py = (gi + 0.5) * cell, (gj + 0.5) * cell  # the anchor point itself
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=rgb, outline=(0, 0, 0))
        else:
            cx, cy = (gi + 0.5) * cell, (gj + 0.5) * cell
            aw, ah = r["box_px"][0] * scale / 2, r["box_px"][1] * scale / 2
            box = [cx - aw, cy - ah, cx + aw, cy + ah]
            rgb = ANCHOR_RGB[r["anchor"] % len(ANCHOR_RGB)]
        d.rectangle(box, outline=rgb, width=2)
    font = _font(max(12, min(16, size // 45)))
    said = set()
    lw = 3 if cell >= 24 else 2
    for c in (c for c in result["collisions"] if c["level"] == lv):
        _, _, gj, gi = c["slot"]
        box = [gi * cell, gj * cell, (gi + 1) * cell, (gj + 1) * cell]
        d.rectangle(box, outline=COLLISION_RGB, width=lw)
        d.line([(box[0], box[1]), (box[2], box[3])], fill=COLLISION_RGB, width=lw)
        d.line([(box[0], box[3]), (box[2], box[1])], fill=COLLISION_RGB, width=lw)
        losers = ",".join(str(w) for w in sorted(set(c["writers"]) - {c["winner"]}))
        text = f"won by GT{c['winner']} (over {losers})"
        if text not in said:  # one label per winner / losers set, at its first cell
            said.add(text)
            _label(d, (box[2] + 2, box[1]), text, font, COLLISION_RGB)
    missing = {m["gt"]: m["reason"] for m in result["no_positive"]}
    for g, b in enumerate(gt_boxes):
        box = [v * scale for v in b]
        text = f"GT{g} {_class_name(int(cls[g]), names)}"
        if g in missing:
            _dashed_rect(d, box, MISS_RGB, width=3)
            _label(d, (box[0] + 2, box[3] + 2), f"{text}: no positive: {missing[g]}", font, MISS_RGB)
        else:
            d.rectangle(box, outline=GT_RGB, width=2)
            _label(d, (box[0] + 2, max(box[1] - 18, 0)), text, font, GT_RGB)
    # title and legend bands
    title = (f"{_level_name(args.strides, lv)}  stride {stride}  grid {n}x{n}  assigner "
             f"{args.assigner}  {len(rows)} positives"
             + ("" if tal else "  (cell strip k = anchor k)"))
    entries = ([(TAL_RGB, "positive point (outline: its fed box)")] if tal else
               [(ANCHOR_RGB[a % len(ANCHOR_RGB)],
                 f"anchor {a}: {args.anchors_px[lv, a, 0]:g}x{args.anchors_px[lv, a, 1]:g}")
                for a in range(args.anchors_px.shape[1])])
    entries += [(GT_RGB, "GT box"), (MISS_RGB, "GT without positive (dashed)"),
                (COLLISION_RGB, "collision (X, winner named)")]
    widest = max(ImageDraw.Draw(pic).textlength(text, font=font) for _, text in entries)
    line_h, per_row = 22, max(1, min(3, int(size // (widest + 34))))
    legend_h = 10 + line_h * math.ceil(len(entries) / per_row)
    panel = Image.new("RGB", (size, size + 28 + legend_h), (255, 255, 255))
    panel.paste(pic, (0, 28))
    pd = ImageDraw.Draw(panel)
    pd.text((6, 6), title, fill=(0, 0, 0), font=font)
    col_w = size // per_row
    for k, (rgb, text) in enumerate(entries):
        x = 6 + (k % per_row) * col_w
        y = size + 28 + 6 + (k // per_row) * line_h
        pd.rectangle([x, y + 2, x + 14, y + 16], fill=rgb, outline=(0, 0, 0))
        pd.text((x + 20, y + 1), text, fill=(0, 0, 0), font=font)
    return panel


def draw_all(img: np.ndarray, result: dict, args: argparse.Namespace, gt_boxes: np.ndarray, cls: np.ndarray,
             names: Sequence[str] | None, out_dir: Path) -> list[Path]:
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    scale = max(1, math.ceil(MIN_PNG_SIDE / args.img_size))
    panels, written = [], []
    for lv in range(len(args.strides)):
        panel = draw_level(img, lv, result, args, gt_boxes, cls, names, scale)
        path = out_dir / f"assign_{_level_name(args.strides, lv)}.png"
        panel.save(path)
        panels.append(panel)
        written.append(path)
    gap = 8
    overview = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1),
                                 max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for p in panels:
        overview.paste(p, (x, 0))
        x += p.width + gap
    path = out_dir / "assign_overview.png"
    overview.save(path)
    written.append(path)
    return written


# ----------------------------------------------------------------------------- CLI

def _numbers(text: str, what: str, cast):
    try:
        return [cast(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        raise ValueError(f"{what}: expected numbers separated by commas, got {text!r}") from exc


def _backend_name(text: str) -> str:
    return {"numpy": "ref"}.get(text, text)  # "numpy": the old spelling, kept as an alias


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser("show-assignments", __doc__)
    ap.add_argument("labels", type=Path, nargs="?", help="YOLO label file (class cx cy w h per line)")
    ap.add_argument("--image", type=Path, help="the image of the label file (default: "
                    "../images/<stem>.* next to it, else a grey canvas)")
    ap.add_argument("--data", type=Path, help="data set: YOLO root or labels dir, COCO .json, "
                    "VOC dir, or data YAML (with --split)")
    ap.add_argument("--index", type=int, default=0, help="image index in --data")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"),
                    help="split of a data YAML")
    ap.add_argument("--images", type=Path, help="images directory of a --data COCO / VOC / YOLO set")
    ap.add_argument("--names", type=Path, help="class names file (default classes.txt near the data)")
    ap.add_argument("--assigner", choices=ASSIGNERS, default="v5", help="the target assigner")
    ap.add_argument("--strides", default=DEFAULT_STRIDES, help="level strides")
    ap.add_argument("--anchors", default=DEFAULT_ANCHORS,
                    help="anchor w,h pairs in pixels, level by level (YOLOv5's)")
    add_img_size(ap)
    ap.add_argument("--letterbox", action=argparse.BooleanOptionalAction, default=True,
                    help="letterbox to --img-size, or stretch with --no-letterbox")
    ap.add_argument("--anchor-t", type=float, default=4.0, help="v5 anchor ratio threshold")
    ap.add_argument("--g", type=float, default=0.5, help="v5 neighbour-cell bias")
    ap.add_argument("--topk", type=int, default=10, help="TAL top k")
    ap.add_argument("--tal-pred", choices=TAL_PREDS, default="prior",
                    help="predicted boxes fed to TAL (see above)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --tal-pred gt-jitter")
    ap.add_argument("--backend", type=_backend_name, choices=BACKENDS, default="torch",
                    help="ref = ref_numpy (NumPy), torch = torch_impl")
    add_device(ap)
    add_out(ap, help="directory for the PNGs (none written without it)")
    ap.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    ap.add_argument("--quiet", action="store_true", help="no table")
    return ap


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments (argparse exits with code 2 on bad ones)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if (args.labels is None) == (args.data is None):
        ap.error("give either a label file or --data")
    try:
        args.strides = _numbers(args.strides, "--strides", int)
        anchors = _numbers(args.anchors, "--anchors", float)
    except ValueError as exc:
        ap.error(str(exc))
    nl = len(args.strides)
    if nl == 0 or any(s <= 0 for s in args.strides):
        ap.error("--strides: expected positive integers")
    if not anchors or len(anchors) % (2 * nl) or any(not math.isfinite(v) or v <= 0 for v in anchors):
        ap.error(f"--anchors: expected positive w,h pairs, the same number for each of {nl} levels, "
                 f"got {len(anchors)} numbers")
    args.anchors_px = np.array(anchors, np.float64).reshape(nl, -1, 2)
    if args.img_size <= 0 or any(args.img_size % s for s in args.strides):
        ap.error(f"--img-size: expected a positive multiple of every stride, got {args.img_size}")
    if not args.anchor_t > 0 or not 0 <= args.g <= 1:
        ap.error("--anchor-t must be > 0 and --g in [0, 1]")
    if args.topk < 1:
        ap.error("--topk must be >= 1")
    if args.index < 0:
        ap.error("--index must be >= 0")
    if args.out is not None:
        args.out = Path(args.out)
    return args


def _main(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    if args.data is not None:
        img, boxes, cls, image_path, names = load_from_data(args.data, args.index, args.split,
                                                            args.images, args.names)
    else:
        img, boxes, cls, image_path, names = load_from_labels(args.labels, args.image, args.img_size)
    net_img, net_boxes = to_network(img, boxes, args.img_size, args.letterbox)
    t = targets_from(net_boxes, cls, args.img_size)
    gt_boxes = np.clip(net_boxes, 0, args.img_size)
    nc = max(len(names) if names else 0, int(cls.max()) + 1 if len(cls) else 1)
    report, tal_boxes = assignment_report(args, t, nc)
    result = flatten(report, args, tal_boxes)
    if not args.quiet:
        print(format_table(report, args, names))
    if args.json:
        doc = {"assigner": args.assigner, "image": None if image_path is None else str(image_path),
               "settings": {"img_size": args.img_size, "letterbox": args.letterbox,
                            "strides": args.strides, "anchors_px": args.anchors_px.tolist(),
                            "anchor_t": args.anchor_t, "g": args.g, "topk": args.topk,
                            "tal_pred": args.tal_pred, "backend": args.backend},
               "gts": [{"gt": g, "class": int(cls[g]), "name": _class_name(int(cls[g]), names),
                        "box_xyxy_px": gt_boxes[g].tolist(), "target_row": t[g].tolist()}
                       for g in range(len(t))],
               **result, "report": report.to_dict()}
        text = json.dumps(doc, indent=1)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                raise UsageError(f"--json {args.json}: {exc}") from exc
    if args.out is not None:
        try:
            written = draw_all(net_img, result, args, gt_boxes, cls, names, args.out)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc}") from exc
        if not args.quiet:
            for p in written:
                print(f"wrote {p}")
    return EXIT_CHECK_FAILED if report.unassigned else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref show-assignments``: exit 0 when every GT has a positive, 1 when some has none,
    2 on bad arguments or input (the message names the argument or file and line)."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
