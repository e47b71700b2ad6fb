"""Read the server's record in tests: its entries by kind (docs/reference/record.md), waiting when needed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtls_lab.server.record import CallRecord, Query

Entry = dict[str, Any]


def entries(path: Path, kind: str | None = None) -> list[Entry]:
    """The entries of a record file in file order, of one kind (``request`` or ``connection``) or all.

    Every complete line must parse. A last line without its newline is a write still in progress (the
    server appends a connection's entry when the connection closes, maybe while we read): left out.
    """
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    found = [json.loads(line) for line in complete.splitlines()]
    return [e for e in found if kind is None or e.get("kind", "request") == kind]


def requests(path: Path) -> list[Entry]:
    return entries(path, "request")


def wait_for_entry(
    record: CallRecord, match: Callable[[Entry], bool], query: Query | None = None, timeout: float = 3.0
) -> Entry:
    """The newest entry that ``match``-es, waiting for it (a connection is recorded when it closes)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in record.newest(1000, query) if match(e)]
        if found or time.monotonic() > deadline:
            assert found, f"no matching entry in the record within {timeout} s"
            return found[0]
        time.sleep(0.01)
