"""Shared fixtures. PostgreSQL: ``pg_cluster`` (one throwaway cluster per session),
``pg_database_factory`` (fresh databases on demand), ``pg_dsn`` (a fresh certctl-like database per
test) and ``pg_empty_dsn`` (a fresh database without tables).

Two speeds: a test that starts a process (``locust``, the reference target, psql, openssl, ...),
uses PostgreSQL or a browser is marked ``@pytest.mark.e2e``; ``pytest -m "not e2e"`` runs the rest in
seconds. An unmarked test that spawns a process, or asks for a PostgreSQL fixture, fails saying so.
"""

from __future__ import annotations

# Locust patches the standard library with gevent when it is imported, and the web UI tests
# import it in-process: patch first, before any test module imports ssl (as Locust's docs ask
# with `python -m gevent.monkey -m pytest`), or ssl recurses.
from gevent import monkey

monkey.patch_all()

import _posixsubprocess  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import pytest  # noqa: E402
from pgcluster import PgCluster, create_certctl_database, find_bindir, throwaway_cluster  # noqa: E402

CERTCTL_TEMPLATE = "certctl_template"
_database_numbers = itertools.count(1)

E2E = "e2e"
# Every way a test process starts another: both Popen classes (gevent's patched one is no subclass of
# the standard library's), the os calls beneath the rest (os.popen, os.spawn*, multiprocessing's
# fork) and the primitive that multiprocessing's spawn and forkserver call directly.
_POPEN_CLASSES = tuple(dict.fromkeys((subprocess.Popen, monkey.get_original("subprocess", "Popen"))))
_OS_SPAWNS = tuple(
    name for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system") if hasattr(os, name)
)

_current: list[pytest.Item] = []  # the test being set up or run
_refusals: list[str] = []  # every refusal (a process started, a PostgreSQL fixture), in order


def _unmarked() -> pytest.Item | None:
    """The test being set up or run, unless it is marked e2e."""
    if _current and _current[-1].get_closest_marker(E2E) is None:
        return _current[-1]
    return None


def _mark_it(item: pytest.Item, what: str) -> str:
    return f"test {item.nodeid} {what}: mark it @pytest.mark.{E2E}"


def _refuse(how: str) -> Callable[..., None]:
    """A stand-in for ``how`` that fails the test instead of starting a process."""

    def spawn(*args: object, **kwargs: object) -> None:
        item = _unmarked()
        _refusals.append(_mark_it(item, f"spawns a process ({how})") if item else f"{how} refused")
        pytest.fail(_refusals[-1])

    return spawn


def _require_e2e(what: str) -> None:
    """Fail the test being set up or run, unless it is marked e2e."""
    item = _unmarked()
    if item is not None:
        _refusals.append(_mark_it(item, what))
        pytest.fail(_refusals[-1], pytrace=False)


@contextmanager
def _running(item: pytest.Item) -> Iterator[None]:
    """While an unmarked test is set up or run, starting a process fails it, even if the code
    under test catches the failure (the test then fails when the phase ends)."""
    _current.append(item)
    try:
        if _unmarked() is None:
            yield
            return
        before = len(_refusals)
        with pytest.MonkeyPatch.context() as patch:
            for popen in _POPEN_CLASSES:
                patch.setattr(popen, "__init__", _refuse(f"{popen.__module__}.Popen"))
            for name in _OS_SPAWNS:
                patch.setattr(os, name, _refuse(f"os.{name}"))
            patch.setattr(_posixsubprocess, "fork_exec", _refuse("_posixsubprocess.fork_exec"))
            yield
        if len(_refusals) > before:
            pytest.fail(_refusals[before])
    finally:
        _current.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _running(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _running(item):
        return (yield)


class _FixtureGuard:
    """A fixture that failed only because an unmarked test may not start a process or use
    PostgreSQL forgets the failure: pytest would otherwise hand it, cached, to the marked tests after
    it in its scope. (A plugin, not a conftest hook: pytest asks a conftest only about fixtures of
    its directory's nodes, and a session-scoped fixture such as pg_cluster belongs to the session.)"""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> Iterator[object]:
        before = len(_refusals)
        try:
            return (yield)
        except BaseException:
            if len(_refusals) > before:
                fixturedef.finish(request)
            raise


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_FixtureGuard(), "certctl-load-e2e-fixture-guard")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running PostgreSQL cluster for the whole session, removed at the end (also on failure).

    Has the template database ``certctl_template``: certctl's ``agents`` table, a
    ``deployment_targets`` table referencing it ON DELETE RESTRICT, and the production agent
    ``ag-prod-1`` that a deployment target references. Skips when PostgreSQL is not installed.
    """
    _require_e2e("uses PostgreSQL (pg_cluster)")
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
    _require_e2e("uses PostgreSQL (pg_database_factory)")
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
