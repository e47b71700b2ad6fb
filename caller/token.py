"""The custom authorization's token call, as AJO makes it, and the cache that keeps its token.

The request follows AJO's payload (``caller/auth.py``): ``form`` bodies are sent as
``application/x-www-form-urlencoded`` (UTF-8), ``json`` bodies as JSON; with ``certificateCredential``
the form also carries ``client_assertion`` and ``client_assertion_type`` (``caller/assertion.py``).
The token is read with ``tokenInResponse`` and cached for ``cacheDuration`` (default 1 hour), per journey.

Model: the token call is made **without** the client certificate. Adobe documents mTLS for the action's
endpoint only, and its custom SMS provider page says "mTLS only applies to the SMS provider (message
sending) endpoint. OAuth token endpoints must not use mTLS". ``CallOptions.token_cert`` presents it anyway.

A failed token call is explained from the OAuth error the endpoint answered (RFC 6749 5.2), refined by
the lab identity provider's ``mtls_lab_reason`` when there is one (``TOKEN_FIXES``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import httpx

from mtls_lab.caller.auth import DEFAULT_CACHE_SECONDS, RESPONSE, BodyType, CustomAuthorization, json_path
from mtls_lab.caller.verdict import Classification, Layer, Outcome

Clock = Callable[[], float]
TOKEN_MODEL = (
    "model: AJO most likely makes the token call without its client certificate (Adobe documents mTLS for the "
    "action's endpoint only; its SMS provider page says OAuth token endpoints must not use mTLS)"
)
EXPIRY_BUFFER = 60.0  # Adobe recommends at least one minute between the token's expiry and cacheDuration

# What to change for each reason the lab's identity provider gives (``mtls_lab_reason``), or OAuth error.
TOKEN_FIXES = {
    "certificate_not_registered": "Identity provider side: register Adobe's current leaf certificate (the public-"
    "certificate API's entry whose certCommonName is ajo-journeys.aep-mtls.adobe.com: the leaf, not its CAs). "
    "Adobe reissues it 60 days before it expires, without notice: register the new leaf during the overlap, "
    "while the old one is still valid.",
    "audience_mismatch": "Caller side: set aud to the token endpoint URL the identity provider expects (Entra ID: "
    "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token, the same as endpoint).",
    "signature_invalid": "The assertion's signature does not match the registered certificate's key: register the "
    "certificate AJO signs with (the leaf from the public-certificate API).",
    "assertion_expired": "Check the clocks: the assertion is valid for 10 minutes from its iat.",
    "assertion_not_yet_valid": "Check the clocks: the identity provider's clock is behind the assertion's nbf.",
    "lifetime_too_long": "The assertion lives longer than the provider allows: Adobe documents at most 10 minutes.",
    "jti_replayed": "Each token call needs a fresh assertion (a new jti): AJO makes one per call.",
    "client_id_missing": "Caller side: set bodyParams.client_id to the application's client ID: an empty one makes "
    "an assertion with empty iss and sub, which the identity provider refuses.",
    "client_id_padded": "Caller side: remove the spaces around bodyParams.client_id: no application has that ID.",
    "client_mismatch": "Caller side: bodyParams.client_id must be the application's client ID; AJO puts it in "
    "the assertion's iss and sub.",
    "invalid_request": "Caller side: send the fields the token endpoint asks for, form-encoded: OAuth token "
    'endpoints (Entra ID, Okta) read application/x-www-form-urlencoded only ("bodyType": "form").',
    "unsupported_grant_type": "Caller side: set bodyParams.grant_type to a grant the endpoint supports "
    "(client_credentials for certificate-based authentication).",
    "invalid_client": "Token endpoint side: the endpoint does not recognise the client's credentials (client_id and "
    "secret, or the certificate registered for the client).",
    "invalid_grant": "Caller side: check the credentials in bodyParams (user name, password, secret).",
    "invalid_scope": "Caller side: check bodyParams.scope (one space-separated string).",
    "unauthorized_client": "Identity provider side: allow this grant type for the client.",
}


@dataclass(frozen=True)
class TokenCall:
    """What the verdict reports about the custom authorization's token call (``token_call`` in its JSON)."""

    url: str
    method: str
    body_type: str | None
    client_certificate: bool  # the caller offered its certificate on the token call's TLS connection
    sub_type: str | None = None
    status: int | None = None
    error: str | None = None  # the OAuth "error" code the endpoint answered
    error_description: str | None = None
    reason: str | None = None  # the lab identity provider's mtls_lab_reason
    cached: bool = False
    cache_seconds: float | None = None
    assertion: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TokenFailure(Exception):
    """The token call gave no token: the action call is not made."""

    def __init__(self, call: TokenCall, result: Classification) -> None:
        super().__init__(result.explanation)
        self.call, self.result = call, result


@dataclass(frozen=True)
class TokenRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


def token_request(custom: CustomAuthorization, assertion: str | None = None) -> TokenRequest:
    """The token call's HTTP request, serialized as the payload's bodyType says."""
    headers = dict(custom.headers)
    if custom.method == "GET" or custom.body_type is None:
        return TokenRequest(custom.method, custom.endpoint, headers, None)
    params = dict(custom.body_params)
    if assertion is not None:
        from mtls_lab.caller.assertion import ASSERTION_TYPE

        params.update(client_assertion=assertion, client_assertion_type=ASSERTION_TYPE)
    headers.setdefault("Content-Type", custom.body_type.content_type)
    if custom.body_type is BodyType.FORM:
        content = urlencode({k: _form_value(v) for k, v in params.items()}).encode()
    else:
        content = json.dumps(params).encode()
    return TokenRequest(custom.method, custom.endpoint, headers, content)


def read_token(custom: CustomAuthorization, response: httpx.Response) -> tuple[str, float, list[str]]:
    """The token, how long to cache it (seconds), and notes; ValueError says why there is no token."""
    if custom.token_in_response == RESPONSE:
        token = response.text.strip()
        if not token:
            raise ValueError('the answer is empty, and tokenInResponse "response" takes the whole answer as the token')
        return token, _cache_seconds(custom, None, []), []
    try:
        document = response.json()
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON, so {custom.token_in_response} finds nothing") from exc
    token = json_path(custom.token_in_response, document)
    if not isinstance(token, str) or not token:
        fields = ", ".join(document) if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"the answer has no string at {custom.token_in_response} (its fields: {fields})")
    notes: list[str] = []
    return token, _cache_seconds(custom, document, notes), notes


def explain_status(custom: CustomAuthorization, call: TokenCall) -> Classification:
    """Why an HTTP error answer of the token call stopped the action."""
    what = f"{call.error}: {call.error_description}" if call.error else "no OAuth error in the answer"
    explanation = (
        f"The token call ({custom.method} {custom.endpoint}) answered HTTP {call.status} ({what}), so AJO has no "
        "token and does not call the action's endpoint."
    )
    key = call.reason or call.error
    if call.error == "invalid_request" and custom.body_type is BodyType.JSON:
        explanation += " The body was sent as JSON (bodyType json); OAuth token endpoints read form bodies."
    fix = TOKEN_FIXES.get(key or "", "Token endpoint side: read its error answer; check endpoint, headers and body.")
    return Classification(Outcome.HTTP_ERROR, Layer.HTTP, None, explanation, fix, status=call.status, server_reason=key)


def oauth_error(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """The OAuth ``error``, ``error_description`` and the lab's ``mtls_lab_reason`` of an error answer."""
    try:
        data = response.json()
    except ValueError:
        data = None

    def text(key: str) -> str | None:
        value = data.get(key) if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    return text("error"), text("error_description"), text("mtls_lab_reason")


@dataclass
class TokenCache:
    """Tokens cached per token request for ``cacheDuration`` (AJO: per journey, 1 hour by default)."""

    clock: Clock = time.monotonic
    fetches: int = 0
    _tokens: dict[str, tuple[str, float, TokenCall]] = field(default_factory=dict)

    def get(self, key: str, fetch: Callable[[], tuple[str, float, TokenCall]]) -> tuple[str, TokenCall]:
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > self.clock():
            token, _, call = cached
            return token, replace(call, cached=True)
        token, seconds, call = fetch()
        self.fetches += 1
        self._tokens[key] = (token, self.clock() + seconds, call)
        return token, call


def _form_value(value: Any) -> str:
    """Form values as text: strings as they are, other scalars as JSON (true, 3) (model)."""
    return value if isinstance(value, str) else json.dumps(value)


def _cache_seconds(custom: CustomAuthorization, document: Any, notes: list[str]) -> float:
    """``cacheDuration`` in seconds: fixed, or read from the answer (default 1 hour), with Adobe's expiry advice."""
    cache = custom.cache
    seconds = cache.fixed_seconds
    if seconds is None:
        expiry = json_path(cache.expiry_in_response or "", document)
        number = _number(expiry)
        if number is None:
            notes.append(
                f"the answer has no number at {cache.expiry_in_response}: the token is cached for the default hour "
                "(model: Adobe does not document this case)"
            )
        seconds = DEFAULT_CACHE_SECONDS if number is None else number * cache.unit.seconds
    lifetime = document.get("expires_in") if isinstance(document, dict) else None
    if isinstance(lifetime, int | float) and seconds > lifetime - EXPIRY_BUFFER:
        notes.append(
            f"the token expires in {lifetime:g} s but is cached for {seconds:g} s: Adobe recommends at least one "
            "minute between the token's expiry and cacheDuration, to avoid 401 errors"
        )
    return seconds


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None
