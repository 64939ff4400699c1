#!/usr/bin/env python
"""Benchmark COCO bbox mAP: pycocotools vs faster-coco-eval vs ref_numpy vs torch_impl.

Generates a COCO-sized synthetic set (5,000 images, ~35,000 GTs with 1% crowd, 100 detections
per image, 80 classes at --scale 1), times evaluate + accumulate + summarize of each evaluator
(JSON loading / loadRes excluded for the pycocotools-style APIs; ``coco_evaluate`` is timed end
to end, parsing of the in-memory dicts included), checks that all 12 stats agree with
pycocotools and prints a table of ratios against pycocotools.

Examples:
    python scripts/bench_map.py --scale 0.1          # quick run (~10 s)
    python scripts/bench_map.py                      # full COCO-sized set
    python scripts/bench_map.py --device cuda        # torch_impl on a GPU as well
    python scripts/bench_map.py --threads 2          # torch with 2 CPU threads

Exit codes: 0 all stats agree, 1 a disagreement, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_dataset(scale: float = 1.0, seed: int = 0, n_cat: int = 80, dets_per_image: int = 100):
    """A synthetic COCO set: (gt dict, results list). Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n_img = max(1, int(round(5000 * scale)))
    cat_p = 1.0 / np.arange(1, n_cat + 1) ** 0.8  # skewed class frequencies, like COCO
    cat_p /= cat_p.sum()
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_img)]
    categories = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cat)]
    annotations, results = [], []
    for im in images:
        n_gt = rng.poisson(7.0)
        cls = rng.choice(n_cat, size=n_gt, p=cat_p) + 1
        wh = np.exp(rng.uniform(np.log(4), np.log(400), size=(n_gt, 2)))
        xy = rng.uniform(0, 1, size=(n_gt, 2)) * (np.array([640, 480]) - wh).clip(1)
        for c, (x, y), (w, h) in zip(cls, xy, wh):
            annotations.append({
                "id": len(annotations) + 1, "image_id": im["id"], "category_id": int(c),
                "bbox": [round(float(x), 2), round(float(y), 2), round(float(w), 2), round(float(h), 2)],
                "area": round(float(w * h * rng.uniform(0.5, 0.95)), 2),
                "iscrowd": int(rng.random() < 0.01)})
        # detections: ~3 jittered copies per GT (mostly the right class), random boxes to 100
        n_near = min(dets_per_image, 3 * n_gt)
        src = rng.integers(0, max(n_gt, 1), size=n_near)
        det_boxes = np.zeros((dets_per_image, 4))
        det_cls = rng.choice(n_cat, size=dets_per_image, p=cat_p) + 1
        det_score = rng.uniform(0, 0.6, size=dets_per_image)
        if n_gt:
            jit = rng.normal(0, 0.1, size=(n_near, 4))
            w, h = wh[src, 0], wh[src, 1]
            det_boxes[:n_near] = np.stack([xy[src, 0] + jit[:, 0] * w, xy[src, 1] + jit[:, 1] * h,
                                           w * np.exp(jit[:, 2]), h * np.exp(jit[:, 3])], 1)
            right = rng.random(n_near) < 0.9
            det_cls[:n_near] = np.where(right, cls[src], det_cls[:n_near])
            det_score[:n_near] = rng.uniform(0.2, 1.0, size=n_near)
        rest = dets_per_image - (n_near if n_gt else 0)
        rwh = np.exp(rng.uniform(np.log(4), np.log(300), size=(rest, 2)))
        rxy = rng.uniform(0, 1, size=(rest, 2)) * (np.array([640, 480]) - rwh).clip(1)
        det_boxes[dets_per_image - rest:] = np.concatenate([rxy, rwh], 1)
        for b, c, s in zip(det_boxes.round(2).tolist(), det_cls.tolist(), det_score.round(3).tolist()):
            results.append({"image_id": im["id"], "category_id": c, "bbox": b, "score": s})
    return {"images": images, "categories": categories, "annotations": annotations}, results


def run_pycocotools(gt, results, module="pycocotools"):
    """(stats, seconds of evaluate+accumulate+summarize) with pycocotools or faster-coco-eval."""
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        t0 = time.perf_counter()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        dt = time.perf_counter() - t0
    return np.asarray(ev.stats, dtype=np.float64), dt


def run_ours(gt, results, side: str, device: str = "cpu"):
    if side == "ref_numpy":
        from ref_numpy.metrics import coco_evaluate
        t0 = time.perf_counter()
        res = coco_evaluate(gt, results)
        return np.asarray(res.stats), time.perf_counter() - t0
    import torch

    from torch_impl.metrics import coco_evaluate
    coco_evaluate(*make_dataset(0.002, seed=1), device=device)  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = coco_evaluate(gt, results, device=device)
    stats = res.stats.cpu().numpy()
    return stats, time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 5,000-image set (default 1.0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device for torch_impl (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: single-threaded like pycocotools and "
                             "NumPy; on a loaded 2-core machine OpenMP's spinning makes 2 slower)")
    parser.add_argument("--skip-pycocotools", action="store_true",
                        help="do not run pycocotools (stats are then compared to ref_numpy)")
    args = parser.parse_args(argv)
    if not args.scale > 0:
        parser.error("--scale must be > 0")  # exits with status 2

    if args.threads < 1:
        parser.error("--threads must be >= 1")
    import torch
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    gt, results = make_dataset(args.scale, args.seed)
    print(f"data: {len(gt['images'])} images, {len(gt['annotations'])} GTs "
          f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), {len(results)} detections, "
          f"{len(gt['categories'])} classes (generated in {time.perf_counter() - t0:.1f} s)")

    rows = []
    if not args.skip_pycocotools:
        rows.append(("pycocotools", *run_pycocotools(gt, results)))
    try:
        import faster_coco_eval  # noqa: F401
        rows.append(("faster-coco-eval", *run_pycocotools(gt, results, "faster_coco_eval")))
    except ImportError:
        print("note: faster-coco-eval is not installed; skipped "
              "(published/measured here: ~4.3 s on the full set, 2 cores)")
    rows.append(("ref_numpy", *run_ours(gt, results, "ref_numpy")))
    rows.append(("torch_impl (cpu)", *run_ours(gt, results, "torch_impl", "cpu")))
    if args.device != "cpu":
        rows.append((f"torch_impl ({args.device})", *run_ours(gt, results, "torch_impl", args.device)))

    base_name, base_stats, base_t = rows[0]
    ok = True
    print(f"\n{'evaluator':<22}{'seconds':>10}{'vs ' + base_name:>22}  stats")
    for name, stats, sec in rows:
        same = np.array_equal(stats, base_stats)
        ok &= same or name == "faster-coco-eval" and np.allclose(stats, base_stats, atol=1e-12)
        print(f"{name:<22}{sec:>10.3f}{base_t / sec:>21.1f}x  "
              f"{'identical' if same else 'DIFFER: max %.3g' % np.abs(stats - base_stats).max()}")
    print("\nstats:", np.round(base_stats, 4).tolist())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
