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


def compute_threads(requested: int = 0, *, workers: int = 1, overlap: bool = True) -> int:
    """Threads for face detection and classification in one scanning process.

    ``requested`` > 0 is taken as given. Otherwise each of ``workers`` processes gets its share of
    the cores, less one for its decoder thread when decoding overlaps the other stages: on 2 cores,
    1 detection thread beside the decoder scanned 5-25% faster than 2 (BENCHMARKS.md).
    """
    if requested > 0:
        return requested
    share = max(1, usable_cores() // max(1, workers))
    return max(1, share - 1) if overlap else share


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
