"""Tests of ``ref_numpy.formats`` (and its torch twin, which re-exports the same functions).

Round trips through each format on Hypothesis-generated data sets, a chain of conversions,
pycocotools as the oracle for COCO GT and results loading, the committed fixture read in all
three formats, format auto-detection, and the error messages of malformed files.
"""
import inspect
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref_numpy.formats as ref
import torch_impl.formats as port
from parity_tests.strategies import detection_sets
from parity_tests.tolerances import EXACT, assert_parity

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "shapes"
CLASS_NAMES = ["rectangle", "ellipse", "triangle"]
EMPTY = ref.DetectionSet(images=[], categories=[{"id": 0, "name": "a"}], annotations=[])
ONE_BOX = ref.DetectionSet(
    images=[{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
    categories=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}],
    annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 640.0, 480.0],
                  "area": 307200.0, "iscrowd": 0}])


def _tmp():
    return tempfile.TemporaryDirectory(prefix="formats_")


def _columns(ds: ref.DetectionSet) -> dict:
    """Annotation columns, boxes also normalised by their image size ([N, 4])."""
    cols = ref.to_arrays(ds)
    size = {im["id"]: (im["width"], im["height"]) for im in ds.images}
    wh = np.array([size[i] for i in cols["image_id"]], dtype=np.float64).reshape(-1, 2)
    cols["normalised"] = cols["boxes"] / np.concatenate([wh, wh], axis=-1)
    return cols


def _assert_same_except_boxes(actual: ref.DetectionSet, desired: ref.DetectionSet,
                              drop=("bbox", "area", "score")) -> None:
    assert actual.images == desired.images
    assert actual.categories == desired.categories
    strip = lambda anns: [{k: v for k, v in a.items() if k not in drop} for a in anns]
    assert strip(actual.annotations) == strip(desired.annotations)


# ----------------------------------------------------------------------------- the port

def test_port_reexports_reference():
    public = [n for n, o in vars(ref).items() if not n.startswith("_")
              and (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == ref.__name__]
    assert len(public) >= 12
    for name in public:
        assert getattr(port, name) is getattr(ref, name), f"torch_impl.formats.{name}"
    assert sorted(port.__all__) == sorted(set(port.__all__))


# ----------------------------------------------------------------------------- model

def test_check_dataset_and_to_arrays():
    ds = ref.DetectionSet(
        images=[{"id": 3, "file_name": "x.png", "width": 10.0, "height": 20}],
        categories=[{"id": 5, "name": "c"}],
        annotations=[{"id": 1, "image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4]},
                     {"id": 2, "image_id": 3, "category_id": 5, "bbox": [0, 0, 1, 1],
                      "iscrowd": 1, "difficult": 1, "score": 0.5, "area": 7}])
    checked = ref.check_dataset(ds)
    assert checked.images[0]["width"] == 10 and isinstance(checked.images[0]["width"], int)
    assert checked.annotations[0] == {"id": 1, "image_id": 3, "category_id": 5,
                                      "bbox": [1.0, 2.0, 3.0, 4.0], "area": 12.0, "iscrowd": 0}
    assert checked.annotations[1]["area"] == 7.0
    cols = ref.to_arrays(ds)
    assert_parity(cols["boxes"], np.array([[1.0, 2.0, 4.0, 6.0], [0.0, 0.0, 1.0, 1.0]]),
                  tol=EXACT)
    assert_parity(cols["iscrowd"], np.array([False, True]), tol=EXACT)
    assert_parity(cols["difficult"], np.array([False, True]), tol=EXACT)
    assert_parity(cols["score"], np.array([np.nan, 0.5]), tol=EXACT)
    assert ref.to_arrays(EMPTY)["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="dataset: expected a DetectionSet"):
        ref.check_dataset({"images": []})
    bad = ref.DetectionSet(images=[], categories=[], annotations=[{"id": 1}])
    with pytest.raises(ValueError, match=r"^annotations\[0\]\.image_id: missing key"):
        ref.check_dataset(bad)


@settings(max_examples=40)
@given(st.sampled_from(["coco", "yolo", "voc"]).flatmap(
    lambda kind: st.tuples(st.just(kind), detection_sets(kind))))
def test_detection_sets_strategy_is_valid(kind_and_set):
    """The strategy's sets pass check_dataset unchanged; canonical ones are what readers make."""
    kind, ds = kind_and_set
    assert ref.check_dataset(ds) == ds
    if kind != "coco":
        assert [im["id"] for im in ds.images] == list(range(1, len(ds.images) + 1))
        assert [im["file_name"] for im in ds.images] == sorted(im["file_name"] for im in ds.images)
        assert [a["id"] for a in ds.annotations] == list(range(1, len(ds.annotations) + 1))
        assert [a["image_id"] for a in ds.annotations] == sorted(a["image_id"]
                                                                 for a in ds.annotations)
        cols = _columns(ds)
        assert np.all((cols["normalised"] >= 0) & (cols["normalised"] <= 1))
        assert not cols["iscrowd"].any()
        assert all(("difficult" in a) == (kind == "voc") for a in ds.annotations)


def test_detection_sets_strategy_reaches_edge_cases():
    from hypothesis import find

    find(detection_sets("yolo"), lambda ds: not ds.images)
    find(detection_sets("yolo"), lambda ds: any(a["bbox"][2] == 0 for a in ds.annotations))
    find(detection_sets("coco"), lambda ds: any(a["iscrowd"] for a in ds.annotations))
    find(detection_sets("voc"), lambda ds: len({a["image_id"] for a in ds.annotations}) > 1)


# ----------------------------------------------------------------------------- COCO

@settings(max_examples=40)
@given(detection_sets("coco"))
@example(EMPTY)
@example(ONE_BOX)
def test_coco_round_trip(ds):
    with _tmp() as d:
        path = Path(d) / "gt.json"
        ref.write_coco(ds, path)
        back = ref.read_coco(path)
    assert back == ref.check_dataset(ds)  # every field, floats bit for bit


@settings(max_examples=20)
@given(detection_sets("yolo", with_scores=True, max_annotations=10))
@example(ONE_BOX)
def test_coco_results_match_pycocotools(ds):
    """read_coco_results builds detections as pycocotools' loadRes does (ids, area, iscrowd)."""
    from pycocotools.coco import COCO

    with _tmp() as d:
        gt_path, res_path = Path(d) / "gt.json", Path(d) / "res.json"
        gt = ref.DetectionSet(ds.images, ds.categories, [])
        ref.write_coco(gt, gt_path)
        if ds.annotations and "score" not in ds.annotations[0]:
            with pytest.raises(ValueError, match=r"annotations\[0\]: no score"):
                ref.write_coco_results(ds, res_path)
            ds = ref.DetectionSet(ds.images, ds.categories,
                                  [dict(a, score=0.5) for a in ds.annotations])
        ref.write_coco_results(ds, res_path)
        mine = ref.read_coco_results(res_path, gt)
        assert mine.images == gt.images and mine.categories == gt.categories
        fields = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "score")
        if ds.annotations:  # loadRes crashes on an empty list; ours gives an empty set
            theirs = COCO(str(gt_path)).loadRes(str(res_path))
            expected = [{k: a[k] for k in fields} for a in theirs.dataset["annotations"]]
        else:
            expected = []
    assert [{k: a[k] for k in fields} for a in mine.annotations] == expected
    assert [a["bbox"] for a in mine.annotations] == [a["bbox"] for a in ds.annotations]


# ----------------------------------------------------------------------------- YOLO

@settings(max_examples=40)
@given(detection_sets("yolo"), st.sampled_from([6, None]))
@example(EMPTY, 6)
@example(ONE_BOX, 6)
def test_yolo_round_trip(ds, decimals):
    with _tmp() as d:
        ref.write_yolo(ds, Path(d) / "labels", decimals=decimals)
        back = ref.read_yolo(Path(d) / "labels", images=ds.images, names=ds.categories)
    _assert_same_except_boxes(back, ds)
    # 6 decimals: the table's YOLO entry; full precision: float64 rounding only
    name = "formats.read_yolo" if decimals == 6 else "formats.write_yolo"
    a, e = _columns(back), _columns(ds)
    assert_parity(a["normalised"], e["normalised"], name=name, dtype="float64", inputs=ds)
    assert_parity(a["score"], e["score"], name=name, dtype="float64", inputs=ds)
    wh = np.array([b["bbox"][2:] for b in back.annotations]).reshape(-1, 2)
    assert_parity(a["area"], wh[:, 0] * wh[:, 1], tol=EXACT, inputs=ds)  # w * h of the box read


def test_yolo_reads_images_dir_and_classes_file(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (40, 20)).save(tmp_path / "images" / "b.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.jpg")  # no label file: background
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "b.txt").write_text("1 0.5 0.5 0.5 1.0\n\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    ds = ref.read_yolo(tmp_path / "labels")  # sibling images/ and parent classes.txt
    assert ds.images == [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8},
                         {"id": 2, "file_name": "b.png", "width": 40, "height": 20}]
    assert ds.categories == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]
    assert ds.annotations == [{"id": 1, "image_id": 2, "category_id": 1,
                               "bbox": [10.0, 0.0, 20.0, 20.0], "area": 400.0, "iscrowd": 0}]
    (tmp_path / "classes.txt").unlink()
    assert ref.read_yolo(tmp_path / "labels").categories == [{"id": 1, "name": "1"}]
    ds = ref.read_yolo(tmp_path / "labels", names={1: "dog", 4: "x"})
    assert ds.categories == [{"id": 1, "name": "dog"}, {"id": 4, "name": "x"}]


def test_writers_skip_crowd_and_check_their_input(tmp_path):
    ds = ref.DetectionSet(ONE_BOX.images, ONE_BOX.categories,
                          ONE_BOX.annotations + [dict(ONE_BOX.annotations[0], id=2, iscrowd=1)])
    ref.write_yolo(ds, tmp_path / "labels")
    assert (tmp_path / "labels" / "a.txt").read_text() == "1 0.500000 0.500000 1.000000 1.000000\n"
    ref.write_voc(ds, tmp_path / "voc")
    assert len(ref.read_voc(tmp_path / "voc").annotations) == 1
    neg = ref.DetectionSet(ONE_BOX.images, [{"id": -1, "name": "a"}], [])
    with pytest.raises(ValueError, match=r"categories\[0\]\.id: YOLO class indices"):
        ref.write_yolo(neg, tmp_path / "x")
    mixed = ref.DetectionSet(ds.images, ds.categories,
                             [dict(ds.annotations[0], score=0.1), ds.annotations[1]])
    with pytest.raises(ValueError, match="some annotations have a score"):
        ref.write_yolo(mixed, tmp_path / "x")
    with pytest.raises(ValueError, match="decimals"):
        ref.write_yolo(ONE_BOX, tmp_path / "x", decimals=-1)
    twice = ref.DetectionSet(ONE_BOX.images, [{"id": 0, "name": "a"}, {"id": 1, "name": "a"}], [])
    with pytest.raises(ValueError, match=r"categories\[1\]\.name"):
        ref.write_voc(twice, tmp_path / "x")


# ----------------------------------------------------------------------------- VOC

@settings(max_examples=40)
@given(detection_sets("voc"))
@example(ONE_BOX)
def test_voc_round_trip(ds):
    with _tmp() as d:
        ref.write_voc(ds, Path(d))
        back = ref.read_voc(Path(d), names=ds.categories)
    expected = ref.DetectionSet(ds.images, ds.categories,
                                [dict(a, difficult=a.get("difficult", 0)) for a in ds.annotations])
    _assert_same_except_boxes(back, expected, drop=("bbox", "area"))
    a, e = ref.to_arrays(back), ref.to_arrays(expected)
    whole = np.all(e["boxes"] == np.rint(e["boxes"]))
    # whole pixels (VOC's own domain) come back exactly; fractional ones to float64 rounding
    tol = EXACT if whole else None
    assert_parity(a["boxes"], e["boxes"], name="formats.read_voc", dtype="float64", tol=tol,
                  inputs=ds)


def test_voc_pixel_convention(tmp_path):
    """x = 10, w = 10 covers 0-based pixels 10..19, i.e. 1-based 11..20."""
    ref.write_voc(ref.DetectionSet(ONE_BOX.images, ONE_BOX.categories,
                                   [dict(ONE_BOX.annotations[0], bbox=[10.0, 5.0, 10.0, 2.5])]),
                  tmp_path)
    text = (tmp_path / "a.xml").read_text()
    for tag, value in (("xmin", "11"), ("ymin", "6"), ("xmax", "20"), ("ymax", "7.5")):
        assert f"<{tag}>{value}</{tag}>" in text
    ds = ref.read_voc(tmp_path)
    assert ds.categories == [{"id": 0, "name": "b"}]  # default: the sorted names seen
    assert ds.annotations[0]["bbox"] == [10.0, 5.0, 10.0, 2.5]
    assert ds.annotations[0]["difficult"] == 0


# ----------------------------------------------------------------------------- conversions

@settings(max_examples=25)
@given(detection_sets("yolo", with_scores=False))
@example(EMPTY)
def test_conversion_chain_is_lossless(ds):
    """YOLO -> COCO -> VOC -> YOLO (full precision) gives the set back; COCO and VOC agree."""
    with _tmp() as d:
        d = Path(d)
        ref.write_yolo(ds, d / "labels", decimals=None)
        from_yolo = ref.read_yolo(d / "labels", images=ds.images, names=ds.categories)
        ref.write_coco(from_yolo, d / "gt.json")
        from_coco = ref.load_any(d / "gt.json")
        ref.write_voc(from_coco, d / "voc")
        from_voc = ref.read_voc(d / "voc", names=ds.categories)
        ref.write_yolo(from_voc, d / "labels2", decimals=None)
        back = ref.read_yolo(d / "labels2", images=ds.images, names=ds.categories)
    assert from_coco == from_yolo
    _assert_same_except_boxes(back, ds)
    assert_parity(_columns(back)["normalised"], _columns(ds)["normalised"],
                  name="formats.write_yolo", dtype="float64", inputs=ds)


# ----------------------------------------------------------------------------- fixture

def test_fixture_formats_agree():
    coco = ref.read_coco(FIXTURE / "annotations.json")
    yolo = ref.read_yolo(FIXTURE / "labels")  # sizes from ../images, names from ../classes.txt
    voc = ref.read_voc(FIXTURE / "voc", names=CLASS_NAMES)
    assert len(coco.images) == 32 and len(coco.annotations) > 100
    assert coco.categories == [{"id": k, "name": n} for k, n in enumerate(CLASS_NAMES)]
    _assert_same_except_boxes(yolo, coco)
    _assert_same_except_boxes(voc, coco, drop=("bbox", "area", "difficult"))
    c, y, v = _columns(coco), _columns(yolo), _columns(voc)
    assert_parity(v["boxes"], c["boxes"], tol=EXACT)  # whole pixels: exact
    assert_parity(y["normalised"], c["normalised"], name="formats.read_yolo", dtype="float64")
    for path, kw in ((FIXTURE, {}), (FIXTURE / "labels", {}), (FIXTURE / "annotations.json", {}),
                     (FIXTURE / "voc", {"names": CLASS_NAMES})):
        loaded = ref.load_any(path, **kw)
        assert len(loaded.annotations) == len(coco.annotations), path


def test_fixture_loads_in_pycocotools():
    from pycocotools.coco import COCO

    coco = COCO(str(FIXTURE / "annotations.json"))
    mine = ref.read_coco(FIXTURE / "annotations.json")
    assert sorted(coco.getImgIds()) == [im["id"] for im in mine.images]
    for a in mine.annotations:
        assert coco.anns[a["id"]] == a


# ----------------------------------------------------------------------------- load_any

def test_load_any_detects_format(tmp_path):
    ref.write_coco(ONE_BOX, tmp_path / "gt.json")
    results = ref.DetectionSet(ONE_BOX.images, ONE_BOX.categories,
                               [dict(ONE_BOX.annotations[0], score=0.9)])
    ref.write_coco_results(results, tmp_path / "res.json")
    ref.write_yolo(results, tmp_path / "pred")
    ref.write_voc(ONE_BOX, tmp_path / "voc")
    gt = ref.load_any(tmp_path / "gt.json")
    assert gt == ref.check_dataset(ONE_BOX)
    assert ref.load_any(tmp_path / "res.json", gt=gt).annotations[0]["score"] == 0.9
    pred = ref.load_any(tmp_path / "pred", gt=gt)  # images and categories from gt
    assert pred.images == gt.images and pred.categories == gt.categories
    assert pred.annotations[0]["score"] == 0.9
    assert ref.load_any(tmp_path / "voc", names=["a", "b"]).annotations[0]["bbox"] == \
        gt.annotations[0]["bbox"]
    with pytest.raises(ValueError, match="need the ground truth"):
        ref.load_any(tmp_path / "res.json")
    (tmp_path / "voc" / "stray.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="both .txt and .xml"):
        ref.load_any(tmp_path / "voc")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        ref.load_any(tmp_path / "empty")
    with pytest.raises(ValueError, match="does not exist"):
        ref.load_any(tmp_path / "missing")
    with pytest.raises(ValueError, match="expected a .json file"):
        ref.load_any(tmp_path / "voc" / "stray.txt")


# ----------------------------------------------------------------------------- malformed input

GOOD_COCO = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
             "categories": [{"id": 0, "name": "a"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 2, 2],
                              "area": 4, "iscrowd": 0},
                             {"id": 2, "image_id": 1, "category_id": 0, "bbox": [1, 1, 2, 2]}]}


def _coco_with(edit):
    obj = json.loads(json.dumps(GOOD_COCO))
    edit(obj)
    return json.dumps(obj)


BAD_COCO = [
    (lambda o: o["annotations"][1].pop("bbox"), r"annotations\[1\]\.bbox: missing key"),
    (lambda o: o.pop("images"), r"images: missing key"),
    (lambda o: o["annotations"][0].update(image_id=9),
     r"annotations\[0\]\.image_id: unknown image"),
    (lambda o: o["annotations"][1].update(category_id=3),
     r"annotations\[1\]\.category_id: unknown category"),
    (lambda o: o["images"][0].update(width=-5), r"images\[0\]\.width: expected a positive"),
    (lambda o: o["images"][0].update(height=7.5), r"images\[0\]\.height: expected an integer"),
    (lambda o: o["annotations"][0].update(bbox=[1, 1, -2, 2]),
     r"annotations\[0\]\.bbox: negative width"),
    (lambda o: o["annotations"][0].update(bbox=[1, 1, 2]), r"annotations\[0\]\.bbox: expected"),
    (lambda o: o["annotations"][0].update(bbox=[1, 1, "2", 2]),
     r"annotations\[0\]\.bbox\[2\]: expected a number"),
    (lambda o: o["annotations"][0].update(iscrowd=2),
     r"annotations\[0\]\.iscrowd: expected 0 or 1"),
    (lambda o: o["annotations"][0].update(area=-1), r"annotations\[0\]\.area: expected a value >="),
    (lambda o: o["annotations"][1].update(id=1), r"annotations\[1\]\.id: duplicate id 1"),
    (lambda o: o["categories"].append({"id": 0, "name": "b"}), r"categories\[1\]\.id: duplicate"),
    (lambda o: o["annotations"].append(5), r"annotations\[2\]: expected an object"),
    (lambda o: o.update(annotations={}), r"annotations: expected a list"),
]


@pytest.mark.parametrize("edit,message", BAD_COCO, ids=[m for _, m in BAD_COCO])
def test_bad_coco_names_file_and_json_path(tmp_path, edit, message):
    (tmp_path / "gt.json").write_text(_coco_with(edit))
    with pytest.raises(ValueError, match=r"gt\.json: " + message):
        ref.read_coco(tmp_path / "gt.json")


def test_bad_coco_non_finite_broken_and_results(tmp_path):
    text = _coco_with(lambda o: None).replace('"bbox": [1, 1, 2, 2]}', '"bbox": [NaN, 1, 2, 2]}')
    (tmp_path / "gt.json").write_text(text)
    with pytest.raises(ValueError, match=r"annotations\[1\]\.bbox\[0\]: expected a finite"):
        ref.read_coco(tmp_path / "gt.json")
    (tmp_path / "gt.json").write_text('{\n "images": [\n  {"id": 1,,}\n')
    with pytest.raises(ValueError, match=r"gt\.json: line 3: broken JSON"):
        ref.read_coco(tmp_path / "gt.json")
    with pytest.raises(ValueError, match=r"missing\.json: cannot read"):
        ref.read_coco(tmp_path / "missing.json")
    (tmp_path / "gt.json").write_text("[]")
    with pytest.raises(ValueError, match=r"gt\.json: expected an object with images"):
        ref.read_coco(tmp_path / "gt.json")
    gt = ref.check_dataset(ref.DetectionSet(GOOD_COCO["images"], GOOD_COCO["categories"],
                                            GOOD_COCO["annotations"]))
    for dets, message in (
            ([{"image_id": 2, "category_id": 0, "bbox": [0, 0, 1, 1], "score": 1}],
             r"res\.json: \[0\]\.image_id: unknown image id 2"),
            ([{"image_id": 1, "category_id": 0, "bbox": [0, 0, 1, 1]}],
             r"res\.json: \[0\]\.score: missing key"),
            ([{"image_id": 1, "category_id": 0, "bbox": [0, 0, 1, 1], "score": 1},
              {"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1}],
             r"res\.json: \[1\]\.category_id: unknown category id 7"),
            ({"annotations": []}, r"res\.json: expected a JSON list")):
        (tmp_path / "res.json").write_text(json.dumps(dets))
        with pytest.raises(ValueError, match=message):
            ref.read_coco_results(tmp_path / "res.json", gt)


BAD_YOLO = [
    ("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n", r"a\.txt:2: expected 5 columns"),
    ("0 0.5 0.5 0.1 0.1 0.9 7\n", r"a\.txt:1: expected 5 columns"),
    ("0 0.5 0.5 0.1 0.1\n\n0 0.5 0.5 0.1 0.1 0.9\n", r"a\.txt:3: expected 5 columns like"),
    ("0 1.5 0.5 0.1 0.1\n", r"a\.txt:1: cx: expected a value <= 1"),
    ("0 0.5 0.5 -0.1 0.1\n", r"a\.txt:1: w: expected a value >= 0"),
    ("0 0.5 nan 0.1 0.1\n", r"a\.txt:1: cy: expected a finite"),
    ("0 0.5 0.5 0.1 0.1 1.2\n", r"a\.txt:1: conf: expected a value <= 1"),
    ("0 0.5 0.5 0.1 zero\n", r"a\.txt:1: expected numbers"),
    ("1.5 0.5 0.5 0.1 0.1\n", r"a\.txt:1: class: expected an integer"),
    ("-1 0.5 0.5 0.1 0.1\n", r"a\.txt:1: negative class"),
    ("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n", r"a\.txt:2: class 7 is not in the class names"),
]


@pytest.mark.parametrize("text,message", BAD_YOLO, ids=[m for _, m in BAD_YOLO])
def test_bad_yolo_names_file_and_line(tmp_path, text, message):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(text)
    images = [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}]
    with pytest.raises(ValueError, match=message):
        ref.read_yolo(tmp_path / "labels", images=images, names=["x", "y"])


def test_bad_yolo_directories(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    images = [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}]
    with pytest.raises(ValueError, match=r"b\.txt: no image with this stem"):
        ref.read_yolo(tmp_path / "labels", images=images)
    with pytest.raises(ValueError, match="images_dir: need the images"):
        ref.read_yolo(tmp_path / "labels")
    with pytest.raises(ValueError, match="labels_dir: .* is not a directory"):
        ref.read_yolo(tmp_path / "nope", images=images)
    with pytest.raises(ValueError, match=r"images\[0\]\.width: expected a positive size"):
        ref.read_yolo(tmp_path / "labels", images=[dict(images[0], width=0)])
    (tmp_path / "labels" / "a.txt").write_bytes(b"0 0.5 0.5 0.1 0.1\n\xff\n")
    with pytest.raises(ValueError, match=r"a\.txt: byte 18: not UTF-8"):
        ref.read_yolo(tmp_path / "labels", images=images + [dict(images[0], id=2,
                                                                  file_name="b.jpg")])
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "b.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"b\.jpg: cannot read the image size"):
        ref.read_yolo(tmp_path / "labels")


def _voc(objects: str, size="<size><width>10</width><height>10</height></size>") -> str:
    return f"<annotation><filename>a.jpg</filename>{size}{objects}</annotation>"


BOX = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
BAD_VOC = [
    (_voc(f"<object><name>x</name>{BOX}</object><object><name>x</name></object>"),
     r"a\.xml: object\[1\]/bndbox: missing element"),
    (_voc(f"<object><name>x</name>{BOX.replace('<xmin>1</xmin>', '')}</object>"),
     r"a\.xml: object\[0\]/bndbox/xmin: missing element"),
    (_voc(f"<object><name>x</name>{BOX.replace('>1<', '>one<', 1)}</object>"),
     r"a\.xml: object\[0\]/bndbox/xmin: expected a number"),
    (_voc(f"<object><name>x</name>{BOX.replace('>5<', '>-3<', 1)}</object>"),
     r"a\.xml: object\[0\]/bndbox: xmax < xmin - 1"),
    (_voc(f"<object><name>x</name>{BOX.replace('>5<', '>inf<', 1)}</object>"),
     r"a\.xml: object\[0\]/bndbox/xmax: expected a finite"),
    (_voc(f"<object>{BOX}</object>"), r"a\.xml: object\[0\]/name: missing element"),
    (_voc(f"<object><name>x</name><difficult>2</difficult>{BOX}</object>"),
     r"a\.xml: object\[0\]/difficult: expected 0 or 1"),
    (_voc(f"<object><name>z</name>{BOX}</object>"),
     r"a\.xml: object\[0\]/name: 'z' is not in the class names"),
    (_voc("", size=""), r"a\.xml: annotation/size: missing element"),
    (_voc("", size="<size><width>-10</width><height>10</height></size>"),
     r"a\.xml: annotation/size/width: expected a positive integer"),
    ("<annotation><filename>a.jpg</filename>\n<size>\n</annotation>",
     r"a\.xml: line 3, column \d+: broken XML"),
    ("<annotations/>", r"a\.xml: annotations: expected the root element"),
]


@pytest.mark.parametrize("text,message", BAD_VOC, ids=[m for _, m in BAD_VOC])
def test_bad_voc_names_file_and_element(tmp_path, text, message):
    (tmp_path / "a.xml").write_text(text)
    with pytest.raises(ValueError, match=message):
        ref.read_voc(tmp_path, names=["x", "y"])


def test_bad_voc_duplicate_image(tmp_path):
    (tmp_path / "a.xml").write_text(_voc(""))
    (tmp_path / "b.xml").write_text(_voc(""))
    with pytest.raises(ValueError, match=r"b\.xml: filename 'a\.jpg' is also in .*a\.xml"):
        ref.read_voc(tmp_path)


def test_read_coco_ids_are_exact_within_int64(tmp_path):
    """A valid id 2**62 + 1 survives (no float round trip); one beyond int64 is a one-line error
    naming the field, not an OverflowError later."""
    import json

    import pytest as _pytest

    from ref_numpy.formats import read_coco
    big = 2**62 + 1
    doc = {"images": [{"id": big, "width": 10, "height": 10, "file_name": "a.jpg"}],
           "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 3, "image_id": big, "category_id": 1, "bbox": [0, 0, 1, 1],
                            "area": 1, "iscrowd": 0}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    ds = read_coco(path)
    assert ds.images[0]["id"] == big and ds.annotations[0]["image_id"] == big
    doc["annotations"][0]["id"] = 2**63
    path.write_text(json.dumps(doc))
    with _pytest.raises(ValueError, match=r"int64.*9223372036854775808"):
        read_coco(path)
