"""The timeline end to end: a 3 s stall in a 90 s storm passes a cumulative p95 and fails the same
p95 over 30 s windows; distributed, the merged rows count exactly the requests the server logged."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from types import SimpleNamespace

import pytest
from browser import offline_page
from helpers import free_port, read_request_log
from storm import StormRun, fleet_options, heartbeats, run_storm, start_storm
from target_process import running_target

pytestmark = pytest.mark.e2e

PLAIN = "name: agent_storm\nthresholds:\n  http_req_duration:\n    - p(95)<500\n"
WINDOWED = (
    'name: agent_storm\nthresholds:\n  http_req_duration:\n    - {threshold: "p(95)<500", window: "30s"}\n'
)


@pytest.fixture(scope="module")
def stalled(tmp_path_factory) -> SimpleNamespace:
    """The same stalled storm twice at once, judged by the plain and by the windowed p95: 1,000
    agents every 6 s for 90 s, each against its own target that holds every response for 3 s about
    45 s into the run (a target counts from its own start, its storm starts a few seconds later)."""
    runs = {}
    with ExitStack() as stack:
        started = {}
        for name, text in (("plain", PLAIN), ("windowed", WINDOWED)):
            where = tmp_path_factory.mktemp(name)
            (where / "scenario.yaml").write_text(text)
            target = stack.enter_context(
                running_target("--fleet-size", "1000", "--stall-at", "50", "--stall-for", "3")
            )
            started[name] = (
                where,
                start_storm(target.url, where / "results", "--scenario", str(where / "scenario.yaml"),
                            *fleet_options(1000, 6, 90)),
            )  # fmt: skip
        for name, (where, process) in started.items():
            try:
                stdout, stderr = process.communicate(timeout=300)
            finally:
                process.kill()
            runs[name] = StormRun(process.returncode, stdout, stderr, where / "results")
    return SimpleNamespace(**runs)


def timeline_of(run) -> dict:
    return json.loads((run.results_dir / "timeline-agent-storm.json").read_text())


def test_a_stall_passes_the_cumulative_p95(stalled):
    run = stalled.plain
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = timeline_of(run)["rows"]
    assert sum(row["sent"] for row in rows) == run.summary()["metrics"]["http_reqs"]["values"]["count"]
    stalled_rows = [row for row in rows if row["p95"] is not None and row["p95"] > 1000]
    assert stalled_rows and all(35 <= row["t"] <= 55 for row in stalled_rows)  # where it was


def test_the_same_stall_fails_the_p95_over_30s_windows(stalled):
    run = stalled.windowed
    assert run.code == 99, run.stdout[-3000:] + run.stderr[-3000:]
    assert "p(95)<500 over 30s" in run.stdout and "(worst window from" in run.stdout
    verdict = run.summary()["metrics"]["http_req_duration"]["thresholds"]["p(95)<500 over 30s"]
    assert verdict["ok"] is False and verdict["window_s"] == 30 and verdict["worst"] > 500
    stall_rows = [row["t"] for row in timeline_of(run)["rows"] if (row["p95"] or 0) > 1000]
    assert verdict["worst_start_s"] <= min(stall_rows) <= verdict["worst_start_s"] + 29
    assert "thresholds over windows" in run.text_summary()


def test_the_storms_report_draws_each_of_its_seconds_with_the_network_blocked(stalled, tmp_path):
    run = stalled.windowed
    seconds = len(timeline_of(run)["rows"])
    assert seconds >= 90
    with offline_page(tmp_path / "profile", run.results_dir / "report-agent-storm.html") as opened:
        page = opened.page
        page.wait_for_function("window.certctlCharts && Object.keys(window.certctlCharts.plots).length === 6")
        points = page.evaluate(
            "() => Object.values(window.certctlCharts.plots).map((plot) => plot.data[0].length)"
        )
        assert points == [seconds] * 6
        assert page.locator("#certctl-verdict").inner_text().lower() == "fail"
    assert opened.errors == [] and opened.stayed_offline


def test_distributed_rows_count_every_request_the_server_logged(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        'name: agent_storm\nthresholds:\n  http_req_duration:\n    - {threshold: "p(95)<500", window: "5s"}\n'
    )
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "300", request_log=log_path) as target:
        port = str(free_port())
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--processes", "2", "--master-bind-port", port, "--master-port", port,
            "--scenario", str(scenario),
            *fleet_options(300, 2, 12),
        )  # fmt: skip
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = heartbeats(read_request_log(log_path))
    timeline = timeline_of(run)
    rows = timeline["rows"]
    assert (
        sum(row["sent"] for row in rows)
        == len(log)
        == run.summary()["metrics"]["http_reqs"]["values"]["count"]
    )
    assert sum(row["completed"] for row in rows) == len(log)
    arrived = Counter(int(record["t"] - timeline["t0"]) for record in log)
    # a request sent just before a second's end may arrive just after it (a generator hiccup: more)
    assert all(abs(row["sent"] - arrived.get(row["t"], 0)) <= 15 for row in rows)
    assert all(row["offered"] == 150 for row in rows[:12])
    assert {row["connections"] for row in rows[1:10]} == {300}
    verdict = run.summary()["metrics"]["http_req_duration"]["thresholds"]["p(95)<500 over 5s"]
    assert verdict["ok"] is True and verdict["worst_start_s"] is not None
