"""Locust's own ``--otel``: its request histogram sees every heartbeat the harness sends."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import read_request_log
from storm import fleet_options, heartbeats, run_storm
from target_process import running_target

pytestmark = pytest.mark.e2e

# The SDK's console exporter prints each export as one indented JSON document.
_EXPORT = re.compile(r'^\{\s*"resource_metrics"', re.MULTILINE)
OTEL_ENV = {
    "OTEL_METRICS_EXPORTER": "console",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",  # only the export at exit, cumulative: the whole run
}


def exports(stdout: str) -> list[dict[str, Any]]:
    """Every metrics export the console exporter printed, in order."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(stdout, match.start())[0] for match in _EXPORT.finditer(stdout)]


def data_points(export: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        point
        for resource in export["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
        if metric["name"] == name
        for point in metric["data"]["data_points"]
    ]


def test_locusts_otel_histogram_counts_every_heartbeat_the_server_logged(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "50", request_log=log_path) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(50, 1, 4), "--otel", env=OTEL_ENV)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "OpenTelemetry enabled" in run.stderr
    [export] = exports(run.stdout)
    points = data_points(export, "locust.client.duration")
    assert [point["attributes"] for point in points] == [{"name": "heartbeat"}]
    logged = len(heartbeats(read_request_log(log_path)))
    assert logged > 0 and points[0]["count"] == logged
    duration = run.summary()["metrics"]["http_req_duration"]["values"]
    assert run.summary()["metrics"]["http_reqs"]["values"]["count"] == logged
    # The same durations: Locust's histogram takes the summary's milliseconds, in seconds.
    assert points[0]["min"] * 1000 == pytest.approx(duration["min"], abs=1e-6)
    assert points[0]["max"] * 1000 == pytest.approx(duration["max"], abs=1e-6)
    assert points[0]["sum"] * 1000 == pytest.approx(duration["avg"] * logged, rel=1e-9)
