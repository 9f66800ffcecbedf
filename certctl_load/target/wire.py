"""HTTP/1.1 messages as the reference target sees them: request heads parsed, responses serialised."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class BadRequest(Exception):
    """The request cannot be parsed: answered with ``status`` and the connection closed."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(slots=True)
class Head:
    """A parsed request head. Header names are lower-case; the first of repeated headers wins."""

    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """The request target without its query string."""
        return self.target.partition("?")[0]

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless ``Connection: close``; HTTP/1.0 only on ``keep-alive``."""
        tokens = {token.strip().lower() for token in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


@dataclass(slots=True)
class Request:
    """One request: its head, its body (None when over the size limit), where and when it came from."""

    head: Head
    body: bytes | None
    client: tuple[str, int]
    arrived: float  # epoch seconds, when the request's first bytes were read
    started: float  # time.perf_counter() when the head was parsed
    client_gone: Callable[[], bool] = field(default=lambda: False)  # the client has closed its side

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def path(self) -> str:
        return self.head.path

    def header(self, name: str) -> str:
        """The value of header ``name`` (lower-case), or "" when absent."""
        return self.head.headers.get(name, "")


@dataclass(slots=True)
class Response:
    """What the server writes back; ``agent`` is the agent id the request addressed, for the request log."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    agent: str | None = None


def parse_head(head: bytes) -> Head:
    """Parse a request head (without its final blank line); BadRequest when it is not HTTP/1.x."""
    text = head.decode("latin-1")
    request_line, *lines = text.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not method or not _TOKEN_CHARS.issuperset(method):
        raise BadRequest("malformed method")
    if not target.startswith("/"):
        raise BadRequest("unsupported request target")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest("unsupported HTTP version", 505)
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or not _TOKEN_CHARS.issuperset(name):
            raise BadRequest("malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length" and headers.get(name, value) != value:
            raise BadRequest("conflicting Content-Length headers")
        headers.setdefault(name, value)
    return Head(method, target, version, headers)


class _DateHeader:
    """The ``Date`` header value, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True)
        return self._value


_date = _DateHeader()
_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n" for status in HTTPStatus}


def serialise(response: Response, *, keep_alive: bool) -> bytes:
    """The response's bytes: status line, headers (with Date, Content-Length, Connection), body."""
    lines = [
        _STATUS_LINES[response.status],
        f"Date: {_date()}\r\nContent-Length: {len(response.body)}\r\n",
    ]
    lines += [f"{name}: {value}\r\n" for name, value in response.headers]
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + response.body
