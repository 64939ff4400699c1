"""Tests of ``scripts/evaluate.py``, the evaluation CLI, run in-process through its ``main(argv)``.

On the committed fixture (``fixtures/shapes``) with the CLI's synthetic predictions: the COCO
summary it prints and the stats it writes equal real pycocotools' on the same files (both
backends); the three GT formats, auto-detected or named, give exactly the same numbers, and so
do COCO and YOLO predictions and predictions in reverse order; the torch and reference backends
agree on every protocol (table tolerances, no fallback to the reference); the JSON document has
the expected keys; ``--protocol all`` prints every protocol and only the reasons that apply
(crowd, difficult, maxDets and conf lines appear when the data has them); empty predictions and
empty GT are defined; plots are written; bad paths and malformed files exit 2 with a message
naming the file.
"""
import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy import formats

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "shapes"
ANNOTATIONS = FIXTURE / "annotations.json"


def _load_cli():
    spec = importlib.util.spec_from_file_location("evaluate_cli", ROOT / "scripts" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = _load_cli()


def _run(capsys, *argv) -> tuple:
    """(exit code, stdout, stderr) of ``main(argv)``."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _pycocotools(gt_path, results_path) -> tuple:
    """(stats, summary lines) of pycocotools on the two files, its prints captured."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(results_path))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(" Average ")]
    return ev.stats, lines


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
    assert list(coco["stats"]) == [key for key, *_ in cli.COCO_STATS]
    assert_parity(np.array(list(coco["stats"].values())), stats, name="evaluate.coco_stats",
                  tol=EXACT)
    # The synthetic predictions are not trivially perfect or empty.
    assert 0.2 < stats[0] < 0.95 and 0.2 < stats[1] < 1.0


def test_synthetic_predictions_are_deterministic(synthetic):
    gt = formats.read_coco(ANNOTATIONS)
    a = cli.synthetic_predictions(gt, seed=0)
    b = formats.read_coco_results(synthetic["pred"], gt)
    assert [x["bbox"] for x in a.annotations] == [x["bbox"] for x in b.annotations]
    assert [x["score"] for x in a.annotations] == [x["score"] for x in b.annotations]
    c = cli.synthetic_predictions(gt, seed=1)
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
    every protocol: Ultralytics' matching sees them sorted by score per image, as its NMS
    returns them (its label-to-lowest-index rule would otherwise favour input order)."""
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
    others = {"COCO (pycocotools)", "PASCAL VOC2007", "PASCAL VOC2012", "Ultralytics"} - {
        title.replace(" 8.4", "")}
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
    assert doc["notes"] == [], "a protocol fell back to the reference: the port lacks a function"


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
    pred = cli.synthetic_predictions(gt, seed=0)
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
    for proto in cli.PROTOCOLS:
        assert doc["protocols"][proto]["map50"] == 0.0
    gt = formats.read_coco(ANNOTATIONS)
    gt.annotations = []
    formats.write_coco(gt, tmp_path / "no_boxes.json")
    assert cli.main(["--gt", str(tmp_path / "no_boxes.json"), "--synthetic-pred", "--protocol",
                     "all", "--backend", "ref", "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    assert doc["n_pred"] > 0  # the false positives of the synthetic predictions
    for proto in cli.PROTOCOLS:
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
