"""The lab's app logic that needs no socket, tested in process through httpx's ASGI transport.

What is here answers the same with or without TLS underneath: the /_lab routes' filters, a refused call's
body in the record, the body limit's 413. A call over ``httpx.ASGITransport`` has no connection and so no
certificate (the app reads that as "no client certificate"): what depends on a certificate, the handshake
or the connection's record entry keeps its real socket (``test_app.py``, ``test_record_connections.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.server.app import create_app
from mtls_lab.server.loaded import load
from mtls_lab.server.record import REQUESTS, CallRecord
from mtls_lab.server.settings import Mode, ServerConfig

Call = tuple[str, str, bytes | None]  # method, path, body
InProcess = Callable[..., tuple[list[httpx.Response], CallRecord]]


@pytest.fixture
def in_process(pki: LabPaths) -> InProcess:
    """``in_process(calls, **settings)``: the answers of the lab's app to ``calls``, and its record."""

    def run(calls: list[Call], **settings: Any) -> tuple[list[httpx.Response], CallRecord]:
        config = dataclasses.replace(ServerConfig(certs=pki.root, quiet=True), **settings)
        record = CallRecord(None)
        app = create_app(load(config), record)

        async def send() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://localhost") as client:
                return [await client.request(method, path, content=body) for method, path, body in calls]

        return asyncio.run(send()), record

    return run


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("kind=calls", "kind must be connection or request"),
        ("rejected=maybe", "rejected must be 1 or 0"),
        ("fingerprint=xyz", "fingerprint:"),
        ("limit=x", "limit must be an integer"),
        ("last=entry", "last must be request or connection"),
        ("last=request&kind=connection", "last=request is kind=request&limit=1: give last"),
        ("last=request&limit=5", "last=request is kind=request&limit=1: give last"),
    ],
)
def test_bad_filters_get_400(query: str, error: str, in_process: InProcess) -> None:
    (answer, good), _ = in_process([("GET", f"/_lab/calls?{query}", None), ("GET", "/_lab/calls?limit=1", None)])
    assert answer.status_code == 400 and answer.json()["error"].startswith(error)
    assert good.status_code == 200 and good.json() == {"calls": []}  # the sibling that must pass


def test_refused_calls_keep_their_body_in_the_record(in_process: InProcess) -> None:
    body = json.dumps({"firstName": "Ada"}).encode()
    (answer,), record = in_process([("POST", "/refused", body)], mode=Mode.MIXED)
    assert answer.status_code == 403 and answer.json()["reason"] == "no_client_certificate"
    entry = record.newest(1, REQUESTS)[0]
    assert (entry["path"], entry["status"], entry["reason"]) == ("/refused", 403, "no_client_certificate")
    assert json.loads(entry["body"]) == {"firstName": "Ada"} and entry["body_size"] == len(entry["body"])


def test_a_body_over_the_limit_gets_413_before_the_certificate_is_asked_for(in_process: InProcess) -> None:
    calls: list[Call] = [("POST", "/huge", b"B" * 1001), ("POST", "/fits", b"C" * 1000)]
    (huge, fits), record = in_process(calls, mode=Mode.MIXED, max_body=1000, record_body_limit=10)
    assert huge.status_code == 413 and huge.json()["reason"] == "body_too_large"
    assert fits.status_code == 403 and fits.json()["reason"] == "no_client_certificate"  # within the limit
    newest = record.newest(2, REQUESTS)
    assert [(e["path"], e["status"], e["body_size"], e["body_truncated"]) for e in newest] == [
        ("/fits", 403, 1000, True),
        ("/huge", 413, 1001, True),
    ]


def test_the_lab_routes_answer_in_every_mode(in_process: InProcess) -> None:
    for mode in Mode:
        (health, unknown), _ = in_process([("GET", "/_lab/health", None), ("GET", "/_lab/nothing", None)], mode=mode)
        assert health.status_code == 200 and health.json() == {"status": "ok", "mode": mode.value, "record_errors": 0}
        assert unknown.status_code == 404 and unknown.json() == {"error": "no lab route /_lab/nothing"}
