"""A lean HTTP/1.1 server on gevent's StreamServer, one greenlet per connection.

Keep-alive (HTTP/1.1 by default, ``Connection: close`` honoured), Content-Length and chunked
request bodies, ``Expect: 100-continue``; a malformed request gets a plain-text 4xx/5xx and the
connection is closed. Bodies over ``MAX_BODY`` are read and discarded (the app sees None), as
certctl's body limit makes its JSON decoder fail without failing the request. Pipelined requests
are served in order. The server's own time for a request runs from the moment its head is parsed
to the moment its response is ready to write, and the request log line is flushed before the
response is written.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from http import HTTPStatus

import gevent
from gevent import monkey, ssl
from gevent.greenlet import Greenlet
from gevent.server import StreamServer

from certctl_load.target.request_log import RequestLog
from certctl_load.target.wire import BadRequest, Head, Request, Response, parse_head, serialise

App = Callable[[Request], Response]

RECV_SIZE = 64 * 1024
MAX_HEAD = 1024 * 1024  # Go's http.DefaultMaxHeaderBytes
MAX_BODY = 1024 * 1024  # certctl's default request body limit
MAX_LINE = 64 * 1024  # a chunk-size or trailer line
READ_TIMEOUT_S = 30.0  # certctl's read timeout, applied to each read once a request has begun
HANDSHAKE_TIMEOUT_S = 10.0
BACKLOG = 4096
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_poll = monkey.get_original("select", "poll")  # the kernel's, asked without waiting
_GONE = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL


class _Closed(Exception):
    """The client closed the connection in the middle of a request."""


class _Connection:
    """One client connection's socket and unread bytes."""

    __slots__ = ("sock", "client", "buffer")

    def __init__(self, sock: socket.socket, client: tuple[str, int]) -> None:
        self.sock = sock
        self.client = client
        self.buffer = bytearray()

    def client_gone(self) -> bool:
        """Whether the client has closed its side of the connection (or it broke), asked now."""
        try:
            poller = _poll()
            poller.register(self.sock.fileno(), select.POLLRDHUP)
            return any(events & _GONE for _, events in poller.poll(0))
        except (OSError, ValueError):
            return True

    def wait_for_request(self, idle_timeout_s: float) -> float | None:
        """Epoch time at which the next request's first bytes were read; None when the client
        closed the connection between requests."""
        if not self.buffer:
            self.sock.settimeout(idle_timeout_s)
            data = self.sock.recv(RECV_SIZE)
            if not data:
                return None
            self.buffer += data
        self.sock.settimeout(READ_TIMEOUT_S)
        return time.time()

    def read_head(self) -> Head:
        if self.buffer.startswith(b"\x16\x03"):
            # A TLS ClientHello on the plain-HTTP port: answer at once, as Go's server soon would.
            raise BadRequest("TLS handshake on a plain HTTP port")
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise BadRequest("request head too large", 431)
            self._fill()
        if end > MAX_HEAD:
            raise BadRequest("request head too large", 431)
        head = parse_head(bytes(self.buffer[:end]))
        del self.buffer[: end + 4]
        return head

    def read_body(self, head: Head) -> bytes | None:
        """The request body; None when it is larger than MAX_BODY (it is read and discarded)."""
        coding = head.headers.get("transfer-encoding")
        if coding is not None:
            if "content-length" in head.headers:
                raise BadRequest("both Transfer-Encoding and Content-Length")
            if coding.lower() != "chunked":
                raise BadRequest("unsupported transfer coding", 501)
            self._continue(head)
            return self._read_chunked()
        length_text = head.headers.get("content-length", "0")
        if not length_text.isdigit():
            raise BadRequest("malformed Content-Length")
        length = int(length_text)
        if length == 0:
            return b""
        self._continue(head)
        return self._take(length, keep=length <= MAX_BODY)

    def _continue(self, head: Head) -> None:
        if (
            not self.buffer
            and head.version == "HTTP/1.1"
            and head.headers.get("expect", "").lower() == "100-continue"
        ):
            self.sock.sendall(_CONTINUE)

    def _fill(self) -> None:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            raise _Closed()
        self.buffer += data

    def _take(self, count: int, *, keep: bool) -> bytes | None:
        """The next ``count`` bytes, or None after discarding them when ``keep`` is false."""
        if keep:
            while len(self.buffer) < count:
                self._fill()
            data = bytes(self.buffer[:count])
            del self.buffer[:count]
            return data
        while True:
            used = min(count, len(self.buffer))
            del self.buffer[:used]
            count -= used
            if not count:
                return None
            self._fill()

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_LINE:
                raise BadRequest("line too long in chunked body")
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        oversized = False
        while True:
            size_text = self._line().split(b";", 1)[0].strip(b" \t")
            if not size_text or len(size_text) > 15 or not _HEX.issuperset(size_text):
                raise BadRequest("malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            oversized = oversized or len(body) + size > MAX_BODY
            chunk = self._take(size, keep=not oversized)
            if chunk is not None:
                body += chunk
            if self._line():
                raise BadRequest("chunk data not followed by CRLF")
        while self._line():  # trailer fields, ignored
            pass
        return None if oversized else bytes(body)


def _error_response(error: BadRequest) -> Response:
    text = f"{error.status} {HTTPStatus(error.status).phrase}"
    return Response(error.status, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (SO_REUSEADDR, as gevent's own listeners)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class HttpServer:
    """Serves ``app`` on ``host``:``port`` (0: any free port), over TLS when ``ssl_context`` is given.

    ``hold``, when given, is called before each response is written (the stall window). Every
    request, malformed ones included, gets a line in ``request_log``. With ``reuse_port``,
    several servers (processes) may listen on one port and the kernel spreads the connections
    over them (SO_REUSEPORT): each process brings its own open-files limit.
    """

    def __init__(
        self,
        app: App,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        request_log: RequestLog | None = None,
        hold: Callable[[], None] | None = None,
        idle_timeout_s: float = 60.0,
        reuse_port: bool = False,
    ) -> None:
        self._app = app
        self._ssl_context = ssl_context
        self._request_log = request_log
        self._hold = hold
        self._idle_timeout_s = idle_timeout_s
        self._address = (host, port)
        self._reuse_port = reuse_port
        self._stream: StreamServer | None = None
        self._stopping = False
        self._idle: set[Greenlet] = set()
        self._busy: set[Greenlet] = set()

    def start(self) -> tuple[str, int]:
        """Listen (OSError when the address is taken) and return the bound host and port."""
        listener = _listen(*self._address, reuse_port=self._reuse_port)
        self._stream = StreamServer(listener, self._serve)
        self._stream.start()
        host, port = listener.getsockname()[:2]
        return host, port

    def stop(self, grace_s: float) -> None:
        """Stop accepting, close idle connections, give requests in progress ``grace_s`` to finish."""
        self._stopping = True
        if self._stream is not None:
            self._stream.close()
        for greenlet in list(self._idle):
            greenlet.kill(block=False)
        gevent.joinall(list(self._busy), timeout=grace_s)
        gevent.killall(list(self._busy | self._idle), timeout=1.0)

    def _serve(self, sock: socket.socket, address: tuple[str, int]) -> None:
        greenlet = gevent.getcurrent()
        self._idle.add(greenlet)
        try:
            if self._ssl_context is not None:
                tls_sock = self._ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                tls_sock.settimeout(HANDSHAKE_TIMEOUT_S)
                tls_sock.do_handshake()
                sock = tls_sock
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock, (address[0], address[1]))
            while not self._stopping and self._serve_one(connection, greenlet):
                pass
        except (OSError, _Closed):  # includes timeouts, resets and TLS errors: the connection just ends
            pass
        finally:
            self._idle.discard(greenlet)
            self._busy.discard(greenlet)
            sock.close()

    def _serve_one(self, connection: _Connection, greenlet: Greenlet) -> bool:
        """Serve the next request; whether the connection stays open for another."""
        arrived = connection.wait_for_request(self._idle_timeout_s)
        if arrived is None:
            return False
        self._idle.discard(greenlet)
        self._busy.add(greenlet)
        head: Head | None = None
        started = time.perf_counter()
        try:
            head = connection.read_head()
            started = time.perf_counter()
            body = connection.read_body(head)
        except BadRequest as error:
            self._respond(connection, head, _error_response(error), arrived, started, keep_alive=False)
            return False
        response = self._app(Request(head, body, connection.client, arrived, started, connection.client_gone))
        keep_alive = head.keep_alive and not self._stopping
        self._respond(connection, head, response, arrived, started, keep_alive=keep_alive)
        self._busy.discard(greenlet)
        self._idle.add(greenlet)
        return keep_alive

    def _respond(
        self,
        connection: _Connection,
        head: Head | None,
        response: Response,
        arrived: float,
        started: float,
        *,
        keep_alive: bool,
    ) -> None:
        if self._hold is not None:
            self._hold()
        data = serialise(response, keep_alive=keep_alive)
        server_ms = (time.perf_counter() - started) * 1000.0
        if self._request_log is not None:
            self._request_log.write(
                arrived=arrived,
                method=head.method if head else None,
                path=head.path if head else None,
                agent=response.agent,
                status=response.status,
                server_ms=server_ms,
                client=connection.client,
            )
        connection.sock.sendall(data)
