"""A generated storm for the pages' tests: 90 s of 1,000 agents every 6 s with a 3 s stall at 45 s,
as requests (when sent, how long, how it failed) and as the timeline's per-second rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from certctl_load.k6.percentiles import percentile

SECONDS = 90
FLEET = 1000
INTERVAL_S = 6
STALL_AT, STALL_S = 45, 3


@dataclass(frozen=True)
class Request:
    sent_s: float  # since t0
    duration_ms: float
    failure: str | None  # the error kind, None for a 200


def storm_requests(seconds: int = SECONDS, rate: float = FLEET / INTERVAL_S) -> list[Request]:
    """A steady storm: ``rate`` requests a second, about 1 ms each, held until the stall ends when sent
    during it; a few 503s after the stall and a few connection resets early on."""
    requests = []
    for i in range(int(seconds * rate)):
        sent = i / rate
        duration = 0.8 + 0.6 * ((i * 7919) % 100) / 100
        if STALL_AT <= sent < STALL_AT + STALL_S:
            duration += (STALL_AT + STALL_S - sent) * 1000
        failure = None
        if 60 <= sent < 63 and i % 100 == 0:
            failure = "503"
        elif 20 <= sent < 21 and i % 80 == 0:
            failure = "ECONNRESET"
        requests.append(Request(sent, duration, failure))
    return requests


def _p(durations: list[float], p: float) -> float | None:
    return percentile(sorted(durations), p) if durations else None


def timeline_of(requests: list[Request], seconds: int = SECONDS) -> dict[str, Any]:
    """The timeline's per-second rows (its file's schema), each sample in the second it was sent."""
    rows = []
    for t in range(seconds):
        sent = [r for r in requests if t <= r.sent_s < t + 1]
        completed = [r for r in requests if t <= r.sent_s + r.duration_ms / 1000 < t + 1]
        failed: dict[str, int] = {}
        for r in sent:
            if r.failure:
                failed[r.failure] = failed.get(r.failure, 0) + 1
        durations = [r.duration_ms for r in sent]
        rows.append(
            {
                "t": t,
                "offered": len(sent),
                "sent": len(sent),
                "completed": len(completed),
                "failed": failed,
                "dropped": 0,
                "late": 3 if t == STALL_AT + STALL_S else 0,
                "p50": _p(durations, 50),
                "p95": _p(durations, 95),
                "p99": _p(durations, 99),
                "lag_p99": 0.4 + (t % 7) / 10,
                "lag_max": 1.5 + (t % 5) / 2,
                "connections": FLEET,
            }
        )
    return {"t0": 1_796_000_000.0, "duration_s": float(seconds), "interval_s": [INTERVAL_S], "rows": rows}
