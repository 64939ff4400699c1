"""Training machinery of the PyTorch port (torch only; no NumPy reference).

- :func:`train` runs a whole training from a :class:`TrainConfig` and returns a
  :class:`TrainResult` (:mod:`.trainer`, :mod:`.config`); ``yolo-ref train`` is its CLI;
- :func:`predict` runs a checkpoint on images (:mod:`.inference`); ``yolo-ref predict``;
- the YOLOv5 v7.0 pieces they are made of: hyper-parameters, parameter groups and learning-rate
  schedule (:mod:`.optim`), the model EMA (:mod:`.ema`), atomic checkpoints with RNG states
  (:mod:`.checkpoint`), the epoch loop, validation and autoanchor step (:mod:`.engine`).
"""
from torch_impl.train.checkpoint import (get_rng_state, load_checkpoint, save_checkpoint,
                                         set_rng_state)
from torch_impl.train.config import NOT_RESUMED, TrainConfig, TrainResult
from torch_impl.train.ema import ModelEMA, unwrap
from torch_impl.train.engine import (NonFiniteLossError, autoanchor, autocast_dtype, broadcast_state,
                                     dataset_wh, loss_terms, precise_bn, targets_to_xyxy,
                                     train_one_epoch, validate)
from torch_impl.train.optim import (HYP_SCRATCH_LOW, build_optimizer, lr_lambda, param_groups,
                                    warmup_iters, warmup_step)
from torch_impl.train.inference import (PredictResult, list_images, load_model, predict,
                                      predict_images)
from torch_impl.train.trainer import plot_results, resolve_device, state_hash, train

__all__ = [
    "HYP_SCRATCH_LOW", "NOT_RESUMED", "ModelEMA", "NonFiniteLossError", "PredictResult",
    "TrainConfig", "TrainResult", "autoanchor", "autocast_dtype", "broadcast_state", "build_optimizer",
    "dataset_wh", "get_rng_state", "list_images", "load_checkpoint", "load_model", "loss_terms",
    "lr_lambda", "param_groups", "plot_results", "precise_bn", "predict", "predict_images",
    "resolve_device", "save_checkpoint", "set_rng_state", "state_hash", "targets_to_xyxy",
    "train", "train_one_epoch", "unwrap", "validate", "warmup_iters", "warmup_step",
]
