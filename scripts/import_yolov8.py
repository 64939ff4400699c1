#!/usr/bin/env python
"""Thin wrapper: `yolo-ref import-yolov8` (see torch_impl/cli/import_yolov8.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["import-yolov8", *sys.argv[1:]]))
