"""certctl's agent API as the reference target serves it: rate limiter, API-key auth, routes, handlers.

Statuses, bodies and content types follow certctl (Go): JSON bodies end with a newline, errors
written with Go's ``http.Error`` are ``text/plain`` with a JSON-looking or plain message, and
every response carries a fresh ``X-Request-Id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from certctl_load.target.capacity import CapacityQueue
from certctl_load.target.faults import EvenSpread, HeartbeatTiming, sleep_until
from certctl_load.target.metadata import parse_metadata
from certctl_load.target.ratelimit import RateLimiter
from certctl_load.target.store import AgentStore, HeartbeatOutcome
from certctl_load.target.wire import Request, Response

log = logging.getLogger(__name__)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_JSON_HEADERS = (("Content-Type", "application/json"),)
_TEXT_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"))
_AGENTS_PREFIX = "/api/v1/agents/"
_METHODS = {"agent": "GET", "heartbeat": "POST", "work": "GET", "auth_check": "GET"}
_HEARTBEAT_FAILURES = {
    HeartbeatOutcome.NOT_FOUND: "Agent not found",
    HeartbeatOutcome.RETIRED: "Agent has been retired",
    HeartbeatOutcome.ERROR: "Failed to record heartbeat",
}
_RECORDED = b'{"status":"heartbeat_recorded"}\n'
_NO_WORK = b'{"jobs":[],"count":0}\n'


def _json(status: int, value: Any) -> Response:
    return Response(status, _encode(value).encode() + b"\n", list(_JSON_HEADERS))


def _error(status: int, message: str, request_id: str) -> Response:
    """certctl's ErrorWithRequestID: a JSON error naming the request."""
    return _json(status, {"error": HTTPStatus(status).phrase, "message": message, "request_id": request_id})


def _plain(status: int, text: str, *headers: tuple[str, str]) -> Response:
    """Go's ``http.Error``: plain text and a newline."""
    return Response(status, text.encode() + b"\n", [*_TEXT_HEADERS, *headers])


def _route(path: str) -> tuple[str, str | None]:
    """The route's name and the agent id in the path (percent-decoded), if any."""
    if path == "/health" or path == "/ready":
        return path[1:], None
    if path == "/api/v1/auth/check":
        return "auth_check", None
    if path.startswith(_AGENTS_PREFIX):
        segments = path[len(_AGENTS_PREFIX) :].split("/")
        if segments[0]:
            agent = unquote(segments[0]) if "%" in segments[0] else segments[0]
            if len(segments) == 1:
                return "agent", agent
            if len(segments) == 2 and segments[1] in ("heartbeat", "work"):
                return segments[1], agent
    return "unknown", None


class ApiKeys:
    """certctl's API-key check: ``Authorization: Bearer <key>`` against a set of keys, each named
    ``legacy-key-N`` as certctl names keys from CERTCTL_AUTH_SECRET."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one API key is needed")
        self._hashes = [
            (hashlib.sha256(key.encode()).digest(), f"legacy-key-{n}") for n, key in enumerate(keys)
        ]

    def user(self, authorization: str) -> str | Response:
        """The key's name, or certctl's 401 response."""
        if not authorization:
            return _plain(
                401,
                '{"error":"Authorization header required"}',
                ("Www-Authenticate", 'Bearer realm="certctl"'),
            )
        if len(authorization) < 8 or not authorization.startswith("Bearer "):
            return _plain(401, '{"error":"Invalid Authorization header format, expected: Bearer <token>"}')
        digest = hashlib.sha256(authorization[7:].encode()).digest()
        for key_hash, name in self._hashes:
            if hmac.compare_digest(digest, key_hash):
                return name
        return _plain(401, '{"error":"Invalid API key"}')


class CertctlApp:
    """The request handler: ``app(request) -> response``.

    ``timing`` sets each heartbeat's duration; ``errors`` picks the heartbeats that answer
    certctl's 500 without touching the store. Both count, in arrival order, the heartbeats that
    reach the handler (past the rate limiter, authentication and the method check). ``capacity``
    serves heartbeats one at a time at its rate, first in first out (the ``--capacity`` model).
    """

    def __init__(
        self,
        store: AgentStore,
        keys: ApiKeys,
        *,
        limiter: RateLimiter | None = None,
        timing: HeartbeatTiming | None = None,
        errors: EvenSpread | None = None,
        capacity: CapacityQueue | None = None,
    ) -> None:
        self._store = store
        self._capacity = capacity
        self._keys = keys
        self._limiter = limiter
        self._timing = timing or HeartbeatTiming()
        self._errors = errors

    def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        route, agent = _route(request.path)
        try:
            response = self._dispatch(request, route, agent, request_id)
        except Exception:  # certctl's Recovery middleware
            log.exception("panic recovered in HTTP handler, request_id %s", request_id)
            response = _plain(500, '{"error":"Internal Server Error"}')
        response.headers.append(("X-Request-Id", request_id))
        response.agent = agent
        return response

    def _dispatch(self, request: Request, route: str, agent: str | None, request_id: str) -> Response:
        if self._limiter is not None and not self._limiter.allow(request.client[0]):
            return _plain(429, '{"error":"Rate limit exceeded"}', ("Retry-After", "1"))
        if route in ("health", "ready"):
            if request.method != "GET":
                return _plain(405, "Method not allowed")
            if route == "health":
                return _json(200, {"status": "healthy"})
            if self._store.is_ready():
                return _json(200, {"status": "ready", "db": "reachable"})
            return _json(503, {"status": "not_ready", "db": "unreachable"})
        user = self._keys.user(request.header("authorization"))
        if isinstance(user, Response):
            return user
        if route == "unknown":
            return _plain(404, "404 page not found")
        if request.method != _METHODS[route]:
            return _plain(405, "Method Not Allowed", ("Allow", _METHODS[route]))
        if route == "auth_check":
            return _json(200, {"status": "authenticated", "user": user, "admin": False})
        assert agent is not None  # the agent routes all name one
        if route == "heartbeat":
            return self._heartbeat(request, agent, request_id)
        if route == "work":
            if self._store.agent_exists(agent):
                return Response(200, _NO_WORK, list(_JSON_HEADERS))
            return _error(500, "Failed to get pending work", request_id)
        return self._get_agent(agent, request_id)

    def _heartbeat(self, request: Request, agent: str, request_id: str) -> Response:
        if self._capacity is not None and not self._capacity.wait(request.started, request.client_gone):
            return _plain(503, "client gone")  # dropped from the queue: nobody reads this
        deadline = request.started + self._timing.next_duration()
        if self._errors is not None and self._errors.pick():
            outcome = HeartbeatOutcome.ERROR
        else:
            outcome = self._store.heartbeat(agent, parse_metadata(request.body))
        sleep_until(deadline)
        if outcome is HeartbeatOutcome.RECORDED:
            return Response(200, _RECORDED, list(_JSON_HEADERS))
        return _error(outcome.value, _HEARTBEAT_FAILURES[outcome], request_id)

    def _get_agent(self, agent: str, request_id: str) -> Response:
        try:
            row = self._store.get_agent(agent)
        except Exception as error:  # certctl answers 404 whatever went wrong
            log.warning("get agent %s failed: %s", agent, error)
            row = None
        if row is None:
            return _error(404, "Agent not found", request_id)
        return _json(200, row)
