"""The lab's token endpoints for custom authorization, and the access tokens every lab token endpoint issues.

Three endpoints, so that the difference between them shows in a live call:

- ``/_lab/token``: lenient. POST with a ``form`` or ``json`` body (or GET with query parameters), any
  credentials; answers like an OAuth 2.0 token endpoint: ``{"access_token", "token_type", "expires_in"}``.
- ``/_lab/oauth2/token``: strict, like real OAuth 2.0 token endpoints (Entra ID, Okta, RFC 6749 4.4.2 and
  appendix B): POST, ``application/x-www-form-urlencoded`` only, ``grant_type`` required, the client
  authenticated (``client_id`` + ``client_secret`` in the form, or HTTP Basic). A JSON body is not read as
  a form, so it "lacks" ``grant_type``: HTTP 400 ``invalid_request``, as such endpoints answer.
- ``/_lab/login``: the login API of Adobe's header-injection example, answering
  ``{"token": ..., "expiryDuration": 5}`` (read with ``json://token`` and ``expiryInResponse``, in minutes).

Access tokens are JWTs signed with the lab server's key (ES256: trustme makes EC keys), so any lab server
started from the same lab PKI verifies them (``--authorize token``), as an API verifies its identity
provider's tokens.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mtls_lab.certs.inspect import x5t
from mtls_lab.certs.layout import LabPaths

ISSUER = "mtls-lab"
AUDIENCE = "mtls-lab-endpoint"
LIFETIME = 3600
LOGIN_EXPIRY_MINUTES = 5  # Adobe's example answer: "expiryDuration": 5
FORM = "application/x-www-form-urlencoded"
GRANTS = ("client_credentials", "password")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and verifies the lab's access tokens with the lab server's key pair."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def of_lab(cls, paths: LabPaths) -> TokenIssuer:
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.server_key}: the lab server key is neither RSA nor EC")
        return cls(key, x509.load_pem_x509_certificate(paths.server_cert.read_bytes()))

    @property
    def algorithm(self) -> str:
        return "RS256" if isinstance(self.key, rsa.RSAPrivateKey) else "ES256"

    def issue(self, subject: str, lifetime: int = LIFETIME, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + lifetime, **claims}
        body["jti"] = secrets.token_hex(8)
        return jwt.encode(body, self.key, algorithm=self.algorithm, headers={"kid": x5t(self.certificate)})

    def verify(self, token: str) -> str | None:
        """None if the token is one a lab token endpoint issued and still valid, else why not."""
        try:
            jwt.decode(token, self.key.public_key(), [self.algorithm], audience=AUDIENCE, issuer=ISSUER)
        except jwt.ExpiredSignatureError:
            return "the access token has expired"
        except jwt.InvalidTokenError as exc:
            return f"the access token was not issued by a lab token endpoint ({exc})"
        return None


def oauth_error(error: str, description: str, status: int = 400, **extra: Any) -> JSONResponse:
    """An OAuth 2.0 error answer (RFC 6749 5.2)."""
    body = {"error": error, "error_description": description, **extra}
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="mtls-lab"'
    return JSONResponse(body, status_code=status, headers=headers)


def token_answer(issuer: TokenIssuer, subject: str, **extra: Any) -> JSONResponse:
    """A successful OAuth 2.0 token answer (RFC 6749 5.1)."""
    token = issuer.issue(subject)
    body = {"token_type": "Bearer", "expires_in": LIFETIME, "access_token": token, **extra}
    return JSONResponse(body, headers=NO_STORE)


async def read_params(request: Request) -> tuple[dict[str, str], str]:
    """The request's parameters, and how they came: "form", "json", "query" or "other"."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if request.method == "GET":
        return dict(request.query_params), "query"
    if kind == FORM:
        return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True)), "form"
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return {}, "json"
        return (
            ({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}, "json")
            if isinstance(data, dict)
            else ({}, "json")
        )
    return {}, "other"


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def endpoints(issuer: TokenIssuer) -> dict[str, Any]:
    """The token endpoints' handlers by path."""

    async def lenient(request: Request) -> Response:
        params, _ = await read_params(request)
        subject = params.get("client_id") or params.get("username") or "lab-client"
        return token_answer(issuer, subject)

    async def strict(request: Request) -> Response:
        params, kind = await read_params(request)
        if kind != "form":  # like Entra ID or Okta: the body is read as a form or not at all
            sent = request.headers.get("content-type") or "no Content-Type"
            return oauth_error(
                "invalid_request",
                "The request body must contain the following parameter: 'grant_type'. (The body was sent as "
                f"{sent}; a token request is {FORM}.)",
            )
        return _strict_grant(issuer, params, request)

    async def login(request: Request) -> Response:
        params, _ = await read_params(request)
        if not any(params.values()):
            return JSONResponse({"message": "no credentials in the request"}, status_code=401)
        subject = params.get("username") or "lab-user"
        token = issuer.issue(subject, lifetime=LOGIN_EXPIRY_MINUTES * 60)
        return JSONResponse({"token": token, "expiryDuration": LOGIN_EXPIRY_MINUTES})

    return {"/_lab/token": lenient, "/_lab/oauth2/token": strict, "/_lab/login": login}


def _strict_grant(issuer: TokenIssuer, params: dict[str, str], request: Request) -> Response:
    grant = params.get("grant_type")
    if not grant:
        return oauth_error("invalid_request", "The request body must contain the following parameter: 'grant_type'.")
    if grant not in GRANTS:
        return oauth_error("unsupported_grant_type", f"The grant type '{grant}' is not supported here.")
    basic = basic_credentials(request)
    client = basic[0] if basic else params.get("client_id")
    secret = basic[1] if basic else params.get("client_secret")
    if not client or not secret:
        return oauth_error(
            "invalid_client",
            "Client authentication failed: send client_id and client_secret, or HTTP Basic credentials.",
            status=401,
        )
    if grant == "password" and not (params.get("username") and params.get("password")):
        return oauth_error("invalid_request", "The password grant needs username and password.")
    return token_answer(issuer, client, scope=params.get("scope", ""))
