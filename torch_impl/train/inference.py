"""Inference with a checkpoint of :func:`torch_impl.train.train`: images in, COCO results out.

Steps (:func:`predict`): :func:`load_model` (the EMA weights when the checkpoint has them),
:func:`list_images`, then per batch: letterbox to ``img_size`` (:func:`torch_impl.data.letterbox`,
``auto=False``), the model, :func:`torch_impl.nms.non_max_suppression` (``version="v8"`` for the
anchor-free head), and the boxes mapped back to each original image
(:func:`torch_impl.data.unletterbox_boxes`).

Output files (when ``out`` is given):

- ``results.json``: COCO results ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``
  in original pixels; ``image_id`` numbers the images 1..n in source order (a directory is read in
  file-name order, so the ids match ``ref_numpy.formats``' readers and the fixture's COCO file),
  ``category_id`` is the class index; bbox rounded to 1e-3 px, score to 1e-5;
- ``images.json``: ``{"images": [{"id", "file_name", "width", "height"}], "categories":
  [{"id", "name"}]}`` (a COCO ``images`` / ``categories`` pair for the results);
- ``<image stem>.jpg`` per image with the boxes drawn (when ``draw``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ref_numpy.formats import IMAGE_SUFFIXES
from torch_impl.data import letterbox, load_image, unletterbox_boxes
from torch_impl.models import YOLOv5AnchorFree, yolov5, yolov5_anchor_free
from torch_impl.nms import non_max_suppression
from torch_impl.train.checkpoint import load_checkpoint
from torch_impl.train.trainer import resolve_device

__all__ = ["PredictResult", "list_images", "load_model", "predict", "predict_images"]

_COLORS = ((255, 56, 56), (56, 56, 255), (56, 200, 56), (255, 157, 151), (255, 112, 31),
           (200, 50, 200), (50, 200, 200), (128, 128, 0))


def list_images(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The images of ``source``: one image file, a directory's images (sorted by name), or a
    ``.txt`` list (one path a line, ``#`` comments; relative paths against the list's directory).

    Raises:
        ValueError: ``"source (--source): ..."`` when it is none of these or holds no image.
    """
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
        raise ValueError(f"source (--source): {source} is not an image, a directory or a "
                         f".txt list")
    if not images:
        raise ValueError(f"source (--source): no images in {source}")
    return images


def load_model(weights: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, list[str]]:
    """The model of a :func:`torch_impl.train.train` checkpoint (its EMA weights when present)
    on ``device`` in eval mode, and the class names.

    Raises:
        ValueError: ``"<weights>: cannot read checkpoint: ..."``, or a checkpoint without
            ``model_cfg`` (not written by the trainer).
    """
    ckpt = load_checkpoint(weights)
    if not isinstance(ckpt, dict) or "model_cfg" not in ckpt:
        raise ValueError(f"{weights}: not a checkpoint of yolo-ref train (no 'model_cfg'); "
                         f"convert official weights with yolo-ref import-yolov5")
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


@torch.no_grad()
def predict_images(model: torch.nn.Module, images: Sequence, img_size: int = 640,
                   conf_thres: float = 0.25, iou_thres: float = 0.45, max_det: int = 300,
                   batch_size: int = 8, device: str | torch.device = "cpu"
                   ) -> Iterator[tuple[Path, np.ndarray, torch.Tensor]]:
    """Run ``model`` (eval mode, on ``device``) over ``images`` (paths), ``batch_size`` at a time.

    Yields:
        per image, in order: ``(path, image uint8 [H, W, 3] RGB, det [n, 6])`` with ``det``
        rows ``(x1, y1, x2, y2, score, class)`` on the CPU, boxes in the original image's
        pixels, at most ``max_det`` rows with ``score > conf_thres``.
    """
    s = img_size
    anchor_free = isinstance(model, YOLOv5AnchorFree)
    for start in range(0, len(images), batch_size):
        paths = images[start:start + batch_size]
        originals, batch, ratio_pads = [], [], []
        for p in paths:
            img = load_image(p)
            lb, ratio, pad = letterbox(img, s, auto=False, scaleup=True)
            originals.append(img)
            ratio_pads.append((ratio, pad))
            batch.append(torch.from_numpy(lb.transpose(2, 0, 1).copy()))
        x = torch.stack(batch).to(device).float() / 255
        decoded, _ = model(x)
        if anchor_free:  # [B, A, 4 + nc] -> Ultralytics' [B, 4 + nc, A]
            dets = non_max_suppression(decoded.float().transpose(1, 2), conf_thres, iou_thres,
                                       max_det=max_det, version="v8")
        else:
            dets = non_max_suppression(decoded.float(), conf_thres, iou_thres, max_det=max_det)
        for p, img, rp, det in zip(paths, originals, ratio_pads, dets):
            h0, w0 = img.shape[:2]
            det = det.clone()
            det[:, :4] = unletterbox_boxes(det[:, :4], (s, s), (h0, w0), rp)
            yield Path(p), img, det.cpu()


def _draw(img: np.ndarray, det: torch.Tensor, names: Sequence[str], path: Path) -> None:
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


@dataclass
class PredictResult:
    """What :func:`predict` returns: ``results`` (COCO results, see the module docstring),
    ``images`` (the COCO ``images`` table), ``categories`` and the output directory."""

    results: list = field(default_factory=list)
    images: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    out: Path | None = None


def predict(weights: str | os.PathLike, source: str | os.PathLike | Sequence[str | os.PathLike],
            out: str | os.PathLike | None = None, img_size: int = 640, conf_thres: float = 0.25,
            iou_thres: float = 0.45, max_det: int = 300, batch_size: int = 8, device: str = "auto", draw: bool = True
           ) -> PredictResult:
    """Run the checkpoint ``weights`` on ``source`` (see :func:`list_images`) and, when ``out``
    is given, write ``results.json``, ``images.json`` and (``draw``) the drawn images there.

    Raises:
        ValueError: naming the argument: ``img_size`` not a positive multiple of 32,
            ``batch_size`` < 1, ``conf_thres`` / ``iou_thres`` outside [0, 1], ``max_det`` < 1,
            unreadable weights or images, no CUDA for ``device="cuda"``.
    """
    if img_size <= 0 or img_size % 32:
        raise ValueError(f"img_size (--img-size): expected a positive multiple of 32, "
                         f"got {img_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size (--batch-size): expected >= 1, got {batch_size}")
    if max_det < 1:
        raise ValueError(f"max_det (--max-det): expected >= 1, got {max_det}")
    for name, v in (("conf_thres", conf_thres), ("iou_thres", iou_thres)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} (--{name.replace('_', '-')}): expected a value in "
                             f"[0, 1], got {v}")
    dev = resolve_device(device)
    model, names = load_model(weights, dev)
    images = list_images(source)
    result = PredictResult(categories=[{"id": i, "name": n} for i, n in enumerate(names)])
    if out is not None:
        result.out = Path(out)
        result.out.mkdir(parents=True, exist_ok=True)
    preds = predict_images(model, images, img_size=img_size, conf_thres=conf_thres,
                           iou_thres=iou_thres, max_det=max_det, batch_size=batch_size,
                           device=dev)
    for image_id, (p, img, det) in enumerate(preds, 1):  # 1..n as ref_numpy.formats numbers
        h0, w0 = img.shape[:2]
        result.images.append({"id": image_id, "file_name": str(p), "width": w0, "height": h0})
        for x1, y1, x2, y2, conf, cls in det.tolist():
            result.results.append({"image_id": image_id, "category_id": int(cls),
                                   "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3),
                                            round(y2 - y1, 3)],
                                   "score": round(conf, 5)})
        if draw and result.out is not None:
            _draw(img, det, names, result.out / f"{p.stem}.jpg")
    if result.out is not None:
        (result.out / "results.json").write_text(json.dumps(result.results), encoding="utf-8")
        (result.out / "images.json").write_text(json.dumps(
            {"images": result.images, "categories": result.categories}, indent=1),
            encoding="utf-8")
    return result
