"""Benchmark COCO bbox mAP: pycocotools vs faster-coco-eval vs ref_numpy vs torch_impl.

Generates a COCO-sized synthetic set (ref_numpy.shared.synthetic.synthetic_coco: 5,000 images,
~35,000 GTs with 1% crowd, 100 detections per image, 80 classes at --scale 1), times evaluate +
accumulate + summarize of each evaluator (JSON loading / loadRes excluded for the
pycocotools-style APIs; coco_evaluate is timed end to end, parsing of the in-memory dicts
included), checks that all 12 stats agree with pycocotools and prints a table of ratios against
pycocotools, all in the same run. When faster-coco-eval is importable (a peer: never a
dependency) its stats are checked against pycocotools' before any table is printed, and every
row also shows ``seconds / faster-coco-eval seconds`` (issue 15's ratio: below 1 is faster).

examples:
  yolo-ref bench map --scale 0.1          # quick run (~10 s)
  yolo-ref bench map --scale 0.2 --skip-pycocotools   # 1,000 images / 100k dets vs faster-coco-eval
  yolo-ref bench map                      # full COCO-sized set
  yolo-ref bench map --device cuda        # torch_impl on a GPU as well
  yolo-ref bench map --threads 2          # torch with 2 CPU threads

Exit codes: 0 all stats agree, 1 a disagreement, 2 bad arguments.
"""
from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np

from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, add_device, make_parser,
                                  optional_import, run)
from ref_numpy.shared.synthetic import synthetic_coco

# faster-coco-eval sums in C++ in another order: its stats may differ from pycocotools' in the
# last bits (measured <= 1e-15); anything larger is a real disagreement.
FASTER_COCO_EVAL_ATOL = 1e-12


def run_oracle(gt: dict, results: list, module: str = "pycocotools") -> tuple:
    """(stats [12], seconds of evaluate + accumulate + summarize) of pycocotools or
    faster-coco-eval (:func:`parity_tests.oracles.pycocotools_evaluate`)."""
    from parity_tests.oracles import pycocotools_evaluate

    res = pycocotools_evaluate(gt, results, module=module)
    return res.stats, res.seconds


def run_ours(gt: dict, results: list, side: str, device: str = "cpu") -> tuple:
    """(stats [12], seconds) of ``coco_evaluate`` of ``side`` ("ref_numpy" or "torch_impl")."""
    if side == "ref_numpy":
        from ref_numpy.metrics import coco_evaluate

        t0 = time.perf_counter()
        res = coco_evaluate(gt, results)
        return np.asarray(res.stats), time.perf_counter() - t0
    import torch

    from torch_impl.metrics import coco_evaluate

    coco_evaluate(*synthetic_coco(0.002, seed=1), device=device)  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = coco_evaluate(gt, results, device=device)
    stats = res.stats.cpu().numpy()
    return stats, time.perf_counter() - t0


def _main(argv: Sequence[str] | None) -> int:
    parser = make_parser("bench map", __doc__)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 5,000-image set")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    add_device(parser)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: single-threaded like pycocotools and NumPy; "
                             "on a loaded 2-core machine OpenMP's spinning makes 2 slower)")
    parser.add_argument("--skip-pycocotools", action="store_true",
                        help="do not run pycocotools (stats are then compared to ref_numpy)")
    try:
        args = parser.parse_args(argv)
        if not args.scale > 0:
            parser.error("--scale must be > 0")  # exits with status 2
        if args.threads < 1:
            parser.error("--threads must be >= 1")
    except SystemExit as exc:  # --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    torch = optional_import("torch", "torch_impl rows", extra="torch")
    if torch is not None:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    gt, results = synthetic_coco(args.scale, args.seed)
    print(f"data: {len(gt['images'])} images, {len(gt['annotations'])} GTs "
          f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), {len(results)} detections, "
          f"{len(gt['categories'])} classes (generated in {time.perf_counter() - t0:.1f} s)")

    rows = []
    if not args.skip_pycocotools and optional_import("pycocotools", "pycocotools row",
                                                     extra="test") is not None:
        rows.append(("pycocotools", *run_oracle(gt, results)))
    try:
        import faster_coco_eval  # noqa: F401
        rows.append(("faster-coco-eval", *run_oracle(gt, results, "faster_coco_eval")))
    except ImportError:
        print("note: faster-coco-eval is not installed; skipped "
              "(published/measured here: ~4.3 s on the full set, 2 cores)")
    rows.append(("ref_numpy", *run_ours(gt, results, "ref_numpy")))
    if torch is not None:
        rows.append(("torch_impl (cpu)", *run_ours(gt, results, "torch_impl", "cpu")))
        if args.device != "cpu":
            rows.append((f"torch_impl ({args.device})",
                         *run_ours(gt, results, "torch_impl", args.device)))

    base_name, base_stats, base_t = rows[0]
    ok = True
    fce = {name: sec for name, _, sec in rows}.get("faster-coco-eval")
    print(f"\n{'evaluator':<22}{'seconds':>10}{'vs ' + base_name:>22}"
          + (f"{'/ faster-coco-eval':>20}" if fce else "") + "  stats")
    for name, stats, sec in rows:
        same = np.array_equal(stats, base_stats)
        dev = float(np.abs(stats - base_stats).max())
        ok &= same or (name == "faster-coco-eval" and dev <= FASTER_COCO_EVAL_ATOL)
        print(f"{name:<22}{sec:>10.3f}{base_t / sec:>21.1f}x"
              + (f"{sec / fce:>20.2f}" if fce else "") + "  "
              + f"{'identical' if same else 'DIFFER: max %.3g' % dev}")
    print("\nstats:", np.round(base_stats, 4).tolist())
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench map``: 0 all stats agree, 1 a disagreement, 2 bad arguments."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
