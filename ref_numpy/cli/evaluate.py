"""Evaluate detections against ground truth: COCO mAP, PASCAL VOC07 / VOC12 AP, Ultralytics mAP.

Ground truth and predictions may each be COCO JSON, a directory of YOLO txt files or (ground
truth only) a directory of Pascal VOC XML files; the format is auto-detected
(``ref_numpy.formats.load_any``) unless --gt-format / --pred-format name it. YOLO predictions
are txt files with a sixth (confidence) column. Predictions refer to the ground truth's images
(by file stem for YOLO, by image_id for COCO results) and categories.

Protocols (--protocol), each computed by `metrics` of the chosen backend (--backend ref =
ref_numpy.metrics, the default, no torch needed; torch = torch_impl.metrics on --device):

  coco         pycocotools' evaluate / accumulate / summarize, bit for bit (the 12-line summary
               in pycocotools' layout), plus a per-class table.
  voc07/voc12  voc_eval.py of py-faster-rcnn, 11-point (VOC2007) or all-point (VOC2010+) AP at
               IoU > 0.5, boxes in VOC's 1-based inclusive corners; crowd GTs as difficult.
  ultralytics  metrics.ultralytics_evaluate: NMS filters (conf > --conf-thres, --max-det per
               image), match_predictions per image, ap_per_class (--ultralytics-version end
               points); crowd GTs as ordinary GTs, difficult GTs dropped.
  all          every protocol side by side, and the reasons why they differ on this data
               (ref_numpy.shared.protocols.explain_protocol_differences; only those that apply).

--synthetic-pred makes predictions from the ground truth (ref_numpy.shared.synthetic: jittered
boxes, dropped boxes, duplicates, wrong classes and false positives, fixed --seed) for a demo
without a detector; --save-pred writes the predictions used as a COCO results JSON.

examples:
  # COCO mAP of a COCO results file (pycocotools' summary)
  yolo-ref evaluate --gt annotations.json --pred results.json
  # YOLO labels (sizes from the images) against YOLO predictions with a confidence column
  yolo-ref evaluate --gt data/labels/val --images data/images/val --pred runs/labels
  # every protocol side by side on the fixture, with synthetic predictions, plots and JSON
  yolo-ref evaluate --gt fixtures/shapes --synthetic-pred --protocol all --out /tmp/eval
  # the torch port, on a GPU
  yolo-ref evaluate --gt annotations.json --pred results.json --backend torch --device cuda
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from ref_numpy import formats
from ref_numpy.metrics import UltralyticsResult
from ref_numpy.shared import sides
from ref_numpy.shared.cli import (EXIT_OK, UsageError, add_backend, add_device,
                                  make_parser, optional_import, run)
from ref_numpy.shared.coco import format_summary
from ref_numpy.shared.protocols import (PROTOCOLS, EvalData, MetricsBackend,
                                        evaluate_protocols, explain_protocol_differences,
                                        ultralytics_protocol)
from ref_numpy.shared.synthetic import synthetic_predictions

JSON_NAME = "evaluation.json"


# ============================================================================ loading

def _read_names(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the class names: {exc}") from exc
    names = [ln.strip() for ln in lines]
    while names and not names[-1]:
        names.pop()
    if not names or not all(names):
        raise UsageError(f"{path}: expected one non-empty class name per line")
    return names


def _find_names(args) -> list | None:
    """Class names: --names, else classes.txt in the GT directory or next to the GT."""
    if args.names is not None:
        return _read_names(args.names)
    gt = args.gt
    for cand in ((gt / formats.CLASSES_FILE) if gt.is_dir() else None,
                 gt.parent / formats.CLASSES_FILE):
        if cand is not None and cand.is_file():
            return _read_names(cand)
    return None


def load_gt(args: argparse.Namespace) -> formats.DetectionSet:
    """The ground truth of --gt in --gt-format (auto-detected by default).

    Raises:
        UsageError: naming --gt and the file (unreadable, malformed, scores present).
    """
    names = _find_names(args)
    try:
        if args.gt_format == "auto":
            gt = formats.load_any(args.gt, images_dir=args.images, names=names)
        elif args.gt_format == "coco":
            gt = formats.read_coco(args.gt)
        elif args.gt_format == "yolo":
            gt = formats.read_yolo(args.gt, images_dir=args.images, names=names)
        else:
            gt = formats.read_voc(args.gt, names=names)
    except ValueError as exc:
        raise UsageError(f"--gt {args.gt}: {exc}") from exc
    if any("score" in a for a in gt.annotations):
        raise UsageError(f"--gt {args.gt}: has confidence scores: is it a prediction file?")
    return gt


def load_pred(args: argparse.Namespace, gt: formats.DetectionSet) -> formats.DetectionSet:
    """The predictions of --pred against ``gt``; every one needs a score.

    Raises:
        UsageError: naming --pred and the file (malformed, no score, unknown image or class).
    """
    path = args.pred
    try:
        if args.pred_format == "auto":
            pred = formats.load_any(path, gt=gt, images_dir=args.images)
        elif args.pred_format == "coco":
            pred = formats.read_coco_results(path, gt)
        else:
            pred = formats.read_yolo(path, images=gt.images, names=gt.categories)
    except ValueError as exc:
        raise UsageError(f"--pred {path}: {exc}") from exc
    gt_images = {im["id"] for im in gt.images}
    gt_cats = {c["id"] for c in gt.categories}
    for i, a in enumerate(pred.annotations):
        if "score" not in a:
            raise UsageError(f"--pred {path}: annotation {i} has no confidence score (YOLO "
                             f"predictions need a 6th column, COCO results a 'score')")
        if a["image_id"] not in gt_images:
            raise UsageError(f"--pred {path}: annotation {i}: image id {a['image_id']} is not "
                             f"in the ground truth {args.gt}")
        if a["category_id"] not in gt_cats:
            raise UsageError(f"--pred {path}: annotation {i}: category id {a['category_id']} "
                             f"is not in the ground truth {args.gt}")
    return formats.DetectionSet(images=gt.images, categories=gt.categories,
                                annotations=pred.annotations)


# ============================================================================ output

def _fmt(v, width=7, digits=3) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def _class_table(data: EvalData, header: list, rows_of) -> list:
    n_gt, n_det = data.counts()
    width = max([len("class")] + [len(n) for n in data.names])
    lines = [f"{'class':<{width}} {'GTs':>6} {'dets':>6} " + " ".join(f"{h:>9}" for h in header)]
    for k, name in enumerate(data.names):
        lines.append(f"{name:<{width}} {n_gt[k]:>6d} {n_det[k]:>6d} "
                     + " ".join(_fmt(v, 9) for v in rows_of(k)))
    return lines


def print_report(data: EvalData, results: dict, why: list, notes: list, args: argparse.Namespace,
                 out: TextIO) -> None:
    """The text report: each protocol's numbers and per-class table, then (several protocols)
    the side-by-side table and the reasons, then the notes."""
    def say(line=""):
        print(line, file=out)

    say(f"ground truth: {args.gt} ({data.n_images} images, {len(data.gt_cls)} boxes, "
        f"{data.n_classes} classes); predictions: "
        f"{'synthetic (seed %d)' % args.seed if args.synthetic_pred else args.pred} "
        f"({len(data.pred_cls)} boxes); backend: {args.backend}"
        + (f" ({args.device})" if args.backend == "torch" else ""))
    if "coco" in results:
        c = results["coco"]
        say()
        say("COCO (pycocotools):")
        for line in format_summary(c["stats_list"], c["iou_thrs"], c["max_dets"]):
            say(line)
        say()
        for line in _class_table(data, ["AP", "AP50", "AP75"], lambda k: (
                c["per_class"][k]["ap"], c["per_class"][k]["ap50"], c["per_class"][k]["ap75"])):
            say(line)
    for proto, title in (("voc07", "PASCAL VOC2007 (11-point, IoU > 0.5)"),
                         ("voc12", "PASCAL VOC2012 (all-point, IoU > 0.5)")):
        if proto in results:
            v = results[proto]
            say()
            say(f"{title}: mAP = {_fmt(v['map50'], 0)}")
            for line in _class_table(data, ["AP"], lambda k, v=v: (v["per_class"][k]["ap"],)):
                say(line)
    if "ultralytics" in results:
        u = results["ultralytics"]
        say()
        say(f"Ultralytics {u['version']} (conf > {u['conf']}, max_det {u['max_det']}, "
            f"{u['n_predictions']} predictions): P {_fmt(u['precision'], 0)}  "
            f"R {_fmt(u['recall'], 0)}  mAP50 {_fmt(u['map50'], 0)}  "
            f"mAP50-95 {_fmt(u['map50_95'], 0)}")
        for line in _class_table(data, ["P", "R", "mAP50", "mAP50-95"], lambda k: (
                u["per_class"][k]["p"], u["per_class"][k]["r"], u["per_class"][k]["ap50"],
                u["per_class"][k]["ap50_95"])):
            say(line)
    if len(results) > 1:
        say()
        say("side by side:")
        say(f"{'protocol':<12} {'mAP@0.5':>9} {'mAP@0.5:0.95':>13} {'classes':>8}")
        for proto in PROTOCOLS:
            if proto in results:
                r = results[proto]
                say(f"{proto:<12} {_fmt(r['map50'], 9)} {_fmt(r['map50_95'], 13)} "
                    f"{r['n_classes']:>8d}")
        say()
        say("why they differ on this data:")
        for d in why:
            say(f"  - {d.message}")
    for note in notes:
        say(f"note: {note}")


def _json_safe(x):
    """``x`` with NaN / infinite floats as None (JSON has no NaN) and NumPy scalars as Python."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _public(results: dict) -> dict:
    return {p: {k: v for k, v in r.items() if not k.startswith("_") and k != "stats_list"}
            for p, r in results.items()}


def write_plots(data: EvalData, matches: UltralyticsResult, cm: np.ndarray, out_dir: Path) -> list[Path]:
    """PR and F1-confidence curves at IoU 0.5 (per class, Ultralytics' matching ``matches``,
    an ``UltralyticsResult``) and the confusion matrix, as PNGs in ``out_dir``. Returns the
    files written; without matplotlib, one line on stderr and no files."""
    matplotlib = optional_import("matplotlib", "--plots", extra="plots")
    if matplotlib is None:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    tp50, conf = np.asarray(matches.tp)[:, 0], np.asarray(matches.conf)
    pcls, tcls = np.asarray(matches.pred_cls), np.asarray(matches.target_cls)
    curves = []
    for k, name in enumerate(data.names):
        sel = np.flatnonzero(pcls == k)
        sel = sel[np.argsort(-conf[sel], kind="stable")]
        n_gt = int(np.sum(tcls == k))
        tpc = np.cumsum(tp50[sel]).astype(np.float64)
        fpc = np.cumsum(~tp50[sel]).astype(np.float64)
        rec = tpc / n_gt if n_gt else np.zeros_like(tpc)
        prec = tpc / np.maximum(tpc + fpc, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        curves.append((name, conf[sel], rec, prec, f1))
    written = []
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, _, rec, prec, _ in curves:
        ax.step(np.r_[0.0, rec], np.r_[1.0, prec], where="post", label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="precision-recall at IoU 0.5")
    ax.legend(loc="lower left")
    written.append(out_dir / "PR_curve.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, c, _, _, f1 in curves:
        ax.plot(c, f1, label=name)
    ax.set(xlabel="confidence", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02),
           title="F1 vs confidence at IoU 0.5")
    ax.legend(loc="lower left")
    written.append(out_dir / "F1_curve.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 5))
    labels = data.names + ["background"]
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8)
    ax.set(xlabel="true", ylabel="predicted", title="confusion matrix (conf > 0.25, IoU > 0.45)")
    fig.colorbar(im)
    fig.tight_layout()
    written.append(out_dir / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


# ============================================================================ CLI

def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref evaluate`` parser (defaults shown in --help)."""
    parser = make_parser("evaluate", __doc__)
    parser.add_argument("--gt", type=Path, required=True,
                        help="ground truth: COCO JSON, YOLO labels dir (or data-set root with "
                             "labels/ and images/), or VOC XML dir")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path,
                     help="predictions: COCO results JSON or YOLO txt dir with a conf column")
    src.add_argument("--synthetic-pred", action="store_true",
                     help="make predictions from the GT (jitter, drops, false positives)")
    parser.add_argument("--gt-format", choices=("auto", "coco", "yolo", "voc"), default="auto",
                        help="format of --gt")
    parser.add_argument("--pred-format", choices=("auto", "coco", "yolo"), default="auto",
                        help="format of --pred")
    parser.add_argument("--images", type=Path, help="images dir (YOLO needs the sizes)")
    parser.add_argument("--names", type=Path,
                        help="class names file, one per line (None: classes.txt in or next "
                             "to --gt)")
    parser.add_argument("--protocol", choices=PROTOCOLS + ("all",), default="coco",
                        help="evaluation protocol; all = side by side with reasons")
    add_backend(parser, default="ref")
    add_device(parser)
    parser.add_argument("--conf-thres", type=float, default=0.001,
                        help="Ultralytics: keep predictions with conf > this")
    parser.add_argument("--conf", dest="conf_thres", type=float, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # the old spelling
    parser.add_argument("--max-det", type=int, default=300,
                        help="Ultralytics: predictions kept per image")
    parser.add_argument("--ultralytics-version", choices=("8.3", "8.4"), default="8.3",
                        help="compute_ap end points: 8.3 (= yolov5 v7.0) or 8.4")
    parser.add_argument("--seed", type=int, default=0, help="--synthetic-pred seed")
    parser.add_argument("--save-pred", type=Path,
                        help="write the predictions used as a COCO results JSON")
    parser.add_argument("--out", type=Path,
                        help=f"output directory: {JSON_NAME} and the plots (as --json and "
                             f"--plots pointing into it)")
    parser.add_argument("--plots", type=Path,
                        help="write PR, F1 and confusion-matrix PNGs here (needs matplotlib)")
    parser.add_argument("--json", type=Path, help="write every number as JSON to this file")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments (argparse exits 2 on a usage error, naming the option)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_det < 1:
        parser.error(f"--max-det must be >= 1, got {args.max_det}")
    if not math.isfinite(args.conf_thres) or not 0.0 <= args.conf_thres < 1.0:
        parser.error(f"--conf-thres must be in [0, 1), got {args.conf_thres}")
    if args.names is not None and not args.names.is_file():
        parser.error(f"--names {args.names}: no such file")
    if args.images is not None and not args.images.is_dir():
        parser.error(f"--images {args.images}: no such directory")
    if args.backend == "ref" and args.device != "cpu":
        parser.error("--device applies to --backend torch only")
    if args.out is not None:
        args.json = args.json or args.out / JSON_NAME
        args.plots = args.plots or args.out
    return args


def evaluate(args: argparse.Namespace, out: TextIO | None = None) -> dict:
    """Load, evaluate, print (to ``out``, default stdout) and write what ``args`` asks for;
    returns the JSON document."""
    out = sys.stdout if out is None else out
    side = sides.get_side(args.backend, args.device).check()  # before any loading
    gt = load_gt(args)
    pred = synthetic_predictions(gt, seed=args.seed) if args.synthetic_pred \
        else load_pred(args, gt)
    if args.save_pred is not None:
        formats.write_coco_results(pred, args.save_pred)
    data = EvalData(gt, pred)
    backend = MetricsBackend(side)
    wanted = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    settings = dict(conf_thres=args.conf_thres, max_det=args.max_det,
                    version=args.ultralytics_version)
    results = evaluate_protocols(data, backend, wanted, **settings)
    why = explain_protocol_differences(data, results, backend, **settings) \
        if len(wanted) > 1 else []
    plots, cm = [], None
    if args.plots is not None or args.json is not None:
        ul = results.get("ultralytics") or ultralytics_protocol(data, backend, **settings)
        cm = np.asarray(ul["_result"].confusion_matrix, dtype=np.float64)
        if args.plots is not None:
            plots = write_plots(data, ul["_result"], cm, args.plots)
    print_report(data, results, why, backend.notes, args, out)
    n_gt, n_det = data.counts()
    doc = {
        "gt": str(args.gt), "pred": "synthetic" if args.synthetic_pred else str(args.pred),
        "seed": args.seed if args.synthetic_pred else None,
        "backend": args.backend, "device": args.device if args.backend == "torch" else None,
        "n_images": data.n_images, "n_gt": int(len(data.gt_cls)),
        "n_pred": int(len(data.pred_cls)),
        "classes": [{"id": int(c), "name": n, "n_gt": int(g), "n_pred": int(d)}
                    for c, n, g, d in zip(data.cat_ids, data.names, n_gt, n_det)],
        "protocols": _public(results), "reasons": [d.message for d in why],
        "differences": [d.to_dict() for d in why], "notes": backend.notes,
        "confusion_matrix": None if cm is None else {
            "labels": data.names + ["background"], "axes": ["predicted", "true"],
            "matrix": cm.tolist()},
        "plots": [str(p) for p in plots],
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(doc), indent=1, allow_nan=False) + "\n",
                             encoding="utf-8")
    return doc


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    try:
        evaluate(args)
    except OSError as exc:  # an unreadable or unwritable file: exit 2 naming it
        raise UsageError(f"{exc.filename or ''}: {exc.strerror or exc}") from exc
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref evaluate``: exit 0 evaluated, 2 bad arguments or unreadable / malformed input
    (the message names the file)."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
