"""The reference target's ``--capacity R``: heartbeats served one at a time, heartbeat n at
max(its arrival, the previous one's service) + 1/R, first in first out, no burst, the requests of
clients that have gone dropped from the queue. Known arrival patterns against a real target; the
bounds are loose (a noisy 2-vCPU machine), the model's figures are not."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from target_process import running_target

from certctl_load.model import fleet

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": "Bearer load-test-token", "Content-Type": "application/json"}


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.connect()
    return connection


def send_beat(connection: http.client.HTTPConnection, g: int) -> float:
    """Send agent g's heartbeat; returns when it was sent (time.monotonic())."""
    body = json.dumps(fleet.heartbeat_metadata(g))
    connection.request("POST", f"/api/v1/agents/{fleet.agent_id(g)}/heartbeat", body, HEADERS)
    return time.monotonic()


def answer_after(connection: http.client.HTTPConnection, sent: float) -> tuple[int, float]:
    """The status of the response to the request sent at ``sent``, and its latency in ms."""
    response = connection.getresponse()
    response.read()
    return response.status, (time.monotonic() - sent) * 1000.0


def test_a_burst_is_served_one_after_another_at_the_capacity_with_no_burst_allowance():
    with running_target("--fleet-size", "20", "--capacity", "50") as target:  # one heartbeat per 20 ms
        connections = [connect(target.url) for _ in range(20)]
        sent = [send_beat(connection, g) for g, connection in enumerate(connections, start=1)]
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(answer_after, connections, sent))
        for connection in connections:
            connection.close()
    assert {status for status, _ in answers} == {200}  # queued, never refused (not --rate-limit)
    latencies = sorted(latency for _, latency in answers)
    for k, latency in enumerate(latencies, start=1):
        assert 20 * k - 3 <= latency <= 20 * k + 100, (k, latencies)


def test_below_the_capacity_each_heartbeat_takes_one_service_time():
    with running_target("--fleet-size", "10", "--capacity", "50") as target:
        connection = connect(target.url)
        latencies = []
        for g in range(1, 11):
            status, latency = answer_after(connection, send_beat(connection, g))
            assert status == 200
            latencies.append(latency)
            time.sleep(0.03)  # the arrival pattern under test: one heartbeat every ~50 ms
        connection.close()
    assert all(19 <= latency <= 80 for latency in latencies), latencies


def test_the_heartbeats_of_clients_that_have_gone_take_no_service_time():
    with running_target("--fleet-size", "7", "--capacity", "10") as target:  # one heartbeat per 100 ms
        first = connect(target.url)
        first_sent = send_beat(first, 1)
        for g in range(2, 7):  # five clients queue behind the first and leave at once
            gone = connect(target.url)
            send_beat(gone, g)
            gone.close()
        last = connect(target.url)
        last_sent = send_beat(last, 7)
        with ThreadPoolExecutor(2) as pool:
            first_answer, last_answer = pool.map(answer_after, [first, last], [first_sent, last_sent])
        first.close()
        last.close()
    assert first_answer[0] == last_answer[0] == 200
    assert 97 <= first_answer[1] <= 250, first_answer
    # Served right after the first (100 ms later), not after the five gone ones (600 ms later).
    assert 150 <= last_answer[1] + (last_sent - first_sent) * 1000 <= 420, last_answer
