"""Convert an official YOLOv5 v7.0 state_dict into a torch_impl.models.YOLOv5 checkpoint.

The input must be a plain dict of tensors saved with torch.save (it is read with
weights_only=True, so no code from the file runs). Official training checkpoints pickle the
whole nn.Module and cannot be read without the yolov5 code; in a yolov5 checkout save the
weights first:

    python -c "import torch; m = torch.load('yolov5s.pt', weights_only=False)['model']; \\
torch.save(m.float().state_dict(), 'yolov5s_sd.pt')"

Exit codes: 0 converted; 1 the weights do not fit the requested model (wrong variant, nc,
anchors); 3 the input cannot be read or is not a state_dict; 2 bad arguments (argparse).
"""
from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Mapping

import torch

from torch_impl.models import VARIANTS, load_yolov5_state_dict, yolov5

EXAMPLES = """examples:
  python scripts/import_yolov5.py yolov5s_sd.pt yolov5s_ours.pt --variant s
  python scripts/import_yolov5.py best_sd.pt ours.pt --variant n --nc 3
  python scripts/import_yolov5.py sd.pt ours.pt --variant s --depth-multiple 0.5 --width-multiple 0.5

The output is a dict {"state_dict": <our model's state_dict>, "config": {"variant", "nc",
"na", "depth_multiple", "width_multiple", "anchors_pixels"}}; rebuild with
torch_impl.models.yolov5(**...) and model.load_state_dict(ckpt["state_dict"]).
"""

SAVE_HINT = ("it holds pickled Python objects (e.g. the official checkpoint's nn.Module under "
             "'model'), which cannot be loaded without the yolov5 code. In a yolov5 checkout run:\n"
             "  ckpt = torch.load('IN.pt', weights_only=False); "
             "torch.save(ckpt['model'].float().state_dict(), 'IN_sd.pt')\n"
             "and convert IN_sd.pt instead.")


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="official state_dict (.pt, a dict of tensors)")
    p.add_argument("output", help="where to save ours")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="s", help="n, s, m, l or x (default s)")
    p.add_argument("--nc", type=int, default=None,
                   help="number of classes (default: read from model.24.m.0.weight)")
    p.add_argument("--depth-multiple", type=float, default=None, help="override the variant's")
    p.add_argument("--width-multiple", type=float, default=None, help="override the variant's")
    return p.parse_args(argv)


class _InputError(Exception):
    """The input file cannot be read or is not a state_dict (exit code 3)."""


def _read_state_dict(path: str) -> Mapping:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln]
        detail = detail[0] if detail else str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _InputError(f"{path}: cannot be read with weights_only=True: {SAVE_HINT}\n({detail})") from None
    except (OSError, RuntimeError, EOFError) as e:
        raise _InputError(f"{path}: cannot be read: {e}") from None
    if isinstance(obj, Mapping) and "model" in obj and not isinstance(obj["model"], torch.Tensor):
        obj = obj["model"]  # {"model": state_dict, ...}
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise _InputError(f"{path}: expected a dict of tensors (a state_dict), got {type(obj).__name__}")
    return obj


def _fail(message: str, code: int) -> int:
    print(f"import_yolov5: error: {message}", file=sys.stderr)
    return code


def _anchors_per_level(sd: Mapping) -> torch.Tensor | None:
    for key in ("model.24.anchors", "24.anchors"):
        if key in sd:
            return sd[key].float()
    return None


def main(argv=None) -> int:
    args = _parse(argv)
    try:
        sd = _read_state_dict(args.input)
    except _InputError as e:
        return _fail(str(e), 3)
    anchors_gu = _anchors_per_level(sd)
    na = anchors_gu.shape[1] if anchors_gu is not None and anchors_gu.ndim == 3 else 3
    nc = args.nc
    if nc is None:
        w = sd.get("model.24.m.0.weight", sd.get("24.m.0.weight"))
        if w is None or w.shape[0] % na or w.shape[0] // na <= 5:
            return _fail("cannot infer nc from model.24.m.0.weight; pass --nc", 1)
        nc = w.shape[0] // na - 5
    anchors = None
    if anchors_gu is not None and anchors_gu.ndim == 3 and anchors_gu.shape[0] == 3:
        anchors = (anchors_gu * torch.tensor([8.0, 16.0, 32.0]).view(-1, 1, 1)).tolist()
    try:
        model = yolov5(args.variant, nc=nc, anchors=anchors, depth_multiple=args.depth_multiple,
                       width_multiple=args.width_multiple)
        load_yolov5_state_dict(model, sd)
    except ValueError as e:
        return _fail(str(e), 1)
    config = {"variant": args.variant, "nc": nc, "na": model.na,
              "depth_multiple": model.depth_multiple, "width_multiple": model.width_multiple,
              "anchors_pixels": model.anchors_pixels.tolist()}
    torch.save({"state_dict": model.state_dict(), "config": config}, args.output)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"converted {args.input} -> {args.output}: yolov5{args.variant}, nc={nc}, "
          f"{n_params:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
