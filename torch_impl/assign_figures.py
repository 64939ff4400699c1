"""Pictures and the HTML page of the data-set assignment report (Pillow only).

- :func:`summary_plots`: bar charts of the summary (positives per level, per anchor, GTs
  without positive by size and by aspect, collisions per image), one PNG each;
- :func:`draw_image_assignments`: one image of the data set at the network size with every GT
  (yellow; dashed red without positive), a dot per positive cell in its level's colour,
  collisions as red crosses, the GT numbers placed so that no label hides another, and beside
  it a zoomed inset around each GT (its level's grid, its cells, its anchors) with a caption
  under the inset; a legend below;
- :func:`write_html`: ``index.html`` (one page per data set) with the verdict, the summary,
  the plots and a gallery of the worst images, every picture a relative file.
"""
from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ref_numpy.shared import assign_summary as S

__all__ = ["LEVEL_RGB", "bar_chart", "draw_image_assignments", "summary_plots", "write_html"]

LEVEL_RGB = ((0, 114, 255), (255, 128, 0), (0, 190, 80), (200, 0, 255), (0, 210, 210))
GT_RGB = (255, 230, 0)
MISS_RGB = (255, 0, 0)
COLLISION_RGB = (255, 0, 0)
MAIN_SIDE = 640
INSET = 200
CAPTION_H = 40
LEGEND_H = 54
BAR_RGB = (70, 110, 200)
WARN_RGB = (220, 60, 60)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], path: str | os.PathLike,
              highlight: Sequence[bool] | None = None, ylabel: str = "") -> Path:
    """A bar chart PNG (480 x 300): one bar per label, its value above it; bars with
    ``highlight`` True in red. Returns the path."""
    from PIL import Image, ImageDraw

    w, h, left, bottom, top = 480, 300, 48, 64, 34
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    font, small = _font(14), _font(11)
    d.text((8, 8), title, fill="black", font=font)
    if ylabel:
        d.text((8, top - 14 + 4), ylabel, fill=(90, 90, 90), font=small)
    n = max(len(values), 1)
    vmax = max([float(v) for v in values] + [1e-9])
    plot_w, plot_h = w - left - 12, h - top - bottom
    d.line([(left, top), (left, top + plot_h), (w - 12, top + plot_h)], fill="black")
    bw = plot_w / n
    for i, (lab, v) in enumerate(zip(labels, values)):
        x0 = left + i * bw + bw * 0.15
        x1 = left + (i + 1) * bw - bw * 0.15
        y0 = top + plot_h - (plot_h - 14) * float(v) / vmax  # room for the value above the bar
        rgb = WARN_RGB if highlight is not None and highlight[i] else BAR_RGB
        d.rectangle([x0, y0, x1, top + plot_h], fill=rgb)
        text = f"{v:g}" if isinstance(v, int) or float(v).is_integer() else f"{v:.2f}"
        tw = d.textlength(text, font=small)
        d.text(((x0 + x1) / 2 - tw / 2, y0 - 13), text, fill="black", font=small)
        # labels: rotated when they do not fit
        lw = d.textlength(lab, font=small)
        if lw <= bw - 2:
            d.text(((x0 + x1) / 2 - lw / 2, top + plot_h + 4), lab, fill="black", font=small)
        else:
            tag = Image.new("RGBA", (int(lw) + 4, 14), (255, 255, 255, 0))
            ImageDraw.Draw(tag).text((2, 0), lab, fill="black", font=small)
            tag = tag.rotate(35, expand=True)
            im.paste(tag, (int((x0 + x1) / 2 - tag.width + 6), top + plot_h + 2), tag)
    path = Path(path)
    im.save(path, compress_level=3)
    return path


def summary_plots(summary: dict, out_dir: str | os.PathLike) -> dict:
    """The summary's bar charts in ``out_dir`` (created): ``{name: path}`` for
    ``positives_per_level``, ``positives_per_anchor``, ``no_positive_by_size``,
    ``no_positive_by_aspect``, ``collisions_per_image``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = summary
    lv = s["level_names"]
    plots = {}
    plots["positives_per_level"] = bar_chart(
        "positives per level", lv, s["positives_per_level"], out / "positives_per_level.png",
        [n in s["starved_levels"] for n in lv], "positives")
    labels, values, hot = [], [], []
    for name, labs, row in zip(lv, s["anchor_labels"], s["positives_per_anchor"]):
        for a, (lab, n) in enumerate(zip(labs, row)):
            labels.append(f"{name} {lab}")
            values.append(n)
            hot.append(any(d.startswith(f"{name} anchor {a} ") for d in s["dominant_anchors"]))
    plots["positives_per_anchor"] = bar_chart("positives per anchor", labels, values,
                                              out / "positives_per_anchor.png", hot, "positives")
    for key, table, order in (("no_positive_by_size", s["by_size"], S.SIZE_BUCKETS),
                              ("no_positive_by_aspect", s["by_aspect"], S.ASPECT_BUCKETS)):
        labs = [k for k in order]
        vals = [table.get(k, {}).get("no_positive", 0) for k in labs]
        tot = [table.get(k, {}).get("gts", 0) for k in labs]
        plots[key] = bar_chart(f"GTs without positive by {key.rsplit('_', 1)[1]} (of {sum(tot)} GTs: "
                               + ", ".join(map(str, tot)) + ")", labs, vals, out / f"{key}.png",
                               [v > 0 for v in vals], "GTs")
    hist = s["collisions_per_image"]["histogram"]
    plots["collisions_per_image"] = bar_chart(
        "images by collisions per image", [f"{k} coll." for k in hist], list(hist.values()),
        out / "collisions_per_image.png", None, "images")
    return plots


# ----------------------------------------------------------------------------- one image

def _dashed(d: Any, box: Sequence[float], fill: tuple, width: int = 2, dash: int = 6) -> None:
    x1, y1, x2, y2 = box
    for ax, ay, bx, by in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
        length = math.hypot(bx - ax, by - ay)
        steps = max(int(length // dash), 1)
        for k in range(0, steps, 2):
            t0, t1 = k / steps, min((k + 1) / steps, 1.0)
            d.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)],
                   fill=fill, width=width)


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(d: Any, box: Sequence[float], text: str, font: Any, placed: list, side: int) -> tuple:
    """Top-left corner for ``text`` near ``box`` where it overlaps no label in ``placed``
    (candidates above, below, inside, then stepping down); the rectangle is appended."""
    l, t, r, b = d.textbbox((0, 0), text, font=font)
    tw, th = r - l + 4, b - t + 4
    x1, y1, x2, y2 = box
    cands = [(x1, y1 - th - 1), (x1, y2 + 1), (x2 - tw, y1 - th - 1), (x2 - tw, y2 + 1), (x1 + 1, y1 + 1)]
    cands += [(x1, y2 + 1 + k * th) for k in range(1, 12)]
    for cx, cy in cands:
        cx = min(max(cx, 0), side - tw)
        cy = min(max(cy, 0), side - th)
        rect = (cx, cy, cx + tw, cy + th)
        if not any(_overlaps(rect, p) for p in placed):
            placed.append(rect)
            return cx, cy, tw, th
    cx, cy = min(max(x1, 0), side - tw), min(max(y1, 0), side - th)
    placed.append((cx, cy, cx + tw, cy + th))
    return cx, cy, tw, th


def _order_for_insets(gts: Sequence[dict]) -> list:
    return sorted(gts, key=lambda g: (g["positive"], -g["collisions"], g["gt"]))


def draw_image_assignments(img: np.ndarray, gts: Sequence[dict], collisions: Sequence[Any], strides: Sequence[int],
                           anchors_px: np.ndarray | None, level_names: Sequence[str], path: str | os.PathLike,
                           title: str = "", max_insets: int = 8) -> Path:
    """One image's assignment PNG (see the module docstring).

    Args:
        img: the letterboxed image, uint8 [S, S, 3].
        gts: the image's GT records (:mod:`ref_numpy.shared.assign_summary`).
        collisions: the image's ``Collision`` s (level, cell).
        strides, level_names: of the levels; anchors_px: [nl, na, 2] (None: anchor points).
        path: the PNG to write.
        title: a line above the picture.
        max_insets: GTs with an inset (those without positive first, then most collisions).
    """
    from PIL import Image, ImageDraw

    s = img.shape[0]
    scale = max(1, math.ceil(MAIN_SIDE / s))
    side = s * scale
    base = Image.fromarray(img).resize((side, side), Image.NEAREST)
    big = Image.blend(base, Image.new("RGB", base.size, (40, 40, 40)), 0.35)
    d = ImageDraw.Draw(big)
    font = _font(13)
    for g in gts:  # positive cells: a dot at each cell centre, level colour
        for lv, a, gj, gi in g["slots"]:
            st = strides[lv] * scale
            cx, cy = (gi + 0.5) * st, (gj + 0.5) * st
            r = 3 if st >= 16 else 2
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=LEVEL_RGB[lv % len(LEVEL_RGB)])
    for c in collisions:
        st = strides[c.level] * scale
        gj, gi = c.cell
        x0, y0 = gi * st, gj * st
        d.line([(x0, y0), (x0 + st, y0 + st)], fill=COLLISION_RGB, width=2)
        d.line([(x0, y0 + st), (x0 + st, y0)], fill=COLLISION_RGB, width=2)
    placed: list = []
    for g in gts:
        box = [v * scale for v in g["box"]]
        if g["positive"]:
            d.rectangle(box, outline=GT_RGB, width=2)
        else:
            _dashed(d, box, MISS_RGB, width=3)
    for g in gts:  # labels after all boxes, so that none is drawn over
        box = [v * scale for v in g["box"]]
        x, y, tw, th = _place_label(d, box, f"GT{g['gt']}", font, placed, side)
        rgb = GT_RGB if g["positive"] else MISS_RGB
        d.rectangle([x, y, x + tw, y + th], fill=(0, 0, 0))
        d.text((x + 2, y + 1), f"GT{g['gt']}", fill=rgb, font=font)
    inset_gts = _order_for_insets(gts)[:max_insets]
    cols = 2 if inset_gts else 0
    rows = math.ceil(len(inset_gts) / 2) if inset_gts else 0
    title_h = 24
    width = side + cols * (INSET + 10) + 10
    height = title_h + max(side, rows * (INSET + CAPTION_H + 8)) + LEGEND_H
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(big, (0, title_h))
    cd = ImageDraw.Draw(canvas)
    cd.text((6, 5), title, fill="black", font=_font(14))
    small = _font(11)
    for k, g in enumerate(inset_gts):
        ox = side + 10 + (k % 2) * (INSET + 10)
        oy = title_h + (k // 2) * (INSET + CAPTION_H + 8)
        canvas.paste(_inset(base, g, strides, anchors_px, scale), (ox, oy))
        cd.rectangle([ox - 1, oy - 1, ox + INSET, oy + INSET], outline=(0, 0, 0))
        head = f"GT{g['gt']} {g['name']} {g['w']:.0f}x{g['h']:.0f}px"
        if g["positive"]:
            used = sorted({(lv, a) for lv, a, *_ in g["slots"]})
            line2 = " ".join(f"{level_names[lv]}a{a}" for lv, a in used[:6]) + \
                (f" +{len(used) - 6}" if len(used) > 6 else "")
            if g["collisions"]:
                line2 = f"{g['collisions']} shared; " + line2
        else:
            line2 = f"NO POSITIVE: {g['cause']}"
        cd.text((ox, oy + INSET + 3), head, fill="black", font=small)
        cd.text((ox, oy + INSET + 18), line2[:36], fill=(0, 0, 0) if g["positive"] else MISS_RGB, font=small)
    _legend(cd, height - LEGEND_H + 6, level_names, width)
    path = Path(path)
    canvas.save(path, compress_level=3)
    return path


def _inset(base: Any, g: dict, strides: Sequence[int], anchors_px: np.ndarray | None, scale: int) -> Any:
    """The zoomed view around one GT: its finest used level's grid, its cells filled, its
    anchors outlined about the cells (anchor-based), the GT box."""
    from PIL import Image, ImageDraw

    x1, y1, x2, y2 = g["box"]
    levels = sorted({lv for lv, *_ in g["slots"]})
    lv = levels[0] if levels else 0
    st = strides[lv]
    half = max(x2 - x1, y2 - y1, 2 * st) * 1.25
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    box = [(cx - half) * scale, (cy - half) * scale, (cx + half) * scale, (cy + half) * scale]
    z = INSET / (2 * half * scale)  # inset pixels per upscaled pixel
    crop = base.crop(tuple(int(round(v)) for v in box)).resize((INSET, INSET), Image.NEAREST)
    crop = Image.blend(crop, Image.new("RGB", crop.size, (40, 40, 40)), 0.3)
    over = Image.new("RGBA", crop.size, (0, 0, 0, 0))
    od = ImageDraw.Draw(over)

    def to_inset(px: float, py: float) -> tuple:
        return ((px * scale - box[0]) * z, (py * scale - box[1]) * z)

    rgb = LEVEL_RGB[lv % len(LEVEL_RGB)]
    for l2, a, gj, gi in g["slots"]:
        if l2 != lv:
            continue
        p0 = to_inset(gi * st, gj * st)
        p1 = to_inset((gi + 1) * st, (gj + 1) * st)
        od.rectangle([p0, p1], fill=(*rgb, 90))
    crop = Image.alpha_composite(crop.convert("RGBA"), over).convert("RGB")
    d = ImageDraw.Draw(crop)
    if st * scale * z < 8:  # cells under 8 inset pixels: no grid lines (they would hide the picture)
        st_lines = math.inf
    else:
        st_lines = st
    k = math.floor((cx - half) / st) * st  # grid lines of the level
    while st_lines < math.inf and k <= cx + half:
        x, _ = to_inset(k, 0)
        d.line([(x, 0), (x, INSET)], fill=(225, 225, 225))
        k += st
    k = math.floor((cy - half) / st) * st
    while st_lines < math.inf and k <= cy + half:
        _, y = to_inset(0, k)
        d.line([(0, y), (INSET, y)], fill=(225, 225, 225))
        k += st
    if anchors_px is not None:  # each used anchor once, about the centre cell
        for a in sorted({a for l2, a, *_ in g["slots"] if l2 == lv}):
            aw, ah = anchors_px[lv][a]
            ccx = (math.floor(cx / st) + 0.5) * st
            ccy = (math.floor(cy / st) + 0.5) * st
            d.rectangle([to_inset(ccx - aw / 2, ccy - ah / 2), to_inset(ccx + aw / 2, ccy + ah / 2)],
                        outline=rgb, width=2)
    b0, b1 = to_inset(x1, y1), to_inset(x2, y2)
    if g["positive"]:
        d.rectangle([b0, b1], outline=GT_RGB, width=2)
    else:
        _dashed(d, [*b0, *b1], MISS_RGB, width=3)
    return crop


def _legend(d: Any, y: int, level_names: Sequence[str], width: int) -> None:
    font = _font(12)
    entries = [(LEVEL_RGB[i % len(LEVEL_RGB)], f"{n} positive cell") for i, n in enumerate(level_names)]
    entries += [(GT_RGB, "GT with positives"), (MISS_RGB, "GT without positive (dashed)"),
                (COLLISION_RGB, "collision (X)")]
    x = 6
    row = 0
    for rgb, text in entries:
        tw = d.textlength(text, font=font) + 30
        if x + tw > width:
            x, row = 6, row + 1
        yy = y + row * 20
        d.rectangle([x, yy + 2, x + 14, yy + 16], fill=rgb, outline=(0, 0, 0))
        d.text((x + 20, yy + 2), text, fill="black", font=font)
        x += tw


# ----------------------------------------------------------------------------- HTML

def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def write_html(summary: dict, text: str, plots: dict, gallery: Sequence[dict], out_dir: str | os.PathLike,
               compare: dict | None = None, title: str = "assignment report") -> Path:
    """``index.html`` in ``out_dir``: the verdict, the text summary, the plots and the gallery
    (``[{"png": path, "file", "lines": [per-GT lines]}]``), optionally a comparison of two
    runs (:func:`ref_numpy.shared.assign_summary.compare_summaries`). Every picture is a
    relative link to its PNG. Returns the path."""
    out = Path(out_dir)
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:16px;max-width:1400px} pre{background:#f4f4f4;"
        "padding:8px;overflow-x:auto;font-size:12px} .verdict{font-size:18px;padding:10px;"
        "border-left:6px solid #c33;background:#fff3f3} .ok{border-color:#3a3;background:#f3fff3}"
        " .plots img{margin:4px;border:1px solid #ccc} figure{margin:12px 0} table{border-collapse:"
        "collapse} td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p class='verdict{' ok' if summary['verdict'].startswith('healthy') else ''}'>"
        f"{e(summary['verdict'])}</p>",
        "<h2>Summary</h2>", f"<pre>{e(text)}</pre>",
    ]
    if compare is not None:
        parts += ["<h2>Two checkpoints</h2>", f"<pre>{e(compare['text'])}</pre>"]
    parts.append("<h2>Plots</h2><div class='plots'>")
    for name, p in plots.items():
        parts.append(f"<img src='{e(_rel(Path(p), out))}' alt='{e(name)}' title='{e(name)}'>")
    parts.append("</div><h2>Per class</h2><table><tr><th>class</th><th>GTs</th><th>without positive</th>"
                 "<th>share</th></tr>")
    for k, r in summary["by_class"].items():
        parts.append(f"<tr><td>{e(k)}</td><td>{r['gts']}</td><td>{r['no_positive']}</td>"
                     f"<td>{100 * r['share']:.1f}%</td></tr>")
    parts.append("</table><h2>Worst images</h2>")
    if not gallery:
        parts.append("<p>No image has a GT without positive or a collision.</p>")
    for item in gallery:
        parts.append(f"<figure><img src='{e(_rel(Path(item['png']), out))}' alt='{e(item['file'])}' "
                     f"style='max-width:100%'><figcaption>{e(item['file'])}<pre>"
                     f"{e(chr(10).join(item['lines']))}</pre></figcaption></figure>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
