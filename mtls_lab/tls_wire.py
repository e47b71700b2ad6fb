"""Decode the few TLS handshake messages whose facts the lab shows, from their bodies (after the 4-byte header).

Both sides observe handshake messages through OpenSSL's message callback: the caller its own connection
(``mtls_lab.caller._handshake_trace``), the server every connection attempt (``mtls_lab.server._tls_watch``).
The framing is RFC 8446 4.1.2-4.4.2 and RFC 5246 7.4; the DER inside is left to libraries (distinguished
names to OpenSSL through ``mtls_lab._openssl.name_text``, certificates to the caller of ``certificate_ders``).
Every decoder raises ValueError on a truncated message.
"""

from __future__ import annotations

from typing import Any

from mtls_lab import _openssl

VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
SUPPORTED_VERSIONS, SERVER_NAME, CERTIFICATE_AUTHORITIES = 43, 0, 47
POST_HANDSHAKE_AUTH = 49  # RFC 8446 4.2.6: the client can answer a CertificateRequest after the handshake


class Reader:
    """A cursor over a message body: fixed-size numbers and length-prefixed vectors."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size]
        if len(chunk) != size:
            raise ValueError("truncated handshake message")
        self.at += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    def done(self) -> bool:
        return self.at >= len(self.data)


def extensions(reader: Reader) -> dict[int, bytes]:
    """The extensions block that ends a hello or a TLS 1.3 CertificateRequest, by type."""
    if reader.done():
        return {}
    block = reader.vector(2)
    found, at, end = {}, 0, len(block)
    while at < end:  # a plain loop: a server decodes one ClientHello per connection
        if at + 4 > end:
            raise ValueError("truncated extension")
        size = int.from_bytes(block[at + 2 : at + 4], "big")
        found[int.from_bytes(block[at : at + 2], "big")] = block[at + 4 : at + 4 + size]
        at += 4 + size
    if at != end:
        raise ValueError("truncated extension")
    return found


def client_hello(body: bytes, _tls13: bool = False) -> dict[str, Any]:
    """``versions_offered`` (names, highest first as sent), ``sni`` if the client sent one, and
    ``post_handshake_auth``: whether it offered TLS 1.3 post-handshake authentication (RFC 8446 4.2.6)."""
    reader = Reader(body)
    legacy = reader.number(2)
    reader.take(32)
    reader.vector(1)  # session id
    reader.vector(2)  # cipher suites
    reader.vector(1)  # compression
    ext = extensions(reader)
    details: dict[str, Any] = {"versions_offered": [VERSIONS.get(legacy, hex(legacy))]}
    if SUPPORTED_VERSIONS in ext:
        versions = Reader(ext[SUPPORTED_VERSIONS]).vector(1)
        details["versions_offered"] = [
            VERSIONS.get(int.from_bytes(versions[i : i + 2], "big"), "other") for i in range(0, len(versions), 2)
        ]
    if SERVER_NAME in ext:
        names = Reader(Reader(ext[SERVER_NAME]).vector(2))
        names.take(1)
        details["sni"] = names.vector(2).decode("ascii", errors="replace")
    details["post_handshake_auth"] = POST_HANDSHAKE_AUTH in ext
    return details


def server_hello(body: bytes, _tls13: bool = False) -> dict[str, Any]:
    """The ``version`` and ``cipher_suite`` the server chose."""
    reader = Reader(body)
    legacy = reader.number(2)
    reader.take(32)
    reader.vector(1)
    cipher = reader.number(2)
    reader.take(1)
    ext = extensions(reader)
    version = int.from_bytes(ext[SUPPORTED_VERSIONS], "big") if SUPPORTED_VERSIONS in ext else legacy
    return {"version": VERSIONS.get(version, hex(version)), "cipher_suite": f"0x{cipher:04x}"}


def _names(block: bytes) -> list[str]:
    reader = Reader(block)
    names = []
    while not reader.done():
        names.append(_openssl.name_text(reader.vector(2)))
    return names


def certificate_request(body: bytes, tls13: bool) -> dict[str, Any]:
    """``ca_names``: the CA names the server advertised (RFC 4514 strings), possibly none."""
    reader = Reader(body)
    if tls13:  # RFC 8446 4.3.2: request context, then extensions (certificate_authorities)
        reader.vector(1)
        names = extensions(reader).get(CERTIFICATE_AUTHORITIES)
        return {"ca_names": _names(Reader(names).vector(2)) if names else []}
    reader.vector(1)  # RFC 5246 7.4.4: certificate types, signature algorithms, certificate_authorities
    reader.vector(2)
    return {"ca_names": _names(reader.vector(2))}


def certificate_ders(body: bytes, tls13: bool) -> list[bytes]:
    """The DER certificates of a Certificate message, in the order sent (empty: an empty Certificate)."""
    reader = Reader(body)
    if tls13:
        reader.vector(1)  # request context
    entries = Reader(reader.vector(3))
    ders = []
    while not entries.done():
        ders.append(entries.vector(3))
        if tls13:
            entries.vector(2)  # per-certificate extensions
    return ders
