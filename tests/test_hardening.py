"""Hostile and broken inputs: every one gives a correct result or an ERROR record with a reason,
the batch goes on, nothing executes and nothing hangs."""
from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from fakeprobe.core.results import ERROR, NO_FACE
from fakeprobe.media import synth
from fakeprobe.media.inputs import expand_inputs

sys.path.insert(0, str(Path(__file__).parent))  # spawned pool workers import _pool_tasks from here


@pytest.fixture(scope="module")
def det(make_detector):
    return make_detector(frames=4)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, photo) -> Path:
    return synth.scene_video(tmp_path_factory.mktemp("h") / "clip.mp4", photo, width=320, height=180, seconds=1.0, fps=10)


def _assert_error(result, name: str, kinds: tuple[str, ...] | None = None) -> None:
    assert result.verdict == ERROR, result
    assert name in result.error.message and "\n" not in result.error.message
    if kinds:
        assert result.error.kind in kinds, result.error


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_truncated_mp4(fraction, clip, tmp_path, det):
    data = clip.read_bytes()
    bad = tmp_path / f"cut{int(fraction * 100)}.mp4"
    bad.write_bytes(data[: int(len(data) * fraction)])
    r = det.scan(bad)
    # either the part that survives is analysed correctly, or it is an error naming the file
    if r.verdict == ERROR:
        _assert_error(r, bad.name)
    else:
        assert r.media.frames_analysed >= 1


def test_mp4_without_moov(clip, tmp_path, det):
    data = bytearray(clip.read_bytes())
    i = data.find(b"moov")
    assert i > 4
    size = int.from_bytes(data[i - 4 : i], "big")
    del data[i - 4 : i - 4 + size]
    bad = tmp_path / "nomoov.mp4"
    bad.write_bytes(bytes(data))
    _assert_error(det.scan(bad), "nomoov.mp4")


def test_single_frame_video(photo, tmp_path, det):
    path = synth.write_video(tmp_path / "one.mp4", [synth.scene(photo, 320, 180, 1, 0.0)], 25)
    r = det.scan(path)
    assert r.verdict not in (ERROR, NO_FACE) and r.media.frames_analysed == 1 and r.faces == 1


def test_empty_video_stream(tmp_path, det):
    path = tmp_path / "empty.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height = 64, 64
        out.start_encoding()  # header only: a video stream with no frames
    _assert_error(det.scan(path), "empty.mkv", ("no_frames", "input", "empty"))


def test_one_pixel_video(tmp_path, det):
    frames = [np.full((1, 1, 3), 128, np.uint8)] * 3
    path = synth.write_video(tmp_path / "px.mkv", frames, 25, codec="ffv1", pix_fmt="yuv444p")
    r = det.scan(path)
    assert r.verdict == NO_FACE and r.media.width == 1


def test_8k_video_is_capped(photo, tmp_path, det):
    frame = synth.scene(photo, 7680, 4320, 1, 0.0)
    path = synth.write_video(tmp_path / "8k.mp4", [frame, frame], 25, options={"preset": "ultrafast"})
    r = det.scan(path)
    assert r.verdict not in (ERROR,), r.error
    assert r.media.width == 7680 and any("downscaled" in w for w in r.warnings)
    assert r.faces >= 1 and r.detections[0].box[2] > 2000  # boxes in original pixels


def test_pixel_cap_refuses_big_frames(photo, tmp_path, make_detector):
    frame = synth.scene(photo, 640, 360, 1, 0.0)
    path = synth.write_video(tmp_path / "big.mp4", [frame] * 2, 25)
    r = make_detector(frames=2, max_pixels=320 * 180).scan(path)
    _assert_error(r, "big.mp4", ("limit",))


@pytest.mark.parametrize("pix_fmt,size", [("yuv444p", (323, 181)), ("gray", (320, 180)), ("yuv420p10le", (320, 180))])
def test_odd_sizes_gray_and_10bit(pix_fmt, size, photo, tmp_path, det):
    w, h = size
    frames = [synth.scene(photo, w, h, 1, i / 10) for i in range(4)]
    path = synth.write_video(tmp_path / f"v_{pix_fmt}.mkv", frames, 10, codec="ffv1", pix_fmt=pix_fmt)
    r = det.scan(path)
    assert r.verdict not in (ERROR, NO_FACE), (r.error, r.warnings)
    assert (r.media.width, r.media.height) == (w, h)


def test_duration_cap_is_noted(photo, tmp_path, make_detector):
    path = synth.scene_video(tmp_path / "long.mp4", photo, width=320, height=180, seconds=4, fps=5)
    r = make_detector(frames=4, max_duration_s=2.0).scan(path)
    assert r.verdict != ERROR
    assert any("first 2 s" in w for w in r.warnings)
    assert max(d.time_s for d in r.detections) <= 2.0


def _png_header_only(path: Path, w: int, h: int) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_png_is_refused(tmp_path, det):
    bomb = _png_header_only(tmp_path / "bomb.png", 50000, 50000)
    start = time.perf_counter()
    r = det.scan(bomb)
    assert time.perf_counter() - start < 10
    _assert_error(r, "bomb.png", ("limit",))


def test_symlink_loop_directory(clip, tmp_path):
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    (root / "a" / "clip.mp4").write_bytes(clip.read_bytes())
    os.symlink(root, root / "a" / "loop")
    found = expand_inputs([str(root)])
    assert [p.name for p in found] == ["clip.mp4"]


def test_spaces_and_non_ascii_path(clip, tmp_path, run, checkpoint):
    d = tmp_path / "my clips" / "vidéo ü 日本"
    d.mkdir(parents=True)
    target = d / "clip é 1.mp4"
    target.write_bytes(clip.read_bytes())
    rc, out, err = run("scan", target, "--weights", checkpoint, "--backend", "torch", "--frames", "2", "--workers", "0", "--json")
    assert rc in (0, 1), err
    assert json.loads(out)[0]["path"] == str(target)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("name", ["evil.pt", "evil.safetensors", "evil.bin"])
def test_pickle_weights_never_run(name, tmp_path, clip, run):
    marker = tmp_path / "pwned"
    evil = tmp_path / name
    evil.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    rc, out, err = run("scan", clip, "--weights", evil, "--workers", "0")
    assert rc == 2 and not marker.exists()
    assert name in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc, _, err = run("convert", evil, tmp_path / "out.safetensors")
    assert rc == 2 and not marker.exists()


def test_pool_survives_hangs_and_crashes(tmp_path, clip, checkpoint):
    import _pool_tasks  # noqa: F401  (importable by the spawned workers through sys.path)

    from fakeprobe.core.config import ScanConfig
    from fakeprobe.scan.pool import ScanPool

    files = []
    for name in ("ok1.mp4", "hang.mp4", "crash.mp4", "ok2.mp4"):
        (tmp_path / name).write_bytes(clip.read_bytes())
        files.append(tmp_path / name)
    pool = ScanPool([checkpoint], ScanConfig(frames=2, backend="torch", time_limit_s=2.0), workers=1, task=_pool_tasks.hang_or_scan)
    results = list(pool.scan_many(files))
    assert [Path(r.path).name for r in results] == ["ok1.mp4", "hang.mp4", "crash.mp4", "ok2.mp4"]
    assert results[0].verdict != ERROR and results[3].verdict != ERROR
    assert results[1].error.kind == "timeout" and "hang.mp4" in results[1].error.message
    assert results[2].error.kind == "crash" and "crash.mp4" in results[2].error.message


def test_unreadable_file_as_root_too(clip, tmp_path, monkeypatch, run, checkpoint):
    """CI runs as root, which reads mode-000 files; simulate the permission error the OS gives
    an ordinary user, so the reporting path is tested everywhere."""
    import builtins

    secret = tmp_path / "secret.mp4"
    secret.write_bytes(clip.read_bytes())
    real_open = builtins.open

    def guarded(file, *a, **k):
        if str(file) == str(secret):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    rc, out, err = run("scan", secret, clip, "--weights", checkpoint, "--backend", "torch", "--frames", "2", "--json")
    assert rc == 2
    records = json.loads(out)
    assert records[0]["verdict"] == "ERROR" and records[0]["error"]["kind"] == "unreadable"
    assert records[1]["verdict"] != "ERROR"
    assert "secret.mp4" in err and "Traceback" not in err


def test_unexpected_failure_is_one_files_error(clip, tmp_path, make_detector, monkeypatch):
    """A bug or library failure on one file becomes that file's ERROR (kind internal); the next
    file is scanned normally."""
    from fakeprobe.scan.analysis import Analyzer

    det = make_detector(frames=2)
    real = Analyzer.analyse

    def flaky(self, path, *args, **kwargs):
        if path.name == "bad.mp4":
            raise ValueError("simulated failure\nwith a second line")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Analyzer, "analyse", flaky)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(clip.read_bytes())
    first, second = det.scan_many([bad, clip])
    _assert_error(first, "bad.mp4", ("internal",))
    assert "simulated failure" in first.error.message
    assert second.verdict != ERROR


# -- FIFOs, sockets, devices: refused at once, never opened ---------------------------------------
def _special(tmp_path: Path, kind: str) -> Path:
    """A FIFO or a unix socket named like media, or a character device (/dev/null)."""
    import socket
    import stat

    if kind == "device":
        if not (os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)):
            pytest.skip("no /dev/null character device here")
        return Path("/dev/null")
    path = tmp_path / f"clip.{kind}.mp4"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        os.mkfifo(path)
    else:
        if not hasattr(socket, "AF_UNIX"):
            pytest.skip("no unix sockets on this platform")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.bind(str(path))  # the socket file stays after close
            except OSError as exc:  # e.g. a path over the ~108-byte limit
                pytest.skip(f"cannot create a unix socket here ({exc})")
    return path


REASONS = {"fifo": "not a regular file (FIFO)", "socket": "not a regular file (socket)", "device": "not a regular file (character device)"}


def _within(seconds: float, fn, fifos: list[Path]):
    """``fn()`` in a thread; if it has not returned after ``seconds`` (it opened a FIFO and waits
    for a writer), the FIFOs get a writer so that the thread ends, and the test fails."""
    import threading

    box: list = []

    def call():
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001  (raised again in the test's thread)
            box.append((False, exc))

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        for f in fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))  # a writer that closes: the reader sees EOF
            except OSError:
                pass
        t.join(10)
        pytest.fail(f"still running after {seconds:g} s (blocked opening a FIFO?)")
    ok, value = box[0]
    if not ok:
        raise value
    return value


@pytest.mark.parametrize("kind", list(REASONS))
def test_special_file_is_an_error_at_once_and_never_opened(kind, tmp_path, det, monkeypatch):
    import builtins

    from PIL import Image

    path = _special(tmp_path, kind)
    opened: list[str] = []

    def watch(real):
        def wrapper(file, *a, **k):
            if str(file) == str(path):
                opened.append(real.__name__)
            return real(file, *a, **k)
        return wrapper

    for owner, name in ((builtins, "open"), (av, "open"), (Image, "open")):
        monkeypatch.setattr(owner, name, watch(getattr(owner, name)))
    start = time.perf_counter()
    r = _within(10, lambda: det.scan(path), [path] if kind == "fifo" else [])
    assert time.perf_counter() - start < 2.0
    _assert_error(r, path.name, ("not_a_file",))
    assert r.error.message == f"{path}: {REASONS[kind]}"
    assert not opened


def test_symlink_to_a_fifo_is_refused(tmp_path, det):
    fifo = _special(tmp_path, "fifo")
    link = tmp_path / "link.mp4"
    link.symlink_to(fifo)
    r = _within(10, lambda: det.scan(link), [fifo])
    _assert_error(r, "link.mp4", ("not_a_file",))
    assert "(FIFO)" in r.error.message


def test_media_readers_refuse_special_files_too(tmp_path):
    """The functions that open media check as well (``fakeprobe.evaluation.evaluate`` calls ``load_image``)."""
    from fakeprobe.core.errors import InputError
    from fakeprobe.media import video
    from fakeprobe.media.images import load_image

    fifo = _special(tmp_path, "fifo")
    for read in (lambda: video.probe(fifo), lambda: load_image(fifo, 10**6)):
        with pytest.raises(InputError, match=r"not a regular file \(FIFO\)"):
            _within(10, read, [fifo])


@pytest.mark.parametrize("workers", ["0", "1"])
def test_cli_scan_reports_special_files_and_scans_the_rest(workers, tmp_path, clip, run, checkpoint, validate):
    """In this process and in the worker pool (where a worker blocked on the FIFO would be freed by
    the time limit, its ``timeout`` record failing the test). The bound on the whole command only
    stops a hang; it is generous for a loaded machine (a scan's own time limit would be too)."""
    fifo, sock, dev = (_special(tmp_path, k) for k in ("fifo", "socket", "device"))
    args = ("scan", fifo, clip, sock, dev, "--weights", checkpoint, "--backend", "torch", "--frames", "2",
            "--workers", workers, "--json")
    rc, out, err = _within(600, lambda: run(*args), [fifo])
    assert rc == 2
    records = json.loads(out)
    assert [r["path"] for r in records] == [str(fifo), str(clip), str(sock), str(dev)]
    for rec in records:
        validate(rec)
    assert records[1]["verdict"] != "ERROR"
    for rec, kind in zip([records[0], records[2], records[3]], ["fifo", "socket", "device"]):
        assert rec["verdict"] == "ERROR" and rec["error"] == {"kind": "not_a_file", "message": f"{rec['path']}: {REASONS[kind]}"}
    lines = err.strip().splitlines()
    assert lines == [f"fakeprobe: {fifo}: not a regular file (FIFO)", f"fakeprobe: {sock}: not a regular file (socket)",
                     f"fakeprobe: {dev}: not a regular file (character device)"], err


def test_extract_and_eval_report_a_fifo_and_go_on(tmp_path, clip, run, checkpoint):
    root = tmp_path / "set"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.mp4").write_bytes(clip.read_bytes())
    fifo = root / "real" / "b.mp4"
    os.mkfifo(fifo)  # found by the folder walk like any media file
    rc, _, err = _within(600, lambda: run("extract", root, "-o", tmp_path / "data", "--frames", "2", "--size", "48"), [fifo])
    assert rc == 2 and f"fakeprobe: {fifo}: not a regular file (FIFO)" in err.splitlines()
    assert f"{root / 'real' / 'a.mp4'}: " in err and list((tmp_path / "data" / "real").glob("a_*.png"))
    rc, out, err = _within(600, lambda: run("eval", root, "--weights", checkpoint, "--backend", "torch", "--frames", "2", "-q",
                                            "--out", tmp_path / "out"), [fifo])
    assert rc == 0, err
    clean = json.loads((tmp_path / "out" / "metrics.json").read_text())["conditions"]["clean"]
    assert clean["skipped"] == {"no_face": 0, "error": 1} and clean["all"]["video"]["n"] == 1
