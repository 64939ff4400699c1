#!/usr/bin/env python
"""Thin wrapper: `yolo-ref predict` (see torch_impl/cli/predict.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["predict", *sys.argv[1:]]))
