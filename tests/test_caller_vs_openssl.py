"""The caller against `openssl s_server`, an independent strict server, with -verify and -Verify."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mtls_lab.certs.layout import LabPaths
from tests.support.ajo_call import ajo_call
from tests.support.expectations import JAVA_SENDS_WHEN_ROOT_NAMED, NO_CERTIFICATE, OPENSSL_SERVER_ANSWERS, lab_identity
from tests.support.tls_clients import needs_openssl

pytestmark = needs_openssl

# s_server names its -CAfile root: the Java model sends the chains that root issued
WHO = ["adobe", "impostor", "expired", "not-yet-valid", "no-client-auth", "self-signed", "adobe-leaf"]


CASES = [
    (s, t, w, b)
    for s in ("optional", "required")
    for t in ("1.2", "1.3")
    for w in [*WHO, "none"]
    for b in ("java", "openssl")
]


def _expected(strictness: str, tls: str, who: str, behavior: str) -> str:
    sent = who != "none" and (behavior == "openssl" or who in JAVA_SENDS_WHEN_ROOT_NAMED)
    if sent:
        return OPENSSL_SERVER_ANSWERS[who]
    if strictness == "optional":
        return "http:200"  # s_server -verify lets a client without a certificate through
    return NO_CERTIFICATE[tls]


@pytest.mark.parametrize(
    ("strictness", "tls", "who", "behavior"), CASES, ids=[f"{s}/tls{t}/{w}/{b}" for s, t, w, b in CASES]
)
def test_caller_reads_openssl_alerts(
    strictness: str, tls: str, who: str, behavior: str, pki: LabPaths, s_server: Callable[..., int]
) -> None:
    port = s_server(
        "-Verify" if strictness == "required" else "-verify",
        "1",
        "-verify_return_error",
        f"-tls{tls.replace('.', '_')}",
    )
    identity, chain = lab_identity(who)
    verdict = ajo_call(
        pki, f"https://localhost:{port}", identity, behavior=behavior, tls=tls, chain=chain, method="GET"
    )
    seen = f"alert:{verdict.alert}" if verdict.alert else f"http:{verdict.status}"
    assert seen == _expected(strictness, tls, who, behavior), verdict.explanation
