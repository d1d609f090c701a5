"""Self-blended images and the robustness augmentations: masks, blends, determinism."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fakeprobe.faces.crop import crop_face, crop_transform, transform_points
from fakeprobe.train import augment
from fakeprobe.train.sbi import blend, cross_blend, face_points_from5, random_face_mask, self_blend

# MTCNN's detection of the astronaut photo (box, 5 landmarks), fixed so these tests need no detector
BOX = np.array([181.05, 62.16, 267.75, 172.05])
LM5 = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])
SIZE = 96
SEEDS = range(40)


def _crop(photo, size=SIZE, margin=1.3, box=BOX):
    m = crop_transform(box, LM5, size, margin, False)
    return crop_face(photo, box, LM5, size=size, margin=margin), transform_points(m, LM5)


@pytest.fixture(scope="module")
def face(photo):
    """(crop, 5 landmarks in crop coordinates)."""
    return _crop(photo)


@pytest.fixture(scope="module")
def dense(face):
    """dlib's 68 points on the crop (skipped without the train extra)."""
    from fakeprobe.faces import landmarks

    if not landmarks.available():
        pytest.skip("dlib / its 68-point model is not installed")
    return landmarks.DenseLandmarks()(face[0], 1.3)


def _inside(points: np.ndarray, xy) -> bool:
    hull = cv2.convexHull(np.round(points).astype(np.float32))
    return cv2.pointPolygonTest(hull, (float(xy[0]), float(xy[1])), False) > 0


def _corners(mask: np.ndarray, k: int = 4) -> float:
    return float(max(mask[:k, :k].max(), mask[:k, -k:].max(), mask[-k:, :k].max(), mask[-k:, -k:].max()))


# -- the 5-point outline ---------------------------------------------------------------------
def test_outline_from_five_points_surrounds_the_face(face):
    _, lm5 = face
    pts = face_points_from5(lm5)
    assert pts.shape == (24, 2) and np.isfinite(pts).all()
    for p in lm5:  # eyes, nose and mouth corners are all inside the outline
        assert _inside(pts, p)
    # wider than the eyes, taller than eyes-to-mouth, and inside the crop (face box x margin 1.3)
    width, height = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    assert width > 1.5 * np.linalg.norm(lm5[1] - lm5[0])
    assert height > 2 * abs(lm5[3:, 1].mean() - lm5[:2, 1].mean())
    assert pts.min() > -0.1 * SIZE and pts.max() < 1.1 * SIZE


def test_outline_follows_a_rotated_face(face):
    _, lm5 = face
    c = lm5.mean(axis=0)
    m = cv2.getRotationMatrix2D(tuple(c), 90, 1.0)
    turned = face_points_from5(transform_points(m, lm5))
    np.testing.assert_allclose(turned, transform_points(m, face_points_from5(lm5)), atol=1e-6)


# -- masks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["outline", "dense"])
def test_mask_range_and_support(kind, face, request):
    img, lm5 = face
    if kind == "dense":
        pts = request.getfixturevalue("dense")
        probes = [pts[30], (pts[62] + pts[66]) / 2]  # nose tip, mouth centre: in every mask kind
    else:
        pts = face_points_from5(lm5)
        probes = [lm5[2], lm5[0], lm5[1]]  # nose, eyes
    for seed in SEEDS:
        mask = random_face_mask(pts, img.shape[:2], np.random.default_rng(seed))
        assert mask.shape == img.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask.max() >= 0.25 - 1e-6  # the lowest blend ratio
        for x, y in probes:
            assert mask[int(round(y)), int(round(x))] > 0.1 * mask.max(), (seed, x, y)
        assert _corners(mask) < 1e-3, seed


def test_mask_is_deformed_and_varied(face):
    img, lm5 = face
    pts = face_points_from5(lm5)
    masks = [random_face_mask(pts, img.shape[:2], np.random.default_rng(s)) for s in range(12)]
    ratios = {round(float(m.max()), 2) for m in masks}
    assert len(ratios) >= 2  # random blend ratio
    assert any(0.0 < m.max() < 1.0 for m in masks)
    soft = [np.mean((m > 0.02 * m.max()) & (m < 0.98 * m.max())) for m in masks]
    assert min(soft) > 0.02  # a blurred edge band, never a hard cut-out
    areas = [np.mean(m > 0.5 * m.max()) for m in masks]
    assert np.ptp(areas) > 0.01  # outlines differ in size and shape


# -- self-blending -------------------------------------------------------------------------------
def test_self_blend_shapes_and_determinism(face):
    img, lm5 = face
    pts = face_points_from5(lm5)
    ref = img.copy()
    fake, mask = self_blend(img, pts, np.random.default_rng(7))
    assert fake.shape == img.shape and fake.dtype == np.uint8
    assert mask.shape == img.shape[:2] and mask.dtype == np.float32
    fake2, mask2 = self_blend(img, pts, np.random.default_rng(7))
    np.testing.assert_array_equal(fake, fake2)
    np.testing.assert_array_equal(mask, mask2)
    fake3, _ = self_blend(img, pts, np.random.default_rng(8))
    assert not np.array_equal(fake, fake3)
    # the input is never modified in place
    np.testing.assert_array_equal(img, ref)


def test_self_blend_changes_the_face_and_leaves_a_boundary(face):
    img, lm5 = face
    pts = face_points_from5(lm5)
    ref = img.copy()
    face_altered = 0
    for seed in SEEDS:
        fake, mask = self_blend(img, pts, np.random.default_rng(seed))
        diff = np.abs(fake.astype(np.float32) - img).mean(axis=2)
        inside = mask >= 0.95 * mask.max()
        outside = mask < 1e-4
        assert inside.mean() > 0.05 and outside.mean() > 0.1
        d_in, d_out = float(diff[inside].mean()), float(diff[outside].mean())
        # face and background are altered by different amounts: a visible blending boundary
        assert abs(d_in - d_out) > 1.0, (seed, d_in, d_out)
        if d_out < 0.05:  # the face was replaced, the background kept
            face_altered += 1
            assert d_in > 2.0, (seed, d_in)
            # far from the mask the original survives exactly
            assert np.array_equal(fake[outside], img[outside]), seed
    # about half of the fakes alter the face, the others the surroundings
    assert 0.25 * len(SEEDS) <= face_altered <= 0.75 * len(SEEDS)
    np.testing.assert_array_equal(img, ref)


def test_self_blend_never_returns_the_real_image(face):
    """Every "fake" must differ from its real: an unaltered copy would be a mislabelled sample."""
    img, lm5 = face
    small = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
    pts = face_points_from5(lm5 * 48 / SIZE)
    same = [s for s in range(1500) if np.array_equal(self_blend(small, pts, np.random.default_rng(s))[0], small)]
    assert not same, f"{len(same)} of 1500 self-blends equal the real crop (seeds {same[:5]})"


def test_blend_is_exact_where_the_mask_is_empty_or_full():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 4:12] = 1.0
    mask[0, 0] = 1e-6  # a faint tail of the soft edge must not shift the target by a grey level
    out = blend(a, b, mask)
    np.testing.assert_array_equal(out[mask == 1.0], b[mask == 1.0])
    np.testing.assert_array_equal(out[mask < 1e-3], a[mask < 1e-3])
    half = blend(np.zeros_like(a), np.full_like(a, 255), np.full((16, 16), 0.5, np.float32))
    assert np.all(np.abs(half.astype(int) - 128) <= 1)
    same = blend(a, a, np.full((16, 16), 0.3, np.float32))
    np.testing.assert_array_equal(same, a)  # blending an image with itself changes nothing


def test_self_blend_with_dense_landmarks(face, dense):
    img, _ = face
    for seed in range(8):
        fake, mask = self_blend(img, dense, np.random.default_rng(seed))
        assert fake.shape == img.shape and fake.dtype == np.uint8
        assert _corners(mask) < 1e-3
        assert not np.array_equal(fake, img)


# -- cross-person blending (Face X-ray style) ----------------------------------------------------
def test_cross_blend(photo, face):
    target, t_lm5 = face
    # a "donor": the same photo mirrored and framed differently, so alignment has work to do
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    w = photo.shape[1]
    box = np.array([w - BOX[2], BOX[1], w - BOX[0], BOX[3]])
    lm = LM5.copy()
    lm[:, 0] = w - lm[:, 0]
    lm = lm[[1, 0, 2, 4, 3]]  # left/right swap places in a mirror
    m = crop_transform(box, lm, SIZE, 1.7, False)
    donor = crop_face(mirrored, box, lm, size=SIZE, margin=1.7)
    d_lm5 = transform_points(m, lm)
    pts = face_points_from5(t_lm5)
    for seed in range(10):
        fake, mask = cross_blend(target, t_lm5, pts, donor, d_lm5, np.random.default_rng(seed))
        assert fake.shape == target.shape and fake.dtype == np.uint8
        assert 0.0 <= mask.min() and mask.max() <= 1.0 and _corners(mask) < 1e-3
        zero = mask == 0.0
        np.testing.assert_array_equal(fake[zero], target[zero])  # the target's background is kept
        full = mask >= 0.95 * mask.max()
        assert np.abs(fake[full].astype(np.float32) - target[full]).mean() > 2.0
    a = cross_blend(target, t_lm5, pts, donor, d_lm5, np.random.default_rng(3))
    b = cross_blend(target, t_lm5, pts, donor, d_lm5, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])


def test_cross_blend_with_unusable_donor_landmarks_falls_back(face):
    target, t_lm5 = face
    pts = face_points_from5(t_lm5)
    fake, mask = cross_blend(target, t_lm5, pts, target[::-1].copy(), np.zeros((5, 2)), np.random.default_rng(0))
    assert fake.shape == target.shape and mask.shape == target.shape[:2]
    assert not np.array_equal(fake, target)


# -- robustness augmentations --------------------------------------------------------------------
def test_robustness_keeps_shape_and_dtype(face):
    img, _ = face
    ref = img.copy()
    outs = []
    for seed in range(30):
        out = augment.robustness(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        outs.append(out)
    np.testing.assert_array_equal(img, ref)  # never in place
    assert sum(not np.array_equal(o, img) for o in outs) >= 25
    again = augment.robustness(img, np.random.default_rng(5))
    np.testing.assert_array_equal(again, outs[5])
    # strength 0 leaves only the flip
    for seed in range(10):
        out = augment.robustness(img, np.random.default_rng(seed), strength=0.0)
        assert np.array_equal(out, img) or np.array_equal(out, img[:, ::-1])
    # a non-square, non-contiguous input
    wide = np.ascontiguousarray(np.tile(img, (1, 2, 1)))[:, ::2]
    for seed in range(10):
        out = augment.robustness(wide, np.random.default_rng(seed))
        assert out.shape == wide.shape and out.dtype == np.uint8


def test_jpeg_and_rescale(face):
    img, _ = face
    low = augment.jpeg(img, 10)
    assert low.shape == img.shape and low.dtype == np.uint8
    err_low = np.abs(low.astype(np.float32) - img).mean()
    err_high = np.abs(augment.jpeg(img, 100).astype(np.float32) - img).mean()
    assert err_low > 2.0 and err_high < err_low / 3
    small = augment.rescale(img, 0.4)
    assert small.shape == img.shape and small.dtype == np.uint8
    assert np.abs(small.astype(np.float32) - img).mean() > 1.0
