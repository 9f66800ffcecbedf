"""Small helpers every test may use: a free loopback port, the reference target's request log, and
polling with a deadline. Each is written here once; import it rather than writing another."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def read_request_log(path: str | os.PathLike[str]) -> list[dict]:
    """Every complete line of the target's request log. Read while the target appends, the text
    may end inside a line (a read can see a write that crosses a page boundary half done)."""
    with open(path, encoding="utf-8") as log:
        text = log.read()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]


def poll_until(
    condition: Callable[[], T],
    timeout_s: float,
    interval_s: float = 0.05,
    message: str | Callable[[], str] = "condition not met in time",
) -> T:
    """``condition()``'s first truthy value, checked every ``interval_s`` until ``timeout_s`` have passed;
    then AssertionError with ``message`` (a string, or a callable for one built at the timeout).
    An exception from ``condition`` (an assertion that a process still runs, say) ends the wait."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(interval_s)


class FakeClock:
    """A clock that moves only when told (``clock.now = ...``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def in_process_target(fleet_size: int, token: str) -> Iterator[str]:
    """The reference target (SQLite fleet) served from this process's greenlets on a free loopback
    port, for tests that must not start a process; yields its URL."""
    from certctl_load.target.app import ApiKeys, CertctlApp
    from certctl_load.target.server import HttpServer
    from certctl_load.target.sqlite_store import SqliteAgentStore

    server = HttpServer(
        CertctlApp(SqliteAgentStore(fleet_size=fleet_size), ApiKeys([token])), host=HOST, port=0
    )
    host, port = server.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop(1.0)
