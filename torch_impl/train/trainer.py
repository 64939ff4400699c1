"""The training run: :func:`train` takes a :class:`~torch_impl.train.config.TrainConfig` and
runs YOLOv5 v7.0 ``train.py``'s recipe end to end.

Steps: resolve the configuration (a resumed run takes its own from the checkpoint), pick the
device and join the process group (under ``torchrun``), build the data loaders, the model
(anchor or anchor-free head), the autoanchor check, the optimiser groups, LR schedule, EMA and
AMP scaler; restore a checkpoint exactly (weights, optimiser, scheduler, EMA, scaler, RNG
states); then per epoch: :func:`~torch_impl.train.engine.train_one_epoch`, BatchNorm broadcast
across ranks, optional precise BN, :func:`~torch_impl.train.engine.validate`, a row of
``results.csv``, the ``results.png`` curves, ``weights/last.pt`` and ``weights/best.pt``.

Library code: nothing is printed except the one-line notes of a missing optional package
(matplotlib, tqdm; :func:`ref_numpy.shared.cli.optional_import`); progress messages go to the
``log`` callback (rank 0 only). A non-finite loss ends the run with ``TrainResult.diverged`` set.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from ref_numpy.shared.cli import optional_import
from torch_impl.data import DetectionDataset, collate_fn, read_data_yaml
from torch_impl.loss import yolov5_scale_hyp
from torch_impl.models import yolov5, yolov5_anchor_free
from torch_impl.train.checkpoint import (get_rng_state, load_checkpoint, save_checkpoint,
                                         set_rng_state)
from torch_impl.train.config import TrainConfig, TrainResult
from torch_impl.train.ema import ModelEMA
from torch_impl.train.engine import (NonFiniteLossError, autoanchor, broadcast_state,
                                     loss_terms, precise_bn, train_one_epoch, validate)
from torch_impl.train.optim import HYP_SCRATCH_LOW, build_optimizer, lr_lambda, warmup_iters

__all__ = ["CSV_FIELDS", "CSV_FIELDS_ANCHOR_FREE", "V8_GAINS", "plot_results", "resolve_device",
           "state_hash", "train"]

CSV_FIELDS = ("epoch", "train/box_loss", "train/obj_loss", "train/cls_loss",
              "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "x/lr0", "x/lr1", "x/lr2", "time_s")
# The anchor-free head: the v8 loss terms instead of (box, obj, cls).
CSV_FIELDS_ANCHOR_FREE = ("epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss",
                          "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "x/lr0", "x/lr1", "x/lr2",
                          "time_s")
# Loss gains of the anchor-free head (Ultralytics v8 defaults; not rescaled by nl / nc / imgsz).
V8_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}

Log = Callable[[str], None]


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` / ``""`` -> CUDA when present, else CPU; a bare ``"cuda"`` -> this process's
    GPU (``local_rank``), made the current device.

    Raises:
        ValueError: ``"device (--device): cuda requested but CUDA is not available"``.
    """
    if device in ("", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device (--device): {exc}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device (--device): {device} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


def state_hash(state: dict) -> str:
    """SHA-256 over the names and bytes of a state_dict's tensors, in order (equal hashes:
    bit-identical weights)."""
    h = hashlib.sha256()
    for k, v in state.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _append_csv(path: Path, row: dict, fields) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)


def plot_results(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> bool:
    """Draw the loss terms and mAPs of ``results.csv`` (one panel each, by epoch) into
    ``png_path``. Returns False (and draws nothing) when matplotlib is not installed or the CSV
    has no rows."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return False
    x = [int(r["epoch"]) for r in rows]
    keys = list(rows[0])[1:6]  # the head's loss terms and the two mAPs
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), tight_layout=True)
    for ax, k in zip(axes, keys):
        ax.plot(x, [float(r[k]) for r in rows], marker=".")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return True


def _autoanchor_message(info: dict) -> str:
    msg = f"autoanchor: BPR {info['bpr']:.4f}, anchors/target {info['aat']:.2f}"
    if info["refit"]:
        anchors = [[round(v, 1) for v in a] for a in info["anchors"].reshape(-1, 2).tolist()]
        msg += (f"; BPR <= 0.98, k-means anchors BPR {info['new_bpr']:.4f}: "
                + (f"replaced the model's anchors with {anchors}" if info["replaced"]
                   else "kept the original anchors"))
    return msg


def train(config: TrainConfig, log: Log | None = None) -> TrainResult:
    """Run the training ``config`` describes and return its :class:`TrainResult`.

    Args:
        config: the run; with ``config.resume`` the checkpoint's own configuration is used
            (except :data:`torch_impl.train.config.NOT_RESUMED`) and training continues
            bit-exactly from the epoch after the saved one.
        log: called with each progress line (autoanchor result, one line per epoch, ...) on
            rank 0; None: silent.

    Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is initialised here
    (NCCL on CUDA, else gloo) when it is not yet, and destroyed at the end if it was; the batch
    is split over the ranks, BatchNorm statistics and EMA are broadcast from rank 0 after every
    epoch, validation is merged over the ranks, and only rank 0 writes files.

    Returns:
        TrainResult; ``diverged`` set when a NaN / inf loss stopped the run (nothing of that
        epoch is saved; ``last`` is the last good checkpoint or None).

    Raises:
        ValueError: a bad configuration (naming the field), unreadable data set or checkpoint,
            ``batch_size`` not divisible by the number of processes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    ckpt = None
    if config.resume:
        ckpt = load_checkpoint(config.resume)
        config = config.resolve(ckpt["args"])
    device = resolve_device(config.device, local_rank)
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(config, ckpt, device, world, rank, log if rank == 0 else None)
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def _run(config: TrainConfig, ckpt: dict | None, device: torch.device, world: int, rank: int,
         log: Log | None) -> TrainResult:
    def say(msg: str) -> None:
        if log is not None:
            log(msg)

    if config.batch_size % world:
        raise ValueError(f"batch_size (--batch-size): {config.batch_size} is not divisible by "
                         f"the {world} processes")
    _seed_all(config.seed)
    torch.backends.cudnn.benchmark = False
    save_dir = Path(config.out)
    wdir = save_dir / "weights"
    result = TrainResult(config=config, out=save_dir, rank=rank)
    tqdm = None
    plots = config.plots and rank == 0
    if rank == 0:
        if not config.quiet:
            mod = optional_import("tqdm", "progress bar", extra="progress")
            tqdm = mod.tqdm if mod is not None else None
        if plots and optional_import("matplotlib", "results.png", extra="plots") is None:
            plots = False
            result.notes.append("results.png skipped: matplotlib is not installed")

    # ---------------------------------------------------------------- data
    data = read_data_yaml(config.data)
    names = list(data["names"])
    nc = len(names)
    train_ds = DetectionDataset.from_yaml(config.data, "train", img_size=config.img_size,
                                          augment=config.augment, seed=config.seed)
    val_ds = DetectionDataset.from_yaml(config.data, "val", img_size=config.img_size,
                                        augment=False)
    bs = config.batch_size // world
    sampler = torch.utils.data.DistributedSampler(train_ds, num_replicas=world, rank=rank,
                                                  shuffle=True, seed=config.seed)
    train_loader = torch.utils.data.DataLoader(
        train_ds, batch_size=bs, sampler=sampler, num_workers=config.workers,
        collate_fn=collate_fn, pin_memory=device.type == "cuda", persistent_workers=False)
    val_part = torch.utils.data.Subset(val_ds, range(rank, len(val_ds), world))
    val_loader = torch.utils.data.DataLoader(
        val_part, batch_size=bs * 2, shuffle=False, num_workers=config.workers,
        collate_fn=collate_fn)

    # ---------------------------------------------------------------- model
    anchor_free = config.head == "anchor-free"
    build = yolov5_anchor_free if anchor_free else yolov5
    model = build(config.model, nc=nc, depth_multiple=config.depth_multiple,
                  width_multiple=config.width_multiple).to(device)
    terms = loss_terms(model)
    csv_fields = CSV_FIELDS_ANCHOR_FREE if anchor_free else CSV_FIELDS
    if ckpt is None and config.autoanchor and not anchor_free:
        info = autoanchor(model, train_ds, config.img_size, thr=HYP_SCRATCH_LOW["anchor_t"],
                          seed=config.seed)
        say(_autoanchor_message(info))

    # ---------------------------------------------------------------- optimisation
    hyp = dict(HYP_SCRATCH_LOW, lr0=config.lr0, lrf=config.lrf, momentum=config.momentum,
               weight_decay=config.weight_decay, warmup_epochs=config.warmup_epochs)
    accumulate_max = config.nbs / config.batch_size
    accumulate = max(round(accumulate_max), 1)
    hyp["weight_decay"] *= config.batch_size * accumulate / config.nbs
    if anchor_free:
        hyp.update(V8_GAINS)
    else:
        hyp = yolov5_scale_hyp(hyp, nl=model.nl, nc=nc, imgsz=config.img_size)
    optimizer = build_optimizer(model, config.optimizer, hyp["lr0"], hyp["momentum"],
                                hyp["weight_decay"])
    lf = lr_lambda(config.epochs, hyp["lrf"], cos=config.cos_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    ema = ModelEMA(model) if config.ema else None
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
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
        say(f"resuming {config.resume} from epoch {start_epoch + 1}/{config.epochs}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
    del ckpt

    if config.amp and device.type != "cuda":
        note = f"--amp: mixed precision needs CUDA; training in float32 on {device}"
        result.notes.append(note)
        say(note)
    if rank == 0:
        wdir.mkdir(parents=True, exist_ok=True)
        (save_dir / "args.json").write_text(json.dumps(config.to_dict(), indent=1),
                                            encoding="utf-8")
    nb = len(train_loader)
    nw = warmup_iters(hyp["warmup_epochs"], nb)
    say(f"training {config.model} ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters) on {device} x{world}: {len(train_ds)} train / {len(val_ds)} val "
        f"images, {nb} batches of {bs} per process, epochs {start_epoch + 1}..{config.epochs}")

    # ---------------------------------------------------------------- epochs
    for epoch in range(start_epoch, config.epochs):
        progress = None if tqdm is None else (
            lambda it, e=epoch: tqdm(it, total=len(it), desc=f"epoch {e + 1}/{config.epochs}",
                                     leave=False, dynamic_ncols=True))
        t0 = time.time()
        train_model.train()
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        try:
            losses, last_opt_step = train_one_epoch(
                train_model, train_loader, optimizer, hyp=hyp, epoch=epoch,
                lr_factor=lf(epoch), nw=nw, accumulate_max=accumulate_max, device=device,
                ema=ema, scaler=scaler, amp=config.amp, clip_grad=config.clip_grad,
                world_size=world, last_opt_step=last_opt_step, progress=progress,
                nan_at_step=config.debug_nan_at_step)
        except NonFiniteLossError as exc:
            result.diverged = exc
            result.last = wdir / "last.pt" if (wdir / "last.pt").exists() else None
            return result
        if world > 1:  # equal BN statistics (and so EMA) on every rank
            broadcast_state(model)
            if ema is not None:
                broadcast_state(ema.ema)
        lrs = [g["lr"] for g in optimizer.param_groups]
        scheduler.step()
        eval_model = ema.ema if ema is not None else model
        if config.precise_bn:
            precise_bn(eval_model, train_loader, device, config.precise_bn)
        metrics = validate(eval_model, val_loader, device)
        fitness = 0.1 * metrics["map50"] + 0.9 * metrics["map"]
        dt = time.time() - t0
        if rank == 0:
            _append_csv(save_dir / "results.csv", {
                "epoch": epoch + 1,
                **{f"train/{k}_loss": f"{losses[k]:.6g}" for k in terms},
                "metrics/mAP_0.5": f"{metrics['map50']:.6g}",
                "metrics/mAP_0.5:0.95": f"{metrics['map']:.6g}",
                "x/lr0": f"{lrs[0]:.6g}", "x/lr1": f"{lrs[1]:.6g}", "x/lr2": f"{lrs[2]:.6g}",
                "time_s": f"{dt:.2f}"}, csv_fields)
            if plots:
                plot_results(save_dir / "results.csv", save_dir / "results.png")
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
                "rng": get_rng_state(), "args": config.to_dict(), "hyp": hyp,
                "names": names,
                "model_cfg": {"nc": nc, "depth_multiple": model.depth_multiple,
                              "width_multiple": model.width_multiple, "head": config.head,
                              **({"reg_max": model.reg_max} if anchor_free else {})},
            }
            result.last = save_checkpoint(state, wdir / "last.pt")
            if is_best:
                result.best = save_checkpoint(state, wdir / "best.pt")
        result.history.append({"epoch": epoch + 1, **losses, "map50": metrics["map50"],
                               "map": metrics["map"], "fitness": fitness, "time_s": dt})
        result.best_fitness = best_fitness
        say(f"epoch {epoch + 1}/{config.epochs}: "
            + " ".join(f"{k} {losses[k]:.4f}" for k in terms)
            + f"  mAP@0.5 {metrics['map50']:.4f}  mAP@0.5:0.95 {metrics['map']:.4f}  {dt:.1f} s")
        if config.debug_stop_after is not None and epoch + 1 >= config.debug_stop_after:
            break
    if config.debug_state_dir:
        out = Path(config.debug_state_dir)
        out.mkdir(parents=True, exist_ok=True)
        hashes = {"model": state_hash(model.state_dict())}
        if ema is not None:
            hashes["ema"] = state_hash(ema.ema.state_dict())
        (out / f"rank{rank}.json").write_text(json.dumps(hashes), encoding="utf-8")
    if result.best is None and (wdir / "best.pt").exists() and rank == 0:
        result.best = wdir / "best.pt"  # a resumed run whose best epoch came before
    say(f"done; results in {save_dir}")
    return result
