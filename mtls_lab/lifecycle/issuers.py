"""Where ``mtls-lab trust-sync`` finds CA certificates, and how it checks them.

Adobe's API returns the certificate itself. trust-sync looks for each issuer, checking its signature,
among (1) the certificates after the first in ``publicCertificate`` (the lab API's ``--chain full``, a
lab extension), (2) ``--ca-dir`` (e.g. DigiCert's published root and intermediate files, PEM or DER;
the lab's ``certs/ca``), and (3) the bundle itself. A chain must end in a self-signed root.

Staging (``--stage``): Adobe asks customers to add the new hierarchy's root and intermediate to their
trust store "as soon as possible", "before Adobe begins presenting certificates issued from the new
hierarchy", as a one-time change separate from the automated retrieval ("Update your trust store for
Adobe's new mTLS certificate hierarchy"). No listed certificate needs those CAs yet, so trust-sync adds
them only when told: ``--stage next-hierarchy`` takes DigiCert Assured ID Root G2 and DigiCert Assured
ID Client CA G2 from ``--ca-dir`` (the lab's stand-ins count: their names end in the real ones), and
``--stage FILE`` the CA certificates of a file. Each is checked like an issuer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from mtls_lab.certs.inspect import common_name, fingerprint, is_ca
from mtls_lab.certs.layout import CA, LAB_STAND_IN
from mtls_lab.errors import LabError
from mtls_lab.lifecycle.files import unique

NEXT_HIERARCHY = "next-hierarchy"
# Adobe's page links DigiCert's DER files; the names are the CN of each.
DIGICERT = "http://cacerts.digicert.com/"
NEXT_CAS = {
    str(CA.NEXT_ROOT.stands_in_for): DIGICERT + "DigiCertAssuredIDRootG2.crt",
    str(CA.NEXT_INTERMEDIATE.stands_in_for): DIGICERT + "DigiCertAssuredIDClientCAG2.crt",
}


@dataclass(frozen=True)
class StagedCA:
    """A CA to stage, and where it came from (for the report)."""

    cert: x509.Certificate
    source: str


def read_ca_dir(directory: Path) -> list[x509.Certificate]:
    """Every CA certificate in the directory's PEM or DER files (``.pem``, ``.crt``, ``.cer``, ``.der``)."""
    if not directory.is_dir():
        raise LabError(f"--ca-dir {directory}: not a directory: give the directory holding the CA files")
    certs: list[x509.Certificate] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in (".pem", ".crt", ".cer", ".der") and path.is_file():
            certs += load_certificates(path, "--ca-dir")
    return unique(c for c in certs if is_ca(c))


def load_certificates(path: Path, option: str) -> list[x509.Certificate]:
    """The certificates of a PEM or DER file; LabError naming ``option`` if it holds none."""
    try:
        data = path.read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except (OSError, ValueError) as exc:
        raise LabError(f"{option}: {path} is neither PEM nor DER certificates ({exc}): give certificate files") from exc


def real_name(cert: x509.Certificate) -> str:
    """The CA's common name, or for a lab stand-in the name of the real CA it stands in for."""
    return (common_name(cert.subject) or "").removeprefix(LAB_STAND_IN)


# --- staging --------------------------------------------------------------------------------------


def to_stage(
    sources: tuple[str, ...],
    ca_dir: Path | None,
    pool: list[x509.Certificate],
    bundle: list[x509.Certificate],
    now: dt.datetime,
) -> list[StagedCA]:
    """The CAs ``--stage`` names, each checked (a CA, valid, chaining by signature to a root); LabError if not."""
    staged: list[StagedCA] = []
    for source in sources:
        if source == NEXT_HIERARCHY:
            staged += [StagedCA(c, f"--stage {NEXT_HIERARCHY} (--ca-dir)") for c in _next_hierarchy(ca_dir, pool)]
        else:
            staged += [StagedCA(c, f"--stage {source}") for c in _stage_file(Path(source))]
    anchors = [s.cert for s in staged] + pool + bundle
    for item in staged:
        _check_stageable(item, anchors, now)
    return list({fingerprint(s.cert): s for s in staged}.values())


def _next_hierarchy(ca_dir: Path | None, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    if ca_dir is None:
        raise LabError(
            f"--stage {NEXT_HIERARCHY} takes Adobe's next CAs from --ca-dir: pass --ca-dir DIR holding "
            f"{' and '.join(NEXT_CAS)}, or --stage FILE"
        )
    found = [c for c in pool if real_name(c) in NEXT_CAS]
    for name, url in NEXT_CAS.items():
        if not any(real_name(c) == name for c in found):
            raise LabError(f"--stage {NEXT_HIERARCHY}: --ca-dir {ca_dir} holds no {name}: download {url} into it")
    return found


def _stage_file(path: Path) -> list[x509.Certificate]:
    if not path.is_file():
        raise LabError(
            f"--stage {path}: no such file: give a PEM or DER file of CA certificates, or --stage {NEXT_HIERARCHY}"
        )
    return load_certificates(path, "--stage")


def _check_stageable(item: StagedCA, anchors: list[x509.Certificate], now: dt.datetime) -> None:
    cert, name = item.cert, common_name(item.cert.subject) or item.cert.subject.rfc4514_string()
    if not is_ca(cert):
        raise LabError(
            f"{item.source}: {name} is not a CA certificate (a leaf?): stage the root and intermediate that will "
            "issue Adobe's certificates, never a leaf"
        )
    if cert.not_valid_after_utc <= now:
        raise LabError(f"{item.source}: {name} expired on {cert.not_valid_after_utc:%Y-%m-%d}: stage a current copy")
    top = ([cert, *resolve_chain(cert, anchors)])[-1]
    if not self_signed(top):
        raise LabError(
            f"{item.source}: {name} chains to {top.issuer.rfc4514_string()}, which is in neither --stage, --ca-dir "
            "nor the bundle: stage its root too"
        )


# --- chains ---------------------------------------------------------------------------------------


def resolve_chain(cert: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """The CAs above ``cert``, issuer first, each checked by signature; stops where no issuer is found."""
    chain: list[x509.Certificate] = []
    current = cert
    while not self_signed(current):
        issuer = next((c for c in pool if is_ca(c) and issued_by(current, c) and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)
