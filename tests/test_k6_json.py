"""k6's JSON output (``--out json=FILE``): the writer against real k6 output (tests/fixtures/k6_out.json),
gzip, the option and its precedence; then real storms, local and distributed, read back to the summary."""

from __future__ import annotations

import gzip
import json
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import FakeClock, free_port, read_request_log
from locust.argument_parser import get_parser
from locust.event import EventHook
from storm import fleet_options, heartbeats, run_storm
from target_process import running_target

from certctl_load import exitcodes
from certctl_load.errors import ConfigError
from certctl_load.model.config import JsonOutput, RunConfig, resolve_config
from certctl_load.plugin.options import add_options
from certctl_load.reporting.k6_json import (
    K6JsonStream,
    K6JsonWriter,
    check_writable,
    error_code,
    go_number,
    rfc3339,
)
from certctl_load.runtime.coordinator import Coordinator, apply_plan, worker_report
from certctl_load.runtime.httpclient import Exchange
from certctl_load.runtime.recorder import Samples
from certctl_load.runtime.run import AgentGrant, Run

FIXTURE = Path(__file__).parent / "fixtures" / "k6_out.json"
HOST = "http://127.0.0.1:35681"
# Go's RFC3339Nano: seconds, up to nine sub-second digits without trailing zeros, Z or the offset.
K6_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)$")
# The metrics the harness writes per request, as k6 writes them.
PER_REQUEST = (
    "http_reqs",
    "http_req_duration",
    "http_req_connecting",
    "http_req_failed",
    "checks",
    "data_sent",
    "data_received",
    "iterations",
)
WRITTEN = (*PER_REQUEST, "dropped_iterations", "vus", "vus_max")
BAD_OUTPUTS = ["csv=results.csv", "json", "json=", "json=-", "influxdb=http://127.0.0.1:8086/k6", "JSON=a"]


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a k6 JSON output file (gzipped when its name ends in .gz)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def epoch(text: str) -> float:
    """A k6 time back to epoch seconds (nanoseconds kept as far as a float holds them)."""
    match = re.fullmatch(r"(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    assert match, text
    base, fraction, offset = match.groups()
    seconds = datetime.fromisoformat(base + ("+00:00" if offset == "Z" else offset)).timestamp()
    return seconds + int((fraction or "").ljust(9, "0")) / 1e9


def points_of(lines: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == "Point" and line["metric"] == metric]


def status_of(line: dict[str, Any]) -> str | None:
    return (line["data"]["tags"] or {}).get("status")


@pytest.fixture(scope="module")
def fixture_lines() -> list[dict[str, Any]]:
    return read_lines(FIXTURE)


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is Europe/Berlin, as when the fixture was captured."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def config_for(tmp_path: Path, out: str | None = None, **extra: Any) -> RunConfig:
    options = SimpleNamespace(
        fleet_size="5", heartbeat_interval="1s", run_time=2, results_dir=str(tmp_path / "results"), out=out,
        **extra,
    )  # fmt: skip
    return resolve_config(options, {}, HOST)


def exchange(status: int = 200, error: str | None = None, duration_s: float = 0.00123) -> Exchange:
    return Exchange(status, duration_s if status else 0.0, 0.0004 if status else 0.0, 307, 192, error)


AT = 1_796_120_000.25  # 2026-12-01, winter: Berlin is UTC+1


def write_rows(config: RunConfig, requests, drops=(), gauges=()) -> list[dict[str, Any]]:
    """The writer's lines for these rows, parsed."""
    lines: list[str] = []
    K6JsonWriter(SimpleNamespace(write=lines.append), config).write(requests, drops, gauges)
    text = "".join(lines)
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def written(tmp_path: Path) -> list[dict[str, Any]]:
    """The writer's lines for a success, a 500, a refused connection, a late beat, drops and gauges."""
    config = config_for(tmp_path)
    requests = [
        (AT, "heartbeat", 200, None, 1.133443, 0.780073, 307, 192, False, 0),
        (AT + 0.2, "heartbeat", 500, None, 451.806512, 0.0, 307, 210, False, 1),
        (AT + 0.4, "heartbeat", 0, "connection_refused", 0.0, 0.0, 0, 0, False, 2),
        (AT + 0.6, "heartbeat", 200, None, 3.5, 0.0, 307, 192, True, 3),
    ]
    drops = [(AT + 0.5, "heartbeat", 3)]
    gauges = [(AT - 1.0, "vus", 5), (AT - 1.0, "vus_max", 5)]
    return write_rows(config, requests, drops, gauges)


# The lines: keys, metrics, tags ------------------------------------------------------------------


def test_the_fixture_is_k6s_output_of_every_kind_the_harness_writes(fixture_lines):
    metrics = {line["metric"] for line in fixture_lines if line["type"] == "Point"}
    assert set(WRITTEN) <= metrics
    assert {status_of(line) for line in points_of(fixture_lines, "http_reqs")} == {"200", "500", "0"}


def test_every_line_has_k6s_keys_in_k6s_order(fixture_lines, written):
    def shapes(lines):
        return {(line["type"], tuple(line), tuple(line["data"])) for line in lines}

    assert shapes(written) == shapes(fixture_lines)
    assert shapes(written) == {
        ("Metric", ("type", "data", "metric"), ("name", "type", "contains", "thresholds", "submetrics")),
        ("Point", ("metric", "type", "data"), ("time", "value", "tags")),
    }


def test_each_metric_is_declared_as_k6_declares_it_once_before_its_first_point(fixture_lines, written):
    """The default scenario has the k6 script's thresholds: the Metric lines are k6's, byte for byte."""
    k6 = {line["metric"]: line for line in fixture_lines if line["type"] == "Metric"}
    declared = [line["metric"] for line in written if line["type"] == "Metric"]
    assert len(declared) == len(set(declared))
    for line in written:
        if line["type"] == "Metric" and line["metric"] in k6:
            assert line == k6[line["metric"]]
    seen: set[str] = set()
    for line in written:
        if line["type"] == "Metric":
            seen.add(line["metric"])
        assert line["metric"] in seen
    late = next(line for line in written if line["type"] == "Metric" and line["metric"] == "late_iterations")
    assert late["data"] == {
        "name": "late_iterations",
        "type": "counter",
        "contains": "default",
        "thresholds": [],
        "submetrics": None,
    }


def test_a_threshold_on_the_metric_itself_is_listed_and_one_on_tags_is_a_submetric(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: agent_storm\nthresholds:\n"
        '  http_reqs: ["count>0", "rate>0"]\n'
        '  "http_req_duration{status:200,scenario:agent_storm}": ["max<5000"]\n'
    )
    config = config_for(tmp_path, scenario=str(scenario))
    lines = write_rows(config, [(AT, "heartbeat", 200, None, 1.0, 0.0, 307, 192, False, 0)])
    metric = {line["metric"]: line["data"] for line in lines if line["type"] == "Metric"}
    assert metric["http_reqs"]["thresholds"] == ["count>0", "rate>0"]
    assert metric["http_reqs"]["submetrics"] is None
    assert metric["http_req_duration"]["submetrics"] == [
        {
            "name": "http_req_duration{status:200,scenario:agent_storm}",
            "suffix": "status:200,scenario:agent_storm",
            "tags": {"scenario": "agent_storm", "status": "200"},
        },
        {
            "name": "http_req_duration{expected_response:true}",
            "suffix": "expected_response:true",
            "tags": {"expected_response": "true"},
        },
    ]


def tag_sets(lines) -> dict[tuple[str, str | None], set[tuple[str, ...]]]:
    sets: dict[tuple[str, str | None], set[tuple[str, ...]]] = defaultdict(set)
    for line in lines:
        if line["type"] == "Point":
            sets[(line["metric"], status_of(line))].add(tuple(line["data"]["tags"]))
    return sets


def test_points_carry_k6s_tag_names_sorted(fixture_lines, written):
    k6, ours = tag_sets(fixture_lines), tag_sets(written)
    for key, names in ours.items():
        if key[0] == "late_iterations":  # the harness's own metric: the call's name and the scenario
            assert names == {("name", "scenario")}
            continue
        assert names == k6[key], key
        assert all(list(tags) == sorted(tags) for tags in names)
    assert {key for key in k6 if key[0] in WRITTEN} <= set(ours)


def test_tag_values_are_k6s_with_the_calls_name(fixture_lines, written):
    """Everything but ``name`` as k6 gives it; ``name`` is the call's (the harness's summaries and
    Locust's statistics group by it), as a k6 script that tags its request with a name."""

    def first_tags(lines, metric, status):
        return next(
            line["data"]["tags"] for line in lines if line["type"] == "Point" and line["metric"] == metric
            and status_of(line) == status
        )  # fmt: skip

    for status in ("200", "500", "0"):
        k6 = first_tags(fixture_lines, "http_req_duration", status)
        ours = first_tags(written, "http_req_duration", status)
        for tag in ("expected_response", "group", "method", "proto", "scenario", "status", "error_code"):
            assert ours.get(tag) == k6.get(tag), (status, tag)
        assert ours["name"] == "heartbeat"
        agent = {"200": "ag-loadtest-00001", "500": "ag-loadtest-00002", "0": "ag-loadtest-00003"}[status]
        assert ours["url"] == f"{HOST}/api/v1/agents/{agent}/heartbeat"
    assert first_tags(written, "http_req_duration", "0")["error"] == "connection_refused"
    for metric in ("checks", "data_sent", "iterations", "dropped_iterations", "vus"):
        assert first_tags(written, metric, None) == first_tags(fixture_lines, metric, None)


def test_error_codes_are_k6s():
    assert error_code(200, None) is None
    assert error_code(404, None) == "1404"
    assert error_code(500, None) == "1500"
    assert error_code(0, "connection_refused") == "1212"
    assert error_code(0, "connection_reset") == "1220"
    assert error_code(0, "timeout") == "1050"
    assert error_code(0, "closed_before_response") == "1000"


def test_each_request_is_one_point_of_each_metric_with_its_own_values(written):
    points = [line for line in written if line["type"] == "Point"]
    by_metric = Counter(line["metric"] for line in points)
    assert {metric: by_metric[metric] for metric in PER_REQUEST} == dict.fromkeys(PER_REQUEST, 4)
    assert by_metric["late_iterations"] == 1
    assert by_metric["dropped_iterations"] == 3  # one point of 1 per dropped slot, as k6 writes them
    assert (by_metric["vus"], by_metric["vus_max"]) == (1, 1)

    def values(metric):
        return [line["data"]["value"] for line in points if line["metric"] == metric]

    assert values("http_req_duration") == [1.133443, 451.806512, 0, 3.5]
    assert values("http_req_connecting") == [0.780073, 0, 0, 0]
    assert values("http_req_failed") == [0, 1, 1, 0]
    assert values("checks") == [1, 0, 0, 1]
    assert values("http_reqs") == values("iterations") == [1, 1, 1, 1]
    assert values("data_sent") == [307, 307, 0, 307]
    assert values("dropped_iterations") == [1, 1, 1]


def test_lines_come_in_time_order(written):
    times = [epoch(line["data"]["time"]) for line in written if line["type"] == "Point"]
    assert times == sorted(times)


# Time and numbers ---------------------------------------------------------------------------------


def test_times_are_rfc3339_with_the_local_offset_as_k6_writes_them(fixture_lines, local_zone):
    k6_times = [line["data"]["time"] for line in fixture_lines if line["type"] == "Point"]
    assert all(K6_TIME.match(text) for text in k6_times)
    assert any(len(text.split(".")[1].split("+")[0]) < 9 for text in k6_times)  # trailing zeros dropped
    sample = k6_times[0]
    second = math.floor(epoch(sample))
    ours = rfc3339(second + 0.123456789)
    assert K6_TIME.match(ours)
    assert ours[:19] == sample[:19] and ours[-6:] == sample[-6:] == "+01:00"
    assert re.fullmatch(r"\.1234567\d{0,2}", ours[19:-6])  # nanoseconds, as far as a float holds them
    assert rfc3339(second + 0.5)[19:] == ".5+01:00"
    assert rfc3339(second)[19:] == "+01:00"
    assert rfc3339(second + 0.9999999999)[:19] == rfc3339(second + 1)[:19]
    assert rfc3339(AT - 150 * 86400).endswith("+02:00")  # summer time
    assert abs(epoch(ours) - (second + 0.123456789)) < 1e-6


def test_in_utc_the_offset_is_z(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert rfc3339(AT) == "2026-12-01T10:13:20.25Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (1.0, "1"),
        (0.0, "0"),
        (307, "307"),
        (1.133443, "1.133443"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.5e-05, "0.000015"),
        (1e-06, "0.000001"),
        (1e-07, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
    ],
)
def test_numbers_are_written_as_go_writes_them(value, text):
    assert go_number(value) == text
    assert json.loads(text) == value


# Files --------------------------------------------------------------------------------------------


def stream_to_file(config, batches) -> int:
    """Rows written batch by batch as a run writes them; the points in the file."""
    stream = K6JsonStream(config)
    for batch in batches:
        stream.write(batch)
    return stream.close()


def test_a_gz_name_is_gzipped_and_holds_the_same_lines(tmp_path):
    rows = [(AT + i / 10, "heartbeat", 200, None, 1.0 + i, 0.0, 307, 192, False, i % 5) for i in range(50)]
    plain, zipped = tmp_path / "out.json", tmp_path / "out.json.gz"
    assert stream_to_file(config_for(tmp_path, f"json={plain}"), [rows[:20], rows[20:]]) == 400
    assert stream_to_file(config_for(tmp_path, f"json={zipped}"), [rows[:20], rows[20:]]) == 400
    assert zipped.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(zipped.read_bytes()) == plain.read_bytes()
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


def test_an_unwritable_place_is_refused_before_any_load(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as raised:
        check_writable(JsonOutput(blocker / "out.json"))
    assert raised.value.exit_code == exitcodes.INVALID_CONFIG
    assert str(raised.value).startswith(f"--out json={blocker / 'out.json'}: cannot write there")


# The option ---------------------------------------------------------------------------------------


def test_out_json_names_the_file_and_a_gz_name_means_gzip(tmp_path):
    assert config_for(tmp_path).out is None
    assert config_for(tmp_path, "json=results/k6.json").out == JsonOutput(Path("results/k6.json"))
    assert not config_for(tmp_path, "json=k6.json").out.gzipped
    assert config_for(tmp_path, " json=k6.json.gz ").out.gzipped


@pytest.mark.parametrize("value", BAD_OUTPUTS)
def test_any_other_output_is_one_line_and_exit_104(tmp_path, value):
    ways = (({"out": value}, {}, "--out="), ({}, {"K6_OUT": value}, "environment K6_OUT="))
    for options, environ, named in ways:
        with pytest.raises(ConfigError) as raised:
            resolve_config(SimpleNamespace(**options), environ, HOST)
        line = str(raised.value)
        assert raised.value.exit_code == exitcodes.INVALID_CONFIG == 104
        assert "\n" not in line and line.startswith(f"{named}{value!r} ")


def test_k6_out_comes_after_locusts_own_sources(tmp_path):
    env = {"K6_OUT": "json=from-k6.json"}
    assert resolve_config(SimpleNamespace(), env, HOST).out == JsonOutput(Path("from-k6.json"))
    assert resolve_config(SimpleNamespace(out=""), env, HOST).out == JsonOutput(Path("from-k6.json"))
    assert resolve_config(SimpleNamespace(out="json=a.json"), env, HOST).out == JsonOutput(Path("a.json"))
    with pytest.raises(ConfigError):  # a bad K6_OUT under a good --out is never read
        resolve_config(SimpleNamespace(), {"K6_OUT": "csv=x"}, HOST)
    assert resolve_config(SimpleNamespace(out="json=a.json"), {"K6_OUT": "csv=x"}, HOST).out is not None


def test_locusts_parser_takes_the_command_line_then_locust_out_then_locust_conf(tmp_path, monkeypatch):
    conf = tmp_path / "locust.conf"
    conf.write_text("out = json=from-conf.json\n")
    parser = get_parser()
    add_options(parser)
    monkeypatch.delenv("LOCUST_OUT", raising=False)
    assert parser.parse_args(["--config", str(conf)]).out == "json=from-conf.json"
    monkeypatch.setenv("LOCUST_OUT", "json=from-env.json")
    assert parser.parse_args(["--config", str(conf)]).out == "json=from-env.json"
    assert parser.parse_args(["--config", str(conf), "--out", "json=cli.json"]).out == "json=cli.json"
    environ = {"K6_OUT": "json=from-k6.json"}
    options = parser.parse_args(["--config", str(conf)])
    assert resolve_config(options, environ, HOST).out == JsonOutput(Path("from-env.json"))


# The run: capture, streaming, writing -------------------------------------------------------------


def test_without_out_no_sample_row_is_kept(tmp_path):
    run = Run(config_for(tmp_path), EventHook(), clock=FakeClock(AT))
    assert run.samples is None
    assert all(recorder.samples is None for recorder in run.recorders.values())
    run.recorders["heartbeat"].record(exchange(), late=False, at=AT, agent=0)
    assert "samples" not in worker_report(run)


def test_an_interrupted_run_still_writes_every_sample(tmp_path):
    out = tmp_path / "k6.json"
    clock = FakeClock(AT - 1)
    run = Run(config_for(tmp_path, f"json={out}"), EventHook(), clock=clock)
    run.start_schedule(AT, [AgentGrant(i) for i in range(5)])
    run.set_vus(5)
    recorder = run.recorders["heartbeat"]
    recorder.record(exchange(), late=False, at=AT + 0.1, agent=0)
    recorder.record(exchange(500), late=True, at=AT + 0.3, agent=1)
    clock.now = AT + 0.5
    recorder.dropped(2)
    run.finish(AT + 0.6, interrupted=True)
    lines = read_lines(out)
    counts = Counter(line["metric"] for line in lines if line["type"] == "Point")
    assert counts["http_req_duration"] == 2 and counts["dropped_iterations"] == 2 and counts["vus"] == 1
    assert [epoch(line["data"]["time"]) for line in points_of(lines, "dropped_iterations")] == [
        pytest.approx(AT + 0.5, abs=1e-6)
    ] * 2
    assert run.samples is not None and not run.samples.requests  # let go once written


def test_a_worker_streams_its_rows_and_the_master_writes_them_at_their_own_times(tmp_path):
    out = tmp_path / "k6.json"
    master_config = config_for(tmp_path, f"json={out}")
    master = Run(master_config, EventHook(), clock=FakeClock(AT - 1))
    sent: list[str] = []
    link = SimpleNamespace(workers=list, send=lambda message, data, worker=None: sent.append(message))
    coordinator = Coordinator(master, link)
    worker = Run(config_for(tmp_path), EventHook(), clock=FakeClock(AT - 1))  # no --out of its own
    plan = {"t0": AT, "fleet_size": 5, "intervals": {"heartbeat": 1.0}, "duration_s": 2.0}
    plan["agents"] = [0, 2, 4]
    apply_plan(worker, {**plan, "samples": True})
    assert worker.samples is not None
    worker.recorders["heartbeat"].record(exchange(), late=False, at=AT + 0.1, agent=2)
    first = worker_report(worker)
    assert len(first["samples"]["requests"]) == 1
    worker.recorders["heartbeat"].record(exchange(), late=False, at=AT + 0.2, agent=4)
    second = json.loads(json.dumps(worker_report(worker)))  # as the wire gives it: lists for tuples
    assert len(second["samples"]["requests"]) == 1
    for report in (second, first):  # out of order: the file is still in time order
        coordinator.on_report("w1", report)
    master.finish(AT + 3.0)
    durations = points_of(read_lines(out), "http_req_duration")
    assert [epoch(line["data"]["time"]) for line in durations] == [
        pytest.approx(AT + 0.1, abs=1e-6),
        pytest.approx(AT + 0.2, abs=1e-6),
    ]
    assert [line["data"]["tags"]["url"].rsplit("/", 2)[-2] for line in durations] == [
        "ag-loadtest-00003",
        "ag-loadtest-00005",
    ]
    apply_plan(worker, {**plan, "samples": False})  # a master without --out: nothing streamed
    assert worker.samples is None and "samples" not in worker_report(worker)


def test_samples_cross_the_wire_unchanged():
    samples = Samples()
    samples.requests.append((AT, "heartbeat", 0, "timeout", 0.0, 0.0, 0, 0, False, 7))
    samples.drops.append((AT, "heartbeat", 2))
    samples.gauges.append((AT, "vus", 5))
    wire = json.loads(json.dumps(samples.take()))
    assert (samples.requests, samples.drops, samples.gauges) == ([], [], [])
    merged = Samples()
    merged.merge(wire)
    assert merged.requests == [(AT, "heartbeat", 0, "timeout", 0.0, 0.0, 0, 0, False, 7)]
    assert (merged.drops, merged.gauges) == ([(AT, "heartbeat", 2)], [(AT, "vus", 5)])


# End to end: real storms --------------------------------------------------------------------------

FLEET = 40
INTERVAL = 1.0
RUN_TIME = 3


def percentile_95(values: list[float]) -> float:
    """k6's percentile (linear between closest ranks), computed here on its own."""
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def assert_the_file_holds_every_request(out: Path, run, log_path: Path) -> None:
    """One http_req_duration point per request the target logged, read back to the summary's figures,
    each at its request's own time (after the target had it, and soon after)."""
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-3000:]
    beats = heartbeats(read_request_log(log_path))
    lines = read_lines(out)
    points = points_of(lines, "http_req_duration")
    assert len(points) == len(beats) > 0
    metrics = run.summary()["metrics"]
    values = [line["data"]["value"] for line in points]
    summary = metrics["http_req_duration"]["values"]
    assert len(values) == metrics["http_reqs"]["values"]["count"]
    assert min(values) == summary["min"] and max(values) == summary["max"]
    assert abs(percentile_95(values) - summary["p(95)"]) <= 0.001  # histograms count whole microseconds
    counts = Counter(line["metric"] for line in lines if line["type"] == "Point")
    assert all(counts[metric] == len(beats) for metric in PER_REQUEST)
    assert counts["vus"] >= 1 and counts["vus_max"] == counts["vus"]
    arrivals: dict[str, list[float]] = defaultdict(list)
    for beat in beats:
        arrivals[beat["agent"]].append(beat["t"])
    ended: dict[str, list[float]] = defaultdict(list)
    for line in points:
        ended[line["data"]["tags"]["url"].rsplit("/", 2)[-2]].append(epoch(line["data"]["time"]))
    assert ended.keys() == arrivals.keys()
    for agent, times in ended.items():
        for end, arrival in zip(sorted(times), sorted(arrivals[agent]), strict=True):
            assert 0 <= end - arrival < 1.0, agent


@pytest.mark.e2e
def test_out_json_holds_one_point_per_request_read_back_to_the_summary(tmp_path):
    log_path, out = tmp_path / "requests.jsonl", tmp_path / "k6.json"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        options = fleet_options(FLEET, INTERVAL, RUN_TIME, "--out", f"json={out}")
        run = run_storm(target.url, tmp_path / "results", *options)
    assert_the_file_holds_every_request(out, run, log_path)


@pytest.mark.e2e
def test_processes_2_the_master_writes_every_workers_points(tmp_path):
    log_path, out = tmp_path / "requests.jsonl", tmp_path / "k6.json"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        port = str(free_port())
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--processes", "2", "--master-bind-port", port, "--master-port", port,
            *fleet_options(FLEET, INTERVAL, RUN_TIME, "--out", f"json={out}"),
        )  # fmt: skip
    assert_the_file_holds_every_request(out, run, log_path)


@pytest.mark.e2e
def test_k6_out_with_a_gz_name_writes_gzip(tmp_path):
    log_path, out = tmp_path / "requests.jsonl", tmp_path / "k6.json.gz"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            *fleet_options(FLEET, INTERVAL, RUN_TIME),
            env={"K6_OUT": f"json={out}"},
        )
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert_the_file_holds_every_request(out, run, log_path)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (("--out", "csv=results.csv"), {}, "--out='csv=results.csv' is not an output"),
        ((), {"K6_OUT": "influxdb=http://localhost:8086/k6"}, "environment K6_OUT='influxdb="),
    ],
)
def test_a_bad_out_exits_104_before_any_heartbeat(tmp_path, args, env, line):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "10", request_log=log_path) as target:
        run = run_storm(
            target.url, tmp_path / "results", *fleet_options(10, 1, 2), *args, env=env, timeout=60
        )
    assert run.code == exitcodes.INVALID_CONFIG, run.stderr[-2000:]
    assert line in run.stderr
    assert heartbeats(read_request_log(log_path)) == []
