"""certctl-load: a Locust harness for certctl's agent-fleet heartbeat storm."""

__version__ = "0.1.0"
