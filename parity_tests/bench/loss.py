"""Benchmark the YOLO losses of ``torch_impl.loss`` against the NumPy reference values.

A YOLOv5 training step's loss: batch 16 at 640 px (grids 80/40/20, 3 anchors each, the default
v7.0 anchors), nc = 80, 160 targets; port forward, port forward + backward, reference forward
(values only), all float32 on CPU unless --device says otherwise, plus the ratio to the
reference in the same run. The goal for the port's v5 forward on CPU is < 10 ms.

examples:
  yolo-ref bench loss
  yolo-ref bench loss --repeats 20 --threads 1
  yolo-ref bench loss --batch 4 --targets 40 --dtype float64
  yolo-ref bench loss --device cuda

Exit codes: 0 done; 2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np

import ref_numpy.loss as R
from ref_numpy.anchors import YOLOV5_ANCHORS as ANCHORS_PX
from ref_numpy.shared.cli import EXIT_OK, UsageError, add_device, add_img_size, make_parser, require, run

STRIDES = (8, 16, 32)


def make_batch(batch: int, imgsz: int, nc: int, n_targets: int, seed: int = 0):
    """Random head outputs (raw, N(0, 1)), normalised targets and anchors in grid units."""
    rng = np.random.default_rng(seed)
    preds = [rng.standard_normal((batch, 3, imgsz // s, imgsz // s, 5 + nc), dtype=np.float32)
             for s in STRIDES]
    targets = np.stack([rng.integers(0, batch, n_targets), rng.integers(0, nc, n_targets),
                        rng.uniform(0.05, 0.95, n_targets), rng.uniform(0.05, 0.95, n_targets),
                        rng.uniform(0.01, 0.5, n_targets), rng.uniform(0.01, 0.5, n_targets)],
                       1).astype(np.float32)
    anchors = (ANCHORS_PX / np.array(STRIDES, dtype=np.float64)[:, None, None]).astype(np.float32)
    return preds, targets, anchors


def timeit(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _parser():
    p = make_parser("bench loss", __doc__)
    p.add_argument("--batch", type=int, default=16, help="images per batch")
    add_img_size(p, 640)
    p.add_argument("--imgsz", dest="img_size", type=int, help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--nc", type=int, default=80, help="classes")
    p.add_argument("--targets", type=int, default=160, help="targets in the batch")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per row (median)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="floating dtype")
    add_device(p)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    torch = require("torch", "yolo-ref bench loss", extra="torch")
    P = require("torch_impl.loss", "yolo-ref bench loss", extra="torch")  # noqa: N806
    if min(args.batch, args.nc, args.repeats) < 1 or args.targets < 0 or args.img_size % 32:
        raise UsageError("--batch, --nc, --repeats, --targets, --img-size: need positive --batch/--nc/"
                         "--repeats, --targets >= 0, --img-size a multiple of 32")
    if args.threads:
        torch.set_num_threads(args.threads)

    preds, targets, anchors = make_batch(args.batch, args.img_size, args.nc, args.targets)
    preds = [p.astype(args.dtype) for p in preds]
    targets, anchors = targets.astype(args.dtype), anchors.astype(args.dtype)
    dev = torch.device(args.device)
    t_preds = [torch.from_numpy(p).to(dev) for p in preds]
    t_targets, t_anchors = torch.from_numpy(targets).to(dev), torch.from_numpy(anchors).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def port_forward(check_finite=True):
        with torch.no_grad():
            P.yolov5_loss(t_preds, t_targets, t_anchors, check_finite=check_finite)
        sync()

    leaves = [p.clone().requires_grad_(True) for p in t_preds]

    def port_forward_backward():
        for x in leaves:
            x.grad = None
        total, _ = P.yolov5_loss(leaves, t_targets, t_anchors)
        total.backward()
        sync()

    def reference():
        R.yolov5_loss(preds, targets, anchors)

    ref_val = float(R.yolov5_loss(preds, targets, anchors)[0])
    port_val = float(P.yolov5_loss(t_preds, t_targets, t_anchors)[0])
    n_pred = sum(p.shape[1] * p.shape[2] * p.shape[3] for p in preds)
    print(f"YOLOv5 loss: batch {args.batch}, {args.img_size} px ({n_pred} predictions/image), "
          f"nc {args.nc}, {args.targets} targets, {args.dtype}, device {dev}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  value: port {port_val:.6f}  reference {ref_val:.6f}  |diff| {abs(port_val - ref_val):.2e}")
    t_ref = timeit(reference, max(3, args.repeats // 3), warmup=1)
    t_fwd = timeit(port_forward, args.repeats)
    t_fwd_nc = timeit(lambda: port_forward(check_finite=False), args.repeats)
    t_fb = timeit(port_forward_backward, args.repeats)
    print(f"  {'reference forward (NumPy)':<30} {t_ref:9.2f} ms   1.00x speed-up (baseline)")
    print(f"  {'port forward':<30} {t_fwd:9.2f} ms   {t_ref / t_fwd:.2f}x speed-up"
          f"   (goal < 10 ms on CPU: {'met' if t_fwd < 10 else 'NOT met'})")
    print(f"  {'port forward, check_finite=False':<30} {t_fwd_nc:9.2f} ms   {t_ref / t_fwd_nc:.2f}x speed-up"
          f"   (goal < 10 ms on CPU: {'met' if t_fwd_nc < 10 else 'NOT met'})")
    print(f"  {'port forward + backward':<30} {t_fb:9.2f} ms   {t_ref / t_fb:.2f}x speed-up")
    bench_v8(args, dev, sync)
    return EXIT_OK


def bench_v8(args, dev, sync) -> None:
    """The Ultralytics 8.3 (the default ``version``, 8.3.253) v8 loss of the port on the same batch
    shape: reg_max 16, NCHW head outputs."""
    import torch

    import torch_impl.loss as P  # noqa: N812
    rng = np.random.default_rng(1)
    no = 4 * 16 + args.nc
    preds = [rng.standard_normal((args.batch, no, args.img_size // s, args.img_size // s),
                                 dtype=np.float32).astype(args.dtype) for s in STRIDES]
    _, targets, _ = make_batch(1, 32, args.nc, args.targets, seed=2)
    targets[:, 0] = rng.integers(0, args.batch, args.targets)
    targets = targets.astype(args.dtype)
    strides = [float(s) for s in STRIDES]
    t_preds = [torch.from_numpy(p).to(dev) for p in preds]
    t_targets = torch.from_numpy(targets).to(dev)
    leaves = [p.clone().requires_grad_(True) for p in t_preds]

    def port_forward():
        with torch.no_grad():
            P.yolov8_loss(t_preds, t_targets, strides)
        sync()

    def port_forward_backward():
        for x in leaves:
            x.grad = None
        P.yolov8_loss(leaves, t_targets, strides)[0].backward()
        sync()

    def reference():
        R.yolov8_loss(preds, targets, strides)

    ref_val = float(R.yolov8_loss(preds, targets, strides)[0])
    port_val = float(P.yolov8_loss(t_preds, t_targets, strides)[0])
    print(f"YOLOv8 loss: same batch, reg_max 16, {sum(p.shape[2] * p.shape[3] for p in preds)} anchors/image")
    print(f"  value: port {port_val:.6f}  reference {ref_val:.6f}  |diff| {abs(port_val - ref_val):.2e}")
    t_ref = timeit(reference, max(3, args.repeats // 3), warmup=1)
    t_fwd = timeit(port_forward, args.repeats)
    t_fb = timeit(port_forward_backward, args.repeats)
    print(f"  {'reference forward (NumPy)':<30} {t_ref:9.2f} ms   1.00x speed-up (baseline)")
    print(f"  {'port forward':<30} {t_fwd:9.2f} ms   {t_ref / t_fwd:.2f}x speed-up")
    print(f"  {'port forward + backward':<30} {t_fb:9.2f} ms   {t_ref / t_fb:.2f}x speed-up")


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench loss`` (see the module docstring); bad input exits with code 2."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
