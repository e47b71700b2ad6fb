"""TLS alerts: names, numbers, and how OpenSSL reports them on either side of a handshake."""

from __future__ import annotations

import enum
import re
import ssl

from mtls_lab.errors import causes


class Alert(enum.Enum):
    """TLS alert descriptions (RFC 8446 6.2), by name; ``number`` is the wire value."""

    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_REVOKED = 44
    CERTIFICATE_EXPIRED = 45
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    USER_CANCELED = 90
    NO_RENEGOTIATION = 100
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    UNRECOGNIZED_NAME = 112
    UNKNOWN_PSK_IDENTITY = 115
    CERTIFICATE_REQUIRED = 116
    NO_APPLICATION_PROTOCOL = 120

    @property
    def label(self) -> str:
        """The name as people write it: ``unknown_ca``."""
        return self.name.lower()

    @property
    def number(self) -> int:
        return self.value

    @classmethod
    def from_label(cls, label: str) -> Alert:
        return cls[label.upper()]


_REASON = re.compile(r"(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z_]+)")
_REASON_FIXES = {"USER_CANCELLED": "USER_CANCELED", "BAD_CERTIFICATE_STATUS_RESPONSE": "BAD_CERTIFICATE"}


def received_alert(exc: BaseException) -> Alert | None:
    """The alert the peer sent, if ``exc`` (or an exception it was raised from) reports one."""
    for current in causes(exc):
        text = getattr(current, "reason", None) or ""
        match = _REASON.search(str(text)) or _REASON.search(str(current).upper().replace(" ", "_"))
        if match:
            name = _REASON_FIXES.get(match.group(1), match.group(1))
            if name in Alert.__members__:
                return Alert[name]
    return None


# OpenSSL's ssl_x509err2alert() (ssl/statem/statem_lib.c): the alert a verifier sends for an X509_V_ERR_*
# code; a code not listed there gets certificate_unknown.
_VERIFY_ALERTS = {
    2: Alert.UNKNOWN_CA,  # unable to get issuer certificate
    7: Alert.DECRYPT_ERROR,  # certificate signature failure
    9: Alert.BAD_CERTIFICATE,  # certificate is not yet valid
    10: Alert.CERTIFICATE_EXPIRED,
    13: Alert.BAD_CERTIFICATE,  # format error in notBefore
    14: Alert.BAD_CERTIFICATE,  # format error in notAfter
    18: Alert.UNKNOWN_CA,  # self-signed certificate
    19: Alert.UNKNOWN_CA,  # self-signed certificate in chain
    20: Alert.UNKNOWN_CA,  # unable to get local issuer certificate
    21: Alert.UNKNOWN_CA,  # unable to verify the first certificate
    23: Alert.CERTIFICATE_REVOKED,
    26: Alert.UNSUPPORTED_CERTIFICATE,  # unsuitable certificate purpose (EKU)
    27: Alert.BAD_CERTIFICATE,  # certificate not trusted
    28: Alert.BAD_CERTIFICATE,  # certificate rejected
}


# OpenSSL's reason for a failed connection -> the alert OpenSSL sends with it (SSLfatal calls in ssl/), as
# measured against the lab server and openssl s_server alike (tests/test_alert_truth.py)
_REASON_ALERTS = {
    "UNSUPPORTED_PROTOCOL": Alert.PROTOCOL_VERSION,
    "NO_SHARED_CIPHER": Alert.HANDSHAKE_FAILURE,
    "NO_SUITABLE_SIGNATURE_ALGORITHM": Alert.HANDSHAKE_FAILURE,
    "BAD_SIGNATURE": Alert.DECRYPT_ERROR,
    "DIGEST_CHECK_FAILED": Alert.DECRYPT_ERROR,
    "WRONG_SIGNATURE_TYPE": Alert.ILLEGAL_PARAMETER,
    "UNKNOWN_ALERT_TYPE": Alert.ILLEGAL_PARAMETER,
    "LENGTH_MISMATCH": Alert.DECODE_ERROR,
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": Alert.BAD_RECORD_MAC,
    "INVALID_ALERT": Alert.UNEXPECTED_MESSAGE,
    "UNEXPECTED_MESSAGE": Alert.UNEXPECTED_MESSAGE,
    "UNEXPECTED_RECORD": Alert.UNEXPECTED_MESSAGE,
    "BAD_RECORD_TYPE": Alert.UNEXPECTED_MESSAGE,
    "CCS_RECEIVED_EARLY": Alert.UNEXPECTED_MESSAGE,
}


def sent_alert(exc: ssl.SSLError, tls_version: str | None = None) -> Alert | None:
    """The alert OpenSSL is expected to send with ``exc``, from its reason: a fallback only.

    The lab's server names the alert OpenSSL really wrote (``mtls_lab.server._tls_watch``) and uses this
    table only when it could not watch the connection. The table cannot know everything: a first record
    that does not look like TLS at all (``WRONG_VERSION_NUMBER``) gets no alert, a later one
    ``protocol_version``; it says None for both.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_ALERTS.get(exc.verify_code or 0, Alert.CERTIFICATE_UNKNOWN)
    reason = exc.reason or ""
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return Alert.CERTIFICATE_REQUIRED if tls_version == "TLSv1.3" else Alert.HANDSHAKE_FAILURE
    return _REASON_ALERTS.get(reason)
