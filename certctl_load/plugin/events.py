"""Registration on Locust's events at import (the project's locustfile imports this module): the
harness's options, and at ``init`` the harness of the process with its listeners."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import Runner

from certctl_load import exitcodes
from certctl_load.plugin.harness import Harness
from certctl_load.plugin.options import add_options
from certctl_load.plugin.webui import install_web_ui


@events.init_command_line_parser.add_listener
def _add_options(parser: argparse.ArgumentParser, **_: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Environment, runner: Runner, **_: Any) -> None:
    harness = Harness.install(environment, runner)
    if harness is None:  # a local or master process whose configuration is bad: no load at all
        sys.exit(environment.process_exit_code or exitcodes.INVALID_CONFIG)
    if harness.config is not None and not environment.host:
        environment.host = harness.config.host
    if environment.web_ui is not None:
        install_web_ui(harness, environment, environment.web_ui)
    if environment.parsed_options is not None and environment.parsed_options.headless:
        harness.handle_stop_signals()
