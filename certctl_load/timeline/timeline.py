"""A run's timeline in one process: per-second figures gathered from the hot path in batches, final
once every request sent in a second has ended, windowed thresholds judged as seconds become final.

The hot path only appends: each request's send time to :attr:`Timeline.sends` and, when it ends, a
row to :attr:`Timeline.ends`; a late beat's slot to :attr:`Timeline.late`, a dropped slot to
:attr:`Timeline.drops`, the generator's samples to :attr:`Timeline.samples`. :meth:`Timeline.fold`
(once a second) sorts them into seconds. Memory: the rows of final seconds (compact lists), the
seconds still open, and a ring of the last W seconds' samples of the keys windowed thresholds name.

Distributed, each worker's timeline hands its partial seconds to the master (:meth:`take_delta`)
with its watermark (every second before it is final on that worker); the master's timeline merges
them (:meth:`merge`) and calls a second final once it is before every worker's watermark.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certctl_load.k6.metrics import METRICS
from certctl_load.k6.thresholds import Threshold, ThresholdResult, measure
from certctl_load.timeline.offered import offered_in_second
from certctl_load.timeline.parts import Part, window_aggregate
from certctl_load.timeline.seconds import Second, amend_row, build_row, row_dict
from certctl_load.timeline.windows import WindowVerdict, window_ending_at

# A second is final no sooner than this long after its end: a beat woken late records its
# lateness or its dropped slots in it first.
GRACE_S = 1.0

# What one request's end row holds: (sent_at, ended_at, duration_ms, connect_ms, bytes sent,
# bytes received, its RequestGroup)
EndRow = tuple[float, float, float, float, int, int, "RequestGroup"]
# Columns of an end row a request metric takes its sample from (-1: a constant).
_REQUEST_METRICS: dict[str, int] = {
    "http_req_duration": 2, "http_req_connecting": 3, "data_sent": 4, "data_received": 5,
    "http_req_failed": -1, "http_reqs": -1, "checks": -1, "iterations": -1,
}  # fmt: skip


@dataclass(frozen=True)
class RequestGroup:
    """The requests of one call with one status and network error: the failure kind the summary's
    breakdown names them by (None when they succeeded), and which windowed keys their samples feed:
    (key index, end-row column, or -1 and the constant value)."""

    kind: str | None
    routes: tuple[tuple[int, int, float], ...]


def _seconds(offsets: list[float]) -> list[int]:
    """Whole seconds since t0 of each offset; one before t0 (none should be) counts in second 0."""
    seconds = [int(offset) for offset in offsets]  # int() truncates: (-1, 0) is 0 already
    return seconds if not seconds or min(seconds) >= 0 else [max(0, s) for s in seconds]


def _per_second(offsets: list[float]) -> Counter[int]:
    return Counter(_seconds(offsets))


def _matches(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    return all(tags.get(key) == value for key, value in selector.items())


class Timeline:
    """The per-second figures of one run in one process (a master's: the whole fleet's)."""

    def __init__(self, thresholds: Sequence[Threshold], scenario: str, *, worker: bool = False) -> None:
        """``thresholds``: the run's (the windowed ones are judged here); ``worker``: this process
        hands its seconds to a master rather than judging them."""
        self.scenario = scenario
        self.worker = worker
        windowed = [t for t in thresholds if t.window_s is not None]
        self.keys: list[tuple[str, Mapping[str, str]]] = []
        self.key_names: list[str] = []
        self.key_index: dict[str, int] = {}
        for threshold in windowed:
            if threshold.metric_key not in self.key_index:
                self.key_index[threshold.metric_key] = len(self.keys)
                self.keys.append((threshold.metric, threshold.selector))
                self.key_names.append(threshold.metric_key)
        self.kinds = [METRICS[metric].type for metric, _ in self.keys]
        self.verdicts = [WindowVerdict(t) for t in windowed]
        self._longest = max((t.window_s or 0 for t in windowed), default=0)
        # The hot path's intake, sorted into seconds by fold().
        self.sends = array("d")
        self.ends: list[EndRow] = []
        self.abandoned = array("d")  # requests that never ended (their greenlet was killed)
        self.late: list[tuple[float, str]] = []  # (slot time, call name)
        self.drops: list[tuple[float, str]] = []
        self.samples: list[tuple[float, str, float]] = []  # (when, untagged metric, value)
        self._connections: list[tuple[int, int]] = []  # (second, open connections at its end)
        self.t0: float | None = None
        self.duration_s = 0.0
        self.fleet_size = 0
        self.intervals: tuple[float, ...] = ()
        self._open: dict[int, Second] = {}  # not yet final (on a worker: not yet handed over)
        self._inflight: dict[int, int] = {}  # this process's requests per sent second, not yet ended
        self._ring: deque[tuple[int, dict[int, Part]]] = deque(maxlen=max(self._longest, 1))
        self._offered: deque[int] = deque(maxlen=max(self._longest, 1))
        self._rows: list[list[Any]] = []
        self._final = 0  # every second before this one is final
        self._connections_now: int | None = None
        self._sources: dict[str, float] = {}  # a master's workers: their watermarks (inf: done)
        self._routes_by_name: dict[tuple[str, str], list[int]] = {}
        self.handed_over = False  # a worker's last seconds went to its master

    # Set-up ----------------------------------------------------------------------------------

    def start(self, t0: float, fleet_size: int, intervals: Sequence[float], duration_s: float) -> None:
        """The schedule's t0 and shape (the offered beats per second follow from them)."""
        self.t0, self.fleet_size, self.intervals, self.duration_s = (
            t0,
            fleet_size,
            tuple(intervals),
            duration_s,
        )

    def expect(self, sources: Iterable[str]) -> None:
        """A master waits for these workers' watermarks before it calls a second final."""
        for source in sources:
            self._sources.setdefault(source, 0.0)

    def forget(self, source: str) -> None:
        """A worker that is done (its final data merged) or lost holds no second back."""
        if source in self._sources:
            self._sources[source] = math.inf

    def group(
        self,
        request_tags: Mapping[str, str],
        check_tags: Mapping[str, str],
        check_ok: bool,
        kind: str | None,
    ) -> RequestGroup:
        """The group of one call's requests with these tags, for its recorder to put in each end row."""
        routes: list[tuple[int, int, float]] = []
        iteration_tags = {"scenario": self.scenario}
        for index, (metric, selector) in enumerate(self.keys):
            column = _REQUEST_METRICS.get(metric)
            if column is None:
                continue
            tags = (
                check_tags
                if metric == "checks"
                else iteration_tags
                if metric == "iterations"
                else request_tags
            )
            if not _matches(selector, tags):
                continue
            constant = {"http_req_failed": float(kind is not None), "checks": float(check_ok)}.get(
                metric, 1.0
            )
            routes.append((index, column, constant))
        return RequestGroup(kind, tuple(routes))

    # Intake ----------------------------------------------------------------------------------

    def connections_at(self, second: int, count: int) -> None:
        """The connections this process had open at the end of ``second``."""
        self._connections.append((second, count))

    def _second_of(self, moment: float) -> int:
        assert self.t0 is not None
        return max(0, int(moment - self.t0))

    def fold(self) -> None:
        """Sort everything the hot path appended into its seconds."""
        if self.t0 is None:
            return
        sends, self.sends = self.sends, array("d")
        ends, self.ends = self.ends, []
        abandoned, self.abandoned = self.abandoned, array("d")
        late, self.late = self.late, []
        drops, self.drops = self.drops, []
        samples, self.samples = self.samples, []
        connections, self._connections = self._connections, []
        partial: dict[int, Second] = {}

        def at(second: int) -> Second:
            found = partial.get(second)
            if found is None:
                found = partial[second] = Second()
            return found

        t0, inflight = self.t0, self._inflight
        for s, count in _per_second([sent_at - t0 for sent_at in sends]).items():
            at(s).sent += count
            inflight[s] = inflight.get(s, 0) + count
        ended = _seconds([row[0] - t0 for row in ends])
        for s, count in Counter([*ended, *_seconds([sent_at - t0 for sent_at in abandoned])]).items():
            at(s).ended += count
            inflight[s] = inflight.get(s, 0) - count
        for s, count in _per_second([row[1] - t0 for row in ends]).items():
            at(s).completed += count
        durations: dict[int, list[float]] = {}
        values: dict[tuple[int, int], list[float]] = {}
        for s, row in zip(ended, ends, strict=True):
            batch = durations.get(s)
            if batch is None:
                batch = durations[s] = []
            batch.append(row[2])
            group = row[6]
            if group.kind is not None:
                failed = partial[s].failed
                failed[group.kind] = failed.get(group.kind, 0) + 1
            for index, column, constant in group.routes:
                values.setdefault((s, index), []).append(row[column] if column >= 0 else constant)  # type: ignore[arg-type]
        for s, batch in durations.items():
            partial[s].durations.add_values(batch)
        for slot_at, name in late:
            s = self._second_of(slot_at)
            at(s).late += 1
            for index in self._name_routes("late_iterations", name):
                values.setdefault((s, index), []).append(1.0)
        for slot_at, name in drops:
            s = self._second_of(slot_at)
            at(s).dropped += 1
            for index in self._name_routes("dropped_iterations", name):
                values.setdefault((s, index), []).append(1.0)
        for moment, metric, value in samples:
            s = self._second_of(moment)
            if moment < t0:  # vus while the fleet connects: not a second of the run
                continue
            if metric == "generator_lag":
                at(s).lags.append(value)
            for index in self._name_routes(metric, ""):
                if self.kinds[index] == "gauge":
                    self._part(at(s), index).set_gauge(value, moment)
                else:
                    values.setdefault((s, index), []).append(value)
        for (s, index), batch in values.items():
            self._part(at(s), index).add_values(batch)
        for s, count in connections:
            at(s).connections = count
        for s in [s for s, count in inflight.items() if count <= 0]:
            del inflight[s]
        self._absorb(partial)

    def _part(self, second: Second, index: int) -> Part:
        part = second.parts.get(index)
        if part is None:
            part = second.parts[index] = Part(self.kinds[index])
        return part

    def _name_routes(self, metric: str, name: str) -> list[int]:
        """Windowed keys a sample of an untagged metric (``name`` empty) or a per-call counter feeds."""
        cached = self._routes_by_name.get((metric, name))
        if cached is None:
            tags = {"scenario": self.scenario, "name": name} if name else {}
            cached = [
                index
                for index, (key_metric, selector) in enumerate(self.keys)
                if key_metric == metric and _matches(selector, tags)
            ]
            self._routes_by_name[(metric, name)] = cached
        return cached

    def _absorb(self, partial: Mapping[int, Second]) -> None:
        for s, second in partial.items():
            if s < self._final and not self.worker:
                amend_row(self._rows[s], second)
                continue
            mine = self._open.get(s)
            if mine is None:
                self._open[s] = second
            else:
                mine.add(second)

    # Distributed -----------------------------------------------------------------------------

    def watermark(self, now: float) -> float:
        """Every second before this one is final in this process: its requests have all ended and
        the second ended at least GRACE_S ago."""
        if self.t0 is None:
            return 0.0
        by_time = math.floor(now - self.t0 - GRACE_S)
        return float(min([by_time, *self._inflight]))

    def take_delta(self, now: float, *, done: bool = False) -> dict[str, Any]:
        """A worker's seconds since its last delta, and its watermark (``done``: nothing more will
        come, so it holds no second back)."""
        self.fold()
        seconds = [[s, *second.to_wire(self.key_names)] for s, second in sorted(self._open.items())]
        self._open = {}
        self.handed_over = self.handed_over or done
        return {"watermark": None if done else self.watermark(now), "seconds": seconds}

    def merge(self, source: str, delta: Mapping[str, Any]) -> None:
        """A worker's take_delta(): its partial seconds, and how far it is final."""
        partial = {
            wire[0]: Second.from_wire(wire[1:], self.key_index, self.kinds)
            for wire in delta.get("seconds", ())
        }
        self._absorb(partial)
        mark = delta.get("watermark")
        self._sources[source] = math.inf if mark is None else max(self._sources.get(source, 0.0), mark)

    # Finality and windows --------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Fold, then make every second before the watermark (this process's and every worker's)
        final: its row, and the windows it closes."""
        self.fold()
        if self.t0 is None or self.worker:
            return
        mark = min([self.watermark(now), *self._sources.values()])
        while self._final < mark:
            self._finalize(self._final)

    def finish(self) -> None:
        """The run is over: every second with figures, and every second of the schedule, is final."""
        self.fold()
        if self.t0 is None or self.worker:
            return
        last = max([math.ceil(self.duration_s) - 1, *self._open])
        while self._final <= last:
            self._finalize(self._final)

    def _finalize(self, s: int) -> None:
        second = self._open.pop(s, None)
        offered = offered_in_second(self.fleet_size, self.intervals, self.duration_s, s)
        if second is not None and second.connections is not None:
            self._connections_now = second.connections
        self._rows.append(build_row(s, offered, second, self._connections_now))
        self._final = s + 1
        if not self.verdicts:
            return
        self._ring.append((s, second.parts if second is not None else {}))
        self._offered.append(offered)
        for verdict in self.verdicts:
            window = verdict.threshold.window_s
            assert window is not None
            start = window_ending_at(s, self.duration_s, window)
            if start is None:
                continue
            self._judge(verdict, start, window)

    def _judge(self, verdict: WindowVerdict, start: int, window: int) -> None:
        threshold = verdict.threshold
        index = self.key_index[threshold.metric_key]
        ring = list(self._ring)[-window:]
        parts = [parts[index] for _, parts in ring if index in parts]
        aggregate = window_aggregate(self.kinds[index], parts)
        if aggregate is None:
            if sum(list(self._offered)[-window:]):
                verdict.observe(start, None)  # beats were due and nothing came: no data
            return
        verdict.observe(start, measure([threshold.expression], aggregate, float(window))[0])

    # Reading ---------------------------------------------------------------------------------

    def results(self) -> list[ThresholdResult]:
        """Each windowed threshold's verdict over the windows judged so far."""
        return [verdict.result() for verdict in self.verdicts]

    def rows(self) -> list[dict[str, Any]]:
        """Every final second's row."""
        return [row_dict(row) for row in self._rows]

    def rows_since(self, t: int) -> list[dict[str, Any]]:
        """The final rows of seconds ``t`` and later (for a poller that has the earlier ones)."""
        return [row_dict(row) for row in self._rows[max(t, 0) :]]

    @property
    def open_seconds(self) -> int:
        """Seconds held whole (still open, or in the windows' ring): what memory follows."""
        return len(self._open) + len(self._ring)

    def document(self) -> dict[str, Any]:
        """The timeline file: t0 (epoch seconds), the duration, each call's interval, every row."""
        return {
            "t0": self.t0,
            "duration_s": self.duration_s,
            "interval_s": list(self.intervals),
            "rows": self.rows(),
        }
