"""The background-thread prefetch, thread counts and memory release behind the overlapped scan."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _scores import assert_logits_close, assert_probabilities_close, logits_close

from fakeprobe.core.cpus import beside_decoder, scan_threads, torch_threads, usable_cores
from fakeprobe.core.memory import release_free_memory
from fakeprobe.media.prefetch import Prefetch


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
    monkeypatch.setattr("fakeprobe.core.cpus.usable_cores", lambda: 2)
    assert scan_threads() == 2 and beside_decoder(2) == 1  # one core left to the decoder
    assert scan_threads(workers=2) == 1 and beside_decoder(1) == 1
    monkeypatch.setattr("fakeprobe.core.cpus.usable_cores", lambda: 16)
    assert scan_threads(workers=4) == 4 and beside_decoder(4) == 3
    assert usable_cores.__module__ == "fakeprobe.core.cpus"


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
    from fakeprobe.media import synth

    path = synth.scene_video(media_dir / "overlap.mp4", photo, width=1280, height=720, seconds=2.0, fps=10,
                             faces=lambda i: 0 if i < 5 else 1 if i < 12 else 2)
    # One thread in both: with more, the overlapped scan detects with one while the decoder works and
    # with all when it waits, which moves boxes in their last float bits, and through the crops'
    # rounding to uint8 a few pixels by a grey level (3e-4 on a logit on a 2-core Xeon). With the
    # same threads, detection and cropping are bit-identical in both scans.
    runs = [make_detector(frames=20, overlap=ov, threads=1).scan_with_evidence(path) for ov in (True, False)]
    (first, evidence), (second, seq_evidence) = runs
    assert np.array_equal(evidence.crops, seq_evidence.crops)  # the same faces, cut alike, in the same order
    a, b = first.to_dict(), second.to_dict()
    for r in (a, b):
        r.pop("elapsed_s")
        r.pop("timings")
    # the crops were classified in other batches (as frames came, or a chunk at a time): their scores
    # agree to float rounding (tests/_scores.py), everything else exactly
    logits = [[d.pop("logit") for d in r["detections"] + r["persons"]] for r in (a, b)]
    probabilities = [[d.pop("probability") for d in r["detections"] + r["persons"]] + [r.pop("probability")] for r in (a, b)]
    assert_logits_close(*logits)
    assert_probabilities_close(*probabilities)
    assert a == b
    assert first.faces >= 20 and len(first.persons) >= 2  # the layout shifts when the second face comes
    # and the tolerance still sees a real change: scores paired with the neighbouring face's crop,
    # or crops moved by one pixel
    z = [d.logit for d in first.detections]
    assert not logits_close(z, np.roll(z, 1))
    assert not logits_close(z, make_detector(frames=20, overlap=True, threads=1).scorer.logits(np.roll(evidence.crops, 1, axis=2)))


def test_scan_keeps_no_full_frames_but_evidence_gets_thumbnails(make_detector, face_clip):
    det = make_detector(frames=4)
    a = det.analyzer.analyse(face_clip, keep_images=False)
    assert all(f.image is None for f in a.frames) and a.faces
    result, evidence = det.scan_with_evidence(face_clip)
    assert len(evidence.frames) == len(result.frames) and all(img.ndim == 3 for img in evidence.frames)


def test_workers_fork_from_a_preloaded_server_on_linux():
    import sys

    from fakeprobe.scan.pool import _context

    ctx = _context()
    expected = "forkserver" if sys.platform.startswith("linux") else "spawn"
    assert ctx.get_start_method() == expected


def test_classification_fills_the_waits_for_the_decoder(make_detector, face_clip, monkeypatch):
    """While detection waits for slow decoding, crops are classified by a one-thread ONNX session
    (the decoder keeps the other core); the result is the same as without overlap."""
    from fakeprobe.media import video
    from fakeprobe.model.inference import OnnxRunner

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
    # detection ran with other thread counts, and the crops were classified in other batches by
    # other ONNX sessions: the same faces, scores equal to float rounding (tests/_scores.py)
    assert [(d.frame_index, d.track) for d in waited.detections] == [(d.frame_index, d.track) for d in plain.detections]
    assert_logits_close([d.logit for d in waited.detections], [d.logit for d in plain.detections])
    assert_probabilities_close([d.probability for d in waited.detections], [d.probability for d in plain.detections])
