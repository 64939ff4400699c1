"""Pure-NumPy reference of YOLO-family detection math: the specification.

One module per concern (``boxes``, ``coder``, ``nms``, ...); ``torch_impl`` mirrors every
module and public function name for name.
"""
