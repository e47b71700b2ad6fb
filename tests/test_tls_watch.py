"""The message-callback module: it checks itself, and it sees what OpenSSL writes and reads, over memory BIOs."""

from __future__ import annotations

import contextlib
import ssl

import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server import _tls_watch
from tests.support.tls_clients import client_context, identity_files, strict_server_context


def _handshake(pki: LabPaths, tls: str, identity: Identity | None, watched: bool = True) -> _tls_watch.Watch:
    server_context = strict_server_context(pki)
    if watched:
        _tls_watch.install(server_context)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(to_server, to_client, server_side=True)
    watch = _tls_watch.watch(server)
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(pki, tls, identity_files(pki, identity)).wrap_bio(
        client_in, client_out, server_hostname="localhost"
    )
    for _ in range(4):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLError):  # WantRead, or the rejection itself
                side.do_handshake()
        to_server.write(client_out.read())
        client_in.write(to_client.read())
    return watch


@pytest.mark.parametrize(("tls", "alert", "after"), [("1.2", "unknown_ca", False), ("1.3", "unknown_ca", True)])
def test_the_watch_sees_the_alert_written_and_the_chain_read(tls: str, alert: str, after: bool, pki: LabPaths) -> None:
    watch = _handshake(pki, tls, Identity.IMPOSTOR)
    assert watch.sent is not None and (watch.sent.name, watch.sent.level) == (alert, 2)
    assert watch.sent.after_client_finished is after  # TLS 1.3: the client had finished before the check
    assert watch.client_hello and watch.server_hello and watch.certificate_request and watch.client_certificate
    assert watch.tls13 is (tls == "1.3") and watch.received is None


def test_an_accepted_handshake_has_no_alert(pki: LabPaths) -> None:
    watch = _handshake(pki, "1.3", Identity.ADOBE)
    assert watch.sent is None and watch.client_finished and watch.server_finished


def test_a_context_not_installed_is_not_watched(pki: LabPaths) -> None:
    watch = _handshake(pki, "1.3", Identity.IMPOSTOR, watched=False)
    assert watch.sent is None and watch.client_hello is None  # the sibling: nothing fed it
    context = strict_server_context(pki)
    assert not _tls_watch.installed(context)
    _tls_watch.install(context)
    assert _tls_watch.installed(context)


def test_check_internals_notices_a_python_without_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    _tls_watch.check_internals()
    monkeypatch.setattr(_tls_watch, "_HOOK", None)
    with pytest.raises(RuntimeError, match="_msg_callback is gone"):
        _tls_watch.check_internals()
