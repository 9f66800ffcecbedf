"""The scenario model: scenario files, an agent's calls, the resolved run configuration, the fleet and
the schedule."""
