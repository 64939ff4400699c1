#!/usr/bin/env python
"""Thin wrapper: `yolo-ref train` (see torch_impl/cli/train.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
