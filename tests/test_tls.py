"""HTTPS: verified by default, with a private CA through --ca-bundle, skipped only with --insecure."""

from __future__ import annotations

import pytest
from helpers import read_request_log
from storm import heartbeats, run_storm
from target_process import running_target

pytestmark = pytest.mark.e2e

SMALL = ("--fleet-size", "30", "--heartbeat-interval", "2", "--run-time", "4s")


@pytest.mark.parametrize(
    ("how", "expected_code"),
    [("ca-bundle-option", 0), ("ca-bundle-env", 0), ("insecure", 0), ("k6-insecure-env", 0), ("nothing", 2)],
)
def test_https_targets_are_verified_unless_told_otherwise(tmp_path, how, expected_code):
    ca = tmp_path / "ca.pem"
    log_path = tmp_path / "requests.jsonl"
    with running_target(
        "--fleet-size", "30", "--tls", "--tls-ca-out", str(ca), request_log=log_path
    ) as target:
        assert target.url.startswith("https://")
        args, env = list(SMALL), {}
        if how == "ca-bundle-option":
            args += ["--ca-bundle", str(ca)]
        elif how == "ca-bundle-env":
            env["CERTCTL_CA_BUNDLE"] = str(ca)
        elif how == "insecure":
            args.append("--insecure")
        elif how == "k6-insecure-env":
            env["K6_INSECURE_SKIP_TLS_VERIFY"] = "true"
        run = run_storm(target.url, tmp_path / "results", *args, env=env, preflight=True)
    assert run.code == expected_code, run.stderr[-2000:]
    beats = heartbeats(read_request_log(log_path))
    if expected_code == 0:
        assert len(beats) == run.summary()["metrics"]["http_reqs"]["values"]["count"] > 0
    else:
        assert beats == []
        assert "certificate verify failed" in run.stderr and "--ca-bundle" in run.stderr
