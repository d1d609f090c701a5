#!/usr/bin/env python3
"""Face recall of the scan's detection schedule: full search on every sampled frame vs the schedule.

    python benchmarks/bench_recall.py [--every 4] [--out BENCHMARKS.md]

By default (``ScanConfig.detect_every=4, look_for_new=True``) MTCNN's full search runs on every
fourth sampled frame and on each frame in between that shows, away from the faces already known,
something its fully searched neighbours do not (``fakeprobe.media.change``); the other frames are searched
only around the faces found in the frames on either side. This checks what that costs in faces
found, against the full search on every frame and against the plain every-n-th schedule without
the check for something new, on two kinds of material:

* **real footage**: every clip in ``../shared/data/clips`` (real, fake and unsure talking heads,
  GIFs included), 32 sampled frames as a scan takes them. There is no ground truth, so the
  reference is the full search on every frame: a face it finds that the schedule does not is a
  miss (same face: IoU >= 0.5).
* **moving faces** (made here, with ground truth): 32-frame 1280x720 clips at 1 frame/s, so that
  every frame is a sampled frame, with 1-4 faces from UTKFace photos, 48-200 px wide, moving by
  0.1-1 face widths per sampled frame, and appearing and disappearing at random frames
  (some for a single frame). A face counts as found when a detection's centre lies inside
  its square and its side is 0.5-2x the square's. Faces visible in only one sampled frame are
  reported apart: a plain schedule misses them when that frame is not fully searched.

Needs ``../shared/data`` (exits 0 with a message when absent). Results go to stdout, and with
``--out`` into the "bench_recall results" section of that file.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data"
CACHE = HERE / ".cache" / "recall"
SIZE = (1280, 720)
FRAMES = 32


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def analyse(path: Path, every: int, look_for_new: bool) -> tuple[list[list[np.ndarray]], float, int]:
    """Per sampled frame, the face boxes in original-frame pixels; the detection time; the number
    of frames that got the full search."""
    from fakeprobe.core.config import ScanConfig
    from fakeprobe.scan.analysis import Analyzer

    cfg = ScanConfig(detect_every=every, look_for_new=look_for_new, frames=FRAMES, max_frame_rounds=0, overlap=False)
    analyzer = Analyzer(cfg)
    detector = analyzer.face_detector
    full = [0]
    detect = detector.detect

    def counted(images):
        full[0] += len(images)
        return detect(images)

    detector.detect = counted
    a = analyzer.analyse(path, keep_images=False)
    return [[f.box / fr.scale for f in fs] for fr, fs in zip(a.frames, a.faces)], a.timings["detect"], full[0]


# -- moving faces with ground truth ---------------------------------------------------------------

def moving_clip(seed: int, photos: list[Path]) -> tuple[Path, list[dict]]:
    """A 32-frame clip (1 fps) and its faces: per face, the frames it is visible in and its square per frame."""
    import cv2

    from fakeprobe.media import synth

    rng = np.random.default_rng(seed)
    w, h = SIZE
    faces = []
    for k in range(int(rng.integers(1, 5))):
        side = int(rng.choice([48, 72, 120, 200]))
        speed = float(rng.choice([0.1, 0.3, 0.6, 1.0])) * side  # pixels per sampled frame
        angle = rng.uniform(0, 2 * np.pi)
        first = int(rng.integers(0, FRAMES - 1))
        last = first if rng.random() < 0.25 else int(rng.integers(first, FRAMES))  # some visible for one frame only
        start = rng.uniform([side, side], [w - 2 * side, h - 2 * side])
        photo = cv2.cvtColor(cv2.imread(str(photos[int(rng.integers(len(photos)))])), cv2.COLOR_BGR2RGB)
        faces.append({"side": side, "v": np.array([np.cos(angle), np.sin(angle)]) * speed, "start": start,
                      "frames": range(first, last + 1), "image": cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)})
    path = CACHE / f"moving-{seed}.mp4"
    boxes: list[dict[int, np.ndarray]] = [dict() for _ in range(FRAMES)]

    back = synth.background(w, h, seed=seed)

    def frame(i: int) -> np.ndarray:
        img = back.copy()
        for k, f in enumerate(faces):
            if i not in f["frames"]:
                continue
            x, y = (_bounce(q, room) for q, room in zip(f["start"] + f["v"] * (i - f["frames"][0]), (w - f["side"], h - f["side"])))
            img[y : y + f["side"], x : x + f["side"]] = f["image"]
            boxes[i][k] = np.array([x, y, x + f["side"], y + f["side"]], np.float64)
        return img

    frames = [frame(i) for i in range(FRAMES)]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        synth.write_video(path, frames, 1.0, crf=18)
    return path, [{"frames": list(f["frames"]), "side": f["side"], "speed": float(np.hypot(*f["v"]) / f["side"]),
                   "boxes": {i: boxes[i][k] for i in f["frames"]}} for k, f in enumerate(faces)]


def _bounce(q: float, room: int) -> int:
    """Position ``q`` folded back into [0, room], as if bouncing off the frame's edges."""
    q = q % (2 * room)
    return int(q if q <= room else 2 * room - q)


def found(truth: np.ndarray, detections: list[np.ndarray]) -> bool:
    side = truth[2] - truth[0]
    for d in detections:
        cx, cy = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2
        ds = max(d[2] - d[0], d[3] - d[1])
        if truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3] and 0.5 * side <= ds <= 2 * side:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    from fakeprobe.core.config import ScanConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=int, default=ScanConfig().detect_every, help="the schedule to check (ScanConfig.detect_every)")
    ap.add_argument("--moving", type=int, default=40, help="moving-face clips to make (default 40)")
    ap.add_argument("--out", type=Path, help="write the results into this markdown file")
    args = ap.parse_args(argv)
    if not (DATA / "clips").is_dir():
        print(f"{DATA} not present: nothing to check")
        return 0
    import torch

    torch.set_num_threads(1)
    t_start = time.time()
    n = args.every
    schedules = {"every frame": (1, False), f"every {n}th + new": (n, True), f"every {n}th only": (n, False)}
    names = list(schedules)
    head = "| | " + " | ".join(names) + " |"
    rule = "|---|" + "---:|" * len(names)
    lines = [f"## Results (bench_recall, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"- Command: `python benchmarks/bench_recall.py --every {n}{' --out ' + str(args.out) if args.out else ''}`",
             f"- Schedules: the full search on every sampled frame (the reference); on every {n}th and on each frame in "
             f"between that shows something new (`detect_every={n}, look_for_new=True`); on every {n}th only "
             f"(`look_for_new=False`). In between, the search near the faces known on either side.", ""]

    # real footage: reference = full search on every frame
    clips = sorted(p for p in (DATA / "clips").rglob("*") if p.is_file())
    stats = {name: {"faces": 0, "missed": 0, "extra": 0, "time": 0.0, "full": 0, "frames": 0, "misses": []} for name in names}
    for p in clips:
        ref = None
        for name, (every, new) in schedules.items():
            got, t, full = analyse(p, every, new)
            st = stats[name]
            st["time"] += t
            st["full"] += full
            st["frames"] += len(got)
            st["faces"] += sum(map(len, got))
            if ref is None:
                ref = got
                continue
            m = sum(1 for a, b in zip(ref, got) for f in a if not any(iou(f, g) >= 0.5 for g in b))
            st["missed"] += m
            st["extra"] += sum(1 for a, b in zip(ref, got) for g in b if not any(iou(f, g) >= 0.5 for f in a))
            if m:
                st["misses"].append(f"{p.parent.name}/{p.name}: {m}")
    ref_faces = stats["every frame"]["faces"]
    lines += ["### Real footage", "",
              f"{len(clips)} clips from `../shared/data/clips` (real, fake and unsure talking heads, GIFs included), "
              f"{FRAMES} sampled frames each (fewer for short clips).", "", head, rule,
              "| frames fully searched | " + " | ".join(f"{stats[x]['full']} of {stats[x]['frames']}" for x in names) + " |",
              "| faces found | " + " | ".join(str(stats[x]["faces"]) for x in names) + " |",
              "| faces of the reference not found (IoU ≥ 0.5) | – | "
              + " | ".join(f"{stats[x]['missed']} ({100 * stats[x]['missed'] / max(ref_faces, 1):.2f}%)" for x in names[1:]) + " |",
              "| faces found that the reference did not find | – | " + " | ".join(str(stats[x]["extra"]) for x in names[1:]) + " |",
              "| detection time, all clips, 1 thread | " + " | ".join(f"{stats[x]['time']:.1f} s" for x in names) + " |", ""]
    for x in names[1:]:
        if stats[x]["misses"]:
            lines += [f"Clips with misses ({x}): " + "; ".join(stats[x]["misses"]), ""]

    # moving faces with ground truth
    photos = sorted((DATA / "utkface").glob("*.jpg"))
    rows = {x: [0, 0, 0, 0] for x in names}  # multi-frame found/total, single-frame found/total
    people = {x: [0, 0] for x in names}  # faces in >= 2 frames: found in at least one of them / all
    full_searches = {x: [0, 0] for x in names}
    by_speed: dict[float, dict[str, list[int]]] = {}
    for seed in range(args.moving):
        path, truth = moving_clip(seed, photos)
        for name, (every, new) in schedules.items():
            got, _, full = analyse(path, every, new)
            if len(got) != FRAMES:
                raise SystemExit(f"{path}: {len(got)} frames analysed, expected {FRAMES}")
            full_searches[name][0] += full
            full_searches[name][1] += len(got)
            for face in truth:
                single = len(face["frames"]) == 1
                if not single:
                    people[name][0] += any(found(box, got[i]) for i, box in face["boxes"].items())
                    people[name][1] += 1
                for i, box in face["boxes"].items():
                    hit = found(box, got[i])
                    rows[name][2 * single] += hit
                    rows[name][2 * single + 1] += 1
                    if not single:
                        s = by_speed.setdefault(round(face["speed"], 1), {x: [0, 0] for x in names})[name]
                        s[0] += hit
                        s[1] += 1

    def pct(a: int, b: int) -> str:
        return f"{a}/{b} ({100 * a / max(b, 1):.1f}%)"

    lines += ["### Moving faces (ground truth)", "",
              f"{args.moving} synthetic clips, 1280×720, 32 frames at 1 frame/s, 1–4 UTKFace faces each, 48–200 px, "
              "moving 0.1–1 face widths per sampled frame, appearing and disappearing at random frames.", "", head, rule,
              "| frames fully searched | " + " | ".join(f"{full_searches[x][0]} of {full_searches[x][1]}" for x in names) + " |",
              "| sightings (a face in a frame) of faces visible in ≥ 2 sampled frames: found | " + " | ".join(pct(*rows[x][:2]) for x in names) + " |",
              "| sightings of faces visible in 1 sampled frame only: found | " + " | ".join(pct(*rows[x][2:]) for x in names) + " |",
              "| faces visible in ≥ 2 sampled frames: found in at least one | " + " | ".join(pct(*people[x]) for x in names) + " |", "",
              "Sightings of faces visible in ≥ 2 frames, by speed:", "",
              "| speed (face widths per sampled frame) | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for speed in sorted(by_speed):
        lines.append(f"| {speed:.1f} | " + " | ".join(pct(*by_speed[speed][x]) for x in names) + " |")
    lines += ["", f"Wall time {time.time() - t_start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from bench_scan import write_out  # the script's own folder is on sys.path

        write_out(args.out, text, START, END)
    return 0


START = "<!-- bench_recall results: start (generated by benchmarks/bench_recall.py, do not edit by hand) -->"
END = "<!-- bench_recall results: end -->"


if __name__ == "__main__":
    sys.exit(main())
