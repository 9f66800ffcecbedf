"""One second's figures while they are gathered: the requests sent in it (counted, ended, failed by
kind, their durations), the responses that ended in it, its dropped and late beats, the generator's
lag, the open connections at its end, and each windowed key's samples. Mergeable across processes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from certctl_load.k6.histogram import Histogram
from certctl_load.k6.metrics import TrendAggregate
from certctl_load.k6.percentiles import percentile
from certctl_load.timeline.parts import Part

ROW_KEYS = (
    "t", "offered", "sent", "completed", "failed", "dropped", "late",
    "p50", "p95", "p99", "lag_p99", "lag_max", "connections",
)  # fmt: skip


class Second:
    """The figures of one second since t0 gathered so far (in one process, or merged)."""

    __slots__ = (
        "sent",
        "ended",
        "completed",
        "failed",
        "dropped",
        "late",
        "durations",
        "lags",
        "connections",
        "parts",
    )

    def __init__(self) -> None:
        self.sent = self.ended = self.completed = self.dropped = self.late = 0
        self.failed: dict[str, int] = {}
        self.durations = Histogram()  # http_req_duration of the requests sent in it
        self.lags: list[float] = []
        self.connections: int | None = None
        self.parts: dict[int, Part] = {}  # windowed key index -> its samples

    def to_wire(self, key_names: Sequence[str]) -> list[Any]:
        """Plain data; parts named by their metric key (another process numbers them its own way)."""
        return [
            self.sent, self.ended, self.completed, self.failed, self.dropped, self.late,
            self.durations.to_wire(), self.lags, self.connections,
            {key_names[index]: part.to_wire() for index, part in self.parts.items()},
        ]  # fmt: skip

    def add(self, other: Second) -> None:
        """Another partial of the same second (this process's, or from the wire via from_wire)."""
        self.sent += other.sent
        self.ended += other.ended
        self.completed += other.completed
        self.dropped += other.dropped
        self.late += other.late
        for kind, count in other.failed.items():
            self.failed[kind] = self.failed.get(kind, 0) + count
        if other.durations.count:
            self.durations.add_wire(other.durations.to_wire())
        self.lags.extend(other.lags)
        if other.connections is not None:
            self.connections = (self.connections or 0) + other.connections
        for index, part in other.parts.items():
            mine = self.parts.get(index)
            if mine is None:
                self.parts[index] = part
            else:
                mine.add_wire(part.to_wire())

    @classmethod
    def from_wire(cls, wire: Sequence[Any], key_index: Mapping[str, int], kinds: Sequence[str]) -> Second:
        """A partial from another process's to_wire (parts of keys this process does not know are
        left out)."""
        second = cls()
        (second.sent, second.ended, second.completed, failed, second.dropped, second.late,
         durations, lags, second.connections, parts) = wire  # fmt: skip
        second.failed = dict(failed)
        second.durations.add_wire(durations)
        second.lags = list(lags)
        for name, part_wire in parts.items():
            index = key_index.get(name)
            if index is not None:
                part = Part(kinds[index])
                part.add_wire(part_wire)
                second.parts[index] = part
        return second


def build_row(t: int, offered: int, second: Second | None, connections: int | None) -> list[Any]:
    """The compact row of a final second, in ROW_KEYS order (``connections``: what was open at its
    end, carried from the last second that said so)."""
    if second is None:
        return [t, offered, 0, 0, {}, 0, 0, None, None, None, None, None, connections]
    durations = second.durations
    p50 = p95 = p99 = None
    if durations.count:
        aggregate = TrendAggregate(
            durations.count, durations.total, durations.low, durations.high, (durations,)
        )
        p50, p95, p99 = aggregate.percentiles([50.0, 95.0, 99.0])
    lag_p99 = lag_max = None
    if second.lags:
        lags = sorted(second.lags)
        lag_p99, lag_max = percentile(lags, 99.0), lags[-1]
    return [
        t, offered, second.sent, second.completed, dict(second.failed), second.dropped, second.late,
        p50, p95, p99, lag_p99, lag_max, connections,
    ]  # fmt: skip


def amend_row(row: list[Any], late: Second) -> None:
    """Counts that reached a second after it was final (a beat woken very late)."""
    row[2] += late.sent
    row[3] += late.completed
    for kind, count in late.failed.items():
        row[4][kind] = row[4].get(kind, 0) + count
    row[5] += late.dropped
    row[6] += late.late


def row_dict(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(ROW_KEYS, row, strict=True))
