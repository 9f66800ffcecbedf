"""The harness's options on Locust's own parser: ``locust --help``, the web UI form, ``locust.conf``."""

from __future__ import annotations

import argparse

from certctl_load.plugin.locust_internals import let_the_harness_judge_run_time


def add_options(parser: argparse.ArgumentParser) -> None:
    """Register the harness's options (Locust's ``init_command_line_parser`` hook)."""
    let_the_harness_judge_run_time(parser)
    group = parser.add_argument_group("certctl-load", "certctl agent-fleet heartbeat storm")
    group.add_argument(
        "--scenario",
        metavar="PATH",
        env_var="LOCUST_SCENARIO",
        default=None,
        help="Scenario YAML file (default: the agent_storm scenario shipped with certctl-load)",
    )
    group.add_argument(
        "--fleet-size",
        metavar="N",
        env_var="LOCUST_FLEET_SIZE",
        default=None,
        help="Agents in the fleet, one Locust user each (default: K6_AGENT_FLEET, else the scenario's)",
    )
    group.add_argument(
        "--heartbeat-interval",
        metavar="DURATION",
        env_var="LOCUST_HEARTBEAT_INTERVAL",
        default=None,
        help="Seconds between one agent's heartbeats, e.g. 30s (default: fleet / K6_AGENT_RATE, "
        "else the scenario's)",
    )
    group.add_argument(
        "--warmup",
        metavar="DURATION",
        env_var="LOCUST_WARMUP",
        default=None,
        help="The first DURATION of the schedule warms up and is not judged: beats due before "
        "t0 + DURATION count nowhere in the summary, which reports the hold's sent and completed "
        "requests (default 0: every beat is judged)",
    )
    group.add_argument(
        "--results-dir",
        metavar="DIR",
        env_var="LOCUST_RESULTS_DIR",
        default=None,
        help="Where summaries are written (default: results/ in the current directory)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        env_var="LOCUST_INSECURE",
        default=False,
        help="Skip TLS certificate verification (also K6_INSECURE_SKIP_TLS_VERIFY=true)",
    )
    group.add_argument(
        "--ca-bundle",
        metavar="PATH",
        env_var="LOCUST_CA_BUNDLE",
        default=None,
        help="CA certificates that verify the target's TLS certificate (also CERTCTL_CA_BUNDLE)",
    )
    group.add_argument(
        "--source-addresses",
        metavar="IP[,IP...]",
        env_var="LOCUST_SOURCE_ADDRESSES",
        default=None,
        help="Local addresses agents connect from, dealt round-robin (past ~28,000 connections per "
        "source address, e.g. 127.0.0.1,127.0.0.2 against a loopback target)",
    )
    group.add_argument(
        "--out",
        metavar="json=FILE",
        env_var="LOCUST_OUT",
        default=None,
        help="Also write every sample as k6's --out json does: one JSON line per sample in FILE, "
        "gzipped when it ends in .gz (also K6_OUT)",
    )
    group.add_argument(
        "--skip-preflight",
        action="store_true",
        env_var="LOCUST_SKIP_PREFLIGHT",
        default=False,
        help="Do not check the target (health, token, fleet) before the storm",
    )
