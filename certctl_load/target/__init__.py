"""The reference target: certctl's agent heartbeat contract, served for tests and demos."""
