"""Regenerate the bundled example video, or make a blended copy of it.

``examples/astronaut.mp4`` is rendered from scikit-image's astronaut photo (Eileen Collins, NASA,
public domain): the unaltered portrait drifting slowly over a synthetic background, 4 s of
640x360 H.264. The face is real, so the expected verdict is REAL.

``--blended FILE`` writes that video with the face of every frame self-blended by the project's own
generator (``fakeprobe.evaluation.fakeclips``, the kind of fake the dev benchmark uses: the face
blended with a colour- and frequency-altered copy of itself through a landmark mask, the same
choices on every frame), encoded again at the same quality. Up to v8 it was bundled as
``examples/astronaut_blended.mp4``; v9 scores it under its threshold (MODEL_CARD.md, "v9 in
short"), so it is no longer an example of a FAKE verdict.

    python scripts/make_example_video.py --real                          # render the real one (bytes depend on the x264 build)
    python scripts/make_example_video.py --blended /tmp/astronaut_blended.mp4
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
    ap.add_argument("--real", action="store_true", help="render examples/astronaut.mp4 again")
    ap.add_argument("--blended", type=Path, metavar="FILE", help="write the self-blended copy here")
    args = ap.parse_args()
    if not (args.real or args.blended):
        ap.error("nothing to do: give --real and/or --blended FILE")
    EXAMPLES.mkdir(exist_ok=True)
    real = EXAMPLES / "astronaut.mp4"
    written = []
    if args.real or not real.exists():
        scene_video(real, data.astronaut(), width=640, height=360, seconds=4.0, fps=25.0, faces=1, crf=26, gop=50)
        written.append(real)
    if args.blended:
        blend_video(real, args.blended, "sbi", seed=SEED, crf=26)
        written.append(args.blended)
    for p in written:
        print(f"wrote {p} ({p.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
