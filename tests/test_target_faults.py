"""The reference target's calibration and faults: latency, slow and failing heartbeats, the stall
window, the rate limiter; judged by real responses and the target's own request log."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import pytest
import requests
from helpers import poll_until, read_request_log
from hypothesis import given
from hypothesis import strategies as st
from target_process import running_target

from certctl_load.model import fleet
from certctl_load.target.faults import EvenSpread

AUTH = {"Authorization": "Bearer load-test-token"}


def beat(session: requests.Session, url: str, g: int, **kwargs) -> requests.Response:
    return session.post(
        f"{url}/api/v1/agents/{fleet.agent_id(g)}/heartbeat",
        json=fleet.heartbeat_metadata(g),
        headers=AUTH,
        timeout=10,
        **kwargs,
    )


@given(
    st.fractions(min_value=0, max_value=1, max_denominator=1000) | st.sampled_from([Fraction("0.29")]),
    st.integers(min_value=0, max_value=2000),
)
def test_an_even_spread_picks_exactly_floor_n_f_of_the_first_n(fraction, n):
    spread = EvenSpread(fraction)
    picks = [spread.pick() for _ in range(n)]
    assert sum(picks) == n * fraction.numerator // fraction.denominator
    positions = [i for i, picked in enumerate(picks) if picked]
    if fraction and len(positions) > 1:  # evenly spread: gaps differ by at most one
        gaps = {b - a for a, b in zip(positions, positions[1:], strict=False)}
        assert max(gaps) - min(gaps) <= 1


@pytest.mark.e2e
def test_slow_heartbeats_are_exactly_the_fraction_asked_for_and_take_slow_ms(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    args = ("--fleet-size", "100", "--latency-ms", "10", "--slow-fraction", "0.1", "--slow-ms", "60")
    with running_target(*args, request_log=log_path) as target, requests.Session() as session:
        client_ms = []
        for g in range(1, 101):
            response = beat(session, target.url, g)
            assert response.status_code == 200
            client_ms.append(response.elapsed.total_seconds() * 1000)
        assert session.get(f"{target.url}/health", timeout=10).status_code == 200  # not a heartbeat: no delay
        log = read_request_log(log_path)
    beats = [record for record in log if record["path"].endswith("/heartbeat")]
    assert [record["agent"] for record in beats] == [fleet.agent_id(g) for g in range(1, 101)]
    slow = [n for n, record in enumerate(beats) if record["server_ms"] >= 50]
    assert slow == list(range(9, 100, 10))  # request n is slow when floor((n+1)/10) > floor(n/10)
    for n, record in enumerate(beats):
        expected = 60 if n in slow else 10
        assert expected <= record["server_ms"] < expected + 8, (n, record)  # replaced, not added
        assert record["server_ms"] <= client_ms[n]
    assert log[-1]["path"] == "/health" and log[-1]["server_ms"] < 5


@pytest.mark.e2e
def test_failing_heartbeats_are_evenly_spread_500s_that_write_nothing(tmp_path):
    with (
        running_target("--fleet-size", "20", "--error-fraction", "0.25") as target,
        requests.Session() as session,
    ):
        before = {
            g: session.get(f"{target.url}/api/v1/agents/{fleet.agent_id(g)}", headers=AUTH).json()
            for g in (4, 5)
        }
        responses = [beat(session, target.url, g) for g in range(1, 21)]
        after = {
            g: session.get(f"{target.url}/api/v1/agents/{fleet.agent_id(g)}", headers=AUTH).json()
            for g in (4, 5)
        }
    failed = [n for n, response in enumerate(responses) if response.status_code == 500]
    assert failed == [3, 7, 11, 15, 19]
    assert all(response.status_code == 200 for n, response in enumerate(responses) if n not in failed)
    body = responses[3].json()
    assert body == {
        "error": "Internal Server Error",
        "message": "Failed to record heartbeat",
        "request_id": responses[3].headers["X-Request-ID"],
    }
    assert after[4] == before[4]  # agent 4 got the 4th heartbeat (n = 3): it failed
    assert after[5]["last_heartbeat_at"] > before[5]["last_heartbeat_at"]


@pytest.mark.e2e
def test_the_stall_window_holds_every_response_until_it_ends(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target(
        "--fleet-size", "5", "--stall-at", "1.5", "--stall-for", "1", request_log=log_path
    ) as target:
        window_start, window_end = target.ready_at + 1.5, target.ready_at + 2.5
        assert requests.get(f"{target.url}/health", timeout=10).status_code == 200
        assert time.monotonic() < window_start, "too slow to test the time before the window"
        time.sleep(window_start + 0.1 - time.monotonic())  # the window is a point in time: wait for it
        with ThreadPoolExecutor(3) as pool:
            held = list(
                pool.map(
                    lambda path: (
                        requests.get(f"{target.url}{path}", headers=AUTH, timeout=10),
                        time.monotonic(),
                    ),
                    ["/health", "/ready", f"/api/v1/agents/{fleet.agent_id(1)}"],
                )
            )
        for response, finished in held:
            assert response.status_code == 200
            assert window_end - 0.1 <= finished < window_end + 0.5  # ready_at is read just after the start
        started = time.monotonic()
        assert requests.get(f"{target.url}/health", timeout=10).status_code == 200
        assert time.monotonic() - started < 0.5
        log = read_request_log(log_path)
    assert [record["server_ms"] > 700 for record in log] == [False, True, True, True, False]


@pytest.mark.e2e
def test_the_rate_limiter_answers_429_before_auth(tmp_path):
    with running_target("--fleet-size", "5", "--rate-limit", "1", "--rate-burst", "3") as target:
        url = target.url
        statuses = [requests.get(f"{url}/health", timeout=10).status_code for _ in range(3)]
        limited = requests.get(f"{url}/health", timeout=10)
        unauthenticated = requests.post(f"{url}/api/v1/agents/{fleet.agent_id(1)}/heartbeat", timeout=10)
        answers: list[requests.Response] = []

        def refilled() -> bool:
            answers.append(requests.get(f"{url}/health", timeout=10))
            return answers[-1].status_code != 429

        poll_until(refilled, 5, message="the bucket never refilled")
        recovered = answers[-1]
    assert statuses == [200, 200, 200]
    for response in (limited, unauthenticated):
        assert response.status_code == 429
        assert response.text == '{"error":"Rate limit exceeded"}\n'
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Retry-After"] == "1"
        assert response.headers["X-Request-ID"]
    assert recovered.status_code == 200


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slow-fraction", "0.1"], "--slow-fraction and --slow-ms go together"),
        (["--stall-for", "2"], "--stall-at and --stall-for go together"),
        (["--rate-burst", "5"], "--rate-burst needs --rate-limit"),
        (["--fleet-size", "3", "--retired", "4"], "--retired 4 is more than the fleet size 3"),
    ],
)
def test_inconsistent_options_are_config_errors(args, message):
    with pytest.raises(RuntimeError, match="exited with code 104") as failure, running_target(*args):
        pass
    assert message in str(failure.value)
