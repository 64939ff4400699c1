#!/usr/bin/env python
"""Thin wrapper: `yolo-ref evaluate` (see ref_numpy/cli/evaluate.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["evaluate", *sys.argv[1:]]))
