"""What a conformance run returns: :class:`Finding` (one check) and :class:`Report` (one function).

Data contract (every field plain Python, so ``to_json`` is ``json.dumps`` of ``to_dict``):

- ``Finding.check``: what was tested ("tie order", "threshold", "small scale", ...).
- ``Finding.verdict``: ``"pass"`` (no difference, or differences within rounding),
  ``"convention"`` (a difference explained by a documented choice the user may keep, e.g. VOC's
  +1 pixel widths or class-agnostic NMS) or ``"bug"`` (a difference the reference's contract does
  not allow, or one that no probe explains).
- ``Finding.grade``: the graded comparison of the worst example: ``"bit-exact"``,
  ``"within N ulps"``, ``"same decisions, different values"``, ``"same set, other order"``,
  ``"different"``, ``"raised"``.
- ``Finding.cause``: the probe that explains the difference ("" for a pass), e.g. ``"tie order"``.
- ``Finding.counterexample``: the smallest failing input found (shrunk), as ``{argument: plain
  lists or numbers}``, reproducible by pasting; ``None`` for a pass.
- ``Finding.expected`` / ``Finding.got``: the reference's and the user's output on it (plain lists).
- ``Finding.why`` / ``Finding.fix``: the cause and the change, in words a tutorial reader knows.
- ``Finding.impact``: how often and how much over the examples tried ("63 of 300 tied inputs;
  IoU off by up to 0.0099").
- ``Finding.detail``: the one-line summary printed after the check's name.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("pass", "convention", "bug")
_LABEL = {"pass": "PASS", "convention": "CONV", "bug": "BUG"}


@dataclass
class Finding:
    """The outcome of one check of one function (see the module docstring for every field)."""

    check: str
    verdict: str
    detail: str = ""
    grade: str = ""
    cause: str = ""
    counterexample: dict[str, Any] | None = None
    expected: Any = None
    got: Any = None
    why: str = ""
    fix: str = ""
    impact: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {VERDICTS}, got {self.verdict!r}")

    def lines(self, width: int = 14) -> list[str]:
        """The printed form: ``LABEL  check  detail`` then ``why``/``fix``/``impact`` lines."""
        out = [f"  {_LABEL[self.verdict]:<5} {self.check:<{width}} {self.detail}".rstrip()]
        pad = " " * 8
        if self.verdict != "pass":
            if self.why:
                out.append(f"{pad}why: {self.why}")
            tail = f"impact: {self.impact}" if self.impact else ""
            if self.fix:
                out.append(f"{pad}fix: {self.fix}" + (f"    {tail}" if tail else ""))
            elif tail:
                out.append(f"{pad}{tail}")
        return out


@dataclass
class Report:
    """All findings for one user function checked against one reference contract.

    ``ok`` is True when no finding has verdict ``"bug"``; ``str(report)`` is the printed form;
    ``to_json()`` the machine-readable one."""

    name: str
    claims: str
    signature: str
    binding: str = ""
    findings: list[Finding] = field(default_factory=list)
    examples: int = 0
    seed: int = 0

    @property
    def ok(self) -> bool:
        return not any(f.verdict == "bug" for f in self.findings)

    @property
    def bugs(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "bug"]

    @property
    def causes(self) -> list[str]:
        """The causes named by the non-pass findings, in order."""
        return [f.cause for f in self.findings if f.verdict != "pass"]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "claims": self.claims, "signature": self.signature,
                "binding": self.binding, "ok": self.ok, "examples": self.examples,
                "seed": self.seed, "findings": [asdict(f) for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_plain)

    def __str__(self) -> str:
        head = f"{self.name}  claims {self.claims} {self.signature}".rstrip()
        lines = [head]
        if self.binding:
            lines.append(f"  bound as {self.binding}")
        width = max([14] + [len(f.check) for f in self.findings])
        for f in self.findings:
            lines.extend(f.lines(width))
        verdict = "ok: no bug found" if self.ok else f"{len(self.bugs)} bug(s) found"
        lines.append(f"  -> {verdict} ({self.examples} examples per check, seed {self.seed})")
        return "\n".join(lines)


def _plain(x: Any) -> Any:
    """JSON fallback for NumPy scalars and arrays that slipped through."""
    tolist = getattr(x, "tolist", None)
    if tolist is not None:
        return tolist()
    return str(x)
