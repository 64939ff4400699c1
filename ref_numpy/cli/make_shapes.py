"""Generate a deterministic synthetic detection data set: coloured shapes on noisy backgrounds.

The generator is ref_numpy.shared.shapes.generate (its docstring has the details): 1 to 7
objects per image of three classes (rectangle, ellipse, triangle) in three size bands, overlaps
allowed, YOLO labels (plus COCO JSON and Pascal VOC XML with --formats), train/val lists and a
dataset.yaml. Image i is drawn from numpy.random.default_rng([seed, i]) only, so one seed gives
the same files, and a larger --n-images extends a smaller set without changing its images.

examples:
  yolo-ref make-shapes --out /tmp/shapes --n-images 200
  yolo-ref make-shapes --out fixtures/shapes --n-images 32 --size 320 --seed 0 --split 0.75 --formats

Exit codes: 0 written, 2 bad arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, make_parser, run
from ref_numpy.shared.shapes import generate


def _parser():
    p = make_parser("make-shapes", __doc__)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n-images", type=int, default=100, help="number of images")
    p.add_argument("--size", type=int, default=320, help="square image side, pixels (>= 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--split", type=float, default=0.75, help="train fraction in [0, 1]; the rest is val")
    p.add_argument("--formats", action="store_true", help="also write annotations.json (COCO) and voc/*.xml")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    objects = generate(args.out, n_images=args.n_images, size=args.size, seed=args.seed,
                       split=args.split, formats=args.formats)
    n_train = round(len(objects) * args.split)
    out = Path(args.out)
    print(f"wrote {len(objects)} images, {sum(map(len, objects))} boxes to {args.out}:")
    print(f"  {out / 'images'}/*.jpg, {out / 'labels'}/*.txt (YOLO), {out / 'classes.txt'}")
    print(f"  {out / 'train.txt'} ({n_train} images), {out / 'val.txt'} "
          f"({len(objects) - n_train} images), {out / 'dataset.yaml'}")
    if args.formats:
        print(f"  {out / 'annotations.json'} (COCO), {out / 'voc'}/*.xml (Pascal VOC)")
    print(f"next: yolo-ref train --data {out / 'dataset.yaml'}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref make-shapes``: 0 written, 2 bad arguments (the message names the option)."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
