"""Evidence reports: one self-contained HTML file per scanned input, and heatmap PNGs.

A report holds the verdict and calibrated probability, what the threshold means, per person a
strip of face crops across time with their scores, a timeline plot of the per-face scores, Grad-CAM
heatmaps for the most suspicious crops, and the media/model details and warnings. Every image is
inlined as a ``data:`` URI and the page has no scripts, so it opens offline in any browser.

This module prepares the data (numbers formatted, images encoded); the markup is in the Jinja2
templates ``templates/report.html.j2`` and ``templates/index.html.j2`` (see ``templating``).

    detector = Detector()
    result, evidence = detector.scan_with_evidence("clip.mp4")
    Reporter(detector).write_report("report.html", result, evidence)
"""
from __future__ import annotations

import base64
import datetime as _dt
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import cv2
import numpy as np

from .. import __version__
from ..core.results import ERROR, FAKE, NO_FACE, REAL, FaceRecord, ScanResult
from ..scan.evidence import Evidence
from .templating import environment

# Okabe & Ito's colour-blind-safe palette, one colour (and one marker) per person
PERSON_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
PERSON_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
MARKER_GLYPHS = {"o": "●", "s": "■", "^": "▲", "D": "◆", "v": "▼", "P": "✚", "X": "✖", "*": "★"}
VERDICT_COLOURS = {FAKE: "#D55E00", REAL: "#0072B2", NO_FACE: "#777777", ERROR: "#000000"}
VERDICT_WORDS = {
    FAKE: "flagged for human review",
    REAL: "not flagged",
    NO_FACE: "no face found: nothing was scored",
    ERROR: "the file could not be analysed",
}
MAX_THUMBS = 24  # per person in the strip
SMALL_FACE_PX = 64  # median face width (original pixels) under which scores are less reliable


@dataclass
class Heatmap:
    """A Grad-CAM overlay for one detection."""

    index: int  # into result.detections / evidence.crops
    detection: FaceRecord
    crop: np.ndarray
    overlay: np.ndarray
    signal: bool  # False when no region raised the fake logit (the map is empty)

    def filename(self, stem: str) -> str:
        return f"{stem}_t{self.detection.track}_f{self.detection.frame_index}.png"


# -- what the templates get: formatted numbers, images as data: URIs -------------------------------
@dataclass
class Bar:
    """The probability bar; positions in percent of its width."""

    score: str
    threshold: str
    colour: str
    fill: str
    mark: str
    shift: int  # moves the threshold label left near the right end, keeping it inside the bar


@dataclass
class VerdictBox:
    word: str  # FAKE, REAL, NO_FACE or ERROR
    meaning: str
    flagged: bool
    score: str | None = None  # the file's p(fake), when it was scored
    threshold: str | None = None
    bar: Bar | None = None
    decider: str | None = None  # the label of the person whose score is the file's, with several people
    video: bool = False
    frames: int | None = None  # frames searched, for NO_FACE
    rule: str | None = None  # what the threshold means, in words


@dataclass
class Thumb:
    src: str
    time: str
    time_short: str | None  # for the caption, videos only
    score: str
    flagged: bool


@dataclass
class PersonCard:
    label: str
    colour: str
    glyph: str
    track: int
    verdict: str
    verdict_colour: str
    score: str
    faces: int
    span: str | None  # first and last time seen, videos only
    decides: bool
    thumbs: list[Thumb] | None  # None when no crops were kept
    total: int  # this person's faces; the strip may show fewer


@dataclass
class CamCard:
    crop: str
    overlay: str
    label: str
    colour: str
    glyph: str
    time: str
    frame: int
    score: str
    signal: bool


@dataclass
class CamSection:
    cards: list[CamCard]
    model: str
    ensemble: bool
    gradient: str  # CSS colour stops of the heatmaps' colour scale


@dataclass
class Timeline:
    wide: str
    narrow: str  # for phones


@dataclass
class FrameImage:
    src: str
    time: str
    index: int


@dataclass
class IndexRow:
    href: str
    name: str
    path: str | None
    verdict: str
    colour: str
    score: str
    people: int
    faces: int
    note: str


# -- small helpers ------------------------------------------------------------------------------
def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _encode(img: np.ndarray, ext: str, quality: int = 85) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {ext} image")
    return buf.tobytes()


def png_bytes(img: np.ndarray) -> bytes:
    return _encode(img, ".png")


def _jpeg_uri(img: np.ndarray, quality: int = 85) -> str:
    return _data_uri(_encode(img, ".jpg", quality), "image/jpeg")


def _png_uri(img: np.ndarray) -> str:
    return _data_uri(png_bytes(img), "image/png")


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _p(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def safe_stem(path: str | Path) -> str:
    """A file-name-safe stem for ``path`` (letters, digits, ``._-``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._") or "input"
    return stem[:80]


def _unique(name: str, used: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate = f"{stem}-{n}{dot}{ext}"
        n += 1
    used.add(candidate.lower())
    return candidate


def threshold_sentence(threshold: float, rule: str | None, *, user_set: bool = False, model_threshold: float | None = None,
                       ensemble: bool = False) -> str:
    """Plain words for what the threshold means (plain text, not HTML)."""
    t = f"{threshold:.3f}"
    head = f"Scores at or above {t} are flagged for human review"
    fpr = None
    if rule:
        m = re.search(r"FPR\s*=?\s*([0-9]*\.?[0-9]+)", rule)
        if m:
            fpr = float(m.group(1))
    per_source = re.search(r"at most ([0-9]*\.?[0-9]+) of the real files of every source", rule or "")
    if per_source:
        why = (f"was chosen so that at most {float(per_source.group(1)) * 100:g}% of the held-out real videos and photos "
               f"of each source the model was checked on are flagged")
    elif fpr is not None:
        unit = "videos" if "validation real videos" in (rule or "") else "faces"
        why = f"was chosen so that about {fpr * 100:g}% of real validation {unit} are flagged"
    elif rule:
        why = f"was chosen by the rule recorded with the model: “{rule}”"
    else:
        why = "is the threshold stored with the model (no rule for choosing it is recorded)"
    if user_set:
        mt = f"{model_threshold:.3f}" if model_threshold is not None else "?"
        return f"{head}. This threshold was set for this scan (--threshold); the model's own threshold, {mt}, {why}."
    tail = " (the mean of the ensemble members' thresholds)" if ensemble else ""
    return f"{head}; {t}{tail} {why}."


# -- the reporter --------------------------------------------------------------------------------
class Reporter:
    """Builds reports and heatmaps for results from one ``Detector``.

    Without a detector (e.g. for an input whose analysis process crashed) it still writes a
    report, with no threshold explanation and no heatmaps.
    """

    def __init__(self, detector=None, top_k: int = 3, max_thumbs: int = MAX_THUMBS):
        self.detector = detector
        self.top_k = top_k
        self.max_thumbs = max_thumbs
        self._cam = None
        self.ensemble = False
        self.rule: str | None = None
        self.user_threshold = False
        self.model_threshold: float | None = None
        self.cam_model = ""
        if detector is not None:
            first = detector.checkpoints[0]
            self.ensemble = len(detector.checkpoints) > 1
            self.rule = (first.meta.training or {}).get("threshold_rule")
            self.user_threshold = detector.config.threshold is not None
            self.model_threshold = float(np.mean([c.meta.threshold for c in detector.checkpoints]))
            self.cam_model = f"{first.meta.name} ({first.meta.arch})"

    @property
    def gradcam(self):
        if self._cam is None:
            from .gradcam import GradCam

            self._cam = GradCam(self.detector.checkpoints[0])
        return self._cam

    def threshold_text(self, threshold: float) -> str | None:
        if self.detector is None:
            return None
        return threshold_sentence(threshold, self.rule, user_set=self.user_threshold, model_threshold=self.model_threshold,
                                  ensemble=self.ensemble)

    # -- heatmaps ---------------------------------------------------------------------------
    def suspicious(self, result: ScanResult) -> list[int]:
        """Detections to explain: the most suspicious face of each person (most suspicious people
        first), then the next most suspicious overall, ``top_k`` in all (more, up to 6, when there
        are more people)."""
        dets = result.detections
        if not dets:
            return []
        order = sorted(range(len(dets)), key=lambda i: (-dets[i].probability, dets[i].time_s))
        n = min(len(dets), max(self.top_k, min(len(result.persons), 6)))
        chosen: list[int] = []
        for p in sorted(result.persons, key=lambda p: -p.probability):
            best = next(i for i in order if dets[i].track == p.track)
            if len(chosen) < n:
                chosen.append(best)
        for i in order:
            if len(chosen) >= n:
                break
            if i not in chosen:
                chosen.append(i)
        return sorted(chosen, key=lambda i: -dets[i].probability)

    def heatmaps(self, result: ScanResult, evidence: Evidence | None) -> list[Heatmap]:
        """Grad-CAM overlays for the most suspicious crops (none without evidence)."""
        if self.detector is None or evidence is None or not len(evidence) or not result.detections:
            return []
        from .gradcam import overlay

        idx = self.suspicious(result)
        crops = evidence.crops[idx]
        maps, _ = self.gradcam.maps(crops)
        return [Heatmap(i, result.detections[i], c, overlay(c, m), bool(m.max() > 0)) for i, c, m in zip(idx, crops, maps)]

    def write_heatmaps(self, folder: str | Path, result: ScanResult, heatmaps: list[Heatmap], stem: str | None = None) -> list[Path]:
        """``<stem>_t<track>_f<frame>.png`` overlays in ``folder`` (stem: the input's, by default)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for h in heatmaps:
            path = folder / h.filename(stem or safe_stem(result.path))
            path.write_bytes(png_bytes(h.overlay))
            out.append(path)
        return out

    def write_report(self, path: str | Path, result: ScanResult, evidence: Evidence | None = None,
                     heatmaps: list[Heatmap] | None = None) -> Path:
        path = Path(path)
        if heatmaps is None:
            heatmaps = self.heatmaps(result, evidence)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(result, evidence, heatmaps), encoding="utf-8")
        return path

    # -- the page ---------------------------------------------------------------------------
    def html(self, result: ScanResult, evidence: Evidence | None = None, heatmaps: list[Heatmap] | None = None) -> str:
        if heatmaps is None:
            heatmaps = self.heatmaps(result, evidence)
        people = _people(result)
        scored = bool(result.detections)
        return _render(
            "report.html.j2",
            name=Path(result.path).name,
            path=_full_path(result.path),
            verdict=self._verdict(result, people),
            warnings=self._warnings(result, evidence),
            error=result.error,
            timeline=_timeline(result, people) if scored else None,
            people=self._persons(result, evidence, people) if scored else [],
            crops_kept=_have_crops(result, evidence),
            cams=self._cams(heatmaps, people) if scored and heatmaps else None,
            overview=_overview(result, evidence, people) if scored else None,
            stills=_stills(result, evidence) if not scored and result.verdict == NO_FACE else [],
            media_rows=_media_rows(result),
            model_rows=self._model_rows(result),
        )

    def _verdict(self, result: ScanResult, people: dict) -> VerdictBox:
        v = result.verdict
        box = VerdictBox(word=v, meaning=VERDICT_WORDS.get(v, ""), flagged=v == FAKE)
        if v in (FAKE, REAL) and result.probability is not None:
            decider = next((p for p in result.persons if p.decides), None)
            box.score, box.threshold = f"{result.probability:.3f}", f"{result.threshold:.3f}"
            box.bar = _bar(result.probability, result.threshold, VERDICT_COLOURS[v])
            box.decider = people[decider.track]["label"] if decider is not None and len(result.persons) > 1 else None
            box.video = result.media is not None and result.media.kind == "video"
        elif v == NO_FACE:
            box.frames = result.media.frames_analysed if result.media else 0
        if result.threshold is not None and v in (FAKE, REAL):
            box.rule = self.threshold_text(result.threshold)
        return box

    def _warnings(self, result: ScanResult, evidence: Evidence | None) -> list[str]:
        notes = list(result.warnings)
        m = result.media
        if m is not None and m.width and m.height and min(m.width, m.height) < 360:
            notes.append(f"low-resolution input ({m.width}x{m.height}): fine manipulation traces may be lost, scores are less reliable")
        if result.detections:
            widths = [d.box[2] - d.box[0] for d in result.detections]
            med = float(np.median(widths))
            if med < SMALL_FACE_PX:
                notes.append(f"faces are small (median {med:.0f} px wide): they are enlarged for the model, scores are less reliable")
            counts: dict[int, int] = {}
            for d in result.detections:
                counts[d.track] = counts.get(d.track, 0) + 1
            capped = [n for n in counts.values() if n > self.max_thumbs]
            if capped and evidence is not None and len(evidence):
                notes.append(f"the face strips show at most {self.max_thumbs} faces per person, evenly spread in time "
                             "(the timeline plot shows every face)")
        if self.user_threshold and result.threshold is not None:
            notes.append(f"the threshold was set for this scan ({result.threshold:.3f}) instead of the model's ({self.model_threshold:.3f})")
        if result.detections and (evidence is None or not len(evidence)):
            notes.append("no face crops were kept for this report (scanned without evidence): strips and heatmaps are missing")
        return notes

    def _persons(self, result: ScanResult, evidence: Evidence | None, people: dict) -> list[PersonCard]:
        dets = result.detections
        video = result.media is None or result.media.kind == "video"
        cards = []
        for p in result.persons:
            info = people[p.track]
            mine = sorted((i for i, d in enumerate(dets) if d.track == p.track), key=lambda i: dets[i].time_s)
            thumbs = self._strip(result, evidence, mine, video) if _have_crops(result, evidence) else None
            cards.append(PersonCard(
                label=info["label"], colour=info["colour"], glyph=info["glyph"], track=p.track, verdict=p.verdict,
                verdict_colour=VERDICT_COLOURS[p.verdict], score=f"{p.probability:.3f}", faces=p.faces,
                span=f"{p.first_time_s:.1f}–{p.last_time_s:.1f}" if video else None, decides=p.decides, thumbs=thumbs,
                total=len(mine)))
        return cards

    def _strip(self, result: ScanResult, evidence: Evidence, mine: list[int], video: bool) -> list[Thumb]:
        """One person's faces (``mine``, in time order), at most ``max_thumbs`` evenly spread, always
        including the most suspicious."""
        dets = result.detections
        shown = _spread(mine, self.max_thumbs, keep=max(mine, key=lambda i: dets[i].probability))
        return [_thumb(evidence.crops[i], dets[i], result.threshold, video) for i in shown]

    def _cams(self, heatmaps: list[Heatmap], people: dict) -> CamSection:
        return CamSection(cards=[_cam_card(h, people) for h in heatmaps], model=self.cam_model, ensemble=self.ensemble,
                          gradient=_colour_stops())

    def _model_rows(self, result: ScanResult) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        if result.model is not None:
            mo = result.model
            rows = [("name", mo.name), ("architecture", mo.arch), ("version", mo.version),
                    ("sha256", mo.sha256 or "unknown"), ("threshold", f"{mo.threshold:.4f}")]
            if self.user_threshold and self.model_threshold is not None:
                rows[-1] = ("threshold", f"{mo.threshold:.4f} (set for this scan)")
                rows.append(("model's threshold", f"{self.model_threshold:.4f}"))
            if self.rule:
                rows.append(("threshold rule", self.rule))
        rows.append(("fakeprobe", __version__))
        return rows

# -- writing a batch ------------------------------------------------------------------------------
@dataclass
class ReportTask:
    """Scan one file and write its evidence: ``task(detector, path) -> ScanResult``.

    Picklable, so it can run inside ``ScanPool`` worker processes, where the crops are. A failure
    to write is added to the result's warnings (the scan itself stands).
    """

    report: str | None = None  # one HTML file (a single input)
    report_dir: str | None = None  # <stem>.html per input
    heatmaps: str | None = None  # <stem>_t<track>_f<frame>.png
    stems: dict[str, str] = field(default_factory=dict)  # input path -> unique file stem
    top_k: int = 3
    _reporter: Reporter | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_reporter"] = None
        return state

    def stem(self, path: str | Path) -> str:
        return self.stems.get(str(path)) or safe_stem(path)

    def __call__(self, detector, path: str | Path) -> ScanResult:
        result, evidence = detector.scan_with_evidence(path)
        try:
            if self._reporter is None or self._reporter.detector is not detector:
                self._reporter = Reporter(detector, top_k=self.top_k)
            reporter = self._reporter
            cams = reporter.heatmaps(result, evidence)
            stem = self.stem(path)
            if self.heatmaps:
                reporter.write_heatmaps(self.heatmaps, result, cams, stem)
            if self.report or self.report_dir:
                page = reporter.html(result, evidence, cams)
                if self.report:
                    Path(self.report).write_text(page, encoding="utf-8")
                if self.report_dir:
                    (Path(self.report_dir) / f"{stem}.html").write_text(page, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001  (a report problem must not lose the scan)
            result.warnings.append(f"evidence report not written ({type(exc).__name__}: {exc})")
        return result


class ReportPlan:
    """The main-process side of ``scan --report/--report-dir/--heatmaps``: folders, one unique
    file stem per input, a fallback report for inputs whose worker wrote none (a crash, a
    timeout, a write error), and the batch's ``index.html``."""

    def __init__(self, paths: Iterable[str | Path], *, report: str | Path | None = None, report_dir: str | Path | None = None,
                 heatmaps: str | Path | None = None, top_k: int = 3):
        used = {"index"}
        stems = {}
        for p in paths:
            stems[str(p)] = _unique(safe_stem(p), used)
        self.report = Path(report).absolute() if report else None
        self.report_dir = Path(report_dir).absolute() if report_dir else None
        self.heatmap_dir = Path(heatmaps).absolute() if heatmaps else None
        for d in (self.report_dir, self.heatmap_dir, self.report.parent if self.report else None):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        self.task = ReportTask(report=str(self.report) if self.report else None, report_dir=str(self.report_dir) if self.report_dir else None,
                               heatmaps=str(self.heatmap_dir) if self.heatmap_dir else None, stems=stems, top_k=top_k)
        self.entries: list[tuple[ScanResult, str]] = []
        self.failures: list[str] = []
        self._started = _dt.datetime.now().timestamp() - 1.0

    def _expected(self, result: ScanResult) -> list[Path]:
        out = [self.report] if self.report else []
        if self.report_dir:
            out.append(self.report_dir / f"{self.task.stem(result.path)}.html")
        return out

    def add(self, result: ScanResult) -> None:
        """Account for one finished input (call in input order)."""
        missing = [p for p in self._expected(result) if not p.exists() or p.stat().st_mtime < self._started]
        if missing:
            if result.verdict != ERROR:
                why = next((w for w in result.warnings if w.startswith("evidence report not written")), "evidence report not written")
                self.failures.append(f"{result.path}: {why}")
            page = Reporter(None).html(result)
            for p in missing:
                p.write_text(page, encoding="utf-8")
        if self.report_dir:
            self.entries.append((result, f"{self.task.stem(result.path)}.html"))

    def close(self) -> Path | None:
        """Write ``index.html`` (with ``--report-dir``); returns its path."""
        if self.report_dir is None:
            return None
        path = self.report_dir / "index.html"
        path.write_text(index_html(self.entries), encoding="utf-8")
        return path


def index_html(entries: Iterable[tuple[ScanResult, str]]) -> str:
    """A page linking one report per input (relative links), with each verdict."""
    entries = list(entries)
    counts = Counter(r.verdict for r, _ in entries)
    return _render("index.html.j2", rows=[_index_row(r, name) for r, name in entries],
                   summary=[(counts[v], v) for v in (FAKE, REAL, NO_FACE, ERROR) if counts[v]])


def _index_row(result: ScanResult, report: str) -> IndexRow:
    note = result.error.message if result.error else "; ".join(result.warnings[:2])
    return IndexRow(href=quote(report), name=Path(result.path).name, path=_full_path(result.path), verdict=result.verdict,
                    colour=VERDICT_COLOURS.get(result.verdict, "#000"), score=_p(result.probability), people=len(result.persons),
                    faces=result.faces, note=note)


# -- pieces of the page ---------------------------------------------------------------------------
def _people(result: ScanResult) -> dict[int, dict]:
    out = {}
    for n, p in enumerate(sorted(result.persons, key=lambda p: p.track)):
        k = n % len(PERSON_COLOURS)
        out[p.track] = {"label": f"Person {n + 1}", "short": f"P{n + 1}", "colour": PERSON_COLOURS[k],
                        "marker": PERSON_MARKERS[k], "glyph": MARKER_GLYPHS[PERSON_MARKERS[k]]}
    return out


def _spread(items: list[int], n: int, keep: int | None = None) -> list[int]:
    """At most ``n`` of ``items`` evenly spread, always including ``keep``."""
    if len(items) <= n:
        return list(items)
    pick = {items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)} if n > 1 else {items[0]}
    if keep is not None and keep not in pick:
        nearest = min(pick, key=lambda i: abs(items.index(i) - items.index(keep)))
        pick.discard(nearest)
        pick.add(keep)
    return [i for i in items if i in pick]


def timeline_png(result: ScanResult, people: dict | None = None, narrow: bool = False) -> bytes:
    """Per-face fake probability over time, one line per person, with the threshold line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    people = people or _people(result)
    fig = Figure(figsize=(4.4, 4.0) if narrow else (9.0, 3.3), dpi=130 if narrow else 110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    thr = result.threshold if result.threshold is not None else 0.5
    end = max([result.media.duration_s if result.media else 0.0] + [f.time_s for f in result.frames] + [0.1])
    ax.axhspan(thr, 1.04, color="#D55E00", alpha=0.08, lw=0, label="flagged zone")
    ax.axhline(thr, color="black", ls="--", lw=1.3, label=f"threshold {thr:.3f}")
    for p in result.persons:
        info = people[p.track]
        pts = sorted((d.time_s, d.probability) for d in result.detections if d.track == p.track)
        ts, ps = zip(*pts)
        ax.plot(ts, ps, color=info["colour"], marker=info["marker"], ms=5.5, lw=1.8, mec="white", mew=0.6,
                label=f"{info['label']}: {p.probability:.3f} {p.verdict}")
    ft = [f.time_s for f in result.frames]
    ax.plot(ft, [-0.03] * len(ft), ls="none", marker="|", ms=7, color="#777777", label="analysed frame")
    ax.set_ylim(-0.06, 1.04)
    ax.set_xlim(-0.02 * end, end * 1.02)
    ax.set_xlabel("time in the video (s)")
    ax.set_ylabel("p(fake) per face")
    ax.grid(True, axis="y", color="#dddddd", lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2 if not narrow else -0.17), ncol=1 if narrow else min(3, len(result.persons) + 3),
              frameon=False, fontsize=8.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _render(template: str, **data) -> str:
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return environment().get_template(template).render(version=__version__, generated=generated, **data)


def _full_path(path: str) -> str | None:
    """The path to show under a file name, when it says more than the name."""
    return None if Path(path).name == path else path


def _have_crops(result: ScanResult, evidence: Evidence | None) -> bool:
    return evidence is not None and len(evidence) == len(result.detections)


def _bar(p: float, thr: float, colour: str) -> Bar:
    shift = -100 if thr > 0.75 else 0 if thr < 0.25 else -50
    return Bar(score=f"{p:.3f}", threshold=f"{thr:.3f}", colour=colour, fill=f"{100 * p:.1f}", mark=f"{100 * thr:.1f}", shift=shift)


def _timeline(result: ScanResult, people: dict) -> Timeline | None:
    if result.media is not None and result.media.kind == "image":
        return None
    return Timeline(wide=_data_uri(timeline_png(result, people, narrow=False), "image/png"),
                    narrow=_data_uri(timeline_png(result, people, narrow=True), "image/png"))


def _thumb(crop: np.ndarray, d: FaceRecord, threshold: float, video: bool) -> Thumb:
    small = cv2.resize(crop, (112, 112), interpolation=cv2.INTER_AREA) if crop.shape[0] > 112 else crop
    return Thumb(src=_jpeg_uri(small), time=f"{d.time_s:.2f}", time_short=f"{d.time_s:.1f}" if video else None,
                 score=f"{d.probability:.3f}", flagged=d.probability >= threshold)


def _cam_card(h: Heatmap, people: dict) -> CamCard:
    d = h.detection
    info = people.get(d.track, {"label": f"track {d.track}", "colour": "#000", "glyph": "●"})
    return CamCard(crop=_png_uri(h.crop), overlay=_png_uri(h.overlay), label=info["label"], colour=info["colour"],
                   glyph=info["glyph"], time=f"{d.time_s:.2f}", frame=d.frame_index, score=f"{d.probability:.3f}", signal=h.signal)


def _colour_stops() -> str:
    from .gradcam import colorize

    return ", ".join(f"rgb({r},{g},{b})" for r, g, b in colorize(np.linspace(0, 1, 9)))


def _overview(result: ScanResult, evidence: Evidence | None, people: dict) -> FrameImage | None:
    """The analysed frame that shows the most people (then the most suspicious face), each boxed and labelled."""
    if evidence is None or not evidence.frames or len(evidence.frames) != len(result.frames):
        return None
    by_frame: dict[int, list[FaceRecord]] = {}
    for d in result.detections:
        by_frame.setdefault(d.frame_index, []).append(d)
    pos = {f.frame_index: j for j, f in enumerate(result.frames)}
    best = max(by_frame, key=lambda fi: (len({d.track for d in by_frame[fi]}), max(d.probability for d in by_frame[fi])))
    j = pos.get(best)
    if j is None:
        return None
    img = evidence.frames[j].copy()
    _label_faces(img, by_frame[best], evidence.frame_scales[j], people)
    fr = result.frames[j]
    return FrameImage(src=_jpeg_uri(img, 88), time=f"{fr.time_s:.2f}", index=fr.frame_index)


def _label_faces(img: np.ndarray, faces: list[FaceRecord], scale: float, people: dict) -> None:
    """Draw each person's box and a "P<n> <score>" label on ``img`` (in place)."""
    lw = max(2, round(max(img.shape[:2]) / 300))
    for d in faces:
        info = people.get(d.track)
        if info is None:
            continue
        x1, y1, x2, y2 = (int(round(v * scale)) for v in d.box)
        col = _rgb(info["colour"])
        cv2.rectangle(img, (x1, y1), (x2, y2), col, lw)
        label = f"{info['short']} {d.probability:.2f}"
        fs = max(0.45, max(img.shape[:2]) / 1100)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1 + lw // 2)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(img.shape[0] - 1, y2 + th + 4)
        cv2.rectangle(img, (x1, ty - th - 3), (x1 + tw + 6, ty + base), col, -1)
        dark = sum(c * w for c, w in zip(col, (0.299, 0.587, 0.114))) < 140
        cv2.putText(img, label, (x1 + 3, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255) if dark else (0, 0, 0), 1 + lw // 2, cv2.LINE_AA)


def _stills(result: ScanResult, evidence: Evidence | None) -> list[FrameImage]:
    """Up to 12 of the analysed frames, evenly spread (for a file without faces)."""
    if evidence is None or not evidence.frames:
        return []
    idx = _spread(list(range(len(evidence.frames))), 12)
    return [FrameImage(src=_jpeg_uri(evidence.frames[j], 80), time=f"{result.frames[j].time_s:.2f}", index=result.frames[j].frame_index)
            for j in idx if j < len(result.frames)]


def _media_rows(result: ScanResult) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("file", result.path)]
    try:
        rows.append(("size", f"{os.path.getsize(result.path):,} bytes"))
    except OSError:
        pass
    m = result.media
    if m is not None:
        rows.append(("kind", m.kind))
        rows.append(("resolution", f"{m.width}×{m.height}" + (f" (rotated {m.rotation}°)" if m.rotation else "")))
        if m.kind == "video":
            rows += [("duration", f"{m.duration_s:.2f} s"), ("frame rate", f"{m.fps:g} fps"),
                     ("frames in file", f"{m.frame_count:,}"), ("codec", m.codec or "unknown")]
        rows.append(("frames analysed", str(m.frames_analysed)))
    rows += [("faces found", str(result.faces)), ("people (tracks)", str(len(result.persons))), ("scan time", f"{result.elapsed_s:.2f} s")]
    return rows
