"""The epoch loop, validation and autoanchor step of YOLOv5 v7.0 ``train.py`` / ``val.py``.

Library code: nothing is printed; a progress wrapper (e.g. ``tqdm``) may be passed in.
Distributed runs (``torch.distributed`` initialised) reduce the NaN check across ranks and merge
the validation state of every rank before computing the metrics.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from torch_impl import anchors as anc
from torch_impl.data import DetectionDataset, unletterbox_boxes
from torch_impl.arch import LossFn, arch_of_model
from torch_impl.metrics import DetectionEvaluator
from torch_impl.train.ema import ModelEMA, unwrap
from torch_impl.train.optim import warmup_step


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf (attributes ``epoch``, ``step``: the global step)."""

    def __init__(self, epoch: int, step: int, parts: dict) -> None:
        self.epoch, self.step, self.parts = epoch, step, parts
        terms = ", ".join(f"{k}={v:.4g}" for k, v in parts.items())
        super().__init__(f"non-finite loss at epoch {epoch}, step {step} ({terms})")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


# ----------------------------------------------------------------------------- labels

def targets_to_xyxy(targets: torch.Tensor, img_h: int, img_w: int) -> torch.Tensor:
    """``[n, 6]`` rows ``(image, cls, cx, cy, w, h)`` normalised -> ``[n, 4]`` xyxy pixels of
    the ``img_h x img_w`` network input."""
    cx, cy, w, h = targets[:, 2:6].unbind(-1)
    return torch.stack([(cx - w / 2) * img_w, (cy - h / 2) * img_h,
                        (cx + w / 2) * img_w, (cy + h / 2) * img_h], -1)


def dataset_wh(dataset: DetectionDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label sizes of a :class:`torch_impl.data.DetectionDataset` for the anchor check, without
    decoding the images (sizes come from the file headers).

    Returns:
        (wh [N, 2] normalised by the image size, image_index [N] int64, shapes [M, 2] (w, h)
        pixels of every image), as :func:`torch_impl.anchors.wh_from_labels` takes them.
    """
    wh, index, shapes = [], [], []
    for i, item in enumerate(dataset.items):
        if item["size"] is not None:
            h, w = item["size"]
        else:
            with Image.open(item["path"]) as im:
                w, h = im.size
        shapes.append((w, h))
        b = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        if item["normalized"]:
            bwh = b[:, 2:4]
        else:
            bwh = (b[:, 2:4] - b[:, 0:2]) / np.array([w, h])
        wh.append(bwh)
        index.append(np.full(len(b), i, dtype=np.int64))
    wh_all = np.concatenate(wh) if wh else np.zeros((0, 2))
    idx_all = np.concatenate(index) if index else np.zeros(0, np.int64)
    keep = (wh_all > 0).all(1)
    return wh_all[keep], idx_all[keep], np.asarray(shapes, dtype=np.float64).reshape(-1, 2)


def autoanchor(model: torch.nn.Module, dataset: DetectionDataset, img_size: int, thr: float = 4.0,
               bpr_threshold: float = 0.98, gen: int = 1000, seed: int = 0) -> dict:
    """YOLOv5 ``check_anchors``: if the best possible recall of the model's anchors on the
    training labels is <= ``bpr_threshold``, fit new ones with :func:`kmean_anchors` and put them
    in the model (sorted by area, levels P3..P5) when their BPR is higher.

    Returns:
        ``{"bpr": float, "aat": float, "refit": bool, "new_bpr": float | None,
        "replaced": bool, "anchors": [nl, na, 2] pixels now in the model}``.
    """
    m = unwrap(model)
    wh, index, shapes = dataset_wh(dataset)
    info = {"bpr": float("nan"), "aat": float("nan"), "refit": False, "new_bpr": None,
            "replaced": False, "anchors": m.anchors_pixels.detach().cpu().clone()}
    if len(wh) == 0:
        return info
    wh_px = anc.wh_from_labels(torch.from_numpy(wh), torch.from_numpy(index),
                               torch.from_numpy(shapes), img_size=img_size, augment=True,
                               seed=seed)
    current = m.anchors_pixels.detach().cpu().to(torch.float64)
    refit, bpr, aat = anc.check_anchors(wh_px, current, thr=thr, bpr_threshold=bpr_threshold)
    info.update(bpr=float(bpr), aat=float(aat), refit=refit)
    if refit:
        na = current.shape[0] * current.shape[1]
        fit = anc.kmean_anchors(wh_px, n=na, img_size=img_size, thr=thr, gen=gen, seed=seed)
        info["new_bpr"] = float(fit["bpr"])
        if float(fit["bpr"]) > float(bpr):
            new = fit["anchors"].reshape(current.shape)
            head = m.head
            with torch.no_grad():
                head.anchors.copy_((new / head.stride.cpu().view(-1, 1, 1).double())
                                   .to(head.anchors))
            info["replaced"] = True
            info["anchors"] = m.anchors_pixels.detach().cpu().clone()
    return info


# ----------------------------------------------------------------------------- training

def is_anchor_free(model: torch.nn.Module) -> bool:
    """True for a :class:`torch_impl.models.YOLOv5AnchorFree` (or a DDP wrapper of one)."""
    from torch_impl.models import YOLOv5AnchorFree
    return isinstance(unwrap(model), YOLOv5AnchorFree)


def loss_terms(model: torch.nn.Module) -> tuple[str, ...]:
    """Names of the loss terms :func:`train_one_epoch` reports for ``model``: its
    architecture's ``loss_names`` (:func:`torch_impl.arch.arch_of_model`), e.g. ``(box, obj,
    cls)`` for YOLOv5, ``(box, cls, dfl)`` for the DFL heads (v8 loss)."""
    return arch_of_model(unwrap(model)).loss_names


def cpu_bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles, through oneDNN).
    Where it does not, autocast to bfloat16 is emulated and slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()))
    except AttributeError:  # a torch without these probes
        return False


def autocast_dtype(device: torch.device | str, amp: bool) -> torch.dtype | None:
    """The dtype ``--amp`` autocasts the forward pass to on ``device``: float16 on CUDA (with a
    gradient scaler), bfloat16 on a CPU with native bfloat16 (:func:`cpu_bf16_supported`; no
    scaler: bfloat16 has float32's exponent range), None (float32, no autocast) otherwise or
    when ``amp`` is False."""
    if not amp:
        return None
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and cpu_bf16_supported():
        return torch.bfloat16
    return None


def _to_float(preds):
    """The head outputs in float32 (bfloat16 ones from CPU autocast): the loss is computed in
    float32 whatever the forward pass ran in. float16 CUDA outputs are left to the loss, as
    yolov5 does."""
    if isinstance(preds, torch.Tensor):
        return preds.float() if preds.dtype == torch.bfloat16 else preds
    if isinstance(preds, (list, tuple)):
        return type(preds)(_to_float(p) for p in preds)
    return preds


def _loss_fn(m: torch.nn.Module, hyp: dict, loss: LossFn | None) -> LossFn:
    return loss if loss is not None else arch_of_model(m).make_loss(m, hyp)


def train_one_epoch(model: torch.nn.Module, loader: torch.utils.data.DataLoader, optimizer: torch.optim.Optimizer, *,
                    hyp: dict, epoch: int, lr_factor: float, nw: int, accumulate_max: float, device: torch.device | str,
                    ema: ModelEMA | None = None, scaler: torch.amp.GradScaler | None = None, amp: bool = False,
                    clip_grad: float = 10.0, world_size: int = 1, last_opt_step: int = -1,
                    progress: Callable[[Iterable], Iterable] | None = None, nan_at_step: int | None = None,
                    on_batch: Callable[[int, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], None] | None = None,
                    loss: LossFn | None = None, channels_last: bool = False) -> tuple[dict[str, float], int]:
    """One epoch of YOLOv5 v7.0 training, for a model of any registered architecture
    (:mod:`torch_impl.arch`).

    Args:
        model: a model of a registered architecture (:func:`torch_impl.arch.arch_of_model`),
            e.g. :class:`torch_impl.models.YOLOv5`, or a DDP wrapper of one, in train mode.
        loader: batches ``(images uint8 [B, 3, S, S], targets [n, 6], paths, shapes)``.
        optimizer: from :func:`torch_impl.train.build_optimizer` (``initial_lr`` set by the
            scheduler).
        hyp: :data:`torch_impl.train.HYP_SCRATCH_LOW`-like, loss gains already prepared by the
            architecture's ``prepare_hyp`` (YOLOv5: :func:`torch_impl.loss.yolov5_scale_hyp`;
            the DFL heads: the v8 gains ``box``, ``cls``, ``dfl``, not scaled).
        epoch, lr_factor: the epoch and its schedule factor (for the warmup target).
        nw: warmup iterations (0: none); global iteration ``ni = epoch * len(loader) + i``.
        accumulate_max: ``nbs / batch_size``: gradients of ``round(accumulate_max)`` batches are
            summed per optimiser step (fewer during the warmup).
        ema: a :class:`ModelEMA` updated after each optimiser step.
        scaler: a ``torch.amp.GradScaler`` (used when ``amp`` on CUDA).
        amp: autocast the forward pass to :func:`autocast_dtype` (float16 on CUDA, bfloat16 on a
            CPU with native bfloat16; float32 elsewhere); bfloat16 head outputs are cast to
            float32 for the loss, float16 ones go to it as they are (as yolov5's do).
        clip_grad: max gradient norm (0: no clipping); grads are unscaled first.
        world_size: the loss is multiplied by it (DDP averages gradients; yolov5 does the same).
        last_opt_step: global iteration of the last optimiser step (-1 before the first).
        progress: optional wrapper of the loader (e.g. ``tqdm``); its ``set_postfix`` is called.
        nan_at_step: testing hook: make the loss NaN at that global iteration.
        on_batch: called after each batch's loss as ``on_batch(ni, imgs, targets, parts)``
            (``parts`` the detached loss terms; e.g.
            :meth:`torch_impl.train.health.HealthMonitor.on_batch`).
        loss: the loss callable (``loss(preds, targets, imgs) -> (total, items)``); None: the
            architecture's ``make_loss(model, hyp)``.
        channels_last: feed the images in channels-last memory order (for a model converted
            with ``model.to(memory_format=torch.channels_last)``); same values, other kernels.

    Returns:
        (mean loss terms over the epoch, keyed by the architecture's ``loss_names``:
        ``{"box", "obj", "cls"}`` for YOLOv5, ``{"box", "cls", "dfl"}`` for the DFL heads (see
        :func:`loss_terms`); last_opt_step).
        An optimiser step is also taken after the last batch, so no gradient crosses an epoch
        (and a checkpoint) boundary; this differs from yolov5, which carries it over.

    Raises:
        NonFiniteLossError: on a NaN / inf loss (on every rank together), before any update.
    """
    m = unwrap(model)
    names = loss_terms(m)
    loss_fn = _loss_fn(m, hyp, loss)
    nb = len(loader)
    sums = torch.zeros(len(names), dtype=torch.float64)
    seen = 0
    cast = autocast_dtype(device, amp)
    use_amp = cast == torch.float16  # the gradient scaler: float16 (CUDA) only
    kind = torch.device(device).type
    accumulate = max(round(accumulate_max), 1)
    bar = progress(loader) if progress is not None else loader
    optimizer.zero_grad()
    for i, (imgs, targets, _paths, _shapes) in enumerate(bar):
        ni = i + nb * epoch
        imgs = imgs.to(device, non_blocking=True).float() / 255
        if channels_last:
            imgs = imgs.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device)
        if nw and ni < nw:
            accumulate = warmup_step(optimizer, ni, nw, lr_factor, hyp, accumulate_max)
        with (torch.autocast(device_type=kind, dtype=cast) if cast is not None
              else contextlib.nullcontext()):
            preds = model(imgs)
        loss, items = loss_fn(_to_float(preds), targets, imgs)
        parts = dict(zip(names, items))
        if nan_at_step is not None and ni == nan_at_step:
            loss = loss * float("nan")
        if on_batch is not None:
            on_batch(ni, imgs, targets, {k: v.detach() for k, v in parts.items()})
        finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
        if _distributed():
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite.item()):
            raise NonFiniteLossError(epoch, ni, {k: float(v.detach()) for k, v in parts.items()}
                                     | {"total": float(loss.detach())})
        loss = loss * world_size
        if scaler is not None and use_amp:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        if ni - last_opt_step >= accumulate or i == nb - 1:
            if scaler is not None and use_amp:
                scaler.unscale_(optimizer)
            if clip_grad and clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip_grad)
            if scaler is not None and use_amp:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad()
            if ema is not None:
                ema.update(model)
            last_opt_step = ni
        sums += items.detach().double().cpu()
        seen += 1
        if hasattr(bar, "set_postfix"):
            mean = (sums / seen).tolist()
            bar.set_postfix({k: f"{v:.4f}" for k, v in zip(names, mean)}
                            | {"n": int(targets.shape[0])})
    mean = (sums / max(seen, 1)).tolist()
    return dict(zip(names, mean)), last_opt_step


@torch.no_grad()
def broadcast_state(module: torch.nn.Module, src: int = 0) -> None:
    """In a distributed run, overwrite every tensor of ``module.state_dict()`` (parameters and
    buffers) with rank ``src``'s; a no-op otherwise. DDP keeps the parameters equal but each
    rank's BatchNorm statistics follow its own batches (DDP re-broadcasts them only at the next
    forward), so the EMA and the validated model would drift apart without this."""
    if not _distributed():
        return
    for t in unwrap(module).state_dict().values():
        dist.broadcast(t, src)


# ----------------------------------------------------------------------------- validation

@torch.no_grad()
def validate(model: torch.nn.Module, loader: torch.utils.data.DataLoader, device: torch.device | str,
             conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300,
             progress: Callable[[Iterable], Iterable] | None = None, hyp: dict | None = None,
             on_predictions: Callable[[list[torch.Tensor], tuple[int, int]], None] | None = None,
             loss: LossFn | None = None) -> dict:
    """COCO mAP of ``model`` on ``loader`` (yolov5 ``val.py`` settings by default).

    Predictions go through the architecture's ``postprocess`` (:mod:`torch_impl.arch`; the v5
    or v8 :func:`torch_impl.nms.non_max_suppression`); predictions and ground
    truth are mapped back to each original image (``unletterbox_boxes`` with the item's
    ``shapes``) and fed to a :class:`torch_impl.metrics.DetectionEvaluator` on ``device``. In a
    distributed run every rank evaluates its own part, the states are gathered and merged in rank
    order, and every rank gets the same result.

    Args:
        hyp: the training loss gains (as :func:`train_one_epoch`); given, the val loss terms
            of the eval-mode raw outputs are returned too (mean over batches).
        on_predictions: called per batch as ``on_predictions(dets, (h, w))`` with the NMS
            output in network-input pixels (e.g. the health check of boxes off the image).
        loss: the loss callable for the val losses; None: the architecture's
            ``make_loss(model, hyp)`` when ``hyp`` is given.

    Returns:
        ``{"map50": float, "map": float (@0.5:0.95), "result": COCOEvalResult,
        "instances": {class: GT count}, "images": {class: images with that class},
        "n_images": int, "losses": {term: mean} (empty without ``hyp``)}``; mAPs are -1
        where COCO's are (no ground truth).
    """
    m = unwrap(model)
    arch = arch_of_model(m)
    was_training = m.training
    m.eval()
    evaluator = DetectionEvaluator(device=device)
    bar = progress(loader) if progress is not None else loader
    names = arch.loss_names
    loss_fn = _loss_fn(m, hyp, loss) if hyp is not None or loss is not None else None
    loss_sum, batches = torch.zeros(len(names), dtype=torch.float64), 0
    instances = torch.zeros(0, dtype=torch.int64)
    images = torch.zeros(0, dtype=torch.int64)
    n_images = 0
    for imgs, targets, _paths, shapes in bar:
        imgs = imgs.to(device).float() / 255
        targets = targets.to(device)
        decoded, raw = m(imgs)
        if loss_fn is not None:
            _, items = loss_fn(raw, targets, imgs)
            loss_sum += items.detach().double().cpu()
            batches += 1
        cls_cpu = targets[:, 1].long().cpu()
        img_cpu = targets[:, 0].long().cpu()
        if len(cls_cpu):
            k = int(cls_cpu.max()) + 1
            instances = _grow(instances, k) + _grow(torch.bincount(cls_cpu, minlength=k), len(instances))
            pairs = torch.unique(img_cpu * k + cls_cpu) % k
            images = _grow(images, k) + _grow(torch.bincount(pairs, minlength=k), len(images))
        n_images += imgs.shape[0]
        dets = arch.postprocess(decoded, conf_thres, iou_thres, max_det)
        h1, w1 = imgs.shape[2:]
        if on_predictions is not None:
            on_predictions(dets, (h1, w1))
        gt_all = targets_to_xyxy(targets, h1, w1)
        pb, ps, pl, gb, gl = [], [], [], [], []
        for j, det in enumerate(dets):
            sel = targets[:, 0] == j
            boxes, gboxes = det[:, :4], gt_all[sel]
            if shapes[j] is not None:
                h0w0, ratio_pad = shapes[j]
                boxes = unletterbox_boxes(boxes, (h1, w1), h0w0, ratio_pad)
                gboxes = unletterbox_boxes(gboxes, (h1, w1), h0w0, ratio_pad)
            pb.append(boxes)
            ps.append(det[:, 4])
            pl.append(det[:, 5].long())
            gb.append(gboxes)
            gl.append(targets[sel, 1].long())
        evaluator.update(pb, ps, pl, gb, gl)
    if _distributed():
        state = {k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                 for k, v in evaluator.state().items()}
        states = [None] * dist.get_world_size()
        dist.all_gather_object(states, state)
        evaluator = DetectionEvaluator(device=device)
        for st in states:
            evaluator.merge(st)
    if _distributed():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, (instances, images, n_images, loss_sum, batches))
        instances, images = torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
        n_images, loss_sum, batches = 0, torch.zeros(len(names), dtype=torch.float64), 0
        for ins, ims, n, ls, b in parts:
            instances = _grow(instances, len(ins)) + _grow(ins, len(instances))
            images = _grow(images, len(ims)) + _grow(ims, len(images))
            n_images, loss_sum, batches = n_images + n, loss_sum + ls, batches + b
    result = evaluator.compute()
    if was_training:
        m.train()
    stats = result.stats
    losses = dict(zip(names, (loss_sum / batches).tolist())) if batches else {}
    return {"map50": float(stats[1]), "map": float(stats[0]), "result": result,
            "instances": {c: int(v) for c, v in enumerate(instances.tolist())},
            "images": {c: int(v) for c, v in enumerate(images.tolist())},
            "n_images": n_images, "losses": losses}


def _grow(counts: torch.Tensor, n: int) -> torch.Tensor:
    """``counts`` zero-padded to length ``max(len(counts), n)``."""
    if len(counts) >= n:
        return counts
    return torch.cat([counts, counts.new_zeros(n - len(counts))])


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def per_class_table(metrics: dict, names: Sequence[str] | None = None) -> list[dict]:
    """The YOLOv5 ``val.py`` per-class table of a :func:`validate` result: one row per class
    with ground truth, then ``"all"`` first.

    Row: ``{"class": name, "images": int, "instances": int, "P", "R", "map50", "map"}``.
    P and R are read off the COCO precision-recall curve at IoU 0.5 (area all, 100
    detections) at the recall threshold of maximal F1 (YOLOv5 reports P, R at the max-F1
    confidence); mAP@0.5 and mAP@0.5:0.95 are COCO's per class (the means of the 101-point
    interpolated precision). The ``all`` row: images = validated images, instances = the sum,
    P, R, mAPs the means over the classes with ground truth (as YOLOv5).
    """
    result = metrics["result"]
    prec = _np(result.precision)  # [T, R, K, A, M]
    rec_thrs = _np(result.rec_thrs)
    m100 = [i for i, v in enumerate(result.max_dets) if int(v) == 100] or [len(result.max_dets) - 1]
    cat_ids = [int(c) for c in _np(result.cat_ids).tolist()]
    rows = []
    for k, cid in enumerate(cat_ids):
        n_inst = metrics["instances"].get(cid, 0)
        if n_inst == 0:
            continue
        p50 = prec[0, :, k, 0, m100[-1]]  # [R]
        p = np.where(p50 > -1, p50, 0.0)
        f1 = 2 * p * rec_thrs / np.maximum(p + rec_thrs, 1e-16)
        best = int(np.argmax(f1))
        valid50 = prec[0, :, k, 0, m100[-1]]
        map50 = float(valid50[valid50 > -1].mean()) if (valid50 > -1).any() else 0.0
        ap = float(result.per_class.get(cid, -1.0))
        rows.append({"class": names[cid] if names is not None and cid < len(names) else str(cid),
                     "images": metrics["images"].get(cid, 0), "instances": n_inst,
                     "P": float(p[best]) if f1[best] > 0 else 0.0,
                     "R": float(rec_thrs[best]) if f1[best] > 0 else 0.0,
                     "map50": map50, "map": max(ap, 0.0)})
    mean = (lambda key: float(np.mean([r[key] for r in rows])) if rows else 0.0)
    head = {"class": "all", "images": metrics.get("n_images", 0),
            "instances": sum(r["instances"] for r in rows), "P": mean("P"), "R": mean("R"),
            "map50": mean("map50"), "map": mean("map")}
    return [head, *rows]


@torch.no_grad()
def precise_bn(model: torch.nn.Module, loader: Iterable, device: torch.device | str,
               num_batches: int) -> int:
    """Recompute the BatchNorm running mean / variance of ``model`` as the plain average over
    ``num_batches`` batches of ``loader`` (a DataLoader or a list of its batches; forward
    passes in train mode, no gradient), instead of
    the slow exponential average (momentum 0.03) kept during training; returns the number of
    batches used. A short run's eval-mode outputs otherwise use statistics still dominated by
    the initial (0, 1). Convention: detectron2 ``update_bn_stats`` ("precise BN"),
    ``torch.optim.swa_utils.update_bn``.
    """
    m = unwrap(model)
    bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or num_batches <= 0:
        return 0
    was_training = m.training
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative moving average
    m.train()
    used = 0
    for imgs, *_ in loader:
        if used >= num_batches:
            break
        m(imgs.to(device).float() / 255)
        used += 1
    for b, mom in zip(bns, momenta):
        b.momentum = mom
        if _distributed():  # every rank ends with the average of the ranks' statistics
            for buf in (b.running_mean, b.running_var):
                dist.all_reduce(buf)
                buf /= dist.get_world_size()
    m.train(was_training)
    return used
