"""Agent ids and seed values: certctl's 02_agent_fleet.sql, agent by agent."""

import pytest

from certctl_load.model import fleet


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1, "ag-loadtest-00001"),
        (5000, "ag-loadtest-05000"),
        (99999, "ag-loadtest-99999"),
        (100000, "ag-loadtest-100000"),
        (1234567, "ag-loadtest-1234567"),
    ],
)
def test_ids_are_padded_to_five_digits_and_never_collide(number, expected):
    assert fleet.agent_id(number) == expected


def test_ids_are_unique_across_the_padding_boundary():
    ids = {fleet.agent_id(g) for g in range(99_990, 100_010)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    ("g", "os", "arch", "ip"),
    [
        (10, "windows", "arm64", "10.42.0.10"),
        (11, "darwin", "amd64", "10.42.0.11"),
        (257, "linux", "amd64", "10.42.1.1"),
        (5000, "windows", "arm64", "10.42.19.136"),
        (65536, "linux", "amd64", "10.42.0.0"),
    ],
)
def test_seed_values_follow_certctls_mix(g, os, arch, ip):
    row = fleet.seed_row(g)
    assert (row.os, row.architecture, row.ip_address) == (os, arch, ip)
    assert row.hostname == f"loadtest-{g:05d}.fleet.example.test"
    assert row.name == f"loadtest-agent-{g:05d}"
    assert row.heartbeat_age_seconds == g % 60
    assert row.registered_age_days == g % 90 + 1


def test_heartbeat_body_carries_exactly_the_seed_values():
    row = fleet.seed_row(257)
    assert fleet.heartbeat_metadata(257) == {
        "version": row.version,
        "hostname": row.hostname,
        "os": row.os,
        "architecture": row.architecture,
        "ip_address": row.ip_address,
    }


def test_agent_numbers_start_at_one():
    with pytest.raises(ValueError):
        fleet.agent_id(0)
