"""One notion of "a side": which implementation a test calls, and how values cross over.

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
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

from parity_tests.tolerances import to_numpy

PORT_ENV = "YOLO_REF_PORT"
DEVICE_ENV = "YOLO_REF_DEVICE"
NO_CUDA = "no CUDA device"

_ALIASES = {"ref": "ref", "numpy": "ref", "reference": "ref", "torch": "torch", "port": "torch"}


@dataclass(frozen=True)
class Side:
    """One implementation of the reference's module names.

    Attributes:
        name: "ref" or "torch" (what ``--backend`` spells).
        package: import prefix of the modules, e.g. "ref_numpy", "torch_impl", "mypkg".
        array: "numpy" (arguments are NumPy arrays) or "torch" (tensors).
        device: torch device the inputs are placed on ("cpu", "cuda", "cuda:1"); "cpu" for NumPy.
    """

    name: str
    package: str
    array: str = "numpy"
    device: str = "cpu"

    @property
    def is_torch(self) -> bool:
        return self.array == "torch"

    def module(self, module: str) -> ModuleType:
        """``<package>.<module>``; ``ImportError`` names the side when it is missing."""
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except ImportError as exc:
            if exc.name in ("torch", "torchvision"):
                raise
            raise ImportError(f"side {self.name!r}: no module {self.package}.{module} "
                              f"({exc})", name=exc.name) from exc

    def function(self, qualname: str) -> Callable:
        """The callable ``module.function`` of this side (``AttributeError`` names the module)."""
        module, _, function = qualname.partition(".")
        mod = self.module(module)
        if not hasattr(mod, function):
            raise AttributeError(f"side {self.name!r}: {self.package}.{module} has no "
                                 f"{function!r}")
        return getattr(mod, function)

    def available(self) -> str | None:
        """``None`` when this side can run here, else why not (one line, with the fix)."""
        if not self.is_torch:
            return None
        try:
            import torch
        except ImportError:
            return "torch is not installed (pip install 'yolo-ref[torch]')"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            return NO_CUDA
        return None

    def to_inputs(self, x: Any, dtype: str) -> Any:
        """NumPy arrays (recursively through tuples, lists, dicts) as this side takes them:
        floating arrays cast to ``dtype``; for torch, tensors on :attr:`device`. Integer and
        bool arrays keep their dtype; anything else passes through."""
        if isinstance(x, np.ndarray):
            arr = x.astype(dtype) if x.dtype.kind == "f" else x
            if not self.is_torch:
                return arr
            import torch

            return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        if isinstance(x, (list, tuple)):
            return type(x)(self.to_inputs(v, dtype) for v in x)
        if isinstance(x, dict):
            return {k: self.to_inputs(v, dtype) for k, v in x.items()}
        return x

    def to_numpy(self, out: Any) -> Any:
        """Outputs (tensors anywhere in tuples, lists, dicts) as NumPy on the host, dtypes kept
        (bfloat16, which NumPy lacks, as float64)."""
        return to_numpy(out)

    def run(self, fn: str | Callable, args: tuple = (), kwargs: dict | None = None,
            dtype: str = "float64") -> Any:
        """Call ``fn`` ("module.function" of this side, or a callable taking this side's values)
        on NumPy ``args``/``kwargs`` converted by :meth:`to_inputs`; the raw output comes back
        (tensors stay tensors, so dtypes and devices can be checked)."""
        f = self.function(fn) if isinstance(fn, str) else fn
        return f(*self.to_inputs(tuple(args), dtype), **self.to_inputs(dict(kwargs or {}), dtype))

    def call(self, fn: str | Callable, *args: Any, dtype: str = "float64", **kwargs: Any) -> Any:
        """:meth:`run` with the output as NumPy: ``side.call("boxes.box_iou", a, b)``."""
        return self.to_numpy(self.run(fn, args, kwargs, dtype))

    def on(self, device: str) -> "Side":
        """This side on ``device`` (``ValueError`` for a NumPy side and a non-CPU device)."""
        if not self.is_torch and str(device) != "cpu":
            raise ValueError(f"device: the {self.name!r} side runs on the CPU only, got "
                             f"{device!r}")
        return replace(self, device=str(device))

    def __str__(self) -> str:
        where = f" on {self.device}" if self.is_torch else ""
        return f"{self.name} ({self.package}{where})"


REF = Side("ref", "ref_numpy", "numpy")
"""The NumPy reference, ``ref_numpy``: the specification."""

TORCH = Side("torch", "torch_impl", "torch")
"""The PyTorch port, ``torch_impl``, on the CPU (before the environment is applied)."""


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

    Raises:
        ValueError: unknown ``name``, or a non-CPU ``device`` for the reference.
    """
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise ValueError(f"backend: expected one of ref, torch, got {name!r}")
    if key == "ref":
        return REF if device is None else REF.on(device)
    return replace(TORCH, package=port_package(), device=str(device or default_device()))


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


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
