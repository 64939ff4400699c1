"""Reader of Ultralytics 8.3 / 8.4 data-set YAML files: :func:`read_data_yaml` is
:func:`ref_numpy.shared.datayaml.read_data_yaml` (plain Python, shared with the torch-free
``yolo-ref evaluate``), re-exported here for the data pipeline; see that module for the
contract and the error messages. :func:`split_images` lists a split's image files.
"""
from __future__ import annotations

from ref_numpy.shared.datayaml import read_data_yaml, split_images

__all__ = ["read_data_yaml", "split_images"]
