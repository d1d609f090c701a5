"""Batch-scan plumbing that needs no Ray: ``--from-list``, ``--resume`` of a local JSONL scan,
the resume readers and the Parquet sink; and ``--ray`` without Ray installed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fakeprobe.distributed import drop_truncated_tail, path_key, previous_verdicts
from fakeprobe.media.inputs import read_input_list

MODEL = ("--backend", "torch", "--frames", "2")


def test_read_input_list(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# inputs\r\n\r\na.mp4\r\n  sub/b.mp4  \n# c.mp4\n\n*.webm\n")
    assert read_input_list(lst) == ["a.mp4", "sub/b.mp4", "*.webm"]


def test_from_list_local_scan(face_clip, face_image, tmp_path, run, checkpoint, monkeypatch):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.png").write_bytes(face_image.read_bytes())
    monkeypatch.chdir(tmp_path)
    lst = tmp_path / "list.txt"
    lst.write_text(f"# one clip, a folder, a missing file\n{face_clip}\n\nfolder\n   \nmissing.mp4\n")
    rc, out, err = run("scan", "--from-list", lst, face_clip, "--weights", checkpoint, *MODEL, "--jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    # positional inputs first, then the list's; a file named twice is scanned once
    assert [r["path"] for r in records] == [str(face_clip), str(Path("folder") / "x.png"), "missing.mp4"]
    assert rc == 2 and [r["verdict"] for r in records][2] == "ERROR" and "missing.mp4" in err


def test_from_list_unreadable(tmp_path, run):
    rc, _, err = run("scan", "--from-list", tmp_path / "nope.txt")
    assert rc == 2 and "nope.txt" in err and "Traceback" not in err


def test_local_resume(face_clip, tmp_path, run, checkpoint):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for p in (a, b):
        p.write_bytes(face_clip.read_bytes())
    out = tmp_path / "out.jsonl"
    kept = {"path": str(a), "verdict": "FAKE", "elapsed_s": 12345.0}  # a marker, not a real scan
    out.write_text(json.dumps(kept) + '\n{"path": "' + str(b) + '", "ver')  # killed while writing b's record
    rc, _, err = run("scan", a, b, "--weights", checkpoint, *MODEL, "--threshold", "1", "--jsonl", "-o", out, "--resume", "-q")
    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == kept and len(lines) == 2
    assert json.loads(lines[1])["path"] == str(b) and json.loads(lines[1])["verdict"] == "REAL"
    assert rc == 1  # the earlier FAKE still counts, as if the batch had run in one go
    rc, _, _ = run("scan", a, b, "--weights", checkpoint, *MODEL, "--jsonl", "-o", out, "--resume", "-q")
    assert rc == 1 and len(out.read_text().splitlines()) == 2  # nothing left to scan


def test_resume_needs_an_output_file(face_clip, run, checkpoint):
    rc, _, err = run("scan", face_clip, "--weights", checkpoint, "--jsonl", "--resume")
    assert rc == 2 and "--resume" in err


def test_previous_verdicts_and_truncated_tails(tmp_path):
    out = tmp_path / "o.jsonl"
    assert previous_verdicts(out) == {}
    good = [{"path": "a.mp4", "verdict": "REAL"}, {"path": "./b.mp4", "verdict": "ERROR"}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    for tail, expect in [("", text), ('{"path": "c.mp4", "ve', text), ('{"path": "c.mp4", "verdict": "FAKE"}', text + '{"path": "c.mp4", "verdict": "FAKE"}\n')]:
        out.write_text(text + tail)
        done = previous_verdicts(out)
        assert done[path_key("a.mp4")] == "REAL" and done[path_key(tmp_path.cwd() / "b.mp4")] == "ERROR"
        assert (path_key("c.mp4") in done) == ("FAKE" in tail)
        drop_truncated_tail(out)
        assert out.read_text() == expect
    out.write_text("garbage\n" + text)  # not a cut-off last line: refuse rather than guess
    with pytest.raises(ValueError, match="line 1"):
        previous_verdicts(out)


def test_parquet_sink_parts(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from fakeprobe.distributed import ParquetSink

    records = [{"schema": "fakeprobe.scan/1", "path": f"{i}.mp4", "verdict": "REAL", "probability": 0.1, "faces": 3, "n_persons": 1,
                "media": {"frames_analysed": 4}, "model": {"sha256": "ab"}, "warnings": [], "error": None, "elapsed_s": 1.0} for i in range(5)]
    records.append({"path": "bad.mp4", "verdict": "ERROR", "probability": None, "error": {"kind": "decode", "message": "bad.mp4: broken"},
                    "media": None, "warnings": ["w"]})
    with ParquetSink(tmp_path / "out", part_rows=4) as sink:
        for r in records:
            sink.write(r)
    parts = sorted((tmp_path / "out").iterdir())
    assert len(parts) == 2 and all(p.name.startswith("part-") for p in parts)  # 4 rows, then the rest at close
    rows = pq.read_table(tmp_path / "out").to_pylist()
    assert [json.loads(r["record"]) for r in rows] == records
    assert rows[-1]["error_kind"] == "decode" and rows[-1]["probability"] is None and rows[-1]["warnings"] == ["w"]
    assert rows[0]["frames_analysed"] == 4 and rows[0]["model_sha256"] == "ab"
    assert previous_verdicts(tmp_path / "out", parquet=True) == {path_key(r["path"]): r["verdict"] for r in records}


def test_ray_missing_is_one_line(face_clip, run, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc, _, err = run("scan", face_clip, "--ray", "local")
    assert rc == 2 and 'pip install "fakeprobe[ray]"' in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def fake_ray(monkeypatch, checkpoint):
    """``scan --ray`` with ray_scan replaced by local scans yielding in reverse order (Ray gives
    records as files finish): the command's own part (sinks, --resume, exit codes) without Ray."""
    import fakeprobe.distributed
    from fakeprobe import Detector
    from fakeprobe.core.output import to_json

    calls = []

    def fake_ray_scan(paths, config, address, *, weights=None, actors=None):
        calls.append({"paths": [str(p) for p in paths], "address": address, "config": config, "actors": actors})
        detector = Detector(weights=weights, config=config)
        for p in reversed(paths):
            yield to_json(detector.scan(p))

    monkeypatch.setattr(fakeprobe.distributed, "ray_scan", fake_ray_scan)
    return calls


def test_ray_command_writes_and_resumes(fake_ray, face_clip, empty_clip, tmp_path, run, checkpoint):
    out = tmp_path / "out.jsonl"
    rc, stdout, err = run("scan", face_clip, empty_clip, "--weights", checkpoint, *MODEL, "--threads", "1", "--ray", "auto",
                          "--actors", "3", "-o", out)
    assert rc == 0 and stdout == "", err
    (call,) = fake_ray
    assert call["address"] == "auto" and call["actors"] == 3 and call["config"].threads == 1 and call["config"].frames == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == [str(empty_clip), str(face_clip)]  # as they come, not in input order
    missing = tmp_path / "missing.mp4"
    rc, _, err = run("scan", face_clip, missing, empty_clip, "--weights", checkpoint, *MODEL, "--ray", "auto", "-o", out, "--resume")
    assert fake_ray[1]["paths"] == [str(missing)] and rc == 2 and "missing.mp4" in err
    assert len(out.read_text().splitlines()) == 3


def test_ray_command_parquet(fake_ray, face_clip, tmp_path, run, checkpoint):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    rc, _, err = run("scan", face_clip, "--weights", checkpoint, *MODEL, "--ray", "auto", "--parquet", "-o", out)
    assert rc == 0, err
    (row,) = pq.read_table(out).to_pylist()
    assert row["path"] == str(face_clip) and json.loads(row["record"])["verdict"] == row["verdict"]
    rc, _, err = run("scan", face_clip, "--weights", checkpoint, *MODEL, "--ray", "auto", "--parquet", "-o", out)
    assert rc == 2 and "--resume" in err and len(fake_ray) == 1  # refused before scanning: never mixes two runs
    rc, _, err = run("scan", face_clip, "--weights", checkpoint, *MODEL, "--ray", "auto", "--parquet", "-o", out, "--resume")
    assert rc == 0 and fake_ray[1]["paths"] == [] and len(list(out.iterdir())) == 1


@pytest.mark.parametrize("extra, message", [
    (["--json"], "--json"), (["--csv"], "--csv"), (["--parquet"], "-o DIR"), (["--resume"], "-o FILE"), (["--actors", "0"], "--actors"),
])
def test_ray_command_refuses(extra, message, fake_ray, face_clip, run):
    rc, _, err = run("scan", face_clip, "--ray", "auto", *extra)
    assert rc == 2 and message in err and not fake_ray


def test_parquet_needs_ray(face_clip, tmp_path, run):
    rc, _, err = run("scan", face_clip, "--parquet", "-o", tmp_path / "x")
    assert rc == 2 and "--ray" in err
