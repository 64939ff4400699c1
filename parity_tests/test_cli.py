"""The one command line: ``yolo-ref`` and its subcommands, exit codes, thin ``scripts/``.

Every subcommand's ``--help`` runs and shows defaults; the base-install subcommands run with
torch (and every optional package) hidden, as after ``pip install yolo-ref`` without extras.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ref_numpy import cli
from ref_numpy.shared import cli as conv

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
# Subcommands that must work on the base install (numpy, scipy, pillow, PyYAML only).
BASE = [name for name, (_, _, extra) in cli.COMMANDS.items() if extra == ""]
HIDDEN = ("torch", "torchvision", "pycocotools", "matplotlib", "tqdm", "hypothesis")


def run_without_extras(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``yolo-ref ARGV`` in a fresh interpreter where importing any optional package fails."""
    code = ("import sys\n"
            f"for m in {HIDDEN!r}: sys.modules[m] = None\n"
            "from ref_numpy.cli import main\n"
            f"sys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_every_subcommand_resolves_to_a_main():
    for name in cli.COMMANDS:
        fn = cli.load(name)
        assert callable(fn), name


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_help_shows_defaults_and_exit_codes(name, capsys):
    assert cli.main([name, "--help"]) == conv.EXIT_OK
    out = capsys.readouterr().out
    assert f"yolo-ref {name}" in out
    assert conv.EXIT_CODES_TEXT.split(":")[0] in out
    if "--" in out.split("options:", 1)[-1].replace("--help", ""):
        assert "(default:" in out, f"{name} --help shows no defaults"


def test_top_level_usage_and_unknown_subcommand(capsys):
    assert cli.main(["--help"]) == conv.EXIT_OK
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert conv.EXIT_CODES_TEXT in out
    assert cli.main([]) == conv.EXIT_USAGE
    assert cli.main(["no-such-command"]) == conv.EXIT_USAGE
    assert "unknown subcommand" in capsys.readouterr().err


def test_bad_option_is_a_usage_error():
    assert cli.main(["evaluate", "--no-such-option"]) == conv.EXIT_USAGE


def test_python_dash_m_is_the_same_command():
    r = subprocess.run([sys.executable, "-m", "ref_numpy.cli", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "make-shapes" in r.stdout


def test_exit_codes_are_one_table():
    assert conv.EXIT_CODES == {0: "done", 1: "a check failed", 2: "bad input or usage",
                               3: "training diverged"}


def test_usage_error_names_the_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    rc = cli.main(["evaluate", "--gt", str(missing), "--pred", str(missing)])
    assert rc == conv.EXIT_USAGE
    assert "nope.json" in capsys.readouterr().err


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_are_thin_wrappers(script):
    """No library logic in scripts/: no function or class definitions, no sys.path patching."""
    src = script.read_text()
    tree = ast.parse(src)
    defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defs, f"{script.name} defines {defs}: move them to the library"
    assert "sys.path" not in src, f"{script.name} patches sys.path"
    assert len(src.splitlines()) <= 12, f"{script.name} has {len(src.splitlines())} lines"


def test_base_subcommands_help_without_extras(tmp_path):
    for name in BASE:
        if name == "audit":
            continue  # its own test covers the no-torch run (test_audit.py)
        r = run_without_extras([name, "--help"], tmp_path)
        assert r.returncode == 0, f"{name} --help without extras: {r.stderr}"


def test_torch_subcommand_without_torch_says_which_extra(tmp_path):
    r = run_without_extras(["train", "--help"], tmp_path)
    assert r.returncode == conv.EXIT_USAGE
    assert "yolo-ref[torch]" in r.stderr


def test_make_shapes_evaluate_anchors_without_extras(tmp_path):
    """The reference's tools on the base install: make a data set, evaluate it, check anchors."""
    data = tmp_path / "shapes"
    r = run_without_extras(["make-shapes", "--out", str(data), "--n-images", "6", "--size", "128"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_without_extras(["evaluate", "--gt", str(data), "--synthetic-pred", "--backend", "ref",
                            "--protocol", "all"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "AP" in r.stdout
    r = run_without_extras(["anchors", "--data", str(data)], tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert "bpr" in r.stdout.lower() or "BPR" in r.stdout
