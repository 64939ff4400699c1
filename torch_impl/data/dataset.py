"""A torch ``Dataset`` of detection images and YOLOv5-style labels, with seedable augmentation.

Sources (``DetectionDataset(source, ...)``):

- an image list file (``*.txt``, one image path a line, relative paths against the list file's
  directory, as Ultralytics 8.3 / 8.4 read ``./``-prefixed ones in ``train.txt``), with YOLO
  labels found by the sibling rule (``.../images/x.jpg`` -> ``.../labels/x.txt``; no label file means no objects);
- a directory of images, labels by the same rule;
- a data set in any of the three formats of :mod:`ref_numpy.formats`, read with ``load_any``: a
  COCO ``.json``, a VOC directory of ``*.xml``, a YOLO labels directory or a YOLO data-set root.
  Images are ``images_dir / file_name``; ``images_dir`` defaults to the first existing of
  ``<source>/images`` and ``<source's directory>/images``;
- :meth:`DetectionDataset.from_yaml` for a split of an Ultralytics 8.3 / 8.4 data-set YAML.

Classes: with ``names`` the class index of a set's category is the position of its name in
``names`` (so COCO, VOC and YOLO agree whatever ids they use); without, it is the category id
(YOLO's class index). Crowd annotations are skipped.

Items: ``(image, labels, path, shapes)`` (see :meth:`DetectionDataset.__getitem__`);
:func:`collate_fn` batches them as YOLOv5 does.

Randomness: item ``i`` of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])`` only, so
an item is the same whichever DataLoader worker loads it and in whichever order; call
:meth:`DetectionDataset.set_epoch` each epoch (in every worker: the epoch is an attribute, set it
before the workers start, or use ``persistent_workers=False``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ref_numpy.formats import IMAGE_SUFFIXES, load_any, to_arrays
from torch_impl.data import transforms as T
from torch_impl.data.datayaml import read_data_yaml
from ref_numpy.shared.datayaml import check_label_files, read_image_list
from ref_numpy.shared.textfile import read_text
from ref_numpy.shared.labels import LABEL_NUMBER, parse_label_number

# ((h0, w0), ((rw, rh), (dw, dh))) of a letterboxed item, None for a mosaic (see __getitem__).
_Shapes = tuple[tuple[int, int], tuple[tuple[float, float], tuple[float, float]]] | None
# (img [3, S, S], labels [n, 6], path, shapes): one item of DetectionDataset.
_Item = tuple[torch.Tensor, torch.Tensor, str, _Shapes]

__all__ = ["HYP_DEFAULTS", "DetectionDataset", "collate_fn", "load_image", "label_path"]

# YOLOv5 v7.0 data/hyps/hyp.scratch-low.yaml: the augmentation keys.
HYP_DEFAULTS = {
    "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4,
    "degrees": 0.0, "translate": 0.1, "scale": 0.5, "shear": 0.0,
    "flipud": 0.0, "fliplr": 0.5, "mosaic": 1.0,
}


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The image at ``path`` as RGB ``uint8 [H, W, 3]`` (Pillow; EXIF orientation not applied).

    Bit depth: a 16-bit image keeps its high byte (``v >> 8``), as ``cv2.imread`` with its
    default ``IMREAD_COLOR`` gives it to yolov5 v7.0 and Ultralytics 8.4 (Pillow's own
    ``convert("RGB")`` would saturate every value above 255 to 255). 16-bit RGB(A) PNGs,
    which Pillow already opens as 8-bit high bytes, agree with cv2 as they are; grey images
    are repeated into three channels and an alpha channel is dropped, as cv2 does. 32-bit
    integer and floating-point images (``I`` with values above 65535, ``F``) are refused:
    cv2's conversion of them is not one this loader reproduces.

    Raises:
        ValueError: ``"<path>: cannot read image: ..."``.
    """
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16") or im.mode == "I":
                return _high_byte_rgb(np.asarray(im), path, im.mode)
            if im.mode == "F":
                raise ValueError(f"{path}: cannot read image: 32-bit floating-point pixels "
                                 f"(mode F) are not supported; save it as 8 or 16 bit")
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise ValueError(f"{path}: cannot read image: {exc}") from exc


def _high_byte_rgb(a: np.ndarray, path, mode: str) -> np.ndarray:
    """A 16-bit grey image as cv2 ``IMREAD_COLOR`` gives it: ``v >> 8`` in three channels."""
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise ValueError(f"{path}: cannot read image: mode {mode} values outside 0..65535 "
                         f"(32-bit pixels are not supported)")
    grey = (a >> 8).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))


def label_path(image_path: str | os.PathLike) -> Path:
    """The YOLO label file of an image: the last ``/images/`` of the path becomes ``/labels/``
    and the suffix ``.txt`` (YOLOv5 ``img2label_paths``); without an ``images`` directory, the
    ``.txt`` beside the image."""
    p = Path(image_path)
    parts = list(p.parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            parts[k] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _read_yolo_labels(path: Path, nc: int | None):
    """(classes int64 [n], cxcywh normalised float64 [n, 4]) of a YOLO label file."""
    text = read_text(path)
    classes, rows = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 5:
            raise ValueError(f"{where}: expected 'class cx cy w h', got {len(fields)} columns")
        bad = [v for v in fields if LABEL_NUMBER.fullmatch(v) is None]
        if bad:  # float() would also take '1_0' (10) and non-ASCII digits
            raise ValueError(f"{where}: not a number: {bad[0]!r} in {line.strip()!r}")
        values = [parse_label_number(v, where) for v in fields]
        c = values[0]
        if not math.isfinite(c) or c != int(c) or c < 0 or (nc is not None and c >= nc):
            raise ValueError(f"{where}: class {fields[0]!r} is not an integer in "
                             f"[0, {nc if nc is not None else 'inf'})")
        box = values[1:]
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in box):
            raise ValueError(f"{where}: expected normalised values in [0, 1], got {fields[1:]}")
        classes.append(int(c))
        rows.append(box)
    return np.array(classes, np.int64), np.array(rows, np.float64).reshape(-1, 4)


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES


def _check_names(names):
    if names is None:
        return None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if isinstance(names, str) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError(f"names: expected a non-empty list of class names, got {names!r}")
    return list(names)


class DetectionDataset(torch.utils.data.Dataset):
    """Images letterboxed to ``img_size`` with YOLOv5 labels, optionally augmented.

    Args:
        source (str | Path): an image list ``.txt``, an images directory, a COCO ``.json``, a
            VOC or YOLO labels directory, or a YOLO data-set root (see the module docstring).
        img_size (int): output images are ``img_size`` square.
        augment (bool): apply the YOLOv5 training augmentation with ``hyp``: mosaic (prob
            ``mosaic``) of 4 images + :func:`random_affine` (``degrees``, ``translate``,
            ``scale``, ``shear``) with the mosaic border, else letterbox + random_affine; then
            :func:`augment_hsv` (``hsv_h/s/v``), vertical flip (prob ``flipud``), horizontal flip
            (prob ``fliplr``). Mixup, perspective and albumentations are not implemented.
        hyp (dict | None): overrides of :data:`HYP_DEFAULTS` (hyp.scratch-low); other keys (lr0,
            ...) are ignored, except non-zero ``perspective``, ``mixup``, ``copy_paste``
            (not implemented: ValueError).
        names (list[str] | dict[int, str] | None): class names (see the module docstring).
        images_dir (str | Path | None): images of a COCO / VOC / YOLO set.
        seed (int): base seed of the augmentation.
        normalize (bool): return float32 images in [0, 1] instead of uint8.

    Decoded images can be kept in memory with :meth:`cache_images` (YOLOv5's ``--cache ram``):
    items are the same, only faster to build.

    Raises:
        ValueError: a source that does not exist or holds nothing usable, list entries that are
        not images (``"<list>:<line>: ..."``), bad label files (``"<file>:<line>: ..."``), a
        mosaic with an odd ``img_size``, bad ``hyp`` values, and every reader's errors.
    """

    def __init__(self, source: str | os.PathLike, img_size: int = 640, augment: bool = False,
                 hyp: dict[str, float] | None = None, names: Sequence[str] | dict[int, str] | None = None,
                 images_dir: str | os.PathLike | None = None, seed: int = 0, normalize: bool = False) -> None:
        if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) \
                or img_size <= 0:
            raise ValueError(f"img_size: expected a positive integer, got {img_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        self.img_size = int(img_size)
        self.augment = bool(augment)
        self.hyp = self._check_hyp(hyp)
        if self.augment and self.hyp["mosaic"] > 0 and self.img_size % 2:
            raise ValueError(f"img_size: the mosaic needs an even size, got {img_size}")
        self.names = _check_names(names)
        self.seed = int(seed)
        self.epoch = 0
        self.normalize = bool(normalize)
        self.source = Path(source)
        self.items = self._items(self.source, images_dir)
        self._images: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, split: str = "train", **kwargs: Any) -> DetectionDataset:
        """The ``split`` (train / val / test) of an Ultralytics 8.3 / 8.4 data-set YAML
        (:func:`read_data_yaml`); ``names`` defaults to the file's."""
        data = read_data_yaml(path)
        if split not in ("train", "val", "test") or data.get(split) is None:
            raise ValueError(f"{path}: {split}: no such split in the file")
        if isinstance(data[split], list):
            raise ValueError(f"{path}: {split}: lists of sources are not supported")
        kwargs.setdefault("names", data["names"])
        return cls(data[split], **kwargs)

    @staticmethod
    def _check_hyp(hyp) -> dict:
        out = dict(HYP_DEFAULTS)
        if hyp is None:
            return out
        if not isinstance(hyp, dict):
            raise ValueError(f"hyp: expected a dict, got {type(hyp).__name__}")
        for key in HYP_DEFAULTS:
            if key in hyp:
                v = hyp[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) \
                        or not math.isfinite(v) or v < 0:
                    raise ValueError(f"hyp[{key!r}]: expected a finite number >= 0, got {v!r}")
                out[key] = float(v)
        for key in ("perspective", "mixup", "copy_paste"):
            if hyp.get(key, 0):
                raise ValueError(f"hyp[{key!r}]: not implemented (must be 0), got {hyp[key]!r}")
        for key in ("flipud", "fliplr", "mosaic"):
            if out[key] > 1:
                raise ValueError(f"hyp[{key!r}]: a probability must be <= 1, got {out[key]}")
        return out

    def _yolo_item(self, image: Path) -> dict:
        lp = label_path(image)
        nc = len(self.names) if self.names is not None else None
        if lp.is_file():
            cls, boxes = _read_yolo_labels(lp, nc)
        else:
            cls, boxes = np.zeros(0, np.int64), np.zeros((0, 4))
        return {"path": image, "cls": cls, "boxes": boxes, "normalized": True, "size": None}

    def _items(self, source: Path, images_dir) -> list:
        if not source.exists():
            raise ValueError(f"source: {source} does not exist")
        if source.is_file() and source.suffix.lower() == ".txt":
            return self._list_items(source)
        if source.is_dir() and any(_is_image(p) for p in source.iterdir()):
            images = sorted(p for p in source.iterdir() if _is_image(p))
            check_label_files(images, where=str(source))
            return [self._yolo_item(p) for p in images]
        if source.is_file() and source.suffix.lower() in (".yaml", ".yml"):
            raise ValueError(f"source: {source}: use DetectionDataset.from_yaml for a data YAML")
        if images_dir is None:
            base = source if source.is_dir() else source.parent
            found = [d for d in (base / "images", base.parent / "images") if d.is_dir()]
            if not found:
                raise ValueError(f"images_dir: no images directory found for {source}; pass it")
            images_dir = found[0]
        images_dir = Path(images_dir)
        ds = load_any(source, images_dir=images_dir, names=self.names)
        return self._set_items(ds, images_dir, source)

    def _list_items(self, list_file: Path) -> list:
        images = read_image_list(list_file)
        check_label_files(images, where=str(list_file))
        return [self._yolo_item(p) for p in images]

    def _set_items(self, ds, images_dir: Path, source: Path) -> list:
        arrays = to_arrays(ds)
        cat_name = {c["id"]: c["name"] for c in ds.categories}
        if self.names is not None:
            missing = sorted({cat_name[c] for c in cat_name if cat_name[c] not in self.names})
            if missing:
                raise ValueError(f"{source}: categories {missing} are not in names")
            to_cls = {c: self.names.index(cat_name[c]) for c in cat_name}
        else:
            if any(c < 0 for c in cat_name):
                raise ValueError(f"{source}: negative category ids need `names`")
            to_cls = {c: c for c in cat_name}
        keep = ~arrays["iscrowd"]
        image_ids = arrays["image_id"][keep]
        classes = np.array([to_cls[c] for c in arrays["category_id"][keep]], np.int64)
        boxes = arrays["boxes"][keep]
        order = np.argsort(image_ids, kind="stable")  # group annotations by image, in order
        ids, starts = np.unique(image_ids[order], return_index=True)
        groups = dict(zip(ids.tolist(), np.split(order, starts[1:]) if len(order) else []))
        empty = np.zeros(0, np.int64)
        items = []
        for im in ds.images:
            sel = groups.get(im["id"], empty)
            items.append({"path": images_dir / im["file_name"], "cls": classes[sel],
                          "boxes": boxes[sel].reshape(-1, 4), "normalized": False,
                          "size": (im["height"], im["width"])})
        if not items:
            raise ValueError(f"source: {source} holds no images")
        return items

    # ------------------------------------------------------------------ access

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (a non-negative integer)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch: expected a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``index`` unaugmented, at its own size: ``(img uint8 [H, W, 3] RGB, boxes
        float64 [n, 4] xyxy pixels, classes int64 [n])``.

        Raises:
            ValueError: an unreadable image, or one whose size differs from its annotation's.
        """
        item = self.items[index]
        img = self._images.get(str(item["path"]))
        if img is None:
            img = load_image(item["path"])
        h, w = img.shape[:2]
        boxes = item["boxes"]
        if item["normalized"]:
            cx, cy, bw, bh = np.moveaxis(boxes, -1, 0)
            boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h,
                              (cx + bw / 2) * w, (cy + bh / 2) * h], axis=-1).reshape(-1, 4)
        elif item["size"] != (h, w):
            raise ValueError(f"{item['path']}: image is {h}x{w} (HxW) but its annotation says "
                             f"{item['size'][0]}x{item['size'][1]}")
        return img, boxes, item["cls"]

    def cache_images(self) -> int:
        """Decode every item's image once and keep it in memory (read-only arrays, keyed by
        path; DataLoader workers forked afterwards share them). Returns the bytes held.
        Call it after the last change of :attr:`items`; items added later are read from disk.

        Raises:
            ValueError: ``"<path>: cannot read image: ..."`` for the first unreadable image.
        """
        for item in self.items:
            key = str(item["path"])
            if key not in self._images:
                img = load_image(item["path"])
                img.setflags(write=False)  # shared by every later item: never modified in place
                self._images[key] = img
        return sum(a.nbytes for a in self._images.values())

    def __getitem__(self, index: int) -> _Item:
        """Item ``index`` of the current epoch.

        Returns:
            (img, labels, path, shapes):
            ``img``: uint8 (float32 in [0, 1] with ``normalize``) tensor ``[3, S, S]`` RGB,
            ``S = img_size``;
            ``labels``: float32 ``[n, 6]`` rows ``(0, cls, cx, cy, w, h)``, box normalised by
            ``S`` (column 0 is the image index, filled by :func:`collate_fn`);
            ``path``: the image path (str);
            ``shapes``: ``((h0, w0), ((rw, rh), (dw, dh)))``, the original size and what
            :func:`letterbox` returned, for :func:`unletterbox_boxes` (``ratio_pad``); None for
            a mosaic item (as YOLOv5).

        Without augmentation the image is letterboxed (``auto=False``, ``scaleup=True``: YOLOv5
        resizes the long side to ``img_size`` in ``load_image`` first) and the boxes follow
        exactly; boxes are clipped to the image.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        s = self.img_size
        hyp = self.hyp
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        shapes = None
        if self.augment and rng.random() < hyp["mosaic"]:
            others = rng.integers(0, len(self), 3)
            order = rng.permutation(np.array([index, *others]))
            parts = [self.load(int(i)) for i in order]
            img, boxes, cls = T.mosaic4([p[0] for p in parts], [p[1] for p in parts],
                                        [p[2] for p in parts], s, rng)
            img, boxes, keep = T.random_affine(
                img, boxes, hyp["degrees"], hyp["translate"], hyp["scale"], hyp["shear"], rng,
                border=(-(s // 2), -(s // 2)))
            cls = cls[keep]
        else:
            img, boxes, cls = self.load(index)
            h0, w0 = img.shape[:2]
            img, ratio, pad = T.letterbox(img, s, auto=False, scaleup=True)
            boxes = T.letterbox_boxes(boxes, ratio, pad)
            shapes = ((h0, w0), (ratio, pad))
            if self.augment:
                img, boxes, keep = T.random_affine(
                    img, boxes, hyp["degrees"], hyp["translate"], hyp["scale"], hyp["shear"], rng)
                cls = cls[keep]
        if self.augment:
            img = T.augment_hsv(img, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"], rng)
            if rng.random() < hyp["flipud"]:
                img, boxes = T.vflip(img, boxes)
            if rng.random() < hyp["fliplr"]:
                img, boxes = T.hflip(img, boxes)
        h, w = img.shape[:2]
        boxes = T._clip(boxes, h, w)
        labels = np.zeros((len(boxes), 6), np.float32)
        labels[:, 1] = cls
        labels[:, 2] = (boxes[:, 0] + boxes[:, 2]) / 2 / w
        labels[:, 3] = (boxes[:, 1] + boxes[:, 3]) / 2 / h
        labels[:, 4] = (boxes[:, 2] - boxes[:, 0]) / w
        labels[:, 5] = (boxes[:, 3] - boxes[:, 1]) / h
        out = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        if self.normalize:
            out = out.float() / 255
        return out, torch.from_numpy(labels), str(self.items[index]["path"]), shapes


def collate_fn(batch: Sequence[_Item]) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], tuple[_Shapes, ...]]:
    """Batch items of :class:`DetectionDataset` as YOLOv5's ``collate_fn``.

    Returns:
        (images [B, 3, S, S], labels [sum n, 6] with column 0 = the item's index in the batch,
        paths tuple[str], shapes tuple). The items' label tensors are not modified.
    """
    images, labels, paths, shapes = zip(*batch)
    labels = [lb.clone() for lb in labels]
    for i, lb in enumerate(labels):
        lb[:, 0] = i
    return torch.stack(images, 0), torch.cat(labels, 0), paths, shapes
