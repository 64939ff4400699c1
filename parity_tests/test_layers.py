"""Meta-tests of the layers: what the port may take from the reference, and one definition each.

Read from the source (``ast``), not by importing, so that a violation is found even in a module
that fails to import:

- ``torch_impl`` imports from ``ref_numpy`` only public modules and public names: no
  ``from ref_numpy.x import _y``, no ``from ref_numpy import _validate``, no
  ``import ref_numpy._validate``, no ``ref_numpy.x._y`` / ``alias._y`` attribute use. What both
  sides share lives in :mod:`ref_numpy.shared` under a public name (otherwise a row whose two
  sides share code would "agree" trivially without anyone seeing it).
- a name defined in :mod:`ref_numpy.shared` is defined nowhere else in ``ref_numpy`` or
  ``torch_impl`` (nor a shared check ``check_x`` as a private ``_check_x`` copy): importing it
  is fine, redefining it would give two helpers of one name and possibly two meanings.
- one IoU kernel per convention: IoU kernels are defined in ``boxes`` (both sides) and nowhere
  else; every other module calls the public kernel of its convention.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REF, PORT, SHARED = ROOT / "ref_numpy", ROOT / "torch_impl", ROOT / "ref_numpy" / "shared"


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in dotted.split("."))


def reference_import_violations(tree: ast.AST, where: str) -> list[str]:
    """Every import of a private ``ref_numpy`` module or name, and every attribute access
    ``<ref_numpy module>._name``, in one parsed module (``where`` names it in the messages)."""
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> the ref_numpy module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "ref_numpy" or a.name.startswith("ref_numpy."):
                    if _private(a.name):
                        found.append(f"{where}:{node.lineno}: import {a.name} (private module)")
                    aliases[a.asname or "ref_numpy"] = a.name if a.asname else "ref_numpy"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "ref_numpy" or node.module.startswith("ref_numpy.")):
            if _private(node.module):
                found.append(f"{where}:{node.lineno}: from {node.module} import ... "
                             "(private module)")
            for a in node.names:
                if a.name == "*":
                    found.append(f"{where}:{node.lineno}: from {node.module} import * "
                                 "(names are imported explicitly)")
                elif a.name.startswith("_"):
                    found.append(f"{where}:{node.lineno}: from {node.module} import {a.name} "
                                 "(private name)")
                else:
                    # ``from ref_numpy import metrics as _ref`` binds a module: track its uses
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            base = node.value
            chain = []
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                dotted = ".".join([aliases[base.id], *reversed(chain), node.attr])
                found.append(f"{where}:{node.lineno}: {dotted} (private attribute)")
    return found


def _module_level_names(tree: ast.Module) -> dict[str, int]:
    """Names a module *defines* at top level (def, class, assignment), with their line."""
    names: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node.lineno
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names[n.id] = node.lineno
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names[node.target.id] = node.lineno
    return names


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


PORT_FILES = _sources(PORT)


def test_port_files_found():
    assert any(p.name == "boxes.py" for p in PORT_FILES) and len(PORT_FILES) > 10


@pytest.mark.parametrize("path", PORT_FILES, ids=[_rel(p) for p in PORT_FILES])
def test_port_imports_only_public_reference(path):
    """torch_impl takes from ref_numpy only public modules and names (the shared layer,
    ``ref_numpy.shared``, or the reference's public API)."""
    found = reference_import_violations(_parse(path), _rel(path))
    assert not found, ("torch_impl imports reference privates; move what both sides share into "
                       "ref_numpy.shared under a public name:\n  " + "\n  ".join(found))


@pytest.mark.parametrize("source,expected", [
    ("from ref_numpy.boxes import _check_eps", "private name"),
    ("from ref_numpy import _validate", "private name"),
    ("import ref_numpy._validate", "private module"),
    ("from ref_numpy._validate import check_boxes", "private module"),
    ("from ref_numpy import metrics as _ref\nx = _ref._per_class", "private attribute"),
    ("import ref_numpy.metrics\nx = ref_numpy.metrics._summarize", "private attribute"),
    ("import ref_numpy.metrics as m\nx = m._summarize(1)", "private attribute"),
    ("from ref_numpy.shared.checks import *", "explicitly"),
])
def test_violations_are_detected(source, expected):
    """The checker itself: each kind of violation is reported (so the test above can fail)."""
    found = reference_import_violations(ast.parse(source), "x.py")
    assert found and expected in found[0], found


@pytest.mark.parametrize("source", [
    "from ref_numpy.shared.checks import check_eps",
    "from ref_numpy import metrics as ref\nx = ref.coco_evaluate",
    "import ref_numpy.boxes\nx = ref_numpy.boxes.box_iou.__doc__",
    "from torch_impl._validate import as_tensor",  # the port's own private module is its business
])
def test_public_uses_pass(source):
    assert reference_import_violations(ast.parse(source), "x.py") == []


# ----------------------------------------------------------------------------- one definition

SHARED_FILES = [p for p in _sources(SHARED) if p.name != "__init__.py"]
SHARED_NAMES = {name: _rel(p) for p in SHARED_FILES for name in _module_level_names(_parse(p))
                if not name.startswith("_") and name != "annotations"}
# A private ``_check_x`` next to the shared ``check_x`` is a copy of a shared check.
CHECK_NAMES = {n for n, where in SHARED_NAMES.items() if where.endswith("checks.py")}
OTHER_FILES = [p for p in _sources(REF) + PORT_FILES if SHARED not in p.parents]


def test_shared_layer_defines_names():
    assert {"check_eps", "check_format", "FORMATS", "MAX_WH"} <= set(SHARED_NAMES)


@pytest.mark.parametrize("path", OTHER_FILES, ids=[_rel(p) for p in OTHER_FILES])
def test_shared_names_not_redefined(path):
    """A name of ref_numpy.shared is imported where it is needed, never defined again in
    ref_numpy or torch_impl (nor, for a shared check ``check_x``, as a private ``_check_x``)."""
    defined = _module_level_names(_parse(path))
    clashes = [f"{_rel(path)}:{line}: {name} (defined in {SHARED_NAMES[name.lstrip('_')]})"
               for name, line in defined.items()
               if name in SHARED_NAMES or name.lstrip("_") in CHECK_NAMES]
    assert not clashes, "redefinitions of shared names; import them instead:\n  " + \
        "\n  ".join(clashes)


# ----------------------------------------------------------------------------- one IoU kernel

def _iou_kernels(tree: ast.Module) -> list[tuple[str, int]]:
    return [(n.name, n.lineno) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and "iou" in n.name.lower()
            and n.name.startswith("_")]


# Private functions with "iou" in their name that are not IoU kernels of their own: each entry
# says what it is (an algorithm step that calls a public kernel, or a convention that only its
# module has).
NOT_KERNELS = {
    ("loss.py", "_diou_iou_loss"): "torchvision's loss convention (ops/_utils._loss_inter_union: "
                                   "inter 0 unless strictly overlapping, eps in the union), "
                                   "the only copy of it on each side",
    ("loss.py", "_ciou_as_printed"): "Section A's CIoU as the write-up prints it (seed_systems.md: "
                                     "eps 1e-9 in the union, 1e-7 in the diagonal and the atan "
                                     "arguments, clamped to [-1, 1]), used only by "
                                     "yolo_scratch_pytorch_loss_as_printed; the only copy on each side",
    ("nms.py", "_iou_nms"): "the port's greedy-NMS engine (calls the blocked kernel)",
    ("nms.py", "_iou"): "the port's fused form of torchvision's kernel for blocked NMS (in-place "
                        "on reused work buffers, boxes as a column table); the reference's NMS "
                        "calls boxes.box_iou, and the NMS rows check the port against "
                        "torchvision.ops.nms bit for bit",
    ("nms.py", "_diou"): "the same fused form for DIoU-NMS (IoU from _iou, minus YOLOv5's "
                         "centre-distance penalty)",
    ("nms.py", "_pair_iou"): "the same kernel element-wise over candidate pairs for the sparse "
                             "NMS engine (NumPy views of CPU tensors); checked against "
                             "torchvision.ops.nms bit for bit by the NMS rows and test_nms",
}


NON_BOX_FILES = [p for p in OTHER_FILES if p.name != "boxes.py"]


@pytest.mark.parametrize("path", NON_BOX_FILES, ids=[_rel(p) for p in NON_BOX_FILES])
def test_iou_kernels_live_in_boxes(path):
    """One IoU kernel per convention, in ``boxes`` on each side (``box_inter_union`` / ``box_iou``:
    torchvision; ``voc_box_iou``: VOC +1; ``coco_box_iou``: pycocotools; ``darknet_box_iou`` /
    ``wh_iou``: darknet; ``aligned_box_iou``: YOLOv5 ``bbox_iou``); other modules call them."""
    kernels = [f"{_rel(path)}:{line}: {name}" for name, line in _iou_kernels(_parse(path))
               if (path.name, name) not in NOT_KERNELS]
    assert not kernels, ("private IoU kernels outside boxes; use the public kernel of the "
                         "convention from boxes:\n  " + "\n  ".join(kernels))


# ----------------------------------------------------------------------------- the base install

def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_imports(body: list) -> list[tuple[str, int]]:
    """Modules imported when a module is imported: top-level statements, class bodies and the
    branches of top-level if / try / with (not function bodies, which run later, nor
    ``if TYPE_CHECKING:`` blocks, which never run)."""
    found = []
    for node in body:
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.ClassDef):
            found += _import_time_imports(node.body)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            found += _import_time_imports(node.orelse)  # annotations only: not run at import
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody"):
                found += _import_time_imports(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                found += _import_time_imports(handler.body)
    return found


REF_FILES = _sources(REF)
TORCH_PACKAGES = ("torch", "torchvision", "torch_impl")


@pytest.mark.parametrize("path", REF_FILES, ids=[_rel(p) for p in REF_FILES])
def test_reference_imports_no_torch_at_import_time(path):
    """The reference, its shared layer and its commands (``ref_numpy.cli``) run on the base
    install (numpy, scipy, pillow, PyYAML): torch, torchvision and the port are imported only
    inside the functions that need them (``--backend torch``), never at module level."""
    bad = [f"{_rel(path)}:{line}: import {name}" for name, line in _import_time_imports(_parse(path).body)
           if name.split(".")[0] in TORCH_PACKAGES]
    assert not bad, "module-level torch imports in ref_numpy:\n  " + "\n  ".join(bad)


def test_import_time_detector():
    src = ("import torch\nif x:\n    from torch_impl import boxes\ndef f():\n    import torchvision\n"
           "if TYPE_CHECKING:\n    import torch.nn\n")
    assert [n for n, _ in _import_time_imports(ast.parse(src).body)] == ["torch", "torch_impl"]
