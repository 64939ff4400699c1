"""Hypothesis profiles: ``dev`` (fast, local, default) and ``ci`` (deterministic, what `make test` uses).

Pick one with the environment variable ``HYPOTHESIS_PROFILE``.
"""
import os

import numpy as np
import torch
from hypothesis import HealthCheck, settings

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

# Parity is about values, not thread scheduling: keep torch's CPU reductions deterministic.
torch.use_deterministic_algorithms(False)
np.seterr(all="ignore")  # NaN/inf are asserted explicitly where they are part of a contract
