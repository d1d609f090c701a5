"""The dev benchmark: run it before every model decision (issue: detection quality).

Held-out real files of every source in ../shared/data (the cal and test splits of
``fakeprobe.train.splits``: tv_faces clips, UTKFace photos, talking-head clip families), scored as
``scan`` scores them, give the false positives at each model's threshold; blended fakes made
from held-out real videos (self-blended ``sbi`` and other-person ``cross``), beside the same real
videos through the same decode and encode (``none``), and the ``clips/fake`` talking heads give
the AUC, clean (CRF 18) and re-encoded at CRF 23 and 40.

    python benchmarks/bench_quality.py --model shipped=src/fakeprobe/model/weights/default.safetensors \\
        --model new=runs/main/best.safetensors --calibrate new --write-calibrated new=runs/main/calibrated.safetensors \\
        --loso tv_faces=runs/loso_tv/best.safetensors --out runs/devbench/report.md

Every stage is cached under ``--work`` (fakes, re-encodes, crops per file and condition, logits
per model), so a rerun with another model only classifies crops. ``--calibrate NAME`` sets that
model's temperature (video level, cal split, fakes included) and threshold (the lowest that flags
at most 5 % of the cal split's real files of every source) before the report. LOSO models were
trained without their source: their threshold is set on the cal split of the other sources and
their flagged share is measured on every held-out file of the left-out source (with
``--loso-every-split`` its train split's files too: a small source is then measured on all its files).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from fakeprobe.core.config import ScanConfig
from fakeprobe.evaluation.evaluate import Perturbation, perturb_file
from fakeprobe.evaluation.fakeclips import FaceGeometry, blend_video
from fakeprobe.evaluation.heldout import CachedScorer, FileCrops, analyse_crops
from fakeprobe.faces.crop import CUT_SIZE
from fakeprobe.model.calibration import fit_temperature, threshold_by_source
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.model.metrics import compute_metrics
from fakeprobe.scan.analysis import Analyzer
from fakeprobe.train.splits import CAL, CLIP_FAMILIES, TEST, TRAIN, source_of, split_of, split_seed_of

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ("clean", "crf=23", "crf=40")
FIELDS = ["path", "label", "kind", "source", "split", "condition", "origin"]
MIN_PAIRS = 10  # real and fake cal videos needed to fit a temperature (else 1.0)


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    label: int  # 0 real, 1 fake
    kind: str  # orig (a real file as found), none (real, re-encoded like the fakes), sbi, cross, talking_head
    source: str
    split: str
    condition: str
    origin: str  # the real file it was made from


def _every(items: list, n: int) -> list:
    """At most ``n`` items spread evenly (deterministic)."""
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def source_files(data: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The talking-head clips, tv_faces clips and UTKFace photos of the data folder, sorted."""
    return (sorted((data / "clips" / "real").iterdir()), sorted((data / "tv_faces").glob("*.mp4")),
            sorted((data / "utkface").glob("*.jpg")))


def real_files(data: Path, photos_per_split: int, tv_per_split: int, seen: set[str] = frozenset(),
               every_split: set[str] = frozenset()) -> list[Entry]:
    """The held-out real files (cal and test splits) that no model here trained on (``seen``:
    names): every talking-head clip, tv_faces clips and UTKFace photos thinned evenly to
    ``tv_per_split`` (5/7 of it in cal) and ``photos_per_split``. The sources in ``every_split``
    (left out of training) also give their train split's files, thinned as the test split's."""
    out = []
    clips, tv, utk = source_files(data)
    for split in (CAL, TEST, TRAIN):
        def held(paths):
            return [p for p in paths if split_of(p) == split and p.name not in seen
                    and (split != TRAIN or source_of(p) in every_split)]
        n_tv = tv_per_split * 5 // 7 if split == CAL else tv_per_split
        for p in _every(held(tv), n_tv) + held(clips) + _every(held(utk), photos_per_split):
            out.append(Entry(str(p), 0, "orig", source_of(p), split, "clean", str(p)))
    example = REPO / "examples" / "astronaut.mp4"
    out.append(Entry(str(example), 0, "orig", "example", TEST, "clean", str(example)))
    return out


def trained_files(weights: Path, files: list[Path]) -> set[str]:
    """Names of the real ``files`` (talking-head clips, tv_faces clips, photos) a checkpoint was
    trained on, from what its metadata records: the list itself, or the recipe's rule (today's:
    the train split of the sources it trained on, split with its ``split_seed``, or before that
    was recorded with its own ``seed``; v1's: every clip but its validation videos). Figures leave
    these out; a fine-tuned model also carries its start's (``--trained-by``)."""
    return _trained_files(load_checkpoint(weights).meta.training, files)


def _trained_files(training: dict, files: list[Path]) -> set[str]:
    if "ensemble_of" in training:  # a packed ensemble: every member's
        return set().union(*(_trained_files(m["training"], files) for m in training["ensemble_of"]))
    if training.get("train_clips"):
        return set(training["train_clips"])
    if "sources" in training:  # today's recipe: the train split of fakeprobe.train.splits
        excluded = set(training.get("exclude_sources") or [])
        sources = set(training["sources"]) if isinstance(training["sources"], dict) else None
        seed = split_seed_of(training)
        return {p.name for p in files if source_of(p) not in excluded and (sources is None or source_of(p) in sources)
                and split_of(p, seed) == TRAIN}
    return {p.name for p in files if source_of(p) in CLIP_FAMILIES.values()} - set(training.get("val_videos") or [])


def _seed(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def make_fakes(reals: list[Entry], work: Path, tv_per_split: int, log) -> list[Entry]:
    """For chosen held-out real videos: none/sbi/cross versions at CRF 18, then re-encodes."""
    geometry = FaceGeometry()
    out = []
    for split in (CAL, TEST):
        videos = [e for e in reals if e.split == split and e.source not in ("utkface", "example")]
        chosen = _every([e for e in videos if e.source == "tv_faces"], tv_per_split) + [e for e in videos if e.source != "tv_faces"]
        for i, e in enumerate(chosen):
            donor_entry = chosen[(i + len(chosen) // 2) % len(chosen)]  # another group, usually another person
            for kind in ("none", "sbi", "cross"):
                dst = work / "fakes" / split / f"{Path(e.path).stem}.{kind}.mp4"
                if not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        donor = None
                        if kind == "cross":
                            from fakeprobe.evaluation.fakeclips import read_frames
                            donor = geometry.donor(read_frames(Path(donor_entry.path), 8, 960)[0])
                            if donor is None:
                                continue
                        part = dst.with_suffix(".part.mp4")  # renamed when complete: an interrupted run leaves no half file
                        n = blend_video(Path(e.path), part, kind, seed=_seed(e.path + kind), geometry=geometry, donor=donor)
                        if kind != "none" and n == 0:
                            part.unlink()
                            continue
                        part.replace(dst)
                    except Exception as exc:  # a clip the generator cannot use is left out, and said so
                        log(f"fake {kind} of {e.path}: {exc}")
                        dst.unlink(missing_ok=True)
                        continue
                out.append(Entry(str(dst), 0 if kind == "none" else 1, kind, e.source, split, "clean", e.path))
        log(f"{split}: fakes made for {len(chosen)} real videos")
    for p in sorted((DATA / "clips" / "fake").iterdir()):
        split = split_of(p, holdout=(0.5, 0.5))
        out.append(Entry(str(p), 1, "talking_head", "clips_fake", split if split != "train" else TEST, "clean", str(p)))
    return out


def perturbed(entries: list[Entry], work: Path, log) -> list[Entry]:
    """Re-encoded copies of the test split's videos (calibration uses the clean cal split only)."""
    entries = [e for e in entries if e.split == TEST]
    out = []
    for cond in CONDITIONS[1:]:
        p = Perturbation("crf", float(cond.split("=")[1]))
        folder = work / "perturbed" / cond
        folder.mkdir(parents=True, exist_ok=True)
        for e in entries:
            name = f"{_seed(e.path):08x}_{Path(e.path).stem}"
            done = list(folder.glob(name + ".*"))
            if not done:
                try:
                    tmp = perturb_file(Path(e.path), p, folder)
                    done = [tmp.rename(folder / f"{name}{tmp.suffix}")]
                except Exception as exc:
                    log(f"{cond} of {e.path}: {exc}")
                    continue
            out.append(dataclasses.replace(e, path=str(done[0]), condition=cond))
        log(f"{cond}: {len(out)} files so far")
    return out


def crops_of(entries: list[Entry], work: Path, log, shard: tuple[int, int] = (0, 1), analyse: bool = True) -> dict[str, FileCrops]:
    """Cached analysis of every file (sampled frames, faces, tracks, crops), as scan does it;
    with ``shard`` (i, n) only every n-th file from the i-th (to analyse in n processes at once);
    with ``analyse=False`` only the files analysed already."""
    analyzer = Analyzer(ScanConfig())
    folder = work / "crops"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    t0 = time.time()
    for i, e in enumerate(entries):
        if i % shard[1] != shard[0]:
            continue
        cache = folder / f"{_seed(e.path):08x}_{Path(e.path).stem}.npz"
        if not analyse and not cache.exists():
            continue
        if cache.exists():
            fc = FileCrops.load(cache)
        else:
            fc = analyse_crops(analyzer, Path(e.path), CUT_SIZE, 1.3)  # shrunk exactly to scan's crops for smaller inputs
            part = cache.with_suffix(".part.npz")
            fc.save(part)
            part.replace(cache)
        out[e.path] = fc
        if (i + 1) % 200 == 0:
            log(f"analysed {i + 1}/{len(entries)} ({time.time() - t0:.0f} s)")
    return out


def logits_key(ckpt) -> str:
    """The name of a checkpoint's logits cache: a hash of what decides its raw logits, its tensors
    and the inference fields of its metadata. Not its temperature, threshold, name or training
    record, so a copy with a new calibration (``--write-calibrated``) reuses its source's logits
    instead of classifying every file again."""
    meta = dataclasses.asdict(ckpt.meta)
    for field in ("temperature", "threshold", "name", "version", "training"):
        meta.pop(field)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(ckpt.state_dict):
        t = ckpt.state_dict[key]
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return "w" + h.hexdigest()[:16]


def logits_cache(ckpt, work: Path, suffix: str = "") -> tuple[Path, Path | None]:
    """Where a checkpoint's logits cache belongs (under its ``logits_key``) and where one exists
    now: there, or under the file's hash (caches written before ``logits_key``), or None."""
    cache = work / "logits" / f"{logits_key(ckpt)}{suffix}.json"
    older = work / "logits" / f"{ckpt.sha256[:16]}{suffix}.json"
    return cache, next((p for p in (cache, older) if p.exists()), None)


def model_logits(name: str, weights: Path, entries: list[Entry], crops: dict[str, FileCrops], work: Path, log,
                 tta: str = "none") -> dict[str, float | None]:
    """Raw file logits of one model, cached under its ``logits_key``; with ``tta="mirror"`` the mean of
    its file logits on the crops as cut and mirrored left to right (each cached)."""
    if tta == "mirror":
        plain = model_logits(name, weights, entries, crops, work, log)
        mirrored = model_logits(name, weights, entries, crops, work, log, tta="mirrored")
        return {p: None if z is None or mirrored[p] is None else (z + mirrored[p]) / 2 for p, z in plain.items()}
    ckpt = load_checkpoint(weights)
    cache, found = logits_cache(ckpt, work, "-mirrored" if tta == "mirrored" else "")
    known = json.loads(found.read_text()) if found else {}
    todo = [e for e in entries if e.path not in known]
    if todo:
        scorer = CachedScorer(ckpt, mirrored=tta == "mirrored")
        t0 = time.time()
        for e in todo:
            known[e.path] = scorer.file_logit(crops[e.path])
        log(f"{name}: {len(todo)} files classified in {time.time() - t0:.0f} s")
    if todo or found != cache:  # also moves a cache found under the file's hash to its logits_key
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return {e.path: known[e.path] for e in entries}


@dataclasses.dataclass
class Calibration:
    temperature: float
    threshold: float  # on the calibrated probability
    per_source: dict[str, float]


def _prob(z: float, t: float) -> float:
    return float(1 / (1 + np.exp(-z / t)))


def calibrate(entries: list[Entry], logits: dict, fpr: float, exclude: str | None = None) -> Calibration:
    """Temperature from the cal split's real and fake videos (video logits, clean), threshold from
    the cal split's real files of every source (but ``exclude``)."""
    cal = [e for e in entries if e.split == CAL and e.condition == "clean" and logits[e.path] is not None and e.source != exclude]
    pairs = [e for e in cal if e.kind in ("none", "sbi", "cross")]
    labels = np.array([e.label for e in pairs])
    # a handful of well-separated pairs drives the fit to its bound (everything 0 or 1); the
    # flagged shares do not depend on the temperature, only the printed threshold does
    enough = min((labels == 0).sum(), (labels == 1).sum()) >= MIN_PAIRS
    t = fit_temperature(np.array([logits[e.path] for e in pairs]), labels) if enough else 1.0
    by_source: dict[str, list[float]] = defaultdict(list)
    for e in cal:
        if e.kind == "orig":
            by_source[e.source].append(logits[e.path] / t)
    threshold, per_source = threshold_by_source({s: np.array(z) for s, z in by_source.items()}, fpr)
    return Calibration(t, threshold, per_source)


def flagged(entries: list[Entry], logits: dict, cal: Calibration, split: str | tuple = TEST, kind: str = "orig",
            condition: str = "clean") -> dict[str, tuple[int, int]]:
    """Per source: (flagged, scored) real files of ``kind`` (orig: as found; none: through the
    fakes' encode) under ``condition``, at the calibrated threshold."""
    splits = (split,) if isinstance(split, str) else split
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in entries:
        if e.kind == kind and e.condition == condition and e.split in splits and logits[e.path] is not None:
            out[e.source][0] += _prob(logits[e.path], cal.temperature) >= cal.threshold
            out[e.source][1] += 1
    return {s: (a, b) for s, (a, b) in sorted(out.items())}


def fakes_flagged(entries: list[Entry], logits: dict, cal: Calibration, condition: str = "clean",
                  split: str = TEST) -> tuple[int, int]:
    """(flagged, scored) fakes of ``split`` (every kind) under ``condition``, at the calibrated threshold."""
    z = [logits[e.path] for e in entries if e.label == 1 and e.split == split and e.condition == condition]
    z = [v for v in z if v is not None]
    return sum(_prob(v, cal.temperature) >= cal.threshold for v in z), len(z)


def aucs(entries: list[Entry], logits: dict) -> dict[tuple[str, str], float]:
    """Test-split video AUC per condition and fake kind (each against the re-encoded reals)."""
    out = {}
    for cond in CONDITIONS:
        sel = [e for e in entries if e.split == TEST and e.condition == cond and logits[e.path] is not None]
        reals = [e for e in sel if e.kind == "none"]
        for kind in ("sbi", "cross", "talking_head", "all"):
            fakes = [e for e in sel if e.label == 1 and (kind == "all" or e.kind == kind)]
            if fakes and reals:
                y = [0] * len(reals) + [1] * len(fakes)
                z = [logits[e.path] for e in reals + fakes]
                out[(cond, kind)] = compute_metrics(y, z)["auc"]
    return out


def write_calibrated(weights: Path, cal: Calibration, dst: Path, fpr: float) -> str:
    ckpt = load_checkpoint(weights)
    meta = ckpt.meta
    meta.temperature, meta.threshold = float(cal.temperature), float(cal.threshold)
    meta.training = {**meta.training, "threshold_rule": (
        f"lowest threshold flagging at most {fpr:g} of the real files of every source in the dev benchmark's cal split "
        f"(per source: {', '.join(f'{s} {t:.3f}' for s, t in sorted(cal.per_source.items()))}); "
        f"temperature fitted on cal-split video logits (real, self- and cross-blended videos)")}
    return ckpt.save_as(dst, meta)


def report(models: dict, loso: dict, entries: list[Entry], logits: dict, cals: dict, loso_cals: dict,
           loso_entries: dict | None = None, every_split: bool = False) -> str:
    """The markdown table: each compared model on ``entries``; each LOSO model's left-out source
    on its own entries (``loso_entries``, default ``entries``): its cal and test files, and with
    ``every_split`` its train split's too (none of them trained on or setting its threshold)."""
    lines = model_table(models, entries, logits, cals) if models else []
    if loso:
        splits = (CAL, TEST, TRAIN) if every_split else (CAL, TEST)
        which = "cal + test + train" if every_split else "cal + test"
        lines += [""] if lines else []
        lines += [f"| left-out source | model | threshold (set without it) | its real files flagged ({which}) |", "|---|---|---|---|"]
        for source, name in loso.items():
            own = (loso_entries or {}).get(name, entries)
            a, b = flagged(own, logits[name], loso_cals[name], splits).get(source, (0, 0))
            lines.append(f"| {source} | {name} | {loso_cals[name].threshold:.3f} | {a}/{b} ({100 * a / max(b, 1):.1f} %) |")
    return "\n".join(lines)


def model_table(models: dict, entries: list[Entry], logits: dict, cals: dict) -> list[str]:
    lines = ["| check | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines.append("| temperature / threshold | " + " | ".join(f"{cals[m].temperature:.3f} / {cals[m].threshold:.3f}" for m in models) + " |")
    fl = {m: flagged(entries, logits[m], cals[m]) for m in models}
    sources = sorted({s for m in models for s in fl[m]})
    for s in sources + ["all"]:
        cells = []
        for m in models:
            a, b = (sum(x[0] for x in fl[m].values()), sum(x[1] for x in fl[m].values())) if s == "all" else fl[m].get(s, (0, 0))
            cells.append(f"{a}/{b} ({100 * a / b:.1f} %)" if b else "–")
        lines.append(f"| real flagged, test, {s} | " + " | ".join(cells) + " |")
    for cond in CONDITIONS:  # the real videos behind the AUC rows, through the same encodes
        cells = []
        for m in models:
            counts = flagged(entries, logits[m], cals[m], kind="none", condition=cond).values()
            cells.append(f"{sum(a for a, _ in counts)}/{sum(b for _, b in counts)}")
        lines.append(f"| real videos re-encoded ({cond}) flagged | " + " | ".join(cells) + " |")
    for cond in CONDITIONS:  # what the threshold catches: a higher threshold trades these for fewer real files flagged
        cells = []
        for m in models:
            a, b = fakes_flagged(entries, logits[m], cals[m], cond)
            cells.append(f"{a}/{b} ({100 * a / b:.0f} %)" if b else "–")
        lines.append(f"| fakes flagged, test ({cond}) | " + " | ".join(cells) + " |")
    au = {m: aucs(entries, logits[m]) for m in models}
    for cond in CONDITIONS:
        for kind in ("sbi", "cross", "talking_head", "all"):
            if all((cond, kind) in au[m] for m in models):
                lines.append(f"| AUC {cond}, {kind} | " + " | ".join(f"{au[m][(cond, kind)]:.3f}" for m in models) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=WEIGHTS")
    ap.add_argument("--loso", action="append", default=[], metavar="SOURCE=WEIGHTS", help="a model trained without SOURCE")
    ap.add_argument("--loso-every-split", action="store_true",
                    help="a left-out source's train-split files count too (thinned as its test split; none that a "
                         "compared model trained on): a small source is then measured on all its files")
    ap.add_argument("--calibrate", action="append", default=[], metavar="NAME", help="recalibrate this model on the cal split")
    ap.add_argument("--write-calibrated", metavar="NAME=FILE", help="write that --calibrate model with its new calibration")
    ap.add_argument("--work", default="runs/devbench")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--photos", type=int, default=300, help="UTKFace photos per held-out split")
    ap.add_argument("--tv-reals", type=int, default=210, help="tv_faces clips per held-out split")
    ap.add_argument("--tv-fakes", type=int, default=40, help="tv_faces videos per split that get blended fakes")
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--prepare-only", action="store_true", help="make the files and crops, score nothing")
    ap.add_argument("--reals-only", action="store_true",
                    help="held-out real files only, no fakes and no AUC: the false positives and --loso rows of models whose "
                         "lineage saw other clips than the compared models' (e.g. LOSO runs from ImageNet)")
    ap.add_argument("--shard", default="0/1", metavar="I/N", help="with --prepare-only: analyse only this share of the files")
    ap.add_argument("--analysed-only", action="store_true", help="score only the files whose analysis is cached")
    ap.add_argument("--trained-by", action="append", default=[], metavar="WEIGHTS",
                    help="also leave out the clips this checkpoint trained on (e.g. the start of a fine-tune)")
    ap.add_argument("--tta", choices=("none", "mirror"), default="none",
                    help="mirror: every model scores each file as the mean of its crops as cut and mirrored (what "
                         "test-time mirror averaging would give; scan does not mirror, so not with --write-calibrated)")
    ap.add_argument("--out", help="write the markdown table here")
    args = ap.parse_args(argv)
    if args.tta != "none" and args.write_calibrated:
        ap.error("--write-calibrated calibrates for scan, which does not mirror: leave out --tta")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    models = dict(m.split("=", 1) for m in args.model)
    loso = dict(m.split("=", 1) for m in args.loso)
    files = [p for group in source_files(Path(args.data)) for p in group]
    # compared models are scored on the same files: none that any of them trained on. A LOSO model
    # is scored on its own: it leaves out what it trained on (never its left-out source)
    seen = set().union(*(trained_files(Path(w), files) for w in [*models.values(), *args.trained_by]))
    loso_seen = {f"without {s}": trained_files(Path(w), files) for s, w in loso.items()}
    held_out = {p.name for p in files if split_of(p) != TRAIN}
    log(f"leaving out the {len(seen)} real files that a compared model (or its start) trained on, "
        f"{len(seen & held_out)} of them in the cal and test splits")
    reals = real_files(Path(args.data), args.photos, args.tv_reals, seen, set(loso) if args.loso_every_split else set())
    if args.reals_only:
        entries = reals
    else:
        fakes = make_fakes(real_files(Path(args.data), 0, 10**6, seen), work, args.tv_fakes, log)  # among all held-out videos
        entries = reals + fakes + perturbed(fakes, work, log)
    with open(work / ("files_reals_only.csv" if args.reals_only else "files.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(dataclasses.asdict(e) for e in entries)
    log(f"{len(entries)} files ({len(reals)} held-out reals as found)")
    i, n = (int(x) for x in args.shard.split("/"))
    crops = crops_of(entries, work, log, (i, n) if args.prepare_only else (0, 1), analyse=not args.analysed_only)
    if args.prepare_only:
        return 0
    if args.analysed_only:
        log(f"scoring the {len(crops)} of {len(entries)} files analysed so far")
        entries = [e for e in entries if e.path in crops]
    loso_models = {f"without {s}": w for s, w in loso.items()}
    logits = {n: model_logits(n, Path(w), entries, crops, work, log, args.tta) for n, w in models.items()}
    # a LOSO model needs only what its calibration and its flagged share use
    needed = [e for e in entries if e.condition == "clean" and (e.kind == "orig" or e.split == CAL)]
    logits.update({n: defaultdict(lambda: None, model_logits(n, Path(w), needed, crops, work, log, args.tta))
                   for n, w in loso_models.items()})
    cals = {}
    for n, w in models.items():
        if n in args.calibrate:
            cals[n] = calibrate(entries, logits[n], args.fpr)
        else:
            meta = load_checkpoint(Path(w)).meta
            cals[n] = Calibration(meta.temperature, meta.threshold, {})
    loso_entries = {n: [e for e in entries if Path(e.origin).name not in own] for n, own in loso_seen.items()}
    loso_cals = {f"without {s}": calibrate(loso_entries[f"without {s}"], logits[f"without {s}"], args.fpr, exclude=s) for s in loso}
    if args.write_calibrated:
        name, dst = args.write_calibrated.split("=", 1)
        sha = write_calibrated(Path(models[name]), cals[name], Path(dst), args.fpr)
        log(f"wrote {args.write_calibrated} (sha256 {sha}): temperature {cals[name].temperature:.3f}, threshold {cals[name].threshold:.4f}")
    table = report(models, {s: f"without {s}" for s in loso}, entries, logits, cals, loso_cals, loso_entries,
                   args.loso_every_split)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
