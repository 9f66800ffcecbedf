"""Turns each finished request into k6 samples (exact) and one Locust ``request`` event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from certctl_load.k6.metrics import CounterKey, MetricStore, RateKey, TrendKey
from certctl_load.runtime.httpclient import Exchange


class RequestFailed(Exception):
    """What Locust's statistics show for a failed heartbeat: the status or the network error kind."""


class RequestEvent(Protocol):
    """Locust's ``request`` event hook, as the recorders fire it."""

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class _StatusKeys:
    duration: TrendKey
    connecting: TrendKey
    failed: RateKey
    reqs: CounterKey
    sent: CounterKey
    received: CounterKey
    check: RateKey
    failure: RequestFailed | None


def is_expected(status: int) -> bool:
    """k6's ``expected_response``: 200..399 succeeds; anything else, and status 0, fails."""
    return 200 <= status <= 399


class Recorder:
    """Records one call's outcomes (one recorder per call name, shared by a process's agents)."""

    def __init__(
        self,
        store: MetricStore,
        request_event: RequestEvent,
        *,
        scenario: str,
        name: str,
        method: str,
        check: str,
    ) -> None:
        self.store = store
        self.request_event = request_event
        self.scenario = scenario
        self.name = name
        self.method = method
        self.check = check
        self._by_status: dict[tuple[int, str | None], _StatusKeys] = {}
        base = {"scenario": scenario}
        self._iterations = store.counter_key("iterations", base)
        self._dropped = store.counter_key("dropped_iterations", {**base, "name": name})
        self._late = store.counter_key("late_iterations", {**base, "name": name})

    def _keys(self, status: int, error: str | None) -> _StatusKeys:
        cache_key = (status, error)
        keys = self._by_status.get(cache_key)
        if keys is None:
            expected = is_expected(status)
            tags = {
                "scenario": self.scenario,
                "name": self.name,
                "method": self.method,
                "status": str(status),
                "expected_response": "true" if expected else "false",
            }
            if error:
                tags["error"] = error
            store = self.store
            failure = (
                None if expected else RequestFailed(f"network error: {error}" if error else f"HTTP {status}")
            )
            keys = _StatusKeys(
                duration=store.trend_key("http_req_duration", tags),
                connecting=store.trend_key("http_req_connecting", tags),
                failed=store.rate_key("http_req_failed", tags),
                reqs=store.counter_key("http_reqs", tags),
                sent=store.counter_key("data_sent", tags),
                received=store.counter_key("data_received", tags),
                check=store.rate_key("checks", {"scenario": self.scenario, "check": self.check}),
                failure=failure,
            )
            self._by_status[cache_key] = keys
        return keys

    def record(self, exchange: Exchange, *, late: bool) -> None:
        """One request sent for a slot: k6's http_* samples, the check, the iteration, Locust's event."""
        keys = self._keys(exchange.status, exchange.error)
        store = self.store
        duration_ms = exchange.duration_s * 1000.0
        store.add_trend_key(keys.duration, duration_ms)
        store.add_trend_key(keys.connecting, exchange.connect_s * 1000.0)
        store.add_rate_key(keys.failed, keys.failure is not None)
        store.add_counter_key(keys.reqs, 1)
        store.add_counter_key(keys.sent, exchange.sent)
        store.add_counter_key(keys.received, exchange.received)
        store.add_rate_key(keys.check, 200 <= exchange.status <= 299)
        store.add_counter_key(self._iterations, 1)
        if late:
            store.add_counter_key(self._late, 1)
        self.request_event.fire(
            request_type=self.method,
            name=self.name,
            response_time=duration_ms,
            response_length=exchange.received,
            exception=keys.failure,
            context={},
        )

    def dropped(self, count: int) -> None:
        """Slots that fell due while the agent could not send: k6's dropped_iterations."""
        if count:
            self.store.add_counter_key(self._dropped, count)
