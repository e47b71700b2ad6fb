"""The client certificate asked for after the handshake, for some paths only (``serve --client-cert-paths``), as
Apache's mod_ssl does for ``SSLVerifyClient`` inside ``<Location>`` (measured: docs/server-stacks.md).

The handshake asks for nothing. A request under one of the paths, on a connection without a client
certificate, makes the server ask now (``server/_late_request.py``): on TLS 1.2 it renegotiates
(HelloRequest), on TLS 1.3 it requests post-handshake authentication (RFC 8446 4.6.2), which the client
must have offered in its ClientHello (``post_handshake_auth``). What follows is Apache's, measured with
Debian's Apache 2.4 and OpenSSL 3.0:

- TLS 1.3, the client offered no post-handshake auth (JDK 17, AJO's sender): HTTP 403 with Apache's page
  "Reason: Cannot perform Post-Handshake Authentication.", the connection kept alive; Apache's error log
  says ``AH10158: cannot perform post-handshake authentication`` and OpenSSL's
  ``error:0A000117:SSL routines::extension not received``, its access log ``403 TLSv1.3 -``;
- no certificate when required: alert ``handshake_failure`` (TLS 1.2) or ``certificate_required`` (TLS 1.3);
  a certificate that does not verify: OpenSSL's alert (``unknown_ca``, ``certificate_expired``...); the
  connection ends, and the request is recorded with 403 (Apache's access log: ``403 - -``);
- a certificate that verifies: the request goes on, judged by the app as every other (allow-list, pins).

Each request that made the server ask carries ``asked_after_handshake`` in its record entry (the path rule,
how it asked, whether the client had offered post-handshake auth, what came back), and the connection's
entry lists every such request (docs/reference/record.md).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mtls_lab.server._late_request import LateAnswer
from mtls_lab.server.loaded import LoadedServer
from mtls_lab.server.settings import Mode
from mtls_lab.server.state import ConnectionState
from mtls_lab.vocabulary import Reason

logger = logging.getLogger("mtls_lab.server")

# Apache 2.4's 403 page with mod_ssl's error note, byte for byte (298 bytes, as Apache's Content-Length)
APACHE_NO_PHA_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
    "<html><head>\n<title>403 Forbidden</title>\n</head><body>\n<h1>Forbidden</h1>\n"
    "<p>You don't have permission to access this resource.Reason: Cannot perform Post-Handshake "
    "Authentication.<br /></p>\n</body></html>\n"
)
APACHE_LOG = "AH10158: cannot perform post-handshake authentication"
_ENDED = {LateAnswer.REJECTED, LateAnswer.CLOSED, LateAnswer.TIMED_OUT}


def rule_for(path: str, rules: tuple[str, ...]) -> str | None:
    """The ``--client-cert-paths`` rule that covers ``path``: the rule itself and everything under it."""
    for rule in rules:
        base = rule.rstrip("/")
        if path in (rule, base) or path.startswith(base + "/"):
            return rule
    return None


async def ask_if_needed(request: Request, state: ConnectionState, server: LoadedServer) -> Response | None:
    """For a request under ``--client-cert-paths`` on a connection without a client certificate: ask for it now.

    Returns the answer that ends the request (Apache's 403, or a 403 that cannot leave because the connection
    ended), or None to go on (the certificate arrived, or the optional request brought none)."""
    config = server.config
    rule = rule_for(request.scope["path"], config.client_cert_paths) if config.client_cert_paths else None
    if rule is None or state.tls.client_cert is not None or state.late_request is None:
        return None
    required = config.mode is Mode.MTLS
    result = await state.late_request(required=required, timeout=config.handshake_timeout)
    asked = {
        "path_rule": rule,
        "method": result.method,
        "required": required,
        "post_handshake_auth_offered": result.offered,
        "answer": result.answer.value,
        "error": result.error,
    }
    state.asked_after_handshake.append({"path": request.scope["path"], **asked})
    state.late_asked = asked
    _log(request, asked)
    if result.answer is LateAnswer.NOT_OFFERED:
        state.reason = Reason.APACHE_POST_HANDSHAKE_AUTH
        return Response(APACHE_NO_PHA_PAGE, status_code=403, media_type="text/html; charset=iso-8859-1")
    if result.answer in _ENDED:
        state.reason = Reason.LATE_CERTIFICATE_FAILED  # recorded; the answer never leaves: the connection is gone
        return PlainTextResponse("Forbidden", status_code=403)
    return None


def _log(request: Request, asked: dict[str, Any]) -> None:
    client = request.client
    where = f"{client.host}:{client.port}" if client else "?"
    path, answer, method = request.scope["path"], asked["answer"], asked["method"].replace("_", "-")
    if answer == LateAnswer.NOT_OFFERED.value:
        logger.warning(
            "client certificate asked for %s after the handshake, from %s: the client offered no "
            "post-handshake authentication (TLS 1.3), answered Apache's 403 'Cannot perform Post-Handshake "
            "Authentication' (Apache logs %s; OpenSSL: %s)",
            path,
            where,
            APACHE_LOG,
            asked["error"],
        )
    elif answer in {a.value for a in _ENDED}:
        logger.warning(
            "client certificate asked for %s after the handshake (%s), from %s: %s (%s)",
            path,
            method,
            where,
            answer.replace("_", " "),
            asked["error"],
        )
    else:
        logger.info(
            "client certificate asked for %s after the handshake (%s), from %s: %s", path, method, where, answer
        )
