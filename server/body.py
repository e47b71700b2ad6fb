"""Read a request body for the record: bounded in memory, bounded in time, and honest about how it ended.

The whole body is read (so the record can say its real size) but at most ``limit`` bytes are kept. A
body that has not fully arrived ``timeout`` seconds after the headers gets 408 (a client that sends its
body one byte per second cannot hold the connection), and a client that leaves mid-body is recorded as
``client_disconnected`` with nginx's log status 499 instead of being answered.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from mtls_lab.server.state import lab_state
from mtls_lab.vocabulary import Reason

CLIENT_CLOSED = 499  # nginx's log status for "client closed request": never sent, only recorded


class BodyEnd(enum.Enum):
    """How reading a request body ended."""

    COMPLETE = "complete"
    TIMED_OUT = "timed_out"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Body:
    """The kept part of a body, its real size so far, and how reading it ended."""

    kept: bytes
    size: int
    end: BodyEnd


async def read_body(receive: Receive, limit: int, timeout: float) -> Body:
    """Read the whole body within ``timeout`` seconds, keeping at most ``limit`` bytes."""
    kept = bytearray()
    size = 0
    end = BodyEnd.COMPLETE
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    end = BodyEnd.DISCONNECTED
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])
                if not message.get("more_body"):
                    break
    except TimeoutError:
        end = BodyEnd.TIMED_OUT
    return Body(bytes(kept), size, end)


async def answer_timed_out(scope: Scope, receive: Receive, send: Send, timeout: float, size: int) -> None:
    """408, and close: the rest of the body is not worth waiting for."""
    lab_state(scope).reason = Reason.BODY_TIMEOUT
    response = JSONResponse(
        {
            "reason": Reason.BODY_TIMEOUT,
            "message": f"The request body did not arrive within {timeout:g} s ({size} bytes received).",
        },
        status_code=408,
        headers={"connection": "close"},
    )
    await response(scope, receive, send)


def note_disconnected(scope: Scope) -> int:
    """The status and reason recorded for a client that left before its body was complete."""
    lab_state(scope).reason = Reason.CLIENT_DISCONNECTED
    return CLIENT_CLOSED
