"""The self-checks of the modules that reach into uvicorn's and asyncio's internals."""

from __future__ import annotations

from asyncio import sslproto

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mtls_lab.server import _asyncio_alerts, _uvicorn_limits


def test_the_internals_are_there() -> None:
    _uvicorn_limits.check_internals()
    _asyncio_alerts.check_internals()


@pytest.mark.parametrize("name", ["on_header", "on_headers_complete", "_unset_keepalive_if_required"])
def test_a_changed_uvicorn_is_detected(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(HttpToolsProtocol, name)
    with pytest.raises(RuntimeError, match=r"server/_uvicorn_limits.py"):
        _uvicorn_limits.check_internals()


def test_a_changed_asyncio_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sslproto.SSLProtocol, "_check_handshake_timeout")
    with pytest.raises(RuntimeError, match="_check_handshake_timeout"):
        _asyncio_alerts.check_internals()
