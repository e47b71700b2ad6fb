"""Advertised CA names: present or absent as configured, as `openssl s_client` reports them."""

from __future__ import annotations

import ssl

import pytest

from mtls_lab import _openssl
from mtls_lab.certs.inspect import load_pem_chain
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.server.settings import ADVERTISE_NONE, Mode
from tests.conftest import ServerFactory
from tests.support.tls_clients import identity_files, needs_openssl, s_client


def _cn(pki: LabPaths, ca: CA) -> str:
    return load_pem_chain(pki.ca(ca))[0].subject.rfc4514_string().split(",")[0].removeprefix("CN=")


def _advertised(output: str) -> list[str] | None:
    """The names s_client lists, or None when it reports that none were sent."""
    if "No client certificate CA names sent" in output:
        return None
    block = output.split("Acceptable client certificate CA names", 1)[1]
    names = []
    for line in block.strip().splitlines():
        if "=" not in line or ":" in line:  # the list ends at "Client Certificate Types:" or similar
            break
        names.append(line.strip())
    return names


@needs_openssl
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("mode", [Mode.MTLS, Mode.MIXED])
def test_trusted_cas_are_advertised_by_default(tls: str, mode: Mode, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=mode, trust=(pki.ca(CA.ADOBE_ROOT), pki.ca(CA.NEXT_ROOT)))
    names = _advertised(s_client(pki, server.port, tls, identity_files(pki, Identity.ADOBE)).body)
    assert names is not None and len(names) == 2
    assert _cn(pki, CA.ADOBE_ROOT) in names[0] and _cn(pki, CA.NEXT_ROOT) in names[1]


@needs_openssl
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_advertise_none_sends_no_names(tls: str, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS, advertise_ca=ADVERTISE_NONE)
    seen = s_client(pki, server.port, tls, identity_files(pki, Identity.ADOBE))
    assert _advertised(seen.body) is None
    assert seen.status == 200  # still trusts and accepts: only the names are missing


@needs_openssl
def test_advertise_a_pem_file_sends_its_names_not_the_trusted_ones(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MIXED, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT)))
    names = _advertised(s_client(pki, server.port, "1.3", None).body)
    assert names is not None and len(names) == 1 and _cn(pki, CA.IMPOSTOR_ROOT) in names[0]


def test_names_read_back_from_openssl_match(pki: LabPaths) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_OPTIONAL
    roots = [load_pem_chain(pki.ca(ca))[0] for ca in (CA.ADOBE_ROOT, CA.NEXT_ROOT)]
    _openssl.set_client_ca_names(context, [r.public_bytes(Encoding.DER) for r in roots])
    assert _openssl.client_ca_names(context) == [r.subject.public_bytes() for r in roots]
    _openssl.set_client_ca_names(context, [])
    assert _openssl.client_ca_names(context) == []


def test_pointer_check_refuses_a_context_whose_settings_disagree(
    pki: LabPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-check: if the SSL_CTX found does not match the SSLContext's public settings, stop."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _openssl.ctx_pointer(context)
    monkeypatch.setattr(_openssl, "_VERIFY_MODES", {ssl.CERT_NONE: 1, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3})
    with pytest.raises(_openssl.OpenSSLUnavailable, match="pointer check failed"):
        _openssl.ctx_pointer(context)
