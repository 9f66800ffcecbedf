"""The certctl tab in Locust's web UI: the offered-rate meter, the tab's routes on a bare Flask app, and
real storms started, watched and judged in headless Chromium (Debian's ``chromium``, driven by
Playwright) against the reference target."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from browser import chromium_context
from flask import Blueprint, Flask, jsonify
from flask.testing import FlaskClient
from helpers import free_port, poll_until, read_request_log
from locust.argument_parser import get_empty_argument_parser
from locust.event import EventHook
from playwright.sync_api import Page, Response, Route
from storm import LOCUSTFILE, ROOT, beats_by_agent, heartbeats
from target_process import running_target
from timelines import SECONDS, storm_requests, timeline_of
from werkzeug.test import TestResponse

from certctl_load import exitcodes
from certctl_load.model.config import resolve_config
from certctl_load.model.schedule import expected_beats
from certctl_load.plugin.options import add_options
from certctl_load.plugin.webui import FORM_OPTIONS, RATE_WINDOW_S, OfferedRate, install_web_ui
from certctl_load.runtime.judge import Outcome
from certctl_load.runtime.run import Run

FLEET = 200
INTERVAL_S = 2.0
RUN_TIME_S = 12
TARGET_RATE = FLEET / INTERVAL_S
TAB = "certctl storm"


# The offered-rate meter ---------------------------------------------------------------------------


def rates(count_at: Callable[[float], float], end_s: float, step_s: float = 0.25) -> dict[float, float]:
    """The meter's rate at each sample, the count read every ``step_s`` from 0 to ``end_s``."""
    meter, seen = OfferedRate(), {}
    for t in (i * step_s for i in range(int(end_s / step_s) + 1)):
        meter.observe(t, count_at(t))
        seen[t] = meter.rate(t)
    return seen


def merged_count(t: float, phases: list[float], rate: float = 100, period_s: float = 3) -> float:
    """A master's count: each worker's share of ``rate``, merged when its report arrives every period."""
    share = rate / len(phases) * period_s
    return sum(share * max(0, (t - phase) // period_s) for phase in phases)


def test_a_steady_count_gives_its_rate():
    assert rates(lambda t: 100 * t, 20)[20] == pytest.approx(100)


@pytest.mark.parametrize("phases", [[0.1], [0.4, 1.3], [0.2, 1.1, 2.45], [0.3, 0.9, 1.6, 2.2, 2.8]])
def test_a_count_merged_in_bursts_gives_the_rate_without_a_saw_tooth(phases):
    """Workers report every 3 s, each at its own phase; the rate holds between the master's merges."""
    seen = rates(lambda t: merged_count(t, phases), 40)
    assert all(rate == pytest.approx(100, rel=0.05) for t, rate in seen.items() if t >= 12)


def test_the_rate_falls_to_zero_once_the_count_stops():
    seen = rates(lambda t: 100 * min(t, 10), 30)
    assert seen[10] == pytest.approx(100)
    assert seen[10] > seen[12] > seen[14] > seen[16] > 0
    assert seen[10 + RATE_WINDOW_S] == 0


def test_no_rate_before_the_count_has_moved_twice():
    assert rates(lambda t: 0 if t < 4.9 else 50, 5)[5] == 0


# The tab's routes on a bare Flask app ------------------------------------------------------------

TOKEN = "route-secret-7f3a9c"


@dataclass
class Tab:
    client: FlaskClient
    source: SimpleNamespace
    web_ui: SimpleNamespace
    locust_stats: dict[str, Any]

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def new_storm(self) -> Run:
        self.source.run = Run(self.source.config, EventHook())
        return self.source.run


@pytest.fixture
def tab(tmp_path: Path) -> Iterator[Tab]:
    """install_web_ui on a bare Flask app, Locust's /stats/requests standing in with a settable state."""
    app = Flask(__name__)
    locust = Blueprint("locust", __name__)
    locust_stats: dict[str, Any] = {"state": "running", "user_count": 10}
    locust.add_url_rule("/stats/requests", "request_stats", lambda: jsonify(locust_stats))
    app.register_blueprint(locust)
    options = SimpleNamespace(
        fleet_size="10",
        heartbeat_interval="2s",
        run_time=6,
        results_dir=str(tmp_path / "results"),
        web_base_path="",
    )
    environment = SimpleNamespace(
        events=SimpleNamespace(init_command_line_parser=EventHook()),
        parsed_options=options,
    )
    rows: list[dict[str, Any]] = []  # the run's per-second rows, as the timeline would hold them
    source = SimpleNamespace(
        run=None,
        config=resolve_config(options, {"CERTCTL_TOKEN": TOKEN}, "http://127.0.0.1:9"),
        generator_health=lambda: None,
        timeline_rows=lambda since: [row for row in rows if row["t"] >= since],
        rows=rows,
    )
    web_ui = SimpleNamespace(app=app, template_args={}, auth_required_if_enabled=lambda view: view)
    sampling = install_web_ui(source, environment, web_ui)
    try:
        yield Tab(app.test_client(), source, web_ui, locust_stats)
    finally:
        sampling.kill()


def finish(storm: Run, exit_code: int) -> None:
    """Write both summaries and the report in the results directory and set the outcome, as the
    judge does."""
    results_dir = storm.config.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, text_path = results_dir / "summary-agent-storm.json", results_dir / "summary-agent-storm.txt"
    json_path.write_text('{"metrics": {}}\n')
    text_path.write_text("summary\n")
    report = results_dir / "report-agent-storm.html"
    report.write_text("<!doctype html><p>report</p>\n")
    storm.outcome = Outcome(exit_code, [], 1, str(json_path), str(text_path), report_path=str(report))


def test_the_page_gets_the_tab_its_table_and_the_summary_links(tab):
    args = tab.web_ui.template_args
    assert args["extended_tabs"] == [{"title": "certctl storm", "key": "certctl"}]
    assert [column["key"] for column in args["extended_tables"][0]["structure"]] == [
        "figure",
        "value",
        "status",
    ]
    assert [link["href"] for link in args["extended_csv_files"]] == [
        "./certctl/summary.json",
        "./certctl/summary.txt",
        "./certctl/report.html",
        "./certctl/charts",
    ]


def test_the_start_form_offers_the_fleet_the_interval_and_the_scenario():
    parser = get_empty_argument_parser()
    add_options(parser)
    harness = {"scenario", "fleet_size", "heartbeat_interval", "results_dir", "insecure", "ca_bundle"}
    assert not harness & set(parser.args_included_in_web_ui)  # an argument group hides them from the form
    hook = EventHook()
    environment = SimpleNamespace(events=SimpleNamespace(init_command_line_parser=hook), parsed_options=None)
    web_ui = SimpleNamespace(
        app=Flask(__name__), template_args={}, auth_required_if_enabled=lambda view: view
    )
    install_web_ui(SimpleNamespace(run=None, config=None), environment, web_ui).kill()
    hook.fire(parser=parser)
    assert harness & set(parser.args_included_in_web_ui) == FORM_OPTIONS
    assert {"scenario", "fleet_size", "heartbeat_interval"} == FORM_OPTIONS


def test_before_any_run_the_live_figures_are_the_configuration(tab):
    live = tab.get("/certctl/live").get_json()
    assert live == {
        "state": "idle",
        "scenario": "agent_storm",
        "fleet_size": 10,
        "heartbeat_interval_s": 2.0,
        "duration_s": 6.0,
        "target_rate": 5.0,
    }


def test_the_stats_poll_carries_the_tab_rows_and_keeps_polling_until_the_run_is_judged(tab):
    storm = tab.new_storm()
    tab.locust_stats["state"] = "stopped"  # the runner has stopped; the harness has not judged yet
    report = tab.get("/stats/requests").get_json()
    assert report["state"] == "running"
    assert report["user_count"] == 10
    [extended] = report["extended_stats"]
    rows = {row["figure"]: row["value"] for row in extended["data"]}
    assert extended["key"] == "certctl"
    assert rows["Verdict"] == "pending (the run is not over)"
    assert [row["name"] for row in extended["data"]] == sorted(row["name"] for row in extended["data"])

    finish(storm, exitcodes.OK)
    report = tab.get("/stats/requests").get_json()
    assert report["state"] == "stopped"
    rows = {row["figure"]: (row["value"], row["status"]) for row in report["extended_stats"][0]["data"]}
    assert rows["Verdict"] == ("passed (exit 0)", "pass")
    assert rows["Summary (JSON)"] == ("./certctl/summary.json", "")
    assert rows["Report (HTML)"] == ("./certctl/report.html", "")
    assert rows["Live charts"] == ("./certctl/charts", "")


def test_the_summary_routes_serve_only_the_last_runs_files_in_the_results_directory(tab, tmp_path):
    storm = tab.new_storm()
    assert tab.get("/certctl/summary.json").status_code == 404  # the run is not over
    finish(storm, exitcodes.THRESHOLDS_CROSSED)
    json_file = tab.get("/certctl/summary.json")
    assert (json_file.status_code, json_file.mimetype, json_file.get_json()) == (
        200,
        "application/json",
        {"metrics": {}},
    )
    assert tab.get("/certctl/summary.txt").text == "summary\n"
    assert tab.get("/certctl/summary.yaml").status_code == 404
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    storm.outcome = replace(storm.outcome, json_path=str(outside))
    assert tab.get("/certctl/summary.json").status_code == 404


def test_the_report_route_serves_only_the_last_runs_report(tab, tmp_path):
    assert tab.get("/certctl/report.html").status_code == 404  # no run yet
    storm = tab.new_storm()
    assert tab.get("/certctl/report.html").status_code == 404  # the run is not over
    finish(storm, exitcodes.OK)
    report = tab.get("/certctl/report.html")
    assert (report.status_code, report.mimetype, report.text) == (
        200,
        "text/html",
        "<!doctype html><p>report</p>\n",
    )
    tab.new_storm()
    assert tab.get("/certctl/report.html").status_code == 404  # a new run has no report yet
    storm = tab.new_storm()
    finish(storm, exitcodes.OK)
    outside = tmp_path / "report-elsewhere.html"
    outside.write_text("elsewhere")
    storm.outcome = replace(storm.outcome, report_path=str(outside))
    assert tab.get("/certctl/report.html").status_code == 404


def test_the_charts_page_is_whole_and_reaches_for_no_other_host(tab):
    page = tab.get("/certctl/charts")
    assert (page.status_code, page.mimetype) == (200, "text/html")
    assert page.headers["Cache-Control"] == "no-store"
    text = page.text
    assert "var uPlot=function()" in text and "CertctlCharts.mount()" in text and "./timeline?since=" in text
    assert "certctl-load live: agent_storm" in text
    assert set(re.findall(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s"'<>)]*""", text)) == {
        "https://github.com/leeoniya/uPlot"  # uPlot's own banner comment
    }


def test_the_timeline_route_gives_the_rows_from_since_and_the_verdict(tab):
    idle = tab.get("/certctl/timeline").get_json()
    assert idle == {
        "run": None,
        "state": "idle",
        "verdict": {"word": "idle", "tone": "running", "text": "no run has started"},
        "rows": [],
        "next": 0,
    }
    storm = tab.new_storm()
    tab.source.rows.extend({"t": t, "sent": 5} for t in range(4))
    body = tab.get("/certctl/timeline?since=2").get_json()
    assert [row["t"] for row in body["rows"]] == [2, 3]
    assert body["next"] == 4
    assert body["verdict"] == {"word": "running", "tone": "running", "text": "the run is not over"}
    assert body["run"] == f"{storm.started_at:.6f}"
    assert {line["label"] for line in body["marks"]["lines"]} == {
        "p(95)<500 {scenario:agent_storm}",
        "p(99)<1000 {scenario:agent_storm}",
    }
    assert tab.get("/certctl/timeline?since=9").get_json()["next"] == 9  # nothing new: ask again from 9
    finish(storm, exitcodes.THRESHOLDS_CROSSED)
    assert tab.get("/certctl/timeline").get_json()["verdict"]["word"] == "fail"
    storm.abort_reason = "abortOnFail"
    assert tab.get("/certctl/timeline").get_json()["verdict"]["word"] == "aborted"
    finish(storm, exitcodes.INCONCLUSIVE)
    assert tab.get("/certctl/timeline").get_json()["verdict"]["tone"] == "warn"
    assert tab.get("/certctl/timeline").get_json()["run"] == body["run"]
    tab.new_storm()
    assert tab.get("/certctl/timeline").get_json()["run"] != body["run"]  # the page starts afresh


@pytest.mark.parametrize("since", ["-1", "1.5", "soon"])
def test_a_bad_since_is_refused_naming_it(tab, since):
    answer = tab.get(f"/certctl/timeline?since={since}")
    assert answer.status_code == 400
    assert answer.get_json() == {"error": f"since={since!r} is not a whole number of seconds >= 0"}


def test_the_token_reaches_no_route_and_no_page_argument(tab):
    storm = tab.new_storm()
    bodies = [tab.get("/certctl/live").text, tab.get("/stats/requests").text, tab.get("/certctl/charts").text]
    finish(storm, exitcodes.INTERRUPTED)
    paths = (
        "/certctl/live",
        "/stats/requests",
        "/certctl/summary.json",
        "/certctl/timeline",
        "/certctl/charts",
    )
    bodies += [tab.get(path).text for path in paths]
    bodies.append(json.dumps(tab.web_ui.template_args))
    assert [body for body in bodies if TOKEN in body] == []
    assert tab.source.config.token == TOKEN


# The live charts in Chromium, served by the tab's routes on the bare Flask app ---------------------

CHARTS_ORIGIN = "http://certctl.invalid"


@pytest.mark.e2e
def test_the_live_charts_append_each_polled_second_and_start_afresh_for_a_new_run(tab, tmp_path):
    """The page and every poll are answered by install_web_ui's routes (Flask's test client as the
    transport, nothing leaves the browser); the run's rows arrive in two parts, as a run's do."""
    rows = timeline_of(storm_requests())["rows"]
    storm = tab.new_storm()
    polled: list[str] = []
    errors: list[str] = []

    def serve(route: Route) -> None:
        parts = urlsplit(route.request.url)
        polled.append(parts.query)
        answer = tab.get(f"{parts.path}?{parts.query}")
        route.fulfill(status=answer.status_code, content_type=answer.content_type, body=answer.data)

    def points(page: Page) -> set[int]:
        return set(page.evaluate("Object.values(window.certctlCharts.plots).map(p => p.data[0].length)"))

    with chromium_context(tmp_path / "profile", lambda url: False) as context:
        page = context.new_page()
        page.route(f"{CHARTS_ORIGIN}/**", serve)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{CHARTS_ORIGIN}/certctl/charts")
        page.wait_for_function("window.certctlPolls > 0")
        assert points(page) == {0}
        assert verdict_on(page) == ("running", "running")

        tab.source.rows.extend(rows[:30])
        poll_until(lambda: points(page) == {30}, 10, 0.1, "the first 30 s on every chart")
        tab.source.rows.extend(rows[30:])
        poll_until(lambda: points(page) == {SECONDS}, 10, 0.1, "all 90 s on every chart")
        assert "since=30" in polled  # it asked only for the seconds it had not drawn
        labels = page.evaluate("window.certctlCharts.plots.failures.series.slice(1).map(s => s.label)")
        assert labels == ["all kinds", "503", "ECONNRESET"]
        marks = page.locator("#certctl-marks li").all_inner_texts()
        assert "limit p(95)<500 {scenario:agent_storm}: 500.00 ms" in marks

        finish(storm, exitcodes.THRESHOLDS_CROSSED)
        page.wait_for_function("document.getElementById('certctl-verdict').textContent === 'fail'")
        assert verdict_on(page) == ("fail", "fail")
        assert points(page) == {SECONDS}

        tab.source.rows.clear()
        tab.new_storm()
        page.wait_for_function("document.getElementById('certctl-verdict').textContent === 'running'")
        assert points(page) == {0}
    assert errors == []


# A storm run from the browser ---------------------------------------------------------------------


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def locust_ui(target_url: str, workdir: Path, token: str) -> Iterator[str]:
    """``locust`` in web-UI mode on a free loopback port, CERTCTL_TOKEN=token; yields the UI's URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", target_url,
        "--web-host", "127.0.0.1", "--web-port", str(port),
        "--results-dir", str(workdir / "results"), "--skip-preflight",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "K6_", "CERTCTL_"))}
    env["CERTCTL_TOKEN"] = token
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "locust.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        try:

            def ready() -> bool:
                assert process.poll() is None, (workdir / "locust.log").read_text()[-3000:]
                try:
                    return http_get(f"{url}/certctl/live")[0] == 200
                except OSError:
                    return False

            poll_until(ready, 60, 0.25, "timed out after 60 s waiting for the web UI")
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def tab_table(page: Page) -> dict[str, tuple[str, str]]:
    """The certctl tab's rows: figure -> (value, status)."""
    rows = page.eval_on_selector_all(
        "table tbody tr", "rows => rows.map(row => [...row.cells].map(cell => cell.innerText.trim()))"
    )
    return {row[0]: (row[1], row[2]) for row in rows if len(row) == 3}


def value(table: dict[str, tuple[str, str]], figure: str) -> str | None:
    return table.get(figure, (None, ""))[0]


def offered_rate(table: dict[str, tuple[str, str]]) -> float:
    """The "Offered rate (last N s)" figure in requests per second; NaN when it shows none."""
    text = next((v for name, (v, _) in table.items() if name.startswith("Offered rate")), "")
    number = text.removesuffix(" /s")
    return float(number) if number.replace(".", "", 1).isdigit() else float("nan")


def start_run(page: Page, fleet: int, interval_s: float, run_time_s: int) -> Response:
    """Fill the start form (the harness's options and the run time), start; returns /swarm's response."""
    page.get_by_text("Custom parameters").click()
    page.fill("input[name=fleetSize]", str(fleet))
    page.fill("input[name=heartbeatInterval]", f"{interval_s:g}s")
    page.get_by_text("Advanced options").click()
    page.fill("input[name=runTime]", f"{run_time_s}s")
    with page.expect_response("**/swarm") as swarm:
        page.click("button[type=submit]")
    assert swarm.value.json()["success"] is True
    page.get_by_role("tab", name=TAB).click()
    return swarm.value


def tab_when(
    page: Page, condition: Callable[[dict[str, tuple[str, str]]], bool], timeout_s: float, what: str
):
    """The tab's table once ``condition`` holds for it (polled)."""

    def check() -> dict[str, tuple[str, str]] | None:
        table = tab_table(page)
        return table if condition(table) else None

    return poll_until(check, timeout_s, 0.25, f"timed out after {timeout_s:g} s waiting for {what}")


def judged(table: dict[str, tuple[str, str]]) -> bool:
    return value(table, "Run") == "finished" and "Summary (JSON)" in table


def loopback(url: str) -> bool:
    return urlsplit(url).hostname == "127.0.0.1"


@pytest.fixture
def chromium_page(tmp_path: Path) -> Iterator[Page]:
    """A page in Debian's headless Chromium that may reach only 127.0.0.1."""
    with chromium_context(tmp_path / "chromium-profile", loopback) as context:
        yield context.new_page()


def open_charts(page: Page, url: str) -> tuple[Page, list[str], list[str]]:
    """The live charts in a second page, once uPlot drew its six charts and the first poll answered;
    with the URLs the page requested and its console errors, both growing as it runs."""
    charts = page.context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    charts.on("request", lambda request: requests.append(request.url))
    charts.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    charts.on("pageerror", lambda error: errors.append(str(error)))
    charts.goto(f"{url}/certctl/charts")
    drawn = "window.certctlCharts && Object.keys(window.certctlCharts.plots).length === 6"
    charts.wait_for_function(f"{drawn} && window.certctlPolls > 0")
    return charts, requests, errors


def verdict_on(charts: Page) -> tuple[str, str]:
    """The live page's verdict: its word and its tone (the colour)."""
    verdict = charts.locator("#certctl-verdict")
    return verdict.text_content(), verdict.get_attribute("class").removeprefix("verdict tone-")


@pytest.mark.e2e
def test_storms_started_from_the_web_ui_run_live_and_are_judged(tmp_path, chromium_page):
    page = chromium_page
    token = f"webui-secret-{uuid.uuid4().hex}"
    log_path = tmp_path / "requests.jsonl"
    with (
        running_target("--fleet-size", str(FLEET), "--token", token, request_log=log_path) as target,
        locust_ui(target.url, tmp_path, token) as url,
    ):
        assert http_get(f"{url}/certctl/summary.json")[0] == 404  # no run has finished yet
        assert http_get(f"{url}/certctl/summary.yaml")[0] == 404  # and it serves nothing else
        page.goto(url)

        # The start form offers the harness's options, never a token.
        page.wait_for_selector("input[name=fleetSize]", state="attached")
        names = page.eval_on_selector_all("form input", "inputs => inputs.map(i => i.name + ':' + i.type)")
        assert {"fleetSize:text", "heartbeatInterval:text", "scenario:text"} <= set(names)
        assert not [n for n in names if "token" in n.lower() or n.endswith(":password")]

        # The live charts, a page of their own: uPlot from the harness, polling the timeline route.
        charts, chart_requests, chart_errors = open_charts(page, url)
        assert verdict_on(charts) == ("idle", "running")

        swarm_response = start_run(page, FLEET, INTERVAL_S, RUN_TIME_S)

        # Live: the whole fleet runs and offers its rate.
        table = tab_when(
            page,
            lambda t: (
                value(t, "Run") == "running"
                and value(t, "Agents running") == str(FLEET)
                and abs(offered_rate(t) - TARGET_RATE) <= 0.02 * TARGET_RATE
            ),
            RUN_TIME_S,
            "all agents running at the target rate, on the tab",
        )
        page.screenshot(path=tmp_path / "certctl-tab-live.png", full_page=True)
        assert value(table, "Fleet size") == str(FLEET)
        assert value(table, "Heartbeat interval") == f"{INTERVAL_S:g} s"
        assert value(table, "Run time") == f"{RUN_TIME_S} s"
        assert value(table, "Target heartbeat rate") == f"{TARGET_RATE:.2f} /s"
        assert value(table, "Verdict") == "pending (the run is not over)"
        thresholds = {name: row for name, row in table.items() if name.startswith("http_req_")}
        assert set(thresholds) == {
            "http_req_duration{scenario:agent_storm}: p(99)<1000",
            "http_req_duration{scenario:agent_storm}: p(95)<500",
            "http_req_failed{scenario:agent_storm}: rate<0.001",
        }
        assert all(status == "pass" and float(v) >= 0 for v, status in thresholds.values())
        polls = charts.evaluate("window.certctlPolls")
        charts.wait_for_function("document.getElementById('certctl-verdict').textContent === 'running'")
        charts.wait_for_function(f"window.certctlPolls > {polls}")

        # The run ends by the harness's schedule (not cut at the form's run time) and is judged.
        table = tab_when(page, judged, RUN_TIME_S + 60, "the verdict on the tab")
        page.screenshot(path=tmp_path / "certctl-tab-verdict.png", full_page=True)
        assert table["Verdict"] == ("passed (exit 0)", "pass")
        beats = expected_beats(FLEET, INTERVAL_S, RUN_TIME_S)
        assert value(table, "Heartbeats sent") == str(beats)
        log = read_request_log(log_path)
        assert len(heartbeats(log)) == beats
        assert len(beats_by_agent(log)) == FLEET

        # The summary links serve this run's summaries from the results directory.
        summary_url = urljoin(f"{url}/", value(table, "Summary (JSON)"))
        summary = page.request.get(summary_url).json()
        assert summary["metrics"]["http_reqs"]["values"]["count"] == beats
        assert summary == json.loads((tmp_path / "results" / "summary-agent-storm.json").read_text())
        text = page.request.get(urljoin(f"{url}/", value(table, "Summary (text)"))).text()
        assert text == (tmp_path / "results" / "summary-agent-storm.txt").read_text()
        page.get_by_role("tab", name="Download Data").click()
        link = page.get_by_role("link", name="certctl summary of the last run (JSON)")
        assert urljoin(f"{url}/", link.get_attribute("href")) == summary_url

        # The run's report is served from the tab, and the live charts show the verdict.
        assert value(table, "Report (HTML)") == "./certctl/report.html"
        report = page.request.get(urljoin(f"{url}/", value(table, "Report (HTML)"))).text()
        assert report == (tmp_path / "results" / "report-agent-storm.html").read_text()
        assert 'class="verdict tone-pass"' in report
        charts.wait_for_function("document.getElementById('certctl-verdict').textContent === 'pass'")
        assert verdict_on(charts) == ("pass", "pass")

        # A second run, stopped from the UI, gets its own figures, verdict and summaries.
        page.get_by_role("button", name="New").click()
        start_run(page, FLEET // 2, 1.0, 60)
        tab_when(
            page,
            lambda t: value(t, "Agents running") == str(FLEET // 2),
            30,
            "the second run's agents on the tab",
        )
        page.get_by_role("button", name="Stop").click()
        table = tab_when(page, judged, 30, "the second run's verdict on the tab")
        assert table["Verdict"] == ("interrupted (exit 105)", "FAIL")
        second = page.request.get(summary_url).json()
        assert second["metrics"]["http_reqs"]["values"]["count"] == int(value(table, "Heartbeats sent"))
        assert second["metrics"]["vus_max"]["values"]["value"] == FLEET // 2
        charts.wait_for_function("document.getElementById('certctl-verdict').textContent === 'interrupted'")
        assert verdict_on(charts) == ("interrupted", "warn")
        assert chart_errors == []
        assert {urlsplit(u).hostname for u in chart_requests} == {"127.0.0.1"}
        assert any(urlsplit(u).path == "/certctl/timeline" for u in chart_requests)

        # The token reaches no page and no route.
        pages = {
            "DOM": page.content(),
            "/swarm": swarm_response.text(),
            **{path: http_get(f"{url}{path}")[1] for path in ("/", "/stats/requests", "/certctl/live")},
            "summary.json": page.request.get(summary_url).text(),
            "summary.txt": page.request.get(urljoin(f"{url}/", "./certctl/summary.txt")).text(),
            "report.html": page.request.get(urljoin(f"{url}/", "./certctl/report.html")).text(),
            "charts": charts.content(),
            **{path: http_get(f"{url}{path}")[1] for path in ("/certctl/charts", "/certctl/timeline")},
        }
        assert [name for name, body in pages.items() if token in body] == []
