"""Hypothesis profiles: ``dev`` (fast, local, default) and ``ci`` (deterministic, what `make test` uses).

Pick one with the environment variable ``HYPOTHESIS_PROFILE``.

``--device DEVICE`` (same as ``YOLO_REF_DEVICE=DEVICE``) runs the port on that device wherever a
test goes through :func:`parity_tests.sides.get_side` (see ``test_registry.py``). Tests marked
``@pytest.mark.cuda`` need a GPU and are skipped with the reason "no CUDA device" without one.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from parity_tests.sides import DEVICE_ENV, NO_CUDA, cuda_available

settings.register_profile(
    "dev",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

try:
    import torch
except ImportError:  # the reference's tests run without the torch extra
    torch = None
else:
    # Parity is about values, not thread scheduling: keep torch's CPU reductions deterministic.
    torch.use_deterministic_algorithms(False)
np.seterr(all="ignore")  # NaN/inf are asserted explicitly where they are part of a contract


def pytest_addoption(parser):
    parser.addoption("--device", default=None,
                     help=f"run the port on this torch device (sets ${DEVICE_ENV}; default cpu)")


def pytest_configure(config):
    config.addinivalue_line("markers", f"cuda: needs a CUDA device (skipped: '{NO_CUDA}')")
    device = config.getoption("--device")
    if device:  # before test modules are imported: their sides read the environment
        os.environ[DEVICE_ENV] = device


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
