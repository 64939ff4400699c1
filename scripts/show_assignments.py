#!/usr/bin/env python
"""Show where a YOLO target assigner puts each ground truth: PNGs per level, a table, JSON.

Input: one image and its labels, either a YOLO label file (``class cx cy w h`` per line,
normalised; the image is --image or the file of the same stem in the sibling ``images``
directory, else a plain grey canvas) or item --index K of a data set (--data: a YOLO data-set
root or labels directory, a COCO ``.json``, a VOC directory of ``.xml``, or an Ultralytics data
YAML with --split), read by ``torch_impl.data.DetectionDataset`` (``ref_numpy.formats.load_any``).

The image and boxes are letterboxed to --img-size (``torch_impl.data.letterbox``, as YOLOv5's
val loader), or with --no-letterbox stretched to it; then the assigner runs on the boxes:

- ``v5``: ``yolov5_assignment_report`` (YOLOv5 v7.0 build_targets: ratio test --anchor-t,
  neighbour cells with bias --g); target values are YOLOv5's ``tbox``: ``(gx - gi, gy - gj,
  gw, gh)`` in grid units;
- ``tutorial``: ``tutorial_assign`` (best anchor on every level), same target values;
- ``v3``: ``yolov3_assign`` with ``ignore_mode="none"`` (best anchor over all levels); target
  values are darknet's ``(gx - gi, gy - gj, log(gw / aw), log(gh / ah))``;
- ``tal``: ``task_aligned_report`` (Ultralytics 8.3 TaskAlignedAssigner, --topk, alpha 0.5,
  beta 6). TAL scores predictions, so the script feeds it a stand-in head: class scores 0.5
  for every class (the GT's class score is then the same everywhere, so only the boxes
  decide), and predicted boxes per --tal-pred: ``prior`` (default) a square of side
  ``4 * stride`` centred on each anchor point (an untrained DFL head predicting 2 strides on
  every side), ``gt-jitter`` the smallest GT containing the point, each corner moved by
  N(0, 0.1 * GT side) (seeded by --seed; points in no GT get the prior box), ``zeros`` all
  boxes (0, 0, 0, 0) (every CIoU clamps to 0: the degenerate start, most GTs get nothing).
  Its "anchors" are the points (one per cell); target values are the distances
  ``(l, t, r, b)`` from the point to the owning GT's sides in strides (``bbox2dist``).

Outputs: ``assign_P<k>.png`` per level (stride 2^k; ``assign_L<i>.png`` for level i when the
strides are not distinct powers of two) and ``assign_overview.png`` (the levels side by side)
in --out: the letterboxed image (upscaled to at least 640 px, dimmed), the grid lines, every GT
box with ``GT<index> <class>``, the positive cells filled semi-transparently in their anchor's
colour with the anchor's w x h drawn as an outline centred on the cell (TAL: the box fed as
prediction), collisions (a slot written by two GTs) with a thick red border, a red X and the
winner, GTs without positive as a dashed red box with "no positive: <reason>", and a legend.
A table on stdout: one line per positive (GT -> level, anchor, cell, target values), then the
warnings (no positive with the reason, collisions with the winner). --json PATH writes all of
it, with the library's own report under ``"report"``.

Examples:
    python scripts/show_assignments.py fixtures/shapes/labels/shapes_0000.txt --img-size 320
    python scripts/show_assignments.py --data fixtures/shapes --index 3 --out out/ --json out/a.json
    python scripts/show_assignments.py --data fixtures/shapes/annotations.json --index 3
    python scripts/show_assignments.py --data fixtures/shapes/voc --index 3 --assigner tal --topk 5
    python scripts/show_assignments.py --data fixtures/shapes/dataset.yaml --split val --index 0
    python scripts/show_assignments.py labels.txt --assigner v5 --anchor-t 1.5 --no-letterbox
    python scripts/show_assignments.py labels.txt --strides 8,16 \\
        --anchors "10,13, 16,30, 33,23, 30,61, 62,45, 59,119" --img-size 256

Exit status: 0 every GT has a positive; 1 unreadable or malformed input (label file, image,
data set); 2 bad arguments; 3 some GT has no positive.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

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


class InputError(Exception):
    """Unreadable or malformed input (exit 1)."""


class ArgumentMismatch(Exception):
    """Arguments that do not fit the input, e.g. --index past the data set's end (exit 2)."""


# ----------------------------------------------------------------------------- inputs

def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label file -> (classes int64 [n], boxes [n, 4] normalised cxcywh); errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    cls, boxes = [], []
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 5:
            raise InputError(f"{path}:{k}: expected 'class cx cy w h', got {line!r}")
        try:
            values = [float(v) for v in parts]
        except ValueError as exc:
            raise InputError(f"{path}:{k}: {exc}") from exc
        c, cx, cy, w, h = values
        if not all(math.isfinite(v) for v in values) or c < 0 or c != int(c):
            raise InputError(f"{path}:{k}: class must be a non-negative integer and values finite")
        if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 <= w <= 1 and 0 <= h <= 1):
            raise InputError(f"{path}:{k}: cx cy w h must be normalised to [0, 1], got {line!r}")
        cls.append(int(c))
        boxes.append([cx, cy, w, h])
    return np.array(cls, np.int64), np.array(boxes, np.float64).reshape(-1, 4)


def _guess_image(labels: Path) -> Path | None:
    from ref_numpy.formats import IMAGE_SUFFIXES

    for suffix in IMAGE_SUFFIXES:
        p = labels.parent.parent / "images" / (labels.stem + suffix)
        if p.is_file():
            return p
    return None


def _read_names(path: Path | None) -> list | None:
    if path is None or not path.is_file():
        return None
    try:
        names = [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    return names or None


def load_from_labels(labels: Path, image: Path | None, img_size: int):
    """(img uint8 [H, W, 3], boxes xyxy px [n, 4], classes [n], image path or None, names)."""
    from torch_impl.data import load_image

    cls, cxcywh = read_labels(labels)
    image = image if image is not None else _guess_image(labels)
    if image is not None:
        try:
            img = load_image(image)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
    else:  # no image: a grey square canvas of the network size
        img = np.full((img_size, img_size, 3), CANVAS_GREY, np.uint8)
    h, w = img.shape[:2]
    cx, cy, bw, bh = np.moveaxis(cxcywh, -1, 0)
    boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h],
                     axis=-1).reshape(-1, 4)
    names = _read_names(labels.parent / "classes.txt") or _read_names(labels.parent.parent / "classes.txt")
    return img, boxes, cls, image, names


def load_from_data(data: Path, index: int, split: str, images_dir: Path | None,
                   names_file: Path | None):
    """Item ``index`` of a data set in any format (see the module docstring), unaugmented."""
    from torch_impl.data import DetectionDataset

    try:
        if data.suffix.lower() in (".yaml", ".yml"):
            ds = DetectionDataset.from_yaml(data, split=split, images_dir=images_dir)
        else:
            base = data if data.is_dir() else data.parent
            names = _read_names(names_file) if names_file is not None else (
                _read_names(base / "classes.txt") or _read_names(base.parent / "classes.txt"))
            ds = DetectionDataset(data, names=names, images_dir=images_dir)
        if not 0 <= index < len(ds):
            raise ArgumentMismatch(f"--index {index}: the data set has {len(ds)} images")
        img, boxes, cls = ds.load(index)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return img, boxes, cls, Path(ds.items[index]["path"]), ds.names


def to_network(img: np.ndarray, boxes: np.ndarray, img_size: int, letterbox: bool):
    """Image and xyxy boxes mapped to the square network input (letterbox or plain resize)."""
    from torch_impl.data import transforms as T

    if letterbox:
        out, ratio, pad = T.letterbox(img, img_size, auto=False, scaleup=True)
        return out, T.letterbox_boxes(boxes, ratio, pad)
    h, w = img.shape[:2]
    out = T._resize(img, img_size, img_size)
    return out, boxes * np.array([img_size / w, img_size / h] * 2)


def targets_from(boxes: np.ndarray, cls: np.ndarray, img_size: int) -> np.ndarray:
    """YOLOv5 target rows ``(0, class, cx, cy, w, h)`` normalised by ``img_size``."""
    x1, y1, x2, y2 = np.moveaxis(np.clip(boxes, 0, img_size) / img_size, -1, 0)
    return np.stack([np.zeros_like(x1), cls.astype(np.float64), (x1 + x2) / 2, (y1 + y2) / 2,
                     x2 - x1, y2 - y1], axis=-1).reshape(-1, 6)


# ----------------------------------------------------------------------------- assignment

def _lib(backend: str):
    if backend == "numpy":
        import ref_numpy.assign as lib
        return lib, np.asarray
    import torch

    import torch_impl.assign as lib
    return lib, torch.from_numpy


def _np(x):
    """Torch outputs (nested in lists / tuples / dicts) back to NumPy."""
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_np(v) for v in x)
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _last_writer_rows(rows: list) -> tuple[list, list]:
    """Mark ``won`` (last write of its slot) and list slots written by two or more GTs."""
    slots: dict = {}
    for r in rows:
        slots.setdefault((r["level"], r["anchor"], *r["cell"]), []).append(r)
    collisions = []
    for (lv, a, gj, gi), group in slots.items():
        for r in group[:-1]:
            r["won"] = False
        group[-1]["won"] = True
        if len({r["gt"] for r in group}) > 1:
            collisions.append({"level": lv, "slot": [0, a, gj, gi],
                               "writers": [r["gt"] for r in group], "winner": group[-1]["gt"]})
    return rows, sorted(collisions, key=lambda c: (c["level"], c["slot"]))


def _anchor_rows(out: dict, anchors_px: np.ndarray) -> list:
    """Rows of tutorial_assign / yolov3_assign outputs, in their order."""
    rows = []
    for lv, (idx, tbox, gti) in enumerate(zip(out["indices"], out["tbox"], out["gt_index"])):
        _, a, gj, gi = (np.asarray(v).tolist() for v in idx)
        for k, g in enumerate(np.asarray(gti).tolist()):
            rows.append({"gt": g, "level": lv, "anchor": a[k], "cell": [gj[k], gi[k]],
                         "box_px": anchors_px[lv, a[k]].tolist(),
                         "target": np.asarray(tbox)[k].tolist()})
    return rows


def _tal_inputs(t: np.ndarray, strides, img_size: int, nc: int, pred: str, seed: int):
    """TAL's arguments for one image: anchor points, the stand-in predictions (see docstring)."""
    points, point_stride = [], []
    for s in strides:
        n = img_size // s
        yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")  # Ultralytics make_anchors
        points.append(np.stack([xx, yy], -1).reshape(-1, 2) * s + s / 2)
        point_stride.append(np.full(n * n, float(s)))
    anc = np.concatenate(points).astype(np.float64)  # [A, 2] pixels
    st = np.concatenate(point_stride)
    gt = np.stack([t[:, 2] - t[:, 4] / 2, t[:, 3] - t[:, 5] / 2,
                   t[:, 2] + t[:, 4] / 2, t[:, 3] + t[:, 5] / 2], -1).reshape(-1, 4) * img_size
    prior = np.concatenate([anc - 2 * st[:, None], anc + 2 * st[:, None]], -1)
    if pred == "zeros":
        boxes = np.zeros_like(prior)
    elif pred == "gt-jitter" and len(gt):
        inside = ((anc[None] > gt[:, None, :2]) & (anc[None] < gt[:, None, 2:])).all(-1)  # [n, A]
        area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
        pick = np.where(inside, area[:, None], np.inf).argmin(0)  # smallest containing GT
        rng = np.random.default_rng(seed)
        wh = np.tile(gt[pick, 2:] - gt[pick, :2], 2)
        jit = gt[pick] + rng.normal(0, 0.1, size=prior.shape) * wh
        jit = np.concatenate([np.minimum(jit[:, :2], jit[:, 2:]), np.maximum(jit[:, :2], jit[:, 2:])], -1)
        boxes = np.where(inside.any(0)[:, None], jit, prior)
    else:
        boxes = prior
    scores = np.full((1, len(anc), nc), 0.5)
    return anc, st, boxes, scores, gt


def run_assigner(args, t: np.ndarray, nc: int) -> dict:
    """Run the chosen assigner; returns ``{"rows", "collisions", "no_positive", "report"}``.

    ``rows``: per positive ``{"gt", "level", "anchor", "cell": [gj, gi], "box_px": [w, h] of the
    anchor (TAL: [x1, y1, x2, y2] of the box fed as prediction), "target": 4 floats, "won"}``;
    ``collisions``: ``{"level", "slot": [b, a, gj, gi], "writers", "winner"}``;
    ``no_positive``: ``{"gt", "reason"}``; ``report``: the library's report (v5, tal) or None.
    """
    lib, conv = _lib(args.backend)
    strides, anchors_px, img_size = args.strides, args.anchors_px, args.img_size
    grids = [(img_size // s, img_size // s) for s in strides]
    anchors = anchors_px / np.asarray(strides, np.float64)[:, None, None]
    report = None
    if args.assigner == "v5":
        report = lib.yolov5_assignment_report(conv(t), conv(anchors), grids, args.anchor_t, args.g)
        rows = [{"gt": gt["gt"], "level": p["level"], "row": p["row"], "anchor": p["anchor"],
                 "cell": p["cell"], "offset": p["offset"],
                 "box_px": anchors_px[p["level"], p["anchor"]].tolist(), "target": p["tbox"],
                 "won": p["won"]}
                for gt in report["gts"] for p in gt["positives"]]
        rows.sort(key=lambda r: (r["level"], r["row"]))  # the library's write order
        collisions = [{k: c[k] for k in ("level", "slot", "writers", "winner")}
                      for c in report["collisions"]]
        no_positive = [{"gt": m["gt"], "reason": "; ".join(
            f"{_level_name(strides, lv)} {r}" for lv, r in enumerate(m["reasons"]) if r)}
            for m in report["no_positive"]]
        return {"rows": rows, "collisions": collisions, "no_positive": no_positive, "report": report}
    if args.assigner in ("tutorial", "v3"):
        if args.assigner == "tutorial":
            out = _np(lib.tutorial_assign(conv(t), conv(anchors), grids))
        else:
            out = _np(lib.yolov3_assign(conv(t), conv(anchors), grids, ignore_mode="none",
                                        batch_size=1))
        rows, collisions = _last_writer_rows(_anchor_rows(out, anchors_px))
        have = {r["gt"] for r in rows}
        no_positive = [{"gt": g, "reason": "no row (assigner output)"} for g in range(len(t))
                       if g not in have]
        return {"rows": rows, "collisions": collisions, "no_positive": no_positive, "report": None}
    # TAL
    anc, st, boxes, scores, gt = _tal_inputs(t, strides, img_size, nc, args.tal_pred, args.seed)
    n = len(t)
    labels = t[:, 1].reshape(1, n, 1)
    report = lib.task_aligned_report(conv(scores), conv(boxes[None]), conv(anc), conv(labels),
                                     conv(gt[None]), conv(np.ones((1, n, 1))), topk=args.topk,
                                     num_classes=nc)
    starts = np.cumsum([0] + [(img_size // s) ** 2 for s in strides])
    rows = []
    for g in report["gts"]:
        for a in g["positives"]:
            lv = int(np.searchsorted(starts, a, side="right") - 1)
            nx = img_size // strides[lv]
            j = a - starts[lv]
            x, y = anc[a]
            x1, y1, x2, y2 = gt[g["gt"]]
            s = st[a]
            rows.append({"gt": g["gt"], "level": lv, "anchor": 0, "cell": [int(j // nx), int(j % nx)],
                         "box_px": boxes[a].tolist(), "point": int(a),
                         "target": [(x - x1) / s, (y - y1) / s, (x2 - x) / s, (y2 - y) / s],
                         "won": True})
    rows.sort(key=lambda r: (r["level"], r["point"], r["gt"]))
    collisions = []
    for c in report["conflicts"]:
        lv = int(np.searchsorted(starts, c["anchor"], side="right") - 1)
        j = c["anchor"] - starts[lv]
        nx = img_size // strides[lv]
        collisions.append({"level": lv, "slot": [0, 0, int(j // nx), int(j % nx)],
                           "writers": c["claimed_by"], "winner": c["winner"]})
    no_positive = [{"gt": m["gt"], "reason": m["reason"]} for m in report["no_positive"]]
    return {"rows": rows, "collisions": collisions, "no_positive": no_positive, "report": report}


def _level_name(strides, lv: int) -> str:
    """``P<k>`` for a power-of-two stride 2^k (P3 for 8, ...) when those names are unique, else
    ``L<lv>`` (so file names never clash)."""
    ks = [math.log2(s) for s in strides]
    if all(k == int(k) for k in ks) and len(set(ks)) == len(ks):
        return f"P{int(ks[lv])}"
    return f"L{lv}"


# ----------------------------------------------------------------------------- text

def format_table(result: dict, args, gt_boxes: np.ndarray, cls: np.ndarray, names) -> str:
    tal = args.assigner == "tal"
    cols = "l t r b (strides)" if tal else ("tx ty log-tw log-th" if args.assigner == "v3"
                                            else "tx ty tw th (grid units)")
    head = f"{'gt':>3} {'class':>10} {'level':>5} {'anchor':>14} {'cell (row,col)':>14} {cols:>34} {'won':>4}"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        lvname = f"{_level_name(args.strides, r['level'])}"
        anchor = "point" if tal else f"{r['anchor']} {int(r['box_px'][0])}x{int(r['box_px'][1])}"
        target = " ".join(f"{v:8.3f}" for v in r["target"])
        lines.append(f"{r['gt']:>3} {_class_name(int(cls[r['gt']]), names):>10} {lvname:>5} "
                     f"{anchor:>14} {str(tuple(r['cell'])):>14} {target:>34} "
                     f"{'yes' if r['won'] else 'no':>4}")
    for m in result["no_positive"]:
        x1, y1, x2, y2 = gt_boxes[m["gt"]]
        lines.append(f"warning: GT {m['gt']} ({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f} px) has no "
                     f"positive: {m['reason']}")
    for c in result["collisions"]:
        _, a, gj, gi = c["slot"]
        lines.append(f"warning: collision {_level_name(args.strides, c['level'])} anchor {a} cell "
                     f"({gj},{gi}): written by GTs {c['writers']}, GT {c['winner']} wins")
    lines.append(f"{len(gt_boxes)} GTs, {len(result['rows'])} positives, "
                 f"{len(result['no_positive'])} without positive, {len(result['collisions'])} collisions")
    return "\n".join(lines)


def _class_name(c: int, names) -> str:
    return names[c] if names is not None and 0 <= c < len(names) else str(c)


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


def draw_level(img: np.ndarray, lv: int, result: dict, args, gt_boxes, cls, names, scale: int):
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


def draw_all(img, result, args, gt_boxes, cls, names, out_dir: Path) -> list:
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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__[__doc__.index("Examples:"):],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels", type=Path, nargs="?", help="YOLO label file (class cx cy w h per line)")
    ap.add_argument("--image", type=Path, help="the image of the label file (default: "
                    "../images/<stem>.* next to it, else a grey canvas)")
    ap.add_argument("--data", type=Path, help="data set: YOLO root or labels dir, COCO .json, "
                    "VOC dir, or data YAML (with --split)")
    ap.add_argument("--index", type=int, default=0, help="image index in --data (default 0)")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"),
                    help="split of a data YAML (default val)")
    ap.add_argument("--images", type=Path, help="images directory of a --data COCO / VOC / YOLO set")
    ap.add_argument("--names", type=Path, help="class names file (default classes.txt near the data)")
    ap.add_argument("--assigner", choices=ASSIGNERS, default="v5")
    ap.add_argument("--strides", default=DEFAULT_STRIDES, help="level strides (default 8,16,32)")
    ap.add_argument("--anchors", default=DEFAULT_ANCHORS,
                    help="anchor w,h pairs in pixels, level by level (default YOLOv5's)")
    ap.add_argument("--img-size", type=int, default=640, help="square network input (px)")
    ap.add_argument("--letterbox", action=argparse.BooleanOptionalAction, default=True,
                    help="letterbox to --img-size (default) or stretch with --no-letterbox")
    ap.add_argument("--anchor-t", type=float, default=4.0, help="v5 anchor ratio threshold")
    ap.add_argument("--g", type=float, default=0.5, help="v5 neighbour-cell bias")
    ap.add_argument("--topk", type=int, default=10, help="TAL top k")
    ap.add_argument("--tal-pred", choices=TAL_PREDS, default="prior",
                    help="predicted boxes fed to TAL (see above)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --tal-pred gt-jitter")
    ap.add_argument("--backend", choices=("numpy", "torch"), default="torch",
                    help="ref_numpy or torch_impl (default torch)")
    ap.add_argument("--out", type=Path, help="directory for the PNGs (default: none written)")
    ap.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    ap.add_argument("--quiet", action="store_true", help="no table")
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
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.data is not None:
            img, boxes, cls, image_path, names = load_from_data(args.data, args.index, args.split,
                                                                args.images, args.names)
        else:
            img, boxes, cls, image_path, names = load_from_labels(args.labels, args.image, args.img_size)
        net_img, net_boxes = to_network(img, boxes, args.img_size, args.letterbox)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ArgumentMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = targets_from(net_boxes, cls, args.img_size)
    gt_boxes = np.clip(net_boxes, 0, args.img_size)
    nc = max(len(names) if names else 0, int(cls.max()) + 1 if len(cls) else 1)
    if args.assigner == "tal" and args.topk > sum((args.img_size // s) ** 2 for s in args.strides):
        print("error: --topk exceeds the number of anchor points", file=sys.stderr)
        return 2
    result = run_assigner(args, t, nc)
    if not args.quiet:
        print(format_table(result, args, gt_boxes, cls, names))
    if args.json:
        doc = {"assigner": args.assigner, "image": None if image_path is None else str(image_path),
               "settings": {"img_size": args.img_size, "letterbox": args.letterbox,
                            "strides": args.strides, "anchors_px": args.anchors_px.tolist(),
                            "anchor_t": args.anchor_t, "g": args.g, "topk": args.topk,
                            "tal_pred": args.tal_pred, "backend": args.backend},
               "gts": [{"gt": g, "class": int(cls[g]), "name": _class_name(int(cls[g]), names),
                        "box_xyxy_px": gt_boxes[g].tolist(), "target_row": t[g].tolist()}
                       for g in range(len(t))],
               **result}
        text = json.dumps(doc, indent=1)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                print(f"error: {args.json}: {exc}", file=sys.stderr)
                return 1
    if args.out is not None:
        try:
            written = draw_all(net_img, result, args, gt_boxes, cls, names, args.out)
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if not args.quiet:
            for p in written:
                print(f"wrote {p}")
    return 3 if result["no_positive"] else 0


if __name__ == "__main__":
    sys.exit(main())
