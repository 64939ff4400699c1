"""Smoke tests of ``yolo-ref bench`` (parity_tests/cli/bench.py) and of the benchmarks moved from
scripts/ (parity_tests/bench/nms.py, loss.py): they run on tiny inputs, check the port against
their baseline and return the documented exit codes. No timing is asserted."""
from __future__ import annotations

import pytest

from parity_tests.bench import loss as bench_loss
from parity_tests.bench import nms as bench_nms
from parity_tests.cli import bench
from ref_numpy.shared.cli import EXIT_OK, EXIT_USAGE

pytest.importorskip("torchvision")


def test_bench_nms_tiny_run_agrees(capsys):
    code = bench_nms.main(["--sizes", "60", "--repeats", "1", "--images", "2", "--batch-n", "40",
                           "--ref-max-n", "60", "--iou", "0.5"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "ref_numpy.nms" in out and "torch_impl.nms_padded" in out and " NO" not in out


def test_bench_loss_tiny_run(capsys):
    code = bench_loss.main(["--batch", "1", "--img-size", "64", "--nc", "2", "--targets", "3",
                            "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "YOLOv5 loss" in out and "YOLOv8 loss" in out


@pytest.mark.parametrize("argv", [["nms", "--sizes", "x"], ["loss", "--img-size", "33"],
                                  ["nope"], ["all", "--quick"], []])
def test_bench_bad_arguments_exit_2(argv, capsys):
    assert bench.main(argv) == EXIT_USAGE


def test_bench_dispatches_to_the_named_benchmark(monkeypatch):
    seen = []
    monkeypatch.setattr(bench_nms, "main", lambda argv: seen.append(("nms", argv)) or 0)
    assert bench.main(["nms", "--quick"]) == EXIT_OK
    assert seen == [("nms", ["--quick"])]


def test_bench_peers_torchvision_rows_agree(capsys):
    """torchvision is installed in CI: the nms rows really compare (same kept boxes) and print ratios."""
    from parity_tests.bench import peers
    code = peers.main(["--quick", "--rows", "nms,batched-nms", "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert out.count("torchvision.ops.") == 4 and "DIFFER" not in out and "peer absent" not in out
    rows = [line for line in out.splitlines() if line.startswith("| nms") or line.startswith("| batched")]
    assert len(rows) == 4 and all(line.split("|")[5].strip() for line in rows)  # a ratio on every row


def test_bench_peers_disagreement_exits_1(monkeypatch, capsys):
    from parity_tests.bench import peers
    import torch_impl.nms
    real = torch_impl.nms.nms
    monkeypatch.setattr(torch_impl.nms, "nms", lambda b, s, t: real(b, s, t)[:-1])  # drops one box
    assert peers.main(["--quick", "--rows", "nms", "--repeats", "1"]) == 1
    assert "DIFFER" in capsys.readouterr().out


def test_bench_peers_long_chain_is_a_real_chain():
    import numpy as np

    from parity_tests.bench.peers import chain_boxes
    from ref_numpy.boxes import box_iou
    boxes, scores = chain_boxes(6)
    iou = np.asarray(box_iou(boxes[:-1], boxes[1:])).diagonal()
    assert np.all(iou > 0.5) and np.all(np.diff(scores) < 0)


def test_bench_peers_postprocess_agreement_allows_tied_rows_in_either_order():
    import torch

    from parity_tests.bench.peers import same_rows
    a = torch.tensor([[0, 0, 9, 9, 0.9, 1], [5, 5, 8, 8, 0.7, 2], [1, 1, 3, 3, 0.7, 4]])
    assert same_rows(a, a[[0, 2, 1]])  # the two rows of score 0.7 swapped
    assert not same_rows(a, a[[1, 0, 2]])  # scores out of order
    b = a.clone()
    b[2, 5] = 3
    assert not same_rows(a, b[[0, 2, 1]])  # a class changed
    assert not same_rows(a, a[:2])

@pytest.mark.parametrize("argv", [["--rows", "nope"], ["--repeats", "0"]])
def test_bench_peers_bad_arguments(argv):
    from parity_tests.bench import peers
    assert peers.main(argv) == EXIT_USAGE


# ----------------------------------------------------------------------------- bench train

def _train_curve(walls, maps, train_s=None, n_train=10):
    from parity_tests.bench.train import Curve
    train_s = train_s or [1.0] * len(walls)
    return Curve("c", [{"epoch": i + 1, "wall_s": w, "map50": m, "train_s": t}
                       for i, (w, m, t) in enumerate(zip(walls, maps, train_s))], n_train=n_train)


def test_bench_train_tiny_run_has_our_row_and_reports_the_absent_peer(tmp_path, monkeypatch, capsys):
    """Our trainer really runs one epoch on a generated set; a peer that is not importable is
    reported as absent, not a crash, and the override of --ours reaches the trainer."""
    import json

    from parity_tests.bench import train as bench_train
    monkeypatch.setattr(bench_train, "peer_present", lambda python: False)
    code = bench_train.main(["--images", "8", "--img-size", "64", "--epochs", "1", "--threads", "1",
                             "--ours", "precise_bn=1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert bench_train.PEER_ABSENT in out
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    assert float(row.split("|")[2]) > 0  # ours wall (s) of epoch 1
    setup = next(line for line in out.splitlines() if line.startswith("| epoch 1 with set-up"))
    assert float(setup.split("|")[2]) > 0
    saved = json.loads((tmp_path / "bench_train.json").read_text())
    assert saved["settings"]["precise_bn"] == 1
    assert [c["name"] for c in saved["curves"]] == ["ours", "yolov5"]
    assert (tmp_path / "ours" / "weights" / "last.pt").exists()


def test_bench_train_absent_peer_alone_exits_0(tmp_path, monkeypatch, capsys):
    from parity_tests.bench import train as bench_train
    monkeypatch.setattr(bench_train, "peer_present", lambda python: False)
    assert bench_train.main(["--skip-ours", "--out", str(tmp_path)]) == EXIT_OK
    assert bench_train.PEER_ABSENT in capsys.readouterr().out


def test_bench_train_peer_present_looks_the_package_up(tmp_path):
    import importlib.util
    import sys

    from parity_tests.bench.train import peer_present
    assert peer_present(str(tmp_path / "no-python")) is False
    assert peer_present(sys.executable) is (importlib.util.find_spec("yolov5") is not None)


@pytest.mark.parametrize("argv", [["--ours", "epochs=3"], ["--ours", "nope=1"], ["--ours", "lr0"],
                                  ["--ours", "lr0=-1"], ["--ours", "optimizer=Lion"],
                                  ["--img-size", "70"], ["--images", "1"], ["--epochs", "0"],
                                  ["--skip-ours", "--skip-peer"], ["--threads", "0"],
                                  ["--ours", "arch_options={base: [16"]])
def test_bench_train_bad_arguments_exit_2(argv, tmp_path):
    from parity_tests.bench import train as bench_train
    assert bench_train.main([*argv, "--out", str(tmp_path)]) == EXIT_USAGE
    assert not (tmp_path / "shapes").exists()  # refused before any data is written


def test_bench_train_curve_measures():
    c = _train_curve([10.0, 14.0, 20.0], [0.5, 0.91, 0.95], train_s=[5.0, 2.0, 3.0])
    assert c.time_to(0.9) == (2, 14.0) and c.time_to(0.99) is None
    assert c.epoch_seconds() == (5.0, "epochs 2..3")  # (4 + 6) / 2, epoch 1 left out
    assert c.images_per_s() == 10 / 2.5
    one = _train_curve([7.0], [0.1])
    assert one.epoch_seconds() == (7.0, "epoch 1 (with set-up)")


def test_bench_train_time_ratio_is_a_bound_when_one_side_misses():
    from parity_tests.bench.train import _ratio
    fast, slow = _train_curve([1.0, 2.0], [0.95, 0.97]), _train_curve([5.0, 10.0], [0.2, 0.95])
    never = _train_curve([6.0, 12.0], [0.1, 0.2])
    assert _ratio(fast, slow, 0.9) == ("0.10", True)
    assert _ratio(slow, fast, 0.9) == ("10.00", False)
    assert _ratio(fast, never, 0.9) == ("< 0.08", True)  # yolov5 needs more than its 12 s
    assert _ratio(never, fast, 0.9) == ("> 12.00", False)
    assert _ratio(never, never, 0.9) == ("neither reached", None)


def test_bench_train_reads_yolov5_results_csv(tmp_path):
    from parity_tests.bench.train import _results_csv
    keys = ["epoch", "train/box_loss", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95"]
    text = ",".join(f"{k:>20}" for k in keys) + "\n"
    for e, m in ((0, 0.125), (1, 0.5)):
        text += ",".join(f"{v:>20.5g}" for v in (e, 0.1, m, m / 2)) + "\n"
    (tmp_path / "results.csv").write_text(text)
    assert _results_csv(tmp_path / "results.csv") == [0.125, 0.5]
    assert _results_csv(tmp_path / "missing.csv") == []


def test_bench_help_lists_the_train_benchmark(capsys):
    from parity_tests.bench import train as bench_train
    assert bench.main(["--help"]) == EXIT_OK
    assert "train   end to end" in capsys.readouterr().out
    assert bench.load("train") is bench_train.main


def test_bench_yolov1_tiny_run_prints_the_table(tmp_path, capsys):
    """Experiments 1, 2 and 2b alone (``--only``) on a tiny set: their rows, real confidences."""
    from parity_tests.bench import yolov1_experiments as v1
    code = v1.main(["--images", "8", "--val-images", "4", "--img-size", "64", "--S", "2", "--epochs", "1",
                    "--only", "1", "2", "2b", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    rows = [ln for ln in out.splitlines() if ln.startswith(("| 1 ", "| 2 ", "| 2b "))]
    assert len(rows) == 3 and "| 3 " not in out and "What it shows:" in out and "(2b)" in out
    confs = [float(c) for r in rows for c in r.split("|")[3:5]]
    assert all(0 <= c <= 1 for c in confs)
    assert (tmp_path / "e1" / "weights" / "last.pt").exists() and (tmp_path / "e2" / "args.json").exists()


@pytest.mark.parametrize("argv", [["--images", "0"], ["--finetune-epochs", "0"], ["--only", "5"]])
def test_bench_yolov1_bad_arguments_exit_2(argv):
    from parity_tests.bench import yolov1_experiments as v1
    assert v1.main(argv) == EXIT_USAGE


def test_bench_yolov1_what_it_shows_follows_the_figures():
    """The paragraph is read off the rows: a collapse is claimed only when mAP falls below a
    tenth of experiment 1's, frozen BN is said to help only when 4b beats 4a."""
    from parity_tests.bench.yolov1_experiments import _what_it_shows
    base = {"1": (0.4, 0.05, 0.5, 1.0), "4a": (0.2, 0, 0, 1), "4b": (0.3, 0, 0, 1)}
    kept = _what_it_shows({**base, "2": (0.3, 0.2, 0.5, 1.0)})
    gone = _what_it_shows({**base, "2": (0.01, 0.0, 0.01, 1.0)})
    assert "does not collapse" in kept and "collapse as the write-up" not in kept
    assert "collapse as the write-up describes" in gone
    assert "freezing BN helps" in kept
    assert "does not help" in _what_it_shows({"4a": (0.3, 0, 0, 1), "4b": (0.2, 0, 0, 1)})
    assert "does not separate" in _what_it_shows({"4a": (0.01, 0, 0, 1), "4b": (0.02, 0, 0, 1)})
    assert "next to nothing" in _what_it_shows({"1": (0.01, 0, 0, 1)})


def test_bench_train_ours_values_parse_numbers_booleans_and_mappings():
    from parity_tests.bench.train import our_settings
    got = our_settings(["lr0=2e-4", "ema=false", "precise_bn=0", "arch=tutorial", "model=as-printed",
                        'arch_options={"base": 16}'])
    assert got["lr0"] == 0.0002 and got["ema"] is False and got["precise_bn"] == 0
    assert got["arch"] == "tutorial" and got["model"] == "as-printed"
    assert got["arch_options"] == {"base": 16}
    from parity_tests.bench.train import _models
    assert _models({"model": "n"}) == "YOLOv5n"  # the header names what was trained
    assert _models({"arch": "yolov8", "model": "n"}) == "ours --arch yolov8 --model n, yolov5 YOLOv5n"
