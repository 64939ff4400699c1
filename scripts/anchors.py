#!/usr/bin/env python
"""Thin wrapper: `yolo-ref anchors` (see ref_numpy/cli/anchors.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["anchors", *sys.argv[1:]]))
