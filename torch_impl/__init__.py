"""PyTorch port of :mod:`ref_numpy`: the same modules and names, batched, any device,
autograd-safe where a gradient makes sense."""
