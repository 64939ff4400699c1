"""The one tolerance table of the parity suite, and the one comparison helper.

Every comparison between the reference (``ref_numpy``), the port (``torch_impl``) and an oracle
(torchvision, pycocotools) goes through :func:`assert_parity` with a tolerance from
:func:`tolerance`. No literal tolerances live in test bodies.

The defaults are keyed by dtype. An entry of ``OVERRIDES`` loosens (or tightens) one operation
at one dtype and must say why.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tol:
    """Absolute plus relative tolerance: ``|a - d| <= atol + rtol * |d|`` element-wise."""

    rtol: float
    atol: float
    why: str = ""


EXACT = Tol(0.0, 0.0, "bit-for-bit: indices, counts, classes, and float ops copied op for op")

DEFAULT: dict[str, Tol] = {
    # Same formula and the same order of operations on both sides; what is left is libm
    # (exp, log, atan) differing by an ulp or two between NumPy and torch.
    "float64": Tol(rtol=1e-12, atol=1e-12, why="libm ulp differences only"),
    # Same argument at float32: a few ulps of eps(float32) = 1.2e-7.
    "float32": Tol(rtol=1e-6, atol=1e-6, why="a few float32 ulps (libm and summation order)"),
    # Autocast paths: half precision keeps ~3 decimal digits.
    "float16": Tol(rtol=2e-3, atol=2e-3, why="float16 has a 10-bit mantissa"),
    "bfloat16": Tol(rtol=2e-2, atol=2e-2, why="bfloat16 has a 7-bit mantissa"),
}

# (operation name, dtype) -> Tol. Operation names are "module.function" as in the registry.
OVERRIDES: dict[tuple[str, str], Tol] = {
    # --- boxes ---
    # --- coder ---
    # --- nms ---
    # --- formats ---
    # --- metrics ---
    # --- assign ---
}


def tolerance(name: str, dtype) -> Tol:
    """The tolerance for operation ``name`` ("module.function") compared at ``dtype``."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    key = key.replace("torch.", "")
    if (name, key) in OVERRIDES:
        return OVERRIDES[(name, key)]
    if key not in DEFAULT:
        return EXACT  # integer and bool outputs compare exactly
    return DEFAULT[key]


def to_numpy(x):
    """Tensors, arrays and nested tuples/lists/dicts of them as NumPy (float64 for half types)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.double()
        return t.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def _describe(inputs) -> str:
    if inputs is None:
        return ""
    with np.printoptions(precision=17, threshold=200):
        return f"\nInputs that reproduce it:\n{inputs!r}"


def assert_parity(actual, desired, *, name: str = "", dtype=None, tol: Tol | None = None,
                  inputs=None, check_dtype: bool = True, path: str = "out") -> None:
    """Assert that ``actual`` equals ``desired`` within the table's tolerance.

    Checks, in order: structure (nested tuples/lists/dicts), shape, dtype kind, then values,
    with NaN required in the same places. Tensors are moved to NumPy first. On failure the
    message names the operation, the path into the output, the worst element, the tolerance
    and the inputs that reproduce it.

    Args:
        actual, desired: arrays, tensors, scalars or nested containers of them.
        name: operation name ("module.function") used to look up the tolerance.
        dtype: dtype the computation ran at; defaults to ``desired``'s dtype.
        tol: an explicit entry (e.g. ``EXACT``) instead of the table lookup.
        inputs: anything whose repr reproduces the failure.
        check_dtype: also require the same dtype kind (float/int/bool).
    """
    actual, desired = to_numpy(actual), to_numpy(desired)
    where = f"{name or 'parity'} [{path}]"
    if isinstance(desired, dict):
        assert isinstance(actual, dict) and set(actual) == set(desired), (
            f"{where}: keys {sorted(actual) if isinstance(actual, dict) else type(actual)} "
            f"!= {sorted(desired)}{_describe(inputs)}")
        for k in desired:
            assert_parity(actual[k], desired[k], name=name, dtype=dtype, tol=tol, inputs=inputs,
                          check_dtype=check_dtype, path=f"{path}[{k!r}]")
        return
    if isinstance(desired, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(desired), (
            f"{where}: length {len(actual) if isinstance(actual, (list, tuple)) else type(actual)}"
            f" != {len(desired)}{_describe(inputs)}")
        for i, (a, d) in enumerate(zip(actual, desired)):
            assert_parity(a, d, name=name, dtype=dtype, tol=tol, inputs=inputs,
                          check_dtype=check_dtype, path=f"{path}[{i}]")
        return
    if desired is None or isinstance(desired, str):
        assert actual == desired, f"{where}: {actual!r} != {desired!r}{_describe(inputs)}"
        return
    a, d = np.asarray(actual), np.asarray(desired)
    assert a.shape == d.shape, f"{where}: shape {a.shape} != {d.shape}{_describe(inputs)}"
    if check_dtype:
        assert a.dtype.kind == d.dtype.kind or {a.dtype.kind, d.dtype.kind} <= {"i", "u"}, (
            f"{where}: dtype {a.dtype} != {d.dtype}{_describe(inputs)}")
    if tol is None:
        tol = tolerance(name, dtype if dtype is not None else d.dtype)
    if d.dtype.kind not in "fc" or tol is EXACT or (tol.rtol == 0 and tol.atol == 0):
        same = (a == d) | (np.isnan(a) & np.isnan(d)) if d.dtype.kind in "fc" else (a == d)
        if not np.all(same):
            bad = np.argwhere(~np.asarray(same))[:5]
            raise AssertionError(
                f"{where}: not exactly equal at {bad.tolist()}: "
                f"{a[tuple(bad.T)] if a.ndim else a} vs {d[tuple(bad.T)] if d.ndim else d}"
                f"{_describe(inputs)}")
        return
    a64, d64 = a.astype(np.float64), d.astype(np.float64)
    nan_a, nan_d = np.isnan(a64), np.isnan(d64)
    assert np.array_equal(nan_a, nan_d), (
        f"{where}: NaN in different places: actual {np.argwhere(nan_a)[:5].tolist()} "
        f"desired {np.argwhere(nan_d)[:5].tolist()}{_describe(inputs)}")
    inf_same = np.array_equal(np.isinf(a64), np.isinf(d64)) and np.array_equal(
        a64[np.isinf(d64)], d64[np.isinf(d64)])
    assert inf_same, f"{where}: infinities differ{_describe(inputs)}"
    fin = np.isfinite(d64)
    err = np.abs(a64[fin] - d64[fin])
    bound = tol.atol + tol.rtol * np.abs(d64[fin])
    if err.size and np.any(err > bound):
        i = int(np.argmax(err - bound))
        raise AssertionError(
            f"{where}: max deviation {err.max():.3e} exceeds atol={tol.atol:g} rtol={tol.rtol:g}"
            f" ({tol.why}); worst: actual {a64[fin][i]!r} desired {d64[fin][i]!r}"
            f"{_describe(inputs)}")


def max_deviation(actual, desired) -> float:
    """Largest absolute difference over finite entries (0.0 for empty), for reports like audit."""
    actual, desired = to_numpy(actual), to_numpy(desired)
    if isinstance(desired, dict):
        return max((max_deviation(actual[k], desired[k]) for k in desired), default=0.0)
    if isinstance(desired, (list, tuple)):
        return max((max_deviation(a, d) for a, d in zip(actual, desired)), default=0.0)
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    if a.shape != d.shape:
        return float("inf")
    fin = np.isfinite(a) & np.isfinite(d)
    if not np.array_equal(np.isnan(a), np.isnan(d)):
        return float("inf")
    return float(np.abs(a[fin] - d[fin]).max()) if fin.any() else 0.0
