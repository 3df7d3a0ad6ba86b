"""Files that hold customer data (stores, sent messages, reports) are created owner-only (0600).

Phone numbers, names and messages must not be readable by every account on the host, whatever
the process's umask. A file that already exists keeps the mode its owner gave it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600


def create_private(path: str | Path) -> bool:
    """Create an empty owner-only file unless one exists; True when it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: str | Path, mode: str = "a") -> IO[str]:
    """Open a text file to append ("a") or overwrite ("w"), created owner-only if missing."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_MODE)
    return os.fdopen(fd, mode, encoding="utf-8")


def write_private(path: str | Path, text: str) -> None:
    """Write a whole text file (a report), created owner-only if missing."""
    with open_private(path, "w") as out:
        out.write(text)
