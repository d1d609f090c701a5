"""ScanConfig checks its own ranges, so the CLI, the server and API users get the same refusal,
and the CLI names the option it came from."""
from __future__ import annotations

import pytest

from fakeprobe import ScanConfig
from fakeprobe.cli import main
from fakeprobe.core.config import ConfigError


@pytest.mark.parametrize("kw, field", [
    ({"frames": 0}, "frames"), ({"detect_every": 0}, "detect_every"), ({"threads": -1}, "threads"),
    ({"threshold": 1.5}, "threshold"), ({"threshold": -0.1}, "threshold"), ({"margin": 0.0}, "margin"),
    ({"time_limit_s": 0.0}, "time_limit_s"), ({"max_duration_s": -1.0}, "max_duration_s"), ({"backend": "tpu"}, "backend"),
])
def test_out_of_range_settings_are_refused(kw, field):
    with pytest.raises(ConfigError) as info:
        ScanConfig(**kw)
    assert info.value.field == field


def test_edges_of_the_ranges_are_accepted():
    cfg = ScanConfig(frames=1, detect_every=1, threads=0, threshold=0.0, margin=1.0, time_limit_s=0.5)
    assert ScanConfig(threshold=1.0).threshold == 1.0 and cfg.frames == 1


@pytest.mark.parametrize("argv, message", [
    (["scan", "--frames", "0"], "--frames must be at least 1"),
    (["scan", "--threshold", "2"], "--threshold must be between 0 and 1"),
    (["scan", "--time-limit", "0"], "--time-limit must be positive"),
    (["scan", "--max-duration", "0"], "--max-duration must be positive"),
    (["scan", "--detect-every", "0"], "--detect-every must be at least 1"),
    (["detect", "--threshold", "2", "--video"], "--threshold must be between 0 and 1"),
    (["eval", "--threshold", "-1"], "--threshold must be between 0 and 1"),
])
def test_cli_names_the_option(argv, message, tmp_path, capsys):
    target = tmp_path / "clip.mp4"  # never opened: the options are refused first
    target.write_bytes(b"")
    rc = main(argv + [str(target)])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"fakeprobe: {message}"
