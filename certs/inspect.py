"""Certificate inspection shared by the generator, the server and the caller."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
}


@dataclass(frozen=True)
class CertFacts:
    """What a person needs to know about one certificate."""

    subject: str
    common_name: str | None
    issuer: str
    dns_names: tuple[str, ...]
    sha256: str
    not_before: str
    not_after: str
    extended_key_usage: tuple[str, ...]
    is_ca: bool

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertFacts:
        return cls(
            subject=cert.subject.rfc4514_string(),
            common_name=common_name(cert.subject),
            issuer=cert.issuer.rfc4514_string(),
            dns_names=_dns_names(cert),
            sha256=fingerprint(cert),
            not_before=_iso(cert.not_valid_before_utc),
            not_after=_iso(cert.not_valid_after_utc),
            extended_key_usage=_ekus(cert),
            is_ca=is_ca(cert),
        )

    @classmethod
    def from_der(cls, der: bytes) -> CertFacts:
        """Cached: a server sees the same client certificate on connection after connection."""
        return _facts_of_der(der)

    def names(self) -> set[str]:
        """The CN and every DNS SAN."""
        return {*self.dns_names, *([self.common_name] if self.common_name else [])}

    def identity_names(self) -> set[str]:
        """The names an allow-list matches: the DNS SANs, or the CN only when there is none (RFC 2818 3.1)."""
        return set(self.dns_names) or ({self.common_name} if self.common_name else set())

    def to_json(self) -> dict[str, Any]:
        """A fresh dict each call (callers may change it); built once per certificate."""
        cached: dict[str, Any] | None = self.__dict__.get("_json")
        if cached is None:
            cached = asdict(self)
            cached["dns_names"] = list(self.dns_names)
            cached["extended_key_usage"] = list(self.extended_key_usage)
            object.__setattr__(self, "_json", cached)
        return {
            **cached,
            "dns_names": list(cached["dns_names"]),
            "extended_key_usage": list(cached["extended_key_usage"]),
        }


@functools.lru_cache(maxsize=512)
def _facts_of_der(der: bytes) -> CertFacts:
    return CertFacts.of(x509.load_der_x509_certificate(der))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lower-case hex without separators."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def x5t(cert: x509.Certificate) -> str:
    """The JOSE ``x5t``: base64url (no padding) of the SHA-1 of the DER encoding (RFC 7515 4.1.7)."""
    return _b64url(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())


def x5t_s256(cert: x509.Certificate) -> str:
    """The JOSE ``x5t#S256``: base64url (no padding) of the SHA-256 of the DER encoding (RFC 7515 4.1.8)."""
    return _b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())


def _b64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalize_fingerprint(text: str) -> str:
    """Accept ``AB:CD:...``, ``abcd...`` or ``sha256//...``-free hex; return lower-case hex."""
    cleaned = text.strip().lower().replace(":", "").replace(" ", "")
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint: give 64 hex digits, colons allowed")
    return cleaned


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def load_pem_chain(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file, in file order."""
    return x509.load_pem_x509_certificates(path.read_bytes())


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def _ekus(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
