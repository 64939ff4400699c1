"""YOLOv5 v7.0 models (torch only, no NumPy reference): parameter counts of n/s/m/l/x, output
shapes, bias init, the eval-mode decode against :func:`torch_impl.coder.yolov5_decode`, the
official state_dict layout and its import/export, the anchor-free head, and
``torch_impl.models.import_yolov5`` with its CLI ``yolo-ref import-yolov5``.

Expensive cases use small inputs (64-160 px); only yolov5n runs once at 640.
"""
import gc
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parity_tests.tolerances import EXACT, assert_parity
from ref_numpy.cli import main as yolo_ref
from ref_numpy.shared.cli import EXIT_USAGE
from torch_impl import coder
from torch_impl.cli import import_yolov5 as import_cli
from torch_impl.models import (DEFAULT_ANCHORS, YOLOv5, import_yolov5, import_yolov5_state_dict,
                               load_yolov5_state_dict, read_yolov5_state_dict, to_yolov5_state_dict,
                               yolov5, yolov5_anchor_free)

ROOT = Path(__file__).resolve().parents[1]

# Counted from the official model definitions (yolo_conventions.md), nc = 80.
OFFICIAL_PARAMS = {"n": 1_872_157, "s": 7_235_389, "m": 21_190_557, "l": 46_563_709, "x": 86_749_405}


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _tiny(nc=3, **kw) -> YOLOv5:
    """A small custom-size model for fast property tests."""
    return yolov5(None, nc=nc, depth_multiple=0.33, width_multiple=0.125, **kw)


@torch.no_grad()
def _randomize(model, seed: int):
    """Every parameter and BN statistic away from its init, so a mis-mapped tensor shows.
    Vectors (BN scale, shift, mean, var; biases) and anchors stay positive."""
    g = torch.Generator().manual_seed(seed)
    for k, t in model.state_dict().items():
        if t.is_floating_point():
            positive = t.ndim == 1 or k.endswith("anchors")
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if positive else
                    torch.randn(t.shape, generator=g) * 0.1)
    return model


# ----------------------------------------------------------------------------- architecture

@pytest.mark.parametrize("variant", list(OFFICIAL_PARAMS))
def test_parameter_counts_match_official(variant):
    model = yolov5(variant)
    count = _n_params(model)
    del model
    gc.collect()
    assert count == OFFICIAL_PARAMS[variant], f"yolov5{variant}: {count:,} vs {OFFICIAL_PARAMS[variant]:,}"


def test_yolov5n_at_640_shapes():
    model = yolov5("n").eval()
    with torch.no_grad():
        decoded, raw = model(torch.zeros(1, 3, 640, 640))
    assert [tuple(r.shape) for r in raw] == [(1, 3, 80, 80, 85), (1, 3, 40, 40, 85), (1, 3, 20, 20, 85)]
    assert tuple(decoded.shape) == (1, 25200, 85)


@pytest.mark.parametrize("variant", ["s", "m"])
def test_variant_training_shapes_small_input(variant):
    model = yolov5(variant, nc=80)
    with torch.no_grad():
        raw = model(torch.zeros(1, 3, 64, 96))
    assert [tuple(r.shape) for r in raw] == [(1, 3, 8, 12, 85), (1, 3, 4, 6, 85), (1, 3, 2, 3, 85)]


@settings(max_examples=6)
@given(nc=st.integers(1, 7), bs=st.integers(1, 2), h=st.sampled_from([64, 128]),
       w=st.sampled_from([32, 96, 160]), train=st.booleans())
@example(nc=1, bs=1, h=32, w=32, train=False)  # one P5 cell (training BN needs > 1 value)
def test_output_shapes_any_nc_and_size(nc, bs, h, w, train):
    model = _tiny(nc=nc).train(train)
    with torch.no_grad():
        out = model(torch.rand(bs, 3, h, w))
    raw = out if train else out[1]
    expected = [(bs, 3, h // s, w // s, 5 + nc) for s in (8, 16, 32)]
    assert [tuple(r.shape) for r in raw] == expected
    if not train:
        assert tuple(out[0].shape) == (bs, sum(3 * (h // s) * (w // s) for s in (8, 16, 32)), 5 + nc)


def test_custom_multiples_and_channels():
    # width 0.5 / depth 0.33 given explicitly is yolov5s; ch=1 removes 2 * 32 * 6 * 6 stem weights.
    assert _n_params(yolov5(None, depth_multiple=0.33, width_multiple=0.5)) == OFFICIAL_PARAMS["s"]
    assert _n_params(yolov5("s", ch=1)) == OFFICIAL_PARAMS["s"] - 2 * 32 * 6 * 6
    # nc changes only the head: 3 levels x 3 anchors x (dnc) x (c_in + 1), c_in = 64, 128, 256 for n.
    assert _n_params(yolov5("n", nc=3)) == OFFICIAL_PARAMS["n"] - 3 * 77 * (64 + 128 + 256 + 3)


def test_strides_and_anchors():
    model = yolov5("n")
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    pixels = torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32)
    assert torch.equal(model.anchors_grid_units, pixels / torch.tensor([8.0, 16.0, 32.0]).view(-1, 1, 1))
    assert_parity(model.anchors_pixels, pixels, name="models.yolov5", tol=EXACT)
    # Four anchors per level, flat yaml style.
    four = [[10, 13, 16, 30, 33, 23, 20, 20], [30, 61, 62, 45, 59, 119, 40, 40],
            [116, 90, 156, 198, 373, 326, 200, 200]]
    m4 = _tiny(nc=2, anchors=four)
    assert m4.na == 4 and tuple(m4.anchors_grid_units.shape) == (3, 4, 2)
    with torch.no_grad():
        raw = m4(torch.zeros(1, 3, 64, 64))
    assert tuple(raw[0].shape) == (1, 4, 8, 8, 7)


def test_bias_init():
    for nc in (80, 1, 5):
        model = yolov5("n", nc=nc)
        for conv, s in zip(model.head.m, (8, 16, 32)):
            b = conv.bias.detach().view(3, 5 + nc)
            bound = 1 / math.sqrt(conv.in_channels)  # PyTorch's default uniform bias init
            obj = b[:, 4] - math.log(8 / (640 / s) ** 2)
            cls = b[:, 5:] - math.log(0.6 / (nc - 0.99999))
            box = b[:, :4]
            assert obj.abs().max() <= bound and cls.abs().max() <= bound and box.abs().max() <= bound


def test_bad_arguments_raise():
    model = _tiny()
    with pytest.raises(ValueError, match="x"):
        model(torch.zeros(1, 3, 48, 64))  # not a multiple of 32
    with pytest.raises(ValueError, match="x"):
        model(torch.zeros(1, 1, 64, 64))  # wrong channels
    with pytest.raises(ValueError, match="variant"):
        yolov5("q")
    with pytest.raises(ValueError, match="variant"):
        yolov5(None, depth_multiple=0.33)
    with pytest.raises(ValueError, match="width_multiple"):
        yolov5("s", width_multiple=0)
    with pytest.raises(ValueError, match="nc"):
        yolov5("n", nc=0)
    with pytest.raises(ValueError, match="anchors"):
        yolov5("n", anchors=[[10, 13, 16]])
    with pytest.raises(ValueError, match="anchors"):
        yolov5("n", anchors=[[10, -13]] * 3)


# ----------------------------------------------------------------------------- decode

# Randomised whole models: fixed seeds rather than Hypothesis (shrinking a model is slow and
# the seed is the only input).
@pytest.mark.parametrize("seed,h,w", [(0, 32, 64), (1, 64, 96), (2, 64, 64)])
def test_eval_decode_matches_coder(seed, h, w):
    """Eval output = YOLOv5 Detect decode: (cx, cy, w, h) that convert to coder.yolov5_decode's
    xyxy, then σ(obj), σ(cls)."""
    model = _randomize(_tiny(nc=2), seed).double().eval()
    x = torch.rand(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        decoded, raw = model(x)
    expected = []
    for i, (r, s) in enumerate(zip(raw, (8, 16, 32))):
        ny, nx = r.shape[2:4]
        grid = coder.make_grid(ny, nx).view(1, 1, ny, nx, 2)
        anchors = model.anchors_pixels[i].view(1, 3, 1, 1, 2)
        xyxy = coder.yolov5_decode(r[..., :4], grid, anchors, float(s))
        expected.append(torch.cat((xyxy, r[..., 4:].sigmoid()), -1).reshape(2, -1, 7))
    expected = torch.cat(expected, 1)
    cxcy, wh = decoded[..., :2], decoded[..., 2:4]
    got = torch.cat((cxcy - wh / 2, cxcy + wh / 2, decoded[..., 4:]), -1)
    assert_parity(got, expected, name="coder.yolov5_decode", dtype="float64")


# ----------------------------------------------------------------------------- state_dict

def _official_yolov5n_keys(nc=80):
    """The official v7.0 yolov5n state_dict layout (key, shape), derived by hand from
    yolov5n.yaml (depth 0.33, width 0.25) and models/common.py, independently of our builder."""
    keys = []

    def conv(p, c1, c2, k):
        keys.extend([(f"{p}.conv.weight", (c2, c1, k, k)), (f"{p}.bn.weight", (c2,)),
                     (f"{p}.bn.bias", (c2,)), (f"{p}.bn.running_mean", (c2,)),
                     (f"{p}.bn.running_var", (c2,)), (f"{p}.bn.num_batches_tracked", ())])

    def c3(p, c1, c2, n):
        h = c2 // 2
        conv(f"{p}.cv1", c1, h, 1)
        conv(f"{p}.cv2", c1, h, 1)
        conv(f"{p}.cv3", 2 * h, c2, 1)
        for j in range(n):
            conv(f"{p}.m.{j}.cv1", h, h, 1)
            conv(f"{p}.m.{j}.cv2", h, h, 3)

    # layer: (kind, c1, c2, k or n)
    layers = {0: ("conv", 3, 16, 6), 1: ("conv", 16, 32, 3), 2: ("c3", 32, 32, 1),
              3: ("conv", 32, 64, 3), 4: ("c3", 64, 64, 2), 5: ("conv", 64, 128, 3),
              6: ("c3", 128, 128, 3), 7: ("conv", 128, 256, 3), 8: ("c3", 256, 256, 1),
              9: ("sppf", 256, 256, 0), 10: ("conv", 256, 128, 1), 13: ("c3", 256, 128, 1),
              14: ("conv", 128, 64, 1), 17: ("c3", 128, 64, 1), 18: ("conv", 64, 64, 3),
              20: ("c3", 128, 128, 1), 21: ("conv", 128, 128, 3), 23: ("c3", 256, 256, 1)}
    for i, (kind, c1, c2, k) in layers.items():
        if kind == "conv":
            conv(f"model.{i}", c1, c2, k)
        elif kind == "c3":
            c3(f"model.{i}", c1, c2, k)
        else:
            conv(f"model.{i}.cv1", c1, c1 // 2, 1)
            conv(f"model.{i}.cv2", c1 // 2 * 4, c2, 1)
    keys.append(("model.24.anchors", (3, 3, 2)))
    for j, c in enumerate((64, 128, 256)):
        keys.extend([(f"model.24.m.{j}.weight", (3 * (5 + nc), c, 1, 1)), (f"model.24.m.{j}.bias", (3 * (5 + nc),))])
    return keys


def test_official_yolov5n_key_list_maps():
    expected = _official_yolov5n_keys()
    assert expected[:3] == [("model.0.conv.weight", (16, 3, 6, 6)), ("model.0.bn.weight", (16,)),
                            ("model.0.bn.bias", (16,))]
    assert expected[-2:] == [("model.24.m.2.weight", (255, 256, 1, 1)), ("model.24.m.2.bias", (255,))]
    ours = [(k, tuple(v.shape)) for k, v in to_yolov5_state_dict(yolov5("n")).items()]
    assert ours == expected  # same keys, same order, same shapes
    # An "official" state_dict with that layout loads, every tensor landing in its place.
    g = torch.Generator().manual_seed(0)
    official = {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked")
                    else torch.randn(s, generator=g)) for k, s in expected}
    model = load_yolov5_state_dict(yolov5("n"), official)
    back = to_yolov5_state_dict(model)
    for k, v in official.items():
        assert torch.equal(back[k], v), k


@pytest.mark.parametrize("seed,variant_kw", [
    (0, dict(variant=None, depth_multiple=0.33, width_multiple=0.125)),
    (1, dict(variant=None, depth_multiple=0.67, width_multiple=0.125)),
    (2, dict(variant="n"))])
def test_state_dict_round_trip_identical_outputs(seed, variant_kw):
    torch.manual_seed(seed)
    src = _randomize(yolov5(nc=4, **variant_kw), seed).eval()
    official = to_yolov5_state_dict(src)
    assert all(k.startswith("model.") for k in official)
    dst = load_yolov5_state_dict(yolov5(nc=4, **variant_kw), {k: v.clone() for k, v in official.items()}).eval()
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert_parity(dst(x), src(x), name="models.yolov5", tol=EXACT)
    assert_parity(dst.anchors_grid_units, src.anchors_grid_units, name="models.yolov5", tol=EXACT)


def test_load_accepts_half_and_unprefixed_keys():
    src = _randomize(_tiny(), 1)
    half = {k[len("model."):]: (v.half() if v.is_floating_point() else v)
            for k, v in to_yolov5_state_dict(src).items() if not k.endswith("num_batches_tracked")}
    dst = load_yolov5_state_dict(_tiny(), half)
    got = to_yolov5_state_dict(dst)
    for k, v in half.items():
        assert got["model." + k].dtype == torch.float32 or not v.is_floating_point()
        assert torch.equal(got["model." + k], v.to(got["model." + k].dtype)), k


def test_load_mismatch_names_the_first_key():
    official = to_yolov5_state_dict(yolov5("n"))
    with pytest.raises(ValueError, match=r"model\.24\.m\.0\.weight.*\(255, 64, 1, 1\).*\(24, 64, 1, 1\)"):
        load_yolov5_state_dict(yolov5("n", nc=3), official)  # wrong nc
    with pytest.raises(ValueError, match=r"'model\.0\.conv\.weight' has shape \(16, 3, 6, 6\)"):
        load_yolov5_state_dict(yolov5("s"), official)  # wrong variant
    missing = dict(official)
    del missing["model.13.cv2.conv.weight"]
    with pytest.raises(ValueError, match=r"missing key 'model\.13\.cv2\.conv\.weight'"):
        load_yolov5_state_dict(yolov5("n"), missing)
    extra = dict(official, **{"model.25.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected key 'model\.25\.weight'"):
        load_yolov5_state_dict(yolov5("n"), extra)
    with pytest.raises(ValueError, match="model"):
        to_yolov5_state_dict(yolov5_anchor_free("n"))
    with pytest.raises(ValueError, match="state_dict"):
        load_yolov5_state_dict(yolov5("n"), [1, 2])


# ----------------------------------------------------------------------------- anchor-free head

def test_anchor_free_shapes_and_zero_logit_decode():
    nc, reg_max = 3, 16
    model = yolov5_anchor_free(None, nc=nc, reg_max=reg_max, depth_multiple=0.33, width_multiple=0.125)
    with torch.no_grad():
        raw = model(torch.rand(2, 3, 64, 96))
    assert [tuple(r.shape) for r in raw] == [(2, 4 * reg_max + nc, 64 // s, 96 // s) for s in (8, 16, 32)]
    # With zero box logits every side is the mean bin (reg_max - 1) / 2: a square of side
    # (reg_max - 1) * stride centred on the cell centre.
    with torch.no_grad():
        for branch in model.head.cv2:
            branch[-1].weight.zero_()
            branch[-1].bias.zero_()
        decoded, raw = model.eval()(torch.rand(2, 3, 64, 96))
    assert tuple(decoded.shape) == (2, 8 * 12 + 4 * 6 + 2 * 3, 4 + nc)
    centres, strides = coder.make_anchors([(8, 12), (4, 6), (2, 3)], torch.tensor([8.0, 16.0, 32.0]))
    side = (reg_max - 1) * strides
    expected = torch.cat((centres * strides, side, side), 1).expand(2, -1, -1)
    assert_parity(decoded[..., :4], expected, name="coder.dist2bbox", dtype="float32")
    cls = torch.cat([r[:, 4 * reg_max:].flatten(2) for r in raw], 2).transpose(1, 2).sigmoid()
    # σ of the same logits, laid out differently (vectorised vs strided path: 1 ulp apart).
    assert_parity(decoded[..., 4:], cls, name="models.yolov5_anchor_free", dtype="float32")


def test_anchor_free_bias_init():
    nc = 80
    model = yolov5_anchor_free("n", nc=nc)
    for box, cls, s in zip(model.head.cv2, model.head.cv3, (8, 16, 32)):
        assert torch.all(box[-1].bias == 1.0)
        assert_parity(cls[-1].bias, torch.full((nc,), math.log(5 / nc / (640 / s) ** 2)),
                      name="models.yolov5_anchor_free", dtype="float32")


# ----------------------------------------------------------------------------- import-yolov5

def test_import_script_help_runs():
    """The thin wrapper ``scripts/import_yolov5.py`` reaches ``yolo-ref import-yolov5``."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_yolov5.py"), "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "Examples:" in done.stdout
    assert "yolo-ref import-yolov5" in done.stdout and "(default: s)" in done.stdout


def test_import_yolov5_library(tmp_path):
    src = _randomize(yolov5("n", nc=3), 4)
    official = dict(to_yolov5_state_dict(src))
    model = import_yolov5_state_dict(official, "n")  # nc and anchors read from the head
    assert model.nc == 3
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="model.0.conv.weight"):
        import_yolov5_state_dict(official, "s")
    with pytest.raises(ValueError, match=r"nc \(--nc\)"):
        import_yolov5_state_dict({k: v for k, v in official.items()
                                  if not k.startswith("model.24.m.")}, "n")
    torch.save(official, tmp_path / "official.pt")
    config = import_yolov5(tmp_path / "official.pt", tmp_path / "ours.pt", "n")
    assert config["nc"] == 3 and config["parameters"] == sum(p.numel() for p in src.parameters())
    ckpt = torch.load(tmp_path / "ours.pt", weights_only=True)
    assert ckpt["config"] == {k: v for k, v in config.items() if k != "parameters"}
    assert set(read_yolov5_state_dict(tmp_path / "official.pt")) == set(official)
    torch.save({"model": official, "epoch": 3}, tmp_path / "wrapped.pt")  # {"model": sd}
    assert set(read_yolov5_state_dict(tmp_path / "wrapped.pt")) == set(official)
    with pytest.raises(ValueError, match="missing.pt: cannot be read"):
        read_yolov5_state_dict(tmp_path / "missing.pt")


def test_import_script(tmp_path, capsys):
    def _run_cli(*args):
        code = yolo_ref(["import-yolov5", *map(str, args)])
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)

    src = _randomize(yolov5("n", nc=3), 2)
    torch.save(dict(to_yolov5_state_dict(src)), tmp_path / "official.pt")
    out = tmp_path / "ours.pt"
    assert import_cli.main([str(tmp_path / "official.pt"), str(out), "--variant", "n"]) == 0
    assert "nc=3" in capsys.readouterr().out
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["config"]["nc"] == 3 and ckpt["config"]["variant"] == "n"
    dst = yolov5("n", nc=3)
    dst.load_state_dict(ckpt["state_dict"])
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # weights that do not fit the requested model, and a pickled module: bad input (exit 2)
    wrong = _run_cli(tmp_path / "official.pt", out, "--variant", "s")
    assert wrong.returncode == EXIT_USAGE and "model.0.conv.weight" in wrong.stderr
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    pickled = _run_cli(tmp_path / "pickled.pt", out, "--variant", "n")
    assert pickled.returncode == EXIT_USAGE and "state_dict()" in pickled.stderr


# ----------------------------------------------------------------------------- official oracle

@pytest.mark.parametrize("variant", ["n", "s"])
def test_matches_official_yolov5_package(variant):
    """Oracle, when the official code is importable (``pip install yolov5``, v7.0.x): same
    state_dict layout, bitwise-equal outputs after import (train and eval), and with the same
    seed the same initial parameters (bias init included). BN running statistics are not
    compared at init: the official constructor runs one training-mode forward pass on zeros to
    measure the strides, which moves them; ours does not."""
    official_yolo = pytest.importorskip("yolov5.models.yolo")
    cfg = Path(official_yolo.__file__).parent / f"yolov5{variant}.yaml"
    for nc in (80, 3):
        torch.manual_seed(123)
        official = official_yolo.DetectionModel(str(cfg), ch=3, nc=nc)
        torch.manual_seed(123)
        ours = yolov5(variant, nc=nc)
        a, b = official.state_dict(), to_yolov5_state_dict(ours)
        assert [(k, v.shape) for k, v in a.items()] == [(k, v.shape) for k, v in b.items()]
        for k in a:
            if k.split(".")[-1] not in ("running_mean", "running_var", "num_batches_tracked"):
                assert torch.equal(a[k], b[k]), k
    _randomize(official, 5)
    load_yolov5_state_dict(ours, official.state_dict())
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_parity(ours.eval()(x), official.eval()(x), name="models.yolov5", tol=EXACT)
        assert_parity(ours.train()(x), official.train()(x), name="models.yolov5", tol=EXACT)
