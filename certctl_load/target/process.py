"""The reference target as a child process on a free port: started, awaited, stopped.

``start_target`` runs ``python -m certctl_load.target --port 0 ...``, waits for its one
``listening on`` line and yields where it listens; on leaving, the target gets SIGTERM
(and SIGKILL if it has not exited after ``STOP_TIMEOUT_S``).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"^certctl-load target listening on (?P<url>https?://\S+)$")


@dataclass
class RunningTarget:
    """A started target: its base URL and port, the process, and the moment it became ready."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    banner: str  # the line it printed
    ready_at: float  # time.monotonic() when the banner was read
    _stderr: IO[bytes]

    def stderr(self) -> str:
        """Everything the target has written to stderr so far."""
        return os.pread(self._stderr.fileno(), 1 << 24, 0).decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGKILL after STOP_TIMEOUT_S) and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _read_banner(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The first stdout line of ``process``; RuntimeError when it exits or times out first."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"the target printed no listening line within {timeout_s:g} s")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the target exited with code {process.wait()} before listening")
            data += chunk
    return data.split(b"\n", 1)[0].decode()


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without CERTCTL_* settings (the target's defaults apply), plus
    ``extra``; this package importable whatever the working directory."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_PARENT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@contextmanager
def start_target(
    args: Sequence[str] = (),
    *,
    request_log: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[RunningTarget]:
    """Run the target with ``args`` (command-line options) on a free loopback port until the block ends.

    ``request_log`` adds ``--request-log``; ``env`` adds environment variables (CERTCTL_* ones of
    this process are not passed on). The target's stderr goes to a temporary file
    (``RunningTarget.stderr()``); a target that fails to start raises RuntimeError with it.
    """
    command = [sys.executable, "-m", "certctl_load.target", "--port", "0", *args]
    if request_log is not None:
        command += ["--request-log", os.fspath(request_log)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=_environment(env)
        )
        target: RunningTarget | None = None
        try:
            try:
                banner = _read_banner(process, startup_timeout_s)
            except RuntimeError as error:
                output = os.pread(stderr.fileno(), 1 << 16, 0).decode(errors="replace").strip()
                raise RuntimeError(f"{error}; its stderr:\n{output}") from None
            match = _LISTENING.match(banner)
            if match is None:
                raise RuntimeError(f"unexpected first line from the target: {banner!r}")
            url = match["url"]
            target = RunningTarget(url, urlsplit(url).port or 0, process, banner, time.monotonic(), stderr)
            yield target
        finally:
            if target is not None:
                target.stop()
            elif process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
