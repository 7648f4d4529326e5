"""Private files and directories: the data directory, the database and key files (DESIGN §4, §5).

The permissions are set explicitly rather than left to the process umask, which the operator (or a
container's entrypoint) controls: under ``umask 000`` a plain ``mkdir`` or SQLite's own file creation
makes world-readable files. The global umask is never changed: other threads create files too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "private_dir", "private_file", "write_private_file"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """chmod `path` to `mode` if it is ours and grants more than `mode`; someone else's is left alone."""
    status = path.stat()
    if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) & ~mode:
        path.chmod(mode)


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents, with default permissions) as a 0700 directory.

    An existing directory of ours that others may enter is made 0700; one owned by someone else is
    used as it is.
    """
    path = Path(path)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    except FileExistsError:
        if not path.is_dir():
            raise
    # mkdir's mode is filtered by the umask (under 0777 it would be 0000): set it outright
    status = path.stat()
    if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a 0600 file (an empty one if it did not exist); its parent must exist.

    An existing file of ours that others may read is made 0600, without opening it: closing any
    descriptor of a file drops every POSIX lock this process holds on it, so opening and closing a
    database file that another engine of this process has open would silently release SQLite's
    locks on it, and a second writer could then corrupt it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    _tighten(path, PRIVATE_FILE_MODE)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write a new 0600 file in one go; fails if `path` exists (a key is never overwritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
