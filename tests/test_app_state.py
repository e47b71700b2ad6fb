"""The app without the lab's protocol (httpx's ASGI transport): no connection state, so each request is
judged as an unrecorded connection without a certificate (server/state.py), and its record line says so."""

from __future__ import annotations

import asyncio
import json

import httpx

from mtls_lab.certs.layout import LabPaths
from mtls_lab.server.app import create_app
from mtls_lab.server.loaded import load
from mtls_lab.server.record import CallRecord
from mtls_lab.server.settings import Mode, ServerConfig
from mtls_lab.server.state import ConnectionState, lab_state


async def _call(app: object, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://lab") as client:
        return await client.request(method, path, json={"x": 1} if method == "POST" else None)


def test_without_the_labs_protocol_a_call_is_judged_as_certificate_less_and_recorded_so(pki: LabPaths) -> None:
    record = CallRecord()
    app = create_app(load(ServerConfig(certs=pki.root, mode=Mode.MTLS, quiet=True)), record)
    answer = asyncio.run(_call(app, "POST", "/custom-action"))
    assert (answer.status_code, answer.json()["reason"]) == (403, "no_client_certificate")
    assert answer.json()["saw"]["client_certificate_presented"] is False
    (line,) = record.newest(5, None)
    assert (line["kind"], line["status"], line["reason"]) == ("request", 403, "no_client_certificate")
    assert (line["connection_id"], line["client_certificate_presented"], line["tls_version"]) == (None, False, None)
    json.dumps(line)  # a plain JSON entry
    # the sibling: the lab's unrecorded route answers and adds no line
    health = asyncio.run(_call(app, "GET", "/_lab/health"))
    assert health.status_code == 200 and len(record.newest(5, None)) == 1


def test_the_accessor_keeps_one_state_per_scope_and_a_fresh_one_for_another() -> None:
    scope: dict[str, object] = {"type": "http"}
    state = lab_state(scope)
    assert isinstance(state, ConnectionState) and lab_state(scope) is state and state.connection_id is None
    assert lab_state({"type": "http"}) is not state
