"""The conformance kit finds every mutant's defect, names its cause, and stays silent on correct code."""
from __future__ import annotations

import json

import numpy as np
import pytest

from parity_tests import conformance
from parity_tests.conformance.engine import compare_indices, compare_values
from parity_tests.mutants import Mutant, boxes, corpus, grid, nms
from parity_tests.mutants import metrics as metric_mutants
from parity_tests.mutants import yolo as yolo_mutants

EXAMPLES = 40  # per regime: enough for every planted regime, the file stays well under a minute
#: Contracts whose examples are costly (a COCO evaluation per call): fewer per regime.
EXAMPLES_FOR = {"metrics.coco_evaluate": 10}


def audit(m: Mutant, examples: int | None = None) -> conformance.Report:
    examples = examples or EXAMPLES_FOR.get(m.target, EXAMPLES)
    if m.target.startswith("properties:"):
        return conformance.properties(m.fn, m.target.split(":", 1)[1], examples=examples, name=m.name)
    if m.target.startswith("roundtrip:"):
        return conformance.check_roundtrip(*m.fn, m.target.split(":", 1)[1], examples=examples, name=m.name)
    return conformance.check(m.fn, m.target, fixed=m.fixed, examples=examples, name=m.name)


def test_corpus_size():
    names = [m.name for m in corpus()]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("m", corpus(), ids=lambda m: m.name)
def test_mutant_is_flagged_with_its_cause(m: Mutant):
    report = audit(m)
    assert not report.ok, str(report)
    bug_causes = [f.cause.lower() for f in report.findings if f.verdict == "bug"]
    assert any(m.cause.lower() in c for c in bug_causes), f"expected cause {m.cause!r}\n{report}"
    bug = report.bugs[0]
    assert bug.counterexample and bug.why and bug.fix and bug.impact


@pytest.mark.parametrize("m", boxes.CONVENTIONS + nms.CONVENTIONS + yolo_mutants.CONVENTIONS,
                         ids=lambda m: m.name)
def test_conventions_are_not_bugs(m: Mutant):
    report = audit(m)
    assert report.ok, str(report)
    assert any(f.verdict == "convention" and m.cause.lower() in f.cause.lower() for f in report.findings)


@pytest.mark.parametrize("m", grid.CORRECT + metric_mutants.CORRECT + yolo_mutants.CORRECT,
                         ids=lambda m: m.name)
def test_correct_property_code_passes(m: Mutant):
    report = audit(m)
    assert report.ok, str(report)


def _torchvision():
    return pytest.importorskip("torchvision.ops")


@pytest.mark.parametrize("name", ["nms", "batched_nms", "box_iou", "generalized_box_iou",
                                  "distance_box_iou", "complete_box_iou", "box_convert"])
def test_no_false_alarm_torchvision(name):
    ops = _torchvision()
    target = f"nms.{name}" if "nms" in name else f"boxes.{name}"
    report = conformance.check(getattr(ops, name), target, examples=EXAMPLES)
    assert report.ok, str(report)
    assert all(f.verdict == "pass" for f in report.findings), str(report)
    assert "torch" in report.binding


@pytest.mark.parametrize("target", conformance.targets())
def test_no_false_alarm_reference_fed_back(target):
    module, func = target.split(".")
    import importlib
    ref = getattr(importlib.import_module(f"ref_numpy.{module}"), func)
    if func == "yolov3_encode":
        def ref(boxes, grid, anchors, stride, _f=ref):  # noqa: F811 - the contract's logits=True
            return _f(boxes, grid, anchors, stride, logits=True)
    report = conformance.check(ref, target, examples=EXAMPLES_FOR.get(target, 20))
    assert report.ok, str(report)
    assert all(f.verdict == "pass" for f in report.findings), str(report)


def test_no_false_alarm_pycocotools():
    oracles = pytest.importorskip("parity_tests.oracles")
    report = conformance.check(oracles.pycocotools_evaluate, "metrics.coco_evaluate", examples=10)
    assert report.ok, str(report)
    assert all(f.verdict == "pass" for f in report.findings), str(report)


def test_coco_variant_with_defaults_is_the_reference():
    from parity_tests.conformance import targets_metrics as tm
    from ref_numpy.metrics import coco_evaluate
    rng = np.random.default_rng(3)
    for check in conformance.spec("metrics.coco_evaluate").checks:
        for _ in range(3):
            x = check.gen(rng, {})
            want = coco_evaluate(x["gt"], x["results"]).stats
            assert tm.coco_variant(x["gt"], x["results"]).tolist() == want.tolist(), check.name
            # and every switch changes something somewhere (a probe that never differs is dead)
    x = tm.coco_problem(np.random.default_rng(0), n_gt=(3, 5), dets_per_gt=(2, 2), crowd=0.3,
                        size=(28.0, 100.0), area_factor=(0.5, 0.8))
    base = tm.coco_variant(x["gt"], x["results"])
    for kw in ({"area": "box"}, {"crowd": "ordinary"}, {"interp": "11"}, {"one_to_one": False}):
        assert tm.coco_variant(x["gt"], x["results"], **kw).tolist() != base.tolist(), kw


def test_coco_finding_names_the_stats_that_differ():
    report = audit(metric_mutants.MUTANTS[1])  # crowd GTs dropped
    f = next(f for f in report.bugs if f.check == "crowd")
    assert f.cause == "crowd GTs dropped" and "yours AP" in f.detail and "reference AP" in f.detail
    assert set(f.counterexample) == {"gt", "results"}
    got = metric_mutants.coco_crowd_dropped(**f.counterexample)  # pasted back, it still fails
    from ref_numpy.metrics import coco_evaluate
    assert got.tolist() == f.got and got.tolist() != coco_evaluate(**f.counterexample).stats.tolist()


def test_yolo_variants_with_defaults_are_the_reference():
    from parity_tests.conformance import targets_yolo as ty
    rng = np.random.default_rng(5)
    for name, variant in (("assign.yolov5_build_targets", lambda x: ty.build_targets_variant(**x)),
                          ("loss.yolov5_loss", lambda x: ty.yolov5_loss_variant(**x))):
        sp = conformance.spec(name)
        for check in sp.checks:
            for _ in range(4):
                x = check.gen(rng, {})
                g = sp.compare(sp.expected(x), variant(x), x)
                assert g.ok and "order" not in g.grade, (name, check.name, g)


@pytest.mark.parametrize("target", ["assign.yolov5_build_targets", "loss.yolov5_loss"])
def test_no_false_alarm_torch_port(target):
    pytest.importorskip("torch")
    import importlib
    module, func = target.split(".")
    port = getattr(importlib.import_module(f"torch_impl.{module}"), func)
    report = conformance.check(port, target, examples=15)
    assert report.ok and all(f.verdict == "pass" for f in report.findings), str(report)
    assert "torch" in report.binding


def _yolov5_compute_loss_as_user_code():
    """yolov5's own ComputeLoss (pip package ``yolov5``) behind the contract's signature."""
    import torch
    loss_mod = pytest.importorskip("yolov5.utils.loss")

    def user_loss(preds, targets, anchors):
        p = [torch.as_tensor(x, dtype=torch.float64) for x in preds]
        na, nc = p[0].shape[1], p[0].shape[-1] - 5

        class Detect(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.na, self.nc, self.nl = na, nc, len(p)
                self.anchors = torch.as_tensor(np.asarray(anchors), dtype=torch.float64)

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.zeros(1))
                self.model = torch.nn.ModuleList([Detect()])
                self.hyp = {"box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0,
                            "anchor_t": 4.0, "fl_gamma": 0.0, "label_smoothing": 0.0}
        total, _ = loss_mod.ComputeLoss(Model())(p, torch.as_tensor(targets, dtype=torch.float64))
        return total.detach()
    return user_loss


def test_no_false_alarm_yolov5_package():
    """The YOLOv5 oracle fed as user code (skipped: the yolov5 package is not a dependency)."""
    pytest.importorskip("yolov5")
    report = conformance.check(_yolov5_compute_loss_as_user_code(), "loss.yolov5_loss", examples=10)
    assert report.ok, str(report)


def test_build_targets_row_order_is_reported_as_a_convention():
    report = audit(yolo_mutants.CONVENTIONS[0])
    conv = [f for f in report.findings if f.verdict == "convention"]
    assert report.ok and conv and conv[0].grade == "same set, other order"
    assert "another row order" in conv[0].why


def test_roundtrip_of_the_reference_passes():
    from ref_numpy import coder
    report = conformance.check_roundtrip(coder.yolov5_encode, coder.yolov5_decode, "coder.yolov5", examples=20)
    assert report.ok, str(report)


def test_report_printed_form_and_json():
    report = audit(next(m for m in corpus() if m.name == "nms_unstable_ties"))
    text = str(report)
    assert text.splitlines()[0].startswith("nms_unstable_ties  claims nms.nms (boxes xyxy [N,4]")
    assert "BUG   tie order" in text and "why:" in text and "fix:" in text and "impact:" in text
    data = json.loads(report.to_json())
    assert data["ok"] is False
    tie = next(f for f in data["findings"] if f["check"] == "tie order")
    assert tie["verdict"] == "bug" and tie["cause"] == "tie order"
    # the counterexample is plain lists and reproduces the failure when pasted back
    ce = tie["counterexample"]
    from parity_tests.mutants.nms import nms_unstable_ties
    from ref_numpy.nms import nms as ref_nms
    args = {k: np.asarray(v) for k, v in ce.items() if k != "iou_threshold"}
    got = nms_unstable_ties(args["boxes"], args["scores"], ce["iou_threshold"])
    want = ref_nms(args["boxes"], args["scores"], ce["iou_threshold"])
    assert got.tolist() == tie["got"] and got.tolist() != want.tolist()


def test_counterexample_is_shrunk():
    report = audit(next(m for m in corpus() if m.name == "nms_ge"))
    f = next(f for f in report.findings if f.check == "threshold")
    assert len(f.counterexample["boxes"]) == 2  # the planted pair alone


def test_fixed_arguments_and_binding_by_position():
    def my_xywh_to_xyxy(b):
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    report = conformance.check(my_xywh_to_xyxy, "boxes.box_convert",
                               fixed={"in_fmt": "xywh", "out_fmt": "xyxy"}, examples=20)
    assert report.ok, str(report)
    with pytest.raises(ValueError, match="fixed"):
        conformance.check(my_xywh_to_xyxy, "boxes.box_convert", fixed={"fmt": "xywh"})


def test_binding_never_routes_a_named_argument_to_another_one():
    """A focal YOLOv1 loss taking ``noobj_gamma`` but not ``obj_gamma``: fixing its own
    ``noobj_gamma`` is refused (naming it), instead of binding by position and feeding it the
    reference's ``obj_gamma``; fixing ``obj_gamma`` binds by name, and the audit then finds the
    loss that puts the factor on the object term too."""
    import torch_impl.loss as TL

    def my_yolov1_loss(preds, targets, lambda_coord=5.0, lambda_noobj=0.5, noobj_gamma=0.0):
        return TL.yolov1_loss(preds, targets, lambda_coord, lambda_noobj, noobj_gamma, obj_gamma=noobj_gamma)
    with pytest.raises(ValueError, match=r"fixed: \['noobj_gamma'\] are arguments of my_yolov1_loss"):
        conformance.check(my_yolov1_loss, "loss.yolov1_loss", fixed={"noobj_gamma": 2.0})
    report = conformance.check(my_yolov1_loss, "loss.yolov1_loss", fixed={"obj_gamma": 0.0}, examples=50)
    assert "noobj_gamma=noobj_gamma" in str(report) and not report.ok, str(report)

    def shifted(preds, targets, lambda_coord, obj_gamma, lam):  # names half match: by position, misplaced
        return TL.yolov1_loss(preds, targets, lambda_coord, lam, obj_gamma=obj_gamma)
    with pytest.raises(ValueError, match="'obj_gamma' would receive the reference's 'lambda_noobj'"):
        conformance.check(shifted, "loss.yolov1_loss", fixed={"noobj_gamma": 0.0})


def test_adapter_dict_and_callable():
    from ref_numpy.boxes import box_convert, box_iou

    def iou_cxcywh(a, b):  # the user's boxes are cxcywh
        return box_iou(box_convert(a, "cxcywh", "xyxy"), box_convert(b, "cxcywh", "xyxy"))
    assert conformance.check(iou_cxcywh, "boxes.box_iou", adapter={"box_format": "cxcywh"}, examples=20).ok
    assert not conformance.check(iou_cxcywh, "boxes.box_iou", examples=20).ok

    def adapter(fn, boxes1, boxes2):
        return fn(box_convert(boxes1, "xyxy", "cxcywh"), box_convert(boxes2, "xyxy", "cxcywh"))
    assert conformance.check(iou_cxcywh, "boxes.box_iou", adapter=adapter, examples=20).ok


def test_adapter_normalised_coordinates():
    from ref_numpy.coder import yolov5_decode

    def decode_normalised(raw, grid, anchors, stride):  # the user's decoder returns [0, 1] boxes
        return yolov5_decode(raw, grid, anchors, stride) / np.array([640.0, 480.0, 640.0, 480.0])
    adapter = {"coords": "normalized", "image_size": (640, 480)}
    report = conformance.check(decode_normalised, "coder.yolov5_decode", adapter=adapter, examples=20)
    assert report.ok, str(report)
    assert "coords normalised by (640, 480)" in report.binding
    assert not conformance.check(decode_normalised, "coder.yolov5_decode", examples=20).ok
    with pytest.raises(conformance.BindingError, match="image_size"):
        conformance.check(decode_normalised, "coder.yolov5_decode", adapter={"coords": "normalized"})


def test_adapter_batched_nms():
    from ref_numpy.nms import nms as ref_nms

    def nms_batched(boxes, scores, iou_thres):  # [B, N, 4], [B, N] -> one keep list per image
        assert boxes.ndim == 3, "expects a batch"
        return [ref_nms(b, s, iou_thres) for b, s in zip(boxes, scores)]
    report = conformance.check(nms_batched, "nms.nms", adapter={"batched": True}, examples=15)
    assert report.ok, str(report)
    assert "batched (B = 1)" in report.binding
    assert not conformance.check(nms_batched, "nms.nms", examples=15).ok


def test_adapter_flat_head_layout():
    from parity_tests.conformance.binding import flat_head, grid_head
    from ref_numpy.loss import yolov5_loss

    def loss_flat(preds, targets, anchors):  # per level [B, A*(5+C), H, W], the conv's layout
        assert all(p.ndim == 4 for p in preds), "expects the flat head layout"
        return yolov5_loss([grid_head(p, len(anchors[0])) for p in preds], targets, anchors)
    report = conformance.check(loss_flat, "loss.yolov5_loss", adapter={"head_layout": "flat"}, examples=15)
    assert report.ok, str(report)
    assert not conformance.check(loss_flat, "loss.yolov5_loss", examples=15).ok
    p = np.arange(2 * 3 * 4 * 5 * 7, dtype=float).reshape(2, 3, 4, 5, 7)
    assert flat_head(p).shape == (2, 21, 4, 5) and np.array_equal(grid_head(flat_head(p), 3), p)


def test_adapter_unknown_conversion_is_named():
    with pytest.raises(conformance.BindingError, match="unknown conversion.*box_fmt"):
        conformance.check(lambda a, b: a, "boxes.box_iou", adapter={"box_fmt": "xywh"})


def test_unknown_target_and_same_seed_same_report():
    with pytest.raises(ValueError, match="unknown reference contract"):
        conformance.check(lambda x: x, "boxes.nope")
    m = next(m for m in corpus() if m.name == "iou_eps_union")
    assert audit(m, 20).to_json() == audit(m, 20).to_json()


def test_pytest_case_fails_on_a_bug_and_passes_on_correct_code():
    from ref_numpy.nms import nms as ref_nms
    conformance.pytest_case(ref_nms, "nms.nms", examples=20)()
    with pytest.raises(AssertionError, match="tie order"):
        conformance.pytest_case(nms.nms_unstable_ties, "nms.nms", examples=20)()


def test_graded_comparisons():
    assert compare_values([0.5], [0.5]).grade == "bit-exact"
    g = compare_values([0.5], [np.nextafter(0.5, 1)])
    assert g.ok and g.grade == "within 1 ulps"
    assert not compare_values([np.nan], [0.0]).ok
    assert not compare_values([0.5], [0.6]).ok
    assert compare_indices([2, 0], [0, 2]).grade == "same set, other order"
    assert compare_indices([2, 0], [2]).grade == "different"


USER_FILE = '''
import numpy as np

def nms(boxes, scores, iou_threshold):
    order = np.lexsort((np.arange(len(scores)), -scores))
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iou = (w * h) / (area[i] + area[rest] - w * h)
        order = rest[~(iou > iou_threshold)]
    return np.array(keep, dtype=np.int64)

def my_box_iou(boxes1, boxes2):
    a, b = boxes1, boxes2
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return w * h / (area(a)[:, None] + area(b)[None, :] - w * h + 1e-7)
'''


def test_cli_check_discovers_binds_and_exits(tmp_path, capsys):
    from parity_tests.cli.check import main
    f = tmp_path / "mycode.py"
    f.write_text(USER_FILE)
    out_json = tmp_path / "r.json"
    assert main([str(f), "--examples", "20", "--json", str(out_json)]) == 1  # my_box_iou has an eps
    text = capsys.readouterr().out
    assert "mycode.nms -> nms.nms" in text and "mycode.my_box_iou -> boxes.box_iou" in text
    data = json.loads(out_json.read_text())
    assert {d["claims"] for d in data} == {"nms.nms", "boxes.box_iou"}
    assert [d["ok"] for d in data if d["claims"] == "nms.nms"] == [True]
    assert main([f"{f}:nms", "--as", "nms.nms", "--examples", "20"]) == 0


def test_cli_check_usage_errors(tmp_path):
    from ref_numpy.cli import main
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    f = tmp_path / "mycode.py"
    f.write_text(USER_FILE)
    assert main(["check", f"{f}:nms", "--as", "nms.nope"]) == 2
    assert main(["check", f"{f}:absent", "--as", "nms.nms"]) == 2


def test_impl_suite_runs_against_a_module(tmp_path):
    import subprocess
    import sys
    (tmp_path / "userops.py").write_text(USER_FILE.replace("def my_box_iou", "def box_iou"))
    env = {**__import__("os").environ, "YOLO_REF_IMPL": "userops", "YOLO_REF_EXAMPLES": "15",
           "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
                        "parity_tests.conformance"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "1 failed, 1 passed" in r.stdout, r.stdout[-2000:]
    assert "claims boxes.box_iou" in r.stdout and "BUG" in r.stdout, r.stdout[-3000:]


# ----------------------------------------------------------------------------- generic contract
# Any registry row with an ``inputs`` strategy can be claimed (parity_tests/conformance/targets_generic.py).

GENERIC_EXAMPLES = 30
# The clamped area differs only on inverted boxes, which the registry strategy draws in a few
# per cent of examples (2 to 11 of 30-200 here, depending on the Hypothesis stream): enough
# examples that the mutant is met whatever tests ran before.
GENERIC_MUTANT_EXAMPLES = 200


def _area(b):
    b = np.asarray(b)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _area_clamped(b):  # w/h clamped at 0: differs from torchvision/reference on inverted boxes
    b = np.asarray(b)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _area_voc(b):  # VOC's +1 pixel widths
    b = np.asarray(b)
    return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)


def test_generic_correct_box_area_passes():
    report = conformance.check(_area, "boxes.box_area", examples=GENERIC_EXAMPLES)
    assert report.ok, str(report)
    assert [f.verdict for f in report.findings] == ["pass"]
    assert report.findings[0].impact.startswith("0 of ")


@pytest.mark.parametrize("fn", [_area_clamped, _area_voc], ids=lambda f: f.__name__)
def test_generic_wrong_box_area_is_a_bug(fn):
    from ref_numpy.boxes import box_area
    report = conformance.check(fn, "boxes.box_area", examples=GENERIC_MUTANT_EXAMPLES)
    assert not report.ok, str(report)
    bug = report.bugs[0]
    assert bug.grade == "different" and "output[" in bug.why and " of " in bug.impact
    boxes = np.asarray(bug.counterexample["boxes"], dtype=np.float64)  # pasteable plain lists
    assert isinstance(bug.counterexample["boxes"], list)
    assert np.array_equal(box_area(boxes), np.asarray(bug.expected))
    assert not np.array_equal(fn(boxes), box_area(boxes))
    assert len(boxes) <= 2, "Hypothesis shrinks the counterexample"
    json.loads(report.to_json())


def test_hand_written_spec_wins_over_generic():
    from parity_tests.conformance.targets_generic import GenericSpec
    assert not isinstance(conformance.spec("boxes.box_iou"), GenericSpec)
    assert isinstance(conformance.spec("boxes.box_area"), GenericSpec)


@pytest.mark.parametrize("name", ["boxes.box_area", "boxes.box_normalize", "coder.dist2bbox"])
def test_generic_reference_fed_back_passes(name):
    from parity_tests.registry import CASES_BY_NAME
    report = conformance.check(CASES_BY_NAME[name].ref, name, examples=GENERIC_EXAMPLES)
    assert report.ok, str(report)
    assert all(f.verdict == "pass" for f in report.findings)


def test_generic_unknown_name_still_raises():
    with pytest.raises(ValueError, match="unknown reference contract"):
        conformance.check(_area, "boxes.no_such_function")
