"""One notion of "a side" for the test suite: which implementation a test calls, on which device.

The object itself, :class:`~ref_numpy.shared.sides.Side`, lives in :mod:`ref_numpy.shared.sides`
(the same one every command's ``--backend`` uses) and is re-exported here; this module adds what
only the test suite needs: the environment-driven defaults below and the one-line SKIP reasons
for missing packages (:func:`missing_reason`, :func:`resolve` for oracles).

A :class:`Side` is a package of modules named like ``ref_numpy``'s (``boxes``, ``coder``, ...),
an array kind (``numpy`` or ``torch``) and a device. It converts the registry's NumPy inputs
(:class:`parity_tests.registry.Call`: float64 for floating arrays) into what the side takes
(floating arrays cast to the dtype under test; for torch, tensors on the side's device) and its
outputs back to NumPy. Every test and the CLI's ``--backend`` go through :func:`get_side`:

- ``get_side("ref")``: :data:`REF`, the NumPy reference ``ref_numpy`` (the specification);
- ``get_side("torch")`` (alias ``"port"``): the port, :data:`TORCH` = ``torch_impl`` by default.

Two environment variables point the whole suite elsewhere, without editing a test:

- ``YOLO_REF_PORT=mypkg``: the port side imports ``mypkg.boxes``, ``mypkg.nms``, ... instead
  of ``torch_impl.*`` (another implementation of the same module names, taking and returning
  torch tensors). A function it lacks fails its rows with a message naming the module.
- ``YOLO_REF_DEVICE=cuda`` (or pytest's ``--device cuda``, the audit's ``--device``): the port
  runs on that device. Without a GPU, CUDA tests are skipped ("no CUDA device"), never faked.

Example: ``YOLO_REF_DEVICE=cuda pytest parity_tests/test_registry.py`` runs every generic
registry row with the port on the GPU.
"""
from __future__ import annotations

import importlib
import os
from typing import Callable

from ref_numpy.shared import sides as _shared
from ref_numpy.shared.sides import NO_CUDA, REF, TORCH, Side, cuda_available, to_numpy

__all__ = ["DEVICE_ENV", "INSTALL_HINTS", "NO_CUDA", "PORT_ENV", "REF", "TORCH", "Side",
           "cuda_available", "default_device", "get_side", "missing_reason", "port_package",
           "resolve", "to_numpy"]

PORT_ENV = "YOLO_REF_PORT"
DEVICE_ENV = "YOLO_REF_DEVICE"


def default_device() -> str:
    """The port's device: ``$YOLO_REF_DEVICE`` or "cpu"."""
    return os.environ.get(DEVICE_ENV, "").strip() or "cpu"


def port_package() -> str:
    """The port's package: ``$YOLO_REF_PORT`` or "torch_impl"."""
    return os.environ.get(PORT_ENV, "").strip() or TORCH.package


def get_side(name: str, device: str | None = None) -> Side:
    """The side called ``name`` ("ref"/"numpy" or "torch"/"port"), with the environment
    applied: the port's package from ``$YOLO_REF_PORT``, its device from ``device`` or else
    ``$YOLO_REF_DEVICE`` (default "cpu"). The reference always runs on the CPU.
    (:func:`ref_numpy.shared.sides.get_side` with the environment's defaults.)

    Raises:
        ValueError: unknown ``name``, or a non-CPU ``device`` for the reference.
    """
    side = _shared.get_side(name, device)
    if not side.is_torch:
        return side
    return _shared.get_side(name, device or default_device(), package=port_package())


# top-level package of an oracle or extra -> how to install it
INSTALL_HINTS = {
    "torchvision": "pip install torchvision, or the 'test' extra",
    "pycocotools": "pip install pycocotools, or the 'test' extra",
    "torch": "pip install 'yolo-ref[torch]'",
}


def resolve(target: str | Callable) -> Callable:
    """A callable from a dotted name ("torchvision.ops.box_iou": the longest importable module
    prefix, then attributes) or the callable itself (an oracle is resolved when it runs, so
    importing a registry row needs no oracle installed).

    Raises:
        ImportError: the oracle's package is missing (``exc.name`` names it).
    """
    if callable(target):
        return target
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name != module and not module.startswith(exc.name + "."):
                raise  # the module exists but one of its own imports is missing
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    return importlib.import_module(target)


def missing_reason(what: str, exc: ImportError) -> str:
    """One line for a SKIP: which package is missing for ``what`` and how to install it."""
    top = (exc.name or what).split(".")[0]
    hint = INSTALL_HINTS.get(top, f"pip install {top}")
    return f"{what}: {top} is not installed ({hint})"

