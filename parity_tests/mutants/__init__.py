"""A corpus of deliberately wrong implementations: the conformance kit's evidence.

Each :class:`Mutant` is a small function with one defect of the kind tutorial code has, the
contract it claims (``target``: a reference name for :func:`conformance.check`, ``"roundtrip:
coder.yolov5"`` for :func:`conformance.check_roundtrip`, or ``"properties:KIND"``), and the
keyword its diagnosis must name (``cause``, matched case-insensitively against the causes of the
report's non-pass findings). ``parity_tests/test_conformance.py`` asserts that every mutant is
flagged "bug" with that cause.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str
    fn: Any  # a function, or (encode, decode) for round trips
    cause: str
    fixed: dict = field(default_factory=dict)
    defect: str = ""


def corpus() -> list[Mutant]:
    """Every mutant of every module (boxes, nms, coder, grid, metrics, yolo)."""
    from parity_tests.mutants import boxes, coder, grid, metrics, nms, yolo
    out: list[Mutant] = []
    for mod in (boxes, nms, coder, grid, metrics, yolo):
        out.extend(mod.MUTANTS)
    return out


def by_name() -> dict[str, Mutant]:
    return {m.name: m for m in corpus()}


__all__ = ["Mutant", "corpus", "by_name", "Callable"]
