"""How many CPU threads each stage of a scan gets."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def scan_threads(requested: int = 0, *, workers: int = 1) -> int:
    """CPU threads one scanning process may keep busy: ``requested`` if > 0, else its share of
    the usable cores when ``workers`` processes scan side by side."""
    if requested > 0:
        return requested
    return max(1, usable_cores() // max(1, workers))


def beside_decoder(threads: int) -> int:
    """Threads for detection and classification while the decoder thread is working: one fewer
    than the scan's share, at least one. On 2 cores, 1 detection thread beside the decoder scanned
    up to 13% faster than not overlapping, 2 threads beside it were slower (BENCHMARKS.md)."""
    return max(1, threads - 1)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)
