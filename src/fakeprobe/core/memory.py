"""Give freed heap memory back to the operating system between files.

glibc keeps memory freed by a thread in that thread's arena; with the decoder, detector and
classifier working in different threads, a long batch then holds ~1.5 GiB where ~1.1 GiB is
in use (BENCHMARKS.md). ``malloc_trim`` returns it; elsewhere this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; True if that was possible here."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
