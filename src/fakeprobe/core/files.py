"""What an input path is, found with ``stat`` before anything opens it.

Opening a FIFO for reading blocks until some process writes to it (a scan worker would then sit
until the per-file time limit); a socket cannot be opened, and a device file is no media file
(``/dev/zero`` never ends). Only regular files are ever opened: anything else, after following
symlinks, is an ``InputError`` at once.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import InputError

_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


def file_type(mode: int) -> str:
    """A short name for what ``mode`` (``st_mode``) is, for messages."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "directory"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def regular_file(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` (symlinks followed) if ``path`` is a regular file; otherwise an
    ``InputError`` with a one-line reason: ``not_found``, ``unreadable``, or ``not_a_file``
    (a directory, FIFO, socket or device). The file itself is never opened here."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{path}: no such file", kind="not_found") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied", kind="unreadable") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{path}: no such file (symlink loop)", kind="not_found") from None
        raise InputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})", kind="unreadable") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory", kind="not_a_file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file ({file_type(st.st_mode)})", kind="not_a_file")
    return st
