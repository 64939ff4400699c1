"""Fault injection into training: kills, a full disk, diverged weights.

A tiny training subprocess (a 64-px YOLOv5n on two fixture images, three epochs) is SIGKILLed at
chosen points of its epoch-end writes through the ``YOLO_REF_DEBUG_KILL`` hook of
:func:`torch_impl.train.checkpoint.save_checkpoint` (before ``last.pt``, i.e. after
``results.csv`` and ``best.pt``; half-way through writing ``last.pt``'s temporary file), then
resumed with ``--resume``. After every resume: ``results.csv`` has each epoch once, ``best.pt``
exists, no ``.tmp`` file is left and the checkpoints pass their digest check. In-process: a full
disk at the second checkpoint is one line naming the path and keeps the first; weights that go
non-finite while the loss stays finite end as diverged (exit 3), not as a prediction error.
"""
from __future__ import annotations

import csv
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ref_numpy.cli import main as yolo_ref
from ref_numpy.shared.cli import EXIT_DIVERGED, EXIT_OK, EXIT_USAGE
from torch_impl.train import trainer as trainer_module
from torch_impl.train.checkpoint import FAULT_ENV, load_checkpoint

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3


def _data(tmp: Path) -> Path:
    images = [str((SHAPES / p).resolve()) for p in (SHAPES / "train.txt").read_text().split()[:2]]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "list.txt").write_text("\n".join(images) + "\n")
    y = tmp / "data.yaml"
    y.write_text(f"train: {tmp / 'list.txt'}\nval: {tmp / 'list.txt'}\n"
                 "names: [rectangle, ellipse, triangle]\n")
    return y


def _args(data: Path, out: Path) -> list[str]:
    return ["--data", str(data), "--model", "n", "--depth-multiple", "0.33", "--width-multiple",
            "0.125", "--img-size", "64", "--epochs", str(EPOCHS), "--batch-size", "2", "--nbs",
            "2", "--warmup-epochs", "0", "--seed", "1", "--workers", "0", "--threads", "1",
            "--device", "cpu", "--quiet", "--no-plots", "--no-health", "--noautoanchor",
            "--out", str(out)]


def _yolo_ref(argv: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run([sys.executable, "-m", "ref_numpy.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _epochs_logged(run: Path) -> list[int]:
    with open(run / "results.csv", newline="", encoding="utf-8") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _assert_sound(run: Path) -> None:
    w = run / "weights"
    assert _epochs_logged(run) == list(range(1, EPOCHS + 1))  # each epoch once
    assert (w / "best.pt").is_file()
    assert sorted(p.name for p in w.iterdir()) == ["best.pt", "last.pt"]  # no .tmp left
    assert load_checkpoint(w / "last.pt")["epoch"] == EPOCHS - 1  # digest verified
    load_checkpoint(w / "best.pt")


@pytest.mark.parametrize("fault,lose_best", [
    ("before:last.pt:2", False),  # after results.csv (and best.pt) of epoch 2, before last.pt
    ("mid:last.pt:2", False),     # a half-written .last.pt.*.tmp of epoch 2
    ("before:last.pt:3", True),   # ... and best.pt lost, as the old write order could leave it
])
def test_kill_then_resume_logs_each_epoch_once_and_keeps_best(tmp_path, fault, lose_best):
    run = tmp_path / "run"
    killed = _yolo_ref(["train", *_args(_data(tmp_path / "d"), run)], fault=fault)
    assert killed.returncode == -9, killed.stderr  # SIGKILL
    w = run / "weights"
    n = int(fault.rsplit(":", 1)[1])
    assert load_checkpoint(w / "last.pt")["epoch"] == n - 2  # the previous epoch's
    assert _epochs_logged(run)[-1] == (n if fault.startswith("before") else n)
    if fault.startswith("mid"):
        assert any(p.name.endswith(".tmp") for p in w.iterdir())
    if lose_best:
        (w / "best.pt").unlink()
    resumed = _yolo_ref(["train", "--resume", str(w / "last.pt"), "--workers", "0",
                         "--threads", "1", "--quiet"])
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert "Traceback" not in resumed.stderr
    _assert_sound(run)


def test_full_disk_at_the_second_checkpoint_is_one_line_and_keeps_the_first(tmp_path, capsys,
                                                                             monkeypatch):
    real_save, calls = torch.save, []

    def save(obj, f):
        calls.append(1)
        if len(calls) > 2:  # epoch 1 wrote best.pt and last.pt; epoch 2 finds the disk full
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    code = yolo_ref(["train", *_args(_data(tmp_path / "d"), run)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and str(run / "weights") in err, err
    monkeypatch.undo()
    assert load_checkpoint(run / "weights" / "last.pt")["epoch"] == 0
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["best.pt", "last.pt"]


def test_weights_that_diverge_with_a_finite_loss_exit_3_naming_the_divergence(
        tmp_path, capsys, monkeypatch):
    real = trainer_module.train_one_epoch

    def blow_up(model, *args, epoch, **kwargs):
        out = real(model, *args, epoch=epoch, **kwargs)
        if epoch == 1:  # the loss was finite; the step left an infinite weight behind
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(trainer_module, "train_one_epoch", blow_up)
    run = tmp_path / "run"
    code = yolo_ref(["train", *_args(_data(tmp_path / "d"), run)])
    err = capsys.readouterr().err
    assert code == EXIT_DIVERGED, err
    assert "diverged at epoch 2" in err and "expected finite values" not in err, err
    assert "Traceback" not in err
    assert load_checkpoint(run / "weights" / "last.pt")["epoch"] == 0  # the last good one
