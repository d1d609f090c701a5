"""bench_serve counts the CPU time of its whole process tree, scan workers under a forkserver
included, so that a quiet machine is not reported as busy."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "benchmarks" / "bench_serve.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setitem(sys.modules, "bench_serve", module)
    spec.loader.exec_module(module)
    yield module
    monkeypatch.undo()


def test_cpu_of_a_grandchild_that_nobody_waits_for_is_counted(bench):
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"
    # the child starts a grandchild and exits without waiting for it, as a server leaves its
    # forkserver's workers: getrusage(RUSAGE_CHILDREN) never sees the grandchild's time
    script = f"import os, subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {burn!r}]); time.sleep(2.5); os._exit(0)"
    with bench.TreeCpu(interval=0.1) as tree:
        subprocess.run([sys.executable, "-c", script], check=True)
    assert tree.used >= 0.9


def test_nothing_running_counts_next_to_nothing(bench):
    with bench.TreeCpu(interval=0.1) as tree:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True)
    assert tree.used < 0.5
