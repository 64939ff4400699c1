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


@pytest.mark.parametrize("argv", [["--rows", "nope"], ["--repeats", "0"]])
def test_bench_peers_bad_arguments(argv):
    from parity_tests.bench import peers
    assert peers.main(argv) == EXIT_USAGE
