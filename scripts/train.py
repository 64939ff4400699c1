#!/usr/bin/env python
"""Train a YOLOv5 v7.0 detector with the PyTorch port (``torch_impl``).

YOLOv5 recipe: SGD (Nesterov) or AdamW with parameter groups (no weight decay on norm weights
and biases), warmup of LR / momentum / gradient accumulation, linear or cosine LR, optional EMA
weights, AMP (CUDA only), gradient clipping, nominal batch size ``--nbs`` (gradients summed over
``nbs / batch`` batches), autoanchor check at the start (BPR <= 0.98 -> k-means + evolution).
Each epoch: a tqdm bar with the loss terms, COCO mAP@0.5 and @0.5:0.95 on the val split
(``torch_impl.metrics``, on the device), a row of ``results.csv`` and the ``results.png`` curves,
``weights/last.pt`` and ``weights/best.pt`` (written atomically; readable with
``torch.load(..., weights_only=True)``). ``--resume weights/last.pt`` continues the run exactly
(its options come from the checkpoint). Distributed: run under ``torchrun``.

``--head anchor-free`` trains the v8-style DFL head (``yolov5_anchor_free``) instead: no
autoanchor, TAL assignment + the v8 loss (box 7.5, cls 0.5, dfl 1.5), v8 NMS in validation, and
results.csv columns box / cls / dfl losses.

Examples:
    python scripts/train.py --data fixtures/shapes/dataset.yaml --model n --img-size 320 \\
        --epochs 30 --batch-size 8 --optimizer AdamW --lr0 0.002 --cos-lr --ema --project runs/a
    python scripts/train.py --resume runs/a/weights/last.pt
    torchrun --nproc_per_node=2 scripts/train.py --data fixtures/shapes/dataset.yaml --epochs 3

Exit codes: 0 done; 1 unexpected error; 2 bad arguments or input files; 3 non-finite loss (the
last good checkpoint is kept).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from torch_impl.data import DetectionDataset, collate_fn, read_data_yaml  # noqa: E402
from torch_impl.loss import yolov5_scale_hyp  # noqa: E402
from torch_impl.models import yolov5, yolov5_anchor_free  # noqa: E402
from torch_impl.train import (HYP_SCRATCH_LOW, ModelEMA, NonFiniteLossError,  # noqa: E402
                              autoanchor, broadcast_state, build_optimizer, get_rng_state,
                              load_checkpoint, lr_lambda, precise_bn, save_checkpoint,
                              set_rng_state, train_one_epoch, validate, warmup_iters)
from torch_impl.train.engine import loss_terms  # noqa: E402

EXIT_ERROR, EXIT_USAGE, EXIT_NONFINITE = 1, 2, 3

# Options that a resumed run takes from the command line, not from the checkpoint.
_NOT_RESUMED = ("resume", "device", "workers", "debug_nan_at_step", "debug_stop_after",
                "debug_state_dir", "quiet")

CSV_FIELDS = ("epoch", "train/box_loss", "train/obj_loss", "train/cls_loss",
              "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "x/lr0", "x/lr1", "x/lr2", "time_s")
# --head anchor-free: the v8 loss terms instead of (box, obj, cls).
CSV_FIELDS_ANCHOR_FREE = ("epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss",
                          "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "x/lr0", "x/lr1", "x/lr2",
                          "time_s")
# Loss gains of the anchor-free head (Ultralytics v8 defaults; not rescaled by nl / nc / imgsz).
V8_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__[__doc__.index("Examples:"):],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="data-set YAML (Ultralytics layout; train and val splits)")
    p.add_argument("--model", default="n", choices=["n", "s", "m", "l", "x"],
                   help="YOLOv5 variant (default n)")
    p.add_argument("--head", default="anchor", choices=["anchor", "anchor-free"],
                   help="anchor: YOLOv5 head and loss (default); anchor-free: v8-style DFL head "
                        "trained with TAL + the v8 loss (box 7.5, cls 0.5, dfl 1.5; no autoanchor)")
    p.add_argument("--depth-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--width-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--img-size", type=int, default=640, help="square input size (multiple of 32)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16, help="total over all processes")
    p.add_argument("--nbs", type=int, default=64, help="nominal batch size (default 64)")
    p.add_argument("--optimizer", default="SGD", choices=["SGD", "AdamW"])
    p.add_argument("--lr0", type=float, default=HYP_SCRATCH_LOW["lr0"])
    p.add_argument("--lrf", type=float, default=HYP_SCRATCH_LOW["lrf"], help="final LR factor")
    p.add_argument("--momentum", type=float, default=HYP_SCRATCH_LOW["momentum"])
    p.add_argument("--weight-decay", type=float, default=HYP_SCRATCH_LOW["weight_decay"])
    p.add_argument("--warmup-epochs", type=float, default=HYP_SCRATCH_LOW["warmup_epochs"],
                   help="0 disables the warmup (else at least 100 iterations, as yolov5)")
    p.add_argument("--cos-lr", action="store_true", help="cosine LR (default linear)")
    p.add_argument("--ema", action="store_true", help="keep EMA weights (validated and saved)")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--clip-grad", type=float, default=10.0, help="max grad norm, 0: off")
    p.add_argument("--no-augment", action="store_true", help="letterbox only, no augmentation")
    p.add_argument("--precise-bn", type=int, default=0, metavar="N",
                   help="before each validation recompute the validated model's BN statistics "
                        "over N training batches (0: off; helps short runs)")
    p.add_argument("--noautoanchor", action="store_true", help="skip the anchor check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    p.add_argument("--device", default="", help="cpu, cuda, cuda:0 (default: cuda if present)")
    p.add_argument("--project", default="runs/train", help="output directory")
    p.add_argument("--resume", default=None, help="a last.pt to continue from")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    # Testing hooks (hidden).
    p.add_argument("--debug-nan-at-step", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--debug-stop-after", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--debug-state-dir", default=None, help=argparse.SUPPRESS)
    return p


def _log(rank: int, msg: str) -> None:
    if rank == 0:
        print(msg, flush=True)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _state_hash(state: dict) -> str:
    h = hashlib.sha256()
    for k, v in state.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _write_csv(path: Path, row: dict, fields=CSV_FIELDS) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)


def _plot(csv_path: Path, png_path: Path) -> None:
    import matplotlib  # lazily: only rank 0 draws
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    x = [int(r["epoch"]) for r in rows]
    keys = list(rows[0])[1:6]  # the loss terms and mAPs (the head's columns)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), tight_layout=True)
    for ax, k in zip(axes, keys):
        ax.plot(x, [float(r[k]) for r in rows], marker=".")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def _resolve_device(arg: str, local_rank: int) -> torch.device:
    if arg in ("", "auto"):
        arg = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(arg)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device: {arg} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


def _check_args(args) -> None:
    if args.data is None:
        raise ValueError("--data: required (unless --resume)")
    if args.img_size <= 0 or args.img_size % 32:
        raise ValueError(f"--img-size: expected a positive multiple of 32, got {args.img_size}")
    for name in ("epochs", "batch_size", "nbs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, "
                             f"got {getattr(args, name)}")
    if not (args.lr0 > 0 and math.isfinite(args.lr0)):
        raise ValueError(f"--lr0: expected a positive number, got {args.lr0}")


def run(args) -> int:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    ckpt = None
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        saved = ckpt["args"]
        for k, v in saved.items():
            if k not in _NOT_RESUMED:
                setattr(args, k, v)
    _check_args(args)
    device = _resolve_device(args.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.batch_size % world:
        raise ValueError(f"--batch-size: {args.batch_size} is not divisible by the "
                         f"{world} processes")
    _seed_all(args.seed)
    torch.backends.cudnn.benchmark = False
    save_dir = Path(args.project)
    wdir = save_dir / "weights"
    quiet = args.quiet or rank != 0

    # ---------------------------------------------------------------- data
    data = read_data_yaml(args.data)
    names = list(data["names"])
    nc = len(names)
    train_ds = DetectionDataset.from_yaml(args.data, "train", img_size=args.img_size,
                                          augment=not args.no_augment, seed=args.seed)
    val_ds = DetectionDataset.from_yaml(args.data, "val", img_size=args.img_size, augment=False)
    bs = args.batch_size // world
    sampler = torch.utils.data.DistributedSampler(train_ds, num_replicas=world, rank=rank,
                                                  shuffle=True, seed=args.seed)
    train_loader = torch.utils.data.DataLoader(
        train_ds, batch_size=bs, sampler=sampler, num_workers=args.workers,
        collate_fn=collate_fn, pin_memory=device.type == "cuda", persistent_workers=False)
    val_part = torch.utils.data.Subset(val_ds, range(rank, len(val_ds), world))
    val_loader = torch.utils.data.DataLoader(
        val_part, batch_size=bs * 2, shuffle=False, num_workers=args.workers,
        collate_fn=collate_fn)

    # ---------------------------------------------------------------- model
    head = getattr(args, "head", "anchor")  # checkpoints from before --head: anchor
    anchor_free = head == "anchor-free"
    if anchor_free:
        model = yolov5_anchor_free(args.model, nc=nc, depth_multiple=args.depth_multiple,
                                   width_multiple=args.width_multiple).to(device)
    else:
        model = yolov5(args.model, nc=nc, depth_multiple=args.depth_multiple,
                       width_multiple=args.width_multiple).to(device)
    terms = loss_terms(model)
    csv_fields = CSV_FIELDS_ANCHOR_FREE if anchor_free else CSV_FIELDS
    if ckpt is None and not args.noautoanchor and not anchor_free:
        info = autoanchor(model, train_ds, args.img_size, thr=HYP_SCRATCH_LOW["anchor_t"],
                          seed=args.seed)
        msg = f"autoanchor: BPR {info['bpr']:.4f}, anchors/target {info['aat']:.2f}"
        if info["refit"]:
            msg += (f"; BPR <= 0.98, k-means anchors BPR {info['new_bpr']:.4f}: "
                    + ("replaced the model's anchors with "
                       + str([[round(v, 1) for v in a]
                              for a in info["anchors"].reshape(-1, 2).tolist()])
                       if info["replaced"] else "kept the original anchors"))
        _log(rank, msg)

    hyp = dict(HYP_SCRATCH_LOW, lr0=args.lr0, lrf=args.lrf, momentum=args.momentum,
               weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs)
    accumulate_max = args.nbs / args.batch_size
    accumulate = max(round(accumulate_max), 1)
    hyp["weight_decay"] *= args.batch_size * accumulate / args.nbs
    if anchor_free:
        hyp.update(V8_GAINS)
    else:
        hyp = yolov5_scale_hyp(hyp, nl=model.nl, nc=nc, imgsz=args.img_size)
    optimizer = build_optimizer(model, args.optimizer, hyp["lr0"], hyp["momentum"],
                                hyp["weight_decay"])
    lf = lr_lambda(args.epochs, hyp["lrf"], cos=args.cos_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    ema = ModelEMA(model) if args.ema else None
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp and device.type == "cuda")
    start_epoch, best_fitness, last_opt_step = 0, -math.inf, -1
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"]) + 1
        best_fitness = float(ckpt["best_fitness"])
        last_opt_step = int(ckpt["last_opt_step"])
        _log(rank, f"resuming {args.resume} from epoch {start_epoch + 1}/{args.epochs}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
    del ckpt

    if args.amp and device.type != "cuda":
        _log(rank, "--amp: mixed precision needs CUDA; training in float32 on " + str(device))
    if rank == 0:
        wdir.mkdir(parents=True, exist_ok=True)
        (save_dir / "args.json").write_text(json.dumps(vars(args), indent=1), encoding="utf-8")
    nb = len(train_loader)
    nw = warmup_iters(hyp["warmup_epochs"], nb)
    _log(rank, f"training {args.model} ({sum(p.numel() for p in model.parameters()):,} "
               f"parameters) on {device} x{world}: {len(train_ds)} train / {len(val_ds)} val "
               f"images, {nb} batches of {bs} per process, epochs {start_epoch + 1}..{args.epochs}")
    if not quiet:
        from tqdm import tqdm
    for epoch in range(start_epoch, args.epochs):
        progress = None if quiet else (
            lambda it, e=epoch: tqdm(it, total=len(it), desc=f"epoch {e + 1}/{args.epochs}",
                                     leave=False, dynamic_ncols=True))
        t0 = time.time()
        train_model.train()
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        try:
            losses, last_opt_step = train_one_epoch(
                train_model, train_loader, optimizer, hyp=hyp, epoch=epoch,
                lr_factor=lf(epoch), nw=nw, accumulate_max=accumulate_max, device=device,
                ema=ema, scaler=scaler, amp=args.amp, clip_grad=args.clip_grad,
                world_size=world, last_opt_step=last_opt_step, progress=progress,
                nan_at_step=args.debug_nan_at_step)
        except NonFiniteLossError as exc:
            if rank == 0:
                kept = wdir / "last.pt"
                where = f"last good checkpoint: {kept}" if kept.exists() else \
                    "no checkpoint was written yet"
                print(f"error: {exc}; training stopped, {where}", file=sys.stderr, flush=True)
            return EXIT_NONFINITE
        if world > 1:  # equal BN statistics (and so EMA) on every rank
            broadcast_state(model)
            if ema is not None:
                broadcast_state(ema.ema)
        lrs = [g["lr"] for g in optimizer.param_groups]
        scheduler.step()
        eval_model = ema.ema if ema is not None else model
        if args.precise_bn:
            precise_bn(eval_model, train_loader, device, args.precise_bn)
        metrics = validate(eval_model, val_loader, device)
        fitness = 0.1 * metrics["map50"] + 0.9 * metrics["map"]
        dt = time.time() - t0
        if rank == 0:
            _write_csv(save_dir / "results.csv", {
                "epoch": epoch + 1,
                **{f"train/{k}_loss": f"{losses[k]:.6g}" for k in terms},
                "metrics/mAP_0.5": f"{metrics['map50']:.6g}",
                "metrics/mAP_0.5:0.95": f"{metrics['map']:.6g}",
                "x/lr0": f"{lrs[0]:.6g}", "x/lr1": f"{lrs[1]:.6g}", "x/lr2": f"{lrs[2]:.6g}",
                "time_s": f"{dt:.2f}"}, csv_fields)
            _plot(save_dir / "results.csv", save_dir / "results.png")
        is_best = fitness > best_fitness
        best_fitness = max(best_fitness, fitness)
        if rank == 0:
            state = {
                "epoch": epoch, "best_fitness": best_fitness, "fitness": fitness,
                "map50": metrics["map50"], "map": metrics["map"],
                "model": model.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "last_opt_step": last_opt_step,
                "rng": get_rng_state(), "args": dict(vars(args)), "hyp": hyp,
                "names": names,
                "model_cfg": {"nc": nc, "depth_multiple": model.depth_multiple,
                              "width_multiple": model.width_multiple, "head": head,
                              **({"reg_max": model.reg_max} if anchor_free else {})},
            }
            save_checkpoint(state, wdir / "last.pt")
            if is_best:
                save_checkpoint(state, wdir / "best.pt")
        _log(rank, f"epoch {epoch + 1}/{args.epochs}: "
                   + " ".join(f"{k} {losses[k]:.4f}" for k in terms)
                   + f"  mAP@0.5 {metrics['map50']:.4f}"
                   f"  mAP@0.5:0.95 {metrics['map']:.4f}  {dt:.1f} s")
        if args.debug_stop_after is not None and epoch + 1 >= args.debug_stop_after:
            break
    if args.debug_state_dir:
        out = Path(args.debug_state_dir)
        out.mkdir(parents=True, exist_ok=True)
        hashes = {"model": _state_hash(model.state_dict())}
        if ema is not None:
            hashes["ema"] = _state_hash(ema.ema.state_dict())
        (out / f"rank{rank}.json").write_text(json.dumps(hashes), encoding="utf-8")
    _log(rank, f"done; results in {save_dir}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is None and args.resume is None:
        parser.error("--data is required (or --resume)")
    try:
        return run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
