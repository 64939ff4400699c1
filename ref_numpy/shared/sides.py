"""One notion of "a side": which implementation is called, and how values cross over.

A :class:`Side` is a package of modules named like ``ref_numpy``'s (``boxes``, ``coder``,
``metrics``, ...), an array kind (``numpy`` or ``torch``) and a device. It converts NumPy
inputs into what the side takes (floating arrays cast to the dtype asked for, or kept; for
torch, tensors on the side's device) and the side's outputs back to NumPy. Every command's
``--backend ref|torch`` / ``--device`` and every parity test go through :func:`get_side`:

- ``get_side("ref")`` (aliases ``"numpy"``, ``"reference"``): :data:`REF`, the NumPy
  reference ``ref_numpy`` (the specification), on the CPU;
- ``get_side("torch", device)`` (alias ``"port"``): the PyTorch port, :data:`TORCH` =
  ``torch_impl`` on ``device``; ``package=`` points it at another implementation of the same
  module names.

This module runs on the base install: torch is imported only when a torch side converts a
value or checks its device (:meth:`Side.check`); without torch that raises ``ImportError``
naming the ``torch`` extra. The test suite's environment (``YOLO_REF_PORT``,
``YOLO_REF_DEVICE``) and its pytest skips live in :mod:`parity_tests.sides`, on top of this.

Example::

    side = get_side("torch", "cuda").check()       # ValueError naming --device without a GPU
    iou = side.call("boxes.box_iou", a, b)         # NumPy in, NumPy out (float64 by default)
"""
from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

__all__ = ["NO_CUDA", "REF", "TORCH", "TORCH_HINT", "Side", "cuda_available", "get_side",
           "to_numpy"]

NO_CUDA = "no CUDA device"
"""Why a CUDA side cannot run here (also the reason the test suite's CUDA skips give)."""

TORCH_HINT = "pip install 'yolo-ref[torch]'"
"""How to get the port's dependency (the ``torch`` extra)."""

_ALIASES = {"ref": "ref", "numpy": "ref", "reference": "ref", "torch": "torch", "port": "torch"}


def _import_torch(what: str) -> ModuleType:
    """``torch``, or ``ImportError`` (``name="torch"``) saying ``what`` needs the extra."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{what} needs torch, which is not installed ({TORCH_HINT})",
                          name="torch") from exc
    return torch


def to_numpy(x: Any) -> Any:
    """Tensors anywhere in ``x`` (nested tuples, lists, dicts, dataclass instances) as NumPy on
    the host, dtypes kept (bfloat16, which NumPy lacks, as float64; float16 stays float16);
    everything else as it is.

    Never imports torch: when torch has not been imported there can be no tensor to convert.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.double()
        return t.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return replace(x, **{f.name: to_numpy(getattr(x, f.name))
                             for f in dataclasses.fields(x) if f.init})
    return x


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


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
        """True when this side takes and returns torch tensors."""
        return self.array == "torch"

    def module(self, module: str) -> ModuleType:
        """``<package>.<module>``.

        Raises:
            ImportError: the module is missing (the message names the side and the module), or
                a torch side's module needs torch, which is missing (names the ``torch``
                extra; ``exc.name == "torch"``). A missing oracle package (torchvision) is
                re-raised as it is, so that ``exc.name`` names it.
        """
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except ImportError as exc:
            if exc.name == "torch":
                raise ImportError(f"side {self.name!r}: {self.package}.{module} needs torch, "
                                  f"which is not installed ({TORCH_HINT})", name="torch") from exc
            if exc.name == "torchvision":
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
        """``None`` when this side can run here, else why not (one line, with the fix): torch
        missing (the install hint) or a CUDA device without a GPU (:data:`NO_CUDA`)."""
        if not self.is_torch:
            return None
        try:
            import torch
        except ImportError:
            return f"torch is not installed ({TORCH_HINT})"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            return NO_CUDA
        return None

    def check(self) -> "Side":
        """This side, once it is known to run here (what a command does with ``--backend``).

        Raises:
            ImportError: a torch side without torch (the message names the ``torch`` extra).
            ValueError: a device torch cannot use (no GPU for "cuda", an unknown name); the
                message names ``--device``.
        """
        if not self.is_torch:
            return self
        torch = _import_torch(f"--backend {self.name}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: not usable here ({NO_CUDA})")
        from ref_numpy.shared.devices import select_device  # the one device validator
        try:
            select_device(self.device, "device", allow_auto=False)
        except ValueError as exc:
            why = str(exc).split(": ", 1)[-1]
            raise ValueError(f"--device {self.device}: not usable here ({why})") from None
        try:
            torch.zeros(1, device=torch.device(self.device))
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise ValueError(f"--device {self.device}: not usable here ({exc})") from exc
        return self

    def to_inputs(self, x: Any, dtype: str | None = None) -> Any:
        """NumPy arrays (recursively through tuples, lists, dicts) as this side takes them:
        floating arrays cast to ``dtype`` (``None``: kept); for torch, tensors on
        :attr:`device`. Integer and bool arrays keep their dtype; anything else passes through.

        Raises:
            ImportError: a torch side without torch (names the ``torch`` extra).
        """
        if isinstance(x, np.ndarray):
            arr = x.astype(dtype) if dtype is not None and x.dtype.kind == "f" else x
            if not self.is_torch:
                return arr
            torch = _import_torch(f"side {self.name!r}")
            return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        if isinstance(x, (list, tuple)):
            return type(x)(self.to_inputs(v, dtype) for v in x)
        if isinstance(x, dict):
            return {k: self.to_inputs(v, dtype) for k, v in x.items()}
        return x

    def to_numpy(self, out: Any) -> Any:
        """Outputs (tensors anywhere in tuples, lists, dicts, dataclasses) as NumPy on the host,
        dtypes kept (:func:`to_numpy`)."""
        return to_numpy(out)

    def run(self, fn: str | Callable, args: tuple = (), kwargs: dict | None = None,
            dtype: str | None = "float64") -> Any:
        """Call ``fn`` ("module.function" of this side, or a callable taking this side's values)
        on NumPy ``args``/``kwargs`` converted by :meth:`to_inputs` (``dtype=None`` keeps the
        floating dtypes); the raw output comes back (tensors stay tensors, so dtypes and
        devices can be checked)."""
        f = self.function(fn) if isinstance(fn, str) else fn
        return f(*self.to_inputs(tuple(args), dtype), **self.to_inputs(dict(kwargs or {}), dtype))

    def call(self, fn: str | Callable, *args: Any, dtype: str | None = "float64",
             **kwargs: Any) -> Any:
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
"""The PyTorch port, ``torch_impl``, on the CPU."""


def get_side(name: str, device: str | None = None, package: str | None = None) -> Side:
    """The side called ``name`` ("ref"/"numpy"/"reference" or "torch"/"port"): :data:`REF`, or
    :data:`TORCH` on ``device`` (default "cpu") with its modules from ``package`` (default
    "torch_impl"). Nothing is imported: :meth:`Side.check` says whether the side runs here.

    Raises:
        ValueError: unknown ``name`` (names ``backend``), a non-CPU ``device`` for the
            reference (names ``device``), or a ``package`` for the reference.
    """
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise ValueError(f"backend: expected one of ref, torch, got {name!r}")
    if key == "ref":
        if package is not None and package != REF.package:
            raise ValueError(f"package: the reference is {REF.package}, got {package!r}")
        return REF if device is None else REF.on(device)
    return replace(TORCH, package=package or TORCH.package, device=str(device or "cpu"))
