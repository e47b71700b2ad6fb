"""The lab server's identity-provider role: a token endpoint for certificate-based custom authentication.

``POST /_lab/idp/token`` takes what Journey Optimizer sends with ``"subType": "certificateCredential"``: an
OAuth 2.0 client-credentials request, form-encoded, authenticated by a JWT client assertion (RFC 7523:
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, ``client_assertion``),
signed with the key of a certificate registered here (``mtls-lab serve --idp-register LEAF.pem``, as a
customer registers Adobe's leaf with Entra ID or Okta). It checks, in this order, and answers a failure
as a real provider does, ``invalid_client`` with a description, plus the lab's ``mtls_lab_reason``:

1. the request: POST form, ``grant_type=client_credentials``, the assertion type (``invalid_request``,
   ``unsupported_grant_type``);
2. the header: ``alg`` RS256 (or PS256), and an ``x5t`` (SHA-1) or ``x5t#S256`` thumbprint naming a
   registered certificate (``certificate_not_registered``: after Adobe's rotation, the new leaf);
3. the signature against that certificate's public key (``signature_invalid``), by PyJWT;
4. ``aud``: this endpoint's own URL, or the ``--idp-audience`` values (``audience_mismatch``);
5. ``exp``, ``nbf``, and a lifetime of at most 10 minutes (Adobe: "exp - iat is always <= 10 minutes,
   in line with Okta and Entra ID requirements");
6. ``iss`` = ``sub`` = ``client_id`` (RFC 7523 3; ``client_mismatch``), and a client ID at all: Entra ID's
   client-credentials request lists ``client_id`` as required, so an empty one (in the form or in the
   assertion's ``iss``/``sub``) is ``invalid_request`` (``client_id_missing``); one with leading or
   trailing spaces names no application (``client_id_padded``, ``invalid_client``: a **model**, Entra ID
   documents no trimming rule, and registers no such ID);
7. ``jti`` never seen before (``jti_replayed``).

Model: one set of registered certificates for every client ID (a real provider keeps them per
application); the error descriptions are the lab's, not Entra ID's AADSTS texts.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import Response

from mtls_lab.certs.inspect import common_name, x5t, x5t_s256
from mtls_lab.server.tokens import TokenIssuer, oauth_error, read_params, token_answer

PATH = "/_lab/idp/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "PS256")
MAX_LIFETIME = 600
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "jti"]


class Refused(Exception):
    """The assertion is not accepted: an OAuth error code, a description and the lab's reason."""

    def __init__(self, reason: str, description: str, error: str = "invalid_client") -> None:
        super().__init__(description)
        self.reason, self.description, self.error = reason, description, error


# PyJWT's exceptions, most specific first, mapped to the lab's reasons.
_DECODE_ERRORS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.InvalidSignatureError, "signature_invalid", "The client assertion's signature does not verify"),
    (jwt.InvalidAudienceError, "audience_mismatch", "The client assertion is for another audience"),
    (jwt.ExpiredSignatureError, "assertion_expired", "The client assertion has expired"),
    (jwt.ImmatureSignatureError, "assertion_not_yet_valid", "The client assertion is not valid yet (nbf or iat)"),
    (jwt.MissingRequiredClaimError, "claim_missing", "The client assertion lacks a required claim"),
    (jwt.PyJWTError, "assertion_invalid", "The client assertion cannot be read"),
)


@dataclass
class IdentityProvider:
    """Registered certificates, accepted audiences, and the assertions already used."""

    certificates: tuple[x509.Certificate, ...]
    audiences: tuple[str, ...]  # empty: the token endpoint's own URL
    issuer: TokenIssuer
    clock: Callable[[], float] = time.time
    _used: dict[str, float] = field(default_factory=dict)  # jti -> exp

    def registered(self, header: dict[str, Any]) -> x509.Certificate:
        """The registered certificate the header's thumbprint names."""
        s256, sha1 = header.get("x5t#S256"), header.get("x5t")
        if not s256 and not sha1:
            raise Refused(
                "certificate_not_registered",
                "The client assertion's header has no x5t (or x5t#S256): "
                "the provider cannot tell which registered certificate signed it.",
            )
        for cert in self.certificates:
            if (s256 and s256 == x5t_s256(cert)) or (not s256 and sha1 == x5t(cert)):
                return cert
        raise Refused(
            "certificate_not_registered",
            f"The client assertion is signed by the certificate with thumbprint {_hex(sha1, s256)} (x5t "
            f"{sha1 or s256}), which is not registered for this application. Registered: {self.describe()}. "
            "Register the certificate that signs (after a rotation: the new one).",
        )

    def describe(self) -> str:
        return "; ".join(_describe(cert) for cert in self.certificates) or "no certificate"

    def verify(self, assertion: str, client_id: str | None, endpoint: str) -> dict[str, Any]:
        """The assertion's claims if it authenticates the client; Refused otherwise."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise Refused("assertion_invalid", f"The client_assertion is not a JWT ({exc}).") from exc
        if header.get("alg") not in ALGORITHMS:
            raise Refused(
                "assertion_invalid",
                f"The client assertion is signed with {header.get('alg')!r}; "
                f"this provider accepts {', '.join(ALGORITHMS)}.",
            )
        cert = self.registered(header)
        now = self.clock()
        if cert.not_valid_after_utc.timestamp() < now:
            raise Refused(
                "certificate_expired",
                f"The registered certificate {_describe(cert)} has expired: register the current one.",
            )
        claims = self._decode(assertion, cert, header["alg"], endpoint, now)
        self._check(claims, client_id, now)
        return claims

    def _decode(self, assertion: str, cert: x509.Certificate, alg: str, endpoint: str, now: float) -> dict[str, Any]:
        audiences = list(self.audiences or (endpoint,))
        options: Any = {"require": REQUIRED_CLAIMS}
        try:
            return jwt.decode(assertion, cert.public_key(), [alg], audience=audiences, options=options)  # type: ignore[arg-type]
        except jwt.PyJWTError as exc:
            reason, text = next((r, t) for kind, r, t in _DECODE_ERRORS if isinstance(exc, kind))
            detail = f" ({exc})"
            if reason == "audience_mismatch":
                got = jwt.decode(assertion, options={"verify_signature": False}).get("aud")
                detail = f": its aud is {got!r}, and this token endpoint expects {' or '.join(audiences)}"
            raise Refused(reason, text + detail + ".") from exc

    def _check(self, claims: dict[str, Any], client_id: str | None, now: float) -> None:
        issued = claims.get("iat", claims.get("nbf", now))
        if claims["exp"] - issued > MAX_LIFETIME:
            raise Refused(
                "lifetime_too_long",
                f"The client assertion is valid for {claims['exp'] - issued:.0f} s; "
                f"at most {MAX_LIFETIME} s (10 minutes) is accepted.",
            )
        _check_client_id(client_id, str(claims["iss"]))
        if claims["iss"] != claims["sub"] or (client_id and claims["iss"] != client_id):
            raise Refused(
                "client_mismatch",
                f"The client assertion's iss ({claims['iss']!r}) and sub "
                f"({claims['sub']!r}) must both be the client_id ({client_id!r}).",
            )
        self._used = {jti: exp for jti, exp in self._used.items() if exp > now}
        if claims["jti"] in self._used:
            raise Refused(
                "jti_replayed",
                f"The client assertion {claims['jti']!r} (jti) was already used: each "
                "token request needs a new assertion.",
            )
        self._used[claims["jti"]] = float(claims["exp"])

    async def token(self, request: Request) -> Response:
        """The token endpoint."""
        params, kind = await read_params(request)
        try:
            client = self._request(params, kind)
            endpoint = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            claims = self.verify(params["client_assertion"], params.get("client_id"), endpoint)
        except Refused as refused:
            status = 401 if refused.error == "invalid_client" else 400
            return oauth_error(refused.error, refused.description, status, mtls_lab_reason=refused.reason)
        return token_answer(self.issuer, client or str(claims["sub"]), scope=params.get("scope", ""))

    @staticmethod
    def _request(params: dict[str, str], kind: str) -> str | None:
        if kind != "form":
            raise Refused(
                "invalid_request",
                "The request body must contain the following parameter: 'grant_type'. "
                "(A token request is application/x-www-form-urlencoded.)",
                "invalid_request",
            )
        if params.get("grant_type") != "client_credentials":
            raise Refused(
                "unsupported_grant_type",
                f"grant_type {params.get('grant_type')!r}: certificate-based authentication uses client_credentials.",
                "unsupported_grant_type",
            )
        if params.get("client_assertion_type") != ASSERTION_TYPE or not params.get("client_assertion"):
            raise Refused(
                "invalid_request",
                f"A client_assertion and client_assertion_type {ASSERTION_TYPE} are required.",
                "invalid_request",
            )
        return params.get("client_id")


def _check_client_id(client_id: str | None, issuer: str) -> None:
    """Refuse what Entra ID refuses: no client ID (it is required), or one no application has (padded)."""
    given = client_id if client_id is not None else issuer
    if not given or not issuer:
        raise Refused(
            "client_id_missing",
            "The request body must contain the following parameter: 'client_id' (the form's client_id and "
            "the assertion's iss and sub are empty). Set client_id in the action's bodyParams.",
            "invalid_request",
        )
    if given != given.strip() or issuer != issuer.strip():
        raise Refused(
            "client_id_padded",
            f"Application with identifier {given!r} was not found (the client_id has leading or trailing "
            "spaces). Remove them.",
        )


def _describe(cert: x509.Certificate) -> str:
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    expiry = cert.not_valid_after_utc.astimezone(dt.UTC).strftime("%Y-%m-%d")
    return f"CN={common_name(cert.subject)} (thumbprint {sha1}, expires {expiry})"


def _hex(sha1: str | None, s256: str | None) -> str:
    value = sha1 or s256 or ""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex().upper()
    except ValueError:
        return value
