"""Checks before any load: the target answers, the token is accepted, the fleet is seeded.

Every failure is one line naming what is wrong; no heartbeat is ever sent here.
"""

from __future__ import annotations

import json
import socket
import ssl

from certctl_load.errors import TargetNotReady
from certctl_load.model import fleet
from certctl_load.model.config import RunConfig
from certctl_load.runtime.httpclient import Connection, Exchange, build_request

_TIMEOUT_S = 10.0
_TLS_TO_PLAIN_MARKER = b"HTTP request to an HTTPS server"


def _get(connection: Connection, config: RunConfig, path: str, *, auth: bool) -> Exchange:
    headers = {"Accept": "application/json", "User-Agent": "certctl-load-preflight"}
    if auth:
        headers["Authorization"] = f"Bearer {config.token}"
    return connection.request(build_request(config.endpoint, "GET", path, headers), want_body=True)


def _unreachable(config: RunConfig, exchange: Exchange, ssl_error: str | None) -> str:
    where = config.host
    kind = exchange.error
    if kind == "tls_verify_failed":
        detail = f" ({ssl_error})" if ssl_error else ""
        return (
            f"TLS verification of {where} failed{detail}: give its CA with --ca-bundle "
            "(or CERTCTL_CA_BUNDLE), or skip verification explicitly with --insecure"
        )
    if kind == "tls_error":
        return (
            f"TLS handshake with {where} failed ({ssl_error or 'no detail'}): "
            "if the target serves plain HTTP, use an http:// host"
        )
    if kind == "connection_refused":
        return f"{where} refused the connection: is the server running and listening there?"
    if kind == "timeout":
        return f"{where} did not answer /health within {_TIMEOUT_S:g}s"
    if kind == "dns_error":
        return f"host name of {where} does not resolve"
    if kind in ("bad_response", "closed_before_response", "connection_reset") and not config.endpoint.is_tls:
        return f"{where} did not answer plain HTTP on /health: if it serves HTTPS, use an https:// host"
    return f"{where} is unreachable ({kind})"


def _ssl_detail(config: RunConfig, ssl_context: ssl.SSLContext | None) -> str | None:
    """Re-run the TLS handshake alone, to name the verification failure exactly."""
    if not config.endpoint.is_tls or ssl_context is None:
        return None
    try:
        with (
            socket.create_connection((config.endpoint.host, config.endpoint.port), timeout=_TIMEOUT_S) as raw,
            ssl_context.wrap_socket(raw, server_hostname=config.endpoint.host),
        ):
            return None
    except ssl.SSLCertVerificationError as error:
        return f"certificate verify failed: {error.verify_message}" if error.verify_message else str(error)
    except (ssl.SSLError, OSError) as error:
        return getattr(error, "reason", None) or str(error)


def check_target(config: RunConfig, ssl_context: ssl.SSLContext | None) -> list[str]:
    """Every preflight failure as one line; an empty list means the target is ready for the storm."""
    connection = Connection(config.endpoint, ssl_context=ssl_context, timeout_s=_TIMEOUT_S)
    try:
        health = _get(connection, config, "/health", auth=False)
        if health.status == 0:
            return [_unreachable(config, health, _ssl_detail(config, ssl_context))]
        if health.status == 400 and _TLS_TO_PLAIN_MARKER in health.body:
            return [f"{config.host} serves HTTPS: use an https:// host"]
        if health.status == 429:
            return [_rate_limited(config)]
        if health.status != 200:
            return [f"{config.host}/health answered {health.status}: the server is not healthy"]

        auth = _get(connection, config, "/api/v1/auth/check", auth=True)
        if auth.status == 401:
            return [
                "the token was rejected (401 from /api/v1/auth/check): set CERTCTL_TOKEN to one of "
                "the server's CERTCTL_AUTH_SECRET keys"
            ]
        if auth.status == 429:
            return [_rate_limited(config)]
        if auth.status != 200:
            return [
                f"/api/v1/auth/check answered {auth.status} (expected 200): {auth.error or ''}".rstrip(": ")
            ]

        failures = []
        for number in sorted({1, config.fleet_size}):
            failures += _check_agent(connection, config, number)
        return failures
    finally:
        connection.close()


def _check_agent(connection: Connection, config: RunConfig, number: int) -> list[str]:
    agent_id = fleet.agent_id(number, config.scenario.id_prefix)
    answer = _get(connection, config, f"/api/v1/agents/{agent_id}", auth=True)
    if answer.status == 404:
        return [
            f"agent {agent_id} (number {number} of the fleet) is unknown to the server: seed the fleet "
            f"first (certctl-load seed --dsn DSN --fleet-size {config.fleet_size})"
        ]
    if answer.status != 200:
        return [f"GET /api/v1/agents/{agent_id} answered {answer.status or answer.error} (expected 200)"]
    try:
        retired_at = json.loads(answer.body).get("retired_at")
    except (ValueError, AttributeError):
        return [f"GET /api/v1/agents/{agent_id} answered 200 without an agent JSON object"]
    if retired_at:
        return [
            f"agent {agent_id} is retired (since {retired_at}): certctl answers 410 to its heartbeats; "
            "re-seed the fleet (certctl-load seed) to return it to service"
        ]
    return []


def _rate_limited(config: RunConfig) -> str:
    return (
        f"{config.host} answered 429: certctl's per-IP rate limiter is on (50 req/s, burst 100 by "
        "default); run certctl-server with CERTCTL_RATE_LIMIT_ENABLED=false"
    )


def run_preflight(config: RunConfig, ssl_context: ssl.SSLContext | None) -> None:
    """Raise TargetNotReady (exit code 2) listing every failure, one per line."""
    failures = check_target(config, ssl_context)
    if failures:
        raise TargetNotReady("\n".join(f"preflight: {line}" for line in failures))
