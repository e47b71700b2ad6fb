"""The leaf certificates Adobe's public-certificate API lists, written as an identity provider's upload wants them.

Certificate-based custom authentication needs Adobe's certificate registered with the customer's identity
provider. Adobe: register "only Adobe's leaf certificate, not the intermediate or root CA": call the
public-certificate API, take the entry whose ``certCommonName`` is ``ajo-journeys.aep-mtls.adobe.com``,
and register its ``publicCertificate``; Adobe rotates it 60 days before expiry without notice, so check
``expiryDate`` and register the new one before the old one is revoked, 30 days before its expiry.

This is the opposite of the mTLS advice (trust the chain, never pin the leaf): here the leaf IS what is
registered. ``write_leaves`` writes each listed leaf of the chosen common name alone in a PEM file named
after its expiry (Entra ID's "Upload certificate" takes one .cer, .pem or .crt file per certificate),
and reports what a person compares in the provider's portal: the SHA-1 thumbprint in hex (what Entra ID
shows), the ``x5t`` an assertion carries, and the expiry. An existing file with the same content is left
as it is; one with other content is an error, never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtls_lab.certs.inspect import is_ca, pem_of, x5t
from mtls_lab.certs.layout import ADOBE_CN
from mtls_lab.errors import LabError
from mtls_lab.lifecycle.client import Fetched


@dataclass(frozen=True)
class Leaf:
    """One leaf written (or found already written) for upload."""

    path: Path
    common_name: str
    thumbprint: str  # SHA-1 of the DER, upper-case hex: what Entra ID lists
    x5t: str  # the same digest, base64url: what a client assertion's header carries
    expiry: dt.datetime
    written: bool  # False: the same file was already there

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "common_name": self.common_name,
            "thumbprint": self.thumbprint,
            "x5t": self.x5t,
            "expiry": self.expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "written": self.written,
        }


def write_leaves(fetched: Fetched, out: Path, common_name: str = ADOBE_CN) -> list[Leaf]:
    """Write each listed leaf whose ``certCommonName`` is ``common_name`` into ``out``, newest last."""
    entries = sorted((e for e in fetched.entries if e.common_name == common_name), key=lambda e: e.expiry)
    if not entries:
        names = ", ".join(sorted({e.common_name for e in fetched.entries})) or "none"
        raise LabError(f"{fetched.url}: no certificate with certCommonName {common_name} (listed: {names}): check --cn")
    out.mkdir(parents=True, exist_ok=True)
    return [_write(_leaf_of(entry.certificates), out, common_name) for entry in entries]


def render(leaves: list[Leaf]) -> str:
    lines = [
        f"{'wrote' if leaf.written else 'kept '} {leaf.path}  thumbprint {leaf.thumbprint}  x5t {leaf.x5t}  "
        f"expires {leaf.expiry:%Y-%m-%d}"
        for leaf in leaves
    ]
    lines.append(
        "Register each with the identity provider (the leaf alone, not its CAs); during a rotation register the new "
        "one while the old one is still valid."
    )
    return "\n".join(lines)


def _leaf_of(certificates: tuple[x509.Certificate, ...]) -> x509.Certificate:
    leaves = [cert for cert in certificates if not is_ca(cert)]
    return leaves[0] if leaves else certificates[0]  # publicCertificate may hold a chain (a lab extension)


def _write(cert: x509.Certificate, out: Path, common_name: str) -> Leaf:
    expiry = cert.not_valid_after_utc
    path = out / f"{common_name}-{expiry:%Y-%m-%d}.pem"
    pem = pem_of(cert)
    written = True
    if path.exists():
        if path.read_text() != pem:
            raise LabError(f"{path} exists with another certificate: choose another --out (nothing is overwritten)")
        written = False
    else:
        path.write_text(pem)
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return Leaf(path, common_name, sha1, x5t(cert), expiry, written)
