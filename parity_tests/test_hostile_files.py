"""Hostile files and command lines: every malformed input is one clear error, never a traceback
or a silent wrong answer.

Files are generated at test time (label txt, data-set YAML, COCO JSON, images, checkpoints) and
fed to the library readers and to the ``yolo-ref`` subcommands; CLI misuse of every subcommand
exits 2 with a one-line message. Conventions checked against the upstream loaders where they
are the contract: a 16-bit image keeps its high byte (cv2 ``IMREAD_COLOR``, what yolov5 v7.0 and
Ultralytics 8.4 read); where upstream answers silently wrong (``1_0`` read as class 10, two
images sharing one label file, repeated class names) the toolkit refuses by design.
"""
from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ref_numpy.cli import COMMANDS
from ref_numpy.cli import main as yolo_ref
from ref_numpy.formats import read_yolo
from ref_numpy.shared.cli import EXIT_USAGE
from ref_numpy.shared.datayaml import check_label_files, read_data_yaml, read_yolo_images
from ref_numpy.shared.devices import available_devices, parse_device, select_device
from ref_numpy.shared.labels import parse_label_number
from torch_impl.data import DetectionDataset, load_image
from torch_impl.models import yolov5
from torch_impl.models.convert import read_yolov5_state_dict
from torch_impl.train import load_model
from torch_impl.train.checkpoint import (DIGEST_KEY, check_resume_checkpoint, checkpoint_digest,
                                         load_checkpoint, remove_stale_tmp, save_checkpoint)
from torch_impl.train.trainer import read_start_weights


SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"


def _one_line_error(exc: BaseException, name: str) -> str:
    msg = str(exc)
    assert "\n" not in msg, msg
    assert name in msg, (name, msg)
    return msg


def _rgb(path: Path, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 90, np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- label tokens

BAD_TOKENS = ["1_0", "0_5", "\u0661", "0x1", "1e", "--1", "1.2.3", "", "nan_", "\uff11"]
GOOD_TOKENS = {"1": 1.0, "0.5": 0.5, ".5": 0.5, "5e-1": 0.5, "+1.": 1.0, "1E0": 1.0}


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_label_number_grammar_refuses_what_float_would_take(token):
    with pytest.raises(ValueError, match=r"^a\.txt:3: expected a decimal number"):
        parse_label_number(token, "a.txt:3")


def test_label_number_grammar_keeps_plain_decimals():
    assert {t: parse_label_number(t, "x") for t in GOOD_TOKENS} == GOOD_TOKENS


@pytest.mark.parametrize("line", ["1_0 0.5 0.5 0.2 0.2", "1 0.5 0_5 0.2 0.2",
                                  "\u0661 0.5 0.5 0.2 0.2"])
def test_underscore_and_unicode_digits_are_refused_by_every_label_reader(tmp_path, line):
    root = tmp_path / "ds"
    _rgb(root / "images" / "a.jpg")
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text(f"0 0.5 0.5 0.1 0.1\n{line}\n", encoding="utf-8")
    lf = str(root / "labels" / "a.txt") + ":2"
    with pytest.raises(ValueError) as e1:
        read_yolo(root / "labels", images_dir=root / "images")
    with pytest.raises(ValueError) as e2:
        read_yolo_images([root / "images" / "a.jpg"])
    with pytest.raises(ValueError) as e3:
        DetectionDataset(root / "images", img_size=32)
    for e in (e1, e2, e3):
        _one_line_error(e.value, lf)


# ----------------------------------------------------------------------------- images

def test_16_bit_image_keeps_its_high_byte_as_cv2_does(tmp_path):
    a = (np.arange(40 * 30, dtype=np.int64).reshape(30, 40) * 54).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    img = load_image(tmp_path / "g16.png")
    assert img.dtype == np.uint8 and img.shape == (30, 40, 3)
    np.testing.assert_array_equal(img, np.repeat((a >> 8).astype(np.uint8)[..., None], 3, -1))
    assert img.max() < 255 < a.max()  # saturating would give 255 from pixel 5 on


def test_16_bit_image_matches_cv2_imread(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for name, arr in (("g16.png", rng.integers(0, 65536, (9, 7), dtype=np.uint16)),
                      ("rgb16.png", rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16)),
                      ("g16.tif", rng.integers(0, 65536, (9, 7), dtype=np.uint16))):
        cv2.imwrite(str(tmp_path / name), arr)
        np.testing.assert_array_equal(load_image(tmp_path / name),
                                      cv2.imread(str(tmp_path / name))[..., ::-1], err_msg=name)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_broken_image_file_is_one_line_naming_it(tmp_path, content):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(ValueError) as e:
        load_image(tmp_path / "bad.png")
    _one_line_error(e.value, "bad.png: cannot read image")


def test_two_images_sharing_one_label_file_are_refused_naming_both(tmp_path):
    images = [_rgb(tmp_path / "images" / "a.jpg"), _rgb(tmp_path / "images" / "a.png")]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "list.txt").write_text("images/a.jpg\nimages/a.png\n")
    for call in (lambda: DetectionDataset(tmp_path / "images", img_size=32),
                 lambda: DetectionDataset(tmp_path / "list.txt", img_size=32),
                 lambda: read_yolo_images(images),
                 lambda: check_label_files(images)):
        with pytest.raises(ValueError, match="share the label file") as e:
            call()
        msg = _one_line_error(e.value, "a.jpg")
        assert "a.png" in msg and "a.txt" in msg
    # the same image listed twice (oversampling) is one image, not a clash
    (tmp_path / "twice.txt").write_text("images/a.jpg\nimages/a.jpg\n")
    (tmp_path / "images" / "a.png").unlink()
    assert len(DetectionDataset(tmp_path / "twice.txt", img_size=32)) == 2


# ----------------------------------------------------------------------------- data-set YAML

def _yaml(tmp_path: Path, text: str | bytes) -> Path:
    _rgb(tmp_path / "images" / "a.jpg")
    p = tmp_path / "data.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


@pytest.mark.parametrize("text,expected", [
    ("train: images\nval: images\nnames: [cat, dog, cat]\n", "'cat' (classes 0 and 2)"),
    ("train: images\nval: images\nnames: {0: a, 1: b, 2: a, 3: b}\n", "'a' (classes 0 and 2)"),
    ("train: images\nval: images\nnames: [a, b]\nnames: [c]\n", "duplicate key"),
    ("train: images\nval: images\nnames: [a]\nnc: 2\n", "nc"),
    ("- a\n- b\n", "mapping"),
    ("train: [images\n", "data.yaml:"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    ("train: !!python/object:os.system ls\nval: x\nnames: [a]\n", "data.yaml:"),
])
def test_malformed_data_yaml_is_one_line_naming_the_file(tmp_path, text, expected):
    with pytest.raises(ValueError) as e:
        read_data_yaml(_yaml(tmp_path, text))
    assert expected in _one_line_error(e.value, "data.yaml")


def test_repeated_class_names_are_refused_through_the_cli_too(tmp_path, capsys):
    y = _yaml(tmp_path, "train: images\nval: images\nnames: [cat, dog, cat]\n")
    code = yolo_ref(["train", "--data", str(y), "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "Traceback" not in err and "'cat' (classes 0 and 2)" in err
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- COCO JSON via the CLI

def _coco(tmp_path: Path) -> Path:
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 32}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9],
                           "area": 81, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "a"}]}
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(gt))
    return p


@pytest.mark.parametrize("content", [
    b"\x80\x81\x82 binary", b"{\"images\": [", b"[" * 100000 + b"]" * 100000, b"[1, 2, 3]",
    b"{\"images\": [], \"annotations\": [], \"categories\": \"a\"}",
    b"{\"images\": [{\"id\": \"1\", \"file_name\": \"a.jpg\", \"width\": 32, \"height\": 32}],"
    b" \"annotations\": [], \"categories\": []}",
    b"{\"images\": [{\"id\": 99999999999999999999999, \"file_name\": \"a\", \"width\": 1,"
    b" \"height\": 1}], \"annotations\": [], \"categories\": []}",
])
def test_malformed_coco_json_through_evaluate_exits_2_with_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    gt = _coco(tmp_path)
    for argv in (["--gt", str(bad), "--pred", str(gt)], ["--gt", str(gt), "--pred", str(bad)]):
        code = yolo_ref(["evaluate", *argv])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE, (argv, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "bad.json" in err, err


# ----------------------------------------------------------------------------- checkpoints

def _model_file(tmp_path: Path) -> tuple[Path, dict]:
    m = yolov5("n", nc=3)
    good = {"model": m.state_dict(), "ema": None, "names": ["a", "b", "c"],
            "model_cfg": {"nc": 3, "depth_multiple": m.depth_multiple,
                          "width_multiple": m.width_multiple, "head": "anchor"}}
    return save_checkpoint(good, tmp_path / "good.pt"), good


def _malformed_checkpoints(tmp_path: Path, good: dict) -> dict[str, object]:
    sd = dict(good["model"])
    k = next(k for k, v in sd.items() if v.is_floating_point())
    nan = {**sd, k: sd[k].clone().fill_(float("nan"))}
    return {
        "text": "hello\n", "empty": b"", "tensor": torch.zeros(3), "list": [1, 2, 3],
        "missing_keys": {"model_cfg": {"nc": 3}},
        "cfg_not_dict": {**good, "model_cfg": 5},
        "ema_tensor": {**good, "ema": torch.zeros(1)},
        "names_count": {**good, "names": ["a"]},
        "class_count": {**good, "model_cfg": {**good["model_cfg"], "nc": 5}, "names": None},
        "nc_string": {**good, "model_cfg": {**good["model_cfg"], "nc": "3"}},
        "nan_weights": {**good, "model": nan},
        "model_not_tensors": {**good, "model": {"x": 1}},
        "old_layout_missing": {"state_dict": sd, "config": {"nc": 3}},
        "pickled_module": {"model": torch.nn.Linear(2, 2)},
    }


def _write(path: Path, obj) -> Path:
    if isinstance(obj, (str, bytes)):
        path.write_bytes(obj.encode() if isinstance(obj, str) else obj)
    else:
        torch.save(obj, path)
    return path


# what each reader is asked to refuse: the state_dict reader of import-yolov5 looks at the
# tensors only, and start weights of another class count are legitimate (a fresh head)
NOT_ITS_BUSINESS = {
    "read_yolov5_state_dict": {"cfg_not_dict", "ema_tensor", "names_count", "class_count",
                               "nc_string", "old_layout_missing"},
    "read_start_weights": {"class_count"},
    "load_model": set(),
}


def test_every_malformed_checkpoint_is_one_line_naming_the_file(tmp_path):
    _, good = _model_file(tmp_path)
    readers = {"load_model": load_model, "read_start_weights": read_start_weights,
               "read_yolov5_state_dict": read_yolov5_state_dict}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # files written by torch.save carry no digest
        for kind, obj in _malformed_checkpoints(tmp_path, good).items():
            path = _write(tmp_path / f"{kind}.pt", obj)
            for rname, read in readers.items():
                if kind in NOT_ITS_BUSINESS[rname]:
                    continue
                with pytest.raises(ValueError) as e:
                    read(path)
                _one_line_error(e.value, f"{kind}.pt")


def test_checkpoint_messages_say_what_is_wrong(tmp_path):
    _, good = _model_file(tmp_path)
    expect = {"text": "not a torch.save file", "empty": "empty file", "tensor": "a Tensor",
              "list": "a list", "cfg_not_dict": "model_cfg: expected a dict",
              "ema_tensor": "ema: expected None", "names_count": "1 class names for a model of 3",
              "class_count": "do not fit", "nc_string": "nc: expected a positive integer",
              "nan_weights": "holds NaN or inf", "model_not_tensors": "not a tensor",
              "old_layout_missing": "missing keys", "pickled_module": "weights_only=True"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, obj in _malformed_checkpoints(tmp_path, good).items():
            if kind not in expect:
                continue
            path = _write(tmp_path / f"{kind}.pt", obj)
            with pytest.raises(ValueError, match=expect[kind]):
                load_model(path)


def test_bit_flip_in_the_weights_is_a_digest_mismatch(tmp_path):
    marker = torch.arange(4096, dtype=torch.float32) + 0.25
    path = save_checkpoint({"epoch": 3, "model": {"w": marker}, "model_cfg": {"nc": 1}},
                           tmp_path / "last.pt")
    assert load_checkpoint(path)["epoch"] == 3  # verifies and removes the digest
    assert DIGEST_KEY not in load_checkpoint(path)
    raw = bytearray(path.read_bytes())
    at = raw.find(marker.numpy().tobytes()[4000:4016])
    assert at > 0
    raw[at + 5] ^= 0x10  # one bit in one weight
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    assert not torch.equal(torch.load(flipped, weights_only=True)["model"]["w"], marker)  # silent
    with pytest.raises(ValueError, match="digest mismatch") as e:
        load_checkpoint(flipped)
    _one_line_error(e.value, "flipped.pt")


def test_digest_covers_tensors_and_plain_values_in_order():
    a = {"epoch": 1, "model": {"w": torch.zeros(2), "b": torch.ones(1)}}
    assert checkpoint_digest(a) == checkpoint_digest({**a, DIGEST_KEY: "x"})
    assert checkpoint_digest(a) != checkpoint_digest({**a, "epoch": 2})
    assert checkpoint_digest(a) != checkpoint_digest({"epoch": 1, "model": {"w": -torch.zeros(2),
                                                                            "b": torch.ones(1)}})
    assert checkpoint_digest(a) != checkpoint_digest({"epoch": 1, "model": {"b": torch.ones(1),
                                                                            "w": torch.zeros(2)}})


def test_old_checkpoint_without_digest_loads_with_a_note(tmp_path):
    torch.save({"epoch": 0, "args": {}}, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="old.pt: no sha256 digest"):
        assert load_checkpoint(tmp_path / "old.pt") == {"epoch": 0, "args": {}}
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")  # a plain state_dict: no note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(load_checkpoint(tmp_path / "plain.pt")) == {"w"}


def test_resume_checkpoint_missing_keys_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"missing keys \['best_fitness'") as e:
        check_resume_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    _one_line_error(e.value, "last.pt")
    path = save_checkpoint({"epoch": 1, "args": {}}, tmp_path / "partial.pt")
    code = yolo_ref(["train", "--resume", str(path)])
    assert code == EXIT_USAGE


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save_checkpoint({"epoch": 0}, tmp_path / "last.pt")
        other = tmp_path / "results.csv"
        other.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask == stat.S_IMODE(other.stat().st_mode)


def test_full_disk_never_corrupts_an_existing_checkpoint(tmp_path, monkeypatch):
    import errno

    path = save_checkpoint({"epoch": 1, "model": {"w": torch.arange(8.0)}}, tmp_path / "last.pt")
    before = path.read_bytes()

    def full(obj, f):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as e:
        save_checkpoint({"epoch": 2}, path)
    assert e.value.errno == errno.ENOSPC
    _one_line_error(e.value, str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_stale_tmp_files_are_removed(tmp_path):
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / ".best.pt.x.tmp").write_bytes(b"half")
    (tmp_path / "last.pt").write_bytes(b"keep")
    assert [p.name for p in remove_stale_tmp(tmp_path)] == [".best.pt.x.tmp", ".last.pt.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# ----------------------------------------------------------------------------- devices

BAD_DEVICES = ["banana", "cuda:x", "cuda:-1", "cpu:0", "mps:1", "gpu", "cuda:1:2", "0"]


@pytest.mark.parametrize("device", BAD_DEVICES)
def test_malformed_device_names_are_one_line(device):
    with pytest.raises(ValueError, match="is not a device") as e:
        parse_device(device, "device (--device)")
    _one_line_error(e.value, "device (--device)")
    with pytest.raises(ValueError) as e:
        select_device(device, "device")
    _one_line_error(e.value, "device")


def test_unavailable_devices_name_what_is_available():
    here = available_devices()
    assert here[0] == "cpu"
    wanted = [d for d in ("cuda", "cuda:0", "cuda:7", "mps")
              if d not in here and not (d == "cuda" and "cuda:0" in here)]
    for d in wanted:
        with pytest.raises(ValueError, match=r"available here: cpu") as e:
            select_device(d, "device")
        _one_line_error(e.value, repr(d))
    assert str(select_device("cpu")) == "cpu" and str(select_device(None)) == "cpu"
    assert str(select_device("auto")) == ("cuda:0" if "cuda:0" in here else "cpu")


def _help(name: str, capsys) -> str:
    yolo_ref([name, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("device", ["banana", "cuda:x", "mps:0"])
def test_every_subcommand_with_a_device_gives_one_line(tmp_path, capsys, device):
    y = _yaml(tmp_path, "train: images\nval: images\nnames: [a]\n")
    argv = {"train": ["--data", str(y), "--out", str(tmp_path / "r")],
            "predict": ["--weights", str(tmp_path / "w.pt"), "--source", str(tmp_path / "images"),
                        "--out", str(tmp_path / "p")],
            "evaluate": ["--gt", str(_coco(tmp_path)), "--pred", str(_coco(tmp_path)),
                         "--backend", "torch"],
            "anchors": ["--data", str(SHAPES), "--backend", "torch"],
            "show-assignments": ["--data", str(SHAPES), "--out", str(tmp_path / "s")]}
    with_device = [n for n in COMMANDS if n not in ("audit", "bench", "check")
                   and "--device" in _help(n, capsys)]
    assert set(argv) <= set(with_device) | {"evaluate"}
    for name in with_device:
        code = yolo_ref([name, *argv.get(name, []), "--device", device])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
        assert device in err and "device" in err, (name, err)


# ----------------------------------------------------------------------------- CLI misuse

MISUSE = [["--no-such-option"], ["--img-size", "abc"], ["--conf-thres", "x"], ["--epochs", "-"]]


@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in ("audit", "bench", "check")])
def test_cli_misuse_of_every_subcommand_exits_2_without_a_traceback(name, capsys):
    options = _help(name, capsys)
    for argv in MISUSE:
        if argv[0] != "--no-such-option" and argv[0] not in options:
            continue
        code = yolo_ref([name, *argv])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE, (name, argv, err)
        assert "Traceback" not in err, (name, argv, err)
        assert err.strip().splitlines()[-1].startswith(f"yolo-ref {name}: error:"), (name, err)


@pytest.mark.parametrize("name", ["audit", "bench", "check"])
def test_cli_misuse_of_the_test_subcommands_exits_2(name, capsys):
    code = yolo_ref([name, "--no-such-option"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "Traceback" not in err, err


# ----------------------------------------------------------------------------- output directories

def test_output_path_under_a_regular_file_is_one_line_naming_it(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    y = _yaml(tmp_path, "train: images\nval: images\nnames: [a]\n")
    out = blocker / "run"
    code = yolo_ref(["make-shapes", "--out", str(out), "--n-images", "2"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "Traceback" not in err and str(blocker) in err, err
    code = yolo_ref(["train", "--data", str(y), "--epochs", "1", "--img-size", "32",
                     "--batch-size", "1", "--workers", "0", "--device", "cpu", "--quiet",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "Traceback" not in err, err
    assert str(blocker) in err and len(err.strip().splitlines()) == 1, err


def test_checkpoint_into_an_unwritable_directory_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as e:
        save_checkpoint({"epoch": 0}, blocker / "weights" / "last.pt")
    _one_line_error(e.value, str(blocker / "weights" / "last.pt"))
    with pytest.raises(OSError) as e:
        save_checkpoint({"epoch": 0}, Path("/proc/yolo-ref-cannot-write/last.pt"))
    _one_line_error(e.value, "/proc/yolo-ref-cannot-write/last.pt")
