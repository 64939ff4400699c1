"""Inference with a checkpoint of :func:`torch_impl.train.train`: images in, COCO results out.

Steps (:func:`predict`): :func:`load_model` (the EMA weights when the checkpoint has them; a
file of ``yolo-ref import-yolov5`` too, see :func:`read_weights`), :func:`list_images` (or the
split of a data-set YAML, :func:`torch_impl.data.split_images`), then per batch: letterbox to
``img_size`` (:func:`torch_impl.data.letterbox`, ``auto=False``), the model,
the architecture's ``postprocess`` (:mod:`torch_impl.arch`: the v5 or v8
:func:`torch_impl.nms.non_max_suppression`), and the boxes
mapped back to each original image (:func:`torch_impl.data.unletterbox_boxes`).

Output files (when ``out`` is given):

- ``results.json``: COCO results ``[{"image_id", "file_name", "category_id", "bbox": [x, y, w,
  h], "score"}]`` in original pixels; ``image_id`` numbers the images 1..n in source order,
  ``file_name`` is the image's path as the source gives it: images are identified by file, so
  ``yolo-ref evaluate`` resolves them against any ground truth by file name, base name or stem
  (:func:`ref_numpy.shared.protocols.match_images`), whatever ids the ground truth uses;
  ``category_id`` is the class index; bbox and score unrounded (the model's float32 values:
  YOLOv5's 1e-3 px / 1e-5 rounding creates score ties that move a low-confidence mAP, so the
  files would not reproduce the in-training validation);
- ``images.json``: ``{"images": [{"id", "file_name", "width", "height"}], "categories":
  [{"id", "name"}]}``: every image predicted, detections or not (``evaluate`` reads it beside
  ``results.json`` to tell an image without detections from an image not predicted);
- ``labels/<image stem>.txt`` per image (when ``save_txt``): YOLO lines ``class cx cy w h conf``
  normalised by the image size (an empty file for no detections), as Ultralytics 8.3 / 8.4
  ``save_txt`` + ``save_conf`` write them but with the shortest exact repr of each value instead
  of ``%g`` (6 significant digits); ``evaluate --pred <out>/labels`` reads them;
- ``<image stem>.jpg`` per image with the boxes drawn (when ``draw``): class-coloured boxes and
  labels on a filled background.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ref_numpy.formats import IMAGE_SUFFIXES
from torch_impl.data import letterbox, load_image, unletterbox_boxes
from torch_impl.data.datayaml import read_data_yaml, split_images
from torch_impl.arch import ARCHITECTURES, arch_of_config, arch_of_model
from ref_numpy.shared.devices import select_device
from torch_impl.train.checkpoint import check_model_file, check_state_dict, load_checkpoint
from torch_impl.train.trainer import resolve_device

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PredictResult", "build_model", "draw_detections", "list_images", "load_model",
           "predict", "predict_images", "read_weights"]

# YOLOv5 v7.0's palette (``utils/plots.py`` ``Colors``; Ultralytics 8.3 / 8.4 ``utils/plotting.py``
# has another, from 042AFF), class k -> _COLORS[k % 20].
_COLORS = tuple(tuple(int(h[i:i + 2], 16) for i in (0, 2, 4)) for h in (
    "FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334",
    "00D4BB", "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF",
    "FF95C8", "FF37C7"))


def list_images(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The images of ``source``: one image file, a directory's images (sorted by name), a
    ``.txt`` list (one path a line, ``#`` comments; relative paths against the list's
    directory), or a list / tuple of image paths (taken as they are).

    Raises:
        ValueError: ``"source (--source): ..."`` when it is none of these or holds no image.
    """
    if isinstance(source, (list, tuple)):
        images = [Path(p) for p in source]
        if not images:
            raise ValueError("source (--source): an empty list of images")
        return images
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


def _official_layout(obj) -> bool:
    keys = list(obj) if isinstance(obj, dict) else []
    return bool(keys) and all(isinstance(k, str) and (k.startswith("model.") or k[:1].isdigit())
                              for k in keys) and all(isinstance(v, torch.Tensor)
                                                     for v in obj.values())


def read_weights(weights: str | os.PathLike | Mapping) -> dict:
    """What a weights file holds, whichever tool wrote it, as one dict:
    ``{"state_dict": our model's state_dict, "model_cfg": {"arch"?, "nc", the arch's build
    options (YOLOv5: "depth_multiple", "width_multiple", "head": "anchor" | "anchor-free",
    "reg_max"?, "anchors_pixels"?)}, "names": list[str], "kind": "train" | "import-yolov5" |
    "import-yolov8"}``.

    Accepted: a checkpoint of :func:`torch_impl.train.train` (``model_cfg``; the EMA weights
    when present), a file of ``yolo-ref import-yolov5`` (:func:`torch_impl.models.import_yolov5`:
    ``model_cfg`` and ``names``, or the older ``{"state_dict", "config"}`` without names, read
    as ``class0..``). Everything else is a ``ValueError`` of one line naming the file; an
    official state_dict gets the command that converts it.
    """
    ckpt = check_model_file(load_checkpoint(weights), weights)  # one line per malformed file
    if isinstance(ckpt, dict) and "model_cfg" in ckpt:
        cfg = dict(ckpt["model_cfg"])
        state = ckpt["ema"]["ema"] if ckpt.get("ema") else ckpt.get("model", ckpt.get("state_dict"))
        kind = str(ckpt["source"]) if str(ckpt.get("source", "")).startswith("import-") else "train"
    elif isinstance(ckpt, dict) and "state_dict" in ckpt and isinstance(ckpt.get("config"), dict):
        c = ckpt["config"]
        cfg = {"nc": c["nc"], "depth_multiple": c["depth_multiple"],
               "width_multiple": c["width_multiple"], "head": "anchor",
               "anchors_pixels": c.get("anchors_pixels")}
        state, kind = ckpt["state_dict"], "import-yolov5"
    elif _official_layout(ckpt) or (isinstance(ckpt, dict) and _official_layout(ckpt.get("model"))):
        sd = ckpt if _official_layout(ckpt) else ckpt["model"]
        v8 = any(".dfl." in k for k in sd)  # the Detect of Ultralytics 8.3 / 8.4 YOLOv8 has a DFL layer
        arch = ARCHITECTURES["yolov8" if v8 and "yolov8" in ARCHITECTURES else "yolov5"]
        what = "Ultralytics 8.3 / 8.4 YOLOv8" if v8 else "YOLOv5"
        raise ValueError(f"{weights}: an official {what} state_dict, not a yolo-ref model "
                         f"file; convert it first: "
                         + arch.import_command.format(path=weights))
    else:
        what = f"a dict with keys {sorted(ckpt)[:5]}" if isinstance(ckpt, dict) \
            else f"a {type(ckpt).__name__}"
        raise ValueError(f"{weights}: not a yolo-ref model file (written by yolo-ref train or "
                         f"yolo-ref import-yolov5): {what}")
    check_state_dict(state, str(weights))  # a dict of finite tensors
    names = ckpt.get("names") if isinstance(ckpt, dict) else None
    names = list(names) if names else [f"class{k}" for k in range(int(cfg["nc"]))]
    return {"state_dict": state, "model_cfg": cfg, "names": names, "kind": kind}


def build_model(model_cfg: dict, state_dict: dict | None = None) -> torch.nn.Module:
    """The model that ``model_cfg`` (see :func:`read_weights`) describes; with ``state_dict``,
    its weights loaded (strict): :meth:`torch_impl.arch.Architecture.load` of its architecture
    (``model_cfg["arch"]``; files written before the registry are YOLOv5, ``"head":
    "anchor-free"`` the anchor-free one, see :func:`torch_impl.arch.arch_of_config`). YOLOv5's
    anchors come from ``anchors_pixels``, else from the state's ``head.anchors`` (grid units)
    times the strides 8, 16, 32, else the defaults."""
    return arch_of_config(model_cfg).load(model_cfg, state_dict)


def load_model(weights: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, list[str]]:
    """The model of a weights file (:func:`read_weights`: a :func:`torch_impl.train.train`
    checkpoint, its EMA weights when present, or a ``yolo-ref import-yolov5`` file) on
    ``device`` in eval mode, and the class names.

    Raises:
        ValueError: one line naming the file: unreadable, not a model file of this toolkit (an
            official state_dict gets the import command), weights that do not fit the model.
    """
    w = read_weights(weights)
    try:
        model = build_model(w["model_cfg"], w["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{weights}: the weights do not fit the model they describe: "
                         f"{first}") from None
    return model.to(select_device(device, "device")).eval(), w["names"]


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
    arch = arch_of_model(model)
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
        dets = arch.postprocess(decoded, conf_thres, iou_thres, max_det)
        for p, img, rp, det in zip(paths, originals, ratio_pads, dets):
            h0, w0 = img.shape[:2]
            det = det.clone()
            det[:, :4] = unletterbox_boxes(det[:, :4], (s, s), (h0, w0), rp)
            yield Path(p), img, det.cpu()


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def draw_detections(img: np.ndarray, det: torch.Tensor | np.ndarray, names: Sequence[str]) -> Image.Image:
    """``img`` (uint8 [H, W, 3] RGB) with ``det`` rows ``(x1, y1, x2, y2, score, class)`` drawn
    in the style of Ultralytics 8.3 / 8.4 ``Annotator.box_label``: a box in the class colour and
    above it (inside when there is no room) a label ``"<name> <score>"`` on a filled background
    of that colour, in white or black (whichever contrasts); line width and font scale with the
    image. Returns a PIL image."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    h, w = img.shape[:2]
    lw = max(round((h + w) / 2 * 0.003), 2)
    font = _font(max(round((h + w) / 2 * 0.035), 11))
    rows = det.tolist() if hasattr(det, "tolist") else list(det)
    for x1, y1, x2, y2, conf, cls in rows:
        c = int(cls)
        color = _COLORS[c % len(_COLORS)]
        draw.rectangle([x1, y1, x2, y2], outline=color, width=lw)
        label = f"{names[c] if 0 <= c < len(names) else c} {conf:.2f}"
        l, t, r, b = draw.textbbox((0, 0), label, font=font)
        tw, th = r - l, b - t + 2
        above = y1 - th - lw >= 0
        ty = y1 - th - lw if above else y1
        tx = min(max(x1, 0), max(w - tw - 2, 0))
        draw.rectangle([tx, ty, tx + tw + 2, ty + th + lw], fill=color)
        luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
        draw.text((tx + 1, ty - t + lw // 2), label, font=font,
                  fill=(0, 0, 0) if luma > 150 else (255, 255, 255))
    return im


@dataclass
class PredictResult:
    """What :func:`predict` returns: ``results`` (COCO results, see the module docstring),
    ``images`` (the COCO ``images`` table), ``categories`` and the output directory; ``txt``
    maps each image id to its YOLO txt lines. :meth:`add` and :meth:`write` are the one place
    that defines predict's output formats."""

    results: list = field(default_factory=list)
    images: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    out: Path | None = None
    txt: dict = field(default_factory=dict)

    def add(self, path: str | os.PathLike, width: int, height: int, det: torch.Tensor | np.ndarray) -> int:
        """Append the image ``path`` (``width x height`` pixels) with its detections ``det``
        (rows ``(x1, y1, x2, y2, score, class)`` in its pixels: a tensor, an array or a list)
        as the next image id (1..n in call order); returns the id."""
        image_id = len(self.images) + 1
        name = str(path)
        self.images.append({"id": image_id, "file_name": name, "width": int(width),
                            "height": int(height)})
        lines = []
        rows = det.tolist() if hasattr(det, "tolist") else list(det)
        for x1, y1, x2, y2, conf, cls in rows:
            x1, y1, x2, y2, conf = (float(v) for v in (x1, y1, x2, y2, conf))
            self.results.append({"image_id": image_id, "file_name": name,
                                 "category_id": int(cls), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                 "score": conf})
            vals = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
                    (y2 - y1) / height, conf)
            lines.append(f"{int(cls)} " + " ".join(repr(v) for v in vals) + "\n")
        self.txt[image_id] = lines
        return image_id

    def write(self, out: str | os.PathLike, save_txt: bool = False) -> Path:
        """Write ``results.json``, ``images.json`` and (``save_txt``) ``labels/<stem>.txt`` for
        every image (empty for no detections) into ``out`` (created); returns it.

        Raises:
            ValueError: ``save_txt`` with two images of one stem (one label file each).
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if save_txt:
            stems: dict = {}
            for im in self.images:
                stem = Path(im["file_name"]).stem
                if stem in stems:
                    raise ValueError(f"source (--source): {stems[stem]} and {im['file_name']} "
                                     f"share the label file {stem}.txt (--save-txt)")
                stems[stem] = im["file_name"]
            (out / "labels").mkdir(exist_ok=True)
            for im in self.images:
                (out / "labels" / f"{Path(im['file_name']).stem}.txt").write_text(
                    "".join(self.txt.get(im["id"], [])), encoding="utf-8")
        (out / "results.json").write_text(json.dumps(self.results), encoding="utf-8")
        (out / "images.json").write_text(json.dumps(
            {"images": self.images, "categories": self.categories}, indent=1), encoding="utf-8")
        self.out = out
        return out


def predict(weights: str | os.PathLike, source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
            out: str | os.PathLike | None = None, img_size: int = 640, conf_thres: float = 0.25,
            iou_thres: float = 0.45, max_det: int = 300, batch_size: int = 8, device: str = "auto", draw: bool = True,
            save_txt: bool = False, data: str | os.PathLike | None = None, split: str = "val",
            progress: Callable[[Iterable], Iterable] | None = None) -> PredictResult:
    """Run the model file ``weights`` (see :func:`read_weights`) on ``source`` (see
    :func:`list_images`) or on the split ``split`` of the data-set YAML ``data`` (the images
    training validates on, in the same order), and, when ``out`` is given, write
    ``results.json``, ``images.json``, (``save_txt``) ``labels/*.txt`` and (``draw``) the
    drawn images there (see the module docstring).

    ``progress``: an optional wrapper of an iterable with ``total=`` (e.g. ``tqdm.tqdm``),
    called once over the images.

    The in-training validation (:func:`torch_impl.train.engine.validate`) uses
    ``conf_thres=0.001, iou_thres=0.6, max_det=300`` and the same letterbox; with those
    settings ``yolo-ref evaluate`` of the results gives the mAP the trainer logged.

    Raises:
        ValueError: naming the argument: ``img_size`` not a positive multiple of 32,
            ``batch_size`` < 1, ``conf_thres`` / ``iou_thres`` outside [0, 1], ``max_det`` < 1,
            both or neither of ``source`` and ``data``, unreadable weights or images, two
            images with one stem and ``save_txt``, no CUDA for ``device="cuda"``.
    """
    if (source is None) == (data is None):
        raise ValueError("source (--source) / data (--data): give exactly one")
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
    if data is not None:
        images = split_images(read_data_yaml(data), split)
    else:
        images = list_images(source)
    stems: dict = {}
    for p in images:
        if save_txt and p.stem in stems:
            raise ValueError(f"source (--source): {stems[p.stem]} and {p} share the label file "
                             f"{p.stem}.txt (--save-txt)")
        stems[p.stem] = p
    dev = resolve_device(device)
    model, names = load_model(weights, dev)
    result = PredictResult(categories=[{"id": i, "name": n} for i, n in enumerate(names)])
    if out is not None:
        result.out = Path(out)
        result.out.mkdir(parents=True, exist_ok=True)
    preds = predict_images(model, images, img_size=img_size, conf_thres=conf_thres,
                           iou_thres=iou_thres, max_det=max_det, batch_size=batch_size,
                           device=dev)
    if progress is not None:
        preds = progress(preds, total=len(images))
    for p, img, det in preds:  # ids 1..n in source order
        h0, w0 = img.shape[:2]
        result.add(p, w0, h0, det)
        if draw and result.out is not None:
            draw_detections(img, det, names).save(result.out / f"{p.stem}.jpg", quality=90)
    if result.out is not None:
        result.write(result.out, save_txt=save_txt)
    return result
