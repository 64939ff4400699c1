#!/usr/bin/env python
"""Thin wrapper: `yolo-ref import-yolov5` (see torch_impl/cli/import_yolov5.py)."""
import sys

from ref_numpy.cli import main

sys.exit(main(["import-yolov5", *sys.argv[1:]]))
