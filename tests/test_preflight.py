"""Preflight and the early stop: a target that cannot take the storm is named before (or within
seconds of) any load, with exit code 2 and one line saying why."""

from __future__ import annotations

import pytest
from helpers import free_port, read_request_log
from storm import heartbeats, run_storm
from target_process import running_target

pytestmark = pytest.mark.e2e


def storm_against(target_args, tmp_path, *storm_args, env=None, host=None, preflight=True):
    log_path = tmp_path / "requests.jsonl"
    with running_target(*target_args, request_log=log_path) as target:
        run = run_storm(host or target.url, tmp_path / "results", *storm_args, env=env, preflight=preflight)
    return run, read_request_log(log_path)


def error_lines(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if "preflight:" in line]


SMALL = ("--fleet-size", "20", "--heartbeat-interval", "2", "--run-time", "4s")


def test_a_ready_target_passes_preflight_without_a_heartbeat_before_the_storm(tmp_path):
    run, log = storm_against(["--fleet-size", "20"], tmp_path, *SMALL)
    assert run.code == 0, run.stderr[-2000:]
    gets = [r for r in log if r["method"] == "GET"]
    assert {r["path"] for r in gets} == {
        "/health",
        "/api/v1/auth/check",
        "/api/v1/agents/ag-loadtest-00001",
        "/api/v1/agents/ag-loadtest-00020",
    }
    first_heartbeat = min(r["t"] for r in heartbeats(log))
    assert all(r["t"] < first_heartbeat for r in gets)


@pytest.mark.parametrize(
    ("target_args", "storm_args", "env", "expected"),
    [
        (["--fleet-size", "10"], SMALL, None, "agent ag-loadtest-00020 (number 20 of the fleet) is unknown"),
        (["--fleet-size", "20", "--retired", "1"], SMALL, None, "agent ag-loadtest-00020 is retired"),
        (["--fleet-size", "20"], SMALL, {"CERTCTL_TOKEN": "wrong-token"}, "the token was rejected"),
    ],
    ids=["fleet-not-seeded", "retired-agent", "wrong-token"],
)
def test_an_unready_fleet_or_token_stops_before_load(tmp_path, target_args, storm_args, env, expected):
    run, log = storm_against(target_args, tmp_path, *storm_args, env=env)
    assert run.code == 2
    lines = error_lines(run)
    assert len(lines) == 1 and expected in lines[0], run.stderr[-2000:]
    assert heartbeats(log) == []


def test_an_unreachable_target_is_named(tmp_path):
    port = free_port()
    run = run_storm(f"http://127.0.0.1:{port}", tmp_path / "results", *SMALL, preflight=True)
    assert run.code == 2
    assert "refused the connection" in error_lines(run)[0]


def test_https_without_the_ca_fails_verification_and_names_it(tmp_path):
    run, log = storm_against(["--fleet-size", "20", "--tls"], tmp_path, *SMALL)
    assert run.code == 2
    assert "TLS verification" in error_lines(run)[0] and "--ca-bundle" in error_lines(run)[0]
    assert heartbeats(log) == []


def test_plain_http_to_an_https_target_is_named(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "20", "--tls", request_log=log_path) as target:
        plain = target.url.replace("https://", "http://")
        run = run_storm(plain, tmp_path / "results", *SMALL, preflight=True)
    assert run.code == 2
    assert "https://" in error_lines(run)[0]


def test_https_to_a_plain_http_target_is_named(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "20", request_log=log_path) as target:
        run = run_storm(
            target.url.replace("http://", "https://"), tmp_path / "results", *SMALL, preflight=True
        )
    assert run.code == 2
    assert "TLS handshake" in error_lines(run)[0] and "http://" in error_lines(run)[0]


def test_a_rate_limited_target_stops_the_storm_within_seconds(tmp_path):
    """certctl's limiter at 50 req/s against 150/s offered: stopped early with the diagnosis."""
    run, log = storm_against(
        ["--fleet-size", "300", "--rate-limit", "50", "--rate-burst", "100"],
        tmp_path,
        "--fleet-size",
        "300",
        "--heartbeat-interval",
        "2",
        "--run-time",
        "60s",
    )
    assert run.code == 2, run.stderr[-2000:]
    assert "CERTCTL_RATE_LIMIT_ENABLED=false" in run.stderr
    beats = heartbeats(log)
    assert beats and max(r["t"] for r in beats) - min(r["t"] for r in beats) < 15
    summary = run.summary()
    assert "429" in summary["state"]["stopReason"]
    assert {"kind": "429"}.items() <= summary["failures"][0].items()


def test_unknown_agents_without_preflight_stop_the_storm_early(tmp_path):
    run, _ = storm_against(
        ["--fleet-size", "10"],
        tmp_path,
        "--fleet-size",
        "100",
        "--heartbeat-interval",
        "2",
        "--run-time",
        "60s",
        preflight=False,
    )
    assert run.code == 2
    assert "answered 404" in run.stderr and "seed the fleet" in run.stderr
