"""The service's settings: limits on what a request may ask, batching, and who may call.

A service bound to a loopback address (the default ``127.0.0.1``) answers this machine
only; binding any other address needs an API key (``--api-key`` or ``SEQLAB_API_KEY``),
which every request then has to send (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from seqlab.errors import ConfigError

API_KEY_ENV = "SEQLAB_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    """Required of every request but ``/health`` and the playground's static files."""
    max_body_bytes: int = 64 * 1024
    """Larger request bodies are refused with 413 before they are parsed."""
    max_text_chars: int = 2000
    """Characters of one text, prompt, story sentence or question."""
    max_generate_tokens: int = 256
    """The most tokens one ``/generate`` request may ask for; also the most target tokens
    of one ``/translate`` output."""
    max_story_sentences: int = 100
    max_sentences: int = 16
    """Source sentences of one ``/translate`` request."""
    max_beam: int = 8
    """The widest beam a ``/translate`` request may ask for."""
    max_batch: int = 32
    """Requests run together in one model call at most."""
    batch_wait_ms: float = 5.0
    """How long the first request of a batch waits for others to join it."""

    def validate(self) -> None:
        if self.max_body_bytes < 1024 or self.max_text_chars < 1 or self.max_batch < 1:
            raise ConfigError(
                "--max-body-bytes must be >= 1024, --max-text-chars and --max-batch >= 1"
            )
        if self.max_generate_tokens < 1 or self.batch_wait_ms < 0:
            raise ConfigError("--max-tokens must be >= 1 and --batch-wait-ms >= 0")
        if self.max_sentences < 1 or self.max_beam < 1:
            raise ConfigError("--max-sentences and --max-beam must be >= 1")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        check_bind(self.host, self.api_key)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to bind a non-loopback address without an API key."""
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} makes the service reachable from other machines: give "
            f"--api-key KEY or set {API_KEY_ENV} (or bind 127.0.0.1)"
        )
