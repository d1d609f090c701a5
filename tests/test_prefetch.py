"""The background-thread prefetch, thread counts and memory release behind the overlapped scan."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fakeprobe.cpus import beside_decoder, scan_threads, torch_threads, usable_cores
from fakeprobe.memory import release_free_memory
from fakeprobe.prefetch import Prefetch


def test_items_come_in_order_from_another_thread():
    seen = []

    def source():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i

    assert list(Prefetch(source(), depth=3)) == list(range(50))
    assert set(seen) == {"fakeprobe-prefetch"}


def test_error_is_raised_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("broken at 3")

    it = Prefetch(source())
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(ValueError, match="broken at 3"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_close_stops_the_producer_and_runs_its_cleanup():
    produced, closed = [], threading.Event()

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    with Prefetch(source(), depth=2) as it:
        assert next(it) == 0
    assert closed.is_set()  # close() waited for the generator's finally
    assert len(produced) <= 5  # it stayed at most ~depth items ahead


def test_work_overlaps():
    def slow_source():
        for i in range(4):
            time.sleep(0.1)
            yield i

    t0 = time.perf_counter()
    for _ in Prefetch(slow_source()):
        time.sleep(0.1)
    assert time.perf_counter() - t0 < 0.75  # 0.8 s if producer and consumer took turns


def test_thread_counts(monkeypatch):
    assert scan_threads(3) == 3
    monkeypatch.setattr("fakeprobe.cpus.usable_cores", lambda: 2)
    assert scan_threads() == 2 and beside_decoder(2) == 1  # one core left to the decoder
    assert scan_threads(workers=2) == 1 and beside_decoder(1) == 1
    monkeypatch.setattr("fakeprobe.cpus.usable_cores", lambda: 16)
    assert scan_threads(workers=4) == 4 and beside_decoder(4) == 3
    assert usable_cores.__module__ == "fakeprobe.cpus"


def test_idle_tells_when_the_producer_waits():
    release = threading.Event()

    def source():
        yield 0
        release.wait(5)
        yield 1

    it = Prefetch(source(), depth=4)
    assert next(it) == 0
    assert not it.idle()  # still working on the next item
    release.set()
    assert next(it) == 1
    it._thread.join(5)
    assert it.idle()
    full = Prefetch(iter(range(100)), depth=2)
    time.sleep(0.2)
    assert full.idle()  # blocked on its full queue
    full.close()


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_release_free_memory_returns_heap_to_the_os():
    import sys

    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    if not sys.platform.startswith("linux"):
        assert release_free_memory() is False
        return
    # many small blocks (below the mmap threshold) stay in the heap after free() until trimmed
    blocks = [np.ones(4096, np.uint8) for _ in range(60_000)]  # ~250 MiB
    keep = blocks[-1]
    del blocks
    before = rss_kb()
    assert release_free_memory() is True
    assert rss_kb() < before - 100_000
    assert keep.sum() == 4096


def test_overlapped_scan_equals_sequential_scan(make_detector, media_dir, photo):
    """Decoding ahead in a thread and classifying batch by batch changes nothing in the result."""
    from fakeprobe import synth

    path = synth.scene_video(media_dir / "overlap.mp4", photo, width=1280, height=720, seconds=2.0, fps=10,
                             faces=lambda i: 0 if i < 5 else 1 if i < 12 else 2)
    results = [make_detector(frames=20, overlap=ov).scan(path) for ov in (True, False)]
    a, b = (r.to_dict() for r in results)
    for r in (a, b):
        r.pop("elapsed_s")
        r.pop("timings")
    # scores agree to float rounding (the classifier sees other batch sizes), the rest exactly
    scores = ("logit", "probability")
    for r in (a, b):
        r["scores"] = [d.pop(k) for d in r["detections"] + r["persons"] for k in scores] + [r.pop("probability")]
    assert np.allclose(a.pop("scores"), b.pop("scores"), atol=2e-4)
    assert a == b
    assert results[0].faces >= 20 and len(results[0].persons) >= 2  # the layout shifts when the second face comes


def test_scan_keeps_no_full_frames_but_evidence_gets_thumbnails(make_detector, face_clip):
    det = make_detector(frames=4)
    a = det.analyzer.analyse(face_clip, keep_images=False)
    assert all(f.image is None for f in a.frames) and a.faces
    result, evidence = det.scan_with_evidence(face_clip)
    assert len(evidence.frames) == len(result.frames) and all(img.ndim == 3 for img in evidence.frames)


def test_workers_fork_from_a_preloaded_server_on_linux():
    import sys

    from fakeprobe.pool import _context

    ctx = _context()
    expected = "forkserver" if sys.platform.startswith("linux") else "spawn"
    assert ctx.get_start_method() == expected


def test_classification_fills_the_waits_for_the_decoder(make_detector, face_clip, monkeypatch):
    """While detection waits for slow decoding, crops are classified by a one-thread ONNX session
    (the decoder keeps the other core); the result is the same as without overlap."""
    from fakeprobe import video
    from fakeprobe.inference import OnnxRunner

    det = make_detector(frames=12, backend="onnx", threads=2)
    beside = det.beside_scorer
    assert beside is not det.scorer
    (_, runner), = beside.members
    assert isinstance(runner, OnnxRunner) and runner.session.get_session_options().intra_op_num_threads == 1
    assert make_detector(frames=12, backend="onnx", threads=1).beside_scorer is make_detector(frames=12, backend="onnx", threads=1).scorer

    decode = video.iter_frames

    def slow(*args, **kw):
        for i, frame in enumerate(decode(*args, **kw)):
            if i >= 4:
                time.sleep(0.15)  # a slow decoder: detection of the first batch then waits
            yield frame

    calls = []
    logits = beside.logits
    monkeypatch.setattr(beside, "logits", lambda crops: calls.append(len(crops)) or logits(crops))
    monkeypatch.setattr(video, "iter_frames", slow)
    waited = det.scan(face_clip)
    assert calls and sum(calls) <= waited.faces  # crops were classified while detection waited
    monkeypatch.setattr(video, "iter_frames", decode)
    plain = make_detector(frames=12, backend="onnx", threads=2, overlap=False).scan(face_clip)
    assert [d.probability for d in waited.detections] == pytest.approx([d.probability for d in plain.detections], abs=2e-4)
