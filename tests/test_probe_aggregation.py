"""benchmarks/probe_aggregation.py: per-person statistics other than scan's mean, from cached crops."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fakeprobe.evaluation.heldout import FileCrops

@pytest.fixture(scope="module")
def probe(benchmark_scripts):
    return benchmark_scripts("bench_quality", "probe_aggregation")["probe_aggregation"]


def test_statistics_by_name(probe):
    z = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    assert probe.statistic("mean")(z) == 21.2 and probe.statistic("median")(z) == 2.0
    assert probe.statistic("trim0.2")(z) == 2.0 and probe.statistic("trim0")(z) == 21.2
    assert probe.statistic("q0.25")(z) == 1.0
    for bad in ("max", "trim0.5", "q2"):
        with pytest.raises(ValueError, match="unknown statistic"):
            probe.statistic(bad)


def _entry(probe, path, label, kind, source, split):
    return probe.Entry(path, label, kind, source, split, "clean", path)


def test_a_statistic_that_ignores_one_odd_frame_lowers_the_threshold_it_sets(probe):
    """One real cal clip is high in a single frame: under the mean it sets the threshold above
    every fake; under the median the threshold comes from the other clips and catches them."""
    entries, per_crop = [], {}
    for i in range(30):  # ordinary real clips of two sources, every frame about -2
        e = _entry(probe, f"r{i}", 0, "orig", "tv_faces" if i % 2 else "grid", probe.CAL)
        entries.append(e)
        per_crop[e.path] = ([-2.0 - 0.01 * i] * 5, [0] * 5)
    odd = _entry(probe, "odd", 0, "orig", "grid", probe.CAL)
    entries.append(odd)
    per_crop["odd"] = ([-2.0, -2.0, -2.0, -2.0, 40.0], [0] * 5)  # mean 6.4, median -2
    for split in (probe.CAL, probe.TEST):
        for i in range(4):
            for e, z in ((_entry(probe, f"{split}f{i}", 1, "sbi", "tv_faces", split), 3.0),
                         (_entry(probe, f"{split}n{i}", 0, "none", "tv_faces", split), -3.0)):
                entries.append(e)
                per_crop[e.path] = ([z] * 5, [0] * 5)
    t = _entry(probe, "t", 0, "orig", "tv_faces", probe.TEST)
    entries.append(t)
    per_crop["t"] = ([-1.0] * 5, [0] * 5)
    mean = probe.row("mean", entries, per_crop, 0.05, 3)
    median = probe.row("median", entries, per_crop, 0.05, 3)
    assert mean["set by"] == "grid" and mean["threshold (raw)"] > 6
    assert mean["cal fakes caught"] == (0, 4) and mean["test fakes caught"] == (0, 4)
    assert median["threshold (raw)"] < -1.5 and median["cal fakes caught"] == (4, 4) and median["test reals flagged"] == (1, 1)
    assert mean["AUC cal"] == median["AUC cal"] == 1.0
    table = probe.table([mean, median])
    assert table.splitlines()[0].startswith("| statistic | set by |") and "| median | " in table and "4/4" in table


def test_crop_logits_classify_each_file_once_and_skip_files_without_a_face(probe, checkpoint, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    entries = [_entry(probe, f"/d/clip{i}.mp4", 0, "orig", "tv_faces", probe.CAL) for i in range(3)]
    (tmp_path / "crops").mkdir()
    for i, e in enumerate(entries):
        n = 0 if i == 2 else 4
        crops = rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8)
        FileCrops(e.path, crops, np.array([0, 0, 1, 1][:n], np.int64)).save(
            tmp_path / "crops" / f"{sys.modules['bench_quality']._seed(e.path):08x}_{Path(e.path).stem}.npz")
    first = probe.crop_logits(checkpoint, entries, tmp_path, lambda _: None)
    assert set(first) == {"/d/clip0.mp4", "/d/clip1.mp4"}
    logits, tracks = first["/d/clip0.mp4"]
    assert len(logits) == 4 and tracks == [0, 0, 1, 1] and all(np.isfinite(logits))

    def never(*args, **kwargs):
        raise AssertionError("classified again")
    monkeypatch.setattr(probe, "CachedScorer", never)
    assert probe.crop_logits(checkpoint, entries, tmp_path, lambda _: None) == first


def test_without_a_listing_it_says_so(probe, checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        probe.main([str(checkpoint), "--work", str(tmp_path)])
    assert exc.value.code == 2 and "files.csv: no dev-benchmark listing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        probe.main([str(checkpoint), "--work", str(tmp_path), "--statistics", "mean,max"])
    assert "unknown statistic 'max'" in capsys.readouterr().err
