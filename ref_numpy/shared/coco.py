"""COCO conventions shared by both sides: constants, parameters, JSON parsing, the summary.

Plain Python and NumPy bookkeeping with one definition for :mod:`ref_numpy.metrics` and
:mod:`torch_impl.metrics` (the matching and accumulation, which are the math, are mirrored in
each). Because both sides run this code, "reference == port" proves nothing about it: the rows
that go through it (``metrics.coco_evaluate``, ``metrics.COCOEvalResult``,
``metrics.DetectionEvaluator``) are checked against pycocotools itself.

Parameters (:func:`coco_params`, pycocotools ``Params`` under snake_case names): ``iou_thrs``,
``rec_thrs``, ``area_rng`` with ``area_rng_lbl``, ``max_dets`` (sorted, as ``evaluate()`` does),
``use_cats``, ``img_ids``, ``cat_ids``; every one validated with an error naming it.

Data contract of a parsed COCO pair (:func:`parse_coco`), as flat columns:

====================  ============  ===========================================================
key                   shape, dtype  meaning
====================  ============  ===========================================================
img_ids               [I]           evaluated image ids, sorted unique (int64, or str when the
                                    data set uses string ids); images without GT included
cat_ids               [K]           evaluated category ids, sorted unique; ``[-1]`` when
                                    ``use_cats=False`` (all categories pooled, as pycocotools)
gt_img, gt_cat        [G] int64     position of each kept GT's image / category in the lists
gt_box                [G, 4] f64    xywh, pixels
gt_area               [G] f64       stored ``area`` (``w * h`` when absent)
gt_crowd              [G] bool      ``iscrowd``
dt_img, dt_cat        [D] int64     positions, as for GTs (results of a category outside the
                                    evaluated ones, or on an image outside them, dropped)
dt_box                [D, 4] f64    xywh; dt_score [D] f64; dt_area [D] f64 = w * h
====================  ============  ===========================================================

GTs are ordered by image position, then (``use_cats=False`` only) by the position of their
category in ``cat_ids``, then input order: pycocotools' walk. With ``use_cats=False`` the
detections are likewise ordered by category position, then input order, which is how
pycocotools lists an image's detections before its stable score sort.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # annotations only: the shared layer imports no torch
    import torch

__all__ = [
    "COCO_AREA_LBL", "COCO_AREA_RNG", "COCO_IOU_THRS", "COCO_MAX_DETS", "COCO_REC_THRS",
    "COCO_STATS", "COCO_STAT_NAMES", "MAX_IOU_THR", "COCOEvalResult", "COCOParams",
    "check_coco_params", "coco_params", "format_summary", "index_of", "load_json", "mean_valid",
    "parse_coco", "per_class_ap", "summarize",
]

# ============================================================================ constants

COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)  # element 8 is 0.8999999999999999, as in pycocotools
COCO_REC_THRS = np.linspace(0.0, 1.00, 101)  # element 35 is 0.35000000000000003
COCO_MAX_DETS = (1, 10, 100)
COCO_AREA_RNG = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
COCO_AREA_LBL = ("all", "small", "medium", "large")
MAX_IOU_THR = 1 - 1e-10  # pycocotools' ``min([t, 1 - 1e-10])``
_INT64 = (-(2 ** 63), 2 ** 63 - 1)

# The 12 COCO stats, in ``stats`` order: (key, is AP, IoU threshold or None for all, area label,
# max_dets position). pycocotools' ``summarize`` hard-codes these positions: stat 0 looks up
# maxDets == 100 by value (position None here), the others use the sorted ``max_dets[pos]``.
COCO_STATS = (
    ("AP", True, None, "all", None), ("AP50", True, 0.5, "all", 2), ("AP75", True, 0.75, "all", 2),
    ("APs", True, None, "small", 2), ("APm", True, None, "medium", 2),
    ("APl", True, None, "large", 2),
    ("AR1", False, None, "all", 0), ("AR10", False, None, "all", 1),
    ("AR100", False, None, "all", 2), ("ARs", False, None, "small", 2),
    ("ARm", False, None, "medium", 2), ("ARl", False, None, "large", 2),
)
# Named stats of a result: the 12 above, then faster-coco-eval's AR_50 / AR_75 (recall at IoU
# exactly 0.5 / 0.75, area "all", the largest max_dets).
COCO_STAT_NAMES = tuple(key for key, *_ in COCO_STATS) + ("AR50", "AR75")


# ============================================================================ parameters

def _is_number_type(t: type) -> bool:
    """int / float / NumPy integer or floating; never bool (True is not a count or a size)."""
    return t is not bool and issubclass(t, (int, float, np.integer, np.floating))


def _float_vector(name: str, x: Any, lo: float, hi: float) -> np.ndarray:
    """A non-empty 1-d float64 vector of numbers within [lo, hi]."""
    if isinstance(x, (str, bytes)) or np.ndim(x) != 1:
        raise ValueError(f"{name}: expected a 1-d list of numbers, got {x!r}")
    bad = [v for v in x if not _is_number_type(type(v))]
    if bad:
        raise ValueError(f"{name}: expected numbers, got {bad[0]!r}")
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one threshold")
    out = a[~((a >= lo) & (a <= hi))]  # NaN fails both
    if out.size:
        raise ValueError(f"{name}: expected values within [{lo}, {hi}], got {float(out[0])!r}")
    return a


def _id_list(name: str, ids: Any) -> list:
    """A list of integer or string ids (integral floats taken as ints, like the file readers)."""
    if isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__"):
        raise ValueError(f"{name}: expected a list of ids, got {ids!r}")
    out = []
    for v in ids:
        out.append(_exact_id(v, lambda msg: ValueError(f"{name}: {msg}")))
    return out


@dataclass(frozen=True)
class COCOParams:
    """pycocotools ``Params`` (bbox), checked; built by :func:`coco_params`.

    Attributes:
        iou_thrs (ndarray[T] float64): in the order given (pycocotools does not sort them).
        rec_thrs (ndarray[R] float64): in the order given.
        area_rng (ndarray[A, 2] float64), area_rng_lbl (tuple of A str).
        max_dets (tuple of M int): sorted ascending, as ``COCOeval.evaluate`` sorts them.
        use_cats (bool): False pools every category into one (pycocotools ``useCats=0``).
        img_ids (list | None), cat_ids (list | None): subsets; None = all of the ground truth.
    """

    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    area_rng: np.ndarray
    area_rng_lbl: tuple
    max_dets: tuple
    use_cats: bool = True
    img_ids: list | None = None
    cat_ids: list | None = None


def coco_params(iou_thrs: ArrayLike | None = None, area_rng: ArrayLike | None = None,
                max_dets: Sequence[int] | None = None, rec_thrs: ArrayLike | None = None,
                area_rng_lbl: Sequence[str] | None = None, use_cats: bool = True,
                img_ids: Sequence | None = None, cat_ids: Sequence | None = None) -> COCOParams:
    """pycocotools' ``Params`` from keyword values, defaults for ``None``, every value checked.

    Args:
        iou_thrs (ndarray[T] | None): IoU thresholds within [0, 1]; default ``linspace(.5, .95, 10)``.
        area_rng (A x [lo, hi] | None): closed ranges on the stored ``area``, ``lo <= hi``
            (``inf`` allowed); default pycocotools' all / small / medium / large.
        max_dets (sequence of int | None): any number (>= 1) of integer counts >= 1, in any
            order; sorted here as ``evaluate()`` does; default (1, 10, 100).
        rec_thrs (ndarray[R] | None): recall thresholds within [0, 1]; default
            ``linspace(0, 1, 101)``.
        area_rng_lbl (sequence of A distinct str | None): labels of ``area_rng``; default
            ("all", "small", "medium", "large"), which needs exactly 4 ranges.
        use_cats (bool): pycocotools ``useCats``.
        img_ids, cat_ids (sequence of ids | None): evaluate only these images / categories.
            Integers or strings; checked against the ground truth by :func:`parse_coco`.

    Returns:
        COCOParams.

    Raises:
        ValueError: naming the argument: thresholds outside [0, 1], NaN, empty; a count that is
            not an integer >= 1 (bool and 2.5 included: pycocotools slices with it); a range
            with ``lo > hi`` or NaN; a label count other than the range count, duplicate labels;
            ``use_cats`` not a bool; duplicate ``cat_ids`` with ``use_cats=False`` (pycocotools
            would count their annotations twice).
    """
    iou = COCO_IOU_THRS.copy() if iou_thrs is None else _float_vector("iou_thrs", iou_thrs, 0.0, 1.0)
    rec = COCO_REC_THRS.copy() if rec_thrs is None else _float_vector("rec_thrs", rec_thrs, 0.0, 1.0)
    rng = _area_ranges(area_rng)
    lbl = _area_labels(area_rng_lbl, len(rng), area_rng is None)
    mdets = _max_dets(max_dets)
    if not isinstance(use_cats, (bool, np.bool_)) and use_cats not in (0, 1):
        raise ValueError(f"use_cats: expected True or False, got {use_cats!r}")
    imgs = None if img_ids is None else _id_list("img_ids", img_ids)
    cats = None if cat_ids is None else _id_list("cat_ids", cat_ids)
    if cats is not None and not use_cats and len(set(cats)) != len(cats):
        raise ValueError(f"cat_ids: with use_cats=False every id must appear once (pycocotools "
                         f"would pool its annotations twice), got {cats!r}")
    return COCOParams(iou, rec, rng, lbl, mdets, bool(use_cats), imgs, cats)


def _area_ranges(area_rng):
    if area_rng is None:
        return np.array(COCO_AREA_RNG, dtype=np.float64)
    try:
        rows = [list(r) for r in area_rng]
    except TypeError as exc:
        raise ValueError(f"area_rng: expected a list of [lo, hi] ranges, got {area_rng!r}") from exc
    for i, r in enumerate(rows):
        if len(r) != 2 or not all(_is_number_type(type(v)) for v in r):
            raise ValueError(f"area_rng[{i}]: expected [lo, hi] numbers, got {r!r}")
        lo, hi = float(r[0]), float(r[1])
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"area_rng[{i}]: expected lo <= hi, got {r!r}")
    if not rows:
        raise ValueError("area_rng: expected at least one [lo, hi] range")
    return np.array(rows, dtype=np.float64).reshape(len(rows), 2)


def _area_labels(area_rng_lbl, n, default_rng):
    if area_rng_lbl is None:
        if n != len(COCO_AREA_LBL):
            raise ValueError(f"area_rng_lbl: needed for {n} area ranges (the default labels "
                             f"{list(COCO_AREA_LBL)} name 4)")
        return COCO_AREA_LBL
    if isinstance(area_rng_lbl, str):
        raise ValueError(f"area_rng_lbl: expected a list of labels, got {area_rng_lbl!r}")
    lbl = tuple(area_rng_lbl)
    if not all(isinstance(v, str) for v in lbl):
        raise ValueError(f"area_rng_lbl: expected strings, got {list(lbl)!r}")
    if len(lbl) != n:
        raise ValueError(f"area_rng_lbl: {len(lbl)} labels for {n} area ranges"
                         + (" (the default area_rng has 4)" if default_rng else ""))
    if len(set(lbl)) != len(lbl):
        raise ValueError(f"area_rng_lbl: labels must be distinct, got {list(lbl)!r}")
    return lbl


def _max_dets(max_dets):
    if max_dets is None:
        return COCO_MAX_DETS
    if isinstance(max_dets, (str, bytes)) or not hasattr(max_dets, "__iter__"):
        raise ValueError(f"max_dets: expected a list of counts, got {max_dets!r}")
    vals = list(max_dets)
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"max_dets: expected integers >= 1, got {v!r}")
    if not vals:
        raise ValueError("max_dets: expected at least one count")
    return tuple(sorted(int(v) for v in vals))


def check_coco_params(iou_thrs: ArrayLike | None = None, area_rng: ArrayLike | None = None,
                      max_dets: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(iou_thrs [T], area_rng [A, 2], sorted max_dets) of :func:`coco_params` (defaults for
    ``None``; the four default labels, so ``area_rng`` must hold 4 ranges).

    Raises:
        ValueError: as :func:`coco_params`, naming the parameter.
    """
    p = coco_params(iou_thrs=iou_thrs, area_rng=area_rng, max_dets=max_dets)
    return p.iou_thrs, p.area_rng, p.max_dets


# ============================================================================ inputs

def load_json(name: str, x: Any) -> Any:
    """``x`` read as JSON when it is a path (str / PathLike); anything else is returned as is.

    Raises:
        ValueError: one line naming ``name`` and the file, when it cannot be read, is not UTF-8
            text, is broken JSON, nests too deeply or holds an integer too long to convert.
    """
    if not isinstance(x, (str, os.PathLike)):
        return x
    path = os.fspath(x)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ValueError(f"{name}: {path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: {path}: byte {exc.start}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: {path}: line {exc.lineno}: broken JSON: {exc.msg}") from None
    except RecursionError:
        raise ValueError(f"{name}: {path}: JSON nested too deeply to be COCO") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise ValueError(f"{name}: {path}: bad JSON value: {exc}") from None


def _exact_id(v: Any, fail) -> int | str:
    """An id as an exact int (Python or NumPy integer, or an integral float) or a str; ``fail``
    builds the error for anything else (bool, fractional, non-finite, beyond int64)."""
    t = type(v)
    if t is str:
        return v
    if t is int or (t is not bool and isinstance(v, np.integer)):
        iv = int(v)
    elif t is float or isinstance(v, np.floating):
        if not math.isfinite(v) or v != math.floor(v):
            raise fail(f"expected an integer or string id, got {v!r}")
        iv = int(v)
    else:
        raise fail(f"expected an integer or string id, got {v!r}")
    if not _INT64[0] <= iv <= _INT64[1]:
        raise fail(f"id {iv} is beyond the int64 range")
    return iv


class _Source:
    """Names places in one input for error messages: ``gt.json: annotations[3] (id 7).bbox``."""

    def __init__(self, name: str, x: Any) -> None:
        self.name = os.fspath(x) if isinstance(x, (str, os.PathLike)) else name

    def where(self, lst: str, items: list, i: int, key: str | None = None) -> str:
        item = items[i]
        ident = ""
        if lst == "annotations" and isinstance(item, dict) and "id" in item:
            ident = f" (id {item['id']!r})"
        at = f"{lst}[{i}]" if lst else f"[{i}]"
        return f"{self.name}: {at}{ident}" + (f".{key}" if key else "")

    def fail(self, lst: str, items: list, i: int, key: str | None, msg: str) -> ValueError:
        return ValueError(f"{self.where(lst, items, i, key)}: {msg}")


def _values(src: _Source, lst: str, items: list, key: str, default: Any = None,
            required: bool = True) -> list:
    """``[item[key] for item in items]`` (C-level); a non-object entry or a missing required key
    raises naming the entry."""
    try:
        if required:
            return list(map(itemgetter(key), items))
        return list(map(methodcaller("get", key, default), items))
    except (KeyError, TypeError, AttributeError):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise src.fail(lst, items, i, None, f"expected an object, got {item!r:.60}") from None
            if required and key not in item:
                raise src.fail(lst, items, i, key, "missing key") from None
        raise


def _id_column(src: _Source, lst: str, items: list, key: str, vals: list | None = None,
               like: np.ndarray | None = None, what: str = "") -> np.ndarray:
    """Ids as int64 (all numbers) or str (all strings): never coerced from one to the other.
    ``like`` (the ids these refer to, e.g. the GT's image ids) fixes the kind when non-empty."""
    vals = _values(src, lst, items, key) if vals is None else vals
    expect = None if like is None or len(like) == 0 else (str if like.dtype.kind == "U" else int)
    types = set(map(type, vals))
    if vals and types <= {int} and expect is not str:
        try:
            return np.fromiter(vals, dtype=np.int64, count=len(vals))
        except OverflowError:
            pass  # located below
    elif vals and types == {str} and expect is not int:
        return np.array(vals, dtype=str)
    out = []
    for i, v in enumerate(vals):
        iv = _exact_id(v, lambda msg, i=i: src.fail(lst, items, i, key, msg))
        kind = type(iv)
        if expect is None:
            expect = kind
        elif kind is not expect:
            names = {str: "strings", int: "integers"}
            raise src.fail(lst, items, i, key, f"{v!r}: the {what or 'other'} ids are "
                                               f"{names[expect]} (a string id and an integer id "
                                               "are different ids, as in pycocotools)")
        out.append(iv)
    return np.array(out, dtype=str if expect is str else np.int64).reshape(len(out))


def _number_column(src: _Source, lst: str, items: list, key: str, vals: list, lo: float | None = None) -> np.ndarray:
    """Finite numbers (not bool, not strings) as float64, each >= ``lo`` when given."""
    a = None
    if all(map(_is_number_type, set(map(type, vals)))):
        try:
            a = np.fromiter(vals, dtype=np.float64, count=len(vals))
        except (OverflowError, ValueError, TypeError):
            a = None
    if a is not None:
        bad = ~np.isfinite(a) if lo is None else ~(np.isfinite(a) & (a >= lo))
        if not bad.any():
            return a
    for i, v in enumerate(vals):
        if not _is_number_type(type(v)):
            raise src.fail(lst, items, i, key, f"expected a number, got {v!r:.60}")
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            raise src.fail(lst, items, i, key, f"expected a finite number, got {v!r:.60}")
        if lo is not None and x < lo:
            raise src.fail(lst, items, i, key, f"expected a value >= {lo}, got {v!r}")
    raise AssertionError("unreachable")  # pragma: no cover


def _flag_column(src: _Source, lst: str, items: list, key: str, vals: list) -> np.ndarray:
    """0 / 1 flags (int or integral float, not bool, not strings) as bool."""
    types = set(map(type, vals))
    if types <= {int}:
        a = np.fromiter((v == 1 if v in (0, 1) else 2 for v in vals), dtype=np.int8, count=len(vals))
        if not (a == 2).any():
            return a.astype(bool)
    for i, v in enumerate(vals):
        if not _is_number_type(type(v)) or v not in (0, 1):
            raise src.fail(lst, items, i, key, f"expected 0 or 1, got {v!r:.60}")
    return np.array([v == 1 for v in vals], dtype=bool).reshape(len(vals))


def _xywh_column(src: _Source, lst: str, items: list) -> np.ndarray:
    """[N, 4] float64 ``bbox`` fields: 4 finite numbers, w and h >= 0."""
    boxes = _values(src, lst, items, "bbox")
    ok = set(map(type, boxes)) <= {list, tuple} and set(map(len, boxes)) <= {4}
    if ok:
        flat = list(chain.from_iterable(boxes))
        ok = all(map(_is_number_type, set(map(type, flat))))
    if ok:
        try:
            a = np.fromiter(flat, dtype=np.float64, count=len(flat)).reshape(len(boxes), 4)
        except OverflowError:
            ok = False
    if ok and np.isfinite(a).all() and (a[:, 2:] >= 0).all():
        return a
    for i, b in enumerate(boxes):
        if not isinstance(b, (list, tuple)) or len(b) != 4:
            raise src.fail(lst, items, i, "bbox", f"expected [x, y, w, h], got {b!r:.60}")
        for j, v in enumerate(b):
            if not _is_number_type(type(v)):
                raise src.fail(lst, items, i, "bbox", f"[{j}]: expected a number, got {v!r:.60}")
            try:
                x = float(v)
            except OverflowError:
                x = math.inf
            if not math.isfinite(x):
                raise src.fail(lst, items, i, "bbox", f"[{j}]: expected a finite number, got {v!r}")
        if b[2] < 0 or b[3] < 0:
            raise src.fail(lst, items, i, "bbox", f"negative width or height in {list(b)!r}")
    raise AssertionError("unreachable")  # pragma: no cover


def index_of(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of ``ids [N]`` in the sorted 1-d array ``sorted_ids``; -1 where absent."""
    if len(sorted_ids) == 0 or len(ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    if (ids.dtype.kind == "U") != (sorted_ids.dtype.kind == "U"):
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids).clip(0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1)


def _positions(ids: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` in the (not necessarily sorted) list ``listed``; -1 where absent."""
    srt = np.argsort(listed, kind="stable")
    p = index_of(ids, listed[srt])
    return np.where(p >= 0, srt[np.maximum(p, 0)] if len(srt) else p, -1)


def _subset(name: str, ids: list | None, known: np.ndarray, sort: bool) -> np.ndarray:
    """The requested ids (all in ``known``) as an array like ``known``; ``known`` for None."""
    if ids is None:
        return known
    strings = known.dtype.kind == "U"
    wrong = [v for v in ids if isinstance(v, str) != strings]
    if wrong:
        raise ValueError(f"{name}: {wrong[0]!r}: the ground truth's ids are "
                         f"{'strings' if strings else 'integers'} (string and integer ids differ)")
    want = np.array(ids, dtype=str if strings else np.int64).reshape(len(ids))
    missing = index_of(want, known) < 0
    if missing.any():
        raise ValueError(f"{name}: {ids[int(np.argmax(missing))]!r} is not in the ground truth")
    return np.unique(want) if sort else want


def parse_coco(gt: dict | str | os.PathLike, results: list[dict] | str | os.PathLike,
               params: COCOParams | None = None) -> dict[str, np.ndarray]:
    """COCO ground truth and results as flat NumPy columns (pycocotools' ``_prepare`` rules).

    Args:
        gt (dict | str | PathLike): COCO ground truth or the path of its JSON file.
        results (list[dict] | str | PathLike): COCO results or the path of a JSON list.
        params (COCOParams | None): ``use_cats``, ``img_ids``, ``cat_ids`` (default: all).

    Returns:
        dict: the columns of the table in the module docstring.

    Values are checked as :func:`ref_numpy.formats.read_coco` checks a file, never coerced:
    ids are integers (integral floats allowed) or strings, never bool or fractional, within
    int64; a string id and an integer id are different ids (as in pycocotools), and one data
    set uses one kind. ``bbox`` is 4 finite numbers with w, h >= 0; ``area`` (w * h when
    absent; pycocotools would crash) finite and >= 0; ``iscrowd`` 0 or 1 (0 when absent);
    ``score`` finite. Numbers given as strings are errors. Referential rules are pycocotools':
    image and category lists are ``sorted(unique ids)`` (images without annotations included);
    GT annotations of an image or category outside the evaluated lists are dropped, as
    ``getAnnIds(imgIds, catIds)`` does, and so are results of a category outside them; a
    result on an image that is not in the GT raises (``loadRes`` asserts). Annotation ids are
    not used: matching uses positions, so an id of 0 is handled correctly (pycocotools counts
    a detection matched to GT id 0 as a false positive) and repeated ids are distinct.

    Raises:
        ValueError: one line naming the file (or ``gt`` / ``results``), the list, the entry's
            index (and annotation id) and the field, e.g.
            ``gt.json: annotations[3] (id 7).iscrowd: expected 0 or 1, got '0'``.
    """
    params = coco_params() if params is None else params
    gsrc, rsrc = _Source("gt", gt), _Source("results", results)
    gt = load_json("gt", gt)
    results = load_json("results", results)
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise ValueError(f"{gsrc.name}: expected a COCO object with 'images' and 'categories' "
                         f"(and 'annotations'), got {type(gt).__name__}")
    if not isinstance(results, (list, tuple)):
        raise ValueError(f"{rsrc.name}: expected a list of COCO result objects, got "
                         f"{type(results).__name__}")
    lists = {}
    for key in ("images", "categories", "annotations"):
        v = gt.get(key, [])
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{gsrc.name}: {key}: expected a list, got {type(v).__name__}")
        lists[key] = list(v)
    images, categories, anns = lists["images"], lists["categories"], lists["annotations"]
    results = list(results)

    all_img = np.unique(_id_column(gsrc, "images", images, "id"))
    all_cat = np.unique(_id_column(gsrc, "categories", categories, "id"))
    if anns and any("id" in a for a in anns if isinstance(a, dict)):
        _id_column(gsrc, "annotations", anns, "id",
                   _values(gsrc, "annotations", anns, "id", default=0, required=False))
    g_img = _id_column(gsrc, "annotations", anns, "image_id", like=all_img, what="image")
    g_cat = _id_column(gsrc, "annotations", anns, "category_id", like=all_cat, what="category")
    g_box = _xywh_column(gsrc, "annotations", anns)
    area = _values(gsrc, "annotations", anns, "area", default=None, required=False)
    missing = [i for i, v in enumerate(area) if v is None]
    for i in missing:
        area[i] = g_box[i, 2] * g_box[i, 3]
    g_area = _number_column(gsrc, "annotations", anns, "area", area, lo=0.0)
    g_crowd = _flag_column(gsrc, "annotations", anns, "iscrowd",
                           _values(gsrc, "annotations", anns, "iscrowd", default=0, required=False))

    d_img = _id_column(rsrc, "", results, "image_id", like=all_img, what="ground truth's image")
    d_cat = _id_column(rsrc, "", results, "category_id", like=all_cat,
                       what="ground truth's category")
    d_box = _xywh_column(rsrc, "", results)
    d_score = _number_column(rsrc, "", results, "score", _values(rsrc, "", results, "score"))
    unknown = index_of(d_img, all_img) < 0
    if unknown.any():
        i = int(np.argmax(unknown))
        raise rsrc.fail("", results, i, "image_id",
                        f"image {results[i]['image_id']!r} is not in the ground truth")

    img_ids = _subset("img_ids", params.img_ids, all_img, sort=True)
    cat_ids = _subset("cat_ids", params.cat_ids, all_cat, sort=params.use_cats)
    g_i, g_k = index_of(g_img, img_ids), _positions(g_cat, cat_ids)
    d_i, d_k = index_of(d_img, img_ids), _positions(d_cat, cat_ids)
    gkeep = np.flatnonzero((g_i >= 0) & (g_k >= 0))
    dkeep = np.flatnonzero((d_i >= 0) & (d_k >= 0))
    if params.use_cats:
        # pycocotools walks sorted image ids, then annotations in input order: stable by image.
        gorder = gkeep[np.argsort(g_i[gkeep], kind="stable")]
    else:
        # useCats=0 lists an image's annotations category by category (cat_ids order), and its
        # detections likewise before the stable score sort; then one pooled category.
        gorder = gkeep[np.lexsort((g_k[gkeep], g_i[gkeep]))]
        dkeep = dkeep[np.argsort(d_k[dkeep], kind="stable")]
        g_k, d_k = np.zeros_like(g_k), np.zeros_like(d_k)
        cat_ids = np.array([-1], dtype=np.int64)
    return dict(
        img_ids=img_ids, cat_ids=cat_ids,
        gt_img=g_i[gorder], gt_cat=g_k[gorder], gt_box=g_box[gorder], gt_area=g_area[gorder],
        gt_crowd=g_crowd[gorder],
        dt_img=d_i[dkeep], dt_cat=d_k[dkeep], dt_box=d_box[dkeep], dt_score=d_score[dkeep],
        dt_area=d_box[dkeep, 2] * d_box[dkeep, 3],
    )


# ============================================================================ summary

def mean_valid(s: np.ndarray) -> float:
    """Mean of the entries > -1 of ``s`` (NumPy's pairwise sum, as pycocotools), -1.0 if none."""
    v = s[s > -1]
    return -1.0 if v.size == 0 else float(np.mean(v))


def _stat_max_det(pos: int | None, max_dets: Sequence[int]) -> int | None:
    """The maxDets value a stat asks for: 100 for stat 0 (hard-coded upstream), else the
    sorted ``max_dets[pos]``; None where pycocotools would raise IndexError (< 3 values)."""
    if pos is None:
        return 100
    return max_dets[pos] if pos < len(max_dets) else None


def _slice_mean(arr: np.ndarray, is_ap: bool, iou: float | None, area: str, mdet: int | None,
                iou_thrs: np.ndarray, max_dets: Sequence[int], area_rng_lbl: Sequence[str]) -> float:
    """pycocotools ``_summarize`` on ``precision`` (``is_ap``) or ``recall``: its exact indexing
    ``s[..., aind, mind]`` (IoU by exact float equality, area by label, maxDets by value)."""
    aind = [i for i, lbl in enumerate(area_rng_lbl) if lbl == area]
    mind = [i for i, m in enumerate(max_dets) if m == mdet]
    if mdet is None or not aind:  # pycocotools: IndexError, or an empty selection
        return -1.0
    s = arr
    if iou is not None:
        s = s[np.where(iou == np.asarray(iou_thrs))[0]]
    s = s[:, :, :, aind, mind] if is_ap else s[:, :, aind, mind]
    return mean_valid(s)


def summarize(precision: np.ndarray, recall: np.ndarray, iou_thrs: np.ndarray,
              max_dets: Sequence[int], area_rng_lbl: Sequence[str] = COCO_AREA_LBL) -> np.ndarray:
    """pycocotools ``summarize``: the 12 standard stats (see :class:`COCOEvalResult`).

    Args:
        precision (ndarray[T, R, K, A, M]), recall (ndarray[T, K, A, M]): NumPy, float64.
        iou_thrs (ndarray[T]), max_dets (M sorted ints), area_rng_lbl (A labels): the
            parameters they were computed with.

    Returns:
        ndarray[12] float64, in :data:`COCO_STATS` order; -1 where a slice has no valid entry.

    pycocotools' fixed lookups, reproduced: stat 0 (AP) is at maxDets == 100 whatever
    ``max_dets`` holds (-1 if 100 is absent); AP50 / AP75 look IoU 0.5 / 0.75 up by exact
    equality (-1 if absent); every other stat uses the sorted ``max_dets[2]``, and AR1 / AR10 /
    AR100 are AR at ``max_dets[0]``, ``[1]``, ``[2]`` (so with max_dets (1, 5, 20) "AR10" is AR@5);
    areas are found by the labels "all", "small", "medium", "large" (-1 if a label is absent).
    Where pycocotools raises IndexError the stat is -1: fewer than 3 ``max_dets``, or a label
    absent from ``area_rng_lbl`` while the maxDets value asked for repeats (its
    ``s[..., aind, mind]`` cannot broadcast [] against two indices).
    """
    out = []
    for _, is_ap, iou, area, pos in COCO_STATS:
        out.append(_slice_mean(precision if is_ap else recall, is_ap, iou, area,
                               _stat_max_det(pos, max_dets), iou_thrs, max_dets, area_rng_lbl))
    return np.array(out, dtype=np.float64)


def _recall_at(recall: np.ndarray, iou: float, iou_thrs: np.ndarray, max_dets: Sequence[int],
               area_rng_lbl: Sequence[str]) -> float:
    """faster-coco-eval's AR_50 / AR_75: recall at IoU == ``iou``, area "all", largest maxDets."""
    if "all" not in area_rng_lbl:
        return -1.0
    s = recall[np.where(iou == np.asarray(iou_thrs))[0]]
    return mean_valid(s[:, :, list(area_rng_lbl).index("all"), list(max_dets).index(max(max_dets))])


def per_class_ap(precision: np.ndarray, cat_ids: Sequence[int], max_dets: Sequence[int],
                 area_rng_lbl: Sequence[str] = COCO_AREA_LBL) -> dict[int, float]:
    """AP@[.5:.95], area "all", maxDets 100 per category id (``{id: AP}``, NumPy ``precision``);
    -1.0 for a category without non-ignored GT (or when "all" or 100 is not a parameter)."""
    m = [i for i, v in enumerate(max_dets) if v == 100]
    a = [i for i, lbl in enumerate(area_rng_lbl) if lbl == "all"]
    out = {}
    for k, cid in enumerate(cat_ids):
        key = cid.item() if isinstance(cid, np.generic) else cid
        out[key] = mean_valid(precision[:, :, k, a[0], m]) if a else -1.0
    return out


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class COCOEvalResult:
    """What ``coco_evaluate`` returns on either side (pycocotools' ``eval`` dict and ``stats``).

    Both sides return this one class: the reference with NumPy arrays, the port with float64
    tensors on the evaluation device (``stats``, ``precision``, ``recall``, ``scores``).

    Attributes:
        stats (ndarray[12] float64): pycocotools' ``stats`` (:func:`summarize`): AP@[.5:.95],
            AP@.5, AP@.75, AP small, medium, large, AR@max_dets[0], [1], [2], AR small, medium,
            large, each the mean of the entries > -1 of its slice, -1 if there are none.
        precision (ndarray[T, R, K, A, M] float64): -1 for a category without non-ignored GT.
        recall (ndarray[T, K, A, M] float64), scores (ndarray[T, R, K, A, M] float64).
        per_class (dict[id, float]): category id -> AP@[.5:.95], area all, maxDets 100;
            -1.0 for a category with no non-ignored GT (as pycocotools' -1 convention);
            ``{-1: AP}`` with ``use_cats=False`` (pycocotools' pooled category id).
        iou_thrs, rec_thrs, area_rng, area_rng_lbl, max_dets (sorted), use_cats, cat_ids,
            img_ids: the parameters used.
        AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (float): ``stats`` by
            name (the names of the default parameters: "AR10" is AR at the sorted
            ``max_dets[1]``); AR50, AR75 (float): faster-coco-eval's AR_50 / AR_75, recall at
            IoU 0.5 / 0.75, area "all", the largest ``max_dets`` (-1 if absent).
            :meth:`named_stats` gives them all as a dict, :meth:`summary` pycocotools' printout.
    """

    def __init__(self, stats: np.ndarray | torch.Tensor, precision: np.ndarray | torch.Tensor,
                 recall: np.ndarray | torch.Tensor, scores: np.ndarray | torch.Tensor,
                 per_class: dict[int, float], iou_thrs: np.ndarray, rec_thrs: np.ndarray,
                 area_rng: np.ndarray, max_dets: tuple[int, ...], cat_ids: np.ndarray,
                 img_ids: np.ndarray, area_rng_lbl: Sequence[str] = COCO_AREA_LBL,
                 use_cats: bool = True) -> None:
        self.stats = stats
        self.precision = precision
        self.recall = recall
        self.scores = scores
        self.per_class = per_class
        self.iou_thrs = iou_thrs
        self.rec_thrs = rec_thrs
        self.area_rng = area_rng
        self.area_rng_lbl = tuple(area_rng_lbl)
        self.max_dets = max_dets
        self.use_cats = use_cats
        self.cat_ids = cat_ids
        self.img_ids = img_ids

    def named_stats(self) -> dict[str, float]:
        """``{name: value}`` for :data:`COCO_STAT_NAMES` (the 12 stats, then AR50, AR75)."""
        stats = _np(self.stats)
        out = {key: float(v) for (key, *_), v in zip(COCO_STATS, stats)}
        recall = _np(self.recall)
        for name, iou in (("AR50", 0.5), ("AR75", 0.75)):
            out[name] = _recall_at(recall, iou, _np(self.iou_thrs), self.max_dets, self.area_rng_lbl)
        return out

    def __getattr__(self, name: str) -> float:
        if name in COCO_STAT_NAMES:
            return self.named_stats()[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def summary(self) -> list[str]:
        """The 12 lines pycocotools' ``summarize`` prints (:func:`format_summary`)."""
        return format_summary(_np(self.stats), _np(self.iou_thrs), self.max_dets)

    def __repr__(self) -> str:
        return f"COCOEvalResult(stats={[round(float(v), 4) for v in _np(self.stats)]})"


def format_summary(stats: ArrayLike, iou_thrs: ArrayLike, max_dets: Sequence[int]) -> list[str]:
    """pycocotools' ``summarize`` printout, line for line (12 lines; ``stats`` in
    :data:`COCO_STATS` order, NumPy or floats; ``max_dets`` sorted).

    As upstream: the IoU range shows the first and last ``iou_thrs`` as given; the area shows
    the label looked up ("all", "small", ...), not the caller's labels; stat 0 shows
    maxDets=100 whatever ``max_dets`` holds, the others the sorted ``max_dets[0/1/2]``.
    Where pycocotools raises (fewer than 3 ``max_dets``) the line shows ``maxDets=  -``.
    """
    lines = []
    iou_thrs = list(iou_thrs)
    for (_, is_ap, iou, area, pos), v in zip(COCO_STATS, stats):
        title = "Average Precision" if is_ap else "Average Recall"
        kind = "(AP)" if is_ap else "(AR)"
        iou_s = f"{iou_thrs[0]:0.2f}:{iou_thrs[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
        mdet = _stat_max_det(pos, max_dets)
        mdet_s = f"{mdet:>3d}" if mdet is not None else f"{'-':>3}"
        lines.append(f" {title:<18} {kind} @[ IoU={iou_s:<9} | area={area:>6s} | "
                     f"maxDets={mdet_s} ] = {float(v):0.3f}")
    return lines
