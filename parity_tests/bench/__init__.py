"""Benchmarks against the peers, each timed in the same run (``yolo-ref bench NAME``)."""
