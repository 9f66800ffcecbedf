"""What went wrong, in words: failed requests by status and network error, with hints,
and the early stop when the target plainly cannot take the storm (rate limiter, token, seed)."""

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

# Statuses that mean the target cannot take this storm at all; seen early, they stop the run.
EARLY_STOP_STATUSES = ("429", "401", "404")
EARLY_WINDOW_S = 15.0
EARLY_MIN_COUNT = 10
EARLY_MIN_FRACTION = 0.10


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


def early_stop_reason(store: MetricStore, scenario: str, seconds_since_t0: float) -> str | None:
    """A one-line diagnosis when, early in the run, many requests fail with 429, 401 or 404."""
    if seconds_since_t0 > EARLY_WINDOW_S:
        return None
    total = store.select("http_reqs", {"scenario": scenario}).count
    if not total:
        return None
    by_status = store.counts_by("http_reqs", "status", {"scenario": scenario})
    for status in EARLY_STOP_STATUSES:
        count = by_status.get(status, 0)
        if count >= EARLY_MIN_COUNT and count >= EARLY_MIN_FRACTION * total:
            return (
                f"stopped early: {int(count)} of the first {int(total)} heartbeats answered {status}; "
                f"{HINTS[status]}"
            )
    return None
