"""The self-contained HTML report: built from a generated 90 s storm with a 3 s stall (tests/timelines.py;
its requests recorded in a real metric store, judged, summarised, and cut into per-second rows),
checked as text, then opened from its file in headless Chromium with every network request blocked.

``CERTCTL_REPORT_SCREENSHOT=docs/report.png pytest tests/test_html_report.py -k chromium`` also
writes the screenshot the README shows."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from browser import offline_page
from timelines import FLEET, INTERVAL_S, SECONDS, STALL_AT, Request, storm_requests, timeline_of

from certctl_load import exitcodes
from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.percentiles import percentile
from certctl_load.k6.thresholds import evaluate
from certctl_load.model.config import RunConfig, resolve_config
from certctl_load.reporting.breakdown import failure_breakdown
from certctl_load.reporting.charts import latency_marks, summary_thresholds
from certctl_load.reporting.figures import format_figure
from certctl_load.reporting.html_report import Verdict, render_report, report_path, write_report
from certctl_load.reporting.summary import CheckCount, build_summary

TOKEN = "report-secret-5b1e07d2"
WINDOW_S = 30
CHARTS = ("heartbeats", "latency", "failures", "beats", "lag", "connections")


def worst_window(requests: list[Request], window_s: int, seconds: int = SECONDS) -> tuple[float, int]:
    """The worst p(95) over the windows [k, k + W) that fit, and the start of its window."""
    return max(
        (percentile(sorted(r.duration_ms for r in requests if k <= r.sent_s < k + window_s), 95), k)
        for k in range(seconds - window_s + 1)
    )


def run_config(tmp_path: Path) -> RunConfig:
    options = SimpleNamespace(
        fleet_size=str(FLEET),
        heartbeat_interval=f"{INTERVAL_S}s",
        run_time=SECONDS,
        results_dir=str(tmp_path / "results"),
    )
    return resolve_config(options, {"CERTCTL_TOKEN": TOKEN}, "http://127.0.0.1:9")


def judged_storm(config: RunConfig, requests: list[Request]) -> tuple[dict[str, Any], Verdict]:
    """The storm's samples in a metric store, judged and summarised as the judge does; plus the
    windowed ``p(95)<500 over 30s`` the timeline adds to the summary."""
    store = MetricStore()
    name = config.scenario.name
    for r in requests:
        status = "503" if r.failure == "503" else "0" if r.failure else "200"
        tags = {"scenario": name, "name": "heartbeat", "method": "POST", "status": status}
        tags["expected_response"] = "true" if status == "200" else "false"
        if r.failure and status == "0":
            tags["error"] = r.failure
        store.add_trend("http_req_duration", r.duration_ms, tags)
        store.add_rate("http_req_failed", status != "200", tags)
        store.add_counter("http_reqs", 1, tags)
    results = evaluate(list(config.scenario.thresholds), store, SECONDS)
    checks = [CheckCount("heartbeat 2xx", sum(r.failure is None for r in requests), 0)]
    summary = build_summary(
        store,
        results,
        trend_stats=config.scenario.summary_trend_stats,
        duration_ms=SECONDS * 1000,
        checks=checks,
    )
    summary["failures"] = [
        {"kind": row.kind, "count": row.count, "hint": row.hint} for row in failure_breakdown(store, name)
    ]
    summary["generator"] = {
        "saturated": False,
        "reasons": [],
        "lag_ms": {"p50": 0.52, "p99": 1.1, "max": 3.9},
    }
    worst, start = worst_window(requests, WINDOW_S)
    summary["metrics"][f"http_req_duration{{scenario:{name}}}"]["thresholds"][
        f"p(95)<500 over {WINDOW_S}s"
    ] = {
        "ok": worst < 500,
        "worst": worst,
        "worst_start_s": start,
        "window_s": WINDOW_S,
    }
    code = exitcodes.THRESHOLDS_CROSSED if worst >= 500 else exitcodes.OK
    return summary, Verdict(code, results, len(requests))


@pytest.fixture(scope="module")
def storm(tmp_path_factory) -> SimpleNamespace:
    tmp_path = tmp_path_factory.mktemp("storm")
    config = run_config(tmp_path)
    requests = storm_requests()
    timeline = timeline_of(requests)
    summary, verdict = judged_storm(config, requests)
    path = write_report(config.results_dir, config.scenario.file_stem, summary, timeline, config, verdict)
    return SimpleNamespace(config=config, timeline=timeline, summary=summary, verdict=verdict, path=path)


def visible_text(page: str) -> str:
    """The page's text outside its scripts and styles."""
    return re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.DOTALL)


# The page as text -----------------------------------------------------------------------------------


def test_the_fixture_is_the_storm_the_acceptance_describes(storm):
    rows = storm.timeline["rows"]
    assert len(rows) == SECONDS
    assert {row["offered"] for row in rows} <= {166, 167}
    assert rows[STALL_AT]["p50"] > 2000 and rows[STALL_AT - 1]["p99"] < 2
    ok = {result.threshold.expression.text: result.ok for result in storm.verdict.results}
    assert ok == {"p(95)<500": True, "p(99)<1000": False, "rate<0.001": True}  # a 3 s stall is 3 % of 90 s
    window = storm.summary["metrics"]["http_req_duration{scenario:agent_storm}"]["thresholds"]
    assert window["p(95)<500 over 30s"]["ok"] is False  # the window holding the stall does not
    assert storm.verdict.exit_code == exitcodes.THRESHOLDS_CROSSED


def test_the_report_is_written_beside_the_summaries_with_no_temporary_file_left(storm):
    assert storm.path == storm.config.results_dir / "report-agent-storm.html"
    assert storm.path == report_path(storm.config.results_dir, "agent-storm")
    assert [p.name for p in storm.config.results_dir.iterdir()] == ["report-agent-storm.html"]


def test_the_page_holds_everything_and_names_no_external_url(storm):
    page = storm.path.read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "var uPlot=function()" in page and ".uplot" in page  # the library and its stylesheet, inlined
    urls = set(re.findall(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s"'<>)]*""", page))
    assert urls == {"https://github.com/leeoniya/uPlot"}  # only uPlot's own banner comment
    assert not re.search(r"""\b(?:src|href)\s*=""", page)


def test_the_token_appears_nowhere(storm):
    assert storm.config.token == TOKEN
    assert TOKEN not in storm.path.read_text()


def test_the_verdict_is_a_coloured_word_and_the_thresholds_are_tabled(storm):
    text = visible_text(storm.path.read_text())
    assert (
        '<span id="certctl-verdict" class="verdict tone-fail" title="thresholds crossed">fail</span>' in text
    )
    assert "<td>http_req_duration{scenario:agent_storm}</td><td>p(95)&lt;500</td>" in text
    assert re.search(r"<td>p\(95\)&lt;500</td><td>\d+\.\d{2} ms</td><td class=\"tone-pass\">PASS</td>", text)
    assert re.search(r"<td>rate&lt;0.001</td><td>0\.0\d %</td><td class=\"tone-pass\">PASS</td>", text)
    worst = storm.summary["metrics"]["http_req_duration{scenario:agent_storm}"]["thresholds"]
    worst = worst["p(95)<500 over 30s"]
    start = worst["worst_start_s"]
    assert (
        f"<td>http_req_duration{{scenario:agent_storm}}: p(95)&lt;500 over 30s</td>"
        f"<td>{format_figure(worst['worst'], 'ms')}</td><td>{start} s to {start + 30} s</td>"
        '<td class="tone-fail">FAIL</td>'
    ) in text


def test_figures_are_for_people(storm):
    text = visible_text(storm.path.read_text())
    assert not re.findall(r"\d\.\d{4,}", text)  # no 5.731792119991037
    assert not re.findall(r"(?<![\d.])\d+\.0(?![\d.])", text)  # no 0.0
    assert "0.00 % failed" not in text  # the storm had failures
    failed = storm.summary["metrics"]["http_req_failed"]["values"]["rate"]
    assert f"{format_figure(failed, 'percent')} failed" in text
    assert "<td>fleet size</td><td>1000 agents</td>" in text
    assert "<td>call heartbeat</td><td>POST /api/v1/agents/{id}/heartbeat every 6 s</td>" in text
    assert "<td>TLS</td><td>none (plain HTTP)</td>" in text


@pytest.mark.parametrize(
    ("code", "state", "word", "tone"),
    [
        (exitcodes.OK, {}, "pass", "pass"),
        (exitcodes.THRESHOLDS_CROSSED, {}, "fail", "fail"),
        (exitcodes.THRESHOLDS_CROSSED, {"stopReason": "abortOnFail: p(95)<500"}, "aborted", "fail"),
        (exitcodes.INCONCLUSIVE, {}, "inconclusive", "warn"),
        (exitcodes.INTERRUPTED, {}, "interrupted", "warn"),
        (exitcodes.TARGET_NOT_READY, {"stopReason": "429 storm"}, "not ready", "fail"),
    ],
)
def test_each_verdict_has_its_word_and_colour(storm, code, state, word, tone):
    summary = {**storm.summary, "state": {**storm.summary["state"], **state}}
    page = render_report(summary, storm.timeline, storm.config, Verdict(code, storm.verdict.results, 1))
    assert f'class="verdict tone-{tone}"' in page
    assert re.search(rf'id="certctl-verdict"[^>]*>{word}</span>', page)


def test_a_run_without_a_timeline_still_gets_its_report(storm):
    page = render_report(storm.summary, None, storm.config, storm.verdict)
    assert "This run kept no per-second figures." in page
    assert '"rows":[]' in page


# The page in Chromium --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_chromium_draws_every_second_of_every_chart_with_the_network_blocked(storm, tmp_path):
    with offline_page(tmp_path / "profile", storm.path) as opened:
        page = opened.page
        page.wait_for_function("window.certctlCharts && Object.keys(window.certctlCharts.plots).length === 6")
        drawn = page.evaluate(
            """() => Object.entries(window.certctlCharts.plots).map(([key, plot]) => {
                const {width, height} = plot.ctx.canvas;
                const pixels = plot.ctx.getImageData(0, 0, width, height).data;
                let inked = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
                return {key, points: plot.data.map((column) => column.length),
                        labels: plot.series.slice(1).map((s) => s.label), inked,
                        last: plot.data.map((column) => column[column.length - 1])};
            })"""
        )
        assert [chart["key"] for chart in drawn] == list(CHARTS)
        for chart in drawn:
            assert chart["points"] == [SECONDS] * len(chart["points"]), chart["key"]
            assert chart["inked"] > 1000, f"{chart['key']} drew nothing"
        by_key = {chart["key"]: chart for chart in drawn}
        assert by_key["failures"]["labels"] == ["all kinds", "503", "ECONNRESET"]
        last = storm.timeline["rows"][-1]
        assert by_key["latency"]["last"] == [last["t"], last["p50"], last["p95"], last["p99"]]
        assert by_key["heartbeats"]["labels"] == ["offered", "sent", "completed"]

        verdict = page.locator("#certctl-verdict")
        assert verdict.inner_text().lower() == "fail"
        assert "tone-fail" in verdict.get_attribute("class")
        marks = page.locator("#certctl-marks li").all_inner_texts()
        assert "limit p(95)<500 {scenario:agent_storm}: 500.00 ms" in marks
        assert any(m.startswith("p(95)<500 over 30s {scenario:agent_storm}: worst ") for m in marks)

        # The charts' formatter is figures.py's: the same text for the same value.
        cases = [(5.731792119991037, "ms"), (0.0, "percent"), (0.00123, "percent"), (166.666, "rate")]
        cases += [(1000.0, "count"), (None, "ms"), (0.4, "seconds")]
        shown = page.evaluate("cases => cases.map(([v, u]) => window.certctlCharts.format(v, u))", cases)
        assert shown == [format_figure(v, u) for v, u in cases]
        assert shown[:2] == ["5.73 ms", "0.00 %"]

        screenshot = tmp_path / "report.png"
        page.screenshot(path=screenshot, full_page=True)
        if os.environ.get("CERTCTL_REPORT_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["CERTCTL_REPORT_SCREENSHOT"])
    assert opened.errors == [] and opened.stayed_offline
    assert screenshot.stat().st_size > 10_000


def test_a_password_in_the_target_url_is_not_shown(storm, tmp_path):
    options = SimpleNamespace(fleet_size="10", heartbeat_interval="2s", run_time=6, results_dir=str(tmp_path))
    config = resolve_config(options, {"CERTCTL_TOKEN": TOKEN}, "https://agent:hunter2@127.0.0.1:8443/")
    page = render_report(storm.summary, storm.timeline, config, storm.verdict)
    assert "hunter2" not in page and TOKEN not in page
    assert "<td>target</td><td>https://127.0.0.1:8443/</td>" in page


def test_a_windowed_rate_reads_in_percent_and_marks_no_latency(storm):
    summary = copy.deepcopy(storm.summary)
    failed = summary["metrics"]["http_req_failed{scenario:agent_storm}"]["thresholds"]
    failed["rate<0.001 over 10s"] = {"ok": False, "worst": 0.0042, "worst_start_s": 60, "window_s": 10}
    page = render_report(summary, storm.timeline, storm.config, storm.verdict)
    assert (
        "<td>http_req_failed{scenario:agent_storm}: rate&lt;0.001 over 10s</td><td>0.42 %</td>"
        '<td>60 s to 70 s</td><td class="tone-fail">FAIL</td>'
    ) in page
    marks = latency_marks(summary_thresholds(summary))
    latency = summary["metrics"]["http_req_duration{scenario:agent_storm}"]["thresholds"][
        "p(95)<500 over 30s"
    ]
    assert [w["label"] for w in marks["windows"]] == [
        f"p(95)<500 over 30s {{scenario:agent_storm}}: worst {format_figure(latency['worst'], 'ms')}"
    ]
    assert sorted(line["value"] for line in marks["lines"]) == [500, 1000]
