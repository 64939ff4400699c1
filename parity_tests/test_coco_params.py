"""``coco_evaluate`` under every pycocotools ``Params`` field, and on hostile inputs.

- Differential: Hypothesis data sets (:func:`parity_tests.strategies.coco_datasets`) x drawn
  parameters (``iou_thrs`` and ``rec_thrs`` in any order, any ``area_rng`` with labels, any
  number and order of ``max_dets``, ``use_cats``, ``img_ids`` / ``cat_ids`` subsets): both
  sides equal pycocotools' ``precision``, ``recall``, ``scores`` bit for bit, and its ``stats``
  and printed summary lines wherever pycocotools' ``summarize`` runs (>= 3 max_dets).
- The summary's fixed lookups, pinned: stat 0 at maxDets == 100 by value, AR@max_dets[0/1/2],
  the printout's labels; named stats (``AP`` ... ``ARl``, ``AR50``, ``AR75`` as faster-coco-eval
  defines them, computed here from pycocotools' own recall array).
- Hostile inputs generated at test time (a valid data set with one field of one entry made bad,
  as a dict and as a JSON file; huge ids, deep nesting, binary files, bad parameters): a
  one-line ``ValueError`` naming the file or argument, the entry and the field, never a
  coercion and never a traceback from inside NumPy or json.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref_numpy.metrics as R
import torch_impl.metrics as P
from parity_tests import strategies as S
from parity_tests.oracles import pycocotools_evaluate
from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy.shared.coco import COCO_STAT_NAMES

SIDES = (R.coco_evaluate, P.coco_evaluate)


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _assert_equal_to_oracle(ours, ev, inputs):
    desired = {"precision": ev.precision, "recall": ev.recall, "scores": ev.scores}
    if ev.stats is not None:
        desired["stats"] = ev.stats
    actual = {k: _np(getattr(ours, k)) for k in desired}
    assert_parity(actual, desired, name="metrics.coco_evaluate", tol=EXACT, inputs=inputs)
    if ev.stats is not None:
        assert ours.summary() == ev.summary_lines, inputs


# ----------------------------------------------------------------------------- parameters

_LABELS = ("all", "small", "medium", "large", "tiny", "huge")


@st.composite
def coco_params(draw, gt):
    """Keyword arguments for ``coco_evaluate`` (and, identically, the oracle) for ``gt``."""
    kw = {}
    thr = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.8999999999999999, 1.0]),
                    st.floats(0.0, 1.0))
    if draw(st.booleans()):
        kw["iou_thrs"] = draw(st.lists(thr, min_size=1, max_size=4))
    if draw(st.booleans()):
        kw["rec_thrs"] = draw(st.lists(thr, min_size=1, max_size=6))
    if draw(st.booleans()):
        kw["max_dets"] = draw(st.lists(st.sampled_from([1, 2, 3, 10, 100, 120]), min_size=1,
                                       max_size=5))
    if draw(st.booleans()):
        n = draw(st.integers(1, 5))
        edges = st.sampled_from([0.0, 16.0, 32.0 ** 2, 96.0 ** 2, 1e5 ** 2, 700.0])
        rngs = [sorted([draw(edges), draw(edges)]) for _ in range(n)]
        kw["area_rng"] = rngs
        kw["area_rng_lbl"] = draw(st.permutations(_LABELS))[:n]
    if draw(st.booleans()):
        kw["use_cats"] = False
    img = sorted(im["id"] for im in gt["images"])
    cat = sorted(c["id"] for c in gt["categories"])
    if draw(st.booleans()):
        kw["img_ids"] = draw(st.lists(st.sampled_from(img), max_size=len(img), unique=True))
    if draw(st.booleans()):
        kw["cat_ids"] = draw(st.lists(st.sampled_from(cat), max_size=len(cat), unique=True))
    return kw


_EDGE = ({"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}, {"id": 2}],
                   "annotations": [
                       {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
                        "area": 100.0, "iscrowd": 0},
                       {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10],
                        "area": 100.0, "iscrowd": 0},
                       {"id": 3, "image_id": 2, "category_id": 2, "bbox": [5, 5, 40, 40],
                        "area": 1600.0, "iscrowd": 1}]},
                  [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.5},
                   {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5},
                   {"image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.9},
                   {"image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 40], "score": 0.5}])


@settings(max_examples=40)
@given(data=st.data(), ds=S.coco_datasets(max_images=4))
@example(data=None, ds=_EDGE)
def test_every_param_matches_pycocotools(data, ds):
    gt, results = ds
    if data is None:  # the @example: pooled categories with a cross-category score tie
        kw = {"use_cats": False, "cat_ids": [2, 1], "max_dets": [10, 1, 100]}
    else:
        kw = data.draw(coco_params(gt), label="params")
    ev = pycocotools_evaluate(gt, results, **kw)
    for fn in SIDES:
        _assert_equal_to_oracle(fn(gt, results, **kw), ev, (ds, kw))


@settings(max_examples=10)
@given(ds=S.coco_datasets(max_images=3), order=st.permutations([1, 10, 100]))
def test_max_dets_order_is_sorted_as_pycocotools(ds, order):
    """pycocotools sorts maxDets in evaluate(): [10, 1, 100] is the default."""
    gt, results = ds
    for fn in SIDES:
        a, b = fn(gt, results, max_dets=list(order)), fn(gt, results)
        assert_parity(_np(a.stats), _np(b.stats), name="metrics.coco_evaluate", tol=EXACT)
        assert a.max_dets == (1, 10, 100)


def test_summary_fixed_lookups_as_pycocotools():
    """max_dets (20, 1, 5) sorted (1, 5, 20): stat 0 asks for maxDets == 100 (absent: -1, yet
    the line says maxDets=100); "AR1/AR10/AR100" are AR@1, @5, @20 and say so."""
    gt, res = _EDGE
    ev = pycocotools_evaluate(gt, res, max_dets=[20, 1, 5])
    for fn in SIDES:
        ours = fn(gt, res, max_dets=[20, 1, 5])
        _assert_equal_to_oracle(ours, ev, "max_dets")
        lines = ours.summary()
        assert float(ours.stats[0]) == -1.0 and "maxDets=100 ] = -1.000" in lines[0]
        assert [ln.split("maxDets=")[1][:3] for ln in lines[6:9]] == ["  1", "  5", " 20"]


def test_fewer_than_three_max_dets_defined_where_pycocotools_raises():
    gt, res = _EDGE
    ev = pycocotools_evaluate(gt, res, max_dets=[100, 3])
    assert ev.stats is None  # pycocotools' summarize: IndexError on maxDets[2]
    for fn in SIDES:
        ours = fn(gt, res, max_dets=[100, 3])
        _assert_equal_to_oracle(ours, ev, "max_dets")
        stats = _np(ours.stats)
        assert stats[0] > -1 and stats[7] > -1  # AP@100 and AR@max_dets[1] = AR@100 exist
        assert np.all(stats[[1, 2, 3, 4, 5, 8, 9, 10, 11]] == -1)
        assert "maxDets=  -" in ours.summary()[1]


@settings(max_examples=15)
@given(ds=S.coco_datasets(max_images=4))
def test_named_stats(ds):
    """Names follow ``stats``; AR50 / AR75 are faster-coco-eval's: recall at IoU 0.5 / 0.75,
    area all, largest maxDets, from pycocotools' own recall array."""
    gt, results = ds
    ev = pycocotools_evaluate(gt, results)
    for fn in SIDES:
        ours = fn(gt, results)
        named = ours.named_stats()
        assert tuple(named) == COCO_STAT_NAMES
        assert [named[k] for k in COCO_STAT_NAMES[:12]] == ev.stats.tolist()
        for name, t in (("AR50", 0), ("AR75", 5)):
            s = ev.recall[t, :, 0, 2]
            want = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
            assert named[name] == want == getattr(ours, name)
        assert ours.AP == ev.stats[0] and ours.ARl == ev.stats[11]


def test_named_stats_match_faster_coco_eval():
    fce = pytest.importorskip("faster_coco_eval")  # a peer: skipped where it is not installed
    gt, res = _EDGE
    ev = pycocotools_evaluate(gt, res, module="faster_coco_eval")
    d = ev.evaluator.stats_as_dict
    ours = R.coco_evaluate(gt, res)
    assert ours.AR50 == d["AR_50"] and ours.AR75 == d["AR_75"] and ours.AP == d["AP_all"]
    assert fce is not None


# ----------------------------------------------------------------------------- ids

def test_string_image_ids_as_pycocotools():
    gt, res = copy.deepcopy(_EDGE)
    for x in gt["images"]:
        x["id"] = f"im{x['id']}"
    for x in gt["annotations"] + res:
        x["image_id"] = f"im{x['image_id']}"
    ev = pycocotools_evaluate(gt, res)
    for fn in SIDES:
        _assert_equal_to_oracle(fn(gt, res), ev, "string ids")
        with pytest.raises(ValueError, match=r"\[0\]\.image_id.*strings"):
            fn(gt, [dict(res[0], image_id=1)] + res[1:])


def test_large_ids_exact():
    """2**62 + 1 and -(2**63) are valid int64 ids (no float round trip); 2**63 is not."""
    gt, res = copy.deepcopy(_EDGE)
    big = {1: 2 ** 62 + 1, 2: 2 ** 62}
    for x in gt["images"]:
        x["id"] = big[x["id"]]
    for x in gt["annotations"] + res:
        x["image_id"] = big[x["image_id"]]
    ev = pycocotools_evaluate(gt, res)
    for fn in SIDES:
        ours = fn(gt, res)
        _assert_equal_to_oracle(ours, ev, "big ids")
        assert ours.img_ids.tolist() == [2 ** 62, 2 ** 62 + 1]
        bad = copy.deepcopy(gt)
        bad["annotations"][1]["category_id"] = 2 ** 63
        with pytest.raises(ValueError, match=r"annotations\[1\] \(id 2\)\.category_id: id .* int64"):
            fn(bad, res)


# ----------------------------------------------------------------------------- hostile inputs

# (field, bad value, what the message must say); each is accepted nowhere by the file readers
_BAD_GT = [
    ("image_id", "1", "integers"), ("image_id", True, "integer or string"),
    ("image_id", 1.5, "integer or string"), ("image_id", None, "integer or string"),
    ("category_id", float("nan"), "integer or string"), ("category_id", 2 ** 64, "int64"),
    ("iscrowd", "0", "0 or 1"), ("iscrowd", 2, "0 or 1"), ("iscrowd", True, "0 or 1"),
    ("area", float("nan"), "finite"), ("area", -1.0, ">= 0"), ("area", "100", "number"),
    ("bbox", ["0", 0, 1, 1], "number"), ("bbox", [0, 0, -1, 1], "negative"),
    ("bbox", [0, 0, 1], r"\[x, y, w, h\]"), ("bbox", [0, 0, float("inf"), 1], "finite"),
    ("bbox", None, r"\[x, y, w, h\]"), ("bbox", [0, 0, True, 1], "number"),
    ("id", 2.5, "integer or string"),
]
_BAD_RES = [
    ("image_id", "1", "integers"), ("image_id", 1.25, "integer or string"),
    ("image_id", 2 ** 70, "int64"), ("category_id", False, "integer or string"),
    ("score", "0.5", "number"), ("score", float("nan"), "finite"), ("score", None, "number"),
    ("bbox", [0, 0, 1, float("nan")], "finite"), ("bbox", "0 0 1 1", r"\[x, y, w, h\]"),
]


def _check_error(exc_info, *parts):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for p in parts:
        assert p in msg, (p, msg)


@settings(max_examples=40)
@given(ds=S.coco_datasets(max_images=3), data=st.data())
def test_one_bad_field_is_named(ds, data):
    """One field of one entry of a valid data set made bad: a one-line error naming the source,
    the entry's index (and annotation id) and the field, on both sides, dict and JSON file."""
    gt, results = copy.deepcopy(ds[0]), copy.deepcopy(ds[1])
    targets = (["gt"] if gt["annotations"] else []) + (["results"] if results else [])
    if not targets:
        targets = ["gt"]
        gt["annotations"].append({"id": 1, "image_id": gt["images"][0]["id"],
                                  "category_id": gt["categories"][0]["id"],
                                  "bbox": [0, 0, 1, 1], "area": 1.0, "iscrowd": 0})
    target = data.draw(st.sampled_from(targets), label="target")
    items = gt["annotations"] if target == "gt" else results
    i = data.draw(st.integers(0, len(items) - 1), label="index")
    key, value, says = data.draw(st.sampled_from(_BAD_GT if target == "gt" else _BAD_RES),
                                 label="bad field")
    items[i][key] = value
    where = f"annotations[{i}] (id {items[i]['id']!r})" if target == "gt" else f"[{i}]"
    if key == "id":
        where = f"annotations[{i}] (id {value!r})"
    for fn in SIDES:
        with pytest.raises(ValueError, match=says) as exc:
            fn(gt, results)
        _check_error(exc, f"{target}: {where}.{key}")
    if isinstance(value, float) and not np.isfinite(value):
        return_json = False  # JSON has no NaN / inf literal that pycocotools' files would hold
    else:
        return_json = True
    if return_json:
        with tempfile.TemporaryDirectory() as d:
            gpath, rpath = os.path.join(d, "gt.json"), os.path.join(d, "res.json")
            with open(gpath, "w") as f:
                json.dump(gt, f)
            with open(rpath, "w") as f:
                json.dump(results, f)
            with pytest.raises(ValueError, match=says) as exc:
                R.coco_evaluate(gpath, rpath)
            _check_error(exc, f"{gpath if target == 'gt' else rpath}: {where}.{key}")


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("content,says", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (bytes(range(256)) * 4, "not UTF-8"),
    (b'{"images": [{"id": ' + b"9" * 5000 + b"}]}", "bad JSON value"),
    (b'{"images": [', "broken JSON"),
    (b'[1, 2]', "expected a COCO object"),
])
def test_hostile_gt_files(tmp_path, content, says):
    p = _write(tmp_path, "gt.json", content)
    for fn in SIDES:
        with pytest.raises(ValueError, match=says) as exc:
            fn(p, [])
        _check_error(exc, str(p))


def test_hostile_results_files(tmp_path):
    gt, _ = _EDGE
    for content, says in ((b"[" * 50_000, "nested too deeply|broken JSON"),
                          (b"\xff\xfe\x00", "not UTF-8"), (b'{"a": 1}', "expected a list")):
        p = _write(tmp_path, "res.json", content)
        for fn in SIDES:
            with pytest.raises(ValueError, match=says) as exc:
                fn(gt, p)
            _check_error(exc, str(p))
    with pytest.raises(ValueError, match="cannot read"):
        R.coco_evaluate(gt, tmp_path / "missing.json")


def test_structure_errors_named():
    gt, res = _EDGE
    cases = [
        (dict(gt, images=[{"id": 1}, "x"]), res, r"gt: images\[1\]: expected an object"),
        (dict(gt, images=[{"id": 1}, {"id": "2"}]), res, r"images\[1\]\.id: '2'.*integers"),
        (dict(gt, annotations={"a": 1}), res, "annotations: expected a list"),
        (dict(gt, categories=[{"name": "x"}]), res, r"categories\[0\]\.id: missing key"),
        (gt, res + [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}],
         r"results: \[4\]\.image_id: image 99 is not in the ground truth"),
        (gt, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], r"\[0\]\.score: missing"),
    ]
    for g, r, says in cases:
        for fn in SIDES:
            with pytest.raises(ValueError, match=says) as exc:
                fn(g, r)
            _check_error(exc)


@pytest.mark.parametrize("kw,says", [
    ({"iou_thrs": [2.0]}, "iou_thrs: expected values within"),
    ({"iou_thrs": [-0.1, 0.5]}, "iou_thrs"), ({"iou_thrs": [float("nan")]}, "iou_thrs"),
    ({"iou_thrs": []}, "iou_thrs: expected at least one"), ({"iou_thrs": "0.5"}, "iou_thrs"),
    ({"iou_thrs": [[0.5]]}, "iou_thrs"), ({"iou_thrs": [True]}, "iou_thrs"),
    ({"rec_thrs": [1.5]}, "rec_thrs"), ({"rec_thrs": ["0.5"]}, "rec_thrs"),
    ({"max_dets": [1, 10.5, 100]}, "max_dets: expected integers"),
    ({"max_dets": [100.0]}, "max_dets"), ({"max_dets": [0, 10]}, "max_dets"),
    ({"max_dets": [True, 10, 100]}, "max_dets"), ({"max_dets": []}, "max_dets"),
    ({"max_dets": 100}, "max_dets"),
    ({"area_rng": [[10, 5]] * 4}, r"area_rng\[0\]: expected lo <= hi"),
    ({"area_rng": [[0, float("nan")]] * 4}, r"area_rng\[0\]"),
    ({"area_rng": [[0, 1, 2]] * 4}, r"area_rng\[0\]"), ({"area_rng": []}, "area_rng"),
    ({"area_rng": [[0, 1e10]]}, "area_rng_lbl: needed for 1"),
    ({"area_rng": [[0, 1e10]], "area_rng_lbl": ["all", "small"]}, "area_rng_lbl: 2 labels for 1"),
    ({"area_rng_lbl": ["all", "all", "a", "b"]}, "area_rng_lbl: labels must be distinct"),
    ({"area_rng_lbl": "all"}, "area_rng_lbl"),
    ({"use_cats": "no"}, "use_cats"),
    ({"img_ids": [99]}, "img_ids: 99 is not in the ground truth"),
    ({"img_ids": ["1"]}, "img_ids: '1'.*integers"), ({"img_ids": [1.5]}, "img_ids"),
    ({"cat_ids": [1, 1], "use_cats": False}, "cat_ids: with use_cats=False"),
    ({"cat_ids": [7]}, "cat_ids: 7 is not in the ground truth"),
])
def test_bad_params_named(kw, says):
    gt, res = _EDGE
    for fn in SIDES:
        with pytest.raises(ValueError, match=says) as exc:
            fn(gt, res, **kw)
        _check_error(exc)


def test_iou_threshold_bounds_are_inclusive():
    """0 and 1 are valid thresholds (IoU >= 0 matches any GT of the group; 1 needs 1 - 1e-10)."""
    gt, res = _EDGE
    ev = pycocotools_evaluate(gt, res, iou_thrs=[0.0, 1.0])
    for fn in SIDES:
        _assert_equal_to_oracle(fn(gt, res, iou_thrs=[0.0, 1.0]), ev, "bounds")


def test_missing_label_with_repeated_max_dets_is_minus_one():
    """pycocotools' ``s[..., aind, mind]`` raises for aind = [] and two mind: defined as -1."""
    gt, res = _EDGE
    kw = {"max_dets": [1, 100, 100], "area_rng": [[0, 1e10]], "area_rng_lbl": ["all"]}
    ev = pycocotools_evaluate(gt, res, **kw)
    assert ev.stats is None
    for fn in SIDES:
        ours = fn(gt, res, **kw)
        _assert_equal_to_oracle(ours, ev, kw)
        stats = _np(ours.stats)
        assert stats[6] > -1 and np.all(stats[[3, 4, 5, 9, 10, 11]] == -1)
