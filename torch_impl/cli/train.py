"""Train a detector (YOLOv5 v7.0 by default, or any --arch) with the PyTorch port
(``torch_impl.train.train``).

YOLOv5 recipe: SGD (Nesterov) or AdamW with parameter groups (no weight decay on norm weights
and biases), warmup of LR / momentum / gradient accumulation, linear or cosine LR, optional EMA
weights, AMP (CUDA only), gradient clipping, nominal batch size --nbs (gradients summed over
nbs / batch batches), autoanchor check at the start (BPR <= 0.98 -> k-means + evolution).
Each epoch: a progress bar with the loss terms (tqdm, if installed), COCO mAP@0.5 and
@0.5:0.95 on the val split, a row of results.csv and the results.png curves (matplotlib, if
installed), weights/last.pt and weights/best.pt (written atomically; readable with
torch.load(..., weights_only=True)). --resume weights/last.pt continues the run exactly (its
options come from the checkpoint). Distributed: run under torchrun.

--arch picks the architecture (torch_impl.arch: a model with its assigner, loss and decode;
every one trains, validates, checkpoints and predicts through the same engine): yolov5 (the
default), yolov5-anchor-free (= --head anchor-free: the v8-style DFL head on the v5 backbone),
yolov8 (Ultralytics 8.3 / 8.4 YOLOv8 n/s/m/l/x: TAL + the v8 loss, v8 NMS), and the others registered.
The DFL heads: no autoanchor, loss gains box 7.5, cls 0.5, dfl 1.5, results.csv columns
box / cls / dfl. --arch-option KEY=VALUE passes a further build option of the architecture.

Runs never mix: a new run goes to --out (default runs/train/exp) or, when that exists, to the
first free exp2, exp3, ... (--exist-ok reuses it, starting a fresh results.csv). --weights FILE
fine-tunes from a yolo-ref checkpoint, an import-yolov5 file or an official YOLOv5 v7.0
state_dict (a head for another class count is re-initialised, and the log says so); --freeze N
freezes layers 0..N-1 (10 = the backbone). --resume last.pt --epochs N extends a run; resuming a
finished run says so and exits 0. Ctrl-C stops the run (last.pt of the last completed
epoch is kept) and prints the command that resumes it (exit 130).

Threads: on CPU, torch uses --threads N when given; else OMP_NUM_THREADS when set (torchrun
sets 1 per process); else 1 per process under torchrun; else every core (the DataLoader
workers are idle most of a CPU step; see torch_impl.train.trainer.cpu_threads).

At the end: the per-class table (images, instances, P, R, mAP50, mAP50-95), the COCO summary,
and PR_curve.png / F1_curve.png (matplotlib). results.csv holds the train and val losses.
Health checks (--no-health to skip) report as they happen and per epoch: GTs with no positive
anchor and why, positives per level, an objectness loss exploding or collapsing, decoded boxes
off the image, a loss term stuck at zero, labels a few pixels wide or with x/y swapped.
--overfit N trains and validates on N training images without augmentation and says whether
the pipeline can fit them (the first check when a detector will not learn).

A non-finite loss stops the run with exit code 3 (the last good checkpoint is kept).

Examples:
    yolo-ref train --data fixtures/shapes/dataset.yaml --model n --img-size 320 \\
        --epochs 30 --batch-size 8 --optimizer AdamW --lr0 0.002 --cos-lr --ema --out runs/a
    yolo-ref train --resume runs/a/weights/last.pt
    yolo-ref train --resume runs/a/weights/last.pt --epochs 50      # extend to 50 epochs
    yolo-ref import-yolov5 yolov5s_sd.pt yolov5s.pt --variant s
    yolo-ref train --data my.yaml --weights yolov5s.pt --model s --freeze 10 --epochs 20
    yolo-ref train --data my.yaml --overfit 4 --epochs 100 --img-size 320
    yolo-ref train --data fixtures/shapes/dataset.yaml --arch yolov8 --model n --img-size 320
    yolo-ref import-yolov8 yolov8n_sd.pt yolov8n.pt --variant n
    yolo-ref train --data my.yaml --arch yolov8 --weights yolov8n.pt --freeze 10
    torchrun --nproc_per_node=2 scripts/train.py --data fixtures/shapes/dataset.yaml --epochs 3
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Sequence

from ref_numpy.shared.cli import (EXIT_DIVERGED, EXIT_OK, add_device, add_img_size, add_out,
                                  make_parser, run)
from torch_impl.arch import ARCHITECTURES
from torch_impl.train import TrainConfig, train
from torch_impl.train.config import HEADS, MODELS
from torch_impl.train.optim import OPTIMIZERS
from torch_impl.train.trainer import resume_command

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

_DEFAULTS = TrainConfig(data="-")  # the dataclass defaults, for the help text


def build_parser() -> argparse.ArgumentParser:
    """The ``yolo-ref train`` options; each ``dest`` is a :class:`TrainConfig` field."""
    d = _DEFAULTS
    p = make_parser("train", __doc__)
    p.add_argument("--data", help="data-set YAML (Ultralytics 8.3 / 8.4 layout; train and val splits); "
                                  "required unless --resume")
    p.add_argument("--arch", default=d.arch,
                   help="architecture: " + "; ".join(f"{a.name}: {a.summary}"
                                                     for a in ARCHITECTURES.values()))
    p.add_argument("--model", default=None,
                   help="the architecture's variant (yolov5, yolov8: "
                        + " ".join(MODELS) + "); None: its first")
    p.add_argument("--head", default=d.head, choices=HEADS,
                   help="anchor-free: the alias of --arch yolov5-anchor-free (v8-style DFL "
                        "head on the v5 backbone, TAL + the v8 loss (box 7.5, cls 0.5, dfl "
                        "1.5), no autoanchor)")
    p.add_argument("--depth-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--width-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--arch-option", dest="arch_options", action="append", default=None,
                   type=_key_value, metavar="KEY=VALUE",
                   help="a further build option of the architecture (repeatable; the value "
                        "read as YAML: 8, 0.5, true, [1, 2], text)")
    _add_arch_option_flags(p)
    add_img_size(p, default=d.img_size)
    p.add_argument("--epochs", type=int, default=None,
                   help="number of epochs (None: 100; with --resume the checkpoint's, and a "
                        "larger value extends the run)")
    p.add_argument("--weights", default=None,
                   help="start from these weights: a yolo-ref checkpoint, an import-yolov5 "
                        "file or an official YOLOv5 v7.0 state_dict")
    p.add_argument("--freeze", type=int, default=d.freeze, metavar="N",
                   help="freeze layers 0..N-1 (YOLOv5 numbering; 10: the backbone)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="total over all processes")
    p.add_argument("--nbs", type=int, default=d.nbs, help="nominal batch size")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS,
                   help="SGD (Nesterov) or AdamW, with yolov5's parameter groups")
    p.add_argument("--lr0", type=float, default=d.lr0, help="initial learning rate")
    p.add_argument("--lrf", type=float, default=d.lrf, help="final LR factor")
    p.add_argument("--momentum", type=float, default=d.momentum,
                   help="SGD momentum / AdamW beta1")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help="on conv weights only, scaled by batch-size * accumulate / nbs")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs,
                   help="0 disables the warmup (else at least 100 iterations, as yolov5)")
    p.add_argument("--cos-lr", action="store_true", help="cosine LR (else linear)")
    p.add_argument("--ema", action="store_true", help="keep EMA weights (validated and saved)")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: float16 on CUDA, bfloat16 on a CPU with native bfloat16 "
                        "(AVX512-BF16 / AMX), else float32 with a note")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory order for the model and batches (same values, "
                        "often faster convolutions on CPU)")
    p.add_argument("--clip-grad", type=float, default=d.clip_grad, help="max grad norm, 0: off")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   default=argparse.SUPPRESS, help="letterbox only, no augmentation")
    p.add_argument("--close-mosaic", type=int, default=d.close_mosaic, metavar="N",
                   help="no mosaic in the last N epochs (Ultralytics 8.4's close_mosaic; 0: never)")
    p.add_argument("--precise-bn", type=int, default=d.precise_bn, metavar="N",
                   help="before each validation recompute the validated model's BN statistics "
                        "over N training batches (0: off; helps short runs)")
    p.add_argument("--noautoanchor", "--no-autoanchor", dest="autoanchor",
                   action="store_false", default=argparse.SUPPRESS,
                   help="skip the anchor check")
    p.add_argument("--seed", type=int, default=d.seed, help="seeds every RNG and the data")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader workers per process")
    p.add_argument("--cache", action="store_true", default=argparse.SUPPRESS,
                   help="keep the decoded images in memory (YOLOv5's --cache ram; same results, "
                        "faster epochs)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per process (None: OMP_NUM_THREADS if set, else 1 "
                        "per process under torchrun, else every core)")
    add_device(p, default=d.device)
    add_out(p, default=d.out, help="output directory (results.csv, results.png, weights/)")
    p.add_argument("--project", dest="out", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--exist-ok", action="store_true",
                   help="reuse --out if it exists (results.csv starts afresh) instead of "
                        "writing to the next free <out>2, <out>3, ...")
    p.add_argument("--resume", default=None, help="a last.pt to continue from")
    p.add_argument("--overfit", type=int, default=d.overfit, metavar="N",
                   help="train and validate on the first N training images, no augmentation, "
                        "and say whether the pipeline can fit them (0: off)")
    p.add_argument("--no-health", dest="health", action="store_false",
                   default=argparse.SUPPRESS, help="skip the training health checks")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   default=argparse.SUPPRESS, help="no results.png")
    # Testing hooks (hidden).
    p.add_argument("--debug-nan-at-step", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--debug-stop-after", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--debug-state-dir", default=None, help=argparse.SUPPRESS)
    return p


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--arch-option`` -> ``(key, value read as YAML)``."""
    import yaml
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{key}: cannot read {value!r}: {exc}") from None


# The literal flags of the seed write-ups (YOLOv1: seed_systems.md B), each an alias of
# --arch-option KEY=VALUE: flag -> (build option, argparse type or "flag", help). None: not given.
ARCH_OPTION_FLAGS = {
    "--backbone": ("backbone", str, "backbone of the architecture (yolov1: darknet | resnet18; "
                                    "None: the architecture's, darknet)"),
    "--backbone-weights": ("backbone_weights", str, "a local state_dict file for the backbone "
                                                    "(yolov1 resnet18: torchvision's layout; no download)"),
    "--freeze-backbone": ("freeze_backbone", "flag", "no gradient on the backbone, its BatchNorm in eval mode"),
    "--backbone-lr": ("backbone_lr", float, "LR factor of the backbone's parameters (None: 1.0)"),
    "--freeze-bn": ("freeze_bn", "flag", "backbone BatchNorm in eval mode, its affine parameters frozen"),
    "--loss": ("loss", str, "loss of the architecture (yolov1: v1 | v1-focal | v1-focal-both | mse | adv | iou | "
                            "mse-corrected | adv-corrected | iou-corrected; None: v1)"),
}


def _add_arch_option_flags(p: argparse.ArgumentParser) -> None:
    for flag, (key, kind, text) in ARCH_OPTION_FLAGS.items():
        dest = "flag_" + key
        if kind == "flag":
            p.add_argument(flag, dest=dest, action="store_const", const=True, default=None,
                           help=f"{text} (= --arch-option {key}=true; architectures that take it: yolov1)")
        else:
            p.add_argument(flag, dest=dest, type=kind, default=None, metavar=key.upper(),
                           help=f"{text} (= --arch-option {key}=VALUE; architectures that take it: yolov1)")


def _arch_takes(arch_name: str, key: str) -> bool:
    import inspect
    from torch_impl.arch import get_arch
    try:
        arch = get_arch(arch_name)
    except (KeyError, ValueError):
        return True  # an unknown --arch is the configuration's error, named there
    params = inspect.signature(arch.build).parameters
    return key in params or any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed options (raises ValueError naming a bad one, e.g. a
    :data:`ARCH_OPTION_FLAGS` flag for an architecture whose build does not take it)."""
    values = vars(args).copy()
    if values.get("arch_options") is not None:
        values["arch_options"] = dict(values["arch_options"])
    for flag, (key, _kind, _text) in ARCH_OPTION_FLAGS.items():
        value = values.pop("flag_" + key, None)
        if value is None:
            continue
        if not _arch_takes(values.get("arch"), key):
            raise ValueError(f"{flag}: --arch {values.get('arch')} does not take it (it is an option of "
                             f"--arch yolov1; see --arch-option)")
        values["arch_options"] = {**(values.get("arch_options") or {}), key: value}
    return TrainConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref train``: 0 done, 2 bad options or input (ValueError), 3 diverged."""
    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # argparse's --help / usage exits: ref_numpy.shared.cli.run
    config = config_from_args(args)
    result = train(config, log=partial(print, flush=True))
    if result.interrupted:
        if result.rank == 0:
            how = (f"resume with: {resume_command(result.last, config)}"
                   if result.last is not None else
                   "no checkpoint was written yet; run the same command again")
            print(f"interrupted; {how}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if result.diverged is not None:
        if result.rank == 0:
            where = (f"last good checkpoint: {result.last}" if result.last is not None
                     else "no checkpoint was written yet")
            print(f"error: {result.diverged}; training stopped, {where}", file=sys.stderr,
                  flush=True)
        return EXIT_DIVERGED
    return EXIT_OK
