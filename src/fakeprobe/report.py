"""Evidence reports: one self-contained HTML file per scanned input, and heatmap PNGs.

A report holds the verdict and calibrated probability, what the threshold means, per person a
strip of face crops across time with their scores, a timeline plot of the per-face scores, Grad-CAM
heatmaps for the most suspicious crops, and the media/model details and warnings. Every image is
inlined as a ``data:`` URI and the page has no scripts, so it opens offline in any browser.

    detector = Detector()
    result, evidence = detector.scan_with_evidence("clip.mp4")
    Reporter(detector).write_report("report.html", result, evidence)
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import cv2
import numpy as np

from . import __version__
from .evidence import Evidence
from .results import ERROR, FAKE, NO_FACE, REAL, FaceRecord, ScanResult

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


# -- small helpers ------------------------------------------------------------------------------
def _e(x) -> str:
    return html.escape(str(x), quote=True)


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
    if fpr is not None:
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
        parts = [self._verdict(result, people)]
        notes = self._warnings(result, evidence)
        if notes:
            parts.append(_section("Warnings", "<ul class='warn'>" + "".join(f"<li>{_e(w)}</li>" for w in notes) + "</ul>"))
        if result.error is not None:
            parts.append(_section("What went wrong", f"<p class='error'><b>{_e(result.error.kind)}</b>: {_e(result.error.message)}</p>"
                                  "<p>Nothing in this file was scored. Check that the file exists and is a complete, readable video or "
                                  "image, then scan it again.</p>"))
        if result.detections:
            parts.append(self._timeline(result, people))
            parts.append(self._persons(result, evidence, people))
            if heatmaps:
                parts.append(self._heatmaps(heatmaps, people))
            overview = self._overview(result, evidence, people)
            if overview:
                parts.append(overview)
        elif result.verdict == NO_FACE:
            parts.append(self._no_face(result, evidence))
        parts.append(self._details(result))
        parts.append(_FOOTER)
        title = f"fakeprobe report: {Path(result.path).name} — {result.verdict}"
        header = (f"<header><p class='muted'>fakeprobe {_e(__version__)} evidence report · "
                  f"{_e(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}</p>"
                  f"<h1>{_e(Path(result.path).name)}</h1>"
                  f"{_path_line(result.path, 'p', 'path muted')}</header>")
        return _page(title, header + "\n".join(parts))

    def _verdict(self, result: ScanResult, people: dict) -> str:
        v = result.verdict
        lines = []
        if v in (FAKE, REAL) and result.probability is not None:
            decider = next((p for p in result.persons if p.decides), None)
            who = f"{people[decider.track]['label']}, " if decider is not None and len(result.persons) > 1 else ""
            rel = "at or above" if v == FAKE else "below"
            lines.append(f"<p class='big'>p(fake) = <b>{result.probability:.3f}</b> <span class='muted'>({rel} the threshold "
                         f"{result.threshold:.3f})</span></p>")
            lines.append(_bar(result.probability, result.threshold, VERDICT_COLOURS[v]))
            seen = " seen in enough frames" if result.media is not None and result.media.kind == "video" else ""
            lines.append(f"<p>The file's score is the calibrated probability that {_e(who)}the most suspicious person{seen}, "
                         "has a manipulated face (0 = looks real, 1 = looks fake). A person's score combines all their faces "
                         "(the mean of the per-face logits).</p>")
        elif v == NO_FACE:
            n = result.media.frames_analysed if result.media else 0
            lines.append(f"<p>No face was found in the {n} analysed frame{'s' if n != 1 else ''}, so there is no score. "
                         "A file without a detectable face is not evidence that it is genuine.</p>")
        rule = self.threshold_text(result.threshold) if result.threshold is not None and v in (FAKE, REAL) else None
        if rule:
            lines.append(f"<p class='rule'><b>Threshold.</b> {_e(rule)}</p>")
        if v == FAKE:
            lines.append("<p class='muted'>A flag is a reason for a person to look closely, not proof of manipulation.</p>")
        return (f"<section class='verdict v-{v}' aria-label='verdict'><div class='word'>{_e(v)}</div>"
                f"<div class='sub'>{_e(VERDICT_WORDS.get(v, ''))}</div>{''.join(lines)}</section>")

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

    def _timeline(self, result: ScanResult, people: dict) -> str:
        if result.media is not None and result.media.kind == "image":
            return ""
        wide = _data_uri(timeline_png(result, people, narrow=False), "image/png")
        narrow = _data_uri(timeline_png(result, people, narrow=True), "image/png")
        body = (f"<picture><source media='(max-width: 640px)' srcset='{narrow}'>"
                f"<img class='timeline' id='timeline' src='{wide}' alt='Timeline: fake probability of each face over time, "
                f"one line per person, with the threshold as a dashed line'></picture>"
                "<p class='muted'>Each point is one face crop; the dashed line is the threshold. Ticks along the bottom mark "
                "the analysed frames.</p>")
        return _section("Timeline", body)

    def _persons(self, result: ScanResult, evidence: Evidence | None, people: dict) -> str:
        dets = result.detections
        have_crops = evidence is not None and len(evidence) == len(dets)
        video = result.media is None or result.media.kind == "video"
        blocks = []
        for p in result.persons:
            info = people[p.track]
            mine = sorted((i for i, d in enumerate(dets) if d.track == p.track), key=lambda i: dets[i].time_s)
            strip = ""
            if have_crops:
                shown = _spread(mine, self.max_thumbs, keep=max(mine, key=lambda i: dets[i].probability))
                figs = []
                for i in shown:
                    d = dets[i]
                    hi = d.probability >= result.threshold
                    thumb = cv2.resize(evidence.crops[i], (112, 112), interpolation=cv2.INTER_AREA) if evidence.crops[i].shape[0] > 112 else evidence.crops[i]
                    figs.append(
                        f"<figure class='thumb{' hi' if hi else ''}'><img src='{_jpeg_uri(thumb)}' alt='{_e(info['label'])} at "
                        f"{d.time_s:.2f} s, score {d.probability:.3f}'><figcaption>{f'{d.time_s:.1f} s<br>' if video else ''}<b>{d.probability:.3f}</b>"
                        f"{'<span class=flag>FLAG</span>' if hi else ''}</figcaption></figure>"
                    )
                more = f"<p class='muted'>Showing {len(shown)} of {len(mine)} faces.</p>" if len(shown) < len(mine) else ""
                strip = f"<div class='strip'>{''.join(figs)}</div>{more}"
            decides = "<span class='tag'>decides the file's score</span>" if p.decides else ""
            blocks.append(
                f"<div class='person' style='border-top-color:{info['colour']}'>"
                f"<h3><span class='glyph' style='color:{info['colour']}'>{info['glyph']}</span> {_e(info['label'])} "
                f"<span class='muted small'>track {p.track}</span></h3>"
                f"<p><span class='pill' style='border-color:{VERDICT_COLOURS[p.verdict]}'>{_e(p.verdict)}</span> "
                f"p(fake) <b>{p.probability:.3f}</b> · {p.faces} face{'s' if p.faces != 1 else ''}"
                f"{f' · {p.first_time_s:.1f}–{p.last_time_s:.1f} s' if video else ''} {decides}</p>{strip}</div>"
            )
        legend = ("<p class='muted'>Each crop is exactly what the model saw, with its time and score. A thick black frame and "
                  "“FLAG” mark faces at or above the threshold.</p>") if have_crops else ""
        return _section("People", legend + "".join(blocks))

    def _heatmaps(self, heatmaps: list[Heatmap], people: dict) -> str:
        cards = []
        for h in heatmaps:
            d = h.detection
            info = people.get(d.track, {"label": f"track {d.track}", "colour": "#000", "glyph": "●"})
            note = "" if h.signal else "<br><span class='muted'>no region raised the score: the map is empty</span>"
            cards.append(
                f"<figure class='cam'><div class='pair'><img src='{_png_uri(h.crop)}' alt='face crop'>"
                f"<img src='{_png_uri(h.overlay)}' class='heatmap' alt='Grad-CAM heatmap over the face crop'></div>"
                f"<figcaption><span class='glyph' style='color:{info['colour']}'>{info['glyph']}</span> {_e(info['label'])} · "
                f"{d.time_s:.2f} s (frame {d.frame_index}) · p(fake) <b>{d.probability:.3f}</b>{note}</figcaption></figure>"
            )
        legend = _colourbar()
        text = (f"<p>Where the model looked, for the most suspicious faces (Grad-CAM on {_e(self.cam_model)}"
                f"{', the first model of the ensemble' if self.ensemble else ''}): bright yellow marks the regions that raised "
                "the fake score most, dark purple little, and the face shows through unchanged where nothing did. A heatmap "
                "shows what drove the score, not where an edit is.</p>")
        return _section("Heatmaps", text + legend + f"<div class='cams'>{''.join(cards)}</div>")

    def _overview(self, result: ScanResult, evidence: Evidence | None, people: dict) -> str:
        if evidence is None or not evidence.frames or len(evidence.frames) != len(result.frames):
            return ""
        by_frame: dict[int, list[FaceRecord]] = {}
        for d in result.detections:
            by_frame.setdefault(d.frame_index, []).append(d)
        pos = {f.frame_index: j for j, f in enumerate(result.frames)}
        best = max(by_frame, key=lambda fi: (len({d.track for d in by_frame[fi]}), max(d.probability for d in by_frame[fi])))
        j = pos.get(best)
        if j is None:
            return ""
        img = evidence.frames[j].copy()
        s = evidence.frame_scales[j]
        lw = max(2, round(max(img.shape[:2]) / 300))
        for d in by_frame[best]:
            info = people.get(d.track)
            if info is None:
                continue
            x1, y1, x2, y2 = (int(round(v * s)) for v in d.box)
            col = _rgb(info["colour"])
            cv2.rectangle(img, (x1, y1), (x2, y2), col, lw)
            label = f"{info['short']} {d.probability:.2f}"
            fs = max(0.45, max(img.shape[:2]) / 1100)
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1 + lw // 2)
            ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(img.shape[0] - 1, y2 + th + 4)
            cv2.rectangle(img, (x1, ty - th - 3), (x1 + tw + 6, ty + base), col, -1)
            dark = sum(c * w for c, w in zip(col, (0.299, 0.587, 0.114))) < 140
            cv2.putText(img, label, (x1 + 3, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255) if dark else (0, 0, 0), 1 + lw // 2, cv2.LINE_AA)
        fr = result.frames[j]
        body = (f"<figure class='frame'><img src='{_jpeg_uri(img, 88)}' alt='Analysed frame at {fr.time_s:.2f} s with each "
                f"person boxed and labelled'><figcaption class='muted'>Frame {fr.frame_index} at {fr.time_s:.2f} s, with each "
                "person's face boxed and labelled (label: person, score of this face).</figcaption></figure>")
        return _section("Who is who", body)

    def _no_face(self, result: ScanResult, evidence: Evidence | None) -> str:
        if evidence is None or not evidence.frames:
            return ""
        idx = _spread(list(range(len(evidence.frames))), 12)
        figs = "".join(
            f"<figure class='still'><img src='{_jpeg_uri(evidence.frames[j], 80)}' alt='analysed frame at {result.frames[j].time_s:.2f} s'>"
            f"<figcaption class='muted'>{result.frames[j].time_s:.2f} s</figcaption></figure>"
            for j in idx if j < len(result.frames)
        )
        return _section("Analysed frames", f"<p>Some of the frames that were searched for faces:</p><div class='stills'>{figs}</div>")

    def _details(self, result: ScanResult) -> str:
        rows_media: list[tuple[str, str]] = [("file", result.path)]
        try:
            rows_media.append(("size", f"{os.path.getsize(result.path):,} bytes"))
        except OSError:
            pass
        m = result.media
        if m is not None:
            rows_media.append(("kind", m.kind))
            rows_media.append(("resolution", f"{m.width}×{m.height}" + (f" (rotated {m.rotation}°)" if m.rotation else "")))
            if m.kind == "video":
                rows_media += [("duration", f"{m.duration_s:.2f} s"), ("frame rate", f"{m.fps:g} fps"),
                               ("frames in file", f"{m.frame_count:,}"), ("codec", m.codec or "unknown")]
            rows_media.append(("frames analysed", str(m.frames_analysed)))
        rows_media += [("faces found", str(result.faces)), ("people (tracks)", str(len(result.persons))),
                       ("scan time", f"{result.elapsed_s:.2f} s")]
        rows_model: list[tuple[str, str]] = []
        if result.model is not None:
            mo = result.model
            rows_model = [("name", mo.name), ("architecture", mo.arch), ("version", mo.version),
                          ("sha256", mo.sha256 or "unknown"), ("threshold", f"{mo.threshold:.4f}")]
            if self.user_threshold and self.model_threshold is not None:
                rows_model[-1] = ("threshold", f"{mo.threshold:.4f} (set for this scan)")
                rows_model.append(("model's threshold", f"{self.model_threshold:.4f}"))
            if self.rule:
                rows_model.append(("threshold rule", self.rule))
        rows_model.append(("fakeprobe", __version__))
        return _section("Details", f"<div class='cols'><div><h3>Input</h3>{_dl(rows_media)}</div>"
                                   f"<div><h3>Model</h3>{_dl(rows_model)}</div></div>")


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
    counts: dict[str, int] = {}
    for r, _ in entries:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = " · ".join(f"<b>{counts[v]}</b> {v}" for v in (FAKE, REAL, NO_FACE, ERROR) if counts.get(v))
    rows = []
    for r, name in entries:
        note = r.error.message if r.error else "; ".join(r.warnings[:2])
        rows.append(
            f"<tr class='r-{r.verdict}'><td class='file'><a href='{_e(quote(name))}'>{_e(Path(r.path).name)}</a>"
            f"{_path_line(r.path, 'div', 'muted small')}</td>"
            f"<td><span class='pill' style='border-color:{VERDICT_COLOURS.get(r.verdict, '#000')}'>{_e(r.verdict)}</span></td>"
            f"<td class='num' data-label='p(fake)'>{_p(r.probability)}</td><td class='num' data-label='people'>{len(r.persons)}</td>"
            f"<td class='num' data-label='faces'>{r.faces}</td><td class='small note'>{_e(note)}</td></tr>"
        )
    table = ("<div class='tablewrap'><table><thead><tr><th>file</th><th>verdict</th><th>p(fake)</th><th>people</th>"
             f"<th>faces</th><th>notes</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    body = (f"<header><p class='muted'>fakeprobe {_e(__version__)} · "
            f"{_e(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}</p><h1>Scan reports</h1>"
            f"<p>{len(entries)} file{'s' if len(entries) != 1 else ''}: {summary}</p></header>"
            f"<p class='muted'>FAKE means flagged for human review (p(fake) at or above the threshold). "
            f"Open a file's report for its evidence.</p>{table}")
    return _page("fakeprobe reports", body)


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


def _bar(p: float, thr: float, colour: str) -> str:
    shift = -100 if thr > 0.75 else 0 if thr < 0.25 else -50  # keep the label inside the bar's width
    return (f"<div class='bar' role='img' aria-label='probability {p:.3f}, threshold {thr:.3f}'>"
            f"<div class='fill' style='width:{100 * p:.1f}%;background:{colour}'></div>"
            f"<div class='thr' style='left:{100 * thr:.1f}%'><span style='transform:translateX({shift}%)'>threshold {thr:.3f}</span></div>"
            "<span class='lo'>0 real</span><span class='hi'>1 fake</span></div>")


def _colourbar() -> str:
    from .gradcam import colorize

    stops = colorize(np.linspace(0, 1, 9))
    grad = ", ".join(f"rgb({r},{g},{b})" for r, g, b in stops)
    return (f"<div class='cbar'><span>little</span><div style='background:linear-gradient(to right, {grad})'></div>"
            "<span>most fake evidence</span></div>")


def _path_line(path: str, tag: str, cls: str) -> str:
    """The full path under a file name, when it says more than the name."""
    return "" if Path(path).name == path else f"<{tag} class='{cls}'>{_e(path)}</{tag}>"


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl class='meta'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows) + "</dl>"


def _section(title: str, body: str) -> str:
    if not body:
        return ""
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta name='referrer' content='no-referrer'><title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


_FOOTER = ("<footer class='muted small'><p>fakeprobe is a triage tool: it ranks faces for human review and can be wrong in "
           "both directions (heavy compression, small faces, retouched photos and manipulation methods unlike its training "
           "data are known weak spots; see the model card). This page is self-contained: it loads nothing from the network.</p></footer>")

_CSS = """
:root{--fg:#1b1b1b;--muted:#5a5a5a;--line:#d9d9d9;--card:#f7f7f5}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
main{max-width:1100px;margin:0 auto;padding:16px 18px 32px}
h1{font-size:1.45rem;margin:.1em 0;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:1.4em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:.2em 0 .4em}
p{margin:.45em 0}
img{max-width:100%;height:auto}
figure{margin:0}
.muted{color:var(--muted)}
.small{font-size:.85rem}
.path{font-size:.85rem;overflow-wrap:anywhere;margin-top:0}
.verdict{border-left:12px solid #777;padding:12px 18px 14px;border-radius:6px;margin:14px 0;background:#f1f1f1}
.v-FAKE{border-color:#D55E00;background:#fcede3}
.v-REAL{border-color:#0072B2;background:#e6f1f9}
.v-NO_FACE{border-color:#777;background:#f1f1f1}
.v-ERROR{border-color:#000;background:#ececec}
.word{font-size:2.3rem;font-weight:800;letter-spacing:.05em;line-height:1.1}
.sub{font-size:1.1rem;font-weight:600;margin-bottom:.4em}
.big{font-size:1.15rem}
.rule{max-width:75ch}
.bar{position:relative;height:24px;background:#fff;border:1px solid #999;border-radius:4px;margin:30px 0 26px;max-width:560px}
.bar .fill{position:absolute;left:0;top:0;bottom:0;border-radius:3px 0 0 3px}
.bar .thr{position:absolute;top:-6px;bottom:-6px;width:0;border-left:3px dashed #000}
.bar .thr span{position:absolute;bottom:100%;left:0;font-size:.78rem;white-space:nowrap;font-weight:600}
.bar .lo,.bar .hi{position:absolute;top:100%;font-size:.72rem;color:var(--muted);margin-top:2px}
.bar .lo{left:0}.bar .hi{right:0}
ul.warn{background:#fff5d9;border-left:6px solid #E69F00;padding:8px 12px 8px 30px;margin:0;border-radius:4px}
p.error{background:#ececec;border-left:6px solid #000;padding:8px 12px;overflow-wrap:anywhere}
.timeline{display:block;width:100%;max-width:1000px;border:1px solid var(--line);border-radius:4px}
.person{border:1px solid var(--line);border-top:6px solid #000;border-radius:8px;padding:10px 12px;margin:12px 0;background:var(--card)}
.glyph{font-size:1.1em}
.pill{display:inline-block;padding:0 8px;border:2px solid #000;border-radius:10px;font-weight:700;font-size:.85rem;background:#fff}
.tag{display:inline-block;padding:0 6px;border-radius:4px;background:#1b1b1b;color:#fff;font-size:.78rem;margin-left:4px}
.strip{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}
.thumb{width:84px;text-align:center;font-size:.75rem;line-height:1.25}
.thumb img{display:block;width:84px;height:84px;border:3px solid transparent;border-radius:4px}
.thumb.hi img{border-color:#000}
.thumb .flag{display:block;font-size:.62rem;font-weight:800;letter-spacing:.08em}
.cams{display:flex;flex-wrap:wrap;gap:16px;margin-top:8px}
.cam{flex:1 1 300px;max-width:420px;min-width:0}
.cam .pair{display:flex;gap:4px}
.cam .pair img{width:50%;min-width:0;border-radius:4px}
.cam figcaption{font-size:.85rem;margin-top:4px}
.cbar{display:flex;align-items:center;gap:8px;font-size:.8rem;max-width:420px;margin:6px 0}
.cbar div{flex:1;height:12px;border-radius:3px;border:1px solid #999}
.frame img{display:block;border-radius:4px;max-width:100%}
.frame figcaption{font-size:.85rem;margin-top:4px}
.stills{display:flex;flex-wrap:wrap;gap:8px}
.still{flex:0 1 200px;text-align:center;font-size:.8rem}
.cols{display:flex;flex-wrap:wrap;gap:12px 32px}
.cols>div{flex:1 1 320px;min-width:0}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:3px 14px;margin:0;font-size:.92rem}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere;font-variant-numeric:tabular-nums}
footer{margin-top:2em;border-top:1px solid var(--line);padding-top:.6em}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.file{overflow-wrap:anywhere;min-width:10em}
tr.r-FAKE td:first-child{border-left:6px solid #D55E00}
tr.r-REAL td:first-child{border-left:6px solid #0072B2}
tr.r-NO_FACE td:first-child{border-left:6px solid #777}
tr.r-ERROR td:first-child{border-left:6px solid #000}
@media (max-width:640px){thead{display:none}table,tbody,tr,td{display:block}
 tr{border-bottom:1px solid var(--line);border-left:6px solid #000;padding:6px 0 8px 6px}
 tr.r-FAKE{border-left-color:#D55E00}tr.r-REAL{border-left-color:#0072B2}tr.r-NO_FACE{border-left-color:#777}
 td,td.num{border:0;padding:1px 4px;text-align:left}tr[class] td:first-child{border-left:0}
 td.num{display:inline-block;margin-right:12px}td[data-label]::before{content:attr(data-label) " ";color:var(--muted)}}
@media (max-width:640px){main{padding:10px 10px 24px}.word{font-size:1.9rem}.thumb{width:72px}.thumb img{width:72px;height:72px}
 .verdict{padding:10px 12px 12px;border-left-width:8px}dl.meta{grid-template-columns:minmax(0,40%) minmax(0,1fr)}}
"""
