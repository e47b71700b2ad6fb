"""The gh-98078 fix: the alert of a failed handshake reaches even a client that sends its flight at once."""

from __future__ import annotations

import asyncio
import ssl
import threading
from asyncio import sslproto
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server import _asyncio_alerts
from mtls_lab.server._asyncio_alerts import AlertDeliveringSSLProtocol
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.flight_client import flight_at_once
from tests.support.tls_clients import client_context, identity_files, strict_server_context

TRIES = 60


class _FlushThenClose(sslproto.SSLProtocol):
    """The easy half-fix: flush the alert, then close at once (unread input -> TCP reset)."""

    def _on_handshake_complete(self, handshake_exc):  # type: ignore[no-untyped-def]
        if isinstance(handshake_exc, ssl.SSLError):
            self._process_outgoing()  # type: ignore[attr-defined]  # private, the point of this test
        super()._on_handshake_complete(handshake_exc)


@pytest.fixture
def bare_server(pki: LabPaths) -> Iterator[Callable[[str], int]]:
    """A plain asyncio TLS server: "stock" (ssl= as everyone writes it) or "flush" (the half-fix)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers: list[asyncio.Server] = []

    def start(kind: str) -> int:
        context = strict_server_context(pki)

        async def create() -> asyncio.Server:
            if kind == "stock":
                return await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=context)
            return await loop.create_server(
                lambda: _FlushThenClose(loop, asyncio.Protocol(), context, None, server_side=True),  # type: ignore[arg-type]
                "127.0.0.1",
                0,
            )

        server = asyncio.run_coroutine_threadsafe(create(), loop).result(5)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.parametrize(
    ("tls", "identity", "alert"),
    [
        ("1.2", None, "handshake_failure"),
        ("1.3", None, "certificate_required"),
        ("1.2", Identity.IMPOSTOR, "unknown_ca"),
        ("1.3", Identity.EXPIRED, "certificate_expired"),
    ],
    ids=["tls1.2/none", "tls1.3/none", "tls1.2/impostor", "tls1.3/expired"],
)
def test_lab_server_delivers_the_alert_every_time(
    tls: str, identity: Identity | None, alert: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS)
    context = client_context(pki, tls, identity_files(pki, identity))
    results = Counter(flight_at_once(server.port, context) for _ in range(TRIES))
    assert results == {f"alert:{alert}": TRIES}


def test_lab_server_still_accepts_the_flight_at_once_client(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS)
    for tls in ("1.2", "1.3"):
        assert flight_at_once(server.port, client_context(pki, tls, identity_files(pki, Identity.ADOBE))) == "http"


def test_stock_asyncio_drops_the_alert(pki: LabPaths, bare_server: Callable[[str], int]) -> None:
    """The upstream bug this module exists for; if this Python fixed it, say so instead of failing."""
    port = bare_server("stock")
    results = Counter(flight_at_once(port, client_context(pki, "1.3", None)) for _ in range(10))
    if results["alert:certificate_required"]:
        pytest.skip(f"this Python delivers handshake alerts itself (gh-98078 fixed): {results}")
    assert set(results) <= {"eof", "reset"}, results  # a bare close: no alert at all


def test_flushing_without_lingering_loses_the_alert_to_a_reset(
    pki: LabPaths, bare_server: Callable[[str], int]
) -> None:
    """Why the fix lingers: the client's late records hit a closed socket and the reset ends the handshake."""
    port = bare_server("flush")
    results = Counter(flight_at_once(port, client_context(pki, "1.2", None)) for _ in range(30))
    assert results["reset"] >= 1, results


def test_check_internals_notices_a_changed_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    _asyncio_alerts.check_internals()
    monkeypatch.delattr(sslproto.SSLProtocol, "_process_outgoing")
    with pytest.raises(RuntimeError, match="gh-98078"):
        _asyncio_alerts.check_internals()


def test_the_protocol_is_what_the_server_uses() -> None:
    assert issubclass(AlertDeliveringSSLProtocol, sslproto.SSLProtocol)
