"""The target's request log: one JSON line per request, flushed as it goes."""

from __future__ import annotations

import json
import os

from certctl_load.errors import HarnessError

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class RequestLog:
    """Appends ``{"t", "method", "path", "agent", "status", "server_ms", "client"}`` lines to ``path``.

    The file is created (emptied) when the log opens; each line is flushed before the response
    it describes is written, so a client that has its answer can already read the line.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the server's lifetime
        except OSError as error:
            raise HarnessError(f"cannot write the request log {os.fspath(path)}: {error.strerror}") from None

    def write(
        self,
        *,
        arrived: float,
        method: str | None,
        path: str | None,
        agent: str | None,
        status: int,
        server_ms: float,
        client: tuple[str, int],
    ) -> None:
        record = {
            "t": arrived,
            "method": method,
            "path": path,
            "agent": agent,
            "status": status,
            "server_ms": round(server_ms, 3),
            "client": f"{client[0]}:{client[1]}",
        }
        self._file.write(_encode(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
