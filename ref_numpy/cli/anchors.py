"""YOLOv5 AutoAnchor on a data set: how well anchors fit its labels, and a k-means + genetic refit.

Reads the ground-truth labels of --data (any format ref_numpy.formats.load_any detects: a YOLO
data-set root or labels directory, a COCO JSON, a VOC XML directory), rescales every label to
the training size as YOLOv5 does (each image's long side = --img-size, anchors.wh_from_labels),
and prints the anchors' best possible recall (BPR: the fraction of labels that some anchor can
train, x > 1/thr) and anchors per target (aat). YOLOv5 refits when BPR <= 0.98.

With --fit, runs anchors.kmean_anchors (scipy k-means on whitened sizes, then --gen generations
of genetic evolution; a progress bar when tqdm is installed) and prints the new anchors in
YOLOv5 model-yaml order (sorted by area; --n divisible by 3 gives three levels P3/8, P4/16,
P5/32), with their BPR, aat and fitness. --seed makes the fit reproducible (NumPy default_rng;
not upstream YOLOv5's random stream, so not its exact anchors).

examples:
  yolo-ref anchors --data fixtures/shapes --img-size 640
  yolo-ref anchors --data fixtures/shapes --anchors "10,13, 16,30, 33,23"
  yolo-ref anchors --data fixtures/shapes --img-size 320 --n 9 --fit --gen 1000
  yolo-ref anchors --data fixtures/shapes --fit --backend torch --device cuda

Exit codes: 0 done; 1 with --strict when the (given) anchors need a refit (BPR <= 0.98);
2 bad arguments or unreadable data.
"""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from ref_numpy import anchors as ref_anchors
from ref_numpy.formats import load_any
from ref_numpy.shared import sides
from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_backend, add_device,
                                  add_img_size, make_parser, optional_import, run)

DEFAULT_ANCHORS = ", ".join(f"{int(w)},{int(h)}" for w, h in ref_anchors.YOLOV5_ANCHORS.reshape(-1, 2))


def _parser():
    p = make_parser("anchors", __doc__)
    p.add_argument("--data", required=True, help="labels: YOLO root or labels dir, COCO JSON, VOC dir")
    add_img_size(p, 640)
    p.add_argument("--anchors", default=DEFAULT_ANCHORS, help="anchors to check, 'w,h, w,h, ...' in pixels")
    p.add_argument("--thr", type=float, default=4.0, help="anchor_t")
    p.add_argument("--fit", action="store_true", help="run k-means + genetic evolution")
    p.add_argument("--n", type=int, default=9, help="anchors to fit")
    p.add_argument("--gen", type=int, default=1000, help="generations of evolution")
    p.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    p.add_argument("--augment", action="store_true",
                   help="scale each image by uniform(0.9, 1.1) (YOLOv5's check_anchors), --seed")
    add_backend(p, default="ref")
    # "numpy" is the old spelling of "ref" (kept working, not advertised)
    backend = next(a for a in p._actions if a.dest == "backend")
    backend.type = lambda s: "ref" if s == "numpy" else s
    add_device(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true", help="exit 1 if the anchors need a refit")
    return p


def _parse_anchors(text: str) -> np.ndarray:
    """'w,h, w,h, ...' (commas or spaces) as float64 [K, 2]."""
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        raise UsageError(f"--anchors: expected numbers 'w,h, w,h, ...', got {text!r}") from exc
    if not values or len(values) % 2:
        raise UsageError(f"--anchors: expected an even count of numbers (w,h pairs), got {len(values)}")
    return np.array(values, dtype=np.float64).reshape(-1, 2)


def _label_wh(path: str):
    """(normalised wh [N, 2], image_index [N], shapes [M, 2] (width, height), zero-size count)."""
    ds = load_any(path)
    if not ds.annotations:
        raise UsageError(f"--data: {path}: no labels")
    row = {img["id"]: i for i, img in enumerate(ds.images)}
    shapes = np.array([[img["width"], img["height"]] for img in ds.images], dtype=np.float64)
    idx = np.array([row[a["image_id"]] for a in ds.annotations], dtype=np.int64)
    wh_px = np.array([a["bbox"][2:] for a in ds.annotations], dtype=np.float64)
    keep = (wh_px > 0).all(1)  # zero-size boxes carry no shape
    return wh_px[keep] / shapes[idx[keep]], idx[keep], shapes, int((~keep).sum())


def _yaml(anchors: np.ndarray) -> str:
    """Anchors as a YOLOv5 model-yaml ``anchors:`` block (three levels when K % 3 == 0)."""
    rows = np.round(anchors).astype(int)
    n = rows.shape[0]
    levels = 3 if n % 3 == 0 else 1
    per = n // levels
    lines = ["anchors:"]
    for lvl in range(levels):
        pairs = ", ".join(f"{w},{h}" for w, h in rows[lvl * per:(lvl + 1) * per])
        tag = f"  # P{lvl + 3}/{8 * 2 ** lvl}" if levels == 3 else ""
        lines.append(f"  - [{pairs}]{tag}")
    return "\n".join(lines)


def _backend(name: str, device: str):
    """(anchors module, NumPy -> backend input, backend output -> NumPy) of the side of
    ``--backend`` (:func:`ref_numpy.shared.sides.get_side`, checked on ``--device``)."""
    side = sides.get_side(name, device).check()
    return side.module("anchors"), side.to_inputs, side.to_numpy


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    lib, conv, back = _backend(args.backend, args.device)
    anchors = _parse_anchors(args.anchors)
    wh_norm, idx, shapes, n_empty = _label_wh(args.data)
    wh = lib.wh_from_labels(conv(wh_norm), conv(idx), conv(shapes), img_size=args.img_size,
                            augment=args.augment, seed=args.seed)
    refit, bpr, aat = lib.check_anchors(wh, conv(anchors), thr=args.thr)
    print(f"data: {args.data}: {wh_norm.shape[0]} labels on {shapes.shape[0]} images "
          f"({n_empty} zero-size boxes skipped), img_size {args.img_size:g}, thr {args.thr:g}")
    print(f"anchors ({anchors.shape[0]}): {float(aat):.2f} anchors/target, "
          f"Best Possible Recall (BPR) = {float(bpr):.4f}: "
          + ("refit advised (BPR <= 0.98)" if refit else "a good fit (BPR > 0.98)"))
    if args.fit:
        progress = None
        tqdm = None if args.no_progress else optional_import("tqdm", "progress bar", extra="progress")
        if tqdm is not None:
            def progress(it):
                return tqdm.tqdm(it, desc="evolving anchors", unit="gen", file=sys.stderr)
        out = lib.kmean_anchors(wh, n=args.n, img_size=args.img_size, thr=args.thr,
                                gen=args.gen, seed=args.seed, progress=progress)
        if out["n_small"]:
            print(f"warning: {out['n_small']} of {wh_norm.shape[0]} labels are < 3 px "
                  "in width or height")
        print(f"fit ({out['init']} init, {args.gen} generations, seed {args.seed}, "
              f"{out['n_used']} labels >= 2 px): fitness {float(out['fitness']):.4f}, "
              f"{float(out['aat']):.2f} anchors/target, BPR = {float(out['bpr']):.4f}")
        better = float(out["bpr"]) > float(bpr)
        print(f"YOLOv5 would {'adopt' if better else 'keep the given anchors instead of'} "
              f"the new anchors (it adopts them iff new BPR > old BPR)")
        print(_yaml(back(out["anchors"])))
    return EXIT_CHECK_FAILED if (args.strict and refit) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref anchors``: 0 done, 1 with --strict when a refit is advised, 2 bad input."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
