"""Worker-side tasks for tests/test_pool.py (importable by spawned worker processes)."""
import os
import signal
import time


def hang_or_scan(detector, path):
    if "hang" in path.name:
        time.sleep(3600)
    if "crash" in path.name:
        os.kill(os.getpid(), signal.SIGSEGV)
    return detector.scan(path)
