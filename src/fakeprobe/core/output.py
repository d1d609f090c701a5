"""Render scan results: a human table, JSON, JSON Lines or CSV."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import IO, Iterable

from .results import ScanResult

CSV_FIELDS = ["path", "verdict", "probability", "threshold", "faces", "persons", "frames_analysed", "error_kind", "error_message", "warnings"]


def _clean(obj):
    """JSON has no NaN/Infinity: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def to_json(result: ScanResult) -> dict:
    return _clean(result.to_dict())


def write_json(results: Iterable[ScanResult], out: IO[str]) -> None:
    json.dump([to_json(r) for r in results], out, indent=2)
    out.write("\n")


def write_jsonl_line(result: ScanResult, out: IO[str]) -> None:
    out.write(json.dumps(to_json(result)) + "\n")
    out.flush()


def csv_row(r: ScanResult) -> dict:
    return {
        "path": r.path, "verdict": r.verdict,
        "probability": "" if r.probability is None else f"{r.probability:.4f}",
        "threshold": "" if r.threshold is None else f"{r.threshold:.4f}",
        "faces": r.faces, "persons": len(r.persons), "frames_analysed": r.media.frames_analysed if r.media else 0,
        "error_kind": r.error.kind if r.error else "", "error_message": r.error.message if r.error else "",
        "warnings": "; ".join(r.warnings),
    }


def write_csv(results: Iterable[ScanResult], out: IO[str]) -> None:
    w = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in results:
        w.writerow(csv_row(r))


def table(results: list[ScanResult], color: bool) -> str:
    """A compact table: file, verdict, probability, faces, persons."""
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col, just in (("file", "left"), ("verdict", "left"), ("p(fake)", "right"), ("faces", "right"), ("persons", "right"), ("note", "left")):
        t.add_column(col, justify=just, overflow="fold")
    styles = {"FAKE": "bold red", "REAL": "green", "NO_FACE": "yellow", "ERROR": "bold magenta"}
    for r in results:
        note = r.error.message.split(": ", 1)[-1] if r.error else ("; ".join(r.warnings[:1]))
        prob = "" if r.probability is None else f"{r.probability:.3f}"
        t.add_row(r.path, f"[{styles.get(r.verdict, '')}]{r.verdict}[/]", prob, str(r.faces), str(len(r.persons)), note)
    buf = io.StringIO()
    Console(file=buf, force_terminal=color, no_color=not color, width=200).print(t)
    return buf.getvalue()
