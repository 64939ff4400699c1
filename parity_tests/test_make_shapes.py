"""Tests of the shapes generator (``ref_numpy.shared.shapes.generate``) and its command
``yolo-ref make-shapes`` (``ref_numpy.cli.make_shapes``): determinism, valid labels, and that the
committed fixture ``fixtures/shapes/`` is what its recorded command generates."""
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parity_tests.tolerances import tolerance

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "shapes"
IMAGE_SUFFIXES = {".jpg", ".png"}
# YOLO txt keeps 6 decimals: in normalised units a label is off by at most this much.
YOLO_ATOL = tolerance("formats.read_yolo", "float64").atol


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ref_numpy.cli", "make-shapes", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _assert_same_tree(actual: Path, desired: Path, *, ignore=(), pixels_only=False) -> None:
    a, d = _files(actual), _files(desired)
    assert sorted(set(a) - set(ignore)) == sorted(set(d) - set(ignore))
    for name, path in d.items():
        if name in ignore:
            continue
        if pixels_only and path.suffix in IMAGE_SUFFIXES:
            assert np.array_equal(_pixels(a[name]), _pixels(path)), f"{name}: pixels differ"
        else:
            assert a[name].read_bytes() == path.read_bytes(), f"{name}: bytes differ"


def test_same_seed_gives_identical_bytes(tmp_path):
    for out in ("a", "b"):
        r = _run("--out", tmp_path / out, "--n-images", 4, "--size", 128, "--seed", 3,
                 "--split", 0.5, "--formats")
        assert r.returncode == 0, r.stderr
    _assert_same_tree(tmp_path / "a", tmp_path / "b")
    assert len(list((tmp_path / "a" / "images").iterdir())) == 4


def test_other_seed_differs_and_prefix_is_stable(tmp_path):
    for out, n, seed in (("s0", 3, 0), ("s1", 3, 1), ("long", 5, 0)):
        r = _run("--out", tmp_path / out, "--n-images", n, "--size", 128, "--seed", seed)
        assert r.returncode == 0, r.stderr
    labels = lambda d: [p.read_bytes() for p in sorted((tmp_path / d / "labels").iterdir())]
    assert labels("s0") != labels("s1")
    assert labels("long")[:3] == labels("s0")  # image i depends on (seed, i) only
    first = sorted((tmp_path / "s0" / "images").iterdir())
    assert all(p.read_bytes() == (tmp_path / "long" / "images" / p.name).read_bytes()
               for p in first)


@pytest.mark.parametrize("size", [96, 320])
def test_labels_valid(tmp_path, size):
    r = _run("--out", tmp_path, "--n-images", 6, "--size", size, "--seed", 7)
    assert r.returncode == 0, r.stderr
    names = (tmp_path / "classes.txt").read_text().splitlines()
    assert 3 <= len(names) <= 6
    n_boxes = 0
    for label in sorted((tmp_path / "labels").glob("*.txt")):
        image = tmp_path / "images" / f"{label.stem}.jpg"
        with Image.open(image) as im:
            assert im.size == (size, size)
        rows = [line.split() for line in label.read_text().splitlines()]
        assert rows, f"{label}: every image has at least one object"
        for row in rows:
            assert len(row) == 5
            assert all(len(v.split(".")[1]) == 6 for v in row[1:]), row  # 6 decimals
            cls, cx, cy, w, h = int(row[0]), *map(float, row[1:])
            assert 0 <= cls < len(names)
            assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)), row
            assert w > 0 and h > 0
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            assert x0 >= -YOLO_ATOL and y0 >= -YOLO_ATOL, row  # inside the image
            assert x1 <= 1 + YOLO_ATOL and y1 <= 1 + YOLO_ATOL, row
            corners = np.array([x0, y0, x1, y1]) * size  # whole pixels, up to the 6 decimals
            assert np.all(np.abs(corners - np.rint(corners)) <= YOLO_ATOL * size), row
            n_boxes += 1
    assert n_boxes >= 6
    train = (tmp_path / "train.txt").read_text().splitlines()
    val = (tmp_path / "val.txt").read_text().splitlines()
    assert len(train) + len(val) == 6 and not set(train) & set(val)
    yaml = (tmp_path / "dataset.yaml").read_text()
    assert "train: train.txt" in yaml and "val: val.txt" in yaml
    assert all(f"  {k}: {n}" in yaml for k, n in enumerate(names))


def test_fixture_has_small_objects_and_overlaps():
    small = overlapping = 0
    for label in sorted((FIXTURE / "labels").glob("*.txt")):
        boxes = np.array([[float(v) for v in line.split()[1:]]
                          for line in label.read_text().splitlines()]) * 320
        small += int(np.sum(boxes[:, 2] * boxes[:, 3] < 32 ** 2))  # COCO "small"
        xy0, xy1 = boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2
        inter = np.clip(np.minimum(xy1[:, None], xy1[None]) - np.maximum(xy0[:, None], xy0[None]),
                        0, None).prod(-1)
        overlapping += int((np.triu(inter, 1) > 0).sum())
    assert small >= 10 and overlapping >= 5


def test_committed_fixture_matches_generator(tmp_path):
    readme = (FIXTURE / "README.md").read_text()
    command = next(line.strip() for line in readme.splitlines()
                   if line.strip().startswith("python scripts/make_shapes.py"))
    args = shlex.split(command)[2:]
    args[args.index("--out") + 1] = str(tmp_path / "fresh")
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    # bytes of images depend on the libjpeg build; their decoded pixels must not
    _assert_same_tree(tmp_path / "fresh", FIXTURE, ignore=("README.md",), pixels_only=True)


def test_library_generator_matches_command(tmp_path):
    """``generate`` (the library home) writes what the command writes, returns the objects it
    wrote, and rejects bad arguments with a ValueError naming them."""
    from ref_numpy.shared import shapes

    objects = shapes.generate(tmp_path / "lib", n_images=3, size=96, seed=5, split=0.5)
    r = _run("--out", tmp_path / "cli", "--n-images", 3, "--size", 96, "--seed", 5, "--split", 0.5)
    assert r.returncode == 0, r.stderr
    _assert_same_tree(tmp_path / "lib", tmp_path / "cli")
    assert [len(o) for o in objects] == [
        len(p.read_text().splitlines()) for p in sorted((tmp_path / "lib" / "labels").iterdir())]
    assert shapes.yolo_lines(objects[0], 96) == sorted((tmp_path / "lib" / "labels").iterdir())[0].read_text()
    for kw, name in (({"split": 1.5}, "split"), ({"n_images": -1}, "n_images"), ({"size": 8}, "size")):
        with pytest.raises(ValueError, match=name):
            shapes.generate(tmp_path / "bad", **kw)


def test_cli_rejects_bad_arguments(tmp_path):
    for bad in (["--split", "1.5"], ["--n-images", "-1"], ["--size", "8"]):
        r = _run("--out", tmp_path, *bad)
        assert r.returncode == 2 and "error" in r.stderr
    r = _run("--help")
    assert r.returncode == 0 and "examples:" in r.stdout
