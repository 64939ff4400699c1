"""Registry rows for ``formats``: file I/O, so every row is covered by a dedicated test in
``test_formats.py``. The torch side re-exports the very same functions
(``test_port_reexports_reference``), so reference/port parity is identity; the tests check
the round trips, the oracle (pycocotools loading GT and results) and the error messages."""
from parity_tests.registry import ParityCase

_T = "test_formats.py::"
_NOTE = "file I/O, no tensor math: torch_impl.formats re-exports this very function"

CASES = [
    ParityCase("formats.DetectionSet", covered_by=_T + "test_check_dataset_and_to_arrays",
               note=_NOTE),
    ParityCase("formats.check_dataset", covered_by=_T + "test_check_dataset_and_to_arrays",
               note=_NOTE),
    ParityCase("formats.to_arrays", covered_by=_T + "test_check_dataset_and_to_arrays",
               note=_NOTE),
    ParityCase("formats.read_coco", covered_by=_T + "test_coco_round_trip",
               note=_NOTE + "; oracle: pycocotools COCO loads the same annotations "
                            "(test_fixture_loads_in_pycocotools)"),
    ParityCase("formats.write_coco", covered_by=_T + "test_coco_round_trip", note=_NOTE),
    ParityCase("formats.read_coco_results", covered_by=_T + "test_coco_results_match_pycocotools",
               note=_NOTE + "; oracle: pycocotools loadRes (ids, area, iscrowd)"),
    ParityCase("formats.write_coco_results",
               covered_by=_T + "test_coco_results_match_pycocotools", note=_NOTE),
    ParityCase("formats.read_yolo", covered_by=_T + "test_yolo_round_trip",
               note=_NOTE + "; 6 decimals: tolerance entry formats.read_yolo"),
    ParityCase("formats.write_yolo", covered_by=_T + "test_yolo_round_trip", note=_NOTE),
    ParityCase("formats.read_voc", covered_by=_T + "test_voc_round_trip", note=_NOTE),
    ParityCase("formats.write_voc", covered_by=_T + "test_voc_round_trip", note=_NOTE),
    ParityCase("formats.load_any", covered_by=_T + "test_load_any_detects_format", note=_NOTE),
]
