#!/usr/bin/env python
"""Thin wrapper: `yolo-ref make-shapes` (see ref_numpy/cli/make_shapes.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["make-shapes", *sys.argv[1:]]))
