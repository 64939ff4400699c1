"""Dedicated tests of ``boxes``: what the generic registry harness cannot express.

- degenerate boxes: NaN exactly where torchvision puts it, and hand-checked values;
- invariants (symmetry, ranges, IoU(a, a) = 1, translation and power-of-two scale invariance,
  GIoU/DIoU/CIoU <= IoU), on the reference and on the port;
- round trips of all six format pairs and of normalise/denormalise;
- extreme scales, empty inputs, integer and half dtypes against torchvision;
- bad input raising ValueError naming the argument, on both sides;
- ``aligned_box_iou``: YOLOv5's eps placement, agreement with torchvision at eps = 0, finite
  gradients on degenerate boxes;
- ``box_ioa`` against pycocotools' crowd IoU;
- one kernel per convention: ``voc_box_iou`` = py-faster-rcnn's ``voc_eval`` overlaps,
  ``coco_box_iou`` = box_iou / box_ioa by crowd flag, ``darknet_box_iou`` = box_iou of the corners,
  ``box_iou`` = inter / union of ``box_inter_union``;
- the port on CUDA (skipped only when no GPU is present).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.ops as tvo
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref_numpy.boxes as R
import torch_impl.boxes as T
from parity_tests import strategies as S
from parity_tests.registry import ALL_CASES
from parity_tests.sides import REF, get_side
from parity_tests.tolerances import EXACT, assert_parity, on_device, tolerance

FORMATS = ("xyxy", "xywh", "cxcywh")
FORMAT_PAIRS = [(a, b) for a in FORMATS for b in FORMATS if a != b]
PAIRWISE_TV = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")
PAIRWISE = PAIRWISE_TV + ("box_ioa",)
KINDS = ("iou", "giou", "diou", "ciou")
PORT = get_side("torch")
IMPLS = (pytest.param(REF, id="ref"), pytest.param(PORT, id="port"))
BOTH = (REF, PORT)
DTYPES = ("float64", "float32")


# ----------------------------------------------------------------------------- degenerate boxes

POINT = [5.0, 5.0, 5.0, 5.0]
UNIT = [0.0, 0.0, 10.0, 10.0]
ZERO_W = [2.0, 2.0, 2.0, 8.0]
INVERTED = [8.0, 8.0, 2.0, 2.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fname", PAIRWISE_TV)
@settings(max_examples=40)
@given(pair=S.box_pairs_xyxy(family="degenerate"))
@example(pair=(np.array([POINT, ZERO_W, INVERTED, UNIT]), np.array([POINT, UNIT, INVERTED])))
@example(pair=(np.array([POINT, POINT]), np.array([POINT])))
def test_degenerate_boxes_match_torchvision(fname, dtype, pair):
    """Zero-width, zero-height, point, inverted and duplicated boxes: the reference and the port
    give torchvision's values, NaN in exactly the same places."""
    want = PORT.call(getattr(tvo, fname), *pair, dtype=dtype)
    for impl in BOTH:
        got = impl.call(f"boxes.{fname}", *pair, dtype=dtype)
        tol = EXACT if impl is PORT else None
        assert_parity(got, want, name=f"boxes.{fname}", dtype=dtype, tol=tol, inputs=pair)


@pytest.mark.parametrize("impl", IMPLS)
def test_degenerate_values_by_hand(impl):
    """The documented edge cases, typed out."""
    b1 = np.array([POINT, ZERO_W, INVERTED, UNIT])
    b2 = np.array([POINT, UNIT])
    iou = impl.call("boxes.box_iou", b1, b2)
    assert np.isnan(iou[0, 0]), "two zero-area boxes: 0/0"
    assert iou[0, 1] == 0 and iou[1, 1] == 0, "zero-area box vs a valid one: 0"
    assert iou[2, 1] == 0, "inverted box: no intersection"
    assert iou[3, 1] == 1
    giou = impl.call("boxes.generalized_box_iou", b1, b2)
    assert np.isnan(giou[0, 0]) and giou[3, 1] == 1
    flipped = impl.call("boxes.generalized_box_iou", np.array([[10.0, 10.0, 0.0, 0.0]]), np.array([UNIT]))
    assert flipped.tolist() == [[1.0]], "torchvision: UNIT inverted, against UNIT, gives 1"
    ciou = impl.call("boxes.complete_box_iou", np.array([[0.0, 0.0, 4.0, 0.0]]), np.array([UNIT]))
    assert np.isfinite(ciou).all(), "h == 0: atan(inf) = pi/2, finite"
    ioa = impl.call("boxes.box_ioa", b1, b2)
    assert np.isnan(ioa[0, 1]) and ioa[2, 1] == 0 and ioa[3, 0] == 0
    wh = impl.call("boxes.wh_iou", np.array([[0.0, 0.0], [0.0, 3.0], [2.0, 3.0]]),
             np.array([[0.0, 0.0], [2.0, 3.0]]))
    assert np.isnan(wh[0, 0]) and wh[1, 1] == 0 and wh[2, 1] == 1 and wh[0, 1] == 0
    assert list(impl.call("boxes.remove_small_boxes", b1, 1.0)) == [3]
    assert impl.call("boxes.box_area", np.array([INVERTED, [8.0, 0.0, 2.0, 1.0]])).tolist() == [36, -6]


# ----------------------------------------------------------------------------- invariants

@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40)
@given(pair=S.box_pairs_xyxy(family="ordinary"), dtype=st.sampled_from(DTYPES))
@example(pair=(np.zeros((0, 4)), np.array([UNIT])), dtype="float64")
def test_pairwise_invariants(impl, pair, dtype):
    """Valid boxes: IoU symmetric and in [0, 1] with IoU(a, a) = 1; GIoU in [-1, 1];
    CIoU <= DIoU <= IoU, DIoU in [-1, 1]; all symmetric; IoA in [0, 1]. (GIoU <= IoU and
    IoA >= IoU hold exactly only without rounding: see the integer-coordinate test.)"""
    b1, b2 = pair
    iou = impl.call("boxes.box_iou", b1, b2, dtype=dtype)
    assert_parity(impl.call("boxes.box_iou", b2, b1, dtype=dtype), iou.T, tol=EXACT, inputs=pair)
    assert np.all((iou >= 0) & (iou <= 1))
    self_iou = np.diagonal(impl.call("boxes.box_iou", b1, b1, dtype=dtype))
    assert_parity(self_iou, np.ones(len(b1), dtype=dtype), tol=EXACT, inputs=pair)
    giou = impl.call("boxes.generalized_box_iou", b1, b2, dtype=dtype)
    diou = impl.call("boxes.distance_box_iou", b1, b2, dtype=dtype)
    ciou = impl.call("boxes.complete_box_iou", b1, b2, dtype=dtype)
    assert np.all((giou >= -1) & (giou <= 1)), "GIoU in [-1, 1]"
    assert np.all((diou >= -1) & (diou <= iou)), "DIoU in [-1, IoU]"
    assert np.all(ciou <= diou), "CIoU <= DIoU"
    for fname, value in (("generalized_box_iou", giou), ("distance_box_iou", diou),
                         ("complete_box_iou", ciou)):
        assert_parity(impl.call(f"boxes.{fname}", b2, b1, dtype=dtype), value.T, tol=EXACT, inputs=pair)
    ioa = impl.call("boxes.box_ioa", b1, b2, dtype=dtype)
    assert np.all((ioa >= 0) & (ioa <= 1))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=30)
@given(b1=S.integer_boxes_xyxy(), b2=S.integer_boxes_xyxy(),
       shift=st.tuples(st.integers(-512, 512), st.integers(-512, 512)),
       exponent=st.integers(-20, 20), dtype=st.sampled_from(DTYPES))
def test_translation_and_scale_invariance(impl, b1, b2, shift, exponent, dtype):
    """On integer coordinates (all sums and products exact), an integer translation and a
    power-of-two scaling change no bit of IoU, GIoU, DIoU, CIoU, IoA or the shape IoU (DIoU and
    CIoU at eps = 0: the eps does not scale); and GIoU <= IoU <= IoA hold exactly."""
    offset = np.array([shift[0], shift[1], shift[0], shift[1]], dtype=np.float64)
    scale = 2.0 ** exponent
    for fname in PAIRWISE:
        kw = {"eps": 0.0} if fname in ("distance_box_iou", "complete_box_iou") else {}
        base = impl.call(f"boxes.{fname}", b1, b2, dtype=dtype, **kw)
        moved = impl.call(f"boxes.{fname}", b1 + offset, b2 + offset, dtype=dtype, **kw)
        scaled = impl.call(f"boxes.{fname}", b1 * scale, b2 * scale, dtype=dtype, **kw)
        assert_parity(moved, base, name=fname, tol=EXACT, inputs=(b1, b2, shift))
        assert_parity(scaled, base, name=fname, tol=EXACT, inputs=(b1, b2, exponent))
    iou = impl.call("boxes.box_iou", b1, b2, dtype=dtype)
    assert np.all(impl.call("boxes.generalized_box_iou", b1, b2, dtype=dtype) <= iou)
    assert np.all(impl.call("boxes.box_ioa", b1, b2, dtype=dtype) >= iou)
    wh1, wh2 = b1[:, 2:] - b1[:, :2], b2[:, 2:] - b2[:, :2]
    assert_parity(impl.call("boxes.wh_iou", wh1 * scale, wh2 * scale, dtype=dtype),
                  impl.call("boxes.wh_iou", wh1, wh2, dtype=dtype), tol=EXACT, inputs=(b1, b2, exponent))


@settings(max_examples=30)
@given(pair=S.box_pairs_xyxy(family="extreme"), dtype=st.sampled_from(DTYPES))
def test_extreme_scale_boxes(pair, dtype):
    """Boxes from 2^-10 to 2^16 times ordinary sizes: values stay in range, equal torchvision
    bit for bit (port) and equal the same boxes at unit scale up to rounding of the scaling."""
    for fname in PAIRWISE_TV:
        want = PORT.call(getattr(tvo, fname), *pair, dtype=dtype)
        assert_parity(PORT.call(f"boxes.{fname}", *pair, dtype=dtype), want, tol=EXACT, inputs=pair)
        assert_parity(REF.call(f"boxes.{fname}", *pair, dtype=dtype), want, name=f"boxes.{fname}",
                      dtype=dtype, inputs=pair)
        assert np.all(np.isfinite(want))
    iou = REF.call("boxes.box_iou", *pair, dtype=dtype)
    assert np.all((iou >= 0) & (iou <= 1))
    for kind in KINDS:
        n = min(len(pair[0]), len(pair[1]))
        value = PORT.call("boxes.aligned_box_iou", pair[0][:n], pair[1][:n], dtype=dtype, kind=kind)
        assert np.all(np.isfinite(value)) and np.all(value <= 1)


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("in_fmt,out_fmt", FORMAT_PAIRS)
@settings(max_examples=25)
@given(data=st.data())
def test_format_round_trip(impl, in_fmt, out_fmt, data):
    """in_fmt -> out_fmt -> in_fmt is the identity: bit for bit on integer coordinates (float32
    and float64), within three roundings on arbitrary float64 coordinates."""
    exact = R.box_convert(data.draw(S.integer_boxes_xyxy(), label="integer boxes"), "xyxy", in_fmt)
    for dtype in DTYPES:
        there = impl.call("boxes.box_convert", exact, in_fmt, out_fmt, dtype=dtype)
        back = impl.call("boxes.box_convert", there.astype(np.float64), out_fmt, in_fmt, dtype=dtype)
        assert_parity(back, exact.astype(dtype), tol=EXACT, inputs=exact)
    b = data.draw(S.boxes_in(in_fmt, max_n=8), label="boxes")
    there = impl.call("boxes.box_convert", b, in_fmt, out_fmt)
    back = impl.call("boxes.box_convert", there, out_fmt, in_fmt)
    assert_parity(back, b, name="roundtrip.boxes", dtype="float64", inputs=b)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=30)
@given(fmt=st.sampled_from(FORMATS), data=st.data())
def test_normalize_round_trip(impl, fmt, data):
    """denormalise(normalise(b)) == b: exactly for power-of-two image sizes (integer
    coordinates, so float32 cannot underflow), within two roundings otherwise; normalising by
    the image size maps the image onto [0, 1]."""
    exact = R.box_convert(data.draw(S.integer_boxes_xyxy(), label="integer boxes"), "xyxy", fmt)
    pow2 = (2 ** data.draw(st.integers(0, 12)), 2 ** data.draw(st.integers(0, 12)))
    for dtype in DTYPES:
        back = impl.call("boxes.box_denormalize", impl.call("boxes.box_normalize", exact, pow2, dtype=dtype)
                   .astype(np.float64), pow2, dtype=dtype)
        assert_parity(back, exact.astype(dtype), tol=EXACT, inputs=(exact, pow2))
    b = data.draw(S.boxes_in(fmt, max_n=8), label="boxes")
    size = data.draw(S.image_sizes(), label="image_size")
    back = impl.call("boxes.box_denormalize", impl.call("boxes.box_normalize", b, size), size)
    assert_parity(back, b, name="roundtrip.boxes", dtype="float64", inputs=(b, size))
    corners = np.array([[0.0, 0.0, size[1], size[0]]])
    assert impl.call("boxes.box_normalize", corners, size).tolist() == [[0.0, 0.0, 1.0, 1.0]]


# ----------------------------------------------------------------------------- shapes and dtypes

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fname", PAIRWISE)
def test_empty_inputs(impl, fname):
    """[0, 4] against [M, 4] gives [0, M] and vice versa; torchvision agrees."""
    empty, some = np.zeros((0, 4)), np.array([UNIT, POINT])
    assert impl.call(f"boxes.{fname}", empty, some).shape == (0, 2)
    assert impl.call(f"boxes.{fname}", some, empty).shape == (2, 0)
    assert impl.call(f"boxes.{fname}", empty, empty).shape == (0, 0)
    if fname in PAIRWISE_TV:
        assert PORT.call(getattr(tvo, fname), empty, some).shape == (0, 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_inputs_single_box_ops(impl):
    empty = np.zeros((0, 4))
    assert impl.call("boxes.wh_iou", np.zeros((0, 2)), np.ones((3, 2))).shape == (0, 3)
    assert impl.call("boxes.aligned_box_iou", empty, empty, kind="ciou").shape == (0,)
    assert impl.call("boxes.aligned_box_iou", empty, np.array([UNIT]), kind="giou").shape == (0,)
    for fmt in FORMATS:
        assert impl.call("boxes.box_convert", empty, "xyxy", fmt).shape == (0, 4)
    assert impl.call("boxes.box_area", empty).shape == (0,)
    assert impl.call("boxes.box_normalize", empty, (4, 4)).shape == (0, 4)
    assert impl.call("boxes.clip_boxes_to_image", empty, (4, 4)).shape == (0, 4)
    keep = impl.call("boxes.remove_small_boxes", empty, 1.0)
    assert keep.shape == (0,) and keep.dtype == np.int64


@pytest.mark.parametrize("impl", IMPLS)
def test_batched_pairwise(impl):
    """Leading dimensions broadcast: [B, N, 4] x [M, 4] equals the per-batch results."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (3, 5, 2))
    b1 = np.concatenate([xy, xy + rng.uniform(1, 30, (3, 5, 2))], -1)
    b2 = b1[0, :4]
    for fname in PAIRWISE:
        out = impl.call(f"boxes.{fname}", b1, b2)
        assert out.shape == (3, 5, 4)
        for i in range(3):
            assert_parity(out[i], impl.call(f"boxes.{fname}", b1[i], b2), tol=EXACT)
    wh = impl.call("boxes.wh_iou", b1[..., 2:] - b1[..., :2], b2[:, 2:] - b2[:, :2])
    assert wh.shape == (3, 5, 4)


INT_DTYPES = ("int64", "int32", "int16", "uint8")


def _int_boxes(dtype):
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 25], [3, 3, 3, 9], [20, 20, 60, 30], [9, 9, 4, 4]])
    return b.astype(dtype)


@pytest.mark.parametrize("dtype", INT_DTYPES + ("float16",))
@pytest.mark.parametrize("fname", PAIRWISE_TV + ("box_area", "box_convert", "clip_boxes_to_image",
                                                 "remove_small_boxes"))
def test_integer_and_half_inputs_match_torchvision(fname, dtype):
    """torchvision's _upcast rules: small ints compute in int32, halves in float32, a true
    division of ints gives float32; conversions to cxcywh give float32. Port == torchvision
    bit for bit and dtype for dtype; the reference gives the same dtype and values."""
    b = _int_boxes(dtype)
    calls = {"box_area": [(b,)], "remove_small_boxes": [(b, 5)],
             "clip_boxes_to_image": [(b, (12, 8))],
             "box_convert": [(b, i, o) for i, o in FORMAT_PAIRS]}.get(fname, [(b, b[:3])])
    for args in calls:
        port = getattr(T, fname)(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                                   for a in args))
        want = getattr(tvo, fname)(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                                     for a in args))
        assert port.dtype == want.dtype, f"{fname}{args[1:]}: {port.dtype} vs {want.dtype}"
        assert_parity(port, want, tol=EXACT, inputs=args)
        ref = getattr(R, fname)(*args)
        assert str(ref.dtype) == str(want.dtype).replace("torch.", ""), (
            f"{fname}{args[1:]}: reference dtype {ref.dtype} vs torchvision {want.dtype}")
        assert_parity(ref, want, name=f"boxes.{fname}", dtype=str(ref.dtype), inputs=args)


@pytest.mark.parametrize("dtype", INT_DTYPES + ("float16",))
@pytest.mark.parametrize("kind", KINDS)
def test_aligned_non_float_inputs_compute_in_float32(kind, dtype):
    """Integers and halves are computed in float32 (eps = 1e-7 needs it), on both sides."""
    b1, b2 = _int_boxes(dtype)[:4], _int_boxes(dtype)[:4][::-1].copy()
    ref = R.aligned_box_iou(b1, b2, kind=kind)
    port = T.aligned_box_iou(torch.from_numpy(b1), torch.from_numpy(b2), kind=kind)
    assert ref.dtype == np.float32 and port.dtype == torch.float32
    want = R.aligned_box_iou(b1.astype(np.float32), b2.astype(np.float32), kind=kind)
    assert_parity(ref, want, tol=EXACT)
    assert_parity(port, want, name="boxes.aligned_box_iou", dtype="float32")


# ----------------------------------------------------------------------------- bad input

GOOD = np.array([UNIT, [1.0, 2.0, 3.0, 4.0]])
NAN_BOXES = np.array([[0.0, 0.0, np.nan, 1.0]])
BAD_CALLS = [
    ("box_convert", (np.zeros((2, 3)), "xyxy", "xywh"), {}, "boxes"),
    ("box_convert", (GOOD, "xyxy", "yolo"), {}, "out_fmt"),
    ("box_convert", (GOOD, "xywhr", "xyxy"), {}, "in_fmt"),
    ("box_convert", (NAN_BOXES, "xyxy", "xywh"), {}, "boxes"),
    ("box_normalize", (GOOD, (0, 10)), {}, "image_size"),
    ("box_normalize", (GOOD, (10,)), {}, "image_size"),
    ("box_denormalize", (np.zeros((2, 5)), (10, 10)), {}, "boxes"),
    ("box_area", (np.zeros(3),), {}, "boxes"),
    ("box_area", (np.array([[0.0, 0.0, np.inf, 1.0]]),), {}, "boxes"),
    ("clip_boxes_to_image", (GOOD, (10, -1)), {}, "size"),
    ("clip_boxes_to_image", (np.zeros((2, 2)), (10, 10)), {}, "boxes"),
    ("remove_small_boxes", (np.zeros((2, 2, 4)), 1.0), {}, "boxes"),
    ("remove_small_boxes", (GOOD, float("nan")), {}, "min_size"),
    ("box_iou", (GOOD[0], GOOD), {}, "boxes1"),
    ("box_iou", (GOOD, np.zeros((2, 3))), {}, "boxes2"),
    ("box_iou", (NAN_BOXES, GOOD), {}, "boxes1"),
    ("box_iou", (np.zeros((2, 3, 4)), np.zeros((4, 2, 4))), {}, "boxes1 and boxes2"),
    ("generalized_box_iou", (GOOD, NAN_BOXES), {}, "boxes2"),
    ("distance_box_iou", (GOOD, GOOD), {"eps": -1.0}, "eps"),
    ("complete_box_iou", (GOOD, GOOD), {"eps": float("inf")}, "eps"),
    ("box_ioa", (GOOD, np.zeros((2, 5))), {}, "boxes2"),
    ("wh_iou", (np.zeros((2, 4)), np.ones((2, 2))), {}, "wh1"),
    ("wh_iou", (np.ones((2, 2)), -np.ones((2, 2))), {}, "wh2"),
    ("aligned_box_iou", (GOOD, GOOD), {"kind": "wiou"}, "kind"),
    ("aligned_box_iou", (GOOD, GOOD), {"fmt": "xywh"}, "fmt"),
    ("aligned_box_iou", (GOOD, np.zeros((3, 4))), {}, "boxes1 and boxes2"),
    ("aligned_box_iou", (NAN_BOXES, GOOD), {}, "boxes1"),
    ("aligned_box_iou", (GOOD, GOOD), {"eps": -1e-7}, "eps"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fname,args,kwargs,names", BAD_CALLS,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(BAD_CALLS)])
def test_bad_input_names_the_argument(impl, fname, args, kwargs, names):
    with pytest.raises(ValueError, match=f"^{names}"):
        impl.call(f"boxes.{fname}", *args, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
def test_sanitisers_accept_non_finite(impl):
    """clip_boxes_to_image keeps NaN and clamps inf; remove_small_boxes drops NaN sides."""
    b = np.array([[np.nan, 1.0, 5.0, 5.0], [-np.inf, 0.0, np.inf, 3.0], [1.0, 1.0, 4.0, 4.0]])
    clipped = impl.call("boxes.clip_boxes_to_image", b, (4, 6))
    assert np.isnan(clipped[0, 0]) and clipped[1].tolist() == [0.0, 0.0, 6.0, 3.0]
    assert impl.call("boxes.remove_small_boxes", b, 1.0).tolist() == [1, 2]


# ----------------------------------------------------------------------------- aligned_box_iou

@pytest.mark.parametrize("impl", IMPLS)
def test_aligned_eps_placement(impl):
    """YOLOv5 v7.0: in xyxy mode h = dy + eps and union = w1h1 + w2h2 - inter + eps; in cxcywh
    mode h has no eps. Identical unit boxes therefore give 1/(1 + 3 eps) and 1/(1 + eps)."""
    eps = 1e-7
    unit_xyxy, unit_cxcywh = np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([[0.5, 0.5, 1.0, 1.0]])
    h = 1.0 + eps
    want_xyxy = 1.0 / ((1.0 * h + 1.0 * h - 1.0) + eps)
    want_cxcywh = 1.0 / ((1.0 + 1.0 - 1.0) + eps)
    got_xyxy = impl.call("boxes.aligned_box_iou", unit_xyxy, unit_xyxy, kind="iou")
    got_cxcywh = impl.call("boxes.aligned_box_iou", unit_cxcywh, unit_cxcywh, kind="iou", fmt="cxcywh")
    assert_parity(got_xyxy, np.array([want_xyxy]), tol=EXACT)
    assert_parity(got_cxcywh, np.array([want_cxcywh]), tol=EXACT)
    two_points = impl.call("boxes.aligned_box_iou", np.array([POINT]), np.array([POINT]), kind="giou")
    assert two_points.tolist() == [0.0], "union = eps, c_area = eps: 0 - 0/eps"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25)
@given(pair=S.elementwise_box_pairs(family="ordinary"))
def test_aligned_equals_torchvision_at_zero_eps(impl, kind, pair):
    """With eps = 0 and valid boxes YOLOv5's formulas are torchvision's: IoU and GIoU bit for
    bit (same operations), DIoU and CIoU up to their different order of operations; and the
    cxcywh mode agrees with the xyxy mode up to the rounding of the conversion."""
    b1, b2 = pair
    b2 = np.broadcast_to(b2, b1.shape).copy()
    pairwise = {"iou": "box_iou", "giou": "generalized_box_iou", "diou": "distance_box_iou",
                "ciou": "complete_box_iou"}[kind]
    extra = {} if kind in ("iou", "giou") else {"eps": 0.0}
    want = np.diagonal(PORT.call(getattr(tvo, pairwise), b1, b2, **extra))
    got = impl.call("boxes.aligned_box_iou", b1, b2, kind=kind, eps=0.0)
    tol = EXACT if kind in ("iou", "giou") else None
    assert_parity(got, want, name="boxes.aligned_box_iou", dtype="float64", tol=tol, inputs=pair)
    c1, c2 = R.box_convert(b1, "xyxy", "cxcywh"), R.box_convert(b2, "xyxy", "cxcywh")
    centred = impl.call("boxes.aligned_box_iou", c1, c2, kind=kind, fmt="cxcywh", eps=0.0)
    # At eps = 0 CIoU of identical boxes is alpha = 0/0 (NaN) when the IoU rounds to exactly 1,
    # which the converted boxes need not reproduce: compare where the xyxy value is defined.
    defined = np.isfinite(got)
    assert_parity(centred[defined], got[defined], name="roundtrip.boxes", dtype="float64",
                  inputs=pair)


@settings(max_examples=25)
@given(pair=S.elementwise_box_pairs(family="ordinary"), kind=st.sampled_from(KINDS),
       fmt=st.sampled_from(("xyxy", "cxcywh")))
def test_aligned_invariants(pair, kind, fmt):
    """Symmetric in value (up to YOLOv5's order of operations in rho2); IoU in [0, 1];
    DIoU and CIoU at most the IoU; GIoU and DIoU at least -1. (YOLOv5's GIoU can exceed its
    IoU by ~eps*w: h carries an eps that the enclosing box does not.)"""
    b1, b2 = pair
    value = PORT.call("boxes.aligned_box_iou", b1, b2, kind=kind, fmt=fmt)
    iou = PORT.call("boxes.aligned_box_iou", b1, b2, kind="iou", fmt=fmt)
    swapped = PORT.call("boxes.aligned_box_iou", np.broadcast_to(b2, b1.shape).copy(), b1,
                  kind=kind, fmt=fmt)
    assert_parity(swapped, value, name="boxes.aligned_box_iou", dtype="float64", inputs=pair)
    assert np.all((iou >= 0) & (iou <= 1))
    if kind in ("diou", "ciou"):
        assert np.all(value <= iou)
    if kind in ("giou", "diou"):
        assert np.all(value >= -1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25)
@given(pair=S.elementwise_box_pairs(family="degenerate", fmt="xyxy"))
@example(pair=(np.array([POINT, ZERO_W, INVERTED, [3.0, 4.0, 9.0, 4.0]]), np.array([POINT])))
def test_aligned_gradients_finite_on_degenerate_boxes(kind, dtype, pair):
    """xyxy mode: points, zero width/height and inverted boxes give finite values and finite
    gradients with respect to both inputs (the eps in h, union, c2 and c_area)."""
    b1, b2 = (torch.tensor(b, dtype=getattr(torch, dtype), requires_grad=True) for b in pair)
    value = T.aligned_box_iou(b1, b2, kind=kind)
    assert bool(torch.isfinite(value).all())
    value.sum().backward()
    assert bool(torch.isfinite(b1.grad).all()) and bool(torch.isfinite(b2.grad).all())


@pytest.mark.parametrize("kind", KINDS)
def test_aligned_gradients_cxcywh_zero_width(kind):
    """cxcywh mode (YOLOv5 adds no eps to h): zero width and zero overlap stay finite."""
    b1 = torch.tensor([[5.0, 5.0, 0.0, 4.0], [1.0, 1.0, 2.0, 2.0]], requires_grad=True)
    b2 = torch.tensor([[5.0, 5.0, 0.0, 4.0], [9.0, 9.0, 0.0, 1.0]], requires_grad=True)
    T.aligned_box_iou(b1, b2, kind=kind, fmt="cxcywh").sum().backward()
    assert bool(torch.isfinite(b1.grad).all()) and bool(torch.isfinite(b2.grad).all())


@settings(max_examples=20)
@given(pair=S.elementwise_box_pairs(family="ordinary", min_n=1))
def test_aligned_ciou_alpha_has_no_gradient(pair):
    """CIoU's alpha is a constant for autograd (YOLOv5 and torchvision): the gradient equals
    the one of ``iou - (rho2/c2 + v * alpha_value)`` with alpha frozen, i.e. torchvision's
    complete_box_iou gradient at eps = 0 on the same pairs."""
    b1, b2 = pair
    b2 = np.broadcast_to(b2, b1.shape).copy()
    grads = []

    def torchvision_per_pair(x, y):  # pair by pair: a NaN alpha elsewhere would leak into grads
        return torch.stack([tvo.complete_box_iou(x[i:i + 1], y[i:i + 1], eps=0.0)[0, 0]
                            for i in range(len(x))])

    for fn in (lambda x, y: T.aligned_box_iou(x, y, kind="ciou", eps=0.0), torchvision_per_pair):
        x, y = (torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in (b1, b2))
        fn(x, y).sum().backward()
        grads.append((x.grad, y.grad))
    assert_parity(grads[0], grads[1], name="boxes.aligned_box_iou", dtype="float64", inputs=pair)


# ----------------------------------------------------------------------------- box_ioa vs COCO

@settings(max_examples=30)
@given(dets=S.integer_boxes_xyxy(), crowd=S.integer_boxes_xyxy())
def test_box_ioa_matches_pycocotools_crowd(dets, crowd):
    """pycocotools' bbox IoU with iscrowd=1 is inter / area(detection): box_ioa; with
    iscrowd=0 it is box_iou. Integer coordinates make xywh and xyxy arithmetic exact."""
    from pycocotools import mask as mask_utils

    d, g = R.box_convert(dets, "xyxy", "xywh"), R.box_convert(crowd, "xyxy", "xywh")
    for iscrowd, fname in ((1, "box_ioa"), (0, "box_iou")):
        want = np.asarray(mask_utils.iou(d.tolist(), g.tolist(), [iscrowd] * len(g)),
                          dtype=np.float64).reshape(len(d), len(g))
        for impl in BOTH:
            assert_parity(impl.call(f"boxes.{fname}", dets, crowd), want, tol=EXACT, inputs=(dets, crowd))


# ----------------------------------------------------------------------------- one kernel per convention

def _voc_eval_overlaps(bb, bbgt):
    """py-faster-rcnn ``voc_eval.py`` transcribed: one detection ``bb`` [4] against the
    ground truths ``bbgt`` [G, 4], the +1 pixel convention (a transcription, the oracle)."""
    ixmin = np.maximum(bbgt[:, 0], bb[0])
    iymin = np.maximum(bbgt[:, 1], bb[1])
    ixmax = np.minimum(bbgt[:, 2], bb[2])
    iymax = np.minimum(bbgt[:, 3], bb[3])
    iw = np.maximum(ixmax - ixmin + 1., 0.)
    ih = np.maximum(iymax - iymin + 1., 0.)
    inters = iw * ih
    uni = ((bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.)
           + (bbgt[:, 2] - bbgt[:, 0] + 1.) * (bbgt[:, 3] - bbgt[:, 1] + 1.) - inters)
    return inters / uni


@settings(max_examples=40)
@given(pair=S.box_pairs_xyxy())
@example(pair=(np.array([[0.0, 0.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 3.0, 3.0]])))
def test_voc_box_iou_is_voc_eval(pair):
    """``voc_box_iou`` row by row is py-faster-rcnn's ``voc_eval`` overlaps, bit for bit, on both
    sides; a point box covers one pixel (IoU 1 with itself)."""
    det, gt = pair
    want = np.array([_voc_eval_overlaps(d, gt) for d in det], dtype=np.float64).reshape(len(det), len(gt))
    for impl in BOTH:
        assert_parity(impl.call("boxes.voc_box_iou", det, gt), want, tol=EXACT, inputs=pair)
    point = np.array([[3.0, 3.0, 3.0, 3.0]])
    assert R.voc_box_iou(point, point)[0, 0] == 1.0


@settings(max_examples=40)
@given(pair=S.box_pairs_xyxy(), data=st.data())
def test_coco_box_iou_is_box_iou_or_ioa(pair, data):
    """``coco_box_iou`` on xywh: ``box_iou`` of the xyxy boxes for ordinary GTs and ``box_ioa``
    for crowds (integer-valued coordinates make both conversions exact), 0 (never NaN) for
    zero-area detections, on both sides."""
    b1, b2 = (np.round(b) for b in pair)
    crowd = np.array(data.draw(st.lists(st.booleans(), min_size=len(b2), max_size=len(b2))), bool)
    d, g = R.box_convert(b1, "xyxy", "xywh"), R.box_convert(b2, "xyxy", "xywh")
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(crowd[None, :], R.box_ioa(b1, b2), R.box_iou(b1, b2))
    inter, _ = R.box_inter_union(b1, b2)
    want = np.where(inter > 0, want, 0.0)
    for impl in BOTH:
        assert_parity(impl.call("boxes.coco_box_iou", d, g, crowd), want, tol=EXACT, inputs=(d, g, crowd))
        assert_parity(impl.call("boxes.coco_box_iou", d, g), impl.call("boxes.coco_box_iou", d, g, crowd * False),
                      tol=EXACT)


@settings(max_examples=40)
@given(pair=S.box_pairs_xyxy())
def test_darknet_box_iou_is_box_iou_of_the_corners(pair):
    """darknet's ``box_iou`` on cxcywh = ``box_iou`` of the xyxy boxes (integer-valued corners with
    even sides make ``c ± w/2`` exact), 0 where the union is 0; symmetric; pairwise by broadcast."""
    b1, b2 = (2 * np.round(b / 2) for b in pair)
    c1, c2 = R.box_convert(b1, "xyxy", "cxcywh"), R.box_convert(b2, "xyxy", "cxcywh")
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.nan_to_num(R.box_iou(b1, b2), nan=0.0)
    for impl in BOTH:
        got = impl.call("boxes.darknet_box_iou", c1[:, None, :], c2[None, :, :])
        assert_parity(got, want, tol=EXACT, inputs=(c1, c2))
        assert_parity(impl.call("boxes.darknet_box_iou", c2[:, None, :], c1[None, :, :]), got.T, tol=EXACT)


@settings(max_examples=30)
@given(pair=S.box_pairs_xyxy())
def test_box_inter_union_is_box_iou_kernel(pair):
    """``box_iou == inter / union`` of ``box_inter_union`` bit for bit, and ``box_ioa`` uses the
    same intersection; on both sides."""
    for impl in BOTH:
        inter, union = impl.call("boxes.box_inter_union", *pair)
        with np.errstate(invalid="ignore", divide="ignore"):
            assert_parity(impl.call("boxes.box_iou", *pair), inter / union, tol=EXACT, inputs=pair)
        assert np.all(inter >= 0)


# ----------------------------------------------------------------------------- devices

BOX_ROWS = [c for c in ALL_CASES if c.module == "boxes" and c.inputs is not None]


@pytest.mark.cuda
@settings(max_examples=20)
@given(data=st.data())
def test_port_on_cuda_matches_cpu(data):
    """Every boxes row on CUDA: output on the input's device, same dtype, values as on CPU
    within the device allowance (CUDA's atan and division kernels may differ by ulps; the
    table's ``device.accelerator``); plus a gradient through aligned_box_iou on the device."""
    cpu_side, gpu_side = get_side("torch", device="cpu"), get_side("torch", device="cuda")
    for case in BOX_ROWS:
        call = data.draw(case.inputs(), label=case.name)
        for dtype in case.dtypes:
            cpu = cpu_side.run(case.name, call.args, call.kwargs, dtype)
            gpu = gpu_side.run(case.name, call.args, call.kwargs, dtype)
            assert gpu.device.type == "cuda" and gpu.dtype == cpu.dtype, case.name
            assert_parity(gpu, cpu, name=case.name, tol=on_device(EXACT, dtype, "cuda"), inputs=call)
    b1, b2 = (torch.tensor(b, device="cuda", requires_grad=True)
              for b in data.draw(S.elementwise_box_pairs(family="degenerate"), label="pair"))
    T.aligned_box_iou(b1, b2, kind="ciou").sum().backward()
    assert b1.grad.device.type == "cuda" and bool(torch.isfinite(b1.grad).all())


def test_tolerance_table_has_boxes_entries():
    """The bit-exact claims of this module are the table's, not literals in the tests."""
    assert tolerance("boxes.box_iou", "float32") == EXACT
    assert tolerance("boxes.complete_box_iou", "float32").atol > 0
