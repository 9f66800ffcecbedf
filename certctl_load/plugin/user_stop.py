"""Stopping a fleet's users from one greenlet, where Locust would spawn one per user.

At the end of a run Locust's ``stop_users`` spawns a greenlet per user to stop it, and all of
them are alive at once: about 8 KB each (a greenlet's C-stack copy and Python frame chunk), so
40 MB at 5,000 agents, the run's peak memory. Killing the users from the stopping greenlet
before Locust gets to them allocates nothing per user; Locust then finds none left to stop.
"""

from __future__ import annotations

import gevent
from locust.runners import Runner

from certctl_load.plugin.locust_internals import set_final_user_counts, user_greenlets


def stop_all_users(runner: Runner) -> dict[str, int] | None:
    """Kill every user greenlet but the caller's and wait until they are gone (``on_stop`` runs
    in each, as under Locust's own forced stop). Returns the per-class user counts Locust would
    have kept as the run's final ones; None when there was no user to stop (a master's users
    run on its workers) or a ``--stop-timeout`` asks for Locust's graceful stop, left to Locust."""
    greenlets = user_greenlets(runner)
    if runner.environment.stop_timeout or not greenlets:
        return None
    counts = dict(runner.user_classes_count)
    current = gevent.getcurrent()
    users = [greenlet for greenlet in greenlets if greenlet is not current]
    for greenlet in users:
        greenlet.kill(block=False)
    gevent.joinall(users)
    return counts


def restore_final_counts(runner: Runner, counts: dict[str, int] | None) -> None:
    """Put back the user counts Locust records when a run stops (its HTML report shows them):
    Locust reads them after ``test_stopping``, when ``stop_all_users`` has left none running."""
    if counts:
        set_final_user_counts(runner, counts)
