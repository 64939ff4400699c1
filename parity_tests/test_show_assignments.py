"""Tests of ``yolo-ref show-assignments`` (``torch_impl.cli.show_assignments``): PNGs, table /
JSON against the library, inputs, exit codes; one run of the thin ``scripts/`` wrapper.

Every run uses --img-size 320 (PNGs upscaled x2 to 640 px) so the whole file stays a few seconds.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ref_numpy.assign as R
from ref_numpy.shared.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE
from torch_impl.cli import show_assignments as script

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "fixtures" / "shapes"
LABELS3 = SHAPES / "labels" / "shapes_0003.txt"  # one triangle, (249, 214)-(293, 255) px


def _run(argv, tmp_path, name="out"):
    """main(argv + --json), returning (exit code, JSON document or None)."""
    out = tmp_path / f"{name}.json"
    rc = script.main([*map(str, argv), "--json", str(out), "--quiet"])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


def _near(img: Image.Image, xy, rgb, radius=2) -> bool:
    """Some pixel within ``radius`` of ``xy`` has exactly colour ``rgb``."""
    a = np.asarray(img)
    x, y = int(round(xy[0])), int(round(xy[1]))
    patch = a[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1]
    return bool(np.any(np.all(patch == np.array(rgb, np.uint8), axis=-1)))


# ============================================================================ PNGs

@pytest.mark.parametrize("assigner", script.ASSIGNERS)
def test_each_assigner_writes_level_pngs_and_overview(tmp_path, assigner):
    rc, doc = _run([LABELS3, "--img-size", 320, "--assigner", assigner, "--out", tmp_path / "png"],
                   tmp_path)
    assert rc == 0 and doc["assigner"] == assigner and not doc["no_positive"]
    assert doc["rows"], "the triangle gets positives"
    names = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert names == ["assign_P3.png", "assign_P4.png", "assign_P5.png", "assign_overview.png"]
    scale = 2  # 320 -> 640 px
    panels = []
    for lv, stride in enumerate((8, 16, 32)):
        with Image.open(tmp_path / "png" / f"assign_P{lv + 3}.png") as im:
            im.verify()  # a valid PNG
        im = Image.open(tmp_path / "png" / f"assign_P{lv + 3}.png").convert("RGB")
        panels.append(im)
        assert im.width == 320 * scale and im.height > 320 * scale  # picture + title + legend
        pic = im.crop((0, 28, 640, 28 + 640))  # the picture below the 28 px title band
        assert np.asarray(pic).std() > 10  # not blank
        # the GT outline (yellow) on its bottom edge, the grid line at the top-left cell corner
        x1, y1, x2, y2 = (v * scale for v in doc["gts"][0]["box_xyxy_px"])
        assert _near(pic, ((x1 + x2) / 2, y2 - 1), script.GT_RGB)
        assert _near(pic, (stride * scale, 6), script.GRID_RGB, radius=0)
        # v5 and tutorial assign on every level; v3 (best level) and TAL may not
        assert assigner in ("v3", "tal") or any(r["level"] == lv for r in doc["rows"])
    with Image.open(tmp_path / "png" / "assign_overview.png") as ov:
        assert ov.size == (sum(p.width for p in panels) + 8 * 2, max(p.height for p in panels))


def test_positive_cells_are_shaded_in_their_anchor_colour(tmp_path):
    """On the grey canvas (no image), a positive cell's strip of anchor k is tinted towards its colour."""
    labels = tmp_path / "one.txt"
    labels.write_text("0 0.5 0.5 0.1 0.1\n")  # 32 px square at the centre of 320
    rc, doc = _run([labels, "--img-size", 320, "--out", tmp_path / "png"], tmp_path)
    assert rc == 0 and doc["image"] is None
    pic = np.asarray(Image.open(tmp_path / "png" / "assign_P3.png").convert("RGB"))[28:28 + 640]
    plain = pic[5, 5].astype(int)  # the dimmed grey canvas far from everything
    na = 3
    for r in (r for r in doc["rows"] if r["level"] == 0):
        gj, gi = r["cell"]
        cell = 8 * 2
        x = gi * cell + (r["anchor"] * cell) // na + cell // (2 * na)
        y = gj * cell + cell // 2 + 3
        rgb = np.array(script.ANCHOR_RGB[r["anchor"]])
        tint = pic[y, x].astype(int) - plain
        assert np.dot(tint, rgb - plain) > 0, (r, pic[y, x], plain)


# ============================================================================ table and JSON

def test_v5_json_is_the_library_report(tmp_path):
    rc, doc = _run([LABELS3, "--img-size", 320, "--backend", "torch"], tmp_path)
    assert rc == 0
    t = np.array([g["target_row"] for g in doc["gts"]])
    anchors = np.array(doc["settings"]["anchors_px"]) / np.array([8.0, 16.0, 32.0])[:, None, None]
    grids = [(40, 40), (20, 20), (10, 10)]
    expected = R.yolov5_assignment_report(t, anchors, grids, 4.0, 0.5)  # NumPy reference
    assert doc["report"] == json.loads(json.dumps(expected.to_dict()))
    # the targets are the label file's box (320 px image letterboxed to 320: identity)
    rows = np.loadtxt(LABELS3, ndmin=2)
    direct = R.yolov5_assignment_report(np.c_[np.zeros(len(rows)), rows], anchors, grids).to_dict()
    cells = lambda rep: [(p["level"], p["anchor"], p["cell"]) for g in rep["gts"] for p in g["positives"]]
    assert cells(doc["report"]) == cells(direct)
    # the table rows are the report's positives, in the library's row order
    flat = sorted(((p.level, p.row, g.gt, p.anchor, p.cell, p.target)
                   for g in expected.gts for p in g.positives), key=lambda x: x[:2])
    assert [(r["level"], r["gt"], r["anchor"], r["cell"], r["target"]) for r in doc["rows"]] \
        == [(lv, g, a, c, tb) for lv, _, g, a, c, tb in flat]


def test_table_on_stdout(capsys):
    """One line per GT (then its levels: anchor, ratios, cells, the failing test), not the
    raw rows; --rows adds YOLOv5's raw table."""
    assert script.main([str(LABELS3), "--img-size", "320"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "tx ty tw th" not in out and out.startswith("GT0 triangle 44x41 px (1.1:1) 18 positives")
    # 44 x 41 px against the 10 x 13 anchor: w/aw = 4.4 fails anchor_t 4, on P3
    assert "P3: a0 10x13 rejected: w/aw = 4.4 >= anchor_t 4; a1 16x30 (w/aw 2.75" in out
    assert "1 GTs, 18 positives, 0 without positive, 0 collisions" in out
    assert script.main([str(LABELS3), "--img-size", "320", "--rows"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "tx ty tw th" in out and "GT0 triangle" in out


def test_help_has_examples(capsys):
    assert script.main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Examples:" in out and "--assigner" in out and "--tal-pred" in out and "Exit status" in out
    assert "None: v5, or tal for an anchor" in " ".join(out.split())
    assert "exit codes: 0 done" in out


# ============================================================================ inputs

@pytest.mark.parametrize("data", ["", "annotations.json", "voc", "dataset.yaml"])
def test_data_index_in_every_format(tmp_path, data):
    """Item 3 of the fixture read as YOLO root, COCO, VOC, YAML (train split) gives one assignment."""
    rc, doc = _run(["--data", SHAPES / data if data else SHAPES, "--index", 3, "--split", "train",
                    "--img-size", 320], tmp_path)
    assert rc == 0
    assert Path(doc["image"]).name == "shapes_0003.jpg"
    assert [g["name"] for g in doc["gts"]] == ["triangle"]
    assert np.array_equal(np.round([g["box_xyxy_px"] for g in doc["gts"]]), [[249, 214, 293, 255]])
    _, ref = _run([LABELS3, "--img-size", 320], tmp_path, "ref")
    key = lambda d: [(r["gt"], r["level"], r["anchor"], r["cell"]) for r in d["rows"]]
    assert key(doc) == key(ref)


def test_letterbox_and_plain_resize(tmp_path):
    """A 160 x 80 image: letterboxed to 320 it scales by 2 and pads 80 px top and bottom;
    --no-letterbox stretches x by 2, y by 4 (all exact in floats)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (160, 80), (30, 90, 150)).save(tmp_path / "images" / "a.png")
    labels = tmp_path / "labels" / "a.txt"
    labels.write_text("0 0.5 0.5 0.5 0.5\n")  # (40, 20)-(120, 60) px
    rc, doc = _run([labels, "--img-size", 320, "--out", tmp_path / "lb"], tmp_path, "lb")
    assert rc == 0 and doc["image"].endswith("a.png")
    assert doc["gts"][0]["box_xyxy_px"] == [80.0, 120.0, 240.0, 200.0]
    rc, doc = _run([labels, "--img-size", 320, "--no-letterbox"], tmp_path, "plain")
    assert rc == 0 and doc["gts"][0]["box_xyxy_px"] == [80.0, 80.0, 240.0, 240.0]
    pic = np.asarray(Image.open(tmp_path / "lb" / "assign_P5.png").convert("RGB"))[28:28 + 640]
    assert not np.array_equal(pic[100, 300], pic[320, 300])  # grey padding vs the blue image


# ============================================================================ warnings

def test_gt_without_positive_exits_1_and_is_marked(tmp_path, capsys):
    labels = tmp_path / "thin.txt"
    labels.write_text("0 0.5 0.5 0.95 0.02\n0 0.3 0.3 0.1 0.1\n")  # 304 x 6 px: no anchor within 1.5
    rc, doc = _run([labels, "--img-size", 320, "--anchor-t", 1.5, "--out", tmp_path / "png"], tmp_path)
    assert rc == EXIT_CHECK_FAILED
    assert [m["gt"] for m in doc["no_positive"]] == [0]
    assert "aspect ratio" in doc["no_positive"][0]["reason"]  # 304 x 6: one side too large, the other too small
    assert doc["report"]["unassigned"][0]["gt"] == 0
    pic = Image.open(tmp_path / "png" / "assign_P3.png").convert("RGB").crop((0, 28, 640, 668))
    x1, y1, x2, y2 = (2 * v for v in doc["gts"][0]["box_xyxy_px"])
    assert _near(pic, (x1 + 4, y1 + 1), script.MISS_RGB)  # dashed red outline
    gaps = [not _near(pic, (x, y1 + 1), script.MISS_RGB, radius=0) for x in range(int(x1) + 2, int(x2) - 2)]
    assert any(gaps), "the outline is dashed"
    assert script.main([str(labels), "--img-size", "320", "--anchor-t", "1.5"]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    # the line names the test that fails: no scale of a 50:1 box fits any anchor's shape
    assert "GT0 0 304x6 px (47.5:1) NO POSITIVE (aspect ratio): aspect 47.5:1" in out
    # 304 x 6.4 px against P3's 10 x 13: too wide AND too flat, both numbers given
    assert "P3: a0 10x13 rejected: w/aw = 30.4 >= anchor_t 1.5 and h/ah = 0.492 <= 1/1.5" in out


@pytest.mark.parametrize("assigner", ["v5", "tutorial", "v3", "tal"])
def test_collision_of_identical_gts_reports_the_winner(tmp_path, capsys, assigner):
    labels = tmp_path / "twins.txt"
    labels.write_text("1 0.3 0.3 0.1 0.1\n1 0.3 0.3 0.1 0.1\n")
    rc, doc = _run([labels, "--img-size", 320, "--assigner", assigner, "--out", tmp_path / "png"],
                   tmp_path)
    # TAL gives every contested point to GT 0 (max overlap, first on ties): GT 1 ends with nothing
    assert rc == (EXIT_CHECK_FAILED if assigner == "tal" else EXIT_OK) and doc["collisions"]
    if assigner == "tal":
        assert doc["no_positive"] == [{"gt": 1, "reason": "all its anchors went to other GTs"}]
    for c in doc["collisions"]:
        assert set(c["writers"]) == {0, 1}
        # anchor-based: the last write wins (GT 1); TAL: max overlap, first on ties (GT 0)
        assert c["winner"] == (0 if assigner == "tal" else 1)
    if assigner != "tal":  # every row of GT 0 is overwritten by GT 1
        assert all(not r["won"] for r in doc["rows"] if r["gt"] == 0)
    assert script.main([str(labels), "--img-size", "320", "--assigner", assigner]) == rc
    assert f"GT {doc['collisions'][0]['winner']} wins" in capsys.readouterr().out
    c = doc["collisions"][0]
    _, _, gj, gi = c["slot"]
    cell = 2 * (8, 16, 32)[c["level"]]
    pic = Image.open(tmp_path / "png" / f"assign_P{c['level'] + 3}.png").convert("RGB").crop((0, 28, 640, 668))
    assert _near(pic, (gi * cell + cell / 2, gj * cell + cell / 2), script.COLLISION_RGB)  # the X


# ============================================================================ errors

@pytest.mark.parametrize("content", ["0 0.5 0.5\n", "0 0.5 0.5 x 0.1\n", "0 1.5 0.5 0.1 0.1\n",
                                     "-1 0.5 0.5 0.1 0.1\n", "0.5 0.5 0.5 0.1 0.1\n"])
def test_malformed_labels_exit_2(tmp_path, content, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    assert script.main([str(bad), "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "bad.txt:1" in err and str(bad) in err  # the user's file, not a temporary copy


def test_unreadable_inputs_exit_2(tmp_path, capsys):
    assert script.main([str(tmp_path / "missing.txt"), "--quiet"]) == EXIT_USAGE
    assert "missing.txt" in capsys.readouterr().err
    labels = tmp_path / "ok.txt"
    labels.write_text("0 0.5 0.5 0.1 0.1\n")
    not_image = tmp_path / "x.png"
    not_image.write_text("not a png")
    assert script.main([str(labels), "--image", str(not_image), "--quiet"]) == EXIT_USAGE
    assert "x.png" in capsys.readouterr().err
    assert script.main(["--data", str(tmp_path / "nowhere"), "--quiet"]) == EXIT_USAGE


@pytest.mark.parametrize("argv", [
    [],  # neither labels nor --data
    [str(LABELS3), "--data", str(SHAPES)],  # both
    [str(LABELS3), "--assigner", "v9"],
    [str(LABELS3), "--strides", "8,x"],
    [str(LABELS3), "--strides", "8,16", "--anchors", "10,13, 16,30, 33"],  # odd count
    [str(LABELS3), "--anchors", "10,13, 16,30"],  # 2 anchors for 3 levels
    [str(LABELS3), "--anchors", "10,-13, 16,30, 33,23, 30,61, 62,45, 59,119"],
    [str(LABELS3), "--img-size", "100"],  # not a multiple of 32
    [str(LABELS3), "--anchor-t", "0"],
    [str(LABELS3), "--topk", "0"],
    [str(LABELS3), "--tal-pred", "perfect"],
])
def test_bad_arguments_exit_2(argv, capsys):
    assert script.main([*argv, "--quiet"]) == EXIT_USAGE


def test_index_past_the_end_exits_2(capsys):
    assert script.main(["--data", str(SHAPES), "--index", "99", "--quiet"]) == EXIT_USAGE
    assert "--index 99" in capsys.readouterr().err


# ============================================================================ backends, TAL predictions

@pytest.mark.parametrize("assigner", script.ASSIGNERS)
def test_numpy_and_torch_backends_agree(tmp_path, assigner):
    labels = tmp_path / "three.txt"
    labels.write_text("0 0.5 0.5 0.3 0.2\n1 0.31 0.3 0.1 0.1\n1 0.3 0.3 0.1 0.1\n")
    docs = []
    for backend in ("ref", "torch", "numpy"):  # "numpy": the old spelling of "ref"
        rc, doc = _run([labels, "--img-size", 320, "--assigner", assigner, "--backend", backend],
                       tmp_path, backend)
        assert rc in (EXIT_OK, EXIT_CHECK_FAILED)
        assert doc["settings"]["backend"] == ("torch" if backend == "torch" else "ref")
        docs.append({k: v for k, v in doc.items() if k != "settings"})
    assert docs[0] == docs[1] == docs[2]


def test_tal_prediction_choices(tmp_path):
    """zeros: every CIoU clamps to 0, the top k are the first points, none inside: no GT gets
    a positive (exit 3); gt-jitter is reproducible by --seed and differs across seeds."""
    args = ["--data", SHAPES, "--index", 5, "--img-size", 320, "--assigner", "tal"]
    rc, doc = _run([*args, "--tal-pred", "zeros"], tmp_path, "zeros")
    assert rc == EXIT_CHECK_FAILED and not doc["rows"] and len(doc["no_positive"]) == len(doc["gts"])
    _, a = _run([*args, "--tal-pred", "gt-jitter", "--seed", 1], tmp_path, "a")
    _, b = _run([*args, "--tal-pred", "gt-jitter", "--seed", 1], tmp_path, "b")
    _, c = _run([*args, "--tal-pred", "gt-jitter", "--seed", 2], tmp_path, "c")
    assert a["rows"] == b["rows"] and a["rows"] != c["rows"]
    for r in a["rows"]:  # each positive point lies inside its GT: l, t, r, b distances > 0
        assert min(r["target"]) > 0


def test_custom_strides_and_anchors(tmp_path):
    anchors = "10,13, 16,30, 30,61, 62,45"  # 2 levels of 2 anchors
    rc, doc = _run([LABELS3, "--strides", "8,16", "--anchors", anchors, "--img-size", 96,
                    "--out", tmp_path / "a"], tmp_path, "a")
    assert rc == EXIT_OK and doc["report"]["levels"][1]["grid"] == [6, 6]
    assert {r["anchor"] for r in doc["rows"]} <= {0, 1}
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == \
        ["assign_P3.png", "assign_P4.png", "assign_overview.png"]
    with Image.open(tmp_path / "a" / "assign_P3.png") as im:
        assert im.width == 96 * 7  # upscaled to at least 640 px by a whole factor
    rc, _ = _run([LABELS3, "--strides", "8,12", "--anchors", anchors, "--img-size", 96,
                  "--out", tmp_path / "b"], tmp_path, "b")
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "b").glob("*.png")) == \
        ["assign_L0.png", "assign_L1.png", "assign_overview.png"]


# ============================================================================ the library behind the command

def test_tal_stand_in_boxes():
    """prior: a square of side 4 strides centred on each point (points from coder.make_anchors,
    cell centres in pixels); zeros: all zero; gt-jitter: reproducible by seed, the prior box for
    points in no GT, a valid xyxy box (x1 <= x2) elsewhere."""
    gt = np.array([[40.0, 40.0, 120.0, 100.0]])
    anc, st, prior = script.tal_stand_in(gt, [8, 16], 64, "prior", 0)
    assert anc.shape == (64 + 16, 2) and st.tolist() == [8.0] * 64 + [16.0] * 16
    assert anc[0].tolist() == [4.0, 4.0] and anc[64].tolist() == [8.0, 8.0]
    assert np.array_equal(prior, np.concatenate([anc - 2 * st[:, None], anc + 2 * st[:, None]], 1))
    assert not script.tal_stand_in(gt, [8, 16], 64, "zeros", 0)[2].any()
    a = script.tal_stand_in(gt, [8, 16], 64, "gt-jitter", 1)[2]
    b = script.tal_stand_in(gt, [8, 16], 64, "gt-jitter", 1)[2]
    c = script.tal_stand_in(gt, [8, 16], 64, "gt-jitter", 2)[2]
    inside = ((anc > gt[0, :2]) & (anc < gt[0, 2:])).all(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[~inside], prior[~inside]) and not np.array_equal(a[inside], prior[inside])
    assert np.all(a[:, 2:] >= a[:, :2])


def test_labels_read_through_the_formats_reader(tmp_path):
    """A label file with classes.txt one level up and no image: boxes on the grey canvas of
    --img-size, classes named; the same boxes as ref_numpy.formats.read_yolo gives for the
    fixture's own image."""
    from ref_numpy.formats import read_yolo

    img, boxes, cls, image, names = script.load_from_labels(LABELS3, None, 320)
    assert image is not None and image.name == "shapes_0003.jpg" and img.shape == (320, 320, 3)
    ds = read_yolo(SHAPES / "labels", images_dir=SHAPES / "images")
    im = next(i for i in ds.images if Path(i["file_name"]).stem == "shapes_0003")
    anns = [a for a in ds.annotations if a["image_id"] == im["id"]]
    assert boxes.tolist() == [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
    assert cls.tolist() == [a["category_id"] for a in anns] and names[cls[0]] == "triangle"
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    img, boxes, cls, image, names = script.load_from_labels(tmp_path / "labels" / "a.txt", None, 64)
    assert image is None and np.all(img == 114) and names == ["cat", "dog"]
    assert boxes.tolist() == [[24.0, 16.0, 40.0, 48.0]] and cls.tolist() == [1]


def test_scripts_wrapper_runs_the_command(tmp_path):
    """scripts/show_assignments.py is a thin wrapper of `yolo-ref show-assignments`: same
    table, same exit code, run as a separate process from another directory."""
    out = tmp_path / "w.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "show_assignments.py"), str(LABELS3),
                        "--img-size", "320", "--json", str(out)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == EXIT_OK, r.stderr
    assert "1 GTs, 18 positives, 0 without positive, 0 collisions" in r.stdout
    _, doc = _run([LABELS3, "--img-size", 320], tmp_path, "direct")
    assert json.loads(out.read_text()) == doc
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "show_assignments.py")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == EXIT_USAGE
