"""Meta-tests: the mirror rule and the registry cannot silently fall behind the code.

- every public function or class of a ``ref_numpy`` module has a twin of the same name in the
  same-named ``torch_impl`` module, with the same parameter names, order and defaults (the port
  may add trailing keyword parameters with defaults: device, out-of-reference options);
- every one of them has a registry row; a row that names ``covered_by`` points at a test that
  exists; every row names a function that exists; a row computed through the shared layer
  (``shared=...``) names an external oracle;
- tolerances cannot fail silently: an unknown key raises, dtypes are compared exactly, the
  derived-property table is apart from the per-function one, the bound is atol + rtol·|x|, and
  no test body holds a literal tolerance (a grep over ``test_*.py``).
"""
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ref_numpy
from parity_tests.registry import ALL_CASES, CASES_BY_NAME
from parity_tests.tolerances import (DEFAULT, DERIVED, EXACT, OVERRIDES, Tol, assert_parity, derived_tolerance,
                                     is_derived, lookup, on_device, tolerance)

TESTS_DIR = Path(__file__).parent


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
            yield name, obj


# Not mirrored: the shared layer is one module serving both sides, the command line is commands.
NOT_MIRRORED = {"shared", "cli"}


def _ref_modules():
    for info in pkgutil.iter_modules(ref_numpy.__path__):
        if not info.name.startswith("_") and info.name not in NOT_MIRRORED:
            yield info.name


PUBLIC = [(m, n) for m in sorted(_ref_modules())
          for n, _ in _public(importlib.import_module(f"ref_numpy.{m}"))]


def test_reference_has_public_functions():
    assert len(PUBLIC) > 0


@pytest.mark.parametrize("module,name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_twin_exists_with_same_signature(module, name):
    ref_obj = getattr(importlib.import_module(f"ref_numpy.{module}"), name)
    port_mod = importlib.import_module(f"torch_impl.{module}")
    assert hasattr(port_mod, name), f"torch_impl.{module} has no twin of ref_numpy.{module}.{name}"
    port_obj = getattr(port_mod, name)
    if inspect.isclass(ref_obj):
        assert inspect.isclass(port_obj), f"torch_impl.{module}.{name} should be a class"
        ref_obj, port_obj = ref_obj.__init__, port_obj.__init__
    ref_params = list(inspect.signature(ref_obj).parameters.values())
    port_params = list(inspect.signature(port_obj).parameters.values())
    assert len(port_params) >= len(ref_params), f"{module}.{name}: port drops parameters"
    for r, p in zip(ref_params, port_params):
        assert (r.name, r.kind) == (p.name, p.kind), (
            f"{module}.{name}: parameter {r.name!r} ({r.kind}) vs port {p.name!r} ({p.kind})")
        assert r.default is p.default or r.default == p.default, (
            f"{module}.{name}: default of {r.name!r} is {r.default!r} vs port {p.default!r}")
    for extra in port_params[len(ref_params):]:
        assert extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL), (
            f"{module}.{name}: extra port parameter {extra.name!r} needs a default")


@pytest.mark.parametrize("module,name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_has_registry_row(module, name):
    assert f"{module}.{name}" in CASES_BY_NAME, (
        f"ref_numpy.{module}.{name} has no row in parity_tests/cases/{module}.py")


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_row_is_well_formed(case):
    assert callable(case.ref) and callable(case.port)
    assert case.inputs is not None or case.covered_by, (
        f"{case.name}: a row needs an input strategy or a covered_by test")
    if case.covered_by:
        fname, test = case.covered_by.split("::")
        path = TESTS_DIR / fname
        assert path.exists(), f"{case.name}: covered_by file {fname} does not exist"
        assert f"def {test}(" in path.read_text(), f"{case.name}: no test {test} in {fname}"


def test_row_names_unique():
    names = [c.name for c in ALL_CASES]
    assert len(names) == len(set(names)), "duplicate registry rows"


# ----------------------------------------------------------------------------- shared rows

@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.shared] or [None],
                         ids=[c.name for c in ALL_CASES if c.shared] or ["none"])
def test_shared_rows_have_an_external_oracle(case):
    """A row computed through the shared layer on both sides proves nothing by ref == port:
    it must name an external oracle, and the shared module it goes through must exist."""
    if case is None:
        return  # no shared rows (yet): nothing to check, and nothing can slip through
    assert case.oracle is not None, f"{case.name}: shared={case.shared!r} but no oracle"
    assert case.shared.startswith("ref_numpy.shared"), f"{case.name}: shared={case.shared!r}"
    importlib.import_module(case.shared)


def test_registry_imports_without_the_oracles():
    """Listing the rows needs neither torchvision nor pycocotools; their rows say so."""
    code = ("import sys; sys.modules['torchvision'] = None; sys.modules['pycocotools'] = None\n"
            "from parity_tests.registry import ALL_CASES\n"
            "missing = [c.oracle_missing() for c in ALL_CASES if c.oracle is not None]\n"
            "assert missing and all(m and 'is not installed (pip install' in m for m in missing), missing\n"
            "print(len(ALL_CASES))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(ALL_CASES)


# ----------------------------------------------------------------------------- tolerances

def test_unknown_tolerance_key_raises_naming_the_nearest():
    with pytest.raises(KeyError, match=r"'boxes.box_iuo'.*nearest known keys: boxes.box_iou"):
        tolerance("boxes.box_iuo", "float32")
    with pytest.raises(KeyError, match=r"derived-property key"):
        tolerance("roundtrip.yolov5", "float32")
    with pytest.raises(KeyError, match=r"'roundtrip.yolov55'.*nearest known keys: roundtrip.yolov5"):
        derived_tolerance("roundtrip.yolov55", "float32")
    with pytest.raises(KeyError, match=r"unknown per-function"):
        assert_parity(np.zeros(2), np.zeros(2), name="coder.yolov5_roundtrip", dtype="float32")
    with pytest.raises(KeyError, match=r"dtype 'float8'"):
        tolerance("boxes.box_iou", "float8")


def test_known_keys_resolve():
    assert tolerance("boxes.box_iou", "float32") is OVERRIDES[("boxes.box_iou", "float32")]
    assert tolerance("nms.nms", "int64") == EXACT  # integer outputs: exact
    assert tolerance("train.precise_bn", "float32") == DEFAULT["float32"]  # a port-only function
    assert derived_tolerance("roundtrip.yolov5", "float32") is DERIVED[("roundtrip.yolov5", "float32")]
    assert derived_tolerance("roundtrip.labels", "float64") == DEFAULT["float64"]  # documented fallback
    assert lookup("fd_gradient.loss", "float64") is DERIVED[("fd_gradient.loss", "float64")]


def test_every_entry_says_why_and_namespaces_are_disjoint():
    modules = {m.name for m in pkgutil.iter_modules(ref_numpy.__path__)}
    for (name, dtype), tol in {**OVERRIDES, **DERIVED}.items():
        assert tol.why, f"tolerance entry ({name!r}, {dtype!r}) gives no reason"
        assert tol.rtol >= 0 and tol.atol >= 0
    for name, _ in DERIVED:
        assert is_derived(name) and name.split(".")[0] not in modules, name
    for name, _ in OVERRIDES:
        assert not is_derived(name), name


@pytest.mark.parametrize("actual,desired", [
    (np.zeros(3, np.float64), np.zeros(3, np.float32)),
    (np.zeros(3, np.float32), np.zeros(3, np.float64)),
    (np.zeros(3, np.int32), np.zeros(3, np.int64)),
    (np.zeros(3, bool), np.zeros(3, np.int64)),
    ((np.zeros(1), {"a": np.zeros(2, np.float32)}), (np.zeros(1), {"a": np.zeros(2)})),
])
def test_dtype_mismatch_fails(actual, desired):
    """float64 where float32 is owed (or the reverse, or int32 for int64) fails, values equal."""
    with pytest.raises(AssertionError, match="dtype"):
        assert_parity(actual, desired, name="boxes.box_iou")


def test_dtype_mismatch_fails_for_tensors():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError, match="dtype float64 != float32"):
        assert_parity(torch.zeros(2, dtype=torch.float64), np.zeros(2, np.float32), name="boxes.box_iou")
    assert_parity(torch.zeros(2, dtype=torch.float32), np.zeros(2, np.float32), name="boxes.box_iou")
    assert_parity(torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bfloat16),
                  name="loss.yolov5_loss")


def test_python_numbers_are_weakly_typed():
    """A plain Python number has no precision to compare: only its kind must match."""
    assert_parity(1.0, np.float32(1.0), name="boxes.box_iou")
    assert_parity(3, np.int64(3), name="nms.nms")
    with pytest.raises(AssertionError, match="dtype kind"):
        assert_parity(1.0, np.int64(1), name="nms.nms")


def test_bound_is_atol_plus_rtol_times_x():
    tol = Tol(rtol=1e-3, atol=1e-6, why="test")
    assert tol.text() == "1e-6+1e-3|x|"
    assert_parity(np.array([1000.0 + 1.0]), np.array([1000.0]), tol=tol)  # 1.0 <= 1e-6 + 1.0
    with pytest.raises(AssertionError, match=r"exceeds 1e-6\+1e-3\|x\|"):
        assert_parity(np.array([1.0 + 2e-3]), np.array([1.0]), tol=tol)  # max(atol, rtol) would pass
    assert EXACT.text() == "exact"
    assert Tol(1e-9, 1e-12).text() == "1e-12+1e-9|x|"
    assert Tol(4.5e-16, 0.0).text() == "4.5e-16|x|"
    assert Tol(0.0, 2.0).text() == "2"


def test_device_allowance_widens_floats_only_off_the_cpu():
    assert on_device(EXACT, "float32", "cpu") is EXACT
    assert on_device(EXACT, "int64", "cuda") is EXACT
    wide = on_device(EXACT, "float32", "cuda")
    assert (wide.rtol, wide.atol) == (DERIVED[("device.accelerator", "float32")].rtol,
                                      DERIVED[("device.accelerator", "float32")].atol)


# A literal number as a tolerance inside a test body: atol=1e-6, rtol=0, np.allclose(...),
# pytest.approx(...), abs(a - b) < 1e-9. Tolerances come from parity_tests/tolerances.py.
_LITERAL_TOL = [
    re.compile(r"\b[ar]tol\s*=\s*[-+]?(\d|\.\d)"),
    re.compile(r"\b(np|numpy|torch|math)\.(allclose|isclose)\("),
    re.compile(r"\b(pytest\.approx|assert_allclose|assert_almost_equal|assert_array_almost_equal)\("),
    re.compile(r"\babs\(.+\)\s*<=?\s*[\d.]+e-\d+"),
]


def _literal_tolerances(text: str) -> list[str]:
    hits = []
    for i, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if any(p.search(code) for p in _LITERAL_TOL):
            hits.append(f"{i}: {line.strip()}")
    return hits


def test_the_literal_tolerance_grep_catches_what_it_claims():
    bad = ("assert np.allclose(a, b)\nassert_parity(a, b, atol=1e-6)\nx == pytest.approx(1)\n"
           "assert abs(f(a) - (b + c)) < 1e-9\nassert torch.isclose(a, b, rtol=0)\n")
    assert len(_literal_tolerances(bad)) == 5
    good = "assert_parity(a, b, name='boxes.box_iou')\ntol = tolerance('nms.nms', 'int64').atol  # atol=0\n"
    assert _literal_tolerances(good) == []


@pytest.mark.parametrize("path", sorted(TESTS_DIR.glob("test_*.py")), ids=lambda p: p.name)
def test_no_literal_tolerance_in_a_test_body(path):
    if path.name == Path(__file__).name:
        return  # this file spells the patterns out to test the grep itself
    hits = _literal_tolerances(path.read_text())
    assert not hits, (f"{path.name}: literal tolerances (put them in parity_tests/tolerances.py and "
                      "use assert_parity / tolerance / derived_tolerance):\n" + "\n".join(hits))
