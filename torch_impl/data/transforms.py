"""Image + box transforms of the YOLOv5 training pipeline, in NumPy / Pillow (no OpenCV).

Every function takes a NumPy image ``img`` of shape ``[H, W, 3]``, dtype ``uint8``, channels
RGB, and (where boxes move) boxes ``[N, 4]`` xyxy in pixels, in continuous coordinates: the image
spans ``[0, W] x [0, H]`` and pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)`` (the convention
of :mod:`ref_numpy.formats`). Boxes come back as float64.

Randomness comes only from the ``rng`` argument (a ``numpy.random.Generator``), so a pipeline
seeded per item is reproducible (see :class:`torch_impl.data.DetectionDataset`).

Convention: ultralytics/yolov5 v7.0 ``utils/augmentations.py`` (``letterbox``,
``random_perspective`` without perspective, ``box_candidates``, ``augment_hsv``), ``utils/general.py``
(``scale_boxes``, ``clip_boxes``) and ``utils/dataloaders.py`` (``load_mosaic``). Differences,
all small and documented where they occur: resizing and warping use Pillow's bilinear filter
(antialiased when shrinking) with pixel centres at ``+0.5``, which is exactly the continuous box
convention above (OpenCV puts centres on integers, a 0.5 * (scale - 1) px shift); HSV is computed
in floating point rather than OpenCV's 8-bit HSV (see :func:`augment_hsv`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from torch_impl.data import checks as _validate

if TYPE_CHECKING:  # annotations only: the transforms are NumPy (unletterbox_boxes also takes tensors)
    import torch

_Pair = tuple[float, float]

PAD_COLOR = (114, 114, 114)

__all__ = [
    "PAD_COLOR",
    "augment_hsv",
    "box_candidates",
    "clip_boxes",
    "hflip",
    "letterbox",
    "letterbox_boxes",
    "mosaic4",
    "random_affine",
    "resize",
    "unletterbox_boxes",
    "vflip",
]


# ----------------------------------------------------------------------------- checks

def _check_img(name: str, img) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 \
            or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        desc = (f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray)
                else type(img).__name__)
        raise ValueError(f"{name}: expected a uint8 array [H, W, 3] (H, W > 0), got {desc}")
    return img


def _check_boxes(name: str, boxes) -> np.ndarray:
    return _validate.check_boxes(name, boxes, ndim=2).astype(np.float64)


def _check_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator or None, got "
                         f"{type(rng).__name__}")
    return rng


def _pair(name: str, v, cast=float) -> tuple:
    """``v`` or ``(v0, v1)`` as a pair."""
    try:
        a, b = (v, v) if np.ndim(v) == 0 else tuple(v)
        return cast(a), cast(b)
    except Exception as exc:  # noqa: BLE001 - anything unpackable is a bad argument
        raise ValueError(f"{name}: expected a number or a pair, got {v!r}") from exc


def _nonneg(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(v)) or v < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(v)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize to ``w x h`` (Pillow; antialiased when shrinking)."""
    if img.shape[1] == w and img.shape[0] == h:
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Stretch an RGB image to ``width x height`` pixels, aspect ratio NOT kept (the
    ``--no-letterbox`` path; a box scales by ``(width / W, height / H)``).

    Args:
        img (ndarray[H, W, 3] uint8): RGB image.
        width, height (int): output size, > 0.

    Returns:
        ndarray[height, width, 3] uint8: bilinear (Pillow; antialiased when shrinking); the
        input itself when the size already matches.
    """
    img = _check_img("img", img)
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"width, height: expected positive sizes, got {width!r}, {height!r}")
    return _resize(img, int(width), int(height))


def _filled(hw, color) -> np.ndarray:
    """A ``[h, w, 3]`` uint8 image of one colour (a memset when the colour is a grey)."""
    c = np.asarray(color, dtype=np.uint8).reshape(3)
    if c[0] == c[1] == c[2]:
        return np.full((*hw, 3), c[0], np.uint8)
    out = np.empty((*hw, 3), np.uint8)
    out[...] = c
    return out


# ----------------------------------------------------------------------------- clipping

def clip_boxes(boxes: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    """Clip xyxy pixel boxes ``[N, 4]`` to an image of ``shape = (height, width)``.

    Returns:
        ndarray[N, 4] float64: x in ``[0, width]``, y in ``[0, height]``.
    Convention: yolov5 ``clip_boxes``.
    """
    boxes = _check_boxes("boxes", boxes)
    h, w = _validate.check_image_size("shape", shape)
    return _clip(boxes, h, w)


def _clip(boxes: np.ndarray, h: float, w: float) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def box_candidates(box1: ArrayLike, box2: ArrayLike, wh_thr: float = 2.0, ar_thr: float = 100.0,
                   area_thr: float = 0.1, eps: float = 1e-16) -> np.ndarray:
    """Which transformed boxes are worth keeping (YOLOv5 ``box_candidates``).

    Args:
        box1 (ndarray[N, 4]): boxes before the transform (xyxy pixels), already scaled by the
            transform's scale factor so that areas compare.
        box2 (ndarray[N, 4]): the same boxes after the transform and clipping.
        wh_thr: minimum width and height of ``box2`` in pixels (strict).
        ar_thr: maximum aspect ratio ``max(w/h, h/w)`` of ``box2`` (strict).
        area_thr: minimum ``area2 / area1`` (strict): how much of the box survived.

    Returns:
        ndarray[N] bool: ``w2 > wh_thr & h2 > wh_thr & area2 / (area1 + eps) > area_thr &
        aspect < ar_thr``.
    """
    box1 = _check_boxes("box1", box1)
    box2 = _check_boxes("box2", box2)
    _validate.check_same_length("box1", box1, "box2", box2)
    return _candidates(box1, box2, wh_thr, ar_thr, area_thr, eps)


def _candidates(box1, box2, wh_thr=2.0, ar_thr=100.0, area_thr=0.1, eps=1e-16) -> np.ndarray:
    w1, h1 = box1[:, 2] - box1[:, 0], box1[:, 3] - box1[:, 1]
    w2, h2 = box2[:, 2] - box2[:, 0], box2[:, 3] - box2[:, 1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


# ----------------------------------------------------------------------------- letterbox

def _letterbox_params(shape, new_shape, auto, scaleup, stride):
    """(new_unpad (w, h), r, (dw, dh)) exactly as yolov5 ``letterbox`` computes them."""
    h0, w0 = shape
    nh, nw = new_shape
    r = min(nh / h0, nw / w0)
    if not scaleup:
        r = min(r, 1.0)
    # at least 1 px: a 1 x 3000 image into 640 rounds its height to 0 (yolov5's cv2.resize
    # raises there); the padding is computed from the size actually resized to
    unpad_w, unpad_h = max(1, int(round(w0 * r))), max(1, int(round(h0 * r)))
    dw, dh = nw - unpad_w, nh - unpad_h
    if auto:
        dw, dh = dw % stride, dh % stride
    return (unpad_w, unpad_h), r, (dw / 2, dh / 2)


def letterbox(img: np.ndarray, new_shape: int | tuple[int, int] = 640, color: tuple[int, int, int] = PAD_COLOR,
              auto: bool = False, scaleup: bool = True, stride: int = 32) -> tuple[np.ndarray, _Pair, _Pair]:
    """Resize keeping the aspect ratio, then pad to ``new_shape`` (YOLOv5 ``letterbox``).

    Args:
        img (ndarray[H, W, 3] uint8): RGB image.
        new_shape (int | (height, width)): target size.
        color: padding colour (RGB).
        auto (bool): pad only up to the next multiple of ``stride`` (minimum rectangle) instead
            of to ``new_shape``.
        scaleup (bool): allow enlarging; if False the scale is at most 1.
        stride (int): see ``auto``.

    Returns:
        (img, ratio, (dw, dh)): the letterboxed image; ``ratio = (r, r)`` with
        ``r = min(new_h / H, new_w / W)`` (capped at 1 without ``scaleup``); ``dw, dh`` the
        padding on each side (floats, may end in .5). The image is resized to
        ``(max(1, round(W r)), max(1, round(H r)))`` and placed at ``left = round(dw - 0.1)``,
        ``top = round(dh - 0.1)``; without ``auto`` the output is exactly ``new_shape`` (a
        1 x 3000 image into 640 gives 640 x 640: a 1 px row padded by 319 + 320).

    Invariant: a point ``p`` of the original maps to ``p * r + (dw, dh)`` (:func:`letterbox_boxes`),
    within half a pixel of where its pixels land (the rounding of the size and of the padding).
    Convention: yolov5 v7.0 ``letterbox`` with ``scaleFill=False``.
    """
    img = _check_img("img", img)
    nh, nw = _pair("new_shape", new_shape, int)
    if nh <= 0 or nw <= 0:
        raise ValueError(f"new_shape: expected positive sizes, got {new_shape!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride <= 0:
        raise ValueError(f"stride: expected a positive integer, got {stride!r}")
    (uw, uh), r, (dw, dh) = _letterbox_params(img.shape[:2], (nh, nw), auto, scaleup, stride)
    img = _resize(img, uw, uh)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = _filled((img.shape[0] + top + bottom, img.shape[1] + left + right), color)
    out[top:top + img.shape[0], left:left + img.shape[1]] = img
    return out, (r, r), (dw, dh)


def letterbox_boxes(boxes: ArrayLike, ratio: float | _Pair, pad: float | _Pair) -> np.ndarray:
    """Map xyxy pixel boxes of the original image into the letterboxed image.

    Args:
        boxes (ndarray[N, 4]): xyxy pixels of the original image.
        ratio ((rw, rh)): as :func:`letterbox` returns it.
        pad ((dw, dh)): as :func:`letterbox` returns it.

    Returns:
        ndarray[N, 4] float64: ``x * rw + dw``, ``y * rh + dh``.
    Convention: the box half of yolov5's dataloader (``xywhn2xyxy(..., padw, padh)``).
    """
    boxes = _check_boxes("boxes", boxes)
    rw, rh = _pair("ratio", ratio)
    dw, dh = _pair("pad", pad)
    return boxes * np.array([rw, rh, rw, rh]) + np.array([dw, dh, dw, dh])


def unletterbox_boxes(boxes: ArrayLike | torch.Tensor, img1_shape: tuple[int, int], img0_shape: tuple[int, int],
                      ratio_pad: tuple[_Pair, _Pair] | None = None) -> np.ndarray | torch.Tensor:
    """Map boxes of the letterboxed image back to the original image, clipped to it.

    Args:
        boxes (ndarray | Tensor [N, 4]): xyxy pixels in the letterboxed image (e.g. predictions);
            a tensor is processed on its device with its dtype.
        img1_shape ((h1, w1)): the letterboxed image size.
        img0_shape ((h0, w0)): the original image size.
        ratio_pad (((rw, rh), (dw, dh)) | None): what :func:`letterbox` returned (the dataset's
            ``shapes[1]``); None recomputes them from the shapes as yolov5 ``scale_boxes`` does:
            ``gain = min(h1 / h0, w1 / w0)``, ``pad = ((w1 - w0 gain) / 2, (h1 - h0 gain) / 2)``
            (which differs from letterbox's by the rounding of the resized size: <= 0.25 px).

    Returns:
        same type as ``boxes``: ``(x - dw) / rw``, ``(y - dh) / rh``, clipped to ``[0, w0] x
        [0, h0]``.

    Invariant: ``unletterbox_boxes(letterbox_boxes(b, ratio, pad), ..., (ratio, pad)) == b``
    (up to rounding) for boxes ``b`` inside the original image.
    Convention: yolov5 ``scale_boxes`` (which uses ``ratio_pad[0][0]`` for both axes; here each
    axis uses its own ratio, the same for letterbox output).
    """
    h1, w1 = _validate.check_image_size("img1_shape", img1_shape)
    h0, w0 = _validate.check_image_size("img0_shape", img0_shape)
    if ratio_pad is None:
        gain = min(h1 / h0, w1 / w0)
        rw = rh = gain
        dw, dh = (w1 - w0 * gain) / 2, (h1 - h0 * gain) / 2
    else:
        try:
            ratio, pad = ratio_pad
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"ratio_pad: expected ((rw, rh), (dw, dh)), got {ratio_pad!r}") \
                from exc
        rw, rh = _pair("ratio_pad[0]", ratio)
        dw, dh = _pair("ratio_pad[1]", pad)
    if type(boxes).__module__.startswith("torch"):
        import torch  # local: the transforms are otherwise NumPy only
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes: expected shape [N, 4], got {tuple(boxes.shape)}")
        shift = torch.tensor([dw, dh, dw, dh], dtype=boxes.dtype, device=boxes.device)
        scale = torch.tensor([rw, rh, rw, rh], dtype=boxes.dtype, device=boxes.device)
        out = (boxes - shift) / scale
        lo = torch.zeros(4, dtype=boxes.dtype, device=boxes.device)
        hi = torch.tensor([w0, h0, w0, h0], dtype=boxes.dtype, device=boxes.device)
        return torch.minimum(torch.maximum(out, lo), hi)
    boxes = _check_boxes("boxes", boxes)
    out = (boxes - np.array([dw, dh, dw, dh])) / np.array([rw, rh, rw, rh])
    return _clip(out, h0, w0)


# ----------------------------------------------------------------------------- flips

def hflip(img: np.ndarray, boxes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right.

    Returns:
        (img, boxes): ``img[:, ::-1]`` and ``x1' = W - x2``, ``x2' = W - x1``.
    Invariant: an involution: pixels bit for bit, boxes up to the rounding of ``W - (W - x)``
    (exact for coordinates on the grid of ``W``'s ulp, e.g. whole or half pixels); boxes inside
    the image stay inside.
    """
    img = _check_img("img", img)
    boxes = _check_boxes("boxes", boxes)
    w = img.shape[1]
    out = boxes.copy()
    out[:, 0], out[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return np.ascontiguousarray(img[:, ::-1]), out


def vflip(img: np.ndarray, boxes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mirror top-bottom (yolov5 ``flipud``): ``y1' = H - y2``, ``y2' = H - y1``; an involution
    as :func:`hflip`."""
    img = _check_img("img", img)
    boxes = _check_boxes("boxes", boxes)
    h = img.shape[0]
    out = boxes.copy()
    out[:, 1], out[:, 3] = h - boxes[:, 3], h - boxes[:, 1]
    return np.ascontiguousarray(img[::-1]), out


# ----------------------------------------------------------------------------- HSV

def _rgb_to_hsv(rgb: np.ndarray):
    """Hexcone HSV (Smith 1978, as ``colorsys`` and OpenCV): h in [0, 1), s, v in [0, 1]."""
    r, g, b = (np.ascontiguousarray(c) for c in np.moveaxis(rgb, -1, 0))
    maxc = np.maximum(np.maximum(r, g), b)
    minc = np.minimum(np.minimum(r, g), b)
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1), 0)
    d = np.where(delta > 0, delta, 1)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = np.where(r == maxc, bc - gc, np.where(g == maxc, 2 + rc - bc, 4 + gc - rc)) / 6
    h = np.where(h < 0, h + 1, h)  # h % 1 for h in (-1, 1), exactly (float remainder is slow)
    h = np.where(delta > 0, h, 0)
    return h.astype(rgb.dtype), s.astype(rgb.dtype), maxc


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    """Inverse of :func:`_rgb_to_hsv`, in the closed form ``c_n = v - v s clip(min(k, 4 - k), 0,
    1)`` with ``k = (n + 6 h) mod 6`` and ``n = 5, 3, 1`` for r, g, b (element-wise, no
    branches)."""
    vs = v * s
    h6 = h * 6
    out = []
    for n in (5, 3, 1):
        k = n + h6
        k = np.where(k >= 6, k - 6, k)  # k % 6 for k in [0, 12), exactly
        out.append(v - vs * np.clip(np.minimum(k, 4 - k), 0, 1))
    return np.stack(out, axis=-1)


def augment_hsv(img: np.ndarray, hgain: float = 0.5, sgain: float = 0.5, vgain: float = 0.5,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Random hue, saturation and value gains (YOLOv5 ``augment_hsv``).

    Draws ``g = rng.uniform(-1, 1, 3) * (hgain, sgain, vgain) + 1`` (always, so the random
    stream does not depend on the gains), then in HSV: ``h' = (h * g0) mod 1`` (a multiplicative
    hue gain, as YOLOv5's LUT ``(x * g0) % 180``), ``s' = clip(s * g1, 0, 1)``,
    ``v' = clip(v * g2, 0, 1)``, and back to RGB rounded to uint8.

    Colour space: the hexcone HSV model (``colorsys`` / OpenCV definition) computed in float32
    on ``rgb / 255``, h as a fraction of the full turn. OpenCV's 8-bit HSV used by YOLOv5 rounds
    h to 2-degree steps and s, v to 1/255, so results differ from YOLOv5's by a few levels; in
    exchange, gains of 1 (``hgain = sgain = vgain = 0``) give back the image bit for bit.

    Args:
        img (ndarray[H, W, 3] uint8): RGB image (not modified).
        hgain, sgain, vgain (float >= 0): gain amplitudes (hyp ``hsv_h``, ``hsv_s``, ``hsv_v``).
        rng (numpy.random.Generator | None): the random source.

    Returns:
        ndarray[H, W, 3] uint8. Boxes are unaffected (the geometry does not change).
    """
    img = _check_img("img", img)
    gains = np.array([_nonneg("hgain", hgain), _nonneg("sgain", sgain), _nonneg("vgain", vgain)])
    g = _check_rng(rng).uniform(-1, 1, 3) * gains + 1
    h, s, v = _rgb_to_hsv(img.astype(np.float32) / np.float32(255))
    h = h * np.float32(g[0])
    h = np.where(h >= 1, h - 1, h) if 0 <= g[0] < 2 else h % 1  # the same values, fewer passes
    s = np.clip(s * np.float32(g[1]), 0, 1)
    v = np.clip(v * np.float32(g[2]), 0, 1)
    rgb = _hsv_to_rgb(h, s, v)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- affine

def _affine_matrix(shape, degrees, translate, scale, shear, rng, border):
    """YOLOv5 ``random_perspective``'s ``M = T @ S @ R @ C`` (no perspective) and its scale."""
    height = shape[0] + border[0] * 2
    width = shape[1] + border[1] * 2
    c = np.eye(3)
    c[0, 2], c[1, 2] = -shape[1] / 2, -shape[0] / 2  # centre at the origin
    a = math.radians(rng.uniform(-degrees, degrees))
    s = rng.uniform(1 - scale, 1 + scale)
    r = np.eye(3)  # cv2.getRotationMatrix2D(center=(0, 0), angle=a, scale=s)
    r[:2, :2] = [[s * math.cos(a), s * math.sin(a)], [-s * math.sin(a), s * math.cos(a)]]
    sh = np.eye(3)
    sh[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    sh[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    t = np.eye(3)
    t[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * width
    t[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * height
    return t @ sh @ r @ c, s, (height, width)


def _warp(img: np.ndarray, m: np.ndarray, out_hw) -> np.ndarray:
    """``out(p) = img(m^-1 p)`` in continuous coordinates, bilinear, padded with PAD_COLOR."""
    inv = np.linalg.inv(m)
    data = tuple(float(v) for v in inv[:2].ravel())
    pil = Image.fromarray(img).transform((int(out_hw[1]), int(out_hw[0])), Image.AFFINE, data,
                                         resample=Image.BILINEAR, fillcolor=PAD_COLOR)
    return np.asarray(pil)


def _transform_boxes(boxes: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Enclosing xyxy boxes of the 4 transformed corners of each box."""
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    xs = np.stack([x1, x2, x1, x2], axis=-1)  # [N, 4] corner x
    ys = np.stack([y1, y1, y2, y2], axis=-1)
    tx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    ty = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    return np.stack([tx.min(-1), ty.min(-1), tx.max(-1), ty.max(-1)], axis=-1).reshape(-1, 4)


def random_affine(img: np.ndarray, boxes: ArrayLike, degrees: float = 10.0, translate: float = 0.1,
                  scale: float = 0.1, shear: float = 10.0, rng: np.random.Generator | None = None,
                  border: int | tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rotation, scale, shear and translation (YOLOv5 ``random_perspective``, no perspective).

    Draws, in this order: angle ``U(-degrees, degrees)``, scale ``U(1 - scale, 1 + scale)``,
    shear x and y ``U(-shear, shear)`` degrees, translation x and y
    ``U(0.5 - translate, 0.5 + translate) * (width, height)``; ``M = T @ S @ R @ C`` with ``C``
    moving the image centre to the origin. The output has size
    ``(H + 2 border[0], W + 2 border[1])`` (a negative border crops: the mosaic uses
    ``-img_size // 2``), padded with (114, 114, 114).

    Boxes: the 4 corners of each box are transformed and enclosed (min/max), clipped to the
    output, and kept where :func:`box_candidates` (``wh_thr=2, ar_thr=100, area_thr=0.1``,
    against the input box times the scale) accepts them.

    Args:
        img (ndarray[H, W, 3] uint8), boxes (ndarray[N, 4] xyxy pixels).
        degrees, translate, scale, shear (float >= 0): the ranges (hyp keys of the same names).
        rng (numpy.random.Generator | None): the random source.
        border ((int, int)): (rows, columns) added on each side.

    Returns:
        (img, boxes, keep): the warped image, the kept boxes ``[K, 4]`` float64, and ``keep``
        (int64 [K]): their indices in the input (index classes with it).

    Invariant: pixels move with the boxes: Pillow samples the continuous point ``M^-1 p`` for
    each output pixel centre ``p``, the same map the boxes go through.
    """
    img = _check_img("img", img)
    boxes = _check_boxes("boxes", boxes)
    border = _pair("border", border, int)
    ranges = [_nonneg(n, v) for n, v in
              (("degrees", degrees), ("translate", translate), ("scale", scale), ("shear", shear))]
    out_h, out_w = img.shape[0] + 2 * border[0], img.shape[1] + 2 * border[1]
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"border: {border} leaves no output for an image of shape {img.shape}")
    m, s, out_hw = _affine_matrix(img.shape[:2], *ranges, _check_rng(rng), border)
    if border != (0, 0) or not np.array_equal(m, np.eye(3)):
        img = _warp(img, m, out_hw)
    moved = _clip(_transform_boxes(boxes, m), out_h, out_w)
    keep = np.flatnonzero(_candidates(boxes * s, moved))
    return img, moved[keep], keep.astype(np.int64)


# ----------------------------------------------------------------------------- mosaic

def _fit(img: np.ndarray, boxes: np.ndarray, size: int):
    """Resize so the long side is ``size`` (yolov5 ``load_image``: ceil of the scaled sides)."""
    h0, w0 = img.shape[:2]
    r = size / max(h0, w0)
    w, h = max(math.ceil(w0 * r), 1), max(math.ceil(h0 * r), 1)
    return _resize(img, w, h), boxes * np.array([w / w0, h / h0, w / w0, h / h0])


def mosaic4(images: Sequence[np.ndarray], boxes_list: Sequence[ArrayLike], classes_list: Sequence[ArrayLike],
            img_size: int = 640, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four images in a 2x2 mosaic around a random centre (YOLOv5 ``load_mosaic``, before its
    ``random_perspective``).

    Each image is first resized so its long side is ``img_size``. The canvas is
    ``2 img_size`` square, filled with (114, 114, 114); the centre ``(xc, yc)`` is drawn
    ``yc, xc = int(U(s // 2, 2 s - s // 2))`` (in that order, s = img_size); image k goes
    top-left, top-right, bottom-left, bottom-right of the centre, cropped at the canvas border.

    Args:
        images (4 x ndarray[H_k, W_k, 3] uint8), boxes_list (4 x ndarray[N_k, 4] xyxy pixels of
            each image), classes_list (4 x ndarray[N_k] int).
        img_size (int): the training size s.
        rng (numpy.random.Generator | None): the random source.

    Returns:
        (img, boxes, classes): ``img`` ``[2 s, 2 s, 3]`` uint8; boxes ``[K, 4]`` float64
        clipped to the canvas, tiny leftovers dropped (:func:`box_candidates` of the clipped box
        against the whole box: a box mostly cut off by the canvas border goes; YOLOv5 keeps
        them until its affine step); classes int64 ``[K]``. The caller usually follows with
        :func:`random_affine` with ``border = (-(s // 2), -(s // 2))`` to get an ``s x s`` image.
    """
    if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) or img_size <= 0:
        raise ValueError(f"img_size: expected a positive integer, got {img_size!r}")
    for name, seq in (("images", images), ("boxes_list", boxes_list),
                      ("classes_list", classes_list)):
        if len(seq) != 4:
            raise ValueError(f"{name}: expected 4 entries, got {len(seq)}")
    rng = _check_rng(rng)
    s = int(img_size)
    lo, hi = s // 2, 2 * s - s // 2
    yc, xc = int(rng.uniform(lo, hi)), int(rng.uniform(lo, hi))
    canvas = _filled((2 * s, 2 * s), PAD_COLOR)
    all_boxes, all_classes = [], []
    for k in range(4):
        img = _check_img(f"images[{k}]", images[k])
        boxes = _check_boxes(f"boxes_list[{k}]", boxes_list[k])
        classes = _validate.as_array(f"classes_list[{k}]", classes_list[k]).reshape(-1)
        _validate.check_same_length(f"boxes_list[{k}]", boxes, f"classes_list[{k}]", classes)
        img, boxes = _fit(img, boxes, s)
        h, w = img.shape[:2]
        if k == 0:    # top-left: the image's bottom-right corner at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:         # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
        all_boxes.append(boxes + np.array([x1a - x1b, y1a - y1b] * 2, dtype=np.float64))
        all_classes.append(classes.astype(np.int64))
    boxes = np.concatenate(all_boxes).reshape(-1, 4)
    classes = np.concatenate(all_classes)
    clipped = _clip(boxes, 2 * s, 2 * s)
    keep = _candidates(boxes, clipped)
    return canvas, clipped[keep], classes[keep]
