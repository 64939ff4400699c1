"""Subcommands of ``yolo-ref`` built on the parity suite (audit, check, bench): see :mod:`ref_numpy.cli`."""
