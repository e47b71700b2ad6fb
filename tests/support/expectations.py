"""What real peers do, written down once (docs/ground-truth.md), for every test that compares with them.

Outcomes are written as a client sees them: ``alert:<name>`` or ``http:<status>``. The identity
``adobe-leaf`` is the ``adobe`` identity presenting its leaf without the intermediate.
"""

from __future__ import annotations

# An OpenSSL server that trusts (and names) the Adobe-like root, when a client presents this chain;
# the same on TLS 1.2 and 1.3 (TLS 1.3 reports it after the client's handshake, on its first read).
OPENSSL_SERVER_ANSWERS = {
    "adobe": "http:200",
    "adobe-rotated": "http:200",
    "adobe-next": "alert:unknown_ca",
    "impostor": "alert:unknown_ca",
    "expired": "alert:certificate_expired",
    "not-yet-valid": "alert:bad_certificate",
    "no-client-auth": "alert:unsupported_certificate",
    "self-signed": "alert:unknown_ca",
    "adobe-leaf": "alert:unknown_ca",
}
PRESENTED = list(OPENSSL_SERVER_ANSWERS)  # every chain a test can present ("none" is presenting nothing)

# A server that requires a certificate and gets none (or an empty Certificate message), by TLS version.
NO_CERTIFICATE = {"1.2": "alert:handshake_failure", "1.3": "alert:certificate_required"}

# The chains whose issuers include the Adobe-like root: a JDK client (AJO, the Java model) sends them to
# a server that names that root, and sends an empty Certificate for the others.
JAVA_SENDS_WHEN_ROOT_NAMED = {"adobe", "adobe-rotated", "expired", "not-yet-valid", "no-client-auth"}


def lab_identity(who: str) -> tuple[str, str]:
    """The caller's (identity, chain) for a presented chain's name."""
    return ("adobe", "leaf") if who == "adobe-leaf" else (who, "full")


def lab_server_answer(mode: str, tls: str, who: str | None) -> str:
    """What the lab server (which must answer like an OpenSSL server) gives a client presenting ``who``.

    ``mode`` is ``tls``, ``mixed`` or ``mtls``; ``who`` None means no certificate went out.
    """
    if mode == "tls":
        return "http:403"  # never asked: no certificate reaches the app, which wants one
    if who is None:
        return "http:403" if mode == "mixed" else NO_CERTIFICATE[tls]
    return OPENSSL_SERVER_ANSWERS[who]
