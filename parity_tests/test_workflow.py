"""The user's workflow end to end: make a data set, train on its train split, predict the val
split, evaluate the predictions, with images identified by file at every step.

- a short training run (``torch_impl.train.train``), then ``predict --data --split val`` with
  the trainer's validation settings, then ``evaluate``: the same COCO numbers as the in-training
  validation of the same weights (``validate``: conf 0.001, IoU 0.6, max_det 300);
- perfect predictions written through predict's own formats (COCO JSON, YOLO txt) score 1.0
  against any ground truth of those images, whatever ids it uses;
- a prediction set and a ground truth that are not the same images stop with exit 2 and a
  message with counts and example names; ``--intersection`` evaluates the shared images;
- ``import-yolov5`` -> ``predict`` from the command line; an official state_dict or a stray
  file given to ``predict`` is one line naming the file.
"""
import json
from pathlib import Path

import pytest
import torch

from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy.cli import evaluate as evaluate_cli
from ref_numpy.cli import main as yolo_ref
from ref_numpy.shared.cli import EXIT_OK, EXIT_USAGE
from ref_numpy.shared.datayaml import read_split, split_images
from ref_numpy.shared.protocols import match_images
from ref_numpy.shared.shapes import generate
from torch_impl.data import DetectionDataset, collate_fn
from torch_impl.models import to_yolov5_state_dict, yolov5
from torch_impl.train import TrainConfig, predict, train
from torch_impl.train.engine import validate
from torch_impl.train.inference import PredictResult, load_model

IMG = 64
VAL_SETTINGS = dict(conf_thres=0.001, iou_thres=0.6, max_det=300)  # engine.validate's defaults


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A generated shapes set (12 images, 6 train / 6 val, with annotations.json), two epochs
    of training at 64 px, and predict of the val split with validation's settings."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("workflow")
    root = tmp / "shapes"
    generate(root, n_images=12, size=96, seed=3, split=0.5, formats=True)
    data = root / "dataset.yaml"
    result = train(TrainConfig(
        data=str(data), model="n", img_size=IMG, epochs=2, batch_size=6, nbs=6,
        optimizer="AdamW", lr0=0.01, warmup_epochs=0, augment=False, autoanchor=False,
        workers=0, threads=1, device="cpu", quiet=True, plots=False, out=str(tmp / "run")))
    assert result.ok and result.last is not None
    pred = tmp / "pred"
    res = predict(result.last, data=data, split="val", out=pred, img_size=IMG, device="cpu",
                  draw=False, save_txt=True, batch_size=12, **VAL_SETTINGS)
    return {"root": root, "data": data, "weights": result.last, "pred": pred, "res": res,
            "tmp": tmp}


def _evaluate(tmp: Path, *args) -> tuple[int, dict | None]:
    out = tmp / f"eval_{abs(hash(args))}.json"
    code = evaluate_cli.main([*map(str, args), "--json", str(out)])
    return code, (json.loads(out.read_text()) if code == EXIT_OK else None)


def test_predict_then_evaluate_reproduces_the_training_validation(run):
    """predict --data --split val + evaluate (JSON and txt) = validate() on the same weights,
    and the mAPs the trainer stored in the checkpoint."""
    model, _ = load_model(run["weights"], "cpu")
    ds = DetectionDataset.from_yaml(run["data"], "val", img_size=IMG, augment=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=12, shuffle=False,  # as the trainer
                                         collate_fn=collate_fn)
    val = validate(model, loader, "cpu", **VAL_SETTINGS)
    ckpt = torch.load(run["weights"], weights_only=True)
    assert_parity([ckpt["map50"], ckpt["map"]], [val["map50"], val["map"]],
                  name="workflow.validation_map", tol=EXACT)
    assert len(run["res"].results) > 0  # the model detects something at conf > 0.001
    print("in-training validation stats:", [round(float(v), 4) for v in val["result"].stats])
    trained = [float(v) for v in val["result"].stats]
    for pred in (run["pred"] / "results.json", run["pred"] / "labels"):
        code, doc = _evaluate(run["tmp"], "--data", run["data"], "--split", "val", "--pred", pred)
        assert code == EXIT_OK, pred
        stats = list(doc["protocols"]["coco"]["stats"].values())
        assert_parity(stats, trained, name="workflow.predict_evaluate", tol=EXACT)
        assert doc["n_images"] == 6 and doc["summary"][0]["class"] == "all"
    # the same through evaluate --weights (predict in-process, same settings by default)
    code, doc = _evaluate(run["tmp"], "--data", run["data"], "--split", "val", "--weights",
                          run["weights"], "--img-size", IMG)
    assert code == EXIT_OK
    assert_parity(list(doc["protocols"]["coco"]["stats"].values()), trained,
                  name="workflow.predict_evaluate", tol=EXACT)


def _perfect(gt, file_of) -> PredictResult:
    res = PredictResult(categories=gt.categories)
    for im in gt.images:
        det = [[x, y, x + w, y + h, 1.0, a["category_id"]]
               for a in gt.annotations if a["image_id"] == im["id"]
               for x, y, w, h in [a["bbox"]]]
        res.add(file_of(im), im["width"], im["height"], det)
    return res


def test_perfect_predictions_through_predicts_formats_score_one(run, tmp_path):
    """The ground truth of the val split as detections, written by PredictResult (predict's
    writer), scores 1.0 against the split and against annotations.json (other ids, other file
    names) with --intersection; the files name the images, so the ids need not line up."""
    gt = read_split(run["data"], "val")
    out = _perfect(gt, lambda im: im["file_name"]).write(tmp_path / "perfect", save_txt=True)
    for pred in (out / "results.json", out / "labels"):
        code, doc = _evaluate(tmp_path, "--data", run["data"], "--split", "val", "--pred", pred)
        assert code == EXIT_OK
        assert doc["protocols"]["coco"]["stats"]["AP"] == 1.0, pred
        code, doc = _evaluate(tmp_path, "--gt", run["root"] / "annotations.json", "--pred", pred,
                              "--intersection")
        assert code == EXIT_OK
        assert doc["n_images"] == 6 and doc["protocols"]["coco"]["stats"]["AP"] == 1.0, pred
        assert any("--intersection" in n and "6 ground-truth" in n for n in doc["notes"])


def test_mismatched_image_sets_stop_with_a_clear_message(run, capsys):
    """Val predictions against the train split share no image; against the whole set they
    cover 6 of 12: both exit 2 naming counts and examples (the bug was AP 0.000, silently)."""
    results = run["pred"] / "results.json"
    train_imgs = split_images(run["data"], "train")
    code, _ = _evaluate(run["tmp"], "--data", run["data"], "--split", "train", "--pred", results)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "share no image" in err and "(6 images)" in err and train_imgs[0].name in err
    code, _ = _evaluate(run["tmp"], "--gt", run["root"] / "annotations.json", "--pred", results)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "6 ground-truth images have no predictions" in err and "--intersection" in err
    assert train_imgs[0].name in err
    # the txt directory is the same story
    code, _ = _evaluate(run["tmp"], "--data", run["data"], "--split", "train", "--pred",
                        run["pred"] / "labels")
    assert code == EXIT_USAGE and "share no image" in capsys.readouterr().err
    # ids only (a plain COCO results file) that the ground truth does not have
    plain = run["tmp"] / "ids_only.json"
    plain.write_text(json.dumps([{"image_id": 99, "category_id": 0, "bbox": [1, 1, 4, 4],
                                  "score": 0.5}]))
    code, _ = _evaluate(run["tmp"], "--data", run["data"], "--split", "val", "--pred", plain)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "id 99" in err and str(plain) in err


def test_match_images_levels():
    """By file name, then base name, then stem; a stem two ground-truth images share is
    ambiguous; ids when the predictions name no file."""
    gt = [{"id": 7, "file_name": "a.jpg"}, {"id": 8, "file_name": "sub/b.png"},
          {"id": 9, "file_name": "x/c.jpg"}, {"id": 10, "file_name": "y/c.png"}]
    m = match_images(gt, [{"id": 1, "file_name": "/data/images/a.jpg"},
                          {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.gif"}])
    assert m.pred_to_gt == {1: 7, 2: 8} and m.by == "stem" and m.ambiguous == ["c.gif"]
    assert not m.ok and m.only_gt == ["x/c.jpg", "y/c.png"]
    m = match_images(gt, [{"id": 3, "file_name": "c.jpg"}], complete=False)
    assert m.pred_to_gt == {3: 9} and m.by == "name" and m.ok
    m = match_images(gt, [{"id": 7, "file_name": None}], complete=False)
    assert m.by == "id" and m.pred_to_gt == {7: 7} and m.ok


def test_import_yolov5_then_predict_from_the_command_line(run, tmp_path, capsys):
    """An "official" state_dict (our YOLOv5n in the official key layout) -> import-yolov5 ->
    predict; the official file itself and a stray file are one line naming the file."""
    official = tmp_path / "official_sd.pt"
    torch.manual_seed(0)
    torch.save(dict(to_yolov5_state_dict(yolov5("n", nc=3))), official)
    ours = tmp_path / "ours.pt"
    assert yolo_ref(["import-yolov5", str(official), str(ours), "--variant", "n", "--names",
                     str(run["data"])]) == EXIT_OK
    assert "predict --weights" in capsys.readouterr().out
    out = tmp_path / "pred"
    assert yolo_ref(["predict", "--weights", str(ours), "--data", str(run["data"]), "--split",
                     "val", "--img-size", str(IMG), "--conf-thres", "0.001", "--device", "cpu",
                     "--out", str(out), "--save-txt", "--quiet"]) == EXIT_OK
    table = json.loads((out / "images.json").read_text())
    assert [c["name"] for c in table["categories"]] == ["rectangle", "ellipse", "triangle"]
    assert len(list((out / "labels").glob("*.txt"))) == 6 and len(list(out.glob("*.jpg"))) == 6
    assert all("file_name" in r for r in json.loads((out / "results.json").read_text()))
    capsys.readouterr()
    stray = tmp_path / "stray.pt"
    torch.save({"hello": 1}, stray)
    for bad, words in ((official, "import-yolov5"), (stray, "not a yolo-ref model file")):
        assert yolo_ref(["predict", "--weights", str(bad), "--source", str(run["root"] / "images"),
                         "--out", str(tmp_path / "x"), "--device", "cpu"]) == EXIT_USAGE
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and str(bad) in err[0] and words in err[0], err


def test_import_train_predict_evaluate_chain_from_the_command_line(run, tmp_path, capsys):
    """The issue's chain on one data set, every step a ``yolo-ref`` subcommand: an official
    state_dict -> ``import-yolov5`` -> ``train --weights --freeze`` -> ``predict --data --split
    val`` -> ``evaluate --data --split val``; the evaluation is of exactly the predicted images."""
    official = tmp_path / "official_sd.pt"
    torch.manual_seed(1)
    torch.save(dict(to_yolov5_state_dict(yolov5("n", nc=3))), official)
    imported = tmp_path / "imported.pt"
    data = str(run["data"])
    assert yolo_ref(["import-yolov5", str(official), str(imported), "--variant", "n", "--names",
                     data]) == EXIT_OK
    out = tmp_path / "runs"
    assert yolo_ref(["train", "--data", data, "--weights", str(imported), "--freeze", "10",
                     "--img-size", str(IMG), "--epochs", "1", "--batch-size", "6", "--nbs", "6",
                     "--workers", "0", "--threads", "1", "--no-augment", "--noautoanchor",
                     "--no-plots", "--quiet", "--device", "cpu", "--out", str(out)]) == EXIT_OK
    best = out / "weights" / "last.pt"
    assert best.is_file(), capsys.readouterr().out
    pred = tmp_path / "pred"
    assert yolo_ref(["predict", "--weights", str(best), "--data", data, "--split", "val",
                     "--img-size", str(IMG), "--conf-thres", "0.001", "--iou-thres", "0.6",
                     "--device", "cpu", "--out", str(pred), "--quiet"]) == EXIT_OK
    code, report = _evaluate(tmp_path, "--data", data, "--split", "val", "--pred",
                             pred / "results.json")
    assert code == EXIT_OK, capsys.readouterr().err
    assert report is not None
    n_val = len(split_images(run["data"], "val"))
    assert len(json.loads((pred / "images.json").read_text())["images"]) == n_val
