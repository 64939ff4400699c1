"""The shared layer: plain Python that both sides use, in one public, documented place.

Nothing here does array math (that is mirrored, NumPy in :mod:`ref_numpy`, torch in
:mod:`torch_impl`); what lives here is everything whose single definition *should* serve both
sides, so that it cannot drift:

- :mod:`ref_numpy.shared.checks`: argument checks on metadata (formats, thresholds, counts,
  sizes, reductions, version names), raising ``ValueError`` that names the argument.
- :mod:`ref_numpy.shared.constants`: conventions' constants (box formats, COCO defaults, ...).
- :mod:`ref_numpy.shared.draws`: autoanchor's random numbers (NumPy generator, scipy k-means
  initialisation), drawn once for both sides so that one seed gives one set of anchors.
- :mod:`ref_numpy.shared.coco`: COCO JSON parsing into flat tables and the 12-number summary.
- :mod:`ref_numpy.shared.report`: plain-text formatting of reports (assignment reports, ...).
- :mod:`ref_numpy.shared.cli`: the command line's conventions (exit codes, common options,
  optional dependencies).
- :mod:`ref_numpy.shared.sides`: "a side" (``Side``, ``REF``, ``get_side``): which
  implementation runs (module prefix, conversions in and out, device), for every command's
  ``--backend`` / ``--device`` and every parity test; torch imported only for a torch side.
- :mod:`ref_numpy.shared.shapes`: the synthetic shapes data set (``yolo-ref make-shapes``, the
  committed fixture), drawn with NumPy and Pillow from one seed.

``torch_impl`` imports from here, never a private (``_name``) of ``ref_numpy``; a meta-test
(``parity_tests/test_layers.py``) reads the imports and fails otherwise. A registry row whose
computation goes through this layer on both sides says so (``shared=...``) and has an external
oracle, since reference = port proves nothing there.
"""
