"""Every command-line script in benchmarks/ and scripts/ prints its help and exits 0 (argparse
formats help text with %, so a stray "%" in an option's help crashes --help)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("benchmarks", "scripts") for p in (ROOT / folder).glob("*.py")
                 if "argparse" in p.read_text())


def test_there_are_scripts_to_check():
    assert {"bench_quality.py", "probe_source_offset.py", "make_train_pack.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_help_works(script):
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]
