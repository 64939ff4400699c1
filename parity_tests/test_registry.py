"""The generic differential harness: for every registry row with an input strategy,
reference == port at each dtype, and port == oracle where the row names one.

A ``ValueError`` from the reference must be matched by a ``ValueError`` from the port.

The port side comes from :func:`parity_tests.sides.get_side`, so the same rows run against
another device or another implementation without editing a test. The whole registry on CUDA,
in one command::

    YOLO_REF_DEVICE=cuda pytest parity_tests/test_registry.py
    pytest parity_tests/test_registry.py --device cuda        # the same

The port then runs on the GPU (inputs cast on the CPU, moved to the device, outputs brought
back), against the reference on the CPU, with the row's tolerance widened for the device by
``device.accelerator`` (FMA contraction, CUDA libm; integer outputs stay exact). Without a GPU
every test here is skipped with the reason "no CUDA device", not faked. Pointing the port at
another package: ``YOLO_REF_PORT=mypkg pytest parity_tests/test_registry.py``.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity_tests.registry import ALL_CASES
from parity_tests.sides import REF, get_side
from parity_tests.tolerances import assert_parity, lookup, on_device

PORT = get_side("torch")
_unavailable = PORT.available()
pytestmark = pytest.mark.skipif(_unavailable is not None, reason=_unavailable or "")

RUNNABLE = [(c, d) for c in ALL_CASES if c.inputs is not None for d in c.dtypes]
WITH_ORACLE = [(c, d) for c, d in RUNNABLE if c.oracle is not None]


def _ids(pairs):
    return [f"{c.name}-{d}" for c, d in pairs]


def _run(side, fn, call, dtype):
    try:
        return side.run(fn, call.args, call.kwargs, dtype), None
    except ValueError as exc:
        return None, exc


def _tol(case, tol, dtype):
    return on_device(tol or lookup(case.name, dtype), dtype, PORT.device)


@pytest.mark.parametrize("case,dtype", RUNNABLE, ids=_ids(RUNNABLE))
@given(data=st.data())
def test_reference_equals_port(case, dtype, data):
    call = data.draw(case.inputs(), label="call")
    ref_out, ref_err = _run(REF, case.name, call, dtype)
    port_out, port_err = _run(PORT, case.name, call, dtype)
    assert (ref_err is None) == (port_err is None), (
        f"{case.name}: reference raised {ref_err!r}, port raised {port_err!r} for {call!r}")
    if ref_err is None:
        assert_parity(port_out, ref_out, name=case.name, dtype=dtype,
                      tol=_tol(case, case.tol, dtype), inputs=call)


@pytest.mark.parametrize("case,dtype", WITH_ORACLE, ids=_ids(WITH_ORACLE))
@given(data=st.data())
def test_port_equals_oracle(case, dtype, data):
    missing = case.oracle_missing()
    if missing:
        pytest.skip(missing)
    call = data.draw(case.inputs(), label="call")
    # Row strategies draw valid inputs only (bad input has its own tests), so no error is expected.
    port_out = PORT.run(case.name, call.args, call.kwargs, dtype)
    oracle_out = PORT.run(case.oracle_fn(), call.args, call.kwargs, dtype)
    tol = _tol(case, case.oracle_tol or case.tol, dtype)
    assert_parity(port_out, oracle_out, name=case.name, dtype=dtype, tol=tol, inputs=call)
