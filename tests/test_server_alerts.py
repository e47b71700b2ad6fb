"""Every mode against every identity on TLS 1.2 and 1.3, seen by openssl s_client and by httpx.

The expectations are docs/ground-truth.md's table for an OpenSSL server that trusts the Adobe-like
root only: the lab server must answer exactly like it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server.settings import Mode, TLSVersion
from tests.conftest import ServerFactory
from tests.support.expectations import PRESENTED, lab_identity, lab_server_answer
from tests.support.tls_clients import httpx_call, identity_files, needs_openssl, s_client

NONE = "none"


@dataclass(frozen=True)
class Case:
    mode: Mode
    tls: str
    who: str

    @property
    def id(self) -> str:
        return f"{self.mode.value}/tls{self.tls}/{self.who}"

    def expected(self) -> str:
        return lab_server_answer(self.mode.value, self.tls, None if self.who == NONE else self.who)


CASES = [Case(m, t, w) for m in Mode for t in ("1.2", "1.3") for w in [*PRESENTED, NONE]]


def _identity(pki: LabPaths, who: str) -> tuple[Path, Path] | None:
    if who == NONE:
        return None
    identity, chain = lab_identity(who)
    return identity_files(pki, Identity(identity), leaf_only=chain == "leaf")


@needs_openssl
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_openssl_client_sees_what_an_openssl_server_sends(case: Case, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=case.mode)
    seen = s_client(pki, server.port, case.tls, _identity(pki, case.who))
    assert seen.outcome == case.expected(), seen.body[-600:]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_httpx_sees_the_same(case: Case, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=case.mode)
    seen, error_type = httpx_call(pki, server.url, case.tls, _identity(pki, case.who))
    assert seen.outcome == case.expected(), seen.error
    if seen.alert:
        # TLS 1.2 rejects during the handshake; TLS 1.3 verifies the client after the client's handshake
        # completed, so the alert surfaces on the first read (RFC 8446 4.4.2.4).
        assert error_type == ("ConnectError" if case.tls == "1.2" else "ReadError")


@needs_openssl
def test_tls13_only_client_against_tls12_server_gets_protocol_version(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS, tls_max=TLSVersion.V1_2)
    identity = identity_files(pki, Identity.ADOBE)
    assert s_client(pki, server.port, "1.3", identity).alert == "protocol_version"
    assert httpx_call(pki, server.url, "1.3", identity)[0].alert == "protocol_version"
    # the sibling that must pass: versions overlap, so TLS 1.2 works
    assert s_client(pki, server.port, "1.2", identity).status == 200


def test_the_adobe_next_identity_is_accepted_when_the_next_root_is_trusted(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    from mtls_lab.certs.layout import CA

    server = lab_server(mode=Mode.MTLS, trust=(pki.ca(CA.ADOBE_ROOT), pki.ca(CA.NEXT_ROOT)))
    for tls in ("1.2", "1.3"):
        assert httpx_call(pki, server.url, tls, identity_files(pki, Identity.ADOBE_NEXT))[0].status == 200
        assert httpx_call(pki, server.url, tls, identity_files(pki, Identity.IMPOSTOR))[0].alert == "unknown_ca"
