"""The Python API gives the same record as the CLI's JSON."""
from __future__ import annotations

import json

import pytest

import fakeprobe
from fakeprobe import Detector, ScanConfig, ScanResult
from fakeprobe.core.output import to_json

VOLATILE = ("elapsed_s", "timings")


def _stable(record: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(record)).items() if k not in VOLATILE}


def test_schema_ships_with_the_package(schema):
    from importlib.resources import files

    shipped = json.loads((files("fakeprobe") / "schema" / "scan.schema.json").read_text())
    assert shipped == schema
    assert shipped["$schema"].endswith("2020-12/schema")


def test_public_names():
    assert set(fakeprobe.__all__) >= {"Detector", "ScanConfig", "ScanResult"}
    assert isinstance(fakeprobe.__version__, str)


@pytest.fixture(scope="module")
def api_detector(checkpoint) -> Detector:
    return Detector(weights=str(checkpoint), config=ScanConfig(backend="torch", frames=4))


@pytest.mark.parametrize("which", ["face_clip", "empty_clip", "face_image", "missing"])
def test_api_matches_cli_json(which, request, api_detector, checkpoint, run, tmp_path, validate):
    path = tmp_path / "missing.mp4" if which == "missing" else request.getfixturevalue(which)
    result = api_detector.scan(path)
    assert isinstance(result, ScanResult)
    record = result.to_dict()
    validate(json.loads(json.dumps(record)))
    assert record["schema"] == "fakeprobe.scan/1" and record["n_persons"] == len(result.persons)

    rc, out, err = run("scan", path, "--weights", checkpoint, "--backend", "torch", "--frames", "4", "--json")
    (cli_record,) = json.loads(out)
    assert _stable(cli_record) == _stable(record)
    assert _stable(to_json(result)) == _stable(record)
    assert set(cli_record) == set(record)


def test_api_accepts_str_and_never_raises_for_bad_input(api_detector, tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    r = api_detector.scan(str(tmp_path / "junk.mp4"))
    assert r.verdict == "ERROR" and r.error.kind == "input" and r.model is not None
    results = list(api_detector.scan_many([tmp_path / "junk.mp4", tmp_path / "gone.png"]))
    assert [x.verdict for x in results] == ["ERROR", "ERROR"]
