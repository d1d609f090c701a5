"""Face detection with MTCNN (facenet-pytorch's bundled weights; nothing is downloaded)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass
class Face:
    """A detected face in analysed-frame pixel coordinates."""

    box: np.ndarray  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # 5x2: left eye, right eye, nose, mouth left, mouth right


class FaceDetector:
    """Batched MTCNN on frames downscaled so their longest side is at most ``max_side``."""

    def __init__(
        self,
        device: str = "cpu",
        *,
        max_side: int = 640,
        min_score: float = 0.92,
        min_face_size: int = 20,
        chunk: int = 4,
    ):
        from facenet_pytorch import MTCNN

        self.max_side = max_side
        self.min_score = min_score
        self.min_face_size = min_face_size
        self.chunk = max(1, chunk)  # frames per MTCNN batch: 4 is as fast as 8 and needs less memory than 8 or 32 (BENCHMARKS.md)
        self.mtcnn = MTCNN(
            keep_all=True,
            device=torch.device(device),
            min_face_size=min_face_size,
            select_largest=False,
            post_process=False,
        )
        # channels-last roughly halves the CPU time of all three MTCNN networks (measured, torch 2.x on x86)
        for net in (self.mtcnn.pnet, self.mtcnn.rnet, self.mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def scale(self, shape: tuple[int, int]) -> float:
        """The factor an image of ``shape`` (height, width) is resized by for detection."""
        return min(1.0, self.max_side / max(shape))

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Faces for each RGB uint8 image, boxes in that image's pixel coordinates: the full
        search (MTCNN's image pyramid, every face of at least ``min_face_size`` detection pixels)."""
        return self._run(images, [None] * len(images))

    def detect_near(self, images: list[np.ndarray], near: list[np.ndarray]) -> list[list[Face]]:
        """Faces for each image, looked for only around the boxes ``near[i]`` (K, 4 or 5: x1, y1,
        x2, y2 in that image's pixels, and optionally a reach, e.g. from :func:`between`):
        windows of 0.85–1.2 times a box's side, shifted by up to a quarter of it (and, with a
        reach above that, windows of its size on a grid of a quarter of its side out to the reach) go
        straight to MTCNN's second and third stages, which refine them. A fraction of the full
        search's cost; it finds a face only where one was expected."""
        return self._run(images, [_with_reach(b) for b in near])

    def _run(self, images: list[np.ndarray], near: list[np.ndarray | None]) -> list[list[Face]]:
        """``near[i]`` None: full search in image i; otherwise only around those boxes."""
        results: list[list[Face]] = [[] for _ in images]
        # MTCNN batches only same-sized images with the same kind of search: group them
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for i, img in enumerate(images):
            if near[i] is not None and len(near[i]) == 0:
                continue  # nothing to look around
            groups.setdefault((*img.shape[:2], near[i] is None), []).append(i)
        for (h, w, full), idxs in groups.items():
            scale = self.scale((h, w))
            small = [
                cv2.resize(images[i], (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
                if scale < 1.0
                else images[i]
                for i in idxs
            ]
            if min(small[0].shape[:2]) < 12:
                continue  # smaller than MTCNN's first-stage window: no face can be found
            for start in range(0, len(idxs), self.chunk):
                part = idxs[start : start + self.chunk]
                windows = None if full else [near[i] * [scale, scale, scale, scale, 1.0] for i in part]
                found = _detect_faces(self.mtcnn, np.stack(small[start : start + self.chunk]), near=windows)
                for i, (b, pts) in zip(part, found):
                    for box, lm in zip(b, pts):
                        score = float(box[4])
                        if score < self.min_score:
                            continue
                        results[i].append(
                            Face(box=np.asarray(box[:4], dtype=np.float64) / scale, score=score, landmarks=np.asarray(lm, dtype=np.float64) / scale)
                        )
        return results


def _with_reach(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim == 2 and boxes.shape[1] == 5:
        return boxes
    boxes = boxes.reshape(-1, 4)
    return np.hstack([boxes, np.full((len(boxes), 1), NEAR_REACH)])


def between(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where to look for faces in a frame shown between two frames whose faces were ``before``
    and ``after`` (K, 4 each; either may be empty): rows x1, y1, x2, y2, reach (how far the face
    may have moved, in box sides; see :meth:`FaceDetector.detect_near`).

    A face seen in both frames counts once, at the box halfway between its two boxes (and at both
    of them as well when it moved by more than half its side). A face seen in only one of them
    may be entering or leaving the picture, in any direction: its box gets a wide reach.
    """
    before = np.asarray(before, np.float64).reshape(-1, 4)
    after = np.asarray(after, np.float64).reshape(-1, 4)
    out: list[np.ndarray] = []
    used = np.zeros(len(after), bool)
    for a in before:
        side_a = max(a[2] - a[0], a[3] - a[1])
        best, best_d = -1, np.inf
        for j, b in enumerate(after):
            side_b = max(b[2] - b[0], b[3] - b[1])
            d = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
            if not used[j] and 0.67 <= side_b / side_a <= 1.5 and d < side_a + side_b and d < best_d:
                best, best_d = j, d
        if best < 0:
            out.append(np.append(a, WIDE_REACH))
            continue
        b = after[best]
        used[best] = True
        out.append(np.append((a + b) / 2, NEAR_REACH))
        if best_d > (side_a + max(b[2] - b[0], b[3] - b[1])) / 4:  # moved by more than half its side
            out += [np.append(a, NEAR_REACH), np.append(b, NEAR_REACH)]
    out += [np.append(b, WIDE_REACH) for b in after[~used]]
    return np.array(out).reshape(-1, 5)


# square candidate windows around a known face: centre shifts and sizes, as fractions of its side
NEAR_REACH = 0.25  # the shifts below
WIDE_REACH = 1.0
_NEAR_SHIFTS = (-0.25, 0.0, 0.25)
_NEAR_SIZES = (0.85, 1.0, 1.2)
_WIDE_STEP = 0.25  # beyond NEAR_REACH, windows of the box's size on a grid of a quarter of its side


@functools.lru_cache(maxsize=8)
def _windows(reach: float) -> tuple[tuple[float, float, float], ...]:
    """(dx, dy, size) of the candidate windows for one box, as fractions of its side."""
    out = [(dx, dy, k) for dx in _NEAR_SHIFTS for dy in _NEAR_SHIFTS for k in _NEAR_SIZES]
    steps = np.arange(-np.floor(reach / _WIDE_STEP), np.floor(reach / _WIDE_STEP) + 1) * _WIDE_STEP
    out += [(dx, dy, 1.0) for dx in steps for dy in steps if max(abs(dx), abs(dy)) > NEAR_REACH]
    return tuple(out)


def _near_candidates(near: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-2 candidates (x1, y1, x2, y2, score) around each image's ``near`` boxes (rows x1, y1,
    x2, y2, reach), and their image indices."""
    out, inds = [], []
    for b, boxes in enumerate(near):
        for box in boxes:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            side = max(box[2] - box[0], box[3] - box[1])
            for dx, dy, k in _windows(float(box[4])):
                x, y, half = cx + dx * side, cy + dy * side, side * k / 2
                out.append((x - half, y - half, x + half, y + half, 1.0))
                inds.append(b)
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 5), torch.tensor(inds, dtype=torch.int64)


# -- MTCNN ---------------------------------------------------------------------------------------
# facenet-pytorch's detect_face (MIT licence), with its per-candidate loops replaced: stage 2 and
# 3 resample every candidate box to 24/48 px with one call to adaptive_avg_pool2d each (that is
# what its ``interpolate(mode="area")`` does), about a third of the detection time on textured
# frames. Here the same windowed means come from an integral image, all boxes at once, so the
# crops (and hence boxes, scores and landmarks) are the same up to float rounding; the image
# pyramid of the first stage is made from the same integral image. The networks
# run on channels-last tensors (faster on CPU, same results).


def _area_resize(integral: np.ndarray, out_h: int, out_w: int) -> torch.Tensor:
    """Whole images (as integral images) resized like ``interpolate(mode="area")``, MTCNN-normalised,
    as an NCHW view of channels-last memory."""
    height, width = integral.shape[1] - 1, integral.shape[2] - 1
    k = np.arange(out_h)
    r0, r1 = k * height // out_h, -(-(k + 1) * height // out_h)
    k = np.arange(out_w)
    c0, c1 = k * width // out_w, -(-(k + 1) * width // out_w)
    rows = np.take(integral, r1, axis=1) - np.take(integral, r0, axis=1)  # (B, out_h, W + 1, C)
    out = (np.take(rows, c1, axis=2) - np.take(rows, c0, axis=2)).astype(np.float32)  # window sums
    out *= (0.0078125 / ((r1 - r0)[:, None] * (c1 - c0)[None, :])).astype(np.float32)[None, :, :, None]
    out -= np.float32(127.5 * 0.0078125)
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def _area_resample(integral: np.ndarray, inds: np.ndarray, y: np.ndarray, ey: np.ndarray, x: np.ndarray, ex: np.ndarray,
                   size: int) -> torch.Tensor:
    """Boxes ``[y-1:ey, x-1:ex]`` of the images (given as integral images, (B, H+1, W+1, C)) resampled
    to ``size`` x ``size`` as ``interpolate(mode="area")`` would, MTCNN-normalised; (N, C, size, size)."""
    height, width = integral.shape[1] - 1, integral.shape[2] - 1
    y0 = np.clip(y.astype(np.int64) - 1, 0, height - 1)
    x0 = np.clip(x.astype(np.int64) - 1, 0, width - 1)
    h = np.clip(ey.astype(np.int64) - y0, 1, height - y0)  # a box wholly outside keeps one edge pixel
    w = np.clip(ex.astype(np.int64) - x0, 1, width - x0)
    k = np.arange(size)
    r0 = y0[:, None] + (k * h[:, None]) // size  # floor(k * h / size)
    r1 = y0[:, None] - (-(k + 1) * h[:, None] // size)  # ceil((k + 1) * h / size)
    c0 = x0[:, None] + (k * w[:, None]) // size
    c1 = x0[:, None] - (-(k + 1) * w[:, None] // size)
    flat = integral.reshape(-1, integral.shape[3])
    base = inds.astype(np.int64)[:, None, None] * (height + 1)
    row0, row1 = (base + r0[:, :, None]) * (width + 1), (base + r1[:, :, None]) * (width + 1)  # (N, size, 1)
    col0, col1 = c0[:, None, :], c1[:, None, :]  # (N, 1, size)
    out = (np.take(flat, row1 + col1, axis=0) - np.take(flat, row0 + col1, axis=0)
           - np.take(flat, row1 + col0, axis=0) + np.take(flat, row0 + col0, axis=0)).astype(np.float32)  # (N, size, size, C)
    out *= (0.0078125 / ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :])).astype(np.float32)[..., None]
    out -= np.float32(127.5 * 0.0078125)
    return torch.from_numpy(out).permute(0, 3, 1, 2)  # NCHW view of channels-last memory


@torch.no_grad()
def _detect_faces(mtcnn, images: np.ndarray, near: list[np.ndarray] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """MTCNN on a batch of same-sized RGB uint8 images (B, H, W, 3): per image, boxes (N, 5:
    x1, y1, x2, y2, score) and landmarks (N, 5, 2) in that image's pixels. With ``near`` (per
    image, rows x1, y1, x2, y2, reach) the first stage is skipped: windows around those boxes are the second
    stage's candidates instead."""
    from facenet_pytorch.models.utils.detect_face import (
        batched_nms_numpy,
        bbreg,
        fixed_batch_process,
        generateBoundingBox,
        pad,
        rerec,
    )
    from torchvision.ops.boxes import batched_nms

    pnet, rnet, onet = mtcnn.pnet, mtcnn.rnet, mtcnn.onet
    threshold, factor = mtcnn.thresholds, mtcnn.factor
    dtype = next(pnet.parameters()).dtype
    device = next(pnet.parameters()).device
    batch_size, (h, w) = len(images), images.shape[1:3]
    integral = np.stack([cv2.integral(im) for im in images])  # int32, (B, H + 1, W + 1, 3); 255 * H * W fits

    m = 12.0 / mtcnn.min_face_size
    minl = min(h, w) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor
    if near is not None:
        scales = []
    elif not scales:  # smaller than one P-Net window at the minimum face size
        return [(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)) for _ in range(batch_size)]

    # first stage: P-Net over the image pyramid
    boxes, image_inds, picks = [], [], []
    offset = 0
    for scale in scales:
        reg, probs = pnet(_area_resize(integral, int(h * scale + 1), int(w * scale + 1)).to(device, dtype))
        boxes_scale, inds_scale = generateBoundingBox(reg, probs[:, 1], scale, threshold[0])
        boxes.append(boxes_scale)
        image_inds.append(inds_scale)
        picks.append(batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], inds_scale, 0.5) + offset)
        offset += boxes_scale.shape[0]
    if boxes:
        boxes, image_inds = torch.cat(boxes)[torch.cat(picks)], torch.cat(image_inds)[torch.cat(picks)]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds = boxes[pick], image_inds[pick]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]]).permute(1, 0)
        boxes = rerec(boxes)
    else:
        boxes, image_inds = torch.zeros(0, 5, device=device), torch.zeros(0, dtype=torch.int64, device=device)
    if near is not None:
        extra, extra_inds = _near_candidates(near)
        boxes = torch.cat([boxes, extra.to(boxes.device, boxes.dtype)])
        image_inds = torch.cat([image_inds, extra_inds.to(image_inds.device, image_inds.dtype)])

    # second stage: R-Net on 24 px crops of the candidates
    if len(boxes) > 0:
        y, ey, x, ex = pad(boxes, w, h)
        im_data = _area_resample(integral, image_inds.cpu().numpy(), y, ey, x, ex, 24).to(device, dtype)
        out = fixed_batch_process(im_data, rnet)
        out0, score = out[0].permute(1, 0), out[1].permute(1, 0)[1, :]
        ipass = score > threshold[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
        boxes = rerec(bbreg(boxes, mv))

    # third stage: O-Net on 48 px crops: final boxes, scores and landmarks
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes) > 0:
        y, ey, x, ex = pad(boxes, w, h)
        im_data = _area_resample(integral, image_inds.cpu().numpy(), y, ey, x, ex, 48).to(device, dtype)
        out = fixed_batch_process(im_data, onet)
        out0, points, score = out[0].permute(1, 0), out[1].permute(1, 0), out[2].permute(1, 0)[1, :]
        ipass = score > threshold[2]
        points = points[:, ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        w_i = boxes[:, 2] - boxes[:, 0] + 1
        h_i = boxes[:, 3] - boxes[:, 1] + 1
        points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
        points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
        points = torch.stack((points_x, points_y)).permute(2, 1, 0)
        boxes = bbreg(boxes, mv)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

    boxes, points, image_inds = boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()
    return [(boxes[image_inds == b], points[image_inds == b]) for b in range(batch_size)]
