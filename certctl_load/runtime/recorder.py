"""Turns each finished request into k6 samples (exact) and one Locust ``request`` event, and, for
k6's JSON output (``--out json=FILE``), keeps the raw sample rows too."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certctl_load.k6.metrics import CounterKey, MetricStore, RateKey, TrendKey
from certctl_load.reporting.k6_json import DropRow, GaugeRow, RequestRow
from certctl_load.runtime.httpclient import Exchange
from certctl_load.timeline.timeline import RequestGroup, Timeline


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
    group: RequestGroup


class Samples:
    """The raw rows k6's JSON output is written from, kept only when it is asked for, and only until
    they are written (a local or master run writes them every second; about 250 bytes a request):
    one row per request (:data:`~certctl_load.reporting.k6_json.RequestRow`), per drop and per gauge
    reading, each with its own time. A worker hands them to its master in every report
    (:meth:`take`), the master adds them to its own (:meth:`merge`)."""

    __slots__ = ("requests", "drops", "gauges")

    def __init__(self) -> None:
        self.requests: list[RequestRow] = []
        self.drops: list[DropRow] = []
        self.gauges: list[GaugeRow] = []

    def take(self) -> dict[str, list[Any]]:
        """The rows since the last take, for the wire; new rows go to new lists."""
        wire: dict[str, list[Any]] = {"requests": self.requests, "drops": self.drops, "gauges": self.gauges}
        self.clear()
        return wire

    def clear(self) -> None:
        self.requests, self.drops, self.gauges = [], [], []

    def merge(self, wire: Mapping[str, Sequence[Sequence[Any]]]) -> None:
        """Another process's rows (from :meth:`take`, as the wire gives them: lists for tuples)."""
        self.requests.extend(
            (at, name, status, error, duration, connect, sent, received, late, agent)
            for at, name, status, error, duration, connect, sent, received, late, agent in wire["requests"]
        )
        self.drops.extend((at, name, count) for at, name, count in wire["drops"])
        self.gauges.extend((at, name, value) for at, name, value in wire["gauges"])


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
        timeline: Timeline,
        samples: Samples | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``timeline``: where each request's end goes, by the second it was sent in; ``samples``:
        where the raw rows go when k6's JSON output is asked for (None: nowhere); ``clock`` dates a
        drop's row."""
        self.store = store
        self.timeline = timeline
        self.samples = samples
        self.clock = clock
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
            check_tags = {"scenario": self.scenario, "check": self.check}
            kind = None if expected else (error or str(status))
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
                check=store.rate_key("checks", check_tags),
                failure=failure,
                group=self.timeline.group(tags, check_tags, 200 <= status <= 299, kind),
            )
            self._by_status[cache_key] = keys
        return keys

    def record(
        self, exchange: Exchange, *, late: bool, at: float = 0.0, agent: int = 0, sent_at: float | None = None
    ) -> None:
        """One request sent for a slot: k6's http_* samples, the check, the iteration, Locust's event,
        its end in the timeline. ``at`` (when the request ended) and ``agent`` (its 0-based index)
        date and place its row for k6's JSON output; ``sent_at`` (default ``at``) places it in the
        timeline."""
        keys = self._keys(exchange.status, exchange.error)
        store = self.store
        duration_ms = exchange.duration_s * 1000.0
        connect_ms = exchange.connect_s * 1000.0
        store.add_trend_key(keys.duration, duration_ms)
        store.add_trend_key(keys.connecting, connect_ms)
        store.add_rate_key(keys.failed, keys.failure is not None)
        store.add_counter_key(keys.reqs, 1)
        store.add_counter_key(keys.sent, exchange.sent)
        store.add_counter_key(keys.received, exchange.received)
        store.add_rate_key(keys.check, 200 <= exchange.status <= 299)
        store.add_counter_key(self._iterations, 1)
        if late:
            store.add_counter_key(self._late, 1)
        began = at if sent_at is None else sent_at
        self.timeline.ends.append(
            (began, at, duration_ms, connect_ms, exchange.sent, exchange.received, keys.group)
        )
        samples = self.samples
        if samples is not None:
            samples.requests.append(
                (at, self.name, exchange.status, exchange.error, duration_ms, connect_ms,
                 exchange.sent, exchange.received, late, agent)
            )  # fmt: skip
        self.request_event.fire(
            request_type=self.method,
            name=self.name,
            response_time=duration_ms,
            response_length=exchange.received,
            exception=keys.failure,
            context={},
        )

    def dropped(self, count: int, slots_at: Sequence[float] = ()) -> None:
        """Slots that fell due while the agent could not send: k6's dropped_iterations (``slots_at``:
        when each was due, for the timeline)."""
        if slots_at:
            drops, name = self.timeline.drops, self.name
            drops.extend((slot_at, name) for slot_at in slots_at)
        if count:
            self.store.add_counter_key(self._dropped, count)
            if self.samples is not None:
                self.samples.drops.append((self.clock(), self.name, count))
