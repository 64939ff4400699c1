"""Checkpoints that ``torch.load(path, weights_only=True)`` can read, written atomically and
verified on load.

A checkpoint is a dict of tensors and plain Python values (int, float, str, bool, None, lists,
tuples, dicts): model / optimizer / EMA / scheduler state dicts, the epoch, and the RNG states of
torch, NumPy and ``random`` in tensor form (:func:`get_rng_state`).

Integrity: :func:`save_checkpoint` stores under :data:`DIGEST_KEY` the SHA-256 of everything
else in the dict (:func:`checkpoint_digest`: each tensor's dtype, shape and bytes, each plain
value's repr, keys in order), and :func:`load_checkpoint` recomputes it: a flipped bit anywhere
in the weights, the optimizer state or the epoch counter is an error naming the file, where
``torch.load`` alone would load it silently. A checkpoint without a digest (written before
yolo-ref stored one, or by other tools) loads with a ``UserWarning`` note when it looks like a
yolo-ref file (``args`` / ``model_cfg`` keys), silently otherwise (plain state_dicts).

Errors: every unreadable or malformed file is one ``ValueError`` line naming the file and what
is wrong (missing, empty, not a torch file, truncated, refused by ``weights_only``, digest
mismatch, missing keys, non-finite weights): :func:`load_checkpoint`,
:func:`check_state_dict`, :func:`check_resume_checkpoint`.

Files follow the process umask like every other output (``tempfile.mkstemp`` alone would leave
them 0600); a failed write (a full disk) leaves the previous file untouched and no temporary
file behind, and is one line naming the path.
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DIGEST_KEY", "FAULT_ENV", "check_model_file", "check_resume_checkpoint", "check_state_dict",
           "checkpoint_digest",
           "get_rng_state", "load_checkpoint", "read_torch_file", "remove_stale_tmp",
           "save_checkpoint", "set_rng_state"]

DIGEST_KEY = "sha256"
"""The checkpoint key of :func:`checkpoint_digest` (a hex string)."""

# what a resumable checkpoint of torch_impl.train.train holds, and of what type
_RESUME_KEYS = {"epoch": int, "best_fitness": float, "model": dict, "optimizer": dict,
                "scheduler": dict, "scaler": dict, "last_opt_step": int, "rng": dict,
                "args": dict}


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


def _digest_update(h, x: Any, path: str) -> None:
    h.update(path.encode())
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(x, dict):
        h.update(f"D{len(x)}".encode())
        for k, v in x.items():
            _digest_update(h, v, f"{path}/{k!r}")
    elif isinstance(x, (list, tuple)):
        h.update(f"{type(x).__name__[0]}{len(x)}".encode())
        for i, v in enumerate(x):
            _digest_update(h, v, f"{path}/{i}")
    else:
        h.update(f"{type(x).__name__}:{x!r}".encode())


def checkpoint_digest(obj: Any) -> str:
    """SHA-256 (hex) of a checkpoint's contents, :data:`DIGEST_KEY` excluded: every tensor's
    dtype, shape and bytes (so NaN payloads and -0.0 count), every plain value's type and repr,
    dict keys in their order. Equal digests: the same checkpoint, bit for bit."""
    h = hashlib.sha256()
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k != DIGEST_KEY}
    _digest_update(h, obj, "")
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FAULT_ENV = "YOLO_REF_DEBUG_KILL"
"""Testing hook (fault injection, ``parity_tests/test_faults.py``): ``"<when>:<name>:<n>"``
SIGKILLs this process at the ``n``-th (1-based) :func:`save_checkpoint` of a file called
``name`` in this process, ``when`` = ``before`` (nothing of it written) or ``mid`` (the
temporary file half written, as a kill or power cut during the write leaves it)."""

_saves: dict = {}


def _fault(when: str, path: Path, tmp_fd: int | None = None) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    w, name, n = spec.split(":")
    if name != path.name:
        return
    if when == "before":  # every save passes here first: count them
        _saves[name] = _saves.get(name, 0) + 1
    if w == when and _saves.get(name, 0) == int(n):
        if tmp_fd is not None:
            os.write(tmp_fd, b"PK\x03\x04 half a checkpoint")
            os.fsync(tmp_fd)
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(obj: dict, path: str | os.PathLike) -> Path:
    """Write ``obj`` plus its digest (:data:`DIGEST_KEY`, :func:`checkpoint_digest`) with
    ``torch.save`` to a temporary file ``.<name>.*.tmp`` in ``path``'s directory, then
    ``os.replace`` it onto ``path``: a reader sees the old file or the new one, never a partial
    one. The file's mode follows the umask (``0o666 & ~umask``). Returns the path.

    Raises:
        OSError: the write failed (a full disk, a read-only directory); the old file is kept,
            the temporary file removed, and the message names ``path``.
    """
    path = Path(path)
    _fault("before", path)
    if isinstance(obj, dict):
        obj = {**{k: v for k, v in obj.items() if k != DIGEST_KEY},
               DIGEST_KEY: checkpoint_digest(obj)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{path}: cannot write checkpoint: "
                                   f"{exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        _fault("mid", path, fd)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and str(path) not in str(exc):
            raise type(exc)(exc.errno, f"{path}: cannot write checkpoint: "
                                       f"{exc.strerror or exc}") from exc
        raise
    return path


def remove_stale_tmp(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an interrupted :func:`save_checkpoint` left in
    ``directory`` (a process killed between ``mkstemp`` and ``os.replace``) and return them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = sorted(p for p in directory.glob(".*.tmp") if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def read_torch_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, every failure as one line naming the file.

    Raises:
        ValueError: ``"<path>: cannot read checkpoint: <why>"``, the why one of: the OS error
            (missing, a directory, no permission), ``empty file (0 bytes)``, ``not a torch.save
            file``, ``truncated or corrupt``, ``refused by weights_only=True: it holds pickled
            Python objects (<the global>)``.
    """
    where = f"{path}: cannot read checkpoint"
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ValueError(f"{where}: {exc.strerror or exc}") from exc
    if Path(path).is_dir():
        raise ValueError(f"{where}: is a directory")
    if size == 0:
        raise ValueError(f"{where}: empty file (0 bytes)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text:
            glob = [ln.strip() for ln in text.splitlines() if "Unsupported global" in ln
                    or "Unsupported operand" in ln]
            detail = f" ({glob[0]})" if glob else ""
            raise ValueError(f"{where}: refused by weights_only=True: it holds pickled Python "
                             f"objects, not only tensors and plain values{detail}") from None
        raise ValueError(f"{where}: not a torch.save file ({_first_line(exc)})") from None
    except OSError as exc:
        raise ValueError(f"{where}: {exc.strerror or _first_line(exc)}") from None
    except (EOFError, RuntimeError) as exc:
        raise ValueError(f"{where}: truncated or corrupt ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - the legacy unpickler raises KeyError, ValueError ...
        raise ValueError(f"{where}: not a torch.save file ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


def _looks_like_ours(obj: Any) -> bool:
    return isinstance(obj, dict) and ("args" in obj or "model_cfg" in obj)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    verify: bool = True) -> Any:
    """:func:`read_torch_file`, then the digest check: the stored :data:`DIGEST_KEY` is
    compared with :func:`checkpoint_digest` of the rest and removed (the dict returned is the
    one that was saved). Without a digest a yolo-ref file loads with a ``UserWarning`` note.

    Raises:
        ValueError: see :func:`read_torch_file`; ``"<path>: checkpoint digest mismatch: the
            file is corrupt (...)"``.
    """
    obj = read_torch_file(path, map_location)
    if not verify or not isinstance(obj, dict):
        return obj
    stored = obj.pop(DIGEST_KEY, None)
    if stored is None:
        if _looks_like_ours(obj):
            warnings.warn(f"{path}: no {DIGEST_KEY} digest (written before yolo-ref stored "
                          f"one); loaded without an integrity check", UserWarning, stacklevel=2)
        return obj
    actual = checkpoint_digest(obj)
    if stored != actual:
        raise ValueError(f"{path}: checkpoint digest mismatch: the file is corrupt (stored "
                         f"{DIGEST_KEY} {str(stored)[:12]}..., contents give {actual[:12]}...)")
    return obj


def check_state_dict(state: Any, where: str) -> dict:
    """``state`` if it is a non-empty dict of tensors with string keys whose floating tensors
    are all finite.

    Raises:
        ValueError: ``"<where>: holds no model weights"``, ``"<where>: model weights: 'k' is a
            list, not a tensor"``, ``"<where>: model weights: 'k' holds NaN or inf (3 of 432
            values): the weights diverged or the file is damaged"``.
    """
    if not isinstance(state, dict) or not state:
        what = type(state).__name__ if not isinstance(state, dict) else "an empty dict"
        raise ValueError(f"{where}: holds no model weights (got {what})")
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"{where}: model weights: {k!r} is a {type(v).__name__}, "
                             f"not a tensor")
        if v.is_floating_point() or v.is_complex():
            bad = int((~torch.isfinite(v)).sum())
            if bad:
                raise ValueError(f"{where}: model weights: {k!r} holds NaN or inf ({bad} of "
                                 f"{v.numel()} values): the weights diverged or the file is "
                                 f"damaged")
    return state


def check_resume_checkpoint(ckpt: Any, path: str | os.PathLike) -> dict:
    """``ckpt`` if ``train --resume`` can continue from it: a dict with ``epoch``,
    ``best_fitness``, ``model`` (finite weights, :func:`check_state_dict`), ``optimizer``,
    ``scheduler``, ``scaler``, ``last_opt_step``, ``rng`` and ``args`` of the right types.

    Raises:
        ValueError: ``"<path>: not a resumable yolo-ref train checkpoint: missing keys
            ['optimizer', 'rng']"`` and the like.
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a resumable yolo-ref train checkpoint: a "
                         f"{type(ckpt).__name__}, not a dict")
    missing = [k for k in _RESUME_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a resumable yolo-ref train checkpoint (a last.pt of "
                         f"yolo-ref train): missing keys {missing}")
    for k, kind in _RESUME_KEYS.items():
        v = ckpt[k]
        real = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = real if kind is float else isinstance(v, kind) and not isinstance(v, bool)
        if not ok:
            raise ValueError(f"{path}: not a resumable yolo-ref train checkpoint: {k!r} is a "
                             f"{type(v).__name__}, expected {kind.__name__}")
    if ckpt["epoch"] < 0 or not (math.isfinite(ckpt["best_fitness"])
                                 or ckpt["best_fitness"] == -math.inf):
        raise ValueError(f"{path}: not a resumable yolo-ref train checkpoint: epoch "
                         f"{ckpt['epoch']}, best_fitness {ckpt['best_fitness']}")
    check_state_dict(ckpt["model"], str(path))
    return ckpt


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def check_model_file(ckpt: Any, path: str | os.PathLike) -> Any:
    """``ckpt`` (what :func:`load_checkpoint` read) if its yolo-ref model-file layout is sound,
    for :func:`torch_impl.train.inference.read_weights`: a ``model_cfg`` that is a dict with a
    positive integer ``nc``; ``ema`` None or ``{"ema": state_dict, ...}``; ``model`` /
    ``state_dict`` dicts; ``names`` None or ``nc`` strings; the older ``{"state_dict",
    "config"}`` layout with ``nc``, ``depth_multiple``, ``width_multiple``. Other objects pass
    through (the caller says what they are).

    Raises:
        ValueError: ``"<path>: model_cfg: expected a dict, got int"``, ``"<path>: names: 1
            class names for a model of 3 classes"`` and the like.
    """
    if not isinstance(ckpt, dict):
        return ckpt
    where = str(path)
    if "model_cfg" in ckpt:
        cfg = ckpt["model_cfg"]
        if not isinstance(cfg, dict):
            raise ValueError(f"{where}: model_cfg: expected a dict, got {type(cfg).__name__}")
        if not _positive_int(cfg.get("nc")):
            raise ValueError(f"{where}: model_cfg: nc: expected a positive integer class "
                             f"count, got {cfg.get('nc')!r}")
        for k in ("depth_multiple", "width_multiple"):
            v = cfg.get(k)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) and v > 0):
                raise ValueError(f"{where}: model_cfg: {k}: expected a positive number, "
                                 f"got {v!r}")
        nc = cfg["nc"]
    elif "state_dict" in ckpt and "config" in ckpt:
        cfg = ckpt["config"]
        if not isinstance(cfg, dict):
            raise ValueError(f"{where}: config: expected a dict, got {type(cfg).__name__}")
        missing = [k for k in ("nc", "depth_multiple", "width_multiple") if k not in cfg]
        if missing:
            raise ValueError(f"{where}: config: missing keys {missing}")
        if not _positive_int(cfg["nc"]):
            raise ValueError(f"{where}: config: nc: expected a positive integer class count, "
                             f"got {cfg['nc']!r}")
        nc = cfg["nc"]
    else:
        return ckpt
    ema = ckpt.get("ema")
    if ema is not None and not (isinstance(ema, dict) and isinstance(ema.get("ema"), dict)):
        raise ValueError(f"{where}: ema: expected None or {{'ema': state_dict, ...}}, got "
                         f"{type(ema).__name__}")
    for k in ("model", "state_dict"):
        if k in ckpt and ckpt[k] is not None and not isinstance(ckpt[k], dict):
            raise ValueError(f"{where}: {k}: expected a state_dict (a dict of tensors), got "
                             f"{type(ckpt[k]).__name__}")
    names = ckpt.get("names")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: names: expected a list of class names, got "
                             f"{type(names).__name__}")
        if len(names) != nc:
            raise ValueError(f"{where}: names: {len(names)} class names for a model of {nc} "
                             f"classes")
    return ckpt
