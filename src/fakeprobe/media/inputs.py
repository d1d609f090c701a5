"""Turn command-line arguments (files, directories, globs) into an ordered list of inputs."""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from .images import IMAGE_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


def _walk(root: Path) -> list[Path]:
    """Media files under ``root``, recursively, following symlinks without looping."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop, or a second way into the same folder
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in MEDIA_SUFFIXES:
                found.append(p)
    return found


def expand_inputs(args: list[str]) -> list[Path]:
    """Files are taken as given (even with other suffixes: the scan says what is wrong),
    directories are searched for media files, glob patterns are expanded. Duplicates are
    dropped, keeping the first occurrence; a path that matches nothing is kept so that its
    scan reports it missing."""
    out: list[Path] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        try:
            key = str(p.resolve())
        except (OSError, RuntimeError):
            key = str(p.absolute())
        if key not in seen:
            seen.add(key)
            out.append(p)

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for f in _walk(p):
                add(f)
        elif not p.exists() and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                add(p)
            for m in matches:
                mp = Path(m)
                for f in _walk(mp) if mp.is_dir() else [mp]:
                    add(f)
        else:
            add(p)
    return out


def read_input_list(source: str | Path) -> list[str]:
    """The inputs named in a list file (``-``: standard input), one per line: a file, folder or
    glob, like a command-line argument, relative to the current folder. Surrounding whitespace,
    blank lines and lines starting with ``#`` are ignored."""
    text = sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
