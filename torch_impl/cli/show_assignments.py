"""Show where a YOLO target assigner puts each ground truth: PNGs per level, a table, JSON.

Input: one image and its labels, either a YOLO label file (``class cx cy w h`` per line,
normalised, read by ``ref_numpy.formats.read_yolo``; the image is --image or the file of the
same stem in the sibling ``images`` directory, else a plain grey canvas) or item --index K of a
data set (--data: a YOLO data-set root or labels directory, a COCO ``.json``, a VOC directory
of ``.xml``, or an Ultralytics 8.3 / 8.4 data-set YAML with --split), read by
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

The data-set report (--data without --index): every image of the set (the --split of a data
YAML) through the assigner (--assigner v5 / tutorial / v3 / v1 / tal), written to --out
(default runs/assignments): ``summary.txt`` (also on stdout) with a verdict sentence and the
fix, the GTs without positive per class, size and aspect bucket and why (the failing test in
numbers: ``w/aw = 28.8 >= anchor_t 4``; "aspect ratio" when no scale of the box fits any
anchor's shape), collisions per image, positives per level and per anchor, the best possible
recall of the anchors at this size, and set-up findings (anchors in the wrong units, anchors
for another --img-size, labels normalised twice or x/y swapped, strides that do not match the
model); ``gts.txt`` (one line per GT: per level each anchor's ratios, cells or the test that
rejected it), ``report.json``, ``plots/*.png``, ``images/*.png`` (the worst images with a
zoomed inset per GT and a legend) and ``index.html``. Anchors and strides come from --weights
(a ``yolo-ref train`` checkpoint or an ``import-yolov5`` file), else --cfg (the model YAML),
else YOLOv5's; --anchors / --strides override them. With an anchor-free --weights, TAL runs on
the model's real scores and boxes; two --weights (or --compare) compare the checkpoints.
Library: ``torch_impl.assign_report`` (array work), ``ref_numpy.shared.assign_summary``
(aggregation, verdict), ``torch_impl.assign_figures`` (pictures, HTML).

Examples:
    yolo-ref show-assignments --data fixtures/shapes/dataset.yaml --split val --img-size 320
    yolo-ref show-assignments --data my.yaml --cfg yolov5s.yaml --out runs/assign
    yolo-ref show-assignments --data my.yaml --weights runs/a/weights/best.pt --assigner tal
    yolo-ref show-assignments --data my.yaml --weights epoch5.pt --weights best.pt
    yolo-ref show-assignments fixtures/shapes/labels/shapes_0000.txt --img-size 320
    yolo-ref show-assignments --data fixtures/shapes --index 3 --out out/ --json out/a.json
    yolo-ref show-assignments --data fixtures/shapes/annotations.json --index 3
    yolo-ref show-assignments --data fixtures/shapes/voc --index 3 --assigner tal --topk 5
    yolo-ref show-assignments --data fixtures/shapes/dataset.yaml --split val --index 0
    yolo-ref show-assignments labels.txt --assigner v5 --anchor-t 1.5 --no-letterbox
    yolo-ref show-assignments labels.txt --strides 8,16 \\
        --anchors "10,13, 16,30, 33,23, 30,61, 62,45, 59,119" --img-size 256

Exit status: 0 every GT has a positive (data-set report: and no set-up finding); 1 some GT has
no positive (the check failed);
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
from ref_numpy.shared import assign_summary as S
from ref_numpy.shared import report as R
from ref_numpy.shared import sides
from ref_numpy.shared.cli import (BACKENDS, EXIT_CHECK_FAILED, EXIT_OK, UsageError,
                                  add_device, add_img_size, add_out, make_parser, run)
from torch_impl.assign_report import tal_stand_in  # noqa: F401 (the stand-in TAL head, re-exported)

if TYPE_CHECKING:  # annotations only: PIL is imported where the drawing happens
    from PIL import Image

    from torch_impl import assign_report as AR

DEFAULT_STRIDES = "8,16,32"
DEFAULT_ANCHORS = "10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326"
ASSIGNERS = ("v5", "tutorial", "v3", "tal")  # one image
DATASET_ASSIGNERS = ("v5", "tutorial", "v3", "v1", "tal")  # the data-set report
DEFAULT_REPORT_DIR = "runs/assignments"
MAX_PRINTED = 20
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
                    "VOC dir, or data YAML (with --split); without --index: the data-set report")
    ap.add_argument("--index", type=int, default=None, help="one image of --data (default: the "
                    "data-set report over every image)")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"),
                    help="split of a data YAML")
    ap.add_argument("--images", type=Path, help="images directory of a --data COCO / VOC / YOLO set")
    ap.add_argument("--names", type=Path, help="class names file (default classes.txt near the data)")
    ap.add_argument("--assigner", choices=DATASET_ASSIGNERS, default=None,
                    help="the target assigner; None: v5, or tal for an anchor-free --weights "
                         "(v1 only in the data-set report)")
    ap.add_argument("--weights", action="append", type=Path, default=None,
                    help="a model file (yolo-ref train checkpoint or import-yolov5 file): anchors and "
                         "strides from it, TAL on its predictions; twice to compare two checkpoints")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a second model file to compare with --weights (= a second --weights)")
    ap.add_argument("--cfg", type=Path, help="the model YAML trained with (anchors per level in "
                    "pixels, optional strides); --anchors / --strides override it")
    ap.add_argument("--strides", default=None, help=f"level strides (default: the model's, else "
                    f"{DEFAULT_STRIDES})")
    ap.add_argument("--anchors", default=None,
                    help="anchor w,h pairs in pixels, level by level (default: the model's, else "
                         "YOLOv5's)")
    add_img_size(ap)
    ap.add_argument("--letterbox", action=argparse.BooleanOptionalAction, default=True,
                    help="letterbox to --img-size, or stretch with --no-letterbox")
    ap.add_argument("--anchor-t", type=float, default=4.0, help="v5 anchor ratio threshold")
    ap.add_argument("--g", type=float, default=0.5, help="v5 neighbour-cell bias")
    ap.add_argument("--topk", type=int, default=10, help="TAL top k")
    ap.add_argument("--tal-pred", choices=TAL_PREDS, default="prior",
                    help="predicted boxes fed to TAL without --weights (see above)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --tal-pred gt-jitter")
    ap.add_argument("--worst", type=int, default=8, help="data-set report: images in the gallery")
    ap.add_argument("--swap-check", action=argparse.BooleanOptionalAction, default=True,
                    help="data-set report: test the labels for x/y swapped on a sample of images")
    ap.add_argument("--rows", action="store_true", help="one image: also the raw rows table")
    ap.add_argument("--backend", type=_backend_name, choices=BACKENDS, default="torch",
                    help="ref = ref_numpy (NumPy), torch = torch_impl")
    add_device(ap)
    add_out(ap, help="directory for the PNGs (one image: none without it; data-set report: "
                     f"default {DEFAULT_REPORT_DIR})")
    ap.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    ap.add_argument("--quiet", action="store_true", help="no table")
    return ap


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments (argparse exits with code 2 on bad ones)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if (args.labels is None) == (args.data is None):
        ap.error("give either a label file or --data")
    args.dataset = args.data is not None and args.index is None
    args.weights = list(args.weights or []) + ([args.compare] if args.compare else [])
    if len(args.weights) > 2:
        ap.error("--weights: at most two model files (to compare them)")
    if not args.dataset and (args.weights or args.cfg):
        ap.error("--weights / --cfg: only for the data-set report (--data without --index)")
    try:
        args.strides_given = args.strides is not None
        args.anchors_given = args.anchors is not None
        args.strides = _numbers(args.strides or DEFAULT_STRIDES, "--strides", int)
        anchors = _numbers(args.anchors or DEFAULT_ANCHORS, "--anchors", float)
    except ValueError as exc:
        ap.error(str(exc))
    nl = len(args.strides)
    if nl == 0 or any(s <= 0 for s in args.strides):
        ap.error("--strides: expected positive integers")
    if not anchors or len(anchors) % (2 * nl) or any(not math.isfinite(v) or v <= 0 for v in anchors):
        if args.anchors_given or not args.strides_given:
            ap.error(f"--anchors: expected positive w,h pairs, the same number for each of {nl} "
                     f"levels, got {len(anchors)} numbers")
        anchors = None  # --strides alone: the anchors come from the model / cfg (checked there)
    args.anchors_px = None if anchors is None else np.array(anchors, np.float64).reshape(nl, -1, 2)
    if args.img_size <= 0 or any(args.img_size % s for s in args.strides):
        ap.error(f"--img-size: expected a positive multiple of every stride, got {args.img_size}")
    if not args.anchor_t > 0 or not 0 <= args.g <= 1:
        ap.error("--anchor-t must be > 0 and --g in [0, 1]")
    if args.topk < 1:
        ap.error("--topk must be >= 1")
    if args.index is not None and args.index < 0:
        ap.error("--index must be >= 0")
    if args.worst < 0:
        ap.error("--worst must be >= 0")
    if not args.dataset:
        if args.assigner == "v1":
            ap.error("--assigner v1: only in the data-set report (--data without --index)")
        args.assigner = args.assigner or "v5"
        args.index = args.index or 0
        if args.anchors_px is None:
            ap.error(f"--anchors: expected positive w,h pairs for each of {nl} levels")
    if args.out is not None:
        args.out = Path(args.out)
    return args


def _main(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    if args.dataset:
        return dataset_main(args)
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
        if args.rows:
            print(format_table(report, args, names))
        print(format_gt_lines(report, args, gt_boxes, cls, names))
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
        _write_json(args.json, doc)
    if args.out is not None:
        try:
            written = draw_all(net_img, result, args, gt_boxes, cls, names, args.out)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc}") from exc
        if not args.quiet:
            for p in written:
                print(f"wrote {p}")
    return EXIT_CHECK_FAILED if report.unassigned else EXIT_OK


def _write_json(dest: str, doc: dict) -> None:
    text = json.dumps(doc, indent=1)
    if dest == "-":
        print(text)
        return
    try:
        Path(dest).write_text(text)
    except OSError as exc:
        raise UsageError(f"--json {dest}: {exc}") from exc


def format_gt_lines(report: R.AssignmentReport, args: argparse.Namespace, gt_boxes: np.ndarray,
                    cls: np.ndarray, names: Sequence[str] | None) -> str:
    """One image: one line per GT (level, anchor, cells, ratio to each anchor, the test that
    rejected an anchor, why it has no positive; :func:`torch_impl.assign_report.gt_records`),
    then the collisions and the count line of the raw table."""
    from torch_impl import assign_report as AR

    setup = AR.AssignSetup(assigner=args.assigner, img_size=args.img_size,
                           strides=list(args.strides), anchors_px=args.anchors_px, anchor_t=args.anchor_t,
                           g=args.g, topk=args.topk)
    item = {"path": Path("-")}
    recs, _ = AR.gt_records([report], [gt_boxes], [cls], [item], names or [], setup)
    lines = [S.format_gt_line(g).replace("img 0 ", "", 1) for g in recs]
    lvn = R.level_names(args.strides)
    for c in report.collisions:
        lines.append(f"warning: collision {lvn[c.level]} anchor {c.anchor} cell "
                     f"({c.cell[0]},{c.cell[1]}): written by GTs {c.writers}, GT {c.winner} wins")
    n_pos = sum(len(g.positives) for g in report.gts)
    lines.append(f"{sum(g.valid for g in report.gts)} GTs, {n_pos} positives, {len(report.unassigned)} "
                 f"without positive, {len(report.collisions)} collisions")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the data-set report

def resolve_setup(args: argparse.Namespace, model: dict | None) -> "AR.AssignSetup":
    """The anchors, strides and assigner of the data-set report: --anchors / --strides when
    given, else the checkpoint's (--weights), else the model YAML's (--cfg), else YOLOv5's."""
    from torch_impl import assign_report as AR

    cfg = AR.read_model_yaml(args.cfg) if args.cfg else None
    model_strides = model["strides"] if model else cfg["strides"] if cfg else None
    strides = args.strides if args.strides_given or model_strides is None else list(model_strides)
    if args.anchors_given:
        anchors, source = args.anchors_px, "--anchors"
    elif model is not None and model["anchors_px"] is not None:
        anchors, source = np.array(model["anchors_px"]), f"the checkpoint {model['file']}"
    elif cfg is not None:
        anchors, source = np.array(cfg["anchors_px"]), f"the model YAML {args.cfg}"
    else:
        anchors, source = np.array(DEFAULT_ANCHORS.replace(",", " ").split(), float).reshape(3, -1, 2), \
            "the YOLOv5 defaults"
    if len(anchors) != len(strides):
        raise UsageError(f"--strides {','.join(map(str, strides))}: {len(strides)} levels, but the anchors "
                         f"({source}) have {len(anchors)}")
    if args.img_size % max(strides):
        raise UsageError(f"--img-size {args.img_size}: not a multiple of the stride {max(strides)}")
    assigner = args.assigner or ("tal" if model is not None and model["anchor_free"] else "v5")
    return AR.AssignSetup(assigner=assigner, img_size=args.img_size, strides=list(strides),
                          anchors_px=anchors, anchor_t=args.anchor_t, g=args.g, topk=args.topk,
                          tal_pred=args.tal_pred, seed=args.seed, anchors_from=source,
                          model_strides=None if model_strides is None else list(model_strides),
                          letterbox=args.letterbox)


def _names_arg(args: argparse.Namespace) -> list | None:
    if args.names is not None:
        return _read_names(args.names)
    if args.data.suffix.lower() in (".yaml", ".yml"):
        return None
    base = args.data if args.data.is_dir() else args.data.parent
    return _read_names(base / CLASSES_FILE) or _read_names(base.parent / CLASSES_FILE)


def write_dataset_report(result: dict, items: list, out: Path, title: str,
                         compare: dict | None = None) -> dict:
    """summary.txt, gts.txt, report.json, plots/, images/ (the worst images) and index.html
    of one data-set report in ``out``; returns ``{"text", "html", "images"}``."""
    from torch_impl import assign_figures as F
    from torch_impl import assign_report as AR
    from torch_impl.data import letterbox, load_image

    summary, gts = result["summary"], result["gts"]
    setup = result["setup"]
    text = S.format_assignment_summary(summary)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    (out / "gts.txt").write_text("\n".join(S.format_gt_line(g) for g in gts) + "\n", encoding="utf-8")
    plots = F.summary_plots(summary, out / "plots")
    (out / "images").mkdir(exist_ok=True)
    gallery = []
    strides = result["strides"]
    anchors = setup.anchors_px if setup.assigner in ("v5", "tutorial", "v3") else None
    by_image: dict = {}
    for g in gts:
        by_image.setdefault(g["image"], []).append(g)
    for w in summary["worst_images"]:
        i = w["image"]
        img, _, _ = letterbox(load_image(items[i]["path"]), setup.img_size, auto=False, scaleup=True)
        mine = by_image.get(i, [])
        level_strides = strides if setup.assigner != "v1" else [setup.img_size / AR.V1_GRID]
        png = F.draw_image_assignments(
            img, mine, result["reports"][i].collisions, level_strides, anchors, summary["level_names"],
            out / "images" / f"{i:05d}_{Path(w['file']).stem}.png",
            title=f"{Path(w['file']).name}: {w['no_positive']} GTs without positive, {w['collisions']} collisions "
                  f"({setup.assigner}, {setup.img_size} px)")
        gallery.append({"png": png, "file": w["file"], "lines": [S.format_gt_line(g) for g in mine]})
    page = F.write_html(summary, text, plots, gallery, out, compare, title)
    doc = {"summary": summary, "gts": gts, "compare": compare}
    (out / "report.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    return {"text": text, "html": page, "images": [g["png"] for g in gallery]}


def dataset_main(args: argparse.Namespace) -> int:
    """``--data`` without ``--index``: the data-set report (see the module docstring)."""
    from torch_impl import assign_report as AR

    items, names = AR.read_dataset_gts(args.data, args.split, args.images, _names_arg(args))
    models = [AR.model_setup(w, "cpu" if args.device in (None, "auto") else args.device)
              for w in args.weights] or [None]
    out = args.out if args.out is not None else Path(DEFAULT_REPORT_DIR)
    results = []
    for m in models:
        setup = resolve_setup(args, m)
        if setup.assigner == "v1" and m is not None:
            raise UsageError("--assigner v1: no model of this toolkit has a YOLOv1 head")
        results.append(AR.dataset_assignment_report(items, names, setup, args.backend, args.device or "cpu",
                                                    m, args.swap_check, args.worst))
    compare = None
    labels = [Path(str(m["file"])).name if m else "no model" for m in models]
    if len(results) == 2:
        if labels[0] == labels[1]:
            labels = [f"A {labels[0]}", f"B {labels[1]}"]
        compare = S.compare_summaries(results[0]["summary"], results[1]["summary"], results[0]["gts"],
                                      results[1]["gts"], labels[0], labels[1])
    try:
        main_out = write_dataset_report(results[0], items, out, f"assignments of {args.data} ({labels[0]})",
                                        compare)
        if len(results) == 2:
            write_dataset_report(results[1], items, out / "b", f"assignments of {args.data} ({labels[1]})",
                                 compare)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc}") from exc
    if args.json:
        _write_json(args.json, {"summary": results[0]["summary"], "gts": results[0]["gts"],
                                "compare": compare,
                                "b": None if len(results) < 2 else results[1]["summary"]})
    if not args.quiet:
        print(main_out["text"])
        missing = [g for g in results[0]["gts"] if not g["positive"]]
        if missing:
            print(f"\nGTs without positive ({len(missing)}; all GTs in {out / 'gts.txt'}):")
            for g in missing[:MAX_PRINTED]:
                print(S.format_gt_line(g))
            if len(missing) > MAX_PRINTED:
                print(f"... {len(missing) - MAX_PRINTED} more in {out / 'gts.txt'}")
        if compare is not None:
            print("\n" + compare["text"])
        print(f"\nwrote {main_out['html']} (summary.txt, report.json, plots/, images/ beside it)")
    bad = any(r["summary"]["no_positive"] or r["summary"]["findings"] for r in results)
    return EXIT_CHECK_FAILED if bad else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref show-assignments``: exit 0 when every GT has a positive, 1 when some has none,
    2 on bad arguments or input (the message names the argument or file and line)."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
