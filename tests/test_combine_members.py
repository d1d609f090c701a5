"""benchmarks/combine_members.py: ensembles of cached dev-benchmark logits, one table row each."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint

@pytest.fixture(scope="module")
def combine(benchmark_scripts):
    return benchmark_scripts("bench_quality", "combine_members")["combine_members"]


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
    # the operating point: every cal fake over the threshold its cal reals set, or none when reals and fakes tie
    assert [r.split("|")[3].strip() for r in rows] == ["12/12", "0/12", "12/12"]


def test_a_model_the_bench_never_scored_is_named(combine, checkpoint, tmp_path):
    work = _bench_dir(tmp_path, {})
    with pytest.raises(SystemExit, match="no cached logits"):
        combine.main([f"m={checkpoint}", "--work", str(work)])


def test_a_model_scored_on_part_of_the_files_is_refused(combine, checkpoint, tmp_path):
    """A member cached by another bench run (fewer files) would set the threshold on a different
    file set; a stored null (no face found) is fine."""
    every = {f"{s}/{k}{i}.mp4": 0.0 for s in ("cal", "test") for k in ("real", "fake", "orig") for i in range(12)}
    sha = load_checkpoint(checkpoint).sha256
    work = _bench_dir(tmp_path, {sha: {**every, "test/orig0.mp4": None, "test/example.mp4": 0.0}})
    assert combine.main([f"m={checkpoint}", "--work", str(work)]) == 0
    (work / "logits" / f"{sha[:16]}.json").write_text(json.dumps(every))
    with pytest.raises(SystemExit, match="1 of 73 files never scored"):
        combine.main([f"m={checkpoint}", "--work", str(work)])


def _reals_only_dir(tmp_path: Path, logits: dict[str, dict[str, float]]) -> Path:
    """A ``bench_quality.py --reals-only`` work folder: held-out real files of two sources."""
    rows = [dict(path=f"{split}/{source}{i}.mp4", source=source, split=split)
            for split in ("cal", "test") for source in ("tv_faces", "mead") for i in range(10)]
    rows.append(dict(path="test/example.mp4", source="example", split="test"))
    with open(tmp_path / "files_reals_only.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "kind", "source", "split", "condition", "origin"])
        w.writeheader()
        w.writerows({**r, "label": 0, "kind": "orig", "condition": "clean", "origin": r["path"]} for r in rows)
    (tmp_path / "logits").mkdir()
    for sha, z in logits.items():
        (tmp_path / "logits" / f"{sha[:16]}.json").write_text(json.dumps(z))
    return tmp_path


def test_reals_only_weights_members_by_their_own_temperatures(combine, checkpoint, tmp_path, capsys):
    """A pack divides each member's logit by its temperature: a hot member (T = 100) barely moves
    the mean, so the sharp member alone decides whether mead, left out, lands over the threshold."""
    base = load_checkpoint(checkpoint)
    training = {**base.meta.training, "exclude_sources": ["mead"]}
    sharp, hot = tmp_path / "sharp.safetensors", tmp_path / "hot.safetensors"
    save_checkpoint(sharp, base.build(), dataclasses.replace(base.meta, name="sharp", temperature=1.0, training=training))
    save_checkpoint(hot, base.build(), dataclasses.replace(base.meta, name="hot", temperature=100.0, training=training))
    tv = {f"{s}/tv_faces{i}.mp4": -2.0 + 0.1 * i for s in ("cal", "test") for i in range(10)}
    sharp_z = {**tv, **{f"{s}/mead{i}.mp4": 3.0 for s in ("cal", "test") for i in range(10)}, "test/example.mp4": -5.0}
    hot_z = {**{p: 100 * z for p, z in tv.items()}, **{f"{s}/mead{i}.mp4": -300.0 for s in ("cal", "test") for i in range(10)},
             "test/example.mp4": -500.0}
    (tmp_path / "bench").mkdir()
    work = _reals_only_dir(tmp_path / "bench", {load_checkpoint(sharp).sha256: sharp_z, load_checkpoint(hot).sha256: hot_z})
    assert combine.main(["--reals-only", "--loso", "mead", f"sharp={sharp}", f"hot={hot}", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert "AUC" not in out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines()
            if line.startswith("| sharp") or line.startswith("| hot")}
    assert rows["sharp"][-1] == "20/20" and rows["hot"][-1] == "0/20"
    # mead's mean (3 / 1 - 300 / 100) / 2 = 0 is over tv_faces' highest, -1.1; without the temperatures
    # it would be (3 - 300) / 2, far under
    assert rows["sharp + hot"][-1] == "20/20"
