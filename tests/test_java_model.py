"""The Java model reproduces docs/ground-truth.md's table measured with a JDK 17 client."""

from __future__ import annotations

import pytest

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.settings import ADVERTISE_NONE, Mode
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call


def _advertise(pki: LabPaths, which: str) -> str:
    return {"none": ADVERTISE_NONE, "adobe-root": str(pki.ca(CA.ADOBE_ROOT)), "other": str(pki.ca(CA.IMPOSTOR_ROOT))}[
        which
    ]


# (server advertises, server mode, TLS) -> (java sends cert?, outcome)
TABLE = [
    ("none", Mode.MIXED, "1.3", True, "http:200"),
    ("none", Mode.MTLS, "1.3", True, "http:200"),
    ("adobe-root", Mode.MIXED, "1.3", True, "http:200"),
    ("adobe-root", Mode.MTLS, "1.2", True, "http:200"),
    ("other", Mode.MIXED, "1.3", False, "http:403"),
    ("other", Mode.MIXED, "1.2", False, "http:403"),
    ("other", Mode.MTLS, "1.2", False, "alert:handshake_failure"),
    ("other", Mode.MTLS, "1.3", False, "alert:certificate_required"),
]


def _outcome(verdict) -> str:  # type: ignore[no-untyped-def]
    return f"alert:{verdict.alert}" if verdict.alert else f"http:{verdict.status}"


@pytest.mark.parametrize(
    ("advertised", "mode", "tls", "sends", "outcome"), TABLE, ids=[f"{a}/{m.value}/tls{t}" for a, m, t, _, _ in TABLE]
)
def test_java_sends_only_when_the_names_allow(
    advertised: str, mode: Mode, tls: str, sends: bool, outcome: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    # The server trusts the Adobe-like root in every row: only the advertised names differ.
    server = lab_server(mode=mode, advertise_ca=_advertise(pki, advertised))
    verdict = ajo_call(pki, server.url, tls=tls)
    assert (verdict.client_cert_sent, _outcome(verdict)) == (sends, outcome), verdict.explanation
    assert verdict.server_requested_cert is True


@pytest.mark.parametrize("mode", [Mode.MIXED, Mode.MTLS])
def test_openssl_clients_send_whatever_is_advertised(mode: Mode, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=mode, advertise_ca=_advertise(pki, "other"))
    verdict = ajo_call(pki, server.url, behavior="openssl", tls="1.3")
    assert verdict.client_cert_sent is True and verdict.status == 200


def test_leaf_alone_against_a_root_only_list_is_not_sent(pki: LabPaths, lab_server: ServerFactory) -> None:
    """The key store holds the leaf only; its issuer (the intermediate) is not among the advertised names."""
    optional = ajo_call(pki, lab_server(mode=Mode.MIXED).url, chain="leaf", tls="1.3")
    assert (optional.client_cert_sent, optional.status) == (False, 403)
    required = ajo_call(pki, lab_server(mode=Mode.MTLS).url, chain="leaf", tls="1.3")
    assert (required.client_cert_sent, required.alert) == (False, "certificate_required")
    # with no names advertised, Java sends the lone leaf and the server cannot build the chain
    unnamed = ajo_call(pki, lab_server(mode=Mode.MTLS, advertise_ca=ADVERTISE_NONE).url, chain="leaf", tls="1.3")
    assert (unnamed.client_cert_sent, unnamed.alert) == (True, "unknown_ca")
    assert "intermediate" in unnamed.explanation


def test_tls_mode_never_requests_a_certificate(pki: LabPaths, lab_server: ServerFactory) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.TLS).url)
    assert verdict.server_requested_cert is False and verdict.client_cert_sent is False
    assert verdict.status == 403 and verdict.server_reason == "no_client_certificate"
    assert "never requested" in verdict.explanation or "never asked" in verdict.explanation
