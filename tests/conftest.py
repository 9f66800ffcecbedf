"""Shared fixtures. PostgreSQL: ``pg_cluster`` (one throwaway cluster per session),
``pg_database_factory`` (fresh databases on demand), ``pg_dsn`` (a fresh certctl-like database per
test) and ``pg_empty_dsn`` (a fresh database without tables)."""

from __future__ import annotations

# Locust patches the standard library with gevent when it is imported, and the web UI tests
# import it in-process: patch first, before any test module imports ssl (as Locust's docs ask
# with `python -m gevent.monkey -m pytest`), or ssl recurses.
from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
from pgcluster import PgCluster, create_certctl_database, find_bindir, throwaway_cluster  # noqa: E402

CERTCTL_TEMPLATE = "certctl_template"
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running PostgreSQL cluster for the whole session, removed at the end (also on failure).

    Has the template database ``certctl_template``: certctl's ``agents`` table, a
    ``deployment_targets`` table referencing it ON DELETE RESTRICT, and the production agent
    ``ag-prod-1`` that a deployment target references. Skips when PostgreSQL is not installed.
    """
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
    with throwaway_cluster(bindir) as cluster:
        create_certctl_database(cluster, CERTCTL_TEMPLATE)
        yield cluster


@pytest.fixture
def pg_database_factory(pg_cluster: PgCluster) -> Iterator[Callable[..., str]]:
    """``new(template="certctl_template") -> DSN``: a fresh database per call, dropped after the test.
    Pass ``template="template1"`` for one without tables."""
    created: list[str] = []

    def new(template: str = CERTCTL_TEMPLATE) -> str:
        name = f"test_{next(_database_numbers)}"
        created.append(name)
        return pg_cluster.create_database(name, template)

    yield new
    for name in created:
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_dsn(pg_database_factory: Callable[..., str]) -> str:
    """DSN (``postgresql://certctl:PASSWORD@127.0.0.1:PORT/test_N``) of a fresh ``certctl_template`` copy."""
    return pg_database_factory()


@pytest.fixture
def pg_empty_dsn(pg_database_factory: Callable[..., str]) -> str:
    """DSN of a fresh database with no tables at all (certctl-server never started against it)."""
    return pg_database_factory("template1")
