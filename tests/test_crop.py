"""The one face-crop function: size, margin, centring, eye alignment, large downscales."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fakeprobe.faces.crop import crop_face, crop_transform, transform_points
from fakeprobe.scan import analysis


def _square_image(box, shape=(400, 500)) -> np.ndarray:
    img = np.zeros((*shape, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def _extent(mask: np.ndarray) -> tuple[int, int]:
    """Width and height of the white region's bounding box."""
    ys, xs = np.nonzero(mask)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize("size", [64, 128, 224])
@pytest.mark.parametrize("align", [False, True])
def test_output_size(size, align):
    img = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    lm = np.array([[180, 140], [220, 150], [200, 170], [185, 190], [215, 195]], float)
    for box in ([150, 100, 250, 220], [0, 0, 30, 30], [390, 290, 460, 380], [0, 0, 400, 300]):
        out = crop_face(img, np.array(box, float), lm, size=size, margin=1.3, align=align)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("margin,size", [(1.3, 130), (1.0, 100), (2.0, 128), (1.5, 224)])
def test_margin(margin, size):
    """The face box spans 1/margin of the crop side, centred."""
    box = (200, 150, 300, 250)  # 100x100
    out = crop_face(_square_image(box), np.array(box, float), size=size, margin=margin)
    white = out[..., 0] > 127
    w, h = _extent(white)
    side = size / margin
    assert abs(w - side) <= 2 and abs(h - side) <= 2, (w, h, side)
    ys, xs = np.nonzero(white)
    assert xs.mean() == pytest.approx((size - 1) / 2, abs=1.0)
    assert ys.mean() == pytest.approx((size - 1) / 2, abs=1.0)


def test_margin_uses_the_longer_box_side():
    box = (200, 100, 260, 300)  # 60 wide, 200 tall
    out = crop_face(_square_image(box), np.array(box, float), size=130, margin=1.3)
    w, h = _extent(out[..., 0] > 127)
    assert abs(h - 100) <= 2 and abs(w - 30) <= 2  # square crop, aspect ratio kept


def test_box_centre_maps_to_crop_centre():
    m = crop_transform(np.array([10.0, 20, 110, 140]), None, 224, 1.3, False)
    assert transform_points(m, [[60, 80]])[0] == pytest.approx([112, 112])
    # side = 120 * 1.3: the box corners land 1.3x inside the crop
    assert transform_points(m, [[60, 20]])[0] == pytest.approx([112, 112 - 112 / 1.3])


def _eyes(angle_deg: float, centre=(250.0, 200.0), dist=60.0) -> np.ndarray:
    a = math.radians(angle_deg)
    dx, dy = math.cos(a) * dist / 2, math.sin(a) * dist / 2
    cx, cy = centre
    left, right = (cx - dx, cy - dy), (cx + dx, cy + dy)
    nose = (cx - 30 * math.sin(a), cy + 30 * math.cos(a))
    return np.array([left, right, nose, nose, nose])


@pytest.mark.parametrize("angle", [-35.0, -10.0, 0.0, 12.0, 40.0])
def test_alignment_levels_the_eyes(angle):
    lm = _eyes(angle)
    box = np.array([190.0, 140, 310, 280])
    m = crop_transform(box, lm, 128, 1.3, align=True)
    pts = transform_points(m, lm)
    assert pts[0, 1] == pytest.approx(pts[1, 1], abs=1e-6)  # level
    assert pts[0, 0] < pts[1, 0]  # left eye stays on the left
    assert pts[2, 1] > pts[0, 1]  # nose below the eyes: upright, not upside down
    scale = 128 / (140 * 1.3)
    assert pts[1, 0] - pts[0, 0] == pytest.approx(60 * scale)  # a rotation, no extra scaling
    if angle:
        unaligned = transform_points(crop_transform(box, lm, 128, 1.3, align=False), lm)
        assert abs(unaligned[0, 1] - unaligned[1, 1]) > 1


def test_alignment_on_pixels():
    """Two bright dots on a tilted eye line end up on the same crop row."""
    lm = _eyes(25.0)
    img = np.zeros((400, 500, 3), np.uint8)
    for x, y in lm[:2]:
        cv2.circle(img, (round(x), round(y)), 4, (255, 255, 255), -1)
    out = crop_face(img, np.array([190.0, 140, 310, 280]), lm, size=128, margin=1.3, align=True)
    mask = out[..., 0] > 100
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    assert n == 3  # background + two dots
    (_, ly), (_, ry) = sorted(centroids[1:].tolist())
    assert abs(ly - ry) < 1.0


def test_large_downscale_matches_direct_warp():
    """Faces much larger than the crop are shrunk with area averaging first; the geometry must be
    the same as a plain warp (compared on a smooth image, where both are accurate)."""
    yy, xx = np.mgrid[0:1600, 0:2000].astype(np.float32)
    img = np.stack([127 + 100 * np.sin(xx / 230.0), 127 + 100 * np.cos(yy / 170.0), 127 + 60 * np.sin((xx + yy) / 300.0)], -1)
    img = img.astype(np.uint8)
    box = np.array([500.0, 300, 1500, 1350])
    lm = np.array([[800, 700], [1200, 760], [1000, 900], [850, 1100], [1150, 1120]], float)
    for align in (False, True):
        out = crop_face(img, box, lm, size=96, margin=1.3, align=align)
        m = crop_transform(box, lm, 96, 1.3, align)
        ref = cv2.warpAffine(img, m, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        assert np.abs(out.astype(int) - ref).mean() < 3.0


def test_one_crop_function_everywhere():
    """scan (analysis) and extract use the very same crop code."""
    from fakeprobe.faces import crop
    from fakeprobe.train import extract

    assert analysis.crop_face is crop.crop_face
    assert extract.crop_face is crop.crop_face and extract.crop_transform is crop.crop_transform


def test_small_input_crop_is_the_training_crop(tmp_path):
    """A 112 px model learns from crops extracted at 224 px and shrunk by the training loader;
    scan must cut exactly that crop, not a sharper direct warp (here a face of 150 px, where a
    bilinear warp to 112 px would skip pixels)."""
    from fakeprobe.train.data import CropItem
    from fakeprobe.train.loop import PairDataset, TrainConfig

    img = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    box = np.array([250.0, 160, 400, 320])
    extracted = crop_face(img, box, size=224, margin=1.3)
    path = tmp_path / "crop.png"
    cv2.imwrite(str(path), cv2.cvtColor(extracted, cv2.COLOR_RGB2BGR))
    loader = PairDataset([], {}, TrainConfig(data=[], out=tmp_path, input_size=112), augment=False, seed=0)
    trained_on, _ = loader._image(CropItem(path, 0, "real", "x", np.zeros((5, 2))))

    scanned = crop_face(img, box, size=112, margin=1.3)
    np.testing.assert_array_equal(scanned, trained_on)
    direct = cv2.warpAffine(img, crop_transform(box, None, 112, 1.3, False), (112, 112), flags=cv2.INTER_LINEAR)
    assert np.abs(direct.astype(int) - scanned).mean() > 5  # the aliased warp differs on this noise
