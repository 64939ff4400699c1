"""yolo-ref audit: every stage through ref_numpy, torch_impl and the oracles, one table.

Runs on a YOLO-txt data set and prints one row per check: stage, check, cases, max deviation,
the tolerance actually applied (``atol+rtol|x|``, or ``exact``) and PASS / FAIL / SKIP.
Tolerances come from ``parity_tests/tolerances.py`` (the suite's one table).

Data: ``--data DIR`` (``DIR/labels`` + ``DIR/images``, or a labels directory whose sibling is
``images``); by default the committed fixture ``fixtures/shapes`` of a checkout, or, installed
without one, a small shapes set generated into a temporary directory.

SKIP is never a failure: with ``--backend ref`` (runs without torch) every row that needs the
port or an oracle is skipped; a missing torchvision / pycocotools skips its rows with the
install hint. Exit code 1 only when a row FAILs.

Examples:
    yolo-ref audit
    yolo-ref audit --backend ref                 # the reference alone, no torch needed
    yolo-ref audit --data fixtures/shapes --stages boxes,nms
    yolo-ref audit --device cuda --json audit.json
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from parity_tests.sides import REF, Side, get_side, missing_reason, resolve
from parity_tests.tolerances import EXACT, Tol, assert_parity, lookup, max_deviation, on_device
from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_backend, add_device,
                                  make_parser)

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "shapes"

# YOLOv5's default anchors (pixels) and the same in grid units of strides 8, 16, 32.
V5_ANCHORS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119],
                       [116, 90], [156, 198], [373, 326]], dtype=np.float64)
V5_ANCHORS_GRID = V5_ANCHORS.reshape(3, 3, 2) / np.array([8.0, 16.0, 32.0])[:, None, None]


@dataclass
class Row:
    """One line of the table (and one object of ``--json``)."""

    stage: str
    check: str
    cases: int
    max_dev: float
    tol: str
    status: str
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAIL


@dataclass
class Sample:
    """One image of the audit set: size and ground truth (xyxy pixels, class indices)."""

    name: str
    height: int
    width: int
    classes: np.ndarray  # [N] int64
    boxes: np.ndarray  # [N, 4] float64 xyxy pixels

    @property
    def boxes_cxcywh_norm(self) -> np.ndarray:
        """[N, 4] normalised cxcywh, as a YOLO label file holds them (through the reference)."""
        from ref_numpy import boxes as rb

        return rb.box_normalize(rb.box_convert(self.boxes, "xyxy", "cxcywh"), (self.height, self.width))


class Skip(Exception):
    """A row cannot run here (no port, no oracle): its reason is the row's note."""


# ----------------------------------------------------------------------------- data

def _yolo_dirs(root: Path) -> tuple[Path, Path | None]:
    if (root / "labels").is_dir():
        return root / "labels", (root / "images") if (root / "images").is_dir() else None
    return root, None


def load_set(root: Path):
    """The YOLO-txt set under ``root`` through :func:`ref_numpy.formats.read_yolo`, as
    ``(DetectionSet, [Sample])`` in image order."""
    from ref_numpy import formats as rf

    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"--data: {root} is not a directory")
    labels, images = _yolo_dirs(root)
    try:
        ds = rf.read_yolo(labels, images)
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from exc
    cols = rf.to_arrays(ds)
    samples = []
    for im in ds.images:
        sel = cols["image_id"] == im["id"]
        samples.append(Sample(Path(im["file_name"]).stem, int(im["height"]), int(im["width"]),
                              cols["category_id"][sel], cols["boxes"][sel]))
    if not samples or not any(len(s.classes) for s in samples):
        raise UsageError(f"--data: no images with YOLO labels under {root}")
    return ds, samples


# Where the library's shapes generator may live (`yolo-ref make-shapes`), most specific first.
_GENERATORS = ("ref_numpy.cli.make_shapes:generate", "ref_numpy.shapes:generate",
               "ref_numpy.shared.shapes:generate")


def _generate_shapes(out: Path) -> Path:
    """A small shapes set (16 images, 320 px, seed 0, COCO + VOC copies) written by the
    library's generator, for an installation without a checkout's fixtures/."""
    import importlib

    for target in _GENERATORS:
        module, func = target.split(":")
        try:
            generate = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            continue
        generate(out, n_images=16, size=320, seed=0, split=0.75, formats=True)
        return out
    raise UsageError("--data: not given, no fixtures/shapes next to this installation and no shapes "
                     "generator to make one (yolo-ref make-shapes); pass --data DIR")


# ----------------------------------------------------------------------------- the audit

class Audit:
    """The rows of one run: every check is a callable producing ``(actual, desired)``, so a
    check that needs a missing side or oracle becomes a SKIP row and a crash a FAIL row."""

    def __init__(self, samples: list[Sample], root: Path, dataset, backend: str, device: str):
        self.samples, self.root, self.dataset = samples, root, dataset
        self.backend, self.device = backend, device
        self.rows: list[Row] = []
        self._port: Side | None = None
        self._port_skip: str | None = None
        if backend == "ref":
            self._port_skip = "--backend ref: the port is not audited"
        else:
            self._port = get_side("torch", device=device)
            self._port_skip = self._port.available()

    @property
    def port(self) -> Side:
        """The port side, or :class:`Skip` with the reason it cannot run."""
        if self._port_skip:
            raise Skip(self._port_skip)
        return self._port

    def oracle(self, dotted: str) -> Callable:
        """An oracle by dotted name, or :class:`Skip` with the install hint."""
        try:
            return resolve(dotted)
        except ImportError as exc:
            raise Skip(missing_reason(dotted, exc)) from None

    def compare(self, stage: str, check: str, cases: int, produce: Callable, name: str,
                dtype: str, tol: Tol | None = None, port: bool = False) -> None:
        """Add one row: ``produce() -> (actual, desired)`` compared by ``assert_parity`` with
        the table's tolerance for ``name`` (or ``tol``), widened for the device on port rows."""
        try:
            actual, desired = produce()
        except Skip as why:
            self.rows.append(Row(stage, check, cases, float("nan"), "-", SKIP, str(why)))
            return
        except Exception as exc:  # noqa: BLE001 - a crashing check is a FAIL, not a crash
            self.rows.append(Row(stage, check, cases, float("inf"), "-", FAIL,
                                 f"crashed: {type(exc).__name__}: {exc}"))
            return
        tol = tol or lookup(name, dtype)
        if port:
            tol = on_device(tol, dtype, self.device)
        try:
            assert_parity(actual, desired, name=name, dtype=dtype, tol=tol)
            status, note = PASS, ""
        except AssertionError as exc:
            status, note = FAIL, str(exc).splitlines()[0]
        self.rows.append(Row(stage, check, cases, max_deviation(actual, desired), tol.text(), status, note))

    def flag(self, stage: str, check: str, cases: int, produce: Callable[[], bool], tol: str) -> None:
        """Add one yes/no row (``produce() -> bool``)."""
        try:
            ok = bool(produce())
        except Skip as why:
            self.rows.append(Row(stage, check, cases, float("nan"), "-", SKIP, str(why)))
            return
        except Exception as exc:  # noqa: BLE001
            ok = False
            self.rows.append(Row(stage, check, cases, float("inf"), tol, FAIL,
                                 f"crashed: {type(exc).__name__}: {exc}"))
            return
        self.rows.append(Row(stage, check, cases, 0.0 if ok else float("inf"), tol, PASS if ok else FAIL))


def _pixels_xyxy(samples: list[Sample]) -> np.ndarray:
    parts = [s.boxes for s in samples]
    return np.concatenate(parts) if parts else np.zeros((0, 4))


def _targets(samples: list[Sample]) -> np.ndarray:
    """YOLOv5 target rows (image, class, cx, cy, w, h), normalised, for ``samples``."""
    rows = [np.concatenate([np.full((len(s.classes), 1), i), s.classes[:, None].astype(np.float64),
                            s.boxes_cxcywh_norm], 1) for i, s in enumerate(samples)]
    return np.concatenate(rows) if rows else np.zeros((0, 6))


STAGES: dict[str, Callable[[Audit], None]] = {}


def stage(name: str):
    def deco(fn):
        STAGES[name] = fn
        return fn
    return deco


# ----------------------------------------------------------------------------- stages

@stage("formats")
def stage_formats(a: Audit) -> None:
    from ref_numpy import boxes as rb
    from ref_numpy import formats as rf

    xyxy = _pixels_xyxy(a.samples)
    n = len(xyxy)
    for fmt in ("xywh", "cxcywh"):
        for dtype in ("float64", "float32"):
            args = (xyxy, "xyxy", fmt)
            ref = REF.run("boxes.box_convert", args, dtype=dtype)
            a.compare("formats", f"box_convert xyxy->{fmt} ref=port {dtype}", n,
                      lambda: (a.port.run("boxes.box_convert", args, dtype=dtype), ref),
                      "boxes.box_convert", dtype, port=True)
            a.compare("formats", f"box_convert xyxy->{fmt} port=torchvision {dtype}", n,
                      lambda: (a.port.run("boxes.box_convert", args, dtype=dtype),
                               a.port.run(a.oracle("torchvision.ops.box_convert"), args, dtype=dtype)),
                      "boxes.box_convert", dtype, port=True)
        a.compare("formats", f"round trip xyxy->{fmt}->xyxy float64", n,
                  lambda: (rb.box_convert(rb.box_convert(xyxy, "xyxy", fmt), fmt, "xyxy"), xyxy),
                  "roundtrip.boxes", "float64")
    norm = [s.boxes_cxcywh_norm for s in a.samples]
    sizes = [(s.height, s.width) for s in a.samples]
    a.compare("formats", "normalise(denormalise(yolo)) float64", n,
              lambda: (np.concatenate([rb.box_normalize(rb.box_denormalize(b, hw), hw)
                                       for b, hw in zip(norm, sizes)]), np.concatenate(norm)),
              "roundtrip.boxes", "float64")
    root = a.root
    if (root / "annotations.json").exists() and (root / "voc").is_dir():
        coco_set = rf.read_coco(root / "annotations.json")
        coco = rf.to_arrays(coco_set)
        size = {im["id"]: (im["width"], im["height"]) for im in coco_set.images}
        wh = np.array([size[i] for i in coco["image_id"]], dtype=np.float64).reshape(-1, 2)
        scale = np.concatenate([wh, wh], axis=1)  # YOLO's precision is in normalised units
        names = [c["name"] for c in coco_set.categories]
        m = len(coco["boxes"])
        a.compare("formats", "VOC XML reader = COCO JSON reader (pixels)", m,
                  lambda: (rf.to_arrays(rf.read_voc(root / "voc", names=names))["boxes"], coco["boxes"]),
                  "formats.read_voc", "float64", tol=EXACT)
        a.compare("formats", "YOLO txt reader = COCO JSON reader (normalised)", m,
                  lambda: (rf.to_arrays(a.dataset)["boxes"] / scale, coco["boxes"] / scale),
                  "formats.read_yolo", "float64")


@stage("boxes")
def stage_boxes(a: Audit) -> None:
    xyxy = _pixels_xyxy(a.samples)
    for fn in ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"):
        for dtype in ("float64", "float32"):
            args = (xyxy, xyxy)
            ref = REF.run(f"boxes.{fn}", args, dtype=dtype)
            a.compare("boxes", f"{fn} ref=port {dtype}", ref.size,
                      lambda: (a.port.run(f"boxes.{fn}", args, dtype=dtype), ref), f"boxes.{fn}", dtype, port=True)
            a.compare("boxes", f"{fn} port=torchvision {dtype}", ref.size,
                      lambda: (a.port.run(f"boxes.{fn}", args, dtype=dtype),
                               a.port.run(a.oracle(f"torchvision.ops.{fn}"), args, dtype=dtype)),
                      f"boxes.{fn}", dtype, port=True)
    for kind in ("iou", "giou", "diou", "ciou"):
        args, kw = (xyxy[:-1], xyxy[1:]), {"kind": kind}
        ref = REF.run("boxes.aligned_box_iou", args, kw)
        a.compare("boxes", f"aligned_box_iou kind={kind} ref=port float64", len(xyxy) - 1,
                  lambda: (a.port.run("boxes.aligned_box_iou", args, kw), ref), "boxes.aligned_box_iou",
                  "float64", port=True)


@stage("coder")
def stage_coder(a: Audit) -> None:
    from ref_numpy import coder as rc

    xyxy = _pixels_xyxy(a.samples)
    n = len(xyxy)
    cxcy = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    wh = xyxy[:, 2:] - xyxy[:, :2]
    # YOLOv5 on the stride-8 level with the anchor of best shape ratio among the 9 defaults.
    ratio = np.maximum(wh[:, None] / V5_ANCHORS[None], V5_ANCHORS[None] / wh[:, None]).max(-1)
    anc = V5_ANCHORS[ratio.argmin(1)]
    inside = ratio.min(1) < 4.0
    stride = 8.0
    grid = np.floor(cxcy / stride)
    encoders = {"yolov5": lambda b, g, an: rc.yolov5_encode(b, g, an, stride),
                "yolov3": lambda b, g, an: rc.yolov3_encode(b, g, an, stride, logits=True)}
    for name, encode in encoders.items():
        sel = inside if name == "yolov5" else np.ones(n, bool)  # v3's exp has no size limit
        raw = encode(xyxy[sel], grid[sel], anc[sel])
        args = (raw, grid[sel], anc[sel], stride)
        back = REF.run(f"coder.{name}_decode", args)
        a.compare("coder", f"{name} decode(encode(gt)) = gt float64", int(sel.sum()),
                  lambda: (back, xyxy[sel]), f"roundtrip.{name}", "float64")
        a.compare("coder", f"{name}_decode ref=port float64", int(sel.sum()),
                  lambda: (a.port.run(f"coder.{name}_decode", args), back), f"coder.{name}_decode",
                  "float64", port=True)
    # YOLOv1 on the images of the first image's size (one grid over the whole image).
    size = (a.samples[0].height, a.samples[0].width)
    b1 = _pixels_xyxy([x for x in a.samples if (x.height, x.width) == size])
    cells, t = rc.yolov1_encode(b1, S=7, image_size=size)
    a.compare("coder", "yolov1 decode(encode(gt)) = gt float64", len(b1),
              lambda: (rc.yolov1_decode(t, cells, S=7, image_size=size), b1), "roundtrip.yolov1", "float64")
    # Anchor-free: distances from the cell centre holding each GT centre, stride 8, reg_max 16.
    pts = np.floor(cxcy / 8.0) + 0.5
    dist = rc.bbox2dist(pts, xyxy / 8.0, 16)
    ok = np.all((dist > 0) & (dist < 16 - 1 - 0.01), axis=1)  # inside the DFL range, not clamped
    back = rc.dist2bbox(dist[ok], pts[ok], xywh=False)
    a.compare("coder", "dist2bbox(bbox2dist(gt)) = gt (in range)", int(ok.sum()),
              lambda: (back * 8.0, xyxy[ok]), "roundtrip.dist", "float64")
    a.compare("coder", "dist2bbox ref=port float64", int(ok.sum()),
              lambda: (a.port.run("coder.dist2bbox", (dist[ok], pts[ok]), {"xywh": False}), back),
              "coder.dist2bbox", "float64", port=True)


def _detections(a: Audit, copies: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image (boxes xyxy, scores, classes) of the one synthetic-detection generator."""
    from ref_numpy import formats as rf
    from ref_numpy.shared.synthetic import synthetic_predictions

    preds = synthetic_predictions(a.dataset, seed=seed, drop=0.0, copies=copies)
    cols = rf.to_arrays(preds)
    out = []
    for im in preds.images:
        sel = cols["image_id"] == im["id"]
        out.append((cols["boxes"][sel], cols["score"][sel], cols["category_id"][sel]))
    return out


@stage("nms")
def stage_nms(a: Audit) -> None:
    dets = _detections(a, copies=6, seed=0)
    cases = sum(len(d[0]) for d in dets)
    for thr in (0.45, 0.7):
        for dtype in ("float64", "float32"):
            ref = [REF.run("nms.nms", (b, s, thr), dtype=dtype) for b, s, _ in dets]
            bref = [REF.run("nms.batched_nms", (b, s, c, thr), dtype=dtype) for b, s, c in dets]

            def tv(fn, batched=False):
                oracle = a.oracle(f"torchvision.ops.{fn}")
                return [a.port.call(oracle, *((b, s, c, thr) if batched else (b, s, thr)), dtype=dtype)
                        for b, s, c in dets]

            a.compare("nms", f"nms kept ref=torchvision thr={thr} {dtype}", cases,
                      lambda: (ref, tv("nms")), "nms.nms", dtype, tol=EXACT)
            a.compare("nms", f"nms kept port=torchvision thr={thr} {dtype}", cases,
                      lambda: ([a.port.call("nms.nms", b, s, thr, dtype=dtype) for b, s, _ in dets], tv("nms")),
                      "nms.nms", dtype, tol=EXACT, port=True)
            a.compare("nms", f"batched_nms ref=port thr={thr} {dtype}", cases,
                      lambda: ([a.port.call("nms.batched_nms", b, s, c, thr, dtype=dtype) for b, s, c in dets],
                               bref), "nms.batched_nms", dtype, tol=EXACT, port=True)
            a.compare("nms", f"batched_nms ref=torchvision thr={thr} {dtype}", cases,
                      lambda: (bref, tv("batched_nms", batched=True)), "nms.batched_nms", dtype, tol=EXACT)


def _coco(a: Audit, dets) -> tuple[dict, list]:
    """COCO GT dict and results list for the audit set and ``dets`` (ids from 1)."""
    images, anns, results = [], [], []
    for i, (s, (b, sc, cls)) in enumerate(zip(a.samples, dets), start=1):
        images.append({"id": i, "file_name": s.name, "width": s.width, "height": s.height})
        for c, g in zip(s.classes, s.boxes):
            w, h = float(g[2] - g[0]), float(g[3] - g[1])
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c),
                         "bbox": [float(g[0]), float(g[1]), w, h], "area": w * h, "iscrowd": 0})
        for c, d, p in zip(cls, b, sc):
            results.append({"image_id": i, "category_id": int(c), "score": float(p),
                            "bbox": [float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])]})
    cats = [dict(c) for c in a.dataset.categories]
    return {"images": images, "annotations": anns, "categories": cats}, results


@stage("map")
def stage_map(a: Audit) -> None:
    from ref_numpy import metrics as rm

    dets = _detections(a, copies=2, seed=1)
    gt, results = _coco(a, dets)
    n = len(results)
    ref = rm.coco_evaluate(gt, results)
    cache: dict = {}

    def oracle():
        if "ev" not in cache:
            try:
                from parity_tests.oracles import pycocotools_evaluate
            except ImportError as exc:
                raise Skip(missing_reason("oracle pycocotools", exc)) from None
            cache["ev"] = pycocotools_evaluate(gt, results)
        return cache["ev"]

    def port():
        if "port" not in cache:
            cache["port"] = a.port.function("metrics.coco_evaluate")(gt, results)
        return cache["port"]

    a.compare("map", "COCO 12 stats ref=pycocotools", n, lambda: (ref.stats, oracle().stats),
              "metrics.coco_evaluate", "float64", tol=EXACT)
    a.compare("map", "COCO 12 stats port=pycocotools", n, lambda: (port().stats, oracle().stats),
              "metrics.coco_evaluate", "float64", tol=EXACT, port=True)
    a.compare("map", "COCO precision[T,R,K,A,M] ref=pycocotools", n,
              lambda: (ref.precision, oracle().precision), "metrics.coco_evaluate", "float64", tol=EXACT)
    a.compare("map", "COCO precision[T,R,K,A,M] port=pycocotools", n,
              lambda: (port().precision, oracle().precision), "metrics.coco_evaluate", "float64",
              tol=EXACT, port=True)
    a.compare("map", "COCO recall[T,K,A,M] port=pycocotools", n,
              lambda: (port().recall, oracle().recall), "metrics.coco_evaluate", "float64", tol=EXACT,
              port=True)
    # VOC (2010+ all-point and 07 11-point): reference vs port on the same detections.
    gtb = [s.boxes for s in a.samples]
    gtl = [s.classes for s in a.samples]
    db, ds, dl = (np.concatenate([d[k] for d in dets]) for k in range(3))
    di = np.concatenate([np.full(len(d[0]), i, dtype=np.int64) for i, d in enumerate(dets)])
    for use07 in (False, True):
        args, kw = (gtb, gtl, db, ds, dl, di), {"use_07_metric": use07}
        r = REF.run("metrics.voc_evaluate", args, kw)
        a.compare("map", f"VOC{'07' if use07 else '12'} per-class AP ref=port", len(db),
                  lambda: (a.port.run("metrics.voc_evaluate", args, kw)["ap"], r["ap"]),
                  "metrics.voc_evaluate", "float64", port=True)


@stage("assign")
def stage_assign(a: Audit) -> None:
    size = 320
    grids = [(size // s, size // s) for s in (8, 16, 32)]
    targets = _targets(a.samples)
    n = len(targets)
    args = (targets, V5_ANCHORS_GRID, grids)
    tcls_r, tbox_r, ind_r, anch_r = REF.run("assign.yolov5_build_targets", args)
    cache: dict = {}

    def port():
        if "out" not in cache:
            cache["out"] = a.port.run("assign.yolov5_build_targets", args)
        return cache["out"]

    a.compare("assign", "yolov5_build_targets indices ref=port", n, lambda: (port()[2], ind_r),
              "assign.yolov5_build_targets", "float64", tol=EXACT, port=True)
    a.compare("assign", "yolov5_build_targets classes ref=port", n, lambda: (port()[0], tcls_r),
              "assign.yolov5_build_targets", "float64", tol=EXACT, port=True)
    a.compare("assign", "yolov5_build_targets tbox, anchors ref=port", n,
              lambda: ([port()[1], port()[3]], [tbox_r, anch_r]), "assign.yolov5_build_targets",
              "float64", port=True)
    rep = REF.run("assign.yolov5_assignment_report", args)
    unassigned = len(getattr(rep, "unassigned", None) or (rep.get("unassigned", []) if isinstance(rep, dict) else []))
    collisions = len(getattr(rep, "collisions", None) or (rep.get("collisions", []) if isinstance(rep, dict) else []))
    a.compare("assign", f"v5 report ref=port: {unassigned} GTs unassigned, {collisions} collisions", n,
              lambda: (_plain(a.port.run("assign.yolov5_assignment_report", args)), _plain(rep)),
              "assign.yolov5_assignment_report", "float64", tol=EXACT, port=True)


def _plain(x):
    """A report (dataclasses, dicts, lists, tensors) as nested dicts/lists of NumPy values."""
    from dataclasses import fields, is_dataclass

    from parity_tests.tolerances import to_numpy

    if is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return to_numpy(x)


@stage("loss")
def stage_loss(a: Audit) -> None:
    rng = np.random.default_rng(0)
    bs, nc, size = 4, 3, 320
    targets = _targets(a.samples[:bs])
    preds = [rng.normal(0, 1.5, (bs, 3, size // s, size // s, 5 + nc)) for s in (8, 16, 32)]
    for dtype in ("float64", "float32"):
        args = (preds, targets, V5_ANCHORS_GRID)
        ref_total, ref_parts = REF.run("loss.yolov5_loss", args, dtype=dtype)
        cache: dict = {}

        def port(dtype=dtype, args=args, cache=cache):
            if "out" not in cache:
                cache["out"] = a.port.run("loss.yolov5_loss", args, dtype=dtype)
            return cache["out"]

        for k in sorted(ref_parts):
            a.compare("loss", f"yolov5_loss {k} ref=port {dtype}", len(targets),
                      lambda k=k, port=port: (port()[1][k], ref_parts[k]), "loss.yolov5_loss", dtype, port=True)
        a.compare("loss", f"yolov5_loss total ref=port {dtype}", len(targets),
                  lambda port=port: (port()[0], ref_total), "loss.yolov5_loss", dtype, port=True)
    reg_max = 16
    preds8 = [rng.normal(0, 1.0, (bs, 4 * reg_max + nc, size // s, size // s)) for s in (8, 16, 32)]
    args8 = (preds8, targets, (8, 16, 32))
    ref_total, ref_parts = REF.run("loss.yolov8_loss", args8)
    cache8: dict = {}

    def port8():
        if "out" not in cache8:
            cache8["out"] = a.port.run("loss.yolov8_loss", args8)
        return cache8["out"]

    for k in sorted(ref_parts):
        a.compare("loss", f"yolov8_loss {k} ref=port float64", len(targets),
                  lambda k=k: (port8()[1][k], ref_parts[k]), "loss.yolov8_loss", "float64", port=True)


@stage("train")
def stage_train(a: Audit) -> None:
    """One batch through the YOLOv5n port model; the port's and the reference's loss on the same
    head output agree (and the backward pass gives finite gradients)."""
    from PIL import Image

    from ref_numpy import loss as rl

    bs, nc, size = 2, 3, 320
    targets = _targets(a.samples[:bs])
    images = {Path(im["file_name"]).stem: im for im in a.dataset.images}
    _, images_dir = _yolo_dirs(a.root)
    cache: dict = {}

    def forward():
        if "out" in cache:
            return cache["out"]
        port = a.port
        import torch

        from torch_impl.models import yolov5

        torch.manual_seed(0)
        model = yolov5("n", nc=nc).train().to(port.device)
        imgs = []
        for s in a.samples[:bs]:
            path = Path(images_dir or a.root) / images[s.name]["file_name"]
            with Image.open(path) as im:
                imgs.append(np.asarray(im.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0)
        x = port.to_inputs(np.stack(imgs).transpose(0, 3, 1, 2).copy(), "float32")
        anchors = model.anchors_grid_units.detach()
        preds = model(x)
        total, parts = port.function("loss.yolov5_loss")(preds, port.to_inputs(targets, "float32"), anchors)
        total.backward()
        finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
        ref_total, ref_parts = rl.yolov5_loss([p.detach().double().cpu().numpy() for p in preds], targets,
                                              anchors.double().cpu().numpy())
        cache["out"] = (parts, ref_parts, finite, sum(p.numel() for p in model.parameters()))
        return cache["out"]

    for k in ("box", "obj", "cls"):
        a.compare("train", f"yolov5n head output: port loss {k} = ref (f32 vs f64)", len(targets),
                  lambda k=k: (forward()[0][k], np.float32(forward()[1][k])), "loss.yolov5_loss", "float32",
                  port=True)
    a.flag("train", "backward through the model: finite gradients", 0, lambda: forward()[2], "finite")


# ----------------------------------------------------------------------------- report

def run(samples: list[Sample], root: Path, dataset, names: Sequence[str], backend: str = "torch",
        device: str = "cpu") -> list[Row]:
    """The rows of the stages ``names`` on a loaded set (see :func:`load_set`)."""
    audit = Audit(samples, Path(root), dataset, backend, device)
    for name in names:
        try:
            STAGES[name](audit)
        except Skip as why:
            audit.rows.append(Row(name, "stage skipped", 0, float("nan"), "-", SKIP, str(why)))
        except Exception as exc:  # noqa: BLE001 - a crashing stage is a FAIL, not a crash of the audit
            audit.rows.append(Row(name, f"crashed: {type(exc).__name__}: {exc}", 0, float("inf"), "-", FAIL))
    return audit.rows


def format_table(rows: list[Row]) -> str:
    """The table as text: one line per row, SKIP rows with their reason underneath."""
    head = f"{'stage':<8} {'check':<56} {'cases':>7} {'max dev':>9} {'tol':>14}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        dev = "-" if np.isnan(r.max_dev) else ("inf" if not np.isfinite(r.max_dev) else f"{r.max_dev:.2e}")
        lines.append(f"{r.stage:<8} {r.check[:56]:<56} {r.cases:>7} {dev:>9} {r.tol:>14}  {r.status}")
        if r.status == FAIL and r.note:
            lines.append(f"{'':<8}   {r.note[:150]}")
    reasons: dict[str, int] = {}
    for r in rows:
        if r.status == SKIP:
            reasons[r.note] = reasons.get(r.note, 0) + 1
    if reasons:
        lines += ["", "skipped:"] + [f"  {n:>3} rows: {why}" for why, n in reasons.items()]
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """'N passed, M failed, K skipped'."""
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, SKIP)}
    return f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"


def main(argv: Sequence[str] | None = None) -> int:
    p = make_parser("audit", __doc__)
    p.add_argument("--data", type=Path, default=None,
                   help="YOLO-txt data set (DIR/labels + DIR/images); default: fixtures/shapes of the "
                        "checkout, else a generated shapes set")
    p.add_argument("--stages", default="all", help=f"comma list of {', '.join(STAGES)}, or 'all'")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    add_backend(p)
    add_device(p)
    args = p.parse_args(argv)
    names = list(STAGES) if args.stages == "all" else [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UsageError(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    if args.backend == "ref" and args.device != "cpu":
        raise UsageError(f"--device: the reference runs on the CPU, got {args.device!r} with --backend ref")
    if args.backend == "torch" and args.device.startswith("cuda") and get_side("torch", args.device).available():
        raise UsageError(f"--device {args.device}: {get_side('torch', args.device).available()}")
    with tempfile.TemporaryDirectory(prefix="yolo-ref-audit-") as tmp:
        root = args.data
        if root is None:
            root = FIXTURE if FIXTURE.is_dir() else _generate_shapes(Path(tmp) / "shapes")
        dataset, samples = load_set(root)
        n_boxes = sum(len(s.classes) for s in samples)
        port = get_side("torch", args.device) if args.backend == "torch" else None
        where = f"port {port}" if port and not port.available() else "port not audited"
        print(f"audit: {len(samples)} images, {n_boxes} boxes from {root}; reference {REF.package}, {where}")
        rows = run(samples, Path(root), dataset, names, args.backend, args.device)
    print(format_table(rows))
    print(f"\n{summary(rows)}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2, default=float))
    return EXIT_CHECK_FAILED if any(r.status == FAIL for r in rows) else EXIT_OK
