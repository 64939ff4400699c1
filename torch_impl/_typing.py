"""Type aliases for the port's signatures (private; used in annotations only).

``TensorLike``: what a public port function accepts where the reference takes a NumPy
``ArrayLike``: a tensor (kept on its device, in its dtype) or anything ``np.asarray`` accepts
(NumPy arrays, nested lists, scalars), converted through NumPy so that Python lists get the
reference's dtypes (see ``torch_impl._validate.as_tensor``).
"""
from __future__ import annotations

from typing import TypeAlias

import torch
from numpy.typing import ArrayLike

TensorLike: TypeAlias = torch.Tensor | ArrayLike
