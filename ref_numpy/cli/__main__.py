"""``python -m ref_numpy.cli SUBCOMMAND ...`` is ``yolo-ref SUBCOMMAND ...``."""
from ref_numpy.cli import entry_point

entry_point()
