"""k6's JSON output (``k6 run --out json=FILE``): one JSON object per line, written from raw sample rows.

A ``Metric`` line declares each metric before its first point (``data``: name, type, contains, the
thresholds on the metric itself, its sub-metrics); a ``Point`` line is one sample (``data``: time,
value, tags), exactly as k6 1.x writes them: the time in RFC 3339 with the local offset (``Z`` in
UTC) and up to nine sub-second digits, trailing zeros dropped; numbers as Go writes them (``1``, not
``1.0``); tags with k6's names, sorted. Per request k6's ``http_reqs``, ``http_req_duration``,
``http_req_connecting`` and ``http_req_failed`` carry the request's tags (``group`` ``""``, ``proto``
when a response came, ``url``, ``error_code`` as k6 numbers errors; ``name`` is the call's name and
``error`` the harness's kind of network error), then ``checks``, ``data_sent``, ``data_received``
and ``iterations`` the iteration's (and ``late_iterations``, the harness's own, when the beat was
late). Each dropped slot is one ``dropped_iterations`` point; ``vus`` and ``vus_max`` are written
at every reading. Lines come in time order, every sample at its own time (when its request ended).
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

from certctl_load.errors import ConfigError
from certctl_load.k6.metrics import METRICS
from certctl_load.k6.thresholds import Threshold
from certctl_load.model import fleet
from certctl_load.model.config import JsonOutput, RunConfig

RequestRow = tuple[float, str, int, str | None, float, float, int, int, bool, int]
"""One request: when it ended (epoch seconds), the call's name, the status (0: a network error),
the network error's kind or None, its duration and connect time in ms, bytes sent and received,
whether it was late, the agent's 0-based index."""
DropRow = tuple[float, str, int]
"""Slots a call's agent dropped: when, the call's name, how many."""
GaugeRow = tuple[float, str, float]
"""A gauge's reading (``vus``, ``vus_max``): when, the metric, the value."""

GZIP_LEVEL = 6  # Go's gzip default, as k6 writes a .gz file
_CHUNK_LINES = 4096
_NETWORK_ERROR_CODES = {  # the harness's kinds of network error as k6 numbers them (lib/netext/httpext)
    "timeout": "1050",
    "dns_error": "1100",
    "connection_refused": "1212",
    "unreachable": "1210",
    "connection_reset": "1220",
    "no_local_resources": "1200",
    "tls_error": "1300",
    "tls_verify_failed": "1310",
}
_GENERIC_ERROR_CODE = "1000"
_EXPECTED_RESPONSE = ("expected_response", {"expected_response": "true"})  # k6 adds it for its summary


def error_code(status: int, error: str | None) -> str | None:
    """k6's ``error_code`` tag: 1000 + the status from 400 up; a network error's code; else none."""
    if status >= 400:
        return str(1000 + status)
    if status == 0:
        return _NETWORK_ERROR_CODES.get(error or "", _GENERIC_ERROR_CODE)
    return None


def go_number(value: float) -> str:
    """A number as Go's encoding/json writes a float64: the shortest digits that read back exactly,
    whole numbers without a fraction, positional from 1e-6 up to 1e21, else e-notation (``1e-7``)."""
    if value.__class__ is int:
        return str(value)
    text = repr(value)
    if text.endswith(".0"):
        return text[:-2]
    if "e" not in text:
        return text
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(text), "f")
    if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
        return text[:-2] + text[-1]  # e-07 -> e-7
    return text


def local_offset(tm_gmtoff: int) -> str:
    """Go's ``Z07:00``: ``Z`` for UTC, else ``+01:00``."""
    if tm_gmtoff == 0:
        return "Z"
    sign = "+" if tm_gmtoff > 0 else "-"
    minutes = abs(tm_gmtoff) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class TimeFormat:
    """Epoch seconds as k6 writes a sample's time (Go's RFC3339Nano in the local zone), the
    seconds' text cached for the next sample in the same second."""

    __slots__ = ("_second", "_prefix", "_offset")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._offset = ""

    def __call__(self, at: float) -> str:
        second = math.floor(at)
        nanos = round((at - second) * 1e9)
        if nanos >= 1_000_000_000:
            second, nanos = second + 1, nanos - 1_000_000_000
        if second != self._second:
            local = time.localtime(second)
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", local)
            self._offset = local_offset(local.tm_gmtoff)
        if nanos:
            return f"{self._prefix}.{nanos:09d}".rstrip("0") + self._offset
        return self._prefix + self._offset


def rfc3339(at: float) -> str:
    """One time as k6 writes it (see :class:`TimeFormat`)."""
    return TimeFormat()(at)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _tags(tags: dict[str, str]) -> str:
    return json.dumps(tags, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def metric_data(name: str, thresholds: Sequence[Threshold]) -> dict[str, Any]:
    """A ``Metric`` line's ``data``: the expressions on the metric itself, its sub-metrics (those
    the thresholds name, and ``http_req_duration{expected_response:true}``), null when none."""
    definition = METRICS[name]
    submetrics: dict[str, dict[str, Any]] = {}
    for threshold in thresholds:
        if threshold.metric == name and threshold.selector:
            key = threshold.metric_key
            tags = dict(sorted(threshold.selector.items()))
            submetrics.setdefault(key, {"name": key, "suffix": key[len(name) + 1 : -1], "tags": tags})
    if name == "http_req_duration":
        tag, selector = _EXPECTED_RESPONSE
        key = f"{name}{{{tag}:true}}"
        submetrics.setdefault(key, {"name": key, "suffix": f"{tag}:true", "tags": selector})
    return {
        "name": name,
        "type": definition.type,
        "contains": definition.contains,
        "thresholds": [t.expression.text for t in thresholds if t.metric == name and not t.selector],
        "submetrics": list(submetrics.values()) or None,
    }


class K6JsonWriter:
    """Writes k6's JSON lines for one run's sample rows to ``handle`` (text, one line per sample)."""

    def __init__(self, handle: TextIO, config: RunConfig) -> None:
        self._handle = handle
        self._config = config
        self._scenario = config.scenario.name
        self._thresholds = config.scenario.thresholds
        calls = config.calls
        self._calls = {call.name: call for call in calls}
        self._time = TimeFormat()
        self._declared: set[str] = set()
        self._point_prefix: dict[str, str] = {}
        self._request_tags: dict[tuple[str, int, str | None], str] = {}
        self._urls: dict[tuple[str, int], str] = {}
        scenario = self._scenario
        self._iteration_tags = _tags({"group": "", "scenario": scenario})
        self._dropped_tags = _tags({"scenario": scenario})
        self._check_tags = {
            c.name: _tags({"check": c.check, "group": "", "scenario": scenario}) for c in calls
        }
        self._late_tags = {c.name: _tags({"name": c.name, "scenario": scenario}) for c in calls}
        self._lines: list[str] = []
        self.points = 0

    def _prefix(self, metric: str) -> str:
        """The start of the metric's Point line; its Metric line first, the first time."""
        prefix = self._point_prefix.get(metric)
        if prefix is None:
            data, quoted = _json(metric_data(metric, self._thresholds)), _json(metric)
            self._lines.append(f'{{"type":"Metric","data":{data},"metric":{quoted}}}\n')
            prefix = self._point_prefix[metric] = f'{{"metric":{quoted},"type":"Point","data":{{"time":"'
        return prefix

    def _point(self, metric: str, at: str, value: str, tags: str) -> None:
        self._lines.append(f'{self._prefix(metric)}{at}","value":{value},"tags":{tags}}}}}\n')
        self.points += 1

    def _http_tags(self, name: str, status: int, error: str | None, agent: int) -> str:
        """The request's tags, k6's names sorted (``url`` last)."""
        key = (name, status, error)
        head = self._request_tags.get(key)
        if head is None:
            tags = {
                "expected_response": "true" if 200 <= status <= 399 else "false",
                "group": "",
                "method": self._calls[name].method,
                "name": name,
                "scenario": self._scenario,
                "status": str(status),
            }
            if status:
                tags["proto"] = "HTTP/1.1"
            if error:
                tags["error"] = error
            code = error_code(status, error)
            if code is not None:
                tags["error_code"] = code
            head = self._request_tags[key] = _tags(tags)[:-1] + ',"url":'
        place = (name, agent)
        url = self._urls.get(place)
        if url is None:
            url = self._urls[place] = _json(self._url(name, agent))
        return f"{head}{url}}}"

    def _url(self, name: str, agent: int) -> str:
        """The request's URL, as k6's ``url`` tag gives it."""
        config = self._config
        endpoint = config.endpoint
        path = self._calls[name].path.replace("{id}", fleet.agent_id(agent + 1, config.scenario.id_prefix))
        return f"{endpoint.scheme}://{endpoint.host_header}{endpoint.base_path}{path}"

    def request(self, row: Sequence[Any]) -> None:
        at, name, status, error, duration_ms, connect_ms, sent, received, late, agent = row
        when = self._time(at)
        tags = self._http_tags(name, status, error, agent)
        point = self._point
        point("http_reqs", when, "1", tags)
        point("http_req_duration", when, go_number(duration_ms), tags)
        point("http_req_connecting", when, go_number(connect_ms), tags)
        point("http_req_failed", when, "0" if 200 <= status <= 399 else "1", tags)
        point("checks", when, "1" if 200 <= status <= 299 else "0", self._check_tags[name])
        point("data_sent", when, go_number(sent), self._iteration_tags)
        point("data_received", when, go_number(received), self._iteration_tags)
        point("iterations", when, "1", self._iteration_tags)
        if late:
            point("late_iterations", when, "1", self._late_tags[name])

    def dropped(self, at: float, count: int) -> None:
        when = self._time(at)
        for _ in range(count):
            self._point("dropped_iterations", when, "1", self._dropped_tags)

    def gauge(self, at: float, metric: str, value: float) -> None:
        self._point(metric, self._time(at), go_number(value), "{}")

    def write(
        self,
        requests: Iterable[Sequence[Any]],
        drops: Iterable[Sequence[Any]] = (),
        gauges: Iterable[Sequence[Any]] = (),
    ) -> int:
        """Every row, in time order; returns how many points were written."""
        by_time = itemgetter(0)
        marked_drops = sorted(((at, 0, name, count) for at, name, count in drops), key=by_time)
        marked_gauges = sorted(((at, 1, name, value) for at, name, value in gauges), key=by_time)
        rows = heapq.merge(sorted(requests, key=by_time), marked_drops, marked_gauges, key=by_time)
        lines, handle = self._lines, self._handle
        for row in rows:
            if len(row) == 4:
                at, kind, _, number = row
                if kind == 0:
                    self.dropped(at, number)
                else:
                    self.gauge(at, row[2], number)
            else:
                self.request(row)
            if len(lines) >= _CHUNK_LINES:
                handle.write("".join(lines))
                lines.clear()
        handle.write("".join(lines))
        lines.clear()
        return self.points


def check_writable(out: JsonOutput) -> None:
    """Prove ``out``'s file can be written (its directory created if needed), before any load."""
    directory = out.path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-", delete=True):
            pass
    except OSError as error:
        raise ConfigError(f"--out json={out.path}: cannot write there: {error.strerror or error}") from None


class K6JsonStream:
    """k6's JSON output written as the run goes, in batches of rows (each in time order), to a
    temporary file beside ``config.out`` (gzipped for a ``.gz`` name) that :meth:`close` renames into
    place: memory stays bounded by one batch, and there is never half a file."""

    def __init__(self, config: RunConfig) -> None:
        out = config.out
        assert out is not None, "no --out json=FILE was given"
        self.path = Path(out.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        self._temporary = Path(temporary)
        self._raw = os.fdopen(descriptor, "wb")
        self._text: TextIO = (
            gzip.open(self._raw, "wt", compresslevel=GZIP_LEVEL, encoding="utf-8", newline="\n")  # noqa: SIM115
            if out.gzipped
            else open(self._raw.fileno(), "w", encoding="utf-8", newline="\n", closefd=False)  # noqa: SIM115
        )
        self._writer = K6JsonWriter(self._text, config)

    def write(
        self,
        requests: Iterable[Sequence[Any]],
        drops: Iterable[Sequence[Any]] = (),
        gauges: Iterable[Sequence[Any]] = (),
    ) -> None:
        """One batch of rows."""
        self._writer.write(requests, drops, gauges)

    def close(self) -> int:
        """Write out, rename into place; returns how many points the file holds."""
        try:
            self._text.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            os.replace(self._temporary, self.path)
        except BaseException:
            self.abandon()
            raise
        return self._writer.points

    def abandon(self) -> None:
        """Give the file up (it could not be written): the temporary file goes."""
        for handle in (self._text, self._raw):
            with contextlib.suppress(OSError):
                handle.close()
        self._temporary.unlink(missing_ok=True)
