"""Generate the lab PKI: the Adobe-like chains, the server's certificate and each failure's identity.

trustme makes the server side (its CAs always add clientAuth and carry only O/OU names, which is fine
there). The Adobe-like side needs full subjects and exact EKUs, so cryptography builds it directly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls_lab import __version__
from mtls_lab.certs.inspect import CertFacts, load_pem_chain, pem_of
from mtls_lab.certs.layout import ADOBE_CN, CA, LAB_STAND_IN, LISTED_ONLY, AdobeApp, Identity, LabPaths
from mtls_lab.errors import LabError

DAY = dt.timedelta(days=1)
LIFETIME = 396 * DAY  # Adobe's certificates live 13 months
SERVER_NAMES = ("localhost", "127.0.0.1", "::1", "server", "server-tls", "server-mtls", "server-mixed")
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


def adobe_subject(cn: str = ADOBE_CN) -> x509.Name:
    """The subject of Adobe's custom-action client certificate (docs/adobe-facts.md), or of another application's."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Jose"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Adobe Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def lab_ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MTLS LAB (not a real CA)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_NAMES = {
    **{ca: LAB_STAND_IN + str(ca.stands_in_for) for ca in CA if ca.stands_in_for},
    CA.IMPOSTOR_ROOT: "MTLS LAB impostor root (unrelated CA)",
}
IMPOSTOR_INTERMEDIATE = "MTLS LAB impostor intermediate"
SERVER_ROOT_ORG = "MTLS LAB"
SERVER_ROOT_UNIT = "MTLS LAB server root (issues the lab server certificate)"


@dataclass
class Issued:
    """A certificate with its key and the chain (excluding the root) a peer should send with it."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)


@dataclass(frozen=True)
class GenerateResult:
    paths: LabPaths
    written: list[Path]
    reused: bool
    seconds: float


def generate(
    out: Path, *, force: bool = False, if_missing: bool = False, now: dt.datetime | None = None
) -> GenerateResult:
    """Write the lab PKI under ``out``; never replace existing files unless ``force``."""
    started = time.perf_counter()
    paths = LabPaths(out)
    existing = [p for p in paths.all_files() if p.exists()]
    if existing and not force:
        if if_missing and len(existing) == len(paths.all_files()):
            return GenerateResult(paths, [], True, time.perf_counter() - started)
        _refuse(paths, existing, if_missing)
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    files = _build(moment)
    written = _write_all(paths, files, moment)
    return GenerateResult(paths, written, False, time.perf_counter() - started)


def _refuse(paths: LabPaths, existing: list[Path], if_missing: bool) -> None:
    if if_missing:
        missing = [str(p) for p in paths.all_files() if not p.exists()]
        raise LabError(
            f"the lab PKI in {paths.root} is incomplete (missing {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}): run `mtls-lab certs --out {paths.root} --force` to rebuild it"
        )
    raise LabError(
        f"a lab PKI already exists in {paths.root} ({len(existing)} files, e.g. {existing[0]}): "
        "keep it, reuse it with --if-missing, or replace every key with --force"
    )


# --- building -----------------------------------------------------------------------------------


def _build(now: dt.datetime) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # RSA key generation releases the GIL
        keys = list(pool.map(lambda _: rsa.generate_private_key(65537, 2048), range(15)))
    k = iter(keys)
    long_ago, far_ahead = now - 365 * DAY, now + 20 * 365 * DAY

    adobe_root = _ca(_CA_NAMES[CA.ADOBE_ROOT], next(k), None, long_ago, far_ahead)
    adobe_int = _ca(
        _CA_NAMES[CA.ADOBE_INTERMEDIATE], next(k), adobe_root, long_ago, far_ahead, (SERVER_AUTH, CLIENT_AUTH)
    )
    next_root = _ca(_CA_NAMES[CA.NEXT_ROOT], next(k), None, long_ago, far_ahead)
    next_int = _ca(_CA_NAMES[CA.NEXT_INTERMEDIATE], next(k), next_root, long_ago, far_ahead, (CLIENT_AUTH,))
    impostor_root = _ca(_CA_NAMES[CA.IMPOSTOR_ROOT], next(k), None, long_ago, far_ahead)
    impostor_int = _ca(IMPOSTOR_INTERMEDIATE, next(k), impostor_root, long_ago, far_ahead)

    # Place "now" inside Adobe's rotation overlap: the current certificate is in its last weeks, the
    # rotated one was issued 60 days before the current one expires (docs/adobe-facts.md), both are valid.
    current_start = now - 350 * DAY
    rotated_start = current_start + LIFETIME - 60 * DAY
    both = (SERVER_AUTH, CLIENT_AUTH)
    clients = {
        Identity.ADOBE: _leaf(next(k), adobe_int, current_start, both),
        Identity.ADOBE_ROTATED: _leaf(next(k), adobe_int, rotated_start, both),
        Identity.ADOBE_NEXT: _leaf(next(k), next_int, now - 10 * DAY, (CLIENT_AUTH,)),
        Identity.IMPOSTOR: _leaf(next(k), impostor_int, now - 30 * DAY, both),
        Identity.EXPIRED: _leaf(next(k), adobe_int, now - LIFETIME - 30 * DAY, both),
        Identity.NOT_YET_VALID: _leaf(next(k), adobe_int, now + 30 * DAY, both),
        Identity.NO_CLIENT_AUTH: _leaf(next(k), adobe_int, now - 30 * DAY, (SERVER_AUTH,)),
        Identity.SELF_SIGNED: _leaf(next(k), None, now - 30 * DAY, both),
    }
    # Adobe's other applications, listed by the API next to AJO's certificate: valid beyond the rotated
    # certificate (ajo-sms) and a little before it (aep), so that expiry dates tell them apart. One key
    # for both: the lab never presents them, and every key generated costs start-up time.
    app_key = next(k)
    apps = {
        AdobeApp.PLATFORM: _leaf(app_key, adobe_int, now - 20 * DAY, both, AdobeApp.PLATFORM.common_name),
        AdobeApp.SMS: _leaf(app_key, adobe_int, now - 5 * DAY, both, AdobeApp.SMS.common_name),
    }
    server_ca = trustme.CA(organization_name=SERVER_ROOT_ORG, organization_unit_name=SERVER_ROOT_UNIT)
    server = server_ca.issue_cert(*SERVER_NAMES, common_name="localhost")
    return {
        "cas": {
            CA.ADOBE_ROOT: adobe_root.cert,
            CA.ADOBE_INTERMEDIATE: adobe_int.cert,
            CA.NEXT_ROOT: next_root.cert,
            CA.NEXT_INTERMEDIATE: next_int.cert,
            CA.IMPOSTOR_ROOT: impostor_root.cert,
            CA.SERVER_ROOT: x509.load_pem_x509_certificate(server_ca.cert_pem.bytes()),
        },
        "clients": clients,
        "apps": apps,
        "server_chain": b"".join(blob.bytes() for blob in server.cert_chain_pems),
        "server_key": server.private_key_pem.bytes(),
    }


def _ca(
    common_name: str,
    key: rsa.RSAPrivateKey,
    parent: Issued | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ekus: Sequence[x509.ObjectIdentifier] = (),
) -> Issued:
    name = lab_ca_name(common_name)
    builder = _base(name, key, parent, not_before, not_after)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True
    )
    builder = builder.add_extension(
        x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
    )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    cert = builder.sign(parent.key if parent else key, hashes.SHA256())
    return Issued(cert, key, [] if parent is None else [cert, *parent.chain])


def _leaf(
    key: rsa.RSAPrivateKey,
    parent: Issued | None,
    not_before: dt.datetime,
    ekus: Sequence[x509.ObjectIdentifier],
    cn: str = ADOBE_CN,
) -> Issued:
    builder = _base(adobe_subject(cn), key, parent, not_before, not_before + LIFETIME)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
    )
    builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if "." in cn and " " not in cn:  # a host name (not "Adobe Experience Platform"): also the DNS SAN
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    cert = builder.sign(parent.key if parent else key, hashes.SHA256())
    return Issued(cert, key, [] if parent is None else [parent.cert])


def _base(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    parent: Issued | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    issuer_name = parent.cert.subject if parent else subject
    issuer_key = parent.key.public_key() if parent else key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
    )


# --- writing ------------------------------------------------------------------------------------


def _write_all(paths: LabPaths, files: dict[str, Any], now: dt.datetime) -> list[Path]:
    written: list[Path] = []

    def put(path: Path, data: bytes, secret: bool = False) -> None:
        _write(path, data, secret)
        written.append(path)

    for ca, cert in files["cas"].items():
        put(paths.ca(ca), pem_of(cert).encode())
    put(paths.server_cert, files["server_chain"])
    put(paths.server_key, files["server_key"], secret=True)
    for identity, issued in files["clients"].items():
        leaf = pem_of(issued.cert).encode()
        put(paths.client_cert(identity), leaf + b"".join(pem_of(c).encode() for c in issued.chain))
        put(paths.client_leaf(identity), leaf)
        put(paths.client_key(identity), _key_pem(issued.key), secret=True)
    for app in LISTED_ONLY:
        put(paths.app_leaf(app), pem_of(files["apps"][app].cert).encode())
    put(paths.manifest, json.dumps(_manifest(paths, written, now), indent=2).encode() + b"\n")
    return written


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, secret: bool) -> None:
    """Write atomically; keys are created 0600 (directories 0700) before a byte is written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if secret else 0o755)
        if secret:
            path.parent.chmod(0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
        try:
            os.fchmod(fd, 0o600 if secret else 0o644)
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror or exc}: choose a writable directory with --out") from exc


def _manifest(paths: LabPaths, written: list[Path], now: dt.datetime) -> dict[str, Any]:
    entries = []
    for path in written:
        rel = path.relative_to(paths.root).as_posix()
        if path.name == "key.pem":
            entries.append({"path": rel, "role": f"private key for {rel[:-7]}cert.pem", "mode": "0600"})
            continue
        chain = load_pem_chain(path)
        facts = CertFacts.of(chain[0])
        entry: dict[str, Any] = {"path": rel, "role": _role(rel), **_manifest_facts(facts)}
        if len(chain) > 1:
            entry["chain"] = [c.subject.rfc4514_string() for c in chain[1:]]
        entries.append(entry)
    return {"generator": f"ajo-mtls-lab {__version__}", "generated_at": now.isoformat(), "files": entries}


def _manifest_facts(facts: CertFacts) -> dict[str, Any]:
    return {
        "subject": facts.subject,
        "issuer": facts.issuer,
        "not_before": facts.not_before,
        "not_after": facts.not_after,
        "sha256": facts.sha256,
        "extended_key_usage": list(facts.extended_key_usage),
    }


def _role(rel: str) -> str:
    parts = rel.split("/")
    if parts[0] == "ca":
        ca = CA(parts[1].removesuffix(".pem"))
        real = ca.stands_in_for
        return f"lab CA, stand-in for {real}" if real else f"lab CA ({ca.value})"
    if parts[0] == "server":
        return "server certificate + chain for " + ", ".join(SERVER_NAMES)
    if parts[0] == "apps":
        app = AdobeApp(parts[1].removesuffix(".pem"))
        return f"the {app.common_name} certificate, listed by the lab's API only (no key: never presented)"
    identity = Identity(parts[1])
    kind = "leaf + intermediate, as a client sends it" if parts[2] == "cert.pem" else "the leaf alone"
    return f"client identity {identity.value} ({identity.description}): {kind}"


def require(root: Path, now: dt.datetime | None = None) -> LabPaths:
    """The lab PKI at ``root``, checked to be complete and current; LabError says how to fix it."""
    paths = LabPaths(root)
    missing = [p for p in paths.all_files() if not p.exists()]
    if missing:
        raise LabError(f"no complete lab PKI in {root} (missing {missing[0]}): run `mtls-lab certs --out {root}`")
    moment = now or dt.datetime.now(dt.UTC)
    try:
        leaf = load_pem_chain(paths.client_leaf(Identity.ADOBE))[0]
    except (OSError, ValueError, IndexError) as exc:
        raise LabError(
            f"the lab PKI in {root} is damaged ({paths.client_leaf(Identity.ADOBE)} is not a PEM certificate): "
            f"regenerate it with `mtls-lab certs --out {root} --force`"
        ) from exc
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        raise LabError(
            f"the lab PKI in {root} is stale (the adobe certificate expired {leaf.not_valid_after_utc:%Y-%m-%d}): "
            f"regenerate it with `mtls-lab certs --out {root} --force`"
        )
    return paths
