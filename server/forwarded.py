"""Client certificates forwarded in a header by the proxy that terminates TLS in front of the app.

The formats, from each proxy's documentation:
- Envoy ``x-forwarded-client-cert``: ``By=...;Hash=<hex>;Cert="<url-encoded PEM>";Chain="...";Subject="..."``,
  one comma-separated element per proxy hop (the last one is the nearest proxy's);
- nginx ``$ssl_client_escaped_cert`` (usually ``X-SSL-Client-Cert``): the url-encoded PEM of the leaf;
- AWS ALB ``X-Amzn-Mtls-Clientcert`` (passthrough: the chain) and ``X-Amzn-Mtls-Clientcert-Leaf``
  (verify mode): url-encoded PEM;
- Azure App Service ``X-ARR-ClientCert``: base64 DER of the leaf;
- RFC 9440 ``Client-Cert``: a structured-field byte sequence, ``:<base64 DER>:``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

KNOWN_HEADERS = (
    "x-forwarded-client-cert",
    "x-ssl-client-cert",
    "x-amzn-mtls-clientcert",
    "x-amzn-mtls-clientcert-leaf",
    "x-arr-clientcert",
    "client-cert",
)


class HeaderError(ValueError):
    """The header is present but holds no certificate we can read."""


def parse_client_cert_header(name: str, value: str) -> list[x509.Certificate]:
    """The certificates in a forwarded-certificate header, leaf first."""
    name, value = name.lower(), value.strip()
    if name == "x-forwarded-client-cert" or value.lower().startswith(("hash=", "by=", "cert=")):
        return _xfcc(value)
    if name == "client-cert" or value.startswith(":"):
        return [_der(value.strip(":"))]
    if name == "x-arr-clientcert":
        return [_der(value)]
    decoded = unquote(value).replace("\t", "\n")  # nginx's older $ssl_client_cert indents lines with tabs
    if "-----BEGIN CERTIFICATE-----" in decoded:
        return _pem(decoded)
    return [_der(value)]


def _xfcc(value: str) -> list[x509.Certificate]:
    elements = _split(value, ",")
    fields = {}
    for pair in _split(elements[-1], ";"):
        key, _, raw = pair.partition("=")
        fields[key.strip().lower()] = raw.strip().strip('"')
    pem = fields.get("chain") or fields.get("cert")
    if not pem:
        raise HeaderError("x-forwarded-client-cert has no Cert or Chain field: configure Envoy to forward the cert")
    return _pem(unquote(pem))


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _pem(text: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise HeaderError(f"not a PEM certificate ({exc})") from exc
    return certs


def _der(text: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise HeaderError(f"not a base64 DER certificate ({exc})") from exc


def trusted(address: str | None, proxies: tuple[str, ...]) -> bool:
    """Whether a request from ``address`` may carry a forwarded certificate (addresses or CIDR ranges)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
    except ValueError:
        return False


def encode_for(name: str, chain: list[x509.Certificate]) -> str:
    """How a proxy would put ``chain`` in header ``name`` (for tests and the nginx example)."""
    from urllib.parse import quote

    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)
    der = base64.b64encode(chain[0].public_bytes(Encoding.DER)).decode()
    name = name.lower()
    if name == "x-forwarded-client-cert":
        return f'Hash=00;Cert="{quote(pem, safe="")}";Subject="{chain[0].subject.rfc4514_string()}"'
    if name == "client-cert":
        return f":{der}:"
    if name == "x-arr-clientcert":
        return der
    if name == "x-amzn-mtls-clientcert-leaf":
        return quote(chain[0].public_bytes(Encoding.PEM).decode(), safe="")
    return quote(pem, safe="")
