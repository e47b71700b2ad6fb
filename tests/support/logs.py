"""Catch the lab server's log lines in tests, whatever the loggers' propagation settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

WATCHED = ("mtls_lab.server", "asyncio", "uvicorn.error")


class LogCatcher(logging.Handler):
    """Every record of the server's loggers, whatever their propagation settings."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.WARNING) -> list[str]:
        return [self.format(r) for r in self.records if r.levelno >= level]

    def wait_for(self, count: int, timeout: float = 3.0) -> list[str]:
        """The warning lines, once there are ``count`` (the server logs from its own thread)."""
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.lines()


@contextmanager
def caught_logs() -> Iterator[LogCatcher]:
    catcher = LogCatcher()
    catcher.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in WATCHED]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(catcher)
        lg.setLevel(logging.DEBUG if lg.name == "asyncio" else logging.INFO)
    try:
        yield catcher
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(catcher)
            lg.setLevel(level)
