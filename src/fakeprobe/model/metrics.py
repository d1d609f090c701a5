"""One metrics function for every detector and every level (frame, video)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(probs[sel].mean() - labels[sel].mean())
    return float(ece)


def compute_metrics(labels, logits, *, threshold: float = 0.5) -> dict:
    """ACC (at ``threshold`` on the probability), AUC, AP, EER, log-loss and ECE from logits.

    AUC, AP and EER are ``nan`` when only one class is present."""
    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    p = _sigmoid(z)
    both = 0 < y.sum() < len(y)
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {
        "n": int(len(y)),
        "n_fake": int(y.sum()),
        "auc": float(roc_auc_score(y, z)) if both else float("nan"),
        "ap": float(average_precision_score(y, z)) if both else float("nan"),
        "eer": equal_error_rate(y, z) if both else float("nan"),
        "acc": float(((p >= threshold) == (y == 1)).mean()) if len(y) else float("nan"),
        "logloss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p) if len(y) else float("nan"),
        "threshold": float(threshold),
    }


def video_level(groups, labels, logits) -> tuple[np.ndarray, np.ndarray, list]:
    """Mean logit per group (video), with its label; returns (labels, logits, group keys)."""
    acc: dict = defaultdict(list)
    lab: dict = {}
    for g, y, z in zip(groups, labels, logits):
        acc[g].append(float(z))
        lab[g] = y
    keys = list(acc)
    return np.array([lab[k] for k in keys]), np.array([np.mean(acc[k]) for k in keys]), keys
