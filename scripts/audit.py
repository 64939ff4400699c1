#!/usr/bin/env python
"""Thin wrapper: `yolo-ref audit` (see parity_tests/cli/audit.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["audit", *sys.argv[1:]]))
