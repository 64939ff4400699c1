"""Run a model file on images: COCO results JSON, YOLO txt files and drawn images.

--weights: a checkpoint of ``yolo-ref train`` (its EMA weights when it has them), of any
architecture (--arch: the checkpoint's model_cfg says which; its own post-processing, e.g. the
v8 NMS for yolov8), or a file of ``yolo-ref import-yolov5`` / ``import-yolov8``. Images
(--source, or the split --split of the data-set YAML --data) are letterboxed to --img-size,
batched, run through the model, post-processed by NMS and mapped back to each original image
(``torch_impl.train.predict``). Written to --out:

  results.json   COCO results in original pixels, each with the image's file_name (and
                 image_id 1..n in source order); category_id = class index
  images.json    the images predicted (detections or not) and the categories
  labels/*.txt   with --save-txt: one file per image, "class cx cy w h conf" normalised
  <stem>.jpg     the image with the boxes and labels drawn (unless --no-draw)

``yolo-ref evaluate --gt <ground truth> --pred <out>/results.json`` (or ``<out>/labels``)
matches the images by file name, whatever ids the ground truth uses, and stops with exit 2 when
the two sides are not the same images. With --conf-thres 0.001 --iou-thres 0.6 (training's
validation settings) it reproduces the mAP the trainer logged.

Examples:
    yolo-ref predict --weights runs/a/weights/best.pt --data fixtures/shapes/dataset.yaml \\
        --split val --img-size 320 --conf-thres 0.001 --iou-thres 0.6 --out runs/a/val --save-txt
    yolo-ref evaluate --data fixtures/shapes/dataset.yaml --split val --pred runs/a/val/results.json
    yolo-ref predict --weights best.pt --source fixtures/shapes/images --out out --max-det 50
    yolo-ref predict --weights yolov5n_ours.pt --source img.jpg --out out
    yolo-ref predict --weights yolov8n_ours.pt --source img.jpg --out out
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ref_numpy.shared.cli import (EXIT_OK, add_conf_thres, add_device, add_img_size,
                                  add_iou_thres, make_parser, optional_import, run)
from ref_numpy.shared.datayaml import SPLITS
from torch_impl.train import predict


def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref predict`` options (the keyword arguments of ``predict``)."""
    p = make_parser("predict", __doc__)
    p.add_argument("--weights", required=True,
                   help="model file written by yolo-ref train, import-yolov5 or import-yolov8")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--source",
                     help="an image, a directory of images or a .txt list of image paths")
    src.add_argument("--data", help="a data-set YAML: predict the images of --split")
    p.add_argument("--split", choices=SPLITS, default="val", help="split of --data")
    add_img_size(p, default=640)
    add_conf_thres(p, default=0.25)
    p.add_argument("--conf", dest="conf_thres", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the name Ultralytics 8.3 / 8.4 give it (conf=)
    add_iou_thres(p, default=0.45)
    p.add_argument("--iou", dest="iou_thres", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("--max-det", type=int, default=300, help="detections kept per image")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    add_device(p, default="auto")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--save-txt", action="store_true",
                   help="also write labels/<stem>.txt: class cx cy w h conf, normalised")
    p.add_argument("--no-draw", dest="draw", action="store_false",
                   default=argparse.SUPPRESS, help="do not write the drawn images")
    p.add_argument("--save-img", dest="draw", action="store_true", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # drawing is the default: --save-img is accepted, a no-op
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref predict``: 0 done, 2 bad options, unreadable weights or images (ValueError)."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # argparse's --help / usage exits: ref_numpy.shared.cli.run
    opts = vars(args)
    quiet = opts.pop("quiet")
    tqdm = None if quiet else optional_import("tqdm", "progress bar", extra="progress")
    if tqdm is not None:
        opts["progress"] = lambda it, total: tqdm.tqdm(it, total=total, desc="predict",
                                                       unit="img")
    result = predict(**opts)
    files = ["results.json", "images.json"] + (["labels/*.txt"] if args.save_txt else []) \
        + (["<stem>.jpg"] if opts.get("draw", True) else [])
    print(f"{len(result.images)} images, {len(result.results)} detections -> {result.out} "
          f"({', '.join(files)})")
    return EXIT_OK
