"""Subcommands of ``yolo-ref`` that need the port (torch): see :mod:`ref_numpy.cli`."""
