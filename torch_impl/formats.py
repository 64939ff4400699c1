"""Detection data-set formats for the torch side: the very same functions as
:mod:`ref_numpy.formats`, re-exported.

File I/O has no tensor math, so there is nothing to port: one implementation serves both sides
and the twins are identical objects (``parity_tests/test_formats.py`` checks it). Boxes come out
as NumPy (:func:`to_arrays`); convert with ``torch.from_numpy`` where tensors are wanted.
"""
from ref_numpy.formats import (  # noqa: F401 - re-exports are the point of this module
    CLASSES_FILE,
    IMAGE_SUFFIXES,
    DetectionSet,
    check_dataset,
    load_any,
    read_coco,
    read_coco_results,
    read_voc,
    read_yolo,
    to_arrays,
    write_coco,
    write_coco_results,
    write_voc,
    write_yolo,
)

__all__ = [
    "CLASSES_FILE",
    "IMAGE_SUFFIXES",
    "DetectionSet",
    "check_dataset",
    "load_any",
    "read_coco",
    "read_coco_results",
    "read_voc",
    "read_yolo",
    "to_arrays",
    "write_coco",
    "write_coco_results",
    "write_voc",
    "write_yolo",
]
