"""The generic differential harness: for every registry row with an input strategy,
reference == port at each dtype, and port == oracle where the row names one.

A ``ValueError`` from the reference must be matched by a ``ValueError`` from the port.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity_tests.registry import ALL_CASES, to_port, to_ref
from parity_tests.tolerances import assert_parity, tolerance

RUNNABLE = [(c, d) for c in ALL_CASES if c.inputs is not None for d in c.dtypes]
WITH_ORACLE = [(c, d) for c, d in RUNNABLE if c.oracle is not None]


def _ids(pairs):
    return [f"{c.name}-{d}" for c, d in pairs]


def _run(fn, call, convert, dtype):
    try:
        return fn(*convert(call.args, dtype), **convert(call.kwargs, dtype)), None
    except ValueError as exc:
        return None, exc


@pytest.mark.parametrize("case,dtype", RUNNABLE, ids=_ids(RUNNABLE))
@given(data=st.data())
def test_reference_equals_port(case, dtype, data):
    call = data.draw(case.inputs(), label="call")
    ref_out, ref_err = _run(case.ref, call, to_ref, dtype)
    port_out, port_err = _run(case.port, call, to_port, dtype)
    assert (ref_err is None) == (port_err is None), (
        f"{case.name}: reference raised {ref_err!r}, port raised {port_err!r} for {call!r}")
    if ref_err is None:
        assert_parity(port_out, ref_out, name=case.name, dtype=dtype, tol=case.tol, inputs=call)


@pytest.mark.parametrize("case,dtype", WITH_ORACLE, ids=_ids(WITH_ORACLE))
@given(data=st.data())
def test_port_equals_oracle(case, dtype, data):
    call = data.draw(case.inputs(), label="call")
    # Row strategies draw valid inputs only (bad input has its own tests), so no error is expected.
    port_out = case.port(*to_port(call.args, dtype), **to_port(call.kwargs, dtype))
    oracle_out = case.oracle(*to_port(call.args, dtype), **to_port(call.kwargs, dtype))
    tol = case.oracle_tol or case.tol or tolerance(case.name, dtype)
    assert_parity(port_out, oracle_out, name=case.name, dtype=dtype, tol=tol, inputs=call)
