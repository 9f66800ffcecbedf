"""The seed SQL files (``seed/*.sql``), the one source of certctl's agents schema and the fleet upsert.

Read by the SQLite fleet and by ``certctl_load.db.seeding``; this module loads no database driver.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

AGENTS_SCHEMA = "00_agents_schema.sql"
# Fills agents from the staging table loadtest_fleet; 02_agent_fleet.sql includes it.
FLEET_UPSERT = "agent_fleet_upsert.sql"


def read_seed_sql(name: str) -> str:
    """The text of ``seed/<name>``, from the checkout or the installed package."""
    checkout = Path(__file__).resolve().parents[2] / "seed" / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    return resources.files("certctl_load.seed_sql").joinpath(name).read_text(encoding="utf-8")
