"""What went wrong, in words: failed requests by status and network error, with hints."""

from __future__ import annotations

from dataclasses import dataclass

from certctl_load.k6.metrics import MetricStore

HINTS = {
    "401": "the token was rejected: set CERTCTL_TOKEN to one of the server's CERTCTL_AUTH_SECRET keys",
    "404": "agents unknown to the server: seed the fleet (certctl-load seed --dsn DSN --fleet-size N)",
    "410": "retired agents in the fleet: re-seed it (certctl-load seed) to return them to service",
    "429": "certctl's per-IP rate limiter (50 req/s, burst 100 by default) is on: run certctl-server "
    "with CERTCTL_RATE_LIMIT_ENABLED=false",
    "500": "server errors: look at certctl-server's log and its database",
    "503": "the server is not ready: its database may be unreachable",
    "connection_refused": "the target refused connections: it is down or not listening",
    "connection_reset": "the target reset connections: it crashed or is overloaded",
    "closed_before_response": "the target closed connections without answering",
    "timeout": "requests timed out: the target stalled",
    "tls_verify_failed": "TLS verification failed: give the CA with --ca-bundle, or use --insecure",
    "no_local_resources": "the load generator ran out of sockets or ports: raise its open-files limit",
}


@dataclass(frozen=True)
class FailureRow:
    """Failed requests of one kind: an HTTP status (``"429"``) or a network error (``"timeout"``)."""

    kind: str
    count: int
    hint: str | None


def failure_breakdown(store: MetricStore, scenario: str) -> list[FailureRow]:
    """Failed requests split by status, and status 0 split by network error kind; most first."""
    failed = {"scenario": scenario, "expected_response": "false"}
    by_status = store.counts_by("http_reqs", "status", failed)
    network = by_status.pop("0", 0)
    counts = dict(by_status)
    if network:
        counts.update(store.counts_by("http_reqs", "error", {**failed, "status": "0"}))
    rows = [FailureRow(kind, int(count), _hint(kind)) for kind, count in counts.items() if count]
    return sorted(rows, key=lambda row: (-row.count, row.kind))


def _hint(kind: str) -> str | None:
    if kind in HINTS:
        return HINTS[kind]
    if kind.isdigit() and kind.startswith("5"):
        return HINTS["500"]
    return None


def render_breakdown(rows: list[FailureRow]) -> str:
    """The failures section of the printed output (empty when nothing failed)."""
    if not rows:
        return ""
    width = max(len(row.kind) for row in rows)
    lines = ["failed requests by status or network error:"]
    for row in rows:
        label = f"HTTP {row.kind}" if row.kind.isdigit() else row.kind
        hint = f"  ({row.hint})" if row.hint else ""
        lines.append(f"  {label:<{width + 5}} {row.count:>8}{hint}")
    return "\n".join(lines)
