"""The faces of a rejection: how nginx, gateways and proxies answer what an OpenSSL server answers with alerts.

``gate`` runs before authorization. With the ``alert`` style it has nothing to do (OpenSSL already
refused bad certificates in the handshake). With ``nginx`` and ``gateway`` the handshake accepted any
certificate, and ``gate`` answers as those systems do (docs/ground-truth.md). ``forwarded_facts``
replaces the TLS facts with the certificate a trusted front proxy forwarded in a header.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from mtls_lab.certs.inspect import CertFacts
from mtls_lab.server.forwarded import HeaderError, parse_client_cert_header, trusted
from mtls_lab.server.loaded import LoadedServer
from mtls_lab.server.settings import Mode, RejectStyle
from mtls_lab.server.state import TLSFacts, lab_state
from mtls_lab.server.verify import ClientVerification
from mtls_lab.vocabulary import Reason

logger = logging.getLogger("mtls_lab.server")

NGINX_NO_CERT = "No required SSL certificate was sent"
NGINX_BAD_CERT = "The SSL certificate error"
# AWS API Gateway's log reasons for mTLS denials
GATEWAY_REASONS = {
    "unable to get local issuer certificate": "Could not find issuer for certificate",
    "self-signed certificate": "Could not find issuer for certificate",
    "certificate has expired": "Certificate has expired",
    "certificate is not yet valid": "Certificate is not yet valid",
    "unsuitable certificate purpose": "Certificate is not valid for client authentication",
}


def nginx_page(title: str) -> HTMLResponse:
    """nginx's own error page (ngx_http_special_response.c), byte for byte apart from the version."""
    body = (
        f"<html>\r\n<head><title>400 {title}</title></head>\r\n<body>\r\n"
        f"<center><h1>400 Bad Request</h1></center>\r\n<center>{title}</center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return HTMLResponse(body, status_code=400)


def gate(request: Request, facts: TLSFacts, server: LoadedServer) -> Response | None:
    """The nginx or gateway answer to a missing or unverified certificate; None to go on to authorization."""
    style, mode, verdict = server.config.reject_style, server.config.mode, facts.verification
    if style is RejectStyle.ALERT or mode is Mode.TLS or verdict.status == "SUCCESS":
        return None
    if style is RejectStyle.NGINX:
        if verdict.status == "FAILED":
            lab_state(request.scope).reason = Reason.NGINX_CERTIFICATE_ERROR
            logger.info("client SSL certificate verify error: (%s) %s", verdict.code, verdict.reason)
            return nginx_page(NGINX_BAD_CERT)
        if mode is Mode.MTLS:
            lab_state(request.scope).reason = Reason.NGINX_NO_CERTIFICATE
            logger.info("client sent no required SSL certificate while reading client request headers")
            return nginx_page(NGINX_NO_CERT)
        return None  # optional and absent: the app decides ($ssl_client_verify = NONE)
    return _gateway_denial(request, verdict)


def _gateway_denial(request: Request, verdict: ClientVerification) -> Response:
    if verdict.status == "NONE":
        why, reason, code = (
            "No client certificate presented",
            "no_client_certificate",
            Reason.GATEWAY_NO_CLIENT_CERTIFICATE,
        )
    else:
        why, reason = GATEWAY_REASONS.get(verdict.reason, verdict.reason), "untrusted_client_certificate"
        code = Reason.GATEWAY_UNTRUSTED_CLIENT_CERTIFICATE
    lab_state(request.scope).reason = code
    logger.info("Access denied. Reason: %s", why)
    diagnostic = {
        "reason": reason,
        "message": f"The gateway denied the call before the app: {why}.",
        "ssl_client_verify": verdict.nginx_variable,
    }
    return JSONResponse({"message": "Forbidden", "mtls_lab": diagnostic}, status_code=403)


def forwarded_facts(request: Request, facts: TLSFacts, server: LoadedServer) -> TLSFacts:
    """The client certificate a trusted proxy forwarded, in place of the TLS facts of the proxy's connection."""
    name = server.config.client_cert_header
    if name is None:
        return facts
    client = request.client.host if request.client else None
    value = request.headers.get(name)
    if not trusted(client, server.config.trusted_proxies):
        if value is not None:
            logger.warning("ignored %s header from %s: not a --trusted-proxy address", name, client)
        return replace(facts, client_cert=None, client_cert_der=None, verification=ClientVerification("NONE"))
    if value is None:
        return replace(facts, client_cert=None, client_cert_der=None, verification=ClientVerification("NONE"))
    try:
        chain = parse_client_cert_header(name, value)
    except HeaderError as exc:
        logger.warning("unreadable %s header from %s: %s", name, client, exc)
        return replace(facts, client_cert=None, client_cert_der=None, verification=ClientVerification("NONE"))
    return replace(
        facts, client_cert=CertFacts.of(chain[0]), client_cert_der=None, verification=ClientVerification("SUCCESS")
    )
