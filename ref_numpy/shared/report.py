"""Plain-text and plain-Python reports, shared by both sides (no array math here).

The assignment report
=====================

Every assigner of :mod:`ref_numpy.assign` / :mod:`torch_impl.assign` is explained by ONE schema,
:class:`AssignmentReport`, built by the functions of this module from plain Python lists that
each side computes with its own array code (so reference and port return equal reports only
when their array code agrees). The fields, the same for every assigner (cf. the header comment
of pycocotools' ``cocoeval.py``)::

    AssignmentReport
      assigner     str   "yolov5" | "tutorial" | "yolov3" | "yolov1" | "tal"
      box_format   str   how GTRecord.box reads: "cxcywh normalised" (target rows) or
                         "xyxy pixels" (TAL's gt_bboxes)
      settings     dict  the assigner's parameters the report was made with (anchor_t, g, topk, ...)
      levels       [nl] Level
      gts          [nt] GTRecord, one per GT (TAL: per (image, GT slot), padding included,
                         image-major)
      collisions   [*]  Collision, in level order, then slot order
      unassigned   [*]  Unassigned: the real GTs with no positive, in ``gts`` order

    Level
      level  int        pyramid level, 0 = finest (the order of ``anchors`` / ``grid_sizes``)
      grid   [ny, nx]   its grid (TAL without grid_sizes: [1, A], one row of anchor points;
                        YOLOv1: [S, S])
      rows   int        positives written on the level (rows of the outputs; TAL: anchor points
                        owned; YOLOv1: object cells)

    GTRecord
      gt          int        index of the GT: its target row (anchor-based, YOLOv1), its slot n
                             in its image (TAL)
      image       int        batch image index
      cls         int        class id (``"class"`` in :meth:`AssignmentReport.to_dict`)
      box         [4] float  the GT as given to the assigner (see ``box_format``)
      valid       bool       False only for TAL padding rows (mask_gt == 0)
      positive    bool       the GT trains at least one positive: it has a row in the outputs
                             (anchor-based: every row feeds the box and class losses, even when a
                             later row overwrites its objectness slot), owns an anchor point
                             (TAL) or its cell (YOLOv1)
      positives   [*] Positive   what it trains, in the assigner's output order
      lost        [*] Lost       slots it claimed that train another GT instead (TAL: claimed
                                 anchors given to the GT of max overlap; YOLOv1: a cell held by
                                 an earlier GT); always [] for yolov5 / yolov3 / tutorial, whose
                                 overwritten rows still train (see Positive.won)
      reasons     [nl] str|None  per level, why the GT has no positive there (None where it has
                                 one); the strings are the constants ``*_REASONS`` below
      reason      str|None   None iff ``positive``; else why it has none (the distinct level
                             reasons joined by "; ", TAL's and YOLOv1's own rule)
      candidates  int|None   TAL: anchor points strictly inside the box; None elsewhere

    Positive
      level   int         pyramid level
      row     int         index of the positive in the assigner's outputs: the row in that
                          level's arrays (yolov5 / yolov3 / tutorial), the anchor point on the
                          A axis (TAL), the cell ``row * S + col`` of the image (YOLOv1)
      anchor  int         anchor index within the level (TAL: 0, one point per cell;
                          YOLOv1: the responsible predictor)
      cell    [gj, gi]    (row, column) of the cell on the level's grid (clamped)
      target  [4] float   the regression target written: YOLOv5 / tutorial ``(gx - gi, gy - gj,
                          gw, gh)`` grid units; YOLOv3 ``(gx - gi, gy - gj, log(gw/aw),
                          log(gh/ah))``; YOLOv1 ``(x_off, y_off, w, h)``; TAL the distances
                          ``(l, t, r, b)`` in pixels from the point to the GT's sides
      won     bool        the slot ends with this GT (anchor-based: the last write to
                          ``(b, a, gj, gi)`` wins the objectness target, as YOLOv5's
                          ``tobj[b, a, gj, gi] = iou``); always True for TAL and YOLOv1
      owner   int         the GT the slot ends with (== gt when won)
      rule    str         why the slot is positive: YOLOv5 the neighbour block ("centre",
                          "x-1", "y-1", "x+1", "y+1"); "best anchor" (yolov3: over all levels;
                          tutorial: of the level); TAL "top k" or "max overlap" (owned without
                          being claimed); YOLOv1 "responsible predictor"

    Lost
      level, row, anchor, cell   as Positive
      to_gt   int         the GT that trains the slot instead

    Collision (a slot claimed by two or more DIFFERENT GTs)
      level   int
      image   int
      anchor  int         as Positive.anchor
      cell    [gj, gi]
      rows    [*] int     Positive.row of each claim, in claim order
      writers [*] int     the GT of each claim (anchor-based: write order; TAL: ascending;
                          YOLOv1: target order)
      winner  int         the GT the slot ends with: the last writer (anchor-based), the GT of
                          max overlap (TAL), the first GT of the cell (YOLOv1)
      (``slot`` = [image, anchor, gj, gi], a property)

    Unassigned
      image, gt   int     the GTRecord
      reason      str     its ``reason``

Everything is plain Python (ints, floats, str, lists): :meth:`AssignmentReport.to_dict` is
JSON-serialisable, and two reports compare with ``==``.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Sequence

# ----------------------------------------------------------------------------- constants

#: YOLOv5's neighbour-offset blocks, in build_targets' order (Positive.rule of yolov5 rows).
V5_OFFSET_NAMES = ("centre", "x-1", "y-1", "x+1", "y+1")
#: Why a GT has no YOLOv5 row on a level (indexed by the reason code; code 0 = has a row).
V5_REASONS = ("outside the grid", "too small", "too large", "no anchor within anchor_t", "aspect ratio")
#: Why a GT has no YOLOv3 row on a level (darknet uses only the level of the best anchor).
V3_REASONS = ("best anchor on another level",)
#: Why a YOLOv1 GT has no positive.
V1_REASONS = ("cell taken by an earlier GT",)
#: Why a TAL GT slot has no positive (overall and per level).
TAL_REASONS = ("padding", "no anchor inside the box", "none of its top k anchors is inside the box",
               "all its anchors went to other GTs")
#: Positive.rule values other than YOLOv5's offset names.
RULE_BEST_ANCHOR = "best anchor"
RULE_TOP_K = "top k"
RULE_MAX_OVERLAP = "max overlap"
RULE_RESPONSIBLE = "responsible predictor"
#: AssignmentReport.box_format values.
BOX_TARGETS = "cxcywh normalised"
BOX_XYXY_PX = "xyxy pixels"


# ----------------------------------------------------------------------------- the schema

@dataclass
class Level:
    level: int
    grid: list
    rows: int


@dataclass
class Positive:
    level: int
    row: int
    anchor: int
    cell: list
    target: list
    won: bool
    owner: int
    rule: str


@dataclass
class Lost:
    level: int
    row: int
    anchor: int
    cell: list
    to_gt: int


@dataclass
class GTRecord:
    gt: int
    image: int
    cls: int
    box: list
    valid: bool
    positive: bool
    positives: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    reason: str | None = None
    candidates: int | None = None


@dataclass
class Collision:
    level: int
    image: int
    anchor: int
    cell: list
    rows: list
    writers: list
    winner: int

    @property
    def slot(self) -> list:
        """``[image, anchor, gj, gi]``: the written slot."""
        return [self.image, self.anchor, *self.cell]


@dataclass
class Unassigned:
    image: int
    gt: int
    reason: str


@dataclass
class AssignmentReport:
    """Where every GT went in one assignment; fields: see the module docstring."""

    assigner: str
    box_format: str
    settings: dict
    levels: list
    gts: list
    collisions: list
    unassigned: list

    def to_dict(self) -> dict:
        """The report as nested dicts and lists (JSON-serialisable); ``cls`` is ``"class"``."""
        d = asdict(self)
        for g in d["gts"]:
            g["class"] = g.pop("cls")
        return d

    def positive_rows(self) -> list:
        """``[(GTRecord, Positive)]`` for every positive, in output order (level, then row)."""
        pairs = [(g, p) for g in self.gts for p in g.positives]
        return sorted(pairs, key=lambda gp: (gp[1].level, gp[1].row, gp[0].image, gp[0].gt))

    def gt(self, gt: int, image: int | None = None) -> GTRecord:
        """The record of GT ``gt`` (of ``image`` for TAL, whose GT indices are per image)."""
        for g in self.gts:
            if g.gt == gt and (image is None or g.image == image):
                return g
        raise KeyError(f"gt: no GT {gt}" + ("" if image is None else f" in image {image}"))


def _join_reasons(reasons: Sequence) -> str | None:
    seen = [r for r in dict.fromkeys(reasons) if r is not None]
    return "; ".join(seen) if seen else None


def _unassigned(gts: list) -> list:
    return [Unassigned(g.image, g.gt, g.reason) for g in gts if g.valid and not g.positive]


# ----------------------------------------------------------------------------- anchor-based

def v5_level_reasons(codes: Sequence[Sequence[int]], outside: Sequence[bool]) -> list:
    """[nt][nl] reasons of YOLOv5 from the sides' codes ``[nl][nt]`` (0 where some anchor
    passes the ratio test, else an index into :data:`V5_REASONS`) and ``outside`` [nt]
    (centre outside the image: "outside the grid" on every level)."""
    nl = len(codes)
    return [[V5_REASONS[0] if out else (V5_REASONS[codes[lv][i]] if codes[lv][i] else None)
             for lv in range(nl)] for i, out in enumerate(outside)]


def v3_level_reasons(best_level: Sequence[int], nl: int) -> list:
    """[nt][nl] reasons of YOLOv3: None on the level of the GT's best anchor, else
    "best anchor on another level"."""
    return [[None if lv == b else V3_REASONS[0] for lv in range(nl)] for b in best_level]


def anchor_based_report(assigner: str, targets: Sequence, grids: Sequence, levels: Sequence,
                        reasons: Sequence, settings: dict) -> AssignmentReport:
    """Build the report of an anchor-based assigner (yolov5, yolov3, tutorial).

    Args:
        assigner: the assigner's name (``AssignmentReport.assigner``).
        targets: [nt] rows ``(image, class, cx, cy, w, h)`` as Python lists.
        grids: [nl] ``(ny, nx)``.
        levels: per level a dict of Python lists over its output rows, in output order:
            ``ti`` (target row), ``a``, ``gj``, ``gi``, ``target`` ([4] floats), ``won``,
            ``rule`` (str), and ``collisions``: a list of row lists, one per slot written by
            two or more different GTs (rows in write order, slots in slot-key order).
        reasons: [nt][nl] level reasons (None where the GT has a row there).
        settings: the assigner's parameters.
    """
    gts = [GTRecord(gt=i, image=int(row[0]), cls=int(row[1]), box=[float(v) for v in row[2:6]],
                    valid=True, positive=False, reasons=list(reasons[i]))
           for i, row in enumerate(targets)]
    report_levels, collisions = [], []
    for lv, ((ny, nx), rows) in enumerate(zip(grids, levels)):
        report_levels.append(Level(lv, [int(ny), int(nx)], len(rows["ti"])))
        owner = {}  # slot -> last writer
        for r, ti in enumerate(rows["ti"]):
            owner[(int(targets[ti][0]), rows["a"][r], rows["gj"][r], rows["gi"][r])] = ti
        for r, ti in enumerate(rows["ti"]):
            slot = (int(targets[ti][0]), rows["a"][r], rows["gj"][r], rows["gi"][r])
            gts[ti].positives.append(Positive(
                level=lv, row=r, anchor=rows["a"][r], cell=[rows["gj"][r], rows["gi"][r]],
                target=list(rows["target"][r]), won=bool(rows["won"][r]), owner=owner[slot],
                rule=rows["rule"][r]))
        for group in rows["collisions"]:
            r0 = group[0]
            collisions.append(Collision(
                level=lv, image=int(targets[rows["ti"][r0]][0]), anchor=rows["a"][r0],
                cell=[rows["gj"][r0], rows["gi"][r0]], rows=list(group),
                writers=[rows["ti"][r] for r in group], winner=rows["ti"][group[-1]]))
    for g in gts:
        g.positive = bool(g.positives)
        g.reason = None if g.positive else _join_reasons(g.reasons)
    return AssignmentReport(assigner, BOX_TARGETS, dict(settings), report_levels, gts,
                            collisions, _unassigned(gts))


# ----------------------------------------------------------------------------- YOLOv1

def yolov1_report(targets: Sequence, S: int, cells: Sequence, owner: Sequence,
                  predictor: Sequence, target: Sequence, settings: dict) -> AssignmentReport:
    """Build the report of :func:`yolov1_assign`.

    Args:
        targets: [nt] rows ``(image, class, cx, cy, w, h)``.
        S: grid side.
        cells: [nt] ``(row, col)`` of each GT's cell (clamped).
        owner: [nt] the GT that keeps each GT's cell (the first in target order).
        predictor: [nt] the responsible predictor of each GT's cell.
        target: [nt] ``(x_off, y_off, w, h)`` written at each GT's cell (its owner's).
        settings: the assigner's parameters.
    """
    gts, by_cell = [], {}
    for i, row in enumerate(targets):
        b = int(row[0])
        r, c = cells[i]
        flat = r * S + c
        g = GTRecord(gt=i, image=b, cls=int(row[1]), box=[float(v) for v in row[2:6]],
                     valid=True, positive=owner[i] == i, reasons=[None])
        if g.positive:
            g.positives.append(Positive(0, flat, predictor[i], [r, c], list(target[i]), True, i,
                                        RULE_RESPONSIBLE))
        else:
            g.lost.append(Lost(0, flat, predictor[i], [r, c], owner[i]))
            g.reasons = [V1_REASONS[0]]
            g.reason = V1_REASONS[0]
        gts.append(g)
        by_cell.setdefault((b, r, c), []).append(i)
    collisions = [Collision(0, b, predictor[ws[0]], [r, c], [r * S + c] * len(ws), ws, ws[0])
                  for (b, r, c), ws in sorted(by_cell.items()) if len(ws) > 1]
    n_obj = sum(g.positive for g in gts)
    return AssignmentReport("yolov1", BOX_TARGETS, dict(settings), [Level(0, [S, S], n_obj)],
                            gts, collisions, _unassigned(gts))


# ----------------------------------------------------------------------------- TAL

def tal_level_starts(grids: Sequence, n_points: int) -> list:
    """First anchor-point index of every level (plus the total at the end), for points laid
    out as Ultralytics 8.3 / 8.4 ``make_anchors`` does (levels concatenated, row-major within a level).

    Raises ValueError when the grids do not hold exactly ``n_points`` points."""
    starts = [0]
    for ny, nx in grids:
        starts.append(starts[-1] + int(ny) * int(nx))
    if starts[-1] != n_points:
        raise ValueError(f"grid_sizes: {starts[-1]} cells in {list(grids)!r} vs "
                         f"{n_points} anchor points")
    return starts


def tal_report(labels: Sequence, valid: Sequence, gt_bboxes: Sequence, anc_points: Sequence,
               cand_per_level: Sequence, claimed: Sequence, final: Sequence, grids: Sequence,
               settings: dict) -> AssignmentReport:
    """Build the report of :func:`task_aligned_assign`.

    Args:
        labels, valid: [bs][n] class ids and real-GT flags.
        gt_bboxes: [bs][n][4] xyxy pixels.
        anc_points: [A][2] pixels.
        cand_per_level: [bs][n][nl] anchor points strictly inside each GT, per level.
        claimed: sorted ``(b, g, a)`` of the top-k candidates before conflicts are resolved.
        final: sorted ``(b, g, a)`` of the positives after (one GT per anchor).
        grids: [nl] ``(ny, nx)`` of the anchor points (``[(1, A)]`` for one flat level).
        settings: the assigner's parameters.
    """
    starts = tal_level_starts(grids, len(anc_points))
    nl = len(grids)

    def place(a: int):
        lv = bisect.bisect_right(starts, a) - 1
        j = a - starts[lv]
        nx = int(grids[lv][1])
        return lv, [j // nx, j % nx]

    records = {}
    for b, row in enumerate(valid):
        for g, ok in enumerate(row):
            records[(b, g)] = GTRecord(
                gt=g, image=b, cls=int(labels[b][g]), box=[float(v) for v in gt_bboxes[b][g]],
                valid=bool(ok), positive=False, candidates=int(sum(cand_per_level[b][g])))
    owner = {(b, a): g for b, g, a in final}
    claimed_set = set(claimed)
    claimers: dict = {}
    claimed_levels: dict = {}
    for b, g, a in claimed:
        claimers.setdefault((b, a), []).append(g)
        lv, cell = place(a)
        claimed_levels.setdefault((b, g), set()).add(lv)
        if owner.get((b, a)) != g:
            records[(b, g)].lost.append(Lost(lv, a, 0, cell, owner.get((b, a))))
    rows_per_level = [0] * nl
    for b, g, a in final:
        lv, cell = place(a)
        x, y = anc_points[a]
        x1, y1, x2, y2 = gt_bboxes[b][g]
        rule = RULE_TOP_K if (b, g, a) in claimed_set else RULE_MAX_OVERLAP
        records[(b, g)].positives.append(Positive(
            lv, a, 0, cell, [x - x1, y - y1, x2 - x, y2 - y], True, g, rule))
        rows_per_level[lv] += 1
    for (b, g), rec in records.items():
        rec.positive = bool(rec.positives)
        owned = {p.level for p in rec.positives}
        claimed_lv = claimed_levels.get((b, g), set())
        reasons = []
        for lv in range(nl):
            if lv in owned:
                reasons.append(None)
            elif not rec.valid:
                reasons.append(TAL_REASONS[0])
            elif cand_per_level[b][g][lv] == 0:
                reasons.append(TAL_REASONS[1])
            elif lv not in claimed_lv:
                reasons.append(TAL_REASONS[2])
            else:
                reasons.append(TAL_REASONS[3])
        rec.reasons = reasons
        if not rec.positive:
            rec.reason = (TAL_REASONS[0] if not rec.valid else TAL_REASONS[1]
                          if rec.candidates == 0 else TAL_REASONS[2]
                          if (b, g) not in claimed_levels else TAL_REASONS[3])
    collisions = []
    for (b, a), gs in sorted(claimers.items()):
        if len(gs) > 1:
            lv, cell = place(a)
            collisions.append(Collision(lv, b, 0, cell, [a] * len(gs), gs, owner.get((b, a))))
    collisions.sort(key=lambda c: (c.level, c.image, c.rows[0]))
    gts = list(records.values())
    levels = [Level(lv, [int(ny), int(nx)], rows_per_level[lv]) for lv, (ny, nx) in enumerate(grids)]
    return AssignmentReport("tal", BOX_XYXY_PX, dict(settings), levels, gts, collisions,
                            _unassigned(gts))


# ----------------------------------------------------------------------------- text

def level_names(strides: Sequence[int]) -> list:
    """``P<k>`` per level for power-of-two strides 2^k (P3 for 8, ...) when those names are
    unique, else ``L<i>`` (so that file names made from them never clash)."""
    ks = [int(s).bit_length() - 1 for s in strides]
    if all(int(s) == 1 << k for s, k in zip(strides, ks)) and len(set(ks)) == len(ks):
        return [f"P{k}" for k in ks]
    return [f"L{i}" for i in range(len(strides))]


def target_columns(assigner: str) -> str:
    """The header of the target column of :func:`format_assignment_table`."""
    return {"tal": "l t r b (px)", "yolov3": "tx ty log-tw log-th",
            "yolov1": "x-off y-off w h"}.get(assigner, "tx ty tw th (grid units)")


def format_assignment_table(report: AssignmentReport, names: Sequence[str] | None = None,
                            level_names: Sequence[str] | None = None,
                            anchor_labels: Sequence[Sequence[str]] | None = None,
                            target_scale: Sequence[float] | None = None,
                            target_header: str | None = None) -> str:
    """A text table of any :class:`AssignmentReport`: one line per positive (GT, class, level,
    anchor, cell, target, won), then one warning per unassigned GT and per collision, then a
    count line ``"<n> GTs, <n> positives, <n> without positive, <n> collisions"``.

    Args:
        report: the report.
        names: class names (index -> name; default the class id).
        level_names: a name per level (default ``L<i>``).
        anchor_labels: [nl][na] text per anchor (default its index).
        target_scale: per level a divisor of the targets (e.g. TAL's stride to print the
            distances in strides; default 1).
        target_header: the target column's header (default :func:`target_columns`).
    """
    lvn = list(level_names) if level_names is not None else [f"L{i}" for i in range(len(report.levels))]

    def cname(c: int) -> str:
        return names[c] if names is not None and 0 <= c < len(names) else str(c)

    head = (f"{'gt':>3} {'class':>10} {'level':>5} {'anchor':>14} {'cell (row,col)':>14} "
            f"{target_header or target_columns(report.assigner):>34} {'won':>4}")
    lines = [head, "-" * len(head)]
    rows = report.positive_rows()
    for g, p in rows:
        anchor = anchor_labels[p.level][p.anchor] if anchor_labels is not None else str(p.anchor)
        scale = target_scale[p.level] if target_scale is not None else 1.0
        target = " ".join(f"{v / scale:8.3f}" for v in p.target)
        lines.append(f"{g.gt:>3} {cname(g.cls):>10} {lvn[p.level]:>5} {anchor:>14} "
                     f"{str(tuple(p.cell)):>14} {target:>34} {'yes' if p.won else 'no':>4}")
    for u in report.unassigned:
        g = report.gt(u.gt, u.image)
        where = ", ".join(f"{v:.4g}" for v in g.box)
        per_level = "; ".join(f"{lvn[lv]} {r}" for lv, r in enumerate(g.reasons) if r)
        lines.append(f"warning: GT {u.gt} ({where}) has no positive: {per_level or u.reason}")
    for c in report.collisions:
        lines.append(f"warning: collision {lvn[c.level]} anchor {c.anchor} cell "
                     f"({c.cell[0]},{c.cell[1]}): written by GTs {c.writers}, GT {c.winner} wins")
    n_gt = sum(g.valid for g in report.gts)
    lines.append(f"{n_gt} GTs, {len(rows)} positives, {len(report.unassigned)} without positive, "
                 f"{len(report.collisions)} collisions")
    return "\n".join(lines)
