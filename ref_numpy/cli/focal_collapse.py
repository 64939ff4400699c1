"""The background gradient of the YOLOv1 focal no-object term (the seed "YOLOv1 from Scratch").

For one empty YOLOv1 cell the background term is λnoobj * |Ĉ|^γ * Ĉ² (ref_numpy.loss.
yolov1_loss(..., noobj_gamma=γ); γ = 0 is the paper's plain MSE λnoobj * Ĉ²). Its gradient
λnoobj (γ + 2) Ĉ^(γ+1) vanishes ever faster for small Ĉ as γ grows: with γ = 2 a background
confidence of 0.1 is pushed down 50 times more weakly than with MSE, so false positives are
barely corrected. The gradient is ref_numpy.loss.yolov1_background_gradient (central differences
of the NumPy reference loss, no autograd); the command fits the log-log slope of each curve,
checks it is γ + 1 and, when matplotlib is installed, plots the curves to --out.

This law alone does not collapse training: the object term still pulls object cells'
confidences to the IoU (yolo-ref bench yolov1, experiment 2). The write-up's collapse to 0
appears when the same factor also multiplies the object term (obj_gamma, loss v1-focal-both,
experiment 2b): Ĉ = 0 then zeroes every confidence term and its gradient.

examples:
  yolo-ref focal-collapse --out focal_collapse.png
  yolo-ref focal-collapse --out /tmp/fc.png --points 25 --cmin 1e-3 --cmax 1

Exit codes: 0 the law holds (every fitted slope within --slope-tol of γ + 1); 1 it does not;
2 bad arguments.
"""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from ref_numpy.loss import yolov1_background_gradient
from ref_numpy.shared.cli import (EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_out, make_parser,
                                  optional_import, run)

CURVES = (("MSE (paper)", 0.0), ("focal γ=0", 0.0), ("focal γ=1", 1.0), ("focal γ=2", 2.0))
LAMBDA_NOOBJ = 0.5


def _parser():
    p = make_parser("focal-collapse", __doc__)
    add_out(p, "focal_collapse.png", help="PNG to write (skipped without matplotlib)")
    p.add_argument("--points", type=int, default=13, help="confidences on the curve")
    p.add_argument("--cmin", type=float, default=1e-3, help="smallest confidence")
    p.add_argument("--cmax", type=float, default=1.0, help="largest confidence")
    p.add_argument("--slope-tol", type=float, default=1e-3, help="allowed |fitted slope - (γ+1)|")
    return p


def _plot(confs: np.ndarray, grads: dict, out: str) -> bool:
    matplotlib = optional_import("matplotlib", "the plot", extra="plots")
    if matplotlib is None:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for (label, g), style in zip(CURVES, ("-", ":", "--", "-.")):
        ax.loglog(confs, grads[label], style, marker="o", ms=3, label=f"{label}: ∝ Ĉ^{g + 1:.0f}")
    ax.set_xlabel("predicted background confidence Ĉ")
    ax.set_ylabel("d loss / d Ĉ")
    ax.set_title("YOLOv1 background gradient: focal term collapses as Ĉ^(γ+1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if not (0 < args.cmin < args.cmax) or args.points < 2:
        raise UsageError("--cmin, --cmax, --points: need 0 < --cmin < --cmax and --points >= 2")
    confs = np.geomspace(args.cmin, args.cmax, args.points)
    grads = {label: yolov1_background_gradient(confs, g, LAMBDA_NOOBJ) for label, g in CURVES}

    print(f"background (noobj) gradient d loss / d Ĉ, λnoobj = {LAMBDA_NOOBJ}")
    print(f"{'Ĉ':>10} " + " ".join(f"{label:>14}" for label, _ in CURVES))
    for i, c in enumerate(confs):
        print(f"{c:10.4g} " + " ".join(f"{grads[label][i]:14.6g}" for label, _ in CURVES))
    print(f"{'ratio to MSE':>10} " + " ".join(
        f"{grads[label][0] / grads['MSE (paper)'][0]:14.3g}" for label, _ in CURVES)
        + f"   (at Ĉ = {confs[0]:g})")

    ok = True
    print("\nlog-log slope (expected γ + 1):")
    for label, g in CURVES:
        slope = np.polyfit(np.log(confs), np.log(grads[label]), 1)[0]
        good = abs(slope - (g + 1)) <= args.slope_tol
        ok &= bool(good)
        print(f"  {label:>12}: {slope:.5f}  expected {g + 1:.0f}  {'ok' if good else 'MISMATCH'}")
    if _plot(confs, grads, args.out):
        print(f"\nwrote {args.out}")
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref focal-collapse``: 0 the law holds, 1 it does not, 2 bad arguments."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
