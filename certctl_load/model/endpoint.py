"""The target's URL, split once: scheme, host, port and base path."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from certctl_load.errors import ConfigError


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: scheme, host, port and the base path of the target URL."""

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        default_port = 443 if self.is_tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default_port else f"{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """Split a target URL such as ``https://certctl-server:8443``; a bad one is a ConfigError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"host {url!r} is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"host {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ConfigError(f"host {url!r} names no server")
    default_port = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme, parts.hostname, port or default_port, parts.path.rstrip("/"))
