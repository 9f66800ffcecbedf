"""certctl agent-fleet heartbeat storm: the Locust entry point (``locust -f``)."""

import certctl_load.plugin.events  # noqa: F401  (registers the harness on Locust's events)
from certctl_load.plugin.shape import StormShape
from certctl_load.plugin.user import CertctlAgent

__all__ = ["CertctlAgent", "StormShape"]
