#!/usr/bin/env python
"""Thin wrapper: `yolo-ref show-assignments` (see torch_impl/cli/show_assignments.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["show-assignments", *sys.argv[1:]]))
