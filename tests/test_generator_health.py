"""The generator's health end to end: a starved generator is flagged and makes a failing verdict
inconclusive (exit 3); a healthy run says so with its figures; the connect phase, its failures,
and connecting at the first beat instead. Real locust processes against the reference target."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import read_request_log
from storm import fleet_options, heartbeats, run_storm
from target_process import running_target

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e

STARVING_LOCUSTFILE = """
import time

import gevent

from certctl_load.locustfile import CertctlAgent, StormShape  # noqa: F401


def hog() -> None:
    # Busy 50 ms of every 100 ms: every other greenlet in this process waits behind it.
    while True:
        until = time.perf_counter() + 0.050
        while time.perf_counter() < until:
            pass
        gevent.sleep(0.050)


gevent.spawn(hog)
"""


def scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_a_starved_generator_makes_a_failing_verdict_inconclusive(tmp_path):
    locustfile = tmp_path / "starving_locustfile.py"
    locustfile.write_text(STARVING_LOCUSTFILE)
    with running_target("--fleet-size", "50", "--error-fraction", "0.5") as target:
        run = run_storm(
            target.url, tmp_path / "results", *fleet_options(50, 1.0, 12), "-f", str(locustfile), timeout=120
        )
    assert run.code == exitcodes.INCONCLUSIVE, run.stdout[-3000:] + run.stderr[-3000:]
    [line] = [text for text in run.stdout.splitlines() if text.startswith("inconclusive: ")]
    assert "the load generator was saturated (generator_lag p99" in line and "--processes" in line
    generator = run.summary()["generator"]
    assert generator["saturated"] is True and generator["lag_ms"]["p99"] > 20
    junit = (tmp_path / "results" / "junit-agent-storm.xml").read_text()
    assert 'type="inconclusive"' in junit and 'failures="0"' in junit


def test_a_healthy_run_says_the_generator_was_not_saturated_with_its_figures(tmp_path):
    with running_target("--fleet-size", "100") as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(100, 1.0, 12))
    assert run.code == exitcodes.OK, run.stdout[-3000:] + run.stderr[-3000:]
    generator = run.summary()["generator"]
    assert generator["saturated"] is False and generator["reasons"] == []
    assert 0 <= generator["lag_ms"]["p50"] <= generator["lag_ms"]["p99"] <= generator["lag_ms"]["max"] < 20
    assert 0 < generator["cpu_pct"] < 90 and generator["late_fraction"] < 0.01
    assert generator["gc"]["max_ms"] < 5 and "2" not in generator["gc"]["by_generation"]
    assert generator["gc"]["count"] >= 12  # the young generation swept twice a second from t0
    assert generator["connect"]["agents"] == generator["connect"]["connected"] == 100
    assert generator["connect"]["failed"] == 0 and generator["connect"]["errors"] == {}
    lag = run.summary()["metrics"]["generator_lag"]["values"]
    assert lag["max"] == pytest.approx(generator["lag_ms"]["max"])
    assert "generator: not saturated; lag p50" in run.text_summary()
    assert "connect: 100 of 100 agents connected in" in run.text_summary()


def test_connecting_at_the_first_beat_has_no_connect_phase_and_times_each_first_connect(tmp_path):
    path = scenario(tmp_path, "name: agent_storm\nconnect: at-first-beat\n")
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "100", request_log=log_path) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(100, 1.0, 6), "--scenario", path)
    assert run.code == exitcodes.OK, run.stdout[-3000:] + run.stderr[-3000:]
    summary = run.summary()
    assert summary["generator"]["connect"] is None
    assert summary["metrics"]["http_req_connecting"]["values"]["max"] > 0  # each agent's first beat
    assert len(heartbeats(read_request_log(log_path))) == summary["metrics"]["http_reqs"]["values"]["count"]


def test_a_fleet_partly_failing_to_connect_beats_on_and_counts_each_failed_beat(tmp_path):
    # 1 agent in 101 gets a source address it cannot bind (an IPv6 one for an IPv4 target): no packet
    # leaves for it, its connect fails, and so does each of its beats.
    sources = ",".join(["127.0.0.1"] * 100 + ["::1"])
    with running_target("--fleet-size", "101") as target:
        run = run_storm(
            target.url, tmp_path / "results", *fleet_options(101, 1.0, 6), "--source-addresses", sources
        )
    assert run.code == exitcodes.THRESHOLDS_CROSSED, run.stdout[-3000:] + run.stderr[-3000:]
    connect = run.summary()["generator"]["connect"]
    assert (connect["connected"], connect["failed"]) == (100, 1)
    assert list(connect["errors"]) == ["dns_error"]
    failed = run.summary()["metrics"]["http_req_failed"]["values"]
    assert failed["passes"] == 6  # the one agent's six beats, each a failed request


def test_more_than_1_percent_of_the_fleet_failing_to_connect_stops_before_any_heartbeat(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "20", request_log=log_path) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            *fleet_options(20, 1.0, 6),
            "--source-addresses",
            "127.0.0.1,::1",
        )
    assert run.code == exitcodes.TARGET_NOT_READY, run.stdout[-3000:] + run.stderr[-3000:]
    assert "10 of 20 agents (50.0%) could not connect (dns_error 10)" in run.stderr
    assert heartbeats(read_request_log(log_path)) == []
