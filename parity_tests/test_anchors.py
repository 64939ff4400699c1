"""Tests of ``anchors.py`` (YOLOv5 autoanchor), reference and port.

- ``kmean_anchors``: reference == port for the same seed (scipy k-means and the NumPy draws are
  shared; mutation, fitness and acceptance are computed independently), the k-means and the
  random-init paths both;
- known values: the fit boundary ``x == 1/thr`` does not count, YOLOv5's 0.98 rule refits at
  exactly 0.98, label sizes at the training size;
- properties: BPR in [0, 1] and <= aat <= K, BPR = fitness = 1 when the anchors are the labels,
  fitness non-decreasing under evolution, anchors sorted by area and >= 2 px, reproducible seeds;
- bad input: ValueError naming the argument, on both sides;
- the CLI ``yolo-ref anchors`` (``ref_numpy.cli.anchors``) on the shapes fixture.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import event, example, find, given, note, settings
from hypothesis import strategies as st

import ref_numpy.anchors as R
import torch_impl.anchors as T
from parity_tests import strategies as S
from parity_tests.sides import REF, get_side
from parity_tests.tolerances import EXACT, assert_parity, to_numpy

ROOT = Path(__file__).resolve().parents[1]
PORT = get_side("torch")
SIDES = [pytest.param(REF, id="ref"), pytest.param(PORT, id="port")]


# ----------------------------------------------------------------------------- kmean_anchors parity

DUPLICATES = np.array([[30.0, 40.0]] * 12)  # zero std: random init
FEW = np.array([[10.0, 12.0], [50.0, 40.0], [200.0, 120.0]])  # fewer labels than anchors


@settings(max_examples=25)
@given(wh=S.fit_label_sizes(), n=st.integers(1, 9), gen=st.integers(0, 50),
       seed=st.integers(0, 2 ** 32 - 1), thr=st.sampled_from([4.0, 3.0]))
@example(wh=DUPLICATES, n=3, gen=20, seed=0, thr=4.0)
@example(wh=FEW, n=9, gen=20, seed=1, thr=4.0)
@example(wh=np.array([[1.0, 1.5], [2.0, 1.0], [300.0, 5.0]]), n=2, gen=10, seed=2, thr=4.0)
def test_kmean_anchors_equals_reference(wh, n, gen, seed, thr):
    try:
        ref = R.kmean_anchors(wh, n=n, gen=gen, seed=seed, thr=thr, verbose=True)
    except ValueError:  # every label < 2 px: the port must refuse too
        with pytest.raises(ValueError, match="^wh:"):
            PORT.run("anchors.kmean_anchors", (wh,), dict(n=n, gen=gen, seed=seed, thr=thr, verbose=True))
    else:
        port = PORT.run("anchors.kmean_anchors", (wh,), dict(n=n, gen=gen, seed=seed, thr=thr, verbose=True))
        event(f"init={ref['init']}")
        event(f"improved={bool(ref['history'][-1] > ref['history'][0])}")
        assert_parity(port, ref, name="anchors.kmean_anchors", dtype="float64",
                      inputs=dict(wh=wh, n=n, gen=gen, seed=seed, thr=thr))


def test_kmean_anchors_fallbacks_are_random_init():
    for wh, n in ((DUPLICATES, 3), (FEW, 9)):
        for side in (REF, PORT):
            assert side.call("anchors.kmean_anchors", wh, n=n, gen=0)["init"] == "random"
    assert R.kmean_anchors(FEW, n=3, gen=0)["init"] == "kmeans"


@pytest.mark.cuda
def test_kmean_anchors_on_cuda_equals_reference():
    wh = np.exp(np.random.default_rng(0).normal(3.5, 0.8, size=(200, 2)))
    ref = R.kmean_anchors(wh, n=9, gen=100, seed=5)
    port = get_side("torch", device="cuda").run("anchors.kmean_anchors", (wh,), dict(n=9, gen=100, seed=5))
    assert port["anchors"].device.type == "cuda"
    assert_parity(port, ref, name="anchors.kmean_anchors", dtype="float64")


# ----------------------------------------------------------------------------- known values

@pytest.mark.parametrize("side", SIDES)
def test_fit_boundary_is_strict(side):
    anchors = np.array([[10.0, 10.0]])
    # x == 1/4 exactly (a side 4x the anchor): not a fit, as YOLOv5's `best > 1/thr`.
    at = side.call("anchors.anchor_metrics", np.array([[40.0, 10.0], [10.0, 2.5]]), anchors)
    inside = side.call("anchors.anchor_metrics", np.array([[39.5, 10.0], [10.0, 2.6]]), anchors)
    assert_parity(at, {"bpr": np.float64(0.0), "aat": np.float64(0.0)}, tol=EXACT)
    assert_parity(inside, {"bpr": np.float64(1.0), "aat": np.float64(1.0)}, tol=EXACT)


@pytest.mark.parametrize("side", SIDES)
def test_default_anchors_known_values(side):
    # The metric agrees with build_targets' matching rule (max(r, 1/r).max() < anchor_t):
    # (10, 13) fits (10, 13), (16, 30), (33, 23); (1000, 1000) fits (373, 326); (2000, 20) none.
    wh = np.array([[10.0, 13.0], [1000.0, 1000.0], [2000.0, 20.0]])
    anchors = R.YOLOV5_ANCHORS
    r = wh[:, None] / anchors.reshape(-1, 2)[None]
    fits = (np.maximum(r, 1 / r).max(-1) < 4).sum(1)
    assert fits.tolist() == [3, 1, 0]
    out = side.call("anchors.anchor_metrics", wh, anchors)
    assert_parity(out, {"bpr": np.float64(2.0) / 3, "aat": np.float64(4.0) / 3}, tol=EXACT)


@pytest.mark.parametrize("side", SIDES)
def test_refit_rule_is_bpr_at_most_098(side):
    anchors = np.array([[10.0, 10.0]])
    fit, far = np.array([[10.0, 10.0]]), np.array([[100.0, 100.0]])
    exactly_098 = np.concatenate([fit.repeat(49, 0), far])  # 49 / 50 == 0.98 in float64
    above = np.concatenate([fit.repeat(99, 0), far])  # 0.99
    refit, bpr, _ = side.call("anchors.check_anchors", exactly_098, anchors)
    assert float(bpr) == 0.98 and refit is True
    refit, bpr, _ = side.call("anchors.check_anchors", above, anchors)
    assert float(bpr) == 0.99 and refit is False


@pytest.mark.parametrize("side", SIDES)
def test_wh_from_labels_known_values(side):
    wh = np.array([[0.5, 0.5], [0.25, 1.0]])
    shapes = np.array([[640.0, 320.0], [100.0, 400.0]])  # (width, height)
    idx = np.array([0, 1])
    out = side.call("anchors.wh_from_labels", wh, idx, shapes, img_size=640)
    assert_parity(out, np.array([[320.0, 160.0], [40.0, 640.0]]), tol=EXACT)
    aug = to_numpy(side.call("anchors.wh_from_labels", wh, idx, shapes, img_size=640, augment=True, seed=3))
    scale = aug / to_numpy(out)
    assert np.all((scale >= 0.9) & (scale < 1.1))
    assert scale[0, 0] == scale[0, 1] and scale[1, 0] == scale[1, 1]  # one factor per image
    again = to_numpy(side.call("anchors.wh_from_labels", wh, idx, shapes, img_size=640, augment=True, seed=3))
    assert_parity(again, aug, tol=EXACT)


# ----------------------------------------------------------------------------- properties

@pytest.mark.parametrize("side", SIDES)
@given(data=S.anchors_and_labels(), thr=st.sampled_from([4.0, 2.0]))
def test_metrics_bounds(side, data, thr):
    wh, anchors = data
    m = side.call("anchors.anchor_metrics", wh, anchors, thr=thr)
    bpr, aat = float(m["bpr"]), float(m["aat"])
    k = anchors.reshape(-1, 2).shape[0]
    assert 0.0 <= bpr <= 1.0
    assert bpr <= aat <= k
    f = float(side.call("anchors.anchor_fitness", anchors, wh, thr=thr))
    assert 0.0 <= f <= bpr  # best <= 1 and best counts only where it fits


@pytest.mark.parametrize("side", SIDES)
@given(wh=S.label_sizes(max_n=12, lo=0.5, hi=800.0))
def test_labels_as_anchors_give_full_recall(side, wh):
    m = side.call("anchors.anchor_metrics", wh, wh)
    assert float(m["bpr"]) == 1.0
    assert float(side.call("anchors.anchor_fitness", wh, wh)) == 1.0


@pytest.mark.parametrize("side", SIDES)
@settings(max_examples=10)
@given(wh=S.label_sizes(min_n=2, max_n=30, lo=2.5, hi=400.0), n=st.integers(1, 6),
       seed=st.integers(0, 2 ** 32 - 1))
@example(wh=np.array([[3.0, 4.0], [30.0, 20.0], [300.0, 100.0], [5.0, 200.0]]), n=3, seed=0)
def test_evolution_properties(side, wh, n, seed):
    out = side.call("anchors.kmean_anchors", wh, n=n, gen=40, seed=seed, verbose=True)
    k, hist = to_numpy(out["anchors"]), to_numpy(out["history"])
    note(f"init={out['init']}")
    assert k.shape == (n, 2)
    assert np.all(np.diff(hist) >= 0), "fitness decreased under evolution"
    assert hist[-1] == float(out["fitness"]) >= hist[0]
    assert np.all(np.diff(k.prod(1)) >= 0), "anchors not sorted by area"
    # k-means centroids of labels >= 2.5 px are >= 2.5 px, and mutations are clipped at 2 px;
    # only the random fallback (upstream's too) may start below 2 px.
    floor = R.MIN_SIDE if out["init"] == "kmeans" else min(R.MIN_SIDE, float(k.min()))
    assert np.all(k >= floor)
    assert float(side.call("anchors.anchor_fitness", k, wh)) == float(out["fitness"])
    assert out["n_used"] == wh.shape[0] and out["n_small"] == int((wh < 3).any(1).sum())


@pytest.mark.parametrize("side", SIDES)
def test_seed_reproducible_and_generator_accepted(side):
    wh = np.exp(np.random.default_rng(1).normal(3.0, 0.7, size=(60, 2)))
    a = side.call("anchors.kmean_anchors", wh, n=6, gen=30, seed=7)
    b = side.call("anchors.kmean_anchors", wh, n=6, gen=30, seed=np.random.default_rng(7))
    c = side.call("anchors.kmean_anchors", wh, n=6, gen=30, seed=8)
    assert_parity(b, a, tol=EXACT)
    assert not np.array_equal(to_numpy(c["anchors"]), to_numpy(a["anchors"]))


def test_anchor_fitness_has_gradient():
    wh = PORT.to_inputs(np.array([[10.0, 20.0], [30.0, 25.0], [100.0, 90.0]]), "float64")
    anchors = PORT.to_inputs(np.array([[12.0, 18.0], [90.0, 80.0]]), "float64").requires_grad_()
    T.anchor_fitness(anchors, wh).backward()
    assert anchors.grad is not None and torch.isfinite(anchors.grad).all()
    assert bool((anchors.grad != 0).any())


# ----------------------------------------------------------------------------- strategies

@given(data=S.anchors_and_labels(), labels=S.yolo_label_sets())
def test_strategies_draw_valid_inputs(data, labels):
    wh, anchors = data
    assert wh.ndim == 2 and wh.shape[1] == 2 and wh.shape[0] >= 1 and np.all(wh > 0)
    assert anchors.shape[-1] == 2 and anchors.size and np.all(anchors > 0)
    nwh, idx, shapes = labels
    assert np.all(nwh > 0) and np.all(nwh <= 1) and np.all(shapes > 0)
    assert idx.shape == (nwh.shape[0],) and np.all((idx >= 0) & (idx < shapes.shape[0]))


def test_boundary_ties_are_reachable():
    def has_tie(data):  # some label at x == 1/4 exactly with some anchor, at float32 too
        wh, anchors = (a.astype(np.float32) for a in data)
        r = wh[:, None] / anchors.reshape(-1, 2)[None]
        return bool((np.minimum(r, 1 / r).min(-1) == np.float32(0.25)).any())

    assert has_tie(find(S.anchors_and_labels(), has_tie))


# ----------------------------------------------------------------------------- bad input

GOOD_WH = np.array([[10.0, 20.0], [30.0, 40.0]])
GOOD_A = np.array([[12.0, 18.0]])
BAD = [
    ("anchor_metrics", (np.array([[10.0, 0.0]]), GOOD_A), {}, "wh"),
    ("anchor_metrics", (np.array([[10.0, -1.0]]), GOOD_A), {}, "wh"),
    ("anchor_metrics", (np.ones((3, 3)), GOOD_A), {}, "wh"),
    ("anchor_metrics", (np.ones(2), GOOD_A), {}, "wh"),
    ("anchor_metrics", (np.zeros((0, 2)), GOOD_A), {}, "wh"),
    ("anchor_metrics", (np.array([[np.nan, 1.0]]), GOOD_A), {}, "wh"),
    ("anchor_metrics", (GOOD_WH, np.array([[1.0, 0.0]])), {}, "anchors"),
    ("anchor_metrics", (GOOD_WH, np.ones((2, 3))), {}, "anchors"),
    ("anchor_metrics", (GOOD_WH, np.zeros((0, 2))), {}, "anchors"),
    ("anchor_metrics", (GOOD_WH, GOOD_A), {"thr": 0.0}, "thr"),
    ("check_anchors", (GOOD_WH, GOOD_A), {"bpr_threshold": float("nan")}, "bpr_threshold"),
    ("check_anchors", (GOOD_WH, -GOOD_A), {}, "anchors"),
    ("anchor_fitness", (GOOD_A, np.ones((2, 1))), {}, "wh"),
    ("anchor_fitness", (GOOD_A, GOOD_WH), {"thr": -4.0}, "thr"),
    ("kmean_anchors", (GOOD_WH,), {"n": 0}, "n"),
    ("kmean_anchors", (GOOD_WH,), {"n": 2.5}, "n"),
    ("kmean_anchors", (GOOD_WH,), {"gen": -1}, "gen"),
    ("kmean_anchors", (GOOD_WH,), {"img_size": 0}, "img_size"),
    ("kmean_anchors", (GOOD_WH,), {"thr": float("inf")}, "thr"),
    ("kmean_anchors", (np.array([[1.0, 1.5]]),), {}, "wh"),  # nothing >= 2 px to fit
    ("kmean_anchors", (np.array([[1.0, -1.5]]),), {}, "wh"),
    ("wh_from_labels", (np.array([[0.5, 0.0]]), np.array([0]), np.array([[64.0, 64.0]])), {}, "wh"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([1]), np.array([[64.0, 64.0]])), {},
     "image_index"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([0.0]), np.array([[64.0, 64.0]])), {},
     "image_index"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([0, 0]), np.array([[64.0, 64.0]])), {},
     "image_index"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([0]), np.array([[64.0, 0.0]])), {},
     "shapes"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([0]), np.array([64.0, 64.0])), {},
     "shapes"),
    ("wh_from_labels", (np.array([[0.5, 0.5]]), np.array([0]), np.array([[64.0, 64.0]])),
     {"img_size": -640}, "img_size"),
]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("fn,args,kwargs,arg", BAD,
                         ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(side, fn, args, kwargs, arg):
    # integer arrays stay integer, floating ones float64 (tensors for the port)
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        side.call(f"anchors.{fn}", *args, **kwargs)


# ----------------------------------------------------------------------------- CLI

def _cli():
    return importlib.import_module("ref_numpy.cli.anchors")  # `yolo-ref anchors`


def test_cli_reports_and_fits(capsys):
    cli = _cli()
    assert cli.main(["--data", str(ROOT / "fixtures" / "shapes"), "--img-size", "320"]) == 0
    out = capsys.readouterr().out
    assert "BPR" in out and "anchors/target" in out
    code = cli.main(["--data", str(ROOT / "fixtures" / "shapes"), "--img-size", "320", "--fit",
                     "--gen", "30", "--no-progress", "--backend", "torch"])
    out = capsys.readouterr().out
    assert code == 0
    assert "anchors:" in out and out.count("# P") == 3  # yaml rows, three levels of 3


def test_cli_bad_input_exit_code(capsys):
    cli = _cli()
    assert cli.main(["--data", str(ROOT / "fixtures" / "shapes"), "--anchors", "10,13,16"]) == 2
    assert "anchors" in capsys.readouterr().err
    assert cli.main(["--data", str(ROOT / "does-not-exist")]) == 2


def test_cli_strict_exit_code(capsys):
    cli = _cli()
    data = str(ROOT / "fixtures" / "shapes")
    assert cli.main(["--data", data, "--img-size", "320", "--strict"]) == 0  # BPR 1.0
    assert cli.main(["--data", data, "--anchors", "4,4, 8,8", "--strict"]) == 1  # poor fit
    assert "refit advised" in capsys.readouterr().out
