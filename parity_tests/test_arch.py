"""The architecture registry (:mod:`torch_impl.arch`): every registered architecture keeps the
engine's contract (training output -> loss (total, items), eval output (decoded, raw) ->
postprocess rows, checkpoint config -> the same model), names resolve (aliases, old
checkpoints' ``head``), and a bad name is one line listing the registered ones."""
import math

import pytest
import torch

from parity_tests.tolerances import EXACT, assert_parity
from torch_impl.arch import (ARCHITECTURES, Architecture, arch_of_config, arch_of_model,
                             get_arch, register)
from torch_impl.cli import train as train_cli
from torch_impl.models import yolov5, yolov5_anchor_free
from torch_impl.train import TrainConfig


def test_the_builtin_architectures_are_registered_and_names_resolve():
    assert {"yolov5", "yolov5-anchor-free", "yolov8"} <= set(ARCHITECTURES)
    assert get_arch("anchor-free") is get_arch("yolov5-anchor-free")
    assert get_arch(get_arch("yolov8")) is get_arch("yolov8")
    with pytest.raises(ValueError, match=r"^arch \(--arch\): unknown architecture 'q'; "
                                         r"registered: .*yolov5, .*yolov8"):
        get_arch("q")
    with pytest.raises(ValueError, match="registered already"):
        register(get_arch("yolov5"))
    # files written before the registry have no "arch": YOLOv5, or the anchor-free head
    assert arch_of_config({"nc": 3, "depth_multiple": 0.33}).name == "yolov5"
    assert arch_of_config({"nc": 3, "head": "anchor-free"}).name == "yolov5-anchor-free"
    assert arch_of_config({"arch": "yolov8"}).name == "yolov8"
    assert arch_of_model(yolov5("n", nc=2)).name == "yolov5"
    assert arch_of_model(yolov5_anchor_free("n", nc=2)).name == "yolov5-anchor-free"
    with pytest.raises(ValueError, match="no registered architecture"):
        arch_of_model(torch.nn.Linear(2, 2))


def _targets(bs: int) -> torch.Tensor:
    # (image, class, cx, cy, w, h) normalised: two boxes in image 0, one in the last image
    return torch.tensor([[0, 0, 0.3, 0.3, 0.3, 0.4], [0, 1, 0.7, 0.6, 0.4, 0.3],
                         [bs - 1, 2, 0.5, 0.5, 0.6, 0.5]])


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_keeps_the_engine_contract(name):
    arch = get_arch(name)
    assert isinstance(arch, Architecture)
    torch.manual_seed(0)
    model = arch.build(3, arch.default_variant)
    assert arch_of_model(model) is arch and isinstance(model, arch.model_types)
    s = arch.example_img_size
    x = torch.rand(2, 3, s, s)
    hyp = arch.prepare_hyp(_hyp(), model, 3, s)
    loss = arch.make_loss(model, hyp)
    model.train()
    preds = model(x)
    total, items = loss(preds, _targets(2), x)
    assert total.ndim == 0 and math.isfinite(float(total.detach()))
    assert items.shape == (len(arch.loss_names),) and torch.isfinite(items).all()
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # a non-finite prediction: a non-finite total for the NaN check, not an exception
    bad = [p.detach().clone() for p in preds] if isinstance(preds, (list, tuple)) \
        else preds.detach().clone()
    (bad[0] if isinstance(bad, list) else bad).fill_(float("nan"))
    assert not math.isfinite(float(loss(bad, _targets(2), x)[0].detach()))
    # eval: (decoded, raw); raw is what the loss takes; postprocess gives [n, 6] rows per image
    model.eval()
    with torch.no_grad():
        decoded, raw = model(x)
        total_eval, _ = loss(raw, _targets(2), x)
    assert math.isfinite(float(total_eval))
    dets = arch.postprocess(decoded, 0.0, 0.6, 7)
    assert len(dets) == 2 and all(d.ndim == 2 and d.shape[1] == 6 and len(d) <= 7 for d in dets)
    assert all(((d[:, 5] >= 0) & (d[:, 5] < 3)).all() for d in dets)
    # the checkpoint's model_cfg rebuilds the same model (layout and outputs)
    cfg = arch.checkpoint_config(model, 3)
    assert cfg["arch"] == arch.name and cfg["nc"] == 3
    again = get_arch(cfg["arch"]).load(cfg, model.state_dict()).eval()
    with torch.no_grad():
        assert_parity(again(x)[0], decoded, name=f"arch.{name}.reload", tol=EXACT)
    assert arch.csv_fields[1:1 + len(arch.loss_names)] == tuple(
        f"train/{k}_loss" for k in arch.loss_names)


def _hyp() -> dict:
    from torch_impl.train.optim import HYP_SCRATCH_LOW
    return dict(HYP_SCRATCH_LOW)


def test_train_config_resolves_arch_model_and_head():
    c = TrainConfig(data="d.yaml")
    assert (c.arch, c.model, c.head) == ("yolov5", "n", "anchor")
    # --head anchor-free is the alias of --arch yolov5-anchor-free, and back (old checkpoints)
    for kw in ({"head": "anchor-free"}, {"arch": "anchor-free"}, {"arch": "yolov5-anchor-free"}):
        c = TrainConfig(data="d.yaml", **kw)
        assert (c.arch, c.head) == ("yolov5-anchor-free", "anchor-free"), kw
    assert TrainConfig(data="d.yaml", arch="yolov8", model="x").model == "x"
    for kw, field in [({"arch": "q"}, "arch"), ({"arch": "yolov8", "model": "q"}, "model"),
                      ({"arch": "yolov8", "head": "anchor-free"}, "head"),
                      ({"arch": "yolov8", "freeze": 23}, "freeze"),
                      ({"freeze": 25}, "freeze"), ({"arch_options": [1]}, "arch_options")]:
        with pytest.raises(ValueError, match=rf"^{field} \(--{field.replace('_', '-')}\)"):
            TrainConfig(data="d.yaml", **kw)
    # the CLI: --arch, --model, --arch-option KEY=VALUE (a YAML value)
    args = train_cli.build_parser().parse_args(
        ["--data", "d.yaml", "--arch", "yolov8", "--model", "s", "--arch-option", "reg_max=8"])
    c = train_cli.config_from_args(args)
    assert (c.arch, c.model, c.arch_options) == ("yolov8", "s", {"reg_max": 8})
    assert train_cli.main(["--data", "d.yaml", "--arch-option", "novalue"]) == 2
