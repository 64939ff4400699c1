"""Reader of Ultralytics-style data-set YAML files, without a YAML library.

Accepted subset (what Ultralytics' own data files use), one construct per line:

- ``# comment`` lines, blank lines, and trailing `` # comments`` after a value;
- top-level ``key: value`` with a scalar value: an integer, a float, ``null`` / ``~`` / nothing
  (None), ``true`` / ``false``, or a string, bare or in single or double quotes;
- top-level ``key: [a, b, c]``: a flow list of such scalars on one line (no nesting, no commas
  inside quoted items);
- a top-level ``key:`` with nothing after it, followed by an indented block of either
  ``- value`` items (a list) or ``k: value`` entries (a mapping, e.g. ``names`` by class index).

Anything else (deeper nesting, multi-line strings, anchors, flow mappings, tabs in indentation)
is a ``ValueError`` naming the file and line.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["read_data_yaml"]

_KEY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*:(?:\s+(.*)|)$")
_SPLITS = ("train", "val", "test")


def _strip_comment(text: str) -> str:
    """``text`` without a trailing comment (a ``#`` at the start or after whitespace, unquoted)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str, where: str):
    t = text.strip()
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t[0] in "'\"":
        raise ValueError(f"{where}: unterminated quoted string {t!r}")
    if t[0] in "{&*|>!%@`":
        raise ValueError(f"{where}: unsupported YAML construct {t!r} (flat subset only)")
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def _value(text: str, where: str):
    t = text.strip()
    if t.startswith("["):
        if not t.endswith("]"):
            raise ValueError(f"{where}: flow list must close on the same line: {t!r}")
        body = t[1:-1].strip()
        return [] if not body else [_scalar(v, where) for v in body.split(",")]
    return _scalar(t, where)


def _parse(text: str, path: Path) -> dict:
    out: dict = {}
    block_key, block_indent = None, None
    for lineno, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{lineno}"
        line = _strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[:indent + 1].endswith("\t") or "\t" in line[:indent + 1]:
            raise ValueError(f"{where}: tabs are not allowed in indentation")
        body = line.strip()
        if indent == 0:
            m = _KEY.match(body)
            if not m:
                raise ValueError(f"{where}: expected 'key: value', got {body!r}")
            key, rest = m.group(1), m.group(2)
            if key in out:
                raise ValueError(f"{where}: duplicate key {key!r}")
            if rest is None or not rest.strip():
                out[key] = None  # a block may follow
                block_key, block_indent = key, None
            else:
                out[key] = _value(rest, where)
                block_key = None
            continue
        if block_key is None:
            raise ValueError(f"{where}: unexpected indentation (only one level under a "
                             f"'key:' line is supported)")
        if block_indent is None:
            block_indent = indent
        elif indent != block_indent:
            raise ValueError(f"{where}: inconsistent indentation under {block_key!r}")
        current = out[block_key]
        if body.startswith("- ") or body == "-":
            if current is None:
                current = out[block_key] = []
            if not isinstance(current, list):
                raise ValueError(f"{where}: a list item inside the mapping {block_key!r}")
            current.append(_value(body[1:], where))
            continue
        m = _KEY.match(body)
        if not m:
            raise ValueError(f"{where}: expected '- item' or 'key: value' under {block_key!r}, "
                             f"got {body!r}")
        if current is None:
            current = out[block_key] = {}
        if not isinstance(current, dict):
            raise ValueError(f"{where}: a mapping entry inside the list {block_key!r}")
        k = _scalar(m.group(1), where)
        if k in current:
            raise ValueError(f"{where}: duplicate key {k!r} under {block_key!r}")
        if m.group(2) is None or not m.group(2).strip():
            raise ValueError(f"{where}: nested blocks are not supported (under {block_key!r})")
        current[k] = _value(m.group(2), where)
    return out


def _names(data: dict, path: Path) -> list:
    names, nc = data.get("names"), data.get("nc")
    if isinstance(names, dict):
        keys = sorted(names, key=lambda k: (not isinstance(k, int), k))
        if any(isinstance(k, bool) or not isinstance(k, int) for k in keys) \
                or keys != list(range(len(keys))):
            raise ValueError(f"{path}: names: expected keys 0..{len(keys) - 1}, got {keys}")
        names = [names[k] for k in keys]
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
    ``nc``) in the flat subset documented in this module.

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
        ValueError: ``"<file>:<line>: <problem>"`` for syntax outside the subset,
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
