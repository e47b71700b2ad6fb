"""The reference endpoint: a custom-action target that authorizes by client certificate, and lab routes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtls_lab.certs.inspect import CertFacts, normalize_fingerprint
from mtls_lab.certs.layout import ADOBE_CN, LabPaths
from mtls_lab.server import per_path
from mtls_lab.server.body import BodyEnd, answer_timed_out, note_disconnected, read_body
from mtls_lab.server.entries import accepted_answer, denied_answer, request_line
from mtls_lab.server.forwarded import trusted
from mtls_lab.server.idp import PATH as IDP_PATH
from mtls_lab.server.idp import IdentityProvider
from mtls_lab.server.loaded import LoadedServer
from mtls_lab.server.record import CallRecord, Query
from mtls_lab.server.settings import Mode
from mtls_lab.server.state import ConnectionState, TLSFacts, lab_state
from mtls_lab.server.styles import forwarded_facts, gate
from mtls_lab.server.tokens import TokenIssuer, endpoints
from mtls_lab.vocabulary import AdobeChain, Reason

logger = logging.getLogger("mtls_lab.server")

LAB_PREFIX = "/_lab/"
UNRECORDED = {"/_lab/health", "/_lab/calls"}
RECORD_FAILED = (b"x-lab-record", b"failed")  # the call was answered but could not be written to the record
Handler = Callable[[Request], Awaitable[Response]]
ADOBE_ROOTS = AdobeChain.ROOTS


@dataclass(frozen=True)
class Denial:
    """Why the target refuses the call (403, or 401 for a missing token): a reason code, what happened, the fix."""

    reason: Reason
    message: str
    fix: str
    status: int = 403


def authorize(facts: TLSFacts, server: LoadedServer) -> Denial | None:
    """None if the call is authorized, otherwise the Denial that explains the 403."""
    cert, cfg = facts.client_cert, server.config
    if cert is None:
        return _no_certificate(server)
    if cfg.allow_cn and not cert.identity_names() & set(cfg.allow_cn):
        return _not_allowed(cert, cfg.allow_cn)
    if server.pins and cert.sha256 not in server.pins:
        return Denial(
            Reason.FINGERPRINT_NOT_PINNED,
            f"The client certificate is trusted and its name is allowed, but its SHA-256 fingerprint "
            f"{cert.sha256} is not pinned. Adobe reissues its certificate 60 days before it expires (13 months "
            "today, shortening toward 47 days; the old and new ones overlap) and does not notify customers, so a "
            "pinned leaf breaks at the next rotation.",
            f"Server side: do not pin Adobe's leaf; trust Adobe's CA chain up to {ADOBE_ROOTS}, as Adobe advises.",
        )
    return None


def _not_allowed(cert: CertFacts, allowed: tuple[str, ...]) -> Denial:
    """The 403 of an app that authorizes only certain certificate identities: what it wanted, what it got."""
    got = f"subject {cert.subject}" + (f", SAN DNS {', '.join(cert.dns_names)}" if cert.dns_names else ", no SAN")
    matched = "its SAN" if cert.dns_names else "its CN (it has no DNS SAN)"
    return Denial(
        Reason.SUBJECT_NOT_ALLOWED,
        f"The client certificate is trusted, but this route authorizes only {', '.join(allowed)} (wanted), and the "
        f"caller presented {got} (got). Names are matched SAN first, as RFC 2818 says: {matched} was compared. AJO "
        "presents only Adobe's certificate: it cannot present your company's or a partner's.",
        f"Server side, one of two: allow Adobe's identity on this route by its SAN {ADOBE_CN} (matched before the "
        "CN, RFC 2818), or authenticate AJO another way on this route: custom authorization (a token from your "
        "token endpoint) or certificate-based authentication (a token from your identity provider, which holds "
        "Adobe's registered leaf).",
    )


def _no_certificate(server: LoadedServer) -> Denial:
    mode = server.config.mode
    if mode is Mode.TLS:
        return Denial(
            Reason.NO_CLIENT_CERTIFICATE,
            "No client certificate: this endpoint runs TLS only, so its TLS layer never asked the caller "
            "for a certificate, and AJO sends its certificate only when asked. The app wants an identity "
            "that the TLS layer was never configured to collect.",
            f"Server side: enable mTLS (require a client certificate) and trust Adobe's CA chain up to {ADOBE_ROOTS}.",
        )
    advertised = "; ".join(server.advertised) or "no CA names"
    if server.config.client_cert_paths:
        paths = ", ".join(server.config.client_cert_paths)
        return Denial(
            Reason.NO_CLIENT_CERTIFICATE,
            f"No client certificate: this endpoint asks for one only after the handshake, for requests under {paths} "
            "(as Apache's SSLVerifyClient inside <Location>), and this call had another path, or sent none when "
            f"asked. It advertised: {advertised}.",
            f"Server side: require the client certificate in the handshake, for every path (at the virtual host), "
            f"trusting Adobe's CA chain ({ADOBE_ROOTS}); Adobe asks for mTLS-only endpoints.",
        )
    return Denial(
        Reason.NO_CLIENT_CERTIFICATE,
        "No client certificate: the server asked for one optionally and the caller sent none. A Java "
        "client such as AJO sends its certificate only when the server names no CAs or names an issuer "
        f"of its chain; this server advertised: {advertised}.",
        f"Server side: trust and advertise Adobe's CA chain ({ADOBE_ROOTS}); Adobe asks for mTLS-only endpoints.",
    )


def seen(facts: TLSFacts, server: LoadedServer) -> dict[str, Any]:
    """What the server saw, for response bodies."""
    cert = facts.client_cert
    return {
        "mode": server.config.mode.value,
        "tls_version": facts.version,
        "cipher": facts.cipher,
        "client_certificate_presented": cert is not None,
        "ssl_client_verify": facts.verification.nginx_variable,
        "subject": cert.subject if cert else None,
        "issuer": cert.issuer if cert else None,
        "sha256": cert.sha256 if cert else None,
        "dns_names": list(cert.dns_names) if cert else [],
        "advertised_ca_names": list(server.advertised),
        "allow_cn": list(server.config.allow_cn),
        "pinned": len(server.pins),
    }


class Route:
    """One row of the route table: a path, the handler, the methods it answers (GET also answers HEAD).

    The path is exact (``/_lab/health``), or a prefix written with a final path parameter, Starlette's way
    (``/_lab/{rest:path}`` matches everything under ``/_lab/``). Rows are tried in order: the first whose
    path and method match answers; a path that matches with another method gets 405 (as Starlette's router).
    """

    __slots__ = ("allow", "endpoint", "exact", "methods", "prefix")

    def __init__(self, path: str, endpoint: Handler, methods: Sequence[str]) -> None:
        self.exact: str | None
        self.prefix: str | None
        if path.endswith(":path}") and path.count("{") == 1:
            self.exact, self.prefix = None, path[: path.index("{")]
        elif "{" in path:
            raise ValueError(f"route {path}: only exact paths and a final {{name:path}} are supported")
        else:
            self.exact, self.prefix = path, None
        upper = [m.upper() for m in methods]
        if "GET" in upper and "HEAD" not in upper:
            upper.insert(upper.index("GET") + 1, "HEAD")
        self.methods = frozenset(upper)
        self.allow = ", ".join(upper)
        self.endpoint = endpoint

    def matches(self, path: str) -> bool:
        return path == self.exact if self.prefix is None else path.startswith(self.prefix)


def _dispatch(routes: Sequence[Route], request: Request) -> Awaitable[Response]:
    method, path = request.scope["method"], request.scope["path"]
    partial: Route | None = None
    for route in routes:
        if route.matches(path):
            if method in route.methods:
                return route.endpoint(request)
            partial = partial or route
    return _method_not_allowed(partial)


async def _method_not_allowed(route: Route | None) -> Response:
    if route is None:  # the route table ends with a catch-all: not reached
        return PlainTextResponse("Not Found", status_code=404)
    return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": route.allow})


def create_app(server: LoadedServer, record: CallRecord) -> ASGIApp:
    """The ASGI app of the reference server: the route table behind the recorder (``LabApp``)."""
    issuer = TokenIssuer.of_lab(LabPaths(server.config.certs))
    idp = IdentityProvider(server.idp_certs, server.config.idp_audience, issuer)
    answers = _Answers(server)

    async def target(request: Request) -> Response:
        state = lab_state(request.scope)
        if server.config.client_cert_paths:  # asked after the handshake, for these paths (Apache's <Location>)
            late = await per_path.ask_if_needed(request, state, server)
            if late is not None:
                return late
            request.scope.setdefault("extensions", {})["tls"] = state.tls_extension or {}
        facts = state.request_facts = forwarded_facts(request, state.tls, server)  # what the record keeps
        answer = gate(request, facts, server)
        if answer is not None:
            return answer
        denial = None
        if server.config.authorize.certificate:
            denial = _not_forwarded(request, server) if facts.client_cert is None else None
            denial = denial or answers.authorized(state, facts)
        if denial is None and server.config.authorize.token:
            denial = token_denial(request, issuer)
        state.reason = denial.reason if denial else None
        if server.config.answer_delay:  # a slow endpoint: what an answer deadline (a sender's, a journey's) meets
            await asyncio.sleep(server.config.answer_delay)
        if denial is not None:
            return answers.denied(state, facts, denial)
        payload = await request.body()
        received = {"method": request.method, "path": _url_path(request), "body": _json_or_text(payload)}
        return answers.accepted(state, facts, _bearer(request, issuer), received)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "mode": server.config.mode.value,
                "record_errors": record.write_errors,
            }
        )

    async def calls(request: Request) -> Response:
        try:
            limit, query = _calls_query(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"calls": record.newest(limit, query)})

    async def lab_not_found(request: Request) -> Response:
        return JSONResponse({"error": f"no lab route {request.url.path}"}, status_code=404)

    routes = [
        Route("/_lab/health", health, methods=["GET"]),
        Route("/_lab/calls", calls, methods=["GET"]),
        *(Route(path, handler, methods=["GET", "POST"]) for path, handler in endpoints(issuer).items()),
        Route(IDP_PATH, idp.token, methods=["POST"]),
        Route("/_lab/{rest:path}", lab_not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route("/{path:path}", target, methods=["GET", "POST", "PUT"]),
    ]
    return LabApp(routes, server, record)


class _Answers:
    """The target's answers, with what is the same for every request of a connection encoded once.

    ``seen`` and the authorization depend only on the connection's TLS facts, so they are kept on the
    connection's state (``ConnectionState.encoded_for``); ``entries`` encodes the bodies, the bytes
    ``JSONResponse`` writes.
    """

    def __init__(self, server: LoadedServer) -> None:
        self.server = server

    def authorized(self, state: ConnectionState, facts: TLSFacts) -> Denial | None:
        encoded = state.encoded_for(facts)
        if not encoded.authorized:
            encoded.denial, encoded.authorized = authorize(facts, self.server), True
        return encoded.denial  # type: ignore[no-any-return]

    def denied(self, state: ConnectionState, facts: TLSFacts, denial: Denial) -> Response:
        body = {"reason": denial.reason, "message": denial.message, "fix": denial.fix}
        text = denied_answer(state, facts, body, lambda: seen(facts, self.server))
        headers = (
            {"WWW-Authenticate": 'Bearer realm="mtls-lab", error="invalid_token"'} if denial.status == 401 else None
        )
        return Response(text, status_code=denial.status, headers=headers, media_type="application/json")

    def accepted(
        self, state: ConnectionState, facts: TLSFacts, bearer: str | None, received: dict[str, Any]
    ) -> Response:
        text = accepted_answer(state, facts, bearer, received, lambda: seen(facts, self.server))
        return Response(text, status_code=200, media_type="application/json")


_YES, _NO = {"1", "true", "yes"}, {"", "0", "false", "no"}


_KINDS = ("connection", "request")


def _calls_query(request: Request) -> tuple[int, Query]:
    """``/_lab/calls?limit=N&kind=connection|request&rejected=1&fingerprint=SHA256``, or ``last=request``
    (``kind=request&limit=1``: the newest request, which ``limit=1`` alone is not when a connection closed
    after it) (docs/reference/record.md)."""
    params = request.query_params
    last = params.get("last") or None
    if last is not None:
        if last not in _KINDS:
            raise ValueError("last must be request or connection")
        if "kind" in params or "limit" in params:
            raise ValueError(f"last={last} is kind={last}&limit=1: give last, or kind and limit, not both")
    try:
        limit = 1 if last else max(0, min(int(params.get("limit", "100")), 10_000))
    except ValueError:
        raise ValueError("limit must be an integer") from None
    kind = last or params.get("kind") or None
    if kind not in (None, *_KINDS):
        raise ValueError("kind must be connection or request")
    rejected = params.get("rejected", "").lower()
    if rejected not in _YES | _NO:
        raise ValueError("rejected must be 1 or 0")
    fingerprint = params.get("fingerprint") or None
    if fingerprint is not None:
        try:
            fingerprint = normalize_fingerprint(fingerprint)
        except ValueError as exc:
            raise ValueError(f"fingerprint: {exc}") from None
    return limit, Query(kind=kind, rejected=rejected in _YES, fingerprint=fingerprint)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    lab_state(scope).reason = Reason.BODY_TOO_LARGE
    response = JSONResponse(
        {"reason": Reason.BODY_TOO_LARGE, "message": f"The request body exceeds {limit} bytes."}, status_code=413
    )
    await response(scope, receive, send)


def _not_forwarded(request: Request, server: LoadedServer) -> Denial | None:
    """The 403 of a proxy that terminates TLS but does not forward the client certificate."""
    name = server.config.client_cert_header
    client = request.client.host if request.client else None
    if name is None or not trusted(client, server.config.trusted_proxies):
        return None
    return Denial(
        Reason.CLIENT_CERT_NOT_FORWARDED,
        f"The call came through the proxy {client}, which terminates TLS, but without the {name} header: the "
        "proxy did not forward the client certificate (or did not get one), so the app cannot see who called.",
        f"Proxy side: forward the verified client certificate in {name} (nginx: proxy_set_header {name} "
        "$ssl_client_escaped_cert; Envoy: forward_client_cert_details; AWS ALB: mTLS verify or passthrough mode).",
    )


def token_denial(request: Request, issuer: TokenIssuer) -> Denial | None:
    """None if the call carries a valid token from a lab token endpoint, else the 401 that explains why not."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return Denial(
            Reason.TOKEN_MISSING,
            "This endpoint authorizes callers by an access token, and the call carries no Authorization: Bearer.",
            "Caller side: configure the action's authentication (custom authorization, or certificate-based "
            "authentication with subType certificateCredential) so that AJO fetches a token and sends it.",
            status=401,
        )
    problem = issuer.verify(header[7:].strip())
    if problem is None:
        return None
    return Denial(
        Reason.TOKEN_INVALID,
        f"The call's bearer token was refused: {problem}.",
        "Caller side: take the token from the token endpoint this API trusts; check tokenInResponse and "
        "cacheDuration (Adobe: leave a minute between the token's expiry and cacheDuration).",
        status=401,
    )


def _bearer(request: Request, issuer: TokenIssuer) -> str | None:
    """Whether the call carries a token a lab token endpoint issued (the custom-authorization flow), for the echo."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return "issued by this lab" if issuer.verify(header[7:].strip()) is None else "unknown to this lab"


_URL_CHANGES = frozenset("?#\\\t\r\n")  # what Starlette's URL escapes or urlsplit drops in a path


def _url_path(request: Request) -> str:
    """``request.url.path`` without building the URL when it is the scope's path unchanged (nearly always)."""
    path: str = request.scope["path"]
    if path.startswith("/") and not path.startswith("//") and _URL_CHANGES.isdisjoint(path):
        return path
    return request.url.path


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


class LabApp:
    """The ASGI app: records every request that reaches it (except the lab's read-only routes) as one line,
    with the ``connection_id`` of its connection (whose own entry ``mtls_lab.server.connections`` writes),
    and answers it from the route table.

    One plain ASGI callable instead of Starlette's application and middleware stack: a request costs
    one call here and one in its handler. What the stack did is done here: the route table's 405s, and
    an exception's 500 (Starlette's ``ServerErrorMiddleware``: "Internal Server Error", then re-raised).
    """

    def __init__(self, routes: Sequence[Route], server: LoadedServer, record: CallRecord) -> None:
        self.routes, self.server, self.record = tuple(routes), server, record
        self.mode = server.config.mode.value
        self.quiet = server.config.quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # no websocket route: closed, as Starlette's router does
                await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        state = lab_state(scope)
        state.begin_request()
        if scope["path"] in UNRECORDED:
            state.lab_requests += 1
            await self._answer(scope, receive, send)
            return
        cfg = self.server.config
        body = await read_body(receive, cfg.max_body, cfg.body_timeout)
        payload, size = body.kept, body.size
        kept = payload[: cfg.record_body_limit]
        status = 0
        written = False
        replayed = False

        async def replay() -> Message:
            # the app gets the body it would have read; the record already holds it, read in full
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send_and_note(message: Message) -> None:
            nonlocal status, written
            if message["type"] == "http.response.start" and not written:
                # record before the answer leaves, so a client that has its answer finds the call recorded,
                # and a record that could not be written shows in the answer (and in /_lab/health)
                status, written = message["status"], True
                if not self._write(scope, kept, size, status):
                    message = {**message, "headers": [*message.get("headers", []), RECORD_FAILED]}
            await send(message)

        try:
            if body.end is BodyEnd.DISCONNECTED:
                status = note_disconnected(scope)
            elif body.end is BodyEnd.TIMED_OUT:
                await answer_timed_out(scope, replay, send_and_note, cfg.body_timeout, size)
            elif size > len(payload):
                await _too_large(scope, replay, send_and_note, cfg.max_body)
            else:
                await self._answer(scope, replay, send_and_note)
        finally:
            if not written:  # the app failed or the client left: the call is still recorded
                self._write(scope, kept, size, status)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            response = await _dispatch(self.routes, Request(scope, receive))
            await response(scope, receive, noting_send)
        except Exception:
            if not started:
                await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise

    def _write(self, scope: Scope, body: bytes, size: int, status: int) -> bool:
        state = lab_state(scope)
        facts, reason = state.judged_by, state.reason
        state.requests += 1
        ok = self.record.append_line(request_line(state, facts, self.mode, scope, body, size, status))
        if not self.quiet:
            subject = facts.client_cert.subject if facts.client_cert else "no client certificate"
            logger.info(
                "%s %s -> %s%s (%s, %s)",
                scope["method"],
                scope["path"],
                status or 500,
                f" {reason}" if reason else "",
                facts.version,
                subject,
            )
        return ok


__all__ = ["Denial", "LabApp", "Route", "authorize", "create_app"]
