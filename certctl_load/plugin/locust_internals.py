"""Every use of a Locust internal (not a documented API), in one place; tests/test_locust_internals.py
fails when one of them changes in a Locust upgrade."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Collection, Iterable, Sequence

import gevent
from locust.runners import MasterRunner, Runner, WorkerNode

from certctl_load.runtime.coordinator import WorkerNode as FleetWorker

# What Locust's runners warn when the spawn rate exceeds 100/s; the harness spawns its whole fleet
# at once on purpose, so the warning says nothing a user can act on.
SPAWN_RATE_WARNING = "Your selected spawn rate is very high"
# The Flask endpoint of the web UI's /stats/requests, which the page polls every 2 s.
REQUEST_STATS_ENDPOINT = "locust.request_stats"
# Locust's worker ids are the worker's hostname, this separator and a random hex suffix.
_CLIENT_ID_SEPARATOR = "_"


def offer_in_start_form(parser: argparse.ArgumentParser, dests: Collection[str]) -> None:
    """Show these options in the web UI's start form: Locust shows the actions carrying
    ``include_in_web_ui``, which an argument group's add_argument does not set."""
    for action in parser._actions:
        if action.dest in dests:
            action.include_in_web_ui = True  # type: ignore[attr-defined]


def let_the_harness_judge_run_time(parser: argparse.ArgumentParser) -> None:
    """Locust's ``--run-time`` refuses a negative time span with a usage error of its own; keep
    such a value as its text instead, so the harness refuses it with its one line and exit 104."""
    for action in parser._actions:
        if action.dest == "run_time" and callable(action.type):
            action.type = _lenient(action.type)


def _lenient(parse: Callable[[str], object]) -> Callable[[str], object]:
    def run_time(text: str) -> object:
        try:
            return parse(text)
        except (ValueError, argparse.ArgumentTypeError):
            if text.strip().startswith("-"):
                return text
            raise

    return run_time


class _DropSpawnRateWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(SPAWN_RATE_WARNING)


def quiet_spawn_rate_warning() -> None:
    """Drop Locust's spawn-rate warning (its runners' logger), once."""
    runners_log = logging.getLogger("locust.runners")
    if not any(isinstance(f, _DropSpawnRateWarning) for f in runners_log.filters):
        runners_log.addFilter(_DropSpawnRateWarning())


def user_greenlets(runner: Runner) -> Sequence[gevent.Greenlet]:
    """The greenlets of the users running in this process."""
    return list(runner.user_greenlets)


def set_final_user_counts(runner: Runner, counts: dict[str, int]) -> None:
    """The per-class user counts Locust's HTML report shows for the run."""
    runner.final_user_classes_count = counts


def worker_host(client_id: str) -> str:
    """The host a worker runs on, from its Locust client id."""
    host, separator, _ = client_id.rpartition(_CLIENT_ID_SEPARATOR)
    return host if separator else client_id


def _fleet_worker(runner: MasterRunner, node: WorkerNode) -> FleetWorker:
    return FleetWorker(
        id=node.id,
        index=runner.get_worker_index(node.id),
        host=worker_host(node.id),
        users=node.user_count,
        missing=node.state == "missing",
    )


def fleet_workers(runner: MasterRunner) -> list[FleetWorker]:
    """Every worker the master knows, as the coordinator sees it."""
    nodes: Iterable[WorkerNode] = runner.clients.values()
    return [_fleet_worker(runner, node) for node in nodes]
