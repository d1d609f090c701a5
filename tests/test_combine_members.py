"""benchmarks/combine_members.py: ensembles of cached dev-benchmark logits, one table row each."""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def combine():
    monkeypatch = pytest.MonkeyPatch()
    modules = {}
    for name in ("bench_quality", "combine_members"):  # the script imports the bench by name, as run from benchmarks/
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, modules[name])
        spec.loader.exec_module(modules[name])
    yield modules["combine_members"]
    monkeypatch.undo()


def _bench_dir(tmp_path: Path, logits: dict[str, dict[str, float]]) -> Path:
    """A dev-benchmark work folder: files.csv and each model's cached file logits."""
    rows = []
    for split in ("cal", "test"):
        for i in range(12):
            rows.append(dict(path=f"{split}/real{i}.mp4", label=0, kind="none", source="tv_faces", split=split))
            rows.append(dict(path=f"{split}/fake{i}.mp4", label=1, kind="sbi", source="tv_faces", split=split))
            rows.append(dict(path=f"{split}/orig{i}.mp4", label=0, kind="orig", source="tv_faces", split=split))
    rows.append(dict(path="test/example.mp4", label=0, kind="orig", source="example", split="test"))
    with open(tmp_path / "files.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "kind", "source", "split", "condition", "origin"])
        w.writeheader()
        w.writerows({**r, "condition": "clean", "origin": r["path"]} for r in rows)
    (tmp_path / "logits").mkdir()
    for sha, z in logits.items():
        (tmp_path / "logits" / f"{sha[:16]}.json").write_text(json.dumps(z))
    return tmp_path


# perfectly separated logits drive the fitted temperature to its lower bound, where sigmoid overflows harmlessly
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
def test_each_combination_gets_a_row_and_a_member_mean_ranks_as_its_members(combine, checkpoint, tmp_path, capsys):
    base = load_checkpoint(checkpoint)
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, base.build(), dataclasses.replace(base.meta, name="other"))
    good = {f"{s}/{k}{i}.mp4": (3.0 if k == "fake" else -3.0) + 0.1 * i for s in ("cal", "test") for k in ("real", "fake", "orig")
            for i in range(12)}
    flat = {p: 0.0 for p in good}
    (tmp_path / "bench").mkdir()
    work = _bench_dir(tmp_path / "bench", {base.sha256: {**good, "test/example.mp4": -5.0},
                                           load_checkpoint(other).sha256: {**flat, "test/example.mp4": 0.0}})
    assert combine.main([f"good={checkpoint}", f"flat={other}", "--work", str(work)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| good") or line.startswith("| flat")]
    assert [r.split("|")[1].strip() for r in rows] == ["good", "flat", "good + flat"]
    assert rows[0].split("|")[2].strip() == "1.000" and rows[1].split("|")[2].strip() == "0.500"
    assert rows[2].split("|")[2].strip() == "1.000"  # a constant member leaves the ranking to the other


def test_a_model_the_bench_never_scored_is_named(combine, checkpoint, tmp_path):
    work = _bench_dir(tmp_path, {})
    with pytest.raises(SystemExit, match="no cached logits"):
        combine.main([f"m={checkpoint}", "--work", str(work)])
