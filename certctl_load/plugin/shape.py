"""The fleet-sized load shape: the whole fleet spawns at once; the harness decides when it ends."""

from __future__ import annotations

from locust import LoadTestShape

from certctl_load.plugin.harness import harness_for


class StormShape(LoadTestShape):
    """The whole fleet spawns at once; the run ends once the schedule is over and drained, or
    early when the target plainly cannot take the storm."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        runner = self.runner
        assert runner is not None, "Locust ticks a shape only once it has a runner"
        fleet_size = harness_for(runner.environment).shape_tick(runner.user_count)
        return None if fleet_size is None else (fleet_size, float(fleet_size))
