#!/usr/bin/env python
"""Benchmark NMS on CPU: ``torch_impl.nms`` and ``ref_numpy.nms`` against ``torchvision.ops.nms``.

Boxes are YOLO-like: centres uniform in a 640 x 640 image, sides uniform in [10, 100] px, scores
uniform in [0, 1], float32. Each time is the median of ``--repeats`` runs after one warm-up run;
the ratio column is time / torchvision's time in the same run (< 1: faster than torchvision).
Every row also checks that the kept indices agree with torchvision (exactly; for the batched row
image by image), and the script exits with status 1 if any of them does not.

Rows: single-image NMS at each N of ``--sizes``, then ``--images`` images of ``--batch-n`` boxes
at once: ``torch_impl.nms_padded`` (one call) and ``torch_impl.batched_nms`` with the image as
category against a torchvision per-image loop and ``torchvision.ops.batched_nms``.

Examples:
    python scripts/bench_nms.py                    # N = 1000, 5000, 20000; 16 images of 1000
    python scripts/bench_nms.py --quick            # small sizes, 3 repeats: a smoke test
    python scripts/bench_nms.py --sizes 2000,8000 --repeats 9 --threads 0   # torch's threads
    python scripts/bench_nms.py --no-ref           # skip the (slow) NumPy reference
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchvision  # noqa: E402

import ref_numpy.nms as R  # noqa: E402
import torch_impl.nms as T  # noqa: E402


def make_boxes(rng: np.random.Generator, n: int,
               size: float = 640.0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 xyxy boxes (centres uniform in the image, sides in [10, 100]) and scores."""
    centres = rng.uniform(0.0, size, (n, 2))
    sides = rng.uniform(10.0, 100.0, (n, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
    return boxes.astype(np.float32), rng.uniform(0.0, 1.0, n).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up call, and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Examples:"):],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,20000",
                        help="comma-separated N for single-image NMS (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per row (median)")
    parser.add_argument("--images", type=int, default=16, help="images in the batched rows")
    parser.add_argument("--batch-n", type=int, default=1000, help="boxes per image, batched rows")
    parser.add_argument("--iou", type=float, default=0.45, help="IoU threshold (default 0.45)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: torchvision's CPU NMS kernel is "
                             "single-threaded, so this is like for like; 0: torch's default)")
    parser.add_argument("--no-ref", action="store_true", help="skip the NumPy reference rows")
    parser.add_argument("--ref-max-n", type=int, default=5000,
                        help="largest N timed for the NumPy reference (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="sizes 500,2000; 4 images of 300; 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.images, args.batch_n = "500,2000", 3, 4, 300
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if args.repeats < 1 or args.images < 1 or args.batch_n < 0 or any(n < 0 for n in sizes):
        parser.error("--repeats and --images must be >= 1, sizes >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    rows, all_ok = [], True
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{torch.get_num_threads()} threads, IoU threshold {args.iou}, "
          f"median of {args.repeats} after a warm-up")
    for n in sizes:
        boxes, scores = make_boxes(rng, n)
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        t_tv, want = timed(lambda: torchvision.ops.nms(tb, ts, args.iou), args.repeats)
        t_port, got = timed(lambda: T.nms(tb, ts, args.iou), args.repeats)
        ok = torch.equal(got, want)
        rows.append((f"nms N={n}", "torchvision.ops.nms", t_tv, t_tv, True, len(want)))
        rows.append((f"nms N={n}", "torch_impl.nms", t_port, t_tv, ok, len(got)))
        if not args.no_ref and n <= args.ref_max_n:
            t_ref, got_ref = timed(lambda: R.nms(boxes, scores, args.iou),
                                   max(1, args.repeats // 3))
            ok_ref = np.array_equal(got_ref, want.numpy())
            rows.append((f"nms N={n}", "ref_numpy.nms", t_ref, t_tv, ok_ref, len(got_ref)))
            ok = ok and ok_ref
        all_ok &= ok

    b, n = args.images, args.batch_n
    pairs = [make_boxes(rng, n) for _ in range(b)]
    tb = torch.from_numpy(np.stack([p[0] for p in pairs]))
    ts = torch.from_numpy(np.stack([p[1] for p in pairs]))
    flat_b, flat_s = tb.reshape(-1, 4), ts.reshape(-1)
    image_id = torch.arange(b).repeat_interleave(n)
    label = f"{b} images x {n}"
    t_loop, want = timed(lambda: [torchvision.ops.nms(tb[i], ts[i], args.iou) for i in range(b)],
                         args.repeats)
    want_mask = torch.zeros(b, n, dtype=torch.bool)
    for i, k in enumerate(want):
        want_mask[i, k] = True
    rows.append((label, "torchvision nms, loop over images", t_loop, t_loop, True,
                 int(want_mask.sum())))
    t_tvb, got_tvb = timed(lambda: torchvision.ops.batched_nms(flat_b, flat_s, image_id, args.iou),
                           args.repeats)
    ok_tvb = _mask_of(got_tvb, b, n).equal(want_mask)
    rows.append((label, "torchvision.ops.batched_nms", t_tvb, t_loop, ok_tvb, len(got_tvb)))
    t_pad, got_pad = timed(lambda: T.nms_padded(tb, ts, args.iou), args.repeats)
    ok_pad = torch.equal(got_pad, want_mask)
    rows.append((label, "torch_impl.nms_padded", t_pad, t_loop, ok_pad, int(got_pad.sum())))
    t_bat, got_bat = timed(lambda: T.batched_nms(flat_b, flat_s, image_id, args.iou), args.repeats)
    ok_bat = _mask_of(got_bat, b, n).equal(want_mask)
    rows.append((label, "torch_impl.batched_nms", t_bat, t_loop, ok_bat, len(got_bat)))
    all_ok &= ok_pad and ok_bat

    print(f"{'case':<22} {'implementation':<36} {'ms':>10} {'vs tv':>7} {'kept':>7}  agree")
    for case, impl, t, base, ok, kept in rows:
        print(f"{case:<22} {impl:<36} {t * 1e3:10.2f} {t / base:7.2f} {kept:7d}  "
              f"{'yes' if ok else 'NO'}")
    if not all_ok:
        print("FAIL: kept indices differ from torchvision", file=sys.stderr)
        return 1
    return 0


def _mask_of(flat_keep: torch.Tensor, b: int, n: int) -> torch.Tensor:
    mask = torch.zeros(b * n, dtype=torch.bool)
    mask[flat_keep] = True
    return mask.reshape(b, n)


if __name__ == "__main__":
    sys.exit(main())
