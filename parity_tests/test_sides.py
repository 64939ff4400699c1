"""Tests of :mod:`parity_tests.sides`: one notion of a side, pointed at another package
(``YOLO_REF_PORT``) or another device (``YOLO_REF_DEVICE``) without editing a test."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from parity_tests.sides import (DEVICE_ENV, NO_CUDA, PORT_ENV, REF, TORCH, cuda_available, get_side,
                                missing_reason, resolve)
from parity_tests.tolerances import dtype_of

ROOT = Path(__file__).resolve().parents[1]


def test_get_side_names_and_defaults(monkeypatch):
    monkeypatch.delenv(PORT_ENV, raising=False)
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert get_side("ref") is REF and get_side("numpy") is REF
    port = get_side("torch")
    assert port == get_side("port") == TORCH and port.device == "cpu" and port.is_torch
    with pytest.raises(ValueError, match="^backend: .*'jax'"):
        get_side("jax")
    with pytest.raises(ValueError, match="^device: "):
        get_side("ref", device="cuda")


def test_environment_points_the_port_elsewhere(monkeypatch):
    monkeypatch.setenv(PORT_ENV, "some_port")
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")
    port = get_side("torch")
    assert (port.package, port.device) == ("some_port", "cuda:1")
    assert get_side("torch", device="cpu").device == "cpu"  # an explicit device wins
    with pytest.raises(ImportError, match="side 'torch': no module some_port.boxes"):
        port.function("boxes.box_iou")
    if not cuda_available():
        assert port.available() == NO_CUDA


def test_conversions_keep_integer_dtypes_and_cast_floats():
    torch = pytest.importorskip("torch")
    call = (np.arange(4.0).reshape(1, 4), np.array([1, 2], np.int64), [np.zeros(2, bool)], 0.5, "xyxy")
    ref = REF.to_inputs(call, "float32")
    assert [dtype_of(x) for x in (ref[0], ref[1], ref[2][0])] == ["float32", "int64", "bool"]
    port = get_side("torch", device="cpu").to_inputs({"a": call}, "float32")["a"]
    assert isinstance(port[0], torch.Tensor) and port[0].dtype == torch.float32
    assert port[1].dtype == torch.int64 and port[2][0].dtype == torch.bool and port[3:] == (0.5, "xyxy")
    out = get_side("torch", device="cpu").call("boxes.box_area", np.array([[0.0, 0.0, 2.0, 3.0]]),
                                               dtype="float32")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.tolist() == [6.0]


def test_oracles_resolve_lazily():
    assert resolve("numpy.linalg.norm") is np.linalg.norm
    with pytest.raises(ImportError) as info:
        resolve("no_such_oracle_pkg.ops.box_iou")
    assert "no_such_oracle_pkg is not installed (pip install no_such_oracle_pkg)" in missing_reason(
        "no_such_oracle_pkg.ops.box_iou", info.value)


@pytest.mark.cuda
def test_port_on_cuda_returns_cuda_tensors():
    out = get_side("torch", device="cuda").run("boxes.box_area", (np.array([[0.0, 0.0, 2.0, 3.0]]),))
    assert out.device.type == "cuda"


def _registry_against(tmp_path, body: str) -> subprocess.CompletedProcess:
    pkg = tmp_path / "altport"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "boxes.py").write_text(textwrap.dedent(body))
    env = {**os.environ, PORT_ENV: "altport", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
           "HYPOTHESIS_PROFILE": "dev"}
    env.pop(DEVICE_ENV, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "parity_tests" / "test_registry.py"), "-k", "box_area"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def test_the_suite_runs_against_another_package(tmp_path):
    """YOLO_REF_PORT=altport: the registry's box_area rows call altport.boxes.box_area. An
    honest re-export passes; one that returns float64 for float32 input fails on the dtype."""
    honest = _registry_against(tmp_path / "a", """\
        from torch_impl.boxes import box_area  # noqa: F401
        """)
    assert honest.returncode == 0, honest.stdout[-2000:]
    wrong = _registry_against(tmp_path / "b", """\
        from torch_impl.boxes import box_area as _area

        def box_area(boxes):
            return _area(boxes).double()
        """)
    assert wrong.returncode == 1, wrong.stdout[-2000:]
    assert "dtype float64 != float32" in wrong.stdout


# ----------------------------------------------------------------------------- the one Side, for commands too

class _Resolved(Exception):
    """Raised by the stand-in get_side: the command reached the backend resolution."""


def _commands_with_backend(capsys) -> list:
    import ref_numpy.cli as cli

    found = []
    for name in cli.COMMANDS:
        assert cli.main([name, "--help"]) == 0, name
        if "--backend" in capsys.readouterr().out:
            found.append(name)
    return found


# the least each command needs to reach its --backend (add one for every new command with it)
_BACKEND_ARGV = {
    "audit": [],
    "evaluate": ["--gt", str(ROOT / "fixtures" / "shapes"), "--synthetic-pred"],
    "anchors": ["--data", str(ROOT / "fixtures" / "shapes")],
    "show-assignments": [str(ROOT / "fixtures" / "shapes" / "labels" / "shapes_0003.txt")],
}


def test_every_backend_option_goes_through_the_shared_side(capsys, monkeypatch):
    """Every subcommand with a ``--backend`` option resolves it (and ``--device``) with
    :func:`ref_numpy.shared.sides.get_side`: with a stand-in that stops the command, each one
    reaches it with the backend and device it was given (a command with its own switch would
    run on, or fail with its own message)."""
    pytest.importorskip("torch")  # show-assignments is a port command
    import ref_numpy.cli as cli
    import ref_numpy.shared.sides as shared

    with_backend = _commands_with_backend(capsys)
    assert {"evaluate", "anchors", "show-assignments", "audit"} <= set(with_backend)
    assert set(with_backend) <= set(_BACKEND_ARGV), "add the new command to _BACKEND_ARGV"
    calls = []

    def stand_in(name, device=None, package=None):
        calls.append((name, device))
        raise _Resolved(name)

    monkeypatch.setattr(shared, "get_side", stand_in)
    for name in with_backend:
        calls.clear()
        with pytest.raises(_Resolved):
            cli.main([name, *_BACKEND_ARGV[name], "--backend", "torch", "--device", "cuda:7"])
        assert calls[:1] == [("torch", "cuda:7")], (name, calls)


def test_check_names_the_device():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="^--device no-such-device: not usable here"):
        get_side("torch", device="no-such-device").check()
    if not cuda_available():
        with pytest.raises(ValueError, match=f"^--device cuda: not usable here \\({NO_CUDA}\\)"):
            get_side("torch", device="cuda").check()
    assert REF.check() is REF


def test_metrics_backend_is_a_side_with_a_fall_back(tmp_path, monkeypatch):
    """``MetricsBackend`` over a port side: NumPy in and out through the side's conversions;
    a function the port's package lacks is computed by the reference, and a note says so."""
    pytest.importorskip("torch")
    from ref_numpy.metrics import compute_ap, voc_ap
    from ref_numpy.shared.protocols import MetricsBackend
    from ref_numpy.shared.sides import get_side as shared_get_side
    from parity_tests.tolerances import assert_parity

    pkg = tmp_path / "halfport_metrics"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "metrics.py").write_text("from torch_impl.metrics import compute_ap  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = MetricsBackend(shared_get_side("torch", "cpu", package="halfport_metrics"))
    assert (backend.name, backend.device, backend.side.package) == ("torch", "cpu", "halfport_metrics")
    rec, prec = np.array([0.1, 0.4, 0.5]), np.array([1.0, 0.8, 0.6])
    out = backend.call("compute_ap", rec, prec)
    assert all(isinstance(x, np.ndarray) for x in out) and backend.notes == []
    assert_parity(out, compute_ap(rec, prec), name="metrics.compute_ap")
    ap = backend.call("voc_ap", rec, prec)
    assert backend.notes == ["halfport_metrics.metrics has no voc_ap yet: computed with "
                             "ref_numpy.metrics"]
    assert_parity(ap, voc_ap(rec, prec), name="metrics.voc_ap")
    with pytest.raises(ValueError, match="backend"):
        MetricsBackend("jax")


_SHARED_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # a base install: import torch raises ImportError
import numpy as np
from ref_numpy.shared.sides import REF, get_side, to_numpy
from ref_numpy.shared.protocols import MetricsBackend
box = np.array([[0.0, 0.0, 2.0, 3.0]])
assert REF.call("boxes.box_area", box).tolist() == [6.0]
assert to_numpy({"a": (box,)})["a"][0] is box
port = get_side("torch")
assert "yolo-ref[torch]" in port.available()
for attempt in (port.check, lambda: port.to_inputs(box), lambda: port.module("boxes"),
                lambda: MetricsBackend("torch")):
    try:
        attempt()
    except ImportError as exc:
        assert "yolo-ref[torch]" in str(exc) and exc.name == "torch", exc
    else:
        raise AssertionError("a torch side ran without torch")
assert sys.modules["torch"] is None
print("shared sides without torch ok")
"""


def test_shared_sides_import_without_torch():
    """``ref_numpy.shared.sides`` (and the reference side) work on the base install; a torch side
    there raises ``ImportError`` naming the ``torch`` extra, whatever it is asked to do."""
    proc = subprocess.run([sys.executable, "-c", _SHARED_WITHOUT_TORCH], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "shared sides without torch ok" in proc.stdout
