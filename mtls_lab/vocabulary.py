"""The words server, caller, lifecycle and report share: one definition each.

- ``Reason``: the reason codes the lab server writes in its answers' bodies and in the record, and that
  the caller reads back (``caller/verdict.py``). Their values are the wire format: never rename one.
- Adobe's chains: the names of the CA certificates Adobe's client certificate chains to, today and in the
  2026-2027 migration (docs/adobe-facts.md cites Adobe's pages).
- AJO's limits for a custom action's call: the timeout's bounds and the retries (docs/adobe-facts.md).
- The lab's default ports.
- ``short_answer``: the one short form of an answer ("HTTP 403", "alert bad_certificate", ...), used by the
  terminal, the probe, the stacks table and the report.

No heavy imports: the CLI's parser may import this module.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why the lab server answered as it did: the ``reason`` of a 4xx body and of a request's record entry."""

    # the custom-action target (server/app.py)
    NO_CLIENT_CERTIFICATE = "no_client_certificate"
    SUBJECT_NOT_ALLOWED = "subject_not_allowed"
    FINGERPRINT_NOT_PINNED = "fingerprint_not_pinned"
    CLIENT_CERT_NOT_FORWARDED = "client_cert_not_forwarded"
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    # the faces of a rejection (server/styles.py): nginx's 400 pages, a gateway's 403
    NGINX_CERTIFICATE_ERROR = "nginx_certificate_error"
    NGINX_NO_CERTIFICATE = "nginx_no_certificate"
    GATEWAY_NO_CLIENT_CERTIFICATE = "gateway_no_client_certificate"
    GATEWAY_UNTRUSTED_CLIENT_CERTIFICATE = "gateway_untrusted_client_certificate"
    # the certificate asked for after the handshake, for some paths only (server/per_path.py): Apache's 403 when
    # TLS 1.3's post-handshake authentication was not offered (mod_ssl; the caller names Apache's page so),
    # and a request whose connection ended while the certificate was asked for (an alert, a close, a timeout)
    APACHE_POST_HANDSHAKE_AUTH = "apache_post_handshake_auth"
    LATE_CERTIFICATE_FAILED = "late_certificate_failed"
    # the request itself (server/body.py, server/app.py)
    BODY_TIMEOUT = "body_timeout"
    BODY_TOO_LARGE = "body_too_large"
    CLIENT_DISCONNECTED = "client_disconnected"


class AdobeChain:
    """The CA names of Adobe's client certificate chains (Adobe's mTLS and trust-chain migration pages)."""

    TODAY_ROOT = "DigiCert Global Root G2"
    TODAY_INTERMEDIATE = "DigiCert Global G2 TLS RSA SHA256 2020 CA1"
    MIGRATION_ROOT = "DigiCert Assured ID Root G2"
    MIGRATION_INTERMEDIATE = "DigiCert Assured ID Client CA G2"
    TODAY = f"{TODAY_ROOT} and the intermediate {TODAY_INTERMEDIATE}"
    MIGRATION = f"{MIGRATION_ROOT} and {MIGRATION_INTERMEDIATE}"
    ROOTS = f"{TODAY_ROOT} (and, for the 2026-2027 migration, {MIGRATION_ROOT})"


class AJOLimits:
    """AJO's runtime rules for a custom action's call (Adobe's custom-action pages, docs/adobe-facts.md)."""

    TIMEOUT_MIN = 1.0  # seconds: the journey's timeout is set between 1 and 30 s
    TIMEOUT_MAX = 30.0
    TIMEOUT_DEFAULT = 30.0
    MAX_RETRIES = 3  # up to 3 retries inside the timeout


LAB_PORT = 8443  # mtls-lab serve, the nginx config, the reproduce commands
ADOBE_API_PORT = 8447  # mtls-lab adobe-api, the public-certificate API stand-in


def short_answer(
    status: int | None = None, alert: str | None = None, reason: str | None = None, *, bare_status: bool = False
) -> str:
    """The one short form of an answer: ``HTTP 403``, ``HTTP 400 nginx_no_certificate``, ``alert x``, or ``""``.

    An HTTP status wins over an alert (an alert after an answer is not the answer); a reason code follows the
    status it explains. ``bare_status``: the status without ``HTTP`` (``403``, ``400 nginx_no_certificate``), the
    form of the measured stack table (``caller/stacks.py``) and of the matrix's expected results.
    """
    if status is not None:
        code = str(status) if bare_status else f"HTTP {status}"
        return f"{code} {reason}" if reason else code
    if alert:
        return f"alert {alert}"
    return ""
