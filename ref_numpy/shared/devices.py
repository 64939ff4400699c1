"""One parser and validator of torch device names, used by every command and function that
takes a device (``--device`` of ``train``, ``predict``, ``evaluate``, ``anchors``,
``show-assignments``; ``device=`` of ``torch_impl.metrics.coco_evaluate`` /
``DetectionEvaluator``, ``torch_impl.train`` ``train`` / ``predict`` / ``load_model`` and
:meth:`ref_numpy.shared.sides.Side.check`).

Accepted names: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, and where the caller allows it ``auto``
(or ``""``: CUDA when present, else the CPU). Anything else, a CUDA name without CUDA, a GPU
index beyond the GPUs present, or ``mps`` without Apple's Metal backend is one ``ValueError``
line naming the argument, what came and what this machine has, e.g.
``device (--device): 'banana' is not a device; expected cpu, cuda, cuda:N, mps or auto
(available here: cpu)``.

Plain Python: :func:`parse_device` needs no torch; :func:`select_device` imports it when called.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["DEVICE_NAMES", "available_devices", "parse_device", "select_device"]

DEVICE_NAMES = "cpu, cuda, cuda:N, mps"
"""The device names accepted (plus ``auto`` where allowed), as the messages spell them."""

_DEVICE = re.compile(r"(cpu|mps|cuda)(?::(\d+))?", re.ASCII)


def parse_device(device: Any, name: str = "device", allow_auto: bool = True) -> str:
    """``device`` checked for its form only (no torch): ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
    ``"mps"``, or ``"auto"`` (``""`` is read as ``"auto"``) when ``allow_auto``; a
    ``torch.device`` is taken by its string. Returns the normalised name (lower case, spaces
    stripped).

    Raises:
        ValueError: ``"<name>: 'banana' is not a device; expected cpu, cuda, cuda:N, mps or
            auto"`` (an index on cpu / mps, a negative or non-decimal index included).
    """
    text = str(device).strip().lower() if device is not None else None
    if text in ("", "auto") and allow_auto:
        return "auto"
    m = _DEVICE.fullmatch(text) if isinstance(text, str) else None
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        expected = DEVICE_NAMES + (" or auto" if allow_auto else "")
        raise ValueError(f"{name}: {device!r} is not a device; expected {expected}")
    return text


def available_devices() -> list[str]:
    """The devices torch can use here: ``["cpu"]``, plus ``"cuda:0"`` .. and ``"mps"`` where
    present (``["cpu"]`` when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return ["cpu"]
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def select_device(device: Any, name: str = "device", local_rank: int = 0,
                  allow_auto: bool = True) -> Any:
    """The ``torch.device`` that ``device`` names, once it is known to be usable here.

    Args:
        device (str | torch.device | None): see :func:`parse_device`; ``None`` is the CPU.
        name (str): the argument as the messages name it (``"device (--device)"``).
        local_rank (int): the GPU of a bare ``"cuda"`` (this process's under ``torchrun``).
        allow_auto (bool): accept ``"auto"`` / ``""`` (CUDA when present, else the CPU).

    Returns:
        torch.device: ``cpu``, ``cuda:N`` (a bare ``cuda`` gets ``local_rank``) or ``mps``.
        The current CUDA device is not changed (the trainer does that).

    Raises:
        ValueError: one line naming ``name``, what came and the devices available here: a
            malformed name, CUDA without CUDA, ``cuda:N`` beyond the GPUs present, ``mps``
            without the Metal backend.
        ImportError: torch is not installed (the ``torch`` extra).
    """
    try:
        import torch
    except ImportError as exc:
        from ref_numpy.shared.sides import TORCH_HINT
        raise ImportError(f"{name}: a torch device needs torch, which is not installed "
                          f"({TORCH_HINT})", name="torch") from exc
    if device is None:
        return torch.device("cpu")
    text = parse_device(device, name, allow_auto=allow_auto)
    here = ", ".join(available_devices())
    if text == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() \
            else torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}: {device!r} requested but CUDA is not available "
                             f"(available here: {here})")
        i = int(index) if index else int(local_rank)
        if i >= torch.cuda.device_count():
            raise ValueError(f"{name}: {device!r}: no GPU {i}; this machine has "
                             f"{torch.cuda.device_count()} (available here: {here})")
        return torch.device("cuda", i)
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name}: 'mps' requested but Apple's Metal backend is not "
                             f"available (available here: {here})")
        return torch.device("mps")
    return torch.device("cpu")
