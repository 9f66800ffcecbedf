"""The reference target's certctl contract, over real HTTP against a real target process."""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
import requests
from target_process import running_target

from certctl_load.model import fleet
from certctl_load.target.store import METADATA_LIMITS, RETIRED_REASON

pytestmark = pytest.mark.e2e

FLEET = 40
RETIRED = 2  # agents 39 and 40
AUTH = {"Authorization": "Bearer load-test-token"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TEXT = "text/plain; charset=utf-8"


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    log = tmp_path_factory.mktemp("target") / "requests.jsonl"
    with running_target("--fleet-size", str(FLEET), "--retired", str(RETIRED), request_log=log) as running:
        yield running


@pytest.fixture
def api(target):
    """``api(method, path, **requests_kwargs)`` against the target, authenticated unless headers are given."""
    session = requests.Session()

    def call(method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("headers", AUTH)
        return session.request(method, target.url + path, timeout=10, **kwargs)

    yield call
    session.close()


def heartbeat_path(g: int) -> str:
    return f"/api/v1/agents/{fleet.agent_id(g)}/heartbeat"


def agent_row(api, g: int) -> dict:
    response = api("GET", f"/api/v1/agents/{fleet.agent_id(g)}")
    assert response.status_code == 200
    return response.json()


def raw_exchange(target, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_health_and_ready_answer_without_auth(api):
    health = api("GET", "/health", headers={})
    assert (health.status_code, health.content) == (200, b'{"status":"healthy"}\n')
    assert health.headers["Content-Type"] == "application/json"
    ready = api("GET", "/ready", headers={})
    assert (ready.status_code, ready.content) == (200, b'{"status":"ready","db":"reachable"}\n')


def test_a_heartbeat_is_recorded_with_certctls_answer(api):
    before = agent_row(api, 1)
    response = api("POST", heartbeat_path(1), json=fleet.heartbeat_metadata(1))
    assert response.status_code == 200
    assert response.content == b'{"status":"heartbeat_recorded"}\n'
    assert response.headers["Content-Type"] == "application/json"
    after = agent_row(api, 1)
    assert after["last_heartbeat_at"] > before["last_heartbeat_at"]
    assert {k: v for k, v in after.items() if k != "last_heartbeat_at"} == {
        k: v for k, v in before.items() if k != "last_heartbeat_at"
    }


def test_get_agent_shows_the_seeded_row(api):
    row = agent_row(api, 10)
    seed = fleet.seed_row(10)
    for column in (
        "id",
        "name",
        "hostname",
        "status",
        "api_key_hash",
        "os",
        "architecture",
        "ip_address",
        "version",
    ):
        assert row[column] == getattr(seed, column), column
    assert row["retired_at"] is None and row["retired_reason"] is None
    retired = agent_row(api, FLEET)
    assert retired["retired_at"] is not None and retired["retired_reason"] == RETIRED_REASON
    unknown = api("GET", "/api/v1/agents/ag-nobody")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "Not Found",
        "message": "Agent not found",
        "request_id": unknown.headers["X-Request-ID"],
    }


def test_every_response_carries_a_fresh_request_id(api):
    responses = [
        api("GET", "/health", headers={}),
        api("POST", heartbeat_path(2)),
        api("POST", heartbeat_path(2), headers={}),
        api("POST", "/api/v1/agents/ag-nobody/heartbeat"),
        api("GET", heartbeat_path(2)),
        api("GET", "/no/such/path"),
    ]
    ids = [response.headers["X-Request-ID"] for response in responses]
    assert all(UUID.match(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        (None, '{"error":"Authorization header required"}'),
        (
            "bearer load-test-token",
            '{"error":"Invalid Authorization header format, expected: Bearer <token>"}',
        ),
        ("Bearer", '{"error":"Invalid Authorization header format, expected: Bearer <token>"}'),
        (
            "Token load-test-token",
            '{"error":"Invalid Authorization header format, expected: Bearer <token>"}',
        ),
        ("Bearer not-the-token", '{"error":"Invalid API key"}'),
        ("Bearer load-test-token2", '{"error":"Invalid API key"}'),
    ],
)
def test_authentication_failures_are_certctls_401s(api, authorization, body):
    headers = {} if authorization is None else {"Authorization": authorization}
    before = agent_row(api, 3)
    response = api("POST", heartbeat_path(3), headers=headers, json=fleet.heartbeat_metadata(3))
    assert response.status_code == 401
    assert response.text == body + "\n"
    assert response.headers["Content-Type"] == TEXT
    assert json.loads(response.text)["error"]
    challenge = response.headers.get("WWW-Authenticate")
    assert challenge == ('Bearer realm="certctl"' if authorization is None else None)
    assert agent_row(api, 3) == before


def test_auth_check_names_the_key(api):
    response = api("GET", "/api/v1/auth/check")
    assert response.json() == {"status": "authenticated", "user": "legacy-key-0", "admin": False}
    assert api("GET", "/api/v1/auth/check", headers={}).status_code == 401


def test_an_unknown_agent_is_404(api):
    response = api("POST", "/api/v1/agents/ag-loadtest-99999/heartbeat", json={"version": "1"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "Not Found",
        "message": "Agent not found",
        "request_id": response.headers["X-Request-ID"],
    }


def test_a_retired_agent_is_410_and_nothing_is_written(api):
    before = agent_row(api, FLEET - 1)
    response = api("POST", heartbeat_path(FLEET - 1), json={"version": "9.9.9", "os": "plan9"})
    assert response.status_code == 410
    assert response.json() == {
        "error": "Gone",
        "message": "Agent has been retired",
        "request_id": response.headers["X-Request-ID"],
    }
    assert agent_row(api, FLEET - 1) == before


def test_other_methods_are_405_after_auth(api):
    for method in ("GET", "PUT", "DELETE"):
        response = api(method, heartbeat_path(4))
        assert response.status_code == 405, method
        assert response.text == "Method Not Allowed\n"
        assert response.headers["Content-Type"] == TEXT
        assert response.headers["Allow"] == "POST"
    assert api("GET", heartbeat_path(4), headers={}).status_code == 401


def test_the_work_poll(api):
    known = api("GET", f"/api/v1/agents/{fleet.agent_id(5)}/work")
    assert (known.status_code, known.content) == (200, b'{"jobs":[],"count":0}\n')
    retired = api("GET", f"/api/v1/agents/{fleet.agent_id(FLEET)}/work")
    assert (retired.status_code, retired.json()) == (200, {"jobs": [], "count": 0})
    unknown = api("GET", "/api/v1/agents/ag-nobody/work")
    assert unknown.status_code == 500
    assert unknown.json() == {
        "error": "Internal Server Error",
        "message": "Failed to get pending work",
        "request_id": unknown.headers["X-Request-ID"],
    }
    assert api("GET", f"/api/v1/agents/{fleet.agent_id(5)}/work", headers={}).status_code == 401


def test_metadata_updates_only_non_empty_values(api):
    before = agent_row(api, 6)
    body = {"version": "3.0.0", "hostname": "", "os": "", "architecture": "riscv64", "ignored": 1}
    assert api("POST", heartbeat_path(6), json=body).status_code == 200
    after = agent_row(api, 6)
    assert (after["version"], after["architecture"]) == ("3.0.0", "riscv64")
    assert (after["hostname"], after["os"], after["ip_address"]) == (
        before["hostname"],
        before["os"],
        before["ip_address"],
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b'["version", "4.0"]',
        b'{"version": 4, "os": "beos"}',  # a field of the wrong type voids the whole body, as in Go
        b"null",
    ],
)
def test_bodies_without_usable_metadata_only_touch_the_timestamp(api, body):
    before = agent_row(api, 7)
    response = api("POST", heartbeat_path(7), data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 200
    after = agent_row(api, 7)
    assert after["last_heartbeat_at"] > before["last_heartbeat_at"]
    assert {k: v for k, v in after.items() if k != "last_heartbeat_at"} == {
        k: v for k, v in before.items() if k != "last_heartbeat_at"
    }


def test_go_decoder_quirks_are_kept(api):
    """Only the first JSON value counts, and field names match case-insensitively."""
    body = b' {"VERSION": "5.0", "Os": "haiku"} trailing bytes'
    assert api("POST", heartbeat_path(8), data=body).status_code == 200
    row = agent_row(api, 8)
    assert (row["version"], row["os"]) == ("5.0", "haiku")


def test_an_oversized_body_is_ignored_and_the_connection_kept(target, api):
    before = agent_row(api, 9)
    big = json.dumps({"version": "6.0", "padding": "x" * (2 * 1024 * 1024)}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    conn.request("POST", heartbeat_path(9), body=big, headers=AUTH)
    first = conn.getresponse()
    assert (first.status, first.read()) == (200, b'{"status":"heartbeat_recorded"}\n')
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200  # same connection
    conn.close()
    assert agent_row(api, 9)["version"] == before["version"]


@pytest.mark.parametrize("column", list(METADATA_LIMITS))
def test_a_metadata_value_longer_than_its_column_is_500(api, column):
    g = 11 + list(METADATA_LIMITS).index(column)
    limit = METADATA_LIMITS[column]
    before = agent_row(api, g)
    response = api("POST", heartbeat_path(g), json={"version": "7.0", column: "v" * (limit + 1)})
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal Server Error",
        "message": "Failed to record heartbeat",
        "request_id": response.headers["X-Request-ID"],
    }
    assert agent_row(api, g) == before
    assert api("POST", heartbeat_path(g), json={column: "v" * limit}).status_code == 200
    assert agent_row(api, g)[column] == "v" * limit


def test_a_chunked_body_is_read(target, api):
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    chunks = iter([b'{"version": ', b'"8.0"}'])
    conn.request(
        "POST",
        heartbeat_path(20),
        body=chunks,
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert conn.getresponse().status == 200
    conn.close()
    assert agent_row(api, 20)["version"] == "8.0"


def test_expect_100_continue_is_honoured(target):
    body = b'{"version": "8.1"}'
    head = (
        f"POST {heartbeat_path(21)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer load-test-token\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'{"status":"heartbeat_recorded"}\n')


def test_keep_alive_until_the_client_says_close(target):
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    conn.connect()
    sock = conn.sock
    for _ in range(3):
        conn.request("POST", heartbeat_path(22), body=b"{}", headers=AUTH)
        response = conn.getresponse()
        assert (response.status, response.getheader("Connection")) == (200, None)
        response.read()
        assert conn.sock is sock  # still the first connection
    conn.close()
    # raw_exchange returns only once the server has closed the connection
    closed = raw_exchange(target, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert closed.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close\r\n" in closed
    old_http = raw_exchange(target, b"GET /health HTTP/1.0\r\n\r\n")  # HTTP/1.0: one response, then closed
    assert old_http.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close\r\n" in old_http


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400 Bad Request"),
        (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request"),
        (b"POST /health HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"400 Bad Request"),
        (b"GET /health HTTP/2.0\r\n\r\n", b"505 HTTP Version Not Supported"),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b"501 Not Implemented"),
    ],
)
def test_a_malformed_request_gets_an_error_and_the_connection_closes(target, request_bytes, status):
    answer = raw_exchange(target, request_bytes + b"GET /health HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 " + status + b"\r\n")
    assert b"Connection: close\r\n" in answer
    assert answer.count(b"HTTP/1.1 ") == 1  # the request after it was not served
