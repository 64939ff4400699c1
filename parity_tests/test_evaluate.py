"""Tests of ``yolo-ref evaluate`` (:mod:`ref_numpy.cli.evaluate`), run in-process through its
``main(argv)``, and of the library it formats (:mod:`ref_numpy.shared.protocols`,
:mod:`ref_numpy.shared.synthetic`).

On the committed fixture (``fixtures/shapes``) with the CLI's synthetic predictions: the COCO
summary it prints and the stats it writes equal real pycocotools' on the same files (both
backends); the three GT formats, auto-detected or named, give exactly the same numbers, and so
do COCO and YOLO predictions and predictions in reverse order; the torch and reference backends
agree on every protocol (table tolerances, no fallback to the reference); the JSON document has
the expected keys; ``--protocol all`` prints every protocol and only the reasons that apply
(crowd, difficult, maxDets and conf lines appear when the data has them); empty predictions and
empty GT are defined; plots are written; bad paths and malformed files exit 2 with a message
naming the file. The structured reasons (:func:`explain_protocol_differences`), the options
(``--conf`` alias, ``--out``, defaults in ``--help``), the base install without torch or
matplotlib, the dispatcher and the thin ``scripts/evaluate.py`` wrapper are tested too.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ref_numpy.cli
import ref_numpy.cli.evaluate as cli
from parity_tests.oracles import pycocotools_evaluate
from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy import formats
from ref_numpy.shared.coco import COCO_STATS
from ref_numpy.shared.protocols import (PROTOCOLS, EvalData, MetricsBackend, ProtocolDifference,
                                        evaluate_protocols, explain_protocol_differences)
from ref_numpy.shared.synthetic import synthetic_predictions

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "shapes"
ANNOTATIONS = FIXTURE / "annotations.json"


def _run(capsys, *argv) -> tuple:
    """(exit code, stdout, stderr) of ``main(argv)``."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _pycocotools(gt_path, results_path) -> tuple:
    """(stats, summary lines) of pycocotools on the two files, its prints captured."""
    oracle = pycocotools_evaluate(gt_path, results_path)
    return oracle.stats, oracle.summary_lines


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The CLI's synthetic predictions for the fixture, saved as a COCO results file, and the
    JSON document of a ``--protocol all`` run with the reference backend on them."""
    d = tmp_path_factory.mktemp("evaluate")
    pred, doc = d / "pred.json", d / "all.json"
    code = cli.main(["--gt", str(ANNOTATIONS), "--synthetic-pred", "--save-pred", str(pred),
                     "--protocol", "all", "--backend", "ref", "--json", str(doc)])
    assert code == 0
    return {"dir": d, "pred": pred, "doc": json.loads(doc.read_text())}


# ----------------------------------------------------------------------------- COCO = pycocotools

@pytest.mark.parametrize("backend", ["ref", "torch"])
def test_coco_stats_equal_pycocotools(capsys, tmp_path, synthetic, backend):
    out_json = tmp_path / "coco.json"
    code, out, _ = _run(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"],
                        "--backend", backend, "--json", out_json)
    assert code == 0
    stats, lines = _pycocotools(ANNOTATIONS, synthetic["pred"])
    assert len(lines) == 12
    printed = out.splitlines()
    start = printed.index(lines[0])
    assert printed[start:start + 12] == lines, "the summary differs from pycocotools' text"
    coco = json.loads(out_json.read_text())["protocols"]["coco"]
    assert list(coco["stats"]) == [key for key, *_ in COCO_STATS]
    assert_parity(np.array(list(coco["stats"].values())), stats, name="evaluate.coco_stats",
                  tol=EXACT)
    # The synthetic predictions are not trivially perfect or empty.
    assert 0.2 < stats[0] < 0.95 and 0.2 < stats[1] < 1.0


def test_synthetic_predictions_are_deterministic(synthetic):
    gt = formats.read_coco(ANNOTATIONS)
    a = synthetic_predictions(gt, seed=0)
    b = formats.read_coco_results(synthetic["pred"], gt)
    assert [x["bbox"] for x in a.annotations] == [x["bbox"] for x in b.annotations]
    assert [x["score"] for x in a.annotations] == [x["score"] for x in b.annotations]
    c = synthetic_predictions(gt, seed=1)
    assert [x["bbox"] for x in a.annotations] != [x["bbox"] for x in c.annotations]
    # jittered copies, duplicates and false positives: more detections than kept GTs, valid
    # YOLO-writable boxes and scores in (0, 1]
    assert len(a.annotations) > 0.8 * len(gt.annotations)
    for x in a.annotations:
        assert x["bbox"][2] > 0 and x["bbox"][3] > 0 and 0.0 < x["score"] <= 1.0
        assert x["bbox"][0] >= 0 and x["bbox"][0] + x["bbox"][2] <= 320


# ----------------------------------------------------------------------------- formats agree

@pytest.mark.parametrize("gt", ["annotations.json", ".", "labels", "voc"])
def test_gt_formats_give_the_same_numbers(tmp_path, synthetic, gt):
    """COCO JSON, the YOLO data-set root, its labels dir and the VOC XML dir (class ids from
    classes.txt) evaluate to exactly the same numbers under every protocol."""
    out_json = tmp_path / "out.json"
    code = cli.main(["--gt", str(FIXTURE / gt), "--pred", str(synthetic["pred"]), "--protocol",
                     "all", "--backend", "ref", "--json", str(out_json)])
    assert code == 0
    doc = json.loads(out_json.read_text())
    assert doc["classes"] == synthetic["doc"]["classes"]
    assert_parity(doc["protocols"], synthetic["doc"]["protocols"], name="evaluate.formats",
                  tol=EXACT)


@pytest.mark.parametrize("gt, fmt, extra", [
    ("annotations.json", "coco", []),
    ("labels", "yolo", ["--images", str(FIXTURE / "images")]),
    ("voc", "voc", ["--names", str(FIXTURE / "classes.txt")])])
def test_explicit_formats(tmp_path, synthetic, gt, fmt, extra):
    out_json = tmp_path / "out.json"
    code = cli.main(["--gt", str(FIXTURE / gt), "--gt-format", fmt, "--pred",
                     str(synthetic["pred"]), "--pred-format", "coco", "--protocol", "all",
                     "--backend", "ref", "--json", str(out_json), *extra])
    assert code == 0
    assert_parity(json.loads(out_json.read_text())["protocols"],
                  synthetic["doc"]["protocols"], name="evaluate.formats", tol=EXACT)


def test_yolo_predictions_give_the_same_numbers(tmp_path, synthetic):
    """The same predictions as YOLO txt with a confidence column (exact reprs)."""
    gt = formats.read_coco(ANNOTATIONS)
    formats.write_yolo(formats.read_coco_results(synthetic["pred"], gt), tmp_path / "pred",
                       decimals=None)
    out_json = tmp_path / "out.json"
    code = cli.main(["--gt", str(ANNOTATIONS), "--pred", str(tmp_path / "pred"), "--protocol",
                     "all", "--backend", "ref", "--json", str(out_json)])
    assert code == 0
    assert_parity(json.loads(out_json.read_text())["protocols"],
                  synthetic["doc"]["protocols"], name="evaluate.formats", tol=EXACT)


def test_prediction_order_does_not_matter(tmp_path, synthetic):
    """The predictions in reverse order (no score ties in them) give the same numbers under
    every protocol: the matching of Ultralytics 8.3 (the default) sees them sorted by score per
    image, as its NMS returns them (its label-to-lowest-index rule would otherwise favour input order)."""
    results = json.loads(Path(synthetic["pred"]).read_text())
    assert len({r["score"] for r in results}) == len(results)
    reversed_pred = tmp_path / "reversed.json"
    reversed_pred.write_text(json.dumps(results[::-1]), encoding="utf-8")
    out_json = tmp_path / "out.json"
    code = cli.main(["--gt", str(ANNOTATIONS), "--pred", str(reversed_pred), "--protocol",
                     "all", "--backend", "ref", "--json", str(out_json)])
    assert code == 0
    assert_parity(json.loads(out_json.read_text())["protocols"],
                  synthetic["doc"]["protocols"], name="evaluate.order", tol=EXACT)


@pytest.mark.parametrize("protocol, title", [
    ("coco", "COCO (pycocotools)"), ("voc07", "PASCAL VOC2007"), ("voc12", "PASCAL VOC2012"),
    ("ultralytics", "Ultralytics 8.4")])
def test_single_protocol(capsys, synthetic, protocol, title):
    code, out, _ = _run(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"], "--protocol",
                        protocol, "--backend", "ref", "--ultralytics-version", "8.4")
    assert code == 0
    assert title in out and "why they differ" not in out
    others = {"COCO (pycocotools)", "PASCAL VOC2007", "PASCAL VOC2012", "Ultralytics 8.4"} - {title}
    assert not any(o in out for o in others)


def test_backends_agree(tmp_path, synthetic):
    """torch_impl and ref_numpy give the same numbers for every protocol (table tolerances)."""
    out_json = tmp_path / "torch.json"
    code = cli.main(["--gt", str(ANNOTATIONS), "--pred", str(synthetic["pred"]), "--protocol",
                     "all", "--backend", "torch", "--json", str(out_json)])
    assert code == 0
    doc = json.loads(out_json.read_text())
    for proto, fn in (("coco", "coco_evaluate"), ("voc07", "voc_evaluate"),
                      ("voc12", "voc_evaluate"), ("ultralytics", "ap_per_class")):
        assert_parity(doc["protocols"][proto], synthetic["doc"]["protocols"][proto],
                      name=f"metrics.{fn}", dtype="float64")
    assert doc["reasons"] == synthetic["doc"]["reasons"]
    assert_parity(doc["differences"], synthetic["doc"]["differences"],
                  name="metrics.ap_per_class", dtype="float64")
    assert doc["notes"] == [], "a protocol fell back to the reference: the port lacks a function"
    assert_parity(doc["confusion_matrix"]["matrix"], synthetic["doc"]["confusion_matrix"]["matrix"],
                  name="metrics.confusion_matrix", tol=EXACT)


# ----------------------------------------------------------------------------- outputs

def test_json_has_the_expected_keys(synthetic):
    doc = synthetic["doc"]
    assert {"gt", "pred", "backend", "n_images", "n_gt", "n_pred", "classes", "protocols",
            "reasons", "notes", "confusion_matrix"} <= set(doc)
    assert doc["n_images"] == 32 and doc["n_gt"] == 138 and doc["pred"] == "synthetic"
    assert [c["name"] for c in doc["classes"]] == ["rectangle", "ellipse", "triangle"]
    assert sum(c["n_gt"] for c in doc["classes"]) == 138
    assert set(doc["protocols"]) == {"coco", "voc07", "voc12", "ultralytics"}
    coco = doc["protocols"]["coco"]
    assert len(coco["stats"]) == 12 and coco["map50"] == coco["stats"]["AP50"]
    assert {"id", "name", "ap", "ap50", "ap75"} <= set(coco["per_class"][0])
    for proto in ("voc07", "voc12"):
        assert doc["protocols"][proto]["map50_95"] is None
        assert 0.0 < doc["protocols"][proto]["map50"] <= 1.0
    ul = doc["protocols"]["ultralytics"]
    assert {"map50", "map50_95", "precision", "recall", "per_class"} <= set(ul)
    assert ul["map50_95"] < ul["map50"]
    cm = np.array(doc["confusion_matrix"]["matrix"])
    assert cm.shape == (4, 4)
    # every non-difficult GT lands in exactly one cell of its (true) column
    assert cm[:, :3].sum() == 138
    assert doc["reasons"]


def test_protocol_all_prints_every_protocol_and_reasons(capsys, synthetic):
    code, out, _ = _run(capsys, "--gt", FIXTURE, "--pred", synthetic["pred"], "--protocol",
                        "all", "--backend", "ref")
    assert code == 0
    for title in ("COCO (pycocotools)", "PASCAL VOC2007", "PASCAL VOC2012", "Ultralytics 8.3",
                  "side by side:", "why they differ on this data:"):
        assert title in out
    table = out[out.index("side by side:"):]
    for proto in ("coco", "voc07", "voc12", "ultralytics"):
        assert f"\n{proto} " in table
    reasons = [ln for ln in table.splitlines() if ln.startswith("  - ")]
    assert len(reasons) >= 1
    # only reasons that apply: the fixture has no crowd or difficult boxes
    assert not any("crowd" in ln or "difficult GTs" in ln for ln in reasons)


def test_reasons_follow_the_data(tmp_path, capsys):
    """A crowd box, a difficult box and a detection over COCO's 100 per (image, class) make
    their reason lines appear, with the counts."""
    gt = formats.read_coco(ANNOTATIONS)
    gt.annotations[0]["iscrowd"] = 1
    gt.annotations[1]["difficult"] = 1
    formats.write_coco(gt, tmp_path / "gt.json")
    pred = synthetic_predictions(gt, seed=0)
    extra = [{"id": 10_000 + i, "image_id": 1, "category_id": 0, "bbox": [1.0, 1.0, 5.0, 5.0],
              "area": 25.0, "iscrowd": 0, "score": 0.0005} for i in range(101)]
    pred.annotations = pred.annotations + extra
    formats.write_coco_results(pred, tmp_path / "pred.json")
    code, out, _ = _run(capsys, "--gt", tmp_path / "gt.json", "--pred", tmp_path / "pred.json",
                        "--protocol", "all", "--backend", "ref")
    assert code == 0
    assert "crowd GTs: 1 " in out
    assert "difficult GTs: 1 " in out
    assert "detections beyond COCO's maxDets=100 per (image, class): " in out
    assert "101 detections with conf <= 0.001" in out


def test_empty_predictions_and_empty_ground_truth(tmp_path):
    """No detections: every protocol gives 0 (pycocotools' loadRes would crash on []); no GT
    boxes: every mAP is undefined (null), as pycocotools' -1."""
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    out_json = tmp_path / "out.json"
    assert cli.main(["--gt", str(ANNOTATIONS), "--pred", str(empty), "--protocol", "all",
                     "--backend", "ref", "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    for proto in PROTOCOLS:
        assert doc["protocols"][proto]["map50"] == 0.0
    gt = formats.read_coco(ANNOTATIONS)
    gt.annotations = []
    formats.write_coco(gt, tmp_path / "no_boxes.json")
    assert cli.main(["--gt", str(tmp_path / "no_boxes.json"), "--synthetic-pred", "--protocol",
                     "all", "--backend", "ref", "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    assert doc["n_pred"] > 0  # the false positives of the synthetic predictions
    for proto in PROTOCOLS:
        assert doc["protocols"][proto]["map50"] is None
    assert doc["protocols"]["coco"]["stats"]["AP"] == -1.0


def test_plots_are_written(capsys, tmp_path, synthetic):
    plots = tmp_path / "plots"
    code, _, _ = _run(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"], "--plots", plots,
                      "--backend", "ref")
    assert code == 0
    for name in ("PR_curve.png", "F1_curve.png", "confusion_matrix.png"):
        f = plots / name
        assert f.is_file() and f.stat().st_size > 1000
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_has_examples(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "exit codes:" in out


# ----------------------------------------------------------------------------- bad input -> 2

def _bad(capsys, *argv) -> str:
    code, _, err = _run(capsys, *argv)
    assert code == 2, err
    return err


def test_missing_paths_exit_2(capsys, tmp_path, synthetic):
    missing = tmp_path / "nope.json"
    assert str(missing) in _bad(capsys, "--gt", missing, "--synthetic-pred")
    assert str(missing) in _bad(capsys, "--gt", ANNOTATIONS, "--pred", missing)
    assert "--gt" in _bad(capsys, "--synthetic-pred")            # usage error from argparse
    assert "--names" in _bad(capsys, "--gt", ANNOTATIONS, "--synthetic-pred", "--names", missing)
    assert "--device" in _bad(capsys, "--gt", ANNOTATIONS, "--synthetic-pred", "--device",
                              "no-such-device")
    assert "--device" in _bad(capsys, "--gt", ANNOTATIONS, "--synthetic-pred", "--backend",
                              "torch", "--device", "no-such-device")


def test_malformed_files_exit_2_naming_the_file(capsys, tmp_path, synthetic):
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [', encoding="utf-8")
    assert str(broken) in _bad(capsys, "--gt", broken, "--synthetic-pred")
    assert str(broken) in _bad(capsys, "--gt", ANNOTATIONS, "--pred", broken)

    unknown = tmp_path / "unknown_image.json"
    unknown.write_text(json.dumps([{"image_id": 999, "category_id": 0, "bbox": [1, 1, 5, 5],
                                    "score": 0.5}]), encoding="utf-8")
    err = _bad(capsys, "--gt", ANNOTATIONS, "--pred", unknown)
    assert str(unknown) in err and "999" in err

    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "shapes_0000.txt").write_text("0 0.5 0.5 0.2\n", encoding="utf-8")
    err = _bad(capsys, "--gt", labels, "--images", FIXTURE / "images", "--synthetic-pred")
    assert str(labels / "shapes_0000.txt") in err

    # GT labels (5 columns) given as predictions: no confidence
    err = _bad(capsys, "--gt", ANNOTATIONS, "--pred", FIXTURE / "labels")
    assert str(FIXTURE / "labels") in err and "confidence" in err

    # a format named explicitly that the path does not hold
    err = _bad(capsys, "--gt", ANNOTATIONS, "--gt-format", "voc", "--synthetic-pred")
    assert str(ANNOTATIONS) in err
    err = _bad(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"], "--pred-format", "yolo")
    assert str(synthetic["pred"]) in err

    xml = tmp_path / "voc"
    xml.mkdir()
    (xml / "a.xml").write_text("<annotation><filename>a.jpg</filename>", encoding="utf-8")
    assert str(xml / "a.xml") in _bad(capsys, "--gt", xml, "--synthetic-pred")


# ----------------------------------------------------------------------------- options

def test_conf_is_an_alias_of_conf_thres(tmp_path, synthetic):
    """The old spelling ``--conf`` sets the same option as ``--conf-thres`` (hidden in --help)."""
    docs = []
    for opt in ("--conf", "--conf-thres"):
        out_json = tmp_path / f"{opt.strip('-')}.json"
        assert cli.main(["--gt", str(ANNOTATIONS), "--pred", str(synthetic["pred"]), "--protocol",
                         "ultralytics", opt, "0.3", "--json", str(out_json)]) == 0
        docs.append(json.loads(out_json.read_text()))
    assert docs[0]["protocols"]["ultralytics"]["conf"] == 0.3
    assert docs[0]["protocols"] == docs[1]["protocols"]
    default = synthetic["doc"]["protocols"]["ultralytics"]
    assert default["conf"] == 0.001 and default["n_predictions"] > docs[0]["protocols"][
        "ultralytics"]["n_predictions"]


def test_help_shows_defaults_and_common_options(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for text in ("--conf-thres", "--backend {ref,torch}", "--out", "--json", "(default: coco)",
                 "(default: ref)", "(default: 0.001)", "(default: 300)"):
        assert text in out, text
    assert "--conf " not in out  # the old spelling works but is not advertised


def test_out_writes_the_json_and_the_plots(tmp_path, synthetic):
    out = tmp_path / "run"
    assert cli.main(["--gt", str(ANNOTATIONS), "--pred", str(synthetic["pred"]), "--protocol",
                     "all", "--out", str(out)]) == 0
    doc = json.loads((out / cli.JSON_NAME).read_text())
    assert_parity(doc["protocols"], synthetic["doc"]["protocols"], name="evaluate.formats",
                  tol=EXACT)
    assert sorted(Path(p).name for p in doc["plots"]) == [
        "F1_curve.png", "PR_curve.png", "confusion_matrix.png"]
    assert all((out / Path(p).name).is_file() for p in doc["plots"])


def test_plots_without_matplotlib_is_one_line_not_a_crash(capsys, tmp_path, synthetic,
                                                          monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    plots = tmp_path / "plots"
    code, out, err = _run(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"], "--plots",
                          plots)
    assert code == 0 and "COCO (pycocotools)" in out
    notes = [ln for ln in err.splitlines() if ln.strip()]
    assert len(notes) == 1 and "matplotlib" in notes[0] and "pip install" in notes[0]
    assert not plots.exists() or not any(plots.iterdir())


_NO_TORCH = """
import sys
sys.modules["torch"] = None  # a base install: import torch raises ImportError
from ref_numpy.cli import main
code = main(["evaluate", "--gt", sys.argv[1], "--synthetic-pred", "--protocol", "all"])
assert code == 0, code
assert sys.modules.get("torch") is None, "ref backend imported torch"
code = main(["evaluate", "--gt", sys.argv[1], "--synthetic-pred", "--backend", "torch"])
assert code == 2, code
print("no-torch ok")
"""


def test_default_backend_runs_without_torch():
    """``yolo-ref evaluate`` with the default backend (ref) needs no torch; ``--backend torch``
    without it exits 2 with the install hint."""
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, str(ANNOTATIONS)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "no-torch ok" in proc.stdout and "why they differ on this data:" in proc.stdout
    assert "yolo-ref[torch]" in proc.stderr


def test_dispatcher_and_thin_wrapper(capsys):
    assert ref_numpy.cli.main(["evaluate", "--help"]) == 0
    assert "yolo-ref evaluate" in capsys.readouterr().out
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--gt",
                           str(ANNOTATIONS), "--synthetic-pred", "--protocol", "voc12"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "PASCAL VOC2012" in proc.stdout
    assert len((ROOT / "scripts" / "evaluate.py").read_text().splitlines()) < 10


# ----------------------------------------------------------------------------- library

def _crowd_difficult_sets():
    gt = formats.read_coco(ANNOTATIONS)
    gt.annotations[0]["iscrowd"] = 1
    gt.annotations[1]["difficult"] = 1
    pred = synthetic_predictions(gt, seed=0)
    return gt, pred


def test_explain_protocol_differences_is_structured():
    """The reasons are records with a code, a count or effect, and the message the CLI prints;
    the crowd record carries COCO's mAP@0.5 with crowds as ordinary GTs, which differs from
    COCO's own."""
    gt, pred = _crowd_difficult_sets()
    data, backend = EvalData(gt, pred), MetricsBackend("ref")
    results = evaluate_protocols(data, backend)
    why = explain_protocol_differences(data, results, backend)
    assert all(isinstance(d, ProtocolDifference) for d in why)
    codes = [d.code for d in why]
    assert codes[:2] == ["crowd", "difficult"] and "integration" in codes
    assert len(set(codes)) == len(codes)
    by = {d.code: d for d in why}
    assert (by["crowd"].measure, by["crowd"].unit) == (1, "boxes")
    assert by["difficult"].measure == 1
    assert 0.0 <= by["crowd"].effect <= 1.0 and by["crowd"].effect != results["coco"]["map50"]
    assert f"{by['crowd'].effect:.3f}" in by["crowd"].message
    if "end_point" in by:
        ul = results["ultralytics"]["map50"]
        assert_parity(np.float64(by["end_point"].measure), np.float64(ul - by["end_point"].effect),
                      name="metrics.ap_per_class", dtype="float64")
    # only the Ultralytics 8.3 (default) settings change its reasons: a stricter conf adds detections to the count
    strict = explain_protocol_differences(data, results, backend, conf_thres=0.5)
    assert {d.code: d for d in strict}["nms_filters"].measure > by.get(
        "nms_filters", ProtocolDifference("", 0, "", None, "")).measure


def test_protocols_reject_unknown_names():
    gt, pred = _crowd_difficult_sets()
    with pytest.raises(ValueError, match="protocols"):
        evaluate_protocols(EvalData(gt, pred), MetricsBackend("ref"), ["coco", "voc2099"])
    with pytest.raises(ValueError, match="backend"):
        MetricsBackend("jax")


def test_synthetic_predictions_options():
    """``dets_per_image`` gives exactly that many detections per image; ``copies`` jittered
    copies per kept GT; ids are 1..N; the benchmark's set is deterministic in its seed."""
    from ref_numpy.shared.synthetic import synthetic_coco

    gt = formats.read_coco(ANNOTATIONS)
    exact = synthetic_predictions(gt, seed=3, dets_per_image=7)
    per_image = np.bincount([a["image_id"] for a in exact.annotations])
    assert set(per_image[[im["id"] for im in gt.images]]) == {7}
    assert [a["id"] for a in exact.annotations] == list(range(1, len(exact.annotations) + 1))
    three = synthetic_predictions(gt, seed=3, drop=0.0, duplicate=0.0, fp_per_image=0.0,
                                  copies=3)
    assert len(three.annotations) == 3 * len(gt.annotations)
    with pytest.raises(ValueError, match="copies"):
        synthetic_predictions(gt, copies=0)
    a, b = synthetic_coco(0.002, seed=5), synthetic_coco(0.002, seed=5)
    assert a == b and len(a[0]["images"]) == 10 and len(a[1]) == 10 * 100
    assert a != synthetic_coco(0.002, seed=6)


# ----------------------------------------------------------------------------- which images

def _named(records: list, gt: formats.DetectionSet, offset: int, prefix: str) -> list:
    """``records`` naming their image by file (as yolo-ref predict writes) with ids that do
    not line up with ``gt``'s."""
    name = {im["id"]: im["file_name"] for im in gt.images}
    return [{**r, "image_id": r["image_id"] + offset,
             "file_name": f"{prefix}/{name[r['image_id']]}"} for r in records]


def test_predictions_named_by_file_need_no_matching_ids(tmp_path, synthetic):
    """Results that name their images by file evaluate the same whatever their ids; a split
    of the data-set YAML (--data --split val) is the same as the whole set's COCO file cut to
    those images (--intersection)."""
    gt = formats.read_coco(ANNOTATIONS)
    records = json.loads(synthetic["pred"].read_text())
    shifted = tmp_path / "shifted.json"
    shifted.write_text(json.dumps(_named(records, gt, 1000, "/elsewhere/images")))
    code, doc = cli.main(["--gt", str(ANNOTATIONS), "--pred", str(shifted), "--protocol", "all",
                          "--json", str(tmp_path / "s.json")]), None
    assert code == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert_parity(doc["protocols"], synthetic["doc"]["protocols"], name="evaluate.formats",
                  tol=EXACT)
    # the val split: its records and an images table (as predict writes) beside them
    val_names = [ln.split("/")[-1] for ln in (FIXTURE / "val.txt").read_text().split()]
    val_ids = {im["id"] for im in gt.images if im["file_name"] in val_names}
    split_dir = tmp_path / "val"
    split_dir.mkdir()
    position = {im["id"]: val_names.index(im["file_name"]) + 1 for im in gt.images
                if im["id"] in val_ids}  # predict numbers its images 1..n
    (split_dir / "results.json").write_text(json.dumps([
        {**r, "image_id": position[r["image_id"]]} for r in _named(
            [r for r in records if r["image_id"] in val_ids], gt, 0, "x")]))
    (split_dir / "images.json").write_text(json.dumps({"images": [
        {"id": k + 1, "file_name": f"x/{n}", "width": 320, "height": 320}
        for k, n in enumerate(val_names)]}))
    docs = []
    for args in (["--data", FIXTURE / "dataset.yaml", "--split", "val"],
                 ["--gt", ANNOTATIONS, "--intersection"]):
        out = tmp_path / f"{len(docs)}.json"
        assert cli.main([*map(str, args), "--pred", str(split_dir / "results.json"),
                         "--json", str(out)]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["n_images"] == docs[1]["n_images"] == len(val_names)
    assert_parity(docs[0]["protocols"]["coco"]["stats"], docs[1]["protocols"]["coco"]["stats"],
                  name="evaluate.formats", tol=EXACT)
    assert docs[0]["protocols"]["coco"]["stats"]["AP"] > 0
    # without --intersection the whole set's file is a mismatch: exit 2 with the counts
    code, _, err = _run_with(cli.main, "--gt", ANNOTATIONS, "--pred", split_dir / "results.json")
    assert code == 2 and f"{len(gt.images) - len(val_names)} ground-truth images have no " \
        "predictions" in err and "--intersection" in err


def _run_with(main, *argv) -> tuple:
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_yolo_predictions_for_an_image_not_in_the_ground_truth(tmp_path, synthetic):
    """A YOLO prediction directory with a file for an unknown image: exit 2 naming it;
    --intersection evaluates the rest (the numbers of the directory without it) and says so."""
    gt = formats.read_coco(ANNOTATIONS)
    pred = formats.read_coco_results(synthetic["pred"], gt)
    labels = tmp_path / "labels"
    formats.write_yolo(pred, labels, decimals=None)
    ref_json = tmp_path / "ref.json"
    assert cli.main(["--gt", str(ANNOTATIONS), "--pred", str(labels), "--json",
                     str(ref_json)]) == 0
    (labels / "not_in_gt.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n")
    code, _, err = _run_with(cli.main, "--gt", ANNOTATIONS, "--pred", labels)
    assert code == 2 and "not_in_gt" in err and "1 predicted images are not in the ground " \
        "truth" in err
    out_json = tmp_path / "i.json"
    assert cli.main(["--gt", str(ANNOTATIONS), "--pred", str(labels), "--intersection",
                     "--json", str(out_json)]) == 0
    doc, ref = json.loads(out_json.read_text()), json.loads(ref_json.read_text())
    assert_parity(doc["protocols"], ref["protocols"], name="evaluate.formats", tol=EXACT)
    assert any("left out 1 predicted" in n for n in doc["notes"])


def test_summary_table_per_class(capsys, synthetic):
    """The closing table: all + one row per class, images with the class, instances (GTs),
    P, R and COCO's mAP@0.5 / mAP@0.5:0.95 (the 'all' row = COCO's summary)."""
    code, out, _ = _run(capsys, "--gt", ANNOTATIONS, "--pred", synthetic["pred"], "--json",
                        synthetic["dir"] / "summary.json")
    assert code == 0
    assert "class  images instances       P       R  mAP@0.5 mAP@0.5:0.95" in out
    doc = json.loads((synthetic["dir"] / "summary.json").read_text())
    rows = doc["summary"]
    gt = formats.read_coco(ANNOTATIONS)
    assert [r["class"] for r in rows] == ["all"] + [c["name"] for c in gt.categories]
    assert rows[0]["images"] == len(gt.images) and rows[0]["instances"] == len(gt.annotations)
    assert sum(r["instances"] for r in rows[1:]) == len(gt.annotations)
    for k, c in enumerate(gt.categories, 1):
        assert rows[k]["images"] == len({a["image_id"] for a in gt.annotations
                                         if a["category_id"] == c["id"]})
    coco = doc["protocols"]["coco"]
    assert rows[0]["map50"] == coco["map50"] and rows[0]["map50_95"] == coco["map50_95"]
    assert [r["map50"] for r in rows[1:]] == [c["ap50"] for c in coco["per_class"]]
