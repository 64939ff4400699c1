"""Run a checkpoint of ``yolo-ref train`` on images: COCO results JSON + drawn images.

Images are letterboxed to --img-size, batched, run through the model (its EMA weights when the
checkpoint has them), post-processed by NMS and mapped back to each original image
(``torch_impl.train.predict``). Written to --out: results.json (COCO results in original pixels;
image ids 1..n in source order, as the format readers number them, so the results evaluate
against the data set's COCO file; category_id = class index), images.json (the COCO images and
categories tables) and one <image stem>.jpg per image with the boxes drawn (unless --no-draw).

Examples:
    yolo-ref predict --weights runs/a/weights/best.pt --source fixtures/shapes/images \\
        --img-size 320 --conf-thres 0.25 --out runs/a/predict
    yolo-ref predict --weights best.pt --source img.jpg --out out --max-det 50
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ref_numpy.shared.cli import (EXIT_OK, add_conf_thres, add_device, add_img_size,
                                  add_iou_thres, make_parser, run)
from torch_impl.train import predict


def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref predict`` options (the keyword arguments of ``predict``)."""
    p = make_parser("predict", __doc__)
    p.add_argument("--weights", required=True, help="checkpoint written by yolo-ref train")
    p.add_argument("--source", required=True,
                   help="an image, a directory of images or a .txt list of image paths")
    add_img_size(p, default=640)
    add_conf_thres(p, default=0.25)
    p.add_argument("--conf", dest="conf_thres", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # Ultralytics' spelling
    add_iou_thres(p, default=0.45)
    p.add_argument("--iou", dest="iou_thres", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("--max-det", type=int, default=300, help="detections kept per image")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    add_device(p, default="auto")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-draw", dest="draw", action="store_false",
                   default=argparse.SUPPRESS, help="write the JSON files only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref predict``: 0 done, 2 bad options, unreadable weights or images (ValueError)."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message printed)
        return int(exc.code or 0)
    result = predict(**vars(args))
    print(f"{len(result.images)} images, {len(result.results)} detections -> {result.out}")
    return EXIT_OK
