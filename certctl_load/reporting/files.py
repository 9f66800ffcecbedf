"""Writing result files atomically: a crash never leaves half a file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from certctl_load.errors import ConfigError


def ensure_writable_dir(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be written there (before any load)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-", delete=True):
            pass
    except OSError as error:
        raise ConfigError(
            f"results directory {str(directory)!r} is not writable: {error.strerror or error}"
        ) from None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
