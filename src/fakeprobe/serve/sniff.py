"""What a file is, from its first bytes (never from its name or the client's Content-Type).

The scanner tells images from videos by the file's suffix, so a stored upload gets the suffix of
what its content is; content that is no video or image is refused before it is queued.
"""
from __future__ import annotations

from dataclasses import dataclass

HEAD_BYTES = 4096  # enough for every signature below (MPEG-TS needs three 188-byte packets)


@dataclass(frozen=True)
class Sniffed:
    kind: str  # video | image
    ext: str  # the suffix the scanner needs
    what: str  # for messages


_SIMPLE: list[tuple[bytes, Sniffed]] = [
    (b"\x1a\x45\xdf\xa3", Sniffed("video", ".mkv", "Matroska/WebM video")),
    (b"GIF87a", Sniffed("video", ".gif", "GIF")),
    (b"GIF89a", Sniffed("video", ".gif", "GIF")),
    (b"\x00\x00\x01\xba", Sniffed("video", ".mpg", "MPEG program stream")),
    (b"\x00\x00\x01\xb3", Sniffed("video", ".mpg", "MPEG video")),
    (b"FLV\x01", Sniffed("video", ".flv", "Flash video")),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", Sniffed("video", ".wmv", "ASF/WMV video")),
    (b"OggS", Sniffed("video", ".ogv", "Ogg media")),
    (b"\xff\xd8\xff", Sniffed("image", ".jpg", "JPEG image")),
    (b"\x89PNG\r\n\x1a\n", Sniffed("image", ".png", "PNG image")),
    (b"II*\x00", Sniffed("image", ".tif", "TIFF image")),
    (b"MM\x00*", Sniffed("image", ".tif", "TIFF image")),
]

# recognised, but not something to scan: named in the 415 message
_NOT_MEDIA: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or an Office document)"), (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"), (b"ID3", "MP3 audio"), (b"fLaC", "FLAC audio"), (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"), (b"SQLite format 3\x00", "an SQLite database"),
]

_QUICKTIME_ATOMS = (b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


class NotMedia(ValueError):
    """Content that is no video or image the scanner reads; the message says what it looks like."""


def sniff(head: bytes) -> Sniffed:
    """The media type of a file starting with ``head`` (at least ``HEAD_BYTES`` of it, or all of
    a shorter file), or ``NotMedia``."""
    if not head:
        raise NotMedia("the file is empty")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            raise NotMedia("a HEIF/AVIF image, which the scanner does not read: convert it to JPEG or PNG")
        return Sniffed("video", ".mov" if brand == b"qt  " else ".mp4", "MP4/QuickTime video")
    if head[4:8] in _QUICKTIME_ATOMS:
        return Sniffed("video", ".mov", "QuickTime video")
    if head[:4] == b"RIFF":
        form = head[8:12]
        if form == b"AVI ":
            return Sniffed("video", ".avi", "AVI video")
        if form == b"WEBP":
            return Sniffed("image", ".webp", "WebP image")
        raise NotMedia(f"a RIFF file of type {form.decode('latin-1')!r} (e.g. WAV audio), not a video or image")
    for magic, found in _SIMPLE:
        if head.startswith(magic):
            return found
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return Sniffed("image", ".bmp", "BMP image")
    if _mpeg_ts(head, 188, 0) or _mpeg_ts(head, 192, 4):
        return Sniffed("video", ".ts", "MPEG transport stream")
    if head.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")):
        nal = head[4] if head[2] == 0 else head[3]
        if nal & 0x1F in (7, 9) or (nal >> 1) & 0x3F in (32, 33, 35):  # H.264 SPS/AUD, HEVC VPS/SPS/AUD
            return Sniffed("video", ".h264" if nal & 0x1F in (7, 9) else ".hevc", "raw H.264/HEVC stream")
    for magic, what in _NOT_MEDIA:
        if head.startswith(magic):
            raise NotMedia(f"{what}, not a video or image")
    if _texty(head):
        raise NotMedia("text, not a video or image")
    raise NotMedia("not a video or image format the scanner reads (MP4, MOV, MKV, WebM, AVI, MPEG, FLV, WMV, GIF, "
                   "JPEG, PNG, WebP, BMP, TIFF)")


def _mpeg_ts(head: bytes, packet: int, offset: int) -> bool:
    n = min(3, (len(head) - offset) // packet)
    return n >= 2 and all(head[offset + i * packet] == 0x47 for i in range(n))


def _texty(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return False
        text = head[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\r\n\t\f" for c in text)
