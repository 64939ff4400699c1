"""Meta-tests: the mirror rule and the registry cannot silently fall behind the code.

- every public function or class of a ``ref_numpy`` module has a twin of the same name in the
  same-named ``torch_impl`` module, with the same parameter names, order and defaults (the port
  may add trailing keyword parameters with defaults: device, out-of-reference options);
- every one of them has a registry row; a row that names ``covered_by`` points at a test that
  exists; every row names a function that exists.
"""
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import ref_numpy
from parity_tests.registry import ALL_CASES, CASES_BY_NAME

TESTS_DIR = Path(__file__).parent


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
            yield name, obj


def _ref_modules():
    for info in pkgutil.iter_modules(ref_numpy.__path__):
        if not info.name.startswith("_"):
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
