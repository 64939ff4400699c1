#!/usr/bin/env python
"""Show where YOLOv5's build_targets puts each ground truth: a table, optional JSON and PNGs.

Reads one YOLO label file (``class cx cy w h`` per line, normalised), runs
``yolov5_assignment_report`` (torch port by default, the NumPy reference with --backend numpy)
with the YOLOv5 default anchors at --img-size, and prints one line per GT: its box, the
positives per level (as anchor:count), or why it got none. Collisions (a slot written by two
GTs; the last write wins, as in YOLOv5's ``tobj[b, a, gj, gi] = iou``) are listed after.
With --png DIR it writes one PNG per level: the grid, the GT boxes, the positive cells of each
anchor (one colour per anchor, one corner of the cell each), collisions crossed out in red;
the image is drawn underneath when --image is given or found next to the labels.

Examples:
    python scripts/show_assignments.py fixtures/shapes/labels/shapes_0000.txt
    python scripts/show_assignments.py fixtures/shapes/labels/shapes_0000.txt --img-size 320 --png out/
    python scripts/show_assignments.py labels.txt --anchor-t 3.0 --json report.json
    python scripts/show_assignments.py labels.txt --json - --quiet

Exit status: 0 every GT has a positive; 1 unreadable or malformed label file or image;
2 bad arguments; 3 some GT has no positive on any level.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

STRIDES = (8, 16, 32)
ANCHORS_PX = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                       [[116, 90], [156, 198], [373, 326]]], dtype=np.float64)
ANCHOR_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
CORNERS = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5), (0.25, 0.25))


def read_labels(path: Path) -> np.ndarray:
    """YOLO label file -> targets [n, 6] ``(0, class, cx, cy, w, h)``; ValueError names the line."""
    rows = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 5:
            raise ValueError(f"{path}:{k}: expected 'class cx cy w h', got {line!r}")
        try:
            rows.append([0.0] + [float(v) for v in parts])
        except ValueError as exc:
            raise ValueError(f"{path}:{k}: {exc}") from exc
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def build_report(targets, img_size, anchor_t, g, backend):
    grids = [(img_size // s, img_size // s) for s in STRIDES]
    anchors = ANCHORS_PX / np.array(STRIDES, dtype=np.float64)[:, None, None]
    if backend == "numpy":
        from ref_numpy.assign import yolov5_assignment_report
        return yolov5_assignment_report(targets, anchors, grids, anchor_t, g), grids
    import torch

    from torch_impl.assign import yolov5_assignment_report
    return yolov5_assignment_report(torch.from_numpy(targets), torch.from_numpy(anchors), grids,
                                    anchor_t, g), grids


def format_table(report, targets, img_size) -> str:
    nl = len(report["levels"])
    head = f"{'gt':>3} {'cls':>3} {'cx,cy,w,h (px)':>27} " + " ".join(
        f"{'P' + str(lv + 3) + ' a:n':>14}" for lv in range(nl))
    lines = [head, "-" * len(head)]
    for gt in report["gts"]:
        box = targets[gt["gt"], 2:6] * img_size
        cells = []
        for lv in range(nl):
            per_anchor: dict[int, int] = {}
            for p in gt["positives"]:
                if p["level"] == lv:
                    per_anchor[p["anchor"]] = per_anchor.get(p["anchor"], 0) + 1
            text = " ".join(f"{a}:{n}" for a, n in sorted(per_anchor.items())) or "-"
            cells.append(f"{text:>14}")
        lines.append(f"{gt['gt']:>3} {gt['class']:>3} {', '.join(f'{v:.1f}' for v in box):>27} "
                     + " ".join(cells))
    for miss in report["no_positive"]:
        lines.append(f"GT {miss['gt']}: no positive on any level: "
                     + "; ".join(f"P{lv + 3} {r}" for lv, r in enumerate(miss["reasons"])))
    for c in report["collisions"]:
        b, a, gj, gi = c["slot"]
        lines.append(f"collision P{c['level'] + 3} anchor {a} cell (row {gj}, col {gi}): "
                     f"written by GTs {c['writers']}, GT {c['winner']} wins (last write)")
    rows = sum(lv["rows"] for lv in report["levels"])
    lines.append(f"{len(report['gts'])} GTs, {rows} rows, {len(report['no_positive'])} without "
                 f"positive, {len(report['collisions'])} collisions")
    return "\n".join(lines)


def draw_levels(report, targets, grids, img_size, out_dir: Path, image_path: Path | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    image = None
    if image_path is not None:
        from PIL import Image

        image = np.asarray(Image.open(image_path).convert("RGB").resize((img_size, img_size)))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for lv, (ny, nx) in enumerate(grids):
        stride = img_size / nx
        fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
        if image is not None:
            ax.imshow(image, extent=(0, img_size, img_size, 0), alpha=0.6)
        for k in range(nx + 1):
            ax.axvline(k * stride, color="0.8", lw=0.3)
        for k in range(ny + 1):
            ax.axhline(k * stride, color="0.8", lw=0.3)
        for gt in report["gts"]:
            for p in gt["positives"]:
                if p["level"] != lv:
                    continue
                gj, gi = p["cell"]
                ox, oy = CORNERS[p["anchor"] % len(CORNERS)]
                ax.add_patch(Rectangle(((gi + ox) * stride, (gj + oy) * stride), stride / 2,
                                       stride / 2, color=ANCHOR_COLOURS[p["anchor"] % 5],
                                       alpha=0.85 if p["won"] else 0.35, lw=0))
            cx, cy, w, h = targets[gt["gt"], 2:6] * img_size
            ax.add_patch(Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, color="black", lw=1.2))
            ax.plot(cx, cy, "k+", ms=6)
            ax.text(cx - w / 2, cy - h / 2, f"GT{gt['gt']}", fontsize=7, va="bottom")
        for c in report["collisions"]:
            if c["level"] != lv:
                continue
            _, a, gj, gi = c["slot"]
            ax.plot([gi * stride, (gi + 1) * stride], [gj * stride, (gj + 1) * stride], "r-", lw=1.5)
            ax.plot([gi * stride, (gi + 1) * stride], [(gj + 1) * stride, gj * stride], "r-", lw=1.5)
        na = ANCHORS_PX.shape[1]
        ax.legend(handles=[Patch(color=ANCHOR_COLOURS[a], label=f"anchor {a} {ANCHORS_PX[lv, a].astype(int).tolist()}")
                           for a in range(na)] + [Patch(color="red", label="collision")],
                  loc="upper right", fontsize=7)
        ax.set_xlim(0, img_size)
        ax.set_ylim(img_size, 0)
        ax.set_aspect("equal")
        ax.set_title(f"P{lv + 3}: stride {stride:g}, grid {ny}x{nx}, {report['levels'][lv]['rows']} rows "
                     "(faded: overwritten by a later row)", fontsize=9)
        path = out_dir / f"assign_P{lv + 3}.png"
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__[__doc__.index("Examples:"):],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels", type=Path, help="YOLO label file (class cx cy w h per line)")
    ap.add_argument("--img-size", type=int, default=640, help="square network input size (px)")
    ap.add_argument("--anchor-t", type=float, default=4.0, help="YOLOv5 anchor ratio threshold")
    ap.add_argument("--g", type=float, default=0.5, help="neighbour-cell bias")
    ap.add_argument("--backend", choices=("torch", "numpy"), default="torch")
    ap.add_argument("--json", help="write the report as JSON to this file ('-' for stdout)")
    ap.add_argument("--png", type=Path, help="directory for one PNG per level")
    ap.add_argument("--image", type=Path, help="image drawn under the PNGs (default: the "
                    "matching file in ../images next to the labels, if any)")
    ap.add_argument("--quiet", action="store_true", help="no table")
    args = ap.parse_args(argv)
    if args.img_size < 32 or args.img_size % 32:
        ap.error("--img-size must be a positive multiple of 32")
    try:
        targets = read_labels(args.labels)
        report, grids = build_report(targets, args.img_size, args.anchor_t, args.g, args.backend)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(format_table(report, targets, args.img_size))
    if args.json:
        text = json.dumps(report, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    if args.png:
        image = args.image
        if image is None:
            guess = args.labels.parent.parent / "images" / (args.labels.stem + ".jpg")
            image = guess if guess.exists() else None
        try:
            for path in draw_levels(report, targets, grids, args.img_size, args.png, image):
                if not args.quiet:
                    print(f"wrote {path}")
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 3 if report["no_positive"] else 0


if __name__ == "__main__":
    sys.exit(main())
