"""The dev benchmark leaves out the files a compared model was trained on, as its metadata says."""
from __future__ import annotations

from pathlib import Path

import pytest

from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
from fakeprobe.train.splits import TRAIN, split_of

CLIPS = [Path(f"/data/clips/real/{name}") for name in (
    "grid_a.mpg", "grid_b.mpg", "mead_c.mp4", "mead_d.mp4", "voxceleb2_e.mp4", "voxceleb2_f.mp4", "liveportrait_g.mp4",
    "liveportrait_h.mp4", "grid_i.mpg", "mead_j.mp4", "voxceleb2_k.mp4", "mead_l.mp4")]
TV = [Path(f"/data/tv_faces/lrcar_{n:05d}.mp4") for n in range(0, 20000, 250)]


@pytest.fixture(scope="module")
def bench(benchmark_scripts):
    return benchmark_scripts("bench_quality")["bench_quality"]


def _with_training(checkpoint: Path, tmp_path: Path, training: dict) -> Path:
    ckpt = load_checkpoint(checkpoint)
    ckpt.meta.training = training
    out = tmp_path / "model.safetensors"
    save_checkpoint(out, ckpt.build(), ckpt.meta)
    return out


def test_a_recorded_list_is_taken_as_it_is(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"sources": {"grid": 1}, "train_clips": ["grid_a.mpg", "mead_c.mp4"]})
    assert bench.trained_files(w, CLIPS) == {"grid_a.mpg", "mead_c.mp4"}


def test_todays_recipe_trained_on_its_train_split_but_left_out_sources(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"sources": {"grid": 1, "mead": 1}, "exclude_sources": ["voxceleb2"]})
    expected = {p.name for p in CLIPS if split_of(p) == TRAIN and not p.name.startswith("voxceleb2")}
    assert bench.trained_files(w, CLIPS) == expected
    assert expected and expected != {p.name for p in CLIPS}  # the rule keeps some clips out


def test_a_member_split_with_its_own_seed_is_read_so(bench, checkpoint, tmp_path):
    """Runs before "split_seed" was recorded split with their --seed: a seed-1 member trained on
    some of the seed-0 cal and test groups, tv_faces blocks among them, and those must count as seen."""
    files = CLIPS + TV
    old = _with_training(checkpoint, tmp_path, {"sources": {"grid": 1, "mead": 1, "voxceleb2": 1, "liveportrait": 1, "tv_faces": 1},
                                                "seed": 1})
    seen = bench.trained_files(old, files)
    assert seen == {p.name for p in files if split_of(p, seed=1) == TRAIN}
    assert any(split_of(p) != TRAIN for p in TV if p.name in seen), "pick names where the two splits differ"
    new = _with_training(checkpoint, tmp_path, {"sources": {"tv_faces": 1}, "seed": 1, "split_seed": 0})
    assert bench.trained_files(new, files) == {p.name for p in TV if split_of(p) == TRAIN}


def test_an_older_checkpoint_trained_on_all_but_its_validation_videos(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"val_videos": ["grid_b.mpg", "mead_d.mp4"]})
    assert bench.trained_files(w, CLIPS) == {p.name for p in CLIPS} - {"grid_b.mpg", "mead_d.mp4"}


def test_calibration_with_few_fakes_keeps_temperature_one_and_the_same_flags(bench):
    """One well-separated pair cannot fit a temperature (the fit runs to its bound and every
    probability becomes 0 or 1); the threshold still flags the same files as with many pairs."""
    def entry(name, label, kind, source):
        return bench.Entry(name, label, kind, source, bench.CAL, "clean", name)

    reals = [entry(f"r{i}", 0, "orig", "utkface") for i in range(40)]
    logits = {e.path: -6.0 + 0.1 * i for i, e in enumerate(reals)}
    few = [entry("n", 0, "none", "mead"), entry("s", 1, "sbi", "mead")]
    logits.update(n=-4.0, s=22.0)
    cal = bench.calibrate(reals + few, logits, 0.05)
    assert cal.temperature == 1.0 and 0.01 < cal.threshold < 0.99
    many = [entry(f"n{i}", 0, "none", "mead") for i in range(12)] + [entry(f"s{i}", 1, "sbi", "mead") for i in range(12)]
    logits.update({e.path: (-3.0 + 0.5 * i) if e.label == 0 else (1.0 + 0.5 * i) for i, e in enumerate(many)})
    fitted = bench.calibrate(reals + many, logits, 0.05)
    assert fitted.temperature != 1.0
    flags = [bench._prob(logits[e.path], cal.temperature) >= cal.threshold for e in reals]
    assert flags == [bench._prob(logits[e.path], fitted.temperature) >= fitted.threshold for e in reals] and 1 <= sum(flags) <= 2


def test_reals_only_report_of_a_left_out_source(bench):
    """--reals-only: no compared model, one LOSO model; its threshold comes from the other
    sources' cal files and its row counts the left-out source's cal + test files."""
    def entry(name, source, split):
        return bench.Entry(name, 0, "orig", source, split, "clean", name)

    others = [entry(f"u{i}", "utkface", bench.CAL) for i in range(20)]
    left = [entry(f"t{i}", "tv_faces", split) for i, split in enumerate([bench.CAL] * 5 + [bench.TEST] * 5)]
    logits = {e.path: -5.0 + 0.1 * i for i, e in enumerate(others)}
    logits.update({e.path: -10.0 if i < 7 else 10.0 for i, e in enumerate(left)})  # 3 of 10 above anything in utkface
    entries = others + left
    cal = bench.calibrate(entries, logits, 0.05, exclude="tv_faces")
    table = bench.report({}, {"tv_faces": "without tv_faces"}, entries, {"without tv_faces": logits}, {}, {"without tv_faces": cal})
    assert table.splitlines()[0].startswith("| left-out source |")
    assert "| tv_faces | without tv_faces |" in table and "3/10 (30.0 %)" in table
    # its own entries: files it trained on (of the other sources only) are not counted
    own = [e for e in entries if e.path not in ("t0", "t9")]
    table = bench.report({}, {"tv_faces": "without tv_faces"}, entries, {"without tv_faces": logits}, {},
                         {"without tv_faces": cal}, {"without tv_faces": own})
    assert "2/8 (25.0 %)" in table


def test_mirror_averaging_is_the_mean_of_the_cached_plain_and_mirrored_logits(bench, checkpoint, tmp_path):
    import json

    sha = load_checkpoint(checkpoint).sha256[:16]
    entries = [bench.Entry(name, 0, "orig", "tv_faces", bench.CAL, "clean", name) for name in ("a", "b", "c")]
    (tmp_path / "logits").mkdir()
    (tmp_path / "logits" / f"{sha}.json").write_text(json.dumps({"a": 1.0, "b": -3.0, "c": 2.0}))
    (tmp_path / "logits" / f"{sha}-mirrored.json").write_text(json.dumps({"a": 3.0, "b": -1.0, "c": None}))
    got = bench.model_logits("m", checkpoint, entries, {}, tmp_path, print, tta="mirror")  # all cached: nothing scored
    assert got == {"a": 2.0, "b": -2.0, "c": None}
    assert bench.model_logits("m", checkpoint, entries, {}, tmp_path, print) == {"a": 1.0, "b": -3.0, "c": 2.0}


def test_mirror_averaging_cannot_write_a_calibration_for_scan(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--tta", "mirror", "--model", "m=w.safetensors", "--calibrate", "m", "--write-calibrated", "m=out.safetensors"])
    assert "does not mirror" in capsys.readouterr().err


def test_fakes_flagged_counts_the_test_fakes_of_one_condition_at_the_threshold(bench):
    def entry(name, label, split, condition):
        return bench.Entry(name, label, "sbi" if label else "none", "tv_faces", split, condition, name)

    entries = [entry(f"f{i}", 1, bench.TEST, "clean") for i in range(4)] + [
        entry("g", 1, bench.CAL, "clean"), entry("h", 1, bench.TEST, "crf=40"), entry("r", 0, bench.TEST, "clean"),
        entry("x", 1, bench.TEST, "clean")]
    logits = {"f0": -2.0, "f1": 0.5, "f2": 1.0, "f3": 3.0, "g": 9.0, "h": 9.0, "r": 9.0, "x": None}
    cal = bench.Calibration(2.0, 0.6, {})  # p = sigmoid(z / 2) >= 0.6 from z = 0.81
    assert bench.fakes_flagged(entries, logits, cal) == (2, 4)
    assert bench.fakes_flagged(entries, logits, cal, "crf=40") == (1, 1)
    table = "\n".join(bench.model_table({"m": "m.safetensors"}, entries, {"m": logits}, {"m": cal}))
    assert "| fakes flagged, test (clean) | 2/4 (50 %) |" in table


def test_a_recalibrated_copy_shares_the_logits_cache_and_other_weights_do_not(bench, checkpoint, tmp_path):
    ckpt = load_checkpoint(checkpoint)
    key = bench.logits_key(ckpt)
    ckpt.meta.temperature, ckpt.meta.threshold, ckpt.meta.name = 3.0, 0.7, "recalibrated"
    ckpt.meta.training = {**ckpt.meta.training, "threshold_rule": "another"}
    copy = tmp_path / "copy.safetensors"
    save_checkpoint(copy, ckpt.build(), ckpt.meta)
    assert load_checkpoint(copy).sha256 != ckpt.sha256 and bench.logits_key(load_checkpoint(copy)) == key
    ckpt.meta.input_size = ckpt.meta.input_size // 2  # what the network sees changes the logits
    assert bench.logits_key(ckpt) != key
    ckpt = load_checkpoint(checkpoint)
    name = sorted(ckpt.state_dict)[0]
    ckpt.state_dict[name] = ckpt.state_dict[name] + 1
    assert bench.logits_key(ckpt) != key


def test_a_cache_under_the_file_hash_moves_to_the_logits_key_for_recalibrated_copies(bench, checkpoint, tmp_path):
    import json

    ckpt = load_checkpoint(checkpoint)
    entries = [bench.Entry(name, 0, "orig", "tv_faces", bench.CAL, "clean", name) for name in ("a", "b")]
    (tmp_path / "logits").mkdir()
    (tmp_path / "logits" / f"{ckpt.sha256[:16]}.json").write_text(json.dumps({"a": 1.0, "b": None}))
    assert bench.model_logits("m", checkpoint, entries, {}, tmp_path, print) == {"a": 1.0, "b": None}
    assert json.loads((tmp_path / "logits" / f"{bench.logits_key(ckpt)}.json").read_text()) == {"a": 1.0, "b": None}
    ckpt.meta.temperature = 2.5
    copy = tmp_path / "copy.safetensors"
    save_checkpoint(copy, ckpt.build(), ckpt.meta)
    # no crops given: scoring anything would fail, so the copy's logits come from the cache
    assert bench.model_logits("copy", copy, entries, {}, tmp_path, print) == {"a": 1.0, "b": None}


def test_a_left_out_source_can_give_its_train_split_too(bench, tmp_path):
    """--loso-every-split: the left-out source's train-split files join its cal and test files;
    other sources keep to cal and test, and a file a compared model trained on stays out."""
    (tmp_path / "clips" / "real").mkdir(parents=True)
    (tmp_path / "tv_faces").mkdir()
    (tmp_path / "utkface").mkdir()
    for p in CLIPS + [Path(f"/x/grid_{c}{n}.mpg") for c in "mnopqrs" for n in range(3)]:
        (tmp_path / "clips" / "real" / p.name).touch()
    names = lambda entries: {Path(e.path).name for e in entries if e.source != "example"}  # noqa: E731
    clips = sorted(p.name for p in (tmp_path / "clips" / "real").iterdir())
    grid_train = {n for n in clips if n.startswith("grid_") and split_of(n) == TRAIN}
    assert grid_train and any(split_of(n) == TRAIN for n in clips if not n.startswith("grid_"))
    plain = bench.real_files(tmp_path, 5, 5)
    assert names(plain) == {n for n in clips if split_of(n) != TRAIN}
    every = bench.real_files(tmp_path, 5, 5, every_split={"grid"})
    assert names(every) == names(plain) | grid_train
    assert {e.split for e in every if Path(e.path).name in grid_train} == {TRAIN}
    seen = {sorted(grid_train)[0]}
    assert names(bench.real_files(tmp_path, 5, 5, seen, {"grid"})) == names(every) - seen


def test_the_left_out_row_counts_the_train_split_only_when_asked(bench):
    def entry(name, source, split):
        return bench.Entry(name, 0, "orig", source, split, "clean", name)

    others = [entry(f"u{i}", "utkface", bench.CAL) for i in range(20)]
    left = [entry(f"g{i}", "grid", split) for i, split in enumerate([bench.CAL] * 2 + [bench.TEST] * 2 + [TRAIN] * 6)]
    logits = {e.path: -5.0 + 0.1 * i for i, e in enumerate(others)}
    logits.update({e.path: 10.0 if e.path == "g9" else -10.0 for e in left})  # one train-split clip above all
    entries = others + left
    cal = bench.calibrate(entries, logits, 0.05, exclude="grid")
    args = ({}, {"grid": "without grid"}, entries, {"without grid": logits}, {}, {"without grid": cal})
    assert "| grid | without grid |" in bench.report(*args) and "0/4 (0.0 %)" in bench.report(*args)
    table = bench.report(*args, every_split=True)
    assert "(cal + test + train)" in table and "1/10 (10.0 %)" in table
