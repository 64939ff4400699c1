"""Meta-test: every mention of Ultralytics names the release it refers to.

The toolkit reproduces three releases (``ULTRALYTICS_VERSIONS``: ``"yolov5"`` = YOLOv5 v7.0,
``"8.3"`` = ultralytics 8.3.253, ``"8.4"`` = ultralytics 8.4.190) whose semantics differ, so a
sentence that says "as Ultralytics does" is ambiguous. This test reads the prose of the project
(docstrings, comments and string literals of every ``.py`` file under ``ref_numpy/``,
``torch_impl/``, ``parity_tests/`` and ``scripts/``, and every ``.md`` file there plus
``README.md``) and fails on each mention that does not name a release, listing ``file:line``.

The rule (:func:`unversioned_mentions`):

- A *mention* is the word ``Ultralytics``, case-sensitive, not part of an identifier:
  ``UltralyticsResult``, ``_UltralyticsTAL`` and ``ultralytics_evaluate`` are names, not
  mentions; ``Ultralytics'``, ``Ultralytics-style`` and ``(Ultralytics)`` are mentions. The
  lower-case ``ultralytics`` is the package's name and is not checked.
- It is *versioned* when one of the next :data:`WINDOW` words (line breaks inside a docstring, a
  string continued by implicit concatenation, or consecutive comment lines do not end the window)
  holds a release: ``8.3``, ``8.4``, ``8.3.253``, ``8.4.190``, a range ``8.0-8.4`` (any ``8.N``,
  optionally ``.P``), a ``vN.M`` tag (``v7.0``), an f-string field that interpolates the version
  or release (``{version}``, ``{ULTRALYTICS_RELEASES[v]}``), or the constants that list them
  (``ULTRALYTICS_VERSIONS``, ``ULTRALYTICS_RELEASES``, ``ULTRALYTICS_DEFAULT_VERSION``).
- Not accepted: ``8``, ``v8``, ``8.x`` (a claim about every 8.x release must say which:
  ``8.0-8.4``), and numbers that are not 8.N releases (``0.5`` in "Ultralytics mAP@0.5").

And every public function or method of ``ref_numpy`` / ``torch_impl`` with a ``version``
parameter says in its docstring which release its default follows
(:func:`test_version_defaults_name_their_release`): ``"8.3"`` -> "8.3.253", ``"8.4"`` ->
"8.4.190", ``"yolov5"`` / NMS's ``"v5"`` -> "v7.0".
"""
from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIRS = ("ref_numpy", "torch_impl", "parity_tests", "scripts")
FILES = ("README.md",)
EXCLUDED = {Path(__file__).resolve()}

#: How many words after a mention may hold its version.
WINDOW = 5

MENTION = re.compile(r"(?<![\w])Ultralytics(?![\w])")
VERSION = re.compile(
    r"(?<![\w.])v?8\.\d+(?:\.\d+)?(?![\w])"              # 8.3, 8.4.190, 8.0 (-8.4)
    r"|(?<![\w.])v\d+\.\d+(?:\.\d+)?(?![\w])"            # v7.0
    r"|\{[^{}]*(?:version|release|VERSION|RELEASE)[^{}]*\}"  # f-string field
    r"|ULTRALYTICS_(?:VERSIONS|RELEASES|DEFAULT_VERSION)")


def _is_versioned(after: str) -> bool:
    """Whether the first :data:`WINDOW` words of ``after`` (the text right after a mention,
    starting with the rest of the mention's own word) name a release."""
    tail = re.match(r"\S*", after).group()  # the rest of the mention's word: ', -style, ...
    words = after[len(tail):].split(None, WINDOW)[:WINDOW]
    return VERSION.search(" ".join([tail, *words])) is not None


def unversioned_mentions(text: str) -> list[int]:
    """Character offsets in ``text`` of the mentions that name no release."""
    return [m.start() for m in MENTION.finditer(text) if not _is_versioned(text[m.end():])]


# ----------------------------------------------------------------------------- prose of a file
class _Prose:
    """Pieces of text and the line each starts on; :meth:`line_of` maps an offset back."""

    def __init__(self) -> None:
        self.segments: list[tuple[int, int, str]] = []  # (offset in text, first line, raw text)
        self.text = ""

    def add(self, line: int, raw: str) -> None:
        self.segments.append((len(self.text), line, raw))
        self.text += raw + " "

    def line_of(self, offset: int) -> int:
        start, line, raw = max((s for s in self.segments if s[0] <= offset), key=lambda s: s[0])
        return line + raw.count("\n", 0, offset - start)


def _source_slice(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (r0, c0), (r1, c1) = start, end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    return "".join([lines[r0 - 1][c0:], *lines[r0:r1 - 1], lines[r1 - 1][:c1]])


def _string_body(raw: str) -> str:
    """A string literal without its prefix and quotes (no line break is removed before the body,
    so line numbers still count from the literal's first line)."""
    quote = re.match(r"[rRbBuUfF]*('\'\'|\"\"\"|'|\")", raw)
    return raw[quote.end():len(raw) - len(quote.group(1))] if quote else raw


def python_prose(source: str) -> list[_Prose]:
    """The comments and string literals (docstrings and f-strings included) of ``source``,
    as pieces: adjacent string literals (implicit concatenation) form one piece, and so do
    comments on consecutive lines."""
    lines = source.splitlines(keepends=True)
    pieces: list[_Prose] = []
    last: tuple[str, int] | None = None  # ("string" | "comment", last line) of the open piece
    fstring_start: list[tuple[int, int]] = []  # Python 3.12+: FSTRING_START positions
    fstart, fend = getattr(tokenize, "FSTRING_START", None), getattr(tokenize, "FSTRING_END", None)

    def add(kind: str, start: tuple[int, int], end: tuple[int, int], raw: str) -> None:
        nonlocal last
        joined = last is not None and last[0] == kind and (kind == "string" or start[0] == last[1] + 1)
        if not joined:
            pieces.append(_Prose())
        pieces[-1].add(start[0], raw)
        last = (kind, end[0])
        if kind == "comment" and lines[start[0] - 1][:start[1]].strip():
            last = None  # a comment after code ends its piece: only whole-line comments join

    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == fstart:
            fstring_start.append(tok.start)
        elif tok.type == fend:
            start = fstring_start.pop()
            if not fstring_start:
                add("string", start, tok.end, _string_body(_source_slice(lines, start, tok.end)))
        elif fstring_start:
            continue  # inside an f-string: taken whole at its FSTRING_END
        elif tok.type == tokenize.STRING:
            add("string", tok.start, tok.end, _string_body(tok.string))
        elif tok.type == tokenize.COMMENT:
            add("comment", tok.start, tok.end, tok.string.lstrip("#"))
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            last = None
        elif tok.type == tokenize.NEWLINE and last is not None and last[0] == "string":
            last = None  # a statement ended: the next string is a new piece
    return pieces


def _files() -> list[Path]:
    found = [ROOT / f for f in FILES]
    for d in DIRS:
        found += sorted((ROOT / d).rglob("*.py")) + sorted((ROOT / d).rglob("*.md"))
    return [f for f in found if f.is_file() and f.resolve() not in EXCLUDED
            and "__pycache__" not in f.parts]


def offenders(path: Path) -> list[str]:
    """``file:line: context`` for each unversioned mention in ``path``."""
    source = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT)
    if path.suffix == ".py":
        pieces = python_prose(source)
    else:
        pieces = [_Prose()]
        pieces[0].add(1, source)
    found = []
    for piece in pieces:
        for offset in unversioned_mentions(piece.text):
            context = " ".join(piece.text[max(0, offset - 30):offset + 60].split())
            found.append(f"{rel}:{piece.line_of(offset)}: ...{context}...")
    return found


# ----------------------------------------------------------------------------- tests
def test_every_ultralytics_mention_names_its_release() -> None:
    files = _files()
    assert any(f.name == "README.md" for f in files) and len(files) > 50, "file walk found too little"
    found = [o for f in files for o in offenders(f)]
    assert not found, (
        f"{len(found)} mention(s) of Ultralytics name no release (say 8.3.253, 8.4.190, "
        f"'8.3 / 8.4', 'YOLOv5 v7.0 / Ultralytics 8.3', or '8.0-8.4' for a fact every release "
        f"shares, within {WINDOW} words after the word):\n" + "\n".join(found))


@pytest.mark.parametrize("text", [
    "as Ultralytics 8.3.253 `make_anchors` does",
    "the Ultralytics (8.4.190) data-set YAML format",
    "YOLOv5 / Ultralytics 8.3, 8.4 AP",
    "Ultralytics' 8.4 matching",
    "Ultralytics-style (8.0-8.4) data-set YAML",
    "the Ultralytics data-set YAML format (8.4.190)",
    "Ultralytics YOLOv5\nv7.0",
    "f'Ultralytics {ULTRALYTICS_RELEASES[version]} settings'",
    "the Ultralytics release in ULTRALYTICS_VERSIONS",
    "UltralyticsResult and ultralytics_evaluate and _UltralyticsTAL are names",
    "ultralytics, the package",
])
def test_rule_accepts(text: str) -> None:
    assert unversioned_mentions(text) == []


@pytest.mark.parametrize("text", [
    "as Ultralytics does",
    "Ultralytics' palette",
    "Ultralytics-style data-set YAML",
    "Ultralytics 8 NMS",
    "Ultralytics v8 defaults",
    "Ultralytics 8.x",
    "Ultralytics mAP@0.5",
    "the Ultralytics validation loop, one two three 8.4.190",  # too far
    "8.4.190, as Ultralytics does",  # a version before the mention does not count
    "(Ultralytics)",
])
def test_rule_rejects(text: str) -> None:
    assert len(unversioned_mentions(text)) == 1


def test_python_prose_pieces() -> None:
    """Strings, f-strings and comments are read; code is not; implicit concatenation and
    consecutive comment lines join; line numbers map back."""
    source = (
        'class UltralyticsThing:\n'                      # 1 an identifier: not prose
        '    """Docstring, as Ultralytics\n'              # 2
        '    8.4.190 does."""\n'                          # 3
        '    x = ("the Ultralytics " f"{version} rule",\n'  # 4
        '         "and Ultralytics")  # Ultralytics\n'    # 5
        '# as Ultralytics\n'                               # 6
        '# 8.3.253 does\n'                                 # 7
        'y = "Ultralytics"\n')                             # 8
    found = []
    for piece in python_prose(source):
        found += [piece.line_of(o) for o in unversioned_mentions(piece.text)]
    # line 4's two literals join (implicit concatenation) and reach {version}; line 5's string
    # follows a comma, a piece of its own; line 5's comment follows code and does not join line
    # 6, which starts a block with line 7.
    assert found == [5, 5, 8]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="f-string tokens exist from Python 3.12")
def test_python_prose_fstring_tokens() -> None:
    pieces = python_prose('x = f"Ultralytics {ULTRALYTICS_RELEASES[v]!r} and {y}"\n')
    assert len(pieces) == 1 and unversioned_mentions(pieces[0].text) == []


# ----------------------------------------------------------------------------- version defaults
#: The release a ``version`` default must name in the docstring.
DEFAULT_RELEASE = {"8.3": "8.3.253", "8.4": "8.4.190", "yolov5": "v7.0", "v5": "v7.0", "v8": "8."}


def _version_functions():
    """(qualified name, function) of every public function / method with a ``version``
    parameter that has a default, in the modules of ``ref_numpy`` and ``torch_impl``."""
    for package_name in ("ref_numpy", "torch_impl"):
        try:
            package = importlib.import_module(package_name)
        except ImportError:  # torch_impl without torch
            continue
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                members = [(name, obj)] if inspect.isfunction(obj) else [
                    (f"{name}.{m}", f) for m, f in vars(obj).items()
                    if inspect.isfunction(f) and not m.startswith("_")] if inspect.isclass(obj) else []
                for qualname, fn in members:
                    param = inspect.signature(fn).parameters.get("version")
                    if param is not None and param.default is not inspect.Parameter.empty:
                        yield f"{info.name}:{qualname}", fn


def test_version_defaults_name_their_release() -> None:
    found = list(_version_functions())
    assert any(q.endswith(":task_aligned_assign") for q, _ in found), "walk found no version function"
    missing = [f"{q} (default {inspect.signature(fn).parameters['version'].default!r}: name "
               f"{DEFAULT_RELEASE.get(inspect.signature(fn).parameters['version'].default, '?')})"
               for q, fn in found
               if DEFAULT_RELEASE.get(inspect.signature(fn).parameters["version"].default, "\0")
               not in (inspect.getdoc(fn) or "")]
    assert not missing, "docstrings that do not say which release the default version follows:\n" \
        + "\n".join(missing)
