"""certctl agent-fleet heartbeat storm: ``locust -f locustfile.py`` (see README.md)."""

from certctl_load.locustfile import CertctlAgent, StormShape

__all__ = ["CertctlAgent", "StormShape"]
