"""Training machinery (``torch_impl.train``: ``train(TrainConfig)``, ``predict``) and its CLIs
``yolo-ref train`` / ``yolo-ref predict`` (``torch_impl.cli``): YOLOv5 recipe pieces, atomic
weights-only checkpoints, exact resume, NaN stop (exit code 3), two-process DDP under torchrun,
missing matplotlib / tqdm, and an overfit run that proves the loop learns.

Torch only (no ``ref_numpy`` twin). Runs are in-process (``train(...)`` or ``main(argv)``)
except the distributed one; all use ``workers=0`` and ``quiet``.
"""
from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parity_tests.tolerances import EXACT, assert_parity, derived_tolerance, tolerance
from ref_numpy.cli import main as yolo_ref
from ref_numpy.shared.cli import EXIT_DIVERGED, EXIT_USAGE
from torch_impl.cli import predict as predict_cli
from torch_impl.cli import train as train_cli
from torch_impl.models import yolov5
from torch_impl.train import (NOT_RESUMED, ModelEMA, NonFiniteLossError, TrainConfig,
                              build_optimizer, get_rng_state, load_checkpoint, lr_lambda,
                              param_groups, precise_bn, predict, save_checkpoint, set_rng_state,
                              train)
from torch_impl.train.optim import HYP_SCRATCH_LOW, warmup_iters, warmup_step

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "fixtures" / "shapes"
TINY = ["--model", "n", "--depth-multiple", "0.33", "--width-multiple", "0.125"]



def _images(n: int) -> list[str]:
    lines = (SHAPES / "train.txt").read_text().split()
    return [str((SHAPES / p).resolve()) for p in lines[:n]]


def _data_yaml(tmp: Path, train: list[str], val: list[str]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "train.txt").write_text("\n".join(train) + "\n")
    (tmp / "val.txt").write_text("\n".join(val) + "\n")
    y = tmp / "data.yaml"
    y.write_text(f"train: {tmp / 'train.txt'}\nval: {tmp / 'val.txt'}\nnc: 3\n"
                 "names: [rectangle, ellipse, triangle]\n")
    return y


def _tiny_args(data: Path, project: Path, *extra: str) -> list[str]:
    return ["--data", str(data), *TINY, "--img-size", "64", "--epochs", "2", "--batch-size",
            "2", "--nbs", "4", "--optimizer", "SGD", "--warmup-epochs", "1", "--ema",
            "--seed", "3", "--workers", "0", "--device", "cpu", "--quiet", "--out",
            str(project), *extra]


def _tiny_config(data: Path, project: Path, **kw) -> TrainConfig:
    """The library twin of :func:`_tiny_args`."""
    base = dict(data=str(data), model="n", depth_multiple=0.33, width_multiple=0.125,
                img_size=64, epochs=2, batch_size=2, nbs=4, optimizer="SGD", warmup_epochs=1,
                ema=True, seed=3, workers=0, device="cpu", quiet=True, out=str(project))
    return TrainConfig(**(base | kw))


def _assert_same_state(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert_parity(b[k], a[k], name=f"train.{what}.{k}", tol=EXACT)


# ----------------------------------------------------------------------------- recipe pieces

def test_param_groups_cover_every_parameter_once_and_decay_only_weights():
    model = yolov5("n", nc=3, width_multiple=0.125)
    biases, weights, norms = param_groups(model)
    ids = [id(p) for p in biases + weights + norms]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith(".bias") for p in biases)
    assert all(".bn." in names[id(p)] and names[id(p)].endswith(".weight") for p in norms)
    assert all(p.ndim > 1 for p in weights)  # conv kernels only
    for name in ("SGD", "AdamW"):
        opt = build_optimizer(model, name, lr=0.01, momentum=0.9, weight_decay=0.05)
        assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.05, 0.0]
        assert [len(g["params"]) for g in opt.param_groups] == [len(biases), len(weights),
                                                                  len(norms)]
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="name"):
        build_optimizer(model, "Adam")


@settings(max_examples=30, deadline=None)
@given(epochs=st.integers(1, 300), lrf=st.floats(0.001, 1.0), cos=st.booleans(),
       frac=st.floats(0, 1))
def test_lr_lambda_goes_from_one_to_lrf_monotonically(epochs, lrf, cos, frac):
    f = lr_lambda(epochs, lrf, cos)
    tol = tolerance("train.lr_lambda", "float64")
    assert f(0) == 1.0
    assert_parity(np.float64(f(epochs)), np.float64(lrf), name="train.lr_lambda",
                  dtype="float64")
    e = frac * epochs
    later = min(e + 0.5, epochs)
    assert lrf - tol.atol <= f(e) <= 1.0 + tol.atol
    assert f(later) <= f(e) + tol.atol, (e, later)


def test_warmup_step_interpolates_lr_momentum_and_accumulation():
    model = yolov5("n", nc=3, width_multiple=0.125)
    opt = build_optimizer(model, "SGD", lr=0.01, momentum=0.937)
    for g in opt.param_groups:
        g["initial_lr"] = 0.01
    hyp = HYP_SCRATCH_LOW
    acc = warmup_step(opt, 0, 100, 1.0, hyp, accumulate_max=16)
    assert acc == 1
    assert [g["lr"] for g in opt.param_groups] == [hyp["warmup_bias_lr"], 0.0, 0.0]
    assert opt.param_groups[1]["momentum"] == hyp["warmup_momentum"]
    acc = warmup_step(opt, 100, 100, 0.5, hyp, accumulate_max=16)
    assert acc == 16
    assert [g["lr"] for g in opt.param_groups] == [0.005] * 3
    assert opt.param_groups[2]["momentum"] == hyp["momentum"]
    assert warmup_iters(0, 10) == 0 and warmup_iters(3, 10) == 100 and warmup_iters(3, 50) == 150


def test_model_ema_follows_the_decay_ramp():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    ema = ModelEMA(model, decay=0.9, tau=2.0)
    v0 = {k: v.clone() for k, v in ema.ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(4, 2, 5, 5))  # moves the BN running stats too
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1 / 2.0))
    assert ema.current_decay() == d
    w = model.state_dict()
    for k, v in ema.ema.state_dict().items():
        want = v0[k] * d + w[k] * (1 - d) if v.dtype.is_floating_point else v0[k]
        assert_parity(v, want, name="train.ModelEMA", dtype=str(v.dtype).split(".")[-1],
                      tol=None if v.dtype.is_floating_point else EXACT)
    assert not any(p.requires_grad for p in ema.ema.parameters())
    assert not ema.ema.training


def test_precise_bn_gives_the_plain_average_of_batch_statistics():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3, momentum=0.03)).eval()
    batches = [(torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8),) for _ in range(3)]
    assert precise_bn(model, batches, "cpu", 2) == 2
    per_batch = torch.stack([b[0].float().div(255).mean((0, 2, 3)) for b in batches[:2]])
    assert_parity(model[0].running_mean, per_batch.mean(0), name="train.precise_bn",
                  dtype="float32")
    assert model[0].momentum == 0.03  # restored
    assert not model.training  # the mode is restored too


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_is_atomic_weights_only_and_restores_rng(tmp_path, monkeypatch):
    path = tmp_path / "w" / "last.pt"
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    state = {"epoch": 1, "rng": get_rng_state(), "model": {"w": torch.arange(3.0)}}
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    save_checkpoint(state, path)
    loaded = torch.load(path, weights_only=True)  # plain types and tensors only
    set_rng_state(loaded["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    assert path.read_bytes() == before  # the old file survives a failed write
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp files left
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- CLI runs

def test_train_config_defaults_and_validation_name_the_field(tmp_path):
    c = TrainConfig(data="d.yaml")
    assert (c.model, c.head, c.img_size, c.epochs, c.batch_size, c.nbs, c.optimizer) == \
        ("n", "anchor", 640, 100, 16, 64, "SGD")
    assert (c.lr0, c.lrf, c.momentum, c.weight_decay, c.warmup_epochs) == tuple(
        HYP_SCRATCH_LOW[k] for k in ("lr0", "lrf", "momentum", "weight_decay", "warmup_epochs"))
    assert c.augment and c.autoanchor and c.plots and not (c.ema or c.amp or c.cos_lr)
    # the CLI's defaults are the dataclass's
    assert train_cli.config_from_args(train_cli.build_parser().parse_args(["--data", "d.yaml"])) \
        == c
    for kw, field in [({"img_size": 70}, "img_size"), ({"epochs": 0}, "epochs"),
                      ({"batch_size": 0}, "batch_size"), ({"lr0": float("nan")}, "lr0"),
                      ({"lr0": -1.0}, "lr0"), ({"momentum": 1.0}, "momentum"),
                      ({"optimizer": "Adam"}, "optimizer"), ({"model": "q"}, "model"),
                      ({"head": "none"}, "head"), ({"clip_grad": -1.0}, "clip_grad"),
                      ({"width_multiple": 0.0}, "width_multiple")]:
        with pytest.raises(ValueError, match=rf"^{field} \(--{field.replace('_', '-')}\)"):
            TrainConfig(data="d.yaml", **kw)
    with pytest.raises(ValueError, match="data"):
        TrainConfig()
    assert TrainConfig(resume="last.pt").data is None  # filled from the checkpoint


def test_train_help_and_bad_arguments(tmp_path, capsys):
    assert train_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "yolo-ref train" in out and "(default: 640)" in out
    assert train_cli.main(["--epochs", "x"]) == EXIT_USAGE  # argparse's own error
    assert "--epochs" in capsys.readouterr().err
    data = _data_yaml(tmp_path / "d", _images(2), _images(2))
    assert train_cli.main(_tiny_args(data, tmp_path / "p", "--img-size", "70")) == EXIT_USAGE
    assert "--img-size" in capsys.readouterr().err
    assert yolo_ref(["train", *_tiny_args(data, tmp_path / "p", "--img-size", "70")]) \
        == EXIT_USAGE
    assert "--img-size" in capsys.readouterr().err
    assert train_cli.main(["--resume", str(tmp_path / "none.pt")]) == EXIT_USAGE
    assert "none.pt: cannot read checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # nothing written for a bad configuration


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    full, part = tmp_path / "full", tmp_path / "part"
    result = train(_tiny_config(data, full))  # the library ...
    assert result.ok and result.last == full / "weights" / "last.pt"
    assert [h["epoch"] for h in result.history] == [1, 2]
    # ... the CLI, with the images cached in memory (--cache must change no bit of the run)
    assert train_cli.main(_tiny_args(data, part, "--debug-stop-after", "1", "--cache")) == 0
    interrupted = load_checkpoint(part / "weights" / "last.pt")
    assert interrupted["epoch"] == 0 and interrupted["args"]["cache"] is True
    assert train_cli.main(["--resume", str(part / "weights" / "last.pt"), "--workers", "0",
                           "--quiet", "--cache"]) == 0
    a = torch.load(full / "weights" / "last.pt", weights_only=True)
    b = torch.load(part / "weights" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1
    same = [k for k in a["args"] if k not in (*NOT_RESUMED, "out")]
    assert [a["args"][k] for k in same] == [b["args"][k] for k in same]  # config from ckpt
    _assert_same_state(a["model"], b["model"], "model")
    _assert_same_state(a["ema"]["ema"], b["ema"]["ema"], "ema")
    assert a["ema"]["updates"] == b["ema"]["updates"] > 0
    assert a["scheduler"] == b["scheduler"]
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert_parity(sb[k]["momentum_buffer"], sa[k]["momentum_buffer"],
                      name="train.optimizer", tol=EXACT)
    # the trained weights moved away from the initial ones
    init = yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.125).state_dict()
    assert any(not torch.equal(init[k], a["model"][k]) for k in init if k != "head.anchors")
    for run_dir in (full, part):
        rows = (run_dir / "results.csv").read_text().splitlines()
        assert len(rows) == 3 and rows[0].startswith("epoch,")
        assert (run_dir / "results.png").stat().st_size > 0
        assert (run_dir / "weights" / "best.pt").exists()


def test_non_finite_loss_stops_with_exit_code_and_keeps_last_checkpoint(tmp_path, capsys):
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    project = tmp_path / "p"
    # 2 steps an epoch: global step 3 is in the second epoch
    code = train_cli.main(_tiny_args(data, project, "--debug-nan-at-step", "3"))
    assert code == EXIT_DIVERGED == 3
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 1, step 3" in err and "last.pt" in err
    ckpt = load_checkpoint(project / "weights" / "last.pt")
    assert ckpt["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    # the library reports it in the result (nothing printed)
    result = train(_tiny_config(data, tmp_path / "q", debug_nan_at_step=1))
    assert not result.ok and isinstance(result.diverged, NonFiniteLossError)
    assert (result.diverged.epoch, result.diverged.step) == (0, 1)
    assert result.last is None and result.history == []  # diverged before the first checkpoint
    assert capsys.readouterr().err == ""


def test_training_without_matplotlib_or_tqdm_finishes_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "tqdm", None)
    data = _data_yaml(tmp_path / "d", _images(2), _images(2))
    project = tmp_path / "p"
    args = _tiny_args(data, project)
    args.remove("--quiet")  # asks for progress bars, which need tqdm
    assert train_cli.main(args) == 0
    err = capsys.readouterr().err
    assert err.count("results.png skipped") == 1 and "matplotlib" in err
    assert err.count("progress bar skipped") == 1 and "tqdm" in err
    assert len((project / "results.csv").read_text().splitlines()) == 3  # both epochs ran
    assert not (project / "results.png").exists()
    assert load_checkpoint(project / "weights" / "last.pt")["epoch"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_two_cpu_processes_hold_identical_weights(tmp_path):
    data = _data_yaml(tmp_path / "d", _images(8), _images(4))
    states = tmp_path / "states"
    args = _tiny_args(data, tmp_path / "p", "--debug-state-dir", str(states))
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--batch-size") + 1] = "4"  # 2 per process, 2 steps each
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={_free_port()}", str(ROOT / "scripts" / "train.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((states / "rank0.json").read_text())
    r1 = json.loads((states / "rank1.json").read_text())
    assert r0 == r1 and set(r0) == {"model", "ema"}
    assert "x2" in proc.stdout  # both ranks trained
    rows = (tmp_path / "p" / "results.csv").read_text().splitlines()
    assert len(rows) == 2


# ----------------------------------------------------------------------------- it learns

# Four fixture images whose 18 objects are all >= 8 px at 160 px, all three classes. The first four
# of train.txt hold three 3-4 px objects at 160 px: whether a YOLOv5n learns those in 240 steps
# depended on float rounding (best mAP@0.5 1.0 on one machine, 0.85 on CI's, 0.81 / 0.87 for seeds
# 1 / 2), so the bar measured the CPU, not the loop. With these images and 40 epochs, seeds 0-5 all
# reached 1.0, the first epoch at >= 0.9 being 17-22.
OVERFIT_IMAGES = ("shapes_0000.jpg", "shapes_0005.jpg", "shapes_0014.jpg", "shapes_0017.jpg")
OVERFIT_EPOCHS = 40


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """YOLOv5n on :data:`OVERFIT_IMAGES` (8 steps of 4 images an epoch), validated on themselves."""
    tmp = tmp_path_factory.mktemp("overfit")
    imgs = [str((SHAPES / "images" / name).resolve()) for name in OVERFIT_IMAGES]
    data = _data_yaml(tmp / "d", imgs * 8, imgs)
    project = tmp / "run"
    result = train(TrainConfig(
        data=str(data), model="n", img_size=160, epochs=OVERFIT_EPOCHS, batch_size=4, nbs=4,
        optimizer="AdamW", lr0=0.005, lrf=0.1, cos_lr=True, warmup_epochs=0, weight_decay=0,
        augment=False, precise_bn=2, seed=0, workers=0, threads=1, device="cpu", quiet=True,
        out=str(project)))
    assert result.ok and len(result.history) == OVERFIT_EPOCHS
    assert result.best == project / "weights" / "best.pt"
    assert result.best_fitness == max(h["fitness"] for h in result.history)
    return project, imgs


def test_overfit_reaches_map50_of_0_9_on_four_images(overfit_run):
    project, _ = overfit_run
    best = load_checkpoint(project / "weights" / "best.pt")
    rows = (project / "results.csv").read_text().splitlines()
    print("overfit results.csv:\n" + "\n".join(rows))
    assert best["map50"] >= 0.9, rows


def test_predict_maps_boxes_back_to_the_original_images(overfit_run, tmp_path):
    project, imgs = overfit_run
    out = tmp_path / "pred"
    src = tmp_path / "list.txt"
    src.write_text("\n".join(imgs) + "\n")
    assert predict_cli.main(["--weights", str(project / "weights" / "best.pt"), "--source",
                             str(src), "--img-size", "160", "--conf-thres", "0.25",
                             "--max-det", "50", "--device", "cpu", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    table = json.loads((out / "images.json").read_text())
    assert [im["file_name"] for im in table["images"]] == imgs
    assert {(im["width"], im["height"]) for im in table["images"]} == {(320, 320)}
    assert all(len(list(out.glob(f"{Path(p).stem}.jpg"))) == 1 for p in imgs)
    assert all(r["score"] >= 0.25 for r in results)
    assert [im["id"] for im in table["images"]] == list(range(1, len(imgs) + 1))
    per_image = [sum(r["image_id"] == i + 1 for r in results) for i in range(len(imgs))]
    assert max(per_image) <= 50
    # boxes are in the 320 px originals (the network saw 160 px) and match the labels
    from torch_impl.data import DetectionDataset
    from torch_impl.boxes import box_iou
    ds = DetectionDataset(src, img_size=160)
    hits = total = 0
    for i in range(len(imgs)):
        _, gt, gcls = ds.load(i)
        pred = [r for r in results if r["image_id"] == i + 1]
        pb = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in pred)],
                          dtype=torch.float64).reshape(-1, 4)
        pc = torch.tensor([r["category_id"] for r in pred]).reshape(-1)
        iou = box_iou(torch.as_tensor(gt), pb)
        same = torch.as_tensor(gcls)[:, None] == pc[None, :]
        hits += int(((iou > 0.5) & same).any(1).sum())
        total += len(gt)
    assert hits >= 0.8 * total, (hits, total)
    assert max(r["bbox"][0] + r["bbox"][2] for r in results) > 160  # original coordinates
    bad = ["--weights", str(tmp_path / "nope.pt"), "--source", str(src), "--out", str(out)]
    assert predict_cli.main(bad) == yolo_ref(["predict", *bad]) == EXIT_USAGE
    with pytest.raises(ValueError, match="nope.pt: cannot read checkpoint"):
        predict(tmp_path / "nope.pt", src)
    # the library: the same detections, returned (and nothing written without out)
    lib = predict(project / "weights" / "best.pt", src, img_size=160, conf_thres=0.25,
                  max_det=50, device="cpu")
    assert lib.out is None and lib.results == results and lib.images == table["images"]
    with pytest.raises(ValueError, match=r"img_size \(--img-size\)"):
        predict(project / "weights" / "best.pt", src, img_size=100)
    with pytest.raises(ValueError, match=r"conf_thres \(--conf-thres\)"):
        predict(project / "weights" / "best.pt", src, conf_thres=1.5)
    # the Ultralytics 8.3 / 8.4 name --conf still works
    assert predict_cli.main(["--weights", str(project / "weights" / "best.pt"), "--source",
                             str(src), "--img-size", "160", "--conf", "0.9", "--device", "cpu",
                             "--out", str(tmp_path / "pred9"), "--no-draw"]) == 0
    high = json.loads((tmp_path / "pred9" / "results.json").read_text())
    assert all(r["score"] >= 0.9 for r in high) and len(high) <= len(results)


# ----------------------------------------------------------------------------- anchor-free head

def test_anchor_free_head_trains_end_to_end(tmp_path):
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    project = tmp_path / "p"
    args = _tiny_args(data, project, "--head", "anchor-free")
    args[args.index("--img-size") + 1] = "96"
    assert train_cli.main(args) == 0
    rows = (project / "results.csv").read_text().splitlines()
    assert len(rows) == 3
    header = rows[0].split(",")
    assert header[:4] == ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss"]
    for row in rows[1:]:
        vals = dict(zip(header, row.split(",")))
        losses = [float(vals[f"train/{k}_loss"]) for k in ("box", "cls", "dfl")]
        assert all(math.isfinite(v) for v in losses), row
        assert losses[1] > 0  # the class term is never zero
        assert -1 <= float(vals["metrics/mAP_0.5"]) <= 1
    assert (project / "results.png").stat().st_size > 0
    ckpt = torch.load(project / "weights" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["args"]["head"] == "anchor-free"
    assert ckpt["model_cfg"]["head"] == "anchor-free" and ckpt["model_cfg"]["reg_max"] == 16
    assert ckpt["hyp"]["box"] == 7.5 and ckpt["hyp"]["cls"] == 0.5 and ckpt["hyp"]["dfl"] == 1.5
    from torch_impl.models import yolov5_anchor_free
    model = yolov5_anchor_free("n", nc=3, depth_multiple=0.33, width_multiple=0.125)
    model.load_state_dict(ckpt["model"])  # the anchor-free layout, strict
    model.load_state_dict(ckpt["ema"]["ema"])
    assert not any(k.startswith("head.anchors") for k in ckpt["model"])
    assert (project / "weights" / "best.pt").exists()
    # predict.py rebuilds the anchor-free model from the checkpoint and post-processes v8-style
    out = tmp_path / "pred"
    imgs = _images(2)
    src = tmp_path / "list.txt"
    src.write_text("\n".join(imgs) + "\n")
    assert predict_cli.main(["--weights", str(project / "weights" / "best.pt"), "--source", str(src),
                             "--img-size", "96", "--conf-thres", "0.001", "--device", "cpu",
                             "--out", str(out), "--no-draw"]) == 0
    table = json.loads((out / "images.json").read_text())
    assert [im["id"] for im in table["images"]] == [1, 2]
    results = json.loads((out / "results.json").read_text())
    assert all(r["image_id"] in (1, 2) and 0 <= r["category_id"] < 3 for r in results)
    assert all(r["bbox"][2] >= 0 and r["bbox"][3] >= 0 for r in results)


def test_anchor_free_v8_loss_decreases_when_overfitting_two_images(tmp_path):
    from torch_impl.train import train_one_epoch
    from torch_impl.data import DetectionDataset, collate_fn
    data = _data_yaml(tmp_path / "d", _images(2), _images(2))
    torch.manual_seed(0)
    ds = DetectionDataset.from_yaml(data, "train", img_size=96, augment=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False,
                                         collate_fn=collate_fn)
    from torch_impl.models import yolov5_anchor_free
    model = yolov5_anchor_free("n", nc=3, depth_multiple=0.33, width_multiple=0.25).train()
    opt = build_optimizer(model, "AdamW", lr=0.002, momentum=0.9, weight_decay=0.0)
    for g in opt.param_groups:
        g["initial_lr"] = 0.002
    hyp = dict(HYP_SCRATCH_LOW, box=7.5, cls=0.5, dfl=1.5)
    history, last = [], -1
    for step in range(20):  # one batch (both images) an "epoch": 20 optimiser steps
        losses, last = train_one_epoch(model, loader, opt, hyp=hyp, epoch=step, lr_factor=1.0,
                                       nw=0, accumulate_max=1, device="cpu",
                                       last_opt_step=last)
        assert set(losses) == {"box", "cls", "dfl"}
        history.append(sum(losses.values()))
    assert all(math.isfinite(v) for v in history), history
    print("v8 loss history:", [round(v, 4) for v in history])
    assert history[-1] < 0.7 * history[0], history


# ----------------------------------------------------------------------------- issue 12: weights

def _official_file(tmp: Path, nc: int) -> Path:
    """An official-key (``model.0.conv.weight`` ...) state_dict of the tiny model, as a user's
    converted YOLOv5 weights would be."""
    from torch_impl.models.convert import to_yolov5_state_dict
    torch.manual_seed(11)
    src = yolov5("n", nc=nc, depth_multiple=0.33, width_multiple=0.125)
    path = tmp / f"official_nc{nc}.pt"
    torch.save({k: v.clone() for k, v in to_yolov5_state_dict(src).items()}, path)
    return path


def test_weights_of_every_format_load_and_another_nc_reinitialises_the_head(tmp_path):
    from torch_impl.models.convert import import_yolov5
    from torch_impl.train.trainer import load_weights, read_start_weights as read_weights
    official = _official_file(tmp_path, nc=3)
    imported = tmp_path / "imported.pt"
    import_yolov5(official, imported, variant="n", depth_multiple=0.33, width_multiple=0.125)
    ref = torch.load(imported, weights_only=True)["state_dict"]
    # the format the other side of issue 12 may write: model_cfg and names beside the weights
    new_format = tmp_path / "new_format.pt"
    torch.save({"model": ref, "model_cfg": {"nc": 3, "depth_multiple": 0.33,
                                             "width_multiple": 0.125},
                "names": ["a", "b", "c"]}, new_format)
    for path, kind in [(official, "state_dict"), (imported, "import-yolov5"),
                       (new_format, "train")]:
        w = read_weights(path)
        assert kind in w["kind"], w["kind"]
        model = yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.125)
        msg = load_weights(model, w, str(path))
        assert "re-initialised" not in msg and str(path) in msg
        _assert_same_state(ref, model.state_dict(), f"weights.{path.stem}")
    assert read_weights(new_format)["names"] == ["a", "b", "c"]
    # another class count: backbone and neck copied, the head fresh, and the message says so
    model = yolov5("n", nc=2, depth_multiple=0.33, width_multiple=0.125)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    msg = load_weights(model, read_weights(official), "official")
    assert "head re-initialised (the weights are for 3 classes, the data set has 2" in msg
    sd = model.state_dict()
    assert torch.equal(sd["backbone.stem.conv.weight"], ref["backbone.stem.conv.weight"])
    assert torch.equal(sd["head.m.0.weight"], fresh["head.m.0.weight"])
    # another variant: named, with its shapes
    with pytest.raises(ValueError, match=r"weights \(--weights\): .*has shape"):
        load_weights(yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.25),
                     read_weights(official))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"weights \(--weights\): .*junk.pt"):
        read_weights(tmp_path / "junk.pt")


def test_train_from_official_weights_with_freeze_keeps_frozen_parameters_bit_identical(
        tmp_path, capsys):
    data = _data_yaml(tmp_path / "d", _images(2), _images(2))
    official = _official_file(tmp_path, nc=5)  # 5 classes; the data set has 3
    out = tmp_path / "ft"
    args = _tiny_args(data, out, "--weights", str(official), "--freeze", "10", "--no-health")
    args[args.index("--epochs") + 1] = "1"
    assert train_cli.main(args) == 0
    log = capsys.readouterr().out
    assert "head re-initialised (the weights are for 5 classes, the data set has 3" in log
    assert "freeze: layers 0..9" in log
    from torch_impl.train.trainer import read_start_weights
    start = read_start_weights(official)["state_dict"]
    ckpt = load_checkpoint(out / "weights" / "last.pt")
    trained = ckpt["model"]
    names = [n for n, _ in yolov5("n", nc=3, depth_multiple=0.33,
                                  width_multiple=0.125).named_parameters()]
    frozen = [n for n in names if n.startswith("backbone.")]
    free = [n for n in names if n.startswith("neck.")]
    assert frozen and free
    for n in frozen:  # parameters only: BatchNorm statistics still follow the data, as YOLOv5
        assert torch.equal(trained[n], start[n]), n
    assert any(not torch.equal(trained[n], start[n]) for n in free)
    assert ckpt["args"]["weights"] == str(official) and ckpt["args"]["freeze"] == 10


# ----------------------------------------------------------------------------- runs never mix

def test_runs_get_their_own_folder_resume_extends_and_a_finished_run_says_so(
        tmp_path, capsys, monkeypatch):
    from torch_impl.train import trainer
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    exp = tmp_path / "runs" / "exp"
    flat = ["--lrf", "1.0", "--no-health", "--no-plots"]  # a flat LR: epochs do not change it
    one = _tiny_args(data, exp, *flat)
    one[one.index("--epochs") + 1] = "1"
    assert train_cli.main(one) == 0  # runs/exp
    two = _tiny_args(data, exp, *flat)  # a 2-epoch run into the same --out -> runs/exp2
    assert train_cli.main(two) == 0
    assert "exp exists: this run goes to" in capsys.readouterr().out
    exp2 = tmp_path / "runs" / "exp2"
    assert len((exp / "results.csv").read_text().splitlines()) == 2  # the runs did not mix
    assert len((exp2 / "results.csv").read_text().splitlines()) == 3
    # --resume --epochs 2 extends the 1-epoch run exactly as the 2-epoch run trained
    last = exp / "weights" / "last.pt"
    assert train_cli.main(["--resume", str(last), "--epochs", "2", "--workers", "0",
                           "--quiet"]) == 0
    assert "extended from 1 epochs" in capsys.readouterr().out
    a, b = load_checkpoint(exp2 / "weights" / "last.pt"), load_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 1 and b["args"]["epochs"] == 2
    _assert_same_state(a["model"], b["model"], "extended.model")
    _assert_same_state(a["ema"]["ema"], b["ema"]["ema"], "extended.ema")
    assert len((exp / "results.csv").read_text().splitlines()) == 3
    # resuming the finished run: says so, exit 0, trains nothing
    before = last.read_bytes()
    assert train_cli.main(["--resume", str(last), "--workers", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "this run is finished (2/2 epochs trained)" in out and "epoch 3" not in out
    assert last.read_bytes() == before
    assert len((exp / "results.csv").read_text().splitlines()) == 3
    # --exist-ok reuses exp2 with a fresh log; Ctrl-C in epoch 2 prints the resume command
    calls = []
    real_validate = trainer.validate

    def interrupting_validate(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kw)

    monkeypatch.setattr(trainer, "validate", interrupting_validate)
    assert train_cli.main(_tiny_args(data, exp2, *flat, "--exist-ok")) == \
        train_cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    want = (f"resume with: yolo-ref train --resume {exp2 / 'weights' / 'last.pt'} "
            f"--device cpu --workers 0\n")
    assert want in err, err
    assert len((exp2 / "results.csv").read_text().splitlines()) == 2  # fresh: epoch 1 only
    assert load_checkpoint(exp2 / "weights" / "last.pt")["epoch"] == 0
    assert not (tmp_path / "runs" / "exp3").exists()


def test_cpu_threads_rule():
    from torch_impl.train.trainer import cpu_threads
    assert cpu_threads(3, 2, env={}, cpus=16) == (3, "--threads")
    assert cpu_threads(None, 2, env={}, cpus=16)[0] == 16  # workers are not subtracted
    assert cpu_threads(None, 4, env={}, cpus=2)[0] == 2
    assert cpu_threads(None, 0, env={}, cpus=0)[0] == 1  # never below one
    assert cpu_threads(None, 0, world=2, env={}, cpus=16)[0] == 1  # torchrun: one per process
    assert cpu_threads(None, 0, env={"OMP_NUM_THREADS": "5"}, cpus=16) == \
        (None, "OMP_NUM_THREADS=5")  # the user's (or torchrun's) setting stands
    help_text = train_cli.build_parser().format_help()
    assert "--threads" in help_text and "under torchrun; else every core" in " ".join(help_text.split())


# ----------------------------------------------------------------------------- health checks

def _shapes_variant(tmp: Path, name: str, rewrite=None) -> Path:
    """A 4-image 128 px shapes set; ``rewrite(cx, cy, w, h) -> (cx, cy, w, h)`` applied to
    every label line (the deliberately broken set-ups)."""
    from ref_numpy.shared.shapes import generate
    root = tmp / name
    generate(root, n_images=4, size=128, seed=0, split=1.0)
    if rewrite is not None:
        for f in (root / "labels").glob("*.txt"):
            lines = []
            for line in f.read_text().splitlines():
                c, *v = line.split()
                lines.append(" ".join([c, *(f"{x:.8f}" for x in rewrite(*map(float, v)))]))
            f.write_text("\n".join(lines) + "\n")
    return root


def _model_128():
    """The tiny model with the default anchors scaled to a 128 px input (what autoanchor
    gives a 128 px run)."""
    from torch_impl.models.yolo import DEFAULT_ANCHORS
    anchors = [[[v * 128 / 640 for v in a] for a in lvl] for lvl in DEFAULT_ANCHORS]
    return yolov5("n", nc=3, anchors=anchors, depth_multiple=0.33, width_multiple=0.125)


def _monitor_on(root: Path, model=None, log=None):
    """A HealthMonitor fed with the set's labels (check_data), one training batch of all its
    images (on_batch) and the model's eval-mode top boxes (on_predictions); epoch closed."""
    from torch_impl.data import DetectionDataset, collate_fn
    from torch_impl.train.health import HealthMonitor
    ds = DetectionDataset(root / "images", img_size=128)
    model = model or _model_128()
    mon = HealthMonitor(model, img_size=128, anchor_t=4.0, nc=3, log=log)
    mon.check_data(ds)
    imgs, targets, _, _ = collate_fn([ds[i] for i in range(len(ds))])
    mon.on_batch(0, imgs, targets, {"box": torch.tensor(0.1), "obj": torch.tensor(0.05),
                                    "cls": torch.tensor(0.02)})
    with torch.no_grad():
        decoded, _ = model.eval()(imgs.float() / 255)
    dets = []
    for d in decoded:  # the 50 most confident boxes, xyxy
        top = d[d[:, 4].argsort(descending=True)[:50]]
        xy, wh = top[:, :2], top[:, 2:4]
        dets.append(torch.cat([xy - wh / 2, xy + wh / 2, top[:, 4:5], top[:, 5:6]], 1))
    mon.on_predictions(dets, (128, 128))
    mon.end_epoch(1)
    return mon


def test_health_checks_stay_quiet_on_a_healthy_set(tmp_path):
    lines = []
    mon = _monitor_on(_shapes_variant(tmp_path, "ok"), log=lines.append)
    assert mon.findings == [], [f.message for f in mon.findings]
    (summary,) = mon.epochs
    assert summary["ok"] and summary["no_positive"] == 0 and summary["gts"] > 0
    assert all(n > 0 for n in summary["positives"]), summary  # every level gets positives
    assert lines == [l for l in lines if l.startswith("health epoch 1:")] and "ok" in lines[0]


def test_health_check_finds_anchors_given_in_pixels(tmp_path):
    model = _model_128()
    with torch.no_grad():  # the broken set-up: pixel anchors where grid units are expected
        model.head.anchors.mul_(model.head.stride.view(-1, 1, 1))
    lines = []
    mon = _monitor_on(_shapes_variant(tmp_path, "ok"), model, log=lines.append)
    kinds = {f.kind: f for f in mon.findings}
    assert {"anchors_units", "boxes_off_image"} <= set(kinds), lines
    f = kinds["anchors_units"]
    assert "P5 anchors" in f.message and "wrong units for the stride" in f.message
    assert f.step == 0 and f.epoch == 1
    assert any(l.startswith("health: epoch 1, step 0: P5 anchors") for l in lines)  # at once
    assert "findings:" in lines[-1] and "decoded boxes outside the image" in lines[-1]
    # with the anchor values themselves too large to match (640 px anchors read as pixels
    # on a 640 px set-up), every GT loses its positives and the reason names the units
    from torch_impl.data import DetectionDataset, collate_fn
    from torch_impl.train.health import HealthMonitor
    big = yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.125)
    with torch.no_grad():
        big.head.anchors.mul_(big.head.stride.view(-1, 1, 1))
    ds = DetectionDataset(_shapes_variant(tmp_path, "ok640") / "images", img_size=128)
    imgs, targets, _, _ = collate_fn([ds[i] for i in range(len(ds))])
    mon = HealthMonitor(big, img_size=128, nc=3)
    mon.on_batch(0, imgs, targets, {"box": torch.tensor(0.1), "obj": torch.tensor(0.1)})
    (lost,) = [f for f in mon.findings if f.kind == "no_positive"]
    assert "anchors in the wrong units for the stride" in lost.message, lost.message


def test_health_check_finds_boxes_normalised_twice(tmp_path):
    root = _shapes_variant(tmp_path, "twice", lambda cx, cy, w, h: (cx / 128, cy / 128,
                                                                     w / 128, h / 128))
    mon = _monitor_on(root)
    kinds = {f.kind: f for f in mon.findings}
    assert "labels_tiny" in kinds and "normalised twice" in kinds["labels_tiny"].message
    assert kinds["labels_tiny"].epoch == 0  # found before training
    assert "objects too small for the finest level" in kinds["no_positive"].message
    assert "normalised twice" in kinds["no_positive"].message


def test_health_check_finds_x_y_swapped_labels(tmp_path):
    root = _shapes_variant(tmp_path, "swapped", lambda cx, cy, w, h: (cy, cx, h, w))
    kinds = {f.kind: f for f in _monitor_on(root).findings}
    assert "labels_swapped" in kinds, kinds
    assert "'class cy cx h w'" in kinds["labels_swapped"].message


def test_health_loss_checks_explode_collapse_and_stuck_at_zero():
    from torch_impl.train.health import BASELINE_STEPS, COLLAPSE, EXPLODE, HealthMonitor
    model = yolov5("n", nc=1, depth_multiple=0.33, width_multiple=0.125)
    imgs = torch.zeros(1, 3, 640, 640, dtype=torch.uint8)  # the default anchors' size
    targets = torch.tensor([[0, 0, 0.5, 0.5, 0.3, 0.3]])

    def run(obj_values, box=0.1):
        mon = HealthMonitor(model, img_size=640, nc=1)
        for i, o in enumerate(obj_values):
            mon.on_batch(i, imgs, targets, {"box": torch.tensor(box), "obj": torch.tensor(o),
                                            "cls": torch.tensor(0.0)})
        mon.end_epoch(1)
        return {f.kind for f in mon.findings}

    start = [1.0] * BASELINE_STEPS
    assert run(start + [0.5, 0.3]) == set()  # a falling loss; one class: cls 0 by design
    assert run(start + [2 * EXPLODE]) == {"obj_explode"}
    assert run(start + [COLLAPSE / 10]) == {"obj_collapse"}
    assert run(start + [0.5], box=0.0) == {"loss_zero"}


def test_overfit_mode_trains_and_validates_on_n_images_and_gives_a_verdict(tmp_path):
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    lines = []
    result = train(_tiny_config(data, tmp_path / "of", overfit=2, epochs=1, augment=True),
                   log=lines.append)
    assert result.ok and result.overfit["images"] == 2
    assert result.final["n_images"] == 2  # validated on the same 2 training images
    text = "\n".join(lines)
    assert "overfit: training and validating on the first 2 training images" in text
    verdict = [l for l in lines if l.startswith("overfit: mAP@0.5")]
    assert len(verdict) == 1
    assert ("can fit them" in verdict[0]) == result.overfit["fitted"]
    # the end-of-training report: per-class table, COCO summary, val losses in results.csv
    table = result.final["per_class"]
    assert table[0]["class"] == "all"
    assert table[0]["instances"] == sum(r["instances"] for r in table[1:]) > 0
    assert_parity(np.float64(table[0]["map50"]), np.float64(result.final["map50"]),
                  name="metrics.coco_evaluate", dtype="float64")
    assert any(l.split()[:3] == ["Class", "Images", "Instances"] for l in lines)
    assert any("Average Precision  (AP) @[ IoU=0.50 " in l for l in lines)
    header = (tmp_path / "of" / "results.csv").read_text().splitlines()[0].split(",")
    assert {"val/box_loss", "val/obj_loss", "val/cls_loss", "metrics/precision"} <= set(header)
    assert (tmp_path / "of" / "PR_curve.png").stat().st_size > 0
    assert (tmp_path / "of" / "F1_curve.png").stat().st_size > 0
    assert result.health is not None and len(result.health.epochs) == 1


def test_close_mosaic_turns_the_mosaic_off_for_the_last_epochs_only(tmp_path, monkeypatch):
    import torch_impl.train.trainer as trainer_mod
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    seen = []
    real = trainer_mod.train_one_epoch

    def spy(model, loader, *args, **kwargs):
        ds = loader.dataset
        seen.append((ds.hyp["mosaic"], sum(ds[i][3] is None for i in range(len(ds)))))
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_one_epoch", spy)
    result = train(_tiny_config(data, tmp_path / "run", epochs=3, close_mosaic=2))
    assert result.ok
    assert seen[0][0] > 0 and [p for p, _ in seen[1:]] == [0.0, 0.0]
    assert seen[0][1] > 0 and seen[1][1] == seen[2][1] == 0  # mosaic items have no letterbox shapes
    with pytest.raises(ValueError, match="close_mosaic"):
        TrainConfig(data=str(data), close_mosaic=-1)


def test_precise_bn_on_the_kept_first_batches_equals_a_fresh_pass_of_the_epoch(tmp_path):
    """The trainer hands precise BN the first batches its epoch loop already loaded; a fresh
    pass of the same epoch's loader (what it did before) gives exactly the same statistics."""
    import copy

    from torch_impl.data import DetectionDataset, collate_fn
    from torch_impl.train.trainer import _KeepFirstBatches
    data = _data_yaml(tmp_path / "d", _images(6), _images(2))
    ds = DetectionDataset.from_yaml(data, "train", img_size=64, augment=True, seed=3)
    ds.set_epoch(1)
    sampler = torch.utils.data.DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3)
    sampler.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler, num_workers=1,
                                         collate_fn=collate_fn)
    keep = _KeepFirstBatches(loader, 2)
    assert sum(1 for _ in keep) == len(keep) == 3 and len(keep.kept) == 2
    a = yolov5("n", nc=3, width_multiple=0.125)
    b = copy.deepcopy(a)
    assert precise_bn(a, keep.kept, "cpu", 2) == precise_bn(b, loader, "cpu", 2) == 2
    _assert_same_state(a.state_dict(), b.state_dict(), "precise_bn_kept")


# ----------------------------------------------------------------------------- issue 15: layouts, CPU AMP

def _one_step_setup(tmp_path: Path):
    from torch_impl.data import DetectionDataset, collate_fn
    data = _data_yaml(tmp_path / "d", _images(4), _images(2))
    ds = DetectionDataset.from_yaml(data, "train", img_size=96, augment=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_fn)
    torch.manual_seed(0)
    model = yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.25).train()
    return loader, model


def _one_epoch(loader, model, **kw):
    opt = build_optimizer(model, "SGD", lr=0.01, momentum=0.9, weight_decay=0.0)
    for g in opt.param_groups:
        g["initial_lr"] = 0.01
    from torch_impl.loss import yolov5_scale_hyp
    hyp = yolov5_scale_hyp(HYP_SCRATCH_LOW, nl=3, nc=3, imgsz=96)
    from torch_impl.train import train_one_epoch
    losses, _ = train_one_epoch(model, loader, opt, hyp=hyp, epoch=0, lr_factor=1.0, nw=0,
                                accumulate_max=1, device="cpu", **kw)
    return losses


def test_channels_last_trains_the_same_model_up_to_kernel_rounding(tmp_path):
    loader, model = _one_step_setup(tmp_path)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    ref = _one_epoch(loader, model)
    cl_model = yolov5("n", nc=3, depth_multiple=0.33, width_multiple=0.25).train()
    cl_model.load_state_dict(init)
    cl_model = cl_model.to(memory_format=torch.channels_last)
    seen = []
    cl_model.backbone.stem.conv.register_forward_pre_hook(lambda m, a: seen.append(
        a[0].is_contiguous(memory_format=torch.channels_last)))
    got = _one_epoch(loader, cl_model, channels_last=True)
    assert seen == [True]  # the batch reached the first conv in channels-last order
    tol = derived_tolerance("layout.channels_last", "float32")
    assert_parity(np.array(list(got.values())), np.array(list(ref.values())),
                  name="layout.channels_last", tol=tol)
    for k, v in model.state_dict().items():  # after one SGD step
        assert_parity(cl_model.state_dict()[k].contiguous(), v, name="layout.channels_last", tol=tol)
    w = cl_model.backbone.stem.conv.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def test_amp_on_cpu_autocasts_to_bfloat16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    from torch_impl.train import autocast_dtype, engine
    assert autocast_dtype("cpu", False) is None and autocast_dtype("cuda", False) is None
    assert autocast_dtype("cuda", True) is torch.float16
    assert autocast_dtype("cpu", True) is (torch.bfloat16 if engine.cpu_bf16_supported() else None)
    # the bfloat16 path, forced (emulated on a CPU without native bfloat16): the forward runs
    # in bfloat16, the loss in float32
    monkeypatch.setattr(engine, "cpu_bf16_supported", lambda: True)
    assert autocast_dtype("cpu", True) is torch.bfloat16
    loader, model = _one_step_setup(tmp_path)
    dtypes = []
    model.backbone.stem.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    losses = _one_epoch(loader, model, amp=True)
    assert dtypes == [torch.bfloat16]
    assert all(math.isfinite(v) and v > 0 for v in losses.values()), losses
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


def test_train_cli_channels_last_and_amp_note(tmp_path, monkeypatch):
    from torch_impl.train import engine
    monkeypatch.setattr(engine, "cpu_bf16_supported", lambda: False)
    data = _data_yaml(tmp_path / "d", _images(2), _images(2))
    project = tmp_path / "p"
    result = train(_tiny_config(data, project, epochs=1, channels_last=True, amp=True))
    assert result.ok
    assert any("--amp: mixed precision needs CUDA or a CPU with native bfloat16" in n for n in result.notes)
    ckpt = load_checkpoint(project / "weights" / "last.pt")
    assert ckpt["args"]["channels_last"] is True  # resumed with the run
    # the weights load into a contiguous model as usual
    from torch_impl.train import load_model
    load_model(project / "weights" / "last.pt", device="cpu")
    assert train_cli.main(_tiny_args(data, tmp_path / "q", "--channels-last", "--epochs", "1")) == 0
