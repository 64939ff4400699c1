"""The typed configuration of a training run (:class:`TrainConfig`) and what a run returns
(:class:`TrainResult`).

``yolo-ref train`` fills a :class:`TrainConfig` from its options (``--img-size`` ->
``img_size``, ``--out`` -> ``out``, ...); :func:`torch_impl.train.train` runs it. Defaults are the
YOLOv5 v7.0 ``hyp.scratch-low`` recipe. A checkpoint stores ``dataclasses.asdict(config)`` under
``"args"``; a resumed run takes every field from there except :data:`NOT_RESUMED`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ref_numpy.shared.devices import parse_device
from torch_impl.train.optim import HYP_SCRATCH_LOW, OPTIMIZERS

MODELS = ("n", "s", "m", "l", "x")  # the YOLOv5 / YOLOv8 variants; each arch has its own
HEADS = ("anchor", "anchor-free")  # --head anchor-free = --arch yolov5-anchor-free (an alias)

# Fields a resumed run takes from the caller, not from the checkpoint.
NOT_RESUMED = ("resume", "device", "workers", "threads", "cache", "debug_nan_at_step",
               "debug_stop_after", "debug_state_dir", "quiet")
DEFAULT_EPOCHS = 100
# Field names of older checkpoints -> today's.
_RENAMED = {"project": "out"}


def _option(name: str) -> str:
    """``img_size (--img-size)``: how a field is named in an error message."""
    return f"{name} (--{name.replace('_', '-')})"


@dataclass
class TrainConfig:
    """Every option of a training run.

    Data and model:
        data: data-set YAML (Ultralytics 8.3 / 8.4 layout: ``train`` and ``val`` splits, ``names``);
            required unless ``resume``.
        arch: the architecture (:mod:`torch_impl.arch`: ``yolov5``, ``yolov5-anchor-free``,
            ``yolov8``, ...; an alias is stored as the name it stands for).
        model: the arch's variant (YOLOv5 / YOLOv8: one of ``n s m l x``); None: its first.
        head: ``"anchor"`` or ``"anchor-free"``: with ``arch="yolov5"`` the alias of
            ``arch="yolov5-anchor-free"`` (v8-style DFL head, TAL assignment + the v8 loss
            with gains box 7.5, cls 0.5, dfl 1.5; no autoanchor); kept in step with ``arch``.
        depth_multiple, width_multiple: override the variant's multiples (None: the variant's).
        arch_options: further keyword options of the arch's ``build`` (``--arch-option
            KEY=VALUE``), e.g. ``{"reg_max": 8}``; None: none.
        img_size: square network input, pixels, a positive multiple of 32.
        weights: start from these weights (fine-tuning): a ``yolo-ref train`` checkpoint
            (its EMA weights when present), a ``yolo-ref import-yolov5`` file, or a plain
            official YOLOv5 v7.0 state_dict; tensors of matching name and shape are copied,
            a head of another class count is re-initialised (see
            :func:`torch_impl.train.trainer.load_weights`).
        freeze: freeze the first N layers of the official layer order (0-9 backbone, 10-23
            neck, 24 head; requires_grad False, as YOLOv5 ``--freeze N``).

    Schedule and optimiser:
        epochs: number of epochs (>= 1); None: 100 for a new run, the checkpoint's for a
            resumed one (a larger value extends a resumed run, the LR schedule re-planned
            over the new count).
        batch_size: images per optimiser batch, summed over all processes (>= 1, divisible by
            the number of processes).
        nbs: nominal batch size: gradients of ``round(nbs / batch_size)`` batches are summed
            per step and the weight decay is scaled by ``batch_size * accumulate / nbs``.
        optimizer: ``"SGD"`` (Nesterov) or ``"AdamW"``.
        lr0: initial learning rate (> 0); lrf: final LR factor (> 0).
        momentum: SGD momentum / AdamW beta1, in [0, 1).
        weight_decay: on the conv weights only (>= 0).
        warmup_epochs: warmup length in epochs (at least 100 iterations); 0 disables it.
        cos_lr: cosine LR schedule instead of linear.
        ema: keep EMA weights (validated and saved).
        amp: mixed precision: the forward pass autocast to float16 on CUDA (with a gradient
            scaler), to bfloat16 on a CPU with native bfloat16 (AVX512-BF16 / AMX); float32
            elsewhere, with a note. Weights, validation and checkpoints stay float32; on CPU the
            loss too.
        channels_last: model and training batches in channels-last memory order (same
            values, other convolution kernels: faster on most CPUs with oneDNN).
        clip_grad: max gradient norm, 0 disables clipping.
        augment: mosaic / affine / HSV / flip augmentation (False: letterbox only).
        close_mosaic: no mosaic in the last N epochs (Ultralytics 8.3 / 8.4 ``close_mosaic``;
            the other augmentations stay; 0: mosaic to the end, as YOLOv5 v7.0).
        precise_bn: before each validation recompute the validated model's BatchNorm
            statistics over this many training batches (0: off; helps short runs).
        autoanchor: check the anchors' best possible recall at the start and refit them when
            it is <= 0.98 (anchor head only).
        seed: seeds Python, NumPy, torch and the data pipeline.

    Run:
        workers: DataLoader workers per process.
        cache: decode the training and validation images once and keep them in memory
            (YOLOv5's ``--cache ram``; about ``H * W * 3`` bytes an image): the same batches,
            less time per epoch; it does not change any result.
        threads: torch CPU threads per process; None: ``OMP_NUM_THREADS`` when set, else 1
            per process under torchrun, else every core of the process (see
            :func:`torch_impl.train.trainer.cpu_threads`).
        device: ``"auto"`` (or ``""``: CUDA when present, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:0"``.
        out: the run's directory (``results.csv``, ``results.png``, ``args.json``,
            ``weights/last.pt``, ``weights/best.pt``); when it exists already a new run goes to
            ``<out>2``, ``<out>3``, ... (YOLOv5 ``increment_path``), unless ``exist_ok``.
        exist_ok: reuse an existing ``out`` (its ``results.csv`` starts afresh).
        overfit: train on the first N training images without augmentation, validate on the
            same images, and say at the end whether the pipeline could fit them (0: off).
        health: run the training health checks (:mod:`torch_impl.train.health`).
        resume: a ``last.pt`` to continue from exactly; every other field except
            :data:`NOT_RESUMED` then comes from the checkpoint.
        quiet: no progress bars.
        plots: draw ``results.png`` each epoch (skipped with one line when matplotlib is
            missing).

    Testing hooks:
        debug_nan_at_step: make the loss NaN at this global step.
        debug_stop_after: stop after this many epochs (as if interrupted).
        debug_state_dir: write ``rank<r>.json`` with SHA-256 hashes of the final model / EMA.

    Raises:
        ValueError: naming the field and its option, e.g. ``"img_size (--img-size): expected
            a positive multiple of 32, got 70"``.
    """

    data: str | None = None
    arch: str = "yolov5"
    model: str | None = None
    head: str = "anchor"
    depth_multiple: float | None = None
    width_multiple: float | None = None
    arch_options: dict | None = None
    img_size: int = 640
    weights: str | None = None
    freeze: int = 0
    epochs: int | None = None
    batch_size: int = 16
    nbs: int = 64
    optimizer: str = "SGD"
    lr0: float = HYP_SCRATCH_LOW["lr0"]
    lrf: float = HYP_SCRATCH_LOW["lrf"]
    momentum: float = HYP_SCRATCH_LOW["momentum"]
    weight_decay: float = HYP_SCRATCH_LOW["weight_decay"]
    warmup_epochs: float = HYP_SCRATCH_LOW["warmup_epochs"]
    cos_lr: bool = False
    ema: bool = False
    amp: bool = False
    channels_last: bool = False
    clip_grad: float = 10.0
    augment: bool = True
    close_mosaic: int = 0
    precise_bn: int = 0
    autoanchor: bool = True
    seed: int = 0
    workers: int = 2
    cache: bool = False
    threads: int | None = None
    device: str = "auto"
    out: str = "runs/train/exp"
    exist_ok: bool = False
    overfit: int = 0
    health: bool = True
    resume: str | None = None
    quiet: bool = False
    plots: bool = True
    debug_nan_at_step: int | None = None
    debug_stop_after: int | None = None
    debug_state_dir: str | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.resume is None:
            raise ValueError(f"{_option('data')}: required (unless --resume)")
        if self.data is None:
            return  # the checkpoint supplies the rest; see resolve()
        if self.epochs is None:
            self.epochs = DEFAULT_EPOCHS
        self._check()

    def _check_arch(self) -> None:
        """Resolve ``arch`` (an alias -> its name; ``head="anchor-free"`` on YOLOv5 -> the
        anchor-free arch, and back, so old checkpoints' ``head`` keeps its meaning) and
        ``model`` (None -> the arch's first variant), and check both."""
        from torch_impl.arch import get_arch  # (the registry imports the models)
        if self.head not in HEADS:
            raise ValueError(f"{_option('head')}: expected one of {HEADS}, got {self.head!r}")
        arch = get_arch(self.arch)
        if self.head == "anchor-free" and arch.name == "yolov5":
            arch = get_arch("yolov5-anchor-free")
        elif self.head == "anchor-free" and arch.name != "yolov5-anchor-free":
            raise ValueError(f"{_option('head')}: anchor-free is a head of --arch yolov5 "
                             f"(= --arch yolov5-anchor-free); --arch {arch.name} has its own")
        self.arch = arch.name
        if arch.name == "yolov5-anchor-free":
            self.head = "anchor-free"
        if self.model is None:
            self.model = arch.default_variant
        if arch.variants and self.model not in arch.variants:
            raise ValueError(f"{_option('model')}: --arch {arch.name} has the variants "
                             f"{arch.variants}, got {self.model!r}")
        if not arch.variants and self.model is not None:
            raise ValueError(f"{_option('model')}: --arch {arch.name} has no variants, "
                             f"got {self.model!r}")
        if self.arch_options is not None and not isinstance(self.arch_options, dict):
            raise ValueError(f"{_option('arch_options')}: expected a dict of the "
                             f"architecture's build options, got {self.arch_options!r}")
        if self.freeze and arch.layer_index is None:
            raise ValueError(f"{_option('freeze')}: --arch {arch.name} has no layer numbering "
                             f"for --freeze")
        if arch.max_freeze is not None and self.freeze > arch.max_freeze:
            raise ValueError(f"{_option('freeze')}: expected 0..{arch.max_freeze} (N freezes "
                             f"layers 0..N-1{arch.freeze_help}), got {self.freeze}")

    _INTS = ("img_size", "freeze", "epochs", "batch_size", "nbs", "precise_bn", "close_mosaic", "seed",
             "workers", "overfit", "threads", "debug_nan_at_step", "debug_stop_after")
    _REALS = ("depth_multiple", "width_multiple", "lr0", "lrf", "momentum", "weight_decay",
              "warmup_epochs", "clip_grad")
    _BOOLS = ("cos_lr", "ema", "amp", "channels_last", "augment", "autoanchor", "cache", "exist_ok", "health",
              "quiet", "plots")
    _OPTIONAL = ("depth_multiple", "width_multiple", "threads", "debug_nan_at_step",
                 "debug_stop_after")

    def _check_types(self) -> None:
        """Each field of the type it is documented with (a bool is not a number, a float not
        a count), so a bad value from Python or a tampered checkpoint fails by name."""
        for name in self._INTS + self._REALS + self._BOOLS:
            v = getattr(self, name)
            if v is None and name in self._OPTIONAL:
                continue
            if name in self._BOOLS:
                ok, what = isinstance(v, bool), "true or false"
            elif name in self._INTS:
                ok, what = isinstance(v, int) and not isinstance(v, bool), "an integer"
            else:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
                what = "a number"
            if not ok:
                raise ValueError(f"{_option(name)}: expected {what}, got {v!r}")
        parse_device(self.device, _option("device"))

    def _check(self) -> None:
        self._check_types()
        self._check_arch()
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{_option('optimizer')}: expected one of {OPTIMIZERS}, "
                             f"got {self.optimizer!r}")
        if self.img_size <= 0 or self.img_size % 32:
            raise ValueError(f"{_option('img_size')}: expected a positive multiple of 32, "
                             f"got {self.img_size}")
        for name in ("epochs", "batch_size", "nbs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{_option(name)}: expected >= 1, got {getattr(self, name)}")
        for name in ("lr0", "lrf"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{_option(name)}: expected a positive number, got {v}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"{_option('momentum')}: expected a value in [0, 1), "
                             f"got {self.momentum}")
        for name in ("weight_decay", "warmup_epochs", "clip_grad", "precise_bn", "close_mosaic",
                     "workers", "freeze", "overfit"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{_option(name)}: expected a number >= 0, got {v}")
        for name in ("depth_multiple", "width_multiple"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{_option(name)}: expected a positive number, got {v}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"{_option('threads')}: expected >= 1, got {self.threads}")

    def resolve(self, saved: dict) -> "TrainConfig":
        """The configuration of a resumed run: the checkpoint's ``saved`` fields (its
        ``"args"``), with :data:`NOT_RESUMED` taken from ``self``. Fields a checkpoint predates
        keep their defaults (``head`` -> ``"anchor"``)."""
        known = {f.name for f in dataclasses.fields(self)}
        values = {}
        for k, v in saved.items():
            k = _RENAMED.get(k, k)
            if k in known and k not in NOT_RESUMED:
                values[k] = v
        if "no_augment" in saved:  # checkpoints written by the old scripts/train.py
            values["augment"] = not saved["no_augment"]
        if "noautoanchor" in saved:
            values["autoanchor"] = not saved["noautoanchor"]
        values.update({k: getattr(self, k) for k in NOT_RESUMED})
        if self.epochs is not None:  # extend (or shorten) the resumed run
            values["epochs"] = self.epochs
        if values.get("data") is None:
            raise ValueError(f"{self.resume}: the checkpoint's args hold no data-set YAML")
        return TrainConfig(**values)

    def to_dict(self) -> dict:
        """The fields as plain values (what a checkpoint stores under ``"args"``)."""
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`torch_impl.train.train` returns (rank 0's view in a distributed run).

    Fields:
        config: the configuration that ran (for a resumed run: the checkpoint's).
        out: the output directory.
        last, best: ``weights/last.pt`` / ``weights/best.pt`` (None when never written).
        history: one dict per epoch run: ``epoch`` (1-based), the loss terms (``box``, ``obj``,
            ``cls`` or ``box``, ``cls``, ``dfl``), ``map50``, ``map``, ``fitness``, ``time_s``.
        best_fitness: ``0.1 mAP@0.5 + 0.9 mAP@0.5:0.95`` of the best epoch (-inf if none).
        diverged: the :class:`torch_impl.train.NonFiniteLossError` that stopped the run (the
            last good checkpoint is kept), or None.
        notes: one-line remarks a CLI may show (skipped plot, AMP without CUDA, ...).
        rank: this process's rank (0 outside a distributed run); only rank 0 writes files.
        finished: a resumed run that had already trained all its epochs (nothing was done).
        interrupted: the run stopped on KeyboardInterrupt (``last`` is where to resume from).
        health: the :class:`torch_impl.train.health.HealthMonitor` of the run (its
            ``findings`` and per-epoch summaries), or None when the checks were off.
        overfit: with ``config.overfit``: ``{"images", "map50", "fitted"}`` of the verdict.
        final: the last validation's ``{"map50", "map", "result", "per_class"}`` (the
            per-class table rows of :func:`torch_impl.train.engine.per_class_table`).
    """

    config: TrainConfig
    out: Path
    last: Path | None = None
    best: Path | None = None
    history: list = field(default_factory=list)
    best_fitness: float = -math.inf
    diverged: Exception | None = None
    notes: list = field(default_factory=list)
    rank: int = 0
    finished: bool = False
    interrupted: bool = False
    health: object = None
    overfit: dict | None = None
    final: dict | None = None

    @property
    def ok(self) -> bool:
        """True when the run finished without diverging."""
        return self.diverged is None
