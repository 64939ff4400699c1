"""The four experiments of "YOLOv1 from Scratch" (``shared/reference/seed_systems.md`` B) on a
generated shapes set, through ``yolo-ref train --arch yolov1``.

1. from scratch: the darknet-style backbone, the v1 loss;
2. the focal no-object term ``Ĉ^γ Ĉ²`` (γ = 2, ``loss=v1-focal``): the background gradient
   vanishes for small Ĉ, the confidences collapse and mAP goes to ~0 (the write-up: 0.0000);
3. a frozen "pretrained" ResNet-18 backbone, where pretrained = trained beforehand by this
   toolkit (a YOLOv1 run on a DIFFERENT generated set, seed + 1000; its backbone saved in
   torchvision's key layout and loaded from that file, as a torchvision weights file would be);
4. the same backbone fully fine-tuned at a low LR with a tiny batch (batch 2), (a) with BatchNorm
   training, (b) with frozen BN (``freeze_bn``, the cure the write-up points to).

Prints a table: experiment, mAP@0.5 (best epoch, COCO-style 101-point AP of the engine's
validation) and the mean of each validation image's highest decoded confidence (the collapse
shows as ~0). Small settings by default (~10 minutes on 2 CPU cores); the write-up's absolute
figures (VOC, 448 px, 135 epochs) are not the point, the ordering is.

examples:
  yolo-ref bench yolov1
  yolo-ref bench yolov1 --epochs 20 --images 96 --img-size 160
  yolo-ref bench yolov1 --only 1 2

Exit codes: 0 done; 2 bad arguments.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ref_numpy.shared.cli import EXIT_OK, add_img_size, make_parser, run

EXPERIMENTS = ("1", "2", "3", "4a", "4b")


def _parser():
    p = make_parser("bench yolov1", __doc__)
    add_img_size(p, default=128)
    p.add_argument("--images", type=int, default=48, help="generated images per set (3/4 train)")
    p.add_argument("--epochs", type=int, default=12, help="epochs of every run (the pre-training too)")
    p.add_argument("--S", type=int, default=4, help="YOLOv1 grid size")
    p.add_argument("--seed", type=int, default=0, help="data set and training seed")
    p.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=None, help="run only these experiments")
    p.add_argument("--out", default=None, help="working directory (default: a temporary one)")
    return p


def _data(root: Path, n: int, seed: int) -> Path:
    from ref_numpy.shared.shapes import generate
    generate(root, n_images=n, size=256, seed=seed)
    lines = sorted(str(p.resolve()) for p in (root / "images").glob("*.jpg"))
    k = round(len(lines) * 0.75)
    (root / "tr.txt").write_text("\n".join(lines[:k]) + "\n")
    (root / "va.txt").write_text("\n".join(lines[k:]) + "\n")
    names = (root / "classes.txt").read_text().split() if (root / "classes.txt").exists() else \
        ["rectangle", "ellipse", "triangle"]
    y = root / "bench.yaml"
    y.write_text(f"train: {root / 'tr.txt'}\nval: {root / 'va.txt'}\nnc: {len(names)}\nnames: {names}\n")
    return y


def _train(data: Path, out: Path, args, opts: dict, lr0: float, batch: int):
    from torch_impl.train import TrainConfig, train
    return train(TrainConfig(
        data=str(data), arch="yolov1", arch_options={"S": args.S, "B": 2, **opts}, img_size=args.img_size,
        epochs=args.epochs, batch_size=batch, nbs=batch, optimizer="AdamW", lr0=lr0, lrf=0.1, cos_lr=True,
        warmup_epochs=0, weight_decay=0, augment=False, seed=args.seed, workers=0, threads=1, device="cpu",
        quiet=True, plots=False, out=str(out), exist_ok=True))


def _mean_top_conf(weights: Path, data: Path, img_size: int) -> float:
    """Mean over validation images of the highest decoded confidence of the run's last weights."""
    import torch
    from torch_impl.data import DetectionDataset
    from torch_impl.train.inference import load_model
    model, _ = load_model(weights, "cpu")
    model.eval()
    lines = Path(str(data).replace("bench.yaml", "va.txt"))
    ds = DetectionDataset(lines, img_size=img_size)
    tops = []
    with torch.no_grad():
        for i in range(len(ds)):
            img = ds[i][0].float()[None] / 255
            decoded, _ = model(img)
            tops.append(float(decoded[0, :, 4].max()))
    return sum(tops) / max(len(tops), 1)


def _best_map50(result) -> float:
    return max((h.get("map50", 0.0) for h in result.history), default=0.0)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    wanted = set(args.only or EXPERIMENTS)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="yolov1_bench_"))
    data = _data(root / "shapes", args.images, args.seed)
    rows = []

    def record(name: str, result, out: Path, t0: float) -> None:
        conf = _mean_top_conf(out / "weights" / "last.pt", data, args.img_size)
        rows.append((name, _best_map50(result), conf, time.time() - t0))
        print(f"  {name}: mAP@0.5 {rows[-1][1]:.4f}, mean top conf {conf:.4f} ({rows[-1][3]:.0f} s)", flush=True)

    if "1" in wanted:
        t0 = time.time()
        record("1 from scratch (darknet, v1 loss)", _train(data, root / "e1", args, {}, 2e-3, 4), root / "e1", t0)
    if "2" in wanted:
        t0 = time.time()
        record("2 focal no-object term (γ = 2)", _train(data, root / "e2", args, {"loss": "v1-focal"}, 2e-3, 4),
               root / "e2", t0)
    if wanted & {"3", "4a", "4b"}:
        import torch
        t0 = time.time()
        other = _data(root / "shapes_pretrain", args.images, args.seed + 1000)
        pre = _train(other, root / "pretrain", args, {"backbone": "resnet18"}, 1e-3, 4)
        from torch_impl.train.inference import load_model
        model, _ = load_model(pre.last if getattr(pre, "last", None) else root / "pretrain" / "weights" / "last.pt")
        weights = root / "resnet18_pretrained.pth"
        torch.save(model.backbone.state_dict(), weights)  # torchvision's key layout
        print(f"  pre-training on another set: mAP@0.5 {_best_map50(pre):.4f} ({time.time() - t0:.0f} s)", flush=True)
        common = {"backbone": "resnet18", "backbone_weights": str(weights)}
        if "3" in wanted:
            t0 = time.time()
            record("3 pretrained ResNet-18, frozen", _train(data, root / "e3", args,
                                                             {**common, "freeze_backbone": True}, 2e-3, 4),
                   root / "e3", t0)
        if "4a" in wanted:
            t0 = time.time()
            record("4a fine-tuned, lr 1e-4, batch 2", _train(data, root / "e4a", args, common, 1e-4, 2),
                   root / "e4a", t0)
        if "4b" in wanted:
            t0 = time.time()
            record("4b fine-tuned, lr 1e-4, batch 2, frozen BN",
                   _train(data, root / "e4b", args, {**common, "freeze_bn": True}, 1e-4, 2), root / "e4b", t0)
    print(f"\nYOLOv1 experiments: {args.images} generated images ({args.img_size} px, S = {args.S}, B = 2), "
          f"{args.epochs} epochs each")
    print(f"| {'experiment':<44} | mAP@0.5 | mean top conf | time |")
    print(f"|{'-' * 46}|---------|---------------|------|")
    for name, m, c, t in rows:
        print(f"| {name:<44} | {m:7.4f} | {c:13.4f} | {t:3.0f} s |")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``yolo-ref bench yolov1`` (see the module docstring); bad input exits with code 2."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
