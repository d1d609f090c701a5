"""The command line: exit codes, output formats, bad inputs, folders and globs, `detect`."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from fakeprobe.core.output import CSV_FIELDS
from fakeprobe.media import synth
from fakeprobe.media.inputs import expand_inputs

W, H = 320, 180
FAST = ("--backend", "torch", "--frames", "3")


def scan(run, checkpoint, *args):
    # in-process (--workers 0) for speed; the console-script tests below use worker processes
    return run("scan", *args, "--weights", checkpoint, *FAST, "--workers", "0")


# -- bad inputs ------------------------------------------------------------------------------
def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _undecodable(src: Path, dst: Path) -> Path:
    """A well-formed MP4 whose video payload is noise: it demuxes, but no frame decodes."""
    data = bytearray(src.read_bytes())
    i = data.find(b"mdat")
    size = int.from_bytes(data[i - 4 : i], "big")
    data[i + 4 : i - 4 + size] = np.random.default_rng(1).bytes(size - 8)
    dst.write_bytes(bytes(data))
    return dst


# name -> expected error kind
BAD = {
    "missing.mp4": "not_found",
    "zero.mp4": "empty",
    "random.mp4": "input",
    "text.mov": "input",
    "truncated.mp4": "input",
    "audio.mp4": "no_video",
    "undecodable.mp4": "decode",
    "broken.jpg": "decode",
}


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory, face_clip, face_image) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    (d / "text.mov").write_text("this is a text file, not a movie\n" * 50)
    full = face_clip.read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])
    _audio_only(d / "audio.mp4")
    _undecodable(face_clip, d / "undecodable.mp4")
    jpg = d / "full.jpg"
    from PIL import Image

    Image.open(face_image).convert("RGB").save(jpg, quality=90)
    (d / "broken.jpg").write_bytes(jpg.read_bytes()[:600])
    jpg.unlink()
    return d


def _check_error_lines(err: str, names: list[str]) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(names), err
    for line, name in zip(lines, names):
        assert line.startswith("fakeprobe: ") and name in line, (line, name)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input(name, bad_dir, run, checkpoint, validate):
    path = bad_dir / name
    rc, out, err = scan(run, checkpoint, path, "--json")
    assert rc == 2
    (rec,) = json.loads(out)
    validate(rec)
    assert rec["verdict"] == "ERROR" and rec["probability"] is None
    assert rec["error"]["kind"] == BAD[name], rec["error"]
    assert name in rec["error"]["message"] and "\n" not in rec["error"]["message"]
    reason = rec["error"]["message"].split(": ", 1)[1]
    assert re.search(r"[a-z]{4}", reason) and "avcodec" not in reason and "Errno" not in reason, reason
    _check_error_lines(err, [name])


def test_unreadable_file(tmp_path, face_clip, run, checkpoint):
    path = tmp_path / "secret.mp4"
    shutil.copy(face_clip, path)
    path.chmod(0)
    try:
        try:
            path.open("rb").close()
            pytest.skip("running with privileges that read a mode-000 file (root)")
        except PermissionError:
            pass
        rc, out, err = scan(run, checkpoint, path, "--json")
        assert rc == 2
        (rec,) = json.loads(out)
        assert rec["verdict"] == "ERROR" and rec["error"]["kind"] == "unreadable"
        _check_error_lines(err, ["secret.mp4"])
    finally:
        path.chmod(0o644)


def test_one_bad_file_never_stops_the_batch(bad_dir, face_clip, face_image, empty_clip, run, checkpoint, validate):
    bad = [bad_dir / n for n in BAD]
    inputs = [face_clip, *bad[:4], face_image, *bad[4:], empty_clip]
    rc, out, err = scan(run, checkpoint, *inputs, "--jsonl")
    assert rc == 2
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in recs] == [str(p) for p in inputs]
    for r in recs:
        validate(r)
    verdicts = [r["verdict"] for r in recs]
    assert verdicts[0] in ("FAKE", "REAL") and verdicts[5] in ("FAKE", "REAL")
    assert verdicts[-1] == "NO_FACE"
    assert [v for v in verdicts if v == "ERROR"] == ["ERROR"] * len(bad)
    _check_error_lines(err, [p.name for p in bad])


@pytest.mark.slow
def test_bad_batch_through_the_real_console_script(bad_dir, face_clip, checkpoint):
    """A separate process: nothing but one `fakeprobe: ...` line per bad file on stderr."""
    inputs = [bad_dir / "random.mp4", face_clip, bad_dir / "missing.mp4", bad_dir / "audio.mp4"]
    proc = subprocess.run([sys.executable, "-m", "fakeprobe", "scan", *map(str, inputs), "--weights", str(checkpoint), *FAST, "--csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    _check_error_lines(proc.stderr, ["random.mp4", "missing.mp4", "audio.mp4"])
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["verdict"] for r in rows][1] in ("FAKE", "REAL")
    assert [r["verdict"] for r in rows].count("ERROR") == 3


def test_debug_shows_tracebacks(monkeypatch, tmp_path, face_clip, run):
    from fakeprobe.model import checkpoint as ck

    monkeypatch.setattr(ck, "DEFAULT_WEIGHTS", tmp_path / "none.safetensors")
    rc, out, err = run("scan", face_clip)
    assert rc == 2 and "Traceback" not in err
    rc, out, err = run("--debug", "scan", face_clip)
    assert rc == 2 and "Traceback" in err and "no model is installed" in err


# -- exit codes ------------------------------------------------------------------------------
def test_exit_codes(face_clip, empty_clip, face_image, tmp_path, run, checkpoint):
    rc, out, err = scan(run, checkpoint, face_clip, face_image, empty_clip, "--threshold", "1.0")
    assert rc == 0, err  # nothing flagged (probabilities are below 1)
    rc, out, err = scan(run, checkpoint, empty_clip)
    assert rc == 0  # NO_FACE is not a failure
    rc, out, err = scan(run, checkpoint, face_clip, "--threshold", "0.0")
    assert rc == 1  # FAKE when p >= threshold
    rc, out, err = scan(run, checkpoint, empty_clip, face_image, "--threshold", "0")
    assert rc == 1
    rc, out, err = scan(run, checkpoint, face_clip, tmp_path / "gone.mp4", "--threshold", "0.0")
    assert rc == 2  # a failed input wins over a flagged one
    rc, out, err = scan(run, checkpoint, face_clip, "--threshold", "1.5")
    assert rc == 2 and "--threshold" in err


# -- output formats --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed(face_clip, empty_clip, face_image, tmp_path_factory):
    return [face_clip, empty_clip, face_image, tmp_path_factory.mktemp("x") / "absent.mkv"]


def test_json_validates_against_the_schema(mixed, run, checkpoint, validate):
    for threshold in ("0.0", "1.0"):
        rc, out, err = scan(run, checkpoint, *mixed, "--json", "--threshold", threshold)
        recs = json.loads(out)
        assert isinstance(recs, list) and len(recs) == len(mixed)
        for r in recs:
            validate(r)
        v = [r["verdict"] for r in recs]
        assert v == (["FAKE", "NO_FACE", "FAKE", "ERROR"] if threshold == "0.0" else ["REAL", "NO_FACE", "REAL", "ERROR"])
        assert recs[0]["media"]["kind"] == "video" and recs[2]["media"]["kind"] == "image"
        assert recs[0]["n_persons"] == len(recs[0]["persons"]) == 1
        assert recs[0]["model"]["name"] == "tiny-test" and recs[0]["threshold"] == float(threshold)


def test_schema_rejects_broken_records(mixed, run, checkpoint, schema):
    jsonschema = pytest.importorskip("jsonschema")
    rc, out, err = scan(run, checkpoint, mixed[0], "--json")
    good = json.loads(out)[0]
    v = jsonschema.Draft202012Validator(schema)
    assert v.is_valid(good)
    for mutate in (
        lambda r: r.update(verdict="MAYBE"),
        lambda r: r.pop("persons"),
        lambda r: r.update(probability=None),  # FAKE/REAL need a probability
        lambda r: r.update(verdict="ERROR"),  # ERROR needs an error object
        lambda r: r.update(extra=1),
        lambda r: r["detections"][0].update(box=[1, 2, 3]),
        lambda r: r["persons"][0].update(track="0"),
        lambda r: r.update(probability=1.5),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        assert not v.is_valid(bad)


def test_jsonl_one_line_per_input(mixed, run, checkpoint, validate):
    rc, out, err = scan(run, checkpoint, *mixed, "--jsonl")
    lines = out.splitlines()
    assert len(lines) == len(mixed)
    for line, p in zip(lines, mixed):
        r = json.loads(line)
        validate(r)
        assert r["path"] == str(p)


def test_csv_header_and_rows(mixed, run, checkpoint):
    rc, out, err = scan(run, checkpoint, *mixed, "--csv", "--threshold", "1.0")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == CSV_FIELDS
    recs = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert len(recs) == len(mixed)
    assert [r["path"] for r in recs] == [str(p) for p in mixed]
    assert [r["verdict"] for r in recs] == ["REAL", "NO_FACE", "REAL", "ERROR"]
    assert 0.0 <= float(recs[0]["probability"]) <= 1.0 and recs[1]["probability"] == ""
    assert int(recs[0]["faces"]) >= 1 and recs[0]["persons"] == "1" and recs[0]["frames_analysed"] == "3"
    assert recs[3]["error_kind"] == "not_found" and "absent.mkv" in recs[3]["error_message"]


def test_table_and_output_file(mixed, run, checkpoint, tmp_path, validate):
    rc, out, err = scan(run, checkpoint, *mixed)
    for p in mixed:
        assert p.name in out
    for word in ("verdict", "REAL", "NO_FACE", "ERROR"):
        assert word in out

    dest = tmp_path / "report.json"
    rc, out, err = scan(run, checkpoint, *mixed, "--json", "-o", dest)
    assert rc == 2
    recs = json.loads(dest.read_text())
    assert len(recs) == len(mixed)
    for r in recs:
        validate(r)
    assert "NO_FACE" in out and not out.lstrip().startswith("[")  # the table, not the JSON, on stdout

    for fmt, check in (("--jsonl", lambda t: len(t.splitlines()) == len(mixed)), ("--csv", lambda t: t.startswith("path,verdict"))):
        rc, out, err = scan(run, checkpoint, *mixed, fmt, "-o", dest, "-q")
        assert out == "" and check(dest.read_text())


# -- detect ----------------------------------------------------------------------------------
DETECT = r"Result: (FAKE|REAL)\nFake probability: (\d\.\d{3}) \(threshold: ([\d.]+)\)\nAnalyzed faces from: (.+)\n"


def test_detect_prints_exactly_three_lines(face_clip, run, checkpoint):
    for threshold, verdict, code in (("0", "FAKE", 1), ("1", "REAL", 0)):
        rc, out, err = run("detect", "--video", face_clip, "--weights", checkpoint, "--backend", "torch", "--threshold", threshold)
        m = re.fullmatch(DETECT, out)
        assert m, out
        assert m.group(1) == verdict and rc == code
        assert float(m.group(3)) == float(threshold) and m.group(4) == str(face_clip)
    rc, out, err = run("detect", "--video", face_clip, "--weights", checkpoint, "--backend", "torch")
    m = re.fullmatch(DETECT, out)
    assert m and m.group(3) == "0.5"  # the model's threshold
    assert m.group(1) == ("FAKE" if float(m.group(2)) >= 0.5 else "REAL")


@pytest.mark.slow
def test_detect_console_script(face_clip, checkpoint):
    proc = subprocess.run([sys.executable, "-m", "fakeprobe", "detect", "--video", str(face_clip), "--weights", str(checkpoint),
                           "--backend", "torch"], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert re.fullmatch(DETECT, proc.stdout), proc.stdout
    assert proc.stderr == ""


def test_detect_failures(empty_clip, tmp_path, run, checkpoint):
    rc, out, err = run("detect", "--video", empty_clip, "--weights", checkpoint, "--backend", "torch")
    assert rc == 2 and out == "" and "no face" in err and empty_clip.name in err
    rc, out, err = run("detect", "--video", tmp_path / "nope.mp4", "--weights", checkpoint, "--backend", "torch")
    assert rc == 2 and out == "" and "nope.mp4" in err and "Traceback" not in err


# -- inputs: folders, globs, duplicates, images ----------------------------------------------
@pytest.fixture(scope="module")
def tree(tmp_path_factory, face_clip, empty_clip, face_image) -> Path:
    root = tmp_path_factory.mktemp("tree")
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(face_clip, root / "a.mp4")
    shutil.copy(face_image, root / "sub" / "b.png")
    shutil.copy(empty_clip, root / "sub" / "deeper" / "c.MOV")
    (root / "notes.txt").write_text("not media")
    (root / "sub" / "model.safetensors").write_bytes(b"x")
    os.symlink(root, root / "sub" / "loop")  # a symlink loop must not hang the walk
    return root


def test_nothing_to_scan(tmp_path, run, checkpoint):
    (tmp_path / "empty").mkdir()
    rc, out, err = scan(run, checkpoint, tmp_path / "empty")
    assert rc == 2 and "no input files found" in err


def test_expand_inputs(tree, monkeypatch):
    monkeypatch.chdir(tree)
    want = [Path("a.mp4"), Path("sub/b.png"), Path("sub/deeper/c.MOV")]
    assert expand_inputs(["."]) == [Path(".") / p for p in want]
    # from "sub" the link leads up to the root once (a.mp4), then the loop is cut
    assert expand_inputs(["sub"]) == [Path("sub/b.png"), Path("sub/deeper/c.MOV"), Path("sub/loop/a.mp4")]
    assert expand_inputs(["**/*.png"]) == [Path("sub/b.png")]
    assert expand_inputs(["*.mp4", "a.mp4", "./a.mp4", str(tree / "a.mp4")]) == [Path("a.mp4")]
    assert expand_inputs(["nothing*.mp4", "notes.txt"]) == [Path("nothing*.mp4"), Path("notes.txt")]


def test_scan_folder_recursively(tree, run, checkpoint):
    rc, out, err = scan(run, checkpoint, tree, "--jsonl", "--threshold", "1")
    assert rc == 0, err
    paths = [Path(json.loads(line)["path"]) for line in out.splitlines()]
    assert [p.relative_to(tree) for p in paths] == [Path("a.mp4"), Path("sub/b.png"), Path("sub/deeper/c.MOV")]


def test_scan_globs_and_duplicates(tree, run, checkpoint, monkeypatch):
    monkeypatch.chdir(tree)
    rc, out, err = scan(run, checkpoint, "**/*.png", "a.mp4", "./a.mp4", tree / "a.mp4", "*.mp4", "--jsonl")
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in recs] == [str(Path("sub/b.png")), "a.mp4"]  # each file scanned once
    rc, out, err = scan(run, checkpoint, "*.webm", "--jsonl")
    (rec,) = [json.loads(line) for line in out.splitlines()]
    assert rc == 2 and rec["error"]["kind"] == "not_found" and "*.webm" in err


@pytest.mark.parametrize("suffix", ["png", "jpg", "webp"])
def test_still_images(suffix, face_image, tmp_path, run, checkpoint, validate):
    from PIL import Image

    path = tmp_path / f"face.{suffix}"
    Image.open(face_image).convert("RGB").save(path)
    rc, out, err = scan(run, checkpoint, path, "--json", "--threshold", "0")
    (rec,) = json.loads(out)
    validate(rec)
    assert rc == 1 and rec["verdict"] == "FAKE"
    assert rec["media"]["kind"] == "image" and (rec["media"]["width"], rec["media"]["height"]) == (W, H)
    assert rec["faces"] == 1 and rec["detections"][0]["frame_index"] == 0 and rec["n_persons"] == 1


def test_image_exif_orientation(photo, tmp_path, make_detector):
    from PIL import Image

    upright = synth.scene(photo, W, H, 1, 0.0)
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned counter-clockwise: rotate 90 clockwise to show
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(path, exif=exif, quality=95)
    r = make_detector(frames=1).scan(path)
    assert (r.media.width, r.media.height) == (W, H)
    assert r.faces == 1


@pytest.mark.parametrize("suffix,codec,pix_fmt", [
    ("mov", "libx264", "yuv420p"), ("mkv", "libx264", "yuv420p"), ("webm", "libvpx-vp9", "yuv420p"),
    ("avi", "mpeg4", "yuv420p"), ("gif", "gif", "rgb8"),
])
def test_video_containers(suffix, codec, pix_fmt, photo, tmp_path, run, checkpoint, validate):
    path = synth.scene_video(tmp_path / f"clip.{suffix}", photo, width=W, height=H, seconds=0.6, fps=10, codec=codec, pix_fmt=pix_fmt)
    rc, out, err = scan(run, checkpoint, path, "--json")
    (rec,) = json.loads(out)
    validate(rec)
    assert rec["verdict"] in ("FAKE", "REAL"), rec["error"]
    assert rec["media"]["frame_count"] == 6 and rec["media"]["frames_analysed"] == 3 and rec["faces"] == 3


def test_speed_flags_reach_the_scan_config(face_clip, run, checkpoint):
    from fakeprobe.cli import _scan_config, build_parser

    args = build_parser().parse_args(["scan", str(face_clip), "--threads", "1", "--detect-every", "1"])
    cfg = _scan_config(args)
    assert cfg.threads == 1 and cfg.detect_every == 1
    default = _scan_config(build_parser().parse_args(["scan", str(face_clip)]))
    assert default.threads == 0 and default.detect_every == 4 and default.look_for_new
    for flag, value in (("--detect-every", "0"), ("--threads", "-1")):
        code, _, err = run("scan", str(face_clip), flag, value)
        assert code == 2 and flag in err
    code, out, _ = run("scan", str(face_clip), "--weights", str(checkpoint), "--threads", "1", "--detect-every", "1", "--json")
    assert code in (0, 1) and json.loads(out)[0]["faces"] > 0
