"""Where batch records go (JSON Lines as each file finishes, or Parquet in parts) and what an
earlier run already wrote there (``--resume``)."""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import IO

PART_ROWS = 1000  # a Parquet part is written after this many records ...
PART_SECONDS = 60.0  # ... or when a record arrives this long after the last part was written


def path_key(path: str | Path) -> str:
    """What makes two spellings of an input the same file for ``--resume``."""
    return os.path.normpath(os.path.abspath(str(path)))


class JsonlSink:
    """One JSON record per line, flushed as each arrives."""

    def __init__(self, out: IO[str]):
        self.out = out

    def write(self, record: dict) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()

    def __enter__(self) -> "JsonlSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ParquetSink:
    """Records written into a folder as Parquet parts (``part-<run>-<n>.parquet``), one every
    ``part_rows`` records or ``part_seconds`` seconds and one at the end, so that a killed run
    loses at most its last part's worth. Each part appears whole (written under a hidden name,
    then renamed); the folder reads as one table (``pyarrow.parquet.read_table(folder)``,
    ``pandas.read_parquet(folder)``). Columns: the record's summary fields and ``record``, the
    full record as JSON text."""

    def __init__(self, folder: str | Path, part_rows: int = PART_ROWS, part_seconds: float = PART_SECONDS):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.part_rows, self.part_seconds = part_rows, part_seconds
        self.run = uuid.uuid4().hex[:8]
        self.parts = 0
        self.rows: list[dict] = []
        self.last = time.monotonic()

    @staticmethod
    def schema():
        import pyarrow as pa

        return pa.schema([
            ("path", pa.string()), ("verdict", pa.string()), ("probability", pa.float64()), ("threshold", pa.float64()),
            ("faces", pa.int64()), ("n_persons", pa.int64()), ("frames_analysed", pa.int64()), ("error_kind", pa.string()),
            ("error_message", pa.string()), ("warnings", pa.list_(pa.string())), ("model_sha256", pa.string()),
            ("elapsed_s", pa.float64()), ("record", pa.string()),
        ])

    @staticmethod
    def row(r: dict) -> dict:
        error, media, model = r.get("error") or {}, r.get("media") or {}, r.get("model") or {}
        return {
            "path": r["path"], "verdict": r["verdict"], "probability": r.get("probability"), "threshold": r.get("threshold"),
            "faces": r.get("faces", 0), "n_persons": r.get("n_persons", 0), "frames_analysed": media.get("frames_analysed", 0),
            "error_kind": error.get("kind"), "error_message": error.get("message"), "warnings": r.get("warnings", []),
            "model_sha256": model.get("sha256"), "elapsed_s": r.get("elapsed_s"), "record": json.dumps(r),
        }

    def write(self, record: dict) -> None:
        self.rows.append(self.row(record))
        if len(self.rows) >= self.part_rows or time.monotonic() - self.last >= self.part_seconds:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.last = time.monotonic()
        if not self.rows:
            return
        name = f"part-{self.run}-{self.parts:05d}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(self.rows, schema=self.schema()), tmp)
        os.replace(tmp, self.folder / name)
        self.parts += 1
        self.rows = []

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def previous_verdicts(output: str | Path, parquet: bool = False) -> dict[str, str]:
    """``path_key`` -> verdict of each record already in ``output`` (a JSONL file, or a folder of
    Parquet parts); empty if there is none. A JSONL file's last line may be cut short (a run
    killed while writing it): it is ignored, as is any hidden unfinished part."""
    output = Path(output)
    if parquet:
        import pyarrow.parquet as pq

        parts = sorted(output.glob("part-*.parquet")) if output.is_dir() else []
        return {path_key(p): v for part in parts for p, v in zip(*pq.read_table(part, columns=["path", "verdict"]).to_pydict().values())}
    if not output.is_file():
        return {}
    done: dict[str, str] = {}
    lines = [(i, line) for i, line in enumerate(output.read_bytes().split(b"\n"), 1) if line.strip()]
    for i, line in lines:
        try:
            record = json.loads(line)
            done[path_key(record["path"])] = record["verdict"]
        except (ValueError, KeyError, TypeError):
            if i != lines[-1][0]:
                raise ValueError(f"{output}: line {i} is not a scan record: cannot resume") from None
    return done


def drop_truncated_tail(output: str | Path) -> None:
    """Cut a JSONL file's last line if it is not a whole record (or end it if it lacks its line
    break), so that appending starts on a fresh line."""
    output = Path(output)
    if not output.is_file():
        return
    data = output.read_bytes()
    body = data.rstrip()
    start = body.rfind(b"\n") + 1
    try:
        record = json.loads(body[start:])
        record["path"], record["verdict"]
    except (ValueError, KeyError, TypeError):
        with open(output, "r+b") as f:
            f.truncate(start)
        return
    if not data.endswith(b"\n"):
        with open(output, "ab") as f:
            f.write(b"\n")
