"""Benchmark the torch assigners of ``torch_impl.assign`` against simple baselines.

1. YOLOv5 ``yolov5_build_targets`` (batch 16, 160 targets, 640 px, 3 levels x 3 anchors) against
   two straightforward per-target Python loops written below (same rows; checked before
   timing): one over torch tensors (as training code often is; the goal's baseline: the port
   >= 50x faster) and one on plain Python floats (a harder baseline, reported too).
2. ``task_aligned_assign`` (16 images x 8,400 anchors x 80 classes x 10 GTs, float32) against
   the NumPy reference on the same inputs (checked equal before timing). Goal: < 40 ms on CPU.

Prints one line per measurement (median of --repeat runs after a warm-up) and the ratios.

examples:
  yolo-ref bench assign
  yolo-ref bench assign --repeat 20 --threads 0     # torch's default thread count
  yolo-ref bench assign --device cuda --json bench_assign.json
  yolo-ref bench assign --strict                    # exit 1 when a goal is missed
  yolo-ref bench assign --img-size 160 --batch 2    # a quick smoke run

Exit codes: 0 done; 1 a port disagrees with its baseline (or, with --strict, a goal missed);
2 bad arguments.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_device,
                                  add_img_size, make_parser, require, run)

STRIDES = (8, 16, 32)
ANCHORS_PX = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                       [[116, 90], [156, 198], [373, 326]]], dtype=np.float64)


# ----------------------------------------------------------------------------- baselines

def loop_build_targets(targets, anchors, grid_sizes, anchor_t=4.0, g=0.5):
    """A straightforward YOLOv5 assigner: for each level, target and anchor, in Python.

    Returns per level a list of rows ``(b, a, gj, gi, cls, tx, ty, tw, th)`` (clamped cells,
    tbox against the clamped cell, as YOLOv5 does)."""
    out = []
    for lv, (ny, nx) in enumerate(grid_sizes):
        rows = []
        for b, c, cx, cy, w, h in targets.tolist():
            gx, gy, gw, gh = cx * nx, cy * ny, w * nx, h * ny
            for a, (aw, ah) in enumerate(anchors[lv].tolist()):
                rw, rh = gw / aw, gh / ah
                if max(rw, 1 / rw, rh, 1 / rh) >= anchor_t:
                    continue
                cells = [(0.0, 0.0)]
                if gx % 1 < g and gx > 1:
                    cells.append((g, 0.0))
                if gy % 1 < g and gy > 1:
                    cells.append((0.0, g))
                if (nx - gx) % 1 < g and nx - gx > 1:
                    cells.append((-g, 0.0))
                if (ny - gy) % 1 < g and ny - gy > 1:
                    cells.append((0.0, -g))
                for ox, oy in cells:
                    gi = min(max(int(gx - ox), 0), nx - 1)
                    gj = min(max(int(gy - oy), 0), ny - 1)
                    rows.append((int(b), a, gj, gi, int(c), gx - gi, gy - gj, gw, gh))
        out.append(rows)
    return out


def loop_build_targets_torch(targets, anchors, grid_sizes, anchor_t=4.0, g=0.5):
    """The same per-target loop written the way PyTorch training code often is: one target
    (a tensor row) at a time, tensor ops over that level's anchors, rows concatenated at the
    end. Returns per level ``(b, a, gj, gi, cls)`` int64 [n, 5] and tbox [n, 4]."""
    import torch

    out = []
    for lv, (ny, nx) in enumerate(grid_sizes):
        grid = torch.tensor([nx, ny], dtype=targets.dtype, device=targets.device)
        idx_rows, box_rows = [], []
        for row in targets:
            gxy, gwh = row[2:4] * grid, row[4:6] * grid
            r = gwh / anchors[lv]  # [na, 2]
            ok = torch.maximum(r, 1 / r).amax(1) < anchor_t
            for a in ok.nonzero()[:, 0]:
                offs = [torch.zeros(2, dtype=gxy.dtype, device=gxy.device)]
                if gxy[0] % 1 < g and gxy[0] > 1:
                    offs.append(torch.tensor([g, 0.0], dtype=gxy.dtype, device=gxy.device))
                if gxy[1] % 1 < g and gxy[1] > 1:
                    offs.append(torch.tensor([0.0, g], dtype=gxy.dtype, device=gxy.device))
                if (grid[0] - gxy[0]) % 1 < g and grid[0] - gxy[0] > 1:
                    offs.append(torch.tensor([-g, 0.0], dtype=gxy.dtype, device=gxy.device))
                if (grid[1] - gxy[1]) % 1 < g and grid[1] - gxy[1] > 1:
                    offs.append(torch.tensor([0.0, -g], dtype=gxy.dtype, device=gxy.device))
                for off in offs:
                    gij = (gxy - off).long()
                    gij = torch.minimum(gij.clamp(min=0), (grid - 1).long())
                    idx_rows.append(torch.stack([row[0].long(), a, gij[1], gij[0], row[1].long()]))
                    box_rows.append(torch.cat([gxy - gij, gwh]))
        out.append((torch.stack(idx_rows) if idx_rows else torch.zeros((0, 5), dtype=torch.long),
                    torch.stack(box_rows) if box_rows else torch.zeros((0, 4))))
    return out


def port_rows(out) -> list:
    """``yolov5_build_targets`` outputs (either side) as per-level sorted row tuples
    ``(b, a, gj, gi, cls, tx, ty, tw, th)``, comparable with :func:`loop_build_targets`."""
    tcls, tbox, indices, _ = out
    levels = []
    tolist = lambda x: x.tolist()  # noqa: E731 (tensors and arrays alike)
    for c, tb, (b, a, gj, gi) in zip(tcls, tbox, indices):
        cols = [b, a, gj, gi, c]
        rows = zip(*(tolist(x) for x in cols), *(tolist(tb[:, k]) for k in range(4)))
        levels.append(sorted(rows))
    return levels


# ----------------------------------------------------------------------------- inputs

def v5_inputs(rng, batch=16, n_targets=160, size=640):
    """(targets [n_targets, 6], anchors [3, 3, 2] grid units, grids) of the YOLOv5 benchmark:
    random boxes of 4..size/2 px inside the image, YOLOv5's default anchors."""
    img = rng.integers(0, batch, n_targets)
    cls = rng.integers(0, 80, n_targets)
    wh = rng.uniform(4, size / 2, (n_targets, 2)) / size  # 4..320 px at 640
    cxy = rng.uniform(wh / 2, 1 - wh / 2)
    targets = np.concatenate([img[:, None], cls[:, None], cxy, wh], 1).astype(np.float64)
    anchors = ANCHORS_PX / np.array(STRIDES, dtype=np.float64)[:, None, None]
    grids = [(size // s, size // s) for s in STRIDES]
    return targets, anchors, grids


def tal_inputs(rng, batch=16, n_gt=10, nc=80, size=640):
    """([pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt], nc) of the TAL
    benchmark: cell-centre points of strides 8, 16, 32, random scores, boxes up to 64 px from
    their point, GTs of 4..256 px, 80% of them real."""
    pts = []
    for s in STRIDES:
        ys, xs = np.meshgrid(np.arange(size // s) + 0.5, np.arange(size // s) + 0.5, indexing="ij")
        pts.append(np.stack([xs, ys], -1).reshape(-1, 2) * s)
    anc = np.concatenate(pts)  # [8400, 2]
    A = len(anc)
    scores = rng.uniform(0, 1, (batch, A, nc))
    dist = rng.uniform(0, 64, (batch, A, 4))
    pd = np.concatenate([anc - dist[..., :2], anc + dist[..., 2:]], -1)
    xy = rng.uniform(0, size - 64, (batch, n_gt, 2))
    wh = rng.uniform(4, 256, (batch, n_gt, 2))
    gt = np.concatenate([xy, np.minimum(xy + wh, size)], -1)
    labels = rng.integers(0, nc, (batch, n_gt, 1)).astype(np.float64)
    mask = (rng.uniform(size=(batch, n_gt, 1)) < 0.8).astype(np.float64)
    return [scores, pd, anc, labels, gt, mask], nc


# ----------------------------------------------------------------------------- timing

def timed(fn, repeat: int, sync=lambda: None) -> float:
    """Median seconds of ``repeat`` calls of ``fn`` after one warm-up (``sync`` after each)."""
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _main(argv: Sequence[str] | None) -> int:
    ap = make_parser("bench assign", __doc__)
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per measurement (median)")
    ap.add_argument("--loop-repeat", type=int, default=3, help="timed runs of the Python loops")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: the baselines are single-threaded, and on a loaded "
                         "machine OpenMP threads spin against other processes; 0: torch's default)")
    add_device(ap)
    add_img_size(ap)
    ap.add_argument("--batch", type=int, default=16, help="images per batch (both benchmarks)")
    ap.add_argument("--targets", type=int, default=160, help="YOLOv5 targets per batch")
    ap.add_argument("--seed", type=int, default=0, help="data seed")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    try:
        args = ap.parse_args(argv)
        if args.repeat < 1 or args.loop_repeat < 1:
            ap.error("--repeat and --loop-repeat must be >= 1")
        if args.batch < 1 or args.targets < 1 or args.img_size < 64 or args.img_size % 32:
            ap.error("--batch, --targets must be >= 1 and --img-size a multiple of 32, >= 64")
    except SystemExit as exc:  # --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    torch = require("torch", "bench assign", extra="torch")
    from ref_numpy import assign as R
    from torch_impl import assign as T

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise UsageError(f"--device {args.device!r} is not usable: {exc}") from exc
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(args.seed)
    results = {"device": str(device), "threads": torch.get_num_threads()}
    status = EXIT_OK

    # ---- YOLOv5
    targets, anchors, grids = v5_inputs(rng, args.batch, args.targets, args.img_size)
    tt = torch.from_numpy(targets).float().to(device)
    ta = torch.from_numpy(anchors).float().to(device)
    # correctness first, in float64 (the loop computes in Python floats): same rows as sets
    port64 = T.yolov5_build_targets(torch.from_numpy(targets).to(device),
                                    torch.from_numpy(anchors).to(device), grids)
    loop_out = loop_build_targets(targets, anchors, grids)
    if port_rows(port64) != [sorted(rows) for rows in loop_out]:
        print("FAIL: yolov5_build_targets port and the Python loop disagree", file=sys.stderr)
        status = EXIT_CHECK_FAILED
    port_out = T.yolov5_build_targets(tt, ta, grids)
    torch_loop = loop_build_targets_torch(torch.from_numpy(targets).to(device),
                                          torch.from_numpy(anchors).to(device), grids)
    for (idx, box), (c, tb, ind, _) in zip(torch_loop, zip(*port64)):
        mine = torch.cat([torch.stack([*ind, c], 1).double(), tb], 1)
        theirs = torch.cat([idx.double().to(mine.device), box.to(mine.device)], 1)
        if not torch.equal(torch.sort(mine, 0).values, torch.sort(theirs, 0).values):
            print("FAIL: yolov5_build_targets port and the torch loop disagree", file=sys.stderr)
            status = EXIT_CHECK_FAILED
    t_port = timed(lambda: T.yolov5_build_targets(tt, ta, grids), args.repeat, sync)
    t_loop = timed(lambda: loop_build_targets(targets, anchors, grids), args.loop_repeat)
    t_tloop = timed(lambda: loop_build_targets_torch(tt, ta, grids), args.loop_repeat, sync)
    ratio, ratio_t = t_loop / t_port, t_tloop / t_port
    n_rows = sum(len(c) for c in port_out[0])
    print(f"yolov5_build_targets  {args.batch} img x {args.targets} targets, 3x3 anchors, "
          f"{n_rows} rows (float32)")
    print(f"  torch port ({device})  {t_port * 1e3:9.3f} ms")
    print(f"  per-target torch loop {t_tloop * 1e3:9.3f} ms   ratio {ratio_t:7.1f}x (goal >= 50x: "
          f"{'met' if ratio_t >= 50 else 'MISSED'})")
    print(f"  per-target float loop {t_loop * 1e3:9.3f} ms   ratio {ratio:7.1f}x (plain Python "
          "floats, no tensors: a harder baseline)")
    results["yolov5"] = {"port_ms": t_port * 1e3, "torch_loop_ms": t_tloop * 1e3,
                         "float_loop_ms": t_loop * 1e3, "ratio_torch_loop": ratio_t,
                         "ratio_float_loop": ratio, "rows": n_rows, "goal_met": ratio_t >= 50}

    # ---- TAL
    tal_np, nc = tal_inputs(rng, batch=args.batch, size=args.img_size)
    tal_np32 = [x.astype(np.float32) for x in tal_np]
    tal_t = [torch.from_numpy(x).to(device) for x in tal_np32]
    kw = {"topk": 10, "num_classes": nc}
    port = T.task_aligned_assign(*tal_t, **kw)
    ref = R.task_aligned_assign(*tal_np32, **kw)
    # target scores: float32 normalisation on both sides, summed in a different order
    agree = (np.array_equal(port[3].cpu().numpy(), ref[3])
             and np.array_equal(port[4].cpu().numpy(), ref[4])
             and float(np.abs(port[2].cpu().numpy() - ref[2]).max(initial=0.0)) < 1e-4)
    if not agree:
        print("FAIL: task_aligned_assign port and reference disagree", file=sys.stderr)
        status = EXIT_CHECK_FAILED
    n_points = tal_np[2].shape[0]
    t_tal = timed(lambda: T.task_aligned_assign(*tal_t, **kw), args.repeat, sync)
    t_ref = timed(lambda: R.task_aligned_assign(*tal_np32, **kw), max(1, args.loop_repeat))
    t_floor = timed(lambda: torch.zeros_like(tal_t[0]), args.repeat, sync)
    goal = t_tal < 0.040
    print(f"task_aligned_assign   {args.batch} img x {n_points} anchors x {nc} classes x 10 GTs "
          f"(float32), {int(port[3].sum())} positives")
    print(f"  torch port ({device})  {t_tal * 1e3:9.3f} ms   (goal < 40 ms on CPU: "
          f"{'met' if goal else 'MISSED'})")
    print(f"  numpy reference       {t_ref * 1e3:9.3f} ms   ratio {t_ref / t_tal:7.1f}x")
    print(f"  (floor: zero-filling the {list(tal_t[0].shape)} target_scores alone takes "
          f"{t_floor * 1e3:.3f} ms)")
    results["tal"] = {"port_ms": t_tal * 1e3, "numpy_ms": t_ref * 1e3, "ratio": t_ref / t_tal,
                      "zero_fill_ms": t_floor * 1e3, "goal_met": goal}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(torch threads: {torch.get_num_threads()}; 1-min load average {load:.1f} on "
          f"{os.cpu_count()} CPUs: timings on a shared machine are upper bounds)")
    results["load_average"] = load
    if args.json:
        try:
            args.json.write_text(json.dumps(results, indent=2))
        except OSError as exc:
            raise UsageError(f"--json {args.json}: {exc}") from exc
    if status == EXIT_OK and args.strict and not (results["yolov5"]["goal_met"] and goal):
        status = EXIT_CHECK_FAILED
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench assign`` (see the module docstring); bad input exits with code 2."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
