"""Say exactly what is wrong with a certificate file and its key, where OpenSSL only says "PEM lib".

``ssl.SSLContext.load_cert_chain`` reports every problem with the same ``[SSL] PEM lib`` error, and
with an encrypted key and no password it asks for one on the terminal. ``refuse_encrypted_without_password``
is called before it (the cheap encrypted-key test) and ``diagnose`` after it fails, so the happy path
pays nothing. Messages name the file and the option, never the key's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtls_lab.errors import LabError

CERT_MARK = b"-----BEGIN CERTIFICATE-----"
KEY_MARK = b"PRIVATE KEY-----"


@dataclass(frozen=True)
class PairFiles:
    """A certificate file, its key, and how to name them in messages."""

    cert: Path
    key: Path
    password: str | None = None
    cert_option: str = "--cert"
    key_option: str = "--key"
    password_option: str = "--key-password"
    fix: str = ""  # what to do when the files are damaged, if there is a better fix than "give the right file"


def key_is_encrypted(path: Path) -> bool:
    """Whether a PEM key file is password-protected (PKCS#8 or the legacy Proc-Type header)."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return b"ENCRYPTED PRIVATE KEY" in head or b"Proc-Type: 4,ENCRYPTED" in head


def refuse_encrypted_without_password(pair: PairFiles) -> None:
    """LabError before OpenSSL would prompt for a password on the terminal."""
    if pair.password is None and key_is_encrypted(pair.key):
        raise LabError(
            f"{pair.key_option} {pair.key}: the key is encrypted: give its password with {pair.password_option}"
        )


def diagnose(pair: PairFiles) -> str:
    """One line naming what is wrong with the pair, for a load that failed."""
    both = f"{pair.cert_option} {pair.cert} / {pair.key_option} {pair.key}"
    fallback = f"{both}: cannot be loaded together{_fix(pair, ': give a PEM certificate and its PEM private key')}"
    return _cert_problem(pair) or _key_problem(pair) or fallback


def _read(path: Path, option: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise LabError(f"{option} {path}: is a directory{fix or ': give a PEM file'}") from None
    except OSError as exc:
        raise LabError(f"{option} {path}: cannot read it ({exc.strerror}){fix or ': check the path'}") from None


def _cert_problem(pair: PairFiles) -> str | None:
    data = _read(pair.cert, pair.cert_option, _fix(pair, ""))
    if CERT_MARK not in data:
        found = "a private key, not a certificate" if KEY_MARK in data else "no PEM certificate"
        return f"{pair.cert_option} {pair.cert}: holds {found}{_fix(pair, ': give the certificate (chain) in PEM')}"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        return f"{pair.cert_option} {pair.cert}: a damaged PEM certificate{_fix(pair, ': give an intact PEM file')}"
    return None


def _key_problem(pair: PairFiles) -> str | None:
    data = _read(pair.key, pair.key_option, _fix(pair, ""))
    where = f"{pair.key_option} {pair.key}"
    if KEY_MARK not in data:
        found = "a certificate, not a private key" if CERT_MARK in data else "no PEM private key"
        return f"{where}: holds {found}{_fix(pair, f': give the private key of {pair.cert_option}')}"
    password = pair.password.encode() if pair.password is not None else None
    try:
        key = serialization.load_pem_private_key(data, password, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        if password is None:
            return f"{where}: the key is encrypted: give its password with {pair.password_option}"
        return f"{where}: the key is not encrypted: drop {pair.password_option}"
    except ValueError:
        if password is not None and key_is_encrypted(pair.key):
            return f"{where}: wrong {pair.password_option}: give the password the key was encrypted with"
        return f"{where}: a damaged or unsupported PEM private key{_fix(pair, ': give an intact PEM key')}"
    leaf = x509.load_pem_x509_certificates(_read(pair.cert, pair.cert_option, ""))[0]
    if _public(key.public_key()) != _public(leaf.public_key()):
        return (
            f"{where} does not belong to {pair.cert_option} {pair.cert}: the key must match the first "
            f"certificate{_fix(pair, ': give the key that was made with that certificate')}"
        )
    return None


def _public(key: object) -> bytes:
    encode = getattr(key, "public_bytes", None)
    if encode is None:
        return b""
    data: bytes = encode(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _fix(pair: PairFiles, default: str) -> str:
    return f": {pair.fix}" if pair.fix else default
