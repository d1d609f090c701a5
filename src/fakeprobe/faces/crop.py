"""The one face-crop function used by scan, extract and training, so crops always match."""
from __future__ import annotations

import math

import cv2
import numpy as np

CUT_SIZE = 224  # crops for a smaller input are cut at this size first (see crop_face)


def crop_transform(
    box: np.ndarray, landmarks: np.ndarray | None, size: int, margin: float, align: bool
) -> np.ndarray:
    """2x3 affine matrix mapping image coordinates to crop coordinates.

    The crop is a square of side ``max(w, h) * margin`` centred on the box; with ``align`` it is
    turned so the eyes (landmarks 0 and 1) are level.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * margin
    angle = 0.0
    if align and landmarks is not None:
        (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    return m


def crop_face(
    image: np.ndarray,
    box: np.ndarray,
    landmarks: np.ndarray | None = None,
    *,
    size: int = 224,
    margin: float = 1.3,
    align: bool = False,
) -> np.ndarray:
    """Square face crop of ``size`` pixels; outside the image is filled by mirroring.

    A crop smaller than ``CUT_SIZE`` is cut at ``CUT_SIZE`` and shrunk by area averaging: training
    shrinks crops extracted at 224 px to a smaller model input that way, and a direct bilinear warp
    to the small size would alias, so scan's crops would not be the ones the model learnt from."""
    if size < CUT_SIZE:
        big = crop_face(image, box, landmarks, size=CUT_SIZE, margin=margin, align=align)
        return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    m = crop_transform(box, landmarks, size, margin, align)
    scale = math.hypot(m[0, 0], m[0, 1])
    if scale < 0.5:
        # warpAffine interpolates bilinearly and would alias a large downscale: shrink the
        # neighbourhood of the face with area averaging first
        pre = max(scale * 1.5, 1e-3)
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        half = max(x2 - x1, y2 - y1) * margin * 0.75 + 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        h, w = image.shape[:2]
        ox, oy = int(max(0, cx - half)), int(max(0, cy - half))
        ex, ey = int(min(w, cx + half + 1)), int(min(h, cy + half + 1))
        region = image[oy:ey, ox:ex]
        if region.size:
            small = cv2.resize(region, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
            fx = small.shape[1] / region.shape[1]
            fy = small.shape[0] / region.shape[0]
            # crop coordinates = m @ [x, y, 1], with x = ox + xs / fx
            m2 = m.copy()
            m2[:, 0] = m[:, 0] / fx
            m2[:, 1] = m[:, 1] / fy
            m2[:, 2] = m[:, 2] + m[:, 0] * ox + m[:, 1] * oy
            return cv2.warpAffine(small, m2, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an (N, 2) array of points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]
