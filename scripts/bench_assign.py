#!/usr/bin/env python
"""Thin wrapper: `yolo-ref bench assign` (see parity_tests/bench/assign.py)."""
import sys

from parity_tests.bench.assign import main

sys.exit(main(sys.argv[1:]))
