"""The parity registry: one row per public ``ref_numpy`` function, binding it to its
``torch_impl`` twin, an input strategy, a tolerance and (where one exists) an external oracle.

Rows live in ``parity_tests/cases/<module>.py`` as a list ``CASES``; this module collects them.
The generic harness (``test_registry.py``) runs every row that has ``inputs``; a row whose
behaviour the generic harness cannot express (index outputs with tie rules, file I/O, stateful
classes) names the dedicated test that covers it in ``covered_by`` and the meta-test
(``test_meta.py``) checks that this test exists.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from parity_tests.tolerances import Tol


@dataclass(frozen=True)
class Call:
    """Positional and keyword arguments for one call, as NumPy (float64 for floating arrays)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # reproducible, full precision
        with np.printoptions(precision=17, threshold=10_000):
            return f"Call(args={self.args!r}, kwargs={self.kwargs!r})"


@dataclass(frozen=True)
class ParityCase:
    """One (reference, port, oracle) row.

    Attributes:
        name: "module.function", e.g. "boxes.box_iou"; the reference is
            ``ref_numpy.<module>.<function>`` and the port ``torch_impl.<module>.<function>``.
        inputs: zero-argument callable returning a Hypothesis strategy of :class:`Call`.
        oracle: callable taking the port's (torch) arguments, e.g. ``torchvision.ops.box_iou``.
        dtypes: floating dtypes the row is run at (floating input arrays are cast to it).
        tol: explicit tolerance; ``None`` means the table entry for (name, dtype).
        oracle_tol: tolerance against the oracle; ``None`` means the same as ``tol``.
        covered_by: "test_file.py::test_name" of a dedicated parity test, for rows the generic
            harness cannot express.
        note: why the row is shaped as it is (excluded cases, oracle differences).
    """

    name: str
    inputs: Callable[[], Any] | None = None
    oracle: Callable | None = None
    dtypes: tuple = ("float64", "float32")
    tol: Tol | None = None
    oracle_tol: Tol | None = None
    covered_by: str | None = None
    note: str = ""

    @property
    def module(self) -> str:
        return self.name.split(".")[0]

    @property
    def function(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def ref(self) -> Callable:
        return getattr(importlib.import_module(f"ref_numpy.{self.module}"), self.function)

    @property
    def port(self) -> Callable:
        return getattr(importlib.import_module(f"torch_impl.{self.module}"), self.function)

    def __repr__(self) -> str:
        return f"ParityCase({self.name})"


def to_ref(x, dtype: str):
    """Cast floating arrays (recursively) to ``dtype`` for the NumPy reference."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(to_ref(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: to_ref(v, dtype) for k, v in x.items()}
    return x


def to_port(x, dtype: str, device: str = "cpu"):
    """NumPy arrays (recursively) as torch tensors; floating ones cast to ``dtype``."""
    import torch

    if isinstance(x, np.ndarray):
        arr = x.astype(dtype) if x.dtype.kind == "f" else x
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(to_port(v, dtype, device) for v in x)
    if isinstance(x, dict):
        return {k: to_port(v, dtype, device) for k, v in x.items()}
    return x


def _collect() -> list[ParityCase]:
    import parity_tests.cases as pkg

    cases: list[ParityCase] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"parity_tests.cases.{info.name}")
        cases.extend(getattr(mod, "CASES", []))
    return cases


ALL_CASES: list[ParityCase] = _collect()
CASES_BY_NAME: dict[str, ParityCase] = {c.name: c for c in ALL_CASES}
