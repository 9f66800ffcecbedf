"""certctl agent-fleet heartbeat storm: the Locust entry point (``locust -f``)."""

from certctl_load.agent import CertctlAgent
from certctl_load.locust_plugin import StormShape

__all__ = ["CertctlAgent", "StormShape"]
