"""``certctl-load seed``: upsert the load-test fleet into certctl's database."""

from __future__ import annotations

import argparse

from certctl_load.db.dsn import ENV_VAR, mask_dsn, resolve_dsn
from certctl_load.db.seeding import seed_fleet
from certctl_load.exitcodes import OK
from certctl_load.model.fleet import DEFAULT_ID_PREFIX
from certctl_load.model.values import for_argparse, whole_number

HELP = (
    "Seed certctl's agents table with the load-test fleet (the rows of seed/02_agent_fleet.sql). "
    "Idempotent: re-seeding returns every load-test agent to Online, unretired; never deletes."
)
DEFAULT_FLEET_SIZE = 5000


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """--dsn and --id-prefix, shared with ``unseed``."""
    parser.add_argument("--dsn", help=f"PostgreSQL DSN of certctl's database (default: ${ENV_VAR})")
    parser.add_argument(
        "--id-prefix", default=DEFAULT_ID_PREFIX, help=f"agent id prefix (default: {DEFAULT_ID_PREFIX})"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_arguments(parser)
    parser.add_argument(
        "--fleet-size",
        type=for_argparse(whole_number),
        default=DEFAULT_FLEET_SIZE,
        help=f"agents to seed, numbered from 1 (default: {DEFAULT_FLEET_SIZE})",
    )


def run(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn)
    present = seed_fleet(dsn, args.fleet_size, args.id_prefix)
    line = f"seeded: {args.fleet_size} load-test agents (prefix {args.id_prefix}) in DB {mask_dsn(dsn)}"
    if present != args.fleet_size:
        line += f"; {present} rows carry the prefix (rows of an earlier, larger seed are kept)"
    print(line)
    return OK
