"""Evidence reports: ``scan --report/--report-dir/--heatmaps``, Grad-CAM, self-containment, rendering."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fakeprobe.cli import main
from fakeprobe.media import synth

FAST = ["--frames", "8", "--backend", "torch"]


@pytest.fixture(scope="module")
def two_clip(media_dir, photo) -> Path:
    """2 s, 10 fps, 640x360, two people side by side."""
    return synth.scene_video(media_dir / "two.mp4", photo, faces=2, width=640, height=360, seconds=2, fps=10)


@pytest.fixture(scope="module")
def reported(tmp_path_factory, two_clip, checkpoint) -> dict:
    """One in-process CLI scan of the two-person clip writing a report and heatmaps."""
    out = tmp_path_factory.mktemp("report")
    report, heatmaps = out / "report.html", out / "heatmaps"
    rc = main(["scan", str(two_clip), "--weights", str(checkpoint), *FAST, "--workers", "0", "--json", "-o", str(out / "r.json"),
               "-q", "--report", str(report), "--heatmaps", str(heatmaps)])
    import json

    return {"rc": rc, "html": report.read_text(encoding="utf-8"), "report": report, "heatmaps": heatmaps,
            "record": json.loads((out / "r.json").read_text())[0]}


def assert_self_contained(page: str) -> None:
    """No network or external references: every src/srcset is a data: URI, links are relative."""
    low = page.lower()
    for bad in ('src="http', "src='http", 'href="http', "href='http", "url(http", "url('http", 'url("http',
                'src="//', "src='//", 'href="//', "href='//", "url(//", "@import", "<link", "<script", "<iframe", "<object"):
        assert bad not in low, bad
    for attr, value in re.findall(r"""\b(src|srcset|poster|action)\s*=\s*["']([^"']*)""", page, flags=re.I):
        assert value.startswith("data:"), (attr, value[:60])
    for value in re.findall(r"""\bhref\s*=\s*["']([^"']*)""", page, flags=re.I):
        assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", value, flags=re.I), value  # relative links only
    text = re.sub(r"data:[^'\")\s]+", "", page)  # base64 may spell anything
    assert "//" not in text and "http" not in text.lower()


# -- evidence from the pipeline ------------------------------------------------------------------
def test_scan_with_evidence_keeps_the_classified_crops(make_detector, two_clip, monkeypatch):
    from fakeprobe.scan.evidence import Evidence

    det = make_detector(frames=8)
    result, ev = det.scan_with_evidence(two_clip)
    assert len(result.persons) == 2
    assert ev.crops.dtype == np.uint8 and ev.crops.shape == (len(result.detections), det.meta.input_size, det.meta.input_size, 3)
    assert len(ev.frames) == len(ev.frame_scales) == len(result.frames) and max(ev.frames[0].shape[:2]) <= 640
    # aligned with the detections: scoring the kept crops again gives each detection's logit
    np.testing.assert_allclose(det.scorer.logits(ev.crops), [d.logit for d in result.detections], atol=2e-3)
    # the plain scan builds no evidence, and gives the same record
    monkeypatch.setattr(Evidence, "fill", lambda *a, **k: pytest.fail("scan() must not collect evidence"))
    plain = det.scan(two_clip).to_dict()
    rich = result.to_dict()
    for d in (plain, rich):
        d.pop("elapsed_s"), d.pop("timings")
    assert plain == rich


def test_gradcam_maps_are_normalised_and_overlaid(make_detector, two_clip):
    from fakeprobe.report.gradcam import GradCam, overlay

    det = make_detector(frames=8)
    _, ev = det.scan_with_evidence(two_clip)
    cam = GradCam(det.checkpoints[0])
    maps, logits = cam.maps(ev.crops[:2])
    assert maps.shape == ev.crops[:2].shape[:3] and maps.min() >= 0 and maps.max() <= 1
    assert np.allclose(logits, det.scorer.members[0][1].logits(ev.crops[:2]), atol=1e-3)  # the same network
    img = overlay(ev.crops[0], maps[0])
    assert img.shape == ev.crops[0].shape and img.dtype == np.uint8


# -- the report ----------------------------------------------------------------------------------
def test_report_shows_both_people_timeline_and_heatmaps(reported):
    page, rec = reported["html"], reported["record"]
    assert reported["rc"] in (0, 1) and len(rec["persons"]) == 2
    assert "<meta name='viewport'" in page
    assert f">{rec['verdict']}<" in page  # the verdict word, not just a colour
    assert f"{rec['probability']:.3f}" in page and f"{rec['threshold']:.3f}" in page
    assert "Scores at or above" in page and "flagged for human review" in page
    for p in rec["persons"]:
        assert f"track {p['track']}" in page
    assert "Person 1" in page and "Person 2" in page
    assert re.search(r"<img class='timeline' id='timeline' src='data:image/png;base64,", page)
    assert re.search(r"srcset='data:image/png;base64,", page)  # the narrow plot for phones
    assert len(re.findall(r"<img src='data:image/png;base64,[^']+' class='heatmap'", page)) == 3
    assert page.count("class='thumb") == len(rec["detections"])  # every face in a strip (8 frames: under the cap)
    assert "h264" in page and "640×360" in page and rec["model"]["sha256"] in page
    assert_self_contained(page)


def test_heatmap_pngs_are_named_by_track_and_frame(reported):
    from PIL import Image

    files = sorted(reported["heatmaps"].glob("*.png"))
    assert len(files) == 3
    seen = {(d["track"], d["frame_index"]) for d in reported["record"]["detections"]}
    tracks = set()
    for f in files:
        m = re.fullmatch(r"two_t(\d+)_f(\d+)\.png", f.name)
        assert m and (int(m[1]), int(m[2])) in seen, f.name
        tracks.add(int(m[1]))
        with Image.open(f) as im:
            assert im.format == "PNG" and im.size == (128, 128)
    assert tracks == {p["track"] for p in reported["record"]["persons"]}  # each person's worst face is explained


def test_report_dir_writes_an_index_and_reports_for_no_face_and_error(run, tmp_path, face_clip, empty_clip, checkpoint):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 10)
    out = tmp_path / "reports"
    rc, _, err = run("scan", face_clip, empty_clip, broken, tmp_path / "missing.mp4", "--weights", checkpoint, *FAST,
                     "--workers", "0", "--report-dir", out)
    assert rc == 2  # inputs failed; their reports are still written
    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"href='([^']+)'", index)
    assert links == ["face.html", "noface.html", "broken.html", "missing.html"]
    for link in links:
        assert (out / link).is_file()
    assert_self_contained(index)
    no_face = (out / "noface.html").read_text(encoding="utf-8")
    assert ">NO_FACE<" in no_face and "No face was found" in no_face and "Analysed frames" in no_face
    assert_self_contained(no_face)
    for name, kind in (("broken.html", "input"), ("missing.html", "not_found")):
        page = (out / name).read_text(encoding="utf-8")
        assert ">ERROR<" in page and f"<b>{kind}</b>" in page, name
        assert_self_contained(page)
    assert ">REAL<" in (out / "face.html").read_text(encoding="utf-8") or ">FAKE<" in (out / "face.html").read_text(encoding="utf-8")


def test_report_in_worker_process(run, tmp_path, face_clip, checkpoint):
    """The default path: reports and heatmaps are written in the analysis process, next to the crops."""
    rc, _, err = run("scan", face_clip, "--weights", checkpoint, *FAST, "--workers", "1",
                     "--report-dir", tmp_path / "r", "--heatmaps", tmp_path / "h")
    assert rc in (0, 1), err
    assert (tmp_path / "r" / "face.html").is_file() and "face.html" in (tmp_path / "r" / "index.html").read_text()
    assert list((tmp_path / "h").glob("face_t0_f*.png"))


def test_report_flag_takes_one_input(run, tmp_path, face_clip, empty_clip):
    rc, _, err = run("scan", face_clip, empty_clip, "--report", tmp_path / "r.html")
    assert rc == 2 and "--report-dir" in err and not (tmp_path / "r.html").exists()


def test_threshold_sentence_reads_the_checkpoint_rule():
    from fakeprobe.model.checkpoint import DEFAULT_WEIGHTS, load_checkpoint
    from fakeprobe.report.reporter import threshold_sentence

    s = threshold_sentence(0.8412, "FPR 0.05 on validation reals")
    assert s == ("Scores at or above 0.841 are flagged for human review; 0.841 was chosen so that about 5% of real "
                 "validation faces are flagged.")
    assert "set for this scan" in threshold_sentence(0.7, "FPR 0.05 on validation reals", user_set=True, model_threshold=0.84)
    assert "no rule" in threshold_sentence(0.5, None)
    if DEFAULT_WEIGHTS.exists():
        rule = load_checkpoint().meta.training.get("threshold_rule")
        assert rule and "at most 5% of the held-out real videos and photos of each source" in threshold_sentence(0.41, rule)
    assert "validation videos are flagged" in threshold_sentence(0.8, "FPR 0.05 on 40 validation real videos (per-video mean logit)")


def test_report_without_evidence_still_renders(make_detector, face_clip):
    from fakeprobe.report.reporter import Reporter

    det = make_detector(frames=8)
    page = Reporter(det).html(det.scan(face_clip))
    assert "id='timeline'" in page and "class='heatmap'" not in page and "no face crops were kept" in page
    assert_self_contained(page)


# -- templates and escaping ----------------------------------------------------------------------
def test_file_names_are_escaped(make_detector, face_clip, tmp_path):
    from fakeprobe.report.reporter import Reporter, index_html

    clip = tmp_path / "odd <dir>" / "a<script>alert('x')&b\".mp4"
    clip.parent.mkdir()
    shutil.copy(face_clip, clip)
    det = make_detector(frames=8)
    result = det.scan(clip)
    report, index = Reporter(det).html(result), index_html([(result, "a.html")])
    name = "a&lt;script&gt;alert(&#39;x&#39;)&amp;b&#34;.mp4"
    assert f"<title>fakeprobe report: {name} — {result.verdict}</title>" in report and f"<h1>{name}</h1>" in report
    assert f"odd &lt;dir&gt;/{name}</p>" in report and f"odd &lt;dir&gt;/{name}</dd>" in report  # under the name, in the details
    assert f">{name}</a>" in index and f"odd &lt;dir&gt;/{name}</div>" in index
    for page in (report, index):
        assert_self_contained(page)  # no <script> among other things


def test_error_message_is_escaped():
    from fakeprobe.core.results import ErrorRecord, ScanResult
    from fakeprobe.report.reporter import Reporter, index_html

    result = ScanResult(path="x.mp4", verdict="ERROR", probability=None, threshold=None,
                        error=ErrorRecord(kind="input", message="bad header <img src=x onerror=alert(1)>"))
    for page in (Reporter(None).html(result), index_html([(result, "x.html")])):
        assert "bad header &lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page


def test_pages_share_the_base_layout_and_inline_the_stylesheet(reported):
    from importlib.resources import files

    from fakeprobe.core.results import ScanResult
    from fakeprobe.report.reporter import index_html

    css = (files("fakeprobe.report") / "templates" / "style.css").read_text(encoding="utf-8")
    index = index_html([(ScanResult(path="a.mp4", verdict="NO_FACE", probability=None, threshold=None), "a.html")])
    for page in (reported["html"], index):
        assert page.startswith("<!doctype html>") and css.rstrip("\n") in page  # verbatim: Jinja left the CSS alone
        assert page.count("<style>") == 1 and "<meta name='viewport'" in page


def test_templating_environment_escapes_and_rejects_unknown_names():
    import jinja2

    from fakeprobe.report.templating import environment

    env = environment()
    assert env is environment()
    assert env.from_string("<p title='{{ x }}'>{{ x }}</p>").render(x="<b>'&'") == \
        "<p title='&lt;b&gt;&#39;&amp;&#39;'>&lt;b&gt;&#39;&amp;&#39;</p>"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_base_layout_blocks_for_other_pages():
    """What a page extending base.html.j2 (the service's review page) gets: the layout and the styles, no scripts of its own."""
    from fakeprobe.report.templating import environment

    page = environment().from_string(
        "{% extends 'base.html.j2' %}{% block title %}Review{% endblock %}{% block head %}<meta name='x'>{% endblock %}"
        "{% block header %}<h1>{{ h }}</h1>{% endblock %}{% block content %}<p>body</p>{% endblock %}"
        "{% block scripts %}<!-- scripts -->{% endblock %}").render(h="<Clip>")
    assert "<title>Review</title>" in page and page.index("<meta name='x'>") < page.index("</head>")
    assert "<header><h1>&lt;Clip&gt;</h1></header>" in page and "<p>body</p>" in page
    assert ".v-FAKE{" in page and page.index("<!-- scripts -->") > page.index("</main>")
    assert "<script" not in environment().get_template("base.html.j2").render()


# -- rendering in a real browser -----------------------------------------------------------------
@pytest.mark.parametrize("width", [1280, 390])
def test_report_renders_in_headless_chromium(reported, tmp_path, width):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the report rendering check needs it")
    from PIL import Image

    shot = tmp_path / f"shot_{width}.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", f"--window-size={width},2000", reported["report"].resolve().as_uri()]
    try:
        subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish rendering the report in 90 s")
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert px.shape[1] == width
    assert px.std() > 20, "the screenshot is blank"
    assert (px.min(axis=2) < 200).mean() > 0.03, "the screenshot is (almost) all white"
    # at phone width nothing may be cut off on the right: the page's last column stays background
    assert (px[:, -3:].min(axis=2) < 200).mean() < 0.05
