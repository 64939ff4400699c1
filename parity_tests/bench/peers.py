"""The toolkit against the libraries users would pick instead, each timed in the same process.

Every row builds one input, runs the toolkit's function and the peer's on it, checks that the two
agree (the row is marked DIFFER and the exit code is 1 when they do not), then times both (median of
--repeats after a warm-up) and prints ratio = toolkit / peer (below 1 is faster) beside the goal.
Peers are optional packages, never dependencies of the toolkit: a row whose peer is not importable
prints "peer absent" (install them in a separate environment: torchvision, yolov5 (7.0.x),
ultralytics (8.4), faster-coco-eval). One thread unless --threads says otherwise.

rows (--rows takes a comma-separated subset):
  postprocess       non_max_suppression, 16 x 25,200 x 80 random predictions, conf 0.25 / iou 0.45 vs yolov5
  postprocess-val   the same at validation settings conf 0.001 / iou 0.6 (yolov5's time limit disabled)
  batched-nms       batched_nms, 5,000 and 20,000 boxes, 80 classes vs torchvision.ops.batched_nms
  nms               nms, 5,000 random boxes, and a long suppression chain vs torchvision.ops.nms
  v8-loss           yolov8_loss forward, batch 16, 640 px, 80 classes vs ultralytics v8DetectionLoss
  tal               task_aligned_assign, 16 x 8,400 anchors x 80 classes x 10 GTs vs ultralytics TaskAlignedAssigner
  v5-loss           yolov5_loss forward / forward + backward vs yolov5 ComputeLoss
  coco              coco_evaluate (port), 1,000 images / 100k detections vs faster-coco-eval
  v5n               YOLOv5n training step (bs 8, 320 px) and eval forward (640 px) vs yolov5

examples:
  yolo-ref bench peers
  yolo-ref bench peers --rows nms,batched-nms --repeats 5
  yolo-ref bench peers --quick
  yolo-ref bench peers --device cuda

Exit codes: 0 done; 1 a row's outputs disagreed with its peer (or a goal was missed under --strict);
2 bad arguments.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import os
import statistics
import sys
import time
import types
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_device, make_parser,
                                  require, run)

STRIDES = (8, 16, 32)


@dataclass
class Result:
    """One timed comparison: seconds of the toolkit and of the peer (None: peer absent)."""
    row: str
    work: str
    peer: str
    goal: float | None
    ours_s: float | None = None
    peer_s: float | None = None
    agree: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours_s is None or self.peer_s is None or self.peer_s <= 0:
            return None
        return self.ours_s / self.peer_s

    @property
    def met(self) -> bool | None:
        r = self.ratio
        return None if r is None or self.goal is None else r <= self.goal


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_both(res: Result, ours: Callable[[], object], peer: Callable[[], object], args) -> None:
    """Fill ``res`` with the median seconds of ``ours`` and ``peer`` (``args.repeats`` calls each,
    synchronised on ``args.device``)."""
    sync = _sync(args.device)
    res.ours_s = timed(ours, args.repeats, sync)
    res.peer_s = timed(peer, args.repeats, sync)


def _peer(name: str):
    """The peer module, or None when it is not importable (numpy.trapz shim for yolov5 7.0)."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # yolov5 7.0.x calls numpy.trapz (gone in NumPy 2.4)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "absent" for a benchmark
        return None


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- inputs

def yolo_predictions(rng: np.random.Generator, batch: int, anchors: int, nc: int,
                     size: float = 640.0) -> np.ndarray:
    """Random YOLOv5 head outputs after sigmoid/decode: [batch, anchors, 5 + nc] float32
    (xywh pixels, centres uniform, sides 4..200 px; objectness and class scores uniform)."""
    xy = rng.uniform(0, size, (batch, anchors, 2))
    wh = rng.uniform(4, 200, (batch, anchors, 2))
    scores = rng.uniform(0, 1, (batch, anchors, 1 + nc))
    return np.concatenate([xy, wh, scores], -1).astype(np.float32)


def random_boxes(rng: np.random.Generator, n: int, size: float = 640.0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 xyxy boxes (centres uniform, sides 10..100 px) and uniform scores."""
    c = rng.uniform(0, size, (n, 2))
    s = rng.uniform(10, 100, (n, 2))
    return np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)


def chain_boxes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The long-chain worst case: n 10 px boxes, each shifted by 1 px along x from the previous,
    scores descending: every box overlaps its next three above IoU 0.5, so greedy NMS at 0.5 keeps
    every fourth one, each decision depending on the one before (no early exit, no independent blocks)."""
    x = np.arange(n, dtype=np.float32)
    boxes = np.stack([x, np.zeros(n, np.float32), x + 10.0, np.full(n, 10.0, np.float32)], 1)
    return boxes, np.linspace(1.0, 0.0, n, dtype=np.float32)


# ----------------------------------------------------------------------------- rows

def same_keep(a, b, scores) -> bool:
    """Two NMS results agree: the same kept indices, in the same score order (boxes of equal
    score may come in either order: torchvision's sort is not stable)."""
    import torch
    return (a.shape == b.shape and torch.equal(a.sort().values, b.sort().values)
            and torch.equal(scores[a], scores[b]))


def same_rows(a, b) -> bool:
    """Two post-processed outputs ``[n, 6]`` agree: the same score column in order and the same
    rows; rows of equal score may come in either order (the sort under NMS is not stable: at 16
    images the random predictions hold float32 ties, e.g. 0.98851 twice, that yolov5 and the
    toolkit order differently)."""
    import torch
    if a.shape != b.shape or not torch.allclose(a[:, 4], b[:, 4]):
        return False
    def canon(x):
        x = x.detach().cpu().double().numpy()
        return x[np.lexsort(x.T[::-1])]
    return bool(np.allclose(canon(a), canon(b)))


def _row_postprocess(args, conf: float, iou: float, name: str, goal: float) -> Result:
    import torch

    from torch_impl.nms import non_max_suppression
    res = Result(name, f"non_max_suppression, {args.batch} x 25,200 x 80, conf {conf} iou {iou}",
                 "yolov5 7.0 non_max_suppression", goal)
    general = _peer("yolov5.utils.general")
    if general is None:
        res.note = "peer absent (pip install yolov5)"
        return res
    rng = np.random.default_rng(0)
    pred = torch.from_numpy(yolo_predictions(rng, args.batch, 25200, 80)).to(args.device)

    def peer():
        real_time = general.time
        general.time = types.SimpleNamespace(time=lambda: 0.0)  # disable its wall-clock limit
        try:
            return general.non_max_suppression(pred, conf, iou, max_det=300)
        finally:
            general.time = real_time

    def ours():
        return non_max_suppression(pred, conf, iou, max_det=300)

    a, b = ours(), peer()
    res.agree = len(a) == len(b) and all(same_rows(x, y) for x, y in zip(a, b))
    time_both(res, ours, peer, args)
    return res


def row_postprocess(args) -> list[Result]:
    return [_row_postprocess(args, 0.25, 0.45, "postprocess", 0.5)]


def row_postprocess_val(args) -> list[Result]:
    return [_row_postprocess(args, 0.001, 0.6, "postprocess-val", 0.3)]


def row_batched_nms(args) -> list[Result]:
    import torch

    from torch_impl.nms import batched_nms
    out = []
    tv = _peer("torchvision.ops")
    for n in ((500, 2000) if args.quick else (5000, 20000)):
        res = Result("batched-nms", f"batched_nms, {n:,} boxes, 80 classes", "torchvision.ops.batched_nms", 1.0)
        out.append(res)
        if tv is None:
            res.note = "peer absent (pip install torchvision)"
            continue
        rng = np.random.default_rng(n)
        b, s = random_boxes(rng, n)
        boxes, scores = torch.from_numpy(b).to(args.device), torch.from_numpy(s).to(args.device)
        idxs = torch.from_numpy(rng.integers(0, 80, n)).to(args.device)
        res.agree = same_keep(batched_nms(boxes, scores, idxs, 0.5), tv.batched_nms(boxes, scores, idxs, 0.5), scores)
        sync = _sync(args.device)
        res.ours_s = timed(lambda: batched_nms(boxes, scores, idxs, 0.5), args.repeats, sync)
        res.peer_s = timed(lambda: tv.batched_nms(boxes, scores, idxs, 0.5), args.repeats, sync)
    return out


def row_nms(args) -> list[Result]:
    import torch

    from torch_impl.nms import nms
    tv = _peer("torchvision.ops")
    out = []
    n = 500 if args.quick else 5000
    cases = [(f"nms, {n:,} random boxes", random_boxes(np.random.default_rng(5), n), 0.25),
             (f"nms, long chain of {n:,} overlapping boxes", chain_boxes(n), 1.0)]
    for work, (b, s), goal in cases:
        res = Result("nms", work, "torchvision.ops.nms", goal)
        out.append(res)
        if tv is None:
            res.note = "peer absent (pip install torchvision)"
            continue
        boxes, scores = torch.from_numpy(b).to(args.device), torch.from_numpy(s).to(args.device)
        res.agree = same_keep(nms(boxes, scores, 0.5), tv.nms(boxes, scores, 0.5), scores)
        sync = _sync(args.device)
        res.ours_s = timed(lambda: nms(boxes, scores, 0.5), args.repeats, sync)
        res.peer_s = timed(lambda: tv.nms(boxes, scores, 0.5), args.repeats, sync)
    return out


def _v8_inputs(args, nc: int = 80, reg_max: int = 16, n_targets: int = 160, size: int = 640):
    rng = np.random.default_rng(1)
    no = 4 * reg_max + nc
    preds = [rng.standard_normal((args.batch, no, size // s, size // s), dtype=np.float32) for s in STRIDES]
    wh = rng.uniform(0.01, 0.5, (n_targets, 2))
    cxy = rng.uniform(wh / 2, 1 - wh / 2)
    targets = np.concatenate([rng.integers(0, args.batch, (n_targets, 1)), rng.integers(0, nc, (n_targets, 1)),
                              cxy, wh], 1).astype(np.float32)
    targets = targets[np.argsort(targets[:, 0], kind="stable")]
    return preds, targets


def row_v8_loss(args) -> list[Result]:
    import torch

    from torch_impl.loss import yolov8_loss
    res = Result("v8-loss", f"yolov8_loss forward, batch {args.batch}, 640 px, 80 classes",
                 "ultralytics 8.4 v8DetectionLoss", 0.7)
    uloss = _peer("ultralytics.utils.loss")
    if uloss is None:
        res.note = "peer absent (pip install ultralytics)"
        return [res]
    preds, targets = _v8_inputs(args)
    dev = args.device
    t_preds = [torch.from_numpy(p).to(dev) for p in preds]
    t_targets = torch.from_numpy(targets).to(dev)
    nc, reg_max = 80, 16

    class Detect(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.nc, self.reg_max = nc, reg_max
            self.stride = torch.tensor([float(s) for s in STRIDES])

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device=dev))
            self.model = torch.nn.ModuleList([Detect()])
            self.args = types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)

    crit = uloss.v8DetectionLoss(Model())
    flat = [p.flatten(2) for p in t_preds]
    pdict = {"boxes": torch.cat([f[:, :4 * reg_max] for f in flat], 2),
             "scores": torch.cat([f[:, 4 * reg_max:] for f in flat], 2), "feats": t_preds}
    batch = {"batch_idx": t_targets[:, 0], "cls": t_targets[:, 1:2], "bboxes": t_targets[:, 2:]}
    kw = {"version": "8.4"} if _accepts(yolov8_loss, "version") else {}
    if not kw:
        res.note = "toolkit's yolov8_loss has no version='8.4' yet: values may differ"

    def ours():
        with torch.no_grad():
            return yolov8_loss(t_preds, t_targets, [float(s) for s in STRIDES], **kw)[0]

    def peer():
        with torch.no_grad():
            return crit(pdict, batch)[0].sum()

    a, b = float(ours()), float(peer())
    res.agree = abs(a - b) <= 1e-4 * max(1.0, abs(b))
    if not res.agree:
        res.note = (res.note + f"; ours {a:.6f} vs peer {b:.6f}").lstrip("; ")
    time_both(res, ours, peer, args)
    return [res]


def row_tal(args) -> list[Result]:
    import torch

    from parity_tests.bench.assign import tal_inputs
    from torch_impl.assign import task_aligned_assign
    res = Result("tal", f"task_aligned_assign, {args.batch} x 8,400 x 80 x 10 GTs",
                 "ultralytics 8.4 TaskAlignedAssigner", 0.5)
    tal = _peer("ultralytics.utils.tal")
    if tal is None:
        res.note = "peer absent (pip install ultralytics)"
        return [res]
    arrays, nc = tal_inputs(np.random.default_rng(3), batch=args.batch)
    t = [torch.from_numpy(np.asarray(a, dtype=np.float32)).to(args.device) for a in arrays]
    assigner = tal.TaskAlignedAssigner(topk=10, num_classes=nc, alpha=0.5, beta=6.0, stride=list(STRIDES))
    kw = {"version": "8.4"} if _accepts(task_aligned_assign, "version") else {}
    if _accepts(task_aligned_assign, "strides") and kw:
        kw["strides"] = list(STRIDES)
    if not kw:
        res.note = "toolkit's task_aligned_assign has no version='8.4' yet: values may differ"

    def ours():
        return task_aligned_assign(*t, topk=10, num_classes=nc, **kw)

    def peer():
        with torch.no_grad():
            return assigner(*t)

    a, b = ours(), peer()
    res.agree = all(torch.allclose(x.float(), y.float(), atol=1e-5) for x, y in zip(a, b))
    time_both(res, ours, peer, args)
    return [res]


def row_v5_loss(args) -> list[Result]:
    import torch

    from parity_tests.bench.loss import make_batch
    from torch_impl.loss import yolov5_loss
    fwd = Result("v5-loss", f"yolov5_loss forward (finiteness check on), batch {args.batch}, 640 px",
                 "yolov5 7.0 ComputeLoss", 0.7)
    fb = Result("v5-loss", f"yolov5_loss forward + backward, batch {args.batch}, 640 px",
                "yolov5 7.0 ComputeLoss", 0.7)
    loss_mod = _peer("yolov5.utils.loss")
    if loss_mod is None:
        fwd.note = fb.note = "peer absent (pip install yolov5)"
        return [fwd, fb]
    preds, targets, anchors = make_batch(args.batch, 640, 80, 160)
    dev = args.device
    t_preds = [torch.from_numpy(p).to(dev) for p in preds]
    t_targets = torch.from_numpy(targets).to(dev)
    t_anchors = torch.from_numpy(anchors).to(dev)

    class Detect(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.na, self.nc, self.nl = 3, 80, 3
            self.anchors = t_anchors

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device=dev))
            self.model = torch.nn.ModuleList([Detect()])
            self.hyp = {"box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0,
                        "anchor_t": 4.0, "fl_gamma": 0.0, "label_smoothing": 0.0}

    crit = loss_mod.ComputeLoss(Model())
    a = float(yolov5_loss(t_preds, t_targets, t_anchors)[0])
    b = float(crit(t_preds, t_targets)[0].sum())
    fwd.agree = fb.agree = abs(a - b) <= 1e-4 * max(1.0, abs(b))
    if not fwd.agree:
        fwd.note = f"ours {a:.6f} vs peer {b:.6f}"
    sync = _sync(dev)
    with torch.no_grad():
        fwd.ours_s = timed(lambda: yolov5_loss(t_preds, t_targets, t_anchors), args.repeats, sync)
        fwd.peer_s = timed(lambda: crit(t_preds, t_targets), args.repeats, sync)
    leaves = [p.clone().requires_grad_(True) for p in t_preds]

    def ours_fb():
        for x in leaves:
            x.grad = None
        yolov5_loss(leaves, t_targets, t_anchors)[0].backward()

    def peer_fb():
        for x in leaves:
            x.grad = None
        crit(leaves, t_targets)[0].sum().backward()

    fb.ours_s = timed(ours_fb, args.repeats, sync)
    fb.peer_s = timed(peer_fb, args.repeats, sync)
    return [fwd, fb]


def row_coco(args) -> list[Result]:
    from parity_tests.bench.map import FASTER_COCO_EVAL_ATOL, run_oracle, run_ours
    from ref_numpy.shared.synthetic import synthetic_coco
    n_img = 200 if args.quick else 1000
    res = Result("coco", f"coco_evaluate (port), {n_img:,} images / {100 * n_img:,} detections",
                 "faster-coco-eval 1.8", 0.5)
    if _peer("faster_coco_eval") is None:
        res.note = "peer absent (pip install faster-coco-eval)"
        return [res]
    gt, dets = synthetic_coco(n_img / 5000, seed=7)
    ours_t, peer_t = [], []
    for _ in range(max(1, args.repeats // 2)):
        a, t = run_ours(gt, dets, "torch_impl", device=args.device)
        ours_t.append(t)
        b, t = run_oracle(gt, dets, "faster_coco_eval")
        peer_t.append(t)
    res.agree = bool(np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                 rtol=0, atol=FASTER_COCO_EVAL_ATOL))
    if not res.agree:
        res.note = f"max |stats diff| {np.abs(np.asarray(a) - np.asarray(b)).max():.2e}"
    res.ours_s, res.peer_s = statistics.median(ours_t), statistics.median(peer_t)
    return [res]


def row_v5n(args) -> list[Result]:
    import torch

    from torch_impl.loss import yolov5_loss
    from torch_impl.models import to_yolov5_state_dict, yolov5
    step = Result("v5n", "YOLOv5n training step (bs 8, 320 px: forward, loss, backward)", "yolov5 7.0", 0.6)
    ev = Result("v5n", "YOLOv5n eval forward (bs 1, 640 px)", "yolov5 7.0", 0.9)
    # the same with the toolkit's --channels-last (yolov5's trainer has no such option: its row
    # is what a yolov5 user runs); same values up to the kernels' summation order
    step_cl = Result("v5n", "  the same step, toolkit --channels-last", "yolov5 7.0", 0.6)
    ev_cl = Result("v5n", "  the same eval forward, toolkit channels-last", "yolov5 7.0", 0.9)
    rows = [step, ev, step_cl, ev_cl]
    official_yolo = _peer("yolov5.models.yolo")
    loss_mod = _peer("yolov5.utils.loss")
    if official_yolo is None or loss_mod is None:
        for r in rows:
            r.note = "peer absent (pip install yolov5)"
        return rows
    from pathlib import Path
    dev = args.device
    torch.manual_seed(0)
    ours = yolov5("n", nc=80).to(dev)
    with contextlib.redirect_stdout(sys.stderr):
        official = official_yolo.DetectionModel(str(Path(official_yolo.__file__).parent / "yolov5n.yaml"),
                                                ch=3, nc=80).to(dev)
    official.load_state_dict(to_yolov5_state_dict(ours))
    # copied before any training step: each model then takes the same number of steps, so the
    # BatchNorm statistics of all three agree at the eval comparison
    ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    official.hyp = {"box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0,
                    "fl_gamma": 0.0, "label_smoothing": 0.0}
    crit = loss_mod.ComputeLoss(official)
    rng = np.random.default_rng(11)
    x = torch.from_numpy(rng.uniform(0, 1, (8, 3, 320, 320)).astype(np.float32)).to(dev)
    n_t = 40
    wh = rng.uniform(0.02, 0.4, (n_t, 2))
    tg = np.concatenate([rng.integers(0, 8, (n_t, 1)), rng.integers(0, 80, (n_t, 1)),
                         rng.uniform(wh / 2, 1 - wh / 2), wh], 1).astype(np.float32)
    targets = torch.from_numpy(tg).to(dev)
    anchors = ours.head.anchors

    def ours_step(model=ours, x=x):
        model.train()
        model.zero_grad(set_to_none=True)
        loss = yolov5_loss(model(x), targets, anchors, check_finite=False)[0]
        loss.backward()
        return loss

    def peer_step():
        official.train()
        official.zero_grad(set_to_none=True)
        loss = crit(official(x), targets)[0]
        loss.backward()
        return loss

    def same_loss(res: Result, a: float, b: float) -> None:
        res.agree = abs(a - b) <= 1e-3 * max(1.0, abs(b))
        if not res.agree:
            res.note = f"loss ours {a:.5f} vs peer {b:.5f}"

    def first(out):
        return out[0] if isinstance(out, (tuple, list)) else out

    a, b = float(ours_step()), float(peer_step())
    same_loss(step, a, b)
    sync = _sync(dev)
    step.ours_s = timed(ours_step, args.repeats, sync)
    step.peer_s = timed(peer_step, args.repeats, sync)
    x1 = torch.from_numpy(rng.uniform(0, 1, (1, 3, 640, 640)).astype(np.float32)).to(dev)
    ours.eval()
    official.eval()
    with torch.no_grad():
        oa, ob = first(ours(x1)), first(official(x1))
        ev.agree = bool(torch.allclose(oa, ob, atol=1e-4))
        ev.ours_s = timed(lambda: ours(x1), args.repeats, sync)
        ev.peer_s = timed(lambda: official(x1), args.repeats, sync)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    same_loss(step_cl, float(ours_step(ours_cl, x_cl)), b)
    step_cl.ours_s = timed(lambda: ours_step(ours_cl, x_cl), args.repeats, sync)
    step_cl.peer_s = step.peer_s
    ours_cl.eval()
    x1_cl = x1.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ev_cl.agree = bool(torch.allclose(first(ours_cl(x1_cl)), ob, atol=1e-4))
        ev_cl.ours_s = timed(lambda: ours_cl(x1_cl), args.repeats, sync)
    ev_cl.peer_s = ev.peer_s
    return rows


ROWS: dict[str, Callable] = {
    "postprocess": row_postprocess, "postprocess-val": row_postprocess_val, "batched-nms": row_batched_nms,
    "nms": row_nms, "v8-loss": row_v8_loss, "tal": row_tal, "v5-loss": row_v5_loss, "coco": row_coco,
    "v5n": row_v5n,
}


def _sync(device: str) -> Callable[[], None]:
    if str(device).startswith("cuda"):
        import torch
        return torch.cuda.synchronize
    return lambda: None


def format_table(results: Sequence[Result]) -> str:
    """The Markdown table the README carries: work, peer, both times, ratio, goal, met."""
    lines = ["| work | peer | toolkit | peer | ratio | goal | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if r.ratio is None:
            lines.append(f"| {r.work} | {r.peer} | | | | {r.goal} | {r.note} |")
            continue
        met = "yes" if r.met else "NO"
        if r.agree is False:
            met += " (outputs DIFFER)"
        if r.note:
            met += f"; {r.note}"
        lines.append(f"| {r.work} | {r.peer} | {r.ours_s * 1e3:.1f} ms | {r.peer_s * 1e3:.1f} ms | "
                     f"{r.ratio:.2f} | <= {r.goal} | {met} |")
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    p = make_parser("bench peers", __doc__)
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--batch", type=int, default=16, help="images per batch (postprocess, losses, TAL)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--quick", action="store_true", help="smaller inputs and 2 repeats (a smoke run)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    add_device(p)
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        raise UsageError(f"--rows: unknown row(s) {bad}, expected some of {list(ROWS)}")
    if args.repeats < 1 or args.batch < 1 or args.threads < 1:
        raise UsageError("--repeats, --batch and --threads must be >= 1")
    if args.quick:
        args.repeats, args.batch = 2, min(args.batch, 2)
    torch = require("torch", "bench peers")
    torch.set_num_threads(args.threads)
    results: list[Result] = []
    for name in rows:
        print(f"-- {name}", file=sys.stderr, flush=True)
        results.extend(ROWS[name](args))
    print(f"device {args.device}, {args.threads} thread(s), median of {args.repeats}; ratio = toolkit / peer")
    print(format_table(results))
    if any(r.agree is False for r in results):
        return EXIT_CHECK_FAILED
    if args.strict and any(r.met is False for r in results):
        return EXIT_CHECK_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench peers``: 0 done; 1 a disagreement (or a missed goal with --strict); 2 bad arguments."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
