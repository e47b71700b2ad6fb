"""Probe certificates: chains made fresh in memory that no verifier can accept, and what each one asks.

Only Adobe holds the key of its certificate, so nobody else can present a chain that passes. But a
chain can be built that fails *differently* depending on the endpoint, and that tells from outside:

1. **The trust probe** (``forge``): does the endpoint trust a real DigiCert root? The probe
   intermediate carries the real intermediate's name, names the real root (found in certifi) as its
   issuer, and its Authority Key Identifier is the root's Subject Key Identifier; it is signed by a
   throwaway key of the root's type (RSA for both DigiCert roots), so its signature is false. The
   probe leaf (``trust-probe.invalid``, clientAuth, organisation "mtls-lab trust probe") is signed by
   the probe intermediate's own throwaway key. An endpoint that trusts the root builds the chain up to
   it and fails the intermediate's signature (OpenSSL: X509_V_ERR_CERT_SIGNATURE_FAILURE, alert
   ``decrypt_error``); one that does not trust it cannot build a chain (unable to get local issuer
   certificate, alert ``unknown_ca``). With a key type other than the root's, OpenSSL does not even
   consider the root as issuer and both answer ``unknown_ca``: hence the RSA key.
2. **The stack probe** (``stack_probe``): an expired, self-signed ``stack-probe.invalid``. OpenSSL
   builds the chain first (alert ``unknown_ca``); Go checks the leaf's dates first (``certificate_expired``,
   or ``bad_certificate`` before Go 1.20); JSSE says ``certificate_unknown``; nginx its 400 page. One
   connection tells the server's TLS stack apart (caller/stacks.py has the measured table).

The certificates never validate anywhere: their signatures or dates are false by construction. They
reach disk only as the private temporary files Python's ``ssl`` needs to load a certificate (mode
0600, in a fresh temporary directory removed as soon as the probe ends).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls_lab.caller.tls import ClientIdentity
from mtls_lab.errors import LabError
from mtls_lab.vocabulary import AdobeChain

PROBE_NAME = "trust-probe.invalid"
PROBE_ORG = "mtls-lab trust probe (forged: fails every signature check)"
STACK_PROBE_NAME = "stack-probe.invalid"
STACK_PROBE_ORG = "mtls-lab stack probe (self-signed and expired)"


class Hierarchy(enum.Enum):
    """Adobe's CA hierarchies for the custom-action certificate (ajo-facts.md)."""

    TODAY = "today"
    MIGRATION = "migration"

    @property
    def root(self) -> str:
        return {Hierarchy.TODAY: AdobeChain.TODAY_ROOT, Hierarchy.MIGRATION: AdobeChain.MIGRATION_ROOT}[self]

    @property
    def intermediate(self) -> str:
        return {
            Hierarchy.TODAY: AdobeChain.TODAY_INTERMEDIATE,
            Hierarchy.MIGRATION: AdobeChain.MIGRATION_INTERMEDIATE,
        }[self]

    @property
    def label(self) -> str:
        return {
            Hierarchy.TODAY: "today's chain",
            Hierarchy.MIGRATION: "the CA migration's chain",
        }[self]


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


def real_root(name: str, bundle: Path | None = None) -> x509.Certificate:
    """The real root CA called ``name`` from certifi's bundle (Mozilla's root store)."""
    path = bundle or Path(certifi.where())
    for block in _PEM.findall(path.read_bytes()):
        with warnings.catch_warnings():  # a few old roots in the bundle have non-RFC serial numbers
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_pem_x509_certificate(block)
        if _cn(cert.subject) == name:
            return cert
    raise LabError(f"{name} is not in {path}: update certifi (pip install -U certifi)")


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


@dataclass(frozen=True)
class ProbeChain:
    """Probe certificates (leaf first) and the leaf's key, with what they are for. Never valid anywhere."""

    label: str
    certs: tuple[x509.Certificate, ...]
    key: ec.EllipticCurvePrivateKey
    purpose: str

    def pem(self) -> bytes:
        note = f"# {self.label}, made by `mtls-lab probe`: {self.purpose}\n".encode()
        return note + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certs)


def forge(
    hierarchy: Hierarchy,
    root: x509.Certificate | None = None,
    now: dt.datetime | None = None,
    false_root_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> ProbeChain:
    """Build the probe chain for ``hierarchy`` from its real root (see the module docstring).

    ``false_root_key`` signs the intermediate in the root's place: by default a fresh RSA key of the root's
    size (the tests pass another type to show why the type matters).
    """
    root = root or real_root(hierarchy.root)
    moment = now or dt.datetime.now(dt.UTC)
    root_key = root.public_key()
    if not isinstance(root_key, rsa.RSAPublicKey):
        raise LabError(f"{hierarchy.root} has a {type(root_key).__name__}: the probe handles RSA roots only")
    false_root_key = false_root_key or rsa.generate_private_key(65537, root_key.key_size)  # the root's type and size
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    intermediate_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
            x509.NameAttribute(NameOID.COMMON_NAME, hierarchy.intermediate),
        ]
    )
    intermediate = (
        _base(intermediate_name, root.subject, intermediate_key.public_key(), moment)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier(root_ski, None, None), critical=False)
        .sign(false_root_key, hashes.SHA256())
    )
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, PROBE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, PROBE_NAME),
        ]
    )
    leaf = (
        _base(leaf_name, intermediate_name, leaf_key.public_key(), moment)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(PROBE_NAME)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate_key.public_key()), False)
        .sign(intermediate_key, hashes.SHA256())
    )
    return ProbeChain(
        f"trust probe for {hierarchy.root}",
        (leaf, intermediate),
        leaf_key,
        "the intermediate's signature is false by construction; no verifier accepts this chain",
    )


def stack_probe(now: dt.datetime | None = None) -> ProbeChain:
    """An expired, self-signed certificate: which check a server runs first tells its TLS stack."""
    moment = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, STACK_PROBE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, STACK_PROBE_NAME),
        ]
    )
    cert = (
        _base(name, name, key.public_key(), moment - dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(STACK_PROBE_NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ProbeChain("stack probe", (cert,), key, "self-signed and expired: no verifier accepts it")


def _base(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


@contextmanager
def probe_identity(chain: ProbeChain) -> Iterator[ClientIdentity]:
    """The chain as a ClientIdentity, in private temporary files that are removed on exit."""
    with tempfile.TemporaryDirectory(prefix="mtls-lab-probe-") as folder:
        cert, key = Path(folder) / "probe-chain.pem", Path(folder) / "probe-key.pem"
        for path, data in (
            (cert, chain.pem()),
            (
                key,
                chain.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            ),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        yield ClientIdentity(chain.label, cert, key)
