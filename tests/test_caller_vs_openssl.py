"""The caller against `openssl s_server`, an independent strict server, with -verify and -Verify."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mtls_lab.certs.layout import LabPaths
from tests.support.ajo_call import ajo_call
from tests.support.tls_clients import needs_openssl

pytestmark = needs_openssl

IF_SENT = {
    "adobe": "http:200",
    "impostor": "alert:unknown_ca",
    "expired": "alert:certificate_expired",
    "not-yet-valid": "alert:bad_certificate",
    "no-client-auth": "alert:unsupported_certificate",
    "self-signed": "alert:unknown_ca",
    "adobe-leaf": "alert:unknown_ca",
}
JAVA_SENDS = {"adobe", "expired", "not-yet-valid", "no-client-auth"}  # s_server names its -CAfile roots


CASES = [
    (s, t, w, b)
    for s in ("optional", "required")
    for t in ("1.2", "1.3")
    for w in [*IF_SENT, "none"]
    for b in ("java", "openssl")
]


def _expected(strictness: str, tls: str, who: str, behavior: str) -> str:
    sent = who != "none" and (behavior == "openssl" or who in JAVA_SENDS)
    if sent:
        return IF_SENT[who]
    if strictness == "optional":
        return "http:200"  # s_server -verify lets a client without a certificate through
    return "alert:handshake_failure" if tls == "1.2" else "alert:certificate_required"


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
    identity, chain = ("adobe", "leaf") if who == "adobe-leaf" else (who, "full")
    verdict = ajo_call(
        pki, f"https://localhost:{port}", identity, behavior=behavior, tls=tls, chain=chain, method="GET"
    )
    seen = f"alert:{verdict.alert}" if verdict.alert else f"http:{verdict.status}"
    assert seen == _expected(strictness, tls, who, behavior), verdict.explanation
