"""The JWT client assertion of certificate-based custom authentication, built as Adobe documents it.

Journey Optimizer signs "a JWT client assertion" with Adobe's managed certificate and exchanges it for an
access token: the OAuth 2.0 client-credentials grant with a JWT client assertion (RFC 7523). Adobe
documents the structure (External data sources, "#certificate-credential-jwt"):

- header ``{"alg": "RS256", "x5t": <base64url SHA-1 thumbprint of Adobe's leaf certificate>}``;
- claims ``iss`` = ``sub`` = ``client_id``, ``aud`` (the payload's ``aud``), ``iat``, ``exp`` = ``iat`` + 600
  seconds ("exp - iat is always <= 10 minutes"), ``jti`` (a unique UUID per request);
- ``client_assertion`` and ``client_assertion_type`` are added to the form body at run time.

Adobe's list has no ``nbf`` and no ``x5t#S256``; the lab adds ``nbf`` = ``iat`` (model: Microsoft's page
for Entra ID lists it, and it changes nothing for a provider that ignores it) and no ``x5t#S256``.
The JWS is made by PyJWT, never by hand.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mtls_lab.caller.rules import ActionError
from mtls_lab.caller.tls import ClientIdentity
from mtls_lab.certs.inspect import x5t

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHM = "RS256"
LIFETIME = 600  # seconds: Adobe documents exp - iat <= 10 minutes


def client_assertion(
    identity: ClientIdentity, client_id: str, audience: str, now: float | None = None, lifetime: int = LIFETIME
) -> str:
    """A signed assertion (compact JWS) for one token call."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": str(uuid.uuid4()),
    }
    leaf = identity.certificates()[0]
    headers: dict[str, Any] = {"x5t": x5t(leaf), "typ": None}  # typ: None keeps Adobe's two header fields
    return jwt.encode(claims, _signing_key(identity), algorithm=ALGORITHM, headers=headers)


def describe(assertion: str) -> dict[str, Any]:
    """The assertion's header and claims (not the signature), for the verdict."""
    return {
        "header": jwt.get_unverified_header(assertion),
        "claims": jwt.decode(assertion, options={"verify_signature": False}),
    }


def _signing_key(identity: ClientIdentity) -> rsa.RSAPrivateKey:
    password = identity.password.encode() if identity.password else None
    try:
        key = serialization.load_pem_private_key(identity.key_file.read_bytes(), password)
    except (OSError, ValueError, TypeError) as exc:
        raise ActionError(
            f"--key {identity.key_file}: cannot read the identity's private key to sign the client assertion ({exc})"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ActionError(f"--key {identity.key_file}: certificateCredential signs with RS256: give an RSA key")
    return key
