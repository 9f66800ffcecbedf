"""certctl agent-fleet heartbeat storm: the Locust entry point (``locust -f``)."""

from certctl_load.plugin.events import StormShape
from certctl_load.plugin.user import CertctlAgent

__all__ = ["CertctlAgent", "StormShape"]
