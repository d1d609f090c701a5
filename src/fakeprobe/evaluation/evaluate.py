"""``fakeprobe eval``: labelled videos/images -> video- and frame-level metrics, per method,
optionally again under re-compression perturbations."""
from __future__ import annotations

import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.files import regular_file
from ..core.results import ERROR, NO_FACE
from ..media.inputs import expand_inputs
from ..model.metrics import compute_metrics
from ..train.extract import Labelled, label_inputs, read_labels_csv


@dataclass(frozen=True)
class Perturbation:
    kind: str  # clean | crf | scale | jpeg
    value: float = 0.0

    @property
    def name(self) -> str:
        return "clean" if self.kind == "clean" else f"{self.kind}={self.value:g}"


def parse_perturbations(specs: list[str]) -> list[Perturbation]:
    """``crf=23,30,40``, ``scale=0.5``, ``jpeg=40`` (several values per spec allowed)."""
    out = []
    for spec in specs:
        kind, _, values = spec.partition("=")
        kind = kind.strip().lower()
        if kind not in ("crf", "scale", "jpeg") or not values:
            raise ValueError(f"bad --perturb {spec!r}: expected crf=N[,N…], scale=F or jpeg=Q")
        for v in values.split(","):
            try:
                x = float(v)
            except ValueError:
                raise ValueError(f"bad --perturb value {v!r} in {spec!r}") from None
            if (kind == "crf" and not 0 <= x <= 51) or (kind == "scale" and not 0 < x <= 1) or (kind == "jpeg" and not 1 <= x <= 100):
                raise ValueError(f"--perturb {kind}={v} out of range")
            out.append(Perturbation(kind, x))
    return out


def perturb_file(src: Path, p: Perturbation, workdir: Path) -> Path:
    """A perturbed copy of a video or image (videos are re-encoded with H.264)."""
    import av
    import cv2

    from ..media.images import IMAGE_SUFFIXES, load_image
    from ..media.synth import write_video
    from ..train.augment import jpeg

    def apply(img: np.ndarray) -> np.ndarray:
        if p.kind == "scale":
            h, w = img.shape[:2]
            return cv2.resize(img, (max(2, int(w * p.value) // 2 * 2), max(2, int(h * p.value) // 2 * 2)), interpolation=cv2.INTER_AREA)
        if p.kind == "jpeg":
            return jpeg(img, int(p.value))
        return img

    regular_file(src)  # a FIFO or device named like a video is refused, never opened
    dst = workdir / f"{src.stem}.{p.kind}{p.value:g}{'.png' if src.suffix.lower() in IMAGE_SUFFIXES else '.mp4'}"
    if src.suffix.lower() in IMAGE_SUFFIXES:
        img = apply(load_image(src, 8192 * 8192))
        if p.kind == "crf":
            img = jpeg(img, max(5, int(100 - 2 * p.value)))  # stills have no CRF: a comparable JPEG
        cv2.imwrite(str(dst), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        return dst
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = []
        for f in c.decode(stream):
            img = f.to_ndarray(format="rgb24")
            rot = int(round(-float(getattr(f, "rotation", 0) or 0))) % 360
            img = np.ascontiguousarray(np.rot90(img, k=-(rot // 90))) if rot else img
            img = apply(img)
            h, w = img.shape[:2]
            frames.append(img[: h // 2 * 2, : w // 2 * 2])
    crf = int(p.value) if p.kind == "crf" else 12  # other perturbations: near-lossless re-encode
    return write_video(dst, frames, fps, crf=crf, gop=max(1, int(fps * 2)))


def collect(inputs: list[str], labels_csv: str | None) -> list[Labelled]:
    items = read_labels_csv(Path(labels_csv)) if labels_csv else []
    if inputs:
        items += label_inputs(expand_inputs(inputs), None)
    if not items:
        raise ValueError("nothing to evaluate: give labelled folders (real/ fake/ or FF++ layout) or --labels CSV")
    return items


def _scan_all(detector, items: list[Labelled], p: Perturbation, progress: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fakeprobe-eval-") as tmp:
        for i, it in enumerate(items):
            path = it.path
            if p.kind != "clean":
                try:
                    path = perturb_file(it.path, p, Path(tmp))
                except Exception as exc:  # unreadable input: reported like a scan error
                    rows.append({"path": str(it.path), "label": it.label, "method": it.method, "verdict": ERROR, "error": str(exc)})
                    continue
            r = detector.scan(path)
            if progress:
                print(f"[{p.name} {i + 1}/{len(items)}] {it.path.name}: {r.verdict} {r.probability}", file=sys.stderr, flush=True)
            rows.append({
                "path": str(it.path), "label": it.label, "method": it.method, "verdict": r.verdict, "probability": r.probability,
                "video_logit": max((x.logit for x in r.persons if x.decides), default=None),
                "face_logits": [d.logit for d in r.detections], "error": r.error.message if r.error else None,
            })
            if p.kind != "clean" and path != it.path:
                path.unlink(missing_ok=True)
    return rows


def summarise(rows: list[dict], threshold: float) -> dict:
    """Video-level and frame-level metrics, overall and per method (each method vs all reals)."""
    scored = [r for r in rows if r["verdict"] not in (ERROR, NO_FACE)]
    def level(sel):
        y = np.array([1 if r["label"] == "fake" else 0 for r in sel])
        z = np.array([r["video_logit"] for r in sel], dtype=np.float64)
        fy = np.array([1 if r["label"] == "fake" else 0 for r in sel for _ in r["face_logits"]])
        fz = np.array([z_ for r in sel for z_ in r["face_logits"]], dtype=np.float64)
        return {"video": compute_metrics(y, z, threshold=threshold), "frame": compute_metrics(fy, fz, threshold=threshold)}

    out = {"all": level(scored), "skipped": {"no_face": sum(r["verdict"] == NO_FACE for r in rows), "error": sum(r["verdict"] == ERROR for r in rows)}}
    reals = [r for r in scored if r["label"] == "real"]
    methods = sorted({r["method"] for r in scored if r["label"] == "fake" and r["method"]})
    out["methods"] = {m: level(reals + [r for r in scored if r["label"] == "fake" and r["method"] == m]) for m in methods}
    return out


def roc_png(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    sel = [r for r in rows if r["verdict"] not in (ERROR, NO_FACE)]
    y = [1 if r["label"] == "fake" else 0 for r in sel]
    if len(set(y)) < 2:
        return
    fpr, tpr, _ = roc_curve(y, [r["video_logit"] for r in sel])
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot(fpr, tpr, color="#0072B2", lw=2, label="video level")
    ax.plot([0, 1], [0, 1], color="#999999", ls="--", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_table(report: dict) -> str:
    lines = [f"{'condition':<12} {'level':<6} {'n':>5} {'AUC':>6} {'AP':>6} {'EER':>6} {'ACC':>6} {'logloss':>8}"]
    for cond, res in report["conditions"].items():
        for lvl in ("video", "frame"):
            m = res["all"][lvl]
            lines.append(f"{cond:<12} {lvl:<6} {m['n']:>5} {m['auc']:>6.3f} {m['ap']:>6.3f} {m['eer']:>6.3f} {m['acc']:>6.3f} {m['logloss']:>8.3f}")
        for method, mres in res["methods"].items():
            m = mres["video"]
            lines.append(f"{'  ' + method:<12} {'video':<6} {m['n']:>5} {m['auc']:>6.3f} {m['ap']:>6.3f} {m['eer']:>6.3f} {m['acc']:>6.3f} {m['logloss']:>8.3f}")
    return "\n".join(lines)


def _json_safe(o):
    """Undefined metrics (nan: AUC of one class, anything of no inputs) as null: NaN is not JSON."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    return o


def evaluate(detector, inputs: list[str], out: Path | None, *, labels_csv: str | None = None,
             perturbations: list[Perturbation] | None = None, progress: bool = True) -> dict:
    items = collect(inputs, labels_csv)
    conditions = [Perturbation("clean")] + list(perturbations or [])
    threshold = detector.threshold
    report = {"model": detector.model_record().__dict__, "threshold": threshold, "n_inputs": len(items), "conditions": {}, "rows": {}}
    for p in conditions:
        rows = _scan_all(detector, items, p, progress)
        report["conditions"][p.name] = summarise(rows, threshold)
        report["rows"][p.name] = [{k: v for k, v in r.items() if k != "face_logits"} for r in rows]
        if out and p.kind == "clean":
            out.mkdir(parents=True, exist_ok=True)
            roc_png(rows, out / "roc.png", f"ROC ({len(items)} inputs)")
    report["table"] = format_table(report)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(_json_safe(report), indent=2, default=str, allow_nan=False))
    return report
