"""The certctl tab in Locust's web UI: live fleet figures, every threshold, and each run's verdict.

Built only on Locust's extension points: ``extended_tabs``/``extended_tables``/``extended_csv_files``
in the page's template args, the tab's rows added to ``/stats/requests`` (which the page polls every
2 s while a test runs), and routes on ``web_ui.app``: ``certctl/live`` (the same figures as JSON),
``certctl/charts`` (the live charts, a page of its own: Locust's tabs render only tables) and
``certctl/timeline?since=N`` (the per-second rows it polls), ``certctl/summary.json``,
``certctl/summary.txt`` and ``certctl/report.html`` (the last finished run's summaries and report,
from the results directory). Everything is read from the harness's current run, which on a
distributed master holds the whole fleet's merged samples. The token is never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import deque
from dataclasses import asdict
from itertools import pairwise
from math import fsum
from pathlib import Path
from typing import Any, Protocol

import gevent
from flask import Blueprint, Response, abort, jsonify, request, send_from_directory
from locust.env import Environment
from locust.log import greenlet_exception_logger
from locust.runners import STATE_CLEANUP, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING
from locust.web import WebUI

from certctl_load import exitcodes
from certctl_load.k6.thresholds import evaluate
from certctl_load.model.config import RunConfig
from certctl_load.plugin.locust_internals import REQUEST_STATS_ENDPOINT, offer_in_start_form
from certctl_load.reporting.charts import live_marks
from certctl_load.reporting.html_report import render_live_page
from certctl_load.reporting.verdict_table import VerdictWord, verdict_text, verdict_word
from certctl_load.runtime.generator import Health
from certctl_load.runtime.run import Phase, Run

logger = logging.getLogger("certctl_load")

TAB_KEY = "certctl"
# The harness options the start form offers (a changed value applies from the next run on).
FORM_OPTIONS = frozenset({"scenario", "fleet_size", "heartbeat_interval"})
RATE_WINDOW_S = 8.0  # spans at least two of a distributed master's merges (workers report every 3 s)
SAMPLE_PERIOD_S = 0.25
SUMMARY_KINDS = {"json": "json_path", "txt": "text_path"}  # the route's suffix -> the Outcome's file
SUMMARY_HREF = "./certctl/summary.{kind}"  # relative to the web UI's root page
REPORT_HREF = "./certctl/report.html"
CHARTS_HREF = "./certctl/charts"
_UNJUDGED_STOP_STATES = {STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED}


class RunSource(Protocol):
    """Where the tab reads the current run and configuration from (the process's harness)."""

    @property
    def run(self) -> Run | None: ...

    @property
    def config(self) -> RunConfig | None: ...

    def generator_health(self) -> Health | None:
        """The load generator's health so far: this process's, or on a master the whole fleet's."""
        ...

    def timeline_rows(self, since: int) -> list[dict[str, Any]]:
        """The current run's per-second rows with ``t >= since``, oldest first, each as the timeline
        file holds it (``{"t", "offered", "sent", "completed", "failed", ...}``); [] before a run."""
        ...


class OfferedRate:
    """Requests per second over the last few seconds, from a request count read at a steady cadence.

    The rate is the least-squares slope through the moments the count changed, so a count that grows
    in bursts (a master merging each worker's report as it arrives) still gives the rate, not a saw-tooth.
    """

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def observe(self, now: float, count: float) -> None:
        """Record the count at ``now``; keeps the window plus the one sample just before it."""
        samples = self._samples
        samples.append((now, count))
        while len(samples) > 1 and samples[1][0] < now - self.window_s:
            samples.popleft()

    def rate(self, now: float) -> float:
        """Requests per second; 0 until the count has changed twice in the window."""
        points = [
            (t, count)
            for (_, before), (t, count) in pairwise(self._samples)
            if count != before and t >= now - self.window_s
        ]
        if len(points) < 2:
            return 0.0
        cadence = max(b[0] - a[0] for a, b in pairwise(points))
        if now - points[-1][0] > cadence:  # it stopped growing for longer than usual: decay towards 0
            points.append((now - cadence, points[-1][1]))
        mean_t = fsum(t for t, _ in points) / len(points)
        mean_count = fsum(count for _, count in points) / len(points)
        covariance = fsum((t - mean_t) * (count - mean_count) for t, count in points)
        return covariance / fsum((t - mean_t) ** 2 for t, _ in points)


class RateSampler:
    """Reads the current storm's request count every SAMPLE_PERIOD_S; a new storm starts afresh."""

    def __init__(self, source: RunSource) -> None:
        self.source = source
        self.current: Run | None = None
        self.meter = OfferedRate()

    def sample(self, now: float) -> None:
        run = self.source.run
        if run is None:
            return
        if run is not self.current:
            self.current, self.meter = run, OfferedRate()
        self.meter.observe(now, run.store.counter("http_reqs", {}).count)

    def rate(self, run: Run, now: float) -> float:
        return self.meter.rate(now) if run is self.current else 0.0

    def run(self) -> None:
        while True:
            self.sample(time.time())
            gevent.sleep(SAMPLE_PERIOD_S)


def _generator_figures(health: Health | None) -> dict[str, Any] | None:
    return None if health is None else health.to_json()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _generator_entries(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    entries = []
    connect = figures.get("connect")
    if connect is not None:
        took = "connecting" if connect["took_s"] is None else f"in {connect['took_s']:.2f} s"
        value = f"{connect['connected']} of {connect['agents']} agents connected {took}"
        if connect["failed"]:
            value += "; failed: " + ", ".join(f"{kind} {count}" for kind, count in connect["errors"].items())
        entries.append(("Connect phase", value, "FAIL" if connect["failed"] else ""))
    generator = figures.get("generator")
    if generator is not None:
        lag = generator["lag_ms"]
        value = (
            f"lag p99 {_ms(lag['p99'])}, max {_ms(lag['max'])}; CPU {generator['cpu_pct']:.0f}% of a core; "
            f"late beats {generator['late_fraction']:.2%}"
        )
        if generator["saturated"]:
            value = "saturated: " + "; ".join(generator["reasons"])
        entries.append(("Load generator", value, "FAIL" if generator["saturated"] else "ok"))
    return entries


def _config_figures(config: RunConfig) -> dict[str, Any]:
    return {
        "scenario": config.scenario.name,
        "fleet_size": config.fleet_size,
        "heartbeat_interval_s": config.heartbeat_interval_s,
        "duration_s": config.duration_s,
        "target_rate": config.offered_rate,
    }


def live_figures(source: RunSource, sampler: RateSampler, now: float) -> dict[str, Any]:
    """The current run's figures (or, before the first run, the configuration), JSON-ready."""
    run = source.run
    if run is None:
        return {"state": Phase.IDLE.value, **(_config_figures(source.config) if source.config else {})}
    config, store, outcome = run.config, run.store, run.outcome
    if outcome is None:
        results = evaluate(
            list(config.scenario.thresholds), store, run.test_run_duration_s(now), run.timeline.results()
        )
    else:
        results = outcome.results
    return {
        "state": run.phase(now).value,
        **_config_figures(config),
        "agents_running": run.agents_running,
        "offered_rate": None if outcome is not None else sampler.rate(run, now),
        "rate_window_s": sampler.meter.window_s,
        "heartbeats": int(store.counter("http_reqs", {}).count),
        "late": int(store.counter("late_iterations", {}).count),
        "dropped": int(store.counter("dropped_iterations", {}).count),
        "stop_reason": run.stop_reason or run.refusal,
        "incidents": list(run.incidents),
        "generator": _generator_figures(source.generator_health()),
        "connect": None if run.connect is None else run.connect.summary(),
        "thresholds": [
            {
                "metric": result.threshold.metric_key,
                "expression": result.threshold.label,
                "value": result.value,
                "ok": result.ok,
            }
            for result in results
        ],
        "outcome": None
        if outcome is None
        else {
            "exit_code": outcome.exit_code,
            "verdict": verdict_text(outcome.exit_code, outcome.requests),
            "requests": outcome.requests,
            "summary_json": SUMMARY_HREF.format(kind="json"),
            "summary_text": SUMMARY_HREF.format(kind="txt"),
            "report": None if outcome.report_path is None else REPORT_HREF,
        },
    }


def _entries(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, status) in reading order."""
    entries = [
        ("Run", figures["state"], ""),
        ("Scenario", figures["scenario"], ""),
        ("Fleet size", str(figures["fleet_size"]), ""),
        ("Heartbeat interval", f"{figures['heartbeat_interval_s']:g} s", ""),
        ("Run time", f"{figures['duration_s']:g} s", ""),
        ("Target heartbeat rate", f"{figures['target_rate']:.2f} /s", ""),
    ]
    entries.append(("Live charts", CHARTS_HREF, ""))
    if figures["state"] == "idle":
        return entries
    offered = figures["offered_rate"]
    entries += [
        ("Agents running", str(figures["agents_running"]), ""),
        (
            f"Offered rate (last {figures['rate_window_s']:g} s)",
            "the run is over" if offered is None else f"{offered:.2f} /s",
            "",
        ),
        ("Heartbeats sent", str(figures["heartbeats"]), ""),
        ("Late beats", str(figures["late"]), ""),
        ("Dropped beats", str(figures["dropped"]), ""),
        *_generator_entries(figures),
    ]
    if figures["stop_reason"]:
        entries.append(("Stopped early", figures["stop_reason"], "FAIL"))
    entries += [("Incident", incident, "FAIL") for incident in figures["incidents"]]
    for threshold in figures["thresholds"]:
        value = "no samples" if threshold["value"] is None else repr(threshold["value"])
        entries.append(
            (
                f"{threshold['metric']}: {threshold['expression']}",
                value,
                "pass" if threshold["ok"] else "FAIL",
            )
        )
    outcome = figures["outcome"]
    if outcome is None:
        return [*entries, ("Verdict", "pending (the run is not over)", "")]
    passed = "pass" if outcome["exit_code"] == exitcodes.OK else "FAIL"
    return [
        *entries,
        ("Verdict", f"{outcome['verdict']} (exit {outcome['exit_code']})", passed),
        ("Summary (JSON)", outcome["summary_json"], ""),
        ("Summary (text)", outcome["summary_text"], ""),
        *([("Report (HTML)", outcome["report"], "")] if outcome["report"] else []),
    ]


def table_rows(figures: dict[str, Any]) -> list[dict[str, str]]:
    """The tab's rows for Locust's extended table; ``name`` (hidden) is the order Locust sorts by."""
    return [
        {"name": f"{index:03d}", "figure": figure, "value": value, "status": status}
        for index, (figure, value, status) in enumerate(_entries(figures))
    ]


def _offer_in_start_form(parser: argparse.ArgumentParser, **_: Any) -> None:
    offer_in_start_form(parser, FORM_OPTIONS)


def _result_file(run: Run | None, path: str | None) -> Response:
    """The last finished run's file ``path``, served from its results directory (404 otherwise)."""
    if run is None or path is None:
        abort(404)
    return send_from_directory(run.config.results_dir.resolve(), Path(path).name, max_age=0)


def _summary_file(source: RunSource, kind: str) -> Response:
    run = source.run
    outcome = None if run is None else run.outcome
    path = None if outcome is None or kind not in SUMMARY_KINDS else getattr(outcome, SUMMARY_KINDS[kind])
    return _result_file(run, path)


def _since(text: str | None) -> int:
    """The timeline route's ``since``: a whole second >= 0 (0 when absent); 400 naming a bad one."""
    if text is None or text == "":
        return 0
    if not text.isdigit():
        error = {"error": f"since={text!r} is not a whole number of seconds >= 0"}
        abort(Response(json.dumps(error), 400, mimetype="application/json"))
    return int(text)


def timeline_figures(source: RunSource, since: int, now: float) -> dict[str, Any]:
    """What the live charts poll: the run (an id a new run changes), its state and verdict, the rows
    from second ``since`` on, the ``since`` of the next poll, the latency chart's marks."""
    run = source.run
    if run is None:
        idle = VerdictWord("idle", "running", "no run has started")
        return {"run": None, "state": Phase.IDLE.value, "verdict": asdict(idle), "rows": [], "next": 0}
    outcome = run.outcome
    word = (
        verdict_word(None)
        if outcome is None
        else verdict_word(outcome.exit_code, outcome.requests, aborted=run.abort_reason is not None)
    )
    rows = source.timeline_rows(since)
    return {
        "run": f"{run.started_at:.6f}",
        "state": run.phase(now).value,
        "verdict": asdict(word),
        "rows": rows,
        "next": rows[-1]["t"] + 1 if rows else since,
        "marks": live_marks(run.config.scenario.thresholds),
    }


def install_web_ui(source: RunSource, environment: Environment, web_ui: WebUI) -> gevent.Greenlet:
    """Add the certctl tab, its routes and its start-form options to Locust's web UI; returns the
    greenlet sampling the offered rate."""
    environment.events.init_command_line_parser.add_listener(_offer_in_start_form)
    sampler = RateSampler(source)
    sampling = gevent.spawn(sampler.run)
    sampling.link_exception(greenlet_exception_logger(logger))
    web_ui.template_args.update(
        extended_tabs=[{"title": "certctl storm", "key": TAB_KEY}],
        extended_tables=[
            {
                "key": TAB_KEY,
                "structure": [
                    {"key": "figure", "title": "Figure"},
                    {"key": "value", "title": "Value"},
                    {"key": "status", "title": "Status"},
                ],
            }
        ],
        extended_csv_files=[
            {"href": SUMMARY_HREF.format(kind="json"), "title": "certctl summary of the last run (JSON)"},
            {"href": SUMMARY_HREF.format(kind="txt"), "title": "certctl summary of the last run (text)"},
            {"href": REPORT_HREF, "title": "certctl report of the last run (HTML)"},
            {"href": CHARTS_HREF, "title": "certctl live charts"},
        ],
    )
    app = web_ui.app
    assert app is not None, "Locust's web UI has its Flask app once it is built"
    base_path = getattr(environment.parsed_options, "web_base_path", "") or ""
    blueprint = Blueprint("certctl", __name__, url_prefix=f"{base_path}/certctl")

    @blueprint.route("/live")
    @web_ui.auth_required_if_enabled
    def live() -> Response:
        return jsonify(live_figures(source, sampler, time.time()))

    @blueprint.route("/summary.<kind>")
    @web_ui.auth_required_if_enabled
    def summary(kind: str) -> Response:
        return _summary_file(source, kind)

    @blueprint.route("/report.html")
    @web_ui.auth_required_if_enabled
    def report() -> Response:
        run = source.run
        return _result_file(run, None if run is None or run.outcome is None else run.outcome.report_path)

    @blueprint.route("/charts")
    @web_ui.auth_required_if_enabled
    def charts() -> Response:
        config = source.run.config if source.run is not None else source.config
        page = render_live_page("" if config is None else config.scenario.name)
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})

    @blueprint.route("/timeline")
    @web_ui.auth_required_if_enabled
    def timeline() -> Response:
        return jsonify(timeline_figures(source, _since(request.args.get("since")), time.time()))

    app.register_blueprint(blueprint)

    @app.after_request
    def add_tab_rows(response: Response) -> Response:
        if request.endpoint != REQUEST_STATS_ENDPOINT or response.status_code != 200:
            return response
        report = response.get_json()
        rows = table_rows(live_figures(source, sampler, time.time()))
        report["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        run = source.run
        if run is not None and run.outcome is None and report.get("state") in _UNJUDGED_STOP_STATES:
            # The page polls only while a test spawns or runs: until the run is judged (a master
            # first waits for its workers) it is told "running", so the verdict reaches the tab.
            report["state"] = STATE_RUNNING
        response.set_data(json.dumps(report))
        return response

    return sampling
