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
