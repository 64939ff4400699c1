"""Property tests of the training data pipeline (:mod:`torch_impl.data`).

Torch side only: no reference twin, so the properties are round trips (flip twice, letterbox then
inverse), invariants (boxes inside the image, tiny leftovers dropped, HSV with zero gains is the
identity), "the box moves with the pixels" (a filled rectangle of a unique colour is transformed
with the image and its coloured pixels' bounding box compared with the transformed box), the
fixture read in each of the three formats, batching and determinism, and error messages.
"""
from __future__ import annotations

import colorsys
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parity_tests.strategies import boxes_inside, floats, pixel_rectangles, uint8_images
from parity_tests.tolerances import EXACT, assert_parity
from torch_impl import data as D
from torch_impl.data import transforms as T

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
YAML = FIXTURE / "dataset.yaml"
NAMES = ["rectangle", "ellipse", "triangle"]
RECT = np.array([250, 20, 200], np.uint8)   # a colour found nowhere else
BACKGROUND = np.array([30, 90, 40], np.uint8)


# ----------------------------------------------------------------------------- helpers

def _canvas(h: int, w: int, rect) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[...] = BACKGROUND
    x1, y1, x2, y2 = rect
    img[y1:y2, x1:x2] = RECT
    return img


def _coloured_box(img: np.ndarray) -> np.ndarray:
    """Continuous xyxy box of the pixels nearer RECT than half-way to any other colour present
    (background, padding), or an empty [0, 4] array if there are none."""
    others = [BACKGROUND, np.array(T.PAD_COLOR, np.uint8)]
    half = min(np.linalg.norm(RECT.astype(float) - o) for o in others) / 2
    near = np.linalg.norm(img.astype(float) - RECT, axis=-1) < half
    ys, xs = np.nonzero(near)
    if xs.size == 0:
        return np.zeros((0, 4))
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float64)


def _inside(boxes: np.ndarray, h: float, w: float) -> bool:
    return bool(np.all((boxes[:, [0, 2]] >= 0) & (boxes[:, [0, 2]] <= w)
                       & (boxes[:, [1, 3]] >= 0) & (boxes[:, [1, 3]] <= h)))


def _labels_to_pixels(labels: torch.Tensor, size: int) -> np.ndarray:
    cx, cy, w, h = labels[:, 2:].double().numpy().T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1) * size


# ----------------------------------------------------------------------------- flips

@given(img=uint8_images(), data=st.data())
@example(img=np.zeros((1, 1, 3), np.uint8), data=None)
def test_flip_twice_is_identity(img, data):
    h, w = img.shape[:2]
    boxes = data.draw(boxes_inside(h, w)) if data is not None else np.zeros((0, 4))
    for flip in (T.hflip, T.vflip):
        once_img, once_boxes = flip(img, boxes)
        assert _inside(once_boxes, h, w)
        twice_img, twice_boxes = flip(once_img, once_boxes)
        assert_parity(twice_img, img, tol=EXACT, name="data.flip")
        # W - (W - x) rounds to the ulp of W: exact only for coordinates on W's grid
        assert_parity(twice_boxes, boxes, name="roundtrip.flip", dtype="float64")


@given(rect=st.tuples(st.integers(8, 64), st.integers(8, 64)).flatmap(
    lambda hw: st.tuples(st.just(hw), pixel_rectangles(*hw))))
def test_flip_box_moves_with_pixels(rect):
    (h, w), r = rect
    img = _canvas(h, w, r)
    for flip in (T.hflip, T.vflip):
        out, boxes = flip(img, np.array([r], np.float64))
        assert_parity(boxes, _coloured_box(out), tol=EXACT, name="data.flip")


# ----------------------------------------------------------------------------- letterbox

letterbox_args = st.fixed_dictionaries({
    "new_shape": st.one_of(st.integers(16, 128), st.tuples(st.integers(16, 128),
                                                           st.integers(16, 128))),
    "auto": st.booleans(),
    "scaleup": st.booleans(),
    "stride": st.sampled_from([8, 32]),
})


@given(img=uint8_images(), kw=letterbox_args, data=st.data())
@example(img=np.zeros((10, 40, 3), np.uint8), kw={"new_shape": 33, "auto": False,
                                                   "scaleup": True, "stride": 32}, data=None)
def test_letterbox_then_inverse_gives_back_the_boxes(img, kw, data):
    h0, w0 = img.shape[:2]
    boxes = data.draw(boxes_inside(h0, w0)) if data is not None else np.array([[0.0, 0.0, w0, h0]], np.float64)
    out, ratio, pad = T.letterbox(img, **kw)
    h1, w1 = out.shape[:2]
    nh, nw = (kw["new_shape"],) * 2 if isinstance(kw["new_shape"], int) else kw["new_shape"]
    if not kw["auto"]:
        assert (h1, w1) == (nh, nw)
    assert h1 <= max(nh, h0) and w1 <= max(nw, w0)
    moved = T.letterbox_boxes(boxes, ratio, pad)
    # within the padded image up to the 0.5 px the padding rounds by
    assert _inside(T.clip_boxes(moved, (h1, w1)), h1, w1)
    back = T.unletterbox_boxes(moved, (h1, w1), (h0, w0), (ratio, pad))
    assert_parity(back, boxes, name="data.unletterbox_boxes", dtype="float64")
    back_t = T.unletterbox_boxes(torch.from_numpy(moved), (h1, w1), (h0, w0), (ratio, pad))
    assert isinstance(back_t, torch.Tensor)
    assert_parity(back_t, back, name="data.unletterbox_boxes", dtype="float64")


@given(hw=st.tuples(st.integers(16, 80), st.integers(16, 80)), data=st.data(),
       new_shape=st.integers(24, 128))
def test_letterbox_box_moves_with_pixels(hw, data, new_shape):
    h, w = hw
    img = _canvas(h, w, data.draw(pixel_rectangles(h, w, min_side=6)))
    rect = _coloured_box(img)
    out, ratio, pad = T.letterbox(img, new_shape)
    assert_parity(T.letterbox_boxes(rect, ratio, pad), _coloured_box(out), name="pixels.box",
                  dtype="float64")


def test_unletterbox_clips_to_the_original_image():
    boxes = np.array([[-5.0, -5.0, 200.0, 200.0]])
    back = T.unletterbox_boxes(boxes, (64, 64), (32, 16))
    assert _inside(back, 32, 16)
    assert_parity(back, np.array([[0.0, 0.0, 16.0, 32.0]]), tol=EXACT, name="data.unletterbox")


# ----------------------------------------------------------------------------- HSV

@given(img=uint8_images(1, 48))
@example(img=np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                        [1, 0, 0], [254, 255, 255], [128, 128, 127]]], np.uint8))
def test_hsv_zero_gains_is_identity(img):
    out = T.augment_hsv(img, 0.0, 0.0, 0.0, np.random.default_rng(0))
    assert_parity(out, img, tol=EXACT, name="data.augment_hsv")


@given(rgb=st.tuples(*[st.integers(0, 255)] * 3))
@example(rgb=(255, 0, 0))
@example(rgb=(7, 7, 7))
def test_hsv_conversion_matches_colorsys(rgb):
    x = np.array(rgb, np.float64) / 255
    h, s, v = T._rgb_to_hsv(x[None])
    assert_parity(np.array([h[0], s[0], v[0]]), np.array(colorsys.rgb_to_hsv(*x)),
                  name="data.rgb_to_hsv", dtype="float64")
    back = T._hsv_to_rgb(h, s, v)[0]
    assert_parity(back, np.array(colorsys.hsv_to_rgb(*colorsys.rgb_to_hsv(*x))),
                  name="data.hsv_to_rgb", dtype="float64")


@given(img=uint8_images(4, 32), gains=st.tuples(floats(0, 1), floats(0, 1), floats(0, 1)),
       seed=st.integers(0, 2 ** 16))
def test_hsv_jitter_is_seeded_and_keeps_the_shape(img, gains, seed):
    a = T.augment_hsv(img, *gains, rng=np.random.default_rng(seed))
    b = T.augment_hsv(img, *gains, rng=np.random.default_rng(seed))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert_parity(a, b, tol=EXACT, name="data.augment_hsv")


def _augment_hsv_by_remainders(img, gains, seed):
    """augment_hsv written with the float remainders of its definition (``(h / 6) % 1``,
    ``(h * g0) % 1``, ``(n + 6 h) % 6``): the port replaces them by exact compare-and-subtract."""
    g = np.random.default_rng(seed).uniform(-1, 1, 3) * np.asarray(gains) + 1
    rgb = img.astype(np.float32) / np.float32(255)
    r, gr, b = (np.ascontiguousarray(c) for c in np.moveaxis(rgb, -1, 0))
    maxc = np.maximum(np.maximum(r, gr), b)
    delta = maxc - np.minimum(np.minimum(r, gr), b)
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1), 0).astype(np.float32)
    d = np.where(delta > 0, delta, 1)
    rc, gc, bc = (maxc - r) / d, (maxc - gr) / d, (maxc - b) / d
    h = np.where(r == maxc, bc - gc, np.where(gr == maxc, 2 + rc - bc, 4 + gc - rc))
    h = np.where(delta > 0, (h / 6) % 1, 0).astype(np.float32)
    h = (h * np.float32(g[0])) % 1
    s = np.clip(s * np.float32(g[1]), 0, 1)
    v = np.clip(maxc * np.float32(g[2]), 0, 1)
    out = [v - v * s * np.clip(np.minimum((n + h * 6) % 6, 4 - (n + h * 6) % 6), 0, 1) for n in (5, 3, 1)]
    return np.clip(np.rint(np.stack(out, -1) * 255), 0, 255).astype(np.uint8)


@given(img=uint8_images(4, 32), gains=st.tuples(floats(0, 3), floats(0, 1), floats(0, 1)),
       seed=st.integers(0, 2 ** 16))
@example(img=np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                        [255, 0, 1], [254, 255, 255], [128, 128, 127]]], np.uint8),
         gains=(0.999, 0.5, 0.5), seed=3)
def test_hsv_jitter_equals_its_definition_with_remainders(img, gains, seed):
    """The exact compare-and-subtract replacements of the float remainders change no pixel
    (they were checked on all 2^24 colours at three gain settings when introduced)."""
    out = T.augment_hsv(img, *gains, rng=np.random.default_rng(seed))
    assert_parity(out, _augment_hsv_by_remainders(img, gains, seed), tol=EXACT, name="data.augment_hsv")


def test_hsv_jitter_never_moves_boxes():
    """Through the dataset: HSV jitter alone changes pixels, never labels."""
    geometry_off = {"mosaic": 0.0, "degrees": 0.0, "translate": 0.0, "scale": 0.0, "shear": 0.0,
                    "fliplr": 0.0, "flipud": 0.0}
    plain = D.DetectionDataset(FIXTURE / "train.txt", img_size=96, names=NAMES)
    jitter = D.DetectionDataset(FIXTURE / "train.txt", img_size=96, names=NAMES, augment=True,
                                hyp={**geometry_off, "hsv_h": 0.5, "hsv_s": 0.9, "hsv_v": 0.9})
    changed = 0
    for i in range(4):
        img0, lab0, _, _ = plain[i]
        img1, lab1, _, _ = jitter[i]
        # the identity affine still drops boxes YOLOv5's box_candidates rejects (<= 2 px)
        wh = lab0[:, 4:] * 96
        kept = lab0[(wh > 2).all(1)]
        assert_parity(lab1, kept, tol=EXACT, name="data.labels")
        changed += int(not torch.equal(img0, img1))
    assert changed > 0


# ----------------------------------------------------------------------------- affine

affine_args = st.fixed_dictionaries({
    "degrees": floats(0, 30), "translate": floats(0, 0.4), "scale": floats(0, 0.6),
    "shear": floats(0, 10),
})


@settings(max_examples=40)
@given(img=uint8_images(20, 64), kw=affine_args, seed=st.integers(0, 2 ** 16),
       border=st.sampled_from([(0, 0), (4, -3), (-8, -8)]), data=st.data())
def test_affine_boxes_stay_inside_and_tiny_ones_go(img, kw, seed, border, data):
    h, w = img.shape[:2]
    boxes = data.draw(boxes_inside(h, w))
    out, moved, keep = T.random_affine(img, boxes, rng=np.random.default_rng(seed),
                                       border=border, **kw)
    oh, ow = h + 2 * border[0], w + 2 * border[1]
    assert out.shape == (oh, ow, 3) and out.dtype == np.uint8
    assert moved.shape == (len(keep), 4)
    assert np.all(np.diff(keep) > 0) and (keep.size == 0 or 0 <= keep[0] <= keep[-1] < len(boxes))
    assert _inside(moved, oh, ow)
    assert np.all(moved[:, 2] - moved[:, 0] > 2) and np.all(moved[:, 3] - moved[:, 1] > 2)


@settings(max_examples=40)
@given(hw=st.tuples(st.integers(24, 64), st.integers(24, 64)), data=st.data(),
       kw=st.one_of(
           st.fixed_dictionaries({"degrees": st.just(0.0), "translate": floats(0, 0.3),
                                  "scale": floats(0, 0.5), "shear": st.just(0.0)}),
           affine_args),
       seed=st.integers(0, 2 ** 16))
def test_affine_box_moves_with_pixels(hw, data, kw, seed):
    """translate + scale (first branch) and rotation + shear (second): the enclosing box of the
    transformed corners of a filled rectangle is the box of its transformed pixels, kept or not.
    Clipping commutes with that only for axis-aligned maps: a rotated box cut by the border
    encloses more than its visible pixels (YOLOv5's convention), so then the pixels must only lie
    inside it."""
    h, w = hw
    img = _canvas(h, w, data.draw(pixel_rectangles(h, w, min_side=8)))
    rect = _coloured_box(img)
    out, moved, keep = T.random_affine(img, rect, rng=np.random.default_rng(seed), **kw)
    # the same draws again, to see the box whether or not box_candidates kept it
    m, _, _ = T._affine_matrix((h, w), kw["degrees"], kw["translate"], kw["scale"], kw["shear"],
                               np.random.default_rng(seed), (0, 0))
    full = T._transform_boxes(rect, m)
    clipped = T.clip_boxes(full, (h, w))
    if keep.size:
        assert_parity(moved, clipped, tol=EXACT, name="data.random_affine")
    pixels = _coloured_box(out)
    side = (clipped[:, 2:] - clipped[:, :2]).min()
    axis_aligned = m[0, 1] == 0 and m[1, 0] == 0
    if side > 3 and (axis_aligned or _inside(full, h, w)):
        assert_parity(pixels, clipped, name="pixels.box", dtype="float64")
    elif pixels.size:  # the visible pixels lie inside the (clipped) box
        inner = np.concatenate([np.maximum(pixels[:, :2], clipped[:, :2]),
                                np.minimum(pixels[:, 2:], clipped[:, 2:])], axis=1)
        assert_parity(inner, pixels, name="pixels.box", dtype="float64")


def test_box_candidates_filters():
    before = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 300, 10.0]])
    after = np.array([[0, 0, 10, 10], [0, 0, 2, 10], [0, 0, 3, 3], [0, 0, 300, 2.5]])
    assert T.box_candidates(before, after).tolist() == [True, False, False, False]
    assert T.box_candidates(np.array([[0, 0, 100, 100.]]),
                            np.array([[0, 0, 9, 9.]])).tolist() == [False]  # area ratio 0.0081


# ----------------------------------------------------------------------------- mosaic

@settings(max_examples=25)
@given(s=st.sampled_from([32, 48, 64]), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_mosaic_output_size_and_boxes_inside(s, data, seed):
    images = [data.draw(uint8_images(8, 80)) for _ in range(4)]
    boxes = [data.draw(boxes_inside(*im.shape[:2], max_n=4)) for im in images]
    classes = [np.arange(len(b)) + 10 * k for k, b in enumerate(boxes)]
    out, mb, mc = T.mosaic4(images, boxes, classes, s, np.random.default_rng(seed))
    assert out.shape == (2 * s, 2 * s, 3) and out.dtype == np.uint8
    assert mb.shape == (len(mc), 4) and mc.dtype == np.int64
    assert _inside(mb, 2 * s, 2 * s)
    assert np.all(mb[:, 2] - mb[:, 0] > 2) and np.all(mb[:, 3] - mb[:, 1] > 2)
    assert set(mc.tolist()) <= set(np.concatenate(classes).tolist())
    # then the affine with the mosaic border gives the training size
    img, fb, keep = T.random_affine(out, mb, rng=np.random.default_rng(seed),
                                    border=(-(s // 2), -(s // 2)))
    assert img.shape == (s, s, 3) and _inside(fb, s, s)


@settings(max_examples=25)
@given(s=st.sampled_from([32, 64]), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_mosaic_box_moves_with_pixels(s, data, seed):
    """One image carries the coloured rectangle; the other three are plain background."""
    hw = [(data.draw(st.integers(16, 64)), data.draw(st.integers(16, 64))) for _ in range(4)]
    h, w = hw[0]
    rect = data.draw(pixel_rectangles(h, w, min_side=min(h, w) // 4 + 4))
    images = [_canvas(h, w, rect)] + [_canvas(hh, ww, (0, 0, 0, 0)) for hh, ww in hw[1:]]
    boxes = [np.array([rect], np.float64)] + [np.zeros((0, 4))] * 3
    out, mb, _ = T.mosaic4(images, boxes, [np.zeros(len(b), np.int64) for b in boxes], s,
                           np.random.default_rng(seed))
    pixels = _coloured_box(out)
    if len(mb):
        assert_parity(mb, pixels, name="pixels.box", dtype="float64")
    else:  # dropped: what is visible is tiny or < 10 % of the whole (resized) box, up to a px
        r = s / max(h, w)
        fx, fy = np.ceil(w * r) / w, np.ceil(h * r) / h
        full = (rect[2] - rect[0]) * fx * (rect[3] - rect[1]) * fy
        pw, ph = (pixels[0, 2:] - pixels[0, :2]) if pixels.size else (0.0, 0.0)
        assert min(pw, ph) <= 4 or (pw - 2) * (ph - 2) <= 0.1 * full


# ----------------------------------------------------------------------------- data YAML

def test_read_data_yaml_fixture():
    d = D.read_data_yaml(YAML)
    assert d["names"] == NAMES and d["nc"] == 3
    assert d["path"] == FIXTURE and d["train"] == FIXTURE / "train.txt"
    assert d["val"].is_file() and d["test"] is None


def test_read_data_yaml_subset(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("# data\npath: /abs/root  # trailing comment\ntrain: 'images/train'\n"
                 "val: [a.txt, \"b c.txt\"]\nnames: [cat, 'dog # not a comment']\n\n"
                 "download: ~\nnc: 2\n")
    d = D.read_data_yaml(p)
    assert d["path"] == Path("/abs/root") and d["train"] == Path("/abs/root/images/train")
    assert d["val"] == [Path("/abs/root/a.txt"), Path("/abs/root/b c.txt")]
    assert d["names"] == ["cat", "dog # not a comment"] and d["download"] is None
    p.write_text("train: t.txt\nnames:\n  - a\n  - b\n")
    assert D.read_data_yaml(p)["names"] == ["a", "b"]
    # full YAML (PyYAML safe_load): flow mappings, names by index in any order
    p.write_text("train: t.txt\nnames: {1: dog, 0: cat}\n")
    assert D.read_data_yaml(p)["names"] == ["cat", "dog"]
    p.write_text("train: t.txt\nnames:\n  1: dog\n  0: cat\nnc: 2\n")
    assert D.read_data_yaml(p)["names"] == ["cat", "dog"]


@pytest.mark.parametrize("text, where", [
    ("train: t.txt\nnames:\n  0: a\n    1: b\n", ":4:"),
    ("train: t.txt\n  names: [a]\n", ":2:"),
    ("train: t.txt\nnames: [a\n", ":3:"),  # PyYAML marks where the list should have closed
    ("train: t.txt\nnames:\n\t- a\n", ":3:"),
    ("train t.txt\n", ": expected a mapping"),
    ("- a\n- b\n", ": expected a mapping"),
    ("train: t.txt\ntrain: u.txt\nnames: [a]\n", ":2: duplicate key 'train'"),
    ("train: !!python/object/apply:os.getcwd []\nnames: [a]\n", ":1:"),  # safe: no objects
    ("train: t.txt\nnames: {b: x, 0: a}\n", ": names:"),
    ("train: t.txt\nnames:\n  0: a\n  2: b\n", ": names:"),
    ("train: t.txt\nnc: 3\nnames: [a, b]\n", ": nc:"),
    ("names: [a]\n", ": train, val:"),
    ("train: t.txt\n", ": names:"),
])
def test_read_data_yaml_errors_name_the_file(tmp_path, text, where):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=f"bad.yaml{where}"):
        D.read_data_yaml(p)


def test_read_data_yaml_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nope.yaml: cannot read"):
        D.read_data_yaml(tmp_path / "nope.yaml")


# ----------------------------------------------------------------------------- dataset

SOURCES = {
    "list": FIXTURE / "train.txt",
    "images": FIXTURE / "images",
    "yolo_root": FIXTURE,
    "yolo_labels": FIXTURE / "labels",
    "coco": FIXTURE / "annotations.json",
    "voc": FIXTURE / "voc",
}


def test_dataset_formats_agree():
    items = {}
    for kind, src in SOURCES.items():
        ds = D.DetectionDataset(src, img_size=64, names=NAMES)
        assert len(ds) == (24 if kind == "list" else 32)
        items[kind] = [ds[i] for i in range(0, len(ds), 3)]
    ref = items.pop("coco")
    for kind, got in items.items():
        for (i0, l0, p0, s0), (i1, l1, p1, s1) in zip(ref, got):
            assert Path(p0).name == Path(p1).name, kind
            assert torch.equal(i0, i1), kind
            assert_parity(l1, l0, name="fixture.formats", dtype="float32")
            assert s0 == s1
    assert sum(len(x[1]) for x in ref) > 0


@pytest.mark.parametrize("augment", [False, True])
def test_cached_images_give_the_same_items_and_stay_unmodified(augment):
    plain = D.DetectionDataset(FIXTURE / "train.txt", img_size=96, names=NAMES, augment=augment, seed=5)
    cached = D.DetectionDataset(FIXTURE / "train.txt", img_size=96, names=NAMES, augment=augment, seed=5)
    held = cached.cache_images()
    assert held == sum(D.load_image(it["path"]).nbytes for it in cached.items) > 0
    frozen = {k: v.copy() for k, v in cached._images.items()}
    for i in range(len(plain)):
        a, b = plain[i], cached[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2:] == b[2:]
    assert all(not v.flags.writeable and np.array_equal(v, frozen[k]) for k, v in cached._images.items())


def test_dataset_labels_invert_to_the_original_boxes():
    ds = D.DetectionDataset(FIXTURE / "annotations.json", img_size=96, names=NAMES)
    orig = D.DetectionDataset(FIXTURE / "annotations.json", img_size=320, names=NAMES)
    for i in (0, 5):
        _, labels, _, shapes = ds[i]
        _, boxes, _ = orig.load(i)
        back = T.unletterbox_boxes(_labels_to_pixels(labels, 96), (96, 96), shapes[0], shapes[1])
        assert_parity(back, boxes, name="roundtrip.labels", dtype="float32")


def test_dataset_item_layout_and_normalize():
    ds = D.DetectionDataset(FIXTURE / "val.txt", img_size=64, names=NAMES)
    img, labels, path, shapes = ds[1]
    assert img.shape == (3, 64, 64) and img.dtype == torch.uint8
    assert labels.dtype == torch.float32 and labels.shape[1] == 6
    assert torch.all(labels[:, 0] == 0) and torch.all((labels[:, 2:] >= 0) & (labels[:, 2:] <= 1))
    assert path.endswith("shapes_0025.jpg") and shapes[0] == (320, 320)
    fimg, flabels, _, _ = D.DetectionDataset(FIXTURE / "val.txt", img_size=64, names=NAMES,
                                             normalize=True)[1]
    assert fimg.dtype == torch.float32
    assert_parity(fimg, img.float() / 255, tol=EXACT, name="data.normalize")
    assert_parity(flabels, labels, tol=EXACT, name="data.labels")


def test_collate_shapes():
    ds = D.DetectionDataset.from_yaml(YAML, split="train", img_size=64, augment=True, seed=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=D.collate_fn)
    images, labels, paths, shapes = next(iter(loader))
    items = [ds[i] for i in range(4)]
    assert images.shape == (4, 3, 64, 64) and images.dtype == torch.uint8
    counts = [len(it[1]) for it in items]
    assert labels.shape == (sum(counts), 6)
    assert labels[:, 0].tolist() == [float(i) for i, n in enumerate(counts) for _ in range(n)]
    assert_parity(labels[:, 1:], torch.cat([it[1] for it in items])[:, 1:], tol=EXACT,
                  name="data.collate")
    assert len(paths) == 4 and len(shapes) == 4
    assert torch.all((labels[:, 2:] >= 0) & (labels[:, 2:] <= 1))
    assert torch.all(labels[:, 4:] * 64 > 2)  # box_candidates' 2 px
    assert all(float(it[1][:, 0].abs().sum()) == 0 for it in items)  # items not mutated


def test_determinism_with_a_seed():
    def make(seed):
        return D.DetectionDataset(FIXTURE / "train.txt", img_size=64, augment=True, seed=seed,
                                  names=NAMES, hyp={"degrees": 10.0, "shear": 2.0})
    a, b, c = make(7), make(7), make(8)
    order = [5, 0, 3]
    first = [a[i] for i in order]
    second = [b[i] for i in reversed(order)][::-1]  # order of access does not matter
    for x, y in zip(first, second):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    assert any(not torch.equal(x[0], c[i][0]) for x, i in zip(first, order))
    a.set_epoch(1)
    assert any(not torch.equal(x[0], a[i][0]) for x, i in zip(first, order))
    b.set_epoch(1)
    assert torch.equal(a[5][0], b[5][0])


def test_determinism_across_workers():
    ds = D.DetectionDataset(FIXTURE / "train.txt", img_size=32, augment=True, seed=1,
                            names=NAMES)
    direct = D.collate_fn([ds[i] for i in range(4)])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2,
                                         collate_fn=D.collate_fn)
    batches = [b for _, b in zip(range(2), loader)]
    assert torch.equal(torch.cat([b[0] for b in batches]), direct[0])
    assert torch.equal(torch.cat([b[1][:, 1:] for b in batches]), direct[1][:, 1:])


# ----------------------------------------------------------------------------- errors

def test_dataset_bad_paths_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        D.DetectionDataset(tmp_path / "nowhere")
    lst = tmp_path / "list.txt"
    lst.write_text("missing.jpg\n")
    with pytest.raises(ValueError, match=r"list.txt:1: 'missing.jpg' is not an image"):
        D.DetectionDataset(lst)
    with pytest.raises(ValueError, match="from_yaml"):
        D.DetectionDataset(YAML)
    with pytest.raises(ValueError, match="dataset.yaml: test"):
        D.DetectionDataset.from_yaml(YAML, split="test")


def test_dataset_bad_labels_name_the_file_and_line(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    shutil.copy(FIXTURE / "images" / "shapes_0000.jpg", tmp_path / "images" / "a.jpg")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match=r"a.txt:2: class '7'"):
        D.DetectionDataset(tmp_path / "images", names=NAMES)
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 1.1 0.1\n")
    with pytest.raises(ValueError, match=r"a.txt:1: expected normalised"):
        D.DetectionDataset(tmp_path / "images")
    (tmp_path / "images" / "b.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "labels" / "a.txt").write_text("")
    ds = D.DetectionDataset(tmp_path / "images")
    with pytest.raises(ValueError, match="b.jpg: cannot read image"):
        ds[1]


def test_transform_arguments_are_checked():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="img"):
        T.hflip(img.astype(np.float32), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="boxes"):
        T.letterbox_boxes(np.zeros((2, 3)), (1, 1), (0, 0))
    with pytest.raises(ValueError, match="hgain"):
        T.augment_hsv(img, -1.0)
    with pytest.raises(ValueError, match="images"):
        T.mosaic4([img] * 3, [np.zeros((0, 4))] * 3, [np.zeros(0)] * 3, 32)
    with pytest.raises(ValueError, match="img_size"):
        D.DetectionDataset(FIXTURE / "val.txt", img_size=33, augment=True)
    with pytest.raises(ValueError, match="mixup"):
        D.DetectionDataset(FIXTURE / "val.txt", augment=True, hyp={"mixup": 0.1})
    with pytest.raises(ValueError, match=r"hyp\['fliplr'\]"):
        D.DetectionDataset(FIXTURE / "val.txt", augment=True, hyp={"fliplr": 1.5})


def test_images_without_labels_give_empty_rows(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b"):
        shutil.copy(FIXTURE / "images" / "shapes_0001.jpg", tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "labels" / "b.txt").write_text("2 0.5 0.5 0.25 0.5\n")  # a.jpg has no label file
    ds = D.DetectionDataset(tmp_path / "images", img_size=32)
    assert ds[0][1].shape == (0, 6)
    images, labels, _, _ = D.collate_fn([ds[0], ds[1], ds[0]])
    assert images.shape == (3, 3, 32, 32)
    assert_parity(labels, torch.tensor([[1.0, 2.0, 0.5, 0.5, 0.25, 0.5]]), tol=EXACT,
                  name="data.collate")
