"""``fakeprobe serve`` as a real server (uvicorn subprocess on loopback): SIGKILL in the middle of
a scan and restart, 50 concurrent uploads, faults, and the review page in headless Chromium.

Bounded: tiny clips, the tiny test model, 4 frames per video, two workers; every wait has a limit.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from test_serve import TOKEN, broken, variant  # noqa: E402

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


# `fakeprobe serve`, with more patience for starting a worker than the pool's 300 s: a busy 2-core
# test machine can take longer
SERVE = "import sys, fakeprobe.scan.pool as p; p.READY_TIMEOUT_S = 1800.0; from fakeprobe.cli import main; sys.exit(main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class LiveServer:
    def __init__(self, data: Path, checkpoint: Path, token_file: Path, *extra: str, workers: int = 2):
        self.data, self.port = data, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data),
                     "--token-file", str(token_file), "--workers", str(workers), "--weights", str(checkpoint), "--backend", "torch",
                     "--frames", "4", "--time-limit", "600", "--log-level", "warning", *extra]
        self.log = data.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.url, timeout=300)

    def start(self, timeout: float = 1800) -> "LiveServer":
        self.proc = subprocess.Popen(self.argv, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if self.client.get("/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready: " + self.log.read_text()[-3000:]
            time.sleep(0.25)

    def kill9(self) -> list[int]:
        """SIGKILL the server process only; returns its child processes' ids as they were."""
        kids = _descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        return kids

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kids = _descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            _reap(kids, 30)
        self.client.close()

    def jobs(self) -> list[dict]:
        return self.client.get("/v1/scans?limit=200", headers=AUTH).json()["items"]

    def wait_all_final(self, n: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs()
            if len(jobs) >= n and all(j["status"] in ("done", "error") for j in jobs):
                return jobs
            assert time.monotonic() < deadline, [(j["name"], j["status"]) for j in jobs]
            time.sleep(0.25)


def _reap(pids: list[int], timeout: float) -> list[int]:
    """Wait for these processes to end; kill what is left. Returns the ones that had to be killed."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    f.write_text(f"{TOKEN}\n")
    return f


@pytest.fixture(scope="module")
def clip_bytes(face_clip) -> bytes:
    return face_clip.read_bytes()


def test_sigkill_mid_scan_then_restart_loses_nothing(tmp_path, checkpoint, token_file, clip_bytes):
    data = tmp_path / "data"
    server = LiveServer(data, checkpoint, token_file, workers=1).start()
    try:
        ids = []
        for i in range(6):
            r = server.client.post("/v1/scans", files={"file": (f"clip{i}.mp4", variant(clip_bytes, f"kill{i}"))}, headers=AUTH)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 900
        while True:  # kill once some jobs are done and one is being scanned
            jobs = {j["id"]: j for j in server.jobs()}
            done = [j for j in jobs.values() if j["status"] == "done"]
            if done and any(j["status"] == "running" for j in jobs.values()):
                break
            assert len(done) < len(ids) and time.monotonic() < deadline, "no moment with a job running after one finished"
            time.sleep(0.01)
        kids = server.kill9()
    finally:
        server.client.close()
    before = {j["id"]: j for j in done}
    # the orphaned workers notice their parent is gone and exit on their own
    assert _reap(kids, 60) == [], "scan workers outlived the killed server"

    again = LiveServer(data, checkpoint, token_file, workers=1).start()
    try:
        jobs = {j["id"]: j for j in again.wait_all_final(len(ids), timeout=900)}
        assert sorted(jobs) == sorted(ids)  # none lost, none duplicated
        for job_id, job in before.items():  # finished jobs untouched
            assert jobs[job_id] == job
        assert all(j["status"] == "done" and j["result"]["verdict"] != "ERROR" for j in jobs.values())
        assert len(before) < len(ids)  # some were finished only after the restart
        for job_id in ids:
            assert again.client.get(f"/v1/scans/{job_id}/report", headers=AUTH).status_code == 200
    finally:
        again.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoint, token_file):
    tmp = tmp_path_factory.mktemp("live")
    root = tmp / "allowed"
    root.mkdir()
    s = LiveServer(tmp / "data", checkpoint, token_file, "--max-upload-mb", "1", "--allow-root", str(root), workers=2).start()
    s.root = root
    yield s
    s.stop()


def test_fifty_concurrent_uploads_all_end_once(server, clip_bytes):
    files = [(f"good{i}.mp4", variant(clip_bytes, f"load{i}")) for i in range(40)]
    files += [(f"bad{i}.mp4", broken(clip_bytes, f"load-bad{i}")) for i in range(10)]

    def post(item):
        with httpx.Client(base_url=server.url, timeout=600) as c:
            return c.post("/v1/scans", files={"file": item}, headers=AUTH)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as ex:
        answers = list(ex.map(post, files))
    assert [r.status_code for r in answers] == [202] * 50, [r.text for r in answers if r.status_code != 202][:3]
    ids = [r.json()["id"] for r in answers]
    assert len(set(ids)) == 50
    jobs = {j["id"]: j for j in server.wait_all_final(50, timeout=1800)}
    assert set(ids) <= set(jobs) and len(jobs) == 50
    for (name, _), job_id in zip(files, ids):
        job = jobs[job_id]
        assert job["status"] == "done" and job["result"]["path"] == name
        assert (job["result"]["verdict"] == "ERROR") == name.startswith("bad"), job["result"]
    print(f"50 uploads: all final after {time.monotonic() - start:.1f} s")


def test_faults_on_the_live_server(server, clip_bytes, tmp_path):
    c = server.client
    r = c.get("/v1/scans", headers={"Authorization": "Bearer not-the-token-000000"})
    assert r.status_code == 401 and r.json()["error"]["kind"] == "unauthorized"
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip_bytes)
    r = c.post("/v1/scans", json={"path": str(outside)}, headers=AUTH)
    assert r.status_code == 403 and r.json()["error"]["kind"] == "forbidden"
    before = sorted(p.name for p in (server.data / "uploads").iterdir())
    big = b"\x00\x00\x00\x18ftypisom" + os.urandom(3 * 2**20)
    r = c.post("/v1/scans", files={"file": ("big.mp4", big)}, headers=AUTH)
    assert r.status_code == 413 and r.json()["error"]["kind"] == "too_large"
    assert sorted(p.name for p in (server.data / "uploads").iterdir()) == before
    assert list((server.data / "tmp").iterdir()) == []
    assert c.get("/healthz").status_code == 200  # still serving


# -- the review page in headless Chromium ---------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_review_page_upload_verdict_report(server, browser, face_clip, face_image, tmp_path):
    shots = Path(os.environ.get("FAKEPROBE_SCREENSHOTS", tmp_path))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda req: None if req.url.startswith((server.url, "blob:", "data:")) else foreign.append(req.url))
    page.goto(server.url + "/")
    page.wait_for_selector("#token-form:not([hidden])")
    page.fill("#token", "wrong-token-0123456789")
    page.click("#token-form button")
    page.wait_for_selector("#token-state:has-text('refused')")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("#token-form", state="hidden")  # out of sight once a token works

    clip = tmp_path / "page-clip.mp4"
    clip.write_bytes(variant(face_clip.read_bytes(), "page"))
    page.set_input_files("#file", str(clip))
    row = page.locator("tr", has_text="page-clip.mp4")
    row.locator("td.verdict-cell .pill").wait_for(timeout=600_000)
    assert row.locator(".pill").inner_text() in ("FAKE", "REAL")
    assert row.locator("td.prob").inner_text() != "–"

    # drag and drop: a drop event carrying a file, as a browser makes it
    data = face_image.read_bytes()
    page.evaluate("""([bytes, name]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", [list(data), "dropped.png"])
    dropped = page.locator("tr", has_text="dropped.png")
    dropped.locator("td.verdict-cell .pill").wait_for(timeout=600_000)

    with context.expect_page() as opened:
        row.locator("button.report").click()
    report = opened.value
    report.wait_for_url(lambda url: url.startswith("blob:"), wait_until="commit", timeout=300_000)  # about:blank, then the report
    report.wait_for_function("document.body !== null && document.body.innerText.includes('page-clip.mp4')", timeout=300_000)
    assert "evidence report" in report.inner_text("body")
    report.close()

    page.screenshot(path=str(shots / "serve-review-laptop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "serve-review-phone.png"))
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"the page scrolls sideways on a phone ({wide} px)"
    assert foreign == []
    context.close()
