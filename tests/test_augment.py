"""Training degradations: H.264 in memory, and the same degradation for a real crop and its fakes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fakeprobe.train.augment import degrade_alike, greyscale, h264, sharpen, video_codec


@pytest.fixture(scope="module")
def face(photo) -> np.ndarray:
    return cv2.resize(photo[30:230, 130:330], (224, 224), interpolation=cv2.INTER_AREA)


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_h264_round_trip_loses_more_at_higher_crf(face):
    light, heavy = h264([face], 18), h264([face], 40)
    assert light.shape == heavy.shape == face.shape and light.dtype == np.uint8
    assert 0 < _err(light, face) < 4
    assert _err(heavy, face) > 2 * _err(light, face)


def test_a_predicted_frame_differs_from_an_intra_frame(face):
    shifted = np.roll(face, 2, axis=1)
    assert not np.array_equal(h264([shifted, face], 30), h264([face], 30))


def test_video_codec_keeps_odd_sizes(face):
    odd = face[:223, :221]
    out = video_codec(odd, np.random.default_rng(0))
    assert out.shape == odd.shape


@pytest.mark.parametrize("codec", [0.0, 1.0])
def test_identical_inputs_get_identical_degradations(face, codec):
    for seed in range(12):
        a, b = degrade_alike([face, face.copy()], np.random.default_rng(seed), codec=codec)
        assert np.array_equal(a, b), seed


def test_the_pair_shares_one_degradation(face):
    """A fake that differs from its real only in the middle: far from that patch the two come out
    (nearly) the same, and each was really degraded."""
    fake = face.copy()
    fake[96:128, 96:128] = 255 - fake[96:128, 96:128]
    rng = np.random.default_rng(3)
    for _ in range(6):
        real_out, fake_out = degrade_alike([face, fake], rng, codec=1.0)
        assert _err(real_out[:48], fake_out[:48]) < 1.0  # top rows: far above the patch
        assert _err(real_out[96:128, 96:128], fake_out[96:128, 96:128]) > 30
        assert not np.array_equal(real_out, face)


def _detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())


def test_sharpen_adds_detail_and_nothing_at_amount_zero(face):
    assert np.array_equal(sharpen(face, 1.0, 0.0), face)
    assert _detail(sharpen(face, 1.2, 1.0)) > 1.5 * _detail(face)


def test_greyscale_keeps_shape_and_drops_colour(face):
    g = greyscale(face)
    assert g.shape == face.shape and g.dtype == np.uint8
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])


@pytest.mark.parametrize("sharpening, low, high", [(0.0, 0, 0), (0.3, 20, 60)])
def test_a_share_of_crops_is_sharpened(face, monkeypatch, sharpening, low, high):
    """With ``sharpening``, a share of the crops (real and fake alike) is sharpened, before or after
    the codec, as a broadcast or phone picture is; without it, none (the v2 recipe)."""
    from fakeprobe.train import augment

    calls = []
    monkeypatch.setattr(augment, "sharpen", lambda img, sigma, amount: calls.append(amount) or img)
    rng = np.random.default_rng(0)
    sharpened = 0
    for _ in range(100):
        before = len(calls)
        degrade_alike([face], rng, codec=0.0, sharpening=sharpening)
        sharpened += len(calls) > before
    assert low <= sharpened <= high


def test_colour_cast_changes_colour_not_geometry(face):
    from fakeprobe.train.augment import colour_cast

    rng = np.random.default_rng(1)
    casts = [colour_cast(face, rng) for _ in range(20)]
    assert all(c.shape == face.shape and c.dtype == np.uint8 for c in casts)
    # channel balance moves (white balance, saturation) while the picture's layout stays
    ratios = [c[..., 0].mean() / max(c[..., 2].mean(), 1) for c in casts]
    assert max(ratios) - min(ratios) > 0.1
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    assert all(np.corrcoef(grey(c), grey(face))[0, 1] > 0.9 for c in casts)


@pytest.mark.parametrize("colour, low, high", [(0.0, 0, 0), (0.5, 35, 65)])
def test_a_share_of_pairs_gets_a_colour_cast_alike(face, monkeypatch, colour, low, high):
    """With ``colour``, that share of the real/fake pairs gets one colour cast, the same for both
    (greyscale a sixth as often); without it, none (the v2 recipe)."""
    from fakeprobe.train import augment

    calls = []
    monkeypatch.setattr(augment, "colour_cast", lambda img, rng: calls.append(1) or img)
    rng = np.random.default_rng(0)
    cast = 0
    for _ in range(100):
        before = len(calls)
        a, b = degrade_alike([face, face.copy()], rng, codec=0.0, colour=colour)
        assert np.array_equal(a, b)
        cast += len(calls) > before
    assert low <= cast <= high


def _detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())


@pytest.mark.parametrize("side", [112, 224])
def test_soften_removes_fine_detail_alike_at_every_input_size(face, side):
    from fakeprobe.train.augment import soften

    img = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(3)
    soft = [soften(img, rng) for _ in range(20)]
    assert all(s.shape == img.shape and s.dtype == np.uint8 for s in soft)
    # every draw keeps under a third of the Laplacian energy (the picture's fine detail) ...
    assert max(_detail(s) for s in soft) < _detail(img) / 3
    # ... and leaves the picture itself: coarse layout and brightness stay
    assert all(abs(float(s.mean()) - float(img.mean())) < 3 for s in soft)
    coarse = lambda im: cv2.resize(im, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert all(np.abs(coarse(s) - coarse(img)).mean() < 6 for s in soft)


def test_soften_is_relative_to_the_side(face, monkeypatch):
    """The same draw softens a 224 px crop and its 112 px version alike: the same rescale factor
    (a share of the side), or a blur whose result, shrunk to 112, matches the 112 px one (a blur of
    fixed pixels would not)."""
    from fakeprobe.train import augment

    small = cv2.resize(face, (112, 112), interpolation=cv2.INTER_AREA)
    factors = []
    real_rescale = augment.rescale
    monkeypatch.setattr(augment, "rescale", lambda img, f: factors.append(f) or real_rescale(img, f))
    kinds = set()
    for seed in range(12):
        before = len(factors)
        a = augment.soften(small, np.random.default_rng(seed))
        b = augment.soften(face, np.random.default_rng(seed))
        if len(factors) > before:  # rescaled: one factor for both sizes
            kinds.add("rescale")
            assert factors[-2] == factors[-1] and 0.2 <= factors[-1] <= 0.6
        else:
            kinds.add("blur")
            b = cv2.resize(b, (112, 112), interpolation=cv2.INTER_AREA)
            fixed = cv2.resize(cv2.GaussianBlur(face, (0, 0), 1.12), (112, 112), interpolation=cv2.INTER_AREA)
            assert _err(a, b) < 0.1 * _err(a, fixed), seed
    assert kinds == {"rescale", "blur"}


def test_reframe_cuts_edges_and_leaves_the_inner_part():
    """``reframe`` keeps an inner rectangle of the crop untouched and replaces up to 30 % of the side
    at each edge; most draws cut some edge, some none."""
    from fakeprobe.train.augment import reframe

    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)  # no mirrored pixel repeats by chance
    cut = []
    for seed in range(200):
        out = reframe(noise, np.random.default_rng(seed))
        assert out.shape == noise.shape and out.dtype == np.uint8
        same = np.all(out == noise, axis=2)
        rows, cols = np.flatnonzero(same.any(axis=1)), np.flatnonzero(same.any(axis=0))
        top, bottom, left, right = rows[0], 223 - rows[-1], cols[0], 223 - cols[-1]
        assert same[top : 224 - bottom, left : 224 - right].all()  # the inner part is the picture itself
        assert max(top, bottom, left, right) <= round(0.3 * 224)
        cut.append(top + bottom + left + right > 0)
    assert 185 <= sum(cut) < 200  # no edge cut: 0.4 ** 4 = 2.6 % of draws


def test_reframe_fills_a_cut_as_crop_face_fills_a_crop_past_the_frame(face):
    """A top cut of 40 px equals the crop that ``crop_face``'s warp (BORDER_REFLECT_101) makes of a
    picture whose frame ends 40 px into the crop window."""
    from fakeprobe.train import augment

    picture = np.ascontiguousarray(face[40:])
    window = np.float32([[1, 0, 0], [0, 1, 40]])  # crop pixel (x, y) shows picture pixel (x, y - 40)
    expected = cv2.warpAffine(picture, window, (224, 224), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    draws = iter([0.0, 40 / 224, 1.0, 1.0, 1.0])  # top: cut (p < 0.6), by 40/224 of the side; no other edge
    rng = type("Draws", (), {"random": lambda self: next(draws), "uniform": lambda self, a, b: next(draws)})()
    assert np.array_equal(augment.reframe(face, rng), expected)


@pytest.mark.parametrize("name", ["crush", "smooth_skin"])
def test_pre_blend_degradations_flatten_fine_texture_but_keep_edges_and_size(name):
    """``crush`` (a starved bitrate) and ``smooth_skin`` (a beauty filter) take low-contrast texture
    (skin) away while a strong edge keeps its contrast, unlike a blur; the size comes back unchanged."""
    from fakeprobe.train import augment

    degrade = getattr(augment, name)
    rng = np.random.default_rng(0)
    img = np.full((112, 112, 3), 120.0)
    img[:, 60:] = 230.0  # a strong edge
    img[:, :50] += rng.normal(0, 5, (112, 50, 3))  # fine, low-contrast texture left of it
    img = np.clip(img, 0, 255).astype(np.uint8)
    for seed in range(6):
        out = degrade(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        flat = out[8:-8, 8:42].astype(np.float32)
        assert flat.std() < img[8:-8, 8:42].std() / 2  # texture mostly gone
        assert float(out[:, 70:100].mean() - out[:, 10:40].mean()) > 0.9 * 110  # the edge stays
        assert abs(float(out[:, :50].mean()) - float(img[:, :50].mean())) < 4  # brightness stays
