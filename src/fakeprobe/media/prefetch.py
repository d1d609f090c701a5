"""Run an iterator ahead in a background thread, so its work overlaps the consumer's.

Used to decode video frames while the previous ones go through face detection and
classification: PyAV, torch and ONNX Runtime release the GIL in their heavy parts.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetch(Iterator[T]):
    """Iterate ``source`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    Items come out in order; an exception raised by ``source`` is raised by ``next`` after the
    items produced before it. ``close()`` (or leaving a ``with`` block) stops the producer and
    waits for it, so a generator's ``finally`` (closing a file, say) has run when it returns.
    """

    def __init__(self, source: Iterable[T], depth: int = 8):
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name="fakeprobe-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        it = iter(self._source)
        try:
            for item in it:
                if not self._put(item):
                    break
            else:
                self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Raised(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # runs the generator's cleanup in this thread, which owns it

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            self._thread.join()
            raise StopIteration
        if isinstance(item, _Raised):
            self._finished = True
            self._thread.join()
            raise item.exc
        return item

    def ready(self) -> int:
        """Items waiting to be taken (the end-of-stream mark counts as one)."""
        return self._queue.qsize()

    def idle(self) -> bool:
        """True when the producer is not working: it has finished, or waits on a full queue."""
        return not self._thread.is_alive() or self._queue.full()

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
