"""The storm end to end: a real ``locust`` process against the reference target, judged by its log."""

from __future__ import annotations

import csv
import statistics

import pytest
from helpers import read_request_log
from storm import (
    beats_by_agent,
    coefficient_of_variation,
    fleet_options,
    heartbeats,
    per_agent_intervals,
    per_second_counts,
    run_storm,
)
from target_process import running_target

from certctl_load.model import fleet
from certctl_load.model.schedule import expected_beats

pytestmark = pytest.mark.e2e

FLEET = 300
INTERVAL = 3.0
RUN_TIME = 10


@pytest.fixture(scope="module")
def storm_run(tmp_path_factory):
    """One 300-agent storm (3 s interval, 10 s) shared by the assertions below."""
    workdir = tmp_path_factory.mktemp("storm")
    log_path = workdir / "requests.jsonl"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        run = run_storm(
            target.url,
            workdir / "results",
            *fleet_options(FLEET, INTERVAL, RUN_TIME),
            "--csv",
            str(workdir / "locust"),
            "--html",
            str(workdir / "report.html"),
        )
    return run, read_request_log(log_path), workdir


def test_the_storm_passes_and_exits_zero(storm_run):
    run, _, _ = storm_run
    assert run.code == 0, run.stderr[-3000:]
    assert "thresholds" in run.stdout


def test_every_agent_beats_and_on_its_own_id(storm_run):
    _, log, _ = storm_run
    by_agent = beats_by_agent(log)
    assert set(by_agent) == {fleet.agent_id(g) for g in range(1, FLEET + 1)}
    assert sum(len(times) for times in by_agent.values()) == expected_beats(FLEET, INTERVAL, RUN_TIME)
    assert all(r["status"] == 200 for r in heartbeats(log))


def test_every_agent_keeps_its_cadence(storm_run):
    _, log, _ = storm_run
    gaps = per_agent_intervals(log)
    assert abs(statistics.median(gaps) - INTERVAL) < 0.03 * INTERVAL
    assert min(gaps) > 0.5 * INTERVAL  # never a burst


def test_the_offered_rate_is_even_second_by_second(storm_run):
    _, log, _ = storm_run
    counts = per_second_counts(log, skip_first_s=INTERVAL)
    assert abs(statistics.mean(counts) - FLEET / INTERVAL) < 0.1 * FLEET / INTERVAL
    assert coefficient_of_variation(counts) < 0.1  # loose: the benchmark holds the 0.02 target


def test_the_summary_counts_what_the_target_received(storm_run):
    run, log, _ = storm_run
    summary = run.summary()
    metrics = summary["metrics"]
    received = len(heartbeats(log))
    assert metrics["http_reqs"]["values"]["count"] == received
    assert metrics["iterations"]["values"]["count"] == received
    assert metrics["http_req_failed{scenario:agent_storm}"]["values"] == {
        "rate": 0,
        "passes": 0,
        "fails": received,
    }
    thresholds = metrics["http_req_duration{scenario:agent_storm}"]["thresholds"]
    assert thresholds == {"p(99)<1000": {"ok": True}, "p(95)<500": {"ok": True}}
    assert summary["root_group"]["checks"][0]["name"] == "heartbeat 2xx"
    assert summary["root_group"]["checks"][0]["passes"] == received
    assert "http_req_duration" in run.text_summary()


def test_locusts_own_statistics_agree(storm_run):
    _, log, workdir = storm_run
    with open(f"{workdir}/locust_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(rows["heartbeat"]["Request Count"]) == len(heartbeats(log))
    assert int(rows["heartbeat"]["Failure Count"]) == 0


def test_locusts_html_report_counts_the_whole_fleet(storm_run):
    # The harness stops the users itself before Locust would; the report keeps their count.
    _, _, workdir = storm_run
    report = (workdir / "report.html").read_text()
    assert '"per_class": {"CertctlAgent": {"ratio": 1.0' in report


def write_scenario(tmp_path, thresholds: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"name: agent_storm\nthresholds:\n{thresholds}")
    return str(path)


@pytest.mark.parametrize(("slow_ms", "expected_code"), [(506, 99), (494, 0)])
def test_the_verdict_is_exact_around_the_p95_limit(tmp_path, slow_ms, expected_code):
    """10% of heartbeats take slow_ms on the server: the true p95 lies just over or under 500 ms."""
    scenario = write_scenario(tmp_path, '  "http_req_duration{scenario:agent_storm}": ["p(95)<500"]\n')
    with running_target(
        "--fleet-size",
        "60",
        "--slow-fraction",
        "0.1",
        "--slow-ms",
        str(slow_ms),
        request_log=tmp_path / "requests.jsonl",
    ) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--scenario",
            scenario,
            *fleet_options(60, 2, 6),
        )
    assert run.code == expected_code, run.stdout[-2000:] + run.stderr[-2000:]
    p95 = run.summary()["metrics"]["http_req_duration{scenario:agent_storm}"]["values"]["p(95)"]
    if expected_code == 99:
        assert 506 <= p95 < 520
        assert (
            "thresholds on metrics 'http_req_duration{scenario:agent_storm}' have been crossed" in run.stdout
        )
    else:
        assert 494 <= p95 < 500


def test_a_bad_threshold_exits_104_before_any_request(tmp_path):
    scenario = write_scenario(tmp_path, '  "http_req_duration": ["p(95)<<500"]\n')
    with running_target("--fleet-size", "10", request_log=tmp_path / "requests.jsonl") as target:
        run = run_storm(target.url, tmp_path / "results", "--scenario", scenario, "--run-time", "5s")
        log = read_request_log(tmp_path / "requests.jsonl")
    assert run.code == 104
    assert "p(95)<<500" in run.stderr
    assert log == []


def test_agents_connect_from_the_source_addresses_given(tmp_path):
    """Past ~28,000 connections per source address, a fleet spreads over 127.0.0.0/8."""
    with running_target("--fleet-size", "40", request_log=tmp_path / "requests.jsonl") as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            *fleet_options(40, 2, 4),
            "--source-addresses",
            "127.0.0.2,127.0.0.3",
        )
    assert run.code == 0, run.stderr[-2000:]
    by_address: dict[str, set[str]] = {}
    for record in heartbeats(read_request_log(tmp_path / "requests.jsonl")):
        by_address.setdefault(record["client"].rsplit(":", 1)[0], set()).add(record["agent"])
    assert {address: len(agents) for address, agents in by_address.items()} == {
        "127.0.0.2": 20,
        "127.0.0.3": 20,
    }
