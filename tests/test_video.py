"""Video decoding and sampling: exact frames, containers, VFR, rotation, short clips, huge frames, re-sampling."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fakeprobe.core.results import ERROR, NO_FACE
from fakeprobe.media import synth, video

W, H = 320, 180  # as in conftest

# -- frames that carry their own number ------------------------------------------------------
BITS = 8
CW, CH = 32 * BITS, 64  # code picture: 8 blocks of 32 px, black = 0, white = 1


def coded(i: int) -> np.ndarray:
    """A frame showing ``i`` in binary as black/white blocks (survives any lossy codec)."""
    img = np.zeros((CH, CW, 3), np.uint8)
    for b in range(BITS):
        if (i >> b) & 1:
            img[:, b * 32 : (b + 1) * 32] = 255
    return img


def read_code(img: np.ndarray) -> int:
    h, w = img.shape[:2]
    bw = w // BITS
    return sum(1 << b for b in range(BITS) if img[h // 4 : 3 * h // 4, b * bw + bw // 4 : (b + 1) * bw - bw // 4].mean() > 127)


N_CODED = 120
FPS = 25
# (codec, suffix, extra encoder options); long GOP = one keyframe for the whole clip
CONTAINERS = [
    ("libx264", "mp4", {"x264-params": "scenecut=0"}),
    ("libx264", "mkv", {"x264-params": "scenecut=0"}),
    ("libvpx-vp9", "webm", {}),
    ("mpeg4", "avi", {}),
    ("mpeg1video", "mpg", {"qscale": "2"}),  # MPEG-PS: imprecise seeking, timestamps guessed after a seek
]


@pytest.fixture(scope="session", params=[250, 12], ids=["gop250", "gop12"])
def gop(request) -> int:
    return request.param


@pytest.fixture(scope="session", params=CONTAINERS, ids=[c[1] for c in CONTAINERS])
def coded_clip(request, gop, tmp_path_factory) -> Path:
    codec, suffix, opts = request.param
    opts = dict(opts)
    if codec == "mpeg1video":
        # g=12 makes PyAV's MPEG-PS muxer write one duplicate timestamp (a broken file); 15 does not
        opts["g"] = "15" if gop < 250 else "250"
    if codec == "libx264" and gop < 250:
        opts["x264-params"] = f"scenecut=0:keyint={gop}"
    path = tmp_path_factory.mktemp("coded") / f"coded_{gop}.{suffix}"
    crf = 10 if codec == "libx264" else 23
    return synth.write_video(path, (coded(i) for i in range(N_CODED)), FPS, codec=codec, gop=gop, crf=crf, options=opts)


def _sequential(path: Path) -> dict[float, np.ndarray]:
    """Every frame by timestamp, decoded front to back without seeking (the reference)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        base = float(s.time_base)
        start = s.start_time * base if s.start_time is not None else 0.0
        return {f.pts * base - start: f.to_ndarray(format="rgb24") for f in c.decode(s)}


def test_coded_frames_decode_back():
    for i in (0, 1, 77, 119, 255):
        assert read_code(coded(i)) == i


def test_probe_counts_frames_without_header_count(coded_clip):
    """mkv/webm/mpg carry no frame count: it comes from the demuxed packets and must be exact."""
    info, index = video.probe(coded_clip)
    assert info.frame_count == N_CODED
    assert (info.width, info.height) == (CW, CH)
    assert info.fps == pytest.approx(FPS, rel=1e-3)
    assert info.duration_s == pytest.approx(N_CODED / FPS, rel=1e-3)
    assert index.times == sorted(index.times) and len(set(index.times)) == N_CODED


def test_long_gop_really_is_long(tmp_path):
    path = synth.write_video(tmp_path / "long.mp4", (coded(i) for i in range(N_CODED)), FPS, gop=250, crf=10,
                             options={"x264-params": "scenecut=0"})
    _, index = video.probe(path)
    assert len(index.keyframes) == 1  # otherwise the exact-frame tests below prove less


def test_exact_frames_for_chosen_targets(coded_clip):
    """Every requested frame comes back with its own content, whatever the keyframe layout."""
    _, index = video.probe(coded_clip)
    targets = list(range(3, N_CODED, 7))
    frames, rotation = video.decode_frames(coded_clip, index, [index.times[k] for k in targets])
    assert rotation == 0
    assert [f.index for f in frames] == targets
    assert [read_code(f.image) for f in frames] == targets
    assert [f.time_s for f in frames] == [index.times[k] for k in targets]


def test_seeking_decode_equals_sequential_decode(coded_clip):
    """Pixel-identical to decoding the whole file front to back, so seeks never substitute a frame."""
    _, index = video.probe(coded_clip)
    ref = _sequential(coded_clip)
    assert sorted(ref) == pytest.approx(index.times)
    times = [index.times[k] for k in range(1, N_CODED, 9)]
    frames, _ = video.decode_frames(coded_clip, index, times)
    assert [f.time_s for f in frames] == times
    for f in frames:
        assert np.array_equal(f.image, ref[f.time_s]), f.index


def _frames_out_of_decoder(path: Path, wanted: list[float], skip: bool) -> list[float]:
    """Times of the frames the decoder produced reading the whole file with ``video._decoded``."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        base = float(s.time_base)
        start = s.start_time * base if s.start_time is not None else 0.0
        return [f.pts * base - start for f in video._decoded(c, s, wanted, skip, start, base)]


@pytest.mark.parametrize("codec, suffix, opts", [("libx264", "mp4", {"bf": "3"}), ("mpeg4", "avi", {"bf": "2"}), ("libx265", "mkv", {})],
                         ids=["h264", "mpeg4", "hevc"])
def test_unwanted_non_reference_frames_are_not_decoded(tmp_path, codec, suffix, opts):
    """B-frames nothing refers to are skipped unless wanted; wanted ones among them come back exact."""
    path = synth.write_video(tmp_path / f"b.{suffix}", (coded(i) for i in range(N_CODED)), FPS, codec=codec, gop=250, options=opts)
    _, index = video.probe(path)
    everything = _frames_out_of_decoder(path, [], skip=False)
    assert everything == pytest.approx(index.times)
    skipped = sorted(set(index.times) - set(_frames_out_of_decoder(path, [], skip=True)))
    assert len(skipped) > N_CODED // 4  # most B-frames are not references
    times = skipped[::5]
    frames, _ = video.decode_frames(path, index, times)
    assert [f.time_s for f in frames] == times
    assert [read_code(f.image) for f in frames] == [index.times.index(t) for t in times]
    slow, _ = video.decode_frames(path, index, times, skip_unwanted=False)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, slow))


@pytest.mark.parametrize("n", [8, 32])
def test_even_sampling_picks_the_frame_shown_at_each_time(coded_clip, n):
    info, index = video.probe(coded_clip)
    times = video.frame_times(index, video.even_times(info.duration_s, n))
    frames, _ = video.decode_frames(coded_clip, index, times)
    want = [int((k + 0.5) * N_CODED / n) for k in range(n)]  # frame shown at the centre of slice k
    assert [f.index for f in frames] == want
    assert [read_code(f.image) for f in frames] == want


def test_targets_unordered_and_repeated(coded_clip):
    _, index = video.probe(coded_clip)
    ks = [90, 5, 60, 5, 119, 0]
    frames, _ = video.decode_frames(coded_clip, index, [index.times[k] for k in ks])
    assert [f.index for f in frames] == sorted(set(ks))
    assert [read_code(f.image) for f in frames] == sorted(set(ks))


def test_single_frame_near_the_end_with_long_gop(tmp_path):
    """One late target in a one-keyframe clip: decoded forward from the start, not snapped to the keyframe."""
    path = synth.write_video(tmp_path / "late.mp4", (coded(i) for i in range(N_CODED)), FPS, gop=250, crf=10,
                             options={"x264-params": "scenecut=0"})
    _, index = video.probe(path)
    for k in (N_CODED - 1, 1, 64):
        frames, _ = video.decode_frames(path, index, [index.times[k]])
        assert [(f.index, read_code(f.image)) for f in frames] == [(k, k)]


# -- variable frame rate -----------------------------------------------------------------------
def _write_vfr(path: Path, durations_ms: np.ndarray) -> np.ndarray:
    pts = np.concatenate([[0], np.cumsum(durations_ms)[:-1]]).astype(int)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = CW, CH, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "10", "preset": "veryfast"}
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(coded(i), format="rgb24")
            frame.pts, frame.time_base = int(t), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return pts / 1000.0


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_variable_frame_rate(tmp_path, suffix):
    durations = np.random.default_rng(0).choice([10, 40, 120], size=60)
    starts = _write_vfr(tmp_path / f"vfr.{suffix}", durations)
    path = tmp_path / f"vfr.{suffix}"
    info, index = video.probe(path)
    assert info.frame_count == 60
    assert np.allclose(index.times, starts, atol=1e-3)
    wanted = video.even_times(info.duration_s, 16)
    frames, _ = video.decode_frames(path, index, video.frame_times(index, wanted))
    # the frame shown at time t is the last one that started at or before t
    expect = sorted({int(np.searchsorted(starts, t + 1e-6, side="right") - 1) for t in wanted})
    assert [f.index for f in frames] == expect
    assert [read_code(f.image) for f in frames] == expect


# -- whole-pipeline sampling -------------------------------------------------------------------
def test_clip_shorter_than_n_frames(make_detector, media_dir, photo):
    path = synth.scene_video(media_dir / "five.mp4", photo, width=W, height=H, seconds=0.5, fps=10, faces=1)
    r = make_detector(frames=32).scan(path)
    assert r.verdict not in (ERROR, NO_FACE), r.error
    assert r.media.frame_count == 5
    assert r.media.frames_analysed == 5
    assert [f.frame_index for f in r.frames] == [0, 1, 2, 3, 4]  # each frame once, no duplicates
    assert len({d.frame_index for d in r.detections}) == len(r.detections) == 5


@pytest.fixture(scope="session")
def upright_frames(photo) -> list[np.ndarray]:
    return [synth.scene(photo, W, H, 1, i / 10) for i in range(6)]


@pytest.fixture(scope="session")
def upright_clip(media_dir, upright_frames) -> Path:
    return synth.write_video(media_dir / "upright.mp4", upright_frames, 10)


@pytest.mark.parametrize("rotation,k", [(90, 1), (270, -1), (180, 2)])
def test_rotation_metadata(rotation, k, media_dir, upright_frames, upright_clip, make_detector):
    """The picture is stored turned (``np.rot90(k)``) and tagged so players show it upright."""
    path = synth.write_video(media_dir / f"rot{rotation}.mp4", [np.ascontiguousarray(np.rot90(f, k=k)) for f in upright_frames], 10,
                             rotation=rotation)
    info, index = video.probe(path)
    frames, applied = video.decode_frames(path, index, index.times[:2])
    assert applied == rotation
    for f, want in zip(frames, upright_frames):
        assert f.image.shape == want.shape
        assert np.abs(f.image.astype(int) - want).mean() < 6  # upright, not merely the right shape

    det = make_detector(frames=6)
    r, ref = det.scan(path), det.scan(upright_clip)
    assert r.media.rotation == rotation
    assert (r.media.width, r.media.height) == (W, H)
    assert r.faces == ref.faces == 6
    for a, b in zip(r.detections, ref.detections):
        assert np.allclose(a.box, b.box, atol=3), (a.box, b.box)  # boxes in upright coordinates


def test_huge_resolution_is_capped(media_dir, photo, make_detector):
    small = [synth.scene(photo, 640, 360, 1, i / 10) for i in range(3)]
    big = [cv2.resize(f, (2560, 1440), interpolation=cv2.INTER_CUBIC) for f in small]
    big_path = synth.write_video(media_dir / "big.mp4", big, 10)
    small_path = synth.write_video(media_dir / "small.mp4", small, 10)
    det = make_detector(frames=3, analyse_max_side=640)
    r, ref = det.scan(big_path), det.scan(small_path)
    assert r.verdict not in (ERROR, NO_FACE), r.error
    assert any("downscaled" in w and "2560x1440" in w for w in r.warnings), r.warnings
    assert not any("downscaled" in w for w in ref.warnings)
    assert (r.media.width, r.media.height) == (2560, 1440)
    assert r.faces == ref.faces == 3
    for a, b in zip(r.detections, ref.detections):
        side = b.box[2] - b.box[0]
        assert np.allclose(np.array(a.box) / 4, b.box, atol=0.1 * side), (a.box, b.box)  # original coordinates
        assert np.allclose(np.array(a.landmarks) / 4, b.landmarks, atol=0.1 * side)
        assert a.box[2] > 640  # not analysed-frame coordinates


def test_huge_image_is_capped(media_dir, photo, make_detector):
    from PIL import Image

    small = synth.scene(photo, 640, 360, 1, 0.0)
    path = media_dir / "big.png"
    Image.fromarray(cv2.resize(small, (2560, 1440), interpolation=cv2.INTER_CUBIC)).save(path, compress_level=1)
    det = make_detector(frames=3, analyse_max_side=640)
    r = det.scan(path)
    assert r.media.kind == "image" and (r.media.width, r.media.height) == (2560, 1440)
    assert any("downscaled" in w for w in r.warnings), r.warnings
    (d,) = r.detections
    ref = _single_face_box(small)
    side = ref[2] - ref[0]
    assert np.allclose(np.array(d.box) / 4, ref, atol=0.1 * side), (d.box, ref)


def _single_face_box(image: np.ndarray) -> np.ndarray:
    from fakeprobe.faces.detection import FaceDetector

    (faces,) = FaceDetector("cpu").detect([image])
    assert len(faces) == 1
    return faces[0].box


def test_pixel_cap_gives_error(face_clip, make_detector):
    r = make_detector(frames=2, max_pixels=100 * 100).scan(face_clip)
    assert r.verdict == ERROR and r.error.kind == "limit"
    assert face_clip.name in r.error.message


def test_resampling_finds_faces_between_first_samples(media_dir, photo, make_detector):
    """10 fps, 40 frames, 8 samples: the first round takes frames 2, 7, ..., 37; faces exist only in
    the later half *between* those, so only the extra rounds (midpoints) can find them."""
    first = set(range(2, 40, 5))
    has_face = {i for i in range(20, 40) if i not in first}
    path = synth.scene_video(media_dir / "between.mp4", photo, width=W, height=H, seconds=4.0, fps=10,
                             faces=lambda i: 1 if i in has_face else 0)
    _, index = video.probe(path)
    info, _ = video.probe(path)
    assert {int(round(t * 10)) for t in video.frame_times(index, video.even_times(info.duration_s, 8))} == first

    one_round = make_detector(frames=8, max_frame_rounds=0).scan(path)
    assert one_round.verdict == NO_FACE and one_round.media.frames_analysed == 8

    r = make_detector(frames=8).scan(path)
    assert r.verdict not in (ERROR, NO_FACE), r.error
    assert r.media.frames_analysed > 8
    sampled = [f.frame_index for f in r.frames]
    assert sampled == sorted(set(sampled))  # time order, no frame twice
    assert first <= set(sampled)
    found = {d.frame_index for d in r.detections}
    assert found and found <= has_face
    assert found == {f.frame_index for f in r.frames if f.faces} == set(sampled) & has_face
