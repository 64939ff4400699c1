#!/usr/bin/env python
"""The correctness audit: every stage through ref_numpy, torch_impl and the oracles, one table.

Runs on a YOLO-txt data set (default: the committed fixture ``fixtures/shapes``) and prints one
row per check: stage, cases, max deviation, tolerance, PASS/FAIL. Tolerances come from
``parity_tests/tolerances.py`` (the suite's one table). Exit status 1 on any FAIL.

Examples:
    python scripts/audit.py
    python scripts/audit.py --data fixtures/shapes --stages boxes,nms
    python scripts/audit.py --json audit.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from parity_tests.tolerances import EXACT, Tol, assert_parity, max_deviation, tolerance  # noqa: E402


@dataclass
class Row:
    stage: str
    check: str
    cases: int
    max_dev: float
    tol: str
    ok: bool


@dataclass
class Sample:
    """One image of the audit set: size and ground truth in pixels."""

    name: str
    height: int
    width: int
    classes: np.ndarray  # [N] int64
    boxes_cxcywh_norm: np.ndarray  # [N, 4] float64 as in the label file


def load_yolo_set(root: Path) -> list[Sample]:
    """Images and YOLO-txt labels under ``root`` (any nesting; labels/x.txt <-> images/x.*)."""
    from PIL import Image

    images = {p.stem: p for p in root.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}}
    samples = []
    for lbl in sorted(root.rglob("*.txt")):
        if lbl.stem not in images or lbl.name == "classes.txt":
            continue
        with Image.open(images[lbl.stem]) as im:
            w, h = im.size
        rows = np.loadtxt(lbl, ndmin=2) if lbl.stat().st_size else np.zeros((0, 5))
        samples.append(Sample(lbl.stem, h, w, rows[:, 0].astype(np.int64), rows[:, 1:5].astype(np.float64)))
    if not samples:
        raise SystemExit(f"audit: no images with YOLO labels under {root}")
    return samples


def _tol_text(tol: Tol) -> str:
    if tol.atol == 0 and tol.rtol == 0:
        return "exact"
    return f"{max(tol.atol, tol.rtol):.0e}"


def _row(stage, check, cases, actual, desired, name, dtype, tol: Tol | None = None) -> Row:
    """Compare with the suite's own ``assert_parity`` and table; record the max deviation."""
    tol = tol or tolerance(name, dtype)
    try:
        assert_parity(actual, desired, name=name, dtype=dtype, tol=tol)
        ok = True
    except AssertionError:
        ok = False
    return Row(stage, check, cases, max_deviation(actual, desired), _tol_text(tol), ok)


def _t(x, dtype="float64"):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=dtype)))


# Stages are registered in order; each takes the samples and returns rows.
STAGES: dict[str, callable] = {}


def stage(name):
    def deco(fn):
        STAGES[name] = fn
        return fn
    return deco


# ----------------------------------------------------------------------------- stages

def _pixels_xyxy(samples) -> np.ndarray:
    """All ground-truth boxes of the set as xyxy pixels, through the reference."""
    from ref_numpy import boxes as rb
    parts = [rb.box_convert(rb.box_denormalize(s.boxes_cxcywh_norm, (s.height, s.width)), "cxcywh", "xyxy")
             for s in samples]
    return np.concatenate(parts) if parts else np.zeros((0, 4))


@stage("formats")
def stage_formats(samples, root):
    import torchvision.ops as tvo

    from ref_numpy import boxes as rb
    from ref_numpy import formats as rf
    from torch_impl import boxes as tb
    rows = []
    xyxy = _pixels_xyxy(samples)
    n = len(xyxy)
    for fmt in ("xywh", "cxcywh"):
        for dtype in ("float64", "float32"):
            b = xyxy.astype(dtype)
            ref = rb.box_convert(b, "xyxy", fmt)
            port = tb.box_convert(_t(b, dtype), "xyxy", fmt)
            rows.append(_row("formats", f"box_convert xyxy->{fmt} ref=port {dtype}", n, port, ref,
                             "boxes.box_convert", dtype))
            oracle = tvo.box_convert(_t(b, dtype), "xyxy", fmt)
            rows.append(_row("formats", f"box_convert xyxy->{fmt} port=torchvision {dtype}", n, port,
                             oracle, "boxes.box_convert", dtype))
        back = rb.box_convert(rb.box_convert(xyxy, "xyxy", fmt), fmt, "xyxy")
        rows.append(_row("formats", f"round trip xyxy->{fmt}->xyxy float64", n, back, xyxy,
                         "boxes.round_trip", "float64"))
    norm = [rb.box_normalize(rb.box_denormalize(s.boxes_cxcywh_norm, (s.height, s.width)),
                             (s.height, s.width)) for s in samples]
    rows.append(_row("formats", "normalise(denormalise(yolo)) float64", n, np.concatenate(norm),
                     np.concatenate([s.boxes_cxcywh_norm for s in samples]), "boxes.round_trip", "float64"))
    if (root / "annotations.json").exists() and (root / "voc").is_dir():
        coco_set = rf.read_coco(root / "annotations.json")
        coco = rf.to_arrays(coco_set)
        yolo = rf.to_arrays(rf.read_yolo(root / "labels", root / "images"))
        sizes = {im["id"]: (im["width"], im["height"]) for im in coco_set.images}
        wh = np.array([sizes[a["image_id"]] for a in coco_set.annotations], dtype=np.float64).reshape(-1, 2)
        scale = np.concatenate([wh, wh], axis=1)  # YOLO's precision is in normalised units
        voc = rf.to_arrays(rf.read_voc(root / "voc", names=[c["name"] for c in rf.read_coco(
            root / "annotations.json").categories]))
        rows.append(_row("formats", "VOC XML reader = COCO JSON reader (pixels)", len(coco["boxes"]),
                         voc["boxes"], coco["boxes"], "formats.read_voc", "float64", tol=EXACT))
        rows.append(_row("formats", "YOLO txt reader = COCO JSON reader (normalised)", len(coco["boxes"]),
                         yolo["boxes"] / scale, coco["boxes"] / scale, "formats.read_yolo", "float64"))
    return rows


@stage("boxes")
def stage_boxes(samples, root):
    import torchvision.ops as tvo

    from ref_numpy import boxes as rb
    from torch_impl import boxes as tb
    xyxy = _pixels_xyxy(samples)
    rows = []
    for fn in ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"):
        for dtype in ("float64", "float32"):
            b = xyxy.astype(dtype)
            ref = getattr(rb, fn)(b, b)
            port = getattr(tb, fn)(_t(b, dtype), _t(b, dtype))
            oracle = getattr(tvo, fn)(_t(b, dtype), _t(b, dtype))
            rows.append(_row("boxes", f"{fn} ref=port {dtype}", ref.size, port, ref, f"boxes.{fn}", dtype))
            rows.append(_row("boxes", f"{fn} port=torchvision {dtype}", ref.size, port, oracle,
                             f"boxes.{fn}", dtype))
    for kind in ("iou", "giou", "diou", "ciou"):
        a, b = xyxy[:-1], xyxy[1:]
        ref = rb.aligned_box_iou(a, b, kind=kind)
        port = tb.aligned_box_iou(_t(a), _t(b), kind=kind)
        rows.append(_row("boxes", f"aligned_box_iou kind={kind} ref=port float64", len(a), port, ref,
                         "boxes.aligned_box_iou", "float64"))
    return rows


@stage("coder")
def stage_coder(samples, root):
    from ref_numpy import coder as rc
    from torch_impl import coder as tc
    rows = []
    xyxy = _pixels_xyxy(samples)
    n = len(xyxy)
    cxcy = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    wh = xyxy[:, 2:] - xyxy[:, :2]
    # YOLOv5 on the stride-8 level with the anchor of best shape ratio among the 9 defaults.
    anchors = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119],
                        [116, 90], [156, 198], [373, 326]], dtype=np.float64)
    ratio = np.maximum(wh[:, None] / anchors[None], anchors[None] / wh[:, None]).max(-1)
    anc = anchors[ratio.argmin(1)]
    inside = ratio.min(1) < 4.0
    stride = 8.0
    grid = np.floor(cxcy / stride)
    encoders = {"yolov5": lambda b, g, a: rc.yolov5_encode(b, g, a, stride),
                "yolov3": lambda b, g, a: rc.yolov3_encode(b, g, a, stride, logits=True)}
    for name, encode in encoders.items():
        sel = inside if name == "yolov5" else np.ones(n, bool)  # v3's exp has no size limit
        raw = encode(xyxy[sel], grid[sel], anc[sel])
        back = getattr(rc, f"{name}_decode")(raw, grid[sel], anc[sel], stride)
        rows.append(_row("coder", f"{name} decode(encode(gt)) = gt float64", int(sel.sum()), back,
                         xyxy[sel], f"coder.{name}_roundtrip", "float64"))
        port = getattr(tc, f"{name}_decode")(_t(raw), _t(grid[sel]), _t(anc[sel]), stride)
        rows.append(_row("coder", f"{name}_decode ref=port float64", int(sel.sum()), port,
                         back, f"coder.{name}_decode", "float64"))
    # YOLOv1 on the images of the first image's size (one grid over the whole image).
    size = (samples[0].height, samples[0].width)
    b1 = _pixels_xyxy([x for x in samples if (x.height, x.width) == size])
    cells, t = rc.yolov1_encode(b1, S=7, image_size=size)
    back = rc.yolov1_decode(t, cells, S=7, image_size=size)
    rows.append(_row("coder", "yolov1 decode(encode(gt)) = gt float64", len(b1), back, b1,
                     "coder.yolov1_roundtrip", "float64"))
    # Anchor-free: distances from the cell centre holding each GT centre, stride 8, reg_max 16.
    pts = (np.floor(cxcy / 8.0) + 0.5)
    dist = rc.bbox2dist(pts, xyxy / 8.0, 16)
    ok = np.all((dist > 0) & (dist < 16 - 1 - 0.01), axis=1)  # inside the DFL range, not clamped
    back = rc.dist2bbox(dist[ok], pts[ok], xywh=False) * 8.0
    rows.append(_row("coder", "dist2bbox(bbox2dist(gt)) = gt (in range)", int(ok.sum()), back, xyxy[ok],
                     "coder.dist_roundtrip", "float64"))
    port = tc.dist2bbox(_t(dist[ok]), _t(pts[ok]), xywh=False) * 8.0
    rows.append(_row("coder", "dist2bbox ref=port float64", int(ok.sum()), port, back,
                     "coder.dist2bbox", "float64"))
    return rows


def _synthetic_detections(samples, per_gt: int = 6, seed: int = 0):
    """Jittered copies of every GT box with random scores and classes, per image (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        gt = _pixels_xyxy([s])
        if len(gt) == 0:
            out.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)))
            continue
        rep = np.repeat(gt, per_gt, axis=0)
        wh = np.repeat(gt[:, 2:] - gt[:, :2], per_gt, axis=0)
        jit = rng.normal(0, 0.08, rep.shape) * np.concatenate([wh, wh], 1)
        b = rep + jit
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1.0)
        sc = np.round(rng.uniform(0.05, 1.0, len(b)), 2)  # rounded: score ties happen
        cls = np.repeat(s.classes, per_gt)
        out.append((b, sc, cls))
    return out


@stage("nms")
def stage_nms(samples, root):
    import torchvision.ops as tvo

    from ref_numpy import nms as rn
    from torch_impl import nms as tn
    dets = _synthetic_detections(samples)
    rows = []
    for thr in (0.45, 0.7):
        for dtype in ("float64", "float32"):
            ref_all, port_all, tv_all, bref, bport, btv = [], [], [], [], [], []
            cases = 0
            for b, sc, cls in dets:
                b, sc = b.astype(dtype), sc.astype(dtype)
                cases += len(b)
                ref_all.append(rn.nms(b, sc, thr))
                port_all.append(tn.nms(_t(b, dtype), _t(sc, dtype), thr).numpy())
                tv_all.append(tvo.nms(_t(b, dtype), _t(sc, dtype), thr).numpy())
                bref.append(rn.batched_nms(b, sc, cls, thr))
                bport.append(tn.batched_nms(_t(b, dtype), _t(sc, dtype), _t(cls, "int64"), thr).numpy())
                btv.append(tvo.batched_nms(_t(b, dtype), _t(sc, dtype), _t(cls, "int64"), thr).numpy())
            rows.append(_row("nms", f"nms kept ref=torchvision thr={thr} {dtype}", cases, ref_all, tv_all,
                             "nms.nms", dtype, tol=EXACT))
            rows.append(_row("nms", f"nms kept port=torchvision thr={thr} {dtype}", cases, port_all, tv_all,
                             "nms.nms", dtype, tol=EXACT))
            rows.append(_row("nms", f"batched_nms port=ref=torchvision thr={thr} {dtype}", cases,
                             [bport, bref], [btv, btv], "nms.batched_nms", dtype, tol=EXACT))
    return rows


def _coco_from_samples(samples, dets):
    """COCO GT dict and results list for the audit set and synthetic detections (ids from 1)."""
    images, anns, results = [], [], []
    for i, (s, (b, sc, cls)) in enumerate(zip(samples, dets), start=1):
        images.append({"id": i, "file_name": s.name, "width": s.width, "height": s.height})
        gt = _pixels_xyxy([s])
        for c, g in zip(s.classes, gt):
            w, h = float(g[2] - g[0]), float(g[3] - g[1])
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c),
                         "bbox": [float(g[0]), float(g[1]), w, h], "area": w * h, "iscrowd": 0})
        for c, d, p in zip(cls, b, sc):
            results.append({"image_id": i, "category_id": int(c), "score": float(p),
                            "bbox": [float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])]})
    n_cls = int(max((int(s.classes.max()) for s in samples if len(s.classes)), default=0)) + 1
    cats = [{"id": k, "name": str(k)} for k in range(n_cls)]
    return {"images": images, "annotations": anns, "categories": cats}, results


def _pycocotools_eval(gt, results):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@stage("map")
def stage_map(samples, root):
    from ref_numpy import metrics as rm
    from torch_impl import metrics as tm
    dets = _synthetic_detections(samples, per_gt=2, seed=1)
    gt, results = _coco_from_samples(samples, dets)
    oracle = _pycocotools_eval(gt, results)
    ref = rm.coco_evaluate(gt, results)
    port = tm.coco_evaluate(gt, results)
    n = len(results)
    rows = [
        _row("map", "COCO 12 stats ref=pycocotools", n, ref.stats, oracle.stats, "metrics.coco_evaluate",
             "float64", tol=EXACT),
        _row("map", "COCO 12 stats port=pycocotools", n, port.stats, oracle.stats, "metrics.coco_evaluate",
             "float64", tol=EXACT),
        _row("map", "COCO precision[T,R,K,A,M] ref=pycocotools", n, ref.precision,
             oracle.eval["precision"], "metrics.coco_evaluate", "float64", tol=EXACT),
        _row("map", "COCO precision[T,R,K,A,M] port=pycocotools", n, port.precision,
             oracle.eval["precision"], "metrics.coco_evaluate", "float64", tol=EXACT),
        _row("map", "COCO recall[T,K,A,M] port=pycocotools", n, port.recall, oracle.eval["recall"],
             "metrics.coco_evaluate", "float64", tol=EXACT),
    ]
    # VOC (2010+ all-point and 07 11-point): reference vs port on the same detections.
    gtb = [_pixels_xyxy([s]) for s in samples]
    gtl = [s.classes for s in samples]
    db = np.concatenate([d[0] for d in dets])
    ds = np.concatenate([d[1] for d in dets])
    dl = np.concatenate([d[2] for d in dets])
    di = np.concatenate([np.full(len(d[0]), i) for i, d in enumerate(dets)])
    for use07 in (False, True):
        r = rm.voc_evaluate(gtb, gtl, db, ds, dl, di, use_07_metric=use07)
        p = tm.voc_evaluate([_t(x) for x in gtb], [_t(x, "int64") for x in gtl], _t(db), _t(ds),
                            _t(dl, "int64"), _t(di, "int64"), use_07_metric=use07)
        rows.append(_row("map", f"VOC{'07' if use07 else '12'} per-class AP ref=port", len(db), p["ap"], r["ap"],
                         "metrics.voc_evaluate", "float64"))
    return rows


def _fixture_batch(samples, bs: int = 4):
    """(bs images of the set) as YOLOv5 targets rows (image, class, cx, cy, w, h) normalised."""
    rows = [np.concatenate([np.full((len(s.classes), 1), i), s.classes[:, None], s.boxes_cxcywh_norm], 1)
            for i, s in enumerate(samples[:bs])]
    return np.concatenate(rows) if rows else np.zeros((0, 6))


V5_ANCHORS_GRID = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                            [[116, 90], [156, 198], [373, 326]]], dtype=np.float64) / np.array(
    [8.0, 16.0, 32.0])[:, None, None]


@stage("assign")
def stage_assign(samples, root):
    from ref_numpy import assign as ra
    from torch_impl import assign as ta
    size = 320
    grids = [(size // s, size // s) for s in (8, 16, 32)]
    targets = np.concatenate([
        np.concatenate([np.full((len(s.classes), 1), i), s.classes[:, None], s.boxes_cxcywh_norm], 1)
        for i, s in enumerate(samples)])
    ref = ra.yolov5_build_targets(targets, V5_ANCHORS_GRID, grids)
    port = ta.yolov5_build_targets(_t(targets), _t(V5_ANCHORS_GRID), grids)
    n = len(targets)
    tcls_r, tbox_r, ind_r, anch_r = ref
    tcls_p, tbox_p, ind_p, anch_p = port
    rows = [
        _row("assign", "yolov5_build_targets indices ref=port", n, ind_p, ind_r,
             "assign.yolov5_build_targets", "float64", tol=EXACT),
        _row("assign", "yolov5_build_targets classes ref=port", n, tcls_p, tcls_r,
             "assign.yolov5_build_targets", "float64", tol=EXACT),
        _row("assign", "yolov5_build_targets tbox, anchors ref=port", n, [tbox_p, anch_p], [tbox_r, anch_r],
             "assign.yolov5_build_targets", "float64"),
    ]
    rep = ra.yolov5_assignment_report(targets, V5_ANCHORS_GRID, grids)
    rep_p = ta.yolov5_assignment_report(_t(targets), _t(V5_ANCHORS_GRID), grids)
    same = _report_equal(rep, rep_p)
    un, col = _report_counts(rep)
    rows.append(Row("assign", f"v5 report ref=port: {un} GTs unassigned, {col} collisions", n,
                    0.0 if same else float("inf"), "exact", same))
    return rows


def _report_equal(a, b) -> bool:
    from parity_tests.tolerances import to_numpy
    try:
        assert_parity(to_numpy(b), to_numpy(a), name="assign.yolov5_assignment_report", dtype="float64")
        return True
    except AssertionError:
        return False


def _report_counts(rep) -> tuple[int, int]:
    unassigned = rep.get("unassigned", []) if isinstance(rep, dict) else []
    collisions = rep.get("collisions", []) if isinstance(rep, dict) else []
    return len(unassigned), len(collisions)


@stage("loss")
def stage_loss(samples, root):
    from ref_numpy import loss as rl
    from torch_impl import loss as tl
    rng = np.random.default_rng(0)
    bs, nc, size = 4, 3, 320
    targets = _fixture_batch(samples, bs)
    preds = [rng.normal(0, 1.5, (bs, 3, size // s, size // s, 5 + nc)) for s in (8, 16, 32)]
    rows = []
    for dtype in ("float64", "float32"):
        ref_total, ref_parts = rl.yolov5_loss([p.astype(dtype) for p in preds], targets.astype(dtype),
                                              V5_ANCHORS_GRID.astype(dtype))
        port_total, port_parts = tl.yolov5_loss([_t(p, dtype) for p in preds], _t(targets, dtype),
                                                _t(V5_ANCHORS_GRID, dtype))
        for k in sorted(ref_parts):
            rows.append(_row("loss", f"yolov5_loss {k} ref=port {dtype}", len(targets), port_parts[k],
                             ref_parts[k], "loss.yolov5_loss", dtype))
        rows.append(_row("loss", f"yolov5_loss total ref=port {dtype}", len(targets), port_total, ref_total,
                         "loss.yolov5_loss", dtype))
    reg_max = 16
    preds8 = [rng.normal(0, 1.0, (bs, 4 * reg_max + nc, size // s, size // s)) for s in (8, 16, 32)]
    ref_total, ref_parts = rl.yolov8_loss(preds8, targets, (8, 16, 32))
    port_total, port_parts = tl.yolov8_loss([_t(p) for p in preds8], _t(targets), (8, 16, 32))
    for k in sorted(ref_parts):
        rows.append(_row("loss", f"yolov8_loss {k} ref=port float64", len(targets), port_parts[k],
                         ref_parts[k], "loss.yolov8_loss", "float64"))
    return rows


@stage("train")
def stage_train(samples, root):
    """One batch through the YOLOv5n port model; the port's and the reference's loss on the same
    head output agree (and the backward pass gives finite gradients)."""
    from ref_numpy import loss as rl
    from torch_impl import loss as tl
    from torch_impl.models import yolov5
    from PIL import Image
    torch.manual_seed(0)
    bs, nc, size = 2, 3, 320
    model = yolov5("n", nc=nc).train()
    imgs = []
    for s in samples[:bs]:
        path = next(iter(sorted(root.rglob(f"{s.name}.*"))))
        with Image.open(path) as im:
            imgs.append(np.asarray(im.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    targets = _fixture_batch(samples, bs)
    anchors = model.anchors_grid_units.detach()
    preds = model(x)
    total, parts = tl.yolov5_loss(preds, _t(targets, "float32"), anchors)
    total.backward()
    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    ref_total, ref_parts = rl.yolov5_loss([p.detach().double().numpy() for p in preds], targets,
                                          anchors.double().numpy())
    rows = [_row("train", f"yolov5n head output: port loss {k} = ref (f32 vs f64)", len(targets),
                 parts[k], ref_parts[k], "loss.yolov5_loss", "float32") for k in sorted(ref_parts)]
    rows.append(Row("train", "backward through the model: finite gradients", sum(p.numel() for p in model.parameters()),
                    0.0 if grads_finite else float("inf"), "finite", grads_finite))
    return rows


def run(samples, root, names) -> list[Row]:
    rows = []
    for name in names:
        try:
            rows.extend(STAGES[name](samples, root))
        except Exception as exc:  # noqa: BLE001 - a crashing stage is a FAIL, not a crash of the audit
            rows.append(Row(name, f"crashed: {type(exc).__name__}: {exc}", 0, float("inf"), "-", False))
    return rows


def print_table(rows: list[Row]) -> None:
    head = f"{'stage':<10} {'check':<56} {'cases':>7} {'max dev':>10} {'tol':>8}  result"
    print(head)
    print("-" * len(head))
    for r in rows:
        dev = "inf" if not np.isfinite(r.max_dev) else f"{r.max_dev:.2e}"
        print(f"{r.stage:<10} {r.check[:56]:<56} {r.cases:>7} {dev:>10} {r.tol:>8}  "
              f"{'PASS' if r.ok else 'FAIL'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "fixtures" / "shapes",
                    help="YOLO-txt data set (images + labels), default: the committed fixture")
    ap.add_argument("--stages", default="all", help=f"comma list of {', '.join(STAGES)} or 'all'")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    names = list(STAGES) if args.stages == "all" else [s.strip() for s in args.stages.split(",")]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    samples = load_yolo_set(args.data)
    n_boxes = sum(len(s.classes) for s in samples)
    print(f"audit: {len(samples)} images, {n_boxes} boxes from {args.data}; torch {torch.__version__}")
    rows = run(samples, args.data, names)
    print_table(rows)
    n_fail = sum(not r.ok for r in rows)
    print(f"\n{len(rows) - n_fail} passed, {n_fail} failed")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2, default=float))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
