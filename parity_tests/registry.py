"""The parity registry: one row per public ``ref_numpy`` function, binding it to its
``torch_impl`` twin, an input strategy, a tolerance and (where one exists) an external oracle.

Rows live in ``parity_tests/cases/<module>.py`` as a list ``CASES``; this module collects them.
The generic harness (``test_registry.py``) runs every row that has ``inputs``; a row whose
behaviour the generic harness cannot express (index outputs with tie rules, file I/O, stateful
classes) names the dedicated test that covers it in ``covered_by`` and the meta-test
(``test_meta.py``) checks that this test exists.

Importing the registry needs neither torch, torchvision nor pycocotools: oracles are dotted
names (``"torchvision.ops.box_iou"``) or callables that import inside, resolved when a row runs
(:meth:`ParityCase.oracle_fn`); :meth:`ParityCase.oracle_missing` says, with the install hint,
when an oracle cannot be imported here, so a caller can SKIP the row instead of failing it.
Which implementation and device a row runs on is the business of :mod:`parity_tests.sides`.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from parity_tests.sides import REF, get_side, missing_reason, resolve
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
        oracle: what the port is compared with, taking the port's (torch) arguments: a dotted
            name (``"torchvision.ops.box_iou"``, imported when the row runs) or a callable.
            Rows with ``inputs`` and an oracle run in ``test_port_equals_oracle``.
        dtypes: floating dtypes the row is run at (floating input arrays are cast to it).
        tol: explicit tolerance; ``None`` means the table entry for (name, dtype).
        oracle_tol: tolerance against the oracle; ``None`` means the same as ``tol``.
        covered_by: "test_file.py::test_name" of a dedicated parity test, for rows the generic
            harness cannot express.
        note: why the row is shaped as it is (excluded cases, oracle differences).
        shared: the module of the shared layer (e.g. "ref_numpy.shared.coco") through which
            both sides compute this row; reference == port proves nothing there, so such a
            row must name an ``oracle`` (checked by ``test_meta.py``).
    """

    name: str
    inputs: Callable[[], Any] | None = None
    oracle: str | Callable | None = None
    dtypes: tuple = ("float64", "float32")
    tol: Tol | None = None
    oracle_tol: Tol | None = None
    covered_by: str | None = None
    note: str = ""
    shared: str = ""

    @property
    def module(self) -> str:
        return self.name.split(".")[0]

    @property
    def function(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def ref(self) -> Callable:
        """The reference function, ``ref_numpy.<module>.<function>``."""
        return REF.function(self.name)

    @property
    def port(self) -> Callable:
        """The port's function on the port side of :func:`parity_tests.sides.get_side`
        (``torch_impl`` unless ``$YOLO_REF_PORT`` names another package)."""
        return get_side("torch").function(self.name)

    @property
    def oracle_name(self) -> str:
        """The oracle as text ("torchvision.ops.box_iou"), "" when the row has none."""
        if self.oracle is None:
            return ""
        if isinstance(self.oracle, str):
            return self.oracle
        return getattr(self.oracle, "__name__", repr(self.oracle))

    def oracle_fn(self) -> Callable:
        """The oracle, imported now (``ImportError`` when its package is missing)."""
        if self.oracle is None:
            raise ValueError(f"{self.name}: the row has no oracle")
        return resolve(self.oracle)

    def oracle_missing(self) -> str | None:
        """``None`` when the oracle imports here, else a one-line reason with the install hint."""
        if self.oracle is None:
            return None
        try:
            self.oracle_fn()
        except ImportError as exc:
            return missing_reason(self.oracle_name, exc)
        return None

    def __repr__(self) -> str:
        return f"ParityCase({self.name})"


def to_ref(x, dtype: str):
    """Cast floating arrays (recursively) to ``dtype`` for the NumPy reference
    (``REF.to_inputs``; kept for tests written before :mod:`parity_tests.sides`)."""
    return REF.to_inputs(x, dtype)


def to_port(x, dtype: str, device: str = "cpu"):
    """NumPy arrays (recursively) as torch tensors on ``device``; floating ones cast to
    ``dtype`` (the port side's ``to_inputs``; kept for tests written before
    :mod:`parity_tests.sides`)."""
    return get_side("torch", device=device).to_inputs(x, dtype)


def _collect() -> list[ParityCase]:
    import parity_tests.cases as pkg

    cases: list[ParityCase] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"parity_tests.cases.{info.name}")
        cases.extend(getattr(mod, "CASES", []))
    return cases


ALL_CASES: list[ParityCase] = _collect()
CASES_BY_NAME: dict[str, ParityCase] = {c.name: c for c in ALL_CASES}
