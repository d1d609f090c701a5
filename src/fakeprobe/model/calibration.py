"""Temperature scaling and threshold choice on validation logits."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives, numerically stable
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -z, z))))


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the log-loss of sigmoid(logits / T)."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    if len(z) == 0 or y.min() == y.max():
        return 1.0
    res = minimize_scalar(lambda lt: _nll(z / np.exp(lt), y), bounds=tuple(np.log(bounds)), method="bounded")
    return float(np.exp(res.x))


def threshold_at_fpr(real_logits, fpr: float) -> float:
    """Probability threshold that flags at most ``fpr`` of the given real samples."""
    z = np.sort(np.asarray(real_logits, np.float64))
    if len(z) == 0:
        return 0.5
    q = float(np.quantile(z, 1.0 - fpr, method="higher"))
    # just above the q-th real's probability, so that real is not flagged (verdict: p >= threshold)
    return float(min(1.0, np.nextafter(1.0 / (1.0 + np.exp(-q)), 2.0)))


def threshold_by_source(real_logits: dict[str, np.ndarray], fpr: float) -> tuple[float, dict[str, float]]:
    """The lowest threshold that flags at most ``fpr`` of the real files of *every* source, and
    each source's own threshold: no big source can hide a small one that is flagged often."""
    per_source = {s: threshold_at_fpr(z, fpr) for s, z in real_logits.items() if len(z)}
    if not per_source:
        return 0.5, {}
    return max(per_source.values()), per_source
