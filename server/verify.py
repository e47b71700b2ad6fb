"""Verify a client's chain in the app, as nginx does per request, with cryptography's X.509 verifier.

Used by the ``nginx`` and ``gateway`` rejection styles, where the handshake completes whatever the
certificate. The answer is phrased like OpenSSL's (``X509_verify_cert_error_string``), which is what
nginx puts in ``$ssl_client_verify`` (``SUCCESS``, ``FAILED:<reason>``, ``NONE``), and it must agree
with OpenSSL's own verdict for every lab identity (tests/test_styles.py checks this).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

# OpenSSL's X509_V_ERR_* codes and strings for the failures a client chain can have here
UNABLE_TO_GET_LOCAL_ISSUER = (20, "unable to get local issuer certificate")
SELF_SIGNED = (18, "self-signed certificate")
EXPIRED = (10, "certificate has expired")
NOT_YET_VALID = (9, "certificate is not yet valid")
INVALID_PURPOSE = (26, "unsuitable certificate purpose")


@dataclass(frozen=True)
class ClientVerification:
    """nginx's ``$ssl_client_verify`` for one connection."""

    status: str  # "SUCCESS", "FAILED", "NONE"
    reason: str = ""
    code: int | None = None  # OpenSSL's X509_V_ERR_* equivalent

    @property
    def nginx_variable(self) -> str:
        return f"FAILED:{self.reason}" if self.status == "FAILED" else self.status


NONE = ClientVerification("NONE")


def verify_client_chain(
    chain: list[x509.Certificate], trusted: list[x509.Certificate], now: dt.datetime | None = None
) -> ClientVerification:
    """Verify ``chain`` (leaf first, as sent) for client authentication against ``trusted`` roots."""
    if not chain:
        return NONE
    moment = now or dt.datetime.now(dt.UTC)
    verifier = PolicyBuilder().store(Store(trusted)).time(moment).build_client_verifier()
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as exc:
        code, reason = _reason(str(exc), chain[0], moment)
        return ClientVerification("FAILED", reason, code)
    return ClientVerification("SUCCESS")


def _reason(message: str, leaf: x509.Certificate, now: dt.datetime) -> tuple[int, str]:
    if "not valid at validation time" in message:
        return NOT_YET_VALID if leaf.not_valid_before_utc > now else EXPIRED
    if "EKU" in message:
        return INVALID_PURPOSE
    if leaf.issuer == leaf.subject:
        return SELF_SIGNED
    return UNABLE_TO_GET_LOCAL_ISSUER
