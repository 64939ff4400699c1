"""End to end: the toolkit's trainer against the official YOLOv5 trainer on the README's shapes
benchmark, both run here, one after the other, on the same data.

Data: ``yolo-ref make-shapes`` with --images (448), --img-size (256), seed --data-seed (1) and
split 0.857 (384 train / 64 val): the README's "Training from scratch on CPU" set. Both trainers
get the same image size, batch (--batch-size 16), epochs (--epochs 30), loader workers
(--workers 1), the CPU and YOLOv5n built from scratch.

  ours    torch_impl.train.train(TrainConfig(...)) with the toolkit's recommended settings
          (RECOMMENDED in this file: the README's recipe, nbs 16, AdamW lr0 0.004, cosine LR,
          EMA, precise BN over 4 batches, decoded images cached in memory, seed 0; --ours
          KEY=VALUE overrides one TrainConfig field, repeatable); no plots, no progress bar;
          torch threads: --threads, else the trainer's own rule (every core, see
          torch_impl.train.trainer.cpu_threads).
  yolov5  the official trainer of the yolov5 7.0.14 pip package (yolov5/train.py main()), in a
          subprocess of --peer-python (default: this interpreter): cfg yolov5n.yaml, weights '',
          its default hyp.scratch-low (SGD lr0 0.01, its fixed nominal batch 64), --noplots,
          --exist-ok, seed 0, device cpu, its default logging (results.csv, TensorBoard when
          installed); torch threads: left as they are (torch's default; yolov5's
          OMP_NUM_THREADS = cores - 1 is set after torch is imported and does not apply: 2
          threads on a 2-core machine), --peer-threads N sets them; both counts are printed.
          A peer that is not importable prints "peer absent (pip install yolov5)" and our side
          still runs. The yolov5 package is a baseline only, never a dependency.

Both clocks start right before the trainer is called (imports excluded; data-set scanning,
model building and autoanchor included) and stop at each epoch's end after its checkpoint is
written (ours: the epoch line of the trainer's log; yolov5: its on_model_save callback). Each
side's mAP@0.5 is its own validator's on the 64 val images: ours the COCO 101-point protocol
of the port's evaluator, yolov5 its val.py (conf 0.001, IoU 0.6, rectangular batches). To
compare like with like, yolov5's last weights (EMA) are also evaluated by the port's evaluator
once at the end ("yolov5 last, port's evaluator"). The training images per second count the
training phase only (data loading, forward, loss, backward, optimiser; not validation).

Prints (Markdown, to paste into the README): both curves side by side (epoch, cumulative wall
seconds, mAP@0.5), then per trainer the time to mAP@0.5 >= --target (0.9) (or "not reached in
N epochs"), mean seconds per epoch over epochs 2..N (epoch 1 carries the set-up; with one epoch:
epoch 1), epoch 1 with set-up, and training images per second; with the ratios ours / yolov5
beside their goals (time to target <= 0.5, seconds per epoch <= 0.7). When only one side
reaches the target the ratio is a bound (< or >). Everything is also written to
OUT/bench_train.json; yolov5's output is in OUT/yolov5.log, its run in OUT/yolov5/run.

examples:
  yolo-ref bench train
  yolo-ref bench train --epochs 2 --threads 1
  yolo-ref bench train --skip-peer --ours lr0=0.003 --ours precise_bn=0
  yolo-ref bench train --peer-python /path/to/venv-with-yolov5/bin/python

Exit codes: 0 done; 1 a trainer failed (ours diverged, yolov5 exited non-zero) or, with
--strict, a goal was missed; 2 bad arguments.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ref_numpy.shared.cli import EXIT_CHECK_FAILED, EXIT_OK, UsageError, add_img_size, make_parser, run

# The toolkit's recommended settings for this benchmark (TrainConfig fields), tuned by the
# maintainer; --ours KEY=VALUE overrides one. The shared fields (SHARED) are not settings.
RECOMMENDED = {
    "model": "n",
    "nbs": 16,
    "optimizer": "AdamW",
    "lr0": 0.004,
    "cos_lr": True,
    "ema": True,
    "precise_bn": 4,
    "cache": True,
    "seed": 0,
}
# TrainConfig fields both trainers share (set from this benchmark's own options) or that a
# benchmark run fixes.
SHARED = ("data", "out", "exist_ok", "epochs", "img_size", "batch_size", "workers", "device",
          "resume", "quiet", "threads")
SPLIT = 0.857  # the README's --split: 384 train / 64 val of 448
GOAL_TIME_TO_TARGET = 0.5
GOAL_EPOCH = 0.7
PEER_ABSENT = "peer absent (pip install yolov5)"
_EPOCH_LINE = re.compile(r"^epoch (\d+)/\d+:")


@dataclasses.dataclass
class Curve:
    """One trainer's run: per epoch (1-based) the cumulative wall seconds since the trainer was
    called, mAP@0.5 and the training-phase seconds; ``note`` says why it is empty or short."""
    name: str
    epochs: list = dataclasses.field(default_factory=list)  # [{"epoch", "wall_s", "map50", "train_s"}]
    threads: int | None = None
    n_train: int = 0
    note: str = ""
    failed: bool = False
    extra: dict = dataclasses.field(default_factory=dict)

    def time_to(self, target: float) -> tuple[int, float] | None:
        """(epoch, wall seconds) of the first epoch with mAP@0.5 >= target, or None."""
        for e in self.epochs:
            if e["map50"] is not None and e["map50"] >= target:
                return e["epoch"], e["wall_s"]
        return None

    def epoch_seconds(self) -> tuple[float | None, str]:
        """Mean wall seconds per epoch over epochs 2..N (epoch 1 alone when N == 1), and which."""
        walls = [e["wall_s"] for e in self.epochs]
        if not walls:
            return None, ""
        if len(walls) == 1:
            return walls[0], "epoch 1 (with set-up)"
        return statistics.mean(b - a for a, b in zip(walls, walls[1:])), f"epochs 2..{len(walls)}"

    def images_per_s(self) -> float | None:
        """Training images per second of the training phase, epochs 2..N (epoch 1 when N == 1)."""
        ts = [e["train_s"] for e in self.epochs if e.get("train_s")]
        ts = ts[1:] if len(ts) > 1 else ts
        return self.n_train / statistics.mean(ts) if ts and self.n_train else None


def _parser():
    p = make_parser("bench train", __doc__)
    p.add_argument("--epochs", type=int, default=30, help="epochs of both trainers")
    add_img_size(p, default=256)
    p.add_argument("--images", type=int, default=448, help=f"generated images ({SPLIT} of them train)")
    p.add_argument("--data-seed", type=int, default=1, help="seed of the generated set")
    p.add_argument("--batch-size", type=int, default=16, help="batch of both trainers")
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers of both trainers")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of ours (default: the trainer's rule, every core)")
    p.add_argument("--peer-threads", type=int, default=None,
                   help="torch threads of yolov5 (default: left as yolov5 and torch set them)")
    p.add_argument("--ours", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of our recommended settings (a TrainConfig field), repeatable")
    p.add_argument("--target", type=float, default=0.9, help="the mAP@0.5 whose time is compared")
    p.add_argument("--peer-python", default=sys.executable,
                   help="the Python interpreter that runs yolov5 (one where `import yolov5` works)")
    p.add_argument("--skip-ours", action="store_true", help="run yolov5 only")
    p.add_argument("--skip-peer", action="store_true", help="run ours only")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    p.add_argument("--out", default=None, help="working directory (default: a new temporary one)")
    return p


def _value(text: str):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lstrip().startswith(("{", "[")):  # a mapping or list, e.g. arch_options={"base": 16}
        import yaml
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"--ours: cannot parse {text!r} as a YAML / JSON value: {exc}") from None
    return text


def our_settings(overrides: Sequence[str]) -> dict:
    """RECOMMENDED with each ``KEY=VALUE`` of ``--ours`` applied (values: true / false / none,
    an int, a float, a ``{...}`` / ``[...]`` mapping or list in YAML / JSON, else the text).

    Raises:
        UsageError: not KEY=VALUE, not a TrainConfig field, a field of SHARED, or a value
            TrainConfig rejects (naming it).
    """
    from torch_impl.train import TrainConfig
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = dict(RECOMMENDED)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--ours: expected KEY=VALUE, got {item!r}")
        if key in SHARED:
            raise UsageError(f"--ours: {key} is shared by both trainers or fixed by the benchmark; "
                             f"use this benchmark's own option (see --help)")
        if key not in fields:
            raise UsageError(f"--ours: {key!r} is not a TrainConfig field "
                             f"(torch_impl/train/config.py), got {item!r}")
        settings[key] = _value(text)
    try:  # a bad value fails here, before any data is written (data is checked later)
        TrainConfig(data="dataset.yaml", **settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--ours: {exc}") from None
    return settings


def _check_args(args) -> None:
    for name in ("epochs", "images", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if args.workers < 0:
        raise UsageError(f"--workers: expected >= 0, got {args.workers}")
    if args.img_size < 64 or args.img_size % 32:
        raise UsageError(f"--img-size: expected a multiple of 32, >= 64, got {args.img_size}")
    for name in ("threads", "peer_threads"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')}: expected >= 1, got {v}")
    n_train = round(args.images * SPLIT)
    if n_train < 1 or args.images - n_train < 1:
        raise UsageError(f"--images: {args.images} images split {SPLIT} leave {n_train} train / "
                         f"{args.images - n_train} val; both need one (try --images 8)")
    if args.skip_ours and args.skip_peer:
        raise UsageError("--skip-ours and --skip-peer: nothing left to run")


# ----------------------------------------------------------------------------- data

def make_data(root: Path, images: int, size: int, seed: int) -> tuple[Path, Path, list[str], int]:
    """The shapes set under ``root``: (our data-set YAML, yolov5's, class names, train images).
    yolov5 resolves a relative ``path:`` against its own package, so its YAML is absolute."""
    from ref_numpy.shared.shapes import generate
    if root.exists():
        shutil.rmtree(root)  # stale yolov5 *.cache files or a set of other arguments
    generate(root, n_images=images, size=size, seed=seed, split=SPLIT)
    names = (root / "classes.txt").read_text(encoding="utf-8").split()
    peer_yaml = root / "yolov5_data.yaml"
    peer_yaml.write_text(f"path: {json.dumps(str(root.resolve()))}\ntrain: train.txt\nval: val.txt\n"
                         f"nc: {len(names)}\nnames: {json.dumps(names)}\n", encoding="utf-8")
    n_train = sum(1 for line in (root / "train.txt").read_text(encoding="utf-8").splitlines() if line)
    return root / "dataset.yaml", peer_yaml, names, n_train


# ----------------------------------------------------------------------------- ours

def run_ours(data: Path, out: Path, args, settings: dict, n_train: int) -> Curve:
    """Our trainer on ``data`` with ``settings``; the curve from its epoch log lines and the
    training phase timed around ``train_one_epoch``."""
    import torch

    import torch_impl.train.trainer as trainer
    from torch_impl.train import TrainConfig, train

    curve = Curve("ours", n_train=n_train)
    config = TrainConfig(**{"plots": False, **settings}, data=str(data), out=str(out), exist_ok=True,
                         epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size,
                         workers=args.workers, device="cpu", threads=args.threads, quiet=True)
    stamps, train_s = {}, []
    t0 = 0.0

    def log(msg: str) -> None:
        m = _EPOCH_LINE.match(msg)
        if m:
            stamps[int(m.group(1))] = time.perf_counter() - t0
            print(f"  ours   | {msg}", flush=True)

    real = trainer.train_one_epoch

    def timed_epoch(*a, **k):
        curve.threads = torch.get_num_threads()
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            train_s.append(time.perf_counter() - t)

    trainer.train_one_epoch = timed_epoch
    try:
        t0 = time.perf_counter()
        result = train(config, log)
    finally:
        trainer.train_one_epoch = real
    wall = 0.0
    for h, ts in zip(result.history, train_s):
        wall = stamps.get(h["epoch"], wall + h["time_s"])  # the log line, else the epoch's own time
        curve.epochs.append({"epoch": h["epoch"], "wall_s": wall, "map50": h["map50"], "train_s": ts})
    if result.diverged is not None:
        curve.failed, curve.note = True, f"diverged: {result.diverged}"
    if result.final is not None:
        curve.extra["final_map50"] = result.final["map50"]
    return curve


# ----------------------------------------------------------------------------- yolov5

HARNESS = r'''"""yolov5 7.0 train.py main() from scratch, timed; written by `yolo-ref bench train`
(parity_tests/bench/train.py). usage: python yolov5_harness.py CONFIG.json

Output: progress lines on stdout; everything yolov5 prints goes to CONFIG["log"]; the timings
to CONFIG["result"] (JSON, rewritten after every epoch); the last weights (EMA, float) as a
plain state_dict to CONFIG["state_dict"]."""
import json
import os
import sys
import time
import traceback

cfg = json.load(open(sys.argv[1]))
progress = os.fdopen(os.dup(1), "w", buffering=1)
log = open(cfg["log"], "w", buffering=1)
os.dup2(log.fileno(), 1)
os.dup2(log.fileno(), 2)
state = {"epochs": [], "threads": None, "version": None, "save_dir": None, "finished": False}


def dump():
    tmp = cfg["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, cfg["result"])


try:
    import numpy as np
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # yolov5 7.0.x calls numpy.trapz (gone in NumPy 2.4)
    import torch
    _load = torch.load

    def _full_load(*a, **k):  # its checkpoints pickle whole models (weights_only=True since torch 2.6)
        k.setdefault("weights_only", False)
        return _load(*a, **k)

    torch.load = _full_load
    sys.argv = sys.argv[:1]  # parse_opt reads sys.argv
    import yolov5
    from yolov5 import train as T
    from yolov5.utils import general
    from yolov5.utils.callbacks import Callbacks
    # no network: no requirements install, no Hugging Face look-up of weights '', no font download
    T.check_requirements = lambda *a, **k: True
    T.attempt_download_from_hub = lambda *a, **k: None
    general.check_font = lambda *a, **k: None
    state["version"] = getattr(yolov5, "__version__", None)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    opt = T.parse_opt(True)
    for k, v in cfg["opt"].items():
        setattr(opt, k, v)
    n_epochs = opt.epochs
    now = {}
    callbacks = Callbacks()

    def on_train_start(*a, **k):
        state["threads"] = torch.get_num_threads()
        state["train_start_s"] = time.perf_counter() - t0

    def on_epoch_start(*a, **k):
        now["epoch_start"] = time.perf_counter()

    def on_epoch_end(*a, **k):
        now["train_s"] = time.perf_counter() - now["epoch_start"]

    def on_fit_epoch_end(vals, epoch, best_fitness, fi):
        now["map50"] = float(vals[5])  # mloss (3), then P, R, mAP@0.5, ...

    def on_model_save(last, epoch, final_epoch, best_fitness, fi):
        wall = time.perf_counter() - t0
        state["epochs"].append({"epoch": epoch + 1, "wall_s": wall, "train_s": now.get("train_s"),
                                "map50": now.get("map50")})
        dump()
        progress.write(f"epoch {epoch + 1}/{n_epochs}: mAP@0.5 {now.get('map50', float('nan')):.4f}"
                       f"  {wall:.1f} s since start\n")

    for hook, fn in (("on_train_start", on_train_start), ("on_train_epoch_start", on_epoch_start),
                     ("on_train_epoch_end", on_epoch_end), ("on_fit_epoch_end", on_fit_epoch_end),
                     ("on_model_save", on_model_save)):
        callbacks.register_action(hook, name="bench", callback=fn)
    t0 = time.perf_counter()
    T.main(opt, callbacks)
    state["finished"] = True
    state["save_dir"] = str(opt.save_dir)
    ckpt = torch.load(os.path.join(opt.save_dir, "weights", "last.pt"), map_location="cpu")
    model = ckpt.get("ema") or ckpt["model"]
    torch.save({k: v.float() for k, v in model.float().state_dict().items()}, cfg["state_dict"])
    dump()
except BaseException:
    traceback.print_exc()
    state["error"] = traceback.format_exc().strip().splitlines()[-1]
    dump()
    progress.write(f"failed: {state['error']} (see {cfg['log']})\n")
    sys.exit(1)
'''


def _peer_env() -> dict:
    env = dict(os.environ)
    env.setdefault("YOLO_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):  # yolov5 would start DDP
        env.pop(k, None)
    return env


def peer_present(python: str) -> bool:
    """``import yolov5`` would work in ``python`` (looked up, not imported)."""
    try:
        code = subprocess.run([python, "-c", "import importlib.util, sys; "
                               "sys.exit(importlib.util.find_spec('yolov5') is None)"],
                              env=_peer_env(), capture_output=True, timeout=120).returncode
    except (OSError, subprocess.SubprocessError):
        return False
    return code == 0


def run_peer(data: Path, out: Path, args, n_train: int) -> Curve:
    """yolov5's train.py main() in a subprocess of ``args.peer_python`` (see HARNESS); the curve
    from its callbacks' timestamps and its results.csv."""
    curve = Curve("yolov5", n_train=n_train)
    if out.exists():
        shutil.rmtree(out)  # yolov5 appends to an existing results.csv
    out.mkdir(parents=True)
    harness, config = out / "yolov5_harness.py", out / "harness.json"
    harness.write_text(HARNESS, encoding="utf-8")
    result_path = out / "result.json"
    cfg = {"log": str(out.parent / "yolov5.log"), "result": str(result_path),
           "state_dict": str(out / "last_state_dict.pt"), "threads": args.peer_threads,
           "opt": {"weights": "", "cfg": "yolov5n.yaml", "data": str(data), "epochs": args.epochs,
                   "batch_size": args.batch_size, "imgsz": args.img_size, "workers": args.workers,
                   "device": "cpu", "noplots": True, "exist_ok": True, "seed": 0,
                   "project": str(out), "name": "run"}}
    config.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    proc = subprocess.Popen([args.peer_python, str(harness), str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_peer_env())
    for line in proc.stdout:
        print(f"  yolov5 | {line.rstrip()}", flush=True)
    code = proc.wait()
    state = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
    curve.threads = state.get("threads")
    curve.extra["version"] = state.get("version")
    maps = _results_csv(out / "run" / "results.csv")
    for i, e in enumerate(state.get("epochs", [])):
        curve.epochs.append({**e, "map50": maps[i] if i < len(maps) else e.get("map50")})
    if code != 0 or not state.get("finished"):
        curve.failed = True
        curve.note = (f"yolov5 failed (exit {code}): {state.get('error', 'no result')}; "
                      f"see {cfg['log']}")
    elif Path(cfg["state_dict"]).exists():
        curve.extra["state_dict"] = cfg["state_dict"]
    return curve


def _results_csv(path: Path) -> list[float]:
    """metrics/mAP_0.5 of each row of yolov5's results.csv (its headers are space-padded)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    return [float(r["metrics/mAP_0.5"]) for r in rows if r.get("metrics/mAP_0.5")]


def port_map50(state_dict: str, data: Path, names: list[str], img_size: int, batch: int) -> float:
    """mAP@0.5 of an official YOLOv5n state_dict by the port's evaluator on ``data``'s val split
    (imported with torch_impl.models.import_yolov5, validated like our trainer validates)."""
    import torch

    from torch_impl.data import DetectionDataset, collate_fn
    from torch_impl.models import import_yolov5
    from torch_impl.train.engine import validate
    from torch_impl.train.inference import load_model
    dst = Path(state_dict).with_name("last_port.pt")
    import_yolov5(state_dict, dst, variant="n", nc=len(names), names=names)
    model, _ = load_model(dst, "cpu")
    val = DetectionDataset.from_yaml(data, "val", img_size=img_size, augment=False)
    loader = torch.utils.data.DataLoader(val, batch_size=batch * 2, shuffle=False, collate_fn=collate_fn)
    return float(validate(model, loader, "cpu")["map50"])


# ----------------------------------------------------------------------------- report

def _ratio(ours: Curve, peer: Curve, target: float) -> tuple[str, bool | None]:
    """ours / yolov5 time to ``target`` as text (a bound when one side never got there) and
    whether it meets GOAL_TIME_TO_TARGET (None: unknown)."""
    a, b = ours.time_to(target), peer.time_to(target)
    if not ours.epochs or not peer.epochs:
        return "", None
    if a and b:
        r = a[1] / b[1]
        return f"{r:.2f}", r <= GOAL_TIME_TO_TARGET
    if a:  # yolov5 would need more than its whole run
        r = a[1] / peer.epochs[-1]["wall_s"]
        return f"< {r:.2f}", True if r <= GOAL_TIME_TO_TARGET else None
    if b:
        r = ours.epochs[-1]["wall_s"] / b[1]
        return f"> {r:.2f}", False if r >= GOAL_TIME_TO_TARGET else None
    return "neither reached", None


def _met(m: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[m]


def _models(settings: dict) -> str:
    """What was trained: "YOLOv5n" for both, or ours' architecture and model beside yolov5's
    YOLOv5n (``--ours arch=yolov8 --ours model=n``)."""
    arch, model = settings.get("arch", "yolov5"), settings.get("model", "n")
    if arch == "yolov5" and model == "n" and not settings.get("arch_options"):
        return "YOLOv5n"
    opts = settings.get("arch_options")
    ours = f"--arch {arch} --model {model}" + (f" {opts}" if opts else "")
    return f"ours {ours}, yolov5 YOLOv5n"


def report(ours: Curve | None, peer: Curve | None, args, settings: dict,
           n_train: int) -> tuple[list[str], list[bool | None]]:
    """The Markdown lines (the set-up, both curves, the summary with ratios and goals) and
    whether each goal was met (None: not measured or unknown)."""
    lines = [f"Training benchmark: {args.images} shapes images ({n_train} train / {args.images - n_train} "
             f"val, seed {args.data_seed}), {args.img_size} px, batch {args.batch_size}, {args.epochs} "
             f"epochs, {args.workers} loader worker(s), CPU, from scratch: {_models(settings)}.", ""]
    if ours is not None:
        lines.append("ours: torch_impl.train, " + ", ".join(f"{k} {v}" for k, v in settings.items())
                     + f"; torch threads {ours.threads}")
    if peer is not None and (peer.epochs or peer.failed):
        v = peer.extra.get("version")
        lines.append(f"yolov5: {'yolov5 ' + v if v else 'yolov5'} train.py, yolov5n.yaml, hyp.scratch-low "
                     f"(SGD lr0 0.01, nominal batch 64); torch threads {peer.threads}")
    lines.append("")
    curves = [c for c in (ours, peer) if c is not None and c.epochs]
    if curves:
        head = "| epoch | " + " | ".join(f"{c.name} wall (s) | {c.name} mAP@0.5" for c in curves) + " |"
        lines += [head, "| --- |" + " --- | --- |" * len(curves)]
        for i in range(max(len(c.epochs) for c in curves)):
            cells = []
            for c in curves:
                e = c.epochs[i] if i < len(c.epochs) else None
                cells += ([f"{e['wall_s']:.1f}", f"{e['map50']:.3f}" if e["map50"] is not None else ""]
                          if e else ["", ""])
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        lines.append("")
    both = ours is not None and peer is not None and ours.epochs and peer.epochs

    def reached(c: Curve | None) -> str:
        if c is None:
            return "skipped"
        if not c.epochs:
            return c.note or "no epochs"
        t = c.time_to(args.target)
        return f"{t[1]:.0f} s (epoch {t[0]})" if t else f"not reached in {len(c.epochs)} epochs"

    def cell(c: Curve | None, fn) -> str:
        if c is None:
            return "skipped"
        v = fn(c) if c.epochs else None
        return "" if v is None else f"{v:.1f}"

    lines += ["| measure | ours | yolov5 | ours / yolov5 | goal | met |", "| --- | --- | --- | --- | --- | --- |"]
    text, met = _ratio(ours, peer, args.target) if both else ("", None)
    lines.append(f"| time to mAP@0.5 >= {args.target} | {reached(ours)} | {reached(peer)} | {text} | "
                 f"<= {GOAL_TIME_TO_TARGET} | {_met(met)} |")
    which = (ours if ours is not None and ours.epochs else peer)
    span = which.epoch_seconds()[1] if which is not None and which.epochs else ""
    so = ours.epoch_seconds()[0] if ours is not None and ours.epochs else None
    sp = peer.epoch_seconds()[0] if peer is not None and peer.epochs else None
    r = so / sp if so and sp else None
    mets = [met, None if r is None else r <= GOAL_EPOCH]
    lines.append(f"| seconds per epoch, train + val ({span}) | {cell(ours, lambda c: c.epoch_seconds()[0])} | "
                 f"{cell(peer, lambda c: c.epoch_seconds()[0])} | {'' if r is None else f'{r:.2f}'} | "
                 f"<= {GOAL_EPOCH} | {_met(mets[1])} |")
    lines.append(f"| epoch 1 with set-up, seconds | {cell(ours, lambda c: c.epochs[0]['wall_s'])} | "
                 f"{cell(peer, lambda c: c.epochs[0]['wall_s'])} | | | |")
    io, ip = (c.images_per_s() if c is not None and c.epochs else None for c in (ours, peer))
    lines.append(f"| training images / s (training phase; ratio: of s per image) | "
                 f"{cell(ours, lambda c: c.images_per_s())} | "
                 f"{cell(peer, lambda c: c.images_per_s())} | {f'{ip / io:.2f}' if io and ip else ''} "
                 f"| | |")
    if ours is not None and ours.extra.get("final_map50") is not None and peer is not None \
            and peer.extra.get("port_map50") is not None:
        lines.append(f"| last epoch mAP@0.5, port's evaluator | {ours.extra['final_map50']:.3f} | "
                     f"{peer.extra['port_map50']:.3f} | | | |")
    for c in (ours, peer):
        if c is not None and c.note:
            lines += ["", f"{c.name}: {c.note}"]
    return lines, mets


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)
    settings = our_settings(args.ours) if not args.skip_ours else {}
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_train_"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"bench train: working in {root}", flush=True)
    ours = peer = None
    peer_ok = not args.skip_peer and peer_present(args.peer_python)
    if not args.skip_peer and not peer_ok:
        print(f"yolov5: {PEER_ABSENT} (looked in {args.peer_python})", flush=True)
        peer = Curve("yolov5", note=PEER_ABSENT)
    if args.skip_ours and not peer_ok:
        return EXIT_OK
    data, peer_yaml, names, n_train = make_data(root / "shapes", args.images, args.img_size, args.data_seed)
    if not args.skip_ours:
        ours = run_ours(data, root / "ours", args, settings, n_train)
    if peer_ok:
        peer = run_peer(peer_yaml, root / "yolov5", args, n_train)
        if peer.extra.get("state_dict"):
            try:
                peer.extra["port_map50"] = port_map50(peer.extra["state_dict"], data, names,
                                                      args.img_size, args.batch_size)
            except (ValueError, RuntimeError, OSError) as exc:
                peer.note = f"its last weights could not be evaluated by the port: {exc}"
    lines, mets = report(ours, peer, args, settings, n_train)
    print("\n" + "\n".join(lines))
    summary = {"args": vars(args), "settings": settings,
               "curves": [dataclasses.asdict(c) for c in (ours, peer) if c is not None]}
    (root / "bench_train.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    failed = any(c is not None and c.failed for c in (ours, peer))
    missed = args.strict and any(m is False for m in mets)
    return EXIT_CHECK_FAILED if failed or missed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench train`` (see the module docstring); bad input exits with code 2."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
