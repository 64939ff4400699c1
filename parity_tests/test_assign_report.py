"""Tests of the data-set assignment report: ``torch_impl.assign_report`` (array work),
``ref_numpy.shared.assign_summary`` (aggregation, verdict), ``torch_impl.assign_figures``
(plots, HTML) and ``yolo-ref show-assignments --data`` without ``--index``.

Each deliberately broken set-up is diagnosed in words: anchors in pixels where grid units are
expected, anchors for 320 used at 640, labels normalised twice, x/y swapped, a class of very
thin objects, a stride list that does not match the model; and the healthy fixture stays
quiet. Data sets are the 32-image fixture (or its labels rewritten in a temporary directory),
at --img-size 320 unless the test is about the size.
"""
from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ref_numpy.shared import assign_summary as S
from ref_numpy.shared.cli import EXIT_CHECK_FAILED, EXIT_OK
from torch_impl import assign_report as A
from torch_impl.cli import show_assignments as script

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "fixtures" / "shapes"
YAML = SHAPES / "dataset.yaml"
NAMES = ["rectangle", "ellipse", "triangle"]
DEFAULT = np.array(A.DEFAULT_ANCHORS_PX, np.float64).reshape(3, 3, 2)


def _fixture_rows() -> dict:
    """{stem: [n, 5] rows (class cx cy w h)} of the fixture's YOLO labels."""
    return {p.stem: np.loadtxt(p, ndmin=2) for p in sorted((SHAPES / "labels").glob("*.txt"))}


def _data_set(tmp: Path, rows: dict, names=NAMES) -> Path:
    """A data YAML in ``tmp`` over the fixture's images with the label rows ``rows``."""
    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    lines = []
    for stem, r in rows.items():
        shutil.copyfile(SHAPES / "images" / f"{stem}.jpg", tmp / "images" / f"{stem}.jpg")
        (tmp / "labels" / f"{stem}.txt").write_text(
            "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in r))
        lines.append(f"images/{stem}.jpg")
    (tmp / "all.txt").write_text("\n".join(lines) + "\n")
    (tmp / "data.yaml").write_text("path: .\ntrain: all.txt\nval: all.txt\nnames:\n"
                                   + "".join(f"  {i}: {n}\n" for i, n in enumerate(names)))
    return tmp / "data.yaml"


def _report(data=YAML, split="train", check_swap=False, **setup):
    items, names = A.read_dataset_gts(data, split)
    setup.setdefault("img_size", 320)
    return A.dataset_assignment_report(items, names, A.AssignSetup(**setup), backend="torch",
                                       check_swap=check_swap)


def _kinds(rep) -> list:
    return [f["kind"] for f in rep["summary"]["findings"]]


# ============================================================================ healthy

def test_healthy_fixture_is_quiet():
    """The fixture with YOLOv5's anchors at 320: no finding (x/y swap test included), every GT
    positive, a verdict that says so with the best possible recall."""
    rep = _report(check_swap=True)
    s = rep["summary"]
    assert s["findings"] == [] and s["no_positive"] == 0 and s["gts"] == 98 and s["images"] == 24
    assert s["verdict"].startswith("healthy: 98 of 98 GTs get a positive") and "recall 1.000" in s["verdict"]
    # positives are distinct slots; YOLOv5 writes a clamped edge slot twice for one GT
    assert sum(s["positives_per_level"]) == s["positives"] == sum(len(g["slots"]) for g in rep["gts"])
    assert s["positives"] < sum(g["positives"] for g in rep["gts"])
    assert [sum(r) for r in s["positives_per_anchor"]] == s["positives_per_level"]
    assert s["starved_levels"] == [] and s["dominant_anchors"] == []


@pytest.mark.parametrize("assigner", A.ASSIGNERS)
def test_every_assigner_runs_and_reference_agrees(assigner):
    """Every assigner of the toolkit runs on the whole fixture; the NumPy reference gives the
    same GT records as the port."""
    items, names = A.read_dataset_gts(YAML, "val")
    setup = A.AssignSetup(assigner=assigner, img_size=320)
    port = A.dataset_assignment_report(items, names, setup, "torch", check_swap=False)
    ref = A.dataset_assignment_report(items, names, setup, "ref", check_swap=False)
    assert port["gts"] == ref["gts"] and len(port["gts"]) == 40
    assert port["summary"]["settings"]["assigner"] == assigner
    for g in port["gts"]:
        assert g["positive"] == (g["positives"] > 0) and (g["cause"] is None) == g["positive"]
        assert g["cause"] is None or g["cause"] in S.CAUSES


def test_per_image_reports_match_the_single_image_command(tmp_path):
    """The data-set run's report of image 3 is the one ``--index 3`` shows."""
    rep = _report(split="train")
    out = tmp_path / "one.json"
    script.main(["--data", str(YAML), "--split", "train", "--index", "3", "--img-size", "320",
                 "--json", str(out), "--quiet"])
    one = json.loads(out.read_text())["report"]
    mine = rep["reports"][3].to_dict()
    assert [(p["level"], p["anchor"], p["cell"]) for g in mine["gts"] for p in g["positives"]] == \
        [(p["level"], p["anchor"], p["cell"]) for g in one["gts"] for p in g["positives"]]


# ============================================================================ the failing test, in numbers

def test_thin_box_fails_on_aspect_not_size(tmp_path):
    """A 288 x 3 px box is not "too small for P3": no scale of a 96:1 box fits any anchor shape;
    the line gives w/aw and h/ah of each anchor and the failing side."""
    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    Image.new("RGB", (320, 320), (90, 90, 90)).save(tmp_path / "images" / "a.png")
    (tmp_path / "labels" / "a.txt").write_text(f"0 0.5 0.5 {288 / 320} {3 / 320}\n0 0.3 0.3 0.1 0.1\n")
    items, names = A.read_dataset_gts(tmp_path)
    rep = A.dataset_assignment_report(items, names, A.AssignSetup(img_size=320), check_swap=False)
    thin = rep["gts"][0]
    assert not thin["positive"] and thin["cause"] == "aspect ratio"
    assert thin["why"].startswith("aspect 96.0:1 (288x3 px) fits no anchor shape at any scale")
    # P3's 10 x 13 px anchor: 288 / 10 = 28.8 too wide and 3 / 13 = 0.231 too flat
    assert thin["levels"][0].startswith(
        "P3: a0 10x13 rejected: w/aw = 28.8 >= anchor_t 4 and h/ah = 0.231 <= 1/4")
    # P5's 116 x 90: the width passes (2.48), the height alone fails
    assert "a0 116x90 rejected: h/ah = 0.0333 <= 1/4" in thin["levels"][2]
    assert rep["gts"][1]["positive"]


# ============================================================================ broken set-ups

def test_anchors_in_pixels_where_grid_units_are_expected(tmp_path):
    """A head whose anchor buffer holds pixels (multiplied by the stride once more): every
    P3 anchor is 80 .. 264 px at a 320 input; said first, with the fix."""
    rep = _report(anchors_px=DEFAULT * np.array([8.0, 16.0, 32.0])[:, None, None])
    f = rep["summary"]["findings"][0]
    assert f["kind"] == "anchor_units_px"
    assert "the P4 anchors are 480x720 .. 992x1904 px (grid units x stride 16)" in f["message"]
    assert "anchors in pixels where grid units are expected" in rep["summary"]["verdict"]
    assert "divide them by the stride" in rep["summary"]["verdict"]
    # the reverse: grid-unit anchors read as pixels
    rep = _report(anchors_px=DEFAULT / np.array([8.0, 16.0, 32.0])[:, None, None])
    assert _kinds(rep)[0] == "anchor_units_grid"
    assert "multiply them by their level's stride" in rep["summary"]["verdict"]


def test_anchors_for_320_used_at_640():
    """Anchors fit to the fixture at 320 (k-means + evolution) used at 640: they fit best
    scaled by 2, and the report names the size they were made for."""
    from ref_numpy.anchors import kmean_anchors

    items, names = A.read_dataset_gts(YAML, "train")
    wh = np.concatenate([b[:, 2:] - b[:, :2] for b in
                         (A.letterbox_gts(i["boxes"], i["hw"], 320) for i in items)])
    fit = kmean_anchors(wh, 9, 320, 4.0, gen=300, seed=0)["anchors"].reshape(3, 3, 2)
    here = A.dataset_assignment_report(items, names, A.AssignSetup(img_size=320, anchors_px=fit),
                                       check_swap=False)
    assert here["summary"]["findings"] == []
    rep = A.dataset_assignment_report(items, names, A.AssignSetup(img_size=640, anchors_px=fit),
                                      check_swap=False)
    f = rep["summary"]["findings"][0]
    assert f["kind"] == "anchors_other_size"
    assert "the anchors fit this data best scaled by 2" in f["message"]
    assert "anchors for --img-size 320 used at 640" in rep["summary"]["verdict"]
    assert "yolo-ref anchors --fit --img-size 640" in f["fix"]


def test_labels_normalised_twice(tmp_path):
    rows = {k: np.c_[r[:, :1], r[:, 1:] / 320] for k, r in _fixture_rows().items()}
    rep = _report(_data_set(tmp_path, rows))
    f = rep["summary"]["findings"][0]
    assert f["kind"] == "labels_normalised_twice"
    assert "100% of the boxes are under 2 px at 320 px" in f["message"]
    assert "their centres in the top-left corner" in f["message"]
    assert rep["summary"]["verdict"].startswith(f["message"])


def test_labels_xy_swapped(tmp_path):
    rows = {k: r[:, [0, 2, 1, 4, 3]] for k, r in _fixture_rows().items()}
    rep = _report(_data_set(tmp_path, rows), check_swap=True)
    assert _kinds(rep) == ["labels_xy_swapped"]
    assert "labels with x/y swapped" in rep["summary"]["verdict"]
    assert "'class cx cy w h'" in rep["summary"]["verdict"]


def test_a_class_of_very_thin_objects(tmp_path):
    """A fourth class 'wire' of 200 x 4 px boxes in every image: named as a thin class, and
    the verdict says that the GTs without positive are all thinner than 1:5 and what to run."""
    rows = _fixture_rows()
    for k, r in rows.items():
        rows[k] = np.vstack([r, [3, 0.5, 0.9, 200 / 320, 4 / 320]])
    rep = _report(_data_set(tmp_path, rows, NAMES + ["wire"]))
    s = rep["summary"]
    assert s["findings"] == []
    assert s["by_class"]["wire"] == {"gts": 32, "no_positive": 32, "share": 1.0}
    assert s["causes"] == {"aspect ratio": 32}
    assert [t["name"] for t in s["thin_classes"]] == ["wire"] and s["thin_classes"][0]["median_aspect"] == 50
    assert s["verdict"] == ("19% of GTs (32 of 170), all thinner than 1:5 (class 'wire'), get no positive: "
                            "the anchors' aspect ratios do not cover them; refit with `yolo-ref anchors --fit` (or "
                            "raise --anchor-t)")
    assert s["no_positive_aspect"] == {"thinner than 1:5": 32}


def test_strides_that_do_not_match_the_model(tmp_path, capsys):
    """--strides 16,32,64 with a model YAML of three levels P3-P5 (8, 16, 32)."""
    cfg = tmp_path / "yolov5s.yaml"
    cfg.write_text("nc: 3\nanchors:\n  - [10,13, 16,30, 33,23]\n  - [30,61, 62,45, 59,119]\n"
                   "  - [116,90, 156,198, 373,326]\n")
    rc = script.main(["--data", str(YAML), "--split", "val", "--img-size", "320", "--cfg", str(cfg),
                      "--strides", "16,32,64", "--out", str(tmp_path / "r"), "--no-swap-check"])
    out = capsys.readouterr().out
    assert rc == EXIT_CHECK_FAILED
    assert out.startswith("verdict: the strides 16,32,64 do not match the model's 8,16,32: ")
    assert "pass --strides 8,16,32" in out and f"anchors from the model YAML {cfg}" in out
    # without --strides the model's are used and nothing is wrong
    rc = script.main(["--data", str(YAML), "--split", "val", "--img-size", "320", "--cfg", str(cfg),
                      "--out", str(tmp_path / "s"), "--no-swap-check", "--quiet"])
    assert rc == EXIT_OK


# ============================================================================ with a model

def _checkpoint(path: Path, head: str, pixel_buffer: bool = False, seed: int = 0) -> Path:
    """A tiny model file as ``yolo-ref train`` writes it (``model_cfg`` + weights)."""
    import torch

    from torch_impl.models import yolov5, yolov5_anchor_free
    from torch_impl.train.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    kw = {"nc": 3, "depth_multiple": 0.33, "width_multiple": 0.125}
    model = yolov5_anchor_free(None, **kw) if head == "anchor-free" else yolov5(None, **kw)
    sd = model.state_dict()
    if pixel_buffer:  # the classic bug: pixel anchors stored where grid units belong
        sd["head.anchors"] = torch.tensor(DEFAULT, dtype=torch.float32)
    cfg = {**kw, "head": head, **({"reg_max": 16} if head == "anchor-free" else {})}
    save_checkpoint({"model_cfg": cfg, "model": sd, "names": NAMES}, path)
    return path


def test_weights_tal_on_real_predictions_and_two_checkpoints(tmp_path, capsys):
    """Two anchor-free checkpoints: TAL runs on each model's scores and boxes (different
    models pick different points), and the comparison names both."""
    a = _checkpoint(tmp_path / "a.pt", "anchor-free", seed=0)
    b = _checkpoint(tmp_path / "b.pt", "anchor-free", seed=1)
    out = tmp_path / "r"
    rc = script.main(["--data", str(YAML), "--split", "val", "--img-size", "320", "--weights", str(a),
                      "--weights", str(b), "--out", str(out), "--json", str(tmp_path / "r.json"),
                      "--no-swap-check"])
    text = capsys.readouterr().out
    assert rc in (EXIT_OK, EXIT_CHECK_FAILED)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["settings"]["assigner"] == "tal"
    assert doc["compare"]["labels"] == ["a.pt", "b.pt"] and "a.pt" in text and "b.pt" in text
    assert (out / "index.html").is_file() and (out / "b" / "index.html").is_file()
    # the picks are TAL's on each model's predictions: recompute one image directly
    items, names = A.read_dataset_gts(YAML, "val")
    m = A.model_setup(a)
    preds = A.model_predictions(m["model"], items, 320, indices=[0])["images"]
    boxes = [A.letterbox_gts(items[0]["boxes"], items[0]["hw"], 320)]
    rep = A.assign_dataset(boxes, [items[0]["cls"]], A.AssignSetup(assigner="tal", img_size=320), 3,
                           predictions=preds)[0]
    mine = [sorted(g["slots"]) for g in doc["gts"] if g["image"] == 0]
    assert mine == [sorted([p.level, 0, *p.cell] for p in g.positives) for g in rep.gts]
    assert 0 <= doc["compare"]["overlap"] <= 1


def test_checkpoint_with_pixel_anchor_buffer(tmp_path):
    """An anchor-based checkpoint whose anchors buffer holds pixels: the anchors come from the
    checkpoint, and the report says they are in the wrong units."""
    ckpt = _checkpoint(tmp_path / "px.pt", "anchor", pixel_buffer=True)
    out = tmp_path / "r.json"
    rc = script.main(["--data", str(YAML), "--split", "val", "--img-size", "320", "--weights", str(ckpt),
                      "--out", str(tmp_path / "r"), "--json", str(out), "--quiet", "--no-swap-check"])
    doc = json.loads(out.read_text())
    assert rc == EXIT_CHECK_FAILED
    assert doc["summary"]["settings"]["anchors_from"] == f"the checkpoint {ckpt}"
    assert doc["summary"]["findings"][0]["kind"] == "anchor_units_px"


# ============================================================================ HTML and pictures

class _Imgs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.src: list = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.src.append(dict(attrs)["src"])


def _check_img_src(src: str, root: Path) -> None:
    if src.startswith("data:"):
        import base64

        head, data = src.split(",", 1)
        assert head.startswith("data:image/png;base64")
        import io

        Image.open(io.BytesIO(base64.b64decode(data))).verify()
        return
    p = root / src
    assert p.is_file(), src
    with Image.open(p) as im:
        im.verify()


@pytest.fixture(scope="module")
def thin_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("thin")
    rows = _fixture_rows()
    for k in list(rows)[:8]:
        rows[k] = np.vstack([rows[k], [3, 0.5, 0.9, 200 / 320, 4 / 320]])
    data = _data_set(tmp / "data", rows, NAMES + ["wire"])
    out = tmp / "report"
    rc = script.main(["--data", str(data), "--split", "val", "--img-size", "320", "--out", str(out),
                      "--no-swap-check", "--quiet", "--worst", "4"])
    return rc, out


def test_html_page_parses_and_every_picture_opens(thin_report):
    rc, out = thin_report
    assert rc == EXIT_CHECK_FAILED
    page = (out / "index.html").read_text()
    parser = _Imgs()
    parser.feed(page)
    for src in parser.src:
        _check_img_src(src, out)
    plots = {"plots/positives_per_level.png", "plots/positives_per_anchor.png",
             "plots/no_positive_by_size.png", "plots/no_positive_by_aspect.png",
             "plots/collisions_per_image.png"}
    assert plots <= set(parser.src)
    gallery = [s for s in parser.src if s.startswith("images/")]
    assert len(gallery) == 4  # --worst 4: the 8 images with a wire lead
    assert "all thinner than 1:5" in page and "yolo-ref anchors --fit" in page
    assert (out / "summary.txt").read_text().startswith("verdict: ")
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["no_positive"] == 8 and len(doc["gts"]) == doc["summary"]["gts"]


def test_worst_image_png_has_insets_and_legend(thin_report):
    _, out = thin_report
    png = sorted((out / "images").glob("*.png"))[0]
    im = np.asarray(Image.open(png).convert("RGB"))
    assert im.shape[1] > 640 + 200  # the picture and a column of insets beside it
    from torch_impl.assign_figures import LEVEL_RGB, MISS_RGB

    legend = im[-40:]
    for rgb in (*LEVEL_RGB[:3], MISS_RGB):  # the legend's swatches
        assert np.all(legend == np.array(rgb, np.uint8), axis=-1).sum() > 50


def test_labels_do_not_overlap():
    """GT labels of many overlapping boxes are placed on free spots."""
    from PIL import ImageDraw

    from torch_impl.assign_figures import _font, _overlaps, _place_label

    d = ImageDraw.Draw(Image.new("RGB", (640, 640)))
    placed: list = []
    for k in range(12):
        _place_label(d, [300 + k, 300 + k, 340 + k, 340 + k], f"GT{k}", _font(13), placed, 640)
    assert not any(_overlaps(a, b) for i, a in enumerate(placed) for b in placed[i + 1:])


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="no chromium to render the page headless (the parse test runs anyway)")
def test_html_renders_headless(thin_report, tmp_path):
    _, out = thin_report
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1280,1600", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    im = np.asarray(Image.open(shot).convert("RGB"))
    assert im.shape[:2] == (1600, 1280) and im.std() > 20  # text and pictures, not a blank page


# ============================================================================ the shared aggregation

def test_summary_aggregation_by_hand():
    rec = lambda image, gt, w, h, pos, cause=None, slots=(), coll=0: {
        "image": image, "file": f"i{image}.png", "gt": gt, "cls": 0, "name": "a", "box": [0, 0, w, h],
        "w": w, "h": h, "positive": pos, "positives": len(slots), "slots": [list(s) for s in slots],
        "collisions": coll, "cause": cause, "why": None, "levels": []}
    gts = [rec(0, 0, 10, 10, True, slots=[(0, 0, 1, 1), (0, 1, 1, 1)]),
           rec(0, 1, 100, 2, False, "aspect ratio"),
           rec(1, 0, 200, 200, True, slots=[(1, 0, 3, 3)], coll=1)]
    s = S.summarize_assignments(gts, 3, ["P3", "P4"], [["a", "b"], ["c", "d"]], [0, 1, 0], bpr=0.5)
    assert s["positives_per_level"] == [2, 1] and s["positives_per_anchor"] == [[1, 1], [1, 0]]
    assert s["no_positive"] == 1 and s["causes"] == {"aspect ratio": 1}
    assert s["by_size"]["small <32x32"] == {"gts": 2, "no_positive": 1, "share": 0.5}
    assert s["collisions_per_image"] == {"mean": 1 / 3, "max": 1, "histogram": {"0": 2, "1": 1}}
    assert [w["image"] for w in s["worst_images"]] == [0, 1]
    assert s["verdict"].startswith("33% of GTs (1 of 3), all thinner than 1:5, get no positive")
    assert "best possible recall of the anchors at this size: 0.5000" in S.format_assignment_summary(s)
