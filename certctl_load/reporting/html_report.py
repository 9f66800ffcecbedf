"""The HTML pages with the per-second charts: ``report-<stem>.html``, a self-contained report written
beside the summaries (uPlot, its stylesheet and the data inlined: it opens with no network), and the
web UI's live page, which draws the same charts from rows it polls for.

Pure: every function builds text from its arguments; :func:`write_report` writes one file atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from certctl_load.k6.thresholds import ThresholdResult, parse_expression, parse_metric_key
from certctl_load.model.config import RunConfig
from certctl_load.reporting.charts import (
    WINDOW_SEPARATOR,
    asset,
    charts_json,
    latency_marks,
    summary_thresholds,
)
from certctl_load.reporting.figures import format_duration, format_figure, units_json
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.verdict_table import (
    HEADER,
    VerdictWord,
    conclusion,
    measured_figure,
    measured_unit,
    verdict_rows,
    verdict_word,
)


@dataclass(frozen=True)
class Verdict:
    """What the judgement decided: the exit code, each threshold's result, the requests sent."""

    exit_code: int
    results: list[ThresholdResult]
    requests: int


def report_path(results_dir: Path, stem: str) -> Path:
    """Where a run's report goes: ``report-agent-storm.html`` for the shipped scenario."""
    return results_dir / f"report-{stem}.html"


def _host_without_credentials(host: str) -> str:
    parts = urlsplit(host)
    if parts.username is None and parts.password is None:
        return host
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _tls(config: RunConfig) -> str:
    if urlsplit(config.host).scheme != "https":
        return "none (plain HTTP)"
    return (
        "not verified (--insecure)" if config.insecure else f"verified ({config.ca_bundle or 'system CAs'})"
    )


def run_options(config: RunConfig) -> list[tuple[str, str]]:
    """The run's options as shown to people, each named; never the token (nor a password in the host)."""
    scenario = config.scenario
    options = [
        ("scenario", f"{scenario.name} ({scenario.source})"),
        ("target", _host_without_credentials(config.host)),
        ("fleet size", f"{config.fleet_size} agents"),
        ("run time", format_duration(config.duration_s)),
        ("offered rate", format_figure(config.offered_rate, "rate")),
    ]
    options += [
        (f"call {call.name}", f"{call.method} {call.path} every {format_duration(call.interval_s)}")
        for call in config.calls
    ]
    options += [
        ("connection", scenario.connection),
        ("connect", f"{scenario.connect}, at most {scenario.connect_concurrency} at once per process"),
        ("request timeout", format_duration(scenario.request_timeout_s)),
        ("TLS", _tls(config)),
        ("preflight", "skipped" if config.skip_preflight else "checked"),
        ("summary trend stats", ", ".join(scenario.summary_trend_stats)),
        ("results directory", str(config.results_dir)),
    ]
    if config.out is not None:
        options.append(("k6 JSON output", str(config.out.path)))
    return options


def _data_script(data: Mapping[str, Any]) -> str:
    """The page's data as JSON in a script element (``<`` escaped, so no text ends the element)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="certctl-data">{text}</script>'


def html_page(title: str, body: str, data: Mapping[str, Any], start: str) -> str:
    """A whole page: uPlot's and the page's styles, ``body``, the data, uPlot, the charts, ``start``."""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>\n{asset('uplot/uPlot.min.css')}\n{asset('page.css')}</style>",
            "</head><body>",
            body,
            _data_script(data),
            f"<script>\n{asset('uplot/uPlot.iife.min.js')}\n</script>",
            f"<script>\n{asset('charts.js')}\n</script>",
            f"<script>\n{start}\n</script>",
            "</body></html>",
            "",
        ]
    )


def verdict_badge(word: VerdictWord, element_id: str = "certctl-verdict") -> str:
    """The verdict as a coloured word (its full text as the title)."""
    return (
        f'<span id="{element_id}" class="verdict tone-{escape(word.tone)}" title="{escape(word.text)}">'
        f"{escape(word.word)}</span>"
    )


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], tones: Sequence[str] = ()) -> str:
    """An HTML table; ``tones`` colours each row's last cell (``pass``, ``fail`` or empty)."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        tone = tones[index] if index < len(tones) else ""
        cells = [f"<td>{escape(cell)}</td>" for cell in row[:-1]]
        cells.append(
            f'<td class="tone-{tone}">{escape(row[-1])}</td>' if tone else f"<td>{escape(row[-1])}</td>"
        )
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _metric(summary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    values: Mapping[str, Any] = summary.get("metrics", {}).get(name, {}).get("values", {})
    return values


def _headline(summary: Mapping[str, Any]) -> str:
    """The run in one line: requests, failures, p95, p99 (for people)."""
    requests, failed = _metric(summary, "http_reqs"), _metric(summary, "http_req_failed")
    duration = _metric(summary, "http_req_duration")
    parts = [
        f"{format_figure(requests.get('count'), 'count')} requests",
        f"{format_figure(requests.get('rate'), 'rate')}",
        f"{format_figure(failed.get('rate'), 'percent')} failed",
    ]
    parts += [
        f"{stat} {format_figure(duration[stat], 'ms')}"
        for stat in ("med", "p(95)", "p(99)")
        if stat in duration
    ]
    duration_ms = summary.get("state", {}).get("testRunDurationMs")
    if duration_ms is not None:
        parts.append(f"over {format_figure(duration_ms / 1000, 'seconds')}")
    return ", ".join(parts)


def _window_rows(summary: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Each windowed threshold's worst window, from the summary: key, worst value, where, verdict."""
    rows = []
    for metric_key, key, entry in summary_thresholds(summary):
        if "window_s" not in entry:
            continue
        start = entry.get("worst_start_s")
        where = "no window" if start is None else f"{start} s to {start + entry['window_s']} s"
        method = parse_expression(key.partition(WINDOW_SEPARATOR)[0]).method
        worst = format_figure(entry.get("worst"), measured_unit(parse_metric_key(metric_key)[0], method))
        rows.append((f"{metric_key}: {key}", worst, where, "PASS" if entry.get("ok") else "FAIL"))
    return rows


def _generator_rows(generator: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if "saturated" in generator:
        reasons = "; ".join(generator.get("reasons", []))
        rows.append(("saturated", f"yes: {reasons}" if generator["saturated"] else "no"))
    lag = generator.get("lag_ms") or {}
    if lag:
        rows.append(
            ("lag", ", ".join(f"{k} {format_figure(lag.get(k), 'ms')}" for k in ("p50", "p99", "max")))
        )
    if "cpu_pct" in generator:
        rows.append(("CPU", format_figure(generator["cpu_pct"], "cpu")))
    if "late_fraction" in generator:
        rows.append(("late beats", format_figure(generator["late_fraction"], "percent")))
    connect = generator.get("connect")
    if connect:
        took = format_figure(connect.get("took_s"), "seconds")
        rows.append(
            ("connect phase", f"{connect['connected']} of {connect['agents']} agents connected in {took}")
        )
    return rows


def render_report(
    summary: Mapping[str, Any],
    timeline: Mapping[str, Any] | None,
    options: RunConfig,
    verdict: Verdict,
) -> str:
    """The self-contained report of one run: the verdict (a coloured word and the threshold table),
    the per-second charts from ``timeline`` (none when the run kept no timeline), the failures, the
    generator's health and the run's options. No external URL: it opens with the network off."""
    word = verdict_word(verdict.exit_code, verdict.requests, aborted="stopReason" in summary.get("state", {}))
    rows = list(timeline.get("rows", [])) if timeline else []
    name = options.scenario.name
    body = [
        f"<h1>certctl-load: {escape(name)} {verdict_badge(word)}</h1>",
        f'<p class="lede">{escape(f"{word.text} (exit code {verdict.exit_code}); {_headline(summary)}")}</p>',
        "<h2>Thresholds</h2>",
    ]
    if verdict.results:
        table_rows = verdict_rows(verdict.results, measured_figure)
        body.append(
            html_table(HEADER, table_rows, ["pass" if row[3] == "PASS" else "fail" for row in table_rows])
        )
        body.append(f"<p>{escape(conclusion(verdict.results))}</p>")
    else:
        body.append("<p>thresholds: none defined</p>")
    windows = _window_rows(summary)
    if windows:
        body.append("<h3>Worst windows</h3>")
        tones = ["pass" if row[3] == "PASS" else "fail" for row in windows]
        body.append(html_table(("threshold", "worst", "window", "verdict"), windows, tones))
    stop_reason = summary.get("state", {}).get("stopReason")
    if stop_reason:
        body.append(f"<p>{escape(str(stop_reason))}</p>")
    body.append("<h2>Per second</h2>")
    if not rows:
        body.append("<p>This run kept no per-second figures.</p>")
    body.append('<ul id="certctl-marks"></ul><div id="charts"></div>')
    failures = summary.get("failures", [])
    if failures:
        body.append("<h2>Failures</h2>")
        failure_rows = [
            (f["kind"], format_figure(f["count"], "count"), f.get("hint") or "") for f in failures
        ]
        body.append(html_table(("kind", "count", "hint"), failure_rows))
    generator = summary.get("generator", {})
    if generator:
        body.append("<h2>Load generator</h2>")
        body.append(html_table(("figure", "value"), _generator_rows(generator)))
    body.append("<h2>Options</h2>")
    body.append(html_table(("option", "value"), run_options(options)))
    data = {
        "units": units_json(),
        "charts": charts_json(),
        "marks": latency_marks(summary_thresholds(summary)),
        "rows": rows,
    }
    return html_page(f"certctl-load report: {name}", "\n".join(body), data, "CertctlCharts.mount();")


def write_report(
    results_dir: Path,
    stem: str,
    summary: Mapping[str, Any],
    timeline: Mapping[str, Any] | None,
    options: RunConfig,
    verdict: Verdict,
) -> Path:
    """Write ``report-<stem>.html`` in ``results_dir`` atomically; returns its path."""
    path = report_path(results_dir, stem)
    write_atomically(path, render_report(summary, timeline, options, verdict))
    return path


def render_live_page(scenario: str) -> str:
    """The web UI's live charts: the same charts, filled by polling ``./timeline?since=N``."""
    body = "\n".join(
        [
            f"<h1>certctl-load: {escape(scenario)} {verdict_badge(verdict_word(None))}</h1>",
            '<p class="lede" id="certctl-state">waiting for the web UI</p>',
            '<ul id="certctl-marks"></ul><div id="charts"></div>',
        ]
    )
    data = {"units": units_json(), "charts": charts_json(), "marks": {"lines": [], "windows": []}, "rows": []}
    return html_page(f"certctl-load live: {scenario}", body, data, asset("live.js"))
