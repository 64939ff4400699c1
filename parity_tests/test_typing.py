"""Meta-test: every public function of ``ref_numpy`` and ``torch_impl`` carries type hints.

Walks every module of both packages (``pkgutil.walk_packages``; ``__main__`` modules are skipped,
they only call ``main``) and, for each public function and each public method of a public class
defined in that module, requires an annotation on every parameter (``*args``/``**kwargs``
included; ``self``/``cls`` excluded) and on the return. A property counts as a method (its getter
needs a return annotation). Methods a decorator generated (dataclass ``__eq__``/``__repr__``, ...)
are not written in the module and are skipped; ``__init__``/``__call__``/``forward`` and other
methods written in the class body count.

Annotations are read as written (every module uses ``from __future__ import annotations``, so they
are strings and cost nothing at run time); ruff (F821) checks that the names in them exist.

What is still owed is listed in :data:`PENDING` by qualified name, so the test passes honestly and
says what remains; an entry that has since been annotated fails the test, so the list only shrinks.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

import ref_numpy

PACKAGES = ["ref_numpy", "torch_impl"]

# Still to annotate (qualified names "module:function" or "module:Class.method"). Each entry is
# a debt: remove it when the function gets its hints (an entry that is annotated now fails
# test_pending_list_is_current). Empty: every public function is annotated.
PENDING: set[str] = set()


def _modules(errors: dict[str, str]) -> Iterator[str]:
    """Names of the modules of both packages (``__main__`` skipped); a package that cannot be
    imported while walking goes to ``errors``."""
    for package_name in PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ImportError as exc:  # torch_impl without the torch extra: nothing to walk
            if "torch" not in str(exc):
                errors[package_name] = repr(exc)
            continue
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.",
                                          onerror=lambda name: errors.setdefault(name, "cannot import")):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                yield info.name


def _written_here(fn: Callable, module: ModuleType) -> bool:
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return code is not None and code.co_filename == module.__file__


def _callables(module: ModuleType) -> Iterator[tuple[str, Callable, bool]]:
    """(qualified name, function, is a method) for the public callables written in ``module``."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            if _written_here(obj, module):
                yield f"{module.__name__}:{name}", obj, False
        elif inspect.isclass(obj):
            for attr, member in vars(obj).items():
                public = not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__"))
                if not public:
                    continue
                if isinstance(member, property):
                    fn, bound = member.fget, True
                elif isinstance(member, staticmethod):
                    fn, bound = member.__func__, False
                elif isinstance(member, classmethod):
                    fn, bound = member.__func__, True
                elif inspect.isfunction(member):
                    fn, bound = member, True
                else:
                    continue
                if fn is not None and _written_here(fn, module):
                    yield f"{module.__name__}:{name}.{attr}", fn, bound


def missing_annotations(fn: Callable, bound: bool) -> list[str]:
    """Names of the parameters of ``fn`` without an annotation, and ``"return"`` if that lacks one."""
    params = list(inspect.signature(inspect.unwrap(fn), follow_wrapped=False).parameters.values())
    if bound and params:
        params = params[1:]  # self / cls
    missing = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
               for p in params if p.annotation is inspect.Parameter.empty]
    if inspect.signature(inspect.unwrap(fn)).return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _report() -> tuple[dict[str, list[str]], dict[str, str]]:
    """({qualified name: what lacks a hint}, {module that failed to import: why})."""
    report, errors = {}, {}
    for module_name in _modules(errors):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # reported by test_every_module_imports, not a collection error
            errors[module_name] = repr(exc)
            continue
        for qualname, fn, bound in _callables(module):
            report[qualname] = missing_annotations(fn, bound)
    return report, errors


REPORT, IMPORT_ERRORS = _report()


def test_every_module_imports() -> None:
    """A module the walk cannot import is a module whose hints go unchecked."""
    assert not IMPORT_ERRORS, "modules that do not import:\n" + "\n".join(
        f"  {m}: {e}" for m, e in sorted(IMPORT_ERRORS.items()))


def test_walk_finds_both_sides() -> None:
    names = {q.split(":")[0].split(".")[0] for q in REPORT}
    assert "ref_numpy" in names
    assert len(REPORT) > 100, f"only {len(REPORT)} public functions found"


def test_public_functions_are_annotated() -> None:
    lacking = {q: m for q, m in REPORT.items() if m and q not in PENDING}
    assert not lacking, "public functions without type hints (parameter or return):\n" + "\n".join(
        f"  {q}: {', '.join(m)}" for q, m in sorted(lacking.items()))


def test_pending_list_is_current() -> None:
    """An entry of PENDING whose function is fully annotated now must leave the list (an entry
    naming a function that does not exist here, e.g. work not yet committed, is tolerated)."""
    stale = sorted(q for q in PENDING if q in REPORT and not REPORT[q])
    assert not stale, "remove from PENDING (annotated now):\n" + "\n".join(f"  {q}" for q in stale)


def test_checker_sees_a_missing_hint() -> None:
    """The checker itself: a parameter, a return, *args/**kwargs and a bare method are caught."""
    def bare(a, b: int = 1, *args, **kwargs) -> None: ...
    def no_return(a: int): ...

    class C:
        def method(self, x: int) -> int: ...
        def other(self, x): ...

    assert missing_annotations(bare, False) == ["a", "*args", "**kwargs"]
    assert missing_annotations(no_return, False) == ["return"]
    assert missing_annotations(C.method, True) == []
    assert missing_annotations(C.other, True) == ["x", "return"]


def test_reference_modules_are_walked() -> None:
    walked = {q.split(":")[0] for q in REPORT}
    for info in pkgutil.iter_modules(ref_numpy.__path__):
        if info.name in {"__main__"} or info.ispkg:
            continue
        module = importlib.import_module(f"ref_numpy.{info.name}")
        if any(True for _ in _callables(module)):
            assert module.__name__ in walked


if __name__ == "__main__":  # pragma: no cover - a quick listing while annotating
    for q, m in sorted(REPORT.items()):
        if m:
            print(f"{q}: {', '.join(m)}")
    print(sum(bool(m) for m in REPORT.values()), "of", len(REPORT), "lack hints")
    pytest.main([__file__, "-q"])
