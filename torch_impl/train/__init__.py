"""Training machinery of the PyTorch port (torch only; no NumPy reference): YOLOv5 v7.0
hyper-parameters, parameter groups and learning-rate schedule (:mod:`.optim`), the model EMA
(:mod:`.ema`), atomic checkpoints with RNG states (:mod:`.checkpoint`) and the epoch loop and
validation (:mod:`.engine`). ``scripts/train.py`` and ``scripts/predict.py`` are the CLIs."""
from torch_impl.train.checkpoint import (get_rng_state, load_checkpoint, save_checkpoint,
                                         set_rng_state)
from torch_impl.train.ema import ModelEMA
from torch_impl.train.engine import (NonFiniteLossError, autoanchor, broadcast_state,
                                     dataset_wh, precise_bn, targets_to_xyxy, train_one_epoch,
                                     validate)
from torch_impl.train.optim import (HYP_SCRATCH_LOW, build_optimizer, lr_lambda, param_groups,
                                    warmup_iters, warmup_step)

__all__ = [
    "HYP_SCRATCH_LOW", "ModelEMA", "NonFiniteLossError", "autoanchor", "broadcast_state",
    "build_optimizer", "dataset_wh", "get_rng_state", "load_checkpoint", "lr_lambda",
    "param_groups", "precise_bn", "save_checkpoint", "set_rng_state", "targets_to_xyxy",
    "train_one_epoch", "validate", "warmup_iters", "warmup_step",
]
