"""Training data pipeline of the PyTorch port: a ``Dataset`` over the three annotation formats,
YOLOv5-style augmentations in NumPy / Pillow, and the data-set YAML reader.

Torch side only (no ``ref_numpy`` twin): file I/O and image warping have no reference math to
mirror. Modules: :mod:`.transforms` (letterbox, flips, HSV, affine, mosaic), :mod:`.dataset`
(:class:`DetectionDataset`, :func:`collate_fn`), :mod:`.datayaml` (:func:`read_data_yaml`).
"""
from torch_impl.data.dataset import (
    HYP_DEFAULTS,
    DetectionDataset,
    collate_fn,
    label_path,
    load_image,
)
from torch_impl.data.datayaml import read_data_yaml
from torch_impl.data.transforms import (
    PAD_COLOR,
    augment_hsv,
    box_candidates,
    clip_boxes,
    hflip,
    letterbox,
    letterbox_boxes,
    mosaic4,
    random_affine,
    unletterbox_boxes,
    vflip,
)

__all__ = [
    "HYP_DEFAULTS",
    "PAD_COLOR",
    "DetectionDataset",
    "augment_hsv",
    "box_candidates",
    "clip_boxes",
    "collate_fn",
    "hflip",
    "label_path",
    "letterbox",
    "letterbox_boxes",
    "load_image",
    "mosaic4",
    "random_affine",
    "read_data_yaml",
    "unletterbox_boxes",
    "vflip",
]
