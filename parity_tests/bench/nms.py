"""Benchmark NMS on CPU: ``torch_impl.nms`` and ``ref_numpy.nms`` against ``torchvision.ops.nms``.

Boxes are YOLO-like: centres uniform in a 640 x 640 image, sides uniform in [10, 100] px, scores
uniform in [0, 1], float32. Each time is the median of ``--repeats`` runs after one warm-up run;
the ratio column is time / torchvision's time in the same run (< 1: faster than torchvision).
Every row also checks that the kept indices agree with torchvision (exactly; for the batched row
image by image), and the script exits with status 1 if any of them does not.

Rows: single-image NMS at each N of ``--sizes`` (uniform boxes, then boxes in ``--clusters``
clusters, 0: none), then ``--images`` images of ``--batch-n`` boxes
at once: ``torch_impl.nms_padded`` (one call) and ``torch_impl.batched_nms`` with the image as
category against a torchvision per-image loop and ``torchvision.ops.batched_nms``.

examples:
  yolo-ref bench nms                    # N = 1000, 5000, 20000; 16 images of 1000
  yolo-ref bench nms --quick            # small sizes, 3 repeats: a smoke test
  yolo-ref bench nms --sizes 2000,8000 --repeats 9 --threads 0   # torch's threads
  yolo-ref bench nms --no-ref           # skip the (slow) NumPy reference

Exit codes: 0 done; 1 kept indices differ from torchvision; 2 bad arguments.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from typing import Callable, Sequence

import numpy as np

import ref_numpy.nms as R
from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_iou_thres,
                                  make_parser, require, run)


def make_boxes(rng: np.random.Generator, n: int,
               size: float = 640.0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 xyxy boxes (centres uniform in the image, sides in [10, 100]) and scores."""
    centres = rng.uniform(0.0, size, (n, 2))
    sides = rng.uniform(10.0, 100.0, (n, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
    return boxes.astype(np.float32), rng.uniform(0.0, 1.0, n).astype(np.float32)


def clustered_boxes(rng: np.random.Generator, n: int, clusters: int,
                    size: float = 640.0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 boxes around ``clusters`` centres (jitter 8 px, sides in [20, 60]): what a
    detector emits around objects, the regime where most candidate pairs suppress."""
    centres = rng.uniform(50.0, size - 50.0, (clusters, 2))[rng.integers(0, clusters, n)]
    c = centres + rng.normal(0.0, 8.0, (n, 2))
    sides = rng.uniform(20.0, 60.0, (n, 2))
    boxes = np.concatenate([c - sides / 2, c + sides / 2], axis=1)
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


# ----------------------------------------------------------------------------- one row each
# ``yolo-ref bench peers`` calls these: each times one row of the table against its peer
# in the same process, after checking that the outputs agree (AssertionError if not), and
# returns (ours_s, peer_s), medians of ``repeats`` runs after a warm-up.

def chain_boxes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """NMS's worst case: a chain where box i overlaps only box i + 1 (IoU 0.6), scores
    decreasing along it, so greedy NMS keeps every other box, one decision after another."""
    x1 = np.arange(n, dtype=np.float64) * 2.5
    boxes = np.stack([x1, np.zeros(n), x1 + 10.0, np.full(n, 10.0)], axis=1)
    return boxes.astype(np.float32), np.linspace(1.0, 0.5, n, dtype=np.float32)


def yolo_predictions(rng: np.random.Generator, bs: int = 16, anchors: int = 25200, nc: int = 80,
                     size: float = 640.0) -> np.ndarray:
    """[bs, anchors, 5 + nc] float32 YOLOv5 head outputs at random: centres uniform in the
    image, sides uniform in [10, 100] px, objectness and class scores uniform in [0, 1]."""
    xy = rng.uniform(0.0, size, (bs, anchors, 2))
    wh = rng.uniform(10.0, 100.0, (bs, anchors, 2))
    scores = rng.uniform(0.0, 1.0, (bs, anchors, 1 + nc))
    return np.concatenate([xy, wh, scores], axis=2).astype(np.float32)


def yolov5_non_max_suppression() -> Callable:
    """yolov5 7.0's ``non_max_suppression`` with its wall-clock limit disabled (``time.time``
    as seen from ``yolov5.utils.general`` frozen during the call), imported with the harness
    quirks: ``numpy.trapz``, a local font dir, and a stand-in ``pkg_resources`` (only
    ``parse_version``) where setuptools no longer ships one. ImportError when yolov5 is absent."""
    import os
    import types

    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    os.environ.setdefault("YOLOV5_CONFIG_DIR", "/work/peers/yolov5cfg")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        with warnings.catch_warnings():  # setuptools < 81 warns that it is deprecated
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    import yolov5.utils.general as general

    frozen = types.SimpleNamespace(time=lambda: 0.0)

    def call(*args, **kwargs):
        real, general.time = general.time, frozen
        try:
            return general.non_max_suppression(*args, **kwargs)
        finally:
            general.time = real
    return call


def _same_detections(got, want) -> None:
    import torch

    assert len(got) == len(want), "image counts differ"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and torch.equal(g, w.to(g.dtype)), \
            f"image {i}: detections differ from the peer ({tuple(g.shape)} vs {tuple(w.shape)})"


def row_non_max_suppression(conf_thres: float = 0.25, iou_thres: float = 0.45,
                            multi_label: bool = False, bs: int = 16, anchors: int = 25200,
                            nc: int = 80, repeats: int = 3, seed: int = 0) -> tuple[float, float]:
    """``torch_impl.nms.non_max_suppression`` vs yolov5 7.0's (time limit disabled) on
    :func:`yolo_predictions`; validation settings are ``conf_thres=0.001, iou_thres=0.6,
    multi_label=True`` (yolov5 ``val.py``). Random scores have no ties, so the outputs agree
    exactly (yolov5's unstable argsort only matters on ties)."""
    import torch
    import torch_impl.nms as T

    peer = yolov5_non_max_suppression()
    pred = torch.from_numpy(yolo_predictions(np.random.default_rng(seed), bs, anchors, nc))
    kw = {"conf_thres": conf_thres, "iou_thres": iou_thres, "multi_label": multi_label}
    t_peer, want = timed(lambda: peer(pred, **kw), repeats)
    t_ours, got = timed(lambda: T.non_max_suppression(pred, **kw), repeats)
    _same_detections(got, want)
    return t_ours, t_peer


def row_batched_nms(n: int = 5000, nc: int = 80, iou_threshold: float = 0.45, repeats: int = 7,
                    seed: int = 0) -> tuple[float, float]:
    """``torch_impl.nms.batched_nms`` vs ``torchvision.ops.batched_nms``, ``n`` boxes of
    :func:`make_boxes` with classes uniform in ``range(nc)``: the same kept set, in the same
    order up to tied scores (torchvision's per-class path above 4,000 coordinates re-sorts
    unstably, and 20,000 random float32 scores do hold a few ties)."""
    import torch
    import torchvision
    import torch_impl.nms as T

    rng = np.random.default_rng(seed)
    boxes, scores = (torch.from_numpy(a) for a in make_boxes(rng, n))
    idxs = torch.from_numpy(rng.integers(0, nc, n))
    t_peer, want = timed(lambda: torchvision.ops.batched_nms(boxes, scores, idxs, iou_threshold),
                         repeats)
    t_ours, got = timed(lambda: T.batched_nms(boxes, scores, idxs, iou_threshold), repeats)
    same_set = torch.equal(torch.sort(got).values, torch.sort(want).values)
    assert same_set and torch.equal(scores[got], scores[want]), \
        "batched_nms: kept indices differ from torchvision (beyond the order of tied scores)"
    return t_ours, t_peer


def row_nms(n: int = 5000, iou_threshold: float = 0.45, chain: bool = False, repeats: int = 7,
            seed: int = 0) -> tuple[float, float]:
    """``torch_impl.nms.nms`` vs ``torchvision.ops.nms`` on ``n`` random boxes
    (:func:`make_boxes`), or with ``chain`` on the worst case :func:`chain_boxes`."""
    import torch
    import torchvision
    import torch_impl.nms as T

    arrays = chain_boxes(n) if chain else make_boxes(np.random.default_rng(seed), n)
    boxes, scores = (torch.from_numpy(a) for a in arrays)
    t_peer, want = timed(lambda: torchvision.ops.nms(boxes, scores, iou_threshold), repeats)
    t_ours, got = timed(lambda: T.nms(boxes, scores, iou_threshold), repeats)
    assert torch.equal(got, want), "nms: kept indices differ from torchvision"
    return t_ours, t_peer


def _parser():
    p = make_parser("bench nms", __doc__)
    p.add_argument("--sizes", default="1000,5000,20000", help="comma-separated N for single-image NMS")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per row (median)")
    p.add_argument("--clusters", type=int, default=20,
                   help="clusters of the clustered single-image rows (0: no clustered rows)")
    p.add_argument("--images", type=int, default=16, help="images in the batched rows")
    p.add_argument("--batch-n", type=int, default=1000, help="boxes per image, batched rows")
    add_iou_thres(p, 0.45)
    p.add_argument("--iou", dest="iou_thres", type=float, help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: torchvision's CPU NMS kernel is single-threaded, so "
                        "this is like for like; 0: torch's default)")
    p.add_argument("--no-ref", action="store_true", help="skip the NumPy reference rows")
    p.add_argument("--ref-max-n", type=int, default=5000, help="largest N timed for the NumPy reference")
    p.add_argument("--seed", type=int, default=0, help="random seed of the boxes")
    p.add_argument("--quick", action="store_true", help="sizes 500,2000; 4 images of 300; 3 repeats")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    torch = require("torch", "yolo-ref bench nms", extra="test")
    torchvision = require("torchvision", "yolo-ref bench nms (the baseline)", extra="test")
    T = require("torch_impl.nms", "yolo-ref bench nms", extra="torch")  # noqa: N806
    if args.quick:
        args.sizes, args.repeats, args.images, args.batch_n = "500,2000", 3, 4, 300
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        raise UsageError(f"--sizes: expected comma-separated integers, got {args.sizes!r}") from None
    if (args.repeats < 1 or args.images < 1 or args.batch_n < 0 or args.clusters < 0
            or any(n < 0 for n in sizes)):
        raise UsageError("--repeats, --images, --batch-n, --sizes, --clusters: --repeats and "
                         "--images must be >= 1, sizes and clusters >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    rows, all_ok = [], True
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{torch.get_num_threads()} threads, IoU threshold {args.iou_thres}, "
          f"median of {args.repeats} after a warm-up")
    cases = [(f"nms N={n}", make_boxes(rng, n)) for n in sizes]
    if args.clusters > 0:
        cases += [(f"nms N={n} {args.clusters} cl.", clustered_boxes(rng, n, args.clusters))
                  for n in sizes]
    for case, (boxes, scores) in cases:
        n = len(boxes)
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        t_tv, want = timed(lambda: torchvision.ops.nms(tb, ts, args.iou_thres), args.repeats)
        t_port, got = timed(lambda: T.nms(tb, ts, args.iou_thres), args.repeats)
        ok = torch.equal(got, want)
        rows.append((case, "torchvision.ops.nms", t_tv, t_tv, True, len(want)))
        rows.append((case, "torch_impl.nms", t_port, t_tv, ok, len(got)))
        if not args.no_ref and n <= args.ref_max_n:
            t_ref, got_ref = timed(lambda: R.nms(boxes, scores, args.iou_thres),
                                   max(1, args.repeats // 3))
            ok_ref = np.array_equal(got_ref, want.numpy())
            rows.append((case, "ref_numpy.nms", t_ref, t_tv, ok_ref, len(got_ref)))
            ok = ok and ok_ref
        all_ok &= ok

    b, n = args.images, args.batch_n
    pairs = [make_boxes(rng, n) for _ in range(b)]
    tb = torch.from_numpy(np.stack([p[0] for p in pairs]))
    ts = torch.from_numpy(np.stack([p[1] for p in pairs]))
    flat_b, flat_s = tb.reshape(-1, 4), ts.reshape(-1)
    image_id = torch.arange(b).repeat_interleave(n)
    label = f"{b} images x {n}"
    t_loop, want = timed(lambda: [torchvision.ops.nms(tb[i], ts[i], args.iou_thres) for i in range(b)],
                         args.repeats)
    want_mask = torch.zeros(b, n, dtype=torch.bool)
    for i, k in enumerate(want):
        want_mask[i, k] = True
    rows.append((label, "torchvision nms, loop over images", t_loop, t_loop, True,
                 int(want_mask.sum())))
    t_tvb, got_tvb = timed(lambda: torchvision.ops.batched_nms(flat_b, flat_s, image_id, args.iou_thres),
                           args.repeats)
    ok_tvb = _mask_of(got_tvb, b, n).equal(want_mask)
    rows.append((label, "torchvision.ops.batched_nms", t_tvb, t_loop, ok_tvb, len(got_tvb)))
    t_pad, got_pad = timed(lambda: T.nms_padded(tb, ts, args.iou_thres), args.repeats)
    ok_pad = torch.equal(got_pad, want_mask)
    rows.append((label, "torch_impl.nms_padded", t_pad, t_loop, ok_pad, int(got_pad.sum())))
    t_bat, got_bat = timed(lambda: T.batched_nms(flat_b, flat_s, image_id, args.iou_thres), args.repeats)
    ok_bat = _mask_of(got_bat, b, n).equal(want_mask)
    rows.append((label, "torch_impl.batched_nms", t_bat, t_loop, ok_bat, len(got_bat)))
    all_ok &= ok_pad and ok_bat

    print(f"{'case':<22} {'implementation':<36} {'ms':>10} {'vs tv':>7} {'kept':>7}  agree")
    for case, impl, t, base, ok, kept in rows:
        print(f"{case:<22} {impl:<36} {t * 1e3:10.2f} {t / base:7.2f} {kept:7d}  "
              f"{'yes' if ok else 'NO'}")
    if not all_ok:
        print("FAIL: kept indices differ from torchvision", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _mask_of(flat_keep, b: int, n: int):
    """[b, n] bool mask of the kept flat indices (torch)."""
    import torch

    mask = torch.zeros(b * n, dtype=torch.bool)
    mask[flat_keep] = True
    return mask.reshape(b, n)


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench nms`` (see the module docstring); bad input exits with code 2."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
