"""Robustness augmentations applied alike to real and fake training crops."""
from __future__ import annotations

import cv2
import numpy as np


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else img


def rescale(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def robustness(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Flip, small shift/zoom, colour jitter, down/up-scaling, blur, noise, JPEG 30-100."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5 * strength:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), rng.uniform(0.93, 1.07))
        m[:, 2] += rng.uniform(-0.04, 0.04, 2) * (w, h)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = np.ascontiguousarray(img)
    if rng.random() < 0.5 * strength:
        f = img.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        gray = f.mean(axis=2, keepdims=True)
        f = gray + (f - gray) * rng.uniform(0.7, 1.3)
        img = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.25 * strength:
        img = rescale(img, rng.uniform(0.4, 0.9))
    if rng.random() < 0.15 * strength:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.4))
    if rng.random() < 0.15 * strength:
        img = np.clip(img + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5 * strength:
        img = jpeg(img, int(rng.integers(30, 101)))
    return img
