"""Binding a user's function to a reference calling convention.

The kit always draws inputs in the reference's convention (NumPy float64 arrays, keyword names of
the ``ref_numpy`` function). A :class:`Binding` turns such a call into a call of the user's
function and its output back into NumPy:

- **backend**: with ``adapter=None`` the kit calls the function once with NumPy arrays; if that
  raises, or returns a ``torch.Tensor``, it uses torch tensors (float64, CPU) instead.
- **arguments**: by name when the user's parameter names match the reference's (or a known
  alias: ``bboxes``/``dets`` for ``boxes``, ``iou_thres``/``thresh`` for ``iou_threshold``, ...),
  otherwise by position when the number of required parameters equals the number of reference
  arguments left after ``fixed``.
- **fixed**: reference arguments the user's function does not take (``{"in_fmt": "xywh",
  "out_fmt": "xyxy"}``): inputs are drawn with those values and the function is called without
  them.
- **adapter**: either a callable ``adapter(fn, **ref_kwargs) -> output`` that does the whole
  mapping itself, or a dict of the kit's named conversions: ``backend`` ("numpy" | "torch"),
  ``box_format`` (the user's box format: inputs named like boxes are converted from xyxy before
  the call and box outputs back), ``args`` ({reference name: user name}), ``output`` (a callable
  applied to the user's output).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ref_numpy import boxes as ref_boxes

ALIASES: dict[str, tuple[str, ...]] = {
    "boxes": ("boxes", "bboxes", "box", "dets", "detections", "b", "x", "bbox", "xyxy", "xywh", "cxcywh"),
    "boxes1": ("boxes1", "box1", "boxes_a", "bboxes1", "a", "b1", "pred", "preds", "box_a", "boxa"),
    "boxes2": ("boxes2", "box2", "boxes_b", "bboxes2", "b", "b2", "target", "targets", "gt", "box_b", "boxb"),
    "scores": ("scores", "score", "confidences", "conf", "confs", "probs"),
    "iou_threshold": ("iou_threshold", "iou_thres", "iou_thr", "thresh", "threshold", "overlap",
                      "nms_thresh", "nms_threshold", "iou"),
    "idxs": ("idxs", "classes", "labels", "class_ids", "category_idxs", "cls", "categories"),
    "raw": ("raw", "pred", "preds", "p", "t", "outputs", "deltas", "x"),
    "grid": ("grid", "grids", "cells", "cell", "grid_xy", "offsets"),
    "anchors": ("anchors", "anchor", "anchor_wh", "priors"),
    "stride": ("stride", "strides", "s"),
    "in_fmt": ("in_fmt", "in_format", "src", "from_fmt"),
    "out_fmt": ("out_fmt", "out_format", "dst", "to_fmt"),
}

BOX_ARGS = ("boxes", "boxes1", "boxes2")


class BindingError(ValueError):
    """The user's function cannot be bound to the reference's arguments (names the mismatch)."""


def _params(fn: Callable) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _has_varargs(fn: Callable) -> bool:
    try:
        return any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True


def bind_arguments(fn: Callable, ref_args: list[str]) -> tuple[str, dict[str, str] | None]:
    """How to pass ``ref_args`` to ``fn``: ``("name", {ref: user})`` or ``("position", None)``.

    Raises BindingError when neither names nor arity fit."""
    params = _params(fn)
    names = [p.name for p in params]
    mapping: dict[str, str] = {}
    for r in ref_args:
        cands = (r,) + ALIASES.get(r, ())
        hit = next((n for n in names if n in cands and n not in mapping.values()), None)
        if hit is None:
            break
        mapping[r] = hit
    else:
        if len(set(mapping.values())) == len(ref_args):
            return "name", mapping
    required = [p for p in params if p.default is p.empty and p.kind != p.KEYWORD_ONLY]
    positional = [p for p in params if p.kind != p.KEYWORD_ONLY]
    if len(required) <= len(ref_args) <= len(positional) or _has_varargs(fn):
        return "position", None
    raise BindingError(
        f"cannot bind {getattr(fn, '__name__', fn)}({', '.join(names)}) to the reference's "
        f"({', '.join(ref_args)}): names do not match and it takes {len(required)} required "
        f"argument(s); pass fixed={{...}} for the reference arguments it does not take, or an adapter")


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _has_tensor(x: Any, depth: int = 3) -> bool:
    """A torch tensor in ``x`` or in its nested lists/tuples (the first element at each level)."""
    if _is_tensor(x):
        return True
    if depth and isinstance(x, (list, tuple)) and x:
        return _has_tensor(x[0], depth - 1)
    return False


def to_numpy(x: Any) -> Any:
    """A user's output as NumPy (tensors detached to CPU; lists/tuples element-wise)."""
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def to_backend(x: Any, backend: str) -> Any:
    if backend != "torch":
        return x
    import torch
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, list) and x and all(isinstance(v, np.ndarray) for v in x):
        return [torch.from_numpy(np.ascontiguousarray(v)) for v in x]
    return x


@dataclass
class Binding:
    """A user's function called in the reference's convention (see the module docstring)."""

    fn: Callable
    ref_args: list[str]
    fixed: dict[str, Any] = field(default_factory=dict)
    adapter: Any = None
    backend: str = "auto"
    mode: str = "position"
    mapping: dict[str, str] | None = None
    #: the contract's own output normaliser (set by the engine), applied last
    normalize: Callable[[Any], Any] | None = None

    @classmethod
    def make(cls, fn: Callable, ref_args: list[str], fixed: Mapping[str, Any] | None = None,
             adapter: Any = None) -> "Binding":
        fixed = dict(fixed or {})
        unknown = set(fixed) - set(ref_args)
        if unknown:
            raise BindingError(f"fixed: {sorted(unknown)} are not arguments of the reference "
                               f"({', '.join(ref_args)})")
        free = [a for a in ref_args if a not in fixed]
        b = cls(fn, free, fixed, adapter)
        if callable(adapter):
            b.mode = "adapter"
            return b
        conv = dict(adapter or {})
        b.backend = conv.get("backend", "auto")
        if "args" in conv:
            b.mode, b.mapping = "name", {r: conv["args"].get(r, r) for r in free}
        else:
            b.mode, b.mapping = bind_arguments(fn, free)
        return b

    @property
    def conversions(self) -> dict[str, Any]:
        return self.adapter if isinstance(self.adapter, dict) else {}

    def describe(self) -> str:
        name = getattr(self.fn, "__name__", "fn")
        if self.mode == "adapter":
            return f"{name} through adapter {getattr(self.adapter, '__name__', self.adapter)}"
        if self.mode == "name":
            args = ", ".join(f"{u}={r}" for r, u in self.mapping.items())
        else:
            args = ", ".join(self.ref_args)
        fx = f"; fixed {self.fixed}" if self.fixed else ""
        fmt = self.conversions.get("box_format")
        fmt = f"; boxes as {fmt}" if fmt else ""
        return f"{name}({args}) [{self.backend}{fmt}{fx}]"

    def _raw_call(self, kwargs: dict[str, Any], backend: str) -> Any:
        free = {k: v for k, v in kwargs.items() if k not in self.fixed}
        fmt = self.conversions.get("box_format")
        if fmt and fmt != "xyxy":
            free = {k: (ref_boxes.box_convert(v, "xyxy", fmt) if k in BOX_ARGS else v)
                    for k, v in free.items()}
        free = {k: to_backend(v, backend) for k, v in free.items()}
        if self.mode == "name":
            return self.fn(**{self.mapping[k]: v for k, v in free.items()})
        return self.fn(*[free[a] for a in self.ref_args])

    def __call__(self, **kwargs: Any) -> Any:
        """Call the user's function on reference-convention inputs; NumPy output."""
        if self.mode == "adapter":
            out = to_numpy(self.adapter(self.fn, **{k: v for k, v in kwargs.items()
                                                    if k not in self.fixed}))
        else:
            if self.backend == "auto":
                self.backend = self._detect(kwargs)
            out = to_numpy(self._raw_call(kwargs, self.backend))
            post = self.conversions.get("output")
            out = post(out) if post else out
        return self.normalize(out) if self.normalize else out

    def _detect(self, kwargs: dict[str, Any]) -> str:
        try:
            out = self._raw_call(kwargs, "numpy")
        except Exception:  # noqa: BLE001 - any failure on NumPy input means "try torch"
            try:
                self._raw_call(kwargs, "torch")
            except ImportError:
                return "numpy"
            except Exception:  # noqa: BLE001 - a real error; numpy reports it
                return "numpy"
            return "torch"
        return "torch" if _has_tensor(out) else "numpy"
