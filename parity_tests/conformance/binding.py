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
  mapping itself, or a dict of the kit's named conversions (any combination):

  - ``backend``: "numpy" | "torch" (the kit's tensors are float64 on the CPU);
  - ``box_format``: the user's box format ("xywh", "cxcywh"): box inputs (``boxes``,
    ``boxes1``, ``boxes2``) are converted from xyxy before the call, and xyxy box outputs
    (decoders) back;
  - ``coords``: "normalized" (or "normalised") with ``image_size`` (W, H) or one int: box
    inputs are divided by the image size, box outputs multiplied back;
  - ``batched``: True for a function that takes a batch (``boxes [B, N, 4]``, ``scores
    [B, N]``, ``idxs [B, N]``) and returns one result per image: it is called with B = 1 and
    its first result is taken;
  - ``head_layout``: "flat" for a loss whose per-level predictions are ``[B, A*(5+C), H, W]``
    (the conv output before YOLOv5's view/permute) instead of ``[B, A, H, W, 5+C]``;
  - ``args``: {reference name: user name}; ``output``: a callable applied to the user's output.
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
#: Per-box arguments that gain a leading batch axis under ``{"batched": True}``.
BATCH_ARGS = ("boxes", "scores", "idxs")
#: Adapter dict keys the kit understands (anything else is a BindingError naming these).
ADAPTER_KEYS = ("backend", "box_format", "coords", "image_size", "batched", "head_layout", "args",
                "output")


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
        known = {n: r for r in ref_args for n in (r,) + ALIASES.get(r, ())}
        for r, q in zip(ref_args, positional):
            if q.name in known and known[q.name] != r:
                raise BindingError(
                    f"cannot bind {getattr(fn, '__name__', fn)}({', '.join(names)}) by position: its "
                    f"argument {q.name!r} would receive the reference's {r!r}; pass fixed={{...}} for "
                    f"the reference arguments it does not take, or an adapter")
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


def flat_head(p: np.ndarray) -> np.ndarray:
    """``[B, A, H, W, 5+C]`` -> ``[B, A*(5+C), H, W]`` (the Detect conv's own layout; YOLOv5
    goes the other way with ``view(bs, na, no, ny, nx).permute(0, 1, 3, 4, 2)``)."""
    b, a, h, w, no = p.shape
    return np.ascontiguousarray(np.transpose(p, (0, 1, 4, 2, 3)).reshape(b, a * no, h, w))


def grid_head(p: Any, na: int) -> Any:
    """The inverse of :func:`flat_head` (NumPy or torch): ``[B, A*(5+C), H, W]`` ->
    ``[B, A, H, W, 5+C]``."""
    b, c, h, w = p.shape
    if _is_tensor(p):
        return p.view(b, na, c // na, h, w).permute(0, 1, 3, 4, 2).contiguous()
    return np.transpose(np.asarray(p).reshape(b, na, c // na, h, w), (0, 1, 3, 4, 2))


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
    #: the contract's output is boxes ("xyxy" or "any"; set by the engine) or not ("")
    output_boxes: str = ""

    @classmethod
    def make(cls, fn: Callable, ref_args: list[str], fixed: Mapping[str, Any] | None = None,
             adapter: Any = None) -> "Binding":
        fixed = dict(fixed or {})
        unknown = set(fixed) - set(ref_args)
        if unknown:
            raise BindingError(f"fixed: {sorted(unknown)} are not arguments of the reference "
                               f"({', '.join(ref_args)})")
        taken = sorted(set(fixed) & {q.name for q in _params(fn)}) if not callable(adapter) else []
        if taken:
            raise BindingError(f"fixed: {taken} are arguments of {getattr(fn, '__name__', fn)} itself; "
                               f"fixed is for the reference arguments it does not take (drop them from "
                               f"fixed, or fix the reference's other arguments instead)")
        free = [a for a in ref_args if a not in fixed]
        b = cls(fn, free, fixed, adapter)
        if callable(adapter):
            b.mode = "adapter"
            return b
        conv = dict(adapter or {})
        unknown = sorted(set(conv) - set(ADAPTER_KEYS))
        if unknown:
            raise BindingError(f"adapter: unknown conversion(s) {unknown}; known: {', '.join(ADAPTER_KEYS)}")
        if conv.get("coords") not in (None, "pixels", "normalized", "normalised"):
            raise BindingError(f"adapter: coords expected 'pixels' or 'normalized', got {conv['coords']!r}")
        if conv.get("coords") in ("normalized", "normalised") and "image_size" not in conv:
            raise BindingError("adapter: coords 'normalized' needs image_size (W, H)")
        if conv.get("head_layout") not in (None, "grid", "flat"):
            raise BindingError(f"adapter: head_layout expected 'grid' or 'flat', got {conv['head_layout']!r}")
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
        conv = self.conversions
        fmt = f"; boxes as {conv['box_format']}" if conv.get("box_format") else ""
        if conv.get("coords") in ("normalized", "normalised"):
            fmt += f"; coords normalised by {conv['image_size']}"
        if conv.get("batched"):
            fmt += "; batched (B = 1)"
        if conv.get("head_layout") == "flat":
            fmt += "; head [B, A*(5+C), H, W]"
        return f"{name}({args}) [{self.backend}{fmt}{fx}]"

    def _scale(self) -> np.ndarray | None:
        """[W, H, W, H] under ``coords: normalized``, else None."""
        conv = self.conversions
        if conv.get("coords") not in ("normalized", "normalised"):
            return None
        size = np.broadcast_to(np.asarray(conv["image_size"], np.float64), (2,))
        return np.tile(size, 2)

    def _convert_inputs(self, free: dict[str, Any]) -> dict[str, Any]:
        conv = self.conversions
        fmt, scale = conv.get("box_format"), self._scale()
        out = {}
        for k, v in free.items():
            if k in BOX_ARGS:
                if fmt and fmt != "xyxy":
                    v = ref_boxes.box_convert(v, "xyxy", fmt)
                if scale is not None:
                    v = v / scale
            if conv.get("batched") and k in BATCH_ARGS:
                v = np.asarray(v)[None]
            if k == "preds" and conv.get("head_layout") == "flat":
                v = [flat_head(p) for p in v]
            out[k] = v
        return out

    def _convert_output(self, out: Any) -> Any:
        conv = self.conversions
        if conv.get("batched"):
            out = out[0]
        if self.output_boxes:
            scale, fmt = self._scale(), conv.get("box_format")
            if scale is not None:
                out = np.asarray(out) * scale
            if self.output_boxes == "xyxy" and fmt and fmt != "xyxy":
                out = ref_boxes.box_convert(np.asarray(out, np.float64), fmt, "xyxy")
        return out

    def _raw_call(self, kwargs: dict[str, Any], backend: str) -> Any:
        free = self._convert_inputs({k: v for k, v in kwargs.items() if k not in self.fixed})
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
            out = self._convert_output(to_numpy(self._raw_call(kwargs, self.backend)))
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
