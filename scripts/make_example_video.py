"""Regenerate the bundled example videos.

``examples/astronaut.mp4`` is rendered from scikit-image's astronaut photo (Eileen Collins, NASA,
public domain): the unaltered portrait drifting slowly over a synthetic background, 4 s of
640x360 H.264. The face is real, so the expected verdict is REAL.

``examples/astronaut_blended.mp4`` is that video with the face of every frame self-blended by the
project's own generator (``fakeprobe.evaluation.fakeclips``, the kind of fake the dev benchmark uses: the
face blended with a colour- and frequency-altered copy of itself through a landmark mask, the same
choices on every frame), then encoded again at the same quality. The expected verdict is FAKE.

    python scripts/make_example_video.py            # the blended video from the bundled real one
    python scripts/make_example_video.py --real     # render the real one first (bytes depend on the x264 build)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from skimage import data

from fakeprobe.evaluation.fakeclips import blend_video
from fakeprobe.media.synth import scene_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = 7  # the blend's random choices


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", action="store_true", help="render examples/astronaut.mp4 again too")
    args = ap.parse_args()
    EXAMPLES.mkdir(exist_ok=True)
    real = EXAMPLES / "astronaut.mp4"
    if args.real or not real.exists():
        scene_video(real, data.astronaut(), width=640, height=360, seconds=4.0, fps=25.0, faces=1, crf=26, gop=50)
    fake = EXAMPLES / "astronaut_blended.mp4"
    blend_video(real, fake, "sbi", seed=SEED, crf=26)
    for p in (real, fake):
        print(f"wrote {p} ({p.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
