"""The lean HTTP/1.1 client against small scripted servers on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from helpers import free_port

from certctl_load.errors import ConfigError
from certctl_load.model.endpoint import parse_endpoint
from certctl_load.runtime.httpclient import Connection, build_request

Handler = Callable[[socket.socket, int], None]


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
    return data


@contextmanager
def scripted_server(handler: Handler) -> Iterator[tuple[str, list[int]]]:
    """Serve each accepted connection with ``handler(conn, n)``; yields the URL and connection count."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=handler, args=(conn, len(accepted)), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        listener.close()


def keep_alive_ok(conn: socket.socket, _: int) -> None:
    with conn:
        while read_request(conn):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n"
                b'{"status":"heartbeat_recorded"}'
            )


def raw_request(url: str, body: bytes = b"{}") -> bytes:
    return build_request(
        parse_endpoint(url), "POST", "/api/v1/agents/a/heartbeat", {"Content-Type": "application/json"}, body
    )


def test_keep_alive_reuses_one_connection_and_times_the_exchange():
    with scripted_server(keep_alive_ok) as (url, accepted):
        connection = Connection(parse_endpoint(url))
        first = connection.request(raw_request(url))
        second = connection.request(raw_request(url))
        connection.close()
    assert (first.status, second.status) == (200, 200)
    assert first.connect_s > 0 and second.connect_s == 0
    assert (
        first.received
        == len(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n") + 31
    )
    assert 0 < second.duration_s < 1
    assert len(accepted) == 1


def test_request_bytes_carry_host_length_and_body():
    raw = raw_request("http://127.0.0.1:8080/base", b'{"a":1}')
    assert raw.startswith(b"POST /base/api/v1/agents/a/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert b"Content-Length: 7\r\n" in raw and raw.endswith(b'\r\n\r\n{"a":1}')


def test_a_connection_closed_by_the_server_while_idle_is_replaced_transparently():
    def one_answer_then_close(conn: socket.socket, _: int) -> None:
        with conn:
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with scripted_server(one_answer_then_close) as (url, accepted):
        connection = Connection(parse_endpoint(url))
        results = [connection.request(raw_request(url)) for _ in range(3)]
    assert [r.status for r in results] == [200, 200, 200]
    assert all(r.error is None for r in results)
    assert len(accepted) == 3


def test_chunked_bodies_and_connection_close_are_read_fully():
    def chunked(conn: socket.socket, _: int) -> None:
        with conn:
            read_request(conn)
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )

    with scripted_server(chunked) as (url, accepted):
        connection = Connection(parse_endpoint(url))
        first = connection.request(raw_request(url), want_body=True)
        second = connection.request(raw_request(url), want_body=True)
    assert (first.status, first.body) == (404, b"hello world")
    assert second.status == 404 and len(accepted) == 2


@pytest.mark.parametrize(
    ("answer", "status", "body", "connections"),
    [
        # Field names and the values read are case-insensitive; the last Content-Length counts.
        (b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 9\r\ncontent-length:  5\r\n\r\nhello", 200, b"hello", 1),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\nConnection: Close\r\n\r\nno", 503, b"no", 2),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, b"ok", 1),
        (b"HTTP/1.1 204 No Content\r\nX-Content-Length: 7\r\n\r\n", 204, b"", 1),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", 0, b"", 2),
    ],
)
def test_response_heads_are_read_by_the_fields_that_matter(answer, status, body, connections):
    def answering(conn: socket.socket, _: int) -> None:
        with conn:
            while read_request(conn):
                conn.sendall(answer)

    with scripted_server(answering) as (url, accepted):
        connection = Connection(parse_endpoint(url))
        first = connection.request(raw_request(url), want_body=True)
        second = connection.request(raw_request(url), want_body=True)
    assert (first.status, first.body, second.status) == (status, body, status)
    assert first.error == (None if status else "bad_response")
    assert len(accepted) == connections


def test_network_failures_are_status_zero_with_a_kind_and_a_measured_duration():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    refused = Connection(parse_endpoint(url)).request(raw_request(url))
    assert (refused.status, refused.error) == (0, "connection_refused")

    def hang_up(conn: socket.socket, _: int) -> None:
        read_request(conn)
        conn.close()

    with scripted_server(hang_up) as (url, _):
        closed = Connection(parse_endpoint(url)).request(raw_request(url))
    assert (closed.status, closed.error) == (0, "closed_before_response")


def test_a_silent_server_times_out():
    def silent(conn: socket.socket, _: int) -> None:
        read_request(conn)
        threading.Event().wait(3)
        conn.close()

    with scripted_server(silent) as (url, _):
        result = Connection(parse_endpoint(url), timeout_s=0.3).request(raw_request(url))
    assert (result.status, result.error) == (0, "timeout")
    assert result.duration_s >= 0.29


def test_garbage_answers_are_bad_responses():
    def garbage(conn: socket.socket, _: int) -> None:
        with conn:
            read_request(conn)
            conn.sendall(b"SMTP ready\r\n\r\n")

    with scripted_server(garbage) as (url, _):
        result = Connection(parse_endpoint(url)).request(raw_request(url))
    assert (result.status, result.error) == (0, "bad_response")


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://host:notaport", "certctl-server:8443"])
def test_bad_target_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="host"):
        parse_endpoint(url)
