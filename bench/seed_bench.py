"""How long seeding.seed_fleet takes: 5,000 and 100,000 agents, into an empty fleet and again over it.

Runs a throwaway PostgreSQL cluster with stock durability (tests/pgcluster.py), one fresh
certctl-like database per fleet size:  python bench/seed_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from pgcluster import DURABLE_SETTINGS, create_certctl_database, find_bindir, throwaway_cluster  # noqa: E402

from certctl_load.db.seeding import seed_fleet  # noqa: E402

FLEET_SIZES = (5_000, 100_000)


def timed_seed(dsn: str, fleet_size: int) -> float:
    start = time.perf_counter()
    present = seed_fleet(dsn, fleet_size)
    elapsed = time.perf_counter() - start
    if present != fleet_size:
        raise SystemExit(f"expected {fleet_size} load-test agents, found {present}")
    return elapsed


def main() -> int:
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL server binaries not found", file=sys.stderr)
        return 1
    print(f"{'rows':>8}  {'first seed s':>12}  {'re-seed s':>9}")
    with throwaway_cluster(bindir, DURABLE_SETTINGS) as cluster:
        for fleet_size in FLEET_SIZES:
            dsn = create_certctl_database(cluster, f"bench_{fleet_size}")
            first, again = timed_seed(dsn, fleet_size), timed_seed(dsn, fleet_size)
            print(f"{fleet_size:>8}  {first:>12.2f}  {again:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
