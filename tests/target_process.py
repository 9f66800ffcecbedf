"""``running_target``: the reference target as a subprocess on a free loopback port, for any test.

with running_target("--fleet-size", "10", request_log=tmp_path / "requests.jsonl") as target:
    requests.get(f"{target.url}/health")
    target.port, target.process, target.stderr(), target.stop()  # stop() returns the exit code
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager

from certctl_load.target.process import RunningTarget, start_target


def running_target(
    *args: str,
    request_log: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> AbstractContextManager[RunningTarget]:
    """``python -m certctl_load.target --port 0 *args``, stopped (SIGTERM) when the block ends."""
    return start_target(args, request_log=request_log, env=env)
