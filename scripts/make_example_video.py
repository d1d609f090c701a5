"""Regenerate examples/astronaut.mp4, the bundled example video.

It is rendered from scikit-image's astronaut photo (Eileen Collins, NASA, public domain): the
unaltered portrait drifting slowly over a synthetic background, 4 s of 640x360 H.264. The face is
real, so the expected verdict is REAL.

    python scripts/make_example_video.py
"""
from __future__ import annotations

from pathlib import Path

from skimage import data

from fakeprobe.synth import scene_video

OUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"


def main() -> None:
    OUT.parent.mkdir(exist_ok=True)
    scene_video(OUT, data.astronaut(), width=640, height=360, seconds=4.0, fps=25.0, faces=1, crf=26, gop=50)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
