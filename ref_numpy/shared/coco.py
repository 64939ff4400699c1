"""COCO conventions shared by both sides: constants, JSON parsing, parameter checks, the summary.

Plain Python and NumPy bookkeeping with one definition for :mod:`ref_numpy.metrics` and
:mod:`torch_impl.metrics` (the matching and accumulation, which are the math, are mirrored in
each). Because both sides run this code, "reference == port" proves nothing about it: the rows
that go through it (``metrics.coco_evaluate``, ``metrics.COCOEvalResult``,
``metrics.DetectionEvaluator``) are checked against pycocotools itself.

Data contract of a parsed COCO pair (:func:`parse_coco`), as flat columns:

====================  ============  ===========================================================
key                   shape, dtype  meaning
====================  ============  ===========================================================
img_ids               [I] int64     sorted unique GT image ids (images without GT included)
cat_ids               [K] int64     sorted unique GT category ids
gt_img, gt_cat        [G] int64     position of each kept GT's image / category in the lists
gt_box                [G, 4] f64    xywh, pixels
gt_area               [G] f64       stored ``area`` (``w * h`` when absent)
gt_crowd              [G] bool      ``iscrowd``
dt_img, dt_cat        [D] int64     positions, as for GTs (results of an unknown category dropped)
dt_box                [D, 4] f64    xywh; dt_score [D] f64; dt_area [D] f64 = w * h
====================  ============  ===========================================================

GTs are ordered by image position, input order within an image (pycocotools' walk).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ref_numpy._validate import as_array

if TYPE_CHECKING:  # annotations only: the shared layer imports no torch
    import torch

__all__ = [
    "COCO_AREA_LBL", "COCO_AREA_RNG", "COCO_IOU_THRS", "COCO_MAX_DETS", "COCO_REC_THRS",
    "COCO_STATS", "MAX_IOU_THR", "COCOEvalResult", "check_coco_params", "format_summary",
    "index_of", "load_json", "mean_valid", "parse_coco", "per_class_ap", "summarize",
]

# ============================================================================ constants

COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)  # element 8 is 0.8999999999999999, as in pycocotools
COCO_REC_THRS = np.linspace(0.0, 1.00, 101)  # element 35 is 0.35000000000000003
COCO_MAX_DETS = (1, 10, 100)
COCO_AREA_RNG = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
COCO_AREA_LBL = ("all", "small", "medium", "large")
MAX_IOU_THR = 1 - 1e-10  # pycocotools' ``min([t, 1 - 1e-10])``

# The 12 COCO stats, in ``stats`` order: (key, is AP, IoU threshold or None for all, area label,
# index into max_dets).
COCO_STATS = (
    ("AP", True, None, "all", 2), ("AP50", True, 0.5, "all", 2), ("AP75", True, 0.75, "all", 2),
    ("APs", True, None, "small", 2), ("APm", True, None, "medium", 2),
    ("APl", True, None, "large", 2),
    ("AR1", False, None, "all", 0), ("AR10", False, None, "all", 1),
    ("AR100", False, None, "all", 2), ("ARs", False, None, "small", 2),
    ("ARm", False, None, "medium", 2), ("ARl", False, None, "large", 2),
)


# ============================================================================ inputs

def load_json(name: str, x: Any) -> Any:
    """``x`` read as JSON when it is a path (str / PathLike); anything else is returned as is.

    Raises:
        ValueError: naming ``name`` and the file, when it cannot be read or parsed.
    """
    if isinstance(x, (str, os.PathLike)):
        try:
            with open(x) as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{name}: cannot read COCO JSON {os.fspath(x)!r}: {exc}") from exc
    return x


def _column(name: str, items: list, key: str, dtype) -> np.ndarray:
    """``[item[key] for item in items]`` as a 1-d array (a C-level pass: ~500k items/0.05 s)."""
    try:
        return np.fromiter(map(itemgetter(key), items), dtype=dtype, count=len(items))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: every entry needs a numeric {key!r} ({exc!r})") from exc


def _xywh_column(name: str, items: list) -> np.ndarray:
    """[N, 4] float64 'bbox' fields, finite with non-negative width and height."""
    try:
        boxes = list(map(itemgetter("bbox"), items))
        if any(len(b) != 4 for b in boxes):
            raise ValueError("a bbox does not have 4 numbers")
        boxes = np.fromiter(chain.from_iterable(boxes), dtype=np.float64,
                            count=4 * len(boxes)).reshape(len(boxes), 4)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: every entry needs 'bbox' = [x, y, w, h] ({exc!r})") from exc
    if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2:] < 0):
        raise ValueError(f"{name}: 'bbox' must be finite with w, h >= 0")
    return boxes


def index_of(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of ``ids [N]`` in the sorted 1-d array ``sorted_ids``; -1 where absent."""
    pos = np.searchsorted(sorted_ids, ids).clip(0, max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[pos] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
    return np.where(found, pos, -1)


def parse_coco(gt: dict | str | os.PathLike, results: list[dict] | str | os.PathLike) -> dict[str, np.ndarray]:
    """COCO ground truth and results as flat NumPy columns (pycocotools' ``_prepare`` rules).

    Args:
        gt (dict | str | PathLike): COCO ground truth or the path of its JSON file.
        results (list[dict] | str | PathLike): COCO results or the path of a JSON list.

    Returns:
        dict: the columns of the table in the module docstring.

    Image and category lists are ``sorted(gt images ids)`` and ``sorted(gt categories ids)``
    (images without annotations included). GT annotations of an image or category outside those
    lists are dropped, as ``getAnnIds(imgIds, catIds)`` does; so are results of a category outside
    the list. A result on an image outside the GT raises (pycocotools asserts). GT fields:
    ``bbox``, ``area`` (w*h when absent; pycocotools would crash), ``iscrowd`` (0 when absent).
    Results: ``image_id``, ``category_id``, ``bbox``, ``score``; their area is ``w * h``.
    Annotation ids are not used: matching uses positions, so an annotation id of 0 is handled
    correctly (pycocotools counts a detection matched to GT id 0 as a false positive).

    Raises:
        ValueError: malformed input (naming ``gt`` / ``results`` and the field), non-finite or
            negative-size boxes, non-finite scores, a result on an image not in the GT.
    """
    gt = load_json("gt", gt)
    results = load_json("results", results)
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise ValueError("gt: expected a COCO dict with 'images' and 'categories' (and 'annotations')")
    if not isinstance(results, (list, tuple)):
        raise ValueError(f"results: expected a list of COCO result dicts, got {type(results).__name__}")
    try:
        img_ids = np.unique(np.array([im["id"] for im in gt["images"]], dtype=np.int64))
        cat_ids = np.unique(np.array([c["id"] for c in gt["categories"]], dtype=np.int64))
        anns = list(gt.get("annotations", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"gt: malformed images/categories/annotations ({exc!r})") from exc
    g_img = _column("gt annotations", anns, "image_id", np.int64)
    g_cat = _column("gt annotations", anns, "category_id", np.int64)
    g_box = _xywh_column("gt annotations", anns)
    g_area = np.array([a["area"] if "area" in a else a["bbox"][2] * a["bbox"][3] for a in anns],
                      dtype=np.float64).reshape(len(anns))
    g_crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    g_i, g_k = index_of(g_img, img_ids), index_of(g_cat, cat_ids)
    keep = (g_i >= 0) & (g_k >= 0)
    # pycocotools walks sorted image ids, then annotations in input order: stable by image.
    order = np.flatnonzero(keep)[np.argsort(g_i[keep], kind="stable")]

    d_img = _column("results", results, "image_id", np.int64)
    d_cat = _column("results", results, "category_id", np.int64)
    d_box = _xywh_column("results", results)
    d_score = _column("results", results, "score", np.float64)
    if not np.all(np.isfinite(d_score)):
        raise ValueError("results: 'score' must be finite")
    d_i, d_k = index_of(d_img, img_ids), index_of(d_cat, cat_ids)
    if np.any(d_i < 0):
        raise ValueError(f"results: image_id {int(d_img[d_i < 0][0])} is not in the ground truth")
    dkeep = d_k >= 0
    return dict(
        img_ids=img_ids, cat_ids=cat_ids,
        gt_img=g_i[order], gt_cat=g_k[order], gt_box=g_box[order], gt_area=g_area[order],
        gt_crowd=g_crowd[order],
        dt_img=d_i[dkeep], dt_cat=d_k[dkeep], dt_box=d_box[dkeep], dt_score=d_score[dkeep],
        dt_area=d_box[dkeep, 2] * d_box[dkeep, 3],
    )


def check_coco_params(iou_thrs: ArrayLike | None = None, area_rng: ArrayLike | None = None,
                      max_dets: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Defaults and checks of the evaluation parameters (pycocotools ``Params``).

    Returns:
        tuple: (iou_thrs ndarray[T] float64, area_rng ndarray[4, 2] float64, max_dets tuple of 3
        ints), the COCO defaults for ``None``.

    Raises:
        ValueError: naming the parameter (non-finite or empty thresholds, not 4 area ranges,
            not 3 positive max_dets).
    """
    iou_thrs = COCO_IOU_THRS if iou_thrs is None else as_array("iou_thrs", iou_thrs, ndim=1,
                                                                finite=True, floating=True)
    area_rng = np.array(COCO_AREA_RNG if area_rng is None else area_rng, dtype=np.float64)
    if area_rng.shape != (4, 2):
        raise ValueError(f"area_rng: expected 4 [lo, hi] ranges (all, small, medium, large), "
                         f"got shape {area_rng.shape}")
    max_dets = tuple(int(m) for m in (COCO_MAX_DETS if max_dets is None else max_dets))
    if len(max_dets) != 3 or min(max_dets) < 1:
        raise ValueError(f"max_dets: expected 3 positive counts, got {max_dets}")
    if len(iou_thrs) == 0:
        raise ValueError("iou_thrs: expected at least one threshold")
    return np.asarray(iou_thrs, dtype=np.float64), area_rng, max_dets


# ============================================================================ summary

def mean_valid(s: np.ndarray) -> float:
    """Mean of the entries > -1 of ``s`` (NumPy's pairwise sum, as pycocotools), -1.0 if none."""
    v = s[s > -1]
    return -1.0 if v.size == 0 else float(np.mean(v))


def summarize(precision: np.ndarray, recall: np.ndarray, iou_thrs: np.ndarray,
              max_dets: Sequence[int]) -> np.ndarray:
    """pycocotools ``summarize``: the 12 standard stats (see :class:`COCOEvalResult`).

    Args:
        precision (ndarray[T, R, K, A, M]), recall (ndarray[T, K, A, M]): NumPy, float64.
        iou_thrs (ndarray[T]), max_dets (3 ints): the parameters they were computed with.

    Returns:
        ndarray[12] float64, in :data:`COCO_STATS` order; -1 where a slice has no valid entry.
    """

    def ap(iou=None, area=0, mdet=max_dets[2]):
        s = precision
        if iou is not None:
            s = s[np.flatnonzero(iou == iou_thrs)]
        return mean_valid(s[:, :, :, [area], :][..., [i for i, m in enumerate(max_dets) if m == mdet]])

    def ar(iou=None, area=0, mdet=max_dets[2]):
        s = recall
        if iou is not None:
            s = s[np.flatnonzero(iou == iou_thrs)]
        return mean_valid(s[:, :, [area], :][..., [i for i, m in enumerate(max_dets) if m == mdet]])

    return np.array([
        ap(mdet=100), ap(iou=0.5), ap(iou=0.75), ap(area=1), ap(area=2), ap(area=3),
        ar(mdet=max_dets[0]), ar(mdet=max_dets[1]), ar(mdet=max_dets[2]),
        ar(area=1), ar(area=2), ar(area=3),
    ], dtype=np.float64)


def per_class_ap(precision: np.ndarray, cat_ids: Sequence[int], max_dets: Sequence[int]) -> dict[int, float]:
    """AP@[.5:.95], area all, maxDets 100 per category id (``{id: AP}``, NumPy ``precision``);
    -1.0 for a category without non-ignored GT."""
    m = [i for i, v in enumerate(max_dets) if v == 100]
    out = {}
    for k, cid in enumerate(cat_ids):
        out[int(cid)] = mean_valid(precision[:, :, k, 0, m])
    return out


class COCOEvalResult:
    """What ``coco_evaluate`` returns on either side (pycocotools' ``eval`` dict and ``stats``).

    Both sides return this one class: the reference with NumPy arrays, the port with float64
    tensors on the evaluation device (``stats``, ``precision``, ``recall``, ``scores``).

    Attributes:
        stats (ndarray[12] float64): AP@[.5:.95], AP@.5, AP@.75, AP small, medium, large
            (maxDets 100), AR@1, AR@10, AR@100, AR small, medium, large (maxDets 100), each the
            mean of the entries > -1 of its slice, -1 if there are none.
        precision (ndarray[T, R, K, A, M] float64): -1 for a category without non-ignored GT.
        recall (ndarray[T, K, A, M] float64), scores (ndarray[T, R, K, A, M] float64).
        per_class (dict[int, float]): category id -> AP@[.5:.95], area all, maxDets 100;
            -1.0 for a category with no non-ignored GT (as pycocotools' -1 convention).
        iou_thrs, rec_thrs, area_rng, max_dets, cat_ids, img_ids: the parameters used.
    """

    def __init__(self, stats: np.ndarray | torch.Tensor, precision: np.ndarray | torch.Tensor,
                 recall: np.ndarray | torch.Tensor, scores: np.ndarray | torch.Tensor,
                 per_class: dict[int, float], iou_thrs: np.ndarray, rec_thrs: np.ndarray,
                 area_rng: np.ndarray, max_dets: tuple[int, ...], cat_ids: np.ndarray,
                 img_ids: np.ndarray) -> None:
        self.stats = stats
        self.precision = precision
        self.recall = recall
        self.scores = scores
        self.per_class = per_class
        self.iou_thrs = iou_thrs
        self.rec_thrs = rec_thrs
        self.area_rng = area_rng
        self.max_dets = max_dets
        self.cat_ids = cat_ids
        self.img_ids = img_ids

    def __repr__(self) -> str:
        return f"COCOEvalResult(stats={[round(float(v), 4) for v in self.stats]})"


def format_summary(stats: ArrayLike, iou_thrs: ArrayLike, max_dets: Sequence[int]) -> list[str]:
    """pycocotools' ``summarize`` printout, line for line (12 lines; ``stats`` in
    :data:`COCO_STATS` order, NumPy or floats)."""
    lines = []
    for (_, is_ap, iou, area, mi), v in zip(COCO_STATS, stats):
        title = "Average Precision" if is_ap else "Average Recall"
        kind = "(AP)" if is_ap else "(AR)"
        iou_s = f"{iou_thrs[0]:0.2f}:{iou_thrs[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
        lines.append(f" {title:<18} {kind} @[ IoU={iou_s:<9} | area={area:>6s} | "
                     f"maxDets={max_dets[mi]:>3d} ] = {float(v):0.3f}")
    return lines
