"""Parity tests binding ``ref_numpy`` (the specification) to ``torch_impl`` and the oracles.

Run with ``pytest parity_tests``; ``HYPOTHESIS_PROFILE=ci`` selects the deterministic CI profile.
"""
