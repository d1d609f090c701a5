"""How close the classifier's scores from two code paths must be when only float rounding differs.

The same crops classified in other batches (the overlapped scan groups them as frames come, a
one-thread ONNX session takes two at a time, an ensemble member, ONNX Runtime against torch) give
float32 logits that differ in their last bits: each batch size and runtime has its own SIMD kernels
and summation orders, which differ from one CPU to another. The error scales with the network's
activations, not with the logit itself (a logit near 0 is a difference of large terms), so the
tolerance is relative to max(|logit|, 1). Where face detection ran with other thread counts, its
boxes differ in their last bits too, and the crops' rounding to uint8 moves a few pixels by one
grey level: 3e-4 on a logit of -1.8 (a 2-core Xeon, the overlapped against the sequential scan;
the batch size alone moved logits by 5e-6 there). LOGIT_RTOL = 2e-3 allows ~10x that, and stays
below what a real change does to the test model's logits: all crops moved by one pixel shift them
by 0.05 in the median, another face's crop by 0.1 (test_prefetch checks that such a change fails).
Records round scores to 4 decimals, which adds up to 1e-4 (ROUNDING) between two runs.
"""
from __future__ import annotations

import numpy as np

LOGIT_RTOL = 2e-3
ROUNDING = 1e-4
# |dp| = p(1-p)|dz| and p(1-p) * max(|z|, 1) <= 1/4 for every p: a probability moves by at most
# LOGIT_RTOL / 4 when its logit moves by LOGIT_RTOL * max(|z|, 1)
PROBABILITY_ATOL = LOGIT_RTOL / 4 + ROUNDING


def logit_tolerance(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return LOGIT_RTOL * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))) + ROUNDING


def logits_close(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool((np.abs(a - b) <= logit_tolerance(a, b)).all())


def assert_logits_close(a, b) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    off = np.abs(a - b) > logit_tolerance(a, b)
    assert not off.any(), f"logits differ beyond float rounding at {np.flatnonzero(off).tolist()}: {a[off].tolist()} vs {b[off].tolist()}"


def assert_probabilities_close(a, b) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    off = np.abs(a - b) > PROBABILITY_ATOL
    assert not off.any(), f"probabilities differ beyond float rounding at {np.flatnonzero(off).tolist()}: {a[off].tolist()} vs {b[off].tolist()}"
