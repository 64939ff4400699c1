#!/usr/bin/env python
"""Thin wrapper: `yolo-ref bench loss` (see parity_tests/bench/loss.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["bench", "loss", *sys.argv[1:]]))
