#!/usr/bin/env python
"""Thin wrapper: `yolo-ref bench nms` (see parity_tests/bench/nms.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["bench", "nms", *sys.argv[1:]]))
