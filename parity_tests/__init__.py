"""Parity tests binding ``ref_numpy`` (the specification) to ``torch_impl`` and the oracles.

Run with ``pytest parity_tests``; ``HYPOTHESIS_PROFILE=ci`` selects the deterministic CI profile.

- :mod:`parity_tests.registry`: one row per public reference function (rows in ``cases/``);
- :mod:`parity_tests.sides`: which implementation a test calls (``REF``, ``get_side("torch")``),
  on which device; ``YOLO_REF_PORT=pkg`` points the port at another package, and
  ``YOLO_REF_DEVICE=cuda pytest parity_tests/test_registry.py`` runs the whole registry on CUDA
  (skipped, "no CUDA device", without a GPU);
- :mod:`parity_tests.tolerances`: the one tolerance table (per-function and derived-property
  keys; an unknown key raises) and ``assert_parity`` (exact dtypes);
- :mod:`parity_tests.cli.audit`: ``yolo-ref audit``.
"""
