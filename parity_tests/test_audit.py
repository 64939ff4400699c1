"""Tests of ``yolo-ref audit`` (:mod:`parity_tests.cli.audit`): the table, SKIP rather than FAIL
for whatever is not installed, exit codes, the applied tolerance as printed, and a planted
disagreement caught as FAIL."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity_tests.cli import audit
from parity_tests.tolerances import EXACT
from ref_numpy.shared.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "shapes"


def _run_hidden(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    """``yolo-ref ARGV`` in a fresh interpreter where importing each of ``modules`` fails
    (``sys.modules[name] = None``), as on a machine without them."""
    block = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
    code = f"import sys; {block}from ref_numpy.cli import main; sys.exit(main({argv!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def _statuses(stdout: str) -> list[str]:
    return [ln.split()[-1] for ln in stdout.splitlines() if ln.split()[-1:] in (["PASS"], ["FAIL"], ["SKIP"])]


def test_backend_ref_runs_without_torch():
    """--backend ref with torch unimportable: the reference's rows pass, the port's and the
    torch-based oracles' rows are SKIP (never FAIL), exit code 0."""
    proc = _run_hidden(["torch", "torchvision"], ["audit", "--backend", "ref", "--stages", "formats,coder,nms"])
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    status = _statuses(proc.stdout)
    assert "FAIL" not in status and status.count("PASS") >= 5 and status.count("SKIP") >= 10, proc.stdout
    assert proc.stdout.rstrip().endswith("skipped")  # "N passed, 0 failed, K skipped"
    assert "--backend ref: the port is not audited" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_missing_oracles_skip_with_install_hint():
    """torchvision and pycocotools missing, the port present: their rows SKIP with the hint."""
    proc = _run_hidden(["torchvision", "pycocotools"], ["audit", "--stages", "boxes,map"])
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    status = _statuses(proc.stdout)
    assert "FAIL" not in status and "PASS" in status and "SKIP" in status
    assert "torchvision is not installed (pip install torchvision" in proc.stdout
    assert "pycocotools is not installed (pip install pycocotools" in proc.stdout


def test_table_prints_applied_tolerance_and_summary(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert audit.main(["--stages", "boxes,coder", "--data", str(FIXTURE), "--json", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert text.rstrip().splitlines()[-1].endswith("0 failed, 0 skipped")
    rows = json.loads(out.read_text())
    tols = {r["check"]: r["tol"] for r in rows}
    assert tols["box_iou ref=port float64"] == "exact"
    assert tols["complete_box_iou ref=port float32"] == "1e-6"  # atol only: no "|x|" term
    assert tols["yolov5_decode ref=port float64"] == "1e-12+1e-12|x|"  # atol + rtol|x|, not max
    assert all(r["status"] == "PASS" for r in rows)


def test_planted_disagreement_fails_with_exit_code_1(monkeypatch, capsys):
    """A port whose box_iou is off by one float32 ulp: the exact rows FAIL, exit code 1."""
    import torch

    import torch_impl.boxes as tb

    honest = tb.box_iou
    monkeypatch.setattr(tb, "box_iou", lambda a, b: torch.nextafter(honest(a, b), torch.tensor(2.0, dtype=a.dtype)))
    assert audit.main(["--stages", "boxes", "--data", str(FIXTURE)]) == EXIT_CHECK_FAILED
    text = capsys.readouterr().out
    failed = [ln for ln in text.splitlines() if ln.endswith("FAIL")]
    assert failed and all("box_iou" in ln for ln in failed), failed
    assert "not exactly equal" in text


def test_row_crash_is_a_fail_not_a_crash():
    a = audit.Audit([], FIXTURE, None, "torch", "cpu")
    a.compare("x", "boom", 1, lambda: 1 / 0, "boxes.box_iou", "float64")
    a.compare("x", "skip", 1, lambda: (_ for _ in ()).throw(audit.Skip("no oracle")), "boxes.box_iou", "float64")
    a.compare("x", "fine", 1, lambda: (np.zeros(2), np.zeros(2)), "boxes.box_iou", "float64", tol=EXACT)
    assert [r.status for r in a.rows] == ["FAIL", "SKIP", "PASS"]
    assert "ZeroDivisionError" in a.rows[0].note and a.rows[1].note == "no oracle"
    assert audit.summary(a.rows) == "1 passed, 1 failed, 1 skipped"


@pytest.mark.parametrize("argv,needle", [
    (["--stages", "boxes,nope"], "--stages"),
    (["--data", "/nonexistent/dir"], "--data"),
    (["--backend", "ref", "--device", "cuda"], "--device"),
])
def test_bad_input_is_a_usage_error(argv, needle, capsys):
    from ref_numpy.cli import main

    assert main(["audit", *argv]) == EXIT_USAGE
    assert needle in capsys.readouterr().err


def test_data_is_read_by_the_library_reader():
    """The audit's set is ref_numpy.formats.read_yolo's: same images, same boxes."""
    from ref_numpy import formats as rf

    ds, samples = audit.load_set(FIXTURE)
    want = rf.to_arrays(rf.read_yolo(FIXTURE / "labels", FIXTURE / "images"))
    assert len(samples) == len(ds.images) == 32
    assert np.array_equal(np.concatenate([s.boxes for s in samples]), want["boxes"])


def test_without_a_checkout_generates_or_says_why(monkeypatch, tmp_path, capsys):
    """Installed without fixtures/: a shapes set is generated into a temporary directory by the
    library's generator, or, where there is none, exit 2 with a message naming --data."""
    monkeypatch.setattr(audit, "FIXTURE", tmp_path / "no-fixture")
    code = audit.main(["--stages", "formats"]) if _has_generator() else None
    if code is None:
        from ref_numpy.cli import main

        assert main(["audit", "--stages", "formats"]) == EXIT_USAGE
        assert "--data" in capsys.readouterr().err
    else:
        assert code == EXIT_OK
        assert "yolo-ref-audit-" in capsys.readouterr().out  # the temporary set's path


def _has_generator() -> bool:
    import importlib

    for target in audit._GENERATORS:
        module, func = target.split(":")
        try:
            getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            continue
        return True
    return False


def test_script_is_a_thin_wrapper():
    text = (ROOT / "scripts" / "audit.py").read_text()
    assert len(text.splitlines()) <= 8 and "sys.path" not in text
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "audit.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "(default:" in proc.stdout and "--backend" in proc.stdout
