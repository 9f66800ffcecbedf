"""A server bound by a resource it serves one request at a time (a database, say), as the
``--capacity R`` model: heartbeat n is released at max(its arrival, the previous one's release)
+ 1/R, first in first out, with no burst, so past R heartbeats per second the queue, and the
latency, grow without bound. A heartbeat whose client has gone by the time it reaches the head
of the queue is dropped from it and takes no service time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
from gevent.event import Event

from certctl_load.target.faults import sleep_until


@dataclass(slots=True)
class _Waiting:
    arrived: float  # time.perf_counter()
    client_gone: Callable[[], bool]
    released: Event = field(default_factory=Event)
    served: bool = False


class CapacityQueue:
    """Releases waiting heartbeats one at a time at ``rate`` per second at most."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("a capacity needs a positive rate")
        self._service_s = 1.0 / rate
        self._queue: deque[_Waiting] = deque()
        self._previous = float("-inf")  # when the last heartbeat served was released
        self._server: gevent.Greenlet | None = None

    def wait(self, arrived: float, client_gone: Callable[[], bool]) -> bool:
        """Block until this heartbeat (arrived at ``arrived``, ``time.perf_counter()``) is served;
        False when it was dropped because ``client_gone()`` said so first."""
        waiting = _Waiting(arrived, client_gone)
        self._queue.append(waiting)
        if self._server is None:
            self._server = gevent.spawn(self._serve)
        waiting.released.wait()
        return waiting.served

    def _serve(self) -> None:
        try:
            while self._queue:
                waiting = self._queue[0]
                if not waiting.client_gone():
                    release = max(waiting.arrived, self._previous) + self._service_s
                    if release > time.perf_counter():
                        sleep_until(release)
                    self._previous = release
                    waiting.served = True
                self._queue.popleft()
                waiting.released.set()
        finally:
            self._server = None
