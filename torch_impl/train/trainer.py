"""The training run: :func:`train` takes a :class:`~torch_impl.train.config.TrainConfig` and
runs YOLOv5 v7.0 ``train.py``'s recipe end to end, for any registered architecture.

Steps: resolve the configuration (a resumed run takes its own from the checkpoint, ``epochs``
may extend it; a finished run returns at once with ``finished`` set), set the CPU threads
(:func:`cpu_threads`), pick the device and join the process group (under ``torchrun``), pick
the run's folder (:func:`increment_path`: ``exp``, ``exp2``, ...), build the data loaders
(``overfit``: N training images, no augmentation, validated on themselves), the model of
``config.arch`` (:mod:`torch_impl.arch`: model, loss, post-processing, checkpoint config) and
its start weights (:func:`read_start_weights`, :func:`load_weights`; :func:`freeze_layers`),
the autoanchor check (anchor-based archs), the optimiser groups, LR
schedule, EMA and AMP scaler; restore a checkpoint exactly (weights, optimiser, scheduler, EMA,
scaler, RNG states); then per epoch: :func:`~torch_impl.train.engine.train_one_epoch` (with the
:class:`~torch_impl.train.health.HealthMonitor` hooks), BatchNorm broadcast across ranks,
optional precise BN, :func:`~torch_impl.train.engine.validate` (with val losses), a row of
``results.csv``, the ``results.png`` curves, ``weights/last.pt`` and ``weights/best.pt``. At the
end: the per-class table (:func:`format_class_table`), the COCO summary and the PR / F1 curves
(:func:`plot_pr_f1`). A KeyboardInterrupt ends the run with ``interrupted`` set (the CLI prints
:func:`resume_command`).

Library code: nothing is printed except the one-line notes of a missing optional package
(matplotlib, tqdm; :func:`ref_numpy.shared.cli.optional_import`); progress messages go to the
``log`` callback (rank 0 only). A non-finite loss ends the run with ``TrainResult.diverged`` set.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from ref_numpy.shared.coco import COCOEvalResult

from ref_numpy.shared.cli import optional_import
from ref_numpy.shared.coco import format_summary
from torch_impl.arch import Architecture, arch_of_config, arch_of_model, get_arch
from torch_impl.arch.yolov5_anchor_free import V8_GAINS
from torch_impl.data import DetectionDataset, collate_fn, read_data_yaml
from ref_numpy.shared.devices import select_device
from torch_impl.train.checkpoint import (check_model_file, check_resume_checkpoint, check_state_dict,
                                         get_rng_state, load_checkpoint, remove_stale_tmp,
                                         save_checkpoint, set_rng_state)
from torch_impl.train.config import TrainConfig, TrainResult
from torch_impl.train.ema import ModelEMA
from torch_impl.train.engine import (NonFiniteLossError, autoanchor, autocast_dtype, broadcast_state,
                                     loss_terms, per_class_table, precise_bn, train_one_epoch,
                                     validate)
from torch_impl.train.health import HealthMonitor
from torch_impl.train.optim import HYP_SCRATCH_LOW, build_optimizer, lr_lambda, warmup_iters

__all__ = ["CSV_FIELDS", "CSV_FIELDS_ANCHOR_FREE", "OVERFIT_MAP50", "V8_GAINS", "cpu_threads",
           "format_class_table", "freeze_layers", "increment_path", "load_weights",
           "plot_pr_f1", "plot_results", "read_start_weights", "resolve_device", "resume_command",
           "state_hash", "train"]
# --overfit: the pipeline "can fit" the images when the final mAP@0.5 on them reaches this.
OVERFIT_MAP50 = 0.9

# YOLOv5's results.csv columns (P, R: the "all" row of the per-class table), plus time_s; every
# architecture's are ``Architecture.csv_fields`` (its loss terms in place of box / obj / cls).
CSV_FIELDS = get_arch("yolov5").csv_fields
# The anchor-free head: the v8 loss terms instead of (box, obj, cls).
CSV_FIELDS_ANCHOR_FREE = get_arch("yolov5-anchor-free").csv_fields
# V8_GAINS (imported above): loss gains of the DFL heads (Ultralytics 8.3 / 8.4 defaults, not rescaled).

Log = Callable[[str], None]


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` / ``""`` -> CUDA when present, else CPU; a bare ``"cuda"`` -> this process's
    GPU (``local_rank``), made the current device.

    Raises:
        ValueError: ``"device (--device): cuda requested but CUDA is not available"``.
    """
    dev = select_device(device, "device (--device)", local_rank)  # the one device validator
    if dev.type == "cuda":
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


class DivergedError(FloatingPointError):
    """The weights (or EMA weights, or BatchNorm statistics) became NaN or inf while the loss
    stayed finite (attributes ``epoch``, 1-based, and ``tensor``: the first bad one)."""

    def __init__(self, epoch: int, tensor: str) -> None:
        self.epoch, self.tensor = epoch, tensor
        super().__init__(f"diverged at epoch {epoch}: {tensor} holds NaN or inf although the "
                         f"loss stayed finite (lower --lr0, keep --clip-grad on)")


def _diverged_weights(model: torch.nn.Module, ema, epoch: int) -> DivergedError | None:
    """A :class:`DivergedError` naming the first non-finite tensor of the model or its EMA."""
    for prefix, m in (("model", model), ("EMA", ema.ema if ema is not None else None)):
        if m is None:
            continue
        for k, v in m.state_dict().items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                return DivergedError(epoch + 1, f"{prefix} tensor {k!r}")
    return None


class _KeepFirstBatches:
    """The training loader, keeping the first ``n`` batches each pass yields: precise BN
    reuses them (they are exactly the batches a fresh pass of the same epoch would give first:
    same sampler order, same per-item augmentation seeds) instead of spawning the loader's
    workers again and re-augmenting them."""

    def __init__(self, loader: torch.utils.data.DataLoader, n: int) -> None:
        self.loader, self.n, self.kept = loader, n, []
        self.dataset = loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.kept = []
        for batch in self.loader:
            if len(self.kept) < self.n:
                self.kept.append(batch)
            yield batch


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
    keys = [k for k in rows[0] if k != "epoch" and not k.startswith("x/") and k != "time_s"]
    ncol = (len(keys) + 1) // 2 if len(keys) > 5 else len(keys)
    nrow = 2 if len(keys) > 5 else 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3 * nrow), tight_layout=True)
    for ax, k in zip(np.ravel(axes), keys):
        ax.plot(x, [float(r[k] or "nan") for r in rows], marker=".")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch")
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return True


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def format_class_table(rows: list[dict]) -> list[str]:
    """YOLOv5 ``val.py``'s table of :func:`torch_impl.train.engine.per_class_table` rows:
    ``Class Images Instances P R mAP50 mAP50-95``, one line per row."""
    w = max([len("Class"), *(len(str(r["class"])) for r in rows)])
    out = [f"{'Class':>{w}} {'Images':>9} {'Instances':>9} {'P':>9} {'R':>9} {'mAP50':>9} "
           f"{'mAP50-95':>9}"]
    for r in rows:
        out.append(f"{r['class']:>{w}} {r['images']:>9d} {r['instances']:>9d} {r['P']:>9.3f} "
                   f"{r['R']:>9.3f} {r['map50']:>9.3f} {r['map']:>9.3f}")
    return out


def plot_pr_f1(result: COCOEvalResult, names: Sequence[str] | None, out_dir: str | os.PathLike) -> bool:
    """Draw ``PR_curve.png`` (precision vs recall at IoU 0.5, one curve per class with its AP
    in the legend, and the all-classes mean curve with mAP@0.5) and ``F1_curve.png`` (F1 vs
    confidence per class and the all-classes mean, with its maximum and where) from a
    ``COCOEvalResult`` (area all, 100 detections). Returns False when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prec, scores = _np(result.precision), _np(result.scores)
    rec = _np(result.rec_thrs)
    md = [i for i, v in enumerate(_np(result.max_dets).tolist()) if int(v) == 100] or [-1]
    cats = [int(c) for c in _np(result.cat_ids).tolist()]
    conf = np.linspace(0, 1, 101)
    curves, f1s = [], []
    fig1, ax1 = plt.subplots(figsize=(6, 5), tight_layout=True)
    fig2, ax2 = plt.subplots(figsize=(6, 5), tight_layout=True)
    for k, cid in enumerate(cats):
        p = prec[0, :, k, 0, md[-1]]
        if (p < 0).all():  # no ground truth of this class
            continue
        p = np.where(p < 0, 0.0, p)
        sc = np.where(scores[0, :, k, 0, md[-1]] < 0, 0.0, scores[0, :, k, 0, md[-1]])
        label = names[cid] if names is not None and cid < len(names) else str(cid)
        ax1.plot(rec, p, lw=1, label=f"{label} {p.mean():.3f}")
        f1 = 2 * p * rec / np.maximum(p + rec, 1e-16)
        # F1 at confidence c: the best recall point whose score is >= c
        f1c = np.array([f1[sc >= c].max() if (sc >= c).any() else 0.0 for c in conf])
        ax2.plot(conf, f1c, lw=1, label=label)
        curves.append(p)
        f1s.append(f1c)
    if curves:
        mean_p, mean_f1 = np.mean(curves, 0), np.mean(f1s, 0)
        ax1.plot(rec, mean_p, lw=3, color="blue",
                 label=f"all classes {mean_p.mean():.3f} mAP@0.5")
        best = int(np.argmax(mean_f1))
        ax2.plot(conf, mean_f1, lw=3, color="blue",
                 label=f"all classes {mean_f1[best]:.2f} at {conf[best]:.3f}")
    for ax, (xl, yl) in ((ax1, ("Recall", "Precision")), (ax2, ("Confidence", "F1"))):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left", fontsize=8)
    ax1.set_title("Precision-Recall curve (IoU 0.5)")
    ax2.set_title("F1-Confidence curve (IoU 0.5)")
    out_dir = Path(out_dir)
    fig1.savefig(out_dir / "PR_curve.png", dpi=100, bbox_inches="tight")
    fig2.savefig(out_dir / "F1_curve.png", dpi=100, bbox_inches="tight")
    plt.close(fig1)
    plt.close(fig2)
    return True


def resume_command(last: str | os.PathLike, config: TrainConfig) -> str:
    """The command line that resumes a run from ``last`` (``yolo-ref train --resume ...``,
    plus the per-invocation options that differ from the defaults: --device, --workers,
    --threads, --cache)."""
    d = TrainConfig(data="-")
    cmd = ["yolo-ref", "train", "--resume", str(last)]
    for name in ("device", "workers", "threads", "cache"):
        v = getattr(config, name)
        if v != getattr(d, name):
            cmd += [f"--{name}"] if isinstance(v, bool) else [f"--{name}", str(v)]
    return " ".join(shlex.quote(c) for c in cmd)


def _autoanchor_message(info: dict) -> str:
    msg = f"autoanchor: BPR {info['bpr']:.4f}, anchors/target {info['aat']:.2f}"
    if info["refit"]:
        anchors = [[round(v, 1) for v in a] for a in info["anchors"].reshape(-1, 2).tolist()]
        msg += (f"; BPR <= 0.98, k-means anchors BPR {info['new_bpr']:.4f}: "
                + (f"replaced the model's anchors with {anchors}" if info["replaced"]
                   else "kept the original anchors"))
    return msg


# ----------------------------------------------------------------------------- run folders

def increment_path(path: str | os.PathLike, exist_ok: bool = False, sep: str = "") -> Path:
    """``path`` if it does not exist (or ``exist_ok``), else the first free ``<path><sep>2``,
    ``<path><sep>3``, ... (YOLOv5 v7.0 / Ultralytics 8.3.253 ``increment_path``: ``runs/train/exp``
    -> ``runs/train/exp2``; 8.4.190's default ``sep="-"`` gives ``exp-2``). Nothing is created."""
    path = Path(path)
    if exist_ok or not path.exists():
        return path
    n = 2
    while Path(f"{path}{sep}{n}").exists():
        n += 1
    return Path(f"{path}{sep}{n}")


def _trim_csv(path: Path, last_epoch: int) -> None:
    """Drop the rows of ``results.csv`` after epoch ``last_epoch`` (1-based): the rows a
    resumed run will write again."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= last_epoch]
    if len(keep) != len(rows):
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(keep)


# ----------------------------------------------------------------------------- threads

def cpu_threads(threads: int | None, workers: int, world: int = 1, env: Mapping[str, str] | None = None,
                cpus: int | None = None) -> tuple[int | None, str]:
    """The torch CPU thread count of one training process, and why.

    Rule: ``threads`` (``--threads``) when given; else ``OMP_NUM_THREADS`` when set (torchrun
    sets it to 1 per process; None is returned: torch already uses it); else 1 per process
    under a distributed launch (``world > 1``); else ``cpus``, every core of this process's CPU
    affinity (else ``os.cpu_count()``), as torch, YOLOv5 v7.0 and Ultralytics 8.4 default to. The
    DataLoader workers are not subtracted: on the CPU they are idle most of a training step
    (16 augmented 256 px items take ~65 ms of a ~290 ms step). Measured on a quiet 2-core
    machine, shapes benchmark, YOLOv5n, batch 16: 1 worker 8.0 s/epoch with 2 threads vs 10.0
    with 1 (the rule was ``cpus - workers``); 2 workers 8.1 vs 9.7. ``workers`` is kept for the
    reason string.
    """
    env = os.environ if env is None else env
    if threads is not None:
        return threads, "--threads"
    if env.get("OMP_NUM_THREADS"):
        return None, f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}"
    if world > 1:
        return 1, "one per process under torchrun"
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
    return max(1, cpus), f"{cpus} cores ({workers} loader workers, idle most of a step)"


# ----------------------------------------------------------------------------- weights

def _tensor_dict(x) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(v, torch.Tensor) for v in x.values())


def _our_keys(sd: dict, arch: Architecture | None = None) -> dict:
    """An official package's keys -> ours (the architecture's ``convert_state_dict``; YOLOv5's
    by default: ``model.24.m.0.weight`` or ``24.m.0.weight`` -> ``head.m.0.weight``); our own
    keys pass through."""
    return (arch or get_arch("yolov5")).convert_state_dict(sd)


def read_start_weights(path: str | os.PathLike, arch: Architecture | str | None = None) -> dict:
    """The weights of ``path`` that ``train --weights`` starts from (for :func:`load_weights`):
    ``{"state_dict": our keys, "names": list | None, "model_cfg": dict | None, "kind": str}``.

    ``arch``: the architecture being trained (None: YOLOv5); a plain state_dict under an official
    package's keys is translated by its ``convert_state_dict``.

    Accepted (all read with ``weights_only=True``): what
    :func:`torch_impl.train.inference.read_weights` reads (a ``yolo-ref train`` checkpoint,
    its EMA weights when present; a ``yolo-ref import-yolov5`` file, old or new layout), and
    besides a plain state_dict under our keys or the official v7.0 keys
    (``model.0.conv.weight`` ...), or ``{"model": state_dict}``.

    Raises:
        ValueError: ``"weights (--weights): <path>: ..."`` for an unreadable file or one that
            holds no state_dict.
    """
    from torch_impl.train.inference import read_weights  # (inference imports this module)
    arch = get_arch(arch) if arch is not None else None
    try:
        w = read_weights(path)
    except ValueError:
        pass  # not a yolo-ref model file: a plain state_dict, read below
    else:
        return {**w, "state_dict": _our_keys(dict(w["state_dict"]), arch)}
    try:
        obj = check_model_file(load_checkpoint(path), path)
    except ValueError as exc:
        raise ValueError(f"weights (--weights): {exc}") from None
    cfg, names = None, None
    if _tensor_dict(obj):
        sd, kind = obj, "state_dict"
    elif isinstance(obj, dict) and isinstance(obj.get("ema"), dict) and _tensor_dict(obj["ema"].get("ema")):
        sd, kind = obj["ema"]["ema"], "yolo-ref train checkpoint (EMA weights)"
    elif isinstance(obj, dict) and _tensor_dict(obj.get("model")):
        sd, kind = obj["model"], ("yolo-ref train checkpoint" if "optimizer" in obj
                                  else "checkpoint")
    elif isinstance(obj, dict) and _tensor_dict(obj.get("state_dict")):
        sd, kind = obj["state_dict"], "yolo-ref import-yolov5 file"
    else:
        raise ValueError(f"weights (--weights): {path}: expected a yolo-ref checkpoint, an "
                         f"import-yolov5 file or a state_dict (a dict of tensors)")
    if isinstance(obj, dict) and not _tensor_dict(obj):
        cfg = obj.get("model_cfg") or obj.get("config")
        names = obj.get("names") or (cfg or {}).get("names")
    check_state_dict(sd, f"weights (--weights): {path}")  # finite tensors only
    return {"state_dict": _our_keys(dict(sd), arch), "names": list(names) if names else None,
            "model_cfg": dict(cfg) if isinstance(cfg, dict) else None, "kind": kind}


def load_weights(model: torch.nn.Module, weights: dict, source: str = "weights") -> str:
    """Copy the tensors of ``weights`` (from :func:`read_start_weights`) into ``model`` where name
    and shape match (YOLOv5 ``intersect_dicts``), and return a one-line report.

    Head tensors that do not fit (another class count, or the other head kind) keep the
    model's fresh initialisation and the report says so (``"head re-initialised: ..."``);
    anchors of the same shape are taken from the weights (the autoanchor check still runs).

    Raises:
        ValueError: a backbone / neck tensor missing or of another shape (another variant):
            names the first one and both shapes.
    """
    sd = weights["state_dict"]
    arch = arch_of_model(model)
    ours = model.state_dict()
    take, skipped_head = {}, []
    for k, v in ours.items():
        w = sd.get(k)
        if k.startswith(arch.head_prefixes):
            if w is not None and w.shape == v.shape:
                take[k] = w
            else:
                skipped_head.append(k)
            continue
        if w is None:
            if k.endswith("num_batches_tracked"):
                continue
            raise ValueError(f"weights (--weights): {source}: no tensor {k!r} (shape "
                             f"{tuple(v.shape)}); are they of another variant? Pass the "
                             f"--model / --depth-multiple / --width-multiple they were made with")
        if w.shape != v.shape:
            raise ValueError(f"weights (--weights): {source}: {k!r} has shape "
                             f"{tuple(w.shape)}, the model expects {tuple(v.shape)}; pass the "
                             f"--model / --depth-multiple / --width-multiple they were made with")
        take[k] = w
    model.load_state_dict({**ours, **{k: v.to(ours[k].dtype) for k, v in take.items()}})
    def counted(keys):  # BatchNorm's num_batches_tracked counters are not weights
        return len([k for k in keys if not k.endswith("num_batches_tracked")])

    msg = f"weights: {counted(take)}/{counted(ours)} tensors from {source} ({weights['kind']})"
    if skipped_head:
        old_nc = arch.weights_nc(sd)
        new_nc = getattr(model, "nc", None)
        why = (f"the weights are for {old_nc} classes, the data set has {new_nc}"
               if old_nc is not None and old_nc != new_nc else "its tensors do not fit")
        msg += f"; head re-initialised ({why}: {len(skipped_head)} head tensors fresh)"
    return msg


def freeze_layers(model: torch.nn.Module, n: int) -> list[str]:
    """Set ``requires_grad = False`` on the parameters of the first ``n`` layers of the
    model's architecture's layer order (``Architecture.layer_index``; YOLOv5: the official
    order, 0 ``backbone.stem`` ... 23 ``neck.out5``, 24 the head,
    :data:`torch_impl.models.convert.LAYER_INDEX`) and return their names (YOLOv5
    ``--freeze N``: ``model.0.`` .. ``model.{N-1}.``). BatchNorm statistics still update."""
    return arch_of_model(model).freeze(model, n)


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
    say = (log if rank == 0 else None) or (lambda _msg: None)
    if config.resume:
        ckpt = check_resume_checkpoint(load_checkpoint(config.resume), config.resume)
        config = config.resolve(ckpt["args"])
        done = int(ckpt["epoch"]) + 1
        if done >= config.epochs:
            say(f"{config.resume}: this run is finished ({done}/{done} epochs trained); "
                f"nothing to do (pass --epochs N with N > {done} to train more)")
            return TrainResult(config=config, out=Path(config.out), last=Path(config.resume),
                               best=(Path(config.resume).parent / "best.pt"
                                     if (Path(config.resume).parent / "best.pt").exists()
                                     else None),
                               best_fitness=float(ckpt.get("best_fitness", -math.inf)),
                               rank=rank, finished=True)
    device = resolve_device(config.device, local_rank)
    threads_before = torch.get_num_threads()
    threads, why = cpu_threads(config.threads, config.workers, world)
    if threads is not None and (device.type == "cpu" or config.threads is not None):
        torch.set_num_threads(threads)
        say(f"torch threads: {threads} ({why})")
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(config, ckpt, device, world, rank, log if rank == 0 else None)
    finally:
        torch.set_num_threads(threads_before)
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
    if ckpt is None:  # a new run never writes into another run's folder
        out = [str(increment_path(config.out, exist_ok=config.exist_ok))]
        if world > 1 and dist.is_initialized():
            dist.broadcast_object_list(out, src=0)
        if out[0] != config.out:
            say(f"{config.out} exists: this run goes to {out[0]} (--exist-ok to reuse it)")
        config = dataclasses.replace(config, out=out[0])
    arch = get_arch(config.arch)
    weights = None
    if config.weights and ckpt is None:
        weights = read_start_weights(config.weights, arch)
        cfg = weights["model_cfg"] or {}
        other = arch_of_config(cfg).name if cfg else arch.name
        if other != arch.name:  # e.g. a YOLOv5 backbone + neck under the anchor-free head
            say(f"weights: {config.weights} holds a {other} model, this run trains {arch.name}: "
                f"tensors of matching name and shape carry over (--arch {other} to continue it)")
        adopt = {k: cfg[k] for k in ("depth_multiple", "width_multiple")
                 if getattr(config, k) is None and isinstance(cfg.get(k), (int, float))}
        if adopt:
            config = dataclasses.replace(config, **adopt)
            say("model: " + ", ".join(f"{k} {v}" for k, v in adopt.items())
                + f" from {config.weights}")
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
    if config.overfit:
        n_fit = min(config.overfit, len(train_ds))
        train_ds = DetectionDataset.from_yaml(config.data, "train", img_size=config.img_size,
                                              augment=False, seed=config.seed)
        val_ds = DetectionDataset.from_yaml(config.data, "train", img_size=config.img_size,
                                            augment=False)
        train_ds.items, val_ds.items = train_ds.items[:n_fit], val_ds.items[:n_fit]
        say(f"overfit: training and validating on the first {n_fit} training images, "
            f"no augmentation")
    if config.cache:
        held = train_ds.cache_images() + val_ds.cache_images()
        say(f"cache: {held / 2 ** 20:.0f} MiB of decoded images in memory")
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
    options = {k: getattr(config, k) for k in ("depth_multiple", "width_multiple")
               if getattr(config, k) is not None}
    model = arch.build(nc, config.model, **options, **(config.arch_options or {})).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if weights is not None:
        say(load_weights(model, weights, config.weights))
    if config.freeze:
        frozen = freeze_layers(model, config.freeze)
        say(f"freeze: layers 0..{config.freeze - 1} ({len(frozen)} parameter tensors) "
            f"do not train")
    terms = loss_terms(model)
    csv_fields = arch.csv_fields
    if ckpt is None and config.autoanchor and arch.anchor_based:
        info = autoanchor(model, train_ds, config.img_size, thr=HYP_SCRATCH_LOW["anchor_t"],
                          seed=config.seed)
        say(_autoanchor_message(info))

    # ---------------------------------------------------------------- optimisation
    hyp = dict(HYP_SCRATCH_LOW, lr0=config.lr0, lrf=config.lrf, momentum=config.momentum,
               weight_decay=config.weight_decay, warmup_epochs=config.warmup_epochs)
    accumulate_max = config.nbs / config.batch_size
    accumulate = max(round(accumulate_max), 1)
    hyp["weight_decay"] *= config.batch_size * accumulate / config.nbs
    hyp = arch.prepare_hyp(hyp, model, nc, config.img_size)
    optimizer = build_optimizer(model, config.optimizer, hyp["lr0"], hyp["momentum"],
                                hyp["weight_decay"])
    if hasattr(model, "adjust_optimizer"):  # an arch's own LR groups (YOLOv1 --backbone-lr)
        model.adjust_optimizer(optimizer)
    lf = lr_lambda(config.epochs, hyp["lrf"], cos=config.cos_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    ema = ModelEMA(model) if config.ema else None
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device, config.amp) == torch.float16)
    start_epoch, best_fitness, last_opt_step = 0, -math.inf, -1
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:  # another class count or model than the checkpoint's
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise ValueError(f"{config.resume}: the checkpoint's weights do not fit the model "
                             f"of this run ({nc} classes in {config.data}): "
                             f"{lines[1] if len(lines) > 1 else lines[0]}") from None
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"]) + 1
        best_fitness = float(ckpt["best_fitness"])
        last_opt_step = int(ckpt["last_opt_step"])
        # the LR of the next epoch under this run's schedule (re-planned when --epochs changed;
        # the same expression as LambdaLR.step, so an unchanged run resumes bit-exactly)
        for g, base in zip(optimizer.param_groups, scheduler.base_lrs):
            g["lr"] = base * lf(scheduler.last_epoch)
        extended = int(ckpt["args"].get("epochs") or config.epochs) != config.epochs
        say(f"resuming {config.resume} from epoch {start_epoch + 1}/{config.epochs}"
            + (f" (extended from {ckpt['args'].get('epochs')} epochs; the LR schedule is "
               f"re-planned over {config.epochs})" if extended else ""))
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
        if rank == 0 and not (wdir / "best.pt").exists() \
                and float(ckpt.get("fitness", -math.inf)) >= float(ckpt["best_fitness"]):
            save_checkpoint(ckpt, wdir / "best.pt")  # killed after last.pt, before best.pt
    del ckpt

    if config.amp and autocast_dtype(device, True) is None:
        note = (f"--amp: mixed precision needs CUDA or a CPU with native bfloat16 (AVX512-BF16 / AMX); "
                f"training in float32 on {device}")
        result.notes.append(note)
        say(note)
    elif config.amp and device.type == "cpu":
        say("--amp: the forward pass in bfloat16 on this CPU (loss, validation and checkpoints in float32)")
    if rank == 0:
        wdir.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(wdir)  # .last.pt.*.tmp of a process killed while saving
        (save_dir / "args.json").write_text(json.dumps(config.to_dict(), indent=1),
                                            encoding="utf-8")
        if start_epoch == 0:  # a new run (or --exist-ok): a fresh log
            for stale in ("results.csv", "results.png"):
                (save_dir / stale).unlink(missing_ok=True)
        else:  # rows of epochs after the checkpoint are trained again
            _trim_csv(save_dir / "results.csv", start_epoch)
    monitor = None
    if config.health:
        monitor = HealthMonitor(model, img_size=config.img_size, anchor_t=hyp["anchor_t"],
                                nc=nc, log=log)
        monitor.check_data(train_ds)
        result.health = monitor
    nb = len(train_loader)
    nw = warmup_iters(hyp["warmup_epochs"], nb)
    say(f"training {arch.name} {config.model or ''} ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters) on {device} x{world}: {len(train_ds)} train / {len(val_ds)} val "
        f"images, {nb} batches of {bs} per process, epochs {start_epoch + 1}..{config.epochs}")

    # ---------------------------------------------------------------- epochs
    mosaic_p = train_ds.hyp["mosaic"]
    keep = _KeepFirstBatches(train_loader, config.precise_bn)
    try:
        for epoch in range(start_epoch, config.epochs):
            progress = None if tqdm is None else (
                lambda it, e=epoch: tqdm(it, total=len(it), desc=f"epoch {e + 1}/{config.epochs}",
                                         leave=False, dynamic_ncols=True))
            t0 = time.time()
            train_model.train()
            sampler.set_epoch(epoch)
            train_ds.set_epoch(epoch)
            closed = bool(config.close_mosaic) and epoch >= config.epochs - config.close_mosaic
            train_ds.hyp["mosaic"] = 0.0 if closed else mosaic_p  # read by the next workers
            try:
                losses, last_opt_step = train_one_epoch(
                    train_model, keep, optimizer, hyp=hyp, epoch=epoch,
                    lr_factor=lf(epoch), nw=nw, accumulate_max=accumulate_max, device=device,
                    ema=ema, scaler=scaler, amp=config.amp, channels_last=config.channels_last,
                    clip_grad=config.clip_grad,
                    world_size=world, last_opt_step=last_opt_step, progress=progress,
                    nan_at_step=config.debug_nan_at_step,
                    on_batch=None if monitor is None else monitor.on_batch)
            except NonFiniteLossError as exc:
                result.diverged = exc
                result.last = wdir / "last.pt" if (wdir / "last.pt").exists() else None
                return result
            diverged = _diverged_weights(model, ema, epoch)  # the loss can stay finite
            if diverged is not None:
                result.diverged = diverged
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
                precise_bn(eval_model, keep.kept, device, config.precise_bn)
            metrics = validate(eval_model, val_loader, device, hyp=hyp,
                               on_predictions=None if monitor is None else monitor.on_predictions)
            table = per_class_table(metrics, names)
            fitness = 0.1 * metrics["map50"] + 0.9 * metrics["map"]
            dt = time.time() - t0
            if rank == 0:
                _append_csv(save_dir / "results.csv", {
                    "epoch": epoch + 1,
                    **{f"train/{k}_loss": f"{losses[k]:.6g}" for k in terms},
                    "metrics/precision": f"{table[0]['P']:.6g}",
                    "metrics/recall": f"{table[0]['R']:.6g}",
                    "metrics/mAP_0.5": f"{metrics['map50']:.6g}",
                    "metrics/mAP_0.5:0.95": f"{metrics['map']:.6g}",
                    **{f"val/{k}_loss": f"{v:.6g}" for k, v in metrics["losses"].items()},
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
                    "model_cfg": arch.checkpoint_config(model, nc),
                }
                # results.csv first (a resume trims rows after its checkpoint), then best.pt,
                # then last.pt: a kill between any two leaves a run that resumes with one row
                # per epoch and a best.pt
                if is_best:
                    result.best = save_checkpoint(state, wdir / "best.pt")
                result.last = save_checkpoint(state, wdir / "last.pt")
            result.history.append({"epoch": epoch + 1, **losses, "map50": metrics["map50"],
                                   "map": metrics["map"], "fitness": fitness, "time_s": dt,
                                   **{f"val_{k}": v for k, v in metrics["losses"].items()}})
            result.final = {**metrics, "per_class": table}
            result.best_fitness = best_fitness
            say(f"epoch {epoch + 1}/{config.epochs}: "
                + " ".join(f"{k} {losses[k]:.4f}" for k in terms)
                + f"  mAP@0.5 {metrics['map50']:.4f}  mAP@0.5:0.95 {metrics['map']:.4f}  {dt:.1f} s")
            if monitor is not None:
                monitor.end_epoch(epoch + 1, losses)
            if config.debug_stop_after is not None and epoch + 1 >= config.debug_stop_after:
                break
    except KeyboardInterrupt:
        result.interrupted = True
        result.last = wdir / "last.pt" if (wdir / "last.pt").exists() else None
        return result
    if config.debug_state_dir:
        out = Path(config.debug_state_dir)
        out.mkdir(parents=True, exist_ok=True)
        hashes = {"model": state_hash(model.state_dict())}
        if ema is not None:
            hashes["ema"] = state_hash(ema.ema.state_dict())
        (out / f"rank{rank}.json").write_text(json.dumps(hashes), encoding="utf-8")
    if result.best is None and (wdir / "best.pt").exists() and rank == 0:
        result.best = wdir / "best.pt"  # a resumed run whose best epoch came before
    if result.final is not None and rank == 0:
        for line in format_class_table(result.final["per_class"]):
            say(line)
        res = result.final["result"]
        for line in format_summary(_np(res.stats), _np(res.iou_thrs).tolist(),
                                   [int(v) for v in _np(res.max_dets).tolist()]):
            say(line)
        if plots and plot_pr_f1(res, names, save_dir):
            say(f"PR_curve.png, F1_curve.png in {save_dir}")
    if config.overfit and result.final is not None:
        fitted = result.final["map50"] >= OVERFIT_MAP50
        result.overfit = {"images": len(train_ds), "map50": result.final["map50"],
                          "fitted": fitted}
        say(f"overfit: mAP@0.5 {result.final['map50']:.3f} on the {len(train_ds)} training "
            f"images after {config.epochs} epochs: "
            + ("the pipeline can fit them" if fitted else
               f"the pipeline could NOT fit them (< {OVERFIT_MAP50}); see the health checks "
               f"above, or train longer"))
    say(f"done; results in {save_dir}")
    return result
