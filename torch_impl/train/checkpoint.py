"""Checkpoints that ``torch.load(path, weights_only=True)`` can read, written atomically.

A checkpoint is a dict of tensors and plain Python values (int, float, str, bool, None, lists,
tuples, dicts): model / optimizer / EMA / scheduler state dicts, the epoch, and the RNG states of
torch, NumPy and ``random`` in tensor form (:func:`get_rng_state`).
"""
from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def get_rng_state() -> dict:
    """The global RNG states as tensors and plain values:
    ``{"torch": uint8 tensor, "cuda": list of uint8 tensors, "numpy": {...}, "python": {...}}``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned (CUDA states only where CUDA is present)."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))


def save_checkpoint(obj: dict, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` to a temporary file in ``path``'s directory, then
    ``os.replace`` it onto ``path``: a reader sees the old file or the new one, never a partial
    one. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """``torch.load(path, weights_only=True)``.

    Raises:
        ValueError: ``"<path>: cannot read checkpoint: ..."`` for a missing or unreadable file.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: cannot read checkpoint: {first}") from exc
