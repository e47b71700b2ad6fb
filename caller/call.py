"""Replay a custom action the way AJO would: TLS identity, authentication, retries, redirects, verdict."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mtls_lab.caller._handshake_trace import HandshakeTrace
from mtls_lab.caller.action import Auth, CustomAction, Request, build_request
from mtls_lab.caller.tls import Chain, ClientBehavior, ClientIdentity, HandshakeNotes, client_context
from mtls_lab.caller.verdict import (
    Attempt,
    CallFacts,
    Classification,
    Outcome,
    Phase,
    Verdict,
    classify_response,
    classify_transport,
    jo_status_code,
    rejection_style,
)
from mtls_lab.certs.layout import LabPaths

NO_RETRY_STATUSES = frozenset({401, 403, 404})
MAX_RETRIES = 3
MAX_REDIRECTS = 5
USER_AGENT = {"User-Agent": "ajo-mtls-lab caller (models an Adobe Journey Optimizer custom action)"}
Clock = Callable[[], float]


@dataclass(frozen=True)
class CallOptions:
    """How to call: the TLS identity and behaviour, and AJO's runtime rules."""

    pki: LabPaths | None = None
    identity: ClientIdentity | None = None
    behavior: ClientBehavior = ClientBehavior.JAVA
    tls: str | None = None
    server_ca: Path | str | None = None
    path: str | None = None
    timeout: float | None = None  # default: the action's
    retries: int = MAX_RETRIES


@dataclass
class TokenCache:
    """Custom-authorization tokens, cached per endpoint and request for ``cacheSeconds`` (AJO: 1 hour)."""

    clock: Clock = time.monotonic
    fetches: int = 0
    _tokens: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def get(self, auth: Auth, fetch: Callable[[Auth], str]) -> str:
        key = (auth.endpoint, repr(sorted(auth.token_body.items())))
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        token = fetch(auth)
        self.fetches += 1
        self._tokens[key] = (token, self.clock() + auth.cache_seconds)
        return token


class TokenError(Exception):
    """The custom-authorization token call did not give a token."""


@dataclass
class _Trace:
    """What httpx's trace reports about the TLS connection of one attempt."""

    handshake_done: bool = False
    tls_version: str | None = None
    local_port: int | None = None

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            address = info["return_value"].get_extra_info("client_addr")
            self.local_port = address[1] if address else None
        if event == "connection.start_tls.complete":
            self.handshake_done = True
            ssl_object = info["return_value"].get_extra_info("ssl_object")
            self.tls_version = ssl_object.version() if ssl_object else None


def call(
    action: CustomAction,
    context: dict[str, Any],
    options: CallOptions,
    tokens: TokenCache | None = None,
    clock: Clock = time.monotonic,
) -> Verdict:
    """One journey step's call, with AJO's retries; returns a Verdict (raises only for misuse)."""
    request = build_request(action, context, options.path)
    tokens = tokens if tokens is not None else TokenCache(clock=clock)
    timeout = options.timeout or action.timeout
    deadline = clock() + timeout
    attempts: list[Attempt] = []
    while True:
        started = clock()
        result, trace, notes, handshake = _attempt(action, request, options, tokens, max(deadline - started, 0.01))
        attempts.append(
            Attempt(
                len(attempts) + 1,
                result.outcome.value,
                result.status,
                result.alert.label if result.alert else None,
                None if result.outcome in (Outcome.ACCEPTED, Outcome.HTTP_ERROR) else result.explanation,
                round(clock() - started, 4),
                trace.local_port,
            )
        )
        if not _should_retry(result, len(attempts), options.retries) or clock() >= deadline:
            break
    return _verdict(result, trace, notes, handshake, attempts, request, options, action)


def _attempt_error(result: Classification) -> str | None:
    if result.outcome in (Outcome.ACCEPTED, Outcome.HTTP_ERROR):
        return None
    return f"{result.outcome.value} in phase {result.phase.value}" + (
        f": alert {result.alert.label}" if result.alert else ""
    )


def _should_retry(result: Classification, done: int, retries: int) -> bool:
    if result.outcome is Outcome.ACCEPTED or done > retries:
        return False
    if result.outcome is Outcome.TIMEOUT and done == 1:
        return False  # AJO cancels a first call that exceeded the timeout and does not retry it
    return result.status not in NO_RETRY_STATUSES


def _attempt(
    action: CustomAction, request: Request, options: CallOptions, tokens: TokenCache, timeout: float
) -> tuple[Classification, _Trace, HandshakeNotes, HandshakeTrace]:
    notes, trace, handshake = HandshakeNotes(), _Trace(), HandshakeTrace()

    def facts() -> CallFacts:  # evaluated after the attempt, when trace and notes are filled in
        return _facts(options, trace, notes)

    context = client_context(options.pki, options.identity, options.behavior, options.tls, options.server_ca, notes)
    handshake.install(context)
    with httpx.Client(verify=context, timeout=timeout, follow_redirects=False, headers=USER_AGENT) as client:
        try:
            headers, params = _authenticate(action.auth, request, client, tokens, trace)
            response = _send(client, request, headers, params, trace)
        except TokenError as exc:
            return (
                Classification(
                    Outcome.HTTP_ERROR,
                    Phase.HTTP,
                    None,
                    str(exc),
                    "Caller side: check the custom authorization's endpoint, body and tokenPath.",
                ),
                trace,
                notes,
                handshake,
            )
        except httpx.TransportError as exc:
            return classify_transport(exc, facts()), trace, notes, handshake
        return classify_response(response, facts()), trace, notes, handshake


def _send(
    client: httpx.Client, request: Request, headers: dict[str, str], params: dict[str, str], trace: _Trace
) -> httpx.Response:
    """Send, following HTTP 302 redirects as AJO does (and no other redirect)."""
    url, method = request.url, request.method
    for _ in range(MAX_REDIRECTS + 1):
        response = client.request(
            method, url, headers=headers, params=params, json=request.json_body, extensions={"trace": trace}
        )
        if response.status_code != 302 or "location" not in response.headers:
            return response
        url = str(response.url.join(response.headers["location"]))
        params = {}
    return response


def _authenticate(
    auth: Auth, request: Request, client: httpx.Client, tokens: TokenCache, trace: _Trace
) -> tuple[dict[str, str], dict[str, str]]:
    headers, params = dict(request.headers), dict(request.params)
    if auth.kind == "basic":
        pair = f"{auth.username}:{auth.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif auth.kind == "apiKey":
        (headers if auth.location == "header" else params)[auth.key_name] = auth.key_value
    elif auth.kind == "customAuthorization":
        token = tokens.get(auth, lambda a: _fetch_token(a, client, trace))
        if auth.location == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        else:
            (headers if auth.location == "header" else params)[auth.key_name] = token
    return headers, params


def _fetch_token(auth: Auth, client: httpx.Client, trace: _Trace) -> str:
    body = auth.token_body if auth.token_method != "GET" else None
    response = client.request(
        auth.token_method, auth.endpoint, headers=auth.token_headers, json=body, extensions={"trace": trace}
    )
    if response.status_code // 100 != 2:
        raise TokenError(
            f"The custom-authorization token call to {auth.endpoint} answered HTTP {response.status_code}."
        )
    value: Any = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    for part in auth.token_path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise TokenError(f"The token call to {auth.endpoint} gave no string at tokenPath {auth.token_path!r}.")
    return value


def _facts(options: CallOptions, trace: _Trace, notes: HandshakeNotes) -> CallFacts:
    identity = options.identity
    leaf = identity.leaf_facts() if identity else None
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CallFacts(
        tls=options.tls,
        handshake_done=trace.handshake_done,
        tls_version=trace.tls_version,
        identity=identity.label if identity else None,
        chain_leaf_only=bool(identity and len(identity.certificates()) == 1 and leaf and leaf.issuer != leaf.subject),
        behavior=options.behavior.value,
        cert_requested=notes.requested,
        cert_sent=notes.sent,
        advertised=notes.advertised_names(),
        leaf_expired=bool(leaf and leaf.not_after < now),
        leaf_not_yet_valid=bool(leaf and leaf.not_before > now),
        leaf_lacks_client_auth=bool(leaf and leaf.extended_key_usage and "clientAuth" not in leaf.extended_key_usage),
        leaf_issuer=leaf.issuer if leaf else "",
        leaf_self_signed=bool(leaf and leaf.issuer == leaf.subject),
    )


def _verdict(
    result: Classification,
    trace: _Trace,
    notes: HandshakeNotes,
    handshake: HandshakeTrace,
    attempts: list[Attempt],
    request: Request,
    options: CallOptions,
    action: CustomAction,
) -> Verdict:
    reached_tls = result.phase is not Phase.CONNECT
    return Verdict(
        outcome=result.outcome,
        phase=result.phase,
        alert=result.alert.label if result.alert else None,
        status=result.status,
        tls_version=trace.tls_version or (f"TLSv{options.tls}" if options.tls else None),
        client_cert_sent=_cert_sent(handshake, notes) if reached_tls else None,
        jo_status_code=jo_status_code(result.outcome, result.status),
        explanation=result.explanation,
        fix=result.fix,
        attempts=attempts,
        url=request.url,
        identity=options.identity.label if options.identity else None,
        client_behavior=options.behavior.value,
        server_requested_cert=notes.requested if (notes.requested or trace.handshake_done) else None,
        advertised_ca_names=notes.advertised_names(),
        server_reason=result.server_reason,
        rejection_style=rejection_style(
            result.outcome, result.alert.label if result.alert else None, result.status, result.server_reason
        ),
        warnings=list(action.warnings),
        handshake=[m.to_json() for m in handshake.messages],
        request_line=f"{request.method} {httpx.URL(request.url).raw_path.decode()}",
        certificate_choice=notes.reason,
    )


def _cert_sent(handshake: HandshakeTrace, notes: HandshakeNotes) -> bool:
    """Exact when our Certificate message was observed; otherwise what the certificate callback decided."""
    observed = handshake.client_certificate_sent
    return notes.sent if observed is None else observed


def lab_identity(pki: LabPaths, name: str, chain: Chain) -> ClientIdentity | None:
    """A lab identity by name (``none`` gives no identity)."""
    from mtls_lab.certs.layout import Identity

    return None if name == "none" else ClientIdentity.from_lab(pki, Identity(name), chain)
