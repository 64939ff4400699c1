#!/usr/bin/env python
"""Thin wrapper: `yolo-ref focal-collapse` (see ref_numpy/cli/focal_collapse.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["focal-collapse", *sys.argv[1:]]))
