"""``certctl-load unseed``: remove the load-test fleet from certctl's database.

Agents that a row of another table references are kept and named, one warning line each on
stderr. Exit 0 when every load-test agent was removed or only some were kept; exit 1 when
load-test agents exist but every one of them is referenced, so nothing could be removed.
"""

from __future__ import annotations

import argparse
import sys

from certctl_load.cli.seed import add_database_arguments
from certctl_load.db.dsn import mask_dsn, resolve_dsn
from certctl_load.db.seeding import unseed_fleet
from certctl_load.errors import HarnessError
from certctl_load.exitcodes import OK

HELP = (
    "Delete the load-test agents (ids PREFIX + number) from certctl's agents table; "
    "agents referenced by other tables are kept and named."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_arguments(parser)


def run(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn)
    result = unseed_fleet(dsn, args.id_prefix)
    for agent, table in result.blocked:
        print(f"warning: kept {agent}: referenced by {table}", file=sys.stderr)
    kept = len({agent for agent, _ in result.blocked})
    where = f"(prefix {args.id_prefix}) from DB {mask_dsn(dsn)}"
    if kept and not result.removed:
        raise HarnessError(f"removed no load-test agents {where}: all {kept} are referenced by other tables")
    summary = f"unseeded: removed {result.removed} load-test agents {where}"
    print(summary + (f"; kept {kept} referenced by other tables" if kept else ""))
    return OK
