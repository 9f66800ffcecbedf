"""Secrets never leak: the API token and a database password appear nowhere the harness writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_request_log
from storm import ROOT, StormRun, heartbeats, run_storm
from target_process import running_target

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e

# Recognisable, and unlike anything else in the output; the tail alone must not show up either.
TOKEN = "tok-XYZ-7c1e9b24d35f"
WRONG_TOKEN = "tok-WRONG-4a8d06e2b9c1"
STORM = ("--fleet-size", "20", "--heartbeat-interval", "1", "--run-time", "4s")


def leaks(text: str, *secrets: str) -> list[str]:
    """The secrets, or their distinctive tails, that ``text`` contains."""
    return [piece for secret in secrets for piece in (secret, secret[-12:]) if piece in text]


def harness_outputs(run: StormRun, *paths: Path) -> dict[str, str]:
    """stdout, stderr and every file the harness wrote under ``paths``, by name."""
    outputs = {"stdout": run.stdout, "stderr": run.stderr}
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        outputs.update({str(file): file.read_text(errors="replace") for file in files})
    return outputs


def test_the_token_appears_nowhere_the_harness_writes(tmp_path):
    """Preflight, a storm with some 500s (so failure messages are written), Locust's CSV and HTML
    reports, the summaries, the harness's report and JUnit file, all at DEBUG log level: no trace of
    the token."""
    log_path = tmp_path / "requests.jsonl"
    reports = tmp_path / "reports"
    with running_target(
        "--fleet-size", "20", "--token", TOKEN, "--error-fraction", "0.1", request_log=log_path
    ) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            *STORM,
            "--csv",
            str(reports / "locust"),
            "--html",
            str(reports / "report.html"),
            "--loglevel",
            "DEBUG",
            env={"CERTCTL_TOKEN": TOKEN},
            preflight=True,
        )
    logged = heartbeats(read_request_log(log_path))
    assert run.code == exitcodes.THRESHOLDS_CROSSED, run.stderr[-3000:]
    assert {r["status"] for r in logged} == {200, 500}  # the token was accepted; some beats failed
    outputs = harness_outputs(run, tmp_path / "results", reports)
    names = {Path(name).name for name in outputs}
    assert {
        "summary-agent-storm.json",
        "summary-agent-storm.txt",
        "report-agent-storm.html",
        "report.html",
    } <= names
    assert {"locust_stats.csv", "locust_failures.csv", "locust_stats_history.csv"} <= names
    assert "HTTP 500" in outputs[str(reports / "locust_failures.csv")]
    assert {name: leaks(text, TOKEN) for name, text in outputs.items() if leaks(text, TOKEN)} == {}


@pytest.mark.parametrize("preflight", [True, False], ids=["preflight", "early-stop"])
def test_a_rejected_token_is_named_but_not_echoed(tmp_path, preflight):
    """A wrong token: preflight (or, without it, the early stop on 401s) says the token was rejected,
    showing neither the token sent nor the one the server expects."""
    with running_target("--fleet-size", "20", "--token", TOKEN) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            *STORM,
            env={"CERTCTL_TOKEN": WRONG_TOKEN},
            preflight=preflight,
        )
    assert run.code == exitcodes.TARGET_NOT_READY
    assert "the token was rejected" in run.stderr
    outputs = harness_outputs(run, tmp_path / "results")
    assert {
        name: leaks(text, TOKEN, WRONG_TOKEN)
        for name, text in outputs.items()
        if leaks(text, TOKEN, WRONG_TOKEN)
    } == {}


def test_a_token_that_cannot_be_sent_is_a_config_error(tmp_path):
    with running_target("--fleet-size", "20") as target:
        run = run_storm(target.url, tmp_path / "results", *STORM, env={"CERTCTL_TOKEN": "tok-€-7c1e9b24d35f"})
    assert run.code == exitcodes.INVALID_CONFIG
    assert "CERTCTL_TOKEN" in run.stderr and "7c1e9b24d35f" not in run.stdout + run.stderr


PASSWORD = "S3cr%2Fet-Pw-5e0b"  # percent-encoded '/': neither form may show
UNREACHABLE = f"postgresql://certctl:{PASSWORD}@127.0.0.1:1/certctl"
KEY_VALUE = f"host=127.0.0.1 port=1 user=certctl password={PASSWORD} dbname=certctl"


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["-m", "certctl_load.cli", "seed", "--dsn", UNREACHABLE, "--fleet-size", "5"], {}),
        (["-m", "certctl_load.cli", "seed", "--dsn", KEY_VALUE, "--fleet-size", "5"], {}),
        (["-m", "certctl_load.cli", "seed", "--fleet-size", "5"], {"CERTCTL_DATABASE_URL": UNREACHABLE}),
        (["-m", "certctl_load.cli", "unseed", "--dsn", UNREACHABLE], {}),
        (["-m", "certctl_load.target", "--port", "0", "--dsn", UNREACHABLE], {}),
        (["-m", "certctl_load.target", "--port", "0"], {"CERTCTL_DATABASE_URL": UNREACHABLE}),
    ],
    ids=["seed-url", "seed-key-value", "seed-env", "unseed", "target", "target-env"],
)
def test_a_database_password_is_masked_in_every_message(command, env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTCTL_")}
    done = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**environ, **env},
        timeout=60,
        check=False,
    )
    assert done.returncode == exitcodes.HARNESS_ERROR
    assert "cannot connect to" in done.stderr and "***" in done.stderr
    assert leaks(done.stdout + done.stderr, PASSWORD, "S3cr/et-Pw-5e0b") == []
