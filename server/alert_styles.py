"""``--alert-style``: the lab server rejects certificates with the alerts Java or Go servers send.

OpenSSL picks the alert from its verification error (``ssl_x509err2alert``, ssl/statem/statem_lib.c).
For the java and go styles the lab installs a verify callback (``mtls_lab._openssl.restyle_verification``)
that replaces the error with one OpenSSL maps to the alert the imitated stack sends, as measured in
caller/stacks.py (tests/test_stacks.py checks the lab against the real servers):

- java (JSSE, Tomcat, Jetty, Spring Boot): every rejected certificate is ``certificate_unknown``; a
  missing one is ``bad_certificate``. On TLS 1.2 that alert is plaintext and
  server/_asyncio_alerts.py rewrites OpenSSL's ``handshake_failure``; on TLS 1.3 OpenSSL encrypts
  its ``certificate_required`` with no hook to change it, so that one cell keeps OpenSSL's alert.
- go (Go 1.20 and later): the leaf's dates are checked before the chain (``certificate_expired``,
  also for a certificate not yet valid), an unknown issuer or a false signature is ``unknown_ca``,
  anything else ``bad_certificate``; a missing certificate gets OpenSSL's own alerts.

The original verification error is noted on the connection's state (``state.noted_verify_error``,
found by the connection's ``SSL*``), so that the record names the real error, not the style's.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from mtls_lab.alerts import Alert
from mtls_lab.server.settings import AlertStyle
from mtls_lab.server.state import noted_verify_error

# OpenSSL X509_V_ERR_* codes, and the alert ssl_x509err2alert makes of each one used here
UNABLE_TO_GET_ISSUER_CERT = 2
CERT_SIGNATURE_FAILURE = 7
CERT_NOT_YET_VALID = 9
CERT_HAS_EXPIRED = 10  # -> certificate_expired
DEPTH_ZERO_SELF_SIGNED_CERT = 18
SELF_SIGNED_CERT_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20  # -> unknown_ca
UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
INVALID_CA = 24
CERT_UNTRUSTED = 27
CERT_REJECTED = 28  # -> bad_certificate
SUBJECT_ISSUER_MISMATCH = 29  # in no row of OpenSSL's table: -> certificate_unknown
GO_UNKNOWN_AUTHORITY = frozenset(
    {
        UNABLE_TO_GET_ISSUER_CERT,
        CERT_SIGNATURE_FAILURE,
        DEPTH_ZERO_SELF_SIGNED_CERT,
        SELF_SIGNED_CERT_IN_CHAIN,
        UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        UNABLE_TO_VERIFY_LEAF_SIGNATURE,
        INVALID_CA,
        CERT_UNTRUSTED,
    }
)


def missing_certificate_tls12(style: AlertStyle) -> Alert | None:
    """The alert for a missing certificate on TLS 1.2, where the style differs from OpenSSL's handshake_failure."""
    return Alert.BAD_CERTIFICATE if style is AlertStyle.JAVA else None


def verify_error(
    style: AlertStyle, code: int, leaf_der: bytes, ssl_pointer: int | None = None, now: dt.datetime | None = None
) -> int:
    """The verification error that makes OpenSSL send ``style``'s alert for OpenSSL's error ``code``.

    OpenSSL's own error is noted on the state of the connection whose ``SSL*`` is ``ssl_pointer``."""
    noted_verify_error(ssl_pointer, code)
    if style is AlertStyle.JAVA:
        return SUBJECT_ISSUER_MISMATCH
    if style is AlertStyle.GO:
        if _leaf_out_of_dates(leaf_der, now or dt.datetime.now(dt.UTC)) or code in (
            CERT_NOT_YET_VALID,
            CERT_HAS_EXPIRED,
        ):
            return CERT_HAS_EXPIRED
        return UNABLE_TO_GET_ISSUER_CERT_LOCALLY if code in GO_UNKNOWN_AUTHORITY else CERT_REJECTED
    return code


def _leaf_out_of_dates(der: bytes, now: dt.datetime) -> bool:
    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    return not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
