"""Reader of Ultralytics-style data-set YAML files (``path``, ``train``, ``val``, ``test``,
``names``, ``nc``), parsed with PyYAML's safe loader (plain data only: no Python objects, no
code runs), as Ultralytics' own ``yaml_load`` does.

On top of YAML itself: the top level must be a mapping, duplicate keys are an error (PyYAML
would keep the last silently), and ``names`` / ``nc`` / the split paths are checked. Every error
is a ``ValueError`` naming the file, and the line (syntax, duplicate keys) or the key.
"""
from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["read_data_yaml"]

_SPLITS = ("train", "val", "test")


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


def read_data_yaml(path) -> dict:
    """Read an Ultralytics-style data-set YAML (``path``, ``train``, ``val``, ``test``, ``names``,
    ``nc``) with ``yaml.safe_load`` semantics.

    Args:
        path (str | Path): the YAML file.

    Returns:
        dict: every key of the file, with
        ``"path"`` (Path): the data-set root; a relative ``path`` is relative to the YAML file's
        directory (the fixture's convention; Ultralytics resolves it against its data-sets
        directory), absent means that directory;
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: byte {exc.start}: not UTF-8 text") from exc
    data = _parse(text, path)
    root_value = data.get("path")
    if root_value is not None and not isinstance(root_value, str):
        raise ValueError(f"{path}: path: expected a directory, got {root_value!r}")
    root = path.parent if root_value is None else _resolve(root_value, path.parent, "path", path)
    data["path"] = root
    for split in _SPLITS:
        data[split] = _resolve(data.get(split), root, split, path)
    if data["train"] is None and data["val"] is None:
        raise ValueError(f"{path}: train, val: neither split is given")
    data["names"] = _names(data, path)
    data["nc"] = len(data["names"])
    data["yaml_file"] = path
    return data
