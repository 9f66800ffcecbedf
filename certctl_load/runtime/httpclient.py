"""A lean HTTP/1.1 client on (gevent-patched) sockets: one keep-alive connection per agent.

Each agent sends the same prebuilt request bytes on every beat, so the hot path is
one ``send`` and a few receive calls. Timing follows k6's ``http_req_duration``: from
the moment the first request byte is written to the moment the last response byte
arrived; connection setup and TLS are timed apart (``connect_s``). On a plain TCP
connection the kernel stamps each segment as it arrives (``SO_TIMESTAMPNS``), and the
response ends at the stamp of the segment that completed it: a pause of the generator
between the response's arrival and its read is never charged to the server. Over TLS
(whose sockets cannot carry the stamps) it ends when the last byte is read. A keep-alive
connection the server closed while idle is replaced transparently, as Go's HTTP client in
the real certctl agent does.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from certctl_load.errors import ConfigError
from certctl_load.model.endpoint import Endpoint

_HEAD_LIMIT = 64 * 1024
_BODY_KEEP = 512
_RECV_SIZE = 16 * 1024
# One receive buffer per process: gevent switches only inside a blocking call, and each
# recv_into's bytes are copied out before the next one, so agents can share it (15,000
# agents with a buffer each would hold 235 MB).
_SHARED_BUFFER = memoryview(bytearray(_RECV_SIZE))
# The target's address, resolved once per process rather than once per connection.
_ADDRESSES: dict[tuple[str, int], tuple[int, int, int, tuple[Any, ...]]] = {}
# Linux's SO_TIMESTAMPNS (the Python socket module does not name it): each received segment's
# arrival in system time, as a struct timespec in the ancillary data of recvmsg.
_SO_TIMESTAMPNS = 35
_STAMPS = hasattr(socket.socket, "recvmsg_into") and sys.platform == "linux"
_ANCILLARY_SIZE = socket.CMSG_SPACE(16) if _STAMPS else 0
_TIMESPEC = struct.Struct("qq")
# Connections this process holds open now (the timeline's ``connections``).
_open_count = 0


def open_connections() -> int:
    """How many connections this process's agents hold open now."""
    return _open_count


def _resolve(host: str, port: int) -> tuple[int, int, int, tuple[Any, ...]]:
    """(family, type, proto, sockaddr) of the target, cached; raises socket.gaierror."""
    key = (host, port)
    if key not in _ADDRESSES:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        _ADDRESSES[key] = (family, kind, proto, sockaddr)
    return _ADDRESSES[key]


def build_request(
    endpoint: Endpoint, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """The full request bytes for one call; built once per agent and call, sent on every beat."""
    lines = [f"{method} {endpoint.base_path}{path} HTTP/1.1", f"Host: {endpoint.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Exchange:
    """The outcome of one request: status 0 and an ``error`` kind for network failures."""

    status: int
    duration_s: float
    connect_s: float
    sent: int
    received: int
    error: str | None = None
    body: bytes = b""


class _ProtocolError(Exception):
    """The server's answer is not valid HTTP/1.1."""


class _ClosedBeforeResponse(Exception):
    """The connection ended before any response byte arrived."""


def error_kind(error: BaseException) -> str:
    """A short, stable name for a network failure (used as a tag and in breakdowns)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "tls_verify_failed"
    if isinstance(error, ssl.SSLError):
        return "tls_error"
    if isinstance(error, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "connection_reset"
    if isinstance(error, _ClosedBeforeResponse):
        return "closed_before_response"
    if isinstance(error, _ProtocolError):
        return "bad_response"
    if isinstance(error, socket.gaierror):
        return "dns_error"
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL):
        return "no_local_resources"
    return "network_error"


class Connection:
    """One agent's connection to the target, reused across beats unless ``keep_alive`` is off."""

    __slots__ = (
        "endpoint", "ssl_context", "timeout_s", "keep_alive", "source_address",
        "_sock", "_stamped", "_arrived",
    )  # fmt: skip

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 60.0,
        keep_alive: bool = True,
        source_address: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self.keep_alive = keep_alive
        self.source_address = source_address
        self._sock: socket.socket | None = None
        self._stamped = _STAMPS and not endpoint.is_tls  # the kernel stamps arriving segments
        self._arrived = 0.0  # system time the last segment read arrived (kernel stamp), 0 if none

    def close(self) -> None:
        global _open_count
        if self._sock is not None:
            _open_count -= 1
            try:
                self._sock.close()
            finally:
                self._sock = None

    def open(self) -> tuple[float, str | None]:
        """Open the keep-alive connection ahead of the first request, as a running agent has one:
        (seconds it took, the error kind or None). A failure is left for the first request to meet
        and record; a connection already open, or one that is not kept alive, is left as it is."""
        if self._sock is not None or not self.keep_alive:
            return 0.0, None
        started = time.perf_counter()
        try:
            self._sock = self._connect()
        except (OSError, ValueError) as error:
            self._sock = None
            return time.perf_counter() - started, error_kind(error)
        return time.perf_counter() - started, None

    def _connect(self) -> socket.socket:
        family, kind, proto, address = _resolve(self.endpoint.host, self.endpoint.port)
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(self.timeout_s)
            if self.source_address:
                sock.bind((self.source_address, 0))
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._stamped:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if self.endpoint.is_tls:
            assert self.ssl_context is not None, "an https endpoint needs an SSL context"
            try:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.endpoint.host)
            except BaseException:
                sock.close()
                raise
        global _open_count
        _open_count += 1  # the caller holds it as self._sock until close()
        return sock

    def request(self, raw: bytes, *, want_body: bool = False) -> Exchange:
        """Send ``raw`` and read the whole response; never raises for network failures."""
        connect_s = 0.0
        reused = self._sock is not None
        started = time.perf_counter()
        try:
            if self._sock is None:
                self._sock = self._connect()
                connect_s = time.perf_counter() - started
            try:
                return self._exchange(raw, connect_s, want_body)
            except (_ClosedBeforeResponse, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The server closed the idle keep-alive connection: reconnect once, transparently.
                self.close()
                reconnect_started = time.perf_counter()
                self._sock = self._connect()
                connect_s = time.perf_counter() - reconnect_started
                return self._exchange(raw, connect_s, want_body)
        except (OSError, _ProtocolError, _ClosedBeforeResponse) as error:
            self.close()
            duration = time.perf_counter() - started - connect_s
            return Exchange(0, max(duration, 0.0), connect_s, 0, 0, error=error_kind(error))

    def _exchange(self, raw: bytes, connect_s: float, want_body: bool) -> Exchange:
        sock = self._sock
        assert sock is not None
        self._arrived = 0.0
        sent_at, sent_wall = time.perf_counter(), time.time()
        sent = sock.send(raw)  # a request fits the socket buffer: one call, no sendall machinery
        if sent < len(raw):
            sock.sendall(raw[sent:])
        status, body, received, reusable = self._read_response(sock, want_body)
        finished = time.perf_counter()
        arrived = self._arrived
        # The kernel's stamp when there is one (never before the send, never after the read).
        duration = (
            finished - sent_at if not arrived else min(max(arrived - sent_wall, 0.0), finished - sent_at)
        )
        if not (reusable and self.keep_alive):
            self.close()
        return Exchange(status, duration, connect_s, len(raw), received, body=body)

    def _receive(self, sock: socket.socket, view: memoryview) -> int:
        """``recv_into``, keeping the arrival stamp of the segment read last (plain TCP on Linux)."""
        if not self._stamped:
            return sock.recv_into(view)
        count, ancillary, _, _ = sock.recvmsg_into([view], _ANCILLARY_SIZE)
        for _, _, data in ancillary:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            self._arrived = seconds + nanoseconds * 1e-9
        return count

    def _read_response(self, sock: socket.socket, want_body: bool) -> tuple[int, bytes, int, bool]:
        data = bytearray()
        view = _SHARED_BUFFER
        while True:
            count = self._receive(sock, view)
            if count == 0:
                if not data:
                    raise _ClosedBeforeResponse()
                raise _ProtocolError("connection closed inside the response head")
            data += view[:count]
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                break
            if len(data) > _HEAD_LIMIT:
                raise _ProtocolError("response head too large")
        status, fields = _parse_head(bytes(data[:head_end]))
        rest = data[head_end + 4 :]
        received = head_end + 4
        close = _field(fields, b"connection") == b"close"
        if status in (204, 304) or 100 <= status < 200:
            return status, b"", received, not close
        if b"chunked" in (_field(fields, b"transfer-encoding") or b""):
            body, used = self._read_chunked(sock, rest)
            return status, body if want_body else body[:_BODY_KEEP], received + used, not close
        content_length = _field(fields, b"content-length")
        if content_length is not None:
            if not content_length.isdigit():
                raise _ProtocolError("bad Content-Length")
            length = int(content_length)
            collected = bytearray(rest)
            while len(collected) < length:
                count = self._receive(sock, view)
                if count == 0:
                    raise _ProtocolError("connection closed inside the response body")
                collected += view[:count]
            kept = bytes(collected[:length]) if want_body else bytes(collected[: min(length, _BODY_KEEP)])
            return status, kept, received + length, not close
        collected = bytearray(rest)  # no length: the body ends when the server closes
        while True:
            count = self._receive(sock, view)
            if count == 0:
                break
            collected += view[:count]
        return status, bytes(collected), received + len(collected), False

    def _read_chunked(self, sock: socket.socket, data: bytearray) -> tuple[bytes, int]:
        view = _SHARED_BUFFER
        body = bytearray()
        position = 0
        used = 0

        def fill() -> None:
            count = self._receive(sock, view)
            if count == 0:
                raise _ProtocolError("connection closed inside a chunked body")
            data.extend(view[:count])

        while True:
            line_end = data.find(b"\r\n", position)
            while line_end < 0:
                fill()
                line_end = data.find(b"\r\n", position)
            try:
                size = int(bytes(data[position:line_end]).split(b";")[0], 16)
            except ValueError:
                raise _ProtocolError("bad chunk size") from None
            position = line_end + 2
            if size == 0:
                trailer_end = data.find(b"\r\n", position)
                while trailer_end < 0:
                    fill()
                    trailer_end = data.find(b"\r\n", position)
                used = trailer_end + 2
                return bytes(body), used
            while len(data) < position + size + 2:
                fill()
            body += data[position : position + size]
            position += size + 2


def _parse_head(head: bytes) -> tuple[int, bytes]:
    """The status code and the header fields, lower-cased, each line starting with CRLF (the
    client only reads Connection, Transfer-Encoding and Content-Length, whose values are
    case-insensitive or digits)."""
    status_line, _, fields = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _ProtocolError(f"bad status line {status_line[:80]!r}")
    return int(parts[1]), b"\r\n" + fields.lower()


def _field(fields: bytes, name: bytes) -> bytes | None:
    """The value of the last ``name`` field in ``fields`` (from ``_parse_head``), stripped."""
    start = fields.rfind(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = fields.find(b"\r\n", start)
    return fields[start : end if end >= 0 else len(fields)].strip()


def make_ssl_context(*, insecure: bool, ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verifying TLS context (system CAs, or ``ca_bundle``), or an explicit non-verifying one."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"CA bundle {ca_bundle!r} cannot be read: {error}") from None
