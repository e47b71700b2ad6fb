"""The record: one JSON object per TLS connection attempt and per request that reached the app.

The format is versioned and documented in docs/reference/record.md: every entry has ``record_version``
(``RECORD_VERSION``) and ``kind`` (``connection`` or ``request``); a request carries the
``connection_id`` of its connection. Lines written before version 2 have neither and are requests.

With a path, lines are appended to a JSON-lines file opened with O_APPEND, each line in a single
``write`` call, so concurrent writers (even other processes) never interleave or truncate lines and a
restart never truncates the file. Without a path, the newest ``MEMORY_LIMIT`` calls are kept in memory.
A write that fails (disk full, read-only file) is logged and counted, never silently dropped.

There is no built-in rotation or size limit; a line is bounded (a body is kept up to 64 KiB, a request
head up to 32 KiB). External rotation is safe both ways: ``logrotate copytruncate`` (O_APPEND writes go
to the new end), and rename-and-create (each write checks that the path still names the open file and
reopens it if not, as ``logging.handlers.WatchedFileHandler`` does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtls_lab.errors import LabError

logger = logging.getLogger("mtls_lab.server")

RECORD_VERSION = 2
TAIL_CHUNK = 64 * 1024
MEMORY_LIMIT = 10_000  # entries kept without --record: a long-running server must not grow for ever
SCAN_LIMIT = 64 * 1024 * 1024  # a filtered read looks at the newest 64 MiB of the file at most


@dataclass(frozen=True)
class Query:
    """Which entries a reader wants: a kind, rejections only, one client certificate (SHA-256)."""

    kind: str | None = None  # "connection" or "request"; None: both
    rejected: bool = False  # connections that did not complete normally, requests answered >= 400
    fingerprint: str | None = None  # normalized SHA-256 of the client's leaf certificate

    def matches(self, entry: dict[str, Any]) -> bool:
        kind = entry.get("kind", "request")  # version 1 lines are requests
        if self.kind is not None and kind != self.kind:
            return False
        if self.rejected and not _rejected(entry, kind):
            return False
        return self.fingerprint is None or _leaf_sha256(entry, kind) == self.fingerprint


REQUESTS, CONNECTIONS = Query(kind="request"), Query(kind="connection")


def _rejected(entry: dict[str, Any], kind: str) -> bool:
    if kind == "connection":
        return entry.get("outcome") != "accepted" or entry.get("http_refused") is not None
    status = entry.get("status")
    return isinstance(status, int) and status >= 400


def _leaf_sha256(entry: dict[str, Any], kind: str) -> str | None:
    if kind == "connection":
        chain = entry.get("client_chain") or [{}]
        return chain[0].get("sha256") if isinstance(chain[0], dict) else None
    cert = entry.get("client_certificate")
    return cert.get("sha256") if isinstance(cert, dict) else None


_JSON = json.JSONEncoder(separators=(",", ":"), default=str)


def encode(entry: Any) -> str:
    """One entry (or a value of one) as the record writes it (without the newline)."""
    return _JSON.encode(entry)


class CallRecord:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.write_errors = 0
        self._memory: deque[str] = deque(maxlen=MEMORY_LIMIT)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._open(path)
            except OSError as exc:
                raise LabError(
                    f"cannot open the record file {path}: {exc.strerror}: choose a writable --record path"
                ) from exc

    def _open(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        info = os.fstat(fd)
        if info.st_size and stat.S_ISREG(info.st_mode) and _last_byte(path) != b"\n":
            _end_line(fd)  # a previous run was cut mid-line (crash, full disk): start on a line of our own
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._identity = fd, (info.st_dev, info.st_ino)

    def _follow_rotation(self) -> None:
        """Reopen the path if it was renamed or removed since it was opened (rename-based rotation)."""
        assert self.path is not None
        try:
            info = os.stat(self.path)
            moved = (info.st_dev, info.st_ino) != self._identity
        except FileNotFoundError:
            moved = True
        if moved:
            self._open(self.path)

    def append(self, entry: dict[str, Any]) -> bool:
        """Add one entry; False (and a logged error) if it could not be written."""
        return self.append_line(encode(entry) + "\n")

    def append_line(self, line: str) -> bool:
        """Add one entry already encoded (``encode``) as one line, its newline included."""
        if self._fd is None:
            with self._lock:
                self._memory.append(line)
            return True
        data = line.encode()
        try:
            with self._lock:
                self._follow_rotation()
                assert self._fd is not None
                written = os.write(self._fd, data)
                if written != len(data):  # a short write on a regular file means the disk is full
                    _end_line(self._fd)
                    raise OSError(28, f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            self.write_errors += 1
            logger.error("record: could not write call to %s: %s", self.path, exc.strerror or exc)
            return False
        return True

    def newest(self, limit: int, query: Query | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` entries that match ``query`` (all by default), newest first."""
        return _matching(self._lines_newest_first(), limit, query)

    def _lines_newest_first(self) -> Iterator[str]:
        if self._fd is None:
            with self._lock:
                lines = list(self._memory)
            yield from reversed(lines)
        elif self.path is not None:
            yield from _lines_backwards(self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_newest(path: Path, limit: int, query: Query | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` entries of a record file that match ``query``, newest first, read without opening the
    file for writing: for a reader of the file another process writes (the HTML report's ``--server-record``)."""
    return _matching(_lines_backwards(path), limit, query)


def _matching(lines: Iterator[str], limit: int, query: Query | None) -> list[dict[str, Any]]:
    wanted = query or Query()
    found: list[dict[str, Any]] = []
    if limit <= 0:
        return found
    for line in lines:
        entry = _parse(line)
        if entry is not None and wanted.matches(entry):
            found.append(entry)
            if len(found) >= limit:
                break
    return found


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def _end_line(fd: int) -> None:
    """After a short write, end the partial line so that the next call starts on a line of its own."""
    with contextlib.suppress(OSError):
        os.write(fd, b"\n")


def _parse(line: str) -> dict[str, Any] | None:
    """A recorded call, or None for a line cut short by a full disk."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _lines_backwards(path: Path) -> Iterator[str]:
    """The complete lines of a file, last first, read backwards in chunks (at most ``SCAN_LIMIT`` bytes)."""
    if not path.is_file():
        return  # rotated away and not written since
    with path.open("rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        floor = max(0, position - SCAN_LIMIT)
        rest = b""  # the start of the line that continues into the chunk read before
        while position > floor:
            step = min(TAIL_CHUNK, position - floor)
            position -= step
            handle.seek(position)
            lines = (handle.read(step) + rest).split(b"\n")
            rest = lines[0]  # may continue in the chunk before this one
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line.decode(errors="replace")
        if floor == 0 and rest.strip():
            yield rest.decode(errors="replace")
