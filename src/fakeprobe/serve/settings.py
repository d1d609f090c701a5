"""The server's settings: one frozen object built from the command line, handed to
``create_app`` and injected into the routes (no module-level state)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import ScanConfig

TOKENS_ENV = "FAKEPROBE_TOKENS"  # tokens separated by commas or white space
MIN_TOKEN_CHARS = 16
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SettingsError(ValueError):
    """A setting that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    tokens: frozenset[str] = frozenset()
    auth: bool = True  # False only with --no-auth on a loopback address
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # scan worker processes
    max_queue: int = 100  # jobs waiting for a worker; more are refused with 503
    max_upload_bytes: int = 2048 * 2**20
    allow_root: Path | None = None  # JSON {"path": ...} jobs may name files under this folder
    weights: tuple[str, ...] | None = None  # None: the bundled model
    scan: ScanConfig = field(default_factory=ScanConfig)
    max_wait_s: float = 600.0  # cap on ?wait=

    def __post_init__(self) -> None:
        if self.auth and not self.tokens:
            raise SettingsError(f"no API token: give --token-file FILE or set {TOKENS_ENV} "
                                f"(or --no-auth, on a loopback address only)")
        if not self.auth and not is_loopback(self.host):
            raise SettingsError(f"--no-auth is allowed only on a loopback address (127.0.0.1, ::1, localhost), not {self.host}")
        if self.workers < 1:
            raise SettingsError("--workers must be at least 1")
        if self.max_queue < 1:
            raise SettingsError("--max-queue must be at least 1")
        if self.max_upload_bytes < 1:
            raise SettingsError("--max-upload-mb must be positive")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_tokens(text: str, source: str, *, lines_only: bool = True) -> frozenset[str]:
    """Tokens from a token file (one per line; blank lines and ``#`` comments skipped) or from
    the environment variable (separated by commas or white space)."""
    items: list[tuple[str, str]] = []
    if lines_only:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                items.append((line, f"line {n} of {source}"))
    else:
        items = [(t, source) for t in text.replace(",", " ").split()]
    for token, where in items:
        if any(c.isspace() or not c.isprintable() or not c.isascii() for c in token):
            raise SettingsError(f"{where}: a token is one word of printable ASCII")
        if len(token) < MIN_TOKEN_CHARS:
            raise SettingsError(f"{where}: token shorter than {MIN_TOKEN_CHARS} characters; make one with: {MAKE_TOKEN}")
    if not items:
        raise SettingsError(f"{source}: no tokens in it")
    return frozenset(t for t, _ in items)


def load_tokens(token_file: str | Path | None, environ: dict[str, str] | None = None) -> frozenset[str]:
    """The tokens of ``--token-file`` and of ``$FAKEPROBE_TOKENS`` together (either may be absent)."""
    environ = os.environ if environ is None else environ
    tokens: frozenset[str] = frozenset()
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"--token-file {token_file}: cannot read it ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise SettingsError(f"--token-file {token_file}: not a text file") from None
        tokens |= parse_tokens(text, str(token_file))
    if environ.get(TOKENS_ENV, "").strip():
        tokens |= parse_tokens(environ[TOKENS_ENV], f"${TOKENS_ENV}", lines_only=False)
    return tokens
