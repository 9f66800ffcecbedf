"""A bench-only trace of every request, one line each, for judging the harness against the wire.

Set ``CERTCTL_LOAD_REQUEST_TRACE=PATH`` (read by ``model.config``) and each process appends to
``PATH.<pid>`` the lines ``<agent index> <slot time> <send time> <end time> <duration ms> <status>``
(times as Unix seconds). Off by default; the JSON output of a later issue replaces it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO


class RequestTrace:
    """This process's trace file."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(f"{path.name}.{os.getpid()}")
        self._file: TextIO = self.path.open("a", encoding="ascii")

    def write(
        self, agent: int, slot_at: float, sent_at: float, ended_at: float, duration_s: float, status: int
    ) -> None:
        self._file.write(
            f"{agent} {slot_at:.6f} {sent_at:.6f} {ended_at:.6f} {duration_s * 1000.0:.3f} {status}\n"
        )

    def close(self) -> None:
        self._file.close()
