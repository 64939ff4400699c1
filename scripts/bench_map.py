#!/usr/bin/env python
"""Thin wrapper: `yolo-ref bench map` (see parity_tests/bench/map.py)."""
import sys

from parity_tests.bench.map import main

sys.exit(main(sys.argv[1:]))
