"""Receiving a file: a multipart upload streamed to disk with its size capped as it arrives, or a
path under ``--allow-root``. Either way the result is hashed and typed by content."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from .errors import ApiError
from .sniff import HEAD_BYTES, NotMedia, Sniffed, sniff

CHUNK = 1 << 20
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers allowed on top of the file


@dataclass
class Received:
    path: Path  # the file on disk (a temporary file for an upload)
    name: str  # the client's file name, or the path as given
    sha256: str
    size: int
    media: Sniffed
    temporary: bool = True


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the upload is larger than this server's limit of {limit / 2**20:g} MiB (--max-upload-mb)")


def clean_name(raw: str | None) -> str:
    """The last component of a client's file name, without control characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:255]
    return name if name not in ("", ".", "..") else "upload"


async def receive_upload(request: Request, tmp_dir: Path, limit: int) -> Received:
    """Stream the ``file`` field of a multipart/form-data body into ``tmp_dir``. Over ``limit``
    bytes: 413 at once (by Content-Length) or as soon as the limit is passed, and the partial
    file is deleted. Whatever goes wrong, nothing is left in ``tmp_dir``."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ApiError(400, "bad_request", "send the file as multipart/form-data with a boundary")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        raise _too_large(limit)

    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    tmp = Path(tmp_name)
    out = os.fdopen(fd, "wb")
    digest = hashlib.sha256()
    state = {"size": 0, "body": 0, "files": 0, "in_file": False, "error": None}
    head = bytearray()
    part = _Part()
    filename: list[str | None] = [None]
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_field).decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get("content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        part.filename = fn.decode("utf-8", "replace") if fn is not None else None
        if part.name == "file":
            state["files"] += 1
            if state["files"] > 1:
                state["error"] = ApiError(400, "bad_request", "send one file per request (form field 'file' appears twice)")
            state["in_file"] = True
            filename[0] = part.filename

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not state["in_file"] or state["error"]:
            return
        chunk = data[start:end]
        state["size"] += len(chunk)
        if state["size"] > limit:
            state["error"] = _too_large(limit)
            return
        if len(head) < HEAD_BYTES:
            head.extend(chunk[: HEAD_BYTES - len(head)])
        digest.update(chunk)
        out.write(chunk)

    def on_part_end() -> None:
        state["in_file"] = False

    media: Sniffed | None = None
    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        try:
            async for chunk in request.stream():
                state["body"] += len(chunk)
                if state["body"] > limit + FORM_OVERHEAD:
                    raise _too_large(limit)
                parser.write(chunk)
                if state["error"]:
                    raise state["error"]
                if media is None and len(head) >= HEAD_BYTES:  # junk is refused before all of it arrives
                    media = _sniff(bytes(head), filename[0])
            parser.finalize()
        except ClientDisconnect:
            raise ApiError(400, "bad_request", "the client went away before the upload was complete") from None
        except ApiError:
            raise
        except Exception as exc:  # the multipart parser's complaints about a malformed body
            raise ApiError(400, "bad_request", f"malformed multipart body ({type(exc).__name__})") from None
        if state["files"] == 0:
            raise ApiError(400, "bad_request", "no file: send it in the multipart form field 'file'")
        if state["size"] == 0:
            raise ApiError(400, "empty", "the uploaded file is empty (0 bytes)")
        media = media or _sniff(bytes(head), filename[0])
        out.flush()
        await anyio.to_thread.run_sync(os.fsync, out.fileno())  # the upload is durable before its job exists
        out.close()
        return Received(tmp, clean_name(filename[0]), digest.hexdigest(), state["size"], media)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise


def _sniff(head: bytes, filename: str | None) -> Sniffed:
    try:
        return sniff(head)
    except NotMedia as exc:
        raise ApiError(415, "unsupported_type", f"{clean_name(filename)}: {exc}") from None


def _hash_file(path: Path) -> tuple[str, int, bytes]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        digest.update(head)
        size += len(head)
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, head


async def receive_path(given: str, root: Path | None) -> Received:
    """A file named by a JSON body: only under ``root`` (after resolving links), a regular
    readable file, and a video or image by content."""
    if root is None:
        raise ApiError(403, "forbidden", "this server does not scan files by path (start it with --allow-root DIR)")
    if "\x00" in given:
        raise ApiError(400, "bad_request", "the path contains a NUL character")
    base = root.resolve()
    try:
        target = (base / given).resolve()
    except (OSError, RuntimeError):
        raise ApiError(403, "forbidden", f"{given}: cannot be resolved under the allowed folder") from None
    if not target.is_relative_to(base):
        raise ApiError(403, "forbidden", f"{given}: outside the folder this server may read (--allow-root)")
    if not target.exists():
        raise ApiError(404, "file_not_found", f"{given}: no such file")
    if not target.is_file():
        raise ApiError(422, "not_a_file", f"{given}: not a regular file")
    try:
        sha, size, head = await anyio.to_thread.run_sync(_hash_file, target)
    except PermissionError:
        raise ApiError(403, "unreadable", f"{given}: the server may not read it (permission denied)") from None
    except OSError as exc:
        raise ApiError(422, "unreadable", f"{given}: cannot read it ({exc.strerror or exc})") from None
    if size == 0:
        raise ApiError(400, "empty", f"{given}: the file is empty (0 bytes)")
    try:
        media = sniff(head)
    except NotMedia as exc:
        raise ApiError(415, "unsupported_type", f"{given}: {exc}") from None
    return Received(target, given, sha, size, media, temporary=False)
