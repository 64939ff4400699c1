"""Evaluate detections against ground truth: COCO mAP, PASCAL VOC07 / VOC12 AP, YOLOv5 v7.0 /
Ultralytics 8.3 / 8.4 mAP (default 8.3, ultralytics 8.3.253).

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
               image), match_predictions per image, ap_per_class (--ultralytics-version: the
               release, yolov5 v7.0 / ultralytics 8.3.253 / 8.4.190); crowd GTs as ordinary GTs,
               difficult GTs dropped.
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
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from ref_numpy import formats
from ref_numpy.metrics import UltralyticsResult
from ref_numpy.shared import sides
from ref_numpy.shared.constants import ULTRALYTICS_DEFAULT_VERSION, ULTRALYTICS_VERSIONS
from ref_numpy.shared.cli import (EXIT_OK, UsageError, add_backend, add_device,
                                  make_parser, optional_import, require, run)
from ref_numpy.shared.coco import format_summary
from ref_numpy.shared.datayaml import SPLITS, read_split
from ref_numpy.shared.protocols import (PROTOCOLS, EvalData, MetricsBackend,
                                        evaluate_protocols, explain_protocol_differences,
                                        match_images, restrict_to_images, ultralytics_protocol)
from ref_numpy.shared.synthetic import synthetic_predictions

JSON_NAME = "evaluation.json"
IMAGES_TABLE = "images.json"  # beside a results list: the images it covers (yolo-ref predict)


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
    """The ground truth of --gt in --gt-format (auto-detected by default), or of the split
    --split of the data-set YAML --data (YOLO labels of the split's images, ids 1..n in the
    split's order, the YAML's class names).

    Raises:
        UsageError: naming --gt / --data and the file (unreadable, malformed, scores present).
    """
    if args.data is not None:
        try:
            return read_split(args.data, args.split)
        except ValueError as exc:
            raise UsageError(f"--data {args.data} --split {args.split}: {exc}") from exc
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


def _image_files(args, gt: formats.DetectionSet) -> list:
    """The image file of each ground-truth image: its ``file_name`` as a path when that exists,
    else under --images (or ``images/`` beside --gt)."""
    roots = [args.images] if args.images is not None else []
    if args.gt is not None:
        base = args.gt if args.gt.is_dir() else args.gt.parent
        roots += [base / "images", base.parent / "images", base]
    files = []
    for im in gt.images:
        p = Path(im["file_name"])
        found = p if p.is_file() else next(
            (r / p for r in roots if (r / p).is_file()), None)
        if found is None:
            raise UsageError(f"--weights: cannot find the image {im['file_name']} of the "
                             f"ground truth (looked in {', '.join(map(str, roots)) or '.'}); "
                             f"pass --images")
        files.append(found)
    return files


def _progress_bar():
    """``tqdm.tqdm`` as a ``progress(iterable, total)`` wrapper, or None (one line) without it."""
    tqdm = optional_import("tqdm", "progress bar", extra="progress")
    if tqdm is None:
        return None
    return lambda it, total: tqdm.tqdm(it, total=total, desc="predict", unit="img")


def model_predictions(args: argparse.Namespace, gt: formats.DetectionSet) -> formats.DetectionSet:
    """Predictions of the checkpoint --weights on the ground truth's images (torch needed,
    imported here): ``torch_impl.train.predict`` with --img-size, --conf-thres, --iou-thres,
    --max-det (by default the settings of training's validation), each image's detections on
    that image's ground-truth id."""
    require("torch", "--weights", extra="torch")
    from torch_impl.train.inference import predict  # torch only on this path

    files = _image_files(args, gt)
    try:
        res = predict(args.weights, files, img_size=args.img_size, conf_thres=args.conf_thres,
                      iou_thres=args.iou_thres, max_det=args.max_det,
                      device=args.device if args.backend == "torch" else "cpu", draw=False,
                      progress=_progress_bar())
    except ValueError as exc:
        raise UsageError(f"--weights {args.weights}: {exc}") from exc
    gt_id = {k + 1: im["id"] for k, im in enumerate(gt.images)}  # predict numbers 1..n
    known = {c["id"] for c in gt.categories}
    anns = []
    for r in res.results:
        if r["category_id"] not in known:
            raise UsageError(f"--weights {args.weights}: predicts class {r['category_id']}, "
                             f"which the ground truth has no category for (model classes: "
                             f"{len(res.categories)}, ground truth: {len(known)})")
        x, y, w, h = r["bbox"]
        anns.append({"id": len(anns) + 1, "image_id": gt_id[r["image_id"]],
                     "category_id": r["category_id"], "bbox": [x, y, w, h], "area": w * h,
                     "iscrowd": 0, "score": r["score"]})
    return formats.DetectionSet(images=gt.images, categories=gt.categories, annotations=anns)


def _pred_kind(path: Path, pred_format: str) -> str:
    if pred_format != "auto":
        return pred_format
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if path.is_dir() and (path / "labels").is_dir():
        return "yolo-root"
    if path.is_dir() and any(p.suffix == ".txt" and p.name != formats.CLASSES_FILE
                             for p in path.iterdir()):
        return "yolo"
    return "other"


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{what} {path}: cannot read JSON: {exc}") from exc
    except RecursionError:  # '[[[[...' deeper than the interpreter's stack
        raise UsageError(f"{what} {path}: cannot read JSON: nested too deeply") from None


def _coco_pred_images(path: Path, records: list) -> tuple:
    """(prediction images, complete) of a COCO results list: the images table of
    ``images.json`` beside it (``yolo-ref predict`` writes one) when present, else the
    (image_id, file_name) pairs of the records."""
    table = path.parent / IMAGES_TABLE
    if table.is_file() and table != path:
        doc = _read_json(table, "--pred images table")
        images = doc.get("images") if isinstance(doc, dict) else None
        if not isinstance(images, list) or not all(
                isinstance(im, dict) and "id" in im for im in images):
            raise UsageError(f"--pred images table {table}: expected {{\"images\": [{{\"id\", "
                             f"\"file_name\", ...}}]}}")
        return [{"id": im["id"], "file_name": im.get("file_name")} for im in images], True
    seen: dict = {}
    for r in records:
        if isinstance(r, dict) and "image_id" in r:
            seen.setdefault(r["image_id"], r.get("file_name"))
    return [{"id": i, "file_name": f} for i, f in seen.items()], False


def _check_match(args, match, gt_label: str) -> None:
    """Exit 2 (UsageError) on a mismatch unless --intersection; with it, a note."""
    if match.ok:
        return
    msg = match.message(pred=f"--pred {args.pred}", gt=gt_label)
    if not match.pred_to_gt:
        raise UsageError(msg)
    if not args.intersection:
        raise UsageError(msg + "; pass --intersection to evaluate the shared images only")
    args.notes.append(f"--intersection: evaluated the {match.n_shared} shared images; left out "
                      f"{len(match.only_pred) + len(match.ambiguous)} predicted and "
                      f"{len(match.only_gt)} ground-truth images ({msg})")


def load_pred(args: argparse.Namespace, gt: formats.DetectionSet) -> tuple:
    """The predictions of --pred, their images resolved against ``gt``'s
    (:func:`ref_numpy.shared.protocols.match_images`: by file name, base name or stem where
    the predictions name files, else by image id); every one needs a score.

    Returns:
        (ground truth, predictions): both on the shared images; the ground truth is ``gt``
        unless --intersection dropped images from it.

    Raises:
        UsageError: naming --pred and the file (malformed, no score, unknown class), or the
            counts and example names when the two sides are not the same images (and no
            --intersection).
    """
    path = args.pred
    kind = _pred_kind(path, args.pred_format)
    gt_label = f"--data {args.data} --split {args.split}" if args.data is not None \
        else f"the ground truth {args.gt}"
    try:
        if kind == "coco":
            records = _read_json(path, "--pred")
            if isinstance(records, dict):  # detections as a COCO data set: its images table
                pred = formats.read_coco(path)
                match = match_images(gt.images, pred.images, complete=True)
                _check_match(args, match, gt_label)
                records = None
            else:
                pred_images, complete = _coco_pred_images(path, records)
                match = match_images(gt.images, pred_images, complete=complete)
                _check_match(args, match, gt_label)
        if kind == "coco" and records is not None:
            size = {im["id"]: im for im in gt.images}
            shell = formats.DetectionSet(
                images=[{"id": im["id"], "file_name": str(im["file_name"] or im["id"]),
                         "width": size[match.pred_to_gt[im["id"]]]["width"]
                         if im["id"] in match.pred_to_gt else 1,
                         "height": size[match.pred_to_gt[im["id"]]]["height"]
                         if im["id"] in match.pred_to_gt else 1} for im in pred_images],
                categories=gt.categories)
            pred = formats.read_coco_results(path, shell)
        elif kind == "coco":
            pass
        elif kind in ("yolo", "yolo-root"):
            labels = path / "labels" if kind == "yolo-root" else path
            if not labels.is_dir():
                raise ValueError(f"labels_dir: {labels} is not a directory")
            stems = sorted(p.stem for p in labels.glob("*.txt") if p.name != formats.CLASSES_FILE)
            pred_images = [{"id": k + 1, "file_name": s} for k, s in enumerate(stems)]
            gt_stems = [{"id": im["id"], "file_name": Path(im["file_name"]).stem}
                        for im in gt.images]
            match = match_images(gt_stems, pred_images, complete=True)
            match = dataclasses.replace(match, by="stem")
            _check_match(args, match, gt_label)
            by_id = {im["id"]: im for im in gt.images}
            images = [{**by_id[match.pred_to_gt[im["id"]]], "id": im["id"]}
                      if im["id"] in match.pred_to_gt else
                      {"id": im["id"], "file_name": im["file_name"], "width": 1, "height": 1}
                      for im in pred_images]
            pred = formats.read_yolo(labels, images=images, names=gt.categories)
        else:
            pred = formats.load_any(path, gt=gt, images_dir=args.images)
            match = match_images(gt.images, [{"id": im["id"], "file_name": None}
                                             for im in pred.images], complete=False)
    except ValueError as exc:
        raise UsageError(f"--pred {path}: {exc}") from exc
    if match.only_gt and args.intersection:
        gt = restrict_to_images(gt, match.pred_to_gt.values())
    elif not match.complete and match.by != "id" and match.n_shared < len(gt.images):
        n_none = len(gt.images) - len({match.pred_to_gt[a["image_id"]]
                                       for a in pred.annotations
                                       if a["image_id"] in match.pred_to_gt})
        if n_none:
            args.notes.append(f"{n_none} of the {len(gt.images)} ground-truth images have no "
                              f"detection in --pred {path}; they count as images without "
                              f"detections (an {IMAGES_TABLE} beside it, as yolo-ref predict "
                              f"writes, makes a difference of image sets an error)")
    annotations = [{**a, "image_id": match.pred_to_gt[a["image_id"]]}
                   for a in pred.annotations if a["image_id"] in match.pred_to_gt]
    pred = formats.DetectionSet(images=gt.images, categories=gt.categories,
                                annotations=annotations)
    gt_images = {im["id"] for im in gt.images}
    gt_cats = {c["id"] for c in gt.categories}
    for i, a in enumerate(pred.annotations):
        if "score" not in a:
            raise UsageError(f"--pred {path}: annotation {i} has no confidence score (YOLO "
                             f"predictions need a 6th column, COCO results a 'score')")
        if a["image_id"] not in gt_images:
            raise UsageError(f"--pred {path}: annotation {i}: image id {a['image_id']} is not "
                             f"in {gt_label}")
        if a["category_id"] not in gt_cats:
            raise UsageError(f"--pred {path}: annotation {i}: category id {a['category_id']} "
                             f"is not in {gt_label}")
    return gt, pred


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

    gt_name = args.gt if args.data is None else f"{args.data} ({args.split})"
    pred_name = f"{args.weights} (model)" if args.weights is not None else args.pred
    say(f"ground truth: {gt_name} ({data.n_images} images, {len(data.gt_cls)} boxes, "
        f"{data.n_classes} classes); predictions: "
        f"{'synthetic (seed %d)' % args.seed if args.synthetic_pred else pred_name} "
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


def summary_rows(data: EvalData, results: dict, ul: dict) -> list:
    """YOLOv5 ``val.py``'s table as rows ``(class, images, instances, P, R, mAP@0.5,
    mAP@0.5:0.95)``: "all" first, then each class. P and R are Ultralytics' (8.3 / 8.4 or YOLOv5
    v7.0 by ``ul["version"]``; at its max-F1 confidence, conf > --conf-thres); the mAPs are
    COCO's (pycocotools, per class from its precision array) when ``results`` has COCO, else
    those of ``ul``. ``None`` = undefined."""
    n_gt, _ = data.counts()
    images = [len(np.unique(data.gt_img[data.gt_cls == k])) for k in range(data.n_classes)]
    c = results.get("coco")
    rows = []
    for k, name in enumerate(data.names):
        u = ul["per_class"][k]
        m50, m = (c["per_class"][k]["ap50"], c["per_class"][k]["ap"]) if c else \
            (u["ap50"], u["ap50_95"])
        rows.append((name, images[k], int(n_gt[k]), u["p"], u["r"], m50, m))
    all50, allm = (c["map50"], c["map50_95"]) if c else (ul["map50"], ul["map50_95"])
    rows.insert(0, ("all", data.n_images, int(len(data.gt_cls)), ul["precision"],
                    ul["recall"], all50, allm))
    return rows


def format_summary_table(rows: list) -> list:
    """:func:`summary_rows` as text lines (``-`` for undefined numbers)."""
    width = max(len("class"), *(len(r[0]) for r in rows))
    head = (f"{'class':>{width}} {'images':>7} {'instances':>9} {'P':>7} {'R':>7} "
            f"{'mAP@0.5':>8} {'mAP@0.5:0.95':>12}")
    return [head] + [f"{n:>{width}} {i:>7d} {g:>9d} {_fmt(p)} {_fmt(r)} {_fmt(a, 8)} "
                     f"{_fmt(b, 12)}" for n, i, g, p, r, a, b in rows]


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
    """PR and F1-confidence curves at IoU 0.5 (per class, the matching ``matches`` of Ultralytics 8.3 /
    8.4 or YOLOv5 v7.0, an ``UltralyticsResult``) and the confusion matrix, as PNGs in ``out_dir``. Returns the
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
    truth = parser.add_mutually_exclusive_group(required=True)
    truth.add_argument("--gt", type=Path,
                       help="ground truth: COCO JSON, YOLO labels dir (or data-set root with "
                            "labels/ and images/), or VOC XML dir")
    truth.add_argument("--data", type=Path,
                       help="ground truth: a split (--split) of this data-set YAML (YOLO "
                            "labels of the split's images)")
    parser.add_argument("--split", choices=SPLITS, default="val", help="split of --data")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path,
                     help="predictions: COCO results JSON (image_id, or file_name as yolo-ref "
                          "predict writes) or YOLO txt dir with a conf column")
    src.add_argument("--synthetic-pred", action="store_true",
                     help="make predictions from the GT (jitter, drops, false positives)")
    src.add_argument("--weights", type=Path,
                     help="predict with this checkpoint (yolo-ref train or import-yolov5; needs "
                          "torch) on the ground truth's images, then evaluate")
    parser.add_argument("--intersection", action="store_true",
                        help="when predictions and ground truth cover different images, "
                             "evaluate the shared ones (default: stop with exit 2)")
    parser.add_argument("--img-size", type=int, default=640, help="--weights: network input size")
    parser.add_argument("--iou-thres", type=float, default=0.6,
                        help="--weights: NMS IoU threshold (training's validation: 0.6)")
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
                        help="YOLOv5 v7.0 / Ultralytics 8.3, 8.4: keep predictions with conf > this")
    parser.add_argument("--conf", dest="conf_thres", type=float, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # the old spelling
    parser.add_argument("--max-det", type=int, default=300,
                        help="YOLOv5 v7.0 / Ultralytics 8.3, 8.4: predictions kept per image")
    parser.add_argument("--ultralytics-version", choices=ULTRALYTICS_VERSIONS,
                        default=ULTRALYTICS_DEFAULT_VERSION,
                        help="release reproduced (matching, confusion matrix, AP end points): "
                             "yolov5 = YOLOv5 v7.0, 8.3 = ultralytics 8.3.253, 8.4 = 8.4.190")
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
    if args.backend == "ref" and args.device != "cpu" and args.weights is None:
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
    args.notes = []
    gt = load_gt(args)
    if args.synthetic_pred:
        pred = synthetic_predictions(gt, seed=args.seed)
    elif args.weights is not None:
        pred = model_predictions(args, gt)
    else:
        gt, pred = load_pred(args, gt)
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
    ul = results.get("ultralytics") or ultralytics_protocol(data, backend, **settings)
    if args.plots is not None or args.json is not None:
        cm = np.asarray(ul["_result"].confusion_matrix, dtype=np.float64)
        if args.plots is not None:
            plots = write_plots(data, ul["_result"], cm, args.plots)
    print_report(data, results, why, backend.notes + args.notes, args, out)
    table = summary_rows(data, results, ul)
    print(file=out)
    print("summary (P, R at the max-F1 confidence, conf > %g; mAP of protocol %s):" % (
        args.conf_thres, "coco" if "coco" in results else "ultralytics"), file=out)
    for line in format_summary_table(table):
        print(line, file=out)
    n_gt, n_det = data.counts()
    doc = {
        "gt": str(args.gt) if args.data is None else f"{args.data}:{args.split}",
        "pred": "synthetic" if args.synthetic_pred else str(args.weights or args.pred),
        "seed": args.seed if args.synthetic_pred else None,
        "backend": args.backend, "device": args.device if args.backend == "torch" else None,
        "n_images": data.n_images, "n_gt": int(len(data.gt_cls)),
        "n_pred": int(len(data.pred_cls)),
        "classes": [{"id": int(c), "name": n, "n_gt": int(g), "n_pred": int(d)}
                    for c, n, g, d in zip(data.cat_ids, data.names, n_gt, n_det)],
        "protocols": _public(results), "reasons": [d.message for d in why],
        "differences": [d.to_dict() for d in why], "notes": backend.notes + args.notes,
        "summary": [dict(zip(("class", "images", "instances", "p", "r", "map50", "map50_95"), r))
                    for r in table],
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
    args = parse_args(argv)  # argparse's --help / usage exits: ref_numpy.shared.cli.run
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
