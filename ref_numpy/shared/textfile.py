"""Reading a text file the one way every reader of the toolkit does: UTF-8, and an unreadable or
undecodable file is a ValueError naming it (never an OSError or UnicodeDecodeError traceback)."""
from __future__ import annotations

import os
from pathlib import Path


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path``.

    Raises:
        ValueError: ``"<path>: cannot read: <reason>"`` (missing, a directory, no permission) or
            ``"<path>: byte <i>: not UTF-8 text"``.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: byte {exc.start}: not UTF-8 text") from exc
