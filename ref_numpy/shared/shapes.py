"""The synthetic shapes data set: coloured shapes on noisy backgrounds, deterministic in a seed.

The generator behind ``yolo-ref make-shapes``, the committed fixture ``fixtures/shapes`` and
the audit on an installation without a checkout (:func:`generate`).

Every image holds 1 to 7 objects of three classes (0 rectangle, 1 ellipse, 2 triangle) in three
size bands (small < 24 px, medium, large up to 60 % of the image), with overlaps allowed (pairwise
IoU of the boxes at most 0.35, at least 60 % of every shape left visible) and drawn in order,
later shapes on top. A box is the tight extent of the drawn shape (amodal: an occluded part
still counts), in whole pixels.

Layout written under ``out``::

    images/shapes_0000.jpg ...   JPEG, quality 90, 4:4:4
    labels/shapes_0000.txt ...   YOLO: "class cx cy w h", normalised to [0, 1], 6 decimals
    classes.txt                  one class name per line, line k = class k
    train.txt, val.txt           image lists ("./images/<name>"), the first round(n * split)
                                 images are train
    dataset.yaml                 Ultralytics 8.3 / 8.4 data-set YAML: path, train, val, nc, names

Determinism: image i is drawn from ``numpy.random.default_rng([seed, i])`` only, so the same
seed gives byte-identical files, and a larger ``n_images`` extends a smaller set without
changing its images. (Bytes are identical for one Pillow/libjpeg build; decoded pixels are what
the fixture test compares.)

With ``formats=True`` the same boxes are also written as COCO JSON (``annotations.json``) and
Pascal VOC XML (``voc/<name>.xml``) through :mod:`ref_numpy.formats`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ref_numpy.boxes import box_iou
from ref_numpy.shared.checks import check_count, check_unit

CLASS_NAMES = ("rectangle", "ellipse", "triangle")
SIZE_BANDS = ((6, 24), (24, 80), (80, None))  # (min, max) side in pixels; None -> 0.6 * size
SIZE_BAND_P = (0.35, 0.45, 0.20)
MAX_OBJECTS = 7
MAX_PAIR_IOU = 0.35
MIN_VISIBLE = 0.6  # fraction of a shape's pixels that later shapes must leave visible
JPEG_QUALITY = 90
STEM = "shapes_{:04d}"

__all__ = ["CLASS_NAMES", "dataset_yaml", "generate", "make_image", "write_image", "yolo_lines"]


def _max_iou(box: tuple, placed: list) -> float:
    """Largest IoU of pixel box ``box`` (x0, y0, x1, y1; exclusive right/bottom) with the boxes
    of ``placed``: :func:`ref_numpy.boxes.box_iou` in float64 (exact for pixel integers)."""
    if not placed:
        return 0.0
    others = np.array([p[1:] for p in placed], dtype=np.float64)
    return float(box_iou(np.array([box], dtype=np.float64), others).max())


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """[size, size, 3] float background: a base colour plus smooth blotches."""
    base = rng.uniform(40, 215, size=3)
    coarse = rng.normal(0.0, 18.0, size=(size // 32 + 1, size // 32 + 1, 3))
    blotch = np.stack([
        np.asarray(Image.fromarray(coarse[..., c].astype(np.float32), mode="F")
                   .resize((size, size), Image.BILINEAR))
        for c in range(3)], axis=-1)
    return base + blotch


def _shape_colour(rng: np.random.Generator, avoid: list) -> tuple:
    """An RGB colour at L1 distance >= 120 from every colour of ``avoid`` (the background's mean
    colour and the shapes already drawn), or the farthest of 100 tries."""
    best, best_dist = None, -1.0
    for _ in range(100):
        c = rng.integers(0, 256, size=3)
        dist = min(float(np.abs(c - np.asarray(a)).sum()) for a in avoid)
        if dist > best_dist:
            best, best_dist = c, dist
        if dist >= 120:
            break
    return tuple(int(v) for v in best)


def _draw_shape(mask: ImageDraw.ImageDraw, cls: int, x0: int, y0: int, w: int, h: int,
                rng: np.random.Generator) -> None:
    x1, y1 = x0 + w - 1, y0 + h - 1  # inclusive corners for Pillow
    if cls == 0:
        mask.rectangle([x0, y0, x1, y1], fill=255)
    elif cls == 1:
        mask.ellipse([x0, y0, x1, y1], fill=255)
    else:
        apex = int(rng.integers(x0, x1 + 1))
        if rng.random() < 0.5:  # apex up or down
            pts = [(apex, y0), (x0, y1), (x1, y1)]
        else:
            pts = [(apex, y1), (x0, y0), (x1, y0)]
        mask.polygon(pts, fill=255)


def make_image(seed: int, index: int, size: int) -> tuple[Image.Image, list[tuple]]:
    """One image and its objects as ``(class, x0, y0, x1, y1)`` in pixels (x1, y1 exclusive)."""
    rng = np.random.default_rng([seed, index])
    pixels = _background(rng, size)
    n_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    canvas = Image.fromarray(np.zeros((size, size, 3), np.uint8))
    placed: list[tuple] = []
    colours = [pixels.mean(axis=(0, 1))]
    owner = np.full((size, size), -1)  # index of the shape on top at each pixel
    full: list[int] = []  # pixel count of each shape as drawn
    for _ in range(n_objects):
        for _attempt in range(30):
            band = SIZE_BANDS[int(rng.choice(len(SIZE_BANDS), p=SIZE_BAND_P))]
            hi = min(band[1] or size, int(0.6 * size))  # bands shrink for small images
            side = float(rng.uniform(min(band[0], hi - 1), hi))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            w = int(np.clip(round(side * np.sqrt(aspect)), 4, size - 2))
            h = int(np.clip(round(side / np.sqrt(aspect)), 4, size - 2))
            x0 = int(rng.integers(0, size - w + 1))
            y0 = int(rng.integers(0, size - h + 1))
            cls = int(rng.integers(0, len(CLASS_NAMES)))
            mask = Image.new("L", (size, size), 0)
            _draw_shape(ImageDraw.Draw(mask), cls, x0, y0, w, h, rng)
            box = mask.getbbox()  # tight extent of the drawn pixels, right/bottom exclusive
            if box is None or _max_iou(box, placed) > MAX_PAIR_IOU:
                continue
            drawn = np.asarray(mask) > 0
            new_owner = np.where(drawn, len(placed), owner)
            if any((new_owner == j).sum() < MIN_VISIBLE * full[j] for j in range(len(placed))):
                continue  # would hide too much of an earlier shape
            owner, full = new_owner, full + [int(drawn.sum())]
            colour = _shape_colour(rng, colours)
            colours.append(colour)
            canvas.paste(colour, (0, 0, size, size), mask)
            alpha = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
            pixels = pixels * (1 - alpha) + np.asarray(canvas, dtype=np.float64) * alpha
            placed.append((cls, *box))
            break
    noise = rng.normal(0.0, 7.0, size=pixels.shape)
    image = Image.fromarray(np.clip(np.rint(pixels + noise), 0, 255).astype(np.uint8), "RGB")
    return image, placed


def yolo_lines(objects: list[tuple], size: int) -> str:
    """YOLO txt of ``objects`` for a ``size`` x ``size`` image: "class cx cy w h", 6 decimals."""
    lines = []
    for cls, x0, y0, x1, y1 in objects:
        cx, cy = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size
        w, h = (x1 - x0) / size, (y1 - y0) / size
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def dataset_yaml() -> str:
    """The data set description (``dataset.yaml``), written by hand so its bytes are fixed."""
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    return ("# Synthetic shapes data set written by yolo-ref make-shapes (ref_numpy.shared.shapes).\n"
            "# path is relative to this file's directory; give Ultralytics 8.3 / 8.4 an absolute path.\n"
            "path: .\n"
            "train: train.txt\n"
            "val: val.txt\n"
            f"nc: {len(CLASS_NAMES)}\n"
            f"names:\n{names}")


def _write_text(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))  # "\n" line endings on every platform


def generate(out: str | os.PathLike, n_images: int = 100, size: int = 320, seed: int = 0, split: float = 0.75,
             formats: bool = False) -> list[list[tuple]]:
    """Write the shapes data set under ``out`` (created if needed).

    Args:
        out (str | PathLike): output directory.
        n_images (int): number of images, >= 0.
        size (int): square image side in pixels, >= 64.
        seed (int): random seed, >= 0 (image i is drawn from ``default_rng([seed, i])``).
        split (float): train fraction in [0, 1]; the first ``round(n_images * split)`` images
            are train, the rest val.
        formats (bool): also write ``annotations.json`` (COCO) and ``voc/*.xml``.

    Returns:
        list[list[tuple]]: per image its objects ``(class, x0, y0, x1, y1)`` in pixels.

    Invariant: the same arguments give the same files; a larger ``n_images`` extends a smaller
    set without changing its images.

    Raises:
        ValueError: an argument out of range (naming it).
    """
    n_images, size, seed, split = _check_args(n_images, size, seed, split)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    all_objects, names = [], []
    for i in range(n_images):
        objects = write_image(out, seed, i, size)
        all_objects.append(objects)
        names.append(f"{STEM.format(i)}.jpg")
    n_train = int(round(n_images * split))
    _write_text(out / "train.txt", "".join(f"./images/{n}\n" for n in names[:n_train]))
    _write_text(out / "val.txt", "".join(f"./images/{n}\n" for n in names[n_train:]))
    _write_text(out / "classes.txt", "".join(f"{n}\n" for n in CLASS_NAMES))
    _write_text(out / "dataset.yaml", dataset_yaml())
    if formats:
        _write_other_formats(out, names, all_objects, size)
    return all_objects


def write_image(out: Path, seed: int, index: int, size: int) -> list[tuple]:
    """Image ``index`` of the set ``seed`` (:func:`make_image`) written as :func:`generate`
    writes it: ``out/images/shapes_NNNN.jpg`` and its YOLO label file ``out/labels/...txt``
    (both directories must exist). Returns its objects ``(class, x0, y0, x1, y1)``."""
    image, objects = make_image(seed, index, size)
    name = STEM.format(index)
    image.save(out / "images" / f"{name}.jpg", quality=JPEG_QUALITY, subsampling=0)
    _write_text(out / "labels" / f"{name}.txt", yolo_lines(objects, size))
    return objects


def _check_args(n_images, size, seed, split) -> tuple:
    n_images = check_count("n_images", n_images)
    size = check_count("size", size, 64)
    seed = check_count("seed", seed)
    split = check_unit("split", split)
    return n_images, size, seed, split


def _write_other_formats(out: Path, names: list[str], all_objects: list, size: int) -> None:
    """The same boxes as COCO JSON and Pascal VOC XML (integer pixel boxes, lossless)."""
    from ref_numpy import formats

    images = [{"id": i + 1, "file_name": n, "width": size, "height": size}
              for i, n in enumerate(names)]
    categories = [{"id": k, "name": n} for k, n in enumerate(CLASS_NAMES)]
    annotations = []
    for image, objects in zip(images, all_objects):
        for cls, x0, y0, x1, y1 in objects:
            w, h = x1 - x0, y1 - y0
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"],
                                "category_id": cls, "bbox": [float(x0), float(y0), float(w),
                                                             float(h)],
                                "area": float(w * h), "iscrowd": 0})
    dataset = formats.DetectionSet(images=images, categories=categories, annotations=annotations)
    formats.write_coco(dataset, out / "annotations.json")
    formats.write_voc(dataset, out / "voc")
