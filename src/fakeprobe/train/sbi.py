"""Self-blended images (after Shiohara & Yamasaki, CVPR 2022), written for this project.

A real face is blended with a slightly altered copy of itself through a soft, randomly deformed
face mask. The result has no semantic change but carries the boundary and colour/frequency
mismatch that face swaps leave, which is what the detector learns to see.
"""
from __future__ import annotations

import cv2
import numpy as np

# dlib 68-point layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
_JAW = list(range(0, 17))
_BROWS = list(range(17, 27))
_INNER = list(range(17, 68))


def _hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    return mask


def face_points_from5(lm5: np.ndarray) -> np.ndarray:
    """A rough face outline (ellipse polygon) from MTCNN's 5 points, for when no dense landmarks
    are available: wider than the eyes, from above the brows to below the mouth."""
    eyes = (lm5[0] + lm5[1]) / 2
    mouth = (lm5[3] + lm5[4]) / 2
    down = mouth - eyes
    length = float(np.linalg.norm(down)) + 1e-6
    down /= length
    right = np.array([down[1], -down[0]])
    if np.dot(right, lm5[1] - lm5[0]) < 0:
        right = -right
    eye_dist = float(np.linalg.norm(lm5[1] - lm5[0]))
    centre = eyes + down * length * 0.55
    a = max(eye_dist * 1.05, length * 0.9)  # half width
    b = length * 1.45  # half height
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return centre + np.outer(np.cos(angles) * a, right) + np.outer(np.sin(angles) * b, down)


def random_face_mask(points: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Soft blending mask in [0, 1] from face landmarks (68 dense points, or an outline)."""
    pts = np.asarray(points, np.float64)
    if len(pts) == 68:
        kind = rng.integers(0, 4)
        if kind == 0:  # whole face
            region = pts
        elif kind == 1:  # whole face with the forehead raised
            brows = pts[_BROWS].copy()
            lift = (pts[8] - pts[27]) * rng.uniform(0.1, 0.45)
            region = np.concatenate([pts[_JAW], brows - lift])
        elif kind == 2:  # inner face: brows, eyes, nose, mouth
            region = pts[_INNER]
        else:  # lower face: cheeks, nose and mouth (reenactment-like edits)
            region = np.concatenate([pts[2:15], pts[[29, 31, 35]]])
    else:
        region = pts
    mask = _hull_mask(region, shape)
    h, w = shape
    # deform the outline: random erosion/dilation then an elastic-ish warp
    size = max(3, int(np.sqrt(mask.sum()) * rng.uniform(0.03, 0.12)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    if rng.random() < 0.7:
        grid = max(4, w // 24)
        dx = cv2.resize(rng.normal(0, 1, (grid, grid)).astype(np.float32), (w, h)) * rng.uniform(1, w * 0.03)
        dy = cv2.resize(rng.normal(0, 1, (grid, grid)).astype(np.float32), (w, h)) * rng.uniform(1, h * 0.03)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mask = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # soft edges: blur twice with random kernels (the blur width is itself an artefact scale)
    for _ in range(2):
        k = int(rng.integers(max(3, w // 40), max(5, w // 8))) | 1
        mask = cv2.GaussianBlur(mask, (k, k), 0)
    mask = mask / max(float(mask.max()), 1e-6)
    ratio = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))  # a Python float keeps the mask float32
    return np.clip(mask * ratio, 0.0, 1.0)


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    out = out * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-20, 20, size=3)  # per-channel gain/shift
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.8, 1.2)
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _frequency_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    if r < 0.35:
        k = int(rng.choice([3, 5]))
        return cv2.GaussianBlur(img, (k, k), rng.uniform(0.5, 1.5))
    if r < 0.7:
        blur = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
        return cv2.addWeighted(img, 1 + rng.uniform(0.3, 1.0), blur, -rng.uniform(0.3, 1.0), 0)
    if r < 0.85:
        h, w = img.shape[:2]
        f = rng.uniform(0.5, 0.85)
        small = cv2.resize(img, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def _small_affine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.03, 0.03) * h
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), s)
    m[:, 2] += (tx, ty)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    # rounded, not truncated: truncation darkens every blended pixel and leaks past the mask's faint tail
    return np.clip(np.rint(source.astype(np.float32) * m + target.astype(np.float32) * (1 - m)), 0, 255).astype(np.uint8)


def self_blend(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake from one real face; returns (fake, mask)."""
    source = image
    if rng.random() < 0.9:
        source = _colour_jitter(source, rng)
    source = _frequency_jitter(source, rng)
    if rng.random() < 0.7:
        source = _small_affine(source, rng)
    if source is image:  # no alteration drawn: the "fake" would be the real image itself
        source = _colour_jitter(source, rng)
    target = image
    if rng.random() < 0.5:  # alter the background instead of the face
        source, target = target, source
    mask = random_face_mask(points, image.shape[:2], rng)
    return blend(target, source, mask), mask


def cross_blend(
    target: np.ndarray, target_lm5: np.ndarray, target_points: np.ndarray,
    donor: np.ndarray, donor_lm5: np.ndarray, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Face X-ray-style fake: another person's face, aligned by landmarks, blended in."""
    m, _ = cv2.estimateAffinePartial2D(donor_lm5.astype(np.float32), target_lm5.astype(np.float32))
    if m is None:
        return self_blend(target, target_points, rng)
    h, w = target.shape[:2]
    source = cv2.warpAffine(donor, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    source = _colour_jitter(source, rng) if rng.random() < 0.5 else source
    mask = random_face_mask(target_points, (h, w), rng)
    return blend(target, source, mask), mask
