"""YOLOv8 n/s/m/l/x (``torch_impl.models.yolov8``, ``--arch yolov8``): the official parameter
counts, a state_dict that maps one to one onto the official ``DetectionModel``'s, eval-mode
outputs equal to the official model's given the same weights (when ultralytics is installed),
``yolo-ref import-yolov8`` -> ``predict``, and an overfit run that round-trips train ->
checkpoint -> predict -> evaluate."""
import json
import os
from pathlib import Path

import pytest
import torch

from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy.cli import evaluate as evaluate_cli
from ref_numpy.cli import main as yolo_ref
from ref_numpy.shared.cli import EXIT_OK, EXIT_USAGE
from ref_numpy.shared.shapes import STEM, write_image
from torch_impl import coder
from torch_impl.models import (V8_VARIANTS, YOLOv8, load_yolov8_state_dict, to_yolov8_state_dict,
                               yolov8, yolov8_parameter_count)
from torch_impl.train import TrainConfig, load_checkpoint, predict, train
from torch_impl.train.inference import load_model

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "fixtures" / "shapes"
# The official summaries (cfg/models/v8/yolov8.yaml), 80 classes.
OFFICIAL_PARAMETERS = {"n": 3_157_200, "s": 11_166_560, "m": 25_902_640, "l": 43_691_520,
                       "x": 68_229_648}


@pytest.mark.parametrize("variant", sorted(V8_VARIANTS))
def test_parameter_counts_equal_the_official_ones(variant):
    with torch.device("meta"):  # no memory, no init cost
        model = yolov8(variant)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETERS[variant]
    assert yolov8_parameter_count(variant) == OFFICIAL_PARAMETERS[variant]
    # the 16 DFL weights are parameters (counted) that do not train
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["head.dfl.conv.weight"]


def test_state_dict_is_the_official_layout_in_the_official_order():
    model = yolov8("n", nc=3)
    sd = to_yolov8_state_dict(model)
    assert len(sd) == len(model.state_dict()) == 355
    layers = [int(k.split(".")[1]) for k in sd]
    assert layers == sorted(layers) and set(layers) == set(range(23)) - {10, 11, 13, 14, 17, 20}
    assert list(sd)[:2] == ["model.0.conv.weight", "model.0.bn.weight"]
    assert list(sd)[-1] == "model.22.dfl.conv.weight"
    assert torch.equal(sd["model.22.dfl.conv.weight"].flatten(), torch.arange(16.0))
    # round trip into a fresh model: the same tensors; a wrong variant or nc names the key
    other = load_yolov8_state_dict(yolov8("n", nc=3), {k: v.clone() for k, v in sd.items()})
    for k, v in model.state_dict().items():
        assert_parity(other.state_dict()[k], v, name="yolov8.state_dict", tol=EXACT)
    with pytest.raises(ValueError, match=r"'model\.22\.cv3\.0\.2\.weight' has shape"):
        load_yolov8_state_dict(yolov8("n", nc=4), sd)
    with pytest.raises(ValueError, match=r"model\.0\.conv\.weight"):
        load_yolov8_state_dict(yolov8("s", nc=3), sd)


def test_eval_output_is_the_v8_decode_of_the_raw_maps():
    torch.manual_seed(0)
    model = yolov8("n", nc=3).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        decoded, raw = model(x)
    a = 8 * 12 + 4 * 6 + 2 * 3
    assert decoded.shape == (2, 4 + 3, a) and [r.shape[1] for r in raw] == [64 + 3] * 3
    # the same through the toolkit's coder (DFL expectation, dist2bbox about cell centres)
    flat = torch.cat([r.flatten(2) for r in raw], 2).transpose(1, 2)  # [bs, A, no]
    points, strides = coder.make_anchors([r.shape[2:] for r in raw], torch.tensor([8.0, 16, 32]))
    xywh = coder.dist2bbox(coder.dfl_decode(flat[..., :64], 16), points, xywh=True) * strides
    want = torch.cat((xywh, flat[..., 64:].sigmoid()), 2).transpose(1, 2)
    assert_parity(decoded, want, name="models.yolov8_decode")


# ----------------------------------------------------------------------------- the official package

def _official(variant: str, nc: int = 80):
    pytest.importorskip("ultralytics")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import DetectionModel
    return DetectionModel(f"yolov8{variant}.yaml", nc=nc, verbose=False)


@pytest.mark.parametrize("variant", sorted(V8_VARIANTS))
def test_official_state_dict_maps_one_to_one_and_outputs_are_equal(variant):
    """Recorded (ultralytics 8.4.190, CPU float32, every scale): max |ours - official| = 0.0."""
    off = _official(variant)
    torch.manual_seed(1)
    with torch.no_grad():  # BatchNorm statistics and affines away from their init
        for m in off.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    sd = off.state_dict()
    ours = load_yolov8_state_dict(yolov8(variant), sd)
    assert list(to_yolov8_state_dict(ours)) == list(sd)  # one to one, in order
    assert sum(p.numel() for p in off.parameters()) == OFFICIAL_PARAMETERS[variant]
    x = torch.rand(2, 3, 128, 96)
    off.eval()
    ours.eval()
    with torch.no_grad():
        want, got = off(x)[0], ours(x)[0]
    print(f"yolov8{variant}: max |ours - official| = {float((got - want).abs().max()):.3g}")
    assert_parity(got, want, name="yolov8.official_output", tol=EXACT)


# ----------------------------------------------------------------------------- import, train, predict

def test_import_yolov8_then_predict(tmp_path, capsys):
    torch.manual_seed(0)
    src = yolov8("n", nc=3).eval()
    official = tmp_path / "official_sd.pt"
    torch.save({k: v.clone() for k, v in to_yolov8_state_dict(src).items()}, official)
    ours = tmp_path / "ours.pt"
    names = tmp_path / "names.txt"
    names.write_text("rectangle\nellipse\ntriangle\n")
    assert yolo_ref(["import-yolov8", str(official), str(ours), "--variant", "n", "--names",
                     str(names)]) == EXIT_OK
    assert "yolov8n, nc=3 (rectangle, ellipse, triangle)" in capsys.readouterr().out
    model, got_names = load_model(ours)
    assert isinstance(model, YOLOv8) and got_names == ["rectangle", "ellipse", "triangle"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert_parity(model(x)[0], src(x)[0], name="yolov8.import", tol=EXACT)
    # predict reads the official file with the command that converts it; a wrong variant is exit 2
    img = sorted((SHAPES / "images").iterdir())[0]
    assert yolo_ref(["predict", "--weights", str(official), "--source", str(img),
                     "--out", str(tmp_path / "p")]) == EXIT_USAGE
    assert "yolo-ref import-yolov8" in capsys.readouterr().err
    assert yolo_ref(["import-yolov8", str(official), str(tmp_path / "bad.pt"), "--variant",
                     "s"]) == EXIT_USAGE
    assert "model.0.conv.weight" in capsys.readouterr().err
    assert yolo_ref(["predict", "--weights", str(ours), "--source", str(img), "--img-size", "64",
                     "--device", "cpu", "--out", str(tmp_path / "p"), "--no-draw"]) == EXIT_OK


# Four generated 160 px shapes images (``write_image(root, 0, i, 160)``), 13 objects, 4-5 per class,
# each >= 24 px: TAL assigns a GT only to anchor points inside it, so a box under ~2 strides
# gets few or none. The fixture images tried first (0010, 0011, 0006, 0003: 6 objects, one or
# two per class) made the bar a coin toss: at 30 epochs seeds 0-3 reached 1.0 / 0.888 / 1.0 /
# 1.0 (0.888 = one class at AP 2/3, a single false positive ranked above a true one), and 40
# epochs did not change seed 1. With these images and 40 epochs, seeds 0-7 all reached 1.0,
# the first epoch >= 0.9 being 13-28 (validation still swings between epochs, e.g. 1.0 -> 0.40).
OVERFIT_IMAGES = (11, 14, 148, 173)
OVERFIT = dict(img_size=160, epochs=40, repeats=4, lr0=0.005)


def _generated_images(root: Path, indices, size: int) -> list[str]:
    """Images ``indices`` of the shapes set of seed 0 at ``size`` px, as ``make-shapes`` writes them."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in indices:
        write_image(root, 0, i, size)
    return [str((root / "images" / f"{STEM.format(i)}.jpg").resolve()) for i in indices]


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """``--arch yolov8 --model n`` on 4 generated images (each seen ``repeats`` times an epoch,
    batches of 4), validated on themselves."""
    tmp = tmp_path_factory.mktemp("v8fit")
    imgs = _generated_images(tmp / "shapes", OVERFIT_IMAGES, OVERFIT["img_size"])
    (tmp / "train.txt").write_text("\n".join(imgs * OVERFIT["repeats"]) + "\n")
    (tmp / "val.txt").write_text("\n".join(imgs) + "\n")
    data = tmp / "data.yaml"
    data.write_text(f"train: {tmp / 'train.txt'}\nval: {tmp / 'val.txt'}\nnc: 3\n"
                    "names: [rectangle, ellipse, triangle]\n")
    result = train(TrainConfig(
        data=str(data), arch="yolov8", model="n", img_size=OVERFIT["img_size"],
        epochs=OVERFIT["epochs"], batch_size=4, nbs=4, optimizer="AdamW", lr0=OVERFIT["lr0"],
        lrf=0.1, cos_lr=True, warmup_epochs=0, weight_decay=0, augment=False, precise_bn=2,
        seed=0, workers=0, threads=1, device="cpu", quiet=True, plots=False,
        out=str(tmp / "run")))
    assert result.ok and len(result.history) == OVERFIT["epochs"]
    return tmp, data, result


def test_yolov8n_overfits_four_images_and_round_trips_to_evaluate(overfit_run):
    tmp, data, result = overfit_run
    best = load_checkpoint(result.best)
    rows = (result.out / "results.csv").read_text().splitlines()
    print("yolov8n overfit results.csv:\n" + "\n".join(rows))
    assert rows[0].split(",")[1:4] == ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    assert best["model_cfg"]["arch"] == "yolov8" and best["args"]["arch"] == "yolov8"
    assert best["map50"] >= 0.9, rows
    # checkpoint -> predict (validation's settings) -> evaluate: the mAP the trainer logged
    pred = tmp / "pred"
    predict(result.best, data=data, split="val", out=pred, img_size=OVERFIT["img_size"],
            conf_thres=0.001, iou_thres=0.6, max_det=300, device="cpu", draw=False)
    out = tmp / "eval.json"
    assert evaluate_cli.main(["--data", str(data), "--split", "val", "--pred",
                              str(pred / "results.json"), "--json", str(out)]) == EXIT_OK
    stats = json.loads(out.read_text())["protocols"]["coco"]["stats"]
    assert_parity(list(stats.values())[:2], [best["map"], best["map50"]],
                  name="workflow.predict_evaluate", tol=EXACT)
