"""Every Locust internal the harness depends on (certctl_load/plugin/locust_internals.py), checked on
the installed Locust: a failure here means a Locust upgrade changed one of them."""

from __future__ import annotations

import inspect
import logging
import socket

import gevent
import pytest
from helpers import free_port
from locust import User, constant, task
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.runners import STATE_MISSING, WorkerNode, WorkerRunner
from locust.web import WebUI

from certctl_load.plugin import locust_internals
from certctl_load.plugin.options import add_options


class Idle(User):
    wait_time = constant(60)

    @task
    def nothing(self) -> None:
        pass


def test_the_start_form_shows_the_actions_marked_include_in_web_ui():
    parser = get_parser()
    add_options(parser)
    assert "fleet_size" not in parser.args_included_in_web_ui
    locust_internals.offer_in_start_form(parser, {"fleet_size"})
    assert "fleet_size" in parser.args_included_in_web_ui


@pytest.mark.parametrize(("text", "value"), [("20s", 20), ("0", 0), ("-5s", "-5s")])
def test_run_time_keeps_a_negative_span_as_text_for_the_harness_to_refuse(text, value):
    parser = get_parser()
    add_options(parser)
    assert parser.parse_args([f"--run-time={text}"]).run_time == value


def test_run_time_still_refuses_what_is_not_a_time_span():
    parser = get_parser()
    add_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--run-time=soon"])


def test_the_runner_keeps_its_users_greenlets_and_the_final_counts():
    environment = Environment(user_classes=[Idle])
    runner = environment.create_local_runner()
    try:
        runner.start(5, spawn_rate=100)
        runner.spawning_greenlet.join(timeout=10)
        greenlets = locust_internals.user_greenlets(runner)
        assert len(greenlets) == 5 and all(isinstance(g, gevent.Greenlet) for g in greenlets)
        assert isinstance(runner.final_user_classes_count, dict)
        locust_internals.set_final_user_counts(runner, {"Idle": 5})
        assert runner.final_user_classes_count == {"Idle": 5}
    finally:
        runner.quit()


def test_the_web_uis_stats_poll_has_the_endpoint_name_the_tab_hooks(monkeypatch):
    monkeypatch.setattr("sys.argv", ["locust"])  # the web UI reads the command line for its form
    environment = Environment(user_classes=[Idle])
    environment.create_local_runner()
    web_ui = WebUI(environment, "127.0.0.1", free_port())
    endpoints = {rule.rule: rule.endpoint for rule in web_ui.app.url_map.iter_rules()}
    assert endpoints["/stats/requests"] == locust_internals.REQUEST_STATS_ENDPOINT


def test_a_workers_client_id_starts_with_its_hostname():
    source = inspect.getsource(WorkerRunner.__init__)
    assert 'self.client_id = socket.gethostname() + "_" + uuid4().hex' in source
    assert locust_internals.worker_host(f"{socket.gethostname()}_0a1b2c") == socket.gethostname()
    assert locust_internals.worker_host("my_host_0a1b2c") == "my_host"


def test_the_master_knows_its_workers_index_users_and_whether_they_are_missing():
    environment = Environment(user_classes=[Idle])
    master = environment.create_master_runner("127.0.0.1", free_port())
    try:
        first, second = WorkerNode("alpha_01"), WorkerNode("beta_02")
        first.user_classes_count = {"Idle": 3}
        second.state = STATE_MISSING
        master.clients["alpha_01"], master.clients["beta_02"] = first, second
        workers = {worker.id: worker for worker in locust_internals.fleet_workers(master)}
        assert (workers["alpha_01"].index, workers["alpha_01"].users, workers["alpha_01"].missing) == (
            0,
            3,
            False,
        )
        assert (workers["beta_02"].index, workers["beta_02"].host, workers["beta_02"].missing) == (
            1,
            "beta",
            True,
        )
    finally:
        master.quit()


def test_the_spawn_rate_warning_the_harness_drops_is_still_the_one_locust_logs(caplog):
    from locust.runners import LocalRunner, MasterRunner

    assert locust_internals.SPAWN_RATE_WARNING in inspect.getsource(LocalRunner.start)
    assert locust_internals.SPAWN_RATE_WARNING in inspect.getsource(MasterRunner.start)
    locust_internals.quiet_spawn_rate_warning()
    logging.getLogger("locust.runners").warning(locust_internals.SPAWN_RATE_WARNING + " (>100)")
    logging.getLogger("locust.runners").warning("another warning")
    assert [record.getMessage() for record in caplog.records] == ["another warning"]
