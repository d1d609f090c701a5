"""``fakeprobe serve``: every route, auth, limits, dedupe, the worker pool behind it.

Two in-process apps: a "cold" one whose scan workers never start (no lifespan), for everything
that happens before a scan (auth, limits, types, queue bound, paths, paging, errors), and a
"warm" one with two workers on the tiny test model, for scans, reports, metrics and a killed
worker. The real server (uvicorn subprocess, SIGKILL restart, load) is in test_serve_live.py.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from fakeprobe.core.config import ScanConfig  # noqa: E402
from fakeprobe.serve import Settings, SettingsError, create_app  # noqa: E402
from fakeprobe.serve.settings import load_tokens, parse_tokens  # noqa: E402

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = ScanConfig(frames=4, backend="torch", time_limit_s=600)  # the limit has its own tests; a busy machine is slow


def variant(data: bytes, tag: str) -> bytes:
    """The same MP4 with a trailing ``free`` box: other bytes (another sha256), same pictures."""
    payload = tag.encode()
    return data + struct.pack(">I", 8 + len(payload)) + b"free" + payload


def broken(data: bytes, tag: str) -> bytes:
    """Starts like an MP4 (so it is accepted as one), then garbage: the scanner cannot read it."""
    return data[:32] + (tag.encode() * 400)[:4000]


def settings(tmp: Path, **kw) -> Settings:
    kw.setdefault("tokens", frozenset([TOKEN]))
    return Settings(data_dir=tmp, scan=kw.pop("scan", FAST), **kw)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def upload(client, data: bytes, name: str = "clip.mp4", query: str = "", headers=AUTH):
    return client.post(f"/v1/scans{query}", files={"file": (name, data, "application/octet-stream")}, headers=headers)


def assert_error(r, status: int, kind: str, *words: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"} and body["error"]["kind"] == kind, body
    for w in words:
        assert w in body["error"]["message"], body
    assert "Traceback" not in r.text
    return body["error"]


# -- settings ---------------------------------------------------------------------------------------
def test_settings_need_tokens_or_loopback_no_auth(tmp_path):
    with pytest.raises(SettingsError, match="token"):
        Settings(data_dir=tmp_path)
    with pytest.raises(SettingsError, match="loopback"):
        Settings(data_dir=tmp_path, auth=False, host="0.0.0.0")
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert Settings(data_dir=tmp_path, auth=False, host=host).auth is False


def test_token_file_and_environment(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"# ops team\n{TOKEN}\n\n  other-token-abcdefghijkl  \n")
    assert load_tokens(f, {}) == {TOKEN, "other-token-abcdefghijkl"}
    assert load_tokens(None, {"FAKEPROBE_TOKENS": "env-token-0123456789abc, second-token-0123456789"}) == {
        "env-token-0123456789abc", "second-token-0123456789"}
    with pytest.raises(SettingsError, match="shorter than 16"):
        parse_tokens("short\n", "tokens")
    with pytest.raises(SettingsError, match="no tokens"):
        parse_tokens("# nothing\n\n", "tokens")
    with pytest.raises(SettingsError, match="cannot read"):
        load_tokens(tmp_path / "missing", {})


def test_serve_command_refuses_bad_setups(run, tmp_path):
    rc, _, err = run("serve", "--data-dir", tmp_path / "d")
    assert rc == 2 and "token" in err
    rc, _, err = run("serve", "--data-dir", tmp_path / "d", "--no-auth", "--host", "0.0.0.0")
    assert rc == 2 and "loopback" in err
    (tmp_path / "t").write_text("short\n")
    rc, _, err = run("serve", "--data-dir", tmp_path / "d", "--token-file", tmp_path / "t")
    assert rc == 2 and "shorter than 16" in err and "Traceback" not in err


# -- a cold app: no scan workers ------------------------------------------------------------------
@pytest.fixture
def cold(tmp_path, face_clip):
    """An app whose workers never start: jobs stay queued. Limits are small to test them."""
    root = tmp_path / "allowed"
    root.mkdir()
    (root / "clip.mp4").write_bytes(face_clip.read_bytes())
    app = create_app(settings(tmp_path / "data", max_upload_bytes=2**20, max_queue=3, allow_root=root))
    client = TestClient(app, raise_server_exceptions=False)  # not entered: no lifespan, no workers
    client.data, client.root = tmp_path / "data", root
    return client


def test_every_v1_route_needs_a_valid_token(cold, face_clip):
    job = upload(cold, face_clip.read_bytes()).json()
    routes = [("POST", "/v1/scans"), ("GET", "/v1/scans"), ("GET", f"/v1/scans/{job['id']}"),
              ("GET", f"/v1/scans/{job['id']}/report"), ("DELETE", f"/v1/scans/{job['id']}")]
    for method, url in routes:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            r = cold.request(method, url, headers=headers)
            assert_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert cold.get(f"/v1/scans/{job['id']}", headers=AUTH).status_code == 200  # the job is still there


def test_unauthorised_upload_is_not_stored(cold, face_clip):
    assert_error(upload(cold, face_clip.read_bytes(), headers={}), 401, "unauthorized")
    assert files_under(cold.data / "uploads") == [] and files_under(cold.data / "tmp") == []


def test_open_routes_page_and_openapi(cold):
    assert cold.get("/healthz").json()["status"] == "ok"
    assert_error(cold.get("/readyz"), 503, "not_ready")  # the workers never started
    page = cold.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "<input id='file' type='file'" in html and "API token" in html and "/static/review.js" in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere: works offline
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = cold.get("/static/review.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "http" not in js.text.replace("XMLHttpRequest", "")
    spec = cold.get("/openapi.json").json()
    assert {"/v1/scans", "/v1/scans/{job_id}", "/v1/scans/{job_id}/report", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/scans"]["post"]["requestBody"]["content"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert cold.get("/docs").status_code == 200


def test_upload_is_queued_once_per_content(cold, face_clip):
    data = face_clip.read_bytes()
    r = upload(cold, data, name="../../etc/holiday.mp4")
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and job["result"] is None and job["finished_at"] is None
    assert r.headers["location"] == f"/v1/scans/{job['id']}"
    assert job["name"] == "holiday.mp4" and job["source"] == "upload" and job["size"] == len(data)
    import hashlib

    assert job["sha256"] == hashlib.sha256(data).hexdigest()
    again = upload(cold, data, name="other-name.mov")
    assert again.status_code == 202 and again.json()["id"] == job["id"]  # same content, same job
    assert files_under(cold.data / "uploads") == [job["sha256"] + ".mp4"]
    assert cold.get("/v1/scans", headers=AUTH).json()["total"] == 1


def test_upload_limit_while_streaming(cold):
    big = b"\x00\x00\x00\x18ftypisom" + b"\x00" * (2**20 + 100)
    assert_error(upload(cold, big), 413, "too_large", "1 MiB")  # refused by Content-Length

    def chunks():  # no Content-Length: refused as the limit is passed
        yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\r\n"
        for _ in range(40):
            yield b"\x00\x00\x00\x18ftypisom" + b"\x00" * 65536
        yield b"\r\n--B--\r\n"

    r = cold.post("/v1/scans", content=chunks(), headers={**AUTH, "Content-Type": "multipart/form-data; boundary=B"})
    assert_error(r, 413, "too_large")
    assert files_under(cold.data / "tmp") == [] and files_under(cold.data / "uploads") == []
    assert cold.get("/v1/scans", headers=AUTH).json()["total"] == 0


def test_type_from_content_not_name(cold, face_clip, face_image):
    assert_error(upload(cold, b"just some notes\n" * 50, name="clip.mp4"), 415, "unsupported_type", "clip.mp4", "text")
    assert_error(upload(cold, b"%PDF-1.7\n" + bytes(range(256)) * 20, name="clip.mp4"), 415, "unsupported_type", "PDF")
    assert_error(upload(cold, b"", name="clip.mp4"), 400, "empty")
    png = upload(cold, face_image.read_bytes(), name="notes.txt").json()
    mp4 = upload(cold, face_clip.read_bytes(), name="picture.jpg").json()
    stored = files_under(cold.data / "uploads")
    assert png["sha256"] + ".png" in stored and mp4["sha256"] + ".mp4" in stored
    assert files_under(cold.data / "tmp") == []


def test_malformed_requests(cold, face_clip):
    assert_error(cold.post("/v1/scans", content=b"x", headers={**AUTH, "Content-Type": "text/plain"}), 415, "unsupported_type")
    assert_error(cold.post("/v1/scans", data={"other": "x"}, files={"notfile": ("a.mp4", b"1234")}, headers=AUTH), 400, "bad_request", "'file'")
    r = cold.post("/v1/scans", content=b"--B\r\nbroken", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 400 and r.json()["error"]["kind"] == "bad_request"
    two = [("file", ("a.mp4", face_clip.read_bytes())), ("file", ("b.mp4", face_clip.read_bytes()))]
    assert_error(cold.post("/v1/scans", files=two, headers=AUTH), 400, "bad_request", "one file")
    assert_error(cold.post("/v1/scans?wait=soon", files={"file": ("a.mp4", b"1")}, headers=AUTH), 422, "invalid_request", "wait")
    assert_error(cold.post("/v1/scans", content=b"{}", headers={**AUTH, "Content-Type": "application/json"}), 422, "invalid_request", "path")
    assert_error(cold.get("/v1/nothing", headers=AUTH), 404, "not_found", "no such route")
    assert_error(cold.put("/v1/scans", headers=AUTH), 405, "method_not_allowed")
    assert_error(cold.get("/v1/scans/nope", headers=AUTH), 404, "not_found", "nope")
    assert files_under(cold.data / "tmp") == []


def test_queue_bound_503_with_retry_after(cold, face_clip):
    data = face_clip.read_bytes()
    ids = {upload(cold, variant(data, f"v{i}")).json()["id"] for i in range(3)}
    assert len(ids) == 3
    r = upload(cold, variant(data, "one-too-many"))
    assert_error(r, 503, "queue_full", "full")
    assert int(r.headers["retry-after"]) >= 1
    assert len(files_under(cold.data / "uploads")) == 3 and files_under(cold.data / "tmp") == []
    assert upload(cold, variant(data, "v0")).json()["id"] in ids  # content already queued: still answered


def test_paths_only_under_allow_root(cold, tmp_path, face_clip):
    def post(path):
        return cold.post("/v1/scans", json={"path": path}, headers=AUTH)

    outside = tmp_path / "outside.mp4"
    outside.write_bytes(variant(face_clip.read_bytes(), "outside"))
    (cold.root / "link.mp4").symlink_to(outside)
    (cold.root / "notes.mp4").write_text("not a video\n")
    for p in (str(outside), "../outside.mp4", "link.mp4", "/etc/passwd", "sub/../../outside.mp4"):
        assert_error(post(p), 403, "forbidden", "outside")
    assert_error(post("missing.mp4"), 404, "file_not_found", "missing.mp4")
    assert_error(post("."), 422, "not_a_file")
    assert_error(post("notes.mp4"), 415, "unsupported_type")
    r = post("clip.mp4")
    assert r.status_code == 202 and r.json()["source"] == "path" and r.json()["name"] == "clip.mp4"
    r2 = post(str(cold.root / "clip.mp4"))  # the same file by its absolute path: the same content, the same job
    assert r2.json()["id"] == r.json()["id"]
    assert files_under(cold.data / "uploads") == []  # scanned where it is, not copied


def test_paths_refused_without_allow_root(tmp_path, face_clip):
    client = TestClient(create_app(settings(tmp_path / "d")), raise_server_exceptions=False)
    assert_error(client.post("/v1/scans", json={"path": str(face_clip)}, headers=AUTH), 403, "forbidden", "--allow-root")


def test_list_is_paged_recent_first(cold, face_clip):
    data = face_clip.read_bytes()
    ids = [upload(cold, variant(data, f"p{i}")).json()["id"] for i in range(3)]
    first = cold.get("/v1/scans?limit=2", headers=AUTH).json()
    assert [j["id"] for j in first["items"]] == ids[::-1][:2] and first["total"] == 3 and first["next_cursor"]
    second = cold.get(f"/v1/scans?limit=2&cursor={first['next_cursor']}", headers=AUTH).json()
    assert [j["id"] for j in second["items"]] == [ids[0]] and second["next_cursor"] is None
    assert cold.get("/v1/scans?status=done", headers=AUTH).json() == {"items": [], "next_cursor": None, "total": 0}
    assert_error(cold.get("/v1/scans?limit=0", headers=AUTH), 422, "invalid_request")
    assert_error(cold.get("/v1/scans?cursor=abc", headers=AUTH), 422, "invalid_request")


def test_delete_a_queued_job(cold, face_clip):
    job = upload(cold, face_clip.read_bytes()).json()
    assert_error(cold.get(f"/v1/scans/{job['id']}/report", headers=AUTH), 409, "not_finished", "queued")
    assert cold.delete(f"/v1/scans/{job['id']}", headers=AUTH).status_code == 204
    assert_error(cold.get(f"/v1/scans/{job['id']}", headers=AUTH), 404, "not_found")
    assert_error(cold.delete(f"/v1/scans/{job['id']}", headers=AUTH), 404, "not_found")
    assert files_under(cold.data / "uploads") == [] and files_under(cold.data / "jobs") == []
    assert cold.app.state.queue.queued == 0


def test_internal_error_is_json_without_traceback(cold, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret detail /srv/data")

    monkeypatch.setattr(cold.app.state.store, "page", boom)
    err = assert_error(cold.get("/v1/scans", headers=AUTH), 500, "internal")
    assert "secret" not in err["message"]


def test_restart_recovers_the_queue_and_sweeps_partial_files(tmp_path, face_clip):
    s = settings(tmp_path / "d")
    client = TestClient(create_app(s))
    job = upload(client, face_clip.read_bytes()).json()
    client.app.state.store.start(job["id"])  # as if a worker had it when the server died
    (tmp_path / "d" / "tmp" / "upload-partial").write_bytes(b"half")
    (tmp_path / "d" / "uploads" / ("0" * 64 + ".mp4")).write_bytes(b"orphan")
    again = create_app(s)
    assert again.state.queue.queued == 1
    assert again.state.store.get(job["id"]).status == "queued"
    assert files_under(tmp_path / "d" / "tmp") == [] and files_under(tmp_path / "d" / "uploads") == [job["sha256"] + ".mp4"]


# -- a warm app: two scan workers on the tiny model ---------------------------------------------------
@pytest.fixture(scope="module")
def warm(tmp_path_factory, checkpoint, face_clip):
    import fakeprobe.scan.pool

    patience = pytest.MonkeyPatch()  # a busy 2-core test machine can take more than the pool's 300 s to start a worker
    patience.setattr(fakeprobe.scan.pool, "READY_TIMEOUT_S", 1800.0)
    tmp = tmp_path_factory.mktemp("warm")
    root = tmp / "allowed"
    root.mkdir()
    (root / "clip.mp4").write_bytes(variant(face_clip.read_bytes(), "by-path"))
    app = create_app(settings(tmp / "data", workers=2, weights=(str(checkpoint),), allow_root=root))
    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 1800
        while client.get("/readyz").status_code != 200:
            assert app.state.queue.state != "failed", app.state.queue.message
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        client.data, client.root = tmp / "data", root
        yield client
    patience.undo()


def wait_final(client, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/scans/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "error"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _rounded(x):
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items() if k not in ("elapsed_s", "timings")}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def test_result_is_the_cli_record(warm, face_clip, run, checkpoint, validate, tmp_path, monkeypatch):
    r = upload(warm, face_clip.read_bytes(), name="face.mp4", query="?wait=600")
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "done" and job["finished_at"] >= job["started_at"] >= job["created_at"]
    validate(job["result"])
    (tmp_path / "face.mp4").write_bytes(face_clip.read_bytes())
    monkeypatch.chdir(tmp_path)  # the CLI names the file as given: "face.mp4"
    rc, out, _ = run("scan", "face.mp4", "--weights", checkpoint, "--frames", "4", "--backend", "torch", "--json")
    cli = json.loads(out)[0]
    assert _rounded(job["result"]) == _rounded(cli)
    assert job["result"]["persons"] and job["result"]["verdict"] in ("FAKE", "REAL")


def test_unreadable_file_is_a_done_job_with_an_error_record(warm, face_clip, validate):
    job = upload(warm, broken(face_clip.read_bytes(), "broken"), name="broken.mp4", query="?wait=600").json()
    assert job["status"] == "done"
    validate(job["result"])
    res = job["result"]
    assert res["verdict"] == "ERROR" and res["path"] == "broken.mp4" and res["error"]["kind"] not in ("internal", "crash")
    assert "broken.mp4" in res["error"]["message"] and str(warm.data) not in json.dumps(res)  # no server paths leak
    page = warm.get(f"/v1/scans/{job['id']}/report", headers=AUTH)
    assert page.status_code == 200 and "broken.mp4" in page.text


def test_same_content_is_not_scanned_twice_unless_asked(warm, face_clip):
    data = variant(face_clip.read_bytes(), "twice")
    first = upload(warm, data, query="?wait=600").json()
    count = _metric(warm, "fakeprobe_scan_seconds_count")
    again = upload(warm, data, name="renamed.mp4", query="?wait=600")
    assert again.status_code == 200 and again.json() == first  # the stored job, unchanged
    assert _metric(warm, "fakeprobe_scan_seconds_count") == count
    forced = upload(warm, data, query="?rescan=1&wait=600").json()
    assert forced["id"] == first["id"] and forced["status"] == "done" and forced["finished_at"] > first["finished_at"]
    assert _metric(warm, "fakeprobe_scan_seconds_count") == count + 1


def _metric(client, name: str, labels: str = "") -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_report_and_delete_done_job(warm, face_clip):
    job = upload(warm, variant(face_clip.read_bytes(), "report"), name="report.mp4", query="?wait=600").json()
    r = warm.get(f"/v1/scans/{job['id']}/report", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "report.mp4" in r.text and "sandbox" in r.headers["content-security-policy"]
    assert str(warm.data) not in r.text
    assert (warm.data / "jobs" / job["id"] / "report.html").exists()
    assert warm.delete(f"/v1/scans/{job['id']}", headers=AUTH).status_code == 204
    assert not (warm.data / "jobs" / job["id"]).exists()
    assert not any(p.name.startswith(job["sha256"]) for p in (warm.data / "uploads").iterdir())
    assert_error(warm.get(f"/v1/scans/{job['id']}/report", headers=AUTH), 404, "not_found")


def test_path_job_is_scanned_in_place(warm, validate):
    job = warm.post("/v1/scans?wait=600", json={"path": "clip.mp4"}, headers=AUTH).json()
    assert job["status"] == "done" and job["result"]["path"] == "clip.mp4" and job["result"]["verdict"] != "ERROR"
    validate(job["result"])


def test_metrics_and_readiness(warm, face_clip):
    upload(warm, variant(face_clip.read_bytes(), "metrics"), query="?wait=600")
    ready = warm.get("/readyz").json()
    assert ready["status"] == "ready" and ready["workers"] == 2 and ready["model"]["name"] == "tiny-test"
    text = warm.get("/metrics").text
    done = warm.get("/v1/scans?status=done&limit=1", headers=AUTH).json()["total"]
    assert f'fakeprobe_jobs{{state="done"}} {float(done)}' in text
    assert "fakeprobe_queue_length 0.0" in text and "fakeprobe_ready 1.0" in text
    assert _metric(warm, "fakeprobe_scan_seconds_count") >= 1
    assert warm.get("/v1/scans").status_code == 401
    assert _metric(warm, "fakeprobe_rejected_requests_total", '{kind="unauthorized"}') >= 1


def test_killed_worker_is_an_error_record_and_the_server_goes_on(warm, photo, media_dir, validate):
    """SIGKILL the worker scanning a job: that job ends as an ERROR record (kind crash, as the CLI
    reports a worker that died), the worker is replaced and the next upload is scanned."""
    from fakeprobe.media import synth

    slow = synth.scene_video(media_dir / "slow.mp4", photo, width=1280, height=720, seconds=3.0, fps=10, faces=2)
    queue = warm.app.state.queue
    for attempt in range(4):  # the kill must land while the scan runs; a fast scan may win the race
        job = upload(warm, slow.read_bytes(), name="slow.mp4", query="?rescan=1" if attempt else "").json()
        deadline = time.monotonic() + 600
        while job["id"] not in queue.pids:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(queue.pids[job["id"]], signal.SIGKILL)
        job = wait_final(warm, job["id"])
        if job["result"]["verdict"] == "ERROR":
            break
    res = job["result"]
    assert job["status"] == "done" and res["verdict"] == "ERROR" and res["error"]["kind"] == "crash", res
    assert "slow.mp4" in res["error"]["message"] and "signal 9" in res["error"]["message"]
    validate(res)
    assert warm.get(f"/v1/scans/{job['id']}/report", headers=AUTH).status_code == 200
    after = upload(warm, variant(slow.read_bytes(), "after"), name="after.mp4", query="?wait=600").json()
    assert after["status"] == "done" and after["result"]["verdict"] != "ERROR"
