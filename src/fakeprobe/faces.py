"""Face detection with MTCNN (facenet-pytorch's bundled weights; nothing is downloaded)."""
from __future__ import annotations

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
        chunk: int = 8,
    ):
        from facenet_pytorch import MTCNN

        self.max_side = max_side
        self.min_score = min_score
        self.chunk = max(1, chunk)  # frames per MTCNN batch: bounds the first stage's memory, same speed
        self.mtcnn = MTCNN(
            keep_all=True,
            device=torch.device(device),
            min_face_size=min_face_size,
            select_largest=False,
            post_process=False,
        )

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Faces for each RGB uint8 image, boxes in that image's pixel coordinates."""
        results: list[list[Face]] = [[] for _ in images]
        # MTCNN batches only same-sized images: group by shape
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape[:2], []).append(i)
        for (h, w), idxs in groups.items():
            scale = min(1.0, self.max_side / max(h, w))
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
                found = _detect_faces(self.mtcnn, np.stack(small[start : start + self.chunk]))
                for i, (b, pts) in zip(part, found):
                    for box, lm in zip(b, pts):
                        score = float(box[4])
                        if score < self.min_score:
                            continue
                        results[i].append(
                            Face(box=np.asarray(box[:4], dtype=np.float64) / scale, score=score, landmarks=np.asarray(lm, dtype=np.float64) / scale)
                        )
        return results


# -- MTCNN ---------------------------------------------------------------------------------------
# facenet-pytorch's detect_face (MIT licence), with its per-candidate loops replaced: stage 2 and
# 3 resample every candidate box to 24/48 px with one call to adaptive_avg_pool2d each (that is
# what its ``interpolate(mode="area")`` does), which cost most of the detection time on textured
# frames. Here the same windowed means come from an integral image, all boxes at once, so the
# crops (and hence boxes, scores and landmarks) are the same up to float rounding.


def _area_resample(integral: np.ndarray, inds: np.ndarray, y: np.ndarray, ey: np.ndarray, x: np.ndarray, ex: np.ndarray,
                   size: int) -> torch.Tensor:
    """Boxes ``[y-1:ey, x-1:ex]`` of the images (given as integral images, (B, H+1, W+1, C)) resampled
    to ``size`` x ``size`` exactly as ``adaptive_avg_pool2d`` would; returns (N, C, size, size) float32."""
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
    b = inds[:, None, None]
    r0, r1, c0, c1 = r0[:, :, None], r1[:, :, None], c0[:, None, :], c1[:, None, :]
    sums = integral[b, r1, c1] - integral[b, r0, c1] - integral[b, r1, c0] + integral[b, r0, c0]  # (N, size, size, C)
    area = ((r1 - r0) * (c1 - c0))[..., None]
    out = sums.astype(np.float64) / area
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32))


@torch.no_grad()
def _detect_faces(mtcnn, images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """MTCNN on a batch of same-sized RGB uint8 images (B, H, W, 3): per image, boxes (N, 5:
    x1, y1, x2, y2, score) and landmarks (N, 5, 2) in that image's pixels."""
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, fixed_batch_process, generateBoundingBox, pad, rerec
    from torch.nn.functional import interpolate
    from torchvision.ops.boxes import batched_nms

    pnet, rnet, onet = mtcnn.pnet, mtcnn.rnet, mtcnn.onet
    threshold, factor = mtcnn.thresholds, mtcnn.factor
    dtype = next(pnet.parameters()).dtype
    device = next(pnet.parameters()).device
    imgs = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).to(dtype)
    batch_size, (h, w) = len(images), images.shape[1:3]
    integral = None

    m = 12.0 / mtcnn.min_face_size
    minl = min(h, w) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor

    # first stage: P-Net over the image pyramid
    boxes, image_inds, picks = [], [], []
    offset = 0
    for scale in scales:
        im_data = interpolate(imgs, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
        reg, probs = pnet((im_data - 127.5) * 0.0078125)
        boxes_scale, inds_scale = generateBoundingBox(reg, probs[:, 1], scale, threshold[0])
        boxes.append(boxes_scale)
        image_inds.append(inds_scale)
        picks.append(batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], inds_scale, 0.5) + offset)
        offset += boxes_scale.shape[0]
    boxes, image_inds = torch.cat(boxes)[torch.cat(picks)], torch.cat(image_inds)[torch.cat(picks)]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]]).permute(1, 0)
    boxes = rerec(boxes)

    # second stage: R-Net on 24 px crops of the candidates
    if len(boxes) > 0:
        integral = np.zeros((batch_size, h + 1, w + 1, images.shape[3]), np.int32)  # 255 * H * W fits easily
        np.cumsum(np.cumsum(images, axis=1, dtype=np.int32), axis=2, out=integral[:, 1:, 1:])
        y, ey, x, ex = pad(boxes, w, h)
        im_data = (_area_resample(integral, image_inds.cpu().numpy(), y, ey, x, ex, 24).to(device, dtype) - 127.5) * 0.0078125
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
        im_data = (_area_resample(integral, image_inds.cpu().numpy(), y, ey, x, ex, 48).to(device, dtype) - 127.5) * 0.0078125
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
