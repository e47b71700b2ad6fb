"""Replay a custom action the way AJO would: TLS identity, authentication, retries, redirects, verdict."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from mtls_lab.caller.action import CustomAction, Request, build_request
from mtls_lab.caller.auth import Auth, AuthorizationType, AuthType, CustomAuthorization
from mtls_lab.caller.journey_view import JourneyView, exposed_body
from mtls_lab.caller.step_event import StepEvent
from mtls_lab.caller.tls import Chain, ClientBehavior, ClientIdentity, Handshake, client_context
from mtls_lab.caller.token import (
    TOKEN_MODEL,
    TokenCache,
    TokenCall,
    TokenFailure,
    explain_status,
    oauth_error,
    read_token,
    token_request,
)
from mtls_lab.caller.verdict import (
    ASKED_LATE_REASONS,
    JAVA_MODEL,
    Attempt,
    CallFacts,
    Classification,
    Layer,
    Outcome,
    Verdict,
    classify_response,
    classify_transport,
    jo_status_code,
    rejection_style,
)
from mtls_lab.certs.layout import LabPaths
from mtls_lab.errors import LabError
from mtls_lab.vocabulary import AJOLimits

NO_RETRY_STATUSES = frozenset({401, 403, 404})
MAX_REDIRECTS = 5
USER_AGENT = {"User-Agent": "ajo-mtls-lab caller (models an Adobe Journey Optimizer custom action)"}
Clock = Callable[[], float]

__all__ = ["CallOptions", "TokenCache", "call", "lab_identity"]


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
    retries: int = AJOLimits.MAX_RETRIES
    token_cert: bool = False  # also present the certificate on the token call (AJO most likely does not)
    source_address: str | None = None  # the egress proxy's path (caller/egress.py): bind this local address
    # a sender's own answer deadline (caller/senders.py): what a timeout means then, and its fix
    deadline_words: tuple[str, str] | None = None


@dataclass
class _Round:
    """One round of the retry loop (its summary is the verdict's ``Attempt``): the classification, the
    handshake of the action's connection, and the token call if there was one."""

    result: Classification
    handshake: Handshake
    token_call: TokenCall | None = None
    failed_call: str | None = None
    body: str | None = None  # a non-2xx answer's body, as AJO 26.1 gives it to the error branch
    started_at: float | None = None  # wall clock, when the call to the endpoint started


def call(
    action: CustomAction,
    context: dict[str, Any],
    options: CallOptions,
    tokens: TokenCache | None = None,
    clock: Clock = time.monotonic,
) -> Verdict:
    """One journey step's call, with AJO's retries; returns a Verdict (raises only for misuse)."""
    request = build_request(action, context, options.path)
    _check_signer(action, options)
    tokens = tokens if tokens is not None else TokenCache(clock=clock)
    timeout = options.timeout or action.timeout
    deadline = clock() + timeout
    attempts: list[Attempt] = []
    events: list[StepEvent] = []
    fetched: TokenCall | None = None  # the token call this step made, if any (later attempts reuse its token)
    while True:
        started = clock()
        current = _attempt(action, request, options, tokens, max(deadline - started, 0.01))
        result = current.result
        if current.token_call is not None and not current.token_call.cached:
            fetched = current.token_call
        elif current.token_call is not None and fetched is not None:
            current.token_call = fetched
        attempts.append(
            Attempt(
                len(attempts) + 1,
                result.outcome.value,
                result.status,
                result.alert.label if result.alert else None,
                None if result.outcome in (Outcome.ACCEPTED, Outcome.HTTP_ERROR) else result.explanation,
                round(clock() - started, 4),
                current.handshake.local_port,
            )
        )
        events.append(StepEvent.of(result.outcome, result.status))
        retry = _should_retry(result, len(attempts), options.retries)
        if not retry or clock() >= deadline:
            break
    event = events[-1]
    if _timed_out_during_retries(result, len(attempts), retry, clock() >= deadline):
        orig = events[-2] if result.outcome is Outcome.TIMEOUT else events[-1]
        event = orig.timed_out()
        current.result = _retries_timed_out(result, orig, timeout)
    if current.result.outcome is Outcome.TIMEOUT and options.deadline_words is not None:
        explanation, fix = options.deadline_words
        current.result = replace(current.result, explanation=explanation, fix=fix)
    return _verdict(current, attempts, request, options, action, event)


def _timed_out_during_retries(result: Classification, done: int, retry: bool, deadline_passed: bool) -> bool:
    """AJO: "If the end of the timeout duration is reached during the retries ... counted as a timeout error"."""
    if result.outcome is Outcome.TIMEOUT:
        return done > 1  # a first call that timed out is a plain timeout, with no underlying error
    return retry and deadline_passed


def _retries_timed_out(result: Classification, orig: StepEvent, timeout: float) -> Classification:
    before = f"{orig.error} {orig.error_code}" if orig.error_code else str(orig.error)
    return Classification(
        Outcome.TIMEOUT,
        result.phase,
        None,
        f"The journey's timeout ({timeout:g} s) ran out during the retries, so AJO counts the call as a timeout "
        f"error (jo_status_code timedout); its step event keeps the error before the retry: {before} "
        "(actionExecOrigError / actionExecOrigErrorCode).",
        "Server side: fix the error the retries were for, and answer well within the journey's timeout "
        f"({AJOLimits.TIMEOUT_MIN:g} to {AJOLimits.TIMEOUT_MAX:g} s).",
    )


def _should_retry(result: Classification, done: int, retries: int) -> bool:
    if result.outcome is Outcome.ACCEPTED or done > retries:
        return False
    if result.outcome is Outcome.TIMEOUT and done == 1:
        return False  # AJO cancels a first call that exceeded the timeout and does not retry it
    return result.status not in NO_RETRY_STATUSES


def _check_signer(action: CustomAction, options: CallOptions) -> None:
    custom = action.auth.custom
    if custom is not None and custom.certificate_credential and options.identity is None:
        raise LabError(
            "certificateCredential signs its client assertion with the client certificate's key: give an identity "
            "(--identity adobe, or --cert and --key), not --identity none"
        )


def _attempt(
    action: CustomAction, request: Request, options: CallOptions, tokens: TokenCache, timeout: float
) -> _Round:
    handshake = Handshake()
    context = client_context(options.pki, options.identity, options.behavior, options.tls, options.server_ca, handshake)
    handshake.install(context)  # every message too: the ladder, and whether our Certificate was empty
    transport = (  # the egress proxy's path leaves from its own address (caller/egress.py)
        httpx.HTTPTransport(verify=context, local_address=options.source_address) if options.source_address else None
    )
    with httpx.Client(
        verify=context, timeout=timeout, follow_redirects=False, headers=USER_AGENT, transport=transport
    ) as client:
        try:
            headers, params, token_call = _authenticate(action.auth, request, options, tokens, timeout)
        except TokenFailure as failure:
            return _Round(failure.result, handshake, failure.call, "token")
        started_at = time.time()
        try:
            response = _send(client, request, headers, params, handshake)
        except httpx.TransportError as exc:
            result = classify_transport(exc, _facts(options.identity, options, handshake, request.url))
            return _Round(result, handshake, token_call, "action", started_at=started_at)
        result = classify_response(response, _facts(options.identity, options, handshake, request.url))
        failed = None if result.outcome is Outcome.ACCEPTED else "action"
        body = exposed_body(response.status_code, response.text)
        return _Round(result, handshake, token_call, failed, body, started_at)


def _send(
    client: httpx.Client, request: Request, headers: dict[str, str], params: dict[str, str], trace: Handshake
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
    auth: Auth, request: Request, options: CallOptions, tokens: TokenCache, timeout: float
) -> tuple[dict[str, str], dict[str, str], TokenCall | None]:
    headers, params = dict(request.headers), dict(request.params)
    if auth.kind is AuthType.BASIC:
        pair = f"{auth.username}:{auth.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif auth.kind is AuthType.API_KEY:
        (headers if auth.location == "header" else params)[auth.key_name] = auth.key_value
    elif auth.custom is not None:
        custom = auth.custom
        key = repr((token_request(custom), options.identity.label if options.identity else None))
        token, token_call = tokens.get(key, lambda: _fetch_token(custom, options, timeout))
        if custom.authorization_type is AuthorizationType.BEARER:
            headers["Authorization"] = f"Bearer {token}"
        else:
            target = custom.token_target or ""
            (headers if custom.authorization_type is AuthorizationType.HEADER else params)[target] = token
        return headers, params, token_call
    return headers, params, None


def _fetch_token(custom: CustomAuthorization, options: CallOptions, timeout: float) -> tuple[str, float, TokenCall]:
    """The token call, over its own connection: without the client certificate unless ``token_cert``."""
    identity = options.identity if options.token_cert else None
    assertion = None
    if custom.certificate_credential and options.identity is not None:
        from mtls_lab.caller.assertion import client_assertion, describe

        assertion = client_assertion(options.identity, custom.client_id, custom.aud or "")
    record = TokenCall(
        custom.endpoint,
        custom.method,
        custom.body_type.value if custom.body_type else None,
        client_certificate=identity is not None,
        sub_type=custom.sub_type.value if custom.sub_type else None,
        assertion=describe(assertion) if assertion else None,
    )
    handshake = Handshake()  # its messages are not recorded: the token call is not drawn
    context = client_context(options.pki, identity, options.behavior, options.tls, options.server_ca, handshake)
    wanted = token_request(custom, assertion)
    with httpx.Client(verify=context, timeout=timeout, headers=USER_AGENT) as client:
        try:
            response = client.request(
                wanted.method,
                wanted.url,
                headers=wanted.headers,
                content=wanted.content,
                extensions={"trace": handshake},
            )
        except httpx.TransportError as exc:
            result = classify_transport(exc, _facts(identity, options, handshake, url=custom.endpoint))
            raise TokenFailure(record, _token_transport(custom, result, handshake, identity is not None)) from exc
    record = replace(record, status=response.status_code)
    if response.status_code // 100 != 2:
        error, description, reason = oauth_error(response)
        record = replace(record, error=error, error_description=description, reason=reason)
        raise TokenFailure(record, explain_status(custom, record))
    try:
        token, seconds, cache_notes = read_token(custom, response)
    except ValueError as exc:
        raise TokenFailure(record, _no_token(custom, str(exc), response.status_code)) from exc
    return token, seconds, replace(record, cache_seconds=seconds, notes=cache_notes)


def _token_transport(
    custom: CustomAuthorization, result: Classification, handshake: Handshake, presented: bool
) -> Classification:
    """A token call that failed below HTTP: say which call failed, and why the certificate was not there."""
    if handshake.requested and not presented:
        alert = f" (alert {result.alert.label})" if result.alert else ""
        return Classification(
            result.outcome,
            result.phase,
            result.alert,
            f"The token call to {custom.endpoint} failed{alert}: the token endpoint requires a client certificate, "
            f"and the token call is made without one ({TOKEN_MODEL}). AJO does not call the action's endpoint.",
            "Token endpoint side: turn mTLS off on the token endpoint (mTLS is for the action's endpoint), or take "
            "the token from an endpoint that does not require a client certificate.",
            result.status,
        )
    explanation = f"The token call to {custom.endpoint} failed, so AJO does not call the action's endpoint. "
    return Classification(
        result.outcome, result.phase, result.alert, explanation + result.explanation, result.fix, result.status
    )


def _no_token(custom: CustomAuthorization, why: str, status: int) -> Classification:
    return Classification(
        Outcome.HTTP_ERROR,
        Layer.HTTP,
        None,
        f"The token call to {custom.endpoint} answered HTTP {status} but gave no token: {why}.",
        'Caller side: point tokenInResponse at the token, e.g. "json://access_token", or "response" when the whole '
        "answer is the token.",
        status=status,
        server_reason="no_token_in_response",
    )


def _facts(
    identity: ClientIdentity | None,
    options: CallOptions,
    handshake: Handshake,
    url: str = "",
) -> CallFacts:
    leaf = identity.leaf_facts() if identity else None
    cert = identity.certificates()[0] if identity else None
    not_before = cert.not_valid_before_utc if cert else None
    not_after = cert.not_valid_after_utc if cert else None
    now = dt.datetime.now(dt.UTC)
    return CallFacts(
        tls=options.tls,
        handshake_done=handshake.done,
        tls_version=handshake.tls_version,
        identity=identity.label if identity else None,
        chain_leaf_only=bool(identity and len(identity.certificates()) == 1 and leaf and leaf.issuer != leaf.subject),
        behavior=options.behavior.value,
        cert_requested=handshake.requested,
        cert_sent=handshake.cert_sent,  # the value the verdict reports
        advertised=handshake.advertised_names(),
        leaf_expired=bool(not_after and not_after < now),
        leaf_not_yet_valid=bool(not_before and not_before > now),
        leaf_lacks_client_auth=bool(leaf and leaf.extended_key_usage and "clientAuth" not in leaf.extended_key_usage),
        leaf_issuer=leaf.issuer if leaf else "",
        chain_issuers=identity.issuer_names() if identity else (),
        leaf_self_signed=bool(leaf and leaf.issuer == leaf.subject),
        leaf_not_before=not_before,
        leaf_not_after=not_after,
        leaf_usages=leaf.extended_key_usage if leaf else (),
        cert_file=str(identity.cert_file) if identity else "",
        url=url,
        asked_after_handshake=handshake.asked_after_handshake,
        offered_post_handshake_auth=handshake.offered_post_handshake_auth,
    )


def _verdict(
    current: _Round,
    attempts: list[Attempt],
    request: Request,
    options: CallOptions,
    action: CustomAction,
    event: StepEvent,
) -> Verdict:
    result, handshake = current.result, current.handshake
    action_made = current.failed_call != "token"
    reached_tls = result.phase is not Layer.CONNECT and action_made
    token_call = current.token_call
    return Verdict(
        outcome=result.outcome,
        phase=result.phase,
        alert=result.alert.label if result.alert else None,
        status=result.status,
        tls_version=handshake.tls_version or (f"TLSv{options.tls}" if options.tls else None),
        client_cert_sent=handshake.cert_sent if reached_tls else None,
        jo_status_code=jo_status_code(result.outcome, result.status),
        explanation=result.explanation,
        fix=result.fix,
        attempts=attempts,
        url=request.url,
        identity=options.identity.label if options.identity else None,
        client_behavior=options.behavior.value,
        server_requested_cert=handshake.requested if (handshake.requested or handshake.done) else None,
        requested_after_handshake=handshake.asked_after_handshake or result.server_reason in ASKED_LATE_REASONS,
        offered_post_handshake_auth=handshake.offered_post_handshake_auth if handshake.messages else None,
        advertised_ca_names=handshake.advertised_names(),
        server_reason=result.server_reason,
        rejection_style=rejection_style(
            result.outcome, result.alert.label if result.alert else None, result.status, result.server_reason
        ),
        warnings=list(action.warnings) + (current.token_call.notes if current.token_call else []),
        handshake=[m.to_json() for m in handshake.messages],
        request_line=f"{request.method} {httpx.URL(request.url).raw_path.decode()}",
        certificate_choice=handshake.reason,
        causes=list(result.causes),
        stack_evidence=result.stack_evidence,
        tell_apart=result.tell_apart,
        likely_cause=result.likely_cause,
        token_call=token_call,
        failed_call=current.failed_call,
        step_event=event,
        journey=_journey(current, attempts, request, result.outcome is not Outcome.ACCEPTED, options.source_address),
        model_note=JAVA_MODEL + ("; " + TOKEN_MODEL if token_call else ""),
    )


def _journey(
    current: _Round, attempts: list[Attempt], request: Request, failed: bool, source: str | None
) -> JourneyView:
    """The journey's view of the call (caller/journey_view.py); actionOriginIsMTLS is the lab's model of
    "MTLS is enabled for the endpoint": the server asked for a certificate (unknown without a handshake)."""
    handshake, result = current.handshake, current.result
    made = current.failed_call != "token" and (handshake.requested or handshake.done)
    return JourneyView(
        failed=failed,
        status=result.status,
        jo_status_code=jo_status_code(result.outcome, result.status),
        body=current.body,
        origin_is_mtls=handshake.requested if made else None,
        endpoint=request.url,
        started_at=current.started_at,
        milliseconds=attempts[-1].seconds * 1000 if attempts and current.started_at is not None else None,
        is_proxy=source is not None,
    )


def lab_identity(pki: LabPaths, name: str, chain: Chain) -> ClientIdentity | None:
    """A lab identity by name (``none`` gives no identity)."""
    from mtls_lab.certs.layout import Identity

    return None if name == "none" else ClientIdentity.from_lab(pki, Identity(name), chain)
