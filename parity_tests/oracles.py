"""External oracles, wrapped once for every test, registry row and benchmark.

Importing this module needs pycocotools (the ``test`` extra); an ``ImportError`` here is how
the registry sees the oracle as missing (SKIP with the install hint).

- :func:`pycocotools_box_iou`: ``maskUtils.iou`` on xywh boxes with crowd flags.
- :func:`pycocotools_evaluate`: pycocotools' (or faster-coco-eval's) ``COCOeval`` bbox
  evaluate + accumulate + summarize on in-memory dicts or JSON paths, its prints captured.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO as _COCO  # noqa: N811 - imported here so a missing oracle shows
from pycocotools import mask as _mask_utils
from pycocotools.cocoeval import COCOeval as _COCOeval

__all__ = ["CocoOracleResult", "pycocotools_box_iou", "pycocotools_evaluate"]


@dataclass
class CocoOracleResult:
    """What :func:`pycocotools_evaluate` returns.

    Attributes:
        stats (ndarray[12] float64): ``COCOeval.stats``.
        precision (ndarray[T, R, K, A, M]), recall (ndarray[T, K, A, M]),
            scores (ndarray[T, R, K, A, M]): ``COCOeval.eval[...]``.
        summary_lines (list[str]): the 12 " Average ..." lines ``summarize`` printed.
        seconds (float): wall time of evaluate + accumulate + summarize (loading excluded).
        evaluator: the ``COCOeval`` object itself.
    """

    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    summary_lines: list
    seconds: float
    evaluator: Any


def _load(x):
    if isinstance(x, (str, os.PathLike)):
        with open(x, encoding="utf-8") as f:
            return json.load(f)
    return copy.deepcopy(x)


def pycocotools_evaluate(gt, results, iou_thrs=None, max_dets=None, area_rng=None,
                         module: str = "pycocotools", *, rec_thrs=None, area_rng_lbl=None,
                         use_cats=None, img_ids=None, cat_ids=None) -> CocoOracleResult:
    """pycocotools' ``COCOeval(gt, dt, 'bbox')`` evaluate + accumulate + summarize, silenced.

    Args:
        gt (dict | str | PathLike): COCO ground truth or its JSON path (never modified).
        results (list[dict] | str | PathLike): COCO results or a JSON path. An empty list (which
            ``loadRes`` crashes on) is given as a results set with no annotations.
        iou_thrs, max_dets, area_rng, rec_thrs, area_rng_lbl, use_cats, img_ids, cat_ids: set
            on ``params`` when given (``iouThrs``, ``maxDets``, ``areaRng``, ``recThrs``,
            ``areaRngLbl``, ``useCats``, ``imgIds``, ``catIds``), as a user would set them.
            ``summarize`` raises IndexError for fewer than 3 ``maxDets`` (and for an area
            label it cannot find while a maxDets value repeats): then ``stats`` is None.
        module (str): "pycocotools" or "faster_coco_eval" (its ``COCOeval_faster``).

    Returns:
        CocoOracleResult.
    """
    if module == "pycocotools":
        COCO, COCOeval = _COCO, _COCOeval  # noqa: N806
    elif module == "faster_coco_eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        raise ValueError(f"module: expected 'pycocotools' or 'faster_coco_eval', got {module!r}")
    gt, results = _load(gt), _load(results)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "categories": list(gt["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        if iou_thrs is not None:
            ev.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        if area_rng is not None:
            ev.params.areaRng = [list(r) for r in area_rng]
        if rec_thrs is not None:
            ev.params.recThrs = np.asarray(rec_thrs, dtype=np.float64)
        if area_rng_lbl is not None:
            ev.params.areaRngLbl = list(area_rng_lbl)
        if use_cats is not None:
            ev.params.useCats = int(use_cats)
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        if cat_ids is not None:
            ev.params.catIds = list(cat_ids)
        t0 = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        try:
            ev.summarize()
        except IndexError:  # fewer than 3 maxDets, or a missing area label with repeated maxDets
            ev.stats = None
        seconds = time.perf_counter() - t0
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(" Average ")]
    return CocoOracleResult(stats=None if ev.stats is None else np.asarray(ev.stats, dtype=np.float64),
                            precision=np.asarray(ev.eval["precision"]),
                            recall=np.asarray(ev.eval["recall"]),
                            scores=np.asarray(ev.eval["scores"]), summary_lines=lines,
                            seconds=seconds, evaluator=ev)


def pycocotools_box_iou(dt, gt, iscrowd=None):
    """pycocotools ``maskUtils.iou(dt, gt, iscrowd)`` on xywh boxes ``[D, 4]``, ``[G, 4]`` (the
    ``bbIou`` that ``COCOeval.computeIoU`` calls), as a float64 tensor ``[D, G]``. Takes and
    returns what the port takes (tensors); pycocotools computes in double."""
    import torch

    d = np.ascontiguousarray(dt.detach().cpu().numpy(), dtype=np.float64)
    g = np.ascontiguousarray(gt.detach().cpu().numpy(), dtype=np.float64)
    crowd = (np.zeros(len(g), np.uint8) if iscrowd is None
             else np.asarray(iscrowd.detach().cpu().numpy(), dtype=np.uint8))
    if len(d) == 0 or len(g) == 0:
        return torch.zeros((len(d), len(g)), dtype=torch.float64)
    return torch.from_numpy(np.asarray(_mask_utils.iou(d, g, list(crowd)), dtype=np.float64))
