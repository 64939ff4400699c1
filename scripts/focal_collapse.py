#!/usr/bin/env python
"""Why the seed "YOLOv1 from Scratch" collapsed: the background gradient of a focal noobj term.

For one empty YOLOv1 cell the background term is ``λnoobj * |Ĉ|^γ * Ĉ²`` (``ref_numpy.loss.
yolov1_loss(..., noobj_gamma=γ)``; γ = 0 is the paper's plain MSE ``λnoobj * Ĉ²``). Its gradient
``λnoobj (γ + 2) Ĉ^(γ+1)`` vanishes ever faster for small Ĉ as γ grows: with γ = 2 a background
confidence of 0.1 is pushed down 50 times more weakly than with MSE, so false positives are
barely corrected. The gradient here is a central difference of the NumPy reference loss (no
autograd involved); the script fits the log-log slope of each curve and checks it is γ + 1.

Examples:
    python scripts/focal_collapse.py --out focal_collapse.png
    python scripts/focal_collapse.py --out /tmp/fc.png --points 25 --cmin 1e-3 --cmax 1

Exit codes: 0 the law holds (every fitted slope within --slope-tol of γ + 1); 1 it does not;
2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ref_numpy.loss import yolov1_loss

CURVES = (("MSE (paper)", 0.0), ("focal γ=0", 0.0), ("focal γ=1", 1.0), ("focal γ=2", 2.0))


def background_gradient(conf: float, gamma: float, lambda_noobj: float = 0.5) -> float:
    """d loss / d Ĉ for one empty cell with one predicted box, by central differences of the
    reference loss (relative step 1e-6)."""
    target = np.zeros((1, 1, 1, 5))

    def loss(c: float) -> float:
        pred = np.array([[[[0.5, 0.5, 0.5, 0.5, c]]]])
        return float(yolov1_loss(pred, target, lambda_noobj=lambda_noobj, noobj_gamma=gamma)[0])

    h = 1e-6 * conf
    return (loss(conf + h) - loss(conf - h)) / (2 * h)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__[__doc__.index("Examples:"):],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="focal_collapse.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--points", type=int, default=13, help="confidences on the curve (default: %(default)s)")
    parser.add_argument("--cmin", type=float, default=1e-3, help="smallest confidence (default: %(default)s)")
    parser.add_argument("--cmax", type=float, default=1.0, help="largest confidence (default: %(default)s)")
    parser.add_argument("--slope-tol", type=float, default=1e-3,
                        help="allowed |fitted slope - (γ+1)| (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (0 < args.cmin < args.cmax) or args.points < 2:
        parser.error("need 0 < --cmin < --cmax and --points >= 2")

    confs = np.geomspace(args.cmin, args.cmax, args.points)
    grads = {label: np.array([background_gradient(c, g) for c in confs]) for label, g in CURVES}

    header = f"{'Ĉ':>10} " + " ".join(f"{label:>14}" for label, _ in CURVES)
    print("background (noobj) gradient d loss / d Ĉ, λnoobj = 0.5")
    print(header)
    for i, c in enumerate(confs):
        print(f"{c:10.4g} " + " ".join(f"{grads[label][i]:14.6g}" for label, _ in CURVES))
    print(f"{'ratio to MSE':>10} " + " ".join(
        f"{grads[label][0] / grads['MSE (paper)'][0]:14.3g}" for label, _ in CURVES) + f"   (at Ĉ = {confs[0]:g})")

    ok = True
    print("\nlog-log slope (expected γ + 1):")
    for label, g in CURVES:
        slope = np.polyfit(np.log(confs), np.log(grads[label]), 1)[0]
        good = abs(slope - (g + 1)) <= args.slope_tol
        ok &= good
        print(f"  {label:>12}: {slope:.5f}  expected {g + 1:.0f}  {'ok' if good else 'MISMATCH'}")

    import matplotlib

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
    fig.savefig(args.out, dpi=120)
    print(f"\nwrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
