"""Detection data-set formats: COCO JSON, YOLO txt and Pascal VOC XML, read, written and converted.

The in-memory model is :class:`DetectionSet`, a COCO-shaped triple of lists of plain dicts. Every
reader returns one, every writer takes one, so a conversion is a read followed by a write.

Box conventions (documented once, used everywhere):

- In memory and in COCO JSON: ``bbox = [x, y, w, h]`` in pixels, continuous coordinates: the
  image spans ``[0, width] x [0, height]`` and the pixel with 0-based index ``i`` covers
  ``[i, i + 1)``. A box covering pixels 10..19 (0-based) is ``x = 10, w = 10``.
- YOLO txt: ``class cx cy w h`` normalised by the image size: ``cx = (x + w / 2) / width``,
  ``w = w / width`` (``y``, ``h`` likewise by ``height``), each in [0, 1]. A sixth column is a
  confidence (prediction files, Ultralytics 8.3 / 8.4 ``save_conf``).
- Pascal VOC XML: ``xmin ymin xmax ymax`` are 1-based inclusive pixel indices (the devkit's
  convention), so ``xmin = x + 1``, ``xmax = x + w`` and back ``x = xmin - 1``, ``w = xmax - x``.
  The same box as above is ``xmin = 11, xmax = 20``. Whole-pixel boxes round-trip exactly;
  fractional ones to within the rounding of ``x + 1`` (an ulp of ``max(1, |x|)``), never
  inverted (see :func:`write_voc`).

What each format can hold, and so what a round trip keeps:

- COCO JSON keeps everything of the model (only the model's fields are read: ``segmentation``,
  ``info``, ``licenses`` and other keys are dropped).
- YOLO has no image ids, annotation ids, crowd flags, areas or ``difficult``: readers number images
  1..n in file-name order and annotations 1..m in (image, line) order, set ``iscrowd = 0`` and
  ``area = w * h``. Writers skip crowd annotations (as the COCO converter of Ultralytics 8.3 / 8.4 does). The
  class index is the category id, so category ids must be non-negative integers. With the
  default 6 decimals a coordinate is off by at most 0.75e-6 of the image size; ``decimals=None``
  writes the shortest exact repr of each normalised value.
- VOC has no ids, crowd flags or scores, and names classes by name: readers number images and
  annotations as for YOLO, keep ``difficult`` (0 when absent), and map names to ids through
  ``names`` (default: the sorted names seen, ids 0..K-1). Writers skip crowd annotations.

Ids: readers that number things start at 1 (pycocotools reads annotation id 0 as "unmatched");
COCO files keep their own ids, 0 included.

Errors: a malformed file raises ``ValueError`` naming the file and the place in it: the line
(``labels/a.txt:3: ...``), the JSON path (``annotations.json: annotations[3].bbox: ...``) or the
XML element (``voc/a.xml: object[2]/bndbox/xmin: ...``). Readers check everything before
returning, so nothing half-loaded comes back.
"""
from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ref_numpy.shared.labels import LABEL_NUMBER, parse_label_number
from ref_numpy.shared.textfile import read_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CLASSES_FILE = "classes.txt"


@dataclass
class DetectionSet:
    """A detection data set (ground truth or predictions) in memory, COCO-shaped.

    Attributes:
        images (list[dict]): ``{"id": int, "file_name": str, "width": int, "height": int}``;
            ids unique, sizes positive integers.
        categories (list[dict]): ``{"id": int, "name": str}``; ids unique.
        annotations (list[dict]): ``{"id": int, "image_id": int, "category_id": int,
            "bbox": [x, y, w, h] (floats, pixels, w, h >= 0), "area": float, "iscrowd": 0 | 1}``
            plus, where the source has them, ``"difficult": 0 | 1`` (VOC) and ``"score": float``
            (predictions). Ids unique; ``image_id`` and ``category_id`` refer to entries above.

    Invariant: :func:`check_dataset` accepts it. Readers return checked sets; writers check the
    set they are given. Order is meaningful (pycocotools breaks score ties by input order) and is
    kept by every reader and writer.
    """

    images: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    annotations: list = field(default_factory=list)


# ----------------------------------------------------------------------------- checking

def _fail(where: str, msg: str):
    raise ValueError(f"{where}: {msg}")


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        _fail(where, f"expected an integer, got {v!r}")
    if isinstance(v, (int, np.integer)):
        n = int(v)  # exact: no float round trip (2**62 + 1 stays itself)
    elif not math.isfinite(v) or not float(v).is_integer():
        _fail(where, f"expected an integer, got {v!r}")
    else:
        n = int(v)
    if not -2**63 <= n < 2**63:
        _fail(where, f"expected an integer within int64 (as pycocotools' arrays hold), got {v!r}")
    return n


def _float(v, where: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        _fail(where, f"expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        _fail(where, f"expected a finite number, got {v!r}")
    if lo is not None and x < lo:
        _fail(where, f"expected a value >= {lo}, got {v!r}")
    if hi is not None and x > hi:
        _fail(where, f"expected a value <= {hi}, got {v!r}")
    return x


def _flag(v, where: str) -> int:
    f = _int(v, where)
    if f not in (0, 1):
        _fail(where, f"expected 0 or 1, got {v!r}")
    return f


def _get(obj, key: str, where: str):
    if not isinstance(obj, dict):
        _fail(where, f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        _fail(f"{where}.{key}", "missing key")
    return obj[key]


def _list(obj: dict, key: str, pre: str) -> list:
    """A top-level list of a COCO mapping; ``pre`` is the message prefix (``"<file>: "``)."""
    if key not in obj:
        _fail(f"{pre}{key}", "missing key")
    if not isinstance(obj[key], list):
        _fail(f"{pre}{key}", f"expected a list, got {type(obj[key]).__name__}")
    return obj[key]


def _check_image(img, where: str) -> dict:
    out = {"id": _int(_get(img, "id", where), f"{where}.id")}
    name = _get(img, "file_name", where)
    if not isinstance(name, str) or not name:
        _fail(f"{where}.file_name", f"expected a non-empty string, got {name!r}")
    out["file_name"] = name
    for key in ("width", "height"):
        v = _int(_get(img, key, where), f"{where}.{key}")
        if v <= 0:
            _fail(f"{where}.{key}", f"expected a positive size, got {v}")
        out[key] = v
    return out


def _check_category(cat, where: str) -> dict:
    name = _get(cat, "name", where)
    if not isinstance(name, str):
        _fail(f"{where}.name", f"expected a string, got {name!r}")
    return {"id": _int(_get(cat, "id", where), f"{where}.id"), "name": name}


def _check_bbox(bbox, where: str) -> list:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        _fail(where, f"expected [x, y, w, h], got {bbox!r}")
    x, y, w, h = (_float(v, f"{where}[{i}]") for i, v in enumerate(bbox))
    if w < 0 or h < 0:
        _fail(where, f"negative width or height in {list(bbox)!r}")
    return [x, y, w, h]


def _check_annotation(ann, where: str, image_ids: set, category_ids: set, *,
                      need_score: bool = False) -> dict:
    out = {"id": _int(_get(ann, "id", where), f"{where}.id")}
    out["image_id"] = _int(_get(ann, "image_id", where), f"{where}.image_id")
    if out["image_id"] not in image_ids:
        _fail(f"{where}.image_id", f"unknown image id {out['image_id']}")
    out["category_id"] = _int(_get(ann, "category_id", where), f"{where}.category_id")
    if out["category_id"] not in category_ids:
        _fail(f"{where}.category_id", f"unknown category id {out['category_id']}")
    out["bbox"] = _check_bbox(_get(ann, "bbox", where), f"{where}.bbox")
    w, h = out["bbox"][2:]
    out["area"] = (_float(ann["area"], f"{where}.area", lo=0.0) if "area" in ann else w * h)
    out["iscrowd"] = _flag(ann["iscrowd"], f"{where}.iscrowd") if "iscrowd" in ann else 0
    if "difficult" in ann:
        out["difficult"] = _flag(ann["difficult"], f"{where}.difficult")
    if "score" in ann or need_score:
        out["score"] = _float(_get(ann, "score", where), f"{where}.score")
    return out


def _unique(items: list, what: str, where: str) -> None:
    seen = set()
    for i, item in enumerate(items):
        if item["id"] in seen:
            _fail(f"{where}{what}[{i}].id", f"duplicate id {item['id']}")
        seen.add(item["id"])


def _check_set(obj, where: str) -> DetectionSet:
    """Parse and check a COCO-shaped mapping; ``where`` prefixes every message (file name)."""
    if not isinstance(obj, dict):
        _fail(where, f"expected an object with images, annotations, categories, got "
                     f"{type(obj).__name__}")
    pre = f"{where}: " if where else ""
    images = [_check_image(v, f"{pre}images[{i}]") for i, v in enumerate(_list(obj, "images", pre))]
    categories = [_check_category(v, f"{pre}categories[{i}]")
                  for i, v in enumerate(_list(obj, "categories", pre))]
    _unique(images, "images", pre)
    _unique(categories, "categories", pre)
    image_ids = {im["id"] for im in images}
    category_ids = {c["id"] for c in categories}
    annotations = [_check_annotation(v, f"{pre}annotations[{i}]", image_ids, category_ids)
                   for i, v in enumerate(_list(obj, "annotations", pre))]
    _unique(annotations, "annotations", pre)
    return DetectionSet(images=images, categories=categories, annotations=annotations)


def check_dataset(dataset: DetectionSet) -> DetectionSet:
    """Check a :class:`DetectionSet` and return a normalised copy.

    Args:
        dataset (DetectionSet): the set to check.

    Returns:
        DetectionSet: a new set with numbers normalised (ids and sizes ``int``, bbox, area and
        score ``float``), missing ``area`` filled with ``w * h`` and missing ``iscrowd`` with 0.

    Raises:
        ValueError: naming the path of the first bad entry, e.g. ``annotations[3].bbox``:
        missing keys, duplicate ids, unknown image or category ids, non-integer or non-positive
        image sizes, non-finite numbers, negative box sizes, flags other than 0/1.
    """
    if not isinstance(dataset, DetectionSet):
        raise ValueError(f"dataset: expected a DetectionSet, got {type(dataset).__name__}")
    return _check_set({"images": dataset.images, "categories": dataset.categories,
                       "annotations": dataset.annotations}, "")


# ----------------------------------------------------------------------------- arrays

def to_arrays(dataset: DetectionSet) -> dict:
    """The annotations of ``dataset`` as NumPy columns, in annotation order.

    Args:
        dataset (DetectionSet): a checked set.

    Returns:
        dict with ``"id"``, ``"image_id"``, ``"category_id"`` (int64 [N]), ``"boxes"`` (float64
        [N, 4] xyxy pixels: ``x + w``, ``y + h``), ``"area"`` (float64 [N]), ``"iscrowd"`` and
        ``"difficult"`` (bool [N], absent ``difficult`` is False) and ``"score"`` (float64 [N],
        NaN where an annotation has no score).
    """
    anns = check_dataset(dataset).annotations
    bbox = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    x, y, w, h = np.moveaxis(bbox, -1, 0)
    return {
        "id": np.array([a["id"] for a in anns], dtype=np.int64),
        "image_id": np.array([a["image_id"] for a in anns], dtype=np.int64),
        "category_id": np.array([a["category_id"] for a in anns], dtype=np.int64),
        "boxes": np.stack([x, y, x + w, y + h], axis=-1),
        "area": np.array([a["area"] for a in anns], dtype=np.float64),
        "iscrowd": np.array([a["iscrowd"] == 1 for a in anns], dtype=bool),
        "difficult": np.array([a.get("difficult", 0) == 1 for a in anns], dtype=bool),
        "score": np.array([a.get("score", np.nan) for a in anns], dtype=np.float64),
    }


# ----------------------------------------------------------------------------- COCO JSON

def _read_json_file(path: Path):
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: broken JSON: {exc.msg}") from exc
    except RecursionError:  # '[[[[...' deeper than the interpreter's stack
        raise ValueError(f"{path}: JSON nested too deeply to read") from None


def _json_list(items: list, indent: str) -> str:
    """A JSON list with one compact entry per line (readable diffs, small files)."""
    if not items:
        return "[]"
    body = ",\n".join(indent + " " + json.dumps(v, allow_nan=False) for v in items)
    return f"[\n{body}\n{indent}]"


def _write_json(obj, path: Path) -> None:
    """``obj`` (a list, or a dict of lists) as JSON, one entry per line; floats as exact reprs."""
    if isinstance(obj, dict):
        text = "{\n" + ",\n".join(f" {json.dumps(k)}: {_json_list(v, ' ')}"
                                    for k, v in obj.items()) + "\n}\n"
    else:
        text = _json_list(obj, "") + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(text.encode("utf-8"))


def read_coco(path: str | os.PathLike) -> DetectionSet:
    """Read a COCO ground-truth JSON file (``images``, ``annotations``, ``categories``).

    Args:
        path (str | Path): the JSON file.

    Returns:
        DetectionSet: entries in file order; ``area`` defaults to ``w * h`` and ``iscrowd`` to 0
        where absent (pycocotools needs both); ``difficult`` and ``score`` kept where present.

    Raises:
        ValueError: ``"<path>: <json path>: <problem>"`` for unreadable or broken JSON, missing
        keys, duplicate or unknown ids, bad sizes, non-finite or negative box sizes.
    """
    return _check_set(_read_json_file(path), str(path))


def write_coco(dataset: DetectionSet, path: str | os.PathLike) -> None:
    """Write ``dataset`` as COCO ground-truth JSON (keys in the model's order, floats exact).

    Invariant: ``read_coco(p) == check_dataset(dataset)`` after ``write_coco(dataset, p)``.
    """
    ds = check_dataset(dataset)
    _write_json({"images": ds.images, "annotations": ds.annotations,
                 "categories": ds.categories}, path)


def read_coco_results(path: str | os.PathLike, gt: DetectionSet) -> DetectionSet:
    """Read a COCO results (detections) JSON list against its ground truth.

    Args:
        path (str | Path): JSON list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
            "score"}``; an empty list is allowed (pycocotools' ``loadRes`` crashes on it).
        gt (DetectionSet): the ground truth the ids refer to.

    Returns:
        DetectionSet: ``gt``'s images and categories, and the detections as annotations as
        pycocotools ``loadRes`` builds them: input order, ``id = index + 1``, ``area = w * h``,
        ``iscrowd = 0``, plus ``score``.

    Raises:
        ValueError: ``"<path>: [3].image_id: unknown image id 7"`` and the like: not a list,
        missing keys, ids not in ``gt``, non-finite numbers, negative box sizes.
    """
    gt = check_dataset(gt)
    data = _read_json_file(path)
    if not isinstance(data, list):
        _fail(str(path), f"expected a JSON list of detections, got {type(data).__name__}")
    image_ids = {im["id"] for im in gt.images}
    category_ids = {c["id"] for c in gt.categories}
    anns = []
    for i, det in enumerate(data):
        where = f"{path}: [{i}]"
        det = {"id": i + 1, "image_id": _get(det, "image_id", where),
               "category_id": _get(det, "category_id", where),
               "bbox": _get(det, "bbox", where), "iscrowd": 0, "score": _get(det, "score", where)}
        ann = _check_annotation(det, where, image_ids, category_ids, need_score=True)
        ann["area"] = ann["bbox"][2] * ann["bbox"][3]
        anns.append(ann)
    return DetectionSet(images=gt.images, categories=gt.categories, annotations=anns)


def write_coco_results(dataset: DetectionSet, path: str | os.PathLike) -> None:
    """Write the annotations of ``dataset`` as a COCO results list
    (``image_id, category_id, bbox, score``), in annotation order.

    Raises:
        ValueError: if an annotation has no ``score``.
    """
    ds = check_dataset(dataset)
    out = []
    for i, a in enumerate(ds.annotations):
        if "score" not in a:
            _fail(f"dataset: annotations[{i}]", "no score: not a set of detections")
        out.append({"image_id": a["image_id"], "category_id": a["category_id"],
                    "bbox": a["bbox"], "score": a["score"]})
    _write_json(out, path)


# ----------------------------------------------------------------------------- categories

def _categories_from(names, where: str) -> list | None:
    """``names`` (list of str -> ids 0..K-1, dict id -> name, or list of category dicts) as
    category dicts; None stays None."""
    if names is None:
        return None
    if isinstance(names, dict):
        cats = [{"id": k, "name": v} for k, v in names.items()]
    elif isinstance(names, (list, tuple)) and all(isinstance(n, dict) for n in names):
        cats = list(names)
    elif isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        cats = [{"id": k, "name": n} for k, n in enumerate(names)]
    else:
        raise ValueError(f"names: expected a list of names, a dict id -> name or category "
                         f"dicts, got {names!r}")
    cats = [_check_category(c, f"{where}[{i}]") for i, c in enumerate(cats)]
    _unique(cats, where, "")
    return cats


def _read_classes_file(path: Path) -> list:
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip():
            _fail(f"{path}:{i + 1}", "empty class name")
    return [{"id": k, "name": n.strip()} for k, n in enumerate(lines)]


# ----------------------------------------------------------------------------- YOLO txt

def _fmt(v: float, decimals: int | None) -> str:
    return repr(float(v)) if decimals is None else f"{v:.{decimals}f}"


def _label_files(labels_dir: Path) -> list:
    return sorted(p for p in labels_dir.glob("*.txt") if p.name != CLASSES_FILE)


def _default_images_dir(labels_dir: Path) -> Path | None:
    """The layout of Ultralytics 8.3 / 8.4: ``.../labels/<split>`` next to ``.../images/<split>``."""
    parts = list(labels_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "labels":
            candidate = Path(*parts[:i], "images", *parts[i + 1:])
            return candidate if candidate.is_dir() else None
    return None


def _images_in(images_dir: Path) -> list:
    """Image dicts (ids 1..n in file-name order) for the image files of ``images_dir``; sizes
    from the file headers (Pillow opens lazily, no decoding)."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images = []
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                width, height = im.size
        except (OSError, UnidentifiedImageError) as exc:
            raise ValueError(f"{p}: cannot read the image size: {exc}") from exc
        images.append({"id": i + 1, "file_name": p.name, "width": width, "height": height})
    return images


def _parse_yolo_line(line: str, where: str, n_cols: int | None) -> list:
    cols = line.split()
    if len(cols) not in (5, 6):
        _fail(where, f"expected 5 columns (class cx cy w h) or 6 (... conf), got {len(cols)}")
    if n_cols is not None and len(cols) != n_cols:
        _fail(where, f"expected {n_cols} columns like the lines before, got {len(cols)}")
    bad = [c for c in cols if LABEL_NUMBER.fullmatch(c) is None]
    if bad:  # float() would also take '1_0' (10) and non-ASCII digits
        _fail(where, f"expected numbers, got {bad[0]!r} in {line.strip()!r}")
    values = [parse_label_number(c, where) for c in cols]
    cls = _int(values[0], f"{where}: class")
    if cls < 0:
        _fail(where, f"negative class {cls}")
    names = ("cx", "cy", "w", "h", "conf")
    rest = [_float(v, f"{where}: {n}", lo=0.0, hi=1.0) for n, v in zip(names, values[1:])]
    return [cls, *rest]


def read_yolo(labels_dir: str | os.PathLike, images_dir: str | os.PathLike | None = None,
              images: Sequence[dict] | None = None, names: Sequence[str] | dict[int, str] | Sequence[dict] | None = None
             ) -> DetectionSet:
    """Read a directory of YOLO txt label (or prediction) files, one per image.

    Args:
        labels_dir (str | Path): ``<stem>.txt`` files of lines ``class cx cy w h`` (ground truth)
            or ``class cx cy w h conf`` (predictions); every line of the set must have the same
            column count. ``classes.txt`` here is not a label file.
        images_dir (str | Path | None): the images, for their sizes (header read by Pillow) and
            the image list (ids 1..n in file-name order, images without a label file included
            with no annotations). Default: the sibling Ultralytics 8.3 / 8.4 use (``labels`` ->
            ``images`` in the path), used only when ``images`` is None.
        images (list[dict] | None): explicit image list ``{"id", "file_name", "width",
            "height"}`` (e.g. a ground truth's ``images``); it wins over ``images_dir``. Label
            files are matched to images by file stem.
        names (list[str] | dict[int, str] | list[dict] | None): the classes; default
            ``classes.txt`` in ``labels_dir`` or its parent, else one category ``str(k)`` per
            class index seen.

    Returns:
        DetectionSet: annotations in (image, line) order with ids 1..m, ``category_id`` = the
        class index, ``bbox = [(cx - w/2) W, (cy - h/2) H, w W, h H]``, ``area = w * h`` in
        pixels, ``iscrowd = 0``, and ``score`` = conf for 6-column files.

    Raises:
        ValueError: ``"<file>:<line>: <problem>"`` for wrong column counts, non-numbers, class
        indices not integer, negative or not in ``names``, values out of [0, 1]; a label file
        with no image; no way to get image sizes.
    """
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise ValueError(f"labels_dir: {labels_dir} is not a directory")
    if images is not None:
        image_list = _check_set({"images": list(images), "categories": [], "annotations": []},
                                "images").images
    else:
        img_dir = Path(images_dir) if images_dir is not None else _default_images_dir(labels_dir)
        if img_dir is None or not img_dir.is_dir():
            raise ValueError(f"images_dir: need the images (or `images`) for the sizes of "
                             f"{labels_dir}, got {images_dir!r}")
        image_list = _images_in(img_dir)
    by_stem = {}
    for im in image_list:
        stem = Path(im["file_name"]).stem
        if stem in by_stem:
            raise ValueError(f"images: two images with the stem {stem!r}: "
                             f"{by_stem[stem]['file_name']} and {im['file_name']}")
        by_stem[stem] = im
    categories = _categories_from(names, "names")
    if categories is None:
        for candidate in (labels_dir / CLASSES_FILE, labels_dir.parent / CLASSES_FILE):
            if candidate.is_file():
                categories = _read_classes_file(candidate)
                break
    known = None if categories is None else {c["id"] for c in categories}
    rows, n_cols = {}, None  # stem -> list of parsed lines
    for path in _label_files(labels_dir):
        if path.stem not in by_stem:
            _fail(str(path), "no image with this stem")
        parsed = []
        for lineno, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            row = _parse_yolo_line(line, where, n_cols)
            n_cols = len(line.split())
            if known is not None and row[0] not in known:
                _fail(where, f"class {row[0]} is not in the class names")
            parsed.append(row)
        rows[path.stem] = parsed
    annotations = []
    for im in image_list:
        W, H = im["width"], im["height"]
        for cls, cx, cy, w, h, *conf in rows.get(Path(im["file_name"]).stem, []):
            bw, bh = w * W, h * H
            ann = {"id": len(annotations) + 1, "image_id": im["id"], "category_id": cls,
                   "bbox": [cx * W - bw / 2, cy * H - bh / 2, bw, bh], "area": bw * bh,
                   "iscrowd": 0}
            if conf:
                ann["score"] = conf[0]
            annotations.append(ann)
    if categories is None:
        seen = sorted({a["category_id"] for a in annotations})
        categories = [{"id": k, "name": str(k)} for k in seen]
    return _check_set({"images": image_list, "categories": categories,
                       "annotations": annotations}, str(labels_dir))


def write_yolo(dataset: DetectionSet, labels_dir: str | os.PathLike, decimals: int = 6) -> None:
    """Write ``dataset`` as YOLO txt files, one ``<image stem>.txt`` per image (empty for an
    image without annotations), lines in annotation order.

    Args:
        dataset (DetectionSet): category ids must be non-negative (they are the class indices).
        labels_dir (str | Path): created if missing.
        decimals (int | None): digits after the point (Ultralytics 8.3 / 8.4 write ``%g``,
            6 significant digits: 6 decimals for values in [0.1, 1)); None writes the shortest
            repr that reads back to the same float.

    A sixth column holds ``score`` when the annotations have one (all of them or none). Crowd
    annotations are skipped. Normalised values are written as computed (a box reaching past the
    image gives values outside [0, 1], which :func:`read_yolo` rejects).
    """
    ds = check_dataset(dataset)
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int)
                                 or decimals < 0):
        raise ValueError(f"decimals: expected a non-negative int or None, got {decimals!r}")
    for i, c in enumerate(ds.categories):
        if c["id"] < 0:
            _fail(f"dataset: categories[{i}].id", f"YOLO class indices are >= 0, got {c['id']}")
    with_score = {"score" in a for a in ds.annotations}
    if len(with_score) > 1:
        raise ValueError("dataset: some annotations have a score and some do not")
    stems = {}
    for im in ds.images:
        stem = Path(im["file_name"]).stem
        if stem in stems:
            raise ValueError(f"dataset: images {stems[stem]} and {im['file_name']} share the "
                             f"label file {stem}.txt")
        stems[stem] = im["file_name"]
    lines = {im["id"]: [] for im in ds.images}
    size = {im["id"]: (im["width"], im["height"]) for im in ds.images}
    for a in ds.annotations:
        if a["iscrowd"]:
            continue
        W, H = size[a["image_id"]]
        x, y, w, h = a["bbox"]
        vals = [(x + w / 2) / W, (y + h / 2) / H, w / W, h / H]
        if "score" in a:
            vals.append(a["score"])
        lines[a["image_id"]].append(" ".join([str(a["category_id"])]
                                             + [_fmt(v, decimals) for v in vals]) + "\n")
    out = Path(labels_dir)
    out.mkdir(parents=True, exist_ok=True)
    for im in ds.images:
        path = out / f"{Path(im['file_name']).stem}.txt"
        path.write_bytes("".join(lines[im["id"]]).encode("utf-8"))


# ----------------------------------------------------------------------------- Pascal VOC XML

def _xml_text(elem, tag: str, where: str, *, required: bool = True) -> str | None:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            _fail(f"{where}/{tag}", "missing element")
        return None
    return child.text.strip()


def _xml_number(elem, tag: str, where: str) -> float:
    text = _xml_text(elem, tag, where)
    try:
        return float(text)
    except ValueError:
        _fail(f"{where}/{tag}", f"expected a number, got {text!r}")


def _parse_voc_file(path: Path) -> tuple:
    """(image dict without id, list of (name, difficult, [x, y, w, h]))."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise ValueError(f"{path}: line {line}, column {col}: broken XML: {exc}") from exc
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    where = f"{path}: {root.tag}"
    if root.tag != "annotation":
        _fail(where, "expected the root element <annotation>")
    image = {"file_name": _xml_text(root, "filename", where)}
    size = root.find("size")
    if size is None:
        _fail(f"{where}/size", "missing element")
    for key in ("width", "height"):
        v = _xml_number(size, key, f"{where}/size")
        if not math.isfinite(v) or v <= 0 or v != int(v):
            _fail(f"{where}/size/{key}", f"expected a positive integer, got {v!r}")
        image[key] = int(v)
    objects = []
    for i, obj in enumerate(root.findall("object")):
        ow = f"{path}: object[{i}]"
        name = _xml_text(obj, "name", ow)
        difficult = 0
        d_text = _xml_text(obj, "difficult", ow, required=False)
        if d_text is not None:
            if d_text not in ("0", "1"):
                _fail(f"{ow}/difficult", f"expected 0 or 1, got {d_text!r}")
            difficult = int(d_text)
        box = obj.find("bndbox")
        if box is None:
            _fail(f"{ow}/bndbox", "missing element")
        c = {k: _xml_number(box, k, f"{ow}/bndbox") for k in ("xmin", "ymin", "xmax", "ymax")}
        for k, v in c.items():
            if not math.isfinite(v):
                _fail(f"{ow}/bndbox/{k}", f"expected a finite number, got {v!r}")
        x, y = c["xmin"] - 1, c["ymin"] - 1
        w, h = c["xmax"] - x, c["ymax"] - y
        if w < 0 or h < 0:
            _fail(f"{ow}/bndbox", f"xmax < xmin - 1 or ymax < ymin - 1: {c}")
        objects.append((name, difficult, [x, y, w, h]))
    return image, objects


def read_voc(xml_dir: str | os.PathLike, names: Sequence[str] | dict[int, str] | Sequence[dict] | None = None
            ) -> DetectionSet:
    """Read a directory of Pascal VOC XML annotation files (one ``*.xml`` per image).

    Args:
        xml_dir (str | Path): the XML files; each needs ``filename``, ``size/width``,
            ``size/height`` and, per ``object``, ``name`` and ``bndbox/xmin ymin xmax ymax``
            (1-based inclusive pixels); ``difficult`` defaults to 0.
        names (list[str] | dict[int, str] | list[dict] | None): class name -> id; default the
            sorted names seen, ids 0..K-1.

    Returns:
        DetectionSet: images with ids 1..n in file-name order, annotations with ids 1..m in
        (image, object) order, ``bbox = [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]``,
        ``area = w * h``, ``iscrowd = 0``, ``difficult``.

    Raises:
        ValueError: ``"<file>: object[2]/bndbox/xmin: <problem>"``, or ``"<file>: line L,
        column C: broken XML"``: missing elements, non-numbers, non-finite or inverted corners,
        bad sizes, object names not in ``names``, two files for one image.
    """
    xml_dir = Path(xml_dir)
    if not xml_dir.is_dir():
        raise ValueError(f"xml_dir: {xml_dir} is not a directory")
    parsed = []
    for path in sorted(xml_dir.glob("*.xml")):
        parsed.append((path, *_parse_voc_file(path)))
    parsed.sort(key=lambda t: t[1]["file_name"])
    for (p0, a, _), (p1, b, _) in zip(parsed, parsed[1:]):
        if a["file_name"] == b["file_name"]:
            _fail(str(p1), f"filename {b['file_name']!r} is also in {p0}")
    categories = _categories_from(names, "names")
    if categories is None:
        seen = sorted({name for _, _, objs in parsed for name, _, _ in objs})
        categories = [{"id": k, "name": n} for k, n in enumerate(seen)]
    by_name = {}
    for c in categories:
        if c["name"] in by_name:
            raise ValueError(f"names: the name {c['name']!r} is used twice")
        by_name[c["name"]] = c["id"]
    images, annotations = [], []
    for i, (path, image, objects) in enumerate(parsed):
        images.append({"id": i + 1, **image})
        for j, (name, difficult, bbox) in enumerate(objects):
            if name not in by_name:
                _fail(f"{path}: object[{j}]/name", f"{name!r} is not in the class names")
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": by_name[name], "bbox": bbox,
                                "area": bbox[2] * bbox[3], "iscrowd": 0,
                                "difficult": difficult})
    return _check_set({"images": images, "categories": categories,
                       "annotations": annotations}, str(xml_dir))


def _voc_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v))


def _voc_min_corner(x: float) -> float:
    """``x + 1``, rounded down where float rounding went up, so that the reader's ``xmin - 1``
    never exceeds ``x`` and a zero-width box never comes back inverted."""
    v = x + 1.0
    return float(np.nextafter(v, -np.inf)) if v - 1.0 > x else v


def write_voc(dataset: DetectionSet, xml_dir: str | os.PathLike) -> None:
    """Write ``dataset`` as Pascal VOC XML, one ``<image stem>.xml`` per image.

    Corners are 1-based inclusive (``xmin = x + 1``, ``xmax = x + w``), written as integers when
    whole and as exact reprs otherwise (a fractional ``x + 1`` that rounds up is stepped down one
    ulp, so the box read back never inverts); ``difficult`` is written (0 when absent); crowd
    annotations are skipped; scores are not written. Category names must be unique.
    """
    ds = check_dataset(dataset)
    names = {}
    for i, c in enumerate(ds.categories):
        if c["name"] in names.values():
            _fail(f"dataset: categories[{i}].name", f"the name {c['name']!r} is used twice")
        names[c["id"]] = c["name"]
    objects = {im["id"]: [] for im in ds.images}
    for a in ds.annotations:
        if not a["iscrowd"]:
            objects[a["image_id"]].append(a)
    out = Path(xml_dir)
    out.mkdir(parents=True, exist_ok=True)
    stems = set()
    for im in ds.images:
        stem = Path(im["file_name"]).stem
        if stem in stems:
            raise ValueError(f"dataset: two images share the XML file {stem}.xml")
        stems.add(stem)
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = im["file_name"]
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(im["width"])
        ET.SubElement(size, "height").text = str(im["height"])
        ET.SubElement(size, "depth").text = "3"
        for a in objects[im["id"]]:
            x, y, w, h = a["bbox"]
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = names[a["category_id"]]
            ET.SubElement(obj, "difficult").text = str(a.get("difficult", 0))
            box = ET.SubElement(obj, "bndbox")
            for tag, v in (("xmin", _voc_min_corner(x)), ("ymin", _voc_min_corner(y)),
                           ("xmax", x + w), ("ymax", y + h)):
                ET.SubElement(box, tag).text = _voc_number(v)
        ET.indent(root)
        (out / f"{stem}.xml").write_bytes(ET.tostring(root, encoding="utf-8") + b"\n")


# ----------------------------------------------------------------------------- auto-detection

def load_any(path: str | os.PathLike, gt: DetectionSet | None = None, images_dir: str | os.PathLike | None = None,
             names: Sequence[str] | dict[int, str] | Sequence[dict] | None = None) -> DetectionSet:
    """Read ground truth or predictions in whichever format ``path`` holds.

    Detection: a ``.json`` file holding an object is COCO ground truth (:func:`read_coco`), one
    holding a list is COCO results (:func:`read_coco_results`, needs ``gt``); a directory of
    ``*.xml`` is VOC (:func:`read_voc`); a directory of ``*.txt`` is YOLO (:func:`read_yolo`);
    a directory with a ``labels`` sub-directory (a YOLO data-set root) is YOLO on that.

    Args:
        path (str | Path): file or directory.
        gt (DetectionSet | None): ground truth; YOLO then takes its images (ids, sizes) and, unless
            ``names`` is given, its categories; COCO results need it.
        images_dir (str | Path | None): YOLO images, when there is no ``gt``.
        names: class names, as for :func:`read_yolo` / :func:`read_voc`.

    Raises:
        ValueError: a path that does not exist, a directory with both or neither of txt and xml
        files, results without ``gt``, and every reader's errors.
    """
    path = Path(path)
    if gt is not None:
        gt = check_dataset(gt)
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise ValueError(f"path: {path}: expected a .json file or a directory")
        data = _read_json_file(path)
        if isinstance(data, list):
            if gt is None:
                raise ValueError(f"gt: {path} holds COCO results; they need the ground truth")
            return read_coco_results(path, gt)
        return read_coco(path)
    if not path.is_dir():
        raise ValueError(f"path: {path} does not exist")
    if (path / "labels").is_dir() and not any(path.glob("*.xml")):
        # a YOLO data-set root (its train.txt / val.txt are image lists, not labels)
        path = path / "labels"
        if images_dir is None and (path.parent / "images").is_dir():
            images_dir = path.parent / "images"
    has_txt, has_xml = bool(_label_files(path)), any(path.glob("*.xml"))
    if has_txt and has_xml:
        raise ValueError(f"path: {path} holds both .txt and .xml files; which format is it?")
    if has_xml:
        return read_voc(path, names=names)
    if has_txt:
        if names is None and gt is not None:
            names = gt.categories
        return read_yolo(path, images_dir=images_dir,
                         images=gt.images if gt is not None else None, names=names)
    raise ValueError(f"path: {path} holds no .json, .txt or .xml annotations")
