#!/usr/bin/env python
"""Run a detector trained by ``scripts/train.py`` on images: COCO results JSON + drawn images.

Images are letterboxed to ``--img-size`` (``torch_impl.data.letterbox``), batched, run through
the model (the EMA weights when the checkpoint has them), post-processed by
``torch_impl.nms.non_max_suppression`` and mapped back to each original image
(``torch_impl.data.unletterbox_boxes``). Output in ``--out``:

- ``results.json``: COCO results ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``
  in original pixels; ``image_id`` numbers the images 1..n in source order (a directory is read in
  file-name order, so the ids match ``ref_numpy.formats``' readers and the fixture's COCO file),
  ``category_id`` is the class index;
- ``images.json``: ``[{"id", "file_name", "width", "height"}]`` and ``categories``
  ``[{"id", "name"}]`` (a COCO ``images`` / ``categories`` pair for the results);
- ``<image stem>.jpg`` per image with the boxes drawn (unless ``--no-draw``).

Examples:
    python scripts/predict.py --weights runs/a/weights/best.pt --source fixtures/shapes/images \\
        --img-size 320 --conf-thres 0.25 --out runs/a/predict
    python scripts/predict.py --weights best.pt --source img.jpg --out out --max-det 50

Exit codes: 0 done; 2 bad arguments, unreadable weights or images.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ref_numpy.formats import IMAGE_SUFFIXES  # noqa: E402
from torch_impl.data import letterbox, load_image, unletterbox_boxes  # noqa: E402
from torch_impl.models import YOLOv5AnchorFree, yolov5, yolov5_anchor_free  # noqa: E402
from torch_impl.nms import non_max_suppression  # noqa: E402
from torch_impl.train import load_checkpoint  # noqa: E402

EXIT_USAGE = 2
_COLORS = ((255, 56, 56), (56, 56, 255), (56, 200, 56), (255, 157, 151), (255, 112, 31),
           (200, 50, 200), (50, 200, 200), (128, 128, 0))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__[__doc__.index("Examples:"):],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="checkpoint written by scripts/train.py")
    p.add_argument("--source", required=True,
                   help="an image, a directory of images or a .txt list of image paths")
    p.add_argument("--img-size", type=int, default=640, help="multiple of 32 (default 640)")
    p.add_argument("--conf-thres", type=float, default=0.25)
    p.add_argument("--iou-thres", type=float, default=0.45)
    p.add_argument("--max-det", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="", help="cpu, cuda, cuda:0 (default: cuda if present)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-draw", action="store_true", help="write the JSON files only")
    return p


def list_images(source) -> list[Path]:
    """The images of ``source``: one image file, a directory's images (sorted), or a ``.txt``
    list (relative paths against the list's directory)."""
    src = Path(source)
    if src.is_dir():
        images = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif src.is_file() and src.suffix.lower() == ".txt":
        images = []
        for line in src.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                p = Path(line.strip())
                images.append(p if p.is_absolute() else src.parent / p)
    elif src.is_file() and src.suffix.lower() in IMAGE_SUFFIXES:
        images = [src]
    else:
        raise ValueError(f"--source: {source} is not an image, a directory or a .txt list")
    if not images:
        raise ValueError(f"--source: no images in {source}")
    return images


def load_model(weights, device) -> tuple[torch.nn.Module, list]:
    """The model of a ``scripts/train.py`` checkpoint (EMA weights if present), in eval mode,
    and the class names."""
    ckpt = load_checkpoint(weights)
    cfg = ckpt["model_cfg"]
    if cfg.get("head", "anchor") == "anchor-free":
        model = yolov5_anchor_free(None, nc=cfg["nc"], reg_max=cfg["reg_max"],
                                   depth_multiple=cfg["depth_multiple"],
                                   width_multiple=cfg["width_multiple"])
    else:
        model = yolov5(None, nc=cfg["nc"], depth_multiple=cfg["depth_multiple"],
                       width_multiple=cfg["width_multiple"])
    state = ckpt["ema"]["ema"] if ckpt.get("ema") else ckpt["model"]
    model.load_state_dict(state)
    return model.to(device).eval(), list(ckpt["names"])


def _draw(img, det, names, path: Path) -> None:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    for x1, y1, x2, y2, conf, cls in det.tolist():
        c = int(cls)
        color = _COLORS[c % len(_COLORS)]
        draw.rectangle([x1, y1, x2, y2], outline=color, width=2)
        label = f"{names[c] if c < len(names) else c} {conf:.2f}"
        draw.text((x1 + 2, max(y1 - 11, 0)), label, fill=color)
    im.save(path, quality=90)


@torch.no_grad()
def run(args) -> int:
    if args.img_size <= 0 or args.img_size % 32:
        raise ValueError(f"--img-size: expected a positive multiple of 32, got {args.img_size}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: expected >= 1, got {args.batch_size}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, names = load_model(args.weights, device)
    images = list_images(args.source)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = args.img_size
    results, image_table = [], []
    for start in range(0, len(images), args.batch_size):
        paths = images[start:start + args.batch_size]
        originals, batch, ratio_pads = [], [], []
        for p in paths:
            img = load_image(p)
            lb, ratio, pad = letterbox(img, s, auto=False, scaleup=True)
            originals.append(img)
            ratio_pads.append((ratio, pad))
            batch.append(torch.from_numpy(lb.transpose(2, 0, 1).copy()))
        x = torch.stack(batch).to(device).float() / 255
        decoded, _ = model(x)
        if isinstance(model, YOLOv5AnchorFree):  # [B, A, 4 + nc] -> Ultralytics' [B, 4 + nc, A]
            dets = non_max_suppression(decoded.float().transpose(1, 2), args.conf_thres,
                                       args.iou_thres, max_det=args.max_det, version="v8")
        else:
            dets = non_max_suppression(decoded.float(), args.conf_thres, args.iou_thres,
                                       max_det=args.max_det)
        for k, (p, img, rp, det) in enumerate(zip(paths, originals, ratio_pads, dets)):
            image_id = start + k + 1  # 1..n in source order, as ref_numpy.formats numbers images
            h0, w0 = img.shape[:2]
            det = det.clone()
            det[:, :4] = unletterbox_boxes(det[:, :4], (s, s), (h0, w0), rp)
            image_table.append({"id": image_id, "file_name": str(p), "width": w0, "height": h0})
            for x1, y1, x2, y2, conf, cls in det.cpu().tolist():
                results.append({"image_id": image_id, "category_id": int(cls),
                                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3),
                                         round(y2 - y1, 3)],
                                "score": round(conf, 5)})
            if not args.no_draw:
                _draw(img, det.cpu(), names, out / f"{Path(p).stem}.jpg")
    (out / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (out / "images.json").write_text(json.dumps({
        "images": image_table,
        "categories": [{"id": i, "name": n} for i, n in enumerate(names)]}, indent=1),
        encoding="utf-8")
    print(f"{len(images)} images, {len(results)} detections -> {out}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
