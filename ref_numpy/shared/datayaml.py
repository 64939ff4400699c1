"""Reader of Ultralytics 8.3 / 8.4 data-set YAML files (``path``, ``train``, ``val``, ``test``,
``names``, ``nc``), parsed with PyYAML's safe loader (plain data only: no Python objects, no
code runs), as the ``YAML.load`` of Ultralytics 8.3 / 8.4 does.

On top of YAML itself: the top level must be a mapping, duplicate keys are an error (PyYAML
would keep the last silently), and ``names`` / ``nc`` / the split paths are checked. Every error
is a ``ValueError`` naming the file, and the line (syntax, duplicate keys) or the key.

:func:`split_images` turns a split (``train`` / ``val`` / ``test``) into its image files, so that
``yolo-ref predict --data d.yaml --split val`` and ``yolo-ref evaluate --data d.yaml --split val``
see the same images in the same order as training's validation.

Plain Python (PyYAML, no arrays, no torch): shared by ``ref_numpy.cli.evaluate`` and
``torch_impl.data`` (which re-exports :func:`read_data_yaml`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from ref_numpy import formats
from ref_numpy.formats import IMAGE_SUFFIXES
from ref_numpy.shared.textfile import read_text

__all__ = ["SPLITS", "check_label_files", "read_data_yaml", "read_image_list", "read_split",
           "read_yolo_images", "split_images", "yolo_label_path"]

SPLITS = ("train", "val", "test")



class _UniqueKeySafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping."""


def _construct_unique_mapping(loader: _UniqueKeySafeLoader, node: yaml.MappingNode,
                              deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeySafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                     _construct_unique_mapping)


def _parse(text: str, path: Path) -> dict:
    """``yaml.safe_load`` semantics (plus unique keys); the top level must be a mapping."""
    try:
        data = yaml.load(text, Loader=_UniqueKeySafeLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ValueError(f"{path}{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of 'key: value' lines at the top level, "
                         f"got a {type(data).__name__}")
    return data


def _names(data: dict, path: Path) -> list:
    names, nc = data.get("names"), data.get("nc")
    if isinstance(names, dict):
        keys = list(names)
        if any(isinstance(k, bool) or not isinstance(k, int) for k in keys) \
                or sorted(keys) != list(range(len(keys))):
            raise ValueError(f"{path}: names: expected keys 0..{len(keys) - 1}, got {keys}")
        names = [names[k] for k in range(len(keys))]
    if names is None:
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
            return [f"class{k}" for k in range(nc)]
        raise ValueError(f"{path}: names: missing (and no positive nc to number the classes)")
    if not isinstance(names, list) or not names:
        raise ValueError(f"{path}: names: expected a non-empty list or mapping, got {names!r}")
    names = [str(n) if n is not None else "" for n in names]
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc != len(names)):
        raise ValueError(f"{path}: nc: {nc!r} does not match the {len(names)} names")
    first: dict = {}
    repeated = []
    for k, n in enumerate(names):
        if n in first:
            repeated.append(f"{n!r} (classes {first[n]} and {k})")
        first.setdefault(n, k)
    if repeated:  # a name -> class lookup (COCO / VOC sets, --names) would be ambiguous
        raise ValueError(f"{path}: names: each class needs its own name; repeated: "
                         f"{', '.join(repeated)}")
    return names


def _resolve(value, root: Path, key: str, path: Path):
    if value is None:
        return None
    if isinstance(value, list):
        return [_resolve(v, root, key, path) for v in value]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: {key}: expected a path, got {value!r}")
    p = Path(value)
    return p if p.is_absolute() else (root / p)


def read_data_yaml(path: str | os.PathLike) -> dict:
    """Read an Ultralytics 8.3 / 8.4 data-set YAML (``path``, ``train``, ``val``, ``test``, ``names``,
    ``nc``) with ``yaml.safe_load`` semantics.

    Args:
        path (str | Path): the YAML file.

    Returns:
        dict: every key of the file, with
        ``"path"`` (Path): the data-set root; a relative ``path`` is relative to the YAML file's
        directory (the fixture's convention; Ultralytics 8.3 / 8.4 resolve it against the working
        directory, then their data-sets directory), absent means that directory;
        ``"train"``, ``"val"``, ``"test"`` (Path | list[Path] | None): resolved against the root;
        ``"names"`` (list[str]): class names by index (a mapping must have keys 0..nc-1; absent
        names with ``nc`` give ``class0..``);
        ``"nc"`` (int): ``len(names)``;
        ``"yaml_file"`` (Path): the file read.

    Raises:
        ValueError: ``"<file>:<line>: <problem>"`` for invalid YAML or a duplicate key,
        ``"<file>: <key>: <problem>"`` for a missing or inconsistent ``names`` / ``nc``, bad
        paths, or an unreadable file.
    """
    path = Path(path)
    data = _parse(read_text(path), path)
    root_value = data.get("path")
    if root_value is not None and not isinstance(root_value, str):
        raise ValueError(f"{path}: path: expected a directory, got {root_value!r}")
    root = path.parent if root_value is None else _resolve(root_value, path.parent, "path", path)
    data["path"] = root
    for split in SPLITS:
        data[split] = _resolve(data.get(split), root, split, path)
    if data["train"] is None and data["val"] is None:
        raise ValueError(f"{path}: train, val: neither split is given")
    data["names"] = _names(data, path)
    data["nc"] = len(data["names"])
    data["yaml_file"] = path
    return data


def read_image_list(list_file: str | os.PathLike) -> list[Path]:
    """The images of an image-list file (``train.txt`` in an Ultralytics 8.3 / 8.4 data set): one
    path a line, blank lines and ``#`` comments skipped, relative paths against the list file's
    directory.

    Raises:
        ValueError: ``"<list>: cannot read ..."``, ``"<list>:<line>: '<entry>' is not an image
            file"``, or ``"<list>: lists no images"``.
    """
    list_file = Path(list_file)
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{list_file}: cannot read: {exc}") from exc
    images = []
    for lineno, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry)
        p = p if p.is_absolute() else list_file.parent / p
        if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            raise ValueError(f"{list_file}:{lineno}: {entry!r} is not an image file")
        images.append(p)
    if not images:
        raise ValueError(f"{list_file}: lists no images")
    return images


def _source_images(source: Path, where: str) -> list[Path]:
    if source.is_file() and source.suffix.lower() == ".txt":
        return read_image_list(source)
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    if source.is_dir():
        images = sorted(p for p in source.iterdir()
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"{where}: {source} holds no images")
        return images
    raise ValueError(f"{where}: {source} is not an image list (.txt), an image directory or "
                     f"an image")


def split_images(data: str | os.PathLike | dict, split: str = "val") -> list[Path]:
    """The image files of ``split`` of a data-set YAML, in the order training reads them.

    Args:
        data (str | Path | dict): the YAML file, or :func:`read_data_yaml`'s result.
        split (str): ``train``, ``val`` or ``test``.

    Returns:
        list[Path]: an image-list ``.txt`` in its line order, a directory's images sorted by
        name, a single image, or (a list of these) their concatenation.

    Raises:
        ValueError: ``"<yaml>: split: expected one of train, val, test"``, ``"<yaml>: val: no
            such split in the file"``, a source that is not a list, directory or image, and
            :func:`read_image_list`'s errors.
    """
    if not isinstance(data, dict):
        data = read_data_yaml(data)
    path = data.get("yaml_file", "data")
    if split not in SPLITS:
        raise ValueError(f"{path}: split (--split): expected one of {', '.join(SPLITS)}, "
                         f"got {split!r}")
    value = data.get(split)
    if value is None:
        raise ValueError(f"{path}: {split}: no such split in the file")
    sources = value if isinstance(value, list) else [value]
    images = []
    for source in sources:
        images += _source_images(Path(source), f"{path}: {split}")
    return images


# ----------------------------------------------------------------------------- ground truth of a split

def yolo_label_path(image_path: str | os.PathLike) -> Path:
    """The YOLO label file of an image: the last ``images`` directory of the path becomes
    ``labels`` and the suffix ``.txt`` (YOLOv5 ``img2label_paths``); without an ``images``
    directory, the ``.txt`` beside the image."""
    parts = list(Path(image_path).parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            parts[k] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def check_label_files(image_files: Sequence[str | os.PathLike], where: str = "images") -> list[Path]:
    """The label file of each image (:func:`yolo_label_path`), refusing two images that would
    share one: ``a.jpg`` and ``a.png`` in one directory both map to ``labels/a.txt``.

    yolov5 v7.0 and Ultralytics 8.4 (``img2label_paths``) give both images the same labels
    silently; here it is an error naming both files (an intentional difference). The same path
    listed twice (oversampling in an image list) is one image, not a clash.

    Raises:
        ValueError: ``"<where>: images/a.jpg and images/a.png share the label file
            labels/a.txt; rename one"``.
    """
    owner: dict = {}
    out = []
    for p in image_files:
        p = Path(p)
        lp = yolo_label_path(p)
        other = owner.setdefault(lp, p)
        if other != p:
            raise ValueError(f"{where}: {other} and {p} share the label file {lp}; rename one")
        out.append(lp)
    return out


def read_yolo_images(image_files: Sequence[str | os.PathLike],
                     names: Sequence[str] | dict[int, str] | Sequence[dict] | None = None) -> formats.DetectionSet:
    """The YOLO ground truth of a list of image files (a split of an Ultralytics 8.3 / 8.4 data set:
    ``train.txt`` / ``val.txt``), labels found by :func:`yolo_label_path`.

    Args:
        image_files (Sequence[str | Path]): the images, in order (ids 1..n in this order, as
            ``yolo-ref predict`` numbers the same list); ``file_name`` is the path as given.
        names: the classes, as for :func:`read_yolo` (default: ``str(k)`` per class seen).

    Returns:
        DetectionSet: sizes from the image headers; an image without a label file has no
        annotations; annotations as :func:`read_yolo` builds them (5-column lines only).

    Raises:
        ValueError: an unreadable image (``"<image>: cannot read the image size"``), a label
        line that is malformed, has a confidence column or a class not in ``names``
        (``"<label file>:<line>: ..."``), two images with the same path, an empty list.
    """
    from PIL import Image, UnidentifiedImageError

    files = [Path(p) for p in image_files]
    if not files:
        raise ValueError("image_files: expected at least one image, got none")
    categories = formats._categories_from(names, "names")
    known = None if categories is None else {c["id"] for c in categories}
    images, annotations, seen = [], [], set()
    for i, p in enumerate(files):
        if str(p) in seen:
            raise ValueError(f"image_files: {p} is listed twice")
        seen.add(str(p))
    check_label_files(files, where="image_files")
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                W, H = im.size
        except (OSError, UnidentifiedImageError) as exc:
            raise ValueError(f"{p}: cannot read the image size: {exc}") from exc
        images.append({"id": i + 1, "file_name": str(p), "width": W, "height": H})
        lp = yolo_label_path(p)
        if not lp.is_file():
            continue
        for lineno, line in enumerate(read_text(lp).splitlines(), 1):
            if not line.strip():
                continue
            where = f"{lp}:{lineno}"
            cls, cx, cy, w, h = formats._parse_yolo_line(line, where, 5)
            if known is not None and cls not in known:
                formats._fail(where, f"class {cls} is not in the class names")
            bw, bh = w * W, h * H
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": cls, "bbox": [cx * W - bw / 2, cy * H - bh / 2,
                                                             bw, bh],
                                "area": bw * bh, "iscrowd": 0})
    if categories is None:
        categories = [{"id": k, "name": str(k)}
                      for k in sorted({a["category_id"] for a in annotations})]
    return formats._check_set({"images": images, "categories": categories,
                       "annotations": annotations}, "image_files")


def read_split(data: str | os.PathLike | dict, split: str = "val") -> formats.DetectionSet:
    """The YOLO ground truth of ``split`` of a data-set YAML: :func:`read_yolo_images` of
    :func:`split_images`, with the file's class names (category ids 0..nc-1)."""
    if not isinstance(data, dict):
        data = read_data_yaml(data)
    return read_yolo_images(split_images(data, split), names=data["names"])
