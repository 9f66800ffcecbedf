"""The timeline: per-second rows, when a second is final, windows, merging across workers, no data,
the windowed threshold's key, bad windows, and memory that stays bounded over a long run."""

from __future__ import annotations

import json
import math
import random
import tracemalloc
from types import SimpleNamespace

import pytest
from helpers import FakeClock
from locust.event import EventHook

from certctl_load.errors import ConfigError
from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import evaluate, parse_thresholds
from certctl_load.model.config import resolve_config
from certctl_load.model.schedule import fleet_slots
from certctl_load.reporting.summary import build_summary
from certctl_load.reporting.verdict_table import render_verdict_table
from certctl_load.runtime.httpclient import Exchange
from certctl_load.runtime.run import AgentGrant, Run
from certctl_load.timeline.offered import offered_in_second
from certctl_load.timeline.seconds import ROW_KEYS
from certctl_load.timeline.timeline import GRACE_S, Timeline
from certctl_load.timeline.windows import window_ending_at, window_starts

T0 = 1_800_000_000.0
SCENARIO = "agent_storm"
OK_TAGS = {
    "scenario": SCENARIO,
    "name": "heartbeat",
    "method": "POST",
    "status": "200",
    "expected_response": "true",
}
CHECK = {"scenario": SCENARIO, "check": "heartbeat 2xx"}


def windowed(expression: str, window: str = "10s", metric: str = "http_req_duration", **more):
    return parse_thresholds({metric: [{"threshold": expression, "window": window, **more}]})


def timeline_of(thresholds=(), *, duration=60.0, fleet=10, interval=1.0, worker=False) -> Timeline:
    timeline = Timeline(list(thresholds), SCENARIO, worker=worker)
    timeline.start(T0, fleet, [interval], duration)
    return timeline


def request(timeline: Timeline, sent: float, ms: float, *, status: int = 200, error: str | None = None):
    """One request sent ``sent`` s after t0 that took ``ms``."""
    expected = 200 <= status <= 399
    tags = {**OK_TAGS, "status": str(status), "expected_response": "true" if expected else "false"}
    group = timeline.group(tags, CHECK, 200 <= status <= 299, None if expected else (error or str(status)))
    timeline.sends.append(T0 + sent)
    timeline.ends.append((T0 + sent, T0 + sent + ms / 1000, ms, 0.0, 100, 50, group))


def steady(timeline: Timeline, seconds: range, per_second: int = 10, ms: float = 5.0) -> None:
    for s in seconds:
        for i in range(per_second):
            request(timeline, s + i / per_second, ms)


# Windows -------------------------------------------------------------------------------------


def test_windows_fit_in_the_run_plus_the_one_ending_with_it():
    assert window_starts(90, 30) == list(range(61))
    assert window_starts(90.5, 30) == [*range(61), 61]  # the last one ends with the partial second 90
    assert window_starts(30.2, 30) == [0, 1]
    for duration, window in ((90, 30), (90.5, 30), (7.9, 3), (12, 1)):
        ends = [s for s in range(math.ceil(duration)) if window_ending_at(s, duration, window) is not None]
        assert [window_ending_at(s, duration, window) for s in ends] == window_starts(duration, window)


def test_offered_beats_per_second_add_up_to_the_schedule():
    for fleet, intervals, duration in ((1000, [6.0], 90.0), (7, [2.5, 1.0], 13.3), (5000, [30.0], 300.0)):
        per_second = [offered_in_second(fleet, intervals, duration, s) for s in range(math.ceil(duration))]
        assert sum(per_second) == sum(fleet_slots(fleet, intervals, duration))
    assert {offered_in_second(1000, [6.0], 90.0, s) for s in range(90)} == {166, 167}


# Rows and finality ---------------------------------------------------------------------------


def test_a_request_counts_in_the_second_it_was_sent_in():
    timeline = timeline_of()
    request(timeline, 3.9, 2500.0)  # held by a stall: sent in second 3, ends in second 6
    request(timeline, 3.2, 10.0, status=503)
    request(timeline, 3.5, 30.0, status=0, error="timeout")
    timeline.finish()
    rows = timeline.rows()
    assert all(list(row) == list(ROW_KEYS) for row in rows)
    third = rows[3]
    assert third["sent"] == 3 and third["completed"] == 2 and third["failed"] == {"503": 1, "timeout": 1}
    assert third["p50"] == 30.0 and third["p99"] == pytest.approx(2500 - 0.02 * 2470, abs=0.001)
    assert rows[6]["completed"] == 1 and rows[6]["sent"] == 0 and rows[6]["p95"] is None
    assert rows[0]["offered"] == 10 and rows[0]["lag_p99"] is None


def test_a_second_is_final_once_its_requests_ended_and_its_grace_passed():
    timeline = timeline_of()
    timeline.sends.append(T0 + 2.5)  # in flight
    steady(timeline, range(5))
    timeline.advance(T0 + 2 + GRACE_S - 0.01)
    assert len(timeline.rows()) == 1  # second 1 is still within its grace
    timeline.advance(T0 + 9.0)
    assert len(timeline.rows()) == 2  # second 2 waits for its request in flight
    group = timeline.group(OK_TAGS, CHECK, True, None)
    timeline.ends.append((T0 + 2.5, T0 + 9.5, 7000.0, 0.0, 1, 1, group))
    timeline.advance(T0 + 9.6)
    assert [row["t"] for row in timeline.rows()] == list(range(8))
    assert timeline.rows()[2]["sent"] == 11 and timeline.rows_since(6) == timeline.rows()[6:]


def test_late_and_dropped_beats_count_in_their_slots_second_and_lag_and_connections_in_theirs():
    timeline = timeline_of()
    timeline.late.append((T0 + 1.99, "heartbeat"))
    timeline.drops.extend([(T0 + 2.1, "heartbeat"), (T0 + 3.1, "heartbeat")])
    timeline.samples.extend([(T0 + 1.2, "generator_lag", 3.0), (T0 + 1.7, "generator_lag", 40.0)])
    timeline.connections_at(0, 10)
    timeline.connections_at(2, 9)
    timeline.finish()
    rows = timeline.rows()
    assert [r["late"] for r in rows[:4]] == [0, 1, 0, 0] and [r["dropped"] for r in rows[:4]] == [0, 0, 1, 1]
    assert rows[1]["lag_max"] == 40.0 and rows[1]["lag_p99"] == pytest.approx(3 + 0.99 * 37)
    assert [r["connections"] for r in rows[:4]] == [10, 10, 9, 9]  # carried until the next reading
    assert len(json.dumps(rows[1])) < 1000


# Windowed thresholds -------------------------------------------------------------------------


def test_a_stall_crosses_a_windowed_p95_that_the_cumulative_one_passes():
    thresholds = parse_thresholds(
        {"http_req_duration": ["p(95)<500", {"threshold": "p(95)<500", "window": "10s"}]}
    )
    plain, over = thresholds
    timeline = timeline_of(thresholds, duration=60.0)
    steady(timeline, range(60))
    for i in range(30):  # second 30 stalls: everything sent in it waits ~2 s
        request(timeline, 30 + i / 30, 2000.0 - i)
    store = MetricStore()
    key = store.trend_key("http_req_duration", OK_TAGS)
    for row in timeline.ends:
        store.add_trend_key(key, row[2])
    timeline.finish()
    [result] = timeline.results()
    assert not result.ok and result.value > 1900 and result.worst_start_s == 21  # the first window holding it
    assert over.label == "p(95)<500 over 10s" and plain.label == "p(95)<500"
    results = evaluate(thresholds, store, 60.0, timeline.results())
    assert [r.ok for r in results] == [True, False]
    summary = build_summary(store, results, trend_stats=["p(95)"], duration_ms=60_000, checks=[])
    assert summary["metrics"]["http_req_duration"]["thresholds"] == {
        "p(95)<500": {"ok": True},
        "p(95)<500 over 10s": {"ok": False, "worst": result.value, "worst_start_s": 21, "window_s": 10},
    }
    table = render_verdict_table(results)
    assert "p(95)<500 over 10s" in table and "(worst window from 21s)" in table


def test_every_window_is_judged_once_and_a_passing_one_keeps_its_worst():
    [threshold] = windowed("p(99)<100", "5s")
    timeline = timeline_of([threshold], duration=20.5)
    for s in range(21):
        request(timeline, s + 0.5, 10.0 + s)
    timeline.finish()
    [verdict] = timeline.verdicts
    assert verdict.judged == len(window_starts(20.5, 5)) == 17
    result = verdict.result()
    assert result.ok and result.value == pytest.approx(30.0 - 0.04, abs=0.001) and result.worst_start_s == 16


def test_a_window_with_beats_due_and_no_sample_is_no_data_and_fails():
    [threshold] = windowed("p(95)<500", "5s")
    timeline = timeline_of([threshold], duration=30.0)
    steady(timeline, [*range(10), *range(16, 30)])  # nothing was sent in seconds 10..15
    timeline.finish()
    [result] = timeline.results()
    assert not result.ok and result.value is None and result.worst_start_s == 10  # [10, 15): empty
    assert "no data" in render_verdict_table([result])


def test_rates_counters_per_window_and_gauges_are_judged_per_window():
    thresholds = parse_thresholds(
        {
            "http_req_failed": [{"threshold": "rate<0.2", "window": "5s"}],
            "http_reqs{status:503}": [{"threshold": "count<3", "window": "5s"}],
            "http_reqs": [{"threshold": "rate>=9", "window": "5s"}],
            "generator_cpu": [{"threshold": "value<90", "window": "5s"}],
        }
    )
    timeline = timeline_of(thresholds, duration=20.0)
    steady(timeline, range(20))
    for i in range(4):
        request(timeline, 12 + i / 10, 3.0, status=503)
    for s in range(20):
        timeline.samples.append((T0 + s + 0.5, "generator_cpu", 95.0 if s == 7 else 20.0))
    timeline.finish()
    failed, count, rate, cpu = timeline.results()
    assert failed.ok and failed.value == pytest.approx(4 / 54)
    assert not count.ok and count.value == 4 and count.worst_start_s == 8
    assert rate.ok and rate.value == pytest.approx(10.0)  # 50 requests in 5 s
    assert not cpu.ok and cpu.value == 95.0 and cpu.worst_start_s == 3  # the last value set in [3, 8)


# Distributed ---------------------------------------------------------------------------------


def test_workers_seconds_merge_into_the_rows_one_process_would_have():
    [threshold] = windowed("p(95)<50", "5s")
    workers = {name: timeline_of([threshold], duration=20.0, worker=True) for name in ("w1", "w2")}
    alone = timeline_of([threshold], duration=20.0)
    rng = random.Random(3)
    for s in range(20):
        for i in range(10):
            sent, ms = s + i / 10, rng.uniform(1, 80)
            request(workers["w1" if i % 2 else "w2"], sent, ms)
            request(alone, sent, ms)
    master = timeline_of([threshold], duration=20.0)
    master.expect(workers)
    master.merge("w1", workers["w1"].take_delta(T0 + 25))
    master.advance(T0 + 25)
    assert master.rows() == []  # w2 has not said how far it is final
    master.merge("w2", workers["w2"].take_delta(T0 + 25))
    master.advance(T0 + 25)
    assert len(master.rows()) == 24  # every second ended at least GRACE_S before now
    master.merge("w1", workers["w1"].take_delta(T0 + 26, done=True))
    master.forget("w2")
    master.finish()
    alone.finish()
    rows = master.rows()
    assert rows[: len(alone.rows())] == alone.rows()
    assert master.results() == alone.results()


def test_a_worker_holds_back_the_seconds_it_still_has_in_flight():
    worker = timeline_of(worker=True)
    worker.sends.append(T0 + 4.2)
    steady(worker, range(8))
    assert worker.take_delta(T0 + 9.5)["watermark"] == 4
    assert worker.take_delta(T0 + 9.5, done=True)["watermark"] is None


# Configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("1.5s", "window '1.5s' is not a whole number of seconds"),
        ("500ms", "window '500ms' is not a whole number of seconds"),
        (0, "window 0 is not a whole number of seconds"),
        ("soon", "window: invalid duration 'soon'"),
    ],
)
def test_a_bad_window_is_a_config_error_naming_it(window, message):
    with pytest.raises(ConfigError, match=message):
        windowed("p(95)<500", window)


def test_a_window_not_shorter_than_the_run_exits_104_naming_it(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text('thresholds:\n  http_req_duration:\n    - {threshold: "p(95)<500", window: 1m}\n')
    options = SimpleNamespace(scenario=str(scenario), run_time="60", results_dir=None)
    with pytest.raises(
        ConfigError, match=r"window 60s is not shorter than the run's duration \(60s\)"
    ) as error:
        resolve_config(options, {}, None)
    assert error.value.exit_code == 104
    assert resolve_config(SimpleNamespace(scenario=str(scenario), run_time="61"), {}, None)


# Memory --------------------------------------------------------------------------------------


def test_a_long_run_keeps_only_its_rows_and_a_ring_of_seconds():
    [threshold] = windowed("p(95)<500", "30s")
    seconds, measured_from = 600, 300
    timeline = timeline_of([threshold], duration=float(seconds), fleet=5000, interval=30.0)
    rng = random.Random(9)
    held = []
    for s in range(seconds):
        if s == measured_from:
            tracemalloc.start()
        for i in range(20):
            request(timeline, s + i / 20, rng.lognormvariate(math.log(5), 0.5))
        if s % 10 == 9:
            timeline.advance(T0 + s + 1 + GRACE_S)
            held.append(timeline.open_seconds)
    grown = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert max(held) <= 30 + 12
    assert grown / (seconds - measured_from) < 1000  # bytes a second: the rows alone
    timeline.finish()
    assert len(timeline.rows()) == seconds and timeline.results()[0].ok


# The run -------------------------------------------------------------------------------------


def test_a_run_aborts_on_a_failed_window_of_an_abort_on_fail_threshold_and_writes_its_timeline(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "thresholds:\n  http_req_duration:\n"
        '    - {threshold: "p(95)<100", window: "3s", abortOnFail: true, delayAbortEval: "2s"}\n'
    )
    options = SimpleNamespace(
        scenario=str(scenario),
        fleet_size="10",
        heartbeat_interval="1",
        run_time=30,
        results_dir=str(tmp_path),
    )
    clock = FakeClock(T0)
    run = Run(resolve_config(options, {}, "http://127.0.0.1:9"), EventHook(), clock=clock)
    run.start_schedule(T0, [AgentGrant(i) for i in range(10)])
    recorder = run.recorders["heartbeat"]
    for s in range(12):
        duration = 0.5 if s == 8 else 0.005  # second 8 is slow
        for i in range(10):
            sent = T0 + s + i / 10
            run.timeline.sends.append(sent)
            recorder.record(
                Exchange(200, duration, 0.0, 100, 50), late=False, at=sent + duration, sent_at=sent
            )
        clock.now = T0 + s + 1
        reason = run.stop_reason_now(clock.now)
        if reason is not None:
            break
    assert reason is not None and "'p(95)<100 over 3s'" in reason and "in the window from 6s" in reason
    assert clock.now == T0 + 11  # second 8 is final GRACE_S after its end (10 s); checks every 2 s
    outcome = run.finish(clock.now)
    assert outcome.exit_code == 99
    timeline = json.loads((tmp_path / "timeline-agent-storm.json").read_text())
    assert timeline["t0"] == T0 and [row["sent"] for row in timeline["rows"][:10]] == [10] * 10
    assert timeline["rows"][8]["p50"] == 500.0


def test_samples_before_t0_belong_to_no_second():
    [threshold] = windowed("value<100", "2s", metric="vus")
    timeline = timeline_of([threshold], duration=4.0)
    timeline.samples.extend([(T0 - 3.0, "vus", 500.0), *((T0 + s + 0.5, "vus", 10.0) for s in range(4))])
    timeline.advance(T0 + 6)
    assert timeline.open_seconds <= 2 and timeline.results()[0].value == 10.0
