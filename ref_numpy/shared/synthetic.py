"""Synthetic detection data: the one generator behind demos, benchmarks and tests.

- :func:`synthetic_predictions`: detections made from a ground truth (jittered copies, dropped
  GTs, duplicates, wrong classes, false positives), for ``yolo-ref evaluate --synthetic-pred``
  and the tests of the evaluation CLI.
- :func:`synthetic_ground_truth`: a random COCO-like ground truth (skewed class frequencies,
  sizes spanning COCO's small / medium / large, a few crowd boxes), for the mAP benchmark.
- :func:`synthetic_coco`: both, as the (ground truth dict, results list) pair that
  ``coco_evaluate`` and pycocotools take.

Everything is deterministic in ``seed`` (NumPy's ``default_rng``); boxes are xywh in pixels,
inside the image, with positive width and height; scores are in (0, 1].
"""
from __future__ import annotations

import math

import numpy as np

from ref_numpy.formats import DetectionSet

__all__ = ["synthetic_coco", "synthetic_ground_truth", "synthetic_predictions"]


def _clip_box(box, width: float, height: float) -> list:
    """xywh clipped to the image, at least 1 pixel wide and high."""
    x, y, w, h = box
    x1, y1 = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
    x2, y2 = min(max(x + w, x1 + 1.0), width), min(max(y + h, y1 + 1.0), height)
    return [x1, y1, x2 - x1, y2 - y1]


def synthetic_predictions(gt: DetectionSet, seed: int = 0, drop: float = 0.1,
                          jitter: float = 0.08, wrong_class: float = 0.05,
                          duplicate: float = 0.1, fp_per_image: float = 1.0, copies: int = 1,
                          dets_per_image: int | None = None) -> DetectionSet:
    """Detections made from ``gt`` for a demo or a benchmark; deterministic in ``seed``.

    Args:
        gt (DetectionSet): the ground truth; images need ``width`` and ``height``.
        seed (int): NumPy ``default_rng`` seed.
        drop (float): probability that a non-crowd GT gets no detection (crowd GTs never do).
        jitter (float): the centre moves by N(0, jitter) of the size, the size is scaled by
            exp(N(0, jitter)); the score falls with the jitter (0.95 - 2 * mean |noise|, plus
            N(0, 0.05) noise).
        wrong_class (float): probability that a copy gets another class.
        duplicate (float): probability of one more, lower-scored (-0.3) copy.
        fp_per_image (float): Poisson mean of random false positives per image (scores
            U(0.01, 0.5), sides U(3%, 40%) of the image).
        copies (int): jittered copies per kept GT before duplicates (the benchmark uses 3).
        dets_per_image (int | None): when given, each image gets exactly this many detections:
            the GT copies (the first ``dets_per_image`` of them) then random false positives
            instead of the Poisson ones.

    Returns:
        DetectionSet: ``gt``'s images and categories, the detections as annotations with a
        ``score`` (ids 1..N, ``area = w * h``, ``iscrowd = 0``), images in ``gt`` order.
    """
    if copies < 1:
        raise ValueError(f"copies: expected >= 1, got {copies}")
    if dets_per_image is not None and dets_per_image < 0:
        raise ValueError(f"dets_per_image: expected >= 0, got {dets_per_image}")
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt.categories]
    by_image = {im["id"]: [] for im in gt.images}
    for a in gt.annotations:
        by_image[a["image_id"]].append(a)
    dets = []

    def add(image, box, cat, score):
        x, y, w, h = _clip_box(box, image["width"], image["height"])
        dets.append({"id": len(dets) + 1, "image_id": image["id"], "category_id": int(cat),
                     "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                     "score": float(np.clip(score, 1e-3, 1.0))})

    for image in gt.images:
        W, H = image["width"], image["height"]
        start = len(dets)
        for a in by_image[image["id"]]:
            if a["iscrowd"] or rng.random() < drop:
                continue
            for copy in range(copies + (1 if rng.random() < duplicate else 0)):
                x, y, w, h = a["bbox"]
                dxy = rng.normal(0.0, jitter, 2)
                dwh = rng.normal(0.0, jitter, 2)
                nw, nh = w * math.exp(dwh[0]), h * math.exp(dwh[1])
                cx, cy = x + w / 2 + dxy[0] * w, y + h / 2 + dxy[1] * h
                cat = a["category_id"]
                if len(cat_ids) > 1 and rng.random() < wrong_class:
                    cat = int(rng.choice([c for c in cat_ids if c != cat]))
                score = 0.95 - 2.0 * float(np.abs(np.r_[dxy, dwh]).mean()) \
                    - 0.3 * (copy >= copies) + rng.normal(0.0, 0.05)
                add(image, [cx - nw / 2, cy - nh / 2, nw, nh], cat, score)
        if dets_per_image is None:
            n_fp = int(rng.poisson(fp_per_image))
        else:
            del dets[start + dets_per_image:]
            n_fp = dets_per_image - (len(dets) - start)
        if n_fp and cat_ids:
            w = rng.uniform(0.03, 0.4, n_fp) * W                                       # [F]
            h = rng.uniform(0.03, 0.4, n_fp) * H
            x, y = rng.uniform(0, 1, n_fp) * (W - w), rng.uniform(0, 1, n_fp) * (H - h)
            cats, scores = rng.choice(cat_ids, n_fp), rng.uniform(0.01, 0.5, n_fp)
            for box, c, s in zip(np.stack([x, y, w, h], 1).tolist(), cats.tolist(),
                                 scores.tolist()):
                add(image, box, c, s)
    for i, d in enumerate(dets):
        d["id"] = i + 1
    return DetectionSet(images=gt.images, categories=gt.categories, annotations=dets)


def synthetic_ground_truth(n_images: int, n_categories: int = 80, seed: int = 0,
                           width: int = 640, height: int = 480, gt_per_image: float = 7.0,
                           crowd: float = 0.01) -> DetectionSet:
    """A random COCO-like ground truth; deterministic in ``seed``.

    Per image Poisson(``gt_per_image``) boxes; classes with Zipf-like frequencies
    (``1 / k ** 0.8``, like COCO's skew); sides log-uniform in [4, 400] pixels (clipped to the
    image), so every COCO area range is populated; stored ``area`` 50-95% of ``w * h`` (as a
    mask's area); ``iscrowd`` with probability ``crowd``. Coordinates rounded to 0.01 px.
    Images are ``{"id": 1..n, "file_name", "width", "height"}``, categories ``c1..cK``.
    """
    if n_images < 1 or n_categories < 1:
        raise ValueError(f"n_images, n_categories: expected >= 1, got {n_images}, {n_categories}")
    rng = np.random.default_rng(seed)
    cat_p = 1.0 / np.arange(1, n_categories + 1) ** 0.8
    cat_p /= cat_p.sum()
    images = [{"id": i + 1, "file_name": f"synthetic_{i + 1:06d}.jpg", "width": width,
               "height": height} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_categories)]
    annotations = []
    size = np.array([width, height], dtype=np.float64)
    for im in images:
        n = int(rng.poisson(gt_per_image))
        cls = rng.choice(n_categories, size=n, p=cat_p) + 1
        wh = np.minimum(np.exp(rng.uniform(np.log(4), np.log(400), size=(n, 2))), size - 1)
        xy = rng.uniform(0, 1, size=(n, 2)) * (size - wh)
        fill = rng.uniform(0.5, 0.95, size=n)
        is_crowd = rng.random(n) < crowd
        for c, (x, y), (w, h), f, cr in zip(cls.tolist(), xy.tolist(), wh.tolist(),
                                            fill.tolist(), is_crowd.tolist()):
            annotations.append({
                "id": len(annotations) + 1, "image_id": im["id"], "category_id": c,
                "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                "area": round(w * h * f, 2), "iscrowd": int(cr)})
    return DetectionSet(images=images, categories=categories, annotations=annotations)


def synthetic_coco(scale: float = 1.0, seed: int = 0, n_categories: int = 80,
                   dets_per_image: int = 100) -> tuple:
    """A COCO-sized synthetic evaluation problem: (ground truth dict, results list).

    ``round(5000 * scale)`` images (at least 1) from :func:`synthetic_ground_truth` (seed
    ``seed``) and exactly ``dets_per_image`` detections per image from
    :func:`synthetic_predictions` (seed ``seed + 1``: 3 jittered copies of 95% of the GTs, 10%
    jitter, 10% wrong class, the rest random false positives). At ``scale=1``: 5,000 images,
    about 35,000 GTs (1% crowd), 500,000 detections, 80 classes, as COCO val2017 with a
    100-detection cap.
    """
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    gt = synthetic_ground_truth(max(1, int(round(5000 * scale))), n_categories, seed)
    pred = synthetic_predictions(gt, seed=seed + 1, drop=0.05, jitter=0.1, wrong_class=0.1,
                                 duplicate=0.0, copies=3, dets_per_image=dets_per_image)
    results = [{"image_id": d["image_id"], "category_id": d["category_id"],
                "bbox": [round(v, 2) for v in d["bbox"]], "score": round(d["score"], 3)}
               for d in pred.annotations]
    return {"images": gt.images, "categories": gt.categories,
            "annotations": gt.annotations}, results
