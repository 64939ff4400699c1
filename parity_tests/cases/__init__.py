"""Registry rows, one module per ``ref_numpy`` module; each defines ``CASES``."""
