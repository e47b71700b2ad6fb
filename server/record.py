"""The record of received calls: one JSON object per request that reached the app.

With a path, lines are appended to a JSON-lines file opened with O_APPEND, each line in a single
``write`` call, so concurrent writers (even other processes) never interleave or truncate lines and a
restart never truncates the file. Without a path, calls are kept in memory for the server's lifetime.
A write that fails (disk full, read-only file) is logged and counted, never silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from mtls_lab.errors import LabError

logger = logging.getLogger("mtls_lab.server")

TAIL_CHUNK = 64 * 1024


class CallRecord:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.write_errors = 0
        self._memory: list[str] = []
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise LabError(
                    f"cannot open the record file {path}: {exc.strerror}: choose a writable --record path"
                ) from exc

    def append(self, entry: dict[str, Any]) -> bool:
        """Add one call; False (and a logged error) if it could not be written."""
        line = json.dumps(entry, separators=(",", ":"), default=str) + "\n"
        if self._fd is None:
            with self._lock:
                self._memory.append(line)
            return True
        data = line.encode()
        try:
            with self._lock:
                written = os.write(self._fd, data)
                if written != len(data):  # a short write on a regular file means the disk is full
                    raise OSError(28, f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            self.write_errors += 1
            logger.error("record: could not write call to %s: %s", self.path, exc.strerror or exc)
            return False
        return True

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` recorded calls, newest first."""
        if self._fd is None:
            with self._lock:
                lines = self._memory[-limit:] if limit else []
        else:
            lines = _tail_lines(self.path, limit) if self.path else []
        return [json.loads(line) for line in reversed(lines)]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _tail_lines(path: Path, limit: int) -> list[str]:
    """The last ``limit`` complete lines of a file, read backwards in chunks."""
    if limit <= 0:
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= limit:
            step = min(TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = [line for line in data.decode(errors="replace").split("\n") if line.strip()]
    return lines[-limit:]
