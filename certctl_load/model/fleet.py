"""The load-test fleet: agent ids and the values certctl's fleet seed stores for each agent.

Agent numbers ``g`` are 1-based. Everything here mirrors certctl's
``02_agent_fleet.sql`` so that the harness, the seed and the reference target
agree on every agent's row.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ID_PREFIX = "ag-loadtest-"
# The token the harness sends and the reference target accepts when none is given.
DEFAULT_TOKEN = "load-test-token"
SEED_VERSION = "2.1.0"
SEED_STATUS = "Online"
SEED_API_KEY_HASH = "loadtest_no_auth"


def padded_number(g: int) -> str:
    """Agent number zero-padded to 5 digits; numbers of 6 digits or more in full."""
    if g < 1:
        raise ValueError(f"agent numbers start at 1, got {g}")
    return f"{g:05d}"


def agent_id(g: int, prefix: str = DEFAULT_ID_PREFIX) -> str:
    """The id of agent ``g``: ``ag-loadtest-00042`` for 42 with the default prefix."""
    return prefix + padded_number(g)


def agent_os(g: int) -> str:
    """``windows`` when g mod 10 = 0, ``darwin`` when 1, else ``linux``."""
    rest = g % 10
    return "windows" if rest == 0 else "darwin" if rest == 1 else "linux"


def agent_architecture(g: int) -> str:
    """``arm64`` when g mod 5 = 0, else ``amd64``."""
    return "arm64" if g % 5 == 0 else "amd64"


def agent_ip_address(g: int) -> str:
    """``10.42.(g div 256 mod 256).(g mod 256)``."""
    return f"10.42.{(g // 256) % 256}.{g % 256}"


def agent_hostname(g: int) -> str:
    return f"loadtest-{padded_number(g)}.fleet.example.test"


def agent_name(g: int) -> str:
    return f"loadtest-agent-{padded_number(g)}"


@dataclass(frozen=True)
class SeedRow:
    """One agent's row as certctl's fleet seed writes it (timestamps as offsets from now)."""

    id: str
    name: str
    hostname: str
    status: str
    heartbeat_age_seconds: int
    registered_age_days: int
    api_key_hash: str
    os: str
    architecture: str
    ip_address: str
    version: str


def seed_row(g: int, prefix: str = DEFAULT_ID_PREFIX) -> SeedRow:
    """The seed's row for agent ``g``."""
    return SeedRow(
        id=agent_id(g, prefix),
        name=agent_name(g),
        hostname=agent_hostname(g),
        status=SEED_STATUS,
        heartbeat_age_seconds=g % 60,
        registered_age_days=g % 90 + 1,
        api_key_hash=SEED_API_KEY_HASH,
        os=agent_os(g),
        architecture=agent_architecture(g),
        ip_address=agent_ip_address(g),
        version=SEED_VERSION,
    )


def heartbeat_metadata(g: int) -> dict[str, str]:
    """The heartbeat body a real agent ``g`` sends: exactly the seed's stored values."""
    return {
        "version": SEED_VERSION,
        "hostname": agent_hostname(g),
        "os": agent_os(g),
        "architecture": agent_architecture(g),
        "ip_address": agent_ip_address(g),
    }
