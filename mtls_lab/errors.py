"""The lab's one user-facing error type and the CLI's named exit codes."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class ExitCode(enum.IntEnum):
    """Exit codes of every ``mtls-lab`` command (documented in docs/reference/commands.md)."""

    OK = 0
    HTTP_ERROR = 1
    PROBLEMS_FOUND = 1  # probe: the report lists fixes (an alias of 1)
    USAGE = 2
    TLS_REJECTED = 3
    SERVER_UNTRUSTED = 4
    CONNECTION = 5
    MISMATCH = 6  # matrix or demo: a verdict differed from the expectation
    PLAIN_HTTP = 7  # probe: the port speaks plain HTTP, not TLS
    NOT_TLS = 8  # probe: the port answers, but not with TLS
    TIMEOUT = 9  # probe: the endpoint accepted the connection but never answered
    BAD_RESPONSE = 10  # trust-sync: the certificate API's answer is not in Adobe's documented format


class LabError(Exception):
    """A mistake the user can fix: the message says what is wrong and how to fix it, on one line."""

    exit_code = ExitCode.USAGE


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during, innermost last, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def cause_of(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in ``exc``'s chain (httpx wraps ssl's errors), or None."""
    return next((c for c in causes(exc) if isinstance(c, kind)), None)
